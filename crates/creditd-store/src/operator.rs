//! Reads for the operator's dashboard: customer search, holds, Stripe events with their
//! payloads, and keyset-paginated exports (callers stream page after page).

use creditd_domain::views::{Customer, Entry, Hold, Payment};
use sqlx::Row;

use crate::db::on;
use crate::reconcile::{event_row, StoredEvent, EVENT_COLUMNS};
use crate::rows::{self, ENTRY_COLUMNS, HOLD_COLUMNS};
use crate::{Result, Store};

/// `%` and `_` match themselves in a search.
fn like_pattern(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{}%", escaped.to_lowercase())
}

impl Store {
    /// Customers whose id is `query`, or whose id or email contains it (case-insensitive);
    /// the newest customers when `query` is empty.
    pub async fn search_customers(&self, query: &str, limit: i64, now: i64) -> Result<Vec<Customer>> {
        let ids: Vec<String> = on!(&self.pool, p => sqlx::query(
            "SELECT id FROM customers WHERE $1 = '' OR id = $1 \
             OR LOWER(id) LIKE $2 ESCAPE '\\' OR LOWER(COALESCE(email, '')) LIKE $2 ESCAPE '\\' \
             ORDER BY CASE WHEN id = $1 THEN 0 ELSE 1 END, created_at DESC, id LIMIT $3",
        )
        .bind(query)
        .bind(like_pattern(query))
        .bind(limit)
        .fetch_all(p)
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<sqlx::Result<_>>()?);
        let mut found = Vec::with_capacity(ids.len());
        for id in &ids {
            if let Some(customer) = self.customer(id, now).await? {
                found.push(customer);
            }
        }
        Ok(found)
    }

    /// A customer's holds, newest first.
    pub async fn holds_of(&self, customer: &str, limit: i64) -> Result<Vec<Hold>> {
        let sql = format!("SELECT {HOLD_COLUMNS} FROM holds WHERE customer_id = $1 ORDER BY seq DESC LIMIT $2");
        on!(&self.pool, p => sqlx::query(&sql)
            .bind(customer)
            .bind(limit)
            .fetch_all(p)
            .await?
            .iter()
            .map(rows::hold)
            .collect())
    }

    /// Recent Stripe events: failed ones first, then newest first.
    pub async fn stripe_events_failed_first(&self, limit: i64) -> Result<Vec<StoredEvent>> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM stripe_events \
             ORDER BY CASE WHEN status = 'failed' THEN 0 ELSE 1 END, received_at DESC, id LIMIT $1"
        );
        on!(&self.pool, p => sqlx::query(&sql)
            .bind(limit)
            .fetch_all(p)
            .await?
            .iter()
            .map(event_row)
            .collect())
    }

    /// Counts one more attempt (a retry from the dashboard).
    pub async fn count_stripe_event_attempt(&self, id: &str) -> Result<()> {
        on!(&self.writer, w => {
            sqlx::query("UPDATE stripe_events SET attempts = attempts + 1 WHERE id = $1")
                .bind(id)
                .execute(w)
                .await?;
        });
        Ok(())
    }

    /// Ledger entries created in `[from, to)`, oldest first, after sequence `after`; only
    /// `usage` entries when `usage_only`. Returns each entry with its sequence number.
    pub async fn export_entries(
        &self,
        from: i64,
        to: i64,
        after: i64,
        limit: i64,
        usage_only: bool,
    ) -> Result<Vec<(i64, Entry)>> {
        let sql = format!(
            "SELECT seq, {ENTRY_COLUMNS} FROM ledger_entries WHERE created_at >= $1 AND created_at < $2 \
             AND seq > $3 AND (NOT $5 OR kind = 'usage') ORDER BY seq LIMIT $4"
        );
        on!(&self.pool, p => sqlx::query(&sql)
            .bind(from)
            .bind(to)
            .bind(after)
            .bind(limit)
            .bind(usage_only)
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| Ok((r.try_get::<i64, _>("seq")?, rows::entry(r)?)))
            .collect())
    }

    /// Payments created in `[from, to)`, oldest first, after sequence `after`.
    pub async fn export_payments(&self, from: i64, to: i64, after: i64, limit: i64) -> Result<Vec<(i64, Payment)>> {
        let ids: Vec<(i64, String)> = on!(&self.pool, p => sqlx::query_as(
            "SELECT seq, id FROM payments WHERE created_at >= $1 AND created_at < $2 AND seq > $3 \
             ORDER BY seq LIMIT $4",
        )
        .bind(from)
        .bind(to)
        .bind(after)
        .bind(limit)
        .fetch_all(p)
        .await?);
        let mut out = Vec::with_capacity(ids.len());
        for (seq, id) in ids {
            if let Some(payment) = self.payment(&id).await? {
                out.push((seq, payment));
            }
        }
        Ok(out)
    }
}
