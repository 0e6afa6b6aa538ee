//! Secret API keys for the app's backend: shown once, stored only as SHA-256 hashes.

use std::sync::atomic::Ordering;

use creditd_domain::ids::random_token;
use creditd_domain::IdKind;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::db::{on, Fields};
use crate::{Result, Store};

/// Secret keys start with this, so leaked keys are easy to recognise and scan for.
pub const SECRET_PREFIX: &str = "cd_sk_";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    /// The secret's last four characters, to tell keys apart.
    pub last4: String,
    pub created: i64,
    pub revoked: Option<i64>,
}

/// A key just created: the only time its secret exists outside the caller's hands.
#[derive(Clone, Debug)]
pub struct NewApiKey {
    pub key: ApiKey,
    pub secret: String,
}

/// The stored form of a secret. Secrets carry ~190 random bits, so a fast hash is enough.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn key_row(row: &impl Fields) -> Result<ApiKey> {
    Ok(ApiKey {
        id: row.field("id")?,
        name: row.field("name")?,
        last4: row.field("last4")?,
        created: row.field("created_at")?,
        revoked: row.field("revoked_at")?,
    })
}

impl Store {
    pub async fn create_api_key(&self, name: &str, now: i64) -> Result<NewApiKey> {
        let secret = format!("{SECRET_PREFIX}{}", random_token(32));
        let key = ApiKey {
            id: IdKind::ApiKey.new_id(),
            name: name.to_string(),
            last4: secret[secret.len() - 4..].to_string(),
            created: now,
            revoked: None,
        };
        on!(&self.writer, w => {
            sqlx::query("INSERT INTO api_keys (id, name, hash, last4, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(&key.id)
                .bind(&key.name)
                .bind(hash_secret(&secret))
                .bind(&key.last4)
                .bind(now)
                .execute(w)
                .await?;
        });
        Ok(NewApiKey { key, secret })
    }

    pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        on!(&self.pool, p => sqlx::query("SELECT id, name, last4, created_at, revoked_at FROM api_keys ORDER BY created_at, id")
            .fetch_all(p)
            .await?
            .iter()
            .map(key_row)
            .collect())
    }

    /// Revokes a key; false when no such active key exists. The database's revocation count
    /// moves with it (a trigger), and so does this handle's own ([`Store::revoked_here`]).
    pub async fn revoke_api_key(&self, id: &str, now: i64) -> Result<bool> {
        let revoked = on!(&self.writer, w => sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(w)
            .await?
            .rows_affected())
            == 1;
        if revoked {
            self.revoked_here.fetch_add(1, Ordering::SeqCst);
        }
        Ok(revoked)
    }

    /// How many keys were ever revoked or deleted in this database, by anyone: key caches
    /// poll it and forget their keys when it moves.
    pub async fn key_revocations(&self) -> Result<i64> {
        Ok(
            on!(&self.pool, p => sqlx::query("SELECT count FROM api_key_revocations WHERE id = 1")
            .fetch_one(p)
            .await?
            .try_get(0)?),
        )
    }

    /// How many keys were revoked through this handle (and its clones) since it connected.
    pub fn revoked_here(&self) -> u64 {
        self.revoked_here.load(Ordering::SeqCst)
    }

    /// The active key whose secret this is.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<ApiKey>> {
        on!(&self.pool, p => sqlx::query(
            "SELECT id, name, last4, created_at, revoked_at FROM api_keys WHERE hash = $1 AND revoked_at IS NULL",
        )
        .bind(hash_secret(secret))
        .fetch_optional(p)
        .await?
        .as_ref()
        .map(key_row)
        .transpose())
    }
}
