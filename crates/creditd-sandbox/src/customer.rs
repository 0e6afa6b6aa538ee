//! Customers: create and retrieve.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::app::{ApiRequest, SharedApp};
use crate::error::ApiError;
use crate::ids;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Customer {
    pub id: String,
    pub created: i64,
    pub email: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub metadata: BTreeMap<String, String>,
    /// `invoice_settings.default_payment_method`: charged off-session.
    #[serde(default)]
    pub default_payment_method: Option<String>,
}

impl Customer {
    /// The customer object, shaped like Stripe's for API version 2026-09-30.endive.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "object": "customer",
            "address": null,
            "balance": 0,
            "created": self.created,
            "currency": null,
            "default_source": null,
            "delinquent": false,
            "description": self.description,
            "discount": null,
            "email": self.email,
            "invoice_prefix": self.id[4..12].to_ascii_uppercase(),
            "invoice_settings": {
                "custom_fields": null,
                "default_payment_method": self.default_payment_method,
                "footer": null,
                "rendering_options": null
            },
            "livemode": false,
            "metadata": self.metadata,
            "name": self.name,
            "next_invoice_sequence": 1,
            "phone": null,
            "preferred_locales": [],
            "shipping": null,
            "tax_exempt": "none",
            "test_clock": null
        })
    }
}

/// `POST /v1/customers`
pub async fn create(State(app): State<SharedApp>, req: ApiRequest) -> Result<Json<Value>, ApiError> {
    let p = &req.params;
    p.allow_only(&["email", "name", "description", "metadata", "phone"])?;
    let customer = Customer {
        id: ids::new_id("cus"),
        created: ids::now_unix(),
        email: p.str("email").map(str::to_owned),
        name: p.str("name").map(str::to_owned),
        description: p.str("description").map(str::to_owned),
        metadata: p.metadata("metadata")?,
        default_payment_method: None,
    };
    let mut st = app.state.lock().await;
    let customer = Customer {
        created: st.now(),
        ..customer
    };
    let body = customer.to_json();
    st.customers.insert(customer.id.clone(), customer);
    st.emit(
        "customer.created",
        body.clone(),
        &req.request,
        app.webhook_url().as_deref(),
    );
    app.commit(&st).await?;
    Ok(Json(body))
}

/// `POST /v1/customers/{id}`: email, name, description, metadata and
/// `invoice_settings[default_payment_method]` (a saved `pm_…`, or a test token,
/// which is attached as a new payment method).
pub async fn update(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
    req: ApiRequest,
) -> Result<Json<Value>, ApiError> {
    let p = &req.params;
    p.allow_only(&["email", "name", "description", "metadata", "invoice_settings"])?;
    let mut st = app.state.lock().await;
    if !st.customers.contains_key(&id) {
        return Err(ApiError::no_such("customer", &id, "id"));
    }
    let default_pm = match p
        .map("invoice_settings")
        .as_ref()
        .and_then(|s| s.str("default_payment_method").map(str::to_owned))
    {
        None => None,
        Some(pm) if st.payment_methods.contains_key(&pm) => Some(pm),
        Some(token) => {
            let method = crate::payment::saved_method_for_token(&token).ok_or_else(|| {
                ApiError::no_such("PaymentMethod", &token, "invoice_settings[default_payment_method]")
            })?;
            let pm = ids::new_id("pm");
            st.payment_methods.insert(pm.clone(), method);
            Some(pm)
        }
    };
    let metadata = p.metadata("metadata")?;
    let c = st.customers.get_mut(&id).expect("checked above");
    if let Some(email) = p.str("email") {
        c.email = Some(email.to_owned());
    }
    if let Some(name) = p.str("name") {
        c.name = Some(name.to_owned());
    }
    if let Some(description) = p.str("description") {
        c.description = Some(description.to_owned());
    }
    c.metadata.extend(metadata);
    if default_pm.is_some() {
        c.default_payment_method = default_pm;
    }
    let body = c.to_json();
    st.emit(
        "customer.updated",
        body.clone(),
        &req.request,
        app.webhook_url().as_deref(),
    );
    app.commit(&st).await?;
    Ok(Json(body))
}

/// `GET /v1/customers/{id}`
pub async fn retrieve(State(app): State<SharedApp>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let st = app.state.lock().await;
    let c = st
        .customers
        .get(&id)
        .ok_or_else(|| ApiError::no_such("customer", &id, "id"))?;
    Ok(Json(c.to_json()))
}
