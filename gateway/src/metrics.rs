//! Prometheus metrics: the `llmkube_router_*` names of the original plus latency histograms.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label value shared by many series without copying.
pub type Label = Arc<String>;

/// Labels of `llmkube_router_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Router name.
    pub router: Label,
    /// Rule name, or `""` when no rule matched.
    pub rule: Label,
    /// Backend that answered, or `""`.
    pub backend: Label,
    /// Bounded classification label (a value the spec knows, `other` or `none`).
    pub classification: Label,
    /// Bounded team label: a team `spec.auth` lists, `other`, or `""` without a team.
    pub team: Label,
    /// Audit outcome.
    pub outcome: &'static str,
}

/// Labels naming a router.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouterLabels {
    /// Router name.
    pub router: Label,
}

/// Labels naming a rule of a router.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    /// Router name.
    pub router: Label,
    /// Rule name (`""` for a sensitive request no rule kept local).
    pub rule: Label,
}

/// Labels naming a backend of a router.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabels {
    /// Router name.
    pub router: Label,
    /// Backend name.
    pub backend: Label,
}

/// Labels of `llmkube_router_backend_attempts_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    /// Router name.
    pub router: Label,
    /// Backend name.
    pub backend: Label,
    pub result: AttemptResult,
}

/// Labels of `llmkube_policy_results_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    /// Router name.
    pub router: Label,
    /// Policy name (`llmkube-rules` for the compiled rules).
    pub policy: Label,
    pub result: PolicyResult,
}

/// Labels of `llmkube_router_tokens_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    /// Router name.
    pub router: Label,
    /// Rule name, or `""`.
    pub rule: Label,
    /// Backend that answered.
    pub backend: Label,
    /// Bounded team label (as on `llmkube_router_requests_total`).
    pub team: Label,
    pub kind: TokenKind,
    /// Whether the backend reported the count or the gateway estimated it.
    pub source: crate::usage::UsageSource,
}

/// Labels of `llmkube_router_cost_usd_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CostLabels {
    /// Router name.
    pub router: Label,
    /// Rule name, or `""`.
    pub rule: Label,
    /// Backend that answered.
    pub backend: Label,
    /// Bounded team label.
    pub team: Label,
}

/// Labels of the budget counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BudgetLabels {
    /// Router name.
    pub router: Label,
    /// Budget name.
    pub budget: Label,
    /// The budget's `failureMode` (what was done instead).
    pub failure_mode: &'static str,
}

/// Labels of `llmkube_router_reloads_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    pub result: ReloadResult,
}

/// Label values that are a closed set: an enum each, written as its wire string.
macro_rules! label_values {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// The label value (and, where it appears there, the audit line's string).
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                EncodeLabelValue::encode(&self.as_str(), encoder)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

label_values! {
    /// How one upstream attempt (or health check) ended.
    AttemptResult {
        Ok => "ok",
        Status5xx => "status_5xx",
        ConnectError => "connect_error",
        Timeout => "timeout",
        ShadowOk => "shadow_ok",
        ShadowError => "shadow_error",
        CheckOk => "check_ok",
        CheckFailed => "check_failed",
    }
}

label_values! {
    /// What a policy (or the compiled rules) did with a request.
    PolicyResult {
        Continue => "continue",
        Route => "route",
        Reject => "reject",
        Failed => "failed",
        FailedOpen => "failed-open",
    }
}

label_values! {
    /// What OpenTelemetry data is exported.
    Signal {
        Traces => "traces",
        Logs => "logs",
    }
}

/// Labels of the OTLP export counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignalLabels {
    pub signal: Signal,
}

label_values! {
    /// Which side of a request tokens were counted on.
    TokenKind {
        Prompt => "prompt",
        Completion => "completion",
    }
}

label_values! {
    /// How a router reload ended.
    ReloadResult {
        Ok => "ok",
        Rejected => "rejected",
    }
}

/// All metrics of the gateway.
pub struct Metrics {
    registry: Registry,
    /// Requests by router, rule, backend, classification and outcome.
    pub requests: Family<RequestLabels, Counter>,
    /// Total request time (receipt to last byte).
    pub duration: Family<RouterLabels, Histogram>,
    /// Receipt to first response body byte.
    pub ttfb: Family<RouterLabels, Histogram>,
    /// Time the gateway itself added (total to headers minus upstream wait).
    pub overhead: Family<RouterLabels, Histogram>,
    /// Requests denied by fail-closed.
    pub fail_closed: Family<RuleLabels, Counter>,
    /// 1 when a backend is in service, 0 while quarantined.
    pub backend_health: Family<BackendLabels, Gauge>,
    /// Backends in service.
    pub active_backends: Family<RouterLabels, Gauge>,
    /// Attempts per backend and result.
    pub attempts: Family<AttemptLabels, Counter>,
    /// Router reloads by result.
    pub reloads: Family<ReloadLabels, Counter>,
    /// Policy evaluations by policy and result (failures included).
    pub policy_results: Family<PolicyLabels, Counter>,
    /// Shadow copies skipped because too many were in flight.
    pub shadow_skipped: Counter,
    /// Routes whose every backend was quarantined, tried anyway.
    pub panic_routes: Family<RouterLabels, Counter>,
    /// Bytes of request bodies held in memory right now, across all requests.
    pub body_bytes: Gauge,
    /// Requests refused (503) because the request-body memory budget stayed full.
    pub body_budget_refused: Counter,
    /// Client connections open right now.
    pub connections: Gauge,
    /// Client connections refused at the connection cap.
    pub connections_refused: Counter,
    /// Audit lines dropped because the writer could not keep up.
    pub audit_dropped: Counter,
    /// Spans and OTLP audit records dropped because the export queue was full.
    pub otlp_dropped: Family<SignalLabels, Counter>,
    /// OTLP export calls that failed (their records are lost).
    pub otlp_export_errors: Family<SignalLabels, Counter>,
    /// Tokens of answered requests.
    pub tokens: Family<TokenLabels, Counter>,
    /// Dollars spent, by the backends' declared prices.
    pub cost: Family<CostLabels, Counter<f64, AtomicU64>>,
    /// Requests refused (429) because a budget was spent (`failure_mode` is `""`).
    pub budget_refused: Family<BudgetLabels, Counter>,
    /// Budget checks the shared store could not answer, by what the budget did instead.
    pub budget_store_errors: Family<BudgetLabels, Counter>,
}

fn seconds_histogram() -> Histogram {
    // 10 µs .. ~10 min.
    Histogram::new(exponential_buckets(0.000_01, 3.0, 17))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::default();
        let duration = Family::<RouterLabels, Histogram>::new_with_constructor(
            seconds_histogram as fn() -> Histogram,
        );
        let ttfb = Family::<RouterLabels, Histogram>::new_with_constructor(
            seconds_histogram as fn() -> Histogram,
        );
        let overhead = Family::<RouterLabels, Histogram>::new_with_constructor(
            seconds_histogram as fn() -> Histogram,
        );
        let fail_closed = Family::default();
        let backend_health = Family::default();
        let active_backends = Family::default();
        let attempts = Family::default();
        let reloads = Family::default();
        let policy_results = Family::default();
        let shadow_skipped = Counter::default();
        let audit_dropped = Counter::default();
        let otlp_dropped = Family::default();
        let otlp_export_errors = Family::default();
        let panic_routes = Family::default();
        let body_bytes = Gauge::default();
        let body_budget_refused = Counter::default();
        let connections = Gauge::default();
        let connections_refused = Counter::default();
        let tokens = Family::default();
        let cost = Family::default();
        let budget_refused = Family::default();
        let budget_store_errors = Family::default();
        registry.register(
            "llmkube_router_tokens",
            "Tokens of answered requests by router, rule, backend, team, kind and source",
            tokens.clone(),
        );
        registry.register(
            "llmkube_router_cost_usd",
            "Dollars spent by router, rule, backend and team, at the backends' declared prices",
            cost.clone(),
        );
        registry.register(
            "llmkube_router_budget_refused",
            "Requests refused (429) because a budget was spent",
            budget_refused.clone(),
        );
        registry.register(
            "llmkube_router_budget_store_errors",
            "Budget checks the shared store could not answer, by failure mode (closed: refused with 503, open: counted locally)",
            budget_store_errors.clone(),
        );
        registry.register(
            "llmkube_router_panic_routes",
            "Requests whose every candidate backend was quarantined, tried anyway",
            panic_routes.clone(),
        );
        registry.register(
            "llmkube_request_body_bytes",
            "Bytes of request bodies held in memory across all requests",
            body_bytes.clone(),
        );
        registry.register(
            "llmkube_request_body_budget_refused",
            "Requests refused because the request-body memory budget stayed full",
            body_budget_refused.clone(),
        );
        registry.register(
            "llmkube_connections",
            "Client connections open",
            connections.clone(),
        );
        registry.register(
            "llmkube_connections_refused",
            "Client connections refused at the connection cap",
            connections_refused.clone(),
        );
        registry.register(
            "llmkube_router_requests",
            "Requests by router, rule, backend, classification and outcome",
            requests.clone(),
        );
        registry.register(
            "llmkube_router_request_duration_seconds",
            "Request duration from receipt to the last byte",
            duration.clone(),
        );
        registry.register(
            "llmkube_router_time_to_first_byte_seconds",
            "Time from request receipt to the first response body byte",
            ttfb.clone(),
        );
        registry.register(
            "llmkube_router_gateway_overhead_seconds",
            "Time the gateway added to a request, excluding the wait for the backend",
            overhead.clone(),
        );
        registry.register(
            "llmkube_router_fail_closed",
            "Requests denied by a fail-closed rule or sensitivity constraint",
            fail_closed.clone(),
        );
        registry.register(
            "llmkube_router_backend_health",
            "1 when the backend is in service, 0 while quarantined",
            backend_health.clone(),
        );
        registry.register(
            "llmkube_router_active_backends",
            "Backends currently in service",
            active_backends.clone(),
        );
        registry.register(
            "llmkube_router_backend_attempts",
            "Upstream attempts by backend and result",
            attempts.clone(),
        );
        registry.register(
            "llmkube_router_reloads",
            "Router reloads by result",
            reloads.clone(),
        );
        registry.register(
            "llmkube_policy_results",
            "Policy evaluations by policy and result; failed = denied, failed-open = skipped",
            policy_results.clone(),
        );
        registry.register(
            "llmkube_router_shadow_skipped",
            "Shadow copies skipped because too many were in flight",
            shadow_skipped.clone(),
        );
        registry.register(
            "llmkube_audit_dropped",
            "Audit lines dropped because the writer could not keep up",
            audit_dropped.clone(),
        );
        registry.register(
            "llmkube_otlp_dropped",
            "Spans and OTLP audit records dropped because the export queue was full",
            otlp_dropped.clone(),
        );
        registry.register(
            "llmkube_otlp_export_errors",
            "OTLP export calls that failed; their records are lost",
            otlp_export_errors.clone(),
        );
        Metrics {
            registry,
            requests,
            duration,
            ttfb,
            overhead,
            fail_closed,
            backend_health,
            active_backends,
            attempts,
            reloads,
            policy_results,
            shadow_skipped,
            audit_dropped,
            otlp_dropped,
            otlp_export_errors,
            panic_routes,
            body_bytes,
            body_budget_refused,
            connections,
            connections_refused,
            tokens,
            cost,
            budget_refused,
            budget_store_errors,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8192);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
