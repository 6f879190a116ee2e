//! Request body to classification: whatever the bytes, a body the gateway accepts hands the
//! detector every string a backend would read from it, and a marker SSN anywhere in those
//! strings (at a word boundary) makes the detector report personal data (as an SSN, or as the
//! phone number a longer run reads as). Bodies the gateway refuses are never forwarded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmkube_gateway::{BodyText, parse_json_body};
use llmkube_pii_detector::scan::{Kind, Kinds, scan};

const MARKER: &str = "078-05-1120";

fuzz_target!(|data: &[u8]| {
    let Ok(body) = parse_json_body(bytes::Bytes::copy_from_slice(data), Some(usize::MAX)) else {
        return;
    };
    let BodyText::Complete(text) = &body.text else {
        panic!("no scan limit, yet the text was not collected");
    };
    assert!(text.len() <= data.len(), "the text is bounded by the body");
    // What a backend reads: serde_json's own view of the accepted body.
    let value: serde_json::Value =
        serde_json::from_slice(data).expect("an accepted body is JSON to any reader");
    let mut strings = Vec::new();
    collect(&value, &mut strings);
    for s in &strings {
        assert!(text.contains(s.as_str()), "{s:?} is missing from the text");
    }
    let marked = strings.iter().any(|s| at_word_boundary(s, MARKER));
    if marked {
        let found = scan(text, Kinds::all(), &[]);
        assert!(
            found.contains(Kind::Ssn) || found.contains(Kind::Phone) || found.contains(Kind::Card),
            "marker not flagged in {text:?}"
        );
    }
});

fn collect(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                collect(v, out);
            }
        }
        _ => {}
    }
}

/// `needle` occurs in `s` with no letter, digit or `_` right before or after it.
fn at_word_boundary(s: &str, needle: &str) -> bool {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    s.match_indices(needle).any(|(i, _)| {
        !word(s[..i].chars().next_back()) && !word(s[i + needle.len()..].chars().next())
    })
}
