//! The operator's figures: revenue by day and currency, the credits books by entry kind,
//! usage by feature, top customers. Each figure is computed here, once, from entry kinds and
//! payment statuses; the dashboard and `/v1/admin/reports` both read these.

use creditd_domain::Credits;

use crate::db::on;
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
        let rows: Vec<(i64, String, i64, i64, i64)> = on!(&self.pool, p => sqlx::query_as(
            "SELECT g.created_at / 86400 AS day, p.currency, CAST(SUM(p.amount) AS BIGINT), \
             CAST(SUM(p.amount_refunded) AS BIGINT), \
             CAST(SUM(CASE WHEN p.dispute_status = 'lost' THEN p.amount - p.amount_refunded ELSE 0 END) AS BIGINT) \
             FROM payments p JOIN grants g ON g.id = p.grant_id \
             WHERE p.status = 'succeeded' AND g.created_at >= $1 AND g.created_at < $2 \
             GROUP BY g.created_at / 86400, p.currency ORDER BY 1, 2",
        )
        .bind(from)
        .bind(to)
        .fetch_all(p)
        .await?);
        Ok(rows
            .into_iter()
            .map(|(day, currency, gross, refunds, disputes_lost)| RevenueDay {
                day,
                currency,
                gross,
                refunds,
                disputes_lost,
            })
            .collect())
    }

    /// The books over all time, from the ledger's entry kinds and the customers' balances.
    pub async fn credit_books(&self) -> Result<CreditBooks> {
        // `customer_usage` is a boolean on PostgreSQL and 0/1 on SQLite: both decode as `bool`.
        let sql = format!(
            "SELECT kind, {CUSTOMER_USAGE} AS customer_usage, CAST(SUM(amount) AS BIGINT) FROM ledger_entries \
             GROUP BY 1, 2 ORDER BY 1, 2"
        );
        let rows: Vec<(String, bool, i64)> = on!(&self.pool, p => sqlx::query_as(&sql).fetch_all(p).await?);
        let mut books = CreditBooks::default();
        for (kind, customer_usage, sum) in rows {
            let taken = Credits::from_micros(-sum);
            match (kind.as_str(), customer_usage) {
                ("grant", _) => books.issued = Credits::from_micros(sum),
                ("usage", true) => books.spent = taken,
                ("usage", false) => books.deducted = taken,
                ("expire", _) => books.expired = taken,
                ("clawback", _) => books.clawed_back = taken,
                _ => books.other.push((kind, Credits::from_micros(sum))),
            }
        }
        let (outstanding,): (i64,) = on!(&self.pool, p => sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(balance), 0) AS BIGINT) FROM customers",
        )
        .fetch_one(p)
        .await?);
        books.outstanding = Credits::from_micros(outstanding);
        Ok(books)
    }

    /// Credits customers spent per day and feature in `[from, to)`.
    pub async fn usage_days(&self, from: i64, to: i64) -> Result<Vec<UsageDay>> {
        let sql = format!(
            "SELECT created_at / 86400 AS day, COALESCE(feature, '') AS feature, CAST(SUM(-amount) AS BIGINT) \
             FROM ledger_entries WHERE {CUSTOMER_USAGE} AND created_at >= $1 AND created_at < $2 \
             GROUP BY created_at / 86400, COALESCE(feature, '') ORDER BY 1, 2"
        );
        let rows: Vec<(i64, String, i64)> =
            on!(&self.pool, p => sqlx::query_as(&sql).bind(from).bind(to).fetch_all(p).await?);
        Ok(rows
            .into_iter()
            .map(|(day, feature, credits)| UsageDay {
                day,
                feature,
                credits: Credits::from_micros(credits),
            })
            .collect())
    }

    /// Customers who paid the most (succeeded payments, per currency), all time.
    pub async fn top_spenders(&self, limit: i64) -> Result<Vec<TopSpender>> {
        let rows: Vec<(String, String, i64)> = on!(&self.pool, p => sqlx::query_as(
            "SELECT customer_id, currency, CAST(SUM(amount) AS BIGINT) AS total FROM payments \
             WHERE status = 'succeeded' GROUP BY customer_id, currency \
             ORDER BY CAST(SUM(amount) AS BIGINT) DESC, customer_id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(p)
        .await?);
        Ok(rows
            .into_iter()
            .map(|(customer, currency, amount)| TopSpender {
                customer,
                currency,
                amount,
            })
            .collect())
    }

    /// Customers who spent the most credits, all time.
    pub async fn top_users(&self, limit: i64) -> Result<Vec<TopUser>> {
        let sql = format!(
            "SELECT customer_id, CAST(SUM(-amount) AS BIGINT) FROM ledger_entries WHERE {CUSTOMER_USAGE} \
             GROUP BY customer_id ORDER BY CAST(SUM(-amount) AS BIGINT) DESC, customer_id LIMIT $1"
        );
        let rows: Vec<(String, i64)> = on!(&self.pool, p => sqlx::query_as(&sql).bind(limit).fetch_all(p).await?);
        Ok(rows
            .into_iter()
            .map(|(customer, credits)| TopUser {
                customer,
                credits: Credits::from_micros(credits),
            })
            .collect())
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
        // (feature, unit, quantity, requests) and (feature, credits).
        type Units = Vec<(String, String, i64, i64)>;
        type Credited = Vec<(String, i64)>;
        let (rows, credits): (Units, Credited) = on!(&self.pool, p => {
            let rows = sqlx::query_as(
                "SELECT feature, unit, CAST(SUM(quantity) AS BIGINT), COUNT(*) FROM usage_units \
                 WHERE kind <> 'hold' AND created_at >= $1 AND created_at < $2 \
                 GROUP BY feature, unit ORDER BY feature, unit",
            )
            .bind(from)
            .bind(to)
            .fetch_all(p)
            .await?;
            let credits = sqlx::query_as(
                "SELECT feature, CAST(SUM(amount) AS BIGINT) FROM \
                 (SELECT DISTINCT reference, kind, feature, amount FROM usage_units \
                 WHERE kind <> 'hold' AND created_at >= $1 AND created_at < $2) AS requests GROUP BY feature",
            )
            .bind(from)
            .bind(to)
            .fetch_all(p)
            .await?;
            (rows, credits)
        });
        let by_feature: std::collections::HashMap<String, i64> = credits.into_iter().collect();
        Ok(rows
            .into_iter()
            .map(|(feature, unit, quantity, requests)| UnitsUsed {
                credits: Credits::from_micros(by_feature.get(&feature).copied().unwrap_or(0)),
                feature,
                unit,
                quantity,
                requests,
            })
            .collect())
    }
}
