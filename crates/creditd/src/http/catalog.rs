//! Features and their rate cards, and pricing a request's units at the current prices.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use creditd_domain::pricing::{Priced, RateCard, DEFAULT_PER};
use creditd_domain::views::Feature;
use creditd_domain::{validate, Credits};
use creditd_store::{FeatureChange, NewFeature};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::http::doc::{FeatureId, Name};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{ApiJson, SecretKey};

/// A feature, optionally priced by units: credits per `per` units of each.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeatureIn {
    /// The name usage records use, e.g. `gpt-4o`.
    #[schema(value_type = FeatureId)]
    pub id: String,
    #[schema(value_type = Name)]
    pub name: String,
    /// Unit → credits per `per` units, exact decimals with up to 6 decimals.
    #[schema(value_type = Option<BTreeMap<String, String>>, example = json!({"input_tokens": "2.5", "output_tokens": "10"}))]
    pub prices: Option<BTreeMap<String, Credits>>,
    /// 1 (default) to 10^9: prices are per this many units.
    #[schema(minimum = 1, maximum = 1_000_000_000, example = 1000000)]
    pub per: Option<i64>,
}

/// Changes to a feature; a new rate card applies from now on.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeatureUpdate {
    #[schema(value_type = Option<Name>)]
    pub name: Option<String>,
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub prices: Option<BTreeMap<String, Credits>>,
    /// 1 to 10^9, with `prices`.
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub per: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct FeatureList {
    pub object: &'static str,
    pub data: Vec<Feature>,
}

fn name(value: &str) -> Result<String, ApiError> {
    let name = value.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid("name", "must be 1 to 100 characters"));
    }
    validate::text(name).map_err(|m| ApiError::invalid("name", m))?;
    Ok(name.to_string())
}

fn rate_card(prices: Option<BTreeMap<String, Credits>>, per: Option<i64>) -> Result<Option<RateCard>, ApiError> {
    match (prices, per) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(ApiError::invalid("per", "applies to prices: give prices too")),
        (Some(prices), per) => RateCard::new(per.unwrap_or(DEFAULT_PER), prices)
            .map(Some)
            .map_err(|e| ApiError::invalid(&e.param, e.message)),
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found("feature_not_found", format!("no such feature: {id}"))
}

/// Create a feature.
#[utoipa::path(post, path = "/v1/features", tag = "catalog", request_body = FeatureIn,
    responses((status = 201, body = Feature), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "feature_exists")))]
pub async fn create_feature(
    State(state): State<AppState>,
    _key: SecretKey,
    body: ApiJson<FeatureIn>,
) -> Result<(StatusCode, Json<Feature>), ApiError> {
    let input = body.value;
    validate::feature(&input.id).map_err(|m| ApiError::invalid("id", m))?;
    let new = NewFeature {
        name: name(&input.name)?,
        card: rate_card(input.prices, input.per)?,
        id: input.id,
    };
    match state.store.create_feature(&new, state.clock.now()).await? {
        Some(feature) => Ok((StatusCode::CREATED, Json(feature))),
        None => Err(ApiError::new(
            StatusCode::CONFLICT,
            "feature_exists",
            format!(
                "feature {} already exists; change it with POST /v1/features/{}",
                new.id, new.id
            ),
        )),
    }
}

/// Features by id (archived ones with `?include_archived=true` are not listed here).
#[utoipa::path(get, path = "/v1/features", tag = "catalog",
    responses((status = 200, body = FeatureList), (status = 401, body = ErrorBody)))]
pub async fn list_features(State(state): State<AppState>, _key: SecretKey) -> Result<Json<FeatureList>, ApiError> {
    Ok(Json(FeatureList {
        object: "list",
        data: state.store.features(false).await?,
    }))
}

/// Rename or re-price a feature. Past usage keeps the price it was charged at.
#[utoipa::path(post, path = "/v1/features/{id}", tag = "catalog", request_body = FeatureUpdate,
    responses((status = 200, body = Feature), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn update_feature(
    State(state): State<AppState>,
    _key: SecretKey,
    Path(id): Path<String>,
    body: ApiJson<FeatureUpdate>,
) -> Result<Json<Feature>, ApiError> {
    let input = body.value;
    let change = FeatureChange {
        name: input.name.as_deref().map(name).transpose()?,
        card: rate_card(input.prices, input.per)?,
    };
    let feature = state.store.update_feature(&id, &change, state.clock.now()).await?;
    feature.map(Json).ok_or_else(|| not_found(&id))
}

/// Archive a feature: it can no longer be used by units; its past usage stays.
#[utoipa::path(post, path = "/v1/features/{id}/archive", tag = "catalog",
    responses((status = 200, body = Feature), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn archive_feature(
    State(state): State<AppState>,
    _key: SecretKey,
    Path(id): Path<String>,
) -> Result<Json<Feature>, ApiError> {
    let feature = state.store.archive_feature(&id, state.clock.now()).await?;
    feature.map(Json).ok_or_else(|| not_found(&id))
}

/// The amount of a spend given as `amount` or as `units` of `feature`, priced at its current
/// rate card. Neither is `None` (allowed when `optional`, e.g. a capture of the whole hold).
pub async fn priced_amount(
    state: &AppState,
    feature: Option<&str>,
    amount: Option<Credits>,
    units: Option<&BTreeMap<String, i64>>,
    positive: bool,
) -> Result<(Option<Credits>, Option<Priced>), ApiError> {
    match (amount, units) {
        (Some(_), Some(_)) => Err(ApiError::invalid("units", "give either amount or units, not both")),
        (Some(amount), None) if positive => {
            let amount = amount.positive().map_err(|e| ApiError::invalid("amount", e))?;
            Ok((Some(amount), None))
        }
        (amount, None) => Ok((amount, None)),
        (None, Some(units)) => {
            let feature = feature.ok_or_else(|| ApiError::invalid("feature", "is required with units"))?;
            let catalog = state.store.catalog().await?;
            // Not in the catalog (its active features) and never created: 404; archived: 400 below.
            if !catalog.features.contains_key(feature) && state.store.feature(feature).await?.is_none() {
                return Err(not_found(feature));
            }
            let card = catalog.rate_card(feature).ok_or_else(|| {
                ApiError::invalid(
                    "units",
                    format!("{feature} has no prices: create it with prices (POST /v1/features) or send an amount"),
                )
            })?;
            let priced = Priced::new(&card, units.clone()).map_err(|e| ApiError::invalid(&e.param, e.message))?;
            Ok((Some(priced.amount), Some(priced)))
        }
    }
}
