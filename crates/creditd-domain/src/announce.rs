//! What a decided command tells the app: the outbound events it raises and the auto top-ups
//! it queues, as [`Effect`]s written in the batch's transaction — never an event for a change
//! that was not made, never a change without its event.
//!
//! [`Book::apply`] takes [`Marks`] before a command and calls [`Book::announce`] after it:
//! new customers, grants and expiry entries are announced as they are; a payment's status
//! change and its money (refunds, disputes) from its record before and after; and the touched
//! customer's available credits against its low-balance threshold ([`alerts`]) and its auto
//! top-up, in acceptance order — so 64 concurrent spends through a threshold raise one
//! `credits.low` and queue one top-up.

use serde::Serialize;

use crate::book::{Book, Effect};
use crate::command::{Command, Outcome};
use crate::ids::IdKind;
use crate::money::PaymentStatus;
use crate::outbound::{alerts, EventType};
use crate::refund::PaymentRecord;
use crate::state::CustomerState;
use crate::views::Entry;
use crate::EntryKind;

/// Where the batch's changes stood before a command, and the payment it names as it was.
pub struct Marks {
    customers_created: usize,
    grants: usize,
    entries: usize,
    payment: Option<PaymentRecord>,
}

/// An outbox row for `event` with `data` as the API shows it.
pub fn event(event_type: EventType, customer: Option<&str>, data: &impl Serialize) -> Effect {
    Effect::Event {
        id: IdKind::OutboundEvent.new_id(),
        event_type,
        customer: customer.map(str::to_string),
        data: serde_json::to_value(data).expect("API objects serialize"),
        profile_missing: false,
    }
}

impl Book {
    pub(crate) fn marks(&self, command: &Command) -> Marks {
        let payment = match command {
            Command::UpdatePayment { payment, .. } | Command::ConvergePayment { payment, .. } => {
                self.facts.payments.get(payment).cloned()
            }
            _ => None,
        };
        Marks {
            customers_created: self.changes.customers_created.len(),
            grants: self.changes.grants.len(),
            entries: self.changes.entries.len(),
            payment,
        }
    }

    pub(crate) fn announce(&mut self, before: &Marks, command: &Command, outcome: &Outcome) {
        let mut effects = Vec::new();
        for (id, _) in &self.changes.customers_created[before.customers_created..] {
            // A customer starts where its signup bonus leaves it: no alert for being created low.
            if let Some(state) = self.customers.get_mut(id) {
                let threshold = state.alerts.threshold.unwrap_or(self.facts.low_balance_default);
                state.alerts.state = alerts(state.alerts.state, threshold, state.account.available()).0;
            }
            if let Some(view) = self.customer_view(id) {
                effects.push(event(EventType::CustomerCreated, Some(id), &view));
            }
        }
        for row in &self.changes.grants[before.grants..] {
            effects.push(event(EventType::CreditsGranted, Some(&row.grant.customer), &row.grant));
        }
        for entry in &self.changes.entries[before.entries..] {
            if entry.kind == EntryKind::Expire {
                effects.push(event(EventType::CreditsExpired, Some(&entry.customer), entry));
            }
        }
        if let Some(customer) = self.touched(command, outcome) {
            let clawbacks: Vec<&Entry> = self.changes.entries[before.entries..]
                .iter()
                .filter(|e| e.kind == EntryKind::Clawback)
                .collect();
            self.payment_events(before.payment.as_ref(), outcome, &customer, &clawbacks, &mut effects);
            self.crossings(&customer, &mut effects);
        }
        self.changes.effects.extend(effects);
    }

    /// Announces the expiry entries written when a customer was admitted into the batch.
    pub(crate) fn announce_expired(&mut self, entries: &[Entry]) {
        for entry in entries {
            let effect = event(EventType::CreditsExpired, Some(&entry.customer), entry);
            self.changes.effects.push(effect);
        }
    }

    /// The customer whose available credits the command changed.
    fn touched(&self, command: &Command, outcome: &Outcome) -> Option<String> {
        if let Some(customer) = command.customer() {
            return Some(customer.to_string());
        }
        match outcome {
            Outcome::Hold(h) => Some(h.customer.clone()),
            Outcome::Payment { payment, .. } => Some(payment.customer.clone()),
            _ => match command {
                Command::ConvergePayment { payment, .. } => {
                    self.facts.payments.get(payment).map(|r| r.payment.customer.clone())
                }
                _ => None,
            },
        }
    }

    /// `payment.succeeded`/`failed` on a status change; `payment.refunded`,
    /// `credits.clawed_back`, `dispute.created`/`closed` from a convergence.
    fn payment_events(
        &self,
        before: Option<&PaymentRecord>,
        outcome: &Outcome,
        customer: &str,
        clawbacks: &[&Entry],
        effects: &mut Vec<Effect>,
    ) {
        let Some(before) = before else { return };
        let Some(after) = self.facts.payments.get(&before.payment.id) else {
            return;
        };
        let c = Some(customer);
        if after.payment.status != before.payment.status {
            match after.payment.status {
                PaymentStatus::Succeeded => effects.push(event(EventType::PaymentSucceeded, c, &after.payment)),
                PaymentStatus::Failed => effects.push(event(EventType::PaymentFailed, c, &after.payment)),
                _ => {}
            }
        }
        let Outcome::Converged(done) = outcome else { return };
        if after.amount_refunded > before.amount_refunded {
            let mut data = serde_json::to_value(&after.payment).expect("payments serialize");
            data["amount_refunded"] = after.amount_refunded.into();
            data["credits_clawed_back"] = serde_json::to_value(done.clawed_back).expect("credits serialize");
            effects.push(event(EventType::PaymentRefunded, c, &data));
        }
        if done.clawed_back.is_positive() {
            let data = serde_json::json!({
                "object": "clawback", "customer": customer, "payment": after.payment.id,
                "amount": done.clawed_back, "entries": clawbacks,
                "reason": if after.dispute_status.as_deref() == Some("lost") { "dispute_lost" } else { "refund" },
            });
            effects.push(event(EventType::CreditsClawedBack, c, &data));
        }
        let Some(dispute) = &after.dispute_id else { return };
        let status = after.dispute_status.clone().unwrap_or_default();
        let data = serde_json::json!({
            "object": "dispute", "id": dispute, "status": status, "payment": after.payment.id,
            "customer": customer, "currency": after.payment.currency,
            "credits_frozen": done.frozen, "credits_restored": done.unfrozen, "credits_clawed_back": done.clawed_back,
        });
        let known = before.dispute_id.as_ref() == Some(dispute);
        if !known {
            effects.push(event(EventType::DisputeCreated, c, &data));
        }
        let was_open = !known || !matches!(before.dispute_status.as_deref(), Some("won" | "lost"));
        if was_open && matches!(status.as_str(), "won" | "lost") {
            effects.push(event(EventType::DisputeClosed, c, &data));
        }
    }

    /// The touched customer's available credits against its alerts and auto top-up.
    fn crossings(&mut self, customer: &str, effects: &mut Vec<Effect>) {
        let default = self.facts.low_balance_default;
        let Some(state) = self.customers.get_mut(customer) else {
            return;
        };
        let raised = step(state, default);
        if state
            .alerts
            .topup
            .is_some_and(|t| t.armed && state.account.available() < t.threshold)
        {
            if let Some(t) = state.alerts.topup.as_mut() {
                t.armed = false;
            }
            effects.push(Effect::TopupQueued {
                customer: customer.to_string(),
                run: IdKind::AutoTopupRun.new_id(),
            });
        } else if let Some(t) = state.alerts.topup.as_mut() {
            // Credits back at or above the threshold: the next fall below it tops up again.
            t.armed |= state.account.available() >= t.threshold;
        }
        if raised.is_empty() {
            return;
        }
        let (view, profile_missing) = match self.customer_view(customer) {
            Some(view) => (view, false),
            None => match self.balances_view(customer) {
                Some(view) => (view, true),
                None => return,
            },
        };
        for event_type in raised {
            let mut effect = event(event_type, Some(customer), &view);
            if let Effect::Event {
                profile_missing: missing,
                ..
            } = &mut effect
            {
                *missing = profile_missing;
            }
            effects.push(effect);
        }
    }
}

/// Moves a customer's alert state to its available credits; returns the alerts raised.
fn step(state: &mut CustomerState, default: crate::Credits) -> Vec<EventType> {
    let threshold = state.alerts.threshold.unwrap_or(default);
    let (next, raised) = alerts(state.alerts.state, threshold, state.account.available());
    state.alerts.state = next;
    raised
}
