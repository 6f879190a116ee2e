//! An OpenTelemetry collector for tests: OTLP/HTTP (protobuf) and OTLP/gRPC (h2c) on one
//! loopback port, decoding every export into the OTLP protobuf messages (a malformed export
//! fails the test), so tests assert on span names, attributes, parent links and log records.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http::{Request, Response};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
pub use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
pub use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
pub use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
pub use opentelemetry_proto::tonic::logs::v1::LogRecord;
pub use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind, status::StatusCode};
use prost::Message;

/// What the collector received, decoded.
#[derive(Default)]
pub struct Received {
    /// Every span, in the order received.
    pub spans: Vec<Span>,
    /// The `service.name` of each resource received.
    pub service_names: Vec<String>,
    /// Every log record, in the order received.
    pub logs: Vec<LogRecord>,
    /// `(content-type, path)` of every export call.
    pub calls: Vec<(String, String)>,
    /// Export calls that were not valid OTLP.
    pub errors: Vec<String>,
}

/// An OTLP collector on loopback speaking OTLP/HTTP (protobuf) and OTLP/gRPC (h2c).
pub struct Collector {
    addr: SocketAddr,
    /// Everything received so far.
    pub got: Arc<Mutex<Received>>,
}

impl Collector {
    /// Starts listening on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let got = Arc::new(Mutex::new(Received::default()));
        let shared = Arc::clone(&got);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let got = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let got = Arc::clone(&got);
                        async move { Ok::<_, Infallible>(receive(req, &got).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Collector { addr, got })
    }

    /// Base URL (the same for both protocols).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits (up to 10 s) until `done` holds for what was received.
    pub async fn wait(&self, what: &str, done: impl Fn(&Received) -> bool) {
        for _ in 0..200 {
            {
                let got = self.got.lock().unwrap_or_else(|e| e.into_inner());
                assert!(
                    got.errors.is_empty(),
                    "invalid OTLP exports: {:?}",
                    got.errors
                );
                if done(&got) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let got = self.got.lock().unwrap_or_else(|e| e.into_inner());
        panic!(
            "collector never saw {what}: {} spans, {} log records, calls {:?}",
            got.spans.len(),
            got.logs.len(),
            got.calls
        );
    }

    /// The spans of trace `trace_id` (hex).
    pub fn trace(&self, trace_id: &str) -> Vec<Span> {
        let got = self.got.lock().unwrap_or_else(|e| e.into_inner());
        (got.spans.iter())
            .filter(|s| hex(&s.trace_id) == trace_id)
            .cloned()
            .collect()
    }
}

type Body = BoxBody<Bytes, Infallible>;

/// Records one export call: OTLP/HTTP bodies are the request message; gRPC bodies are one
/// length-prefixed message, answered with `grpc-status: 0` in trailers. Anything else is an
/// error the next [`Collector::wait`] reports.
async fn receive(req: Request<Incoming>, got: &Mutex<Received>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let content_type = (req.headers().get("content-type"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return refuse(got, format!("{path}: unreadable body: {e}")),
    };
    let grpc = content_type.starts_with("application/grpc");
    let decoded = match decode(&path, &content_type, body) {
        Ok(d) => d,
        Err(e) => return refuse(got, format!("{path} ({content_type}): {e}")),
    };
    {
        let mut got = got.lock().unwrap_or_else(|e| e.into_inner());
        got.calls.push((content_type, path));
        match decoded {
            Export::Traces(export) => {
                for rs in export.resource_spans {
                    let service = (rs.resource.iter().flat_map(|r| &r.attributes))
                        .find(|kv| kv.key == "service.name")
                        .map(|kv| text(kv.value.as_ref()));
                    got.service_names.extend(service);
                    for ss in rs.scope_spans {
                        got.spans.extend(ss.spans);
                    }
                }
            }
            Export::Logs(export) => {
                for rl in export.resource_logs {
                    for sl in rl.scope_logs {
                        got.logs.extend(sl.log_records);
                    }
                }
            }
        }
    }
    // Both answers are the empty response message.
    let mut resp = Response::builder();
    let body = if grpc {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        let frames: Vec<Result<Frame<Bytes>, Infallible>> = vec![
            Ok(Frame::data(Bytes::from_static(&[0, 0, 0, 0, 0]))),
            Ok(Frame::trailers(trailers)),
        ];
        resp = resp.header("content-type", "application/grpc");
        StreamBody::new(futures::stream::iter(frames)).boxed()
    } else {
        resp = resp.header("content-type", "application/x-protobuf");
        Full::new(Bytes::new()).boxed()
    };
    resp.body(body).unwrap_or_default()
}

enum Export {
    Traces(ExportTraceServiceRequest),
    Logs(ExportLogsServiceRequest),
}

fn decode(path: &str, content_type: &str, body: Bytes) -> Result<Export, String> {
    let message = if content_type.starts_with("application/grpc") {
        let mut b = body;
        if b.len() < 5 || b.get_u8() != 0 {
            return Err("not one uncompressed gRPC frame".into());
        }
        let len = b.get_u32() as usize;
        if b.len() != len {
            return Err(format!("gRPC frame of {len} bytes holds {}", b.len()));
        }
        b
    } else if content_type == "application/x-protobuf" {
        body
    } else {
        return Err("not an OTLP content type".into());
    };
    if path.ends_with("/v1/traces") || path.ends_with("TraceService/Export") {
        ExportTraceServiceRequest::decode(message)
            .map(Export::Traces)
            .map_err(|e| e.to_string())
    } else if path.ends_with("/v1/logs") || path.ends_with("LogsService/Export") {
        ExportLogsServiceRequest::decode(message)
            .map(Export::Logs)
            .map_err(|e| e.to_string())
    } else {
        Err("not an OTLP trace or logs path".into())
    }
}

fn refuse(got: &Mutex<Received>, error: String) -> Response<Body> {
    got.lock()
        .unwrap_or_else(|e| e.into_inner())
        .errors
        .push(error);
    let mut resp = Response::new(Full::new(Bytes::new()).boxed());
    *resp.status_mut() = http::StatusCode::BAD_REQUEST;
    resp
}

/// Lower-case hex of an id.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A value as text (lists as `[a,b]`).
pub fn text(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::ArrayValue(a)) => {
            let items: Vec<String> = a.values.iter().map(|v| text(Some(v))).collect();
            format!("[{}]", items.join(","))
        }
        other => format!("{other:?}"),
    }
}

/// An attribute of `attrs` as text (`None` when absent).
pub fn attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    (attrs.iter().find(|kv| kv.key == key)).map(|kv| text(kv.value.as_ref()))
}
