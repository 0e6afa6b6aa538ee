//! Refunds and disputes: a paid payment's credits converge to what Stripe's money says.
//!
//! The arithmetic is stateless: from the refunded amount and the dispute, compute how many of
//! the payment's credits should be clawed back and how many frozen ([`targets`]), compare
//! with what was done before, and change only the difference ([`crate::book::Book`] applies
//! it to the account). Duplicated, reordered or missed events cannot change the result, only
//! delay it.

use serde::{Deserialize, Serialize};

use crate::account::Lot;
use crate::amount::Credits;
use crate::views::Payment;

/// Stripe's current view of a payment's money.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoneyState {
    /// Cumulative over every refund that has not failed (the charge's `amount_refunded`).
    pub amount_refunded: i64,
    /// The newest refund, referenced by the entries a refund causes.
    pub latest_refund: Option<String>,
    pub dispute: Option<DisputeState>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeState {
    pub id: String,
    /// Stripe's dispute status: `needs_response`, `under_review`, `won`, `lost`, `warning_*`.
    pub status: String,
    pub amount: i64,
}

impl DisputeState {
    pub fn is_open(&self) -> bool {
        matches!(
            self.status.as_str(),
            "needs_response" | "under_review" | "warning_needs_response" | "warning_under_review"
        )
    }

    pub fn is_lost(&self) -> bool {
        self.status == "lost"
    }
}

/// What a convergence changed, in credits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Convergence {
    pub clawed_back: Credits,
    pub restored: Credits,
    pub frozen: Credits,
    pub unfrozen: Credits,
}

impl Convergence {
    pub fn changed(&self) -> bool {
        *self != Convergence::default()
    }

    /// This convergence and then `next`: every movement of both.
    pub fn then(self, next: Convergence) -> Convergence {
        let sum = |a: Credits, b: Credits| a.checked_add(b).expect("movements of one payment fit in i64");
        Convergence {
            clawed_back: sum(self.clawed_back, next.clawed_back),
            restored: sum(self.restored, next.restored),
            frozen: sum(self.frozen, next.frozen),
            unfrozen: sum(self.unfrozen, next.unfrozen),
        }
    }
}

/// Credits frozen from one grant for a payment's open dispute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Freeze {
    pub payment: String,
    pub customer: String,
    /// The grant they came from (its remaining as it is now is irrelevant: only its place in
    /// the spending order, to return them to it).
    pub lot: Lot,
    pub amount: Credits,
}

/// A payment as the writer decides on it: the payment and what was done to its credits.
#[derive(Clone, Debug, PartialEq)]
pub struct PaymentRecord {
    pub payment: Payment,
    pub amount_refunded: i64,
    pub dispute_id: Option<String>,
    pub dispute_status: Option<String>,
    /// The clawback target reached so far.
    pub clawed_back: Credits,
    /// The freeze target reached so far.
    pub frozen_target: Credits,
    /// What is frozen now, grant by grant.
    pub freezes: Vec<Freeze>,
}

/// `credits × part / whole`, rounded down: rounding never takes more than was granted.
pub fn proportional(credits: Credits, part: i64, whole: i64) -> Credits {
    assert!(whole > 0 && part >= 0, "a proportion of a positive whole");
    let part = part.min(whole);
    let micros = i128::from(credits.micros()) * i128::from(part) / i128::from(whole);
    Credits::from_micros(micros as i64)
}

/// (clawed back, frozen) targets for a payment in this state: refunds and a lost dispute
/// claw back their share of the credits; an open dispute freezes its share of the rest.
pub fn targets(payment: &Payment, state: &MoneyState) -> (Credits, Credits) {
    let lost = state.dispute.as_ref().filter(|d| d.is_lost()).map_or(0, |d| d.amount);
    let clawed = proportional(
        payment.credits,
        state.amount_refunded.saturating_add(lost),
        payment.amount,
    );
    let frozen = match &state.dispute {
        Some(d) if d.is_open() => {
            let wanted = proportional(payment.credits, d.amount, payment.amount);
            wanted.min(Credits::from_micros(payment.credits.micros() - clawed.micros()))
        }
        _ => Credits::ZERO,
    };
    (clawed, frozen)
}

/// The reference of the entries a clawback writes: a lost dispute is the newer cause when
/// both apply.
pub fn clawback_reference(state: &MoneyState) -> Option<String> {
    match &state.dispute {
        Some(d) if d.is_lost() => Some(d.id.clone()),
        _ => state.latest_refund.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proportions_round_down_and_never_exceed_the_grant() {
        let credits = Credits::from_micros(100_000_000);
        assert_eq!(proportional(credits, 333, 1000).micros(), 33_300_000);
        assert_eq!(proportional(Credits::from_micros(10), 1, 3).micros(), 3);
        assert_eq!(proportional(credits, 5000, 1000), credits, "never more than the whole");
        // Three partial refunds summing to the whole claw back exactly the whole.
        let whole = 999;
        let clawed: Vec<i64> = [333, 666, 999]
            .iter()
            .map(|s| proportional(Credits::from_micros(10), *s, whole).micros())
            .collect();
        assert_eq!(clawed, [3, 6, 10]);
    }
}
