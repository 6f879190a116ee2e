"""Validates every YAML document on stdin strictly (no unknown fields) against the upstream
Kubernetes schemas of each version named in the arguments, which kubernetes-validate carries
offline; `latest` is the newest it knows. Prints one line per invalid object and a summary;
exits 1 when any object is invalid. Used by operator/tests/render.rs."""
import sys

import kubernetes_validate
import yaml
from kubernetes_validate.utils import latest_version

versions = [latest_version() if v == "latest" else v for v in sys.argv[1:]]
docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
invalid = 0
for version in versions:
    for doc in docs:
        name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            invalid += 1
            where = "/".join(str(p) for p in e.path)
            print(f"{version} {name}: {e.message} (at {where})")
        except kubernetes_validate.SchemaNotFoundError as e:
            invalid += 1
            print(f"{version} {name}: no schema: {e}")
print(f"{len(docs)} objects against Kubernetes {', '.join(versions)}: {invalid} invalid")
sys.exit(1 if invalid else 0)
