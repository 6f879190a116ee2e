//! The CRDs the chart installs are generated from the Rust types, stay structural, describe
//! every field, and do not drift from what is committed.
//! Regenerate with `LLMKUBE_BLESS=1 cargo test -p llmkube-operator --test crds`.
#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is what it is for

use std::path::PathBuf;

use llmkube_operator::crd::crds;
use serde_json::Value;

fn chart_crd_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../charts/llmkube/crds"
    ))
}

#[test]
fn committed_crds_match_the_types() {
    let bless = std::env::var_os("LLMKUBE_BLESS").is_some();
    for crd in crds() {
        let file = chart_crd_dir().join(format!("{}.yaml", crd.metadata.name.as_deref().unwrap()));
        let yaml = format!(
            "# Generated from llmkube-operator's types: LLMKUBE_BLESS=1 cargo test -p llmkube-operator --test crds\n{}",
            serde_yaml_ng::to_string(&crd).unwrap()
        );
        if bless {
            std::fs::write(&file, &yaml).unwrap();
        }
        let committed = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            committed == yaml,
            "{} drifted from the types; regenerate with LLMKUBE_BLESS=1",
            file.display()
        );
    }
}

/// Walks a schema; `path` names the node in failure messages.
fn walk(node: &Value, path: &str, problems: &mut Vec<String>, needs_description: bool) {
    let Some(obj) = node.as_object() else { return };
    if obj.contains_key("$ref") {
        problems.push(format!("{path}: $ref is not allowed in a CRD"));
    }
    let int_or_string = obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    let preserve = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if !obj.contains_key("type") && !int_or_string && !preserve {
        problems.push(format!("{path}: no type"));
    }
    if obj.contains_key("anyOf") && !int_or_string {
        problems.push(format!("{path}: anyOf outside int-or-string"));
    }
    if needs_description && !obj.contains_key("description") {
        problems.push(format!("{path}: no description"));
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            walk(child, &format!("{path}.{name}"), problems, true);
        }
    }
    if let Some(items) = obj.get("items") {
        walk(items, &format!("{path}[]"), problems, false);
    }
    if let Some(extra) = obj.get("additionalProperties").filter(|v| v.is_object()) {
        walk(extra, &format!("{path}{{}}"), problems, false);
    }
}

#[test]
fn schemas_are_structural_and_every_field_is_described() {
    for crd in crds() {
        let name = crd.spec.names.kind.clone();
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{name}: status subresource"
        );
        assert!(
            version
                .additional_printer_columns
                .as_ref()
                .is_some_and(|c| c.len() >= 3),
            "{name}: printer columns"
        );
        let schema = serde_json::to_value(
            version
                .schema
                .as_ref()
                .unwrap()
                .open_api_v3_schema
                .as_ref()
                .unwrap(),
        )
        .unwrap();
        let mut problems = Vec::new();
        for part in ["spec", "status"] {
            walk(
                &schema["properties"][part],
                &format!("{name}.{part}"),
                &mut problems,
                false,
            );
        }
        assert!(problems.is_empty(), "{name}:\n{}", problems.join("\n"));
    }
}

#[test]
fn the_seed_manifests_deserialise_into_the_kinds() {
    use llmkube_operator::crd::model::{Model, ModelFormat};
    use llmkube_router::spec::ModelRouter;
    let pvc_model = "apiVersion: inference.llmkube.dev/v1alpha1
kind: Model
metadata: { name: llama-3-8b, namespace: default }
spec:
  source: pvc://model-cache/llama-3.1-8b-q4_k_m.gguf
  format: gguf
";
    let m: Model = serde_yaml_ng::from_str(pvc_model).unwrap();
    assert_eq!(m.spec.format, Some(ModelFormat::Gguf));
    let hf: Model = serde_yaml_ng::from_str(
        "apiVersion: inference.llmkube.dev/v1alpha1\nkind: Model\nmetadata: {name: m}\nspec:\n  source: meta-llama/Meta-Llama-3.1-8B-Instruct\n  format: hf-repo\n",
    )
    .unwrap();
    assert_eq!(hf.spec.format, Some(ModelFormat::HfRepo));
    let router: ModelRouter =
        serde_yaml_ng::from_str(include_str!("../../examples/seed/secure-router.yaml")).unwrap();
    assert_eq!(router.spec.rules[0].name, "pii-stays-local");
}
