//! `spawn_app`: creditd on port 0 over a fresh database, with a secret key and a hand-moved clock.

use std::net::SocketAddr;

use std::time::Duration;

use creditd::app::{AppState, SANDBOX_SECRET_KEY};
use creditd::billing::Stripe;
use creditd::clock::Clock;
use creditd::config::Settings;
use creditd_sandbox::{SandboxConfig, SandboxHandle, SandboxOptions};
use creditd_store::testing::TestDb;
use creditd_stripe::client::StripeClient;
use serde_json::Value;

pub const T0: i64 = 1_800_000_000;

/// Generates `sqlite` and `postgres` tests for each scenario, and checks the books after.
macro_rules! on_both_backends {
    (settings = $settings:ident; $($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let db = creditd_store::testing::TestDb::sqlite().await;
                let app = crate::helpers::TestApp::spawn_with(db, super::$settings()).await;
                super::$name(&app).await;
                app.assert_books_balance().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let Some(db) = creditd_store::testing::TestDb::postgres().await else { return };
                let app = crate::helpers::TestApp::spawn_with(db, super::$settings()).await;
                super::$name(&app).await;
                app.assert_books_balance().await;
            }
        }
    )*};
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let app = crate::helpers::TestApp::spawn(creditd_store::testing::TestDb::sqlite().await).await;
                super::$name(&app).await;
                app.assert_books_balance().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let Some(db) = creditd_store::testing::TestDb::postgres().await else { return };
                let app = crate::helpers::TestApp::spawn(db).await;
                super::$name(&app).await;
                app.assert_books_balance().await;
            }
        }
    )*};
}
pub(crate) use on_both_backends;

pub struct TestApp {
    pub addr: SocketAddr,
    pub key: String,
    pub clock: Clock,
    pub client: reqwest::Client,
    pub sandbox: SandboxHandle,
    /// A Stripe client on the sandbox, as the tests' stand-in for Stripe's dashboard.
    pub stripe: StripeClient,
    pub db: TestDb,
    state: AppState,
    /// The Stripe event workers run while this is held.
    _events: tokio::sync::watch::Sender<creditd::billing::events::Phase>,
}

pub const WEBHOOK_SECRET: &str = "whsec_creditd_tests";
/// The HS256 secret every test app verifies customer tokens with, unless told otherwise.
pub const JWT_SECRET: &str = "creditd-tests-customer-token-secret-0123456789";

/// The settings of a test app: defaults, with customer tokens on (HS256, [`JWT_SECRET`]).
pub fn test_settings() -> Settings {
    Settings {
        customer_tokens: Some(creditd::tokens::CustomerTokens::hs256(JWT_SECRET.as_bytes()).unwrap()),
        ..Settings::default()
    }
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl TestApp {
    pub async fn spawn(db: TestDb) -> TestApp {
        TestApp::spawn_with(db, test_settings()).await
    }

    pub async fn spawn_with(db: TestDb, settings: Settings) -> TestApp {
        let key = db.store.create_api_key("tests", T0).await.unwrap().secret;
        let clock = Clock::manual(T0);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let options = SandboxOptions {
            delivery_retry_schedule: vec![
                Duration::from_millis(100),
                Duration::from_millis(300),
                Duration::from_secs(1),
            ],
            delivery_timeout: Duration::from_secs(10),
            async_settle_delay: Duration::from_millis(300),
            dispute_delay: Duration::from_millis(300),
            refund_failure_delay: Duration::from_millis(300),
            ..SandboxOptions::default()
        };
        let sandbox = creditd_sandbox::start_with(
            SandboxConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                webhook_url: Some(format!("http://{addr}/v1/stripe/webhook")),
                webhook_secret: WEBHOOK_SECRET.into(),
                public_base_url: None,
                state_path: None,
            },
            options,
        )
        .await
        .unwrap();
        let stripe = StripeClient::new(SANDBOX_SECRET_KEY, Some(sandbox.base_url.clone())).unwrap();
        let billing = Stripe {
            client: stripe.clone(),
            webhook_secrets: vec![WEBHOOK_SECRET.into()],
            public_url: format!("http://{addr}"),
        };
        let state = AppState::new(db.store.clone(), clock.clone(), settings, billing);
        // Stripe events are handled in the background, as under `serve`.
        let (events, phase) = tokio::sync::watch::channel(creditd::billing::events::Phase::Running);
        creditd::billing::events::spawn(&state, phase);
        let router = creditd::http::router(state.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        TestApp {
            addr,
            key,
            clock,
            client: reqwest::Client::new(),
            sandbox,
            stripe,
            db,
            state,
            _events: events,
        }
    }

    /// The running service's state, for calling its internals as an operator would.
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, body, text }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.client.get(self.url(path)).bearer_auth(&self.key)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(self.client.post(self.url(path)).bearer_auth(&self.key).json(&body))
            .await
    }

    pub async fn post_idem(&self, path: &str, key: &str, body: Value) -> Reply {
        let request = self
            .client
            .post(self.url(path))
            .bearer_auth(&self.key)
            .header("Idempotency-Key", key)
            .json(&body);
        self.send(request).await
    }

    pub async fn post_raw(&self, path: &str, body: &str, auth: Option<&str>) -> Reply {
        let mut request = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        self.send(request).await
    }

    /// Creates a customer with the default signup bonus (5 credits).
    pub async fn customer(&self, id: &str) -> Value {
        let reply = self.post("/v1/customers", serde_json::json!({ "id": id })).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        reply.body
    }

    pub async fn grant(&self, customer: &str, amount: &str) -> Value {
        let body = serde_json::json!({ "amount": amount, "reason": "test" });
        let reply = self.post(&format!("/v1/customers/{customer}/grants"), body).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        reply.body
    }

    pub async fn balance(&self, customer: &str) -> (String, String) {
        let reply = self.get(&format!("/v1/customers/{customer}")).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        (
            reply.body["balance"].as_str().unwrap().to_string(),
            reply.body["available"].as_str().unwrap().to_string(),
        )
    }

    pub async fn assert_books_balance(&self) {
        let report = self.db.store.verify().await.unwrap();
        assert!(report.is_clean(), "verify found problems: {:?}", report.problems);
    }
}

/// The error code of a reply.
pub fn code(reply: &Reply) -> &str {
    reply.body["error"]["code"].as_str().unwrap_or("<no error code>")
}

impl TestApp {
    pub async fn send_raw_idem(&self, path: &str, key: &str, body: &str, auth: &str) -> Reply {
        let request = self
            .client
            .post(self.url(path))
            .header("authorization", auth)
            .header("Idempotency-Key", key)
            .header("content-type", "application/json")
            .body(body.to_string());
        self.send(request).await
    }
}

/// Another creditd on the same database, as a second replica: its own connections, writer
/// and API-key cache, the test app's clock and Stripe.
pub struct Replica {
    pub addr: SocketAddr,
    pub state: AppState,
}

impl TestApp {
    pub async fn replica(&self) -> Replica {
        let store = creditd_store::Store::connect(&self.db.url).await.unwrap();
        let billing = Stripe {
            client: self.stripe.clone(),
            webhook_secrets: vec![WEBHOOK_SECRET.into()],
            public_url: format!("http://{}", self.addr),
        };
        let state = AppState::new(store, self.clock.clone(), test_settings(), billing);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = creditd::http::router(state.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Replica { addr, state }
    }

    /// `GET path` on the server at `addr` with secret key `key`.
    pub async fn get_at(&self, addr: SocketAddr, path: &str, key: &str) -> Reply {
        self.send(self.client.get(format!("http://{addr}{path}")).bearer_auth(key))
            .await
    }
}

impl TestApp {
    /// Waits until the recorded Stripe event `id` satisfies `done`, and returns it.
    pub async fn wait_for_event(
        &self,
        id: &str,
        done: impl Fn(&creditd_store::StoredEvent) -> bool,
    ) -> creditd_store::StoredEvent {
        let mut last = None;
        for _ in 0..300 {
            last = self.db.store.stripe_event(id).await.unwrap();
            if last.as_ref().is_some_and(&done) {
                return last.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        panic!("event {id} never got there: {last:?}");
    }

    /// Waits until no recorded Stripe event is waiting to be handled.
    pub async fn wait_until_events_handled(&self) {
        let page = creditd_store::PageRequest {
            limit: 1,
            starting_after: None,
        };
        for _ in 0..300 {
            let waiting = self.db.store.stripe_events(Some("processing"), &page).await.unwrap();
            if waiting.data.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        panic!("Stripe events still waiting to be handled");
    }
}

/// One statement straight to the database, past creditd: rows affected.
pub async fn raw_execute(database_url: &str, sql: &str) -> u64 {
    use sqlx::Executor;
    if database_url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(database_url).await.unwrap();
        let done = pool.execute(sql).await.unwrap().rows_affected();
        pool.close().await;
        done
    } else {
        let pool = sqlx::PgPool::connect(database_url).await.unwrap();
        let done = pool.execute(sql).await.unwrap().rows_affected();
        pool.close().await;
        done
    }
}

/// A `SELECT COUNT(*) …` straight from the database.
pub async fn raw_count(database_url: &str, sql: &str) -> i64 {
    if database_url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(database_url).await.unwrap();
        let n = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    } else {
        let pool = sqlx::PgPool::connect(database_url).await.unwrap();
        let n = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    }
}
