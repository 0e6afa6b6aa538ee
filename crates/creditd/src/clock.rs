//! Time as the ledger sees it: unix seconds. Tests replace the system clock with one they
//! move by hand, to expire grants and holds without waiting.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

#[derive(Clone, Debug, Default)]
pub enum Clock {
    #[default]
    System,
    Manual(Arc<AtomicI64>),
}

impl Clock {
    pub fn manual(start: i64) -> Clock {
        Clock::Manual(Arc::new(AtomicI64::new(start)))
    }

    pub fn now(&self) -> i64 {
        match self {
            Clock::System => creditd_store::unix_now(),
            Clock::Manual(t) => t.load(Ordering::SeqCst),
        }
    }

    /// Sets a manual clock (tests align it with the Stripe sandbox's clock).
    pub fn set(&self, now: i64) {
        match self {
            Clock::System => panic!("the system clock cannot be set"),
            Clock::Manual(t) => t.store(now, Ordering::SeqCst),
        }
    }

    /// Moves a manual clock forward; the system clock cannot be moved.
    pub fn advance(&self, seconds: i64) {
        match self {
            Clock::System => panic!("the system clock cannot be advanced"),
            Clock::Manual(t) => {
                t.fetch_add(seconds, Ordering::SeqCst);
            }
        }
    }
}
