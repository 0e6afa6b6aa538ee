//! The app's side of outbound events: a receiver that records every delivery (and answers
//! what a test tells it to), and verification of each message with the official Standard
//! Webhooks packages from PyPI and npm (code nobody here wrote).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

/// One delivery as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("deliveries are JSON")
    }

    pub fn event_type(&self) -> String {
        self.json()["type"].as_str().unwrap().to_string()
    }
}

#[derive(Clone, Default)]
struct Shared {
    received: Arc<Mutex<Vec<Received>>>,
    /// What the receiver answers; 0 means 200.
    status: Arc<AtomicU16>,
    /// Milliseconds to wait before answering.
    delay_ms: Arc<AtomicU64>,
}

pub struct Receiver {
    pub url: String,
    shared: Shared,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let shared = Shared::default();
        let state = shared.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let state = state.clone();
                async move { record(&state, &headers, body).await }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, shared }
    }

    /// Answers `status` from now on (a receiver that is "down" answers 5xx).
    pub fn answer(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    pub fn delay(&self, delay: Duration) {
        self.shared.delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Waits until `done` holds for what was received (at most 20 s).
    pub async fn wait_until(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        for _ in 0..400 {
            let received = self.received();
            if done(&received) {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let types: Vec<String> = self.received().iter().map(Received::event_type).collect();
        panic!("the receiver never got {what}; it got {types:?}");
    }

    /// Waits for a delivery of each of `types` (in any order, others allowed).
    pub async fn wait_for_types(&self, types: &[&str]) -> Vec<Received> {
        self.wait_until(&format!("{types:?}"), |r| {
            types.iter().all(|t| r.iter().any(|m| m.event_type() == *t))
        })
        .await
    }
}

async fn record(state: &Shared, headers: &HeaderMap, body: String) -> (StatusCode, String) {
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    state.received.lock().unwrap().push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body,
    });
    let status = match state.status.load(Ordering::SeqCst) {
        0 => 200,
        s => s,
    };
    // A long body: the delivery log keeps its first KiB.
    (
        StatusCode::from_u16(status).unwrap(),
        format!("answer {status} {}", "x".repeat(1500)),
    )
}

/// One package's answer for one message: the event type it verified, or why it refused.
pub type Verdict = Result<String, String>;

fn verifiers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/webhook-verifiers")
}

/// Verifies every message with `secret` using both official packages; returns each
/// message's verdict per package (`Ok(type)` or `Err(why)`), or `None` when the packages are
/// not installed (skipped with a message; under `CI` that fails).
pub fn verify_official(secret: &str, messages: &[Received]) -> Option<Vec<(Verdict, Verdict)>> {
    let dir = verifiers_dir();
    let python = dir.join(".venv/bin/python");
    let node_package = dir.join("node_modules/standardwebhooks");
    if !python.exists() || !node_package.exists() {
        let reason = format!(
            "the official standardwebhooks packages are not installed in {} (run scripts/install-webhook-verifiers)",
            dir.display()
        );
        if std::env::var_os("CI").is_some() {
            panic!("CI is set and {reason}");
        }
        eprintln!("SKIPPED the Standard Webhooks cross-check: {reason}");
        return None;
    }
    let request = json!({
        "secret": secret,
        "messages": messages.iter().map(|m| json!({
            "id": m.id, "timestamp": m.timestamp, "signature": m.signature, "body": m.body,
        })).collect::<Vec<_>>(),
    })
    .to_string();
    let py = run(Command::new(python).arg(dir.join("verify.py")), &request);
    let js = run(
        Command::new("node").arg(dir.join("verify.mjs")).current_dir(&dir),
        &request,
    );
    assert_eq!(py.len(), messages.len(), "one Python verdict per message");
    assert_eq!(js.len(), messages.len(), "one Node verdict per message");
    Some(py.into_iter().zip(js).collect())
}

/// Asserts that both official packages accept every message with `secret`.
pub fn assert_verified(secret: &str, messages: &[Received]) {
    let Some(verdicts) = verify_official(secret, messages) else {
        return;
    };
    for (message, (py, js)) in messages.iter().zip(verdicts) {
        let expected = message.event_type();
        assert_eq!(py.as_deref(), Ok(expected.as_str()), "Python refused {message:?}");
        assert_eq!(js.as_deref(), Ok(expected.as_str()), "Node refused {message:?}");
    }
}

fn run(command: &mut Command, stdin: &str) -> Vec<Verdict> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the verifier starts");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "verifier failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            if v["ok"] == true {
                Ok(v["type"].as_str().unwrap().to_string())
            } else {
                Err(v["error"].as_str().unwrap_or("?").to_string())
            }
        })
        .collect()
}
