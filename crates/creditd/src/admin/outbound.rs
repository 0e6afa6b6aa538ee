//! Outbound deliveries: the app's webhook endpoints (failing ones first) with their counts,
//! the most recent delivery attempts, and a Redeliver button per event.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use creditd_store::{AttemptRecord, EndpointHealth};
use serde::Deserialize;

use super::dates::format_time;
use super::overview::urlencode;
use super::{csrf_field, error_page, internal, layout, Admin, AdminForm, Tab};
use crate::app::AppState;
use crate::pages::escape;

const RECENT: i64 = 50;

/// `GET /admin/outbound`
pub async fn page(State(state): State<AppState>, admin: Admin) -> Response {
    let (endpoints, attempts) = match tokio::join!(state.store.endpoint_health(), state.store.recent_attempts(RECENT)) {
        (Ok(e), Ok(a)) => (e, a),
        (Err(e), _) | (_, Err(e)) => return internal(&admin, Tab::Outbound, e),
    };
    let endpoints_html = if endpoints.is_empty() {
        "<p class=\"muted\">No webhook endpoints yet: register one with <code>POST /v1/webhook-endpoints</code> \
         or <code>creditd webhooks create --url …</code>.</p>"
            .to_string()
    } else {
        let rows: String = endpoints.iter().map(endpoint_row).collect();
        format!(
            "<table><thead><tr><th>Endpoint</th><th>URL</th><th>Events</th><th>State</th><th class=\"n\">Pending</th>\
             <th class=\"n\">Failed</th><th class=\"n\">Delivered</th><th>Last error</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    };
    let attempts_html = if attempts.is_empty() {
        "<p class=\"muted\">No deliveries yet.</p>".to_string()
    } else {
        let rows: String = attempts.iter().map(|a| attempt_row(&admin, a)).collect();
        format!(
            "<table><thead><tr><th>When</th><th>Event</th><th>Type</th><th>Endpoint</th><th>Answer</th>\
             <th class=\"n\">ms</th><th>Delivery</th><th></th></tr></thead><tbody>{rows}</tbody></table>"
        )
    };
    let body = format!(
        "<h1>Outbound deliveries</h1><section><h2>Endpoints</h2>{endpoints_html}</section>\
         <section><h2>Recent deliveries</h2>{attempts_html}</section>"
    );
    layout(&admin, Tab::Outbound, "Outbound deliveries", &body).into_response()
}

fn endpoint_row(h: &EndpointHealth) -> String {
    let e = &h.endpoint;
    let failing = h.failed > 0 || h.last_error.is_some();
    let state = match (e.enabled, failing) {
        (false, _) => "<td class=\"muted\">disabled</td>",
        (true, true) => "<td class=\"err\">failing</td>",
        (true, false) => "<td class=\"ok\">healthy</td>",
    };
    format!(
        "<tr data-endpoint=\"{id}\"><td><code>{id}</code></td><td>{url}</td><td>{events}</td>{state}\
         <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"err\">{}</td></tr>",
        h.pending,
        h.failed,
        h.delivered,
        escape(h.last_error.as_deref().unwrap_or("")),
        id = escape(&e.id),
        url = escape(&e.url),
        events = escape(&e.events.join(", ")),
    )
}

fn attempt_row(admin: &Admin, a: &AttemptRecord) -> String {
    let answer = match (a.status_code, &a.error) {
        (Some(code), _) if (200..300).contains(&code) => format!("<span class=\"ok\">{code}</span>"),
        (Some(code), _) => format!("<span class=\"err\">{code}</span>"),
        (None, Some(e)) => format!("<span class=\"err\">{}</span>", escape(e)),
        (None, None) => String::new(),
    };
    let redeliver = format!(
        "<form class=\"inline\" method=\"post\" action=\"/admin/outbound/{}/redeliver\">{}<button type=\"submit\" \
         aria-label=\"Redeliver {}\">Redeliver</button></form>",
        escape(&urlencode(&a.event)),
        csrf_field(admin),
        escape(&a.event)
    );
    format!(
        "<tr data-attempt=\"{}\"><td class=\"t\">{}</td><td><code>{}</code></td><td>{}</td><td><code>{}</code></td>\
         <td>{answer}</td><td class=\"n\">{}</td><td>{}</td><td>{redeliver}</td></tr>",
        escape(&a.id),
        format_time(a.attempted_ms / 1000),
        escape(&a.event),
        escape(&a.event_type),
        escape(&a.endpoint),
        a.latency_ms,
        escape(&a.delivery_status),
    )
}

#[derive(Deserialize)]
pub struct RedeliverForm {
    #[allow(dead_code)]
    pub csrf: String,
}

/// `POST /admin/outbound/{id}/redeliver`: sends the event again, with the same `webhook-id`.
pub async fn redeliver(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: AdminForm<RedeliverForm>,
) -> Response {
    let admin = form.admin;
    match state.store.redeliver(&id, crate::outbound::now_ms()).await {
        Ok(Some(_)) => {
            tracing::info!(admin = %admin.session.email, event = %id, "outbound event redelivered from the dashboard");
            Redirect::to("/admin/outbound").into_response()
        }
        Ok(None) => error_page(
            &admin,
            Tab::Outbound,
            StatusCode::NOT_FOUND,
            &format!("No such event: {id}"),
        ),
        Err(e) => internal(&admin, Tab::Outbound, e),
    }
}
