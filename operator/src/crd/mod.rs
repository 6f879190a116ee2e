//! Custom resource types of `inference.llmkube.dev/v1alpha1`.

pub mod model_router;

/// API group of every LLMKube kind.
pub const GROUP: &str = "inference.llmkube.dev";
/// API version of every LLMKube kind.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` as written in manifests.
pub const API_VERSION: &str = "inference.llmkube.dev/v1alpha1";
