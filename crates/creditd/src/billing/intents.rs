//! PaymentIntents for embedded payment forms (Stripe Elements), and their fulfilment.

use creditd_domain::money::PaymentStatus;
use creditd_domain::views::{Customer, Package, Payment};
use creditd_store::{NewPayment, PaymentUpdate};
use creditd_stripe::client::{PaymentIntent, PaymentIntentParams};

use super::{receipt_url, stripe_customer, BillingError};
use crate::app::AppState;

/// Records a pending payment and creates its PaymentIntent; the client confirms it with the
/// returned client secret.
pub async fn create(
    state: &AppState,
    customer: &Customer,
    package: Package,
) -> Result<(PaymentIntent, Payment), BillingError> {
    let stripe_customer = stripe_customer(state, customer).await?;
    let new = NewPayment {
        customer: customer.id.clone(),
        package,
        quantity: 1,
        flow: "payment_intent",
    };
    let payment = state.store.create_payment(&new, state.clock.now()).await?;
    crate::ops::observe::payment_started(&payment);
    let params = PaymentIntentParams {
        customer: stripe_customer,
        amount: payment.amount,
        currency: payment.currency.clone(),
        metadata: vec![
            ("creditd_customer".into(), customer.id.clone()),
            ("creditd_payment".into(), payment.id.clone()),
        ],
        idempotency_key: format!("creditd-{}", payment.id),
    };
    let intent = if super::autotopup::saves_cards(state, &customer.id).await? {
        state.stripe.client.create_payment_intent_saving_card(params).await?
    } else {
        state.stripe.client.create_payment_intent(params).await?
    };
    state
        .store
        .attach_payment(&payment.id, None, Some(&intent.id), state.clock.now())
        .await?;
    let payment = state.store.payment(&payment.id).await?.unwrap_or(payment);
    Ok((intent, payment))
}

async fn payment_of(state: &AppState, intent: &PaymentIntent) -> Result<Option<Payment>, BillingError> {
    if let Some(payment) = state.store.payment_by_payment_intent(&intent.id).await? {
        return Ok(Some(payment));
    }
    let Some(payment) = super::payment_named_in(state, &intent.metadata).await? else {
        return Ok(None);
    };
    if payment.flow != "payment_intent" || payment.payment_intent.is_some() {
        return Ok(None);
    }
    state
        .store
        .attach_payment(&payment.id, None, Some(&intent.id), state.clock.now())
        .await?;
    Ok(Some(payment))
}

/// Re-reads the PaymentIntent and converges its payment. A Checkout payment converges
/// through its session instead, so one purchase is only ever keyed one way.
pub async fn fulfill(state: &AppState, intent_id: &str) -> Result<Option<(Payment, bool)>, BillingError> {
    let intent = state.stripe.client.retrieve_payment_intent(intent_id).await?;
    let Some(payment) = payment_of(state, &intent).await? else {
        return Ok(None);
    };
    if payment.flow == "checkout" {
        return match &payment.checkout_session {
            Some(session) => super::checkout::fulfill(state, session).await,
            None => Ok(Some((payment, false))),
        };
    }
    let update = match intent.status.as_str() {
        "succeeded" => {
            if intent.amount_received < payment.amount || !intent.currency.eq_ignore_ascii_case(&payment.currency) {
                return Err(BillingError::Mismatch(format!(
                    "payment intent {} received {} {}, payment {} expects {} {}",
                    intent.id, intent.amount_received, intent.currency, payment.id, payment.amount, payment.currency
                )));
            }
            super::autotopup::remember_card(state, &payment.customer, &intent).await?;
            Some(PaymentUpdate::Paid {
                reference: intent.id.clone(),
                payment_intent: Some(intent.id.clone()),
                receipt_url: receipt_url(state, intent.latest_charge.as_deref()).await,
            })
        }
        // A declined attempt leaves the intent waiting for another payment method.
        "requires_payment_method" if intent.latest_charge.is_some() => Some(PaymentUpdate::Failed {
            message: intent.failure.clone().unwrap_or_else(|| "the card was declined".into()),
        }),
        "canceled" => Some(PaymentUpdate::Failed {
            message: "the payment was canceled".into(),
        }),
        _ => None,
    };
    match update {
        Some(update) if payment.status != PaymentStatus::Succeeded => {
            let (moved, granted) = super::update_payment(state, &payment.id, update).await?;
            crate::ops::observe::payment_moved(payment.status, &moved, granted);
            Ok(Some((moved, granted)))
        }
        _ => Ok(Some((payment, false))),
    }
}
