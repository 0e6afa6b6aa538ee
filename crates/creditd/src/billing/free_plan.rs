//! The free plan's credits: granted by creditd itself once per calendar month to every
//! customer without a paid subscription, expiring at the month's end. The grant's reference
//! (`free:YYYY-MM:customer`) is unique, so replicas and retries grant each month once.

use creditd_domain::calendar::{month, month_label};
use creditd_domain::command::NewGrant;
use creditd_domain::{account, Command, GrantSource};

use crate::app::AppState;
use crate::http::error::ApiError;

/// Customers looked at per round of the monthly grant.
const PAGE: i64 = 500;

fn reference(label: &str, customer: &str) -> String {
    format!("free:{label}:{customer}")
}

/// Grants this month's free credits to one customer, unless it has them or pays for a plan.
/// Returns whether credits were granted.
pub async fn grant_to(state: &AppState, customer: &str) -> Result<bool, ApiError> {
    let catalog = state.store.catalog().await?;
    let Some(free) = catalog.free_plan.clone() else {
        return Ok(false);
    };
    if state.store.applicable_plan(customer, &catalog).await?.as_deref() != Some(free.as_str()) {
        return Ok(false);
    }
    let Some(plan) = state.store.plan(&free).await? else {
        return Ok(false);
    };
    if !plan.credits.is_positive() {
        return Ok(false);
    }
    let now = state.clock.now();
    let label = month_label(now);
    let grant = NewGrant {
        customer: customer.to_string(),
        amount: plan.credits,
        priority: account::DEFAULT_PRIORITY,
        expires_at: Some(month(now).1),
        source: GrantSource::Subscription,
        reason: Some(format!("{} credits for {label}", plan.name)),
        reference: Some(reference(&label, customer)),
    };
    match state.write(Command::Grant(grant), None).await {
        Ok(_) => Ok(true),
        Err(e) if e.code == "duplicate_reference" => Ok(false),
        Err(e) => Err(e),
    }
}

/// Grants this month's free credits to every customer due them; returns how many got them.
pub async fn grant_monthly(state: &AppState) -> Result<usize, ApiError> {
    let catalog = state.store.catalog().await?;
    if catalog.free_plan.is_none() {
        return Ok(0);
    }
    let prefix = format!("free:{}:", month_label(state.clock.now()));
    let mut granted = 0;
    let mut after = String::new();
    loop {
        let due = state.store.customers_without_grant(&prefix, &after, PAGE).await?;
        for customer in &due {
            if grant_to(state, customer).await? {
                granted += 1;
            }
        }
        match due.last() {
            Some(last) if due.len() as i64 == PAGE => after = last.clone(),
            _ => return Ok(granted),
        }
    }
}
