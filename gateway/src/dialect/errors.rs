//! Errors across APIs: a backend's error answer rewritten in the client's error object, and
//! the `error` event that ends a cut stream in the client's event format.

use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};

pub use crate::http::error_shape::ErrorShape;
use crate::http::error_shape::{anthropic_error_json, error_json};

use super::Api;

/// Longest backend error text kept in a translated error, in bytes.
const MESSAGE_MAX: usize = 2048;

/// A backend's error answer (OpenAI's object, Anthropic's, or any text) as the client's
/// error object.
pub fn translate_error(shape: ErrorShape, status: StatusCode, body: &[u8]) -> Bytes {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().map(|v| &v["error"]);
    let message = match error.and_then(|e| e["message"].as_str()) {
        Some(m) => m.to_owned(),
        None => String::from_utf8_lossy(body).into_owned(),
    };
    let message = crate::http::error::echo_within(&message, MESSAGE_MAX);
    let message = if message.is_empty() {
        format!("the backend answered {status}")
    } else {
        message.into_owned()
    };
    Bytes::from(match shape {
        ErrorShape::Anthropic => anthropic_error_json(status, &message),
        ErrorShape::OpenAi => {
            let kind = error
                .and_then(|e| e["type"].as_str())
                .unwrap_or("upstream_error");
            error_json(&message, kind, None, &status.as_u16().to_string())
        }
    })
}

/// The `error` event that ends a stream cut after it started, for clients of `api`;
/// `sequence` numbers it for the Responses API.
pub fn stream_error_event(api: Api, message: &str, code: &str, sequence: u64) -> Bytes {
    let data = match api {
        Api::Messages => {
            json!({"type": "error", "error": {"type": "api_error", "message": message}}).to_string()
        }
        Api::Responses => json!({"type": "error", "code": code, "message": message,
            "param": null, "sequence_number": sequence})
        .to_string(),
        _ => error_json(message, "stream_error", None, code),
    };
    Bytes::from(format!("event: error\ndata: {data}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_errors_take_the_clients_shape() {
        let anthropic = br#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#;
        let openai: Value = serde_json::from_slice(&translate_error(
            ErrorShape::OpenAi,
            StatusCode::TOO_MANY_REQUESTS,
            anthropic,
        ))
        .unwrap();
        assert_eq!(openai["error"]["message"], "busy");
        assert_eq!(openai["error"]["type"], "overloaded_error");
        let chat_error = br#"{"error":{"message":"bad model","type":"invalid_request_error"}}"#;
        let back: Value = serde_json::from_slice(&translate_error(
            ErrorShape::Anthropic,
            StatusCode::BAD_REQUEST,
            chat_error,
        ))
        .unwrap();
        assert_eq!(
            back,
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "bad model"}})
        );
        let text: Value = serde_json::from_slice(&translate_error(
            ErrorShape::Anthropic,
            StatusCode::NOT_FOUND,
            b"",
        ))
        .unwrap();
        assert_eq!(text["error"]["type"], "not_found_error");
        assert!(text["error"]["message"].as_str().unwrap().contains("404"));
    }
}
