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

use std::sync::LazyLock;

use axum::extract::{Form, Query, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use creditd_store::{PageRequest, SECONDS_PER_DAY};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::billing_view::{self, View, USAGE_DAYS};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::CustomerToken;

pub const COOKIE: &str = "creditd_billing";
/// However long the app's token lives, the billing session ends after this.
pub const MAX_SESSION_SECONDS: i64 = 8 * 3600;
pub const LEDGER_PAGE: u32 = 20;
pub const PAYMENTS_SHOWN: u32 = 20;

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
.plans li.current{border:2px solid #0b57d0}.packages .includes{margin:0;padding-left:1.1rem}.packages .includes li{border:0;border-radius:0;padding:0;display:list-item}h3.sub{margin:1rem 0 .5rem}\
button.secondary{background:#fff;color:#b3261e;border:1px solid #b3261e}button.secondary:hover{background:#fdecea}\
.s-active,.s-trialing{background:#e3f4e8;color:#0a5c2b}.s-past_due,.s-canceling{background:#fff3d6;color:#6b4500}\
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

/// The plan buttons: Subscribe, Switch (Stripe's portal) and Cancel.
#[derive(Deserialize)]
pub struct PlanForm {
    pub csrf: Option<String>,
    pub plan: Option<String>,
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
    let id = &token.customer;
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
    let (plans, features, entitlements) = tokio::join!(
        state.store.plans(false),
        state.store.features(false),
        crate::http::entitlements::entitlements_of(&state, id),
    );
    let (plans, features, entitlements) = match (plans, features, entitlements) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(e), ..) | (_, Err(e), _) => return failure_page(&state, e.into()),
        (.., Err(e)) => return failure_page(&state, e),
    };
    let mut customer = customer;
    customer.subscription = match state.store.subscription_of(id).await {
        Ok(s) => s,
        Err(e) => return failure_page(&state, e.into()),
    };
    let gated: Vec<_> = entitlements.data.into_iter().filter(|e| e.gated).collect();
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
        plans: &plans,
        plan: entitlements.plan.as_deref(),
        features: &features,
        entitlements: &gated,
    };
    respond(&state, StatusCode::OK, billing_view::render(&view, STYLE))
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

/// The session's customer, when the form carries the session's CSRF token; else the page
/// that says why not.
fn form_session(state: &AppState, headers: &HeaderMap, csrf: Option<&str>) -> Result<CustomerToken, Box<Response>> {
    let (cookie, token) = session(state, headers)?;
    if !csrf.is_some_and(|sent| constant_time_eq(sent, &csrf_token(&cookie))) {
        return Err(Box::new(message_with_back(
            state,
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Reload the billing page and try again.",
        )));
    }
    Ok(token)
}

/// `POST /billing/subscribe`: a plan's Subscribe button, through Stripe Checkout.
pub async fn subscribe(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<PlanForm>) -> Response {
    let token = match form_session(&state, &headers, form.csrf.as_deref()) {
        Ok(token) => token,
        Err(response) => return *response,
    };
    let customer = match state.customer(&token.customer).await {
        Ok(c) => c,
        Err(e) => return failure_page(&state, e),
    };
    let plan = form.plan.unwrap_or_default();
    match crate::http::payments::subscribe(&state, None, customer, &plan, None, None).await {
        Ok((_, out)) => match out["url"].as_str() {
            Some(url) => redirect(url, None),
            None => failure_page(&state, ApiError::internal("Checkout Session without a url")),
        },
        Err(e) if e.status.is_client_error() => {
            message_with_back(&state, e.status, "This plan could not start", &e.message)
        }
        Err(e) => failure_page(&state, e),
    }
}

/// `POST /billing/portal`: Switch, in Stripe's customer portal, which returns to this page.
pub async fn portal(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<PlanForm>) -> Response {
    let token = match form_session(&state, &headers, form.csrf.as_deref()) {
        Ok(token) => token,
        Err(response) => return *response,
    };
    let result = async {
        let customer = state.customer(&token.customer).await?;
        let stripe_customer = crate::billing::stripe_customer(&state, &customer).await?;
        let back = format!("{}/billing", state.stripe.public_url);
        let session = state
            .stripe
            .client
            .create_billing_portal_session(&stripe_customer, Some(&back))
            .await
            .map_err(crate::billing::BillingError::from)?;
        Ok::<_, ApiError>(session.url)
    }
    .await;
    match result {
        Ok(url) => redirect(&url, None),
        Err(e) => failure_page(&state, e),
    }
}

/// `POST /billing/unsubscribe`: Cancel, at the end of the period (the plan's credits stay until then).
pub async fn cancel_subscription(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<PlanForm>,
) -> Response {
    let token = match form_session(&state, &headers, form.csrf.as_deref()) {
        Ok(token) => token,
        Err(response) => return *response,
    };
    let result = async {
        let Some(sub) = state.store.subscription_of(&token.customer).await? else {
            return Err(ApiError::invalid("plan", "there is no subscription to cancel"));
        };
        let key = format!("creditd-cancel-{}", sub.id);
        state
            .stripe
            .client
            .set_cancel_at_period_end(&sub.id, true, &key)
            .await
            .map_err(crate::billing::BillingError::from)?;
        crate::billing::subscriptions::converge_subscription(&state, &sub.id).await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => redirect("../billing#plans", None),
        Err(e) if e.status.is_client_error() => message_with_back(&state, e.status, "Nothing to cancel", &e.message),
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
    respond(state, status, billing_view::message(title, message, false, STYLE))
}

/// A message on a page under `/billing/`, with the way back to the billing page.
pub(crate) fn message_with_back(state: &AppState, status: StatusCode, title: &str, message: &str) -> Response {
    respond(state, status, billing_view::message(title, message, true, STYLE))
}

pub(crate) fn failure_page(state: &AppState, e: ApiError) -> Response {
    let message = if e.status.is_server_error() {
        "Something went wrong on our side; it has been logged. Please try again in a minute.".to_string()
    } else {
        e.message
    };
    message_page(state, e.status, "Billing is unavailable", &message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use creditd_domain::calendar::Period;
    use creditd_domain::views::{
        Customer, EntitlementView, Entry, Feature, Package, Payment, Plan, PlanFeature, SubscriptionSummary,
    };
    use creditd_domain::{Credits, EntryKind};

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
            plans: &[],
            plan: None,
            features: &[],
            entitlements: &[],
        }
    }

    fn render(view: &View) -> String {
        billing_view::render(view, STYLE)
    }

    #[test]
    fn frozen_credits_are_shown_when_there_are_some() {
        let mut c = customer(20, 0);
        assert!(!render(&view(&c)).contains("Frozen"));
        c.frozen = Credits::from_micros(7_000_000);
        assert!(render(&view(&c)).contains("Frozen while a payment is disputed"));
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
        assert!(!html.contains("<script>") && html.contains("&#60;script&#62;"));
        assert!(html.starts_with("<!doctype html><html lang=\"en\">"));
        assert!(!html.contains("id=\"plans\""), "no plans, no plans section");
    }

    #[test]
    fn csrf_tokens_depend_on_the_session() {
        assert_eq!(csrf_token("a"), csrf_token("a"));
        assert_ne!(csrf_token("a"), csrf_token("b"));
        assert!(constant_time_eq("abc", "abc") && !constant_time_eq("abc", "abd") && !constant_time_eq("ab", "abc"));
    }

    fn plan(id: &str, name: &str, free: bool, features: &[(&str, PlanFeature)]) -> Plan {
        Plan {
            id: id.into(),
            name: name.into(),
            credits: Credits::from_micros(if free { 5_000_000 } else { 1_000_000_000 }),
            price: if free { 0 } else { 2000 },
            currency: "usd".into(),
            interval: "month".into(),
            rollover_cap: Credits::ZERO,
            stripe_price: None,
            active: true,
            created: 0,
            free,
            features: features.iter().map(|(f, e)| (f.to_string(), *e)).collect(),
        }
    }

    fn feature(id: &str, name: &str) -> Feature {
        Feature {
            id: id.into(),
            name: name.into(),
            prices: Default::default(),
            per: 1,
            active: true,
            gated: true,
            created: 0,
            updated: 0,
        }
    }

    /// The whole page for a subscriber: packages, plans, entitlements, a payment, the ledger.
    #[test]
    fn the_page_of_a_subscriber() {
        let now = 1_800_000_000;
        let mut c = customer(1_005, 2);
        c.subscription = Some(SubscriptionSummary {
            id: "sub_1".into(),
            plan: Some("plan_pro".into()),
            status: "active".into(),
            current_period_start: Some(now - 86_400),
            current_period_end: Some(now + 29 * 86_400),
            cancel_at_period_end: true,
        });
        let images = PlanFeature::Limited {
            limit: 3,
            period: Period::Day,
        };
        let plans = [
            plan(
                "plan_free",
                "Free",
                true,
                &[
                    ("chat", PlanFeature::Included(true)),
                    (
                        "images",
                        PlanFeature::Limited {
                            limit: 1,
                            period: Period::Month,
                        },
                    ),
                ],
            ),
            plan(
                "plan_pro",
                "Pro <best>",
                false,
                &[
                    ("chat", PlanFeature::Included(true)),
                    ("gpt-4o", PlanFeature::Included(true)),
                    ("images", images),
                ],
            ),
        ];
        let features = [
            feature("chat", "Chat"),
            feature("gpt-4o", "GPT-4o"),
            feature("images", "Images"),
        ];
        let entitlements = [
            EntitlementView {
                feature: "chat".into(),
                name: "Chat".into(),
                allowed: true,
                included: true,
                gated: true,
                limit: None,
                period: None,
                used: None,
                resets_at: None,
            },
            EntitlementView {
                feature: "images".into(),
                name: "Images".into(),
                allowed: true,
                included: true,
                gated: true,
                limit: Some(3),
                period: Some(Period::Day),
                used: Some(1),
                resets_at: Some(1_800_028_800),
            },
        ];
        let packages = [Package {
            id: "pkg_1".into(),
            name: "Starter".into(),
            credits: Credits::from_micros(100_000_000),
            price: 500,
            currency: "usd".into(),
            stripe_price: None,
            active: true,
            created: 0,
        }];
        let payments = [Payment {
            id: "pay_1".into(),
            customer: "user_1".into(),
            package: "pkg_1".into(),
            quantity: 1,
            credits: Credits::from_micros(100_000_000),
            amount: 500,
            currency: "usd".into(),
            status: creditd_domain::money::PaymentStatus::Succeeded,
            flow: "checkout".into(),
            checkout_session: Some("cs_1".into()),
            payment_intent: None,
            grant: None,
            receipt_url: Some("https://pay.example/receipt".into()),
            failure_message: None,
            created: now - 3600,
            updated: now - 3600,
        }];
        let ledger = [Entry {
            id: "ent_1".into(),
            customer: "user_1".into(),
            grant: Some("grt_1".into()),
            kind: EntryKind::Usage,
            amount: Credits::from_micros(-1_250_000),
            balance_after: Credits::from_micros(1_005_000_000),
            reference: Some("use_1".into()),
            feature: Some("gpt-4o".into()),
            metadata: serde_json::json!({}),
            created: now - 60,
        }];
        let view = View {
            packages: &packages,
            payments: &payments,
            ledger: &ledger,
            ledger_has_more: true,
            plans: &plans,
            plan: Some("plan_pro"),
            features: &features,
            entitlements: &entitlements,
            ..view(&c)
        };
        let html = render(&view).replace(STYLE, "/* style */");
        insta::assert_snapshot!(html);
    }

    #[test]
    fn a_message_page() {
        let html = billing_view::message("Your billing session has ended", "Open billing <again>.", true, STYLE);
        insta::assert_snapshot!(html.replace(STYLE, "/* style */"));
    }
}
