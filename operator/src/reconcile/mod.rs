//! Reconcilers as pure functions: desired state and observations in, status and objects out.
//! The controller glue (watches, patches) calls these and stays thin.

/// Who manages the objects the reconcilers describe: the field manager of every write, the
/// `app.kubernetes.io/managed-by` label, the reporter of events.
pub const MANAGER: &str = "llmkube-controller";

pub mod admission;
pub mod downloader;
pub mod inference_service;
pub mod model;
pub mod model_cache;
pub mod model_router;
pub mod router_plan;
pub mod router_status;
mod runtime_args;
pub mod sharding;
