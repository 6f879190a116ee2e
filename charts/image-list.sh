#!/usr/bin/env bash
# Prints every image a site must mirror for the given Helm values (Step 1 of the air-gapped
# install): the controller, and everything the controller will deploy (gateway, model
# downloader, inference runtimes), as the chart really renders them.
#
#   charts/image-list.sh                          # chart defaults
#   charts/image-list.sh -f my-values.yaml        # your site's values (any helm template flags)
set -euo pipefail
chart="$(cd "$(dirname "$0")/llmkube" && pwd)"
helm template llmkube "$chart" "$@" | python3 -c '
import sys, yaml
images = set()
for doc in yaml.safe_load_all(sys.stdin):
    if not doc or doc.get("kind") != "Deployment":
        continue
    pod = doc["spec"]["template"]["spec"]
    for c in pod.get("initContainers", []) + pod.get("containers", []):
        images.add(c["image"])
        for arg in c.get("args", []):
            flag, _, value = arg.partition("=")
            if flag.endswith("-image") and value:
                images.add(value)
print("\n".join(sorted(images)))
'
