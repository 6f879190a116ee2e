//! The `otlp` audit sink: each audit line becomes one OTLP log record (event name
//! `llmkube.audit`) whose attributes are the line's fields, the same keys and values as the
//! JSON line (objects and arrays as OTLP maps and lists).
//!
//! Lines are converted on the export thread, not on the request path. A full queue drops
//! and counts in `llmkube_audit_dropped_total`, as the other sinks do; a failed export counts
//! in `llmkube_otlp_export_errors_total{signal="logs"}`.

use std::time::{Duration, SystemTime};

use opentelemetry::logs::{AnyValue, LogRecord, Logger, LoggerProvider, Severity};
use opentelemetry::{InstrumentationScope, Key};
use opentelemetry_sdk::logs::{LogBatch, LogExporter, SdkLogRecord, SdkLogger, SdkLoggerProvider};
use prometheus_client::metrics::counter::Counter;

use super::exporters::{OtlpConfig, TelemetryError};
use crate::export_queue::{ExportQueue, QueueSettings};

/// Audit lines queued for the collector at most (as for the other sinks).
const QUEUE: usize = 16 * 1024;

/// Starts the sink: a queue of audit lines whose thread converts and exports them. Must be
/// called inside the runtime, on which the exports run.
pub fn start(
    config: &OtlpConfig,
    dropped: Counter,
    failed: Counter,
) -> Result<ExportQueue<String>, TelemetryError> {
    let runtime = super::runtime()?;
    let mut exporter = config.log_exporter()?;
    exporter.set_resource(&config.resource());
    // Records can only be made by a logger; this provider has no processor, the queue does its
    // work.
    let logger = SdkLoggerProvider::builder()
        .build()
        .logger("llmkube-gateway");
    let scope = super::scope();
    let settings = QueueSettings {
        capacity: QUEUE,
        batch: 512,
        delay: Duration::from_millis(200),
    };
    let export = move |lines: Vec<String>| {
        let records: Vec<SdkLogRecord> = lines.iter().filter_map(|l| record(&logger, l)).collect();
        let batch: Vec<(&SdkLogRecord, &InstrumentationScope)> =
            records.iter().map(|r| (r, &scope)).collect();
        if let Err(e) = runtime.block_on(exporter.export(LogBatch::new(&batch)))
            && failed.inc().is_multiple_of(100)
        {
            tracing::error!(error = %e, "OTLP audit export failed; its records are lost");
        }
    };
    Ok(ExportQueue::start("otlp-audit", settings, dropped, export)?)
}

/// The log record of one audit line (`None` if it is not a JSON object, which the gateway
/// never writes).
fn record(logger: &SdkLogger, line: &str) -> Option<SdkLogRecord> {
    let serde_json::Value::Object(fields) = serde_json::from_str(line).ok()? else {
        return None;
    };
    let mut rec = logger.create_log_record();
    rec.set_event_name("llmkube.audit");
    rec.set_severity_number(Severity::Info);
    rec.set_severity_text("INFO");
    let now = SystemTime::now();
    let time = fields
        .get("time")
        .and_then(|t| t.as_str())
        .and_then(|t| humantime::parse_rfc3339(t).ok());
    rec.set_timestamp(time.unwrap_or(now));
    rec.set_observed_timestamp(now);
    for (key, value) in fields {
        if let Some(v) = any_value(value) {
            rec.add_attribute(Key::new(key), v);
        }
    }
    Some(rec)
}

/// A JSON value as an OTLP value; `null` is left out, as the JSON line leaves out absent
/// fields.
fn any_value(v: serde_json::Value) -> Option<AnyValue> {
    use serde_json::Value;
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => AnyValue::Boolean(b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => AnyValue::Int(i),
            None => AnyValue::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => AnyValue::String(s.into()),
        Value::Array(items) => {
            AnyValue::ListAny(Box::new(items.into_iter().filter_map(any_value).collect()))
        }
        Value::Object(map) => AnyValue::Map(Box::new(
            map.into_iter()
                .filter_map(|(k, v)| Some((Key::new(k), any_value(v)?)))
                .collect(),
        )),
    })
}
