//! Numbers that identify a person: US social security numbers, payment card numbers and phone
//! numbers. A numeric token (digit groups with single separators, an optional `+`, parentheses
//! around an area code or trunk prefix, an extension) is read at each number in the text and
//! classified whole, without a stray `+`, and as every run of its consecutive groups, so that a
//! number run into its neighbours is still found; runs longer than a token are read as
//! overlapping tokens. Ambiguous shapes count only with a context word just before them.

use super::context::Context;
use super::date::{calendar_date, standalone_date};
use super::{Kind, Kinds, is_word};

/// Most digit groups one numeric token holds; a longer run is read as overlapping tokens.
const MAX_GROUPS: usize = 12;
/// Groups a token re-reads from the previous one when a run is longer than [`MAX_GROUPS`],
/// more than any number the scanners recognise spans, so none is cut in two.
const OVERLAP_GROUPS: usize = 6;
/// Most digits a numeric token keeps.
const MAX_DIGITS: usize = 32;
/// Fewest digits of any number the scanners recognise (a phone number with context).
const MIN_DIGITS: usize = 8;
/// How far back, in bytes, a context word may stand before an ambiguous number.
const CONTEXT_WINDOW: usize = 48;

/// Separator kinds, as bits.
const SPACE: u8 = 1;
const DASH: u8 = 2;
const DOT: u8 = 4;
const PAREN: u8 = 8;
const SLASH: u8 = 16;

/// A run of digit groups with single separators between them, e.g. `+49 (0) 4628 194821` or
/// `(665)615-0556x130`; `sep[g]` is the separator before group `g` (0 for the first). Only
/// the first `n` digits and `groups` entries of each array are meaningful.
#[derive(Clone, Copy)]
struct Token {
    digits: [u8; MAX_DIGITS],
    n: usize,
    /// Where each group starts in the text.
    at: [u32; MAX_GROUPS],
    /// Digits in each group.
    len: [u8; MAX_GROUPS],
    sep: [u8; MAX_GROUPS],
    groups: usize,
    /// Starts with `+`.
    plus: bool,
}

impl Token {
    fn digits(&self) -> &[u8] {
        &self.digits[..self.n]
    }

    fn lens(&self) -> &[u8] {
        &self.len[..self.groups]
    }

    /// Every separator used, as bits.
    fn separators(&self) -> u8 {
        self.sep[..self.groups].iter().fold(0, |a, s| a | s)
    }

    const EMPTY: Token = Token {
        digits: [0; MAX_DIGITS],
        n: 0,
        at: [0; MAX_GROUPS],
        len: [0; MAX_GROUPS],
        sep: [0; MAX_GROUPS],
        groups: 0,
        plus: false,
    };

    /// Makes `part` groups `from..to` of this token, as a token of their own (no `+`).
    fn sub_into(&self, from: usize, to: usize, part: &mut Token) {
        let skip: usize = self.len[..from].iter().map(|&l| usize::from(l)).sum();
        let take: usize = self.len[from..to].iter().map(|&l| usize::from(l)).sum();
        part.n = take;
        part.groups = to - from;
        part.plus = false;
        part.digits[..take].copy_from_slice(&self.digits[skip..skip + take]);
        part.len[..to - from].copy_from_slice(&self.len[from..to]);
        part.sep[0] = 0;
        part.sep[1..to - from].copy_from_slice(&self.sep[from + 1..to]);
    }
}

/// Room for the tokens of one scan, set up once: zeroing or moving a 150-byte token per number
/// compiles to `memory.fill`/`memory.copy`, host calls under wasmtime (reading tokens in place
/// took the shipped detector from about 410 to 470 MB/s on prose dense with numbers).
pub(super) struct Tokens {
    read: Token,
    part: Token,
    /// Pass standalone dates over without reading them (off only to test that shortcut).
    skip_dates: bool,
}

impl Tokens {
    pub(super) fn new(skip_dates: bool) -> Self {
        Tokens {
            read: Token::EMPTY,
            part: Token::EMPTY,
            skip_dates,
        }
    }
}

/// Where the run of number-like bytes (digits, `+`, parentheses, separators and extension
/// markers) that starts at `i` ends, when it holds too few digits for any number of ours; `None` when it
/// holds enough to be read. Every token and every dashed SSN [`number_at`] can find lies in
/// such a run, so most numbers in prose (prices, dates, versions) cost one pass over their
/// bytes and nothing else.
pub(super) fn short_run_end(b: &[u8], i: usize) -> Option<usize> {
    let mut digits = 0;
    for (j, &c) in b.iter().enumerate().skip(i) {
        match c {
            b'0'..=b'9' => {
                digits += 1;
                if digits == MIN_DIGITS {
                    return None;
                }
            }
            // Separators, and what an extension is written with (`x12`, `ext. 3`, `#4`).
            b' ' | b'-' | b'.' | b'/' | b'(' | b')' | b'+' | b'#' | b'x' | b'X' | b'e' | b'E'
            | b't' | b'T' => {}
            _ => return Some(j),
        }
    }
    Some(b.len())
}

/// Reads the numeric token starting at `i` (a digit, `+` or `(`), classifies it as SSN, card
/// or phone, and returns where scanning continues.
pub(super) fn number_at(
    b: &[u8],
    i: usize,
    enabled: Kinds,
    found: &mut Kinds,
    tokens: &mut Tokens,
) -> usize {
    let Tokens {
        read: t,
        part,
        skip_dates,
    } = tokens;
    let starts = b[i].is_ascii_digit() || b.get(i + 1).is_some_and(u8::is_ascii_digit);
    // Glued to a word (`abc123`, `v1.2`, `INV-123`); a `-` or `.` after a space is punctuation.
    let glued = i > 0
        && (is_word(b[i - 1]) || (matches!(b[i - 1], b'.' | b'-') && i > 1 && is_word(b[i - 2])));
    if !b[i].is_ascii_digit() && (!starts || glued) {
        // `+` or `(` that starts nothing here: look at what follows on its own.
        return i + 1;
    }
    if glued && !is_word(b[i - 1]) {
        // After `word-` or `word.`: an identifier such as `INV-2024` or a version, unless the
        // number is one whose structure alone identifies it (`SSN-078-05-1120`, a card).
        let (token, end) = read_token(b, i, t);
        let strong = {
            let mut k = Kinds::default();
            for kind in [Kind::Ssn, Kind::Card] {
                if enabled.contains(kind) {
                    k.insert(kind);
                }
            }
            k
        };
        if !b.get(end).is_some_and(|c| is_word(*c))
            && token
            && token_kind(t, part, strong, &Context::new(&[]), found)
        {
            return end;
        }
    }
    if glued {
        // Inside a word or a dotted/dashed run: skip the rest of it, but not an SSN in it
        // (`P78-078-05-1120`): its dashed shape and ranges identify it even there.
        let mut j = i + 1;
        while j < b.len() && (is_word(b[j]) || b[j] == b'.' || b[j] == b'-') {
            j += 1;
        }
        if enabled.contains(Kind::Ssn)
            && dashed_ssn_in(&b[i..j], i > 0 && b[i - 1].is_ascii_digit())
        {
            found.insert(Kind::Ssn);
        }
        return j;
    }
    if *skip_dates && let Some(end) = standalone_date(b, i) {
        // Past an extension, as a token read would go, so the scan goes on from the same place.
        return skip_extension(b, end);
    }
    let mut at = i;
    loop {
        let (token, end) = read_token(b, at, t);
        if !token && b[at] == b'(' {
            // A parenthesis around the whole number, not around its area code: look inside.
            return at + 1;
        }
        let next = end.max(at + 1);
        // A token cut short by its size limits ends on a digit; otherwise a token glued to
        // letters (an identifier, a hash) is not a number of ours.
        let cut = token && b.get(end).is_some_and(u8::is_ascii_digit);
        if !cut && b.get(end).is_some_and(|c| is_word(*c)) {
            if enabled.contains(Kind::Ssn) && dashed_ssn_in(&b[at..end], false) {
                found.insert(Kind::Ssn);
            }
            return next;
        }
        if !token {
            return next;
        }
        let context = Context::new(&b[at.saturating_sub(CONTEXT_WINDOW)..at]);
        if token_kind(t, part, enabled, &context, found) {
            return next;
        }
        if cut && t.groups > 1 {
            // The run goes on: read on from a few groups back so nothing is cut in two (always
            // past the first group, so this ends).
            at = t.at[t.groups.saturating_sub(OVERLAP_GROUPS).max(1)] as usize;
            continue;
        }
        return next;
    }
}

/// Classifies `t`, a stray-`+`-less `t`, and every run of its consecutive groups (built in
/// `part`); records the first kind found.
fn token_kind(
    t: &mut Token,
    part: &mut Token,
    enabled: Kinds,
    context: &Context<'_>,
    found: &mut Kinds,
) -> bool {
    // Every kind has at least 8 digits; most numbers in prose (prices, dates, versions) fewer.
    if t.n < MIN_DIGITS {
        return false;
    }
    if let Some(kind) = classify(t, enabled, context) {
        found.insert(kind);
        return true;
    }
    // A stray `+` before a number that is not an international phone (`+078-05-1120`).
    if t.plus {
        t.plus = false;
        let kind = classify(t, enabled, context);
        t.plus = true;
        if let Some(kind) = kind {
            found.insert(kind);
            return true;
        }
    }
    // A number run into its neighbours (`ref 12 078-05-1120`, `078-05-078-05-1120`): try
    // every run of consecutive groups on its own (at most 36 for 8 groups; tokens are rare).
    for a in 0..t.groups {
        let mut digits = 0;
        for z in a + 1..=t.groups {
            digits += usize::from(t.len[z - 1]);
            if (a == 0 && z == t.groups) || digits < MIN_DIGITS {
                continue;
            }
            t.sub_into(a, z, part);
            if let Some(kind) = classify(part, enabled, context) {
                found.insert(kind);
                return true;
            }
        }
    }
    false
}

/// Which kind `t` is, if any; `context` is the text just before it.
fn classify(t: &Token, enabled: Kinds, context: &Context<'_>) -> Option<Kind> {
    if enabled.contains(Kind::Ssn) && is_ssn(t) {
        return Some(Kind::Ssn);
    }
    if enabled.contains(Kind::Card) && is_card(t, context) {
        return Some(Kind::Card);
    }
    if enabled.contains(Kind::Phone) && is_phone(t, context) {
        return Some(Kind::Phone);
    }
    None
}

/// Reads the numeric token at `start` into `t`; says whether there is one, and where it ends.
fn read_token(b: &[u8], start: usize, t: &mut Token) -> (bool, usize) {
    // The arrays keep stale entries past `n` and `groups`; nothing reads them.
    t.n = 0;
    t.groups = 0;
    t.plus = false;
    let mut i = start;
    if b[i] == b'+' {
        t.plus = true;
        i += 1;
    }
    let mut group = 0u8;
    let mut pending = 0u8; // separator seen since the last group
    let mut open_paren = false;
    // Where the open parenthesis stands, and how many groups the token had before it (the
    // groups before it are never rewritten, so this is enough to go back to that token).
    let mut before_paren = None;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() {
            if group == 0 && t.groups == MAX_GROUPS {
                // A longer run: this token ends here; the caller reads on from an earlier group.
                return (true, i);
            }
            if t.n == MAX_DIGITS {
                if t.groups == 0 {
                    // One run of digits longer than any number: skip it.
                    return (false, skip_digits(b, i));
                }
                // Keep the complete groups only; the caller reads on from an earlier group.
                t.n = t.len[..t.groups].iter().map(|&l| usize::from(l)).sum();
                return (true, i - usize::from(group));
            }
            if group == 0 {
                t.sep[t.groups] = pending;
                t.at[t.groups] = i as u32;
                pending = 0;
            }
            t.digits[t.n] = c;
            t.n += 1;
            group += 1;
        } else {
            let sep = match c {
                b' ' => SPACE,
                b'-' => DASH,
                b'.' => DOT,
                b'/' => SLASH,
                b'(' if !open_paren => PAREN,
                b')' if open_paren => PAREN,
                _ => break,
            };
            // Separators sit between digits: at most one plain separator, plus parentheses
            // around a group (`(0)`, `(665)`), followed by a digit or the group's parenthesis.
            let next = b.get(i + 1).copied();
            let next_ok = next.is_some_and(|n| {
                n.is_ascii_digit()
                    || (c == b')' && matches!(n, b' ' | b'-' | b'.'))
                    || (c != b'(' && n == b'(')
            });
            let doubled = pending & !PAREN != 0 && sep != PAREN;
            // A parenthesis straight after digits only for a trunk `(0)`: `+44(0)113`.
            let glued_paren = c == b'(' && group > 0 && b.get(i + 1..i + 3) != Some(b"0)");
            if !next_ok || doubled || glued_paren {
                break;
            }
            if group > 0 {
                t.len[t.groups] = group;
                t.groups += 1;
                group = 0;
            } else if t.groups == 0 && c != b'(' {
                // Only `(` may come before the first digit.
                break;
            }
            if c == b'(' {
                open_paren = true;
                before_paren = Some((i, t.groups));
            } else if c == b')' {
                open_paren = false;
            }
            pending |= sep;
        }
        i += 1;
    }
    if group > 0 {
        t.len[t.groups] = group;
        t.groups += 1;
    }
    if open_paren {
        // Never closed: the number ends before the parenthesis.
        let Some((at, groups)) = before_paren.filter(|&(_, groups)| groups > 0) else {
            return (false, i);
        };
        t.groups = groups;
        t.n = t.len[..groups].iter().map(|&l| usize::from(l)).sum();
        return (true, at);
    }
    if t.n == 0 {
        return (false, i);
    }
    // An extension after the number (`x130`, ` ext. 12`, `#4`) belongs to it.
    (true, skip_extension(b, i))
}

/// Past an extension such as `x02014`, `ext. 12` or ` ext 4` at `i`, else `i`.
fn skip_extension(b: &[u8], i: usize) -> usize {
    let mut j = i;
    if b.get(j) == Some(&b' ') {
        j += 1;
    }
    let rest = &b[j.min(b.len())..];
    let marker = [&b"ext."[..], b"ext", b"x", b"#"]
        .into_iter()
        .find(|m| rest.len() >= m.len() && rest[..m.len()].eq_ignore_ascii_case(m));
    let Some(m) = marker else { return i };
    if m == b"x" && j != i {
        return i; // ` x` is a word, not an extension
    }
    j += m.len();
    if b.get(j) == Some(&b' ') && m != b"x" {
        j += 1;
    }
    let digits = b[j.min(b.len())..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    let end = j + digits;
    // Digits that run on into another number (`#078-05-1120`) are that number, not an extension.
    let runs_on = b
        .get(end)
        .is_some_and(|c| matches!(c, b'-' | b'.' | b'/' | b' '))
        && b.get(end + 1).is_some_and(u8::is_ascii_digit);
    if (1..=6).contains(&digits) && !b.get(end).is_some_and(|c| is_word(*c)) && !runs_on {
        end
    } else {
        i
    }
}

fn skip_digits(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    i
}

/// Whether `run` holds `ddd-dd-dddd` with no digit right before or after it and valid SSN
/// ranges; `after_digit` says whether the byte before `run` is a digit.
fn dashed_ssn_in(run: &[u8], after_digit: bool) -> bool {
    let shape = |w: &[u8]| {
        w.iter().enumerate().all(|(k, c)| {
            if k == 3 || k == 6 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
    };
    run.windows(11).enumerate().any(|(k, w)| {
        let before_ok = if k == 0 {
            !after_digit
        } else {
            !run[k - 1].is_ascii_digit()
        };
        let after_ok = !run.get(k + 11).is_some_and(u8::is_ascii_digit);
        before_ok
            && after_ok
            && shape(w)
            && &w[0..3] != b"000"
            && &w[0..3] != b"666"
            && w[0] != b'9'
            && &w[4..6] != b"00"
            && &w[7..11] != b"0000"
    })
}

fn is_ssn(t: &Token) -> bool {
    let seps = t.separators();
    if t.plus || t.lens() != [3, 2, 4] || !(seps == DASH || seps == SPACE) {
        return false;
    }
    let d = t.digits();
    let area = &d[0..3];
    area != b"000" && area != b"666" && area[0] != b'9' && &d[3..5] != b"00" && &d[5..9] != b"0000"
}

/// A payment card number: 12..=19 digits, bare or in groups, a known issuer prefix for its
/// length, and a valid Luhn check. Numbers shorter than 16 digits (Maestro, Amex, JCB 15,
/// Diners, Visa 13) are common as order numbers too, so they also need grouping like a card
/// or a card word just before them.
fn is_card(t: &Token, context: &Context<'_>) -> bool {
    let d = t.digits();
    let seps = t.separators();
    if t.plus || !(12..=19).contains(&d.len()) || seps & !(SPACE | DASH) != 0 {
        return false;
    }
    if !issuer_length(d) || !luhn(d) {
        return false;
    }
    let grouped = t.groups > 1 && t.lens()[..t.groups - 1].iter().all(|&l| l == 4 || l == 6);
    d.len() >= 16 || grouped || context.card()
}

/// Whether the issuer prefix of `d` issues cards of its length (IIN ranges of Visa,
/// Mastercard, Amex, Discover, JCB, Diners, Maestro and UnionPay).
fn issuer_length(d: &[u8]) -> bool {
    let prefix = |n: usize| -> u32 {
        d[..n]
            .iter()
            .fold(0, |acc, c| acc * 10 + u32::from(c - b'0'))
    };
    let len = d.len();
    let (p1, p2, p3, p4) = (prefix(1), prefix(2), prefix(3), prefix(4));
    match p1 {
        4 => matches!(len, 13 | 16 | 19),
        2 => (2221..=2720).contains(&p4) && len == 16 || p4 == 2131 && len == 15,
        5 => {
            (51..=55).contains(&p2) && len == 16
                || (p2 == 50 || (56..=59).contains(&p2)) && (12..=19).contains(&len)
        }
        3 => {
            (p2 == 34 || p2 == 37) && len == 15
                // JCB is 3528..=3589; Faker (and some test data) issues all of 35xx.
                || p2 == 35 && (16..=19).contains(&len)
                || ((300..=305).contains(&p3) || p2 == 36 || p2 == 38 || p2 == 39 || p3 == 309) && (14..=19).contains(&len)
        }
        6 => (12..=19).contains(&len),
        1 => p4 == 1800 && len == 15,
        // Legacy Maestro (0604xx).
        0 => p4 == 604 && (12..=19).contains(&len),
        _ => false,
    }
}

/// A phone number.
///
/// Unambiguous shapes stand alone: international (`+` or `00`, then 8..=15 digits), North
/// American in groups (`(415) 555-2671`, `1-800-555-0100`), national with a trunk `0` in
/// groups (`0114 496 0982`, `06 31 54 32 31`, `(030) 1234567`). Everything else that could be
/// a phone number (a bare `5551234567`, `02074960482`, `333 1234567`) is one only with a phone
/// word just before it, as Presidio's recognizers decide: order numbers look the same.
fn is_phone(t: &Token, context: &Context<'_>) -> bool {
    let d = t.digits();
    let lens = t.lens();
    // Parentheses only mark an area code or trunk prefix.
    let seps = t.separators() & !PAREN;
    let grouped = t.groups > 1;
    if seps & SLASH != 0 && !(grouped && d[0] == b'0') {
        return false; // dates like 12/03/2024
    }
    let intl_prefix =
        (2..=5).contains(&lens[0]) && d.len() > 2 && d.starts_with(b"00") && d[2] != b'0';
    if t.plus || intl_prefix {
        let n = if t.plus { d.len() } else { d.len() - 2 };
        return (8..=15).contains(&n) && d[usize::from(!t.plus) * 2] != b'0';
    }
    let nanp = |g: &[u8], d: &[u8]| {
        let area = if g.len() == 4 { &d[1..] } else { d };
        (matches!(g, [3, 3, 4]) || (matches!(g, [1, 3, 3, 4]) && d[0] == b'1'))
            && !b"01".contains(&area[0])
            && !b"01".contains(&area[3])
    };
    if grouped && seps & DOT == 0 && nanp(lens, d) {
        return true;
    }
    if grouped && seps == DOT && matches!(lens, [3, 3, 4]) && nanp(lens, d) {
        return true; // 843.435.3265
    }
    let national =
        d[0] == b'0' && d.get(1).is_some_and(|c| *c != b'0') && (9..=11).contains(&d.len());
    if grouped && national && lens.iter().all(|&l| l >= 2) {
        return true;
    }
    (8..=13).contains(&d.len()) && !is_date(t) && context.phone()
}

/// A calendar date written with digits (`2026-03-14`, `14.03.2026`, `03/14/2026`): never a
/// phone number, whatever words stand before it.
fn is_date(t: &Token) -> bool {
    let d = t.digits();
    let seps = t.separators();
    let num = |r: std::ops::Range<usize>| {
        d[r].iter()
            .fold(0u32, |acc, c| acc * 10 + u32::from(c - b'0'))
    };
    if !t.plus && matches!(seps, DASH | DOT | SLASH) {
        match t.lens() {
            [4, 2, 2] => calendar_date(num(0..4), num(4..6), num(6..8)),
            [2, 2, 4] => {
                let (a, b, year) = (num(0..2), num(2..4), num(4..8));
                calendar_date(year, b, a) || calendar_date(year, a, b)
            }
            _ => false,
        }
    } else {
        false
    }
}

pub(super) fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, c)| {
            let v = u32::from(c - b'0');
            if i % 2 == 1 {
                let dbl = v * 2;
                if dbl > 9 { dbl - 9 } else { dbl }
            } else {
                v
            }
        })
        .sum();
    sum.is_multiple_of(10)
}
