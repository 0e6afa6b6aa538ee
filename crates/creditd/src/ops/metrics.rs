//! Prometheus metrics: one process-wide recorder (the `metrics` facade, rendered by
//! `metrics-exporter-prometheus` from our own `/metrics` route), the HTTP middleware that
//! counts every request by route template, and the names of creditd's own families.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::app::AppState;
use crate::http::error::ApiError;

/// Seconds: from a cached balance read to a slow Stripe round trip.
const SECONDS_BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Requests per write batch (at most `write_batch_size`, 4,096).
const BATCH_SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];

/// The recorder, installed on first use; `None` when another recorder was installed first.
pub fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full("creditd_write_batch_size".into()), BATCH_SIZE_BUCKETS)
                })
                .and_then(|b| b.install_recorder())
                .map_err(|e| tracing::warn!(error = %e, "metrics are off"))
                .ok()?;
            describe();
            let upkeep = handle.clone();
            // Drains histogram samples into their buckets between scrapes.
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                })
                .ok();
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "creditd_http_requests_total",
        "HTTP requests answered, by route template, method and status"
    );
    describe_histogram!(
        "creditd_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request, by route template and method"
    );
    describe_gauge!("creditd_write_queue_depth", "Writes waiting in the group-commit queue");
    describe_histogram!("creditd_write_batch_size", "Requests per group-commit batch");
    describe_histogram!(
        "creditd_write_batch_duration_seconds",
        Unit::Seconds,
        "Time to apply one group-commit batch"
    );
    describe_counter!(
        "creditd_write_batch_retries_total",
        "Group-commit batches tried again, by reason"
    );
    describe_counter!("creditd_spend_total", "Usage requests by outcome");
    describe_counter!(
        "creditd_credits_spent_total",
        "Micro-credits spent by usage (1 credit = 1,000,000)"
    );
    describe_counter!(
        "creditd_credits_granted_total",
        "Micro-credits granted, by source (1 credit = 1,000,000)"
    );
    describe_counter!("creditd_stripe_webhooks_total", "Stripe events by type and outcome");
    describe_histogram!(
        "creditd_stripe_webhook_duration_seconds",
        Unit::Seconds,
        "Time to handle one Stripe event, by type"
    );
    describe_counter!("creditd_reconcile_runs_total", "Reconciliation runs, by result");
    describe_counter!(
        "creditd_reconcile_recovered_events_total",
        "Stripe events recovered by reconciliation"
    );
    describe_counter!(
        "creditd_payments_total",
        "Payments started and finished, by flow and status"
    );
    describe_gauge!("creditd_db_pool_connections", "Database connections by pool and state");
    describe_counter!(
        "creditd_outbound_deliveries_total",
        "Attempts to deliver an outbound event to an app's endpoint, by outcome (delivered, retrying, failed)"
    );
    describe_histogram!(
        "creditd_outbound_delivery_duration_seconds",
        Unit::Seconds,
        "Time an app's endpoint took to answer a delivery (or to time out)"
    );
    describe_counter!(
        "creditd_rate_limited_total",
        "Requests refused by a rate limit, by bucket"
    );
    // Series that exist from the start, at zero: an alert on a rate needs them before the
    // first event.
    metrics::counter!("creditd_write_batch_retries_total", "reason" => "transient").increment(0);
    for result in ["ok", "failed"] {
        metrics::counter!("creditd_reconcile_runs_total", "result" => result).increment(0);
    }
    metrics::counter!("creditd_reconcile_recovered_events_total").increment(0);
    metrics::counter!("creditd_credits_spent_total").increment(0);
    for outcome in ["delivered", "retrying", "failed"] {
        metrics::counter!("creditd_outbound_deliveries_total", "outcome" => outcome).increment(0);
    }
    for bucket in ["credential", "purchase"] {
        metrics::counter!("creditd_rate_limited_total", "bucket" => bucket).increment(0);
    }
}

/// Counts and times every request under its route template (never the raw path: ids would
/// make a family per customer). Requests no route matched count as `unmatched`.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| route_label(p.as_str()));
    let method = request.method().as_str().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("creditd_http_request_duration_seconds", "route" => route.clone(), "method" => method.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("creditd_http_requests_total", "route" => route, "method" => method, "status" => status)
        .increment(1);
    response
}

/// The route template with `:name` for each path parameter (`/v1/customers/:id`): braces
/// are valid in a label value, but some text-format parsers trip over them.
fn route_label(template: &str) -> String {
    template.replace('{', ":").replace('}', "")
}

/// `GET /metrics`: the Prometheus text format. Behind `metrics_token` (bearer) when set.
pub async fn render(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(expected) = &state.settings.metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            return ApiError::unauthorized("send the metrics token as `Authorization: Bearer <metrics_token>`")
                .into_response();
        }
    }
    let Some(handle) = handle() else {
        return ApiError::new(StatusCode::NOT_FOUND, "not_found", "metrics are off in this process").into_response();
    };
    sample_gauges(&state);
    handle.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        handle.render(),
    )
        .into_response()
}

/// Gauges read at scrape time.
fn sample_gauges(state: &AppState) {
    metrics::gauge!("creditd_write_queue_depth").set(state.writer.queued() as f64);
    for pool in state.store.pool_connections() {
        metrics::gauge!("creditd_db_pool_connections", "pool" => pool.pool, "state" => "idle").set(pool.idle as f64);
        metrics::gauge!("creditd_db_pool_connections", "pool" => pool.pool, "state" => "in_use")
            .set(pool.in_use as f64);
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
