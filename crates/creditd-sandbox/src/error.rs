//! Stripe's error envelope: `{"error": {"type", "code", "message", "param", …}}`
//! with Stripe's status codes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

/// An error answered in Stripe's shape.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// `invalid_request_error`, `card_error`, `idempotency_error`, `api_error`.
    pub type_: &'static str,
    pub code: Option<String>,
    pub message: String,
    pub param: Option<String>,
    /// Extra fields (`decline_code`, `charge`, `payment_intent`…).
    pub extra: Map<String, Value>,
}

impl ApiError {
    fn new(status: StatusCode, type_: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            type_,
            code: None,
            message: message.into(),
            param: None,
            extra: Map::new(),
        }
    }

    pub fn invalid(message: impl Into<String>, param: Option<&str>) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message);
        e.param = param.map(str::to_owned);
        e
    }

    pub fn with_code(mut self, code: &str) -> Self {
        self.code = Some(code.to_owned());
        self
    }

    pub fn missing_param(param: &str) -> Self {
        Self::invalid(format!("Missing required param: {param}."), Some(param)).with_code("parameter_missing")
    }

    /// `No such customer: 'cus_x'` (404 `resource_missing`).
    pub fn no_such(kind: &str, id: &str, param: &str) -> Self {
        let mut e = Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("No such {kind}: '{id}'"),
        );
        e.code = Some("resource_missing".into());
        e.param = Some(param.to_owned());
        e
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_request_error", message)
    }

    pub fn idempotency(status: StatusCode, message: impl Into<String>) -> Self {
        Self::new(status, "idempotency_error", message)
    }

    /// A 402 `card_error`, as Stripe answers a declined confirmation.
    pub fn card(code: &str, decline_code: Option<&str>, message: &str) -> Self {
        let mut e = Self::new(StatusCode::PAYMENT_REQUIRED, "card_error", message);
        e.code = Some(code.to_owned());
        if let Some(dc) = decline_code {
            e.extra.insert("decline_code".into(), json!(dc));
        }
        e.extra.insert(
            "doc_url".into(),
            json!(format!(
                "https://stripe.com/docs/error-codes/{}",
                code.replace('_', "-")
            )),
        );
        e
    }

    /// A 400 for an object in the wrong state (`payment_intent_unexpected_state`…).
    pub fn unexpected_state(code: &str, message: impl Into<String>) -> Self {
        Self::invalid(message, None).with_code(code)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "api_error", message)
    }

    pub fn body(&self) -> Value {
        let mut err = Map::new();
        err.insert("type".into(), json!(self.type_));
        err.insert("message".into(), json!(self.message));
        if let Some(code) = &self.code {
            err.insert("code".into(), json!(code));
        }
        if let Some(param) = &self.param {
            err.insert("param".into(), json!(param));
        }
        for (k, v) in &self.extra {
            err.insert(k.clone(), v.clone());
        }
        json!({ "error": err })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        tracing::error!(error = %err, "sandbox internal error");
        ApiError::internal("An unknown error occurred in the Stripe sandbox.")
    }
}
