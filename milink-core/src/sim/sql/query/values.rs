//! Values: SQL Server's types named in `CAST`/`CONVERT`, conversions between them, comparison
//! with three-valued logic, and the ordering `ORDER BY`, `GROUP BY` and `UNION` use.

use std::cmp::Ordering;

use crate::sim::tds::{SqlType, Value};

use super::errors::{conversion_failed, syntax_error};
use crate::sim::tds::SqlError;

/// The [`SqlType`] of a type name as written in `CAST(x AS t)` / `CONVERT(t, x)`: `nvarchar(n)`,
/// `nvarchar(max)`, `varchar(n)`, `varbinary(n)`, `int`, `bigint`, `smallint`, `tinyint`,
/// `bit`, `sysname` (`nvarchar(128)`), `datetime`, `datetime2(n)`, `numeric(p,s)`/`decimal(p,s)`,
/// `uniqueidentifier`. `nvarchar`/`varchar` without a length are 30 characters, as in `CAST`.
pub fn parse_type(text: &str) -> Result<SqlType, SqlError> {
    let lower: String = text
        .to_ascii_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let (base, args) = match lower.split_once('(') {
        Some((b, rest)) => (b.to_owned(), Some(rest.trim_end_matches(')').to_owned())),
        None => (lower.clone(), None),
    };
    let base = base.trim_matches(|c| c == '[' || c == ']');
    let length = |default: u16, limit: u16| -> Result<Option<u16>, SqlError> {
        match args.as_deref() {
            None => Ok(Some(default)),
            Some("max") => Ok(None),
            Some(n) => n
                .parse::<u16>()
                .ok()
                .filter(|n| (1..=limit).contains(n))
                .map(Some)
                .ok_or_else(|| syntax_error(text)),
        }
    };
    Ok(match base {
        "nvarchar" | "nchar" => SqlType::NVarChar(length(30, 4000)?),
        "varchar" | "char" => SqlType::VarChar(length(30, 8000)?),
        "varbinary" | "binary" => SqlType::VarBinary(length(30, 8000)?),
        "sysname" => SqlType::NVarChar(Some(128)),
        "int" | "integer" => SqlType::Int,
        "bigint" => SqlType::BigInt,
        "smallint" => SqlType::SmallInt,
        "tinyint" => SqlType::TinyInt,
        "bit" => SqlType::Bit,
        "datetime" | "smalldatetime" => SqlType::DateTime,
        "datetime2" => SqlType::DateTime2(
            args.as_deref()
                .map(|a| a.parse::<u8>().ok().filter(|s| *s <= 7))
                .unwrap_or(Some(7))
                .ok_or_else(|| syntax_error(text))?,
        ),
        "uniqueidentifier" => SqlType::UniqueIdentifier,
        "numeric" | "decimal" => {
            let (p, s) = match args.as_deref() {
                None => (18, 0),
                Some(a) => {
                    let mut it = a.split(',');
                    let p = it.next().and_then(|p| p.parse::<u8>().ok());
                    let s = it.next().map_or(Some(0), |s| s.parse::<u8>().ok());
                    match (p, s) {
                        (Some(p), Some(s)) if (1..=38).contains(&p) && s <= p => (p, s),
                        _ => return Err(syntax_error(text)),
                    }
                }
            };
            SqlType::Numeric {
                precision: p,
                scale: s,
            }
        }
        _ => {
            return Err(SqlError::new(
                243,
                16,
                format!("Type {text} is not a defined system type."),
            ));
        }
    })
}

/// The SQL Server name of a type, for error messages.
pub fn type_name(ty: &SqlType) -> String {
    match ty {
        SqlType::NVarChar(_) => "nvarchar".into(),
        SqlType::VarChar(_) => "varchar".into(),
        SqlType::VarBinary(_) => "varbinary".into(),
        SqlType::Numeric { .. } => "numeric".into(),
        SqlType::Int => "int".into(),
        SqlType::BigInt => "bigint".into(),
        SqlType::SmallInt => "smallint".into(),
        SqlType::TinyInt => "tinyint".into(),
        SqlType::Bit => "bit".into(),
        SqlType::DateTime => "datetime".into(),
        SqlType::DateTime2(_) => "datetime2".into(),
        SqlType::UniqueIdentifier => "uniqueidentifier".into(),
    }
}

/// A value's integer, for the integer and bit types (and numerics of scale 0).
pub fn as_int(v: &Value) -> Option<i128> {
    match v {
        Value::Int(i) => Some(i128::from(*i)),
        Value::BigInt(i) => Some(i128::from(*i)),
        Value::SmallInt(i) => Some(i128::from(*i)),
        Value::TinyInt(i) => Some(i128::from(*i)),
        Value::Bit(b) => Some(i128::from(*b)),
        Value::Numeric { value, scale: 0 } => Some(*value),
        _ => None,
    }
}

/// A numeric value as (unscaled, scale).
fn as_decimal(v: &Value) -> Option<(i128, u8)> {
    match v {
        Value::Numeric { value, scale } => Some((*value, *scale)),
        other => as_int(other).map(|i| (i, 0)),
    }
}

/// The decimal text of a numeric: `1234` scale 2 is `12.34`.
fn decimal_text(value: i128, scale: u8) -> String {
    if scale == 0 {
        return value.to_string();
    }
    let digits = value.unsigned_abs().to_string();
    let scale = usize::from(scale);
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{}{int}.{frac}", if value < 0 { "-" } else { "" })
}

/// The text of a value as `CONVERT(nvarchar, …)` gives it.
pub fn to_text(v: &Value) -> Option<String> {
    Some(match v {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        Value::Binary(b) => b.iter().map(|x| char::from(*x)).collect(),
        Value::Numeric { value, scale } => decimal_text(*value, *scale),
        Value::Int(_) | Value::BigInt(_) | Value::SmallInt(_) | Value::TinyInt(_) => {
            as_int(v).unwrap_or_default().to_string()
        }
        Value::Bit(b) => u8::from(*b).to_string(),
        Value::DateTime(ts) => ts.to_string(),
        Value::Guid(g) => g
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let dash = matches!(i, 4 | 6 | 8 | 10);
                format!("{}{b:02X}", if dash { "-" } else { "" })
            })
            .collect(),
    })
}

fn parse_int_text(s: &str) -> Option<i128> {
    s.trim().parse::<i128>().ok()
}

fn fits(v: i128, ty: &SqlType) -> bool {
    match ty {
        SqlType::Int => i32::try_from(v).is_ok(),
        SqlType::BigInt => i64::try_from(v).is_ok(),
        SqlType::SmallInt => i16::try_from(v).is_ok(),
        SqlType::TinyInt => u8::try_from(v).is_ok(),
        _ => true,
    }
}

fn int_value(v: i128, ty: &SqlType) -> Option<Value> {
    Some(match ty {
        SqlType::Int => Value::Int(i32::try_from(v).ok()?),
        SqlType::BigInt => Value::BigInt(i64::try_from(v).ok()?),
        SqlType::SmallInt => Value::SmallInt(i16::try_from(v).ok()?),
        SqlType::TinyInt => Value::TinyInt(u8::try_from(v).ok()?),
        SqlType::Bit => Value::Bit(v != 0),
        _ => return None,
    })
}

/// `CAST(v AS ty)`: SQL Server's conversions between the types the simulator uses. A string
/// that is not a number converted to a number is error 245; an integer out of the target's
/// range is error 8115; a conversion SQL Server does not allow is error 529.
pub fn convert(v: &Value, ty: &SqlType) -> Result<Value, SqlError> {
    if matches!(v, Value::Null) {
        return Ok(Value::Null);
    }
    let not_allowed = || {
        SqlError::new(
            529,
            16,
            format!(
                "Explicit conversion from data type {} to {} is not allowed.",
                value_type_name(v),
                type_name(ty)
            ),
        )
    };
    match ty {
        SqlType::NVarChar(n) | SqlType::VarChar(n) => {
            let text = match v {
                Value::Binary(_) => return Err(not_allowed()),
                other => to_text(other).unwrap_or_default(),
            };
            Ok(Value::String(match n {
                Some(n) => text.chars().take(usize::from(*n)).collect(),
                None => text,
            }))
        }
        SqlType::VarBinary(n) => match v {
            Value::Binary(b) => Ok(Value::Binary(match n {
                Some(n) => b.iter().take(usize::from(*n)).copied().collect(),
                None => b.clone(),
            })),
            Value::String(s) => Ok(Value::Binary(s.bytes().collect())),
            _ => Err(not_allowed()),
        },
        SqlType::Int | SqlType::BigInt | SqlType::SmallInt | SqlType::TinyInt | SqlType::Bit => {
            let i = match v {
                Value::String(s) => match (ty, s.trim().to_ascii_lowercase().as_str()) {
                    (SqlType::Bit, "true") => 1,
                    (SqlType::Bit, "false") => 0,
                    _ => parse_int_text(s).ok_or_else(|| conversion_failed(v, ty))?,
                },
                Value::Numeric { value, scale } => value / 10i128.pow(u32::from(*scale)),
                other => as_int(other).ok_or_else(not_allowed)?,
            };
            if !fits(i, ty) {
                return Err(SqlError::new(
                    8115,
                    16,
                    format!(
                        "Arithmetic overflow error converting expression to data type {}.",
                        type_name(ty)
                    ),
                ));
            }
            int_value(i, ty).ok_or_else(not_allowed)
        }
        SqlType::Numeric { precision, scale } => {
            let (value, from) = match v {
                Value::String(s) => parse_decimal(s).ok_or_else(|| conversion_failed(v, ty))?,
                other => as_decimal(other).ok_or_else(not_allowed)?,
            };
            let value = if *scale >= from {
                value * 10i128.pow(u32::from(scale - from))
            } else {
                value / 10i128.pow(u32::from(from - scale))
            };
            if value.unsigned_abs() >= 10u128.pow(u32::from(*precision)) {
                return Err(SqlError::new(
                    8115,
                    16,
                    "Arithmetic overflow error converting expression to data type numeric.",
                ));
            }
            Ok(Value::Numeric {
                value,
                scale: *scale,
            })
        }
        SqlType::DateTime | SqlType::DateTime2(_) => match v {
            Value::DateTime(t) => Ok(Value::DateTime(*t)),
            Value::String(text) => parse_datetime(text)
                .map(Value::DateTime)
                .ok_or_else(|| conversion_failed(v, ty)),
            _ => Err(not_allowed()),
        },
        SqlType::UniqueIdentifier => match v {
            Value::Guid(g) => Ok(Value::Guid(*g)),
            Value::String(_) => Err(conversion_failed(v, ty)),
            _ => Err(not_allowed()),
        },
    }
}

/// A date-time literal: `YYYYMMDD`, `YYYY-MM-DD`, either with ` HH:MM:SS[.mmm]` or
/// `THH:MM:SS[.mmm]`, UTC.
pub fn parse_datetime(text: &str) -> Option<crate::time::Timestamp> {
    let text = text.trim();
    let (date, time) = match text.split_once([' ', 'T']) {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let digits: String = date.chars().filter(|c| *c != '-').collect();
    if digits.len() != 8 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let y = digits.get(0..4)?.parse::<u16>().ok()?;
    let m = digits.get(4..6)?.parse::<u8>().ok()?;
    let d = digits.get(6..8)?.parse::<u8>().ok()?;
    let day = crate::time::Date::new(y, m, d).ok()?.start();
    let millis = match time {
        None => 0,
        Some(t) => {
            let (hms, frac) = t.split_once('.').unwrap_or((t, "0"));
            let mut parts = hms.split(':').map(|p| p.parse::<u64>().ok());
            let h = parts.next()??;
            let mi = parts.next()??;
            let s = parts.next().unwrap_or(Some(0))?;
            let frac = format!("{frac:0<3}");
            let ms = frac.get(0..3)?.parse::<u64>().ok()?;
            if h > 23 || mi > 59 || s > 59 {
                return None;
            }
            ((h * 60 + mi) * 60 + s) * 1000 + ms
        }
    };
    Some(crate::time::Timestamp::from_millis(
        day.as_millis() + millis,
    ))
}

/// `text LIKE pattern` (`%`, `_`, `[…]` sets), case-insensitively.
pub fn like(text: &str, pattern: &str) -> bool {
    fn go(t: &[char], p: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('%', rest)) => (0..=t.len()).any(|i| go(t.get(i..).unwrap_or(&[]), rest)),
            Some(('_', rest)) => t.split_first().is_some_and(|(_, tr)| go(tr, rest)),
            Some(('[', rest)) => match rest.iter().position(|c| *c == ']') {
                Some(end) => {
                    let set = rest.get(..end).unwrap_or(&[]);
                    let after = rest.get(end + 1..).unwrap_or(&[]);
                    let (negate, set) = match set.split_first() {
                        Some(('^', s)) => (true, s),
                        _ => (false, set),
                    };
                    t.split_first()
                        .is_some_and(|(c, tr)| (set.contains(c) != negate) && go(tr, after))
                }
                None => t
                    .split_first()
                    .is_some_and(|(c, tr)| *c == '[' && go(tr, rest)),
            },
            Some((c, rest)) => t
                .split_first()
                .is_some_and(|(x, tr)| x == c && go(tr, rest)),
        }
    }
    let t: Vec<char> = text.to_lowercase().trim_end_matches(' ').chars().collect();
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    go(&t, &p)
}

fn parse_decimal(s: &str) -> Option<(i128, u8)> {
    let s = s.trim();
    match s.split_once('.') {
        None => parse_int_text(s).map(|v| (v, 0)),
        Some((int, frac)) => {
            let scale = u8::try_from(frac.len()).ok()?;
            let v = format!("{int}{frac}").parse::<i128>().ok()?;
            Some((v, scale))
        }
    }
}

/// The SQL Server type name of a value, for error messages.
pub fn value_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "NULL",
        Value::String(_) => "nvarchar",
        Value::Binary(_) => "varbinary",
        Value::Numeric { .. } => "numeric",
        Value::Int(_) => "int",
        Value::BigInt(_) => "bigint",
        Value::SmallInt(_) => "smallint",
        Value::TinyInt(_) => "tinyint",
        Value::Bit(_) => "bit",
        Value::DateTime(_) => "datetime",
        Value::Guid(_) => "uniqueidentifier",
    }
}

/// The column type of a value, when nothing better is known.
pub fn type_of_value(v: &Value) -> SqlType {
    match v {
        Value::Null | Value::String(_) => SqlType::NVarChar(Some(4000)),
        Value::Binary(_) => SqlType::VarBinary(None),
        Value::Numeric { value, scale } => SqlType::Numeric {
            precision: u8::try_from(value.unsigned_abs().to_string().len())
                .unwrap_or(38)
                .max(*scale)
                .clamp(1, 38),
            scale: *scale,
        },
        Value::Int(_) => SqlType::Int,
        Value::BigInt(_) => SqlType::BigInt,
        Value::SmallInt(_) => SqlType::SmallInt,
        Value::TinyInt(_) => SqlType::TinyInt,
        Value::Bit(_) => SqlType::Bit,
        Value::DateTime(_) => SqlType::DateTime,
        Value::Guid(_) => SqlType::UniqueIdentifier,
    }
}

/// Case-insensitive, trailing-space-insensitive string comparison
/// (`SQL_Latin1_General_CP1_CI_AS`, approximately).
fn compare_text(a: &str, b: &str) -> Ordering {
    let a = a.trim_end_matches(' ').to_lowercase();
    let b = b.trim_end_matches(' ').to_lowercase();
    a.cmp(&b)
}

fn compare_decimal((a, sa): (i128, u8), (b, sb): (i128, u8)) -> Ordering {
    let s = sa.max(sb);
    let a = a.saturating_mul(10i128.pow(u32::from(s - sa)));
    let b = b.saturating_mul(10i128.pow(u32::from(s - sb)));
    a.cmp(&b)
}

/// `a` compared with `b`: `None` when either is NULL (UNKNOWN). A string compared with a number
/// is converted to the number (error 245 when it is not one); other mixes are error 402.
pub fn compare(a: &Value, b: &Value) -> Result<Option<Ordering>, SqlError> {
    use Value as V;
    Ok(Some(match (a, b) {
        (V::Null, _) | (_, V::Null) => return Ok(None),
        (V::String(x), V::String(y)) => compare_text(x, y),
        (V::Binary(x), V::Binary(y)) => x.cmp(y),
        (V::DateTime(x), V::DateTime(y)) => x.cmp(y),
        (V::Guid(x), V::Guid(y)) => x.cmp(y),
        (V::String(s), n) if as_decimal(n).is_some() => {
            let x = parse_decimal(s).ok_or_else(|| conversion_failed(a, &type_of_value(n)))?;
            compare_decimal(x, as_decimal(n).unwrap_or((0, 0)))
        }
        (n, V::String(s)) if as_decimal(n).is_some() => {
            let y = parse_decimal(s).ok_or_else(|| conversion_failed(b, &type_of_value(n)))?;
            compare_decimal(as_decimal(n).unwrap_or((0, 0)), y)
        }
        (x, y) => match (as_decimal(x), as_decimal(y)) {
            (Some(x), Some(y)) => compare_decimal(x, y),
            _ => {
                return Err(SqlError::new(
                    402,
                    16,
                    format!(
                        "The data types {} and {} are incompatible in the equal to operator.",
                        value_type_name(a),
                        value_type_name(b)
                    ),
                ));
            }
        },
    }))
}

/// The total order of `ORDER BY`, `GROUP BY` and `UNION`: NULL first, then by [`compare`];
/// values that cannot be compared are equal.
pub fn sort_order(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        _ => compare(a, b).ok().flatten().unwrap_or(Ordering::Equal),
    }
}

/// Row keys compared with [`sort_order`], key by key.
pub fn rows_order(a: &[Value], b: &[Value]) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| sort_order(x, y))
        .find(|o| *o != Ordering::Equal)
        .unwrap_or(Ordering::Equal)
}

/// `v` as a value of a column of type `ty` (what the TDS face encodes): a converted value, or
/// NULL when it does not convert.
pub fn coerce(v: Value, ty: &SqlType) -> Value {
    let fits_already = matches!(
        (ty, &v),
        (_, Value::Null)
            | (
                SqlType::NVarChar(None) | SqlType::VarChar(None),
                Value::String(_)
            )
            | (SqlType::VarBinary(None), Value::Binary(_))
            | (SqlType::Int, Value::Int(_))
            | (SqlType::BigInt, Value::BigInt(_))
            | (SqlType::SmallInt, Value::SmallInt(_))
            | (SqlType::TinyInt, Value::TinyInt(_))
            | (SqlType::Bit, Value::Bit(_))
            | (
                SqlType::DateTime | SqlType::DateTime2(_),
                Value::DateTime(_)
            )
            | (SqlType::UniqueIdentifier, Value::Guid(_))
    );
    if fits_already {
        return v;
    }
    convert(&v, ty).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_converts_to_its_decimal_text() {
        let lsn = Value::Numeric {
            value: 9_999_999_999_999_999_999_999_999,
            scale: 0,
        };
        let ty = parse_type("varchar(25)").unwrap();
        assert_eq!(
            convert(&lsn, &ty).unwrap(),
            Value::String("9999999999999999999999999".into())
        );
        assert_eq!(decimal_text(-1234, 2), "-12.34");
        assert_eq!(decimal_text(5, 3), "0.005");
    }

    #[test]
    fn types_and_conversions() {
        assert_eq!(parse_type("sysname").unwrap(), SqlType::NVarChar(Some(128)));
        assert_eq!(
            parse_type("NVARCHAR(MAX)").unwrap(),
            SqlType::NVarChar(None)
        );
        assert_eq!(
            parse_type("numeric(25, 0)").unwrap(),
            SqlType::Numeric {
                precision: 25,
                scale: 0
            }
        );
        assert_eq!(parse_type("geography").unwrap_err().number, 243);
        assert_eq!(
            convert(&Value::String("x".into()), &SqlType::Int)
                .unwrap_err()
                .number,
            245
        );
        assert_eq!(
            convert(&Value::BigInt(1 << 40), &SqlType::Int)
                .unwrap_err()
                .number,
            8115
        );
        assert_eq!(
            convert(&Value::Int(5), &SqlType::Bit).unwrap(),
            Value::Bit(true)
        );
        assert_eq!(
            compare(&Value::String("ABC ".into()), &Value::String("abc".into())).unwrap(),
            Some(Ordering::Equal)
        );
        assert_eq!(compare(&Value::Null, &Value::Int(1)).unwrap(), None);
        assert!(like("##MS_Key##", "##%"));
        assert!(!like("Cert_Tailspin", "##%"));
        assert!(like("abc", "A_c"));
        assert!(like("b", "[abc]") && !like("d", "[abc]") && like("d", "[^abc]"));
        assert_eq!(
            parse_datetime("19700102").map(|t| t.as_millis()),
            Some(86_400_000)
        );
        assert_eq!(
            parse_datetime("1970-01-01 00:00:01.5").map(|t| t.as_millis()),
            Some(1_500)
        );
        assert_eq!(parse_datetime("1970-13-01"), None);
        assert_eq!(
            compare(&Value::Int(2), &Value::String("10".into())).unwrap(),
            Some(Ordering::Less)
        );
    }
}
