//! The sandbox's own admin API under `/_sandbox/` (not part of Stripe's),
//! authenticated like the rest with any `sk_test_…` key:
//!
//! - `GET /_sandbox/faults` → `{"faults": {…}, "stats": {…}}`
//! - `POST /_sandbox/faults` with a JSON [`Faults`] body (missing fields are
//!   off), e.g. `{"duplicates": 1, "shuffle_window": 10, "delay_ms": 50,
//!   "drop_rate": 0.3, "seed": 42}` → the same shape as `GET`.
//! - `GET /_sandbox/clock` → `{"now": unix seconds, "offset_s": …}`
//! - `POST /_sandbox/clock/advance` with `{"seconds": N}` (N ≥ 0) moves the
//!   sandbox clock forward and runs the renewals, retries and period ends
//!   it passes; answers like `GET /_sandbox/clock`.

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::app::SharedApp;
use crate::error::ApiError;
use crate::faults::Faults;
use crate::renewal;

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

async fn clock_body(app: &SharedApp) -> Value {
    let st = app.state.lock().await;
    json!({ "now": st.now(), "offset_s": st.clock_offset_s })
}

/// `GET /_sandbox/clock`: the sandbox clock.
pub async fn get_clock(State(app): State<SharedApp>) -> Json<Value> {
    Json(clock_body(&app).await)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    seconds: i64,
}

/// Moves the sandbox clock `seconds` forward and runs what falls due.
/// Returns the new time.
pub async fn advance(app: &SharedApp, seconds: i64) -> Result<i64, ApiError> {
    if !(0..=10 * 366 * 24 * 3600).contains(&seconds) {
        return Err(ApiError::invalid(
            "seconds must be between 0 and ten years; the clock only moves forward.",
            Some("seconds"),
        ));
    }
    let mut st = app.state.lock().await;
    st.clock_offset_s += seconds;
    renewal::run_due(&mut st, app);
    app.commit(&st).await?;
    Ok(st.now())
}

/// `POST /_sandbox/clock/advance` with `{"seconds": N}`.
pub async fn advance_clock(State(app): State<SharedApp>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let req: Advance =
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid(format!("Invalid clock JSON: {e}"), None))?;
    advance(&app, req.seconds).await?;
    Ok(Json(clock_body(&app).await))
}
