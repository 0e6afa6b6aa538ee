//! CORS for the customer-token API: browsers on the configured origins may call `/v1/me…`
//! (the React components do); nothing else is offered to a browser, since a secret key never
//! belongs in one.

use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Whether a browser may call this path from another origin.
fn cross_origin_path(path: &str) -> bool {
    path == "/v1/me" || path.starts_with("/v1/me/")
}

/// Answers preflights and adds `Access-Control-Allow-Origin` for `origins` (exact matches) on
/// the `/v1/me` endpoints; with no origins it allows none.
pub fn layer(origins: &[String]) -> CorsLayer {
    let allowed: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, parts| {
            cross_origin_path(parts.uri.path()) && allowed.iter().any(|a| a == origin)
        }))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([AUTHORIZATION, CONTENT_TYPE, HeaderName::from_static("idempotency-key")])
        .expose_headers([RETRY_AFTER])
        .max_age(std::time::Duration::from_secs(600))
}
