//! Where a passed-through server-sent-events stream stands: between events, or inside one.
//!
//! The gateway forwards backend SSE bytes untouched, in whatever chunks they arrive. When it
//! has to cut a stream it may append its own `event: error` — but only at an event boundary:
//! appended inside an unfinished event, its fields would merge into the backend's half-sent
//! one (SSE concatenates `data` lines). Inside an event the only honest signal left is to
//! abort, which makes every SSE client discard the partial event. Line endings follow the
//! HTML standard: `\r\n`, `\n` or `\r`.

/// Framing state after the bytes seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SseFraming {
    /// The current line has characters and no terminator yet.
    in_line: bool,
    /// A line of the current event was completed and no blank line has dispatched it yet.
    in_event: bool,
    /// The last byte was `\r`: a following `\n` belongs to the same line ending.
    after_cr: bool,
}

impl SseFraming {
    /// Advances over `bytes`. Jumps from line end to line end (memchr): the state only changes
    /// there, and a byte-by-byte walk was 9% of a stream's instructions (callgrind).
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut text_from = 0;
        for at in memchr::memchr2_iter(b'\n', b'\r', bytes) {
            if at > text_from {
                self.text();
            }
            self.line_end(bytes[at]);
            text_from = at + 1;
        }
        if bytes.len() > text_from {
            self.text();
        }
    }

    /// Characters of a line (one or more).
    fn text(&mut self) {
        self.after_cr = false;
        self.in_line = true;
    }

    /// One `\r` or `\n`.
    fn line_end(&mut self, b: u8) {
        if b == b'\n' && self.after_cr {
            self.after_cr = false;
            return;
        }
        self.after_cr = b == b'\r';
        if self.in_line {
            self.in_line = false;
            self.in_event = true;
        } else {
            // A blank line dispatches (or, with nothing pending, does nothing).
            self.in_event = false;
        }
    }

    /// Whether an event appended now would stand on its own.
    pub fn at_boundary(&self) -> bool {
        !self.in_line && !self.in_event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(chunks: &[&[u8]]) -> bool {
        let mut f = SseFraming::default();
        for c in chunks {
            f.feed(c);
        }
        f.at_boundary()
    }

    #[test]
    fn boundaries_across_chunks_and_line_endings() {
        assert!(after(&[]));
        assert!(after(&[b"data: {}\n\n"]));
        assert!(after(&[b"data: {}\r\n", b"\r\n"]));
        assert!(after(&[b"data: {}\r", b"\r"]));
        assert!(after(&[b"data: a\n", b"data: b\n\n", b": keep-alive\n\n"]));
        assert!(!after(&[b"data: {\"id\""]), "inside a line");
        assert!(!after(&[b"data: {}\n"]), "the event is not dispatched yet");
        assert!(
            after(&[b"data: {}\r\n", b"\r"]),
            "a lone \\r is a blank line"
        );
        assert!(
            !after(&[b"data: {}\r", b"\n"]),
            "\\r\\n across chunks is one line end"
        );
        assert!(after(&[b"data: {}\r", b"\n", b"\n"]));
    }

    /// The byte-by-byte walk `feed` replaced, as the reference.
    fn reference(f: &mut SseFraming, bytes: &[u8]) {
        for &b in bytes {
            match b {
                b'\n' if f.after_cr => f.after_cr = false,
                b'\r' | b'\n' => {
                    f.after_cr = b == b'\r';
                    if f.in_line {
                        f.in_line = false;
                        f.in_event = true;
                    } else {
                        f.in_event = false;
                    }
                }
                _ => {
                    f.after_cr = false;
                    f.in_line = true;
                }
            }
        }
    }

    #[test]
    fn jumping_between_line_ends_matches_the_byte_walk() {
        // Every string of up to 8 bytes over {a, \r, \n}, fed whole and split in two at every
        // point, from every starting state.
        let alphabet = [b'a', b'\r', b'\n'];
        let starts = (0..8u8).map(|bits| SseFraming {
            in_line: bits & 1 != 0,
            in_event: bits & 2 != 0,
            after_cr: bits & 4 != 0,
        });
        for start in starts {
            for len in 0..=8u32 {
                for n in 0..3usize.pow(len) {
                    let bytes: Vec<u8> =
                        (0..len).map(|i| alphabet[n / 3usize.pow(i) % 3]).collect();
                    for cut in 0..=bytes.len() {
                        let (mut ours, mut theirs) = (start, start);
                        ours.feed(&bytes[..cut]);
                        ours.feed(&bytes[cut..]);
                        reference(&mut theirs, &bytes);
                        assert_eq!(ours, theirs, "{bytes:?} cut at {cut} from {start:?}");
                    }
                }
            }
        }
    }
}
