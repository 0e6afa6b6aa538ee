//! `creditd bench`: debits per second, latency and exactness of creditd's spend path —
//! in-process through the group-commit writer and over HTTP — against the naive design (one
//! transaction per debit) in the same run, on SQLite and PostgreSQL, for one hot customer and
//! for customers spread out. Then balance reads under write load and webhook acknowledgements.

mod http;
mod load;
mod target;
mod wire;

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use creditd_domain::command::{NewCustomer, NewGrant, NewUsage};
use creditd_domain::{Command, Credits, GrantSource, Idempotency, Request};
use creditd_store::{Store, StoreError, Writer};
use serde::Serialize;
use sqlx::{Connection, Executor};

use crate::app::{AppState, SANDBOX_SECRET_KEY};
use crate::billing::Stripe;
use crate::clock::Clock;
use crate::config::Settings;
use http::Http;
use load::{drive, Done, Limit, Naive, Run};

/// Each debit takes this many micro-credits (0.001 credits).
const DEBIT_MICROS: i64 = 1_000;
/// Each benchmark customer starts with one grant this large: no run can exhaust it.
const START_MICROS: i64 = 1_000_000 * 1_000_000;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Seconds per scenario.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Most requests per scenario.
    #[arg(long, default_value_t = 2_000_000)]
    pub requests: u64,
    /// Customers of the "spread" workload.
    #[arg(long, default_value_t = 1000)]
    pub customers: usize,
    /// Backends to run: sqlite, postgres.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    pub backends: Vec<String>,
    /// Workloads to run: hot (one customer), spread (--customers customers).
    #[arg(long, value_delimiter = ',', default_value = "hot,spread")]
    pub workloads: Vec<String>,
    /// Designs to run: naive, in-process, http, http-batch (records through
    /// `/v1/usage/batch`, 100 a request), http-1-client (one client, one debit at a time).
    /// Ratios need naive in the same run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "naive,in-process,http,http-batch,http-1-client"
    )]
    pub designs: Vec<String>,
    /// Concurrent clients of the http-batch design, each sending 100 records a request.
    #[arg(long, default_value_t = 16)]
    pub batch_clients: usize,
    /// A PostgreSQL server; the benchmark creates (and drops) its own database there.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub postgres_url: String,
    /// Seconds a verified API key stays cached by the in-process server (default: the
    /// server's default, `api_key_cache_seconds`).
    #[arg(long)]
    pub api_key_cache_seconds: Option<u64>,
    /// Group commit: most requests per batch (default: `write_batch_size`'s default).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Group commit: microseconds a batch waits for more requests (default: `write_batch_window_us`'s default).
    #[arg(long)]
    pub batch_window_us: Option<u64>,
    /// Drive a creditd that is already running at this URL (HTTP scenarios only) instead of
    /// starting one on temporary databases.
    #[arg(long)]
    pub target: Option<String>,
    /// The secret key for --target.
    #[arg(long, env = "CREDITD_BENCH_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Webhook endpoints (for every event type) registered on the in-process server, each
    /// answered by a local receiver: the spend path with outbound delivery running.
    #[arg(long, default_value_t = 0)]
    pub webhook_endpoints: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One line of the report.
#[derive(Serialize)]
pub struct Row {
    pub backend: String,
    pub workload: String,
    pub design: String,
    pub clients: usize,
    pub ok: u64,
    pub refused: u64,
    pub errors: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Throughput over the naive design's on the same backend and workload.
    pub vs_naive: Option<f64>,
    /// Balances match the successful debits exactly, none negative, and `verify` is clean.
    pub exact: Option<bool>,
    pub note: String,
}

impl Row {
    fn from_run(backend: &str, workload: &str, design: &str, clients: usize, run: &Run) -> Row {
        Row {
            backend: backend.into(),
            workload: workload.into(),
            design: design.into(),
            clients,
            ok: run.ok,
            refused: run.refused,
            errors: run.errors,
            per_second: run.per_second(),
            p50_ms: run.quantile_ms(0.5),
            p99_ms: run.quantile_ms(0.99),
            max_ms: run.quantile_ms(1.0),
            vs_naive: None,
            exact: None,
            note: run.first_error.clone().unwrap_or_default(),
        }
    }
}

pub async fn run(args: &BenchArgs) -> anyhow::Result<i32> {
    anyhow::ensure!(
        args.clients >= 1 && args.customers >= 1 && args.batch_clients >= 1,
        "--clients, --batch-clients and --customers must be at least 1"
    );
    for w in &args.workloads {
        anyhow::ensure!(w == "hot" || w == "spread", "unknown workload {w:?}: use hot, spread");
    }
    for d in &args.designs {
        anyhow::ensure!(
            DESIGNS.contains(&d.as_str()),
            "unknown design {d:?}: use {}",
            DESIGNS.join(", ")
        );
    }
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    if let Some(url) = &args.target {
        let key = args.api_key.clone().ok_or_else(|| {
            anyhow::anyhow!("--target needs --api-key (or CREDITD_BENCH_API_KEY): a secret key of that creditd")
        })?;
        rows = target::run(args, url, key).await?;
        skipped.push(
            "--target: the naive baseline and `creditd verify` need the database and ran only without --target".into(),
        );
    }
    let backends = if args.target.is_some() {
        &[][..]
    } else {
        &args.backends[..]
    };
    for backend in backends {
        let db = match backend.as_str() {
            "sqlite" => BenchDb::sqlite().await?,
            "postgres" => match BenchDb::postgres(&args.postgres_url).await {
                Ok(db) => db,
                Err(e) => {
                    skipped.push(format!(
                        "postgres skipped: {} unreachable ({e})",
                        crate::cli::redact(&args.postgres_url)
                    ));
                    continue;
                }
            },
            other => anyhow::bail!("unknown backend {other:?}: use sqlite, postgres"),
        };
        let result = run_backend(args, backend, &db).await;
        db.drop_database().await;
        rows.extend(result?);
    }
    if args.json {
        let report = serde_json::json!({
            "machine": { "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0) },
            "clients": args.clients,
            "seconds": args.seconds,
            "rows": rows,
            "skipped": skipped,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&rows);
        for s in &skipped {
            println!("{s}");
        }
    }
    let exact = rows.iter().all(|r| r.exact != Some(false));
    Ok(if exact { 0 } else { 1 })
}

async fn run_backend(args: &BenchArgs, backend: &str, db: &BenchDb) -> anyhow::Result<Vec<Row>> {
    let store = Store::open(&db.url).await?;
    let limit = Limit {
        duration: Duration::from_secs(args.seconds),
        requests: args.requests,
    };
    let now = creditd_store::unix_now();
    let defaults = Settings::default();
    let settings = Settings {
        api_key_cache_seconds: args.api_key_cache_seconds.unwrap_or(defaults.api_key_cache_seconds),
        write_batch_size: args.batch_size.unwrap_or(defaults.write_batch_size),
        write_batch_window_us: args.batch_window_us.unwrap_or(defaults.write_batch_window_us),
        ..defaults
    };
    let server = Server::start(&store, settings).await?;
    register_endpoints(&store, args.webhook_endpoints, now).await?;
    let naive = Naive::connect(&db.url).await?;
    let mut rows = Vec::new();
    for (workload, count) in [("hot", 1), ("spread", args.customers)] {
        if !args.workloads.iter().any(|w| w == workload) {
            continue;
        }
        let mut baseline = None;
        for &design in DESIGNS.iter().filter(|d| args.designs.iter().any(|a| a == *d)) {
            let customers = Arc::new(make_customers(&store, &format!("{workload}_{design}"), count, now).await?);
            // The setup's outbound events (customer.created…) are fanned out before the clock
            // starts: the naive design's SQLite transactions fail on any other writer.
            while store.dispatch_events(crate::outbound::now_ms(), 10_000).await? > 0 {}
            let scenario = Scenario {
                args,
                limit,
                workload,
                customers: customers.clone(),
            };
            let clients = scenario.clients(design);
            let readers = (workload == "hot" && design == "http")
                .then(|| server.http.spawn_readers(customers[0].clone(), 2, limit.duration));
            let run = scenario.run(design, &server, &naive).await;
            if let Some(readers) = readers {
                let reads = readers.await?;
                let mut row = Row::from_run(backend, "hot", "balance reads (http) under the write load", 2, &reads);
                row.per_second = reads.ok as f64 / reads.elapsed.as_secs_f64().max(1e-9);
                rows.push(row);
            }
            let mut row = Row::from_run(backend, workload, design, clients, &run);
            if design == "naive" {
                baseline = Some(row.per_second);
            }
            row.vs_naive = baseline.map(|b| row.per_second / b.max(1e-9));
            let problems = check_balances(&store, &customers, &run.per_customer).await?;
            row.exact = Some(problems.is_empty());
            if !problems.is_empty() {
                row.note = problems.join("; ");
            }
            rows.push(row);
        }
    }
    rows.push(server.webhook_acks(backend, 200, &store, None).await?);
    rows.push(server.webhook_acks(backend, 200, &store, Some(SLOW_STRIPE_MS)).await?);
    let report = store.verify().await?;
    if !report.is_clean() {
        for row in rows.iter_mut().filter(|r| r.exact.is_some()) {
            row.exact = Some(false);
            row.note = format!("verify: {}", report.problems.join("; "));
        }
    }
    naive.close().await;
    server.stop().await;
    store.close().await;
    Ok(rows)
}

/// Every design, in the order they run.
const DESIGNS: [&str; 5] = ["naive", "in-process", "http", "http-batch", "http-1-client"];

/// One workload's customers under one design's load.
struct Scenario<'a> {
    args: &'a BenchArgs,
    limit: Limit,
    workload: &'static str,
    customers: Arc<Vec<String>>,
}

/// Concurrent clients of `design`.
fn clients_of(args: &BenchArgs, design: &str) -> usize {
    match design {
        "http-1-client" => 1,
        "http-batch" => args.batch_clients,
        _ => args.clients,
    }
}

impl Scenario<'_> {
    fn clients(&self, design: &str) -> usize {
        clients_of(self.args, design)
    }

    async fn run(&self, design: &'static str, server: &Server, naive: &Naive) -> Run {
        let (clients, count, limit) = (self.clients(design), self.customers.len(), self.limit);
        let customers = self.customers.clone();
        let workload = self.workload;
        match design {
            "naive" => {
                let naive = naive.clone();
                drive(clients, count, limit, move |_, _, c| {
                    let (naive, customers) = (naive.clone(), customers.clone());
                    async move {
                        match naive
                            .debit(&customers[c], DEBIT_MICROS, creditd_store::unix_now())
                            .await
                        {
                            Ok(true) => Ok(Done::Debited(c)),
                            Ok(false) => Ok(Done::Refused),
                            Err(e) => Err(e.to_string()),
                        }
                    }
                })
                .await
            }
            "in-process" => {
                let writer = server.state.writer.clone();
                drive(clients, count, limit, move |client, n, c| {
                    let (writer, customers) = (writer.clone(), customers.clone());
                    async move { debit_in_process(&writer, &customers[c], c, &format!("{client}-{n}")).await }
                })
                .await
            }
            _ => {
                let http = Arc::new(server.http.clone().for_clients(clients));
                http::drive_debits(http, design, clients, customers, limit, workload).await
            }
        }
    }
}

async fn debit_in_process(writer: &Writer, customer: &str, index: usize, key: &str) -> Result<Done, String> {
    let request = Request {
        command: usage(customer),
        idempotency: Some(Idempotency {
            scope: "app".into(),
            key: format!("bench-{key}-{}", creditd_domain::ids::random_token(8)),
            fingerprint: "bench".into(),
        }),
    };
    match writer.submit(request, creditd_store::unix_now()).await {
        Ok(_) => Ok(Done::Debited(index)),
        Err(StoreError::Command(_)) => Ok(Done::Refused),
        Err(e) => Err(e.to_string()),
    }
}

fn usage(customer: &str) -> Command {
    Command::Usage(NewUsage {
        customer: customer.into(),
        amount: Credits::from_micros(DEBIT_MICROS),
        feature: "bench".into(),
        metadata: serde_json::json!({}),
        priced: None,
        budget: None,
    })
}

/// Customers `{prefix}_{i}`, each with one grant of [`START_MICROS`].
/// Registers `count` endpoints for every event, answered 200 by a receiver on a local port.
async fn register_endpoints(store: &Store, count: usize, now: i64) -> anyhow::Result<()> {
    if count == 0 {
        return Ok(());
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let receiver = axum::Router::new().route("/hook", axum::routing::post(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, receiver).await.ok() });
    for _ in 0..count {
        let new = creditd_store::NewEndpoint {
            url: url.clone(),
            description: Some("benchmark receiver".into()),
            events: vec!["*".into()],
            secret: crate::outbound::sign::new_secret(),
        };
        store.create_endpoint(&new, now).await?;
    }
    Ok(())
}

async fn make_customers(store: &Store, prefix: &str, count: usize, now: i64) -> anyhow::Result<Vec<String>> {
    let ids: Vec<String> = (0..count).map(|i| format!("bench_{prefix}_{i}")).collect();
    for chunk in ids.chunks(200) {
        let mut batch = Vec::new();
        for id in chunk {
            batch.push(Request {
                command: Command::CreateCustomer(NewCustomer {
                    id: id.clone(),
                    email: None,
                    metadata: serde_json::json!({}),
                    signup_bonus: Credits::ZERO,
                }),
                idempotency: None,
            });
            batch.push(Request {
                command: Command::Grant(NewGrant {
                    customer: id.clone(),
                    amount: Credits::from_micros(START_MICROS),
                    priority: creditd_domain::account::DEFAULT_PRIORITY,
                    expires_at: None,
                    source: GrantSource::Admin,
                    reason: Some("benchmark".into()),
                    reference: None,
                }),
                idempotency: None,
            });
        }
        for result in store.apply(batch, now).await {
            result?;
        }
    }
    Ok(ids)
}

/// Every customer's balance is its start minus exactly its successful debits, never below 0.
async fn check_balances(store: &Store, customers: &[String], debits: &[u64]) -> anyhow::Result<Vec<String>> {
    let now = creditd_store::unix_now();
    let mut problems = Vec::new();
    for (id, &n) in customers.iter().zip(debits) {
        let customer = store
            .customer(id, now)
            .await?
            .ok_or_else(|| anyhow::anyhow!("{id} vanished"))?;
        let expected = START_MICROS - n as i64 * DEBIT_MICROS;
        if customer.balance.micros() != expected || customer.balance.micros() < 0 {
            problems.push(format!(
                "{id}: balance {} but {n} debits leave {expected}",
                customer.balance.micros()
            ));
        }
    }
    Ok(problems)
}

/// How slow the sandbox's API is made for the second webhook scenario.
const SLOW_STRIPE_MS: u64 = 2_000;

/// creditd serving HTTP on a free local port, with a key and a webhook secret of its own,
/// its Stripe event workers, and a Stripe sandbox of its own (debits never call it).
struct Server {
    state: AppState,
    http: Http,
    webhook_secret: String,
    task: tokio::task::JoinHandle<()>,
    sandbox: creditd_sandbox::SandboxHandle,
    events: Vec<tokio::task::JoinHandle<()>>,
    phase: tokio::sync::watch::Sender<crate::billing::events::Phase>,
}

impl Server {
    async fn start(store: &Store, settings: Settings) -> anyhow::Result<Server> {
        let key = store.create_api_key("bench", creditd_store::unix_now()).await?.secret;
        let webhook_secret = format!("whsec_{}", creditd_domain::ids::random_token(24));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let sandbox = creditd_sandbox::start(creditd_sandbox::SandboxConfig {
            listen: "127.0.0.1:0".parse()?,
            webhook_url: None,
            webhook_secret: webhook_secret.clone(),
            public_base_url: None,
            state_path: None,
        })
        .await?;
        let stripe = Stripe {
            client: creditd_stripe::client::StripeClient::new(SANDBOX_SECRET_KEY, Some(sandbox.base_url.clone()))?,
            webhook_secrets: vec![webhook_secret.clone()],
            public_url: format!("http://{addr}"),
        };
        let state = AppState::new(store.clone(), Clock::System, settings, stripe);
        let (phase, watching) = tokio::sync::watch::channel(crate::billing::events::Phase::Running);
        let events = crate::billing::events::spawn(&state, watching);
        let router = crate::http::router(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.ok();
        });
        let client = reqwest::Client::builder().pool_max_idle_per_host(1024).build()?;
        Ok(Server {
            state,
            http: Http::new(client, format!("http://{addr}"), key),
            webhook_secret,
            task,
            sandbox,
            events,
            phase,
        })
    }

    /// Signed Stripe events, one after another: each must be acknowledged (200) and recorded.
    /// With `slow_stripe_ms`, the sandbox's API answers that late and the events name
    /// Checkout Sessions, whose handling (in the background) calls it.
    async fn webhook_acks(
        &self,
        backend: &str,
        count: usize,
        store: &Store,
        slow_stripe_ms: Option<u64>,
    ) -> anyhow::Result<Row> {
        let faults = creditd_sandbox::Faults {
            api_delay_ms: slow_stripe_ms.unwrap_or(0),
            ..Default::default()
        };
        self.sandbox.set_faults(faults)?;
        let kind = if slow_stripe_ms.is_some() {
            "checkout.session.completed"
        } else {
            "bench.ping"
        };
        let mut latencies = Vec::with_capacity(count);
        let mut run = Run::empty(0);
        let start = Instant::now();
        let mut ids = Vec::new();
        for _ in 0..count {
            let id = format!("evt_bench_{}", creditd_domain::ids::random_token(16));
            let now = creditd_store::unix_now();
            let payload = serde_json::json!({
                "id": id, "object": "event", "type": kind, "created": now, "livemode": false,
                "data": {"object": {"id": format!("cs_bench_{id}"), "object": "checkout.session"}}
            })
            .to_string();
            let signature = creditd_stripe::webhook::sign_header(payload.as_bytes(), &self.webhook_secret, now);
            let began = Instant::now();
            let response = self
                .http
                .client
                .post(format!("{}/v1/stripe/webhook", self.http.base))
                .header("Stripe-Signature", signature)
                .header("Content-Type", "application/json")
                .body(payload)
                .send()
                .await?;
            let status = response.status().as_u16();
            response.bytes().await?;
            latencies.push(began.elapsed().as_micros() as u64);
            if status == 200 {
                run.ok += 1;
                ids.push(id);
            } else {
                run.errors += 1;
                run.first_error.get_or_insert(format!("HTTP {status}"));
            }
        }
        run.elapsed = start.elapsed();
        latencies.sort_unstable();
        run.latencies_us = latencies;
        let design = match slow_stripe_ms {
            None => "webhook acks (sequential)".to_string(),
            Some(ms) => format!("webhook acks, Stripe API answering in {ms} ms"),
        };
        self.sandbox.set_faults(creditd_sandbox::Faults::default())?;
        let mut row = Row::from_run(backend, "-", &design, 1, &run);
        let mut recorded = 0;
        for id in &ids {
            recorded += usize::from(store.stripe_event(id).await?.is_some());
        }
        row.exact = Some(recorded == ids.len() && run.errors == 0);
        if recorded != ids.len() {
            row.note = format!("{} acknowledged, {recorded} recorded", ids.len());
        }
        Ok(row)
    }

    async fn stop(self) {
        self.task.abort();
        self.phase.send_replace(crate::billing::events::Phase::Abandon);
        for worker in &self.events {
            worker.abort();
        }
        self.sandbox.shutdown().await;
    }
}

/// The benchmark's own database: a temporary SQLite file, or a fresh PostgreSQL database.
struct BenchDb {
    url: String,
    cleanup: Option<(String, String)>,
    dir: Option<std::path::PathBuf>,
}

impl BenchDb {
    async fn sqlite() -> anyhow::Result<BenchDb> {
        let dir = std::env::temp_dir().join(format!("creditd-bench-{}", creditd_domain::ids::random_token(12)));
        std::fs::create_dir_all(&dir)?;
        Ok(BenchDb {
            url: format!("sqlite://{}/bench.db", dir.display()),
            cleanup: None,
            dir: Some(dir),
        })
    }

    async fn postgres(admin_url: &str) -> anyhow::Result<BenchDb> {
        let mut admin = sqlx::PgConnection::connect(admin_url).await?;
        let name = format!("creditd_bench_{}", creditd_domain::ids::random_token(12).to_lowercase());
        admin.execute(format!("CREATE DATABASE {name}").as_str()).await?;
        admin.close().await.ok();
        let (base, query) = admin_url
            .split_once('?')
            .map_or((admin_url, None), |(b, q)| (b, Some(q)));
        let root = base
            .rfind('/')
            .filter(|&i| i > base.find("://").map_or(0, |s| s + 2))
            .map_or(base, |i| &base[..i]);
        let url = match query {
            Some(q) => format!("{root}/{name}?{q}"),
            None => format!("{root}/{name}"),
        };
        Ok(BenchDb {
            url,
            cleanup: Some((admin_url.to_string(), name)),
            dir: None,
        })
    }

    async fn drop_database(&self) {
        if let Some(dir) = &self.dir {
            std::fs::remove_dir_all(dir).ok();
        }
        if let Some((admin_url, name)) = &self.cleanup {
            if let Ok(mut admin) = sqlx::PgConnection::connect(admin_url).await {
                admin
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await
                    .ok();
                admin.close().await.ok();
            }
        }
    }
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<9} {:<8} {:<44} {:>7} {:>10} {:>9} {:>8} {:>8} {:>8} {:>8} {:>6}",
        "backend", "workload", "design", "clients", "ok", "per s", "p50 ms", "p99 ms", "max ms", "x naive", "exact"
    );
    for r in rows {
        println!(
            "{:<9} {:<8} {:<44} {:>7} {:>10} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>8} {:>6}",
            r.backend,
            r.workload,
            r.design,
            r.clients,
            r.ok,
            r.per_second,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.vs_naive.map_or("-".into(), |x| format!("{x:.1}")),
            r.exact.map_or("-", |e| if e { "yes" } else { "NO" }),
        );
        if r.errors > 0 || !r.note.is_empty() {
            println!("          {} errors {}", r.errors, r.note);
        }
    }
}
