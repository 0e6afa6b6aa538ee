//! Calendar arithmetic for report buckets (UTC): unix day numbers to dates and back, and
//! the start of the day, week (Monday) or month a day falls in.

use serde::{Deserialize, Serialize};

use creditd_store::SECONDS_PER_DAY;

/// How report figures are grouped over time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    #[default]
    Day,
    Week,
    Month,
}

impl Interval {
    pub const ALL: [Interval; 3] = [Interval::Day, Interval::Week, Interval::Month];

    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Day => "day",
            Interval::Week => "week",
            Interval::Month => "month",
        }
    }

    /// The first day (unix day number) of the bucket `day` falls in.
    pub fn bucket(self, day: i64) -> i64 {
        match self {
            Interval::Day => day,
            // Day 0 (1970-01-01) was a Thursday: Monday-based weeks start 3 days earlier.
            Interval::Week => (day + 3).div_euclid(7) * 7 - 3,
            Interval::Month => {
                let (y, m, _) = civil_from_days(day);
                days_from_civil(y, m, 1)
            }
        }
    }

    /// The bucket after the one starting at `start`.
    pub fn next(self, start: i64) -> i64 {
        match self {
            Interval::Day => start + 1,
            Interval::Week => start + 7,
            Interval::Month => {
                let (y, m, _) = civil_from_days(start);
                if m == 12 {
                    days_from_civil(y + 1, 1, 1)
                } else {
                    days_from_civil(y, m + 1, 1)
                }
            }
        }
    }
}

pub use creditd_domain::calendar::{civil_from_days, days_from_civil};

/// `2027-01-15`
pub fn format_day(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `2027-01-15 08:00 UTC`
pub fn format_time(unix: i64) -> String {
    let day = unix.div_euclid(SECONDS_PER_DAY);
    let secs = unix.rem_euclid(SECONDS_PER_DAY);
    format!("{} {:02}:{:02} UTC", format_day(day), secs / 3600, (secs % 3600) / 60)
}

/// Parses `YYYY-MM-DD` into a day number.
pub fn parse_day(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} is not a date such as 2027-01-15");
    let mut parts = text.trim().splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let (y, m, d): (i64, u32, u32) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || d == 0 {
        return Err(bad());
    }
    let day = days_from_civil(y, m, d);
    if civil_from_days(day) != (y, m, d) {
        return Err(bad());
    }
    Ok(day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_and_buckets() {
        assert_eq!(format_day(0), "1970-01-01");
        assert_eq!(parse_day("2024-02-29").map(format_day).unwrap(), "2024-02-29");
        assert!(parse_day("2023-02-29").is_err() && parse_day("2023-13-01").is_err() && parse_day("x").is_err());
        for day in -1000..30_000 {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
        let wed = parse_day("2027-01-13").unwrap();
        assert_eq!(format_day(Interval::Week.bucket(wed)), "2027-01-11");
        assert_eq!(
            format_day(Interval::Week.bucket(parse_day("2027-01-11").unwrap())),
            "2027-01-11"
        );
        assert_eq!(format_day(Interval::Month.bucket(wed)), "2027-01-01");
        assert_eq!(
            format_day(Interval::Month.next(parse_day("2027-12-01").unwrap())),
            "2028-01-01"
        );
        assert_eq!(format_time(1_800_000_000), "2027-01-15 08:00 UTC");
    }
}
