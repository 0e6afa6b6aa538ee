//! creditd's business families, recorded where the thing happens: spends, grants, payments,
//! Stripe events, reconciliation. Names live here, once.

use std::time::Duration;

use creditd_domain::money::PaymentStatus;
use creditd_domain::views::Payment;
use creditd_domain::{Command, Credits, GrantSource, IdKind, Outcome};

use crate::http::error::ApiError;

/// What a write asked for, kept before the command moves into the writer.
pub enum WriteKind {
    Usage,
    Grant,
    /// A new customer gets this signup bonus.
    CreateCustomer(Credits),
    Other,
}

impl WriteKind {
    pub fn of(command: &Command) -> WriteKind {
        match command {
            Command::Usage(_) => WriteKind::Usage,
            Command::Grant(_) => WriteKind::Grant,
            Command::CreateCustomer(c) => WriteKind::CreateCustomer(c.signup_bonus),
            _ => WriteKind::Other,
        }
    }

    /// Records a write's result; `started_ms` is when the request was accepted (a result
    /// made before it is an idempotent replay of an earlier request).
    pub fn record(&self, result: &Result<Outcome, ApiError>, started_ms: u64) {
        match (self, result) {
            (WriteKind::Usage, Ok(Outcome::Usage(usage))) => {
                if is_replay(IdKind::Usage, &usage.id, started_ms) {
                    spend("idempotent_replay");
                } else {
                    spend("ok");
                    metrics::counter!("creditd_credits_spent_total").increment(micros(usage.amount));
                }
            }
            (WriteKind::Usage, Err(e)) => spend(e.code),
            (WriteKind::Grant, Ok(Outcome::Grant(grant))) if !is_replay(IdKind::Grant, &grant.id, started_ms) => {
                granted(grant.source, grant.amount);
            }
            (WriteKind::CreateCustomer(bonus), Ok(Outcome::Customer { created: true, .. })) if bonus.is_positive() => {
                granted(GrantSource::SignupBonus, *bonus);
            }
            _ => {}
        }
    }
}

fn is_replay(kind: IdKind, id: &str, started_ms: u64) -> bool {
    kind.created_millis(id).is_some_and(|made| made < started_ms)
}

fn micros(credits: Credits) -> u64 {
    u64::try_from(credits.micros()).unwrap_or(0)
}

fn spend(outcome: &'static str) {
    metrics::counter!("creditd_spend_total", "outcome" => outcome).increment(1);
}

/// Credits granted outside the writer's commands (purchases, subscription allowances) too.
pub fn granted(source: GrantSource, amount: Credits) {
    metrics::counter!("creditd_credits_granted_total", "source" => source.as_str()).increment(micros(amount));
}

/// A payment was started.
pub fn payment_started(payment: &Payment) {
    let flow = flow_label(&payment.flow);
    metrics::counter!("creditd_payments_total", "flow" => flow, "status" => "created").increment(1);
}

/// A payment's status may have moved from `before`; counted once per move.
pub fn payment_moved(before: PaymentStatus, after: &Payment, granted_now: bool) {
    if granted_now {
        granted(GrantSource::Purchase, after.credits);
    }
    if before == after.status {
        return;
    }
    let status = match after.status {
        PaymentStatus::Pending => "pending",
        PaymentStatus::Succeeded => "succeeded",
        PaymentStatus::Failed => "failed",
        PaymentStatus::Expired => "expired",
    };
    metrics::counter!("creditd_payments_total", "flow" => flow_label(&after.flow), "status" => status).increment(1);
}

fn flow_label(flow: &str) -> &'static str {
    match flow {
        "checkout" => "checkout",
        "payment_intent" => "payment_intent",
        _ => "other",
    }
}

/// A Stripe event was received or handled: `outcome` is `processed`, `ignored`, `failed`,
/// `refused` (livemode mismatch), `duplicate` or `invalid_signature`.
pub fn stripe_event(event_type: &str, outcome: &'static str, took: Option<Duration>) {
    let event_type = event_type_label(event_type);
    if let Some(took) = took {
        metrics::histogram!("creditd_stripe_webhook_duration_seconds", "type" => event_type.clone())
            .record(took.as_secs_f64());
    }
    metrics::counter!("creditd_stripe_webhooks_total", "type" => event_type, "outcome" => outcome).increment(1);
}

/// Stripe's event types are a known, bounded set of dotted lowercase names; anything else
/// (a forged body) must not mint a family per value.
fn event_type_label(event_type: &str) -> String {
    let plausible = event_type.len() <= 64
        && event_type
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_');
    if plausible {
        event_type.to_string()
    } else {
        "other".to_string()
    }
}

/// A reconciliation run ended.
pub fn reconcile_run(ok: bool, recovered: u64) {
    let result = if ok { "ok" } else { "failed" };
    metrics::counter!("creditd_reconcile_runs_total", "result" => result).increment(1);
    metrics::counter!("creditd_reconcile_recovered_events_total").increment(recovered);
}

/// Milliseconds since 1970, the clock ids are made with.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
