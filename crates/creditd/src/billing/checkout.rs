//! Stripe Checkout (mode `payment`) for a credit package, and its fulfilment.

use creditd_domain::money::PaymentStatus;
use creditd_domain::views::{Customer, Package, Payment};
use creditd_store::{NewPayment, PaymentUpdate};
use creditd_stripe::client::{CheckoutParams, CheckoutSession};

use super::{receipt_url, stripe_customer, stripe_price, BillingError};
use crate::app::AppState;

/// What a buyer asked for.
pub struct CheckoutRequest {
    pub customer: Customer,
    pub package: Package,
    pub quantity: i64,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
}

/// Records a pending payment, then opens a Checkout Session for it. The credits it will
/// grant are fixed now, from creditd's own package, never from what Stripe or the client says.
pub async fn create(state: &AppState, request: CheckoutRequest) -> Result<(CheckoutSession, Payment), BillingError> {
    let customer_id = stripe_customer(state, &request.customer).await?;
    let request_customer = request.customer.id.clone();
    let price = stripe_price(state, &request.package).await?;
    let new = NewPayment {
        customer: request.customer.id.clone(),
        package: request.package,
        quantity: request.quantity,
        flow: "checkout",
    };
    let payment = state.store.create_payment(&new, state.clock.now()).await?;
    crate::ops::observe::payment_started(&payment);
    let public = &state.stripe.public_url;
    let params = CheckoutParams {
        customer: customer_id,
        price,
        quantity: request.quantity as u64,
        success_url: request
            .success_url
            .unwrap_or_else(|| format!("{public}/billing/success?session_id={{CHECKOUT_SESSION_ID}}")),
        cancel_url: request.cancel_url.unwrap_or_else(|| format!("{public}/billing/cancel")),
        client_reference_id: Some(request.customer.id.clone()),
        metadata: vec![
            ("creditd_customer".into(), request.customer.id),
            ("creditd_payment".into(), payment.id.clone()),
        ],
        idempotency_key: format!("creditd-{}", payment.id),
    };
    let session = if super::autotopup::saves_cards(state, &request_customer).await? {
        state.stripe.client.create_checkout_session_saving_card(params).await?
    } else {
        state.stripe.client.create_checkout_session(params).await?
    };
    state
        .store
        .attach_payment(&payment.id, Some(&session.id), None, state.clock.now())
        .await?;
    let payment = state.store.payment(&payment.id).await?.unwrap_or(payment);
    Ok((session, payment))
}

/// The payment a session pays for: by its session id, or — when the session was created but
/// not yet linked — by the payment id creditd put in its metadata.
async fn payment_of(state: &AppState, session: &CheckoutSession) -> Result<Option<Payment>, BillingError> {
    if let Some(payment) = state.store.payment_by_checkout_session(&session.id).await? {
        return Ok(Some(payment));
    }
    let Some(payment) = super::payment_named_in(state, &session.metadata).await? else {
        return Ok(None);
    };
    if payment.flow != "checkout" || payment.checkout_session.as_deref().is_some_and(|s| s != session.id) {
        return Ok(None);
    }
    state
        .store
        .attach_payment(&payment.id, Some(&session.id), None, state.clock.now())
        .await?;
    Ok(Some(payment))
}

/// Stripe's recipe: re-read the session and bring its payment to what it says. Safe to run
/// any number of times, concurrently, from the webhook and the success page: the grant is
/// keyed to the session id. `None` when the session is not one of creditd's.
pub async fn fulfill(state: &AppState, session_id: &str) -> Result<Option<(Payment, bool)>, BillingError> {
    let session = state.stripe.client.retrieve_checkout_session(session_id).await?;
    let Some(payment) = payment_of(state, &session).await? else {
        return Ok(None);
    };
    let update = match session.payment_status.as_str() {
        "paid" | "no_payment_required" => {
            check_matches(&session, &payment)?;
            let intent = match &session.payment_intent {
                Some(pi) => Some(state.stripe.client.retrieve_payment_intent(pi).await?),
                None => None,
            };
            if let Some(intent) = &intent {
                super::autotopup::remember_card(state, &payment.customer, intent).await?;
            }
            let charge = intent.and_then(|i| i.latest_charge);
            Some(PaymentUpdate::Paid {
                reference: session.id.clone(),
                payment_intent: session.payment_intent.clone(),
                receipt_url: receipt_url(state, charge.as_deref()).await,
            })
        }
        _ if session.status.as_deref() == Some("expired") => Some(PaymentUpdate::Expired),
        // Completed but unpaid: a delayed method still processing, or one that failed.
        _ if session.status.as_deref() == Some("complete") => match &session.payment_intent {
            Some(pi) => {
                let intent = state.stripe.client.retrieve_payment_intent(pi).await?;
                matches!(intent.status.as_str(), "requires_payment_method" | "canceled").then(|| {
                    PaymentUpdate::Failed {
                        message: format!("the payment failed ({})", intent.status),
                    }
                })
            }
            None => None,
        },
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

/// A paid session must be for exactly what creditd recorded; otherwise nothing is granted and
/// the event stays failed for the operator to look at.
fn check_matches(session: &CheckoutSession, payment: &Payment) -> Result<(), BillingError> {
    let currency = session.currency.as_deref().map(str::to_ascii_lowercase);
    if session.amount_total != Some(payment.amount) || currency.as_deref() != Some(payment.currency.as_str()) {
        return Err(BillingError::Mismatch(format!(
            "checkout session {} is for {:?} {:?}, but payment {} expects {} {}",
            session.id, session.amount_total, session.currency, payment.id, payment.amount, payment.currency
        )));
    }
    let quantity: u64 = session.line_items.iter().map(|(_, q)| q).sum();
    if !session.line_items.is_empty() && quantity != payment.quantity as u64 {
        return Err(BillingError::Mismatch(format!(
            "checkout session {} has quantity {quantity}, payment {} expects {}",
            session.id, payment.id, payment.quantity
        )));
    }
    Ok(())
}
