//! The Responses API's stateless subset as a chat-completions request.
//!
//! `instructions` becomes the system message; `input` (a string, or items: messages,
//! `function_call`, `function_call_output`) becomes the messages; function tools, tool
//! choice, `max_output_tokens`, sampling and `text.format` map to their chat fields. The
//! gateway keeps no responses, so `store: true`, `previous_response_id`, `conversation` and
//! item references are refused: the client sends the whole conversation each time. Reasoning
//! items a client echoes back are dropped (chat takes no reasoning in).

use serde_json::{Map, Value, json};

use super::fields::{Fields, Untranslatable, array, object};

const CHAT: &str = "chat completions (the gateway keeps no responses and translates to chat)";

/// A Responses request as a chat-completions request.
pub fn responses_to_chat(
    request: Map<String, Value>,
) -> Result<Map<String, Value>, Untranslatable> {
    let mut f = Fields::new(request, "the request", CHAT);
    for key in ["previous_response_id", "conversation"] {
        if f.take(key).is_some() {
            return Err(f.error(format!(
                "{key:?} needs a response store, which this gateway does not keep; send the whole conversation in \"input\""
            )));
        }
    }
    if f.take("store") == Some(Value::Bool(true)) {
        return Err(f.error(
            "\"store\": true needs a response store, which this gateway does not keep; send \"store\": false".into(),
        ));
    }
    let mut out = Map::new();
    f.copy("model", &mut out, "model");
    let mut messages = Vec::new();
    if let Some(instructions) = f.string("instructions")? {
        messages.push(json!({"role": "system", "content": instructions}));
    }
    match f.take("input") {
        None => return Err(f.error("\"input\" is required".into())),
        Some(Value::String(s)) => messages.push(json!({"role": "user", "content": s})),
        Some(Value::Array(items)) => {
            for (i, item) in items.into_iter().enumerate() {
                input_item(item, i, &mut messages)?;
            }
        }
        Some(_) => return Err(f.error("\"input\" must be a string or an array of items".into())),
    }
    out.insert("messages".into(), Value::Array(messages));
    f.copy("max_output_tokens", &mut out, "max_tokens");
    for key in ["temperature", "top_p", "user", "parallel_tool_calls"] {
        f.copy(key, &mut out, key);
    }
    if let Some(stream) = f.take("stream") {
        if stream == Value::Bool(true) {
            out.insert("stream_options".into(), json!({"include_usage": true}));
        }
        out.insert("stream".into(), stream);
    }
    if let Some(tools) = f.take("tools") {
        let tools: Result<Vec<Value>, _> =
            array(tools, "\"tools\"")?.into_iter().map(tool).collect();
        out.insert("tools".into(), Value::Array(tools?));
    }
    match f.take("tool_choice") {
        None => {}
        Some(Value::String(s)) if ["auto", "none", "required"].contains(&s.as_str()) => {
            out.insert("tool_choice".into(), Value::String(s));
        }
        Some(v) if v["type"] == "function" => {
            out.insert(
                "tool_choice".into(),
                json!({"type": "function", "function": {"name": v["name"]}}),
            );
        }
        Some(_) => {
            return Err(f.error("tool_choice must be auto, none, required or a function".into()));
        }
    }
    if let Some(text) = f.take("text") {
        let mut t = Fields::new(object(text, "\"text\"")?, "text", CHAT);
        if let Some(format) = t.take("format") {
            let mut fm = Fields::new(object(format, "\"text.format\"")?, "text.format", CHAT);
            match fm.string("type")?.as_deref() {
                Some("text") => {}
                Some("json_object") => {
                    out.insert("response_format".into(), json!({"type": "json_object"}));
                }
                Some("json_schema") => {
                    let mut schema = Map::new();
                    for key in ["name", "schema", "strict", "description"] {
                        fm.copy(key, &mut schema, key);
                    }
                    out.insert(
                        "response_format".into(),
                        json!({"type": "json_schema", "json_schema": schema}),
                    );
                }
                other => return Err(fm.error(format!("format {other:?} is not known"))),
            }
            fm.finish()?;
        }
        t.finish()?;
    }
    // Echoed back in the response object, as the API does; nothing is stored.
    f.ignore("metadata");
    f.only("reasoning", &[json!({})])?;
    f.only("truncation", &[json!("disabled")])?;
    f.only("include", &[json!([])])?;
    f.only("background", &[json!(false)])?;
    f.only("service_tier", &[json!("auto"), json!("default")])?;
    f.only("top_logprobs", &[json!(0)])?;
    f.finish()?;
    Ok(out)
}

/// One input item as chat messages, appended to `out`.
fn input_item(item: Value, i: usize, out: &mut Vec<Value>) -> Result<(), Untranslatable> {
    let what = format!("input[{i}]");
    let mut f = Fields::new(object(item, &what)?, what, CHAT);
    let kind = f.string("type")?.unwrap_or_else(|| "message".into());
    f.ignore("id");
    f.ignore("status");
    match kind.as_str() {
        "message" => {
            let role = f.string("role")?.unwrap_or_default();
            if !["user", "system", "developer", "assistant"].contains(&role.as_str()) {
                return Err(f.error(format!("role {role:?} is not known")));
            }
            let content = message_content(f.take("content").unwrap_or_default(), &role, &f)?;
            out.push(json!({"role": role, "content": content}));
        }
        "function_call" => {
            let call = json!({"id": f.string("call_id")?.unwrap_or_default(), "type": "function",
                "function": {"name": f.string("name")?.unwrap_or_default(),
                    "arguments": f.string("arguments")?.unwrap_or_default()}});
            match out.last_mut() {
                Some(m) if m["role"] == "assistant" => match m["tool_calls"].as_array_mut() {
                    Some(calls) => calls.push(call),
                    None => m["tool_calls"] = json!([call]),
                },
                _ => out.push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
            }
        }
        "function_call_output" => {
            let output = match f.take("output") {
                Some(Value::String(s)) => s,
                Some(Value::Array(parts)) => parts
                    .iter()
                    .filter_map(|p| p["text"].as_str())
                    .collect::<Vec<_>>()
                    .join(""),
                _ => String::new(),
            };
            let id = f.string("call_id")?.unwrap_or_default();
            out.push(json!({"role": "tool", "tool_call_id": id, "content": output}));
        }
        // The model's own reasoning, echoed back: chat takes none in.
        "reasoning" => {
            for key in ["summary", "content", "encrypted_content"] {
                f.ignore(key);
            }
        }
        "item_reference" => {
            return Err(f.error(
                "item references need a response store, which this gateway does not keep".into(),
            ));
        }
        other => return Err(f.error(format!("items of type {other:?} cannot be translated"))),
    }
    f.finish()
}

/// A message item's content as chat content: text, or parts with images (user turns).
fn message_content(content: Value, role: &str, f: &Fields) -> Result<Value, Untranslatable> {
    let parts = match content {
        Value::String(s) => return Ok(Value::String(s)),
        Value::Array(parts) => parts,
        _ => return Err(f.error("\"content\" must be a string or an array of parts".into())),
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, p) in parts.into_iter().enumerate() {
        let what = format!("content[{j}]");
        let mut part = Fields::new(object(p, &what)?, what, CHAT);
        match part.string("type")?.as_deref() {
            Some("input_text" | "output_text") => {
                let text = part.string("text")?.unwrap_or_default();
                part.ignore("annotations");
                part.ignore("logprobs");
                out.push(json!({"type": "text", "text": text}));
            }
            Some("input_image") if role == "user" => {
                let Some(url) = part.string("image_url")? else {
                    return Err(part.error("only images given by image_url can be translated (file_id needs a file store)".into()));
                };
                let mut image = json!({"url": url});
                if let Some(detail) = part.take("detail") {
                    image["detail"] = detail;
                }
                out.push(json!({"type": "image_url", "image_url": image}));
            }
            other => {
                return Err(part.error(format!("parts of type {other:?} cannot be translated")));
            }
        }
        part.finish()?;
    }
    if role == "user" {
        return Ok(Value::Array(out));
    }
    // System and assistant turns as plain text: what every chat server takes.
    let text: String = out.iter().filter_map(|p| p["text"].as_str()).collect();
    Ok(Value::String(text))
}

/// A Responses function tool as a chat tool (built-in tools need OpenAI's own service).
fn tool(tool: Value) -> Result<Value, Untranslatable> {
    let mut t = Fields::new(object(tool, "a tool")?, "a tool", CHAT);
    let kind = t.string("type")?;
    if kind.as_deref() != Some("function") {
        return Err(t.error(format!(
            "tools of type {kind:?} cannot be translated; only function tools run on other backends"
        )));
    }
    let mut function = Map::new();
    for key in ["name", "description", "parameters", "strict"] {
        t.copy(key, &mut function, key);
    }
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
    fn items_with_a_function_round_trip_become_chat_messages() {
        let request = json!({
            "model": "m", "instructions": "be kind", "stream": true, "max_output_tokens": 64,
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "weather?"},
                    {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"}]},
                {"type": "function_call", "call_id": "call_1", "name": "get", "arguments": "{}", "id": "fc_1", "status": "completed"},
                {"type": "function_call_output", "call_id": "call_1", "output": "rain"},
            ],
            "tools": [{"type": "function", "name": "get", "parameters": {"type": "object"}, "strict": true}],
            "tool_choice": {"type": "function", "name": "get"},
            "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}}},
            "store": false, "metadata": {"k": "v"},
        });
        let chat = Value::Object(responses_to_chat(map(request)).unwrap());
        assert_eq!(
            chat,
            json!({
                "model": "m",
                "messages": [
                    {"role": "system", "content": "be kind"},
                    {"role": "user", "content": [{"type": "text", "text": "weather?"},
                        {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}}]},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": "{}"}}]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "rain"},
                ],
                "max_tokens": 64, "stream": true, "stream_options": {"include_usage": true},
                "tools": [{"type": "function", "function": {"name": "get", "parameters": {"type": "object"}, "strict": true}}],
                "tool_choice": {"type": "function", "function": {"name": "get"}},
                "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}},
            })
        );
    }

    #[test]
    fn what_needs_a_store_or_a_hosted_tool_is_refused_clearly() {
        for (field, value, says) in [
            ("previous_response_id", json!("resp_1"), "response store"),
            ("store", json!(true), "response store"),
            (
                "tools",
                json!([{"type": "web_search"}]),
                "only function tools",
            ),
            ("reasoning", json!({"effort": "high"}), "\"reasoning\""),
        ] {
            let mut r = json!({"model": "m", "input": "hi"});
            r[field] = value;
            let e = responses_to_chat(map(r)).unwrap_err();
            assert!(e.0.contains(says), "{field}: {e}");
        }
        let plain = responses_to_chat(map(json!({"model": "m", "input": "hi"}))).unwrap();
        assert_eq!(
            plain["messages"],
            json!([{"role": "user", "content": "hi"}])
        );
    }
}
