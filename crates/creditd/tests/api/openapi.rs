//! The OpenAPI document says exactly what the handlers accept: its patterns match the parsers'
//! rules (property-tested), every operation lists the shared error answers, and the balance
//! limit is an answer, not a crash.

use creditd::http::doc::{CustomerId, FeatureId, NonNegativeCredits, PositiveCredits, Reason, Text};
use creditd_domain::{validate, Credits};
use proptest::prelude::*;
use serde_json::{json, Value};
use utoipa::PartialSchema;

use crate::helpers::{code, on_both_backends, TestApp};

on_both_backends!(
    every_operation_documents_its_shared_errors,
    a_grant_past_the_balance_limit_is_a_409_and_writes_go_on,
);

/// The pattern of a schema, or of its string branch.
fn pattern(schema: utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>) -> regex::Regex {
    let value = serde_json::to_value(schema).unwrap();
    let text = value["pattern"]
        .as_str()
        .or_else(|| value["oneOf"][0]["pattern"].as_str())
        .expect("a pattern");
    regex::Regex::new(text).unwrap()
}

/// Strings near the rules' edges: digits, dots, signs, spaces of several kinds, controls.
fn near_credits() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?[0-9]{0,14}(\\.[0-9]{0,8})?",
        "0{0,3}1000000000000(\\.[0-9]{1,7})?",
        "[-+0-9. e]{0,10}",
    ]
}

fn near_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just(' '),
            Just('\t'),
            Just('\u{a0}'),
            Just('\u{2003}'),
            Just('\u{3000}'),
            Just('\u{0}'),
            Just('\u{85}'),
            Just('\u{7f}'),
            Just('\u{feff}'),
            proptest::char::range('!', '~'),
            proptest::char::range('\u{100}', '\u{2fff}'),
        ],
        0..12,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #[test]
    fn credit_patterns_are_the_parsers_rules(s in near_credits()) {
        let parsed = Credits::parse(&s);
        prop_assert_eq!(pattern(PositiveCredits::schema()).is_match(&s), parsed.clone().and_then(Credits::positive).is_ok(), "{}", s);
        prop_assert_eq!(pattern(NonNegativeCredits::schema()).is_match(&s), parsed.and_then(Credits::non_negative).is_ok(), "{}", s);
    }

    #[test]
    fn text_patterns_are_the_validators_rules(s in near_text()) {
        prop_assert_eq!(pattern(Text::schema()).is_match(&s), validate::text(&s).is_ok(), "{:?}", s);
        let reason = validate::text(&s).is_ok() && !s.trim().is_empty();
        prop_assert_eq!(pattern(Reason::schema()).is_match(&s), reason, "{:?}", s);
        prop_assert_eq!(pattern(CustomerId::schema()).is_match(&s), validate::customer_id(&s).is_ok(), "{:?}", s);
        prop_assert_eq!(pattern(FeatureId::schema()).is_match(&s), validate::feature(&s).is_ok(), "{:?}", s);
    }
}

async fn every_operation_documents_its_shared_errors(app: &TestApp) {
    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = &operation["responses"];
            let public = operation["security"].as_array().is_some_and(Vec::is_empty);
            assert!(public || responses.get("401").is_some(), "{method} {path}: 401");
            if operation.get("requestBody").is_some() {
                assert!(
                    responses.get("400").is_some() && responses.get("413").is_some(),
                    "{method} {path}: 400/413"
                );
            }
        }
    }
    let usage = &doc["paths"]["/v1/usage"]["post"];
    assert!(usage["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "Idempotency-Key"));
    assert!(usage["responses"]["503"]["headers"].get("Retry-After").is_some());
    let schemas = &doc["components"]["schemas"];
    // `amount` or `units` (a priced feature's): either may be absent.
    assert_eq!(
        schemas["UsageIn"]["properties"]["amount"],
        json!({"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/PositiveCredits"}]})
    );
    assert_eq!(schemas["HoldIn"]["properties"]["ttl_seconds"]["maximum"], 86_400);
    assert!(schemas["PackageIn"]["oneOf"].is_array() && schemas["CheckoutIn"]["oneOf"].is_array());
    // Stripe's signature is a required header of the webhook, not a credential: a bad one is a
    // 400 (SPEC), so the operation documents no 401 and no 429.
    let webhook = &doc["paths"]["/v1/stripe/webhook"]["post"];
    assert_eq!(webhook["security"], json!([]));
    let signature = &webhook["parameters"][0];
    assert_eq!(
        (&signature["name"], &signature["in"], &signature["required"]),
        (&json!("Stripe-Signature"), &json!("header"), &json!(true))
    );
    assert!(webhook["responses"].get("401").is_none() && webhook["responses"].get("400").is_some());
    assert!(doc["components"]["securitySchemes"].get("stripe_signature").is_none());
    // Every operation that takes a credential documents 429 with its headers; every one a 503.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = &operation["responses"];
            assert!(responses.get("503").is_some(), "{method} {path}: 503");
            let public = operation["security"].as_array().is_some_and(Vec::is_empty);
            assert_eq!(
                responses["429"]["headers"].get("RateLimit-Remaining").is_some(),
                !public,
                "{method} {path}: 429"
            );
        }
    }
}

async fn a_grant_past_the_balance_limit_is_a_409_and_writes_go_on(app: &TestApp) {
    app.customer("whale").await;
    for _ in 0..3 {
        app.grant("whale", "1000000000000").await;
    }
    let refused = app
        .post(
            "/v1/customers/whale/grants",
            json!({"amount": "1000000000000", "reason": "more"}),
        )
        .await;
    assert_eq!(
        (refused.status, code(&refused)),
        (409, "balance_limit"),
        "{}",
        refused.text
    );
    assert_eq!(app.balance("whale").await.0, "3000000000005");
    let spent = app
        .post(
            "/v1/usage",
            json!({"customer": "whale", "amount": "5", "feature": "chat"}),
        )
        .await;
    assert_eq!(spent.status, 200, "the writer is still running: {}", spent.text);
    app.grant("whale", "1000000000000").await;
    assert_eq!(app.balance("whale").await.0, "4000000000000");
}
