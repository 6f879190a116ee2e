//! Dates standing alone in the text, passed over without being read as numbers.

/// Where a date such as `2026-03-14` or `14.03.2026` at `i` ends, when nothing number-like
/// follows it: the date is then a token of its own, and no kind has a date's shape (a phone
/// number needs a context word, which `number::is_date` overrules; its parts are too short),
/// so it is passed over without being read as a token. Dates are the commonest long numbers
/// in prose, and reading a token costs several times this check.
pub(super) fn standalone_date(b: &[u8], i: usize) -> Option<usize> {
    let s = b.get(i..i + 10)?;
    let num = |from: usize, to: usize| {
        s[from..to].iter().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    // Shapes `number::is_date` accepts, with one kind of separator throughout.
    let date = if s[4] == b'-' && s[7] == b'-' {
        calendar_date(num(0, 4)?, num(5, 7)?, num(8, 10)?)
    } else if matches!(s[2], b'.' | b'/') && s[5] == s[2] {
        let (a, b, year) = (num(0, 2)?, num(3, 5)?, num(6, 10)?);
        calendar_date(year, b, a) || calendar_date(year, a, b)
    } else {
        return None;
    };
    let end = i + 10;
    // Not followed by more of a number: a digit, `(`, or a separator before either.
    let more = |k: usize| b.get(k).is_some_and(|c| c.is_ascii_digit() || *c == b'(');
    let separator = b
        .get(end)
        .is_some_and(|c| matches!(c, b' ' | b'-' | b'.' | b'/'));
    let continues = more(end) || (separator && more(end + 1));
    (date && !continues).then_some(end)
}

/// Whether `year`, `month` and `day` make a date as prose writes them (years 1900 to 2099).
pub(super) fn calendar_date(year: u32, month: u32, day: u32) -> bool {
    (1900..=2099).contains(&year) && (1..=12).contains(&month) && (1..=31).contains(&day)
}
