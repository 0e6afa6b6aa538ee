//! The account's arithmetic against a deliberately naive model: random sequences of grants,
//! debits, holds, captures, releases and the passing of time.

use creditd_domain::{Account, Credits, EntryKind, Lot};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Grant {
        micros: i64,
        priority: i32,
        expires_in: Option<i64>,
    },
    Debit {
        micros: i64,
    },
    Hold {
        micros: i64,
    },
    Capture {
        index: usize,
        micros: i64,
    },
    Release {
        index: usize,
    },
    Advance {
        seconds: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1i64..5_000_000, 0i32..4, prop::option::of(1i64..50)).prop_map(|(micros, priority, expires_in)| Op::Grant {
            micros,
            priority,
            expires_in
        }),
        (1i64..4_000_000).prop_map(|micros| Op::Debit { micros }),
        (1i64..3_000_000).prop_map(|micros| Op::Hold { micros }),
        (0usize..8, 0i64..4_000_000).prop_map(|(index, micros)| Op::Capture { index, micros }),
        (0usize..8).prop_map(|index| Op::Release { index }),
        (1i64..20).prop_map(|seconds| Op::Advance { seconds }),
    ]
}

/// The naive model: a list of lots scanned linearly for the next one to spend.
#[derive(Default)]
struct Model {
    lots: Vec<(i64, i32, Option<i64>, i64)>, // remaining, priority, expires_at, seq
    held: i64,
}

impl Model {
    fn live(&self, now: i64) -> i64 {
        self.lots
            .iter()
            .filter(|l| l.2.is_none_or(|e| e > now))
            .map(|l| l.0)
            .sum()
    }
    fn expire(&mut self, now: i64) -> i64 {
        let mut expired = 0;
        for lot in self.lots.iter_mut().filter(|l| l.2.is_some_and(|e| e <= now)) {
            expired += lot.0;
            lot.0 = 0;
        }
        expired
    }
    /// Takes `amount` one lot at a time, always the smallest key among live lots.
    fn take(&mut self, mut amount: i64, now: i64) -> Vec<usize> {
        let mut touched = Vec::new();
        while amount > 0 {
            let next = (0..self.lots.len())
                .filter(|&i| self.lots[i].0 > 0 && self.lots[i].2.is_none_or(|e| e > now))
                .min_by_key(|&i| {
                    let l = self.lots[i];
                    (l.1, l.2.is_none(), l.2.unwrap_or(0), l.3)
                })
                .expect("model ran out of lots");
            let take = amount.min(self.lots[next].0);
            self.lots[next].0 -= take;
            amount -= take;
            touched.push(next);
        }
        touched
    }
}

fn check(account: &Account, model: &Model, ledger_sum: i64) {
    account.assert_consistent();
    let remaining: Vec<i64> = account.lots.iter().map(|l| l.remaining.micros()).collect();
    let model_remaining: Vec<i64> = model.lots.iter().map(|l| l.0).collect();
    assert_eq!(remaining, model_remaining, "grants' remaining differ from the model");
    assert_eq!(account.held.micros(), model.held);
    assert_eq!(
        account.balance.micros(),
        ledger_sum,
        "balance must equal the sum of the ledger"
    );
    assert!(
        account.balance.micros() >= 0,
        "usage never takes the balance below zero"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn account_matches_the_naive_model(ops in prop::collection::vec(op(), 1..60)) {
        let mut account = Account::new(Credits::ZERO, Credits::ZERO, Vec::new());
        let mut model = Model::default();
        let mut holds: Vec<(i64, bool)> = Vec::new(); // amount, open
        let mut ledger_sum = 0i64;
        let mut now = 1_000i64;
        let mut seq = 0i64;
        for op in ops {
            let expired = account.expire_due(now);
            prop_assert!(expired.iter().all(|m| m.kind == EntryKind::Expire && m.amount.micros() < 0));
            ledger_sum += expired.iter().map(|m| m.amount.micros()).sum::<i64>();
            let model_expired = model.expire(now);
            prop_assert_eq!(-expired.iter().map(|m| m.amount.micros()).sum::<i64>(), model_expired);
            match op {
                Op::Grant { micros, priority, expires_in } => {
                    seq += 1;
                    let expires_at = expires_in.map(|s| now + s);
                    let m = account.credit(Lot {
                        grant_id: format!("grt_{seq}"),
                        remaining: Credits::from_micros(micros),
                        priority,
                        expires_at,
                        seq,
                    });
                    prop_assert_eq!(m.amount.micros(), micros);
                    prop_assert_eq!(m.balance_after, account.balance);
                    ledger_sum += micros;
                    model.lots.push((micros, priority, expires_at, seq));
                }
                Op::Debit { micros } => {
                    let allowed = micros <= model.live(now) - model.held;
                    let before = account.clone();
                    match account.debit(Credits::from_micros(micros), now) {
                        Ok(moves) => {
                            prop_assert!(allowed, "debit succeeded where the model refuses");
                            prop_assert_eq!(moves.iter().map(|m| m.amount.micros()).sum::<i64>(), -micros);
                            let touched = model.take(micros, now);
                            let ids: Vec<String> = touched.iter().map(|i| format!("grt_{}", model.lots[*i].3)).collect();
                            let moved: Vec<String> = moves.iter().map(|m| m.grant_id.clone()).collect();
                            prop_assert_eq!(moved, ids, "grants drawn in another order than the model's");
                            ledger_sum -= micros;
                        }
                        Err(e) => {
                            prop_assert!(!allowed, "debit refused where the model allows");
                            prop_assert_eq!(&account, &before, "a refused debit changed nothing");
                            prop_assert!(e.available.micros() < micros);
                        }
                    }
                }
                Op::Hold { micros } => {
                    let allowed = micros <= model.live(now) - model.held;
                    prop_assert_eq!(account.hold(Credits::from_micros(micros)).is_ok(), allowed);
                    if allowed {
                        model.held += micros;
                        holds.push((micros, true));
                    }
                }
                Op::Capture { index, micros } => {
                    let Some(&(held, true)) = holds.get(index) else { continue };
                    let allowed = micros <= model.live(now) - model.held + held;
                    let result = account.capture(Credits::from_micros(held), Credits::from_micros(micros), now);
                    prop_assert_eq!(result.is_ok(), allowed);
                    if allowed {
                        if micros > 0 {
                            model.take(micros, now);
                        }
                        model.held -= held;
                        holds[index].1 = false;
                        ledger_sum -= micros;
                    }
                }
                Op::Release { index } => {
                    let Some(&(held, true)) = holds.get(index) else { continue };
                    account.release(Credits::from_micros(held));
                    model.held -= held;
                    holds[index].1 = false;
                }
                Op::Advance { seconds } => now += seconds,
            }
            check(&account, &model, ledger_sum);
        }
    }
}

#[test]
fn spends_by_priority_then_expiry_then_age() {
    let lot = |id: &str, micros, priority, expires_at, seq| Lot {
        grant_id: id.into(),
        remaining: Credits::from_micros(micros),
        priority,
        expires_at,
        seq,
    };
    let lots = vec![
        lot("never", 10, 50, None, 1),
        lot("late", 10, 50, Some(900), 2),
        lot("soon", 10, 50, Some(500), 3),
        lot("urgent", 10, 10, None, 4),
        lot("younger_never", 10, 50, None, 5),
    ];
    let mut account = Account::new(Credits::from_micros(50), Credits::ZERO, lots);
    let moves = account.debit(Credits::from_micros(45), 100).unwrap();
    let order: Vec<&str> = moves.iter().map(|m| m.grant_id.as_str()).collect();
    assert_eq!(order, ["urgent", "soon", "late", "never", "younger_never"]);
    assert_eq!(moves.last().unwrap().amount.micros(), -5);
    assert_eq!(account.balance.micros(), 5);
}

#[test]
fn expired_grants_leave_through_expire_entries_and_cannot_be_spent() {
    let mut account = Account::new(
        Credits::from_micros(30),
        Credits::ZERO,
        vec![Lot {
            grant_id: "g".into(),
            remaining: Credits::from_micros(30),
            priority: 50,
            expires_at: Some(100),
            seq: 1,
        }],
    );
    assert!(
        account.debit(Credits::from_micros(1), 100).is_err(),
        "expired at its expiry instant"
    );
    let moves = account.expire_due(100);
    assert_eq!(moves.len(), 1);
    assert_eq!(
        (moves[0].kind, moves[0].amount.micros(), moves[0].balance_after.micros()),
        (EntryKind::Expire, -30, 0)
    );
}

fn lot(id: &str, micros: i64, priority: i32, seq: i64) -> Lot {
    Lot {
        grant_id: id.into(),
        remaining: Credits::from_micros(micros),
        priority,
        expires_at: None,
        seq,
    }
}

#[test]
fn clawback_takes_the_purchase_first_then_spending_order_then_debt() {
    let mut account = Account::new(
        Credits::from_micros(60),
        Credits::ZERO,
        vec![
            lot("bonus", 10, 50, 1),
            lot("promo", 20, 10, 2),
            lot("purchase", 30, 50, 3),
        ],
    );
    let taken = account.clawback(Some("purchase"), Credits::from_micros(45), 0);
    let order: Vec<(&str, i64)> = taken
        .movements
        .iter()
        .map(|m| (m.grant_id.as_str(), m.amount.micros()))
        .collect();
    assert_eq!(order, [("purchase", -30), ("promo", -15)]);
    assert!(taken.debt.is_none());
    let taken = account.clawback(Some("purchase"), Credits::from_micros(40), 0);
    let debt = taken.debt.expect("what no grant covers becomes debt");
    assert_eq!((debt.amount.micros(), debt.balance_after.micros()), (-25, -25));
    assert_eq!((account.balance.micros(), account.debt.micros()), (-25, 25));
    assert!(
        account.debit(Credits::from_micros(1), 0).is_err(),
        "a customer in debt cannot spend"
    );
    // The next credits pay the debt first.
    account.credit(lot("topup", 40, 50, 4));
    let settled = account.settle_debt(0);
    assert_eq!(settled.movements.iter().map(|m| m.amount.micros()).sum::<i64>(), -25);
    assert_eq!(settled.debt.unwrap().amount.micros(), 25);
    assert_eq!((account.balance.micros(), account.debt.micros()), (15, 0));
    account.assert_consistent();
}

#[test]
fn frozen_credits_return_to_their_grant() {
    let mut account = Account::new(
        Credits::from_micros(30),
        Credits::ZERO,
        vec![lot("a", 10, 50, 1), lot("p", 20, 50, 2)],
    );
    let frozen = account.freeze(Some("p"), Credits::from_micros(25), 0);
    assert_eq!(
        frozen
            .iter()
            .map(|m| (m.grant_id.as_str(), m.amount.micros()))
            .collect::<Vec<_>>(),
        [("p", -20), ("a", -5)]
    );
    assert_eq!(account.balance.micros(), 5);
    let back = account.unfreeze("a", Credits::from_micros(5));
    assert_eq!((back.kind, back.balance_after.micros()), (EntryKind::Unfreeze, 10));
    account.assert_consistent();
}
