//! `ModelRouter` spec types (`inference.llmkube.dev/v1alpha1`).
//!
//! Field names are exactly those of the original CRD so existing manifests apply unchanged.
//! Fields marked "additive" are ours; they are optional and default to the original behaviour.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod auth;
mod budget;
mod deploy;
mod status;

pub use auth::{
    ApiKeysSpec, AuthSpec, CertPrincipal, CertTeam, ClientCertificatesSpec, DEFAULT_JWKS_KEY,
    DEFAULT_JWKS_REFRESH_SECONDS, DEFAULT_JWT_LEEWAY_SECONDS, DEFAULT_KEYS_KEY, JwksSource,
    JwtSpec, MAX_NAME_LEN, MAX_TEAM_GLOBS, MAX_TEAMS, SecretKeyRef, TEAM_HEADER, TeamSpec,
};
pub use budget::{
    Budget, BudgetScope, BudgetStoreSpec, DEFAULT_KEY_PREFIX, DEFAULT_STORE_TIMEOUT_MS,
    MAX_BUDGETS, MAX_WINDOW_SECONDS, RedisStoreSpec,
};
pub use deploy::{EndpointSpec, LocalObjectReference, ProxySpec, ResourceRequirements};
pub use status::{BackendStatus, BudgetUtilization, ModelRouterStatus};

/// Size limits, in the schema as in validation: the API server needs them to bound the cost
/// of the CEL gate, and the gateway applies them in standalone mode too.
pub const MAX_BACKENDS: usize = 64;
/// Most rules per router.
pub const MAX_RULES: usize = 64;
/// Most backends per route.
pub const MAX_ROUTE_BACKENDS: usize = 16;
/// Most classification values per list, in a rule, the spec or a request (header or policy).
pub const MAX_CLASSIFICATIONS: usize = 16;
/// Longest classification value, in bytes.
pub const MAX_CLASSIFICATION_LEN: usize = 63;

/// Desired state of a policy-aware router in front of local and external inference backends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "crd", derive(kube::CustomResource))]
#[cfg_attr(
    feature = "crd",
    kube(
        group = "inference.llmkube.dev",
        version = "v1alpha1",
        kind = "ModelRouter",
        namespaced,
        status = "ModelRouterStatus",
        shortname = "mr",
        printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
        printcolumn = r#"{"name":"Rules","type":"integer","jsonPath":".status.activeRules"}"#,
        printcolumn = r#"{"name":"Endpoint","type":"string","jsonPath":".status.endpoint","priority":1}"#,
        printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
    )
)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "crd", schemars(transform = crate::cel::model_router_rules))]
pub struct ModelRouterSpec {
    /// Backends requests can be sent to: in-cluster InferenceServices or external providers.
    #[cfg_attr(feature = "crd", schemars(length(min = 1, max = MAX_BACKENDS)))]
    pub backends: Vec<Backend>,
    /// Routing rules, evaluated in order; the first whose `match` fits the request wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "crd", schemars(length(max = MAX_RULES)))]
    pub rules: Vec<Rule>,
    /// Backend name used when no rule matched (and, with `BackendNameMatch`, no backend name did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "crd", schemars(length(max = 63)))]
    pub default_route: Option<String>,
    /// `Static` (default): unmatched requests go to `defaultRoute`. `BackendNameMatch`: first a
    /// backend whose `displayName` (else `name`) equals the request's `model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_route_strategy: Option<DefaultRouteStrategy>,
    /// Classification, audit and budget policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicySpec>,
    /// How the router is exposed inside the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<EndpointSpec>,
    /// Settings of the gateway (router-proxy) deployment and its request handling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxySpec>,
    /// Additive: custom WebAssembly policies, run in this order (pre-phase ones before the
    /// rules, post-phase ones after).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<PolicyRef>,
    /// Additive: who may use the router (API keys) and what each team may use. Absent:
    /// anyone who can reach the gateway may use every backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSpec>,
}

/// A custom WebAssembly policy (built with llmkube-policy-sdk).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct PolicyRef {
    /// Unique policy name (audit lines and metrics use it).
    pub name: String,
    /// Where the module comes from.
    pub module: ModuleSource,
    /// Lowercase hex sha256 of the module; a module with another digest is refused.
    pub sha256: String,
    /// The policy's configuration (JSON), handed to its `configure` once at load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "crd",
        schemars(schema_with = "crate::schema::free_form_object")
    )]
    pub config: Option<serde_json::Value>,
    /// `closed` (default): a failing policy denies the request. `open`: it is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_mode: Option<FailureMode>,
}

/// Where a policy module is read from: exactly one of the fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ModuleSource {
    /// A file (standalone mode); relative paths are relative to the router file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// A key of a ConfigMap in the router's namespace (Kubernetes mode, `binaryData`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_key_ref: Option<ConfigMapKeyRef>,
}

/// A key of a ConfigMap.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
pub struct ConfigMapKeyRef {
    /// ConfigMap name.
    pub name: String,
    /// Key.
    pub key: String,
}

/// What happens when a policy fails (traps, times out, answers garbage), or a budget's
/// shared store cannot be reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum FailureMode {
    /// Deny the request (503, error type `policy_error`).
    #[default]
    Closed,
    /// Skip the policy and go on (logged, counted, audited).
    Open,
}

impl FailureMode {
    /// The CRD spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureMode::Closed => "closed",
            FailureMode::Open => "open",
        }
    }
}

/// One place a request can be served.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "crd", schemars(transform = crate::cel::backend_rules))]
pub struct Backend {
    /// Unique name (`^[a-z0-9][a-z0-9-]{0,62}$`), referenced by rules and `defaultRoute`.
    #[cfg_attr(feature = "crd", schemars(length(min = 1, max = 63)))]
    pub name: String,
    /// Public model id of this backend in `/v1/models` and for `BackendNameMatch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// An InferenceService in the router's namespace. Exactly one of this and `external`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference_service_ref: Option<InferenceServiceRef>,
    /// An external OpenAI-compatible provider. Exactly one of this and `inferenceServiceRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalBackend>,
    /// `local` or `cloud`. Defaults to `local` for InferenceServices and `cloud` for externals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// Free-form capability tags matched by `rules[].match.requiredCapabilities`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// Relative weight for the `weighted` strategy (default 1; 0 = only as a fallback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// Price per million tokens, as decimal strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_million_tokens: Option<CostPerMillionTokens>,
    /// Active health check settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// Time to response headers per attempt on this backend (100ms..30m); a rule's timeout wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// Reference to an InferenceService in the same namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
pub struct InferenceServiceRef {
    /// InferenceService name.
    pub name: String,
}

/// An external provider endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ExternalBackend {
    /// Request-shape adapter and credential convention.
    pub provider: Provider,
    /// Base URL; the only address dialed. Defaults exist for `openai` and `anthropic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Replaces the request's `model` when sending to this backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Secret holding the provider key (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, `LITELLM_MASTER_KEY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,
    /// Additive: send the W3C `traceparent` of the gateway's trace to this backend, so that
    /// its spans join the site's traces. Off by default: trace ids leave the site only when
    /// the router says so (local backends always get it when the gateway exports traces).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub propagate_trace_context: bool,
}

/// Name of a Secret in the router's namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
pub struct SecretRef {
    /// Secret name: a DNS-1123 subdomain (it becomes a directory name in the gateway pod).
    #[cfg_attr(
        feature = "crd",
        schemars(
            length(max = 253),
            regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
        )
    )]
    pub name: String,
}

/// External provider kinds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// OpenAI API (`Authorization: Bearer $OPENAI_API_KEY`).
    #[default]
    Openai,
    /// Anthropic's Messages API (`x-api-key: $ANTHROPIC_API_KEY`); chat completions and
    /// responses are translated to it.
    Anthropic,
    /// A LiteLLM proxy (`Authorization: Bearer $LITELLM_MASTER_KEY`).
    Litellm,
    /// Listed by the original CRD; refused by validation (no adapter).
    Bedrock,
    /// Listed by the original CRD; refused by validation (no adapter).
    VertexAi,
}

impl Provider {
    /// The CRD spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Openai => "openai",
            Provider::Anthropic => "anthropic",
            Provider::Litellm => "litellm",
            Provider::Bedrock => "bedrock",
            Provider::VertexAi => "vertex_ai",
        }
    }
}

/// Where a backend runs, for data-residency decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Inside the trust boundary; may receive sensitive requests.
    Local,
    /// Outside it; never receives a request with a sensitive classification.
    Cloud,
}

impl Tier {
    /// The CRD spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Local => "local",
            Tier::Cloud => "cloud",
        }
    }
}

impl Backend {
    /// The tier this backend really has: an explicit `tier`, else `local` for an
    /// InferenceService and `cloud` for an external provider (the original wrongly used `local`).
    pub fn effective_tier(&self) -> Tier {
        match self.tier {
            Some(tier) => tier,
            None if self.external.is_some() => Tier::Cloud,
            None => Tier::Local,
        }
    }

    /// The model id this backend is published under and matched by `BackendNameMatch`.
    pub fn model_id(&self) -> &str {
        self.display_name
            .as_deref()
            .filter(|d| !d.is_empty())
            .unwrap_or(&self.name)
    }

    /// Effective weight for the `weighted` strategy.
    pub fn effective_weight(&self) -> u32 {
        self.weight.unwrap_or(1)
    }
}

/// Price per million tokens (decimal strings, e.g. `"0.15"`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
pub struct CostPerMillionTokens {
    /// USD per million prompt tokens.
    #[serde(rename = "promptUSD", default, skip_serializing_if = "Option::is_none")]
    pub prompt_usd: Option<String>,
    /// USD per million completion tokens.
    #[serde(
        rename = "completionUSD",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub completion_usd: Option<String>,
}

/// Active health check of a backend.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// HTTP path probed with GET (default `/health`); 2xx passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "crd",
        schemars(length(max = 256), regex(pattern = r"^/[^?#\s]*$"))
    )]
    pub path: Option<String>,
    /// Seconds between probes (1..3600, default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "crd", schemars(range(min = 1, max = 3600)))]
    pub interval_seconds: Option<u32>,
    /// Seconds before a probe counts as failed (1..60, default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "crd", schemars(range(min = 1, max = 60)))]
    pub timeout_seconds: Option<u32>,
}

/// A routing rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// Unique rule name (appears in audit lines and metrics).
    pub name: String,
    /// Conditions, all of which must hold; an absent `match` always matches.
    #[serde(rename = "match", default, skip_serializing_if = "Option::is_none")]
    pub match_: Option<RuleMatch>,
    /// Where matching requests go.
    pub route: RouteSpec,
    /// Deny (503) instead of falling through when none of the route's backends can serve.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fail_closed: bool,
    /// Time to response headers per attempt (100ms..30m); wins over the backend's timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// Conditions of a rule; every declared field must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct RuleMatch {
    /// Matches when the request carries any of these classifications.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "crd", schemars(length(max = MAX_CLASSIFICATIONS), inner(length(max = MAX_CLASSIFICATION_LEN))))]
    pub data_classification: Vec<String>,
    /// Matches the `x-llmkube-task-complexity` header (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_complexity: Option<String>,
    /// Matches only if some route backend has all these capabilities; dispatch then uses only those.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_capabilities: Vec<String>,
    /// Latency objective in milliseconds. Informational: recorded, not matched (as in the original).
    #[serde(
        rename = "latencySLOMs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub latency_slo_ms: Option<u32>,
    /// Request headers that must be present with exactly these values (names case-insensitive).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Globs (`*`, `?`) matched against the request body's `model`; any may match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
}

/// The route of a rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
pub struct RouteSpec {
    /// Backend names, in preference order.
    #[cfg_attr(feature = "crd", schemars(length(min = 1, max = MAX_ROUTE_BACKENDS), inner(length(max = 63))))]
    pub backends: Vec<String>,
    /// How the backends are used (default `primary-fallback`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
}

/// Dispatch strategy over a route's backends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// In order; the next on connect error, 5xx or timeout.
    #[default]
    PrimaryFallback,
    /// One picked by `weight`, the others as fallbacks.
    Weighted,
    /// The first answers; copies go to the others and their answers are discarded.
    Shadow,
}

impl Strategy {
    /// The CRD spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::PrimaryFallback => "primary-fallback",
            Strategy::Weighted => "weighted",
            Strategy::Shadow => "shadow",
        }
    }
}

/// What happens to requests no rule matched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
pub enum DefaultRouteStrategy {
    /// Send them to `defaultRoute`.
    #[default]
    Static,
    /// First a backend whose published id equals the request's `model`, then `defaultRoute`.
    BackendNameMatch,
}

/// Router-wide policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct PolicySpec {
    /// Token and spend budgets, enforced per request (429 when spent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "crd", schemars(length(max = MAX_BUDGETS)))]
    pub budgets: Vec<Budget>,
    /// Additive: where budget use is kept. Absent: in the gateway's memory, which holds for
    /// one replica only (validation refuses budgets on more than one without a shared store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_store: Option<BudgetStoreSpec>,
    /// How requests are classified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<ClassificationSpec>,
    /// Where audit lines go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_log: Option<AuditLogSpec>,
}

/// Request classification settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ClassificationSpec {
    /// `header-only` (default), `detector` or `hybrid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ClassificationMode>,
    /// Header carrying the client's classification (default `x-llmkube-classification`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_key: Option<String>,
    /// Classifications that must never leave the local tier (default `["pii", "phi"]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "crd", schemars(length(max = MAX_CLASSIFICATIONS), inner(length(max = MAX_CLASSIFICATION_LEN))))]
    pub sensitive_classifications: Option<Vec<String>>,
    /// Additive: largest body, in bytes, the detector scans (default: the body limit,
    /// `spec.proxy.maxRequestBodyBytes`). A larger body is not scanned and is treated as
    /// sensitive (`classificationSource: scan-limit`), never as clean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "crd", schemars(range(min = 1, max = 1073741824)))]
    pub scan_limit_bytes: Option<u64>,
}

/// Classification modes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum ClassificationMode {
    /// Trust the classification header.
    #[default]
    HeaderOnly,
    /// Run the PII detector policy on the prompt.
    Detector,
    /// The header when present, the detector otherwise.
    Hybrid,
}

/// Audit log settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct AuditLogSpec {
    /// `stdout` (default), `file` or `otlp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink: Option<AuditSink>,
    /// File for the `file` sink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_path: Option<String>,
    /// Include the request body in each audit line.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_request_body: bool,
}

/// Audit sinks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum AuditSink {
    /// One JSON line per request on standard output.
    #[default]
    Stdout,
    /// Appended to `filePath`.
    File,
    /// OpenTelemetry (not supported by this gateway; falls back to stdout with a warning).
    Otlp,
}
