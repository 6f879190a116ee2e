//! Usage metering of backend streams: whatever bytes a backend sends, cut into reads however
//! it likes, the meter never panics; without stripping the client gets every byte unchanged;
//! with stripping, what the client gets does not depend on how the reads were cut, and is
//! never more than the backend sent.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use llmkube_gateway::UsageMeter;

fn run(stream: &[u8], strip: bool, seed: u8) -> Vec<u8> {
    let mut meter = UsageMeter::sse(strip);
    let mut out = Vec::new();
    let mut rest = stream;
    let mut step = usize::from(seed % 13) + 1;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(step.min(rest.len()));
        out.extend_from_slice(&meter.pass(Bytes::copy_from_slice(chunk)));
        rest = tail;
        step = step * 7 % 17 + 1;
    }
    if let Some(held) = meter.flush() {
        out.extend_from_slice(&held);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, stream)) = data.split_first() else { return };
    assert_eq!(run(stream, false, seed), stream);
    let stripped = run(stream, true, seed);
    assert_eq!(stripped, run(stream, true, 0), "depends on how the reads were cut");
    assert!(stripped.len() <= stream.len());
});
