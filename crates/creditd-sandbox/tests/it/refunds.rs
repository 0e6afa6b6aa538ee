//! Refunds through `StripeClient`: full, partial, cumulative, refused, and
//! refunds that fail later.

use creditd_stripe::{RefundParams, StripeError};
use serde_json::Value;

use crate::helpers::*;

fn by_pi(pi: &str, amount: Option<i64>, key: &str) -> RefundParams {
    RefundParams {
        payment_intent: Some(pi.into()),
        charge: None,
        amount,
        idempotency_key: key.into(),
    }
}

fn by_charge(charge: &str, amount: Option<i64>, key: &str) -> RefundParams {
    RefundParams {
        payment_intent: None,
        charge: Some(charge.into()),
        amount,
        idempotency_key: key.into(),
    }
}

fn invalid_code(result: Result<creditd_stripe::Refund, StripeError>) -> (u16, String) {
    match result {
        Err(StripeError::InvalidRequest { status, code, .. }) => (status, code.unwrap_or_default()),
        other => panic!("expected an invalid request, got {other:?}"),
    }
}

/// The `charge.refunded` snapshots of a charge: (amount_refunded, refunded).
async fn charge_refunded_snapshots(sb: &creditd_sandbox::SandboxHandle, charge: &str) -> Vec<(i64, bool)> {
    sb.read(|s| {
        s.events
            .iter()
            .filter(|e| e.type_ == "charge.refunded" && e.object["id"] == charge)
            .map(|e| {
                (
                    e.object["amount_refunded"].as_i64().unwrap(),
                    e.object["refunded"].as_bool().unwrap(),
                )
            })
            .collect()
    })
    .await
}

#[tokio::test]
async fn full_refund_by_payment_intent() {
    let hook = Receiver::start(0).await;
    let sb = sandbox(Some(hook.url.clone())).await;
    let c = client(&sb);
    let (cus, _) = customer_and_price(&c, "re-full").await;
    let (pi, charge) = paid_intent(&c, &cus, "pm_card_visa", 1500, "re-full").await;
    let refund = c.create_refund(by_pi(&pi, None, "re-full-1")).await.unwrap();
    assert!(refund.id.starts_with("re_"), "{refund:?}");
    assert_eq!(
        (refund.amount, refund.status.as_str(), refund.currency.as_str()),
        (1500, "succeeded", "usd")
    );
    assert_eq!(refund.charge.as_deref(), Some(charge.as_str()));
    assert_eq!(refund.payment_intent.as_deref(), Some(pi.as_str()));
    assert_eq!(c.retrieve_refund(&refund.id).await.unwrap(), refund);
    let ch = c.retrieve_charge(&charge).await.unwrap();
    assert_eq!((ch.amount_refunded, ch.refunded, ch.disputed), (1500, true, false));
    // The same idempotency key replays; a new one finds nothing left.
    assert_eq!(c.create_refund(by_pi(&pi, None, "re-full-1")).await.unwrap(), refund);
    assert_eq!(
        invalid_code(c.create_refund(by_pi(&pi, None, "re-full-2")).await),
        (400, "charge_already_refunded".into())
    );
    // Stripe's event set for a full refund.
    let types = event_types_for(&sb, &refund.id).await;
    assert_eq!(types, ["refund.created", "refund.updated"]);
    assert_eq!(charge_refunded_snapshots(&sb, &charge).await, [(1500, true)]);
    hook.wait_for("the refund events", |evs| {
        let t = types_of(evs);
        ["charge.refunded", "refund.created", "refund.updated"]
            .iter()
            .all(|w| t.iter().any(|x| x == w))
    })
    .await;
    sb.shutdown().await;
}

#[tokio::test]
async fn three_partial_refunds_add_up_to_the_whole() {
    let sb = sandbox(None).await;
    let c = client(&sb);
    let (cus, _) = customer_and_price(&c, "re-part").await;
    let (_, charge) = paid_intent(&c, &cus, "pm_card_visa", 1000, "re-part").await;
    let mut ids = Vec::new();
    for (i, amount) in [300, 300, 400].into_iter().enumerate() {
        let r = c
            .create_refund(by_charge(&charge, Some(amount), &format!("re-part-{i}")))
            .await
            .unwrap();
        assert_eq!((r.amount, r.status.as_str()), (amount, "succeeded"));
        ids.push(r.id);
    }
    assert_eq!(
        charge_refunded_snapshots(&sb, &charge).await,
        [(300, false), (600, false), (1000, true)],
        "each charge.refunded carries the cumulative amount"
    );
    let ch = c.retrieve_charge(&charge).await.unwrap();
    assert_eq!((ch.amount_refunded, ch.refunded), (1000, true));
    let listed: Vec<String> = c
        .list_refunds_for_charge(&charge)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    ids.reverse();
    assert_eq!(listed, ids, "newest first");
    let (_, raw) = get_json(&sb, &format!("v1/charges/{charge}")).await;
    assert_eq!(raw["refunds"]["data"].as_array().unwrap().len(), 3);
    assert_eq!(raw["refunds"]["data"][0]["id"], listed[0].as_str());
    sb.shutdown().await;
}

#[tokio::test]
async fn over_refunds_and_bad_requests_are_refused() {
    let sb = sandbox(None).await;
    let c = client(&sb);
    let (cus, _) = customer_and_price(&c, "re-over").await;
    let (pi, charge) = paid_intent(&c, &cus, "pm_card_visa", 1000, "re-over").await;
    c.create_refund(by_charge(&charge, Some(700), "re-over-1"))
        .await
        .unwrap();
    let resp = post_form(&sb, "v1/refunds", &[("charge", &charge), ("amount", "301")], None).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "amount_too_large");
    assert_eq!(body["error"]["param"], "amount");
    assert_eq!(
        body["error"]["message"],
        "Refund amount (3.01USD) is greater than unrefunded amount on charge (3.00USD)"
    );
    assert_eq!(
        invalid_code(c.create_refund(by_pi(&pi, Some(301), "re-over-2")).await),
        (400, "amount_too_large".into())
    );
    assert_eq!(c.retrieve_charge(&charge).await.unwrap().amount_refunded, 700);
    // Neither charge nor intent; unknown charge; an intent not paid; zero.
    assert_eq!(
        post_form(&sb, "v1/refunds", &[("amount", "1")], None).await.status(),
        400
    );
    assert_eq!(
        invalid_code(c.create_refund(by_charge("ch_nope", None, "re-over-3")).await).0,
        404
    );
    let unpaid = c
        .create_payment_intent(creditd_stripe::PaymentIntentParams {
            customer: cus.clone(),
            amount: 500,
            currency: "usd".into(),
            metadata: vec![],
            idempotency_key: "re-over-unpaid".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        invalid_code(c.create_refund(by_pi(&unpaid.id, None, "re-over-4")).await),
        (400, "charge_not_refundable".into())
    );
    let resp = post_form(&sb, "v1/refunds", &[("charge", &charge), ("amount", "0")], None).await;
    assert_eq!(resp.status(), 400);
    let resp = post_form(&sb, "v1/refunds", &[("charge", &charge), ("reason", "bored")], None).await;
    assert_eq!(resp.status(), 400);
    // The rest, with a reason and metadata, leaves the charge fully refunded.
    let resp = post_form(
        &sb,
        "v1/refunds",
        &[
            ("payment_intent", &pi),
            ("reason", "requested_by_customer"),
            ("metadata[ticket]", "42"),
        ],
        None,
    )
    .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        (
            body["amount"].as_i64(),
            body["reason"].as_str(),
            body["metadata"]["ticket"].as_str()
        ),
        (Some(300), Some("requested_by_customer"), Some("42"))
    );
    assert!(c.retrieve_charge(&charge).await.unwrap().refunded);
    sb.shutdown().await;
}

#[tokio::test]
async fn refunds_of_a_refund_fail_card_are_pending_then_fail() {
    let hook = Receiver::start(0).await;
    let sb = sandbox(Some(hook.url.clone())).await;
    let c = client(&sb);
    let (cus, _) = customer_and_price(&c, "re-fail").await;
    let (pi, charge) = paid_intent(&c, &cus, "pm_card_refundFail", 2000, "re-fail").await;
    let refund = c.create_refund(by_pi(&pi, Some(1200), "re-fail-1")).await.unwrap();
    assert_eq!(refund.status, "pending");
    assert_eq!(c.retrieve_charge(&charge).await.unwrap().amount_refunded, 1200);
    let failed = eventually("the refund to fail", || async {
        let r = c.retrieve_refund(&refund.id).await.unwrap();
        (r.status == "failed").then_some(r)
    })
    .await;
    assert_eq!(failed.failure_reason.as_deref(), Some("declined"));
    let ch = c.retrieve_charge(&charge).await.unwrap();
    assert_eq!(
        (ch.amount_refunded, ch.refunded),
        (0, false),
        "the amount is refundable again"
    );
    assert_eq!(
        event_types_for(&sb, &refund.id).await,
        ["refund.created", "refund.updated", "refund.failed"]
    );
    let events = hook
        .wait_for("refund.failed", |evs| evs.iter().any(|e| e["type"] == "refund.failed"))
        .await;
    let ev = events.iter().find(|e| e["type"] == "refund.failed").unwrap();
    assert_eq!(ev["data"]["object"]["status"], "failed");
    assert_eq!(ev["data"]["object"]["failure_reason"], "declined");
    sb.shutdown().await;
}

#[tokio::test]
async fn the_test_helper_fails_a_refund_on_demand() {
    let sb = sandbox(None).await;
    let c = client(&sb);
    let (cus, _) = customer_and_price(&c, "re-helper").await;
    let (_, charge) = paid_intent(&c, &cus, "pm_card_visa", 1000, "re-helper").await;
    let refund = c
        .create_refund(by_charge(&charge, Some(400), "re-helper-1"))
        .await
        .unwrap();
    assert_eq!(refund.status, "succeeded");
    let path = format!("v1/test_helpers/refunds/{}/fail", refund.id);
    let resp = post_form(&sb, &path, &[("failure_reason", "expired_or_canceled_card")], None).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        (body["status"].as_str(), body["failure_reason"].as_str()),
        (Some("failed"), Some("expired_or_canceled_card"))
    );
    assert_eq!(c.retrieve_charge(&charge).await.unwrap().amount_refunded, 0);
    // Only once; unknown refunds are 404.
    assert_eq!(post_form(&sb, &path, &[], None).await.status(), 400);
    assert_eq!(
        post_form(&sb, "v1/test_helpers/refunds/re_nope/fail", &[], None)
            .await
            .status(),
        404
    );
    // A pending refund failed by hand does not fail a second time later.
    let (pi, _) = paid_intent(&c, &cus, "pm_card_refundFail", 800, "re-helper-2").await;
    let pending = c.create_refund(by_pi(&pi, None, "re-helper-3")).await.unwrap();
    assert_eq!(pending.status, "pending");
    let path = format!("v1/test_helpers/refunds/{}/fail", pending.id);
    assert_eq!(post_form(&sb, &path, &[], None).await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let types = event_types_for(&sb, &pending.id).await;
    assert_eq!(types.iter().filter(|t| *t == "refund.failed").count(), 1, "{types:?}");
    assert_eq!(sb.read(|s| s.timers.len()).await, 0);
    sb.shutdown().await;
}
