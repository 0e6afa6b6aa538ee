//! Webhook delivery: a background task POSTs each queued event to the
//! endpoint with a real `Stripe-Signature`, retrying with the configured
//! back-off while the endpoint answers non-2xx or cannot be reached.
//!
//! The queue lives in [`crate::state::State::deliveries`]; fault injection
//! ([`crate::faults`]) duplicates, reorders, delays and drops entries of it
//! before their first attempt.

use std::time::Duration;

use tokio::sync::watch;

use crate::app::SharedApp;
use crate::faults;
use crate::ids;
use crate::state::PendingDelivery;

/// Outcome of one HTTP attempt.
enum Attempt {
    Delivered,
    Failed(String),
}

async fn send(app: &SharedApp, http: &reqwest::Client, d: &PendingDelivery, body: String) -> Attempt {
    let t = ids::now_unix();
    let signature = creditd_stripe::sign_header(body.as_bytes(), &app.webhook_secret, t);
    let result = http
        .post(&d.url)
        .header("Content-Type", "application/json; charset=utf-8")
        .header("Stripe-Signature", signature)
        .header("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
        .body(body)
        .send()
        .await;
    match result {
        Ok(resp) if resp.status().is_success() => Attempt::Delivered,
        Ok(resp) => Attempt::Failed(format!("HTTP {}", resp.status())),
        Err(e) => Attempt::Failed(e.to_string()),
    }
}

/// One pass over due deliveries. Returns when the next one is due (ms), if any.
async fn deliver_due(app: &SharedApp, http: &reqwest::Client) -> Option<i64> {
    let now_ms = ids::now_unix_ms();
    let (due, held_until): (Vec<(PendingDelivery, String)>, Option<i64>) = {
        let mut st = app.state.lock().await;
        let held_until = {
            let mut fs = app.faults.lock().expect("faults lock");
            faults::shape(&mut st, &mut fs, now_ms)
        };
        let due = st
            .deliveries
            .iter()
            .filter(|d| d.shaped && d.next_attempt_ms <= now_ms)
            .filter_map(|d| {
                Some((
                    d.clone(),
                    serde_json::to_string_pretty(&st.event(&d.event_id)?.to_json()).ok()?,
                ))
            })
            .collect();
        (due, held_until)
    };
    let mut results = Vec::with_capacity(due.len());
    for (d, body) in due {
        if app.deliveries_paused() {
            break;
        }
        let outcome = send(app, http, &d, body).await;
        let mut fs = app.faults.lock().expect("faults lock");
        fs.stats.sent += 1;
        match outcome {
            Attempt::Delivered => fs.stats.delivered += 1,
            Attempt::Failed(_) => fs.stats.failed += 1,
        }
        drop(fs);
        results.push((d, outcome));
    }
    let mut st = app.state.lock().await;
    let schedule = &app.options.delivery_retry_schedule;
    for (d, outcome) in results {
        let Some(idx) = st.deliveries.iter().position(|q| q.id == d.id) else {
            continue;
        };
        let done = match outcome {
            Attempt::Delivered => true,
            Attempt::Failed(reason) => {
                let q = &mut st.deliveries[idx];
                q.attempts += 1;
                match schedule.get(q.attempts as usize - 1) {
                    Some(wait) => {
                        tracing::info!(event = %d.event_id, attempt = q.attempts, %reason, "webhook delivery failed; will retry");
                        q.next_attempt_ms = ids::now_unix_ms() + wait.as_millis() as i64;
                        false
                    }
                    None => {
                        tracing::warn!(event = %d.event_id, %reason, "webhook delivery failed; giving up");
                        app.faults.lock().expect("faults lock").stats.given_up += 1;
                        true
                    }
                }
            }
        };
        if done {
            st.deliveries.remove(idx);
            if let Some(ev) = st.events.iter_mut().rev().find(|e| e.id == d.event_id) {
                ev.pending_webhooks = ev.pending_webhooks.saturating_sub(1);
            }
        }
    }
    if let Some(path) = &app.state_path {
        if let Err(e) = st.save(path).await {
            tracing::error!(error = ?e, "saving sandbox state after deliveries");
        }
    }
    st.deliveries
        .iter()
        .filter(|d| d.shaped)
        .map(|d| d.next_attempt_ms)
        .chain(held_until)
        .min()
}

/// Runs until `shutdown` flips to true.
pub async fn run(app: SharedApp, mut shutdown: watch::Receiver<bool>) {
    let http = reqwest::Client::builder()
        .timeout(app.options.delivery_timeout)
        .build()
        .expect("reqwest client with rustls");
    loop {
        let next_ms = if app.deliveries_paused() {
            None
        } else {
            deliver_due(&app, &http).await
        };
        let sleep = match next_ms {
            Some(at) => Duration::from_millis((at - ids::now_unix_ms()).max(0) as u64),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            _ = app.delivery_wakeup.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
            _ = shutdown.changed() => return,
        }
    }
}
