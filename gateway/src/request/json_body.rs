//! The one pass over a request body: strict JSON validation, the fields routing needs, and
//! every string the backend will see, for the detector.
//!
//! Strict means a body the gateway and a backend could read differently is refused: duplicate
//! keys (which value wins depends on the parser), invalid UTF-8 and lone surrogate escapes
//! (which parsers replace, drop or reject differently). Everything else is walked once, with no
//! list of fields: whatever a future endpoint adds is scanned too. The collected text is never
//! longer than the body (escapes only shrink, each string adds one separator in place of at
//! least two quote bytes, floats are skipped), so it is bounded by the body limit.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::http::error::ApiError;
pub use crate::request::body_text::BodyText;

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
    /// What was collected for classification.
    pub text: BodyText,
    /// What the client said about usage in a stream (`stream_options.include_usage`).
    pub stream_usage: StreamUsage,
    /// `max_completion_tokens`, else `max_tokens`, else `max_output_tokens`: the most the
    /// answer may hold, when the client capped it.
    pub max_tokens: Option<u64>,
    /// Bytes of the body's string values: the prompt's size, for estimates.
    pub string_bytes: u64,
}

/// Whether a streaming client asked for the usage chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamUsage {
    /// No `stream_options`: the gateway may add `include_usage` and take the chunk out again.
    Unset,
    /// `include_usage: true`.
    Asked,
    /// `stream_options` without `include_usage: true`: left as it is (usage is estimated
    /// when the backend sends none).
    NotAsked,
}

/// Parses a JSON object body strictly. With `scan_limit`, collects the text of bodies up to
/// that many bytes (larger ones come back as [`BodyText::OverScanLimit`]).
pub fn parse_json_body(bytes: Bytes, scan_limit: Option<usize>) -> Result<JsonBody, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
            None,
        ));
    }
    let collect = scan_limit.is_some_and(|limit| bytes.len() <= limit);
    let mut text = collect.then(|| String::with_capacity(bytes.len().min(64 << 10)));
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let mut string_bytes = 0;
    let root = Root {
        walk: Walk {
            text: text.as_mut(),
            bytes: &mut string_bytes,
        },
    };
    let fields = de
        .deserialize_map(root)
        .and_then(|fields| de.end().map(|()| fields))
        .map_err(|e| {
            ApiError::bad_request(format!("the request body is not accepted: {e}"), None)
        })?;
    let stream = fields.stream.unwrap_or(false);
    let stream_usage = match fields.stream_options {
        None => StreamUsage::Unset,
        Some(true) => StreamUsage::Asked,
        Some(false) => StreamUsage::NotAsked,
    };
    let max_tokens = fields
        .max_tokens
        .into_iter()
        .max_by_key(|&(rank, _)| rank)
        .map(|(_, n)| n);
    let (model, model_span) = match fields.model {
        None => (String::new(), None),
        Some(raw) => {
            let raw_text = raw.get();
            let model: String = serde_json::from_str(raw_text)
                .map_err(|_| ApiError::bad_request("'model' must be a string", Some("model")))?;
            let start = raw_text.as_ptr() as usize - bytes.as_ptr() as usize;
            if let Some(t) = text.as_mut() {
                push(t, &model);
            }
            (model, Some(start..start + raw_text.len()))
        }
    };
    let text = match (text, scan_limit) {
        (Some(t), _) => BodyText::Complete(t),
        (None, Some(_)) => BodyText::OverScanLimit,
        (None, None) => BodyText::NotCollected,
    };
    Ok(JsonBody {
        bytes,
        model,
        model_span,
        stream,
        text,
        stream_usage,
        max_tokens,
        string_bytes,
    })
}

impl JsonBody {
    /// The body with `model` set to `model_json` (a JSON string literal).
    pub fn with_model(&self, model_json: &[u8]) -> Bytes {
        let b = &self.bytes;
        match &self.model_span {
            Some(span) => {
                let mut out = BytesMut::with_capacity(b.len() + model_json.len());
                out.extend_from_slice(&b[..span.start]);
                out.extend_from_slice(model_json);
                out.extend_from_slice(&b[span.end..]);
                out.freeze()
            }
            None => insert_first(b, b"\"model\":", model_json),
        }
    }
}

/// The JSON object `body` with `"key":value` (given as `key_colon` and `value`) inserted
/// right after its opening brace; every other byte stays as it was.
pub fn insert_first(body: &[u8], key_colon: &[u8], value: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(body.len() + key_colon.len() + value.len() + 1);
    let open = body.iter().position(|&c| c == b'{').unwrap_or(0);
    let empty = body[open + 1..]
        .iter()
        .find(|c| !c.is_ascii_whitespace())
        .is_some_and(|&c| c == b'}');
    out.extend_from_slice(&body[..=open]);
    out.extend_from_slice(key_colon);
    out.extend_from_slice(value);
    if !empty {
        out.extend_from_slice(b",");
    }
    out.extend_from_slice(&body[open + 1..]);
    out.freeze()
}

fn push(text: &mut String, s: &str) {
    if s.is_empty() {
        return;
    }
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(s);
}

/// The fields of the top-level object that routing and accounting read.
struct Fields<'de> {
    model: Option<&'de RawValue>,
    stream: Option<bool>,
    /// `Some(include_usage == true)` when `stream_options` is an object.
    stream_options: Option<bool>,
    /// The answer caps the body gives, each with its precedence.
    max_tokens: Vec<(u8, u64)>,
}

struct Root<'t> {
    walk: Walk<'t>,
}

impl<'de> Visitor<'de> for Root<'_> {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Fields<'de>, A::Error> {
        let mut fields = Fields {
            model: None,
            stream: None,
            stream_options: None,
            max_tokens: Vec::new(),
        };
        let mut keys = Keys::default();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            self.walk.push(&key);
            let cap_rank = match &*key {
                "max_completion_tokens" => Some(2),
                "max_tokens" => Some(1),
                "max_output_tokens" => Some(0),
                _ => None,
            };
            match (&*key, cap_rank) {
                // The model string is pushed to the text once it is decoded.
                ("model", _) => fields.model = Some(map.next_value()?),
                ("stream", _) => fields.stream = map.next_value()?,
                ("stream_options", _) | (_, Some(_)) => {
                    // Read, then walked like any other value (the detector sees it too).
                    let raw: &RawValue = map.next_value()?;
                    self.walk
                        .reborrow()
                        .walk_raw(raw)
                        .map_err(de::Error::custom)?;
                    match cap_rank {
                        Some(rank) => {
                            if let Ok(n) = serde_json::from_str::<u64>(raw.get()) {
                                fields.max_tokens.push((rank, n));
                            }
                        }
                        None => fields.stream_options = include_usage(raw),
                    }
                }
                _ => map.next_value_seed(self.walk.reborrow())?,
            }
            keys.insert(key)?;
        }
        Ok(fields)
    }
}

/// `Some(true)` when `stream_options` is an object with `include_usage: true`.
fn include_usage(raw: &RawValue) -> Option<bool> {
    #[derive(serde::Deserialize)]
    struct Options {
        #[serde(default)]
        include_usage: Option<bool>,
    }
    let options: Options = serde_json::from_str(raw.get()).ok()?;
    Some(options.include_usage == Some(true))
}

/// Visits any JSON value, appending its text when collecting and counting the bytes of its
/// string values.
struct Walk<'t> {
    text: Option<&'t mut String>,
    bytes: &'t mut u64,
}

impl Walk<'_> {
    fn reborrow(&mut self) -> Walk<'_> {
        Walk {
            text: self.text.as_deref_mut(),
            bytes: self.bytes,
        }
    }

    fn walk_raw(self, raw: &RawValue) -> Result<(), serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(raw.get());
        self.deserialize(&mut de)
    }

    fn push(&mut self, s: &str) {
        if let Some(t) = self.text.as_deref_mut() {
            push(t, s);
        }
    }

    fn push_int(&mut self, v: impl fmt::Display) {
        if let Some(t) = self.text.as_deref_mut() {
            use std::fmt::Write;
            if !t.is_empty() {
                t.push('\n');
            }
            let _ = write!(t, "{v}");
        }
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(mut self, v: i64) -> Result<(), E> {
        self.push_int(v);
        Ok(())
    }

    fn visit_u64<E>(mut self, v: u64) -> Result<(), E> {
        self.push_int(v);
        Ok(())
    }

    /// Floats are not collected: their decimal form can be far longer than their JSON text
    /// (`1e300`), and no identifier the detector looks for is written as a float.
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(mut self, v: &str) -> Result<(), E> {
        *self.bytes += v.len() as u64;
        self.push(v);
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self.reborrow())?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let mut keys = Keys::default();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            self.push(&key);
            map.next_value_seed(self.reborrow())?;
            keys.insert(key)?;
        }
        Ok(())
    }
}

/// An object key, borrowed from the body when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

/// The keys of one object seen so far: a short list, a set once the object is large (so a
/// hostile object with many keys costs linear time, not quadratic).
#[derive(Default)]
struct Keys<'de> {
    few: Vec<Cow<'de, str>>,
    many: Option<HashSet<Cow<'de, str>>>,
}

/// The prefix of the keys serde_json gives a meaning of its own (see [`Keys::insert`]).
const SERDE_JSON_PRIVATE: &str = "$serde_json::private::";

/// Objects with more keys than this are checked with a hash set.
const FEW_KEYS: usize = 16;

impl<'de> Keys<'de> {
    /// Records `key`; a key seen before is an error. The key is not echoed: it may itself be
    /// sensitive.
    fn insert<E: de::Error>(&mut self, key: Cow<'de, str>) -> Result<(), E> {
        // serde_json reads an object keyed `$serde_json::private::RawValue` (or `::Number`)
        // as the JSON text of its string value, decoding it a second time: code that reads
        // the body into a `serde_json::Value` (the dialect translations) would see what the
        // detector did not. No API uses such keys.
        if key.starts_with(SERDE_JSON_PRIVATE) {
            return Err(E::custom(
                "an object key starting with $serde_json::private:: is reserved",
            ));
        }
        let fresh = match &mut self.many {
            Some(set) => set.insert(key),
            None if self.few.len() < FEW_KEYS => {
                let fresh = !self.few.contains(&key);
                self.few.push(key);
                fresh
            }
            None => {
                let mut set: HashSet<_> = self.few.drain(..).collect();
                let fresh = set.insert(key);
                self.many = Some(set);
                fresh
            }
        };
        if fresh {
            Ok(())
        } else {
            Err(E::custom(
                "duplicate key in an object (the gateway and the backend could read different values)",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(text: &str) -> JsonBody {
        parse_json_body(Bytes::from(text.to_owned()), Some(1 << 20)).unwrap()
    }

    fn text(json: &str) -> String {
        match body(json).text {
            BodyText::Complete(t) => t,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn extracts_model_and_stream() {
        let b = body(r#"{"messages":[],"model":"gpt-4o","stream":true}"#);
        assert_eq!(b.model, "gpt-4o");
        assert!(b.stream);
        let escaped = body(r#"{"model":"a\"b\u00e9"}"#);
        assert_eq!(escaped.model, "a\"bé");
        assert!(!body(r#"{"stream":null}"#).stream);
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
    fn refuses_non_objects_bad_fields_and_ambiguity() {
        for bad in [
            "[]",
            "\"x\"",
            "",
            "{",
            r#"{"model":1}"#,
            r#"{"model":null}"#,
            r#"{"stream":"yes"}"#,
            "{} x",
            r#"{"a":1,"a":2}"#,
            r#"{"x":{"a":1,"b":{},"a":2}}"#,
            r#"{"model":"m","model":"m"}"#,
            r#"{"a\u0062":1,"ab":2}"#,
            r#"{"x":"\ud800"}"#,
            r#"{"x":"\udc00\ud800"}"#,
            r#"{"\ud83d":1}"#,
            r#"{"model":"\ud800"}"#,
            // serde_json's private keys (fuzz finding: read again as JSON by a `Value`).
            r#"{"$serde_json::private::RawValue":"m","messages":[]}"#,
            r#"{"x":{"$serde_json::private::Number":"1"}}"#,
            r#"{"x":[{"$serde_json::private::RawValue":"\"0\\u0037\""}]}"#,
        ] {
            assert!(parse_json_body(Bytes::from(bad), None).is_err(), "{bad:?}");
        }
        for raw in [
            &b"{\"x\":\"\xff\"}"[..],
            b"{\"\xc3\":1}",
            b"{\"model\":\"\xe2\x82\"}",
        ] {
            assert!(parse_json_body(Bytes::copy_from_slice(raw), None).is_err());
        }
        let many_keys: String = (0..100).map(|i| format!("\"k{i}\":1,")).collect();
        let dup = format!("{{{many_keys}\"k7\":2}}");
        assert!(
            parse_json_body(Bytes::from(dup), None).is_err(),
            "found in a large object"
        );
        let ok = format!("{{{many_keys}\"z\":2}}");
        assert!(parse_json_body(Bytes::from(ok), None).is_ok());
    }

    #[test]
    fn text_holds_every_key_string_and_integer() {
        let t = text(
            r#"{"model":"m","messages":[{"role":"user","name":"jo","content":[{"type":"text","text":"a\u0041"}]},null],
                "n":42,"f":1e300,"neg":-7,"ok":true,"deep":[[{"x":"y"}]]}"#,
        );
        let parts: Vec<&str> = t.split('\n').collect();
        for want in [
            "m", "role", "user", "name", "jo", "type", "text", "aA", "42", "-7", "x", "y", "deep",
        ] {
            assert!(parts.contains(&want), "{want:?} missing from {parts:?}");
        }
        assert!(!t.contains("1e300") && !t.contains("true"));
        assert!(t.len() <= r#"{"model":"m"}"#.len() * 100);
    }

    #[test]
    fn text_is_never_longer_than_the_body() {
        for json in [
            r#"{"a":"","b":[1,2,3,4,5,6,7,8,9],"c":"\u0041\u0042"}"#,
            r#"{"":"","x":[-1,-2,-3]}"#,
            r#"{"k":[0,0,0,0,0,0,0,0,0,0,0,0,0]}"#,
        ] {
            assert!(text(json).len() <= json.len(), "{json}");
        }
    }

    #[test]
    fn the_scan_limit_is_on_body_bytes() {
        let json = r#"{"model":"m","messages":[{"content":"hello"}]}"#;
        let under = parse_json_body(Bytes::from(json), Some(json.len())).unwrap();
        assert!(matches!(under.text, BodyText::Complete(_)));
        let over = parse_json_body(Bytes::from(json), Some(json.len() - 1)).unwrap();
        assert_eq!(over.text, BodyText::OverScanLimit);
        assert_eq!(over.model, "m", "routing fields are read regardless");
        let none = parse_json_body(Bytes::from(json), None).unwrap();
        assert_eq!(none.text, BodyText::NotCollected);
        assert!(
            parse_json_body(Bytes::from(r#"{"a":1,"a":1}"#), Some(0)).is_err(),
            "a body over the limit is still validated"
        );
    }
}
