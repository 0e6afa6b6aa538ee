//! Database rows to domain views: one place that knows the column lists.

use creditd_domain::views::{Entry, Grant, Hold, HoldStatus};
use creditd_domain::{Credits, EntryKind, GrantSource};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Result, StoreError};

pub const GRANT_COLUMNS: &str =
    "id, customer_id, amount, remaining, priority, expires_at, source, reason, reference, created_at";
pub const ENTRY_COLUMNS: &str =
    "id, customer_id, grant_id, kind, amount, balance_after, reference, feature, metadata, created_at";
pub const HOLD_COLUMNS: &str = "id, customer_id, amount, status, captured, feature, expires_at, created_at, budget";

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("unknown {what} {value:?} in the database"))
}

pub fn metadata(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::json!({}))
}

pub fn grant(row: &AnyRow) -> Result<Grant> {
    let source: String = row.try_get("source")?;
    Ok(Grant {
        id: row.try_get("id")?,
        customer: row.try_get("customer_id")?,
        amount: Credits::from_micros(row.try_get("amount")?),
        remaining: Credits::from_micros(row.try_get("remaining")?),
        priority: row.try_get::<i64, _>("priority")? as i32,
        expires_at: row.try_get("expires_at")?,
        source: GrantSource::parse(&source).ok_or_else(|| corrupt("grant source", &source))?,
        reason: row.try_get("reason")?,
        reference: row.try_get("reference")?,
        created: row.try_get("created_at")?,
    })
}

pub fn entry(row: &AnyRow) -> Result<Entry> {
    let kind: String = row.try_get("kind")?;
    Ok(Entry {
        id: row.try_get("id")?,
        customer: row.try_get("customer_id")?,
        grant: row.try_get::<Option<String>, _>("grant_id")?,
        kind: EntryKind::parse(&kind).ok_or_else(|| corrupt("entry kind", &kind))?,
        amount: Credits::from_micros(row.try_get("amount")?),
        balance_after: Credits::from_micros(row.try_get("balance_after")?),
        reference: row.try_get("reference")?,
        feature: row.try_get("feature")?,
        metadata: metadata(&row.try_get::<String, _>("metadata")?),
        created: row.try_get("created_at")?,
    })
}

/// A hold row; balance, available and entries are filled by the caller.
pub fn hold(row: &AnyRow) -> Result<Hold> {
    let status: String = row.try_get("status")?;
    Ok(Hold {
        id: row.try_get("id")?,
        customer: row.try_get("customer_id")?,
        amount: Credits::from_micros(row.try_get("amount")?),
        status: HoldStatus::parse(&status).ok_or_else(|| corrupt("hold status", &status))?,
        captured: row.try_get::<Option<i64>, _>("captured")?.map(Credits::from_micros),
        feature: row.try_get("feature")?,
        expires_at: row.try_get("expires_at")?,
        created: row.try_get("created_at")?,
        balance: Credits::ZERO,
        available: Credits::ZERO,
        entries: Vec::new(),
        budget: row.try_get("budget")?,
        priced: None,
    })
}
