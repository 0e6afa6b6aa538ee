//! Test harness: a sandbox on port 0 with fast retries, a webhook receiver
//! that records (and can refuse) deliveries, and a browser-like form poster.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use creditd_sandbox::{SandboxConfig, SandboxHandle, SandboxOptions};
use creditd_stripe::{PriceInfo, StripeClient};
use serde_json::Value;
use tokio::sync::Mutex;

pub const SECRET_KEY: &str = "sk_test_sandbox_tests";
pub const WEBHOOK_SECRET: &str = "whsec_sandbox_tests";

pub fn fast_options() -> SandboxOptions {
    SandboxOptions {
        delivery_retry_schedule: vec![
            Duration::from_millis(100),
            Duration::from_millis(200),
            Duration::from_millis(400),
        ],
        delivery_timeout: Duration::from_secs(5),
        async_settle_delay: Duration::from_millis(300),
        dispute_delay: Duration::from_millis(100),
        refund_failure_delay: Duration::from_millis(300),
        ..SandboxOptions::default()
    }
}

pub fn config(webhook_url: Option<String>) -> SandboxConfig {
    SandboxConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        webhook_url,
        webhook_secret: WEBHOOK_SECRET.into(),
        public_base_url: None,
        state_path: None,
    }
}

pub async fn sandbox(webhook_url: Option<String>) -> SandboxHandle {
    creditd_sandbox::start_with(config(webhook_url), fast_options())
        .await
        .expect("sandbox starts")
}

pub fn client(sb: &SandboxHandle) -> StripeClient {
    StripeClient::new(SECRET_KEY, Some(sb.base_url.clone())).expect("client")
}

/// A delivery as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub body: Bytes,
    pub signature: String,
    pub status: u16,
}

impl Delivery {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("delivery is JSON")
    }
}

/// A webhook endpoint on port 0 that records every delivery and answers
/// 500 to the first `fail_first` of them.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub deliveries: Arc<Mutex<Vec<Delivery>>>,
}

impl Receiver {
    pub async fn start(fail_first: usize) -> Receiver {
        let deliveries: Arc<Mutex<Vec<Delivery>>> = Default::default();
        let seen = Arc::new(AtomicUsize::new(0));
        let store = deliveries.clone();
        let handler = move |headers: HeaderMap, body: Bytes| {
            let store = store.clone();
            let seen = seen.clone();
            async move {
                let n = seen.fetch_add(1, Ordering::SeqCst);
                let status = if n < fail_first {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                };
                let signature = headers
                    .get("stripe-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                store.lock().await.push(Delivery {
                    body,
                    signature,
                    status: status.as_u16(),
                });
                status
            }
        };
        let router = axum::Router::new().route("/hook", axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Receiver { url, deliveries }
    }

    /// Deliveries answered 2xx, as parsed events.
    pub async fn accepted(&self) -> Vec<Value> {
        self.deliveries
            .lock()
            .await
            .iter()
            .filter(|d| d.status == 200)
            .map(Delivery::json)
            .collect()
    }

    /// Waits until `pred` holds for the accepted events (up to 10 s).
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        for _ in 0..200 {
            let got = self.accepted().await;
            if pred(&got) {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let types: Vec<_> = self.accepted().await.iter().map(|e| e["type"].to_string()).collect();
        panic!("timed out waiting for {what}; received {types:?}");
    }
}

pub fn types_of(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// An HTTP client that does not follow redirects, like a test browser.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// POSTs the hosted checkout form at `url` (a session's `url`).
pub async fn pay(url: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    browser()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("hosted form POST")
}

pub fn card(number: &str) -> Vec<(&str, &str)> {
    vec![
        ("method", "card"),
        ("card_number", number),
        ("card_expiry", "12 / 34"),
        ("card_cvc", "123"),
        ("name", "Ada Lovelace"),
    ]
}

/// GET with the secret key; returns status and JSON.
pub async fn get_json(sb: &SandboxHandle, path: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .get(format!("{}{}", sb.base_url, path.trim_start_matches('/')))
        .bearer_auth(SECRET_KEY)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// POST form params with the secret key and an optional idempotency key.
pub async fn post_form(
    sb: &SandboxHandle,
    path: &str,
    params: &[(&str, &str)],
    key: Option<&str>,
) -> reqwest::Response {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let mut req = reqwest::Client::new()
        .post(format!("{}{}", sb.base_url, path.trim_start_matches('/')))
        .bearer_auth(SECRET_KEY)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    req.send().await.unwrap()
}

/// A customer and a one-time price of 1000 usd.
pub async fn customer_and_price(c: &StripeClient, tag: &str) -> (String, PriceInfo) {
    let cus = c
        .create_customer(&format!("cust_{tag}"), Some("ada@example.com"), &format!("cus-{tag}"))
        .await
        .unwrap();
    let price = c
        .create_product_and_price("100 credits", 1000, "usd", &format!("price-{tag}"))
        .await
        .unwrap();
    (cus, price)
}

/// A succeeded PaymentIntent of `amount` usd paid with test method `pm`;
/// returns (payment intent id, charge id).
pub async fn paid_intent(c: &StripeClient, customer: &str, pm: &str, amount: i64, key: &str) -> (String, String) {
    let pi = c
        .create_payment_intent(creditd_stripe::PaymentIntentParams {
            customer: customer.into(),
            amount,
            currency: "usd".into(),
            metadata: vec![],
            idempotency_key: format!("{key}-create"),
        })
        .await
        .unwrap();
    let pi = c
        .confirm_payment_intent(&pi.id, pm, &format!("{key}-confirm"))
        .await
        .unwrap();
    assert_eq!(pi.status, "succeeded");
    (pi.id, pi.latest_charge.unwrap())
}

/// Polls `f` until it returns `Some` (up to 10 s).
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Event types recorded by the sandbox whose `data.object.id` is `id`, in order.
pub async fn event_types_for(sb: &SandboxHandle, id: &str) -> Vec<String> {
    sb.read(|s| {
        s.events
            .iter()
            .filter(|e| e.object["id"] == id)
            .map(|e| e.type_.clone())
            .collect()
    })
    .await
}

pub fn checkout_params(customer: &str, price: &str, key: &str) -> creditd_stripe::CheckoutParams {
    creditd_stripe::CheckoutParams {
        customer: customer.into(),
        price: price.into(),
        quantity: 2,
        success_url: "https://app.example/success?session_id={CHECKOUT_SESSION_ID}".into(),
        cancel_url: "https://app.example/cancel".into(),
        client_reference_id: Some("ref-1".into()),
        metadata: vec![("package".into(), "pkg_100".into())],
        idempotency_key: key.into(),
    }
}

/// A customer subscribed through Checkout (hosted page, card `number`) to a
/// new monthly price of `amount` usd: (customer, price, subscription).
pub async fn subscribe(c: &StripeClient, tag: &str, amount: i64, number: &str) -> (String, PriceInfo, String) {
    let cus = c
        .create_customer(&format!("cust_{tag}"), Some("sub@example.com"), &format!("cus-{tag}"))
        .await
        .unwrap();
    let price = c
        .create_recurring_price(&format!("Plan {tag}"), amount, "usd", "month", &format!("price-{tag}"))
        .await
        .unwrap();
    let session = c
        .create_subscription_checkout_session(creditd_stripe::SubscriptionCheckoutParams {
            customer: cus.clone(),
            price: price.id.clone(),
            success_url: "https://app.example/ok?session_id={CHECKOUT_SESSION_ID}".into(),
            cancel_url: "https://app.example/cancel".into(),
            client_reference_id: None,
            metadata: vec![("plan".into(), tag.into())],
            idempotency_key: format!("cs-{tag}"),
        })
        .await
        .unwrap();
    assert_eq!(session.mode, "subscription");
    let resp = pay(session.url.as_deref().unwrap(), &card(number)).await;
    assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap_or_default());
    let session = c.retrieve_checkout_session(&session.id).await.unwrap();
    (
        cus,
        price,
        session.subscription.expect("paid session names its subscription"),
    )
}
