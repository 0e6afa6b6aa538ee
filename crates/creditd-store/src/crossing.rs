//! Low-balance crossings and auto top-up triggers decided on the spend path, inside the
//! batch that makes them: every command's new available credits are compared with the
//! customer's alert state ([`creditd_domain::outbound::alerts`]) in acceptance order, so 64
//! concurrent spends through a threshold raise exactly one `credits.low`. What they raise is
//! written with the batch's other rows, in its transaction.

use std::collections::HashMap;

use creditd_domain::outbound::{AlertState, EventType};
use creditd_domain::views::{Customer, Entry};
use creditd_domain::{Account, Credits, IdKind};
use sqlx::{AnyConnection, Row};

use crate::outbox::{alert_events, PendingEvent};
use crate::parts::{id_set, Part};
use crate::rowset::{RowSet, Ty};
use crate::{Dialect, Result};

/// What the batch knows of one customer's alerts.
struct Watched {
    state: AlertState,
    threshold: Option<Credits>,
    /// The auto top-up threshold while it is enabled and armed.
    topup: Option<Credits>,
}

#[derive(Default)]
pub(crate) struct Crossings {
    watched: HashMap<String, Watched>,
    /// (customer, event, the customer's balance, held and debt after the command).
    raised: Vec<(String, EventType, Account)>,
    expired: Vec<PendingEvent>,
    /// Customers whose available credits fell below their auto top-up threshold.
    topups: Vec<String>,
}

impl Crossings {
    pub(crate) fn watch(&mut self, customer: &str, state: AlertState, threshold: Option<Credits>, topup: Option<Credits>) {
        self.watched.insert(
            customer.to_string(),
            Watched {
                state,
                threshold,
                topup,
            },
        );
    }

    pub(crate) fn arm_topup(&mut self, customer: &str, threshold: Credits) {
        if let Some(w) = self.watched.get_mut(customer) {
            w.topup = Some(threshold);
        }
    }

    /// The alert state each watched customer is left in.
    pub(crate) fn state(&self, customer: &str) -> AlertState {
        self.watched.get(customer).map_or(AlertState::Ok, |w| w.state)
    }

    /// `credits.expired` for expiry entries written by the sweep at load.
    pub(crate) fn expired(&mut self, customer: &str, entries: &[Entry]) {
        for entry in entries {
            self.expired
                .push(PendingEvent::new(EventType::CreditsExpired, Some(customer), entry));
        }
    }

    /// After a command changed `account`: the alerts it raises and whether it tops up.
    pub(crate) fn observe(&mut self, customer: &str, account: &Account) {
        let Some(watched) = self.watched.get_mut(customer) else { return };
        let available = account.available();
        let (next, raised) = alert_events(watched.state, watched.threshold, available);
        watched.state = next;
        for event in raised {
            self.raised.push((customer.to_string(), event, account.clone()));
        }
        if watched.topup.is_some_and(|t| available < t) {
            // Disarmed: one top-up per crossing, whatever follows in the batch.
            watched.topup = None;
            self.topups.push(customer.to_string());
        }
    }

    /// The rows of what was raised: outbox events (with each customer as the API shows it)
    /// and top-up runs. Reads the crossing customers' other fields, only when there are any.
    pub(crate) async fn parts(&self, conn: &mut AnyConnection, dialect: Dialect) -> Result<Vec<Part>> {
        let mut events = self.expired.clone();
        if !self.raised.is_empty() {
            let views = self.views(conn, dialect).await?;
            for ((customer, event, _), view) in self.raised.iter().zip(views) {
                events.push(PendingEvent::new(*event, Some(customer), &view));
            }
        }
        let mut parts = Vec::new();
        if !events.is_empty() {
            let mut rows = RowSet::new(dialect, &[Ty::Text, Ty::Text, Ty::Text, Ty::Text]);
            for e in &events {
                rows.push([
                    e.id.as_str().into(),
                    e.event_type.as_str().into(),
                    e.customer.as_deref().into(),
                    e.data.as_str().into(),
                ]);
            }
            parts.push(Part {
                what: "outbound events recorded",
                rows,
                sql: |source, now| {
                    format!(
                        "INSERT INTO outbound_events (id, type, customer_id, payload, created_at, dispatched) \
                         SELECT v.column1, v.column2, v.column3, v.column4, ${now}, 0 FROM {source} AS v"
                    )
                },
                rows_expected: events.len(),
                race: false,
                at_most: false,
            });
        }
        if !self.topups.is_empty() {
            parts.extend(topup_parts(dialect, &self.topups));
        }
        Ok(parts)
    }

    /// Each raised alert's customer as the API returns it, at the moment it was raised.
    async fn views(&self, conn: &mut AnyConnection, dialect: Dialect) -> Result<Vec<Customer>> {
        let ids = id_set(dialect, self.raised.iter().map(|(c, _, _)| c.as_str()));
        let sql = format!(
            "SELECT id, email, metadata, frozen, created_at, low_balance_threshold FROM customers \
             WHERE id IN (SELECT column1 FROM {} AS v)",
            ids.sql(1).0
        );
        let mut rows = HashMap::new();
        for row in ids.bind(sqlx::query(&sql)).fetch_all(&mut *conn).await? {
            rows.insert(row.try_get::<String, _>(0)?, row);
        }
        let mut views = Vec::with_capacity(self.raised.len());
        for (customer, _, account) in &self.raised {
            let row = rows
                .get(customer)
                .ok_or_else(|| crate::StoreError::Corrupt(format!("locked customer {customer} vanished")))?;
            let threshold = row.try_get::<Option<i64>, _>(5)?.map(Credits::from_micros);
            views.push(Customer {
                    id: customer.clone(),
                    email: row.try_get(1)?,
                    metadata: crate::rows::metadata(&row.try_get::<String, _>(2)?),
                    balance: account.balance,
                    available: account.available(),
                    held: account.held,
                    frozen: Credits::from_micros(row.try_get(3)?),
                    debt: account.debt,
                    low_balance_threshold: threshold.unwrap_or_else(crate::outbox::default_low_balance_threshold),
                    created: row.try_get(4)?,
                    subscription: None,
        auto_topup: None,
            });
        }
        Ok(views)
    }
}

/// Disarms each customer's auto top-up and queues its run (none when one is in flight).
fn topup_parts(dialect: Dialect, customers: &[String]) -> Vec<Part> {
    let mut disarm = RowSet::new(dialect, &[Ty::Text]);
    let mut runs = RowSet::new(dialect, &[Ty::Text, Ty::Text]);
    for customer in customers {
        disarm.push([customer.as_str().into()]);
        runs.push([IdKind::AutoTopupRun.new_id().into(), customer.as_str().into()]);
    }
    vec![
        Part {
            what: "auto top-ups disarmed",
            rows: disarm,
            sql: |source, now| {
                format!(
                    "UPDATE auto_topups SET armed = 0, updated_at = ${now} FROM {source} AS v \
                     WHERE auto_topups.customer_id = v.column1"
                )
            },
            rows_expected: customers.len(),
            race: false,
            at_most: false,
        },
        Part {
            what: "auto top-ups queued",
            rows: runs,
            // At most one run in flight per customer (a unique partial index).
            sql: |source, now| {
                format!(
                    "INSERT INTO auto_topup_runs (id, customer_id, package_id, quantity, status, created_at, updated_at) \
                     SELECT v.column1, a.customer_id, a.package_id, a.quantity, 'pending', ${now}, ${now} \
                     FROM {source} AS v JOIN auto_topups a ON a.customer_id = v.column2 WHERE true \
                     ON CONFLICT (customer_id) WHERE status IN ('pending', 'processing') DO NOTHING"
                )
            },
            rows_expected: customers.len(),
            race: false,
            at_most: true,
        },
    ]
}
