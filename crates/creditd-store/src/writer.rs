//! The group-commit writer: one task per process takes requests from a bounded queue, closes
//! a batch on size or a short window, applies it with [`Store::apply`] in one transaction and
//! answers every request with its own result.
//!
//! One batch is in flight at a time, so the order in which requests were accepted is the
//! order they are applied in — per customer and overall. A full queue refuses at once
//! ([`StoreError::Overloaded`]) instead of growing without bound.

use std::time::Duration;

use creditd_domain::{Outcome, Request};
use tokio::sync::{mpsc, oneshot};

use crate::{Result, Store, StoreError};

/// How batches are formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterConfig {
    /// A batch closes when it has this many requests…
    pub max_batch: usize,
    /// …or this long after its first request arrived (zero: take only what is queued).
    pub window: Duration,
    /// Requests waiting beyond this are refused with [`StoreError::Overloaded`].
    pub queue_capacity: usize,
}

impl Default for WriterConfig {
    fn default() -> WriterConfig {
        WriterConfig {
            max_batch: 256,
            window: Duration::from_millis(1),
            queue_capacity: 4096,
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
        let deadline = tokio::time::Instant::now() + config.window;
        let mut batch = vec![first];
        while batch.len() < config.max_batch {
            let next = match jobs.try_recv() {
                Ok(job) => Some(job),
                Err(mpsc::error::TryRecvError::Empty) if !config.window.is_zero() => {
                    tokio::time::timeout_at(deadline, jobs.recv()).await.ok().flatten()
                }
                Err(_) => None,
            };
            let Some(job) = next else { break };
            if job.now != now {
                carried = Some(job);
                break;
            }
            batch.push(job);
        }
        let (requests, replies): (Vec<Request>, Vec<oneshot::Sender<Result<Outcome>>>) =
            batch.into_iter().map(|j| (j.request, j.reply)).unzip();
        let results = store.apply(requests, now).await;
        assert_eq!(results.len(), replies.len(), "one result per request");
        for (reply, result) in replies.into_iter().zip(results) {
            // The caller may have gone away (a closed connection); its result stands anyway.
            reply.send(result).ok();
        }
    }
}
