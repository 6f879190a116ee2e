//! LLMKube custom resources, their validation, and the reference routing evaluator.
//!
//! This part of the operator needs no Kubernetes: the gateway uses it in standalone mode to
//! load, validate and evaluate a `ModelRouter` from a YAML file.

pub mod compiler;
#[cfg(feature = "controller")]
pub mod controller;
pub mod crd;
pub mod defaults;
pub mod duration;
pub mod manifest;
#[cfg(feature = "controller")]
pub mod reconcile;
pub mod routing;
pub mod validate;
