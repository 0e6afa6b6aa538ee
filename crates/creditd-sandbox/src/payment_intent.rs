//! PaymentIntents: create (optionally confirming), confirm with a test
//! payment method, retrieve.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::app::{ApiRequest, SharedApp};
use crate::error::ApiError;
use crate::event::EventRequest;
use crate::ids;
use crate::params::Params;
use crate::payment::{self, Decline};
use crate::price::currency_param;
use crate::state::State as SandboxState;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    pub created: i64,
    pub amount: i64,
    pub amount_received: i64,
    pub currency: String,
    pub customer: Option<String>,
    pub description: Option<String>,
    pub metadata: BTreeMap<String, String>,
    /// `requires_payment_method`, `requires_confirmation`, `processing`, `succeeded`, `canceled`.
    pub status: String,
    pub client_secret: String,
    pub payment_method: Option<String>,
    pub payment_method_types: Vec<String>,
    pub latest_charge: Option<String>,
    pub last_payment_error: Option<Decline>,
    /// The Checkout Session that created this intent, if any.
    pub checkout_session: Option<String>,
    /// `off_session`: the card it is paid with is saved on the customer.
    #[serde(default)]
    pub setup_future_usage: Option<String>,
    /// Confirmed without the customer present: a saved card does what it does later.
    #[serde(default)]
    pub off_session: bool,
}

impl PaymentIntent {
    pub fn new(amount: i64, currency: &str, customer: Option<String>, metadata: BTreeMap<String, String>) -> Self {
        let id = ids::new_id("pi");
        PaymentIntent {
            client_secret: format!("{id}_secret_{}", ids::random_token(25)),
            id,
            created: ids::now_unix(),
            amount,
            amount_received: 0,
            currency: currency.to_owned(),
            customer,
            description: None,
            metadata,
            status: "requires_payment_method".into(),
            payment_method: None,
            payment_method_types: vec!["card".into()],
            latest_charge: None,
            last_payment_error: None,
            checkout_session: None,
            setup_future_usage: None,
            off_session: false,
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "object": "payment_intent",
            "amount": self.amount,
            "amount_capturable": 0,
            "amount_details": {"tip": {}},
            "amount_received": self.amount_received,
            "application": null,
            "application_fee_amount": null,
            "automatic_payment_methods": null,
            "canceled_at": null,
            "cancellation_reason": null,
            "capture_method": "automatic",
            "client_secret": self.client_secret,
            "confirmation_method": "automatic",
            "created": self.created,
            "currency": self.currency,
            "customer": self.customer,
            "customer_account": null,
            "description": self.description,
            "excluded_payment_method_types": null,
            "last_payment_error": self.last_payment_error.as_ref().map(Decline::to_json),
            "latest_charge": self.latest_charge,
            "livemode": false,
            "managed_payments": null,
            "metadata": self.metadata,
            "next_action": null,
            "on_behalf_of": null,
            "payment_method": self.payment_method,
            "payment_method_configuration_details": null,
            "payment_method_options": {},
            "payment_method_types": self.payment_method_types,
            "processing": null,
            "receipt_email": null,
            "review": null,
            "setup_future_usage": self.setup_future_usage,
            "shipping": null,
            "source": null,
            "statement_descriptor": null,
            "statement_descriptor_suffix": null,
            "status": self.status,
            "transfer_data": null,
            "transfer_group": null
        })
    }
}

/// The 402 Stripe answers for a declined confirmation, carrying the intent.
fn decline_error(decline: &Decline, pi_json: Value) -> ApiError {
    let mut err = ApiError::card(&decline.code, decline.decline_code.as_deref(), &decline.message);
    err.extra.insert("charge".into(), json!(decline.charge));
    err.extra.insert("payment_intent".into(), pi_json);
    err
}

/// Confirms `pi_id` with a test payment method token; returns the intent JSON.
fn confirm(
    app: &SharedApp,
    st: &mut SandboxState,
    pi_id: &str,
    payment_method: Option<&str>,
    request: &EventRequest,
) -> Result<Value, ApiError> {
    let pi = st
        .payment_intents
        .get(pi_id)
        .ok_or_else(|| ApiError::no_such("payment_intent", pi_id, "intent"))?;
    if !["requires_payment_method", "requires_confirmation"].contains(&pi.status.as_str()) {
        return Err(ApiError::unexpected_state(
            "payment_intent_unexpected_state",
            format!(
                "You cannot confirm this PaymentIntent because it has a status of {}. Only a PaymentIntent with \
                 one of the following statuses may be confirmed: requires_confirmation, requires_action, \
                 requires_payment_method.",
                pi.status
            ),
        ));
    }
    let pm = payment_method
        .or(pi.payment_method.as_deref())
        .ok_or_else(|| {
            ApiError::invalid(
                "You cannot confirm this PaymentIntent because it's missing a payment method.",
                Some("payment_method"),
            )
            .with_code("payment_intent_unexpected_state")
        })?
        .to_owned();
    let (outcome, method) = if pi.off_session {
        // A saved card charged without its holder does what it does later.
        let method = st
            .payment_methods
            .get(&pm)
            .cloned()
            .or_else(|| payment::saved_method_for_token(&pm))
            .ok_or_else(|| ApiError::no_such("PaymentMethod", &pm, "payment_method"))?;
        (payment::saved_method_outcome(&method), method)
    } else {
        payment::outcome_for_test_payment_method(&pm)
            .or_else(|| {
                st.payment_methods
                    .get(&pm)
                    .map(|m| (payment::Outcome::Succeed, m.clone()))
            })
            .ok_or_else(|| ApiError::no_such("PaymentMethod", &pm, "payment_method"))?
    };
    let result = payment::attempt(st, app, pi_id, method, outcome, request);
    let pi_json = st.payment_intents[pi_id].to_json();
    match result {
        Ok(()) => Ok(pi_json),
        Err(decline) => Err(decline_error(&decline, pi_json)),
    }
}

const CREATE_PARAMS: &[&str] = &[
    "amount",
    "currency",
    "customer",
    "description",
    "metadata",
    "payment_method",
    "confirm",
    "automatic_payment_methods",
    "payment_method_types",
    "off_session",
    "setup_future_usage",
    "receipt_email",
    "return_url",
];

/// `POST /v1/payment_intents`
pub async fn create(State(app): State<SharedApp>, req: ApiRequest) -> Result<Json<Value>, ApiError> {
    let p: &Params = &req.params;
    p.allow_only(CREATE_PARAMS)?;
    let amount = p.i64("amount")?.ok_or_else(|| ApiError::missing_param("amount"))?;
    if amount < 1 {
        return Err(ApiError::invalid(
            "This value must be greater than or equal to 1.",
            Some("amount"),
        ));
    }
    let currency = currency_param(p.required("currency")?, "currency")?;
    let mut st = app.state.lock().await;
    let customer = match p.str("customer") {
        Some(c) if !st.customers.contains_key(c) => return Err(ApiError::no_such("customer", c, "customer")),
        c => c.map(str::to_owned),
    };
    let mut pi = PaymentIntent::new(amount, &currency, customer, p.metadata("metadata")?);
    pi.created = st.now();
    pi.description = p.str("description").map(str::to_owned);
    if let Some(pm) = p.str("payment_method") {
        pi.payment_method = Some(pm.to_owned());
        pi.status = "requires_confirmation".into();
    }
    pi.setup_future_usage = match p.str("setup_future_usage") {
        None => None,
        Some(v @ ("off_session" | "on_session")) => Some(v.to_owned()),
        Some(other) => {
            return Err(ApiError::invalid(
                format!("Invalid setup_future_usage: must be one of off_session or on_session, not `{other}`."),
                Some("setup_future_usage"),
            ))
        }
    };
    pi.off_session = p.bool("off_session")? == Some(true);
    if pi.off_session && (p.bool("confirm")? != Some(true) || pi.customer.is_none()) {
        return Err(ApiError::invalid(
            "off_session=true requires confirm=true and a customer.",
            Some("off_session"),
        ));
    }
    let pi_id = pi.id.clone();
    let hook = app.webhook_url();
    st.emit("payment_intent.created", pi.to_json(), &req.request, hook.as_deref());
    st.payment_intents.insert(pi_id.clone(), pi);
    let result = if p.bool("confirm")? == Some(true) {
        confirm(&app, &mut st, &pi_id, None, &req.request)
    } else {
        Ok(st.payment_intents[&pi_id].to_json())
    };
    // Commit even when the confirmation was declined: the intent, the
    // failed charge and their events exist, as on Stripe.
    app.commit(&st).await?;
    result.map(Json)
}

/// `POST /v1/payment_intents/{id}/confirm`
pub async fn confirm_handler(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
    req: ApiRequest,
) -> Result<Json<Value>, ApiError> {
    req.params
        .allow_only(&["payment_method", "return_url", "off_session", "setup_future_usage"])?;
    let mut st = app.state.lock().await;
    let result = confirm(&app, &mut st, &id, req.params.str("payment_method"), &req.request);
    if !matches!(&result, Err(e) if e.status.as_u16() != 402) {
        app.commit(&st).await?;
    }
    result.map(Json)
}

/// `GET /v1/payment_intents/{id}`
pub async fn retrieve(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
    req: ApiRequest,
) -> Result<Json<Value>, ApiError> {
    req.params.allow_only(&["client_secret"])?;
    let st = app.state.lock().await;
    let pi = st
        .payment_intents
        .get(&id)
        .ok_or_else(|| ApiError::no_such("payment_intent", &id, "intent"))?;
    Ok(Json(pi.to_json()))
}
