//! Extractors: JSON bodies with errors that name the field, the app's secret key, and
//! Stripe-style idempotency keys.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use creditd_domain::Idempotency;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::http::error::ApiError;

/// A JSON body, plus a fingerprint of it for idempotency checks. Syntax errors, wrong types
/// and unknown fields are 400s naming the field; oversized bodies are 413.
pub struct ApiJson<T> {
    pub value: T,
    /// SHA-256 of the canonical JSON (sorted keys): retries that reorder keys still match.
    pub fingerprint: String,
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let method_and_path = format!("{} {}", req.method(), req.uri().path());
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the request body is too large",
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    format!("could not read the body: {e}"),
                )
            }
        })?;
        let mut json: serde_json::Value = if bytes.is_empty() {
            serde_json::json!({})
        } else {
            serde_json::from_slice(&bytes).map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_json",
                    format!("the body is not valid JSON: {e}"),
                )
            })?
        };
        if !json.is_object() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                "the body must be a JSON object",
            ));
        }
        integral_numbers(&mut json);
        let fingerprint = fingerprint(&method_and_path, &json);
        let value = deserialize(json, "")?;
        Ok(ApiJson { value, fingerprint })
    }
}

/// What idempotency keys are checked against: SHA-256 of the method and path and the canonical
/// JSON (sorted keys), so retries that reorder keys still match.
pub fn fingerprint(method_and_path: &str, json: &serde_json::Value) -> String {
    let mut canonical = method_and_path.to_string();
    canonical.push('\n');
    write_canonical(json, &mut canonical);
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// JSON (a `Value` or `&Value`) as a `T`, or a 400 naming the field at fault: `prefix.field`
/// (`prefix` names where the JSON sits in the body; empty at the top).
pub fn deserialize<'de, D, T>(json: D, prefix: &str) -> Result<T, ApiError>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde_path_to_error::deserialize(json).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let name = |field: &str| match (prefix, field) {
            ("", ".") => "body".to_string(),
            ("", field) => field.to_string(),
            (prefix, ".") => prefix.to_string(),
            (prefix, field) if field.starts_with('[') => format!("{prefix}{field}"),
            (prefix, field) => format!("{prefix}.{field}"),
        };
        // serde reports a missing field at the parent: name the field itself.
        match inner.strip_prefix("missing field `").and_then(|r| r.split('`').next()) {
            Some(field) => ApiError::invalid(&name(field), "is required"),
            None => ApiError::invalid(&name(&path), inner),
        }
    })
}

/// JSON does not tell `5` from `5.0`: a top-level field's integral number written with a
/// fraction or an exponent becomes an integer, so integer fields take it (`1.5` stays a float
/// and is refused); so do the values of `units` and `prices` (maps of quantities and credits).
/// Other nested values (metadata) are kept as sent.
pub fn integral_numbers(value: &mut serde_json::Value) {
    let Some(fields) = value.as_object_mut() else {
        return;
    };
    for (name, field) in fields.iter_mut() {
        if let Some(map) = field.as_object_mut().filter(|_| name == "units" || name == "prices") {
            map.values_mut().for_each(integral);
        } else {
            integral(field);
        }
    }
}

fn integral(field: &mut serde_json::Value) {
    let Some(f) = field.as_f64().filter(|_| !(field.is_i64() || field.is_u64())) else {
        return;
    };
    // 2^63 as f64: every integral float below it converts exactly.
    if f.fract() == 0.0 && f.abs() < 9_223_372_036_854_775_808.0 {
        *field = serde_json::Value::from(f as i64);
    }
}

/// JSON with object keys sorted at every level, whatever order they arrived in.
fn write_canonical(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The app's backend, authenticated by a secret key (`Authorization: Bearer cd_sk_…`).
#[derive(Clone, Debug)]
pub struct SecretKey {
    pub key_id: String,
}

pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for SecretKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)
            .ok_or_else(|| ApiError::unauthorized("send your secret key as `Authorization: Bearer cd_sk_…`"))?;
        let hash = creditd_store::hash_secret(token);
        let miss = match state.keys.get(&hash, state.store.revoked_here()) {
            Ok(key_id) => return Ok(SecretKey { key_id }),
            Err(miss) => miss,
        };
        match state.store.authenticate(token).await? {
            Some(key) => {
                state.keys.put(miss, &hash, &key.id);
                Ok(SecretKey { key_id: key.id })
            }
            None => Err(ApiError::unauthorized("the secret key is unknown or revoked")),
        }
    }
}

/// The `Idempotency-Key` header, when sent.
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(IdempotencyKey(None));
        };
        let key = value
            .to_str()
            .map_err(|_| ApiError::invalid("Idempotency-Key", "must be visible ASCII"))?;
        creditd_domain::validate::idempotency_key(key).map_err(|m| ApiError::invalid("Idempotency-Key", m))?;
        Ok(IdempotencyKey(Some(key.to_string())))
    }
}

impl utoipa::IntoParams for IdempotencyKey {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        let parameter = serde_json::json!({
            "name": "Idempotency-Key",
            "in": "header",
            "required": false,
            "description": "Makes a retry safe: the first answer for a key is replayed to every retry with the same body \
                            (1–255 visible ASCII characters).",
            "schema": {"type": "string", "pattern": "^[!-~]{1,255}$"}
        });
        vec![serde_json::from_value(parameter).expect("a valid parameter")]
    }
}

impl IdempotencyKey {
    /// Keys of the app's secret keys share one space, as a Stripe account's do: a retry
    /// made with a rotated key still finds the first result.
    pub fn for_app<T>(&self, body: &ApiJson<T>) -> Option<Idempotency> {
        self.0.as_ref().map(|key| Idempotency {
            scope: "app".into(),
            key: key.clone(),
            fingerprint: body.fingerprint.clone(),
        })
    }
}

/// The app's end user, authenticated by a customer token (`Authorization: Bearer <jwt>`):
/// everything it can reach is scoped to this one customer.
#[derive(Clone, Debug)]
pub struct CustomerToken {
    pub customer: String,
    /// The token's `exp`, unix seconds.
    pub expires_at: i64,
}

impl CustomerToken {
    /// Verifies a token as configured; every failure is a 401 `invalid_token` saying why.
    pub fn verify(state: &AppState, token: &str) -> Result<CustomerToken, ApiError> {
        let invalid = |m: String| ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", m);
        let Some(tokens) = &state.settings.customer_tokens else {
            return Err(invalid(
                "customer tokens are not enabled: configure jwt_hs256_secret or jwt_public_key_file".into(),
            ));
        };
        if token.starts_with("cd_sk_") {
            return Err(invalid(
                "this endpoint takes a customer token (a JWT the app signs), not a secret key".into(),
            ));
        }
        let claims = tokens.verify(token, state.clock.now()).map_err(invalid)?;
        Ok(CustomerToken {
            customer: claims.customer,
            expires_at: claims.expires_at,
        })
    }
}

impl FromRequestParts<AppState> for CustomerToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)
            .ok_or_else(|| ApiError::unauthorized("send the customer token as `Authorization: Bearer <jwt>`"))?;
        CustomerToken::verify(state, token)
    }
}
