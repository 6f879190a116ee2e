#!/usr/bin/env bash
# End-to-end on a real (kind) cluster: build the images, install the chart, serve a tiny model
# with llama.cpp, put a ModelRouter in front of it, call it, and change its rules live.
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

step "helm install (CRDs, controller, RBAC)"
# kind has no GPUs: the CPU llama.cpp server image.
helm upgrade --install llmkube charts/llmkube -n llmkube-system --create-namespace \
    --set controllerManager.image.repository=llmkube-controller \
    --set controllerManager.image.tag=$tag \
    --set controllerManager.routerProxy.repository=llmkube-gateway \
    --set controllerManager.routerProxy.tag=$tag \
    --set controllerManager.runtimeImages.llamacpp.tag=server \
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
kubectl get models,inferenceservices

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
