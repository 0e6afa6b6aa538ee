//! Subscriptions: Checkout in subscription mode, the state of each subscription, and the
//! allowance every paid invoice grants — converged from Stripe like everything else.

use creditd_domain::views::{Customer, Grant, Plan, SubscriptionSummary};
use creditd_store::{AllowanceKind, AllowanceRequest, SubscriptionRecord};
use creditd_stripe::client::{CheckoutSession, Subscription, SubscriptionCheckoutParams};

use super::{stripe_customer, BillingError};
use crate::app::AppState;

/// The recurring Stripe Price a plan sells with, created on first use.
pub async fn plan_price(state: &AppState, plan: &Plan) -> Result<String, BillingError> {
    if let Some(price) = &plan.stripe_price {
        return Ok(price.clone());
    }
    let key = format!("creditd-plan-{}", plan.id);
    let client = &state.stripe.client;
    let price = client
        .create_recurring_price(&plan.name, plan.price, &plan.currency, &plan.interval, &key)
        .await?;
    Ok(state.store.set_plan_price(&plan.id, &price.id).await?)
}

/// Opens Checkout in subscription mode for a plan.
pub async fn create_checkout(
    state: &AppState,
    customer: &Customer,
    plan: &Plan,
    success_url: Option<String>,
    cancel_url: Option<String>,
) -> Result<CheckoutSession, BillingError> {
    let stripe_customer = stripe_customer(state, customer).await?;
    let price = plan_price(state, plan).await?;
    let public = &state.stripe.public_url;
    let params = SubscriptionCheckoutParams {
        customer: stripe_customer,
        price,
        success_url: success_url
            .unwrap_or_else(|| format!("{public}/billing/success?session_id={{CHECKOUT_SESSION_ID}}")),
        cancel_url: cancel_url.unwrap_or_else(|| format!("{public}/billing/cancel")),
        client_reference_id: Some(customer.id.clone()),
        metadata: vec![
            ("creditd_customer".into(), customer.id.clone()),
            ("creditd_plan".into(), plan.id.clone()),
        ],
        idempotency_key: format!(
            "creditd-sub-{}-{}-{}",
            customer.id,
            plan.id,
            creditd_domain::ids::random_token(12)
        ),
    };
    Ok(state.stripe.client.create_subscription_checkout_session(params).await?)
}

async fn record(state: &AppState, subscription: &Subscription) -> Result<Option<SubscriptionRecord>, BillingError> {
    let ours = subscription
        .metadata
        .iter()
        .find(|(k, _)| k == "creditd_customer")
        .map(|(_, v)| v.clone());
    let customer = match ours {
        Some(id) => Some(id),
        None => state.store.customer_by_stripe_customer(&subscription.customer).await?,
    };
    let Some(customer) = customer else { return Ok(None) };
    if state.store.customer(&customer, state.clock.now()).await?.is_none() {
        return Ok(None);
    }
    let plan = state
        .store
        .plan_by_stripe_price(&subscription.price)
        .await?
        .map(|p| p.id);
    Ok(Some(SubscriptionRecord {
        id: subscription.id.clone(),
        customer,
        plan,
        status: subscription.status.clone(),
        current_period_start: subscription.current_period_start,
        current_period_end: subscription.current_period_end,
        cancel_at_period_end: subscription.cancel_at_period_end,
    }))
}

/// Re-reads a subscription and records its state. `None` when it is not one of creditd's.
pub async fn converge_subscription(state: &AppState, id: &str) -> Result<Option<SubscriptionRecord>, BillingError> {
    let subscription = state.stripe.client.retrieve_subscription(id).await?;
    let Some(record) = record(state, &subscription).await? else {
        return Ok(None);
    };
    state.store.upsert_subscription(&record, state.clock.now()).await?;
    Ok(Some(record))
}

/// Re-reads an invoice; when paid, grants its allowance (once per invoice).
pub async fn converge_invoice(state: &AppState, id: &str) -> Result<Option<Option<Grant>>, BillingError> {
    let invoice = state.stripe.client.retrieve_invoice(id).await?;
    let Some(subscription) = invoice.subscription.as_deref() else {
        return Ok(None);
    };
    let Some(record) = converge_subscription(state, subscription).await? else {
        return Ok(None);
    };
    if !invoice.paid {
        return Ok(Some(None));
    }
    let price = invoice.price.clone().unwrap_or_default();
    let plan = state.store.plan_by_stripe_price(&price).await?;
    let plan = plan.ok_or_else(|| {
        BillingError::Mismatch(format!("invoice {id} is for price {price}, which is no creditd plan"))
    })?;
    let kind = match invoice.billing_reason.as_deref() {
        Some("subscription_update") => AllowanceKind::Change,
        _ => AllowanceKind::Period,
    };
    let request = AllowanceRequest {
        invoice: invoice.id.clone(),
        subscription: record.id,
        customer: record.customer,
        plan,
        period_start: invoice.period_start,
        period_end: invoice.period_end,
        kind,
    };
    let granted = super::grant_allowance(state, request).await?;
    if let Some(grant) = &granted {
        tracing::info!(invoice = %invoice.id, grant = %grant.id, credits = %grant.amount, "subscription allowance granted");
    }
    Ok(Some(granted))
}

/// The customer's subscription as last recorded.
pub async fn summary(state: &AppState, customer: &str) -> Result<Option<SubscriptionSummary>, BillingError> {
    Ok(state.store.subscription_of(customer).await?)
}

/// Completes a subscription Checkout from the session itself (the success page, racing the
/// webhook): records the subscription and grants its first invoice. Returns the customer.
pub async fn complete_checkout(state: &AppState, session_id: &str) -> Result<Option<String>, BillingError> {
    let session = state.stripe.client.retrieve_checkout_session(session_id).await?;
    if session.mode != "subscription" {
        return Ok(None);
    }
    let Some(subscription) = session.subscription.as_deref() else {
        return Ok(None);
    };
    let Some(record) = converge_subscription(state, subscription).await? else {
        return Ok(None);
    };
    if let Some(invoice) = &session.invoice {
        converge_invoice(state, invoice).await?;
    }
    Ok(Some(record.customer))
}
