//! The end user's billing page: balance, packages to buy, usage, payments and the ledger of
//! one customer, opened with the app's customer token.
//!
//! `/billing?token=<jwt>` verifies the token, keeps it in an HttpOnly cookie and redirects to
//! `/billing`, so the token leaves the address bar (and history, and Referer headers). The
//! cookie is the token itself: nothing is stored server-side, any replica can serve the page,
//! and the session ends when the token's `exp` says (capped at [`MAX_SESSION_SECONDS`]).
//!
//! The cookie is `SameSite=Lax`, not `Strict`: the exchange is a navigation that started on
//! the app's site, and browsers treat the whole redirect chain as cross-site, so a Strict
//! cookie would be withheld on the very request it was set for. Lax still keeps it off
//! cross-site POSTs and subresources; the Buy form also carries a CSRF token derived from the
//! cookie, which another site can neither read nor compute.

use std::fmt::Write;
use std::sync::LazyLock;

use axum::extract::{Form, Query, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use creditd_domain::money::{self, PaymentStatus};
use creditd_domain::views::{Customer, Entry, Package, Payment};
use creditd_domain::{Credits, EntryKind};
use creditd_store::{PageRequest, UsageBucket, SECONDS_PER_DAY};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::chart::UsageChart;
use super::{escape, format};
use crate::app::AppState;
use crate::clock::{iso_minute, rfc3339};
use crate::http::error::ApiError;
use crate::http::extract::CustomerToken;

pub const COOKIE: &str = "creditd_billing";
/// However long the app's token lives, the billing session ends after this.
pub const MAX_SESSION_SECONDS: i64 = 8 * 3600;
pub const LEDGER_PAGE: u32 = 20;
pub const PAYMENTS_SHOWN: u32 = 20;
pub const USAGE_DAYS: i64 = 30;

const STYLE: &str = "\
*{box-sizing:border-box}html{-webkit-text-size-adjust:100%}\
body{font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1b1f24}\
.wrap{max-width:60rem;margin:0 auto;padding:1rem}\
header{padding:1rem 0 .25rem}h1{font-size:1.6rem;margin:0}h2{font-size:1.2rem;margin:0 0 .75rem}h3{font-size:1.05rem;margin:0}\
section{position:relative;background:#fff;border-radius:12px;box-shadow:0 1px 3px #0002;padding:1.25rem;margin:1rem 0}\
.muted{color:#4d5562}.big{font-size:2.4rem;font-weight:700;line-height:1.1;margin:.25rem 0}\
.big span{font-size:1rem;font-weight:400;color:#4d5562}\
dl.stats{display:flex;flex-wrap:wrap;gap:.25rem 2rem;margin:.5rem 0 0}dl.stats dt{color:#4d5562}dl.stats dd{margin:0;font-weight:600}\
.alert{border-radius:8px;padding:.75rem 1rem;margin:.75rem 0 0;border:1px solid}\
.alert.warn{background:#fff6e0;border-color:#e0b04a;color:#5c3d00}.alert.err{background:#fdecea;border-color:#e3a19b;color:#7d1a12}\
.packages{list-style:none;padding:0;margin:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(14rem,1fr));gap:.75rem}\
.packages li{border:1px solid #d0d4da;border-radius:10px;padding:1rem;display:flex;flex-direction:column;gap:.4rem}\
.packages p{margin:0}.price{font-size:1.3rem;font-weight:700}\
form.buy{display:flex;gap:.5rem;align-items:end;flex-wrap:wrap;margin-top:auto}\
form.buy label{display:flex;flex-direction:column;font-size:.85rem;color:#4d5562}\
input[type=number]{width:5rem;padding:.45rem;font-size:1rem;border:1px solid #8a919c;border-radius:6px}\
button{font-size:1rem;padding:.55rem 1.2rem;border-radius:6px;border:0;background:#0b57d0;color:#fff;cursor:pointer;min-height:2.75rem}\
button:hover{background:#0842a0}\
:focus-visible{outline:3px solid #f2a900;outline-offset:2px}\
a{color:#0b57d0}\
.scroll{position:relative;overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:.95rem}\
th,td{text-align:left;padding:.45rem .5rem;border-bottom:1px solid #e3e6ea;white-space:nowrap;vertical-align:top}thead th{color:#4d5562;font-weight:600;white-space:normal}td.when,td.what{white-space:normal}td.when{min-width:5.5rem}\
.num{text-align:right;font-variant-numeric:tabular-nums}\
.status{display:inline-block;padding:0 .5rem;border-radius:99px;font-size:.85rem;font-weight:600}\
.s-succeeded{background:#e3f4e8;color:#0a5c2b}.s-pending{background:#fff3d6;color:#6b4500}.s-failed,.s-expired{background:#f1f2f4;color:#3d4450}\
svg.chart{width:100%;max-width:600px;height:auto;display:block}\
.legend{list-style:none;padding:0;margin:.5rem 0;display:flex;flex-wrap:wrap;gap:.25rem 1.25rem}\
details{margin-top:.5rem}summary{cursor:pointer;color:#0b57d0}\
nav.pages{display:flex;gap:1.5rem;margin-top:.75rem}\
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff;padding:.5rem}\
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}\
footer{font-size:.85rem;color:#4d5562;padding:0 0 2rem}\
@media (max-width:30rem){.wrap{padding:.5rem}section{padding:.85rem;border-radius:10px}th,td{padding:.4rem .3rem}.big{font-size:2rem}}";

/// The stylesheet's CSP hash: inline style is allowed by content, nothing else runs.
static STYLE_HASH: LazyLock<String> = LazyLock::new(|| {
    let digest = Sha256::digest(STYLE.as_bytes());
    format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest))
});

#[derive(Deserialize)]
pub struct BillingQuery {
    pub token: Option<String>,
    /// The id of the last ledger entry of the previous page.
    pub ledger_after: Option<String>,
}

#[derive(Deserialize)]
pub struct BuyForm {
    pub csrf: Option<String>,
    pub package: Option<String>,
    pub quantity: Option<String>,
}

/// `GET /billing`: exchanges `?token=` for the session cookie, or renders the page.
pub async fn page(State(state): State<AppState>, headers: HeaderMap, Query(query): Query<BillingQuery>) -> Response {
    if let Some(token) = query.token {
        return match CustomerToken::verify(&state, &token) {
            Ok(verified) => exchange(&state, &token, &verified),
            Err(e) => message_page(&state, e.status, "This billing link does not work", &link_error(&e)),
        };
    }
    let (cookie, token) = match session(&state, &headers) {
        Ok(session) => session,
        Err(response) => return *response,
    };
    let now = state.clock.now();
    let customer = match state.customer(&token.customer).await {
        Ok(c) => c,
        Err(e) if e.status == StatusCode::NOT_FOUND => {
            return message_page(
                &state,
                StatusCode::NOT_FOUND,
                "No billing account yet",
                "Your account has no credits yet. Use the app once, then open billing again.",
            )
        }
        Err(e) => return failure_page(&state, e),
    };
    let ledger_page = PageRequest {
        limit: LEDGER_PAGE,
        starting_after: query.ledger_after.clone(),
    };
    let payments_page = PageRequest {
        limit: PAYMENTS_SHOWN,
        starting_after: None,
    };
    let from = (now.div_euclid(SECONDS_PER_DAY) - (USAGE_DAYS - 1)) * SECONDS_PER_DAY;
    let id = &customer.id;
    let (packages, payments, usage, ledger) = tokio::join!(
        state.store.packages(false),
        state.store.payments(id, &payments_page),
        state.store.usage_by_day(id, from, now + 1),
        state.store.ledger(id, &ledger_page),
    );
    let (packages, payments, usage, ledger) = match (packages, payments, usage, ledger) {
        (Ok(a), Ok(b), Ok(c), Ok(d)) => (a, b, c, d),
        (Err(e), ..) | (_, Err(e), ..) | (.., Err(e), _) | (.., Err(e)) => return failure_page(&state, e.into()),
    };
    let auto_topup = match state.store.auto_topup(id).await {
        Ok(t) => t.map(|t| t.view()),
        Err(e) => return failure_page(&state, e.into()),
    };
    let view = View {
        customer: &customer,
        auto_topup: auto_topup.as_ref(),
        threshold: state.settings.low_balance_threshold,
        csrf: &csrf_token(&cookie),
        packages: &packages,
        payments: &payments.data,
        usage: &usage,
        ledger: &ledger.data,
        ledger_has_more: ledger.has_more,
        ledger_paged: query.ledger_after.is_some(),
        now,
    };
    respond(&state, StatusCode::OK, render(&view))
}

/// `POST /billing/checkout`: the Buy button. Starts Checkout for the session's customer and
/// sends the browser to Stripe's hosted page.
pub async fn buy(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<BuyForm>) -> Response {
    let (cookie, token) = match session(&state, &headers) {
        Ok(session) => session,
        Err(response) => return *response,
    };
    let expected = csrf_token(&cookie);
    if !form
        .csrf
        .as_deref()
        .is_some_and(|sent| constant_time_eq(sent, &expected))
    {
        return message_with_back(
            &state,
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Reload the billing page and press Buy again.",
        );
    }
    let quantity = match form.quantity.as_deref().map(str::trim) {
        None | Some("") => 1,
        Some(q) => match q.parse::<i64>() {
            Ok(q) => q,
            Err(_) => {
                return message_with_back(
                    &state,
                    StatusCode::BAD_REQUEST,
                    "Check the quantity",
                    "The quantity must be a whole number from 1 to 100.",
                )
            }
        },
    };
    let package = form.package.unwrap_or_default();
    match crate::http::me::start_checkout(&state, &token.customer, &package, quantity, None).await {
        Ok((_, out)) => match out["url"].as_str() {
            Some(url) => redirect(url, None),
            None => failure_page(&state, ApiError::internal("Checkout Session without a url")),
        },
        Err(e) if e.status.is_client_error() => {
            message_with_back(&state, e.status, "This purchase could not start", &e.message)
        }
        Err(e) => failure_page(&state, e),
    }
}

/// Sets the session cookie and redirects to the page without the token in the address.
fn exchange(state: &AppState, token: &str, verified: &CustomerToken) -> Response {
    let max_age = (verified.expires_at - state.clock.now()).clamp(1, MAX_SESSION_SECONDS);
    let cookie = format!(
        "{COOKIE}={token}; Path={}; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
        cookie_path(state),
        if state.stripe.public_url.starts_with("https://") {
            "; Secure"
        } else {
            ""
        }
    );
    // Relative, so a path prefix in front of creditd keeps working.
    redirect("billing", Some(cookie))
}

/// The session's token from the cookie, or the page (and cookie removal) that says why not.
pub(crate) fn session(state: &AppState, headers: &HeaderMap) -> Result<(String, CustomerToken), Box<Response>> {
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string());
    let Some(cookie) = cookie else {
        return Err(Box::new(message_page(
            state,
            StatusCode::UNAUTHORIZED,
            "Open billing from the app",
            "This page shows your credits and payments. Open it from the app you use, which signs you in here.",
        )));
    };
    match CustomerToken::verify(state, &cookie) {
        Ok(token) => Ok((cookie, token)),
        Err(_) => {
            let mut response = message_page(
                state,
                StatusCode::UNAUTHORIZED,
                "Your billing session has ended",
                "For your security, billing sessions are short. Open billing again from the app.",
            );
            let expired = format!(
                "{COOKIE}=; Path={}; Max-Age=0; HttpOnly; SameSite=Lax",
                cookie_path(state)
            );
            if let Ok(value) = HeaderValue::from_str(&expired) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            Err(Box::new(response))
        }
    }
}

fn cookie_path(state: &AppState) -> String {
    let url = &state.stripe.public_url;
    let after_scheme = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
    let prefix = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    format!("{}/billing", prefix.trim_end_matches('/'))
}

/// Ties the Buy form to the session: only a page that could read the cookie knows it.
pub fn csrf_token(cookie: &str) -> String {
    let digest = Sha256::digest(format!("creditd billing csrf\n{cookie}").as_bytes());
    hex::encode(&digest[..16])
}

pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn link_error(e: &ApiError) -> String {
    format!(
        "{}. Open billing again from the app to get a fresh link.",
        e.message.trim_end_matches('.')
    )
}

pub(crate) fn redirect(location: &str, cookie: Option<String>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, value);
    }
    if let Some(value) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(header::SET_COOKIE, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// The page with the headers every billing response carries: no scripts at all, only this
/// stylesheet, framing only by the configured origins, no caching, no Referer.
fn respond(state: &AppState, status: StatusCode, html: String) -> Response {
    let ancestors = state.settings.billing_frame_ancestors.as_deref().unwrap_or("'none'");
    let csp = format!(
        "default-src 'none'; style-src {}; img-src 'self'; base-uri 'none'; frame-ancestors {ancestors}",
        *STYLE_HASH
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    if state.settings.billing_frame_ancestors.is_none() {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

fn message_page(state: &AppState, status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<section><h1>{}</h1><p>{}</p></section>",
        escape(title),
        escape(message)
    );
    respond(state, status, document(title, &body))
}

/// A message on a page under `/billing/`, with the way back to the billing page.
pub(crate) fn message_with_back(state: &AppState, status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<section><h1>{}</h1><p>{}</p><p><a href=\"../billing\">Back to billing</a></p></section>",
        escape(title),
        escape(message)
    );
    respond(state, status, document(title, &body))
}

pub(crate) fn failure_page(state: &AppState, e: ApiError) -> Response {
    let message = if e.status.is_server_error() {
        "Something went wrong on our side; it has been logged. Please try again in a minute.".to_string()
    } else {
        e.message
    };
    message_page(state, e.status, "Billing is unavailable", &message)
}

fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\"><title>{} · Billing</title><style>{STYLE}</style></head>\
         <body><a class=\"skip\" href=\"#main\">Skip to content</a><div class=\"wrap\" id=\"main\">{body}</div></body></html>",
        escape(title)
    )
}

/// Everything the page shows.
pub struct View<'a> {
    pub customer: &'a Customer,
    pub auto_topup: Option<&'a creditd_domain::views::AutoTopupView>,
    pub threshold: Credits,
    pub csrf: &'a str,
    pub packages: &'a [Package],
    pub payments: &'a [Payment],
    pub usage: &'a [UsageBucket],
    pub ledger: &'a [Entry],
    pub ledger_has_more: bool,
    pub ledger_paged: bool,
    pub now: i64,
}

pub fn render(view: &View) -> String {
    let who = view.customer.email.as_deref().unwrap_or(&view.customer.id);
    let body = format!(
        "<header><h1>Billing</h1><p class=\"muted\">Account {}</p></header><main>{}{}{}{}{}{}</main>\
         <footer>Times are in UTC. Amounts in credits unless a currency is shown.</footer>",
        escape(who),
        balance_section(view),
        packages_section(view),
        super::autotopup::section(view.auto_topup, view.packages, view.csrf),
        usage_section(view),
        payments_section(view),
        ledger_section(view),
    );
    document("Billing", &body)
}

fn balance_section(view: &View) -> String {
    let c = view.customer;
    let mut out = format!(
        "<section aria-labelledby=\"balance-h\"><h2 id=\"balance-h\">Balance</h2>\
         <p class=\"big\" id=\"balance\">{} <span>credits</span></p><dl class=\"stats\">\
         <div><dt>Available to spend</dt><dd id=\"available\">{}</dd></div>",
        format::credits(c.balance),
        format::credits(c.available)
    );
    if c.held.is_positive() {
        let _ = write!(
            out,
            "<div><dt>Reserved for requests in progress</dt><dd>{}</dd></div>",
            format::credits(c.held)
        );
    }
    if c.frozen.is_positive() {
        let _ = write!(
            out,
            "<div><dt>Frozen while a payment is disputed</dt><dd id=\"frozen\">{}</dd></div>",
            format::credits(c.frozen)
        );
    }
    out.push_str("</dl>");
    if c.balance < Credits::ZERO {
        let _ = write!(
            out,
            "<p class=\"alert err\" role=\"alert\"><strong>Your balance is negative.</strong> You owe {} credits \
             (after a refund or a disputed payment). Buy credits below to settle it and keep using the app.</p>",
            format::credits(c.balance.abs())
        );
    } else if c.available <= view.threshold {
        let _ = write!(
            out,
            "<p class=\"alert warn\" role=\"status\"><strong>Your balance is low.</strong> {} credits left to spend. \
             Buy more below so the app keeps working without interruption.</p>",
            format::credits(c.available)
        );
    }
    out.push_str("</section>");
    out
}

fn packages_section(view: &View) -> String {
    let mut out = String::from("<section aria-labelledby=\"buy-h\"><h2 id=\"buy-h\">Buy credits</h2>");
    if view.packages.is_empty() {
        out.push_str(
            "<p class=\"muted\">No credit packages are on sale right now. Please check back later.</p></section>",
        );
        return out;
    }
    out.push_str("<ul class=\"packages\">");
    for p in view.packages {
        let price = money::display(p.price, &p.currency);
        let _ = write!(
            out,
            "<li><h3>{name}</h3><p class=\"price\">{price}</p><p>{credits} credits</p>\
             <form class=\"buy\" method=\"post\" action=\"billing/checkout\" target=\"_top\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"package\" value=\"{id}\">\
             <label for=\"q-{id}\">Quantity<input id=\"q-{id}\" name=\"quantity\" type=\"number\" min=\"1\" max=\"100\" value=\"1\" \
             inputmode=\"numeric\"></label><button type=\"submit\">Buy<span class=\"sr\"> {name}</span></button></form></li>",
            name = escape(&p.name),
            price = escape(&price),
            credits = format::credits(p.credits),
            csrf = escape(view.csrf),
            id = escape(&p.id),
        );
    }
    out.push_str("</ul><p class=\"muted\">You pay on Stripe's secure checkout page and come back here.</p></section>");
    out
}

fn usage_section(view: &View) -> String {
    let chart = UsageChart::build(view.usage, view.now, USAGE_DAYS);
    let mut out = format!("<section aria-labelledby=\"usage-h\"><h2 id=\"usage-h\">Usage, last {USAGE_DAYS} days</h2>");
    if chart.total() == Credits::ZERO {
        out.push_str(
            "<p class=\"muted\">No credits spent in the last 30 days. When you use the app, \
             what each feature costs shows here day by day.</p>",
        );
    } else {
        let _ = write!(
            out,
            "<p>{} credits spent.</p>{}",
            format::credits(chart.total()),
            chart.render()
        );
    }
    out.push_str("</section>");
    out
}

fn payments_section(view: &View) -> String {
    let mut out = String::from("<section aria-labelledby=\"payments-h\"><h2 id=\"payments-h\">Payments</h2>");
    if view.payments.is_empty() {
        out.push_str(
            "<p class=\"muted\">No payments yet. Buy a package above; your receipts will be listed here.</p></section>",
        );
        return out;
    }
    out.push_str(
        "<div class=\"scroll\"><table><thead><tr><th scope=\"col\">Date</th><th scope=\"col\" class=\"num\">Credits</th>\
         <th scope=\"col\" class=\"num\">Amount</th><th scope=\"col\">Status</th></tr></thead><tbody>",
    );
    for p in view.payments {
        let (label, class) = match p.status {
            PaymentStatus::Succeeded => ("Paid", "succeeded"),
            PaymentStatus::Pending => ("Pending", "pending"),
            PaymentStatus::Failed => ("Failed", "failed"),
            PaymentStatus::Expired => ("Not completed", "expired"),
        };
        let receipt = match &p.receipt_url {
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => format!(
                "<a href=\"{}\" rel=\"noopener noreferrer\" target=\"_blank\">Receipt<span class=\"sr\"> for the payment of {}</span></a>",
                escape(url),
                time_text(p.created)
            ),
            _ => String::new(),
        };
        let _ = write!(
            out,
            "<tr><td class=\"when\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"what\"><span class=\"status s-{class}\">{label}</span> {receipt}</td></tr>",
            time(p.created),
            format::credits_exact(p.credits),
            escape(&money::display(p.amount, &p.currency)),
        );
    }
    out.push_str("</tbody></table></div></section>");
    out
}

fn ledger_section(view: &View) -> String {
    let mut out = String::from("<section aria-labelledby=\"ledger-h\" id=\"ledger\"><h2 id=\"ledger-h\">Activity</h2>");
    if view.ledger.is_empty() {
        out.push_str(if view.ledger_paged {
            "<p class=\"muted\">No older activity.</p>"
        } else {
            "<p class=\"muted\">No activity yet. Credits you receive and spend will be listed here.</p>"
        });
    } else {
        out.push_str(
            "<div class=\"scroll\"><table><thead><tr><th scope=\"col\">Date</th><th scope=\"col\">What</th>\
             <th scope=\"col\" class=\"num\">Change</th><th scope=\"col\" class=\"num\">Balance after</th></tr></thead><tbody>",
        );
        for e in view.ledger {
            let what = match (e.kind, &e.feature) {
                (EntryKind::Grant, _) => "Credits added".to_string(),
                (EntryKind::Usage, Some(f)) => format!("Used: {}", escape(f)),
                (EntryKind::Usage, None) => "Used".to_string(),
                (EntryKind::Expire, _) => "Expired unused".to_string(),
                (EntryKind::Clawback, _) => "Taken back (refund or lost dispute)".to_string(),
                (EntryKind::Freeze, _) => "Frozen during a payment dispute".to_string(),
                (EntryKind::Unfreeze, _) => "Unfrozen after a payment dispute".to_string(),
                (EntryKind::DebtPayment, _) => "Paid towards what you owed".to_string(),
            };
            let _ = write!(
                out,
                "<tr><td class=\"when\">{}</td><td class=\"what\">{what}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                time(e.created),
                format::signed_credits(e.amount),
                format::credits_exact(e.balance_after)
            );
        }
        out.push_str("</tbody></table></div>");
    }
    let mut nav = String::new();
    if view.ledger_paged {
        nav.push_str("<a href=\"billing#ledger\">Newest activity</a>");
    }
    if let Some(last) = view.ledger.last().filter(|_| view.ledger_has_more) {
        let _ = write!(
            nav,
            "<a href=\"billing?ledger_after={}#ledger\">Older activity</a>",
            escape(&last.id)
        );
    }
    if !nav.is_empty() {
        let _ = write!(out, "<nav class=\"pages\" aria-label=\"Activity pages\">{nav}</nav>");
    }
    out.push_str("</section>");
    out
}

fn time(unix: i64) -> String {
    format!("<time datetime=\"{}\">{}</time>", rfc3339(unix), time_text(unix))
}

/// `2026-11-22 13:32`; the footer says the times are UTC.
fn time_text(unix: i64) -> String {
    iso_minute(unix).trim_end_matches(" UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(balance: i64, held: i64) -> Customer {
        Customer {
            id: "user_1".into(),
            email: Some("ada@example.com".into()),
            metadata: serde_json::json!({}),
            balance: Credits::from_micros(balance * 1_000_000),
            available: Credits::from_micros((balance - held) * 1_000_000),
            held: Credits::from_micros(held * 1_000_000),
            frozen: Credits::ZERO,
            debt: Credits::ZERO,
            low_balance_threshold: Credits::ZERO,
            created: 0,
            subscription: None,
            auto_topup: None,
        }
    }

    #[test]
    fn frozen_credits_are_shown_when_there_are_some() {
        let mut c = customer(20, 0);
        assert!(!balance_section(&view(&c)).contains("Frozen"));
        c.frozen = Credits::from_micros(7_000_000);
        assert!(balance_section(&view(&c)).contains("Frozen while a payment is disputed"));
    }

    fn view<'a>(c: &'a Customer) -> View<'a> {
        View {
            auto_topup: None,
            customer: c,
            threshold: Credits::from_micros(10_000_000),
            csrf: "abc",
            packages: &[],
            payments: &[],
            usage: &[],
            ledger: &[],
            ledger_has_more: false,
            ledger_paged: false,
            now: 1_800_000_000,
        }
    }

    #[test]
    fn warns_about_low_and_negative_balances_only() {
        let rich = customer(500, 0);
        assert!(!render(&view(&rich)).contains("class=\"alert"));
        let low = customer(12, 3);
        let html = render(&view(&low));
        assert!(
            html.contains("Your balance is low") && html.contains("9 credits left"),
            "{html}"
        );
        assert!(html.contains("Reserved for requests in progress"));
        let negative = customer(-4, 0);
        let html = render(&view(&negative));
        assert!(html.contains("Your balance is negative") && html.contains("You owe 4 credits"));
        assert!(!html.contains("Your balance is low"));
    }

    #[test]
    fn empty_sections_say_what_to_do_and_markup_is_escaped() {
        let mut c = customer(50, 0);
        c.email = Some("<script>x</script>".into());
        let html = render(&view(&c));
        assert!(html.contains("No payments yet. Buy a package above"));
        assert!(html.contains("No credit packages are on sale"));
        assert!(html.contains("No credits spent in the last 30 days"));
        assert!(html.contains("No activity yet"));
        assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"));
        assert!(html.starts_with("<!doctype html><html lang=\"en\">"));
    }

    #[test]
    fn csrf_tokens_depend_on_the_session() {
        assert_eq!(csrf_token("a"), csrf_token("a"));
        assert_ne!(csrf_token("a"), csrf_token("b"));
        assert!(constant_time_eq("abc", "abc") && !constant_time_eq("abc", "abd") && !constant_time_eq("ab", "abc"));
    }
}
