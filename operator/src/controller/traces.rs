//! Controller traces: one span per reconcile (`reconcile Model`), carrying the object's kind,
//! namespace and name, the result and the error, exported over OTLP.
//!
//! On when an endpoint is set (`--otlp-endpoint`, `OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), off with `OTEL_TRACES_EXPORTER=none` or
//! `OTEL_SDK_DISABLED=true`. The exporter reads the other `OTEL_EXPORTER_OTLP_*` variables
//! itself. Spans go through the SDK's batch processor on the tokio runtime: a bounded queue
//! (`OTEL_BSP_MAX_QUEUE_SIZE`) that drops when full, so a slow collector never slows a
//! reconcile.

use std::borrow::Cow;

use llmkube_router::otel_env::{self, OtlpProtocol};
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

/// Where reconcile spans go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceSettings {
    /// Collector base URL, overriding the `OTEL_EXPORTER_OTLP_*ENDPOINT` variables.
    pub endpoint: Option<String>,
    /// The transport; unset: `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`, else HTTP/protobuf.
    pub protocol: Option<OtlpProtocol>,
}

/// A running span exporter.
pub struct Traces {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

impl std::fmt::Debug for Traces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Traces")
    }
}

impl Traces {
    /// Starts exporting when `settings` or the environment name a collector; `None` when
    /// traces are off. Must be called inside the tokio runtime.
    pub fn start(settings: &TraceSettings) -> Result<Option<Self>, String> {
        if !otel_env::traces_on(settings.endpoint.is_some()).map_err(|e| e.to_string())? {
            return Ok(None);
        }
        let protocol = match settings.protocol {
            Some(p) => Some(p),
            None => otel_env::protocol("TRACES").map_err(|e| e.to_string())?,
        };
        let grpc = protocol == Some(OtlpProtocol::Grpc);
        let exporter = if grpc {
            let mut b = SpanExporter::builder()
                .with_tonic()
                .with_protocol(Protocol::Grpc);
            if let Some(e) = &settings.endpoint {
                b = b.with_endpoint(e);
            }
            b.build()
        } else {
            let mut b = SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary);
            if let Some(e) = &settings.endpoint {
                b = b.with_endpoint(format!("{}/v1/traces", e.trim_end_matches('/')));
            }
            b.build()
        }
        .map_err(|e| format!("cannot set up OTLP trace export: {e}"))?;
        let resource = match otel_env::service_named() {
            true => Resource::builder().build(),
            false => Resource::builder()
                .with_service_name("llmkube-controller")
                .build(),
        };
        let provider = SdkTracerProvider::builder()
            .with_span_processor(BatchSpanProcessor::builder(exporter, Tokio).build())
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("llmkube-controller");
        Ok(Some(Traces { provider, tracer }))
    }

    /// Starts the span of one reconcile of `kind` `namespace/name`.
    pub fn reconcile(&self, kind: &'static str, namespace: &str, name: &str) -> ReconcileSpan {
        let span = self
            .tracer
            .span_builder(Cow::Owned(format!("reconcile {kind}")))
            .with_kind(SpanKind::Internal)
            .with_attributes([
                KeyValue::new("k8s.object.kind", kind),
                KeyValue::new("k8s.namespace.name", namespace.to_owned()),
                KeyValue::new("k8s.object.name", name.to_owned()),
            ])
            .start(&self.tracer);
        ReconcileSpan(span)
    }

    /// Exports what is queued and stops (at shutdown). Blocks until the runtime has sent the
    /// last batch: call it off the runtime's worker threads.
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "OTLP trace export did not shut down cleanly");
        }
    }
}

/// A reconcile's span, ended with its result.
pub struct ReconcileSpan(opentelemetry_sdk::trace::Span);

impl ReconcileSpan {
    /// Ends the span: `ok`, or `error` with the message.
    pub fn end(mut self, error: Option<&dyn std::fmt::Display>) {
        match error {
            None => self
                .0
                .set_attribute(KeyValue::new("llmkube.reconcile.result", "ok")),
            Some(e) => {
                self.0
                    .set_attribute(KeyValue::new("llmkube.reconcile.result", "error"));
                self.0.set_status(Status::error(e.to_string()));
            }
        }
        self.0.end();
    }
}
