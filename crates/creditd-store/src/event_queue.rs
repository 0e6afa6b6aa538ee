//! Recorded Stripe events as a work queue shared by every replica: an event is due at
//! `next_attempt_at`, and a replica that takes it holds it until `locked_until` (a replica
//! that dies mid-way lets it go when that passes). Times here are unix milliseconds.

use sqlx::Row;

use crate::db::on;
use crate::reconcile::{event_row, StoredEvent, EVENT_COLUMNS};
use crate::{Result, Store};

/// An event a replica has taken to handle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedEvent {
    pub id: String,
    pub payload: String,
    /// Deliveries and retries so far.
    pub attempts: i64,
}

/// What became of one handling of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled<'a> {
    /// `processed` or `ignored`: nothing left to do.
    Done(&'static str),
    /// Failed with this error; due again at this time (unix ms), or never again by itself.
    Failed(&'a str, Option<i64>),
    /// Not for this configuration (live vs test mode): never handled.
    Refused(&'a str),
}

impl Store {
    /// Records a delivered event (or counts another delivery of a known one), due at
    /// `due_ms` when new (`None`: the caller handles it now). Returns the record.
    pub async fn record_stripe_event_due(
        &self,
        id: &str,
        event_type: &str,
        created: i64,
        payload: &str,
        now: i64,
        due_ms: Option<i64>,
    ) -> Result<StoredEvent> {
        let select = format!("SELECT {EVENT_COLUMNS} FROM stripe_events WHERE id = $1");
        on!(&self.writer, w => {
            sqlx::query(
                "INSERT INTO stripe_events (id, type, created, payload, status, attempts, received_at, next_attempt_at) \
                 VALUES ($1, $2, $3, $4, 'processing', 1, $5, $6) \
                 ON CONFLICT (id) DO UPDATE SET attempts = stripe_events.attempts + 1",
            )
            .bind(id)
            .bind(event_type)
            .bind(created)
            .bind(payload)
            .bind(now)
            .bind(due_ms)
            .execute(w)
            .await?;
            let row = sqlx::query(&select).bind(id).fetch_one(w).await?;
            event_row(&row)
        })
    }

    /// Takes the most overdue event no replica holds, for `lease_ms`. A retry (of a failed
    /// event) counts as an attempt. Looking finds nothing most of the time: that is a read,
    /// so idle workers never take SQLite's write lock.
    pub async fn claim_stripe_event(&self, now_ms: i64, lease_ms: i64) -> Result<Option<ClaimedEvent>> {
        let free =
            "next_attempt_at IS NOT NULL AND next_attempt_at <= $1 AND (locked_until IS NULL OR locked_until < $1)";
        let look = format!("SELECT id FROM stripe_events WHERE {free} ORDER BY next_attempt_at, id LIMIT 1");
        let due: Option<String> = on!(&self.pool, p => sqlx::query(&look)
            .bind(now_ms)
            .fetch_optional(p)
            .await?
            .map(|row| row.try_get(0))
            .transpose()?);
        let Some(id) = due else { return Ok(None) };
        // The condition is checked again on the row itself: of two replicas that picked the
        // same event, the second finds it locked (PostgreSQL re-reads the updated row).
        let sql = format!(
            "UPDATE stripe_events SET locked_until = $1 + $2, \
             attempts = attempts + CASE WHEN status = 'failed' THEN 1 ELSE 0 END \
             WHERE id = $3 AND {free} RETURNING id, payload, attempts"
        );
        on!(&self.writer, w => sqlx::query(&sql)
            .bind(now_ms)
            .bind(lease_ms)
            .bind(&id)
            .fetch_optional(w)
            .await?
            .map(|r| {
                Ok(ClaimedEvent {
                    id: r.try_get(0)?,
                    payload: r.try_get(1)?,
                    attempts: r.try_get(2)?,
                })
            })
            .transpose())
    }

    /// Records how a handling ended and lets the event go.
    pub async fn settle_stripe_event(&self, id: &str, settled: Settled<'_>, now: i64) -> Result<()> {
        let (status, error, due) = match settled {
            Settled::Done(status) => (status, None, None),
            Settled::Failed(error, due) => ("failed", Some(error), due),
            Settled::Refused(error) => ("refused", Some(error), None),
        };
        on!(&self.writer, w => {
            sqlx::query(
                "UPDATE stripe_events SET status = $2, error = $3, processed_at = $4, next_attempt_at = $5, \
                 locked_until = NULL WHERE id = $1",
            )
            .bind(id)
            .bind(status)
            .bind(error)
            .bind(now)
            .bind(due)
            .execute(w)
            .await?;
        });
        Ok(())
    }

    /// Lets go of an event this replica took but will not finish (shutting down): it is due
    /// again at once, for any replica.
    pub async fn release_stripe_event(&self, id: &str) -> Result<()> {
        on!(&self.writer, w => {
            sqlx::query("UPDATE stripe_events SET locked_until = NULL WHERE id = $1")
                .bind(id)
                .execute(w)
                .await?;
        });
        Ok(())
    }
}
