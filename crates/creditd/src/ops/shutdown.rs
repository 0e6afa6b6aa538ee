//! Graceful shutdown: SIGTERM or SIGINT stops new connections; in-flight requests finish,
//! the write queue drains, the Stripe event workers finish what they hold (or give it back,
//! due again at once for any replica), and the process exits 0 — within
//! `shutdown_timeout_seconds`, or exits non-zero naming what did not finish.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::app::AppState;
use crate::billing::events::Phase;

/// Resolves on the first SIGTERM or SIGINT.
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = int.recv() => tracing::info!("SIGINT received"),
                }
            }
            _ => {
                tokio::signal::ctrl_c().await.ok();
            }
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await.ok();
}

/// The background jobs of `serve`.
pub struct Background {
    sweeper: JoinHandle<()>,
    reconciler: Option<JoinHandle<()>>,
    events: Vec<JoinHandle<()>>,
    phase: watch::Sender<Phase>,
}

impl Background {
    pub fn start(state: &AppState) -> Background {
        let settings = &state.settings;
        let sweeper = crate::app::spawn_sweeper(state.clone(), Duration::from_secs(settings.sweep_interval_seconds));
        let reconciler = (settings.reconcile_interval_seconds > 0).then(|| {
            let every = Duration::from_secs(settings.reconcile_interval_seconds);
            crate::billing::reconcile::spawn(state.clone(), every, settings.reconcile_window_seconds)
        });
        let (phase, watching) = watch::channel(Phase::Running);
        let events = crate::billing::events::spawn(state, watching);
        Background {
            sweeper,
            reconciler,
            events,
            phase,
        }
    }

    /// Stops everything at once (the sweep and reconciliation are transactions: an aborted
    /// one rolls back, and runs again later).
    pub fn abort(self) {
        self.sweeper.abort();
        if let Some(r) = &self.reconciler {
            r.abort();
        }
        self.phase.send_replace(Phase::Abandon);
        for worker in &self.events {
            worker.abort();
        }
    }
}

/// The shutdown after the signal: `server` is the HTTP server, already refusing new
/// connections and finishing the in-flight ones.
pub async fn drain(
    state: &AppState,
    server: JoinHandle<std::io::Result<()>>,
    background: Background,
    deadline: Instant,
) -> anyhow::Result<()> {
    background.sweeper.abort();
    if let Some(r) = &background.reconciler {
        r.abort();
    }
    background.phase.send_replace(Phase::Draining);
    let mut unfinished = Vec::new();
    match tokio::time::timeout_at(deadline, server).await {
        Ok(finished) => finished??,
        Err(_) => unfinished.push("in-flight requests"),
    }
    // Every answered request's write is committed: the writer answers only after its batch.
    // What background work queued is committed too before the process ends.
    let mut workers = background.events;
    let finish_workers = futures::future::join_all(workers.iter_mut());
    if tokio::time::timeout_at(deadline, finish_workers).await.is_err() {
        unfinished.push("Stripe event handling (given back, due again)");
        background.phase.send_replace(Phase::Abandon);
        // A moment to record the give-back; then whatever is left runs out its lease.
        let give_back = futures::future::join_all(workers.iter_mut());
        let _ = tokio::time::timeout(Duration::from_millis(500), give_back).await;
    }
    if tokio::time::timeout_at(deadline, state.writer.drained()).await.is_err() {
        unfinished.push("queued writes");
    }
    state.store.close().await;
    if unfinished.is_empty() {
        tracing::info!("shut down cleanly");
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "shutdown_timeout_seconds passed with {} unfinished",
            unfinished.join(", ")
        ))
    }
}
