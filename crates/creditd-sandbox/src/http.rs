//! The sandbox's router and the cross-cutting behaviour of Stripe's API:
//! bearer-key auth, the `Stripe-Version` header and `Idempotency-Key` replay.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::app::{SharedApp, MAX_BODY_BYTES};
use crate::error::ApiError;
use crate::params::Params;
use crate::state::IdempotentResponse;
use crate::{
    admin, charge, checkout, customer, dispute, event, hosted, ids, invoice, payment_intent, portal, price, product,
    refund, subscription_api,
};

pub fn router(app: SharedApp) -> Router {
    let api = Router::new()
        .route("/v1/customers", post(customer::create))
        .route("/v1/customers/{id}", get(customer::retrieve).post(customer::update))
        .route("/v1/products", post(product::create))
        .route("/v1/products/{id}", get(product::retrieve).post(product::update))
        .route("/v1/prices", post(price::create).get(price::list))
        .route("/v1/prices/{id}", get(price::retrieve).post(price::update))
        .route("/v1/checkout/sessions", post(checkout::create))
        .route("/v1/checkout/sessions/{id}", get(checkout::retrieve))
        .route("/v1/checkout/sessions/{id}/line_items", get(checkout::line_items))
        .route("/v1/checkout/sessions/{id}/expire", post(checkout::expire))
        .route("/v1/payment_intents", post(payment_intent::create))
        .route("/v1/payment_intents/{id}", get(payment_intent::retrieve))
        .route(
            "/v1/payment_intents/{id}/confirm",
            post(payment_intent::confirm_handler),
        )
        .route("/v1/charges/{id}", get(charge::retrieve))
        .route("/v1/refunds", post(refund::create).get(refund::list))
        .route("/v1/refunds/{id}", get(refund::retrieve))
        .route("/v1/test_helpers/refunds/{id}/fail", post(refund::fail_handler))
        .route("/v1/disputes", get(dispute::list))
        .route("/v1/disputes/{id}", get(dispute::retrieve).post(dispute::update))
        .route("/v1/disputes/{id}/close", post(dispute::close_handler))
        .route("/v1/subscriptions", get(subscription_api::list))
        .route(
            "/v1/subscriptions/{id}",
            get(subscription_api::retrieve)
                .post(subscription_api::update)
                .delete(subscription_api::cancel),
        )
        .route("/v1/invoices", get(invoice::list))
        .route("/v1/invoices/{id}", get(invoice::retrieve))
        .route("/v1/invoices/{id}/pay", post(invoice::pay_handler))
        .route("/v1/billing_portal/sessions", post(portal::create))
        .route("/_sandbox/faults", get(admin::get_faults).post(admin::set_faults))
        .route("/_sandbox/clock", get(admin::get_clock))
        .route("/_sandbox/clock/advance", post(admin::advance_clock))
        .route("/v1/events", get(event::list))
        .route("/v1/events/{id}", get(event::retrieve))
        .fallback(unknown_route)
        .layer(middleware::from_fn_with_state(app.clone(), idempotency))
        .layer(middleware::from_fn_with_state(app.clone(), api_faults))
        .layer(middleware::from_fn(authenticate));
    Router::new()
        .route("/pay/{id}", get(hosted::show).post(hosted::submit))
        .route("/receipts/{id}", get(charge::receipt_page))
        .route("/portal/{id}", get(portal::show))
        .route("/portal/{id}/{action}", post(portal::act))
        .merge(api)
        .layer(middleware::from_fn(stripe_version))
        .with_state(app)
}

/// A slow or failing Stripe, as the faults say (the sandbox's own `/_sandbox` API is exempt).
async fn api_faults(State(app): State<SharedApp>, request: Request, next: Next) -> Response {
    if request.uri().path().starts_with("/v1/") {
        let (delay_ms, fail) = {
            let faults = &app.faults.lock().expect("faults lock").faults;
            (faults.api_delay_ms, faults.api_errors)
        };
        if delay_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
        }
        if fail {
            return ApiError::internal("The sandbox is simulating a Stripe outage (api_errors).").into_response();
        }
    }
    next.run(request).await
}

async fn unknown_route(method: Method, uri: axum::http::Uri) -> ApiError {
    let mut e = ApiError::invalid(
        format!(
            "Unrecognized request URL ({method}: {}). The creditd Stripe sandbox implements only part of Stripe's API.",
            uri.path()
        ),
        None,
    );
    e.status = StatusCode::NOT_FOUND;
    e
}

async fn stripe_version(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    resp.headers_mut()
        .insert("stripe-version", HeaderValue::from_static(creditd_stripe::API_VERSION));
    resp
}

/// Any `sk_test_…` key is accepted, as a Bearer token.
async fn authenticate(req: Request, next: Next) -> Response {
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let key = auth.strip_prefix("Bearer ").map(str::trim).unwrap_or("");
    if key.is_empty() {
        return ApiError::unauthorized(
            "You did not provide an API key. You need to provide your API key in the Authorization header, \
             using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
        )
        .into_response();
    }
    if !key.starts_with("sk_test_") {
        let shown: String = key.chars().take(8).collect();
        return ApiError::unauthorized(format!(
            "Invalid API Key provided: {shown}****. The sandbox accepts only test secret keys (sk_test_…)."
        ))
        .into_response();
    }
    next.run(req).await
}

/// Stripe's idempotency: the first response to a key is replayed for the
/// same parameters; other parameters are a 400; a concurrent request with
/// the same key is a 409. 5xx responses are not remembered.
async fn idempotency(State(app): State<SharedApp>, req: Request, next: Next) -> Response {
    let key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (Some(key), true) = (key, req.method() == Method::POST) else {
        return next.run(req).await;
    };
    if key.len() > 255 {
        return ApiError::invalid("Idempotency-Key must be at most 255 characters long.", None).into_response();
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
        return ApiError::invalid("Request body too large.", None).into_response();
    };
    let fingerprint = format!("{} {}?{}", parts.method, parts.uri.path(), Params::fingerprint(&bytes));
    {
        let mut st = app.state.lock().await;
        st.prune_idempotency(ids::now_unix());
        if let Some(prev) = st.idempotency.get(&key) {
            if prev.fingerprint != fingerprint {
                return ApiError::idempotency(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "Keys for idempotent requests can only be used with the same parameters they were first \
                         used with. Try using a key other than '{key}' if you meant to execute a different request."
                    ),
                )
                .into_response();
            }
            let mut resp = (
                StatusCode::from_u16(prev.status).unwrap_or(StatusCode::OK),
                prev.body.clone(),
            )
                .into_response();
            resp.headers_mut()
                .insert("content-type", HeaderValue::from_static("application/json"));
            resp.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            return resp;
        }
        let mut in_flight = app.in_flight_keys.lock().expect("in-flight lock");
        if !in_flight.insert(key.clone()) {
            return ApiError::idempotency(
                StatusCode::CONFLICT,
                "There is currently another in-progress request using this Stripe API Idempotency Key. \
                 Please try again later.",
            )
            .into_response();
        }
    }
    let resp = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let (parts, body) = resp.into_parts();
    let body = to_bytes(body, usize::MAX).await.unwrap_or_default();
    if !parts.status.is_server_error() {
        let mut st = app.state.lock().await;
        st.idempotency.insert(
            key.clone(),
            IdempotentResponse {
                fingerprint,
                status: parts.status.as_u16(),
                body: String::from_utf8_lossy(&body).into_owned(),
                created: ids::now_unix(),
            },
        );
        if let Err(e) = app.commit(&st).await {
            tracing::error!(error = ?e.message, "saving idempotency record");
        }
    }
    app.in_flight_keys.lock().expect("in-flight lock").remove(&key);
    Response::from_parts(parts, Body::from(body))
}
