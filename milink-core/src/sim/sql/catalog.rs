//! The catalog views and DMVs of a simulated server, built from the world.
//!
//! [`table`] builds one virtual table, by name, for one side ([`Side::SqlServer`] or
//! [`Side::ManagedInstance`]), only when a statement names it. Names are case-insensitive;
//! `sys.x`, `[sys].[x]` and `master.sys.x` are the same view; `msdb.dbo.backupset` needs its
//! database part (or a session in `msdb`). Only the columns milink reads and the join keys are
//! there, with the types of the SQL Server docs (`sql_variant` columns as `nvarchar`/`bigint`).
//!
//! The rows are derived from the same world state the in-process simulator reports: the
//! availability group DMVs from `World::side_view` (roles, health, LSNs, queues, lag) and the
//! replication's seeding phase, the session DMVs from [`World::client_sessions`] and the
//! world's open transactions, `msdb.dbo.backupset` from the instance's backups
//! (`World::full_backups_of` reads the same records).

mod hadr;
mod server;
mod sessions;

#[cfg(all(test, feature = "tds"))]
mod tests;

use crate::lifecycle::Side;
use crate::sim::World;
use crate::sim::tds::{Column, ResultSet, SessionInfo, SqlType, Value};

pub use server::{
    certificate_der, certificate_id, database_id, database_name, server_name, server_property,
    version_text,
};

/// A virtual table under construction: columns first, then rows in column order.
pub(crate) struct TableBuilder {
    set: ResultSet,
}

impl TableBuilder {
    pub(crate) fn new(columns: &[(&str, SqlType)]) -> Self {
        TableBuilder {
            set: ResultSet {
                columns: columns.iter().map(|(n, t)| Column::new(*n, *t)).collect(),
                rows: Vec::new(),
            },
        }
    }

    pub(crate) fn row(&mut self, values: Vec<Value>) {
        self.set.rows.push(values);
    }

    pub(crate) fn build(self) -> ResultSet {
        self.set
    }
}

/// `sysname`.
pub(crate) const SYSNAME: SqlType = SqlType::NVarChar(Some(128));
/// `nvarchar(60)`, the type of the `*_desc` columns.
pub(crate) const DESC: SqlType = SqlType::NVarChar(Some(60));
/// `numeric(25,0)`, the type of LSNs.
pub(crate) const LSN: SqlType = SqlType::Numeric {
    precision: 25,
    scale: 0,
};

/// A string value.
pub(crate) fn s(v: impl Into<String>) -> Value {
    Value::String(v.into())
}

/// A string value or NULL.
pub(crate) fn opt_s(v: Option<impl Into<String>>) -> Value {
    v.map_or(Value::Null, |v| Value::String(v.into()))
}

/// A bigint value or NULL.
pub(crate) fn opt_big(v: Option<u64>) -> Value {
    v.map_or(Value::Null, |v| {
        Value::BigInt(i64::try_from(v).unwrap_or(i64::MAX))
    })
}

/// A deterministic GUID for a catalog object, from its kind and names.
pub(crate) fn guid(parts: &[&str]) -> Value {
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x8422_2325_cbf2_9ce4;
    for p in parts {
        for byte in p.to_lowercase().bytes().chain(std::iter::once(0)) {
            a = (a ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
            b = (b ^ u64::from(byte))
                .wrapping_mul(0x0000_0001_0000_01b3)
                .rotate_left(7);
        }
    }
    let mut g = [0u8; 16];
    g[..8].copy_from_slice(&a.to_be_bytes());
    g[8..].copy_from_slice(&b.to_be_bytes());
    Value::Guid(g)
}

/// The virtual table `parts` names (`[db.]schema.name`) on `side`, or `None` when there is no
/// such table or view (error 208).
pub fn table(
    world: &World,
    side: Side,
    session: &SessionInfo,
    parts: &[&str],
) -> Option<ResultSet> {
    let lower: Vec<String> = parts.iter().map(|p| p.to_lowercase()).collect();
    let (db, schema, name) = match lower.as_slice() {
        [n] => (session.database.to_lowercase(), "dbo".to_owned(), n.clone()),
        [sc, n] => (session.database.to_lowercase(), sc.clone(), n.clone()),
        [d, sc, n] => (d.clone(), sc.clone(), n.clone()),
        _ => return None,
    };
    let schema = if schema.is_empty() {
        "dbo".to_owned()
    } else {
        schema
    };
    database_id(world, side, &db)?;
    match (db.as_str(), schema.as_str(), name.as_str()) {
        ("msdb", "dbo", "backupset") => Some(server::backupset(world, side)),
        (db, "sys", "database_principals") => Some(server::database_principals(world, side, db)),
        (_, "sys", view) => sys_view(world, side, session, view),
        _ => None,
    }
}

fn sys_view(world: &World, side: Side, session: &SessionInfo, view: &str) -> Option<ResultSet> {
    Some(match view {
        "availability_groups" => hadr::availability_groups(world, side),
        "availability_replicas" => hadr::availability_replicas(world, side),
        "dm_hadr_availability_replica_states" => hadr::replica_states(world, side),
        "dm_hadr_database_replica_states" => hadr::database_replica_states(world, side),
        "dm_hadr_physical_seeding_stats" => hadr::physical_seeding_stats(world, side),
        "dm_hadr_automatic_seeding" => hadr::automatic_seeding(world, side),
        "dm_hadr_fabric_config_parameters" => server::fabric_config_parameters(world, side),
        "databases" => server::databases(world, side),
        "certificates" => server::certificates(world, side),
        "symmetric_keys" => server::symmetric_keys(world, side),
        "server_principals" => server::server_principals(world, side),
        "all_objects" => server::all_objects(world, side),
        "database_mirroring_endpoints" => server::mirroring_endpoints(world, side),
        "tcp_endpoints" => server::tcp_endpoints(world, side),
        "dm_os_sys_info" => server::sys_info(world, side),
        "dm_hadr_cluster" => server::hadr_cluster(world, side),
        "server_permissions" => server::server_permissions(world, side),
        "dm_server_registry" => server::server_registry(world, side),
        "configurations" => server::configurations(world, side),
        "dm_exec_sessions" => sessions::exec_sessions(world, side, session),
        "dm_tran_session_transactions" => sessions::session_transactions(world, side),
        "dm_tran_database_transactions" => sessions::database_transactions(world, side),
        "dm_tran_active_transactions" => sessions::active_transactions(world, side),
        _ => return None,
    })
}
