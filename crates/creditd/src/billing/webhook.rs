//! Stripe's events: verified on the raw bytes, recorded by id, handled by re-reading the
//! object they name and converging its payment. Duplicates, concurrent deliveries and any
//! order end in the same state; a failure answers 5xx so Stripe retries.

use creditd_stripe::event::Event;

use super::{checkout, intents, refunds, subscriptions, BillingError};
use crate::app::AppState;

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

/// Records the event, handles it unless it was handled before, and records the result.
/// Returns the error text of a failed handling.
pub async fn receive(state: &AppState, event: &Event, payload: &str) -> Result<(), String> {
    let now = state.clock.now();
    let record = state
        .store
        .record_stripe_event(&event.id, &event.type_, event.created, payload, now)
        .await
        .map_err(|e| e.to_string())?;
    if record.status == "processed" || record.status == "ignored" {
        return Ok(());
    }
    match handle(state, event).await {
        Ok(outcome) => {
            let status = if outcome == Handled::Processed {
                "processed"
            } else {
                "ignored"
            };
            state
                .store
                .finish_stripe_event(&event.id, status, None, state.clock.now())
                .await
                .map_err(|e| e.to_string())
        }
        Err(e) => {
            let message = e.to_string();
            tracing::warn!(event = %event.id, kind = %event.type_, error = %message, "Stripe event handling failed");
            state
                .store
                .finish_stripe_event(&event.id, "failed", Some(&message), state.clock.now())
                .await
                .ok();
            Err(message)
        }
    }
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
