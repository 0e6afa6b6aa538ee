//! Auto top-up: saving the card of a customer who turned it on, and paying the runs that
//! crossings queue — one off-session PaymentIntent per run, keyed by the run, fulfilled
//! through the normal payment path (the webhook or this worker, whichever is first).

use std::time::Duration;

use creditd_domain::views::Payment;
use creditd_store::{NewPayment, PaymentUpdate, TopupRun};
use creditd_stripe::client::{PaymentIntent, PaymentIntentParams, StripeError};

use super::BillingError;
use crate::app::AppState;

/// Whether a purchase by `customer` should save its card: auto top-up is on.
pub async fn saves_cards(state: &AppState, customer: &str) -> Result<bool, BillingError> {
    Ok(state.store.auto_topup(customer).await?.is_some_and(|t| t.enabled))
}

/// After a paid purchase: the card it was paid with becomes the customer's default for
/// off-session charges, when auto top-up is on.
pub async fn remember_card(state: &AppState, customer: &str, intent: &PaymentIntent) -> Result<(), BillingError> {
    let (Some(pm), Some(stripe_customer)) = (&intent.payment_method, &intent.customer) else {
        return Ok(());
    };
    if intent.status != "succeeded" || !saves_cards(state, customer).await? {
        return Ok(());
    }
    let key = format!("creditd-default-pm-{}", intent.id);
    state
        .stripe
        .client
        .set_default_payment_method(stripe_customer, pm, &key)
        .await?;
    Ok(())
}

/// The worker every replica runs: claims queued runs and pays them.
pub fn spawn(state: AppState, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if let Err(e) = round(&state).await {
                tracing::warn!(error = %e, "auto top-up round failed");
            }
        }
    })
}

/// Pays every run due now; returns how many were handled.
pub async fn round(state: &AppState) -> Result<usize, BillingError> {
    let runs = state.store.claim_topup_runs(state.clock.now(), 120, 16).await?;
    for run in &runs {
        if let Err(e) = pay(state, run).await {
            // The lease runs out and a later round tries again with the same keys.
            tracing::warn!(error = %e, run = %run.id, "auto top-up failed to run");
        }
    }
    Ok(runs.len())
}

/// Unix seconds of the first day of `now`'s UTC month.
fn month_start(now: i64) -> i64 {
    let days = now.div_euclid(86_400);
    let (_, _, day) = crate::clock::civil_from_days(days);
    (days - i64::from(day) + 1) * 86_400
}

async fn pay(state: &AppState, run: &TopupRun) -> Result<(), BillingError> {
    let now = state.clock.now();
    let store = &state.store;
    let fail = |code: &'static str, message: String, counts: bool| async move {
        store.fail_topup_run(run, code, &message, counts, now).await
    };
    let Some(settings) = store.auto_topup(&run.customer).await?.filter(|s| s.enabled) else {
        return Ok(fail("disabled", "auto top-up was turned off".into(), false).await?);
    };
    if let Some(max) = settings.max_per_month {
        if run.payment.is_none() && store.topups_since(&run.customer, month_start(now)).await? >= max {
            return Ok(fail(
                "max_per_month",
                format!("the limit of {max} top-ups this month was reached"),
                false,
            )
            .await?);
        }
    }
    let Some(package) = store.package(&run.package).await?.filter(|p| p.active) else {
        return Ok(fail(
            "package_unavailable",
            format!("package {} is no longer sold", run.package),
            true,
        )
        .await?);
    };
    let Some(customer) = store.customer(&run.customer, now).await? else {
        return Ok(());
    };
    let stripe_customer = super::stripe_customer(state, &customer).await?;
    let Some(pm) = state.stripe.client.default_payment_method(&stripe_customer).await? else {
        let message = "no saved card: the next purchase saves one".to_string();
        return Ok(fail("no_payment_method", message, true).await?);
    };
    let payment = match &run.payment {
        Some(id) => store.payment(id).await?,
        None => None,
    };
    let payment = match payment {
        Some(p) => p,
        None => new_payment(state, run, package).await?,
    };
    let params = PaymentIntentParams {
        customer: stripe_customer,
        amount: payment.amount,
        currency: payment.currency.clone(),
        metadata: vec![
            ("creditd_customer".into(), run.customer.clone()),
            ("creditd_payment".into(), payment.id.clone()),
            ("creditd_auto_topup".into(), run.id.clone()),
        ],
        // Derived from the crossing's run: a retried run never charges twice.
        idempotency_key: format!("creditd-topup-{}", run.id),
    };
    match state.stripe.client.charge_off_session(params, &pm).await {
        Ok(intent) => {
            store.attach_payment(&payment.id, None, Some(&intent.id), now).await?;
            super::intents::fulfill(state, &intent.id).await?;
        }
        Err(StripeError::Card {
            code,
            message,
            payment_intent,
            ..
        }) => {
            let code = code.unwrap_or_else(|| "card_declined".into());
            if let Some(pi) = &payment_intent {
                store.attach_payment(&payment.id, None, Some(pi), now).await?;
            }
            let update = PaymentUpdate::Failed {
                message: format!("{code}: {message}"),
            };
            super::update_payment(state, &payment.id, update).await?;
        }
        Err(e) => return Err(e.into()),
    }
    // Fulfilled here or by the webhook, whichever came first: the run ends once. A payment
    // still processing leaves the run to a later round (same keys, no second charge).
    if let Some(payment) = store.payment(&payment.id).await? {
        if payment.status != creditd_domain::money::PaymentStatus::Pending {
            store.finish_topup_run(run, &payment, now).await?;
        }
    }
    Ok(())
}

async fn new_payment(
    state: &AppState,
    run: &TopupRun,
    package: creditd_domain::views::Package,
) -> Result<Payment, BillingError> {
    let new = NewPayment {
        customer: run.customer.clone(),
        package,
        quantity: run.quantity,
        flow: "payment_intent",
    };
    let payment = state.store.create_payment(&new, state.clock.now()).await?;
    state
        .store
        .attach_topup_payment(&run.id, &payment.id, state.clock.now())
        .await?;
    Ok(payment)
}

#[cfg(test)]
mod tests {
    #[test]
    fn months_start_on_their_first_day() {
        // 2027-01-15 08:00 UTC → 2027-01-01.
        assert_eq!(super::month_start(1_800_000_000), 1_798_761_600);
        assert_eq!(super::month_start(1_798_761_600), 1_798_761_600);
    }
}
