use serde_json::json;

use crate::helpers::{code, on_both_backends, test_settings, TestApp};

on_both_backends!(
    usage_deducts_or_refuses_with_402,
    holds_reserve_then_capture_or_release,
    holds_release_themselves_after_their_ttl,
    check_changes_nothing,
    sixty_four_concurrent_usages_never_overspend,
    concurrent_captures_never_overspend,
);

on_both_backends!(settings = tiny_write_queue; a_full_write_queue_answers_503_with_retry_after);

fn tiny_write_queue() -> creditd::config::Settings {
    creditd::config::Settings {
        write_queue_capacity: 1,
        write_batch_size: 1,
        ..test_settings()
    }
}

async fn usage_deducts_or_refuses_with_402(app: &TestApp) {
    app.customer("u").await;
    let used = app
        .post(
            "/v1/usage",
            json!({"customer": "u", "amount": "1.25", "feature": "chat", "metadata": {"tokens": 1200}}),
        )
        .await;
    assert_eq!(used.status, 200, "{}", used.text);
    assert_eq!(
        (used.body["balance"].as_str(), used.body["available"].as_str()),
        (Some("3.75"), Some("3.75"))
    );
    assert_eq!(used.body["entries"][0]["metadata"]["tokens"], 1200);
    let integer = app
        .post("/v1/usage", json!({"customer": "u", "amount": 1, "feature": "chat"}))
        .await;
    assert_eq!(
        integer.body["balance"], "2.75",
        "integers are accepted as whole credits"
    );
    let refused = app
        .post(
            "/v1/usage",
            json!({"customer": "u", "amount": "2.750001", "feature": "chat"}),
        )
        .await;
    assert_eq!((refused.status, code(&refused)), (402, "insufficient_credits"));
    assert_eq!(
        (
            refused.body["error"]["balance"].as_str(),
            refused.body["error"]["available"].as_str()
        ),
        (Some("2.75"), Some("2.75"))
    );
    assert_eq!(app.balance("u").await.0, "2.75", "nothing deducted");
    let exact = app
        .post(
            "/v1/usage",
            json!({"customer": "u", "amount": "2.75", "feature": "chat"}),
        )
        .await;
    assert_eq!((exact.status, exact.body["balance"].as_str()), (200, Some("0")));
    let unknown = app
        .post(
            "/v1/usage",
            json!({"customer": "ghost", "amount": "1", "feature": "chat"}),
        )
        .await;
    assert_eq!((unknown.status, code(&unknown)), (404, "customer_not_found"));
}

async fn holds_reserve_then_capture_or_release(app: &TestApp) {
    app.customer("u").await;
    app.grant("u", "5").await;
    let hold = app
        .post(
            "/v1/holds",
            json!({"customer": "u", "amount": "4", "feature": "stream"}),
        )
        .await;
    assert_eq!(hold.status, 201, "{}", hold.text);
    let id = hold.body["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("hold_"));
    assert_eq!(
        (hold.body["status"].as_str(), hold.body["available"].as_str()),
        (Some("open"), Some("6"))
    );
    assert_eq!(
        app.balance("u").await,
        ("10".into(), "6".into()),
        "a hold reduces available, not balance"
    );
    let too_much = app
        .post(
            "/v1/usage",
            json!({"customer": "u", "amount": "6.5", "feature": "chat"}),
        )
        .await;
    assert_eq!(too_much.status, 402, "held credits cannot be spent twice");
    let captured = app
        .post(&format!("/v1/holds/{id}/capture"), json!({"amount": "2.5"}))
        .await;
    assert_eq!(captured.status, 200, "{}", captured.text);
    assert_eq!(
        (captured.body["status"].as_str(), captured.body["captured"].as_str()),
        (Some("captured"), Some("2.5"))
    );
    assert_eq!(captured.body["entries"][0]["feature"], "stream");
    assert_eq!(app.balance("u").await, ("7.5".into(), "7.5".into()));
    let twice = app.post(&format!("/v1/holds/{id}/capture"), json!({})).await;
    assert_eq!((twice.status, code(&twice)), (409, "hold_not_open"));
    // Capturing more than the hold works only while available credits cover the difference.
    let small = app
        .post("/v1/holds", json!({"customer": "u", "amount": "1"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let big = app
        .post("/v1/holds", json!({"customer": "u", "amount": "6"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let over = app
        .post(&format!("/v1/holds/{small}/capture"), json!({"amount": "2"}))
        .await;
    assert_eq!((over.status, code(&over)), (402, "insufficient_credits"));
    let released = app.post(&format!("/v1/holds/{big}/release"), json!({})).await;
    assert_eq!(
        (released.status, released.body["status"].as_str()),
        (200, Some("released"))
    );
    let over = app
        .post(&format!("/v1/holds/{small}/capture"), json!({"amount": "2"}))
        .await;
    assert_eq!((over.status, over.body["balance"].as_str()), (200, Some("5.5")));
    let fetched = app.get(&format!("/v1/holds/{big}")).await;
    assert_eq!(fetched.body["status"], "released");
    assert_eq!(app.get("/v1/holds/hold_missing").await.status, 404);
    let missing = app.post("/v1/holds/hold_missing/release", json!({})).await;
    assert_eq!((missing.status, code(&missing)), (404, "hold_not_found"));
}

async fn holds_release_themselves_after_their_ttl(app: &TestApp) {
    app.customer("u").await;
    let hold = app
        .post("/v1/holds", json!({"customer": "u", "amount": "5", "ttl_seconds": 30}))
        .await;
    let id = hold.body["id"].as_str().unwrap().to_string();
    assert_eq!(app.balance("u").await.1, "0");
    app.clock.advance(30);
    assert_eq!(
        app.balance("u").await.1,
        "5",
        "the hold no longer counts once its TTL passed"
    );
    assert_eq!(app.get(&format!("/v1/holds/{id}")).await.body["status"], "expired");
    assert_eq!(
        app.db.store.sweep(app.clock.now(), 10).await.unwrap(),
        1,
        "the sweeper releases it for good"
    );
    let late = app.post(&format!("/v1/holds/{id}/capture"), json!({})).await;
    assert_eq!((late.status, code(&late)), (409, "hold_not_open"));
    assert!(late.body["error"]["message"].as_str().unwrap().contains("expired"));
}

async fn check_changes_nothing(app: &TestApp) {
    app.customer("u").await;
    let yes = app.post("/v1/check", json!({"customer": "u", "amount": "5"})).await;
    assert_eq!(
        (
            yes.status,
            yes.body["allowed"].as_bool(),
            yes.body["available"].as_str()
        ),
        (200, Some(true), Some("5"))
    );
    let no = app
        .post("/v1/check", json!({"customer": "u", "amount": "5.000001"}))
        .await;
    assert_eq!(no.body["allowed"], false);
    assert_eq!(
        app.post("/v1/check", json!({"customer": "ghost", "amount": "1"}))
            .await
            .status,
        404
    );
    assert_eq!(app.balance("u").await.0, "5");
    assert_eq!(
        app.get("/v1/customers/u/ledger").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

async fn sixty_four_concurrent_usages_never_overspend(app: &TestApp) {
    app.customer("hot").await;
    app.grant("hot", "15").await; // 20 with the bonus: 20 of 64 can succeed
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (client, url, key) = (app.client.clone(), app.url("/v1/usage"), app.key.clone());
            tokio::spawn(async move {
                let body = json!({"customer": "hot", "amount": "1", "feature": "chat"});
                client
                    .post(url)
                    .bearer_auth(key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 20, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 402).count(), 44);
    assert_eq!(app.balance("hot").await, ("0".into(), "0".into()));
}

async fn concurrent_captures_never_overspend(app: &TestApp) {
    app.customer("hot").await;
    app.grant("hot", "7").await; // 12
    let mut holds = Vec::new();
    for _ in 0..6 {
        let hold = app.post("/v1/holds", json!({"customer": "hot", "amount": "2"})).await;
        holds.push(hold.body["id"].as_str().unwrap().to_string());
    }
    assert_eq!(app.balance("hot").await.1, "0");
    // Each capture asks for 3 against a hold of 2; each success consumes one credit beyond its
    // hold, which only released holds can free.
    let tasks: Vec<_> = holds
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let (client, key) = (app.client.clone(), app.key.clone());
            let url = if i % 2 == 0 {
                app.url(&format!("/v1/holds/{id}/release"))
            } else {
                app.url(&format!("/v1/holds/{id}/capture"))
            };
            let body = if i % 2 == 0 { json!({}) } else { json!({"amount": "3"}) };
            tokio::spawn(async move {
                client
                    .post(url)
                    .bearer_auth(key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut captured = 0;
    for (i, t) in tasks.into_iter().enumerate() {
        let status = t.await.unwrap();
        if i % 2 == 1 && status == 200 {
            captured += 1;
        }
        assert!(status == 200 || (i % 2 == 1 && status == 402), "unexpected {status}");
        if status == 402 {
            // A refused capture leaves its hold open; end it.
            let released = app.post(&format!("/v1/holds/{}/release", holds[i]), json!({})).await;
            assert_eq!(released.status, 200);
        }
    }
    let (balance, available) = app.balance("hot").await;
    assert_eq!(balance, (12 - 3 * captured).to_string());
    assert_eq!(available, balance, "no hold left open");
    assert!(balance.parse::<i64>().unwrap() >= 0);
}

/// Back-pressure: with room for one waiting write, a burst of concurrent usages gets 503
/// `overloaded` with `Retry-After` for what does not fit — never an unbounded queue — and a
/// refused request wrote nothing: its key is free, and a retry is applied once.
async fn a_full_write_queue_answers_503_with_retry_after(app: &TestApp) {
    app.customer("busy").await;
    app.grant("busy", "1000").await;
    let (mut applied, mut refused) = (0u64, None);
    for round in 0..20 {
        let mut tasks = Vec::new();
        for n in 0..64 {
            let request = app
                .client
                .post(app.url("/v1/usage"))
                .bearer_auth(&app.key)
                .header("Idempotency-Key", format!("burst-{round}-{n}"))
                .json(&json!({"customer": "busy", "amount": "1", "feature": "chat"}));
            tasks.push(tokio::spawn(async move {
                let response = request.send().await.unwrap();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_string());
                let status = response.status().as_u16();
                let body: serde_json::Value = response.json().await.unwrap();
                (status, retry_after, body, format!("burst-{round}-{n}"))
            }));
        }
        for task in tasks {
            let (status, retry_after, body, key) = task.await.unwrap();
            match status {
                200 => applied += 1,
                503 => {
                    assert_eq!(retry_after.as_deref(), Some("1"), "{body}");
                    assert_eq!(body["error"]["code"], "overloaded", "{body}");
                    refused.get_or_insert(key);
                }
                other => panic!("only 200 or 503 under load, got {other}: {body}"),
            }
        }
        if refused.is_some() {
            break;
        }
    }
    let key = refused.expect("a burst of 64 against a queue of one is refused in part");
    let (balance, _) = app.balance("busy").await;
    let expected = 1005 - applied as i64;
    assert_eq!(
        balance,
        expected.to_string(),
        "exactly the answered usages were applied"
    );
    let retried = app
        .post_idem(
            "/v1/usage",
            &key,
            json!({"customer": "busy", "amount": "1", "feature": "chat"}),
        )
        .await;
    assert_eq!(retried.status, 200, "a refused request's key is free: {}", retried.text);
    assert_eq!(app.balance("busy").await.0, (expected - 1).to_string());
}
