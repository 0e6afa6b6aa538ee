//! The spend path: usage, two-phase holds, and the read-only check.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use creditd_domain::command::{NewHold, NewUsage};
use creditd_domain::views::{Hold, Usage};
use creditd_domain::{validate, Command, Credits, Outcome};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::http::customers::metadata;
use crate::http::doc::{CustomerId, Feature, Metadata, NonNegativeCredits, PositiveCredits};
use crate::http::error::{ApiError, ErrorBody};

const INSUFFICIENT: &str = "`insufficient_credits`, with `balance` and `available`: nothing was spent";
const OVERLOADED: &str = "`overloaded`: retry after `Retry-After` seconds";

/// A hold id in the path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct HoldPath {
    /// `hold_…`
    pub id: String,
}
use crate::http::extract::{ApiJson, IdempotencyKey, SecretKey};

/// Deducts credits for one AI request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageIn {
    #[schema(value_type = CustomerId)]
    pub customer: String,
    #[schema(value_type = PositiveCredits)]
    pub amount: Credits,
    /// What the credits paid for, e.g. `chat` or `image:gen`.
    #[schema(value_type = Feature)]
    pub feature: String,
    #[schema(value_type = Option<Metadata>)]
    pub metadata: Option<serde_json::Value>,
}

/// Reserves credits for a call whose cost is known only at the end.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldIn {
    #[schema(value_type = CustomerId)]
    pub customer: String,
    #[schema(value_type = PositiveCredits)]
    pub amount: Credits,
    /// Seconds until an uncaptured hold releases itself (default from the configuration; at
    /// most `max_hold_ttl_seconds`).
    pub ttl_seconds: Option<i64>,
    #[schema(value_type = Option<Feature>)]
    pub feature: Option<String>,
    #[schema(value_type = Option<Metadata>)]
    pub metadata: Option<serde_json::Value>,
}

/// Spends what the call really cost: up to the hold, or more when available credits cover it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureIn {
    /// Defaults to the whole hold; `0` spends nothing.
    #[schema(value_type = Option<NonNegativeCredits>)]
    pub amount: Option<Credits>,
    #[schema(value_type = Option<Feature>)]
    pub feature: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckIn {
    #[schema(value_type = CustomerId)]
    pub customer: String,
    #[schema(value_type = PositiveCredits)]
    pub amount: Credits,
}

/// Whether a spend of `amount` would be allowed now.
#[derive(Serialize, ToSchema)]
pub struct CheckOut {
    pub allowed: bool,
    #[schema(value_type = String)]
    pub balance: Credits,
    #[schema(value_type = String)]
    pub available: Credits,
    #[schema(value_type = String)]
    pub requested: Credits,
}

fn feature(field: &str, value: &str) -> Result<(), ApiError> {
    validate::feature(value).map_err(|m| ApiError::invalid(field, m))
}

fn hold_outcome(outcome: Outcome) -> Result<Hold, ApiError> {
    match outcome {
        Outcome::Hold(hold) => Ok(hold),
        other => Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
    }
}

/// Record usage: deduct credits, exactly once per idempotency key. 402 with the balance when
/// the available credits do not cover it (nothing is deducted).
#[utoipa::path(post, path = "/v1/usage", request_body = UsageIn, tag = "spending", params(IdempotencyKey),
    responses((status = 200, body = Usage), (status = 402, body = ErrorBody, description = INSUFFICIENT),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody, description = "`customer_not_found`"),
              (status = 503, body = ErrorBody, description = OVERLOADED, headers(("Retry-After" = u64, description = "seconds")))))]
pub async fn record_usage(
    State(state): State<AppState>,
    _key: SecretKey,
    idem: IdempotencyKey,
    body: ApiJson<UsageIn>,
) -> Result<Json<Usage>, ApiError> {
    let input = &body.value;
    let amount = input.amount.positive().map_err(|e| ApiError::invalid("amount", e))?;
    feature("feature", &input.feature)?;
    let command = Command::Usage(NewUsage {
        customer: input.customer.clone(),
        amount,
        feature: input.feature.clone(),
        metadata: metadata(input.metadata.clone())?,
    });
    match state.write(command, idem.for_app(&body)).await? {
        Outcome::Usage(usage) => Ok(Json(usage)),
        other => Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
    }
}

/// Place a hold: reserves credits (reduces available, not balance) until captured, released
/// or expired.
#[utoipa::path(post, path = "/v1/holds", request_body = HoldIn, tag = "spending", params(IdempotencyKey),
    responses((status = 201, body = Hold), (status = 402, body = ErrorBody, description = INSUFFICIENT), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody, description = "`customer_not_found`"),
              (status = 503, body = ErrorBody, description = OVERLOADED, headers(("Retry-After" = u64, description = "seconds")))))]
pub async fn create_hold(
    State(state): State<AppState>,
    _key: SecretKey,
    idem: IdempotencyKey,
    body: ApiJson<HoldIn>,
) -> Result<(StatusCode, Json<Hold>), ApiError> {
    let input = &body.value;
    let amount = input.amount.positive().map_err(|e| ApiError::invalid("amount", e))?;
    let ttl_seconds = input.ttl_seconds.unwrap_or(state.settings.hold_ttl_seconds);
    if !(1..=state.settings.max_hold_ttl_seconds).contains(&ttl_seconds) {
        let max = state.settings.max_hold_ttl_seconds;
        return Err(ApiError::invalid("ttl_seconds", format!("must be between 1 and {max}")));
    }
    if let Some(f) = &input.feature {
        feature("feature", f)?;
    }
    let command = Command::CreateHold(NewHold {
        customer: input.customer.clone(),
        amount,
        ttl_seconds,
        feature: input.feature.clone(),
        metadata: metadata(input.metadata.clone())?,
    });
    let hold = hold_outcome(state.write(command, idem.for_app(&body)).await?)?;
    Ok((StatusCode::CREATED, Json(hold)))
}

/// Capture a hold.
#[utoipa::path(post, path = "/v1/holds/{id}/capture", request_body = CaptureIn, tag = "spending", params(HoldPath, IdempotencyKey),
    responses((status = 200, body = Hold), (status = 402, body = ErrorBody, description = INSUFFICIENT),
              (status = 404, body = ErrorBody, description = "`hold_not_found`"),
              (status = 409, body = ErrorBody, description = "`hold_not_open`, or `idempotency_key_reused`"),
              (status = 503, body = ErrorBody, description = OVERLOADED, headers(("Retry-After" = u64, description = "seconds")))))]
pub async fn capture_hold(
    State(state): State<AppState>,
    _key: SecretKey,
    Path(id): Path<String>,
    idem: IdempotencyKey,
    body: ApiJson<CaptureIn>,
) -> Result<Json<Hold>, ApiError> {
    let input = &body.value;
    let amount = input
        .amount
        .map(|a| a.non_negative().map_err(|e| ApiError::invalid("amount", e)))
        .transpose()?;
    if let Some(f) = &input.feature {
        feature("feature", f)?;
    }
    let command = Command::CaptureHold {
        hold: id,
        amount,
        feature: input.feature.clone(),
    };
    hold_outcome(state.write(command, idem.for_app(&body)).await?).map(Json)
}

/// Release a hold without spending.
#[utoipa::path(post, path = "/v1/holds/{id}/release", tag = "spending", params(HoldPath, IdempotencyKey),
    responses((status = 200, body = Hold), (status = 404, body = ErrorBody, description = "`hold_not_found`"),
              (status = 409, body = ErrorBody, description = "`hold_not_open`, or `idempotency_key_reused`"),
              (status = 503, body = ErrorBody, description = OVERLOADED, headers(("Retry-After" = u64, description = "seconds")))))]
pub async fn release_hold(
    State(state): State<AppState>,
    _key: SecretKey,
    Path(id): Path<String>,
    idem: IdempotencyKey,
    body: ApiJson<serde_json::Map<String, serde_json::Value>>,
) -> Result<Json<Hold>, ApiError> {
    if let Some(field) = body.value.keys().next() {
        return Err(ApiError::invalid(field, "unknown field; release takes no parameters"));
    }
    let command = Command::ReleaseHold { hold: id };
    hold_outcome(state.write(command, idem.for_app(&body)).await?).map(Json)
}

/// A hold and its status.
#[utoipa::path(get, path = "/v1/holds/{id}", tag = "spending", params(HoldPath),
    responses((status = 200, body = Hold), (status = 404, body = ErrorBody, description = "`hold_not_found`")))]
pub async fn get_hold(
    State(state): State<AppState>,
    _key: SecretKey,
    Path(id): Path<String>,
) -> Result<Json<Hold>, ApiError> {
    let hold = state.store.hold(&id, state.clock.now()).await?;
    hold.map(Json)
        .ok_or_else(|| ApiError::not_found("hold_not_found", format!("no such hold: {id}")))
}

/// Would `amount` be allowed now? Changes nothing.
#[utoipa::path(post, path = "/v1/check", request_body = CheckIn, tag = "spending",
    responses((status = 200, body = CheckOut), (status = 404, body = ErrorBody, description = "`customer_not_found`")))]
pub async fn check(
    State(state): State<AppState>,
    _key: SecretKey,
    body: ApiJson<CheckIn>,
) -> Result<Json<CheckOut>, ApiError> {
    let input = &body.value;
    let amount = input.amount.positive().map_err(|e| ApiError::invalid("amount", e))?;
    let check = state.store.check(&input.customer, amount, state.clock.now()).await?;
    let check = check
        .ok_or_else(|| ApiError::not_found("customer_not_found", format!("no such customer: {}", input.customer)))?;
    Ok(Json(CheckOut {
        allowed: check.allowed,
        balance: check.balance,
        available: check.available,
        requested: amount,
    }))
}
