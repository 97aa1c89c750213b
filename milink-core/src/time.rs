//! Time: [`Timestamp`], calendar [`Date`], the [`Clock`] and [`Timer`] traits. The only place
//! that reads the OS clock ([`SystemClock`], [`SystemTimer`]); everything else receives time as a
//! value.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::names::{NameError, NameRule};

/// Milliseconds since the Unix epoch, UTC.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// A timestamp from milliseconds since the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Timestamp(ms)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating.
    pub fn plus(self, d: Duration) -> Self {
        Timestamp(
            self.0
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    /// The time from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// The calendar date (UTC) of this instant.
    pub fn date(self) -> Date {
        let days = i64::try_from(self.0 / 86_400_000).unwrap_or(i64::MAX);
        Date::from_days_since_epoch(days)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let date = self.date();
        let ms_of_day = self.0 % 86_400_000;
        let (h, m, s, ms) = (
            ms_of_day / 3_600_000,
            (ms_of_day / 60_000) % 60,
            (ms_of_day / 1000) % 60,
            ms_of_day % 1000,
        );
        write!(f, "{date}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
    }
}

/// A calendar date (proleptic Gregorian), e.g. a certificate's expiry date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

impl Date {
    /// A validated date; years 1753..=9999 (SQL Server `datetime` range).
    pub fn new(year: u16, month: u8, day: u8) -> Result<Self, NameError> {
        let err = || {
            NameError::new_public(
                "Date",
                &format!("{year:04}-{month:02}-{day:02}"),
                NameRule::UnknownValue {
                    accepted: "a calendar date between 1753-01-01 and 9999-12-31",
                },
            )
        };
        if !(1753..=9999).contains(&year) || !(1..=12).contains(&month) {
            return Err(err());
        }
        if day == 0 || day > days_in_month(year, month) {
            return Err(err());
        }
        Ok(Date { year, month, day })
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse_iso(value: &str) -> Result<Self, NameError> {
        let err = || {
            NameError::new_public(
                "Date",
                value,
                NameRule::UnknownValue {
                    accepted: "a date written YYYY-MM-DD",
                },
            )
        };
        let parts: Vec<&str> = value.split('-').collect();
        if parts.len() != 3 || parts[0].len() != 4 || parts[1].len() != 2 || parts[2].len() != 2 {
            return Err(err());
        }
        let y = parts[0].parse::<u16>().map_err(|_| err())?;
        let m = parts[1].parse::<u8>().map_err(|_| err())?;
        let d = parts[2].parse::<u8>().map_err(|_| err())?;
        Date::new(y, m, d)
    }

    /// Year.
    pub fn year(self) -> u16 {
        self.year
    }
    /// Month, 1..=12.
    pub fn month(self) -> u8 {
        self.month
    }
    /// Day of month.
    pub fn day(self) -> u8 {
        self.day
    }

    /// The date `days` days after the Unix epoch (clamped to the valid range).
    pub fn from_days_since_epoch(days: i64) -> Self {
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let y = yoe + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = if m <= 2 { y + 1 } else { y };
        let year = u16::try_from(y.clamp(1753, 9999)).unwrap_or(9999);
        Date {
            year,
            month: u8::try_from(m).unwrap_or(1),
            day: u8::try_from(d).unwrap_or(1),
        }
    }

    /// Days since the Unix epoch.
    pub fn days_since_epoch(self) -> i64 {
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let m = i64::from(self.month);
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let mp = if m > 2 { m - 3 } else { m + 9 };
        let doy = (153 * mp + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// Midnight UTC at the start of this date (the epoch for dates before it).
    pub fn start(self) -> Timestamp {
        let days = self.days_since_epoch().max(0);
        Timestamp(u64::try_from(days).unwrap_or(0).saturating_mul(86_400_000))
    }

    /// The date as SQL Server's `EXPIRY_DATE` reads it unambiguously: `YYYYMMDD`.
    pub fn to_sql_unseparated(self) -> String {
        format!("{:04}{:02}{:02}", self.year, self.month, self.day)
    }
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        _ => 28,
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Date::parse_iso(&s).map_err(serde::de::Error::custom)
    }
}

/// A source of the current time. The driver reads it; the lifecycle machine never does.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Timestamp(ms)
    }
}

/// A clock that can also wait. The session driver sleeps only through this, so the simulator's
/// virtual clock can stand in for the real one.
#[async_trait::async_trait]
pub trait Timer: Clock {
    /// Returns at or after `deadline` (immediately if it has passed).
    async fn sleep_until(&self, deadline: Timestamp);
}

/// The operating system's clock with tokio's sleep.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemTimer;

impl Clock for SystemTimer {
    fn now(&self) -> Timestamp {
        SystemClock.now()
    }
}

#[async_trait::async_trait]
impl Timer for SystemTimer {
    async fn sleep_until(&self, deadline: Timestamp) {
        let now = self.now();
        if deadline > now {
            tokio::time::sleep(deadline.since(now)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_through_days() {
        for days in [-3653_i64, -1, 0, 1, 59, 60, 10_957, 20_000, 2_932_896] {
            let d = Date::from_days_since_epoch(days);
            assert_eq!(d.days_since_epoch(), days, "{d}");
        }
        assert_eq!(Date::from_days_since_epoch(0).to_string(), "1970-01-01");
        assert_eq!(
            Timestamp::from_millis(951_782_400_000).date().to_string(),
            "2000-02-29"
        );
    }

    #[test]
    fn date_validation() {
        assert!(Date::new(2024, 2, 29).is_ok());
        assert!(Date::new(2023, 2, 29).is_err());
        assert!(Date::new(1900, 2, 29).is_err());
        assert!(Date::new(2026, 13, 1).is_err());
        assert!(Date::new(1752, 12, 31).is_err());
        assert_eq!(
            Date::parse_iso("2027-11-26").unwrap(),
            Date::new(2027, 11, 26).unwrap()
        );
        assert!(Date::parse_iso("2027-1-26").is_err());
        assert_eq!(
            Date::new(2027, 1, 5).unwrap().to_sql_unseparated(),
            "20270105"
        );
    }

    #[test]
    fn timestamp_display_is_iso() {
        assert_eq!(
            Timestamp::from_millis(1_000).to_string(),
            "1970-01-01T00:00:01.000Z"
        );
        let t = Timestamp::from_millis(10).plus(Duration::from_secs(60));
        assert_eq!(t.since(Timestamp::from_millis(10)), Duration::from_secs(60));
        assert_eq!(Timestamp::EPOCH.since(t), Duration::ZERO);
    }
}
