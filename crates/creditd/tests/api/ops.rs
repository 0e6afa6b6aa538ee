//! Operating creditd: Prometheus metrics read by a real text-format parser, `Request-Id`,
//! rate limits, and the 429/503 answers in the OpenAPI document.

use std::time::Duration;

use creditd::config::Settings;
use prometheus_parse::{Scrape, Value as Sample};
use serde_json::{json, Value};

use crate::helpers::{code, on_both_backends, test_settings, TestApp, T0};
use crate::purchases;

on_both_backends!(metrics_name_every_family_and_move_with_the_scenario);
on_both_backends!(settings = tight_limits; over_the_limit_is_429_with_headers_writes_nothing_and_refills);

/// Every family the operator's dashboards and alerts rely on.
const FAMILIES: &[&str] = &[
    "creditd_http_requests_total",
    "creditd_http_request_duration_seconds",
    "creditd_write_queue_depth",
    "creditd_write_batch_size",
    "creditd_write_batch_duration_seconds",
    "creditd_write_batch_retries_total",
    "creditd_spend_total",
    "creditd_credits_spent_total",
    "creditd_credits_granted_total",
    "creditd_stripe_webhooks_total",
    "creditd_stripe_webhook_duration_seconds",
    "creditd_reconcile_runs_total",
    "creditd_reconcile_recovered_events_total",
    "creditd_payments_total",
    "creditd_db_pool_connections",
    "creditd_outbound_deliveries_total",
];

pub async fn scrape(app: &TestApp) -> Scrape {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().await.unwrap();
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text format")
}

/// The sum of the samples of `metric` with these labels (a histogram counts its
/// observations).
pub fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Sample::Counter(v) | Sample::Gauge(v) | Sample::Untyped(v) => *v,
            Sample::Histogram(buckets) => buckets.iter().map(|b| b.count).fold(0.0, f64::max),
            Sample::Summary(_) => 0.0,
        })
        .sum()
}

async fn metrics_name_every_family_and_move_with_the_scenario(app: &TestApp) {
    let before = scrape(app).await;
    app.customer("metered_customer").await;
    app.grant("metered_customer", "10").await;
    let usage = json!({"customer": "metered_customer", "amount": "2.5", "feature": "chat"});
    let first = app.post_idem("/v1/usage", "metrics-1", usage.clone()).await;
    assert_eq!(first.status, 200, "{}", first.text);
    // A replay, well after the first request finished.
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(app.post_idem("/v1/usage", "metrics-1", usage).await.status, 200);
    let broke = json!({"customer": "metered_customer", "amount": "1000", "feature": "chat"});
    assert_eq!(app.post("/v1/usage", broke).await.status, 402);
    app.balance("metered_customer").await;
    // A purchase: a payment created and completed, its webhooks handled in the background.
    let package = purchases::package(app, "100", 500).await;
    let (_, url) = purchases::checkout(app, "metered_customer", &package, 1).await;
    purchases::pay(&url, &purchases::card("4242 4242 4242 4242")).await;
    purchases::wait_for_balance(app, "metered_customer", "112.5").await;
    app.wait_until_events_handled().await;
    let after = scrape(app).await;

    let documented: Vec<&str> = after.docs.keys().map(String::as_str).collect();
    for family in FAMILIES {
        assert!(
            documented.contains(family),
            "{family} is missing from /metrics: {documented:?}"
        );
    }
    // Counters are u64 and wrap at 2^64: the micro-credit counters do within this test binary,
    // whose other tests grant up to the balance limit (4 × 10^18 micro-credits) at a time. At
    // that size the parser's f64 is exact only to a few thousand micro-credits: the change is
    // read with that slack.
    let moved = |metric: &str, labels: &[(&str, &str)]| {
        let (from, to) = (value(&before, metric, labels), value(&after, metric, labels));
        let slack = 4.0 * f64::EPSILON * from.abs().max(to.abs());
        let change = to - from + slack;
        if change < 0.0 {
            change + 2f64.powi(64)
        } else {
            change
        }
    };
    assert!(moved("creditd_spend_total", &[("outcome", "ok")]) >= 1.0);
    assert!(moved("creditd_spend_total", &[("outcome", "idempotent_replay")]) >= 1.0);
    assert!(moved("creditd_spend_total", &[("outcome", "insufficient_credits")]) >= 1.0);
    assert!(
        moved("creditd_credits_spent_total", &[]) >= 2_500_000.0,
        "micro-credits"
    );
    assert!(moved("creditd_credits_granted_total", &[("source", "promotion")]) >= 10_000_000.0);
    assert!(moved("creditd_credits_granted_total", &[("source", "signup_bonus")]) >= 5_000_000.0);
    let usage_route = [("route", "/v1/usage"), ("method", "POST")];
    assert!(
        moved(
            "creditd_http_requests_total",
            &[usage_route[0], usage_route[1], ("status", "200")]
        ) >= 2.0
    );
    assert!(
        moved(
            "creditd_http_requests_total",
            &[usage_route[0], usage_route[1], ("status", "402")]
        ) >= 1.0
    );
    assert!(moved("creditd_http_request_duration_seconds", &usage_route) >= 3.0);
    let customer_route = [("route", "/v1/customers/:id"), ("method", "GET")];
    assert!(moved("creditd_http_request_duration_seconds", &customer_route) >= 1.0);
    assert!(moved("creditd_payments_total", &[("flow", "checkout"), ("status", "created")]) >= 1.0);
    assert!(
        moved(
            "creditd_payments_total",
            &[("flow", "checkout"), ("status", "succeeded")]
        ) >= 1.0
    );
    assert!(moved("creditd_credits_granted_total", &[("source", "purchase")]) >= 100_000_000.0);
    let completed = [("type", "checkout.session.completed")];
    assert!(
        moved(
            "creditd_stripe_webhooks_total",
            &[completed[0], ("outcome", "processed")]
        ) >= 1.0
    );
    assert!(moved("creditd_stripe_webhook_duration_seconds", &completed) >= 1.0);
    assert!(moved("creditd_write_batch_size", &[]) >= 1.0);
    assert!(moved("creditd_write_batch_duration_seconds", &[]) >= 1.0);
    assert!(
        value(&after, "creditd_db_pool_connections", &[("state", "idle")])
            + value(&after, "creditd_db_pool_connections", &[("state", "in_use")])
            >= 1.0
    );
    let raw_paths = after
        .samples
        .iter()
        .filter(|s| s.labels.get("route").is_some_and(|r| r.contains("metered_customer")))
        .count();
    assert_eq!(raw_paths, 0, "route labels are templates, never raw paths");
}

fn tight_limits() -> Settings {
    Settings {
        rate_limit_per_second: 1,
        rate_limit_burst: 6,
        purchase_rate_limit_per_minute: 2,
        ..test_settings()
    }
}

async fn send_as(app: &TestApp, key: &str, path: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn over_the_limit_is_429_with_headers_writes_nothing_and_refills(app: &TestApp) {
    // The harness's own key makes the set-up calls; each other key has a bucket of its own.
    let spender = app.db.store.create_api_key("spender", T0).await.unwrap().secret;
    let buyer = app.db.store.create_api_key("buyer", T0).await.unwrap().secret;
    app.customer("limited").await;
    app.customer("other_buyer").await;
    let package = app
        .post(
            "/v1/packages",
            json!({"name": "Small", "credits": "10", "price": 500, "currency": "usd"}),
        )
        .await;
    assert_eq!(package.status, 201, "{}", package.text);
    let package = package.body["id"].as_str().unwrap().to_string();

    let usage = json!({"customer": "limited", "amount": "0.1", "feature": "chat"});
    for remaining in (0..6).rev() {
        let ok = send_as(app, &spender, "/v1/usage", usage.clone()).await;
        assert_eq!(ok.status(), 200);
        assert_eq!(ok.headers()["ratelimit-limit"], "6");
        assert_eq!(ok.headers()["ratelimit-remaining"], remaining.to_string().as_str());
    }
    let refused = send_as(app, &spender, "/v1/usage", usage.clone()).await;
    assert_eq!(refused.status(), 429);
    let headers = refused.headers().clone();
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(
        (&headers["ratelimit-limit"], &headers["ratelimit-remaining"]),
        (&"6".parse().unwrap(), &"0".parse().unwrap())
    );
    assert!(headers["ratelimit-reset"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert!(headers["request-id"].to_str().unwrap().starts_with("req_"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(
        app.balance("limited").await.0,
        "4.4",
        "six spends of 0.1, the refused one wrote nothing"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        send_as(app, &spender, "/v1/usage", usage).await.status(),
        200,
        "a second refills one token"
    );

    // Purchases: a stricter bucket per customer, whatever the key.
    let checkout = |customer: &str| json!({"customer": customer, "package": package});
    for _ in 0..2 {
        let created = send_as(app, &buyer, "/v1/checkout-sessions", checkout("limited")).await;
        assert_eq!(created.status(), 201);
    }
    let refused = send_as(app, &buyer, "/v1/checkout-sessions", checkout("limited")).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "30", "2 a minute: one every 30 s");
    assert_eq!(refused.headers()["ratelimit-limit"], "2");
    let other = send_as(app, &buyer, "/v1/checkout-sessions", checkout("other_buyer")).await;
    assert_eq!(other.status(), 201, "another customer has a bucket of its own");
    let payments = app.get("/v1/payments?customer=limited").await;
    assert_eq!(
        payments.body["data"].as_array().unwrap().len(),
        2,
        "the refused purchase created nothing"
    );
}

#[tokio::test]
async fn every_response_carries_a_fresh_request_id() {
    let app = TestApp::spawn(creditd_store::testing::TestDb::sqlite().await).await;
    let mut seen = std::collections::HashSet::new();
    for path in ["/healthz", "/v1/customers/nobody", "/no/such/route"] {
        let response = app
            .client
            .get(app.url(path))
            .bearer_auth(&app.key)
            .send()
            .await
            .unwrap();
        let id = response.headers()["request-id"].to_str().unwrap().to_string();
        assert!(id.starts_with("req_") && id.len() > 12, "{id}");
        assert!(seen.insert(id), "ids differ");
    }
}

#[tokio::test]
async fn metrics_token_guards_metrics() {
    let settings = Settings {
        metrics_token: Some("scrape-me-0123456789".into()),
        ..test_settings()
    };
    let app = TestApp::spawn_with(creditd_store::testing::TestDb::sqlite().await, settings).await;
    let open = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(open.status(), 401);
    let wrong = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("scrape-me-0123456788")
        .send();
    assert_eq!(wrong.await.unwrap().status(), 401);
    let right = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("scrape-me-0123456789")
        .send();
    let text = right.await.unwrap().text().await.unwrap();
    assert!(text.contains("creditd_write_queue_depth"), "{text}");
}

#[tokio::test]
async fn every_operation_documents_503_and_the_limited_ones_429() {
    let app = TestApp::spawn(creditd_store::testing::TestDb::sqlite().await).await;
    let doc = app.get("/openapi.json").await.body;
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            let responses = &operation["responses"];
            assert!(responses["503"].is_object(), "{method} {path} lacks 503");
            let open = operation["security"]
                .as_array()
                .is_some_and(|s| s.iter().all(|r| r.as_object().is_some_and(|o| o.is_empty())));
            assert_eq!(
                responses["429"].is_object(),
                !open,
                "{method} {path}: 429 iff it takes a credential"
            );
        }
    }
    assert!(operations > 20);
    let usage = &doc["paths"]["/v1/usage"]["post"]["responses"]["429"];
    assert!(usage["headers"]["Retry-After"].is_object() && usage["headers"]["RateLimit-Remaining"].is_object());
    assert_eq!(code(&app.get("/v1/customers/nobody").await), "customer_not_found");
}
