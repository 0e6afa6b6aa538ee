//! `POST /v1/stripe/webhook`: Stripe's signed events.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use creditd_stripe::event::Event;
use serde::Serialize;

use crate::app::AppState;
use crate::billing::webhook::{self, Accepted};
use crate::http::error::{ApiError, ErrorBody};
use crate::ops::observe;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Received {
    pub received: bool,
}

/// The `Stripe-Signature` header, a parameter of the webhook (not a credential: a signature
/// that does not verify is a bad request, as Stripe's own libraries answer it).
pub struct StripeSignature;

impl utoipa::IntoParams for StripeSignature {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        let parameter = serde_json::json!({
            "name": "Stripe-Signature",
            "in": "header",
            "required": true,
            "description": "Stripe's signature of the raw body (`t=…,v1=…`) with the webhook signing secret; \
                            400 `invalid_signature` when it does not verify.",
            "schema": {"type": "string", "minLength": 1, "example": "t=1700000000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd"}
        });
        vec![serde_json::from_value(parameter).expect("a valid parameter")]
    }
}

/// Receive a Stripe event. The `Stripe-Signature` header is checked on the raw body before
/// anything is parsed (400 `invalid_signature` and nothing recorded when it fails). A verified
/// event is recorded and acknowledged at once; it is handled in the background (by any replica,
/// retried with back-off; failures show on the events page and in metrics). An event of the
/// other mode than the configured key (live vs test) is recorded as `refused` and answered 400
/// `livemode_mismatch`. 503 when the event could not be recorded (Stripe retries).
#[utoipa::path(post, path = "/v1/stripe/webhook", tag = "purchases", security(), params(StripeSignature),
    request_body(content = Object, content_type = "application/json", description = "Stripe's event, exactly as signed"),
    responses((status = 200, body = Received),
              (status = 400, body = ErrorBody, description = "`invalid_signature` (missing, malformed, stale or not ours), `invalid_event` (signed, but not a Stripe event) or `livemode_mismatch`")))]
pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Received>, ApiError> {
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let secrets: Vec<&str> = state.stripe.webhook_secrets.iter().map(String::as_str).collect();
    // Signatures are checked against the wall clock, whatever clock the ledger runs on.
    let now = creditd_store::unix_now();
    creditd_stripe::webhook::verify(
        &body,
        header,
        &secrets,
        now,
        creditd_stripe::webhook::DEFAULT_TOLERANCE_S,
    )
    .map_err(|e| {
        observe::stripe_event("unknown", "invalid_signature", None);
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_signature",
            format!("Stripe-Signature: {e}"),
        )
    })?;
    let event = Event::parse(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_event",
            format!("not a Stripe event: {e}"),
        )
    })?;
    let payload = String::from_utf8_lossy(&body);
    match webhook::accept(&state, &event, &payload).await? {
        Accepted::Queued => Ok(Json(Received { received: true })),
        Accepted::Refused(why) => Err(ApiError::new(StatusCode::BAD_REQUEST, "livemode_mismatch", why)),
    }
}
