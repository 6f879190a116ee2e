//! Long texts cut for the detector: bounded windows that overlap, so one evaluation stays
//! within the policy limits whatever the body size and nothing hides on a boundary.

/// The detector scans long texts in windows of this many bytes, so one evaluation stays
/// within the policy deadline (5 ms CPU by default) and memory cap whatever the body size: at
/// the slowest measured rate (number-dense prose, bench/) a window takes about 0.1 ms.
pub const DETECTOR_WINDOW: usize = 64 << 10;
/// Consecutive windows overlap by this many bytes, more than the longest identifier the
/// detector recognises together with its context words, so nothing hides on a boundary.
pub const DETECTOR_OVERLAP: usize = 1 << 10;

/// `text` in windows of at most `size` bytes, each starting `overlap` bytes before the end
/// of the previous one (both cut at character boundaries).
pub fn windows(text: &str, size: usize, overlap: usize) -> impl Iterator<Item = &str> {
    let floor = |mut i: usize| {
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let mut start = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let end = floor((start + size).min(text.len()));
        let window = &text[start..end];
        if end == text.len() {
            done = true;
        } else {
            let next = floor(end.saturating_sub(overlap));
            // Always move forward, even for a window smaller than the overlap.
            start = if next > start { next } else { end };
        }
        Some(window)
    })
}

#[cfg(test)]
mod tests {
    use super::windows;

    #[test]
    fn windows_cover_the_text_with_overlap() {
        let text: String = (0..1000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let w: Vec<&str> = windows(&text, 300, 50).collect();
        assert_eq!(w.len(), 4);
        assert!(w.iter().all(|s| s.len() <= 300));
        assert_eq!(w[0], &text[..300]);
        assert_eq!(w[1], &text[250..550]);
        assert!(text.ends_with(w[3]));
        assert_eq!(windows("", 10, 2).collect::<Vec<_>>(), [""]);
        assert_eq!(windows("abc", 10, 20).collect::<Vec<_>>(), ["abc"]);
        let accents = "é".repeat(100);
        for w in windows(&accents, 33, 5) {
            assert!(w.len() <= 33 && w.chars().all(|c| c == 'é'));
        }
        // Every substring of length <= overlap lies wholly in some window.
        for start in 0..(1000 - 50) {
            let needle = &text[start..start + 50];
            let covered = windows(&text, 300, 50).any(|w| {
                let off = w.as_ptr() as usize - text.as_ptr() as usize;
                off <= start && start + 50 <= off + w.len()
            });
            assert!(covered, "{needle} at {start}");
        }
    }
}
