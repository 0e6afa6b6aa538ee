//! The batch's decisions ([`Book`]) as properties: a refused command changes nothing; a
//! payment's credits converge to what its final money state says whatever events came
//! before; allowances roll over at most the cap of what the previous period left.

use creditd_domain::allowance::{AllowanceKind, AllowanceRecord, AllowanceRequest};
use creditd_domain::command::{NewGrant, NewHold, NewUsage};
use creditd_domain::money::PaymentStatus;
use creditd_domain::purchase::PaymentUpdate;
use creditd_domain::refund::{targets, DisputeState, MoneyState, PaymentRecord};
use creditd_domain::views::{Payment, Plan};
use creditd_domain::{Book, Command, Credits, CustomerState, Facts, GrantSource, Outcome};
use proptest::prelude::*;

const NOW: i64 = 1_000;

fn micros(n: i64) -> Credits {
    Credits::from_micros(n)
}

fn book_with(customer: &str) -> Book {
    let mut book = Book::new(Facts::default());
    book.admit(CustomerState::new(customer), NOW);
    book
}

fn grant(customer: &str, amount: i64, expires_at: Option<i64>) -> Command {
    Command::Grant(NewGrant {
        customer: customer.into(),
        amount: micros(amount),
        priority: 50,
        expires_at,
        source: GrantSource::Promotion,
        reason: None,
        reference: None,
    })
}

fn payment(credits: i64, amount: i64) -> Payment {
    Payment {
        id: "pay_1".into(),
        customer: "cus".into(),
        package: "pkg_1".into(),
        quantity: 1,
        credits: micros(credits),
        amount,
        currency: "usd".into(),
        status: PaymentStatus::Pending,
        flow: "checkout".into(),
        checkout_session: Some("cs_1".into()),
        payment_intent: None,
        grant: None,
        receipt_url: None,
        failure_message: None,
        created: 0,
        updated: 0,
    }
}

/// A book with one customer and one pending payment, fulfilled.
fn paid_book(credits: i64, amount: i64) -> Book {
    let mut book = book_with("cus");
    let record = PaymentRecord {
        payment: payment(credits, amount),
        amount_refunded: 0,
        dispute_id: None,
        dispute_status: None,
        clawed_back: Credits::ZERO,
        frozen_target: Credits::ZERO,
        freezes: Vec::new(),
    };
    book.facts.payments.insert("pay_1".into(), record);
    let paid = Command::UpdatePayment {
        payment: "pay_1".into(),
        update: PaymentUpdate::Paid {
            reference: "cs_1".into(),
            payment_intent: None,
            receipt_url: None,
        },
    };
    let Ok(Outcome::Payment { granted: true, .. }) = book.apply(&paid, NOW) else {
        panic!("fulfilled")
    };
    book
}

fn money() -> impl Strategy<Value = MoneyState> {
    let dispute = prop::option::of(
        (
            prop::sample::select(vec!["needs_response", "under_review", "won", "lost", "warning_closed"]),
            1i64..=1000,
        )
            .prop_map(|(status, amount)| DisputeState {
                id: "dp_1".into(),
                status: status.into(),
                amount,
            }),
    );
    (0i64..=1200, dispute).prop_map(|(refunded, dispute)| MoneyState {
        amount_refunded: refunded,
        latest_refund: (refunded > 0).then(|| "re_1".into()),
        dispute,
    })
}

#[derive(Clone, Debug)]
enum Op {
    Grant(i64, Option<i64>),
    Usage(i64),
    Hold(i64),
    Capture(usize, i64),
    Release(usize),
    Paid,
    Converge(MoneyState),
    Sweep,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1i64..5_000_000, prop::option::of(NOW - 5..NOW + 5)).prop_map(|(a, e)| Op::Grant(a, e)),
        (1i64..6_000_000).prop_map(Op::Usage),
        (1i64..4_000_000).prop_map(Op::Hold),
        (0usize..4, 0i64..5_000_000).prop_map(|(i, a)| Op::Capture(i, a)),
        (0usize..4).prop_map(Op::Release),
        Just(Op::Paid),
        money().prop_map(Op::Converge),
        Just(Op::Sweep),
    ]
}

proptest! {
    /// Whatever is refused leaves the book — states, facts and changes — exactly as it was.
    #[test]
    fn a_refused_command_changes_nothing(ops in prop::collection::vec(op(), 1..40)) {
        let mut book = paid_book(10_000_000, 1000);
        let mut holds: Vec<String> = Vec::new();
        for op in ops {
            let command = match op {
                Op::Grant(a, e) => grant("cus", a, e),
                Op::Usage(a) => Command::Usage(NewUsage {
                    customer: "cus".into(),
                    amount: micros(a),
                    feature: "f".into(),
                    metadata: serde_json::json!({}),
                }),
                Op::Hold(a) => Command::CreateHold(NewHold {
                    customer: "cus".into(),
                    amount: micros(a),
                    ttl_seconds: 60,
                    feature: None,
                    metadata: serde_json::json!({}),
                }),
                Op::Capture(i, a) => Command::CaptureHold {
                    hold: holds.get(i).cloned().unwrap_or_else(|| "hold_none".into()),
                    amount: (a > 0).then(|| micros(a)),
                    feature: None,
                },
                Op::Release(i) => Command::ReleaseHold {
                    hold: holds.get(i).cloned().unwrap_or_else(|| "hold_none".into()),
                },
                Op::Paid => Command::UpdatePayment {
                    payment: "pay_1".into(),
                    update: PaymentUpdate::Paid { reference: "cs_1".into(), payment_intent: None, receipt_url: None },
                },
                Op::Converge(money) => Command::ConvergePayment { payment: "pay_1".into(), money },
                Op::Sweep => Command::Sweep { customer: "cus".into() },
            };
            let before = book.clone();
            match book.apply(&command, NOW) {
                Ok(Outcome::Hold(h)) if matches!(command, Command::CreateHold(_)) => holds.push(h.id),
                Ok(_) => {}
                Err(e) => prop_assert_eq!(&book, &before, "{:?} refused ({}) yet changed the book", command, e),
            }
            prop_assert!(book.customers["cus"].is_consistent());
        }
    }

    /// Duplicated, reordered or missed events only delay the result: converging through any
    /// states and then to the last one leaves what converging straight to it leaves, and
    /// converging to it again changes nothing.
    #[test]
    fn a_payment_converges_to_its_last_money_state(
        credits in 1i64..100_000_000,
        amount in 1i64..=1000,
        path in prop::collection::vec(money(), 0..6),
        last in money(),
    ) {
        let mut book = paid_book(credits, amount);
        for state in path.iter().chain([&last]) {
            let command = Command::ConvergePayment { payment: "pay_1".into(), money: state.clone() };
            prop_assert!(book.apply(&command, NOW).is_ok());
        }
        let again = Command::ConvergePayment { payment: "pay_1".into(), money: last.clone() };
        prop_assert_eq!(book.apply(&again, NOW), Ok(Outcome::Converged(Default::default())));
        let (clawed, frozen) = targets(&book.facts.payments["pay_1"].payment, &last);
        let state = &book.customers["cus"];
        prop_assert_eq!(state.frozen, frozen);
        prop_assert_eq!(state.account.balance.micros(), credits - clawed.micros() - frozen.micros());
        prop_assert!(state.is_consistent());
        let record = &book.facts.payments["pay_1"];
        let frozen_grants: i64 = record.freezes.iter().map(|f| f.amount.micros()).sum();
        prop_assert_eq!(frozen_grants, frozen.micros(), "the freezes are what is frozen");
    }

    /// Each period's allowance is the plan's credits plus what the previous period's allowance
    /// left unused, at most the cap; what was left expires.
    #[test]
    fn allowances_roll_over_at_most_the_cap(
        plan_credits in 1i64..50_000_000,
        cap in 0i64..50_000_000,
        spends in prop::collection::vec(0i64..60_000_000, 1..6),
    ) {
        let plan = Plan {
            id: "plan_1".into(),
            name: "Pro".into(),
            credits: micros(plan_credits),
            price: 100,
            currency: "usd".into(),
            interval: "month".into(),
            rollover_cap: micros(cap),
            stripe_price: None,
            active: true,
            created: 0,
        };
        let mut book = book_with("cus");
        let mut left: Option<i64> = None;
        for (period, spend) in spends.into_iter().enumerate() {
            let start = NOW + period as i64 * 100;
            let request = AllowanceRequest {
                invoice: format!("in_{period}"),
                subscription: "sub_1".into(),
                customer: "cus".into(),
                plan: plan.clone(),
                period_start: start,
                period_end: start + 100,
                kind: AllowanceKind::Period,
            };
            let Ok(Outcome::Allowance(Some(grant))) = book.apply(&Command::GrantAllowance(request.clone()), start) else {
                panic!("granted")
            };
            let rollover = left.map_or(0, |l| l.min(cap));
            prop_assert_eq!(grant.amount.micros(), plan_credits + rollover);
            prop_assert_eq!(book.customers["cus"].account.balance, grant.amount, "the previous allowance expired");
            // The same invoice again grants nothing.
            prop_assert_eq!(book.apply(&Command::GrantAllowance(request), start), Ok(Outcome::Allowance(None)));
            let spend = spend.min(grant.amount.micros());
            if spend > 0 {
                let usage = Command::Usage(NewUsage {
                    customer: "cus".into(),
                    amount: micros(spend),
                    feature: "f".into(),
                    metadata: serde_json::json!({}),
                });
                prop_assert!(book.apply(&usage, start).is_ok());
            }
            left = Some(grant.amount.micros() - spend);
        }
    }
}

#[test]
fn an_upgrade_tops_the_period_up_to_the_new_plan_once() {
    let mut book = book_with("cus");
    book.facts.allowances.push(AllowanceRecord {
        invoice: "in_0".into(),
        subscription: "sub_1".into(),
        customer: "cus".into(),
        grant: None,
        credits: micros(10),
        period_start: 0,
        period_end: NOW + 100,
    });
    let plan = |credits| Plan {
        id: "plan_2".into(),
        name: "Max".into(),
        credits: micros(credits),
        price: 200,
        currency: "usd".into(),
        interval: "month".into(),
        rollover_cap: Credits::ZERO,
        stripe_price: None,
        active: true,
        created: 0,
    };
    let change = |invoice: &str, credits| {
        Command::GrantAllowance(AllowanceRequest {
            invoice: invoice.into(),
            subscription: "sub_1".into(),
            customer: "cus".into(),
            plan: plan(credits),
            period_start: 0,
            period_end: NOW + 100,
            kind: AllowanceKind::Change,
        })
    };
    let Ok(Outcome::Allowance(Some(top_up))) = book.apply(&change("in_1", 25), NOW) else {
        panic!()
    };
    assert_eq!(top_up.amount, micros(15), "up to the new plan's credits");
    assert_eq!(top_up.reason.as_deref(), Some("upgrade to Max"));
    assert_eq!(
        book.apply(&change("in_2", 25), NOW),
        Ok(Outcome::Allowance(None)),
        "already at 25"
    );
    assert_eq!(
        book.apply(&change("in_3", 5), NOW),
        Ok(Outcome::Allowance(None)),
        "a downgrade grants nothing"
    );
}
