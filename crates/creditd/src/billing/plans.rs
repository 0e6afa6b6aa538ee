//! Subscription plans: credits granted each paid period, at a recurring price.

use creditd_domain::views::Plan;
use creditd_domain::{money, Credits};
use creditd_store::{NewPlan, Store};

pub struct PlanSpec {
    pub name: String,
    pub credits: Credits,
    pub price: i64,
    pub currency: String,
    pub interval: String,
    pub rollover_cap: Credits,
}

/// Validates and stores a plan; errors name the field. Its Stripe Price is created on first use.
pub async fn create(store: &Store, spec: PlanSpec, now: i64) -> Result<Plan, (String, String)> {
    let name = super::packages::checked_name(&spec.name)?;
    let credits = spec
        .credits
        .positive()
        .map_err(|e| ("credits".to_string(), e.to_string()))?;
    if !["day", "week", "month", "year"].contains(&spec.interval.as_str()) {
        return Err(("interval".into(), "must be day, week, month or year".into()));
    }
    let rollover_cap = spec
        .rollover_cap
        .non_negative()
        .map_err(|e| ("rollover_cap".to_string(), e.to_string()))?;
    let new = NewPlan {
        name,
        credits,
        price: money::price(spec.price).map_err(|m| ("price".to_string(), m))?,
        currency: money::currency(&spec.currency).map_err(|m| ("currency".to_string(), m))?,
        interval: spec.interval,
        rollover_cap,
        stripe_price: None,
    };
    store
        .create_plan(&new, now)
        .await
        .map_err(|e| ("plan".to_string(), e.to_string()))
}
