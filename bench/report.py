"""Renders bench/RESULTS.md from bench/results.json (see run.py). `python3 bench/report.py`
re-renders without measuring again."""

import json
import statistics
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def med(runs, *path):
    values = []
    for r in runs:
        v = r
        for p in path:
            v = v.get(p) if isinstance(v, dict) else None
        if v is not None:
            values.append(v)
    return statistics.median(values) if values else None


def us(v):
    if v is None:
        return "-"
    return f"{v / 1000:.2f} ms" if v >= 10_000 else f"{v:.0f} µs"


def signed_us(v):
    if v is None:
        return "-"
    return ("+" if v >= 0 else "-") + us(abs(v))


def ratio(a, b):
    return "-" if not a or not b else f"{a / b:.2f}x"


def mib(kib):
    return "-" if kib is None else f"{kib / 1024:.1f} MiB"


# The gateway's images: name, the binary it carries, the key of its base's estimate in
# results.json, and the base.
IMAGES = (("default", "llmkube-gateway", "distroless_cc_estimate", "distroless/cc"),
          ("static", "llmkube-gateway-static", "distroless_static_estimate", "distroless/static"))


def artifacts(raw):
    """The measured artifacts (an older run stored only this list)."""
    footprint = raw.get("footprint") or {}
    return footprint if isinstance(footprint, list) else footprint.get("artifacts", [])


def images(raw):
    """Each image whose parts were measured: its name, base name, base estimate, stripped
    binary bytes and total bytes (base, stripped binary and the detector module)."""
    footprint = raw.get("footprint") or {}
    arts = artifacts(raw)
    wasm = next((f for f in arts if f["artifact"].endswith(".wasm")), None)
    out = []
    for name, binary, key, base_name in IMAGES:
        base = footprint.get(key) if isinstance(footprint, dict) else None
        gw = next((f for f in arts if f["artifact"] == binary), None)
        if base and gw and gw.get("stripped_bytes"):
            total = base["bytes"] + gw["stripped_bytes"] + (wasm["bytes"] if wasm else 0)
            out.append(dict(name=name, base_name=base_name, base=base, binary=gw["stripped_bytes"],
                            total=total))
    return out


def goals(raw, res, c1):
    """The goals of the performance issue, each with its measured number, as a table."""
    a = raw["args"]
    rows = []
    nginx, direct = res.get("nginx"), res.get("direct")
    rps_nginx = med(nginx["closed"], "rps") if nginx else None
    for name, want in (("llmkube-plain", 1.0), ("llmkube-rules-pii", 0.9)):
        r = res.get(name)
        if r and rps_nginx:
            rps = med(r["closed"], "rps")
            rows.append((f"throughput at 16 clients vs nginx, {name}", f"≥ {want:.1f}x",
                         f"{ratio(rps, rps_nginx)} ({rps:,.0f} / {rps_nginx:,.0f} req/s)", rps >= want * rps_nginx))
    g, d, n = c1.get("llmkube-rules-pii"), c1.get("direct"), c1.get("nginx")
    if g and d and n:
        for q in ("p50", "p99"):
            ours = med(g["closed_c1"], "latency_us", q) - med(d["closed_c1"], "latency_us", q)
            theirs = med(n["closed_c1"], "latency_us", q) - med(d["closed_c1"], "latency_us", q)
            rows.append((f"added latency {q} at 1 client, rules + PII", "≤ nginx's",
                         f"{signed_us(ours)} vs nginx {signed_us(theirs)}", ours <= theirs))
        ours = med(g["stream_c1"], "ttft_us", "p50") - med(d["stream_c1"], "ttft_us", "p50")
        theirs = med(n["stream_c1"], "ttft_us", "p50") - med(d["stream_c1"], "ttft_us", "p50")
        rows.append(("added time to first token p50 at 1 client, rules + PII", "≤ nginx's",
                     f"{signed_us(ours)} vs nginx {signed_us(theirs)}", ours <= theirs))
    g = res.get("llmkube-rules-pii")
    if g and direct and nginx:
        ours = med(g["stream"], "ttft_us", "p50") - med(direct["stream"], "ttft_us", "p50")
        theirs = med(nginx["stream"], "ttft_us", "p50") - med(direct["stream"], "ttft_us", "p50")
        rows.append(("added time to first token p50 at 16 clients, rules + PII", "≤ nginx's",
                     f"{signed_us(ours)} vs nginx {signed_us(theirs)}", ours <= theirs))
    many = a.get("many_streams", 0)
    for name in ("llmkube-plain", "llmkube-rules-pii"):
        r = res.get(name)
        if not r:
            continue
        idle, held = r.get("idle_rss_kib"), r.get("streams_rss_kib")
        rows.append((f"memory idle, {name}", "≤ 16 MiB", mib(idle), idle is not None and idle <= 16 * 1024))
        rows.append((f"memory holding {a['streams']:,} streams, {name}", "≤ 48 MiB", mib(held),
                     held is not None and held <= 48 * 1024))
        if r.get("many_streams_rss_kib") and held and many > a["streams"]:
            per = (r["many_streams_rss_kib"] - held) / (many - a["streams"])
            rows.append((f"memory per additional stream up to {many:,}, {name}", "≤ 20 KiB", f"{per:.1f} KiB",
                         per <= 20))
    long = raw.get("long_prompts")
    if isinstance(long, list):
        mib1 = next((r for r in long if r["prompt"] == "1MiB" and r.get("text", "numbers") == "numbers"), None)
        if mib1:
            rows.append(("PII detector on a 1 MiB prompt dense with numbers", "≥ 500 MB/s",
                         f"{mib1['detector_mb_s']:,.0f} MB/s ({mib1['total_mb_s']:,.0f} with the walk)",
                         mib1["detector_mb_s"] >= 500))
    static, default = res.get("llmkube-rules-pii-static"), res.get("llmkube-rules-pii")
    for img in images(raw):
        label = "default" if img["name"] == "default" else "`--target static`"
        got = (f"about {img['total'] / 1e6:.1f} MB unpacked (estimate: binary {img['binary'] / 1e6:.1f} MB "
               f"stripped + {img['base_name']} {img['base']['bytes'] / 1e6:.1f} MB + detector); "
               "not built here (no Docker)")
        if img["name"] == "static" and static and default:
            got += (f"; its throughput at 16 clients, rules + PII: "
                    f"{ratio(med(static['closed'], 'rps'), med(default['closed'], 'rps'))} the default build's")
        rows.append((f"gateway image under 40 MB ({label})", "< 40 MB", got, img["total"] < 40e6))
    litellm, g = res.get("litellm"), res.get("llmkube-rules-pii")
    if litellm and g:
        rl, rps = med(litellm["closed"], "rps"), med(g["closed"], "rps")
        rows.append(("throughput vs LiteLLM, rules + PII", "≥ 10x", ratio(rps, rl), bool(rl) and rps >= 10 * rl))
    out = ["| goal | target | measured | met |", "|---|---|---|---|"]
    for goal, target, got, ok in rows:
        out.append(f"| {goal} | {target} | {got} | {'-' if ok is None else ('yes' if ok else 'no')} |")
    return "\n".join(out) + "\n"


def render(raw):
    failed = [r for r in raw["results"] if "error" in r]
    res = {r["name"]: r for r in raw["results"] if "error" not in r}
    direct, nginx, litellm = res.get("direct"), res.get("nginx"), res.get("litellm")
    a = raw["args"]
    m, v = raw["machine"], raw["versions"]
    lines = []
    w = lines.append
    w("# Benchmarks: LLMKube gateway against direct, nginx, HAProxy, LiteLLM and Portkey\n")
    setup = "tools already installed" if a.get("no_setup") else "setup included"
    w(f"Produced by `python3 bench/run.py` in {raw['elapsed_s'] / 60:.1f} min ({setup}); every run, raw, in "
      "`bench/results.json`. Every number comes from this one run.\n")
    w("## Method\n")
    w(f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}.")
    w("- One mock OpenAI upstream (`bench/mock-upstream`, one thread): JSON answers with a `usage` block; "
      "SSE answers of 16 chunks. A second, slow mock (12 chunks, a second apart) feeds the memory scenario.")
    w("- Load: `bench/driver` (`llmkube-bench`, one thread, HDR histograms, µs). Closed loop: 16 clients, "
      "each sending its next request when the last one ends. Open loop: a fixed "
      f"{a['rate']} requests/s, released on schedule whatever the answers do (no coordinated omission), "
      "latency counted from each send; at this low load the cores idle between requests, so the "
      "numbers include this VM's wake-up latency (visible in `direct`). "
      "Streams: time to first body byte (first token) and gaps between chunks. Concurrency 1: one "
      "client, closed loop, non-streaming and streaming: the added time of one request with nothing "
      "queued.")
    w(f"- Pinning (`taskset`): the mock and the driver share core 0, the subject has core 1 to itself. "
      f"Each scenario: {a['repeats']} runs of {a['duration']} s after a 1 s warm-up; tables show the median run. "
      "The request is a chat completion with a 330-byte prompt.")
    w("- Subjects: `direct` (the mock: the limit); `llmkube-plain` (backend-name routing); `llmkube-rules` "
      "(8 compiled rules, the request matches the 7th); `llmkube-rules-pii` (the same plus the PII detector "
      "scanning every prompt); `llmkube-auth-budget` (the rules plus an API key on every request and a "
      "per-team token budget, in memory) and `llmkube-auth-budget-redis` (the same budget shared through "
      "a local `redis-server` on the driver's core: one Lua script per request, one pipelined settle after "
      "it); all write their audit line (to /dev/null) and count every request's usage. `nginx` (`proxy_pass`, "
      "buffering off, upstream keep-alive, 1 worker); `haproxy` (HTTP mode, 1 thread, `http-reuse always`); "
      "`litellm` (proxy, 1 worker, logging off); `portkey` "
      "(Node gateway, the mock as a custom OpenAI host).")
    w(f"- Memory: resident set of the subject's process tree after warm-up (idle) and at the peak while "
      f"it holds {a['streams']:,} and then {a.get('many_streams', 0):,} concurrent streams (closed loop "
      "on the slow mock); per additional stream is the difference over the streams added. "
      f"({a.get('many_streams', 0):,} rather than 10,000: a proxy holds two sockets per stream and this "
      "machine's hard limit on open files is 20,000, which cannot be raised here.)")
    w("- Instructions per request: each server under `valgrind --tool=callgrind`, 200 unmeasured "
      "requests, counters zeroed, 1,000 requests from one client, every thread counted "
      "(`bench/instructions.py`). Unlike time on this VM, the count repeats exactly for the same "
      "binary and inputs: it is the regression number. valgrind counts each byte of a `rep movsb` "
      "copy as an instruction, so copies weigh more here than in cycles.")
    w("- Versions: " + "; ".join(f"{k}: {val}" for k, val in v.items()) + ".")
    w("- Reading the numbers: at 16 clients the subject's core is saturated, so \"added\" latency there "
      "is mostly queueing behind the subject's own CPU cost per request (throughput is the better "
      "measure of that cost); the open-loop table shows latency at light load. Loopback TCP is "
      "expensive on this VM: about 45% of the gateway's samples are kernel network code. Throughput on "
      "this VM drifts by 15% or more within one run (in some runs a subject that does strictly more work "
      "came out faster than one that does less): read ratios near 1 as ties, and the instruction counts "
      "as the stable measure of CPU per request.\n")

    for r in failed:
        w(f"- **{r['name']} did not run**: {r['error']}")
    if failed:
        w("")
    w("## Non-streaming, closed loop, 16 clients\n")
    w("| subject | req/s | vs direct | vs nginx | p50 | p99 | p50 added | p99 added | errors |")
    w("|---|---|---|---|---|---|---|---|---|")
    base50 = med(direct["closed"], "latency_us", "p50") if direct else None
    base99 = med(direct["closed"], "latency_us", "p99") if direct else None
    rps_direct = med(direct["closed"], "rps") if direct else None
    rps_nginx = med(nginx["closed"], "rps") if nginx else None
    for name, r in res.items():
        rps = med(r["closed"], "rps")
        p50, p99 = med(r["closed"], "latency_us", "p50"), med(r["closed"], "latency_us", "p99")
        added50 = None if base50 is None or p50 is None else p50 - base50
        added99 = None if base99 is None or p99 is None else p99 - base99
        errors = sum(x["errors"] for x in r["closed"])
        w(f"| {name} | {rps:,.0f} | {ratio(rps, rps_direct)} | {ratio(rps, rps_nginx)} | {us(p50)} | {us(p99)} "
          f"| {signed_us(added50) if name != 'direct' else '-'} | {signed_us(added99) if name != 'direct' else '-'} "
          f"| {errors} |")

    c1 = {n: r for n, r in res.items() if r.get("closed_c1")}
    if c1:
        w("\n## Concurrency 1: one client, closed loop\n")
        w("Added is the subject's median minus direct's, in the same run; \"vs nginx\" divides the "
          "subject's added time by nginx's.\n")
        w("| subject | req/s | p50 | p99 | p50 added | p99 added | added vs nginx (p50 / p99) "
          "| first token p50 | first token added | vs nginx | errors |")
        w("|---|---|---|---|---|---|---|---|---|---|---|")
        d = c1.get("direct")
        rows = {}
        for name, r in c1.items():
            p50, p99 = med(r["closed_c1"], "latency_us", "p50"), med(r["closed_c1"], "latency_us", "p99")
            f50 = med(r["stream_c1"], "ttft_us", "p50")
            base = (med(d["closed_c1"], "latency_us", "p50"), med(d["closed_c1"], "latency_us", "p99"),
                    med(d["stream_c1"], "ttft_us", "p50")) if d else (None, None, None)
            added = tuple(None if x is None or b is None else x - b for x, b in zip((p50, p99, f50), base))
            rows[name] = (r, p50, p99, f50, added)
        ng = rows.get("nginx")
        for name, (r, p50, p99, f50, added) in rows.items():
            def vs(i):
                if name == "direct" or not ng or ng[4][i] is None or added[i] is None or ng[4][i] <= 0:
                    return "-"
                return f"{added[i] / ng[4][i]:.2f}x"
            errors = sum(x["errors"] for x in r["closed_c1"]) + sum(x["errors"] for x in r["stream_c1"])
            dash = name == "direct"
            w(f"| {name} | {med(r['closed_c1'], 'rps'):,.0f} | {us(p50)} | {us(p99)} "
              f"| {'-' if dash else signed_us(added[0])} | {'-' if dash else signed_us(added[1])} "
              f"| {vs(0)} / {vs(1)} | {us(f50)} | {'-' if dash else signed_us(added[2])} | {vs(2)} | {errors} |")

    w(f"\n## Non-streaming, open loop, {a['rate']} requests/s\n")
    w(f"(A subject that sustains less than {2 * a['rate']} requests/s closed-loop is driven at half of "
      "what it sustained; the rate column says so.)\n")
    w("| subject | rate | p50 | p99 | p99.9 | p50 added | p99 added | errors |")
    w("|---|---|---|---|---|---|---|---|")
    o50 = med(direct["open"], "latency_us", "p50") if direct else None
    o99 = med(direct["open"], "latency_us", "p99") if direct else None
    for name, r in res.items():
        p50, p99 = med(r["open"], "latency_us", "p50"), med(r["open"], "latency_us", "p99")
        p999 = med(r["open"], "latency_us", "p999")
        errors = sum(x["errors"] for x in r["open"])
        add50 = None if o50 is None or p50 is None else p50 - o50
        add99 = None if o99 is None or p99 is None else p99 - o99
        w(f"| {name} | {r.get('open_rate', a['rate'])}/s | {us(p50)} | {us(p99)} | {us(p999)} "
          f"| {signed_us(add50) if name != 'direct' else '-'} "
          f"| {signed_us(add99) if name != 'direct' else '-'} | {errors} |")

    w("\n## Streaming (SSE, 16 chunks), closed loop, 16 clients\n")
    w("| subject | streams/s | vs nginx | first token p50 | first token p99 | added p50 | chunk gap p99 | errors |")
    w("|---|---|---|---|---|---|---|---|")
    t50 = med(direct["stream"], "ttft_us", "p50") if direct else None
    s_nginx = med(nginx["stream"], "rps") if nginx else None
    for name, r in res.items():
        rps = med(r["stream"], "rps")
        f50, f99 = med(r["stream"], "ttft_us", "p50"), med(r["stream"], "ttft_us", "p99")
        g99 = med(r["stream"], "gap_us", "p99")
        errors = sum(x["errors"] for x in r["stream"])
        add = None if t50 is None or f50 is None else f50 - t50
        w(f"| {name} | {rps:,.0f} | {ratio(rps, s_nginx)} | {us(f50)} | {us(f99)} "
          f"| {signed_us(add) if name != 'direct' else '-'} | {us(g99)} | {errors} |")

    broken = [n for n, r in res.items() if r["stream"] and all(x["ok"] == 0 and x["errors"] > 0 for x in r["stream"])]
    for n in broken:
        w(f"\n{n}: every stream failed (its log is bench/out/{n}.log).")
    w(f"\n## Memory\n")
    many = a.get("many_streams", 0)
    w(f"| subject | idle | {a['streams']:,} streams | {many:,} streams | per additional stream | errors ({a['streams']:,} / {many:,}) |")
    w("|---|---|---|---|---|---|")
    for name, r in res.items():
        s1, s2 = r.get("streams") or {}, r.get("many_streams") or {}
        per = None
        if r.get("many_streams_rss_kib") and r.get("streams_rss_kib") and many > a["streams"]:
            per = (r["many_streams_rss_kib"] - r["streams_rss_kib"]) / (many - a["streams"])
        many_cell = mib(r.get("many_streams_rss_kib")) if "many_streams_skipped" not in r else \
            f"not run: {r['many_streams_skipped']}"
        w(f"| {name} | {mib(r.get('idle_rss_kib'))} | {mib(r.get('streams_rss_kib'))} | {many_cell} "
          f"| {'-' if per is None else f'{per:.1f} KiB'} | {s1.get('errors', '-')} / {s2.get('errors', '-')} |")
    w("\n(`direct` is the slow mock itself; nginx counts master and worker.)\n")

    counts = [c for c in (raw.get("instructions") or []) if "error" not in c]
    if counts:
        w("## Instructions per request (callgrind)\n")
        ng = next((c for c in counts if c["subject"] == "nginx" and not c["stream"]), None)
        ngs = next((c for c in counts if c["subject"] == "nginx" and c["stream"]), None)
        w("| subject | request | instructions per request | vs nginx |")
        w("|---|---|---|---|")
        for c in counts:
            ref = ngs if c["stream"] else ng
            w(f"| {c['subject']} | {'stream (16 chunks)' if c['stream'] else 'JSON'} "
              f"| {c['instructions_per_request']:,} | {ratio(c['instructions_per_request'], ref and ref['instructions_per_request'])} |")
        for c in raw.get("instructions") or []:
            if "error" in c:
                w(f"\n{c['subject']}: not counted: {c['error']}")
        top = next((c for c in counts if c["subject"] == "llmkube-rules-pii" and not c["stream"]), None)
        if top:
            w("\nWhere `llmkube-rules-pii`'s instructions go (self cost, top 12):\n")
            w("| instructions per request | share | function |")
            w("|---|---|---|")
            for t in top["top"][:12]:
                fn = t["function"].replace("|", "\\|")
                w(f"| {t['ir'] / top['requests']:,.0f} | {t['percent']:.1f}% | `{fn}` |")
        w("")

    foot = artifacts(raw)
    if foot:
        w("## Footprint\n")
        w("| artifact | as built | stripped (what the image carries) | gzip (the layer) |")
        w("|---|---|---|---|")
        for f in foot:
            mb = lambda b: "-" if b is None else f"{b / 1e6:.1f} MB"
            w(f"| {f['artifact']} | {mb(f['bytes'])} | {mb(f.get('stripped_bytes'))} | {mb(f['gzip_bytes'])} |")
        w("\nImage sizes are not measured here: this machine has no Docker daemon and no registry to pull "
          "the distroless base from. The gateway image is that base plus the stripped binary and the "
          "detector module.")
        for img in images(raw):
            b = img["base"]
            w(f"The {img['name']} image, estimated from the Debian 12 packages {img['base_name']} is built from "
              f"({', '.join(b['packages'])}; their files as installed here, documentation left out): "
              f"base {b['bytes'] / 1e6:.1f} MB, so the image about **{img['total'] / 1e6:.1f} MB** unpacked"
              + (f" (packages not installed here, so a lower bound: {', '.join(b['missing'])})" if b["missing"] else "")
              + ".")
        w("")

    long = raw.get("long_prompts")
    if isinstance(long, list) and long:
        w("## Long prompts: the body walk and the PII detector\n")
        w("`gateway/benches/detector.rs`, pinned to the subject core: a chat body of prose, walked once "
          "by the gateway (strict JSON, every string collected), then scanned by the built-in detector "
          "(WebAssembly, reused instance, production limits) in 64 KiB windows; median of runs filling "
          "about a second. `numbers` is prose with a price, an order number, an ISO date and a version in "
          "every sentence, none of them personal data (the worst realistic case: every number is a stop); "
          "`prose` has capitals but no digits.\n")
        w("| prompt | text | body | walk | detector | walk + detector | walk MB/s | detector MB/s | total MB/s |")
        w("|---|---|---|---|---|---|---|---|---|")
        for r in long:
            w(f"| {r['prompt']} | {r.get('text', 'numbers')} | {r['body_bytes']:,} B | {r['walk_ms']:.3f} ms | {r['detector_ms']:.3f} ms "
              f"| {r['total_ms']:.3f} ms | {r['walk_mb_s']:,.0f} | {r['detector_mb_s']:,.0f} | {r['total_mb_s']:,.0f} |")
        w("")
    elif isinstance(long, dict):
        w(f"## Long prompts\n\n**did not run**: {long.get('error')}\n")
    acc = raw.get("detector_accuracy")
    if acc and acc.get("llmkube"):
        ours, theirs = acc["llmkube"], acc.get("presidio") or {}
        w("## PII detector accuracy beside Presidio (Faker corpus, seven locales)\n")
        w("`policies/pii-detector/fixtures/faker-corpus.json`; Presidio's pattern recognizers called directly "
          f"(`fixtures/score_presidio.py`, threshold {theirs.get('threshold', '-')}).\n")
        w("| kind | llmkube-pii-detector | Presidio |")
        w("|---|---|---|")
        def cell(r):
            return f"{r['hits']}/{r['cases']} ({100 * r['hits'] / r['cases']:.1f}%)" if r else "-"
        for kind in ("email", "phone", "ssn", "card", "iban"):
            w(f"| {kind} | {cell(ours.get(kind))} | {cell((theirs.get('kinds') or {}).get(kind))} |")
        fp = ours.get("false_positives") or {}
        if fp:
            w(f"| false positives | {fp['count']}/{fp['negatives']} | "
              f"{theirs.get('false_positives', '-')}/{theirs.get('negatives', '-')} |")
        w("")

    base = res.get("llmkube-rules")
    tagged = [(n, res.get(n)) for n in ("llmkube-auth-budget", "llmkube-auth-budget-redis")]
    if base and any(r for _, r in tagged):
        w("## The cost of identity and budgets\n")
        w("Against `llmkube-rules` in the same run. CPU per request is the saturated core's time divided "
          "by the requests it served closed-loop (1 / req/s); the open-loop columns are latency at light load. "
          "`redis-server` shares core 0 with the mock and the driver, so the Redis row is bounded by that "
          "core too: its CPU figure is an upper bound on the gateway's own cost.\n")
        w("| subject | req/s c=16 | vs rules | CPU per request | added vs rules | open p50 | open p99 |")
        w("|---|---|---|---|---|---|---|")
        brps = med(base["closed"], "rps")
        for name, r in [("llmkube-rules", base), *tagged]:
            if not r:
                continue
            rps = med(r["closed"], "rps")
            cpu = 1e6 / rps if rps else None
            added = None if cpu is None or not brps else cpu - 1e6 / brps
            w(f"| {name} | {rps:,.0f} | {ratio(rps, brps)} | {us(cpu)} | "
              f"{signed_us(added) if r is not base else '-'} | {us(med(r['open'], 'latency_us', 'p50'))} "
              f"| {us(med(r['open'], 'latency_us', 'p99'))} |")
        w("")

    w("## Goals (reported, not asserted)\n")
    w(goals(raw, res, c1))
    profile = BENCH / "profile.md"
    if profile.exists():
        w("\n" + profile.read_text().strip())
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raw = json.loads((BENCH / "results.json").read_text())
    (BENCH / "RESULTS.md").write_text(render(raw))
    print("wrote bench/RESULTS.md", file=sys.stderr)
