//! `creditd serve` as a process: SIGTERM under load exits 0, and the ledger holds exactly
//! the debits that were answered 200; its JSON logs carry each request's `Request-Id`.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use creditd_store::testing::TestDb;
use serde_json::{json, Value};

use crate::outage::usage_entries;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_keeps_exactly_the_answered_debits_sqlite() {
    sigterm_under_load(TestDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_keeps_exactly_the_answered_debits_postgres() {
    let Some(db) = TestDb::postgres().await else { return };
    sigterm_under_load(db).await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(db: &TestDb, dir: &std::path::Path, port: u16, metrics_port: u16) -> Child {
    let log = std::fs::File::create(dir.join("stderr.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_creditd"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--sandbox-listen", &format!("127.0.0.1:{}", free_port())])
        .env("DATABASE_URL", &db.url)
        .env("CREDITD_SANDBOX_STATE", dir.join("sandbox.json"))
        .env("CREDITD_LOG_FORMAT", "json")
        .env("CREDITD_METRICS_LISTEN", format!("127.0.0.1:{metrics_port}"))
        .env("CREDITD_LOG", "info,creditd::ops::request_id=debug")
        .env_remove("CREDITD_CONFIG")
        .env_remove("STRIPE_SECRET_KEY")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start creditd serve")
}

async fn sigterm_under_load(db: TestDb) {
    let key = db
        .store
        .create_api_key("load", creditd_store::unix_now())
        .await
        .unwrap()
        .secret;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let metrics_port = free_port();
    let mut child = start(&db, dir.path(), port, metrics_port);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "creditd never came up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let created = client
        .post(format!("{base}/v1/customers"))
        .bearer_auth(&key)
        .json(&json!({"id": "loaded"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let request_id = created.headers()["request-id"].to_str().unwrap().to_string();
    // `metrics_listen`: /metrics there, and only there.
    let main = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(main.status(), 404);
    let metrics = client.get(format!("http://127.0.0.1:{metrics_port}/metrics")).send();
    let metrics = metrics.await.unwrap().text().await.unwrap();
    assert!(metrics.contains("creditd_http_requests_total"), "{metrics}");
    let grant = json!({"amount": "1000000", "reason": "load"});
    let granted = client
        .post(format!("{base}/v1/customers/loaded/grants"))
        .bearer_auth(&key)
        .json(&grant)
        .send();
    assert_eq!(granted.await.unwrap().status(), 201);

    let answered = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..16 {
        let (client, url, key, answered) = (
            client.clone(),
            format!("{base}/v1/usage"),
            key.clone(),
            answered.clone(),
        );
        clients.push(tokio::spawn(async move {
            let body = json!({"customer": "loaded", "amount": "1", "feature": "chat"});
            while Instant::now() < deadline {
                match client.post(&url).bearer_auth(&key).json(&body).send().await {
                    Ok(r) if r.status() == 200 => {
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(r) => panic!("a debit answered {}", r.status()),
                    // The server is gone: this request was never answered.
                    Err(_) => return,
                }
            }
        }));
    }
    // Under way: at least a second and a hundred debits (this machine may be busy).
    tokio::time::sleep(Duration::from_millis(1000)).await;
    while answered.load(Ordering::SeqCst) < 100 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before_signal = answered.load(Ordering::SeqCst);
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    assert!(killed.unwrap().success());
    let exited = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "creditd did not exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for c in clients {
        c.await.unwrap();
    }
    let logs = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
    assert!(exited.success(), "exit {exited:?}; logs:\n{logs}");
    let answered = answered.load(Ordering::SeqCst) as i64;
    assert!(before_signal >= 100, "there was load: {before_signal}");
    assert_eq!(
        usage_entries(&db.url, "loaded").await,
        answered,
        "the ledger holds exactly the debits answered 200"
    );
    let report = db.store.verify().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);

    // Structured logs: every line is a JSON object, and the request's id is in them.
    let lines: Vec<Value> = logs
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["span"]["request_id"] == request_id.as_str()),
        "{request_id} is not in the logs"
    );
    assert!(lines.iter().any(|l| l["message"] == "shut down cleanly"), "{logs}");
}
