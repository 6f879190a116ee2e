//! Context words: what the text just before an ambiguous number says it is (a phone number, a
//! payment card), in English, German, French, Spanish, Italian and Dutch, as Presidio's
//! recognizers use context.

/// The text just before a token, with its context words looked up at most once each.
pub(super) struct Context<'a> {
    before: &'a [u8],
    phone: std::cell::Cell<Option<bool>>,
    card: std::cell::Cell<Option<bool>>,
}

impl<'a> Context<'a> {
    pub(super) fn new(before: &'a [u8]) -> Self {
        Context {
            before,
            phone: std::cell::Cell::new(None),
            card: std::cell::Cell::new(None),
        }
    }

    pub(super) fn phone(&self) -> bool {
        let known = self.phone.get();
        known.unwrap_or_else(|| {
            let found = has_context(self.before, &PHONE_WORDS, &PHONE_FIRST);
            self.phone.set(Some(found));
            found
        })
    }

    pub(super) fn card(&self) -> bool {
        let known = self.card.get();
        known.unwrap_or_else(|| {
            let found = has_context(self.before, &CARD_WORDS, &CARD_FIRST);
            self.card.set(Some(found));
            found
        })
    }
}

/// Words that, just before a number, say it is a phone number (stems, ASCII case-insensitive,
/// at a word start): English, German, French, Spanish, Italian and Dutch.
const PHONE_WORDS: [&[u8]; 25] = [
    b"phone",
    b"tel",
    b"call",
    b"mobil",
    b"cell",
    b"fax",
    b"contact",
    b"reach",
    b"whatsapp",
    b"sms",
    b"text me",
    b"dial",
    b"ring",
    b"rang",
    b"handy",
    b"ruf",
    b"portable",
    b"joindre",
    b"appel",
    b"ll\xc3\xa1m",
    b"llam",
    b"m\xc3\xb3vil",
    b"chiam",
    b"bel ",
    b"numero di",
];

/// Words that, just before a number, say it is a payment card.
const CARD_WORDS: [&[u8]; 20] = [
    b"card",
    b"karte",
    b"carte",
    b"tarjeta",
    b"carta",
    b"kaart",
    b"visa",
    b"mastercard",
    b"amex",
    b"american express",
    b"maestro",
    b"jcb",
    b"discover",
    b"diners",
    b"unionpay",
    b"cvv",
    b"expir",
    b"pay with",
    b"charge",
    b"kreditkarte",
];

/// Whether one of `words` (lowercase) starts at a word start in `context`. At a word start
/// only the words beginning with its letter are compared (`first` holds them as bits): this
/// runs for every ambiguous number, so it must stay a short pass over the bytes.
fn has_context(context: &[u8], words: &[&[u8]], first: &[u32; 256]) -> bool {
    let mut prev_alnum = false;
    for (i, &c) in context.iter().enumerate() {
        let mut candidates = if prev_alnum { 0 } else { first[usize::from(c)] };
        prev_alnum = c.is_ascii_alphanumeric();
        while candidates != 0 {
            let w = words[candidates.trailing_zeros() as usize];
            if context.len() - i >= w.len() && context[i..i + w.len()].eq_ignore_ascii_case(w) {
                return true;
            }
            candidates &= candidates - 1;
        }
    }
    false
}

/// For each byte, the words of `words` (at most 32) that start with it in either case, as bits.
const fn first_letters(words: &[&[u8]]) -> [u32; 256] {
    assert!(words.len() <= 32);
    let mut table = [0; 256];
    let mut k = 0;
    while k < words.len() {
        table[words[k][0] as usize] |= 1 << k;
        table[words[k][0].to_ascii_uppercase() as usize] |= 1 << k;
        k += 1;
    }
    table
}

const PHONE_FIRST: [u32; 256] = first_letters(&PHONE_WORDS);
const CARD_FIRST: [u32; 256] = first_letters(&CARD_WORDS);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_words_count_only_at_a_word_start() {
        assert!(has_context(
            b"please Call me on",
            &PHONE_WORDS,
            &PHONE_FIRST
        ));
        assert!(has_context(
            b"ll\xc3\xa1mame al",
            &PHONE_WORDS,
            &PHONE_FIRST
        ));
        assert!(has_context(b"(tel", &PHONE_WORDS, &PHONE_FIRST));
        assert!(!has_context(
            b"recall the order",
            &PHONE_WORDS,
            &PHONE_FIRST
        ));
        assert!(!has_context(b"te", &PHONE_WORDS, &PHONE_FIRST));
        assert!(has_context(b"Visa", &CARD_WORDS, &CARD_FIRST));
        assert!(!has_context(b"the revisa", &CARD_WORDS, &CARD_FIRST));
    }
}
