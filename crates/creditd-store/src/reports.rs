//! The operator's figures: revenue by day and currency, the credits books by entry kind,
//! usage by feature, top customers. Each figure is computed here, once, from entry kinds and
//! payment statuses; the dashboard and `/v1/admin/reports` both read these.

use creditd_domain::Credits;
use sqlx::Row;

use crate::{Result, Store};

/// Money that moved on one day (unix day number) in one currency, in minor units.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RevenueDay {
    pub day: i64,
    pub currency: String,
    /// Succeeded payments, counted on the day their credits were granted.
    pub gross: i64,
    /// Refunded money, counted on the day of the purchase it refunds.
    pub refunds: i64,
    /// Money lost in disputes (the disputed payment less what was refunded before),
    /// counted on the day of the purchase.
    pub disputes_lost: i64,
}

impl RevenueDay {
    pub fn net(&self) -> i64 {
        self.gross - self.refunds - self.disputes_lost
    }
}

/// The system-wide credits books, line by line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreditBooks {
    /// Σ `grant` entries.
    pub issued: Credits,
    /// Σ `usage` entries customers caused (positive).
    pub spent: Credits,
    /// Σ admin deductions (`usage` entries of `adj_` adjustments, positive).
    pub deducted: Credits,
    /// Σ `expire` entries (positive).
    pub expired: Credits,
    /// Σ `clawback` entries (positive); zero until refunds and disputes claw credits back.
    pub clawed_back: Credits,
    /// Entry kinds this build does not name, signed as stored, so the books still balance.
    pub other: Vec<(String, Credits)>,
    /// Σ customers' balances: credits issued and not yet used (the liability).
    pub outstanding: Credits,
}

impl CreditBooks {
    /// issued − spent − deducted − expired − clawed back + other = outstanding.
    pub fn computed_outstanding(&self) -> Credits {
        let other: i64 = self.other.iter().map(|(_, c)| c.micros()).sum();
        Credits::from_micros(
            self.issued.micros()
                - self.spent.micros()
                - self.deducted.micros()
                - self.expired.micros()
                - self.clawed_back.micros()
                + other,
        )
    }

    pub fn balances(&self) -> bool {
        self.computed_outstanding() == self.outstanding
    }
}

/// Credits spent on one feature on one day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageDay {
    pub day: i64,
    /// Empty when usage was recorded without a feature (a hold captured without one).
    pub feature: String,
    pub credits: Credits,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopSpender {
    pub customer: String,
    pub currency: String,
    /// Minor units of succeeded payments.
    pub amount: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopUser {
    pub customer: String,
    pub credits: Credits,
}

/// Usage entries customers caused: admin deductions (`adj_…` references) are counted apart.
const CUSTOMER_USAGE: &str = "kind = 'usage' AND (reference IS NULL OR reference NOT LIKE 'adj\\_%' ESCAPE '\\')";

impl Store {
    /// Revenue per day and currency for days in `[from, to)` (unix seconds).
    pub async fn revenue_days(&self, from: i64, to: i64) -> Result<Vec<RevenueDay>> {
        let rows = sqlx::query(
            "SELECT g.created_at / 86400 AS day, p.currency, CAST(SUM(p.amount) AS BIGINT), \
             CAST(SUM(p.amount_refunded) AS BIGINT), \
             CAST(SUM(CASE WHEN p.dispute_status = 'lost' THEN p.amount - p.amount_refunded ELSE 0 END) AS BIGINT) \
             FROM payments p JOIN grants g ON g.id = p.grant_id \
             WHERE p.status = 'succeeded' AND g.created_at >= $1 AND g.created_at < $2 \
             GROUP BY g.created_at / 86400, p.currency ORDER BY 1, 2",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RevenueDay {
                    day: r.try_get(0)?,
                    currency: r.try_get(1)?,
                    gross: r.try_get(2)?,
                    refunds: r.try_get(3)?,
                    disputes_lost: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// The books over all time, from the ledger's entry kinds and the customers' balances.
    pub async fn credit_books(&self) -> Result<CreditBooks> {
        let rows = sqlx::query(&format!(
            "SELECT kind, CASE WHEN {CUSTOMER_USAGE} THEN 0 ELSE 1 END AS adjustment, \
             CAST(SUM(amount) AS BIGINT) FROM ledger_entries \
             GROUP BY kind, CASE WHEN {CUSTOMER_USAGE} THEN 0 ELSE 1 END ORDER BY 1, 2"
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut books = CreditBooks::default();
        for row in &rows {
            let kind: String = row.try_get(0)?;
            let adjustment: i64 = row.try_get(1)?;
            let sum: i64 = row.try_get(2)?;
            let taken = Credits::from_micros(-sum);
            match (kind.as_str(), adjustment) {
                ("grant", _) => books.issued = Credits::from_micros(sum),
                ("usage", 0) => books.spent = taken,
                ("usage", _) => books.deducted = taken,
                ("expire", _) => books.expired = taken,
                ("clawback", _) => books.clawed_back = taken,
                _ => books.other.push((kind, Credits::from_micros(sum))),
            }
        }
        let outstanding = sqlx::query("SELECT CAST(COALESCE(SUM(balance), 0) AS BIGINT) FROM customers")
            .fetch_one(&self.pool)
            .await?;
        books.outstanding = Credits::from_micros(outstanding.try_get(0)?);
        Ok(books)
    }

    /// Credits customers spent per day and feature in `[from, to)`.
    pub async fn usage_days(&self, from: i64, to: i64) -> Result<Vec<UsageDay>> {
        let rows = sqlx::query(&format!(
            "SELECT created_at / 86400 AS day, COALESCE(feature, '') AS feature, CAST(SUM(-amount) AS BIGINT) \
             FROM ledger_entries WHERE {CUSTOMER_USAGE} AND created_at >= $1 AND created_at < $2 \
             GROUP BY created_at / 86400, COALESCE(feature, '') ORDER BY 1, 2"
        ))
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UsageDay {
                    day: r.try_get(0)?,
                    feature: r.try_get(1)?,
                    credits: Credits::from_micros(r.try_get(2)?),
                })
            })
            .collect()
    }

    /// Customers who paid the most (succeeded payments, per currency), all time.
    pub async fn top_spenders(&self, limit: i64) -> Result<Vec<TopSpender>> {
        let rows = sqlx::query(
            "SELECT customer_id, currency, CAST(SUM(amount) AS BIGINT) AS total FROM payments \
             WHERE status = 'succeeded' GROUP BY customer_id, currency \
             ORDER BY CAST(SUM(amount) AS BIGINT) DESC, customer_id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TopSpender {
                    customer: r.try_get(0)?,
                    currency: r.try_get(1)?,
                    amount: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// Customers who spent the most credits, all time.
    pub async fn top_users(&self, limit: i64) -> Result<Vec<TopUser>> {
        let rows = sqlx::query(&format!(
            "SELECT customer_id, CAST(SUM(-amount) AS BIGINT) FROM ledger_entries WHERE {CUSTOMER_USAGE} \
             GROUP BY customer_id ORDER BY CAST(SUM(-amount) AS BIGINT) DESC, customer_id LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TopUser {
                    customer: r.try_get(0)?,
                    credits: Credits::from_micros(r.try_get(1)?),
                })
            })
            .collect()
    }
}

/// Units of priced requests (usage and captures) in a range, by feature and unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitsUsed {
    pub feature: String,
    pub unit: String,
    pub quantity: i64,
    /// Priced requests of the feature that used the unit.
    pub requests: i64,
    /// What the feature's priced requests cost in all (the same on each of its units' lines).
    pub credits: Credits,
}

impl Store {
    /// What priced requests used in `[from, to)`: units by feature and unit, with the credits
    /// each feature's priced requests were charged. Holds' estimates are not counted.
    pub async fn units_used(&self, from: i64, to: i64) -> Result<Vec<UnitsUsed>> {
        let rows = sqlx::query(
            "SELECT feature, unit, CAST(SUM(quantity) AS BIGINT), COUNT(*) FROM usage_units \
             WHERE kind <> 'hold' AND created_at >= $1 AND created_at < $2 GROUP BY feature, unit ORDER BY feature, unit",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        let credits = sqlx::query(
            "SELECT feature, CAST(SUM(amount) AS BIGINT) FROM (SELECT DISTINCT reference, kind, feature, amount \
             FROM usage_units WHERE kind <> 'hold' AND created_at >= $1 AND created_at < $2) AS requests GROUP BY feature",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        let mut by_feature = std::collections::HashMap::new();
        for row in credits {
            by_feature.insert(row.try_get::<String, _>(0)?, row.try_get::<i64, _>(1)?);
        }
        rows.iter()
            .map(|r| {
                let feature: String = r.try_get(0)?;
                Ok(UnitsUsed {
                    credits: Credits::from_micros(by_feature.get(&feature).copied().unwrap_or(0)),
                    feature,
                    unit: r.try_get(1)?,
                    quantity: r.try_get(2)?,
                    requests: r.try_get(3)?,
                })
            })
            .collect()
    }
}
