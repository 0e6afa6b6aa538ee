//! The billing page's auto top-up: the end user turns it on or off and picks the package and
//! the threshold (a CSRF-protected form); the page shows why it turned itself off.

use std::fmt::Write;

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use creditd_domain::views::{AutoTopupView, Package};
use creditd_domain::Credits;
use serde::Deserialize;

use super::billing::{constant_time_eq, csrf_token, failure_page, message_with_back, redirect, session};
use super::{escape, format};
use crate::app::AppState;
use crate::http::autotopup::{save, AutoTopupIn};

#[derive(Deserialize)]
pub struct AutoTopupForm {
    pub csrf: Option<String>,
    /// A checkbox: present ("on") when ticked.
    pub enabled: Option<String>,
    pub package: Option<String>,
    pub threshold: Option<String>,
}

/// `POST /billing/auto-topup`: saves the session customer's auto top-up, back to the page.
pub async fn save_form(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<AutoTopupForm>) -> Response {
    let (cookie, token) = match session(&state, &headers) {
        Ok(session) => session,
        Err(response) => return *response,
    };
    if !form
        .csrf
        .as_deref()
        .is_some_and(|sent| constant_time_eq(sent, &csrf_token(&cookie)))
    {
        return message_with_back(
            &state,
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Reload the billing page and save again.",
        );
    }
    let Ok(threshold) = Credits::parse(form.threshold.as_deref().unwrap_or("").trim()) else {
        return message_with_back(
            &state,
            StatusCode::BAD_REQUEST,
            "Check the threshold",
            "The threshold is a number of credits, like 10 or 2.5.",
        );
    };
    let input = AutoTopupIn {
        enabled: form.enabled.is_some(),
        threshold,
        package: form.package.unwrap_or_default(),
        quantity: None,
        max_per_month: None,
    };
    match save(&state, &token.customer, input).await {
        Ok(_) => redirect("../billing", None),
        Err(e) if e.status.is_client_error() => {
            message_with_back(&state, e.status, "Auto top-up was not saved", &e.message)
        }
        Err(e) => failure_page(&state, e),
    }
}

/// The page's section: the state, why it is off, and the form.
pub fn section(topup: Option<&AutoTopupView>, packages: &[Package], csrf: &str) -> String {
    let mut out = String::from("<section aria-labelledby=\"topup-h\"><h2 id=\"topup-h\">Auto top-up</h2>");
    if packages.is_empty() {
        out.push_str("<p class=\"muted\">Auto top-up needs a credit package on sale.</p></section>");
        return out;
    }
    match topup {
        Some(t) if t.enabled => {
            let _ = write!(
                out,
                "<p id=\"topup-state\">On: when fewer than {} credits are left, your saved card buys more.</p>",
                format::credits(t.threshold)
            );
        }
        Some(t) => {
            if let Some(reason) = &t.disabled_reason {
                let _ = write!(
                    out,
                    "<p class=\"alert err\" role=\"alert\" id=\"topup-state\"><strong>Auto top-up turned itself off.</strong> {}</p>",
                    escape(reason)
                );
            } else {
                out.push_str("<p id=\"topup-state\">Off.</p>");
            }
        }
        None => out
            .push_str("<p id=\"topup-state\">Off. Turn it on and your next purchase saves your card for top-ups.</p>"),
    }
    let enabled = topup.is_some_and(|t| t.enabled);
    let threshold = topup
        .map_or(crate::http::autotopup::DEFAULT_THRESHOLD, |t| t.threshold)
        .to_string();
    let _ = write!(
        out,
        "<form method=\"post\" action=\"billing/auto-topup\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label><input type=\"checkbox\" name=\"enabled\"{checked}> Top up automatically</label>\
         <label for=\"topup-package\">Package<select id=\"topup-package\" name=\"package\">",
        csrf = escape(csrf),
        checked = if enabled { " checked" } else { "" },
    );
    for p in packages {
        let selected = topup.is_some_and(|t| t.package.as_deref() == Some(p.id.as_str()));
        let _ = write!(
            out,
            "<option value=\"{id}\"{sel}>{name} ({credits} credits)</option>",
            id = escape(&p.id),
            sel = if selected { " selected" } else { "" },
            name = escape(&p.name),
            credits = format::credits(p.credits),
        );
    }
    let _ = write!(
        out,
        "</select></label><label for=\"topup-threshold\">When fewer credits than<input id=\"topup-threshold\" \
         name=\"threshold\" inputmode=\"decimal\" value=\"{}\"></label><button type=\"submit\">Save</button></form></section>",
        escape(&threshold)
    );
    out
}
