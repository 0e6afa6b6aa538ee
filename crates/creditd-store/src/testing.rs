//! Fresh databases for tests: a temporary SQLite file, or a PostgreSQL database cloned from a
//! migrated template (cloning is much faster than migrating each time).
//!
//! PostgreSQL is found at `CREDITD_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). When it is unreachable the PostgreSQL tests
//! skip with a printed reason — except under CI (`CI` set), where they fail.

use std::path::PathBuf;

use creditd_domain::ids::random_token;
use sqlx::{Connection, Executor, PgConnection};

use crate::{migrate::schema_fingerprint, Dialect, Store};

pub const DEFAULT_TEST_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database that disappears when dropped.
pub struct TestDb {
    pub url: String,
    pub store: Store,
    cleanup: Cleanup,
}

enum Cleanup {
    File(PathBuf),
    Database { admin_url: String, name: String },
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = std::env::temp_dir().join(format!("creditd-test-{}", random_token(16)));
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        let url = format!("sqlite://{}/creditd.db", dir.display());
        let store = Store::open(&url).await.expect("open a SQLite test database");
        TestDb {
            url,
            store,
            cleanup: Cleanup::File(dir),
        }
    }

    /// `None` (with the reason printed) when PostgreSQL is unreachable outside CI.
    pub async fn postgres() -> Option<TestDb> {
        let admin_url = std::env::var("CREDITD_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_TEST_POSTGRES_URL.into());
        let mut admin = match PgConnection::connect(&admin_url).await {
            Ok(conn) => conn,
            Err(e) if std::env::var_os("CI").is_some() => {
                panic!("PostgreSQL at {admin_url} is unreachable under CI: {e}")
            }
            Err(e) => {
                eprintln!("skipping PostgreSQL test: {admin_url} unreachable ({e}); set CREDITD_TEST_POSTGRES_URL");
                return None;
            }
        };
        let template = format!("creditd_tmpl_{}", schema_fingerprint(Dialect::Postgres));
        ensure_template(&mut admin, &admin_url, &template).await;
        let name = format!("creditd_test_{}", random_token(16).to_lowercase());
        admin
            .execute(format!("CREATE DATABASE {name} TEMPLATE {template}").as_str())
            .await
            .expect("clone the template database");
        admin.close().await.ok();
        let url = with_database(&admin_url, &name);
        let store = Store::open(&url).await.expect("open the PostgreSQL test database");
        Some(TestDb {
            url,
            store,
            cleanup: Cleanup::Database { admin_url, name },
        })
    }
}

/// The migrated template, created once per schema (an advisory lock keeps concurrent test
/// processes from racing).
async fn ensure_template(admin: &mut PgConnection, admin_url: &str, template: &str) {
    const TEMPLATE_LOCK: i64 = 0x0074_656d_706c;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(TEMPLATE_LOCK)
        .execute(&mut *admin)
        .await
        .expect("lock");
    let exists = sqlx::query("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(template)
        .fetch_optional(&mut *admin)
        .await
        .expect("look up the template")
        .is_some();
    if !exists {
        let building = format!("{template}_building");
        admin
            .execute(format!("DROP DATABASE IF EXISTS {building}").as_str())
            .await
            .expect("drop");
        admin
            .execute(format!("CREATE DATABASE {building}").as_str())
            .await
            .expect("create the template");
        let store = Store::open(&with_database(admin_url, &building))
            .await
            .expect("migrate the template");
        store.close().await;
        admin
            .execute(format!("ALTER DATABASE {building} RENAME TO {template}").as_str())
            .await
            .expect("publish the template");
    }
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(TEMPLATE_LOCK)
        .execute(&mut *admin)
        .await
        .expect("unlock");
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::File(dir) => {
                std::fs::remove_dir_all(dir).ok();
            }
            Cleanup::Database { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop runs outside async; a short-lived runtime on its own thread does the work.
                let done = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .ok()?;
                    rt.block_on(async {
                        let mut admin = PgConnection::connect(&admin_url).await.ok()?;
                        admin
                            .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                            .await
                            .ok()?;
                        admin.close().await.ok()
                    })
                });
                done.join().ok();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn swaps_the_database_name() {
        assert_eq!(
            super::with_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            super::with_database("postgres://u@h/postgres?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(super::with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
