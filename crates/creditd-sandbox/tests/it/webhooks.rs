//! Webhook delivery: retries with back-off, pause/resume, and state that
//! survives a restart.

use std::time::Duration;

use crate::helpers::*;

#[tokio::test]
async fn a_failed_delivery_is_retried_until_the_endpoint_accepts() {
    let hook = Receiver::start(2).await; // 500, 500, then 200
    let sb = sandbox(Some(hook.url.clone())).await;
    let c = client(&sb);
    let cus = c.create_customer("retry", None, "retry-1").await.unwrap();
    let accepted = hook
        .wait_for("customer.created after retries", |evs| !evs.is_empty())
        .await;
    assert_eq!(accepted[0]["data"]["object"]["id"], cus.as_str());
    let all = hook.deliveries.lock().await.clone();
    assert_eq!(all.iter().map(|d| d.status).collect::<Vec<_>>(), [500, 500, 200]);
    assert!(
        all.iter().all(|d| d.body == all[0].body),
        "retries send the same event body"
    );
    // Retries are re-signed (fresh t) and still verify.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for d in &all {
        assert_eq!(
            creditd_stripe::webhook::verify(&d.body, &d.signature, &[WEBHOOK_SECRET], now, 300),
            Ok(())
        );
    }
    for _ in 0..50 {
        if sb.pending_deliveries().await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sb.pending_deliveries().await, 0);
    let (_, ev) = get_json(&sb, &format!("v1/events/{}", accepted[0]["id"].as_str().unwrap())).await;
    assert_eq!(ev["pending_webhooks"], 0);
    sb.shutdown().await;
}

#[tokio::test]
async fn unreachable_endpoint_gives_up_after_the_schedule_but_keeps_the_event() {
    // Nothing listens on this port (bound then dropped).
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", dead.local_addr().unwrap());
    drop(dead);
    let sb = sandbox(Some(url)).await;
    client(&sb).create_customer("dead", None, "dead-1").await.unwrap();
    assert_eq!(sb.pending_deliveries().await, 1);
    // Schedule is 100 + 200 + 400 ms: after it the delivery is dropped.
    for _ in 0..100 {
        if sb.pending_deliveries().await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sb.pending_deliveries().await, 0, "gave up after the retry schedule");
    let (_, list) = get_json(&sb, "v1/events").await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "the event is still in the events API"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn paused_deliveries_are_sent_on_resume_and_url_can_change() {
    let sb = sandbox(None).await;
    let c = client(&sb);
    c.create_customer("before", None, "p0").await.unwrap();
    let hook = Receiver::start(0).await;
    sb.set_webhook_url(Some(hook.url.clone()));
    sb.pause_deliveries();
    c.create_customer("during", None, "p1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(hook.accepted().await.is_empty(), "nothing delivered while paused");
    sb.resume_deliveries();
    let got = hook.wait_for("the queued event", |evs| evs.len() == 1).await;
    assert_eq!(got[0]["data"]["object"]["metadata"]["creditd_customer"], "during");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        hook.accepted().await.len(),
        1,
        "events from before the endpoint existed are not sent"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("creditd-sandbox-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state.json");
    let _ = std::fs::remove_file(&path);
    let mut cfg = config(None);
    cfg.state_path = Some(path.clone());
    let sb = creditd_sandbox::start_with(cfg.clone(), fast_options()).await.unwrap();
    let c = client(&sb);
    let cus = c.create_customer("persist", None, "persist-1").await.unwrap();
    sb.shutdown().await;

    let sb = creditd_sandbox::start_with(cfg, fast_options()).await.unwrap();
    let (status, body) = get_json(&sb, &format!("v1/customers/{cus}")).await;
    assert_eq!((status, body["id"].as_str().unwrap()), (200, cus.as_str()));
    // The idempotency record survived too.
    let again = client(&sb).create_customer("persist", None, "persist-1").await.unwrap();
    assert_eq!(again, cus);
    assert_eq!(sb.read(|s| s.customers.len()).await, 1);
    sb.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
