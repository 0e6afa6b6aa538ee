//! `creditd verify`: the ledger's invariants, checked over the whole database.
//!
//! Per customer: balance = Σ grants' remaining − debt = Σ ledger entries; debt = what the
//! grant-less entries took; held = Σ open holds; frozen = Σ its freezes; every entry's
//! balance_after follows from the one before. Per grant: remaining = Σ its entries.
//! System-wide: issued − spent − expired − clawed back − frozen = outstanding.

use creditd_domain::Credits;
use sqlx::Row;

use crate::db::on;
use crate::{Result, Store};

/// The system-wide books.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Books {
    pub issued: Credits,
    pub spent: Credits,
    pub expired: Credits,
    /// Taken back by refunds and lost disputes (debt included).
    pub clawed_back: Credits,
    /// Held back by open disputes.
    pub frozen: Credits,
    /// Σ balances: what customers hold (less what they owe).
    pub outstanding: Credits,
}

impl Books {
    pub fn balance(&self) -> bool {
        self.issued.micros()
            - self.spent.micros()
            - self.expired.micros()
            - self.clawed_back.micros()
            - self.frozen.micros()
            == self.outstanding.micros()
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

fn sum_where(condition: &str) -> String {
    format!("(SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM ledger_entries WHERE {condition})")
}

fn c(micros: i64) -> Credits {
    Credits::from_micros(micros)
}

impl Store {
    pub async fn verify(&self) -> Result<VerifyReport> {
        let mut report = VerifyReport::default();
        self.verify_customers(&mut report).await?;
        self.verify_grants(&mut report).await?;
        let broken_chain: Vec<(String, String)> = on!(&self.pool, p => sqlx::query_as(
            "SELECT id, customer_id FROM (SELECT id, customer_id, amount, balance_after, \
             LAG(balance_after, 1, 0) OVER (PARTITION BY customer_id ORDER BY seq) AS before FROM ledger_entries) t \
             WHERE before + amount <> balance_after",
        )
        .fetch_all(p)
        .await?);
        for (id, customer) in broken_chain {
            report.problems.push(format!(
                "customer {customer}: entry {id}'s balance_after does not follow the entry before"
            ));
        }
        let sql = format!(
            "SELECT {}, {}, {}, {}, {}, {}, (SELECT CAST(COALESCE(SUM(balance), 0) AS BIGINT) FROM customers), \
             (SELECT COUNT(*) FROM ledger_entries)",
            sum_where("kind = 'grant'"),
            sum_where("kind = 'usage'"),
            sum_where("kind = 'expire'"),
            sum_where("kind = 'clawback'"),
            sum_where("kind IN ('freeze', 'unfreeze')"),
            sum_where("kind = 'debt_payment'"),
        );
        let totals: Vec<i64> = on!(&self.pool, p => {
            let row = sqlx::query(&sql).fetch_one(p).await?;
            (0..8).map(|i| row.try_get::<i64, _>(i)).collect::<sqlx::Result<_>>()?
        });
        report.books = Books {
            issued: c(totals[0]),
            spent: c(-totals[1]),
            expired: c(-totals[2]),
            clawed_back: c(-totals[3]),
            frozen: c(-totals[4]),
            outstanding: c(totals[6]),
        };
        let debt_payments = totals[5];
        if debt_payments != 0 {
            report.problems.push(format!(
                "books: debt payments do not net to zero ({})",
                c(debt_payments)
            ));
        }
        report.entries = totals[7] as u64;
        if !report.books.balance() {
            let b = report.books;
            report.problems.push(format!(
                "books: issued {} − spent {} − expired {} − clawed back {} − frozen {} ≠ outstanding {}",
                b.issued, b.spent, b.expired, b.clawed_back, b.frozen, b.outstanding
            ));
        }
        Ok(report)
    }

    async fn verify_customers(&self, report: &mut VerifyReport) -> Result<()> {
        type Sums = (String, i64, i64, i64, i64, i64, i64, i64, i64, i64);
        let customers: Vec<Sums> = on!(&self.pool, p => sqlx::query_as(
            "SELECT c.id, c.balance, c.held, c.debt, c.frozen, \
             (SELECT CAST(COALESCE(SUM(e.amount), 0) AS BIGINT) FROM ledger_entries e WHERE e.customer_id = c.id), \
             (SELECT CAST(COALESCE(SUM(g.remaining), 0) AS BIGINT) FROM grants g WHERE g.customer_id = c.id), \
             (SELECT CAST(COALESCE(SUM(h.amount), 0) AS BIGINT) FROM holds h WHERE h.customer_id = c.id AND h.status = 'open'), \
             (SELECT CAST(COALESCE(SUM(e.amount), 0) AS BIGINT) FROM ledger_entries e WHERE e.customer_id = c.id AND e.grant_id IS NULL), \
             (SELECT CAST(COALESCE(SUM(f.amount), 0) AS BIGINT) FROM freezes f WHERE f.customer_id = c.id) \
             FROM customers c ORDER BY c.id",
        )
        .fetch_all(p)
        .await?);
        report.customers = customers.len() as u64;
        for (id, balance, held, debt, frozen, entries, grants, holds, debt_entries, freezes) in customers {
            if balance != entries || balance != grants - debt {
                report.problems.push(format!(
                    "customer {id}: balance {} but ledger sums to {} and grants hold {} less debt {}",
                    c(balance),
                    c(entries),
                    c(grants),
                    c(debt)
                ));
            }
            if debt != -debt_entries {
                report.problems.push(format!(
                    "customer {id}: debt {} but debt entries sum to {}",
                    c(debt),
                    c(-debt_entries)
                ));
            }
            if held != holds {
                report.problems.push(format!(
                    "customer {id}: held {} but open holds sum to {}",
                    c(held),
                    c(holds)
                ));
            }
            if frozen != freezes {
                report.problems.push(format!(
                    "customer {id}: frozen {} but its freezes sum to {}",
                    c(frozen),
                    c(freezes)
                ));
            }
        }
        Ok(())
    }

    async fn verify_grants(&self, report: &mut VerifyReport) -> Result<()> {
        // (id, customer, remaining, Σ its entries)
        type Moved = (String, String, i64, i64);
        let grants: Vec<Moved> = on!(&self.pool, p => sqlx::query_as(
            "SELECT g.id, g.customer_id, g.remaining, \
             (SELECT CAST(COALESCE(SUM(e.amount), 0) AS BIGINT) FROM ledger_entries e WHERE e.grant_id = g.id) AS moved \
             FROM grants g",
        )
        .fetch_all(p)
        .await?);
        report.grants = grants.len() as u64;
        for (id, customer, remaining, moved) in grants {
            if remaining != moved {
                report.problems.push(format!(
                    "customer {customer}: grant {id} has {} remaining but its entries sum to {}",
                    c(remaining),
                    c(moved)
                ));
            }
        }
        Ok(())
    }
}
