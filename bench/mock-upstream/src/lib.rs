//! A fast, scriptable mock of an OpenAI-compatible inference server.
//!
//! Used in-process by the gateway's tests (faults on demand: status codes, slow headers,
//! stalled or broken streams, going down), by the quickstart demo, and by the benchmarks.
//! Answers `POST /v1/chat/completions`, `/v1/completions`, `/v1/embeddings` (JSON with a
//! `usage` block, or SSE with N chunks and a configurable gap when `"stream": true`),
//! `POST /v1/messages` as Anthropic's Messages API (see [`anthropic`]) and `GET /v1/models`.
//! Offered tools, it calls the first one; given the tool's result, it quotes it (see
//! [`conversation`]).

mod anthropic;
pub mod conversation;
#[cfg(feature = "otlp")]
pub mod otlp;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::conversation::{Reply, chat_reply};

/// How the mock answers. Changeable at any time with [`MockUpstream::set_behavior`].
#[derive(Debug, Clone)]
pub struct Behavior {
    /// Status of every answer (bodies of non-2xx answers are OpenAI error objects).
    pub status: u16,
    /// Wait this long before sending response headers.
    pub header_delay: Duration,
    /// SSE chunks per streamed answer (plus the final `[DONE]`).
    pub chunks: usize,
    /// Gap between SSE chunks.
    pub chunk_gap: Duration,
    /// After the first SSE chunk, send nothing more and never finish.
    pub stall_after_first_chunk: bool,
    /// Break the connection after this many SSE chunks.
    pub break_after_chunks: Option<usize>,
    /// Keep a copy of every request for [`MockUpstream::requests`].
    pub record: bool,
    /// Where the answer reports its token usage.
    pub usage: UsageStyle,
}

/// How an answer reports usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UsageStyle {
    /// As OpenAI does: in every JSON answer; in a stream only when the request sets
    /// `stream_options.include_usage`, as a last chunk with empty `choices` (and `"usage":
    /// null` in every other chunk).
    #[default]
    OpenAi,
    /// In the stream's finishing chunk whatever the request says (some llama.cpp versions).
    InFinalChunk,
    /// Never (some llama.cpp and TGI versions).
    Never,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior {
            status: 200,
            header_delay: Duration::ZERO,
            chunks: 4,
            chunk_gap: Duration::ZERO,
            stall_after_first_chunk: false,
            break_after_chunks: None,
            record: true,
            usage: UsageStyle::OpenAi,
        }
    }
}

/// A request the mock received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// As received.
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// Headers as received.
    pub headers: HeaderMap,
    /// Body as received.
    pub body: Bytes,
}

impl Recorded {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }
}

struct Shared {
    name: String,
    behavior: Mutex<Behavior>,
    requests: Mutex<Vec<Recorded>>,
    count: std::sync::atomic::AtomicUsize,
    connections: Mutex<Vec<AbortHandle>>,
}

/// A running mock upstream.
pub struct MockUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: AbortHandle,
}

impl MockUpstream {
    /// Starts a mock named `name` on a free loopback port.
    pub async fn start(name: &str) -> std::io::Result<Self> {
        Self::start_on(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            name,
            Behavior::default(),
        )
        .await
    }

    /// Starts a mock on `addr` with `behavior`.
    pub async fn start_on(
        addr: SocketAddr,
        name: &str,
        behavior: Behavior,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            behavior: Mutex::new(behavior),
            requests: Mutex::new(Vec::new()),
            count: Default::default(),
            connections: Mutex::new(Vec::new()),
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared))).abort_handle();
        Ok(MockUpstream {
            addr,
            shared,
            accept,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes how later requests are answered.
    pub fn set_behavior(&self, behavior: Behavior) {
        *lock(&self.shared.behavior) = behavior;
    }

    /// Changes how later requests are answered, starting from the current behaviour.
    pub fn update(&self, f: impl FnOnce(&mut Behavior)) {
        f(&mut lock(&self.shared.behavior));
    }

    /// Requests received so far (when recording).
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.requests).clone()
    }

    /// How many requests arrived (recorded or not).
    pub fn request_count(&self) -> usize {
        self.shared.count.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Connections from clients that are still open.
    pub fn open_connections(&self) -> usize {
        lock(&self.shared.connections)
            .iter()
            .filter(|c| !c.is_finished())
            .count()
    }

    /// Goes down: stops listening and cuts every open connection.
    pub fn stop(&self) {
        self.accept.abort();
        for conn in lock(&self.shared.connections).drain(..) {
            conn.abort();
        }
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared2 = Arc::clone(&shared);
        let builder = Arc::clone(&builder);
        let task = tokio::spawn(async move {
            let service = service_fn(move |req| handle(Arc::clone(&shared2), req));
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        let mut conns = lock(&shared.connections);
        conns.retain(|c| !c.is_finished());
        conns.push(task.abort_handle());
    }
}

/// A response body fed by a channel, so chunks can be timed and faults injected.
pub struct ChannelBody(mpsc::Receiver<Result<Frame<Bytes>, std::io::Error>>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx)
    }
}

pub(crate) type MockBody = http_body_util::Either<http_body_util::Full<Bytes>, ChannelBody>;

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<MockBody>, Infallible> {
    let behavior = lock(&shared.behavior).clone();
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    shared
        .count
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    if behavior.record {
        lock(&shared.requests).push(Recorded {
            method: parts.method.clone(),
            path: parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned(),
            headers: parts.headers.clone(),
            body: body.clone(),
        });
    }
    if !behavior.header_delay.is_zero() {
        tokio::time::sleep(behavior.header_delay).await;
    }
    let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let model = request
        .get("model")
        .and_then(|m| m.as_str())
        .unwrap_or("mock")
        .to_owned();
    let stream = request
        .get("stream")
        .and_then(|s| s.as_bool())
        .unwrap_or(false);
    let status = StatusCode::from_u16(behavior.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let path = parts.uri.path();
    let reply = chat_reply(&shared.name, &request);
    let mut resp = if parts.method == Method::POST && path == "/v1/messages" {
        anthropic::answer(&shared.name, &request, &behavior)
    } else if !status.is_success() {
        json_response(
            status,
            serde_json::json!({"error": {"message": format!("{} answered {status}", shared.name), "type": "mock_error", "param": null, "code": status.as_u16()}}),
        )
    } else if parts.method == Method::GET && path == "/health" {
        json_response(status, serde_json::json!({"status": "ok"}))
    } else if parts.method == Method::GET && path == "/v1/models" {
        json_response(
            status,
            serde_json::json!({"object": "list", "data": [{"id": shared.name, "object": "model", "created": 0, "owned_by": "mock"}]}),
        )
    } else if parts.method != Method::POST {
        json_response(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": {"message": "not found", "type": "invalid_request_error", "param": null, "code": null}}),
        )
    } else if stream {
        let include_usage = request
            .pointer("/stream_options/include_usage")
            .and_then(|v| v.as_bool())
            == Some(true);
        sse(&model, &reply, &behavior, include_usage)
    } else {
        let mut answer = completion(path, &reply, &model);
        if behavior.usage == UsageStyle::Never
            && let Some(o) = answer.as_object_mut()
        {
            o.remove("usage");
        }
        json_response(status, answer)
    };
    resp.headers_mut().insert(
        "x-mock-backend",
        HeaderValue::from_str(&shared.name).unwrap_or(HeaderValue::from_static("mock")),
    );
    Ok(resp)
}

pub(crate) fn json_response(status: StatusCode, value: serde_json::Value) -> Response<MockBody> {
    let mut resp = Response::new(http_body_util::Either::Left(http_body_util::Full::new(
        Bytes::from(value.to_string()),
    )));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn usage() -> serde_json::Value {
    serde_json::json!({"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21})
}

/// The JSON answer of a non-streamed request to `path`.
fn completion(path: &str, reply: &Reply, model: &str) -> serde_json::Value {
    let (content, tool_calls) = match reply {
        Reply::Text(text) => (serde_json::Value::from(text.as_str()), None),
        Reply::ToolCall { name, arguments } => (
            serde_json::Value::Null,
            Some(serde_json::json!([{"id": "call_mock", "type": "function",
                "function": {"name": name, "arguments": arguments}}])),
        ),
    };
    match path {
        "/v1/embeddings" => serde_json::json!({
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.25, -0.5, 0.125, 1.0]}],
            "model": model,
            "usage": {"prompt_tokens": 9, "total_tokens": 9},
        }),
        "/v1/completions" => serde_json::json!({
            "id": "cmpl-mock", "object": "text_completion", "created": 0, "model": model,
            "choices": [{"index": 0, "text": content, "logprobs": null, "finish_reason": "stop"}],
            "usage": usage(),
        }),
        _ => {
            let mut message = serde_json::json!({"role": "assistant", "content": content});
            let finish = match tool_calls {
                Some(calls) => {
                    message["tool_calls"] = calls;
                    "tool_calls"
                }
                None => "stop",
            };
            serde_json::json!({
                "id": "chatcmpl-mock", "object": "chat.completion", "created": 0, "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": usage(),
            })
        }
    }
}

fn sse(model: &str, reply: &Reply, behavior: &Behavior, include_usage: bool) -> Response<MockBody> {
    let openai_usage = behavior.usage == UsageStyle::OpenAi && include_usage;
    let (tx, rx) = mpsc::channel(4);
    let (reply, model, b) = (reply.clone(), model.to_owned(), behavior.clone());
    tokio::spawn(async move {
        let (chunks, finish) = match reply {
            Reply::Text(_) => (b.chunks, "stop"),
            Reply::ToolCall { .. } => (3, "tool_calls"),
        };
        for i in 0..chunks {
            if i > 0 && !b.chunk_gap.is_zero() {
                tokio::time::sleep(b.chunk_gap).await;
            }
            if b.break_after_chunks == Some(i) {
                // Like a crash after the earlier chunks went out: let them reach the wire first
                // (hyper drops unflushed data when a body fails).
                tokio::time::sleep(Duration::from_millis(50)).await;
                let _ = tx
                    .send(Err(std::io::Error::other("mock stream broken")))
                    .await;
                return;
            }
            let delta = match (&reply, i) {
                (Reply::Text(text), 0) => serde_json::json!({"content": text}),
                (Reply::Text(_), i) => serde_json::json!({"content": format!(" token{i}")}),
                // A tool call: its name first, then the arguments in two pieces.
                (Reply::ToolCall { name, .. }, 0) => serde_json::json!({"tool_calls": [{"index": 0,
                    "id": "call_mock", "type": "function", "function": {"name": name, "arguments": ""}}]}),
                (Reply::ToolCall { arguments, .. }, 1 | 2) => {
                    let (a, b) = arguments.split_at(arguments.len() / 2);
                    let piece = if i == 1 { a } else { b };
                    serde_json::json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                }
                (Reply::ToolCall { .. }, _) => serde_json::json!({}),
            };
            let mut chunk = serde_json::json!({
                "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": null}],
            });
            if openai_usage {
                chunk["usage"] = serde_json::Value::Null;
            }
            if tx
                .send(Ok(Frame::data(Bytes::from(format!("data: {chunk}\n\n")))))
                .await
                .is_err()
            {
                return;
            }
            if b.stall_after_first_chunk {
                tx.closed().await;
                return;
            }
        }
        let mut last = serde_json::json!({
            "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0, "model": model,
            "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
        });
        let mut tail = String::new();
        match b.usage {
            UsageStyle::InFinalChunk => last["usage"] = usage(),
            UsageStyle::OpenAi if openai_usage => {
                last["usage"] = serde_json::Value::Null;
                let chunk = serde_json::json!({
                    "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0, "model": model,
                    "choices": [], "usage": usage(),
                });
                tail = format!("data: {chunk}\n\n");
            }
            _ => {}
        }
        let _ = tx
            .send(Ok(Frame::data(Bytes::from(format!(
                "data: {last}\n\n{tail}data: [DONE]\n\n"
            )))))
            .await;
    });
    let mut resp = Response::new(http_body_util::Either::Right(ChannelBody(rx)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}
