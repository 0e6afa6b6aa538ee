//! Customers: search by id or email, a customer's page (balance, grants, holds, ledger,
//! payments), and the adjust-credits form.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use creditd_domain::command::{NewDeduction, NewGrant};
use creditd_domain::ids::random_token;
use creditd_domain::money::display;
use creditd_domain::views::{Customer, HoldStatus};
use creditd_domain::{validate, Command, Credits, GrantSource, Idempotency, Outcome};
use creditd_store::PageRequest;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::dates::{format_time, parse_day};
use super::overview::urlencode;
use super::{csrf_field, error_page, internal, layout, Admin, AdminForm, Tab};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::pages::escape;

const SHOWN: u32 = 50;

#[derive(Deserialize, Default)]
pub struct SearchQuery {
    pub q: Option<String>,
}

/// `GET /admin/customers?q=…`
pub async fn search(State(state): State<AppState>, admin: Admin, Query(query): Query<SearchQuery>) -> Response {
    let q = query.q.unwrap_or_default();
    let q = q.trim();
    let found = match state.store.search_customers(q, 50, state.clock.now()).await {
        Ok(found) => found,
        Err(e) => return internal(&admin, Tab::Customers, e),
    };
    let rows: String = found
        .iter()
        .map(|c| {
            format!(
                "<tr><td><a href=\"/admin/customers/{}\">{}</a></td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                escape(&urlencode(&c.id)),
                escape(&c.id),
                escape(c.email.as_deref().unwrap_or("")),
                c.balance,
                c.available,
                format_time(c.created)
            )
        })
        .collect();
    let heading = if q.is_empty() {
        "Newest customers".to_string()
    } else {
        format!("{} found for “{}”", found.len(), escape(q))
    };
    let table = if found.is_empty() {
        "<p class=\"muted\">No customer matches.</p>".to_string()
    } else {
        format!(
            "<table><thead><tr><th>Id</th><th>Email</th><th class=\"n\">Balance</th><th class=\"n\">Available</th><th>Created</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    };
    let body = format!(
        "<h1>Customers</h1><section><form method=\"get\" action=\"/admin/customers\" role=\"search\">\
         <label>Customer id or email <input type=\"search\" name=\"q\" value=\"{}\" autofocus style=\"min-width:20rem\"></label> \
         <button type=\"submit\">Search</button></form></section><section><h2>{heading}</h2>{table}</section>",
        escape(q)
    );
    layout(&admin, Tab::Customers, "Customers", &body).into_response()
}

#[derive(Deserialize, Default)]
pub struct DetailQuery {
    /// The adjustment just made, shown as a confirmation.
    pub adjusted: Option<String>,
}

/// `GET /admin/customers/{id}`
pub async fn detail(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    Query(query): Query<DetailQuery>,
) -> Response {
    let flash = query.adjusted.map(|a| (true, format!("Credits adjusted ({a}).")));
    detail_page(&state, &admin, &id, flash, StatusCode::OK).await
}

async fn detail_page(
    state: &AppState,
    admin: &Admin,
    id: &str,
    flash: Option<(bool, String)>,
    status: StatusCode,
) -> Response {
    let customer = match state.store.customer(id, state.clock.now()).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return error_page(
                admin,
                Tab::Customers,
                StatusCode::NOT_FOUND,
                &format!("No such customer: {id}"),
            )
        }
        Err(e) => return internal(admin, Tab::Customers, e),
    };
    match render_detail(state, admin, &customer, flash).await {
        Ok(body) => (status, layout(admin, Tab::Customers, &customer.id, &body)).into_response(),
        Err(e) => internal(admin, Tab::Customers, e),
    }
}

fn when(t: Option<i64>) -> String {
    t.map(format_time).unwrap_or_else(|| "never".into())
}

async fn render_detail(
    state: &AppState,
    admin: &Admin,
    c: &Customer,
    flash: Option<(bool, String)>,
) -> Result<String, creditd_store::StoreError> {
    let page = PageRequest {
        limit: SHOWN,
        starting_after: None,
    };
    let store = &state.store;
    let now = state.clock.now();
    let grants = store.grants(&c.id, &page).await?.data;
    let ledger = store.ledger(&c.id, &page).await?.data;
    let payments = store.payments(&c.id, &page).await?.data;
    let holds = store.holds_of(&c.id, i64::from(SHOWN)).await?;
    let flash = flash
        .map(|(ok, m)| {
            let class = if ok { "flash" } else { "flash err" };
            format!("<p class=\"{class}\" role=\"status\">{}</p>", escape(&m))
        })
        .unwrap_or_default();
    let mut body = format!(
        "<h1>Customer {}</h1>{flash}<div class=\"grid\"><section aria-labelledby=\"balance-h\"><h2 id=\"balance-h\">Balance</h2>\
         <p class=\"big\" data-balance>{} credits</p><p>Available {} · held {}</p>\
         <p class=\"muted\">Email {} · created {}</p></section>",
        escape(&c.id),
        c.balance,
        c.available,
        c.held,
        escape(c.email.as_deref().unwrap_or("none")),
        format_time(c.created)
    );
    body.push_str(&adjust_form(admin, &c.id));
    body.push_str("</div>");
    let topup = match store.auto_topup(&c.id).await? {
        None => "<p class=\"muted\">Not set up.</p>".to_string(),
        Some(t) if t.enabled => format!(
            "<p data-auto-topup=\"on\">On: buys {} × <code>{}</code> below {} credits ({} failures in a row).</p>",
            t.quantity,
            escape(&t.package),
            t.threshold,
            t.consecutive_failures
        ),
        Some(t) => format!(
            "<p data-auto-topup=\"off\" class=\"{}\">Off. {}</p>",
            if t.disabled_reason.is_some() { "err" } else { "muted" },
            escape(t.disabled_reason.as_deref().unwrap_or(""))
        ),
    };
    body.push_str(&format!(
        "<section aria-labelledby=\"topup-h\"><h2 id=\"topup-h\">Auto top-up</h2>{topup}</section>"
    ));
    body.push_str(
        "<section aria-labelledby=\"subscription-h\"><h2 id=\"subscription-h\">Subscription</h2><p class=\"muted\">No subscription (plans are not sold yet).</p></section>",
    );
    let rows: String = grants
        .iter()
        .map(|g| {
            let expiry = match g.expires_at {
                Some(t) if t <= now => format!("<span class=\"muted\">expired {}</span>", format_time(t)),
                other => when(other),
            };
            format!(
                "<tr><td><code>{}</code></td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
                escape(&g.id),
                g.source.as_str(),
                g.amount,
                g.remaining,
                expiry,
                g.priority,
                escape(g.reason.as_deref().unwrap_or("")),
                format_time(g.created)
            )
        })
        .collect();
    body.push_str(&format!(
        "<section aria-labelledby=\"grants-h\"><h2 id=\"grants-h\">Grants</h2><table><thead><tr><th>Id</th><th>Source</th><th class=\"n\">Amount</th><th class=\"n\">Remaining</th>\
         <th>Expires</th><th class=\"n\">Priority</th><th>Reason</th><th>Created</th></tr></thead><tbody>{rows}</tbody></table></section>"
    ));
    let rows: String = holds
        .iter()
        .map(|h| {
            format!(
                "<tr><td><code>{}</code></td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
                escape(&h.id),
                // An open hold past its expiry is released at the customer's next write.
                if h.status == HoldStatus::Open && h.expires_at <= now { "expired" } else { h.status.as_str() },
                h.amount,
                h.captured.map(|c| c.to_string()).unwrap_or_default(),
                escape(h.feature.as_deref().unwrap_or("")),
                format_time(h.expires_at)
            )
        })
        .collect();
    let holds = if holds.is_empty() {
        "<p class=\"muted\">No holds.</p>".to_string()
    } else {
        format!(
            "<table><thead><tr><th>Id</th><th>Status</th><th class=\"n\">Amount</th><th class=\"n\">Captured</th><th>Feature</th><th>Expires</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    };
    body.push_str(&format!(
        "<section aria-labelledby=\"holds-h\"><h2 id=\"holds-h\">Holds</h2>{holds}</section>"
    ));
    let rows: String = ledger
        .iter()
        .map(|e| {
            let meta = if e.metadata.as_object().is_some_and(|m| !m.is_empty()) {
                e.metadata.to_string()
            } else {
                String::new()
            };
            format!(
                "<tr><td class=\"t\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td><code>{}</code></td><td>{}</td><td><code>{}</code></td></tr>",
                format_time(e.created),
                e.kind.as_str(),
                e.amount,
                e.balance_after,
                escape(e.reference.as_deref().unwrap_or("")),
                escape(e.feature.as_deref().unwrap_or("")),
                escape(&meta)
            )
        })
        .collect();
    body.push_str(&format!(
        "<section aria-labelledby=\"ledger-h\"><h2 id=\"ledger-h\">Ledger (latest {SHOWN})</h2><table><thead><tr><th>When</th><th>Kind</th><th class=\"n\">Amount</th>\
         <th class=\"n\">Balance after</th><th>Reference</th><th>Feature</th><th>Metadata</th></tr></thead><tbody>{rows}</tbody></table></section>"
    ));
    let rows: String = payments
        .iter()
        .map(|p| {
            let receipt = p
                .receipt_url
                .as_deref()
                .map(|u| format!("<a href=\"{}\">receipt</a>", escape(u)))
                .unwrap_or_default();
            format!(
                "<tr><td><code>{}</code></td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{receipt}</td></tr>",
                escape(&p.id),
                p.status.as_str(),
                escape(&display(p.amount, &p.currency)),
                p.credits,
                format_time(p.created)
            )
        })
        .collect();
    let payments = if payments.is_empty() {
        "<p class=\"muted\">No payments.</p>".to_string()
    } else {
        format!(
            "<table><thead><tr><th>Id</th><th>Status</th><th class=\"n\">Amount</th><th class=\"n\">Credits</th><th>Created</th><th></th></tr></thead><tbody>{rows}</tbody></table>"
        )
    };
    body.push_str(&format!(
        "<section aria-labelledby=\"payments-h\"><h2 id=\"payments-h\">Payments</h2>{payments}</section>"
    ));
    Ok(body)
}

fn adjust_form(admin: &Admin, customer: &str) -> String {
    format!(
        "<section aria-labelledby=\"adjust-h\"><h2 id=\"adjust-h\">Adjust credits</h2><form method=\"post\" action=\"/admin/customers/{}/adjust\">{}\
         <input type=\"hidden\" name=\"key\" value=\"{}\">\
         <fieldset style=\"border:0;padding:0\"><legend>Direction</legend>\
         <label><input type=\"radio\" name=\"direction\" value=\"grant\" checked> Grant (add credits)</label>\
         <label><input type=\"radio\" name=\"direction\" value=\"deduct\"> Deduct (take credits; never below zero)</label></fieldset>\
         <label>Credits <input name=\"amount\" inputmode=\"decimal\" required placeholder=\"10.5\"></label>\
         <label>Reason (required, recorded with your email) <input name=\"reason\" required maxlength=\"500\" style=\"width:100%\"></label>\
         <label>Expires on (grants only, optional) <input type=\"date\" name=\"expires_on\"></label>\
         <button type=\"submit\">Adjust</button></form></section>",
        escape(&urlencode(customer)),
        csrf_field(admin),
        random_token(24)
    )
}

#[derive(Deserialize)]
pub struct AdjustForm {
    pub direction: String,
    pub amount: String,
    pub reason: String,
    #[serde(default)]
    pub expires_on: String,
    /// Random per rendered form: submitting the same form twice adjusts once.
    pub key: String,
    #[allow(dead_code)]
    pub csrf: String,
}

/// The command a filled-in form asks for, or the message to show.
fn command_of(form: &AdjustForm, customer: &str, admin: &str, now: i64) -> Result<Command, String> {
    let amount = Credits::parse(form.amount.trim())
        .and_then(Credits::positive)
        .map_err(|e| format!("Credits {e}"))?;
    let reason = form.reason.trim();
    if reason.is_empty() {
        return Err("A reason is required.".into());
    }
    validate::text(reason).map_err(|m| format!("Reason {m}"))?;
    match form.direction.as_str() {
        "grant" => {
            let expires_at = match form.expires_on.trim() {
                "" => None,
                day => {
                    let at = parse_day(day)? * creditd_store::SECONDS_PER_DAY;
                    if at <= now {
                        return Err("The expiry date must be in the future.".into());
                    }
                    Some(at)
                }
            };
            Ok(Command::Grant(NewGrant {
                customer: customer.to_string(),
                amount,
                priority: creditd_domain::account::DEFAULT_PRIORITY,
                expires_at,
                source: GrantSource::Admin,
                reason: Some(format!("{reason} (by {admin})")),
                reference: None,
            }))
        }
        "deduct" => Ok(Command::Deduct(NewDeduction {
            customer: customer.to_string(),
            amount,
            admin: admin.to_string(),
            reason: reason.to_string(),
        })),
        _ => Err("Choose grant or deduct.".into()),
    }
}

/// `POST /admin/customers/{id}/adjust`
pub async fn adjust(State(state): State<AppState>, Path(id): Path<String>, form: AdminForm<AdjustForm>) -> Response {
    let AdminForm { admin, value: form } = form;
    let command = match command_of(&form, &id, &admin.session.email, state.clock.now()) {
        Ok(c) => c,
        Err(message) => return detail_page(&state, &admin, &id, Some((false, message)), StatusCode::BAD_REQUEST).await,
    };
    let fingerprint = hex::encode(Sha256::digest(format!(
        "{id}\n{}\n{}\n{}\n{}",
        form.direction, form.amount, form.reason, form.expires_on
    )));
    let idempotency = (!form.key.is_empty() && form.key.len() <= 64).then(|| Idempotency {
        scope: format!("admin:{}", admin.session.admin_id),
        key: form.key.clone(),
        fingerprint,
    });
    match state.write(command, idempotency).await {
        Ok(outcome) => {
            let done = match outcome {
                Outcome::Grant(g) => g.id,
                Outcome::Usage(u) => u.id,
                _ => String::new(),
            };
            tracing::info!(admin = %admin.session.email, customer = %id, adjustment = %done, "credits adjusted by an admin");
            Redirect::to(&format!(
                "/admin/customers/{}?adjusted={}",
                urlencode(&id),
                urlencode(&done)
            ))
            .into_response()
        }
        Err(ApiError { status, message, .. }) if status.is_client_error() => {
            detail_page(&state, &admin, &id, Some((false, message)), status).await
        }
        Err(e) => internal(&admin, Tab::Customers, e.message),
    }
}
