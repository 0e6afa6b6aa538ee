//! Events: recorded for everything that happens, listed newest first and
//! kept 30 days, as on Stripe.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::app::{ApiRequest, SharedApp};
use crate::error::ApiError;
use crate::params::parse_int;

/// How long Stripe's events API keeps events.
pub const RETENTION_S: i64 = 30 * 24 * 3600;

/// The API request that caused an event (`null`s for automatic changes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRequest {
    pub id: Option<String>,
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub type_: String,
    pub created: i64,
    /// Snapshot of the object when the event happened (`data.object`).
    pub object: Value,
    pub request: EventRequest,
    pub pending_webhooks: u32,
}

impl Event {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "object": "event",
            "api_version": creditd_stripe::API_VERSION,
            "created": self.created,
            "data": { "object": self.object },
            "livemode": false,
            "pending_webhooks": self.pending_webhooks,
            "request": { "id": self.request.id, "idempotency_key": self.request.idempotency_key },
            "type": self.type_
        })
    }
}

/// `GET /v1/events/{id}`
pub async fn retrieve(State(app): State<SharedApp>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let st = app.state.lock().await;
    let ev = st.event(&id).ok_or_else(|| ApiError::no_such("event", &id, "id"))?;
    Ok(Json(ev.to_json()))
}

/// `created` filter: `created=ts` or `created[gt|gte|lt|lte]=ts`.
#[derive(Default)]
struct CreatedFilter {
    gt: Option<i64>,
    gte: Option<i64>,
    lt: Option<i64>,
    lte: Option<i64>,
}

impl CreatedFilter {
    fn matches(&self, t: i64) -> bool {
        self.gt.is_none_or(|v| t > v)
            && self.gte.is_none_or(|v| t >= v)
            && self.lt.is_none_or(|v| t < v)
            && self.lte.is_none_or(|v| t <= v)
    }
}

/// `GET /v1/events`: newest first; `limit` 1–100 (default 10);
/// `starting_after` / `ending_before` cursors; `created`, `type`, `types[]`.
pub async fn list(State(app): State<SharedApp>, req: ApiRequest) -> Result<Json<Value>, ApiError> {
    let p = &req.params;
    p.allow_only(&[
        "created",
        "limit",
        "starting_after",
        "ending_before",
        "type",
        "types",
        "delivery_success",
    ])?;
    let limit = p.i64("limit")?.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid(
            "This value must be between 1 and 100.",
            Some("limit"),
        ));
    }
    let mut created = CreatedFilter::default();
    if let Some(exact) = p.str("created") {
        let v = parse_int("created", exact)?;
        created.gte = Some(v);
        created.lte = Some(v);
    } else if let Some(c) = p.map("created") {
        created = CreatedFilter {
            gt: c.i64("gt")?,
            gte: c.i64("gte")?,
            lt: c.i64("lt")?,
            lte: c.i64("lte")?,
        };
    }
    let types: Vec<String> = match p.str("type") {
        Some(t) => vec![t.to_owned()],
        None => p
            .list("types")
            .into_iter()
            .filter_map(|n| match n {
                crate::params::Node::Value(v) => Some(v),
                crate::params::Node::Map(_) => None,
            })
            .collect(),
    };
    let type_matches = |t: &str| {
        types.is_empty()
            || types.iter().any(|pat| match pat.strip_suffix(".*") {
                Some(prefix) => t.starts_with(prefix) && t[prefix.len()..].starts_with('.'),
                None => pat == t,
            })
    };
    let st = app.state.lock().await;
    let oldest = st.now() - RETENTION_S;
    // Newest first; events within one second keep their creation order.
    let matching: Vec<&crate::event::Event> = st
        .events
        .iter()
        .rev()
        .filter(|e| e.created >= oldest && created.matches(e.created) && type_matches(&e.type_))
        .collect();
    let position = |cursor: &str, param: &str| {
        matching
            .iter()
            .position(|e| e.id == cursor)
            .ok_or_else(|| ApiError::no_such("event", cursor, param))
    };
    let limit = limit as usize;
    let (page, has_more) = match (p.str("starting_after"), p.str("ending_before")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "You may only specify one of these parameters: ending_before, starting_after.",
                None,
            ))
        }
        (Some(after), None) => {
            let rest = &matching[position(after, "starting_after")? + 1..];
            (&rest[..rest.len().min(limit)], rest.len() > limit)
        }
        (None, Some(before)) => {
            let newer = &matching[..position(before, "ending_before")?];
            let start = newer.len().saturating_sub(limit);
            (&newer[start..], start > 0)
        }
        (None, None) => (&matching[..matching.len().min(limit)], matching.len() > limit),
    };
    Ok(Json(json!({
        "object": "list",
        "data": page.iter().map(|e| e.to_json()).collect::<Vec<_>>(),
        "has_more": has_more,
        "url": "/v1/events"
    })))
}
