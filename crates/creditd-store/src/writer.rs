//! The group-commit writer: one task per process takes requests from a bounded queue, closes
//! a batch on size or a short window, applies it in one transaction ([`crate::batch`]) and
//! answers every request with its own result. It owns the accounts: recently used
//! customers' states stay in its [`AccountCache`] between batches.
//!
//! One batch is in flight at a time, so the order in which requests were accepted is the
//! order they are applied in — per customer and overall — and the next batch finds the
//! accounts the last one put back in the cache. (A second batch in flight on PostgreSQL,
//! started once the first held its row locks, measured no faster — `creditd bench`,
//! depth 1 against 2 — and made the hot customer's account miss the cache; it was removed.)
//! A full queue refuses at once ([`StoreError::Overloaded`]) instead of growing without
//! bound.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use creditd_domain::{Outcome, Request};
use tokio::sync::{mpsc, oneshot};

use crate::accounts::AccountCache;
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
    /// Customers whose accounts stay in memory between batches (0: none).
    pub accounts: usize,
}

impl Default for WriterConfig {
    fn default() -> WriterConfig {
        WriterConfig {
            max_batch: 256,
            window: Duration::ZERO,
            queue_capacity: 4096,
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
    /// Requests accepted and not yet answered (queued or in a batch).
    unanswered: Arc<AtomicUsize>,
}

impl Writer {
    /// Starts the writer task on the current Tokio runtime.
    pub fn spawn(store: Store, config: WriterConfig) -> Writer {
        assert!(config.max_batch >= 1 && config.queue_capacity >= 1);
        let (queue, jobs) = mpsc::channel(config.queue_capacity);
        let unanswered = Arc::new(AtomicUsize::new(0));
        tokio::spawn(write_loop(store, jobs, config, unanswered.clone()));
        Writer { queue, unanswered }
    }

    /// Requests waiting in the queue for a batch.
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Waits until every request accepted so far is committed (or failed) and answered:
    /// at shutdown, once nothing submits any more, the queue is then drained.
    pub async fn drained(&self) {
        while self.unanswered.load(Ordering::Acquire) > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
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
        self.unanswered.fetch_add(1, Ordering::AcqRel);
        self.queue.try_send(Job { request, now, reply }).map_err(|e| {
            self.unanswered.fetch_sub(1, Ordering::AcqRel);
            match e {
                mpsc::error::TrySendError::Full(_) => StoreError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => StoreError::WriterStopped,
            }
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

async fn write_loop(store: Store, mut jobs: mpsc::Receiver<Job>, config: WriterConfig, unanswered: Arc<AtomicUsize>) {
    let cache = AccountCache::new(config.accounts);
    let mut carried: Option<Job> = None;
    loop {
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
        let started = Instant::now();
        let size = requests.len();
        let results = store.apply_cached(&requests, now, &cache).await;
        crate::metrics::batch_applied(size, started.elapsed());
        assert_eq!(results.len(), replies.len(), "one result per request");
        for (reply, result) in replies.into_iter().zip(results) {
            // The caller may have gone away (a closed connection); its result stands anyway.
            reply.send(result).ok();
        }
        unanswered.fetch_sub(size, Ordering::AcqRel);
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
