//! Everything the sandbox knows, in one serializable struct: the Stripe
//! objects by kind, the event log, idempotency records and the webhook
//! delivery queue. Snapshotted to JSON after each change when a path is
//! configured, so `creditd serve` restarts keep sandbox customers.
//!
//! Each kind of object is a map here plus a module of its own; delivery
//! faults ([`crate::faults`]) act on `deliveries`, timers
//! ([`crate::timers`]) fire later changes.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::charge::Charge;
use crate::checkout::CheckoutSession;
use crate::customer::Customer;
use crate::dispute::Dispute;
use crate::event::{Event, EventRequest};
use crate::ids;
use crate::invoice::Invoice;
use crate::payment_intent::PaymentIntent;
use crate::portal::PortalSession;
use crate::price::Price;
use crate::product::Product;
use crate::refund::Refund;
use crate::subscription::Subscription;
use crate::timers::Timer;

/// How long Stripe keeps idempotency keys.
const IDEMPOTENCY_TTL_S: i64 = 24 * 3600;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    pub customers: BTreeMap<String, Customer>,
    pub products: BTreeMap<String, Product>,
    pub prices: BTreeMap<String, Price>,
    pub checkout_sessions: BTreeMap<String, CheckoutSession>,
    pub payment_intents: BTreeMap<String, PaymentIntent>,
    pub charges: BTreeMap<String, Charge>,
    pub refunds: BTreeMap<String, Refund>,
    pub disputes: BTreeMap<String, Dispute>,
    pub subscriptions: BTreeMap<String, Subscription>,
    pub invoices: BTreeMap<String, Invoice>,
    pub portal_sessions: BTreeMap<String, PortalSession>,
    /// Every payment method a charge was made with, by `pm_…` id: saved cards are charged again.
    #[serde(default)]
    pub payment_methods: BTreeMap<String, crate::payment::PaymentMethodDetails>,
    /// Seconds the sandbox clock is ahead of the wall clock ([`crate::clock`]).
    pub clock_offset_s: i64,
    /// While renewals run, the time of the step being run.
    #[serde(skip)]
    pub clock_frozen_at: Option<i64>,
    /// In creation order (oldest first).
    pub events: Vec<Event>,
    pub idempotency: BTreeMap<String, IdempotentResponse>,
    /// Webhook deliveries not yet acknowledged with a 2xx.
    pub deliveries: Vec<PendingDelivery>,
    /// Changes due later (settlements, disputes, refund failures).
    pub timers: Vec<Timer>,
    /// Delayed payments from snapshots older than `timers`; moved there at start.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub settlements: Vec<PendingSettlement>,
}

/// A `processing` PaymentIntent and how it will end (old snapshots only).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingSettlement {
    pub payment_intent: String,
    pub succeeds: bool,
    /// Unix milliseconds.
    pub due_ms: i64,
}

/// The first response to an idempotent POST, replayed for the same key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdempotentResponse {
    pub fingerprint: String,
    pub status: u16,
    pub body: String,
    pub created: i64,
}

/// One event waiting to be (re)delivered to the webhook endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingDelivery {
    /// Tells copies of one event apart.
    #[serde(default = "delivery_id")]
    pub id: String,
    pub event_id: String,
    pub url: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// Unix milliseconds of the next attempt.
    pub next_attempt_ms: i64,
    /// Unix milliseconds when the event was queued.
    #[serde(default)]
    pub queued_ms: i64,
    /// Whether delivery faults have been applied (they act once per event).
    #[serde(default = "already_shaped")]
    pub shaped: bool,
}

fn delivery_id() -> String {
    ids::random_token(16)
}

fn already_shaped() -> bool {
    true
}

impl State {
    /// Records an event (and queues its delivery when an endpoint is set).
    pub fn emit(&mut self, type_: &str, object: Value, request: &EventRequest, webhook_url: Option<&str>) {
        let event = Event {
            id: ids::new_id("evt"),
            type_: type_.to_owned(),
            created: self.now(),
            object,
            request: request.clone(),
            pending_webhooks: u32::from(webhook_url.is_some()),
        };
        if let Some(url) = webhook_url {
            let now_ms = ids::now_unix_ms();
            self.deliveries.push(PendingDelivery {
                id: delivery_id(),
                event_id: event.id.clone(),
                url: url.to_owned(),
                attempts: 0,
                next_attempt_ms: now_ms,
                queued_ms: now_ms,
                shaped: false,
            });
        }
        self.events.push(event);
    }

    pub fn event(&self, id: &str) -> Option<&Event> {
        self.events.iter().find(|e| e.id == id)
    }

    pub fn prune_idempotency(&mut self, now: i64) {
        self.idempotency.retain(|_, r| now - r.created < IDEMPOTENCY_TTL_S);
    }

    pub async fn load(path: &Path) -> anyhow::Result<State> {
        match tokio::fs::read(path).await {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).with_context(|| format!("reading sandbox state {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(e).with_context(|| format!("reading sandbox state {}", path.display())),
        }
    }

    /// Writes the snapshot atomically (temp file + rename).
    pub async fn save(&self, path: &Path) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec(self)?;
        let tmp = path.with_extension("tmp");
        tokio::fs::write(&tmp, bytes)
            .await
            .with_context(|| format!("writing {}", tmp.display()))?;
        tokio::fs::rename(&tmp, path)
            .await
            .with_context(|| format!("renaming to {}", path.display()))?;
        Ok(())
    }
}
