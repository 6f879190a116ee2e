//! OpenTelemetry over OTLP: a span tree per request and the `otlp` audit sink, exported off
//! the request path through bounded queues that drop and count when a collector cannot keep
//! up (`llmkube_otlp_dropped_total`, `llmkube_otlp_export_errors_total`).

pub mod audit_logs;
mod exporters;
mod tracer;

pub use exporters::{OtlpConfig, OtlpProtocol, Signal, TelemetryError};
pub use tracer::{AttemptSpan, RequestTrace, Tracer};

/// The runtime the exporting threads run their exports on: the OTLP clients need tokio.
fn runtime() -> Result<tokio::runtime::Handle, TelemetryError> {
    tokio::runtime::Handle::try_current().map_err(|e| {
        TelemetryError::Thread(std::io::Error::other(format!(
            "OTLP export needs a runtime: {e}"
        )))
    })
}

/// The instrumentation scope of every span and record.
fn scope() -> opentelemetry::InstrumentationScope {
    opentelemetry::InstrumentationScope::builder("llmkube-gateway")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}
