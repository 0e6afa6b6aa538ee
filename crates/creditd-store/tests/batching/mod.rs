//! Group commit: batches applied in one transaction give each request the result it would
//! get alone, in acceptance order; keys stay exactly-once; a database error fails the whole
//! batch; several writers on one database never lose or double a debit.

use std::collections::HashMap;
use std::time::Duration;

use creditd_domain::{Account, Command, CommandError, Credits, Idempotency, Lot, Outcome, Request};
use creditd_store::testing::TestDb;
use creditd_store::{Store, StoreError, Writer, WriterConfig};

pub use super::assert_books_balance;
use super::{c, grant_cmd, hold_cmd, new_customer, one, usage_cmd, Rng, T0};

on_both_backends!(
    concurrent_mixed_commands_match_a_sequential_model,
    keys_are_exactly_once_inside_and_across_batches,
    a_refused_command_mid_batch_affects_only_itself,
    a_database_error_fails_the_whole_batch,
    several_writers_race_on_the_same_customers,
    one_key_on_two_writers_at_once_is_applied_once,
);

fn request(command: Command, key: Option<&str>) -> Request {
    Request {
        idempotency: key.map(|k| Idempotency {
            scope: "app".into(),
            key: k.into(),
            fingerprint: format!("{command:?}"),
        }),
        command,
    }
}

fn small_batches() -> WriterConfig {
    WriterConfig {
        max_batch: 16,
        window: Duration::from_millis(2),
        queue_capacity: 1024,
        accounts: 64,
    }
}

/// What the model expects of one request.
#[derive(Debug)]
enum Expect {
    Usage {
        balance: Credits,
        available: Credits,
    },
    Hold {
        customer: String,
        amount: Credits,
    },
    Finished {
        available: Credits,
    },
    Grant {
        customer: String,
        amount: Credits,
    },
    Insufficient {
        available: Credits,
    },
    Refused(CommandError),
    /// A request sent again with its key: the result of request `index` of the wave.
    SameAs(usize),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum HoldState {
    Open,
    Done,
}

struct Model {
    accounts: HashMap<String, Account>,
    /// Hold id → (customer, amount, state).
    holds: HashMap<String, (String, Credits, HoldState)>,
    seq: i64,
}

impl Model {
    fn expect(&mut self, command: &Command, now: i64) -> Expect {
        match command {
            Command::Usage(u) => match self.accounts.get_mut(&u.customer) {
                None => Expect::Refused(CommandError::CustomerNotFound(u.customer.clone())),
                Some(a) => match a.debit(u.amount, now) {
                    Ok(_) => Expect::Usage {
                        balance: a.balance,
                        available: a.available(),
                    },
                    Err(e) => Expect::Insufficient { available: e.available },
                },
            },
            Command::CreateHold(h) => {
                let a = self.accounts.get_mut(&h.customer).expect("known customer");
                match a.hold(h.amount) {
                    Ok(()) => Expect::Hold {
                        customer: h.customer.clone(),
                        amount: h.amount,
                    },
                    Err(e) => Expect::Insufficient { available: e.available },
                }
            }
            Command::CaptureHold { hold, .. } | Command::ReleaseHold { hold } => {
                let capture = match command {
                    Command::CaptureHold { amount, .. } => Some(amount.expect("tests capture an amount")),
                    _ => None,
                };
                let Some((customer, held, state)) = self.holds.get_mut(hold) else {
                    return Expect::Refused(CommandError::HoldNotFound(hold.clone()));
                };
                if *state != HoldState::Open {
                    // The status text is not compared, only the refusal.
                    return Expect::Refused(CommandError::HoldNotOpen { status: String::new() });
                }
                let a = self.accounts.get_mut(customer.as_str()).expect("known customer");
                match capture {
                    Some(amount) => match a.capture(*held, amount, now) {
                        Ok(_) => *state = HoldState::Done,
                        Err(e) => return Expect::Insufficient { available: e.available },
                    },
                    None => {
                        a.release(*held);
                        *state = HoldState::Done;
                    }
                }
                Expect::Finished {
                    available: a.available(),
                }
            }
            Command::Grant(g) => Expect::Grant {
                customer: g.customer.clone(),
                amount: g.amount,
            },
            other => panic!("not generated: {other:?}"),
        }
    }

    /// Checks the store's result against the expectation and folds what only the store
    /// knows (new ids) back into the model.
    fn check(&mut self, what: &str, expect: &Expect, got: &Result<Outcome, StoreError>) {
        match (expect, got) {
            (Expect::Usage { balance, available }, Ok(Outcome::Usage(u))) => {
                assert_eq!((u.balance, u.available), (*balance, *available), "{what}");
                let taken: i64 = u.entries.iter().map(|e| e.amount.micros()).sum();
                assert_eq!(-taken, u.amount.micros(), "{what}: entries sum to the usage");
            }
            (Expect::Hold { customer, amount }, Ok(Outcome::Hold(h))) => {
                self.holds
                    .insert(h.id.clone(), (customer.clone(), *amount, HoldState::Open));
            }
            (Expect::Finished { available }, Ok(Outcome::Hold(h))) => {
                assert_eq!(h.available, *available, "{what}");
            }
            (Expect::Grant { customer, amount }, Ok(Outcome::Grant(g))) => {
                self.seq += 1;
                let account = self.accounts.get_mut(customer).expect("known customer");
                account.credit(Lot {
                    grant_id: g.id.clone(),
                    remaining: *amount,
                    priority: g.priority,
                    expires_at: None,
                    seq: self.seq,
                });
            }
            (
                Expect::Insufficient { available },
                Err(StoreError::Command(CommandError::InsufficientCredits { available: got, .. })),
            ) => assert_eq!(available, got, "{what}"),
            (
                Expect::Refused(CommandError::HoldNotOpen { .. }),
                Err(StoreError::Command(CommandError::HoldNotOpen { .. })),
            ) => {}
            (Expect::Refused(e), Err(StoreError::Command(g))) => assert_eq!(e, g, "{what}"),
            (e, g) => panic!("{what}: model expects {e:?}, store gave {g:?}"),
        }
    }
}

fn same_result(a: &Result<Outcome, StoreError>, b: &Result<Outcome, StoreError>) -> bool {
    match (a, b) {
        (Ok(x), Ok(y)) => x == y,
        (Err(StoreError::Command(x)), Err(StoreError::Command(y))) => x == y,
        _ => false,
    }
}

/// Waves of requests, all in flight at once through one writer (so they share batches and
/// several batches run per wave), replayed one by one in acceptance order on the domain model.
async fn concurrent_mixed_commands_match_a_sequential_model(db: &TestDb) {
    let store = &db.store;
    let customers = ["m_a", "m_b", "m_c"];
    let mut model = Model {
        accounts: HashMap::new(),
        holds: HashMap::new(),
        seq: 0,
    };
    for customer in customers {
        new_customer(store, customer, "0").await;
        model
            .accounts
            .insert(customer.into(), Account::new(Credits::ZERO, Credits::ZERO, Vec::new()));
        let grant = one(store, grant_cmd(customer, "20", 50, None), T0).await;
        model.check(
            "setup",
            &Expect::Grant {
                customer: customer.into(),
                amount: c("20"),
            },
            &grant,
        );
    }
    let writer = Writer::spawn(store.clone(), small_batches());
    let mut rng = Rng(0x5EED_1234_ABCD_0042);
    let mut sent: Vec<(Request, Result<Outcome, StoreError>)> = Vec::new();
    for wave in 0..6 {
        let now = T0 + wave;
        let open: Vec<String> = model
            .holds
            .iter()
            .filter(|(_, h)| h.2 == HoldState::Open)
            .map(|(id, _)| id.clone())
            .collect();
        let mut requests: Vec<Request> = Vec::new();
        for n in 0..60 {
            let customer = customers[rng.next(3) as usize];
            let amount = Credits::from_micros(1 + rng.next(3_000_000) as i64);
            let key = format!("w{wave}_{n}");
            let req = match rng.next(20) {
                0..=6 => request(usage_cmd(customer, &amount.to_string()), Some(&key)),
                7..=9 => request(hold_cmd(customer, &amount.to_string(), 1000), Some(&key)),
                10..=12 if !open.is_empty() => request(
                    Command::CaptureHold {
                        hold: open[rng.next(open.len() as u64) as usize].clone(),
                        amount: Some(amount),
                        feature: None,
                        priced: None,
                    },
                    Some(&key),
                ),
                13 if !open.is_empty() => request(
                    Command::ReleaseHold {
                        hold: open[rng.next(open.len() as u64) as usize].clone(),
                    },
                    None,
                ),
                14 => request(grant_cmd(customer, "2", 50, None), Some(&key)),
                15 => request(usage_cmd("nobody", "1"), Some(&key)),
                16 => request(
                    Command::ReleaseHold {
                        hold: "hold_missing".into(),
                    },
                    None,
                ),
                // A retry of something sent before: this wave or an earlier one.
                17 if !requests.is_empty() => requests[rng.next(requests.len() as u64) as usize].clone(),
                18 if !sent.is_empty() => sent[rng.next(sent.len() as u64) as usize].0.clone(),
                _ => request(usage_cmd(customer, "0.5"), None),
            };
            requests.push(req);
        }
        let pending: Vec<_> = requests
            .iter()
            .map(|r| writer.enqueue(r.clone(), now).expect("queue has room"))
            .collect();
        let mut results = Vec::new();
        for p in pending {
            results.push(p.result().await);
        }
        for (i, (req, got)) in requests.iter().zip(&results).enumerate() {
            let what = format!("wave {wave} request {i} {:?}", req.command);
            let earlier_in_wave = req
                .idempotency
                .as_ref()
                .and_then(|k| requests[..i].iter().position(|r| r.idempotency.as_ref() == Some(k)));
            let earlier_wave = req
                .idempotency
                .as_ref()
                .and_then(|k| sent.iter().position(|(r, _)| r.idempotency.as_ref() == Some(k)));
            let expect = match (earlier_in_wave, earlier_wave) {
                (Some(first), _) => Expect::SameAs(first),
                (None, Some(first)) => {
                    let first_result = &sent[first].1;
                    let replayed = first_result.is_ok()
                        || matches!(
                            first_result,
                            Err(StoreError::Command(
                                CommandError::InsufficientCredits { .. } | CommandError::HoldNotOpen { .. }
                            ))
                        );
                    if replayed {
                        assert!(
                            same_result(first_result, got),
                            "{what}: replay differs: {first_result:?} vs {got:?}"
                        );
                        continue;
                    }
                    model.expect(&req.command, now)
                }
                (None, None) => model.expect(&req.command, now),
            };
            match expect {
                Expect::SameAs(first) => {
                    assert!(same_result(&results[first], got), "{what}: same key, other result");
                }
                expect => model.check(&what, &expect, got),
            }
        }
        sent.extend(requests.into_iter().zip(results));
    }
    for customer in customers {
        let stored = store.customer(customer, T0 + 10).await.unwrap().unwrap();
        let account = &model.accounts[customer];
        assert_eq!(
            (stored.balance, stored.available),
            (account.balance, account.available()),
            "{customer}"
        );
    }
}

async fn keys_are_exactly_once_inside_and_across_batches(db: &TestDb) {
    let store = &db.store;
    new_customer(store, "k_1", "10").await;
    let batch = vec![
        request(usage_cmd("k_1", "1"), Some("a")),
        request(usage_cmd("k_1", "1"), Some("a")),
        request(usage_cmd("k_1", "2"), Some("b")),
        request(usage_cmd("k_1", "3"), Some("a")),
        request(usage_cmd("k_1", "50"), Some("c")),
        request(usage_cmd("k_late", "1"), Some("d")),
    ];
    let results = store.apply(batch.clone(), T0).await;
    assert!(
        same_result(&results[0], &results[1]),
        "same key in one batch: the first's result"
    );
    assert!(results[0].is_ok() && results[2].is_ok());
    assert!(matches!(
        results[3],
        Err(StoreError::Command(CommandError::IdempotencyKeyReused))
    ));
    assert!(matches!(
        results[4],
        Err(StoreError::Command(CommandError::InsufficientCredits { .. }))
    ));
    assert!(matches!(
        results[5],
        Err(StoreError::Command(CommandError::CustomerNotFound(_)))
    ));
    assert_eq!(store.customer("k_1", T0).await.unwrap().unwrap().balance, c("7"));

    // Retried in a later batch: replays, and the customer created meanwhile lets `d` run.
    new_customer(store, "k_late", "5").await;
    let again = store.apply(batch, T0 + 1).await;
    for i in [0, 1, 2, 4] {
        assert!(
            same_result(&results[i], &again[i]),
            "request {i} replayed: {:?}",
            again[i]
        );
    }
    assert!(matches!(
        again[3],
        Err(StoreError::Command(CommandError::IdempotencyKeyReused))
    ));
    assert!(again[5].is_ok(), "a key whose request was not found is free again");
    assert_eq!(store.customer("k_1", T0).await.unwrap().unwrap().balance, c("7"));
    assert_eq!(store.customer("k_late", T0).await.unwrap().unwrap().balance, c("4"));
}

async fn a_refused_command_mid_batch_affects_only_itself(db: &TestDb) {
    let store = &db.store;
    new_customer(store, "r_1", "10").await;
    let hold = super::hold_id(one(store, hold_cmd("r_1", "2", 600), T0).await.unwrap());
    let batch = vec![
        request(usage_cmd("r_1", "1"), None),
        request(usage_cmd("r_1", "100"), Some("too-much")),
        request(usage_cmd("r_ghost", "1"), None),
        request(
            Command::ReleaseHold {
                hold: "hold_ghost".into(),
            },
            None,
        ),
        request(Command::ReleaseHold { hold: hold.clone() }, None),
        request(
            Command::CaptureHold {
                hold,
                amount: None,
                feature: None,
                priced: None,
            },
            None,
        ),
        request(grant_cmd("r_ghost", "1", 50, None), None),
        request(usage_cmd("r_1", "3"), None),
    ];
    let results = store.apply(batch, T0).await;
    assert!(results[0].is_ok());
    assert!(matches!(
        results[1],
        Err(StoreError::Command(CommandError::InsufficientCredits { .. }))
    ));
    assert!(matches!(
        results[2],
        Err(StoreError::Command(CommandError::CustomerNotFound(_)))
    ));
    assert!(matches!(
        results[3],
        Err(StoreError::Command(CommandError::HoldNotFound(_)))
    ));
    assert!(results[4].is_ok(), "{:?}", results[4]);
    assert!(matches!(
        results[5],
        Err(StoreError::Command(CommandError::HoldNotOpen { .. }))
    ));
    assert!(matches!(
        results[6],
        Err(StoreError::Command(CommandError::CustomerNotFound(_)))
    ));
    let Ok(Outcome::Usage(last)) = &results[7] else {
        panic!("{:?}", results[7])
    };
    assert_eq!((last.balance, last.available), (c("6"), c("6")));
    let customer = store.customer("r_1", T0).await.unwrap().unwrap();
    assert_eq!((customer.balance, customer.held), (c("6"), c("0")));
}

async fn a_database_error_fails_the_whole_batch(db: &TestDb) {
    let store = &db.store;
    new_customer(store, "e_1", "10").await;
    let entries_before = store.ledger("e_1", &Default::default()).await.unwrap().data.len();
    // Priority 101 passes the store (the API validates it) but breaks the grants CHECK: the
    // usage before it was already written in the same transaction.
    let batch = vec![
        request(usage_cmd("e_1", "1"), Some("e-first")),
        request(hold_cmd("e_1", "1", 600), None),
        request(grant_cmd("e_1", "1", 101, None), None),
        request(usage_cmd("e_1", "2"), None),
    ];
    let results = store.apply(batch, T0).await;
    for (i, r) in results.iter().enumerate() {
        assert!(matches!(r, Err(StoreError::Batch(_))), "request {i}: {r:?}");
    }
    let customer = store.customer("e_1", T0).await.unwrap().unwrap();
    assert_eq!(
        (customer.balance, customer.held),
        (c("10"), c("0")),
        "nothing half-applied"
    );
    assert_eq!(
        store.ledger("e_1", &Default::default()).await.unwrap().data.len(),
        entries_before
    );
    // The key was not kept: the retry runs.
    let retry = store
        .apply(vec![request(usage_cmd("e_1", "1"), Some("e-first"))], T0)
        .await;
    assert!(retry[0].is_ok(), "{:?}", retry[0]);
    assert_eq!(store.customer("e_1", T0).await.unwrap().unwrap().balance, c("9"));
}

/// Two stores (as two replicas would have), each with its own writer, debit the same few
/// customers at once; then every successful debit is in the books exactly once.
async fn several_writers_race_on_the_same_customers(db: &TestDb) {
    let customers = ["s_1", "s_2", "s_3", "s_4"];
    for customer in customers {
        new_customer(&db.store, customer, "30").await;
    }
    let other = Store::open(&db.url).await.unwrap();
    let writers = [
        Writer::spawn(db.store.clone(), small_batches()),
        Writer::spawn(other.clone(), small_batches()),
    ];
    let mut tasks = Vec::new();
    for client in 0..16u64 {
        let writer = writers[client as usize % 2].clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0xABCD_0000 + client * 7919);
            let mut spent: HashMap<&str, i64> = HashMap::new();
            for n in 0..40 {
                // Reversed orders on the two replicas: unsorted locking would deadlock.
                let customer = customers[rng.next(4) as usize];
                let amount = Credits::from_micros(100_000 * (1 + rng.next(10) as i64));
                let key = format!("c{client}_{n}");
                match writer
                    .submit(request(usage_cmd(customer, &amount.to_string()), Some(&key)), T0)
                    .await
                {
                    Ok(_) => *spent.entry(customer).or_default() += amount.micros(),
                    Err(StoreError::Command(CommandError::InsufficientCredits { .. })) => {}
                    Err(e) => panic!("client {client}: {e}"),
                }
            }
            spent
        }));
    }
    let mut spent: HashMap<&str, i64> = HashMap::new();
    for task in tasks {
        for (customer, micros) in task.await.unwrap() {
            *spent.entry(customer).or_default() += micros;
        }
    }
    for customer in customers {
        let stored = db.store.customer(customer, T0).await.unwrap().unwrap();
        assert!(stored.balance >= Credits::ZERO);
        assert_eq!(
            stored.balance.micros(),
            30_000_000 - spent.get(customer).copied().unwrap_or(0),
            "{customer}: every successful debit exactly once"
        );
    }
    other.close().await;
}

/// A client retrying on another replica while the first attempt is still in flight: both
/// writers decide the same key at once; one commits it, the other rolls back, retries and
/// replays that result. Every key debits exactly once and both answers are the same.
async fn one_key_on_two_writers_at_once_is_applied_once(db: &TestDb) {
    new_customer(&db.store, "twice_1", "1000").await;
    let other = Store::open(&db.url).await.unwrap();
    let writers = [
        Writer::spawn(db.store.clone(), small_batches()),
        Writer::spawn(other.clone(), small_batches()),
    ];
    let keys = 60;
    let mut tasks = Vec::new();
    for n in 0..keys {
        for writer in &writers {
            let writer = writer.clone();
            tasks.push(tokio::spawn(async move {
                let key = format!("retry_{n}");
                writer.submit(request(usage_cmd("twice_1", "1"), Some(&key)), T0).await
            }));
        }
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    for pair in results.chunks(2) {
        let (Ok(Outcome::Usage(a)), Ok(Outcome::Usage(b))) = (&pair[0], &pair[1]) else {
            panic!("both attempts succeed: {pair:?}");
        };
        assert_eq!(a.id, b.id, "the second attempt replays the first's usage");
    }
    let stored = db.store.customer("twice_1", T0).await.unwrap().unwrap();
    assert_eq!(stored.balance, c("940"), "60 keys, one credit each, once");
    assert_books_balance(&db.store).await;
    other.close().await;
}
