//! Money as Stripe has it: integer minor units and a lowercase ISO currency code.

use serde::{Deserialize, Serialize};

/// Stripe's upper bound for one charge in minor units (8 digits).
pub const MAX_MINOR_UNITS: i64 = 99_999_999;

/// `usd`, `eur`, …: three lowercase ASCII letters.
pub fn currency(code: &str) -> Result<String, String> {
    let lower = code.to_ascii_lowercase();
    if lower.len() == 3 && lower.bytes().all(|b| b.is_ascii_lowercase()) {
        Ok(lower)
    } else {
        Err(format!("{code:?} is not a three-letter ISO currency code such as usd"))
    }
}

/// A positive price in minor units (cents for usd).
pub fn price(minor_units: i64) -> Result<i64, String> {
    if (1..=MAX_MINOR_UNITS).contains(&minor_units) {
        Ok(minor_units)
    } else {
        Err(format!(
            "must be a whole number of minor units from 1 to {MAX_MINOR_UNITS} (500 = 5.00 usd)"
        ))
    }
}

/// Formats minor units for people: `5.00 USD`. Zero-decimal currencies (jpy, krw, …) have none.
pub fn display(minor_units: i64, currency: &str) -> String {
    const ZERO_DECIMAL: [&str; 16] = [
        "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf",
    ];
    let code = currency.to_ascii_uppercase();
    if ZERO_DECIMAL.contains(&currency) {
        return format!("{minor_units} {code}");
    }
    let sign = if minor_units < 0 { "-" } else { "" };
    let abs = minor_units.unsigned_abs();
    format!("{sign}{}.{:02} {code}", abs / 100, abs % 100)
}

/// Status of a payment for credits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PaymentStatus {
    /// Created; not paid (yet).
    Pending,
    /// Paid, and its credits granted.
    Succeeded,
    /// The payment attempt failed (declined card, failed bank debit).
    Failed,
    /// The Checkout Session expired unpaid.
    Expired,
}

impl PaymentStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<PaymentStatus> {
        [
            PaymentStatus::Pending,
            PaymentStatus::Succeeded,
            PaymentStatus::Failed,
            PaymentStatus::Expired,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_prices_and_display() {
        assert_eq!(currency("USD").unwrap(), "usd");
        assert!(currency("us").is_err() && currency("u$d").is_err());
        assert!(price(0).is_err() && price(100_000_000).is_err() && price(500).is_ok());
        assert_eq!(display(500, "usd"), "5.00 USD");
        assert_eq!(display(1999, "eur"), "19.99 EUR");
        assert_eq!(display(500, "jpy"), "500 JPY");
    }
}
