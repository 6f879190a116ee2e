//! Scanners for personal data in free text: e-mail addresses, phone numbers, US SSNs, payment
//! card numbers (Luhn-checked), IBANs (mod-97 checked) and configured terms.
//!
//! Each scanner works on bytes in one pass over its candidates, allocates nothing, and is
//! written for few false positives in prose, code and JSON: structure first (grouping,
//! separators, boundaries), then a checksum where one exists.

mod context;
mod date;
mod number;
mod skip;

use number::{Tokens, number_at, short_run_end};
use skip::Cursor;

/// Kinds of personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An e-mail address.
    Email,
    /// A phone number.
    Phone,
    /// A US social security number.
    Ssn,
    /// A payment card number.
    Card,
    /// An international bank account number.
    Iban,
    /// A configured term.
    Term,
}

impl Kind {
    /// Every kind, in reporting order.
    pub const ALL: [Kind; 6] = [
        Kind::Email,
        Kind::Phone,
        Kind::Ssn,
        Kind::Card,
        Kind::Iban,
        Kind::Term,
    ];

    /// Name used in configuration and annotations.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Phone => "phone",
            Kind::Ssn => "ssn",
            Kind::Card => "card",
            Kind::Iban => "iban",
            Kind::Term => "term",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of kinds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Kinds(u8);

impl Kinds {
    /// Every kind.
    pub fn all() -> Self {
        Kinds(Kind::ALL.iter().fold(0, |acc, k| acc | k.bit()))
    }

    /// Adds a kind.
    pub fn insert(&mut self, k: Kind) {
        self.0 |= k.bit();
    }

    /// Whether `k` is in the set.
    pub fn contains(self, k: Kind) -> bool {
        self.0 & k.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kinds, in reporting order.
    pub fn iter(self) -> impl Iterator<Item = Kind> {
        Kind::ALL.into_iter().filter(move |k| self.contains(*k))
    }
}

/// Byte classes: most bytes of prose are `BORING` and never reach the table (see
/// [`skip`]). Capitals are boring too: an IBAN is looked for at its first check digit, so
/// ordinary capitalised words cost nothing.
const BORING: u8 = 0;
const AT: u8 = 1;
const NUMERIC: u8 = 2;

const CLASSES: [u8; 256] = {
    let mut t = [BORING; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = match c as u8 {
            b'@' => AT,
            b'0'..=b'9' | b'+' | b'(' => NUMERIC,
            _ => BORING,
        };
        c += 1;
    }
    t
};

/// Scans `text` for the kinds in `enabled`; `terms` must be lowercase. One pass over the
/// bytes, stopping early once everything enabled has been found.
pub fn scan(text: &str, enabled: Kinds, terms: &[String]) -> Kinds {
    scan_with(text, enabled, terms, true)
}

/// [`scan`], with its shortcuts (short numbers and standalone dates passed over unread) on or
/// off: off only to test that they lose nothing.
fn scan_with(text: &str, enabled: Kinds, terms: &[String], shortcuts: bool) -> Kinds {
    let b = text.as_bytes();
    let mut found = Kinds::default();
    let numbers_wanted = enabled.contains(Kind::Ssn)
        || enabled.contains(Kind::Card)
        || enabled.contains(Kind::Phone);
    let all_but_terms = enabled.0 & !Kind::Term.bit();
    let mut cursor = Cursor::new(b);
    let mut tokens = Tokens::new(shortcuts);
    let mut i = 0;
    while i < b.len() {
        i = cursor.next(i);
        let Some(&c) = b.get(i) else { break };
        match CLASSES[c as usize] {
            BORING => i += 1,
            AT => {
                if enabled.contains(Kind::Email) && email_at(b, i) {
                    found.insert(Kind::Email);
                }
                i += 1;
            }
            NUMERIC => {
                // An IBAN's country code and first check digit: `GB8` of `GB82 WEST...`.
                if enabled.contains(Kind::Iban)
                    && !found.contains(Kind::Iban)
                    && i >= 2
                    && (i == 2 || !is_word(b[i - 3]))
                    && iban_at(b, i - 2)
                {
                    found.insert(Kind::Iban);
                }
                i = if !numbers_wanted {
                    i + 1
                } else {
                    match short_run_end(b, i).filter(|_| shortcuts) {
                        Some(end) => end,
                        None => number_at(b, i, enabled, &mut found, &mut tokens),
                    }
                }
            }
            _ => i += 1,
        }
        if found.0 & all_but_terms == all_but_terms {
            break;
        }
    }
    if enabled.contains(Kind::Term) && !terms.is_empty() && has_term(b, terms) {
        found.insert(Kind::Term);
    }
    found
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// An e-mail address around the `@` at `at`.
fn email_at(b: &[u8], at: usize) -> bool {
    let local = |c: u8| c.is_ascii_alphanumeric() || b"._%+-".contains(&c);
    let domain = |c: u8| c.is_ascii_alphanumeric() || c == b'.' || c == b'-';
    let mut start = at;
    while start > 0 && local(b[start - 1]) {
        start -= 1;
    }
    let mut end = at + 1;
    while end < b.len() && domain(b[end]) {
        end += 1;
    }
    let (user, host) = (&b[start..at], &b[at + 1..end]);
    let host = host.strip_suffix(b".").unwrap_or(host); // a sentence's full stop
    if user.is_empty() || user[0] == b'.' || user.ends_with(b".") || host.len() < 4 {
        return false;
    }
    if host.starts_with(b"-") || host.starts_with(b".") || host.windows(2).any(|w| w == b"..") {
        return false;
    }
    let Some(dot) = host.iter().rposition(|c| *c == b'.') else {
        return false;
    };
    let tld = &host[dot + 1..];
    dot > 0 && tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic)
}

/// An IBAN at `start`: 15..=34 alphanumerics, optionally in space-separated groups of four,
/// with a valid mod-97 check.
fn iban_at(b: &[u8], start: usize) -> bool {
    // A country code and two check digits: most capitals in prose fail here.
    match b.get(start..start + 4) {
        Some([_, c, d1, d2])
            if c.is_ascii_alphabetic() && d1.is_ascii_digit() && d2.is_ascii_digit() => {}
        _ => return false,
    }
    let mut chars = [0u8; 34];
    let mut n = 0;
    let mut i = start;
    let mut in_group = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_alphanumeric() {
            if n == chars.len() {
                return false;
            }
            chars[n] = c.to_ascii_uppercase();
            n += 1;
            in_group += 1;
        } else if c == b' ' && in_group == 4 && b.get(i + 1).is_some_and(u8::is_ascii_alphanumeric)
        {
            in_group = 0;
        } else {
            break;
        }
        i += 1;
    }
    if !(15..=34).contains(&n) {
        return false;
    }
    // Move the first four characters to the end, letters become 10..35, then mod 97.
    let mut rem: u32 = 0;
    for &c in chars[4..n].iter().chain(&chars[..4]) {
        rem = if c.is_ascii_digit() {
            (rem * 10 + u32::from(c - b'0')) % 97
        } else {
            (rem * 100 + u32::from(c - b'A') + 10) % 97
        };
    }
    rem == 1
}

fn has_term(b: &[u8], terms: &[String]) -> bool {
    terms.iter().filter(|t| !t.is_empty()).any(|term| {
        let t = term.as_bytes();
        b.windows(t.len()).enumerate().any(|(i, w)| {
            w.eq_ignore_ascii_case(t)
                && (i == 0 || !is_word(b[i - 1]))
                && b.get(i + t.len()).is_none_or(|c| !is_word(*c))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::number::luhn;
    use super::*;

    fn kinds(text: &str) -> Vec<&'static str> {
        scan(text, Kinds::all(), &["project falcon".to_owned()])
            .iter()
            .map(Kind::name)
            .collect()
    }

    #[test]
    fn finds_each_kind() {
        assert_eq!(
            kinds("mail me at jane.doe+x@example.co.uk today"),
            ["email"]
        );
        assert_eq!(kinds("call (555) 123-4567 or 555.123.4567"), ["phone"]);
        assert_eq!(kinds("call +44 20 7946 0958"), ["phone"]);
        assert_eq!(kinds("SSN 078-05-1120"), ["ssn"]);
        assert_eq!(kinds("card 4111 1111 1111 1111 exp 12/29"), ["card"]);
        assert_eq!(kinds("card 4111111111111111"), ["card"]);
        assert_eq!(kinds("IBAN GB82 WEST 1234 5698 7654 32"), ["iban"]);
        assert_eq!(kinds("IBAN DE89370400440532013000."), ["iban"]);
        assert_eq!(kinds("about Project Falcon, internally"), ["term"]);
    }

    #[test]
    fn ignores_lookalikes() {
        for text in [
            "version 1.2.3 and 10.0.0.1 at 2024-01-15",
            "order 4111 1111 1111 1112 failed the checksum",
            "ssn-like 000-12-3456 and 666-12-3456 and 900-12-3456",
            "user@localhost and foo@bar",
            "a timestamp 1700000000123 and id 5551234567",
            "GB82 WEST 1234 5698 7654 33 (bad check digits)",
            "falconry is not project falcons",
            "matrix = [[1, 2], [3, 4]]; x = 555-1234;",
        ] {
            assert_eq!(kinds(text), Vec::<&str>::new(), "{text}");
        }
    }

    #[test]
    fn numbers_next_to_other_numbers_and_punctuation_are_still_seen() {
        for (text, kind) in [
            ("ref 12 078-05-1120 ok", "ssn"),
            ("SSN(078-05-1120)", "ssn"),
            ("b :+078-05-1120", "ssn"),
            ("b -078-05-1120", "ssn"),
            ("SSN-078-05-1120", "ssn"),
            ("SSN.078-05-1120", "ssn"),
            ("P78-078-05-1120(12)", "ssn"),
            ("SSN 078-05-1120(0)rsv", "ssn"),
            ("x 1120 120 (1120 078-05-1120", "ssn"),
            ("x 8888888888888888888888888888 078-05-1120", "ssn"),
            (
                "x 888888888888888888888888888888888888888888888888888885-1120 078-05-1120",
                "ssn",
            ),
            ("id 555 078-05-1120", "ssn"),
            // Found by the body_classification fuzz target: not an extension `#078`.
            ("=YSYNYYYYYYYY'0#078-05-1120", "ssn"),
            ("ref 12 x078-05-1120", "ssn"),
            ("call 843.435.3265x02014 now", "phone"),
            ("(665)615-0556x130", "phone"),
            ("+1-308-937-4071x8818", "phone"),
            ("+49 (0) 4628 194821", "phone"),
            ("+33 (0)1 81 93 78 65", "phone"),
            ("appelle le 06 31 54 32 31", "phone"),
            ("Telefon 02074960482", "phone"),
            ("Maestro 676155879403", "card"),
            ("JCB 213178852869541", "card"),
        ] {
            assert_eq!(kinds(text), [kind], "{text}");
        }
        // Run into another number, it is still personal data (here read as a phone number).
        assert!(!kinds("SSN 078-05-078-05-1120").is_empty());
        assert!(!kinds("ref 1120 12 078-05-110 1120 078-05-1120 end").is_empty());
        for text in [
            "order 5551234567 shipped",
            "ISBN 0-01-606378-3",
            "invoice 676155879403 paid",
            "on 12/03/2024 at 10:30",
            "call me on 2026-03-14 or 14.03.2026",
            "ring us 03/14/2026",
        ] {
            assert_eq!(kinds(text), Vec::<&str>::new(), "{text}");
        }
    }

    #[test]
    fn the_fast_skip_agrees_with_the_class_table() {
        use super::skip::interesting;
        for c in 0..=255u8 {
            assert_eq!(interesting(c), CLASSES[c as usize] != BORING, "byte {c}");
        }
        let long = format!("{}call (415) 555-2671", "lorem ipsum ".repeat(20));
        assert_eq!(kinds(&long), ["phone"], "found after many skipped chunks");
    }

    /// The shortcuts lose nothing: on text dense with digits, dates, separators,
    /// capitals and `@`, whatever kinds are enabled, scanning with it finds personal data
    /// wherever scanning without it does. (It may find more, or another kind first: reading a
    /// short number whole can swallow what follows it as an extension, as in `0x078-05-1120`,
    /// where the skip reads on and sees the SSN.)
    #[test]
    fn the_shortcuts_lose_nothing() {
        use proptest::prelude::*;
        let alphabet = "0123456789 0123456789 -.()/+x#@ABEGNXabcelt,";
        let piece = prop_oneof![
            proptest::sample::select(alphabet.chars().collect::<Vec<_>>()).prop_map(String::from),
            proptest::sample::select(vec![
                "078-05-1120",
                "4111 1111 1111 1111",
                "(415) 555-2671",
                "+49 (0) 4628 194821",
                "call ",
                "card ",
                "GB82 WEST 1234 5698 7654 32",
                "a@example.com",
                "5551234567",
                "2026-03-14",
                "14.03.2026",
                "03/14/2026",
                "1999-12-31",
                "31/12/1999",
                " ext. ",
            ])
            .prop_map(String::from),
        ];
        proptest!(ProptestConfig::with_cases(8000), |(parts in proptest::collection::vec(piece, 0..60))| {
            let text = parts.concat();
            let terms = ["ab".to_owned()];
            let alone = Kind::ALL.map(|k| Kinds(k.bit()));
            for enabled in alone.into_iter().chain([Kinds::all()]) {
                let fast = scan_with(&text, enabled, &terms, true);
                let slow = scan_with(&text, enabled, &terms, false);
                prop_assert!(slow.is_empty() || !fast.is_empty(), "{:?} in {}", slow, text);
            }
        });
    }

    #[test]
    fn luhn_and_mod97() {
        assert!(luhn(b"79927398713"));
        assert!(!luhn(b"79927398710"));
        assert!(iban_at(b"NL91ABNA0417164300", 0));
        assert!(!iban_at(b"NL91ABNA0417164301", 0));
    }
}
