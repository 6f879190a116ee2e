//! A request's place in a trace: the W3C `traceparent` a client sent (if valid), the sampling
//! decision (`OTEL_TRACES_SAMPLER`, parent-based by default), and the ids of the request's
//! span and of each backend attempt's span, which go to backends as their `traceparent`.
//!
//! Nothing is recorded while the request runs but a few timestamps; its spans are built once,
//! when it ends (`request::spans`), and only when it was sampled.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::HeaderMap;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceState,
};
use opentelemetry::{Context, InstrumentationScope};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, SamplingDecision, ShouldSample, SpanData, SpanExporter,
};
use prometheus_client::metrics::counter::Counter;

use super::exporters::{OtlpConfig, TelemetryError};
use crate::export_queue::ExportQueue;

/// Starts request traces and exports their spans.
pub struct Tracer {
    sampler: Box<dyn ShouldSample>,
    ids: RandomIdGenerator,
    propagator: TraceContextPropagator,
    pub(super) scope: InstrumentationScope,
    queue: ExportQueue<SpanData>,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tracer")
    }
}

impl Tracer {
    /// A tracer exporting through `config`'s span exporter. Must be called inside the runtime.
    pub fn start(
        config: &OtlpConfig,
        dropped: Counter,
        failed: Counter,
    ) -> Result<Arc<Self>, TelemetryError> {
        let runtime = super::runtime()?;
        let mut exporter = config.span_exporter()?;
        exporter.set_resource(&config.resource());
        let export = move |batch| {
            if let Err(e) = runtime.block_on(exporter.export(batch))
                && failed.inc().is_multiple_of(100)
            {
                tracing::warn!(error = %e, "OTLP trace export failed; its spans are lost");
            }
        };
        let queue = ExportQueue::start("otlp-traces", config.span_queue, dropped, export)?;
        Ok(Arc::new(Tracer {
            // The SDK's reading of OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG.
            sampler: opentelemetry_sdk::trace::Config::default().sampler,
            ids: RandomIdGenerator::default(),
            propagator: TraceContextPropagator::new(),
            scope: super::scope(),
            queue,
        }))
    }

    /// The trace a request received at `started` belongs to, continuing the client's.
    pub fn begin(self: &Arc<Self>, headers: &HeaderMap, started: Instant) -> RequestTrace {
        let parent_cx = self.propagator.extract(&HeaderExtractor(headers));
        let parent = parent_cx.span().span_context().clone();
        let parent = parent.is_valid().then_some(parent);
        let trace_id = parent
            .as_ref()
            .map_or_else(|| self.ids.new_trace_id(), |p| p.trace_id());
        let decision = self.sampler.should_sample(
            Some(&parent_cx),
            trace_id,
            "request",
            &SpanKind::Server,
            &[],
            &[],
        );
        let sampled = decision.decision == SamplingDecision::RecordAndSample;
        let flags = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        let span = SpanContext::new(
            trace_id,
            self.ids.new_span_id(),
            flags,
            false,
            decision.trace_state,
        );
        RequestTrace {
            tracer: Arc::clone(self),
            span,
            parent,
            start: SystemTime::now()
                .checked_sub(started.elapsed())
                .unwrap_or(SystemTime::UNIX_EPOCH),
            started,
        }
    }

    /// Exports what is queued and stops (at shutdown; blocks).
    pub fn close(&self) {
        self.queue.close();
    }
}

/// One request's trace.
#[derive(Debug)]
pub struct RequestTrace {
    tracer: Arc<Tracer>,
    /// The request's own span.
    pub(crate) span: SpanContext,
    /// The client's span, when it sent a valid `traceparent`.
    pub(crate) parent: Option<SpanContext>,
    /// Wall-clock time of `started`.
    start: SystemTime,
    started: Instant,
}

/// One backend attempt, as its span will tell it.
#[derive(Debug, Clone)]
pub struct AttemptSpan {
    /// The id sent to the backend in `traceparent`.
    pub span: SpanId,
    /// Index of the backend in the snapshot.
    pub backend: usize,
    pub began: Instant,
    /// Until the response headers, or the failure.
    pub took: Duration,
    /// The backend's status, when it answered.
    pub status: Option<u16>,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

impl RequestTrace {
    /// Whether spans of this request are exported.
    pub fn sampled(&self) -> bool {
        self.span.is_sampled()
    }

    /// The span id for a backend attempt: a new one when sampled, else the request's own
    /// (an unsampled trace still propagates, and records nothing).
    pub fn attempt_span(&self) -> SpanId {
        if self.sampled() {
            self.tracer.ids.new_span_id()
        } else {
            self.span.span_id()
        }
    }

    /// A new span id in this trace.
    pub(crate) fn new_span_id(&self) -> SpanId {
        self.tracer.ids.new_span_id()
    }

    /// Sets `traceparent` (and, toward the local tier, the client's `tracestate`) on a request
    /// to a backend, naming `span` as the parent.
    pub fn inject(&self, span: SpanId, local: bool, headers: &mut HeaderMap) {
        let state = if local {
            self.span.trace_state().clone()
        } else {
            TraceState::default()
        };
        let cx = SpanContext::new(
            self.span.trace_id(),
            span,
            self.span.trace_flags(),
            false,
            state,
        );
        headers.remove("tracestate");
        let cx = Context::new().with_remote_span_context(cx);
        self.tracer
            .propagator
            .inject_context(&cx, &mut HeaderInjector(headers));
        // The propagator writes an empty `tracestate` when there is none.
        if headers.get("tracestate").is_some_and(|v| v.is_empty()) {
            headers.remove("tracestate");
        }
    }

    /// Wall-clock time of an instant of this request.
    pub(crate) fn at(&self, instant: Instant) -> SystemTime {
        self.start + instant.saturating_duration_since(self.started)
    }

    /// Queues finished spans for export.
    pub(crate) fn export(&self, spans: impl IntoIterator<Item = SpanData>) {
        for span in spans {
            self.tracer.queue.push(span);
        }
    }

    pub(crate) fn scope(&self) -> &InstrumentationScope {
        &self.tracer.scope
    }
}
