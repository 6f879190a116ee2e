//! Chat chunks as Responses API events, as a [`Stage`]: `response.created` and
//! `response.in_progress` first; each run of text an output message (`output_item.added`,
//! `content_part.added`, `output_text.delta`s, then the `.done` events); each tool call a
//! `function_call` item with `function_call_arguments.delta`s; and `response.completed` (or
//! `response.incomplete`) with every item and the usage last. Every event carries its
//! `sequence_number`.

use serde_json::{Value, json};

use super::event::{ChatChunk, Event, Stage};
use super::responses_answer::{Echo, call_item, message_item, response, status};

/// Most output text kept for the final events, in bytes: the Responses API repeats the whole
/// output in its last event, so it is held; a longer answer ends with an error event.
const OUTPUT_MAX: usize = 8 << 20;

/// The output item being streamed.
enum Open {
    Message {
        id: String,
        text: String,
    },
    Call {
        index: u64,
        call_id: Value,
        name: Value,
        arguments: String,
    },
}

/// Chat chunks in, Responses events out.
pub struct ChatToResponses {
    echo: Echo,
    created: u64,
    sequence: u64,
    model: Value,
    started: bool,
    done: Vec<Value>,
    open: Option<Open>,
    held: usize,
    finish: Option<String>,
    usage: Option<Value>,
    ended: bool,
}

impl ChatToResponses {
    /// For the request `echo` describes, created at `created` (Unix seconds).
    pub fn new(echo: Echo, created: u64) -> Self {
        ChatToResponses {
            echo,
            created,
            sequence: 0,
            model: Value::Null,
            started: false,
            done: Vec::new(),
            open: None,
            held: 0,
            finish: None,
            usage: None,
            ended: false,
        }
    }

    fn emit(&mut self, name: &'static str, mut data: Value, out: &mut Vec<Event>) {
        data["type"] = Value::from(name);
        data["sequence_number"] = Value::from(self.sequence);
        self.sequence += 1;
        out.push(Event::named(name, data));
    }

    fn snapshot(&self, status: &str, usage: Option<&Value>, incomplete: Option<&str>) -> Value {
        response(
            &self.echo,
            self.created,
            status,
            &self.model,
            self.done.clone(),
            usage,
            incomplete,
        )
    }

    fn start(&mut self, out: &mut Vec<Event>) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        let r = self.snapshot("in_progress", None, None);
        self.emit("response.created", json!({"response": r}), out);
        let r = self.snapshot("in_progress", None, None);
        self.emit("response.in_progress", json!({"response": r}), out);
    }

    fn index(&self) -> usize {
        self.done.len()
    }

    fn close(&mut self, out: &mut Vec<Event>) {
        let index = self.index();
        match self.open.take() {
            None => {}
            Some(Open::Message { id, text }) => {
                let base = json!({"item_id": id, "output_index": index, "content_index": 0});
                let mut done = base.clone();
                done["text"] = Value::from(text.as_str());
                done["logprobs"] = json!([]);
                self.emit("response.output_text.done", done, out);
                let mut part = base;
                part["part"] = json!({"type": "output_text", "text": text, "annotations": []});
                self.emit("response.content_part.done", part, out);
                let item = message_item(&id, &text, "completed");
                self.emit(
                    "response.output_item.done",
                    json!({"output_index": index, "item": item}),
                    out,
                );
                self.done.push(item);
            }
            Some(Open::Call {
                call_id,
                name,
                arguments,
                ..
            }) => {
                let item = call_item(&call_id, &name, &arguments, "completed");
                self.emit(
                    "response.function_call_arguments.done",
                    json!({"item_id": item["id"], "output_index": index, "arguments": arguments}),
                    out,
                );
                self.emit(
                    "response.output_item.done",
                    json!({"output_index": index, "item": item}),
                    out,
                );
                self.done.push(item);
            }
        }
    }

    fn hold(&mut self, n: usize) -> Result<(), String> {
        self.held += n;
        if self.held > OUTPUT_MAX {
            return Err("the answer exceeds the 8 MiB a Responses stream can carry".into());
        }
        Ok(())
    }

    fn text(&mut self, delta: &str, out: &mut Vec<Event>) -> Result<(), String> {
        self.hold(delta.len())?;
        if !matches!(self.open, Some(Open::Message { .. })) {
            self.close(out);
            let id = format!("msg_{}_{}", self.echo.id, self.index());
            let index = self.index();
            let item = json!({"id": id, "type": "message", "status": "in_progress", "role": "assistant", "content": []});
            self.emit(
                "response.output_item.added",
                json!({"output_index": index, "item": item}),
                out,
            );
            self.emit(
                "response.content_part.added",
                json!({"item_id": id, "output_index": index, "content_index": 0,
                    "part": {"type": "output_text", "text": "", "annotations": []}}),
                out,
            );
            self.open = Some(Open::Message {
                id,
                text: String::new(),
            });
        }
        let index = self.index();
        if let Some(Open::Message { id, text }) = &mut self.open {
            text.push_str(delta);
            let data = json!({"item_id": id, "output_index": index, "content_index": 0, "delta": delta, "logprobs": []});
            self.emit("response.output_text.delta", data, out);
        }
        Ok(())
    }

    fn call(&mut self, call: &Value, out: &mut Vec<Event>) -> Result<(), String> {
        let index = call["index"].as_u64().unwrap_or(0);
        let same = matches!(&self.open, Some(Open::Call { index: i, .. }) if *i == index);
        if !same {
            if call["id"].is_null() {
                return Err(
                    "the backend interleaved tool calls, which cannot be translated".into(),
                );
            }
            self.close(out);
            let (call_id, name) = (call["id"].clone(), call["function"]["name"].clone());
            let item = call_item(&call_id, &name, "", "in_progress");
            self.emit(
                "response.output_item.added",
                json!({"output_index": self.index(), "item": item}),
                out,
            );
            self.open = Some(Open::Call {
                index,
                call_id,
                name,
                arguments: String::new(),
            });
        }
        let Some(delta) = call["function"]["arguments"]
            .as_str()
            .filter(|a| !a.is_empty())
        else {
            return Ok(());
        };
        self.hold(delta.len())?;
        let output_index = self.index();
        if let Some(Open::Call {
            call_id, arguments, ..
        }) = &mut self.open
        {
            arguments.push_str(delta);
            let item_id = format!("fc_{}", call_id.as_str().unwrap_or_default());
            let data = json!({"item_id": item_id, "output_index": output_index, "delta": delta});
            self.emit("response.function_call_arguments.delta", data, out);
        }
        Ok(())
    }

    fn complete(&mut self, out: &mut Vec<Event>) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        self.start(out);
        self.close(out);
        let (status, incomplete) = status(self.finish.as_deref());
        let usage = self.usage.take();
        let r = self.snapshot(status, usage.as_ref(), incomplete);
        let name = if incomplete.is_some() {
            "response.incomplete"
        } else {
            "response.completed"
        };
        self.emit(name, json!({"response": r}), out);
    }
}

impl Stage for ChatToResponses {
    fn event(&mut self, event: Event, out: &mut Vec<Event>) -> Result<(), String> {
        let chunk = match ChatChunk::of(event) {
            ChatChunk::Done => {
                self.complete(out);
                return Ok(());
            }
            _ if self.ended => return Ok(()),
            ChatChunk::Error(message) => return Err(message),
            ChatChunk::Chunk(chunk) => chunk,
        };
        if self.model.is_null() {
            self.model = chunk["model"].clone();
        }
        self.start(out);
        if chunk["usage"].is_object() {
            self.usage = Some(chunk["usage"].clone());
        }
        let choice = &chunk["choices"][0];
        if let Some(t) = choice["delta"]["content"]
            .as_str()
            .filter(|t| !t.is_empty())
        {
            self.text(t, out)?;
        }
        for call in choice["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            self.call(call, out)?;
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            self.finish = Some(f.to_owned());
        }
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<Event>) -> Result<(), String> {
        self.complete(out);
        Ok(())
    }

    fn sequence(&self) -> u64 {
        self.sequence
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::event::Data;

    #[test]
    fn chat_chunks_become_numbered_response_events() {
        let mut stage = ChatToResponses::new(Echo::of(b"{}", "r1"), 0);
        let c = |delta: Value, finish: Value| json!({"model": "llama", "choices": [{"delta": delta, "finish_reason": finish}]});
        let mut out = Vec::new();
        for chunk in [
            c(json!({"role": "assistant", "content": "Hel"}), Value::Null),
            c(json!({"content": "lo"}), Value::Null),
            c(
                json!({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "get", "arguments": "{\"a\""}}]}),
                Value::Null,
            ),
            c(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}),
                Value::Null,
            ),
            c(json!({}), json!("tool_calls")),
            json!({"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 6}}),
        ] {
            stage.event(Event::json(chunk), &mut out).unwrap();
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
        let names: Vec<&str> = out.iter().filter_map(|e| e.name).collect();
        assert_eq!(
            names,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        for (i, e) in out.iter().enumerate() {
            let Data::Json(d) = &e.data else { panic!() };
            assert_eq!(d["sequence_number"], i as u64);
        }
        let Data::Json(last) = &out[out.len() - 1].data else {
            panic!()
        };
        let r = &last["response"];
        assert_eq!(r["status"], "completed");
        assert_eq!(r["output"][0]["content"][0]["text"], "Hello");
        assert_eq!(r["output"][1]["arguments"], "{\"a\":1}");
        assert_eq!(r["usage"]["total_tokens"], 10);
    }
}
