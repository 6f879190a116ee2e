//! OpenTelemetry over OTLP: a span tree per request and the `otlp` audit sink, exported off
//! the request path through bounded queues that drop and count when a collector cannot keep
//! up (`llmkube_otlp_dropped_total`, `llmkube_otlp_export_errors_total`).

mod audit_logs;
mod export;
mod exporters;
mod tracer;

pub use audit_logs::AuditLogs;
pub use export::QueueSettings;
pub use exporters::{OtlpConfig, OtlpProtocol, Signal, TelemetryError};
pub use tracer::{AttemptSpan, RequestTrace, Tracer};
