//! `Model`: model weights and where they come from.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use llmkube_router::condition::Condition;

/// Desired state of a Model.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "inference.llmkube.dev",
    version = "v1alpha1",
    kind = "Model",
    namespaced,
    status = "ModelStatus",
    shortname = "mdl",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Size","type":"string","jsonPath":".status.size"}"#,
    printcolumn = r#"{"name":"SHA256","type":"string","jsonPath":".status.sha256","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ModelSpec {
    /// Where the weights come from: `pvc://<claim>/<path>`, `https://...`, `http://...`,
    /// `file:///abs/path`, an absolute path, or a Hugging Face repo id with `format: hf-repo`.
    #[schemars(regex(pattern = r"^(https?|file|pvc)://.*|^/[^\s]+$|^[a-zA-Z0-9][\w\-./]+$"))]
    pub source: String,
    /// Expected sha256 of the file (64 hex); a download or copy that differs is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-fA-F0-9]{64}$"))]
    pub sha256: Option<String>,
    /// File format (`gguf` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ModelFormat>,
    /// Quantization label, e.g. `Q4_K_M`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<String>,
    /// Hardware acceleration preferences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware: Option<HardwareSpec>,
    /// Resources needed to run the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ModelResources>,
    /// Additive: allow a plain `http://` source (default false: the downloader speaks HTTPS
    /// only, redirects included, so weights cannot be swapped on the wire unnoticed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_plain_http: bool,
}

/// Model file formats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ModelFormat {
    /// GGUF (llama.cpp).
    #[default]
    Gguf,
    /// Apple MLX directory.
    Mlx,
    /// safetensors.
    Safetensors,
    /// PyTorch.
    Pytorch,
    /// Anything else.
    Custom,
    /// A Hugging Face repo id, resolved by the runtime image (vLLM, Ollama) via `HF_ENDPOINT`.
    HfRepo,
}

/// Hardware acceleration settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HardwareSpec {
    /// `cpu`, `metal`, `cuda` or `rocm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerator: Option<String>,
    /// GPU requirements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuSpec>,
    /// Absolute memory budget of the model process, e.g. `24Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_budget: Option<String>,
    /// Fraction of system memory for the model process (0..1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_fraction: Option<f64>,
}

/// GPU requirements.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GpuSpec {
    /// Use GPU acceleration.
    #[serde(default)]
    pub enabled: bool,
    /// GPUs required (0..8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 8))]
    pub count: Option<i32>,
    /// Minimum memory per GPU, e.g. `16Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// `nvidia`, `amd` or `intel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// Layers to offload (-1: automatic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = -1))]
    pub layers: Option<i32>,
    /// Multi-GPU sharding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharding: Option<GpuSharding>,
}

/// Multi-GPU sharding.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GpuSharding {
    /// `layer`, `tensor`, `row`, `pipeline` or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// Layer ranges per GPU.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layer_split: Vec<String>,
}

/// CPU and memory to run the model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelResources {
    /// CPU, e.g. `2` or `2000m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Memory, e.g. `8Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

/// Observed state of a Model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelStatus {
    /// `Pending`, `Downloading`, `Copying`, `Ready` or `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<llmkube_router::condition::Phase>,
    /// File size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Where the file is, as the runtime sees it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Cache key (hash prefix of the source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_key: Option<String>,
    /// sha256 computed after the download or copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Whether acceleration is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerator_ready: Option<bool>,
    /// When the status was last written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<Time>,
    /// `Ready` and friends; `Ready`'s message carries failures such as a sha256 mismatch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
