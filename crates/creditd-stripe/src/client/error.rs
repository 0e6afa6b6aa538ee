//! One error type for every Stripe API call, mapped from async-stripe's so
//! callers can tell "the customer's card said no" and "your request is wrong"
//! (do not retry) from "Stripe or the network failed" (retry later).

/// An error from a Stripe API call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripeError {
    /// The card was declined (HTTP 402, `card_error`). Show `message` to the payer.
    #[error("card declined: {message}")]
    Card {
        code: Option<String>,
        decline_code: Option<String>,
        message: String,
        /// The PaymentIntent the decline belongs to, when Stripe reports it.
        payment_intent: Option<String>,
    },
    /// A 4xx other than a card decline: bad parameters, unknown id, bad key.
    #[error("invalid request to Stripe (HTTP {status}): {message}")]
    InvalidRequest {
        status: u16,
        code: Option<String>,
        param: Option<String>,
        message: String,
    },
    /// The idempotency key was reused with different parameters (or is in flight).
    #[error("idempotency error (HTTP {status}): {message}")]
    Idempotency { status: u16, message: String },
    /// Stripe answered 5xx (or `api_error`): retry later.
    #[error("Stripe API error (HTTP {status}): {message}")]
    Api { status: u16, message: String },
    /// The request never got a usable answer (connect, TLS, timeout).
    #[error("could not reach Stripe: {0}")]
    Transport(String),
    /// Stripe answered 2xx with a body we could not read.
    #[error("unexpected response from Stripe: {0}")]
    Decode(String),
    /// Bad client configuration or arguments (invalid URL, idempotency key).
    #[error("Stripe client configuration error: {0}")]
    Config(String),
}

impl StripeError {
    /// Whether retrying the same request later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StripeError::Api { .. } | StripeError::Transport(_))
    }
}

impl From<stripe::StripeError> for StripeError {
    fn from(err: stripe::StripeError) -> Self {
        use stripe::ApiErrorsType;
        match err {
            stripe::StripeError::Stripe(api, status) => {
                let message = api
                    .message
                    .clone()
                    .unwrap_or_else(|| format!("{} (no message)", api.type_));
                let code = api.code.as_ref().map(|c| c.as_str().to_owned());
                match &api.type_ {
                    ApiErrorsType::CardError => StripeError::Card {
                        code,
                        decline_code: api.decline_code.clone(),
                        message,
                        payment_intent: api.payment_intent.as_ref().map(|pi| pi.id.to_string()),
                    },
                    ApiErrorsType::IdempotencyError => StripeError::Idempotency { status, message },
                    _ if status >= 500 => StripeError::Api { status, message },
                    ApiErrorsType::ApiError => StripeError::Api { status, message },
                    _ => StripeError::InvalidRequest {
                        status,
                        code,
                        param: api.param.clone(),
                        message,
                    },
                }
            }
            stripe::StripeError::JSONDeserialize(msg) => StripeError::Decode(msg),
            stripe::StripeError::ClientError(msg) => StripeError::Transport(msg),
            stripe::StripeError::Timeout => StripeError::Transport("timeout".into()),
            stripe::StripeError::ConfigError(msg) => StripeError::Config(msg),
        }
    }
}
