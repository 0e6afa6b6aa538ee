//! Checkout Sessions (mode `payment` or `subscription`): create, retrieve
//! (with `expand[]=line_items`), list line items, expire. Paying happens on
//! the hosted page ([`crate::hosted`]); in `subscription` mode that starts
//! a subscription ([`crate::subscription`]) and the session names it and
//! its first invoice.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::app::{ApiRequest, SharedApp};
use crate::error::ApiError;
use crate::ids;
use crate::params::Params;
use crate::price::Price;

/// Stripe's default session lifetime.
const SESSION_TTL_S: i64 = 24 * 3600;

/// A line item, with the price as it was when the session was created.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LineItem {
    pub id: String,
    pub price: Price,
    pub description: String,
    pub quantity: u64,
}

impl LineItem {
    fn amount(&self) -> i64 {
        self.price.unit_amount * self.quantity as i64
    }

    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "object": "item",
            "adjustable_quantity": null,
            "amount_discount": 0,
            "amount_subtotal": self.amount(),
            "amount_tax": 0,
            "amount_total": self.amount(),
            "currency": self.price.currency,
            "description": self.description,
            "metadata": {},
            "price": self.price.to_json(),
            "quantity": self.quantity
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckoutSession {
    pub id: String,
    pub created: i64,
    pub expires_at: i64,
    pub customer: Option<String>,
    pub customer_email: Option<String>,
    pub client_reference_id: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub line_items: Vec<LineItem>,
    pub currency: String,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    /// The hosted page, while the session is open.
    pub url: String,
    /// `open`, `complete` or `expired`.
    pub status: String,
    /// `unpaid`, `paid` or `no_payment_required`.
    pub payment_status: String,
    /// Created when the payer first submits the hosted form.
    pub payment_intent: Option<String>,
    /// Set on completion from the hosted form.
    pub payer_name: Option<String>,
    pub payment_method_types: Vec<String>,
    /// `payment` or `subscription`.
    #[serde(default = "payment_mode")]
    pub mode: String,
    /// Subscription mode: the subscription and its first invoice.
    #[serde(default)]
    pub subscription: Option<String>,
    #[serde(default)]
    pub invoice: Option<String>,
    /// `subscription_data[metadata]`: put on the subscription.
    #[serde(default)]
    pub subscription_metadata: BTreeMap<String, String>,
    /// `payment_intent_data[setup_future_usage]`: the card is saved on the customer.
    #[serde(default)]
    pub setup_future_usage: Option<String>,
}

fn payment_mode() -> String {
    "payment".into()
}

impl CheckoutSession {
    pub fn amount_total(&self) -> i64 {
        self.line_items.iter().map(LineItem::amount).sum()
    }

    pub fn line_items_json(&self) -> Value {
        json!({
            "object": "list",
            "data": self.line_items.iter().map(LineItem::to_json).collect::<Vec<_>>(),
            "has_more": false,
            "url": format!("/v1/checkout/sessions/{}/line_items", self.id)
        })
    }

    /// `success_url` with `{CHECKOUT_SESSION_ID}` filled in, as Stripe does.
    pub fn success_redirect(&self) -> Option<String> {
        self.success_url
            .as_ref()
            .map(|u| u.replace("{CHECKOUT_SESSION_ID}", &self.id))
    }

    pub fn to_json(&self, expand_line_items: bool) -> Value {
        let complete = self.status == "complete";
        let customer_details = complete.then(|| {
            json!({
                "address": null,
                "business_name": null,
                "email": self.customer_email,
                "individual_name": null,
                "name": self.payer_name,
                "phone": null,
                "tax_exempt": "none",
                "tax_ids": []
            })
        });
        let total = self.amount_total();
        let mut obj = json!({
            "id": self.id,
            "object": "checkout.session",
            "adaptive_pricing": {"enabled": false},
            "after_expiration": null,
            "allow_promotion_codes": null,
            "amount_subtotal": total,
            "amount_total": total,
            "automatic_tax": {"enabled": false, "liability": null, "provider": null, "status": null},
            "billing_address_collection": null,
            "cancel_url": self.cancel_url,
            "client_reference_id": self.client_reference_id,
            "client_secret": null,
            "collected_information": null,
            "consent": null,
            "consent_collection": null,
            "created": self.created,
            "currency": self.currency,
            "currency_conversion": null,
            "custom_fields": [],
            "custom_text": {
                "after_submit": null,
                "shipping_address": null,
                "submit": null,
                "terms_of_service_acceptance": null
            },
            "customer": self.customer,
            "customer_account": null,
            "customer_creation": if self.customer.is_some() { Value::Null } else { json!("if_required") },
            "customer_details": customer_details,
            "customer_email": self.customer_email,
            "discounts": [],
            "expires_at": self.expires_at,
            "integration_identifier": null,
            "invoice": self.invoice,
            "invoice_creation": {
                "enabled": false,
                "invoice_data": {
                    "account_tax_ids": null,
                    "custom_fields": null,
                    "description": null,
                    "footer": null,
                    "issuer": null,
                    "metadata": {},
                    "rendering_options": null
                }
            },
            "livemode": false,
            "locale": null,
            "managed_payments": null,
            "metadata": self.metadata,
            "mode": self.mode,
            "origin_context": null,
            "payment_intent": self.payment_intent,
            "payment_link": null,
            "payment_method_collection": "if_required",
            "payment_method_configuration_details": null,
            "payment_method_options": {},
            "payment_method_types": self.payment_method_types,
            "payment_status": self.payment_status,
            "permissions": null,
            "phone_number_collection": {"enabled": false},
            "recovered_from": null,
            "saved_payment_method_options": null,
            "setup_intent": null,
            "shipping_address_collection": null,
            "shipping_cost": null,
            "shipping_options": [],
            "status": self.status,
            "submit_type": null,
            "subscription": self.subscription,
            "success_url": self.success_url,
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": "hosted",
            "url": (self.status == "open").then_some(&self.url),
            "wallet_options": null
        });
        if expand_line_items {
            obj["line_items"] = self.line_items_json();
        }
        obj
    }
}

const CREATE_PARAMS: &[&str] = &[
    "mode",
    "line_items",
    "customer",
    "customer_email",
    "client_reference_id",
    "metadata",
    "success_url",
    "cancel_url",
    "expires_at",
    "payment_method_types",
    "subscription_data",
    "payment_intent_data",
];

/// `POST /v1/checkout/sessions`
pub async fn create(State(app): State<SharedApp>, req: ApiRequest) -> Result<Json<Value>, ApiError> {
    let p = &req.params;
    p.allow_only(CREATE_PARAMS)?;
    let mode = match p.str("mode") {
        Some(m @ ("payment" | "subscription")) => m.to_owned(),
        Some(other) => {
            return Err(ApiError::invalid(
                format!("The sandbox supports mode=payment and mode=subscription, not `{other}`."),
                Some("mode"),
            ))
        }
        None => return Err(ApiError::missing_param("mode")),
    };
    let subscription_mode = mode == "subscription";
    let success_url = p.str("success_url").map(str::to_owned);
    let mut st = app.state.lock().await;
    let customer = match p.str("customer") {
        Some(c) if !st.customers.contains_key(c) => return Err(ApiError::no_such("customer", c, "customer")),
        c => c.map(str::to_owned),
    };
    let customer_email = match &customer {
        Some(c) => st.customers[c].email.clone(),
        None => p.str("customer_email").map(str::to_owned),
    };
    let items = p.list("line_items");
    if items.is_empty() {
        return Err(ApiError::missing_param("line_items"));
    }
    let mut line_items = Vec::new();
    for (i, node) in items.into_iter().enumerate() {
        let item = Params::from_node(node)
            .ok_or_else(|| ApiError::invalid("Invalid line item.", Some(&format!("line_items[{i}]"))))?;
        let price_id = item
            .str("price")
            .ok_or_else(|| ApiError::missing_param(&format!("line_items[{i}][price]")))?;
        let price = st
            .prices
            .get(price_id)
            .ok_or_else(|| ApiError::no_such("price", price_id, &format!("line_items[{i}][price]")))?
            .clone();
        if subscription_mode && price.recurring.is_none() {
            return Err(ApiError::invalid(
                "You must provide at least one recurring price in `subscription` mode when using prices.",
                Some(&format!("line_items[{i}][price]")),
            ));
        }
        if !subscription_mode && price.recurring.is_some() {
            return Err(ApiError::invalid(
                "You specified `payment` mode but passed a recurring price. Either switch to `subscription` \
                 mode or use only one-time prices.",
                Some(&format!("line_items[{i}][price]")),
            ));
        }
        let quantity = item.i64("quantity")?.unwrap_or(1);
        if !(1..=999_999).contains(&quantity) {
            return Err(ApiError::invalid(
                "Quantity must be between 1 and 999999.",
                Some(&format!("line_items[{i}][quantity]")),
            ));
        }
        let description = st
            .products
            .get(&price.product)
            .map(|p| p.name.clone())
            .unwrap_or_default();
        line_items.push(LineItem {
            id: ids::new_id("li"),
            price,
            description,
            quantity: quantity as u64,
        });
    }
    if subscription_mode && line_items.len() > 1 {
        return Err(ApiError::invalid(
            "The sandbox supports one line item in subscription mode.",
            Some("line_items"),
        ));
    }
    let currency = line_items[0].price.currency.clone();
    if line_items.iter().any(|li| li.price.currency != currency) {
        return Err(ApiError::invalid(
            "All line items must use the same currency.",
            Some("line_items"),
        ));
    }
    let now = st.now();
    let id = ids::new_checkout_session_id();
    let session = CheckoutSession {
        url: app.public_url(&format!("pay/{id}")),
        id: id.clone(),
        created: now,
        expires_at: p.i64("expires_at")?.unwrap_or(now + SESSION_TTL_S),
        customer,
        customer_email,
        client_reference_id: p.str("client_reference_id").map(str::to_owned),
        metadata: p.metadata("metadata")?,
        line_items,
        currency,
        success_url,
        cancel_url: p.str("cancel_url").map(str::to_owned),
        status: "open".into(),
        payment_status: "unpaid".into(),
        payment_intent: None,
        payer_name: None,
        payment_method_types: if subscription_mode {
            vec!["card".into()]
        } else {
            vec!["card".into(), "sepa_debit".into()]
        },
        mode,
        subscription: None,
        invoice: None,
        subscription_metadata: match p.map("subscription_data") {
            Some(data) if subscription_mode => data.metadata("metadata")?,
            Some(_) => {
                return Err(ApiError::invalid(
                    "subscription_data can only be used in subscription mode.",
                    Some("subscription_data"),
                ))
            }
            None => BTreeMap::new(),
        },
        setup_future_usage: setup_future_usage(p, subscription_mode)?,
    };
    let body = session.to_json(p.expand().iter().any(|e| e == "line_items"));
    st.checkout_sessions.insert(id, session);
    app.commit(&st).await?;
    Ok(Json(body))
}

/// `payment_intent_data[setup_future_usage]` (`off_session` or `on_session`), payment mode only.
fn setup_future_usage(p: &Params, subscription_mode: bool) -> Result<Option<String>, ApiError> {
    let Some(data) = p.map("payment_intent_data") else {
        return Ok(None);
    };
    if subscription_mode {
        return Err(ApiError::invalid(
            "payment_intent_data can only be used in payment mode.",
            Some("payment_intent_data"),
        ));
    }
    match data.str("setup_future_usage") {
        None => Ok(None),
        Some(v @ ("off_session" | "on_session")) => Ok(Some(v.to_owned())),
        Some(other) => Err(ApiError::invalid(
            format!("Invalid setup_future_usage: must be one of off_session or on_session, not `{other}`."),
            Some("payment_intent_data[setup_future_usage]"),
        )),
    }
}

/// `GET /v1/checkout/sessions/{id}`
pub async fn retrieve(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
    req: ApiRequest,
) -> Result<Json<Value>, ApiError> {
    req.params.allow_only(&[])?;
    let st = app.state.lock().await;
    let s = st
        .checkout_sessions
        .get(&id)
        .ok_or_else(|| ApiError::no_such("checkout.session", &id, "session"))?;
    Ok(Json(s.to_json(req.params.expand().iter().any(|e| e == "line_items"))))
}

/// `GET /v1/checkout/sessions/{id}/line_items`
pub async fn line_items(State(app): State<SharedApp>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let st = app.state.lock().await;
    let s = st
        .checkout_sessions
        .get(&id)
        .ok_or_else(|| ApiError::no_such("checkout.session", &id, "session"))?;
    Ok(Json(s.line_items_json()))
}

/// `POST /v1/checkout/sessions/{id}/expire`
pub async fn expire(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
    req: ApiRequest,
) -> Result<Json<Value>, ApiError> {
    req.params.allow_only(&[])?;
    let mut st = app.state.lock().await;
    let s = st
        .checkout_sessions
        .get_mut(&id)
        .ok_or_else(|| ApiError::no_such("checkout.session", &id, "session"))?;
    if s.status != "open" {
        return Err(ApiError::unexpected_state(
            "checkout_session_unexpected_state",
            format!(
                "Only Checkout Sessions with a status in [\"open\"] can be expired. This session has a status of {}.",
                s.status
            ),
        ));
    }
    s.status = "expired".into();
    let body = s.to_json(false);
    st.emit(
        "checkout.session.expired",
        body.clone(),
        &req.request,
        app.webhook_url().as_deref(),
    );
    app.commit(&st).await?;
    Ok(Json(body))
}
