//! Stripe events: failed ones first with their error and a Retry button, then the most
//! recent; and when reconciliation last ran.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use creditd_stripe::event::Event;
use serde::Deserialize;

use super::dates::format_time;
use super::overview::urlencode;
use super::{csrf_field, error_page, internal, layout, Admin, AdminForm, Tab};
use crate::app::AppState;
use crate::billing::webhook::run;
use crate::pages::escape;

const SHOWN: i64 = 100;

/// `GET /admin/events`
pub async fn page(State(state): State<AppState>, admin: Admin) -> Response {
    let events = match state.store.stripe_events_failed_first(SHOWN).await {
        Ok(e) => e,
        Err(e) => return internal(&admin, Tab::Events, e),
    };
    let failed = events.iter().filter(|e| e.status == "failed").count();
    let rows: String = events
        .iter()
        .map(|e| {
            let class = match e.status.as_str() {
                "failed" | "refused" => "err",
                "processing" => "warn",
                "ignored" => "muted",
                _ => "ok",
            };
            let retry = if e.status == "failed" || e.status == "processing" {
                format!(
                    "<form class=\"inline\" method=\"post\" action=\"/admin/events/{}/retry\">{}<button type=\"submit\" aria-label=\"Retry {}\">Retry</button></form>",
                    escape(&urlencode(&e.id)),
                    csrf_field(&admin),
                    escape(&e.id)
                )
            } else {
                String::new()
            };
            format!(
                "<tr data-event=\"{}\"><td><code>{}</code></td><td>{}</td><td class=\"{class}\">{}</td><td class=\"err\">{}</td>\
                 <td class=\"n\">{}</td><td class=\"t\">{}</td><td class=\"t\">{}</td><td>{retry}</td></tr>",
                escape(&e.id),
                escape(&e.id),
                escape(&e.event_type),
                escape(&e.status),
                escape(e.error.as_deref().unwrap_or("")),
                e.attempts,
                format_time(e.received_at),
                e.processed_at.map(format_time).unwrap_or_default()
            )
        })
        .collect();
    let summary = if failed == 0 {
        "<p class=\"ok\">No failed events.</p>".to_string()
    } else {
        format!("<p class=\"err\">{failed} failed event(s), listed first. Retry runs the event's handling again on its stored payload.</p>")
    };
    let table = if events.is_empty() {
        "<p class=\"muted\">No Stripe events received yet.</p>".to_string()
    } else {
        format!(
            "<table><thead><tr><th>Event</th><th>Type</th><th>Status</th><th>Error</th><th class=\"n\">Attempts</th>\
             <th>Received</th><th>Handled</th><th></th></tr></thead><tbody>{rows}</tbody></table>"
        )
    };
    let reconciliation = match state.store.last_reconcile().await {
        Ok(Some(run)) => {
            let [seen, recovered, failed_events, checked, changed] = run.counts;
            let when = crate::clock::iso_minute(run.finished_at.unwrap_or(run.started_at));
            let error = run
                .error
                .map(|e| format!(" It failed: {}.", escape(&e)))
                .unwrap_or_default();
            format!(
                "<p data-reconciliation=\"ran\">Last run {when}: {seen} events seen, {recovered} recovered, \
                 {failed_events} still failing; {checked} payments checked, {changed} changed.{error}</p>"
            )
        }
        Ok(None) => "<p data-reconciliation=\"never\">Never run yet. Reconciliation recovers missed webhooks from \
                     Stripe's events API (every 5 minutes in the background, or <code>creditd reconcile</code>).</p>"
            .to_string(),
        Err(e) => return internal(&admin, Tab::Events, e),
    };
    let body = format!(
        "<h1>Stripe events</h1><section><h2>Reconciliation</h2>{reconciliation}</section>\
         <section><h2>Recent events</h2>{summary}{table}</section>"
    );
    layout(&admin, Tab::Events, "Stripe events", &body).into_response()
}

#[derive(Deserialize)]
pub struct RetryForm {
    #[allow(dead_code)]
    pub csrf: String,
}

/// `POST /admin/events/{id}/retry`: handles the stored payload again, exactly as a redelivery
/// from Stripe would (handling converges, so a retry never grants twice).
pub async fn retry(State(state): State<AppState>, Path(id): Path<String>, form: AdminForm<RetryForm>) -> Response {
    let admin = form.admin;
    let payload = match state.store.stripe_event_payload(&id).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return error_page(
                &admin,
                Tab::Events,
                StatusCode::NOT_FOUND,
                &format!("No such event: {id}"),
            )
        }
        Err(e) => return internal(&admin, Tab::Events, e),
    };
    let event = match Event::parse(payload.as_bytes()) {
        Ok(e) => e,
        Err(e) => return internal(&admin, Tab::Events, format!("stored event {id} unreadable: {e}")),
    };
    if let Err(e) = state.store.count_stripe_event_attempt(&id).await {
        return internal(&admin, Tab::Events, e);
    }
    let attempts = match state.store.stored_event(&id).await {
        Ok(stored) => stored.map_or(1, |e| e.attempts),
        Err(e) => return internal(&admin, Tab::Events, e),
    };
    // The outcome (and a failure's error) is recorded on the event, shown on the page.
    let result = run(&state, &event, attempts).await;
    tracing::info!(admin = %admin.session.email, event = %id, ok = result.is_ok(), "Stripe event retried from the dashboard");
    Redirect::to("/admin/events").into_response()
}
