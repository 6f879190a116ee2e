//! What one JSON answer or stream chunk says about usage: its `usage` object, how many bytes
//! of generated text it carries (for an estimate when there is no `usage`), and whether it is
//! the usage-only chunk `stream_options.include_usage` adds (empty `choices`), and for traces
//! the model that answered and why it stopped. Unknown fields
//! and unexpected shapes are skipped, never an error: a backend's extensions must not break
//! accounting.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::Usage;

/// What was read from one JSON document.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// The reported usage, when the document has a `usage` object.
    pub usage: Option<Usage>,
    /// Bytes of generated text (content, reasoning, tool arguments).
    pub text_bytes: u64,
    /// `choices` is present and empty and `usage` is set: the chunk `include_usage` adds.
    pub usage_only: bool,
    /// `usage` names no prompt count (Anthropic's `message_delta`, which reports output
    /// tokens after `message_start` reported the input): the prompt known so far stands.
    pub prompt_absent: bool,
    /// The model that answered (`model`, or Anthropic's `message.model`).
    pub model: Option<Cow<'a, str>>,
    /// Why generation stopped: each choice's `finish_reason`, or Anthropic's `stop_reason`.
    pub finish_reasons: Vec<String>,
}

/// Reads `json`; `None` when it is not a JSON object.
pub fn parse(json: &[u8]) -> Option<Parsed<'_>> {
    let doc: Doc = serde_json::from_slice(json).ok()?;
    let mut finish_reasons: Vec<String> = (doc.choices.iter().flatten())
        .filter_map(|c| c.finish.clone())
        .collect();
    finish_reasons.extend((doc.stop_reason.0.map(Cow::into_owned)).or(doc.delta.0));
    let (model, message) = match doc.message {
        Some(m) => (doc.model.0.or(m.model.0), Some(m.usage)),
        None => (doc.model.0, None),
    };
    // Anthropic's `message_start` carries it in the message.
    let wire = doc.usage.or(message.flatten());
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
        text_bytes: choices.map_or(0, |c| c.iter().map(|c| c.text).sum()),
        model,
        finish_reasons,
    })
}

#[derive(Deserialize)]
struct Doc<'a> {
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    choices: Option<Vec<Choice>>,
    #[serde(default, borrow)]
    message: Option<Message<'a>>,
    #[serde(default, borrow)]
    model: Text<'a>,
    /// Anthropic's non-streamed message.
    #[serde(default, borrow)]
    stop_reason: Text<'a>,
    /// Anthropic's `message_delta` event.
    #[serde(default)]
    delta: Delta,
}

/// Anthropic's `message_start` event's message.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default, borrow)]
    model: Text<'a>,
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

/// The `visit_*` methods of a lenient visitor for the scalars that carry nothing it reads:
/// each gives `$none` instead of an error.
macro_rules! scalars_are {
    ($value:ty, $none:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<$value, E> {
            Ok($none)
        }

        fn visit_i64<E>(self, _: i64) -> Result<$value, E> {
            Ok($none)
        }

        fn visit_u64<E>(self, _: u64) -> Result<$value, E> {
            Ok($none)
        }

        fn visit_f64<E>(self, _: f64) -> Result<$value, E> {
            Ok($none)
        }

        fn visit_unit<E>(self) -> Result<$value, E> {
            Ok($none)
        }
    };
}

/// One choice, reduced to the bytes of text in it (every string under `delta`, `message` or
/// `text` except the role and finish fields) and its `finish_reason`.
struct Choice {
    text: u64,
    finish: Option<String>,
}

impl<'de> Deserialize<'de> for Choice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ChoiceVisitor)
    }
}

/// A choice's top level: text under `delta`, `message` and `text`, and `finish_reason`;
/// anything that is not an object counts as no text.
struct ChoiceVisitor;

impl<'de> Visitor<'de> for ChoiceVisitor {
    type Value = Choice;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Choice, A::Error> {
        let (mut text, mut finish) = (0u64, None);
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match &*key {
                "delta" | "message" | "text" => {
                    text = text.saturating_add(map.next_value_seed(Seed { top: false })?);
                }
                "finish_reason" => {
                    finish = map.next_value::<Text<'de>>()?.0.map(Cow::into_owned);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Choice { text, finish })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Choice, A::Error> {
        let text = TextBytes { top: true }.visit_seq(seq)?;
        Ok(Choice { text, finish: None })
    }

    fn visit_str<E>(self, _: &str) -> Result<Choice, E> {
        Ok(Choice::NONE)
    }

    scalars_are!(Choice, Choice::NONE);
}

impl Choice {
    const NONE: Choice = Choice {
        text: 0,
        finish: None,
    };
}

/// A string field read leniently: any other value (or a string longer than [`MAX_TEXT`]) is
/// none, so that a backend's odd field never costs the usage of its answer. Borrowed when the
/// JSON has no escapes in it.
#[derive(Debug, Default)]
struct Text<'a>(Option<Cow<'a, str>>);

/// Longest model name or finish reason kept, in bytes.
const MAX_TEXT: usize = 256;

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextVisitor(std::marker::PhantomData))
    }
}

struct TextVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
    type Value = Text<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'a>, E> {
        Ok(Text((v.len() <= MAX_TEXT).then_some(Cow::Borrowed(v))))
    }

    fn visit_str<E>(self, v: &str) -> Result<Text<'a>, E> {
        Ok(Text(
            (v.len() <= MAX_TEXT).then(|| Cow::Owned(v.to_owned())),
        ))
    }

    scalars_are!(Text<'a>, Text(None));

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Text<'a>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Text(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Text<'a>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Text(None))
    }
}

/// Anthropic's `message_delta` event's delta: its `stop_reason`; any other value is none.
#[derive(Default)]
struct Delta(Option<String>);

impl<'de> Deserialize<'de> for Delta {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Delta;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Delta, A::Error> {
                let mut reason = None;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "stop_reason" {
                        reason = map.next_value::<Text<'de>>()?.0.map(Cow::into_owned);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Delta(reason))
            }

            // Anything but an object has no stop reason (the Responses API's text deltas are
            // strings).
            fn visit_str<E>(self, _: &str) -> Result<Delta, E> {
                Ok(Delta(None))
            }

            scalars_are!(Delta, Delta(None));

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Delta, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Delta(None))
            }
        }
        d.deserialize_any(V)
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

    scalars_are!(u64, 0);

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        let mut n = 0u64;
        while let Some(m) = seq.next_element_seed(Seed { top: false })? {
            n = n.saturating_add(m);
        }
        Ok(n)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u64, A::Error> {
        let mut n = 0u64;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
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
                prompt_absent: false,
                model: None,
                finish_reasons: vec!["stop".into()],
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

    #[test]
    fn reads_the_answering_model_and_finish_reasons_leniently() {
        let chunk = br#"{"model":"llama-3","choices":[{"delta":{},"finish_reason":"length"}]}"#;
        let p = parse(chunk).unwrap();
        assert_eq!(p.model.as_deref(), Some("llama-3"));
        assert!(
            matches!(p.model, Some(Cow::Borrowed(_))),
            "no copy per chunk"
        );
        assert_eq!(p.finish_reasons, ["length"]);
        let start = br#"{"type":"message_start","message":{"model":"claude-x","usage":{"input_tokens":3}}}"#;
        assert_eq!(parse(start).unwrap().model.as_deref(), Some("claude-x"));
        let delta = br#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":5}}"#;
        assert_eq!(parse(delta).unwrap().finish_reasons, ["end_turn"]);
        // Odd shapes cost the trace attribute, never the usage.
        let odd = br#"{"model":7,"stop_reason":{"x":1},"delta":"text","choices":[{"finish_reason":[1]},"x"],"usage":{"prompt_tokens":2,"completion_tokens":1}}"#;
        let p = parse(odd).unwrap();
        assert_eq!((p.model, p.finish_reasons.len()), (None, 0));
        assert_eq!(p.usage.map(|u| u.prompt), Some(2));
        let long = format!(
            r#"{{"model":"{}","usage":{{"prompt_tokens":1}}}}"#,
            "m".repeat(MAX_TEXT + 1)
        );
        let p = parse(long.as_bytes()).unwrap();
        assert_eq!((p.model, p.usage.is_some()), (None, true));
    }
}
