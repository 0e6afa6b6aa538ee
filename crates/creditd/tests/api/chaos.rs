//! The chaos test: many customers, hundreds of purchases, refunds and disputes through the
//! sandbox while webhooks are duplicated, shuffled and 30% dropped. After reconciliation
//! every balance equals what Stripe's state implies, computed here independently.

use std::collections::BTreeMap;
use std::time::Duration;

use creditd_sandbox::Faults;
use creditd_stripe::client::RefundParams;
use serde_json::json;

use crate::helpers::{on_both_backends, TestApp};

on_both_backends!(settings = no_purchase_limit; credits_follow_the_money_through_lost_duplicated_and_shuffled_webhooks);

/// The simulation buys far more often per customer than the default purchase limit allows.
fn no_purchase_limit() -> creditd::config::Settings {
    creditd::config::Settings {
        purchase_rate_limit_per_minute: 0,
        ..crate::helpers::test_settings()
    }
}

const CUSTOMERS: usize = 8;
const PURCHASES_PER_CUSTOMER: usize = 25;
/// Each purchase: 100 credits for 10.00 USD.
const PRICE: i64 = 1000;
const CREDITS_MICROS: i64 = 100_000_000;

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

async fn credits_follow_the_money_through_lost_duplicated_and_shuffled_webhooks(app: &TestApp) {
    app.sandbox
        .set_faults(Faults {
            duplicates: 1,
            shuffle_window: 8,
            delay_ms: 0,
            drop_rate: 0.3,
            seed: 7,
            ..Faults::default()
        })
        .unwrap();
    let pkg = app
        .post(
            "/v1/packages",
            json!({"name": "Ten", "credits": "100", "price": PRICE, "currency": "usd"}),
        )
        .await;
    let pkg = pkg.body["id"].as_str().unwrap().to_string();
    let mut rng = Rng(42);
    let mut intents: Vec<(String, String)> = Vec::new(); // (customer, payment intent)
    for c in 0..CUSTOMERS {
        let customer = format!("chaos_{c}");
        app.customer(&customer).await;
        for p in 0..PURCHASES_PER_CUSTOMER {
            let created = app
                .post("/v1/payment-intents", json!({"customer": customer, "package": pkg}))
                .await;
            assert_eq!(created.status, 201, "{}", created.text);
            let pi = created.body["id"].as_str().unwrap().to_string();
            let method = match rng.below(10) {
                0 => "pm_card_chargeDeclined",
                1 | 2 => "pm_card_createDispute",
                3 => "pm_card_refundFail",
                _ => "pm_card_visa",
            };
            let _ = app
                .stripe
                .confirm_payment_intent(&pi, method, &format!("c-{c}-{p}"))
                .await;
            intents.push((customer.clone(), pi));
        }
    }
    // Refunds: some partial, some full, some twice.
    let mut refunds = 0;
    for (i, (_, pi)) in intents.iter().enumerate() {
        let charge_ok = app.stripe.retrieve_payment_intent(pi).await.unwrap().status == "succeeded";
        if !charge_ok || rng.below(3) != 0 {
            continue;
        }
        for (n, amount) in [(0, Some(1 + rng.below(600) as i64)), (1, None)] {
            if n == 1 && rng.below(2) == 0 {
                break;
            }
            let params = RefundParams {
                payment_intent: Some(pi.clone()),
                charge: None,
                amount,
                idempotency_key: format!("r-{i}-{n}"),
            };
            // Disputed charges cannot be refunded: Stripe refuses, and so does the sandbox.
            if app.stripe.create_refund(params).await.is_ok() {
                refunds += 1;
            }
        }
    }
    // Disputes open after a short delay; close two thirds of them, won or lost.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut disputes = 0;
    for (_, pi) in &intents {
        let Some(charge) = app.stripe.retrieve_payment_intent(pi).await.unwrap().latest_charge else {
            continue;
        };
        for dispute in app.stripe.list_disputes_for_charge(&charge).await.unwrap() {
            disputes += 1;
            match rng.below(3) {
                0 => drop(
                    app.stripe
                        .update_dispute_evidence(&dispute.id, "winning_evidence", true)
                        .await
                        .unwrap(),
                ),
                1 => drop(
                    app.stripe
                        .update_dispute_evidence(&dispute.id, "losing_evidence", true)
                        .await
                        .unwrap(),
                ),
                _ => {}
            }
        }
    }
    // Let failing refunds fail and every surviving delivery land.
    tokio::time::sleep(Duration::from_millis(600)).await;
    for _ in 0..400 {
        if app.sandbox.pending_deliveries().await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    app.wait_until_events_handled().await;
    let before = app.db.store.verify().await.unwrap();
    assert!(
        before.is_clean(),
        "the books balance even before reconciling: {:?}",
        before.problems
    );
    let report = creditd::billing::reconcile::reconcile(&app.state(), 86_400)
        .await
        .unwrap();
    let stats = app.sandbox.delivery_stats();
    println!(
        "chaos: {} purchases, {refunds} refunds, {disputes} disputes; events {} sent {} delivered {} duplicated {} dropped {}; \
         reconcile saw {} events, recovered {}, re-converged {} of {} payments",
        intents.len(),
        stats.events,
        stats.sent,
        stats.delivered,
        stats.duplicated,
        stats.dropped,
        report.events_seen,
        report.events_recovered,
        report.payments_changed,
        report.payments_checked
    );
    assert!(
        stats.dropped > 0 && stats.duplicated > 0,
        "the faults happened: {stats:?}"
    );
    assert_eq!(report.events_failed, 0, "{:?}", report.changes);

    // What Stripe's state implies, computed independently of creditd.
    let mut expected: BTreeMap<String, i64> = (0..CUSTOMERS).map(|c| (format!("chaos_{c}"), 5_000_000)).collect();
    let mut expected_frozen: BTreeMap<String, i64> = BTreeMap::new();
    for (customer, pi) in &intents {
        let intent = app.stripe.retrieve_payment_intent(pi).await.unwrap();
        if intent.status != "succeeded" {
            continue;
        }
        let charge = app
            .stripe
            .retrieve_charge(intent.latest_charge.as_deref().unwrap())
            .await
            .unwrap();
        let dispute = app
            .stripe
            .list_disputes_for_charge(&charge.id)
            .await
            .unwrap()
            .into_iter()
            .next();
        let lost = dispute.as_ref().filter(|d| d.status == "lost").map_or(0, |d| d.amount);
        let taken = (charge.amount_refunded + lost).min(PRICE);
        let clawed = CREDITS_MICROS * taken / PRICE;
        let open = dispute
            .as_ref()
            .is_some_and(|d| matches!(d.status.as_str(), "needs_response" | "under_review"));
        let frozen = if open {
            (CREDITS_MICROS * dispute.unwrap().amount / PRICE).min(CREDITS_MICROS - clawed)
        } else {
            0
        };
        *expected.get_mut(customer).unwrap() += CREDITS_MICROS - clawed - frozen;
        *expected_frozen.entry(customer.clone()).or_default() += frozen;
    }
    for (customer, micros) in &expected {
        let got = app.db.store.customer(customer, app.clock.now()).await.unwrap().unwrap();
        assert_eq!(got.balance.micros(), *micros, "{customer}: balance");
        assert_eq!(
            got.frozen.micros(),
            expected_frozen.get(customer).copied().unwrap_or(0),
            "{customer}: frozen"
        );
    }
    let again = creditd::billing::reconcile::reconcile(&app.state(), 86_400)
        .await
        .unwrap();
    assert_eq!(
        (again.events_recovered, again.payments_changed),
        (0, 0),
        "reconciling twice changes nothing"
    );
}
