//! Auto top-up end to end through the sandbox: the purchase that saves the card, one
//! off-session top-up per crossing under concurrent spends, `max_per_month`, Stripe's test
//! cards for off-session failures, and the switch-off after three failures in a row.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{code, on_both_backends, TestApp};
use crate::outbound::endpoint;
use crate::receiver::{assert_verified, Receiver};

on_both_backends!(settings = topup_settings;
    auto_topup_settings_refuse_bad_input,
    concurrent_crossings_buy_one_top_up_and_the_monthly_limit_holds,
    three_failed_top_ups_turn_auto_topup_off,
    the_billing_page_turns_auto_topup_on_and_shows_why_it_is_off,
);

fn topup_settings() -> creditd::config::Settings {
    let mut settings = crate::outbound::outbound_settings();
    settings.auto_topup_poll = Duration::from_millis(100);
    settings
}

async fn package(app: &TestApp) -> String {
    let body = json!({"name": "Hundred", "credits": "100", "price": 1000, "currency": "usd"});
    let reply = app.post("/v1/packages", body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.body["id"].as_str().unwrap().to_string()
}

async fn enable(app: &TestApp, customer: &str, body: Value) -> Value {
    let reply = app.post(&format!("/v1/customers/{customer}/auto-topup"), body).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body
}

/// Buys `package` through the hosted Checkout page with `card`; waits for the credits.
async fn buy_on_checkout(app: &TestApp, customer: &str, package: &str, card: &str) {
    let before = balance(app, customer).await;
    let reply = app
        .post(
            "/v1/checkout-sessions",
            json!({"customer": customer, "package": package}),
        )
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
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let paid = browser
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 303, "the card pays on the hosted page");
    wait_for_balance(app, customer, before + 100.0).await;
}

async fn balance(app: &TestApp, customer: &str) -> f64 {
    app.balance(customer).await.1.parse().unwrap()
}

async fn wait_for_balance(app: &TestApp, customer: &str, expected: f64) {
    for _ in 0..300 {
        if balance(app, customer).await == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!("{customer} never reached {expected}: {}", balance(app, customer).await);
}

async fn spend(app: &TestApp, customer: &str, amount: &str, key: &str) {
    let body = json!({"customer": customer, "amount": amount, "feature": "chat"});
    let reply = app.post_idem("/v1/usage", key, body).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

async fn payments(app: &TestApp, customer: &str) -> Vec<Value> {
    app.get(&format!("/v1/payments?customer={customer}&limit=100"))
        .await
        .body["data"]
        .as_array()
        .unwrap()
        .clone()
}

async fn auto_topup_settings_refuse_bad_input(app: &TestApp) {
    app.customer("u").await;
    let pkg = package(app).await;
    let archived = package(app).await;
    assert_eq!(
        app.post(&format!("/v1/packages/{archived}/archive"), json!({}))
            .await
            .status,
        200
    );
    let bad = [
        (
            json!({"enabled": true, "threshold": "ten", "package": pkg}),
            "threshold",
        ),
        (json!({"enabled": true, "threshold": "-1", "package": pkg}), "threshold"),
        (
            json!({"enabled": true, "threshold": "10", "package": pkg, "quantity": 0}),
            "quantity",
        ),
        (
            json!({"enabled": true, "threshold": "10", "package": pkg, "max_per_month": 0}),
            "max_per_month",
        ),
    ];
    for (body, field) in bad {
        let reply = app.post("/v1/customers/u/auto-topup", body.clone()).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
        assert!(reply.text.contains(field), "{body} names {field}: {}", reply.text);
    }
    let sold_out = app
        .post(
            "/v1/customers/u/auto-topup",
            json!({"enabled": true, "threshold": "10", "package": archived}),
        )
        .await;
    assert_eq!(
        (
            sold_out.status,
            code(&sold_out),
            sold_out.body["error"]["param"].as_str()
        ),
        (409, "package_archived", Some("package")),
        "as at checkout: {}",
        sold_out.text
    );
    let unknown = app
        .post(
            "/v1/customers/u/auto-topup",
            json!({"enabled": true, "threshold": "10", "package": "pkg_nothing"}),
        )
        .await;
    assert_eq!(
        (unknown.status, code(&unknown)),
        (404, "package_not_found"),
        "{}",
        unknown.text
    );
    let none = app.get("/v1/customers/u/auto-topup").await;
    assert_eq!(
        (none.status, none.body),
        (
            200,
            json!({"customer": "u", "enabled": false, "threshold": "10", "package": null, "quantity": 1,
                   "max_per_month": null, "consecutive_failures": 0, "disabled_reason": null})
        ),
        "nothing written: the settings are still the default, off"
    );
    let nobody = app.get("/v1/customers/nobody/auto-topup").await;
    assert_eq!((nobody.status, code(&nobody)), (404, "customer_not_found"));
    let missing = app
        .post(
            "/v1/customers/nobody/auto-topup",
            json!({"enabled": true, "threshold": "10", "package": pkg}),
        )
        .await;
    assert_eq!(missing.status, 404);
    let saved = enable(app, "u", json!({"enabled": true, "threshold": "10", "package": pkg})).await;
    assert_eq!(
        (saved["quantity"].clone(), saved["threshold"].clone()),
        (json!(1), json!("10"))
    );
    assert_eq!(app.get("/v1/customers/u").await.body["auto_topup"]["enabled"], true);
}

async fn concurrent_crossings_buy_one_top_up_and_the_monthly_limit_holds(app: &TestApp) {
    let receiver = Receiver::start().await;
    let (_, secret) = endpoint(
        app,
        &receiver,
        json!(["auto_topup.succeeded", "auto_topup.failed", "payment.succeeded"]),
    )
    .await;
    app.customer("u").await;
    let pkg = package(app).await;
    enable(
        app,
        "u",
        json!({"enabled": true, "threshold": "50", "package": pkg, "max_per_month": 1}),
    )
    .await;
    // The first purchase saves its card for later (setup_future_usage=off_session).
    buy_on_checkout(app, "u", &pkg, "4242 4242 4242 4242").await;
    let stripe_customer = app.db.store.stripe_customer("u").await.unwrap().unwrap();
    let saved = app.stripe.default_payment_method(&stripe_customer).await.unwrap();
    assert!(
        saved.is_some_and(|pm| pm.starts_with("pm_")),
        "the card is the customer's default"
    );
    // 64 spends at once take 105 through 50 to 41: one crossing, one top-up.
    let spends = (0..64).map(|i| async move { spend(app, "u", "1", &format!("s{i}")).await });
    futures::future::join_all(spends).await;
    wait_for_balance(app, "u", 141.0).await;
    let received = receiver.wait_for_types(&["auto_topup.succeeded"]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(balance(app, "u").await, 141.0, "exactly one top-up");
    let all = payments(app, "u").await;
    assert_eq!(all.len(), 2, "the purchase and one top-up: {all:?}");
    assert!(all.iter().all(|p| p["status"] == "succeeded"));
    let succeeded: Vec<_> = receiver
        .received()
        .into_iter()
        .filter(|r| r.event_type() == "auto_topup.succeeded")
        .collect();
    assert_eq!(succeeded.len(), 1);
    assert_eq!(succeeded[0].json()["data"]["payment"]["credits"], "100");
    assert_verified(&secret, &received);
    // Back above 50, a new crossing: the monthly limit (1) holds, nothing is charged.
    spend(app, "u", "100", "below-again").await;
    for _ in 0..100 {
        if app.db.store.topup_runs("u", 10).await.unwrap().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let mut runs = app.db.store.topup_runs("u", 10).await.unwrap();
    for _ in 0..100 {
        if runs[0].1 != "pending" && runs[0].1 != "processing" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        runs = app.db.store.topup_runs("u", 10).await.unwrap();
    }
    assert_eq!(runs[0].1, "failed", "{runs:?}");
    assert!(runs[0].2.as_deref().unwrap().contains("limit of 1"), "{runs:?}");
    assert_eq!(payments(app, "u").await.len(), 2, "no charge beyond the limit");
    assert_eq!(balance(app, "u").await, 41.0);
}

async fn three_failed_top_ups_turn_auto_topup_off(app: &TestApp) {
    let receiver = Receiver::start().await;
    let (_, secret) = endpoint(app, &receiver, json!(["auto_topup.failed"])).await;
    app.customer("u").await;
    let pkg = package(app).await;
    enable(app, "u", json!({"enabled": true, "threshold": "50", "package": pkg})).await;
    let stripe_customer = app.db.store.stripe_customer("u").await;
    assert!(stripe_customer.unwrap().is_none());
    // 1. A card that needs authentication pays on the hosted page, then fails off-session.
    buy_on_checkout(app, "u", &pkg, "4000 0025 0000 3155").await;
    spend(app, "u", "60", "a").await;
    let first = receiver.wait_until("one failure", |r| !r.is_empty()).await;
    assert_eq!(
        first[0].json()["data"]["failure_message"]
            .as_str()
            .unwrap()
            .split(':')
            .next(),
        Some("authentication_required")
    );
    // 2. The customer's default card becomes one without funds (as in Stripe's dashboard);
    //    credits arriving re-arm auto top-up.
    let stripe_customer = app.db.store.stripe_customer("u").await.unwrap().unwrap();
    app.stripe
        .set_default_payment_method(&stripe_customer, "pm_card_chargeDeclinedInsufficientFunds", "pm-9995")
        .await
        .unwrap();
    app.grant("u", "100").await;
    spend(app, "u", "100", "b").await;
    let second = receiver.wait_until("two failures", |r| r.len() == 2).await;
    assert!(
        second[1].json()["data"]["failure_message"]
            .as_str()
            .unwrap()
            .contains("insufficient funds"),
        "{:?}",
        second[1].body
    );
    // 3. A card that attaches and pays once, then fails every later charge.
    buy_on_checkout(app, "u", &pkg, "4000 0000 0000 0341").await;
    spend(app, "u", "100", "c").await;
    let third = receiver.wait_until("three failures", |r| r.len() == 3).await;
    assert_verified(&secret, &third);
    let last = third[2].json();
    assert_eq!(last["data"]["auto_topup_disabled"], true, "{last}");
    let settings = app.get("/v1/customers/u/auto-topup").await.body;
    assert_eq!(settings["enabled"], false);
    let reason = settings["disabled_reason"].as_str().unwrap();
    assert!(reason.starts_with("3 consecutive failures"), "{reason}");
    assert_eq!(
        app.get("/v1/customers/u").await.body["auto_topup"]["disabled_reason"],
        reason
    );
    // Off: another crossing charges nothing.
    app.grant("u", "100").await;
    spend(app, "u", "100", "d").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 3);
    let failed = payments(app, "u")
        .await
        .iter()
        .filter(|p| p["status"] == "failed")
        .count();
    assert_eq!(failed, 3, "each failure is a failed payment");
}

async fn post_form(app: &TestApp, cookie: Option<&str>, fields: &[(&str, &str)]) -> (u16, String) {
    let mut request = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url("/billing/auto-topup"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(fields).unwrap());
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn the_billing_page_turns_auto_topup_on_and_shows_why_it_is_off(app: &TestApp) {
    use crate::billing_page::{csrf, open, sign_in};
    app.customer("u").await;
    let pkg = package(app).await;
    let cookie = sign_in(app, "u").await;
    let page = open(app, "/billing", Some(&cookie)).await;
    assert!(page.html.contains("Auto top-up"), "{}", page.html);
    let token = csrf(&page.html);
    let fields = [
        ("csrf", token.as_str()),
        ("enabled", "on"),
        ("package", pkg.as_str()),
        ("threshold", "25"),
    ];
    let (status, _) = post_form(app, Some(&cookie), &fields[1..]).await;
    assert_eq!(status, 403, "no CSRF token, nothing saved");
    assert_eq!(
        app.get("/v1/customers/u/auto-topup").await.body["package"],
        Value::Null,
        "nothing saved"
    );
    let (status, _) = post_form(app, None, &fields).await;
    assert_eq!(status, 401, "no session");
    let bad = [
        ("csrf", token.as_str()),
        ("enabled", "on"),
        ("package", pkg.as_str()),
        ("threshold", "lots"),
    ];
    assert_eq!(post_form(app, Some(&cookie), &bad).await.0, 400);
    let (status, body) = post_form(app, Some(&cookie), &fields).await;
    assert_eq!(status, 303, "{body}");
    let saved = app.get("/v1/customers/u/auto-topup").await.body;
    assert_eq!(
        (
            saved["enabled"].clone(),
            saved["threshold"].clone(),
            saved["package"].clone()
        ),
        (json!(true), json!("25"), json!(pkg))
    );
    let page = open(app, "/billing", Some(&cookie)).await;
    assert!(page.html.contains("fewer than 25 credits"), "{}", page.html);
    // Off again (the checkbox unticked).
    let off = [("csrf", token.as_str()), ("package", pkg.as_str()), ("threshold", "25")];
    assert_eq!(post_form(app, Some(&cookie), &off).await.0, 303);
    assert_eq!(app.get("/v1/customers/u/auto-topup").await.body["enabled"], false);
}
