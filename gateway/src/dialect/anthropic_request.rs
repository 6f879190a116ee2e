//! A chat-completions request as an Anthropic Messages request.
//!
//! System and developer messages become `system`; consecutive turns of one role merge
//! (Anthropic alternates roles); tool results become `tool_result` blocks of a user turn;
//! images become `image` blocks; `max_tokens` is supplied when absent; `user` becomes
//! `metadata.user_id`. A chat client's echoed `reasoning_content` is dropped: Anthropic only
//! takes its own signed thinking blocks back.

use serde_json::{Map, Value, json};

use super::ANTHROPIC_DEFAULT_MAX_TOKENS;
use super::fields::{Fields, Untranslatable, array, object};

const ANTHROPIC: &str = "Anthropic's Messages API";

/// A chat-completions request as an Anthropic Messages request.
pub fn chat_to_messages(request: Map<String, Value>) -> Result<Map<String, Value>, Untranslatable> {
    let mut f = Fields::new(request, "the request", ANTHROPIC);
    let mut out = Map::new();
    f.copy("model", &mut out, "model");
    let messages = f
        .take("messages")
        .ok_or_else(|| f.error("\"messages\" is required".into()))?;
    let (system, turns) = chat_turns(array(messages, "\"messages\"")?)?;
    match system.as_slice() {
        [] => {}
        [one] => {
            out.insert("system".into(), Value::from(one.as_str()));
        }
        many => {
            let blocks = many.iter().map(|t| json!({"type": "text", "text": t}));
            out.insert("system".into(), Value::Array(blocks.collect()));
        }
    }
    out.insert("messages".into(), Value::Array(turns));
    let completion = f.take("max_completion_tokens");
    let max_tokens = completion.or(f.take("max_tokens"));
    out.insert(
        "max_tokens".into(),
        max_tokens.unwrap_or(Value::from(ANTHROPIC_DEFAULT_MAX_TOKENS)),
    );
    match f.take("stop") {
        None => {}
        Some(Value::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(list @ Value::Array(_)) => {
            out.insert("stop_sequences".into(), list);
        }
        Some(_) => return Err(f.error("\"stop\" must be a string or an array".into())),
    }
    for key in ["stream", "temperature", "top_p", "top_k"] {
        f.copy(key, &mut out, key);
    }
    // The gateway answers `include_usage` itself, from the Anthropic stream's usage.
    f.ignore("stream_options");
    if let Some(user) = f.take("user") {
        out.insert("metadata".into(), json!({"user_id": user}));
    }
    if let Some(tools) = f.take("tools") {
        let tools = array(tools, "\"tools\"")?;
        let tools: Result<Vec<Value>, _> = tools.into_iter().map(chat_tool).collect();
        out.insert("tools".into(), Value::Array(tools?));
    }
    let mut choice = match f.take("tool_choice") {
        None => None,
        Some(Value::String(s)) => Some(match s.as_str() {
            "auto" => json!({"type": "auto"}),
            "none" => json!({"type": "none"}),
            "required" => json!({"type": "any"}),
            _ => return Err(f.error(format!("tool_choice {s:?} is not known"))),
        }),
        Some(v) => match v.pointer("/function/name") {
            Some(name) => Some(json!({"type": "tool", "name": name})),
            None => return Err(f.error("tool_choice must name a function".into())),
        },
    };
    if f.take("parallel_tool_calls") == Some(Value::Bool(false)) {
        let c = choice.get_or_insert_with(|| json!({"type": "auto"}));
        c["disable_parallel_tool_use"] = Value::Bool(true);
    }
    if let Some(c) = choice {
        out.insert("tool_choice".into(), c);
    }
    f.only("n", &[json!(1)])?;
    f.only("logprobs", &[json!(false)])?;
    for key in ["presence_penalty", "frequency_penalty"] {
        f.only(key, &[json!(0), json!(0.0)])?;
    }
    f.only("response_format", &[json!({"type": "text"})])?;
    f.only("logit_bias", &[json!({})])?;
    f.only("metadata", &[json!({})])?;
    f.only("store", &[json!(false)])?;
    f.finish()?;
    Ok(out)
}

/// One turn being built: its role and content blocks, or plain text while it is one string.
struct Turn {
    role: &'static str,
    plain: Option<String>,
    blocks: Vec<Value>,
}

impl Turn {
    fn into_value(self) -> Value {
        match (self.plain, self.blocks.is_empty()) {
            (Some(text), true) => json!({"role": self.role, "content": text}),
            (Some(text), false) => {
                let mut blocks = vec![json!({"type": "text", "text": text})];
                blocks.extend(self.blocks);
                json!({"role": self.role, "content": blocks})
            }
            (None, _) => json!({"role": self.role, "content": self.blocks}),
        }
    }
}

/// Appends content to the last turn when it has `role`, else starts one.
fn push(turns: &mut Vec<Turn>, role: &'static str, plain: Option<String>, blocks: Vec<Value>) {
    if let Some(last) = turns.last_mut().filter(|t| t.role == role) {
        if let Some(text) = last.plain.take() {
            last.blocks.insert(0, json!({"type": "text", "text": text}));
        }
        if let Some(text) = plain {
            last.blocks.push(json!({"type": "text", "text": text}));
        }
        last.blocks.extend(blocks);
        return;
    }
    turns.push(Turn {
        role,
        plain,
        blocks,
    });
}

/// The system texts and the alternating turns of chat `messages`.
fn chat_turns(messages: Vec<Value>) -> Result<(Vec<String>, Vec<Value>), Untranslatable> {
    let mut system = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    for (i, m) in messages.into_iter().enumerate() {
        let what = format!("messages[{i}]");
        let mut f = Fields::new(object(m, &what)?, what, ANTHROPIC);
        let role = f.string("role")?.unwrap_or_default();
        match role.as_str() {
            "system" | "developer" => {
                let content = f.take("content").unwrap_or(Value::Null);
                system.push(text_only(content, &f)?);
            }
            "user" => {
                let (plain, blocks) = user_content(f.take("content"), &f)?;
                push(&mut turns, "user", plain, blocks);
            }
            "assistant" => {
                let mut blocks = Vec::new();
                match f.take("content") {
                    None => {}
                    Some(Value::String(s)) if s.is_empty() => {}
                    Some(c) => blocks.push(json!({"type": "text", "text": text_only(c, &f)?})),
                }
                for call in array(f.take("tool_calls").unwrap_or(json!([])), "tool_calls")? {
                    blocks.push(tool_use_block(call)?);
                }
                // The model's own reasoning, echoed back by some clients: Anthropic only takes
                // its own signed thinking blocks.
                f.ignore("reasoning_content");
                f.only("refusal", &[])?;
                push(&mut turns, "assistant", None, blocks);
            }
            "tool" => {
                let id = f.string("tool_call_id")?.unwrap_or_default();
                let content = match f.take("content") {
                    Some(Value::String(s)) => Value::String(s),
                    Some(c) => json!([{"type": "text", "text": text_only(c, &f)?}]),
                    None => Value::from(""),
                };
                let block = json!({"type": "tool_result", "tool_use_id": id, "content": content});
                push(&mut turns, "user", None, vec![block]);
            }
            other => return Err(f.error(format!("role {other:?} cannot be translated"))),
        }
        f.finish()?;
    }
    Ok((system, turns.into_iter().map(Turn::into_value).collect()))
}

/// A string, or the text of an array of text parts.
fn text_only(content: Value, f: &Fields) -> Result<String, Untranslatable> {
    match content {
        Value::String(s) => Ok(s),
        Value::Null => Ok(String::new()),
        Value::Array(parts) => {
            let mut text = String::new();
            for p in parts {
                match (p.get("type").and_then(Value::as_str), p.get("text")) {
                    (Some("text"), Some(Value::String(t))) => text.push_str(t),
                    _ => return Err(f.error("only text parts can be translated here".into())),
                }
            }
            Ok(text)
        }
        _ => Err(f.error("\"content\" must be a string or an array of parts".into())),
    }
}

/// A user message's content: plain text, or blocks (text and images).
fn user_content(
    content: Option<Value>,
    f: &Fields,
) -> Result<(Option<String>, Vec<Value>), Untranslatable> {
    let parts = match content {
        None => return Ok((Some(String::new()), Vec::new())),
        Some(Value::String(s)) => return Ok((Some(s), Vec::new())),
        Some(Value::Array(parts)) => parts,
        Some(_) => return Err(f.error("\"content\" must be a string or an array".into())),
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for (j, p) in parts.into_iter().enumerate() {
        let what = format!("content[{j}]");
        let mut part = Fields::new(object(p, &what)?, what, ANTHROPIC);
        match part.string("type")?.as_deref() {
            Some("text") => {
                let text = part.string("text")?.unwrap_or_default();
                blocks.push(json!({"type": "text", "text": text}));
            }
            Some("image_url") => {
                let url = match part.take("image_url") {
                    Some(Value::String(u)) => u,
                    Some(Value::Object(o)) => {
                        let mut img = Fields::new(o, "image_url", ANTHROPIC);
                        img.only("detail", &[json!("auto")])?;
                        let url = img.string("url")?.unwrap_or_default();
                        img.finish()?;
                        url
                    }
                    _ => return Err(part.error("\"image_url\" needs a url".into())),
                };
                blocks.push(image_block(&url));
            }
            other => {
                return Err(part.error(format!(
                    "content parts of type {other:?} cannot be sent to {ANTHROPIC}"
                )));
            }
        }
        part.finish()?;
    }
    Ok((None, blocks))
}

/// An Anthropic image block for a chat image URL (a `data:` URL becomes base64 data).
fn image_block(url: &str) -> Value {
    let base64 = url
        .strip_prefix("data:")
        .and_then(|rest| rest.split_once(";base64,"));
    match base64 {
        Some((media_type, data)) => json!({"type": "image", "source":
            {"type": "base64", "media_type": media_type, "data": data}}),
        None => json!({"type": "image", "source": {"type": "url", "url": url}}),
    }
}

/// A chat tool call as a `tool_use` block.
fn tool_use_block(call: Value) -> Result<Value, Untranslatable> {
    let id = call["id"].as_str().unwrap_or_default().to_owned();
    let name = call.pointer("/function/name").and_then(Value::as_str);
    let arguments = call.pointer("/function/arguments").and_then(Value::as_str);
    let (Some(name), Some(arguments)) = (name, arguments) else {
        return Err(Untranslatable::new(
            "a tool call needs function.name and function.arguments",
        ));
    };
    if escapes_printable_ascii(arguments) {
        return Err(Untranslatable::new(format!(
            "the arguments of tool call {id:?} write a printable ASCII character as a \\u escape; the PII detector reads them as sent, and {ANTHROPIC} would get them decoded, so send such characters as themselves"
        )));
    }
    let input: Value = if arguments.trim().is_empty() {
        json!({})
    } else {
        serde_json::from_str(arguments).map_err(|_| {
            Untranslatable::new(format!(
                "the arguments of tool call {id:?} are not JSON, which {ANTHROPIC} requires"
            ))
        })?
    };
    Ok(json!({"type": "tool_use", "id": id, "name": name, "input": input}))
}

/// Whether JSON text `s` writes a printable ASCII character (space to `~`) as a `\uXXXX`
/// escape. Decoding the arguments for Anthropic's `input` turns such escapes into the
/// characters the detector never saw (`\u0030` is `0`); JSON encoders escape only quotes,
/// backslashes, control and (optionally) non-ASCII characters, so no honest client is refused.
fn escapes_printable_ascii(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        if b.get(i + 1) == Some(&b'u')
            && let Some(hex) = s.get(i + 2..i + 6)
            && let Ok(c) = u32::from_str_radix(hex, 16)
            && (0x20..0x7f).contains(&c)
        {
            return true;
        }
        i += 2;
    }
    false
}

/// A chat function tool as an Anthropic tool.
fn chat_tool(tool: Value) -> Result<Value, Untranslatable> {
    let mut t = Fields::new(object(tool, "a tool")?, "a tool", ANTHROPIC);
    if t.string("type")?.as_deref() != Some("function") {
        return Err(t.error("only function tools can be translated".into()));
    }
    let function = t.take("function").unwrap_or(json!({}));
    t.finish()?;
    let mut f = Fields::new(object(function, "a tool")?, "a tool's function", ANTHROPIC);
    let mut out = Map::new();
    f.copy("name", &mut out, "name");
    f.copy("description", &mut out, "description");
    let schema = f
        .take("parameters")
        .unwrap_or(json!({"type": "object", "properties": {}}));
    out.insert("input_schema".into(), schema);
    f.only("strict", &[json!(false)])?;
    f.finish()?;
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_chat_tool_round_trip_becomes_alternating_anthropic_turns() {
        let chat = json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "sys"},
                {"role": "user", "content": [{"type": "text", "text": "weather?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,QUJD"}}]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "get", "arguments": "{\"city\":\"Oslo\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "rain"},
                {"role": "user", "content": "thanks"},
            ],
            "tools": [{"type": "function", "function": {"name": "get", "description": "d", "parameters": {"type": "object"}}}],
            "tool_choice": "required",
            "parallel_tool_calls": false,
            "max_completion_tokens": 50,
            "n": 1,
        });
        let out = Value::Object(chat_to_messages(map(chat)).unwrap());
        assert_eq!(
            out,
            json!({
                "model": "m",
                "system": "sys",
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "weather?"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "QUJD"}}]},
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "c1", "name": "get", "input": {"city": "Oslo"}}]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "c1", "content": "rain"},
                        {"type": "text", "text": "thanks"}]},
                ],
                "max_tokens": 50,
                "tools": [{"name": "get", "description": "d", "input_schema": {"type": "object"}}],
                "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            })
        );
    }

    #[test]
    fn chat_fields_anthropic_cannot_express_are_refused_by_name() {
        for (field, value) in [
            ("n", json!(2)),
            ("logprobs", json!(true)),
            ("response_format", json!({"type": "json_object"})),
            ("seed", json!(7)),
            ("frequency_penalty", json!(0.5)),
        ] {
            let mut chat = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
            chat[field] = value;
            let e = chat_to_messages(map(chat)).unwrap_err();
            assert!(e.0.contains(&format!("{field:?}")), "{field}: {e}");
        }
        let neutral = json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "n": 1, "presence_penalty": 0, "frequency_penalty": 0.0, "logprobs": false, "seed": null});
        if let Err(e) = chat_to_messages(map(neutral)) {
            panic!("{e}");
        }
        let bad_args = json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}]});
        assert!(chat_to_messages(map(bad_args)).is_err());
    }
}
