//! Readiness probes: the read-only batches that gather the facts the assessment needs from SQL
//! Server (milink-facts §1.3, §5).
//!
//! Every probe is one round trip and is set-based across all databases (`sys.databases`,
//! `sys.master_files`, `msdb.dbo.backupset`, …), so an instance with 500 databases costs the
//! same number of round trips as one with a single database: [`PROBE_COUNT`]. The per-database
//! catalog views (`sys.filegroups`, `sys.assemblies`, …) are read by one batch that loops over
//! the databases on the server and returns one result set. The only per-database batch is
//! [`module_text`] (the text of procedures, functions, views and triggers), which callers run
//! with bounded concurrency.
//!
//! Every probe returns exactly one result set with the columns its documentation names; dates
//! come back as milliseconds since the Unix epoch, UTC (`bigint`).

use crate::names::{DatabaseName, SqlVersion};
use crate::tsql::{Batch, SqlIdentifier};

/// Purpose of [`instance_properties`].
pub const INSTANCE_PROPERTIES: &str = "readiness: instance properties";
/// Purpose of [`trace_flags`].
pub const TRACE_FLAGS: &str = "readiness: global trace flags";
/// Purpose of [`mirroring_endpoints`].
pub const MIRRORING_ENDPOINTS: &str = "readiness: database mirroring endpoints";
/// Purpose of [`certificates`].
pub const CERTIFICATES: &str = "readiness: certificates in master";
/// Purpose of [`agent_job_steps`].
pub const AGENT_JOB_STEPS: &str = "readiness: SQL Agent job steps";
/// Purpose of [`windows_logins`].
pub const WINDOWS_LOGINS: &str = "readiness: Windows logins";
/// Purpose of [`linked_servers`].
pub const LINKED_SERVERS: &str = "readiness: linked servers";
/// Purpose of [`databases`].
pub const DATABASES: &str = "readiness: databases, backups, AG membership, TDE";
/// Purpose of [`database_files`].
pub const DATABASE_FILES: &str = "readiness: database files";
/// Purpose of [`database_catalog`].
pub const DATABASE_CATALOG: &str = "readiness: per-database catalog";
/// Purpose of [`module_text`].
pub const MODULE_TEXT: &str = "readiness: module text";

/// How many probe batches one instance assessment sends, whatever its number of databases
/// (module text scanning, one batch per database, is counted separately).
pub const PROBE_COUNT: usize = 10;

/// Server properties, host, CPU and memory, master key, Azure Connect pack marker.
///
/// Columns: `product_version`, `product_update_level`, `edition`, `is_hadr_enabled` (int, may
/// be NULL), `collation`, `server_name`, `version_text` (`@@VERSION`, which names the host OS),
/// `cpu_count`, `physical_memory_mb`, `max_server_memory_mb`, `master_key_present` (bit),
/// `has_certificate_add_issuer` (bit: `sp_certificate_add_issuer` exists, i.e. a link-capable
/// build or Azure Connect pack).
///
/// Then, added at the end (readers treat a missing one as "not read"): `is_sysadmin` (int:
/// `IS_SRVROLEMEMBER('sysadmin')` of the login that runs the probe), `instance_name` (NULL for
/// the default instance), `local_net_address` (`CONNECTIONPROPERTY`: SQL Server's address on
/// this connection, NULL when not over TCP), `cluster_name` (`sys.dm_hadr_cluster`, NULL when
/// the host is in no failover cluster), `system_account_permissions` (int: the server
/// permissions granted to `NT AUTHORITY\SYSTEM` as bits — 1 `ALTER ANY AVAILABILITY GROUP`,
/// 2 `CONNECT SQL`, 4 `VIEW SERVER STATE`, 8 `CONTROL SERVER`; NULL when it has none or does
/// not exist), `startup_trace_flags` (int: which of the link's trace flags are `-T` startup
/// parameters in `sys.dm_server_registry` — 1 `-T1800`, 2 `-T9567`, 4 `-T12381`; NULL when no
/// `SQLArg*` value is visible, as on Linux) and `has_multidb_milink` (bit:
/// `sys.sp_multidb_milink` exists). Whether the MultiDatabase switch is on takes `EXEC
/// sys.sp_multidb_milink`, whose answer's shape is not documented; this read-only `SELECT`
/// does not run it. Every column is a scalar expression or subquery, so the batch stays one
/// `SELECT`.
pub fn instance_properties() -> Batch {
    Batch::new(
        INSTANCE_PROPERTIES,
        "SET NOCOUNT ON;
SELECT
    CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)) AS product_version,
    CAST(SERVERPROPERTY('ProductUpdateLevel') AS nvarchar(128)) AS product_update_level,
    CAST(SERVERPROPERTY('Edition') AS nvarchar(128)) AS edition,
    CAST(SERVERPROPERTY('IsHadrEnabled') AS int) AS is_hadr_enabled,
    CAST(SERVERPROPERTY('Collation') AS nvarchar(128)) AS collation,
    CAST(@@SERVERNAME AS nvarchar(256)) AS server_name,
    CAST(@@VERSION AS nvarchar(4000)) AS version_text,
    CAST(i.cpu_count AS int) AS cpu_count,
    CAST(i.physical_memory_kb / 1024 AS bigint) AS physical_memory_mb,
    (SELECT CAST(c.value_in_use AS bigint) FROM sys.configurations AS c
      WHERE c.name = N'max server memory (MB)') AS max_server_memory_mb,
    CAST(CASE WHEN EXISTS (SELECT 1 FROM master.sys.symmetric_keys AS k
                           WHERE k.symmetric_key_id = 101) THEN 1 ELSE 0 END AS bit) AS master_key_present,
    CAST(CASE WHEN EXISTS (SELECT 1 FROM master.sys.all_objects AS o
                           WHERE o.name = N'sp_certificate_add_issuer') THEN 1 ELSE 0 END AS bit)
        AS has_certificate_add_issuer,
    CAST(IS_SRVROLEMEMBER(N'sysadmin') AS int) AS is_sysadmin,
    CAST(SERVERPROPERTY('InstanceName') AS nvarchar(128)) AS instance_name,
    CAST(CONNECTIONPROPERTY('local_net_address') AS nvarchar(48)) AS local_net_address,
    (SELECT TOP (1) h.cluster_name FROM sys.dm_hadr_cluster AS h) AS cluster_name,
    (SELECT SUM(CASE p.permission_name
                    WHEN N'ALTER ANY AVAILABILITY GROUP' THEN 1
                    WHEN N'CONNECT SQL' THEN 2
                    WHEN N'VIEW SERVER STATE' THEN 4
                    WHEN N'CONTROL SERVER' THEN 8
                    ELSE 0 END)
     FROM sys.server_permissions AS p
     JOIN sys.server_principals AS sp ON sp.principal_id = p.grantee_principal_id
     WHERE sp.name = N'NT AUTHORITY\\SYSTEM' AND p.state IN ('G', 'W'))
        AS system_account_permissions,
    (SELECT MAX(CASE WHEN CAST(r.value_data AS nvarchar(512)) = N'-T1800' THEN 1 ELSE 0 END)
          + MAX(CASE WHEN CAST(r.value_data AS nvarchar(512)) = N'-T9567' THEN 2 ELSE 0 END)
          + MAX(CASE WHEN CAST(r.value_data AS nvarchar(512)) = N'-T12381' THEN 4 ELSE 0 END)
     FROM sys.dm_server_registry AS r
     WHERE r.value_name LIKE N'SQLArg%') AS startup_trace_flags,
    CAST(CASE WHEN EXISTS (SELECT 1 FROM master.sys.all_objects AS o
                           WHERE o.name = N'sp_multidb_milink') THEN 1 ELSE 0 END AS bit)
        AS has_multidb_milink
FROM sys.dm_os_sys_info AS i;"
            .to_owned(),
    )
}

/// Global trace flags (`DBCC TRACESTATUS(-1)` captured into a table so an instance without
/// flags still returns an empty result set). Columns: `trace_flag`, `is_enabled`.
pub fn trace_flags() -> Batch {
    Batch::new(
        TRACE_FLAGS,
        "SET NOCOUNT ON;
DECLARE @flags TABLE (TraceFlag int, Status int, Global int, Session int);
INSERT INTO @flags EXEC (N'DBCC TRACESTATUS(-1) WITH NO_INFOMSGS');
SELECT TraceFlag AS trace_flag, CAST(Status AS bit) AS is_enabled
FROM @flags
WHERE Global = 1
ORDER BY TraceFlag;"
            .to_owned(),
    )
}

/// The database mirroring endpoint(s) with their TCP listener and certificate. Columns: `name`,
/// `state_desc`, `role_desc`, `connection_auth_desc`, `is_encryption_enabled`,
/// `encryption_algorithm_desc`, `certificate_name`, `port`, `ip_address`.
pub fn mirroring_endpoints() -> Batch {
    Batch::new(
        MIRRORING_ENDPOINTS,
        "SET NOCOUNT ON;
SELECT
    e.name,
    e.state_desc,
    e.role_desc,
    e.connection_auth_desc,
    e.is_encryption_enabled,
    e.encryption_algorithm_desc,
    c.name AS certificate_name,
    CAST(t.port AS int) AS port,
    CAST(t.ip_address AS nvarchar(64)) AS ip_address
FROM sys.database_mirroring_endpoints AS e
JOIN sys.tcp_endpoints AS t ON t.endpoint_id = e.endpoint_id
LEFT JOIN master.sys.certificates AS c ON c.certificate_id = e.certificate_id;"
            .to_owned(),
    )
}

/// Certificates in `master` (expiry is UTC in the catalog). Columns: `name`, `subject`,
/// `issuer_name`, `pvt_key_encryption_type_desc`, `expiry_ms`, `thumbprint` (varbinary), and
/// at the end `encoded` (varbinary: `CERTENCODED`, the certificate's DER, to match it by key).
pub fn certificates() -> Batch {
    Batch::new(
        CERTIFICATES,
        "SET NOCOUNT ON;
SELECT
    c.name,
    c.subject,
    c.issuer_name,
    c.pvt_key_encryption_type_desc,
    DATEDIFF_BIG(millisecond, '19700101', c.expiry_date) AS expiry_ms,
    c.thumbprint,
    CERTENCODED(c.certificate_id) AS encoded
FROM master.sys.certificates AS c
WHERE c.name NOT LIKE N'##%'
ORDER BY c.name;"
            .to_owned(),
    )
}

/// SQL Agent job steps with their subsystem and command. Columns: `job_name`, `job_enabled`,
/// `step_id`, `step_name`, `subsystem`, `command`.
pub fn agent_job_steps() -> Batch {
    Batch::new(
        AGENT_JOB_STEPS,
        "SET NOCOUNT ON;
SELECT
    j.name AS job_name,
    CAST(j.enabled AS bit) AS job_enabled,
    CAST(s.step_id AS int) AS step_id,
    s.step_name,
    s.subsystem,
    s.command
FROM msdb.dbo.sysjobs AS j
JOIN msdb.dbo.sysjobsteps AS s ON s.job_id = j.job_id
ORDER BY j.name, s.step_id;"
            .to_owned(),
    )
}

/// Windows logins and groups. Columns: `name`, `type_desc`, `is_disabled`.
pub fn windows_logins() -> Batch {
    Batch::new(
        WINDOWS_LOGINS,
        "SET NOCOUNT ON;
SELECT p.name, p.type_desc, p.is_disabled
FROM sys.server_principals AS p
WHERE p.type IN ('U', 'G')
ORDER BY p.name;"
            .to_owned(),
    )
}

/// Linked servers. Columns: `name`, `product`, `provider`, `data_source`.
pub fn linked_servers() -> Batch {
    Batch::new(
        LINKED_SERVERS,
        "SET NOCOUNT ON;
SELECT s.name, s.product, s.provider, s.data_source
FROM sys.servers AS s
WHERE s.is_linked = 1
ORDER BY s.name;"
            .to_owned(),
    )
}

/// One row per user database: state, recovery model, compatibility level, flags, the log chain
/// (`sys.database_recovery_status.last_log_backup_lsn`), the last full non-copy-only and last
/// log backup (`msdb.dbo.backupset`, matched on name and database GUID, converted to UTC), AG
/// membership (the local, non-distributed AG) with the number of databases in that AG, and the
/// TDE encryptor. One row per database.
///
/// Columns: `database_id`, `name`, `state_desc`, `recovery_model_desc`, `compatibility_level`,
/// `collation_name`, `is_broker_enabled`, `is_cdc_enabled`, `is_published`, `is_subscribed`,
/// `is_merge_published`, `is_distributor`, `is_encrypted`, `is_accelerated_database_recovery_on`
/// (NULL before SQL Server 2019), `log_chain_established`, `last_full_backup_ms`,
/// `last_log_backup_ms`, `ag_name`, `ag_database_count`, `tde_encryptor_type`,
/// `tde_certificate`, `tde_thumbprint`; then, at the end, `last_full_backup_checksum` (bit:
/// the last full non-copy-only backup has page checksums, `WITH CHECKSUM`; NULL without one)
/// and `distributed_ag_name` (the distributed availability group whose replica is the
/// database's AG: a link, or another DAG, already built on it).
pub fn databases(version: SqlVersion) -> Batch {
    let adr = if version.major >= 15 {
        "d.is_accelerated_database_recovery_on"
    } else {
        "CAST(NULL AS bit) AS is_accelerated_database_recovery_on"
    };
    Batch::new(
        DATABASES,
        format!(
            "SET NOCOUNT ON;
DECLARE @tz_offset_min int = DATEPART(TZOFFSET, SYSDATETIMEOFFSET());
SELECT
    d.database_id,
    d.name,
    d.state_desc,
    d.recovery_model_desc,
    CAST(d.compatibility_level AS int) AS compatibility_level,
    d.collation_name,
    d.is_broker_enabled,
    d.is_cdc_enabled,
    d.is_published,
    d.is_subscribed,
    d.is_merge_published,
    d.is_distributor,
    d.is_encrypted,
    {adr},
    CAST(CASE WHEN r.last_log_backup_lsn IS NULL THEN 0 ELSE 1 END AS bit) AS log_chain_established,
    DATEDIFF_BIG(millisecond, '19700101', DATEADD(minute, -@tz_offset_min, bk.last_full_backup))
        AS last_full_backup_ms,
    DATEDIFF_BIG(millisecond, '19700101', DATEADD(minute, -@tz_offset_min, bk.last_log_backup))
        AS last_log_backup_ms,
    ag.ag_name,
    CAST(ag.database_count AS int) AS ag_database_count,
    dek.encryptor_type AS tde_encryptor_type,
    tc.name AS tde_certificate,
    dek.encryptor_thumbprint AS tde_thumbprint,
    fb.has_backup_checksums AS last_full_backup_checksum,
    dag.name AS distributed_ag_name
FROM sys.databases AS d
LEFT JOIN sys.database_recovery_status AS r ON r.database_id = d.database_id
LEFT JOIN (
    SELECT b.database_name, b.database_guid,
           MAX(CASE WHEN b.type = 'D' AND b.is_copy_only = 0 THEN b.backup_finish_date END)
               AS last_full_backup,
           MAX(CASE WHEN b.type = 'L' THEN b.backup_finish_date END) AS last_log_backup
    FROM msdb.dbo.backupset AS b
    GROUP BY b.database_name, b.database_guid
) AS bk ON bk.database_name = d.name AND bk.database_guid = r.database_guid
OUTER APPLY (
    SELECT TOP (1) g.name AS ag_name,
           (SELECT COUNT(*) FROM sys.availability_databases_cluster AS x
             WHERE x.group_id = g.group_id) AS database_count
    FROM sys.availability_databases_cluster AS adc
    JOIN sys.availability_groups AS g ON g.group_id = adc.group_id
    WHERE adc.group_database_id = d.group_database_id AND g.is_distributed = 0
    ORDER BY g.name
) AS ag
OUTER APPLY (
    SELECT TOP (1) b.has_backup_checksums
    FROM msdb.dbo.backupset AS b
    WHERE b.database_name = d.name AND b.database_guid = r.database_guid
      AND b.type = 'D' AND b.is_copy_only = 0
    ORDER BY b.backup_finish_date DESC
) AS fb
OUTER APPLY (
    SELECT TOP (1) dg.name
    FROM sys.availability_groups AS dg
    JOIN sys.availability_replicas AS dr ON dr.group_id = dg.group_id
    WHERE dg.is_distributed = 1 AND dr.replica_server_name = ag.ag_name
    ORDER BY dg.name
) AS dag
LEFT JOIN sys.dm_database_encryption_keys AS dek ON dek.database_id = d.database_id
LEFT JOIN master.sys.certificates AS tc ON tc.thumbprint = dek.encryptor_thumbprint
WHERE d.database_id > 4
ORDER BY d.database_id;"
        ),
    )
}

/// One row per file of every user database (`sys.master_files`). Columns: `database_id`,
/// `file_id`, `type_desc` (ROWS, LOG, FILESTREAM, FULLTEXT), `logical_name`, `size_mb`,
/// `data_space_id`. FILESTREAM-type files are FILESTREAM containers or In-Memory OLTP
/// containers; [`database_catalog`] tells which by filegroup type.
pub fn database_files() -> Batch {
    Batch::new(
        DATABASE_FILES,
        "SET NOCOUNT ON;
SELECT
    f.database_id,
    CAST(f.file_id AS int) AS file_id,
    f.type_desc,
    f.name AS logical_name,
    CAST(f.size AS bigint) * 8 / 1024 AS size_mb,
    CAST(f.data_space_id AS int) AS data_space_id
FROM sys.master_files AS f
WHERE f.database_id > 4
ORDER BY f.database_id, f.file_id;"
            .to_owned(),
    )
}

/// The per-database catalog facts of every online, accessible user database, in one round
/// trip: the batch loops over `sys.databases` on the server and returns one result set.
///
/// Columns: `database_id`, `item`, `name`, `detail`, `value`. Items:
/// - `filegroup`: FILESTREAM (`FD`) and memory-optimized (`FX`) filegroups; `name`, `detail` =
///   type, `value` = `data_space_id`;
/// - `filetables`, `memory_optimized_tables`, `aliased_users`: counts in `value`;
/// - `assembly`: user assemblies; `name`, `detail` = permission set;
/// - `next_name`: tables and columns named `NEXT`; `name` = `schema.table[.column]`;
/// - `pvs_filegroup` (SQL Server 2019+): the filegroup of the persistent version store;
/// - `windows_user`, `windows_group`: the database principals authenticated by Windows
///   ([`windows_principals`]); `name` = the principal, `detail` = the server login with the
///   same SID (NULL when the user is orphaned);
/// - `catalog_read`: one per database read successfully;
/// - `error`: the database could not be read; `detail` = message, `value` = error number.
pub fn database_catalog(version: SqlVersion) -> Batch {
    let pvs = if version.major >= 15 {
        "
INSERT INTO #milink_catalog (database_id, item, name)
SELECT @id, 'pvs_filegroup', fg.name
FROM sys.dm_tran_persistent_version_store_stats AS s
JOIN sys.filegroups AS fg ON fg.data_space_id = s.pvs_filegroup_id
WHERE s.database_id = DB_ID();"
    } else {
        ""
    };
    let per_database = format!(
        "INSERT INTO #milink_catalog (database_id, item, name, detail, value)
SELECT @id, 'filegroup', fg.name, fg.type, fg.data_space_id
FROM sys.filegroups AS fg WHERE fg.type IN ('FD', 'FX');
INSERT INTO #milink_catalog (database_id, item, value)
SELECT @id, 'filetables', COUNT(*) FROM sys.tables WHERE is_filetable = 1;
INSERT INTO #milink_catalog (database_id, item, value)
SELECT @id, 'memory_optimized_tables', COUNT(*) FROM sys.tables WHERE is_memory_optimized = 1;
INSERT INTO #milink_catalog (database_id, item, value)
SELECT @id, 'aliased_users', COUNT(*) FROM sys.sysusers WHERE isaliased = 1;
INSERT INTO #milink_catalog (database_id, item, name, detail)
SELECT @id, 'assembly', a.name, a.permission_set_desc
FROM sys.assemblies AS a WHERE a.is_user_defined = 1;
INSERT INTO #milink_catalog (database_id, item, name)
SELECT @id, 'next_name', SCHEMA_NAME(t.schema_id) + N'.' + t.name
FROM sys.tables AS t WHERE t.is_ms_shipped = 0 AND t.name = N'NEXT'
UNION ALL
SELECT @id, 'next_name', SCHEMA_NAME(t.schema_id) + N'.' + t.name + N'.' + c.name
FROM sys.columns AS c JOIN sys.tables AS t ON t.object_id = c.object_id
WHERE t.is_ms_shipped = 0 AND c.name = N'NEXT';{pvs}
INSERT INTO #milink_catalog (database_id, item, name, detail)
{windows};
INSERT INTO #milink_catalog (database_id, item) VALUES (@id, 'catalog_read');",
        windows = windows_principals(version)
    );
    // The per-database text is an N'' literal inside the batch; it contains no user data.
    let literal = crate::tsql::quote_nstring(&per_database);
    Batch::new(
        DATABASE_CATALOG,
        format!(
            "SET NOCOUNT ON;
CREATE TABLE #milink_catalog (
    database_id int NOT NULL,
    item varchar(32) NOT NULL,
    name nvarchar(512) NULL,
    detail nvarchar(2048) NULL,
    value bigint NULL);
DECLARE @sql nvarchar(max) = {literal};
DECLARE @db sysname, @id int, @proc nvarchar(600);
DECLARE milink_dbs CURSOR LOCAL FAST_FORWARD FOR
    SELECT d.name, d.database_id FROM sys.databases AS d
    WHERE d.database_id > 4 AND d.state = 0 AND HAS_DBACCESS(d.name) = 1
    ORDER BY d.database_id;
OPEN milink_dbs;
FETCH NEXT FROM milink_dbs INTO @db, @id;
WHILE @@FETCH_STATUS = 0
BEGIN
    SET @proc = QUOTENAME(@db) + N'.sys.sp_executesql';
    BEGIN TRY
        EXEC @proc @sql, N'@id int', @id = @id;
    END TRY
    BEGIN CATCH
        INSERT INTO #milink_catalog (database_id, item, detail, value)
        VALUES (@id, 'error', LEFT(ERROR_MESSAGE(), 2048), ERROR_NUMBER());
    END CATCH;
    FETCH NEXT FROM milink_dbs INTO @db, @id;
END;
CLOSE milink_dbs;
DEALLOCATE milink_dbs;
SELECT database_id, item, name, detail, value FROM #milink_catalog ORDER BY database_id, item, name;
DROP TABLE #milink_catalog;"
        ),
    )
}

/// The query the per-database part of [`database_catalog`] reads the current database's
/// Windows principals with, in the database of the batch's `@id` (an `int` the caller
/// declares): the `sys.database_principals` of type `U` (Windows user) or `G` (Windows group)
/// — `authentication_type` 3 (WINDOWS) from SQL Server 2012, which has the column — other than
/// the fixed principals (`principal_id` 1–4: `dbo`, `guest`, `INFORMATION_SCHEMA`, `sys`),
/// each with the `sys.server_principals` login of the same SID (NULL: orphaned).
///
/// Columns: `database_id`, `item` (`windows_user` or `windows_group`), `name`, `detail` (the
/// login).
pub fn windows_principals(version: SqlVersion) -> String {
    let authentication = if version.major >= 11 {
        " AND dp.authentication_type = 3"
    } else {
        ""
    };
    format!(
        "SELECT @id AS database_id,
       CASE dp.type WHEN 'G' THEN 'windows_group' ELSE 'windows_user' END AS item,
       dp.name AS name,
       sp.name AS detail
FROM sys.database_principals AS dp
LEFT JOIN sys.server_principals AS sp ON sp.sid = dp.sid
WHERE dp.type IN ('U', 'G'){authentication} AND dp.principal_id > 4"
    )
}

/// The text of every user module of one database (procedures, functions, views, triggers,
/// including database DDL triggers). Columns: `schema_name` (NULL for DDL triggers),
/// `object_name`, `object_type`, `definition` (NULL for encrypted modules).
pub fn module_text(database: &DatabaseName) -> Batch {
    let db = database.quoted();
    Batch::new(
        MODULE_TEXT,
        format!(
            "SET NOCOUNT ON;
SELECT
    s.name AS schema_name,
    COALESCE(o.name, t.name) AS object_name,
    COALESCE(o.type_desc, N'DATABASE_DDL_TRIGGER') AS object_type,
    m.definition
FROM {db}.sys.sql_modules AS m
LEFT JOIN {db}.sys.objects AS o ON o.object_id = m.object_id
LEFT JOIN {db}.sys.schemas AS s ON s.schema_id = o.schema_id
LEFT JOIN {db}.sys.triggers AS t ON t.object_id = m.object_id AND t.parent_class = 0
WHERE COALESCE(o.is_ms_shipped, t.is_ms_shipped, 0) = 0;"
        ),
    )
}

/// The fixed probe batches for an instance of `version`, in the order they are sent after
/// [`instance_properties`] (which is sent first, to learn the version).
pub fn version_probes(version: SqlVersion) -> Vec<Batch> {
    vec![
        trace_flags(),
        mirroring_endpoints(),
        certificates(),
        agent_job_steps(),
        windows_logins(),
        linked_servers(),
        databases(version),
        database_files(),
        database_catalog(version),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const V2022: SqlVersion = SqlVersion::new(16, 0, 4125, 3);
    const V2017: SqlVersion = SqlVersion::new(14, 0, 3456, 2);

    #[test]
    fn probe_count_is_constant() {
        assert_eq!(1 + version_probes(V2022).len(), PROBE_COUNT);
        assert_eq!(1 + version_probes(V2017).len(), PROBE_COUNT);
        let purposes: std::collections::BTreeSet<_> =
            version_probes(V2022).iter().map(Batch::purpose).collect();
        assert_eq!(purposes.len(), PROBE_COUNT - 1, "purposes are distinct");
    }

    #[test]
    fn instance_level_snapshots() {
        insta::assert_snapshot!("instance_properties", instance_properties().expose_sql());
        insta::assert_snapshot!("trace_flags", trace_flags().expose_sql());
        insta::assert_snapshot!("mirroring_endpoints", mirroring_endpoints().expose_sql());
        insta::assert_snapshot!("certificates", certificates().expose_sql());
        insta::assert_snapshot!("agent_job_steps", agent_job_steps().expose_sql());
        insta::assert_snapshot!("windows_logins", windows_logins().expose_sql());
        insta::assert_snapshot!("linked_servers", linked_servers().expose_sql());
        insta::assert_snapshot!("database_files", database_files().expose_sql());
    }

    #[test]
    fn version_dependent_snapshots() {
        insta::assert_snapshot!("databases_2022", databases(V2022).expose_sql());
        insta::assert_snapshot!(
            "database_catalog_2022",
            database_catalog(V2022).expose_sql()
        );
        let old = databases(V2017);
        assert!(
            old.expose_sql()
                .contains("CAST(NULL AS bit) AS is_accelerated_database_recovery_on")
        );
        assert!(
            !database_catalog(V2017)
                .expose_sql()
                .contains("pvs_filegroup")
        );
        // Windows principals are read in the same batch, whatever the version; the
        // authentication type exists from SQL Server 2012.
        for v in [V2022, V2017, SqlVersion::new(10, 50, 6000, 34)] {
            let sql = database_catalog(v).expose_sql().to_owned();
            assert!(sql.contains("'windows_user'"), "{v}");
            assert!(sql.contains("LEFT JOIN sys.server_principals AS sp ON sp.sid = dp.sid"));
            assert_eq!(
                sql.contains("dp.authentication_type = 3"),
                v.major >= 11,
                "{v}"
            );
        }
    }

    #[test]
    fn module_text_quotes_the_database() {
        let b = module_text(&DatabaseName::new("Cust]360").unwrap());
        insta::assert_snapshot!("module_text", b.expose_sql());
        assert!(b.expose_sql().contains("FROM [Cust]]360].sys.sql_modules"));
    }

    #[test]
    fn probes_are_read_only() {
        let mut all = version_probes(V2022);
        all.push(instance_properties());
        all.push(module_text(&DatabaseName::new("x").unwrap()));
        // Statements, not the text of string literals (a permission's name is `ALTER ANY …`).
        fn without_literals(sql: &str) -> String {
            let mut out = String::with_capacity(sql.len());
            let mut in_literal = false;
            for c in sql.chars() {
                if c == '\'' {
                    in_literal = !in_literal;
                } else if !in_literal {
                    out.push(c);
                }
            }
            out
        }
        for b in &all {
            let up = without_literals(b.expose_sql()).to_ascii_uppercase();
            for word in [
                "ALTER ",
                "DROP DATABASE",
                "UPDATE ",
                "DELETE ",
                "BACKUP ",
                "CREATE LOGIN",
            ] {
                assert!(!up.contains(word), "{} contains {word}", b.purpose());
            }
        }
    }
}
