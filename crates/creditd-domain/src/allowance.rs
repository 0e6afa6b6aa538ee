//! Subscription allowances: each paid invoice grants its period's credits exactly once
//! (keyed by invoice), expiring at the period's end. A new period's allowance replaces the
//! previous one — what is left of it expires, except up to the plan's rollover cap, which is
//! carried into the new grant; a mid-period upgrade tops this period up to the new plan.

use serde::{Deserialize, Serialize};

use crate::amount::Credits;
use crate::views::Plan;

/// Why an invoice grants credits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AllowanceKind {
    /// A new period (first invoice or renewal): the plan's credits, plus rollover.
    Period,
    /// A mid-period plan change: the difference to what this period already granted.
    Change,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AllowanceRequest {
    pub invoice: String,
    pub subscription: String,
    pub customer: String,
    pub plan: Plan,
    pub period_start: i64,
    pub period_end: i64,
    pub kind: AllowanceKind,
}

/// An invoice's allowance as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowanceRecord {
    pub invoice: String,
    pub subscription: String,
    pub customer: String,
    /// `None` when it granted nothing (a downgrade's proration).
    pub grant: Option<String>,
    /// What the plan itself granted (rollover excluded): an upgrade tops up to it.
    pub credits: Credits,
    pub period_start: i64,
    pub period_end: i64,
}

/// What a new period's allowance grants, given what the previous period's allowance left
/// unused (already expired or expiring now): the plan's credits plus the rollover.
pub fn period_amount(plan: &Plan, unused: Credits) -> (Credits, Credits) {
    let rollover = unused.min(plan.rollover_cap).max(Credits::ZERO);
    (plan.credits.checked_add(rollover).unwrap_or(Credits::MAX), rollover)
}

/// What an upgrade grants: the new plan's credits less what this period already granted.
pub fn change_amount(plan: &Plan, this_period: Credits) -> Credits {
    Credits::from_micros((plan.credits.micros() - this_period.micros()).max(0))
}

/// The allowance grant's reason.
pub fn reason(plan: &Plan, kind: AllowanceKind, rollover: Credits) -> String {
    match kind {
        AllowanceKind::Period if rollover.is_positive() => {
            format!("{} allowance, with {rollover} rolled over", plan.name)
        }
        AllowanceKind::Period => format!("{} allowance", plan.name),
        AllowanceKind::Change => format!("upgrade to {}", plan.name),
    }
}
