//! The spend path: usage, two-phase holds, and the read-only check.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use creditd_domain::command::{NewHold, NewUsage};
use creditd_domain::views::{Hold, Usage};
use creditd_domain::{validate, Command, Credits, Outcome};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::http::catalog::priced_amount;
use crate::http::customers::metadata;
use crate::http::doc::{CustomerId, FeatureId, Metadata, NonNegativeCredits, PositiveCredits};
use crate::http::error::{ApiError, ErrorBody};

const OVERLOADED: &str = "`overloaded`: retry after `Retry-After` seconds";

/// A hold id in the path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct HoldPath {
    /// `hold_…`
    pub id: String,
}
use crate::http::extract::{ApiJson, IdempotencyKey, SecretKey};

/// Deducts credits for one AI request: an `amount`, or `units` of a priced feature.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageIn {
    #[schema(value_type = CustomerId)]
    pub customer: String,
    #[schema(value_type = Option<PositiveCredits>)]
    pub amount: Option<Credits>,
    /// Quantities of the feature's units, priced on its rate card (instead of `amount`).
    #[schema(example = json!({"input_tokens": 1200, "output_tokens": 350}))]
    pub units: Option<BTreeMap<String, i64>>,
    /// What the credits paid for, e.g. `chat` or `image:gen`.
    #[schema(value_type = FeatureId)]
    pub feature: String,
    /// A budget of the customer's (e.g. the app's API key id) this spend counts against.
    #[schema(value_type = Option<CustomerId>)]
    pub budget: Option<String>,
    #[schema(value_type = Option<Metadata>)]
    pub metadata: Option<serde_json::Value>,
}

/// Reserves credits for a call whose cost is known only at the end.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldIn {
    #[schema(value_type = CustomerId)]
    pub customer: String,
    #[schema(value_type = Option<PositiveCredits>)]
    pub amount: Option<Credits>,
    /// Units of `feature` to reserve at its current prices (instead of `amount`).
    pub units: Option<BTreeMap<String, i64>>,
    /// A budget the hold reserves against.
    #[schema(value_type = Option<CustomerId>)]
    pub budget: Option<String>,
    /// Seconds until an uncaptured hold releases itself (default from the configuration; at
    /// most `max_hold_ttl_seconds`).
    pub ttl_seconds: Option<i64>,
    #[schema(value_type = Option<FeatureId>)]
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
    /// What the call really used, priced on the feature's current rate card (instead of `amount`).
    pub units: Option<BTreeMap<String, i64>>,
    #[schema(value_type = Option<FeatureId>)]
    pub feature: Option<String>,
}

pub(crate) fn feature(field: &str, value: &str) -> Result<(), ApiError> {
    validate::feature(value).map_err(|m| ApiError::invalid(field, m))
}

/// A budget id names one of the app's keys or team members: the customer-id alphabet.
pub(crate) fn budget_id(id: Option<&str>) -> Result<(), ApiError> {
    match id {
        Some(id) => validate::customer_id(id).map_err(|m| ApiError::invalid("budget", m)),
        None => Ok(()),
    }
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
    responses((status = 200, body = Usage), (status = 402, body = ErrorBody, description = "`insufficient_credits` or `budget_exceeded`"), (status = 403, body = ErrorBody, description = "`feature_not_in_plan` or `limit_reached`"),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody, description = "`customer_not_found`, `budget_not_found`, or `feature_not_found` (units of an unknown feature)"),
              (status = 503, body = ErrorBody, description = OVERLOADED, headers(("Retry-After" = u64, description = "seconds")))))]
pub async fn record_usage(
    State(state): State<AppState>,
    _key: SecretKey,
    idem: IdempotencyKey,
    body: ApiJson<UsageIn>,
) -> Result<Json<Usage>, ApiError> {
    let input = &body.value;
    feature("feature", &input.feature)?;
    budget_id(input.budget.as_deref())?;
    let (amount, priced) =
        priced_amount(&state, Some(&input.feature), input.amount, input.units.as_ref(), true).await?;
    let amount = amount.ok_or_else(|| ApiError::invalid("amount", "is required (or units)"))?;
    let command = Command::Usage(NewUsage {
        customer: input.customer.clone(),
        amount,
        feature: input.feature.clone(),
        metadata: metadata(input.metadata.clone())?,
        priced,
        budget: input.budget.clone(),
    });
    match state.write(command, idem.for_app(&body)).await? {
        Outcome::Usage(usage) => Ok(Json(usage)),
        other => Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
    }
}

/// Place a hold: reserves credits (reduces available, not balance) until captured, released
/// or expired.
#[utoipa::path(post, path = "/v1/holds", request_body = HoldIn, tag = "spending", params(IdempotencyKey),
    responses((status = 201, body = Hold), (status = 402, body = ErrorBody, description = "`insufficient_credits` or `budget_exceeded`"), (status = 403, body = ErrorBody, description = "`feature_not_in_plan` or `limit_reached`"), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody, description = "`customer_not_found`, `budget_not_found`, or `feature_not_found` (units of an unknown feature)"),
              (status = 503, body = ErrorBody, description = OVERLOADED, headers(("Retry-After" = u64, description = "seconds")))))]
pub async fn create_hold(
    State(state): State<AppState>,
    _key: SecretKey,
    idem: IdempotencyKey,
    body: ApiJson<HoldIn>,
) -> Result<(StatusCode, Json<Hold>), ApiError> {
    let input = &body.value;
    if let Some(f) = &input.feature {
        feature("feature", f)?;
    }
    budget_id(input.budget.as_deref())?;
    let (amount, priced) = priced_amount(
        &state,
        input.feature.as_deref(),
        input.amount,
        input.units.as_ref(),
        true,
    )
    .await?;
    let amount = amount.ok_or_else(|| ApiError::invalid("amount", "is required (or units)"))?;
    let ttl_seconds = input.ttl_seconds.unwrap_or(state.settings.hold_ttl_seconds);
    if !(1..=state.settings.max_hold_ttl_seconds).contains(&ttl_seconds) {
        let max = state.settings.max_hold_ttl_seconds;
        return Err(ApiError::invalid("ttl_seconds", format!("must be between 1 and {max}")));
    }
    let command = Command::CreateHold(NewHold {
        customer: input.customer.clone(),
        amount,
        ttl_seconds,
        feature: input.feature.clone(),
        metadata: metadata(input.metadata.clone())?,
        priced,
        budget: input.budget.clone(),
    });
    let hold = hold_outcome(state.write(command, idem.for_app(&body)).await?)?;
    Ok((StatusCode::CREATED, Json(hold)))
}

/// Capture a hold.
#[utoipa::path(post, path = "/v1/holds/{id}/capture", request_body = CaptureIn, tag = "spending", params(HoldPath, IdempotencyKey),
    responses((status = 200, body = Hold), (status = 402, body = ErrorBody, description = "`insufficient_credits` or `budget_exceeded`"),
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
    if let Some(f) = &input.feature {
        feature("feature", f)?;
    }
    let (amount, priced) = match &input.units {
        None => {
            let amount = input
                .amount
                .map(|a| a.non_negative().map_err(|e| ApiError::invalid("amount", e)));
            (amount.transpose()?, None)
        }
        Some(units) => {
            // Units are priced on the capture's feature, or else the hold's.
            let feature = match &input.feature {
                Some(f) => f.clone(),
                // The hold's state, not the request's shape: a conflict, like `hold_not_open`.
                None => hold_or_404(&state, &id).await?.feature.ok_or_else(|| ApiError {
                    param: Some("units".into()),
                    ..ApiError::new(
                        StatusCode::CONFLICT,
                        "hold_has_no_feature",
                        "units need a feature: the hold has none, so name one in `feature`",
                    )
                })?,
            };
            priced_amount(&state, Some(&feature), input.amount, Some(units), false).await?
        }
    };
    let command = Command::CaptureHold {
        hold: id,
        amount,
        feature: input.feature.clone(),
        priced,
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
    hold_or_404(&state, &id).await.map(Json)
}

async fn hold_or_404(state: &AppState, id: &str) -> Result<Hold, ApiError> {
    let hold = state.store.hold(id, state.clock.now()).await?;
    hold.ok_or_else(|| ApiError::not_found("hold_not_found", format!("no such hold: {id}")))
}
