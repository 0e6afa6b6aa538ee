//! Stripe events as creditd recorded them: failures visible with their error, and retried.

use axum::extract::{Path, State};
use axum::Json;
use creditd_store::StoredEvent;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::billing::webhook;
use crate::http::doc::EventStatus;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::SecretKey;
use crate::http::list::{ApiQuery, ListQuery};

#[derive(Serialize, ToSchema)]
pub struct EventOut {
    /// `evt_…`
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// `processing` (waiting to be handled), `processed`, `ignored`, `failed` (retried with
    /// back-off) or `refused` (of the other mode, live vs test, than the configured key).
    pub status: String,
    /// Why handling failed.
    pub error: Option<String>,
    /// Deliveries and retries seen.
    pub attempts: i64,
    /// When Stripe created it (unix seconds).
    pub created: i64,
    pub received_at: i64,
    pub processed_at: Option<i64>,
}

impl From<StoredEvent> for EventOut {
    fn from(e: StoredEvent) -> EventOut {
        EventOut {
            id: e.id,
            event_type: e.event_type,
            status: e.status,
            error: e.error,
            attempts: e.attempts,
            created: e.created,
            received_at: e.received_at,
            processed_at: e.processed_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct EventList {
    pub object: &'static str,
    pub data: Vec<EventOut>,
    pub has_more: bool,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Only events in this status, e.g. `failed`.
    #[param(value_type = Option<EventStatus>)]
    pub status: Option<String>,
    /// Items per page, 1–100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The last id of the previous page.
    pub starting_after: Option<String>,
}

/// Stripe events creditd received, newest first.
#[utoipa::path(get, path = "/v1/stripe/events", tag = "purchases", params(EventQuery),
    responses((status = 200, body = EventList), (status = 400, body = ErrorBody)))]
pub async fn list_events(
    State(state): State<AppState>,
    _key: SecretKey,
    ApiQuery(query): ApiQuery<EventQuery>,
) -> Result<Json<EventList>, ApiError> {
    if let Some(status) = query.status.as_deref() {
        if !["processing", "processed", "ignored", "failed", "refused"].contains(&status) {
            return Err(ApiError::invalid(
                "status",
                "must be processing, processed, ignored, failed or refused",
            ));
        }
    }
    let page = ListQuery {
        limit: query.limit,
        starting_after: query.starting_after,
    }
    .page()?;
    let page = state.store.stripe_events(query.status.as_deref(), &page).await?;
    Ok(Json(EventList {
        object: "list",
        data: page.data.into_iter().map(EventOut::from).collect(),
        has_more: page.has_more,
    }))
}

/// Handle a recorded event again (after fixing what made it fail). Already handled events
/// are returned unchanged.
#[utoipa::path(post, path = "/v1/stripe/events/{id}/retry", tag = "purchases", params(("id" = String, Path, description = "`evt_…`")),
    responses((status = 200, body = EventOut), (status = 404, body = ErrorBody, description = "`event_not_found`")))]
pub async fn retry_event(
    State(state): State<AppState>,
    _key: SecretKey,
    Path(id): Path<String>,
) -> Result<Json<EventOut>, ApiError> {
    let payload = state.store.stripe_event_payload(&id).await?;
    let payload = payload.ok_or_else(|| ApiError::not_found("event_not_found", format!("no recorded event {id}")))?;
    let event = creditd_stripe::event::Event::parse(payload.as_bytes()).map_err(ApiError::internal)?;
    // A failure is recorded on the event and shown in the answer; it is not this request's error.
    if let Err(e) = webhook::receive(&state, &event, &payload).await {
        tracing::info!(event = %id, error = %e, "retried event failed again");
    }
    let stored = state.store.stored_event(&id).await?;
    stored
        .map(|e| Json(e.into()))
        .ok_or_else(|| ApiError::internal("retried event vanished"))
}
