//! What the passing of (sandbox) time does to subscriptions: period ends
//! renew them (a `subscription_cycle` invoice charged to the saved card) or
//! end them (`cancel_at_period_end`), and failed invoices are retried on
//! Stripe's schedule until they are paid or the subscription is canceled.
//! Run after every clock advance and periodically.

use crate::app::App;
use crate::event::EventRequest;
use crate::invoice::{self, NewInvoice};
use crate::payment;
use crate::state::State;
use crate::subscription;

/// A bound on the work of one call (a clock moved years ahead of many
/// daily subscriptions).
const MAX_STEPS: usize = 100_000;

enum Due {
    PeriodEnd(String),
    Retry { subscription: String, invoice: String },
}

/// The earliest thing due at or before `now`.
fn next_due(st: &State, now: i64) -> Option<(i64, Due)> {
    let period_ends = st
        .subscriptions
        .values()
        .filter(|s| (s.status == "active" || s.status == "past_due") && s.current_period_end <= now)
        .map(|s| (s.current_period_end, Due::PeriodEnd(s.id.clone())));
    let retries = st
        .invoices
        .values()
        .filter(|i| i.status == "open" && i.attempt_count > 0)
        .filter(|i| st.subscriptions.get(&i.subscription).is_some_and(|s| s.is_live()))
        .filter_map(|i| {
            let at = i.next_payment_attempt.filter(|at| *at <= now)?;
            Some((
                at,
                Due::Retry {
                    subscription: i.subscription.clone(),
                    invoice: i.id.clone(),
                },
            ))
        });
    period_ends.chain(retries).min_by_key(|(at, _)| *at)
}

/// Renews or ends one subscription at its period end.
fn period_end(st: &mut State, app: &App, id: &str, request: &EventRequest, hook: Option<&str>) {
    let sub = st.subscriptions.get_mut(id).expect("due subscription exists");
    let ended_at = sub.current_period_end;
    if sub.cancel_at_period_end {
        subscription::end(st, id, ended_at, request, hook);
        return;
    }
    let (previous_start, previous_end) = (sub.current_period_start, sub.current_period_end);
    sub.period_index += 1;
    sub.current_period_start = previous_end;
    sub.current_period_end = sub.period_end_of(sub.period_index);
    let product = st
        .products
        .get(&sub.price.product)
        .map(|p| p.name.clone())
        .unwrap_or_default();
    let sub = st.subscriptions.get_mut(id).expect("exists");
    let mut lines = std::mem::take(&mut sub.pending_prorations);
    lines.push(sub.period_line(&product));
    let new = NewInvoice {
        customer: sub.customer.clone(),
        subscription: sub.id.clone(),
        subscription_item: sub.item_id.clone(),
        billing_reason: "subscription_cycle",
        currency: sub.price.currency.clone(),
        lines,
        period_start: previous_start,
        period_end: previous_end,
    };
    let method = sub.payment_method.clone();
    let invoice_id = invoice::create(st, new, request, hook);
    let sub = st.subscriptions.get_mut(id).expect("exists");
    sub.latest_invoice = Some(invoice_id.clone());
    let outcome = payment::saved_method_outcome(&method);
    let paid = invoice::pay(st, app, &invoice_id, method, outcome, request).is_ok();
    let sub = st.subscriptions.get_mut(id).expect("exists");
    match (paid, sub.status.as_str()) {
        (false, "active") => sub.status = "past_due".into(),
        (true, "past_due") => sub.status = "active".into(),
        _ => {}
    }
    // The new period (and any status change) in one update.
    subscription::emit_updated(st, id, request, hook);
}

/// Runs everything due up to the sandbox clock's now, oldest first, each
/// step at its own time (so a retry three days after a failed renewal is
/// dated then, and schedules the next one from then).
/// Returns whether anything happened.
pub fn run_due(st: &mut State, app: &App) -> bool {
    let now = st.now();
    let changed = run_steps(st, app, now);
    st.clock_frozen_at = None;
    changed
}

fn run_steps(st: &mut State, app: &App, now: i64) -> bool {
    let request = EventRequest::default();
    let hook = app.webhook_url();
    let hook = hook.as_deref();
    let mut changed = false;
    for _ in 0..MAX_STEPS {
        let Some((at, due)) = next_due(st, now) else {
            return changed;
        };
        st.clock_frozen_at = Some(at);
        changed = true;
        match due {
            Due::PeriodEnd(id) => period_end(st, app, &id, &request, hook),
            Due::Retry { subscription, invoice } => {
                let method = st.subscriptions[&subscription].payment_method.clone();
                let outcome = payment::saved_method_outcome(&method);
                let paid = invoice::pay(st, app, &invoice, method, outcome, &request).is_ok();
                subscription::after_invoice_attempt(st, &subscription, paid, &request, hook);
            }
        }
    }
    tracing::warn!("sandbox renewals stopped after {MAX_STEPS} steps; advance the clock again to continue");
    changed
}
