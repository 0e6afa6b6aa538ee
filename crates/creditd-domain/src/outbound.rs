//! Outbound events to the app: their types, when a balance change raises a low-balance alert,
//! and when a failed delivery is tried again. Pure policy; storage and delivery call it.

use crate::amount::Credits;

/// Every event type creditd sends. Endpoints subscribe to a list of these, or to `*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    CustomerCreated,
    CreditsGranted,
    CreditsLow,
    CreditsDepleted,
    CreditsRestored,
    CreditsExpired,
    CreditsClawedBack,
    PaymentSucceeded,
    PaymentFailed,
    PaymentRefunded,
    DisputeCreated,
    DisputeClosed,
    SubscriptionCreated,
    SubscriptionUpdated,
    SubscriptionCanceled,
    AutoTopupSucceeded,
    AutoTopupFailed,
}

impl EventType {
    pub const ALL: [EventType; 17] = [
        EventType::CustomerCreated,
        EventType::CreditsGranted,
        EventType::CreditsLow,
        EventType::CreditsDepleted,
        EventType::CreditsRestored,
        EventType::CreditsExpired,
        EventType::CreditsClawedBack,
        EventType::PaymentSucceeded,
        EventType::PaymentFailed,
        EventType::PaymentRefunded,
        EventType::DisputeCreated,
        EventType::DisputeClosed,
        EventType::SubscriptionCreated,
        EventType::SubscriptionUpdated,
        EventType::SubscriptionCanceled,
        EventType::AutoTopupSucceeded,
        EventType::AutoTopupFailed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::CustomerCreated => "customer.created",
            EventType::CreditsGranted => "credits.granted",
            EventType::CreditsLow => "credits.low",
            EventType::CreditsDepleted => "credits.depleted",
            EventType::CreditsRestored => "credits.restored",
            EventType::CreditsExpired => "credits.expired",
            EventType::CreditsClawedBack => "credits.clawed_back",
            EventType::PaymentSucceeded => "payment.succeeded",
            EventType::PaymentFailed => "payment.failed",
            EventType::PaymentRefunded => "payment.refunded",
            EventType::DisputeCreated => "dispute.created",
            EventType::DisputeClosed => "dispute.closed",
            EventType::SubscriptionCreated => "subscription.created",
            EventType::SubscriptionUpdated => "subscription.updated",
            EventType::SubscriptionCanceled => "subscription.canceled",
            EventType::AutoTopupSucceeded => "auto_topup.succeeded",
            EventType::AutoTopupFailed => "auto_topup.failed",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// Whether an endpoint subscribed to `events` (types, or `*`) wants `event`.
pub fn wants(events: &[String], event: &str) -> bool {
    events.iter().any(|e| e == "*" || e == event)
}

/// Where a customer's available credits stand against its low-balance threshold, as left by
/// the last change. An alert fires only when this changes, so each crossing fires once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AlertState {
    /// At or above the threshold: the next fall below it sends `credits.low`.
    #[default]
    Ok,
    /// Below the threshold, above zero.
    Low,
    /// Nothing available.
    Depleted,
}

impl AlertState {
    pub const fn as_str(self) -> &'static str {
        match self {
            AlertState::Ok => "ok",
            AlertState::Low => "low",
            AlertState::Depleted => "depleted",
        }
    }

    pub fn parse(s: &str) -> Option<AlertState> {
        [AlertState::Ok, AlertState::Low, AlertState::Depleted]
            .into_iter()
            .find(|a| a.as_str() == s)
    }
}

/// The alerts a change of available credits raises, in order, and the state after it.
///
/// `credits.low` fires on falling below `threshold` from `Ok` and is re-armed only by
/// `credits.restored` (back at or above it); `credits.depleted` fires on reaching zero and is
/// re-armed by anything above zero. A threshold of zero never sends `credits.low`.
pub fn alerts(state: AlertState, threshold: Credits, available: Credits) -> (AlertState, Vec<EventType>) {
    let mut raised = Vec::new();
    let next = if !available.is_positive() {
        if state == AlertState::Ok && threshold.is_positive() {
            raised.push(EventType::CreditsLow);
        }
        if state != AlertState::Depleted {
            raised.push(EventType::CreditsDepleted);
        }
        AlertState::Depleted
    } else if available >= threshold {
        if state != AlertState::Ok {
            raised.push(EventType::CreditsRestored);
        }
        AlertState::Ok
    } else {
        if state == AlertState::Ok {
            raised.push(EventType::CreditsLow);
        }
        AlertState::Low
    };
    (next, raised)
}

/// Milliseconds from a failed attempt to the next one: about 5 s, 5 min, 30 min, 2 h, 5 h,
/// then every 10 h (Standard Webhooks' usual schedule). `attempts` is how many were made.
pub fn retry_delay_ms(attempts: u32) -> i64 {
    const SCHEDULE_MS: [i64; 6] = [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000];
    let index = (attempts.max(1) - 1) as usize;
    SCHEDULE_MS[index.min(SCHEDULE_MS.len() - 1)]
}

/// How long a message is retried, from its first attempt.
pub const GIVE_UP_AFTER_MS: i64 = 3 * 24 * 3_600_000;

/// When to try again after a failed attempt, or `None` to give up (`failed`). `delay_ms` is
/// the schedule's delay ([`retry_delay_ms`] unless configured); `jitter` in `0..=1000` spreads
/// it by up to ±20 % so endpoints coming back are not hit by every message at once.
pub fn next_attempt_ms(
    first_attempt_ms: i64,
    now_ms: i64,
    delay_ms: i64,
    give_up_after_ms: i64,
    jitter: u32,
) -> Option<i64> {
    let spread = delay_ms / 5;
    let offset = spread * (i64::from(jitter.min(1000)) * 2 - 1000) / 1000;
    let at = now_ms.saturating_add(delay_ms.saturating_add(offset).max(1));
    (at <= first_attempt_ms.saturating_add(give_up_after_ms)).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(n: i64) -> Credits {
        Credits::from_micros(n * 1_000_000)
    }

    #[test]
    fn event_types_round_trip() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("credits.lowish"), None);
        assert!(wants(&["*".into()], "credits.low"));
        assert!(!wants(&["credits.depleted".into()], "credits.low"));
    }

    #[test]
    fn a_fall_through_the_threshold_alerts_once_until_restored() {
        let t = c(10);
        assert_eq!(alerts(AlertState::Ok, t, c(12)), (AlertState::Ok, vec![]));
        assert_eq!(
            alerts(AlertState::Ok, t, c(9)),
            (AlertState::Low, vec![EventType::CreditsLow])
        );
        assert_eq!(alerts(AlertState::Low, t, c(5)), (AlertState::Low, vec![]));
        assert_eq!(
            alerts(AlertState::Low, t, c(0)),
            (AlertState::Depleted, vec![EventType::CreditsDepleted])
        );
        assert_eq!(alerts(AlertState::Depleted, t, c(3)), (AlertState::Low, vec![]));
        assert_eq!(
            alerts(AlertState::Low, t, c(10)),
            (AlertState::Ok, vec![EventType::CreditsRestored])
        );
        assert_eq!(
            alerts(AlertState::Ok, t, c(0)),
            (
                AlertState::Depleted,
                vec![EventType::CreditsLow, EventType::CreditsDepleted]
            )
        );
        assert_eq!(
            alerts(AlertState::Ok, Credits::ZERO, c(0)),
            (AlertState::Depleted, vec![EventType::CreditsDepleted])
        );
    }

    #[test]
    fn retries_follow_the_schedule_and_stop_after_three_days() {
        assert_eq!(retry_delay_ms(1), 5_000);
        assert_eq!(retry_delay_ms(2), 300_000);
        assert_eq!(retry_delay_ms(40), 36_000_000);
        assert_eq!(next_attempt_ms(0, 0, 5_000, GIVE_UP_AFTER_MS, 500), Some(5_000));
        assert_eq!(next_attempt_ms(0, 0, 5_000, GIVE_UP_AFTER_MS, 0), Some(4_000));
        assert_eq!(next_attempt_ms(0, 0, 5_000, GIVE_UP_AFTER_MS, 1000), Some(6_000));
        assert_eq!(
            next_attempt_ms(0, GIVE_UP_AFTER_MS - 1_000, 36_000_000, GIVE_UP_AFTER_MS, 500),
            None
        );
    }
}
