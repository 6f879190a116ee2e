//! The seed's manifests in `examples/seed/` parse strictly (no unknown fields), validate, and
//! lead to the objects the seed promises.
#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is what it is for

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use llmkube_operator::crd::inference_service::InferenceService;
use llmkube_operator::crd::model::Model;
use llmkube_operator::reconcile::inference_service::{Settings, deployment, service};
use llmkube_operator::reconcile::model::{Source, parse_source};
use llmkube_router::manifest::load_router;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Every YAML document of every file in examples/seed, with its file name.
fn documents() -> Vec<(String, serde_yaml_ng::Value, String)> {
    documents_in("seed")
}

/// Every YAML document of every file in examples/`dir`, with its file name.
fn documents_in(dir: &str) -> Vec<(String, serde_yaml_ng::Value, String)> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/")).join(dir);
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    files.sort_by_key(|f| f.file_name());
    for f in files {
        let name = f.file_name().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(f.path()).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let value = serde_yaml_ng::Value::deserialize(doc).unwrap();
            out.push((name.clone(), value, text.clone()));
        }
    }
    out
}

/// Deserialises `value`, failing on any field the type does not know.
fn strict<T: DeserializeOwned>(file: &str, value: &serde_yaml_ng::Value) -> T {
    let mut unknown = Vec::new();
    let parsed: T =
        serde_ignored::deserialize(value.clone(), |path| unknown.push(path.to_string()))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    // The kube derive reads apiVersion and kind outside serde's view.
    unknown.retain(|p| p != "apiVersion" && p != "kind");
    assert!(unknown.is_empty(), "{file}: unknown fields {unknown:?}");
    parsed
}

#[test]
fn the_seed_manifests_parse_validate_and_build() {
    let mut models = BTreeMap::new();
    let mut services = Vec::new();
    let mut kinds = Vec::new();
    for (file, value, text) in documents() {
        let kind = value["kind"].as_str().unwrap_or_default().to_owned();
        kinds.push(kind.clone());
        match kind.as_str() {
            "Model" => {
                let m: Model = strict(&file, &value);
                let source = parse_source(&m.spec).unwrap_or_else(|e| panic!("{file}: {e}"));
                if let Some(sha) = &m.spec.sha256 {
                    assert!(
                        sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
                        "{file}"
                    );
                }
                if file == "model-hf-repo.yaml" {
                    assert!(matches!(source, Source::HfRepo(_)));
                }
                models.insert(m.metadata.name.clone().unwrap(), m);
            }
            "InferenceService" => {
                let isvc: InferenceService = strict(&file, &value);
                services.push((file, isvc));
            }
            "ModelRouter" => {
                load_router(&text, None).unwrap_or_else(|e| panic!("{file}: {e}"));
            }
            "PersistentVolumeClaim" => {
                let _: PersistentVolumeClaim = strict(&file, &value);
            }
            other => panic!("{file}: unexpected kind {other}"),
        }
    }
    // What examples/air-gapped-values.yaml allows: the file:// example's host directory.
    let settings = Settings {
        allowance: llmkube_operator::reconcile::admission::Allowance {
            model_host_paths: vec!["/mnt/models".into()],
            ..Default::default()
        },
        ..Settings::default()
    };
    for (file, isvc) in services {
        let model = models
            .get(&isvc.spec.model_ref)
            .unwrap_or_else(|| panic!("{file}: no example Model {:?}", isvc.spec.model_ref));
        deployment(&isvc, model, &settings).unwrap_or_else(|e| panic!("{file}: {e}"));
        service(&isvc, &Settings::default()).unwrap();
    }
    for router in [
        "custom-policy/cluster-router.yaml",
        "quickstart/router.yaml",
    ] {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/").to_owned() + router;
        let text = std::fs::read_to_string(&path).unwrap();
        load_router(&text, None).unwrap_or_else(|e| panic!("{router}: {e}"));
    }
    kinds.sort();
    kinds.dedup();
    assert_eq!(
        kinds,
        [
            "InferenceService",
            "Model",
            "ModelRouter",
            "PersistentVolumeClaim"
        ]
    );
}

#[test]
fn the_two_gpu_example_splits_a_70b_model_by_layer() {
    let docs = documents_in("multi-gpu");
    let model: Model = strict(&docs[0].0, &docs[0].1);
    let isvc: InferenceService = strict(&docs[1].0, &docs[1].1);
    let d = deployment(&isvc, &model, &Settings::default()).unwrap();
    let pod = d.spec.unwrap().template.spec.unwrap();
    let runtime = &pod.containers[0];
    let args = runtime.args.clone().unwrap().join(" ");
    assert!(
        args.contains("--n-gpu-layers 999 --split-mode layer --tensor-split 48,32 --main-gpu 0"),
        "{args}"
    );
    let limits = runtime.resources.clone().unwrap().limits.unwrap();
    assert_eq!(limits["nvidia.com/gpu"].0, "2");
}
