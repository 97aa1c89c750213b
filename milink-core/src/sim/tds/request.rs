//! Requests: SQL batches (packet type 1) and `sp_executesql` RPC calls (packet type 3).

use super::Param;
use super::types::{Malformed, Reader, decode_typed_value, malformed, utf16_to_string};

/// `sp_executesql`'s id in an RPC request that names its procedure by number.
const SP_EXECUTESQL_ID: u16 = 10;

/// A request's SQL text and parameters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Request {
    pub(crate) sql: String,
    pub(crate) params: Vec<Param>,
}

/// Skips ALL_HEADERS (TDS 7.2 and later): a total length that counts itself.
fn skip_all_headers(r: &mut Reader<'_>) -> Result<(), Malformed> {
    let total = r.u32()? as usize;
    let rest = total
        .checked_sub(4)
        .ok_or_else(|| malformed("ALL_HEADERS shorter than its length"))?;
    r.bytes(rest).map(|_| ())
}

pub(crate) fn parse_batch(payload: &[u8]) -> Result<Request, Malformed> {
    let mut r = Reader::new(payload);
    skip_all_headers(&mut r)?;
    Ok(Request {
        sql: utf16_to_string(r.rest())?,
        params: Vec::new(),
    })
}

pub(crate) fn parse_rpc(payload: &[u8]) -> Result<Request, Malformed> {
    let mut r = Reader::new(payload);
    skip_all_headers(&mut r)?;
    let name_len = r.u16()?;
    let is_executesql = if name_len == 0xFFFF {
        r.u16()? == SP_EXECUTESQL_ID
    } else {
        let name = r.utf16(usize::from(name_len))?;
        name.eq_ignore_ascii_case("sp_executesql") || name.eq_ignore_ascii_case("sys.sp_executesql")
    };
    if !is_executesql {
        return Err(malformed("only sp_executesql is supported"));
    }
    let _options = r.u16()?;
    let mut values = Vec::new();
    while !r.is_empty() {
        let name = r.b_varchar()?;
        let _status = r.u8()?;
        values.push(Param {
            name,
            value: decode_typed_value(&mut r)?,
        });
    }
    let mut values = values.into_iter();
    let sql = match values.next().map(|p| p.value) {
        Some(super::Value::String(sql)) => sql,
        _ => return Err(malformed("sp_executesql without its SQL text")),
    };
    let _declarations = values.next();
    Ok(Request {
        sql,
        params: values.collect(),
    })
}
