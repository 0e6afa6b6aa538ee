//! Disputes, as in Stripe's test mode: a charge paid with
//! 4000 0000 0000 0259 (`pm_card_createDispute`) is disputed a moment later
//! (`needs_response`, funds withdrawn). Submitting evidence with
//! `uncategorized_text` `winning_evidence` closes it `won` (funds
//! reinstated), `losing_evidence` closes it `lost`; any other evidence leaves
//! it `under_review`. `POST /v1/disputes/{id}/close` accepts it (`lost`).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::app::{ApiRequest, SharedApp};
use crate::error::ApiError;
use crate::event::EventRequest;
use crate::ids;
use crate::list::{Paging, PAGING_PARAMS};
use crate::state::State as SandboxState;

/// Stripe gives merchants about a week to answer in test mode.
const RESPONSE_WINDOW_S: i64 = 7 * 24 * 3600;

/// The evidence fields a dispute accepts (`evidence[...]`).
const EVIDENCE_FIELDS: [&str; 27] = [
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
];

/// Money moved by a dispute: withdrawn when it opens, reinstated when won.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DisputeTransaction {
    pub id: String,
    pub created: i64,
    /// Negative when withdrawn.
    pub amount: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dispute {
    pub id: String,
    pub created: i64,
    pub amount: i64,
    pub currency: String,
    pub charge: String,
    pub payment_intent: Option<String>,
    pub reason: String,
    /// `needs_response`, `under_review`, `won` or `lost`.
    pub status: String,
    pub evidence: BTreeMap<String, String>,
    pub submission_count: u64,
    pub due_by: i64,
    pub metadata: BTreeMap<String, String>,
    pub transactions: Vec<DisputeTransaction>,
    pub card_brand: String,
}

impl Dispute {
    pub fn is_closed(&self) -> bool {
        ["won", "lost", "warning_closed"].contains(&self.status.as_str())
    }

    fn transaction_json(&self, t: &DisputeTransaction) -> Value {
        let (description, category) = if t.amount < 0 {
            (format!("Chargeback withdrawal for {}", self.charge), "dispute")
        } else {
            (format!("Chargeback reversal for {}", self.charge), "dispute_reversal")
        };
        json!({
            "id": t.id,
            "object": "balance_transaction",
            "amount": t.amount,
            "available_on": t.created,
            "balance_type": "payments",
            "created": t.created,
            "currency": self.currency,
            "description": description,
            "exchange_rate": null,
            "fee": 0,
            "fee_details": [],
            "net": t.amount,
            "reporting_category": category,
            "source": self.id,
            "status": "available",
            "type": "adjustment"
        })
    }

    pub fn to_json(&self) -> Value {
        let mut evidence: Map<String, Value> = EVIDENCE_FIELDS
            .iter()
            .map(|f| ((*f).to_owned(), json!(self.evidence.get(*f))))
            .collect();
        evidence.insert("enhanced_evidence".into(), json!({}));
        let open = !self.is_closed();
        json!({
            "id": self.id,
            "object": "dispute",
            "amount": self.amount,
            "balance_transactions": self
                .transactions
                .iter()
                .map(|t| self.transaction_json(t))
                .collect::<Vec<_>>(),
            "charge": self.charge,
            "created": self.created,
            "currency": self.currency,
            "enhanced_eligibility_types": [],
            "evidence": evidence,
            "evidence_details": {
                "due_by": open.then_some(self.due_by),
                "enhanced_eligibility": {},
                "has_evidence": !self.evidence.is_empty(),
                "past_due": false,
                "submission_count": self.submission_count
            },
            "is_charge_refundable": false,
            "livemode": false,
            "metadata": self.metadata,
            "network_reason_code": "10.4",
            "payment_intent": self.payment_intent,
            "payment_method_details": {
                "type": "card",
                "card": {
                    "brand": self.card_brand,
                    "case_type": "chargeback",
                    "network": self.card_brand,
                    "network_reason_code": "10.4"
                }
            },
            "reason": self.reason,
            "status": self.status
        })
    }
}

impl SandboxState {
    /// A dispute that blocks refunds of the charge (open, or lost).
    pub fn open_or_lost_dispute(&self, charge: &str) -> Option<&Dispute> {
        self.disputes
            .values()
            .find(|d| d.charge == charge && (d.status == "lost" || !d.is_closed()))
    }
}

/// The cardholder disputes what is left of a succeeded charge:
/// `charge.dispute.created` and `charge.dispute.funds_withdrawn`.
pub fn open(st: &mut SandboxState, charge_id: &str, hook: Option<&str>) {
    let now = st.now();
    let Some(charge) = st.charges.get_mut(charge_id) else {
        return;
    };
    let amount = charge.amount - charge.amount_refunded;
    if charge.status != "succeeded" || charge.disputed || amount <= 0 {
        return;
    }
    charge.disputed = true;
    let card_brand = match &charge.method {
        crate::payment::PaymentMethodDetails::Card { brand, .. } => brand.clone(),
        crate::payment::PaymentMethodDetails::SepaDebit { .. } => "visa".into(),
    };
    let dispute = Dispute {
        id: ids::new_id("dp"),
        created: now,
        amount,
        currency: charge.currency.clone(),
        charge: charge_id.to_owned(),
        payment_intent: Some(charge.payment_intent.clone()),
        reason: "fraudulent".into(),
        status: "needs_response".into(),
        evidence: BTreeMap::new(),
        submission_count: 0,
        due_by: now + RESPONSE_WINDOW_S,
        metadata: BTreeMap::new(),
        transactions: vec![DisputeTransaction {
            id: ids::new_id("txn"),
            created: now,
            amount: -amount,
        }],
        card_brand,
    };
    let json = dispute.to_json();
    st.disputes.insert(dispute.id.clone(), dispute);
    let request = EventRequest::default();
    st.emit("charge.dispute.created", json.clone(), &request, hook);
    st.emit("charge.dispute.funds_withdrawn", json, &request, hook);
}

/// Closes a dispute `won` or `lost` with Stripe's events.
fn close(st: &mut SandboxState, id: &str, won: bool, request: &EventRequest, hook: Option<&str>) {
    let now = st.now();
    let d = st.disputes.get_mut(id).expect("caller checked");
    d.status = if won { "won" } else { "lost" }.into();
    if won {
        d.transactions.push(DisputeTransaction {
            id: ids::new_id("txn"),
            created: now,
            amount: d.amount,
        });
    }
    let json = d.to_json();
    st.emit("charge.dispute.closed", json.clone(), request, hook);
    if won {
        st.emit("charge.dispute.funds_reinstated", json, request, hook);
    }
}

fn open_dispute<'a>(st: &'a mut SandboxState, id: &str) -> Result<&'a mut Dispute, ApiError> {
    let d = st
        .disputes
        .get_mut(id)
        .ok_or_else(|| ApiError::no_such("dispute", id, "dispute"))?;
    if d.is_closed() {
        return Err(ApiError::unexpected_state(
            "dispute_already_closed",
            format!("This dispute is already closed (status {}).", d.status),
        ));
    }
    Ok(d)
}

/// `POST /v1/disputes/{id}`: stages evidence and, with `submit` (default
/// true, as on Stripe), submits it: `charge.dispute.updated`, then for the
/// magic texts `charge.dispute.closed` (and `funds_reinstated` when won).
pub async fn update(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
    req: ApiRequest,
) -> Result<Json<Value>, ApiError> {
    let p = &req.params;
    p.allow_only(&["evidence", "metadata", "submit"])?;
    let submit = p.bool("submit")?.unwrap_or(true);
    let mut evidence = BTreeMap::new();
    if let Some(ev) = p.map("evidence") {
        if let Err(e) = ev.allow_only(&EVIDENCE_FIELDS) {
            let param = format!("evidence[{}]", e.param.unwrap_or_default());
            return Err(ApiError::invalid(
                format!("Received unknown parameter: {param}"),
                Some(&param),
            ));
        }
        for field in EVIDENCE_FIELDS {
            if let Some(v) = ev.str(field) {
                evidence.insert(field.to_owned(), v.to_owned());
            }
        }
    }
    let metadata = p.metadata("metadata")?;
    let mut st = app.state.lock().await;
    let d = open_dispute(&mut st, &id)?;
    d.evidence.extend(evidence);
    d.metadata.extend(metadata);
    if submit {
        d.submission_count += 1;
        d.status = "under_review".into();
    }
    let outcome = match (submit, d.evidence.get("uncategorized_text").map(|t| t.trim())) {
        (true, Some("winning_evidence")) => Some(true),
        (true, Some("losing_evidence")) => Some(false),
        _ => None,
    };
    let json = d.to_json();
    let hook = app.webhook_url();
    st.emit("charge.dispute.updated", json, &req.request, hook.as_deref());
    if let Some(won) = outcome {
        close(&mut st, &id, won, &req.request, hook.as_deref());
    }
    let body = st.disputes[&id].to_json();
    app.commit(&st).await?;
    Ok(Json(body))
}

/// `POST /v1/disputes/{id}/close`: the merchant accepts the dispute (`lost`).
pub async fn close_handler(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
    req: ApiRequest,
) -> Result<Json<Value>, ApiError> {
    req.params.allow_only(&[])?;
    let mut st = app.state.lock().await;
    open_dispute(&mut st, &id)?;
    close(&mut st, &id, false, &req.request, app.webhook_url().as_deref());
    let body = st.disputes[&id].to_json();
    app.commit(&st).await?;
    Ok(Json(body))
}

/// `GET /v1/disputes/{id}`
pub async fn retrieve(State(app): State<SharedApp>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let st = app.state.lock().await;
    let d = st
        .disputes
        .get(&id)
        .ok_or_else(|| ApiError::no_such("dispute", &id, "dispute"))?;
    Ok(Json(d.to_json()))
}

/// `GET /v1/disputes`: newest first, optionally for one `charge` or `payment_intent`.
pub async fn list(State(app): State<SharedApp>, req: ApiRequest) -> Result<Json<Value>, ApiError> {
    let p = &req.params;
    p.allow_only(&[&PAGING_PARAMS[..], &["charge", "payment_intent", "created"]].concat())?;
    let paging = Paging::from_params(p)?;
    let st = app.state.lock().await;
    let mut disputes: Vec<&Dispute> = st
        .disputes
        .values()
        .filter(|d| p.str("charge").is_none_or(|c| d.charge == c))
        .filter(|d| {
            p.str("payment_intent")
                .is_none_or(|pi| d.payment_intent.as_deref() == Some(pi))
        })
        .collect();
    disputes.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
    let items = disputes.into_iter().map(Dispute::to_json).collect();
    Ok(Json(paging.page("/v1/disputes", "dispute", items)?))
}
