//! The sandbox clock: wall-clock time plus an offset that only moves
//! forward. One clock for the whole sandbox (simpler for creditd than
//! Stripe's per-customer test clocks): advancing it with
//! [`crate::SandboxHandle::advance_clock`] or `POST /_sandbox/clock/advance`
//! runs every renewal, payment retry and period end it passes, in order.
//!
//! Object timestamps (`created`, periods) and event `created` read this
//! clock; delivery and timer schedules use the wall clock.

use crate::ids;
use crate::state::State;

/// Seconds in a day.
pub const DAY_S: i64 = 24 * 3600;

impl State {
    /// Unix seconds on the sandbox clock.
    pub fn now(&self) -> i64 {
        self.clock_frozen_at
            .unwrap_or_else(|| ids::now_unix() + self.clock_offset_s)
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date (year, month 1–12, day 1–31) of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    days_from_civil(ny, nm, 1) - days_from_civil(y, m, 1)
}

/// `t` plus `months` calendar months, keeping the time of day and clamping
/// the day to the month's length (Jan 31 + 1 month = Feb 28/29), as Stripe
/// bills.
pub fn add_months(t: i64, months: i64) -> i64 {
    let (days, secs) = (t.div_euclid(DAY_S), t.rem_euclid(DAY_S));
    let (y, m, d) = civil_from_days(days);
    let total = y * 12 + (m - 1) + months;
    let (ny, nm) = (total.div_euclid(12), total.rem_euclid(12) + 1);
    let nd = d.min(days_in_month(ny, nm));
    days_from_civil(ny, nm, nd) * DAY_S + secs
}

/// The end of billing period number `n` (0 = the first) of a subscription
/// anchored at `anchor` with the given interval. Periods are computed from
/// the anchor so that month ends do not drift.
pub fn period_end(anchor: i64, interval: &str, count: i64, n: i64) -> i64 {
    let k = (n + 1) * count;
    match interval {
        "day" => anchor + k * DAY_S,
        "week" => anchor + k * 7 * DAY_S,
        "year" => add_months(anchor, 12 * k),
        _ => add_months(anchor, k),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_and_month_arithmetic() {
        for days in [-1000, 0, 59, 60, 11_016, 20_000, 30_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        // 2024-01-31 12:00 UTC + 1 month = 2024-02-29 12:00 (leap year).
        let jan31 = days_from_civil(2024, 1, 31) * DAY_S + 12 * 3600;
        assert_eq!(add_months(jan31, 1), days_from_civil(2024, 2, 29) * DAY_S + 12 * 3600);
        assert_eq!(add_months(jan31, 13), days_from_civil(2025, 2, 28) * DAY_S + 12 * 3600);
        // Anchored periods come back to the 31st.
        assert_eq!(
            period_end(jan31, "month", 1, 1),
            days_from_civil(2024, 3, 31) * DAY_S + 12 * 3600
        );
        assert_eq!(
            period_end(jan31, "year", 1, 0),
            days_from_civil(2025, 1, 31) * DAY_S + 12 * 3600
        );
        assert_eq!(period_end(0, "week", 2, 0), 14 * DAY_S);
        assert_eq!(period_end(0, "day", 1, 2), 3 * DAY_S);
    }
}
