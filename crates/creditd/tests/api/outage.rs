//! PostgreSQL goes away and comes back: a TCP proxy in the test sits between creditd and the
//! database and cuts every connection (and refuses new ones) for a while.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use creditd_store::testing::TestDb;
use creditd_store::Store;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::helpers::{code, TestApp};

/// Forwards connections to `upstream` until cut; while cut, new connections are closed at
/// once and every open one was dropped.
struct Proxy {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (is_cut, conns) = (cut.clone(), open.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if is_cut.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        tokio::io::copy_bidirectional(&mut client, &mut server).await.ok();
                    }
                });
                conns.lock().unwrap().push(task.abort_handle());
            }
        });
        Proxy { addr, cut, open }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for conn in self.open.lock().unwrap().drain(..) {
            conn.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// The `host:port` of a database URL, and its address.
async fn host_port(url: &str) -> (String, SocketAddr) {
    let after_at = url.rsplit_once('@').map_or(url, |(_, rest)| rest);
    let host_port = after_at.split('/').next().unwrap();
    let addr = tokio::net::lookup_host(host_port).await.unwrap().next().unwrap();
    (host_port.to_string(), addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_outage_answers_503_then_recovers_exactly_once() {
    let Some(mut db) = TestDb::postgres().await else { return };
    let (host_port, upstream) = host_port(&db.url).await;
    let proxy = Proxy::start(upstream).await;
    let proxied = db.url.replacen(&host_port, &proxy.addr.to_string(), 1);
    db.store = Store::open(&proxied).await.unwrap();
    let app = TestApp::spawn(db).await;
    app.customer("steady").await;
    app.grant("steady", "1000").await;

    // Clients spend with idempotency keys and retry on 503 (never on anything else),
    // through the outage, until every spend is answered 200.
    const CLIENTS: usize = 8;
    const SPENDS: usize = 15;
    let unavailable = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (client, url, key) = (app.client.clone(), app.url("/v1/usage"), app.key.clone());
        let unavailable = unavailable.clone();
        clients.push(tokio::spawn(async move {
            for s in 0..SPENDS {
                let body = json!({"customer": "steady", "amount": "1", "feature": "chat"});
                loop {
                    let sent = client
                        .post(&url)
                        .bearer_auth(&key)
                        .header("Idempotency-Key", format!("outage-{c}-{s}"))
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    match sent.status().as_u16() {
                        200 => break,
                        503 => {
                            assert!(sent.headers().contains_key("retry-after"));
                            let error: serde_json::Value = sent.json().await.unwrap();
                            let code = error["error"]["code"].as_str().unwrap().to_string();
                            assert!(code == "database_unavailable" || code == "overloaded", "{error}");
                            unavailable.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        other => panic!("{other} during the outage: {}", sent.text().await.unwrap()),
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.headers().contains_key("retry-after"));
    let read = app.get("/v1/customers/steady").await;
    assert_eq!(
        (read.status, code(&read)),
        (503, "database_unavailable"),
        "{}",
        read.text
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    proxy.restore();
    for client in clients {
        client.await.unwrap();
    }
    assert!(unavailable.load(Ordering::SeqCst) > 0, "the outage was seen");
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "ready again by itself");
    let spent = (CLIENTS * SPENDS) as i64;
    assert_eq!(
        app.balance("steady").await.0,
        (1005 - spent).to_string(),
        "every spend exactly once"
    );
    assert_eq!(usage_entries(&app.db.url, "steady").await, spent);
    app.assert_books_balance().await;
}

/// Usage entries of a customer, counted in the database itself.
pub async fn usage_entries(database_url: &str, customer: &str) -> i64 {
    assert!(customer.chars().all(|c| c.is_ascii_alphanumeric()), "{customer:?}");
    let sql = format!("SELECT COUNT(*) FROM ledger_entries WHERE kind = 'usage' AND customer_id = '{customer}'");
    crate::helpers::raw_count(database_url, &sql).await
}
