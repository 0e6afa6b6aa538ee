//! Plans and subscriptions as Stripe reports them. Their allowances are a command
//! ([`creditd_domain::Command::GrantAllowance`]) decided by [`creditd_domain::allowance`]
//! and the writer's batch.

use std::collections::{BTreeMap, HashMap};

use creditd_domain::entitlement::{Entitlement, PlanRules};
use creditd_domain::outbound::EventType;
use creditd_domain::views::{Plan, PlanFeature, SubscriptionSummary};
use creditd_domain::{Credits, IdKind};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Result, Store, StoreError};

const PLAN_COLUMNS: &str =
    "id, name, credits, price, currency, billing_interval, rollover_cap, stripe_price_id, active, created_at, free";

#[derive(Clone, Debug)]
pub struct NewPlan {
    pub name: String,
    pub credits: Credits,
    pub price: i64,
    pub currency: String,
    pub interval: String,
    pub rollover_cap: Credits,
    pub stripe_price: Option<String>,
    /// The free plan: price 0, no Stripe price, credits granted monthly by creditd.
    pub free: bool,
    /// Feature id → what the plan includes (every id must name a feature).
    pub features: BTreeMap<String, Entitlement>,
}

/// A subscription as read from Stripe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionRecord {
    pub id: String,
    pub customer: String,
    pub plan: Option<String>,
    pub status: String,
    pub current_period_start: i64,
    pub current_period_end: i64,
    pub cancel_at_period_end: bool,
}

fn plan_row(row: &AnyRow) -> Result<Plan> {
    Ok(Plan {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        credits: Credits::from_micros(row.try_get("credits")?),
        price: row.try_get("price")?,
        currency: row.try_get("currency")?,
        interval: row.try_get("billing_interval")?,
        rollover_cap: Credits::from_micros(row.try_get("rollover_cap")?),
        stripe_price: row.try_get("stripe_price_id")?,
        active: row.try_get::<i64, _>("active")? == 1,
        created: row.try_get("created_at")?,
        free: row.try_get::<i64, _>("free")? == 1,
        features: BTreeMap::new(),
    })
}

/// A plan's entitlements as the API shows them.
pub fn plan_feature_views(rules: Option<&PlanRules>) -> BTreeMap<String, PlanFeature> {
    rules
        .map(|r| {
            r.features
                .iter()
                .map(|(f, e)| {
                    let view = match *e {
                        Entitlement::Included => PlanFeature::Included(true),
                        Entitlement::Limited { limit, period } => PlanFeature::Limited { limit, period },
                    };
                    (f.clone(), view)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Replaces a plan's entitlements inside a transaction.
async fn write_plan_features(
    conn: &mut sqlx::AnyConnection,
    plan: &str,
    features: &BTreeMap<String, Entitlement>,
) -> Result<()> {
    sqlx::query("DELETE FROM plan_features WHERE plan_id = $1")
        .bind(plan)
        .execute(&mut *conn)
        .await?;
    for (feature, entitlement) in features {
        let (limit, period) = match entitlement {
            Entitlement::Included => (None, None),
            Entitlement::Limited { limit, period } => (Some(*limit), Some(period.as_str())),
        };
        sqlx::query("INSERT INTO plan_features (plan_id, feature_id, usage_limit, period) VALUES ($1, $2, $3, $4)")
            .bind(plan)
            .bind(feature)
            .bind(limit)
            .bind(period)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

fn with_features(mut plan: Plan, rules: &HashMap<String, PlanRules>) -> Result<Plan> {
    plan.features = plan_feature_views(rules.get(&plan.id));
    Ok(plan)
}

impl Store {
    pub async fn create_plan(&self, new: &NewPlan, now: i64) -> Result<Plan> {
        let id = format!("plan_{}", &IdKind::Package.new_id()[4..]);
        let mut tx = self.writer.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO plans ({PLAN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $10)"
        ))
        .bind(&id)
        .bind(&new.name)
        .bind(new.credits.micros())
        .bind(new.price)
        .bind(&new.currency)
        .bind(&new.interval)
        .bind(new.rollover_cap.micros())
        .bind(&new.stripe_price)
        .bind(now)
        .bind(i64::from(new.free))
        .execute(&mut *tx)
        .await?;
        write_plan_features(&mut tx, &id, &new.features).await?;
        tx.commit().await?;
        self.catalog_changed();
        self.plan(&id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("plan vanished".into()))
    }

    pub async fn plans(&self, include_archived: bool) -> Result<Vec<Plan>> {
        let sql = format!("SELECT {PLAN_COLUMNS} FROM plans WHERE active = 1 OR $1 = 1 ORDER BY price, created_at, id");
        let mut conn = self.pool.acquire().await?;
        let rows = sqlx::query(&sql)
            .bind(i64::from(include_archived))
            .fetch_all(&mut *conn)
            .await?;
        let rules = crate::catalog::plan_features(&mut conn).await?;
        rows.iter().map(|r| with_features(plan_row(r)?, &rules)).collect()
    }

    /// Replaces what a plan includes; false when there is no such plan.
    pub async fn set_plan_features(&self, id: &str, features: &BTreeMap<String, Entitlement>) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        let found = sqlx::query("SELECT 1 FROM plans WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if found.is_none() {
            tx.rollback().await?;
            return Ok(false);
        }
        write_plan_features(&mut tx, id, features).await?;
        tx.commit().await?;
        self.catalog_changed();
        Ok(true)
    }

    pub async fn plan(&self, id: &str) -> Result<Option<Plan>> {
        self.plan_where("id", id).await
    }

    pub async fn plan_by_stripe_price(&self, price: &str) -> Result<Option<Plan>> {
        self.plan_where("stripe_price_id", price).await
    }

    async fn plan_where(&self, column: &str, value: &str) -> Result<Option<Plan>> {
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query(&format!("SELECT {PLAN_COLUMNS} FROM plans WHERE {column} = $1"))
            .bind(value)
            .fetch_optional(&mut *conn)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let rules = crate::catalog::plan_features(&mut conn).await?;
        with_features(plan_row(&row)?, &rules).map(Some)
    }

    /// Records the Stripe Price created for a plan; the first one recorded wins.
    pub async fn set_plan_price(&self, id: &str, price: &str) -> Result<String> {
        sqlx::query("UPDATE plans SET stripe_price_id = $2 WHERE id = $1 AND stripe_price_id IS NULL")
            .bind(id)
            .bind(price)
            .execute(&self.writer)
            .await?;
        let plan = self
            .plan(id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("plan {id} vanished")))?;
        plan.stripe_price
            .ok_or_else(|| StoreError::Corrupt(format!("plan {id} has no price")))
    }

    pub async fn archive_plan(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE plans SET active = 0 WHERE id = $1 AND active = 1")
            .bind(id)
            .execute(&self.writer)
            .await?;
        self.catalog_changed();
        Ok(done.rows_affected() == 1)
    }

    /// The creditd customer linked to a Stripe customer.
    pub async fn customer_by_stripe_customer(&self, stripe_customer: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT customer_id FROM stripe_customers WHERE stripe_customer_id = $1")
            .bind(stripe_customer)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Records a subscription's state as Stripe reports it now, with its event
    /// (`subscription.created`, `.updated` or `.canceled`) when that changed anything.
    pub async fn upsert_subscription(&self, record: &SubscriptionRecord, now: i64) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        let before = sqlx::query(
            "SELECT plan_id, status, current_period_start, current_period_end, cancel_at_period_end \
             FROM subscriptions WHERE id = $1",
        )
        .bind(&record.id)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| -> Result<SubscriptionSummary> {
            Ok(SubscriptionSummary {
                id: record.id.clone(),
                plan: r.try_get(0)?,
                status: r.try_get(1)?,
                current_period_start: r.try_get(2)?,
                current_period_end: r.try_get(3)?,
                cancel_at_period_end: r.try_get::<i64, _>(4)? == 1,
            })
        })
        .transpose()?;
        sqlx::query(
            "INSERT INTO subscriptions (id, customer_id, plan_id, status, current_period_start, current_period_end, \
             cancel_at_period_end, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
             ON CONFLICT (id) DO UPDATE SET plan_id = excluded.plan_id, status = excluded.status, \
             current_period_start = excluded.current_period_start, current_period_end = excluded.current_period_end, \
             cancel_at_period_end = excluded.cancel_at_period_end, updated_at = excluded.updated_at",
        )
        .bind(&record.id)
        .bind(&record.customer)
        .bind(&record.plan)
        .bind(&record.status)
        .bind(record.current_period_start)
        .bind(record.current_period_end)
        .bind(i64::from(record.cancel_at_period_end))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let after = SubscriptionSummary {
            id: record.id.clone(),
            plan: record.plan.clone(),
            status: record.status.clone(),
            current_period_start: Some(record.current_period_start),
            current_period_end: Some(record.current_period_end),
            cancel_at_period_end: record.cancel_at_period_end,
        };
        let event = match &before {
            None => Some(EventType::SubscriptionCreated),
            Some(b) if b == &after => None,
            Some(b) if after.status == "canceled" && b.status != "canceled" => Some(EventType::SubscriptionCanceled),
            Some(_) => Some(EventType::SubscriptionUpdated),
        };
        if let Some(event) = event {
            let mut data = serde_json::to_value(&after).expect("subscriptions serialize");
            data["customer"] = record.customer.clone().into();
            crate::outbox::emit(&mut tx, event, Some(&record.customer), &data, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Subscriptions active now (active, trialing or past due), counted by plan name.
    pub async fn active_subscriptions_by_plan(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT COALESCE(p.name, 'unknown plan'), COUNT(*) FROM subscriptions s LEFT JOIN plans p ON p.id = s.plan_id \
             WHERE s.status IN ('active', 'trialing', 'past_due') GROUP BY COALESCE(p.name, 'unknown plan') ORDER BY 2 DESC, 1",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
    }

    /// The customer's most recently updated subscription.
    pub async fn subscription_of(&self, customer: &str) -> Result<Option<SubscriptionSummary>> {
        let row = sqlx::query(
            "SELECT id, plan_id, status, current_period_start, current_period_end, cancel_at_period_end \
             FROM subscriptions WHERE customer_id = $1 ORDER BY updated_at DESC, created_at DESC LIMIT 1",
        )
        .bind(customer)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(SubscriptionSummary {
                id: r.try_get(0)?,
                plan: r.try_get(1)?,
                status: r.try_get(2)?,
                current_period_start: r.try_get(3)?,
                current_period_end: r.try_get(4)?,
                cancel_at_period_end: r.try_get::<i64, _>(5)? == 1,
            })
        })
        .transpose()
    }
}
