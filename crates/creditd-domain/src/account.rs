//! One customer's credits: grants (lots), holds, and the movements every change produces.
//!
//! Storage loads an [`Account`] inside its write transaction, asks it what a command does,
//! and writes back exactly the [`Movement`]s it returns. The arithmetic lives here, once.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::amount::Credits;

/// The most credits one account may hold: four times the largest single amount, far below
/// i64's limit, so that a balance, its holds and the sums of them never overflow.
pub const MAX_BALANCE: Credits = Credits::from_micros(4 * Credits::MAX.micros());

/// Grants with equal priority: lower numbers are spent first (Stripe's convention).
pub const DEFAULT_PRIORITY: i32 = 50;
pub const MAX_PRIORITY: i32 = 100;

/// What a ledger entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// Credits added by a grant.
    Grant,
    /// Credits spent by a usage record or a captured hold.
    Usage,
    /// A grant's unspent remainder removed at its expiry.
    Expire,
    /// Credits taken back because their payment was refunded or a dispute lost. Without a
    /// grant, the part no grant could cover: debt.
    Clawback,
    /// Credits made unspendable while their payment is disputed.
    Freeze,
    /// Frozen credits returned to their grant (dispute won, or before a loss's clawback).
    Unfreeze,
    /// Debt paid from a grant: a negative leg on the grant and a positive one on the debt.
    DebtPayment,
}

impl EntryKind {
    pub const ALL: [EntryKind; 7] = [
        EntryKind::Grant,
        EntryKind::Usage,
        EntryKind::Expire,
        EntryKind::Clawback,
        EntryKind::Freeze,
        EntryKind::Unfreeze,
        EntryKind::DebtPayment,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EntryKind::Grant => "grant",
            EntryKind::Usage => "usage",
            EntryKind::Expire => "expire",
            EntryKind::Clawback => "clawback",
            EntryKind::Freeze => "freeze",
            EntryKind::Unfreeze => "unfreeze",
            EntryKind::DebtPayment => "debt_payment",
        }
    }

    pub fn parse(s: &str) -> Option<EntryKind> {
        EntryKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A grant as the spending algorithm sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lot {
    pub grant_id: String,
    pub remaining: Credits,
    pub priority: i32,
    /// Unix seconds; `None` never expires.
    pub expires_at: Option<i64>,
    /// Creation order: the oldest is spent first among equals.
    pub seq: i64,
}

impl Lot {
    pub fn is_live(&self, now: i64) -> bool {
        self.remaining.is_positive() && self.expires_at.is_none_or(|at| at > now)
    }
}

/// SPEC spending order: priority, then earliest expiry (no expiry last), then oldest.
pub fn spending_order(a: &Lot, b: &Lot) -> Ordering {
    let expiry = match (a.expires_at, b.expires_at) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    a.priority.cmp(&b.priority).then(expiry).then(a.seq.cmp(&b.seq))
}

/// One balance change: becomes one immutable ledger entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Movement {
    pub grant_id: String,
    pub kind: EntryKind,
    /// Signed: positive adds credits, negative takes them.
    pub amount: Credits,
    pub balance_after: Credits,
}

/// Not enough available credits; nothing was changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("insufficient credits: {available} available")]
pub struct Insufficient {
    pub available: Credits,
}

/// A change to the customer's debt: an entry with no grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DebtMovement {
    pub kind: EntryKind,
    /// Negative when debt grows (a clawback nothing could cover), positive when it is paid.
    pub amount: Credits,
    pub balance_after: Credits,
}

/// Credits that must leave whatever is available (a clawback): from grants, then as debt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Taken {
    pub movements: Vec<Movement>,
    pub debt: Option<DebtMovement>,
}

/// A customer's spendable state inside one write transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Σ lots' remaining − debt, kept alongside so every movement can be checked against it.
    /// Negative only through debt.
    pub balance: Credits,
    /// Σ open holds.
    pub held: Credits,
    /// Credits owed after clawbacks no grant could cover; paid first by the next credits.
    pub debt: Credits,
    /// Grants with something remaining, in any order.
    pub lots: Vec<Lot>,
}

impl Account {
    /// Builds the state, asserting the invariant storage must have kept.
    pub fn new(balance: Credits, held: Credits, lots: Vec<Lot>) -> Account {
        Account::with_debt(balance, held, Credits::ZERO, lots)
    }

    pub fn with_debt(balance: Credits, held: Credits, debt: Credits, lots: Vec<Lot>) -> Account {
        let account = Account {
            balance,
            held,
            debt,
            lots,
        };
        account.assert_consistent();
        account
    }

    pub fn assert_consistent(&self) {
        let sum = self.lots.iter().map(|l| l.remaining.micros()).sum::<i64>();
        assert_eq!(
            sum - self.debt.micros(),
            self.balance.micros(),
            "balance must equal the grants' remaining less debt"
        );
        assert!(self.held.micros() >= 0, "held credits cannot be negative");
        assert!(self.debt.micros() >= 0, "debt cannot be negative");
        assert!(
            self.lots.iter().all(|l| l.remaining.micros() >= 0),
            "a grant's remaining cannot be negative"
        );
    }

    /// Credits that can be spent now: balance minus open holds (negative when grants
    /// backing a hold expired).
    pub fn available(&self) -> Credits {
        Credits::from_micros(self.balance.micros() - self.held.micros())
    }

    fn apply(&mut self, lot_index: usize, kind: EntryKind, amount: Credits) -> Movement {
        let lot = &mut self.lots[lot_index];
        let before = self.balance;
        lot.remaining = lot.remaining.checked_add(amount).expect("grant remaining overflow");
        assert!(lot.remaining.micros() >= 0, "a movement took a grant below zero");
        self.balance = before.checked_add(amount).expect("balance overflow");
        assert_eq!(self.balance.micros(), before.micros() + amount.micros());
        Movement {
            grant_id: lot.grant_id.clone(),
            kind,
            amount,
            balance_after: self.balance,
        }
    }

    /// Removes the remainders of grants that expired at or before `now`.
    pub fn expire_due(&mut self, now: i64) -> Vec<Movement> {
        let mut due: Vec<usize> = (0..self.lots.len())
            .filter(|&i| {
                let lot = &self.lots[i];
                lot.remaining.is_positive() && lot.expires_at.is_some_and(|at| at <= now)
            })
            .collect();
        due.sort_by(|&a, &b| spending_order(&self.lots[a], &self.lots[b]));
        due.into_iter()
            .map(|i| {
                let remaining = self.lots[i].remaining;
                self.apply(i, EntryKind::Expire, Credits::from_micros(-remaining.micros()))
            })
            .collect()
    }

    /// Expires a grant's whole remainder now, whatever its expiry (a period's allowance
    /// replaced by the next period's).
    pub fn expire_now(&mut self, grant_id: &str) -> Option<Movement> {
        let index = self
            .lots
            .iter()
            .position(|l| l.grant_id == grant_id && l.remaining.is_positive())?;
        let remaining = self.lots[index].remaining;
        Some(self.apply(index, EntryKind::Expire, Credits::from_micros(-remaining.micros())))
    }

    /// Whether `amount` more credits keep the balance within [`MAX_BALANCE`].
    pub fn can_credit(&self, amount: Credits) -> bool {
        self.balance.checked_add(amount).is_some_and(|b| b <= MAX_BALANCE)
    }

    /// Adds a grant; the caller checks [`Account::can_credit`] first.
    pub fn credit(&mut self, lot: Lot) -> Movement {
        assert!(lot.remaining.is_positive(), "a grant adds a positive amount");
        let amount = lot.remaining;
        self.lots.push(Lot {
            remaining: Credits::ZERO,
            ..lot
        });
        let index = self.lots.len() - 1;
        self.apply(index, EntryKind::Grant, amount)
    }

    /// Spends `amount` from live grants in spending order. Call [`Account::expire_due`] first.
    pub fn debit(&mut self, amount: Credits, now: i64) -> Result<Vec<Movement>, Insufficient> {
        self.debit_with_extra(amount, Credits::ZERO, now)
    }

    /// Debit allowed to use `extra` beyond the available credits (a hold being captured).
    fn debit_with_extra(&mut self, amount: Credits, extra: Credits, now: i64) -> Result<Vec<Movement>, Insufficient> {
        assert!(amount.is_positive(), "a debit takes a positive amount");
        let available = self.available().micros() + extra.micros();
        let live: i64 = self
            .lots
            .iter()
            .filter(|l| l.is_live(now))
            .map(|l| l.remaining.micros())
            .sum();
        if amount.micros() > available.min(live) {
            return Err(Insufficient {
                available: Credits::from_micros(available.min(live).max(0)),
            });
        }
        let mut order: Vec<usize> = (0..self.lots.len()).filter(|&i| self.lots[i].is_live(now)).collect();
        order.sort_by(|&a, &b| spending_order(&self.lots[a], &self.lots[b]));
        let mut left = amount.micros();
        let mut movements = Vec::new();
        for i in order {
            if left == 0 {
                break;
            }
            let take = left.min(self.lots[i].remaining.micros());
            left -= take;
            movements.push(self.apply(i, EntryKind::Usage, Credits::from_micros(-take)));
        }
        assert_eq!(left, 0, "live grants covered the debit");
        Ok(movements)
    }

    /// Reserves `amount` of the available credits.
    pub fn hold(&mut self, amount: Credits) -> Result<(), Insufficient> {
        assert!(amount.is_positive(), "a hold reserves a positive amount");
        if amount > self.available() {
            return Err(Insufficient {
                available: self.available().max(Credits::ZERO),
            });
        }
        self.held = self.held.checked_add(amount).expect("held overflow");
        Ok(())
    }

    /// Ends a hold without spending.
    pub fn release(&mut self, held_amount: Credits) {
        assert!(held_amount <= self.held, "releasing more than is held");
        self.held = self.held.checked_sub(held_amount).expect("held underflow");
    }

    /// Live lots in spending order, `first` (a purchase's own grant) ahead of the rest.
    fn order_with_first(&self, first: Option<&str>, now: i64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.lots.len()).filter(|&i| self.lots[i].is_live(now)).collect();
        order.sort_by(|&a, &b| {
            let (la, lb) = (&self.lots[a], &self.lots[b]);
            let fa = Some(la.grant_id.as_str()) == first;
            let fb = Some(lb.grant_id.as_str()) == first;
            fb.cmp(&fa).then_with(|| spending_order(la, lb))
        });
        order
    }

    /// Takes up to `amount` from live lots (`first` first) as `kind` entries; returns what is left.
    fn take(&mut self, first: Option<&str>, kind: EntryKind, amount: Credits, now: i64) -> (Vec<Movement>, i64) {
        let mut left = amount.micros();
        let mut movements = Vec::new();
        for i in self.order_with_first(first, now) {
            if left == 0 {
                break;
            }
            let take = left.min(self.lots[i].remaining.micros());
            if take > 0 {
                left -= take;
                movements.push(self.apply(i, kind, Credits::from_micros(-take)));
            }
        }
        (movements, left)
    }

    /// Takes `amount` back whatever is available (holds included): from `first`, then the other
    /// live grants in spending order; what no grant covers becomes debt.
    pub fn clawback(&mut self, first: Option<&str>, amount: Credits, now: i64) -> Taken {
        assert!(amount.is_positive(), "a clawback takes a positive amount");
        let (movements, left) = self.take(first, EntryKind::Clawback, amount, now);
        let debt = (left > 0).then(|| {
            self.debt = Credits::from_micros(self.debt.micros() + left);
            self.balance = Credits::from_micros(self.balance.micros() - left);
            DebtMovement {
                kind: EntryKind::Clawback,
                amount: Credits::from_micros(-left),
                balance_after: self.balance,
            }
        });
        Taken { movements, debt }
    }

    /// Freezes up to `amount` of the live credits (`first` first); returns what was frozen.
    pub fn freeze(&mut self, first: Option<&str>, amount: Credits, now: i64) -> Vec<Movement> {
        assert!(amount.is_positive(), "a freeze takes a positive amount");
        self.take(first, EntryKind::Freeze, amount, now).0
    }

    /// Returns frozen credits to the grant they came from (which the caller has loaded).
    pub fn unfreeze(&mut self, grant_id: &str, amount: Credits) -> Movement {
        assert!(amount.is_positive(), "an unfreeze returns a positive amount");
        let index = self
            .lots
            .iter()
            .position(|l| l.grant_id == grant_id)
            .expect("the frozen grant is loaded");
        self.apply(index, EntryKind::Unfreeze, amount)
    }

    /// Adds a grant with nothing remaining, so credits can be returned to it.
    pub fn load_lot(&mut self, lot: Lot) {
        assert_eq!(lot.remaining, Credits::ZERO, "only empty grants are loaded late");
        if !self.lots.iter().any(|l| l.grant_id == lot.grant_id) {
            self.lots.push(lot);
        }
    }

    /// Pays debt from live grants in spending order. The grant legs are `DebtPayment`
    /// movements; the debt leg (positive, no grant) comes back separately.
    pub fn settle_debt(&mut self, now: i64) -> Taken {
        if self.debt == Credits::ZERO {
            return Taken::default();
        }
        let (movements, left) = self.take(None, EntryKind::DebtPayment, self.debt, now);
        let paid = self.debt.micros() - left;
        if paid == 0 {
            return Taken::default();
        }
        self.debt = Credits::from_micros(left);
        self.balance = Credits::from_micros(self.balance.micros() + paid);
        let debt = DebtMovement {
            kind: EntryKind::DebtPayment,
            amount: Credits::from_micros(paid),
            balance_after: self.balance,
        };
        Taken {
            movements,
            debt: Some(debt),
        }
    }

    /// Ends a hold of `held_amount` by spending `amount`: up to the hold, or more when the
    /// available credits cover the difference. On failure nothing changes.
    pub fn capture(&mut self, held_amount: Credits, amount: Credits, now: i64) -> Result<Vec<Movement>, Insufficient> {
        assert!(held_amount <= self.held, "capturing more than is held");
        if amount == Credits::ZERO {
            self.release(held_amount);
            return Ok(Vec::new());
        }
        let movements = self.debit_with_extra(amount, held_amount, now)?;
        self.release(held_amount);
        Ok(movements)
    }
}
