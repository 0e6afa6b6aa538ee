//! Billing portal sessions and a minimal portal page: the customer's live
//! subscriptions, a switch to any other active recurring price of the
//! sandbox in the same currency (prorated and invoiced at once), and
//! cancellation at period end. Plain forms, no scripts.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::{Form, Json};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::app::{ApiRequest, SharedApp};
use crate::error::ApiError;
use crate::event::EventRequest;
use crate::hosted::{escape, format_amount, page};
use crate::ids;
use crate::state::State as SandboxState;
use crate::subscription::{self, Subscription};
use crate::subscription_api;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PortalSession {
    pub id: String,
    pub created: i64,
    pub customer: String,
    pub return_url: Option<String>,
    pub url: String,
}

impl PortalSession {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "object": "billing_portal.session",
            "configuration": "bpc_sandbox_default",
            "created": self.created,
            "customer": self.customer,
            "customer_account": null,
            "flow": null,
            "livemode": false,
            "locale": null,
            "on_behalf_of": null,
            "return_url": self.return_url,
            "url": self.url
        })
    }
}

/// `POST /v1/billing_portal/sessions`
pub async fn create(State(app): State<SharedApp>, req: ApiRequest) -> Result<Json<Value>, ApiError> {
    let p = &req.params;
    p.allow_only(&["customer", "return_url", "configuration", "locale"])?;
    let customer = p.required("customer")?.to_owned();
    let mut st = app.state.lock().await;
    if !st.customers.contains_key(&customer) {
        return Err(ApiError::no_such("customer", &customer, "customer"));
    }
    let id = ids::new_id("bps");
    let session = PortalSession {
        url: app.public_url(&format!("portal/{id}")),
        id: id.clone(),
        created: st.now(),
        customer,
        return_url: p.str("return_url").map(str::to_owned),
    };
    let body = session.to_json();
    st.portal_sessions.insert(id, session);
    app.commit(&st).await?;
    Ok(Json(body))
}

fn interval_of(s: &Subscription) -> String {
    s.price
        .recurring
        .as_ref()
        .map_or("period".into(), |r| r.interval.clone())
}

fn price_label(st: &SandboxState, price: &crate::price::Price) -> String {
    let name = st
        .products
        .get(&price.product)
        .map(|p| p.name.clone())
        .or(price.nickname.clone())
        .unwrap_or_else(|| price.id.clone());
    let every = price.recurring.as_ref().map_or("", |r| r.interval.as_str());
    format!(
        "{} — {} {} / {every}",
        escape(&name),
        format_amount(price.unit_amount),
        price.currency.to_ascii_uppercase()
    )
}

fn portal_page(st: &SandboxState, session: &PortalSession) -> String {
    let mut body = String::from("<h1>Your subscriptions</h1>");
    let subs: Vec<&Subscription> = st
        .subscriptions
        .values()
        .filter(|s| s.customer == session.customer && s.is_live())
        .collect();
    if subs.is_empty() {
        body += "<p>No active subscription.</p>";
    }
    let action = |what: &str| format!("/portal/{}/{what}", escape(&session.id));
    for s in subs {
        body += &format!(
            "<fieldset><legend>{}</legend><p>Status: {} · renews {} (every {})</p>",
            price_label(st, &s.price),
            escape(&s.status),
            if s.cancel_at_period_end {
                "never: ends at period end"
            } else {
                "at period end"
            },
            escape(&interval_of(s)),
        );
        for price in st
            .prices
            .values()
            .filter(|p| p.active && p.recurring.is_some() && p.currency == s.price.currency && p.id != s.price.id)
        {
            body += &format!(
                "<form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"subscription\" value=\"{}\">\
<input type=\"hidden\" name=\"price\" value=\"{}\"><button type=\"submit\">Switch to {}</button></form>",
                action("switch"),
                escape(&s.id),
                escape(&price.id),
                price_label(st, price)
            );
        }
        if !s.cancel_at_period_end {
            body += &format!(
                "<form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"subscription\" value=\"{}\">\
<button type=\"submit\">Cancel at the end of the period</button></form>",
                action("cancel"),
                escape(&s.id)
            );
        }
        body += "</fieldset>";
    }
    if let Some(url) = &session.return_url {
        body += &format!("<p><a href=\"{}\">Return</a></p>", escape(url));
    }
    page("Billing portal", &body)
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(page("Not found", "<h1>No such portal session</h1>")),
    )
        .into_response()
}

/// `GET /portal/{id}`
pub async fn show(State(app): State<SharedApp>, Path(id): Path<String>) -> Response {
    let st = app.state.lock().await;
    match st.portal_sessions.get(&id) {
        Some(s) => Html(portal_page(&st, s)).into_response(),
        None => not_found(),
    }
}

#[derive(Debug, Deserialize)]
pub struct PortalForm {
    subscription: String,
    #[serde(default)]
    price: String,
}

/// The subscription a portal form names, if it is the session customer's and live.
fn own_subscription(st: &SandboxState, session_id: &str, sub_id: &str) -> Option<(String, String)> {
    let session = st.portal_sessions.get(session_id)?;
    let sub = st.subscriptions.get(sub_id)?;
    (sub.customer == session.customer && sub.is_live()).then(|| (session.id.clone(), sub.id.clone()))
}

/// `POST /portal/{id}/{switch|cancel}`
pub async fn act(
    State(app): State<SharedApp>,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<PortalForm>,
) -> Response {
    let mut st = app.state.lock().await;
    let Some((session_id, sub_id)) = own_subscription(&st, &id, &form.subscription) else {
        return not_found();
    };
    let request = EventRequest {
        id: Some(ids::new_id("req")),
        idempotency_key: None,
    };
    let hook = app.webhook_url();
    match action.as_str() {
        "switch" => {
            let sub = &st.subscriptions[&sub_id];
            let Some(price) = st
                .prices
                .get(&form.price)
                .filter(|p| p.active && p.recurring.is_some() && p.currency == sub.price.currency)
                .cloned()
            else {
                return (StatusCode::BAD_REQUEST, Html(page("Portal", "<p>Unknown plan.</p>"))).into_response();
            };
            if price.id != sub.price.id {
                subscription_api::change_price(&mut st, &app, &sub_id, price, "always_invoice", &request);
            }
        }
        "cancel" => st.subscriptions.get_mut(&sub_id).expect("exists").cancel_at_period_end = true,
        _ => return not_found(),
    }
    subscription::emit_updated(&mut st, &sub_id, &request, hook.as_deref());
    if let Err(e) = app.commit(&st).await {
        return e.into_response();
    }
    let back = format!("/portal/{session_id}");
    (StatusCode::SEE_OTHER, [(header::LOCATION, back)]).into_response()
}
