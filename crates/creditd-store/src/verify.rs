//! `creditd verify`: the ledger's invariants, checked over the whole database.
//!
//! Per customer: balance = Σ grants' remaining = Σ ledger entries, held = Σ open holds, and
//! every entry's balance_after follows from the one before. Per grant: remaining = Σ its
//! entries. System-wide: issued − spent − expired = outstanding.

use creditd_domain::Credits;
use sqlx::Row;

use crate::{Result, Store};

/// The system-wide books.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Books {
    pub issued: Credits,
    pub spent: Credits,
    pub expired: Credits,
    pub outstanding: Credits,
}

impl Books {
    pub fn balance(&self) -> bool {
        self.issued.micros() - self.spent.micros() - self.expired.micros() == self.outstanding.micros()
    }
}

#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    pub customers: u64,
    pub grants: u64,
    pub entries: u64,
    pub books: Books,
    /// One line per violation, naming the customer, grant or entry.
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty() && self.books.balance()
    }
}

fn sum(kind: &str) -> String {
    format!("(SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM ledger_entries WHERE kind = '{kind}')")
}

impl Store {
    pub async fn verify(&self) -> Result<VerifyReport> {
        let mut report = VerifyReport::default();
        let customers = sqlx::query(
            "SELECT c.id, c.balance, c.held, \
             (SELECT CAST(COALESCE(SUM(e.amount), 0) AS BIGINT) FROM ledger_entries e WHERE e.customer_id = c.id), \
             (SELECT CAST(COALESCE(SUM(g.remaining), 0) AS BIGINT) FROM grants g WHERE g.customer_id = c.id), \
             (SELECT CAST(COALESCE(SUM(h.amount), 0) AS BIGINT) FROM holds h WHERE h.customer_id = c.id AND h.status = 'open') \
             FROM customers c ORDER BY c.id",
        )
        .fetch_all(&self.pool)
        .await?;
        for row in &customers {
            let id: String = row.try_get(0)?;
            let (balance, held, entries, grants, holds): (i64, i64, i64, i64, i64) = (
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
                row.try_get(4)?,
                row.try_get(5)?,
            );
            if balance != entries || balance != grants {
                report.problems.push(format!(
                    "customer {id}: balance {} but ledger sums to {} and grants hold {}",
                    Credits::from_micros(balance),
                    Credits::from_micros(entries),
                    Credits::from_micros(grants)
                ));
            }
            if held != holds {
                report.problems.push(format!(
                    "customer {id}: held {} but open holds sum to {}",
                    Credits::from_micros(held),
                    Credits::from_micros(holds)
                ));
            }
        }
        report.customers = customers.len() as u64;
        let grants = sqlx::query(
            "SELECT g.id, g.customer_id, g.remaining, \
             (SELECT CAST(COALESCE(SUM(e.amount), 0) AS BIGINT) FROM ledger_entries e WHERE e.grant_id = g.id) AS moved \
             FROM grants g",
        )
        .fetch_all(&self.pool)
        .await?;
        for row in &grants {
            let (id, customer, remaining, moved): (String, String, i64, i64) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?);
            if remaining != moved {
                report.problems.push(format!(
                    "customer {customer}: grant {id} has {} remaining but its entries sum to {}",
                    Credits::from_micros(remaining),
                    Credits::from_micros(moved)
                ));
            }
        }
        report.grants = grants.len() as u64;
        let broken_chain = sqlx::query(
            "SELECT id, customer_id FROM (SELECT id, customer_id, amount, balance_after, \
             LAG(balance_after, 1, 0) OVER (PARTITION BY customer_id ORDER BY seq) AS before FROM ledger_entries) t \
             WHERE before + amount <> balance_after",
        )
        .fetch_all(&self.pool)
        .await?;
        for row in &broken_chain {
            let (id, customer): (String, String) = (row.try_get(0)?, row.try_get(1)?);
            report.problems.push(format!(
                "customer {customer}: entry {id}'s balance_after does not follow the entry before"
            ));
        }
        let totals = sqlx::query(&format!(
            "SELECT {}, {}, {}, (SELECT CAST(COALESCE(SUM(balance), 0) AS BIGINT) FROM customers), \
             (SELECT COUNT(*) FROM ledger_entries)",
            sum("grant"),
            sum("usage"),
            sum("expire")
        ))
        .fetch_one(&self.pool)
        .await?;
        report.books = Books {
            issued: Credits::from_micros(totals.try_get(0)?),
            spent: Credits::from_micros(-totals.try_get::<i64, _>(1)?),
            expired: Credits::from_micros(-totals.try_get::<i64, _>(2)?),
            outstanding: Credits::from_micros(totals.try_get(3)?),
        };
        report.entries = totals.try_get::<i64, _>(4)? as u64;
        if !report.books.balance() {
            report.problems.push(format!(
                "books: issued {} − spent {} − expired {} ≠ outstanding {}",
                report.books.issued, report.books.spent, report.books.expired, report.books.outstanding
            ));
        }
        Ok(report)
    }
}
