//! The managed instance's live view of a link in process: the rows its T-SQL endpoint would
//! answer to [`tsql::probe_instance_link_state`], evaluated by the same query engine over the
//! same catalog, handed over as the adapter receives them and parsed with the adapter's own
//! [`parse::parse_instance_side_view`]. What `SimManagedInstance::link_state` merges into ARM's
//! view is therefore, by construction, what a `WithInstanceTsql` port reads over the wire.

use crate::lifecycle::{Side, SideView};
use crate::names::{DatabaseName, LinkName, UpdatePolicy};
use crate::sqlserver::parse;
use crate::sqlserver::rows::{DateTime, Row, Value};
use crate::time::Timestamp;
use crate::tsql;

use super::super::World;
use super::super::tds::{ResultSet as WireSet, SessionInfo, Value as WireValue};
use super::query::run_select;

/// The session the in-process reading runs as (any login would do: the probes read DMVs).
pub(crate) fn session() -> SessionInfo {
    SessionInfo {
        spid: 52,
        user: "milink".into(),
        database: "master".into(),
        strict: false,
    }
}

/// A `datetime` as it comes back over TDS: rounded to 1/300 s, then read as milliseconds.
pub(crate) fn wire_datetime(t: Timestamp) -> Timestamp {
    let ms = t.as_millis();
    let (day, in_day) = (ms / 86_400_000, ms % 86_400_000);
    let ticks = (in_day * 300 + 500) / 1000;
    Timestamp::from_millis(day * 86_400_000 + ticks * 1000 / 300)
}

/// One value of a result set as the adapter reads it off the wire.
pub(crate) fn adapter_value(v: &WireValue) -> Value {
    match v {
        WireValue::Null => Value::Null,
        WireValue::String(s) => Value::String(s.clone()),
        WireValue::Binary(b) => Value::Bytes(b.clone()),
        WireValue::Numeric { value, scale } => Value::Numeric {
            value: *value,
            scale: *scale,
        },
        WireValue::Int(n) => Value::Int(i64::from(*n)),
        WireValue::BigInt(n) => Value::Int(*n),
        WireValue::SmallInt(n) => Value::Int(i64::from(*n)),
        WireValue::TinyInt(n) => Value::Int(i64::from(*n)),
        WireValue::Bit(b) => Value::Bool(*b),
        WireValue::DateTime(t) => Value::DateTime(DateTime::from(wire_datetime(*t))),
        WireValue::Guid(g) => Value::Guid(*g),
    }
}

/// The rows of a result set as the adapter reads them, by column name.
pub(crate) fn adapter_rows(set: &WireSet) -> Vec<Row> {
    set.rows
        .iter()
        .map(|values| {
            let mut row = Row::new();
            for (c, v) in set.columns.iter().zip(values) {
                row.push(c.name.clone(), adapter_value(v));
            }
            row
        })
        .collect()
}

impl World {
    /// The managed instance's view of `link` as its DMVs show it now (live, no ARM lag), with
    /// `databases` first, and what its update type tells of the policy. `None` when the
    /// probes cannot be answered (a bug of the simulator's engine; the caller falls back to
    /// ARM's view, as the adapter does when the endpoint cannot be read).
    pub(crate) fn live_instance_view(
        &self,
        link: &LinkName,
        databases: &[DatabaseName],
    ) -> Option<(SideView, Option<UpdatePolicy>)> {
        let batch = tsql::probe_instance_link_state(link);
        let sets = run_select(self, Side::ManagedInstance, &session(), batch.expose_sql()).ok()?;
        let [replicas, states, update_type] = sets.as_slice() else {
            return None;
        };
        parse::parse_instance_side_view(
            databases,
            &adapter_rows(replicas),
            &adapter_rows(states),
            &adapter_rows(update_type),
        )
        .ok()
    }
}
