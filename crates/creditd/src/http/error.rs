//! One error envelope for the whole API: `{"error": {"code", "message", …}}` with stable
//! machine codes. 5xx answers hide their cause from the client and log it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use creditd_domain::{CommandError, Credits};
use creditd_store::StoreError;
use serde::Serialize;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The request field at fault, when there is one.
    pub param: Option<String>,
    /// Balances, for `insufficient_credits`.
    pub balances: Option<(Credits, Credits)>,
    /// Seconds, sent as `Retry-After`.
    pub retry_after: Option<u64>,
}

/// The error envelope.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine code, e.g. `insufficient_credits`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub balance: Option<Credits>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub available: Option<Credits>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            param: None,
            balances: None,
            retry_after: None,
        }
    }

    /// 400 naming the field that was wrong.
    pub fn invalid(param: &str, message: impl std::fmt::Display) -> ApiError {
        ApiError {
            param: Some(param.to_string()),
            ..ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("{param}: {message}"),
            )
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "an internal error occurred; it has been logged",
        )
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> ApiError {
        let message = e.to_string();
        match e {
            CommandError::CustomerNotFound(_) => ApiError::not_found("customer_not_found", message),
            CommandError::HoldNotFound(_) => ApiError::not_found("hold_not_found", message),
            CommandError::PaymentNotFound(_) => ApiError::not_found("payment_not_found", message),
            CommandError::InsufficientCredits { balance, available, .. } => ApiError {
                balances: Some((balance, available)),
                ..ApiError::new(StatusCode::PAYMENT_REQUIRED, "insufficient_credits", message)
            },
            CommandError::HoldNotOpen { .. } => ApiError::new(StatusCode::CONFLICT, "hold_not_open", message),
            CommandError::IdempotencyKeyReused => {
                ApiError::new(StatusCode::CONFLICT, "idempotency_key_reused", message)
            }
            CommandError::DuplicateGrantReference { .. } => {
                ApiError::new(StatusCode::CONFLICT, "duplicate_reference", message)
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Command(c) => c.into(),
            StoreError::Overloaded => ApiError {
                retry_after: Some(1),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    "too many writes are waiting; retry after a second",
                )
            },
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (balance, available) = self.balances.map_or((None, None), |(b, a)| (Some(b), Some(a)));
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                param: self.param,
                balance,
                available,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;
    use creditd_store::StoreError;

    use super::ApiError;

    #[test]
    fn a_full_write_queue_is_a_503_with_retry_after() {
        let response = ApiError::from(StoreError::Overloaded).into_response();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "1");
    }

    #[test]
    fn a_failed_batch_hides_its_cause() {
        let cause = StoreError::Corrupt("secret detail".into());
        let error = ApiError::from(StoreError::Batch(std::sync::Arc::new(cause)));
        assert_eq!((error.status.as_u16(), error.code), (500, "internal_error"));
        assert!(!error.message.contains("secret detail"));
    }
}
