"""Instructions per request, counted by callgrind: the bench's regression number.

Wall-clock figures on this 2-vCPU VM move by 10-30% between runs; callgrind's instruction
counts are the same for the same binary, inputs and environment. For each subject the server
runs under `valgrind --tool=callgrind`, takes 200 unmeasured requests (connection pools,
caches, lazily built state), has its counters zeroed, takes REQUESTS requests from one client,
and dumps: the dump's total over REQUESTS is the figure, every thread of the process included
(tokio workers, the epoch ticker, the audit writer). The top functions by self cost go to the
raw results, for finding the next lever.

Used by run.py; on its own: `python3 bench/instructions.py llmkube-rules-pii [--stream]`.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

REQUESTS = 1000
WARMUP = 200


def _send(rel, url, n, stream, headers, prompt, core):
    """`n` requests from one client on `core`; all must succeed."""
    cmd = ["taskset", "-c", core, str(rel / "llmkube-bench"), "--url", url, "--concurrency", "1",
           "--requests", str(n), "--model", "mock", "--prompt", prompt]
    if stream:
        cmd.append("--stream")
    for h in headers:
        cmd += ["-H", h]
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    if out["errors"] or out["ok"] != n:
        raise RuntimeError(f"{out['errors']} errors in {n} requests under callgrind")


def _top(dump, limit=25):
    """The functions with the largest self cost in a callgrind dump written with uncompressed
    names (callgrind_annotate 3.19 folds such a dump into `clone`, so it is read here). A cost
    line right after `calls=` is the call's inclusive cost, not the caller's own."""
    self_cost, fn, after_call = {}, None, False
    for line in dump.read_text(errors="replace").splitlines():
        if line.startswith("fn="):
            fn = line[3:]
        elif line.startswith("calls="):
            after_call = True
        elif line[:1].isdigit() or line[:1] in "+-*":
            if after_call:
                after_call = False
            elif fn is not None:
                parts = line.split()
                if len(parts) >= 2 and parts[1].isdigit():
                    self_cost[fn] = self_cost.get(fn, 0) + int(parts[1])
    total = sum(self_cost.values()) or 1
    ranked = sorted(self_cost.items(), key=lambda kv: -kv[1])[:limit]
    return [{"ir": ir, "percent": round(100 * ir / total, 2), "function": name[:160]} for name, ir in ranked]


def count(subject, *, stream, rel, out_dir, core, driver_core, prompt, wait_port, spawn, stop):
    """Instructions per request of `subject` (a run.py subject with a `cmd`)."""
    name = f"{subject['name']}{'-stream' if stream else ''}"
    dump = out_dir / f"callgrind-{name}.out"
    for old in out_dir.glob(f"callgrind-{name}.out*"):
        old.unlink()
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={dump}", "--compress-strings=no",
           "--compress-pos=no", *subject.get("callgrind_cmd", subject["cmd"])]
    proc = spawn(cmd, core, f"callgrind-{name}", env=subject["env"])
    try:
        wait_port(subject["port"], proc, timeout=300)
        url = subject["url"]
        _send(rel, url, WARMUP, stream, subject["headers"], prompt, driver_core)
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True,
                       timeout=120)
        started = time.time()
        _send(rel, url, REQUESTS, stream, subject["headers"], prompt, driver_core)
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True,
                       timeout=120)
        parts = sorted(out_dir.glob(f"callgrind-{name}.out.*"), key=lambda p: int(p.suffix[1:]))
        last = parts[-1]
        total = next(int(line.split()[1]) for line in last.read_text().splitlines()
                     if line.startswith("summary:") or line.startswith("totals:"))
        return {"subject": subject["name"], "stream": stream, "requests": REQUESTS,
                "instructions_per_request": round(total / REQUESTS),
                "seconds_under_callgrind": round(time.time() - started, 1), "top": _top(last)}
    finally:
        stop(proc)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import run  # noqa: E402 - the subjects and process helpers live there

    run.OUT.mkdir(parents=True, exist_ok=True)
    wanted = sys.argv[1]
    subjects = {s["name"]: s for s in run.all_subjects()}
    mocks = run.start_mocks()
    try:
        r = count(subjects[wanted], stream="--stream" in sys.argv, rel=run.REL, out_dir=run.OUT,
                  core=run.SUBJECT_CORE, driver_core=run.DRIVER_CORE, prompt=run.PROMPT, wait_port=run.wait_port, spawn=run.spawn,
                  stop=run.stop)
        print(json.dumps({k: v for k, v in r.items() if k != "top"}))
        for t in r["top"]:
            print(f"{t['ir'] / REQUESTS:>10.0f}  {t['percent']:5.1f}%  {t['function']}")
    finally:
        for m in mocks:
            run.stop(m)
