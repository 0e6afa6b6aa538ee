//! The rows of the decisions' [`Effect`]s, written with the batch: outbox events, queued auto
//! top-ups, and the auto top-ups' armed flags.

use std::collections::HashMap;

use creditd_domain::{Book, Effect};
use sqlx::Row;

use crate::db::{on, Conn};
use crate::persist::{id_set, Part};
use crate::rowset::{RowSet, Ty, Val};
use crate::Result;

pub(crate) async fn effect_parts(conn: &mut Conn<'_>, book: &Book) -> Result<Vec<Part>> {
    let dialect = conn.dialect();
    let mut parts = Vec::new();
    let profiles = missing_profiles(conn, &book.changes.effects).await?;
    let mut events = RowSet::new(dialect, &[Ty::Text, Ty::Text, Ty::Text, Ty::Text]);
    let mut runs = RowSet::new(dialect, &[Ty::Text, Ty::Text]);
    let (mut n_events, mut n_runs) = (0, 0);
    for effect in &book.changes.effects {
        match effect {
            Effect::Event {
                id,
                event_type,
                customer,
                data,
                profile_missing,
            } => {
                let mut data = data.clone();
                if let (true, Some(profile)) = (*profile_missing, customer.as_ref().and_then(|c| profiles.get(c))) {
                    for (key, value) in profile {
                        data[*key] = value.clone();
                    }
                }
                events.push([
                    id.as_str().into(),
                    event_type.as_str().into(),
                    customer.as_deref().into(),
                    Val::from(data.to_string()),
                ]);
                n_events += 1;
            }
            Effect::TopupQueued { customer, run } => {
                runs.push([run.as_str().into(), customer.as_str().into()]);
                n_runs += 1;
            }
            // Limits, budgets and priced units: crate::budgets writes them.
            Effect::Counter { .. } | Effect::Units { .. } => {}
        }
    }
    if n_events > 0 {
        parts.push(Part {
            what: "outbound events recorded",
            rows: events,
            sql: |source, now| {
                format!(
                    "INSERT INTO outbound_events (id, type, customer_id, payload, created_at, dispatched) \
                     SELECT v.column1, v.column2, v.column3, v.column4, ${now}, FALSE FROM {source} AS v"
                )
            },
            rows_expected: Some(n_events),
            race: false,
        });
    }
    if n_runs > 0 {
        parts.push(Part {
            what: "auto top-ups queued",
            rows: runs,
            // At most one run in flight per customer (a unique partial index): none when one is.
            sql: |source, now| {
                format!(
                    "INSERT INTO auto_topup_runs (id, customer_id, package_id, quantity, status, created_at, updated_at) \
                     SELECT v.column1, a.customer_id, a.package_id, a.quantity, 'pending', ${now}, ${now} \
                     FROM {source} AS v JOIN auto_topups a ON a.customer_id = v.column2 WHERE true \
                     ON CONFLICT (customer_id) WHERE status IN ('pending', 'processing') DO NOTHING"
                )
            },
            rows_expected: None,
            race: false,
        });
    }
    let mut armed = RowSet::new(dialect, &[Ty::Text, Ty::Bool]);
    let mut n_armed = 0;
    for (id, state) in &book.customers {
        if let Some(topup) = state.alerts.topup {
            armed.push([id.as_str().into(), topup.armed.into()]);
            n_armed += 1;
        }
    }
    if n_armed > 0 {
        parts.push(Part {
            what: "auto top-ups armed",
            rows: armed,
            sql: |source, now| {
                format!(
                    "UPDATE auto_topups SET armed = v.column2, updated_at = ${now} FROM {source} AS v \
                     WHERE auto_topups.customer_id = v.column1"
                )
            },
            rows_expected: None,
            race: false,
        });
    }
    Ok(parts)
}

type ProfileFields = Vec<(&'static str, serde_json::Value)>;

/// Email, metadata and creation time of the customers whose alert events the batch raised
/// without reading their profile (a rare read: only when a threshold is crossed).
async fn missing_profiles(conn: &mut Conn<'_>, effects: &[Effect]) -> Result<HashMap<String, ProfileFields>> {
    let ids: Vec<&str> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Event {
                customer: Some(c),
                profile_missing: true,
                ..
            } => Some(c.as_str()),
            _ => None,
        })
        .collect();
    let mut out = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let set = id_set(conn.dialect(), ids);
    let sql = format!(
        "SELECT id, email, metadata, created_at FROM customers WHERE id IN (SELECT column1 FROM {} AS v)",
        set.sql(1).0
    );
    on!(conn, c => {
        for row in set.bind(sqlx::query(&sql)).fetch_all(&mut **c).await? {
            let email: Option<String> = row.try_get(1)?;
            let metadata = crate::rows::metadata(&row, "metadata")?;
            let created: i64 = row.try_get(3)?;
            out.insert(
                row.try_get::<String, _>(0)?,
                vec![
                    ("email", email.into()),
                    ("metadata", metadata),
                    ("created", created.into()),
                ],
            );
        }
    });
    Ok(out)
}
