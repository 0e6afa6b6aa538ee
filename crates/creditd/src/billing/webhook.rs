//! Stripe's events: verified on the raw bytes, recorded by id and acknowledged, then handled
//! in the background by re-reading the object they name and converging its payment.
//! Duplicates, concurrent deliveries and any order end in the same state; a failed handling
//! is retried with back-off and stays visible with its error.

use creditd_domain::retry::backoff_ms;
use creditd_store::{Settled, StoreError};
use creditd_stripe::event::Event;

use super::{checkout, intents, refunds, subscriptions, BillingError};
use crate::app::AppState;
use crate::ops::observe;

/// What became of an event.
#[derive(Debug, PartialEq, Eq)]
pub enum Handled {
    /// It moved (or confirmed) one of creditd's payments.
    Processed,
    /// Not an event creditd acts on, or about an object that is not creditd's.
    Ignored,
}

/// Routes an event to the convergence of the object it names.
pub async fn handle(state: &AppState, event: &Event) -> Result<Handled, BillingError> {
    let Some(object) = event.object_id() else {
        return Ok(Handled::Ignored);
    };
    if let Some(handled) = handle_subscription_event(state, event, object).await? {
        return Ok(handled);
    }
    let outcome = match event.type_.as_str() {
        "checkout.session.completed"
        | "checkout.session.async_payment_succeeded"
        | "checkout.session.async_payment_failed"
        | "checkout.session.expired" => checkout::fulfill(state, object).await?,
        "payment_intent.succeeded" | "payment_intent.payment_failed" | "payment_intent.canceled" => {
            intents::fulfill(state, object).await?
        }
        "charge.refunded" | "charge.refund.updated" | "charge.updated" => {
            refunds::converge_charge(state, object).await?.map(|(p, _)| (p, false))
        }
        kind if kind.starts_with("refund.") || kind.starts_with("charge.dispute.") => {
            match event.data_object.get("charge").and_then(|c| c.as_str()) {
                Some(charge) => refunds::converge_charge(state, charge).await?.map(|(p, _)| (p, false)),
                None => None,
            }
        }
        _ => None,
    };
    Ok(match outcome {
        Some((payment, granted)) => {
            if granted {
                tracing::info!(payment = %payment.id, event = %event.id, credits = %payment.credits, "credits granted");
            }
            Handled::Processed
        }
        None => Handled::Ignored,
    })
}

/// The events Stripe sends are acknowledged once recorded: an event of the other mode (live
/// vs test) than the configured key is recorded as `refused` and never handled; any other is
/// due at once for the background workers of any replica ([`super::events`]).
pub enum Accepted {
    Queued,
    Refused(String),
}

/// Records a verified delivery (`POST /v1/stripe/webhook`); handling happens in the background.
pub async fn accept(state: &AppState, event: &Event, payload: &str) -> Result<Accepted, StoreError> {
    let now = state.clock.now();
    if let Some(why) = mode_mismatch(state, event) {
        state
            .store
            .record_stripe_event_due(&event.id, &event.type_, event.created, payload, now, None)
            .await?;
        state
            .store
            .settle_stripe_event(&event.id, Settled::Refused(&why), now)
            .await?;
        tracing::warn!(event = %event.id, kind = %event.type_, reason = %why, "Stripe event refused");
        observe::stripe_event(&event.type_, "refused", None);
        return Ok(Accepted::Refused(why));
    }
    let due = Some(super::events::now_ms());
    let record = state
        .store
        .record_stripe_event_due(&event.id, &event.type_, event.created, payload, now, due)
        .await?;
    if record.attempts > 1 {
        observe::stripe_event(&event.type_, "duplicate", None);
    }
    state.stripe_events.notify_one();
    Ok(Accepted::Queued)
}

/// Records the event and handles it now unless it was handled before (reconciliation, the
/// retry endpoint). Returns the error text of a failed handling.
pub async fn receive(state: &AppState, event: &Event, payload: &str) -> Result<(), String> {
    let record = state
        .store
        .record_stripe_event_due(&event.id, &event.type_, event.created, payload, state.clock.now(), None)
        .await
        .map_err(|e| e.to_string())?;
    if matches!(record.status.as_str(), "processed" | "ignored" | "refused") {
        return Ok(());
    }
    run(state, event, record.attempts).await
}

/// Handles a recorded event and records the result: a failure is due again after a back-off
/// (`attempts` so far), until [`MAX_AUTOMATIC_ATTEMPTS`]; then only a retry by the operator or
/// reconciliation handles it.
pub async fn run(state: &AppState, event: &Event, attempts: i64) -> Result<(), String> {
    let now = state.clock.now();
    if let Some(why) = mode_mismatch(state, event) {
        state
            .store
            .settle_stripe_event(&event.id, Settled::Refused(&why), now)
            .await
            .map_err(|e| e.to_string())?;
        observe::stripe_event(&event.type_, "refused", None);
        return Err(why);
    }
    let started = std::time::Instant::now();
    let handled = handle(state, event).await;
    let took = Some(started.elapsed());
    let now = state.clock.now();
    match handled {
        Ok(outcome) => {
            let status = if outcome == Handled::Processed {
                "processed"
            } else {
                "ignored"
            };
            observe::stripe_event(&event.type_, status, took);
            state
                .store
                .settle_stripe_event(&event.id, Settled::Done(status), now)
                .await
                .map_err(|e| e.to_string())
        }
        Err(e) => {
            let message = e.to_string();
            observe::stripe_event(&event.type_, "failed", took);
            let attempt = u32::try_from(attempts.max(1)).unwrap_or(u32::MAX);
            let settings = &state.settings;
            let due = (attempts < MAX_AUTOMATIC_ATTEMPTS).then(|| {
                let wait = backoff_ms(attempt, settings.webhook_retry_base_ms, settings.webhook_retry_max_ms);
                super::events::now_ms().saturating_add(i64::try_from(wait).unwrap_or(i64::MAX))
            });
            tracing::warn!(event = %event.id, kind = %event.type_, error = %message, attempts, retry_at_ms = ?due, "Stripe event handling failed");
            if let Err(e) = state
                .store
                .settle_stripe_event(&event.id, Settled::Failed(&message, due), now)
                .await
            {
                tracing::warn!(event = %event.id, error = %e, "could not record the failure; the event's lease will run out");
            }
            Err(message)
        }
    }
}

/// Failed handlings retried by themselves before only the operator (or reconciliation) does.
pub const MAX_AUTOMATIC_ATTEMPTS: i64 = 25;

/// Why an event is not for this configuration: a live event with a test key or the
/// sandbox, or a test event with a live key.
pub fn mode_mismatch(state: &AppState, event: &Event) -> Option<String> {
    let live = state.stripe.client.livemode();
    let mode = |live: bool| if live { "live" } else { "test" };
    (event.livemode != live).then(|| {
        format!(
            "livemode mismatch: a {} event, but creditd is configured with a {} key",
            mode(event.livemode),
            mode(live)
        )
    })
}

/// Subscription events: `invoice.paid` grants the period's allowance; the others record the
/// subscription's state. `None` for events of other kinds.
async fn handle_subscription_event(
    state: &AppState,
    event: &Event,
    object: &str,
) -> Result<Option<Handled>, BillingError> {
    let data = &event.data_object;
    let subscription_of_invoice = || {
        data.get("subscription")
            .and_then(|s| s.as_str())
            .or_else(|| {
                data.pointer("/parent/subscription_details/subscription")
                    .and_then(|s| s.as_str())
            })
            .map(str::to_string)
    };
    let converged = match event.type_.as_str() {
        "invoice.paid" => subscriptions::converge_invoice(state, object).await?.is_some(),
        "invoice.payment_failed" | "invoice.payment_action_required" | "invoice.finalized" => {
            match subscription_of_invoice() {
                Some(sub) => subscriptions::converge_subscription(state, &sub).await?.is_some(),
                None => false,
            }
        }
        kind if kind.starts_with("customer.subscription.") => {
            subscriptions::converge_subscription(state, object).await?.is_some()
        }
        "checkout.session.completed" if data.get("mode").and_then(|m| m.as_str()) == Some("subscription") => {
            subscriptions::complete_checkout(state, object).await?.is_some()
        }
        _ => return Ok(None),
    };
    Ok(Some(if converged {
        Handled::Processed
    } else {
        Handled::Ignored
    }))
}
