//! The two native drivers behind one handle: `sqlx::PgPool` and `sqlx::SqlitePool`, each with
//! its own types (binary parameters, booleans, `jsonb`) and its own SQL where the two differ.
//!
//! A statement is written once, as a literal, and compiled for both drivers by [`on!`]: its
//! body is type-checked and monomorphised for each backend, so nothing converts values
//! through a common representation at run time (what sqlx's `Any` driver did for every
//! parameter and every column of every row). Where the SQL must differ, match on
//! [`Db::Pg`] / [`Db::Lite`] and write each.

use sqlx::pool::PoolConnection;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{
    ColumnIndex, Decode, PgConnection, PgPool, Postgres, Row, Sqlite, SqliteConnection, SqlitePool, Transaction, Type,
};

use crate::{Dialect, Result};

/// One value for each backend: a pool, a connection, a transaction.
#[derive(Debug)]
pub(crate) enum Db<P, L> {
    Pg(P),
    Lite(L),
}

impl<P: Clone, L: Clone> Clone for Db<P, L> {
    fn clone(&self) -> Self {
        match self {
            Db::Pg(p) => Db::Pg(p.clone()),
            Db::Lite(l) => Db::Lite(l.clone()),
        }
    }
}

pub(crate) type Pool = Db<PgPool, SqlitePool>;
pub(crate) type Conn<'c> = Db<&'c mut PgConnection, &'c mut SqliteConnection>;
pub(crate) type Pooled = Db<PoolConnection<Postgres>, PoolConnection<Sqlite>>;
pub(crate) type Tx = Db<Transaction<'static, Postgres>, Transaction<'static, Sqlite>>;

/// `on!(db, x => body)`: `body` once per backend, with `x` the backend's own pool, connection
/// or transaction. With `db` a `&mut Conn`, `x` is `&mut &mut …Connection`: pass `&mut **x`.
macro_rules! on {
    ($db:expr, $x:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Pg($x) => $body,
            $crate::db::Db::Lite($x) => $body,
        }
    };
}
pub(crate) use on;

impl<P, L> Db<P, L> {
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Db::Pg(_) => Dialect::Postgres,
            Db::Lite(_) => Dialect::Sqlite,
        }
    }
}

impl Pool {
    pub(crate) async fn acquire(&self) -> Result<Pooled> {
        Ok(match self {
            Db::Pg(p) => Db::Pg(p.acquire().await?),
            Db::Lite(p) => Db::Lite(p.acquire().await?),
        })
    }

    pub(crate) async fn begin(&self) -> Result<Tx> {
        Ok(match self {
            Db::Pg(p) => Db::Pg(p.begin().await?),
            Db::Lite(p) => Db::Lite(p.begin().await?),
        })
    }

    /// SQLite: `BEGIN IMMEDIATE`, the write lock at once (see [`crate::batch`]); PostgreSQL:
    /// a plain `BEGIN`.
    pub(crate) async fn begin_write(&self) -> Result<Tx> {
        Ok(match self {
            Db::Pg(p) => Db::Pg(p.begin().await?),
            Db::Lite(p) => Db::Lite(p.begin_with("BEGIN IMMEDIATE").await?),
        })
    }

    pub(crate) async fn close(&self) {
        on!(self, p => p.close().await)
    }

    /// (connections, idle)
    pub(crate) fn usage(&self) -> (u32, usize) {
        on!(self, p => (p.size(), p.num_idle()))
    }
}

impl Pooled {
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Db::Pg(c) => Db::Pg(&mut **c),
            Db::Lite(c) => Db::Lite(&mut **c),
        }
    }
}

impl Tx {
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Db::Pg(t) => Db::Pg(&mut **t),
            Db::Lite(t) => Db::Lite(&mut **t),
        }
    }

    pub(crate) async fn commit(self) -> Result<()> {
        on!(self, t => t.commit().await?);
        Ok(())
    }

    pub(crate) async fn rollback(self) -> Result<()> {
        on!(self, t => t.rollback().await?);
        Ok(())
    }
}

/// A column's Rust type, decodable from both backends.
pub(crate) trait Value:
    for<'r> Decode<'r, Postgres> + Type<Postgres> + for<'r> Decode<'r, Sqlite> + Type<Sqlite>
{
}
impl<T> Value for T where T: for<'r> Decode<'r, Postgres> + Type<Postgres> + for<'r> Decode<'r, Sqlite> + Type<Sqlite> {}

/// A column's name or position, on both backends' rows.
pub(crate) trait Index: ColumnIndex<PgRow> + ColumnIndex<SqliteRow> {}
impl<I> Index for I where I: ColumnIndex<PgRow> + ColumnIndex<SqliteRow> {}

/// Reading a row of either backend, for code shared by both ([`crate::rows`]): what sqlx's
/// `Row::try_get` is on each.
pub(crate) trait Fields {
    fn field<T: Value, I: Index>(&self, index: I) -> sqlx::Result<T>;
}

impl Fields for PgRow {
    fn field<T: Value, I: Index>(&self, index: I) -> sqlx::Result<T> {
        self.try_get(index)
    }
}

impl Fields for SqliteRow {
    fn field<T: Value, I: Index>(&self, index: I) -> sqlx::Result<T> {
        self.try_get(index)
    }
}
