//! Refunds and disputes: the payments reconciliation re-converges. The convergence itself is
//! a command ([`creditd_domain::Command::ConvergePayment`]) decided by
//! [`creditd_domain::refund`] and the writer's batch.

use creditd_domain::views::Payment;

use crate::db::on;
use crate::{Result, Store};

impl Store {
    /// Payments created since `since`, oldest first (reconciliation re-converges them).
    pub async fn payments_since(&self, since: i64) -> Result<Vec<Payment>> {
        let sql = format!(
            "SELECT {} FROM payments WHERE created_at >= $1 ORDER BY seq",
            crate::billing::PAYMENT_COLUMNS
        );
        on!(&self.pool, p => sqlx::query(&sql)
            .bind(since)
            .fetch_all(p)
            .await?
            .iter()
            .map(crate::billing::payment_row)
            .collect())
    }
}
