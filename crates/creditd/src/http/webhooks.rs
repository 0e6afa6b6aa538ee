//! The app's webhook endpoints (Standard Webhooks), their delivery log, and redelivery.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use creditd_domain::validate;
use creditd_store::{AttemptRecord, Endpoint, EndpointUpdate, NewEndpoint, OutboundEvent};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::http::doc::{Text, WebhookUrl};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{ApiJson, SecretKey};
use crate::http::list::{ApiQuery, ListQuery};
use crate::outbound::{self, now_ms, sign};

/// Registers an endpoint.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointIn {
    /// An `http://` or `https://` URL that receives the events as POSTs.
    #[schema(value_type = WebhookUrl)]
    pub url: String,
    /// Event types, or `["*"]` for all of them (the default).
    #[schema(example = json!(["credits.low", "payment.succeeded"]))]
    pub events: Option<Vec<String>>,
    #[schema(value_type = Option<Text>)]
    pub description: Option<String>,
}

/// Changes an endpoint; omitted fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointUpdateIn {
    #[schema(value_type = Option<WebhookUrl>)]
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    #[schema(value_type = Option<Text>)]
    pub description: Option<String>,
    /// A disabled endpoint receives nothing; events recorded meanwhile are not sent to it.
    pub enabled: Option<bool>,
}

/// An endpoint. `secret` (`whsec_…`) is returned in full only when the endpoint is created
/// and when its secret is rotated.
#[derive(Serialize, ToSchema)]
pub struct EndpointOut {
    /// `we_…`
    pub id: String,
    pub object: &'static str,
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// While set, the previous secret still signs beside the current one (unix seconds).
    pub previous_secret_expires_at: Option<i64>,
    pub created: i64,
}

impl EndpointOut {
    fn new(e: Endpoint, with_secret: bool) -> EndpointOut {
        let overlap = e.previous_secret_expires_at.filter(|at| *at > now_ms() / 1000);
        EndpointOut {
            id: e.id,
            object: "webhook_endpoint",
            url: e.url,
            events: e.events,
            description: e.description,
            enabled: e.enabled,
            secret: with_secret.then_some(e.secret),
            previous_secret_expires_at: overlap,
            created: e.created,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct EndpointList {
    pub object: &'static str,
    pub data: Vec<EndpointOut>,
    pub has_more: bool,
}

/// One delivery attempt.
#[derive(Serialize, ToSchema)]
pub struct DeliveryOut {
    /// `att_…`
    pub id: String,
    /// The event (`msg_…`): the `webhook-id` header of every attempt of it.
    pub event: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// `dlv_…`: this event to this endpoint.
    pub delivery: String,
    /// `pending` (will be retried), `delivered` or `failed` (given up).
    pub delivery_status: String,
    /// Unix milliseconds.
    pub attempted_at_ms: i64,
    /// The endpoint's HTTP status; none when it did not answer.
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    /// The first KiB of the response body.
    pub response: Option<String>,
    /// Why there was no answer (timeout, connection refused…).
    pub error: Option<String>,
}

impl From<AttemptRecord> for DeliveryOut {
    fn from(a: AttemptRecord) -> DeliveryOut {
        DeliveryOut {
            id: a.id,
            event: a.event,
            event_type: a.event_type,
            delivery: a.delivery,
            delivery_status: a.delivery_status,
            attempted_at_ms: a.attempted_ms,
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            response: a.response,
            error: a.error,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryList {
    pub object: &'static str,
    pub data: Vec<DeliveryOut>,
    pub has_more: bool,
}

/// An outbound event as recorded, with the body its deliveries carry.
#[derive(Serialize, ToSchema)]
pub struct OutboundEventOut {
    /// `msg_…`
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub customer: Option<String>,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub created: i64,
}

impl From<OutboundEvent> for OutboundEventOut {
    fn from(e: OutboundEvent) -> OutboundEventOut {
        OutboundEventOut {
            id: e.id,
            event_type: e.event_type,
            customer: e.customer,
            data: e.data,
            created: e.created,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct OutboundEventList {
    pub object: &'static str,
    pub data: Vec<OutboundEventOut>,
    pub has_more: bool,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OutboundEventQuery {
    /// Only this customer's events.
    pub customer: Option<String>,
    /// Items per page, 1–100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    pub starting_after: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Redelivery {
    /// The event.
    pub id: String,
    /// Deliveries queued again (one per endpoint that wants the event).
    pub queued: usize,
}

fn check_url(url: &str) -> Result<String, ApiError> {
    outbound::check_url(url).map_err(|m| ApiError::invalid("url", m))
}

fn check_events(events: Vec<String>) -> Result<Vec<String>, ApiError> {
    outbound::check_events(events).map_err(|m| ApiError::invalid("events", m))
}

fn check_description(description: Option<String>) -> Result<Option<String>, ApiError> {
    if let Some(d) = &description {
        validate::text(d).map_err(|m| ApiError::invalid("description", m))?;
    }
    Ok(description)
}

async fn endpoint_or_404(state: &AppState, id: &str) -> Result<Endpoint, ApiError> {
    state
        .store
        .endpoint(id)
        .await?
        .ok_or_else(|| ApiError::not_found("endpoint_not_found", format!("no such webhook endpoint: {id}")))
}

/// Register a webhook endpoint. The response carries its signing secret, in full only here.
#[utoipa::path(post, path = "/v1/webhook-endpoints", request_body = EndpointIn, tag = "webhooks",
    responses((status = 201, body = EndpointOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn create_endpoint(
    State(state): State<AppState>,
    _key: SecretKey,
    body: ApiJson<EndpointIn>,
) -> Result<(StatusCode, Json<EndpointOut>), ApiError> {
    let input = body.value;
    let new = NewEndpoint {
        url: check_url(&input.url)?,
        events: check_events(input.events.unwrap_or_else(|| vec!["*".into()]))?,
        description: check_description(input.description)?,
        secret: sign::new_secret(),
    };
    let endpoint = state.store.create_endpoint(&new, state.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(EndpointOut::new(endpoint, true))))
}

/// Every webhook endpoint, oldest first (without secrets).
#[utoipa::path(get, path = "/v1/webhook-endpoints", tag = "webhooks",
    responses((status = 200, body = EndpointList), (status = 401, body = ErrorBody)))]
pub async fn list_endpoints(State(state): State<AppState>, _key: SecretKey) -> Result<Json<EndpointList>, ApiError> {
    let data = state.store.endpoints().await?;
    Ok(Json(EndpointList {
        object: "list",
        data: data.into_iter().map(|e| EndpointOut::new(e, false)).collect(),
        has_more: false,
    }))
}

/// One webhook endpoint (without its secret).
#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}", tag = "webhooks",
    responses((status = 200, body = EndpointOut), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_endpoint(
    State(state): State<AppState>,
    _key: SecretKey,
    Path(id): Path<String>,
) -> Result<Json<EndpointOut>, ApiError> {
    Ok(Json(EndpointOut::new(endpoint_or_404(&state, &id).await?, false)))
}

/// Update an endpoint's url, events, description or enabled.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}", request_body = EndpointUpdateIn, tag = "webhooks",
    responses((status = 200, body = EndpointOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn update_endpoint(
    State(state): State<AppState>,
    _key: SecretKey,
    Path(id): Path<String>,
    body: ApiJson<EndpointUpdateIn>,
) -> Result<Json<EndpointOut>, ApiError> {
    let input = body.value;
    let update = EndpointUpdate {
        url: input.url.as_deref().map(check_url).transpose()?,
        events: input.events.map(check_events).transpose()?,
        description: check_description(input.description)?,
        enabled: input.enabled,
    };
    let endpoint = state
        .store
        .update_endpoint(&id, &update, state.clock.now())
        .await?
        .ok_or_else(|| ApiError::not_found("endpoint_not_found", format!("no such webhook endpoint: {id}")))?;
    Ok(Json(EndpointOut::new(endpoint, false)))
}

#[derive(Serialize, ToSchema)]
pub struct Deleted {
    pub id: String,
    pub deleted: bool,
}

/// Delete an endpoint with its pending deliveries and its delivery log.
#[utoipa::path(delete, path = "/v1/webhook-endpoints/{id}", tag = "webhooks",
    responses((status = 200, body = Deleted), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_endpoint(
    State(state): State<AppState>,
    _key: SecretKey,
    Path(id): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    if !state.store.delete_endpoint(&id).await? {
        return Err(ApiError::not_found(
            "endpoint_not_found",
            format!("no such webhook endpoint: {id}"),
        ));
    }
    Ok(Json(Deleted { id, deleted: true }))
}

/// A new signing secret. The old one keeps signing beside it for 24 hours (two `v1,`
/// signatures in `webhook-signature`), so receivers can switch without missing a message.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/rotate-secret", tag = "webhooks",
    responses((status = 200, body = EndpointOut), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    _key: SecretKey,
    Path(id): Path<String>,
) -> Result<Json<EndpointOut>, ApiError> {
    // Signatures follow the wall clock (see `outbound::now_ms`), and so does their overlap.
    let endpoint = state
        .store
        .rotate_endpoint_secret(
            &id,
            &sign::new_secret(),
            now_ms() / 1000,
            state.settings.webhook_secret_overlap_seconds,
        )
        .await?
        .ok_or_else(|| ApiError::not_found("endpoint_not_found", format!("no such webhook endpoint: {id}")))?;
    Ok(Json(EndpointOut::new(endpoint, true)))
}

/// An endpoint's delivery attempts, newest first: status code, latency and the first KiB of
/// each response.
#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}/deliveries", tag = "webhooks", params(ListQuery),
    responses((status = 200, body = DeliveryList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    _key: SecretKey,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<DeliveryList>, ApiError> {
    endpoint_or_404(&state, &id).await?;
    let page = state.store.delivery_attempts(&id, &query.page()?).await?;
    Ok(Json(DeliveryList {
        object: "list",
        data: page.data.into_iter().map(DeliveryOut::from).collect(),
        has_more: page.has_more,
    }))
}

/// Outbound events, newest first.
#[utoipa::path(get, path = "/v1/outbound-events", tag = "webhooks", params(OutboundEventQuery),
    responses((status = 200, body = OutboundEventList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_outbound_events(
    State(state): State<AppState>,
    _key: SecretKey,
    ApiQuery(query): ApiQuery<OutboundEventQuery>,
) -> Result<Json<OutboundEventList>, ApiError> {
    let page = ListQuery {
        limit: query.limit,
        starting_after: query.starting_after,
    }
    .page()?;
    let events = state.store.outbound_events(query.customer.as_deref(), &page).await?;
    Ok(Json(OutboundEventList {
        object: "list",
        data: events.data.into_iter().map(OutboundEventOut::from).collect(),
        has_more: events.has_more,
    }))
}

/// Send an event again, now, to every endpoint that wants it, with the same `webhook-id`.
#[utoipa::path(post, path = "/v1/outbound-events/{id}/redeliver", tag = "webhooks",
    responses((status = 200, body = Redelivery), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn redeliver(
    State(state): State<AppState>,
    _key: SecretKey,
    Path(id): Path<String>,
) -> Result<Json<Redelivery>, ApiError> {
    let queued = state
        .store
        .redeliver(&id, now_ms())
        .await?
        .ok_or_else(|| ApiError::not_found("event_not_found", format!("no such outbound event: {id}")))?;
    Ok(Json(Redelivery { id, queued }))
}
