//! Liveness, readiness and the OpenAPI document.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use crate::app::AppState;
use crate::http::error::{ApiError, ErrorBody};

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(), responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The database answers (503 `database_unavailable` with `Retry-After` while it does not).
#[utoipa::path(get, path = "/readyz", tag = "operations", security(),
    responses((status = 200, body = Health), (status = 503, body = ErrorBody)))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    match state.store.ping().await {
        Ok(()) => Ok(Json(Health { status: "ready" })),
        Err(e) => Err(ApiError::database_unavailable(e)),
    }
}

pub async fn openapi(api: Arc<serde_json::Value>) -> Json<serde_json::Value> {
    Json((*api).clone())
}
