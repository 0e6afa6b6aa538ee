//! CORS: a browser on an allowed origin may call `/v1/me…` with a customer token (preflight
//! included); other origins, and the secret-key API, get no CORS headers.

use creditd::config::Settings;

use crate::helpers::{on_both_backends, test_settings, TestApp};
use crate::me::token_for;

const APP: &str = "https://app.example.com";

on_both_backends!(settings = cors_settings;
    a_preflight_from_an_allowed_origin_is_answered_for_the_me_endpoints,
    other_origins_and_the_secret_key_api_get_no_cors_headers,
);
on_both_backends!(no_origin_is_allowed_by_default);

fn cors_settings() -> Settings {
    Settings {
        cors_allowed_origins: vec![APP.into(), "http://localhost:3000".into()],
        ..test_settings()
    }
}

async fn preflight(app: &TestApp, path: &str, origin: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url(path))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type, idempotency-key",
        )
        .send()
        .await
        .unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

async fn a_preflight_from_an_allowed_origin_is_answered_for_the_me_endpoints(app: &TestApp) {
    app.customer("alice").await;
    let answer = preflight(app, "/v1/me/checkout-sessions", APP).await;
    assert!(answer.status().is_success(), "{}", answer.status());
    assert_eq!(header(&answer, "access-control-allow-origin"), Some(APP));
    let methods = header(&answer, "access-control-allow-methods").unwrap().to_lowercase();
    assert!(methods.contains("post") && methods.contains("get"), "{methods}");
    let headers = header(&answer, "access-control-allow-headers").unwrap().to_lowercase();
    for wanted in ["authorization", "content-type", "idempotency-key"] {
        assert!(headers.contains(wanted), "{headers} lacks {wanted}");
    }
    let me = app
        .client
        .get(app.url("/v1/me"))
        .header("origin", APP)
        .bearer_auth(token_for("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(header(&me, "access-control-allow-origin"), Some(APP));
    assert!(header(&me, "vary").unwrap().to_lowercase().contains("origin"));
    assert!(header(&me, "access-control-expose-headers")
        .unwrap()
        .to_lowercase()
        .contains("retry-after"));
}

async fn other_origins_and_the_secret_key_api_get_no_cors_headers(app: &TestApp) {
    app.customer("alice").await;
    let stranger = preflight(app, "/v1/me", "https://evil.example.com").await;
    assert_eq!(header(&stranger, "access-control-allow-origin"), None);
    let near_miss = preflight(app, "/v1/me", "https://app.example.com:8443").await;
    assert_eq!(header(&near_miss, "access-control-allow-origin"), None);
    let secret_key_api = preflight(app, "/v1/usage", APP).await;
    assert_eq!(header(&secret_key_api, "access-control-allow-origin"), None);
    let customer = app
        .client
        .get(app.url("/v1/customers/alice"))
        .header("origin", APP)
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(customer.status(), 200);
    assert_eq!(header(&customer, "access-control-allow-origin"), None);
}

async fn no_origin_is_allowed_by_default(app: &TestApp) {
    let answer = preflight(app, "/v1/me", "http://localhost:3000").await;
    assert_eq!(header(&answer, "access-control-allow-origin"), None);
}
