//! Limits and budgets decided in the batch, with the balance ([`crate::book::Book`] calls
//! these around every usage, hold, capture and release): the plan's entitlements and the
//! customer's budgets come from [`Gates`] (read for the batch under the customers' locks);
//! the counts they are decided on live in the customer's [`CustomerState::counters`], cached
//! and version-checked with the balance, and every change to them is an [`Effect::Counter`]
//! written in the batch's transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::amount::Credits;
use crate::book::Effect;
use crate::command::CommandError;
use crate::entitlement::{admit, BudgetRule, PlanRules};
use crate::state::CustomerState;

/// The counter a limited feature's uses are kept in.
pub fn feature_counter(feature: &str) -> String {
    format!("feature:{feature}")
}

/// The counter a budget's credits (micro-credits) are kept in.
pub fn budget_counter(budget: &str) -> String {
    format!("budget:{budget}")
}

/// What gating decides on, as read for one batch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Gates {
    /// Features some plan lists: using them needs a plan that includes them.
    pub gated: BTreeSet<String>,
    /// Plan id → its entitlements.
    pub plans: HashMap<String, PlanRules>,
    /// Customer → the plan that applies to it now (for customers spending a gated feature).
    pub customer_plans: HashMap<String, Option<String>>,
    /// (customer, budget id) → the budget, for the budgets the batch's spends name.
    pub budgets: HashMap<(String, String), BudgetRule>,
}

/// Where an admitted spend is counted: (counter, window start) for the feature's limit and
/// for the budget.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Admitted {
    pub limit: Option<(String, i64)>,
    pub budget: Option<(String, i64)>,
}

/// A spend as gating sees it.
#[derive(Clone, Copy, Debug)]
pub struct Spend<'a> {
    pub feature: Option<&'a str>,
    pub budget: Option<&'a str>,
    /// The budget's window when the reservation was made earlier (a hold being finished);
    /// `None`: the window `now` falls in.
    pub budget_window: Option<i64>,
}

impl Gates {
    fn plan_rules(&self, customer: &str) -> Option<&PlanRules> {
        let plan = self.customer_plans.get(customer)?.as_ref()?;
        self.plans.get(plan)
    }

    /// Whether `customer` may spend `amount` on `spend` now: the feature in its plan and
    /// under its limit, the budget with room for `amount`. Nothing is counted here.
    pub fn decide(
        &self,
        state: &CustomerState,
        spend: Spend<'_>,
        amount: Credits,
        now: i64,
    ) -> Result<Admitted, CommandError> {
        let mut admitted = Admitted::default();
        if let Some(feature) = spend.feature {
            let counter = feature_counter(feature);
            let used = |window| state.count(&counter, window);
            let counted =
                admit(&self.gated, self.plan_rules(&state.id), feature, used, now).map_err(CommandError::Refused)?;
            admitted.limit = counted.map(|c| (counter.clone(), c.window_start));
        }
        if let Some(id) = spend.budget {
            let rule = self.budgets.get(&(state.id.clone(), id.to_string()));
            let window = match (spend.budget_window, rule) {
                (Some(window), _) => window,
                (None, Some(rule)) => rule.period.window(now).0,
                (None, None) => return Err(CommandError::BudgetNotFound(id.to_string())),
            };
            let counter = budget_counter(id);
            if let (Some(rule), true) = (rule, amount.is_positive()) {
                let used = Credits::from_micros(state.count(&counter, window));
                rule.allow(used, amount, window).map_err(CommandError::Refused)?;
            }
            admitted.budget = Some((counter, window));
        }
        Ok(admitted)
    }
}

/// Counts an admitted spend: one use against the limit (`uses`), `credits` (micro-credits,
/// negative to give back a reservation) against the budget. Returns the counter rows to write.
pub fn count(state: &mut CustomerState, admitted: &Admitted, uses: i64, credits: i64) -> Vec<Effect> {
    let mut effects = Vec::new();
    for (key, delta) in [(&admitted.limit, uses), (&admitted.budget, credits)] {
        if let (Some((counter, window)), true) = (key, delta != 0) {
            effects.push(state.add(counter, *window, delta));
        }
    }
    effects
}

impl CustomerState {
    /// The count of `counter` in the window that starts at `window`.
    pub fn count(&self, counter: &str, window: i64) -> i64 {
        self.counters.get(&(counter.to_string(), window)).copied().unwrap_or(0)
    }

    /// Adds `delta` to a counter (never below zero) and returns the row to write.
    pub fn add(&mut self, counter: &str, window: i64, delta: i64) -> Effect {
        let used = self.counters.entry((counter.to_string(), window)).or_insert(0);
        *used = (*used + delta).max(0);
        Effect::Counter {
            customer: self.id.clone(),
            counter: counter.to_string(),
            window_start: window,
            used: *used,
        }
    }
}

/// Counters kept per customer: (counter, window start) → count.
pub type Counters = BTreeMap<(String, i64), i64>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::Period;
    use crate::entitlement::{Entitlement, Refusal};

    fn gates() -> Gates {
        let rules = PlanRules {
            plan: "plan_free".into(),
            features: [("images".to_string(), Entitlement::limited(2, Period::Day).unwrap())].into(),
        };
        Gates {
            gated: ["images".to_string()].into(),
            plans: [("plan_free".to_string(), rules)].into(),
            customer_plans: [("u".to_string(), Some("plan_free".to_string()))].into(),
            budgets: [(
                ("u".to_string(), "key".to_string()),
                BudgetRule {
                    id: "key".into(),
                    limit: Credits::from_micros(10),
                    period: Period::Total,
                },
            )]
            .into(),
        }
    }

    #[test]
    fn a_limit_and_a_budget_count_only_what_was_admitted() {
        let gates = gates();
        let mut state = CustomerState::new("u");
        let spend = Spend {
            feature: Some("images"),
            budget: Some("key"),
            budget_window: None,
        };
        let one = Credits::from_micros(4);
        for _ in 0..2 {
            let admitted = gates.decide(&state, spend, one, 0).unwrap();
            count(&mut state, &admitted, 1, one.micros());
        }
        let refused = gates.decide(&state, spend, one, 0).unwrap_err();
        assert!(matches!(refused, CommandError::Refused(Refusal::LimitReached { .. })));
        let budget_only = Spend { feature: None, ..spend };
        let refused = gates
            .decide(&state, budget_only, Credits::from_micros(3), 0)
            .unwrap_err();
        assert!(matches!(refused, CommandError::Refused(Refusal::BudgetExceeded { .. })));
        assert_eq!(state.count("budget:key", 0), 8);
        let missing = Spend {
            budget: Some("nope"),
            ..budget_only
        };
        assert_eq!(
            gates.decide(&state, missing, one, 0),
            Err(CommandError::BudgetNotFound("nope".into()))
        );
    }
}
