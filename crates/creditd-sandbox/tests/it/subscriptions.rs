//! Subscriptions through `StripeClient`: start via Checkout, renewals on the
//! sandbox clock, failed renewals and recovery, plan changes, cancellation,
//! the customer portal, with Stripe's event sets.

use std::collections::BTreeSet;

use creditd_sandbox::SandboxHandle;
use creditd_stripe::{Proration, StripeError};
use serde_json::Value;

use crate::helpers::*;

const DAY: i64 = 24 * 3600;

/// Types of the events about `id` recorded since event number `from`.
async fn types_since(sb: &SandboxHandle, from: usize, id: &str) -> Vec<String> {
    sb.read(|s| {
        s.events[from..]
            .iter()
            .filter(|e| e.object["id"] == id)
            .map(|e| e.type_.clone())
            .collect()
    })
    .await
}

async fn event_count(sb: &SandboxHandle) -> usize {
    sb.read(|s| s.events.len()).await
}

fn set(types: &[&str]) -> BTreeSet<String> {
    types.iter().map(|t| (*t).to_owned()).collect()
}

#[tokio::test]
async fn checkout_starts_a_subscription_with_stripes_event_set() {
    let hook = Receiver::start(0).await;
    let sb = sandbox(Some(hook.url.clone())).await;
    let c = client(&sb);
    let (cus, price, sub_id) = subscribe(&c, "start", 2000, "4242 4242 4242 4242").await;
    let session_id = sb.read(|s| s.checkout_sessions.keys().next().cloned()).await.unwrap();
    let page = browser()
        .get(format!("{}pay/{session_id}", sb.base_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("20.00 USD every month"), "{page}");
    assert!(price.recurring && price.interval.as_deref() == Some("month"));
    let sub = c.retrieve_subscription(&sub_id).await.unwrap();
    assert_eq!((sub.status.as_str(), sub.customer.as_str()), ("active", cus.as_str()));
    assert_eq!(sub.price, price.id);
    assert!(!sub.cancel_at_period_end);
    assert_eq!(sub.metadata, vec![("plan".to_owned(), "start".to_owned())]);
    let length = sub.current_period_end - sub.current_period_start;
    assert!((28 * DAY..=31 * DAY).contains(&length), "a month: {length}");
    let invoice = c
        .retrieve_invoice(sub.latest_invoice.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(
        (
            invoice.status.as_str(),
            invoice.paid,
            invoice.amount_paid,
            invoice.billing_reason.as_deref()
        ),
        ("paid", true, 2000, Some("subscription_create"))
    );
    assert_eq!(invoice.subscription.as_deref(), Some(sub_id.as_str()));
    assert_eq!(invoice.customer.as_deref(), Some(cus.as_str()));
    assert_eq!(invoice.price.as_deref(), Some(price.id.as_str()));
    assert_eq!(
        (invoice.period_start, invoice.period_end),
        (sub.current_period_start, sub.current_period_end),
        "the line's period is the subscription's"
    );
    let session_events = sb
        .read(|s| {
            s.events
                .iter()
                .find(|e| e.type_ == "checkout.session.completed")
                .map(|e| e.object.clone())
        })
        .await
        .unwrap();
    assert_eq!(session_events["subscription"], sub_id.as_str());
    assert_eq!(session_events["mode"], "subscription");
    // Stripe's set for a subscription start.
    let (sub_types, invoice_types) = (
        types_since(&sb, 0, &sub_id).await,
        types_since(&sb, 0, &invoice.id).await,
    );
    assert_eq!(
        sub_types,
        ["customer.subscription.created", "customer.subscription.updated"]
    );
    assert_eq!(
        invoice_types,
        [
            "invoice.created",
            "invoice.finalized",
            "invoice.paid",
            "invoice.payment_succeeded"
        ]
    );
    let statuses: Vec<String> = sb
        .read(|s| {
            s.events
                .iter()
                .filter(|e| e.object["id"] == sub_id.as_str())
                .map(|e| e.object["status"].as_str().unwrap().to_owned())
                .collect()
        })
        .await;
    assert_eq!(statuses, ["incomplete", "active"]);
    hook.wait_for("invoice.paid", |evs| evs.iter().any(|e| e["type"] == "invoice.paid"))
        .await;
    // Lists: by customer and by subscription.
    assert_eq!(
        c.list_subscriptions_for_customer(&cus).await.unwrap(),
        vec![sub.clone()]
    );
    assert_eq!(c.list_invoices_for_subscription(&sub_id).await.unwrap(), vec![invoice]);
    sb.shutdown().await;
}

#[tokio::test]
async fn advancing_the_clock_renews_every_period() {
    let sb = sandbox(None).await;
    let c = client(&sb);
    let (_, price, sub_id) = subscribe(&c, "renew", 1500, "4242424242424242").await;
    let first = c.retrieve_subscription(&sub_id).await.unwrap();
    let before = event_count(&sb).await;
    let now = sb.now().await;
    sb.advance_clock(first.current_period_end - now + 60).await.unwrap();
    let renewed = c.retrieve_subscription(&sub_id).await.unwrap();
    assert_eq!(renewed.status, "active");
    assert_eq!(renewed.current_period_start, first.current_period_end);
    assert!(renewed.current_period_end > renewed.current_period_start + 27 * DAY);
    let invoice = c
        .retrieve_invoice(renewed.latest_invoice.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(
        (invoice.billing_reason.as_deref(), invoice.paid, invoice.amount_paid),
        (Some("subscription_cycle"), true, 1500)
    );
    assert_eq!(invoice.price.as_deref(), Some(price.id.as_str()));
    assert_eq!(
        (invoice.period_start, invoice.period_end),
        (renewed.current_period_start, renewed.current_period_end)
    );
    let (_, raw) = get_json(&sb, &format!("v1/invoices/{}", invoice.id)).await;
    assert_eq!(
        (raw["period_start"].as_i64(), raw["period_end"].as_i64()),
        (Some(first.current_period_start), Some(first.current_period_end)),
        "Stripe's invoice-level period is the previous one on renewals"
    );
    assert_eq!(
        types_since(&sb, before, &invoice.id).await,
        [
            "invoice.created",
            "invoice.finalized",
            "invoice.paid",
            "invoice.payment_succeeded"
        ]
    );
    assert_eq!(
        types_since(&sb, before, &sub_id).await,
        ["customer.subscription.updated"]
    );
    // Two more months over HTTP: two more renewals, in order.
    let resp = reqwest::Client::new()
        .post(format!("{}_sandbox/clock/advance", sb.base_url))
        .bearer_auth(SECRET_KEY)
        .header("content-type", "application/json")
        .body(format!("{{\"seconds\": {}}}", 62 * DAY))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["now"].as_i64(), Some(sb.now().await));
    let invoices = c.list_invoices_for_subscription(&sub_id).await.unwrap();
    let reasons: Vec<&str> = invoices.iter().filter_map(|i| i.billing_reason.as_deref()).collect();
    assert_eq!(
        reasons,
        [
            "subscription_cycle",
            "subscription_cycle",
            "subscription_cycle",
            "subscription_create"
        ]
    );
    assert!(
        invoices.windows(2).all(|w| w[0].period_start == w[1].period_end),
        "contiguous periods"
    );
    assert!(sb.advance_clock(-1).await.is_err(), "the clock only moves forward");
    sb.shutdown().await;
}

#[tokio::test]
async fn a_card_that_fails_on_renewal_goes_past_due_and_recovers() {
    let sb = sandbox(None).await;
    let c = client(&sb);
    let (_, _, sub_id) = subscribe(&c, "dunning", 2000, "4000 0000 0000 0341").await;
    let sub = c.retrieve_subscription(&sub_id).await.unwrap();
    assert_eq!(sub.status, "active", "the first invoice is paid");
    let before = event_count(&sb).await;
    sb.advance_clock(sub.current_period_end - sb.now().await + 60)
        .await
        .unwrap();
    let sub = c.retrieve_subscription(&sub_id).await.unwrap();
    assert_eq!(sub.status, "past_due");
    let invoice = c
        .retrieve_invoice(sub.latest_invoice.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(
        (invoice.status.as_str(), invoice.paid, invoice.attempt_count),
        ("open", false, 1)
    );
    assert!(invoice.next_payment_attempt.is_some());
    assert_eq!(
        types_since(&sb, before, &invoice.id).await,
        ["invoice.created", "invoice.finalized", "invoice.payment_failed"]
    );
    let sub_events: Vec<Value> = sb
        .read(|s| {
            s.events[before..]
                .iter()
                .filter(|e| e.object["id"] == sub_id.as_str())
                .map(|e| e.object.clone())
                .collect()
        })
        .await;
    assert_eq!(sub_events.last().unwrap()["status"], "past_due");
    // Paying the saved card again fails; a new card pays.
    match c.pay_invoice(&invoice.id, None, "dunning-pay-1").await {
        Err(StripeError::Card { .. }) => {}
        other => panic!("expected a decline, got {other:?}"),
    }
    let paid = c
        .pay_invoice(&invoice.id, Some("pm_card_visa"), "dunning-pay-2")
        .await
        .unwrap();
    assert!(paid.paid);
    assert_eq!(c.retrieve_subscription(&sub_id).await.unwrap().status, "active");
    let types = types_since(&sb, before, &invoice.id).await;
    assert!(types.contains(&"invoice.paid".to_owned()), "{types:?}");
    sb.shutdown().await;
}

#[tokio::test]
async fn retries_use_a_new_payment_method_or_end_the_subscription() {
    let sb = sandbox(None).await;
    let c = client(&sb);
    let (_, _, fixed) = subscribe(&c, "retry-fixed", 1000, "4000000000000341").await;
    let (_, _, lost) = subscribe(&c, "retry-lost", 1000, "4000000000000341").await;
    let end = c.retrieve_subscription(&fixed).await.unwrap().current_period_end;
    sb.advance_clock(end - sb.now().await + 60).await.unwrap();
    for id in [&fixed, &lost] {
        assert_eq!(c.retrieve_subscription(id).await.unwrap().status, "past_due");
    }
    c.set_subscription_payment_method(&fixed, "pm_card_visa", "retry-pm")
        .await
        .unwrap();
    // Stripe-like schedule: retries after 3, 5 and 7 days, then cancel.
    sb.advance_clock(3 * DAY + 60).await.unwrap();
    let recovered = c.retrieve_subscription(&fixed).await.unwrap();
    assert_eq!(recovered.status, "active");
    let inv = c
        .retrieve_invoice(recovered.latest_invoice.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!((inv.paid, inv.attempt_count), (true, 2));
    assert_eq!(c.retrieve_subscription(&lost).await.unwrap().status, "past_due");
    let before = event_count(&sb).await;
    sb.advance_clock(4 * DAY + 60).await.unwrap();
    let ended = c.retrieve_subscription(&lost).await.unwrap();
    assert_eq!(ended.status, "canceled");
    assert!(ended.ended_at.is_some());
    let types = types_since(&sb, before, &lost).await;
    assert_eq!(types.last().map(String::as_str), Some("customer.subscription.deleted"));
    let failed = c
        .retrieve_invoice(ended.latest_invoice.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!((failed.status.as_str(), failed.attempt_count), ("open", 4));
    sb.shutdown().await;
}

#[tokio::test]
async fn plan_changes_prorate_now_or_at_renewal() {
    let sb = sandbox(None).await;
    let c = client(&sb);
    let (_, basic, sub_id) = subscribe(&c, "plans", 1000, "4242424242424242").await;
    let pro = c
        .create_recurring_price("Pro", 3000, "usd", "month", "price-plans-pro")
        .await
        .unwrap();
    let start = c.retrieve_subscription(&sub_id).await.unwrap();
    let half = (start.current_period_end - start.current_period_start) / 2;
    sb.advance_clock(half).await.unwrap();
    let before = event_count(&sb).await;
    let upgraded = c
        .update_subscription_price(&sub_id, &pro.id, Proration::AlwaysInvoice, "plans-up")
        .await
        .unwrap();
    assert_eq!(
        (upgraded.price.as_str(), upgraded.status.as_str()),
        (pro.id.as_str(), "active")
    );
    assert_eq!(upgraded.current_period_end, start.current_period_end, "same period");
    let invoice = c
        .retrieve_invoice(upgraded.latest_invoice.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(invoice.billing_reason.as_deref(), Some("subscription_update"));
    assert!(invoice.paid);
    // About half of the 2000 difference, to the cent of the remaining share.
    assert!((990..=1010).contains(&invoice.amount_paid), "{invoice:?}");
    assert_eq!(invoice.price.as_deref(), Some(pro.id.as_str()));
    let (_, raw) = get_json(&sb, &format!("v1/invoices/{}", invoice.id)).await;
    let amounts: Vec<i64> = raw["lines"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["amount"].as_i64().unwrap())
        .collect();
    assert!(amounts.len() == 2 && amounts[0] < 0 && amounts[1] > 0, "{amounts:?}");
    assert_eq!(
        set(&types_since(&sb, before, &sub_id)
            .await
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()),
        set(&["customer.subscription.updated"])
    );
    // Downgrade with the default proration: no invoice now, credit on the next.
    let down = c
        .update_subscription_price(&sub_id, &basic.id, Proration::CreateProrations, "plans-down")
        .await
        .unwrap();
    assert_eq!(down.latest_invoice, upgraded.latest_invoice, "no invoice now");
    sb.advance_clock(start.current_period_end - sb.now().await + 60)
        .await
        .unwrap();
    let renewed = c.retrieve_subscription(&sub_id).await.unwrap();
    let next = c
        .retrieve_invoice(renewed.latest_invoice.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(next.billing_reason.as_deref(), Some("subscription_cycle"));
    assert_eq!(next.price.as_deref(), Some(basic.id.as_str()));
    assert!(
        next.amount_paid < 1000,
        "the downgrade credit reduces the renewal: {next:?}"
    );
    // A price in another currency, or one-time, is refused.
    let one_time = c
        .create_product_and_price("Once", 500, "usd", "plans-once")
        .await
        .unwrap();
    assert!(matches!(
        c.update_subscription_price(&sub_id, &one_time.id, Proration::None, "plans-bad")
            .await,
        Err(StripeError::InvalidRequest { status: 400, .. })
    ));
    sb.shutdown().await;
}

#[tokio::test]
async fn cancel_at_period_end_then_deleted_and_cancel_now() {
    let sb = sandbox(None).await;
    let c = client(&sb);
    let (cus, _, sub_id) = subscribe(&c, "cancel", 1000, "4242424242424242").await;
    let before = event_count(&sb).await;
    let sub = c.set_cancel_at_period_end(&sub_id, true, "cancel-1").await.unwrap();
    assert!(sub.cancel_at_period_end);
    assert_eq!(sub.status, "active");
    let updated = sb
        .read(|s| {
            s.events
                .last()
                .map(|e| (e.type_.clone(), e.object["cancel_at_period_end"].clone()))
        })
        .await
        .unwrap();
    assert_eq!(updated, ("customer.subscription.updated".to_owned(), Value::Bool(true)));
    sb.advance_clock(sub.current_period_end - sb.now().await + 60)
        .await
        .unwrap();
    let ended = c.retrieve_subscription(&sub_id).await.unwrap();
    assert_eq!(ended.status, "canceled");
    assert_eq!(ended.ended_at, Some(sub.current_period_end));
    assert_eq!(
        types_since(&sb, before, &sub_id).await,
        ["customer.subscription.updated", "customer.subscription.deleted"]
    );
    assert_eq!(
        c.list_invoices_for_subscription(&sub_id).await.unwrap().len(),
        1,
        "no renewal"
    );
    // Cancel at once.
    let (_, _, now_id) = subscribe(&c, "cancel-now", 1000, "4242424242424242").await;
    let gone = c.cancel_subscription(&now_id).await.unwrap();
    assert_eq!(gone.status, "canceled");
    assert!(gone.canceled_at.is_some() && gone.ended_at.is_some());
    assert!(matches!(
        c.cancel_subscription(&now_id).await,
        Err(StripeError::InvalidRequest { status: 400, .. })
    ));
    let all = c.list_subscriptions_for_customer(&cus).await.unwrap();
    assert_eq!(all.len(), 1);
    let (_, active_only) = get_json(&sb, &format!("v1/subscriptions?customer={cus}")).await;
    assert_eq!(
        active_only["data"].as_array().unwrap().len(),
        0,
        "canceled are hidden by default"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn the_billing_portal_switches_plan_and_cancels() {
    let sb = sandbox(None).await;
    let c = client(&sb);
    let (cus, _, sub_id) = subscribe(&c, "portal", 1000, "4242424242424242").await;
    let pro = c
        .create_recurring_price("Portal Pro", 2500, "usd", "month", "price-portal-pro")
        .await
        .unwrap();
    let session = c
        .create_billing_portal_session(&cus, Some("https://app.example/account"))
        .await
        .unwrap();
    assert!(session.id.starts_with("bps_"));
    assert_eq!(session.url, format!("{}portal/{}", sb.base_url, session.id));
    let page = browser().get(&session.url).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("Switch to Portal Pro") && page.contains("Cancel at the end"),
        "{page}"
    );
    assert!(page.contains("https://app.example/account") && !page.contains("<script"));
    let form = |fields: &[(&str, &str)]| {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish()
    };
    let post = |path: &str, body: String| {
        browser()
            .post(format!("{}/{path}", session.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let resp = post("switch", form(&[("subscription", &sub_id), ("price", &pro.id)]))
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let sub = c.retrieve_subscription(&sub_id).await.unwrap();
    assert_eq!(sub.price, pro.id);
    let invoice = c
        .retrieve_invoice(sub.latest_invoice.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(invoice.billing_reason.as_deref(), Some("subscription_update"));
    let resp = post("cancel", form(&[("subscription", &sub_id)])).await.unwrap();
    assert_eq!(resp.status(), 303);
    assert!(c.retrieve_subscription(&sub_id).await.unwrap().cancel_at_period_end);
    // Another customer's subscription is not reachable from this session.
    let (_, _, other) = subscribe(&c, "portal-other", 1000, "4242424242424242").await;
    let resp = post("cancel", form(&[("subscription", &other)])).await.unwrap();
    assert_eq!(resp.status(), 404);
    assert!(!c.retrieve_subscription(&other).await.unwrap().cancel_at_period_end);
    assert!(matches!(
        c.create_billing_portal_session("cus_nope", None).await,
        Err(StripeError::InvalidRequest { status: 404, .. })
    ));
    sb.shutdown().await;
}
