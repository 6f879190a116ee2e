//! The compiled module's static data: strings, string sets and precomputed outputs, laid out
//! once in a single data segment (identical inputs share one copy).

use std::collections::HashMap;

/// Where the data segment starts (address 0 is left unused).
pub const DATA_BASE: u32 = 16;

/// A `(ptr, len)` in the module's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Address.
    pub ptr: u32,
    /// Length in bytes.
    pub len: u32,
}

impl Span {
    /// The packed `i64` an entry point returns.
    pub fn packed(self) -> i64 {
        llmkube_policy_sdk::abi::pack(self.ptr, self.len)
    }
}

/// Builds the data segment.
#[derive(Default)]
pub struct Data {
    bytes: Vec<u8>,
    interned: HashMap<Vec<u8>, Span>,
}

impl Data {
    /// Places `bytes` (once) and returns where.
    pub fn bytes(&mut self, bytes: &[u8]) -> Span {
        if let Some(span) = self.interned.get(bytes) {
            return *span;
        }
        // 4-byte alignment keeps u32 reads of tables and version words aligned.
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
        let span = Span {
            ptr: DATA_BASE + self.bytes.len() as u32,
            len: bytes.len() as u32,
        };
        self.bytes.extend_from_slice(bytes);
        self.interned.insert(bytes.to_vec(), span);
        span
    }

    /// Places a string.
    pub fn str(&mut self, s: &str) -> Span {
        self.bytes(s.as_bytes())
    }

    /// Places a table of `(ptr, len)` pairs for `items`; returns its address and count.
    pub fn set(&mut self, items: &[String]) -> (u32, u32) {
        let spans: Vec<Span> = items.iter().map(|s| self.str(s)).collect();
        let mut table = Vec::with_capacity(spans.len() * 8);
        for s in &spans {
            table.extend_from_slice(&s.ptr.to_le_bytes());
            table.extend_from_slice(&s.len.to_le_bytes());
        }
        (self.bytes(&table).ptr, spans.len() as u32)
    }

    /// The first address after the data.
    pub fn end(&self) -> u32 {
        DATA_BASE + self.bytes.len() as u32
    }

    /// The segment's contents (starting at [`DATA_BASE`]).
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}
