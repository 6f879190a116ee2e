//! US dollars as the spec writes them (decimal strings such as `"0.15"`) and as the gateway
//! counts them: whole picodollars (10^-12 USD) in a `u64`. Integers because budgets are
//! shared through Redis, whose atomic increments are integer; picodollars because the
//! cheapest published prices (fractions of a cent per million tokens) are still whole
//! picodollars per million tokens, and a `u64` still holds $18 million.

use std::fmt;

/// Picodollars in one dollar.
const PICO_PER_USD: u64 = 1_000_000_000_000;
/// Most fractional digits a decimal may have (one picodollar).
const MAX_FRACTION_DIGITS: usize = 12;
/// Largest whole-dollar part accepted: $10 million, far above any per-window budget, well
/// inside a `u64` of picodollars and Redis's signed 64-bit counters.
const MAX_WHOLE_USD: u64 = 10_000_000;

/// An amount of US dollars, in picodollars.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Usd(pub u64);

/// Why a decimal string is not an amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a dollar amount: write digits with an optional fraction of at most 12 digits, \
     at most 10000000 (e.g. \"0.15\")"
)]
pub struct UsdError(pub String);

impl Usd {
    /// Parses a non-negative decimal such as `"3"`, `"0.15"` or `"0.000125"`.
    pub fn parse(s: &str) -> Result<Usd, UsdError> {
        let err = || UsdError(s.chars().take(40).collect());
        let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
        let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || whole.len() > 8
            || !digits(whole)
            || !digits(fraction)
            || fraction.len() > MAX_FRACTION_DIGITS
            || (s.contains('.') && fraction.is_empty())
        {
            return Err(err());
        }
        let whole: u64 = whole.parse().map_err(|_| err())?;
        if whole > MAX_WHOLE_USD {
            return Err(err());
        }
        let mut frac: u64 = 0;
        for i in 0..MAX_FRACTION_DIGITS {
            let d = fraction
                .as_bytes()
                .get(i)
                .map_or(0, |b| u64::from(b - b'0'));
            frac = frac * 10 + d;
        }
        Ok(Usd(whole * PICO_PER_USD + frac))
    }

    /// What `tokens` cost at this price per million tokens (rounded down to a picodollar).
    pub fn for_tokens(self, tokens: u64) -> Usd {
        let pico = u128::from(self.0) * u128::from(tokens) / 1_000_000;
        Usd(u64::try_from(pico).unwrap_or(u64::MAX))
    }

    /// The amount in dollars, for display and metrics (not for sums that must be exact).
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / PICO_PER_USD as f64
    }

    /// Sum that stops at the largest amount instead of wrapping.
    pub fn saturating_add(self, other: Usd) -> Usd {
        Usd(self.0.saturating_add(other.0))
    }
}

impl fmt::Display for Usd {
    /// The shortest exact decimal: `0.15`, `3`, `0.000125`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / PICO_PER_USD, self.0 % PICO_PER_USD);
        if frac == 0 {
            return write!(f, "{whole}");
        }
        let digits = format!("{frac:012}");
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_exactly() {
        for (text, pico) in [
            ("0", 0),
            ("3", 3 * PICO_PER_USD),
            ("0.15", 150_000_000_000),
            ("0.000000000001", 1),
            ("10000000", 10_000_000 * PICO_PER_USD),
            ("2.50", 2_500_000_000_000),
        ] {
            let usd = Usd::parse(text).unwrap();
            assert_eq!(usd, Usd(pico), "{text}");
            assert_eq!(Usd::parse(&usd.to_string()).unwrap(), usd);
        }
        assert_eq!(Usd::parse("2.50").unwrap().to_string(), "2.5");
    }

    #[test]
    fn refuses_what_is_not_a_plain_amount() {
        for bad in [
            "",
            ".5",
            "5.",
            "-1",
            "+1",
            "1e3",
            "1,5",
            " 1",
            "0.0000000000001",
            "10000001",
            "99999999999999999999",
            "NaN",
        ] {
            assert!(Usd::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn prices_per_million_tokens() {
        let price = Usd::parse("0.15").unwrap();
        assert_eq!(price.for_tokens(1_000_000), price);
        assert_eq!(price.for_tokens(1000).to_string(), "0.00015");
        assert_eq!(Usd(u64::MAX).for_tokens(u64::MAX), Usd(u64::MAX));
    }
}
