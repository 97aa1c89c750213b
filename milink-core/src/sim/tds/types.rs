//! Column types and values, and their TDS encodings: the TYPE_INFO of a column (COLMETADATA) or a
//! parameter (RPC), and the value that follows it in a ROW or a parameter.

use crate::time::Timestamp;

/// A malformed, truncated or unsupported message body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Malformed(pub(crate) String);

pub(crate) fn malformed(what: impl Into<String>) -> Malformed {
    Malformed(what.into())
}

/// A bounds-checked little-endian reader over a message body: a short body is an error, never a
/// panic.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn at(buf: &'a [u8], pos: usize) -> Self {
        Reader { buf, pos }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Everything not read yet.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let out = self.buf.get(self.pos..).unwrap_or(&[]);
        self.pos = self.buf.len();
        out
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| malformed("message is truncated"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Malformed> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Malformed> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, Malformed> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// `chars` UTF-16LE code units.
    pub(crate) fn utf16(&mut self, chars: usize) -> Result<String, Malformed> {
        let bytes = self.bytes(chars.saturating_mul(2))?;
        utf16_to_string(bytes)
    }

    /// A B_VARCHAR: a one-byte length in characters, then UTF-16LE.
    pub(crate) fn b_varchar(&mut self) -> Result<String, Malformed> {
        let chars = self.u8()?;
        self.utf16(usize::from(chars))
    }
}

pub(crate) fn utf16_to_string(bytes: &[u8]) -> Result<String, Malformed> {
    if !bytes.len().is_multiple_of(2) {
        return Err(malformed("odd length for UTF-16 text"));
    }
    let units = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map_err(|_| malformed("invalid UTF-16 text"))
}

pub(crate) fn put_utf16(out: &mut Vec<u8>, s: &str) {
    for unit in s.encode_utf16() {
        out.extend_from_slice(&unit.to_le_bytes());
    }
}

/// A B_VARCHAR (one-byte length in characters), truncated to 255 UTF-16 units.
pub(crate) fn put_b_varchar(out: &mut Vec<u8>, s: &str) {
    let units: Vec<u16> = s.encode_utf16().take(255).collect();
    out.push(units.len() as u8); // at most 255 by the take above
    for unit in units {
        out.extend_from_slice(&unit.to_le_bytes());
    }
}

/// A SQL type of a result-set column. Lengths are SQL lengths; `None` is `(max)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    /// `nvarchar(n)` (n characters, 1..=4000) or `nvarchar(max)`.
    NVarChar(Option<u16>),
    /// `varchar(n)` (n bytes, 1..=8000) or `varchar(max)`, in code page 1252.
    VarChar(Option<u16>),
    /// `varbinary(n)` (1..=8000) or `varbinary(max)`.
    VarBinary(Option<u16>),
    /// `numeric(precision, scale)` (also `decimal`); precision 1..=38.
    Numeric {
        /// Total digits.
        precision: u8,
        /// Digits after the decimal point.
        scale: u8,
    },
    /// `int`.
    Int,
    /// `bigint`.
    BigInt,
    /// `smallint`.
    SmallInt,
    /// `tinyint`.
    TinyInt,
    /// `bit`.
    Bit,
    /// `datetime` (1/300-second ticks).
    DateTime,
    /// `datetime2(scale)`, scale 0..=7.
    DateTime2(u8),
    /// `uniqueidentifier`.
    UniqueIdentifier,
}

/// A value of a column or parameter. [`Value::Null`] fits every type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// `nvarchar`, or a `varchar` (any string fits either).
    String(String),
    /// `varbinary`.
    Binary(Vec<u8>),
    /// `numeric`/`decimal`: the unscaled integer and its scale (12.34 is `{ value: 1234, scale:
    /// 2 }`; an LSN is `{ value: lsn, scale: 0 }`).
    Numeric {
        /// The digits as an integer.
        value: i128,
        /// How many of them are after the decimal point.
        scale: u8,
    },
    /// `int`.
    Int(i32),
    /// `bigint`.
    BigInt(i64),
    /// `smallint`.
    SmallInt(i16),
    /// `tinyint`.
    TinyInt(u8),
    /// `bit`.
    Bit(bool),
    /// `datetime` or `datetime2` (UTC, millisecond precision, 1970 onwards).
    DateTime(Timestamp),
    /// `uniqueidentifier`, in RFC 4122 byte order (as `uuid::Uuid::as_bytes`).
    Guid([u8; 16]),
}

const NULLTYPE: u8 = 0x1F;
const INT1: u8 = 0x30;
const BIT: u8 = 0x32;
const INT2: u8 = 0x34;
const INT4: u8 = 0x38;
const DATETIME: u8 = 0x3D;
const INT8: u8 = 0x7F;
const GUID: u8 = 0x24;
const INTN: u8 = 0x26;
const DATETIME2N: u8 = 0x2A;
const BITN: u8 = 0x68;
const DECIMALN: u8 = 0x6A;
const NUMERICN: u8 = 0x6C;
const DATETIMEN: u8 = 0x6F;
const BIGVARBIN: u8 = 0xA5;
const BIGVARCHAR: u8 = 0xA7;
const NVARCHAR: u8 = 0xE7;

/// `SQL_Latin1_General_CP1_CI_AS`: LCID 0x0409 with its flags, sort id 52 (code page 1252).
pub(crate) const COLLATION: [u8; 5] = [0x09, 0x04, 0xD0, 0x00, 0x34];

const DAYS_1900_TO_1970: i64 = 25_567;
const DAYS_0001_TO_1970: i64 = 719_162;
const MS_PER_DAY: i64 = 86_400_000;
const PLP_NULL: u64 = u64::MAX;

fn numeric_len(precision: u8) -> u8 {
    match precision {
        0..=9 => 5,
        10..=19 => 9,
        20..=28 => 13,
        _ => 17,
    }
}

fn time_len(scale: u8) -> usize {
    match scale {
        0..=2 => 3,
        3..=4 => 4,
        _ => 5,
    }
}

impl SqlType {
    /// Lengths beyond the type's limit become `(max)`; precision and scale are kept in range.
    fn normalized(self) -> SqlType {
        let cap = |n: Option<u16>, limit: u16| n.filter(|&n| (1..=limit).contains(&n));
        match self {
            SqlType::NVarChar(n) => SqlType::NVarChar(cap(n, 4000)),
            SqlType::VarChar(n) => SqlType::VarChar(cap(n, 8000)),
            SqlType::VarBinary(n) => SqlType::VarBinary(cap(n, 8000)),
            SqlType::Numeric { precision, scale } => {
                let precision = precision.clamp(1, 38);
                SqlType::Numeric {
                    precision,
                    scale: scale.min(precision),
                }
            }
            SqlType::DateTime2(scale) => SqlType::DateTime2(scale.min(7)),
            other => other,
        }
    }

    /// The TYPE_INFO of a column of this type.
    pub(crate) fn encode_info(&self, out: &mut Vec<u8>) {
        let max_or = |n: Option<u16>, bytes_per: u16| n.map_or(0xFFFF, |n| n * bytes_per);
        match self.normalized() {
            SqlType::NVarChar(n) => {
                out.push(NVARCHAR);
                out.extend_from_slice(&max_or(n, 2).to_le_bytes());
                out.extend_from_slice(&COLLATION);
            }
            SqlType::VarChar(n) => {
                out.push(BIGVARCHAR);
                out.extend_from_slice(&max_or(n, 1).to_le_bytes());
                out.extend_from_slice(&COLLATION);
            }
            SqlType::VarBinary(n) => {
                out.push(BIGVARBIN);
                out.extend_from_slice(&max_or(n, 1).to_le_bytes());
            }
            SqlType::Numeric { precision, scale } => {
                out.extend_from_slice(&[NUMERICN, numeric_len(precision), precision, scale]);
            }
            SqlType::Int => out.extend_from_slice(&[INTN, 4]),
            SqlType::BigInt => out.extend_from_slice(&[INTN, 8]),
            SqlType::SmallInt => out.extend_from_slice(&[INTN, 2]),
            SqlType::TinyInt => out.extend_from_slice(&[INTN, 1]),
            SqlType::Bit => out.extend_from_slice(&[BITN, 1]),
            SqlType::DateTime => out.extend_from_slice(&[DATETIMEN, 8]),
            SqlType::DateTime2(scale) => out.extend_from_slice(&[DATETIME2N, scale]),
            SqlType::UniqueIdentifier => out.extend_from_slice(&[GUID, 16]),
        }
    }

    fn is_max(&self) -> bool {
        matches!(
            self,
            SqlType::NVarChar(None) | SqlType::VarChar(None) | SqlType::VarBinary(None)
        )
    }

    /// Appends `value` as it follows this TYPE_INFO in a ROW. A value that does not fit the type
    /// is an error (the answer becomes an error message instead).
    pub(crate) fn encode_value(&self, value: &Value, out: &mut Vec<u8>) -> Result<(), String> {
        let mismatch = || Err(format!("value {value:?} does not fit a {self:?} column"));
        match (self.normalized(), value) {
            (ty, Value::Null) if ty.is_max() => out.extend_from_slice(&PLP_NULL.to_le_bytes()),
            (SqlType::NVarChar(_) | SqlType::VarChar(_) | SqlType::VarBinary(_), Value::Null) => {
                out.extend_from_slice(&0xFFFFu16.to_le_bytes())
            }
            (_, Value::Null) => out.push(0),
            (SqlType::NVarChar(n), Value::String(s)) => {
                let mut bytes = Vec::with_capacity(s.len() * 2);
                put_utf16(&mut bytes, s);
                put_var_bytes(&bytes, n.map(|n| usize::from(n) * 2), out)?;
            }
            (SqlType::VarChar(n), Value::String(s)) => {
                put_var_bytes(&to_cp1252(s), n.map(usize::from), out)?
            }
            (SqlType::VarBinary(n), Value::Binary(b)) => put_var_bytes(b, n.map(usize::from), out)?,
            (SqlType::Numeric { precision, scale }, Value::Numeric { value, scale: vs }) => {
                let value = rescale(*value, *vs, scale)?;
                let magnitude = value.unsigned_abs();
                if magnitude >= 10u128.pow(u32::from(precision)) {
                    return Err(format!("{value} does not fit numeric({precision},{scale})"));
                }
                let len = numeric_len(precision);
                out.push(len);
                out.push(u8::from(value >= 0));
                out.extend_from_slice(&magnitude.to_le_bytes()[..usize::from(len) - 1]);
            }
            (SqlType::Int, Value::Int(v)) => put_sized(out, &v.to_le_bytes()),
            (SqlType::BigInt, Value::BigInt(v)) => put_sized(out, &v.to_le_bytes()),
            (SqlType::SmallInt, Value::SmallInt(v)) => put_sized(out, &v.to_le_bytes()),
            (SqlType::TinyInt, Value::TinyInt(v)) => put_sized(out, &[*v]),
            (SqlType::Bit, Value::Bit(v)) => put_sized(out, &[u8::from(*v)]),
            (SqlType::DateTime, Value::DateTime(ts)) => {
                let (days, ms) = split_millis(*ts);
                let mut ticks = (ms * 300 + 500) / 1000;
                let mut days = days + DAYS_1900_TO_1970;
                if ticks >= 300 * 86_400 {
                    ticks = 0;
                    days += 1;
                }
                let days = i32::try_from(days).map_err(|_| "datetime out of range".to_owned())?;
                out.push(8);
                out.extend_from_slice(&days.to_le_bytes());
                out.extend_from_slice(&(ticks as u32).to_le_bytes()); // < 25,920,000
            }
            (SqlType::DateTime2(scale), Value::DateTime(ts)) => {
                let (days, ms) = split_millis(*ts);
                let units = (ms as u64 * 10u64.pow(u32::from(scale))) / 1000;
                let tlen = time_len(scale);
                out.push((tlen + 3) as u8);
                out.extend_from_slice(&units.to_le_bytes()[..tlen]);
                let days = days + DAYS_0001_TO_1970;
                if days >= 1 << 24 {
                    return Err("datetime2 beyond year 9999".to_owned());
                }
                out.extend_from_slice(&days.to_le_bytes()[..3]);
            }
            (SqlType::UniqueIdentifier, Value::Guid(g)) => put_sized(out, &guid_wire_order(*g)),
            _ => return mismatch(),
        }
        Ok(())
    }
}

/// Whole days since 1970 and milliseconds into the day.
fn split_millis(ts: Timestamp) -> (i64, i64) {
    let ms = i64::try_from(ts.as_millis()).unwrap_or(i64::MAX);
    (ms.div_euclid(MS_PER_DAY), ms.rem_euclid(MS_PER_DAY))
}

fn rescale(value: i128, from: u8, to: u8) -> Result<i128, String> {
    if from > to {
        return Err(format!(
            "numeric value with scale {from} in a column of scale {to}"
        ));
    }
    10i128
        .checked_pow(u32::from(to - from))
        .and_then(|f| value.checked_mul(f))
        .ok_or_else(|| format!("numeric value {value} overflows scale {to}"))
}

fn put_sized(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(bytes.len() as u8); // callers pass at most 16 bytes
    out.extend_from_slice(bytes);
}

/// A non-NULL variable-length value: a u16 length, or PLP chunks when `limit` is `None` (max).
fn put_var_bytes(bytes: &[u8], limit: Option<usize>, out: &mut Vec<u8>) -> Result<(), String> {
    match limit {
        Some(limit) => {
            if bytes.len() > limit {
                return Err(format!("{} bytes exceed the column's {limit}", bytes.len()));
            }
            out.extend_from_slice(&(bytes.len() as u16).to_le_bytes()); // <= 8000
        }
        None => {
            let len = u32::try_from(bytes.len()).map_err(|_| "value over 4 GiB".to_owned())?;
            out.extend_from_slice(&u64::from(len).to_le_bytes());
            if len > 0 {
                out.extend_from_slice(&len.to_le_bytes());
            }
        }
    }
    out.extend_from_slice(bytes);
    if limit.is_none() {
        out.extend_from_slice(&0u32.to_le_bytes()); // PLP terminator
    }
    Ok(())
}

/// The GUID's wire order: the first three fields little-endian (the swap is its own inverse).
fn guid_wire_order(mut g: [u8; 16]) -> [u8; 16] {
    g[0..4].reverse();
    g[4..6].reverse();
    g[6..8].reverse();
    g
}

/// Code page 1252 bytes 0x80..=0x9F; the rest of the page is Latin-1.
const CP1252_HIGH: [char; 32] = [
    '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8D}', 'Ž', '\u{8F}',
    '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9D}', 'ž', 'Ÿ',
];

/// Encodes as code page 1252; characters outside it become `?`, as SQL Server does.
fn to_cp1252(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match u32::from(c) {
            0..=0x7F | 0xA0..=0xFF => c as u8, // the cast keeps the Latin-1 byte
            _ => CP1252_HIGH
                .iter()
                .position(|&h| h == c)
                .map_or(b'?', |i| 0x80 + i as u8),
        })
        .collect()
}

fn from_cp1252(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            0x80..=0x9F => CP1252_HIGH[usize::from(b - 0x80)],
            _ => char::from(b),
        })
        .collect()
}

/// Reads a TYPE_INFO and the value after it (an RPC parameter).
pub(crate) fn decode_typed_value(r: &mut Reader<'_>) -> Result<Value, Malformed> {
    let ty = r.u8()?;
    match ty {
        NULLTYPE => Ok(Value::Null),
        INT1 => Ok(Value::TinyInt(r.u8()?)),
        BIT => Ok(Value::Bit(r.u8()? != 0)),
        INT2 => int_value(r.bytes(2)?),
        INT4 => int_value(r.bytes(4)?),
        INT8 => int_value(r.bytes(8)?),
        DATETIME => datetime_value(r.bytes(8)?),
        INTN | BITN | GUID | DATETIMEN => {
            let _max = r.u8()?;
            let len = r.u8()?;
            let data = r.bytes(usize::from(len))?;
            match (ty, len) {
                (_, 0) => Ok(Value::Null),
                (INTN, _) => int_value(data),
                (BITN, 1) => Ok(Value::Bit(data[0] != 0)),
                (GUID, 16) => {
                    let mut g = [0u8; 16];
                    g.copy_from_slice(data);
                    Ok(Value::Guid(guid_wire_order(g)))
                }
                (DATETIMEN, 8) => datetime_value(data),
                _ => Err(malformed(format!("type 0x{ty:02X} with length {len}"))),
            }
        }
        DECIMALN | NUMERICN => {
            let _max = r.u8()?;
            let _precision = r.u8()?;
            let scale = r.u8()?;
            let len = usize::from(r.u8()?);
            if len == 0 {
                return Ok(Value::Null);
            }
            if !matches!(len, 5 | 9 | 13 | 17) {
                return Err(malformed(format!("numeric value of length {len}")));
            }
            let sign = r.u8()?;
            let mut magnitude = [0u8; 16];
            magnitude[..len - 1].copy_from_slice(r.bytes(len - 1)?);
            let magnitude = i128::try_from(u128::from_le_bytes(magnitude))
                .map_err(|_| malformed("numeric value out of range"))?;
            let value = if sign == 0 { -magnitude } else { magnitude };
            Ok(Value::Numeric { value, scale })
        }
        DATETIME2N => {
            let scale = r.u8()?.min(7);
            let len = usize::from(r.u8()?);
            if len == 0 {
                return Ok(Value::Null);
            }
            let tlen = time_len(scale);
            if len != tlen + 3 {
                return Err(malformed(format!("datetime2({scale}) of length {len}")));
            }
            let mut units = [0u8; 8];
            units[..tlen].copy_from_slice(r.bytes(tlen)?);
            let mut days = [0u8; 4];
            days[..3].copy_from_slice(r.bytes(3)?);
            let units = u64::from_le_bytes(units);
            let ms = units * 1000 / 10u64.pow(u32::from(scale));
            let days = i64::from(u32::from_le_bytes(days)) - DAYS_0001_TO_1970;
            timestamp(days, ms as i64)
        }
        NVARCHAR | BIGVARCHAR | BIGVARBIN => {
            let max = r.u16()?;
            if ty != BIGVARBIN {
                r.bytes(COLLATION.len())?;
            }
            let data = if max == 0xFFFF {
                read_plp(r)?
            } else {
                match r.u16()? {
                    0xFFFF => None,
                    len => Some(r.bytes(usize::from(len))?.to_vec()),
                }
            };
            let Some(data) = data else {
                return Ok(Value::Null);
            };
            match ty {
                NVARCHAR => Ok(Value::String(utf16_to_string(&data)?)),
                BIGVARCHAR => Ok(Value::String(from_cp1252(&data))),
                _ => Ok(Value::Binary(data)),
            }
        }
        other => Err(malformed(format!(
            "unsupported parameter type 0x{other:02X}"
        ))),
    }
}

fn int_value(data: &[u8]) -> Result<Value, Malformed> {
    Ok(match *data {
        [a] => Value::TinyInt(a),
        [a, b] => Value::SmallInt(i16::from_le_bytes([a, b])),
        [a, b, c, d] => Value::Int(i32::from_le_bytes([a, b, c, d])),
        [a, b, c, d, e, f, g, h] => Value::BigInt(i64::from_le_bytes([a, b, c, d, e, f, g, h])),
        _ => return Err(malformed(format!("integer of length {}", data.len()))),
    })
}

fn datetime_value(data: &[u8]) -> Result<Value, Malformed> {
    let days = i32::from_le_bytes([data[0], data[1], data[2], data[3]]);
    let ticks = u32::from_le_bytes([data[4], data[5], data[6], data[7]]);
    let ms = (i64::from(ticks) * 1000 + 150) / 300;
    timestamp(i64::from(days) - DAYS_1900_TO_1970, ms)
}

fn timestamp(days: i64, ms: i64) -> Result<Value, Malformed> {
    let total = days
        .checked_mul(MS_PER_DAY)
        .and_then(|d| d.checked_add(ms))
        .and_then(|t| u64::try_from(t).ok())
        .ok_or_else(|| malformed("dates before 1970 are not supported"))?;
    Ok(Value::DateTime(Timestamp::from_millis(total)))
}

/// A PLP value (the `(max)` types): `None` for NULL.
fn read_plp(r: &mut Reader<'_>) -> Result<Option<Vec<u8>>, Malformed> {
    if r.u64()? == PLP_NULL {
        return Ok(None);
    }
    let mut out = Vec::new();
    loop {
        match r.u32()? {
            0 => return Ok(Some(out)),
            n => out.extend_from_slice(r.bytes(n as usize)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(ty: SqlType, value: Value) -> Value {
        let mut wire = Vec::new();
        ty.encode_info(&mut wire);
        ty.encode_value(&value, &mut wire).unwrap();
        let mut r = Reader::new(&wire);
        let back = decode_typed_value(&mut r).unwrap();
        assert!(r.is_empty(), "{ty:?} left bytes behind");
        back
    }

    #[test]
    fn tds_types_round_trip_through_their_own_decoder() {
        let ts = Timestamp::from_millis(1_700_000_000_123);
        let cases = [
            (SqlType::NVarChar(Some(10)), Value::String("héllo €".into())),
            (SqlType::NVarChar(None), Value::String("x".repeat(5000))),
            (SqlType::VarChar(Some(20)), Value::String("café €".into())),
            (SqlType::VarBinary(None), Value::Binary(vec![])),
            (SqlType::VarBinary(Some(4)), Value::Binary(vec![1, 2, 3])),
            (
                SqlType::Numeric {
                    precision: 25,
                    scale: 0,
                },
                Value::Numeric {
                    value: 12_345_678_901_234_567_890_123,
                    scale: 0,
                },
            ),
            (
                SqlType::Numeric {
                    precision: 38,
                    scale: 2,
                },
                Value::Numeric {
                    value: -99_999_999_999_999_999_999_999_999_999_999_999,
                    scale: 2,
                },
            ),
            (SqlType::Int, Value::Int(-7)),
            (SqlType::BigInt, Value::BigInt(i64::MIN)),
            (SqlType::SmallInt, Value::SmallInt(-300)),
            (SqlType::TinyInt, Value::TinyInt(255)),
            (SqlType::Bit, Value::Bit(true)),
            (SqlType::DateTime2(7), Value::DateTime(ts)),
            (SqlType::UniqueIdentifier, Value::Guid(*b"0123456789abcdef")),
        ];
        for (ty, value) in cases {
            assert_eq!(round_trip(ty, value.clone()), value, "{ty:?}");
            assert_eq!(round_trip(ty, Value::Null), Value::Null, "{ty:?} NULL");
        }
        // datetime keeps 1/300 s: within 2 ms.
        let Value::DateTime(back) = round_trip(SqlType::DateTime, Value::DateTime(ts)) else {
            panic!("not a datetime");
        };
        assert!(back.as_millis().abs_diff(ts.as_millis()) <= 2);
    }

    #[test]
    fn tds_values_that_do_not_fit_are_refused() {
        let mut out = Vec::new();
        assert!(
            SqlType::Int
                .encode_value(&Value::String("1".into()), &mut out)
                .is_err()
        );
        assert!(
            SqlType::NVarChar(Some(2))
                .encode_value(&Value::String("abc".into()), &mut out)
                .is_err()
        );
        let big = Value::Numeric {
            value: 1_000,
            scale: 0,
        };
        assert!(
            SqlType::Numeric {
                precision: 3,
                scale: 0
            }
            .encode_value(&big, &mut out)
            .is_err()
        );
    }

    #[test]
    fn tds_truncated_values_are_errors_not_panics() {
        let mut wire = Vec::new();
        SqlType::NVarChar(None).encode_info(&mut wire);
        SqlType::NVarChar(None)
            .encode_value(&Value::String("abcdef".into()), &mut wire)
            .unwrap();
        for cut in 0..wire.len() {
            assert!(
                decode_typed_value(&mut Reader::new(&wire[..cut])).is_err(),
                "cut at {cut}"
            );
        }
    }
}
