//! Token buckets: `rate` tokens come back every `period`, up to `burst` saved; a request
//! takes one. Integer arithmetic on microseconds, so a bucket behaves the same however
//! often it is looked at.
//!
//! The level is kept in units of `rate`-per-microsecond: one token costs `period_us` units,
//! and every microsecond adds `rate` units. A 10-per-minute bucket and a 1,000-per-second
//! one are then both exact.

/// How fast tokens come back and how many can be saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Tokens added every `period_us`.
    pub rate: u64,
    pub period_us: u64,
    /// The most tokens a bucket holds (a full bucket allows this many requests at once).
    pub burst: u64,
}

impl Limit {
    pub fn per_second(rate: u64, burst: u64) -> Limit {
        Limit {
            rate,
            period_us: 1_000_000,
            burst,
        }
    }

    pub fn per_minute(rate: u64) -> Limit {
        Limit {
            rate,
            period_us: 60_000_000,
            burst: rate,
        }
    }

    fn capacity(&self) -> u128 {
        u128::from(self.burst) * u128::from(self.period_us)
    }

    fn cost(&self) -> u128 {
        u128::from(self.period_us)
    }
}

/// One client's bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    level: u128,
    at_us: u64,
}

/// The answer to one request, with what the `RateLimit-*` headers say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The bucket's size (`RateLimit-Limit`).
    pub limit: u64,
    /// Requests that would still be allowed now (`RateLimit-Remaining`).
    pub remaining: u64,
    /// Seconds until the bucket is full again (`RateLimit-Reset`).
    pub reset_seconds: u64,
    /// Seconds until one more request is allowed; 0 when this one was (`Retry-After`).
    pub retry_after_seconds: u64,
}

impl Bucket {
    /// A full bucket.
    pub fn full(limit: &Limit, now_us: u64) -> Bucket {
        Bucket {
            level: limit.capacity(),
            at_us: now_us,
        }
    }

    /// Refills for the time since the last look, then takes one token if there is one.
    /// Time going backwards adds nothing.
    pub fn take(&mut self, limit: &Limit, now_us: u64) -> Decision {
        let elapsed = now_us.saturating_sub(self.at_us);
        self.at_us = self.at_us.max(now_us);
        let refill = u128::from(elapsed) * u128::from(limit.rate);
        self.level = self.level.saturating_add(refill).min(limit.capacity());
        let allowed = self.level >= limit.cost();
        if allowed {
            self.level -= limit.cost();
        }
        let seconds_until = |units: u128| -> u64 {
            if limit.rate == 0 {
                return u64::MAX;
            }
            let us = units.div_ceil(u128::from(limit.rate));
            u64::try_from(us.div_ceil(1_000_000)).unwrap_or(u64::MAX)
        };
        Decision {
            allowed,
            limit: limit.burst,
            remaining: u64::try_from(self.level / limit.cost()).unwrap_or(u64::MAX),
            reset_seconds: seconds_until(limit.capacity() - self.level),
            retry_after_seconds: if allowed {
                0
            } else {
                seconds_until(limit.cost() - self.level).max(1)
            },
        }
    }

    /// Whether the bucket has refilled completely by `now_us` (it can then be forgotten:
    /// a new full bucket is the same).
    pub fn is_full(&self, limit: &Limit, now_us: u64) -> bool {
        let elapsed = now_us.saturating_sub(self.at_us);
        self.level.saturating_add(u128::from(elapsed) * u128::from(limit.rate)) >= limit.capacity()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{Bucket, Limit};

    #[test]
    fn a_full_bucket_allows_its_burst_then_refuses() {
        let limit = Limit::per_second(2, 5);
        let mut bucket = Bucket::full(&limit, 0);
        for left in (0..5).rev() {
            let d = bucket.take(&limit, 0);
            assert!(d.allowed);
            assert_eq!(d.remaining, left);
        }
        let refused = bucket.take(&limit, 0);
        assert!(!refused.allowed);
        assert_eq!((refused.retry_after_seconds, refused.reset_seconds), (1, 3));
        // Half a second brings one token back.
        assert!(bucket.take(&limit, 500_000).allowed);
        assert!(!bucket.take(&limit, 500_000).allowed);
    }

    #[test]
    fn per_minute_limits_are_exact() {
        let limit = Limit::per_minute(10);
        let mut bucket = Bucket::full(&limit, 0);
        for _ in 0..10 {
            assert!(bucket.take(&limit, 0).allowed);
        }
        let refused = bucket.take(&limit, 0);
        assert_eq!((refused.allowed, refused.retry_after_seconds), (false, 6));
        assert!(!bucket.take(&limit, 5_999_999).allowed);
        assert!(bucket.take(&limit, 6_000_000).allowed);
    }

    proptest! {
        /// Over any schedule of requests, no more are allowed than the burst plus what the
        /// elapsed time refilled; and a refused request is told a wait after which it passes.
        #[test]
        fn never_more_than_burst_plus_refill(
            rate in 1u64..1000, burst in 1u64..100, period in prop::sample::select(vec![1_000_000u64, 60_000_000]),
            gaps in prop::collection::vec(0u64..50_000, 1..400),
        ) {
            let limit = Limit { rate, period_us: period, burst };
            let mut bucket = Bucket::full(&limit, 0);
            let mut now = 0u64;
            let mut allowed = 0u128;
            for gap in gaps {
                now += gap;
                let d = bucket.take(&limit, now);
                if d.allowed {
                    allowed += 1;
                } else {
                    let mut probe = bucket;
                    prop_assert!(probe.take(&limit, now + d.retry_after_seconds * 1_000_000).allowed);
                }
                prop_assert!(d.remaining <= burst);
            }
            let ceiling = u128::from(burst) + u128::from(now) * u128::from(rate) / u128::from(period);
            prop_assert!(allowed <= ceiling, "{allowed} > {ceiling}");
        }

        /// A refused request takes nothing: refusals in between change no later answer.
        #[test]
        fn refusals_take_nothing(rate in 1u64..100, burst in 1u64..20, t1 in 0u64..1_000_000, t2 in 0u64..10_000_000) {
            let limit = Limit::per_second(rate, burst);
            let mut probed = Bucket::full(&limit, 0);
            for _ in 0..burst { probed.take(&limit, 0); }
            let mut quiet = probed;
            let t1 = t1.min(t2);
            let first = probed.take(&limit, t1);
            if !first.allowed {
                prop_assert_eq!(probed.take(&limit, t2), quiet.take(&limit, t2));
            }
        }
    }
}
