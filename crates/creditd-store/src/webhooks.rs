//! The app's webhook endpoints and the delivery of outbox events to them.
//!
//! Every replica runs the same loop: fan new events out to the endpoints that want them
//! ([`Store::dispatch_events`]), claim due deliveries under a lease ([`Store::claim_deliveries`],
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL so replicas never wait for each other), send, and
//! record the attempt ([`Store::finish_attempt`]). A lease that runs out (a replica died
//! mid-send) makes the delivery due again: at-least-once, never lost. Every claim is
//! numbered (`lease_id`): an attempt decides what follows only while its claim is the
//! delivery's current one, so an attempt that outlived its lease — the delivery taken over
//! by another replica, or queued again by a redelivery — is logged but cannot mark the
//! delivery delivered (or failed, or due) a second time, nor end the new holder's lease.

use creditd_domain::outbound::wants;
use creditd_domain::IdKind;
use sqlx::Row;

use crate::db::{on, Conn, Db, Fields, Pool};
use crate::read::{Page, PageRequest};
use crate::{Result, Store, StoreError};

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
    /// Which claim this is (the delivery's `lease_id` when it was taken).
    pub lease_id: i64,
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

fn endpoint_row(row: &impl Fields) -> Result<Endpoint> {
    let events: String = row.field("events")?;
    Ok(Endpoint {
        id: row.field("id")?,
        url: row.field("url")?,
        description: row.field("description")?,
        events: serde_json::from_str(&events)
            .map_err(|e| StoreError::Corrupt(format!("endpoint events unreadable: {e}")))?,
        secret: row.field("secret")?,
        previous_secret: row.field("previous_secret")?,
        previous_secret_expires_at: row.field("previous_secret_expires_at")?,
        enabled: row.field("enabled")?,
        created: row.field("created_at")?,
        updated: row.field("updated_at")?,
    })
}

fn events_json(events: &[String]) -> String {
    serde_json::to_string(events).expect("strings serialize")
}

/// The enabled endpoints, read inside the caller's transaction.
async fn enabled_endpoints(conn: &mut Conn<'_>) -> Result<Vec<Endpoint>> {
    let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE enabled");
    on!(conn, c => sqlx::query(&sql)
        .fetch_all(&mut **c)
        .await?
        .iter()
        .map(endpoint_row)
        .collect())
}

async fn endpoint_in(pool: &Pool, id: &str) -> Result<Option<Endpoint>> {
    let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1");
    on!(pool, p => sqlx::query(&sql)
        .bind(id)
        .fetch_optional(p)
        .await?
        .as_ref()
        .map(endpoint_row)
        .transpose())
}

/// A pending delivery of an event to an endpoint, due at `due_ms` (none when it exists).
async fn queue_delivery(conn: &mut Conn<'_>, event: &str, endpoint: &str, due_ms: i64, now: i64) -> Result<()> {
    on!(conn, c => {
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
        .execute(&mut **c)
        .await?;
    });
    Ok(())
}

/// Marks an event dispatched, inside the caller's transaction.
async fn mark_dispatched(conn: &mut Conn<'_>, event: &str) -> Result<()> {
    on!(conn, c => {
        sqlx::query("UPDATE outbound_events SET dispatched = TRUE WHERE id = $1")
            .bind(event)
            .execute(&mut **c)
            .await?;
    });
    Ok(())
}

/// Undispatched events, in each backend's own terms: the condition its partial index
/// `outbound_events_undispatched` was made with (SQLite does not match `NOT dispatched`
/// against `dispatched = 0`). PostgreSQL's replicas dispatching at once take different events.
const ANY_UNDISPATCHED_POSTGRES: &str = "SELECT 1 FROM outbound_events WHERE NOT dispatched LIMIT 1";
const ANY_UNDISPATCHED_SQLITE: &str = "SELECT 1 FROM outbound_events WHERE dispatched = 0 LIMIT 1";
const TAKE_UNDISPATCHED_POSTGRES: &str =
    "SELECT id, type FROM outbound_events WHERE NOT dispatched ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED";
const TAKE_UNDISPATCHED_SQLITE: &str =
    "SELECT id, type FROM outbound_events WHERE dispatched = 0 ORDER BY seq LIMIT $1";

/// Claims due deliveries for a lease, moving their `lease_id` on. The two backends differ
/// only in PostgreSQL's `FOR UPDATE SKIP LOCKED`.
const CLAIM_DELIVERIES_POSTGRES: &str = "UPDATE outbound_deliveries SET lease_until_ms = $2, lease_id = lease_id + 1 \
     WHERE id IN (SELECT id FROM outbound_deliveries WHERE status = 'pending' AND next_attempt_ms <= $1 \
     AND lease_until_ms <= $1 ORDER BY next_attempt_ms LIMIT $3 FOR UPDATE SKIP LOCKED) \
     RETURNING id, event_id, endpoint_id, attempts, first_attempt_ms, lease_id";
const CLAIM_DELIVERIES_SQLITE: &str = "UPDATE outbound_deliveries SET lease_until_ms = $2, lease_id = lease_id + 1 \
     WHERE id IN (SELECT id FROM outbound_deliveries WHERE status = 'pending' AND next_attempt_ms <= $1 \
     AND lease_until_ms <= $1 ORDER BY next_attempt_ms LIMIT $3) \
     RETURNING id, event_id, endpoint_id, attempts, first_attempt_ms, lease_id";

impl Store {
    pub async fn create_endpoint(&self, new: &NewEndpoint, now: i64) -> Result<Endpoint> {
        let id = IdKind::WebhookEndpoint.new_id();
        on!(&self.writer, w => {
            sqlx::query(
                "INSERT INTO webhook_endpoints (id, url, description, events, secret, enabled, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, TRUE, $6, $6)",
            )
            .bind(&id)
            .bind(&new.url)
            .bind(&new.description)
            .bind(events_json(&new.events))
            .bind(&new.secret)
            .bind(now)
            .execute(w)
            .await?;
        });
        self.endpoint(&id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("endpoint vanished".into()))
    }

    /// Endpoints, oldest first.
    pub async fn endpoints(&self) -> Result<Vec<Endpoint>> {
        let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY seq");
        on!(&self.pool, p => sqlx::query(&sql).fetch_all(p).await?.iter().map(endpoint_row).collect())
    }

    pub async fn endpoint(&self, id: &str) -> Result<Option<Endpoint>> {
        endpoint_in(&self.writer, id).await
    }

    /// Changes what `update` names; `None` when there is no such endpoint.
    pub async fn update_endpoint(&self, id: &str, update: &EndpointUpdate, now: i64) -> Result<Option<Endpoint>> {
        let changed = on!(&self.writer, w => sqlx::query(
            "UPDATE webhook_endpoints SET url = COALESCE($2, url), description = COALESCE($3, description), \
             events = COALESCE($4, events), enabled = COALESCE($5, enabled), updated_at = $6 WHERE id = $1",
        )
        .bind(id)
        .bind(&update.url)
        .bind(&update.description)
        .bind(update.events.as_deref().map(events_json))
        .bind(update.enabled)
        .bind(now)
        .execute(w)
        .await?
        .rows_affected());
        if changed == 0 {
            return Ok(None);
        }
        self.endpoint(id).await
    }

    /// Deletes an endpoint with its deliveries and their log. False when there was none.
    pub async fn delete_endpoint(&self, id: &str) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        let deleted = on!(&mut tx.conn(), c => {
            sqlx::query("DELETE FROM delivery_attempts WHERE endpoint_id = $1")
                .bind(id)
                .execute(&mut **c)
                .await?;
            sqlx::query("DELETE FROM outbound_deliveries WHERE endpoint_id = $1")
                .bind(id)
                .execute(&mut **c)
                .await?;
            sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
                .bind(id)
                .execute(&mut **c)
                .await?
                .rows_affected()
        });
        tx.commit().await?;
        Ok(deleted == 1)
    }

    /// A new signing secret; the current one keeps signing beside it until `now + overlap`.
    pub async fn rotate_endpoint_secret(
        &self,
        id: &str,
        secret: &str,
        now: i64,
        overlap_seconds: i64,
    ) -> Result<Option<Endpoint>> {
        let changed = on!(&self.writer, w => sqlx::query(
            "UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_expires_at = $3, \
             secret = $2, updated_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(secret)
        .bind(now.saturating_add(overlap_seconds))
        .bind(now)
        .execute(w)
        .await?
        .rows_affected());
        if changed == 0 {
            return Ok(None);
        }
        self.endpoint(id).await
    }

    /// Creates a pending delivery of each undispatched event for every enabled endpoint that
    /// wants it, oldest events first; returns how many events were dispatched. An endpoint
    /// receives the events dispatched after it was created (a second or so of recent history).
    pub async fn dispatch_events(&self, now_ms: i64, limit: i64) -> Result<usize> {
        // A read first: an idle replica takes no write lock (SQLite has one for everyone).
        let (any_waiting, take_waiting) = match &self.pool {
            Db::Pg(_) => (ANY_UNDISPATCHED_POSTGRES, TAKE_UNDISPATCHED_POSTGRES),
            Db::Lite(_) => (ANY_UNDISPATCHED_SQLITE, TAKE_UNDISPATCHED_SQLITE),
        };
        let waiting = on!(&self.pool, p => sqlx::query(any_waiting).fetch_optional(p).await?.is_some());
        if !waiting {
            return Ok(0);
        }
        let mut tx = self.writer.begin_write().await?;
        let events: Vec<(String, String)> =
            on!(&mut tx.conn(), c => sqlx::query_as(take_waiting).bind(limit).fetch_all(&mut **c).await?);
        if events.is_empty() {
            tx.rollback().await?;
            return Ok(0);
        }
        let endpoints = enabled_endpoints(&mut tx.conn()).await?;
        let now = now_ms / 1000;
        for (id, event_type) in &events {
            for endpoint in endpoints.iter().filter(|e| wants(&e.events, event_type)) {
                queue_delivery(&mut tx.conn(), id, &endpoint.id, now_ms, now).await?;
            }
            mark_dispatched(&mut tx.conn(), id).await?;
        }
        tx.commit().await?;
        Ok(events.len())
    }

    /// Takes up to `limit` due deliveries for this replica until `now_ms + lease_ms`. The
    /// lease must outlast an attempt and its recording with margin: when it runs out while the
    /// attempt is still in flight, another replica sends the delivery again (that attempt's
    /// claim then decides what follows; see [`Store::finish_attempt`]).
    pub async fn claim_deliveries(&self, now_ms: i64, lease_ms: i64, limit: i64) -> Result<Vec<ClaimedDelivery>> {
        let due = on!(&self.pool, p => sqlx::query(
            "SELECT 1 FROM outbound_deliveries WHERE status = 'pending' AND next_attempt_ms <= $1 \
             AND lease_until_ms <= $1 LIMIT 1",
        )
        .bind(now_ms)
        .fetch_optional(p)
        .await?
        .is_some());
        if !due {
            return Ok(Vec::new());
        }
        let lease_until_ms = now_ms.saturating_add(lease_ms);
        type Claimed = (String, String, String, i64, Option<i64>, i64);
        // Replicas claiming at once skip each other's rows instead of waiting for them.
        let sql = match &self.writer {
            Db::Pg(_) => CLAIM_DELIVERIES_POSTGRES,
            Db::Lite(_) => CLAIM_DELIVERIES_SQLITE,
        };
        let claimed: Vec<Claimed> = on!(&self.writer, w => sqlx::query_as(sql)
            .bind(now_ms)
            .bind(lease_until_ms)
            .bind(limit)
            .fetch_all(w)
            .await?);
        // What to send is read from the read pool: on SQLite the writer's one connection is
        // the group-commit writer's too, and the lease is already running.
        let mut out = Vec::with_capacity(claimed.len());
        for (id, event_id, endpoint_id, attempts, first_attempt_ms, lease_id) in claimed {
            let (Some((event_type, data, event_created)), Some(endpoint)) = (
                self.event_payload(&event_id).await?,
                endpoint_in(&self.pool, &endpoint_id).await?,
            ) else {
                continue;
            };
            out.push(ClaimedDelivery {
                id,
                event_id,
                event_type,
                data,
                event_created,
                endpoint,
                attempts,
                first_attempt_ms,
                lease_id,
            });
        }
        Ok(out)
    }

    async fn event_payload(&self, id: &str) -> Result<Option<(String, String, i64)>> {
        Ok(
            on!(&self.pool, p => sqlx::query_as("SELECT type, payload, created_at FROM outbound_events WHERE id = $1")
            .bind(id)
            .fetch_optional(p)
            .await?),
        )
    }

    /// Records an attempt and what follows it, and gives up the lease — if the lease is still
    /// this attempt's. An attempt that outlived its lease (the delivery was claimed again
    /// after it ran out, or a redelivery was queued meanwhile) is logged and counted, but the
    /// delivery stays with its current claim: a second delivered, failed or retry decision
    /// cannot come from the earlier attempt, nor can it end the later attempt's lease.
    pub async fn finish_attempt(
        &self,
        delivery: &ClaimedDelivery,
        attempt: &Attempt,
        next: AfterAttempt,
    ) -> Result<()> {
        let (status, next_ms) = match next {
            AfterAttempt::Delivered => ("delivered", attempt.attempted_ms),
            AfterAttempt::RetryAt(at) => ("pending", at),
            AfterAttempt::Failed => ("failed", attempt.attempted_ms),
        };
        let status_code = attempt.status_code.map(i64::from);
        let mut tx = self.writer.begin().await?;
        on!(&mut tx.conn(), c => {
            sqlx::query(
                "INSERT INTO delivery_attempts (id, delivery_id, endpoint_id, event_id, attempted_ms, status_code, \
                 latency_ms, response, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(IdKind::DeliveryAttempt.new_id())
            .bind(&delivery.id)
            .bind(&delivery.endpoint.id)
            .bind(&delivery.event_id)
            .bind(attempt.attempted_ms)
            .bind(status_code)
            .bind(attempt.latency_ms)
            .bind(&attempt.response)
            .bind(&attempt.error)
            .execute(&mut **c)
            .await?;
            sqlx::query(
                "UPDATE outbound_deliveries SET \
                 status = CASE WHEN lease_id = $8 THEN $2 ELSE status END, \
                 next_attempt_ms = CASE WHEN lease_id = $8 THEN $3 ELSE next_attempt_ms END, \
                 first_attempt_ms = CASE WHEN lease_id = $8 THEN COALESCE(first_attempt_ms, $4) \
                 ELSE first_attempt_ms END, \
                 lease_until_ms = CASE WHEN lease_id = $8 THEN 0 ELSE lease_until_ms END, \
                 attempts = attempts + 1, last_status_code = $5, last_error = $6, updated_at = $7 WHERE id = $1",
            )
            .bind(&delivery.id)
            .bind(status)
            .bind(next_ms)
            .bind(attempt.attempted_ms)
            .bind(status_code)
            .bind(&attempt.error)
            .bind(attempt.attempted_ms / 1000)
            .bind(delivery.lease_id)
            .execute(&mut **c)
            .await?;
        });
        tx.commit().await?;
        Ok(())
    }

    /// Sends an event again to every endpoint it went to (or now wants it), from now, with the
    /// same `webhook-id`. Returns how many deliveries were queued; `None` for no such event.
    pub async fn redeliver(&self, event_id: &str, now_ms: i64) -> Result<Option<usize>> {
        let Some((event_type, _, created)) = self.event_payload(event_id).await? else {
            return Ok(None);
        };
        let mut tx = self.writer.begin_write().await?;
        let endpoints = enabled_endpoints(&mut tx.conn()).await?;
        for endpoint in endpoints.iter().filter(|e| wants(&e.events, &event_type)) {
            queue_delivery(&mut tx.conn(), event_id, &endpoint.id, now_ms, created).await?;
        }
        // Its retry window starts again: a redelivery is the operator's new first attempt. It
        // takes the lease from an attempt in flight (a new `lease_id`): that attempt's outcome
        // no longer decides what follows.
        let queued = on!(&mut tx.conn(), c => sqlx::query(
            "UPDATE outbound_deliveries SET status = 'pending', next_attempt_ms = $2, first_attempt_ms = NULL, \
             lease_until_ms = 0, lease_id = lease_id + 1, updated_at = $3 WHERE event_id = $1",
        )
        .bind(event_id)
        .bind(now_ms)
        .bind(now_ms / 1000)
        .execute(&mut **c)
        .await?
        .rows_affected());
        mark_dispatched(&mut tx.conn(), event_id).await?;
        tx.commit().await?;
        Ok(Some(queued as usize))
    }

    /// An endpoint's delivery attempts, newest first.
    pub async fn delivery_attempts(&self, endpoint: &str, page: &PageRequest) -> Result<Page<AttemptRecord>> {
        let limit = i64::from(page.limit.clamp(1, 100));
        on!(&self.pool, p => {
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
            .fetch_all(p)
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
        })
    }

    /// Every endpoint with its delivery counts, failing ones first (for the dashboard).
    pub async fn endpoint_health(&self) -> Result<Vec<EndpointHealth>> {
        let mut out = Vec::new();
        for endpoint in self.endpoints().await? {
            let (pending, failed, delivered, last_error): (i64, i64, i64, Option<String>) = on!(&self.pool, p => sqlx::query_as(
                "SELECT COUNT(CASE WHEN status = 'pending' THEN 1 END), \
                 COUNT(CASE WHEN status = 'failed' THEN 1 END), \
                 COUNT(CASE WHEN status = 'delivered' THEN 1 END), \
                 MAX(CASE WHEN status <> 'delivered' AND attempts > 0 THEN COALESCE(last_error, 'HTTP ' || CAST(last_status_code AS TEXT)) END) \
                 FROM outbound_deliveries WHERE endpoint_id = $1",
            )
            .bind(&endpoint.id)
            .fetch_one(p)
            .await?);
            out.push(EndpointHealth {
                endpoint,
                pending,
                failed,
                delivered,
                last_error,
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

#[cfg(test)]
mod tests {
    use creditd_domain::outbound::EventType;

    use super::*;
    use crate::outbox::{insert, PendingEvent};
    use crate::testing::TestDb;

    const T: i64 = 1_800_000_000_000;

    fn answered(at_ms: i64, status: u16) -> Attempt {
        Attempt {
            attempted_ms: at_ms,
            status_code: Some(status),
            latency_ms: 5,
            response: None,
            error: None,
        }
    }

    async fn claim(store: &Store, at_ms: i64) -> Vec<ClaimedDelivery> {
        store.claim_deliveries(at_ms, 1_000, 10).await.unwrap()
    }

    /// The delivery's status as its attempt log shows it, and how many attempts it lists.
    async fn status(store: &Store, endpoint: &str) -> (String, usize) {
        let page = PageRequest {
            limit: 100,
            starting_after: None,
        };
        let log = store.delivery_attempts(endpoint, &page).await.unwrap().data;
        (log[0].delivery_status.clone(), log.len())
    }

    /// An attempt that outlived its lease — taken over after it ran out, or replaced by a
    /// redelivery — neither decides the delivery's state nor ends the new holder's lease.
    async fn an_attempt_that_lost_its_lease_decides_nothing(store: Store) {
        let new = NewEndpoint {
            url: "http://127.0.0.1:9/hook".into(),
            description: None,
            events: vec!["*".into()],
            secret: "whsec_test".into(),
        };
        let endpoint = store.create_endpoint(&new, T / 1000).await.unwrap().id;
        let event = PendingEvent::new(EventType::CustomerCreated, None, &serde_json::json!({"id": "ada"}));
        let mut tx = store.writer.begin().await.unwrap();
        insert(&mut tx.conn(), &event, T / 1000).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(store.dispatch_events(T, 10).await.unwrap(), 1);

        let slow = claim(&store, T).await;
        assert_eq!(slow.len(), 1);
        assert!(claim(&store, T + 999).await.is_empty(), "leased");
        // The slow attempt's lease ran out: another replica takes the delivery over.
        let taken_over = claim(&store, T + 1_000).await;
        assert_eq!(taken_over.len(), 1);
        assert_ne!(taken_over[0].lease_id, slow[0].lease_id);
        // The slow attempt got through after all: logged, but the delivery stays with the
        // replica that holds it now, still leased to it.
        store
            .finish_attempt(&slow[0], &answered(T + 1_100, 200), AfterAttempt::Delivered)
            .await
            .unwrap();
        assert!(claim(&store, T + 1_500).await.is_empty(), "still the new holder's");
        assert_eq!(status(&store, &endpoint).await, ("pending".to_string(), 1));
        // The holder's attempt decides: a retry at T + 3 s.
        store
            .finish_attempt(
                &taken_over[0],
                &answered(T + 1_600, 503),
                AfterAttempt::RetryAt(T + 3_000),
            )
            .await
            .unwrap();
        assert!(claim(&store, T + 2_999).await.is_empty(), "not due yet");
        let retry = claim(&store, T + 3_000).await;
        assert_eq!((retry.len(), retry[0].attempts), (1, 2), "both attempts counted");

        // A redelivery queued while the retry is in flight takes its lease away.
        assert_eq!(store.redeliver(&event.id, T + 3_100).await.unwrap(), Some(1));
        let redelivery = claim(&store, T + 3_100).await;
        assert_eq!(redelivery.len(), 1);
        store
            .finish_attempt(&retry[0], &answered(T + 3_200, 200), AfterAttempt::Delivered)
            .await
            .unwrap();
        assert!(
            claim(&store, T + 3_300).await.is_empty(),
            "the redelivery's lease holds"
        );
        assert_eq!(status(&store, &endpoint).await, ("pending".to_string(), 3));
        store
            .finish_attempt(&redelivery[0], &answered(T + 3_400, 200), AfterAttempt::Delivered)
            .await
            .unwrap();
        assert_eq!(status(&store, &endpoint).await, ("delivered".to_string(), 4));
        assert!(claim(&store, T + 60_000).await.is_empty(), "delivered once, for good");
    }

    #[tokio::test]
    async fn an_attempt_that_lost_its_lease_decides_nothing_sqlite() {
        let db = TestDb::sqlite().await;
        an_attempt_that_lost_its_lease_decides_nothing(db.store.clone()).await;
    }

    #[tokio::test]
    async fn an_attempt_that_lost_its_lease_decides_nothing_postgres() {
        let Some(db) = TestDb::postgres().await else { return };
        an_attempt_that_lost_its_lease_decides_nothing(db.store.clone()).await;
    }
}
