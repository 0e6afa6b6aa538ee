//! Subscriptions end to end through the sandbox: allowances per paid invoice, renewals on the
//! sandbox's clock with rollover, upgrades, failed renewals, cancellation, and exactly-once.

use std::time::Duration;

use creditd_stripe::client::Proration;
use serde_json::{json, Value};

use crate::helpers::{on_both_backends, TestApp};

on_both_backends!(
    a_subscription_grants_each_period_with_rollover_and_upgrades_at_once,
    a_failed_renewal_goes_past_due_then_recovers,
    cancellation_at_period_end_stops_the_allowances,
    invoice_paid_is_granted_once_and_reconciliation_recovers_a_missed_renewal,
);

pub(crate) const MONTH: i64 = 31 * 86_400;

pub(crate) async fn plan(app: &TestApp, name: &str, credits: &str, price: i64, rollover: &str) -> String {
    let body = json!({"name": name, "credits": credits, "price": price, "currency": "usd", "rollover_cap": rollover});
    let reply = app.post("/v1/plans", body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.body["id"].as_str().unwrap().to_string()
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Subscribes through Checkout, paying on the hosted page with `card`.
pub(crate) async fn subscribe(app: &TestApp, customer: &str, plan: &str, card: &str) {
    // Stripe's clock and the ledger's must agree for periods and expiries to line up.
    app.clock.set(app.sandbox.now().await);
    let reply = app
        .post("/v1/checkout-sessions", json!({"customer": customer, "plan": plan}))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let url = reply.body["url"].as_str().unwrap();
    let form = [
        ("method", "card"),
        ("card_number", card),
        ("card_expiry", "12 / 34"),
        ("card_cvc", "123"),
        ("name", "Ada"),
    ];
    let paid = browser()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 303);
}

pub(crate) async fn advance(app: &TestApp, seconds: i64) {
    app.sandbox.advance_clock(seconds).await.unwrap();
    app.clock.set(app.sandbox.now().await);
}

pub(crate) async fn wait_for(app: &TestApp, customer: &str, balance: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        last = app.get(&format!("/v1/customers/{customer}")).await.body;
        if last["balance"] == balance {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!("{customer} never reached balance {balance}: {last}");
}

pub(crate) async fn wait_for_status(app: &TestApp, customer: &str, status: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        last = app.get(&format!("/v1/customers/{customer}")).await.body;
        if last["subscription"]["status"] == status {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!("{customer}'s subscription never became {status}: {last}");
}

async fn a_subscription_grants_each_period_with_rollover_and_upgrades_at_once(app: &TestApp) {
    let pro = plan(app, "Pro", "1000", 2000, "500").await;
    let max = plan(app, "Max", "3000", 5000, "0").await;
    let plans = app.get("/v1/plans").await;
    assert_eq!(plans.body["data"].as_array().unwrap().len(), 2);
    app.customer("u").await;
    subscribe(app, "u", &pro, "4242 4242 4242 4242").await;
    let customer = wait_for(app, "u", "1005").await;
    let subscription = &customer["subscription"];
    assert_eq!(
        (subscription["status"].as_str(), subscription["plan"].as_str()),
        (Some("active"), Some(pro.as_str()))
    );
    let period_end = subscription["current_period_end"].as_i64().unwrap();
    let grants = app.get("/v1/customers/u/grants").await.body;
    assert_eq!(
        (
            grants["data"][0]["source"].as_str(),
            grants["data"][0]["expires_at"].as_i64()
        ),
        (Some("subscription"), Some(period_end))
    );
    // Spend 700: the expiring allowance goes first, 300 of it is left at renewal.
    assert_eq!(
        app.post(
            "/v1/usage",
            json!({"customer": "u", "amount": "700", "feature": "chat"})
        )
        .await
        .status,
        200
    );
    let again = app
        .post("/v1/checkout-sessions", json!({"customer": "u", "plan": max}))
        .await;
    assert_eq!(again.status, 409, "one subscription at a time: {}", again.text);
    advance(app, MONTH).await;
    // The renewal: 1000 new credits plus 300 rolled over (cap 500); the old grant expired.
    wait_for(app, "u", "1305").await;
    let ledger = app.get("/v1/customers/u/ledger?limit=5").await.body;
    let kinds: Vec<(&str, &str)> = ledger["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["amount"].as_str().unwrap()))
        .collect();
    assert!(kinds.starts_with(&[("grant", "1300"), ("expire", "-300")]), "{kinds:?}");
    // Upgrade mid-period: the difference between the allowances, at once.
    let sub_id = app.get("/v1/customers/u").await.body["subscription"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let max_price = app.get("/v1/plans").await.body["data"][1]["stripe_price"]
        .as_str()
        .map(str::to_string);
    let max_price = match max_price {
        Some(p) => p,
        None => {
            let plan = app.db.store.plan(&max).await.unwrap().unwrap();
            creditd::billing::subscriptions::plan_price(&app.state(), &plan)
                .await
                .unwrap()
        }
    };
    app.stripe
        .update_subscription_price(&sub_id, &max_price, Proration::AlwaysInvoice, "upgrade")
        .await
        .unwrap();
    wait_for(app, "u", "3305").await;
    wait_for_status(app, "u", "active").await;
    assert_eq!(
        app.get("/v1/customers/u").await.body["subscription"]["plan"].as_str(),
        Some(max.as_str())
    );
    // Downgrade: no credits taken now; the next period grants the smaller allowance.
    let pro_price = app.db.store.plan(&pro).await.unwrap().unwrap().stripe_price.unwrap();
    app.stripe
        .update_subscription_price(&sub_id, &pro_price, Proration::None, "downgrade")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.balance("u").await.0, "3305");
    advance(app, MONTH).await;
    // 3300 of allowance left: 500 roll over (Pro's cap), the rest expires; Pro grants 1000.
    wait_for(app, "u", "1505").await;
    let subscriptions = app.db.store.active_subscriptions_by_plan().await.unwrap();
    assert_eq!(
        subscriptions,
        vec![("Pro".to_string(), 1)],
        "the dashboard counts active subscriptions by plan"
    );
}

async fn a_failed_renewal_goes_past_due_then_recovers(app: &TestApp) {
    let pro = plan(app, "Pro", "1000", 2000, "0").await;
    app.customer("u").await;
    subscribe(app, "u", &pro, "4000 0000 0000 0341").await;
    wait_for(app, "u", "1005").await;
    advance(app, MONTH).await;
    let customer = wait_for_status(app, "u", "past_due").await;
    assert_eq!(
        customer["balance"], "5",
        "no allowance for an unpaid period; the old one expired"
    );
    let sub_id = customer["subscription"]["id"].as_str().unwrap().to_string();
    let invoice = app
        .stripe
        .list_invoices_for_subscription(&sub_id)
        .await
        .unwrap()
        .into_iter()
        .find(|i| !i.paid)
        .unwrap();
    app.stripe
        .pay_invoice(&invoice.id, Some("pm_card_visa"), "recover")
        .await
        .unwrap();
    wait_for(app, "u", "1005").await;
    wait_for_status(app, "u", "active").await;
}

async fn cancellation_at_period_end_stops_the_allowances(app: &TestApp) {
    let pro = plan(app, "Pro", "1000", 2000, "0").await;
    app.customer("u").await;
    subscribe(app, "u", &pro, "4242 4242 4242 4242").await;
    let customer = wait_for(app, "u", "1005").await;
    let sub_id = customer["subscription"]["id"].as_str().unwrap().to_string();
    app.stripe
        .set_cancel_at_period_end(&sub_id, true, "cancel")
        .await
        .unwrap();
    for _ in 0..100 {
        if app.get("/v1/customers/u").await.body["subscription"]["cancel_at_period_end"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(
        app.get("/v1/customers/u").await.body["subscription"]["cancel_at_period_end"],
        true
    );
    assert_eq!(
        app.balance("u").await.0,
        "1005",
        "the current allowance lives until its period ends"
    );
    advance(app, MONTH).await;
    wait_for_status(app, "u", "canceled").await;
    assert_eq!(
        app.balance("u").await.0,
        "5",
        "no further allowance; the last one expired"
    );
    let portal = app
        .post(
            "/v1/billing-portal",
            json!({"customer": "u", "return_url": "https://app.example/account"}),
        )
        .await;
    assert_eq!(portal.status, 200, "{}", portal.text);
    assert!(portal.body["url"].as_str().unwrap().starts_with("http"));
}

async fn invoice_paid_is_granted_once_and_reconciliation_recovers_a_missed_renewal(app: &TestApp) {
    let pro = plan(app, "Pro", "1000", 2000, "0").await;
    app.customer("u").await;
    subscribe(app, "u", &pro, "4242 4242 4242 4242").await;
    wait_for(app, "u", "1005").await;
    // The first invoice.paid, delivered again three times at once: nothing more is granted.
    let (events, _) = app.stripe.list_events(None, None, 100).await.unwrap();
    let paid = events
        .iter()
        .find(|e| e.type_ == "invoice.paid")
        .expect("an invoice.paid event");
    let now = creditd_store::unix_now();
    let header =
        creditd_stripe::webhook::sign_header(paid.payload_json.as_bytes(), crate::helpers::WEBHOOK_SECRET, now);
    let sends: Vec<_> = (0..3)
        .map(|_| {
            let request = app
                .client
                .post(app.url("/v1/stripe/webhook"))
                .header("Stripe-Signature", header.clone());
            tokio::spawn(request.body(paid.payload_json.clone()).send())
        })
        .collect();
    for send in sends {
        assert_eq!(send.await.unwrap().unwrap().status(), 200);
    }
    assert_eq!(app.balance("u").await.0, "1005");
    // Creditd misses the renewal's webhooks entirely; reconciliation finds them.
    app.sandbox.set_webhook_url(None);
    advance(app, MONTH).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        app.balance("u").await.0,
        "5",
        "the old allowance expired and the new one is missed"
    );
    let report = creditd::billing::reconcile::reconcile(&app.state(), 30 * 86_400)
        .await
        .unwrap();
    assert!(report.events_recovered >= 1, "{report:?}");
    assert_eq!(app.balance("u").await.0, "1005");
}
