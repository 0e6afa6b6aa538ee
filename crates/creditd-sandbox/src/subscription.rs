//! Subscriptions (one item each): started by Checkout in `subscription`
//! mode, renewed by the clock ([`crate::renewal`]), changed (`items[0][price]`
//! with `proration_behavior`), canceled at period end or at once.
//!
//! Event sets follow Stripe: start = `customer.subscription.created`
//! (`incomplete`), `invoice.created`, `invoice.finalized`, `invoice.paid`
//! (`subscription_create`), `customer.subscription.updated` (`active`);
//! plan change = `customer.subscription.updated` plus, with
//! `always_invoice`, a `subscription_update` invoice (with the default
//! `create_prorations`, the proration lines go on the next renewal invoice);
//! cancel = `customer.subscription.updated` (`cancel_at_period_end`), then
//! `customer.subscription.deleted`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::app::App;
use crate::clock::period_end;
use crate::event::EventRequest;
use crate::ids;
use crate::invoice::{self, InvoiceLine, NewInvoice};
use crate::payment::{Decline, Outcome, PaymentMethodDetails};
use crate::price::Price;
use crate::state::State as SandboxState;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub created: i64,
    pub customer: String,
    /// `incomplete`, `active`, `past_due` or `canceled`.
    pub status: String,
    pub item_id: String,
    pub price: Price,
    pub quantity: u64,
    pub billing_cycle_anchor: i64,
    /// Index of the current period (0 = the first).
    pub period_index: i64,
    pub current_period_start: i64,
    pub current_period_end: i64,
    pub cancel_at_period_end: bool,
    pub canceled_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub latest_invoice: Option<String>,
    /// The saved card renewals charge.
    pub payment_method: PaymentMethodDetails,
    pub payment_method_id: String,
    pub metadata: BTreeMap<String, String>,
    /// Proration lines waiting for the next renewal invoice.
    pub pending_prorations: Vec<InvoiceLine>,
}

/// A price as the legacy `plan` object subscription items still carry.
fn plan_json(p: &Price) -> Value {
    let r = p.recurring.as_ref();
    json!({
        "id": p.id,
        "object": "plan",
        "active": p.active,
        "amount": p.unit_amount,
        "amount_decimal": p.unit_amount.to_string(),
        "billing_scheme": "per_unit",
        "created": p.created,
        "currency": p.currency,
        "interval": r.map_or("month", |r| r.interval.as_str()),
        "interval_count": r.map_or(1, |r| r.interval_count),
        "livemode": false,
        "metadata": p.metadata,
        "meter": null,
        "nickname": p.nickname,
        "product": p.product,
        "tiers_mode": null,
        "transform_usage": null,
        "trial_period_days": null,
        "usage_type": "licensed"
    })
}

impl Subscription {
    pub fn is_live(&self) -> bool {
        self.status != "canceled"
    }

    /// End of period `n` for this subscription's price.
    pub fn period_end_of(&self, n: i64) -> i64 {
        let (interval, count) = self
            .price
            .recurring
            .as_ref()
            .map_or(("month", 1), |r| (r.interval.as_str(), r.interval_count));
        period_end(self.billing_cycle_anchor, interval, count, n)
    }

    /// The line billing the price for the current period.
    pub fn period_line(&self, description: &str) -> InvoiceLine {
        InvoiceLine {
            id: ids::new_id("il"),
            amount: self.price.unit_amount * self.quantity as i64,
            price: self.price.clone(),
            quantity: self.quantity,
            period_start: self.current_period_start,
            period_end: self.current_period_end,
            proration: false,
            description: format!("{} × {description}", self.quantity),
        }
    }

    fn item_json(&self) -> Value {
        json!({
            "id": self.item_id,
            "object": "subscription_item",
            "billed_until": null,
            "billing_thresholds": null,
            "created": self.created,
            "current_period_end": self.current_period_end,
            "current_period_start": self.current_period_start,
            "discounts": [],
            "metadata": {},
            "plan": plan_json(&self.price),
            "price": self.price.to_json(),
            "quantity": self.quantity,
            "subscription": self.id,
            "tax_rates": []
        })
    }

    pub fn to_json(&self) -> Value {
        let requested = self.cancel_at_period_end || self.canceled_at.is_some();
        json!({
            "id": self.id,
            "object": "subscription",
            "application": null,
            "application_fee_percent": null,
            "automatic_tax": {"disabled_reason": null, "enabled": false, "liability": null},
            "billing_cycle_anchor": self.billing_cycle_anchor,
            "billing_cycle_anchor_config": null,
            "billing_mode": {"type": "classic", "flexible": null, "updated_at": null},
            "billing_schedules": [],
            "billing_thresholds": null,
            "cancel_at": self.cancel_at_period_end.then_some(self.current_period_end),
            "cancel_at_period_end": self.cancel_at_period_end,
            "canceled_at": self.canceled_at,
            "cancellation_details": {
                "comment": null,
                "feedback": null,
                "reason": requested.then_some("cancellation_requested")
            },
            "collection_method": "charge_automatically",
            "created": self.created,
            "currency": self.price.currency,
            "customer": self.customer,
            "customer_account": null,
            "days_until_due": null,
            "default_payment_method": self.payment_method_id,
            "default_source": null,
            "default_tax_rates": [],
            "description": null,
            "discounts": [],
            "ended_at": self.ended_at,
            "invoice_settings": {
                "account_tax_ids": null,
                "custom_fields": null,
                "description": null,
                "footer": null,
                "issuer": {"type": "self"}
            },
            "items": {
                "object": "list",
                "data": [self.item_json()],
                "has_more": false,
                "url": format!("/v1/subscription_items?subscription={}", self.id)
            },
            "latest_invoice": self.latest_invoice,
            "livemode": false,
            "managed_payments": null,
            "metadata": self.metadata,
            "next_pending_invoice_item_invoice": null,
            "on_behalf_of": null,
            "pause_collection": null,
            "payment_settings": {
                "payment_method_options": null,
                "payment_method_types": null,
                "save_default_payment_method": "off"
            },
            "pending_invoice_item_interval": null,
            "pending_setup_intent": null,
            "pending_update": null,
            "presentment_details": null,
            "schedule": null,
            "start_date": self.created,
            "status": self.status,
            "status_details": null,
            "test_clock": null,
            "transfer_data": null,
            "trial_end": null,
            "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
            "trial_start": null
        })
    }
}

/// Emits `customer.subscription.updated` with the current snapshot.
pub fn emit_updated(st: &mut SandboxState, id: &str, request: &EventRequest, hook: Option<&str>) {
    let json = st.subscriptions[id].to_json();
    st.emit("customer.subscription.updated", json, request, hook);
}

/// Ends a subscription now: `customer.subscription.deleted`.
pub fn end(st: &mut SandboxState, id: &str, at: i64, request: &EventRequest, hook: Option<&str>) {
    let sub = st.subscriptions.get_mut(id).expect("caller checked");
    sub.status = "canceled".into();
    sub.canceled_at.get_or_insert(at);
    sub.ended_at = Some(at);
    let json = sub.to_json();
    st.emit("customer.subscription.deleted", json, request, hook);
}

/// Brings the subscription's status in line with an invoice payment attempt:
/// paid → `active`; failed → `past_due`, or canceled once retries are over.
pub fn after_invoice_attempt(
    st: &mut SandboxState,
    sub_id: &str,
    paid: bool,
    request: &EventRequest,
    hook: Option<&str>,
) {
    let Some(sub) = st.subscriptions.get(sub_id) else {
        return;
    };
    let retries_over = sub
        .latest_invoice
        .as_ref()
        .and_then(|i| st.invoices.get(i))
        .is_some_and(|i| i.status == "open" && i.next_payment_attempt.is_none());
    let status = sub.status.clone();
    let now = st.now();
    match (paid, status.as_str()) {
        (true, "incomplete" | "past_due") => {
            st.subscriptions.get_mut(sub_id).expect("exists").status = "active".into();
            emit_updated(st, sub_id, request, hook);
        }
        (false, "active") => {
            st.subscriptions.get_mut(sub_id).expect("exists").status = "past_due".into();
            emit_updated(st, sub_id, request, hook);
        }
        (false, "past_due") if retries_over => end(st, sub_id, now, request, hook),
        _ => {}
    }
}

/// What a subscription Checkout Session buys.
pub struct CheckoutPurchase {
    pub customer: String,
    pub price: Price,
    pub quantity: u64,
    pub product_name: String,
    pub metadata: BTreeMap<String, String>,
}

/// Starts (or, after a decline, retries paying) the subscription of a
/// Checkout Session. Returns the subscription and its first invoice.
pub fn start_from_checkout(
    st: &mut SandboxState,
    app: &App,
    existing: Option<String>,
    purchase: CheckoutPurchase,
    method: PaymentMethodDetails,
    outcome: Outcome,
    request: &EventRequest,
) -> (String, String, Result<(), Decline>) {
    let hook = app.webhook_url();
    let hook = hook.as_deref();
    let sub_id = match existing {
        Some(id) => {
            let sub = st.subscriptions.get_mut(&id).expect("session's subscription exists");
            sub.payment_method = method.clone();
            sub.payment_method_id = ids::new_id("pm");
            id
        }
        None => {
            let now = st.now();
            let mut sub = Subscription {
                id: ids::new_id("sub"),
                created: now,
                customer: purchase.customer.clone(),
                status: "incomplete".into(),
                item_id: ids::new_id("si"),
                price: purchase.price,
                quantity: purchase.quantity,
                billing_cycle_anchor: now,
                period_index: 0,
                current_period_start: now,
                current_period_end: now,
                cancel_at_period_end: false,
                canceled_at: None,
                ended_at: None,
                latest_invoice: None,
                payment_method: method.clone(),
                payment_method_id: ids::new_id("pm"),
                metadata: purchase.metadata,
                pending_prorations: Vec::new(),
            };
            sub.current_period_end = sub.period_end_of(0);
            let new = NewInvoice {
                customer: sub.customer.clone(),
                subscription: sub.id.clone(),
                subscription_item: sub.item_id.clone(),
                billing_reason: "subscription_create",
                currency: sub.price.currency.clone(),
                lines: vec![sub.period_line(&purchase.product_name)],
                period_start: now,
                period_end: now,
            };
            let id = sub.id.clone();
            st.emit("customer.subscription.created", sub.to_json(), request, hook);
            st.subscriptions.insert(id.clone(), sub);
            let invoice_id = invoice::create(st, new, request, hook);
            st.subscriptions.get_mut(&id).expect("inserted").latest_invoice = Some(invoice_id);
            id
        }
    };
    let invoice_id = st.subscriptions[&sub_id]
        .latest_invoice
        .clone()
        .expect("has its first invoice");
    let result = invoice::pay(st, app, &invoice_id, method, outcome, request);
    after_invoice_attempt(st, &sub_id, result.is_ok(), request, hook);
    (sub_id, invoice_id, result)
}

/// Proration lines for switching from the current price to `new` at `now`:
/// a credit for the unused time of the old price, a charge for the rest of
/// the period at the new one.
pub fn proration_lines(sub: &Subscription, new: &Price, now: i64) -> Vec<InvoiceLine> {
    let length = (sub.current_period_end - sub.current_period_start).max(1) as i128;
    let remaining = (sub.current_period_end - now).clamp(0, length as i64) as i128;
    let share = |unit: i64| (unit as i128 * sub.quantity as i128 * remaining / length) as i64;
    let line = |price: &Price, amount: i64, what: &str| InvoiceLine {
        id: ids::new_id("il"),
        amount,
        price: price.clone(),
        quantity: sub.quantity,
        period_start: now,
        period_end: sub.current_period_end,
        proration: true,
        description: format!(
            "{what} time on {} × {}",
            sub.quantity,
            price.nickname.as_deref().unwrap_or(&price.id)
        ),
    };
    vec![
        line(&sub.price, -share(sub.price.unit_amount), "Unused"),
        line(new, share(new.unit_amount), "Remaining"),
    ]
}
