//! Whole (non-streamed) answers between Anthropic Messages and chat completions, and the stop
//! reasons of both, shared with the stream translation.

use serde_json::{Value, json};

/// Anthropic's `stop_reason` as a chat `finish_reason`.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        // end_turn, stop_sequence, pause_turn and whatever comes next.
        _ => "stop",
    }
}

/// A chat `finish_reason` as Anthropic's `stop_reason`.
pub fn stop_reason(finish_reason: &str) -> &'static str {
    match finish_reason {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

/// Anthropic usage as chat usage (cache reads and writes are prompt tokens too).
pub fn chat_usage(usage: &Value) -> Value {
    let n = |k: &str| usage[k].as_u64().unwrap_or(0);
    let prompt =
        n("input_tokens") + n("cache_creation_input_tokens") + n("cache_read_input_tokens");
    let completion = n("output_tokens");
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

/// An Anthropic message as a chat completion.
pub fn messages_to_chat(message: &Value, created: u64) -> Value {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for block in message["content"].as_array().into_iter().flatten() {
        match block["type"].as_str() {
            Some("text") => text.push_str(block["text"].as_str().unwrap_or_default()),
            Some("thinking") => reasoning.push_str(block["thinking"].as_str().unwrap_or_default()),
            Some("tool_use") => calls.push(json!({
                "id": block["id"], "type": "function",
                "function": {"name": block["name"], "arguments": block["input"].to_string()},
            })),
            _ => {}
        }
    }
    let mut msg = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::from(text) }});
    if !calls.is_empty() {
        msg["tool_calls"] = Value::Array(calls);
    }
    if !reasoning.is_empty() {
        msg["reasoning_content"] = Value::from(reasoning);
    }
    let finish = finish_reason(message["stop_reason"].as_str().unwrap_or("end_turn"));
    json!({
        "id": message["id"], "object": "chat.completion", "created": created,
        "model": message["model"],
        "choices": [{"index": 0, "message": msg, "finish_reason": finish, "logprobs": null}],
        "usage": chat_usage(&message["usage"]),
    })
}

/// A chat completion as an Anthropic message (`msg_<fallback_id>` when it has no id); `Err`
/// when a tool call's arguments are not a JSON object (Anthropic's `input` must be one).
pub fn chat_to_messages(completion: &Value, fallback_id: &str) -> Result<Value, String> {
    let choice = &completion["choices"][0];
    let message = &choice["message"];
    let mut content = Vec::new();
    if let Some(r) = message["reasoning_content"]
        .as_str()
        .filter(|r| !r.is_empty())
    {
        content.push(json!({"type": "thinking", "thinking": r, "signature": ""}));
    }
    if let Some(t) = message["content"].as_str().filter(|t| !t.is_empty()) {
        content.push(json!({"type": "text", "text": t}));
    }
    for call in message["tool_calls"].as_array().into_iter().flatten() {
        content.push(tool_use(call)?);
    }
    let usage = &completion["usage"];
    Ok(json!({
        "id": message_id(&completion["id"], fallback_id),
        "type": "message", "role": "assistant",
        "model": completion["model"],
        "content": content,
        "stop_reason": stop_reason(choice["finish_reason"].as_str().unwrap_or("stop")),
        "stop_sequence": null,
        "usage": {
            "input_tokens": usage["prompt_tokens"].as_u64().unwrap_or(0),
            "output_tokens": usage["completion_tokens"].as_u64().unwrap_or(0),
        },
    }))
}

/// A chat tool call as a `tool_use` block.
pub fn tool_use(call: &Value) -> Result<Value, String> {
    let arguments = call["function"]["arguments"].as_str().unwrap_or("{}");
    let input = parse_arguments(arguments)?;
    Ok(
        json!({"type": "tool_use", "id": call["id"], "name": call["function"]["name"], "input": input}),
    )
}

/// Tool-call arguments as the JSON object Anthropic's `input` must be.
pub fn parse_arguments(arguments: &str) -> Result<Value, String> {
    if arguments.trim().is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err("the backend answered a tool call whose arguments are not a JSON object".into()),
    }
}

/// An Anthropic message id for a chat completion id (`msg_<fallback>` when there is none).
pub fn message_id(id: &Value, fallback: &str) -> String {
    match id.as_str() {
        Some(id) if id.starts_with("msg_") => id.to_owned(),
        Some(id) => format!("msg_{id}"),
        None => format!("msg_{fallback}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_anthropic_tool_use_answer_becomes_a_chat_tool_call() {
        let message = json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
            "content": [{"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {"city": "Oslo"}}],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 10, "cache_read_input_tokens": 5, "output_tokens": 7},
        });
        let chat = messages_to_chat(&message, 1);
        assert_eq!(chat["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(chat["choices"][0]["message"]["content"], "Checking.");
        assert_eq!(
            chat["choices"][0]["message"]["tool_calls"][0]["function"],
            json!({"name": "get", "arguments": "{\"city\":\"Oslo\"}"})
        );
        assert_eq!(
            chat["usage"],
            json!({"prompt_tokens": 15, "completion_tokens": 7, "total_tokens": 22})
        );
    }

    #[test]
    fn a_chat_answer_becomes_an_anthropic_message() {
        let chat = json!({"id": "chatcmpl-1", "model": "llama", "choices": [{"index": 0,
            "message": {"role": "assistant", "content": "hi"}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}});
        let m = chat_to_messages(&chat, "r").unwrap();
        assert_eq!(m["id"], "msg_chatcmpl-1");
        assert_eq!(m["content"], json!([{"type": "text", "text": "hi"}]));
        assert_eq!(m["stop_reason"], "max_tokens");
        assert_eq!(m["usage"], json!({"input_tokens": 3, "output_tokens": 4}));
        let bad = json!({"choices": [{"message": {"tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "[1]"}}]}}]});
        assert!(chat_to_messages(&bad, "r").is_err());
        for (finish, stop) in [
            ("stop", "end_turn"),
            ("length", "max_tokens"),
            ("tool_calls", "tool_use"),
        ] {
            assert_eq!(stop_reason(finish), stop);
            assert_eq!(finish_reason(stop), finish);
        }
        assert_eq!(finish_reason("stop_sequence"), "stop");
    }
}
