//! Buying credits: packages, the Stripe customer of each customer, payments, and the record
//! of Stripe's events. A payment's fulfilment is a command
//! ([`creditd_domain::Command::UpdatePayment`]) applied by the writer's batch.

use creditd_domain::money::PaymentStatus;
use creditd_domain::views::{Package, Payment};
use creditd_domain::{Credits, IdKind};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::read::{Page, PageRequest};
use crate::reconcile::{event_row, StoredEvent, EVENT_COLUMNS};
use crate::{Result, Store, StoreError};

const PACKAGE_COLUMNS: &str = "id, name, credits, price, currency, stripe_price_id, active, created_at";
pub(crate) const PAYMENT_COLUMNS: &str = "id, customer_id, package_id, quantity, credits, amount, currency, flow, \
    checkout_session_id, payment_intent_id, status, grant_id, receipt_url, failure_message, created_at, updated_at";

#[derive(Clone, Debug)]
pub struct NewPackage {
    pub name: String,
    pub credits: Credits,
    pub price: i64,
    pub currency: String,
    pub stripe_price: Option<String>,
}

#[derive(Clone, Debug)]
pub struct NewPayment {
    pub customer: String,
    pub package: Package,
    pub quantity: i64,
    /// `checkout` or `payment_intent`.
    pub flow: &'static str,
}

fn package_row(row: &AnyRow) -> Result<Package> {
    Ok(Package {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        credits: Credits::from_micros(row.try_get("credits")?),
        price: row.try_get("price")?,
        currency: row.try_get("currency")?,
        stripe_price: row.try_get("stripe_price_id")?,
        active: row.try_get::<i64, _>("active")? == 1,
        created: row.try_get("created_at")?,
    })
}

pub(crate) fn payment_row(row: &AnyRow) -> Result<Payment> {
    let status: String = row.try_get("status")?;
    Ok(Payment {
        id: row.try_get("id")?,
        customer: row.try_get("customer_id")?,
        package: row.try_get("package_id")?,
        quantity: row.try_get("quantity")?,
        credits: Credits::from_micros(row.try_get("credits")?),
        amount: row.try_get("amount")?,
        currency: row.try_get("currency")?,
        status: PaymentStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown payment status {status:?}")))?,
        flow: row.try_get("flow")?,
        checkout_session: row.try_get("checkout_session_id")?,
        payment_intent: row.try_get("payment_intent_id")?,
        grant: row.try_get("grant_id")?,
        receipt_url: row.try_get("receipt_url")?,
        failure_message: row.try_get("failure_message")?,
        created: row.try_get("created_at")?,
        updated: row.try_get("updated_at")?,
    })
}

impl Store {
    pub async fn create_package(&self, new: &NewPackage, now: i64) -> Result<Package> {
        let package = Package {
            id: IdKind::Package.new_id(),
            name: new.name.clone(),
            credits: new.credits,
            price: new.price,
            currency: new.currency.clone(),
            stripe_price: new.stripe_price.clone(),
            active: true,
            created: now,
        };
        sqlx::query(&format!(
            "INSERT INTO packages ({PACKAGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, 1, $7)"
        ))
        .bind(&package.id)
        .bind(&package.name)
        .bind(package.credits.micros())
        .bind(package.price)
        .bind(&package.currency)
        .bind(&package.stripe_price)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(package)
    }

    /// Packages, oldest first; only the active ones unless `include_archived`.
    pub async fn packages(&self, include_archived: bool) -> Result<Vec<Package>> {
        let sql = format!("SELECT {PACKAGE_COLUMNS} FROM packages WHERE active = 1 OR $1 = 1 ORDER BY created_at, id");
        let rows = sqlx::query(&sql)
            .bind(i64::from(include_archived))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(package_row).collect()
    }

    pub async fn package(&self, id: &str) -> Result<Option<Package>> {
        let row = sqlx::query(&format!("SELECT {PACKAGE_COLUMNS} FROM packages WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(package_row).transpose()
    }

    /// Stops selling a package (its past payments keep it). False when no active package has the id.
    pub async fn archive_package(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE packages SET active = 0 WHERE id = $1 AND active = 1")
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the Stripe Price created for a package; the first one recorded wins.
    pub async fn set_package_price(&self, id: &str, price: &str) -> Result<String> {
        sqlx::query("UPDATE packages SET stripe_price_id = $2 WHERE id = $1 AND stripe_price_id IS NULL")
            .bind(id)
            .bind(price)
            .execute(&self.writer)
            .await?;
        let package = self
            .package(id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("package {id} vanished")))?;
        package
            .stripe_price
            .ok_or_else(|| StoreError::Corrupt(format!("package {id} has no price")))
    }

    pub async fn stripe_customer(&self, customer: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT stripe_customer_id FROM stripe_customers WHERE customer_id = $1")
            .bind(customer)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Links a Stripe customer; when one is already linked, that one is kept and returned.
    pub async fn link_stripe_customer(&self, customer: &str, stripe_customer: &str, now: i64) -> Result<String> {
        sqlx::query(
            "INSERT INTO stripe_customers (customer_id, stripe_customer_id, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (customer_id) DO NOTHING",
        )
        .bind(customer)
        .bind(stripe_customer)
        .bind(now)
        .execute(&self.writer)
        .await?;
        self.stripe_customer(customer)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("stripe customer of {customer} vanished")))
    }

    /// A pending payment; its credits are fixed now from creditd's own package.
    pub async fn create_payment(&self, new: &NewPayment, now: i64) -> Result<Payment> {
        let credits = new
            .package
            .credits
            .micros()
            .checked_mul(new.quantity)
            .filter(|c| *c <= Credits::MAX.micros())
            .ok_or_else(|| StoreError::Corrupt("credits × quantity overflow".into()))?;
        let amount = new
            .package
            .price
            .checked_mul(new.quantity)
            .ok_or_else(|| StoreError::Corrupt("amount overflow".into()))?;
        let id = IdKind::Payment.new_id();
        sqlx::query(
            "INSERT INTO payments (id, customer_id, package_id, quantity, credits, amount, currency, flow, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $9)",
        )
        .bind(&id)
        .bind(&new.customer)
        .bind(&new.package.id)
        .bind(new.quantity)
        .bind(credits)
        .bind(amount)
        .bind(&new.package.currency)
        .bind(new.flow)
        .bind(now)
        .execute(&self.writer)
        .await?;
        self.payment(&id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("payment vanished".into()))
    }

    pub async fn payment(&self, id: &str) -> Result<Option<Payment>> {
        self.payment_where("id", id).await
    }

    pub async fn payment_by_checkout_session(&self, session: &str) -> Result<Option<Payment>> {
        self.payment_where("checkout_session_id", session).await
    }

    pub async fn payment_by_payment_intent(&self, intent: &str) -> Result<Option<Payment>> {
        self.payment_where("payment_intent_id", intent).await
    }

    async fn payment_where(&self, column: &str, value: &str) -> Result<Option<Payment>> {
        let row = sqlx::query(&format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE {column} = $1"))
            .bind(value)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(payment_row).transpose()
    }

    /// Records the Stripe object (`checkout_session_id` or `payment_intent_id`) a payment is paid through.
    pub async fn attach_payment(
        &self,
        id: &str,
        checkout_session: Option<&str>,
        payment_intent: Option<&str>,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE payments SET checkout_session_id = COALESCE(checkout_session_id, $2), \
             payment_intent_id = COALESCE(payment_intent_id, $3), updated_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(checkout_session)
        .bind(payment_intent)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// A customer's payments, newest first.
    pub async fn payments(&self, customer: &str, page: &PageRequest) -> Result<Page<Payment>> {
        let limit = i64::from(page.limit.clamp(1, 100));
        let sql = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE customer_id = $1 \
             AND ($2 = '' OR seq < (SELECT seq FROM payments WHERE id = $2 AND customer_id = $1)) \
             ORDER BY seq DESC LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(customer)
            .bind(page.starting_after.as_deref().unwrap_or(""))
            .bind(limit + 1)
            .fetch_all(&self.pool)
            .await?;
        let has_more = rows.len() as i64 > limit;
        let data = rows
            .iter()
            .take(limit as usize)
            .map(payment_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page { data, has_more })
    }

    /// Records a received event (or counts another attempt of a known one) and returns it.
    pub async fn record_stripe_event(
        &self,
        id: &str,
        event_type: &str,
        created: i64,
        payload: &str,
        now: i64,
    ) -> Result<StoredEvent> {
        sqlx::query(
            "INSERT INTO stripe_events (id, type, created, payload, status, attempts, received_at) \
             VALUES ($1, $2, $3, $4, 'processing', 0, $5) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(event_type)
        .bind(created)
        .bind(payload)
        .bind(now)
        .execute(&self.writer)
        .await?;
        sqlx::query("UPDATE stripe_events SET attempts = attempts + 1 WHERE id = $1")
            .bind(id)
            .execute(&self.writer)
            .await?;
        let row = sqlx::query(&format!("SELECT {EVENT_COLUMNS} FROM stripe_events WHERE id = $1"))
            .bind(id)
            .fetch_one(&self.writer)
            .await?;
        event_row(&row)
    }

    /// Marks an event `processed`, `ignored` or `failed` (with its error).
    pub async fn finish_stripe_event(&self, id: &str, status: &str, error: Option<&str>, now: i64) -> Result<()> {
        sqlx::query("UPDATE stripe_events SET status = $2, error = $3, processed_at = $4 WHERE id = $1")
            .bind(id)
            .bind(status)
            .bind(error)
            .bind(now)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn stripe_event(&self, id: &str) -> Result<Option<StoredEvent>> {
        self.stored_event(id).await
    }
}
