//! UTC calendar periods: the day or month a time falls in, for limits, budgets and the free
//! plan's monthly credits.

use serde::{Deserialize, Serialize};

pub const SECONDS_PER_DAY: i64 = 86_400;

/// A period a limit or budget counts over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Period {
    /// A UTC calendar day.
    Day,
    /// A UTC calendar month.
    Month,
    /// Never resets (budgets only).
    Total,
}

impl Period {
    pub const fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Month => "month",
            Period::Total => "total",
        }
    }

    pub fn parse(s: &str) -> Option<Period> {
        [Period::Day, Period::Month, Period::Total]
            .into_iter()
            .find(|p| p.as_str() == s)
    }

    /// `[start, end)` of the period `now` falls in; `Total` is `[0, None)`.
    pub fn window(self, now: i64) -> (i64, Option<i64>) {
        match self {
            Period::Day => {
                let start = now.div_euclid(SECONDS_PER_DAY) * SECONDS_PER_DAY;
                (start, Some(start + SECONDS_PER_DAY))
            }
            Period::Month => {
                let (start, end) = month(now);
                (start, Some(end))
            }
            Period::Total => (0, None),
        }
    }
}

/// `[start, end)` of the UTC calendar month `now` falls in.
pub fn month(now: i64) -> (i64, i64) {
    let (y, m, _) = civil_from_days(now.div_euclid(SECONDS_PER_DAY));
    let start = days_from_civil(y, m, 1) * SECONDS_PER_DAY;
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    (start, days_from_civil(ny, nm, 1) * SECONDS_PER_DAY)
}

/// `YYYY-MM` of the month `now` falls in.
pub fn month_label(now: i64) -> String {
    let (y, m, _) = civil_from_days(now.div_euclid(SECONDS_PER_DAY));
    format!("{y:04}-{m:02}")
}

/// Days since 1970-01-01 to (year, month 1–12, day 1–31), proleptic Gregorian (Howard
/// Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The inverse of [`civil_from_days`].
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn months_and_days() {
        // 2027-01-15 08:00 UTC.
        let t = 1_800_000_000;
        assert_eq!(month_label(t), "2027-01");
        let (start, end) = month(t);
        assert_eq!(civil_from_days(start / SECONDS_PER_DAY), (2027, 1, 1));
        assert_eq!(civil_from_days(end / SECONDS_PER_DAY), (2027, 2, 1));
        assert_eq!(month(end - 1), (start, end));
        assert_eq!(month(end).0, end);
        let (day, next) = Period::Day.window(t);
        assert_eq!((day % SECONDS_PER_DAY, next.unwrap() - day), (0, SECONDS_PER_DAY));
        assert_eq!(Period::Total.window(t), (0, None));
        // December rolls into the next year.
        let dec = days_from_civil(2026, 12, 31) * SECONDS_PER_DAY;
        assert_eq!(civil_from_days(month(dec).1 / SECONDS_PER_DAY), (2027, 1, 1));
    }

    proptest! {
        #[test]
        fn a_time_lies_in_its_windows(t in 0i64..8_000_000_000) {
            for period in [Period::Day, Period::Month] {
                let (start, end) = period.window(t);
                prop_assert!(start <= t && t < end.unwrap());
                prop_assert_eq!(period.window(start), (start, end));
                prop_assert_eq!(period.window(end.unwrap()).0, end.unwrap());
            }
            let days = t / SECONDS_PER_DAY;
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
