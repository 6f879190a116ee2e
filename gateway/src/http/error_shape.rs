//! The OpenAI error object, written both as a whole error response (error.rs) and as the data
//! of an SSE `error` event when a stream is cut (body.rs).

/// `{"error":{"message":..,"type":..,"param":..,"code":..}}`
pub fn error_json(message: &str, kind: &str, param: Option<&str>, code: &str) -> String {
    serde_json::json!({
        "error": { "message": message, "type": kind, "param": param, "code": code }
    })
    .to_string()
}
