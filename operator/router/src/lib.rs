//! The `ModelRouter` spec (`inference.llmkube.dev/v1alpha1`) and everything that reads it
//! without a Kubernetes client: defaults, validation, manifest loading, the reference
//! evaluator and the compiler of rules to WebAssembly. The gateway depends on this crate
//! alone; the operator adds the `crd` feature for the CustomResource kind, its schema and its
//! CEL validation rules.

pub mod bundle;
#[cfg(feature = "crd")]
mod cel;
pub mod compiler;
pub mod condition;
pub mod defaults;
pub mod duration;
pub mod manifest;
pub mod money;
pub mod names;
pub mod otel_env;
pub mod routing;
#[cfg(feature = "crd")]
pub mod schema;
pub mod spec;
pub mod validate;

/// API group of every LLMKube kind.
pub const GROUP: &str = "inference.llmkube.dev";
/// API version of every LLMKube kind.
pub const VERSION: &str = "v1alpha1";
/// The namespace of an object that names none, as the API server and kubectl assume.
pub const DEFAULT_NAMESPACE: &str = "default";
/// `apiVersion` as written in manifests.
pub const API_VERSION: &str = "inference.llmkube.dev/v1alpha1";
