//! Schema migrations, one list per backend, run at start and by `creditd migrate`.
//! On PostgreSQL an advisory lock lets many replicas start at once.

use sha2::{Digest, Sha256};
use sqlx::Connection;

use crate::db::{on, Conn, Db};
use crate::{unix_now, Dialect, Result, Store, StoreError};

struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "ledger",
        sql: include_str!("../migrations/sqlite/0001_ledger.sql"),
    },
    Migration {
        version: 2,
        name: "payments",
        sql: include_str!("../migrations/sqlite/0002_payments.sql"),
    },
    Migration {
        version: 3,
        name: "refunds",
        sql: include_str!("../migrations/sqlite/0003_refunds.sql"),
    },
    Migration {
        version: 4,
        name: "admin",
        sql: include_str!("../migrations/sqlite/0004_admin.sql"),
    },
    Migration {
        version: 5,
        name: "subscriptions",
        sql: include_str!("../migrations/sqlite/0005_subscriptions.sql"),
    },
    Migration {
        version: 6,
        name: "account_versions",
        sql: include_str!("../migrations/sqlite/0006_account_versions.sql"),
    },
    Migration {
        version: 7,
        name: "stripe_event_queue",
        sql: include_str!("../migrations/sqlite/0007_stripe_event_queue.sql"),
    },
    Migration {
        version: 8,
        name: "outbound",
        sql: include_str!("../migrations/sqlite/0008_outbound.sql"),
    },
    Migration {
        version: 9,
        name: "entitlements",
        sql: include_str!("../migrations/sqlite/0009_entitlements.sql"),
    },
    Migration {
        version: 10,
        name: "key_revocations",
        sql: include_str!("../migrations/sqlite/0010_key_revocations.sql"),
    },
    Migration {
        version: 11,
        name: "delivery_leases",
        sql: include_str!("../migrations/sqlite/0011_delivery_leases.sql"),
    },
];

const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "ledger",
        sql: include_str!("../migrations/postgres/0001_ledger.sql"),
    },
    Migration {
        version: 2,
        name: "payments",
        sql: include_str!("../migrations/postgres/0002_payments.sql"),
    },
    Migration {
        version: 3,
        name: "refunds",
        sql: include_str!("../migrations/postgres/0003_refunds.sql"),
    },
    Migration {
        version: 4,
        name: "admin",
        sql: include_str!("../migrations/postgres/0004_admin.sql"),
    },
    Migration {
        version: 5,
        name: "subscriptions",
        sql: include_str!("../migrations/postgres/0005_subscriptions.sql"),
    },
    Migration {
        version: 6,
        name: "account_versions",
        sql: include_str!("../migrations/postgres/0006_account_versions.sql"),
    },
    Migration {
        version: 7,
        name: "stripe_event_queue",
        sql: include_str!("../migrations/postgres/0007_stripe_event_queue.sql"),
    },
    Migration {
        version: 8,
        name: "outbound",
        sql: include_str!("../migrations/postgres/0008_outbound.sql"),
    },
    Migration {
        version: 9,
        name: "entitlements",
        sql: include_str!("../migrations/postgres/0009_entitlements.sql"),
    },
    Migration {
        version: 10,
        name: "key_revocations",
        sql: include_str!("../migrations/postgres/0010_key_revocations.sql"),
    },
    Migration {
        version: 11,
        name: "native_types",
        sql: include_str!("../migrations/postgres/0011_native_types.sql"),
    },
    Migration {
        version: 12,
        name: "delivery_leases",
        sql: include_str!("../migrations/postgres/0012_delivery_leases.sql"),
    },
];

/// A SQLite migration that rebuilds a table others reference runs with foreign keys off
/// (SQLite ignores the pragma inside a transaction, so it is set around it).
const FOREIGN_KEYS_OFF: &str = "-- creditd: foreign-keys-off";

/// Arbitrary constant: the advisory lock key that serializes migrations across replicas.
const MIGRATION_LOCK_KEY: i64 = 0x0063_7265_6469_7464;

fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

/// A fingerprint of the schema this build expects (names test template databases).
pub fn schema_fingerprint(dialect: Dialect) -> String {
    let list = match dialect {
        Dialect::Sqlite => SQLITE,
        Dialect::Postgres => POSTGRES,
    };
    let all: String = list.iter().map(|m| m.sql).collect();
    checksum(&all)[..16].to_string()
}

impl Store {
    /// Applies every migration not yet applied; refuses to run over an edited one.
    /// Returns how many were applied.
    pub async fn migrate(&self) -> Result<usize> {
        let list = match self.dialect() {
            Dialect::Sqlite => SQLITE,
            Dialect::Postgres => POSTGRES,
        };
        let mut pooled = self.writer.acquire().await?;
        let mut conn = pooled.conn();
        if let Db::Pg(c) = &mut conn {
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(MIGRATION_LOCK_KEY)
                .execute(&mut **c)
                .await?;
        }
        let result = apply(&mut conn, list).await;
        if let Db::Pg(c) = &mut conn {
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(MIGRATION_LOCK_KEY)
                .execute(&mut **c)
                .await?;
        }
        result
    }
}

/// The migrations of `list` not yet applied, each in its own transaction.
async fn apply(conn: &mut Conn<'_>, list: &[Migration]) -> Result<usize> {
    on!(conn, c => {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS creditd_migrations (version BIGINT PRIMARY KEY, \
             name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .execute(&mut **c)
        .await?;
    });
    let mut applied = 0;
    for migration in list {
        let sum = checksum(migration.sql);
        let stored: Option<String> = on!(conn, c => sqlx::query_scalar("SELECT checksum FROM creditd_migrations WHERE version = $1")
            .bind(migration.version)
            .fetch_optional(&mut **c)
            .await?);
        if let Some(stored) = stored {
            if stored != sum {
                return Err(StoreError::Corrupt(format!(
                    "migration {} ({}) was changed after it was applied",
                    migration.version, migration.name
                )));
            }
            continue;
        }
        let keys_off = conn.dialect() == Dialect::Sqlite && migration.sql.contains(FOREIGN_KEYS_OFF);
        if keys_off {
            on!(conn, c => {
                sqlx::query("PRAGMA foreign_keys = OFF").execute(&mut **c).await?;
            });
        }
        let outcome = apply_one(conn, migration, &sum, keys_off).await;
        if keys_off {
            on!(conn, c => {
                sqlx::query("PRAGMA foreign_keys = ON").execute(&mut **c).await?;
            });
        }
        outcome?;
        tracing::info!(version = migration.version, name = migration.name, "applied migration");
        applied += 1;
    }
    Ok(applied)
}

/// One migration and its record, committed together. With SQLite's foreign keys off
/// (`keys_off`) the rows it leaves are checked against them before it commits.
async fn apply_one(conn: &mut Conn<'_>, migration: &Migration, sum: &str, keys_off: bool) -> Result<()> {
    on!(conn, c => {
        let mut tx = c.begin().await?;
        // Several statements in one string: the simple query protocol, no parameters.
        sqlx::raw_sql(migration.sql).execute(&mut *tx).await?;
        if keys_off {
            let broken = sqlx::query("PRAGMA foreign_key_check").fetch_all(&mut *tx).await?;
            if !broken.is_empty() {
                tx.rollback().await?;
                return Err(StoreError::Corrupt(format!(
                    "migration {} would leave {} rows with broken foreign keys",
                    migration.version,
                    broken.len()
                )));
            }
        }
        sqlx::query("INSERT INTO creditd_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)")
            .bind(migration.version)
            .bind(migration.name)
            .bind(sum)
            .bind(unix_now())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    });
    Ok(())
}
