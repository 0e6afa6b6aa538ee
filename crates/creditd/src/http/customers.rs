//! Customers, their grants and their ledger.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use creditd_domain::command::NewCustomer;
use creditd_domain::command::NewGrant;
use creditd_domain::views::{Customer, Entry, Grant};
use creditd_domain::{validate, Command, Credits, GrantSource, Outcome};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::http::doc::{CustomerId, GrantSourceIn, Metadata, NonNegativeCredits, PositiveCredits, Reason, Text};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{ApiJson, IdempotencyKey, SecretKey};
use crate::http::list::{ApiQuery, ListQuery};

/// Creates a customer (the app's own user id), or returns the existing one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerIn {
    /// The app's own user id: 1–255 of `A–Z a–z 0–9 . _ - : @ + | =`.
    #[schema(value_type = CustomerId)]
    pub id: String,
    #[schema(value_type = Option<Text>)]
    pub email: Option<String>,
    #[schema(value_type = Option<Metadata>)]
    pub metadata: Option<serde_json::Value>,
}

/// Adds credits as a promotion or an operator grant.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantIn {
    /// Credits to add, a decimal string with up to 6 decimals (integers accepted).
    #[schema(value_type = PositiveCredits)]
    pub amount: Credits,
    /// Why the credits are granted; recorded on the grant (trimmed).
    #[schema(value_type = Reason)]
    pub reason: String,
    /// Unix seconds in the future; the remainder expires then. Omit for credits that never expire.
    #[schema(example = 4102444800_i64)]
    pub expires_at: Option<i64>,
    /// 0–100, lower is spent first (default 50).
    #[schema(minimum = 0, maximum = 100)]
    pub priority: Option<i32>,
    /// `promotion` (default) or `admin`.
    #[schema(value_type = Option<GrantSourceIn>)]
    pub source: Option<GrantSource>,
}

/// A customer id in the path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CustomerPath {
    /// The app's own user id.
    #[param(value_type = CustomerId)]
    pub id: String,
}

#[derive(Serialize, ToSchema)]
pub struct GrantList {
    pub object: &'static str,
    pub data: Vec<Grant>,
    pub has_more: bool,
}

#[derive(Serialize, ToSchema)]
pub struct EntryList {
    pub object: &'static str,
    pub data: Vec<Entry>,
    pub has_more: bool,
}

pub fn optional_text(field: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    if let Some(v) = &value {
        validate::text(v).map_err(|m| ApiError::invalid(field, m))?;
    }
    Ok(value)
}

pub fn metadata(value: Option<serde_json::Value>) -> Result<serde_json::Value, ApiError> {
    let value = value.unwrap_or_else(|| serde_json::json!({}));
    validate::metadata(&value).map_err(|m| ApiError::invalid("metadata", m))?;
    Ok(value)
}

/// Create a customer. A new customer receives the signup bonus; an existing id returns the
/// existing customer unchanged (200).
#[utoipa::path(post, path = "/v1/customers", request_body = CustomerIn, tag = "customers", params(IdempotencyKey),
    responses((status = 201, body = Customer, description = "created"), (status = 200, body = Customer, description = "already existed"),
              (status = 400, body = ErrorBody), (status = 503, body = ErrorBody, description = "`overloaded`: retry after `Retry-After` seconds",
               headers(("Retry-After" = u64, description = "seconds")))))]
pub async fn create_customer(
    State(state): State<AppState>,
    _key: SecretKey,
    idem: IdempotencyKey,
    body: ApiJson<CustomerIn>,
) -> Result<(StatusCode, Json<Customer>), ApiError> {
    let input = &body.value;
    validate::customer_id(&input.id).map_err(|m| ApiError::invalid("id", m))?;
    let command = Command::CreateCustomer(NewCustomer {
        id: input.id.clone(),
        email: optional_text("email", input.email.clone())?,
        metadata: metadata(input.metadata.clone())?,
        signup_bonus: state.settings.signup_bonus,
    });
    match state.write(command, idem.for_app(&body)).await? {
        Outcome::Customer {
            mut customer,
            created: true,
        } => {
            if crate::billing::free_plan::grant_to(&state, &customer.id).await? {
                customer = state.customer(&customer.id).await?;
            }
            Ok((StatusCode::CREATED, Json(customer)))
        }
        Outcome::Customer {
            customer,
            created: false,
        } => Ok((StatusCode::OK, Json(customer))),
        other => Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
    }
}

/// A customer with balance (Σ live grants) and available credits (balance − open holds).
#[utoipa::path(get, path = "/v1/customers/{id}", tag = "customers", params(CustomerPath),
    responses((status = 200, body = Customer), (status = 404, body = ErrorBody, description = "`customer_not_found`")))]
pub async fn get_customer(
    State(state): State<AppState>,
    _key: SecretKey,
    Path(id): Path<String>,
) -> Result<Json<Customer>, ApiError> {
    let mut customer = state.customer(&id).await?;
    customer.subscription = state.store.subscription_of(&id).await?;
    customer.auto_topup = state.store.auto_topup(&id).await?.map(|t| t.view());
    Ok(Json(customer))
}

/// Changes a customer; omitted fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerUpdateIn {
    #[schema(value_type = Option<Text>)]
    pub email: Option<String>,
    /// Replaces the metadata.
    #[schema(value_type = Option<Metadata>)]
    pub metadata: Option<serde_json::Value>,
    /// Available credits below this send `credits.low` (once, until `credits.restored`); a
    /// decimal string, or null for the configured default.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<NonNegativeCredits>, example = "10")]
    pub low_balance_threshold: Option<Option<Credits>>,
}

/// Tells an explicit `null` (`Some(None)`) from an absent field (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<Credits>>, D::Error> {
    Option::<Credits>::deserialize(d).map(Some)
}

/// Update a customer (Stripe's convention: POST updates). A new low-balance threshold is
/// checked against available credits at once: crossing it sends `credits.low`.
#[utoipa::path(post, path = "/v1/customers/{id}", request_body = CustomerUpdateIn, tag = "customers",
    responses((status = 200, body = Customer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn update_customer(
    State(state): State<AppState>,
    _key: SecretKey,
    Path(id): Path<String>,
    body: ApiJson<CustomerUpdateIn>,
) -> Result<Json<Customer>, ApiError> {
    let input = body.value;
    if let Some(Some(threshold)) = input.low_balance_threshold {
        if threshold.micros() < 0 {
            return Err(ApiError::invalid("low_balance_threshold", "must not be negative"));
        }
    }
    let update = creditd_store::CustomerUpdate {
        email: optional_text("email", input.email)?,
        metadata: input.metadata.map(|m| metadata(Some(m))).transpose()?,
        low_balance_threshold: input.low_balance_threshold,
    };
    let mut customer = state
        .store
        .update_customer(&id, &update, state.clock.now())
        .await?
        .ok_or_else(|| ApiError::not_found("customer_not_found", format!("no such customer: {id}")))?;
    customer.subscription = state.store.subscription_of(&id).await?;
    Ok(Json(customer))
}

/// Grant credits to a customer (promotion or operator adjustment).
#[utoipa::path(post, path = "/v1/customers/{id}/grants", request_body = GrantIn, tag = "customers", params(CustomerPath, IdempotencyKey),
    responses((status = 201, body = Grant), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody, description = "`customer_not_found`"),
              (status = 409, body = ErrorBody, description = "`balance_limit`: the balance would pass 4 × 10^12 credits; or `idempotency_key_reused`"),
              (status = 503, body = ErrorBody, description = "`overloaded`: retry after `Retry-After` seconds",
               headers(("Retry-After" = u64, description = "seconds")))))]
pub async fn create_grant(
    State(state): State<AppState>,
    _key: SecretKey,
    Path(id): Path<String>,
    idem: IdempotencyKey,
    body: ApiJson<GrantIn>,
) -> Result<(StatusCode, Json<Grant>), ApiError> {
    let input = &body.value;
    let amount = input.amount.positive().map_err(|e| ApiError::invalid("amount", e))?;
    validate::text(&input.reason).map_err(|m| ApiError::invalid("reason", m))?;
    let reason = input.reason.trim();
    if reason.is_empty() {
        return Err(ApiError::invalid("reason", "is required"));
    }
    let priority = input.priority.unwrap_or(creditd_domain::account::DEFAULT_PRIORITY);
    if !(0..=creditd_domain::account::MAX_PRIORITY).contains(&priority) {
        return Err(ApiError::invalid("priority", "must be between 0 and 100"));
    }
    let now = state.clock.now();
    if input.expires_at.is_some_and(|at| at <= now) {
        return Err(ApiError::invalid("expires_at", "must be in the future (unix seconds)"));
    }
    let source = input.source.unwrap_or(GrantSource::Promotion);
    if !matches!(source, GrantSource::Promotion | GrantSource::Admin) {
        return Err(ApiError::invalid(
            "source",
            "must be `promotion` or `admin`; purchases are granted by creditd itself",
        ));
    }
    let command = Command::Grant(NewGrant {
        customer: id,
        amount,
        priority,
        expires_at: input.expires_at,
        source,
        reason: Some(reason.to_string()),
        reference: None,
    });
    match state.write(command, idem.for_app(&body)).await? {
        Outcome::Grant(grant) => Ok((StatusCode::CREATED, Json(grant))),
        other => Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
    }
}

/// A customer's grants, newest first.
#[utoipa::path(get, path = "/v1/customers/{id}/grants", tag = "customers", params(CustomerPath, ListQuery),
    responses((status = 200, body = GrantList), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody, description = "`customer_not_found`")))]
pub async fn list_grants(
    State(state): State<AppState>,
    _key: SecretKey,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<GrantList>, ApiError> {
    state.customer(&id).await?;
    let page = state.store.grants(&id, &query.page()?).await?;
    Ok(Json(GrantList {
        object: "list",
        data: page.data,
        has_more: page.has_more,
    }))
}

/// A customer's ledger entries, newest first.
#[utoipa::path(get, path = "/v1/customers/{id}/ledger", tag = "customers", params(CustomerPath, ListQuery),
    responses((status = 200, body = EntryList), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody, description = "`customer_not_found`")))]
pub async fn list_ledger(
    State(state): State<AppState>,
    _key: SecretKey,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<EntryList>, ApiError> {
    state.customer(&id).await?;
    let page = state.store.ledger(&id, &query.page()?).await?;
    Ok(Json(EntryList {
        object: "list",
        data: page.data,
        has_more: page.has_more,
    }))
}
