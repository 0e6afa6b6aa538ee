//! Reconciliation runs, Stripe events for the operator, and the advisory lock that keeps a
//! background job to one replica.

use sqlx::pool::PoolConnection;
use sqlx::{Postgres, Row};

use crate::db::{on, Db, Fields};
use crate::read::{Page, PageRequest};
use crate::{Result, Store};

/// A recorded Stripe event, for the operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    pub id: String,
    pub event_type: String,
    pub status: String,
    pub error: Option<String>,
    pub attempts: i64,
    pub created: i64,
    pub received_at: i64,
    pub processed_at: Option<i64>,
}

/// The last reconciliation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconcileRun {
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub since: i64,
    /// events seen, recovered, failed; payments checked, changed
    pub counts: [i64; 5],
    pub error: Option<String>,
}

/// Held while a job runs; dropped or released, it frees the lock. On SQLite (one process
/// per database file) there is nothing to coordinate and the lock is always granted.
pub struct AdvisoryLock {
    conn: Option<(PoolConnection<Postgres>, i64)>,
}

impl AdvisoryLock {
    pub async fn release(mut self) {
        if let Some((mut conn, key)) = self.conn.take() {
            let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(key)
                .execute(&mut *conn)
                .await;
            if unlocked.is_err() {
                // Closing the session releases its advisory locks.
                conn.detach();
            }
        }
    }
}

pub(crate) const EVENT_COLUMNS: &str = "id, type, status, error, attempts, created, received_at, processed_at";

pub(crate) fn event_row(row: &impl Fields) -> Result<StoredEvent> {
    Ok(StoredEvent {
        id: row.field(0)?,
        event_type: row.field(1)?,
        status: row.field(2)?,
        error: row.field(3)?,
        attempts: row.field(4)?,
        created: row.field(5)?,
        received_at: row.field(6)?,
        processed_at: row.field(7)?,
    })
}

impl Store {
    /// A session-level advisory lock on PostgreSQL, or `None` when another session holds it.
    pub async fn try_lock(&self, key: i64) -> Result<Option<AdvisoryLock>> {
        let Db::Pg(pool) = &self.pool else {
            return Ok(Some(AdvisoryLock { conn: None }));
        };
        let mut conn = pool.acquire().await?;
        let got: bool = sqlx::query("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
        Ok(got.then_some(AdvisoryLock {
            conn: Some((conn, key)),
        }))
    }

    pub async fn start_reconcile(&self, since: i64, now: i64) -> Result<i64> {
        let seq = on!(&self.writer, p => sqlx::query("INSERT INTO reconcile_runs (started_at, since) VALUES ($1, $2) RETURNING seq")
            .bind(now)
            .bind(since)
            .fetch_one(p)
            .await?
            .try_get(0)?);
        Ok(seq)
    }

    /// `counts`: events seen, recovered, failed; payments checked, changed.
    pub async fn finish_reconcile(&self, run: i64, counts: [i64; 5], error: Option<&str>, now: i64) -> Result<()> {
        on!(&self.writer, p => sqlx::query(
            "UPDATE reconcile_runs SET finished_at = $2, events_seen = $3, events_recovered = $4, events_failed = $5, \
             payments_checked = $6, payments_changed = $7, error = $8 WHERE seq = $1",
        )
        .bind(run)
        .bind(now)
        .bind(counts[0])
        .bind(counts[1])
        .bind(counts[2])
        .bind(counts[3])
        .bind(counts[4])
        .bind(error)
        .execute(p)
        .await?
        .rows_affected());
        Ok(())
    }

    pub async fn last_reconcile(&self) -> Result<Option<ReconcileRun>> {
        on!(&self.pool, p => sqlx::query(
            "SELECT started_at, finished_at, since, events_seen, events_recovered, events_failed, payments_checked, \
             payments_changed, error FROM reconcile_runs ORDER BY seq DESC LIMIT 1",
        )
        .fetch_optional(p)
        .await?
        .map(|r| {
            Ok(ReconcileRun {
                started_at: r.try_get(0)?,
                finished_at: r.try_get(1)?,
                since: r.try_get(2)?,
                counts: [
                    r.try_get(3)?,
                    r.try_get(4)?,
                    r.try_get(5)?,
                    r.try_get(6)?,
                    r.try_get(7)?,
                ],
                error: r.try_get(8)?,
            })
        })
        .transpose())
    }

    /// Recorded Stripe events, newest first, optionally only those in `status`.
    pub async fn stripe_events(&self, status: Option<&str>, page: &PageRequest) -> Result<Page<StoredEvent>> {
        let limit = i64::from(page.limit.clamp(1, 100));
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM stripe_events WHERE ($1 = '' OR status = $1) \
             AND ($2 = '' OR received_at < (SELECT received_at FROM stripe_events WHERE id = $2) \
                  OR (received_at = (SELECT received_at FROM stripe_events WHERE id = $2) AND id < $2)) \
             ORDER BY received_at DESC, id DESC LIMIT $3"
        );
        let mut data = on!(&self.pool, p => sqlx::query(&sql)
            .bind(status.unwrap_or(""))
            .bind(page.starting_after.as_deref().unwrap_or(""))
            .bind(limit + 1)
            .fetch_all(p)
            .await?
            .iter()
            .map(event_row)
            .collect::<Result<Vec<_>>>()?);
        let has_more = data.len() as i64 > limit;
        data.truncate(limit as usize);
        Ok(Page { data, has_more })
    }

    pub async fn stored_event(&self, id: &str) -> Result<Option<StoredEvent>> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM stripe_events WHERE id = $1");
        on!(&self.pool, p => sqlx::query(&sql)
            .bind(id)
            .fetch_optional(p)
            .await?
            .as_ref()
            .map(event_row)
            .transpose())
    }

    /// The raw payload of a recorded event (exactly as received).
    pub async fn stripe_event_payload(&self, id: &str) -> Result<Option<String>> {
        let payload = on!(&self.pool, p => sqlx::query("SELECT payload FROM stripe_events WHERE id = $1")
            .bind(id)
            .fetch_optional(p)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?);
        Ok(payload)
    }
}
