//! Idempotency keys inside a batch: looked up with one read before anything is decided,
//! stored with their results in the batch's own writes. Replays and mismatches are answered
//! from the lookup; a key used twice in one batch gets its first request's result.

use std::collections::HashMap;

use creditd_domain::{CommandError, Idempotency, Outcome, Request};
use sqlx::Row;

use crate::batch::is_recorded;
use crate::db::{on, Conn};
use crate::persist::{Part, ROWS_PER_STATEMENT};
use crate::rowset::{RowSet, Ty};
use crate::{Dialect, Result, StoreError};

pub(crate) fn replay(first: &Result<Outcome>) -> Result<Outcome> {
    match first {
        Ok(outcome) => Ok(outcome.clone()),
        Err(StoreError::Command(e)) => Err(StoreError::Command(e.clone())),
        Err(other) => Err(StoreError::Corrupt(format!("replayed a failed request: {other}"))),
    }
}

/// How a request's idempotency key stands in this batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    /// No key, or its result is already known (replayed from an earlier batch).
    None,
    /// Not used before: its result is stored with the batch's writes.
    New,
    /// The same key as an earlier request of this batch: gets that request's result.
    SameAs(usize),
}

/// Looks up every key of the batch with one read; fills in the results of keys used before
/// (replays and mismatched fingerprints). Nothing is written here: a key is stored once, with
/// its result, at the end of the batch ([`key_parts`]).
pub(crate) async fn lookup_keys(
    conn: &mut Conn<'_>,
    batch: &[Request],
    results: &mut [Option<Result<Outcome>>],
) -> Result<Vec<Key>> {
    let mut keys = vec![Key::None; batch.len()];
    let mut first_of: HashMap<(&str, &str), usize> = HashMap::new();
    let mut to_check: Vec<(usize, &Idempotency)> = Vec::new();
    for (i, request) in batch.iter().enumerate() {
        let Some(idem) = &request.idempotency else { continue };
        match first_of.get(&(idem.scope.as_str(), idem.key.as_str())) {
            Some(&first) if batch[first].idempotency.as_ref().map(|f| &f.fingerprint) == Some(&idem.fingerprint) => {
                keys[i] = Key::SameAs(first);
            }
            Some(_) => results[i] = Some(Err(CommandError::IdempotencyKeyReused.into())),
            None => {
                first_of.insert((&idem.scope, &idem.key), i);
                to_check.push((i, idem));
            }
        }
    }
    let mut stored: HashMap<(String, String), (String, Option<String>)> = HashMap::new();
    for chunk in to_check.chunks(ROWS_PER_STATEMENT) {
        let mut rows = RowSet::new(conn.dialect(), &[Ty::Text, Ty::Text]);
        for (_, idem) in chunk {
            rows.push([idem.scope.as_str().into(), idem.key.as_str().into()]);
        }
        let sql = format!(
            "SELECT k.scope, k.key, k.fingerprint, k.outcome FROM {} AS v \
             JOIN idempotency_keys k ON k.scope = v.column1 AND k.key = v.column2",
            rows.sql(1).0
        );
        on!(&mut *conn, c => {
            for row in rows.bind(sqlx::query(&sql)).fetch_all(&mut **c).await? {
                stored.insert((row.try_get(0)?, row.try_get(1)?), (row.try_get(2)?, row.try_get(3)?));
            }
        });
    }
    for (i, idem) in to_check {
        match stored.remove(&(idem.scope.clone(), idem.key.clone())) {
            None => keys[i] = Key::New,
            Some((fingerprint, outcome)) => {
                results[i] = Some(stored_result(idem, &fingerprint, outcome.as_deref())?.map_err(StoreError::Command));
            }
        }
    }
    Ok(keys)
}

/// The result a key got in an earlier (committed) transaction.
fn stored_result(
    idem: &Idempotency,
    fingerprint: &str,
    outcome: Option<&str>,
) -> Result<std::result::Result<Outcome, CommandError>> {
    if fingerprint != idem.fingerprint {
        return Ok(Err(CommandError::IdempotencyKeyReused));
    }
    // A key is only ever committed together with its result.
    let outcome = outcome.ok_or_else(|| StoreError::Corrupt("idempotency key without a result".into()))?;
    serde_json::from_str(outcome).map_err(|e| StoreError::Corrupt(format!("stored idempotent result unreadable: {e}")))
}

/// The keys of this batch with their results, to store with the batch's writes. Keys whose
/// request failed in a way that is not replayed are not stored, so a retry can succeed. A
/// key another writer committed since [`lookup_keys`] read is a race ([`Part::race`]): the
/// batch is rolled back and retried, and the retry replays that writer's result.
pub(crate) fn key_parts(
    dialect: Dialect,
    batch: &[Request],
    keys: &[Key],
    results: &[Option<Result<Outcome>>],
    per_part: usize,
) -> Vec<Part> {
    let mut keep: Vec<(&Idempotency, String)> = Vec::new();
    for (i, request) in batch.iter().enumerate() {
        let (Key::New, Some(idem), Some(result)) = (keys[i], &request.idempotency, &results[i]) else {
            continue;
        };
        let recorded: std::result::Result<&Outcome, &CommandError> = match result {
            Ok(outcome) => Ok(outcome),
            Err(StoreError::Command(e)) if is_recorded(e) => Err(e),
            Err(_) => continue,
        };
        keep.push((idem, serde_json::to_string(&recorded).expect("outcomes serialize")));
    }
    let mut parts = Vec::new();
    for chunk in keep.chunks(per_part) {
        let mut rows = RowSet::new(dialect, &[Ty::Text, Ty::Text, Ty::Text, Ty::Text]);
        for (idem, outcome) in chunk {
            rows.push([
                idem.scope.as_str().into(),
                idem.key.as_str().into(),
                idem.fingerprint.as_str().into(),
                outcome.as_str().into(),
            ]);
        }
        parts.push(Part {
            what: "idempotency keys stored",
            rows,
            // `WHERE true`: SQLite needs it before an upsert clause on an `INSERT … SELECT`.
            sql: |source, now| {
                format!(
                    "INSERT INTO idempotency_keys (scope, key, fingerprint, outcome, created_at) \
                     SELECT v.column1, v.column2, v.column3, v.column4, ${now} FROM {source} AS v WHERE true \
                     ON CONFLICT (scope, key) DO NOTHING"
                )
            },
            rows_expected: Some(chunk.len()),
            race: true,
        });
    }
    parts
}
