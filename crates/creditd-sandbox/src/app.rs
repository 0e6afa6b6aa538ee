//! Shared state of a running sandbox and the request extractor every API
//! handler uses.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::Method;
use tokio::sync::{Mutex, Notify};

use crate::error::ApiError;
use crate::event::EventRequest;
use crate::faults::FaultState;
use crate::ids;
use crate::params::Params;
use crate::state::State;
use crate::SandboxOptions;

/// Largest request body accepted (Stripe's limit is far above what we need).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

pub struct App {
    pub state: Mutex<State>,
    pub webhook_url: std::sync::RwLock<Option<String>>,
    pub webhook_secret: String,
    /// Where browsers reach the sandbox (hosted pages, receipts); ends with `/`.
    pub public_base_url: String,
    pub state_path: Option<PathBuf>,
    pub options: SandboxOptions,
    pub delivery_wakeup: Notify,
    pub deliveries_paused: AtomicBool,
    /// Delivery faults and counters; never held across an await.
    pub faults: std::sync::Mutex<FaultState>,
    pub timer_wakeup: Notify,
    /// Idempotency keys whose first request is still running.
    pub in_flight_keys: std::sync::Mutex<HashSet<String>>,
}

pub type SharedApp = Arc<App>;

impl App {
    pub fn webhook_url(&self) -> Option<String> {
        self.webhook_url.read().expect("webhook_url lock").clone()
    }

    pub fn deliveries_paused(&self) -> bool {
        self.deliveries_paused.load(Ordering::SeqCst)
    }

    /// Call after mutating `state` (with the lock still held): snapshots it
    /// and wakes the delivery worker and the timers.
    pub async fn commit(&self, state: &State) -> Result<(), ApiError> {
        if let Some(path) = &self.state_path {
            state.save(path).await?;
        }
        self.delivery_wakeup.notify_one();
        self.timer_wakeup.notify_one();
        Ok(())
    }

    /// Absolute URL on the sandbox's public base, e.g. `pay/cs_…`.
    pub fn public_url(&self, path: &str) -> String {
        format!("{}{}", self.public_base_url, path.trim_start_matches('/'))
    }
}

/// A parsed API request: parameters from the body (POST) or query (GET),
/// plus what events record about the request that caused them.
pub struct ApiRequest {
    pub params: Params,
    pub request: EventRequest,
}

impl<S: Send + Sync> FromRequest<S> for ApiRequest {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let idempotency_key = req
            .headers()
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let query = req.uri().query().unwrap_or("").to_owned();
        let is_get = req.method() == Method::GET;
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::invalid(format!("Could not read request body: {e}"), None))?;
        let params = if is_get {
            Params::parse(query.as_bytes())?
        } else {
            Params::parse(&body)?
        };
        Ok(ApiRequest {
            params,
            request: EventRequest {
                id: Some(ids::new_id("req")),
                idempotency_key: if is_get { None } else { idempotency_key },
            },
        })
    }
}
