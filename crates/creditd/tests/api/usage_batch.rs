//! `POST /v1/usage/batch`: one result per record in order, each record exactly once.

use serde_json::{json, Value};

use crate::helpers::{code, on_both_backends, Reply, TestApp};

on_both_backends!(
    refusals_refuse_only_their_own_record,
    a_record_is_read_as_a_single_usage_body_is,
    records_may_give_units_of_a_priced_feature,
    duplicates_inside_one_request_deduct_once,
    replays_across_requests_and_with_single_usage,
    a_thousand_records_in_one_request,
    the_request_itself_is_refused_when_unreadable_or_out_of_bounds,
    the_batch_is_in_the_openapi_document,
);

fn statuses(reply: &Reply) -> Vec<u64> {
    assert_eq!(reply.status, 200, "{}", reply.text);
    let data = reply.body["data"].as_array().expect("data");
    data.iter().map(|r| r["status"].as_u64().unwrap()).collect()
}

fn result(reply: &Reply, i: usize) -> &Value {
    &reply.body["data"][i]
}

fn record(customer: &str, amount: &str) -> Value {
    json!({"customer": customer, "amount": amount, "feature": "chat"})
}

async fn refusals_refuse_only_their_own_record(app: &TestApp) {
    app.customer("u").await;
    let records = json!([
        record("u", "1"),
        record("ghost", "1"),
        record("u", "0"),
        record("u", "10"),
        {"customer": "u", "amount": "2", "feature": "chat", "metadata": {"tokens": 7}},
        {"customer": "u", "amount": "1"},
        {"customer": "u", "amount": "1", "feature": "chat", "metadata": [1]},
        {"customer": "u", "amount": "x", "feature": "chat"},
        {"customer": "u", "feature": "chat"},
    ]);
    let reply = app.post("/v1/usage/batch", json!({ "records": records })).await;
    assert_eq!(statuses(&reply), [200, 404, 400, 402, 200, 400, 400, 400, 400]);
    assert_eq!(result(&reply, 0)["usage"]["balance"], "4");
    assert_eq!(result(&reply, 1)["error"]["code"], "customer_not_found");
    assert_eq!(result(&reply, 2)["error"]["param"], "records[2].amount");
    let short = &result(&reply, 3)["error"];
    assert_eq!(
        (&short["code"], &short["balance"], &short["available"]),
        (&json!("insufficient_credits"), &json!("4"), &json!("4")),
        "refused at the balance left by the records before it"
    );
    let used = &result(&reply, 4)["usage"];
    assert_eq!(
        (&used["balance"], &used["entries"][0]["metadata"]["tokens"]),
        (&json!("2"), &json!(7))
    );
    assert_eq!(result(&reply, 5)["error"]["param"], "records[5].feature");
    assert_eq!(result(&reply, 6)["error"]["param"], "records[6].metadata");
    assert_eq!(result(&reply, 7)["error"]["param"], "records[7].amount");
    assert_eq!(
        result(&reply, 8)["error"]["param"],
        "records[8].amount",
        "neither amount nor units"
    );
    assert!(result(&reply, 3).get("usage").is_none() && result(&reply, 0).get("error").is_none());
    assert_eq!(app.balance("u").await.0, "2", "exactly the two accepted records");
    let ledger = app.get("/v1/customers/u/ledger").await;
    assert_eq!(ledger.body["data"].as_array().unwrap().len(), 3, "bonus and two usages");
}

async fn a_record_is_read_as_a_single_usage_body_is(app: &TestApp) {
    app.customer("u").await;
    let records = json!([
        {"customer": "u", "amount": 1.0, "feature": "chat"},
        ["u", "1", "chat"],
        [null, null],
        {"customer": "u", "amount": 1.5, "feature": "chat"},
    ]);
    let reply = app.post("/v1/usage/batch", json!({ "records": records })).await;
    assert_eq!(statuses(&reply), [200, 400, 400, 400]);
    assert_eq!(
        result(&reply, 0)["usage"]["amount"],
        "1",
        "an integral float is an integer"
    );
    for i in [1, 2] {
        assert_eq!(
            result(&reply, i)["error"]["param"],
            format!("records[{i}]"),
            "not an object"
        );
    }
    assert_eq!(
        result(&reply, 3)["error"]["param"],
        "records[3].amount",
        "floats are refused"
    );
    assert_eq!(app.balance("u").await.0, "4");
}

async fn records_may_give_units_of_a_priced_feature(app: &TestApp) {
    app.customer("u").await;
    let feature = json!({"id": "gpt", "name": "GPT", "per": 1000, "prices": {"input_tokens": "2.5"}});
    assert_eq!(app.post("/v1/features", feature).await.status, 201);
    let records = json!([
        {"customer": "u", "feature": "gpt", "units": {"input_tokens": 400}},
        {"customer": "u", "feature": "nothing", "units": {"input_tokens": 1}},
        {"customer": "u", "feature": "gpt", "units": {"images": 1}},
        {"customer": "u", "feature": "gpt", "amount": "1", "units": {"input_tokens": 1}},
        {"customer": "u", "feature": "gpt", "units": {"input_tokens": 400}, "idempotency_key": "units-1"},
    ]);
    let reply = app.post("/v1/usage/batch", json!({ "records": records })).await;
    assert_eq!(statuses(&reply), [200, 404, 400, 400, 200]);
    let usage = &result(&reply, 0)["usage"];
    assert_eq!(
        (&usage["amount"], &usage["priced"]["units"]),
        (&json!("1"), &json!({"input_tokens": 400})),
        "400 × 2.5 / 1000, priced as POST /v1/usage prices it"
    );
    assert_eq!(result(&reply, 1)["error"]["code"], "feature_not_found");
    let unpriced = result(&reply, 2)["error"]["param"].as_str().unwrap();
    assert!(unpriced.starts_with("records[2].units"), "{unpriced}");
    assert_eq!(result(&reply, 3)["error"]["param"], "records[3].units");
    let alone = app
        .post_idem(
            "/v1/usage",
            "units-1",
            json!({"customer": "u", "feature": "gpt", "units": {"input_tokens": 400}}),
        )
        .await;
    assert_eq!(alone.body, result(&reply, 4)["usage"], "the same key and usage replay");
    assert_eq!(app.balance("u").await.0, "3");
}

async fn duplicates_inside_one_request_deduct_once(app: &TestApp) {
    app.customer("u").await;
    let keyed =
        |amount: &str, key: &str| json!({"customer": "u", "amount": amount, "feature": "chat", "idempotency_key": key});
    let records = json!([
        keyed("1", "d1"),
        keyed("1", "d1"),
        keyed("2", "d1"),
        keyed("1", "d2"),
        record("u", "1")
    ]);
    let reply = app.post("/v1/usage/batch", json!({ "records": records })).await;
    assert_eq!(statuses(&reply), [200, 200, 409, 200, 200]);
    assert_eq!(
        result(&reply, 0)["usage"],
        result(&reply, 1)["usage"],
        "the duplicate replays the first"
    );
    assert_eq!(result(&reply, 2)["error"]["code"], "idempotency_key_reused");
    assert_ne!(result(&reply, 3)["usage"]["id"], result(&reply, 4)["usage"]["id"]);
    assert_eq!(
        app.balance("u").await.0,
        "2",
        "d1 once, d2 once, the unkeyed record once"
    );
}

async fn replays_across_requests_and_with_single_usage(app: &TestApp) {
    app.customer("u").await;
    let single = app.post_idem("/v1/usage", "alone", record("u", "1")).await;
    assert_eq!(single.status, 200);
    let body = json!({"records": [
        record("u", "1"),
        {"customer": "u", "amount": "1", "feature": "chat", "idempotency_key": "alone"},
        record("u", "0.5"),
    ]});
    let first = app.post_idem("/v1/usage/batch", "b1", body.clone()).await;
    assert_eq!(statuses(&first), [200, 200, 200]);
    assert_eq!(
        result(&first, 1)["usage"],
        single.body,
        "the batch record replays the single usage"
    );
    assert_eq!(app.balance("u").await.0, "2.5");
    let again = app.post_idem("/v1/usage/batch", "b1", body).await;
    assert_eq!(again.body, first.body, "the whole batch replays");
    let alone_again = app.post_idem("/v1/usage", "b1/2", record("u", "0.5")).await;
    assert_eq!(
        alone_again.body, first.body["data"][2]["usage"],
        "a derived key is a key like any other"
    );
    let changed = json!({"records": [
        record("u", "1"),
        {"customer": "u", "amount": "2", "feature": "chat", "idempotency_key": "alone"},
        record("u", "1"),
    ]});
    let reply = app.post_idem("/v1/usage/batch", "b1", changed).await;
    assert_eq!(statuses(&reply), [200, 409, 409]);
    assert_eq!(result(&reply, 0)["usage"], first.body["data"][0]["usage"]);
    let fresh = app
        .post_idem("/v1/usage/batch", "b2", json!({"records": [record("u", "1")]}))
        .await;
    assert_eq!(statuses(&fresh), [200]);
    assert_eq!(app.balance("u").await.0, "1.5", "only the fresh key deducted again");
}

async fn a_thousand_records_in_one_request(app: &TestApp) {
    app.customer("u").await;
    app.customer("v").await;
    app.grant("u", "1000").await;
    let records: Vec<Value> = (0..1000)
        .map(|i| record(if i % 2 == 0 { "u" } else { "v" }, "0.01"))
        .collect();
    let reply = app
        .post_idem("/v1/usage/batch", "big", json!({ "records": records }))
        .await;
    let statuses = statuses(&reply);
    assert_eq!(statuses.len(), 1000);
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    assert_eq!(app.balance("u").await.0, "1000", "1005 less 500 × 0.01");
    assert_eq!(app.balance("v").await.0, "0", "5 less 500 × 0.01");
    let last = &result(&reply, 999)["usage"];
    assert_eq!(
        (&last["customer"], &last["balance"]),
        (&json!("v"), &json!("0")),
        "applied in order"
    );
}

async fn the_request_itself_is_refused_when_unreadable_or_out_of_bounds(app: &TestApp) {
    app.customer("u").await;
    let too_many: Vec<Value> = (0..1001).map(|_| record("u", "0.001")).collect();
    for (body, param) in [
        (json!({"records": []}), "records"),
        (json!({ "records": too_many }), "records"),
        (json!({"records": {"customer": "u"}}), "records"),
        (json!({}), "records"),
        (json!({"records": [record("u", "1")], "extra": true}), "extra"),
    ] {
        let reply = app.post("/v1/usage/batch", body).await;
        assert_eq!((reply.status, code(&reply)), (400, "invalid_request"), "{}", reply.text);
        assert_eq!(reply.body["error"]["param"], param, "{}", reply.text);
    }
    let unauthorized = app.post_raw("/v1/usage/batch", r#"{"records": []}"#, None).await;
    assert_eq!(unauthorized.status, 401);
    assert_eq!(app.balance("u").await.0, "5", "nothing deducted by any of it");
}

async fn the_batch_is_in_the_openapi_document(app: &TestApp) {
    let doc = app.get("/openapi.json").await.body;
    let post = &doc["paths"]["/v1/usage/batch"]["post"];
    for status in ["200", "400", "401", "413"] {
        assert!(post["responses"].get(status).is_some(), "{status} documented");
    }
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["UsageBatchIn"]["properties"]["records"]["maxItems"], 1000);
    let record = &schemas["UsageRecordIn"]["properties"];
    assert_eq!(
        record["amount"],
        json!({"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/PositiveCredits"}]})
    );
    assert_eq!(record["units"]["additionalProperties"]["type"], "integer");
    assert!(schemas["UsageRecordIn"]["oneOf"].is_array(), "amount or units");
    assert!(record["idempotency_key"]["pattern"].is_string());
    // Any item is taken (one that is not a record is refused alone, inside the 200).
    let items = &schemas["UsageBatchIn"]["properties"]["records"]["items"];
    assert_eq!(items["anyOf"][1], json!({}));
    assert!(schemas["RecordResult"]["properties"]["status"].is_object());
}
