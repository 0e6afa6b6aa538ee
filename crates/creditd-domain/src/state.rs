//! What the writer keeps of one customer between batches: the account (grants, debt), the
//! open holds and the frozen credits — everything a decision on that customer needs.
//!
//! The writer caches these ([`crate::book`] is one batch's working set of them); storage
//! loads one from its rows when the cache has none or a stale one. **Extension point:** a
//! feature decided in the same transaction as the balance (per-period feature limits, API-key
//! budgets, low-balance thresholds and their armed flags) adds its fields here, storage loads
//! them with the rest of the customer (`creditd-store`'s `accounts.rs`) and saves them with
//! the batch (`persist.rs`); every cached copy is then exactly as fresh as the balance.

use std::collections::BTreeMap;

use crate::account::Account;
use crate::amount::Credits;
use crate::outbound::AlertState;

/// An open hold: reserved credits, released or spent later.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenHold {
    pub id: String,
    pub amount: Credits,
    pub feature: Option<String>,
    pub metadata: serde_json::Value,
    pub expires_at: i64,
    pub created: i64,
    /// The budget the hold reserves against, and the window its reservation counts in.
    pub budget: Option<(String, i64)>,
}

/// One customer's spendable state.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomerState {
    pub id: String,
    /// Balance, held, debt and the grants with something remaining.
    pub account: Account,
    /// Credits frozen by open disputes (outside the balance).
    pub frozen: Credits,
    /// The open holds by id; their amounts sum to `account.held`.
    pub holds: BTreeMap<String, OpenHold>,
    /// Uses of limited features and credits of budgets per period ([`crate::gate`]).
    pub counters: crate::gate::Counters,
    /// Low-balance alerts and auto top-up ([`crate::announce`]).
    pub alerts: Alerts,
}

/// Where a customer's alerts stand: decided with the balance, cached and saved with it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Alerts {
    pub state: AlertState,
    /// The customer's own low-balance threshold (`None`: the configured default).
    pub threshold: Option<Credits>,
    /// Auto top-up, while it is enabled.
    pub topup: Option<TopupTrigger>,
}

/// An enabled auto top-up: below `threshold` it queues a run, once per crossing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopupTrigger {
    pub threshold: Credits,
    /// At or above the threshold since the last run: the next fall below it tops up.
    pub armed: bool,
}

impl CustomerState {
    /// A customer with nothing yet.
    pub fn new(id: &str) -> CustomerState {
        CustomerState {
            id: id.to_string(),
            account: Account::new(Credits::ZERO, Credits::ZERO, Vec::new()),
            frozen: Credits::ZERO,
            holds: BTreeMap::new(),
            counters: Default::default(),
            alerts: Alerts::default(),
        }
    }

    /// The invariants storage must have kept (and every decision keeps).
    pub fn is_consistent(&self) -> bool {
        let lots: i64 = self.account.lots.iter().map(|l| l.remaining.micros()).sum();
        let held: i64 = self.holds.values().map(|h| h.amount.micros()).sum();
        lots - self.account.debt.micros() == self.account.balance.micros()
            && held == self.account.held.micros()
            && self.account.debt.micros() >= 0
            && self.frozen.micros() >= 0
            && self.account.lots.iter().all(|l| l.remaining.micros() >= 0)
    }

    /// Drops the grants with nothing left: storage loads only live ones, so a cached account
    /// pruned after each batch is the account a reload would give.
    pub fn prune(&mut self) {
        self.account.lots.retain(|l| l.remaining.is_positive());
    }
}
