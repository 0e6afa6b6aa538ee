//! The operator's accounts: admin users (argon2 hashes made by the caller), server-side
//! sessions stored by the SHA-256 of their token, and failed logins for rate limiting.
//! Everything lives in the database, so sessions and limits hold across replicas.

use creditd_domain::ids::random_token;
use creditd_domain::IdKind;
use sqlx::Row;

use crate::db::{on, Fields};
use crate::keys::hash_secret;
use crate::{Result, Store};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminUser {
    pub id: String,
    pub email: String,
    pub password_hash: String,
    pub created: i64,
}

/// A live session as a request sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminSession {
    pub admin_id: String,
    pub email: String,
    pub csrf_token: String,
    pub expires_at: i64,
}

/// A session just opened: the token goes into the cookie and is never stored.
#[derive(Clone, Debug)]
pub struct NewAdminSession {
    pub token: String,
    pub session: AdminSession,
}

fn user_row(row: &impl Fields) -> Result<AdminUser> {
    Ok(AdminUser {
        id: row.field("id")?,
        email: row.field("email")?,
        password_hash: row.field("password_hash")?,
        created: row.field("created_at")?,
    })
}

impl Store {
    /// Creates an admin, or replaces the password of the admin with this email.
    /// Returns the admin and whether it was created.
    pub async fn upsert_admin_user(&self, email: &str, password_hash: &str, now: i64) -> Result<(AdminUser, bool)> {
        let inserted = on!(&self.writer, w => sqlx::query(
            "INSERT INTO admin_users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (email) DO NOTHING",
        )
        .bind(IdKind::AdminUser.new_id())
        .bind(email)
        .bind(password_hash)
        .bind(now)
        .execute(w)
        .await?
        .rows_affected())
            == 1;
        if !inserted {
            on!(&self.writer, w => {
                sqlx::query("UPDATE admin_users SET password_hash = $2 WHERE email = $1")
                    .bind(email)
                    .bind(password_hash)
                    .execute(w)
                    .await?;
                // A new password ends every session opened with the old one.
                sqlx::query("DELETE FROM admin_sessions WHERE admin_id = (SELECT id FROM admin_users WHERE email = $1)")
                    .bind(email)
                    .execute(w)
                    .await?;
            });
        }
        let user = self
            .admin_user(email)
            .await?
            .ok_or_else(|| crate::StoreError::Corrupt(format!("admin {email} vanished")))?;
        Ok((user, inserted))
    }

    pub async fn admin_user(&self, email: &str) -> Result<Option<AdminUser>> {
        on!(&self.pool, p => {
            let row = sqlx::query("SELECT id, email, password_hash, created_at FROM admin_users WHERE email = $1")
                .bind(email)
                .fetch_optional(p)
                .await?;
            row.as_ref().map(user_row).transpose()
        })
    }

    pub async fn open_admin_session(&self, admin: &AdminUser, ttl_seconds: i64, now: i64) -> Result<NewAdminSession> {
        let token = random_token(43);
        let session = AdminSession {
            admin_id: admin.id.clone(),
            email: admin.email.clone(),
            csrf_token: random_token(43),
            expires_at: now.saturating_add(ttl_seconds),
        };
        // Expired sessions of anyone are removed here rather than by a background job.
        on!(&self.writer, w => {
            sqlx::query("DELETE FROM admin_sessions WHERE expires_at <= $1")
                .bind(now)
                .execute(w)
                .await?;
            sqlx::query(
                "INSERT INTO admin_sessions (token_hash, admin_id, csrf_token, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(hash_secret(&token))
            .bind(&session.admin_id)
            .bind(&session.csrf_token)
            .bind(now)
            .bind(session.expires_at)
            .execute(w)
            .await?;
        });
        Ok(NewAdminSession { token, session })
    }

    /// The live session whose token this is.
    pub async fn admin_session(&self, token: &str, now: i64) -> Result<Option<AdminSession>> {
        on!(&self.pool, p => {
            let row = sqlx::query(
                "SELECT s.admin_id, u.email, s.csrf_token, s.expires_at FROM admin_sessions s \
                 JOIN admin_users u ON u.id = s.admin_id WHERE s.token_hash = $1 AND s.expires_at > $2",
            )
            .bind(hash_secret(token))
            .bind(now)
            .fetch_optional(p)
            .await?;
            row.map(|row| {
                Ok(AdminSession {
                    admin_id: row.try_get(0)?,
                    email: row.try_get(1)?,
                    csrf_token: row.try_get(2)?,
                    expires_at: row.try_get(3)?,
                })
            })
            .transpose()
        })
    }

    pub async fn close_admin_session(&self, token: &str) -> Result<()> {
        on!(&self.writer, w => {
            sqlx::query("DELETE FROM admin_sessions WHERE token_hash = $1")
                .bind(hash_secret(token))
                .execute(w)
                .await?;
        });
        Ok(())
    }

    /// Failed logins of `subject` (`email:…`, `ip:…`) since `since`.
    pub async fn login_failures(&self, subject: &str, since: i64) -> Result<i64> {
        let count = on!(&self.pool, p => sqlx::query(
            "SELECT COUNT(*) FROM admin_login_failures WHERE subject = $1 AND at > $2",
        )
        .bind(subject)
        .bind(since)
        .fetch_one(p)
        .await?
        .try_get::<i64, _>(0)?);
        Ok(count)
    }

    /// Records one failed login against each subject; forgets failures older than `forget_before`.
    pub async fn record_login_failure(&self, subjects: &[String], now: i64, forget_before: i64) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        on!(&mut tx.conn(), c => {
            sqlx::query("DELETE FROM admin_login_failures WHERE at <= $1")
                .bind(forget_before)
                .execute(&mut **c)
                .await?;
            for subject in subjects {
                sqlx::query("INSERT INTO admin_login_failures (subject, at) VALUES ($1, $2)")
                    .bind(subject)
                    .bind(now)
                    .execute(&mut **c)
                    .await?;
            }
        });
        tx.commit().await?;
        Ok(())
    }

    /// A successful login clears the account's failures (not the address's).
    pub async fn clear_login_failures(&self, subject: &str) -> Result<()> {
        on!(&self.writer, w => {
            sqlx::query("DELETE FROM admin_login_failures WHERE subject = $1")
                .bind(subject)
                .execute(w)
                .await?;
        });
        Ok(())
    }
}
