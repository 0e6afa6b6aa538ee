//! Refunds: create (by charge or PaymentIntent, full or partial), retrieve,
//! list, and fail a refund on demand.
//!
//! A charge's `amount_refunded` is the sum of its pending and succeeded
//! refunds; a refund that fails gives its amount back. Refunds of a charge
//! paid with 4000 0000 0000 5126 (`pm_card_refundFail`) start `pending` and
//! fail after [`SandboxOptions::refund_failure_delay`](crate::SandboxOptions).
//! `POST /v1/test_helpers/refunds/{id}/fail` fails any pending or succeeded
//! refund at once (a sandbox extension).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::app::{ApiRequest, SharedApp};
use crate::error::ApiError;
use crate::event::EventRequest;
use crate::ids;
use crate::list::{Paging, PAGING_PARAMS};
use crate::payment::CardBehavior;
use crate::state::State as SandboxState;
use crate::timers::Action;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Refund {
    pub id: String,
    pub created: i64,
    pub amount: i64,
    pub currency: String,
    pub charge: String,
    pub payment_intent: Option<String>,
    pub customer: Option<String>,
    pub payment_method: Option<String>,
    /// `duplicate`, `fraudulent` or `requested_by_customer`.
    pub reason: Option<String>,
    pub metadata: BTreeMap<String, String>,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub failure_reason: Option<String>,
    pub balance_transaction: Option<String>,
    pub failure_balance_transaction: Option<String>,
    /// `card` or `sepa_debit`.
    pub destination_type: String,
    /// The card network's reference (ARN), once available.
    pub reference: Option<String>,
}

impl Refund {
    pub fn to_json(&self) -> Value {
        let destination = if self.destination_type == "card" {
            json!({
                "type": "card",
                "card": {
                    "reference": self.reference,
                    "reference_status": if self.reference.is_some() { "available" } else { "pending" },
                    "reference_type": "acquirer_reference_number",
                    "type": "refund"
                }
            })
        } else {
            json!({ "type": self.destination_type })
        };
        json!({
            "id": self.id,
            "object": "refund",
            "amount": self.amount,
            "balance_transaction": self.balance_transaction,
            "charge": self.charge,
            "created": self.created,
            "currency": self.currency,
            "customer": self.customer,
            "customer_account": null,
            "description": null,
            "destination_details": destination,
            "failure_balance_transaction": self.failure_balance_transaction,
            "failure_reason": self.failure_reason,
            "instructions_email": null,
            "metadata": self.metadata,
            "next_action": null,
            "payment_intent": self.payment_intent,
            "payment_method": self.payment_method,
            "pending_reason": (self.status == "pending").then_some("processing"),
            "presentment_details": null,
            "reason": self.reason,
            "receipt_number": null,
            "source_transfer_reversal": null,
            "status": self.status,
            "transfer_reversal": null
        })
    }
}

impl SandboxState {
    /// The charge object with its refunds, newest first.
    pub fn charge_json(&self, id: &str) -> Option<Value> {
        let charge = self.charges.get(id)?;
        let refunds = charge
            .refunds
            .iter()
            .rev()
            .filter_map(|r| self.refunds.get(r))
            .map(Refund::to_json)
            .collect();
        Some(charge.to_json(refunds))
    }
}

const REASONS: [&str; 3] = ["duplicate", "fraudulent", "requested_by_customer"];

/// The charge a refund request names (`charge` and/or `payment_intent`).
fn charge_to_refund(st: &SandboxState, charge: Option<&str>, pi: Option<&str>) -> Result<String, ApiError> {
    let from_pi = match pi {
        None => None,
        Some(pi_id) => {
            let pi = st
                .payment_intents
                .get(pi_id)
                .ok_or_else(|| ApiError::no_such("payment_intent", pi_id, "payment_intent"))?;
            match (&pi.latest_charge, pi.status.as_str()) {
                (Some(ch), "succeeded") => Some(ch.clone()),
                _ => {
                    return Err(ApiError::invalid(
                        format!("This PaymentIntent ({pi_id}) does not have a successful charge to refund."),
                        Some("payment_intent"),
                    )
                    .with_code("charge_not_refundable"))
                }
            }
        }
    };
    match (charge, from_pi) {
        (None, None) => Err(ApiError::invalid(
            "One of the following params should be provided for this request: payment_intent or charge.",
            None,
        )),
        (Some(ch), Some(pi_charge)) if ch != pi_charge => Err(ApiError::invalid(
            format!("Charge {ch} does not belong to the PaymentIntent given."),
            Some("charge"),
        )),
        (Some(ch), _) if !st.charges.contains_key(ch) => Err(ApiError::no_such("charge", ch, "charge")),
        (Some(ch), _) => Ok(ch.to_owned()),
        (None, Some(pi_charge)) => Ok(pi_charge),
    }
}

/// Refuses what Stripe refuses: unpaid, disputed and fully refunded charges,
/// and amounts above what is left.
fn check_refundable(st: &SandboxState, charge_id: &str, amount: Option<i64>) -> Result<i64, ApiError> {
    let charge = &st.charges[charge_id];
    if charge.status != "succeeded" {
        return Err(ApiError::invalid(
            format!("Charge {charge_id} has not succeeded and cannot be refunded."),
            Some("charge"),
        )
        .with_code("charge_not_refundable"));
    }
    if st.open_or_lost_dispute(charge_id).is_some() {
        return Err(ApiError::invalid(
            format!("Charge {charge_id} has been charged back; cannot issue a refund."),
            Some("charge"),
        )
        .with_code("charge_disputed"));
    }
    let remaining = charge.refundable();
    if remaining == 0 {
        return Err(
            ApiError::invalid(format!("Charge {charge_id} has already been refunded."), Some("charge"))
                .with_code("charge_already_refunded"),
        );
    }
    let amount = amount.unwrap_or(remaining);
    if amount < 1 {
        return Err(ApiError::invalid("Invalid positive integer", Some("amount")));
    }
    if amount > remaining {
        let money = |m: i64| {
            format!(
                "{}{}",
                crate::hosted::format_amount(m),
                charge.currency.to_ascii_uppercase()
            )
        };
        return Err(ApiError::invalid(
            format!(
                "Refund amount ({}) is greater than unrefunded amount on charge ({})",
                money(amount),
                money(remaining)
            ),
            Some("amount"),
        )
        .with_code("amount_too_large"));
    }
    Ok(amount)
}

/// `POST /v1/refunds`
pub async fn create(State(app): State<SharedApp>, req: ApiRequest) -> Result<Json<Value>, ApiError> {
    let p = &req.params;
    p.allow_only(&[
        "amount",
        "charge",
        "payment_intent",
        "reason",
        "metadata",
        "instructions_email",
    ])?;
    let reason = p.str("reason").map(str::to_owned);
    if let Some(r) = &reason {
        if !REASONS.contains(&r.as_str()) {
            return Err(ApiError::invalid(format!("Invalid reason: {r}"), Some("reason")));
        }
    }
    let metadata = p.metadata("metadata")?;
    let mut st = app.state.lock().await;
    let charge_id = charge_to_refund(&st, p.str("charge"), p.str("payment_intent"))?;
    let amount = check_refundable(&st, &charge_id, p.i64("amount")?)?;
    let hook = app.webhook_url();
    let hook = hook.as_deref();
    let now = st.now();
    let charge = st.charges.get_mut(&charge_id).expect("checked above");
    let fails = charge.method.behavior() == CardBehavior::RefundsFail;
    let mut refund = Refund {
        id: ids::new_id("re"),
        created: now,
        amount,
        currency: charge.currency.clone(),
        charge: charge_id.clone(),
        payment_intent: Some(charge.payment_intent.clone()),
        customer: charge.customer.clone(),
        payment_method: Some(charge.payment_method.clone()),
        reason,
        metadata,
        status: if fails { "pending" } else { "succeeded" }.into(),
        failure_reason: None,
        balance_transaction: Some(ids::new_id("txn")),
        failure_balance_transaction: None,
        destination_type: charge.method.type_name().to_owned(),
        reference: None,
    };
    charge.amount_refunded += amount;
    charge.refunds.push(refund.id.clone());
    debug_assert!(charge.amount_refunded <= charge.amount);
    st.emit("refund.created", refund.to_json(), &req.request, hook);
    st.refunds.insert(refund.id.clone(), refund.clone());
    let charge_json = st.charge_json(&charge_id).expect("exists");
    st.emit("charge.refunded", charge_json, &req.request, hook);
    if fails {
        st.schedule(
            app.options.refund_failure_delay,
            Action::FailRefund {
                refund: refund.id.clone(),
            },
        );
    } else if refund.destination_type == "card" {
        // The card network's reference arrives a moment later on Stripe.
        refund.reference = Some(ids::random_token(23));
        st.emit("refund.updated", refund.to_json(), &EventRequest::default(), hook);
        st.refunds.insert(refund.id.clone(), refund.clone());
    }
    app.commit(&st).await?;
    Ok(Json(refund.to_json()))
}

/// Fails a pending or succeeded refund: the charge gets the amount back as
/// refundable, and `refund.updated` and `refund.failed` are sent.
pub fn fail(
    st: &mut SandboxState,
    id: &str,
    failure_reason: &str,
    request: &EventRequest,
    hook: Option<&str>,
) -> Result<Value, ApiError> {
    let refund = st
        .refunds
        .get_mut(id)
        .ok_or_else(|| ApiError::no_such("refund", id, "refund"))?;
    if !["pending", "succeeded"].contains(&refund.status.as_str()) {
        return Err(ApiError::unexpected_state(
            "refund_unexpected_state",
            format!(
                "Only a pending or succeeded refund can fail; this refund has a status of {}.",
                refund.status
            ),
        ));
    }
    refund.status = "failed".into();
    refund.failure_reason = Some(failure_reason.to_owned());
    refund.failure_balance_transaction = Some(ids::new_id("txn"));
    let (json, charge_id, amount) = (refund.to_json(), refund.charge.clone(), refund.amount);
    if let Some(charge) = st.charges.get_mut(&charge_id) {
        charge.amount_refunded -= amount;
        debug_assert!(charge.amount_refunded >= 0);
    }
    st.emit("refund.updated", json.clone(), request, hook);
    st.emit("refund.failed", json.clone(), request, hook);
    Ok(json)
}

const FAILURE_REASONS: [&str; 5] = [
    "lost_or_stolen_card",
    "expired_or_canceled_card",
    "declined",
    "merchant_request",
    "unknown",
];

/// `POST /v1/test_helpers/refunds/{id}/fail` (sandbox extension): fails a
/// pending or succeeded refund now; optional `failure_reason` (default
/// `declined`).
pub async fn fail_handler(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
    req: ApiRequest,
) -> Result<Json<Value>, ApiError> {
    req.params.allow_only(&["failure_reason"])?;
    let reason = req.params.str("failure_reason").unwrap_or("declined");
    if !FAILURE_REASONS.contains(&reason) {
        return Err(ApiError::invalid(
            format!("Invalid failure_reason: {reason}"),
            Some("failure_reason"),
        ));
    }
    let mut st = app.state.lock().await;
    let json = fail(&mut st, &id, reason, &req.request, app.webhook_url().as_deref())?;
    st.timers
        .retain(|t| t.action != Action::FailRefund { refund: id.clone() });
    app.commit(&st).await?;
    Ok(Json(json))
}

/// `GET /v1/refunds/{id}`
pub async fn retrieve(State(app): State<SharedApp>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let st = app.state.lock().await;
    let r = st
        .refunds
        .get(&id)
        .ok_or_else(|| ApiError::no_such("refund", &id, "refund"))?;
    Ok(Json(r.to_json()))
}

/// `GET /v1/refunds`: newest first, optionally for one `charge` or `payment_intent`.
pub async fn list(State(app): State<SharedApp>, req: ApiRequest) -> Result<Json<Value>, ApiError> {
    let p = &req.params;
    p.allow_only(&[&PAGING_PARAMS[..], &["charge", "payment_intent", "created"]].concat())?;
    let paging = Paging::from_params(p)?;
    let st = app.state.lock().await;
    let mut refunds: Vec<&Refund> = st
        .refunds
        .values()
        .filter(|r| p.str("charge").is_none_or(|c| r.charge == c))
        .filter(|r| {
            p.str("payment_intent")
                .is_none_or(|pi| r.payment_intent.as_deref() == Some(pi))
        })
        .collect();
    // Newest first; within a second, the later refund of a charge first.
    let order = |r: &Refund| {
        let nth = st
            .charges
            .get(&r.charge)
            .map_or(0, |c| c.refunds.iter().position(|x| *x == r.id).unwrap_or(0));
        (r.created, nth)
    };
    refunds.sort_by_key(|r| std::cmp::Reverse(order(r)));
    let items = refunds.into_iter().map(Refund::to_json).collect();
    Ok(Json(paging.page("/v1/refunds", "refund", items)?))
}
