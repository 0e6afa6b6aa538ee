//! Idempotency-Key: replay of the first response, mismatch error.

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn same_key_same_params_replays_the_first_response() {
    let sb = sandbox(None).await;
    let params = [("email", "a@example.com"), ("metadata[creditd_customer]", "c1")];
    let first = post_form(&sb, "v1/customers", &params, Some("key-1")).await;
    assert_eq!(first.status(), 200);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    // Same parameters in another order are the same request.
    let reordered = [params[1], params[0]];
    let second = post_form(&sb, "v1/customers", &reordered, Some("key-1")).await;
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    let second: Value = second.json().await.unwrap();
    assert_eq!(first, second);
    assert_eq!(sb.read(|s| s.customers.len()).await, 1, "only one customer created");

    // Through the client as well: same key → same customer id.
    let c = client(&sb);
    let a = c.create_customer("c2", None, "key-2").await.unwrap();
    let b = c.create_customer("c2", None, "key-2").await.unwrap();
    assert_eq!(a, b);
    assert_eq!(sb.read(|s| s.customers.len()).await, 2);
    sb.shutdown().await;
}

#[tokio::test]
async fn same_key_different_params_is_an_idempotency_error() {
    let sb = sandbox(None).await;
    assert_eq!(
        post_form(&sb, "v1/customers", &[("email", "a@example.com")], Some("k"))
            .await
            .status(),
        200
    );
    let resp = post_form(&sb, "v1/customers", &[("email", "b@example.com")], Some("k")).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "idempotency_error");
    // Same key on another endpoint is a different request too.
    let resp = post_form(&sb, "v1/products", &[("email", "a@example.com")], Some("k")).await;
    assert_eq!(resp.status(), 400);
    let c = client(&sb);
    c.create_customer("x", None, "k2").await.unwrap();
    match c.create_customer("y", None, "k2").await {
        Err(creditd_stripe::StripeError::Idempotency { status: 400, .. }) => {}
        other => panic!("expected idempotency error, got {other:?}"),
    }
    // Errors are replayed too (Stripe stores 4xx results).
    let bad = post_form(&sb, "v1/prices", &[("currency", "usd")], Some("k3")).await;
    assert_eq!(bad.status(), 400);
    let again = post_form(&sb, "v1/prices", &[("currency", "usd")], Some("k3")).await;
    assert_eq!(
        (
            again.status().as_u16(),
            again.headers()["idempotent-replayed"].to_str().unwrap()
        ),
        (400, "true")
    );
    sb.shutdown().await;
}
