//! Writes what a batch decided ([`Changes`]) as a few multi-row statements: each its own
//! statement on SQLite (in process: no round trips to save), one statement of data-modifying
//! CTEs on PostgreSQL (one round trip while the customers' rows are locked). New customers
//! and grants go first, on their own: a grant's `seq` comes back from its insert.
//!
//! **Extension point:** a new kind of row a decision emits ([`creditd_domain::Effect`]) gets
//! its [`Part`] in [`crate::effects`]; it is then written in the batch's transaction like the
//! ledger.

use std::collections::{BTreeMap, HashMap, HashSet};

use creditd_domain::book::{HoldRow, PROVISIONAL_SEQ};
use creditd_domain::{Book, Credits};
use sqlx::Row;

use crate::accounts::LockedRow;
use crate::db::{on, Conn, Db};
use crate::rowset::{RowSet, Ty, Val};
use crate::{Dialect, Result, StoreError};

/// Rows per multi-row statement on SQLite: far below its parameter limits.
pub(crate) const ROWS_PER_STATEMENT: usize = 500;

/// Rows per [`Part`]: array parameters on PostgreSQL take any number of rows in one part.
pub(crate) fn rows_per_part(dialect: Dialect) -> usize {
    match dialect {
        Dialect::Sqlite => ROWS_PER_STATEMENT,
        Dialect::Postgres => usize::MAX,
    }
}

/// The ids as a one-column [`RowSet`], for `IN (SELECT column1 FROM … AS v)`.
pub(crate) fn id_set<'a>(dialect: Dialect, ids: impl IntoIterator<Item = &'a str>) -> RowSet {
    let mut rows = RowSet::new(dialect, &[Ty::Text]);
    for id in ids {
        rows.push([id.into()]);
    }
    rows
}

/// One multi-row write.
pub(crate) struct Part {
    pub(crate) what: &'static str,
    pub(crate) rows: RowSet,
    /// The statement over the rows' derived table, with the number of the `now` parameter.
    pub(crate) sql: fn(&str, usize) -> String,
    /// Every row names an existing (locked) row or a new one: anything else is damage
    /// (`None`: a delete of however many there are)…
    pub(crate) rows_expected: Option<usize>,
    /// …except for inserts another writer may have made first (idempotency keys, a new
    /// customer): the batch is rolled back and retried.
    pub(crate) race: bool,
}

impl Part {
    fn check(&self, touched: u64) -> Result<()> {
        let Some(expected) = self.rows_expected else {
            return Ok(());
        };
        if touched != expected as u64 && self.race {
            return Err(StoreError::KeyRace);
        }
        if touched != expected as u64 {
            return Err(StoreError::Corrupt(format!(
                "{expected} {} expected but {touched} written",
                self.what
            )));
        }
        Ok(())
    }
}

/// Writes the batch: new customers and grants, then everything else with `more` (the
/// idempotency keys). Returns each new grant's stored `seq`.
pub(crate) async fn persist(
    conn: &mut Conn<'_>,
    book: &Book,
    locked: &BTreeMap<String, LockedRow>,
    more: Vec<Part>,
    now: i64,
) -> Result<HashMap<String, i64>> {
    let dialect = conn.dialect();
    let per_part = rows_per_part(dialect);
    run_parts(conn, customer_parts(dialect, book, per_part), now).await?;
    let seqs = insert_grants(conn, book, now).await?;
    let mut parts = ledger_parts(dialect, book, per_part);
    parts.extend(account_parts(dialect, book, locked, per_part));
    parts.extend(billing_parts(dialect, book, per_part));
    parts.extend(crate::budgets::effect_parts(dialect, &book.changes.effects, per_part));
    parts.extend(crate::effects::effect_parts(conn, book).await?);
    parts.extend(more);
    run_parts(conn, parts, now).await?;
    Ok(seqs)
}

/// Runs writes: on SQLite each part as its own statement; on PostgreSQL all parts as one
/// statement of data-modifying CTEs (they all see the rows as the statement began: a part
/// never reads what another part of it writes).
pub(crate) async fn run_parts(conn: &mut Conn<'_>, parts: Vec<Part>, now: i64) -> Result<()> {
    if parts.is_empty() {
        return Ok(());
    }
    match conn {
        Db::Lite(c) => {
            for part in &parts {
                let (source, now_param) = part.rows.sql(1);
                let sql = (part.sql)(&source, now_param);
                let touched = part.rows.bind(sqlx::query(&sql)).bind(now).execute(&mut **c).await?;
                part.check(touched.rows_affected())?;
            }
        }
        Db::Pg(c) => {
            let (mut ctes, mut counts, mut next) = (Vec::new(), Vec::new(), 1);
            for (i, part) in parts.iter().enumerate() {
                let (source, now_param) = part.rows.sql(next);
                next = now_param + 1;
                ctes.push(format!("p{i} AS ({} RETURNING 1)", (part.sql)(&source, now_param)));
                counts.push(format!("(SELECT count(*) FROM p{i})"));
            }
            let sql = format!("WITH {} SELECT {}", ctes.join(", "), counts.join(", "));
            let mut query = sqlx::query(&sql);
            for part in &parts {
                query = part.rows.bind(query).bind(now);
            }
            let row = query.fetch_one(&mut **c).await?;
            for (i, part) in parts.iter().enumerate() {
                part.check(row.try_get::<i64, _>(i)? as u64)?;
            }
        }
    }
    Ok(())
}

/// Customers created by the batch, inserted as they end up.
fn customer_parts(dialect: Dialect, book: &Book, per_part: usize) -> Vec<Part> {
    let mut parts = Vec::new();
    for chunk in book.changes.customers_created.chunks(per_part) {
        const TYPES: &[Ty] = &[
            Ty::Text,
            Ty::Text,
            Ty::Json,
            Ty::Int,
            Ty::Int,
            Ty::Int,
            Ty::Int,
            Ty::Text,
        ];
        let mut rows = RowSet::new(dialect, TYPES);
        for (id, profile) in chunk {
            let state = &book.customers[id];
            let a = &state.account;
            rows.push([
                id.as_str().into(),
                profile.email.as_deref().into(),
                Val::Json(profile.metadata.clone()),
                a.balance.micros().into(),
                a.held.micros().into(),
                a.debt.micros().into(),
                state.frozen.micros().into(),
                state.alerts.state.as_str().into(),
            ]);
        }
        parts.push(Part {
            what: "customers created",
            rows,
            // `WHERE true`: SQLite needs it before an upsert clause on an `INSERT … SELECT`.
            sql: |source, now| {
                format!(
                    "INSERT INTO customers (id, email, metadata, balance, held, debt, frozen, balance_alert, version, created_at, updated_at) \
                     SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8, 0, ${now}, ${now} \
                     FROM {source} AS v WHERE true ON CONFLICT (id) DO NOTHING"
                )
            },
            rows_expected: Some(chunk.len()),
            race: true,
        });
    }
    parts
}

/// Inserts the batch's new grants, in the order they were made (their `seq` orders them),
/// with what remains of them at the end of the batch.
async fn insert_grants(conn: &mut Conn<'_>, book: &Book, now: i64) -> Result<HashMap<String, i64>> {
    let dialect = conn.dialect();
    let mut seqs = HashMap::new();
    for chunk in book.changes.grants.chunks(ROWS_PER_STATEMENT) {
        const TYPES: &[Ty] = &[
            Ty::Int,
            Ty::Text,
            Ty::Text,
            Ty::Int,
            Ty::Int,
            Ty::Int,
            Ty::Int,
            Ty::Text,
            Ty::Text,
            Ty::Text,
        ];
        let mut rows = RowSet::new(dialect, TYPES);
        for new in chunk {
            let g = &new.grant;
            rows.push([
                new.seq.into(),
                g.id.as_str().into(),
                g.customer.as_str().into(),
                g.amount.micros().into(),
                remaining(book, &g.customer, &g.id).into(),
                i64::from(g.priority).into(),
                g.expires_at.into(),
                g.source.as_str().into(),
                g.reason.as_deref().into(),
                g.reference.as_deref().into(),
            ]);
        }
        let (source, now_param) = rows.sql(1);
        let sql = format!(
            "INSERT INTO grants (id, customer_id, amount, remaining, priority, expires_at, source, reason, reference, created_at) \
             SELECT v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8, v.column9, v.column10, ${now_param} \
             FROM {source} AS v ORDER BY v.column1 RETURNING id, seq"
        );
        on!(conn, c => {
            for row in rows.bind(sqlx::query(&sql)).bind(now).fetch_all(&mut **c).await? {
                seqs.insert(row.try_get(0)?, row.try_get(1)?);
            }
        });
    }
    if seqs.len() != book.changes.grants.len() {
        return Err(StoreError::Corrupt("a new grant was not stored".into()));
    }
    Ok(seqs)
}

/// What remains of a grant of the batch's customer.
fn remaining(book: &Book, customer: &str, grant: &str) -> i64 {
    book.customers[customer]
        .account
        .lots
        .iter()
        .find(|l| l.grant_id == grant)
        .map_or(0, |l| l.remaining.micros())
}

/// Entries, holds placed and finished.
fn ledger_parts(dialect: Dialect, book: &Book, per_part: usize) -> Vec<Part> {
    let mut parts = Vec::new();
    for chunk in book.changes.entries.chunks(per_part) {
        const TYPES: &[Ty] = &[
            Ty::Text,
            Ty::Text,
            Ty::Text,
            Ty::Text,
            Ty::Int,
            Ty::Int,
            Ty::Text,
            Ty::Text,
            Ty::Json,
        ];
        let mut rows = RowSet::new(dialect, TYPES);
        for e in chunk {
            rows.push([
                e.id.as_str().into(),
                e.customer.as_str().into(),
                e.grant.as_deref().into(),
                e.kind.as_str().into(),
                e.amount.micros().into(),
                e.balance_after.micros().into(),
                e.reference.as_deref().into(),
                e.feature.as_deref().into(),
                Val::Json(e.metadata.clone()),
            ]);
        }
        parts.push(Part {
            what: "entries inserted",
            rows,
            sql: |source, now| {
                format!(
                    "INSERT INTO ledger_entries (id, customer_id, grant_id, kind, amount, balance_after, reference, feature, metadata, created_at) \
                     SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8, v.column9, ${now} \
                     FROM {source} AS v"
                )
            },
            rows_expected: Some(chunk.len()),
            race: false,
        });
    }
    for chunk in book.changes.holds_placed.chunks(per_part) {
        parts.push(Part {
            what: "holds placed",
            rows: hold_rows(dialect, chunk),
            sql: |source, now| {
                format!(
                    "INSERT INTO holds (id, customer_id, amount, status, captured, feature, metadata, expires_at, created_at, updated_at, budget, budget_window) \
                     SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8, v.column9, ${now}, v.column10, v.column11 \
                     FROM {source} AS v"
                )
            },
            rows_expected: Some(chunk.len()),
            race: false,
        });
    }
    for chunk in book.changes.holds_finished.chunks(per_part) {
        parts.push(Part {
            what: "holds finished",
            rows: hold_rows(dialect, chunk),
            sql: |source, now| {
                format!(
                    "UPDATE holds SET status = v.column4, captured = v.column5, feature = v.column6, updated_at = ${now} \
                     FROM {source} AS v WHERE holds.id = v.column1"
                )
            },
            rows_expected: Some(chunk.len()),
            race: false,
        });
    }
    parts
}

fn hold_rows(dialect: Dialect, holds: &[HoldRow]) -> RowSet {
    const TYPES: &[Ty] = &[
        Ty::Text,
        Ty::Text,
        Ty::Int,
        Ty::Text,
        Ty::Int,
        Ty::Text,
        Ty::Json,
        Ty::Int,
        Ty::Int,
        Ty::Text,
        Ty::Int,
    ];
    let mut rows = RowSet::new(dialect, TYPES);
    for h in holds {
        rows.push([
            h.id.as_str().into(),
            h.customer.as_str().into(),
            h.amount.micros().into(),
            h.status.as_str().into(),
            h.captured.map(Credits::micros).into(),
            h.feature.as_deref().into(),
            Val::Json(h.metadata.clone()),
            h.expires_at.into(),
            h.created.into(),
            h.budget.as_ref().map(|(id, _)| id.as_str()).into(),
            h.budget.as_ref().map(|(_, window)| *window).into(),
        ]);
    }
    rows
}

/// Stored grants whose remaining changed, and every locked customer (with its next version).
fn account_parts(dialect: Dialect, book: &Book, locked: &BTreeMap<String, LockedRow>, per_part: usize) -> Vec<Part> {
    let mut parts = Vec::new();
    let new: HashSet<&str> = book.changes.grants.iter().map(|g| g.grant.id.as_str()).collect();
    let changed: Vec<(&str, i64)> = book
        .changes
        .grants_touched
        .iter()
        .filter(|(_, grant)| !new.contains(grant.as_str()))
        .map(|(customer, grant)| (grant.as_str(), remaining(book, customer, grant)))
        .collect();
    for chunk in changed.chunks(per_part) {
        let mut rows = RowSet::new(dialect, &[Ty::Text, Ty::Int]);
        for (id, remaining) in chunk {
            rows.push([(*id).into(), (*remaining).into()]);
        }
        parts.push(Part {
            what: "grants changed",
            rows,
            // `now` is bound to every part; this one has no use for it.
            sql: |source, now| {
                format!(
                    "UPDATE grants SET remaining = v.column2 FROM {source} AS v \
                     WHERE grants.id = v.column1 AND ${now} IS NOT NULL"
                )
            },
            rows_expected: Some(chunk.len()),
            race: false,
        });
    }
    let saved: Vec<(&String, &LockedRow)> = locked.iter().collect();
    for chunk in saved.chunks(per_part) {
        const TYPES: &[Ty] = &[Ty::Text, Ty::Int, Ty::Int, Ty::Int, Ty::Int, Ty::Int, Ty::Text];
        let mut rows = RowSet::new(dialect, TYPES);
        for (id, row) in chunk {
            let state = &book.customers[*id];
            assert!(state.is_consistent(), "a decision broke customer {id}'s invariants");
            let a = &state.account;
            rows.push([
                id.as_str().into(),
                a.balance.micros().into(),
                a.held.micros().into(),
                a.debt.micros().into(),
                state.frozen.micros().into(),
                (row.version + 1).into(),
                state.alerts.state.as_str().into(),
            ]);
        }
        parts.push(Part {
            what: "customers saved",
            rows,
            sql: |source, now| {
                format!(
                    "UPDATE customers SET balance = v.column2, held = v.column3, debt = v.column4, frozen = v.column5, \
                     version = v.column6, balance_alert = v.column7, updated_at = ${now} FROM {source} AS v WHERE customers.id = v.column1"
                )
            },
            rows_expected: Some(chunk.len()),
            race: false,
        });
    }
    parts
}

/// Payments, their freezes, and subscription allowances.
fn billing_parts(dialect: Dialect, book: &Book, per_part: usize) -> Vec<Part> {
    let changes = &book.changes;
    let mut parts = Vec::new();
    let payments: Vec<_> = changes.payments.values().collect();
    for chunk in payments.chunks(per_part) {
        const TYPES: &[Ty] = &[
            Ty::Text,
            Ty::Text,
            Ty::Text,
            Ty::Text,
            Ty::Text,
            Ty::Text,
            Ty::Int,
            Ty::Text,
            Ty::Text,
            Ty::Int,
            Ty::Int,
        ];
        let mut rows = RowSet::new(dialect, TYPES);
        for r in chunk {
            let p = &r.payment;
            rows.push([
                p.id.as_str().into(),
                p.status.as_str().into(),
                p.grant.as_deref().into(),
                p.receipt_url.as_deref().into(),
                p.payment_intent.as_deref().into(),
                p.failure_message.as_deref().into(),
                r.amount_refunded.into(),
                r.dispute_id.as_deref().into(),
                r.dispute_status.as_deref().into(),
                r.clawed_back.micros().into(),
                r.frozen_target.micros().into(),
            ]);
        }
        parts.push(Part {
            what: "payments updated",
            rows,
            sql: |source, now| {
                format!(
                    "UPDATE payments SET status = v.column2, grant_id = v.column3, receipt_url = v.column4, \
                     payment_intent_id = COALESCE(payments.payment_intent_id, v.column5), failure_message = v.column6, \
                     amount_refunded = v.column7, dispute_id = v.column8, dispute_status = v.column9, \
                     credits_clawed_back = v.column10, frozen_target = v.column11, updated_at = ${now} \
                     FROM {source} AS v WHERE payments.id = v.column1"
                )
            },
            rows_expected: Some(chunk.len()),
            race: false,
        });
    }
    let cleared: Vec<&str> = changes.freezes_cleared.iter().map(String::as_str).collect();
    for chunk in cleared.chunks(per_part) {
        parts.push(Part {
            what: "freezes returned",
            rows: id_set(dialect, chunk.iter().copied()),
            sql: |source, now| {
                format!(
                    "DELETE FROM freezes WHERE payment_id IN (SELECT column1 FROM {source} AS v) AND ${now} IS NOT NULL"
                )
            },
            rows_expected: None,
            race: false,
        });
    }
    for chunk in changes.freezes_added.chunks(per_part) {
        let mut rows = RowSet::new(dialect, &[Ty::Text, Ty::Text, Ty::Text, Ty::Int]);
        for f in chunk {
            rows.push([
                f.payment.as_str().into(),
                f.customer.as_str().into(),
                f.lot.grant_id.as_str().into(),
                f.amount.micros().into(),
            ]);
        }
        parts.push(Part {
            what: "freezes made",
            rows,
            sql: |source, now| {
                format!(
                    "INSERT INTO freezes (payment_id, customer_id, grant_id, amount, created_at) \
                     SELECT v.column1, v.column2, v.column3, v.column4, ${now} FROM {source} AS v"
                )
            },
            rows_expected: Some(chunk.len()),
            race: false,
        });
    }
    for chunk in changes.allowances.chunks(per_part) {
        const TYPES: &[Ty] = &[Ty::Text, Ty::Text, Ty::Text, Ty::Text, Ty::Int, Ty::Int, Ty::Int];
        let mut rows = RowSet::new(dialect, TYPES);
        for a in chunk {
            rows.push([
                a.invoice.as_str().into(),
                a.subscription.as_str().into(),
                a.customer.as_str().into(),
                a.grant.as_deref().into(),
                a.credits.micros().into(),
                a.period_start.into(),
                a.period_end.into(),
            ]);
        }
        parts.push(Part {
            what: "allowances granted",
            rows,
            sql: |source, now| {
                format!(
                    "INSERT INTO allowances (invoice_id, subscription_id, customer_id, grant_id, credits, period_start, period_end, created_at) \
                     SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, ${now} FROM {source} AS v"
                )
            },
            rows_expected: Some(chunk.len()),
            race: false,
        });
    }
    parts
}

/// Replaces the provisional `seq`s of the batch's new grants with the stored ones.
pub(crate) fn stored_seqs(book: &mut Book, seqs: &HashMap<String, i64>) {
    for state in book.customers.values_mut() {
        for lot in state.account.lots.iter_mut().filter(|l| l.seq >= PROVISIONAL_SEQ) {
            if let Some(&seq) = seqs.get(&lot.grant_id) {
                lot.seq = seq;
            }
        }
    }
}
