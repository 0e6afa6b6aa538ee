//! The running service: shared state, the write gateway, background sweeping, and `serve`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use creditd_domain::views::Customer;
use creditd_domain::{Command, Idempotency, Outcome, Request};
use creditd_store::{Store, StoreError, Writer};

use crate::billing::Stripe;
use crate::clock::Clock;
use crate::config::{Config, Settings, StripeMode};
use crate::http::error::ApiError;
use creditd_stripe::client::StripeClient;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub clock: Clock,
    pub settings: Arc<Settings>,
    pub stripe: Arc<Stripe>,
    /// Group commit: every ledger write of this process goes through this one writer.
    pub writer: Writer,
    pub keys: Arc<crate::key_cache::KeyCache>,
}

impl AppState {
    /// Starts the writer task: call inside the Tokio runtime.
    pub fn new(store: Store, clock: Clock, settings: Settings, stripe: Stripe) -> AppState {
        creditd_store::set_default_low_balance_threshold(settings.low_balance_threshold);
        let writer = Writer::spawn(store.clone(), settings.writer());
        // Every replica delivers; the database coordinates them.
        crate::outbound::spawn(store.clone(), settings.outbound.clone());
        let keys = Arc::new(crate::key_cache::KeyCache::new(Duration::from_secs(
            settings.api_key_cache_seconds,
        )));
        let state = AppState {
            writer,
            keys,
            store,
            clock,
            settings: Arc::new(settings),
            stripe: Arc::new(stripe),
        };
        crate::billing::autotopup::spawn(state.clone(), state.settings.auto_topup_poll);
        state
    }

    /// Every ledger write of a request goes through here, into the group-commit writer.
    pub async fn write(&self, command: Command, idempotency: Option<Idempotency>) -> Result<Outcome, ApiError> {
        let request = Request { command, idempotency };
        self.writer
            .submit(request, self.clock.now())
            .await
            .map_err(ApiError::from)
    }

    /// A ledger write of creditd's own (fulfilment, refunds, allowances, sweeps), into the
    /// same writer.
    pub async fn submit(&self, command: Command) -> Result<Outcome, StoreError> {
        let request = Request {
            command,
            idempotency: None,
        };
        self.writer.submit(request, self.clock.now()).await
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
/// touches (touched customers are swept inside their own writes), as [`Command::Sweep`]s
/// through the writer. Safe on many replicas: each customer is swept under its row lock.
pub fn spawn_sweeper(state: AppState, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match sweep(&state, 500).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(customers = n, "swept expired grants and holds"),
                Err(e) => tracing::warn!(error = %e, "sweep failed"),
            }
        }
    })
}

/// One round of the sweeper: up to `limit` customers, queued at once so they share batches.
async fn sweep(state: &AppState, limit: i64) -> Result<usize, StoreError> {
    let now = state.clock.now();
    let due = state.store.lapsed_customers(now, limit).await?;
    let mut pending = Vec::with_capacity(due.len());
    for customer in &due {
        let request = Request {
            command: Command::Sweep {
                customer: customer.clone(),
            },
            idempotency: None,
        };
        pending.push(state.writer.enqueue(request, now)?);
    }
    for p in pending {
        p.result().await?;
    }
    Ok(due.len())
}

/// Connects to Stripe as configured: real Stripe, or the built-in sandbox started here and
/// delivering its webhooks to this server.
pub async fn connect_stripe(config: &Config) -> anyhow::Result<(Stripe, Option<creditd_sandbox::SandboxHandle>)> {
    match &config.stripe {
        StripeMode::Stripe {
            secret_key,
            api_base,
            webhook_secrets,
        } => {
            let client = StripeClient::new(secret_key, api_base.clone())?;
            let stripe = Stripe {
                client,
                webhook_secrets: webhook_secrets.clone(),
                public_url: config.public_url.clone(),
            };
            Ok((stripe, None))
        }
        StripeMode::Sandbox {
            listen,
            state_path,
            webhook_secret,
        } => {
            let webhook_secret = webhook_secret
                .clone()
                .unwrap_or_else(|| format!("whsec_{}", creditd_domain::ids::random_token(32)));
            let host = if config.listen.ip().is_unspecified() {
                "127.0.0.1".to_string()
            } else {
                config.listen.ip().to_string()
            };
            let webhook_url = format!(
                "http://{}/v1/stripe/webhook",
                SocketAddr::new(host.parse()?, config.listen.port())
            );
            let sandbox = creditd_sandbox::start(creditd_sandbox::SandboxConfig {
                listen: *listen,
                webhook_url: Some(webhook_url),
                webhook_secret: webhook_secret.clone(),
                public_base_url: None,
                state_path: Some(state_path.clone()),
            })
            .await?;
            let client = StripeClient::new(SANDBOX_SECRET_KEY, Some(sandbox.base_url.clone()))?;
            let stripe = Stripe {
                client,
                webhook_secrets: vec![webhook_secret],
                public_url: config.public_url.clone(),
            };
            Ok((stripe, Some(sandbox)))
        }
    }
}

/// The key creditd uses with its own sandbox (which takes any `sk_test_` key).
pub const SANDBOX_SECRET_KEY: &str = "sk_test_creditd_sandbox";

/// Binds and serves until Ctrl-C.
pub async fn serve(state: AppState, listen: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let sweeper = spawn_sweeper(
        state.clone(),
        Duration::from_secs(state.settings.sweep_interval_seconds),
    );
    let reconciler = (state.settings.reconcile_interval_seconds > 0).then(|| {
        let every = Duration::from_secs(state.settings.reconcile_interval_seconds);
        crate::billing::reconcile::spawn(state.clone(), every, state.settings.reconcile_window_seconds)
    });
    // Spans name the path only: a query string may carry a customer token (`/billing?token=`).
    let trace = tower_http::trace::TraceLayer::new_for_http().make_span_with(|request: &axum::extract::Request| {
        tracing::debug_span!("request", method = %request.method(), path = %request.uri().path())
    });
    let app = crate::http::router(state).layer(trace);
    // The peer address feeds the per-address login limit of the admin dashboard.
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await?;
    sweeper.abort();
    if let Some(reconciler) = reconciler {
        reconciler.abort();
    }
    Ok(())
}
