//! Credits as exact decimals: `i64` micro-credits, read and written as decimal strings.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Micro-credits in one credit.
pub const MICROS_PER_CREDIT: i64 = 1_000_000;
/// Fractional digits a credit amount may carry.
pub const MAX_FRACTION_DIGITS: usize = 6;

/// An exact amount of credits, stored as micro-credits. May be negative (ledger
/// entries that take credits away); API fields that must be positive check it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Credits(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("is empty; send a decimal string such as \"12.5\"")]
    Empty,
    #[error(
        "is not a decimal number (\"{0}\"); send digits with an optional '.' and up to 6 decimals, such as \"12.5\""
    )]
    Malformed(String),
    #[error("has more than 6 decimal places (\"{0}\")")]
    TooPrecise(String),
    #[error("is too large")]
    Overflow,
    #[error("must not be negative")]
    Negative,
    #[error("must be greater than zero")]
    NotPositive,
    #[error("must be a decimal string or an integer, not a floating-point number")]
    Float,
}

impl Credits {
    pub const ZERO: Credits = Credits(0);
    /// The largest amount any single field may carry: 10^12 credits, far from i64's limit so
    /// that sums of many amounts cannot overflow either.
    pub const MAX: Credits = Credits(1_000_000_000_000 * MICROS_PER_CREDIT);

    pub const fn from_micros(micros: i64) -> Credits {
        Credits(micros)
    }

    pub fn from_whole(credits: i64) -> Result<Credits, AmountError> {
        credits
            .checked_mul(MICROS_PER_CREDIT)
            .map(Credits)
            .filter(|c| c.0.abs() <= Self::MAX.0)
            .ok_or(AmountError::Overflow)
    }

    pub const fn micros(self) -> i64 {
        self.0
    }

    pub fn is_positive(self) -> bool {
        self.0 > 0
    }

    pub fn checked_add(self, other: Credits) -> Option<Credits> {
        self.0.checked_add(other.0).map(Credits)
    }

    pub fn checked_sub(self, other: Credits) -> Option<Credits> {
        self.0.checked_sub(other.0).map(Credits)
    }

    pub fn abs(self) -> Credits {
        Credits(self.0.abs())
    }

    /// Parses `"12"`, `"12.5"`, `"-0.000001"`. No exponents, no `+`, no spaces, no bare dots.
    pub fn parse(text: &str) -> Result<Credits, AmountError> {
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = match digits.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (digits, None),
        };
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(whole) || fraction.is_some_and(|f| !all_digits(f)) {
            return Err(AmountError::Malformed(text.to_string()));
        }
        let fraction = fraction.unwrap_or("");
        if fraction.len() > MAX_FRACTION_DIGITS {
            return Err(AmountError::TooPrecise(text.to_string()));
        }
        let whole = whole.trim_start_matches('0');
        if whole.len() > 13 {
            return Err(AmountError::Overflow);
        }
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| AmountError::Overflow)?
        };
        let mut frac: i64 = 0;
        for position in 0..MAX_FRACTION_DIGITS {
            let digit = fraction.as_bytes().get(position).map_or(0, |b| i64::from(b - b'0'));
            frac = frac * 10 + digit;
        }
        let micros = whole
            .checked_mul(MICROS_PER_CREDIT)
            .and_then(|w| w.checked_add(frac))
            .filter(|m| *m <= Self::MAX.0)
            .ok_or(AmountError::Overflow)?;
        Ok(Credits(if negative { -micros } else { micros }))
    }

    /// Requires a strictly positive amount.
    pub fn positive(self) -> Result<Credits, AmountError> {
        if self.0 > 0 {
            Ok(self)
        } else {
            Err(AmountError::NotPositive)
        }
    }

    /// Requires a non-negative amount.
    pub fn non_negative(self) -> Result<Credits, AmountError> {
        if self.0 >= 0 {
            Ok(self)
        } else {
            Err(AmountError::Negative)
        }
    }
}

impl fmt::Display for Credits {
    /// Shortest exact decimal: `12`, `12.5`, `-0.000001`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let micros = MICROS_PER_CREDIT as u64;
        let (whole, frac) = (abs / micros, abs % micros);
        if frac == 0 {
            write!(f, "{sign}{whole}")
        } else {
            let frac = format!("{frac:06}");
            write!(f, "{sign}{whole}.{}", frac.trim_end_matches('0'))
        }
    }
}

impl Serialize for Credits {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Credits {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Credits, D::Error> {
        struct CreditsVisitor;
        impl Visitor<'_> for CreditsVisitor {
            type Value = Credits;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a decimal string such as \"12.5\" or an integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Credits, E> {
                Credits::parse(v).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Credits, E> {
                Credits::from_whole(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Credits, E> {
                let v = i64::try_from(v).map_err(|_| E::custom(AmountError::Overflow))?;
                Credits::from_whole(v).map_err(E::custom)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Credits, E> {
                Err(E::custom(AmountError::Float))
            }
        }
        deserializer.deserialize_any(CreditsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_exact_decimals() {
        assert_eq!(Credits::parse("12.5").unwrap().micros(), 12_500_000);
        assert_eq!(Credits::parse("0.000001").unwrap().micros(), 1);
        assert_eq!(Credits::parse("-3").unwrap().micros(), -3_000_000);
        assert_eq!(Credits::parse("007.10").unwrap().micros(), 7_100_000);
        assert_eq!(Credits::parse("1000000000000").unwrap(), Credits::MAX);
    }

    #[test]
    fn rejects_what_is_not_an_exact_decimal() {
        for bad in [
            "", "1e5", "+1", ".5", "1.", " 1", "1 ", "1,5", "0x10", "--1", "1.2.3", "NaN",
        ] {
            assert!(Credits::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(
            Credits::parse("1.0000001"),
            Err(AmountError::TooPrecise("1.0000001".into()))
        );
        assert_eq!(Credits::parse("1000000000000.000001"), Err(AmountError::Overflow));
        assert_eq!(Credits::parse("99999999999999999999999"), Err(AmountError::Overflow));
    }

    #[test]
    fn json_accepts_strings_and_integers_but_not_floats() {
        let c: Credits = serde_json::from_str("\"2.25\"").unwrap();
        assert_eq!(c.micros(), 2_250_000);
        let c: Credits = serde_json::from_str("7").unwrap();
        assert_eq!(c.micros(), 7_000_000);
        assert!(serde_json::from_str::<Credits>("1.5").is_err());
        assert!(serde_json::from_str::<Credits>("1e3").is_err());
        assert!(serde_json::from_str::<Credits>("18446744073709551615").is_err());
        assert_eq!(
            serde_json::to_string(&Credits::from_micros(10_000_000)).unwrap(),
            "\"10\""
        );
    }

    proptest! {
        #[test]
        fn display_then_parse_is_identity(micros in -Credits::MAX.micros()..=Credits::MAX.micros()) {
            let c = Credits::from_micros(micros);
            prop_assert_eq!(Credits::parse(&c.to_string()).unwrap(), c);
        }
    }
}
