//! The subscription endpoints: retrieve, list, update (price with
//! proration, `cancel_at_period_end`, `default_payment_method`,
//! `metadata`), cancel at once (`DELETE`).

use axum::extract::{Path, State};
use axum::Json;
use serde_json::Value;

use crate::app::{ApiRequest, App, SharedApp};
use crate::error::ApiError;
use crate::event::EventRequest;
use crate::invoice::{self, NewInvoice};
use crate::list::{Paging, PAGING_PARAMS};
use crate::params::Params;
use crate::payment;
use crate::state::State as SandboxState;
use crate::subscription::{self, Subscription};

fn live<'a>(st: &'a SandboxState, id: &str) -> Result<&'a Subscription, ApiError> {
    let sub = st
        .subscriptions
        .get(id)
        .ok_or_else(|| ApiError::no_such("subscription", id, "subscription_exposed_id"))?;
    if !sub.is_live() {
        return Err(ApiError::unexpected_state(
            "subscription_canceled",
            format!("A canceled subscription can only update its cancellation_details and metadata: {id}."),
        ));
    }
    Ok(sub)
}

/// The new price of `items[0][price]`, if one is asked for.
fn new_price(st: &SandboxState, sub: &Subscription, p: &Params) -> Result<Option<crate::price::Price>, ApiError> {
    let items = p.list("items");
    if items.len() > 1 {
        return Err(ApiError::invalid(
            "The sandbox supports subscriptions with one item.",
            Some("items"),
        ));
    }
    let Some(item) = items.into_iter().next().and_then(Params::from_node) else {
        return Ok(None);
    };
    item.allow_only(&["id", "price"])?;
    if let Some(id) = item.str("id") {
        if id != sub.item_id {
            return Err(ApiError::no_such("subscription_item", id, "items[0][id]"));
        }
    }
    let Some(price_id) = item.str("price") else {
        return Ok(None);
    };
    let price = st
        .prices
        .get(price_id)
        .ok_or_else(|| ApiError::no_such("price", price_id, "items[0][price]"))?;
    if price.recurring.is_none() || price.currency != sub.price.currency {
        return Err(ApiError::invalid(
            "The price must be recurring and in the subscription's currency.",
            Some("items[0][price]"),
        ));
    }
    Ok((price.id != sub.price.id).then(|| price.clone()))
}

/// Switches the subscription to `price` at `now` with Stripe's
/// `proration_behavior`: `create_prorations` (lines on the next invoice),
/// `always_invoice` (a `subscription_update` invoice paid now) or `none`.
pub fn change_price(
    st: &mut SandboxState,
    app: &App,
    id: &str,
    price: crate::price::Price,
    proration: &str,
    request: &EventRequest,
) {
    let now = st.now();
    let sub = st.subscriptions.get_mut(id).expect("caller checked");
    let lines = subscription::proration_lines(sub, &price, now);
    sub.price = price;
    match proration {
        "none" => {}
        "always_invoice" => {
            let mut all = std::mem::take(&mut sub.pending_prorations);
            all.extend(lines);
            let new = NewInvoice {
                customer: sub.customer.clone(),
                subscription: sub.id.clone(),
                subscription_item: sub.item_id.clone(),
                billing_reason: "subscription_update",
                currency: sub.price.currency.clone(),
                lines: all,
                period_start: now,
                period_end: now,
            };
            let method = sub.payment_method.clone();
            let hook = app.webhook_url();
            let invoice_id = invoice::create(st, new, request, hook.as_deref());
            st.subscriptions.get_mut(id).expect("exists").latest_invoice = Some(invoice_id.clone());
            let outcome = payment::saved_method_outcome(&method);
            let paid = invoice::pay(st, app, &invoice_id, method, outcome, request).is_ok();
            subscription::after_invoice_attempt(st, id, paid, request, hook.as_deref());
        }
        _ => sub.pending_prorations.extend(lines),
    }
}

const PRORATION_BEHAVIORS: [&str; 3] = ["create_prorations", "always_invoice", "none"];

/// `POST /v1/subscriptions/{id}`
pub async fn update(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
    req: ApiRequest,
) -> Result<Json<Value>, ApiError> {
    let p = &req.params;
    p.allow_only(&[
        "items",
        "proration_behavior",
        "cancel_at_period_end",
        "default_payment_method",
        "metadata",
        "payment_behavior",
    ])?;
    let proration = p.str("proration_behavior").unwrap_or("create_prorations");
    if !PRORATION_BEHAVIORS.contains(&proration) {
        return Err(ApiError::invalid(
            format!("Invalid proration_behavior: {proration}"),
            Some("proration_behavior"),
        ));
    }
    let cancel_at_period_end = p.bool("cancel_at_period_end")?;
    let metadata = p.metadata("metadata")?;
    let method = match p.str("default_payment_method") {
        Some(pm) => Some(
            payment::saved_method_for_token(pm)
                .ok_or_else(|| ApiError::no_such("PaymentMethod", pm, "default_payment_method"))?,
        ),
        None => None,
    };
    let mut st = app.state.lock().await;
    let sub = live(&st, &id)?;
    let price = new_price(&st, sub, p)?;
    let hook = app.webhook_url();
    {
        let sub = st.subscriptions.get_mut(&id).expect("checked");
        if let Some(flag) = cancel_at_period_end {
            sub.cancel_at_period_end = flag;
            if !flag {
                sub.canceled_at = None;
            }
        }
        if let Some(m) = method {
            sub.payment_method = m;
            sub.payment_method_id = crate::ids::new_id("pm");
        }
        sub.metadata.extend(metadata);
    }
    if let Some(price) = price {
        change_price(&mut st, &app, &id, price, proration, &req.request);
    }
    subscription::emit_updated(&mut st, &id, &req.request, hook.as_deref());
    let body = st.subscriptions[&id].to_json();
    app.commit(&st).await?;
    Ok(Json(body))
}

/// `DELETE /v1/subscriptions/{id}`: cancels at once.
pub async fn cancel(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
    req: ApiRequest,
) -> Result<Json<Value>, ApiError> {
    req.params
        .allow_only(&["invoice_now", "prorate", "cancellation_details"])?;
    let mut st = app.state.lock().await;
    live(&st, &id)?;
    let now = st.now();
    subscription::end(&mut st, &id, now, &req.request, app.webhook_url().as_deref());
    let body = st.subscriptions[&id].to_json();
    app.commit(&st).await?;
    Ok(Json(body))
}

/// `GET /v1/subscriptions/{id}`
pub async fn retrieve(State(app): State<SharedApp>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let st = app.state.lock().await;
    let s = st
        .subscriptions
        .get(&id)
        .ok_or_else(|| ApiError::no_such("subscription", &id, "id"))?;
    Ok(Json(s.to_json()))
}

/// `GET /v1/subscriptions`: newest first; `customer`, `price`, and `status`
/// (default: all but `canceled`, as on Stripe; `all` includes them).
pub async fn list(State(app): State<SharedApp>, req: ApiRequest) -> Result<Json<Value>, ApiError> {
    let p = &req.params;
    p.allow_only(&[&PAGING_PARAMS[..], &["customer", "price", "status", "created"]].concat())?;
    let paging = Paging::from_params(p)?;
    let st = app.state.lock().await;
    let status = p.str("status");
    let mut subs: Vec<&Subscription> = st
        .subscriptions
        .values()
        .filter(|s| p.str("customer").is_none_or(|c| s.customer == c))
        .filter(|s| p.str("price").is_none_or(|pr| s.price.id == pr))
        .filter(|s| match status {
            None => s.status != "canceled",
            Some("all") => true,
            Some(st) => s.status == st,
        })
        .collect();
    subs.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
    let items = subs.into_iter().map(Subscription::to_json).collect();
    Ok(Json(paging.page("/v1/subscriptions", "subscription", items)?))
}
