//! Rate cards: a feature's price in credits per `per` units of each unit it is measured in
//! (`input_tokens`, `output_tokens`, `images`…), and the exact price of a request.
//!
//! A request's credits are Σ units × price / per, computed exactly (integers, no floating
//! point) and rounded up to the micro-credit once for the whole request, never per unit: the
//! charge is never below the true price and never a micro-credit or more above it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::amount::Credits;

/// The default `per`: prices are credits per unit.
pub const DEFAULT_PER: i64 = 1;
/// The largest `per` (prices per billion units at most).
pub const MAX_PER: i64 = 1_000_000_000;
/// Units a feature may be measured in.
pub const MAX_UNITS_PER_FEATURE: usize = 20;
/// The largest quantity of one unit in one request.
pub const MAX_QUANTITY: i64 = 1_000_000_000_000;

/// What a feature costs: credits per `per` units, for each unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateCard {
    pub per: i64,
    /// Unit name → credits per `per` of it.
    pub prices: BTreeMap<String, Credits>,
}

/// Why units could not be priced; `param` names the request field at fault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{param}: {message}")]
pub struct PricingError {
    pub param: String,
    pub message: String,
}

fn error(param: impl Into<String>, message: impl Into<String>) -> PricingError {
    PricingError {
        param: param.into(),
        message: message.into(),
    }
}

/// A unit name: 1–64 of `a–z A–Z 0–9 _ - .`.
pub fn unit_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("unit names must be 1 to 64 characters".into());
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)) {
        return Err("unit names may contain only letters, digits and _ - .".into());
    }
    Ok(())
}

impl RateCard {
    /// Validates a rate card as an operator gives it; errors name the field.
    pub fn new(per: i64, prices: BTreeMap<String, Credits>) -> Result<RateCard, PricingError> {
        if !(1..=MAX_PER).contains(&per) {
            return Err(error("per", format!("must be a whole number from 1 to {MAX_PER}")));
        }
        if prices.is_empty() || prices.len() > MAX_UNITS_PER_FEATURE {
            return Err(error(
                "prices",
                format!("must price 1 to {MAX_UNITS_PER_FEATURE} units"),
            ));
        }
        for (unit, price) in &prices {
            unit_name(unit).map_err(|m| error("prices", m))?;
            if !price.is_positive() {
                return Err(error(format!("prices.{unit}"), "must be greater than zero"));
            }
        }
        Ok(RateCard { per, prices })
    }

    /// The exact price of `units`, rounded up to the micro-credit once. Every unit must be on
    /// the card; quantities are whole and not negative; the total must be positive.
    pub fn price(&self, units: &BTreeMap<String, i64>) -> Result<Credits, PricingError> {
        if units.is_empty() {
            return Err(error("units", "must name at least one unit"));
        }
        // Micro-credits × units, before dividing by `per`: at most 20 × 10^12 × 10^18, far
        // inside i128.
        let mut total: i128 = 0;
        for (unit, &quantity) in units {
            let price = self.prices.get(unit).ok_or_else(|| {
                let known: Vec<&str> = self.prices.keys().map(String::as_str).collect();
                error(
                    format!("units.{unit}"),
                    format!("is not a unit of this feature (its units: {})", known.join(", ")),
                )
            })?;
            if !(0..=MAX_QUANTITY).contains(&quantity) {
                return Err(error(
                    format!("units.{unit}"),
                    format!("must be a whole number from 0 to {MAX_QUANTITY}"),
                ));
            }
            total += i128::from(quantity) * i128::from(price.micros());
        }
        let per = i128::from(self.per);
        // Ceiling division of a non-negative numerator.
        let micros = (total + per - 1) / per;
        if micros == 0 {
            return Err(error("units", "must add up to more than zero credits"));
        }
        i64::try_from(micros)
            .ok()
            .map(Credits::from_micros)
            .filter(|c| *c <= Credits::MAX)
            .ok_or_else(|| error("units", "price more than the largest amount (10^12 credits)"))
    }
}

/// A priced request as recorded with its usage: the units, the prices it was charged at, and
/// the amount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Priced {
    /// Unit name → quantity.
    pub units: BTreeMap<String, i64>,
    /// Unit name → credits per `per` units, as charged.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    pub prices: BTreeMap<String, Credits>,
    pub per: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "0.0065"))]
    pub amount: Credits,
}

impl Priced {
    /// Prices `units` on `card`, keeping only the prices of the units used.
    pub fn new(card: &RateCard, units: BTreeMap<String, i64>) -> Result<Priced, PricingError> {
        let amount = card.price(&units)?;
        let prices = units
            .keys()
            .map(|u| (u.clone(), card.prices[u]))
            .collect::<BTreeMap<_, _>>();
        Ok(Priced {
            units,
            prices,
            per: card.per,
            amount,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn card(per: i64, prices: &[(&str, &str)]) -> RateCard {
        let prices = prices
            .iter()
            .map(|(u, p)| (u.to_string(), Credits::parse(p).unwrap()))
            .collect();
        RateCard::new(per, prices).unwrap()
    }

    fn units(list: &[(&str, i64)]) -> BTreeMap<String, i64> {
        list.iter().map(|(u, q)| (u.to_string(), *q)).collect()
    }

    #[test]
    fn the_issue_examples() {
        let gpt4o = card(1_000_000, &[("input_tokens", "2.5"), ("output_tokens", "10")]);
        let both = gpt4o
            .price(&units(&[("input_tokens", 1200), ("output_tokens", 350)]))
            .unwrap();
        assert_eq!(both.to_string(), "0.0065");
        // 2.5 micro-credits, rounded up once.
        let one = gpt4o.price(&units(&[("input_tokens", 1)])).unwrap();
        assert_eq!(one.to_string(), "0.000003");
    }

    #[test]
    fn rounding_is_once_per_request_not_per_unit() {
        let card = card(1_000_000, &[("a", "0.5"), ("b", "0.5")]);
        // 0.5 + 0.5 micro-credits: one micro-credit, not two.
        assert_eq!(card.price(&units(&[("a", 1), ("b", 1)])).unwrap().micros(), 1);
    }

    #[test]
    fn refuses_what_cannot_be_priced() {
        let card = card(1000, &[("images", "4")]);
        assert_eq!(card.price(&units(&[("videos", 1)])).unwrap_err().param, "units.videos");
        assert_eq!(card.price(&units(&[("images", -1)])).unwrap_err().param, "units.images");
        assert_eq!(card.price(&units(&[("images", 0)])).unwrap_err().param, "units");
        assert_eq!(card.price(&BTreeMap::new()).unwrap_err().param, "units");
        assert!(RateCard::new(0, BTreeMap::new()).is_err());
        let zero = [("x".to_string(), Credits::ZERO)].into_iter().collect();
        assert_eq!(RateCard::new(1, zero).unwrap_err().param, "prices.x");
        let bad_name = [("a b".to_string(), Credits::from_micros(1))].into_iter().collect();
        assert_eq!(RateCard::new(1, bad_name).unwrap_err().param, "prices");
    }

    #[test]
    fn refuses_a_price_above_the_largest_amount() {
        let card = card(1, &[("x", "1000000000000")]);
        assert_eq!(card.price(&units(&[("x", 2)])).unwrap_err().param, "units");
    }

    fn gcd(a: u128, b: u128) -> u128 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }

    /// The true price in micro-credits as a reduced fraction, summed term by term.
    fn exact(card: &RateCard, units: &BTreeMap<String, i64>) -> (u128, u128) {
        let (mut num, mut den) = (0u128, 1u128);
        for (unit, &q) in units {
            let (tn, td) = (q as u128 * card.prices[unit].micros() as u128, card.per as u128);
            let g = gcd(tn, td).max(1);
            let (tn, td) = (tn / g, td / g);
            let l = den / gcd(den, td) * td;
            num = num * (l / den) + tn * (l / td);
            den = l;
            let g = gcd(num, den).max(1);
            num /= g;
            den /= g;
        }
        (num, den)
    }

    proptest! {
        #[test]
        fn never_below_the_true_price_and_less_than_a_micro_credit_above(
            per in prop_oneof![Just(1i64), Just(1000), Just(1_000_000), 1i64..=MAX_PER],
            prices in prop::collection::btree_map("[a-e]", 1i64..=100_000_000_000, 1..5),
            picks in prop::collection::vec((0usize..5, 0i64..=1_000_000_000), 1..5),
        ) {
            let card = RateCard::new(per, prices.into_iter().map(|(u, p)| (u, Credits::from_micros(p))).collect()).unwrap();
            let names: Vec<String> = card.prices.keys().cloned().collect();
            let units: BTreeMap<String, i64> = picks.iter().map(|(i, q)| (names[i % names.len()].clone(), *q)).collect();
            let (num, den) = exact(&card, &units);
            match card.price(&units) {
                Ok(charged) => {
                    let charged = charged.micros() as u128;
                    // charged ≥ num/den and charged − 1 < num/den.
                    prop_assert!(charged * den >= num, "below the true price");
                    prop_assert!((charged - 1) * den < num, "a micro-credit or more above the true price");
                }
                Err(e) => {
                    // Only a zero total, or one beyond the largest amount, is refused.
                    let too_big = num > Credits::MAX.micros() as u128 * den;
                    prop_assert!(num == 0 || too_big, "refused {units:?}: {e}");
                }
            }
        }
    }
}
