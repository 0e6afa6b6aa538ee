//! The customer-scoped API: customer tokens signed by the app, every path tried with a second
//! customer's token and with forged, expired and malformed ones.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use creditd::config::Settings;
use creditd::tokens::CustomerTokens;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::helpers::{code, on_both_backends, test_settings, Reply, TestApp, JWT_SECRET, T0};

on_both_backends!(
    a_token_sees_and_buys_only_for_its_own_customer,
    bad_tokens_are_refused_on_every_customer_path,
    usage_is_summed_by_day_and_by_feature,
);
on_both_backends!(settings = rs256_settings; public_keys_refuse_algorithm_confusion_and_other_keys);
on_both_backends!(settings = es256_settings; es256_public_keys_verify_their_own_tokens_only);

const RSA_PRIVATE: &[u8] = include_bytes!("keys/rsa_private.pem");
const RSA_PUBLIC: &[u8] = include_bytes!("keys/rsa_public.pem");
const RSA_OTHER_PRIVATE: &[u8] = include_bytes!("keys/rsa_other_private.pem");
const EC_PRIVATE: &[u8] = include_bytes!("keys/ec_private.pem");
const EC_PUBLIC: &[u8] = include_bytes!("keys/ec_public.pem");

/// Every customer-scoped endpoint, as (method, path).
pub const PATHS: [(&str, &str); 5] = [
    ("GET", "/v1/me"),
    ("GET", "/v1/me/ledger"),
    ("GET", "/v1/me/payments"),
    ("GET", "/v1/me/usage"),
    ("POST", "/v1/me/checkout-sessions"),
];

fn rs256_settings() -> Settings {
    Settings {
        customer_tokens: Some(CustomerTokens::public_key_pem(RSA_PUBLIC).unwrap()),
        ..Settings::default()
    }
}

fn es256_settings() -> Settings {
    Settings {
        customer_tokens: Some(CustomerTokens::public_key_pem(EC_PUBLIC).unwrap()),
        ..test_settings()
    }
}

/// What the app's backend does: sign `claims` with the shared secret.
pub fn hs256(claims: Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

/// A good token for `customer`, valid for an hour of the test clock.
pub fn token_for(customer: &str) -> String {
    hs256(json!({"sub": customer, "exp": T0 + 3600}))
}

fn rs256(claims: Value, private: &[u8]) -> String {
    encode(
        &Header::new(Algorithm::RS256),
        &claims,
        &EncodingKey::from_rsa_pem(private).unwrap(),
    )
    .unwrap()
}

fn es256(claims: Value) -> String {
    encode(
        &Header::new(Algorithm::ES256),
        &claims,
        &EncodingKey::from_ec_pem(EC_PRIVATE).unwrap(),
    )
    .unwrap()
}

/// A token that says `alg: none` and carries no signature.
fn unsigned(claims: Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{body}.")
}

/// `claims` signed with HMAC-SHA256 keyed by `key`: the classic forgery against servers that
/// let the token pick its algorithm and use an RSA public key as the HMAC secret.
fn hs256_with_key(claims: Value, key: &[u8]) -> String {
    encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(key)).unwrap()
}

async fn call(app: &TestApp, method: &str, path: &str, token: Option<&str>, body: Value) -> Reply {
    let mut request = match method {
        "GET" => app.client.get(app.url(path)),
        _ => app.client.post(app.url(path)).json(&body),
    };
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    app.send(request).await
}

pub async fn me_get(app: &TestApp, path: &str, token: &str) -> Reply {
    call(app, "GET", path, Some(token), Value::Null).await
}

async fn package(app: &TestApp) -> String {
    let reply = app
        .post(
            "/v1/packages",
            json!({"name": "Starter", "credits": "100", "price": 500, "currency": "usd"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.body["id"].as_str().unwrap().to_string()
}

async fn spend(app: &TestApp, customer: &str, amount: &str, feature: &str) {
    let reply = app
        .post(
            "/v1/usage",
            json!({"customer": customer, "amount": amount, "feature": feature}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

fn customers_of(reply: &Reply) -> Vec<&str> {
    reply.body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {}", reply.text))
        .iter()
        .map(|item| item["customer"].as_str().unwrap())
        .collect()
}

async fn a_token_sees_and_buys_only_for_its_own_customer(app: &TestApp) {
    app.customer("alice").await;
    app.customer("bob").await;
    spend(app, "alice", "1.5", "chat").await;
    spend(app, "alice", "2", "image").await;
    spend(app, "bob", "3", "chat").await;
    let pkg = package(app).await;
    let (alice, bob) = (token_for("alice"), token_for("bob"));

    let me = me_get(app, "/v1/me", &alice).await;
    assert_eq!((me.status, me.body["id"].as_str()), (200, Some("alice")), "{}", me.text);
    assert_eq!(me.body["balance"], "1.5");
    let me = me_get(app, "/v1/me", &bob).await;
    assert_eq!(
        (me.body["id"].as_str(), me.body["balance"].as_str()),
        (Some("bob"), Some("2"))
    );

    let ledger = me_get(app, "/v1/me/ledger", &alice).await;
    assert_eq!(customers_of(&ledger), ["alice"; 3]);
    let ledger = me_get(app, "/v1/me/ledger?limit=1", &bob).await;
    assert_eq!(
        (customers_of(&ledger), ledger.body["has_more"].as_bool()),
        (vec!["bob"], Some(true))
    );
    // Paging from another customer's entry finds nothing of theirs.
    let alices_entry = me_get(app, "/v1/me/ledger", &alice).await.body["data"][0]["id"].clone();
    let crossed = me_get(
        app,
        &format!("/v1/me/ledger?starting_after={}", alices_entry.as_str().unwrap()),
        &bob,
    )
    .await;
    assert_eq!(crossed.body["data"], json!([]));

    let usage = me_get(app, "/v1/me/usage?group_by=feature", &alice).await;
    assert_eq!(usage.status, 200, "{}", usage.text);
    assert_eq!(
        usage.body["data"],
        json!([{"feature": "chat", "credits": "1.5", "requests": 1}, {"feature": "image", "credits": "2", "requests": 1}])
    );
    let usage = me_get(app, "/v1/me/usage?group_by=feature", &bob).await;
    assert_eq!(usage.body["total"], "3");

    // Buying: the customer comes from the token only.
    let bought = call(
        app,
        "POST",
        "/v1/me/checkout-sessions",
        Some(&alice),
        json!({"package": pkg}),
    )
    .await;
    assert_eq!(bought.status, 201, "{}", bought.text);
    assert_eq!(bought.body["payment"]["customer"], "alice");
    assert!(bought.body["url"].as_str().unwrap().starts_with("http"));
    let sneaky = json!({"package": pkg, "customer": "bob"});
    let refused = call(app, "POST", "/v1/me/checkout-sessions", Some(&alice), sneaky).await;
    assert_eq!(
        (refused.status, code(&refused)),
        (400, "invalid_request"),
        "{}",
        refused.text
    );
    let refused = me_get(app, "/v1/me?customer=bob", &alice).await;
    assert_eq!(refused.status, 400, "no way to name another customer: {}", refused.text);

    assert_eq!(customers_of(&me_get(app, "/v1/me/payments", &alice).await), ["alice"]);
    assert!(customers_of(&me_get(app, "/v1/me/payments", &bob).await).is_empty());

    // The same Idempotency-Key from two customers is two purchases, never a replay of the other's.
    let with_key = |token: &str| {
        app.client
            .post(app.url("/v1/me/checkout-sessions"))
            .bearer_auth(token)
            .header("Idempotency-Key", "buy-1")
            .json(&json!({"package": pkg}))
    };
    let first = app.send(with_key(&alice)).await;
    let replay = app.send(with_key(&alice)).await;
    let other = app.send(with_key(&bob)).await;
    assert_eq!(first.body["id"], replay.body["id"]);
    assert_eq!(
        (other.status, other.body["payment"]["customer"].as_str()),
        (201, Some("bob"))
    );
    assert_ne!(other.body["id"], first.body["id"]);

    // A customer token is not a secret key: the app's endpoints refuse it.
    for path in ["/v1/customers/bob", "/v1/customers/alice", "/v1/payments?customer=bob"] {
        let reply = me_get(app, path, &alice).await;
        assert_eq!((reply.status, code(&reply)), (401, "unauthorized"), "{path}");
    }
    let archived = app.post(&format!("/v1/packages/{pkg}/archive"), json!({})).await;
    assert_eq!(archived.status, 200);
    let gone = call(
        app,
        "POST",
        "/v1/me/checkout-sessions",
        Some(&alice),
        json!({"package": pkg}),
    )
    .await;
    assert_eq!((gone.status, code(&gone)), (409, "package_archived"), "{}", gone.text);
}

async fn bad_tokens_are_refused_on_every_customer_path(app: &TestApp) {
    app.customer("alice").await;
    let pkg = package(app).await;
    let claims = json!({"sub": "alice", "exp": T0 + 3600});
    let forged: Vec<(&str, String)> = vec![
        ("expired", hs256(json!({"sub": "alice", "exp": T0 - 60}))),
        ("alg none", unsigned(claims.clone())),
        (
            "wrong secret",
            hs256_with_key(claims.clone(), b"not-the-secret-not-the-secret-not-the-secret"),
        ),
        (
            "RS256 from a key creditd does not trust",
            rs256(claims.clone(), RSA_PRIVATE),
        ),
        ("no exp", hs256(json!({"sub": "alice"}))),
        ("no sub", hs256(json!({"exp": T0 + 3600}))),
        (
            "not yet valid",
            hs256(json!({"sub": "alice", "exp": T0 + 7200, "nbf": T0 + 3600})),
        ),
        ("malformed", "abc.def".into()),
        ("garbage", "not a token at all".into()),
        ("tampered payload", {
            let good = token_for("alice");
            let parts: Vec<&str> = good.split('.').collect();
            let body = URL_SAFE_NO_PAD.encode(json!({"sub": "bob", "exp": T0 + 3600}).to_string());
            format!("{}.{body}.{}", parts[0], parts[2])
        }),
        ("a secret key", app.key.clone()),
    ];
    for (method, path) in PATHS {
        let body = json!({"package": pkg});
        let missing = call(app, method, path, None, body.clone()).await;
        assert_eq!(
            (missing.status, code(&missing)),
            (401, "unauthorized"),
            "{method} {path}"
        );
        for (what, token) in &forged {
            let reply = call(app, method, path, Some(token), body.clone()).await;
            assert_eq!(
                (reply.status, code(&reply)),
                (401, "invalid_token"),
                "{what} on {method} {path}: {}",
                reply.text
            );
            assert!(!reply.body["error"]["message"].as_str().unwrap().is_empty());
        }
        let ghost = call(app, method, path, Some(&token_for("ghost")), body.clone()).await;
        assert_eq!(
            (ghost.status, code(&ghost)),
            (404, "customer_not_found"),
            "{method} {path}"
        );
    }
    let expired = me_get(app, "/v1/me", &forged[0].1).await;
    assert!(expired.body["error"]["message"].as_str().unwrap().contains("expired"));
    // A good token stops working once the clock passes its exp (with 30 s of leeway).
    let good = token_for("alice");
    assert_eq!(me_get(app, "/v1/me", &good).await.status, 200);
    app.clock.advance(3600 + 31);
    assert_eq!(me_get(app, "/v1/me", &good).await.status, 401);
    assert!(app
        .db
        .store
        .payments("alice", &Default::default())
        .await
        .unwrap()
        .data
        .is_empty());
}

async fn usage_is_summed_by_day_and_by_feature(app: &TestApp) {
    app.customer("alice").await;
    app.grant("alice", "100").await;
    let day0 = T0 - T0 % 86_400;
    spend(app, "alice", "1", "chat").await;
    spend(app, "alice", "0.5", "image").await;
    app.clock.advance(86_400);
    spend(app, "alice", "2.25", "chat").await;
    spend(app, "alice", "0.000001", "chat").await;
    let hold = app
        .post(
            "/v1/holds",
            json!({"customer": "alice", "amount": "5", "feature": "image"}),
        )
        .await;
    let capture = format!("/v1/holds/{}/capture", hold.body["id"].as_str().unwrap());
    assert_eq!(app.post(&capture, json!({"amount": "3"})).await.status, 200);
    let alice = hs256(json!({"sub": "alice", "exp": T0 + 10 * 86_400}));

    let by_day = me_get(app, "/v1/me/usage", &alice).await;
    assert_eq!(by_day.status, 200, "{}", by_day.text);
    assert_eq!(
        by_day.body["data"],
        json!([
            {"day": "2027-01-15", "credits": "1.5", "requests": 2},
            {"day": "2027-01-16", "credits": "5.250001", "requests": 3},
        ])
    );
    assert_eq!(
        (by_day.body["total"].as_str(), by_day.body["group_by"].as_str()),
        (Some("6.750001"), Some("day"))
    );
    let by_feature = me_get(app, "/v1/me/usage?group_by=feature", &alice).await;
    assert_eq!(
        by_feature.body["data"],
        json!([{"feature": "chat", "credits": "3.250001", "requests": 3}, {"feature": "image", "credits": "3.5", "requests": 2}])
    );
    // `from` is inclusive and `to` exclusive: only the first day.
    let first_day = me_get(app, &format!("/v1/me/usage?from={day0}&to={}", day0 + 86_400), &alice).await;
    assert_eq!(first_day.body["total"], "1.5", "{}", first_day.text);
    for bad in [
        "group_by=week",
        "from=100&to=100",
        "from=0&to=40000000",
        "from=abc",
        "unknown=1",
    ] {
        let reply = me_get(app, &format!("/v1/me/usage?{bad}"), &alice).await;
        assert_eq!(
            (reply.status, code(&reply)),
            (400, "invalid_request"),
            "{bad}: {}",
            reply.text
        );
    }
}

async fn public_keys_refuse_algorithm_confusion_and_other_keys(app: &TestApp) {
    app.customer("alice").await;
    let claims = json!({"sub": "alice", "exp": T0 + 3600});
    let good = rs256(claims.clone(), RSA_PRIVATE);
    assert_eq!(me_get(app, "/v1/me", &good).await.body["id"], "alice");
    let refused = [
        (
            "HS256 keyed with the public key",
            hs256_with_key(claims.clone(), RSA_PUBLIC),
        ),
        ("RS256 by another key", rs256(claims.clone(), RSA_OTHER_PRIVATE)),
        ("ES256", es256(claims.clone())),
        ("HS256 with the shared test secret", hs256(claims.clone())),
        ("alg none", unsigned(claims.clone())),
    ];
    for (what, token) in refused {
        for (method, path) in PATHS {
            let reply = call(app, method, path, Some(&token), json!({"package": "pkg_x"})).await;
            assert_eq!(
                (reply.status, code(&reply)),
                (401, "invalid_token"),
                "{what} on {path}: {}",
                reply.text
            );
        }
    }
}

async fn es256_public_keys_verify_their_own_tokens_only(app: &TestApp) {
    app.customer("alice").await;
    app.customer("bob").await;
    let claims = json!({"sub": "alice", "exp": T0 + 3600});
    assert_eq!(me_get(app, "/v1/me", &es256(claims.clone())).await.body["id"], "alice");
    let bob = es256(json!({"sub": "bob", "exp": T0 + 3600}));
    assert_eq!(customers_of(&me_get(app, "/v1/me/ledger", &bob).await), ["bob"]);
    for token in [
        rs256(claims.clone(), RSA_PRIVATE),
        hs256_with_key(claims.clone(), EC_PUBLIC),
        token_for("alice"),
    ] {
        let reply = me_get(app, "/v1/me", &token).await;
        assert_eq!((reply.status, code(&reply)), (401, "invalid_token"), "{}", reply.text);
    }
}

fn creditd_with_env(env: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_creditd"));
    command
        .arg("migrate")
        .env("DATABASE_URL", format!("sqlite://{}/c.db", dir.path().display()))
        .env_remove("CREDITD_CONFIG");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

#[test]
fn token_configuration_errors_name_the_key_and_never_echo_secrets() {
    let short = creditd_with_env(&[("CREDITD_JWT_HS256_SECRET", "tooshort-secret")]);
    let stderr = String::from_utf8_lossy(&short.stderr);
    assert!(!short.status.success());
    assert!(
        stderr.contains("CREDITD_JWT_HS256_SECRET") && stderr.contains("at least 32 bytes"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("tooshort-secret"),
        "the secret is never echoed: {stderr}"
    );
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("key.pem");
    std::fs::write(&pem, RSA_PUBLIC).unwrap();
    let both = creditd_with_env(&[
        ("CREDITD_JWT_HS256_SECRET", JWT_SECRET),
        ("CREDITD_JWT_PUBLIC_KEY_FILE", pem.to_str().unwrap()),
    ]);
    assert!(String::from_utf8_lossy(&both.stderr).contains("not both"));
    let missing = creditd_with_env(&[("CREDITD_JWT_PUBLIC_KEY_FILE", "/nonexistent/key.pem")]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("CREDITD_JWT_PUBLIC_KEY_FILE"));
    let private = dir.path().join("private.pem");
    std::fs::write(
        &private,
        b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    let garbage = creditd_with_env(&[("CREDITD_JWT_PUBLIC_KEY_FILE", private.to_str().unwrap())]);
    assert!(String::from_utf8_lossy(&garbage.stderr).contains("not an RSA or EC"));
    let frame = creditd_with_env(&[("CREDITD_BILLING_FRAME_ANCESTORS", "https://ok.example; script-src *")]);
    assert!(String::from_utf8_lossy(&frame.stderr).contains("CREDITD_BILLING_FRAME_ANCESTORS"));
    let fine = creditd_with_env(&[
        ("CREDITD_JWT_PUBLIC_KEY_FILE", pem.to_str().unwrap()),
        ("CREDITD_JWT_ISSUER", "https://app.example"),
        ("CREDITD_BILLING_FRAME_ANCESTORS", "'self' https://app.example"),
        ("CREDITD_LOW_BALANCE_THRESHOLD", "2.5"),
    ]);
    assert!(fine.status.success(), "{}", String::from_utf8_lossy(&fine.stderr));
}
