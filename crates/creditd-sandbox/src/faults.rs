//! Fault injection for webhook deliveries, to prove a receiver converges
//! whatever the network does: each event can be delivered several times,
//! out of order, late, or not at all (it then stays in the events API, as
//! after an outage). Random choices come from a seeded generator, so a run
//! with the same seed and the same events makes the same choices.
//!
//! API faults (`api_delay_ms`, `api_errors`) slow down or fail every API
//! call instead, as a Stripe outage would.
//!
//! Faults act when the delivery worker first picks an event up
//! ([`shape`]); retries of a failed delivery are not faulted again.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::ids;
use crate::state::{PendingDelivery, State};

/// How long a partial shuffle window waits for more events before it is
/// sent anyway.
pub const SHUFFLE_FLUSH_MS: i64 = 250;

/// Delivery faults; the default injects none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Extra copies of each delivered event (0: each event once).
    pub duplicates: u32,
    /// Deliveries are sent in a random order within groups of this many
    /// events (0 or 1: in order).
    pub shuffle_window: u32,
    /// Each delivery waits this long after its event happened.
    pub delay_ms: u64,
    /// Fraction of events (0.0–1.0) never delivered.
    pub drop_rate: f64,
    /// Seed of the random choices (drops, shuffles).
    pub seed: u64,
    /// Every API call (`/v1/…`) waits this long before it is answered: a slow Stripe.
    pub api_delay_ms: u64,
    /// Every API call answers 500 `api_error`: Stripe is down.
    pub api_errors: bool,
}

impl Faults {
    /// Rejects settings outside sane bounds.
    pub fn validate(&self) -> Result<(), ApiError> {
        let bad = |msg: &str, param: &str| Err(ApiError::invalid(msg, Some(param)));
        if !(0.0..=1.0).contains(&self.drop_rate) {
            return bad("drop_rate must be between 0 and 1.", "drop_rate");
        }
        if self.duplicates > 10 {
            return bad("duplicates must be at most 10.", "duplicates");
        }
        if self.shuffle_window > 1000 {
            return bad("shuffle_window must be at most 1000.", "shuffle_window");
        }
        if self.api_delay_ms > 60_000 {
            return bad("api_delay_ms must be at most 60000 (a minute).", "api_delay_ms");
        }
        if self.delay_ms > 600_000 {
            return bad("delay_ms must be at most 600000 (10 minutes).", "delay_ms");
        }
        Ok(())
    }
}

/// What happened to webhook deliveries since the sandbox started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryStats {
    /// Events queued for the endpoint (before faults).
    pub events: u64,
    /// HTTP attempts made (first tries, copies and retries).
    pub sent: u64,
    /// Attempts the endpoint answered with a 2xx.
    pub delivered: u64,
    /// Attempts that failed (non-2xx, unreachable, timeout).
    pub failed: u64,
    /// Extra copies queued by the `duplicates` fault.
    pub duplicated: u64,
    /// Events dropped by the `drop_rate` fault.
    pub dropped: u64,
    /// Deliveries abandoned after the retry schedule.
    pub given_up: u64,
}

/// splitmix64: small, fast and good enough for test choices.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The live fault settings, their random source and the counters.
#[derive(Debug)]
pub struct FaultState {
    pub faults: Faults,
    pub stats: DeliveryStats,
    rng: Rng,
}

impl FaultState {
    pub fn new(faults: Faults) -> Self {
        FaultState {
            rng: Rng(faults.seed),
            faults,
            stats: DeliveryStats::default(),
        }
    }

    /// New settings; the random source restarts from their seed.
    pub fn set(&mut self, faults: Faults) {
        self.rng = Rng(faults.seed);
        self.faults = faults;
    }
}

/// Applies the faults to deliveries queued since the last call. Returns
/// when to look again if a partial shuffle window is being held.
pub fn shape(st: &mut State, fs: &mut FaultState, now_ms: i64) -> Option<i64> {
    let fresh = st.deliveries.iter().filter(|d| !d.shaped).count();
    if fresh == 0 {
        return None;
    }
    let window = fs.faults.shuffle_window.max(1) as usize;
    let oldest = st
        .deliveries
        .iter()
        .filter(|d| !d.shaped)
        .map(|d| d.queued_ms)
        .min()
        .unwrap_or(now_ms);
    if fresh < window && now_ms < oldest + SHUFFLE_FLUSH_MS {
        return Some(oldest + SHUFFLE_FLUSH_MS);
    }
    let (new, mut kept): (Vec<PendingDelivery>, Vec<PendingDelivery>) =
        std::mem::take(&mut st.deliveries).into_iter().partition(|d| !d.shaped);
    let mut out = Vec::with_capacity(new.len());
    for mut d in new {
        fs.stats.events += 1;
        if fs.faults.drop_rate > 0.0 && fs.rng.unit() < fs.faults.drop_rate {
            fs.stats.dropped += 1;
            if let Some(ev) = st.events.iter_mut().rev().find(|e| e.id == d.event_id) {
                ev.pending_webhooks = ev.pending_webhooks.saturating_sub(1);
            }
            continue;
        }
        d.shaped = true;
        d.next_attempt_ms = d.queued_ms + fs.faults.delay_ms as i64;
        for _ in 0..fs.faults.duplicates {
            fs.stats.duplicated += 1;
            out.push(PendingDelivery {
                id: ids::random_token(16),
                ..d.clone()
            });
        }
        out.push(d);
    }
    if window > 1 {
        for chunk in out.chunks_mut(window * (1 + fs.faults.duplicates as usize)) {
            for i in (1..chunk.len()).rev() {
                let j = fs.rng.below(i + 1);
                chunk.swap(i, j);
            }
        }
    }
    kept.extend(out);
    st.deliveries = kept;
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventRequest;

    fn state_with_events(n: usize) -> State {
        let mut st = State::default();
        for i in 0..n {
            st.emit(
                "customer.created",
                serde_json::json!({"id": format!("cus_{i}")}),
                &EventRequest::default(),
                Some("http://127.0.0.1:9/hook"),
            );
        }
        st
    }

    #[test]
    fn no_faults_keeps_order_and_count() {
        let mut st = state_with_events(5);
        let before: Vec<String> = st.deliveries.iter().map(|d| d.event_id.clone()).collect();
        let mut fs = FaultState::new(Faults::default());
        assert_eq!(shape(&mut st, &mut fs, i64::MAX / 2), None);
        let after: Vec<String> = st.deliveries.iter().map(|d| d.event_id.clone()).collect();
        assert_eq!(before, after);
        assert_eq!(fs.stats.events, 5);
        assert!(st.deliveries.iter().all(|d| d.shaped));
    }

    #[test]
    fn drops_duplicates_and_shuffles_deterministically() {
        let run = |seed: u64| {
            let mut st = state_with_events(200);
            let emitted: Vec<String> = st.deliveries.iter().map(|d| d.event_id.clone()).collect();
            let mut fs = FaultState::new(Faults {
                duplicates: 1,
                shuffle_window: 10,
                drop_rate: 0.3,
                seed,
                ..Faults::default()
            });
            shape(&mut st, &mut fs, i64::MAX / 2);
            let sent: Vec<String> = st.deliveries.iter().map(|d| d.event_id.clone()).collect();
            (emitted, sent, fs.stats)
        };
        // Event ids are random: compare runs by position in emission order.
        let positions = |(emitted, sent, _): &(Vec<String>, Vec<String>, DeliveryStats)| -> Vec<usize> {
            sent.iter()
                .map(|id| emitted.iter().position(|e| e == id).unwrap())
                .collect()
        };
        let first = run(7);
        assert!(positions(&first) == positions(&run(7)), "same seed, same choices");
        assert!(positions(&first) != positions(&run(8)), "another seed, other choices");
        let (emitted, sent, stats) = first;
        assert_eq!(stats.events, 200);
        assert!((40..=80).contains(&stats.dropped), "about 30% dropped: {stats:?}");
        assert_eq!(stats.duplicated, 200 - stats.dropped);
        assert_eq!(sent.len() as u64, 2 * (200 - stats.dropped));
        for id in &sent {
            assert_eq!(sent.iter().filter(|x| *x == id).count(), 2, "each kept event twice");
        }
        let mut first_seen: Vec<&String> = Vec::new();
        for id in &sent {
            if !first_seen.contains(&id) {
                first_seen.push(id);
            }
        }
        let kept_in_order: Vec<&String> = emitted.iter().filter(|e| sent.contains(e)).collect();
        assert_ne!(first_seen, kept_in_order, "order is shuffled");
    }

    #[test]
    fn a_partial_shuffle_window_waits_then_flushes() {
        let mut st = state_with_events(3);
        let queued = st.deliveries[0].queued_ms;
        let mut fs = FaultState::new(Faults {
            shuffle_window: 10,
            ..Faults::default()
        });
        assert_eq!(shape(&mut st, &mut fs, queued), Some(queued + SHUFFLE_FLUSH_MS));
        assert!(st.deliveries.iter().all(|d| !d.shaped));
        assert_eq!(shape(&mut st, &mut fs, queued + SHUFFLE_FLUSH_MS), None);
        assert!(st.deliveries.iter().all(|d| d.shaped));
        assert!(Faults {
            drop_rate: 1.5,
            ..Faults::default()
        }
        .validate()
        .is_err());
    }
}
