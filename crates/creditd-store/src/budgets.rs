//! Budgets per API key of a customer; the [`Gates`] a batch decides limits and budgets on
//! (read under the customers' locks), and the rows those decisions write with the balance
//! ([`Effect::Counter`], [`Effect::Units`]).

use std::collections::{BTreeSet, HashMap};

use creditd_domain::calendar::Period;
use creditd_domain::entitlement::{applicable_plan, BudgetRule, PastDue};
use creditd_domain::gate::{budget_counter, feature_counter, Gates};
use creditd_domain::views::Budget;
use creditd_domain::{Book, Command, Credits, Effect};
use sqlx::Row;

use crate::catalog::Catalog;
use crate::db::{on, Conn};
use crate::persist::Part;
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

fn parse_period(text: &str) -> Result<Period> {
    Period::parse(text).ok_or_else(|| crate::StoreError::Corrupt(format!("unknown period {text:?}")))
}

impl Store {
    /// Creates or changes a budget; the count of the current period is kept. `None` when the
    /// customer does not exist.
    pub async fn put_budget(&self, new: &NewBudget, now: i64) -> Result<Option<(Budget, bool)>> {
        let exists = on!(&self.pool, p => sqlx::query("SELECT 1 FROM customers WHERE id = $1")
            .bind(&new.customer)
            .fetch_optional(p)
            .await?
            .is_some());
        if !exists {
            return Ok(None);
        }
        let before = self.budget(&new.customer, &new.id, now).await?;
        on!(&self.writer, p => sqlx::query(
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
        .execute(p)
        .await?
        .rows_affected());
        let budget = self.budget(&new.customer, &new.id, now).await?;
        Ok(budget.map(|b| (b, before.is_none())))
    }

    pub async fn budget(&self, customer: &str, id: &str, now: i64) -> Result<Option<Budget>> {
        Ok(self.budgets(customer, now).await?.into_iter().find(|b| b.id == id))
    }

    /// A customer's budgets by id, with what was used of each this period.
    pub async fn budgets(&self, customer: &str, now: i64) -> Result<Vec<Budget>> {
        let mut pooled = self.pool.acquire().await?;
        let mut conn = pooled.conn();
        let rules = on!(&mut conn, c => {
            let rows = sqlx::query(
                "SELECT id, name, spend_limit, period, created_at FROM budgets WHERE customer_id = $1 ORDER BY id",
            )
            .bind(customer)
            .fetch_all(&mut **c)
            .await?;
            rows.iter()
                .map(|row| {
                    let rule = BudgetRule {
                        id: row.try_get(0)?,
                        limit: Credits::from_micros(row.try_get(2)?),
                        period: parse_period(&row.try_get::<String, _>(3)?)?,
                    };
                    Ok((rule, row.try_get::<Option<String>, _>(1)?, row.try_get::<i64, _>(4)?))
                })
                .collect::<Result<Vec<_>>>()?
        });
        let mut budgets = Vec::with_capacity(rules.len());
        for (rule, name, created) in rules {
            let (window, resets_at) = rule.period.window(now);
            let used = Credits::from_micros(counter(&mut conn, customer, &budget_counter(&rule.id), window).await?);
            budgets.push(Budget {
                customer: customer.to_string(),
                name,
                limit: rule.limit,
                period: rule.period,
                used,
                remaining: rule.remaining(used),
                resets_at,
                created,
                id: rule.id,
            });
        }
        Ok(budgets)
    }

    /// Customers after `after` (by id) with no grant whose reference is `prefix` + their id:
    /// those the free plan's monthly credits have not reached yet.
    pub async fn customers_without_grant(&self, prefix: &str, after: &str, limit: i64) -> Result<Vec<String>> {
        on!(&self.pool, p => {
            let rows = sqlx::query(
                "SELECT c.id FROM customers c WHERE c.id > $2 AND NOT EXISTS \
                 (SELECT 1 FROM grants g WHERE g.source = 'subscription' AND g.reference = $1 || c.id) \
                 ORDER BY c.id LIMIT $3",
            )
            .bind(prefix)
            .bind(after)
            .bind(limit)
            .fetch_all(p)
            .await?;
            rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
        })
    }

    /// Uses of `feature` by `customer` in the window that starts at `window_start`.
    pub async fn feature_uses(&self, customer: &str, feature: &str, window_start: i64) -> Result<i64> {
        let mut pooled = self.pool.acquire().await?;
        counter(&mut pooled.conn(), customer, &feature_counter(feature), window_start).await
    }

    /// The plan that applies to a customer now: its subscription's, else the free plan.
    pub async fn applicable_plan(&self, customer: &str, catalog: &Catalog) -> Result<Option<String>> {
        let mut pooled = self.pool.acquire().await?;
        let subscriptions = latest_subscriptions(&mut pooled.conn(), [customer]).await?;
        let sub = subscriptions.get(customer);
        Ok(applicable_plan(
            sub.map(|(status, plan)| (status.as_str(), plan.as_deref())),
            catalog.free_plan.as_deref(),
            self.past_due_policy(),
        )
        .map(str::to_string))
    }
}

async fn counter(conn: &mut Conn<'_>, customer: &str, counter: &str, window: i64) -> Result<i64> {
    let used = on!(conn, c => {
        let row =
            sqlx::query("SELECT used FROM usage_counters WHERE customer_id = $1 AND counter = $2 AND window_start = $3")
                .bind(customer)
                .bind(counter)
                .bind(window)
                .fetch_optional(&mut **c)
                .await?;
        row.map(|r| r.try_get(0)).transpose()?
    });
    Ok(used.unwrap_or(0))
}

/// Each customer's most recently updated subscription: (status, plan).
async fn latest_subscriptions<'a>(
    conn: &mut Conn<'_>,
    customers: impl IntoIterator<Item = &'a str>,
) -> Result<HashMap<String, (String, Option<String>)>> {
    let mut ids = RowSet::new(conn.dialect(), &[Ty::Text]);
    for c in customers {
        ids.push([c.into()]);
    }
    let sql = format!(
        "SELECT customer_id, status, plan_id FROM subscriptions \
         WHERE customer_id IN (SELECT column1 FROM {} AS v) ORDER BY updated_at, created_at",
        ids.sql(1).0
    );
    let mut latest = HashMap::new();
    on!(conn, c => {
        for row in ids.bind(sqlx::query(&sql)).fetch_all(&mut **c).await? {
            // Oldest first: the last one read for a customer is its latest.
            latest.insert(row.try_get(0)?, (row.try_get(1)?, row.try_get(2)?));
        }
    });
    Ok(latest)
}

/// Reads what the batch's spends are gated on, with their customers locked and admitted: the
/// catalog's plans, the plan that applies to each customer spending a gated feature, and the
/// budgets the spends (and the holds they finish) name. Nothing for spends that name neither.
pub(crate) async fn gates(
    conn: &mut Conn<'_>,
    commands: &[&Command],
    book: &mut Book,
    catalog: &Catalog,
    past_due: PastDue,
) -> Result<()> {
    let mut gated_customers = BTreeSet::new();
    let mut budget_customers = BTreeSet::new();
    for command in commands {
        let (customer, feature, budget) = match command {
            Command::Usage(u) => (u.customer.as_str(), Some(u.feature.as_str()), u.budget.is_some()),
            Command::CreateHold(h) => (h.customer.as_str(), h.feature.as_deref(), h.budget.is_some()),
            Command::CaptureHold { hold, .. } => {
                let Some(owner) = book.facts.hold_owners.get(hold) else {
                    continue;
                };
                let reserved = book
                    .customers
                    .get(owner)
                    .and_then(|s| s.holds.get(hold))
                    .is_some_and(|h| h.budget.is_some());
                (owner.as_str(), None, reserved)
            }
            _ => continue,
        };
        if feature.is_some_and(|f| catalog.gated.contains(f)) {
            gated_customers.insert(customer.to_string());
        }
        if budget {
            budget_customers.insert(customer.to_string());
        }
    }
    let mut gates = Gates {
        gated: catalog.gated.clone(),
        plans: catalog.plans.clone(),
        ..Gates::default()
    };
    if !gated_customers.is_empty() {
        let subs = latest_subscriptions(conn, gated_customers.iter().map(String::as_str)).await?;
        for customer in gated_customers {
            let sub = subs.get(&customer).map(|(s, p)| (s.as_str(), p.as_deref()));
            let plan = applicable_plan(sub, catalog.free_plan.as_deref(), past_due).map(str::to_string);
            gates.customer_plans.insert(customer, plan);
        }
    }
    for customer in budget_customers {
        on!(&mut *conn, c => {
            let rows = sqlx::query("SELECT id, spend_limit, period FROM budgets WHERE customer_id = $1")
                .bind(&customer)
                .fetch_all(&mut **c)
                .await?;
            for row in rows {
                let rule = BudgetRule {
                    id: row.try_get(0)?,
                    limit: Credits::from_micros(row.try_get(1)?),
                    period: parse_period(&row.try_get::<String, _>(2)?)?,
                };
                gates.budgets.insert((customer.clone(), rule.id.clone()), rule);
            }
        });
    }
    book.facts.gates = gates;
    Ok(())
}

/// The counters and units the batch's decisions wrote: each counter once, as it ended up.
pub(crate) fn effect_parts(dialect: Dialect, effects: &[Effect], per_part: usize) -> Vec<Part> {
    let mut counters: HashMap<(&str, &str, i64), i64> = HashMap::new();
    let mut units = Vec::new();
    for effect in effects {
        match effect {
            Effect::Counter {
                customer,
                counter,
                window_start,
                used,
            } => {
                counters.insert((customer.as_str(), counter.as_str(), *window_start), *used);
            }
            Effect::Units {
                reference,
                kind,
                customer,
                feature,
                priced,
            } => {
                for (unit, quantity) in &priced.units {
                    units.push((reference, *kind, customer, feature, unit, *quantity, priced));
                }
            }
            // Outbound events and top-up runs: crate::effects writes them.
            Effect::Event { .. } | Effect::TopupQueued { .. } => {}
        }
    }
    let mut counters: Vec<_> = counters.into_iter().collect();
    counters.sort();
    let mut parts = Vec::new();
    for chunk in counters.chunks(per_part) {
        let mut rows = RowSet::new(dialect, &[Ty::Text, Ty::Text, Ty::Int, Ty::Int]);
        for ((customer, counter, window), used) in chunk {
            rows.push([(*customer).into(), (*counter).into(), (*window).into(), (*used).into()]);
        }
        parts.push(Part {
            what: "counters saved",
            rows,
            // `WHERE true`: SQLite needs it before an upsert clause on an `INSERT … SELECT`.
            sql: |source, now| {
                format!(
                    "INSERT INTO usage_counters (customer_id, counter, window_start, used) \
                     SELECT v.column1, v.column2, v.column3, v.column4 FROM {source} AS v WHERE ${now} IS NOT NULL \
                     ON CONFLICT (customer_id, counter, window_start) DO UPDATE SET used = excluded.used"
                )
            },
            rows_expected: Some(chunk.len()),
            race: false,
        });
    }
    for chunk in units.chunks(per_part) {
        const TYPES: &[Ty] = &[
            Ty::Text,
            Ty::Text,
            Ty::Text,
            Ty::Text,
            Ty::Text,
            Ty::Int,
            Ty::Int,
            Ty::Int,
            Ty::Int,
        ];
        let mut rows = RowSet::new(dialect, TYPES);
        for (reference, kind, customer, feature, unit, quantity, priced) in chunk {
            rows.push([
                reference.as_str().into(),
                (*kind).into(),
                customer.as_str().into(),
                feature.as_str().into(),
                unit.as_str().into(),
                (*quantity).into(),
                priced.prices[*unit].micros().into(),
                priced.per.into(),
                priced.amount.micros().into(),
            ]);
        }
        parts.push(Part {
            what: "units recorded",
            rows,
            sql: |source, now| {
                format!(
                    "INSERT INTO usage_units (reference, kind, customer_id, feature, unit, quantity, price, per, amount, created_at) \
                     SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8, v.column9, ${now} \
                     FROM {source} AS v"
                )
            },
            rows_expected: Some(chunk.len()),
            race: false,
        });
    }
    parts
}
