//! Database rows to domain views: one place that knows the column lists.

use creditd_domain::views::{Entry, Grant, Hold, HoldStatus};
use creditd_domain::{Credits, EntryKind, GrantSource};
use sqlx::types::Json;

use crate::db::Fields;

use crate::{Result, StoreError};

pub const GRANT_COLUMNS: &str =
    "id, customer_id, amount, remaining, priority, expires_at, source, reason, reference, created_at";
pub const ENTRY_COLUMNS: &str =
    "id, customer_id, grant_id, kind, amount, balance_after, reference, feature, metadata, created_at";
pub const HOLD_COLUMNS: &str = "id, customer_id, amount, status, captured, feature, expires_at, created_at, budget";

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("unknown {what} {value:?} in the database"))
}

/// A `metadata` column: `jsonb` on PostgreSQL, JSON text on SQLite.
pub fn metadata(row: &impl Fields, column: &str) -> Result<serde_json::Value> {
    Ok(row.field::<Json<serde_json::Value>, _>(column)?.0)
}

pub fn grant(row: &impl Fields) -> Result<Grant> {
    let source: String = row.field("source")?;
    Ok(Grant {
        id: row.field("id")?,
        customer: row.field("customer_id")?,
        amount: Credits::from_micros(row.field("amount")?),
        remaining: Credits::from_micros(row.field("remaining")?),
        priority: row.field::<i64, _>("priority")? as i32,
        expires_at: row.field("expires_at")?,
        source: GrantSource::parse(&source).ok_or_else(|| corrupt("grant source", &source))?,
        reason: row.field("reason")?,
        reference: row.field("reference")?,
        created: row.field("created_at")?,
    })
}

pub fn entry(row: &impl Fields) -> Result<Entry> {
    let kind: String = row.field("kind")?;
    Ok(Entry {
        id: row.field("id")?,
        customer: row.field("customer_id")?,
        grant: row.field::<Option<String>, _>("grant_id")?,
        kind: EntryKind::parse(&kind).ok_or_else(|| corrupt("entry kind", &kind))?,
        amount: Credits::from_micros(row.field("amount")?),
        balance_after: Credits::from_micros(row.field("balance_after")?),
        reference: row.field("reference")?,
        feature: row.field("feature")?,
        metadata: metadata(row, "metadata")?,
        created: row.field("created_at")?,
    })
}

/// A hold row; balance, available and entries are filled by the caller.
pub fn hold(row: &impl Fields) -> Result<Hold> {
    let status: String = row.field("status")?;
    Ok(Hold {
        id: row.field("id")?,
        customer: row.field("customer_id")?,
        amount: Credits::from_micros(row.field("amount")?),
        status: HoldStatus::parse(&status).ok_or_else(|| corrupt("hold status", &status))?,
        captured: row.field::<Option<i64>, _>("captured")?.map(Credits::from_micros),
        feature: row.field("feature")?,
        expires_at: row.field("expires_at")?,
        created: row.field("created_at")?,
        balance: Credits::ZERO,
        available: Credits::ZERO,
        entries: Vec::new(),
        budget: row.field("budget")?,
        priced: None,
    })
}

/// A view read the same way from either backend's row.
pub trait FromFields: Sized {
    fn from_fields(row: &impl Fields) -> Result<Self>;
}

impl FromFields for Grant {
    fn from_fields(row: &impl Fields) -> Result<Grant> {
        grant(row)
    }
}

impl FromFields for Entry {
    fn from_fields(row: &impl Fields) -> Result<Entry> {
        entry(row)
    }
}

impl FromFields for Hold {
    fn from_fields(row: &impl Fields) -> Result<Hold> {
        hold(row)
    }
}
