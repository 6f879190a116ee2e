#!/usr/bin/env bash
# The seed's air-gapped install rehearsed for real on loopback, no Kubernetes:
#   1. a tiny random-weight llama GGUF (make_tiny_gguf.py, the `gguf` package);
#   2. served by an internal HTTPS model server under a CA made for this run;
#   3. fetched by the operator's own model-downloader script, with that CA, the https:// source
#      and its sha256 -- and once more with a wrong sha256, which must refuse the file;
#   4. served by a real llama.cpp `llama-server` (built once, cached outside the checkout) with
#      the arguments the operator's InferenceService builder produces (operator example
#      `runtime_plan`, not retyped);
#   5. behind the gateway with the seed's secure-router (plus one rule sending complex tasks to
#      the cloud tier), whose `internal-litellm` is a real LiteLLM proxy with its master key from
#      the router's Secret;
#   6. driven by the official openai SDK (drive.py): tokens streamed from llama.cpp with usage, a
#      pii request kept local, a complex one answered by LiteLLM, and 503 fail-closed once
#      llama.cpp is stopped.
# Prints the timings of model download, llama.cpp start and first token through the gateway.
# Needs: python3 with requirements.txt, openssl, curl, sha256sum, a C++ toolchain (first run).
# LiteLLM and llama.cpp are installed/built on first use into ~/.cache/llmkube (prepare.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
here=examples/rehearsal
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
ms() { python3 -c "print(round(($2 - $1) * 1000))"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # URL SECONDS [PID that must stay alive]
    for _ in $(seq 1 $(($2 * 10))); do
        curl -fs -o /dev/null "$1" && return 0
        if [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null; then
            echo "the process serving $1 exited" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "no answer from $1 within $2 s" >&2
    return 1
}
step() { printf '\n--> %s\n' "$*"; }

step "llama.cpp llama-server (built once per machine)"
llama_server=$("$here/prepare.sh" llama-server)
echo "$llama_server"

step "1. a tiny random-weight GGUF"
mkdir -p "$work/srv" "$work/pod/models"
python3 "$here/make_tiny_gguf.py" "$work/srv/tiny.gguf"
sha=$(sha256sum "$work/srv/tiny.gguf" | cut -d' ' -f1)
echo "tiny.gguf: $(wc -c < "$work/srv/tiny.gguf") bytes, sha256 $sha"

step "2. an internal HTTPS model server under a CA made for this run"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=rehearsal CA" \
    -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=model-server" \
    -keyout "$work/srv.key" -out "$work/srv.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$work/san.ext"
openssl x509 -req -in "$work/srv.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
    -days 1 -extfile "$work/san.ext" -out "$work/srv.crt" 2>/dev/null
python3 "$here/model_server.py" "$work/srv" "$work/srv.crt" "$work/srv.key" "$work/srv.port" &
pids+=($!)
for _ in $(seq 50); do [ -s "$work/srv.port" ] && break; sleep 0.1; done
source_url="https://127.0.0.1:$(cat "$work/srv.port")/tiny.gguf"
curl -fsS --cacert "$work/ca.crt" -o /dev/null "$source_url" && echo "serving $source_url (trusted through the run's CA only)"
: > "$work/model-server.log"

llama_port=$(free_port)
cat > "$work/manifests.yaml" <<YAML
apiVersion: inference.llmkube.dev/v1alpha1
kind: Model
metadata: { name: llama-3-8b }
spec: { source: "$source_url", format: gguf, sha256: "$sha" }
---
apiVersion: inference.llmkube.dev/v1alpha1
kind: InferenceService
metadata: { name: llama-3-8b }
spec: { modelRef: llama-3-8b, runtime: llamacpp, contextSize: 256, parallelSlots: 2, jinja: true, containerPort: $llama_port }
YAML
# The whole workspace's binaries and examples at once: the same feature set as `cargo test
# --workspace`, so after the tests (as in .ci/run) nothing is compiled again (`-p` alone would
# resolve other features and rebuild wasmtime and cranelift).
cargo build -q --locked --workspace --bins --examples
plan=$(target/debug/examples/runtime_plan "$work/manifests.yaml")
field() { python3 -c 'import json,sys; v=json.loads(sys.argv[1]); [v := v[k] for k in sys.argv[2:]]; print(v if isinstance(v, str) else "\n".join(v))' "$plan" "$@"; }
model_dir=$(field model_dir)
# The pod's paths, rooted in the work directory.
in_pod() { sed "s#^$model_dir#$work/pod$model_dir#"; }

step "3. the operator's model-downloader, as its init container runs it"
downloader=operator/src/reconcile/model-downloader.sh
dest=$(field downloader_env DEST | in_pod)
t0=$(now)
SOURCE=$(field downloader_env SOURCE) DEST="$dest" SHA256=$(field downloader_env SHA256) \
    CA_FILE="$work/ca.crt" TERMINATION_LOG="$work/termination.log" sh "$downloader"
download_ms=$(ms "$t0" "$(now)")
grep -q "\"sha256\":\"$sha\"" "$work/termination.log"
echo "verdict: $(cat "$work/termination.log")"

wrong=$(printf '0%.0s' $(seq 64))
bad_dest="$work/pod/models/refused/tiny.gguf"
set +e
SOURCE=$(field downloader_env SOURCE) DEST="$bad_dest" SHA256="$wrong" CA_FILE="$work/ca.crt" \
    TERMINATION_LOG="$work/termination-bad.log" sh "$downloader"
rc=$?
set -e
if [ "$rc" -ne 65 ] || [ -e "$bad_dest" ] || [ -e "$bad_dest.part" ] \
    || ! grep -q '"error":"sha256 mismatch"' "$work/termination-bad.log"; then
    echo "a wrong sha256 was not refused (exit $rc)" >&2
    exit 1
fi
echo "wrong sha256 refused: exit $rc, nothing handed over; verdict: $(cat "$work/termination-bad.log")"

step "4. llama-server with the builder's arguments"
mapfile -t args < <(field runtime_args | in_pod)
echo "llama-server ${args[*]}"
t0=$(now)
"$llama_server" "${args[@]}" > "$work/llama.log" 2>&1 &
llama_pid=$!
pids+=($llama_pid)
wait_http "http://127.0.0.1:$llama_port/health" 120 "$llama_pid" || { tail -20 "$work/llama.log"; exit 1; }
llama_ms=$(ms "$t0" "$(now)")

step "5. LiteLLM (the seed's internal cloud tier) and the gateway with the seed's router"
litellm_venv=$("$here/prepare.sh" litellm)
master="sk-rehearsal-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
mkdir -p "$work/secrets/litellm-key"
printf '%s' "$master" > "$work/secrets/litellm-key/LITELLM_MASTER_KEY"
litellm_port=$(free_port)
cat > "$work/litellm.yaml" <<YAML
model_list:
  - model_name: internal-claude-clone
    litellm_params: { model: openai/internal-claude-clone, api_key: unused, mock_response: "Hello from the internal LiteLLM" }
litellm_settings: { telemetry: false, turn_off_message_logging: true }
general_settings: { master_key: "$master", disable_spend_logs: true }
YAML
LITELLM_LOG=ERROR LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_TELEMETRY=False \
    "$litellm_venv/bin/litellm" --config "$work/litellm.yaml" --host 127.0.0.1 --port "$litellm_port" --num_workers 1 \
    > "$work/litellm.log" 2>&1 &
pids+=($!)
python3 - "$work/router.yaml" <<'PY'
import sys
seed = open("examples/seed/secure-router.yaml").read()
rule = """    # Rehearsal addition: complex tasks may use the internal cloud tier.
    - name: complex-to-internal-cloud
      match: { taskComplexity: complex }
      route: { backends: [internal-litellm] }
"""
head, tail = seed.split("  defaultRoute:")
open(sys.argv[1], "w").write(head + rule + "  defaultRoute:" + tail)
PY
gateway_port=$(free_port)
target/debug/llmkube-gateway --router "$work/router.yaml" --listen "127.0.0.1:$gateway_port" \
    --backend-address "local-llama=http://127.0.0.1:$llama_port" \
    --backend-address "internal-litellm=http://127.0.0.1:$litellm_port" \
    --credentials-dir "$work/secrets" > "$work/gateway.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$gateway_port/readyz" 30
wait_http "http://127.0.0.1:$litellm_port/health/liveliness" 180 || { tail -20 "$work/litellm.log"; exit 1; }

step "6. the openai SDK through the gateway"
facts=$(GATEWAY="http://127.0.0.1:$gateway_port/v1" python3 "$here/drive.py")
echo "$facts"
kill "$llama_pid"
wait "$llama_pid" 2>/dev/null || true
GATEWAY="http://127.0.0.1:$gateway_port/v1" python3 "$here/drive.py" --after-stop
first_ms=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["first_token_ms"])' "$facts")
echo
echo "rehearsal ok: model download ${download_ms} ms, llama.cpp start ${llama_ms} ms, first token through the gateway ${first_ms} ms"
