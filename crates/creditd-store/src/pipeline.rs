//! The order between batches in flight at once (PostgreSQL's pipelined group commit).
//!
//! Batch k+1 starts only once batch k holds its row locks, so on a shared customer k+1 queues
//! behind k in the database and is applied after it. Before k+1 stores its idempotency keys
//! and commits, it waits for k to finish; if k rolled back to retry meanwhile, k+1 may have
//! taken locks k needs and decided against a state without k, so k+1 rolls back too, waits
//! for k to finish and starts again. The acceptance order is kept even across retries, and no
//! batch ever waits for its predecessor while the predecessor waits for its locks.

use tokio::sync::watch;

use crate::{Result, StoreError};

/// Where a batch is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// In its `attempt`-th transaction; `locked` once it holds every row lock it will take.
    Running { attempt: u32, locked: bool },
    /// Committed or failed for good: nothing of it will change any more.
    Done,
}

/// One batch's place in the pipeline: its predecessor's stage, and its own to publish.
#[derive(Debug)]
pub(crate) struct Order {
    prev: Option<watch::Receiver<Stage>>,
    me: watch::Sender<Stage>,
    /// The predecessor's attempt when this batch's current attempt began.
    seen: Option<u32>,
}

impl Order {
    pub(crate) fn new(prev: Option<watch::Receiver<Stage>>) -> (Order, watch::Receiver<Stage>) {
        let (me, rx) = watch::channel(Stage::Running {
            attempt: 0,
            locked: false,
        });
        let order = Order { prev, me, seen: None };
        (order, rx)
    }

    /// A new attempt of this batch begins (not yet holding locks). It waits until the
    /// predecessor's current attempt holds its locks — that attempt may have begun after the
    /// writer saw an earlier one locked — so this attempt's locks queue behind them, never
    /// the other way round.
    pub(crate) async fn attempt(&mut self, attempt: u32) {
        self.me.send_replace(Stage::Running { attempt, locked: false });
        self.seen = match self.prev.as_mut() {
            None => None,
            Some(prev) => match prev
                .wait_for(|s| matches!(s, Stage::Done | Stage::Running { locked: true, .. }))
                .await
                .map(|s| *s)
            {
                Ok(Stage::Running { attempt, .. }) => Some(attempt),
                Ok(Stage::Done) | Err(_) => None,
            },
        };
    }

    /// This attempt holds every lock it will take: the next batch may start.
    pub(crate) fn locked(&self) {
        self.me.send_modify(|stage| {
            if let Stage::Running { locked, .. } = stage {
                *locked = true;
            }
        });
    }

    /// Finished for good: successors may commit.
    pub(crate) fn done(&self) {
        self.me.send_replace(Stage::Done);
    }

    /// Waits until the predecessor is done; [`StoreError::Restart`] if it started another
    /// attempt after this one began (this attempt must roll back and start again).
    pub(crate) async fn before_commit(&mut self) -> Result<()> {
        let Some(prev) = self.prev.as_mut() else { return Ok(()) };
        let seen = self.seen;
        let stage = prev
            .wait_for(|s| match *s {
                Stage::Done => true,
                Stage::Running { attempt, .. } => Some(attempt) != seen,
            })
            .await
            .map(|s| *s)
            // The predecessor's task is gone: it cannot change anything any more.
            .unwrap_or(Stage::Done);
        match stage {
            Stage::Done => Ok(()),
            Stage::Running { .. } => Err(StoreError::Restart),
        }
    }

    /// After a [`StoreError::Restart`]: waits for the predecessor to finish before trying again.
    pub(crate) async fn wait_prev_done(&mut self) {
        if let Some(prev) = self.prev.as_mut() {
            prev.wait_for(|s| *s == Stage::Done).await.ok();
        }
    }
}

/// Waits until a batch holds its locks or is done: the next one may start.
pub(crate) async fn until_locked(stage: &mut watch::Receiver<Stage>) {
    stage
        .wait_for(|s| matches!(s, Stage::Done | Stage::Running { locked: true, .. }))
        .await
        .ok();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_successor_commits_after_its_predecessor_and_restarts_when_it_retries() {
        let (mut first, first_stage) = Order::new(None);
        first.attempt(1).await;
        first.locked();
        let (mut second, _) = Order::new(Some(first_stage));
        second.attempt(1).await;
        // The predecessor retries: the successor's attempt is void.
        first.attempt(2).await;
        assert!(matches!(second.before_commit().await, Err(StoreError::Restart)));
        first.locked();
        first.done();
        second.wait_prev_done().await;
        second.attempt(2).await;
        assert!(second.before_commit().await.is_ok());
    }

    #[tokio::test]
    async fn an_attempt_starts_only_once_the_predecessors_current_attempt_holds_its_locks() {
        let (mut first, first_stage) = Order::new(None);
        first.attempt(1).await;
        first.locked();
        // The predecessor rolled back and began again after the writer saw it locked.
        first.attempt(2).await;
        let (mut second, _) = Order::new(Some(first_stage));
        let starting = tokio::spawn(async move {
            second.attempt(1).await;
            second
        });
        tokio::task::yield_now().await;
        assert!(
            !starting.is_finished(),
            "waits for the predecessor's new attempt to lock"
        );
        first.locked();
        let mut second = starting.await.unwrap();
        first.done();
        assert!(
            second.before_commit().await.is_ok(),
            "saw attempt 2 locked: not a restart"
        );
    }

    #[tokio::test]
    async fn a_successor_waits_for_its_predecessor_to_finish() {
        let (mut first, first_stage) = Order::new(None);
        first.attempt(1).await;
        first.locked();
        let (mut second, _) = Order::new(Some(first_stage));
        second.attempt(1).await;
        let waiting = tokio::spawn(async move { second.before_commit().await.is_ok() });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "the predecessor has not finished");
        first.done();
        assert!(waiting.await.unwrap());
    }
}
