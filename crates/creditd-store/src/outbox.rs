//! The transactional outbox: an event row written in the transaction of the change it
//! describes, so there is never an event for a rolled-back change nor a change without its
//! event. [`crate::webhooks`] fans the rows out to endpoints and tracks their delivery.

use std::sync::atomic::{AtomicI64, Ordering};

use creditd_domain::outbound::{alerts, AlertState, EventType};
use creditd_domain::{Credits, IdKind};
use serde::Serialize;
use sqlx::types::Json;
use sqlx::Row;

use crate::db::{on, Conn, Fields};
use crate::read::{Page, PageRequest};
use crate::{Result, Store};

/// One event as recorded: `data` is the object as the API returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboundEvent {
    /// `evt_…`
    pub id: String,
    pub event_type: String,
    pub customer: Option<String>,
    pub data: serde_json::Value,
    /// Unix seconds of the change.
    pub created: i64,
}

/// An event not yet written: the batch path collects these and writes them with its rows.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PendingEvent {
    pub(crate) id: String,
    pub(crate) event_type: EventType,
    pub(crate) customer: Option<String>,
    pub(crate) data: String,
}

impl PendingEvent {
    pub(crate) fn new(event_type: EventType, customer: Option<&str>, data: &impl Serialize) -> PendingEvent {
        PendingEvent {
            id: IdKind::OutboundEvent.new_id(),
            event_type,
            customer: customer.map(str::to_string),
            data: serde_json::to_string(data).expect("API objects serialize"),
        }
    }
}

pub(crate) const OUTBOUND_EVENT_COLUMNS: &str = "id, type, customer_id, payload, created_at";

pub(crate) fn outbound_event_row(row: &impl Fields) -> Result<OutboundEvent> {
    let payload: String = row.field("payload")?;
    Ok(OutboundEvent {
        id: row.field("id")?,
        event_type: row.field("type")?,
        customer: row.field("customer_id")?,
        data: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
        created: row.field("created_at")?,
    })
}

/// Records an event inside the caller's transaction.
pub(crate) async fn emit(
    conn: &mut Conn<'_>,
    event_type: EventType,
    customer: Option<&str>,
    data: &impl Serialize,
    now: i64,
) -> Result<()> {
    insert(conn, &PendingEvent::new(event_type, customer, data), now).await
}

pub(crate) async fn insert(conn: &mut Conn<'_>, event: &PendingEvent, now: i64) -> Result<()> {
    on!(conn, c => {
        sqlx::query(
            "INSERT INTO outbound_events (id, type, customer_id, payload, created_at, dispatched) \
             VALUES ($1, $2, $3, $4, $5, FALSE)",
        )
        .bind(&event.id)
        .bind(event.event_type.as_str())
        .bind(&event.customer)
        .bind(&event.data)
        .bind(now)
        .execute(&mut **c)
        .await?;
    });
    Ok(())
}

impl Store {
    /// Events of one customer (or all), newest first.
    pub async fn outbound_events(&self, customer: Option<&str>, page: &PageRequest) -> Result<Page<OutboundEvent>> {
        let limit = i64::from(page.limit.clamp(1, 100));
        let sql = format!(
            "SELECT {OUTBOUND_EVENT_COLUMNS} FROM outbound_events WHERE ($1 = '' OR customer_id = $1) \
             AND ($2 = '' OR seq < (SELECT seq FROM outbound_events WHERE id = $2)) ORDER BY seq DESC LIMIT $3"
        );
        on!(&self.pool, p => {
            let rows = sqlx::query(&sql)
                .bind(customer.unwrap_or(""))
                .bind(page.starting_after.as_deref().unwrap_or(""))
                .bind(limit + 1)
                .fetch_all(p)
                .await?;
            let has_more = rows.len() as i64 > limit;
            let data = rows
                .iter()
                .take(limit as usize)
                .map(outbound_event_row)
                .collect::<Result<Vec<_>>>()?;
            Ok(Page { data, has_more })
        })
    }

    pub async fn outbound_event(&self, id: &str) -> Result<Option<OutboundEvent>> {
        let sql = format!("SELECT {OUTBOUND_EVENT_COLUMNS} FROM outbound_events WHERE id = $1");
        on!(&self.pool, p => sqlx::query(&sql)
            .bind(id)
            .fetch_optional(p)
            .await?
            .as_ref()
            .map(outbound_event_row)
            .transpose())
    }
}

/// The low-balance threshold of customers without their own, in micro-credits: process-wide
/// configuration (`low_balance_threshold`), set once at start; until then the setting's
/// default, 10 credits, so a process that never sets it (the operator CLI) agrees with a
/// server on the default configuration.
static DEFAULT_LOW_BALANCE_MICROS: AtomicI64 = AtomicI64::new(10_000_000);

/// Sets the threshold of customers that have none of their own.
pub fn set_default_low_balance_threshold(threshold: Credits) {
    DEFAULT_LOW_BALANCE_MICROS.store(threshold.micros(), Ordering::Relaxed);
}

pub fn default_low_balance_threshold() -> Credits {
    Credits::from_micros(DEFAULT_LOW_BALANCE_MICROS.load(Ordering::Relaxed))
}

/// The alert state a change leaves, and the events it raises (data: the customer after it).
pub(crate) fn alert_events(
    state: AlertState,
    threshold: Option<Credits>,
    available: Credits,
) -> (AlertState, Vec<EventType>) {
    alerts(
        state,
        threshold.unwrap_or_else(default_low_balance_threshold),
        available,
    )
}

/// Re-evaluates a locked customer's alert after a change and records what it raises.
pub(crate) async fn save_alert(
    conn: &mut Conn<'_>,
    customer: &str,
    state: AlertState,
    threshold: Option<Credits>,
    available: Credits,
    now: i64,
) -> Result<()> {
    let (next, raised) = alert_events(state, threshold, available);
    if next == state {
        return Ok(());
    }
    on!(conn, c => {
        sqlx::query("UPDATE customers SET balance_alert = $2 WHERE id = $1")
            .bind(customer)
            .bind(next.as_str())
            .execute(&mut **c)
            .await?;
    });
    if raised.is_empty() {
        return Ok(());
    }
    let view = crate::read::customer_on(conn, customer, now)
        .await?
        .ok_or_else(|| crate::StoreError::Corrupt(format!("customer {customer} vanished")))?;
    for event in raised {
        emit(conn, event, Some(customer), &view, now).await?;
    }
    Ok(())
}

/// What `POST /v1/customers/{id}` changes; `None` leaves a field alone.
#[derive(Clone, Debug, Default)]
pub struct CustomerUpdate {
    pub email: Option<String>,
    pub metadata: Option<serde_json::Value>,
    /// `Some(None)` goes back to the configured default.
    pub low_balance_threshold: Option<Option<Credits>>,
}

impl Store {
    /// Updates a customer; a new threshold is checked against available credits at once (an
    /// alert it crosses is sent). `None` when there is no such customer.
    pub async fn update_customer(
        &self,
        id: &str,
        update: &CustomerUpdate,
        now: i64,
    ) -> Result<Option<creditd_domain::views::Customer>> {
        let mut tx = self.writer.begin().await?;
        let row: Option<(String, Option<i64>)> = on!(&mut tx.conn(), c => sqlx::query(
            "UPDATE customers SET email = COALESCE($2, email), metadata = COALESCE($3, metadata), \
             low_balance_threshold = CASE WHEN $4 THEN $5 ELSE low_balance_threshold END, updated_at = $6, \
             version = version + 1 \
             WHERE id = $1 RETURNING balance_alert, low_balance_threshold",
        )
        .bind(id)
        .bind(&update.email)
        .bind(update.metadata.as_ref().map(Json))
        .bind(update.low_balance_threshold.is_some())
        .bind(update.low_balance_threshold.flatten().map(Credits::micros))
        .bind(now)
        .fetch_optional(&mut **c)
        .await?
        .map(|row| Ok::<_, sqlx::Error>((row.try_get(0)?, row.try_get(1)?)))
        .transpose()?);
        let Some((alert, threshold)) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        let alert = AlertState::parse(&alert)
            .ok_or_else(|| crate::StoreError::Corrupt(format!("unknown alert state {alert:?}")))?;
        let threshold = threshold.map(Credits::from_micros);
        let before = crate::read::customer_on(&mut tx.conn(), id, now)
            .await?
            .ok_or_else(|| crate::StoreError::Corrupt(format!("customer {id} vanished")))?;
        save_alert(&mut tx.conn(), id, alert, threshold, before.available, now).await?;
        let customer = crate::read::customer_on(&mut tx.conn(), id, now).await?;
        tx.commit().await?;
        Ok(customer)
    }
}

#[cfg(test)]
mod tests {
    use creditd_domain::command::NewCustomer;
    use creditd_domain::{Command, Request};
    use serde_json::json;

    use super::*;
    use crate::testing::TestDb;

    const NOW: i64 = 1_800_000_000;

    async fn types(store: &Store) -> Vec<String> {
        let page = PageRequest {
            limit: 100,
            starting_after: None,
        };
        let events = store.outbound_events(Some("ada"), &page).await.unwrap().data;
        events.into_iter().rev().map(|e| e.event_type).collect()
    }

    /// What `update_customer` leaves alone stays; metadata round-trips (jsonb / JSON text); a
    /// threshold above what is available raises `credits.low`, and `Some(None)` goes back to
    /// the default.
    async fn a_customer_update_changes_what_it_names(store: Store) {
        let create = Command::CreateCustomer(NewCustomer {
            id: "ada".into(),
            email: None,
            metadata: json!({"team": "x"}),
            signup_bonus: Credits::from_micros(50_000_000),
        });
        let request = Request {
            command: create,
            idempotency: None,
        };
        store.apply(vec![request], NOW).await.pop().unwrap().unwrap();
        assert_eq!(types(&store).await, ["customer.created", "credits.granted"]);

        let email = CustomerUpdate {
            email: Some("ada@example.com".into()),
            ..CustomerUpdate::default()
        };
        let updated = store.update_customer("ada", &email, NOW).await.unwrap().unwrap();
        assert_eq!(
            (updated.email.as_deref(), updated.metadata.clone()),
            (Some("ada@example.com"), json!({"team": "x"}))
        );
        let metadata = CustomerUpdate {
            metadata: Some(json!({"team": "y", "seats": 3, "tags": ["a", "b"]})),
            low_balance_threshold: Some(Some(Credits::from_micros(60_000_000))),
            ..CustomerUpdate::default()
        };
        let updated = store.update_customer("ada", &metadata, NOW).await.unwrap().unwrap();
        assert_eq!(updated.metadata, json!({"team": "y", "seats": 3, "tags": ["a", "b"]}));
        assert_eq!(updated.email.as_deref(), Some("ada@example.com"));
        assert_eq!(updated.low_balance_threshold, Credits::from_micros(60_000_000));
        assert_eq!(
            types(&store).await,
            ["customer.created", "credits.granted", "credits.low"]
        );
        let reset = CustomerUpdate {
            low_balance_threshold: Some(None),
            ..CustomerUpdate::default()
        };
        let updated = store.update_customer("ada", &reset, NOW).await.unwrap().unwrap();
        assert_eq!(updated.low_balance_threshold, default_low_balance_threshold());
        assert_eq!(updated.metadata["seats"], 3);
        assert!(store.update_customer("nobody", &email, NOW).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_customer_update_changes_what_it_names_sqlite() {
        let db = TestDb::sqlite().await;
        a_customer_update_changes_what_it_names(db.store.clone()).await;
    }

    #[tokio::test]
    async fn a_customer_update_changes_what_it_names_postgres() {
        let Some(db) = TestDb::postgres().await else { return };
        a_customer_update_changes_what_it_names(db.store.clone()).await;
    }
}
