//! Group commit, the one write path: a batch of requests applied in ONE transaction, one
//! result per request. Every change to a balance is a [`Command`] in such a batch.
//!
//! 1. Idempotency keys are looked up with one read ([`crate::batch_keys`]); replays and
//!    mismatches are answered from it.
//! 2. The customers the commands touch are named (a hold's or a payment's owner is read
//!    unless the cache knows it) and locked with one statement, in id order
//!    ([`crate::accounts::lock_customers`]); it returns each row's `version`.
//! 3. Each customer's state comes from the writer's cache when its version is current, or
//!    is loaded from its rows; lapsed holds and grants are expired ([`Book::admit`]).
//! 4. What the commands need besides the accounts is read ([`crate::load::facts`]).
//! 5. The domain decides every command in acceptance order ([`Book::apply`]); a refused
//!    command changes nothing and so needs no undo.
//! 6. Everything decided is written with the keys and every locked customer gets
//!    `version + 1` ([`crate::persist`]); after the commit the states go back to the cache.
//!
//! A database error anywhere fails the whole batch: it is rolled back and every request gets
//! the error; transient ones (serialization failure, deadlock, SQLite busy, a row another
//! writer inserted first) retry the batch, which then decides again on what that writer did.

use std::sync::Arc;

use creditd_domain::{Book, Command, CommandError, Outcome, Request};

use crate::accounts::{load_states, lock_customers, AccountCache, LockedRow};
use crate::batch_keys::{key_parts, lookup_keys, replay, Key};
use crate::db::{on, Conn};
use crate::{load, persist, Result, Store, StoreError};

/// Attempts for a batch that lost a serialization race or a deadlock.
pub(crate) const MAX_ATTEMPTS: u32 = 8;

/// Errors that are the command's real result, replayed to retries like Stripe does. Lookups
/// that failed are not: the caller may create the missing object and retry with the same key.
pub(crate) fn is_recorded(e: &CommandError) -> bool {
    matches!(
        e,
        CommandError::InsufficientCredits { .. }
            | CommandError::HoldNotOpen { .. }
            | CommandError::DuplicateGrantReference { .. }
            | CommandError::Refused(_)
    )
}

pub(crate) fn is_transient(e: &sqlx::Error) -> bool {
    let Some(db) = e.as_database_error() else { return false };
    // PostgreSQL: serialization failure, deadlock. SQLite: busy, busy snapshot.
    matches!(db.code().as_deref(), Some("40001" | "40P01" | "5" | "517"))
}

/// Errors after which the whole batch is tried again: nothing of it was written.
fn is_retryable(e: &StoreError) -> bool {
    match e {
        StoreError::Database(e) => is_transient(e),
        StoreError::KeyRace => true,
        _ => false,
    }
}

/// One attempt's decisions, written but not yet committed.
struct Decided {
    results: Vec<Result<Outcome>>,
    book: Book,
    locked: std::collections::BTreeMap<String, LockedRow>,
}

impl Store {
    /// Applies a batch in one transaction and returns each request's result, in order. A
    /// refused command affects only its own result; requests sharing an idempotency key get
    /// the first one's result. A database error gives every request an error and writes
    /// nothing. Accounts are loaded from the database (the writer's batches use its cache).
    pub async fn apply(&self, batch: Vec<Request>, now: i64) -> Vec<Result<Outcome>> {
        self.apply_cached(&batch, now, &AccountCache::new(0)).await
    }

    /// [`Store::apply`] for a batch of the writer: accounts from (and back into) `cache`.
    pub(crate) async fn apply_cached(&self, batch: &[Request], now: i64, cache: &AccountCache) -> Vec<Result<Outcome>> {
        if batch.is_empty() {
            return Vec::new();
        }
        let mut attempt = 1;
        loop {
            match self.try_apply_batch(batch, now, cache).await {
                Ok(results) => return results,
                Err(e) if attempt < MAX_ATTEMPTS && is_retryable(&e) => {
                    tracing::debug!(attempt, error = %e, size = batch.len(), "retrying batch");
                    crate::metrics::batch_retried("transient");
                    tokio::time::sleep(std::time::Duration::from_millis(1 << attempt)).await;
                    attempt += 1;
                }
                Err(e) if batch.len() == 1 => return vec![Err(e)],
                Err(e) => {
                    tracing::warn!(error = %e, size = batch.len(), "batch failed; nothing of it was written");
                    let shared = Arc::new(e);
                    return batch.iter().map(|_| Err(StoreError::Batch(shared.clone()))).collect();
                }
            }
        }
    }

    /// One transaction; rolled back explicitly on any error so its locks go at once. The
    /// accounts go back to the cache only once committed.
    async fn try_apply_batch(&self, batch: &[Request], now: i64, cache: &AccountCache) -> Result<Vec<Result<Outcome>>> {
        // SQLite: take the write lock at once. A deferred transaction that reads first and then
        // writes fails with SQLITE_BUSY, without waiting, when another process's writer (a
        // second replica, the CLI) wrote in between.
        let mut tx = self.batches.begin_write().await?;
        let decided = self.decide_and_write(&mut tx.conn(), batch, now, cache).await;
        match decided {
            Ok(decided) => {
                tx.commit().await?;
                let Decided { results, book, locked } = decided;
                cache.forget_holds(load::finished_holds(&book));
                for (id, mut state) in book.customers {
                    state.prune();
                    // Created in this batch: stored at version 0. Locked: saved one up.
                    let version = locked.get(&id).map_or(0, |row| row.version + 1);
                    cache.put(version, state);
                }
                Ok(results)
            }
            Err(e) => {
                tx.rollback().await.ok();
                Err(e)
            }
        }
    }

    async fn decide_and_write(
        &self,
        tx: &mut Conn<'_>,
        batch: &[Request],
        now: i64,
        cache: &AccountCache,
    ) -> Result<Decided> {
        let mut results: Vec<Option<Result<Outcome>>> = batch.iter().map(|_| None).collect();
        let keys = lookup_keys(tx, batch, &mut results).await?;
        let todo: Vec<usize> = (0..batch.len())
            .filter(|&i| results[i].is_none() && !matches!(keys[i], Key::SameAs(_)))
            .collect();
        let commands: Vec<&Command> = todo.iter().map(|&i| &batch[i].command).collect();
        let (facts, customers) = load::owners(tx, &commands, cache).await?;
        let locked = lock_customers(tx, &customers, now).await?;
        let mut book = Book::new(facts);
        let mut stale = std::collections::BTreeMap::new();
        for (id, row) in &locked {
            match cache.take(id, row) {
                Some(state) => book.admit(state, now),
                None => {
                    stale.insert(id.clone(), *row);
                }
            }
        }
        for state in load_states(tx, &stale, now).await? {
            book.admit(state, now);
        }
        load::facts(tx, &commands, &mut book).await?;
        let catalog = self.catalog().await?;
        crate::budgets::gates(tx, &commands, &mut book, &catalog, self.past_due_policy()).await?;
        for (&i, command) in todo.iter().zip(&commands) {
            results[i] = Some(book.apply(command, now).map_err(StoreError::Command));
        }
        let dialect = self.dialect();
        let key_writes = key_parts(dialect, batch, &keys, &results, persist::rows_per_part(dialect));
        let seqs = persist::persist(tx, &book, &locked, key_writes, now).await?;
        persist::stored_seqs(&mut book, &seqs);
        let mut done: Vec<Result<Outcome>> = Vec::with_capacity(batch.len());
        for (i, result) in results.into_iter().enumerate() {
            let result = match keys[i] {
                Key::SameAs(first) => replay(&done[first]),
                _ => result.ok_or_else(|| StoreError::Corrupt("a request of the batch got no result".into()))?,
            };
            done.push(result);
        }
        Ok(Decided {
            results: done,
            book,
            locked,
        })
    }

    /// Customers with a lapsed hold or grant not yet expired, up to `limit`.
    pub async fn lapsed_customers(&self, now: i64, limit: i64) -> Result<Vec<String>> {
        use sqlx::Row;
        on!(&self.pool, p => {
            let due = sqlx::query(
                "SELECT customer_id FROM holds WHERE status = 'open' AND expires_at <= $1 \
                 UNION SELECT customer_id FROM grants WHERE remaining > 0 AND expires_at <= $1 LIMIT $2",
            )
            .bind(now)
            .bind(limit)
            .fetch_all(p)
            .await?;
            due.iter().map(|row| Ok(row.try_get(0)?)).collect()
        })
    }

    /// Expires lapsed grants and holds for up to `limit` customers, as one batch of
    /// [`Command::Sweep`]s; returns how many were swept.
    pub async fn sweep(&self, now: i64, limit: i64) -> Result<usize> {
        let due = self.lapsed_customers(now, limit).await?;
        let batch = due
            .iter()
            .map(|customer| Request {
                command: Command::Sweep {
                    customer: customer.clone(),
                },
                idempotency: None,
            })
            .collect();
        for result in self.apply(batch, now).await {
            result?;
        }
        Ok(due.len())
    }
}
