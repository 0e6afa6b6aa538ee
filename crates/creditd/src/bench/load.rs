//! The load generator, and the naive design creditd is compared with.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use creditd_domain::IdKind;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Row, SqlitePool};

/// What one request ended as.
pub enum Done {
    /// Applied: the customer (index) was debited.
    Debited(usize),
    /// Refused by the ledger (e.g. insufficient credits); nothing changed.
    Refused,
    /// Many records in one request: the customers (indexes) debited, and how many refused.
    Records { debited: Vec<usize>, refused: u64 },
}

/// How one scenario went.
pub struct Run {
    /// Debits applied (records, not requests, for batches).
    pub ok: u64,
    pub refused: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// Of each request, sorted, microseconds.
    pub latencies_us: Vec<u64>,
    /// Successful debits per customer index.
    pub per_customer: Vec<u64>,
}

impl Run {
    /// Nothing done yet, for `customers` customers.
    pub fn empty(customers: usize) -> Run {
        Run {
            ok: 0,
            refused: 0,
            errors: 0,
            first_error: None,
            elapsed: Duration::ZERO,
            latencies_us: Vec::new(),
            per_customer: vec![0; customers],
        }
    }

    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Milliseconds at quantile `q` (0–1).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * q).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }
}

/// Where a run stops: whichever comes first.
#[derive(Clone, Copy)]
pub struct Limit {
    pub duration: Duration,
    pub requests: u64,
}

/// Runs `clients` loops of `op(client, n, customer)` until the limit; customer indexes are
/// `0` for one hot customer, spread evenly over `customers` otherwise.
pub async fn drive<F, Fut>(clients: usize, customers: usize, limit: Limit, op: F) -> Run
where
    F: Fn(usize, u64, usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Done, String>> + Send,
{
    let issued = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + limit.duration;
    let mut tasks = Vec::with_capacity(clients);
    for client in 0..clients {
        let (op, issued) = (op.clone(), issued.clone());
        tasks.push(tokio::spawn(async move {
            let mut run = Run::empty(customers);
            let mut n = 0u64;
            while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < limit.requests {
                let customer = (client + n as usize * clients) % customers;
                let began = Instant::now();
                let result = op(client, n, customer).await;
                run.latencies_us.push(began.elapsed().as_micros() as u64);
                match result {
                    Ok(Done::Debited(c)) => {
                        run.ok += 1;
                        run.per_customer[c] += 1;
                    }
                    Ok(Done::Refused) => run.refused += 1,
                    Ok(Done::Records { debited, refused }) => {
                        run.ok += debited.len() as u64;
                        run.refused += refused;
                        for c in debited {
                            run.per_customer[c] += 1;
                        }
                    }
                    Err(e) => {
                        run.errors += 1;
                        run.first_error.get_or_insert(e);
                    }
                }
                n += 1;
            }
            run
        }));
    }
    let mut total = Run::empty(customers);
    for task in tasks {
        let Ok(run) = task.await else {
            total.errors += 1;
            continue;
        };
        total.ok += run.ok;
        total.refused += run.refused;
        total.errors += run.errors;
        if total.first_error.is_none() {
            total.first_error = run.first_error;
        }
        total.latencies_us.extend(run.latencies_us);
        for (sum, n) in total.per_customer.iter_mut().zip(run.per_customer) {
            *sum += n;
        }
    }
    total.elapsed = start.elapsed();
    total.latencies_us.sort_unstable();
    total
}

/// The common design: one transaction per debit — lock the customer and its grant
/// (`SELECT … FOR UPDATE` on PostgreSQL; SQLite's single writer), update both, insert the
/// entry, commit. Customers here have exactly one grant, as the benchmark creates them. On the
/// same native drivers as creditd.
#[derive(Clone)]
pub enum Naive {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

const NAIVE_LOCK_PG: &str =
    "SELECT g.id, g.remaining, c.balance FROM customers c JOIN grants g ON g.customer_id = c.id \
     WHERE c.id = $1 AND g.remaining > 0 FOR UPDATE";
const NAIVE_LOCK_SQLITE: &str =
    "SELECT g.id, g.remaining, c.balance FROM customers c JOIN grants g ON g.customer_id = c.id \
     WHERE c.id = $1 AND g.remaining > 0";
const NAIVE_GRANT: &str = "UPDATE grants SET remaining = remaining - $1 WHERE id = $2";
const NAIVE_CUSTOMER: &str = "UPDATE customers SET balance = balance - $1, updated_at = $3 WHERE id = $2";
const NAIVE_ENTRY: &str = "INSERT INTO ledger_entries \
     (id, customer_id, grant_id, kind, amount, balance_after, reference, feature, metadata, created_at) \
     VALUES ($1, $2, $3, 'usage', $4, $5, $6, 'bench', '{}', $7)";

/// The naive debit's statements on one backend's transaction (the same text on both but
/// the lock).
macro_rules! naive_debit {
    ($pool:expr, $lock:expr, $customer:expr, $micros:expr, $now:expr) => {{
        let mut tx = $pool.begin().await?;
        let row = sqlx::query($lock).bind($customer).fetch_optional(&mut *tx).await?;
        let Some(row) = row else { return Ok(false) };
        let (grant, remaining, balance): (String, i64, i64) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        if remaining < $micros {
            return Ok(false);
        }
        sqlx::query(NAIVE_GRANT)
            .bind($micros)
            .bind(&grant)
            .execute(&mut *tx)
            .await?;
        sqlx::query(NAIVE_CUSTOMER)
            .bind($micros)
            .bind($customer)
            .bind($now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(NAIVE_ENTRY)
            .bind(IdKind::Entry.new_id())
            .bind($customer)
            .bind(&grant)
            .bind(-$micros)
            .bind(balance - $micros)
            .bind(IdKind::Usage.new_id())
            .bind($now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }};
}

impl Naive {
    pub async fn connect(url: &str) -> Result<Naive, sqlx::Error> {
        if !url.starts_with("sqlite:") {
            return Ok(Naive::Postgres(
                PgPoolOptions::new().max_connections(32).connect(url).await?,
            ));
        }
        // Same durability as creditd: WAL, synchronous FULL, one writer connection.
        let options: SqliteConnectOptions = url.parse()?;
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        Ok(Naive::Sqlite(
            SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await?,
        ))
    }

    /// Debits `micros` from `customer`; false when its balance is short.
    pub async fn debit(&self, customer: &str, micros: i64, now: i64) -> Result<bool, sqlx::Error> {
        match self {
            Naive::Postgres(pool) => naive_debit!(pool, NAIVE_LOCK_PG, customer, micros, now),
            Naive::Sqlite(pool) => naive_debit!(pool, NAIVE_LOCK_SQLITE, customer, micros, now),
        }
    }

    pub async fn close(&self) {
        match self {
            Naive::Postgres(pool) => pool.close().await,
            Naive::Sqlite(pool) => pool.close().await,
        }
    }
}
