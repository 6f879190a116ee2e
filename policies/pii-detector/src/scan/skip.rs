//! The fast path of the scan: finding the next byte that can start something the scanners
//! look at, 64 bytes at a time. Prose is mostly lowercase letters and spaces, so this loop is
//! where a long prompt spends its time.
//!
//! Under WebAssembly with `simd128` (how the policy ships, see `.cargo/config.toml`) a few
//! vector compares and a bitmask answer for 16 bytes at once; on x86-64 (native tests and the
//! scanner's profile) SSE2 does the same; elsewhere a portable loop gives the same answer.

/// Whether `c` can start something the scanners look at: a digit (numbers, an IBAN's check
/// digits), `+` or `(` (numbers) or `@` (e-mail).
pub(super) fn interesting(c: u8) -> bool {
    c.wrapping_sub(b'0') < 10 || c == b'@' || c == b'+' || c == b'('
}

/// Finds interesting bytes in order. It keeps the bitmask of the 64-byte block it last
/// looked at, so a run of stops close together (the numbers of a sentence) costs a shift and a
/// count each, not a new block.
pub(super) struct Cursor<'a> {
    b: &'a [u8],
    /// Where the current block starts; `mask` bit `k` is byte `base + k`.
    base: usize,
    mask: u64,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(b: &'a [u8]) -> Self {
        Cursor {
            b,
            base: 0,
            mask: block_mask(b, 0),
        }
    }

    /// The index of the first interesting byte at or after `i`, or the length of the text.
    #[inline]
    pub(super) fn next(&mut self, mut i: usize) -> usize {
        if i >= self.base && i < self.base + 64 {
            let ahead = self.mask >> (i - self.base);
            if ahead != 0 {
                return i + ahead.trailing_zeros() as usize;
            }
            i = self.base + 64;
        }
        // Block after block, in locals; the cursor keeps only the block that holds a stop.
        while i < self.b.len() {
            let mask = block_mask(self.b, i);
            if mask != 0 {
                (self.base, self.mask) = (i, mask);
                return i + mask.trailing_zeros() as usize;
            }
            i += 64;
        }
        self.b.len()
    }
}

/// The interesting bytes of `b[i..i + 64]` (fewer at the end of the text), as bits.
#[inline]
fn block_mask(b: &[u8], i: usize) -> u64 {
    match b.get(i..i + 64) {
        Some(block) => (0..4).fold(0u64, |m, k| {
            let chunk = block[k * 16..k * 16 + 16].try_into().expect("16 bytes");
            m | u64::from(chunk_mask(chunk)) << (k * 16)
        }),
        None => b
            .get(i..)
            .unwrap_or_default()
            .iter()
            .enumerate()
            .fold(0, |m, (k, &c)| m | (u64::from(interesting(c)) << k)),
    }
}

/// Bit `k` set when byte `k` of `chunk` is interesting.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[allow(unsafe_code)] // one unaligned vector load; see the SAFETY note.
fn chunk_mask(chunk: &[u8; 16]) -> u32 {
    use core::arch::wasm32::*;
    // SAFETY: `chunk` is 16 readable bytes; v128_load has no alignment requirement.
    let v = unsafe { v128_load(chunk.as_ptr().cast::<v128>()) };
    let digit = u8x16_le(u8x16_sub(v, u8x16_splat(b'0')), u8x16_splat(9));
    let at = u8x16_eq(v, u8x16_splat(b'@'));
    let plus = u8x16_eq(v, u8x16_splat(b'+'));
    let paren = u8x16_eq(v, u8x16_splat(b'('));
    u32::from(u8x16_bitmask(v128_or(
        v128_or(digit, at),
        v128_or(plus, paren),
    )))
}

/// Bit `k` set when byte `k` of `chunk` is interesting.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)] // SSE2 intrinsics; see the SAFETY note.
fn chunk_mask(chunk: &[u8; 16]) -> u32 {
    use core::arch::x86_64::*;
    // SAFETY: SSE2 is part of x86-64; `chunk` is 16 readable bytes and loadu is unaligned.
    unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
        // Unsigned `x <= 9` as `min(x, 9) == x`: SSE2 orders bytes only as signed.
        let x = _mm_sub_epi8(v, _mm_set1_epi8(b'0' as i8));
        let digit = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(9)), x);
        let at = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'@' as i8));
        let plus = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'+' as i8));
        let paren = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'(' as i8));
        let any = _mm_or_si128(_mm_or_si128(digit, at), _mm_or_si128(plus, paren));
        _mm_movemask_epi8(any) as u32
    }
}

/// Bit `k` set when byte `k` of `chunk` is interesting.
#[cfg(not(any(
    all(target_arch = "wasm32", target_feature = "simd128"),
    target_arch = "x86_64"
)))]
fn chunk_mask(chunk: &[u8; 16]) -> u32 {
    chunk
        .iter()
        .enumerate()
        .fold(0, |m, (k, &c)| m | (u32::from(interesting(c)) << k))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next(text: &[u8], from: usize) -> usize {
        Cursor::new(text).next(from)
    }

    #[test]
    fn finds_the_first_interesting_byte_in_blocks_and_in_the_tail() {
        let mut text = vec![b'a'; 140];
        assert_eq!(next(&text, 0), 140);
        for at in [0, 5, 15, 16, 31, 35, 63, 64, 100, 127, 128, 139] {
            let mut t = text.clone();
            t[at] = b'7';
            assert_eq!(next(&t, 0), at);
            assert_eq!(next(&t, at), at);
            assert_eq!(next(&t, at + 1), 140);
        }
        // One cursor, many stops, forwards and across blocks, as the scan uses it.
        let mut t = text.clone();
        let stops = [3, 9, 40, 63, 64, 70, 130, 139];
        for &k in &stops {
            t[k] = b'(';
        }
        let mut cursor = Cursor::new(&t);
        let mut seen = Vec::new();
        let mut i = 0;
        while i < t.len() {
            i = cursor.next(i);
            if i < t.len() {
                seen.push(i);
            }
            i += 1;
        }
        assert_eq!(seen, stops);
        assert_eq!(cursor.next(65), 70, "a jump back into the block");
        assert_eq!(cursor.next(200), 140);
        // Every byte value, at every lane: the vector compare agrees with the byte test.
        for c in 0..=255u8 {
            for lane in 0..16 {
                let mut chunk = [b'a'; 16];
                chunk[lane] = c;
                let want = if interesting(c) { 1 << lane } else { 0 };
                assert_eq!(chunk_mask(&chunk), want, "byte {c} at {lane}");
            }
        }
        text[20] = b'@';
        assert_eq!(next(&text, 3), 20);
        assert_eq!(next(&text, 141), 140);
    }
}
