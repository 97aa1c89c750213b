//! Read-only probes of the link: replica and database replica states, seeding, the managed
//! instance's first full backup, its fabric configuration, and certificates
//! (milink-facts §1.4, §1.6, §3.1–§3.3, §4.4).
//!
//! Each probe is one batch with one result set whose columns have fixed names, documented on
//! the function, so an adapter reads them by name. LSNs come back as decimal strings
//! (`varchar(25)`), to be read with [`crate::names::Lsn::parse`]; NULL stays NULL.

use crate::names::{CertificateName, DatabaseName, LinkName};

use super::{Batch, SqlIdentifier};

/// The link's replicas and how each is doing, on either side.
///
/// One row per DAG replica (the AG on SQL Server and the AG on the managed instance), ordered
/// by `replica_server_name`. No rows: the DAG does not exist here. Columns:
/// - `ag_name` (sysname): the DAG name;
/// - `replica_server_name` (nvarchar): the replica, i.e. the AG name of that side;
/// - `endpoint_url` (nvarchar): its listener URL;
/// - `availability_mode_desc` (nvarchar): `SYNCHRONOUS_COMMIT` / `ASYNCHRONOUS_COMMIT`;
/// - `is_local` (bit, NULL when the DMV has no row for the replica);
/// - `role_desc` (nvarchar, NULL likewise): `PRIMARY`, `SECONDARY`, `RESOLVING`;
/// - `operational_state_desc` (nvarchar, NULL likewise);
/// - `connected_state_desc` (nvarchar, NULL likewise): `CONNECTED` / `DISCONNECTED`;
/// - `synchronization_health_desc` (nvarchar, NULL likewise): `HEALTHY`, `PARTIALLY_HEALTHY`,
///   `NOT_HEALTHY`;
/// - `last_connect_error_number` (int, NULL when none) and `last_connect_error_description`
///   (nvarchar).
///
/// Link health on the primary is the `synchronization_health_desc` of the row with
/// `is_local = 0`; the local side's role is the `role_desc` of the row with `is_local = 1`
/// (both sides PRIMARY is a split brain).
pub fn probe_replica_states(dag: &LinkName) -> Batch {
    Batch::new(
        "read the link's replica states",
        format!(
            "SELECT\n    \
             ag.name AS ag_name,\n    \
             ar.replica_server_name AS replica_server_name,\n    \
             ar.endpoint_url AS endpoint_url,\n    \
             ar.availability_mode_desc AS availability_mode_desc,\n    \
             rs.is_local AS is_local,\n    \
             rs.role_desc AS role_desc,\n    \
             rs.operational_state_desc AS operational_state_desc,\n    \
             rs.connected_state_desc AS connected_state_desc,\n    \
             rs.synchronization_health_desc AS synchronization_health_desc,\n    \
             rs.last_connect_error_number AS last_connect_error_number,\n    \
             rs.last_connect_error_description AS last_connect_error_description\n\
             FROM sys.availability_groups AS ag\n\
             JOIN sys.availability_replicas AS ar ON ar.group_id = ag.group_id\n\
             LEFT JOIN sys.dm_hadr_availability_replica_states AS rs ON rs.replica_id = ar.replica_id\n\
             WHERE ag.name = {literal} AND ag.is_distributed = 1\n\
             ORDER BY ar.replica_server_name;\n",
            literal = dag.literal(),
        ),
    )
}

/// The columns and joins shared by the database replica state probes.
const DATABASE_REPLICA_STATE_SELECT: &str = "SELECT\n    \
     db.name AS database_name,\n    \
     ag.name AS ag_name,\n    \
     ar.replica_server_name AS replica_server_name,\n    \
     drs.is_local AS is_local,\n    \
     drs.is_primary_replica AS is_primary_replica,\n    \
     drs.synchronization_state_desc AS synchronization_state_desc,\n    \
     drs.synchronization_health_desc AS synchronization_health_desc,\n    \
     CONVERT(varchar(25), drs.last_hardened_lsn) AS last_hardened_lsn,\n    \
     CONVERT(varchar(25), drs.last_commit_lsn) AS last_commit_lsn,\n    \
     CONVERT(varchar(25), drs.end_of_log_lsn) AS end_of_log_lsn,\n    \
     drs.last_commit_time AS last_commit_time,\n    \
     drs.log_send_queue_size AS log_send_queue_size,\n    \
     drs.redo_queue_size AS redo_queue_size,\n    \
     drs.secondary_lag_seconds AS secondary_lag_seconds\n\
     FROM sys.dm_hadr_database_replica_states AS drs\n\
     JOIN sys.databases AS db ON db.database_id = drs.database_id\n";

/// Replication state of every database of the link, in one round trip (run on SQL Server).
///
/// One row per database and DAG replica visible here, ordered by `database_name`, local row
/// first. Columns:
/// - `database_name` (sysname), `ag_name` (sysname: the DAG), `replica_server_name`
///   (nvarchar: the AG of that side);
/// - `is_local` (bit), `is_primary_replica` (bit);
/// - `synchronization_state_desc` (nvarchar): `NOT SYNCHRONIZING`, `SYNCHRONIZING`,
///   `SYNCHRONIZED`, `REVERTING`, `INITIALIZING`;
/// - `synchronization_health_desc` (nvarchar): `NOT_HEALTHY`, `PARTIALLY_HEALTHY`, `HEALTHY`;
/// - `last_hardened_lsn`, `last_commit_lsn`, `end_of_log_lsn` (varchar(25) decimal, NULL
///   where the DMV has none, e.g. `last_hardened_lsn` on an asynchronous primary's own row);
/// - `last_commit_time` (datetime);
/// - `log_send_queue_size`, `redo_queue_size` (bigint, KB), `secondary_lag_seconds` (bigint).
///
/// On the managed instance the DAG's rows may not carry the link name (UNVERIFIED); read there
/// with [`probe_database_replica_states_by_database`] instead.
pub fn probe_database_replica_states(dag: &LinkName) -> Batch {
    Batch::new(
        "read the link's database replica states",
        format!(
            "{DATABASE_REPLICA_STATE_SELECT}\
             JOIN sys.availability_groups AS ag ON ag.group_id = drs.group_id\n\
             LEFT JOIN sys.availability_replicas AS ar ON ar.replica_id = drs.replica_id\n\
             WHERE ag.name = {literal} AND ag.is_distributed = 1\n\
             ORDER BY db.name, drs.is_local DESC;\n",
            literal = dag.literal(),
        ),
    )
}

/// The managed instance's update type (milink-facts §1.9): one row, one column
/// `product_update_type` (nvarchar): `CU` on an instance with the SQL Server 2022 or 2025 update
/// policy, `Continuous` on an Always-up-to-date one; NULL on SQL Server, which has no such
/// property.
pub fn probe_instance_update_type() -> Batch {
    Batch::new(
        "read the instance's update type",
        "SELECT CAST(SERVERPROPERTY('ProductUpdateType') AS nvarchar(128)) AS \
         product_update_type;\n"
            .to_owned(),
    )
}

/// The link's state as the managed instance's own DMVs show it this instant, in one round trip
/// on the instance's endpoint: [`probe_replica_states`], [`probe_database_replica_states`] and
/// [`probe_instance_update_type`], three result sets in that order. ARM's view of the link lags
/// the instance; this one does not (milink-facts §3.1, §3.2).
///
/// UNVERIFIED: that the instance names its side of the distributed availability group as the
/// link (the ARM resource's name); on a Business Critical instance its local high-availability
/// replicas belong to the instance's own availability group, not to the distributed one, so
/// the filter on the DAG keeps one local row per database.
pub fn probe_instance_link_state(dag: &LinkName) -> Batch {
    let parts = [
        probe_replica_states(dag),
        probe_database_replica_states(dag),
        probe_instance_update_type(),
    ];
    let sql: Vec<&str> = parts.iter().map(Batch::expose_sql).collect();
    Batch::new(
        "read the link's state on the managed instance",
        sql.join("\n"),
    )
}

/// Replication state of the named databases, whatever availability group carries them, in
/// one round trip: the shape of the docs' managed instance query (milink-facts §3.2).
///
/// Same columns as [`probe_database_replica_states`] (`ag_name` and `replica_server_name` may
/// be NULL). On a Business Critical managed instance its local high-availability replicas
/// appear too: keep the rows with `is_primary_replica = 1`. No databases: no rows.
pub fn probe_database_replica_states_by_database(databases: &[DatabaseName]) -> Batch {
    let filter = if databases.is_empty() {
        "1 = 0".to_owned()
    } else {
        let list: Vec<String> = databases.iter().map(SqlIdentifier::literal).collect();
        format!("db.name IN ({})", list.join(", "))
    };
    Batch::new(
        "read database replica states by database name",
        format!(
            "{DATABASE_REPLICA_STATE_SELECT}\
             LEFT JOIN sys.availability_groups AS ag ON ag.group_id = drs.group_id\n\
             LEFT JOIN sys.availability_replicas AS ar ON ar.replica_id = drs.replica_id\n\
             WHERE {filter}\n\
             ORDER BY db.name, drs.is_local DESC;\n",
        ),
    )
}

/// Automatic seeding progress (milink-facts §3.3), on either side.
///
/// One row per seeding operation in progress; no rows when seeding has not started or has
/// finished. Columns: `local_database_name` (sysname), `current_state` (nvarchar, e.g.
/// `PENDING`, `CHECK_IF_SEEDING_NEEDED`, `LIMIT_CONCURRENT_BACKUPS`), `is_source` (bit),
/// `internal_state_desc` (nvarchar), `database_size_bytes`, `transferred_size_bytes`,
/// `transfer_rate_bytes_per_second`, `total_disk_io_wait_time_ms`,
/// `total_network_wait_time_ms` (bigint), `is_compression_enabled` (bit), `start_time_utc`,
/// `estimate_time_complete_utc`, `completion_time` (datetime; the estimate overstates with
/// compression), `number_of_attempts` (int).
pub fn probe_seeding_stats() -> Batch {
    Batch::new(
        "read automatic seeding progress",
        "SELECT\n    \
         ps.local_database_name AS local_database_name,\n    \
         s.current_state AS current_state,\n    \
         s.is_source AS is_source,\n    \
         ps.internal_state_desc AS internal_state_desc,\n    \
         ps.database_size_bytes AS database_size_bytes,\n    \
         ps.transferred_size_bytes AS transferred_size_bytes,\n    \
         ps.transfer_rate_bytes_per_second AS transfer_rate_bytes_per_second,\n    \
         ps.total_disk_io_wait_time_ms AS total_disk_io_wait_time_ms,\n    \
         ps.total_network_wait_time_ms AS total_network_wait_time_ms,\n    \
         ps.is_compression_enabled AS is_compression_enabled,\n    \
         ps.start_time_utc AS start_time_utc,\n    \
         ps.estimate_time_complete_utc AS estimate_time_complete_utc,\n    \
         s.completion_time AS completion_time,\n    \
         s.number_of_attempts AS number_of_attempts\n\
         FROM sys.dm_hadr_physical_seeding_stats AS ps\n\
         JOIN sys.dm_hadr_automatic_seeding AS s ON ps.local_physical_seeding_id = s.operation_id;\n"
            .to_owned(),
    )
}

/// The latest full backup of each named database, from `msdb.dbo.backupset` on the managed
/// instance (the link must not be dropped before the first one exists, milink-facts §4.4).
///
/// Exactly one row per requested database, in the order given. Columns: `database_name`
/// (sysname), `backup_start_date`, `backup_finish_date` (datetime, NULL when there is no full
/// backup yet), `is_copy_only` (bit, NULL likewise). No databases: no rows.
pub fn probe_first_full_backups(databases: &[DatabaseName]) -> Batch {
    let sql = if databases.is_empty() {
        "SELECT CONVERT(sysname, NULL) AS database_name,\n    \
         CONVERT(datetime, NULL) AS backup_start_date,\n    \
         CONVERT(datetime, NULL) AS backup_finish_date,\n    \
         CONVERT(bit, NULL) AS is_copy_only\n\
         WHERE 1 = 0;\n"
            .to_owned()
    } else {
        let rows: Vec<String> = databases
            .iter()
            .enumerate()
            .map(|(i, db)| format!("({i}, {})", db.literal()))
            .collect();
        format!(
            "SELECT d.database_name AS database_name,\n    \
             b.backup_start_date AS backup_start_date,\n    \
             b.backup_finish_date AS backup_finish_date,\n    \
             b.is_copy_only AS is_copy_only\n\
             FROM (VALUES {rows}) AS d (ordinal, database_name)\n\
             OUTER APPLY (\n    \
             SELECT TOP (1) bs.backup_start_date, bs.backup_finish_date, bs.is_copy_only\n    \
             FROM msdb.dbo.backupset AS bs\n    \
             WHERE bs.type = 'D' AND bs.database_name = d.database_name\n    \
             ORDER BY bs.backup_finish_date DESC) AS b\n\
             ORDER BY d.ordinal;\n",
            rows = rows.join(", "),
        )
    };
    Batch::new("read the latest full backup per database", sql)
}

fn fabric_parameter(purpose: &'static str, parameter: &str, alias: &'static str) -> Batch {
    Batch::new(
        purpose,
        format!(
            "SELECT CONVERT(nvarchar(256), value) AS {alias}\n\
             FROM sys.dm_hadr_fabric_config_parameters\n\
             WHERE parameter_name = {parameter};\n",
            alias = alias,
            parameter = super::quote_nstring(parameter),
        ),
    )
}

/// The managed instance's current HADR port (11000–11999; it can change after any managed
/// instance failover). One row, column `hadr_port` (nvarchar, a decimal number); no rows
/// outside a managed instance.
pub fn probe_hadr_port() -> Batch {
    fabric_parameter(
        "read the managed instance's HADR port",
        "HadrPort",
        "hadr_port",
    )
}

/// The managed instance's DNS record name (its FQDN, to test port 5022). One row, column
/// `dns_record_name` (nvarchar); no rows outside a managed instance.
pub fn probe_dns_record_name() -> Batch {
    fabric_parameter(
        "read the managed instance's DNS record name",
        "DnsRecordName",
        "dns_record_name",
    )
}

/// Whether `sp_certificate_add_issuer` exists (it does only on link-capable builds). One row,
/// column `add_issuer_exists` (bit).
pub fn probe_sp_certificate_add_issuer_exists() -> Batch {
    Batch::new(
        "check that sp_certificate_add_issuer exists",
        "SELECT CONVERT(bit, CASE WHEN EXISTS (\n    \
         SELECT 1 FROM master.sys.all_objects WHERE name = N'sp_certificate_add_issuer')\n    \
         THEN 1 ELSE 0 END) AS add_issuer_exists;\n"
            .to_owned(),
    )
}

/// Expiry of the named certificates in `master` (an expired endpoint certificate breaks the
/// link). One row per certificate that exists, ordered by name. Columns: `name` (sysname),
/// `subject` (nvarchar), `start_date`, `expiry_date` (datetime), `thumbprint` (varbinary).
pub fn probe_certificates(names: &[CertificateName]) -> Batch {
    let filter = if names.is_empty() {
        "1 = 0".to_owned()
    } else {
        let list: Vec<String> = names.iter().map(SqlIdentifier::literal).collect();
        format!("name IN ({})", list.join(", "))
    };
    Batch::new(
        "read certificate expiry dates",
        format!(
            "SELECT name AS name, subject AS subject, start_date AS start_date,\n    \
             expiry_date AS expiry_date, thumbprint AS thumbprint\n\
             FROM master.sys.certificates\n\
             WHERE {filter}\n\
             ORDER BY name;\n",
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dbs(names: &[&str]) -> Vec<DatabaseName> {
        names
            .iter()
            .map(|n| DatabaseName::new(*n).unwrap())
            .collect()
    }

    #[test]
    fn replica_states() {
        let batch = probe_replica_states(&LinkName::new("DAG_ToyStore").unwrap());
        insta::assert_snapshot!(batch.display_sql());
    }

    #[test]
    fn database_replica_states() {
        let batch = probe_database_replica_states(&LinkName::new("DAG_ToyStore").unwrap());
        insta::assert_snapshot!(batch.display_sql());
    }

    #[test]
    fn database_replica_states_by_database() {
        let batch = probe_database_replica_states_by_database(&dbs(&["ToyStore", "Toy]Store' --"]));
        insta::assert_snapshot!(batch.display_sql());
        let none = probe_database_replica_states_by_database(&[]);
        assert!(none.display_sql().contains("WHERE 1 = 0\n"));
    }

    #[test]
    fn seeding_stats() {
        insta::assert_snapshot!(probe_seeding_stats().display_sql());
    }

    #[test]
    fn first_full_backups() {
        let batch = probe_first_full_backups(&dbs(&["ToyStore", "Customer360"]));
        insta::assert_snapshot!(batch.display_sql());
    }

    #[test]
    fn first_full_backups_of_nothing_is_a_valid_empty_query() {
        let sql = probe_first_full_backups(&[]).display_sql().to_owned();
        assert!(
            !sql.contains("VALUES"),
            "an empty VALUES list is a syntax error"
        );
        assert!(sql.contains("WHERE 1 = 0"));
        for column in [
            "database_name",
            "backup_start_date",
            "backup_finish_date",
            "is_copy_only",
        ] {
            assert!(sql.contains(&format!("AS {column}")), "{column}");
        }
    }

    #[test]
    fn hadr_port() {
        insta::assert_snapshot!(probe_hadr_port().display_sql());
    }

    #[test]
    fn dns_record_name() {
        insta::assert_snapshot!(probe_dns_record_name().display_sql());
    }

    #[test]
    fn add_issuer_exists() {
        insta::assert_snapshot!(probe_sp_certificate_add_issuer_exists().display_sql());
    }

    #[test]
    fn certificates() {
        let names = [
            CertificateName::new("Cert_TailspinSql_endpoint").unwrap(),
            CertificateName::new("tailspin-mi.abc123.database.windows.net").unwrap(),
        ];
        insta::assert_snapshot!(probe_certificates(&names).display_sql());
        assert!(
            probe_certificates(&[])
                .display_sql()
                .contains("WHERE 1 = 0")
        );
    }

    #[test]
    fn probes_only_read() {
        let link = LinkName::new("DAG_ToyStore").unwrap();
        let all = [
            probe_replica_states(&link),
            probe_database_replica_states(&link),
            probe_database_replica_states_by_database(&dbs(&["ToyStore"])),
            probe_seeding_stats(),
            probe_first_full_backups(&dbs(&["ToyStore"])),
            probe_hadr_port(),
            probe_dns_record_name(),
            probe_sp_certificate_add_issuer_exists(),
            probe_certificates(&[]),
        ];
        for batch in all {
            let sql = batch.display_sql().to_uppercase();
            assert!(sql.starts_with("SELECT"), "{sql}");
            for verb in [
                "INSERT", "UPDATE ", "DELETE", "CREATE", "ALTER", "DROP", "EXEC", "USE ",
            ] {
                assert!(!sql.contains(verb), "{verb} in a probe: {sql}");
            }
            assert_eq!(sql.matches(';').count(), 1, "one statement: {sql}");
        }
    }
}
