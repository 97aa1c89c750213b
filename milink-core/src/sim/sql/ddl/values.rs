//! Values in the executor: literals for binding variables into query text, `LIKE`, `CERT_ID`,
//! and the managed instance's `LISTENER_URL`.

use crate::names::{DatabaseName, MiFqdn};
use crate::ports::PortError;

use super::super::super::tds::{SqlError, Value};
use super::super::super::world::World;

/// `tcp://<fqdn>:<port>;Server=[<name>][;Database=[<db>]]`.
pub(super) fn parse_mi_listener_url(
    url: &str,
) -> Result<(MiFqdn, Option<DatabaseName>), PortError> {
    let bad = || {
        crate::sim::errors::sql(
            crate::sim::errors::AG_NOT_RESPONDING,
            format!(
                "The LISTENER_URL '{url}' does not name a managed instance \
                 (tcp://<fqdn>:5022;Server=[<name>])."
            ),
        )
    };
    let mut parts = url.split(';');
    let address = parts.next().unwrap_or("");
    let rest = address
        .get(..6)
        .filter(|p| p.eq_ignore_ascii_case("tcp://"))
        .and_then(|_| address.get(6..))
        .ok_or_else(bad)?;
    let host = rest.split(':').next().unwrap_or("");
    let fqdn = MiFqdn::new(host).map_err(|_| bad())?;
    let mut database = None;
    let tail: String = parts.collect::<Vec<_>>().join(";");
    if let Some(i) = tail.to_ascii_lowercase().find("database=[") {
        let inner = tail.get(i + "database=[".len()..).unwrap_or("");
        let mut name = String::new();
        let mut chars = inner.chars().peekable();
        while let Some(c) = chars.next() {
            if c == ']' {
                if chars.peek() == Some(&']') {
                    chars.next();
                    name.push(']');
                } else {
                    break;
                }
            } else {
                name.push(c);
            }
        }
        database = Some(DatabaseName::new(name).map_err(|_| bad())?);
    }
    Ok((fqdn, database))
}

/// `CERT_ID(name)`: 256 + the certificate's place in `master` (by name).
pub(super) fn cert_id(world: &World, name: &str) -> Option<i32> {
    let i = world.source.certificates.keys().position(|k| k == name)?;
    i32::try_from(i).ok().map(|i| 256 + i)
}

pub(super) fn cert_name(world: &World, id: i32) -> Option<String> {
    let i = usize::try_from(id.checked_sub(256)?).ok()?;
    world.source.certificates.keys().nth(i).cloned()
}

pub(super) fn undeclared(v: &str) -> SqlError {
    SqlError::new(
        137,
        15,
        format!("Must declare the scalar variable \"{v}\"."),
    )
}

/// A value as a T-SQL literal.
pub(super) fn literal(v: &Value) -> String {
    use crate::tsql::{binary_literal, quote_nstring};
    match v {
        Value::Null => "NULL".to_string(),
        Value::String(s) => quote_nstring(s),
        Value::Binary(b) => binary_literal(b),
        Value::Numeric { value, scale } => {
            let digits = value.unsigned_abs().to_string();
            let scale = usize::from(*scale);
            let sign = if *value < 0 { "-" } else { "" };
            if scale == 0 {
                format!("{sign}{digits}")
            } else {
                let padded = format!("{digits:0>width$}", width = scale + 1);
                let (i, f) = padded.split_at(padded.len() - scale);
                format!("{sign}{i}.{f}")
            }
        }
        Value::Int(i) => i.to_string(),
        Value::BigInt(i) => i.to_string(),
        Value::SmallInt(i) => i.to_string(),
        Value::TinyInt(i) => i.to_string(),
        Value::Bit(b) => u8::from(*b).to_string(),
        Value::DateTime(t) => quote_nstring(&t.to_string()),
        Value::Guid(g) => quote_nstring(&uuid_text(g)),
    }
}

fn uuid_text(g: &[u8; 16]) -> String {
    let hex: String = g.iter().map(|b| format!("{b:02X}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        hex.get(0..8).unwrap_or(""),
        hex.get(8..12).unwrap_or(""),
        hex.get(12..16).unwrap_or(""),
        hex.get(16..20).unwrap_or(""),
        hex.get(20..32).unwrap_or("")
    )
}

/// `LIKE` with `%` and `_`.
pub(crate) fn like(value: &str, pattern: &str) -> bool {
    let v: Vec<char> = value.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    // dp[j]: pattern[..i] matches value[..j].
    let mut dp = vec![false; v.len() + 1];
    dp[0] = true;
    for &pc in &p {
        let mut next = vec![false; v.len() + 1];
        if pc == '%' {
            let mut any = false;
            for j in 0..=v.len() {
                any |= dp[j];
                next[j] = any;
            }
        } else {
            for j in 1..=v.len() {
                next[j] = dp[j - 1] && (pc == '_' || pc == v[j - 1]);
            }
        }
        dp = next;
    }
    dp[v.len()]
}
