//! The running service: shared state, the write gateway, background sweeping, and `serve`.

use std::future::IntoFuture;
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
    /// This replica's rate-limit buckets.
    pub limits: Arc<crate::ops::rate_limit::Limiter>,
    /// Wakes a Stripe event worker when a delivery was recorded.
    pub stripe_events: Arc<tokio::sync::Notify>,
    /// Refund and dispute conversions of one charge, one at a time in this process.
    pub conversions: Arc<crate::billing::refunds::ChargeLocks>,
}

impl AppState {
    /// Starts the writer task: call inside the Tokio runtime.
    pub fn new(store: Store, clock: Clock, settings: Settings, stripe: Stripe) -> AppState {
        store.set_past_due_policy(settings.past_due_plan);
        creditd_store::set_default_low_balance_threshold(settings.low_balance_threshold);
        let writer = Writer::spawn(store.clone(), settings.writer());
        // Every replica delivers; the database coordinates them.
        crate::outbound::spawn(store.clone(), settings.outbound.clone());
        let keys =
            crate::key_cache::KeyCache::spawn(store.clone(), Duration::from_secs(settings.api_key_cache_seconds));
        let (credentials, purchases) = settings.rate_limits();
        let limits = Arc::new(crate::ops::rate_limit::Limiter::new(credentials, purchases));
        let state = AppState {
            writer,
            keys,
            limits,
            stripe_events: crate::billing::events::new_signal(),
            conversions: Default::default(),
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
        let kind = crate::ops::observe::WriteKind::of(&command);
        let started_ms = crate::ops::observe::now_millis();
        let request = Request { command, idempotency };
        let result = self
            .writer
            .submit(request, self.clock.now())
            .await
            .map_err(ApiError::from);
        kind.record(&result, started_ms);
        result
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
/// through the writer, and grants the free plan's monthly credits. Safe on many replicas:
/// each customer is swept under its row lock, and each month's free grant is unique per
/// customer.
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
            match crate::billing::free_plan::grant_monthly(&state).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(customers = n, "granted the free plan's monthly credits"),
                Err(e) => tracing::warn!(error = e.message, "free plan grants failed"),
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

/// Binds and serves until SIGTERM or SIGINT, then shuts down gracefully (see [`shutdown`]).
pub async fn serve(state: AppState, listen: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    serve_on(state, listener, crate::ops::shutdown::signal()).await
}

/// Serves on `listener` until `stop` resolves; then stops accepting connections, lets
/// in-flight requests finish, drains the write queue, lets the Stripe event workers finish
/// (or give back) what they hold, and returns — all within `shutdown_timeout_seconds`, or
/// with an error naming what was still running.
pub async fn serve_on(
    state: AppState,
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stopping, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        stop.await;
        stopping.send_replace(true);
    });
    let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        rx.wait_for(|s| *s).await.ok();
    };
    let metrics = match state.settings.metrics_listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (metrics_listen): {e}"))?;
            let server = axum::serve(listener, crate::http::metrics_router(state.clone()))
                .with_graceful_shutdown(until_stopped(stopped.clone()));
            Some(tokio::spawn(server.into_future()))
        }
        None => None,
    };
    let background = crate::ops::shutdown::Background::start(&state);
    let app = crate::http::router(state.clone());
    // The peer address feeds the per-address login limit of the admin dashboard.
    let server = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(until_stopped(stopped.clone()));
    let mut server = tokio::spawn(server.into_future());
    tokio::select! {
        finished = &mut server => {
            background.abort();
            finished??;
            return Err(anyhow::anyhow!("the server stopped by itself"));
        }
        () = until_stopped(stopped) => {}
    }
    tracing::info!("shutting down: no new connections; finishing in-flight requests and queued writes");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(state.settings.shutdown_timeout_seconds);
    let outcome = crate::ops::shutdown::drain(&state, server, background, deadline).await;
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    outcome
}
