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
            let found = has_context(self.before, &PHONE_WORDS);
            self.phone.set(Some(found));
            found
        })
    }

    pub(super) fn card(&self) -> bool {
        let known = self.card.get();
        known.unwrap_or_else(|| {
            let found = has_context(self.before, &CARD_WORDS);
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

/// Whether one of `words` (lowercase) starts at a word start in `context`.
fn has_context(context: &[u8], words: &[&[u8]]) -> bool {
    (0..context.len()).any(|i| {
        let c = context[i].to_ascii_lowercase();
        (i == 0 || !context[i - 1].is_ascii_alphanumeric())
            && !c.is_ascii_digit()
            && words.iter().any(|w| {
                w[0] == c
                    && context.len() - i >= w.len()
                    && context[i..i + w.len()].eq_ignore_ascii_case(w)
            })
    })
}
