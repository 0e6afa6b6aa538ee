//! Logs go to stderr: human-readable by default, one JSON object per line with
//! `CREDITD_LOG_FORMAT=json` (each line inside a request carries its `request_id`).
//! `CREDITD_LOG` filters them (default `info,sqlx=warn`).

use tracing_subscriber::EnvFilter;

/// Installs the process's log subscriber; an unknown format is refused by name.
pub fn init() -> Result<(), String> {
    let filter = EnvFilter::try_from_env("CREDITD_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match std::env::var("CREDITD_LOG_FORMAT").as_deref() {
        Err(_) | Ok("text") | Ok("") => builder.init(),
        Ok("json") => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        Ok(other) => return Err(format!("CREDITD_LOG_FORMAT: {other:?} must be text or json")),
    }
    Ok(())
}
