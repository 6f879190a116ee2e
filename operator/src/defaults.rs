//! Defaults of the original LLMKube router, in one place.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::crd::model_router::{ClassificationMode, DefaultRouteStrategy, ModelRouterSpec};
use crate::duration::parse_duration;

/// Header carrying the client's data classification, unless `policy.classification.headerKey` says otherwise.
pub const CLASSIFICATION_HEADER: &str = "x-llmkube-classification";
/// Header carrying the task complexity matched by `rules[].match.taskComplexity`.
pub const TASK_COMPLEXITY_HEADER: &str = "x-llmkube-task-complexity";
/// Classifications that must stay local unless `policy.classification.sensitiveClassifications` says otherwise.
pub const SENSITIVE_CLASSIFICATIONS: [&str; 2] = ["pii", "phi"];
/// `proxy.quarantineDuration` default.
pub const QUARANTINE: Duration = Duration::from_secs(15);
/// `proxy.responseHeaderTimeout` default.
pub const RESPONSE_HEADER_TIMEOUT: Duration = Duration::from_secs(120);
/// `proxy.streamIdleTimeout` default.
pub const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// `proxy.maxRequestBodyBytes` default.
pub const MAX_REQUEST_BODY_BYTES: u64 = 32 << 20;
/// Base URL of `provider: openai` when `url` is absent.
pub const OPENAI_URL: &str = "https://api.openai.com";
/// Base URL of `provider: anthropic` when `url` is absent.
pub const ANTHROPIC_URL: &str = "https://api.anthropic.com";
/// Port of the Service the controller creates for an InferenceService.
pub const INFERENCE_SERVICE_PORT: u16 = 8080;

/// The sensitive classifications of a spec, lowercased.
pub fn sensitive_classifications(spec: &ModelRouterSpec) -> BTreeSet<String> {
    match spec
        .policy
        .as_ref()
        .and_then(|p| p.classification.as_ref())
        .and_then(|c| c.sensitive_classifications.as_ref())
    {
        Some(list) => list.iter().map(|v| v.trim().to_ascii_lowercase()).collect(),
        None => SENSITIVE_CLASSIFICATIONS
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
    }
}

/// The classification header name of a spec, lowercased.
pub fn classification_header(spec: &ModelRouterSpec) -> String {
    spec.policy
        .as_ref()
        .and_then(|p| p.classification.as_ref())
        .and_then(|c| c.header_key.as_deref())
        .unwrap_or(CLASSIFICATION_HEADER)
        .to_ascii_lowercase()
}

/// The classification mode of a spec.
pub fn classification_mode(spec: &ModelRouterSpec) -> ClassificationMode {
    spec.policy
        .as_ref()
        .and_then(|p| p.classification.as_ref())
        .and_then(|c| c.mode)
        .unwrap_or_default()
}

/// Whether unmatched requests try `BackendNameMatch` first.
pub fn backend_name_match(spec: &ModelRouterSpec) -> bool {
    spec.default_route_strategy == Some(DefaultRouteStrategy::BackendNameMatch)
}

/// A duration field that validation has already checked, or its default.
pub fn duration_or(value: Option<&str>, default: Duration) -> Duration {
    value
        .and_then(|v| parse_duration(v).ok())
        .unwrap_or(default)
}
