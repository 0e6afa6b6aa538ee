//! The operator's dashboard: logging in, report figures against a seeded scenario computed
//! here independently, adjustments, Stripe event retries, exports, and the security rules
//! (no API keys, customer tokens or anonymous requests; CSRF on every form POST).

use creditd_domain::views::Package;
use creditd_domain::Credits;
use creditd_store::{NewPackage, NewPayment, PaymentUpdate};
use serde_json::{json, Value};

use crate::helpers::{on_both_backends, Reply, TestApp, T0};

on_both_backends!(
    report_figures_match_a_seeded_scenario,
    admins_adjust_credits_with_a_reason_and_never_below_zero,
    failed_events_come_first_and_retry_recovers_them,
    exports_stream_csv_for_a_date_range,
    catalog_creates_and_archives_packages,
    catalog_manages_features_and_plan_entitlements_and_syncs_packages,
    every_admin_route_refuses_api_keys_customer_tokens_and_anonymous_requests,
    every_form_post_requires_the_sessions_csrf_token,
    logins_are_rate_limited_and_sessions_end,
    admins_created_by_the_cli_can_log_in,
);

const EMAIL: &str = "ops@example.com";
const PASSWORD: &str = "correct horse battery staple";

/// A logged-in admin: the session cookie and the CSRF token of its forms.
pub(crate) struct Session {
    cookie: String,
    csrf: String,
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_string())
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no hidden {name} in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

async fn create_admin(app: &TestApp, email: &str) {
    let hash = creditd::admin::auth::hash_password(PASSWORD).unwrap();
    app.db.store.upsert_admin_user(email, &hash, T0).await.unwrap();
}

/// Submits the login form as a browser does; returns the response.
async fn submit_login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    let page = no_redirects().get(app.url("/admin/login")).send().await.unwrap();
    let login_cookie = set_cookie(&page, "creditd_admin_login").expect("login cookie");
    let csrf = hidden(&page.text().await.unwrap(), "csrf");
    no_redirects()
        .post(app.url("/admin/login"))
        .header("cookie", login_cookie)
        .form(&[("email", email), ("password", password), ("csrf", &csrf)])
        .send()
        .await
        .unwrap()
}

pub(crate) async fn login(app: &TestApp) -> Session {
    create_admin(app, EMAIL).await;
    login_as(app, EMAIL).await
}

async fn login_as(app: &TestApp, email: &str) -> Session {
    let response = submit_login(app, email, PASSWORD).await;
    assert_eq!(response.status(), 303, "{:?}", response.text().await);
    let set = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect::<Vec<_>>();
    let session = set
        .iter()
        .find(|c| c.starts_with("creditd_admin="))
        .expect("session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict") && !session.contains("Secure"),
        "{session}"
    );
    let cookie = session.split(';').next().unwrap().to_string();
    let page = no_redirects()
        .get(app.url("/admin/customers"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csrf = hidden(&page.text().await.unwrap(), "csrf");
    Session { cookie, csrf }
}

impl Session {
    pub(crate) async fn get(&self, app: &TestApp, path: &str) -> Reply {
        app.send(no_redirects().get(app.url(path)).header("cookie", &self.cookie))
            .await
    }

    pub(crate) async fn post_form(&self, app: &TestApp, path: &str, fields: &[(&str, &str)]) -> Reply {
        let mut fields = fields.to_vec();
        fields.push(("csrf", &self.csrf));
        let request = no_redirects()
            .post(app.url(path))
            .header("cookie", &self.cookie)
            .form(&fields);
        app.send(request).await
    }

    /// Fills in a customer's adjust form (with the form's own idempotency key).
    async fn adjust(&self, app: &TestApp, customer: &str, fields: &[(&str, &str)]) -> Reply {
        let page = self.get(app, &format!("/admin/customers/{customer}")).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let key = hidden(&page.text, "key");
        let mut fields = fields.to_vec();
        fields.push(("key", &key));
        self.post_form(app, &format!("/admin/customers/{customer}/adjust"), &fields)
            .await
    }
}

async fn sold_package(app: &TestApp, credits: i64, price: i64, currency: &str) -> Package {
    let new = NewPackage {
        name: format!("{credits} credits"),
        credits: Credits::from_whole(credits).unwrap(),
        price,
        currency: currency.into(),
        stripe_price: None,
    };
    app.db.store.create_package(&new, T0).await.unwrap()
}

/// A payment moved as Stripe would: paid (granted) or failed.
async fn payment(app: &TestApp, customer: &str, package: &Package, quantity: i64, paid: bool) {
    let store = &app.db.store;
    let new = NewPayment {
        customer: customer.into(),
        package: package.clone(),
        quantity,
        flow: "checkout",
    };
    let payment = store.create_payment(&new, app.clock.now()).await.unwrap();
    let update = if paid {
        PaymentUpdate::Paid {
            reference: format!("cs_test_{}", payment.id),
            payment_intent: None,
            receipt_url: None,
        }
    } else {
        PaymentUpdate::Failed {
            message: "card declined".into(),
        }
    };
    creditd::billing::update_payment(&app.state(), &payment.id, update)
        .await
        .unwrap();
}

async fn usage(app: &TestApp, customer: &str, amount: &str, feature: &str) {
    let reply = app
        .post(
            "/v1/usage",
            json!({"customer": customer, "amount": amount, "feature": feature}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

fn credits(text: &str) -> i64 {
    Credits::parse(text).unwrap().micros()
}

async fn report_figures_match_a_seeded_scenario(app: &TestApp) {
    let admin = login(app).await;
    // Every credit movement of the scenario, tallied here as it is made.
    let (mut issued, mut spent, mut expired, mut deducted) = (0i64, 0i64, 0i64, 0i64);
    for id in ["ada", "bob", "cy"] {
        app.customer(id).await;
        issued += credits("5");
    }
    app.grant("ada", "100").await;
    issued += credits("100");
    let soon = app
        .post(
            "/v1/customers/bob/grants",
            json!({"amount": "10", "reason": "trial", "expires_at": T0 + 100}),
        )
        .await;
    assert_eq!(soon.status, 201, "{}", soon.text);
    issued += credits("10");
    let usd = sold_package(app, 50, 500, "usd").await;
    let eur = sold_package(app, 90, 900, "eur").await;
    payment(app, "ada", &usd, 2, true).await;
    payment(app, "bob", &eur, 1, true).await;
    payment(app, "cy", &usd, 1, false).await;
    issued += credits("100") + credits("90");
    usage(app, "ada", "12.5", "chat").await;
    usage(app, "ada", "3", "embed").await;
    usage(app, "bob", "2", "chat").await;
    spent += credits("12.5") + credits("3") + credits("2");
    // bob's 2 came out of the expiring grant first (earliest expiry): 8 of it expire.
    app.clock.advance(200);
    app.db.store.sweep(app.clock.now(), 100).await.unwrap();
    expired += credits("8");
    let reply = admin
        .adjust(
            app,
            "cy",
            &[("direction", "deduct"), ("amount", "1.5"), ("reason", "abuse")],
        )
        .await;
    assert_eq!(reply.status, 303, "{}", reply.text);
    deducted += credits("1.5");
    let reply = admin
        .adjust(
            app,
            "cy",
            &[("direction", "grant"), ("amount", "7"), ("reason", "goodwill")],
        )
        .await;
    assert_eq!(reply.status, 303, "{}", reply.text);
    issued += credits("7");
    let outstanding = issued - spent - deducted - expired;

    let reply = admin
        .get(
            app,
            "/v1/admin/reports/overview?from=2027-01-01&to=2027-01-31&interval=month",
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let o = &reply.body;
    let c = &o["credits"];
    let micros = |v: &Value| credits(v.as_str().unwrap());
    assert_eq!(micros(&c["issued"]), issued, "{c}");
    assert_eq!(micros(&c["spent"]), spent);
    assert_eq!(micros(&c["deducted_by_admins"]), deducted);
    assert_eq!(micros(&c["expired"]), expired);
    assert_eq!(micros(&c["clawed_back"]), 0);
    assert_eq!(micros(&c["outstanding"]), outstanding);
    assert_eq!(c["balanced"], true);
    assert_eq!(
        o["revenue"],
        json!([
            {"start": "2027-01-01", "currency": "eur", "gross": 900, "refunds": 0, "disputes_lost": 0, "net": 900},
            {"start": "2027-01-01", "currency": "usd", "gross": 1000, "refunds": 0, "disputes_lost": 0, "net": 1000},
        ])
    );
    assert_eq!(
        o["usage"],
        json!([
            {"start": "2027-01-01", "feature": "chat", "credits": "14.5"},
            {"start": "2027-01-01", "feature": "embed", "credits": "3"},
        ])
    );
    assert_eq!(
        o["top_customers"]["by_spend"],
        json!([{"customer": "ada", "currency": "usd", "amount": 1000}, {"customer": "bob", "currency": "eur", "amount": 900}])
    );
    assert_eq!(
        o["top_customers"]["by_usage"],
        json!([{"customer": "ada", "credits": "15.5"}, {"customer": "bob", "credits": "2"}])
    );
    assert_eq!(o["subscriptions"], json!([]));
    // The same figures from the narrower endpoints, by day: T0 is 2027-01-15.
    let revenue = admin
        .get(app, "/v1/admin/reports/revenue?from=2027-01-15&to=2027-01-15")
        .await;
    assert_eq!(revenue.body["data"].as_array().unwrap().len(), 2, "{}", revenue.text);
    assert_eq!(revenue.body["data"][1]["start"], "2027-01-15");
    let outside = admin
        .get(app, "/v1/admin/reports/revenue?from=2027-01-16&to=2027-01-20")
        .await;
    assert_eq!(outside.body["data"], json!([]));
    let books = admin.get(app, "/v1/admin/reports/credits").await;
    assert_eq!(&books.body, c);
    let bad = admin.get(app, "/v1/admin/reports/usage?from=2027-02-30").await;
    assert_eq!((bad.status, bad.body["error"]["param"].as_str()), (400, Some("from")));
    // And on the page, the books balance on screen.
    let page = admin
        .get(app, "/admin?from=2027-01-01&to=2027-01-31&interval=week")
        .await;
    assert_eq!(page.status, 200);
    let shown = Credits::from_micros(outstanding).to_string();
    assert!(
        page.text.contains(&format!("data-line=\"outstanding\">= {shown}<")),
        "{}",
        page.text
    );
    assert!(page.text.contains("data-books=\"balanced\""));
    assert!(page.text.contains("data-total=\"net-usd\">10.00 USD<"));
    assert!(page.text.contains("<svg role=\"img\"") && !page.text.contains("<script"));
    assert!(page.text.contains("No subscription plans yet"));
    let framed = no_redirects()
        .get(app.url("/admin"))
        .header("cookie", &admin.cookie)
        .send()
        .await
        .unwrap();
    let csp = framed.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"));
    assert_eq!(framed.headers()["cache-control"], "no-store");
}

async fn admins_adjust_credits_with_a_reason_and_never_below_zero(app: &TestApp) {
    let admin = login(app).await;
    let found = admin.get(app, "/admin/customers?q=EXAMPLE.org").await;
    assert!(found.text.contains("No customer matches"));
    app.post("/v1/customers", json!({"id": "dee", "email": "dee@example.org"}))
        .await;
    let found = admin.get(app, "/admin/customers?q=EXAMPLE.org").await;
    assert!(found.text.contains("href=\"/admin/customers/dee\""), "{}", found.text);
    let by_id = admin.get(app, "/admin/customers?q=dee").await;
    assert!(by_id.text.contains("dee@example.org"));

    let expiry = "2027-06-01";
    let granted = admin
        .adjust(
            app,
            "dee",
            &[
                ("direction", "grant"),
                ("amount", "2.25"),
                ("reason", "refund for outage"),
                ("expires_on", expiry),
            ],
        )
        .await;
    assert_eq!(granted.status, 303, "{}", granted.text);
    assert_eq!(app.balance("dee").await.0, "7.25");
    let grants = app.get("/v1/customers/dee/grants").await;
    let grant = &grants.body["data"][0];
    assert_eq!(grant["source"], "admin");
    assert_eq!(grant["reason"], format!("refund for outage (by {EMAIL})"));
    assert!(grant["expires_at"].as_i64().is_some());

    // Without a reason, or more than the balance: refused and nothing changes.
    let no_reason = admin
        .adjust(
            app,
            "dee",
            &[("direction", "deduct"), ("amount", "1"), ("reason", "  ")],
        )
        .await;
    assert_eq!(no_reason.status, 400);
    assert!(no_reason.text.contains("A reason is required"));
    let too_much = admin
        .adjust(
            app,
            "dee",
            &[("direction", "deduct"), ("amount", "7.25001"), ("reason", "x")],
        )
        .await;
    assert_eq!(too_much.status, 402, "{}", too_much.text);
    assert_eq!(app.balance("dee").await.0, "7.25");

    // A deduction draws in spending order (the expiring admin grant first) and names the admin.
    let page = admin.get(app, "/admin/customers/dee").await;
    let key = hidden(&page.text, "key");
    let fields = [
        ("direction", "deduct"),
        ("amount", "3"),
        ("reason", "chargeback risk"),
        ("key", key.as_str()),
    ];
    let first = admin.post_form(app, "/admin/customers/dee/adjust", &fields).await;
    assert_eq!(first.status, 303);
    let again = admin.post_form(app, "/admin/customers/dee/adjust", &fields).await;
    assert_eq!(again.status, 303, "a resubmitted form adjusts once");
    assert_eq!(app.balance("dee").await.0, "4.25");
    let ledger = app.get("/v1/customers/dee/ledger").await;
    let entries: Vec<&Value> = ledger.body["data"].as_array().unwrap().iter().take(2).collect();
    assert_eq!(entries[0]["amount"], "-0.75");
    assert_eq!(entries[1]["amount"], "-2.25");
    assert_eq!(entries[1]["grant"], grant["id"]);
    for e in &entries {
        assert_eq!(e["kind"], "usage");
        assert_eq!(e["metadata"], json!({"admin": EMAIL, "reason": "chargeback risk"}));
        assert!(e["reference"].as_str().unwrap().starts_with("adj_"));
    }
    let shown = admin.get(app, "/admin/customers/dee").await;
    assert!(shown.text.contains("4.25 credits") && shown.text.contains("chargeback risk"));
    let books = admin.get(app, "/v1/admin/reports/credits").await;
    assert_eq!(books.body["deducted_by_admins"], "3");
    assert_eq!(books.body["spent"], "0");
    let missing = admin.get(app, "/admin/customers/nobody").await;
    assert_eq!(missing.status, 404);
}

/// Pays a Checkout Session on the sandbox's hosted page with a good card.
async fn pay_checkout(app: &TestApp, customer: &str, package: &str) -> String {
    let reply = app
        .post(
            "/v1/checkout-sessions",
            json!({"customer": customer, "package": package, "quantity": 1}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let url = reply.body["url"].as_str().unwrap().to_string();
    let fields = [
        ("method", "card"),
        ("card_number", "4242 4242 4242 4242"),
        ("card_expiry", "12 / 34"),
        ("card_cvc", "123"),
        ("name", "Ada Lovelace"),
    ];
    no_redirects().get(&url).send().await.unwrap();
    no_redirects().post(&url).form(&fields).send().await.unwrap();
    reply.body["id"].as_str().unwrap().to_string()
}

async fn failed_events_come_first_and_retry_recovers_them(app: &TestApp) {
    let admin = login(app).await;
    let empty = admin.get(app, "/admin/events").await;
    assert!(empty.text.contains("No Stripe events received yet") && empty.text.contains("Never run"));
    app.customer("eve").await;
    let pkg = app
        .post(
            "/v1/packages",
            json!({"name": "Pack", "credits": "40", "price": 400, "currency": "usd"}),
        )
        .await;
    let pkg = pkg.body["id"].as_str().unwrap().to_string();
    // Stripe's delivery is lost while creditd was down: the event exists only at Stripe.
    app.sandbox.pause_deliveries();
    let session = pay_checkout(app, "eve", &pkg).await;
    let (events, _) = app.stripe.list_events(None, None, 100).await.unwrap();
    let completed = events
        .iter()
        .find(|e| e.type_ == "checkout.session.completed" && e.payload_json.contains(&session))
        .expect("a completed event");
    let store = &app.db.store;
    let now = app.clock.now();
    store
        .record_stripe_event_due(&completed.id, &completed.type_, now, &completed.payload_json, now, None)
        .await
        .unwrap();
    store
        .settle_stripe_event(
            &completed.id,
            creditd_store::Settled::Failed("simulated: database unavailable", None),
            now,
        )
        .await
        .unwrap();
    let ok =
        r#"{"id":"evt_fine","object":"event","type":"customer.created","created":1,"data":{"object":{"id":"cus_1"}}}"#;
    store
        .record_stripe_event_due("evt_fine", "customer.created", 1, ok, now + 1, None)
        .await
        .unwrap();
    store
        .settle_stripe_event("evt_fine", creditd_store::Settled::Done("ignored"), now + 1)
        .await
        .unwrap();
    assert_eq!(app.balance("eve").await.0, "5");

    let page = admin.get(app, "/admin/events").await;
    let failed_at = page.text.find(&format!("data-event=\"{}\"", completed.id)).unwrap();
    let fine_at = page.text.find("data-event=\"evt_fine\"").unwrap();
    assert!(failed_at < fine_at, "failed events come first although older");
    assert!(page.text.contains("simulated: database unavailable"));
    let retry = format!("/admin/events/{}/retry", completed.id);
    let reply = admin.post_form(app, &retry, &[]).await;
    assert_eq!(reply.status, 303, "{}", reply.text);
    assert_eq!(app.balance("eve").await.0, "45");
    let record = store.stripe_event(&completed.id).await.unwrap().unwrap();
    assert_eq!(
        (record.status.as_str(), record.error, record.attempts),
        ("processed", None, 2)
    );
    // Retrying again (or Stripe's late delivery) converges: no second grant.
    admin.post_form(app, &retry, &[]).await;
    app.sandbox.resume_deliveries();
    for _ in 0..100 {
        if app.sandbox.pending_deliveries().await == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(app.balance("eve").await.0, "45");
    let page = admin.get(app, "/admin/events").await;
    assert!(page.text.contains("No failed events"));
    let unknown = admin.post_form(app, "/admin/events/evt_nope/retry", &[]).await;
    assert_eq!(unknown.status, 404);
}

async fn exports_stream_csv_for_a_date_range(app: &TestApp) {
    let admin = login(app).await;
    // More rows than one database page, so the stream has to page.
    let rows = creditd::admin::exports::PAGE_ROWS as usize + 20;
    app.customer("fay").await;
    app.grant("fay", "10000").await;
    for i in 0..rows {
        let body = json!({"customer": "fay", "amount": "1", "feature": if i % 2 == 0 { "chat" } else { "-cmd" }});
        assert_eq!(app.post("/v1/usage", body).await.status, 200);
    }
    let usd = sold_package(app, 10, 100, "usd").await;
    payment(app, "fay", &usd, 1, true).await;
    let ledger = admin
        .get(app, "/admin/exports/ledger.csv?from=2027-01-15&to=2027-01-15")
        .await;
    assert_eq!(ledger.status, 200);
    let lines: Vec<&str> = ledger.text.lines().collect();
    assert_eq!(
        lines[0],
        "id,created,customer,grant,kind,amount,balance_after,reference,feature,metadata"
    );
    // signup bonus + grant + usage entries + the purchase grant
    assert_eq!(lines.len(), 1 + 2 + rows + 1);
    assert!(ledger.text.contains(",usage,-1,") && ledger.text.contains(",'-cmd,"));
    let usage = admin
        .get(app, "/admin/exports/usage.csv?from=2027-01-15&to=2027-01-15")
        .await;
    assert_eq!(usage.text.lines().count(), 1 + rows);
    let payments = admin
        .get(app, "/admin/exports/payments.csv?from=2027-01-01&to=2027-01-31")
        .await;
    let lines: Vec<&str> = payments.text.lines().collect();
    assert_eq!(lines.len(), 2, "{}", payments.text);
    assert!(lines[1].contains(",fay,") && lines[1].contains(",100,usd,succeeded,"));
    let before = admin
        .get(app, "/admin/exports/ledger.csv?from=2027-01-01&to=2027-01-14")
        .await;
    assert_eq!(before.text.lines().count(), 1);
    let unknown = admin.get(app, "/admin/exports/secrets.csv").await;
    assert_eq!(unknown.status, 404);
}

async fn catalog_creates_and_archives_packages(app: &TestApp) {
    let admin = login(app).await;
    let created = admin
        .post_form(
            app,
            "/admin/catalog/packages",
            &[
                ("name", "Starter"),
                ("credits", "100"),
                ("price", "500"),
                ("currency", "USD"),
            ],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.text);
    let bad = admin
        .post_form(
            app,
            "/admin/catalog/packages",
            &[("name", "Bad"), ("credits", "1"), ("price", "0"), ("currency", "usd")],
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.text.contains("price:"));
    let listed = app.get("/v1/packages").await;
    let package = &listed.body["data"][0];
    assert_eq!(
        (package["name"].as_str(), package["currency"].as_str()),
        (Some("Starter"), Some("usd"))
    );
    let id = package["id"].as_str().unwrap();
    let archived = admin
        .post_form(app, &format!("/admin/catalog/packages/{id}/archive"), &[])
        .await;
    assert_eq!(archived.status, 303);
    assert_eq!(app.get("/v1/packages").await.body["data"], json!([]));
    let page = admin.get(app, "/admin/catalog").await;
    assert!(page.text.contains("archived") && page.text.contains("5.00 USD"));
}

async fn catalog_manages_features_and_plan_entitlements_and_syncs_packages(app: &TestApp) {
    let admin = login(app).await;
    let created = admin
        .post_form(
            app,
            "/admin/catalog/features",
            &[
                ("id", "gpt-4o"),
                ("name", "GPT-4o"),
                ("prices", "input_tokens=2.5, output_tokens=10"),
                ("per", "1000000"),
            ],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.text);
    let bad = admin
        .post_form(
            app,
            "/admin/catalog/features",
            &[("id", "x"), ("name", "X"), ("prices", "tokens"), ("per", "")],
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.text.contains("unit=price"), "{}", bad.text);
    let feature = app.get("/v1/features").await.body["data"][0].clone();
    assert_eq!(
        (feature["prices"]["input_tokens"].as_str(), feature["per"].as_i64()),
        (Some("2.5"), Some(1_000_000))
    );

    let plan = app
        .post(
            "/v1/plans",
            json!({"name": "Pro", "credits": "10", "price": 100, "currency": "usd"}),
        )
        .await;
    let plan = plan.body["id"].as_str().unwrap().to_string();
    let path = format!("/admin/catalog/plans/{plan}/features");
    let saved = admin
        .post_form(
            app,
            &path,
            &[("features", r#"{"gpt-4o": {"limit": 5, "period": "day"}}"#)],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.text);
    let listed = app.get("/v1/plans").await.body["data"][0].clone();
    assert_eq!(listed["features"]["gpt-4o"], json!({"limit": 5, "period": "day"}));
    let unknown = admin.post_form(app, &path, &[("features", r#"{"nope": true}"#)]).await;
    assert_eq!(unknown.status, 400);
    assert!(unknown.text.contains("features.nope"), "{}", unknown.text);
    let page = admin.get(app, "/admin/catalog").await;
    assert!(page.text.contains("input_tokens 2.5, output_tokens 10 per 1000000") && page.text.contains("by plans"));

    // The sync button imports a Stripe Price with credits_amount metadata.
    let form = [("name", "Pack"), ("metadata[credits_amount]", "250")];
    let base = app.sandbox.base_url.trim_end_matches('/').to_string();
    let product: serde_json::Value = app
        .client
        .post(format!("{base}/v1/products"))
        .bearer_auth(creditd::app::SANDBOX_SECRET_KEY)
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let product = product["id"].as_str().unwrap().to_string();
    let price = [
        ("product", product.as_str()),
        ("unit_amount", "900"),
        ("currency", "usd"),
    ];
    let sent = app
        .client
        .post(format!("{base}/v1/prices"))
        .bearer_auth(creditd::app::SANDBOX_SECRET_KEY)
        .form(&price)
        .send()
        .await
        .unwrap();
    assert!(sent.status().is_success());
    let synced = admin.post_form(app, "/admin/catalog/packages/sync", &[]).await;
    assert_eq!(synced.status, 200, "{}", synced.text);
    assert!(synced.text.contains("1 created"), "{}", synced.text);
    let packages = app.get("/v1/packages").await.body["data"].clone();
    assert_eq!(
        (packages[0]["name"].as_str(), packages[0]["credits"].as_str()),
        (Some("Pack"), Some("250"))
    );
    let archived = admin
        .post_form(app, "/admin/catalog/features/gpt-4o/archive", &[])
        .await;
    assert_eq!(archived.status, 303);
    assert_eq!(app.get("/v1/features").await.body["data"], json!([]));
}

/// Every dashboard route with a method, and whether it is a form POST.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/admin"),
    ("GET", "/admin/customers"),
    ("GET", "/admin/customers/gus"),
    ("POST", "/admin/customers/gus/adjust"),
    ("GET", "/admin/events"),
    ("POST", "/admin/events/evt_1/retry"),
    ("GET", "/admin/outbound"),
    ("POST", "/admin/outbound/msg_1/redeliver"),
    ("GET", "/admin/catalog"),
    ("POST", "/admin/catalog/packages"),
    ("POST", "/admin/catalog/packages/pkg_1/archive"),
    ("POST", "/admin/catalog/packages/sync"),
    ("POST", "/admin/catalog/features"),
    ("POST", "/admin/catalog/features/chat/archive"),
    ("POST", "/admin/catalog/plans/plan_1/features"),
    ("GET", "/admin/exports"),
    ("GET", "/admin/exports/ledger.csv"),
    ("GET", "/admin/exports/payments.csv"),
    ("GET", "/admin/exports/usage.csv"),
    ("POST", "/admin/logout"),
    ("GET", "/v1/admin/reports/overview"),
    ("GET", "/v1/admin/reports/revenue"),
    ("GET", "/v1/admin/reports/credits"),
    ("GET", "/v1/admin/reports/usage"),
    ("GET", "/v1/admin/reports/top-customers"),
];

/// A customer token as the billing page uses: an HS256 JWT (its signature does not matter here).
const CUSTOMER_JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJndXMiLCJleHAiOjQxMDI0NDQ4MDB9.c2lnbmF0dXJl";

async fn every_admin_route_refuses_api_keys_customer_tokens_and_anonymous_requests(app: &TestApp) {
    let admin = login(app).await;
    app.customer("gus").await;
    let valid = admin.get(app, "/admin/customers/gus").await;
    assert_eq!(valid.status, 200);
    for (method, path) in ROUTES {
        let method: reqwest::Method = method.parse().unwrap();
        let request = |auth: Option<String>, cookie: Option<&str>| {
            let mut r = no_redirects().request(method.clone(), app.url(path));
            if let Some(auth) = auth {
                r = r.header("authorization", auth);
            }
            if let Some(cookie) = cookie {
                r = r.header("cookie", cookie);
            }
            if method == reqwest::Method::POST {
                r = r.form(&[
                    ("csrf", admin.csrf.as_str()),
                    ("direction", "grant"),
                    ("amount", "1000"),
                    ("reason", "x"),
                ]);
            }
            r
        };
        let cases = [
            ("anonymous", request(None, None)),
            ("API key", request(Some(format!("Bearer {}", app.key)), None)),
            ("customer token", request(Some(format!("Bearer {CUSTOMER_JWT}")), None)),
            (
                "API key with the admin's cookie",
                request(Some(format!("Bearer {}", app.key)), Some(&admin.cookie)),
            ),
            ("forged session", request(None, Some("creditd_admin=forged"))),
        ];
        for (who, request) in cases {
            let reply = app.send(request).await;
            let refused = if path.starts_with("/v1/") {
                reply.status == 401 && reply.body["error"]["code"] == "admin_session_required"
            } else {
                reply.status == 401 || (reply.status == 303 && who != "API key" && who != "customer token")
            };
            assert!(refused, "{method} {path} as {who}: {} {}", reply.status, reply.text);
            assert!(
                !reply.text.contains("gus@") && !reply.text.contains("Balance"),
                "{path} leaked: {}",
                reply.text
            );
        }
    }
    assert_eq!(app.balance("gus").await.0, "5", "no refused POST changed anything");
    // The admin's session still works, and logging in through JSON sets the same cookie.
    assert_eq!(admin.get(app, "/v1/admin/reports/credits").await.status, 200);
    let json_login = app
        .send(
            no_redirects()
                .post(app.url("/v1/admin/sessions"))
                .json(&json!({"email": EMAIL, "password": PASSWORD})),
        )
        .await;
    assert_eq!(json_login.status, 201, "{}", json_login.text);
}

async fn every_form_post_requires_the_sessions_csrf_token(app: &TestApp) {
    let admin = login(app).await;
    create_admin(app, "other@example.com").await;
    let other = login_as(app, "other@example.com").await;
    assert_ne!(admin.csrf, other.csrf);
    app.customer("hal").await;
    let pkg = app
        .post(
            "/v1/packages",
            json!({"name": "P", "credits": "1", "price": 100, "currency": "usd"}),
        )
        .await;
    let pkg = pkg.body["id"].as_str().unwrap().to_string();
    let forms: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            "/admin/customers/hal/adjust".into(),
            vec![
                ("direction", "grant"),
                ("amount", "9"),
                ("reason", "csrf"),
                ("key", "k1"),
            ],
        ),
        ("/admin/events/evt_1/retry".into(), vec![]),
        (
            "/admin/catalog/packages".into(),
            vec![("name", "X"), ("credits", "1"), ("price", "100"), ("currency", "usd")],
        ),
        (format!("/admin/catalog/packages/{pkg}/archive"), vec![]),
        ("/admin/logout".into(), vec![]),
    ];
    for (path, fields) in &forms {
        for token in [None, Some("wrong"), Some(other.csrf.as_str()), Some("")] {
            let mut all = fields.clone();
            if let Some(token) = token {
                all.push(("csrf", token));
            }
            let request = no_redirects()
                .post(app.url(path))
                .header("cookie", &admin.cookie)
                .form(&all);
            let reply = app.send(request).await;
            assert_eq!(reply.status, 403, "{path} with csrf {token:?}: {}", reply.text);
        }
    }
    assert_eq!(app.balance("hal").await.0, "5");
    assert_eq!(app.get("/v1/packages").await.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(admin.get(app, "/admin").await.status, 200, "the session survived");
    // The login form carries its own token, bound to a cookie.
    let no_cookie = no_redirects()
        .post(app.url("/admin/login"))
        .form(&[("email", EMAIL), ("password", PASSWORD), ("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(no_cookie.status(), 403);
    let mismatched = no_redirects()
        .post(app.url("/admin/login"))
        .header("cookie", "creditd_admin_login=abc")
        .form(&[("email", EMAIL), ("password", PASSWORD), ("csrf", "abd")])
        .send()
        .await
        .unwrap();
    assert_eq!(mismatched.status(), 403);
    assert!(set_cookie(&mismatched, "creditd_admin").is_none());
}

async fn logins_are_rate_limited_and_sessions_end(app: &TestApp) {
    create_admin(app, EMAIL).await;
    let wrong = submit_login(app, EMAIL, "not the password").await;
    assert_eq!(wrong.status(), 401);
    let unknown = submit_login(app, "nobody@example.com", PASSWORD).await;
    assert_eq!(unknown.status(), 401);
    for _ in 0..4 {
        assert_eq!(submit_login(app, EMAIL, "guess").await.status(), 401);
    }
    // Five failures for the account: even the right password is refused for a while.
    let limited = submit_login(app, EMAIL, PASSWORD).await;
    assert_eq!(limited.status(), 429);
    let json_limited = app
        .send(
            no_redirects()
                .post(app.url("/v1/admin/sessions"))
                .json(&json!({"email": EMAIL, "password": PASSWORD})),
        )
        .await;
    assert_eq!(json_limited.status, 429);
    app.clock.advance(creditd::admin::auth::FAILURE_WINDOW_SECONDS + 1);
    let session = login_as(app, EMAIL).await;
    // Logging out closes the session in the database: the old cookie no longer works.
    let out = session.post_form(app, "/admin/logout", &[]).await;
    assert_eq!(out.status, 303);
    assert_eq!(session.get(app, "/admin").await.status, 303);
    assert_eq!(session.get(app, "/v1/admin/reports/credits").await.status, 401);
    // Sessions expire.
    let session = login_as(app, EMAIL).await;
    app.clock
        .advance(creditd::config::Settings::default().admin_session_ttl_seconds);
    assert_eq!(session.get(app, "/v1/admin/reports/credits").await.status, 401);
    // A new password closes every session.
    let session = login_as(app, EMAIL).await;
    create_admin(app, EMAIL).await;
    assert_eq!(session.get(app, "/v1/admin/reports/credits").await.status, 401);
}

fn create_user_cli(app: &TestApp, email: &str, stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_creditd"))
        .args(["admin", "create-user", "--email", email, "--password-stdin"])
        .env("DATABASE_URL", &app.db.url)
        .env_remove("CREDITD_CONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run creditd");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

async fn admins_created_by_the_cli_can_log_in(app: &TestApp) {
    let short = create_user_cli(app, "cli@example.com", "short\n");
    assert_eq!(short.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12 characters"));
    let bad = create_user_cli(app, "not-an-email", &format!("{PASSWORD}\n"));
    assert_eq!(bad.status.code(), Some(1));
    let made = create_user_cli(app, "CLI@Example.com", &format!("{PASSWORD}\n"));
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    assert!(String::from_utf8_lossy(&made.stdout).contains("created admin cli@example.com"));
    let stored = app.db.store.admin_user("cli@example.com").await.unwrap().unwrap();
    assert!(stored.password_hash.starts_with("$argon2id$") && !stored.password_hash.contains(PASSWORD));
    assert_eq!(submit_login(app, "Cli@example.com", PASSWORD).await.status(), 303);
}
