//! Outbound events end to end: endpoints, Standard Webhooks signatures verified by the
//! official packages, retries with a stable `webhook-id`, rotation, redelivery, and the
//! delivery log. Each scenario registers a receiver and drives real changes through the API.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{code, on_both_backends, test_settings, TestApp};
use crate::receiver::{assert_verified, verify_official, Receiver};

on_both_backends!(settings = outbound_settings;
    endpoints_are_managed_and_bad_input_is_refused,
    customer_and_credit_events_are_signed_and_verified,
    a_receiver_that_is_down_gets_retries_with_the_same_webhook_id,
    a_rotated_secret_signs_beside_the_old_one,
    an_event_can_be_redelivered,
    a_slow_endpoint_delays_only_its_own_deliveries,
    concurrent_spends_through_the_threshold_alert_once,
    the_dashboard_lists_failing_endpoints_first_and_redelivers,
);

/// Deliveries polled often and retried within a second, so tests need not wait for the
/// real schedule. The send timeout stays long: a receiver that recorded a delivery but
/// answered after a short timeout (a loaded machine) is sent it again — at least once is the
/// contract, and "exactly one delivery" assertions would see two.
pub fn outbound_settings() -> creditd::config::Settings {
    let mut settings = test_settings();
    settings.outbound.poll = Duration::from_millis(50);
    settings.outbound.retry_schedule_ms = vec![200, 400, 600];
    settings.outbound.timeout = Duration::from_secs(10);
    settings
}

/// Registers `receiver` for `events`; returns (endpoint id, secret).
pub async fn endpoint(app: &TestApp, receiver: &Receiver, events: Value) -> (String, String) {
    let reply = app
        .post("/v1/webhook-endpoints", json!({"url": receiver.url, "events": events}))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    (
        reply.body["id"].as_str().unwrap().to_string(),
        reply.body["secret"].as_str().unwrap().to_string(),
    )
}

async fn endpoints_are_managed_and_bad_input_is_refused(app: &TestApp) {
    let created = app
        .post(
            "/v1/webhook-endpoints",
            json!({"url": "https://app.example/hooks", "events": ["credits.low", "payment.succeeded"], "description": "prod"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("we_"));
    assert!(created.body["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created.body["enabled"], true);
    assert_eq!(created.body["events"], json!(["credits.low", "payment.succeeded"]));

    let bad = [
        (json!({"url": "ftp://app.example/hooks"}), "url"),
        (json!({"url": "not a url"}), "url"),
        (
            json!({"url": "https://app.example/h", "events": ["credits.lowish"]}),
            "events",
        ),
        (json!({"url": "https://app.example/h", "events": []}), "events"),
        (json!({"url": "https://app.example/h", "colour": "red"}), "colour"),
    ];
    for (body, field) in bad {
        let reply = app.post("/v1/webhook-endpoints", body.clone()).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
        assert!(
            reply.body["error"]["param"] == field || reply.body["error"]["message"].as_str().unwrap().contains(field),
            "{body} names {field}: {}",
            reply.text
        );
    }
    let list = app.get("/v1/webhook-endpoints").await;
    assert_eq!(
        list.body["data"].as_array().unwrap().len(),
        1,
        "nothing written by bad requests"
    );
    assert!(list.body["data"][0].get("secret").is_none(), "the secret is shown once");

    let updated = app
        .post(
            &format!("/v1/webhook-endpoints/{id}"),
            json!({"enabled": false, "events": ["*"]}),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(
        (updated.body["enabled"].clone(), updated.body["events"].clone()),
        (json!(false), json!(["*"]))
    );
    let refused = app
        .post(
            &format!("/v1/webhook-endpoints/{id}"),
            json!({"url": "javascript:alert(1)"}),
        )
        .await;
    assert_eq!(
        (refused.status, code(&refused)),
        (400, "invalid_request"),
        "{}",
        refused.text
    );
    assert_eq!(
        app.get(&format!("/v1/webhook-endpoints/{id}")).await.body["url"],
        "https://app.example/hooks"
    );

    let rotated = app
        .post(&format!("/v1/webhook-endpoints/{id}/rotate-secret"), json!({}))
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    assert_ne!(rotated.body["secret"], created.body["secret"]);
    assert!(rotated.body["previous_secret_expires_at"].is_i64());

    let deleted = app
        .send(
            app.client
                .delete(app.url(&format!("/v1/webhook-endpoints/{id}")))
                .bearer_auth(&app.key),
        )
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    let gone = app.get(&format!("/v1/webhook-endpoints/{id}")).await;
    assert_eq!((gone.status, code(&gone)), (404, "endpoint_not_found"));
    let anonymous = app.send(app.client.get(app.url("/v1/webhook-endpoints"))).await;
    assert_eq!(anonymous.status, 401);
}

async fn customer_and_credit_events_are_signed_and_verified(app: &TestApp) {
    let receiver = Receiver::start().await;
    let (_, secret) = endpoint(app, &receiver, json!(["*"])).await;
    app.customer("ada").await;
    let expiring = json!({"amount": "20", "reason": "trial", "expires_at": crate::helpers::T0 + 60});
    assert_eq!(app.post("/v1/customers/ada/grants", expiring).await.status, 201);
    // Raising the threshold above what is available is a fall below it: credits.low.
    let updated = app
        .post(
            "/v1/customers/ada",
            json!({"low_balance_threshold": "50", "email": "ada@example.com"}),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(
        (
            updated.body["low_balance_threshold"].clone(),
            updated.body["email"].clone()
        ),
        (json!("50"), json!("ada@example.com"))
    );
    app.grant("ada", "100").await;
    app.clock.advance(61);
    app.state().store.sweep(app.clock.now(), 100).await.unwrap();
    let received = receiver
        .wait_for_types(&[
            "customer.created",
            "credits.granted",
            "credits.low",
            "credits.restored",
            "credits.expired",
        ])
        .await;
    assert_verified(&secret, &received);
    // Listed newest first, in the order of the changes.
    let listed = app.get("/v1/outbound-events?customer=ada&limit=100").await;
    let mut events: Vec<Value> = listed.body["data"].as_array().unwrap().clone();
    events.reverse();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "customer.created",
            "credits.granted",
            // 5 signup credits start below the default threshold (10): the 20 restore them.
            "credits.granted",
            "credits.restored",
            "credits.low",
            "credits.granted",
            "credits.restored",
            "credits.expired"
        ]
    );
    let mut sent: Vec<String> = received.iter().map(|r| r.id.clone()).collect();
    let mut recorded: Vec<String> = events.iter().map(|e| e["id"].as_str().unwrap().to_string()).collect();
    sent.sort();
    recorded.sort();
    assert_eq!(sent, recorded, "every event delivered once");
    let body = |t: &str| received.iter().find(|r| r.event_type() == t).unwrap().json();
    let low = body("credits.low");
    assert_eq!(
        (low["data"]["id"].clone(), low["data"]["available"].clone()),
        (json!("ada"), json!("25"))
    );
    assert!(low["timestamp"].as_str().unwrap().ends_with('Z'));
    let expired = body("credits.expired");
    assert_eq!(
        (expired["data"]["kind"].clone(), expired["data"]["amount"].clone()),
        (json!("expire"), json!("-20"))
    );
    let created = body("customer.created");
    assert_eq!(created["data"]["id"], "ada");
    let signup = &events[1]["data"];
    assert_eq!(
        (signup["source"].clone(), signup["amount"].clone()),
        (json!("signup_bonus"), json!("5"))
    );

    let bad = app
        .post("/v1/customers/ada", json!({"low_balance_threshold": "1.0000001"}))
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert!(bad.text.contains("low_balance_threshold"), "{}", bad.text);
    let missing = app
        .post("/v1/customers/nobody", json!({"email": "x@example.com"}))
        .await;
    assert_eq!(missing.status, 404);
}

async fn a_receiver_that_is_down_gets_retries_with_the_same_webhook_id(app: &TestApp) {
    let receiver = Receiver::start().await;
    receiver.answer(503);
    let (id, secret) = endpoint(app, &receiver, json!(["customer.created"])).await;
    let before = crate::ops::scrape(app).await;
    app.customer("bob").await;
    receiver.wait_until("three attempts", |r| r.len() >= 3).await;
    receiver.answer(200);
    let received = receiver
        .wait_until("a delivery after the receiver came back", |r| r.len() >= 4)
        .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let received_after = receiver.received();
    assert_eq!(
        received_after.len(),
        received.len(),
        "nothing more once delivered: {received_after:?}"
    );
    assert!(
        received.iter().all(|r| r.id == received[0].id),
        "one webhook-id on every attempt"
    );
    assert!(
        received.iter().all(|r| r.body == received[0].body),
        "the same body on every attempt"
    );
    assert_verified(&secret, &received);
    let after = crate::ops::scrape(app).await;
    let moved = |outcome: &str| {
        let labels = [("outcome", outcome)];
        crate::ops::value(&after, "creditd_outbound_deliveries_total", &labels)
            - crate::ops::value(&before, "creditd_outbound_deliveries_total", &labels)
    };
    assert!(
        moved("retrying") >= 3.0 && moved("delivered") >= 1.0,
        "outbound delivery metrics"
    );

    let log = app
        .get(&format!("/v1/webhook-endpoints/{id}/deliveries?limit=100"))
        .await;
    assert_eq!(log.status, 200, "{}", log.text);
    let attempts = log.body["data"].as_array().unwrap();
    assert_eq!(attempts.len(), received.len());
    assert_eq!(attempts[0]["status_code"], 200);
    assert_eq!(attempts[0]["delivery_status"], "delivered");
    assert!(attempts[1..].iter().all(|a| a["status_code"] == 503));
    assert!(attempts.iter().all(|a| a["event"] == received[0].id.as_str()));
    let response = attempts[0]["response"].as_str().unwrap();
    assert!(
        response.starts_with("answer 200") && response.len() == 1024,
        "the first KiB: {}",
        response.len()
    );
    assert!(attempts.iter().all(|a| a["latency_ms"].as_i64().unwrap() >= 0));
}

async fn a_rotated_secret_signs_beside_the_old_one(app: &TestApp) {
    let receiver = Receiver::start().await;
    let (id, old) = endpoint(app, &receiver, json!(["customer.created"])).await;
    let rotated = app
        .post(&format!("/v1/webhook-endpoints/{id}/rotate-secret"), json!({}))
        .await;
    let new = rotated.body["secret"].as_str().unwrap().to_string();
    app.customer("carol").await;
    let received = receiver.wait_until("one delivery", |r| !r.is_empty()).await;
    assert_eq!(
        received[0].signature.split(' ').count(),
        2,
        "two v1 signatures during the overlap"
    );
    assert_verified(&old, &received);
    assert_verified(&new, &received);
    let stranger = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    if let Some(verdicts) = verify_official(stranger, &received) {
        assert!(
            verdicts.iter().all(|(py, js)| py.is_err() && js.is_err()),
            "another secret is refused"
        );
    }
}

async fn an_event_can_be_redelivered(app: &TestApp) {
    let receiver = Receiver::start().await;
    let (_, secret) = endpoint(app, &receiver, json!(["customer.created"])).await;
    app.customer("dan").await;
    let first = receiver.wait_until("one delivery", |r| r.len() == 1).await;
    let event = first[0].id.clone();
    let again = app
        .post(&format!("/v1/outbound-events/{event}/redeliver"), json!({}))
        .await;
    assert_eq!(
        (again.status, again.body["queued"].clone()),
        (200, json!(1)),
        "{}",
        again.text
    );
    let both = receiver.wait_until("the redelivery", |r| r.len() == 2).await;
    assert_eq!(both[1].id, event, "a redelivery keeps its webhook-id");
    assert_verified(&secret, &both);
    let unknown = app.post("/v1/outbound-events/msg_nothing/redeliver", json!({})).await;
    assert_eq!((unknown.status, code(&unknown)), (404, "event_not_found"));
}

async fn a_slow_endpoint_delays_only_its_own_deliveries(app: &TestApp) {
    let slow = Receiver::start().await;
    slow.delay(Duration::from_millis(1500));
    let fast = Receiver::start().await;
    endpoint(app, &slow, json!(["customer.created"])).await;
    let (_, secret) = endpoint(app, &fast, json!(["customer.created"])).await;
    for i in 0..5 {
        app.customer(&format!("u{i}")).await;
    }
    let started = std::time::Instant::now();
    let received = fast.wait_until("five deliveries", |r| r.len() == 5).await;
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "the fast endpoint waited {:?}",
        started.elapsed()
    );
    assert_verified(&secret, &received);
    slow.wait_until("five slow deliveries", |r| r.len() >= 5).await;
}

async fn concurrent_spends_through_the_threshold_alert_once(app: &TestApp) {
    let receiver = Receiver::start().await;
    let (_, secret) = endpoint(
        app,
        &receiver,
        json!(["credits.low", "credits.depleted", "credits.restored"]),
    )
    .await;
    app.customer("eve").await;
    app.grant("eve", "95").await;
    let set = app
        .post("/v1/customers/eve", json!({"low_balance_threshold": "50"}))
        .await;
    assert_eq!(set.status, 200, "{}", set.text);
    // 64 spends at once take available from 100 through 50 to 36.
    let spends = (0..64).map(|i| {
        let body = json!({"customer": "eve", "amount": "1", "feature": "chat"});
        async move { app.post_idem("/v1/usage", &format!("spend-{i}"), body).await }
    });
    for reply in futures::future::join_all(spends).await {
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    // Holds count too: what they reserve is not available.
    let hold = app.post("/v1/holds", json!({"customer": "eve", "amount": "36"})).await;
    assert_eq!(hold.status, 201, "{}", hold.text);
    let hold = hold.body["id"].as_str().unwrap().to_string();
    let released = app.post(&format!("/v1/holds/{hold}/release"), json!({})).await;
    assert_eq!(released.status, 200, "{}", released.text);
    app.grant("eve", "30").await;
    receiver
        .wait_for_types(&["credits.low", "credits.depleted", "credits.restored"])
        .await;
    // Late duplicates would show up within a few delivery rounds.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received = receiver.received();
    assert_verified(&secret, &received);
    let listed = app.get("/v1/outbound-events?customer=eve&limit=100").await;
    let mut alerts: Vec<(String, String)> = listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"].as_str().unwrap().starts_with("credits.") && e["type"] != "credits.granted")
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    alerts.reverse();
    let types: Vec<&str> = alerts.iter().map(|(t, _)| t.as_str()).collect();
    // 5 signup credits start low; the 95 restore them. Then one crossing down, one
    // depletion (the hold), none for the release (36 is still below 50), and the grant that
    // brings 66 restores them, once.
    assert_eq!(
        types,
        [
            "credits.restored",
            "credits.low",
            "credits.depleted",
            "credits.restored"
        ]
    );
    let mut sent: Vec<&str> = received.iter().map(|r| r.id.as_str()).collect();
    let mut recorded: Vec<&str> = alerts.iter().map(|(_, id)| id.as_str()).collect();
    sent.sort_unstable();
    recorded.sort_unstable();
    assert_eq!(sent, recorded, "each delivered once");
    let low = received
        .iter()
        .find(|r| r.event_type() == "credits.low")
        .unwrap()
        .json();
    let available: f64 = low["data"]["available"].as_str().unwrap().parse().unwrap();
    assert!(
        (36.0..50.0).contains(&available),
        "raised by the spend that crossed: {low}"
    );
    let depleted = received
        .iter()
        .find(|r| r.event_type() == "credits.depleted")
        .unwrap()
        .json();
    assert_eq!(
        (depleted["data"]["available"].clone(), depleted["data"]["held"].clone()),
        (json!("0"), json!("36"))
    );
    assert_eq!(app.get("/v1/customers/eve").await.body["available"], "66");
}

async fn the_dashboard_lists_failing_endpoints_first_and_redelivers(app: &TestApp) {
    let healthy = Receiver::start().await;
    let down = Receiver::start().await;
    down.answer(500);
    let (healthy_id, _) = endpoint(app, &healthy, json!(["customer.created"])).await;
    let (down_id, _) = endpoint(app, &down, json!(["customer.created"])).await;
    app.customer("fay").await;
    let first = healthy.wait_until("one delivery", |r| r.len() == 1).await;
    down.wait_until("a failed attempt", |r| !r.is_empty()).await;
    let admin = crate::admin::login(app).await;
    let page = admin.get(app, "/admin/outbound").await;
    assert_eq!(page.status, 200, "{}", page.text);
    let (down_at, healthy_at) = (page.text.find(&down_id).unwrap(), page.text.find(&healthy_id).unwrap());
    assert!(down_at < healthy_at, "the failing endpoint is listed first");
    assert!(
        page.text.contains("failing") && page.text.contains(">500<"),
        "{}",
        page.text
    );
    let event = &first[0].id;
    // Without the admin's session nothing is sent (every admin route's refusals: admin.rs).
    let anonymous = app
        .send(
            app.client
                .post(app.url(&format!("/admin/outbound/{event}/redeliver")))
                .form(&[("csrf", "x")]),
        )
        .await;
    assert_ne!(anonymous.status, 303);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(healthy.received().len(), 1);
    let again = admin
        .post_form(app, &format!("/admin/outbound/{event}/redeliver"), &[])
        .await;
    assert_eq!(again.status, 303, "{}", again.text);
    let both = healthy.wait_until("the redelivery", |r| r.len() == 2).await;
    assert_eq!(both[1].id, *event);
}
