//! The built-in Stripe stand-in: the subset of Stripe's HTTP API creditd
//! uses (customers, products, prices, Checkout Sessions, PaymentIntents,
//! charges, refunds, disputes, events) in Stripe's wire format for API
//! version `2026-09-30.endive`, a hosted checkout page with Stripe's test
//! cards, and signed webhook deliveries with retries and fault injection.
//!
//! Test cards (hosted page) and payment methods (API):
//! 4242 4242 4242 4242 / `pm_card_visa` pays; 4000 0000 0000 0002 /
//! `pm_card_chargeDeclined` and 4000 0000 0000 9995 /
//! `pm_card_chargeDeclinedInsufficientFunds` are declined;
//! 4000 0000 0000 0259 / `pm_card_createDispute` pays, then is disputed;
//! 4000 0000 0000 5126 / `pm_card_refundFail` pays, but its refunds stay
//! `pending` and then fail; 4000 0000 0000 0341 / `pm_card_chargeCustomerFail`
//! pays when entered on the hosted page, but later charges of the saved card
//! (renewals) fail.
//!
//! Subscriptions renew on the sandbox clock, which tests and operators move
//! forward with [`SandboxHandle::advance_clock`] or
//! `POST /_sandbox/clock/advance` (one clock for the whole sandbox rather
//! than Stripe's per-customer test clocks).
//!
//! Sandbox extensions beyond Stripe's API: `POST
//! /v1/test_helpers/refunds/{id}/fail`, the billing portal page at
//! `/portal/{bps_…}`, and the admin API in `admin.rs` (`/_sandbox/faults`,
//! `/_sandbox/clock`).
//!
//! creditd talks to it with the same client as to Stripe: only the base URL
//! differs.
#![forbid(unsafe_code)]
#![recursion_limit = "256"]

mod admin;
mod app;
mod charge;
mod checkout;
mod clock;
mod customer;
mod delivery;
mod dispute;
mod error;
mod event;
mod faults;
mod hosted;
mod http;
mod ids;
mod invoice;
mod list;
mod params;
mod payment;
mod payment_intent;
mod portal;
mod price;
mod product;
mod refund;
mod renewal;
mod state;
mod subscription;
mod subscription_api;
mod timers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{watch, Mutex, Notify};
use tokio::task::JoinHandle;

pub use faults::{DeliveryStats, Faults};
pub use state::State;

/// Where the sandbox listens and where it sends webhooks.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Port 0 picks a free port; see [`SandboxHandle::base_url`].
    pub listen: SocketAddr,
    /// Webhook endpoint; events are only recorded while this is `None`.
    pub webhook_url: Option<String>,
    /// Signs deliveries (`whsec_…`).
    pub webhook_secret: String,
    /// Base URL browsers use to reach the sandbox (hosted checkout, receipts),
    /// when it differs from the listening address.
    pub public_base_url: Option<String>,
    /// JSON snapshot of the state, reloaded at start.
    pub state_path: Option<PathBuf>,
}

/// Tuning, mostly for tests.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Waits before each retry of a failed webhook delivery; after the last
    /// one the delivery is dropped (the event stays in the events API).
    pub delivery_retry_schedule: Vec<Duration>,
    /// Per-attempt HTTP timeout for deliveries.
    pub delivery_timeout: Duration,
    /// How long a delayed (SEPA) payment stays `processing`.
    pub async_settle_delay: Duration,
    /// How long after paying a disputing test card opens its dispute.
    pub dispute_delay: Duration,
    /// How long a refund of a `pm_card_refundFail` charge stays `pending`
    /// before it fails.
    pub refund_failure_delay: Duration,
    /// Webhook delivery faults from the start (default: none); change them
    /// at run time with [`SandboxHandle::set_faults`] or `POST /_sandbox/faults`.
    pub faults: Faults,
}

impl Default for SandboxOptions {
    /// Stripe's test mode retries a few times over hours; the sandbox is
    /// quicker so a developer sees the effect.
    fn default() -> Self {
        SandboxOptions {
            delivery_retry_schedule: [5, 30, 120, 600, 3600].map(Duration::from_secs).to_vec(),
            delivery_timeout: Duration::from_secs(10),
            async_settle_delay: Duration::from_secs(10),
            dispute_delay: Duration::from_secs(2),
            refund_failure_delay: Duration::from_secs(10),
            faults: Faults::default(),
        }
    }
}

/// A running sandbox.
pub struct SandboxHandle {
    /// `http://127.0.0.1:PORT/`: pass it to the Stripe client as its base URL.
    pub base_url: String,
    pub local_addr: SocketAddr,
    app: app::SharedApp,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    deliverer: JoinHandle<()>,
    timers: JoinHandle<()>,
}

/// Starts the sandbox with default options.
pub async fn start(cfg: SandboxConfig) -> anyhow::Result<SandboxHandle> {
    start_with(cfg, SandboxOptions::default()).await
}

/// Starts the sandbox: binds, loads the snapshot, serves, delivers webhooks.
pub async fn start_with(cfg: SandboxConfig, options: SandboxOptions) -> anyhow::Result<SandboxHandle> {
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding the Stripe sandbox to {}", cfg.listen))?;
    let local_addr = listener.local_addr()?;
    let host = if local_addr.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        local_addr.ip().to_string()
    };
    let base_url = match local_addr {
        SocketAddr::V6(_) if host != "127.0.0.1" => format!("http://[{host}]:{}/", local_addr.port()),
        _ => format!("http://{host}:{}/", local_addr.port()),
    };
    let mut public_base_url = cfg.public_base_url.clone().unwrap_or_else(|| base_url.clone());
    if !public_base_url.ends_with('/') {
        public_base_url.push('/');
    }
    let mut state = match &cfg.state_path {
        Some(path) => State::load(path).await?,
        None => State::default(),
    };
    state.migrate_settlements();
    options.faults.validate().map_err(|e| anyhow::anyhow!(e.message))?;
    let app = Arc::new(app::App {
        state: Mutex::new(state),
        webhook_url: std::sync::RwLock::new(cfg.webhook_url.clone()),
        webhook_secret: cfg.webhook_secret.clone(),
        public_base_url,
        state_path: cfg.state_path.clone(),
        faults: std::sync::Mutex::new(faults::FaultState::new(options.faults.clone())),
        options,
        delivery_wakeup: Notify::new(),
        deliveries_paused: AtomicBool::new(false),
        in_flight_keys: Default::default(),
        timer_wakeup: Notify::new(),
    });
    let (shutdown, rx) = watch::channel(false);
    let router = http::router(app.clone());
    let mut server_rx = rx.clone();
    let server = tokio::spawn(async move {
        let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
            let _ = server_rx.changed().await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "Stripe sandbox server stopped");
        }
    });
    let deliverer = tokio::spawn(delivery::run(app.clone(), rx.clone()));
    let timers = tokio::spawn(timers::run(app.clone(), rx));
    tracing::info!(%base_url, "Stripe sandbox listening");
    Ok(SandboxHandle {
        base_url,
        local_addr,
        app,
        shutdown,
        server,
        deliverer,
        timers,
    })
}

impl SandboxHandle {
    /// Sets (or clears) the webhook endpoint for events from now on.
    pub fn set_webhook_url(&self, url: Option<String>) {
        *self.app.webhook_url.write().expect("webhook_url lock") = url;
    }

    /// Holds webhook deliveries (events are still recorded and queued).
    pub fn pause_deliveries(&self) {
        self.app.deliveries_paused.store(true, Ordering::SeqCst);
    }

    /// Resumes deliveries, sending everything queued meanwhile.
    pub fn resume_deliveries(&self) {
        self.app.deliveries_paused.store(false, Ordering::SeqCst);
        self.app.delivery_wakeup.notify_one();
    }

    /// Reads the sandbox state (for tests and diagnostics).
    pub async fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&*self.app.state.lock().await)
    }

    /// Number of webhook deliveries not yet acknowledged.
    pub async fn pending_deliveries(&self) -> usize {
        self.read(|s| s.deliveries.len()).await
    }

    /// Replaces the webhook delivery faults (applied to events delivered
    /// from now on). Fails on out-of-range settings.
    pub fn set_faults(&self, faults: Faults) -> anyhow::Result<()> {
        faults.validate().map_err(|e| anyhow::anyhow!(e.message))?;
        self.app.faults.lock().expect("faults lock").set(faults);
        self.app.delivery_wakeup.notify_one();
        Ok(())
    }

    /// The delivery faults in force.
    pub fn faults(&self) -> Faults {
        self.app.faults.lock().expect("faults lock").faults.clone()
    }

    /// Counters of webhook deliveries since start (sent, delivered,
    /// duplicated, dropped…).
    pub fn delivery_stats(&self) -> DeliveryStats {
        self.app.faults.lock().expect("faults lock").stats
    }

    /// Unix seconds on the sandbox clock.
    pub async fn now(&self) -> i64 {
        self.read(|s| s.now()).await
    }

    /// Moves the sandbox clock `seconds` forward (0 to ten years) and runs
    /// every renewal, payment retry and period end it passes, in order.
    /// Returns the new time.
    pub async fn advance_clock(&self, seconds: i64) -> anyhow::Result<i64> {
        admin::advance(&self.app, seconds)
            .await
            .map_err(|e| anyhow::anyhow!(e.message))
    }

    /// Stops serving, delivering and firing timers; waits for all three.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        let _ = self.deliverer.await;
        let _ = self.timers.await;
    }
}
