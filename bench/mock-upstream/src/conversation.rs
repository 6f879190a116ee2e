//! What the mock says, whichever API it is asked in: a tool call when the request offers
//! tools and has not yet answered one, else text (quoting the tool's result when the last
//! turn carries one), so a client can run a whole tool-use round trip against it.

use serde_json::Value;

/// The mock's next turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Plain text.
    Text(String),
    /// A call of the first tool offered, with these JSON arguments.
    ToolCall {
        /// The tool's name.
        name: String,
        /// The arguments, as JSON text.
        arguments: String,
    },
}

/// Arguments of every mock tool call.
pub const TOOL_ARGUMENTS: &str = r#"{"q": "mock"}"#;

/// The reply to a chat-completions request.
pub fn chat_reply(name: &str, request: &Value) -> Reply {
    let last = request
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| m.last());
    if let Some(last) = last.filter(|m| m["role"] == "tool") {
        return Reply::Text(format!(
            "Hello from {name}; the tool said {}",
            text_of(&last["content"])
        ));
    }
    let tool = request
        .pointer("/tools/0/function/name")
        .and_then(Value::as_str);
    match tool {
        Some(tool) => Reply::ToolCall {
            name: tool.to_owned(),
            arguments: TOOL_ARGUMENTS.to_owned(),
        },
        None => Reply::Text(format!("Hello from {name}")),
    }
}

/// The reply to an Anthropic Messages request.
pub fn messages_reply(name: &str, request: &Value) -> Reply {
    let last = request
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| m.last());
    let result = last
        .and_then(|m| m["content"].as_array())
        .and_then(|blocks| blocks.iter().find(|b| b["type"] == "tool_result"));
    if let Some(result) = result {
        return Reply::Text(format!(
            "Hello from {name}; the tool said {}",
            text_of(&result["content"])
        ));
    }
    match request.pointer("/tools/0/name").and_then(Value::as_str) {
        Some(tool) => Reply::ToolCall {
            name: tool.to_owned(),
            arguments: TOOL_ARGUMENTS.to_owned(),
        },
        None => Reply::Text(format!("Hello from {name}")),
    }
}

/// A string, or the concatenated `text` of an array of parts.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}
