//! Numbers as people read them on a page. The API keeps exact decimal strings; pages round
//! headline figures to two decimals and keep tiny amounts exact rather than show `0.00`.

use creditd_domain::Credits;

/// `1,234.5`, `-3`, `0.000125`: thousands separated, at most two decimals unless the amount
/// is smaller than that can show. Rounds half away from zero.
pub fn credits(amount: Credits) -> String {
    let micros = amount.micros();
    let abs = micros.unsigned_abs();
    if abs != 0 && abs < 5_000 {
        return amount.to_string();
    }
    let hundredths = (abs + 5_000) / 10_000;
    let (whole, frac) = (hundredths / 100, hundredths % 100);
    let sign = if micros < 0 && hundredths != 0 { "-" } else { "" };
    let fraction = match frac {
        0 => String::new(),
        f if f % 10 == 0 => format!(".{}", f / 10),
        f => format!(".{f:02}"),
    };
    format!("{sign}{}{fraction}", thousands(whole))
}

/// The exact amount with thousands separated: `1,234.000001`.
pub fn credits_exact(amount: Credits) -> String {
    let text = amount.to_string();
    let (sign, rest) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.as_str()),
    };
    let (whole, fraction) = match rest.split_once('.') {
        Some((w, f)) => (w, format!(".{f}")),
        None => (rest, String::new()),
    };
    let whole: u64 = whole.parse().unwrap_or(0);
    format!("{sign}{}{fraction}", thousands(whole))
}

/// `+12.5` / `-1.25`: a ledger movement with its sign always shown.
pub fn signed_credits(amount: Credits) -> String {
    let exact = credits_exact(amount);
    if amount.is_positive() {
        format!("+{exact}")
    } else {
        exact.replacen('-', "−", 1)
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(text: &str) -> Credits {
        Credits::parse(text).unwrap()
    }

    #[test]
    fn headline_credits_round_to_two_decimals_but_never_hide_small_amounts() {
        assert_eq!(credits(c("0")), "0");
        assert_eq!(credits(c("1234567.5")), "1,234,567.5");
        assert_eq!(credits(c("12.345")), "12.35");
        assert_eq!(credits(c("12.344999")), "12.34");
        assert_eq!(credits(c("-3.999")), "-4");
        assert_eq!(credits(c("0.000125")), "0.000125");
        assert_eq!(credits(c("0.005")), "0.01");
        assert_eq!(credits(c("100")), "100");
    }

    #[test]
    fn exact_and_signed_credits_keep_every_digit() {
        assert_eq!(credits_exact(c("1234.000001")), "1,234.000001");
        assert_eq!(credits_exact(c("-1000")), "-1,000");
        assert_eq!(signed_credits(c("12.5")), "+12.5");
        assert_eq!(signed_credits(c("-1.25")), "−1.25");
    }
}
