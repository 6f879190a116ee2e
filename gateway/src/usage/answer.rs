//! What one JSON answer or stream chunk says about usage: its `usage` object, how many bytes
//! of generated text it carries (for an estimate when there is no `usage`), and whether it is
//! the usage-only chunk `stream_options.include_usage` adds (empty `choices`). Unknown fields
//! and unexpected shapes are skipped, never an error: a backend's extensions must not break
//! accounting.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::Usage;

/// What was read from one JSON document.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The reported usage, when the document has a `usage` object.
    pub usage: Option<Usage>,
    /// Bytes of generated text (content, reasoning, tool arguments).
    pub text_bytes: u64,
    /// `choices` is present and empty and `usage` is set: the chunk `include_usage` adds.
    pub usage_only: bool,
    /// `usage` names no prompt count (Anthropic's `message_delta`, which reports output
    /// tokens after `message_start` reported the input): the prompt known so far stands.
    pub prompt_absent: bool,
}

/// Reads `json`; `None` when it is not a JSON object.
pub fn parse(json: &[u8]) -> Option<Parsed> {
    let doc: Doc = serde_json::from_slice(json).ok()?;
    // Anthropic's `message_start` carries it in the message.
    let wire = doc.usage.or(doc.message.and_then(|m| m.usage));
    let prompt_absent = wire
        .as_ref()
        .is_some_and(|u| u.prompt_tokens.is_none() && u.input_tokens.is_none());
    let usage = wire.map(|u| {
        // Anthropic counts cache reads and writes apart from `input_tokens`.
        let anthropic = u.input_tokens.map(|n| {
            n.saturating_add(u.cache_creation_input_tokens.unwrap_or(0))
                .saturating_add(u.cache_read_input_tokens.unwrap_or(0))
        });
        let prompt = u.prompt_tokens.or(anthropic).unwrap_or(0);
        let completion = u.completion_tokens.or(u.output_tokens).unwrap_or_else(|| {
            // Embeddings report only a prompt and a total.
            u.total_tokens.unwrap_or(prompt).saturating_sub(prompt)
        });
        Usage { prompt, completion }
    });
    let choices = doc.choices.as_ref();
    Some(Parsed {
        usage_only: usage.is_some() && choices.is_some_and(Vec::is_empty),
        prompt_absent,
        usage,
        text_bytes: choices.map_or(0, |c| c.iter().map(|c| c.0).sum()),
    })
}

#[derive(Deserialize)]
struct Doc {
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    choices: Option<Vec<Choice>>,
    #[serde(default)]
    message: Option<Message>,
}

/// Anthropic's `message_start` event's message.
#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    usage: Option<WireUsage>,
}

/// OpenAI's names, and the `input`/`output` names some OpenAI-compatible servers use.
#[derive(Deserialize)]
struct WireUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    total_tokens: Option<u64>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
}

/// One choice, reduced to the bytes of text in it: every string under `delta`, `message` or
/// `text` except the role and finish fields.
struct Choice(u64);

impl<'de> Deserialize<'de> for Choice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextBytes { top: true }).map(Choice)
    }
}

/// Sums the lengths of the text strings of a value. At the top of a choice only `delta`,
/// `message` and `text` count; below them every string value but `role`, `type`, `id` and
/// names of finish reasons.
struct TextBytes {
    top: bool,
}

impl<'de> Visitor<'de> for TextBytes {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E>(self, v: &str) -> Result<u64, E> {
        Ok(if self.top { 0 } else { v.len() as u64 })
    }

    fn visit_bool<E>(self, _: bool) -> Result<u64, E> {
        Ok(0)
    }

    fn visit_i64<E>(self, _: i64) -> Result<u64, E> {
        Ok(0)
    }

    fn visit_u64<E>(self, _: u64) -> Result<u64, E> {
        Ok(0)
    }

    fn visit_f64<E>(self, _: f64) -> Result<u64, E> {
        Ok(0)
    }

    fn visit_unit<E>(self) -> Result<u64, E> {
        Ok(0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        let mut n = 0u64;
        while let Some(m) = seq.next_element_seed(Seed { top: false })? {
            n = n.saturating_add(m);
        }
        Ok(n)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u64, A::Error> {
        let mut n = 0u64;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let counted = if self.top {
                matches!(&*key, "delta" | "message" | "text")
            } else {
                !matches!(&*key, "role" | "type" | "id" | "finish_reason" | "name")
            };
            if counted {
                let m = map.next_value_seed(Seed { top: false })?;
                n = n.saturating_add(m);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(n)
    }
}

struct Seed {
    top: bool,
}

impl<'de> serde::de::DeserializeSeed<'de> for Seed {
    type Value = u64;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_any(TextBytes { top: self.top })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_usage_text_and_the_usage_only_chunk() {
        let answer = br#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}"#;
        assert_eq!(
            parse(answer),
            Some(Parsed {
                usage: Some(Usage {
                    prompt: 9,
                    completion: 3
                }),
                text_bytes: 11,
                usage_only: false,
                prompt_absent: false
            })
        );
        let delta = br#"{"choices":[{"delta":{"content":"Hi","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]}}],"usage":null}"#;
        let p = parse(delta).unwrap();
        assert_eq!((p.usage, p.text_bytes, p.usage_only), (None, 2 + 7, false));
        let last = br#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}"#;
        assert!(parse(last).unwrap().usage_only);
        let embeddings = br#"{"data":[],"usage":{"prompt_tokens":4,"total_tokens":4}}"#;
        assert_eq!(
            parse(embeddings).unwrap().usage,
            Some(Usage {
                prompt: 4,
                completion: 0
            })
        );
        assert_eq!(parse(b"[DONE]"), None);
        assert_eq!(
            parse(br#"{"choices":[{"delta":{"content":["odd"]}}]}"#)
                .unwrap()
                .text_bytes,
            3
        );
    }
}
