//! Calendar dates (`YYYY-MM-DD`) without a time zone, and the clock that says
//! what today is.
//!
//! Decisions in the union carry a decision date and an effective date; both
//! are plain civil dates. Today is injected ([`Clock`]) so tests can run on
//! any date.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::ModelError;

/// A proleptic Gregorian date between year 1900 and 2200.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: i32,
    month: u8,
    day: u8,
}

impl Date {
    pub const MIN_YEAR: i32 = 1900;
    pub const MAX_YEAR: i32 = 2200;

    pub fn new(year: i32, month: u8, day: u8) -> Option<Date> {
        if !(Self::MIN_YEAR..=Self::MAX_YEAR).contains(&year) || !(1..=12).contains(&month) {
            return None;
        }
        if day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Date { year, month, day })
    }

    /// Parses `YYYY-MM-DD`; `field` names the input in the error. The error
    /// does not repeat the input: a birth date is personal data, and a
    /// spreadsheet with a shifted column puts a name where a date belongs.
    pub fn parse(field: &str, s: &str) -> Result<Date, ModelError> {
        s.trim().parse().map_err(|_| {
            ModelError::invalid(
                field,
                "expected a date YYYY-MM-DD between 1900 and 2200 (e.g. 2025-07-01)",
            )
        })
    }

    /// Like [`Date::parse`], but an empty string means "not given".
    pub fn parse_opt(field: &str, s: &str) -> Result<Option<Date>, ModelError> {
        if s.trim().is_empty() {
            Ok(None)
        } else {
            Date::parse(field, s).map(Some)
        }
    }

    pub fn year(self) -> i32 {
        self.year
    }
    pub fn month(self) -> u8 {
        self.month
    }
    pub fn day(self) -> u8 {
        self.day
    }

    /// Days since 1970-01-01 (negative before).
    pub fn days_since_epoch(self) -> i64 {
        // Howard Hinnant's days_from_civil.
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    pub fn from_days_since_epoch(z: i64) -> Date {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let y = yoe + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let y = (y + i64::from(m <= 2)) as i32;
        Date {
            year: y,
            month: m,
            day: d,
        }
    }

    /// The same day `years` later (29 February becomes 28 February).
    pub fn add_years(self, years: i32) -> Date {
        let year = self.year + years;
        let day = self.day.min(days_in_month(year, self.month));
        Date {
            year,
            month: self.month,
            day,
        }
    }
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

impl FromStr for Date {
    type Err = ();
    fn from_str(s: &str) -> Result<Date, ()> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(());
        }
        let num = |r: std::ops::Range<usize>| -> Result<u32, ()> {
            let part = &s[r];
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return Err(());
            }
            part.parse().map_err(|_| ())
        };
        let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        Date::new(y as i32, m as u8, d as u8).ok_or(())
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// What today is. Injected so that tests and simulations control time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Today's civil date in Vietnam (UTC+7).
    fn today(&self) -> Date;
    /// Milliseconds since the Unix epoch, for change times.
    fn now_millis(&self) -> i64;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn today(&self) -> Date {
        const VIETNAM_OFFSET_MS: i64 = 7 * 3600 * 1000;
        Date::from_days_since_epoch((self.now_millis() + VIETNAM_OFFSET_MS).div_euclid(86_400_000))
    }
    fn now_millis(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// A clock stopped at a given date, for tests.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub Date);

impl Clock for FixedClock {
    fn today(&self) -> Date {
        self.0
    }
    fn now_millis(&self) -> i64 {
        self.0.days_since_epoch() * 86_400_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let d: Date = "2025-07-01".parse().unwrap();
        assert_eq!(d.to_string(), "2025-07-01");
        assert!("2025-02-29".parse::<Date>().is_err());
        assert!("2024-02-29".parse::<Date>().is_ok());
        assert!("2025-7-01".parse::<Date>().is_err());
        assert!("1899-12-31".parse::<Date>().is_err());
        assert!("20x5-07-01".parse::<Date>().is_err());
    }

    #[test]
    fn epoch_days_round_trip() {
        for z in [-25_000, -1, 0, 1, 19_000, 20_270, 80_000] {
            let d = Date::from_days_since_epoch(z);
            assert_eq!(d.days_since_epoch(), z, "{d}");
        }
        assert_eq!(Date::new(1970, 1, 1).unwrap().days_since_epoch(), 0);
        assert_eq!(
            Date::from_days_since_epoch(20_270).to_string(),
            "2025-07-01"
        );
    }

    #[test]
    fn add_years_clamps_leap_day() {
        let d = Date::new(2008, 2, 29).unwrap();
        assert_eq!(d.add_years(15).to_string(), "2023-02-28");
    }

    #[test]
    fn parse_names_field() {
        let e = Date::parse("birth_date", "31/12/1990").unwrap_err();
        assert!(e.to_string().starts_with("birth_date: expected a date"));
        assert!(
            !e.to_string().contains("1990"),
            "the input is not repeated: {e}"
        );
    }
}
