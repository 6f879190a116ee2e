//! The error objects the gateway writes: OpenAI's `{"error":{"message","type","param","code"}}`
//! and, for clients of Anthropic's Messages API, `{"type":"error","error":{"type","message"}}`;
//! both as whole error responses (error.rs) and as the data of an SSE `error` event when a
//! stream is cut (body.rs).

use http::StatusCode;

/// Which error object a client reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorShape {
    /// OpenAI's (chat completions, completions, embeddings, responses).
    #[default]
    OpenAi,
    /// Anthropic's (`/v1/messages`).
    Anthropic,
}

/// `{"error":{"message":..,"type":..,"param":..,"code":..}}`
pub fn error_json(message: &str, kind: &str, param: Option<&str>, code: &str) -> String {
    serde_json::json!({
        "error": { "message": message, "type": kind, "param": param, "code": code }
    })
    .to_string()
}

/// `{"type":"error","error":{"type":..,"message":..}}`, the type following the status as
/// Anthropic's API documents it (the SDKs pick their exception by status).
pub fn anthropic_error_json(status: StatusCode, message: &str) -> String {
    let kind = match status.as_u16() {
        400 | 405 | 408 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        _ => "api_error",
    };
    serde_json::json!({"type": "error", "error": {"type": kind, "message": message}}).to_string()
}
