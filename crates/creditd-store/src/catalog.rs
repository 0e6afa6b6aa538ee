//! The catalog: features with their rate cards, and what each plan includes of them. The
//! writer decides gating and limits on a [`Catalog`] snapshot, cached in process: a change
//! made here is seen at once by this process and within [`CATALOG_TTL`] by other replicas.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use creditd_domain::calendar::Period;
use creditd_domain::entitlement::{Entitlement, PastDue, PlanRules};
use creditd_domain::pricing::RateCard;
use creditd_domain::views::Feature;
use creditd_domain::Credits;
use sqlx::Row;

use crate::db::{on, Conn, Fields};
use crate::{Result, Store, StoreError};

/// How long another replica's catalog change may go unseen here.
pub const CATALOG_TTL: Duration = Duration::from_secs(1);

/// Everything gating decides on, as of one read.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    /// Features some plan lists: using them needs a plan that includes them.
    pub gated: BTreeSet<String>,
    /// Plan id → its entitlements (archived plans too: their subscribers keep them).
    pub plans: HashMap<String, PlanRules>,
    /// The active free plan.
    pub free_plan: Option<String>,
    /// Active features by id.
    pub features: BTreeMap<String, Feature>,
}

impl Catalog {
    /// The rate card of a priced, active feature.
    pub fn rate_card(&self, feature: &str) -> Option<RateCard> {
        let f = self.features.get(feature)?;
        (!f.prices.is_empty()).then(|| RateCard {
            per: f.per,
            prices: f.prices.clone(),
        })
    }
}

/// The cached snapshot.
#[derive(Debug, Default)]
pub(crate) struct CatalogCache {
    slot: Mutex<Option<(Instant, Arc<Catalog>)>>,
    /// Whether a past-due subscription falls back to the free plan (configuration).
    past_due_free: AtomicBool,
}

impl CatalogCache {
    fn fresh(&self) -> Option<Arc<Catalog>> {
        let slot = self.slot.lock().expect("catalog cache poisoned");
        slot.as_ref()
            .filter(|(at, _)| at.elapsed() < CATALOG_TTL)
            .map(|(_, c)| c.clone())
    }

    pub(crate) fn invalidate(&self) {
        *self.slot.lock().expect("catalog cache poisoned") = None;
    }
}

/// A feature as the operator describes it.
#[derive(Clone, Debug)]
pub struct NewFeature {
    pub id: String,
    pub name: String,
    pub card: Option<RateCard>,
}

/// Changes to a feature; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct FeatureChange {
    pub name: Option<String>,
    pub card: Option<RateCard>,
}

const FEATURE_SELECT: &str = "SELECT f.id, f.name, f.per, f.active, f.created_at, f.updated_at, \
    (SELECT COUNT(*) FROM plan_features pf WHERE pf.feature_id = f.id) AS plans FROM features f";

fn feature_row(row: &impl Fields, prices: &mut HashMap<String, BTreeMap<String, Credits>>) -> Result<Feature> {
    let id: String = row.field("id")?;
    Ok(Feature {
        prices: prices.remove(&id).unwrap_or_default(),
        id,
        name: row.field("name")?,
        per: row.field("per")?,
        active: row.field("active")?,
        gated: row.field::<i64, _>("plans")? > 0,
        created: row.field("created_at")?,
        updated: row.field("updated_at")?,
    })
}

async fn all_prices(conn: &mut Conn<'_>) -> Result<HashMap<String, BTreeMap<String, Credits>>> {
    let rows: Vec<(String, String, i64)> = on!(conn, c => sqlx::query_as("SELECT feature_id, unit, price FROM feature_prices")
        .fetch_all(&mut **c)
        .await?);
    let mut prices: HashMap<String, BTreeMap<String, Credits>> = HashMap::new();
    for (feature, unit, price) in rows {
        prices
            .entry(feature)
            .or_default()
            .insert(unit, Credits::from_micros(price));
    }
    Ok(prices)
}

/// Plan id → its entitlements, read from `plan_features`.
pub(crate) async fn plan_features(conn: &mut Conn<'_>) -> Result<HashMap<String, PlanRules>> {
    let rows: Vec<(String, String, Option<i64>, Option<String>)> = on!(conn, c => sqlx::query_as(
        "SELECT plan_id, feature_id, usage_limit, period FROM plan_features",
    )
    .fetch_all(&mut **c)
    .await?);
    let mut plans: HashMap<String, PlanRules> = HashMap::new();
    for (plan, feature, limit, period) in rows {
        let entitlement = match (limit, period) {
            (None, None) => Entitlement::Included,
            (Some(limit), Some(period)) => Entitlement::Limited {
                limit,
                period: Period::parse(&period)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown period {period:?}")))?,
            },
            _ => return Err(StoreError::Corrupt(format!("plan {plan}: {feature} has half a limit"))),
        };
        let rules = plans.entry(plan.clone()).or_insert_with(|| PlanRules {
            plan,
            features: BTreeMap::new(),
        });
        rules.features.insert(feature, entitlement);
    }
    Ok(plans)
}

async fn replace_prices(conn: &mut Conn<'_>, feature: &str, card: &RateCard) -> Result<()> {
    on!(conn, c => {
        sqlx::query("DELETE FROM feature_prices WHERE feature_id = $1")
            .bind(feature)
            .execute(&mut **c)
            .await?;
        for (unit, price) in &card.prices {
            sqlx::query("INSERT INTO feature_prices (feature_id, unit, price) VALUES ($1, $2, $3)")
                .bind(feature)
                .bind(unit)
                .bind(price.micros())
                .execute(&mut **c)
                .await?;
        }
        sqlx::query("UPDATE features SET per = $2 WHERE id = $1")
            .bind(feature)
            .bind(card.per)
            .execute(&mut **c)
            .await?;
    });
    Ok(())
}

impl Store {
    /// Creates a feature; `None` when one with this id exists.
    pub async fn create_feature(&self, new: &NewFeature, now: i64) -> Result<Option<Feature>> {
        let mut tx = self.writer.begin().await?;
        let inserted = on!(tx.conn(), c => sqlx::query(
            "INSERT INTO features (id, name, per, active, created_at, updated_at) VALUES ($1, $2, 1, TRUE, $3, $3) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&new.id)
        .bind(&new.name)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
        if inserted == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        if let Some(card) = &new.card {
            replace_prices(&mut tx.conn(), &new.id, card).await?;
        }
        tx.commit().await?;
        self.catalog_cache.invalidate();
        self.feature(&new.id).await
    }

    /// Renames or re-prices a feature: a new price applies from now on (past usage keeps the
    /// price it recorded). `None` when there is no such feature.
    pub async fn update_feature(&self, id: &str, change: &FeatureChange, now: i64) -> Result<Option<Feature>> {
        let mut tx = self.writer.begin().await?;
        let found = on!(tx.conn(), c => sqlx::query("UPDATE features SET name = COALESCE($2, name), updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(&change.name)
            .bind(now)
            .execute(c)
            .await?
            .rows_affected());
        if found == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        if let Some(card) = &change.card {
            replace_prices(&mut tx.conn(), id, card).await?;
        }
        tx.commit().await?;
        self.catalog_cache.invalidate();
        self.feature(id).await
    }

    /// Stops offering a feature: it can no longer be priced by units; past usage keeps it.
    pub async fn archive_feature(&self, id: &str, now: i64) -> Result<Option<Feature>> {
        on!(&self.writer, p => sqlx::query("UPDATE features SET active = FALSE, updated_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(p)
            .await?
            .rows_affected());
        self.catalog_cache.invalidate();
        self.feature(id).await
    }

    pub async fn feature(&self, id: &str) -> Result<Option<Feature>> {
        let sql = format!("{FEATURE_SELECT} WHERE f.id = $1");
        let mut conn = self.pool.acquire().await?;
        on!(conn.conn(), c => {
            let mut prices = HashMap::new();
            for row in sqlx::query("SELECT unit, price FROM feature_prices WHERE feature_id = $1")
                .bind(id)
                .fetch_all(&mut *c)
                .await?
            {
                prices
                    .entry(id.to_string())
                    .or_insert_with(BTreeMap::new)
                    .insert(row.try_get(0)?, Credits::from_micros(row.try_get(1)?));
            }
            let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *c).await?;
            row.map(|r| feature_row(&r, &mut prices)).transpose()
        })
    }

    /// Features by id; only active ones unless `include_archived`.
    pub async fn features(&self, include_archived: bool) -> Result<Vec<Feature>> {
        let sql = format!("{FEATURE_SELECT} WHERE f.active OR $1 ORDER BY f.id");
        let mut pooled = self.pool.acquire().await?;
        let mut conn = pooled.conn();
        let mut prices = all_prices(&mut conn).await?;
        on!(conn, c => sqlx::query(&sql)
            .bind(include_archived)
            .fetch_all(c)
            .await?
            .iter()
            .map(|r| feature_row(r, &mut prices))
            .collect())
    }

    /// The catalog as gating sees it, from the cache when fresh.
    pub async fn catalog(&self) -> Result<Arc<Catalog>> {
        if let Some(catalog) = self.catalog_cache.fresh() {
            return Ok(catalog);
        }
        let mut conn = self.pool.acquire().await?;
        let catalog = Arc::new(load_catalog(&mut conn.conn()).await?);
        *self.catalog_cache.slot.lock().expect("catalog cache poisoned") = Some((Instant::now(), catalog.clone()));
        Ok(catalog)
    }

    /// How a past-due subscription is treated (default: it keeps its plan).
    pub fn set_past_due_policy(&self, policy: PastDue) {
        self.catalog_cache
            .past_due_free
            .store(policy == PastDue::Free, Ordering::Relaxed);
    }

    pub fn past_due_policy(&self) -> PastDue {
        if self.catalog_cache.past_due_free.load(Ordering::Relaxed) {
            PastDue::Free
        } else {
            PastDue::Plan
        }
    }

    pub(crate) fn catalog_changed(&self) {
        self.catalog_cache.invalidate();
    }
}

async fn load_catalog(conn: &mut Conn<'_>) -> Result<Catalog> {
    let plans = plan_features(conn).await?;
    let gated = plans.values().flat_map(|p| p.features.keys().cloned()).collect();
    let free_plan: Option<String> = on!(conn, c => sqlx::query("SELECT id FROM plans WHERE free AND active")
        .fetch_optional(&mut **c)
        .await?
        .map(|r| r.try_get(0))
        .transpose()?);
    let mut prices = all_prices(conn).await?;
    let sql = format!("{FEATURE_SELECT} WHERE f.active");
    let mut features = BTreeMap::new();
    on!(conn, c => {
        for row in sqlx::query(&sql).fetch_all(&mut **c).await? {
            let f = feature_row(&row, &mut prices)?;
            features.insert(f.id.clone(), f);
        }
    });
    Ok(Catalog {
        gated,
        plans,
        free_plan,
        features,
    })
}
