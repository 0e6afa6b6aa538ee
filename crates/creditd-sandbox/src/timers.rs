//! Things that happen a while after a request, as on Stripe: delayed
//! payments settle, test cards open disputes, refunds of a failing card
//! fail. Timers live in [`State::timers`] (so they survive a restart) and
//! one background task fires them when due.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::app::SharedApp;
use crate::event::EventRequest;
use crate::state::State;
use crate::{dispute, ids, payment, refund, renewal};

/// What a timer does when it fires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// A `processing` PaymentIntent succeeds or fails.
    Settle { payment_intent: String, succeeds: bool },
    /// The cardholder disputes a charge.
    OpenDispute { charge: String },
    /// A pending refund fails (the card cannot take it back).
    FailRefund { refund: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Timer {
    /// Unix milliseconds (wall clock).
    pub due_ms: i64,
    pub action: Action,
}

impl State {
    /// Schedules `action` after `delay`; the caller commits (which wakes the timer task).
    pub fn schedule(&mut self, delay: Duration, action: Action) {
        self.timers.push(Timer {
            due_ms: ids::now_unix_ms() + delay.as_millis() as i64,
            action,
        });
    }

    /// Moves delayed payments from snapshots written before timers existed.
    pub fn migrate_settlements(&mut self) {
        for s in std::mem::take(&mut self.settlements) {
            self.timers.push(Timer {
                due_ms: s.due_ms,
                action: Action::Settle {
                    payment_intent: s.payment_intent,
                    succeeds: s.succeeds,
                },
            });
        }
    }
}

fn fire(st: &mut State, action: &Action, hook: Option<&str>) {
    let request = EventRequest::default();
    match action {
        Action::Settle {
            payment_intent,
            succeeds,
        } => payment::settle(st, payment_intent, *succeeds, hook),
        Action::OpenDispute { charge } => dispute::open(st, charge, hook),
        Action::FailRefund { refund } => {
            // Already failed or canceled by hand: nothing to do.
            let _ = refund::fail(st, refund, "declined", &request, hook);
        }
    }
}

/// Fires due timers; returns when the next one is due (ms), if any.
pub async fn fire_due(app: &SharedApp) -> Option<i64> {
    let mut st = app.state.lock().await;
    let now_ms = ids::now_unix_ms();
    let (due, later): (Vec<Timer>, Vec<Timer>) = std::mem::take(&mut st.timers)
        .into_iter()
        .partition(|t| t.due_ms <= now_ms);
    st.timers = later;
    let hook = app.webhook_url();
    for t in &due {
        fire(&mut st, &t.action, hook.as_deref());
    }
    // Renewals also fall due as wall-clock time passes.
    let renewed = renewal::run_due(&mut st, app);
    if !due.is_empty() || renewed {
        if let Err(e) = app.commit(&st).await {
            tracing::error!(error = ?e.message, "saving sandbox state after timers");
        }
    }
    st.timers.iter().map(|t| t.due_ms).min()
}

/// Runs until `shutdown` flips to true.
pub async fn run(app: SharedApp, mut shutdown: watch::Receiver<bool>) {
    loop {
        // Wake at least every minute to notice period ends.
        let sleep = match fire_due(&app).await {
            Some(at) => Duration::from_millis((at - ids::now_unix_ms()).clamp(0, 60_000) as u64),
            None => Duration::from_secs(60),
        };
        tokio::select! {
            _ = app.timer_wakeup.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
            _ = shutdown.changed() => return,
        }
    }
}
