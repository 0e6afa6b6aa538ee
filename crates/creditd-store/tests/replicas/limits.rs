//! Limits and budgets across two replicas of one database: both writers decide on the same
//! counters, each with its own account cache, and together admit exactly what is left.

use std::collections::BTreeMap;

use creditd_domain::calendar::Period;
use creditd_domain::command::NewUsage;
use creditd_domain::entitlement::{Entitlement, Refusal};
use creditd_domain::{Command, CommandError};
use creditd_store::testing::TestDb;
use creditd_store::{NewBudget, NewFeature, NewPlan, StoreError};
use futures::future::join_all;

use super::super::{assert_books_balance, c, grant_cmd, new_customer, T0};
use super::Replicas;

on_both_backends!(two_replicas_admit_exactly_the_limit_and_the_budget_left);

fn usage(feature: &str, budget: Option<&str>) -> Command {
    Command::Usage(NewUsage {
        customer: "u".into(),
        amount: c("1"),
        feature: feature.into(),
        metadata: serde_json::json!({}),
        priced: None,
        budget: budget.map(str::to_string),
    })
}

/// Runs `count` copies of `command` at once, alternating replicas; returns (admitted, refused).
async fn race(r: &Replicas, count: usize, command: Command) -> (usize, Vec<StoreError>) {
    let results = join_all((0..count).map(|i| r.on(i % 2, command.clone(), T0))).await;
    let admitted = results.iter().filter(|r| r.is_ok()).count();
    (admitted, results.into_iter().filter_map(Result::err).collect())
}

async fn two_replicas_admit_exactly_the_limit_and_the_budget_left(db: &TestDb) {
    let r = Replicas::open(db).await;
    let store = &r.stores[0];
    new_customer(store, "u", "0").await;
    r.on(0, grant_cmd("u", "1000", 50, None), T0).await.unwrap();
    let images = NewFeature {
        id: "images".into(),
        name: "Images".into(),
        card: None,
    };
    store.create_feature(&images, T0).await.unwrap().unwrap();
    let limited = Entitlement::limited(12, Period::Month).unwrap();
    let free = NewPlan {
        name: "Free".into(),
        credits: c("0"),
        price: 0,
        currency: "usd".into(),
        interval: "month".into(),
        rollover_cap: c("0"),
        stripe_price: None,
        free: true,
        features: BTreeMap::from([("images".to_string(), limited)]),
    };
    store.create_plan(&free, T0).await.unwrap();
    // Two uses first, one on each replica: both caches hold the customer.
    for replica in [0, 1] {
        r.on(replica, usage("images", None), T0).await.unwrap();
    }
    let (admitted, refused) = race(&r, 40, usage("images", None)).await;
    assert_eq!(admitted, 10);
    assert!(refused.iter().all(|e| matches!(
        e,
        StoreError::Command(CommandError::Refused(Refusal::LimitReached { .. }))
    )));

    let budget = NewBudget {
        customer: "u".into(),
        id: "key_a".into(),
        name: None,
        limit: c("7"),
        period: Period::Total,
    };
    store.put_budget(&budget, T0).await.unwrap().unwrap();
    let (admitted, refused) = race(&r, 40, usage("chat", Some("key_a"))).await;
    assert_eq!((admitted, refused.len()), (7, 33));
    let budget = store.budget("u", "key_a", T0).await.unwrap().unwrap();
    assert_eq!((budget.used, budget.remaining), (c("7"), c("0")));
    let customer = store.customer("u", T0).await.unwrap().unwrap();
    assert_eq!(customer.balance, c("981"), "12 images and 7 chats of 1 credit");
}
