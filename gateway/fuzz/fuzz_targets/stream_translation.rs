//! Translation of backend event streams into another API: whatever bytes a backend sends, cut
//! into reads however it likes, the translator never panics, what the client gets does not
//! depend on how the reads were cut, and it is well-formed SSE whose every event's data is
//! JSON (or OpenAI's `[DONE]`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmkube_gateway::{Api, Conversion, StreamContext, StreamTranslator};

const PAIRS: [(Api, Conversion); 4] = [
    (Api::ChatCompletions, Conversion::ChatToMessages),
    (Api::Messages, Conversion::MessagesToChat),
    (Api::Responses, Conversion::ResponsesToChat),
    (Api::Responses, Conversion::ResponsesToMessages),
];

fn run(api: Api, conversion: Conversion, stream: &[u8], seed: u8) -> Vec<u8> {
    let ctx = StreamContext {
        include_usage: seed & 1 == 1,
        ..StreamContext::default()
    };
    let Some(mut t) = StreamTranslator::new(api, conversion, ctx) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut rest = stream;
    let mut step = usize::from(seed % 13) + 1;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(step.min(rest.len()));
        out.extend_from_slice(&t.feed(chunk));
        rest = tail;
        step = step * 7 % 17 + 1;
    }
    out.extend_from_slice(&t.finish());
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, stream)) = data.split_first() else { return };
    let (api, conversion) = PAIRS[usize::from(seed >> 4) % PAIRS.len()];
    let out = run(api, conversion, stream, seed);
    assert_eq!(out, run(api, conversion, stream, seed & 1), "depends on how the reads were cut");
    let text = std::str::from_utf8(&out).expect("the translation writes UTF-8");
    for event in text.split_terminator("\n\n") {
        for line in event.lines() {
            if let Some(data) = line.strip_prefix("data: ") {
                assert!(
                    data == "[DONE]" || serde_json::from_str::<serde_json::Value>(data).is_ok(),
                    "not JSON: {data}"
                );
            } else {
                assert!(line.starts_with("event: "), "not SSE: {line}");
            }
        }
    }
});
