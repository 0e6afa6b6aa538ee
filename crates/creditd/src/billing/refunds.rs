//! Refunds and disputes: re-read the charge, its refunds and disputes from Stripe, and
//! converge its payment's credits (clawed back, frozen, restored) to what they imply.

use std::collections::HashMap;
use std::sync::Arc;

use creditd_domain::money::PaymentStatus;
use creditd_domain::views::Payment;
use creditd_store::{Convergence, DisputeState, MoneyState};
use creditd_stripe::client::Charge;

use super::{checkout, intents, BillingError};
use crate::app::AppState;

/// Conversions of a charge in this process, one at a time: each reads Stripe's money only
/// after the one before applied what it read, so none applies an older state over a newer
/// one. (Across replicas [`converge_charge`]'s re-read settles the last word.)
#[derive(Default)]
pub struct ChargeLocks(std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

/// Held while one charge converges; the charge's entry goes with the last holder.
struct ChargeGuard<'a> {
    locks: &'a ChargeLocks,
    charge: String,
    held: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl ChargeLocks {
    async fn lock(&self, charge: &str) -> ChargeGuard<'_> {
        let mutex = {
            let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(charge.to_string()).or_default().clone()
        };
        ChargeGuard {
            locks: self,
            charge: charge.to_string(),
            held: Some(mutex.lock_owned().await),
        }
    }
}

impl Drop for ChargeGuard<'_> {
    fn drop(&mut self) {
        let mut map = self.locks.0.lock().unwrap_or_else(|e| e.into_inner());
        self.held.take();
        if map.get(&self.charge).is_some_and(|m| Arc::strong_count(m) == 1) {
            map.remove(&self.charge);
        }
    }
}

/// Converges the payment behind a charge. `None` when the charge is not one of creditd's.
pub async fn converge_charge(
    state: &AppState,
    charge_id: &str,
) -> Result<Option<(Payment, Convergence)>, BillingError> {
    let _one_at_a_time = state.conversions.lock(charge_id).await;
    let charge = state.stripe.client.retrieve_charge(charge_id).await?;
    let Some(intent) = charge.payment_intent.as_deref() else {
        return Ok(None);
    };
    let Some(mut payment) = state.store.payment_by_payment_intent(intent).await? else {
        return Ok(None);
    };
    // Events arrive in any order: a refund may be seen before the purchase was fulfilled.
    if payment.status != PaymentStatus::Succeeded {
        let fulfilled = match (payment.flow.as_str(), payment.checkout_session.clone()) {
            ("checkout", Some(session)) => checkout::fulfill(state, &session).await?,
            _ => intents::fulfill(state, intent).await?,
        };
        match fulfilled {
            Some((p, _)) if p.status == PaymentStatus::Succeeded => payment = p,
            _ => return Ok(Some((payment, Convergence::default()))),
        }
    }
    // Two replicas may convert one charge at once, each with Stripe's money as it read it: the
    // one applied last could carry the older state. So each reads Stripe again after applying
    // and converges again until what it applied is still Stripe's state — the last to apply
    // has then applied a state read after every other apply.
    let mut money = money_state(state, &charge).await?;
    let mut done = Convergence::default();
    for _ in 0..MAX_CONVERGENCES {
        let step = super::converge_payment(state, &payment.id, money.clone()).await?;
        done = done.then(step);
        let charge = state.stripe.client.retrieve_charge(charge_id).await?;
        let now = money_state(state, &charge).await?;
        if now == money {
            break;
        }
        money = now;
    }
    if done.changed() {
        tracing::info!(payment = %payment.id, charge = %charge.id, ?done, "payment credits converged");
    }
    let payment = state.store.payment(&payment.id).await?.unwrap_or(payment);
    Ok(Some((payment, done)))
}

/// Conversions of one charge in a row while Stripe's state keeps moving under them; a later
/// event or reconciliation converges whatever moves after that.
const MAX_CONVERGENCES: usize = 3;

/// What Stripe's money says of a charge: refunded so far, the newest refund and dispute.
async fn money_state(state: &AppState, charge: &Charge) -> Result<MoneyState, BillingError> {
    let refunds = state.stripe.client.list_refunds_for_charge(&charge.id).await?;
    let disputes = state.stripe.client.list_disputes_for_charge(&charge.id).await?;
    let dispute = disputes.iter().max_by_key(|d| (d.created, d.id.clone()));
    Ok(MoneyState {
        amount_refunded: charge.amount_refunded,
        latest_refund: refunds
            .iter()
            .max_by_key(|r| (r.created, r.id.clone()))
            .map(|r| r.id.clone()),
        dispute: dispute.map(|d| DisputeState {
            id: d.id.clone(),
            status: d.status.clone(),
            amount: d.amount,
        }),
    })
}

/// Converges a payment from creditd's side (reconciliation): through its charge once paid.
pub async fn converge_payment(state: &AppState, payment: &Payment) -> Result<Convergence, BillingError> {
    let Some(intent) = payment.payment_intent.as_deref() else {
        return Ok(Convergence::default());
    };
    let intent = state.stripe.client.retrieve_payment_intent(intent).await?;
    let Some(charge) = intent.latest_charge else {
        return Ok(Convergence::default());
    };
    Ok(converge_charge(state, &charge)
        .await?
        .map(|(_, done)| done)
        .unwrap_or_default())
}
