//! The group-commit writer: one task per process takes requests from a bounded queue, closes
//! a batch on size or a short window, applies it in one transaction ([`crate::batch`]) and
//! answers every request with its own result. It owns the accounts: recently used
//! customers' states stay in its [`AccountCache`] between batches.
//!
//! On SQLite one batch is in flight at a time. On PostgreSQL the next batch forms while one
//! runs and starts as soon as that one holds its row locks (up to [`WriterConfig::pipeline`]
//! in flight); [`crate::pipeline`] keeps them in acceptance order, so the order in which
//! requests were accepted is the order they are applied in — per customer and overall. A
//! full queue refuses at once ([`StoreError::Overloaded`]) instead of growing without bound.

use std::sync::Arc;
use std::time::Duration;

use creditd_domain::{Outcome, Request};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};

use crate::accounts::AccountCache;
use crate::pipeline::{until_locked, Order, Stage};
use crate::{Result, Store, StoreError};

/// Yields to other tasks, with nothing new queued, before a batch closes (without a window).
const IDLE_YIELDS: usize = 4;

/// How batches are formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterConfig {
    /// A batch closes when it has this many requests…
    pub max_batch: usize,
    /// …or this long after its first request arrived (zero: take only what is queued).
    pub window: Duration,
    /// Requests waiting beyond this are refused with [`StoreError::Overloaded`].
    pub queue_capacity: usize,
    /// Batches in flight at once on PostgreSQL (SQLite: always one).
    pub pipeline: usize,
    /// Customers whose accounts stay in memory between batches (0: none).
    pub accounts: usize,
}

impl Default for WriterConfig {
    fn default() -> WriterConfig {
        WriterConfig {
            max_batch: 256,
            window: Duration::ZERO,
            queue_capacity: 4096,
            pipeline: 2,
            accounts: 10_000,
        }
    }
}

struct Job {
    request: Request,
    now: i64,
    reply: oneshot::Sender<Result<Outcome>>,
}

/// A handle to the writer task; cheap to clone. The task ends when every handle is dropped.
#[derive(Clone, Debug)]
pub struct Writer {
    queue: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer task on the current Tokio runtime.
    pub fn spawn(store: Store, config: WriterConfig) -> Writer {
        assert!(config.max_batch >= 1 && config.queue_capacity >= 1);
        let (queue, jobs) = mpsc::channel(config.queue_capacity);
        tokio::spawn(write_loop(store, jobs, config));
        Writer { queue }
    }

    /// Queues one request and waits for its result. `now` is the time it is applied at:
    /// requests with different times never share a batch.
    pub async fn submit(&self, request: Request, now: i64) -> Result<Outcome> {
        self.enqueue(request, now)?.result().await
    }

    /// Queues one request now, without waiting: requests enqueued one after another are
    /// applied in that order.
    pub fn enqueue(&self, request: Request, now: i64) -> Result<Pending> {
        let (reply, answer) = oneshot::channel();
        self.queue.try_send(Job { request, now, reply }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => StoreError::Overloaded,
            mpsc::error::TrySendError::Closed(_) => StoreError::WriterStopped,
        })?;
        Ok(Pending { answer })
    }
}

/// A queued request's result, once its batch is committed (or failed).
#[derive(Debug)]
pub struct Pending {
    answer: oneshot::Receiver<Result<Outcome>>,
}

impl Pending {
    pub async fn result(self) -> Result<Outcome> {
        self.answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

async fn write_loop(store: Store, mut jobs: mpsc::Receiver<Job>, config: WriterConfig) {
    // SQLite has one writer connection: a second batch in flight would only wait for it.
    let depth = match store.dialect() {
        crate::Dialect::Sqlite => 1,
        crate::Dialect::Postgres => config.pipeline.max(1),
    };
    let slots = Arc::new(Semaphore::new(depth));
    let cache = Arc::new(AccountCache::new(config.accounts));
    let mut prev: Option<watch::Receiver<Stage>> = None;
    let mut carried: Option<Job> = None;
    loop {
        // The next batch forms while the one before runs; it starts once that one holds its
        // locks and a slot is free.
        if let Some(stage) = prev.as_mut() {
            until_locked(stage).await;
        }
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let first = match carried.take() {
            Some(job) => job,
            None => match jobs.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        let now = first.now;
        let mut batch = vec![first];
        carried = collect(&mut jobs, &mut batch, now, &config).await;
        let (requests, replies): (Vec<Request>, Vec<oneshot::Sender<Result<Outcome>>>) =
            batch.into_iter().map(|j| (j.request, j.reply)).unzip();
        let (mut order, stage) = Order::new(prev.take());
        prev = Some(stage);
        let store = store.clone();
        let cache = cache.clone();
        tokio::spawn(async move {
            let results = store.apply_in_order(requests, now, Some(&mut order), &cache).await;
            drop(slot);
            assert_eq!(results.len(), replies.len(), "one result per request");
            for (reply, result) in replies.into_iter().zip(results) {
                // The caller may have gone away (a closed connection); its result stands anyway.
                reply.send(result).ok();
            }
        });
    }
}

/// Fills a batch: whatever is queued, then what arrives while other tasks run (a few yields:
/// callers answered by the last batch are sending their next request), then — with a window —
/// what arrives until it closes. Returns a request that must start the next batch (its time
/// differs: requests with different times never share a batch).
async fn collect(jobs: &mut mpsc::Receiver<Job>, batch: &mut Vec<Job>, now: i64, config: &WriterConfig) -> Option<Job> {
    let deadline = tokio::time::Instant::now() + config.window;
    let mut idle_yields = 0;
    while batch.len() < config.max_batch {
        let next = match jobs.try_recv() {
            Ok(job) => Some(job),
            Err(mpsc::error::TryRecvError::Empty) if idle_yields < IDLE_YIELDS => {
                idle_yields += 1;
                tokio::task::yield_now().await;
                continue;
            }
            Err(mpsc::error::TryRecvError::Empty) if !config.window.is_zero() => {
                tokio::time::timeout_at(deadline, jobs.recv()).await.ok().flatten()
            }
            Err(_) => None,
        };
        let Some(job) = next else { break };
        if job.now != now {
            return Some(job);
        }
        idle_yields = 0;
        batch.push(job);
    }
    None
}
