//! Requests that name an object that does not exist are 404s, and webhook URLs follow the
//! pattern the OpenAPI document states: what the document (and schemathesis) expects.

use serde_json::json;

use crate::helpers::{code, on_both_backends, TestApp};

on_both_backends!(
    unknown_referenced_objects_are_404s,
    webhook_urls_follow_the_documented_pattern,
);

async fn unknown_referenced_objects_are_404s(app: &TestApp) {
    app.customer("u").await;
    let units = json!({"tokens": 1});
    let cases = [
        (
            "/v1/usage",
            json!({"customer": "u", "feature": "ghost", "units": units}),
            "feature_not_found",
        ),
        (
            "/v1/holds",
            json!({"customer": "u", "feature": "ghost", "units": units}),
            "feature_not_found",
        ),
        (
            "/v1/check",
            json!({"customer": "u", "feature": "ghost", "units": units}),
            "feature_not_found",
        ),
        (
            "/v1/holds/hold_nothing/capture",
            json!({"units": units}),
            "hold_not_found",
        ),
        (
            "/v1/plans",
            json!({"name": "Pro", "credits": "10", "price": 1000, "currency": "usd", "features": {"ghost": true}}),
            "feature_not_found",
        ),
    ];
    for (path, body, expected) in cases {
        let reply = app.post(path, body).await;
        assert_eq!((reply.status, code(&reply)), (404, expected), "{path}: {}", reply.text);
    }
    assert_eq!(app.get("/v1/plans").await.body["data"], json!([]), "nothing written");
    let plan = json!({"name": "Pro", "credits": "10", "price": 1000, "currency": "usd"});
    let created = app.post("/v1/plans", plan).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let path = format!("/v1/plans/{}", created.body["id"].as_str().unwrap());
    let reply = app.post(&path, json!({"features": {"ghost": true}})).await;
    assert_eq!(
        (reply.status, code(&reply)),
        (404, "feature_not_found"),
        "{}",
        reply.text
    );
    assert_eq!(
        app.get("/v1/plans").await.body["data"],
        json!([created.body]),
        "an update naming an unknown feature changes nothing"
    );
}

async fn webhook_urls_follow_the_documented_pattern(app: &TestApp) {
    for url in ["http://127.0.0.1:8080/hook", "https://app.example.com/webhooks?x=1"] {
        let reply = app.post("/v1/webhook-endpoints", json!({"url": url})).await;
        assert_eq!(reply.status, 201, "{url}: {}", reply.text);
    }
    for url in ["http://A*", "", "http://", "https://1.2.3.999/", "ftp://example.com/"] {
        let reply = app.post("/v1/webhook-endpoints", json!({"url": url})).await;
        assert_eq!(reply.status, 400, "{url}: {}", reply.text);
        assert_eq!(reply.body["error"]["param"], "url");
    }
}
