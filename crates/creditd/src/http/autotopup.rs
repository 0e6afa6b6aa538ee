//! A customer's auto top-up settings.

use axum::extract::{Path, State};
use axum::Json;
use creditd_domain::views::AutoTopupView;
use creditd_domain::Credits;
use creditd_store::AutoTopupSettings;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::http::doc::NonNegativeCredits;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{ApiJson, SecretKey};

/// The threshold offered before a customer picks one: 10 credits.
pub const DEFAULT_THRESHOLD: Credits = Credits::from_micros(10 * creditd_domain::amount::MICROS_PER_CREDIT);

/// Turns auto top-up on or off. Once on, the customer's next purchase saves its card for
/// off-session use; when available credits fall below `threshold`, `quantity` of `package`
/// is bought with it (at most one in flight, at most `max_per_month`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoTopupIn {
    pub enabled: bool,
    /// A credit amount (decimal string, up to 6 decimals).
    #[schema(value_type = NonNegativeCredits, example = "10")]
    pub threshold: Credits,
    /// An active package, `pkg_…`.
    pub package: String,
    /// 1–100 (default 1).
    #[schema(minimum = 1, maximum = 100)]
    pub quantity: Option<i64>,
    /// 1–1000; omit for no limit.
    #[schema(minimum = 1, maximum = 1000)]
    pub max_per_month: Option<i64>,
}

/// Validates and saves settings (shared by the API and the billing page).
pub async fn save(state: &AppState, customer: &str, input: AutoTopupIn) -> Result<AutoTopupView, ApiError> {
    state.customer(customer).await?;
    if input.threshold.micros() < 0 {
        return Err(ApiError::invalid("threshold", "must not be negative"));
    }
    let quantity = input.quantity.unwrap_or(1);
    if !(1..=100).contains(&quantity) {
        return Err(ApiError::invalid("quantity", "must be between 1 and 100"));
    }
    if input.max_per_month.is_some_and(|m| !(1..=1000).contains(&m)) {
        return Err(ApiError::invalid("max_per_month", "must be between 1 and 1000"));
    }
    crate::http::payments::active_package(state, &input.package).await?;
    let settings = AutoTopupSettings {
        enabled: input.enabled,
        threshold: input.threshold,
        package: input.package,
        quantity,
        max_per_month: input.max_per_month,
    };
    let saved = state
        .store
        .set_auto_topup(customer, &settings, state.clock.now())
        .await?;
    Ok(saved.view())
}

/// Set a customer's auto top-up.
#[utoipa::path(post, path = "/v1/customers/{id}/auto-topup", request_body = AutoTopupIn, tag = "purchases",
    responses((status = 200, body = AutoTopupView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody, description = "`customer_not_found` or `package_not_found`"),
              (status = 409, body = ErrorBody, description = "`package_archived`: the package is no longer sold")))]
pub async fn set_auto_topup(
    State(state): State<AppState>,
    _key: SecretKey,
    Path(id): Path<String>,
    body: ApiJson<AutoTopupIn>,
) -> Result<Json<AutoTopupView>, ApiError> {
    Ok(Json(save(&state, &id, body.value).await?))
}

/// A customer's auto top-up, with why it turned itself off when it did. A customer who never
/// saved any has it off: `enabled` false, no `package`, the default `threshold`.
#[utoipa::path(get, path = "/v1/customers/{id}/auto-topup", tag = "purchases",
    responses((status = 200, body = AutoTopupView), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody, description = "`customer_not_found`")))]
pub async fn get_auto_topup(
    State(state): State<AppState>,
    _key: SecretKey,
    Path(id): Path<String>,
) -> Result<Json<AutoTopupView>, ApiError> {
    state.customer(&id).await?;
    let topup = state.store.auto_topup(&id).await?;
    Ok(Json(topup.map_or_else(
        || AutoTopupView::off(&id, DEFAULT_THRESHOLD),
        |t| t.view(),
    )))
}
