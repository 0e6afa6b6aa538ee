//! The storage conformance suite: every scenario runs on SQLite and on PostgreSQL, and
//! `verify` must be clean after each.

use std::sync::Arc;

use creditd_domain::command::{NewCustomer, NewGrant, NewHold, NewUsage};
use creditd_domain::views::HoldStatus;
use creditd_domain::{Account, Command, CommandError, Credits, GrantSource, Idempotency, Lot, Outcome, Request};
use creditd_store::testing::TestDb;
use creditd_store::{PageRequest, Store, StoreError};

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let db = creditd_store::testing::TestDb::sqlite().await;
                super::$name(&db).await;
                super::assert_books_balance(&db.store).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let Some(db) = creditd_store::testing::TestDb::postgres().await else { return };
                super::$name(&db).await;
                super::assert_books_balance(&db.store).await;
            }
        }
    )*};
}

on_both_backends!(
    customers_get_a_signup_bonus_once,
    usage_draws_grants_in_spending_order,
    insufficient_credits_change_nothing,
    holds_reserve_capture_and_release,
    holds_expire_and_release_themselves,
    grants_expire_through_entries,
    idempotency_replays_the_first_result,
    concurrent_usage_never_overspends,
    concurrent_holds_and_captures_never_overspend,
    random_commands_match_the_domain_model,
    ledger_and_grants_paginate_newest_first,
    verify_names_a_corrupted_customer,
    ledger_entries_are_immutable,
    a_purchase_reference_is_granted_once,
);

#[path = "batching/mod.rs"]
mod batching;
#[path = "replicas/mod.rs"]
mod replicas;

const T0: i64 = 1_700_000_000;

pub async fn assert_books_balance(store: &Store) {
    let report = store.verify().await.unwrap();
    assert!(report.is_clean(), "verify found problems: {:?}", report.problems);
}

fn c(text: &str) -> Credits {
    Credits::parse(text).unwrap()
}

async fn one(store: &Store, command: Command, now: i64) -> Result<Outcome, StoreError> {
    store
        .apply(
            vec![Request {
                command,
                idempotency: None,
            }],
            now,
        )
        .await
        .pop()
        .unwrap()
}

async fn new_customer(store: &Store, id: &str, bonus: &str) {
    let command = Command::CreateCustomer(NewCustomer {
        id: id.into(),
        email: None,
        metadata: serde_json::json!({}),
        signup_bonus: c(bonus),
    });
    one(store, command, T0).await.unwrap();
}

fn grant_cmd(customer: &str, amount: &str, priority: i32, expires_at: Option<i64>) -> Command {
    Command::Grant(NewGrant {
        customer: customer.into(),
        amount: c(amount),
        priority,
        expires_at,
        source: GrantSource::Promotion,
        reason: Some("test".into()),
        reference: None,
    })
}

fn usage_cmd(customer: &str, amount: &str) -> Command {
    Command::Usage(NewUsage {
        customer: customer.into(),
        amount: c(amount),
        feature: "chat".into(),
        metadata: serde_json::json!({"model": "m"}),
        priced: None,
        budget: None,
    })
}

fn hold_cmd(customer: &str, amount: &str, ttl_seconds: i64) -> Command {
    Command::CreateHold(NewHold {
        customer: customer.into(),
        amount: c(amount),
        ttl_seconds,
        feature: Some("stream".into()),
        metadata: serde_json::json!({}),
        priced: None,
        budget: None,
    })
}

async fn balance(store: &Store, customer: &str, now: i64) -> (Credits, Credits) {
    let c = store.customer(customer, now).await.unwrap().unwrap();
    (c.balance, c.available)
}

fn hold_id(outcome: Outcome) -> String {
    match outcome {
        Outcome::Hold(h) => h.id,
        other => panic!("expected a hold, got {other:?}"),
    }
}

async fn customers_get_a_signup_bonus_once(db: &TestDb) {
    let store = &db.store;
    let create = Command::CreateCustomer(NewCustomer {
        id: "user_1".into(),
        email: Some("a@example.com".into()),
        metadata: serde_json::json!({"plan": "free"}),
        signup_bonus: c("5"),
    });
    let Outcome::Customer { customer, created } = one(store, create.clone(), T0).await.unwrap() else {
        panic!()
    };
    assert!(created);
    assert_eq!((customer.balance, customer.available), (c("5"), c("5")));
    assert_eq!(customer.metadata["plan"], "free");
    let Outcome::Customer { customer, created } = one(store, create, T0 + 1).await.unwrap() else {
        panic!()
    };
    assert!(!created, "the second create returns the existing customer");
    assert_eq!(customer.balance, c("5"), "and grants no second bonus");
    let grants = store
        .grants(
            "user_1",
            &PageRequest {
                limit: 10,
                starting_after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(grants.data.len(), 1);
    assert_eq!(grants.data[0].source, GrantSource::SignupBonus);
    assert!(store.customer("nobody", T0).await.unwrap().is_none());
}

async fn usage_draws_grants_in_spending_order(db: &TestDb) {
    let store = &db.store;
    new_customer(store, "u", "0").await;
    one(store, grant_cmd("u", "10", 50, None), T0).await.unwrap();
    one(store, grant_cmd("u", "10", 50, Some(T0 + 1000)), T0).await.unwrap();
    one(store, grant_cmd("u", "1.5", 10, None), T0).await.unwrap();
    let Outcome::Usage(usage) = one(store, usage_cmd("u", "12.25"), T0 + 1).await.unwrap() else {
        panic!()
    };
    let taken: Vec<(Credits, Credits)> = usage.entries.iter().map(|e| (e.amount, e.balance_after)).collect();
    assert_eq!(
        taken,
        vec![(c("-1.5"), c("20")), (c("-10"), c("10")), (c("-0.75"), c("9.25"))],
        "priority first, then the earliest expiry, then the oldest"
    );
    assert_eq!((usage.balance, usage.available), (c("9.25"), c("9.25")));
    assert!(usage
        .entries
        .iter()
        .all(|e| e.reference.as_deref() == Some(usage.id.as_str())));
    assert_eq!(balance(store, "u", T0 + 2).await, (c("9.25"), c("9.25")));
}

async fn insufficient_credits_change_nothing(db: &TestDb) {
    let store = &db.store;
    new_customer(store, "u", "2").await;
    let err = one(store, usage_cmd("u", "2.000001"), T0).await.unwrap_err();
    match err {
        StoreError::Command(CommandError::InsufficientCredits {
            balance,
            available,
            requested,
        }) => {
            assert_eq!((balance, available, requested), (c("2"), c("2"), c("2.000001")));
        }
        other => panic!("expected insufficient credits, got {other:?}"),
    }
    assert_eq!(balance(store, "u", T0).await, (c("2"), c("2")));
    let ledger = store
        .ledger(
            "u",
            &PageRequest {
                limit: 10,
                starting_after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(ledger.data.len(), 1, "only the bonus entry");
    let missing = one(store, usage_cmd("ghost", "1"), T0).await.unwrap_err();
    assert!(matches!(
        missing,
        StoreError::Command(CommandError::CustomerNotFound(_))
    ));
}

async fn holds_reserve_capture_and_release(db: &TestDb) {
    let store = &db.store;
    new_customer(store, "u", "10").await;
    let h1 = hold_id(one(store, hold_cmd("u", "4", 60), T0).await.unwrap());
    assert_eq!(
        balance(store, "u", T0).await,
        (c("10"), c("6")),
        "a hold reduces available, not balance"
    );
    let err = one(store, usage_cmd("u", "7"), T0).await.unwrap_err();
    assert!(matches!(
        err,
        StoreError::Command(CommandError::InsufficientCredits { .. })
    ));
    let capture = Command::CaptureHold {
        hold: h1.clone(),
        amount: Some(c("2.5")),
        feature: None,
        priced: None,
    };
    let Outcome::Hold(hold) = one(store, capture, T0 + 1).await.unwrap() else {
        panic!()
    };
    assert_eq!(
        (hold.status, hold.captured, hold.balance, hold.available),
        (HoldStatus::Captured, Some(c("2.5")), c("7.5"), c("7.5"))
    );
    let again = Command::CaptureHold {
        hold: h1,
        amount: None,
        feature: None,
        priced: None,
    };
    assert!(matches!(
        one(store, again, T0 + 2).await,
        Err(StoreError::Command(CommandError::HoldNotOpen { .. }))
    ));
    // A capture above the hold succeeds only when available credits cover the difference.
    let h2 = hold_id(one(store, hold_cmd("u", "2", 60), T0).await.unwrap());
    let h3 = hold_id(one(store, hold_cmd("u", "5", 60), T0).await.unwrap());
    let over = Command::CaptureHold {
        hold: h2.clone(),
        amount: Some(c("3")),
        feature: None,
        priced: None,
    };
    assert!(matches!(
        one(store, over, T0).await,
        Err(StoreError::Command(CommandError::InsufficientCredits { .. }))
    ));
    let Outcome::Hold(released) = one(store, Command::ReleaseHold { hold: h3 }, T0).await.unwrap() else {
        panic!()
    };
    assert_eq!((released.status, released.available), (HoldStatus::Released, c("5.5")));
    let over = Command::CaptureHold {
        hold: h2,
        amount: Some(c("3")),
        feature: Some("extra".into()),
        priced: None,
    };
    let Outcome::Hold(hold) = one(store, over, T0).await.unwrap() else {
        panic!()
    };
    assert_eq!(
        (hold.balance, hold.available, hold.feature.as_deref()),
        (c("4.5"), c("4.5"), Some("extra"))
    );
    let missing = Command::ReleaseHold {
        hold: "hold_nope".into(),
    };
    assert!(matches!(
        one(store, missing, T0).await,
        Err(StoreError::Command(CommandError::HoldNotFound(_)))
    ));
}

async fn holds_expire_and_release_themselves(db: &TestDb) {
    let store = &db.store;
    new_customer(store, "u", "10").await;
    let h = hold_id(one(store, hold_cmd("u", "8", 30), T0).await.unwrap());
    assert_eq!(balance(store, "u", T0 + 29).await, (c("10"), c("2")));
    assert_eq!(
        balance(store, "u", T0 + 30).await,
        (c("10"), c("10")),
        "reads see the hold expired at its TTL"
    );
    assert_eq!(
        store.hold(&h, T0 + 30).await.unwrap().unwrap().status,
        HoldStatus::Expired
    );
    one(store, usage_cmd("u", "9"), T0 + 31).await.unwrap();
    let capture = Command::CaptureHold {
        hold: h,
        amount: None,
        feature: None,
        priced: None,
    };
    let err = one(store, capture, T0 + 32).await.unwrap_err();
    assert!(matches!(err, StoreError::Command(CommandError::HoldNotOpen { status }) if status == "expired"));
}

async fn grants_expire_through_entries(db: &TestDb) {
    let store = &db.store;
    new_customer(store, "u", "0").await;
    one(store, grant_cmd("u", "3", 50, Some(T0 + 100)), T0).await.unwrap();
    one(store, grant_cmd("u", "1", 50, None), T0).await.unwrap();
    one(store, usage_cmd("u", "1"), T0 + 1).await.unwrap();
    assert_eq!(
        balance(store, "u", T0 + 100).await,
        (c("1"), c("1")),
        "the expired remainder is not spendable"
    );
    let err = one(store, usage_cmd("u", "1.5"), T0 + 100).await.unwrap_err();
    assert!(matches!(
        err,
        StoreError::Command(CommandError::InsufficientCredits { .. })
    ));
    let ledger = store
        .ledger(
            "u",
            &PageRequest {
                limit: 10,
                starting_after: None,
            },
        )
        .await
        .unwrap();
    let expire = ledger
        .data
        .iter()
        .find(|e| e.kind == creditd_domain::EntryKind::Expire)
        .expect("an expire entry");
    assert_eq!((expire.amount, expire.balance_after), (c("-2"), c("1")));
}

async fn idempotency_replays_the_first_result(db: &TestDb) {
    let store = &db.store;
    new_customer(store, "u", "3").await;
    let key = |k: &str, body: &str| {
        Some(Idempotency {
            scope: "api".into(),
            key: k.into(),
            fingerprint: body.into(),
        })
    };
    let first = Request {
        command: usage_cmd("u", "1"),
        idempotency: key("k1", "a"),
    };
    let a = store.apply(vec![first.clone()], T0).await.pop().unwrap().unwrap();
    let b = store.apply(vec![first.clone()], T0 + 5).await.pop().unwrap().unwrap();
    assert_eq!(a, b, "a retry returns the first result");
    assert_eq!(balance(store, "u", T0).await.0, c("2"), "and deducts once");
    let other = Request {
        command: usage_cmd("u", "2"),
        idempotency: key("k1", "b"),
    };
    let err = store.apply(vec![other], T0).await.pop().unwrap().unwrap_err();
    assert!(matches!(err, StoreError::Command(CommandError::IdempotencyKeyReused)));
    // A refusal is the request's result too, and is replayed after a top-up.
    let big = Request {
        command: usage_cmd("u", "5"),
        idempotency: key("k2", "c"),
    };
    assert!(store.apply(vec![big.clone()], T0).await.pop().unwrap().is_err());
    one(store, grant_cmd("u", "10", 50, None), T0).await.unwrap();
    let replay = store.apply(vec![big], T0).await.pop().unwrap().unwrap_err();
    assert!(matches!(
        replay,
        StoreError::Command(CommandError::InsufficientCredits { .. })
    ));
    // A failed lookup is not recorded: create the customer, retry with the same key.
    let early = Request {
        command: usage_cmd("late", "1"),
        idempotency: key("k3", "d"),
    };
    assert!(store.apply(vec![early.clone()], T0).await.pop().unwrap().is_err());
    new_customer(store, "late", "1").await;
    assert!(store.apply(vec![early], T0).await.pop().unwrap().is_ok());
    // Concurrent retries of one key deduct once.
    let racing = Request {
        command: usage_cmd("u", "1"),
        idempotency: key("k4", "e"),
    };
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (store, req) = (store.clone(), racing.clone());
            tokio::spawn(async move { store.apply(vec![req], T0).await.pop().unwrap().unwrap() })
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        let Outcome::Usage(u) = t.await.unwrap() else { panic!() };
        ids.insert(u.id);
    }
    assert_eq!(ids.len(), 1, "every concurrent retry sees the same usage");
    assert_eq!(balance(store, "u", T0).await.0, c("11"));
}

async fn concurrent_usage_never_overspends(db: &TestDb) {
    let store = &db.store;
    new_customer(store, "hot", "0").await;
    one(store, grant_cmd("hot", "20", 50, None), T0).await.unwrap();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { one(&store, usage_cmd("hot", "1"), T0).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::Command(CommandError::InsufficientCredits { .. })) => {}
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(ok, 20, "exactly as many succeed as the balance covers");
    assert_eq!(balance(store, "hot", T0).await, (Credits::ZERO, Credits::ZERO));
}

async fn concurrent_holds_and_captures_never_overspend(db: &TestDb) {
    let store = &db.store;
    new_customer(store, "hot", "0").await;
    one(store, grant_cmd("hot", "30", 50, None), T0).await.unwrap();
    // Each task holds 2; odd tasks capture 1 (always within the hold), even ones capture 3,
    // whose extra credit must come from what is available at that moment.
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let hold = match one(&store, hold_cmd("hot", "2", 60), T0).await {
                    Ok(o) => hold_id(o),
                    Err(StoreError::Command(CommandError::InsufficientCredits { .. })) => return (0, 0),
                    Err(e) => panic!("{e}"),
                };
                let want = if i % 2 == 1 { 1 } else { 3 };
                let capture = Command::CaptureHold {
                    hold: hold.clone(),
                    amount: Some(c(&want.to_string())),
                    feature: None,
                    priced: None,
                };
                match one(&store, capture, T0).await {
                    Ok(_) => (want, 1),
                    Err(StoreError::Command(CommandError::InsufficientCredits { .. })) => {
                        assert_eq!(want, 3, "a capture within its hold always succeeds");
                        one(&store, Command::ReleaseHold { hold }, T0).await.unwrap();
                        (0, 0)
                    }
                    Err(e) => panic!("{e}"),
                }
            })
        })
        .collect();
    let (mut spent, mut captures) = (0i64, 0);
    for t in tasks {
        let (s, n) = t.await.unwrap();
        spent += s;
        captures += n;
    }
    let (bal, available) = balance(store, "hot", T0).await;
    assert!(captures > 0);
    assert_eq!(
        bal.micros(),
        (30 - spent) * 1_000_000,
        "the balance fell by exactly what was captured"
    );
    assert!(
        bal.micros() >= 0 && available == bal,
        "never below zero, and no hold left open"
    );
}

/// A small deterministic generator, so a failure replays exactly.
struct Rng(u64);
impl Rng {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

async fn random_commands_match_the_domain_model(db: &TestDb) {
    let store = &db.store;
    for seed in 1..=3u64 {
        let customer = format!("model_{seed}");
        new_customer(store, &customer, "0").await;
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut model = Account::new(Credits::ZERO, Credits::ZERO, Vec::new());
        let mut open_holds: Vec<(String, Credits)> = Vec::new();
        let mut now = T0;
        for step in 0..80 {
            now += rng.next(4) as i64;
            let micros = 1 + rng.next(3_000_000) as i64;
            let amount = Credits::from_micros(micros);
            model.expire_due(now);
            match rng.next(6) {
                0 | 1 => {
                    let expires_at = (rng.next(2) == 0).then(|| now + 1 + rng.next(40) as i64);
                    let priority = rng.next(3) as i32 * 10;
                    let Outcome::Grant(g) = one(
                        store,
                        Command::Grant(NewGrant {
                            customer: customer.clone(),
                            amount,
                            priority,
                            expires_at,
                            source: GrantSource::Promotion,
                            reason: None,
                            reference: None,
                        }),
                        now,
                    )
                    .await
                    .unwrap() else {
                        panic!()
                    };
                    model.credit(Lot {
                        grant_id: g.id,
                        remaining: amount,
                        priority,
                        expires_at,
                        seq: step,
                    });
                }
                2 => {
                    let expected = model.debit(amount, now);
                    let got = one(store, usage_cmd(&customer, &amount.to_string()), now).await;
                    match (expected, got) {
                        (Ok(moves), Ok(Outcome::Usage(u))) => {
                            let grants: Vec<_> = u.entries.iter().map(|e| (e.grant.clone(), e.amount)).collect();
                            let model_grants: Vec<_> =
                                moves.iter().map(|m| (Some(m.grant_id.clone()), m.amount)).collect();
                            assert_eq!(grants, model_grants, "seed {seed} step {step}: drawn from other grants");
                        }
                        (Err(_), Err(StoreError::Command(CommandError::InsufficientCredits { .. }))) => {}
                        (e, g) => panic!("seed {seed} step {step}: model {e:?} store {g:?}"),
                    }
                }
                3 => {
                    let expected = model.hold(amount);
                    let got = one(store, hold_cmd(&customer, &amount.to_string(), 1000), now).await;
                    match (expected, got) {
                        (Ok(()), Ok(o)) => open_holds.push((hold_id(o), amount)),
                        (Err(_), Err(_)) => {}
                        (e, g) => panic!("seed {seed} step {step}: model {e:?} store {g:?}"),
                    }
                }
                4 if !open_holds.is_empty() => {
                    let (hold, held) = open_holds.remove(rng.next(open_holds.len() as u64) as usize);
                    let expected = model.capture(held, amount, now);
                    let got = one(
                        store,
                        Command::CaptureHold {
                            hold: hold.clone(),
                            amount: Some(amount),
                            feature: None,
                            priced: None,
                        },
                        now,
                    )
                    .await;
                    match (expected, got) {
                        (Ok(_), Ok(_)) => {}
                        (Err(_), Err(_)) => open_holds.push((hold, held)),
                        (e, g) => panic!("seed {seed} step {step}: model {e:?} store {g:?}"),
                    }
                }
                _ if !open_holds.is_empty() => {
                    let (hold, held) = open_holds.pop().unwrap();
                    model.release(held);
                    one(store, Command::ReleaseHold { hold }, now).await.unwrap();
                }
                _ => {}
            }
            let live: i64 = model
                .lots
                .iter()
                .filter(|l| l.is_live(now))
                .map(|l| l.remaining.micros())
                .sum();
            let (bal, available) = balance(store, &customer, now).await;
            assert_eq!(bal.micros(), live, "seed {seed} step {step}: balance");
            assert_eq!(
                available.micros(),
                live - model.held.micros(),
                "seed {seed} step {step}: available"
            );
        }
    }
}

async fn ledger_and_grants_paginate_newest_first(db: &TestDb) {
    let store = &db.store;
    new_customer(store, "u", "0").await;
    for i in 1..=5 {
        one(store, grant_cmd("u", &i.to_string(), 50, None), T0 + i)
            .await
            .unwrap();
    }
    let first = store
        .ledger(
            "u",
            &PageRequest {
                limit: 2,
                starting_after: None,
            },
        )
        .await
        .unwrap();
    assert!(first.has_more);
    assert_eq!(
        first.data.iter().map(|e| e.amount).collect::<Vec<_>>(),
        vec![c("5"), c("4")]
    );
    let next = PageRequest {
        limit: 2,
        starting_after: Some(first.data[1].id.clone()),
    };
    let second = store.ledger("u", &next).await.unwrap();
    assert_eq!(
        second.data.iter().map(|e| e.amount).collect::<Vec<_>>(),
        vec![c("3"), c("2")]
    );
    let last = store
        .ledger(
            "u",
            &PageRequest {
                limit: 2,
                starting_after: Some(second.data[1].id.clone()),
            },
        )
        .await
        .unwrap();
    assert_eq!((last.data.len(), last.has_more), (1, false));
    let grants = store
        .grants(
            "u",
            &PageRequest {
                limit: 3,
                starting_after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        grants.data.iter().map(|g| g.amount).collect::<Vec<_>>(),
        vec![c("5"), c("4"), c("3")]
    );
}

/// One statement straight to the database, past the store.
async fn raw(db: &TestDb, sql: &str) -> Result<u64, sqlx::Error> {
    use sqlx::Executor;
    Ok(if db.url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&db.url).await?;
        let done = pool.execute(sql).await.map(|r| r.rows_affected());
        pool.close().await;
        done?
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await?;
        let done = pool.execute(sql).await.map(|r| r.rows_affected());
        pool.close().await;
        done?
    })
}

async fn verify_names_a_corrupted_customer(db: &TestDb) {
    let store = &db.store;
    new_customer(store, "good", "5").await;
    new_customer(store, "bad", "5").await;
    assert!(store.verify().await.unwrap().is_clean());
    raw(db, "UPDATE customers SET balance = balance + 1 WHERE id = 'bad'")
        .await
        .unwrap();
    let report = store.verify().await.unwrap();
    assert!(!report.is_clean());
    assert!(
        report.problems.iter().any(|p| p.contains("customer bad")),
        "{:?}",
        report.problems
    );
    assert!(!report.problems.iter().any(|p| p.contains("customer good")));
    // Writes refuse to build on a corrupted account.
    assert!(matches!(
        one(store, usage_cmd("bad", "1"), T0).await,
        Err(StoreError::Corrupt(_))
    ));
    raw(db, "UPDATE customers SET balance = balance - 1 WHERE id = 'bad'")
        .await
        .unwrap();
}

async fn ledger_entries_are_immutable(db: &TestDb) {
    new_customer(&db.store, "u", "5").await;
    assert!(raw(db, "UPDATE ledger_entries SET amount = 1").await.is_err());
    assert!(raw(db, "DELETE FROM ledger_entries").await.is_err());
    assert!(
        raw(db, "UPDATE grants SET remaining = amount + 1").await.is_err(),
        "CHECK constraint"
    );
}

async fn a_purchase_reference_is_granted_once(db: &TestDb) {
    let store = Arc::new(db.store.clone());
    new_customer(&store, "u", "0").await;
    let purchase = Command::Grant(NewGrant {
        customer: "u".into(),
        amount: c("100"),
        priority: 50,
        expires_at: None,
        source: GrantSource::Purchase,
        reason: None,
        reference: Some("cs_test_1".into()),
    });
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, purchase) = (store.clone(), purchase.clone());
            tokio::spawn(async move { one(&store, purchase, T0).await })
        })
        .collect();
    let mut granted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => granted += 1,
            Err(StoreError::Command(CommandError::DuplicateGrantReference { .. })) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(granted, 1);
    assert_eq!(balance(&store, "u", T0).await.0, c("100"));
}
