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


def render(raw):
    failed = [r for r in raw["results"] if "error" in r]
    res = {r["name"]: r for r in raw["results"] if "error" not in r}
    direct, nginx, litellm = res.get("direct"), res.get("nginx"), res.get("litellm")
    a = raw["args"]
    m, v = raw["machine"], raw["versions"]
    lines = []
    w = lines.append
    w("# Benchmarks: LLMKube gateway against direct, nginx, LiteLLM and Portkey\n")
    setup = "tools already installed" if a.get("no_setup") else "setup included"
    w(f"Produced by `python3 bench/run.py` in {raw['elapsed_s'] / 60:.1f} min ({setup}); every run, raw, in "
      "`bench/results.json`. Every number comes from this one run.\n")
    w("## Method\n")
    w(f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}.")
    w("- One mock OpenAI upstream (`bench/mock-upstream`, one thread): JSON answers with a `usage` block; "
      "SSE answers of 16 chunks. A second, slow mock (40 chunks, 200 ms apart) feeds the memory scenario.")
    w("- Load: `bench/driver` (`llmkube-bench`, one thread, HDR histograms, µs). Closed loop: 16 clients, "
      "each sending its next request when the last one ends. Open loop: a fixed "
      f"{a['rate']} requests/s, released on schedule whatever the answers do (no coordinated omission), "
      "latency counted from each send; at this low load the cores idle between requests, so the "
      "numbers include this VM's wake-up latency (visible in `direct`). "
      "Streams: time to first body byte (first token) and gaps between chunks.")
    w(f"- Pinning (`taskset`): the mock and the driver share core 0, the subject has core 1 to itself. "
      f"Each scenario: {a['repeats']} runs of {a['duration']} s after a 1 s warm-up; tables show the median run. "
      "The request is a chat completion with a 330-byte prompt.")
    w("- Subjects: `direct` (the mock: the limit); `llmkube-plain` (backend-name routing); `llmkube-rules` "
      "(8 compiled rules, the request matches the 7th); `llmkube-rules-pii` (the same plus the PII detector "
      "scanning every prompt); `llmkube-auth-budget` (the rules plus an API key on every request and a "
      "per-team token budget, in memory) and `llmkube-auth-budget-redis` (the same budget shared through "
      "a local `redis-server` on the driver's core: one Lua script per request, one pipelined settle after "
      "it); all write their audit line (to /dev/null) and count every request's usage. `nginx` (`proxy_pass`, "
      "buffering off, upstream keep-alive, 1 worker); `litellm` (proxy, 1 worker, logging off); `portkey` "
      "(Node gateway, the mock as a custom OpenAI host).")
    w(f"- Memory: resident set of the subject's process tree after warm-up (idle) and at the peak while "
      f"it holds {a['streams']} concurrent streams.")
    w("- Versions: " + "; ".join(f"{k}: {val}" for k, val in v.items()) + ".")
    w("- Reading the numbers: at 16 clients the subject's core is saturated, so \"added\" latency there "
      "is mostly queueing behind the subject's own CPU cost per request (throughput is the better "
      "measure of that cost); the open-loop table shows latency at light load. Loopback TCP is "
      "expensive on this VM: about 45% of the gateway's samples are kernel network code.\n")

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
    w(f"| subject | idle | holding {a['streams']} streams | streams completed | errors |")
    w("|---|---|---|---|---|")
    for name, r in res.items():
        s = r.get("streams") or {}
        w(f"| {name} | {mib(r.get('idle_rss_kib'))} | {mib(r.get('streams_rss_kib'))} | {s.get('ok', '-')} "
          f"| {s.get('errors', '-')} |")
    w("\n(`direct` is the slow mock itself; nginx counts master and worker.)\n")

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
    g = res.get("llmkube-rules-pii")
    if g and direct:
        add50 = med(g["closed"], "latency_us", "p50") - base50
        add99 = med(g["closed"], "latency_us", "p99") - base99
        addt = med(g["stream"], "ttft_us", "p50") - t50
        rps = med(g["closed"], "rps")
        rows = [
            ("added latency p50, rules + PII, c=16", "≤ 50 µs", signed_us(add50), add50 <= 50),
            ("added latency p99, rules + PII, c=16", "≤ 250 µs", signed_us(add99), add99 <= 250),
            ("added time to first token p50, rules + PII", "≤ 100 µs", signed_us(addt), addt <= 100),
        ]
        if rps_nginx:
            rows.append(("throughput vs nginx, rules + PII", "≥ 0.9x", ratio(rps, rps_nginx), rps >= 0.9 * rps_nginx))
        if litellm:
            rl = med(litellm["closed"], "rps")
            rows.append(("throughput vs LiteLLM, rules + PII", "≥ 10x", ratio(rps, rl), bool(rl) and rps >= 10 * rl))
        if isinstance(long, list):
            mib1 = next((r for r in long if r["prompt"] == "1MiB" and r.get("text", "numbers") == "numbers"), None)
            if mib1:
                rows.append(("PII detector on a 1 MiB prompt dense with numbers", "≥ 500 MB/s",
                             f"{mib1['detector_mb_s']:,.0f} MB/s ({mib1['total_mb_s']:,.0f} with the walk)",
                             mib1["detector_mb_s"] >= 500))
        w("| goal | target | measured | met |")
        w("|---|---|---|---|")
        for goal, target, got, ok in rows:
            w(f"| {goal} | {target} | {got} | {'yes' if ok else 'no'} |")
    profile = BENCH / "profile.md"
    if profile.exists():
        w("\n" + profile.read_text().strip())
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raw = json.loads((BENCH / "results.json").read_text())
    (BENCH / "RESULTS.md").write_text(render(raw))
    print("wrote bench/RESULTS.md", file=sys.stderr)
