#!/usr/bin/env python3
"""One command for the whole comparison: `python3 bench/run.py` (add `--quick` for a smoke run).

Sets up what is missing (nginx from Debian; LiteLLM from PyPI into bench/out/venv; the Portkey
gateway from npm into bench/out/portkey; release builds of the gateway, the mock upstream, the
load driver and the PII detector), then measures every subject against the same mock upstream:

  direct        the mock itself: the physical limit
  llmkube-*     the gateway with plain routing, with compiled rules, with rules + PII detector, and
                with rules + an API key + a token budget (in memory, and shared through Redis);
                llmkube-rules-pii-static is the static (musl) build of the smaller image
  nginx         proxy_pass with buffering off: the raw-proxy baseline
  litellm       LiteLLM proxy, the mock as an OpenAI-compatible provider, logging off
  portkey       the Portkey gateway, the mock as a custom OpenAI host

The mock and the load driver share core 0; the subject under test has core 1 to itself
(taskset). Each scenario runs --repeats times; RESULTS.md reports medians and ratios, every raw
run goes to bench/results.json beside it.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
REL = ROOT / "target" / "release"
# The static build of the gateway (gateway/Dockerfile's `static` image), linked against musl.
MUSL = f"{platform.machine()}-unknown-linux-musl"
STATIC_GATEWAY = ROOT / "target" / MUSL / "release" / "llmkube-gateway"
WASM = ROOT / "target" / "wasm32-unknown-unknown" / "release"
LITELLM_VERSION = "1.108.0"
PORTKEY_VERSION = "1.15.2"
PRESIDIO_VERSION = "2.2.366"
FAST, SLOW = 18000, 18001
REDIS = 18300
BENCH_KEY = "sk-bench-0123456789abcdef"
DRIVER_CORE, SUBJECT_CORE = "0", "1"
PROMPT = (
    "You are a helpful assistant for the platform team. Summarise the following change request in two "
    "sentences and list any risk you see: upgrade the inference nodes to the new driver, drain one "
    "node at a time, keep the router serving, and roll back if the error rate rises above one percent."
)


def log(msg):
    print(f"[bench] {msg}", flush=True)


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=isinstance(cmd, str), check=True, **kw)


def sh_out(cmd, cwd):
    """Runs a shell command and returns its standard output."""
    return subprocess.run(cmd, shell=True, check=True, cwd=cwd, capture_output=True, text=True).stdout


# ---------------------------------------------------------------- setup

def setup():
    OUT.mkdir(parents=True, exist_ok=True)
    if not shutil.which("redis-server"):
        log("installing redis-server (Debian)")
        sh("export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q redis-server >/dev/null "
           "|| { apt-get update -q >/dev/null && apt-get install -y -q redis-server >/dev/null; }")
    for tool, package in (("nginx", "nginx-light"), ("haproxy", "haproxy")):
        if not shutil.which(tool):
            log(f"installing {package} (Debian)")
            sh(f"export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q {package} >/dev/null "
               f"|| {{ apt-get update -q >/dev/null && apt-get install -y -q {package} >/dev/null; }}")
    venv = OUT / "venv"
    if not (venv / "bin" / "litellm").exists():
        log(f"installing LiteLLM {LITELLM_VERSION} (PyPI)")
        sh([sys.executable, "-m", "venv", str(venv)])
        sh([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "uv"])
        # litellm pins certifi>=2026.10.19, newer than the package index here has; any
        # recent certifi works for loopback HTTP, so override it.
        (OUT / "overrides.txt").write_text("certifi>=2024\n")
        sh([str(venv / "bin" / "uv"), "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
            f"litellm[proxy]=={LITELLM_VERSION}", "--override", str(OUT / "overrides.txt")])
    presidio = OUT / "presidio-venv"
    if not (presidio / "bin" / "python").exists() or subprocess.run(
            [str(presidio / "bin" / "python"), "-c", "import presidio_analyzer"]).returncode != 0:
        log(f"installing Presidio's analyzer {PRESIDIO_VERSION} (PyPI), for the detector's accuracy beside it")
        sh([sys.executable, "-m", "venv", str(presidio)])
        sh([str(presidio / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
            f"presidio-analyzer=={PRESIDIO_VERSION}"])
    portkey = OUT / "portkey"
    if not (portkey / "node_modules" / "@portkey-ai" / "gateway").exists():
        log(f"installing the Portkey gateway {PORTKEY_VERSION} (npm)")
        portkey.mkdir(exist_ok=True)
        sh(["npm", "install", "--no-audit", "--no-fund", "-s", f"@portkey-ai/gateway@{PORTKEY_VERSION}"],
           cwd=portkey)
    if not shutil.which("musl-gcc"):
        log("installing musl-tools (Debian), for the static gateway")
        sh("export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q musl-tools >/dev/null "
           "|| { apt-get update -q >/dev/null && apt-get install -y -q musl-tools >/dev/null; }")
    sh(f"rustup target add {MUSL} wasm32-unknown-unknown")
    log("building release binaries and the PII detector")
    sh("cargo build -q --release --locked --target wasm32-unknown-unknown -p llmkube-pii-detector", cwd=ROOT)
    sh("cargo build -q --release --locked -p llmkube-gateway -p llmkube-mock-upstream -p llmkube-bench "
       "-p llmkube-operator --bin llmkube-controller", cwd=ROOT)
    sh(f"cargo build -q --release --locked --target {MUSL} -p llmkube-gateway --bin llmkube-gateway", cwd=ROOT)


# ---------------------------------------------------------------- processes

def raise_nofile():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else min(65536, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def spawn(cmd, core, name, env=None, cwd=None):
    logf = open(OUT / f"{name}.log", "w")
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.Popen(["taskset", "-c", core, *cmd], stdout=logf, stderr=subprocess.STDOUT,
                            env=e, cwd=cwd, preexec_fn=raise_nofile, start_new_session=True)


def stop(p):
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def wait_port(port, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"subject exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} did not open")


def tree_rss_kib(pid):
    """Resident memory of a process and all its descendants."""
    children = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


# ---------------------------------------------------------------- subjects

ROUTER_HEAD = """apiVersion: inference.llmkube.dev/v1alpha1
kind: ModelRouter
metadata: {name: bench, namespace: bench}
spec:
  backends:
    - {name: fast, displayName: mock, inferenceServiceRef: {name: fast}}
    - {name: slow, displayName: slow, inferenceServiceRef: {name: slow}}
  defaultRoute: fast
  defaultRouteStrategy: BackendNameMatch
"""
RULES = """  rules:
    - {name: pii-local, match: {dataClassification: [pii]}, route: {backends: [fast]}, failClosed: true}
    - {name: phi-local, match: {dataClassification: [phi]}, route: {backends: [fast]}, failClosed: true}
    - {name: code, match: {taskComplexity: code}, route: {backends: [fast]}}
    - {name: research, match: {headers: {x-team: research}}, route: {backends: [fast]}}
    - {name: frontier, match: {models: ["gpt-4*", "claude-*"]}, route: {backends: [fast]}}
    - {name: gold, match: {models: ["llama-*"], headers: {x-tier: gold}}, route: {backends: [fast]}}
    - {name: mock, match: {models: [mock]}, route: {backends: [fast, slow]}}
    - {name: slow, match: {models: [slow]}, route: {backends: [slow]}}
"""


def llmkube_subject(name, rules, pii, budget=None, binary=REL / "llmkube-gateway"):
    """`budget`: None, "memory" or "redis": an API key and a (never spent) token budget."""
    spec = ROUTER_HEAD + (RULES if rules else "")
    policy = "  policy:\n    auditLog: {sink: file, filePath: /dev/null}\n"
    if pii:
        policy += "    classification: {mode: detector}\n"
    headers, extra = [], []
    if budget:
        creds = OUT / "credentials"
        (creds / "bench-keys").mkdir(parents=True, exist_ok=True)
        import hashlib
        digest = hashlib.sha256(BENCH_KEY.encode()).hexdigest()
        (creds / "bench-keys" / "keys.yaml").write_text(
            f"- {{principal: bench, team: research, sha256: {digest}}}\n")
        spec += "  auth:\n    apiKeys: {secretRef: {name: bench-keys}}\n    teams: [{name: research}]\n"
        policy += "    budgets:\n      - {name: team-hourly, scope: team, maxTokens: 1000000000000}\n"
        if budget == "redis":
            policy += f"    budgetStore: {{redis: {{address: '127.0.0.1:{REDIS}'}}}}\n"
        headers = [f"authorization: Bearer {BENCH_KEY}"]
        extra = ["--credentials-dir", str(creds)]
    path = OUT / f"{name}.yaml"
    path.write_text(spec + policy)
    port = 18100
    cmd = [str(binary), "--router", str(path), "--listen", f"127.0.0.1:{port}",
           "--max-connections", "20000",  # the 10,000-stream scenario, with room
           "--backend-address", f"fast=http://127.0.0.1:{FAST}", "--backend-address",
           f"slow=http://127.0.0.1:{SLOW}", "--policy-dir", str(WASM), "--no-watch", *extra]
    # Under valgrind the policy pool's address-space reservation (an 8 GiB slot per instance)
    # does not fit: four instances are plenty for one client.
    # valgrind runs code ~50x slower: the policy deadline (CPU time) is raised to match.
    return dict(name=name, cmd=cmd, callgrind_cmd=[*cmd, "--policy-max-instances", "4", "--policy-deadline", "1s"],
                port=port,
                url=f"http://127.0.0.1:{port}/v1/chat/completions",
                slow_url=None, env={"LLMKUBE_LOG": "warn"}, headers=headers)


def nginx_subject():
    prefix = OUT / "nginx"
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    port = 18200
    conf.write_text(f"""worker_processes 1;
worker_rlimit_nofile 65536;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 32768; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/tmp/body;
  proxy_temp_path {prefix}/tmp/proxy;
  fastcgi_temp_path {prefix}/tmp/fastcgi;
  uwsgi_temp_path {prefix}/tmp/uwsgi;
  scgi_temp_path {prefix}/tmp/scgi;
  upstream fast {{ server 127.0.0.1:{FAST}; keepalive 256; }}
  upstream slow {{ server 127.0.0.1:{SLOW}; keepalive 1024; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_buffering off;
    proxy_request_buffering off;
    location /slow/ {{ proxy_pass http://slow/; }}
    location / {{ proxy_pass http://fast; }}
  }}
}}
""")
    # For callgrind, the same server without the master process (the worker is the process).
    one = prefix / "nginx-one-process.conf"
    one.write_text("master_process off;\n" + conf.read_text())
    return dict(name="nginx", cmd=["nginx", "-p", str(prefix), "-c", str(conf)],
                callgrind_cmd=["nginx", "-p", str(prefix), "-c", str(one)], port=port,
                url=f"http://127.0.0.1:{port}/v1/chat/completions",
                slow_url=f"http://127.0.0.1:{port}/slow/v1/chat/completions", env={}, headers=[])


def haproxy_subject():
    prefix = OUT / "haproxy"
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "haproxy.cfg"
    port = 18250
    # One thread, like nginx's one worker; connections to the mock kept alive and shared.
    # maxconn: two descriptors per stream must fit the machine's hard limit of 20,000.
    conf.write_text(f"""global
  nbthread 1
  maxconn 9900
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend bench
  bind 127.0.0.1:{port}
  use_backend slow if {{ path_beg /slow/ }}
  default_backend fast
backend fast
  server mock 127.0.0.1:{FAST}
backend slow
  http-request replace-path /slow(/.*) \\1
  server mock 127.0.0.1:{SLOW}
""")
    return dict(name="haproxy", cmd=["haproxy", "-db", "-f", str(conf)], port=port,
                url=f"http://127.0.0.1:{port}/v1/chat/completions",
                slow_url=f"http://127.0.0.1:{port}/slow/v1/chat/completions", env={}, headers=[])


def litellm_subject():
    cfg = OUT / "litellm.yaml"
    cfg.write_text(f"""model_list:
  - model_name: mock
    litellm_params: {{model: openai/mock, api_base: "http://127.0.0.1:{FAST}/v1", api_key: sk-bench}}
  - model_name: slow
    litellm_params: {{model: openai/slow, api_base: "http://127.0.0.1:{SLOW}/v1", api_key: sk-bench}}
litellm_settings:
  telemetry: false
  turn_off_message_logging: true
  set_verbose: false
general_settings:
  disable_spend_logs: true
  master_key: sk-bench-0123456789abcdef0123456789abcdef
""")
    port = 18400
    return dict(name="litellm", cmd=[str(OUT / "venv" / "bin" / "litellm"), "--config", str(cfg), "--host",
                                     "127.0.0.1", "--port", str(port), "--num_workers", "1"],
                port=port, url=f"http://127.0.0.1:{port}/v1/chat/completions", slow_url=None,
                env={"LITELLM_LOG": "ERROR", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                     "LITELLM_TELEMETRY": "False"},
                headers=["authorization: Bearer sk-bench-0123456789abcdef0123456789abcdef"])


def portkey_subject():
    port = 18350  # not REDIS's port: sharing it made every Portkey request go to redis-server
    script = OUT / "portkey" / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
    headers = ["x-portkey-provider: openai", f"x-portkey-custom-host: http://127.0.0.1:{FAST}/v1",
               "authorization: Bearer sk-bench"]
    return dict(name="portkey", cmd=["node", str(script), f"--port={port}", "--headless"], port=port,
                url=f"http://127.0.0.1:{port}/v1/chat/completions", slow_url=None, env={},
                headers=headers,
                slow_headers=[h.replace(str(FAST), str(SLOW)) for h in headers])


def direct_subject():
    return dict(name="direct", cmd=None, port=FAST, url=f"http://127.0.0.1:{FAST}/v1/chat/completions",
                slow_url=f"http://127.0.0.1:{SLOW}/v1/chat/completions", env={}, headers=[])


# ---------------------------------------------------------------- measuring

def drive(subject, *, stream=False, concurrency=16, rate=None, duration=5, warmup=1, model="mock",
          url=None, headers=None):
    cmd = ["taskset", "-c", DRIVER_CORE, str(REL / "llmkube-bench"), "--url", url or subject["url"],
           "--duration", f"{duration}s", "--warmup", f"{warmup}s", "--concurrency", str(concurrency),
           "--model", model, "--prompt", PROMPT, "--label", subject["name"]]
    if rate:
        cmd += ["--rate", str(rate)]
    if stream:
        cmd.append("--stream")
    for h in headers if headers is not None else subject["headers"]:
        cmd += ["-H", h]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, preexec_fn=raise_nofile)
    return json.loads(out.stdout)


def measure(subject, args):
    proc = None
    if subject["cmd"]:
        proc = spawn(subject["cmd"], SUBJECT_CORE, subject["name"], env=subject["env"])
        wait_port(subject["port"], proc)
    pid = proc.pid if proc else MOCK_PIDS[0]
    runs = {"name": subject["name"], "closed": [], "open": [], "stream": [], "closed_c1": [], "stream_c1": []}
    try:
        drive(subject, duration=1, warmup=0)  # warm caches and connection pools
        time.sleep(0.5)
        runs["idle_rss_kib"] = tree_rss_kib(pid)
        # For `direct`, the streams come from (and are held by) the slow mock.
        stream_pid = pid if proc else MOCK_PIDS[1]
        runs["streams_rss_kib"], runs["streams"] = hold_streams(subject, stream_pid, args.streams, 8)
        if runs["streams"]["errors"] >= args.streams:
            runs["many_streams_skipped"] = f"every one of {args.streams} streams failed"
        else:
            time.sleep(1)
            runs["many_streams_rss_kib"], runs["many_streams"] = hold_streams(
                subject, stream_pid, args.many_streams, 14)
        for i in range(args.repeats):
            runs["closed"].append(drive(subject, concurrency=16, duration=args.duration))
            runs["stream"].append(drive(subject, stream=True, concurrency=16, duration=args.duration))
            runs["closed_c1"].append(drive(subject, concurrency=1, duration=args.duration))
            runs["stream_c1"].append(drive(subject, stream=True, concurrency=1, duration=args.duration))
        # Open loop last, at the fixed rate, or at half of what the subject sustained closed-loop
        # if that is less: latency of an overloaded server only measures its queue.
        capacity = statistics.median(r["rps"] for r in runs["closed"])
        runs["open_rate"] = int(min(args.rate, max(10, capacity // 2)))
        for i in range(args.repeats):
            runs["open"].append(drive(subject, rate=runs["open_rate"], duration=args.duration))
    finally:
        if proc:
            stop(proc)
    return runs


def hold_streams(subject, pid, streams, seconds):
    """Peak RSS while the subject holds `streams` concurrent streams from the slow mock (each
    12 chunks, a second apart) for `seconds`; clients that finish a stream start the next."""
    url = subject.get("slow_url") or subject["url"]
    headers = subject.get("slow_headers", subject["headers"])
    cmd = ["taskset", "-c", DRIVER_CORE, str(REL / "llmkube-bench"), "--url", url, "--duration",
           f"{seconds}s", "--warmup", "0s", "--concurrency", str(streams), "--stream", "--model", "slow",
           "--label", subject["name"]]
    for h in headers:
        cmd += ["-H", h]
    driver = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, preexec_fn=raise_nofile)
    peak = 0
    for _ in range(seconds * 10 - 10):
        time.sleep(0.1)
        peak = max(peak, tree_rss_kib(pid))
    time.sleep(2)
    peak = max(peak, tree_rss_kib(pid))
    out, _ = driver.communicate(timeout=120)
    return peak, json.loads(out)


def instruction_counts(subjects):
    """Instructions per request under callgrind (bench/instructions.py) for the subjects that
    are servers of ours or raw proxies; non-streaming, and streaming for rules + PII."""
    import instructions
    wanted = [("llmkube-plain", False), ("llmkube-rules-pii", False), ("llmkube-rules-pii", True),
              ("nginx", False), ("nginx", True), ("haproxy", False)]
    by_name = {s["name"]: s for s in subjects}
    rows = []
    for name, stream in wanted:
        if name not in by_name:
            continue
        log(f"counting instructions per request: {name}{' (streaming)' if stream else ''}")
        try:
            rows.append(instructions.count(by_name[name], stream=stream, rel=REL, out_dir=OUT,
                                           core=SUBJECT_CORE, driver_core=DRIVER_CORE, prompt=PROMPT,
                                           wait_port=wait_port, spawn=spawn, stop=stop))
        except (RuntimeError, subprocess.SubprocessError, StopIteration, IndexError) as e:
            log(f"{name}: instruction count failed: {e}")
            rows.append({"subject": name, "stream": stream, "error": str(e)})
    return rows


MOCK_PIDS = []


# ---------------------------------------------------------------- the detector on long prompts
def long_prompts():
    """The body walk and the PII detector on 1 KiB, 64 KiB and 1 MiB prompts (gateway/benches/detector.rs),
    pinned to the subject core; one JSON line per size."""
    # Built on both cores first; only the measurement is pinned.
    sh("cargo bench -q --locked -p llmkube-gateway --bench detector --no-run", cwd=ROOT)
    out = sh_out(f"taskset -c {SUBJECT_CORE} cargo bench -q --locked -p llmkube-gateway --bench detector",
                 cwd=ROOT)
    return [json.loads(l) for l in out.splitlines() if l.startswith("{")]


def detector_accuracy():
    """Recall per kind and false positives on the Faker corpus: the detector's own test output, and
    Presidio's pattern recognizers on the same file (fixtures/score_presidio.py)."""
    fixtures = ROOT / "policies" / "pii-detector" / "fixtures"
    ours = sh_out("cargo test -q --locked -p llmkube-pii-detector --test corpus -- faker --nocapture 2>&1",
                  cwd=ROOT)
    rows = {}
    for line in ours.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "recall":
            hits, cases = parts[2].split("/")
            rows[parts[0]] = {"hits": int(hits), "cases": int(cases)}
        if line.startswith("false positives ") and "/" in line:
            fp, n = line.split()[2].split("/")
            rows["false_positives"] = {"count": int(fp), "negatives": int(n)}
    try:
        python = OUT / "presidio-venv" / "bin" / "python"
        presidio = json.loads(sh_out(f"{python} {fixtures / 'score_presidio.py'} --json", cwd=ROOT))
    except (subprocess.SubprocessError, json.JSONDecodeError) as e:
        presidio = {"error": str(e)}
    return {"llmkube": rows, "presidio": presidio}


def all_subjects():
    return [direct_subject(), llmkube_subject("llmkube-plain", False, False),
            llmkube_subject("llmkube-rules", True, False), llmkube_subject("llmkube-rules-pii", True, True),
            llmkube_subject("llmkube-rules-pii-static", True, True, binary=STATIC_GATEWAY),
            llmkube_subject("llmkube-auth-budget", True, False, "memory"),
            llmkube_subject("llmkube-auth-budget-redis", True, False, "redis"),
            nginx_subject(), haproxy_subject(), litellm_subject(), portkey_subject()]


def start_mocks():
    """The two mock upstreams and the budget store, on the driver's core, listening."""
    mocks = [spawn([str(REL / "llmkube-mock-upstream"), "--listen", f"127.0.0.1:{FAST}", "--chunks", "16",
                    "--threads", "1"], DRIVER_CORE, "mock-fast"),
             # Streams of 12 s, a chunk a second: at 10,000 streams that is 10,000 chunks/s on
             # the driver's core (40 chunks 200 ms apart, as before, overloaded it: 340 ms gaps).
             spawn([str(REL / "llmkube-mock-upstream"), "--listen", f"127.0.0.1:{SLOW}", "--chunks", "12",
                    "--gap-ms", "1000", "--threads", "1"], DRIVER_CORE, "mock-slow"),
             # The budget store, on the driver's core like the mocks: what the gateway waits for.
             spawn(["redis-server", "--port", str(REDIS), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--maxclients", "20000"], DRIVER_CORE, "redis")]
    MOCK_PIDS[:] = [m.pid for m in mocks]
    for m, port in zip(mocks, (FAST, SLOW, REDIS)):
        wait_port(port, m)
    return mocks


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 repeat of 2 s: a smoke run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5, help="seconds per measured run")
    ap.add_argument("--rate", type=int, default=500, help="open-loop requests per second")
    ap.add_argument("--streams", type=int, default=1000, help="concurrent streams for the memory scenario")
    # 9,500, not 10,000: a proxy holds two sockets per stream, and this machine's hard limit on
    # open files is 20,000 (not raisable without CAP_SYS_RESOURCE): at 10,000 streams both
    # nginx and the gateway ran out of descriptors.
    ap.add_argument("--many-streams", type=int, default=9500, help="the memory scenario's second point")
    ap.add_argument("--only", nargs="*", help="subjects to run (default: all)")
    ap.add_argument("--no-setup", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.repeats, args.duration = 1, 2
    started = time.time()
    if not args.no_setup:
        setup()
    subjects = all_subjects()
    if args.only:
        subjects = [s for s in subjects if s["name"] in args.only]
    mocks = start_mocks()
    results = []
    try:
        for s in subjects:
            log(f"measuring {s['name']}")
            try:
                results.append(measure(s, args))
            except (RuntimeError, subprocess.SubprocessError, json.JSONDecodeError) as e:
                log(f"{s['name']} failed: {e} (see bench/out/{s['name']}.log)")
                results.append({"name": s["name"], "error": str(e)})
        counts = None
        if (args.only and "instructions" in args.only) or not (args.only or args.quick):
            counts = instruction_counts(all_subjects())
    finally:
        for m in mocks:
            stop(m)
    long = accuracy = None
    if not args.only or "detector" in args.only:
        log("measuring the detector on long prompts, and its accuracy beside Presidio's")
        try:
            long = long_prompts()
            accuracy = detector_accuracy()
        except (RuntimeError, subprocess.SubprocessError, json.JSONDecodeError) as e:
            log(f"detector scenario failed: {e}")
            long = {"error": str(e)}
    elapsed = time.time() - started
    raw = {"machine": machine(), "versions": versions(), "args": vars(args), "elapsed_s": round(elapsed),
           "results": results, "instructions": counts, "footprint": footprint(),
           "long_prompts": long, "detector_accuracy": accuracy}
    # RESULTS.md and results.json are always one full run; partial or quick runs go to bench/out/.
    target = OUT if (args.quick or args.only) else BENCH
    target.mkdir(parents=True, exist_ok=True)
    (target / "results.json").write_text(json.dumps(raw, indent=1) + "\n")
    report = __import__("report")
    (target / "RESULTS.md").write_text(report.render(raw))
    log(f"wrote {target.relative_to(ROOT)}/RESULTS.md and results.json in {elapsed / 60:.1f} min")


def footprint():
    """What an air-gapped install carries: the release binaries as built, stripped (as the images
    ship them), and gzip-compressed (as a registry stores the layer); the PII detector module;
    the two images' bases estimated."""
    import gzip
    rows = []
    for name, path in (("llmkube-gateway", REL / "llmkube-gateway"),
                       ("llmkube-gateway-static", STATIC_GATEWAY),
                       ("llmkube-controller", REL / "llmkube-controller"),
                       ("llmkube_pii_detector.wasm", WASM / "llmkube_pii_detector.wasm")):
        if not path.exists():
            continue
        row = {"artifact": name, "bytes": path.stat().st_size}
        if path.suffix != ".wasm":
            stripped = OUT / f"{name}.stripped"
            sh(["objcopy", "--strip-all", str(path), str(stripped)])
            row["stripped_bytes"] = stripped.stat().st_size
            data = stripped.read_bytes()
        else:
            data = path.read_bytes()
        row["gzip_bytes"] = len(gzip.compress(data, 6))
        rows.append(row)
    return {"artifacts": rows, "distroless_cc_estimate": distroless_estimate(DISTROLESS_CC),
            "distroless_static_estimate": distroless_estimate(DISTROLESS_STATIC)}


# What gcr.io/distroless/static-debian12 and cc-debian12 are built from (their Bazel rules), as
# Debian 12 packages; cc is static plus the C and C++ runtimes.
DISTROLESS_STATIC = ["base-files", "ca-certificates", "tzdata", "netbase"]
DISTROLESS_CC = [*DISTROLESS_STATIC, "libc6", "libssl3", "libgcc-s1", "libgomp1", "libstdc++6"]


def distroless_estimate(packages):
    """An image's base, estimated without a registry: the files of the Debian 12 packages it is
    made of, as installed here, without the documentation that distroless leaves out. Bytes,
    and the packages not installed here (then a lower bound)."""
    total, missing = 0, []
    skip = ("/usr/share/doc/", "/usr/share/man/", "/usr/share/info/", "/usr/share/lintian/",
            "/usr/share/locale/")
    for pkg in packages:
        listed = subprocess.run(["dpkg", "-L", pkg], capture_output=True, text=True)
        if listed.returncode != 0:
            missing.append(pkg)
            continue
        for f in listed.stdout.splitlines():
            path = Path(f)
            if not f.startswith(skip) and path.is_file() and not path.is_symlink():
                total += path.stat().st_size
    return {"bytes": total, "packages": packages, "missing": missing}


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024 // 1024
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": mem, "kernel": platform.release(),
            "os": platform.platform()}


def versions():
    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip() or \
                subprocess.run(cmd, capture_output=True, text=True, timeout=60).stderr.strip()
        except Exception as e:  # noqa: BLE001 - a missing tool is reported, not fatal
            return f"unknown ({e})"
    return {
        "rustc": out(["rustc", "--version"]),
        "llmkube-gateway": out([str(REL / "llmkube-gateway"), "--version"]),
        "nginx": subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip(),
        "litellm": LITELLM_VERSION,
        "portkey": PORTKEY_VERSION,
        "node": out(["node", "--version"]),
        "python": platform.python_version(),
    }


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH))
    main()
