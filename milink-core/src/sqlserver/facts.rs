//! [`TdsFactSource`]: the assessment's [`FactSource`] over a TDS [`Connection`] (feature `tds`).
//!
//! [`gather_instance_facts`](crate::assess::gather_instance_facts) sends the readiness probes
//! of [`crate::tsql::readiness`] through it, one batch per probe, so an instance costs
//! [`PROBE_COUNT`](crate::tsql::readiness::PROBE_COUNT) round trips whatever its number of
//! databases (plus one module text batch per scanned database).
//!
//! - **Which result set.** Every readiness probe documents exactly one result set, but some
//!   reach it through statements that a server may answer with rows of their own before the
//!   final `SELECT` (a temporary table filled by a cursor, `INSERT … EXEC`). The probe's answer
//!   is the **last** result set of the batch; a batch with none is an error.
//! - **Cells.** Each [`Value`] becomes a [`Cell`] by type, as the gather parsers read them:
//!   integers and `bit` as they are; `numeric(p, 0)` as the exact integer when it fits an
//!   `i64` (else its decimal text, which a parser reading an integer refuses), `numeric(p, s)`
//!   with `s > 0` as the nearest `f64`; strings as text; binary as bytes; `uniqueidentifier` as
//!   its upper-case text form (`6F9619FF-8B86-D011-B42D-00C04FC964FF`, as SQL Server prints
//!   it); date-times as milliseconds since the Unix epoch (the probes' documented unit for
//!   dates, which the parsers read as integers).
//! - **Time limits.** Probes run as [`CommandKind::Probe`]; module text, which can be large,
//!   as [`CommandKind::Read`].
//! - **Errors.** A failed statement becomes a [`SourceError`] with the SQL Server error number
//!   (when the server answered one), the connection's message (which never contains a password
//!   or token) and its transient flag.

use std::borrow::Borrow;
use std::fmt;

use async_trait::async_trait;

use crate::assess::gather::{Cell, FactSource, Rows, SourceError};
use crate::tsql::{Batch, readiness};

use super::connection::{CommandKind, Connection, ResultSet, SqlError};
use super::rows::{DateTime, Value};

/// The readiness probes' [`FactSource`] over a [`Connection`] to SQL Server.
///
/// `C` is the connection or a handle to it (`Connection`, `&Connection`, `Arc<Connection>`),
/// so the same connection can serve the assessment and then the link.
pub struct TdsFactSource<C = Connection> {
    connection: C,
}

impl<C: Borrow<Connection>> fmt::Debug for TdsFactSource<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TdsFactSource")
            .field("connection", self.connection.borrow())
            .finish()
    }
}

impl<C: Borrow<Connection>> TdsFactSource<C> {
    /// A fact source sending its batches on `connection`.
    pub fn new(connection: C) -> Self {
        TdsFactSource { connection }
    }

    /// The connection it sends on.
    pub fn connection(&self) -> &Connection {
        self.connection.borrow()
    }

    /// The connection back.
    pub fn into_inner(self) -> C {
        self.connection
    }
}

/// The [`CommandKind`] a readiness batch runs with: [`CommandKind::Read`] for module text,
/// [`CommandKind::Probe`] for every other probe.
pub fn fact_command_kind(batch: &Batch) -> CommandKind {
    if batch.purpose() == readiness::MODULE_TEXT {
        CommandKind::Read
    } else {
        CommandKind::Probe
    }
}

#[async_trait]
impl<C: Borrow<Connection> + Send + Sync> FactSource for TdsFactSource<C> {
    async fn query(&self, batch: &Batch) -> Result<Rows, SourceError> {
        tracing::debug!(purpose = batch.purpose(), "SQL Server: readiness probe");
        let sets = self
            .connection
            .borrow()
            .simple_query(batch.expose_sql(), fact_command_kind(batch))
            .await
            .map_err(|e| source_error(&e))?;
        let last = sets.last().ok_or_else(|| {
            SourceError::new(format!(
                "the probe {:?} returned no result set, expected one",
                batch.purpose()
            ))
        })?;
        rows_from_result_set(last)
    }
}

/// A failed statement as the assessment sees it: the SQL Server error number when there is one,
/// the message (never a password or token) and whether retrying may succeed.
pub fn source_error(error: &SqlError) -> SourceError {
    SourceError {
        message: error.to_string(),
        transient: error.is_transient(),
        number: error.number().and_then(|n| i32::try_from(n).ok()),
    }
}

/// A result set as the assessment's [`Rows`], each [`Value`] converted by [`cell_from_value`].
/// A column the row lacks (it cannot happen with rows read from the wire) reads as NULL.
pub fn rows_from_result_set(set: &ResultSet) -> Result<Rows, SourceError> {
    let mut rows = Rows::new(set.columns.iter().cloned());
    for row in &set.rows {
        let cells = set
            .columns
            .iter()
            .map(|column| row.get(column).map_or(Cell::Null, cell_from_value))
            .collect();
        rows.push(cells)?;
    }
    Ok(rows)
}

/// One [`Value`] as a [`Cell`] (see the [module documentation](self) for the rules).
pub fn cell_from_value(value: &Value) -> Cell {
    match value {
        Value::Null => Cell::Null,
        Value::Bool(b) => Cell::Bool(*b),
        Value::Int(i) => Cell::Int(*i),
        Value::Numeric { value, scale: 0 } => match i64::try_from(*value) {
            Ok(i) => Cell::Int(i),
            Err(_) => Cell::Text(value.to_string()),
        },
        Value::Numeric { value, scale } => Cell::Float(decimal_to_f64(*value, *scale)),
        Value::String(s) => Cell::Text(s.clone()),
        Value::Bytes(b) => Cell::Binary(b.clone()),
        Value::DateTime(t) => epoch_millis(*t).map_or(Cell::Null, Cell::Int),
        Value::Guid(g) => Cell::Text(guid_text(g)),
    }
}

/// `value / 10^scale` as the nearest `f64`, through its decimal text (exact digits, one
/// rounding).
fn decimal_to_f64(value: i128, scale: u8) -> f64 {
    let digits = value.unsigned_abs().to_string();
    let scale = usize::from(scale);
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    let sign = if value < 0 { "-" } else { "" };
    format!("{sign}{int}.{frac}").parse().unwrap_or(f64::NAN)
}

/// Milliseconds since 1970-01-01 UTC (negative before it); `None` out of `i64` range.
fn epoch_millis(t: DateTime) -> Option<i64> {
    let ms = i128::from(t.days) * 86_400_000 + i128::from(t.ticks / 10_000);
    i64::try_from(ms).ok()
}

/// A `uniqueidentifier`'s text form, upper-case: `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX`.
fn guid_text(g: &[u8; 16]) -> String {
    let hex = |bytes: &[u8]| -> String { bytes.iter().map(|b| format!("{b:02X}")).collect() };
    format!(
        "{}-{}-{}-{}-{}",
        hex(&g[0..4]),
        hex(&g[4..6]),
        hex(&g[6..8]),
        hex(&g[8..10]),
        hex(&g[10..16])
    )
}

#[cfg(test)]
mod tests;

#[cfg(all(test, feature = "sim"))]
mod loopback;
