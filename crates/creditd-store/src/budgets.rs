//! Budgets per API key of a customer, and [`Gating`]: what the writer decides limits and
//! budgets on for the customers of one batch, loaded under their row locks and written back
//! with the balance in the same transaction.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use creditd_domain::calendar::Period;
use creditd_domain::entitlement::{admit, applicable_plan, BudgetRule, Counted, Entitlement, PastDue, PlanRules};
use creditd_domain::views::Budget;
use creditd_domain::{CommandError, Credits};
use sqlx::{AnyConnection, Row};

use crate::catalog::Catalog;
use crate::rowset::{RowSet, Ty};
use crate::{Dialect, Result, Store};

#[derive(Clone, Debug)]
pub struct NewBudget {
    pub customer: String,
    pub id: String,
    pub name: Option<String>,
    pub limit: Credits,
    pub period: Period,
}

/// The counter a limited feature's uses are kept in.
pub fn feature_counter(feature: &str) -> String {
    format!("feature:{feature}")
}

/// The counter a budget's credits (micro-credits) are kept in.
pub fn budget_counter(budget: &str) -> String {
    format!("budget:{budget}")
}

fn parse_period(text: &str) -> Result<Period> {
    Period::parse(text).ok_or_else(|| crate::StoreError::Corrupt(format!("unknown period {text:?}")))
}

impl Store {
    /// Creates or changes a budget; the count of the current period is kept. `None` when the
    /// customer does not exist.
    pub async fn put_budget(&self, new: &NewBudget, now: i64) -> Result<Option<(Budget, bool)>> {
        let exists = sqlx::query("SELECT 1 FROM customers WHERE id = $1")
            .bind(&new.customer)
            .fetch_optional(&self.pool)
            .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let before = self.budget(&new.customer, &new.id, now).await?;
        sqlx::query(
            "INSERT INTO budgets (customer_id, id, name, spend_limit, period, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (customer_id, id) DO UPDATE SET \
             name = excluded.name, spend_limit = excluded.spend_limit, period = excluded.period, \
             updated_at = excluded.updated_at",
        )
        .bind(&new.customer)
        .bind(&new.id)
        .bind(&new.name)
        .bind(new.limit.micros())
        .bind(new.period.as_str())
        .bind(now)
        .execute(&self.writer)
        .await?;
        let budget = self.budget(&new.customer, &new.id, now).await?;
        Ok(budget.map(|b| (b, before.is_none())))
    }

    pub async fn budget(&self, customer: &str, id: &str, now: i64) -> Result<Option<Budget>> {
        Ok(self.budgets(customer, now).await?.into_iter().find(|b| b.id == id))
    }

    /// A customer's budgets by id, with what was used of each this period.
    pub async fn budgets(&self, customer: &str, now: i64) -> Result<Vec<Budget>> {
        let mut conn = self.pool.acquire().await?;
        let rows = sqlx::query(
            "SELECT id, name, spend_limit, period, created_at FROM budgets WHERE customer_id = $1 ORDER BY id",
        )
        .bind(customer)
        .fetch_all(&mut *conn)
        .await?;
        let mut budgets = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get(0)?;
            let period = parse_period(&row.try_get::<String, _>(3)?)?;
            let rule = BudgetRule {
                id: id.clone(),
                limit: Credits::from_micros(row.try_get(2)?),
                period,
            };
            let (window, resets_at) = period.window(now);
            let used = Credits::from_micros(counter(&mut conn, customer, &budget_counter(&id), window).await?);
            budgets.push(Budget {
                id,
                customer: customer.to_string(),
                name: row.try_get(1)?,
                limit: rule.limit,
                period,
                used,
                remaining: rule.remaining(used),
                resets_at,
                created: row.try_get(4)?,
            });
        }
        Ok(budgets)
    }

    /// Customers after `after` (by id) with no grant whose reference is `prefix` + their id:
    /// those the free plan's monthly credits have not reached yet.
    pub async fn customers_without_grant(&self, prefix: &str, after: &str, limit: i64) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT c.id FROM customers c WHERE c.id > $2 AND NOT EXISTS \
             (SELECT 1 FROM grants g WHERE g.source = 'subscription' AND g.reference = $1 || c.id) \
             ORDER BY c.id LIMIT $3",
        )
        .bind(prefix)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// Uses of `feature` by `customer` in the window that starts at `window_start`.
    pub async fn feature_uses(&self, customer: &str, feature: &str, window_start: i64) -> Result<i64> {
        let mut conn = self.pool.acquire().await?;
        counter(&mut conn, customer, &feature_counter(feature), window_start).await
    }

    /// The plan that applies to a customer now: its subscription's, else the free plan.
    pub async fn applicable_plan(&self, customer: &str, catalog: &Catalog) -> Result<Option<String>> {
        let mut conn = self.pool.acquire().await?;
        let subscriptions = latest_subscriptions(&mut conn, self.dialect, [customer]).await?;
        let sub = subscriptions.get(customer);
        Ok(applicable_plan(
            sub.map(|(status, plan)| (status.as_str(), plan.as_deref())),
            catalog.free_plan.as_deref(),
            self.past_due_policy(),
        )
        .map(str::to_string))
    }
}

async fn counter(conn: &mut AnyConnection, customer: &str, counter: &str, window: i64) -> Result<i64> {
    let row =
        sqlx::query("SELECT used FROM usage_counters WHERE customer_id = $1 AND counter = $2 AND window_start = $3")
            .bind(customer)
            .bind(counter)
            .bind(window)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?.unwrap_or(0))
}

/// Each customer's most recently updated subscription: (status, plan).
async fn latest_subscriptions<'a>(
    conn: &mut AnyConnection,
    dialect: Dialect,
    customers: impl IntoIterator<Item = &'a str>,
) -> Result<HashMap<String, (String, Option<String>)>> {
    let mut ids = RowSet::new(dialect, &[Ty::Text]);
    for c in customers {
        ids.push([c.into()]);
    }
    let sql = format!(
        "SELECT customer_id, status, plan_id FROM subscriptions \
         WHERE customer_id IN (SELECT column1 FROM {} AS v) ORDER BY updated_at, created_at",
        ids.sql(1).0
    );
    let mut latest = HashMap::new();
    for row in ids.bind(sqlx::query(&sql)).fetch_all(&mut *conn).await? {
        // Oldest first: the last one read for a customer is its latest.
        latest.insert(row.try_get(0)?, (row.try_get(1)?, row.try_get(2)?));
    }
    Ok(latest)
}

/// A spend's customer, feature and budget, as gating needs them.
pub(crate) struct SpendKey<'a> {
    pub customer: &'a str,
    pub feature: Option<&'a str>,
    pub budget: Option<&'a str>,
    /// When a budget's reservation was made (a hold's creation), else now.
    pub placed_at: i64,
}

/// Limits and budgets of one batch's customers, decided in memory and written back with it.
pub(crate) struct Gating {
    catalog: Arc<Catalog>,
    /// Customer → the plan that applies to it.
    plans: HashMap<String, Option<String>>,
    budgets: HashMap<(String, String), BudgetRule>,
    /// (customer, counter, window start) → count, as loaded and as decided.
    loaded: HashMap<(String, String, i64), i64>,
    counts: HashMap<(String, String, i64), i64>,
}

impl Gating {
    /// Loads what `spends` need. Call with the customers' rows locked.
    pub(crate) async fn load(
        conn: &mut AnyConnection,
        dialect: Dialect,
        catalog: Arc<Catalog>,
        past_due: PastDue,
        spends: &[SpendKey<'_>],
        now: i64,
    ) -> Result<Gating> {
        let mut gating = Gating {
            catalog,
            plans: HashMap::new(),
            budgets: HashMap::new(),
            loaded: HashMap::new(),
            counts: HashMap::new(),
        };
        let gated: BTreeSet<&str> = spends
            .iter()
            .filter(|s| s.feature.is_some_and(|f| gating.catalog.gated.contains(f)))
            .map(|s| s.customer)
            .collect();
        if !gated.is_empty() {
            let subs = latest_subscriptions(conn, dialect, gated.iter().copied()).await?;
            for customer in gated {
                let sub = subs.get(customer).map(|(s, p)| (s.as_str(), p.as_deref()));
                let plan = applicable_plan(sub, gating.catalog.free_plan.as_deref(), past_due);
                gating.plans.insert(customer.to_string(), plan.map(str::to_string));
            }
        }
        let with_budget: BTreeSet<&str> = spends
            .iter()
            .filter(|s| s.budget.is_some())
            .map(|s| s.customer)
            .collect();
        for customer in with_budget {
            let rows = sqlx::query("SELECT id, spend_limit, period FROM budgets WHERE customer_id = $1")
                .bind(customer)
                .fetch_all(&mut *conn)
                .await?;
            for row in rows {
                let rule = BudgetRule {
                    id: row.try_get(0)?,
                    limit: Credits::from_micros(row.try_get(1)?),
                    period: parse_period(&row.try_get::<String, _>(2)?)?,
                };
                gating.budgets.insert((customer.to_string(), rule.id.clone()), rule);
            }
        }
        let keys: BTreeSet<(String, String, i64)> = spends.iter().flat_map(|s| gating.counter_keys(s, now)).collect();
        for (customer, name, window) in keys {
            let used = counter(conn, &customer, &name, window).await?;
            gating.loaded.insert((customer.clone(), name.clone(), window), used);
            gating.counts.insert((customer, name, window), used);
        }
        Ok(gating)
    }

    fn plan_rules(&self, customer: &str) -> Option<&PlanRules> {
        let plan = self.plans.get(customer)?.as_ref()?;
        self.catalog.plans.get(plan)
    }

    /// The counters a spend may change.
    fn counter_keys(&self, spend: &SpendKey<'_>, now: i64) -> Vec<(String, String, i64)> {
        let mut keys = Vec::new();
        if let Some(feature) = spend.feature {
            if let Some(rules) = self.plan_rules(spend.customer) {
                if let Some(Entitlement::Limited { period, .. }) = rules.features.get(feature) {
                    keys.push((
                        spend.customer.to_string(),
                        feature_counter(feature),
                        period.window(now).0,
                    ));
                }
            }
        }
        if let Some(budget) = spend.budget {
            if let Some(rule) = self.budgets.get(&(spend.customer.to_string(), budget.to_string())) {
                keys.push((
                    spend.customer.to_string(),
                    budget_counter(budget),
                    rule.period.window(spend.placed_at).0,
                ));
            }
        }
        keys
    }

    fn count(&self, customer: &str, name: &str, window: i64) -> i64 {
        self.counts
            .get(&(customer.to_string(), name.to_string(), window))
            .copied()
            .unwrap_or(0)
    }

    fn add(&mut self, customer: &str, name: String, window: i64, delta: i64) {
        let used = self.counts.entry((customer.to_string(), name, window)).or_insert(0);
        *used = (*used + delta).max(0);
    }

    /// Decides whether a spend of `amount` may go ahead (feature in plan and under its limit,
    /// budget not exceeded). Nothing is counted until [`Gating::commit`].
    pub(crate) fn decide(&self, spend: &SpendKey<'_>, amount: Credits, now: i64) -> Result<Admitted, CommandError> {
        let counted = match spend.feature {
            Some(feature) => admit(
                &self.catalog.gated,
                self.plan_rules(spend.customer),
                feature,
                |window| self.count(spend.customer, &feature_counter(feature), window),
                now,
            )
            .map_err(CommandError::Refused)?,
            None => None,
        };
        let budget = match spend.budget {
            Some(id) => {
                let rule = self
                    .budgets
                    .get(&(spend.customer.to_string(), id.to_string()))
                    .ok_or_else(|| CommandError::BudgetNotFound(id.to_string()))?;
                let window = rule.period.window(spend.placed_at).0;
                let used = Credits::from_micros(self.count(spend.customer, &budget_counter(id), window));
                if amount.is_positive() {
                    rule.allow(used, amount, window).map_err(CommandError::Refused)?;
                }
                Some(window)
            }
            None => None,
        };
        Ok(Admitted { counted, budget })
    }

    /// Counts an admitted spend: one use of a limited feature (when `count_use`), `amount` of
    /// the budget (negative gives back a reservation).
    pub(crate) fn commit(&mut self, spend: &SpendKey<'_>, admitted: &Admitted, count_use: bool, amount: i64) {
        if let (Some(feature), Some(counted), true) = (spend.feature, admitted.counted, count_use) {
            let Counted { window_start, .. } = counted;
            self.add(spend.customer, feature_counter(feature), window_start, 1);
        }
        if let (Some(budget), Some(window)) = (spend.budget, admitted.budget) {
            self.add(spend.customer, budget_counter(budget), window, amount);
        }
    }

    /// Gives a reservation back to its budget (a hold that expired), if the budget still exists.
    pub(crate) fn give_back(&mut self, customer: &str, budget: &str, placed_at: i64, amount: i64) {
        if let Some(rule) = self.budgets.get(&(customer.to_string(), budget.to_string())) {
            let window = rule.period.window(placed_at).0;
            self.add(customer, budget_counter(budget), window, -amount);
        }
    }

    /// The counters that changed: (customer, counter, window start, used).
    pub(crate) fn changed(&self) -> Vec<(&str, &str, i64, i64)> {
        let mut out: Vec<_> = self
            .counts
            .iter()
            .filter(|(k, v)| self.loaded.get(*k) != Some(*v))
            .map(|((c, n, w), v)| (c.as_str(), n.as_str(), *w, *v))
            .collect();
        out.sort();
        out
    }
}

/// What [`Gating::decide`] admitted: the windows to count the spend in.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Admitted {
    counted: Option<Counted>,
    budget: Option<i64>,
}
