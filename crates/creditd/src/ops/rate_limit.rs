//! Rate limits, per replica: a token bucket per credential (secret key or customer token)
//! on every request that carries one, and a stricter one per customer on the purchase
//! endpoints. Over the limit: 429 `rate_limited` with `Retry-After` and `RateLimit-*`;
//! the request is refused before anything runs, so nothing is written.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use creditd_domain::rate_limit::{Bucket, Decision, Limit};

use crate::app::AppState;
use crate::http::error::ApiError;

/// Past this many buckets, full ones (indistinguishable from new ones) are forgotten.
const MAX_BUCKETS: usize = 100_000;

/// Buckets of one kind, keyed by a hash of who is limited.
struct Buckets {
    limit: Limit,
    by_key: Mutex<HashMap<u64, Bucket>>,
}

impl Buckets {
    fn take(&self, key: u64, now_us: u64) -> Decision {
        let mut by_key = self.by_key.lock().unwrap_or_else(|p| p.into_inner());
        if by_key.len() >= MAX_BUCKETS && !by_key.contains_key(&key) {
            by_key.retain(|_, b| !b.is_full(&self.limit, now_us));
        }
        by_key
            .entry(key)
            .or_insert_with(|| Bucket::full(&self.limit, now_us))
            .take(&self.limit, now_us)
    }
}

/// Every bucket of this replica.
pub struct Limiter {
    credentials: Option<Buckets>,
    purchases: Option<Buckets>,
    /// Keys are hashed with a per-process secret: no credential is kept, and nobody can
    /// aim a collision at someone else's bucket.
    hasher: RandomState,
    epoch: Instant,
}

impl Limiter {
    /// `None` limits are off.
    pub fn new(credentials: Option<Limit>, purchases: Option<Limit>) -> Limiter {
        let buckets = |limit| Buckets {
            limit,
            by_key: Mutex::new(HashMap::new()),
        };
        Limiter {
            credentials: credentials.map(buckets),
            purchases: purchases.map(buckets),
            hasher: RandomState::new(),
            epoch: Instant::now(),
        }
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// The credential a request carries: a bearer token, or the billing page's session cookie
/// (which is the customer's token).
fn credential(headers: &HeaderMap) -> Option<&str> {
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
    {
        return Some(token);
    }
    let cookie = format!("{}=", crate::pages::billing::COOKIE);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(cookie.as_str()))
}

/// The per-credential limit, as middleware.
pub async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limiter = &state.limits;
    let Some(buckets) = &limiter.credentials else {
        return next.run(request).await;
    };
    let Some(token) = credential(request.headers()) else {
        return next.run(request).await;
    };
    let decision = buckets.take(limiter.hasher.hash_one(token), limiter.now_us());
    if !decision.allowed {
        return refused(decision, "credential").into_response();
    }
    let mut response = next.run(request).await;
    // A purchase refused by its own, stricter bucket already says so.
    if !response.headers().contains_key("ratelimit-limit") {
        set_headers(response.headers_mut(), &decision);
    }
    response
}

/// The per-customer limit of the purchase endpoints (Checkout Sessions, PaymentIntents,
/// the billing page's Buy button); call before anything is created.
pub fn purchase(state: &AppState, customer: &str) -> Result<(), ApiError> {
    let limiter = &state.limits;
    let Some(buckets) = &limiter.purchases else {
        return Ok(());
    };
    let decision = buckets.take(limiter.hasher.hash_one(("purchase", customer)), limiter.now_us());
    if decision.allowed {
        Ok(())
    } else {
        Err(refused(decision, "purchase"))
    }
}

fn refused(decision: Decision, bucket: &'static str) -> ApiError {
    metrics::counter!("creditd_rate_limited_total", "bucket" => bucket).increment(1);
    ApiError {
        retry_after: Some(decision.retry_after_seconds),
        rate_limit: Some(Box::new(decision)),
        ..ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "too many requests; retry after {} second(s)",
                decision.retry_after_seconds
            ),
        )
    }
}

/// `RateLimit-Limit`, `-Remaining` and `-Reset` (seconds until the bucket is full).
fn header_values(decision: &Decision) -> [(&'static str, u64); 3] {
    [
        ("ratelimit-limit", decision.limit),
        ("ratelimit-remaining", decision.remaining),
        ("ratelimit-reset", decision.reset_seconds),
    ]
}

pub fn set_headers(headers: &mut HeaderMap, decision: &Decision) {
    for (name, value) in header_values(decision) {
        headers.insert(name, HeaderValue::from(value));
    }
}
