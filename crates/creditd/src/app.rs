//! The running service: shared state, the write gateway, background sweeping, and `serve`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use creditd_domain::views::Customer;
use creditd_domain::{Command, Idempotency, Outcome, Request};
use creditd_store::Store;

use crate::clock::Clock;
use crate::config::Settings;
use crate::http::error::ApiError;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub clock: Clock,
    pub settings: Arc<Settings>,
}

impl AppState {
    pub fn new(store: Store, clock: Clock, settings: Settings) -> AppState {
        AppState {
            store,
            clock,
            settings: Arc::new(settings),
        }
    }

    /// Every write goes through here as a batch of one; group commit will batch many.
    pub async fn write(&self, command: Command, idempotency: Option<Idempotency>) -> Result<Outcome, ApiError> {
        let request = Request { command, idempotency };
        let mut results = self.store.apply(vec![request], self.clock.now()).await;
        let result = results.pop().expect("one result per command");
        result.map_err(ApiError::from)
    }

    /// The customer, or a 404 naming the id.
    pub async fn customer(&self, id: &str) -> Result<Customer, ApiError> {
        self.store
            .customer(id, self.clock.now())
            .await?
            .ok_or_else(|| ApiError::not_found("customer_not_found", format!("no such customer: {id}")))
    }
}

/// Writes the expire entries of lapsed grants and releases lapsed holds for customers nobody
/// touches (touched customers are swept inside their own writes). Safe on many replicas:
/// each customer is swept under its row lock.
pub fn spawn_sweeper(state: AppState, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match state.store.sweep(state.clock.now(), 500).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(customers = n, "swept expired grants and holds"),
                Err(e) => tracing::warn!(error = %e, "sweep failed"),
            }
        }
    })
}

/// Binds and serves until Ctrl-C.
pub async fn serve(state: AppState, listen: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let sweeper = spawn_sweeper(
        state.clone(),
        Duration::from_secs(state.settings.sweep_interval_seconds),
    );
    let app = crate::http::router(state).layer(tower_http::trace::TraceLayer::new_for_http());
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await?;
    sweeper.abort();
    Ok(())
}
