//! A finished request as OpenTelemetry spans: one server span named after the GenAI operation
//! (`chat gpt-4o`) with the GenAI semantic-convention attributes and the route decision, a
//! child span per policy evaluation (the compiled rules included) and one per backend attempt.
//!
//! Built once, when the request's audit line is written, and only for sampled traces. What is
//! sent is what the audit line already holds, minus the principal and the body: trace
//! pipelines are often less guarded than audit ones.

use std::borrow::Cow;
use std::time::{Instant, SystemTime};

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

use crate::dialect::Api;
use crate::metrics::PolicyResult;
use crate::policy::evaluation::{Evaluation, Timing};
use crate::request::accounting::Settled;
use crate::request::dispatch::Progress;
use crate::router::snapshot::RouterSnapshot;
use crate::telemetry::RequestTrace;
use crate::usage::UsageMeter;

/// What a finished request's spans are made of (borrowed from its record).
pub struct Finished<'a> {
    pub trace: &'a RequestTrace,
    pub snapshot: &'a RouterSnapshot,
    pub evaluation: &'a Evaluation,
    pub progress: &'a Progress,
    pub meter: Option<&'a UsageMeter>,
    pub settled: Option<&'a Settled>,
    pub api: Api,
    /// The body's `model`.
    pub model: &'a str,
    pub request_id: &'a str,
    pub team: Option<&'a str>,
    /// Indexes into the snapshot.
    pub rule: Option<usize>,
    pub backend: Option<usize>,
    /// The status the client got (0 when none was sent).
    pub status: u16,
    /// The audit outcome, and whether it is a failure.
    pub outcome: &'static str,
    pub failed: bool,
    pub error: Option<&'a str>,
    pub started: Instant,
}

/// The GenAI `gen_ai.operation.name` of an endpoint.
fn operation(api: Api) -> &'static str {
    match api {
        Api::ChatCompletions | Api::Messages | Api::Responses => "chat",
        Api::Completions => "text_completion",
        Api::Embeddings => "embeddings",
    }
}

/// Queues the spans of a finished request, if its trace is sampled.
pub fn export(rec: Finished<'_>) {
    let trace = rec.trace;
    if !trace.sampled() {
        return;
    }
    let (snap, ev, outcome) = (rec.snapshot, rec.evaluation, rec.outcome);
    let end = SystemTime::now();
    let mut attrs = Vec::with_capacity(24);
    let op = operation(rec.api);
    attrs.push(KeyValue::new("gen_ai.operation.name", op));
    attrs.push(KeyValue::new("gen_ai.request.model", rec.model.to_owned()));
    let meter = rec.meter;
    if let Some(model) = meter.and_then(|m| m.model()) {
        attrs.push(KeyValue::new("gen_ai.response.model", model.to_owned()));
    }
    if let Some(reasons) = meter.map(|m| m.finish_reasons()).filter(|r| !r.is_empty()) {
        let list = reasons.iter().map(|r| r.clone().into()).collect();
        attrs.push(KeyValue::new(
            "gen_ai.response.finish_reasons",
            Value::Array(opentelemetry::Array::String(list)),
        ));
    }
    if let Some(s) = rec.settled {
        attrs.push(KeyValue::new(
            "gen_ai.usage.input_tokens",
            s.usage.prompt as i64,
        ));
        attrs.push(KeyValue::new(
            "gen_ai.usage.output_tokens",
            s.usage.completion as i64,
        ));
        attrs.push(KeyValue::new("llmkube.usage.source", s.source.as_str()));
    }
    attrs.push(KeyValue::new("http.request.method", "POST"));
    attrs.push(KeyValue::new("url.path", rec.api.path()));
    if rec.status != 0 {
        attrs.push(KeyValue::new(
            "http.response.status_code",
            i64::from(rec.status),
        ));
    }
    attrs.push(KeyValue::new(
        "llmkube.request_id",
        rec.request_id.to_owned(),
    ));
    attrs.push(KeyValue::new("llmkube.router", snap.name.to_string()));
    attrs.push(KeyValue::new("llmkube.outcome", outcome));
    attrs.push(KeyValue::new(
        "llmkube.classification",
        ev.classifications.join(","),
    ));
    if let Some(source) = ev.classification_source {
        attrs.push(KeyValue::new(
            "llmkube.classification.source",
            source.as_str(),
        ));
    }
    if let Some(rule) = rec.rule.and_then(|i| snap.rule_names.get(i)) {
        attrs.push(KeyValue::new("llmkube.rule", rule.to_string()));
    }
    if let Some(b) = rec.backend.and_then(|i| snap.backends.get(i)) {
        attrs.push(KeyValue::new("llmkube.backend", b.name.to_string()));
        attrs.push(KeyValue::new("llmkube.backend.tier", b.tier.as_str()));
    }
    if let Some(team) = rec.team {
        attrs.push(KeyValue::new("llmkube.team", team.to_owned()));
    }
    attrs.push(KeyValue::new(
        "llmkube.attempts",
        i64::from(rec.progress.attempts),
    ));
    let status = if rec.failed {
        attrs.push(KeyValue::new("error.type", outcome));
        Status::error(rec.error.unwrap_or(outcome).to_owned())
    } else {
        Status::Unset
    };
    let request = trace.span.span_id();
    let name = if rec.model.is_empty() {
        Cow::Borrowed(op)
    } else {
        Cow::Owned(format!("{op} {}", rec.model))
    };
    let root = SpanData {
        span_context: trace.span.clone(),
        parent_span_id: trace
            .parent
            .as_ref()
            .map_or(SpanId::INVALID, |p| p.span_id()),
        parent_span_is_remote: trace.parent.is_some(),
        span_kind: SpanKind::Server,
        name,
        start_time: trace.at(rec.started),
        end_time: end,
        attributes: attrs,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status,
        instrumentation_scope: trace.scope().clone(),
    };
    let child =
        |name: String, kind: SpanKind, span: SpanId, timing: Timing, attributes: Vec<KeyValue>| {
            SpanData {
                span_context: SpanContext::new(
                    trace.span.trace_id(),
                    span,
                    TraceFlags::SAMPLED,
                    false,
                    trace.span.trace_state().clone(),
                ),
                parent_span_id: request,
                parent_span_is_remote: false,
                span_kind: kind,
                name: Cow::Owned(name),
                start_time: trace.at(timing.began),
                end_time: trace.at(timing.began + timing.took),
                attributes,
                dropped_attributes_count: 0,
                events: SpanEvents::default(),
                links: SpanLinks::default(),
                status: Status::Unset,
                instrumentation_scope: trace.scope().clone(),
            }
        };
    let mut spans = Vec::with_capacity(2 + ev.trace.len() + rec.progress.spans.len());
    let rules = &snap.policies.rules;
    // A failure of the rules has its own line in the policy trace, below.
    let rules_failed = ev.trace.iter().any(|t| *t.name.as_str() == *rules.name);
    if let Some(timing) = ev.rules.filter(|_| !rules_failed) {
        spans.push(child(
            format!("policy {}", rules.name),
            SpanKind::Internal,
            trace.new_span_id(),
            timing,
            vec![
                KeyValue::new("llmkube.policy.name", rules.name.to_string()),
                KeyValue::new("llmkube.policy.digest", rules.digest.clone()),
                KeyValue::new("llmkube.policy.result", PolicyResult::Route.as_str()),
            ],
        ));
    }
    for t in &ev.trace {
        let mut span = child(
            format!("policy {}", t.name),
            SpanKind::Internal,
            trace.new_span_id(),
            t.timing,
            vec![
                KeyValue::new("llmkube.policy.name", t.name.to_string()),
                KeyValue::new("llmkube.policy.digest", t.digest.clone()),
                KeyValue::new("llmkube.policy.config_digest", t.config_digest.to_string()),
                KeyValue::new("llmkube.policy.result", t.result.as_str()),
            ],
        );
        if matches!(t.result, PolicyResult::Failed | PolicyResult::FailedOpen) {
            span.status = Status::error(t.error.clone().unwrap_or_default());
        }
        spans.push(span);
    }
    for a in &rec.progress.spans {
        let Some(b) = snap.backends.get(a.backend) else {
            continue;
        };
        let timing = Timing {
            began: a.began,
            took: a.took,
        };
        let attributes = vec![
            KeyValue::new("llmkube.backend", b.name.to_string()),
            KeyValue::new("llmkube.backend.tier", b.tier.as_str()),
            KeyValue::new("server.address", b.authority.host().to_owned()),
            KeyValue::new(
                "server.port",
                i64::from(b.authority.port_u16().unwrap_or(0)),
            ),
        ];
        let name = format!("{op} {}", b.name);
        let mut span = child(name, SpanKind::Client, a.span, timing, attributes);
        if let Some(provider) = b.provider {
            span.attributes
                .push(KeyValue::new("gen_ai.provider.name", provider.as_str()));
        }
        if let Some(code) = a.status {
            span.attributes
                .push(KeyValue::new("http.response.status_code", i64::from(code)));
        }
        if let Some(error) = &a.error {
            span.status = Status::error(error.clone());
        } else if a.status.is_some_and(|s| s >= 500) {
            span.status = Status::error(format!("answered {}", a.status.unwrap_or_default()));
        }
        spans.push(span);
    }
    spans.push(root);
    trace.export(spans);
}
