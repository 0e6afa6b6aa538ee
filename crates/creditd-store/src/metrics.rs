//! The writer's Prometheus families, recorded through the `metrics` facade (a no-op until
//! the binary installs a recorder). Names live here, once.

use std::time::Duration;

/// A batch was applied (committed or failed as a whole).
pub(crate) fn batch_applied(size: usize, took: Duration) {
    metrics::histogram!("creditd_write_batch_size").record(size as f64);
    metrics::histogram!("creditd_write_batch_duration_seconds").record(took.as_secs_f64());
}

/// A batch is tried again: `transient` (a serialization failure, a key race, a broken
/// connection) or `restart` (it follows the batch before it, which is retrying).
pub(crate) fn batch_retried(reason: &'static str) {
    metrics::counter!("creditd_write_batch_retries_total", "reason" => reason).increment(1);
}
