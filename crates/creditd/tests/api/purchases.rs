//! Buying credits end to end through the Stripe sandbox: Checkout paid on the hosted page as a
//! browser would, PaymentIntents, and the webhook's exactly-once guarantees.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{code, on_both_backends, Reply, TestApp, WEBHOOK_SECRET};

on_both_backends!(
    checkout_paid_by_card_grants_the_package_once,
    a_declined_card_grants_nothing,
    the_success_page_races_the_webhook_and_grants_once,
    duplicate_concurrent_and_reordered_events_grant_once,
    payment_intents_grant_on_success_only,
    delayed_payment_methods_grant_when_they_clear,
    bad_signatures_and_stale_timestamps_are_refused_and_not_recorded,
    unknown_events_are_ignored_and_failures_are_retried_in_the_background,
    packages_take_one_time_prices_only,
);

pub(crate) async fn package(app: &TestApp, credits: &str, price: i64) -> String {
    let reply = app
        .post(
            "/v1/packages",
            json!({"name": "Starter", "credits": credits, "price": price, "currency": "usd"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.body["id"].as_str().unwrap().to_string()
}

pub(crate) async fn checkout(app: &TestApp, customer: &str, package: &str, quantity: i64) -> (String, String) {
    let reply = app
        .post(
            "/v1/checkout-sessions",
            json!({"customer": customer, "package": package, "quantity": quantity}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.body["payment"]["status"], "pending");
    (
        reply.body["id"].as_str().unwrap().to_string(),
        reply.body["url"].as_str().unwrap().to_string(),
    )
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Fills in and submits the sandbox's hosted checkout form, as a browser would.
pub(crate) async fn pay(url: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let page = browser().get(url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("<form"), "the hosted page is a form: {page}");
    let body = serde_urlencoded::to_string(fields).unwrap();
    let request = browser()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    request.send().await.unwrap()
}

pub(crate) fn card(number: &str) -> Vec<(&str, &str)> {
    vec![
        ("method", "card"),
        ("card_number", number),
        ("card_expiry", "12 / 34"),
        ("card_cvc", "123"),
        ("name", "Ada Lovelace"),
    ]
}

pub(crate) async fn wait_for_balance(app: &TestApp, customer: &str, expected: &str) {
    for _ in 0..200 {
        if app.balance(customer).await.0 == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "balance of {customer} never reached {expected}: {:?}",
        app.balance(customer).await
    );
}

async fn payments(app: &TestApp, customer: &str) -> Vec<Value> {
    let reply = app.get(&format!("/v1/payments?customer={customer}")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body["data"].as_array().unwrap().clone()
}

/// Every event the sandbox recorded, oldest first, as raw JSON payloads.
async fn sandbox_events(app: &TestApp) -> Vec<String> {
    let (events, _) = app.stripe.list_events(None, None, 100).await.unwrap();
    events.into_iter().rev().map(|e| e.payload_json).collect()
}

pub(crate) async fn deliver(app: &TestApp, payload: &str, secret: &str, t: i64) -> Reply {
    let header = creditd_stripe::webhook::sign_header(payload.as_bytes(), secret, t);
    let request = app
        .client
        .post(app.url("/v1/stripe/webhook"))
        .header("Stripe-Signature", header)
        .body(payload.to_string());
    app.send(request).await
}

/// Waits until the sandbox delivered everything and creditd handled what it received.
async fn wait_until_delivered(app: &TestApp) {
    for _ in 0..200 {
        if app.sandbox.pending_deliveries().await == 0 {
            app.wait_until_events_handled().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the sandbox never finished delivering");
}

async fn checkout_paid_by_card_grants_the_package_once(app: &TestApp) {
    app.customer("buyer").await;
    let pkg = package(app, "100", 500).await;
    let (session, url) = checkout(app, "buyer", &pkg, 2).await;
    assert!(session.starts_with("cs_"));
    let paid = pay(&url, &card("4242 4242 4242 4242")).await;
    assert_eq!(paid.status(), 303);
    let location = paid.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(location, app.url(&format!("/billing/success?session_id={session}")));
    wait_for_balance(app, "buyer", "205").await; // 5 signup bonus + 2 × 100
    wait_until_delivered(app).await;
    let list = payments(app, "buyer").await;
    assert_eq!(list.len(), 1);
    let payment = &list[0];
    assert_eq!(
        (
            payment["status"].as_str(),
            payment["credits"].as_str(),
            payment["amount"].as_i64()
        ),
        (Some("succeeded"), Some("200"), Some(1000))
    );
    assert_eq!(payment["checkout_session"].as_str(), Some(session.as_str()));
    assert!(payment["payment_intent"].as_str().unwrap().starts_with("pi_"));
    assert!(
        payment["receipt_url"].as_str().is_some_and(|u| u.starts_with("http")),
        "{payment}"
    );
    // The success page the buyer lands on shows the balance and changes nothing.
    let page = browser().get(&location).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Payment received") && html.contains("205 credits"),
        "{html}"
    );
    assert_eq!(app.balance("buyer").await.0, "205");
    // The same customer buying again reuses its Stripe customer.
    let (_, url2) = checkout(app, "buyer", &pkg, 1).await;
    pay(&url2, &card("4242424242424242")).await;
    wait_for_balance(app, "buyer", "305").await;
    assert_eq!(
        app.sandbox.read(|s| s.customers.len()).await,
        1,
        "one Stripe customer per creditd customer"
    );
}

async fn a_declined_card_grants_nothing(app: &TestApp) {
    app.customer("buyer").await;
    let pkg = package(app, "100", 500).await;
    let (_, url) = checkout(app, "buyer", &pkg, 1).await;
    let declined = pay(&url, &card("4000 0000 0000 0002")).await;
    assert_eq!(declined.status(), 402);
    let broke = pay(&url, &card("4000 0000 0000 9995")).await;
    assert_eq!(broke.status(), 402);
    wait_until_delivered(app).await;
    assert_eq!(app.balance("buyer").await.0, "5");
    assert_eq!(
        payments(app, "buyer").await[0]["status"],
        "pending",
        "the session is still open for another card"
    );
    pay(&url, &card("4242 4242 4242 4242")).await;
    wait_for_balance(app, "buyer", "105").await;
}

async fn the_success_page_races_the_webhook_and_grants_once(app: &TestApp) {
    app.customer("buyer").await;
    let pkg = package(app, "50", 300).await;
    app.sandbox.pause_deliveries();
    let (session, url) = checkout(app, "buyer", &pkg, 1).await;
    let paid = pay(&url, &card("4242 4242 4242 4242")).await;
    let location = paid.headers()["location"].to_str().unwrap().to_string();
    // The buyer is back before any webhook: the page fulfils from the session itself.
    let pages: Vec<_> = (0..3)
        .map(|_| tokio::spawn(browser().get(location.clone()).send()))
        .collect();
    app.sandbox.resume_deliveries();
    for page in pages {
        let html = page.await.unwrap().unwrap().text().await.unwrap();
        assert!(html.contains("Payment received"), "{html}");
    }
    wait_until_delivered(app).await;
    assert_eq!(app.balance("buyer").await.0, "55");
    let fulfil = app
        .post(&format!("/v1/checkout-sessions/{session}/fulfill"), json!({}))
        .await;
    assert_eq!(
        (fulfil.status, fulfil.body["status"].as_str()),
        (200, Some("succeeded"))
    );
    assert_eq!(app.balance("buyer").await.0, "55", "granted exactly once");
    let grants = app.get("/v1/customers/buyer/grants").await;
    let purchases: Vec<&Value> = grants.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["source"] == "purchase")
        .collect();
    assert_eq!(purchases.len(), 1);
    assert_eq!(purchases[0]["reference"].as_str(), Some(session.as_str()));
}

async fn duplicate_concurrent_and_reordered_events_grant_once(app: &TestApp) {
    app.customer("buyer").await;
    let pkg = package(app, "100", 500).await;
    // Stripe is down for creditd: nothing is delivered; then every event arrives five times,
    // concurrently, newest first.
    app.sandbox.set_webhook_url(None);
    let (_, url) = checkout(app, "buyer", &pkg, 1).await;
    pay(&url, &card("4242 4242 4242 4242")).await;
    let events = sandbox_events(app).await;
    assert!(events.iter().any(|e| e.contains("checkout.session.completed")));
    let now = creditd_store::unix_now();
    let mut deliveries = Vec::new();
    for payload in events.iter().rev() {
        for _ in 0..5 {
            let (client, url, payload) = (app.client.clone(), app.url("/v1/stripe/webhook"), payload.clone());
            let header = creditd_stripe::webhook::sign_header(payload.as_bytes(), WEBHOOK_SECRET, now);
            deliveries.push(tokio::spawn(async move {
                client
                    .post(url)
                    .header("Stripe-Signature", header)
                    .body(payload)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }));
        }
    }
    for d in deliveries {
        assert_eq!(d.await.unwrap(), 200);
    }
    wait_for_balance(app, "buyer", "105").await;
    app.wait_until_events_handled().await;
    assert_eq!(app.balance("buyer").await.0, "105");
    let first: Value = serde_json::from_str(&events[0]).unwrap();
    let record = app
        .db
        .store
        .stripe_event(first["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        record.attempts, 5,
        "every delivery is counted against one recorded event"
    );
}

async fn payment_intents_grant_on_success_only(app: &TestApp) {
    app.customer("buyer").await;
    let pkg = package(app, "20", 200).await;
    let created = app
        .post("/v1/payment-intents", json!({"customer": "buyer", "package": pkg}))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let pi = created.body["id"].as_str().unwrap().to_string();
    assert!(created.body["client_secret"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{pi}_secret_")));
    let declined = app
        .stripe
        .confirm_payment_intent(&pi, "pm_card_chargeDeclined", "confirm-1")
        .await;
    assert!(declined.is_err());
    wait_until_delivered(app).await;
    assert_eq!(app.balance("buyer").await.0, "5");
    let failed = &payments(app, "buyer").await[0];
    assert_eq!(failed["status"], "failed", "{failed}");
    app.stripe
        .confirm_payment_intent(&pi, "pm_card_visa", "confirm-2")
        .await
        .unwrap();
    wait_for_balance(app, "buyer", "25").await;
    let ok = &payments(app, "buyer").await[0];
    assert_eq!(
        (ok["status"].as_str(), ok["flow"].as_str()),
        (Some("succeeded"), Some("payment_intent"))
    );
    assert!(ok["receipt_url"].is_string());
}

async fn delayed_payment_methods_grant_when_they_clear(app: &TestApp) {
    app.customer("buyer").await;
    let pkg = package(app, "100", 500).await;
    let (_, url) = checkout(app, "buyer", &pkg, 1).await;
    pay(
        &url,
        &[
            ("method", "sepa_debit"),
            ("iban", "DE89370400440532013000"),
            ("name", "Ada"),
        ],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(app.balance("buyer").await.0, "5", "completed but unpaid grants nothing");
    wait_for_balance(app, "buyer", "105").await;
    let (_, url) = checkout(app, "buyer", &pkg, 1).await;
    pay(
        &url,
        &[
            ("method", "sepa_debit"),
            ("iban", "DE62370400440532013001"),
            ("name", "Ada"),
        ],
    )
    .await;
    for _ in 0..200 {
        if payments(app, "buyer").await[0]["status"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(payments(app, "buyer").await[0]["status"], "failed");
    assert_eq!(app.balance("buyer").await.0, "105");
}

async fn bad_signatures_and_stale_timestamps_are_refused_and_not_recorded(app: &TestApp) {
    let payload = r#"{"id":"evt_forged","object":"event","type":"checkout.session.completed","created":1,"data":{"object":{"id":"cs_x"}}}"#;
    let now = creditd_store::unix_now();
    let forged = deliver(app, payload, "whsec_not_ours", now).await;
    assert_eq!((forged.status, code(&forged)), (400, "invalid_signature"));
    let stale = deliver(app, payload, WEBHOOK_SECRET, now - 400).await;
    assert_eq!((stale.status, code(&stale)), (400, "invalid_signature"));
    assert!(
        stale.body["error"]["message"].as_str().unwrap().contains("tolerance"),
        "{}",
        stale.text
    );
    let unsigned = app
        .client
        .post(app.url("/v1/stripe/webhook"))
        .body(payload)
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 400);
    let tampered_header = creditd_stripe::webhook::sign_header(payload.as_bytes(), WEBHOOK_SECRET, now);
    let tampered = app
        .client
        .post(app.url("/v1/stripe/webhook"))
        .header("Stripe-Signature", tampered_header)
        .body(payload.replace("cs_x", "cs_y"))
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), 400);
    assert!(
        app.db.store.stripe_event("evt_forged").await.unwrap().is_none(),
        "nothing recorded"
    );
}

async fn unknown_events_are_ignored_and_failures_are_retried_in_the_background(app: &TestApp) {
    let now = creditd_store::unix_now();
    let unknown = r#"{"id":"evt_unknown","object":"event","type":"customer.tax_id.created","created":1,"data":{"object":{"id":"txi_1"}}}"#;
    assert_eq!(deliver(app, unknown, WEBHOOK_SECRET, now).await.status, 200);
    app.wait_for_event("evt_unknown", |e| e.status == "ignored").await;
    // A session Stripe cannot find: acknowledged, handling fails in the background, the
    // error is kept and the event is tried again by itself (back-off from 1 s).
    let broken = r#"{"id":"evt_broken","object":"event","type":"checkout.session.completed","created":1,"data":{"object":{"id":"cs_test_missing"}}}"#;
    let reply = deliver(app, broken, WEBHOOK_SECRET, now).await;
    assert_eq!((reply.status, reply.body["received"].as_bool()), (200, Some(true)));
    let record = app.wait_for_event("evt_broken", |e| e.status == "failed").await;
    assert!(
        record.error.as_deref().is_some_and(|e| e.contains("cs_test_missing")),
        "{record:?}"
    );
    let retried = app.wait_for_event("evt_broken", |e| e.attempts >= 2).await;
    assert_eq!(retried.status, "failed", "still failing: {retried:?}");
    assert_eq!(
        deliver(app, broken, WEBHOOK_SECRET, now).await.status,
        200,
        "a redelivery is acknowledged and counted"
    );
    let again = app.db.store.stripe_event("evt_broken").await.unwrap().unwrap();
    assert!(again.attempts > retried.attempts, "{again:?}");
}

async fn packages_take_one_time_prices_only(app: &TestApp) {
    let sandbox = reqwest::Client::new();
    let form = |recurring: bool| {
        let mut fields = vec![
            ("currency", "usd"),
            ("unit_amount", "900"),
            ("product_data[name]", "Pro"),
        ];
        if recurring {
            fields.push(("recurring[interval]", "month"));
        }
        serde_urlencoded::to_string(fields).unwrap()
    };
    let mut prices = Vec::new();
    for recurring in [false, true] {
        let created: Value = sandbox
            .post(format!("{}v1/prices", app.sandbox.base_url))
            .bearer_auth(creditd::app::SANDBOX_SECRET_KEY)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(recurring))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        prices.push(created["id"].as_str().unwrap().to_string());
    }
    let one_time = app
        .post(
            "/v1/packages",
            json!({"name": "Big", "credits": "1000", "stripe_price": prices[0]}),
        )
        .await;
    assert_eq!(one_time.status, 201, "{}", one_time.text);
    assert_eq!(
        (one_time.body["price"].as_i64(), one_time.body["currency"].as_str()),
        (Some(900), Some("usd"))
    );
    let recurring = app
        .post(
            "/v1/packages",
            json!({"name": "Sub", "credits": "1000", "stripe_price": prices[1]}),
        )
        .await;
    assert_eq!(
        (recurring.status, recurring.body["error"]["param"].as_str()),
        (400, Some("stripe_price"))
    );
    assert!(recurring.text.contains("recurring"));
    let neither = app.post("/v1/packages", json!({"name": "X", "credits": "1"})).await;
    assert_eq!(neither.status, 400);
    let bad_currency = app
        .post(
            "/v1/packages",
            json!({"name": "X", "credits": "1", "price": 100, "currency": "dollars"}),
        )
        .await;
    assert_eq!(
        (bad_currency.status, bad_currency.body["error"]["param"].as_str()),
        (400, Some("currency"))
    );
    let listed = app.get("/v1/packages").await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 1);
    let id = one_time.body["id"].as_str().unwrap();
    let archived = app.post(&format!("/v1/packages/{id}/archive"), json!({})).await;
    assert_eq!(archived.body["active"], false);
    assert!(app.get("/v1/packages").await.body["data"]
        .as_array()
        .unwrap()
        .is_empty());
    app.customer("buyer").await;
    let refused = app
        .post("/v1/checkout-sessions", json!({"customer": "buyer", "package": id}))
        .await;
    assert_eq!(
        (refused.status, refused.body["error"]["param"].as_str()),
        (409, Some("package"))
    );
}
