//! Telling "the database cannot be reached right now" from every other failure: those are
//! worth a retry (503 with `Retry-After`), the others are bugs or bad data (500).

use crate::{Dialect, Store, StoreError};

/// One connection pool's connections, for `creditd_db_pool_connections`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConnections {
    /// `read`, `write` (SQLite's one writer connection) or `batch` (PostgreSQL's batches).
    pub pool: &'static str,
    pub idle: usize,
    pub in_use: usize,
}

impl Store {
    /// The connections each pool holds now.
    pub fn pool_connections(&self) -> Vec<PoolConnections> {
        let of = |pool: &'static str, p: &crate::db::Pool| {
            let (size, idle) = p.usage();
            let size = size as usize;
            PoolConnections {
                pool,
                idle,
                in_use: size.saturating_sub(idle),
            }
        };
        match self.dialect() {
            Dialect::Sqlite => vec![of("read", &self.pool), of("write", &self.writer)],
            Dialect::Postgres => vec![of("read", &self.pool), of("batch", &self.batches)],
        }
    }
}

impl StoreError {
    /// The database did not answer or the connection to it broke: nothing is wrong with the
    /// request, and the same request may well succeed once the database is back.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(e) => sqlx_unavailable(e),
            StoreError::Batch(inner) => inner.is_unavailable(),
            StoreError::WriterStopped => true,
            _ => false,
        }
    }
}

fn sqlx_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| unavailable_code(&code)),
        _ => false,
    }
}

/// PostgreSQL: class 08 (connection exception), 57P01–57P03 (the server is shutting down or
/// starting up), 53300 (too many connections). SQLite (numeric, extended codes keep the
/// primary code in their low byte): BUSY, LOCKED, IOERR, FULL, CANTOPEN.
fn unavailable_code(code: &str) -> bool {
    if code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300") {
        return true;
    }
    code.parse::<u32>()
        .is_ok_and(|n| matches!(n & 0xff, 5 | 6 | 10 | 13 | 14))
}

#[cfg(test)]
mod tests {
    use super::unavailable_code;
    use crate::StoreError;

    #[test]
    fn connection_failures_are_unavailable_and_bad_data_is_not() {
        let io = StoreError::Database(sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into()));
        assert!(io.is_unavailable());
        assert!(StoreError::Batch(std::sync::Arc::new(io)).is_unavailable());
        assert!(StoreError::Database(sqlx::Error::PoolTimedOut).is_unavailable());
        assert!(!StoreError::Corrupt("x".into()).is_unavailable());
        assert!(!StoreError::Database(sqlx::Error::RowNotFound).is_unavailable());
        for code in ["08006", "08001", "57P01", "5", "517", "10", "3850", "14"] {
            assert!(unavailable_code(code), "{code}");
        }
        for code in ["23505", "40001", "19", "2067", "1"] {
            assert!(!unavailable_code(code), "{code}");
        }
    }
}
