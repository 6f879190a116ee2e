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
    /// Advances over `bytes`.
    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\r' | b'\n' => {
                    self.after_cr = b == b'\r';
                    if self.in_line {
                        self.in_line = false;
                        self.in_event = true;
                    } else {
                        // A blank line dispatches (or, with nothing pending, does nothing).
                        self.in_event = false;
                    }
                }
                _ => {
                    self.after_cr = false;
                    self.in_line = true;
                }
            }
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
}
