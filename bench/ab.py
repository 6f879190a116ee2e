#!/usr/bin/env python3
"""A/B of two gateway settings, interleaved: `python3 bench/ab.py SUBJECT "A ARGS" "B ARGS" [rounds]`.

Runs of one setting minutes apart on this VM differ by 15% or more; alternating A and B in
rounds (each a fresh gateway: 5 s at 16 clients, 5 s at one client, 5 s of streams at 16
clients) puts the drift on both. Prints each run and the medians; extra arguments are appended
to the subject's command line, and a first argument `bin=PATH` runs another build, e.g.
    python3 bench/ab.py llmkube-rules-pii "" "--worker-threads 2"
    python3 bench/ab.py llmkube-rules-pii "" "bin=target/x86_64-unknown-linux-musl/release/llmkube-gateway"
"""

import json
import shlex
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402 - the subjects and process helpers live there


def one(subject, extra):
    cmd = list(subject["cmd"])
    if extra and extra[0].startswith("bin="):
        cmd[0], extra = extra[0].removeprefix("bin="), extra[1:]
    s = dict(subject, cmd=[*cmd, *extra])
    proc = run.spawn(s["cmd"], run.SUBJECT_CORE, s["name"] + "-ab", env=s["env"])
    try:
        run.wait_port(s["port"], proc)
        run.drive(s, duration=1, warmup=0)
        return {
            "c16": run.drive(s, concurrency=16, duration=5)["rps"],
            "c1_p50": run.drive(s, concurrency=1, duration=5)["latency_us"]["p50"],
            "stream_c16": run.drive(s, stream=True, concurrency=16, duration=5)["rps"],
        }
    finally:
        run.stop(proc)


def main():
    name, a, b = sys.argv[1], shlex.split(sys.argv[2]), shlex.split(sys.argv[3])
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    subject = {s["name"]: s for s in run.all_subjects()}[name]
    run.OUT.mkdir(parents=True, exist_ok=True)
    mocks = run.start_mocks()
    results = {"A": [], "B": []}
    try:
        for r in range(rounds):
            for label, extra in (("A", a), ("B", b)) if r % 2 == 0 else (("B", b), ("A", a)):
                results[label].append(one(subject, extra))
                print(label, json.dumps(results[label][-1]), flush=True)
    finally:
        for m in mocks:
            run.stop(m)
    for label, args in (("A", a), ("B", b)):
        runs = results[label]
        medians = {k: statistics.median(x[k] for x in runs) for k in runs[0]}
        print(f"{label} {' '.join(args) or '(defaults)'}: {json.dumps(medians)}")


if __name__ == "__main__":
    main()
