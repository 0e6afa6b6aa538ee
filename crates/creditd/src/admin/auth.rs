//! Logging in and out. Passwords are argon2id hashes; sessions are random tokens stored as
//! SHA-256 hashes with an expiry. Failed logins are counted in the database per account and
//! per client address, so the limit holds across replicas sharing one database.

use std::net::SocketAddr;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use axum::extract::{ConnectInfo, Form, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Json;
use creditd_domain::ids::random_token;
use serde::Deserialize;

use super::{cookie, same_secret, session_cookie_name, set_cookie, AdminForm, LOGIN_COOKIE};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::ApiJson;
use crate::pages::{escape, page};

/// Failed logins counted over this window…
pub const FAILURE_WINDOW_SECONDS: i64 = 15 * 60;
/// …at most this many per account…
pub const MAX_FAILURES_PER_ACCOUNT: i64 = 5;
/// …and this many per client address.
pub const MAX_FAILURES_PER_ADDRESS: i64 = 20;

pub const MIN_PASSWORD_CHARS: usize = 12;

/// An argon2id PHC string for a password (random salt, the crate's default parameters).
pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| format!("could not hash the password: {e}"))
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
}

/// Checked by `creditd admin create-user`.
pub fn check_new_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    Ok(())
}

pub fn check_email(email: &str) -> Result<String, String> {
    let email = email.trim().to_lowercase();
    let ok = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(user, domain)| !user.is_empty() && !domain.is_empty())
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(email)
    } else {
        Err(format!("{email:?} is not an email address"))
    }
}

/// Verifying against this when the account does not exist keeps unknown emails as slow as
/// wrong passwords, so timing does not tell which emails are admins.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&random_token(24)).expect("hashing a random password"))
}

/// The client's address as the listener saw it (behind a proxy: the proxy's).
pub struct ClientAddress(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_else(|| "unknown".into());
        Ok(ClientAddress(ip))
    }
}

fn login_form(csrf: &str, message: Option<&str>) -> String {
    let flash = message
        .map(|m| format!("<p class=\"err\" role=\"alert\">{}</p>", escape(m)))
        .unwrap_or_default();
    format!(
        "<h1>creditd admin</h1>{flash}<form method=\"post\" action=\"/admin/login\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <p><label>Email<br><input type=\"email\" name=\"email\" autocomplete=\"username\" required style=\"width:100%\"></label></p>\
         <p><label>Password<br><input type=\"password\" name=\"password\" autocomplete=\"current-password\" required style=\"width:100%\"></label></p>\
         <p><button type=\"submit\">Log in</button></p></form>\
         <p class=\"muted\">Admins are created with <code>creditd admin create-user --email …</code>.</p>",
        escape(csrf)
    )
}

/// A login page with a fresh double-submit token in its cookie and its form.
fn login_response(state: &AppState, status: StatusCode, message: Option<&str>) -> Response {
    let csrf = random_token(32);
    let cookie = set_cookie(state, LOGIN_COOKIE, &csrf, 3600);
    (
        status,
        [(header::SET_COOKIE, cookie)],
        Html(page("Log in", &login_form(&csrf, message))),
    )
        .into_response()
}

/// `GET /admin/login`
pub async fn login_page(State(state): State<AppState>) -> Response {
    login_response(&state, StatusCode::OK, None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    pub email: String,
    pub password: String,
    pub csrf: Option<String>,
}

/// Why a login failed.
enum Refused {
    Limited,
    Wrong,
    Broken(creditd_store::StoreError),
}

/// Checks the limits, then the password; counts a failure against the account and address.
async fn authenticate(
    state: &AppState,
    email: &str,
    password: &str,
    ip: &str,
) -> Result<creditd_store::NewAdminSession, Refused> {
    let now = state.clock.now();
    let since = now - FAILURE_WINDOW_SECONDS;
    let email = email.trim().to_lowercase();
    let (account, address) = (format!("email:{email}"), format!("ip:{ip}"));
    let store = &state.store;
    let by_account = store.login_failures(&account, since).await.map_err(Refused::Broken)?;
    let by_address = store.login_failures(&address, since).await.map_err(Refused::Broken)?;
    if by_account >= MAX_FAILURES_PER_ACCOUNT || by_address >= MAX_FAILURES_PER_ADDRESS {
        return Err(Refused::Limited);
    }
    let user = store.admin_user(&email).await.map_err(Refused::Broken)?;
    let phc = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| dummy_hash().to_string());
    let password = password.to_string();
    let matches = tokio::task::spawn_blocking(move || verify_password(&password, &phc))
        .await
        .unwrap_or(false);
    match user.filter(|_| matches) {
        Some(user) => {
            store.clear_login_failures(&account).await.map_err(Refused::Broken)?;
            store
                .open_admin_session(&user, state.settings.admin_session_ttl_seconds, now)
                .await
                .map_err(Refused::Broken)
        }
        None => {
            store
                .record_login_failure(&[account, address], now, since)
                .await
                .map_err(Refused::Broken)?;
            tracing::warn!(email = %email, ip, "failed admin login");
            Err(Refused::Wrong)
        }
    }
}

/// `POST /admin/login`
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(ip): ClientAddress,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if expected.is_empty() || !form.csrf.as_deref().is_some_and(|t| same_secret(t, expected)) {
        return login_response(
            &state,
            StatusCode::FORBIDDEN,
            Some("The login form expired; please try again."),
        );
    }
    match authenticate(&state, &form.email, &form.password, &ip).await {
        Ok(opened) => {
            let name = session_cookie_name(&state);
            let session = set_cookie(&state, &name, &opened.token, state.settings.admin_session_ttl_seconds);
            let clear = set_cookie(&state, LOGIN_COOKIE, "", 0);
            let mut response = Redirect::to("/admin").into_response();
            let headers = response.headers_mut();
            headers.append(header::SET_COOKIE, session.parse().expect("cookie header"));
            headers.append(header::SET_COOKIE, clear.parse().expect("cookie header"));
            response
        }
        Err(Refused::Limited) => login_response(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many failed logins; wait 15 minutes and try again."),
        ),
        Err(Refused::Wrong) => login_response(&state, StatusCode::UNAUTHORIZED, Some("Wrong email or password.")),
        Err(Refused::Broken(e)) => {
            tracing::error!(error = %e, "admin login failed");
            login_response(
                &state,
                StatusCode::INTERNAL_SERVER_ERROR,
                Some("Something went wrong; it has been logged."),
            )
        }
    }
}

#[derive(Deserialize)]
pub struct LogoutForm {}

/// `POST /admin/logout`
pub async fn logout(State(state): State<AppState>, form: AdminForm<LogoutForm>) -> Response {
    if let Err(e) = state.store.close_admin_session(&form.admin.token).await {
        tracing::error!(error = %e, "could not close an admin session");
    }
    let clear = set_cookie(&state, &session_cookie_name(&state), "", 0);
    ([(header::SET_COOKIE, clear)], Redirect::to("/admin/login")).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiLogin {
    pub email: String,
    pub password: String,
}

/// `POST /v1/admin/sessions` with a JSON body: the same login for the operator's own tools.
/// JSON cannot be sent cross-site without a CORS preflight, so it needs no CSRF token.
pub async fn api_login(
    State(state): State<AppState>,
    ClientAddress(ip): ClientAddress,
    body: ApiJson<ApiLogin>,
) -> Response {
    let body = body.value;
    match authenticate(&state, &body.email, &body.password, &ip).await {
        Ok(opened) => {
            let name = session_cookie_name(&state);
            let cookie = set_cookie(&state, &name, &opened.token, state.settings.admin_session_ttl_seconds);
            let body = serde_json::json!({
                "object": "admin_session",
                "email": opened.session.email,
                "expires_at": opened.session.expires_at,
            });
            (StatusCode::CREATED, [(header::SET_COOKIE, cookie)], Json(body)).into_response()
        }
        Err(Refused::Limited) => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_login_failures",
            "too many failed logins; wait 15 minutes",
        )
        .into_response(),
        Err(Refused::Wrong) => ApiError::unauthorized("wrong email or password").into_response(),
        Err(Refused::Broken(e)) => ApiError::from(e).into_response(),
    }
}
