use serde_json::json;

use crate::helpers::{code, on_both_backends, TestApp};

on_both_backends!(
    bad_input_is_a_clear_4xx_and_writes_nothing,
    secret_keys_are_required_and_revocable,
    idempotency_keys_replay_the_first_response,
);

async fn bad_input_is_a_clear_4xx_and_writes_nothing(app: &TestApp) {
    app.customer("u").await;
    let cases = [
        (
            json!({"customer": "u", "amount": "1.0000001", "feature": "f"}),
            "amount",
            "more than 6 decimal places",
        ),
        (
            json!({"customer": "u", "amount": "1e3", "feature": "f"}),
            "amount",
            "not a decimal number",
        ),
        (
            json!({"customer": "u", "amount": 1.5, "feature": "f"}),
            "amount",
            "floating-point",
        ),
        (
            json!({"customer": "u", "amount": "-1", "feature": "f"}),
            "amount",
            "greater than zero",
        ),
        (
            json!({"customer": "u", "amount": "0", "feature": "f"}),
            "amount",
            "greater than zero",
        ),
        (
            json!({"customer": "u", "amount": "99999999999999999999", "feature": "f"}),
            "amount",
            "too large",
        ),
        (
            json!({"customer": "u", "amount": 18446744073709551615u64, "feature": "f"}),
            "amount",
            "too large",
        ),
        (
            json!({"customer": "u", "amount": "1", "feature": "has space"}),
            "feature",
            "may contain only",
        ),
        (json!({"customer": "u", "amount": "1"}), "feature", "required"),
        (
            json!({"customer": "u", "amount": "1", "feature": "f", "colour": "red"}),
            "colour",
            "unknown field",
        ),
        (
            json!({"customer": "u", "amount": "1", "feature": "f", "metadata": "x"}),
            "metadata",
            "JSON object",
        ),
    ];
    for (body, param, words) in cases {
        let reply = app.post("/v1/usage", body.clone()).await;
        assert_eq!(reply.status, 400, "{body} → {}", reply.text);
        assert_eq!(
            reply.body["error"]["param"].as_str(),
            Some(param),
            "{body} → {}",
            reply.text
        );
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(words),
            "{body}: message {message:?} should say {words:?}"
        );
    }
    let auth = format!("Bearer {}", app.key);
    let malformed = app.post_raw("/v1/usage", "{\"customer\": ", Some(&auth)).await;
    assert_eq!((malformed.status, code(&malformed)), (400, "invalid_json"));
    let not_object = app.post_raw("/v1/usage", "[1,2]", Some(&auth)).await;
    assert_eq!((not_object.status, code(&not_object)), (400, "invalid_json"));
    let huge = format!(
        "{{\"customer\":\"u\",\"amount\":\"1\",\"feature\":\"f\",\"metadata\":{{\"x\":\"{}\"}}}}",
        "a".repeat(70_000)
    );
    let too_large = app.post_raw("/v1/usage", &huge, Some(&auth)).await;
    assert_eq!((too_large.status, code(&too_large)), (413, "payload_too_large"));
    let hold_ttl = app
        .post("/v1/holds", json!({"customer": "u", "amount": "1", "ttl_seconds": 0}))
        .await;
    assert_eq!(
        (hold_ttl.status, hold_ttl.body["error"]["param"].as_str()),
        (400, Some("ttl_seconds"))
    );
    let capture = app.post("/v1/holds/hold_x/capture", json!({"amount": "-1"})).await;
    assert_eq!(
        (capture.status, capture.body["error"]["param"].as_str()),
        (400, Some("amount"))
    );
    assert_eq!(app.get("/v1/nothing-here").await.status, 404);
    assert_eq!(app.get("/v1/usage").await.status, 405);
    assert_eq!(
        app.balance("u").await,
        ("5".into(), "5".into()),
        "nothing was deducted by any of it"
    );
    let ledger = app.get("/v1/customers/u/ledger").await;
    assert_eq!(ledger.body["data"].as_array().unwrap().len(), 1);
}

async fn secret_keys_are_required_and_revocable(app: &TestApp) {
    let body = r#"{"id": "u"}"#;
    for auth in [None, Some("Bearer"), Some("Bearer cd_sk_wrong"), Some("Basic abc")] {
        let reply = app.post_raw("/v1/customers", body, auth).await;
        assert_eq!((reply.status, code(&reply)), (401, "unauthorized"), "{auth:?}");
    }
    let second = app.db.store.create_api_key("second", 0).await.unwrap();
    let ok = app
        .post_raw("/v1/customers", body, Some(&format!("Bearer {}", second.secret)))
        .await;
    assert_eq!(ok.status, 201);
    assert!(app.db.store.revoke_api_key(&second.key.id, 0).await.unwrap());
    let revoked = app
        .post_raw("/v1/customers", body, Some(&format!("Bearer {}", second.secret)))
        .await;
    assert_eq!(revoked.status, 401);
    let keys = app.db.store.list_api_keys().await.unwrap();
    assert!(keys
        .iter()
        .all(|k| !second.secret.contains(&k.id) && k.last4.len() == 4));
}

async fn idempotency_keys_replay_the_first_response(app: &TestApp) {
    app.customer("u").await;
    let body = json!({"customer": "u", "amount": "2", "feature": "chat", "metadata": {"a": 1, "b": 2}});
    let first = app.post_idem("/v1/usage", "req-1", body.clone()).await;
    assert_eq!(first.status, 200);
    let auth = format!("Bearer {}", app.key);
    // The same body with its keys in another order is the same request.
    let reordered = r#"{"metadata": {"b": 2, "a": 1}, "feature": "chat", "amount": "2", "customer": "u"}"#;
    let retry = app.send_raw_idem("/v1/usage", "req-1", reordered, &auth).await;
    assert_eq!(
        (retry.status, retry.text.clone()),
        (200, first.text.clone()),
        "the retry returns the first response"
    );
    assert_eq!(app.balance("u").await.0, "3", "and deducts once");
    let changed = app
        .post_idem(
            "/v1/usage",
            "req-1",
            json!({"customer": "u", "amount": "3", "feature": "chat"}),
        )
        .await;
    assert_eq!((changed.status, code(&changed)), (409, "idempotency_key_reused"));
    let other_endpoint = app
        .post_idem("/v1/holds", "req-1", json!({"customer": "u", "amount": "2"}))
        .await;
    assert_eq!(other_endpoint.status, 409, "a key belongs to its first request");
    let refused = app
        .post_idem(
            "/v1/usage",
            "req-2",
            json!({"customer": "u", "amount": "50", "feature": "chat"}),
        )
        .await;
    assert_eq!(refused.status, 402);
    app.grant("u", "100").await;
    let replayed = app
        .post_idem(
            "/v1/usage",
            "req-2",
            json!({"customer": "u", "amount": "50", "feature": "chat"}),
        )
        .await;
    assert_eq!(
        (replayed.status, replayed.text),
        (402, refused.text),
        "a refusal is replayed too"
    );
    let created = app.post_idem("/v1/customers", "c-1", json!({"id": "v"})).await;
    let created_again = app.post_idem("/v1/customers", "c-1", json!({"id": "v"})).await;
    assert_eq!(
        (created.status, created_again.status),
        (201, 201),
        "the replay keeps the first status"
    );
    let bad_key = app.post_idem("/v1/usage", "has space", body).await;
    assert_eq!(
        (bad_key.status, bad_key.body["error"]["param"].as_str()),
        (400, Some("Idempotency-Key"))
    );
}
