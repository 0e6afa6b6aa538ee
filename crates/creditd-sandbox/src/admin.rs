//! The sandbox's own admin API under `/_sandbox/` (not part of Stripe's),
//! authenticated like the rest with any `sk_test_…` key:
//!
//! - `GET /_sandbox/faults` → `{"faults": {…}, "stats": {…}}`
//! - `POST /_sandbox/faults` with a JSON [`Faults`] body (missing fields are
//!   off), e.g. `{"duplicates": 1, "shuffle_window": 10, "delay_ms": 50,
//!   "drop_rate": 0.3, "seed": 42}` → the same shape as `GET`.

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::app::SharedApp;
use crate::error::ApiError;
use crate::faults::Faults;

fn faults_body(app: &SharedApp) -> Value {
    let fs = app.faults.lock().expect("faults lock");
    json!({ "faults": fs.faults, "stats": fs.stats })
}

/// `GET /_sandbox/faults`: the delivery faults in force and the counters.
pub async fn get_faults(State(app): State<SharedApp>) -> Json<Value> {
    Json(faults_body(&app))
}

/// `POST /_sandbox/faults`: replaces the delivery faults (JSON body).
pub async fn set_faults(State(app): State<SharedApp>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let faults: Faults = if body.is_empty() {
        Faults::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid(format!("Invalid faults JSON: {e}"), None))?
    };
    faults.validate()?;
    app.faults.lock().expect("faults lock").set(faults);
    app.delivery_wakeup.notify_one();
    Ok(Json(faults_body(&app)))
}
