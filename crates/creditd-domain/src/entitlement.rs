//! Entitlements and budgets: which features a customer's plan includes, how often they may be
//! used per period, and how many credits one of the app's own keys may spend.
//!
//! Storage loads the rules and the counts of the current period inside the write transaction
//! that decides the balance, asks these functions, and writes back the counts they return;
//! `check` asks the same functions over committed state.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::amount::Credits;
use crate::calendar::Period;

/// The largest limit a plan may set on a feature, per period.
pub const MAX_LIMIT: i64 = 1_000_000_000;

/// What a plan says of one feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Entitlement {
    /// Included without a limit.
    Included,
    /// Included `limit` times per `period` (day or month).
    Limited { limit: i64, period: Period },
}

impl Entitlement {
    /// A limit as an operator gives it; errors say what is wrong.
    pub fn limited(limit: i64, period: Period) -> Result<Entitlement, String> {
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(format!("limit must be a whole number from 1 to {MAX_LIMIT}"));
        }
        if period == Period::Total {
            return Err("period must be day or month".into());
        }
        Ok(Entitlement::Limited { limit, period })
    }
}

/// A plan's entitlements, as the writer and `check` see them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanRules {
    pub plan: String,
    pub features: BTreeMap<String, Entitlement>,
}

/// How a `past_due` subscription is treated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PastDue {
    /// Keeps its plan while Stripe retries the payment (the default).
    #[default]
    Plan,
    /// Falls back to the free plan.
    Free,
}

/// The plan that applies to a customer: an active or trialing subscription's plan (a past-due
/// one's too, unless `past_due` says otherwise), else the free plan, if there is one.
pub fn applicable_plan<'a>(
    subscription: Option<(&'a str, Option<&'a str>)>,
    free_plan: Option<&'a str>,
    past_due: PastDue,
) -> Option<&'a str> {
    let paid = subscription.and_then(|(status, plan)| match status {
        "active" | "trialing" => plan,
        "past_due" if past_due == PastDue::Plan => plan,
        _ => None,
    });
    paid.or(free_plan)
}

/// Why a spend was refused before any credits moved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    #[error("the customer's plan does not include {feature}")]
    FeatureNotInPlan { feature: String, plan: Option<String> },
    #[error("{feature} is limited to {limit} per {} and {used} were used", period.as_str())]
    LimitReached {
        feature: String,
        limit: i64,
        used: i64,
        period: Period,
        resets_at: i64,
    },
    #[error("budget {budget} allows {limit} per {}; {used} used, {requested} requested", period.as_str())]
    BudgetExceeded {
        budget: String,
        limit: Credits,
        used: Credits,
        requested: Credits,
        period: Period,
        resets_at: Option<i64>,
    },
}

/// One use of a limited feature to count: the period's window it falls in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counted {
    pub window_start: i64,
    pub limit: i64,
    pub period: Period,
}

/// Whether `feature` may be used now. `gated` holds the features any plan lists (the others
/// are free to use); `used` is the count in the current window of the plan's period.
/// Returns the window to count the use in, for a limited feature.
pub fn admit(
    gated: &BTreeSet<String>,
    plan: Option<&PlanRules>,
    feature: &str,
    used: impl FnOnce(i64) -> i64,
    now: i64,
) -> Result<Option<Counted>, Refusal> {
    if !gated.contains(feature) {
        return Ok(None);
    }
    let not_in_plan = || Refusal::FeatureNotInPlan {
        feature: feature.to_string(),
        plan: plan.map(|p| p.plan.clone()),
    };
    let entitlement = plan.and_then(|p| p.features.get(feature)).ok_or_else(not_in_plan)?;
    match *entitlement {
        Entitlement::Included => Ok(None),
        Entitlement::Limited { limit, period } => {
            let (window_start, end) = period.window(now);
            let used = used(window_start);
            if used >= limit {
                return Err(Refusal::LimitReached {
                    feature: feature.to_string(),
                    limit,
                    used,
                    period,
                    resets_at: end.expect("limits have day or month periods"),
                });
            }
            Ok(Some(Counted {
                window_start,
                limit,
                period,
            }))
        }
    }
}

/// A cap on what one of the app's keys (or team members) may spend of a customer's credits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetRule {
    pub id: String,
    pub limit: Credits,
    pub period: Period,
}

impl BudgetRule {
    /// Whether `amount` more may be spent in the window that started at `window_start`
    /// (holds count in the window they were placed in), given `used` there.
    pub fn allow(&self, used: Credits, amount: Credits, window_start: i64) -> Result<(), Refusal> {
        if used.micros().saturating_add(amount.micros()) > self.limit.micros() {
            return Err(Refusal::BudgetExceeded {
                budget: self.id.clone(),
                limit: self.limit,
                used,
                requested: amount,
                period: self.period,
                resets_at: self.period.window(window_start).1,
            });
        }
        Ok(())
    }

    /// What is left in a window.
    pub fn remaining(&self, used: Credits) -> Credits {
        Credits::from_micros((self.limit.micros() - used.micros()).max(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rules(features: &[(&str, Entitlement)]) -> PlanRules {
        PlanRules {
            plan: "plan_pro".into(),
            features: features.iter().map(|(f, e)| (f.to_string(), *e)).collect(),
        }
    }

    fn gated(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_plan_that_applies_follows_the_subscription_status() {
        let free = Some("plan_free");
        let sub = |status| Some((status, Some("plan_pro")));
        assert_eq!(applicable_plan(sub("active"), free, PastDue::Plan), Some("plan_pro"));
        assert_eq!(applicable_plan(sub("trialing"), free, PastDue::Plan), Some("plan_pro"));
        assert_eq!(applicable_plan(sub("past_due"), free, PastDue::Plan), Some("plan_pro"));
        assert_eq!(applicable_plan(sub("past_due"), free, PastDue::Free), free);
        assert_eq!(applicable_plan(sub("canceled"), free, PastDue::Plan), free);
        assert_eq!(applicable_plan(None, free, PastDue::Plan), free);
        assert_eq!(applicable_plan(None, None, PastDue::Plan), None);
    }

    #[test]
    fn ungated_features_pass_and_gated_ones_need_the_plan() {
        let plan = rules(&[("chat", Entitlement::Included)]);
        let gated = gated(&["chat", "gpt-4o"]);
        assert_eq!(admit(&gated, Some(&plan), "embeddings", |_| 0, 0), Ok(None));
        assert_eq!(admit(&gated, Some(&plan), "chat", |_| 0, 0), Ok(None));
        let refused = admit(&gated, Some(&plan), "gpt-4o", |_| 0, 0).unwrap_err();
        assert!(matches!(refused, Refusal::FeatureNotInPlan { .. }));
        assert!(admit(&gated, None, "chat", |_| 0, 0).is_err());
    }

    #[test]
    fn limits_count_per_window_and_reset_at_its_end() {
        let limited = Entitlement::limited(3, Period::Day).unwrap();
        let plan = rules(&[("images", limited)]);
        let gated = gated(&["images"]);
        let now = 1_800_000_000;
        let counted = admit(&gated, Some(&plan), "images", |_| 2, now).unwrap().unwrap();
        assert_eq!(counted.window_start, Period::Day.window(now).0);
        match admit(&gated, Some(&plan), "images", |_| 3, now).unwrap_err() {
            Refusal::LimitReached { resets_at, .. } => assert_eq!(Some(resets_at), Period::Day.window(now).1),
            other => panic!("{other:?}"),
        }
        assert!(Entitlement::limited(0, Period::Day).is_err());
        assert!(Entitlement::limited(1, Period::Total).is_err());
    }

    proptest! {
        #[test]
        fn a_budget_never_lets_more_than_its_limit_through(
            limit in 1i64..10_000,
            spends in prop::collection::vec(1i64..3_000, 1..40),
        ) {
            let rule = BudgetRule { id: "key_a".into(), limit: Credits::from_micros(limit), period: Period::Total };
            let mut used = 0i64;
            for s in spends {
                let ok = rule.allow(Credits::from_micros(used), Credits::from_micros(s), 0).is_ok();
                prop_assert_eq!(ok, used + s <= limit);
                if ok {
                    used += s;
                }
            }
            prop_assert!(used <= limit);
            prop_assert_eq!(rule.remaining(Credits::from_micros(used)).micros(), limit - used);
        }

        #[test]
        fn a_limit_admits_exactly_its_remaining_uses(limit in 1i64..50, used in 0i64..60, tries in 0usize..80) {
            let plan = rules(&[("f", Entitlement::limited(limit, Period::Month).unwrap())]);
            let gated = gated(&["f"]);
            let mut count = used;
            let mut admitted = 0;
            for _ in 0..tries {
                if admit(&gated, Some(&plan), "f", |_| count, 0).is_ok() {
                    count += 1;
                    admitted += 1;
                }
            }
            prop_assert_eq!(admitted, (limit - used).max(0).min(tries as i64));
        }
    }
}
