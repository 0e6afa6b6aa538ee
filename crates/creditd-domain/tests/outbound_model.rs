//! Low-balance alerts over random walks of available credits: each fall through the threshold
//! alerts once, `credits.low` never twice without `credits.restored` between, and the state
//! always says where the balance is.

use creditd_domain::outbound::{alerts, next_attempt_ms, AlertState, EventType, GIVE_UP_AFTER_MS};
use creditd_domain::Credits;
use proptest::prelude::*;

proptest! {
    #[test]
    fn alerts_fire_once_per_crossing(threshold in 0i64..50, walk in prop::collection::vec(-20i64..80, 1..60)) {
        let threshold = Credits::from_micros(threshold);
        let mut state = AlertState::Ok;
        let mut armed_low = true;
        let mut previous = Credits::from_micros(i64::MAX / 4);
        for micros in walk {
            let available = Credits::from_micros(micros);
            let (next, raised) = alerts(state, threshold, available);
            for event in &raised {
                match event {
                    EventType::CreditsLow => {
                        prop_assert!(armed_low, "credits.low twice without credits.restored");
                        prop_assert!(available < threshold);
                        armed_low = false;
                    }
                    EventType::CreditsRestored => {
                        prop_assert!(available >= threshold && available.is_positive());
                        armed_low = true;
                    }
                    EventType::CreditsDepleted => prop_assert!(!available.is_positive()),
                    other => prop_assert!(false, "unexpected {other:?}"),
                }
            }
            // A fall from at or above the threshold (and above zero) to below it always alerts.
            if previous >= threshold && previous.is_positive() && available < threshold && threshold.is_positive() {
                prop_assert!(raised.contains(&EventType::CreditsLow));
            }
            let expected = if !available.is_positive() {
                AlertState::Depleted
            } else if available >= threshold {
                AlertState::Ok
            } else {
                AlertState::Low
            };
            prop_assert_eq!(next, expected);
            state = next;
            previous = available;
        }
    }

    #[test]
    fn retries_stay_inside_their_window(first in 0i64..1_000_000, elapsed in 0i64..GIVE_UP_AFTER_MS * 2, delay in 1i64..40_000_000, jitter in 0u32..=1000) {
        let now = first + elapsed;
        match next_attempt_ms(first, now, delay, GIVE_UP_AFTER_MS, jitter) {
            Some(at) => {
                prop_assert!(at > now);
                prop_assert!(at <= first + GIVE_UP_AFTER_MS);
                prop_assert!(at - now >= (delay - delay / 5).max(1) && at - now <= delay + delay / 5);
            }
            None => prop_assert!(now + delay + delay / 5 > first + GIVE_UP_AFTER_MS),
        }
    }
}
