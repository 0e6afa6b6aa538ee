//! Two replicas (two stores, each with its writer and its account cache) on one database
//! changing the same customers: every command kind, alternating at random between the
//! replicas so each one's cache is made stale by the other's writes, checked step by step
//! against a model built on the domain's `Account`; `verify` after each step.

use std::collections::HashMap;
use std::time::Duration;

use creditd_domain::command::NewDeduction;
use creditd_domain::refund::DisputeState;
use creditd_domain::views::{Payment, Plan};
use creditd_domain::{Account, Command, CommandError, Credits, GrantSource, Lot, Outcome, Request};
use creditd_store::testing::TestDb;
use creditd_store::{
    AllowanceKind, AllowanceRequest, MoneyState, NewPackage, NewPayment, PaymentUpdate, Store, StoreError,
    SubscriptionRecord, Writer, WriterConfig,
};

use super::{assert_books_balance, c, grant_cmd, hold_cmd, new_customer, usage_cmd, Rng, T0};

mod limits;

on_both_backends!(
    two_replicas_with_every_command_kind_match_the_model,
    a_stale_cache_is_reloaded_after_the_other_replicas_writes,
);

fn config() -> WriterConfig {
    WriterConfig {
        max_batch: 16,
        window: Duration::from_millis(1),
        queue_capacity: 1024,
        accounts: 64,
    }
}

struct Replicas {
    stores: [Store; 2],
    writers: [Writer; 2],
}

impl Replicas {
    async fn open(db: &TestDb) -> Replicas {
        let other = Store::open(&db.url).await.unwrap();
        let stores = [db.store.clone(), other];
        let writers = [
            Writer::spawn(stores[0].clone(), config()),
            Writer::spawn(stores[1].clone(), config()),
        ];
        Replicas { stores, writers }
    }

    async fn on(&self, replica: usize, command: Command, now: i64) -> Result<Outcome, StoreError> {
        let request = Request {
            command,
            idempotency: None,
        };
        self.writers[replica].submit(request, now).await
    }
}

/// What the model holds of one payment.
struct PaymentModel {
    payment: Payment,
    grant: Option<String>,
    clawed: Credits,
    frozen_target: Credits,
    freezes: Vec<(String, Credits)>,
}

/// The domain's account arithmetic, driven in the order the replicas applied the commands.
#[derive(Default)]
struct Model {
    accounts: HashMap<String, Account>,
    frozen: HashMap<String, Credits>,
    /// Hold → (customer, amount, expires_at, open).
    holds: HashMap<String, (String, Credits, i64, bool)>,
    lots: HashMap<String, Lot>,
    /// Grant → what its expire entries took.
    expired: HashMap<String, Credits>,
    /// (subscription, period end) → what the plan granted for that period so far.
    this_period: HashMap<(String, i64), Credits>,
    seq: i64,
}

impl Model {
    fn account(&mut self, customer: &str, now: i64) -> &mut Account {
        let account = self.accounts.get_mut(customer).expect("a known customer");
        for (_, (owner, amount, expires, open)) in self.holds.iter_mut() {
            if owner == customer && *open && *expires <= now {
                account.release(*amount);
                *open = false;
            }
        }
        for m in account.expire_due(now) {
            let e = self.expired.entry(m.grant_id).or_default();
            *e = Credits::from_micros(e.micros() - m.amount.micros());
        }
        self.accounts.get_mut(customer).unwrap()
    }

    /// A new grant: credited, then paying any debt; returns what remains of it.
    fn credit(
        &mut self,
        customer: &str,
        id: &str,
        amount: Credits,
        priority: i32,
        expires_at: Option<i64>,
        now: i64,
    ) -> Credits {
        self.seq += 1;
        let lot = Lot {
            grant_id: id.to_string(),
            remaining: amount,
            priority,
            expires_at,
            seq: self.seq,
        };
        self.lots.insert(lot.grant_id.clone(), lot.clone());
        let account = self.account(customer, now);
        account.credit(lot);
        account.settle_debt(now);
        account.lots.iter().find(|l| l.grant_id == id).unwrap().remaining
    }

    /// A grant the store reported, with its remaining checked.
    fn credit_grant(&mut self, grant: &creditd_domain::views::Grant, now: i64, what: &str) {
        let remaining = self.credit(
            &grant.customer,
            &grant.id,
            grant.amount,
            grant.priority,
            grant.expires_at,
            now,
        );
        assert_eq!(
            remaining, grant.remaining,
            "{what}: the grant's remaining after paying debt"
        );
    }
}

/// The store's view of a customer equals the model's.
async fn same_as_model(store: &Store, model: &mut Model, customer: &str, now: i64, what: &str) {
    let got = store.customer(customer, now).await.unwrap().unwrap();
    let frozen = model.frozen.get(customer).copied().unwrap_or_default();
    let account = model.account(customer, now);
    assert_eq!(
        (got.balance, got.available, got.held, got.debt, got.frozen),
        (account.balance, account.available(), account.held, account.debt, frozen),
        "{what}: {customer}"
    );
}

/// 100 credits for 10.00 usd.
async fn package_of_100(store: &Store) -> creditd_domain::views::Package {
    let new = NewPackage {
        name: "100".into(),
        credits: c("100"),
        price: 1000,
        currency: "usd".into(),
        stripe_price: None,
    };
    store.create_package(&new, T0).await.unwrap()
}

fn plan(credits: &str, cap: &str) -> Plan {
    Plan {
        id: "plan_test".into(),
        name: "Pro".into(),
        credits: c(credits),
        price: 1000,
        currency: "usd".into(),
        interval: "month".into(),
        rollover_cap: c(cap),
        stripe_price: None,
        active: true,
        created: T0,
        free: false,
        features: Default::default(),
    }
}

async fn two_replicas_with_every_command_kind_match_the_model(db: &TestDb) {
    let r = Replicas::open(db).await;
    let customers = ["r_1", "r_2"];
    let mut model = Model::default();
    let package = package_of_100(&db.store).await;
    for customer in customers {
        new_customer(&db.store, customer, "0").await;
        model
            .accounts
            .insert(customer.into(), Account::new(c("0"), c("0"), Vec::new()));
        let record = SubscriptionRecord {
            id: format!("sub_{customer}"),
            customer: customer.into(),
            plan: None,
            status: "active".into(),
            current_period_start: T0,
            current_period_end: T0 + 100,
            cancel_at_period_end: false,
        };
        db.store.upsert_subscription(&record, T0).await.unwrap();
    }
    let mut payments: Vec<PaymentModel> = Vec::new();
    let mut periods: HashMap<&str, (i64, Option<String>)> = HashMap::new();
    let mut rng = Rng(0x0DD5_EED5_1234_5678);
    let mut ran: HashMap<&str, usize> = HashMap::new();
    for step in 0..160 {
        let now = T0 + step * 3;
        let replica = rng.next(2) as usize;
        let customer = customers[rng.next(2) as usize];
        let amount = Credits::from_micros(1 + rng.next(8_000_000) as i64);
        let what = format!("step {step} on replica {replica}");
        match rng.next(12) {
            0 => {
                *ran.entry("grant").or_default() += 1;
                let expires = (rng.next(2) == 0).then_some(now + 1 + rng.next(30) as i64);
                let command = grant_cmd(customer, &amount.to_string(), 40 + rng.next(20) as i32, expires);
                let Ok(Outcome::Grant(g)) = r.on(replica, command, now).await else {
                    panic!("{what}")
                };
                model.credit_grant(&g, now, &what);
            }
            1..=3 => {
                *ran.entry("usage").or_default() += 1;
                let got = r.on(replica, usage_cmd(customer, &amount.to_string()), now).await;
                let account = model.account(customer, now);
                match (account.debit(amount, now), got) {
                    (Ok(_), Ok(Outcome::Usage(u))) => assert_eq!(u.balance, account.balance, "{what}"),
                    (Err(e), Err(StoreError::Command(CommandError::InsufficientCredits { available, .. }))) => {
                        assert_eq!(e.available, available, "{what}")
                    }
                    (want, got) => panic!("{what}: model {want:?}, store {got:?}"),
                }
            }
            4 => {
                *ran.entry("deduct").or_default() += 1;
                let command = Command::Deduct(NewDeduction {
                    customer: customer.into(),
                    amount,
                    admin: "ops@example.com".into(),
                    reason: "test".into(),
                });
                let got = r.on(replica, command, now).await;
                let ok = model.account(customer, now).debit(amount, now).is_ok();
                assert_eq!(ok, got.is_ok(), "{what}: {got:?}");
            }
            5 => {
                *ran.entry("hold").or_default() += 1;
                let ttl = 1 + rng.next(20) as i64;
                let got = r.on(replica, hold_cmd(customer, &amount.to_string(), ttl), now).await;
                let ok = model.account(customer, now).hold(amount).is_ok();
                match got {
                    Ok(Outcome::Hold(h)) if ok => {
                        model.holds.insert(h.id, (customer.into(), amount, now + ttl, true));
                    }
                    Err(StoreError::Command(CommandError::InsufficientCredits { .. })) if !ok => {}
                    got => panic!("{what}: model {ok}, store {got:?}"),
                }
            }
            6 if !model.holds.is_empty() => {
                *ran.entry("finish hold").or_default() += 1;
                let mut ids: Vec<String> = model.holds.keys().cloned().collect();
                ids.sort();
                let id = ids[rng.next(ids.len() as u64) as usize].clone();
                let capture = rng.next(2) == 0;
                let command = if capture {
                    Command::CaptureHold {
                        hold: id.clone(),
                        amount: Some(amount),
                        feature: None,
                        priced: None,
                    }
                } else {
                    Command::ReleaseHold { hold: id.clone() }
                };
                let got = r.on(replica, command, now).await;
                let owner = model.holds[&id].0.clone();
                model.account(&owner, now);
                let (_, held, _, open) = model.holds[&id].clone();
                let account = model.accounts.get_mut(&owner).unwrap();
                let want = match (open, capture) {
                    (false, _) => Err("not open"),
                    (true, true) => account
                        .capture(held, amount, now)
                        .map(|_| ())
                        .map_err(|_| "insufficient"),
                    (true, false) => {
                        account.release(held);
                        Ok(())
                    }
                };
                if want.is_ok() {
                    model.holds.get_mut(&id).unwrap().3 = false;
                }
                match (want, got) {
                    (Ok(()), Ok(Outcome::Hold(_))) => {}
                    (Err("not open"), Err(StoreError::Command(CommandError::HoldNotOpen { .. }))) => {}
                    (Err("insufficient"), Err(StoreError::Command(CommandError::InsufficientCredits { .. }))) => {}
                    (want, got) => panic!("{what}: model {want:?}, store {got:?}"),
                }
            }
            7 => {
                *ran.entry("payment").or_default() += 1;
                let new = NewPayment {
                    customer: customer.into(),
                    package: package.clone(),
                    quantity: 1,
                    flow: "checkout",
                };
                let payment = r.stores[replica].create_payment(&new, now).await.unwrap();
                payments.push(PaymentModel {
                    payment,
                    grant: None,
                    clawed: c("0"),
                    frozen_target: c("0"),
                    freezes: Vec::new(),
                });
            }
            8 if !payments.is_empty() => {
                *ran.entry("fulfil").or_default() += 1;
                // Paid, possibly again: credits are granted once.
                let pick = rng.next(payments.len() as u64) as usize;
                let p = &mut payments[pick];
                let update = PaymentUpdate::Paid {
                    reference: format!("cs_{}", p.payment.id),
                    payment_intent: None,
                    receipt_url: None,
                };
                let command = Command::UpdatePayment {
                    payment: p.payment.id.clone(),
                    update,
                };
                let Ok(Outcome::Payment { payment, granted }) = r.on(replica, command, now).await else {
                    panic!("{what}")
                };
                assert_eq!(granted, p.grant.is_none(), "{what}: granted once");
                if granted {
                    let grant_id = payment.grant.clone().unwrap();
                    model.credit(&payment.customer, &grant_id, payment.credits, 50, None, now);
                    p.grant = Some(grant_id);
                }
                p.payment = payment;
            }
            9 if payments.iter().any(|p| p.grant.is_some()) => {
                *ran.entry("converge").or_default() += 1;
                let paid: Vec<usize> = (0..payments.len()).filter(|&i| payments[i].grant.is_some()).collect();
                let pick = paid[rng.next(paid.len() as u64) as usize];
                let p = &mut payments[pick];
                let money = match rng.next(4) {
                    0 => MoneyState {
                        amount_refunded: rng.next(1001) as i64,
                        latest_refund: Some("re_1".into()),
                        dispute: None,
                    },
                    n => MoneyState {
                        amount_refunded: 0,
                        latest_refund: None,
                        dispute: Some(DisputeState {
                            id: "dp_1".into(),
                            status: ["needs_response", "won", "lost"][n as usize - 1].into(),
                            amount: 1 + rng.next(1000) as i64,
                        }),
                    },
                };
                let command = Command::ConvergePayment {
                    payment: p.payment.id.clone(),
                    money: money.clone(),
                };
                let Ok(Outcome::Converged(done)) = r.on(replica, command, now).await else {
                    panic!("{what}")
                };
                converge_model(&mut model, p, &money, now, &done, &what);
            }
            10 => {
                *ran.entry("allowance").or_default() += 1;
                let (start, previous) = periods.get(customer).cloned().unwrap_or((T0, None));
                let change = previous.is_some() && rng.next(3) == 0;
                let request = AllowanceRequest {
                    invoice: format!("in_{customer}_{step}"),
                    subscription: format!("sub_{customer}"),
                    customer: customer.into(),
                    plan: if change { plan("15", "2") } else { plan("10", "2") },
                    period_start: if change { start - 50 } else { start },
                    period_end: if change { start } else { start + 50 },
                    kind: if change {
                        AllowanceKind::Change
                    } else {
                        AllowanceKind::Period
                    },
                };
                let Ok(Outcome::Allowance(grant)) = r.on(replica, Command::GrantAllowance(request.clone()), now).await
                else {
                    panic!("{what}")
                };
                allowance_model(&mut model, &request, previous.as_deref(), grant.as_ref(), now, &what);
                if !change {
                    periods.insert(customer, (start + 50, grant.map(|g| g.id)));
                }
            }
            _ => {
                *ran.entry("sweep").or_default() += 1;
                let got = r
                    .on(
                        replica,
                        Command::Sweep {
                            customer: customer.into(),
                        },
                        now,
                    )
                    .await;
                assert!(matches!(got, Ok(Outcome::Swept)), "{what}: {got:?}");
            }
        }
        for customer in customers {
            same_as_model(&db.store, &mut model, customer, now, &what).await;
        }
        if step % 20 == 19 {
            assert_books_balance(&db.store).await;
        }
    }
    assert_eq!(ran.len(), 10, "every command kind ran: {ran:?}");
    assert!(
        ran.values().all(|&n| n >= 3),
        "every command kind ran a few times: {ran:?}"
    );
    r.stores[1].close().await;
}

/// A refund or dispute on the model: the same targets, the differences applied.
fn converge_model(
    model: &mut Model,
    p: &mut PaymentModel,
    money: &MoneyState,
    now: i64,
    done: &creditd_domain::refund::Convergence,
    what: &str,
) {
    let (clawed, frozen) = creditd_domain::refund::targets(&p.payment, money);
    let customer = p.payment.customer.clone();
    let mut unfrozen = c("0");
    if frozen != p.frozen_target {
        for (grant, amount) in p.freezes.drain(..) {
            let lot = model.lots[&grant].clone();
            let account = model.account(&customer, now);
            account.load_lot(Lot {
                remaining: Credits::ZERO,
                ..lot
            });
            account.unfreeze(&grant, amount);
            unfrozen = unfrozen.checked_add(amount).unwrap();
        }
        model.account(&customer, now).settle_debt(now);
    }
    let delta = clawed.micros() - p.clawed.micros();
    if delta < 0 {
        let id = format!("restored_{}_{}", p.payment.id, model.seq + 1);
        model.credit(&customer, &id, Credits::from_micros(-delta), 50, None, now);
    }
    assert_eq!(done.restored.micros(), (-delta).max(0), "{what}");
    if delta > 0 {
        let grant = p.grant.clone();
        model
            .account(&customer, now)
            .clawback(grant.as_deref(), Credits::from_micros(delta), now);
    }
    let mut frozen_now = c("0");
    if frozen != p.frozen_target && frozen.is_positive() {
        let grant = p.grant.clone();
        for m in model.account(&customer, now).freeze(grant.as_deref(), frozen, now) {
            let amount = Credits::from_micros(-m.amount.micros());
            frozen_now = frozen_now.checked_add(amount).unwrap();
            p.freezes.push((m.grant_id, amount));
        }
    }
    assert_eq!(
        (done.clawed_back.micros(), done.frozen, done.unfrozen),
        (delta.max(0), frozen_now, unfrozen),
        "{what}"
    );
    let f = model.frozen.entry(customer).or_default();
    *f = Credits::from_micros(f.micros() + frozen_now.micros() - unfrozen.micros());
    p.clawed = clawed;
    p.frozen_target = frozen;
}

/// An allowance on the model: a period's grant (the previous period's remainder expired, up
/// to the cap rolled over) or an upgrade's top-up to the new plan.
fn allowance_model(
    model: &mut Model,
    request: &AllowanceRequest,
    previous: Option<&str>,
    grant: Option<&creditd_domain::views::Grant>,
    now: i64,
    what: &str,
) {
    let key = (request.subscription.clone(), request.period_end);
    let (expected, plan_part) = match request.kind {
        AllowanceKind::Period => {
            let mut unused = Credits::ZERO;
            if let Some(previous) = previous {
                model.account(&request.customer, now);
                let account = model.accounts.get_mut(&request.customer).unwrap();
                if let Some(m) = account.expire_now(previous) {
                    let e = model.expired.entry(previous.to_string()).or_default();
                    *e = Credits::from_micros(e.micros() - m.amount.micros());
                }
                unused = model.expired.get(previous).copied().unwrap_or_default();
            }
            let rollover = unused.min(request.plan.rollover_cap);
            (
                Some(request.plan.credits.checked_add(rollover).unwrap()),
                request.plan.credits,
            )
        }
        AllowanceKind::Change => {
            let granted = model.this_period.get(&key).copied().unwrap_or_default();
            let top_up = Credits::from_micros((request.plan.credits.micros() - granted.micros()).max(0));
            (top_up.is_positive().then_some(top_up), top_up)
        }
    };
    assert_eq!(grant.map(|g| g.amount), expected, "{what}");
    let e = model.this_period.entry(key).or_default();
    *e = e.checked_add(plan_part).unwrap();
    if let Some(g) = grant {
        model.credit_grant(g, now, what);
    }
}

/// Replica A caches a customer; replica B changes it (purchase fulfilment, a refund, an admin
/// adjustment, a hold released); A's next decision must be on B's state, not its cache.
async fn a_stale_cache_is_reloaded_after_the_other_replicas_writes(db: &TestDb) {
    let r = Replicas::open(db).await;
    let (a, b) = (0, 1);
    new_customer(&db.store, "st_1", "10").await;
    let usage = |amount: &str| usage_cmd("st_1", amount);
    let balance = |store: Store| async move { store.customer("st_1", T0).await.unwrap().unwrap() };
    assert!(r.on(a, usage("1"), T0).await.is_ok(), "A caches the account: 9 left");
    // B fulfils a purchase of 100 credits.
    let package = package_of_100(&db.store).await;
    let new = NewPayment {
        customer: "st_1".into(),
        package,
        quantity: 1,
        flow: "checkout",
    };
    let payment = r.stores[b].create_payment(&new, T0).await.unwrap();
    let paid = Command::UpdatePayment {
        payment: payment.id.clone(),
        update: PaymentUpdate::Paid {
            reference: "cs_stale".into(),
            payment_intent: Some("pi_stale".into()),
            receipt_url: None,
        },
    };
    assert!(matches!(
        r.on(b, paid, T0).await,
        Ok(Outcome::Payment { granted: true, .. })
    ));
    assert_books_balance(&db.store).await;
    let spent = r.on(a, usage("100"), T0).await;
    assert!(spent.is_ok(), "A sees B's purchase: {spent:?}");
    assert_eq!(balance(db.store.clone()).await.balance, c("9"));
    // B refunds the whole payment: its credits are clawed back, the rest as debt.
    let refund = Command::ConvergePayment {
        payment: payment.id.clone(),
        money: MoneyState {
            amount_refunded: 1000,
            latest_refund: Some("re_stale".into()),
            dispute: None,
        },
    };
    assert!(r.on(b, refund, T0).await.is_ok());
    assert_books_balance(&db.store).await;
    let refused = r.on(a, usage("1"), T0).await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Command(CommandError::InsufficientCredits { .. }))
        ),
        "A sees B's clawback: {refused:?}"
    );
    let after = balance(db.store.clone()).await;
    assert_eq!((after.balance, after.debt), (c("-91"), c("91")));
    // B's admin grant pays the debt; A spends some; B's admin deduction takes more.
    let mut admin_grant = grant_cmd("st_1", "141", 50, None);
    if let Command::Grant(g) = &mut admin_grant {
        g.source = GrantSource::Admin;
    }
    assert!(r.on(b, admin_grant, T0).await.is_ok());
    assert!(
        r.on(a, usage("20"), T0).await.is_ok(),
        "A sees the grant that paid the debt: 50 available"
    );
    let deduct = Command::Deduct(NewDeduction {
        customer: "st_1".into(),
        amount: c("25"),
        admin: "ops@example.com".into(),
        reason: "goodwill reversed".into(),
    });
    assert!(r.on(b, deduct, T0).await.is_ok());
    assert_books_balance(&db.store).await;
    assert!(r.on(a, usage("6"), T0).await.is_err(), "A sees B's deduction: 5 left");
    assert!(r.on(a, usage("5"), T0).await.is_ok());
    // A hold placed on A and released on B cannot be captured on A.
    assert!(r.on(b, grant_cmd("st_1", "10", 50, None), T0).await.is_ok());
    let Ok(Outcome::Hold(hold)) = r.on(a, hold_cmd("st_1", "3", 60), T0).await else {
        panic!()
    };
    assert!(r
        .on(b, Command::ReleaseHold { hold: hold.id.clone() }, T0)
        .await
        .is_ok());
    let capture = Command::CaptureHold {
        hold: hold.id.clone(),
        amount: None,
        feature: None,
        priced: None,
    };
    let got = r.on(a, capture, T0).await;
    assert!(
        matches!(got, Err(StoreError::Command(CommandError::HoldNotOpen { .. }))),
        "A sees B's release: {got:?}"
    );
    let end = balance(db.store.clone()).await;
    assert_eq!((end.balance, end.held, end.debt), (c("10"), c("0"), c("0")));
    assert_books_balance(&db.store).await;
    r.stores[1].close().await;
}
