//! `Request-Id` on every response (Stripe's convention: `req_…`), and a span carrying it
//! so every log line written while the request runs names it.

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub const HEADER: &str = "request-id";

/// A fresh id for each request; never taken from the client, so logs can trust it.
pub async fn assign(request: Request, next: Next) -> Response {
    let id = format!("req_{}", creditd_domain::ids::random_token(20));
    // The route template, not the path: a query string or path may carry a customer token.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let span = tracing::info_span!("request", request_id = %id, method = %request.method(), route = %route);
    let started = std::time::Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::debug!(
            status = response.status().as_u16(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "answered"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}
