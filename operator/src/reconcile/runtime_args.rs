//! The runtime container's arguments: how each server is told to load the model, listen,
//! size its context and slots, use the GPUs and split the model over them.

use crate::crd::inference_service::{InferenceService, Runtime};
use crate::crd::model::Model;

use super::sharding::sharding_args;

/// Runtime arguments for serving `model` (loaded from `path`, a path or a repo id) on `port`;
/// the error (a sharding the runtime cannot do) is the condition message.
pub fn runtime_args(
    isvc: &InferenceService,
    model: &Model,
    path: &str,
    port: i32,
) -> Result<Vec<String>, String> {
    let spec = &isvc.spec;
    let gpus = spec.resources.as_ref().and_then(|r| r.gpu).unwrap_or(0);
    let runtime = spec.runtime.unwrap_or_default();
    let sharding = (model.spec.hardware.as_ref())
        .and_then(|h| h.gpu.as_ref())
        .and_then(|g| g.sharding.as_ref());
    let split = sharding_args(runtime, gpus, sharding)?;
    // `<model flag> PATH <host flag> 0.0.0.0 --port PORT`, the common start of every server.
    let serve = |model_flag: &str, host_flag: &str| -> Vec<String> {
        vec![
            model_flag.into(),
            path.into(),
            host_flag.into(),
            "0.0.0.0".into(),
            "--port".into(),
            port.to_string(),
        ]
    };
    let mut args: Vec<String> = match runtime {
        Runtime::Llamacpp => {
            let mut a = serve("--model", "--host");
            if let Some(c) = spec.context_size {
                a.extend(["-c".into(), c.to_string()]);
            }
            if let Some(p) = spec.parallel_slots {
                a.extend(["--parallel".into(), p.to_string()]);
            }
            if gpus > 0 {
                a.extend(["--n-gpu-layers".into(), "999".into()]);
                if spec.flash_attention == Some(true) {
                    a.extend(["--flash-attn".into(), "on".into()]);
                }
            }
            a.extend(split);
            if spec.jinja == Some(true) {
                a.push("--jinja".into());
            }
            a
        }
        Runtime::Vllm => {
            let mut a = serve("--model", "--host");
            match sharding.and_then(|s| s.strategy.as_ref()) {
                Some(_) => a.extend(split),
                // Without a strategy, vLLM's usual choice over several GPUs.
                None if gpus > 1 => a.extend(["--tensor-parallel-size".into(), gpus.to_string()]),
                None => {}
            }
            a
        }
        Runtime::Tgi => {
            let mut a = serve("--model-id", "--hostname");
            a.extend(split);
            a
        }
        Runtime::Ollama | Runtime::Generic | Runtime::Personaplex => spec.args.clone(),
    };
    if !matches!(runtime, Runtime::Generic | Runtime::Ollama) {
        args.extend(spec.extra_args.iter().cloned());
    }
    Ok(args)
}
