//! The events translation stages pass along, and the stage itself: one step from one API's
//! events to another's.

use serde_json::Value;

/// One event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Its `event:` name, when it has one.
    pub name: Option<&'static str>,
    /// Its data.
    pub data: Data,
}

/// An event's data.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// A JSON document.
    Json(Value),
    /// OpenAI's `[DONE]`.
    Done,
}

impl Event {
    /// An unnamed JSON event (chat completions).
    pub fn json(data: Value) -> Event {
        Event {
            name: None,
            data: Data::Json(data),
        }
    }

    /// A named JSON event (Anthropic, Responses).
    pub fn named(name: &'static str, data: Value) -> Event {
        Event {
            name: Some(name),
            data: Data::Json(data),
        }
    }
}

/// One translation step: events of one API in, events of another out. `Err` ends the stream
/// with an error event carrying the message.
pub trait Stage: Send {
    /// One event from upstream.
    fn event(&mut self, event: Event, out: &mut Vec<Event>) -> Result<(), String>;
    /// Upstream ended cleanly.
    fn end(&mut self, out: &mut Vec<Event>) -> Result<(), String>;
    /// The number the next event would carry (the Responses API numbers its events).
    fn sequence(&self) -> u64 {
        0
    }
}

/// What a chat-completions event means to a stage that reads chat chunks.
pub enum ChatChunk {
    /// `[DONE]`.
    Done,
    /// A chunk.
    Chunk(Value),
    /// An error object in place of a chunk (its message).
    Error(String),
}

impl ChatChunk {
    /// The meaning of `event`.
    pub fn of(event: Event) -> ChatChunk {
        match event.data {
            Data::Done => ChatChunk::Done,
            Data::Json(chunk) => match chunk.get("error") {
                Some(error) => ChatChunk::Error(
                    error["message"]
                        .as_str()
                        .unwrap_or("the backend failed")
                        .to_owned(),
                ),
                None => ChatChunk::Chunk(chunk),
            },
        }
    }
}
