#!/usr/bin/env bash
# Builds the tenant allowlist for wasm32, runs its fixtures on the built module under the
# gateway's production limits, and pins the module's sha256 in router.yaml.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q --release --target wasm32-unknown-unknown -p llmkube-tenant-allowlist
wasm=target/wasm32-unknown-unknown/release/llmkube_tenant_allowlist.wasm
cargo run -q -p llmkube-gateway -- policy-test --module "$wasm" --fixtures examples/custom-policy/fixtures/tenants.json
sha=$(sha256sum "$wasm" | cut -d' ' -f1)
sed -i "s/^\(      sha256: \)[0-9a-f]\{64\}$/\1$sha/" examples/custom-policy/router.yaml examples/custom-policy/cluster-router.yaml
echo "pinned sha256 $sha in examples/custom-policy/router.yaml"
