//! Result rows as milink reads them, free of any driver's types: a [`Row`] of [`Value`]s by
//! column name, with typed getters that say which column was missing or of the wrong type.
//!
//! The TDS adapter converts each driver row into a [`Row`]; the probe parsers
//! ([`super::parse`]) read only [`Row`]s, so they are tested on hand-written rowsets.

use std::fmt;

use crate::names::Lsn;
use crate::time::{Date, Timestamp};

/// A `datetime`/`datetime2`/`smalldatetime` value (no time zone; the link's DMVs and `msdb`
/// store UTC or server-local time as the column documents), at 100 ns precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime {
    /// Days since 1970-01-01 (negative before it; `datetime2` starts at 0001-01-01).
    pub days: i64,
    /// 100-nanosecond ticks since midnight (0 ..= 863 999 999 999).
    pub ticks: u64,
}

impl DateTime {
    /// Ticks in a day.
    pub const TICKS_PER_DAY: u64 = 864_000_000_000;

    /// A date-time from days since 1970-01-01 and 100 ns ticks since midnight; `None` when
    /// `ticks` is a day or more.
    pub fn new(days: i64, ticks: u64) -> Option<DateTime> {
        (ticks < Self::TICKS_PER_DAY).then_some(DateTime { days, ticks })
    }

    /// A date-time from a calendar date and a time of day.
    pub fn from_parts(date: Date, hour: u8, minute: u8, second: u8, millis: u16) -> DateTime {
        let ticks = ((u64::from(hour) * 3600 + u64::from(minute) * 60 + u64::from(second)) * 1000
            + u64::from(millis))
            * 10_000;
        DateTime {
            days: date.days_since_epoch(),
            ticks: ticks.min(Self::TICKS_PER_DAY - 1),
        }
    }

    /// The instant as a [`Timestamp`] (milliseconds, truncated); `None` before 1970.
    pub fn to_timestamp(self) -> Option<Timestamp> {
        let days = u64::try_from(self.days).ok()?;
        let millis = days
            .checked_mul(86_400_000)?
            .checked_add(self.ticks / 10_000)?;
        Some(Timestamp::from_millis(millis))
    }

    /// The calendar date.
    pub fn date(self) -> Date {
        Date::from_days_since_epoch(self.days)
    }
}

impl From<Timestamp> for DateTime {
    fn from(t: Timestamp) -> DateTime {
        let ms = t.as_millis();
        DateTime {
            days: i64::try_from(ms / 86_400_000).unwrap_or(i64::MAX),
            ticks: (ms % 86_400_000) * 10_000,
        }
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.ticks / 10_000_000;
        let frac = self.ticks % 10_000_000;
        write!(
            f,
            "{} {:02}:{:02}:{:02}.{frac:07}",
            self.date(),
            secs / 3600,
            (secs / 60) % 60,
            secs % 60
        )
    }
}

/// One value of a result row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// SQL NULL, of any type.
    Null,
    /// `bit`.
    Bool(bool),
    /// `tinyint`, `smallint`, `int`, `bigint`.
    Int(i64),
    /// `decimal`/`numeric(p, s)`: `value / 10^scale`. `numeric(25,0)` LSNs have scale 0.
    Numeric {
        /// The unscaled value.
        value: i128,
        /// Digits after the decimal point.
        scale: u8,
    },
    /// `char`, `varchar`, `nchar`, `nvarchar`, `sysname`, `xml` as text.
    String(String),
    /// `binary`, `varbinary`, `image`.
    Bytes(Vec<u8>),
    /// `datetime`, `datetime2`, `smalldatetime` (a `date` has ticks 0).
    DateTime(DateTime),
    /// `uniqueidentifier`, its bytes in the order of its text form (RFC 4122), as
    /// [`Row::opt_guid`] reads a string.
    Guid([u8; 16]),
}

impl Value {
    /// The SQL type family, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Bool(_) => "bit",
            Value::Int(_) => "integer",
            Value::Numeric { .. } => "numeric",
            Value::String(_) => "string",
            Value::Bytes(_) => "binary",
            Value::DateTime(_) => "datetime",
            Value::Guid(_) => "uniqueidentifier",
        }
    }

    /// Whether the value is NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::String(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::String(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}

impl From<i32> for Value {
    fn from(v: i32) -> Value {
        Value::Int(i64::from(v))
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        Value::Bytes(v)
    }
}

impl From<DateTime> for Value {
    fn from(v: DateTime) -> Value {
        Value::DateTime(v)
    }
}

impl From<Lsn> for Value {
    fn from(v: Lsn) -> Value {
        // An Lsn is at most 10^25 - 1, far inside i128.
        Value::Numeric {
            value: i128::try_from(v.value()).unwrap_or(i128::MAX),
            scale: 0,
        }
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

/// Why a value could not be read from a row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RowError {
    /// The row has no such column.
    #[error("column {column} is missing (the row has: {available})")]
    MissingColumn {
        /// The column asked for.
        column: String,
        /// The columns the row has, comma separated.
        available: String,
    },
    /// The column holds NULL where a value is required.
    #[error("column {column} is NULL where a value is required ({expected})")]
    Null {
        /// The column.
        column: String,
        /// What was expected.
        expected: &'static str,
    },
    /// The column holds a value of another type.
    #[error("column {column} holds {found}, expected {expected}")]
    WrongType {
        /// The column.
        column: String,
        /// What was expected.
        expected: &'static str,
        /// The type found.
        found: &'static str,
    },
    /// The value has the right type but not a usable value.
    #[error("column {column}: {value} is not {expected}")]
    Invalid {
        /// The column.
        column: String,
        /// What was expected.
        expected: &'static str,
        /// The value, as text.
        value: String,
    },
}

/// One result row: values by column name, in the order of the result set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Row {
    cells: Vec<(String, Value)>,
}

impl Row {
    /// An empty row.
    pub fn new() -> Row {
        Row::default()
    }

    /// The row with one more column.
    pub fn with(mut self, column: impl Into<String>, value: impl Into<Value>) -> Row {
        self.push(column, value);
        self
    }

    /// Appends a column.
    pub fn push(&mut self, column: impl Into<String>, value: impl Into<Value>) {
        self.cells.push((column.into(), value.into()));
    }

    /// The column names, in order.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.cells.iter().map(|(c, _)| c.as_str())
    }

    /// The value of `column` (names compare case-insensitively, as SQL Server's do).
    pub fn get(&self, column: &str) -> Result<&Value, RowError> {
        self.cells
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(column))
            .map(|(_, v)| v)
            .ok_or_else(|| RowError::MissingColumn {
                column: column.to_owned(),
                available: self.columns().collect::<Vec<_>>().join(", "),
            })
    }

    fn wrong(column: &str, expected: &'static str, found: &Value) -> RowError {
        RowError::WrongType {
            column: column.to_owned(),
            expected,
            found: found.type_name(),
        }
    }

    fn required<T>(
        column: &str,
        expected: &'static str,
        value: Result<Option<T>, RowError>,
    ) -> Result<T, RowError> {
        value?.ok_or_else(|| RowError::Null {
            column: column.to_owned(),
            expected,
        })
    }

    /// A string, or `None` for NULL.
    pub fn opt_str(&self, column: &str) -> Result<Option<&str>, RowError> {
        match self.get(column)? {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            other => Err(Row::wrong(column, "string", other)),
        }
    }

    /// A string that must not be NULL.
    pub fn str(&self, column: &str) -> Result<&str, RowError> {
        Row::required(column, "string", self.opt_str(column))
    }

    /// A `bit` (an integer 0 or 1 is accepted too), or `None` for NULL.
    pub fn opt_bool(&self, column: &str) -> Result<Option<bool>, RowError> {
        match self.get(column)? {
            Value::Null => Ok(None),
            Value::Bool(b) => Ok(Some(*b)),
            Value::Int(0) => Ok(Some(false)),
            Value::Int(1) => Ok(Some(true)),
            Value::Int(n) => Err(RowError::Invalid {
                column: column.to_owned(),
                expected: "a bit (0 or 1)",
                value: n.to_string(),
            }),
            other => Err(Row::wrong(column, "bit", other)),
        }
    }

    /// A `bit` that must not be NULL.
    pub fn bool(&self, column: &str) -> Result<bool, RowError> {
        Row::required(column, "bit", self.opt_bool(column))
    }

    /// An integer (a `numeric` with no fraction is accepted), or `None` for NULL.
    pub fn opt_i64(&self, column: &str) -> Result<Option<i64>, RowError> {
        match self.get(column)? {
            Value::Null => Ok(None),
            Value::Int(n) => Ok(Some(*n)),
            v @ Value::Numeric { .. } => {
                let whole = whole_number(column, v)?;
                i64::try_from(whole)
                    .map(Some)
                    .map_err(|_| RowError::Invalid {
                        column: column.to_owned(),
                        expected: "a 64-bit integer",
                        value: whole.to_string(),
                    })
            }
            other => Err(Row::wrong(column, "integer", other)),
        }
    }

    /// An integer that must not be NULL.
    pub fn i64(&self, column: &str) -> Result<i64, RowError> {
        Row::required(column, "integer", self.opt_i64(column))
    }

    /// A non-negative integer, or `None` for NULL.
    pub fn opt_u64(&self, column: &str) -> Result<Option<u64>, RowError> {
        match self.opt_i64(column)? {
            None => Ok(None),
            Some(n) => u64::try_from(n).map(Some).map_err(|_| RowError::Invalid {
                column: column.to_owned(),
                expected: "a non-negative integer",
                value: n.to_string(),
            }),
        }
    }

    /// A non-negative integer that must not be NULL.
    pub fn u64(&self, column: &str) -> Result<u64, RowError> {
        Row::required(column, "non-negative integer", self.opt_u64(column))
    }

    /// A `numeric` as its unscaled value and scale (an integer has scale 0), or `None`.
    pub fn opt_numeric(&self, column: &str) -> Result<Option<(i128, u8)>, RowError> {
        match self.get(column)? {
            Value::Null => Ok(None),
            Value::Numeric { value, scale } => Ok(Some((*value, *scale))),
            Value::Int(n) => Ok(Some((i128::from(*n), 0))),
            other => Err(Row::wrong(column, "numeric", other)),
        }
    }

    /// Binary data, or `None` for NULL.
    pub fn opt_bytes(&self, column: &str) -> Result<Option<&[u8]>, RowError> {
        match self.get(column)? {
            Value::Null => Ok(None),
            Value::Bytes(b) => Ok(Some(b)),
            other => Err(Row::wrong(column, "binary", other)),
        }
    }

    /// Binary data that must not be NULL.
    pub fn bytes(&self, column: &str) -> Result<&[u8], RowError> {
        Row::required(column, "binary", self.opt_bytes(column))
    }

    /// A date-time, or `None` for NULL.
    pub fn opt_datetime(&self, column: &str) -> Result<Option<DateTime>, RowError> {
        match self.get(column)? {
            Value::Null => Ok(None),
            Value::DateTime(d) => Ok(Some(*d)),
            other => Err(Row::wrong(column, "datetime", other)),
        }
    }

    /// A date-time that must not be NULL.
    pub fn datetime(&self, column: &str) -> Result<DateTime, RowError> {
        Row::required(column, "datetime", self.opt_datetime(column))
    }

    /// A date-time as a [`Timestamp`], or `None` for NULL; an instant before 1970 is an error.
    pub fn opt_timestamp(&self, column: &str) -> Result<Option<Timestamp>, RowError> {
        match self.opt_datetime(column)? {
            None => Ok(None),
            Some(d) => d.to_timestamp().map(Some).ok_or_else(|| RowError::Invalid {
                column: column.to_owned(),
                expected: "an instant after 1970-01-01",
                value: d.to_string(),
            }),
        }
    }

    /// A date-time as a [`Timestamp`] that must not be NULL.
    pub fn timestamp(&self, column: &str) -> Result<Timestamp, RowError> {
        Row::required(column, "datetime", self.opt_timestamp(column))
    }

    /// A `uniqueidentifier` as its 16 bytes (a 36-character string is accepted too), or
    /// `None` for NULL.
    pub fn opt_guid(&self, column: &str) -> Result<Option<[u8; 16]>, RowError> {
        match self.get(column)? {
            Value::Null => Ok(None),
            Value::Guid(g) => Ok(Some(*g)),
            Value::String(s) => parse_guid(s).map(Some).ok_or_else(|| RowError::Invalid {
                column: column.to_owned(),
                expected: "a uniqueidentifier",
                value: s.clone(),
            }),
            other => Err(Row::wrong(column, "uniqueidentifier", other)),
        }
    }

    /// An LSN: `numeric(25,0)`, an integer, or the decimal string the probes convert it to
    /// (`CONVERT(varchar(25), …)`); `None` for NULL. Negative values, fractions and values
    /// beyond numeric(25,0) are errors.
    pub fn opt_lsn(&self, column: &str) -> Result<Option<Lsn>, RowError> {
        let invalid = |value: String| RowError::Invalid {
            column: column.to_owned(),
            expected: "an LSN (numeric(25,0))",
            value,
        };
        match self.get(column)? {
            Value::Null => Ok(None),
            Value::String(s) => Lsn::parse(s).map(Some).map_err(|_| invalid(s.clone())),
            v @ (Value::Int(_) | Value::Numeric { .. }) => {
                let whole = whole_number(column, v)?;
                u128::try_from(whole)
                    .ok()
                    .and_then(|n| Lsn::new(n).ok())
                    .map(Some)
                    .ok_or_else(|| invalid(whole.to_string()))
            }
            other => Err(Row::wrong(column, "numeric(25,0)", other)),
        }
    }

    /// An LSN that must not be NULL.
    pub fn lsn(&self, column: &str) -> Result<Lsn, RowError> {
        Row::required(column, "numeric(25,0)", self.opt_lsn(column))
    }
}

/// The integer value of an `Int` or of a `Numeric` whose fraction is zero.
fn whole_number(column: &str, value: &Value) -> Result<i128, RowError> {
    match value {
        Value::Int(n) => Ok(i128::from(*n)),
        Value::Numeric { value, scale } => {
            let divisor = 10i128.checked_pow(u32::from(*scale));
            match divisor {
                Some(d) if value % d == 0 => Ok(value / d),
                _ => Err(RowError::Invalid {
                    column: column.to_owned(),
                    expected: "a whole number",
                    value: format!("{value}e-{scale}"),
                }),
            }
        }
        other => Err(Row::wrong(column, "integer", other)),
    }
}

/// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` into bytes in text order.
fn parse_guid(s: &str) -> Option<[u8; 16]> {
    let s = s.trim().trim_start_matches('{').trim_end_matches('}');
    let groups: Vec<&str> = s.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    if lengths != [8, 4, 4, 4, 12] {
        return None;
    }
    let hex: String = groups.concat();
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Row {
        Row::new()
            .with("name", "ToyStore")
            .with("is_local", true)
            .with("bit_as_int", 1i64)
            .with("count", 42i64)
            .with("negative", -3i64)
            .with("nothing", Value::Null)
            .with(
                "lsn",
                Value::Numeric {
                    value: 71_000_009_408_100_001,
                    scale: 0,
                },
            )
            .with("lsn_text", "71000009408100001")
            .with(
                "fraction",
                Value::Numeric {
                    value: 12_345,
                    scale: 2,
                },
            )
            .with(
                "whole_scaled",
                Value::Numeric {
                    value: 1_200,
                    scale: 2,
                },
            )
            .with("blob", vec![0x30u8, 0x82])
            .with(
                "when",
                DateTime::from_parts(Date::new(2026, 11, 26).unwrap(), 6, 41, 3, 250),
            )
            .with(
                "ancient",
                DateTime::from_parts(Date::new(1900, 1, 1).unwrap(), 0, 0, 0, 0),
            )
            .with("guid", Value::Guid([7; 16]))
            .with("guid_text", "6F9619FF-8B86-D011-B42D-00C04FC964FF")
    }

    #[test]
    fn typed_getters_read_their_types() {
        let r = row();
        assert_eq!(r.str("name").unwrap(), "ToyStore");
        assert_eq!(r.str("NAME").unwrap(), "ToyStore", "case-insensitive");
        assert!(r.bool("is_local").unwrap());
        assert!(r.bool("bit_as_int").unwrap());
        assert_eq!(r.i64("count").unwrap(), 42);
        assert_eq!(r.u64("count").unwrap(), 42);
        assert_eq!(r.i64("whole_scaled").unwrap(), 12);
        assert_eq!(r.opt_numeric("fraction").unwrap(), Some((12_345, 2)));
        assert_eq!(r.bytes("blob").unwrap(), &[0x30, 0x82]);
        assert_eq!(r.lsn("lsn").unwrap().value(), 71_000_009_408_100_001);
        assert_eq!(r.lsn("lsn_text").unwrap(), r.lsn("lsn").unwrap());
        assert_eq!(
            r.timestamp("when").unwrap().to_string(),
            "2026-11-26T06:41:03.250Z"
        );
        assert_eq!(r.opt_guid("guid").unwrap(), Some([7; 16]));
        assert_eq!(
            r.opt_guid("guid_text").unwrap().unwrap()[..4],
            [0x6F, 0x96, 0x19, 0xFF]
        );
    }

    #[test]
    fn null_reads_as_none_and_is_an_error_where_required() {
        let r = row();
        assert_eq!(r.opt_str("nothing").unwrap(), None);
        assert_eq!(r.opt_bool("nothing").unwrap(), None);
        assert_eq!(r.opt_i64("nothing").unwrap(), None);
        assert_eq!(r.opt_u64("nothing").unwrap(), None);
        assert_eq!(r.opt_lsn("nothing").unwrap(), None);
        assert_eq!(r.opt_bytes("nothing").unwrap(), None);
        assert_eq!(r.opt_timestamp("nothing").unwrap(), None);
        assert_eq!(r.opt_guid("nothing").unwrap(), None);
        let e = r.lsn("nothing").unwrap_err();
        assert_eq!(
            e,
            RowError::Null {
                column: "nothing".to_owned(),
                expected: "numeric(25,0)"
            }
        );
        assert_eq!(
            e.to_string(),
            "column nothing is NULL where a value is required (numeric(25,0))"
        );
        assert!(matches!(r.str("nothing"), Err(RowError::Null { .. })));
    }

    #[test]
    fn a_missing_column_names_what_the_row_has() {
        let r = Row::new().with("a", 1i64).with("b", "x");
        let e = r.i64("c").unwrap_err();
        assert_eq!(e.to_string(), "column c is missing (the row has: a, b)");
    }

    #[test]
    fn a_wrong_type_says_what_was_found() {
        let r = row();
        assert_eq!(
            r.i64("name").unwrap_err().to_string(),
            "column name holds string, expected integer"
        );
        assert!(matches!(
            r.str("count"),
            Err(RowError::WrongType {
                found: "integer",
                ..
            })
        ));
        assert!(matches!(r.bytes("name"), Err(RowError::WrongType { .. })));
        assert!(matches!(
            r.datetime("count"),
            Err(RowError::WrongType { .. })
        ));
        assert!(matches!(r.lsn("blob"), Err(RowError::WrongType { .. })));
        assert!(matches!(r.bool("count"), Err(RowError::Invalid { .. })));
        assert!(matches!(r.u64("negative"), Err(RowError::Invalid { .. })));
        assert!(matches!(r.i64("fraction"), Err(RowError::Invalid { .. })));
        assert!(matches!(
            r.timestamp("ancient"),
            Err(RowError::Invalid { .. })
        ));
        assert!(matches!(r.opt_guid("name"), Err(RowError::Invalid { .. })));
    }

    #[test]
    fn numeric_25_0_becomes_an_lsn_at_the_extremes() {
        let max = 9_999_999_999_999_999_999_999_999i128;
        for (value, expected) in [(0i128, 0u128), (1, 1), (max, max as u128)] {
            let r = Row::new()
                .with("lsn", Value::Numeric { value, scale: 0 })
                .with("text", value.to_string());
            assert_eq!(r.lsn("lsn").unwrap().value(), expected);
            assert_eq!(r.lsn("text").unwrap().value(), expected);
        }
        assert_eq!(
            Row::new().with("lsn", Lsn::MAX).lsn("lsn").unwrap(),
            Lsn::MAX
        );
        for bad in [
            Value::Numeric {
                value: max + 1,
                scale: 0,
            },
            Value::Numeric {
                value: -1,
                scale: 0,
            },
            Value::Numeric {
                value: 15,
                scale: 1,
            },
            Value::Int(-1),
            Value::String("10000000000000000000000000".to_owned()),
            Value::String("-5".to_owned()),
        ] {
            let r = Row::new().with("lsn", bad.clone());
            assert!(
                matches!(r.lsn("lsn"), Err(RowError::Invalid { .. })),
                "{bad:?}"
            );
        }
        // A scale with zero fraction is still a whole LSN.
        let r = Row::new().with(
            "lsn",
            Value::Numeric {
                value: 420,
                scale: 1,
            },
        );
        assert_eq!(r.lsn("lsn").unwrap().value(), 42);
    }

    #[test]
    fn date_times_convert_both_ways() {
        let t = Timestamp::from_millis(1_764_139_263_250);
        let d = DateTime::from(t);
        assert_eq!(d.to_timestamp(), Some(t));
        assert_eq!(d.to_string(), "2025-11-26 06:41:03.2500000");
        assert_eq!(DateTime::new(0, DateTime::TICKS_PER_DAY), None);
        assert_eq!(
            DateTime::new(-1, 0).unwrap().to_timestamp(),
            None,
            "before the epoch"
        );
        assert_eq!(
            DateTime::new(0, 0).unwrap().to_timestamp(),
            Some(Timestamp::EPOCH)
        );
    }
}
