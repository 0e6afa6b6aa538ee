//! Charges: created by payments (never directly), retrievable, with a
//! hosted receipt page. Refunds add up in `amount_refunded`; a dispute sets
//! `disputed`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::response::Html;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::app::SharedApp;
use crate::error::ApiError;
use crate::payment::PaymentMethodDetails;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Charge {
    pub id: String,
    pub created: i64,
    pub amount: i64,
    pub amount_refunded: i64,
    pub currency: String,
    pub customer: Option<String>,
    pub payment_intent: String,
    pub payment_method: String,
    pub method: PaymentMethodDetails,
    /// `succeeded`, `pending` or `failed`.
    pub status: String,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub balance_transaction: Option<String>,
    pub receipt_url: String,
    pub description: Option<String>,
    pub metadata: BTreeMap<String, String>,
    /// Refund ids, oldest first.
    #[serde(default)]
    pub refunds: Vec<String>,
    #[serde(default)]
    pub disputed: bool,
}

impl Charge {
    /// What is left to refund (pending and succeeded refunds count).
    pub fn refundable(&self) -> i64 {
        if self.status == "succeeded" {
            self.amount - self.amount_refunded
        } else {
            0
        }
    }

    /// The charge object; `refunds` are its refund objects, newest first.
    pub fn to_json(&self, refunds: Vec<Value>) -> Value {
        let succeeded = self.status == "succeeded";
        let failed = self.status == "failed";
        let outcome = if failed {
            json!({
                "advice_code": null, "network_advice_code": null, "network_decline_code": null,
                "network_status": "declined_by_network",
                "reason": self.failure_code.as_deref().map(|c| if c == "card_declined" { "generic_decline" } else { c }),
                "risk_level": "normal", "risk_score": 32,
                "seller_message": "The bank did not return any further details with this decline.",
                "type": "issuer_declined"
            })
        } else {
            json!({
                "advice_code": null, "network_advice_code": null, "network_decline_code": null,
                "network_status": "approved_by_network", "reason": null,
                "risk_level": "normal", "risk_score": 32,
                "seller_message": "Payment complete.", "type": "authorized"
            })
        };
        json!({
            "id": self.id,
            "object": "charge",
            "amount": self.amount,
            "amount_captured": if succeeded { self.amount } else { 0 },
            "amount_refunded": self.amount_refunded,
            "application": null,
            "application_fee": null,
            "application_fee_amount": null,
            "balance_transaction": self.balance_transaction,
            "billing_details": {
                "address": null,
                "email": null,
                "name": self.method.holder_name(),
                "phone": null,
                "tax_id": null
            },
            "calculated_statement_descriptor": "CREDITD SANDBOX",
            "captured": succeeded,
            "created": self.created,
            "currency": self.currency,
            "customer": self.customer,
            "description": self.description,
            "disputed": self.disputed,
            "failure_balance_transaction": null,
            "failure_code": self.failure_code,
            "failure_message": self.failure_message,
            "fraud_details": {},
            "livemode": false,
            "metadata": self.metadata,
            "on_behalf_of": null,
            "outcome": outcome,
            "paid": succeeded,
            "payment_intent": self.payment_intent,
            "payment_method": self.payment_method,
            "payment_method_details": self.method.charge_details(self.amount),
            "receipt_email": null,
            "receipt_number": null,
            "receipt_url": self.receipt_url,
            "refunded": self.amount_refunded > 0 && self.amount_refunded == self.amount,
            "refunds": {
                "object": "list",
                "data": refunds,
                "has_more": false,
                "url": format!("/v1/charges/{}/refunds", self.id)
            },
            "review": null,
            "shipping": null,
            "source": null,
            "source_transfer": null,
            "statement_descriptor": null,
            "statement_descriptor_suffix": null,
            "status": self.status,
            "transfer_data": null,
            "transfer_group": null
        })
    }
}

/// `GET /v1/charges/{id}`
pub async fn retrieve(State(app): State<SharedApp>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let st = app.state.lock().await;
    st.charge_json(&id)
        .map(Json)
        .ok_or_else(|| ApiError::no_such("charge", &id, "id"))
}

/// `GET /receipts/{id}`: the page a charge's `receipt_url` points at.
pub async fn receipt_page(State(app): State<SharedApp>, Path(id): Path<String>) -> Result<Html<String>, ApiError> {
    let st = app.state.lock().await;
    let c = st
        .charges
        .get(&id)
        .ok_or_else(|| ApiError::no_such("charge", &id, "id"))?;
    let body = format!(
        "<h1>Receipt</h1><dl><dt>Charge</dt><dd>{}</dd><dt>Amount</dt><dd>{} {}</dd>\
         <dt>Status</dt><dd>{}</dd><dt>Paid with</dt><dd>{}</dd></dl>",
        crate::hosted::escape(&c.id),
        crate::hosted::format_amount(c.amount),
        c.currency.to_ascii_uppercase(),
        crate::hosted::escape(&c.status),
        crate::hosted::escape(&c.method.summary()),
    );
    Ok(Html(crate::hosted::page("Receipt", &body)))
}
