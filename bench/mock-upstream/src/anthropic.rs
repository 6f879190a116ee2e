//! `POST /v1/messages`: the mock as an Anthropic Messages endpoint, JSON or the event stream
//! (`message_start`, content blocks with text or `input_json_delta` deltas, `message_delta`,
//! `message_stop`), and Anthropic's error shape for non-2xx answers.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body::Frame;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::conversation::{Reply, messages_reply};
use crate::{Behavior, ChannelBody, MockBody, json_response};

/// Input tokens every answer reports.
const INPUT_TOKENS: u64 = 9;
/// Output tokens every answer reports.
const OUTPUT_TOKENS: u64 = 12;

/// The answer to one Messages request.
pub fn answer(name: &str, request: &Value, behavior: &Behavior) -> Response<MockBody> {
    let status = StatusCode::from_u16(behavior.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if !status.is_success() {
        let kind = if status.is_client_error() {
            "invalid_request_error"
        } else {
            "api_error"
        };
        return json_response(
            status,
            json!({"type": "error", "error": {"type": kind, "message": format!("{name} answered {status}")}}),
        );
    }
    let model = request["model"].as_str().unwrap_or("mock").to_owned();
    let reply = messages_reply(name, request);
    if request["stream"] == true {
        return stream(model, reply, behavior.clone());
    }
    let (content, stop) = match &reply {
        Reply::Text(text) => (json!([{"type": "text", "text": text}]), "end_turn"),
        Reply::ToolCall { name, arguments } => (
            json!([{"type": "tool_use", "id": "toolu_mock", "name": name,
                    "input": serde_json::from_str::<Value>(arguments).unwrap_or_default()}]),
            "tool_use",
        ),
    };
    json_response(
        status,
        json!({
            "id": "msg_mock", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": null,
            "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS},
        }),
    )
}

fn event(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// The events of one streamed answer, sent one per frame.
fn events(model: &str, reply: &Reply, chunks: usize) -> Vec<Bytes> {
    let mut out = vec![
        event(
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": "msg_mock", "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": 1}}}),
        ),
        event("ping", &json!({"type": "ping"})),
    ];
    let stop = match reply {
        Reply::Text(text) => {
            out.push(event(
                "content_block_start",
                &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ));
            for i in 0..chunks.max(1) {
                let piece = if i == 0 {
                    text.clone()
                } else {
                    format!(" token{i}")
                };
                out.push(event(
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}),
                ));
            }
            "end_turn"
        }
        Reply::ToolCall { name, arguments } => {
            out.push(event(
                "content_block_start",
                &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_mock", "name": name, "input": {}}}),
            ));
            let (a, b) = arguments.split_at(arguments.len() / 2);
            for piece in [a, b] {
                out.push(event(
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": piece}}),
                ));
            }
            "tool_use"
        }
    };
    out.push(event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": 0}),
    ));
    out.push(event(
        "message_delta",
        &json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": OUTPUT_TOKENS}}),
    ));
    out.push(event("message_stop", &json!({"type": "message_stop"})));
    out
}

fn stream(model: String, reply: Reply, b: Behavior) -> Response<MockBody> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        for (i, frame) in events(&model, &reply, b.chunks).into_iter().enumerate() {
            if i > 0 && !b.chunk_gap.is_zero() {
                tokio::time::sleep(b.chunk_gap).await;
            }
            if b.break_after_chunks == Some(i) {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let _ = tx
                    .send(Err(std::io::Error::other("mock stream broken")))
                    .await;
                return;
            }
            if tx.send(Ok(Frame::data(frame))).await.is_err() {
                return;
            }
        }
    });
    let mut resp = Response::new(http_body_util::Either::Right(ChannelBody(rx)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    resp
}
