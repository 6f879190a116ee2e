//! Reading and understanding a client request: the bounded body, the JSON fields routing
//! needs, and the routing facts from headers.
//!
//! The body is parsed once, borrowing: only `model` and `stream` are extracted, and the byte
//! span of `model` is remembered so an external backend's `model` can be spliced in without
//! re-serialising the whole body.

use std::borrow::Cow;
use std::ops::Range;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::ApiError;

/// Longest time a client may take to send its body.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Most classification values one request may carry.
const MAX_CLASSIFICATIONS: usize = 16;
/// Longest classification value.
const MAX_CLASSIFICATION_LEN: usize = 64;

/// A request body that is a JSON object, with what routing needs from it.
#[derive(Debug)]
pub struct JsonBody {
    /// The body as received.
    pub bytes: Bytes,
    /// `model` (empty when absent).
    pub model: String,
    /// Byte range of the `model` value (including quotes) in `bytes`.
    pub model_span: Option<Range<usize>>,
    /// `stream: true`.
    pub stream: bool,
}

#[derive(Deserialize)]
struct Peek<'a> {
    #[serde(borrow, default)]
    model: Option<&'a RawValue>,
    #[serde(default)]
    stream: Option<bool>,
}

/// Reads the whole body, refusing more than `limit` bytes (413) or a client slower than a minute (408).
pub async fn read_body(body: Incoming, headers: &HeaderMap, limit: u64) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::too_large(limit));
    }
    let limited = Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    match tokio::time::timeout(BODY_READ_TIMEOUT, limited.collect()).await {
        Err(_) => Err(ApiError::body_timeout()),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::too_large(limit)),
        Ok(Err(e)) => Err(ApiError::bad_request(
            format!("could not read the request body: {e}"),
            None,
        )),
    }
}

/// Parses the JSON object body and extracts `model` and `stream`.
pub fn parse_json_body(bytes: Bytes) -> Result<JsonBody, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
            None,
        ));
    }
    let peek: Peek<'_> = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(format!("the request body is not valid JSON: {e}"), None)
    })?;
    let stream = peek.stream.unwrap_or(false);
    let (model, model_span) = match peek.model {
        None => (String::new(), None),
        Some(raw) => {
            let text = raw.get();
            let model: Cow<'_, str> = serde_json::from_str(text)
                .map_err(|_| ApiError::bad_request("'model' must be a string", Some("model")))?;
            let start = text.as_ptr() as usize - bytes.as_ptr() as usize;
            (model.into_owned(), Some(start..start + text.len()))
        }
    };
    Ok(JsonBody {
        bytes,
        model,
        model_span,
        stream,
    })
}

impl JsonBody {
    /// The body with `model` set to `model_json` (a JSON string literal).
    pub fn with_model(&self, model_json: &[u8]) -> Bytes {
        let b = &self.bytes;
        let mut out = BytesMut::with_capacity(b.len() + model_json.len() + 10);
        match &self.model_span {
            Some(span) => {
                out.extend_from_slice(&b[..span.start]);
                out.extend_from_slice(model_json);
                out.extend_from_slice(&b[span.end..]);
            }
            None => {
                // Insert `"model":<value>` right after the opening brace.
                let open = b.iter().position(|&c| c == b'{').unwrap_or(0);
                let empty = b[open + 1..]
                    .iter()
                    .find(|c| !c.is_ascii_whitespace())
                    .is_some_and(|&c| c == b'}');
                out.extend_from_slice(&b[..=open]);
                out.extend_from_slice(b"\"model\":");
                out.extend_from_slice(model_json);
                if !empty {
                    out.extend_from_slice(b",");
                }
                out.extend_from_slice(&b[open + 1..]);
            }
        }
        out.freeze()
    }
}

/// Most prompt text handed to a policy (longer prompts are cut at a character boundary).
pub const PROMPT_CAP: usize = 64 << 10;

#[derive(Deserialize)]
struct PromptPeek<'a> {
    #[serde(borrow, default)]
    messages: Option<Vec<Message<'a>>>,
    #[serde(borrow, default)]
    prompt: Option<Text<'a>>,
    #[serde(borrow, default)]
    input: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    content: Option<Text<'a>>,
}

/// A string, a list of strings, or a list of content parts with `text`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Text<'a> {
    One(#[serde(borrow)] Cow<'a, str>),
    Many(#[serde(borrow)] Vec<Part<'a>>),
    Other(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Part<'a> {
    Plain(#[serde(borrow)] Cow<'a, str>),
    Typed {
        #[serde(borrow, default)]
        text: Option<Cow<'a, str>>,
    },
    Other(serde::de::IgnoredAny),
}

/// The text a user sent: chat message contents, completion `prompt` or embedding `input`,
/// joined by newlines and capped at `cap` bytes. Anything else in the body is ignored.
pub fn prompt_text(body: &[u8], cap: usize) -> String {
    let Ok(peek) = serde_json::from_slice::<PromptPeek<'_>>(body) else {
        return String::new();
    };
    let mut out = String::new();
    let mut push = |text: &str| {
        if out.len() >= cap {
            return;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        let room = cap.saturating_sub(out.len());
        let mut end = text.len().min(room);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        out.push_str(&text[..end]);
    };
    let mut push_text = |t: &Text<'_>| match t {
        Text::One(s) => push(s),
        Text::Many(parts) => {
            for part in parts {
                match part {
                    Part::Plain(s) => push(s),
                    Part::Typed { text: Some(s) } => push(s),
                    _ => {}
                }
            }
        }
        Text::Other(_) => {}
    };
    for message in peek.messages.iter().flatten() {
        if let Some(content) = &message.content {
            push_text(content);
        }
    }
    for t in peek.prompt.iter().chain(&peek.input) {
        push_text(t);
    }
    out
}

/// The request's classifications from every occurrence of `header`: comma-separated,
/// trimmed, lowercased, de-duplicated. Too many or too long values are refused (400) rather
/// than partly ignored, so no value can be hidden behind a limit.
pub fn classifications(headers: &HeaderMap, header: &str) -> Result<Vec<String>, ApiError> {
    let mut out: Vec<String> = Vec::new();
    for value in headers.get_all(header) {
        let text = value.to_str().map_err(|_| {
            ApiError::bad_request(format!("header {header} must be visible ASCII"), None)
        })?;
        for item in text.split(',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            if item.len() > MAX_CLASSIFICATION_LEN || out.len() >= MAX_CLASSIFICATIONS {
                return Err(ApiError::bad_request(
                    format!(
                        "header {header} may carry at most {MAX_CLASSIFICATIONS} values of at most {MAX_CLASSIFICATION_LEN} bytes"
                    ),
                    None,
                ));
            }
            let item = item.to_ascii_lowercase();
            if !out.contains(&item) {
                out.push(item);
            }
        }
    }
    Ok(out)
}

/// `(name, value)` of every occurrence of each header in `names` (lowercase) with a text value.
pub fn match_headers<'a>(headers: &'a HeaderMap, names: &'a [String]) -> Vec<(&'a str, &'a str)> {
    let mut out = Vec::new();
    for name in names {
        for value in headers.get_all(name.as_str()) {
            if let Ok(text) = value.to_str() {
                out.push((name.as_str(), text));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(text: &str) -> JsonBody {
        parse_json_body(Bytes::from(text.to_owned())).unwrap()
    }

    #[test]
    fn extracts_model_and_stream() {
        let b = body(r#"{"messages":[],"model":"gpt-4o","stream":true}"#);
        assert_eq!(b.model, "gpt-4o");
        assert!(b.stream);
        let escaped = body(r#"{"model":"a\"b\u00e9"}"#);
        assert_eq!(escaped.model, "a\"bé");
    }

    #[test]
    fn rewrites_model_in_place_or_inserts_it() {
        let b = body(r#"{"model":"llama","messages":[{"role":"user","content":"hi"}]}"#);
        let out = b.with_model(br#""gpt-4o-mini""#);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["model"], "gpt-4o-mini");
        assert_eq!(v["messages"][0]["content"], "hi");
        for text in [r#"{"messages":[]}"#, "{}", " { } "] {
            let out = body(text).with_model(br#""m""#);
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(v["model"], "m", "{text}");
        }
    }

    #[test]
    fn refuses_non_objects_and_bad_fields() {
        for bad in [
            "[]",
            "\"x\"",
            "",
            "{",
            r#"{"model":1}"#,
            r#"{"stream":"yes"}"#,
            "{} x",
        ] {
            assert!(parse_json_body(Bytes::from(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn prompt_text_covers_chat_completions_and_embeddings() {
        let chat = br#"{"model":"m","messages":[{"role":"system","content":"be nice"},
            {"role":"user","content":[{"type":"text","text":"my mail is a@b.co"},{"type":"image_url","image_url":{"url":"x"}}]}]}"#;
        assert_eq!(prompt_text(chat, 1000), "be nice\nmy mail is a@b.co");
        assert_eq!(
            prompt_text(br#"{"prompt":["one","two"]}"#, 1000),
            "one\ntwo"
        );
        assert_eq!(prompt_text(br#"{"input":"embed \u00e9"}"#, 1000), "embed é");
        assert_eq!(
            prompt_text(br#"{"messages":[{"content":"\u00e9\u00e9"}]}"#, 3),
            "é",
            "cut at a char boundary"
        );
        assert_eq!(prompt_text(b"{}", 10), "");
    }

    #[test]
    fn classifications_are_normalised_and_bounded() {
        let mut h = HeaderMap::new();
        h.append("x-c", "PII, internal".parse().unwrap());
        h.append("x-c", "pii,,phi".parse().unwrap());
        assert_eq!(
            classifications(&h, "x-c").unwrap(),
            ["pii", "internal", "phi"]
        );
        let mut many = HeaderMap::new();
        many.insert(
            "x-c",
            vec!["a"; 40].join(",").replace('a', "v").parse().unwrap(),
        );
        assert!(classifications(&many, "x-c").is_ok(), "duplicates collapse");
        let distinct: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
        many.insert("x-c", distinct.join(",").parse().unwrap());
        assert!(classifications(&many, "x-c").is_err());
    }
}
