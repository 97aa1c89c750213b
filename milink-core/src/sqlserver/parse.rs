//! The probes' rowsets turned into milink's types: the link's replica and database replica
//! states, seeding progress, the instance's full backups, fabric parameters, certificates, a
//! certificate's public key, and workload activity; and SQL Server's [`SideView`] built from them.
//!
//! Each parser reads the columns that the probe in [`crate::tsql::probes`] or
//! [`crate::tsql::workload`] documents, by name, through [`Row`]'s typed getters. A rowset that
//! does not fit is a [`ParseError`] naming the probe, the row and the column.

use std::collections::BTreeSet;

use crate::lifecycle::{
    AvailabilityMode, DatabaseView, FullBackup, PartnerReplica, ReplicaRole, SideView, SyncHealth,
    SyncState,
};
use crate::names::{CertificateName, DatabaseName, Lsn, SqlVersion, TcpPort, UpdatePolicy};
use crate::ports::{PortError, PortErrorKind};
use crate::redirect::{ClientSession, WorkloadActivity};
use crate::time::Timestamp;

use super::rows::{Row, RowError};

/// The [`PortError`] code of a rowset that does not have the shape its probe documents.
pub const ROWSET_CODE: &str = "rowset";

/// A rowset that does not have the shape its probe documents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A value of one row could not be read.
    #[error("{probe}, row {row}: {error}")]
    Row {
        /// The probe whose rowset it is.
        probe: &'static str,
        /// The row's index (0-based).
        row: usize,
        /// What was wrong.
        error: RowError,
    },
    /// The probe returns exactly one row, and the rowset has another count.
    #[error("{probe}: expected one row, got {found}")]
    RowCount {
        /// The probe.
        probe: &'static str,
        /// Rows found.
        found: usize,
    },
}

impl From<ParseError> for PortError {
    /// A permanent error: reading the same rowset again gives the same answer.
    fn from(error: ParseError) -> PortError {
        PortError::permanent(
            PortErrorKind::Other(ROWSET_CODE.to_owned()),
            format!("SQL Server answered a probe with an unexpected rowset: {error}"),
        )
    }
}

/// The probe names used in errors.
mod probe {
    pub const REPLICA_STATES: &str = "probe_replica_states";
    pub const DATABASE_REPLICA_STATES: &str = "probe_database_replica_states";
    pub const SEEDING_STATS: &str = "probe_seeding_stats";
    pub const FIRST_FULL_BACKUPS: &str = "probe_first_full_backups";
    pub const HADR_PORT: &str = "probe_hadr_port";
    pub const DNS_RECORD_NAME: &str = "probe_dns_record_name";
    pub const ADD_ISSUER_EXISTS: &str = "probe_sp_certificate_add_issuer_exists";
    pub const CERTIFICATES: &str = "probe_certificates";
    pub const PUBLIC_KEY: &str = "export_certificate_public_key";
    pub const WORKLOAD: &str = "probe_workload_activity";
    pub const INSTANCE_PROPERTIES: &str = "instance_properties";
    pub const INSTANCE_UPDATE_TYPE: &str = "probe_instance_update_type";
}

/// Parses every row of `rows` with `f`, naming `probe` and the row in errors.
fn each<T>(
    probe: &'static str,
    rows: &[Row],
    f: impl Fn(&Row) -> Result<T, RowError>,
) -> Result<Vec<T>, ParseError> {
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            f(r).map_err(|error| ParseError::Row {
                probe,
                row: i,
                error,
            })
        })
        .collect()
}

/// The single row of a one-row probe.
fn single<'a>(probe: &'static str, rows: &'a [Row]) -> Result<&'a Row, ParseError> {
    match rows {
        [row] => Ok(row),
        _ => Err(ParseError::RowCount {
            probe,
            found: rows.len(),
        }),
    }
}

fn invalid(column: &str, expected: &'static str, value: &str) -> RowError {
    RowError::Invalid {
        column: column.to_owned(),
        expected,
        value: value.to_owned(),
    }
}

fn database_name(row: &Row, column: &str) -> Result<DatabaseName, RowError> {
    let name = row.str(column)?;
    DatabaseName::new(name).map_err(|_| invalid(column, "a database name", name))
}

fn opt_enum<T>(
    row: &Row,
    column: &str,
    expected: &'static str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, RowError> {
    match row.opt_str(column)? {
        None => Ok(None),
        Some(text) => parse(text.trim())
            .map(Some)
            .ok_or_else(|| invalid(column, expected, text)),
    }
}

/// `availability_mode_desc`.
pub fn availability_mode(desc: &str) -> Option<AvailabilityMode> {
    match desc {
        "SYNCHRONOUS_COMMIT" => Some(AvailabilityMode::SynchronousCommit),
        "ASYNCHRONOUS_COMMIT" => Some(AvailabilityMode::AsynchronousCommit),
        _ => None,
    }
}

/// `role_desc`: `PRIMARY`, `SECONDARY`; `RESOLVING` and anything else are
/// [`ReplicaRole::Resolving`].
pub fn replica_role(desc: &str) -> ReplicaRole {
    match desc {
        "PRIMARY" => ReplicaRole::Primary,
        "SECONDARY" => ReplicaRole::Secondary,
        _ => ReplicaRole::Resolving,
    }
}

/// `synchronization_state_desc` (milink-facts §3.2).
pub fn sync_state(desc: &str) -> Option<SyncState> {
    match desc {
        "NOT SYNCHRONIZING" => Some(SyncState::NotSynchronizing),
        "SYNCHRONIZING" => Some(SyncState::Synchronizing),
        "SYNCHRONIZED" => Some(SyncState::Synchronized),
        "REVERTING" => Some(SyncState::Reverting),
        "INITIALIZING" => Some(SyncState::Initializing),
        _ => None,
    }
}

/// `synchronization_health_desc` (milink-facts §3.2).
pub fn sync_health(desc: &str) -> Option<SyncHealth> {
    match desc {
        "NOT_HEALTHY" => Some(SyncHealth::NotHealthy),
        "PARTIALLY_HEALTHY" => Some(SyncHealth::PartiallyHealthy),
        "HEALTHY" => Some(SyncHealth::Healthy),
        _ => None,
    }
}

/// `connected_state_desc`: `CONNECTED` / `DISCONNECTED`.
pub fn connected_state(desc: &str) -> Option<bool> {
    match desc {
        "CONNECTED" => Some(true),
        "DISCONNECTED" => Some(false),
        _ => None,
    }
}

/// One row of [`crate::tsql::probe_replica_states`]: a replica of the link's DAG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaState {
    /// `ag_name`: the DAG.
    pub ag_name: String,
    /// `replica_server_name`: the AG of that side.
    pub replica_server_name: String,
    /// `endpoint_url`: its listener URL.
    pub endpoint_url: Option<String>,
    /// `availability_mode_desc`.
    pub availability_mode: Option<AvailabilityMode>,
    /// `is_local` (NULL when the DMV has no row for the replica).
    pub is_local: Option<bool>,
    /// `role_desc`.
    pub role: Option<ReplicaRole>,
    /// `operational_state_desc`.
    pub operational_state: Option<String>,
    /// `connected_state_desc`.
    pub connected: Option<bool>,
    /// `synchronization_health_desc`.
    pub health: Option<SyncHealth>,
    /// `last_connect_error_number` and `last_connect_error_description`.
    pub last_connect_error: Option<(u32, String)>,
}

fn replica_state(row: &Row) -> Result<ReplicaState, RowError> {
    let error_number = match row.opt_i64("last_connect_error_number")? {
        None => None,
        Some(n) => Some(u32::try_from(n).map_err(|_| {
            invalid(
                "last_connect_error_number",
                "an error number",
                &n.to_string(),
            )
        })?),
    };
    Ok(ReplicaState {
        ag_name: row.str("ag_name")?.to_owned(),
        replica_server_name: row.str("replica_server_name")?.to_owned(),
        endpoint_url: row.opt_str("endpoint_url")?.map(str::to_owned),
        availability_mode: opt_enum(
            row,
            "availability_mode_desc",
            "SYNCHRONOUS_COMMIT or ASYNCHRONOUS_COMMIT",
            availability_mode,
        )?,
        is_local: row.opt_bool("is_local")?,
        role: row.opt_str("role_desc")?.map(|d| replica_role(d.trim())),
        operational_state: row.opt_str("operational_state_desc")?.map(str::to_owned),
        connected: opt_enum(
            row,
            "connected_state_desc",
            "CONNECTED or DISCONNECTED",
            connected_state,
        )?,
        health: opt_enum(
            row,
            "synchronization_health_desc",
            "a synchronization health",
            sync_health,
        )?,
        last_connect_error: match error_number {
            // Number 0 is "no error" in the DMV.
            None | Some(0) => None,
            Some(n) => Some((
                n,
                row.opt_str("last_connect_error_description")?
                    .unwrap_or_default()
                    .to_owned(),
            )),
        },
    })
}

/// Parses the rowset of [`crate::tsql::probe_replica_states`].
pub fn replica_states(rows: &[Row]) -> Result<Vec<ReplicaState>, ParseError> {
    each(probe::REPLICA_STATES, rows, replica_state)
}

/// One row of [`crate::tsql::probe_database_replica_states`] (or its by-database variant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseReplicaState {
    /// `database_name`.
    pub database: DatabaseName,
    /// `ag_name` (NULL in the by-database variant when no AG carries the row).
    pub ag_name: Option<String>,
    /// `replica_server_name`.
    pub replica_server_name: Option<String>,
    /// `is_local`.
    pub is_local: bool,
    /// `is_primary_replica`.
    pub is_primary_replica: bool,
    /// `synchronization_state_desc`.
    pub sync_state: Option<SyncState>,
    /// `synchronization_health_desc`.
    pub health: Option<SyncHealth>,
    /// `last_hardened_lsn` (NULL on an asynchronous primary's own row).
    pub last_hardened_lsn: Option<Lsn>,
    /// `last_commit_lsn`.
    pub last_commit_lsn: Option<Lsn>,
    /// `end_of_log_lsn`.
    pub end_of_log_lsn: Option<Lsn>,
    /// `last_commit_time`.
    pub last_commit_time: Option<Timestamp>,
    /// `log_send_queue_size` in KB.
    pub log_send_queue_kb: Option<u64>,
    /// `redo_queue_size` in KB.
    pub redo_queue_kb: Option<u64>,
    /// `secondary_lag_seconds`.
    pub secondary_lag_seconds: Option<u64>,
}

fn database_replica_state(row: &Row) -> Result<DatabaseReplicaState, RowError> {
    Ok(DatabaseReplicaState {
        database: database_name(row, "database_name")?,
        ag_name: row.opt_str("ag_name")?.map(str::to_owned),
        replica_server_name: row.opt_str("replica_server_name")?.map(str::to_owned),
        is_local: row.bool("is_local")?,
        is_primary_replica: row.opt_bool("is_primary_replica")?.unwrap_or(false),
        sync_state: opt_enum(
            row,
            "synchronization_state_desc",
            "a synchronization state",
            sync_state,
        )?,
        health: opt_enum(
            row,
            "synchronization_health_desc",
            "a synchronization health",
            sync_health,
        )?,
        last_hardened_lsn: row.opt_lsn("last_hardened_lsn")?,
        last_commit_lsn: row.opt_lsn("last_commit_lsn")?,
        end_of_log_lsn: row.opt_lsn("end_of_log_lsn")?,
        last_commit_time: row.opt_timestamp("last_commit_time")?,
        log_send_queue_kb: row.opt_u64("log_send_queue_size")?,
        redo_queue_kb: row.opt_u64("redo_queue_size")?,
        secondary_lag_seconds: row.opt_u64("secondary_lag_seconds")?,
    })
}

/// Parses the rowset of [`crate::tsql::probe_database_replica_states`] or
/// [`crate::tsql::probe_database_replica_states_by_database`].
pub fn database_replica_states(rows: &[Row]) -> Result<Vec<DatabaseReplicaState>, ParseError> {
    each(probe::DATABASE_REPLICA_STATES, rows, database_replica_state)
}

/// The rows a Business Critical managed instance's own primary replica reports (its local high
/// availability replicas appear in the DMV too, milink-facts §3.2).
pub fn primary_replica_rows(rows: &[DatabaseReplicaState]) -> Vec<&DatabaseReplicaState> {
    rows.iter().filter(|r| r.is_primary_replica).collect()
}

/// One row of [`crate::tsql::probe_seeding_stats`]: a seeding operation in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedingStat {
    /// `local_database_name`.
    pub database: DatabaseName,
    /// `current_state` (`PENDING`, `CHECK_IF_SEEDING_NEEDED`, `LIMIT_CONCURRENT_BACKUPS`, …).
    pub current_state: Option<String>,
    /// `is_source`.
    pub is_source: Option<bool>,
    /// `internal_state_desc`.
    pub internal_state: Option<String>,
    /// `database_size_bytes`.
    pub database_size_bytes: Option<u64>,
    /// `transferred_size_bytes`.
    pub transferred_size_bytes: Option<u64>,
    /// `transfer_rate_bytes_per_second`.
    pub transfer_rate_bytes_per_second: Option<u64>,
    /// `is_compression_enabled` (trace flag 9567).
    pub is_compression_enabled: Option<bool>,
    /// `start_time_utc`.
    pub start_time: Option<Timestamp>,
    /// `estimate_time_complete_utc` (overstated with compression).
    pub estimated_completion: Option<Timestamp>,
    /// `completion_time`.
    pub completion_time: Option<Timestamp>,
    /// `number_of_attempts`.
    pub attempts: Option<u32>,
}

impl SeedingStat {
    /// Bytes transferred of the database's size, in percent (0–100); `None` while the size is
    /// not known.
    pub fn percent(&self) -> Option<u8> {
        let size = self.database_size_bytes.filter(|s| *s > 0)?;
        let done = u128::from(self.transferred_size_bytes.unwrap_or(0)).min(u128::from(size));
        u8::try_from(done * 100 / u128::from(size)).ok()
    }
}

fn seeding_stat(row: &Row) -> Result<SeedingStat, RowError> {
    let attempts = match row.opt_i64("number_of_attempts")? {
        None => None,
        Some(n) => Some(
            u32::try_from(n)
                .map_err(|_| invalid("number_of_attempts", "a count", &n.to_string()))?,
        ),
    };
    Ok(SeedingStat {
        database: database_name(row, "local_database_name")?,
        current_state: row.opt_str("current_state")?.map(str::to_owned),
        is_source: row.opt_bool("is_source")?,
        internal_state: row.opt_str("internal_state_desc")?.map(str::to_owned),
        database_size_bytes: row.opt_u64("database_size_bytes")?,
        transferred_size_bytes: row.opt_u64("transferred_size_bytes")?,
        transfer_rate_bytes_per_second: row.opt_u64("transfer_rate_bytes_per_second")?,
        is_compression_enabled: row.opt_bool("is_compression_enabled")?,
        start_time: row.opt_timestamp("start_time_utc")?,
        estimated_completion: row.opt_timestamp("estimate_time_complete_utc")?,
        completion_time: row.opt_timestamp("completion_time")?,
        attempts,
    })
}

/// Parses the rowset of [`crate::tsql::probe_seeding_stats`].
pub fn seeding_stats(rows: &[Row]) -> Result<Vec<SeedingStat>, ParseError> {
    each(probe::SEEDING_STATS, rows, seeding_stat)
}

/// Parses the rowset of [`crate::tsql::probe_first_full_backups`].
pub fn full_backups(rows: &[Row]) -> Result<Vec<FullBackup>, ParseError> {
    each(probe::FIRST_FULL_BACKUPS, rows, |row| {
        Ok(FullBackup {
            database: database_name(row, "database_name")?,
            finished: row.opt_timestamp("backup_finish_date")?,
        })
    })
}

/// Parses the rowset of [`crate::tsql::probe_hadr_port`]: the port, or `None` outside a
/// managed instance (no rows).
pub fn hadr_port(rows: &[Row]) -> Result<Option<TcpPort>, ParseError> {
    if rows.is_empty() {
        return Ok(None);
    }
    let row = single(probe::HADR_PORT, rows)?;
    let port = || -> Result<TcpPort, RowError> {
        let text = row.str("hadr_port")?;
        text.trim()
            .parse::<u16>()
            .ok()
            .and_then(|p| TcpPort::new(p).ok())
            .ok_or_else(|| invalid("hadr_port", "a TCP port", text))
    };
    port().map(Some).map_err(|error| ParseError::Row {
        probe: probe::HADR_PORT,
        row: 0,
        error,
    })
}

/// Parses the rowset of [`crate::tsql::probe_dns_record_name`]: the instance's FQDN, or `None`
/// outside a managed instance (no rows).
pub fn dns_record_name(rows: &[Row]) -> Result<Option<String>, ParseError> {
    if rows.is_empty() {
        return Ok(None);
    }
    let row = single(probe::DNS_RECORD_NAME, rows)?;
    row.opt_str("dns_record_name")
        .map(|v| v.map(str::to_owned))
        .map_err(|error| ParseError::Row {
            probe: probe::DNS_RECORD_NAME,
            row: 0,
            error,
        })
}

/// Parses the rowset of [`crate::tsql::probe_sp_certificate_add_issuer_exists`].
pub fn add_issuer_exists(rows: &[Row]) -> Result<bool, ParseError> {
    let row = single(probe::ADD_ISSUER_EXISTS, rows)?;
    row.bool("add_issuer_exists")
        .map_err(|error| ParseError::Row {
            probe: probe::ADD_ISSUER_EXISTS,
            row: 0,
            error,
        })
}

/// SQL Server's build from the `product_version` column of the one-row rowset of
/// [`crate::tsql::readiness::instance_properties`] (`SERVERPROPERTY('ProductVersion')`), which
/// [`SideView::version`] carries.
pub fn product_version(rows: &[Row]) -> Result<SqlVersion, ParseError> {
    let row = single(probe::INSTANCE_PROPERTIES, rows)?;
    let version = || -> Result<SqlVersion, RowError> {
        let text = row.str("product_version")?;
        SqlVersion::parse(text.trim()).map_err(|_| invalid("product_version", "a build", text))
    };
    version().map_err(|error| ParseError::Row {
        probe: probe::INSTANCE_PROPERTIES,
        row: 0,
        error,
    })
}

/// What [`crate::tsql::probe_instance_update_type`] tells of the instance's update policy:
/// `Continuous` is [`UpdatePolicy::AlwaysUpToDate`]; `CU` (the SQL Server 2022 or 2025 policy,
/// which the property does not tell apart) and NULL tell nothing (`None`). Another value is an
/// error.
pub fn instance_update_type(rows: &[Row]) -> Result<Option<UpdatePolicy>, ParseError> {
    let row = single(probe::INSTANCE_UPDATE_TYPE, rows)?;
    let read = || -> Result<Option<UpdatePolicy>, RowError> {
        match row.opt_str("product_update_type")?.map(str::trim) {
            None => Ok(None),
            Some(t) if t.eq_ignore_ascii_case("continuous") => {
                Ok(Some(UpdatePolicy::AlwaysUpToDate))
            }
            Some(t) if t.eq_ignore_ascii_case("cu") => Ok(None),
            Some(t) => Err(invalid("product_update_type", "CU or Continuous", t)),
        }
    };
    read().map_err(|error| ParseError::Row {
        probe: probe::INSTANCE_UPDATE_TYPE,
        row: 0,
        error,
    })
}

/// The managed instance's view of the link from the rowsets of
/// [`crate::tsql::probe_instance_link_state`] (replica states, database replica states, update
/// type), read as [`source_side_view`] reads SQL Server's, with no build, no seeding rows and
/// [`SideView::live`] set; and what the update type tells of the policy
/// ([`instance_update_type`]). Merge it into ARM's view with [`SideView::merged_with_live`].
pub fn parse_instance_side_view(
    databases: &[DatabaseName],
    replica_rows: &[Row],
    database_rows: &[Row],
    update_type_rows: &[Row],
) -> Result<(SideView, Option<UpdatePolicy>), ParseError> {
    let mut view = source_side_view(
        databases,
        &replica_states(replica_rows)?,
        &database_replica_states(database_rows)?,
        &[],
        None,
    );
    view.live = view.exists;
    Ok((view, instance_update_type(update_type_rows)?))
}

/// One row of [`crate::tsql::probe_certificates`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRow {
    /// `name`.
    pub name: CertificateName,
    /// `subject`.
    pub subject: Option<String>,
    /// `start_date`.
    pub start_date: Option<Timestamp>,
    /// `expiry_date`.
    pub expiry_date: Option<Timestamp>,
    /// `thumbprint` (SHA-1 of the certificate).
    pub thumbprint: Option<Vec<u8>>,
}

impl CertificateRow {
    /// Whether the certificate has expired at `now` (an expired endpoint certificate breaks
    /// the link).
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expiry_date.is_some_and(|e| e <= now)
    }
}

/// Parses the rowset of [`crate::tsql::probe_certificates`].
pub fn certificates(rows: &[Row]) -> Result<Vec<CertificateRow>, ParseError> {
    each(probe::CERTIFICATES, rows, |row| {
        let name = row.str("name")?;
        Ok(CertificateRow {
            name: CertificateName::new(name)
                .map_err(|_| invalid("name", "a certificate name", name))?,
            subject: row.opt_str("subject")?.map(str::to_owned),
            start_date: row.opt_timestamp("start_date")?,
            expiry_date: row.opt_timestamp("expiry_date")?,
            thumbprint: row.opt_bytes("thumbprint")?.map(<[u8]>::to_vec),
        })
    })
}

/// Parses the rowset of [`crate::tsql::export_certificate_public_key`]: the DER bytes, or
/// `None` when no certificate of that name exists (NULL).
pub fn public_key(rows: &[Row]) -> Result<Option<Vec<u8>>, ParseError> {
    let row = single(probe::PUBLIC_KEY, rows)?;
    row.opt_bytes("PublicKey")
        .map(|b| b.map(<[u8]>::to_vec))
        .map_err(|error| ParseError::Row {
            probe: probe::PUBLIC_KEY,
            row: 0,
            error,
        })
}

/// Parses the rowset of [`crate::tsql::probe_workload_activity`].
pub fn workload_activity(rows: &[Row]) -> Result<WorkloadActivity, ParseError> {
    let sessions = each(probe::WORKLOAD, rows, |row| {
        let id = row.i64("session_id")?;
        let open = row.i64("open_transactions")?;
        Ok(ClientSession {
            session_id: u16::try_from(id)
                .map_err(|_| invalid("session_id", "a session id", &id.to_string()))?,
            database: database_name(row, "database_name")?,
            login: row.str("login_name")?.to_owned(),
            host: row.opt_str("host_name")?.map(str::to_owned),
            program: row.opt_str("program_name")?.map(str::to_owned),
            status: row.str("status")?.to_owned(),
            open_transactions: u32::try_from(open)
                .map_err(|_| invalid("open_transactions", "a count", &open.to_string()))?,
            oldest_transaction_start: row.opt_timestamp("oldest_transaction_begin")?,
        })
    })?;
    Ok(WorkloadActivity { sessions })
}

/// SQL Server's view of the link, from the parsed rowsets of
/// [`crate::tsql::probe_replica_states`], [`crate::tsql::probe_database_replica_states`] and
/// [`crate::tsql::probe_seeding_stats`], and the build read with them.
///
/// - `exists`: the DAG has at least one replica row.
/// - `role`, `mode`: the local replica's (`is_local = 1`); `partner_mode`: the other replica's.
/// - `connected`: the remote replica's `connected_state_desc` (the primary's DMV has a row for
///   it), else the local replica's (a secondary's own row tells whether it reaches the primary).
/// - Per database, `databases` first in the order given, then every other database of the DAG
///   by name. From the local row: `sync_state`, `health`, `last_hardened_lsn`,
///   `end_of_log_lsn`, `last_commit_lsn`; from the remote row (on the primary): `partner`, and
///   the queues and lag, which SQL Server reports on the primary's row for the secondary (the
///   local row's values when there is no remote row). A database without a local row is
///   `NOT SYNCHRONIZING` and `NOT_HEALTHY`. `seeding_percent` comes from the seeding row of the
///   database. `last_error` is the remote replica's last connection error (`sql:<n>: <text>`),
///   only while it is not connected (the DMV keeps the last error after the connection came
///   back).
pub fn source_side_view(
    databases: &[DatabaseName],
    replicas: &[ReplicaState],
    states: &[DatabaseReplicaState],
    seeding: &[SeedingStat],
    version: Option<SqlVersion>,
) -> SideView {
    if replicas.is_empty() {
        return SideView {
            version,
            ..SideView::unknown()
        };
    }
    let local = replicas.iter().find(|r| r.is_local == Some(true));
    let remote = match local {
        Some(l) => replicas
            .iter()
            .find(|r| r.replica_server_name != l.replica_server_name),
        None => None,
    };
    let connected = remote
        .and_then(|r| r.connected)
        .or_else(|| local.and_then(|l| l.connected))
        .unwrap_or(false);
    let last_error = remote
        .filter(|r| r.connected != Some(true))
        .and_then(|r| r.last_connect_error.as_ref())
        .or_else(|| {
            local
                .filter(|l| l.connected != Some(true))
                .and_then(|l| l.last_connect_error.as_ref())
        })
        .map(|(n, text)| format!("sql:{n}: {text}"));

    let mut names: Vec<DatabaseName> = databases.to_vec();
    let extra: BTreeSet<&DatabaseName> = states
        .iter()
        .map(|s| &s.database)
        .filter(|d| !databases.contains(d))
        .collect();
    names.extend(extra.into_iter().cloned());

    let views = names
        .into_iter()
        .map(|name| {
            let own = states.iter().find(|s| s.database == name && s.is_local);
            let other = states.iter().find(|s| s.database == name && !s.is_local);
            let queue_row = other.or(own);
            DatabaseView {
                sync_state: Some(
                    own.and_then(|s| s.sync_state)
                        .unwrap_or(SyncState::NotSynchronizing),
                ),
                health: own.and_then(|s| s.health).unwrap_or(SyncHealth::NotHealthy),
                last_hardened_lsn: own.and_then(|s| s.last_hardened_lsn),
                end_of_log_lsn: own.and_then(|s| s.end_of_log_lsn),
                partner: other.and_then(|s| {
                    s.sync_state.map(|sync_state| PartnerReplica {
                        sync_state,
                        last_hardened_lsn: s.last_hardened_lsn,
                    })
                }),
                last_commit_lsn: own.and_then(|s| s.last_commit_lsn),
                seeding_percent: seeding
                    .iter()
                    .find(|s| s.database == name)
                    .and_then(SeedingStat::percent),
                log_send_queue_kb: queue_row.and_then(|s| s.log_send_queue_kb),
                redo_queue_kb: queue_row.and_then(|s| s.redo_queue_kb),
                lag_seconds: queue_row.and_then(|s| s.secondary_lag_seconds),
                last_error: last_error.clone(),
                replica_state: None,
                name,
            }
        })
        .collect();

    SideView {
        exists: true,
        role: local.and_then(|l| l.role),
        mode: local.and_then(|l| l.availability_mode),
        partner_mode: remote.and_then(|r| r.availability_mode),
        connected,
        databases: views,
        version,
        update_policy: None,
        failover_mode: None,
        live: false,
    }
}

/// [`source_side_view`] from the three rowsets as they came.
pub fn parse_source_side_view(
    databases: &[DatabaseName],
    replica_rows: &[Row],
    database_rows: &[Row],
    seeding_rows: &[Row],
    version: Option<SqlVersion>,
) -> Result<SideView, ParseError> {
    Ok(source_side_view(
        databases,
        &replica_states(replica_rows)?,
        &database_replica_states(database_rows)?,
        &seeding_stats(seeding_rows)?,
        version,
    ))
}

#[cfg(test)]
mod tests;
