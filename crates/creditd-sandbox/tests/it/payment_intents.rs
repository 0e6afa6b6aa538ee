//! PaymentIntents: create, confirm with Stripe's test payment methods.

use creditd_stripe::{PaymentIntentParams, StripeError};

use crate::helpers::*;

fn params(customer: &str, key: &str) -> PaymentIntentParams {
    PaymentIntentParams {
        customer: customer.into(),
        amount: 1500,
        currency: "usd".into(),
        metadata: vec![("package".into(), "pkg_150".into())],
        idempotency_key: key.into(),
    }
}

#[tokio::test]
async fn confirm_with_pm_card_visa_succeeds() {
    let sb = sandbox(None).await;
    let c = client(&sb);
    let (cus, _) = customer_and_price(&c, "pi-ok").await;
    let pi = c.create_payment_intent(params(&cus, "pi-ok")).await.unwrap();
    assert_eq!(pi.status, "requires_payment_method");
    let secret = pi.client_secret.clone().unwrap();
    assert!(secret.starts_with(&format!("{}_secret_", pi.id)), "{secret}");
    assert_eq!(pi.metadata, vec![("package".to_owned(), "pkg_150".to_owned())]);
    let done = c
        .confirm_payment_intent(&pi.id, "pm_card_visa", "confirm-ok")
        .await
        .unwrap();
    assert_eq!((done.status.as_str(), done.amount_received), ("succeeded", 1500));
    let charge = c.retrieve_charge(done.latest_charge.as_deref().unwrap()).await.unwrap();
    assert_eq!((charge.status.as_str(), charge.amount), ("succeeded", 1500));
    let types = sb
        .read(|s| s.events.iter().map(|e| e.type_.clone()).collect::<Vec<_>>())
        .await;
    let tail: Vec<&str> = types.iter().rev().take(3).rev().map(String::as_str).collect();
    assert_eq!(
        tail,
        ["payment_intent.created", "charge.succeeded", "payment_intent.succeeded"]
    );
    // A succeeded intent cannot be confirmed again.
    match c.confirm_payment_intent(&pi.id, "pm_card_visa", "confirm-again").await {
        Err(StripeError::InvalidRequest { code, .. }) => {
            assert_eq!(code.as_deref(), Some("payment_intent_unexpected_state"))
        }
        other => panic!("expected unexpected_state, got {other:?}"),
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn declines_are_402_card_errors_with_the_intent() {
    let sb = sandbox(None).await;
    let c = client(&sb);
    let (cus, _) = customer_and_price(&c, "pi-decline").await;
    for (pm, decline_code, key) in [
        ("pm_card_chargeDeclined", "generic_decline", "d1"),
        ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds", "d2"),
    ] {
        let pi = c.create_payment_intent(params(&cus, key)).await.unwrap();
        match c.confirm_payment_intent(&pi.id, pm, &format!("{key}-confirm")).await {
            Err(StripeError::Card {
                code,
                decline_code: dc,
                payment_intent,
                ..
            }) => {
                assert_eq!(code.as_deref(), Some("card_declined"));
                assert_eq!(dc.as_deref(), Some(decline_code));
                assert_eq!(
                    payment_intent.as_deref(),
                    Some(pi.id.as_str()),
                    "error carries the parsed intent"
                );
            }
            other => panic!("expected a card error, got {other:?}"),
        }
        let after = c.retrieve_payment_intent(&pi.id).await.unwrap();
        assert_eq!(after.status, "requires_payment_method");
        let charge = c
            .retrieve_charge(after.latest_charge.as_deref().unwrap())
            .await
            .unwrap();
        assert_eq!(charge.status, "failed");
        let (_, raw) = get_json(&sb, &format!("v1/payment_intents/{}", pi.id)).await;
        assert_eq!(raw["last_payment_error"]["decline_code"], decline_code);
    }
    let types = sb
        .read(|s| s.events.iter().map(|e| e.type_.clone()).collect::<Vec<_>>())
        .await;
    assert_eq!(types.iter().filter(|t| *t == "charge.failed").count(), 2);
    assert_eq!(
        types.iter().filter(|t| *t == "payment_intent.payment_failed").count(),
        2
    );
    // Unknown payment method token → 404 resource_missing.
    let pi = c.create_payment_intent(params(&cus, "d3")).await.unwrap();
    assert!(matches!(
        c.confirm_payment_intent(&pi.id, "pm_card_bogus", "d3c").await,
        Err(StripeError::InvalidRequest { status: 404, .. })
    ));
    sb.shutdown().await;
}

#[tokio::test]
async fn create_with_confirm_true_and_raw_status_codes() {
    let sb = sandbox(None).await;
    let c = client(&sb);
    let (cus, _) = customer_and_price(&c, "pi-raw").await;
    let resp = post_form(
        &sb,
        "v1/payment_intents",
        &[
            ("amount", "999"),
            ("currency", "usd"),
            ("customer", &cus),
            ("payment_method", "pm_card_visa"),
            ("confirm", "true"),
        ],
        None,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let pi: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(pi["status"], "succeeded");
    let resp = post_form(
        &sb,
        "v1/payment_intents",
        &[
            ("amount", "999"),
            ("currency", "usd"),
            ("payment_method", "pm_card_chargeDeclined"),
            ("confirm", "true"),
        ],
        None,
    )
    .await;
    assert_eq!(resp.status(), 402);
    let err: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["type"], "card_error");
    assert_eq!(err["error"]["payment_intent"]["status"], "requires_payment_method");
    let resp = post_form(
        &sb,
        "v1/payment_intents",
        &[("amount", "999"), ("currency", "usd"), ("customer", "cus_nope")],
        None,
    )
    .await;
    assert_eq!(resp.status(), 404);
    sb.shutdown().await;
}
