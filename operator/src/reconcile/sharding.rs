//! Multi-GPU sharding: a Model's `hardware.gpu.sharding` as the arguments of the runtime that
//! serves it, or a readable refusal when the runtime cannot split a model that way.
//!
//! | strategy | llama.cpp | vLLM | TGI |
//! |---|---|---|---|
//! | `layer` | `--split-mode layer` + `--tensor-split` | refused (use `pipeline`) | refused |
//! | `row` | `--split-mode row` + `--tensor-split` | refused | refused |
//! | `tensor` | refused (use `row`) | `--tensor-parallel-size N` | `--num-shard N` |
//! | `pipeline` | refused (use `layer`) | `--pipeline-parallel-size N` | refused |
//! | `none` | `--split-mode none` (one GPU serves) | one GPU only | one GPU only |
//!
//! `layerSplit` (llama.cpp only) gives each GPU's share: layer ranges such as `0-39`, or plain
//! proportions such as `3`; without it the split is even over the GPU count.

use crate::crd::inference_service::Runtime;
use crate::crd::model::GpuSharding;

/// How a model is split over GPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Whole layers per GPU.
    Layer,
    /// Rows of each weight matrix per GPU (llama.cpp).
    Row,
    /// Tensor parallelism.
    Tensor,
    /// Pipeline parallelism: consecutive layers per GPU, in stages.
    Pipeline,
    /// No split: one GPU serves.
    None,
}

impl Strategy {
    fn parse(s: &str) -> Result<Strategy, String> {
        Ok(match s {
            "layer" => Strategy::Layer,
            "row" => Strategy::Row,
            "tensor" => Strategy::Tensor,
            "pipeline" => Strategy::Pipeline,
            "none" => Strategy::None,
            other => {
                return Err(format!(
                    "hardware.gpu.sharding.strategy {other:?} is not one of layer, row, tensor, pipeline, none"
                ));
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            Strategy::Layer => "layer",
            Strategy::Row => "row",
            Strategy::Tensor => "tensor",
            Strategy::Pipeline => "pipeline",
            Strategy::None => "none",
        }
    }
}

/// The runtime arguments that shard the model over `gpus` GPUs (none when `sharding` is
/// absent: each runtime's own default over the GPUs it sees).
pub fn sharding_args(
    runtime: Runtime,
    gpus: i32,
    sharding: Option<&GpuSharding>,
) -> Result<Vec<String>, String> {
    let Some(sharding) = sharding else {
        return Ok(Vec::new());
    };
    let strategy = match sharding.strategy.as_deref() {
        Some(s) => Strategy::parse(s)?,
        None if !sharding.layer_split.is_empty() => Strategy::Layer,
        None => return Ok(Vec::new()),
    };
    let refuse = |why: &str| {
        Err(format!(
            "hardware.gpu.sharding.strategy {:?} cannot be served by runtime {}: {why}",
            strategy.name(),
            runtime_name(runtime)
        ))
    };
    if strategy != Strategy::None && gpus < 2 {
        return Err(format!(
            "hardware.gpu.sharding.strategy {:?} splits a model over GPUs, but the InferenceService requests {gpus} (resources.gpu); request at least 2 or use strategy none",
            strategy.name()
        ));
    }
    let split_given = !sharding.layer_split.is_empty();
    if split_given && runtime != Runtime::Llamacpp {
        return refuse("only llama.cpp takes a layerSplit; this runtime splits evenly");
    }
    let n = gpus.to_string();
    match (runtime, strategy) {
        (Runtime::Llamacpp, Strategy::Layer | Strategy::Row) => {
            let mode = strategy.name();
            Ok(vec![
                "--split-mode".into(),
                mode.into(),
                "--tensor-split".into(),
                tensor_split(&sharding.layer_split, gpus)?,
                "--main-gpu".into(),
                "0".into(),
            ])
        }
        (Runtime::Llamacpp, Strategy::None) => Ok(vec![
            "--split-mode".into(),
            "none".into(),
            "--main-gpu".into(),
            "0".into(),
        ]),
        (Runtime::Llamacpp, Strategy::Tensor) => refuse(
            "llama.cpp has no tensor parallelism; use row, which splits each tensor's rows over the GPUs",
        ),
        (Runtime::Llamacpp, Strategy::Pipeline) => {
            refuse("llama.cpp pipelines by layer; use layer")
        }
        (Runtime::Vllm, Strategy::Tensor) => Ok(vec!["--tensor-parallel-size".into(), n]),
        (Runtime::Vllm, Strategy::Pipeline) => Ok(vec!["--pipeline-parallel-size".into(), n]),
        (Runtime::Vllm, Strategy::Layer) => {
            refuse("vLLM splits layers as pipeline stages; use pipeline")
        }
        (Runtime::Tgi, Strategy::Tensor) => Ok(vec!["--num-shard".into(), n]),
        (Runtime::Vllm | Runtime::Tgi, Strategy::None) if gpus <= 1 => Ok(Vec::new()),
        (Runtime::Vllm | Runtime::Tgi, Strategy::None) => {
            refuse("it would shard over every GPU it is given; request one GPU, or choose tensor")
        }
        (Runtime::Vllm, Strategy::Row) => refuse("row splits are llama.cpp's; use tensor"),
        (Runtime::Tgi, _) => refuse("TGI shards by tensor parallelism only; use tensor"),
        (Runtime::Ollama | Runtime::Generic | Runtime::Personaplex, _) => {
            refuse("the gateway does not know this runtime's flags; pass them in args")
        }
    }
}

fn runtime_name(runtime: Runtime) -> &'static str {
    match runtime {
        Runtime::Llamacpp => "llamacpp",
        Runtime::Vllm => "vllm",
        Runtime::Tgi => "tgi",
        Runtime::Ollama => "ollama",
        Runtime::Generic => "generic",
        Runtime::Personaplex => "personaplex",
    }
}

/// llama.cpp's `--tensor-split`: each GPU's share, from `layerSplit` (ranges `a-b` count
/// `b - a + 1` layers; a plain number is a proportion), even when it is empty.
fn tensor_split(layer_split: &[String], gpus: i32) -> Result<String, String> {
    if layer_split.is_empty() {
        return Ok(vec!["1"; gpus as usize].join(","));
    }
    if layer_split.len() != gpus as usize {
        return Err(format!(
            "hardware.gpu.sharding.layerSplit has {} entries for {gpus} GPUs (resources.gpu); give one per GPU",
            layer_split.len()
        ));
    }
    let shares: Result<Vec<String>, String> = layer_split
        .iter()
        .map(|entry| {
            let bad = || {
                format!(
                    "hardware.gpu.sharding.layerSplit entry {entry:?} is neither a layer range such as 0-39 nor a proportion such as 3"
                )
            };
            let share: u32 = match entry.trim().split_once('-') {
                Some((a, b)) => {
                    let (a, b): (u32, u32) = (
                        a.trim().parse().map_err(|_| bad())?,
                        b.trim().parse().map_err(|_| bad())?,
                    );
                    if b < a {
                        return Err(bad());
                    }
                    b - a + 1
                }
                None => entry.trim().parse().map_err(|_| bad())?,
            };
            if share == 0 {
                return Err(bad());
            }
            Ok(share.to_string())
        })
        .collect();
    Ok(shares?.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sharding(strategy: &str, split: &[&str]) -> GpuSharding {
        GpuSharding {
            strategy: Some(strategy.into()),
            layer_split: split.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn args(runtime: Runtime, gpus: i32, strategy: &str, split: &[&str]) -> Result<String, String> {
        sharding_args(runtime, gpus, Some(&sharding(strategy, split))).map(|a| a.join(" "))
    }

    #[test]
    fn every_runtime_and_strategy() {
        use Runtime::*;
        let table: [(Runtime, &str, Option<&str>); 15] = [
            (
                Llamacpp,
                "layer",
                Some("--split-mode layer --tensor-split 1,1 --main-gpu 0"),
            ),
            (
                Llamacpp,
                "row",
                Some("--split-mode row --tensor-split 1,1 --main-gpu 0"),
            ),
            (Llamacpp, "none", Some("--split-mode none --main-gpu 0")),
            (Llamacpp, "tensor", None),
            (Llamacpp, "pipeline", None),
            (Vllm, "tensor", Some("--tensor-parallel-size 2")),
            (Vllm, "pipeline", Some("--pipeline-parallel-size 2")),
            (Vllm, "layer", None),
            (Vllm, "row", None),
            (Vllm, "none", None),
            (Tgi, "tensor", Some("--num-shard 2")),
            (Tgi, "pipeline", None),
            (Tgi, "row", None),
            (Ollama, "tensor", None),
            (Generic, "layer", None),
        ];
        for (runtime, strategy, expected) in table {
            let got = args(runtime, 2, strategy, &[]);
            match expected {
                Some(e) => assert_eq!(got.as_deref(), Ok(e), "{runtime:?} {strategy}"),
                None => {
                    let why = got.expect_err(strategy);
                    assert!(
                        why.contains(strategy) && why.contains(runtime_name(runtime)),
                        "{why}"
                    );
                }
            }
        }
    }

    #[test]
    fn layer_splits_count_layers_or_take_proportions() {
        assert_eq!(
            args(Runtime::Llamacpp, 2, "layer", &["0-47", "48-79"]).as_deref(),
            Ok("--split-mode layer --tensor-split 48,32 --main-gpu 0")
        );
        assert_eq!(
            args(Runtime::Llamacpp, 3, "row", &["3", "1", "1"]).as_deref(),
            Ok("--split-mode row --tensor-split 3,1,1 --main-gpu 0")
        );
        for bad in [&["0-39"][..], &["a", "b"], &["9-1", "2"], &["0", "1"]] {
            assert!(args(Runtime::Llamacpp, 2, "layer", bad).is_err(), "{bad:?}");
        }
        assert!(
            args(Runtime::Vllm, 2, "tensor", &["1", "1"])
                .unwrap_err()
                .contains("layerSplit")
        );
    }

    #[test]
    fn one_gpu_cannot_be_split_and_unknown_strategies_are_named() {
        assert!(
            args(Runtime::Llamacpp, 1, "layer", &[])
                .unwrap_err()
                .contains("at least 2")
        );
        assert_eq!(args(Runtime::Vllm, 1, "none", &[]).as_deref(), Ok(""));
        assert!(
            args(Runtime::Vllm, 2, "diagonal", &[])
                .unwrap_err()
                .contains("\"diagonal\"")
        );
        assert_eq!(sharding_args(Runtime::Vllm, 4, None), Ok(Vec::new()));
    }
}
