//! The app's webhook endpoints and the delivery of outbox events to them.
//!
//! Every replica runs the same loop: fan new events out to the endpoints that want them
//! ([`Store::dispatch_events`]), claim due deliveries under a lease ([`Store::claim_deliveries`],
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL so replicas never wait for each other), send, and
//! record the attempt ([`Store::finish_attempt`]). A lease that runs out (a replica died
//! mid-send) makes the delivery due again: at-least-once, never lost.

use creditd_domain::outbound::wants;
use creditd_domain::IdKind;
use sqlx::any::AnyRow;
use sqlx::{Acquire, Row};

use crate::read::{Page, PageRequest};
use crate::{Dialect, Result, Store, StoreError};

/// An endpoint as stored. `secret` is shown to the app only when created or rotated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    pub events: Vec<String>,
    pub secret: String,
    /// The secret before the last rotation, still signing until `previous_secret_expires_at`.
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<i64>,
    pub enabled: bool,
    pub created: i64,
    pub updated: i64,
}

impl Endpoint {
    /// The secrets that sign a message sent at `now`: the current one, and the previous one
    /// while its overlap lasts.
    pub fn signing_secrets(&self, now: i64) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let (Some(old), Some(until)) = (&self.previous_secret, self.previous_secret_expires_at) {
            if now < until {
                secrets.push(old);
            }
        }
        secrets
    }
}

#[derive(Clone, Debug)]
pub struct NewEndpoint {
    pub url: String,
    pub description: Option<String>,
    pub events: Vec<String>,
    pub secret: String,
}

/// What `POST /v1/webhook-endpoints/{id}` may change.
#[derive(Clone, Debug, Default)]
pub struct EndpointUpdate {
    pub url: Option<String>,
    pub description: Option<String>,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// An endpoint with its delivery health, for the dashboard.
#[derive(Clone, Debug)]
pub struct EndpointHealth {
    pub endpoint: Endpoint,
    pub pending: i64,
    pub failed: i64,
    pub delivered: i64,
    /// Consecutive failed attempts of its newest deliveries.
    pub last_error: Option<String>,
}

/// A delivery claimed by this replica, with what it needs to send it.
#[derive(Clone, Debug)]
pub struct ClaimedDelivery {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    /// The event's `data`, exactly as recorded.
    pub data: String,
    pub event_created: i64,
    pub endpoint: Endpoint,
    pub attempts: i64,
    pub first_attempt_ms: Option<i64>,
}

/// One attempt's outcome.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub attempted_ms: i64,
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    pub response: Option<String>,
    pub error: Option<String>,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.status_code.is_some_and(|c| (200..300).contains(&c))
    }
}

/// What follows an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterAttempt {
    Delivered,
    RetryAt(i64),
    Failed,
}

/// One attempt, for the delivery log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptRecord {
    pub id: String,
    pub delivery: String,
    pub event: String,
    pub event_type: String,
    pub endpoint: String,
    pub attempted_ms: i64,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub response: Option<String>,
    pub error: Option<String>,
    /// The delivery's status now: `pending`, `delivered` or `failed`.
    pub delivery_status: String,
}

const ENDPOINT_COLUMNS: &str = "id, url, description, events, secret, previous_secret, \
    previous_secret_expires_at, enabled, created_at, updated_at";

fn endpoint_row(row: &AnyRow) -> Result<Endpoint> {
    let events: String = row.try_get("events")?;
    Ok(Endpoint {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        description: row.try_get("description")?,
        events: serde_json::from_str(&events)
            .map_err(|e| StoreError::Corrupt(format!("endpoint events unreadable: {e}")))?,
        secret: row.try_get("secret")?,
        previous_secret: row.try_get("previous_secret")?,
        previous_secret_expires_at: row.try_get("previous_secret_expires_at")?,
        enabled: row.try_get::<i64, _>("enabled")? == 1,
        created: row.try_get("created_at")?,
        updated: row.try_get("updated_at")?,
    })
}

fn events_json(events: &[String]) -> String {
    serde_json::to_string(events).expect("strings serialize")
}

/// A pending delivery of an event to an endpoint, due at `due_ms` (none when it exists).
async fn queue_delivery(
    conn: &mut sqlx::AnyConnection,
    event: &str,
    endpoint: &str,
    due_ms: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO outbound_deliveries (id, event_id, endpoint_id, status, attempts, next_attempt_ms, \
         lease_until_ms, created_at, updated_at) VALUES ($1, $2, $3, 'pending', 0, $4, 0, $5, $5) \
         ON CONFLICT (event_id, endpoint_id) DO NOTHING",
    )
    .bind(IdKind::Delivery.new_id())
    .bind(event)
    .bind(endpoint)
    .bind(due_ms)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    pub async fn create_endpoint(&self, new: &NewEndpoint, now: i64) -> Result<Endpoint> {
        let id = IdKind::WebhookEndpoint.new_id();
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, url, description, events, secret, enabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 1, $6, $6)",
        )
        .bind(&id)
        .bind(&new.url)
        .bind(&new.description)
        .bind(events_json(&new.events))
        .bind(&new.secret)
        .bind(now)
        .execute(&self.writer)
        .await?;
        self.endpoint(&id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("endpoint vanished".into()))
    }

    /// Endpoints, oldest first.
    pub async fn endpoints(&self) -> Result<Vec<Endpoint>> {
        let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY seq");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(endpoint_row).collect()
    }

    pub async fn endpoint(&self, id: &str) -> Result<Option<Endpoint>> {
        let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&self.writer).await?;
        row.as_ref().map(endpoint_row).transpose()
    }

    /// Changes what `update` names; `None` when there is no such endpoint.
    pub async fn update_endpoint(&self, id: &str, update: &EndpointUpdate, now: i64) -> Result<Option<Endpoint>> {
        let done = sqlx::query(
            "UPDATE webhook_endpoints SET url = COALESCE($2, url), description = COALESCE($3, description), \
             events = COALESCE($4, events), enabled = COALESCE($5, enabled), updated_at = $6 WHERE id = $1",
        )
        .bind(id)
        .bind(&update.url)
        .bind(&update.description)
        .bind(update.events.as_deref().map(events_json))
        .bind(update.enabled.map(i64::from))
        .bind(now)
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.endpoint(id).await
    }

    /// Deletes an endpoint with its deliveries and their log. False when there was none.
    pub async fn delete_endpoint(&self, id: &str) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("DELETE FROM delivery_attempts WHERE endpoint_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM outbound_deliveries WHERE endpoint_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// A new signing secret; the current one keeps signing beside it until `now + overlap`.
    pub async fn rotate_endpoint_secret(
        &self,
        id: &str,
        secret: &str,
        now: i64,
        overlap_seconds: i64,
    ) -> Result<Option<Endpoint>> {
        let done = sqlx::query(
            "UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_expires_at = $3, \
             secret = $2, updated_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(secret)
        .bind(now.saturating_add(overlap_seconds))
        .bind(now)
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.endpoint(id).await
    }

    /// Creates a pending delivery of each undispatched event for every enabled endpoint that
    /// wants it, oldest events first; returns how many events were dispatched. An endpoint
    /// receives the events dispatched after it was created (a second or so of recent history).
    pub async fn dispatch_events(&self, now_ms: i64, limit: i64) -> Result<usize> {
        // A read first: an idle replica takes no write lock (SQLite has one for everyone).
        let waiting = sqlx::query("SELECT 1 FROM outbound_events WHERE dispatched = 0 LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        if waiting.is_none() {
            return Ok(0);
        }
        let mut conn = self.writer.acquire().await?;
        let mut tx = conn.begin().await?;
        let lock = match self.dialect {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let sql = format!("SELECT id, type FROM outbound_events WHERE dispatched = 0 ORDER BY seq LIMIT $1{lock}");
        let events = sqlx::query(&sql).bind(limit).fetch_all(&mut *tx).await?;
        if events.is_empty() {
            tx.rollback().await?;
            return Ok(0);
        }
        let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE enabled = 1");
        let endpoints = sqlx::query(&sql)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(endpoint_row)
            .collect::<Result<Vec<_>>>()?;
        let now = now_ms / 1000;
        for event in &events {
            let (id, event_type): (String, String) = (event.try_get(0)?, event.try_get(1)?);
            for endpoint in endpoints.iter().filter(|e| wants(&e.events, &event_type)) {
                queue_delivery(&mut tx, &id, &endpoint.id, now_ms, now).await?;
            }
            sqlx::query("UPDATE outbound_events SET dispatched = 1 WHERE id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(events.len())
    }

    /// Takes up to `limit` due deliveries for this replica until `now_ms + lease_ms`.
    pub async fn claim_deliveries(&self, now_ms: i64, lease_ms: i64, limit: i64) -> Result<Vec<ClaimedDelivery>> {
        let due = sqlx::query(
            "SELECT 1 FROM outbound_deliveries WHERE status = 'pending' AND next_attempt_ms <= $1 \
             AND lease_until_ms <= $1 LIMIT 1",
        )
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let lock = match self.dialect {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let sql = format!(
            "UPDATE outbound_deliveries SET lease_until_ms = $2 WHERE id IN (\
               SELECT id FROM outbound_deliveries WHERE status = 'pending' AND next_attempt_ms <= $1 \
               AND lease_until_ms <= $1 ORDER BY next_attempt_ms LIMIT $3{lock}) \
             RETURNING id, event_id, endpoint_id, attempts, first_attempt_ms"
        );
        let claimed = sqlx::query(&sql)
            .bind(now_ms)
            .bind(now_ms.saturating_add(lease_ms))
            .bind(limit)
            .fetch_all(&self.writer)
            .await?;
        let mut out = Vec::with_capacity(claimed.len());
        for row in &claimed {
            let event_id: String = row.try_get(1)?;
            let endpoint_id: String = row.try_get(2)?;
            let (Some(event), Some(endpoint)) =
                (self.event_payload(&event_id).await?, self.endpoint(&endpoint_id).await?)
            else {
                continue;
            };
            out.push(ClaimedDelivery {
                id: row.try_get(0)?,
                event_id,
                event_type: event.0,
                data: event.1,
                event_created: event.2,
                endpoint,
                attempts: row.try_get(3)?,
                first_attempt_ms: row.try_get(4)?,
            });
        }
        Ok(out)
    }

    async fn event_payload(&self, id: &str) -> Result<Option<(String, String, i64)>> {
        let row = sqlx::query("SELECT type, payload, created_at FROM outbound_events WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.writer)
            .await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .transpose()
    }

    /// Records an attempt and what follows it, and gives up the lease.
    pub async fn finish_attempt(
        &self,
        delivery: &ClaimedDelivery,
        attempt: &Attempt,
        next: AfterAttempt,
    ) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO delivery_attempts (id, delivery_id, endpoint_id, event_id, attempted_ms, status_code, \
             latency_ms, response, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(IdKind::DeliveryAttempt.new_id())
        .bind(&delivery.id)
        .bind(&delivery.endpoint.id)
        .bind(&delivery.event_id)
        .bind(attempt.attempted_ms)
        .bind(attempt.status_code.map(i64::from))
        .bind(attempt.latency_ms)
        .bind(&attempt.response)
        .bind(&attempt.error)
        .execute(&mut *tx)
        .await?;
        let (status, next_ms) = match next {
            AfterAttempt::Delivered => ("delivered", attempt.attempted_ms),
            AfterAttempt::RetryAt(at) => ("pending", at),
            AfterAttempt::Failed => ("failed", attempt.attempted_ms),
        };
        // A redelivery queued while this attempt was in flight took the lease away (0): the
        // attempt is counted and logged, but the delivery stays queued for the redelivery.
        sqlx::query(
            "UPDATE outbound_deliveries SET \
             status = CASE WHEN lease_until_ms > 0 THEN $2 ELSE status END, attempts = attempts + 1, \
             next_attempt_ms = CASE WHEN lease_until_ms > 0 THEN $3 ELSE next_attempt_ms END, \
             first_attempt_ms = CASE WHEN lease_until_ms > 0 THEN COALESCE(first_attempt_ms, $4) \
             ELSE first_attempt_ms END, \
             lease_until_ms = 0, last_status_code = $5, last_error = $6, updated_at = $7 WHERE id = $1",
        )
        .bind(&delivery.id)
        .bind(status)
        .bind(next_ms)
        .bind(attempt.attempted_ms)
        .bind(attempt.status_code.map(i64::from))
        .bind(&attempt.error)
        .bind(attempt.attempted_ms / 1000)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sends an event again to every endpoint it went to (or now wants it), from now, with the
    /// same `webhook-id`. Returns how many deliveries were queued; `None` for no such event.
    pub async fn redeliver(&self, event_id: &str, now_ms: i64) -> Result<Option<usize>> {
        let Some((event_type, _, created)) = self.event_payload(event_id).await? else {
            return Ok(None);
        };
        let mut tx = self.writer.begin().await?;
        let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE enabled = 1");
        let endpoints = sqlx::query(&sql)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(endpoint_row)
            .collect::<Result<Vec<_>>>()?;
        for endpoint in endpoints.iter().filter(|e| wants(&e.events, &event_type)) {
            queue_delivery(&mut tx, event_id, &endpoint.id, now_ms, created).await?;
        }
        // Its retry window starts again: a redelivery is the operator's new first attempt.
        let queued = sqlx::query(
            "UPDATE outbound_deliveries SET status = 'pending', next_attempt_ms = $2, first_attempt_ms = NULL, \
             lease_until_ms = 0, updated_at = $3 WHERE event_id = $1",
        )
        .bind(event_id)
        .bind(now_ms)
        .bind(now_ms / 1000)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("UPDATE outbound_events SET dispatched = 1 WHERE id = $1")
            .bind(event_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(queued as usize))
    }

    /// An endpoint's delivery attempts, newest first.
    pub async fn delivery_attempts(&self, endpoint: &str, page: &PageRequest) -> Result<Page<AttemptRecord>> {
        let limit = i64::from(page.limit.clamp(1, 100));
        let rows = sqlx::query(
            "SELECT a.id, a.delivery_id, a.event_id, e.type, a.endpoint_id, a.attempted_ms, a.status_code, \
             a.latency_ms, a.response, a.error, d.status FROM delivery_attempts a \
             JOIN outbound_deliveries d ON d.id = a.delivery_id JOIN outbound_events e ON e.id = a.event_id \
             WHERE a.endpoint_id = $1 AND ($2 = '' OR a.seq < (SELECT seq FROM delivery_attempts WHERE id = $2)) \
             ORDER BY a.seq DESC LIMIT $3",
        )
        .bind(endpoint)
        .bind(page.starting_after.as_deref().unwrap_or(""))
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await?;
        let has_more = rows.len() as i64 > limit;
        let data = rows
            .iter()
            .take(limit as usize)
            .map(|r| {
                Ok(AttemptRecord {
                    id: r.try_get(0)?,
                    delivery: r.try_get(1)?,
                    event: r.try_get(2)?,
                    event_type: r.try_get(3)?,
                    endpoint: r.try_get(4)?,
                    attempted_ms: r.try_get(5)?,
                    status_code: r.try_get(6)?,
                    latency_ms: r.try_get(7)?,
                    response: r.try_get(8)?,
                    error: r.try_get(9)?,
                    delivery_status: r.try_get(10)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Page { data, has_more })
    }

    /// Every endpoint with its delivery counts, failing ones first (for the dashboard).
    pub async fn endpoint_health(&self) -> Result<Vec<EndpointHealth>> {
        let mut out = Vec::new();
        for endpoint in self.endpoints().await? {
            let row = sqlx::query(
                "SELECT CAST(COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(CASE WHEN status = 'delivered' THEN 1 ELSE 0 END), 0) AS BIGINT), \
                 MAX(CASE WHEN status <> 'delivered' AND attempts > 0 THEN COALESCE(last_error, 'HTTP ' || CAST(last_status_code AS TEXT)) END) \
                 FROM outbound_deliveries WHERE endpoint_id = $1",
            )
            .bind(&endpoint.id)
            .fetch_one(&self.pool)
            .await?;
            out.push(EndpointHealth {
                endpoint,
                pending: row.try_get(0)?,
                failed: row.try_get(1)?,
                delivered: row.try_get(2)?,
                last_error: row.try_get(3)?,
            });
        }
        out.sort_by_key(|h| (h.failed == 0 && h.last_error.is_none(), h.endpoint.created));
        Ok(out)
    }

    /// The newest delivery attempts across endpoints (for the dashboard).
    pub async fn recent_attempts(&self, limit: i64) -> Result<Vec<AttemptRecord>> {
        let mut all = Vec::new();
        for endpoint in self.endpoints().await? {
            let page = PageRequest {
                limit: limit.clamp(1, 100) as u32,
                starting_after: None,
            };
            all.extend(self.delivery_attempts(&endpoint.id, &page).await?.data);
        }
        all.sort_by(|a, b| b.attempted_ms.cmp(&a.attempted_ms).then(b.id.cmp(&a.id)));
        all.truncate(limit.max(0) as usize);
        Ok(all)
    }
}
