//! Every object the sandbox returns (1) parses with async-stripe rc.10's
//! strict types, end to end through `StripeClient` and directly, and (2) has
//! every top-level key of Stripe's own example object in fixtures3.json.

use serde_json::Value;

use crate::helpers::*;

fn fixtures() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/stripe/fixtures3.json");
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_slice::<Value>(&raw).unwrap()["resources"].clone()
}

fn assert_has_fixture_keys(kind: &str, ours: &Value) {
    let fixtures = fixtures();
    let fixture = fixtures[kind]
        .as_object()
        .unwrap_or_else(|| panic!("no fixture {kind}"));
    let ours = ours
        .as_object()
        .unwrap_or_else(|| panic!("{kind} is not an object: {ours}"));
    let missing: Vec<&String> = fixture.keys().filter(|k| !ours.contains_key(*k)).collect();
    assert!(
        missing.is_empty(),
        "{kind}: keys missing compared to Stripe's fixture: {missing:?}"
    );
    assert_eq!(ours["object"], fixture["object"], "{kind}: object tag");
}

/// Parses with async-stripe's own (miniserde) deserializer.
fn strict<T: miniserde::Deserialize>(kind: &str, v: &Value) -> T {
    miniserde::json::from_str(&v.to_string()).unwrap_or_else(|_| panic!("async-stripe cannot parse {kind}: {v:#}"))
}

#[tokio::test]
async fn every_object_parses_strictly_and_matches_the_fixture_keys() {
    let sb = sandbox(None).await;
    let c = client(&sb);
    // Through our client (which uses async-stripe's strict types).
    let (cus, price) = customer_and_price(&c, "shapes").await;
    assert!(cus.starts_with("cus_"));
    assert_eq!(c.retrieve_price(&price.id).await.unwrap(), price);
    assert!(!price.recurring && price.unit_amount == Some(1000) && price.currency == "usd");
    let session = c
        .create_checkout_session(checkout_params(&cus, &price.id, "cs-shapes"))
        .await
        .unwrap();
    assert_eq!(session.status.as_deref(), Some("open"));
    let url = session.url.clone().unwrap();
    assert_eq!(pay(&url, &card("4242424242424242")).await.status(), 303);
    let session = c.retrieve_checkout_session(&session.id).await.unwrap();
    let pi = c
        .retrieve_payment_intent(session.payment_intent.as_deref().unwrap())
        .await
        .unwrap();
    let charge = c.retrieve_charge(pi.latest_charge.as_deref().unwrap()).await.unwrap();
    let (events, _) = c.list_events(None, None, 100).await.unwrap();
    assert!(events.len() >= 8, "{events:?}");

    // Raw JSON: strict parse and fixture keys, kind by kind.
    let (_, v) = get_json(&sb, &format!("v1/customers/{cus}")).await;
    assert_has_fixture_keys("customer", &v);
    let _: stripe_shared::Customer = strict("customer", &v);
    let (_, v) = get_json(&sb, &format!("v1/products/{}", price.product)).await;
    assert_has_fixture_keys("product", &v);
    let _: stripe_shared::Product = strict("product", &v);
    let (_, v) = get_json(&sb, &format!("v1/prices/{}", price.id)).await;
    assert_has_fixture_keys("price", &v);
    let _: stripe_shared::Price = strict("price", &v);
    let (_, v) = get_json(&sb, &format!("v1/checkout/sessions/{}?expand[]=line_items", session.id)).await;
    assert_has_fixture_keys("checkout.session", &v);
    let parsed: stripe_shared::CheckoutSession = strict("checkout.session", &v);
    assert_eq!(parsed.line_items.expect("expanded").data.len(), 1);
    let item = &v["line_items"]["data"][0];
    assert_has_fixture_keys("item", item);
    let _: stripe_shared::CheckoutSessionItem = strict("item", item);
    let (_, v) = get_json(&sb, &format!("v1/payment_intents/{}", pi.id)).await;
    assert_has_fixture_keys("payment_intent", &v);
    let _: stripe_shared::PaymentIntent = strict("payment_intent", &v);
    let (_, v) = get_json(&sb, &format!("v1/charges/{}", charge.id)).await;
    assert_has_fixture_keys("charge", &v);
    let _: stripe_shared::Charge = strict("charge", &v);
    let (_, v) = get_json(&sb, &format!("v1/events/{}", events[0].id)).await;
    assert_has_fixture_keys("event", &v);
    let _: stripe_shared::Event = strict("event", &v);
    let (_, v) = get_json(&sb, "v1/events?limit=3").await;
    let list: stripe_types::List<stripe_shared::Event> = strict("list of events", &v);
    assert_eq!(list.data.len(), 3);
    assert!(list.has_more);
    assert_event_objects_parse(&events);
    sb.shutdown().await;
}

/// Every event's `data.object` (a snapshot) parses as its kind.
fn assert_event_objects_parse(events: &[creditd_stripe::RawEvent]) {
    for ev in events {
        let whole: Value = serde_json::from_str(&ev.payload_json).unwrap();
        let obj = whole["data"]["object"].clone();
        match obj["object"].as_str().unwrap() {
            "customer" => drop(strict::<stripe_shared::Customer>(&ev.type_, &obj)),
            "product" => drop(strict::<stripe_shared::Product>(&ev.type_, &obj)),
            "price" => drop(strict::<stripe_shared::Price>(&ev.type_, &obj)),
            "checkout.session" => drop(strict::<stripe_shared::CheckoutSession>(&ev.type_, &obj)),
            "payment_intent" => drop(strict::<stripe_shared::PaymentIntent>(&ev.type_, &obj)),
            "charge" => drop(strict::<stripe_shared::Charge>(&ev.type_, &obj)),
            "refund" => drop(strict::<stripe_shared::Refund>(&ev.type_, &obj)),
            "dispute" => drop(strict::<stripe_shared::Dispute>(&ev.type_, &obj)),
            "subscription" => drop(strict::<stripe_shared::Subscription>(&ev.type_, &obj)),
            "invoice" => drop(strict::<stripe_shared::Invoice>(&ev.type_, &obj)),
            other => panic!("unexpected object kind {other} in {}", ev.type_),
        }
    }
}

#[tokio::test]
async fn refunds_and_disputes_parse_strictly_and_match_the_fixture_keys() {
    let sb = sandbox(None).await;
    let c = client(&sb);
    let (cus, _) = customer_and_price(&c, "shapes-money-back").await;
    let (_, refunded) = paid_intent(&c, &cus, "pm_card_visa", 1000, "shapes-re").await;
    let refund = c
        .create_refund(creditd_stripe::RefundParams {
            payment_intent: None,
            charge: Some(refunded.clone()),
            amount: Some(250),
            idempotency_key: "shapes-re-1".into(),
        })
        .await
        .unwrap();
    let (_, pending) = paid_intent(&c, &cus, "pm_card_refundFail", 700, "shapes-re-fail").await;
    c.create_refund(creditd_stripe::RefundParams {
        payment_intent: None,
        charge: Some(pending.clone()),
        amount: None,
        idempotency_key: "shapes-re-2".into(),
    })
    .await
    .unwrap();
    let (_, disputed) = paid_intent(&c, &cus, "pm_card_createDispute", 1200, "shapes-dp").await;
    let dispute = eventually("the dispute", || async {
        c.list_disputes_for_charge(&disputed).await.unwrap().into_iter().next()
    })
    .await;
    c.update_dispute_evidence(&dispute.id, "winning_evidence", true)
        .await
        .unwrap();
    // Let the refund of the failing card fail too.
    eventually("the failed refund", || async {
        let (_, list) = get_json(&sb, &format!("v1/refunds?charge={pending}")).await;
        (list["data"][0]["status"] == "failed").then_some(())
    })
    .await;

    let (_, v) = get_json(&sb, &format!("v1/refunds/{}", refund.id)).await;
    assert_has_fixture_keys("refund", &v);
    let _: stripe_shared::Refund = strict("refund", &v);
    let (_, v) = get_json(&sb, &format!("v1/charges/{refunded}")).await;
    assert_has_fixture_keys("charge", &v);
    let parsed: stripe_shared::Charge = strict("charge with refunds", &v);
    assert_eq!(parsed.refunds.expect("refunds list").data.len(), 1);
    let (_, v) = get_json(&sb, &format!("v1/disputes/{}", dispute.id)).await;
    assert_has_fixture_keys("dispute", &v);
    let parsed: stripe_shared::Dispute = strict("dispute", &v);
    assert_eq!(parsed.balance_transactions.len(), 2);
    let txn = &v["balance_transactions"][0];
    assert_has_fixture_keys("balance_transaction", txn);
    let (_, v) = get_json(&sb, "v1/refunds?limit=100").await;
    let list: stripe_types::List<stripe_shared::Refund> = strict("list of refunds", &v);
    assert_eq!(list.data.len(), 2);
    let (_, v) = get_json(&sb, "v1/disputes").await;
    let list: stripe_types::List<stripe_shared::Dispute> = strict("list of disputes", &v);
    assert_eq!(list.data.len(), 1);
    let (events, _) = c.list_events(None, None, 100).await.unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.type_.as_str()).collect();
    for t in [
        "refund.created",
        "refund.updated",
        "refund.failed",
        "charge.refunded",
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_reinstated",
    ] {
        assert!(types.contains(&t), "no {t} in {types:?}");
    }
    assert_event_objects_parse(&events);
    // The client's own filter.
    let (only, _) = c
        .list_events_of_types(None, None, 100, &["charge.dispute.*"])
        .await
        .unwrap();
    assert_eq!(only.len(), 5, "{only:?}");
    sb.shutdown().await;
}

#[tokio::test]
async fn subscriptions_invoices_and_portal_sessions_parse_strictly_and_match_the_fixture_keys() {
    let sb = sandbox(None).await;
    let c = client(&sb);
    let (cus, _, sub_id) = subscribe(&c, "shapes-sub", 1200, "4242424242424242").await;
    let pro = c
        .create_recurring_price("Shapes Pro", 2400, "usd", "month", "shapes-pro")
        .await
        .unwrap();
    c.update_subscription_price(
        &sub_id,
        &pro.id,
        creditd_stripe::Proration::CreateProrations,
        "shapes-up",
    )
    .await
    .unwrap();
    let end = c.retrieve_subscription(&sub_id).await.unwrap().current_period_end;
    sb.advance_clock(end - sb.now().await + 60).await.unwrap();
    let portal = c.create_billing_portal_session(&cus, None).await.unwrap();

    let (_, v) = get_json(&sb, &format!("v1/subscriptions/{sub_id}")).await;
    assert_has_fixture_keys("subscription", &v);
    let parsed: stripe_shared::Subscription = strict("subscription", &v);
    assert_eq!(parsed.items.data.len(), 1);
    let item = &v["items"]["data"][0];
    assert_has_fixture_keys("subscription_item", item);
    let _: stripe_shared::SubscriptionItem = strict("subscription_item", item);
    let invoice_id = v["latest_invoice"].as_str().unwrap().to_owned();
    let (_, v) = get_json(&sb, &format!("v1/invoices/{invoice_id}")).await;
    assert_has_fixture_keys("invoice", &v);
    let parsed: stripe_shared::Invoice = strict("invoice", &v);
    assert_eq!(parsed.lines.data.len(), 3, "two proration lines and the new period");
    let line = &v["lines"]["data"][0];
    assert_has_fixture_keys("line_item", line);
    let _: stripe_shared::InvoiceLineItem = strict("line_item", line);
    let (_, v) = get_json(&sb, &format!("v1/invoices?subscription={sub_id}")).await;
    let list: stripe_types::List<stripe_shared::Invoice> = strict("list of invoices", &v);
    assert_eq!(list.data.len(), 2, "the first invoice and the renewal");
    let (_, v) = get_json(&sb, &format!("v1/subscriptions?customer={cus}")).await;
    let list: stripe_types::List<stripe_shared::Subscription> = strict("list of subscriptions", &v);
    assert_eq!(list.data.len(), 1);
    let resp = post_form(&sb, "v1/billing_portal/sessions", &[("customer", &cus)], None).await;
    let v: Value = resp.json().await.unwrap();
    assert_has_fixture_keys("billing_portal.session", &v);
    let parsed: stripe_billing::BillingPortalSession = strict("billing_portal.session", &v);
    assert!(parsed.url.ends_with(parsed.id.as_str()));
    assert!(portal.url.contains("/portal/bps_"));
    let (events, _) = c.list_events(None, None, 100).await.unwrap();
    assert_event_objects_parse(&events);
    sb.shutdown().await;
}

#[tokio::test]
async fn errors_have_stripes_envelope_and_parse() {
    let sb = sandbox(None).await;
    let c = client(&sb);
    // 404 resource_missing, through async-stripe's error parser.
    match c.retrieve_price("price_nope").await {
        Err(creditd_stripe::StripeError::InvalidRequest {
            status, code, message, ..
        }) => {
            assert_eq!(status, 404);
            assert_eq!(code.as_deref(), Some("resource_missing"));
            assert_eq!(message, "No such price: 'price_nope'");
        }
        other => panic!("expected resource_missing, got {other:?}"),
    }
    let (status, body) = get_json(&sb, "v1/customers/cus_missing").await;
    assert_eq!(status, 404);
    let err: stripe_shared::Error = strict("error", &body);
    assert_eq!(err.error.param.as_deref(), Some("id"));
    // Missing parameter → 400 parameter_missing; unknown parameter → 400.
    let resp = post_form(&sb, "v1/prices", &[("currency", "usd"), ("unit_amount", "5")], None).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "parameter_missing");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let resp = post_form(&sb, "v1/customers", &[("colour", "blue")], None).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["message"], "Received unknown parameter: colour");
    // Auth: missing, and a non-test key.
    let resp = reqwest::get(format!("{}v1/events", sb.base_url)).await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["stripe-version"], "2026-09-30.endive");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let live = creditd_stripe::StripeClient::new("sk_live_nope", Some(sb.base_url.clone())).unwrap();
    match live.retrieve_price("price_x").await {
        Err(creditd_stripe::StripeError::InvalidRequest { status: 401, .. }) => {}
        other => panic!("expected 401, got {other:?}"),
    }
    sb.shutdown().await;
}
