//! Idempotency for requests whose work is not a ledger command (they call Stripe first):
//! the key is claimed, the work done, and the response stored for every retry. A retry
//! arriving while the first is still running is told so instead of doing the work twice.

use sqlx::Row;

use crate::db::on;
use crate::{Result, Store};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// First use: do the work, then [`Store::complete_claim`] or [`Store::release_claim`].
    New,
    /// Done before: replay this response.
    Done(String),
    /// Another request with this key is running now.
    InProgress,
    /// The key was used with a different request.
    Mismatch,
}

impl Store {
    pub async fn claim_key(&self, scope: &str, key: &str, fingerprint: &str, now: i64) -> Result<Claim> {
        let inserted = on!(&self.writer, p => sqlx::query(
            "INSERT INTO idempotency_keys (scope, key, fingerprint, outcome, created_at) \
             VALUES ($1, $2, $3, NULL, $4) ON CONFLICT (scope, key) DO NOTHING",
        )
        .bind(scope)
        .bind(key)
        .bind(fingerprint)
        .bind(now)
        .execute(p)
        .await?
        .rows_affected());
        if inserted == 1 {
            return Ok(Claim::New);
        }
        let (stored, outcome): (String, Option<String>) = on!(&self.pool, p => {
            let row = sqlx::query("SELECT fingerprint, outcome FROM idempotency_keys WHERE scope = $1 AND key = $2")
                .bind(scope)
                .bind(key)
                .fetch_one(p)
                .await?;
            (row.try_get(0)?, row.try_get(1)?)
        });
        Ok(match (stored == fingerprint, outcome) {
            (false, _) => Claim::Mismatch,
            (true, Some(response)) => Claim::Done(response),
            (true, None) => Claim::InProgress,
        })
    }

    pub async fn complete_claim(&self, scope: &str, key: &str, response: &str) -> Result<()> {
        on!(&self.writer, p => sqlx::query("UPDATE idempotency_keys SET outcome = $3 WHERE scope = $1 AND key = $2")
            .bind(scope)
            .bind(key)
            .bind(response)
            .execute(p)
            .await?
            .rows_affected());
        Ok(())
    }

    /// The work failed: forget the key so a retry can do it.
    pub async fn release_claim(&self, scope: &str, key: &str) -> Result<()> {
        on!(&self.writer, p => sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND outcome IS NULL")
            .bind(scope)
            .bind(key)
            .execute(p)
            .await?
            .rows_affected());
        Ok(())
    }
}
