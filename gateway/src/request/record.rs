//! The record of one proxied request, turned into exactly one audit line and one set of
//! metric updates when the request ends — however it ends, including a client that goes away.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use serde::Serialize;

use crate::auth::Identity;
use crate::dialect::Api;
use crate::dialect::stream::{StreamContext, StreamTranslator};
use crate::http::body::{StreamEnd, StreamWatch};
use crate::metrics::{
    CostLabels, Label, Metrics, RequestLabels, RouterLabels, RuleLabels, TokenKind, TokenLabels,
};
use crate::policy::evaluation::{ClassificationSource, Evaluation, PolicyTrace};
use crate::request::accounting::Accounting;
use crate::request::dispatch::Progress;
use crate::router::snapshot::RouterSnapshot;
use crate::usage::UsageSource;

/// How a request ended (the audit `outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A complete non-streamed response from a backend (any status it chose, 4xx included).
    Ok,
    /// A complete streamed (SSE) response.
    OkStream,
    /// No route (503).
    NoRoute,
    /// Denied by a fail-closed rule or the sensitivity constraint before dispatch (503).
    FailClosed,
    /// A fail-closed route whose backends all failed (503).
    FailClosedRuntime,
    /// Every attempt failed (502).
    AllBackendsFailed,
    /// The final attempt timed out waiting for headers (504).
    Timeout,
    /// The request was malformed or too large (4xx).
    BadRequest,
    /// The response stream broke, idled out or hit its cap after it started.
    StreamError,
    /// The client went away before the response was complete.
    ClientClosed,
    /// The client took no data for the stream idle timeout; the stream was cut.
    ClientStalled,
    /// Refused for want of capacity (the request-body memory budget stayed full).
    Overloaded,
    /// A policy rejected the request.
    PolicyRejected,
    /// A policy failed and failed closed (503).
    PolicyError,
    /// No valid credentials (401); nothing of the request went further.
    Unauthenticated,
    /// The principal's team may not use what the request asked for (403).
    Forbidden,
    /// A budget is spent for its current window (429).
    BudgetExceeded,
    /// A budget's shared store could not answer and the budget fails closed (503).
    BudgetUnavailable,
}

impl Outcome {
    /// The audit/metric spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::OkStream => "ok_stream",
            Outcome::NoRoute => "no_route",
            Outcome::FailClosed => "fail_closed",
            Outcome::FailClosedRuntime => "fail_closed_runtime",
            Outcome::AllBackendsFailed => "all_backends_failed",
            Outcome::Timeout => "timeout",
            Outcome::BadRequest => "bad_request",
            Outcome::StreamError => "stream_error",
            Outcome::ClientClosed => "client_closed",
            Outcome::ClientStalled => "client_stalled",
            Outcome::Overloaded => "overloaded",
            Outcome::PolicyRejected => "policy_rejected",
            Outcome::PolicyError => "policy_error",
            Outcome::Unauthenticated => "unauthenticated",
            Outcome::Forbidden => "forbidden",
            Outcome::BudgetExceeded => "budget_exceeded",
            Outcome::BudgetUnavailable => "budget_unavailable",
        }
    }

    fn is_fail_closed(self) -> bool {
        matches!(self, Outcome::FailClosed | Outcome::FailClosedRuntime)
    }
}

/// Everything known about a request, filled in as it is served.
pub struct RequestRecord {
    /// The snapshot the request is served with.
    pub snapshot: Arc<RouterSnapshot>,
    /// Where to count it.
    pub metrics: Arc<Metrics>,
    /// `x-request-id`.
    pub request_id: String,
    /// Who sent it (principal and team).
    pub identity: Identity,
    /// Receipt time.
    pub started: Instant,
    /// Body `model`.
    pub model: String,
    /// `x-llmkube-task-complexity`.
    pub task_complexity: Option<String>,
    /// Index of the rule that matched.
    pub rule: Option<usize>,
    /// Index of the backend that answered.
    pub backend: Option<usize>,
    /// HTTP status returned to the client.
    pub status: u16,
    /// What the policies found and which of them ran (classifications, annotations, trace).
    pub evaluation: Evaluation,
    /// What dispatch did: attempts, time waiting for backends, the last attempt's timeout.
    pub progress: Progress,
    /// When the response headers were handed to the client.
    pub headers_sent: Option<Instant>,
    /// Time to the first response body byte.
    pub ttfb: Option<Duration>,
    /// Request body size.
    pub bytes_in: u64,
    /// Response body bytes sent.
    pub bytes_out: u64,
    /// Request body, when `includeRequestBody` is set.
    pub body: Option<Bytes>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// Usage, cost and the budget reservation.
    pub accounting: Accounting,
    /// The endpoint the client called.
    pub api: Api,
    /// What translating the answer into the client's API needs of the request.
    pub dialect: StreamContext,
    /// Translates a streamed answer from the backend's API to the client's.
    pub translator: Option<StreamTranslator>,
    /// Its trace, when the gateway exports traces.
    pub trace: Option<crate::telemetry::RequestTrace>,
    finished: bool,
}

/// One audit line. Keys are camelCase like the original's (`latencyMs`, `backendTier`, ...).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AuditLine<'a> {
    time: String,
    request_id: &'a str,
    router: &'a str,
    namespace: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    principal: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    team: Option<&'a str>,
    endpoint: &'static str,
    model: &'a str,
    classification: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    classification_source: Option<ClassificationSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    task_complexity: Option<&'a str>,
    rule: Option<&'a str>,
    backend: Option<&'a str>,
    backend_tier: Option<&'a str>,
    outcome: &'static str,
    status: u16,
    attempts: u32,
    latency_ms: f64,
    ttfb_ms: Option<f64>,
    timeout_ms: Option<u64>,
    bytes_in: u64,
    bytes_out: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    completion_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage_source: Option<UsageSource>,
    #[serde(rename = "costUSD", skip_serializing_if = "Option::is_none")]
    cost_usd: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    rules_digest: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    policies: &'a [PolicyTrace],
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    annotations: serde_json::Map<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl RequestRecord {
    /// A record for a request received at `started`.
    pub fn new(
        snapshot: Arc<RouterSnapshot>,
        metrics: Arc<Metrics>,
        request_id: String,
        started: Instant,
    ) -> Self {
        RequestRecord {
            snapshot,
            metrics,
            request_id,
            started,
            identity: Identity::default(),
            model: String::new(),
            task_complexity: None,
            rule: None,
            backend: None,
            status: 0,
            evaluation: Evaluation::default(),
            progress: Progress::default(),
            headers_sent: None,
            ttfb: None,
            bytes_in: 0,
            bytes_out: 0,
            body: None,
            error: None,
            accounting: Accounting::default(),
            api: Api::ChatCompletions,
            dialect: StreamContext::default(),
            translator: None,
            trace: None,
            finished: false,
        }
    }

    /// Writes the audit line and updates metrics. Later calls (and the drop) do nothing.
    pub fn finish(&mut self, outcome: Outcome) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let (snap, ev) = (&self.snapshot, &self.evaluation);
        let elapsed = self.started.elapsed();
        let rule: Option<&Label> = self.rule.and_then(|i| snap.rule_names.get(i));
        let backend = self.backend.and_then(|i| snap.backends.get(i));
        let router = RouterLabels {
            router: Arc::clone(&snap.name),
        };
        let answered = backend.is_some() && (200..300).contains(&self.status);
        let settled = (self.accounting).settle(
            answered,
            backend.map_or_else(Default::default, |b| b.prices),
        );
        let team = snap.team_label(self.identity.team.as_deref());
        let m = &self.metrics;
        if let (Some(s), Some(b)) = (settled, backend) {
            let rule = Arc::clone(rule.unwrap_or(&snap.empty_label));
            for (kind, n) in [
                (TokenKind::Prompt, s.usage.prompt),
                (TokenKind::Completion, s.usage.completion),
            ] {
                m.tokens
                    .get_or_create(&TokenLabels {
                        router: Arc::clone(&snap.name),
                        rule: Arc::clone(&rule),
                        backend: Arc::clone(&b.name),
                        team: Arc::clone(&team),
                        kind,
                        source: s.source,
                    })
                    .inc_by(n);
            }
            if s.cost.0 > 0 {
                m.cost
                    .get_or_create(&CostLabels {
                        router: Arc::clone(&snap.name),
                        rule,
                        backend: Arc::clone(&b.name),
                        team: Arc::clone(&team),
                    })
                    .inc_by(s.cost.as_f64());
            }
        }
        m.requests
            .get_or_create(&RequestLabels {
                router: Arc::clone(&snap.name),
                rule: Arc::clone(rule.unwrap_or(&snap.empty_label)),
                backend: backend
                    .map_or_else(|| Arc::clone(&snap.empty_label), |b| Arc::clone(&b.name)),
                classification: snap.classification_label(&ev.classifications),
                team,
                outcome: outcome.as_str(),
            })
            .inc();
        m.duration
            .get_or_create(&router)
            .observe(elapsed.as_secs_f64());
        if let Some(ttfb) = self.ttfb {
            m.ttfb.get_or_create(&router).observe(ttfb.as_secs_f64());
        }
        if let Some(sent) = self.headers_sent {
            let own = sent
                .duration_since(self.started)
                .saturating_sub(self.progress.upstream_wait);
            m.overhead.get_or_create(&router).observe(own.as_secs_f64());
        }
        if outcome.is_fail_closed() {
            m.fail_closed
                .get_or_create(&RuleLabels {
                    router: Arc::clone(&snap.name),
                    rule: Arc::clone(rule.unwrap_or(&snap.empty_label)),
                })
                .inc();
        }
        for t in &ev.trace {
            m.policy_results
                .get_or_create(&crate::metrics::PolicyLabels {
                    router: Arc::clone(&snap.name),
                    policy: Arc::clone(&t.name),
                    result: t.result,
                })
                .inc();
        }
        let body = self.body.as_ref().map(|b| String::from_utf8_lossy(b));
        let line = AuditLine {
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            request_id: &self.request_id,
            router: &snap.name,
            namespace: &snap.namespace,
            principal: self.identity.principal.as_deref(),
            team: self.identity.team.as_deref(),
            endpoint: self.api.path(),
            model: &self.model,
            classification: ev.classifications.join(","),
            classification_source: ev.classification_source,
            task_complexity: self.task_complexity.as_deref(),
            rule: rule.map(|r| r.as_str()),
            backend: backend.map(|b| b.name.as_str()),
            backend_tier: backend.map(|b| b.tier.as_str()),
            outcome: outcome.as_str(),
            status: self.status,
            attempts: self.progress.attempts,
            latency_ms: ms(elapsed),
            ttfb_ms: self.ttfb.map(ms),
            timeout_ms: self.progress.last_timeout.map(|t| t.as_millis() as u64),
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            prompt_tokens: settled.map(|s| s.usage.prompt),
            completion_tokens: settled.map(|s| s.usage.completion),
            total_tokens: settled.map(|s| s.usage.total()),
            usage_source: settled.map(|s| s.source),
            cost_usd: settled.filter(|s| s.cost.0 > 0).map(|s| s.cost.to_string()),
            error: self.error.as_deref(),
            rules_digest: &snap.policies.rules.digest,
            policies: &ev.trace,
            annotations: ev
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
                .collect(),
            body: body.as_deref(),
        };
        if let Ok(text) = serde_json::to_string(&line) {
            snap.audit.write(text);
        }
        if let Some(trace) = &self.trace {
            crate::request::spans::export(crate::request::spans::Finished {
                trace,
                snapshot: snap,
                evaluation: ev,
                progress: &self.progress,
                meter: self.accounting.meter.as_ref(),
                settled: settled.as_ref(),
                api: self.api,
                model: &self.model,
                request_id: &self.request_id,
                team: self.identity.team.as_deref(),
                rule: self.rule,
                backend: self.backend,
                status: self.status,
                outcome: outcome.as_str(),
                failed: !matches!(outcome, Outcome::Ok | Outcome::OkStream) || self.status >= 500,
                error: self.error.as_deref(),
                started: self.started,
            });
        }
    }
}

impl StreamWatch for RequestRecord {
    fn pass(&mut self, data: Bytes) -> Bytes {
        let data = match &mut self.accounting.meter {
            Some(meter) => meter.pass(data),
            None => data,
        };
        let data = match &mut self.translator {
            Some(t) => t.feed(&data),
            None => data,
        };
        if !data.is_empty() {
            self.ttfb.get_or_insert_with(|| self.started.elapsed());
            self.bytes_out += data.len() as u64;
        }
        data
    }

    fn flush(&mut self) -> Option<Bytes> {
        let rest = self.accounting.meter.as_mut().and_then(|m| m.flush());
        let rest = match &mut self.translator {
            None => rest?,
            Some(t) => {
                let mut out = rest.map_or_else(Vec::new, |r| t.feed(&r).to_vec());
                out.extend_from_slice(&t.finish());
                Bytes::from(out)
            }
        };
        self.bytes_out += rest.len() as u64;
        (!rest.is_empty()).then_some(rest)
    }

    fn error_event(&self, message: &str, code: &str) -> Bytes {
        match &self.translator {
            Some(t) => t.error_event(message, code),
            None => crate::dialect::stream_error_event(self.api, message, code, 0),
        }
    }

    fn ended(mut self, end: StreamEnd) {
        if self
            .translator
            .as_ref()
            .is_some_and(StreamTranslator::broken)
        {
            let message =
                "the backend's stream could not be translated; it ended with an error event";
            self.error = Some(message.to_owned());
            self.finish(Outcome::StreamError);
            return;
        }
        let outcome = match end {
            StreamEnd::Complete { sse: true } => Outcome::OkStream,
            StreamEnd::Complete { sse: false } => Outcome::Ok,
            StreamEnd::ClientGone => Outcome::ClientClosed,
            StreamEnd::ClientStalled(message) => {
                tracing::warn!(request_id = %self.request_id, "{message}; stream cut");
                self.error = Some(message);
                Outcome::ClientStalled
            }
            StreamEnd::Cut(message) => {
                tracing::warn!(request_id = %self.request_id, "{message}");
                self.error = Some(message);
                Outcome::StreamError
            }
        };
        self.finish(outcome);
    }
}

impl Drop for RequestRecord {
    fn drop(&mut self) {
        if !self.finished {
            self.finish(Outcome::ClientClosed);
        }
    }
}
