//! When a failed background job (a Stripe event's handling) is tried again: exponential
//! back-off from a base, capped, so a long outage costs a try every `cap` and a blip is
//! retried at once.

/// The wait before attempt `attempt + 1`, after `attempt` (≥ 1) failed tries.
pub fn backoff_ms(attempt: u32, base_ms: u64, cap_ms: u64) -> u64 {
    let doublings = attempt.saturating_sub(1).min(63);
    base_ms.saturating_mul(1u64 << doublings).min(cap_ms)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::backoff_ms;

    #[test]
    fn doubles_from_the_base_up_to_the_cap() {
        let waits: Vec<u64> = (1..=7).map(|a| backoff_ms(a, 1000, 30_000)).collect();
        assert_eq!(waits, [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
        assert_eq!(backoff_ms(0, 1000, 30_000), 1000);
        assert_eq!(backoff_ms(500, u64::MAX, u64::MAX), u64::MAX);
    }

    proptest! {
        #[test]
        fn never_shrinks_and_never_passes_the_cap(a in 0u32..200, base in 0u64..1_000_000, cap in 0u64..u64::MAX) {
            let (now, next) = (backoff_ms(a, base, cap), backoff_ms(a + 1, base, cap));
            prop_assert!(now <= next);
            prop_assert!(next <= cap);
        }
    }
}
