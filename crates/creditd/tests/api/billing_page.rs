//! The billing page as a browser without JavaScript sees it: the token exchange, the session
//! cookie, what the page shows, the Buy form through Checkout, and who can see what.

use serde_json::json;

use creditd::config::Settings;

use crate::helpers::{on_both_backends, test_settings, TestApp};
use crate::me::token_for;

on_both_backends!(
    the_token_becomes_a_cookie_and_the_page_shows_that_customer_only,
    buy_needs_the_session_and_its_csrf_token_then_pays_through_checkout,
    the_ledger_pages_and_usage_is_charted,
    the_plans_section_subscribes_through_checkout_and_cancels,
);
on_both_backends!(settings = framed_settings; an_app_allowed_to_frame_the_page_is_named_in_its_policy);

fn framed_settings() -> Settings {
    Settings {
        billing_frame_ancestors: Some("'self' https://app.example.com".into()),
        low_balance_threshold: creditd_domain::Credits::from_micros(2_000_000),
        ..test_settings()
    }
}

async fn an_app_allowed_to_frame_the_page_is_named_in_its_policy(app: &TestApp) {
    app.customer("alice").await;
    let alice = sign_in(app, "alice").await;
    let page = open(app, "/billing", Some(&alice)).await;
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.ends_with("frame-ancestors 'self' https://app.example.com"), "{csp}");
    assert!(
        page.headers.get("x-frame-options").is_none(),
        "X-Frame-Options DENY would override it"
    );
    assert!(
        !page.html.contains("Your balance is low"),
        "5 credits is above a threshold of 2"
    );
}

pub(crate) struct Page {
    pub(crate) status: u16,
    headers: reqwest::header::HeaderMap,
    pub(crate) html: String,
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub(crate) async fn open(app: &TestApp, path: &str, cookie: Option<&str>) -> Page {
    let mut request = browser().get(app.url(path));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    Page {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        html: response.text().await.unwrap(),
    }
}

/// Opens `/billing?token=…` and returns the `name=value` cookie it sets.
pub(crate) async fn sign_in(app: &TestApp, customer: &str) -> String {
    let page = open(app, &format!("/billing?token={}", token_for(customer)), None).await;
    assert_eq!(page.status, 303, "{}", page.html);
    let set = page.headers["set-cookie"].to_str().unwrap().to_string();
    set.split(';').next().unwrap().to_string()
}

pub(crate) fn csrf(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[start..].split('"').next().unwrap().to_string()
}

fn package_id(html: &str) -> String {
    let start = html.find("name=\"package\" value=\"").expect("a package field") + 22;
    html[start..].split('"').next().unwrap().to_string()
}

async fn buy(app: &TestApp, cookie: Option<&str>, fields: &[(&str, &str)]) -> Page {
    let mut request = browser()
        .post(app.url("/billing/checkout"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(fields).unwrap());
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    Page {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        html: response.text().await.unwrap(),
    }
}

async fn the_token_becomes_a_cookie_and_the_page_shows_that_customer_only(app: &TestApp) {
    app.post("/v1/customers", json!({"id": "alice", "email": "alice@example.com"}))
        .await;
    app.post("/v1/customers", json!({"id": "bob", "email": "bob@example.com"}))
        .await;
    app.grant("bob", "1000").await;

    let anonymous = open(app, "/billing", None).await;
    assert_eq!(anonymous.status, 401);
    assert!(anonymous.html.contains("Open billing from the app"));
    let forged = open(app, "/billing?token=abc.def.ghi", None).await;
    assert_eq!(forged.status, 401);
    assert!(forged.headers.get("set-cookie").is_none(), "a bad token sets no cookie");
    assert!(forged.html.contains("malformed"), "{}", forged.html);

    let exchanged = open(app, &format!("/billing?token={}", token_for("alice")), None).await;
    assert_eq!(exchanged.status, 303);
    assert_eq!(
        exchanged.headers["location"], "billing",
        "the token leaves the address bar"
    );
    let set = exchanged.headers["set-cookie"].to_str().unwrap();
    for attribute in [
        "creditd_billing=",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/billing",
        "Max-Age=3600",
    ] {
        assert!(set.contains(attribute), "{attribute} in {set}");
    }
    assert!(!set.contains("Secure"), "plain-http public_url: no Secure attribute");
    let alice = set.split(';').next().unwrap().to_string();

    let page = open(app, "/billing", Some(&alice)).await;
    assert_eq!(page.status, 200, "{}", page.html);
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("script-src"), "no script source at all: {csp}");
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert_eq!(page.headers["cache-control"], "no-store");
    assert_eq!(page.headers["referrer-policy"], "no-referrer");
    assert!(page.html.contains("alice@example.com"));
    assert!(
        page.html
            .contains("<p class=\"big\" id=\"balance\">5 <span>credits</span></p>"),
        "{}",
        page.html
    );
    assert!(
        page.html.contains("Your balance is low"),
        "5 credits is under the default threshold of 10"
    );
    assert!(page.html.contains("No credit packages are on sale"));
    assert!(page.html.contains("No payments yet"));
    assert!(!page.html.contains("bob") && !page.html.contains("<script"));

    let bob = sign_in(app, "bob").await;
    let page = open(app, "/billing", Some(&bob)).await;
    assert!(page.html.contains("bob@example.com") && page.html.contains("1,005 <span>credits"));
    assert!(!page.html.contains("alice") && !page.html.contains("Your balance is low"));

    // A valid token for a customer the app has not created yet.
    let ghost = sign_in(app, "ghost").await;
    let none = open(app, "/billing", Some(&ghost)).await;
    assert_eq!(none.status, 404);
    assert!(none.html.contains("No billing account yet"));

    // The cookie ends with the token: an hour later the page asks to reopen it and clears it.
    app.clock.advance(3600 + 31);
    let ended = open(app, "/billing", Some(&alice)).await;
    assert_eq!(ended.status, 401);
    assert!(ended.html.contains("Your billing session has ended"));
    assert!(ended.headers["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
}

async fn buy_needs_the_session_and_its_csrf_token_then_pays_through_checkout(app: &TestApp) {
    app.customer("alice").await;
    app.customer("bob").await;
    app.post(
        "/v1/packages",
        json!({"name": "Starter <pack>", "credits": "100", "price": 500, "currency": "usd"}),
    )
    .await;
    let alice = sign_in(app, "alice").await;
    let bob = sign_in(app, "bob").await;
    let page = open(app, "/billing", Some(&alice)).await;
    assert!(page.html.contains("Starter &#60;pack&#62;") && page.html.contains("5.00 USD"));
    let (alice_csrf, pkg) = (csrf(&page.html), package_id(&page.html));
    let bob_csrf = csrf(&open(app, "/billing", Some(&bob)).await.html);
    assert_ne!(alice_csrf, bob_csrf);

    let no_session = buy(app, None, &[("csrf", &alice_csrf), ("package", &pkg)]).await;
    assert_eq!(no_session.status, 401);
    let no_csrf = buy(app, Some(&alice), &[("package", &pkg)]).await;
    assert_eq!(no_csrf.status, 403);
    let other_csrf = buy(app, Some(&alice), &[("csrf", &bob_csrf), ("package", &pkg)]).await;
    assert_eq!(other_csrf.status, 403);
    let bad_quantity = buy(
        app,
        Some(&alice),
        &[("csrf", &alice_csrf), ("package", &pkg), ("quantity", "0")],
    )
    .await;
    assert_eq!(bad_quantity.status, 400);
    assert!(bad_quantity.html.contains("between 1 and 100") && bad_quantity.html.contains("Back to billing"));
    assert!(app
        .db
        .store
        .payments("alice", &Default::default())
        .await
        .unwrap()
        .data
        .is_empty());

    let started = buy(
        app,
        Some(&alice),
        &[("csrf", &alice_csrf), ("package", &pkg), ("quantity", "2")],
    )
    .await;
    assert_eq!(started.status, 303, "{}", started.html);
    let checkout_url = started.headers["location"].to_str().unwrap().to_string();
    assert!(checkout_url.starts_with(&app.sandbox.base_url), "{checkout_url}");
    let paid = pay(&checkout_url).await;
    let success = browser()
        .get(paid.headers()["location"].to_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        success.contains("Payment received") && success.contains("href=\"../billing\""),
        "{success}"
    );

    let page = open(app, "/billing", Some(&alice)).await;
    assert!(page.html.contains("id=\"balance\">205 <span>"), "{}", page.html);
    assert!(page.html.contains("s-succeeded\">Paid") && page.html.contains(">Receipt<"));
    assert!(page.html.contains("10.00 USD"));
    assert!(!page.html.contains("Your balance is low"));
    let bobs = open(app, "/billing", Some(&bob)).await;
    assert!(
        bobs.html.contains("No payments yet"),
        "bob sees none of alice's payments"
    );
}

async fn the_ledger_pages_and_usage_is_charted(app: &TestApp) {
    app.customer("alice").await;
    for i in 0..24 {
        let feature = if i % 3 == 0 { "image" } else { "chat" };
        let reply = app
            .post(
                "/v1/usage",
                json!({"customer": "alice", "amount": "0.1", "feature": feature}),
            )
            .await;
        assert_eq!(reply.status, 200);
    }
    let alice = sign_in(app, "alice").await;
    let first = open(app, "/billing", Some(&alice)).await;
    assert_eq!(first.html.matches("Used: ").count(), 20, "20 entries a page");
    let older = first
        .html
        .split("href=\"billing?ledger_after=")
        .nth(1)
        .expect("an Older link");
    let after = older.split('#').next().unwrap();
    let second = open(app, &format!("/billing?ledger_after={after}"), Some(&alice)).await;
    assert_eq!(second.html.matches("Used: ").count(), 4);
    assert!(second.html.contains("Credits added") && second.html.contains("Newest activity"));
    assert!(!second.html.contains("Older activity"));

    assert!(first.html.contains("<svg class=\"chart\""));
    assert!(first.html.contains("2.4 credits spent"), "{}", first.html);
    assert!(
        first.html.contains("<title id=\"usage-title\">")
            && first.html.contains("aria-labelledby=\"usage-title usage-desc\"")
    );
    assert!(first.html.contains("<th scope=\"col\" class=\"num\">chat</th>"));
    assert!(first.html.contains("Your balance is low"), "2.6 credits left");
}

/// Pays on the sandbox's hosted Checkout page with 4242 4242 4242 4242.
async fn pay(checkout_url: &str) -> reqwest::Response {
    let card = [
        ("method", "card"),
        ("card_number", "4242 4242 4242 4242"),
        ("card_expiry", "12 / 34"),
        ("card_cvc", "123"),
        ("name", "Alice"),
    ];
    let paid = browser()
        .post(checkout_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(card).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 303);
    paid
}

async fn form(app: &TestApp, path: &str, cookie: &str, fields: &[(&str, &str)]) -> Page {
    let response = browser()
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", cookie)
        .body(serde_urlencoded::to_string(fields).unwrap())
        .send()
        .await
        .unwrap();
    Page {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        html: response.text().await.unwrap(),
    }
}

async fn the_plans_section_subscribes_through_checkout_and_cancels(app: &TestApp) {
    for (id, name) in [("chat", "Chat"), ("gpt-4o", "GPT-4o")] {
        assert_eq!(
            app.post("/v1/features", json!({"id": id, "name": name})).await.status,
            201
        );
    }
    let free = json!({"name": "Free", "free": true, "credits": "5", "features": {"chat": true}});
    assert_eq!(app.post("/v1/plans", free).await.status, 201);
    let pro = json!({"name": "Pro", "credits": "1000", "price": 2000, "currency": "usd",
                     "features": {"chat": true, "gpt-4o": true}});
    let pro = app.post("/v1/plans", pro).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.customer("alice").await;
    let alice = sign_in(app, "alice").await;
    let page = open(app, "/billing", Some(&alice)).await;
    assert!(page.html.contains("Your plan: <strong>Free</strong>"), "{}", page.html);
    assert!(page.html.contains("<li>GPT-4o</li>") && page.html.contains("20.00 USD / month"));
    assert!(
        page.html
            .contains("<td class=\"what\">GPT-4o</td><td>Not in your plan</td>"),
        "{}",
        page.html
    );
    assert!(page.html.contains(">Subscribe<span class=\"sr\"> to Pro</span>"));
    let csrf = csrf(&page.html);
    assert_eq!(
        form(app, "/billing/subscribe", &alice, &[("plan", &pro)]).await.status,
        403
    );

    // Stripe's clock and the ledger's agree, as in the subscription tests.
    app.clock.set(app.sandbox.now().await);
    let started = form(app, "/billing/subscribe", &alice, &[("csrf", &csrf), ("plan", &pro)]).await;
    assert_eq!(started.status, 303, "{}", started.html);
    let checkout_url = started.headers["location"].to_str().unwrap().to_string();
    assert!(checkout_url.starts_with(&app.sandbox.base_url), "{checkout_url}");
    let paid = pay(&checkout_url).await;
    let success = browser()
        .get(paid.headers()["location"].to_str().unwrap())
        .send()
        .await
        .unwrap();
    let success = success.text().await.unwrap();
    assert!(success.contains("Subscription active"), "{success}");

    let page = open(app, "/billing", Some(&alice)).await;
    assert!(
        page.html
            .contains("Your plan: <strong>Pro</strong> <span class=\"status s-active\">Active</span>"),
        "{}",
        page.html
    );
    assert!(page.html.contains("<td class=\"what\">GPT-4o</td><td>Yes</td>"));
    assert!(page.html.contains(">Cancel<span class=\"sr\"> Pro</span>"));
    let cancelled = form(app, "/billing/unsubscribe", &alice, &[("csrf", &csrf)]).await;
    assert_eq!(cancelled.status, 303, "{}", cancelled.html);
    let page = open(app, "/billing", Some(&alice)).await;
    assert!(page.html.contains("Cancels at the end of the period"), "{}", page.html);
    assert!(!page.html.contains(">Cancel<span"), "already canceling");
    let check = app
        .post("/v1/check", json!({"customer": "alice", "feature": "gpt-4o"}))
        .await;
    assert_eq!(check.body["allowed"], true, "the plan lasts until the period ends");
}
