//! `packages sync` against the sandbox's Products and Prices: imports one-time Prices carrying
//! `credits_amount` (on the Price or its Product), updates changed ones, archives removed ones,
//! refuses recurring ones by name — over HTTP and from the command line.

use std::process::Command;

use creditd::app::SANDBOX_SECRET_KEY;
use serde_json::{json, Value};

use crate::helpers::{on_both_backends, TestApp, WEBHOOK_SECRET};

on_both_backends!(packages_sync_imports_updates_and_archives_stripe_prices);

/// A form POST to the sandbox, as Stripe's dashboard would make it.
async fn stripe_post(app: &TestApp, path: &str, form: &[(&str, &str)]) -> Value {
    let url = format!("{}{path}", app.sandbox.base_url.trim_end_matches('/'));
    let reply = app
        .client
        .post(url)
        .bearer_auth(SANDBOX_SECRET_KEY)
        .form(form)
        .send()
        .await
        .unwrap();
    assert!(reply.status().is_success(), "{path}: {}", reply.status());
    reply.json().await.unwrap()
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

async fn sync(app: &TestApp) -> Value {
    let reply = app.post("/v1/packages/sync", json!({})).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body
}

fn counts(report: &Value) -> [usize; 5] {
    ["created", "updated", "archived", "unchanged", "refused"].map(|k| report[k].as_array().unwrap().len())
}

async fn packages_sync_imports_updates_and_archives_stripe_prices(app: &TestApp) {
    let starter = stripe_post(
        app,
        "/v1/products",
        &[("name", "Starter"), ("metadata[credits_amount]", "100")],
    )
    .await;
    let starter_price = stripe_post(
        app,
        "/v1/prices",
        &[("product", &id(&starter)), ("unit_amount", "500"), ("currency", "usd")],
    )
    .await;
    let bulk = stripe_post(app, "/v1/products", &[("name", "Bulk")]).await;
    let bulk_price = stripe_post(
        app,
        "/v1/prices",
        &[
            ("product", &id(&bulk)),
            ("unit_amount", "2000"),
            ("currency", "usd"),
            ("nickname", "Bulk pack"),
            ("metadata[credits_amount]", "512.5"),
        ],
    )
    .await;
    let monthly = stripe_post(
        app,
        "/v1/prices",
        &[
            ("product", &id(&starter)),
            ("unit_amount", "900"),
            ("currency", "usd"),
            ("recurring[interval]", "month"),
        ],
    )
    .await;
    // A Price without the metadata (on it or its Product) is not a package.
    let plain = stripe_post(app, "/v1/products", &[("name", "T-shirt")]).await;
    stripe_post(
        app,
        "/v1/prices",
        &[("product", &id(&plain)), ("unit_amount", "1500"), ("currency", "usd")],
    )
    .await;

    let report = sync(app).await;
    assert_eq!(counts(&report), [2, 0, 0, 0, 1], "{report}");
    assert_eq!(report["refused"][0]["price"], id(&monthly));
    assert!(report["refused"][0]["reason"].as_str().unwrap().contains("recurring"));
    let packages = app.get("/v1/packages").await.body["data"].clone();
    let by_price = |price: &Value| {
        packages
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["stripe_price"] == price["id"])
            .cloned()
            .unwrap()
    };
    let imported = by_price(&starter_price);
    assert_eq!(
        (
            imported["name"].as_str(),
            imported["credits"].as_str(),
            imported["price"].as_i64()
        ),
        (Some("Starter"), Some("100"), Some(500))
    );
    assert_eq!(by_price(&bulk_price)["name"], "Bulk pack");
    assert_eq!(by_price(&bulk_price)["credits"], "512.5");

    // An imported package sells through Checkout like any other.
    app.customer("u").await;
    let checkout = app
        .post(
            "/v1/checkout-sessions",
            json!({"customer": "u", "package": imported["id"]}),
        )
        .await;
    assert_eq!(checkout.status, 201, "{}", checkout.text);

    // Changed metadata updates; an archived Price archives its package.
    stripe_post(
        app,
        &format!("/v1/prices/{}", id(&bulk_price)),
        &[("metadata[credits_amount]", "600")],
    )
    .await;
    stripe_post(
        app,
        &format!("/v1/prices/{}", id(&starter_price)),
        &[("active", "false")],
    )
    .await;
    let report = sync(app).await;
    assert_eq!(counts(&report), [0, 1, 1, 0, 1], "{report}");
    assert_eq!(report["updated"][0]["credits"], "600");
    assert_eq!(report["archived"][0], imported["id"]);
    let active = app.get("/v1/packages").await.body["data"].clone();
    assert_eq!(active.as_array().unwrap().len(), 1);

    // The command line does the same; nothing is left to change.
    let out = Command::new(env!("CARGO_BIN_EXE_creditd"))
        .args(["packages", "sync"])
        .env("DATABASE_URL", &app.db.url)
        .env("STRIPE_SECRET_KEY", SANDBOX_SECRET_KEY)
        .env("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("STRIPE_API_BASE", &app.sandbox.base_url)
        .env_remove("CREDITD_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("0 created, 0 updated, 0 archived, 1 unchanged, 1 refused"),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("refused {}", id(&monthly))), "{stdout}");
}
