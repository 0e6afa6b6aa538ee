//! Auto top-up: a customer's settings, the runs that crossings queue (in the transaction of
//! the change that crossed, see [`crate::crossing`] and [`after_change`]), and their end.
//!
//! A run is claimed by one replica under a lease, paid off-session (its credits arrive
//! through the payment's normal fulfilment), and finished once ([`Store::finish_topup_run`]):
//! `auto_topup.succeeded` or `auto_topup.failed`; the third failure in a row turns auto
//! top-up off with the reason. A replica that dies mid-run leaves the lease to run out: the
//! next one pays again with the same idempotency key, so Stripe charges once.

use creditd_domain::outbound::EventType;
use creditd_domain::views::Payment;
use creditd_domain::Credits;
use sqlx::Row;

use crate::db::{on, Conn, Db, Fields};
use crate::outbox;
use crate::{Result, Store, StoreError};

/// Consecutive failures after which auto top-up turns itself off.
pub const MAX_CONSECUTIVE_FAILURES: i64 = 3;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AutoTopup {
    pub customer: String,
    pub enabled: bool,
    pub threshold: Credits,
    pub package: String,
    pub quantity: i64,
    pub max_per_month: Option<i64>,
    pub consecutive_failures: i64,
    /// Why auto top-up turned itself off.
    pub disabled_reason: Option<String>,
    pub updated: i64,
}

impl AutoTopup {
    pub fn view(&self) -> creditd_domain::views::AutoTopupView {
        creditd_domain::views::AutoTopupView {
            customer: self.customer.clone(),
            enabled: self.enabled,
            threshold: self.threshold,
            package: Some(self.package.clone()),
            quantity: self.quantity,
            max_per_month: self.max_per_month,
            consecutive_failures: self.consecutive_failures,
            disabled_reason: self.disabled_reason.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct AutoTopupSettings {
    pub enabled: bool,
    pub threshold: Credits,
    pub package: String,
    pub quantity: i64,
    pub max_per_month: Option<i64>,
}

/// A queued top-up, claimed by this replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopupRun {
    pub id: String,
    pub customer: String,
    pub package: String,
    pub quantity: i64,
    pub payment: Option<String>,
    pub created: i64,
}

const COLUMNS: &str = "customer_id, enabled, threshold, package_id, quantity, max_per_month, \
    consecutive_failures, disabled_reason, updated_at";

fn row_to_topup(row: &impl Fields) -> Result<AutoTopup> {
    Ok(AutoTopup {
        customer: row.field("customer_id")?,
        enabled: row.field("enabled")?,
        threshold: Credits::from_micros(row.field("threshold")?),
        package: row.field("package_id")?,
        quantity: row.field("quantity")?,
        max_per_month: row.field("max_per_month")?,
        consecutive_failures: row.field("consecutive_failures")?,
        disabled_reason: row.field("disabled_reason")?,
        updated: row.field("updated_at")?,
    })
}

fn topup_run(row: &impl Fields) -> Result<TopupRun> {
    Ok(TopupRun {
        id: row.field("id")?,
        customer: row.field("customer_id")?,
        package: row.field("package_id")?,
        quantity: row.field("quantity")?,
        payment: row.field("payment_id")?,
        created: row.field("created_at")?,
    })
}

/// Claims due top-up runs for a lease. The two backends differ only in PostgreSQL's
/// `FOR UPDATE SKIP LOCKED`: replicas claiming at once skip each other's rows.
const CLAIM_RUNS_POSTGRES: &str =
    "UPDATE auto_topup_runs SET status = 'processing', lease_until = $2, updated_at = $1 \
     WHERE id IN (SELECT id FROM auto_topup_runs WHERE status IN ('pending', 'processing') AND lease_until <= $1 \
     ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED) \
     RETURNING id, customer_id, package_id, quantity, payment_id, created_at";
const CLAIM_RUNS_SQLITE: &str = "UPDATE auto_topup_runs SET status = 'processing', lease_until = $2, updated_at = $1 \
     WHERE id IN (SELECT id FROM auto_topup_runs WHERE status IN ('pending', 'processing') AND lease_until <= $1 \
     ORDER BY seq LIMIT $3) \
     RETURNING id, customer_id, package_id, quantity, payment_id, created_at";

impl Store {
    pub async fn auto_topup(&self, customer: &str) -> Result<Option<AutoTopup>> {
        let sql = format!("SELECT {COLUMNS} FROM auto_topups WHERE customer_id = $1");
        on!(&self.writer, p => sqlx::query(&sql)
            .bind(customer)
            .fetch_optional(p)
            .await?
            .as_ref()
            .map(row_to_topup)
            .transpose())
    }

    /// Saves a customer's settings. Turning it on (again) clears past failures and arms it:
    /// the next change that leaves available credits below the threshold tops up.
    pub async fn set_auto_topup(&self, customer: &str, s: &AutoTopupSettings, now: i64) -> Result<AutoTopup> {
        let mut tx = self.writer.begin().await?;
        on!(tx.conn(), c => sqlx::query(
            "INSERT INTO auto_topups (customer_id, enabled, threshold, package_id, quantity, max_per_month, armed, \
             consecutive_failures, disabled_reason, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, TRUE, 0, NULL, $7, $7) \
             ON CONFLICT (customer_id) DO UPDATE SET enabled = excluded.enabled, threshold = excluded.threshold, \
             package_id = excluded.package_id, quantity = excluded.quantity, max_per_month = excluded.max_per_month, \
             armed = TRUE, consecutive_failures = CASE WHEN excluded.enabled THEN 0 ELSE auto_topups.consecutive_failures END, \
             disabled_reason = CASE WHEN excluded.enabled THEN NULL ELSE auto_topups.disabled_reason END, \
             updated_at = excluded.updated_at",
        )
        .bind(customer)
        .bind(s.enabled)
        .bind(s.threshold.micros())
        .bind(&s.package)
        .bind(s.quantity)
        .bind(s.max_per_month)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
        bump_version(&mut tx.conn(), customer).await?;
        tx.commit().await?;
        self.auto_topup(customer)
            .await?
            .ok_or_else(|| StoreError::Corrupt("auto top-up settings vanished".into()))
    }

    /// Takes queued runs (and runs whose replica's lease ran out) until `now + lease`.
    pub async fn claim_topup_runs(&self, now: i64, lease_seconds: i64, limit: i64) -> Result<Vec<TopupRun>> {
        // A read first: an idle replica takes no write lock.
        let due = on!(&self.pool, p => sqlx::query(
            "SELECT 1 FROM auto_topup_runs WHERE status IN ('pending', 'processing') AND lease_until <= $1 LIMIT 1",
        )
        .bind(now)
        .fetch_optional(p)
        .await?
        .is_some());
        if !due {
            return Ok(Vec::new());
        }
        let lease_until = now.saturating_add(lease_seconds);
        // PostgreSQL: replicas claiming at once skip each other's rows; SQLite has one writer.
        let sql = match &self.writer {
            Db::Pg(_) => CLAIM_RUNS_POSTGRES,
            Db::Lite(_) => CLAIM_RUNS_SQLITE,
        };
        on!(&self.writer, p => sqlx::query(sql)
            .bind(now)
            .bind(lease_until)
            .bind(limit)
            .fetch_all(p)
            .await?
            .iter()
            .map(topup_run)
            .collect())
    }

    /// Runs of this customer paid for (or being paid) since `since`, for `max_per_month`.
    pub async fn topups_since(&self, customer: &str, since: i64) -> Result<i64> {
        let count = on!(&self.pool, p => sqlx::query(
            "SELECT COUNT(*) FROM auto_topup_runs WHERE customer_id = $1 AND created_at >= $2 \
             AND payment_id IS NOT NULL AND status <> 'failed'",
        )
        .bind(customer)
        .bind(since)
        .fetch_one(p)
        .await?
        .try_get(0)?);
        Ok(count)
    }

    /// Records the payment a run is paid with (once: a retried run reuses it).
    pub async fn attach_topup_payment(&self, run: &str, payment: &str, now: i64) -> Result<()> {
        on!(&self.writer, p => sqlx::query(
            "UPDATE auto_topup_runs SET payment_id = COALESCE(payment_id, $2), updated_at = $3 WHERE id = $1",
        )
        .bind(run)
        .bind(payment)
        .bind(now)
        .execute(p)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Ends a run that never reached a payment (no saved card, the monthly limit, an archived
    /// package): `auto_topup.failed`, counted like a declined card unless `counts` is false.
    pub async fn fail_topup_run(
        &self,
        run: &TopupRun,
        code: &str,
        message: &str,
        counts: bool,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        finish(
            &mut tx.conn(),
            &run.id,
            &run.customer,
            Err((code, message)),
            counts,
            None,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Ends a run by its payment's outcome: succeeded, or failed (with the failure).
    pub async fn finish_topup_run(&self, run: &TopupRun, payment: &Payment, now: i64) -> Result<()> {
        let outcome = match (&payment.status, &payment.failure_message) {
            (creditd_domain::money::PaymentStatus::Succeeded, _) => Ok(()),
            (_, message) => Err(("payment_failed", message.as_deref().unwrap_or("the payment failed"))),
        };
        let mut tx = self.writer.begin().await?;
        finish(
            &mut tx.conn(),
            &run.id,
            &run.customer,
            outcome,
            true,
            Some(payment),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The runs of one customer, newest first (for the API and the pages).
    pub async fn topup_runs(&self, customer: &str, limit: i64) -> Result<Vec<(String, String, Option<String>, i64)>> {
        let runs = on!(&self.pool, p => sqlx::query_as(
            "SELECT id, status, failure_message, created_at FROM auto_topup_runs WHERE customer_id = $1 \
             ORDER BY seq DESC LIMIT $2",
        )
        .bind(customer)
        .bind(limit)
        .fetch_all(p)
        .await?);
        Ok(runs)
    }
}

/// Settings changed outside the writer: its cached copy of the customer is stale now.
pub(crate) async fn bump_version(conn: &mut Conn<'_>, customer: &str) -> Result<()> {
    on!(conn, c => sqlx::query("UPDATE customers SET version = version + 1 WHERE id = $1")
        .bind(customer)
        .execute(&mut **c)
        .await?
        .rows_affected());
    Ok(())
}

async fn finish(
    conn: &mut Conn<'_>,
    run: &str,
    customer: &str,
    outcome: std::result::Result<(), (&str, &str)>,
    counts: bool,
    payment: Option<&Payment>,
    now: i64,
) -> Result<()> {
    let (status, code, message) = match outcome {
        Ok(()) => ("succeeded", None, None),
        Err((code, message)) => ("failed", Some(code), Some(message)),
    };
    // A run ends once, whichever of the webhook and the worker gets here first.
    let ended = on!(conn, c => sqlx::query(
        "UPDATE auto_topup_runs SET status = $2, failure_code = $3, failure_message = $4, lease_until = 0, updated_at = $5 \
         WHERE id = $1 AND status = 'processing'",
    )
    .bind(run)
    .bind(status)
    .bind(code)
    .bind(message)
    .bind(now)
    .execute(&mut **c)
    .await?
    .rows_affected());
    if ended == 0 {
        return Ok(());
    }
    let failures: i64 = if status == "succeeded" {
        on!(conn, c => sqlx::query("UPDATE auto_topups SET consecutive_failures = 0, updated_at = $2 WHERE customer_id = $1")
            .bind(customer)
            .bind(now)
            .execute(&mut **c)
            .await?
            .rows_affected());
        0
    } else if counts {
        on!(conn, c => sqlx::query(
            "UPDATE auto_topups SET consecutive_failures = consecutive_failures + 1, updated_at = $2 \
             WHERE customer_id = $1 RETURNING consecutive_failures",
        )
        .bind(customer)
        .bind(now)
        .fetch_optional(&mut **c)
        .await?
        .map(|r| r.try_get(0))
        .transpose()?
        .unwrap_or(0))
    } else {
        0
    };
    let turned_off = failures >= MAX_CONSECUTIVE_FAILURES;
    let reason = message.map(|m| format!("{failures} consecutive failures, the last: {m}"));
    if turned_off {
        on!(conn, c => sqlx::query(
            "UPDATE auto_topups SET enabled = FALSE, disabled_reason = $2, updated_at = $3 WHERE customer_id = $1",
        )
        .bind(customer)
        .bind(&reason)
        .bind(now)
        .execute(&mut **c)
        .await?
        .rows_affected());
        bump_version(conn, customer).await?;
    }
    let data = serde_json::json!({
        "object": "auto_topup", "id": run, "customer": customer, "status": status,
        "failure_code": code, "failure_message": message, "consecutive_failures": failures,
        "auto_topup_disabled": turned_off, "disabled_reason": if turned_off { reason } else { None },
        "payment": payment,
    });
    let event = if status == "succeeded" {
        EventType::AutoTopupSucceeded
    } else {
        EventType::AutoTopupFailed
    };
    outbox::emit(conn, event, Some(customer), &data, now).await
}
