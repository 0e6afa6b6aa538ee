//! Refunds, disputes and debt: credits follow the money. Each scenario buys a package
//! (100 credits for 10.00 USD) through a PaymentIntent on the sandbox, then moves the money
//! the way Stripe's dashboard would, and waits for the books to converge.

use std::time::Duration;

use creditd_stripe::client::RefundParams;
use serde_json::{json, Value};

use crate::helpers::{code, on_both_backends, TestApp};

on_both_backends!(
    a_full_refund_claws_back_everything,
    three_partial_refunds_add_up_exactly,
    a_refund_after_spending_leaves_debt_that_the_next_purchase_pays,
    a_failed_refund_gives_the_credits_back,
    a_won_dispute_freezes_then_restores,
    a_lost_dispute_claws_back,
    a_dispute_after_a_partial_refund_takes_only_what_is_left,
    reconciliation_recovers_dropped_refund_events,
);

/// Buys the package with `payment_method` and waits for the credits; returns the PaymentIntent.
pub(crate) async fn buy(app: &TestApp, customer: &str, payment_method: &str) -> String {
    let pkg = match app.get("/v1/packages").await.body["data"][0]["id"].as_str() {
        Some(id) => id.to_string(),
        None => {
            let body = json!({"name": "Ten", "credits": "100", "price": 1000, "currency": "usd"});
            app.post("/v1/packages", body).await.body["id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let before = app.get(&format!("/v1/customers/{customer}")).await.body["balance"]
        .as_str()
        .unwrap()
        .to_string();
    let created = app
        .post("/v1/payment-intents", json!({"customer": customer, "package": pkg}))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let pi = created.body["id"].as_str().unwrap().to_string();
    app.stripe
        .confirm_payment_intent(&pi, payment_method, &format!("confirm-{pi}"))
        .await
        .unwrap();
    let expected = (before.parse::<f64>().unwrap() + 100.0).to_string();
    wait_for(app, customer, &expected, "0").await;
    pi
}

/// Waits until the customer's balance and frozen credits are as expected.
pub(crate) async fn wait_for(app: &TestApp, customer: &str, balance: &str, frozen: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        last = app.get(&format!("/v1/customers/{customer}")).await.body;
        if last["balance"] == balance && last["frozen"] == frozen {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!("{customer} never reached balance {balance}, frozen {frozen}: {last}");
}

pub(crate) async fn refund(app: &TestApp, pi: &str, amount: Option<i64>, key: &str) -> String {
    let params = RefundParams {
        payment_intent: Some(pi.into()),
        charge: None,
        amount,
        idempotency_key: key.into(),
    };
    app.stripe.create_refund(params).await.unwrap().id
}

async fn ledger_kinds(app: &TestApp, customer: &str) -> Vec<(String, String, Option<String>)> {
    let ledger = app.get(&format!("/v1/customers/{customer}/ledger?limit=100")).await;
    let mut rows: Vec<_> = ledger.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["amount"].as_str().unwrap().to_string(),
                e["reference"].as_str().map(str::to_string),
            )
        })
        .collect();
    rows.reverse();
    rows
}

pub(crate) async fn dispute_of(app: &TestApp, pi: &str) -> creditd_stripe::client::Dispute {
    let intent = app.stripe.retrieve_payment_intent(pi).await.unwrap();
    let charge = intent.latest_charge.unwrap();
    for _ in 0..200 {
        if let Some(d) = app
            .stripe
            .list_disputes_for_charge(&charge)
            .await
            .unwrap()
            .into_iter()
            .next()
        {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!("no dispute opened on {charge}");
}

async fn a_full_refund_claws_back_everything(app: &TestApp) {
    app.customer("u").await;
    let pi = buy(app, "u", "pm_card_visa").await;
    let re = refund(app, &pi, None, "r1").await;
    wait_for(app, "u", "5", "0").await;
    let kinds = ledger_kinds(app, "u").await;
    assert_eq!(
        kinds.last().unwrap(),
        &("clawback".to_string(), "-100".to_string(), Some(re)),
        "{kinds:?}"
    );
    let payment = &app.get("/v1/payments?customer=u").await.body["data"][0];
    assert_eq!(payment["status"], "succeeded");
}

async fn three_partial_refunds_add_up_exactly(app: &TestApp) {
    app.customer("u").await;
    let pi = buy(app, "u", "pm_card_visa").await;
    refund(app, &pi, Some(333), "r1").await;
    wait_for(app, "u", "71.7", "0").await;
    refund(app, &pi, Some(333), "r2").await;
    wait_for(app, "u", "38.4", "0").await;
    refund(app, &pi, Some(334), "r3").await;
    wait_for(app, "u", "5", "0").await;
    let clawed: Vec<String> = ledger_kinds(app, "u")
        .await
        .into_iter()
        .filter(|k| k.0 == "clawback")
        .map(|k| k.1)
        .collect();
    assert_eq!(clawed, ["-33.3", "-33.3", "-33.4"]);
}

async fn a_refund_after_spending_leaves_debt_that_the_next_purchase_pays(app: &TestApp) {
    app.customer("u").await;
    let pi = buy(app, "u", "pm_card_visa").await;
    let used = app
        .post(
            "/v1/usage",
            json!({"customer": "u", "amount": "100", "feature": "chat"}),
        )
        .await;
    assert_eq!(used.status, 200);
    refund(app, &pi, None, "r1").await;
    let customer = wait_for(app, "u", "-95", "0").await;
    assert_eq!(
        (customer["debt"].as_str(), customer["available"].as_str()),
        (Some("95"), Some("-95"))
    );
    let refused = app
        .post(
            "/v1/usage",
            json!({"customer": "u", "amount": "0.000001", "feature": "chat"}),
        )
        .await;
    assert_eq!(
        (refused.status, code(&refused)),
        (402, "insufficient_credits"),
        "a customer in debt cannot spend"
    );
    buy_expecting(app, "u", "5").await;
    let customer = app.get("/v1/customers/u").await.body;
    assert_eq!(
        (customer["debt"].as_str(), customer["balance"].as_str()),
        (Some("0"), Some("5"))
    );
    let kinds: Vec<String> = ledger_kinds(app, "u").await.into_iter().map(|k| k.0).collect();
    assert_eq!(
        &kinds[kinds.len() - 3..],
        ["grant", "debt_payment", "debt_payment"],
        "the new grant pays the debt first"
    );
}

/// Buys another package and waits for the balance to reach `expected` (debt paid first).
async fn buy_expecting(app: &TestApp, customer: &str, expected: &str) {
    let pkg = app.get("/v1/packages").await.body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let created = app
        .post("/v1/payment-intents", json!({"customer": customer, "package": pkg}))
        .await;
    let pi = created.body["id"].as_str().unwrap().to_string();
    app.stripe
        .confirm_payment_intent(&pi, "pm_card_visa", "again")
        .await
        .unwrap();
    wait_for(app, customer, expected, "0").await;
}

async fn a_failed_refund_gives_the_credits_back(app: &TestApp) {
    app.customer("u").await;
    let pi = buy(app, "u", "pm_card_refundFail").await;
    let re = refund(app, &pi, None, "r1").await;
    // The refund is pending: the credits leave at once …
    wait_for(app, "u", "5", "0").await;
    // … and come back when it fails.
    wait_for(app, "u", "105", "0").await;
    assert_eq!(app.stripe.retrieve_refund(&re).await.unwrap().status, "failed");
    let grants = app.get("/v1/customers/u/grants").await.body;
    assert!(
        grants["data"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("credits restored"),
        "{grants}"
    );
}

async fn a_won_dispute_freezes_then_restores(app: &TestApp) {
    app.customer("u").await;
    let pi = buy(app, "u", "pm_card_createDispute").await;
    let dispute = dispute_of(app, &pi).await;
    let frozen = wait_for(app, "u", "5", "100").await;
    assert_eq!(frozen["available"], "5", "frozen credits cannot be spent");
    app.stripe
        .update_dispute_evidence(&dispute.id, "winning_evidence", true)
        .await
        .unwrap();
    wait_for(app, "u", "105", "0").await;
    let kinds = ledger_kinds(app, "u").await;
    let tail: Vec<(&str, &str)> = kinds[kinds.len() - 2..]
        .iter()
        .map(|k| (k.0.as_str(), k.1.as_str()))
        .collect();
    assert_eq!(tail, [("freeze", "-100"), ("unfreeze", "100")]);
    assert!(kinds[kinds.len() - 2..]
        .iter()
        .all(|k| k.2.as_deref() == Some(dispute.id.as_str())));
}

async fn a_lost_dispute_claws_back(app: &TestApp) {
    app.customer("u").await;
    let pi = buy(app, "u", "pm_card_createDispute").await;
    let dispute = dispute_of(app, &pi).await;
    wait_for(app, "u", "5", "100").await;
    app.stripe
        .update_dispute_evidence(&dispute.id, "losing_evidence", true)
        .await
        .unwrap();
    wait_for(app, "u", "5", "0").await;
    let kinds: Vec<String> = ledger_kinds(app, "u")
        .await
        .into_iter()
        .map(|k| format!("{} {}", k.0, k.1))
        .collect();
    assert_eq!(
        &kinds[kinds.len() - 3..],
        ["freeze -100", "unfreeze 100", "clawback -100"]
    );
    let payment = &app.get("/v1/payments?customer=u").await.body["data"][0];
    assert_eq!(payment["status"], "succeeded");
}

async fn a_dispute_after_a_partial_refund_takes_only_what_is_left(app: &TestApp) {
    app.customer("u").await;
    let pi = buy(app, "u", "pm_card_visa").await;
    refund(app, &pi, Some(400), "r1").await;
    wait_for(app, "u", "65", "0").await;
    // A second purchase is disputed and lost after part of it was refunded.
    let pi2 = buy(app, "u", "pm_card_createDispute").await;
    let _ = pi2;
    let dispute = dispute_of(app, &pi2).await;
    let expected_frozen = (dispute.amount as f64 / 10.0).min(100.0);
    wait_for(
        app,
        "u",
        &(165.0 - expected_frozen).to_string(),
        &expected_frozen.to_string(),
    )
    .await;
    app.stripe
        .update_dispute_evidence(&dispute.id, "losing_evidence", true)
        .await
        .unwrap();
    wait_for(app, "u", "65", "0").await;
}

async fn reconciliation_recovers_dropped_refund_events(app: &TestApp) {
    app.customer("u").await;
    let pi = buy(app, "u", "pm_card_visa").await;
    // Every refund event is lost on the way, as in an outage.
    app.sandbox.set_webhook_url(None);
    refund(app, &pi, Some(500), "r1").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.balance("u").await.0, "105", "nothing arrived");
    let report = creditd::billing::reconcile::reconcile(&app.state(), 3 * 86_400)
        .await
        .unwrap();
    assert!(report.events_recovered >= 1, "{report:?}");
    assert_eq!(app.balance("u").await.0, "55");
    let again = creditd::billing::reconcile::reconcile(&app.state(), 3 * 86_400)
        .await
        .unwrap();
    assert_eq!(
        (again.events_recovered, again.payments_changed),
        (0, 0),
        "a second run changes nothing: {again:?}"
    );
    let events = app.get("/v1/stripe/events?status=failed").await;
    assert_eq!(events.status, 200);
    assert!(events.body["data"].as_array().unwrap().is_empty());
}
