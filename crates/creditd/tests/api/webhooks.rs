//! Stripe's deliveries are acknowledged as soon as they are recorded, whatever Stripe's API
//! is doing; handling happens in the background, retried until it succeeds, exactly once.

use std::time::{Duration, Instant};

use creditd::config::Settings;
use creditd_sandbox::Faults;
use serde_json::Value;

use crate::helpers::{code, on_both_backends, test_settings, TestApp, WEBHOOK_SECRET};
use crate::purchases::{card, checkout, deliver, package, pay, wait_for_balance};

on_both_backends!(settings = quick_retries; acknowledged_while_stripe_is_slow_or_down_then_handled_once);
on_both_backends!(an_event_of_the_other_mode_is_refused_recorded_and_never_fulfilled);

fn quick_retries() -> Settings {
    Settings {
        webhook_retry_base_ms: 100,
        webhook_retry_max_ms: 400,
        ..test_settings()
    }
}

/// A paid Checkout Session whose webhooks creditd never received; returns the raw
/// `checkout.session.completed` event.
async fn paid_but_undelivered(app: &TestApp, customer: &str) -> String {
    app.sandbox.set_webhook_url(None);
    app.customer(customer).await;
    let pkg = package(app, "100", 500).await;
    let (session, url) = checkout(app, customer, &pkg, 1).await;
    pay(&url, &card("4242 4242 4242 4242")).await;
    let (events, _) = app.stripe.list_events(None, None, 100).await.unwrap();
    events
        .into_iter()
        .find(|e| e.type_ == "checkout.session.completed" && e.payload_json.contains(&session))
        .expect("a completed event")
        .payload_json
}

async fn acknowledged_while_stripe_is_slow_or_down_then_handled_once(app: &TestApp) {
    let payload = paid_but_undelivered(app, "patient").await;
    let id = serde_json::from_str::<Value>(&payload).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let now = creditd_store::unix_now();

    // Stripe answers in 1.5 s: the delivery is still acknowledged at once.
    let slow = Faults {
        api_delay_ms: 1500,
        ..Faults::default()
    };
    app.sandbox.set_faults(slow).unwrap();
    let started = Instant::now();
    let ack = deliver(app, &payload, WEBHOOK_SECRET, now).await;
    let took = started.elapsed();
    assert_eq!(ack.status, 200, "{}", ack.text);
    assert!(
        took < Duration::from_millis(1000),
        "acknowledged in {took:?}, not after Stripe answered"
    );

    // Stripe fails every call: handling fails and is tried again by itself.
    let down = Faults {
        api_errors: true,
        ..Faults::default()
    };
    app.sandbox.set_faults(down).unwrap();
    let failing = app
        .wait_for_event(&id, |e| e.status == "failed" && e.attempts >= 3)
        .await;
    assert!(failing.error.is_some(), "{failing:?}");
    assert_eq!(
        app.balance("patient").await.0,
        "5",
        "nothing granted while Stripe is down"
    );
    let again = deliver(app, &payload, WEBHOOK_SECRET, now).await;
    assert_eq!(again.status, 200, "a redelivery during the outage is acknowledged too");

    // Stripe is back: the next retry handles it, once.
    app.sandbox.set_faults(Faults::default()).unwrap();
    wait_for_balance(app, "patient", "105").await;
    let handled = app.wait_for_event(&id, |e| e.status == "processed").await;
    assert_eq!(handled.error, None);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(app.balance("patient").await.0, "105", "exactly once");
}

async fn an_event_of_the_other_mode_is_refused_recorded_and_never_fulfilled(app: &TestApp) {
    let payload = paid_but_undelivered(app, "mixed").await;
    let mut live: Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(live["livemode"], false, "the sandbox is test mode");
    live["livemode"] = Value::Bool(true);
    let id = live["id"].as_str().unwrap().to_string();
    let live = live.to_string();
    let now = creditd_store::unix_now();
    let refused = deliver(app, &live, WEBHOOK_SECRET, now).await;
    assert_eq!(
        (refused.status, code(&refused)),
        (400, "livemode_mismatch"),
        "{}",
        refused.text
    );
    let record = app.db.store.stripe_event(&id).await.unwrap().unwrap();
    assert_eq!(record.status, "refused");
    assert!(
        record.error.as_deref().is_some_and(|e| e.contains("livemode")),
        "{record:?}"
    );
    // Neither a retry nor time fulfils it.
    let retried = app.post(&format!("/v1/stripe/events/{id}/retry"), Value::Null).await;
    assert_eq!(
        (retried.status, retried.body["status"].as_str()),
        (200, Some("refused")),
        "{}",
        retried.text
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(app.balance("mixed").await.0, "5");
    let listed = app.get("/v1/stripe/events?status=refused").await;
    assert_eq!(listed.body["data"][0]["id"], id.as_str(), "{}", listed.text);
}
