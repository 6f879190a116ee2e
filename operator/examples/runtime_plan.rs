//! Prints, as JSON, what the controller runs for the Model and InferenceService of a manifest
//! file: the runtime container's arguments and the model-downloader's environment, from the
//! same builder the controller applies (`deployment`), with the site CA ConfigMap set. The
//! loopback rehearsal (`examples/rehearsal/rehearse.sh`) runs llama-server and the downloader
//! with exactly these, so what it proves is what a cluster would run.
//!
//! Usage: `cargo run -p llmkube-operator --example runtime_plan -- MANIFESTS.yaml`

use std::process::ExitCode;

use llmkube_operator::crd::inference_service::InferenceService;
use llmkube_operator::crd::model::Model;
use llmkube_operator::reconcile::inference_service::{MODEL_DIR, Settings, deployment};
use serde::Deserialize;

fn plan(text: &str) -> Result<serde_json::Value, String> {
    let mut model: Option<Model> = None;
    let mut isvc: Option<InferenceService> = None;
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let value = serde_yaml_ng::Value::deserialize(doc).map_err(|e| e.to_string())?;
        match value["kind"].as_str() {
            Some("Model") => {
                model = Some(serde_yaml_ng::from_value(value).map_err(|e| e.to_string())?)
            }
            Some("InferenceService") => {
                isvc = Some(serde_yaml_ng::from_value(value).map_err(|e| e.to_string())?)
            }
            _ => {}
        }
    }
    let (Some(model), Some(isvc)) = (model, isvc) else {
        return Err("the file needs a Model and an InferenceService".into());
    };
    let settings = Settings {
        ca_cert_configmap: Some("site-ca".into()),
        ..Settings::default()
    };
    let deployment = deployment(&isvc, &model, &settings)?;
    let pod = deployment
        .spec
        .and_then(|s| s.template.spec)
        .ok_or("the Deployment has no pod")?;
    let runtime = pod.containers.first().ok_or("no runtime container")?;
    let downloader = pod
        .init_containers
        .as_ref()
        .and_then(|c| c.first())
        .ok_or("no model-downloader (is the source https:// or file://?)")?;
    let env: serde_json::Map<String, serde_json::Value> = downloader
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default().into()))
        .collect();
    Ok(serde_json::json!({
        "model_dir": MODEL_DIR,
        "runtime_args": runtime.args,
        "downloader_env": env,
    }))
}

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: runtime_plan MANIFESTS.yaml");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            return ExitCode::from(2);
        }
    };
    match plan(&text) {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{path}: {e}");
            ExitCode::FAILURE
        }
    }
}
