//! An Anthropic Messages request as a chat-completions request, for OpenAI-compatible
//! (local) backends: `system` becomes the system message, a user turn's tool results come
//! first as `tool` messages, `tool_use` blocks become tool calls, images become image parts.
//! Thinking blocks in the history are the model's own signed reasoning, with no chat
//! equivalent: dropped. Cache-control hints are dropped too: the backend caches prefixes on
//! its own.

use serde_json::{Map, Value, json};

use super::fields::{Fields, Untranslatable, array, object};

const CHAT: &str = "chat completions (the backend's API)";

/// An Anthropic Messages request as a chat-completions request.
pub fn messages_to_chat(request: Map<String, Value>) -> Result<Map<String, Value>, Untranslatable> {
    let mut f = Fields::new(request, "the request", CHAT);
    let mut out = Map::new();
    f.copy("model", &mut out, "model");
    f.copy("max_tokens", &mut out, "max_tokens");
    let mut messages = Vec::new();
    match f.take("system") {
        None => {}
        Some(Value::String(s)) => messages.push(json!({"role": "system", "content": s})),
        Some(Value::Array(blocks)) => {
            let texts: Result<Vec<String>, _> = blocks.into_iter().map(block_text).collect();
            messages.push(json!({"role": "system", "content": texts?.join("\n\n")}));
        }
        Some(_) => return Err(f.error("\"system\" must be a string or text blocks".into())),
    }
    let turns = f
        .take("messages")
        .ok_or_else(|| f.error("\"messages\" is required".into()))?;
    for (i, turn) in array(turns, "\"messages\"")?.into_iter().enumerate() {
        anthropic_turn(turn, i, &mut messages)?;
    }
    out.insert("messages".into(), Value::Array(messages));
    f.copy("stop_sequences", &mut out, "stop");
    for key in ["temperature", "top_p", "top_k"] {
        f.copy(key, &mut out, key);
    }
    if let Some(stream) = f.take("stream") {
        if stream == Value::Bool(true) {
            out.insert("stream_options".into(), json!({"include_usage": true}));
        }
        out.insert("stream".into(), stream);
    }
    if let Some(metadata) = f.take("metadata") {
        let mut m = Fields::new(object(metadata, "\"metadata\"")?, "metadata", CHAT);
        m.copy("user_id", &mut out, "user");
        m.finish()?;
    }
    if let Some(tools) = f.take("tools") {
        let tools: Result<Vec<Value>, _> = array(tools, "\"tools\"")?
            .into_iter()
            .map(anthropic_tool)
            .collect();
        out.insert("tools".into(), Value::Array(tools?));
    }
    if let Some(choice) = f.take("tool_choice") {
        let mut c = Fields::new(object(choice, "\"tool_choice\"")?, "tool_choice", CHAT);
        let chat = match c.string("type")?.as_deref() {
            Some("auto") => json!("auto"),
            Some("any") => json!("required"),
            Some("none") => json!("none"),
            Some("tool") => {
                let name = c.string("name")?.unwrap_or_default();
                json!({"type": "function", "function": {"name": name}})
            }
            other => return Err(c.error(format!("type {other:?} is not known"))),
        };
        if c.take("disable_parallel_tool_use") == Some(Value::Bool(true)) {
            out.insert("parallel_tool_calls".into(), Value::Bool(false));
        }
        c.finish()?;
        out.insert("tool_choice".into(), chat);
    }
    f.only("thinking", &[json!({"type": "disabled"})])?;
    f.finish()?;
    Ok(out)
}

/// The text of a text block (its `cache_control` hint dropped: the backend caches prefixes on
/// its own).
fn block_text(block: Value) -> Result<String, Untranslatable> {
    let mut b = Fields::new(object(block, "a block")?, "a system block", CHAT);
    if b.string("type")?.as_deref() != Some("text") {
        return Err(b.error("only text blocks can be translated here".into()));
    }
    let text = b.string("text")?.unwrap_or_default();
    b.ignore("cache_control");
    b.ignore("citations");
    b.finish()?;
    Ok(text)
}

/// One Anthropic turn as chat messages, appended to `out`.
fn anthropic_turn(turn: Value, i: usize, out: &mut Vec<Value>) -> Result<(), Untranslatable> {
    let what = format!("messages[{i}]");
    let mut f = Fields::new(object(turn, &what)?, what, CHAT);
    let role = f.string("role")?.unwrap_or_default();
    let content = f.take("content").unwrap_or(Value::from(""));
    f.finish()?;
    let blocks = match content {
        Value::String(s) => {
            out.push(json!({"role": role, "content": s}));
            return Ok(());
        }
        Value::Array(blocks) => blocks,
        _ => {
            return Err(Untranslatable::new(format!(
                "messages[{i}].content must be a string or blocks"
            )));
        }
    };
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut calls = Vec::new();
    for (j, block) in blocks.into_iter().enumerate() {
        let what = format!("messages[{i}].content[{j}]");
        let mut b = Fields::new(object(block, &what)?, what, CHAT);
        b.ignore("cache_control");
        b.ignore("citations");
        match (role.as_str(), b.string("type")?.as_deref()) {
            (_, Some("text")) => {
                let t = b.string("text")?.unwrap_or_default();
                if role == "assistant" {
                    text.push_str(&t);
                } else {
                    parts.push(json!({"type": "text", "text": t}));
                }
            }
            ("user", Some("image")) => {
                let source = b.take("source").unwrap_or_default();
                let url = match (source["type"].as_str(), source["url"].as_str()) {
                    (Some("url"), Some(url)) => url.to_owned(),
                    (Some("base64"), _) => format!(
                        "data:{};base64,{}",
                        source["media_type"].as_str().unwrap_or("image/png"),
                        source["data"].as_str().unwrap_or_default()
                    ),
                    _ => return Err(b.error("an image needs a url or base64 source".into())),
                };
                parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
            }
            ("user", Some("tool_result")) => {
                let id = b.string("tool_use_id")?.unwrap_or_default();
                let content = match b.take("content") {
                    None => String::new(),
                    Some(Value::String(s)) => s,
                    Some(Value::Array(blocks)) => {
                        let texts: Result<Vec<String>, _> =
                            blocks.into_iter().map(block_text).collect();
                        texts?.join("\n")
                    }
                    Some(_) => return Err(b.error("content must be a string or blocks".into())),
                };
                // Chat has no error flag on a tool result: the text says it.
                let content = if b.take("is_error") == Some(Value::Bool(true)) {
                    format!("Error: {content}")
                } else {
                    content
                };
                out.push(json!({"role": "tool", "tool_call_id": id, "content": content}));
            }
            ("assistant", Some("tool_use")) => {
                let id = b.string("id")?.unwrap_or_default();
                let name = b.string("name")?.unwrap_or_default();
                let input = b.take("input").unwrap_or(json!({}));
                calls.push(json!({"id": id, "type": "function",
                    "function": {"name": name, "arguments": input.to_string()}}));
            }
            ("assistant", Some("thinking" | "redacted_thinking")) => {
                b.ignore("thinking");
                b.ignore("signature");
                b.ignore("data");
            }
            (_, other) => {
                return Err(b.error(format!("{other:?} blocks cannot be sent to {CHAT}")));
            }
        }
        b.finish()?;
    }
    if role == "assistant" {
        let mut m = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::from(text) }});
        if !calls.is_empty() {
            m["tool_calls"] = Value::Array(calls);
        }
        out.push(m);
    } else if !parts.is_empty() {
        out.push(json!({"role": role, "content": parts}));
    }
    Ok(())
}

/// An Anthropic tool as a chat function tool (server tools have no chat equivalent).
fn anthropic_tool(tool: Value) -> Result<Value, Untranslatable> {
    let mut t = Fields::new(object(tool, "a tool")?, "a tool", CHAT);
    t.only("type", &[json!("custom")])?;
    t.ignore("cache_control");
    let mut function = Map::new();
    t.copy("name", &mut function, "name");
    t.copy("description", &mut function, "description");
    t.copy("input_schema", &mut function, "parameters");
    t.finish()?;
    Ok(json!({"type": "function", "function": function}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn an_anthropic_request_becomes_chat_with_tool_results_first() {
        let messages = json!({
            "model": "claude", "max_tokens": 100,
            "system": [{"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}}, {"type": "text", "text": "b"}],
            "messages": [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "s"},
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "t1", "name": "get", "input": {"city": "Oslo"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "rain"}], "is_error": true},
                    {"type": "text", "text": "and?"}]},
            ],
            "stop_sequences": ["X"], "stream": true, "top_k": 5,
            "metadata": {"user_id": "u1"},
            "tools": [{"name": "get", "description": "d", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "tool", "name": "get", "disable_parallel_tool_use": true},
        });
        let out = Value::Object(messages_to_chat(map(messages)).unwrap());
        assert_eq!(
            out,
            json!({
                "model": "claude", "max_tokens": 100,
                "messages": [
                    {"role": "system", "content": "a\n\nb"},
                    {"role": "user", "content": "weather?"},
                    {"role": "assistant", "content": "Let me look.", "tool_calls": [
                        {"id": "t1", "type": "function", "function": {"name": "get", "arguments": "{\"city\":\"Oslo\"}"}}]},
                    {"role": "tool", "tool_call_id": "t1", "content": "Error: rain"},
                    {"role": "user", "content": [{"type": "text", "text": "and?"}]},
                ],
                "stop": ["X"], "top_k": 5, "stream": true,
                "stream_options": {"include_usage": true},
                "user": "u1",
                "tools": [{"type": "function", "function": {"name": "get", "description": "d", "parameters": {"type": "object"}}}],
                "tool_choice": {"type": "function", "function": {"name": "get"}},
                "parallel_tool_calls": false,
            })
        );
        let server_tool = json!({"model": "c", "max_tokens": 1, "messages": [],
            "tools": [{"type": "web_search_20250305", "name": "web_search"}]});
        assert!(
            messages_to_chat(map(server_tool))
                .unwrap_err()
                .0
                .contains("\"type\"")
        );
        let thinking = json!({"model": "c", "max_tokens": 1, "messages": [],
            "thinking": {"type": "enabled", "budget_tokens": 1024}});
        assert!(
            messages_to_chat(map(thinking))
                .unwrap_err()
                .0
                .contains("thinking")
        );
    }
}
