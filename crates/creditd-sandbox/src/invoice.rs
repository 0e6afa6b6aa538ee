//! Invoices of subscriptions: created finalized (`invoice.created`,
//! `invoice.finalized`), paid with the subscription's saved card through a
//! PaymentIntent (`invoice.paid`, `invoice.payment_succeeded`) or failing
//! (`invoice.payment_failed`, retried by the clock), retrieve, list, pay.
//!
//! As on Stripe for API 2026-09-30, the subscription id is both
//! `subscription` and `parent.subscription_details.subscription`; each line
//! carries its price and the period it pays for. The invoice-level
//! `period_start`/`period_end` follow Stripe: the previous period for a
//! renewal, the creation time otherwise.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::app::{ApiRequest, App, SharedApp};
use crate::clock::DAY_S;
use crate::error::ApiError;
use crate::event::EventRequest;
use crate::ids;
use crate::list::{Paging, PAGING_PARAMS};
use crate::payment::{self, Decline, Outcome, PaymentMethodDetails};
use crate::payment_intent::PaymentIntent;
use crate::price::Price;
use crate::state::State as SandboxState;

/// Days between automatic retries of a failed invoice payment; after the
/// last one fails the subscription is canceled (Stripe's default).
pub const RETRY_GAPS_DAYS: [i64; 3] = [3, 2, 2];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InvoiceLine {
    pub id: String,
    /// Negative for the unused time of a replaced price.
    pub amount: i64,
    pub price: Price,
    pub quantity: u64,
    pub period_start: i64,
    pub period_end: i64,
    pub proration: bool,
    pub description: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Invoice {
    pub id: String,
    pub number: String,
    pub created: i64,
    pub customer: String,
    pub subscription: String,
    pub subscription_item: String,
    /// `subscription_create`, `subscription_cycle` or `subscription_update`.
    pub billing_reason: String,
    /// `draft`, `open`, `paid`, `uncollectible` or `void`.
    pub status: String,
    pub currency: String,
    pub lines: Vec<InvoiceLine>,
    pub amount_paid: i64,
    pub attempt_count: u64,
    pub period_start: i64,
    pub period_end: i64,
    pub payment_intent: Option<String>,
    pub finalized_at: Option<i64>,
    pub paid_at: Option<i64>,
    pub next_payment_attempt: Option<i64>,
}

impl Invoice {
    pub fn total(&self) -> i64 {
        self.lines.iter().map(|l| l.amount).sum()
    }

    /// A negative total (a downgrade's credit) is not collected.
    pub fn amount_due(&self) -> i64 {
        self.total().max(0)
    }

    fn line_json(&self, l: &InvoiceLine) -> Value {
        json!({
            "id": l.id,
            "object": "line_item",
            "amount": l.amount,
            "currency": self.currency,
            "description": l.description,
            "discount_amounts": [],
            "discountable": !l.proration,
            "discounts": [],
            "invoice": self.id,
            "livemode": false,
            "metadata": {},
            "parent": {
                "type": "subscription_item_details",
                "invoice_item_details": null,
                "subscription_item_details": {
                    "invoice_item": null,
                    "proration": l.proration,
                    "proration_details": {"credited_items": null},
                    "subscription": self.subscription,
                    "subscription_item": self.subscription_item
                }
            },
            "period": {"start": l.period_start, "end": l.period_end},
            "pretax_credit_amounts": [],
            "pricing": {
                "type": "price_details",
                "price_details": {"price": l.price.id, "product": l.price.product},
                "unit_amount_decimal": l.price.unit_amount.to_string()
            },
            "quantity": l.quantity,
            "quantity_decimal": l.quantity.to_string(),
            "subscription": self.subscription,
            "subtotal": l.amount,
            "taxes": []
        })
    }

    pub fn to_json(&self) -> Value {
        let total = self.total();
        let due = self.amount_due();
        let paid = self.status == "paid";
        json!({
            "id": self.id,
            "object": "invoice",
            "account_country": "US",
            "account_name": "creditd sandbox",
            "account_tax_ids": null,
            "amount_due": due,
            "amount_overpaid": 0,
            "amount_paid": self.amount_paid,
            "amount_remaining": if paid { 0 } else { due },
            "amount_shipping": 0,
            "application": null,
            "attempt_count": self.attempt_count,
            "attempted": self.attempt_count > 0,
            "auto_advance": !paid,
            "automatic_tax": {"disabled_reason": null, "enabled": false, "liability": null, "provider": null, "status": null},
            "automatically_finalizes_at": null,
            "billing_reason": self.billing_reason,
            "collection_method": "charge_automatically",
            "confirmation_secret": null,
            "created": self.created,
            "currency": self.currency,
            "custom_fields": null,
            "customer": self.customer,
            "customer_account": null,
            "customer_address": null,
            "customer_email": null,
            "customer_name": null,
            "customer_phone": null,
            "customer_shipping": null,
            "customer_tax_exempt": "none",
            "customer_tax_ids": [],
            "default_payment_method": null,
            "default_source": null,
            "default_tax_rates": [],
            "description": null,
            "discounts": [],
            "due_date": null,
            "effective_at": self.finalized_at,
            "ending_balance": self.finalized_at.map(|_| 0),
            "footer": null,
            "from_invoice": null,
            "hosted_invoice_url": null,
            "invoice_pdf": null,
            "issuer": {"type": "self"},
            "last_finalization_error": null,
            "latest_revision": null,
            "lines": {
                "object": "list",
                "data": self.lines.iter().map(|l| self.line_json(l)).collect::<Vec<_>>(),
                "has_more": false,
                "url": format!("/v1/invoices/{}/lines", self.id)
            },
            "livemode": false,
            "metadata": {},
            "next_payment_attempt": self.next_payment_attempt,
            "number": self.number,
            "on_behalf_of": null,
            "parent": {
                "type": "subscription_details",
                "quote_details": null,
                "subscription_details": {"metadata": {}, "subscription": self.subscription}
            },
            "payment_settings": {"default_mandate": null, "payment_method_options": null, "payment_method_types": null},
            "period_end": self.period_end,
            "period_start": self.period_start,
            "post_payment_credit_notes_amount": 0,
            "pre_payment_credit_notes_amount": 0,
            "receipt_number": null,
            "rendering": null,
            "shipping_cost": null,
            "shipping_details": null,
            "starting_balance": 0,
            "statement_descriptor": null,
            "status": self.status,
            "status_transitions": {
                "finalized_at": self.finalized_at,
                "marked_uncollectible_at": null,
                "paid_at": self.paid_at,
                "voided_at": null
            },
            "subscription": self.subscription,
            "subtotal": total,
            "subtotal_excluding_tax": total,
            "test_clock": null,
            "total": total,
            "total_discount_amounts": [],
            "total_excluding_tax": total,
            "total_pretax_credit_amounts": [],
            "total_taxes": [],
            "webhooks_delivered_at": self.created
        })
    }
}

/// Who an invoice bills and for what: the parts a subscription supplies.
pub struct NewInvoice {
    pub customer: String,
    pub subscription: String,
    pub subscription_item: String,
    pub billing_reason: &'static str,
    pub currency: String,
    pub lines: Vec<InvoiceLine>,
    pub period_start: i64,
    pub period_end: i64,
}

/// Creates and finalizes an invoice (`invoice.created`, `invoice.finalized`);
/// returns its id. Paying it is [`pay`].
pub fn create(st: &mut SandboxState, new: NewInvoice, request: &EventRequest, hook: Option<&str>) -> String {
    let now = st.now();
    let mut invoice = Invoice {
        id: ids::new_id("in"),
        number: format!("SBX-{:06}", st.invoices.len() + 1),
        created: now,
        customer: new.customer,
        subscription: new.subscription,
        subscription_item: new.subscription_item,
        billing_reason: new.billing_reason.to_owned(),
        status: "draft".into(),
        currency: new.currency,
        lines: new.lines,
        amount_paid: 0,
        attempt_count: 0,
        period_start: new.period_start,
        period_end: new.period_end,
        payment_intent: None,
        finalized_at: None,
        paid_at: None,
        next_payment_attempt: None,
    };
    st.emit("invoice.created", invoice.to_json(), request, hook);
    invoice.status = "open".into();
    invoice.finalized_at = Some(now);
    invoice.next_payment_attempt = Some(now);
    st.emit("invoice.finalized", invoice.to_json(), request, hook);
    let id = invoice.id.clone();
    st.invoices.insert(id.clone(), invoice);
    id
}

fn mark_paid(st: &mut SandboxState, id: &str, request: &EventRequest, hook: Option<&str>) {
    let now = st.now();
    let invoice = st.invoices.get_mut(id).expect("caller checked");
    invoice.status = "paid".into();
    invoice.amount_paid = invoice.amount_due();
    invoice.paid_at = Some(now);
    invoice.next_payment_attempt = None;
    let json = invoice.to_json();
    st.emit("invoice.paid", json.clone(), request, hook);
    st.emit("invoice.payment_succeeded", json, request, hook);
}

/// Charges an open invoice with `method`. On a decline the invoice stays
/// open with its next automatic retry set (none after the last).
pub fn pay(
    st: &mut SandboxState,
    app: &App,
    id: &str,
    method: PaymentMethodDetails,
    outcome: Outcome,
    request: &EventRequest,
) -> Result<(), Decline> {
    let hook = app.webhook_url();
    let hook = hook.as_deref();
    let invoice = st.invoices.get(id).expect("caller checked").clone();
    debug_assert_eq!(invoice.status, "open");
    if invoice.amount_due() == 0 {
        mark_paid(st, id, request, hook);
        return Ok(());
    }
    // One PaymentIntent per invoice, reused by retries.
    let pi_id = match invoice.payment_intent {
        Some(pi) => pi,
        None => {
            let mut pi = PaymentIntent::new(
                invoice.amount_due(),
                &invoice.currency,
                Some(invoice.customer.clone()),
                BTreeMap::new(),
            );
            pi.created = st.now();
            pi.description = Some(format!("Subscription invoice {}", invoice.number));
            let pi_id = pi.id.clone();
            st.emit("payment_intent.created", pi.to_json(), request, hook);
            st.payment_intents.insert(pi_id.clone(), pi);
            pi_id
        }
    };
    let result = payment::attempt(st, app, &pi_id, method, outcome, request);
    let now = st.now();
    let invoice = st.invoices.get_mut(id).expect("exists");
    invoice.payment_intent = Some(pi_id);
    invoice.attempt_count += 1;
    match result {
        Ok(()) => {
            mark_paid(st, id, request, hook);
            Ok(())
        }
        Err(decline) => {
            let gap = RETRY_GAPS_DAYS.get(invoice.attempt_count as usize - 1);
            invoice.next_payment_attempt = gap.map(|days| now + days * DAY_S);
            let json = invoice.to_json();
            st.emit("invoice.payment_failed", json, request, hook);
            Err(decline)
        }
    }
}

/// `POST /v1/invoices/{id}/pay`: pays an open invoice now, with
/// `payment_method` (a test token) or the subscription's saved card. A
/// successful payment reactivates a `past_due` subscription.
pub async fn pay_handler(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
    req: ApiRequest,
) -> Result<Json<Value>, ApiError> {
    req.params.allow_only(&["payment_method", "off_session"])?;
    let mut st = app.state.lock().await;
    let invoice = st
        .invoices
        .get(&id)
        .ok_or_else(|| ApiError::no_such("invoice", &id, "invoice"))?;
    if invoice.status != "open" {
        return Err(ApiError::unexpected_state(
            "invoice_not_open",
            format!("Invoice {id} is {} and cannot be paid.", invoice.status),
        ));
    }
    let sub_id = invoice.subscription.clone();
    let method = match req.params.str("payment_method") {
        Some(pm) => payment::saved_method_for_token(pm)
            .ok_or_else(|| ApiError::no_such("PaymentMethod", pm, "payment_method"))?,
        None => st
            .subscriptions
            .get(&sub_id)
            .map(|s| s.payment_method.clone())
            .ok_or_else(|| ApiError::invalid("This invoice has no payment method to charge.", None))?,
    };
    let outcome = payment::saved_method_outcome(&method);
    let result = pay(&mut st, &app, &id, method, outcome, &req.request);
    crate::subscription::after_invoice_attempt(
        &mut st,
        &sub_id,
        result.is_ok(),
        &req.request,
        app.webhook_url().as_deref(),
    );
    let body = st.invoices[&id].to_json();
    app.commit(&st).await?;
    match result {
        Ok(()) => Ok(Json(body)),
        Err(d) => {
            let mut err = ApiError::card(&d.code, d.decline_code.as_deref(), &d.message);
            err.extra.insert("charge".into(), json!(d.charge));
            Err(err)
        }
    }
}

/// `GET /v1/invoices/{id}`
pub async fn retrieve(State(app): State<SharedApp>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let st = app.state.lock().await;
    let i = st
        .invoices
        .get(&id)
        .ok_or_else(|| ApiError::no_such("invoice", &id, "invoice"))?;
    Ok(Json(i.to_json()))
}

/// `GET /v1/invoices`: newest first; filters `customer`, `subscription`, `status`.
pub async fn list(State(app): State<SharedApp>, req: ApiRequest) -> Result<Json<Value>, ApiError> {
    let p = &req.params;
    p.allow_only(&[&PAGING_PARAMS[..], &["customer", "subscription", "status", "created"]].concat())?;
    let paging = Paging::from_params(p)?;
    let st = app.state.lock().await;
    let mut invoices: Vec<&Invoice> = st
        .invoices
        .values()
        .filter(|i| p.str("customer").is_none_or(|c| i.customer == c))
        .filter(|i| p.str("subscription").is_none_or(|s| i.subscription == s))
        .filter(|i| p.str("status").is_none_or(|s| i.status == s))
        .collect();
    // Numbers increase with creation: newest first.
    invoices.sort_by(|a, b| b.number.cmp(&a.number));
    let items = invoices.into_iter().map(Invoice::to_json).collect();
    Ok(Json(paging.page("/v1/invoices", "invoice", items)?))
}
