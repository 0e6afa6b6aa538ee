//! Buying credits: packages, the Stripe customer of each customer, payments, and the record
//! of Stripe's events. A payment's fulfilment is a command
//! ([`creditd_domain::Command::UpdatePayment`]) applied by the writer's batch.

use creditd_domain::money::PaymentStatus;
use creditd_domain::views::{Package, Payment};
use creditd_domain::{Credits, IdKind};
use sqlx::Row;

use crate::db::{on, Fields};
use crate::read::{Page, PageRequest};
use crate::reconcile::StoredEvent;
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

fn package_row(row: &impl Fields) -> Result<Package> {
    Ok(Package {
        id: row.field("id")?,
        name: row.field("name")?,
        credits: Credits::from_micros(row.field("credits")?),
        price: row.field("price")?,
        currency: row.field("currency")?,
        stripe_price: row.field("stripe_price_id")?,
        active: row.field("active")?,
        created: row.field("created_at")?,
    })
}

pub(crate) fn payment_row(row: &impl Fields) -> Result<Payment> {
    let status: String = row.field("status")?;
    Ok(Payment {
        id: row.field("id")?,
        customer: row.field("customer_id")?,
        package: row.field("package_id")?,
        quantity: row.field("quantity")?,
        credits: Credits::from_micros(row.field("credits")?),
        amount: row.field("amount")?,
        currency: row.field("currency")?,
        status: PaymentStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown payment status {status:?}")))?,
        flow: row.field("flow")?,
        checkout_session: row.field("checkout_session_id")?,
        payment_intent: row.field("payment_intent_id")?,
        grant: row.field("grant_id")?,
        receipt_url: row.field("receipt_url")?,
        failure_message: row.field("failure_message")?,
        created: row.field("created_at")?,
        updated: row.field("updated_at")?,
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
        let sql = format!("INSERT INTO packages ({PACKAGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, TRUE, $7)");
        on!(&self.writer, p => sqlx::query(&sql)
            .bind(&package.id)
            .bind(&package.name)
            .bind(package.credits.micros())
            .bind(package.price)
            .bind(&package.currency)
            .bind(&package.stripe_price)
            .bind(now)
            .execute(p)
            .await?
            .rows_affected());
        Ok(package)
    }

    /// Packages, oldest first; only the active ones unless `include_archived`.
    pub async fn packages(&self, include_archived: bool) -> Result<Vec<Package>> {
        let sql = format!("SELECT {PACKAGE_COLUMNS} FROM packages WHERE active OR $1 ORDER BY created_at, id");
        on!(&self.pool, p => sqlx::query(&sql)
            .bind(include_archived)
            .fetch_all(p)
            .await?
            .iter()
            .map(package_row)
            .collect())
    }

    pub async fn package(&self, id: &str) -> Result<Option<Package>> {
        let sql = format!("SELECT {PACKAGE_COLUMNS} FROM packages WHERE id = $1");
        on!(&self.pool, p => sqlx::query(&sql)
            .bind(id)
            .fetch_optional(p)
            .await?
            .as_ref()
            .map(package_row)
            .transpose())
    }

    /// Packages `packages sync` imported from Stripe.
    pub async fn synced_packages(&self) -> Result<Vec<Package>> {
        let sql = format!("SELECT {PACKAGE_COLUMNS} FROM packages WHERE synced ORDER BY created_at, id");
        on!(&self.pool, p => sqlx::query(&sql).fetch_all(p).await?.iter().map(package_row).collect())
    }

    /// Creates a package imported from a Stripe Price.
    pub async fn create_synced_package(&self, new: &NewPackage, now: i64) -> Result<Package> {
        let package = self.create_package(new, now).await?;
        on!(&self.writer, p => sqlx::query("UPDATE packages SET synced = TRUE WHERE id = $1")
            .bind(&package.id)
            .execute(p)
            .await?
            .rows_affected());
        Ok(package)
    }

    /// Changes a package to match its Stripe Price, active again. Payments made before keep
    /// the credits they were sold with.
    pub async fn update_synced_package(&self, id: &str, new: &NewPackage) -> Result<()> {
        on!(&self.writer, p => sqlx::query(
            "UPDATE packages SET name = $2, credits = $3, price = $4, currency = $5, active = TRUE, synced = TRUE \
             WHERE id = $1",
        )
        .bind(id)
        .bind(&new.name)
        .bind(new.credits.micros())
        .bind(new.price)
        .bind(&new.currency)
        .execute(p)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Stops selling a package (its past payments keep it). False when no active package has the id.
    pub async fn archive_package(&self, id: &str) -> Result<bool> {
        let done = on!(&self.writer, p => sqlx::query("UPDATE packages SET active = FALSE WHERE id = $1 AND active")
            .bind(id)
            .execute(p)
            .await?
            .rows_affected());
        Ok(done == 1)
    }

    /// Records the Stripe Price created for a package; the first one recorded wins.
    pub async fn set_package_price(&self, id: &str, price: &str) -> Result<String> {
        on!(&self.writer, p => sqlx::query("UPDATE packages SET stripe_price_id = $2 WHERE id = $1 AND stripe_price_id IS NULL")
            .bind(id)
            .bind(price)
            .execute(p)
            .await?
            .rows_affected());
        let package = self
            .package(id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("package {id} vanished")))?;
        package
            .stripe_price
            .ok_or_else(|| StoreError::Corrupt(format!("package {id} has no price")))
    }

    pub async fn stripe_customer(&self, customer: &str) -> Result<Option<String>> {
        let id = on!(&self.pool, p => sqlx::query("SELECT stripe_customer_id FROM stripe_customers WHERE customer_id = $1")
            .bind(customer)
            .fetch_optional(p)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?);
        Ok(id)
    }

    /// Links a Stripe customer; when one is already linked, that one is kept and returned.
    pub async fn link_stripe_customer(&self, customer: &str, stripe_customer: &str, now: i64) -> Result<String> {
        on!(&self.writer, p => sqlx::query(
            "INSERT INTO stripe_customers (customer_id, stripe_customer_id, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (customer_id) DO NOTHING",
        )
        .bind(customer)
        .bind(stripe_customer)
        .bind(now)
        .execute(p)
        .await?
        .rows_affected());
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
        on!(&self.writer, p => sqlx::query(
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
        .execute(p)
        .await?
        .rows_affected());
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
        let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE {column} = $1");
        on!(&self.pool, p => sqlx::query(&sql)
            .bind(value)
            .fetch_optional(p)
            .await?
            .as_ref()
            .map(payment_row)
            .transpose())
    }

    /// Records the Stripe object (`checkout_session_id` or `payment_intent_id`) a payment is paid through.
    pub async fn attach_payment(
        &self,
        id: &str,
        checkout_session: Option<&str>,
        payment_intent: Option<&str>,
        now: i64,
    ) -> Result<()> {
        on!(&self.writer, p => sqlx::query(
            "UPDATE payments SET checkout_session_id = COALESCE(checkout_session_id, $2), \
             payment_intent_id = COALESCE(payment_intent_id, $3), updated_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(checkout_session)
        .bind(payment_intent)
        .bind(now)
        .execute(p)
        .await?
        .rows_affected());
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
        let mut data = on!(&self.pool, p => sqlx::query(&sql)
            .bind(customer)
            .bind(page.starting_after.as_deref().unwrap_or(""))
            .bind(limit + 1)
            .fetch_all(p)
            .await?
            .iter()
            .map(payment_row)
            .collect::<Result<Vec<_>>>()?);
        let has_more = data.len() as i64 > limit;
        data.truncate(limit as usize);
        Ok(Page { data, has_more })
    }

    pub async fn stripe_event(&self, id: &str) -> Result<Option<StoredEvent>> {
        self.stored_event(id).await
    }
}
