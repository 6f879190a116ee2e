#!/usr/bin/env bash
# Quickstart: llmkube-gateway on loopback in front of two mock OpenAI-compatible backends,
# one standing in for a local llama.cpp server (tier local) and one for an internal LiteLLM
# proxy (tier cloud). Shows routing by classification, fail-closed, API keys and a token budget
# running out, with the curl lines to try yourself.
#
#   examples/quickstart/demo.sh          run the demo, then stop everything
#   examples/quickstart/demo.sh --keep   leave the gateway and mocks running (Ctrl-C stops them)
#
# Ports (override with env): GATEWAY_PORT=18080 LOCAL_PORT=18081 CLOUD_PORT=18082
# METRICS_PORT=18089.
# The cloud mock's port is also written in examples/quickstart/router.yaml.
set -euo pipefail

cd "$(dirname "$0")/../.."
GATEWAY_PORT=${GATEWAY_PORT:-18080}
LOCAL_PORT=${LOCAL_PORT:-18081}
CLOUD_PORT=${CLOUD_PORT:-18082}
METRICS_PORT=${METRICS_PORT:-18089}
KEEP=${1:-}
GW="http://127.0.0.1:${GATEWAY_PORT}"
LOG_DIR=$(mktemp -d)
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }

# Quotes an argument for copy-paste when it needs quoting.
quote() {
    if [[ $1 =~ ^[A-Za-z0-9_./:=@,-]+$ ]]; then
        printf '%s' "$1"
    else
        printf "'%s'" "$1"
    fi
}

# Runs a curl command, showing it first; prints the status and the (shortened) body.
show() {
    printf '$'
    for arg in "$@"; do printf ' %s' "$(quote "$arg")"; done
    printf '\n'
    local out status
    out=$("$@" -sS -w '\n%{http_code}') || true
    status=${out##*$'\n'}
    printf '  -> HTTP %s  %s\n' "$status" "$(printf '%s' "${out%$'\n'*}" | tr -d '\n' | cut -c1-220)"
}

wait_for() {
    for _ in $(seq 1 100); do
        curl -fsS "$1" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "timed out waiting for $1" >&2
    exit 1
}

bold "Building llmkube-gateway, the mock backends and the PII detector policy (first build takes a few minutes)"
rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
# CI passes the feature set its tests built (--workspace --bins --examples): nothing recompiles.
# shellcheck disable=SC2086
cargo build -q ${LLMKUBE_DEMO_BUILD:--p llmkube-gateway -p llmkube-mock-upstream}
cargo build -q --release --target wasm32-unknown-unknown -p llmkube-pii-detector
TARGET=${CARGO_TARGET_DIR:-target}
BIN=$TARGET/debug

"$BIN/llmkube-mock-upstream" --listen "127.0.0.1:${LOCAL_PORT}" --name local-llama 2>"$LOG_DIR/local.log" &
LOCAL_PID=$!
PIDS+=("$LOCAL_PID")
"$BIN/llmkube-mock-upstream" --listen "127.0.0.1:${CLOUD_PORT}" --name internal-litellm 2>"$LOG_DIR/cloud.log" &
PIDS+=($!)

# API keys: the router holds only their SHA-256 digests (Secret quickstart-keys).
RESEARCH_KEY=sk-demo-research
INTERN_KEY=sk-demo-intern
mkdir -p "$LOG_DIR/credentials/quickstart-keys"
digest() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
cat >"$LOG_DIR/credentials/quickstart-keys/keys.yaml" <<YAML
- { principal: alice@example.org, team: research, sha256: $(digest "$RESEARCH_KEY") }
- { principal: ivan@example.org, team: interns, sha256: $(digest "$INTERN_KEY") }
YAML
KEY=(-H "authorization: Bearer $RESEARCH_KEY")

ROUTER=examples/quickstart/router.yaml
if [ "$CLOUD_PORT" != 18082 ]; then
    ROUTER="$LOG_DIR/router.yaml"
    sed "s/127.0.0.1:18082/127.0.0.1:${CLOUD_PORT}/" examples/quickstart/router.yaml >"$ROUTER"
fi
"$BIN/llmkube-gateway" --router "$ROUTER" --listen "127.0.0.1:${GATEWAY_PORT}" \
    --backend-address "local-llama=http://127.0.0.1:${LOCAL_PORT}" \
    --policy-dir "$TARGET/wasm32-unknown-unknown/release" \
    --credentials-dir "$LOG_DIR/credentials" --metrics-listen "127.0.0.1:${METRICS_PORT}" \
    >"$LOG_DIR/audit.log" 2>"$LOG_DIR/gateway.log" &
PIDS+=($!)
wait_for "$GW/readyz"
echo "gateway: $GW   (audit lines: $LOG_DIR/audit.log, logs: $LOG_DIR/gateway.log)"

bold "1. Published models (ids usable as 'model' under BackendNameMatch)"
show curl "$GW/v1/models" "${KEY[@]}"

bold "2. A normal request goes to the default route (the cloud-tier LiteLLM mock)"
show curl "$GW/v1/chat/completions" "${KEY[@]}" -H 'content-type: application/json' \
    -d '{"model":"any","messages":[{"role":"user","content":"hello"}]}'

bold "3. The same request classified pii stays on the local backend"
show curl "$GW/v1/chat/completions" "${KEY[@]}" -H 'content-type: application/json' \
    -H 'x-llmkube-classification: pii' \
    -d '{"model":"any","messages":[{"role":"user","content":"my SSN is 078-05-1120"}]}'

bold "4. No classification header, but the prompt holds a card number: the PII detector (WebAssembly) keeps it local"
show curl "$GW/v1/chat/completions" "${KEY[@]}" -H 'content-type: application/json' \
    -d '{"model":"any","messages":[{"role":"user","content":"charge my card 4111 1111 1111 1111"}]}'

bold "5. Streaming (SSE passes through chunk by chunk)"
show curl -N "$GW/v1/chat/completions" "${KEY[@]}" -H 'content-type: application/json' \
    -d '{"model":"llama-3-8b","stream":true,"messages":[{"role":"user","content":"hi"}]}'

bold "6. Who may use the router: no key and a wrong key get 401, an intern asking for the cloud tier 403"
show curl "$GW/v1/chat/completions" -H 'content-type: application/json' \
    -d '{"model":"any","messages":[{"role":"user","content":"hello"}]}'
show curl "$GW/v1/chat/completions" -H 'authorization: Bearer sk-guessed' -H 'content-type: application/json' \
    -d '{"model":"any","messages":[{"role":"user","content":"hello"}]}'
show curl "$GW/v1/chat/completions" -H "authorization: Bearer $INTERN_KEY" -H 'content-type: application/json' \
    -d '{"model":"any","messages":[{"role":"user","content":"hello"}]}'

bold "7. Complex tasks share a 40-token hourly budget: the third request finds it spent (429, Retry-After)"
for _ in 1 2 3; do
    show curl "$GW/v1/chat/completions" "${KEY[@]}" -H 'x-llmkube-task-complexity: high' \
        -H 'content-type: application/json' -d '{"model":"any","max_tokens":16,"messages":[{"role":"user","content":"plan a migration"}]}'
done
show curl "http://127.0.0.1:${METRICS_PORT}/budgets"

bold "8. The local backend goes down: the pii request fails closed (503), nothing reaches the cloud"
kill "$LOCAL_PID"
wait "$LOCAL_PID" 2>/dev/null || true
show curl "$GW/v1/chat/completions" "${KEY[@]}" -H 'content-type: application/json' \
    -H 'x-llmkube-classification: pii' \
    -d '{"model":"any","messages":[{"role":"user","content":"my SSN is 078-05-1120"}]}'

bold "9. Unclassified traffic keeps flowing to the cloud tier"
show curl "$GW/v1/chat/completions" "${KEY[@]}" -H 'content-type: application/json' \
    -d '{"model":"any","messages":[{"role":"user","content":"hello again"}]}'

bold "Audit log (one JSON line per request)"
sleep 0.2
cut -c1-240 "$LOG_DIR/audit.log"

bold "Metrics (excerpt of $GW/metrics)"
curl -sS "$GW/metrics" | grep -E '^llmkube_router_(requests_total|fail_closed_total|tokens_total|budget_refused_total)' || true

if [ "$KEEP" = "--keep" ]; then
    bold "Still running (the local mock is down). Try the curl lines above; Ctrl-C stops everything."
    wait
fi
