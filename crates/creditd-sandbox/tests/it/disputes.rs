//! Disputes as in Stripe's test mode: the disputing test card, evidence that
//! wins or loses, and Stripe's exact event sets.

use std::collections::BTreeSet;

use creditd_stripe::{Dispute, RefundParams, StripeClient, StripeError};

use crate::helpers::*;

async fn dispute_of(c: &StripeClient, charge: &str) -> Dispute {
    eventually("the dispute to open", || async {
        c.list_disputes_for_charge(charge).await.unwrap().into_iter().next()
    })
    .await
}

async fn event_set(sb: &creditd_sandbox::SandboxHandle, dispute: &str) -> BTreeSet<String> {
    event_types_for(sb, dispute).await.into_iter().collect()
}

fn set(types: &[&str]) -> BTreeSet<String> {
    types.iter().map(|t| (*t).to_owned()).collect()
}

#[tokio::test]
async fn a_disputed_payment_won_with_evidence() {
    let hook = Receiver::start(0).await;
    let sb = sandbox(Some(hook.url.clone())).await;
    let c = client(&sb);
    let (cus, _) = customer_and_price(&c, "dp-won").await;
    let (pi, charge) = paid_intent(&c, &cus, "pm_card_createDispute", 2500, "dp-won").await;
    let dispute = dispute_of(&c, &charge).await;
    assert!(dispute.id.starts_with("dp_"), "{dispute:?}");
    assert_eq!(
        (dispute.amount, dispute.status.as_str(), dispute.reason.as_str()),
        (2500, "needs_response", "fraudulent")
    );
    assert_eq!(dispute.payment_intent.as_deref(), Some(pi.as_str()));
    assert_eq!(c.retrieve_dispute(&dispute.id).await.unwrap(), dispute);
    let ch = c.retrieve_charge(&charge).await.unwrap();
    assert!(ch.disputed && !ch.refunded);
    assert_eq!(
        event_set(&sb, &dispute.id).await,
        set(&["charge.dispute.created", "charge.dispute.funds_withdrawn"])
    );
    // A charged-back payment cannot also be refunded.
    let refused = c
        .create_refund(RefundParams {
            payment_intent: Some(pi.clone()),
            charge: None,
            amount: None,
            idempotency_key: "dp-won-refund".into(),
        })
        .await;
    assert!(
        matches!(&refused, Err(StripeError::InvalidRequest { code: Some(code), .. }) if code == "charge_disputed"),
        "{refused:?}"
    );

    let won = c
        .update_dispute_evidence(&dispute.id, "winning_evidence", true)
        .await
        .unwrap();
    assert_eq!(won.status, "won");
    assert!(won.is_closed());
    assert_eq!(
        event_set(&sb, &dispute.id).await,
        set(&[
            "charge.dispute.created",
            "charge.dispute.funds_withdrawn",
            "charge.dispute.updated",
            "charge.dispute.closed",
            "charge.dispute.funds_reinstated",
        ])
    );
    let (_, raw) = get_json(&sb, &format!("v1/disputes/{}", dispute.id)).await;
    assert_eq!(raw["balance_transactions"].as_array().unwrap().len(), 2);
    assert_eq!(raw["balance_transactions"][0]["amount"], -2500);
    assert_eq!(raw["balance_transactions"][1]["amount"], 2500);
    assert_eq!(raw["evidence"]["uncategorized_text"], "winning_evidence");
    assert!(c.retrieve_charge(&charge).await.unwrap().disputed, "stays disputed");
    let events = hook
        .wait_for("charge.dispute.closed", |evs| {
            evs.iter().any(|e| e["type"] == "charge.dispute.closed")
        })
        .await;
    let closed = events.iter().find(|e| e["type"] == "charge.dispute.closed").unwrap();
    assert_eq!(closed["data"]["object"]["status"], "won");
    // A closed dispute takes no more evidence.
    assert!(matches!(
        c.update_dispute_evidence(&dispute.id, "more", true).await,
        Err(StripeError::InvalidRequest { status: 400, .. })
    ));
    sb.shutdown().await;
}

#[tokio::test]
async fn a_disputed_checkout_payment_lost_with_evidence() {
    let sb = sandbox(None).await;
    let c = client(&sb);
    let (cus, price) = customer_and_price(&c, "dp-lost").await;
    let session = c
        .create_checkout_session(checkout_params(&cus, &price.id, "dp-lost"))
        .await
        .unwrap();
    let resp = pay(session.url.as_deref().unwrap(), &card("4000 0000 0000 0259")).await;
    assert_eq!(resp.status(), 303, "the payment itself succeeds");
    let session = c.retrieve_checkout_session(&session.id).await.unwrap();
    assert_eq!(session.payment_status, "paid");
    let pi = c
        .retrieve_payment_intent(session.payment_intent.as_deref().unwrap())
        .await
        .unwrap();
    let charge = pi.latest_charge.unwrap();
    let dispute = dispute_of(&c, &charge).await;
    assert_eq!((dispute.amount, dispute.status.as_str()), (2000, "needs_response"));
    // Staged evidence (submit=false) keeps it open.
    let staged = c
        .update_dispute_evidence(&dispute.id, "losing_evidence", false)
        .await
        .unwrap();
    assert_eq!(staged.status, "needs_response");
    let lost = c
        .update_dispute_evidence(&dispute.id, "losing_evidence", true)
        .await
        .unwrap();
    assert_eq!(lost.status, "lost");
    let types = event_types_for(&sb, &dispute.id).await;
    assert_eq!(
        types.iter().cloned().collect::<BTreeSet<_>>(),
        set(&[
            "charge.dispute.created",
            "charge.dispute.funds_withdrawn",
            "charge.dispute.updated",
            "charge.dispute.closed",
        ])
    );
    assert_eq!(types.iter().filter(|t| *t == "charge.dispute.updated").count(), 2);
    let (_, raw) = get_json(&sb, &format!("v1/disputes/{}", dispute.id)).await;
    assert_eq!(raw["balance_transactions"].as_array().unwrap().len(), 1);
    assert_eq!(raw["evidence_details"]["submission_count"], 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn evidence_under_review_and_accepting_a_dispute() {
    let sb = sandbox(None).await;
    let c = client(&sb);
    let (cus, _) = customer_and_price(&c, "dp-close").await;
    let (_, charge) = paid_intent(&c, &cus, "pm_card_createDispute", 900, "dp-close").await;
    let dispute = dispute_of(&c, &charge).await;
    let reviewed = c
        .update_dispute_evidence(&dispute.id, "The customer used the credits.", true)
        .await
        .unwrap();
    assert_eq!(reviewed.status, "under_review");
    let lost = c.close_dispute(&dispute.id).await.unwrap();
    assert_eq!(lost.status, "lost");
    assert!(!event_types_for(&sb, &dispute.id)
        .await
        .contains(&"charge.dispute.funds_reinstated".to_owned()));
    // Unknown evidence fields and disputes are refused; lists filter by charge.
    let resp = post_form(
        &sb,
        &format!("v1/disputes/{}", dispute.id),
        &[("evidence[colour]", "blue")],
        None,
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert!(matches!(
        c.retrieve_dispute("dp_nope").await,
        Err(StripeError::InvalidRequest { status: 404, .. })
    ));
    let (_, other_charge) = paid_intent(&c, &cus, "pm_card_visa", 100, "dp-close-2").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(c.list_disputes_for_charge(&other_charge).await.unwrap().is_empty());
    let (_, all) = get_json(&sb, "v1/disputes?limit=100").await;
    assert_eq!(all["data"].as_array().unwrap().len(), 1);
    sb.shutdown().await;
}
