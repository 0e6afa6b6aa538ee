//! The writer's accounts: recently used customers' states ([`CustomerState`]: grants, open
//! holds, debt, frozen) kept in memory, bounded (least recently used first out), so a batch
//! for a warm customer reads no grants or holds — only the customer's row, which it locks.
//!
//! Every batch writes `version + 1` into each customer row it locked; a cached state is used
//! only when its version is the one the locking statement returned (and its balances match
//! the row). Another replica's write, or anything else that changed the row, makes it stale:
//! it is loaded again from its rows ([`load_states`]) and the batch decided on that. A state
//! is taken out of the cache for the length of a batch and put back only once the batch
//! committed, so a rolled-back batch leaves nothing behind.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use creditd_domain::outbound::AlertState;
use creditd_domain::state::{Alerts, TopupTrigger};
use creditd_domain::{Account, Credits, CustomerState, Lot, OpenHold};
use sqlx::Row;

use crate::db::{on, Conn, Db, Fields};
use crate::persist::id_set;
use crate::rowset::RowSet;
use crate::{rows, Result, StoreError};

/// A customer's row as the locking statement returned it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LockedRow {
    pub(crate) version: i64,
    pub(crate) balance: i64,
    pub(crate) held: i64,
    pub(crate) debt: i64,
    pub(crate) frozen: i64,
}

impl LockedRow {
    fn matches(&self, state: &CustomerState) -> bool {
        let a = &state.account;
        (
            a.balance.micros(),
            a.held.micros(),
            a.debt.micros(),
            state.frozen.micros(),
        ) == (self.balance, self.held, self.debt, self.frozen)
    }
}

/// Bounded LRU of customers' states, safe to share between a writer's batches in flight.
#[derive(Debug)]
pub struct AccountCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Customer → (version, state, last use).
    entries: HashMap<String, (i64, CustomerState, u64)>,
    /// Last use → customer: the oldest is evicted first.
    by_use: BTreeMap<u64, String>,
    clock: u64,
    /// Open hold → its customer (a hold never changes owner), for the cached customers.
    hold_owners: HashMap<String, String>,
}

impl AccountCache {
    /// Keeps up to `capacity` customers; 0 keeps none (every batch loads its accounts).
    pub fn new(capacity: usize) -> AccountCache {
        AccountCache {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave the map half-changed: every change is one call.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the customer's state out when it is the one `row` describes; a stale one is
    /// dropped.
    pub(crate) fn take(&self, customer: &str, row: &LockedRow) -> Option<CustomerState> {
        let mut inner = self.lock();
        let (version, state, used) = inner.entries.remove(customer)?;
        inner.by_use.remove(&used);
        (version == row.version && row.matches(&state)).then_some(state)
    }

    /// Puts back a state as committed at `version`; evicts the least recently used beyond
    /// the capacity.
    pub(crate) fn put(&self, version: i64, state: CustomerState) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        inner.clock += 1;
        let used = inner.clock;
        for id in state.holds.keys() {
            inner.hold_owners.insert(id.clone(), state.id.clone());
        }
        inner.by_use.insert(used, state.id.clone());
        if let Some((_, _, old)) = inner.entries.insert(state.id.clone(), (version, state, used)) {
            inner.by_use.remove(&old);
        }
        while inner.entries.len() > self.capacity {
            let Some((_, oldest)) = inner.by_use.pop_first() else {
                break;
            };
            if let Some((_, evicted, _)) = inner.entries.remove(&oldest) {
                for id in evicted.holds.keys() {
                    inner.hold_owners.remove(id);
                }
            }
        }
    }

    /// The customer of a hold, when known without a read.
    pub(crate) fn hold_owner(&self, hold: &str) -> Option<String> {
        self.lock().hold_owners.get(hold).cloned()
    }

    /// Holds that are no longer open.
    pub(crate) fn forget_holds<'a>(&self, holds: impl IntoIterator<Item = &'a str>) {
        let mut inner = self.lock();
        for id in holds {
            inner.hold_owners.remove(id);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

/// Locks the customers' rows — in id order on PostgreSQL, so replicas never deadlock; the
/// database's write lock on SQLite — and returns them as they are.
pub(crate) async fn lock_customers(
    conn: &mut Conn<'_>,
    customers: &BTreeSet<String>,
    now: i64,
) -> Result<BTreeMap<String, LockedRow>> {
    if customers.is_empty() {
        return Ok(BTreeMap::new());
    }
    let ids = id_set(conn.dialect(), customers.iter().map(String::as_str));
    let (source, now_param) = ids.sql(1);
    match conn {
        Db::Pg(c) => {
            let sql = format!(
                "SELECT id, version, balance, held, debt, frozen FROM customers \
                 WHERE id IN (SELECT column1 FROM {source} AS v) ORDER BY id FOR UPDATE"
            );
            let rows = ids.bind(sqlx::query(&sql)).fetch_all(&mut **c).await?;
            rows.iter().map(locked_row).collect()
        }
        Db::Lite(c) => {
            let sql = format!(
                "UPDATE customers SET updated_at = ${now_param} WHERE id IN (SELECT column1 FROM {source} AS v) \
                 RETURNING id, version, balance, held, debt, frozen"
            );
            let rows = ids.bind(sqlx::query(&sql)).bind(now).fetch_all(&mut **c).await?;
            rows.iter().map(locked_row).collect()
        }
    }
}

/// A row of [`lock_customers`]: id, version, balance, held, debt, frozen.
fn locked_row(row: &impl Fields) -> Result<(String, LockedRow)> {
    let locked = LockedRow {
        version: row.field(1)?,
        balance: row.field(2)?,
        held: row.field(3)?,
        debt: row.field(4)?,
        frozen: row.field(5)?,
    };
    Ok((row.field(0)?, locked))
}

/// The customers' low-balance alerts and enabled auto top-ups.
async fn load_alerts(conn: &mut Conn<'_>, ids: &RowSet) -> Result<HashMap<String, Alerts>> {
    let sql = format!(
        "SELECT c.id, c.low_balance_threshold, c.balance_alert, a.threshold, a.armed FROM customers c \
         LEFT JOIN auto_topups a ON a.customer_id = c.id AND a.enabled \
         WHERE c.id IN (SELECT column1 FROM {} AS v)",
        ids.sql(1).0
    );
    let mut out = HashMap::new();
    on!(conn, c => {
        for row in ids.bind(sqlx::query(&sql)).fetch_all(&mut **c).await? {
            let state: String = row.try_get(2)?;
            let state = AlertState::parse(&state)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown alert state {state:?}")))?;
            let topup = match row.try_get::<Option<i64>, _>(3)? {
                Some(threshold) => Some(TopupTrigger {
                    threshold: Credits::from_micros(threshold),
                    armed: row.try_get::<Option<bool>, _>(4)? == Some(true),
                }),
                None => None,
            };
            let alerts = Alerts {
                state,
                threshold: row.try_get::<Option<i64>, _>(1)?.map(Credits::from_micros),
                topup,
            };
            out.insert(row.try_get::<String, _>(0)?, alerts);
        }
    });
    Ok(out)
}

/// Loads locked customers' states from their rows: live grants and open holds, checked
/// against the customer row.
pub(crate) async fn load_states(
    conn: &mut Conn<'_>,
    customers: &BTreeMap<String, LockedRow>,
    now: i64,
) -> Result<Vec<CustomerState>> {
    if customers.is_empty() {
        return Ok(Vec::new());
    }
    let dialect = conn.dialect();
    let ids = id_set(dialect, customers.keys().map(String::as_str));
    let sql = format!(
        "SELECT customer_id, id, remaining, priority, expires_at, seq FROM grants \
         WHERE customer_id IN (SELECT column1 FROM {} AS v) AND remaining > 0",
        ids.sql(1).0
    );
    let mut lots: HashMap<String, Vec<Lot>> = HashMap::new();
    on!(conn, c => {
        for row in ids.bind(sqlx::query(&sql)).fetch_all(&mut **c).await? {
            lots.entry(row.try_get(0)?).or_default().push(Lot {
                grant_id: row.try_get(1)?,
                remaining: Credits::from_micros(row.try_get(2)?),
                priority: row.try_get::<i64, _>(3)? as i32,
                expires_at: row.try_get(4)?,
                seq: row.try_get(5)?,
            });
        }
    });
    let mut holds: HashMap<String, BTreeMap<String, OpenHold>> = HashMap::new();
    // `held` is the sum of the open holds (each > 0): with none held there are none to read.
    let holding: Vec<&str> = customers
        .iter()
        .filter(|(_, row)| row.held > 0)
        .map(|(id, _)| id.as_str())
        .collect();
    if !holding.is_empty() {
        let ids = id_set(dialect, holding);
        let sql = format!(
            "SELECT customer_id, id, amount, feature, metadata, expires_at, created_at, budget, budget_window FROM holds \
             WHERE customer_id IN (SELECT column1 FROM {} AS v) AND status = 'open'",
            ids.sql(1).0
        );
        on!(conn, c => {
            for row in ids.bind(sqlx::query(&sql)).fetch_all(&mut **c).await? {
                let hold = OpenHold {
                    id: row.try_get(1)?,
                    amount: Credits::from_micros(row.try_get(2)?),
                    feature: row.try_get(3)?,
                    metadata: rows::metadata(&row, "metadata")?,
                    expires_at: row.try_get(5)?,
                    created: row.try_get(6)?,
                    budget: row
                        .try_get::<Option<String>, _>(7)?
                        .zip(row.try_get::<Option<i64>, _>(8)?),
                };
                holds.entry(row.try_get(0)?).or_default().insert(hold.id.clone(), hold);
            }
        });
    }
    let mut counters = load_counters(conn, customers, now).await?;
    let mut alerts = load_alerts(conn, &ids).await?;
    let mut states = Vec::with_capacity(customers.len());
    for (id, row) in customers {
        let state = CustomerState {
            id: id.clone(),
            account: Account {
                balance: Credits::from_micros(row.balance),
                held: Credits::from_micros(row.held),
                debt: Credits::from_micros(row.debt),
                lots: lots.remove(id).unwrap_or_default(),
            },
            frozen: Credits::from_micros(row.frozen),
            holds: holds.remove(id).unwrap_or_default(),
            counters: counters.remove(id).unwrap_or_default(),
            alerts: alerts.remove(id).unwrap_or_default(),
        };
        if !state.is_consistent() {
            let sum: i64 = state.account.lots.iter().map(|l| l.remaining.micros()).sum();
            return Err(StoreError::Corrupt(format!(
                "customer {id}: balance {} but grants hold {sum} less debt {} (held {}, open holds {})",
                row.balance,
                row.debt,
                row.held,
                state.holds.len()
            )));
        }
        states.push(state);
    }
    Ok(states)
}

/// How far back a counter's window may start and still be decided on: a month's window
/// (31 days) of a hold placed up to the longest hold TTL (30 days) ago.
const COUNTER_HORIZON_SECONDS: i64 = 62 * 86_400;

/// The limit and budget counters of the current periods (and `total` budgets, window 0).
async fn load_counters(
    conn: &mut Conn<'_>,
    customers: &BTreeMap<String, LockedRow>,
    now: i64,
) -> Result<HashMap<String, creditd_domain::gate::Counters>> {
    let ids = id_set(conn.dialect(), customers.keys().map(String::as_str));
    let (source, next) = ids.sql(1);
    let sql = format!(
        "SELECT customer_id, counter, window_start, used FROM usage_counters \
         WHERE customer_id IN (SELECT column1 FROM {source} AS v) AND (window_start = 0 OR window_start >= ${next})"
    );
    let mut counters: HashMap<String, creditd_domain::gate::Counters> = HashMap::new();
    on!(conn, c => {
        let query = ids.bind(sqlx::query(&sql)).bind(now - COUNTER_HORIZON_SECONDS);
        for row in query.fetch_all(&mut **c).await? {
            let key = (row.try_get::<String, _>(1)?, row.try_get::<i64, _>(2)?);
            counters
                .entry(row.try_get(0)?)
                .or_default()
                .insert(key, row.try_get(3)?);
        }
    });
    Ok(counters)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(version: i64) -> LockedRow {
        LockedRow {
            version,
            balance: 0,
            held: 0,
            debt: 0,
            frozen: 0,
        }
    }

    #[test]
    fn a_state_is_used_only_at_its_version_and_the_least_recently_used_goes_first() {
        let cache = AccountCache::new(2);
        cache.put(3, CustomerState::new("a"));
        cache.put(1, CustomerState::new("b"));
        assert_eq!(cache.take("a", &row(4)), None, "stale: another writer committed");
        assert_eq!(cache.take("a", &row(3)), None, "dropped when found stale");
        cache.put(1, CustomerState::new("c"));
        cache.put(1, CustomerState::new("d"));
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.take("b", &row(1)), None, "evicted: used least recently");
        assert_eq!(cache.take("c", &row(1)), Some(CustomerState::new("c")));
        assert_eq!(cache.take("c", &row(1)), None, "taken out while its batch runs");
    }

    #[test]
    fn a_state_whose_balances_differ_from_the_row_is_stale() {
        let cache = AccountCache::new(4);
        cache.put(1, CustomerState::new("a"));
        let moved = LockedRow { balance: 5, ..row(1) };
        assert_eq!(cache.take("a", &moved), None);
    }

    #[test]
    fn a_cache_of_nothing_keeps_nothing() {
        let cache = AccountCache::new(0);
        cache.put(1, CustomerState::new("a"));
        assert_eq!(cache.take("a", &row(1)), None);
    }
}
