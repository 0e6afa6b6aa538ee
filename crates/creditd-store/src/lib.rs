//! creditd's storage: the domain's verbs (apply a batch of commands, read balances, verify the
//! books) on SQLite and PostgreSQL.
//!
//! There is one write path for balances: [`Writer`] queues [`creditd_domain::Request`]s and
//! applies them in batches ([`crate::batch`]); the domain's [`creditd_domain::Book`] decides,
//! storage only loads ([`crate::load`], [`crate::accounts`]) and persists
//! ([`crate::persist`]). The writer keeps recently used accounts in memory
//! ([`AccountCache`]), checked against each customer row's `version`, so several replicas
//! stay correct. Reads go to the database and never wait for the writer.
//!
//! Each backend has its own native driver (`PgPool`, `SqlitePool`, see [`db`]) and its own
//! migrations. A statement both accept (`$1` placeholders, `RETURNING`, `ON CONFLICT`) is
//! written once and compiled for each driver; where they differ (many rows as binary arrays
//! on PostgreSQL and JSON on SQLite, row locks, booleans and `jsonb`) each has its own. The
//! conformance suite runs against both.

mod accounts;
mod admin;
mod autotopup;
mod batch;
mod batch_keys;
mod billing;
mod budgets;
mod catalog;
mod db;
mod effects;
mod event_queue;
mod health;
mod idempotency;
mod keys;
mod load;
mod metrics;
mod migrate;
mod operator;
mod outbox;
mod persist;
mod read;
mod reconcile;
mod refunds;
mod reports;
mod rows;
mod rowset;
mod subscriptions;
pub mod testing;
mod verify;
mod webhooks;
mod writer;

use std::time::Duration;

use creditd_domain::CommandError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Executor;

use db::{on, Db, Pool};

pub use accounts::AccountCache;
pub use admin::{AdminSession, AdminUser, NewAdminSession};
pub use autotopup::{AutoTopup, AutoTopupSettings, TopupRun, MAX_CONSECUTIVE_FAILURES};
pub use billing::{NewPackage, NewPayment};
pub use budgets::NewBudget;
pub use catalog::{Catalog, FeatureChange, NewFeature, CATALOG_TTL};
pub use creditd_domain::allowance::{AllowanceKind, AllowanceRequest};
pub use creditd_domain::book::ADMIN_ADJUSTMENT_FEATURE;
pub use creditd_domain::purchase::PaymentUpdate;
pub use creditd_domain::refund::{proportional, Convergence, DisputeState, MoneyState};
pub use event_queue::{ClaimedEvent, Settled};
pub use health::PoolConnections;
pub use idempotency::Claim;
pub use keys::{hash_secret, ApiKey, NewApiKey};
pub use outbox::{default_low_balance_threshold, set_default_low_balance_threshold, CustomerUpdate, OutboundEvent};
pub use read::{Check, Page, PageRequest, UsageBucket, SECONDS_PER_DAY};
pub use reconcile::{AdvisoryLock, ReconcileRun, StoredEvent};
pub use reports::{CreditBooks, RevenueDay, TopSpender, TopUser, UnitsUsed, UsageDay};
pub use subscriptions::{NewPlan, SubscriptionRecord};
pub use verify::{Books, VerifyReport};
pub use webhooks::{
    AfterAttempt, Attempt, AttemptRecord, ClaimedDelivery, Endpoint, EndpointHealth, EndpointUpdate, NewEndpoint,
};
pub use writer::{Pending, Writer, WriterConfig};

/// Which database a [`Store`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The command was refused by the domain; nothing it asked for was written.
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Stored data broke an invariant: the write was rolled back.
    #[error("ledger invariant violated: {0}")]
    Corrupt(String),
    #[error("invalid database url: {0}")]
    BadUrl(String),
    /// The batch this request was applied in failed as a whole; none of it was written.
    #[error("the batch failed, nothing of it was written: {0}")]
    Batch(std::sync::Arc<StoreError>),
    /// Another writer committed a row this batch was about to insert (an idempotency key, a
    /// new customer); the batch is rolled back and retried (it then replays that writer's
    /// result, or decides on the customer it created).
    #[error("a concurrent request committed the same idempotency key")]
    KeyRace,
    /// The writer's queue is full: try again shortly.
    #[error("too many writes are waiting; retry shortly")]
    Overloaded,
    #[error("the writer has stopped")]
    WriterStopped,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A handle to creditd's database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    /// Reads go here; on PostgreSQL writes too.
    pool: Pool,
    /// SQLite allows one writer at a time: a pool of one connection queues writers in the
    /// process instead of letting them collide on the file lock.
    writer: Pool,
    /// The group-commit writer's batches ([`Store::apply`]): the writer connection on
    /// SQLite; on PostgreSQL connections of their own, planned for what every statement of a
    /// batch is — a lookup of a few rows by key (see [`batch_pool`]).
    batches: Pool,
    /// API keys revoked through this handle and its clones: a key cache of the same process
    /// watches it and forgets its keys at once, without waiting for the database's count.
    revoked_here: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Features and plan entitlements as gating last read them.
    catalog_cache: std::sync::Arc<catalog::CatalogCache>,
}

/// `sqlite:` / `sqlite://` paths and `postgres://` / `postgresql://` URLs.
pub fn dialect_of(url: &str) -> Result<Dialect> {
    if url.starts_with("sqlite:") {
        Ok(Dialect::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Dialect::Postgres)
    } else {
        Err(StoreError::BadUrl(format!(
            "{url:?} is neither sqlite:PATH nor postgres://…"
        )))
    }
}

impl Store {
    /// Connects and runs pending migrations.
    pub async fn open(url: &str) -> Result<Store> {
        let store = Store::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without migrating.
    pub async fn connect(url: &str) -> Result<Store> {
        let dialect = dialect_of(url)?;
        let (pool, writer, batches) = match dialect {
            Dialect::Sqlite => {
                let options = sqlite_options(url)?;
                let writer = sqlite_pool(1).connect_with(options.clone()).await?;
                let pool = sqlite_pool(8).connect_with(options).await?;
                (Db::Lite(pool), Db::Lite(writer.clone()), Db::Lite(writer))
            }
            Dialect::Postgres => {
                let options: PgConnectOptions = url.parse()?;
                let pool = PgPoolOptions::new()
                    .max_connections(32)
                    .acquire_timeout(Duration::from_secs(10))
                    // See `sqlite_pool`: no ping before every query. A connection that died
                    // (a server restart) fails the one statement that finds out and is dropped.
                    .test_before_acquire(false)
                    .connect_with(options.clone())
                    .await?;
                let batches = batch_pool().connect_with(options).await?;
                (Db::Pg(pool.clone()), Db::Pg(pool), Db::Pg(batches))
            }
        };
        Ok(Store {
            pool,
            writer,
            batches,
            revoked_here: Default::default(),
            catalog_cache: Default::default(),
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.pool.dialect()
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        on!(&self.pool, p => p.execute("SELECT 1").await.map(drop)?);
        Ok(())
    }

    pub async fn close(&self) {
        self.batches.close().await;
        self.writer.close().await;
        self.pool.close().await;
    }
}

/// PostgreSQL connections for the writer's batches. Every statement of a batch reads or
/// writes a few rows by key (customers, grants, holds, idempotency keys by their primary or
/// indexed keys). Left to itself the planner picks sequential scans and hash joins for them
/// while a table is small or has no statistics yet — and a hot customer's row and grant
/// pile up hundreds of dead versions a second, which every such scan then walks. Measured
/// with `creditd bench` (PostgreSQL, 64 clients): hot 5,200–7,600 → 8,700 debits/s, spread
/// 3,900 → 6,600, with these two planner switches on the batch connections only.
fn batch_pool() -> PgPoolOptions {
    PgPoolOptions::new()
        // The writer's one batch in flight, and a retry's new attempt.
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(
                    "SET enable_seqscan = off; SET enable_hashjoin = off; SET plan_cache_mode = force_generic_plan;",
                )
                .await?;
                Ok(())
            })
        })
}

fn sqlite_pool(size: u32) -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(30))
        // sqlx pings a connection before lending it by default: one more hop to SQLite's worker
        // thread for every read and every API-key check. Without it `creditd serve` on SQLite
        // went from 7,500 to 11,900 debits/s under `wrk -c64` (a file cannot go away like a
        // socket).
        .test_before_acquire(false)
}

/// The file (created when missing) in WAL mode, so readers run beside the writer; every
/// commit durable (`synchronous = FULL`); foreign keys on; a writer of another process waited
/// for up to 10 s.
fn sqlite_options(url: &str) -> Result<SqliteConnectOptions> {
    let options: SqliteConnectOptions = url.parse()?;
    Ok(options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10)))
}

/// Current unix time in seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
