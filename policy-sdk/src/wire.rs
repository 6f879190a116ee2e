//! Length-prefixed little-endian encoding shared by the request view and the output.
//!
//! Strings are a `u32` byte length followed by UTF-8; lists are a `u32` count followed by their
//! items. Readers check every length against the buffer and every string for UTF-8, so a
//! hostile buffer yields an error, never a panic or an out-of-bounds read.

use std::fmt;

/// Why a buffer could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    /// Byte offset where decoding failed.
    pub offset: usize,
    /// What was wrong.
    pub what: &'static str,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.offset)
    }
}

impl std::error::Error for WireError {}

/// A bounds-checked cursor over an encoded buffer.
#[derive(Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading `buf` at its first byte.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn fail<T>(&self, what: &'static str) -> Result<T, WireError> {
        Err(WireError {
            offset: self.pos,
            what,
        })
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Whether every byte was consumed.
    pub fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// Fails unless every byte was consumed.
    pub fn finish(&self) -> Result<(), WireError> {
        if self.is_empty() {
            Ok(())
        } else {
            self.fail("trailing bytes")
        }
    }

    /// Reads `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        match self.pos.checked_add(n).filter(|&end| end <= self.buf.len()) {
            Some(end) => {
                let out = &self.buf[self.pos..end];
                self.pos = end;
                Ok(out)
            }
            None => self.fail("truncated"),
        }
    }

    /// Reads a byte.
    pub fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.bytes(1)?[0])
    }

    /// Reads a little-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, WireError> {
        let b = self.bytes(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    /// Reads a little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a length-prefixed UTF-8 string.
    pub fn str(&mut self) -> Result<&'a str, WireError> {
        let len = self.u32()? as usize;
        let start = self.pos;
        let bytes = self.bytes(len)?;
        std::str::from_utf8(bytes).map_err(|_| WireError {
            offset: start,
            what: "invalid UTF-8",
        })
    }

    /// Reads a list count, refusing counts that cannot fit in the rest of the buffer given
    /// that every item takes at least `min_item` bytes.
    pub fn count(&mut self, min_item: usize) -> Result<usize, WireError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_item) > self.buf.len() - self.pos {
            return self.fail("list longer than the buffer");
        }
        Ok(n)
    }

    /// Skips a list of `n` strings (validating them) and returns the raw bytes it spanned.
    pub fn strs(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let start = self.pos;
        for _ in 0..n {
            self.str()?;
        }
        Ok(&self.buf[start..self.pos])
    }
}

/// Iterates strings of a list that a [`Reader`] has already validated.
#[derive(Clone, Default)]
pub struct Strs<'a> {
    raw: &'a [u8],
}

impl<'a> Strs<'a> {
    /// Strings in `raw`, which must have been validated by [`Reader::strs`].
    pub fn new(raw: &'a [u8]) -> Self {
        Strs { raw }
    }
}

impl<'a> Iterator for Strs<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let mut r = Reader::new(self.raw);
        let s = r.str().ok()?;
        self.raw = &self.raw[r.pos..];
        Some(s)
    }
}

/// Appends encoded values to a byte vector.
#[derive(Default)]
pub struct Writer {
    /// The bytes written so far.
    pub buf: Vec<u8>,
}

impl Writer {
    /// A writer with room for `n` bytes.
    pub fn with_capacity(n: usize) -> Self {
        Writer {
            buf: Vec::with_capacity(n),
        }
    }

    /// Writes a byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Writes a little-endian `u16`.
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Writes a little-endian `u32`.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Writes a length-prefixed string (lengths are capped at `u32::MAX` by construction:
    /// callers never hold larger strings).
    pub fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
    }

    /// Writes a count and each string of `items`.
    pub fn strs<'s>(&mut self, items: impl ExactSizeIterator<Item = &'s str>) {
        self.u32(items.len() as u32);
        for s in items {
            self.str(s);
        }
    }
}
