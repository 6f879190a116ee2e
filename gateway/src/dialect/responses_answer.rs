//! Chat completions as Responses API objects: the response object (shared with the stream),
//! its output items, and the request fields it echoes.

use serde_json::{Map, Value, json};

/// The request fields a response object repeats, and its id.
#[derive(Debug, Clone, Default)]
pub struct Echo {
    /// `resp_...`, from the request id.
    pub id: String,
    /// `instructions`, `metadata`, `tools`, ... as the client sent them.
    pub fields: Map<String, Value>,
}

/// Makes the value an echoed field has when the client left it out.
type EchoDefault = fn() -> Value;

/// Fields echoed with their defaults when the client left them out.
const ECHOED: [(&str, EchoDefault); 9] = [
    ("instructions", || Value::Null),
    ("max_output_tokens", || Value::Null),
    ("metadata", || json!({})),
    ("parallel_tool_calls", || Value::Bool(true)),
    ("temperature", || Value::Null),
    ("tool_choice", || json!("auto")),
    ("tools", || json!([])),
    ("top_p", || Value::Null),
    ("text", || json!({"format": {"type": "text"}})),
];

impl Echo {
    /// The echo of a Responses request `body`, for the request `request_id`.
    pub fn of(body: &[u8], request_id: &str) -> Echo {
        let request: Map<String, Value> = serde_json::from_slice(body).unwrap_or_default();
        let fields = ECHOED
            .iter()
            .map(|(k, default)| {
                let v = request.get(*k).filter(|v| !v.is_null()).cloned();
                ((*k).to_owned(), v.unwrap_or_else(default))
            })
            .collect();
        Echo {
            id: format!("resp_{request_id}"),
            fields,
        }
    }
}

/// A response object.
pub fn response(
    echo: &Echo,
    created: u64,
    status: &str,
    model: &Value,
    output: Vec<Value>,
    usage: Option<&Value>,
    incomplete: Option<&str>,
) -> Value {
    let mut r = json!({
        "id": echo.id, "object": "response", "created_at": created, "status": status,
        "error": null,
        "incomplete_details": incomplete.map(|reason| json!({"reason": reason})),
        "model": model, "output": output,
        "previous_response_id": null, "store": false, "truncation": "disabled",
        "reasoning": {"effort": null, "summary": null},
        "usage": usage.map(responses_usage),
    });
    for (k, v) in &echo.fields {
        r[k] = v.clone();
    }
    r
}

/// Chat usage as Responses usage.
fn responses_usage(usage: &Value) -> Value {
    let input = usage["prompt_tokens"].as_u64().unwrap_or(0);
    let output = usage["completion_tokens"].as_u64().unwrap_or(0);
    json!({"input_tokens": input, "output_tokens": output, "total_tokens": input + output,
        "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}})
}

/// The status and incomplete reason for a chat `finish_reason`.
pub fn status(finish_reason: Option<&str>) -> (&'static str, Option<&'static str>) {
    match finish_reason {
        Some("length") => ("incomplete", Some("max_output_tokens")),
        Some("content_filter") => ("incomplete", Some("content_filter")),
        _ => ("completed", None),
    }
}

/// An output message item holding `text`.
pub fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({"id": id, "type": "message", "status": status, "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]})
}

/// An output function-call item.
pub fn call_item(call_id: &Value, name: &Value, arguments: &str, status: &str) -> Value {
    json!({"id": format!("fc_{}", call_id.as_str().unwrap_or_default()), "type": "function_call",
        "status": status, "call_id": call_id, "name": name, "arguments": arguments})
}

/// A chat completion as a response object.
pub fn chat_to_responses(completion: &Value, echo: &Echo, created: u64) -> Value {
    let choice = &completion["choices"][0];
    let message = &choice["message"];
    let mut output = Vec::new();
    if let Some(text) = message["content"].as_str().filter(|t| !t.is_empty()) {
        output.push(message_item(&format!("msg_{}", echo.id), text, "completed"));
    }
    for call in message["tool_calls"].as_array().into_iter().flatten() {
        let arguments = call["function"]["arguments"].as_str().unwrap_or_default();
        output.push(call_item(
            &call["id"],
            &call["function"]["name"],
            arguments,
            "completed",
        ));
    }
    let (status, incomplete) = status(choice["finish_reason"].as_str());
    let usage = completion.get("usage").filter(|u| u.is_object());
    response(
        echo,
        created,
        status,
        &completion["model"],
        output,
        usage,
        incomplete,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chat_answer_becomes_a_response_with_its_echo() {
        let echo = Echo::of(
            br#"{"model":"m","input":"x","instructions":"be kind","metadata":{"k":"v"}}"#,
            "abc",
        );
        let chat = json!({"model": "llama", "choices": [{"message": {"content": "Hi", "tool_calls": [
            {"id": "call_1", "function": {"name": "get", "arguments": "{}"}}]}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 2, "completion_tokens": 3}});
        let r = chat_to_responses(&chat, &echo, 7);
        assert_eq!(r["id"], "resp_abc");
        assert_eq!(r["status"], "incomplete");
        assert_eq!(r["incomplete_details"]["reason"], "max_output_tokens");
        assert_eq!(r["instructions"], "be kind");
        assert_eq!(r["metadata"], json!({"k": "v"}));
        assert_eq!(r["tools"], json!([]));
        assert_eq!(r["output"][0]["content"][0]["text"], "Hi");
        assert_eq!(r["output"][1]["type"], "function_call");
        assert_eq!(r["output"][1]["call_id"], "call_1");
        assert_eq!(r["usage"]["total_tokens"], 5);
    }
}
