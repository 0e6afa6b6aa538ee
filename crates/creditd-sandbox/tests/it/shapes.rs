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
    // Every event's data.object (each a snapshot) parses as its kind too.
    for ev in &events {
        let obj: Value = serde_json::from_str::<Value>(&ev.payload_json).unwrap()["data"]["object"].clone();
        match obj["object"].as_str().unwrap() {
            "customer" => drop(strict::<stripe_shared::Customer>(&ev.type_, &obj)),
            "product" => drop(strict::<stripe_shared::Product>(&ev.type_, &obj)),
            "price" => drop(strict::<stripe_shared::Price>(&ev.type_, &obj)),
            "checkout.session" => drop(strict::<stripe_shared::CheckoutSession>(&ev.type_, &obj)),
            "payment_intent" => drop(strict::<stripe_shared::PaymentIntent>(&ev.type_, &obj)),
            "charge" => drop(strict::<stripe_shared::Charge>(&ev.type_, &obj)),
            other => panic!("unexpected object kind {other} in {}", ev.type_),
        }
    }
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
