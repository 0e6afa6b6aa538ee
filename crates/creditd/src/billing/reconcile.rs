//! Reconciliation: recover what webhooks missed from Stripe's events API (30 days back),
//! then re-converge recent payments. Run by `creditd reconcile` and in the background; on
//! PostgreSQL an advisory lock keeps it to one replica at a time.

use std::time::Duration;

use creditd_domain::money::PaymentStatus;
use creditd_stripe::event::Event;

use super::{checkout, intents, refunds, webhook, BillingError};
use crate::app::AppState;

/// Stripe keeps events for 30 days.
pub const MAX_WINDOW_SECONDS: i64 = 30 * 86_400;
/// Arbitrary constant: the advisory lock that makes reconciliation single-replica.
const RECONCILE_LOCK: i64 = 0x0072_6563_6f6e;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    pub events_seen: u64,
    /// Events creditd had not handled (missed or failed) and now has.
    pub events_recovered: u64,
    pub events_failed: u64,
    pub payments_checked: u64,
    pub payments_changed: u64,
    /// One line per change, for the operator.
    pub changes: Vec<String>,
}

/// Reconciles the window `[now − since_seconds, now]`.
pub async fn reconcile(state: &AppState, since_seconds: i64) -> Result<ReconcileReport, BillingError> {
    let window = since_seconds.clamp(0, MAX_WINDOW_SECONDS);
    // Stripe's events carry Stripe's (wall-clock) time; payments carry the ledger's clock.
    let events_since = creditd_store::unix_now() - window;
    let payments_since = state.clock.now() - window;
    let run = state.store.start_reconcile(events_since, state.clock.now()).await?;
    let result = run_window(state, events_since, payments_since).await;
    let (report, error) = match &result {
        Ok(report) => (report.clone(), None),
        Err(e) => (ReconcileReport::default(), Some(e.to_string())),
    };
    let counts = [
        report.events_seen,
        report.events_recovered,
        report.events_failed,
        report.payments_checked,
        report.payments_changed,
    ];
    state
        .store
        .finish_reconcile(run, counts.map(|c| c as i64), error.as_deref(), state.clock.now())
        .await?;
    crate::ops::observe::reconcile_run(error.is_none(), report.events_recovered);
    result
}

async fn run_window(state: &AppState, since: i64, payments_since: i64) -> Result<ReconcileReport, BillingError> {
    let mut report = ReconcileReport::default();
    let mut cursor: Option<String> = None;
    loop {
        let (events, has_more) = state
            .stripe
            .client
            .list_events(Some(since), cursor.as_deref(), 100)
            .await?;
        for raw in &events {
            report.events_seen += 1;
            let known = state.store.stripe_event(&raw.id).await?;
            if known
                .as_ref()
                .is_some_and(|e| e.status == "processed" || e.status == "ignored")
            {
                continue;
            }
            let Ok(event) = Event::parse(raw.payload_json.as_bytes()) else {
                continue;
            };
            match webhook::receive(state, &event, &raw.payload_json).await {
                Ok(()) => {
                    report.events_recovered += 1;
                    report
                        .changes
                        .push(format!("recovered event {} ({})", event.id, event.type_));
                }
                Err(e) => {
                    report.events_failed += 1;
                    report
                        .changes
                        .push(format!("event {} ({}) still fails: {e}", event.id, event.type_));
                }
            }
        }
        cursor = events.last().map(|e| e.id.clone());
        if !has_more || cursor.is_none() {
            break;
        }
    }
    for payment in state.store.payments_since(payments_since).await? {
        report.payments_checked += 1;
        let done = match payment.status {
            PaymentStatus::Succeeded => refunds::converge_payment(state, &payment).await?,
            PaymentStatus::Pending | PaymentStatus::Failed => {
                let fulfilled = match (
                    payment.flow.as_str(),
                    &payment.checkout_session,
                    &payment.payment_intent,
                ) {
                    ("checkout", Some(session), _) => checkout::fulfill(state, session).await?,
                    (_, _, Some(intent)) => intents::fulfill(state, intent).await?,
                    _ => None,
                };
                match fulfilled {
                    Some((p, true)) => {
                        report.payments_changed += 1;
                        report
                            .changes
                            .push(format!("payment {}: granted {} credits", p.id, p.credits));
                        refunds::converge_payment(state, &p).await?
                    }
                    _ => Default::default(),
                }
            }
            PaymentStatus::Expired => Default::default(),
        };
        if done.changed() {
            report.payments_changed += 1;
            report.changes.push(format!(
                "payment {}: clawed back {}, restored {}, frozen {}, unfrozen {}",
                payment.id, done.clawed_back, done.restored, done.frozen, done.unfrozen
            ));
        }
    }
    Ok(report)
}

/// Runs reconciliation every `every`, on one replica at a time.
pub fn spawn(state: AppState, every: Duration, window_seconds: i64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            let lock = match state.store.try_lock(RECONCILE_LOCK).await {
                Ok(Some(lock)) => lock,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "reconciliation lock failed");
                    continue;
                }
            };
            match reconcile(&state, window_seconds).await {
                Ok(r) if r.events_recovered > 0 || r.payments_changed > 0 => {
                    tracing::info!(
                        recovered = r.events_recovered,
                        changed = r.payments_changed,
                        "reconciliation changed things"
                    )
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reconciliation failed"),
            }
            lock.release().await;
        }
    })
}
