//! The operator's dashboard: server-rendered pages under `/admin` and the same figures as
//! JSON under `/v1/admin/reports`. Access is by admin session only (a cookie set at login);
//! API keys and customer tokens are refused, and every form POST carries the session's
//! CSRF token.

pub mod auth;
pub mod catalog;
pub mod charts;
pub mod customers;
pub mod dates;
pub mod events;
pub mod exports;
pub mod outbound;
pub mod overview;
pub mod reports;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use creditd_store::AdminSession;
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::http::error::ApiError;
use crate::pages::escape;

/// The session cookie; `__Host-` is added when served over https.
pub const SESSION_COOKIE: &str = "creditd_admin";
/// Double-submit token of the login form (there is no session yet to tie it to).
pub const LOGIN_COOKIE: &str = "creditd_admin_login";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/login", get(auth::login_page).post(auth::login))
        .route("/admin/logout", post(auth::logout))
        .route("/admin", get(overview::page))
        .route("/admin/customers", get(customers::search))
        .route("/admin/customers/{id}", get(customers::detail))
        .route("/admin/customers/{id}/adjust", post(customers::adjust))
        .route("/admin/events", get(events::page))
        .route("/admin/events/{id}/retry", post(events::retry))
        .route("/admin/outbound", get(outbound::page))
        .route("/admin/outbound/{id}/redeliver", post(outbound::redeliver))
        .route("/admin/catalog", get(catalog::page))
        .route("/admin/catalog/packages", post(catalog::create_package))
        .route("/admin/catalog/packages/{id}/archive", post(catalog::archive_package))
        .route("/admin/catalog/packages/sync", post(catalog::sync_packages))
        .route("/admin/catalog/features", post(catalog::create_feature))
        .route("/admin/catalog/features/{id}/archive", post(catalog::archive_feature))
        .route("/admin/catalog/plans/{id}/features", post(catalog::plan_features))
        .route("/admin/exports", get(exports::page))
        .route("/admin/exports/{kind}", get(exports::download))
        .route("/v1/admin/sessions", post(auth::api_login))
        .route("/v1/admin/reports/overview", get(reports::overview))
        .route("/v1/admin/reports/revenue", get(reports::revenue))
        .route("/v1/admin/reports/credits", get(reports::credits))
        .route("/v1/admin/reports/usage", get(reports::usage))
        .route("/v1/admin/reports/top-customers", get(reports::top_customers))
        .layer(axum::middleware::from_fn(protective_headers))
}

/// Nothing on these pages is cached, framed (clickjacking of the forms), or loaded from
/// anywhere: no scripts at all, inline styles and SVG only, forms post back here.
async fn protective_headers(request: Request, next: axum::middleware::Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    for (name, value) in set {
        headers.insert(name, axum::http::HeaderValue::from_static(value));
    }
    response
}

/// Whether cookies get `Secure` (and the `__Host-` prefix): when browsers reach creditd over https.
pub fn secure(state: &AppState) -> bool {
    state.stripe.public_url.starts_with("https://")
}

pub fn session_cookie_name(state: &AppState) -> String {
    if secure(state) {
        format!("__Host-{SESSION_COOKIE}")
    } else {
        SESSION_COOKIE.to_string()
    }
}

/// `name=value; HttpOnly; SameSite=Strict; Path=/` (+ `Secure` over https).
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age: i64) -> String {
    let secure = if secure(state) { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Equal strings, compared in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A request made by a logged-in admin.
#[derive(Clone, Debug)]
pub struct Admin {
    pub session: AdminSession,
    pub token: String,
}

fn is_api(parts: &Parts) -> bool {
    parts.uri.path().starts_with("/v1/")
}

/// Why a request is not an admin's: JSON for `/v1/…`, a page or a redirect for pages.
pub fn refuse(parts: &Parts, status: StatusCode, message: &str) -> Response {
    if is_api(parts) {
        return ApiError::new(status, "admin_session_required", message).into_response();
    }
    if status == StatusCode::UNAUTHORIZED && parts.headers.get(header::AUTHORIZATION).is_none() {
        return Redirect::to("/admin/login").into_response();
    }
    let body = format!(
        "<h1>Not allowed</h1><p>{}</p><p><a href=\"/admin/login\">Log in</a></p>",
        escape(message)
    );
    (status, Html(crate::pages::page("Not allowed", &body))).into_response()
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        // API keys and customer tokens never open the dashboard, whatever cookie comes along.
        if parts.headers.contains_key(header::AUTHORIZATION) {
            return Err(refuse(
                parts,
                StatusCode::UNAUTHORIZED,
                "the dashboard takes an admin session; API keys and customer tokens are refused",
            ));
        }
        let name = session_cookie_name(state);
        let Some(token) = cookie(&parts.headers, &name).map(str::to_string) else {
            return Err(refuse(parts, StatusCode::UNAUTHORIZED, "log in as an admin first"));
        };
        match state.store.admin_session(&token, state.clock.now()).await {
            Ok(Some(session)) => Ok(Admin { session, token }),
            Ok(None) => Err(refuse(
                parts,
                StatusCode::UNAUTHORIZED,
                "the admin session expired or was closed; log in again",
            )),
            Err(e) => Err(ApiError::from(e).into_response()),
        }
    }
}

/// A form POSTed by a logged-in admin, with the session's CSRF token checked before `T` is
/// even parsed. Every dashboard form goes through this.
pub struct AdminForm<T> {
    pub admin: Admin,
    pub value: T,
}

#[derive(serde::Deserialize)]
struct CsrfField {
    csrf: Option<String>,
}

impl<T: DeserializeOwned> FromRequest<AppState> for AdminForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let admin = Admin::from_request_parts(&mut parts, state).await?;
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        let csrf: CsrfField = serde_urlencoded::from_bytes(&bytes).unwrap_or(CsrfField { csrf: None });
        if !csrf.csrf.is_some_and(|t| same_secret(&t, &admin.session.csrf_token)) {
            return Err(refuse(
                &parts,
                StatusCode::FORBIDDEN,
                "this form is missing its security token or it expired; reload the page and try again",
            ));
        }
        let value = serde_urlencoded::from_bytes(&bytes).map_err(|e| {
            let body = format!("<h1>Bad form</h1><p>{}</p>", escape(&e.to_string()));
            (StatusCode::BAD_REQUEST, Html(crate::pages::page("Bad form", &body))).into_response()
        })?;
        Ok(AdminForm { admin, value })
    }
}

const STYLE: &str = "body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1b1f24}\
header{background:#1b1f24;color:#fff;padding:.6rem 1.5rem;display:flex;gap:1.2rem;align-items:center;flex-wrap:wrap}\
header a{color:#dde3ea;text-decoration:none}header a[aria-current]{color:#fff;font-weight:700;text-decoration:underline}\
header .who{margin-left:auto;color:#aab4bf}header form{display:inline}header button{background:none;border:1px solid #aab4bf;color:#dde3ea;border-radius:6px;cursor:pointer}\
main{max-width:72rem;margin:1.5rem auto;padding:0 1.5rem}section{background:#fff;border-radius:10px;box-shadow:0 1px 3px #0002;padding:1rem 1.25rem;margin:0 0 1.25rem}\
h1{font-size:1.4rem;margin:.2rem 0 1rem}h2{font-size:1.1rem;margin:0 0 .75rem}table{border-collapse:collapse;width:100%}\
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #e4e7eb;vertical-align:top}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}\
.muted{color:#5b6470}.ok{color:#0a7a33}.warn{color:#9a5b00}.err{color:#b3261e}.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(20rem,1fr));gap:1.25rem}\
.big{font-size:1.6rem;font-weight:700}form.inline{display:inline}label{display:block;margin:.4rem 0}input,select,textarea{font:inherit;padding:.3rem .4rem;box-sizing:border-box;max-width:100%}td.t{white-space:nowrap}\
button{font:inherit;padding:.3rem .8rem;border-radius:6px;border:1px solid #0b57d0;background:#0b57d0;color:#fff;cursor:pointer}\
.flash{padding:.6rem 1rem;border-radius:8px;background:#e7f3ea;margin-bottom:1rem}.flash.err{background:#fbe9e7}\
a{color:#0b57d0}code{font-size:.9em}svg text{font:11px system-ui,sans-serif;fill:#333}";

/// Which tab a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Overview,
    Customers,
    Events,
    Outbound,
    Catalog,
    Exports,
}

/// A dashboard page: navigation, the admin's name, a logout form, and `body` (escaped HTML).
pub fn layout(admin: &Admin, tab: Tab, title: &str, body: &str) -> Html<String> {
    let tabs = [
        (Tab::Overview, "/admin", "Overview"),
        (Tab::Customers, "/admin/customers", "Customers"),
        (Tab::Events, "/admin/events", "Stripe events"),
        (Tab::Outbound, "/admin/outbound", "Outbound"),
        (Tab::Catalog, "/admin/catalog", "Catalog"),
        (Tab::Exports, "/admin/exports", "Exports"),
    ];
    let nav: String = tabs
        .iter()
        .map(|(t, href, label)| {
            let current = if *t == tab { " aria-current=\"page\"" } else { "" };
            format!("<a href=\"{href}\"{current}>{label}</a>")
        })
        .collect();
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{} · creditd admin</title><style>{STYLE}</style></head><body>\
         <header><strong>creditd</strong><nav aria-label=\"Dashboard\" style=\"display:flex;gap:1.2rem\">{nav}</nav>\
         <span class=\"who\">{}</span>\
         <form method=\"post\" action=\"/admin/logout\">{}<button type=\"submit\">Log out</button></form></header>\
         <main>{body}</main></body></html>",
        escape(title),
        escape(&admin.session.email),
        csrf_field(admin)
    ))
}

/// The hidden field every dashboard form carries.
pub fn csrf_field(admin: &Admin) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(&admin.session.csrf_token)
    )
}

/// An error page inside the dashboard.
pub fn error_page(admin: &Admin, tab: Tab, status: StatusCode, message: &str) -> Response {
    let body = format!("<section><h1 class=\"err\">{}</h1></section>", escape(message));
    (status, layout(admin, tab, "Error", &body)).into_response()
}

/// A page error logged and shown without its cause.
pub fn internal(admin: &Admin, tab: Tab, cause: impl std::fmt::Display) -> Response {
    tracing::error!(error = %cause, "admin page failed");
    error_page(
        admin,
        tab,
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong; it has been logged.",
    )
}
