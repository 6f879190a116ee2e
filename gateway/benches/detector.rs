//! Long prompts through the classification path, as the gateway runs it: the strict one-pass
//! body walk that collects every string, then the built-in PII detector (WebAssembly, reused
//! instance, production limits) over the text in its windows. Prints one JSON line per prompt
//! size (1 KiB, 64 KiB, 1 MiB) and kind of text (prose dense with numbers, plain prose) with
//! MB/s for the walk, the detector and both together; the bench orchestrator (bench/run.py)
//! records them. Run after building the policies:
//! `cargo bench -p llmkube-gateway --bench detector`.
#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is what it is for

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use llmkube_gateway::parse_json_body;
use llmkube_gateway::policy::windows::{DETECTOR_OVERLAP, DETECTOR_WINDOW, windows};
use llmkube_gateway::policy::{EngineSettings, PolicyEngine, PolicyModule};
use llmkube_policy_sdk::view::RequestView;

/// Prose dense with numbers that are not personal data (prices, an order number, a date, a
/// version in every sentence): the detector's worst realistic case.
const NUMBERS: &str = "Please summarise the attached Q3 report for the board: revenue rose 4.2% \
    to $18.3M, order 58213 shipped on 2026-03-14, build 1.24.7 passed. Keep the tone neutral. ";
/// Ordinary prose: a few capitals, no digits.
const PROSE: &str = "Please summarise the attached report for the board in plain words. Keep \
    the tone neutral and the sentences short, and mention the risks the Platform team raised. ";

/// A chat body of about `size` bytes of `para` repeated, split over several messages.
fn body(size: usize, para: &str) -> Bytes {
    let per_message = 16 << 10;
    let mut messages = Vec::new();
    let mut left = size.saturating_sub(64);
    while left > 0 {
        let n = left.min(per_message);
        let mut text = para.repeat(n / para.len() + 1);
        text.truncate(n);
        messages.push(serde_json::json!({"role": "user", "content": text}));
        left -= n;
    }
    Bytes::from(serde_json::json!({"model": "m", "messages": messages}).to_string())
}

/// Median seconds of `f` over enough runs to fill about a second.
fn time(mut f: impl FnMut()) -> f64 {
    f();
    let started = Instant::now();
    let mut samples = Vec::new();
    while started.elapsed() < Duration::from_secs(1) || samples.len() < 5 {
        let t = Instant::now();
        f();
        samples.push(t.elapsed().as_secs_f64());
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    // `cargo bench` passes --bench; nothing to parse.
    let engine = PolicyEngine::new(EngineSettings::default()).unwrap();
    let detector = PolicyModule::load(
        &engine,
        "pii-detector",
        &common::wasm("llmkube_pii_detector.wasm"),
        None,
        &serde_json::json!({}),
    )
    .unwrap();
    let cases = [("1KiB", 1 << 10), ("64KiB", 64 << 10), ("1MiB", 1 << 20)]
        .into_iter()
        .flat_map(|size| [("numbers", NUMBERS, size), ("prose", PROSE, size)]);
    for (kind, para, (label, size)) in cases {
        let bytes = body(size, para);
        let walk = || parse_json_body(bytes.clone(), Some(usize::MAX)).unwrap();
        let parsed = walk();
        let text = parsed.text.as_str().unwrap().to_owned();
        let detect = |text: &str| {
            let mut found = 0;
            for window in windows(text, DETECTOR_WINDOW, DETECTOR_OVERLAP) {
                let view = RequestView {
                    method: "POST",
                    path: "/v1/chat/completions",
                    model: "m",
                    prompt: Some(window),
                    ..Default::default()
                };
                found += detector
                    .evaluate(&view.to_bytes(), |out| {
                        Ok(out.add_classifications().count())
                    })
                    .expect("the detector evaluates within its limits");
            }
            found
        };
        assert_eq!(detect(&text), 0, "the prose holds no personal data");
        let walk_s = time(|| {
            black_box(walk());
        });
        let detect_s = time(|| {
            black_box(detect(&text));
        });
        let both_s = time(|| {
            let parsed = walk();
            black_box(detect(parsed.text.as_str().unwrap()));
        });
        let mb = bytes.len() as f64 / 1e6;
        println!(
            "{}",
            serde_json::json!({
                "prompt": label,
                "text": kind,
                "body_bytes": bytes.len(),
                "walk_ms": walk_s * 1e3,
                "detector_ms": detect_s * 1e3,
                "total_ms": both_s * 1e3,
                "walk_mb_s": mb / walk_s,
                "detector_mb_s": mb / detect_s,
                "total_mb_s": mb / both_s,
            })
        );
    }
}
