//! Streams between Anthropic Messages and chat completions, both ways, as [`Stage`]s.
//!
//! Anthropic to chat: `message_start` opens with the assistant role, text and
//! `input_json_delta` deltas become content and tool-call argument deltas, `message_delta`
//! carries the finish reason, `message_stop` ends with the usage chunk (when the client asked
//! for it) and `[DONE]`. Chat to Anthropic: the first chunk opens the message, each run of
//! text, reasoning or one tool call's arguments becomes one content block, and the finish
//! reason and usage (which arrive last in chat) close it with `message_delta` and
//! `message_stop`.

use serde_json::{Value, json};

use super::anthropic_answer::{chat_usage, finish_reason, message_id, stop_reason};
use super::event::{ChatChunk, Data, Event, Stage};

/// Anthropic events in, chat chunks out.
pub struct AnthropicToChat {
    include_usage: bool,
    created: u64,
    id: Value,
    model: Value,
    usage: Value,
    /// Chat tool-call index of each open `tool_use` block, by block index.
    tools: Vec<(u64, usize)>,
    stopped: bool,
}

impl AnthropicToChat {
    /// With the usage chunk when `include_usage`; `created` in Unix seconds.
    pub fn new(include_usage: bool, created: u64) -> Self {
        AnthropicToChat {
            include_usage,
            created,
            id: Value::Null,
            model: Value::Null,
            usage: json!({}),
            tools: Vec::new(),
            stopped: false,
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Event {
        Event::json(json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}],
        }))
    }

    fn merge_usage(&mut self, usage: &Value) {
        if let (Some(into), Some(from)) = (self.usage.as_object_mut(), usage.as_object()) {
            for (k, v) in from {
                if v.is_u64() {
                    into.insert(k.clone(), v.clone());
                }
            }
        }
    }
}

impl Stage for AnthropicToChat {
    fn event(&mut self, event: Event, out: &mut Vec<Event>) -> Result<(), String> {
        let Data::Json(e) = event.data else {
            return Ok(());
        };
        match e["type"].as_str().unwrap_or_default() {
            "message_start" => {
                let m = &e["message"];
                self.id = Value::from(m["id"].as_str().map_or_else(
                    || "chatcmpl-anthropic".to_owned(),
                    |id| id.replacen("msg_", "chatcmpl-", 1),
                ));
                self.model = m["model"].clone();
                self.merge_usage(&m["usage"]);
                out.push(self.chunk(json!({"role": "assistant", "content": ""}), None));
            }
            "content_block_start" => {
                let block = &e["content_block"];
                match block["type"].as_str() {
                    Some("tool_use") => {
                        let index = self.tools.len();
                        self.tools.push((e["index"].as_u64().unwrap_or(0), index));
                        out.push(self.chunk(
                            json!({"tool_calls": [{"index": index, "id": block["id"], "type": "function",
                                "function": {"name": block["name"], "arguments": ""}}]}),
                            None,
                        ));
                    }
                    Some("text") if block["text"].as_str().is_some_and(|t| !t.is_empty()) => {
                        out.push(self.chunk(json!({"content": block["text"]}), None));
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let d = &e["delta"];
                let delta = match d["type"].as_str() {
                    Some("text_delta") => json!({"content": d["text"]}),
                    Some("thinking_delta") => json!({"reasoning_content": d["thinking"]}),
                    Some("input_json_delta") => {
                        let block = e["index"].as_u64().unwrap_or(0);
                        let Some(&(_, index)) = self.tools.iter().find(|(b, _)| *b == block) else {
                            return Err(
                                "the backend sent tool input for a block it never opened".into()
                            );
                        };
                        json!({"tool_calls": [{"index": index, "function": {"arguments": d["partial_json"]}}]})
                    }
                    _ => return Ok(()),
                };
                out.push(self.chunk(delta, None));
            }
            "message_delta" => {
                self.merge_usage(&e["usage"]);
                let stop = e["delta"]["stop_reason"].as_str().unwrap_or("end_turn");
                out.push(self.chunk(json!({}), Some(finish_reason(stop))));
            }
            "message_stop" => {
                if self.include_usage {
                    out.push(Event::json(json!({
                        "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                        "model": self.model, "choices": [], "usage": chat_usage(&self.usage),
                    })));
                }
                out.push(Event {
                    name: None,
                    data: Data::Done,
                });
                self.stopped = true;
            }
            "error" => {
                let message = e["error"]["message"]
                    .as_str()
                    .unwrap_or("the backend failed");
                return Err(message.to_owned());
            }
            // ping, content_block_stop, and event types added later.
            _ => {}
        }
        Ok(())
    }

    fn end(&mut self, _: &mut Vec<Event>) -> Result<(), String> {
        if self.stopped {
            Ok(())
        } else {
            Err("the backend's stream ended before message_stop".into())
        }
    }
}

/// The content block open in a [`ChatToAnthropic`] translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Thinking,
    /// A tool call, by its chat index.
    Tool(u64),
}

/// Chat chunks in, Anthropic events out.
#[derive(Default)]
pub struct ChatToAnthropic {
    /// The message id when the chunks carry none.
    fallback_id: String,
    started: bool,
    open: Option<Block>,
    /// Index of the next content block.
    next: u64,
    finish: Option<String>,
    usage: Option<Value>,
    ended: bool,
}

impl ChatToAnthropic {
    /// Naming the message after `fallback_id` when the chunks carry no id.
    pub fn new(fallback_id: String) -> Self {
        ChatToAnthropic {
            fallback_id,
            ..ChatToAnthropic::default()
        }
    }

    fn start(&mut self, chunk: &Value, out: &mut Vec<Event>) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        out.push(Event::named(
            "message_start",
            json!({"type": "message_start", "message": {
                "id": message_id(&chunk["id"], &self.fallback_id), "type": "message", "role": "assistant",
                "content": [], "model": chunk["model"], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0}}}),
        ));
    }

    fn close_block(&mut self, out: &mut Vec<Event>) {
        if self.open.take().is_some() {
            out.push(Event::named(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": self.next - 1}),
            ));
        }
    }

    /// Opens `block` (closing the one before) unless it is already open.
    fn open(&mut self, block: Block, start: Value, out: &mut Vec<Event>) {
        if self.open == Some(block) {
            return;
        }
        self.close_block(out);
        out.push(Event::named(
            "content_block_start",
            json!({"type": "content_block_start", "index": self.next, "content_block": start}),
        ));
        self.open = Some(block);
        self.next += 1;
    }

    fn delta(&self, delta: Value) -> Event {
        Event::named(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": self.next - 1, "delta": delta}),
        )
    }

    fn close_message(&mut self, out: &mut Vec<Event>) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        self.start(&Value::Null, out);
        self.close_block(out);
        let usage = self.usage.take().unwrap_or_default();
        let stop = stop_reason(self.finish.as_deref().unwrap_or("stop"));
        out.push(Event::named(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
                "usage": {"input_tokens": usage["prompt_tokens"].as_u64().unwrap_or(0),
                    "output_tokens": usage["completion_tokens"].as_u64().unwrap_or(0)}}),
        ));
        out.push(Event::named(
            "message_stop",
            json!({"type": "message_stop"}),
        ));
    }
}

impl Stage for ChatToAnthropic {
    fn event(&mut self, event: Event, out: &mut Vec<Event>) -> Result<(), String> {
        let chunk = match ChatChunk::of(event) {
            ChatChunk::Done => {
                self.close_message(out);
                return Ok(());
            }
            _ if self.ended => return Ok(()),
            ChatChunk::Error(message) => return Err(message),
            ChatChunk::Chunk(chunk) => chunk,
        };
        self.start(&chunk, out);
        if chunk["usage"].is_object() {
            self.usage = Some(chunk["usage"].clone());
        }
        let choice = &chunk["choices"][0];
        let delta = &choice["delta"];
        if let Some(r) = delta["reasoning_content"]
            .as_str()
            .filter(|r| !r.is_empty())
        {
            let start = json!({"type": "thinking", "thinking": "", "signature": ""});
            self.open(Block::Thinking, start, out);
            out.push(self.delta(json!({"type": "thinking_delta", "thinking": r})));
        }
        if let Some(t) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            self.open(Block::Text, json!({"type": "text", "text": ""}), out);
            out.push(self.delta(json!({"type": "text_delta", "text": t})));
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let index = call["index"].as_u64().unwrap_or(0);
            if self.open != Some(Block::Tool(index)) {
                if call["id"].is_null() {
                    return Err(
                        "the backend interleaved tool calls, which cannot be translated".into(),
                    );
                }
                let start = json!({"type": "tool_use", "id": call["id"],
                    "name": call["function"]["name"], "input": {}});
                self.open(Block::Tool(index), start, out);
            }
            if let Some(a) = call["function"]["arguments"]
                .as_str()
                .filter(|a| !a.is_empty())
            {
                out.push(self.delta(json!({"type": "input_json_delta", "partial_json": a})));
            }
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            self.finish = Some(f.to_owned());
        }
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<Event>) -> Result<(), String> {
        self.close_message(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stage: &mut impl Stage, chunks: Vec<Value>) -> Vec<Event> {
        let mut out = Vec::new();
        for c in chunks {
            stage.event(Event::json(c), &mut out).unwrap();
        }
        stage
            .event(
                Event {
                    name: None,
                    data: Data::Done,
                },
                &mut out,
            )
            .unwrap();
        out
    }

    #[test]
    fn chat_chunks_become_anthropic_blocks_closed_by_the_late_usage() {
        let c = |delta: Value, finish: Value| json!({"id": "chatcmpl-9", "model": "llama", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        let events = run(
            &mut ChatToAnthropic::default(),
            vec![
                c(json!({"role": "assistant", "content": ""}), Value::Null),
                c(json!({"content": "Hi"}), Value::Null),
                c(
                    json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get", "arguments": ""}}]}),
                    Value::Null,
                ),
                c(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
                    Value::Null,
                ),
                c(json!({}), json!("tool_calls")),
                json!({"id": "chatcmpl-9", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3}}),
            ],
        );
        let names: Vec<&str> = events.iter().filter_map(|e| e.name).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        let Data::Json(start) = &events[0].data else {
            panic!()
        };
        assert_eq!(start["message"]["id"], "msg_chatcmpl-9");
        let Data::Json(tool) = &events[4].data else {
            panic!()
        };
        assert_eq!(tool["content_block"]["id"], "call_1");
        assert_eq!(tool["index"], 1);
        let Data::Json(delta) = &events[7].data else {
            panic!()
        };
        assert_eq!(delta["delta"]["stop_reason"], "tool_use");
        assert_eq!(
            delta["usage"],
            json!({"input_tokens": 5, "output_tokens": 3})
        );
    }
}
