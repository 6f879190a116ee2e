#!/usr/bin/env bash
# End-to-end on a real (kind) cluster: build the images, install the chart with the model cache,
# serve a tiny model with llama.cpp, show a restarted pod finding it in the cache, check the
# sharding arguments of a two-GPU Model and a refused combination, put a ModelRouter in front,
# call it, and change its rules live.
# Documentation for users with Docker and internet access; not part of CI (no API server
# runs on the CI machines). Needs: docker, kind, kubectl, helm, curl.
#
#   examples/kind-e2e.sh            # run everything
#   kind delete cluster --name llmkube-e2e   # clean up
set -euo pipefail
cd "$(dirname "$0")/.."
cluster=llmkube-e2e
tag=e2e
step() { printf '\n==> %s\n' "$*"; }

step "kind cluster $cluster"
kind get clusters | grep -qx "$cluster" || kind create cluster --name "$cluster"
kubectl config use-context "kind-$cluster"

step "Building and loading the images"
docker build -f operator/Dockerfile -t "llmkube-controller:$tag" .
docker build -f gateway/Dockerfile -t "llmkube-gateway:$tag" .
kind load docker-image --name "$cluster" "llmkube-controller:$tag" "llmkube-gateway:$tag"

step "helm install (CRDs, controller, RBAC, the model cache with cleanup)"
# kind has no GPUs: the CPU llama.cpp server image. Its one node and `standard` (local-path)
# storage class take a ReadWriteOnce cache claim.
helm upgrade --install llmkube charts/llmkube -n llmkube-system --create-namespace \
    --set controllerManager.image.repository=llmkube-controller \
    --set controllerManager.image.tag=$tag \
    --set controllerManager.routerProxy.repository=llmkube-gateway \
    --set controllerManager.routerProxy.tag=$tag \
    --set controllerManager.runtimeImages.llamacpp.tag=server \
    --set modelCache.persistence.enabled=true \
    --set modelCache.persistence.size=1Gi \
    --set modelCache.persistence.accessMode=ReadWriteOnce \
    --set modelCache.persistence.cleanup=true \
    --wait
kubectl -n llmkube-system rollout status deploy/llmkube-controller-manager

step "A Model (https, verified by the model-downloader) and a llama.cpp InferenceService"
kubectl apply -f - <<'YAML'
apiVersion: inference.llmkube.dev/v1alpha1
kind: Model
metadata: { name: tiny, namespace: default }
spec:
  source: https://huggingface.co/ggml-org/models/resolve/main/tinyllamas/stories15M-q4_0.gguf
  format: gguf
---
apiVersion: inference.llmkube.dev/v1alpha1
kind: InferenceService
metadata: { name: tiny, namespace: default }
spec:
  modelRef: tiny
  runtime: llamacpp
  contextSize: 256
YAML
kubectl wait --for=jsonpath='{.status.phase}'=Ready model/tiny --timeout=2m
kubectl wait --for=jsonpath='{.status.phase}'=Ready inferenceservice/tiny --timeout=10m
kubectl wait --for=jsonpath='{.status.conditions[?(@.type=="Ready")].reason}'=Verified model/tiny --timeout=2m
kubectl get models,inferenceservices,pvc

step "The model cache: a restarted pod finds the file verified and downloads nothing"
key=$(kubectl get model tiny -o jsonpath='{.status.cacheKey}')
echo "cache key $key, path $(kubectl get model tiny -o jsonpath='{.status.path}')"
kubectl get pvc llmkube-model-cache -o jsonpath='{.status.phase}{"\n"}' | grep -qx Bound
kubectl rollout restart deploy/tiny
kubectl rollout status deploy/tiny --timeout=5m
kubectl wait --for=jsonpath='{.status.conditions[?(@.type=="Ready")].reason}'=Cached model/tiny --timeout=2m
kubectl logs deploy/tiny -c model-downloader | tail -n 3

step "Multi-GPU sharding: the two-GPU example's llama.cpp arguments, and a refused combination"
# Nothing schedules here (no GPUs); the Deployment's arguments are what the controller decided.
kubectl apply -f examples/multi-gpu/llama-70b-two-gpus.yaml
for _ in $(seq 60); do kubectl get deploy/llama-3-70b >/dev/null 2>&1 && break; sleep 1; done
args=$(kubectl get deploy/llama-3-70b -o jsonpath='{.spec.template.spec.containers[0].args}')
echo "$args"
for want in '"--split-mode","layer"' '"--tensor-split","48,32"' '"--main-gpu","0"'; do
    grep -qF -- "$want" <<<"$args" || { echo "expected $want in the llama.cpp arguments" >&2; exit 1; }
done
kubectl get inferenceservice llama-3-70b -o jsonpath='{.status.phase}{"\n"}'
kubectl patch model llama-3-70b --type=merge -p '{"spec":{"hardware":{"gpu":{"sharding":{"strategy":"tensor","layerSplit":null}}}}}'
kubectl wait --for=jsonpath='{.status.conditions[?(@.type=="Ready")].reason}'=InvalidSpec \
    inferenceservice/llama-3-70b --timeout=1m
kubectl get inferenceservice llama-3-70b \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].message}{"\n"}'

step "Model cache cleanup: a Job per set of keys the namespace's Models reference"
# The Job's name follows the sorted key set (see operator/src/reconcile/model_cache.rs). The
# tiny model's key is referenced; the 70B one's (never downloaded) directory does not exist.
keys=$(kubectl get models -o jsonpath='{range .items[*]}{.status.cacheKey}{"\n"}{end}' \
    | grep . | LC_ALL=C sort | paste -sd' ')
job=llmkube-model-cache-cleanup-$(printf '%s' "$keys" | sha256sum | cut -c1-10)
for _ in $(seq 60); do kubectl get "job/$job" >/dev/null 2>&1 && break; sleep 2; done
kubectl wait --for=condition=complete "job/$job" --timeout=3m
kubectl logs "job/$job" | tail -n 3
kubectl delete -f examples/multi-gpu/llama-70b-two-gpus.yaml

step "A ModelRouter in front of it (pii fails closed, stays local)"
kubectl apply -f - <<'YAML'
apiVersion: inference.llmkube.dev/v1alpha1
kind: ModelRouter
metadata: { name: e2e-router, namespace: default }
spec:
  backends:
    - { name: local-tiny, displayName: tiny, inferenceServiceRef: { name: tiny }, tier: local }
  rules:
    - name: pii-stays-local
      match: { dataClassification: [pii] }
      route: { backends: [local-tiny] }
      failClosed: true
  defaultRoute: local-tiny
YAML
kubectl wait --for=jsonpath='{.status.phase}'=Ready modelrouter/e2e-router --timeout=5m
kubectl get modelrouter e2e-router -o wide

step "Calling the gateway"
kubectl port-forward svc/e2e-router-router-proxy 18080:8080 >/dev/null 2>&1 &
pf=$!
trap 'kill $pf 2>/dev/null || true' EXIT
sleep 2
curl -sS http://127.0.0.1:18080/v1/models; echo
curl -sS -i http://127.0.0.1:18080/v1/chat/completions -H 'content-type: application/json' \
    -H 'x-llmkube-classification: pii' \
    -d '{"model":"tiny","max_tokens":16,"messages":[{"role":"user","content":"Once upon a time"}]}'
echo

step "The apply-time gate: a sensitive rule that may fall through is refused by the API server"
if kubectl patch modelrouter e2e-router --type=json \
    -p='[{"op":"replace","path":"/spec/rules/0/failClosed","value":false}]' 2>&1; then
    echo "expected the CEL gate to refuse this" >&2; exit 1
fi

step "A rule change is hot-swapped by the running gateway (no pod restart)"
pod=$(kubectl get pod -l inference.llmkube.dev/model-router=e2e-router -o name)
kubectl patch modelrouter e2e-router --type=json \
    -p='[{"op":"add","path":"/spec/rules/-","value":{"name":"code","match":{"taskComplexity":"code"},"route":{"backends":["local-tiny"]}}}]'
sleep 3
kubectl logs "$pod" | grep -m1 'router reloaded'
[ "$(kubectl get pod -l inference.llmkube.dev/model-router=e2e-router -o name)" = "$pod" ] && echo "same pod: $pod"
kubectl get modelrouter e2e-router -o jsonpath='{.status.activeRules}{"\n"}'
echo "e2e ok"
