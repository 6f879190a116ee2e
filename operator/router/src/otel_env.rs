//! The standard OpenTelemetry environment variables that the gateway and the controller both
//! read themselves (the OTLP exporter reads the endpoint, headers and timeout variables):
//! whether traces are exported, over which transport, and whether the site named the service.

/// The two OTLP transports both binaries speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP/gRPC (port 4317 by convention).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (port 4318 by convention); the default.
    HttpProtobuf,
}

impl std::str::FromStr for OtlpProtocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "grpc" => Ok(OtlpProtocol::Grpc),
            "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
            "http/json" => {
                Err("OTLP protocol http/json is not supported; use grpc or http/protobuf".into())
            }
            other => Err(format!(
                "unknown OTLP protocol {other:?}; use grpc or http/protobuf"
            )),
        }
    }
}

/// A variable whose value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}={value:?}: {message}")]
pub struct EnvError {
    /// The variable.
    pub name: String,
    /// Its value.
    pub value: String,
    /// What is wrong with it.
    pub message: String,
}

/// A variable's value; unset and blank are the same.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Whether traces are exported: when `asked` (a flag named an endpoint or asked for traces) or
/// an OTLP endpoint variable is set, or `OTEL_TRACES_EXPORTER=otlp`; never with
/// `OTEL_TRACES_EXPORTER=none` or `OTEL_SDK_DISABLED=true`.
pub fn traces_on(asked: bool) -> Result<bool, EnvError> {
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return Ok(false);
    }
    match var("OTEL_TRACES_EXPORTER").as_deref().map(str::trim) {
        Some("none") => Ok(false),
        Some("otlp") => Ok(true),
        Some(other) => Err(EnvError {
            name: "OTEL_TRACES_EXPORTER".into(),
            value: other.into(),
            message: "traces are exported with otlp (or none)".into(),
        }),
        None => Ok(asked
            || var("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
            || var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()),
    }
}

/// The transport the variables ask for `signal` (`TRACES` or `LOGS`):
/// `OTEL_EXPORTER_OTLP_{signal}_PROTOCOL`, then `OTEL_EXPORTER_OTLP_PROTOCOL`.
pub fn protocol(signal: &str) -> Result<Option<OtlpProtocol>, EnvError> {
    for name in [
        format!("OTEL_EXPORTER_OTLP_{signal}_PROTOCOL"),
        "OTEL_EXPORTER_OTLP_PROTOCOL".into(),
    ] {
        if let Some(value) = var(&name) {
            return value.parse().map(Some).map_err(|message| EnvError {
                name,
                value,
                message,
            });
        }
    }
    Ok(None)
}

/// Whether `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES` name the service (else each binary
/// names itself).
pub fn service_named() -> bool {
    var("OTEL_SERVICE_NAME").is_some()
        || var("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|a| a.contains("service.name="))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_parse_as_the_specification_spells_them() {
        assert_eq!("grpc".parse(), Ok(OtlpProtocol::Grpc));
        assert_eq!("http/protobuf".parse(), Ok(OtlpProtocol::HttpProtobuf));
        assert!(
            "http/json"
                .parse::<OtlpProtocol>()
                .unwrap_err()
                .contains("not supported")
        );
        assert!("udp".parse::<OtlpProtocol>().is_err());
    }
}
