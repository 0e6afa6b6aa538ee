//! Plans and subscriptions as Stripe reports them. Their allowances are a command
//! ([`creditd_domain::Command::GrantAllowance`]) decided by [`creditd_domain::allowance`]
//! and the writer's batch.

use std::collections::{BTreeMap, HashMap};

use creditd_domain::entitlement::{Entitlement, PlanRules};
use creditd_domain::outbound::EventType;
use creditd_domain::views::{Plan, PlanFeature, SubscriptionSummary};
use creditd_domain::{Credits, IdKind};
use sqlx::Row;

use crate::db::{on, Conn, Fields};
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

fn plan_row(row: &impl Fields) -> Result<Plan> {
    Ok(Plan {
        id: row.field("id")?,
        name: row.field("name")?,
        credits: Credits::from_micros(row.field("credits")?),
        price: row.field("price")?,
        currency: row.field("currency")?,
        interval: row.field("billing_interval")?,
        rollover_cap: Credits::from_micros(row.field("rollover_cap")?),
        stripe_price: row.field("stripe_price_id")?,
        active: row.field("active")?,
        created: row.field("created_at")?,
        free: row.field("free")?,
        features: BTreeMap::new(),
    })
}

const SUBSCRIPTION_COLUMNS: &str =
    "id, plan_id, status, current_period_start, current_period_end, cancel_at_period_end";

fn subscription_row(row: &impl Fields) -> Result<SubscriptionSummary> {
    Ok(SubscriptionSummary {
        id: row.field("id")?,
        plan: row.field("plan_id")?,
        status: row.field("status")?,
        current_period_start: row.field("current_period_start")?,
        current_period_end: row.field("current_period_end")?,
        cancel_at_period_end: row.field("cancel_at_period_end")?,
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
async fn write_plan_features(conn: &mut Conn<'_>, plan: &str, features: &BTreeMap<String, Entitlement>) -> Result<()> {
    on!(conn, c => {
        sqlx::query("DELETE FROM plan_features WHERE plan_id = $1")
            .bind(plan)
            .execute(&mut **c)
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
                .execute(&mut **c)
                .await?;
        }
    });
    Ok(())
}

fn with_features(mut plan: Plan, rules: &HashMap<String, PlanRules>) -> Result<Plan> {
    plan.features = plan_feature_views(rules.get(&plan.id));
    Ok(plan)
}

impl Store {
    pub async fn create_plan(&self, new: &NewPlan, now: i64) -> Result<Plan> {
        let id = format!("plan_{}", &IdKind::Package.new_id()[4..]);
        let sql = format!("INSERT INTO plans ({PLAN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, TRUE, $9, $10)");
        let mut tx = self.writer.begin().await?;
        on!(tx.conn(), c => sqlx::query(&sql)
            .bind(&id)
            .bind(&new.name)
            .bind(new.credits.micros())
            .bind(new.price)
            .bind(&new.currency)
            .bind(&new.interval)
            .bind(new.rollover_cap.micros())
            .bind(&new.stripe_price)
            .bind(now)
            .bind(new.free)
            .execute(c)
            .await?
            .rows_affected());
        write_plan_features(&mut tx.conn(), &id, &new.features).await?;
        tx.commit().await?;
        self.catalog_changed();
        self.plan(&id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("plan vanished".into()))
    }

    pub async fn plans(&self, include_archived: bool) -> Result<Vec<Plan>> {
        let sql = format!("SELECT {PLAN_COLUMNS} FROM plans WHERE active OR $1 ORDER BY price, created_at, id");
        let mut pooled = self.pool.acquire().await?;
        let mut conn = pooled.conn();
        let plans = on!(&mut conn, c => sqlx::query(&sql)
            .bind(include_archived)
            .fetch_all(&mut **c)
            .await?
            .iter()
            .map(plan_row)
            .collect::<Result<Vec<_>>>()?);
        let rules = crate::catalog::plan_features(&mut conn).await?;
        plans.into_iter().map(|p| with_features(p, &rules)).collect()
    }

    /// Replaces what a plan includes; false when there is no such plan.
    pub async fn set_plan_features(&self, id: &str, features: &BTreeMap<String, Entitlement>) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        let found = on!(tx.conn(), c => sqlx::query("SELECT 1 FROM plans WHERE id = $1")
            .bind(id)
            .fetch_optional(c)
            .await?
            .is_some());
        if !found {
            tx.rollback().await?;
            return Ok(false);
        }
        write_plan_features(&mut tx.conn(), id, features).await?;
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
        let sql = format!("SELECT {PLAN_COLUMNS} FROM plans WHERE {column} = $1");
        let mut pooled = self.pool.acquire().await?;
        let mut conn = pooled.conn();
        let plan = on!(&mut conn, c => sqlx::query(&sql)
            .bind(value)
            .fetch_optional(&mut **c)
            .await?
            .as_ref()
            .map(plan_row)
            .transpose()?);
        let Some(plan) = plan else { return Ok(None) };
        let rules = crate::catalog::plan_features(&mut conn).await?;
        with_features(plan, &rules).map(Some)
    }

    /// Records the Stripe Price created for a plan; the first one recorded wins.
    pub async fn set_plan_price(&self, id: &str, price: &str) -> Result<String> {
        on!(&self.writer, p => sqlx::query("UPDATE plans SET stripe_price_id = $2 WHERE id = $1 AND stripe_price_id IS NULL")
            .bind(id)
            .bind(price)
            .execute(p)
            .await?
            .rows_affected());
        let plan = self
            .plan(id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("plan {id} vanished")))?;
        plan.stripe_price
            .ok_or_else(|| StoreError::Corrupt(format!("plan {id} has no price")))
    }

    pub async fn archive_plan(&self, id: &str) -> Result<bool> {
        let done = on!(&self.writer, p => sqlx::query("UPDATE plans SET active = FALSE WHERE id = $1 AND active")
            .bind(id)
            .execute(p)
            .await?
            .rows_affected());
        self.catalog_changed();
        Ok(done == 1)
    }

    /// The creditd customer linked to a Stripe customer.
    pub async fn customer_by_stripe_customer(&self, stripe_customer: &str) -> Result<Option<String>> {
        let customer = on!(&self.pool, p => sqlx::query("SELECT customer_id FROM stripe_customers WHERE stripe_customer_id = $1")
            .bind(stripe_customer)
            .fetch_optional(p)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?);
        Ok(customer)
    }

    /// Records a subscription's state as Stripe reports it now, with its event
    /// (`subscription.created`, `.updated` or `.canceled`) when that changed anything.
    pub async fn upsert_subscription(&self, record: &SubscriptionRecord, now: i64) -> Result<()> {
        let select = format!("SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE id = $1");
        let mut tx = self.writer.begin().await?;
        let before = on!(tx.conn(), c => {
            let before = sqlx::query(&select)
                .bind(&record.id)
                .fetch_optional(&mut *c)
                .await?
                .as_ref()
                .map(subscription_row)
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
            .bind(record.cancel_at_period_end)
            .bind(now)
            .execute(&mut *c)
            .await?;
            before
        });
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
            crate::outbox::emit(&mut tx.conn(), event, Some(&record.customer), &data, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Subscriptions active now (active, trialing or past due), counted by plan name.
    pub async fn active_subscriptions_by_plan(&self) -> Result<Vec<(String, i64)>> {
        let counts = on!(&self.pool, p => sqlx::query_as(
            "SELECT COALESCE(p.name, 'unknown plan'), COUNT(*) FROM subscriptions s LEFT JOIN plans p ON p.id = s.plan_id \
             WHERE s.status IN ('active', 'trialing', 'past_due') GROUP BY COALESCE(p.name, 'unknown plan') ORDER BY 2 DESC, 1",
        )
        .fetch_all(p)
        .await?);
        Ok(counts)
    }

    /// The customer's most recently updated subscription.
    pub async fn subscription_of(&self, customer: &str) -> Result<Option<SubscriptionSummary>> {
        let sql = format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE customer_id = $1 \
             ORDER BY updated_at DESC, created_at DESC LIMIT 1"
        );
        on!(&self.pool, p => sqlx::query(&sql)
            .bind(customer)
            .fetch_optional(p)
            .await?
            .as_ref()
            .map(subscription_row)
            .transpose())
    }
}
