//! The background workers that handle recorded Stripe events: any replica takes the most
//! overdue event nobody holds, handles it ([`super::webhook::run`]) and records the result;
//! failures come due again after a back-off. A delivery wakes a worker at once; otherwise
//! each looks every [`POLL`] for retries and for events other replicas recorded.

use std::sync::Arc;
use std::time::Duration;

use creditd_stripe::event::Event;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::app::AppState;

/// Workers per replica: handling waits on Stripe's API, so a few run side by side.
pub const WORKERS: usize = 4;
/// How long a worker holds an event: past it (the replica died), another takes it.
pub const LEASE_MS: i64 = 120_000;
const POLL: Duration = Duration::from_secs(1);

/// Where the workers are in a shutdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Running,
    /// Take nothing new; finish what is in hand.
    Draining,
    /// Let go of what is in hand (it is due again at once, for any replica) and stop.
    Abandon,
}

/// Wakes a worker when an event was recorded.
pub fn new_signal() -> Arc<Notify> {
    Arc::new(Notify::new())
}

pub fn spawn(state: &AppState, phase: watch::Receiver<Phase>) -> Vec<JoinHandle<()>> {
    (0..WORKERS)
        .map(|_| tokio::spawn(work(state.clone(), phase.clone())))
        .collect()
}

async fn work(state: AppState, mut phase: watch::Receiver<Phase>) {
    loop {
        if *phase.borrow() != Phase::Running {
            return;
        }
        match state.store.claim_stripe_event(now_ms(), LEASE_MS).await {
            Ok(Some(claimed)) => {
                tokio::select! {
                    () = handle_claimed(&state, &claimed.id, &claimed.payload, claimed.attempts) => {}
                    () = until(&mut phase, Phase::Abandon) => {
                        state.store.release_stripe_event(&claimed.id).await.ok();
                        return;
                    }
                }
            }
            Ok(None) => {
                tokio::select! {
                    () = state.stripe_events.notified() => {}
                    () = tokio::time::sleep(POLL) => {}
                    () = until(&mut phase, Phase::Draining) => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot take Stripe events from the database");
                tokio::select! {
                    () = tokio::time::sleep(POLL) => {}
                    () = until(&mut phase, Phase::Draining) => {}
                }
            }
        }
    }
}

async fn handle_claimed(state: &AppState, id: &str, payload: &str, attempts: i64) {
    match Event::parse(payload.as_bytes()) {
        // The outcome is recorded on the event (and logged) by `run`.
        Ok(event) => {
            if let Err(e) = super::webhook::run(state, &event, attempts).await {
                tracing::debug!(event = id, error = %e, "Stripe event not handled this time");
            }
        }
        Err(e) => {
            let error = format!("the recorded payload is not a Stripe event: {e}");
            let settled = creditd_store::Settled::Failed(&error, None);
            state
                .store
                .settle_stripe_event(id, settled, state.clock.now())
                .await
                .ok();
        }
    }
}

/// Returns once the phase is `at` or later.
async fn until(phase: &mut watch::Receiver<Phase>, at: Phase) {
    let reached = |p: &Phase| match at {
        Phase::Running => true,
        Phase::Draining => *p != Phase::Running,
        Phase::Abandon => *p == Phase::Abandon,
    };
    if phase.wait_for(reached).await.is_err() {
        // The sender is gone: nobody will say; wait forever (the task is aborted with it).
        std::future::pending::<()>().await;
    }
}

/// Unix milliseconds: event scheduling runs on the wall clock, whatever clock the ledger runs on.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
