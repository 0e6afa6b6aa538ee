//! Reads: balances, grants, the ledger, holds. None of them waits for a writer.

use creditd_domain::views::{Customer, Entry, Grant, Hold};
use creditd_domain::Credits;
use sqlx::Row;

use crate::db::{on, Conn, Fields};
use crate::rows::{self, FromFields, ENTRY_COLUMNS, GRANT_COLUMNS, HOLD_COLUMNS};
use crate::{Result, Store};

/// Newest first; `starting_after` is the id of the last item of the previous page.
#[derive(Clone, Debug, Default)]
pub struct PageRequest {
    pub limit: u32,
    pub starting_after: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub has_more: bool,
}

/// Credits spent by usage (and captured holds) in one UTC day on one feature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageBucket {
    /// Unix seconds of the day's 00:00 UTC.
    pub day: i64,
    pub feature: Option<String>,
    /// Positive: what was spent.
    pub credits: Credits,
    /// Distinct usage records and holds that spent it.
    pub requests: i64,
}

pub const SECONDS_PER_DAY: i64 = 86_400;

/// Whether an amount could be spent now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Check {
    pub allowed: bool,
    pub balance: Credits,
    pub available: Credits,
}

/// Balance counts only grants live at `now`, and held only holds open at `now`: a grant
/// that expired a second ago is gone from the balance even before its expire entry is written.
const CUSTOMER_SELECT: &str =
    "SELECT c.id, c.email, c.metadata, c.created_at, c.debt, c.frozen, c.low_balance_threshold, \
    (SELECT CAST(COALESCE(SUM(g.remaining), 0) AS BIGINT) FROM grants g \
       WHERE g.customer_id = c.id AND g.remaining > 0 AND (g.expires_at IS NULL OR g.expires_at > $2)) AS balance, \
    (SELECT CAST(COALESCE(SUM(h.amount), 0) AS BIGINT) FROM holds h \
       WHERE h.customer_id = c.id AND h.status = 'open' AND h.expires_at > $2) AS held \
    FROM customers c WHERE c.id = $1";

fn customer_row(row: &impl Fields) -> Result<Customer> {
    let debt: i64 = row.field("debt")?;
    let balance: i64 = row.field::<i64, _>("balance")? - debt;
    let held: i64 = row.field("held")?;
    Ok(Customer {
        id: row.field("id")?,
        email: row.field("email")?,
        metadata: rows::metadata(row, "metadata")?,
        balance: Credits::from_micros(balance),
        available: Credits::from_micros(balance - held),
        held: Credits::from_micros(held),
        frozen: Credits::from_micros(row.field("frozen")?),
        debt: Credits::from_micros(debt),
        low_balance_threshold: row
            .field::<Option<i64>, _>("low_balance_threshold")?
            .map_or_else(crate::outbox::default_low_balance_threshold, Credits::from_micros),
        subscription: None,
        auto_topup: None,
        created: row.field("created_at")?,
    })
}

/// The customer as of `now`, read inside the caller's transaction.
pub(crate) async fn customer_on(conn: &mut Conn<'_>, id: &str, now: i64) -> Result<Option<Customer>> {
    on!(conn, c => {
        let row = sqlx::query(CUSTOMER_SELECT).bind(id).bind(now).fetch_optional(&mut **c).await?;
        row.as_ref().map(customer_row).transpose()
    })
}

impl Store {
    /// The customer with balances as of `now`.
    pub async fn customer(&self, id: &str, now: i64) -> Result<Option<Customer>> {
        on!(&self.pool, p => {
            let row = sqlx::query(CUSTOMER_SELECT).bind(id).bind(now).fetch_optional(p).await?;
            row.as_ref().map(customer_row).transpose()
        })
    }

    /// Would `amount` be allowed now? Read-only.
    pub async fn check(&self, customer: &str, amount: Credits, now: i64) -> Result<Option<Check>> {
        Ok(self.customer(customer, now).await?.map(|c| Check {
            allowed: amount <= c.available,
            balance: c.balance,
            available: c.available,
        }))
    }

    pub async fn grants(&self, customer: &str, page: &PageRequest) -> Result<Page<Grant>> {
        self.page("grants", GRANT_COLUMNS, customer, page).await
    }

    pub async fn ledger(&self, customer: &str, page: &PageRequest) -> Result<Page<Entry>> {
        self.page("ledger_entries", ENTRY_COLUMNS, customer, page).await
    }

    /// A customer's spending in `[from, to)` by UTC day and feature, oldest day first, features
    /// by name (none first).
    pub async fn usage_by_day(&self, customer: &str, from: i64, to: i64) -> Result<Vec<UsageBucket>> {
        // Integer division is floor division for the non-negative times stored here, on both backends.
        let rows = on!(&self.pool, p => sqlx::query(
            "SELECT created_at / 86400 AS day, feature, CAST(-SUM(amount) AS BIGINT) AS spent, \
             COUNT(DISTINCT reference) AS requests FROM ledger_entries \
             WHERE customer_id = $1 AND kind = 'usage' AND created_at >= $2 AND created_at < $3 \
             GROUP BY created_at / 86400, feature",
        )
        .bind(customer)
        .bind(from)
        .bind(to)
        .fetch_all(p)
        .await?
        .iter()
        .map(|row| {
            Ok(UsageBucket {
                day: row.try_get::<i64, _>("day")? * SECONDS_PER_DAY,
                feature: row.try_get("feature")?,
                credits: Credits::from_micros(row.try_get("spent")?),
                requests: row.try_get("requests")?,
            })
        })
        .collect::<Result<Vec<_>>>());
        let mut buckets = rows?;
        // NULLs sort differently on the two backends: order here.
        buckets.sort_by(|a, b| (a.day, &a.feature).cmp(&(b.day, &b.feature)));
        Ok(buckets)
    }

    async fn page<T: FromFields>(
        &self,
        table: &str,
        columns: &str,
        customer: &str,
        page: &PageRequest,
    ) -> Result<Page<T>> {
        let limit = i64::from(page.limit.clamp(1, 100));
        // `starting_after` that names nothing of this customer's yields an empty page.
        let sql = format!(
            "SELECT {columns} FROM {table} WHERE customer_id = $1 \
             AND ($2 = '' OR seq < (SELECT seq FROM {table} WHERE id = $2 AND customer_id = $1)) \
             ORDER BY seq DESC LIMIT $3"
        );
        on!(&self.pool, p => {
            let rows = sqlx::query(&sql)
                .bind(customer)
                .bind(page.starting_after.as_deref().unwrap_or(""))
                .bind(limit + 1)
                .fetch_all(p)
                .await?;
            let has_more = rows.len() as i64 > limit;
            let data = rows.iter().take(limit as usize).map(T::from_fields).collect::<Result<Vec<T>>>()?;
            Ok(Page { data, has_more })
        })
    }

    /// A hold with the customer's balances as of `now`.
    pub async fn hold(&self, id: &str, now: i64) -> Result<Option<Hold>> {
        let sql = format!("SELECT {HOLD_COLUMNS} FROM holds WHERE id = $1");
        let hold = on!(&self.pool, p => sqlx::query(&sql).bind(id).fetch_optional(p).await?.as_ref().map(rows::hold));
        let Some(mut hold) = hold.transpose()? else {
            return Ok(None);
        };
        if hold.status == creditd_domain::views::HoldStatus::Open && hold.expires_at <= now {
            hold.status = creditd_domain::views::HoldStatus::Expired;
        }
        if let Some(customer) = self.customer(&hold.customer, now).await? {
            hold.balance = customer.balance;
            hold.available = customer.available;
        }
        Ok(Some(hold))
    }
}
