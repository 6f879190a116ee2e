//! Defaults of the original LLMKube router, in one place.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::duration::parse_duration;
use crate::spec::{Backend, ClassificationMode, DefaultRouteStrategy, ModelRouterSpec, Provider};

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
/// `proxy.consecutiveFailures` default: failures in a row that quarantine a backend (Envoy's
/// `consecutive_5xx` default).
pub const CONSECUTIVE_FAILURES: u32 = 5;
/// `backends[].healthCheck.path` default (llama.cpp, vLLM and TGI all serve it).
pub const HEALTH_CHECK_PATH: &str = "/health";
/// `backends[].healthCheck.intervalSeconds` default.
pub const HEALTH_CHECK_INTERVAL_SECONDS: u32 = 10;
/// `backends[].healthCheck.timeoutSeconds` default.
pub const HEALTH_CHECK_TIMEOUT_SECONDS: u32 = 2;
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

/// Why a backend has no address: the field (relative to the backend) and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressError {
    /// The field under the backend, e.g. `.external.url` (empty: the backend itself).
    pub field: &'static str,
    /// What is missing.
    pub message: String,
}

/// The base URL a backend is dialed at: `inferenceServiceRef` -> the InferenceService's
/// Service in `namespace`, `external.url`, else the provider's public URL; litellm has none and
/// needs `url` or the operator-wide `default_litellm_url`.
pub fn backend_url(
    b: &Backend,
    namespace: &str,
    default_litellm_url: Option<&str>,
) -> Result<String, AddressError> {
    match (&b.inference_service_ref, &b.external) {
        (Some(isvc), _) => Ok(format!(
            "http://{}.{namespace}.svc.cluster.local:{INFERENCE_SERVICE_PORT}",
            isvc.name
        )),
        (None, Some(ext)) => match (&ext.url, ext.provider) {
            (Some(url), _) => Ok(url.clone()),
            (None, Provider::Openai) => Ok(OPENAI_URL.to_owned()),
            (None, Provider::Anthropic) => Ok(ANTHROPIC_URL.to_owned()),
            (None, _) => default_litellm_url.map(str::to_owned).ok_or(AddressError {
                field: ".external.url",
                message: "is required for provider litellm (or run with --default-litellm-url)"
                    .into(),
            }),
        },
        (None, None) => Err(AddressError {
            field: "",
            message: "has no address".into(),
        }),
    }
}
