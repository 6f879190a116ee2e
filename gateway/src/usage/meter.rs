//! Reads usage from a backend's answer as it passes to the client.
//!
//! A JSON answer is kept (as shared `Bytes`, no copy) up to [`JSON_METER_MAX`] and read once
//! at its end. An event stream is split into events as it passes; each event's `data` is
//! read when the event is complete, so only the unfinished tail of one event is ever copied.
//! When the gateway added `stream_options.include_usage` for a client that did not ask for
//! usage, the usage-only chunk that adds is taken out and everything else is sent byte for
//! byte as the backend sent it; in that mode a partial event is held back until it is
//! complete (it normally arrives in one read, so this delays nothing).

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};

use super::Usage;
use super::answer::{Parsed, parse};

/// Largest JSON answer read for its `usage`; beyond it the usage is estimated.
pub const JSON_METER_MAX: usize = 8 << 20;
/// Longest event held while incomplete; a longer one is passed on unread (and the usage of
/// the request estimated), so a hostile backend cannot grow the buffer.
const EVENT_MAX: usize = 1 << 20;

/// Watches one answer.
#[derive(Debug)]
pub struct UsageMeter {
    sse: bool,
    /// Take out the usage-only chunk (the client did not ask for it).
    strip: bool,
    /// The unfinished event (SSE), or nothing.
    pending: Vec<u8>,
    /// The JSON answer so far.
    chunks: Vec<Bytes>,
    json_len: usize,
    /// Something could not be read (too large): the counts are not complete.
    gave_up: bool,
    usage: Option<Usage>,
    text_bytes: u64,
    /// The model the answer names first.
    model: Option<String>,
    /// Finish reasons in the order seen, at most [`MAX_FINISH_REASONS`].
    finish_reasons: Vec<String>,
}

/// Finish reasons kept per answer (one per choice; more choices are rare and not traced).
const MAX_FINISH_REASONS: usize = 16;

/// What the meter found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// The backend's last reported usage.
    pub usage: Option<Usage>,
    /// Bytes of generated text seen.
    pub text_bytes: u64,
}

impl UsageMeter {
    /// A meter for an event stream; `strip` takes out the usage-only chunk.
    pub fn sse(strip: bool) -> Self {
        Self::new(true, strip)
    }

    /// A meter for a JSON answer.
    pub fn json() -> Self {
        Self::new(false, false)
    }

    fn new(sse: bool, strip: bool) -> Self {
        UsageMeter {
            sse,
            strip,
            pending: Vec::new(),
            chunks: Vec::new(),
            json_len: 0,
            gave_up: false,
            usage: None,
            text_bytes: 0,
            model: None,
            finish_reasons: Vec::new(),
        }
    }

    /// The model the backend says answered.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// Why generation stopped, per choice.
    pub fn finish_reasons(&self) -> &[String] {
        &self.finish_reasons
    }

    /// Sees `data` from the backend; returns what goes on to the client (maybe empty).
    pub fn pass(&mut self, data: Bytes) -> Bytes {
        if !self.sse {
            self.keep_json(&data);
            return data;
        }
        if self.gave_up {
            return data;
        }
        let mut out = Out::default();
        if self.pending.is_empty() {
            let done = self.events(&data, false, &mut out);
            let held = self.hold(&data[done..]);
            return match (self.strip, held) {
                (false, _) => data,
                (true, true) => out.build(&data, done),
                (true, false) => out.build_owned(&data, data.len()),
            };
        }
        self.pending.extend_from_slice(&data);
        let buf = std::mem::take(&mut self.pending);
        let done = self.events(&buf, false, &mut out);
        let held = self.hold(&buf[done..]);
        match (self.strip, held) {
            (false, _) => data,
            (true, true) => out.build_owned(&buf, done),
            (true, false) => out.build_owned(&buf, buf.len()),
        }
    }

    /// The end of the answer: what was still held back, if anything.
    pub fn flush(&mut self) -> Option<Bytes> {
        if !self.sse {
            self.read_json();
            return None;
        }
        let buf = std::mem::take(&mut self.pending);
        let mut out = Out::default();
        let done = self.events(&buf, true, &mut out);
        if !self.strip {
            return None;
        }
        let mut sent = BytesMut::from(&out.build_owned(&buf, done)[..]);
        sent.extend_from_slice(&buf[done..]);
        (!sent.is_empty()).then(|| sent.freeze())
    }

    /// Reads a whole JSON answer at once (one that was not streamed).
    pub fn read_whole(&mut self, body: &[u8]) {
        self.take(parse(body));
    }

    /// What was found.
    pub fn reading(&self) -> Reading {
        Reading {
            usage: self.usage,
            text_bytes: self.text_bytes,
        }
    }

    fn keep_json(&mut self, data: &Bytes) {
        if self.gave_up {
            return;
        }
        self.json_len += data.len();
        if self.json_len > JSON_METER_MAX {
            self.gave_up = true;
            self.chunks = Vec::new();
        } else {
            self.chunks.push(data.clone());
        }
    }

    fn read_json(&mut self) {
        let chunks = std::mem::take(&mut self.chunks);
        match chunks.as_slice() {
            [] => {}
            [one] => self.take(parse(one)),
            many => self.take(parse(&many.concat())),
        }
    }

    /// Keeps the unfinished event; `false` when it is too long to keep (it is then passed on
    /// unread, with everything after it).
    fn hold(&mut self, tail: &[u8]) -> bool {
        if self.pending.len() + tail.len() > EVENT_MAX {
            self.gave_up = true;
            self.pending = Vec::new();
            tracing::warn!("an event of the stream exceeds 1 MiB; its usage will be estimated");
            return false;
        }
        self.pending.extend_from_slice(tail);
        true
    }

    fn take(&mut self, parsed: Option<Parsed>) {
        if let Some(p) = parsed {
            if let Some(mut usage) = p.usage {
                if p.prompt_absent {
                    usage.prompt = self.usage.map_or(0, |u| u.prompt);
                }
                self.usage = Some(usage);
            }
            self.text_bytes = self.text_bytes.saturating_add(p.text_bytes);
            if self.model.is_none() {
                self.model = p.model.map(|m| m.into_owned());
            }
            let room = MAX_FINISH_REASONS.saturating_sub(self.finish_reasons.len());
            self.finish_reasons
                .extend(p.finish_reasons.into_iter().take(room));
        }
    }

    /// Reads the complete events at the start of `buf`, noting in `out` which to drop;
    /// returns the length of the complete part. `at_end`: no more bytes will come.
    fn events(&mut self, buf: &[u8], at_end: bool, out: &mut Out) -> usize {
        let mut start = 0;
        let mut line_start = 0;
        let mut i = 0;
        // From line end to line end (memchr): a byte-by-byte walk was 13% of a stream's
        // instructions (callgrind).
        while let Some(at) = memchr::memchr2(b'\n', b'\r', &buf[i..]) {
            i += at;
            let b = buf[i];
            let mut end = i + 1;
            if b == b'\r' {
                // `\r\n` may be split across reads: decide once the next byte is known.
                match buf.get(i + 1) {
                    None if !at_end => break,
                    Some(b'\n') => end += 1,
                    _ => {}
                }
            }
            let blank = line_start == i;
            line_start = end;
            i = end;
            if blank {
                let data = event_data(&buf[start..end]);
                let parsed = data.as_deref().and_then(parse);
                if self.strip && parsed.as_ref().is_some_and(|p| p.usage_only) {
                    out.drop.push(start..end);
                }
                self.take(parsed);
                start = end;
            }
        }
        start
    }
}

/// The `data` of one event (lines joined by `\n`), when it has any; borrowed from the event
/// in the usual case of a single `data` line, so most events cost no allocation.
fn event_data(event: &[u8]) -> Option<Cow<'_, [u8]>> {
    let mut data: Option<Cow<'_, [u8]>> = None;
    let mut from = 0;
    let ends = memchr::memchr2_iter(b'\n', b'\r', event).chain([event.len()]);
    let lines = ends.map(|at| {
        let line = &event[from..at];
        from = at + 1;
        line
    });
    for line in lines {
        let Some(rest) = line.strip_prefix(b"data:") else {
            continue;
        };
        let rest = rest.strip_prefix(b" ").unwrap_or(rest);
        match &mut data {
            None => data = Some(Cow::Borrowed(rest)),
            Some(d) => {
                let d = d.to_mut();
                d.push(b'\n');
                d.extend_from_slice(rest);
            }
        }
    }
    data
}

/// Ranges of the complete part to leave out of what is sent.
#[derive(Default)]
struct Out {
    drop: Vec<std::ops::Range<usize>>,
}

impl Out {
    /// `data[..done]` minus the dropped ranges; a slice of `data` when nothing is dropped.
    fn build(&self, data: &Bytes, done: usize) -> Bytes {
        if self.drop.is_empty() {
            return data.slice(..done);
        }
        self.build_owned(data, done)
    }

    fn build_owned(&self, data: &[u8], done: usize) -> Bytes {
        let mut out = BytesMut::with_capacity(done);
        let mut at = 0;
        for r in &self.drop {
            out.extend_from_slice(&data[at..r.start]);
            at = r.end;
        }
        out.extend_from_slice(&data[at..done]);
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_anthropic_stream_reports_input_at_the_start_and_output_at_the_end() {
        let mut m = UsageMeter::sse(false);
        let stream = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":9,\"cache_read_input_tokens\":3,\"output_tokens\":1}}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":12}}\n\n",
        );
        m.pass(Bytes::from_static(stream.as_bytes()));
        m.flush();
        let usage = m.reading().usage;
        assert_eq!(
            usage,
            Some(Usage {
                prompt: 12,
                completion: 12
            })
        );
    }

    const CHUNK: &str =
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}],\"usage\":null}\n\n";
    const USAGE: &str = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n";
    const DONE: &str = "data: [DONE]\n\n";

    /// Feeds `stream` cut at every possible pair of points; returns what the client got.
    fn through(stream: &str, strip: bool, cuts: (usize, usize)) -> (Vec<u8>, Reading) {
        let b = stream.as_bytes();
        let mut m = UsageMeter::sse(strip);
        let mut got = Vec::new();
        for part in [&b[..cuts.0], &b[cuts.0..cuts.1], &b[cuts.1..]] {
            got.extend_from_slice(&m.pass(Bytes::copy_from_slice(part)));
        }
        if let Some(rest) = m.flush() {
            got.extend_from_slice(&rest);
        }
        (got, m.reading())
    }

    #[test]
    fn strips_only_the_usage_chunk_wherever_the_reads_are_cut() {
        for ending in ["\n", "\r\n", "\r"] {
            let fix = |s: &str| s.replace('\n', ending);
            let stream = fix(&format!("{CHUNK}{CHUNK}{USAGE}{DONE}"));
            let expected = fix(&format!("{CHUNK}{CHUNK}{DONE}"));
            let n = stream.len();
            for a in 0..=n {
                for c in (a..=n).step_by(7) {
                    let (got, reading) = through(&stream, true, (a, c));
                    assert_eq!(String::from_utf8(got).unwrap(), expected, "cut {a} {c}");
                    assert_eq!(
                        reading.usage,
                        Some(Usage {
                            prompt: 5,
                            completion: 2
                        })
                    );
                    assert_eq!(reading.text_bytes, 10);
                    let (kept, _) = through(&stream, false, (a, c));
                    assert_eq!(String::from_utf8(kept).unwrap(), stream);
                }
            }
        }
    }

    #[test]
    fn json_answers_are_read_at_the_end_and_huge_events_pass_unread() {
        let mut m = UsageMeter::json();
        let body = r#"{"choices":[{"message":{"content":"abc"}}],"usage":{"prompt_tokens":1,"completion_tokens":1}}"#;
        let (a, b) = body.split_at(20);
        assert_eq!(m.pass(Bytes::from(a)), a);
        assert_eq!(m.pass(Bytes::from(b)), b);
        assert_eq!(m.flush(), None);
        assert_eq!(m.reading().text_bytes, 3);
        assert!(m.reading().usage.is_some());

        let mut m = UsageMeter::sse(true);
        let big = Bytes::from(vec![b'x'; EVENT_MAX + 1]);
        assert_eq!(
            m.pass(Bytes::from_static(b"data: x\n\ndata: ")),
            "data: x\n\n"
        );
        let mut expected = b"data: ".to_vec();
        expected.extend_from_slice(&big);
        assert_eq!(m.pass(big), expected, "a held part goes out with the rest");
        let tail = Bytes::from_static(b"more\n\n");
        assert_eq!(
            m.pass(tail.clone()),
            tail,
            "after giving up, bytes pass as they come"
        );
    }
}
