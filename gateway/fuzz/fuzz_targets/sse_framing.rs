//! SSE framing of backend streams: however the bytes are split into chunks, the tracker agrees
//! with a plain reading of the whole stream on whether an appended event would stand alone.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmkube_gateway::SseFraming;

fuzz_target!(|data: &[u8]| {
    let Some((&seed, stream)) = data.split_first() else { return };
    let mut framing = SseFraming::default();
    let mut rest = stream;
    let mut step = usize::from(seed % 7) + 1;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(step.min(rest.len()));
        framing.feed(chunk);
        rest = tail;
        step = step * 5 % 11 + 1;
    }
    assert_eq!(framing.at_boundary(), reference(stream), "{stream:?}");
});

/// The HTML standard's reading: `\r\n`, `\r` and `\n` end lines; a blank line dispatches.
fn reference(stream: &[u8]) -> bool {
    let mut normal = Vec::with_capacity(stream.len());
    let mut i = 0;
    while i < stream.len() {
        match stream[i] {
            b'\r' if stream.get(i + 1) == Some(&b'\n') => {
                normal.push(b'\n');
                i += 1;
            }
            b'\r' => normal.push(b'\n'),
            b => normal.push(b),
        }
        i += 1;
    }
    let mut lines: Vec<&[u8]> = normal.split(|&b| b == b'\n').collect();
    let partial = lines.pop().unwrap_or_default();
    let pending = lines.iter().rev().take_while(|l| !l.is_empty()).count() > 0;
    partial.is_empty() && !pending
}
