#!/usr/bin/env bash
# Profiles the gateway's hot path: the `llmkube-rules-pii` subject of bench/run.py under
# closed-loop load (16 clients), sampled with perf. Prints the top symbols by self time.
#   bench/profile.sh [plain|rules|rules-pii] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
subject=${1:-rules-pii}
secs=${2:-5}
out=bench/out
rel=target/release
[ -f "$out/llmkube-$subject.yaml" ] || { echo "run python3 bench/run.py --quick first (it writes $out/llmkube-$subject.yaml)" >&2; exit 1; }
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
taskset -c 0 $rel/llmkube-mock-upstream --listen 127.0.0.1:18000 --chunks 16 --threads 1 2>/dev/null &
pids+=($!)
taskset -c 0 $rel/llmkube-mock-upstream --listen 127.0.0.1:18001 --threads 1 2>/dev/null &
pids+=($!)
LLMKUBE_LOG=warn taskset -c 1 $rel/llmkube-gateway --router "$out/llmkube-$subject.yaml" --listen 127.0.0.1:18100 \
    --backend-address fast=http://127.0.0.1:18000 --backend-address slow=http://127.0.0.1:18001 \
    --policy-dir target/wasm32-unknown-unknown/release --no-watch &
gw=$!
pids+=($gw)
sleep 1
prompt="You are a helpful assistant for the platform team. Summarise the following change request in two sentences and list any risk you see: upgrade the inference nodes to the new driver, drain one node at a time, keep the router serving, and roll back if the error rate rises above one percent."
taskset -c 0 $rel/llmkube-bench --url http://127.0.0.1:18100/v1/chat/completions --concurrency 16 \
    --duration "$((secs + 2))s" --warmup 1s --prompt "$prompt" >"$out/profile-load.json" &
pids+=($!)
sleep 1.5
perf record -F 2999 -g -o "$out/perf-$subject.data" -p "$gw" -- sleep "$secs" 2>/dev/null
wait "${pids[-1]}"
perf report -i "$out/perf-$subject.data" --stdio --no-children --sort symbol --percent-limit 0.7 2>/dev/null \
    | grep -v '^$' | grep -E '^ +[0-9]' | head -40
echo "load: $(cat "$out/profile-load.json")"
