use serde_json::json;

use crate::helpers::{code, on_both_backends, TestApp};

on_both_backends!(
    customers_are_created_once_with_a_signup_bonus,
    grants_and_ledger_paginate_newest_first,
    expired_grants_leave_the_balance,
    openapi_documents_every_endpoint,
);

async fn customers_are_created_once_with_a_signup_bonus(app: &TestApp) {
    let created = app
        .post(
            "/v1/customers",
            json!({"id": "user_123", "email": "ada@example.com", "metadata": {"team": "x"}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["balance"], "5");
    assert_eq!(created.body["available"], "5");
    assert_eq!(created.body["metadata"]["team"], "x");
    let again = app.post("/v1/customers", json!({"id": "user_123"})).await;
    assert_eq!(again.status, 200, "an existing id answers 200 with the customer");
    assert_eq!(again.body["email"], "ada@example.com");
    assert_eq!(again.body["balance"], "5", "no second bonus");
    let missing = app.get("/v1/customers/nobody").await;
    assert_eq!((missing.status, code(&missing)), (404, "customer_not_found"));
    let bad = app.post("/v1/customers", json!({"id": "has space"})).await;
    assert_eq!((bad.status, bad.body["error"]["param"].as_str()), (400, Some("id")));
    let bad_meta = app.post("/v1/customers", json!({"id": "u2", "metadata": [1]})).await;
    assert_eq!(
        (bad_meta.status, bad_meta.body["error"]["param"].as_str()),
        (400, Some("metadata"))
    );
    assert_eq!(
        app.get("/v1/customers/u2").await.status,
        404,
        "a refused create writes nothing"
    );
}

async fn grants_and_ledger_paginate_newest_first(app: &TestApp) {
    app.customer("u").await;
    app.grant("u", "10").await;
    let expiring = app
        .post(
            "/v1/customers/u/grants",
            json!({"amount": "2.5", "reason": "promo", "priority": 10, "expires_at": crate::helpers::T0 + 3600}),
        )
        .await;
    assert_eq!(expiring.status, 201, "{}", expiring.text);
    assert_eq!(
        (expiring.body["priority"].as_i64(), expiring.body["source"].as_str()),
        (Some(10), Some("promotion"))
    );
    assert_eq!(app.balance("u").await, ("17.5".into(), "17.5".into()));
    let used = app
        .post("/v1/usage", json!({"customer": "u", "amount": "3", "feature": "chat"}))
        .await;
    assert_eq!(used.status, 200, "{}", used.text);
    let entries = used.body["entries"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        2,
        "the priority-10 promo first, then the oldest grant (the signup bonus)"
    );
    assert_eq!(entries[0]["grant"], expiring.body["id"]);
    assert_eq!(
        (entries[0]["amount"].as_str(), entries[1]["amount"].as_str()),
        (Some("-2.5"), Some("-0.5"))
    );
    assert_eq!(used.body["balance"], "14.5");
    let page1 = app.get("/v1/customers/u/ledger?limit=3").await;
    assert_eq!(page1.status, 200);
    let data = page1.body["data"].as_array().unwrap();
    assert_eq!((data.len(), page1.body["has_more"].as_bool()), (3, Some(true)));
    assert_eq!(data[0]["amount"], "-0.5", "newest first");
    let after = data[2]["id"].as_str().unwrap();
    let page2 = app
        .get(&format!("/v1/customers/u/ledger?limit=3&starting_after={after}"))
        .await;
    let data2 = page2.body["data"].as_array().unwrap();
    assert_eq!((data2.len(), page2.body["has_more"].as_bool()), (2, Some(false)));
    assert!(data2.iter().all(|e| e["kind"] == "grant"));
    let grants = app.get("/v1/customers/u/grants?limit=10").await;
    let remaining: Vec<&str> = grants.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["remaining"].as_str().unwrap())
        .collect();
    assert_eq!(remaining, ["0", "10", "4.5"], "the signup bonus is the oldest grant");
    assert_eq!(app.get("/v1/customers/u/ledger?limit=0").await.status, 400);
    assert_eq!(app.get("/v1/customers/u/ledger?limit=abc").await.status, 400);
    assert_eq!(app.get("/v1/customers/ghost/ledger").await.status, 404);
}

async fn expired_grants_leave_the_balance(app: &TestApp) {
    app.customer("u").await;
    let body = json!({"amount": "10", "reason": "trial", "expires_at": crate::helpers::T0 + 60});
    assert_eq!(app.post("/v1/customers/u/grants", body).await.status, 201);
    assert_eq!(app.balance("u").await.0, "15");
    app.clock.advance(60);
    assert_eq!(app.balance("u").await.0, "5", "reads drop the lapsed grant at once");
    let swept = app.db.store.sweep(app.clock.now(), 100).await.unwrap();
    assert_eq!(swept, 1);
    let ledger = app.get("/v1/customers/u/ledger").await;
    let newest = &ledger.body["data"][0];
    assert_eq!(
        (
            newest["kind"].as_str(),
            newest["amount"].as_str(),
            newest["balance_after"].as_str()
        ),
        (Some("expire"), Some("-10"), Some("5"))
    );
    let past = app
        .post(
            "/v1/customers/u/grants",
            json!({"amount": "1", "reason": "x", "expires_at": 5}),
        )
        .await;
    assert_eq!(
        (past.status, past.body["error"]["param"].as_str()),
        (400, Some("expires_at"))
    );
}

async fn openapi_documents_every_endpoint(app: &TestApp) {
    let doc = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    for path in [
        "/v1/customers",
        "/v1/customers/{id}",
        "/v1/customers/{id}/grants",
        "/v1/customers/{id}/ledger",
        "/v1/usage",
        "/v1/holds",
        "/v1/holds/{id}",
        "/v1/holds/{id}/capture",
        "/v1/holds/{id}/release",
        "/v1/check",
        "/healthz",
        "/readyz",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["schemas"].get("Usage").is_some());
    assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(app.client.get(app.url("/readyz")).send().await.unwrap().status(), 200);
}
