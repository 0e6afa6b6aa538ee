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

/// `YYYY-MM-DD` of a unix time, in UTC.
pub fn iso_date(unix: i64) -> String {
    let (y, m, d) = civil_from_days(unix.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD HH:MM UTC` of a unix time.
pub fn iso_minute(unix: i64) -> String {
    let seconds = unix.rem_euclid(86_400);
    format!(
        "{} {:02}:{:02} UTC",
        iso_date(unix),
        seconds / 3600,
        seconds % 3600 / 60
    )
}

/// `YYYY-MM-DDTHH:MM:SSZ`, for `<time datetime>`.
pub fn rfc3339(unix: i64) -> String {
    let seconds = unix.rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        iso_date(unix),
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

pub use creditd_domain::calendar::civil_from_days;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates_in_utc() {
        assert_eq!(iso_date(0), "1970-01-01");
        assert_eq!(iso_date(951_782_400), "2000-02-29");
        assert_eq!(iso_minute(1_800_000_000), "2027-01-15 08:00 UTC");
        assert_eq!(rfc3339(1_800_000_059), "2027-01-15T08:00:59Z");
        assert_eq!(iso_date(-1), "1969-12-31");
    }
}
