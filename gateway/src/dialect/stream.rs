//! Event streams translated as they pass: the backend's SSE split into events, each event
//! run through one or two translation stages (Anthropic to chat, chat to Anthropic, chat to
//! Responses) and written again as SSE in the client's API.
//!
//! Only the unfinished tail of one event is ever held, bounded like the usage meter's. A stage
//! that meets what it cannot translate (an `error` event, a broken event, an early end) ends
//! the client's stream with an `error` event in the client's format, and the rest of the
//! backend's stream is dropped.

use bytes::{BufMut, Bytes, BytesMut};

use super::anthropic_stream::{AnthropicToChat, ChatToAnthropic};
pub use super::event::{Data, Event, Stage};
use super::responses_answer::Echo;
use super::responses_stream::ChatToResponses;
use super::{Api, Conversion, stream_error_event};

/// Longest event held while incomplete, in bytes.
const EVENT_MAX: usize = 1 << 20;

/// What the stream translation needs to know of the request.
#[derive(Debug, Clone, Default)]
pub struct StreamContext {
    /// The chat client asked for the usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    /// The Responses request's fields echoed in its answer.
    pub echo: Echo,
    /// Unix seconds.
    pub created: u64,
    /// The request's id: the answer's id when the backend's has none.
    pub request_id: String,
}

/// Translates one event stream.
pub struct StreamTranslator {
    api: Api,
    stages: Vec<Box<dyn Stage>>,
    /// The unfinished line.
    line: Vec<u8>,
    /// A `\r` ended the last line: a `\n` first in the next read belongs to it.
    after_cr: bool,
    name: Option<String>,
    data: String,
    has_data: bool,
    /// An error event was sent: nothing more goes out.
    broken: bool,
}

impl StreamTranslator {
    /// The translator for answers of `conversion` (`None` when they pass untouched).
    pub fn new(api: Api, conversion: Conversion, ctx: StreamContext) -> Option<Self> {
        let stages: Vec<Box<dyn Stage>> = match conversion {
            Conversion::Native | Conversion::Unsupported => return None,
            Conversion::ChatToMessages => {
                vec![Box::new(AnthropicToChat::new(
                    ctx.include_usage,
                    ctx.created,
                ))]
            }
            Conversion::MessagesToChat => vec![Box::new(ChatToAnthropic::new(ctx.request_id))],
            Conversion::ResponsesToChat => {
                vec![Box::new(ChatToResponses::new(ctx.echo, ctx.created))]
            }
            Conversion::ResponsesToMessages => vec![
                Box::new(AnthropicToChat::new(true, ctx.created)),
                Box::new(ChatToResponses::new(ctx.echo, ctx.created)),
            ],
        };
        Some(StreamTranslator {
            api,
            stages,
            line: Vec::new(),
            after_cr: false,
            name: None,
            data: String::new(),
            has_data: false,
            broken: false,
        })
    }

    /// Reads `data` from the backend; returns what goes to the client.
    pub fn feed(&mut self, data: &[u8]) -> Bytes {
        let mut out = BytesMut::new();
        let mut data = data;
        if self.after_cr && data.first() == Some(&b'\n') {
            data = &data[1..];
        }
        self.after_cr = false;
        let mut start = 0;
        let mut i = 0;
        while i < data.len() && !self.broken {
            let b = data[i];
            if b != b'\n' && b != b'\r' {
                i += 1;
                continue;
            }
            let mut line = std::mem::take(&mut self.line);
            line.extend_from_slice(&data[start..i]);
            self.line_done(&line, &mut out);
            if b == b'\r' {
                match data.get(i + 1) {
                    Some(b'\n') => i += 1,
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
            i += 1;
            start = i;
        }
        if !self.broken {
            self.line.extend_from_slice(&data[start..]);
            if self.line.len() + self.data.len() > EVENT_MAX {
                self.fail("the backend sent an event over 1 MiB".into(), &mut out);
            }
        }
        out.freeze()
    }

    /// The backend's stream ended cleanly: the last event and whatever the stages close with.
    pub fn finish(&mut self) -> Bytes {
        let mut out = BytesMut::new();
        if self.broken {
            return out.freeze();
        }
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, &mut out);
        }
        self.dispatch(&mut out);
        if self.broken {
            return out.freeze();
        }
        let mut events = Vec::new();
        let mut result = Ok(());
        for stage in &mut self.stages {
            let mut next = Vec::new();
            for e in events {
                result = result.and_then(|()| stage.event(e, &mut next));
            }
            result = result.and_then(|()| stage.end(&mut next));
            events = next;
        }
        write(&events, &mut out);
        if let Err(message) = result {
            self.fail(message, &mut out);
        }
        out.freeze()
    }

    /// The error event that ends a stream cut by the gateway, in the client's format.
    pub fn error_event(&self, message: &str, code: &str) -> Bytes {
        let sequence = self.stages.last().map_or(0, |s| s.sequence());
        stream_error_event(self.api, message, code, sequence)
    }

    fn line_done(&mut self, line: &[u8], out: &mut BytesMut) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(0) => return,
            Some(p) => {
                let v = &line[p + 1..];
                (&line[..p], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        let value = String::from_utf8_lossy(value);
        match field {
            b"event" => self.name = Some(value.into_owned()),
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&value);
                self.has_data = true;
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut BytesMut) {
        self.name = None;
        if !std::mem::take(&mut self.has_data) {
            return;
        }
        let data = std::mem::take(&mut self.data);
        let event = if data.trim() == "[DONE]" {
            Event {
                name: None,
                data: Data::Done,
            }
        } else {
            match serde_json::from_str(&data) {
                Ok(v) => Event::json(v),
                Err(e) => {
                    return self.fail(
                        format!("the backend sent an event that is not JSON: {e}"),
                        out,
                    );
                }
            }
        };
        let mut events = vec![event];
        for stage in &mut self.stages {
            let mut next = Vec::new();
            for e in events {
                if let Err(message) = stage.event(e, &mut next) {
                    return self.fail(message, out);
                }
            }
            events = next;
        }
        write(&events, out);
    }

    fn fail(&mut self, message: String, out: &mut BytesMut) {
        self.broken = true;
        out.extend_from_slice(&self.error_event(&message, "upstream_stream_error"));
    }

    /// Whether the translation ended with an error event.
    pub fn broken(&self) -> bool {
        self.broken
    }
}

fn write(events: &[Event], out: &mut BytesMut) {
    for e in events {
        if let Some(name) = e.name {
            out.put_slice(b"event: ");
            out.put_slice(name.as_bytes());
            out.put_u8(b'\n');
        }
        match &e.data {
            Data::Done => out.put_slice(b"data: [DONE]\n\n"),
            Data::Json(v) => {
                out.put_slice(b"data: ");
                // Writing a `Value` to memory cannot fail.
                let _ = serde_json::to_writer((&mut *out).writer(), v);
                out.put_slice(b"\n\n");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// The events a client of `api` receives for `backend`, read whole.
    pub fn events_of(text: &[u8]) -> Vec<(Option<String>, Value)> {
        let text = String::from_utf8_lossy(text);
        text.split("\n\n")
            .filter(|e| !e.trim().is_empty())
            .map(|e| {
                let mut name = None;
                let mut data = Value::Null;
                for line in e.lines() {
                    if let Some(n) = line.strip_prefix("event: ") {
                        name = Some(n.to_owned());
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        data = serde_json::from_str(d).unwrap_or(Value::from(d));
                    }
                }
                (name, data)
            })
            .collect()
    }

    fn anthropic_stream() -> String {
        let events = [
            json!({"type": "message_start", "message": {"id": "msg_1", "model": "claude", "usage": {"input_tokens": 11, "output_tokens": 1}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {}}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"a\":"}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "1}"}}),
            json!({"type": "content_block_stop", "index": 1}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 6}}),
            json!({"type": "message_stop"}),
        ];
        events
            .iter()
            .map(|e| {
                format!(
                    "event: {}\r\ndata: {e}\r\n\r\n",
                    e["type"].as_str().unwrap()
                )
            })
            .collect()
    }

    fn translate(conversion: Conversion, api: Api, input: &[u8], cut: usize) -> Vec<u8> {
        let ctx = StreamContext {
            include_usage: true,
            ..Default::default()
        };
        let mut t = StreamTranslator::new(api, conversion, ctx).unwrap();
        let mut out = t.feed(&input[..cut]).to_vec();
        out.extend_from_slice(&t.feed(&input[cut..]));
        out.extend_from_slice(&t.finish());
        out
    }

    #[test]
    fn an_anthropic_stream_becomes_chat_chunks_wherever_it_is_cut() {
        let input = anthropic_stream();
        let whole = translate(
            Conversion::ChatToMessages,
            Api::ChatCompletions,
            input.as_bytes(),
            0,
        );
        for cut in 1..input.len() {
            assert_eq!(
                translate(
                    Conversion::ChatToMessages,
                    Api::ChatCompletions,
                    input.as_bytes(),
                    cut
                ),
                whole,
                "cut at {cut}"
            );
        }
        let events = events_of(&whole);
        let deltas: Vec<&Value> = events
            .iter()
            .filter_map(|(_, d)| d.pointer("/choices/0/delta"))
            .collect();
        assert_eq!(deltas[0], &json!({"role": "assistant", "content": ""}));
        let text: String = deltas
            .iter()
            .filter_map(|d| d["content"].as_str())
            .collect();
        assert_eq!(text, "Hello");
        let args: String = deltas
            .iter()
            .filter_map(|d| d.pointer("/tool_calls/0/function/arguments")?.as_str())
            .collect();
        assert_eq!(args, "{\"a\":1}");
        let finish: Vec<&Value> = events
            .iter()
            .filter_map(|(_, d)| d.pointer("/choices/0/finish_reason"))
            .filter(|f| !f.is_null())
            .collect();
        assert_eq!(finish, [&json!("tool_calls")]);
        let n = events.len();
        assert_eq!(events[n - 2].1["choices"], json!([]));
        assert_eq!(
            events[n - 2].1["usage"],
            json!({"prompt_tokens": 11, "completion_tokens": 6, "total_tokens": 17})
        );
        assert_eq!(events[n - 1].1, Value::from("[DONE]"));
    }

    #[test]
    fn an_error_event_or_an_early_end_ends_the_stream_with_an_error() {
        let error = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"busy\"}}\n\n";
        let out = translate(
            Conversion::ChatToMessages,
            Api::ChatCompletions,
            error.as_bytes(),
            5,
        );
        let events = events_of(&out);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].0.as_deref(), Some("error"));
        assert_eq!(events[0].1["error"]["message"], "busy");

        let input = anthropic_stream();
        let early = &input.as_bytes()[..input.find("event: message_delta").unwrap()];
        let out = translate(Conversion::ChatToMessages, Api::ChatCompletions, early, 7);
        let last = events_of(&out).pop().unwrap();
        assert_eq!(last.0.as_deref(), Some("error"));

        let junk = translate(
            Conversion::MessagesToChat,
            Api::Messages,
            b"data: {nope\n\n",
            3,
        );
        let events = events_of(&junk);
        assert_eq!(events[0].1["type"], "error");
        assert_eq!(events[0].1["error"]["type"], "api_error");
    }
}
