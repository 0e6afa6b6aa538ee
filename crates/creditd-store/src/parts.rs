//! A batch's writes as multi-row [`Part`]s: each its own statement on SQLite, all of them
//! one statement of data-modifying CTEs on PostgreSQL.

use sqlx::{AnyConnection, Row};

use crate::rowset::{RowSet, Ty};
use crate::{Dialect, Result, StoreError};

/// One multi-row write of a segment's flush.
pub(crate) struct Part {
    pub(crate) what: &'static str,
    pub(crate) rows: RowSet,
    /// The statement over the rows' derived table, with the number of the `now` parameter.
    pub(crate) sql: fn(&str, usize) -> String,
    /// Every row names an existing (locked) row or a new one: anything else is damage…
    pub(crate) rows_expected: usize,
    /// …except for idempotency keys, where it means another writer stored one first.
    pub(crate) race: bool,
    /// Fewer rows are fine (an insert that may find its row already there).
    pub(crate) at_most: bool,
}

impl Part {
    fn check(&self, touched: u64) -> Result<()> {
        if self.at_most && touched <= self.rows_expected as u64 {
            return Ok(());
        }
        if touched != self.rows_expected as u64 && self.race {
            return Err(StoreError::KeyRace);
        }
        if touched != self.rows_expected as u64 {
            return Err(StoreError::Corrupt(format!(
                "{} {} expected but {touched} written",
                self.rows_expected, self.what
            )));
        }
        Ok(())
    }
}

/// Runs writes: on SQLite each part as its own statement (in process: no round trips to
/// save); on PostgreSQL all parts as one statement of data-modifying CTEs — one round trip.
pub(crate) async fn run_parts(conn: &mut AnyConnection, dialect: Dialect, parts: Vec<Part>, now: i64) -> Result<()> {
    if parts.is_empty() {
        return Ok(());
    }
    match dialect {
        Dialect::Sqlite => {
            for part in &parts {
                let (source, now_param) = part.rows.sql(1);
                let sql = (part.sql)(&source, now_param);
                let touched = part.rows.bind(sqlx::query(&sql)).bind(now).execute(&mut *conn).await?;
                part.check(touched.rows_affected())?;
            }
        }
        Dialect::Postgres => {
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
            let row = query.fetch_one(&mut *conn).await?;
            for (i, part) in parts.iter().enumerate() {
                part.check(row.try_get::<i64, _>(i)? as u64)?;
            }
        }
    }
    Ok(())
}

/// The ids as a one-column [`RowSet`], for `IN (SELECT column1 FROM … AS v)`.
pub(crate) fn id_set<'a>(dialect: Dialect, ids: impl IntoIterator<Item = &'a str>) -> RowSet {
    let mut rows = RowSet::new(dialect, &[Ty::Text]);
    for id in ids {
        rows.push([id.into()]);
    }
    rows
}

