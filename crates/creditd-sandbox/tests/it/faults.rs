//! Fault injection for webhook deliveries: duplicates, shuffling, delays
//! and drops, set at start, through the handle or over HTTP, with counters.

use std::collections::BTreeMap;
use std::time::Duration;

use creditd_sandbox::{Faults, SandboxHandle};
use serde_json::Value;

use crate::helpers::*;

async fn customers(sb: &SandboxHandle, n: usize, tag: &str) -> Vec<String> {
    let c = client(sb);
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            c.create_customer(&format!("{tag}{i}"), None, &format!("{tag}-{i}"))
                .await
                .unwrap(),
        );
    }
    ids
}

async fn drained(sb: &SandboxHandle) {
    eventually("the delivery queue to drain", || async {
        (sb.pending_deliveries().await == 0).then_some(())
    })
    .await;
}

fn object_ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["data"]["object"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn duplicates_configured_at_start_deliver_each_event_several_times() {
    let hook = Receiver::start(0).await;
    let mut options = fast_options();
    options.faults = Faults {
        duplicates: 2,
        ..Faults::default()
    };
    let sb = creditd_sandbox::start_with(config(Some(hook.url.clone())), options)
        .await
        .unwrap();
    let ids = customers(&sb, 3, "dup").await;
    let got = hook.wait_for("9 deliveries", |evs| evs.len() == 9).await;
    drained(&sb).await;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for id in object_ids(&got) {
        *counts.entry(id).or_default() += 1;
    }
    assert_eq!(counts, ids.iter().map(|id| (id.clone(), 3)).collect());
    let event_ids: Vec<&str> = got.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(
        event_ids.iter().collect::<std::collections::BTreeSet<_>>().len(),
        3,
        "copies share the event id"
    );
    let stats = sb.delivery_stats();
    println!("duplicates: {stats:?}");
    assert_eq!(
        (
            stats.events,
            stats.duplicated,
            stats.sent,
            stats.delivered,
            stats.dropped
        ),
        (3, 6, 9, 9, 0)
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn shuffled_deliveries_arrive_in_another_order_deterministically() {
    let order_for = |seed: u64| async move {
        let hook = Receiver::start(0).await;
        let sb = sandbox(Some(hook.url.clone())).await;
        sb.set_faults(Faults {
            shuffle_window: 10,
            seed,
            ..Faults::default()
        })
        .unwrap();
        // Queue all ten first so they fall into one window.
        sb.pause_deliveries();
        let ids = customers(&sb, 10, "shuf").await;
        sb.resume_deliveries();
        let got = hook.wait_for("10 deliveries", |evs| evs.len() == 10).await;
        sb.shutdown().await;
        (ids, object_ids(&got))
    };
    let (created, received) = order_for(3).await;
    assert_ne!(received, created, "order shuffled");
    let mut a = received.clone();
    let mut b = created.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b, "same events, each once");
    // Same seed, same permutation (ids differ between runs: compare positions).
    let (created2, received2) = order_for(3).await;
    let positions = |created: &[String], received: &[String]| -> Vec<usize> {
        received
            .iter()
            .map(|r| created.iter().position(|c| c == r).unwrap())
            .collect()
    };
    assert_eq!(positions(&created, &received), positions(&created2, &received2));
}

#[tokio::test]
async fn dropped_events_are_never_delivered_but_stay_in_the_events_api() {
    let hook = Receiver::start(0).await;
    let sb = sandbox(Some(hook.url.clone())).await;
    sb.set_faults(Faults {
        drop_rate: 0.3,
        seed: 11,
        ..Faults::default()
    })
    .unwrap();
    let ids = customers(&sb, 40, "drop").await;
    drained(&sb).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stats = sb.delivery_stats();
    println!("drops: {stats:?}");
    assert_eq!(stats.events, 40);
    assert!(stats.dropped > 0 && stats.dropped < 40, "{stats:?}");
    let got = object_ids(&hook.accepted().await);
    assert_eq!(got.len() as u64, 40 - stats.dropped);
    assert_eq!(stats.delivered, 40 - stats.dropped);
    // Reconciliation's source still has every event, dropped or not.
    let (events, more) = client(&sb).list_events(None, None, 100).await.unwrap();
    assert!(!more);
    let listed: Vec<String> = events
        .iter()
        .map(|e| {
            let v: Value = serde_json::from_str(&e.payload_json).unwrap();
            v["data"]["object"]["id"].as_str().unwrap().to_owned()
        })
        .collect();
    for id in &ids {
        assert!(listed.contains(id), "{id} missing from the events API");
    }
    let missing: Vec<&String> = ids.iter().filter(|id| !got.contains(id)).collect();
    assert_eq!(missing.len() as u64, stats.dropped);
    let (_, ev) = get_json(&sb, &format!("v1/events/{}", events[0].id)).await;
    assert_eq!(ev["pending_webhooks"], 0, "nothing left to deliver");
    sb.shutdown().await;
}

#[tokio::test]
async fn delays_and_the_http_admin_endpoint() {
    let hook = Receiver::start(0).await;
    let sb = sandbox(Some(hook.url.clone())).await;
    let url = format!("{}_sandbox/faults", sb.base_url);
    let http = reqwest::Client::new();
    let set = |body: &'static str| {
        http.post(&url)
            .bearer_auth(SECRET_KEY)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let resp = set(r#"{"drop_rate": 2}"#).await.unwrap();
    assert_eq!(resp.status(), 400);
    let resp = set(r#"{"dup": 1}"#).await.unwrap();
    assert_eq!(resp.status(), 400, "unknown fields are refused");
    let resp = set(r#"{"delay_ms": 600, "duplicates": 1}"#).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["faults"]["delay_ms"], 600);
    assert_eq!(sb.faults().duplicates, 1);
    let unauthenticated = http.get(&url).send().await.unwrap();
    assert_eq!(unauthenticated.status(), 401);

    customers(&sb, 1, "delay").await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(hook.accepted().await.is_empty(), "held back by the delay");
    let got = hook.wait_for("both copies", |evs| evs.len() == 2).await;
    assert_eq!(got[0]["id"], got[1]["id"]);
    let (_, status) = get_json(&sb, "_sandbox/faults").await;
    assert_eq!(status["stats"]["duplicated"], 1);
    assert_eq!(status["stats"]["delivered"], 2);
    // An empty body turns every fault off.
    assert_eq!(set("").await.unwrap().status(), 200);
    assert_eq!(sb.faults(), Faults::default());
    sb.shutdown().await;
}
