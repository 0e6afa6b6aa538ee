//! Features with rate cards, plans that gate them (free, paid, past due, canceled), limits per
//! period, budgets per API key — exact under concurrency — and the free plan's monthly credits.

use creditd::config::Settings;
use creditd_domain::entitlement::PastDue;
use futures::future::join_all;
use serde_json::{json, Value};

use crate::helpers::{code, on_both_backends, test_settings, TestApp, T0};
use crate::subscriptions::{advance, subscribe, wait_for_status, MONTH};

on_both_backends!(
    usage_by_units_is_priced_exactly_and_records_its_prices,
    bad_catalog_and_spend_input_is_a_400_naming_the_field,
    plans_gate_features_by_subscription_status,
    limits_reset_at_the_period_boundary,
    sixty_four_concurrent_uses_of_ten_left_admit_exactly_ten,
    budgets_cap_a_key_exactly_under_concurrency_and_track_holds,
    the_free_plan_grants_credits_every_month_expiring_at_its_end,
);

on_both_backends!(settings = past_due_falls_back; past_due_can_fall_back_to_the_free_plan);

fn past_due_falls_back() -> Settings {
    Settings {
        past_due_plan: PastDue::Free,
        ..test_settings()
    }
}

async fn feature(app: &TestApp, body: Value) {
    let reply = app.post("/v1/features", body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
}

async fn free_plan(app: &TestApp, credits: &str, features: Value) -> String {
    let body = json!({"name": "Free", "free": true, "credits": credits, "features": features});
    let reply = app.post("/v1/plans", body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(
        (reply.body["free"].as_bool(), reply.body["price"].as_i64()),
        (Some(true), Some(0))
    );
    reply.body["id"].as_str().unwrap().to_string()
}

async fn paid_plan(app: &TestApp, features: Value) -> String {
    let body = json!({"name": "Pro", "credits": "1000", "price": 2000, "currency": "usd", "features": features});
    let reply = app.post("/v1/plans", body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.body["id"].as_str().unwrap().to_string()
}

async fn use_feature(app: &TestApp, customer: &str, feature: &str) -> crate::helpers::Reply {
    app.post(
        "/v1/usage",
        json!({"customer": customer, "feature": feature, "amount": "1"}),
    )
    .await
}

async fn usage_by_units_is_priced_exactly_and_records_its_prices(app: &TestApp) {
    let prices = json!({"input_tokens": "2.5", "output_tokens": "10"});
    feature(
        app,
        json!({"id": "gpt-4o", "name": "GPT-4o", "prices": prices, "per": 1_000_000}),
    )
    .await;
    app.customer("u").await;
    app.grant("u", "100").await;
    let units = json!({"customer": "u", "feature": "gpt-4o", "units": {"input_tokens": 1200, "output_tokens": 350}});
    let first = app.post("/v1/usage", units.clone()).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["amount"], "0.0065");
    assert_eq!(
        first.body["priced"]["units"],
        json!({"input_tokens": 1200, "output_tokens": 350})
    );
    assert_eq!(first.body["priced"]["prices"], prices);
    assert_eq!(first.body["priced"]["per"], 1_000_000);
    let one = app
        .post(
            "/v1/usage",
            json!({"customer": "u", "feature": "gpt-4o", "units": {"input_tokens": 1}}),
        )
        .await;
    assert_eq!(one.body["amount"], "0.000003", "2.5 micro-credits round up once");

    // A new price applies from now on; the first usage keeps what it paid.
    let update = json!({"prices": {"input_tokens": "5", "output_tokens": "10"}, "per": 1_000_000});
    let updated = app.post("/v1/features/gpt-4o", update).await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    let second = app.post("/v1/usage", units).await;
    assert_eq!(second.body["amount"], "0.0095");
    assert_eq!(second.body["priced"]["prices"]["input_tokens"], "5");
    assert_eq!(app.balance("u").await.0, "104.983997");
    let ledger = app.get("/v1/customers/u/ledger?limit=100").await.body;
    let first_entry = ledger["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["reference"] == first.body["id"])
        .unwrap()
        .clone();
    assert_eq!(first_entry["amount"], "-0.0065");

    // Holds and captures take units too.
    let hold = json!({"customer": "u", "feature": "gpt-4o", "units": {"input_tokens": 1_000_000}});
    let hold = app.post("/v1/holds", hold).await;
    assert_eq!(
        (hold.status, hold.body["amount"].as_str()),
        (201, Some("5")),
        "{}",
        hold.text
    );
    let id = hold.body["id"].as_str().unwrap();
    let captured = app
        .post(
            &format!("/v1/holds/{id}/capture"),
            json!({"units": {"input_tokens": 1000, "output_tokens": 100}}),
        )
        .await;
    assert_eq!(captured.status, 200, "{}", captured.text);
    assert_eq!(captured.body["captured"], "0.006");
    assert_eq!(
        captured.body["priced"]["units"],
        json!({"input_tokens": 1000, "output_tokens": 100})
    );
    let listed = app.get("/v1/features").await;
    assert_eq!(listed.body["data"][0]["prices"]["input_tokens"], "5");
    let archived = app.post("/v1/features/gpt-4o/archive", json!({})).await;
    assert_eq!(archived.body["active"], false);
    let after = app
        .post(
            "/v1/usage",
            json!({"customer": "u", "feature": "gpt-4o", "units": {"input_tokens": 1}}),
        )
        .await;
    assert_eq!(
        (after.status, after.body["error"]["param"].as_str()),
        (400, Some("units"))
    );
}

async fn bad_catalog_and_spend_input_is_a_400_naming_the_field(app: &TestApp) {
    feature(app, json!({"id": "chat", "name": "Chat"})).await;
    feature(
        app,
        json!({"id": "gpt", "name": "GPT", "prices": {"tokens": "1"}, "per": 1000}),
    )
    .await;
    app.customer("u").await;
    let cases = [
        ("/v1/features", json!({"id": "chat", "name": "again"}), 409, None),
        ("/v1/features", json!({"id": "bad id", "name": "x"}), 400, Some("id")),
        (
            "/v1/features",
            json!({"id": "x", "name": "x", "prices": {"t": "-1"}}),
            400,
            Some("prices.t"),
        ),
        (
            "/v1/features",
            json!({"id": "x", "name": "x", "prices": {"t": "1.0000001"}}),
            400,
            Some("prices.t"),
        ),
        (
            "/v1/features",
            json!({"id": "x", "name": "x", "prices": {"t": "1"}, "per": 0}),
            400,
            Some("per"),
        ),
        (
            "/v1/features",
            json!({"id": "x", "name": "x", "per": 10}),
            400,
            Some("per"),
        ),
        (
            "/v1/usage",
            json!({"customer": "u", "feature": "gpt", "amount": "1", "units": {"tokens": 1}}),
            400,
            Some("units"),
        ),
        (
            "/v1/usage",
            json!({"customer": "u", "feature": "gpt", "units": {"images": 1}}),
            400,
            Some("units.images"),
        ),
        (
            "/v1/usage",
            json!({"customer": "u", "feature": "gpt", "units": {"tokens": 1.5}}),
            400,
            Some("units.tokens"),
        ),
        (
            "/v1/usage",
            json!({"customer": "u", "feature": "gpt", "units": {"tokens": -1}}),
            400,
            Some("units.tokens"),
        ),
        (
            "/v1/usage",
            json!({"customer": "u", "feature": "chat", "units": {"tokens": 1}}),
            400,
            Some("units"),
        ),
        (
            "/v1/usage",
            json!({"customer": "u", "feature": "gpt"}),
            400,
            Some("amount"),
        ),
        (
            "/v1/usage",
            json!({"customer": "u", "feature": "gpt", "amount": "1", "budget": "a/b"}),
            400,
            Some("budget"),
        ),
        (
            "/v1/usage",
            json!({"customer": "u", "feature": "gpt", "amount": "1", "budget": "nope"}),
            404,
            Some("budget"),
        ),
        (
            "/v1/plans",
            json!({"name": "P", "credits": "1", "price": 100, "currency": "usd", "features": {"nope": true}}),
            404,
            Some("features.nope"),
        ),
        (
            "/v1/plans",
            json!({"name": "P", "credits": "1", "price": 100, "currency": "usd", "features": {"chat": {"limit": 0, "period": "day"}}}),
            400,
            Some("features.chat.limit"),
        ),
        (
            "/v1/plans",
            json!({"name": "P", "credits": "1", "price": 100, "currency": "usd", "features": {"chat": {"limit": 1.5, "period": "day"}}}),
            400,
            Some("features.chat.limit"),
        ),
        (
            "/v1/plans",
            json!({"name": "P", "credits": "1", "price": 100, "currency": "usd", "features": {"chat": {"limit": 2, "period": "week"}}}),
            400,
            Some("features.chat.period"),
        ),
        (
            "/v1/plans",
            json!({"name": "P", "credits": "1", "price": 100, "currency": "usd", "features": {"chat": "yes"}}),
            400,
            Some("features.chat"),
        ),
        (
            "/v1/plans",
            json!({"name": "F", "credits": "1", "free": true, "price": 100}),
            400,
            Some("price"),
        ),
        ("/v1/plans", json!({"name": "P", "credits": "1"}), 400, Some("price")),
        (
            "/v1/customers/u/budgets",
            json!({"id": "k", "limit": "0", "period": "day"}),
            400,
            Some("limit"),
        ),
        (
            "/v1/customers/u/budgets",
            json!({"id": "k", "limit": "1", "period": "week"}),
            400,
            Some("period"),
        ),
        (
            "/v1/customers/nobody/budgets",
            json!({"id": "k", "limit": "1", "period": "day"}),
            404,
            None,
        ),
    ];
    for (path, body, status, param) in cases {
        let reply = app.post(path, body.clone()).await;
        assert_eq!(reply.status, status, "{path} {body}: {}", reply.text);
        assert_eq!(
            reply.body["error"]["param"].as_str(),
            param,
            "{path} {body}: {}",
            reply.text
        );
    }
    assert_eq!(app.balance("u").await.0, "5", "nothing was deducted");
    assert_eq!(
        app.get("/v1/plans").await.body["data"],
        json!([]),
        "no plan was written"
    );
    let free = free_plan(app, "1", json!({})).await;
    let second = app
        .post("/v1/plans", json!({"name": "F2", "credits": "1", "free": true}))
        .await;
    assert_eq!(
        (second.status, code(&second)),
        (409, "free_plan_exists"),
        "a second free plan conflicts with the first"
    );
    let subscribe = app
        .post("/v1/checkout-sessions", json!({"customer": "u", "plan": free}))
        .await;
    assert_eq!(
        (subscribe.status, subscribe.body["error"]["param"].as_str()),
        (400, Some("plan"))
    );
}

async fn plans_gate_features_by_subscription_status(app: &TestApp) {
    for id in ["chat", "gpt-4o", "embeddings"] {
        feature(app, json!({"id": id, "name": id})).await;
    }
    free_plan(app, "5", json!({"chat": true})).await;
    let pro = paid_plan(app, json!({"chat": true, "gpt-4o": true})).await;
    // The signup bonus and the free plan's credits are separate grants.
    let created = app.post("/v1/customers", json!({"id": "u"})).await;
    assert_eq!(created.body["balance"], "10", "{}", created.text);

    let refused = use_feature(app, "u", "gpt-4o").await;
    assert_eq!(
        (refused.status, code(&refused)),
        (403, "feature_not_in_plan"),
        "{}",
        refused.text
    );
    assert_eq!(app.balance("u").await.0, "10", "nothing deducted");
    assert_eq!(use_feature(app, "u", "chat").await.status, 200);
    assert_eq!(
        use_feature(app, "u", "embeddings").await.status,
        200,
        "features no plan lists stay ungated"
    );
    let check = app
        .post(
            "/v1/check",
            json!({"customer": "u", "feature": "gpt-4o", "amount": "1"}),
        )
        .await;
    assert_eq!(check.body["allowed"], false);
    assert_eq!(check.body["reason"], "feature_not_in_plan");

    // Active: the paid plan (this card pays the first invoice and fails every renewal).
    subscribe(app, "u", &pro, "4000 0000 0000 0341").await;
    wait_for_status(app, "u", "active").await;
    assert_eq!(use_feature(app, "u", "gpt-4o").await.status, 200);
    let check = app
        .post("/v1/check", json!({"customer": "u", "feature": "gpt-4o"}))
        .await;
    assert_eq!(
        (check.body["allowed"].as_bool(), check.body["plan"].as_str()),
        (Some(true), Some(pro.as_str()))
    );
    // Past due keeps the plan by default.
    advance(app, MONTH).await;
    wait_for_status(app, "u", "past_due").await;
    assert_eq!(use_feature(app, "u", "gpt-4o").await.status, 200);
    // Canceled: back to the free plan.
    let sub = app.get("/v1/customers/u").await.body["subscription"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.stripe.cancel_subscription(&sub).await.unwrap();
    wait_for_status(app, "u", "canceled").await;
    let refused = use_feature(app, "u", "gpt-4o").await;
    assert_eq!((refused.status, code(&refused)), (403, "feature_not_in_plan"));
    let entitlements = app.get("/v1/customers/u/entitlements").await.body;
    let gpt = entitlements["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["feature"] == "gpt-4o")
        .unwrap();
    assert_eq!(
        (gpt["included"].as_bool(), gpt["allowed"].as_bool()),
        (Some(false), Some(false))
    );
}

async fn past_due_can_fall_back_to_the_free_plan(app: &TestApp) {
    feature(app, json!({"id": "gpt-4o", "name": "GPT-4o"})).await;
    free_plan(app, "0", json!({})).await;
    let pro = paid_plan(app, json!({"gpt-4o": true})).await;
    app.customer("u").await;
    subscribe(app, "u", &pro, "4000 0000 0000 0341").await;
    wait_for_status(app, "u", "active").await;
    assert_eq!(use_feature(app, "u", "gpt-4o").await.status, 200);
    advance(app, MONTH).await;
    wait_for_status(app, "u", "past_due").await;
    let refused = use_feature(app, "u", "gpt-4o").await;
    assert_eq!((refused.status, code(&refused)), (403, "feature_not_in_plan"));
}

async fn limits_reset_at_the_period_boundary(app: &TestApp) {
    feature(app, json!({"id": "images", "name": "Images"})).await;
    free_plan(app, "0", json!({"images": {"limit": 3, "period": "day"}})).await;
    app.customer("u").await;
    app.grant("u", "100").await;
    for _ in 0..3 {
        assert_eq!(use_feature(app, "u", "images").await.status, 200);
    }
    let refused = use_feature(app, "u", "images").await;
    assert_eq!(
        (refused.status, code(&refused)),
        (403, "limit_reached"),
        "{}",
        refused.text
    );
    assert_eq!(app.balance("u").await.0, "102", "three deducted, the refused one not");
    let day_end = (T0 / 86_400 + 1) * 86_400;
    let check = app
        .post("/v1/check", json!({"customer": "u", "feature": "images"}))
        .await
        .body;
    assert_eq!(
        (
            check["allowed"].as_bool(),
            check["reason"].as_str(),
            check["limit"].as_i64(),
            check["used"].as_i64()
        ),
        (Some(false), Some("limit_reached"), Some(3), Some(3))
    );
    assert_eq!(check["resets_at"], day_end);
    let listed = app.get("/v1/customers/u/entitlements").await.body;
    assert_eq!(listed["data"][0]["used"], 3);
    assert_eq!(listed["data"][0]["resets_at"], day_end);

    app.clock.set(day_end - 1);
    assert_eq!(code(&use_feature(app, "u", "images").await), "limit_reached");
    app.clock.set(day_end);
    assert_eq!(
        use_feature(app, "u", "images").await.status,
        200,
        "a new day, a new limit"
    );
    let check = app
        .post("/v1/check", json!({"customer": "u", "feature": "images"}))
        .await
        .body;
    assert_eq!(
        (check["used"].as_i64(), check["allowed"].as_bool()),
        (Some(1), Some(true))
    );
}

async fn sixty_four_concurrent_uses_of_ten_left_admit_exactly_ten(app: &TestApp) {
    feature(app, json!({"id": "images", "name": "Images"})).await;
    free_plan(app, "0", json!({"images": {"limit": 12, "period": "month"}})).await;
    app.customer("u").await;
    app.grant("u", "1000").await;
    for _ in 0..2 {
        assert_eq!(use_feature(app, "u", "images").await.status, 200);
    }
    let replies = join_all((0..64).map(|_| use_feature(app, "u", "images"))).await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let limited = replies.iter().filter(|r| code(r) == "limit_reached").count();
    assert_eq!((ok, limited), (10, 54));
    assert_eq!(app.balance("u").await.0, "993");
}

async fn budgets_cap_a_key_exactly_under_concurrency_and_track_holds(app: &TestApp) {
    app.customer("u").await;
    app.grant("u", "1000").await;
    let created = app
        .post(
            "/v1/customers/u/budgets",
            json!({"id": "key_abc", "limit": "10", "period": "total", "name": "CI key"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let spend = || {
        app.post(
            "/v1/usage",
            json!({"customer": "u", "feature": "chat", "amount": "1", "budget": "key_abc"}),
        )
    };
    let replies = join_all((0..64).map(|_| spend())).await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let refused = replies
        .iter()
        .filter(|r| r.status == 402 && code(r) == "budget_exceeded")
        .count();
    assert_eq!((ok, refused), (10, 54));
    assert_eq!(app.balance("u").await.0, "995");
    let budgets = app.get("/v1/customers/u/budgets").await.body;
    assert_eq!(
        (
            budgets["data"][0]["used"].as_str(),
            budgets["data"][0]["remaining"].as_str()
        ),
        (Some("10"), Some("0"))
    );
    let check = app
        .post(
            "/v1/check",
            json!({"customer": "u", "amount": "1", "budget": "key_abc"}),
        )
        .await
        .body;
    assert_eq!(
        (check["allowed"].as_bool(), check["reason"].as_str()),
        (Some(false), Some("budget_exceeded"))
    );

    // A daily budget: holds reserve, captures settle, releases give back.
    let daily = json!({"id": "key_h", "limit": "5", "period": "day"});
    assert_eq!(app.post("/v1/customers/u/budgets", daily).await.status, 201);
    let hold = |amount: &str| {
        app.post(
            "/v1/holds",
            json!({"customer": "u", "amount": amount, "budget": "key_h"}),
        )
    };
    let first = hold("3").await;
    assert_eq!(first.status, 201, "{}", first.text);
    let over = hold("3").await;
    assert_eq!((over.status, code(&over)), (402, "budget_exceeded"));
    let id = first.body["id"].as_str().unwrap();
    let captured = app
        .post(&format!("/v1/holds/{id}/capture"), json!({"amount": "1"}))
        .await;
    assert_eq!(captured.status, 200, "{}", captured.text);
    let second = hold("4").await;
    assert_eq!(second.status, 201, "{}", second.text);
    let used = |body: Value| {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["id"] == "key_h")
            .unwrap()["used"]
            .clone()
    };
    assert_eq!(used(app.get("/v1/customers/u/budgets").await.body), "5");
    let id = second.body["id"].as_str().unwrap();
    assert_eq!(
        app.post(&format!("/v1/holds/{id}/release"), json!({})).await.status,
        200
    );
    let budgets = app.get("/v1/customers/u/budgets").await.body;
    assert_eq!(used(budgets.clone()), "1");
    let day_end = (T0 / 86_400 + 1) * 86_400;
    let key_h = budgets["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == "key_h")
        .unwrap()
        .clone();
    assert_eq!(key_h["resets_at"], day_end);
    app.clock.set(day_end);
    assert_eq!(used(app.get("/v1/customers/u/budgets").await.body), "0", "a new day");
    // Changing the limit keeps the period's use.
    let raised = app
        .post(
            "/v1/customers/u/budgets",
            json!({"id": "key_abc", "limit": "12", "period": "total"}),
        )
        .await;
    assert_eq!(
        (
            raised.status,
            raised.body["used"].as_str(),
            raised.body["remaining"].as_str()
        ),
        (200, Some("10"), Some("2"))
    );
}

async fn the_free_plan_grants_credits_every_month_expiring_at_its_end(app: &TestApp) {
    free_plan(app, "5", json!({})).await;
    assert_eq!(
        app.post("/v1/customers", json!({"id": "u"})).await.body["balance"],
        "10"
    );
    // The monthly run finds nothing due: the customer got this month's credits when created.
    let state = app.state();
    assert_eq!(creditd::billing::free_plan::grant_monthly(&state).await.unwrap(), 0);
    let (_, month_end) = creditd_domain::calendar::month(T0);
    app.clock.set(month_end);
    assert_eq!(
        app.balance("u").await.0,
        "5",
        "last month's free credits expired at its end"
    );
    assert_eq!(creditd::billing::free_plan::grant_monthly(&state).await.unwrap(), 1);
    assert_eq!(
        creditd::billing::free_plan::grant_monthly(&state).await.unwrap(),
        0,
        "once a month"
    );
    assert_eq!(app.balance("u").await.0, "10");
    let grants = app.get("/v1/customers/u/grants").await.body;
    let newest = &grants["data"][0];
    assert_eq!(newest["reference"], "free:2027-02:u");
    assert_eq!(newest["expires_at"], creditd_domain::calendar::month(month_end).1);
}
