//! Where telemetry goes: the OTLP settings (flags, then the standard `OTEL_*` environment
//! variables, then the OpenTelemetry defaults) and the exporters built from them.
//!
//! gRPC goes through tonic; HTTP/protobuf through the gateway's own hyper + rustls connector,
//! so an `https` collector is trusted like an `https` backend: the system roots plus
//! `--extra-ca-file`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use opentelemetry_otlp::{
    LogExporter, Protocol, SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use opentelemetry_sdk::Resource;

use crate::export_queue::QueueSettings;

pub use llmkube_router::otel_env::OtlpProtocol;
use llmkube_router::otel_env::{self, EnvError, var as env};

pub use crate::metrics::Signal;

/// `TRACES` or `LOGS`, as the signal's variables spell it.
fn signal_name(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => "TRACES",
        Signal::Logs => "LOGS",
    }
}

/// `OTEL_EXPORTER_OTLP_{TRACES,LOGS}_{suffix}`.
fn signal_env(signal: Signal, suffix: &str) -> String {
    format!("OTEL_EXPORTER_OTLP_{}_{suffix}", signal_name(signal))
}

/// The OTLP/HTTP path of `signal`.
fn signal_path(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => "/v1/traces",
        Signal::Logs => "/v1/logs",
    }
}

/// How the gateway exports OpenTelemetry data.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpConfig {
    /// Export a span tree per request.
    pub traces: bool,
    /// Collector base URL, overriding the `OTEL_EXPORTER_OTLP_*ENDPOINT` variables (which the
    /// exporter reads itself when this is unset; default `http://localhost:4318`, or `:4317`
    /// for gRPC). For HTTP the signal's path (`/v1/traces`, `/v1/logs`) is appended.
    pub endpoint: Option<String>,
    /// The transport; unset: `OTEL_EXPORTER_OTLP_{TRACES,LOGS}_PROTOCOL`, then
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`, then HTTP/protobuf.
    pub protocol: Option<OtlpProtocol>,
    /// `service.name` when neither `OTEL_SERVICE_NAME` nor `OTEL_RESOURCE_ATTRIBUTES` names it.
    pub service_name: String,
    /// The span queue (`OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`,
    /// `OTEL_BSP_SCHEDULE_DELAY`).
    pub span_queue: QueueSettings,
    /// CA bundle (PEM) trusted for an `https` collector besides the system roots.
    pub extra_ca: Option<PathBuf>,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            traces: false,
            endpoint: None,
            protocol: None,
            service_name: "llmkube-gateway".into(),
            span_queue: QueueSettings::default(),
            extra_ca: None,
        }
    }
}

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// An `OTEL_*` variable has a value that cannot be used.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// The exporter refused its configuration.
    #[error("cannot set up OTLP {signal:?} export: {message}")]
    Exporter {
        /// Which exporter.
        signal: Signal,
        /// Why.
        message: String,
    },
    /// The export thread could not start.
    #[error("cannot start the OTLP export thread: {0}")]
    Thread(#[from] std::io::Error),
}

fn env_number<T: std::str::FromStr>(name: &str) -> Result<Option<T>, EnvError> {
    env(name)
        .map(|v| {
            v.trim().parse().map_err(|_| EnvError {
                name: name.into(),
                message: "not a whole number".into(),
                value: v,
            })
        })
        .transpose()
}

impl OtlpConfig {
    /// Applies the standard environment variables: traces are exported when an OTLP endpoint
    /// is configured (or `OTEL_TRACES_EXPORTER=otlp`), unless `OTEL_TRACES_EXPORTER=none` or
    /// `OTEL_SDK_DISABLED=true`; the span queue follows the `OTEL_BSP_*` variables.
    pub fn apply_env(&mut self) -> Result<(), TelemetryError> {
        self.traces = otel_env::traces_on(self.traces || self.endpoint.is_some())?;
        let q = &mut self.span_queue;
        q.capacity = env_number("OTEL_BSP_MAX_QUEUE_SIZE")?.unwrap_or(q.capacity);
        q.batch = env_number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")?
            .unwrap_or(q.batch)
            .clamp(1, q.capacity.max(1));
        if let Some(ms) = env_number::<u64>("OTEL_BSP_SCHEDULE_DELAY")? {
            q.delay = Duration::from_millis(ms.max(1));
        }
        Ok(())
    }

    /// The transport for `signal`: the flag's, the variables', else HTTP/protobuf.
    fn protocol(&self, signal: Signal) -> Result<OtlpProtocol, TelemetryError> {
        let protocol = match self.protocol {
            Some(p) => Some(p),
            None => otel_env::protocol(signal_name(signal))?,
        };
        Ok(protocol.unwrap_or(OtlpProtocol::HttpProtobuf))
    }

    /// The exporter's view of where `signal` goes, for logs.
    pub fn describe(&self, signal: Signal) -> String {
        let protocol = match self.protocol(signal) {
            Ok(OtlpProtocol::Grpc) => "grpc",
            Ok(OtlpProtocol::HttpProtobuf) => "http/protobuf",
            Err(_) => "?",
        };
        match &self.endpoint {
            Some(e) => format!("{e} ({protocol})"),
            None => format!("the OTEL_EXPORTER_OTLP_* endpoint ({protocol})"),
        }
    }

    /// The resource every record carries: `service.name` and the `OTEL_RESOURCE_ATTRIBUTES`.
    pub fn resource(&self) -> Resource {
        let builder = Resource::builder();
        if otel_env::service_named() {
            builder.build()
        } else {
            builder.with_service_name(self.service_name.clone()).build()
        }
    }

    /// The span exporter. Must be called inside the tokio runtime.
    pub fn span_exporter(&self) -> Result<SpanExporter, TelemetryError> {
        let signal = Signal::Traces;
        match self.protocol(signal)? {
            OtlpProtocol::Grpc => self
                .grpc(SpanExporter::builder().with_tonic(), signal)?
                .build(),
            OtlpProtocol::HttpProtobuf => self
                .http(SpanExporter::builder().with_http(), signal)?
                .build(),
        }
        .map_err(|e| TelemetryError::Exporter {
            signal,
            message: e.to_string(),
        })
    }

    /// The log exporter (the `otlp` audit sink). Must be called inside the tokio runtime.
    pub fn log_exporter(&self) -> Result<LogExporter, TelemetryError> {
        let signal = Signal::Logs;
        match self.protocol(signal)? {
            OtlpProtocol::Grpc => self
                .grpc(LogExporter::builder().with_tonic(), signal)?
                .build(),
            OtlpProtocol::HttpProtobuf => self
                .http(LogExporter::builder().with_http(), signal)?
                .build(),
        }
        .map_err(|e| TelemetryError::Exporter {
            signal,
            message: e.to_string(),
        })
    }

    /// A gRPC exporter builder with the endpoint and TLS.
    fn grpc<B: WithExportConfig + WithTonicConfig>(
        &self,
        builder: B,
        signal: Signal,
    ) -> Result<B, TelemetryError> {
        let mut b = builder.with_protocol(Protocol::Grpc);
        if let Some(e) = &self.endpoint {
            b = b.with_endpoint(e);
        }
        Ok(match self.grpc_tls(signal)? {
            Some(tls) => b.with_tls_config(tls),
            None => b,
        })
    }

    /// An HTTP/protobuf exporter builder with the endpoint and the gateway's HTTP client.
    fn http<B: WithExportConfig + WithHttpConfig>(
        &self,
        builder: B,
        signal: Signal,
    ) -> Result<B, TelemetryError> {
        let b = (builder.with_protocol(Protocol::HttpBinary))
            .with_http_client(self.http_client(signal)?);
        Ok(match &self.endpoint {
            Some(e) => b.with_endpoint(http_endpoint(e, signal)),
            None => b,
        })
    }

    /// The hyper client for OTLP/HTTP: the gateway's TLS trust, the exporter's timeout.
    fn http_client(
        &self,
        signal: Signal,
    ) -> Result<
        opentelemetry_http::hyper::HyperClient<crate::http::client::Connector>,
        TelemetryError,
    > {
        let connector =
            crate::http::client::connector(self.extra_ca.as_deref(), Duration::from_secs(5))
                .map_err(|e| TelemetryError::Exporter {
                    signal,
                    message: e.to_string(),
                })?;
        Ok(opentelemetry_http::hyper::HyperClient::new(
            connector,
            self.timeout(signal)?,
            None,
        ))
    }

    /// `OTEL_EXPORTER_OTLP_{signal}_TIMEOUT`, then `OTEL_EXPORTER_OTLP_TIMEOUT` (ms), else 10 s.
    fn timeout(&self, signal: Signal) -> Result<Duration, TelemetryError> {
        let ms = match env_number::<u64>(&signal_env(signal, "TIMEOUT"))? {
            Some(ms) => Some(ms),
            None => env_number::<u64>("OTEL_EXPORTER_OTLP_TIMEOUT")?,
        };
        Ok(Duration::from_millis(ms.unwrap_or(10_000)))
    }

    /// TLS for an `https` gRPC collector: the system roots and the extra CA bundle.
    fn grpc_tls(
        &self,
        signal: Signal,
    ) -> Result<Option<opentelemetry_otlp::tonic_types::transport::ClientTlsConfig>, TelemetryError>
    {
        let endpoint = self
            .endpoint
            .clone()
            .or_else(|| env(&signal_env(signal, "ENDPOINT")))
            .or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"))
            .unwrap_or_default();
        if !endpoint.starts_with("https://") {
            return Ok(None);
        }
        use opentelemetry_otlp::tonic_types::transport::{Certificate, ClientTlsConfig};
        let mut tls = ClientTlsConfig::new().with_native_roots();
        if let Some(path) = &self.extra_ca {
            tls = tls.ca_certificate(Certificate::from_pem(read_ca(path, signal)?));
        }
        Ok(Some(tls))
    }
}

fn read_ca(path: &Path, signal: Signal) -> Result<Vec<u8>, TelemetryError> {
    std::fs::read(path).map_err(|e| TelemetryError::Exporter {
        signal,
        message: format!("cannot read CA bundle {}: {e}", path.display()),
    })
}

/// A base URL with the signal's path, as `OTEL_EXPORTER_OTLP_ENDPOINT` is used for HTTP.
fn http_endpoint(base: &str, signal: Signal) -> String {
    format!("{}{}", base.trim_end_matches('/'), signal_path(signal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_url_gets_the_signals_path() {
        assert_eq!(
            http_endpoint("http://c:4318/", Signal::Logs),
            "http://c:4318/v1/logs"
        );
    }
}
