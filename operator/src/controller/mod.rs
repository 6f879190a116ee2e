//! The controller runtime: one kube-runtime `Controller` per kind, wired to the pure
//! reconcilers in [`crate::reconcile`]. This layer only observes, applies and patches.

pub mod backoff;
pub mod inference_service;
pub mod metrics;
pub mod model;
pub mod model_router;
pub mod run;
pub mod server;
pub mod traces;
pub mod write;

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::runtime::events::Recorder;
use kube::{Client, Resource, ResourceExt};

use crate::reconcile;

/// Why a reconcile failed; the error policy requeues it with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the Kubernetes API failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

impl Error {
    /// A 409 from the API server: someone else wrote first; retry soon without penalty.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Kube(kube::Error::Api(s)) if s.code == 409)
    }
}

/// Controller-wide settings (flags and Helm values).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Images, site CA and pull secrets for inference pods.
    pub inference: reconcile::inference_service::Settings,
    /// Gateway image, pull secrets and the litellm default for routers.
    pub router: reconcile::model_router::Settings,
}

/// What every reconcile gets.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Flags.
    pub settings: Settings,
    /// Prometheus metrics.
    pub metrics: Arc<metrics::Metrics>,
    /// Per-object failure counts for the error policy.
    pub backoff: backoff::Backoff,
    /// Publishes Kubernetes Events.
    pub recorder: Recorder,
    /// When each router's budget use was last read from its gateway (`namespace/name`).
    pub budget_polls: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
    /// Exports a span per reconcile, when traces are on.
    pub traces: Option<Arc<traces::Traces>>,
}

impl Context {
    /// A context for `client` with `settings`.
    pub fn new(client: Client, settings: Settings, metrics: Arc<metrics::Metrics>) -> Self {
        let reporter = kube::runtime::events::Reporter {
            controller: crate::reconcile::MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            settings,
            metrics,
            backoff: backoff::Backoff::default(),
            budget_polls: Default::default(),
            traces: None,
        }
    }
}

/// How long to wait before looking again at an object that is settled.
pub const RESYNC: Duration = Duration::from_secs(300);
/// How long to wait before looking again at an object that is on its way.
pub const PROGRESS: Duration = Duration::from_secs(15);

/// `Kind/namespace/name`, the key for backoff and logs.
pub fn key<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        obj.namespace().unwrap_or_default(),
        obj.name_any()
    )
}

/// The error policy of every controller: conflicts retry after a second, other failures back
/// off exponentially per object (5 s doubling to 5 min).
pub fn error_policy<K: Resource<DynamicType = ()>>(
    obj: Arc<K>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    let key = key(obj.as_ref());
    if error.is_conflict() {
        tracing::debug!(object = %key, "conflict, retrying");
        return Action::requeue(Duration::from_secs(1));
    }
    let delay = ctx.backoff.failed(&key);
    tracing::warn!(object = %key, retry_in = ?delay, "reconcile failed: {error}");
    Action::requeue(delay)
}

/// Runs one reconcile of `obj` (`reconcile`): counts and times it by `kind` (and traces it
/// when traces are on), and forgets the object's backoff when it succeeds.
pub async fn instrumented<K: Resource<DynamicType = ()>>(
    kind: &'static str,
    obj: &K,
    ctx: &Context,
    reconcile: impl std::future::Future<Output = Result<Action, Error>>,
) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let span =
        (ctx.traces.as_ref()).map(|t| t.reconcile(kind, &namespace_of(obj), &obj.name_any()));
    let result = reconcile.await;
    ctx.metrics.observe(kind, result.is_ok(), started.elapsed());
    if let Some(span) = span {
        span.end(result.as_ref().err().map(|e| e as &dyn std::fmt::Display));
    }
    if result.is_ok() {
        ctx.backoff.succeeded(&key(obj));
    }
    result
}

/// The namespace of a namespaced object (`default` if unset, as the API server would).
pub fn namespace_of<K: Resource>(obj: &K) -> String {
    obj.meta()
        .namespace
        .clone()
        .unwrap_or_else(|| llmkube_router::DEFAULT_NAMESPACE.into())
}

/// RFC 3339 "now" for condition transition times.
pub fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}
