//! Outbound events of money and subscriptions (through the Stripe sandbox), and delivery by
//! several replicas sharing one outbox.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{on_both_backends, TestApp};
use crate::outbound::{endpoint, outbound_settings};
use crate::receiver::{assert_verified, Receiver};
use crate::refunds::{buy, dispute_of, refund, wait_for};
use crate::subscriptions::{advance, plan, subscribe, wait_for_status, MONTH};

on_both_backends!(settings = outbound_settings;
    payments_and_refunds_are_announced,
    disputes_are_announced_when_opened_and_closed,
    subscriptions_are_announced_through_their_life,
    two_replicas_deliver_one_outbox_once,
);

on_both_backends!(settings = stalled_settings;
    events_committed_before_a_crash_are_delivered_after_restart,
);

/// A replica whose delivery loop looks once, at start, and then not for an hour: events
/// committed after that wait in the outbox, as they would for a crashed replica.
fn stalled_settings() -> creditd::config::Settings {
    let mut settings = outbound_settings();
    settings.outbound.poll = Duration::from_secs(3600);
    settings
}

fn data_of<'a>(received: &'a [Value], event_type: &str) -> &'a Value {
    &received
        .iter()
        .find(|m| m["type"] == event_type)
        .unwrap_or_else(|| panic!("no {event_type} in {received:?}"))["data"]
}

async fn payments_and_refunds_are_announced(app: &TestApp) {
    let receiver = Receiver::start().await;
    let events = json!([
        "payment.succeeded",
        "payment.failed",
        "payment.refunded",
        "credits.clawed_back"
    ]);
    let (_, secret) = endpoint(app, &receiver, events).await;
    app.customer("u").await;
    let pi = buy(app, "u", "pm_card_visa").await;
    let package = app.get("/v1/packages").await.body["data"][0]["id"].clone();
    let declined = app
        .post("/v1/payment-intents", json!({"customer": "u", "package": package}))
        .await;
    let declined = declined.body["id"].as_str().unwrap().to_string();
    assert!(app
        .stripe
        .confirm_payment_intent(&declined, "pm_card_chargeDeclined", "declined")
        .await
        .is_err());
    refund(app, &pi, Some(500), "half").await;
    wait_for(app, "u", "55", "0").await;
    let received = receiver
        .wait_for_types(&[
            "payment.succeeded",
            "payment.failed",
            "payment.refunded",
            "credits.clawed_back",
        ])
        .await;
    assert_verified(&secret, &received);
    let bodies: Vec<Value> = received.iter().map(|r| r.json()).collect();
    let paid = data_of(&bodies, "payment.succeeded");
    assert_eq!(
        (
            paid["status"].clone(),
            paid["credits"].clone(),
            paid["payment_intent"].clone()
        ),
        (json!("succeeded"), json!("100"), json!(pi))
    );
    let failed = data_of(&bodies, "payment.failed");
    assert_eq!(
        (failed["status"].clone(), failed["payment_intent"].clone()),
        (json!("failed"), json!(declined))
    );
    let refunded = data_of(&bodies, "payment.refunded");
    assert_eq!(
        (
            refunded["amount_refunded"].clone(),
            refunded["credits_clawed_back"].clone()
        ),
        (json!(500), json!("50"))
    );
    let clawed = data_of(&bodies, "credits.clawed_back");
    assert_eq!(
        (clawed["amount"].clone(), clawed["customer"].clone()),
        (json!("50"), json!("u"))
    );
    assert_eq!(clawed["entries"][0]["kind"], "clawback");
}

async fn disputes_are_announced_when_opened_and_closed(app: &TestApp) {
    let receiver = Receiver::start().await;
    let (_, secret) = endpoint(app, &receiver, json!(["dispute.created", "dispute.closed"])).await;
    app.customer("u").await;
    let pi = buy(app, "u", "pm_card_createDispute").await;
    let dispute = dispute_of(app, &pi).await;
    wait_for(app, "u", "5", "100").await;
    let opened = receiver.wait_for_types(&["dispute.created"]).await;
    assert_eq!(opened.len(), 1, "one dispute.created");
    app.stripe
        .update_dispute_evidence(&dispute.id, "winning_evidence", true)
        .await
        .unwrap();
    wait_for(app, "u", "105", "0").await;
    let received = receiver.wait_for_types(&["dispute.created", "dispute.closed"]).await;
    assert_verified(&secret, &received);
    let bodies: Vec<Value> = received.iter().map(|r| r.json()).collect();
    let created = data_of(&bodies, "dispute.created");
    assert_eq!(
        (created["id"].clone(), created["credits_frozen"].clone()),
        (json!(dispute.id), json!("100"))
    );
    let closed = data_of(&bodies, "dispute.closed");
    assert_eq!(
        (closed["status"].clone(), closed["credits_restored"].clone()),
        (json!("won"), json!("100"))
    );
    assert_eq!(bodies.iter().filter(|b| b["type"] == "dispute.closed").count(), 1);
}

async fn subscriptions_are_announced_through_their_life(app: &TestApp) {
    let receiver = Receiver::start().await;
    let events = json!([
        "subscription.created",
        "subscription.updated",
        "subscription.canceled",
        "credits.granted",
        "credits.expired"
    ]);
    let (_, secret) = endpoint(app, &receiver, events).await;
    let pro = plan(app, "Pro", "1000", 2000, "0").await;
    app.customer("u").await;
    subscribe(app, "u", &pro, "4242 4242 4242 4242").await;
    let customer = wait_for_status(app, "u", "active").await;
    let sub = customer["subscription"]["id"].as_str().unwrap().to_string();
    receiver.wait_for_types(&["subscription.created"]).await;
    app.stripe.set_cancel_at_period_end(&sub, true, "cancel").await.unwrap();
    receiver.wait_for_types(&["subscription.updated"]).await;
    advance(app, MONTH).await;
    wait_for_status(app, "u", "canceled").await;
    app.state().store.sweep(app.clock.now(), 100).await.unwrap();
    let received = receiver
        .wait_for_types(&["subscription.canceled", "credits.expired"])
        .await;
    assert_verified(&secret, &received);
    let bodies: Vec<Value> = received.iter().map(|r| r.json()).collect();
    assert_eq!(data_of(&bodies, "subscription.created")["plan"], json!(pro));
    assert_eq!(data_of(&bodies, "subscription.updated")["cancel_at_period_end"], true);
    assert_eq!(data_of(&bodies, "subscription.canceled")["customer"], "u");
    let allowance = bodies
        .iter()
        .find(|b| b["type"] == "credits.granted" && b["data"]["source"] == "subscription")
        .expect("the allowance is announced");
    assert_eq!(allowance["data"]["amount"], "1000");
    assert_eq!(data_of(&bodies, "credits.expired")["amount"], "-1000");
    assert_eq!(
        bodies.iter().filter(|b| b["type"] == "subscription.canceled").count(),
        1
    );
}

async fn two_replicas_deliver_one_outbox_once(app: &TestApp) {
    let receiver = Receiver::start().await;
    let (_, secret) = endpoint(app, &receiver, json!(["customer.created"])).await;
    // A second replica: its own connections to the same database, its own delivery loop.
    let replica = creditd_store::Store::open(&app.db.url).await.unwrap();
    let worker = creditd::outbound::spawn(replica, outbound_settings().outbound);
    for i in 0..40 {
        app.customer(&format!("u{i}")).await;
    }
    let received = receiver.wait_until("40 deliveries", |r| r.len() >= 40).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received_after = receiver.received();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for r in &received_after {
        *seen.entry(r.id.as_str()).or_default() += 1;
    }
    assert_eq!(seen.len(), 40);
    assert!(seen.values().all(|n| *n == 1), "a message sent twice: {seen:?}");
    assert_verified(&secret, &received);
    worker.abort();
}

async fn events_committed_before_a_crash_are_delivered_after_restart(app: &TestApp) {
    let receiver = Receiver::start().await;
    let (_, secret) = endpoint(app, &receiver, json!(["customer.created"])).await;
    app.customer("a").await;
    app.customer("b").await;
    let store = app.state().store;
    // This replica dispatches and claims one delivery, then "crashes" mid-send (its lease
    // of 300 ms runs out with nothing sent).
    store.dispatch_events(creditd::outbound::now_ms(), 100).await.unwrap();
    let claimed = store
        .claim_deliveries(creditd::outbound::now_ms(), 300, 1)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.received().is_empty(), "nothing delivered while stalled");
    // The restarted replica delivers both: the claimed one once its lease ran out.
    let restarted = creditd_store::Store::open(&app.db.url).await.unwrap();
    let worker = creditd::outbound::spawn(restarted, outbound_settings().outbound);
    let received = receiver.wait_until("both deliveries", |r| r.len() == 2).await;
    assert_verified(&secret, &received);
    assert!(received.iter().any(|r| r.id == claimed[0].event_id));
    worker.abort();
}
