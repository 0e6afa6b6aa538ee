//! Running creditd in production: metrics, rate limits, request ids, logs and shutdown.
//! Each piece is a middleware or a small function the HTTP layer and `serve` call.

pub mod logs;
pub mod metrics;
pub mod observe;
pub mod rate_limit;
pub mod request_id;
pub mod shutdown;
