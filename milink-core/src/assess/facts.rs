//! Facts: what the assessment reads from SQL Server ([`InstanceFacts`], [`DatabaseFacts`]) and
//! from the managed instance ([`TargetFacts`]). Plain serde data; the rules only read them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::assess::scan::{Marker, MarkerHit};
use crate::names::{DatabaseName, MiFqdn, ServerName, SqlVersion, UpdatePolicy};
use crate::time::Timestamp;

/// The SQL Server edition, from `SERVERPROPERTY('Edition')`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Edition {
    /// Enterprise (any licensing model).
    Enterprise,
    /// Standard.
    Standard,
    /// Developer.
    Developer,
    /// Enterprise Evaluation.
    Evaluation,
    /// Express (no availability groups).
    Express,
    /// Web (no availability groups).
    Web,
    /// Anything else.
    Other,
}

impl Edition {
    /// Reads `SERVERPROPERTY('Edition')`, e.g. `Enterprise Edition: Core-based Licensing (64-bit)`.
    pub fn from_server_property(value: &str) -> Self {
        let v = value.trim().to_ascii_lowercase();
        if v.contains("evaluation") {
            Edition::Evaluation
        } else if v.starts_with("enterprise") {
            Edition::Enterprise
        } else if v.starts_with("developer") {
            Edition::Developer
        } else if v.starts_with("standard") {
            Edition::Standard
        } else if v.starts_with("express") {
            Edition::Express
        } else if v.starts_with("web") {
            Edition::Web
        } else {
            Edition::Other
        }
    }
}

impl fmt::Display for Edition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Edition::Enterprise => "Enterprise",
            Edition::Standard => "Standard",
            Edition::Developer => "Developer",
            Edition::Evaluation => "Evaluation",
            Edition::Express => "Express",
            Edition::Web => "Web",
            Edition::Other => "other",
        })
    }
}

/// The host operating system family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HostPlatform {
    /// Windows (Server or client).
    Windows,
    /// Linux.
    Linux,
    /// Not recognised.
    Unknown,
}

/// The host operating system, as `@@VERSION` names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostOs {
    /// Windows or Linux.
    pub platform: HostPlatform,
    /// E.g. `Windows Server 2022 Datacenter 10.0` or `Linux (Ubuntu 22.04.4 LTS)`.
    pub description: String,
}

impl HostOs {
    /// Reads the host from `@@VERSION` (`… Edition (64-bit) on Windows Server 2022 Datacenter
    /// 10.0 <X64> (Build 20348: )` or `… on Linux (Ubuntu 22.04.4 LTS) <X64>`).
    pub fn from_version_text(text: &str) -> Self {
        let after_on = text.rfind(" on ").map(|i| &text[i + 4..]).unwrap_or("");
        let description = after_on
            .split(" <")
            .next()
            .unwrap_or("")
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_owned();
        let platform = if description.starts_with("Windows") {
            HostPlatform::Windows
        } else if description.starts_with("Linux") {
            HostPlatform::Linux
        } else {
            HostPlatform::Unknown
        };
        HostOs {
            platform,
            description,
        }
    }

    /// Windows 10 or 11: a client OS that can't enable availability groups.
    pub fn is_windows_client(&self) -> bool {
        self.platform == HostPlatform::Windows
            && (self.description.starts_with("Windows 10")
                || self.description.starts_with("Windows 11"))
    }
}

/// A global trace flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceFlag {
    /// The flag number.
    pub flag: u32,
    /// Whether it is on.
    pub enabled: bool,
}

/// The state of an endpoint (`sys.endpoints.state_desc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EndpointState {
    /// Listening and processing requests.
    Started,
    /// Listening but not processing.
    Stopped,
    /// Not listening.
    Disabled,
}

impl EndpointState {
    /// Reads `state_desc`; anything unknown counts as disabled.
    pub fn from_desc(value: &str) -> Self {
        match value.trim().to_ascii_uppercase().as_str() {
            "STARTED" => EndpointState::Started,
            "STOPPED" => EndpointState::Stopped,
            _ => EndpointState::Disabled,
        }
    }
}

/// The database mirroring endpoint (`sys.database_mirroring_endpoints` + `sys.tcp_endpoints`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirroringEndpoint {
    /// Endpoint name.
    pub name: String,
    /// State.
    pub state: EndpointState,
    /// `role_desc`: ALL, PARTNER, WITNESS, NONE.
    pub role: String,
    /// `connection_auth_desc`, e.g. `CERTIFICATE`, `NEGOTIATE_CERTIFICATE`, `NEGOTIATE`.
    pub authentication: String,
    /// Whether transport encryption is enabled (REQUIRED or SUPPORTED).
    pub encryption_enabled: bool,
    /// `encryption_algorithm_desc`, e.g. `AES`, `RC4_AES`, `NONE`.
    pub algorithm: String,
    /// The certificate used for authentication, if any.
    pub certificate: Option<String>,
    /// TCP listener port.
    pub port: u16,
    /// Listener IP (`None` = all).
    pub ip_address: Option<String>,
}

impl MirroringEndpoint {
    /// Certificate authentication is among the accepted modes.
    pub fn uses_certificate(&self) -> bool {
        self.authentication
            .to_ascii_uppercase()
            .contains("CERTIFICATE")
    }

    /// AES is among the accepted algorithms.
    pub fn allows_aes(&self) -> bool {
        self.algorithm.to_ascii_uppercase().contains("AES")
    }
}

/// A certificate in `master`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateFact {
    /// Name.
    pub name: String,
    /// Subject.
    pub subject: String,
    /// Issuer.
    pub issuer: String,
    /// Expiry (UTC).
    pub expiry: Timestamp,
    /// `pvt_key_encryption_type_desc`, e.g. `ENCRYPTED_BY_MASTER_KEY`, `NO_PRIVATE_KEY`.
    pub private_key: String,
    /// Thumbprint, upper-case hex without `0x`.
    pub thumbprint: String,
    /// The whole certificate (`CERTENCODED`, DER), upper-case hex without `0x`; `None` in facts
    /// gathered before it was read. Compared with what the managed instance holds, so a
    /// certificate is matched by its key, not only by its name.
    #[serde(default)]
    pub encoded: Option<String>,
}

impl CertificateFact {
    /// Whether this certificate's DER bytes are `der`. `None` when the certificate's bytes were
    /// not read.
    pub fn is(&self, der: &[u8]) -> Option<bool> {
        self.encoded.as_deref().map(|hex| hex_eq(hex, der))
    }
}

/// Whether hex text (any case, with or without `0x`) spells exactly `bytes`.
pub fn hex_eq(hex: &str, bytes: &[u8]) -> bool {
    let h = hex.trim();
    let h = h
        .strip_prefix("0x")
        .or_else(|| h.strip_prefix("0X"))
        .unwrap_or(h);
    if h.len() != bytes.len() * 2 {
        return false;
    }
    h.as_bytes().chunks(2).zip(bytes).all(|(pair, b)| {
        std::str::from_utf8(pair)
            .ok()
            .and_then(|p| u8::from_str_radix(p, 16).ok())
            == Some(*b)
    })
}

/// Upper-case hex without `0x`, as the facts keep certificate bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Bytes from hex text (any case, with or without `0x`); `None` when it is not hex.
pub fn hex_bytes(hex: &str) -> Option<Vec<u8>> {
    let h = hex.trim();
    let h = h
        .strip_prefix("0x")
        .or_else(|| h.strip_prefix("0X"))
        .unwrap_or(h);
    if !h.len().is_multiple_of(2) {
        return None;
    }
    h.as_bytes()
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
        })
        .collect()
}

/// The Windows Server Failover Cluster SQL Server runs on, and what `NT AUTHORITY\SYSTEM` may
/// do: SQL Server 2016 needs both for Always On (milink-facts §1.3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterFacts {
    /// `sys.dm_hadr_cluster.cluster_name`; `None` when the host is in no cluster.
    pub name: Option<String>,
    /// The server permissions granted to `[NT AUTHORITY\SYSTEM]` (`sys.server_permissions`,
    /// `GRANT` or `GRANT WITH GRANT OPTION`), e.g. `CONNECT SQL`; empty when the login is absent.
    pub system_permissions: Vec<String>,
}

/// The MultiDatabase link mode's switch on this SQL Server (milink-facts §1.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultiDatabaseFacts {
    /// `sys.sp_multidb_milink` exists: the build knows the mode.
    pub procedure_present: bool,
    /// What `EXEC sys.sp_multidb_milink` returns (1: on, 0: off); `None` when not known. The
    /// readiness probes are read-only `SELECT`s and don't run the procedure (the shape of its
    /// answer is UNVERIFIED), so this comes from the caller's facts.
    pub enabled: Option<bool>,
}

/// A SQL Agent job step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStep {
    /// Job name.
    pub job: String,
    /// Whether the job is enabled.
    pub job_enabled: bool,
    /// Step id.
    pub step_id: u32,
    /// Step name.
    pub step: String,
    /// Subsystem: `TSQL`, `PowerShell`, `CmdExec`, `ANALYSISQUERY`, `ANALYSISCOMMAND`, `Merge`,
    /// `QueueReader`, `Snapshot`, `LogReader`, `Distribution`, `SSIS`.
    pub subsystem: String,
    /// Markers found in a T-SQL step's command (see [`crate::assess::scan`]).
    pub markers: Vec<Marker>,
}

/// A Windows login or group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowsLogin {
    /// `DOMAIN\name`.
    pub name: String,
    /// A group (not a user).
    pub is_group: bool,
    /// Disabled.
    pub is_disabled: bool,
}

impl WindowsLogin {
    /// Built-in service and system accounts (`NT SERVICE\…`, `NT AUTHORITY\…`, `BUILTIN\…`),
    /// which exist on every instance and are not migrated.
    pub fn is_builtin(&self) -> bool {
        is_builtin_account(&self.name)
    }
}

/// A database principal authenticated by Windows: a `sys.database_principals` row of type `U`
/// (Windows user) or `G` (Windows group), `authentication_type` 3 (WINDOWS), with the server
/// login of the same SID when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowsUser {
    /// The user's name in the database (`DOMAIN\name`).
    pub name: String,
    /// A Windows group (`G`) rather than a user (`U`).
    pub is_group: bool,
    /// The `sys.server_principals` login with the same SID; `None` when the user is orphaned.
    pub login: Option<String>,
}

impl WindowsUser {
    /// No server login has the user's SID.
    pub fn is_orphaned(&self) -> bool {
        self.login.is_none()
    }

    /// A built-in service or system account (`NT SERVICE\…`, `NT AUTHORITY\…`, `BUILTIN\…`),
    /// which every Windows host has and which has no directory identity to carry over.
    pub fn is_builtin(&self) -> bool {
        is_builtin_account(&self.name)
    }
}

fn is_builtin_account(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    n.starts_with("NT SERVICE\\") || n.starts_with("NT AUTHORITY\\") || n.starts_with("BUILTIN\\")
}

/// A linked server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedServer {
    /// Name.
    pub name: String,
    /// `product`.
    pub product: String,
    /// OLE DB provider, e.g. `MSOLEDBSQL`, `SQLNCLI11`, `OraOLEDB.Oracle`.
    pub provider: String,
    /// `data_source`.
    pub data_source: String,
}

impl LinkedServer {
    /// Whether the provider is a SQL Server provider.
    pub fn is_sql_server(&self) -> bool {
        is_sql_provider(&self.provider) || self.product.eq_ignore_ascii_case("SQL Server")
    }
}

/// Whether an OLE DB provider name is a SQL Server provider (`SQLNCLI*`, `MSOLEDBSQL*`,
/// `SQLOLEDB`).
pub fn is_sql_provider(provider: &str) -> bool {
    let p = provider.trim().to_ascii_uppercase();
    p.starts_with("SQLNCLI") || p.starts_with("MSOLEDBSQL") || p == "SQLOLEDB"
}

/// Facts about the SQL Server instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceFacts {
    /// `@@SERVERNAME`.
    pub server_name: ServerName,
    /// `SERVERPROPERTY('ProductVersion')`.
    pub version: SqlVersion,
    /// `SERVERPROPERTY('ProductUpdateLevel')`, e.g. `CU13`.
    pub update_level: Option<String>,
    /// Edition.
    pub edition: Edition,
    /// Host operating system.
    pub host: HostOs,
    /// `SERVERPROPERTY('IsHadrEnabled') = 1`.
    pub hadr_enabled: bool,
    /// Global trace flags.
    pub trace_flags: Vec<TraceFlag>,
    /// A database master key exists in `master`.
    pub master_key_present: bool,
    /// `sys.sp_certificate_add_issuer` exists (link-capable build / Azure Connect pack).
    pub has_certificate_add_issuer: bool,
    /// Database mirroring endpoints (at most one per instance).
    pub endpoints: Vec<MirroringEndpoint>,
    /// Certificates in `master`.
    pub certificates: Vec<CertificateFact>,
    /// Server collation.
    pub collation: String,
    /// Logical CPUs.
    pub cpu_count: u32,
    /// Physical memory of the host, MB.
    pub physical_memory_mb: u64,
    /// `max server memory (MB)`.
    pub max_server_memory_mb: u64,
    /// SQL Agent job steps.
    pub job_steps: Vec<JobStep>,
    /// Windows logins and groups (the logins Windows database users map to).
    pub windows_logins: Vec<WindowsLogin>,
    /// Linked servers.
    pub linked_servers: Vec<LinkedServer>,
    /// `IS_SRVROLEMEMBER('sysadmin')` for the login that read these facts (the login milink
    /// uses); `None` when not read.
    #[serde(default)]
    pub is_sysadmin: Option<bool>,
    /// `SERVERPROPERTY('InstanceName')`: `None` for the default instance (and in facts
    /// gathered before it was read).
    #[serde(default)]
    pub instance_name: Option<String>,
    /// SQL Server's IP address on the connection that read these facts
    /// (`sys.dm_exec_connections.local_net_address`); `None` when not read or not over TCP.
    #[serde(default)]
    pub local_address: Option<String>,
    /// The failover cluster and `NT AUTHORITY\SYSTEM`'s permissions; `None` when not read.
    #[serde(default)]
    pub cluster: Option<ClusterFacts>,
    /// The link's trace flags (1800, 9567, 12381) set as `-T` startup parameters
    /// (`sys.dm_server_registry`, `SQLArg*`); `None` when the startup parameters could not be
    /// read (SQL Server on Linux keeps them in `mssql.conf`, which no catalog view shows).
    #[serde(default)]
    pub startup_trace_flags: Option<Vec<u32>>,
    /// The MultiDatabase link mode's switch; `None` when not read.
    #[serde(default)]
    pub multi_database: Option<MultiDatabaseFacts>,
}

impl InstanceFacts {
    /// Whether a trace flag is on globally.
    pub fn trace_flag_on(&self, flag: u32) -> bool {
        self.trace_flags.iter().any(|t| t.flag == flag && t.enabled)
    }

    /// The certificate named `name` in master, compared case-insensitively.
    pub fn certificate(&self, name: &str) -> Option<&CertificateFact> {
        self.certificates
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The linked server named `name`, compared case-insensitively.
    pub fn linked_server(&self, name: &str) -> Option<&LinkedServer> {
        self.linked_servers
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }
}

/// A database state (`sys.databases.state_desc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DatabaseState {
    /// ONLINE.
    Online,
    /// RESTORING.
    Restoring,
    /// RECOVERING.
    Recovering,
    /// RECOVERY_PENDING.
    RecoveryPending,
    /// SUSPECT.
    Suspect,
    /// EMERGENCY.
    Emergency,
    /// OFFLINE.
    Offline,
    /// COPYING, OFFLINE_SECONDARY or anything else.
    Other,
}

impl DatabaseState {
    /// Reads `state_desc`.
    pub fn from_desc(value: &str) -> Self {
        match value.trim().to_ascii_uppercase().as_str() {
            "ONLINE" => DatabaseState::Online,
            "RESTORING" => DatabaseState::Restoring,
            "RECOVERING" => DatabaseState::Recovering,
            "RECOVERY_PENDING" => DatabaseState::RecoveryPending,
            "SUSPECT" => DatabaseState::Suspect,
            "EMERGENCY" => DatabaseState::Emergency,
            "OFFLINE" => DatabaseState::Offline,
            _ => DatabaseState::Other,
        }
    }
}

/// A recovery model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecoveryModel {
    /// FULL.
    Full,
    /// BULK_LOGGED.
    BulkLogged,
    /// SIMPLE.
    Simple,
}

impl RecoveryModel {
    /// Reads `recovery_model_desc`.
    pub fn from_desc(value: &str) -> Option<Self> {
        match value.trim().to_ascii_uppercase().as_str() {
            "FULL" => Some(RecoveryModel::Full),
            "BULK_LOGGED" => Some(RecoveryModel::BulkLogged),
            "SIMPLE" => Some(RecoveryModel::Simple),
            _ => None,
        }
    }
}

impl fmt::Display for RecoveryModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecoveryModel::Full => "FULL",
            RecoveryModel::BulkLogged => "BULK_LOGGED",
            RecoveryModel::Simple => "SIMPLE",
        })
    }
}

/// Transparent data encryption of a database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TdeFacts {
    /// `CERTIFICATE` or `ASYMMETRIC KEY`.
    pub encryptor_type: String,
    /// The certificate in master that protects the database encryption key, if found.
    pub certificate: Option<String>,
    /// Thumbprint of the encryptor, upper-case hex without `0x`.
    pub thumbprint: Option<String>,
}

/// Availability group membership of a database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgMembership {
    /// The AG name.
    pub ag_name: String,
    /// How many databases the AG holds.
    pub database_count: u32,
}

/// Replication roles of a database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationFlags {
    /// Transactional or snapshot publication.
    pub published: bool,
    /// Subscriber.
    pub subscribed: bool,
    /// Merge publication.
    pub merge_published: bool,
    /// Distribution database.
    pub distributor: bool,
}

/// A user CLR assembly and its permission set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssemblyFact {
    /// Assembly name.
    pub name: String,
    /// `SAFE_ACCESS`, `EXTERNAL_ACCESS` or `UNSAFE_ACCESS`.
    pub permission_set: String,
}

/// Facts from the database's own catalog views (`None` in [`DatabaseFacts::catalog`] when the
/// database could not be read, e.g. offline or no access).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogFacts {
    /// FILESTREAM filegroups.
    pub filestream_filegroups: Vec<String>,
    /// FILESTREAM containers (files).
    pub filestream_files: u32,
    /// FileTables.
    pub filetables: u32,
    /// The memory-optimized (In-Memory OLTP) filegroup, if any.
    pub memory_optimized_filegroup: Option<String>,
    /// In-Memory OLTP containers (files) in that filegroup.
    pub memory_optimized_files: u32,
    /// Memory-optimized tables.
    pub memory_optimized_tables: u32,
    /// User CLR assemblies.
    pub assemblies: Vec<AssemblyFact>,
    /// Aliased users (`sys.sysusers.isaliased = 1`).
    pub aliased_users: u32,
    /// Tables and columns named `NEXT` (`schema.table[.column]`).
    pub objects_named_next: Vec<String>,
    /// The filegroup of the ADR persistent version store (SQL Server 2019+).
    pub pvs_filegroup: Option<String>,
    /// The database users and groups authenticated by Windows (fixed principals such as `dbo`
    /// aside); `None` in facts gathered before this was read.
    #[serde(default)]
    pub windows_users: Option<Vec<WindowsUser>>,
}

/// What scanning the database's module text found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeFacts {
    /// Modules scanned.
    pub modules: u32,
    /// Encrypted modules (no text to scan).
    pub encrypted_modules: u32,
    /// The encrypted modules by name, as the hits name them (`schema.object (TYPE)`); empty in
    /// facts gathered before the names were kept.
    #[serde(default)]
    pub encrypted: Vec<String>,
    /// Marker hits.
    pub hits: Vec<MarkerHit>,
}

impl CodeFacts {
    /// Hits of one marker.
    pub fn hits_of(&self, marker: Marker) -> impl Iterator<Item = &MarkerHit> {
        self.hits.iter().filter(move |h| h.marker == marker)
    }

    /// Why a code-based check that found nothing is not a pass: the modules created `WITH
    /// ENCRYPTION` have no text to scan (`sys.sql_modules.definition` is NULL), named when
    /// known. `None` when every module was scanned.
    pub fn unscanned_reason(&self) -> Option<String> {
        const SHOWN: usize = 10;
        let count = usize::try_from(self.encrypted_modules)
            .unwrap_or(usize::MAX)
            .max(self.encrypted.len());
        if count == 0 {
            return None;
        }
        let names = match self.encrypted.len() {
            0 => String::new(),
            n if n > SHOWN => format!(
                ": {} and {} more",
                self.encrypted[..SHOWN].join(", "),
                count - SHOWN
            ),
            _ => format!(": {}", self.encrypted.join(", ")),
        };
        Some(format!(
            "{count} encrypted module(s) (WITH ENCRYPTION) have no text to scan{names}"
        ))
    }
}

/// Facts about one user database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseFacts {
    /// Name.
    pub name: DatabaseName,
    /// `database_id`.
    pub database_id: i32,
    /// State.
    pub state: DatabaseState,
    /// Recovery model.
    pub recovery_model: RecoveryModel,
    /// Compatibility level, e.g. 160.
    pub compatibility_level: u16,
    /// Database collation.
    pub collation: Option<String>,
    /// Data files' size, MB.
    pub data_size_mb: u64,
    /// Log files' size, MB.
    pub log_size_mb: u64,
    /// Data (ROWS) files.
    pub data_files: u32,
    /// Logical names of the log files.
    pub log_files: Vec<String>,
    /// The last full backup that was not `COPY_ONLY` (UTC).
    pub last_full_backup: Option<Timestamp>,
    /// The last log backup (UTC).
    pub last_log_backup: Option<Timestamp>,
    /// `sys.database_recovery_status.last_log_backup_lsn` is set: the log chain exists. A FULL
    /// database without it still behaves as SIMPLE until a full backup (error 1475).
    pub log_chain_established: bool,
    /// Transparent data encryption, when the database is encrypted.
    pub tde: Option<TdeFacts>,
    /// Accelerated database recovery (`None` before SQL Server 2019).
    pub adr_enabled: Option<bool>,
    /// Service Broker enabled.
    pub broker_enabled: bool,
    /// Change data capture enabled.
    pub cdc_enabled: bool,
    /// Replication roles.
    pub replication: ReplicationFlags,
    /// Availability group membership.
    pub ag: Option<AgMembership>,
    /// Catalog facts (`None` when unreadable).
    pub catalog: Option<CatalogFacts>,
    /// Module text scan (`None` when not scanned).
    pub code: Option<CodeFacts>,
    /// Whether the last full backup without `COPY_ONLY` has page checksums
    /// (`msdb.dbo.backupset.has_backup_checksums`, i.e. taken `WITH CHECKSUM`); `None` when
    /// there is none or it was not read.
    #[serde(default)]
    pub last_full_backup_checksum: Option<bool>,
    /// The distributed availability group (a link, or another DAG) the database's availability
    /// group already belongs to; `None` when there is none or it was not read.
    #[serde(default)]
    pub distributed_ag: Option<String>,
}

impl DatabaseFacts {
    /// Data plus log size, MB.
    pub fn size_mb(&self) -> u64 {
        self.data_size_mb.saturating_add(self.log_size_mb)
    }

    /// Whether the database uses In-Memory OLTP (a memory-optimized filegroup exists).
    pub fn uses_in_memory_oltp(&self) -> bool {
        self.catalog
            .as_ref()
            .is_some_and(|c| c.memory_optimized_filegroup.is_some())
    }
}

/// The names SQL Server gives its system databases.
pub const SYSTEM_DATABASES: [&str; 4] = ["master", "model", "msdb", "tempdb"];

/// Whether `name` is a system database (case-insensitive).
pub fn is_system_database(name: &str) -> bool {
    SYSTEM_DATABASES
        .iter()
        .any(|s| s.eq_ignore_ascii_case(name))
}

/// A managed instance service tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ServiceTier {
    /// General Purpose.
    GeneralPurpose,
    /// Next-gen General Purpose.
    NextGenGeneralPurpose,
    /// Business Critical.
    BusinessCritical,
}

impl fmt::Display for ServiceTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ServiceTier::GeneralPurpose => "General Purpose",
            ServiceTier::NextGenGeneralPurpose => "Next-gen General Purpose",
            ServiceTier::BusinessCritical => "Business Critical",
        })
    }
}

/// Facts about the target managed instance (from ARM and, where ARM has no answer, from the
/// caller). `None` means unknown; the checks that need an unknown fact report it as not
/// evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetFacts {
    /// Instance name.
    pub name: String,
    /// `fullyQualifiedDomainName`.
    pub fqdn: MiFqdn,
    /// Service tier.
    pub tier: ServiceTier,
    /// Hardware family, e.g. `Gen5`.
    pub hardware: Option<String>,
    /// vCores.
    pub vcores: u32,
    /// Reserved storage (`storageSizeInGB`).
    pub storage_max_gb: u64,
    /// Storage in use, GB.
    pub storage_used_gb: Option<u64>,
    /// Databases on the instance.
    pub databases: Option<Vec<DatabaseName>>,
    /// Update policy (`databaseFormat`).
    pub update_policy: Option<UpdatePolicy>,
    /// Member of a failover group.
    pub in_failover_group: Option<bool>,
    /// Instance collation.
    pub collation: Option<String>,
    /// Thumbprints (upper-case hex, no `0x`) of the TDE certificates uploaded to the instance.
    pub tde_certificate_thumbprints: Option<Vec<String>>,
    /// What the caller may do on the instance: ARM's permissions call for the caller on the
    /// instance (`GET {instance}/providers/Microsoft.Authorization/permissions`); `None` when
    /// not read.
    #[serde(default)]
    pub caller_permissions: Option<Vec<ArmPermission>>,
    /// The kind of the instance's TDE protector (`encryptionProtector/current`,
    /// `serverKeyType`); `None` when not read.
    #[serde(default)]
    pub tde_protector: Option<ProtectorKind>,
    /// The instance's subnet (`properties.subnetId`).
    #[serde(default)]
    pub subnet_id: Option<String>,
    /// The address ranges of the instance's subnet (the subnet's `addressPrefix` /
    /// `addressPrefixes`, read through ARM); `None` when not read.
    #[serde(default)]
    pub subnet_prefixes: Option<Vec<String>>,
    /// The server trust certificates on the instance; `None` when not read.
    #[serde(default)]
    pub server_trust_certificates: Option<Vec<TrustCertificateFact>>,
    /// The instance's own `DATABASE_MIRRORING` endpoint certificate
    /// (`endpointCertificates/DATABASE_MIRRORING`, `publicBlob`), upper-case hex DER without
    /// `0x`; `None` when not read.
    #[serde(default)]
    pub endpoint_certificate: Option<String>,
    /// The instance's existing links with the databases each replicates; `None` when not read.
    #[serde(default)]
    pub links: Option<Vec<LinkFact>>,
}

/// One permission set of ARM's permissions call (`actions`, `notActions`; data actions are not
/// needed by the link).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmPermission {
    /// Allowed actions, `*` wildcards included.
    pub actions: Vec<String>,
    /// Actions taken out of `actions`.
    #[serde(default)]
    pub not_actions: Vec<String>,
}

/// Whether `pattern` (an ARM action, `*` matching any run of characters) covers `action`,
/// case-insensitively, as Azure RBAC compares them.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    fn go(p: &[u8], a: &[u8]) -> bool {
        match p.split_first() {
            None => a.is_empty(),
            Some((b'*', rest)) => (0..=a.len()).any(|i| go(rest, &a[i..])),
            Some((c, rest)) => a
                .split_first()
                .is_some_and(|(x, tail)| x.eq_ignore_ascii_case(c) && go(rest, tail)),
        }
    }
    go(pattern.trim().as_bytes(), action.trim().as_bytes())
}

impl ArmPermission {
    /// Whether this set grants `action` (matched by `actions` and by none of `notActions`).
    pub fn grants(&self, action: &str) -> bool {
        self.actions.iter().any(|p| action_matches(p, action))
            && !self.not_actions.iter().any(|p| action_matches(p, action))
    }
}

/// The kind of a managed instance's TDE protector (`serverKeyType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProtectorKind {
    /// `ServiceManaged`: a key Azure manages.
    ServiceManaged,
    /// `AzureKeyVault`: a customer-managed key (BYOK).
    CustomerManaged,
}

impl ProtectorKind {
    /// Reads `serverKeyType`; `None` for a value ARM does not document.
    pub fn from_server_key_type(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "servicemanaged" => Some(ProtectorKind::ServiceManaged),
            "azurekeyvault" => Some(ProtectorKind::CustomerManaged),
            _ => None,
        }
    }
}

/// A server trust certificate on the managed instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustCertificateFact {
    /// `certificateName`.
    pub name: String,
    /// `publicBlob`, upper-case hex DER without `0x`.
    pub public_blob: String,
}

/// A link (distributed availability group) that exists on the managed instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkFact {
    /// The link's name.
    pub name: String,
    /// The databases it replicates.
    pub databases: Vec<String>,
}

/// Why an ARM managed instance document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("managed instance JSON: {0}")]
pub struct ArmShapeError(pub String);

impl TargetFacts {
    /// Reads a `Microsoft.Sql/managedInstances` GET body (api-version 2025-01-01 shape): `name`,
    /// `sku.tier`, `sku.family`, `properties.vCores` (or `sku.capacity`),
    /// `properties.storageSizeInGB`, `properties.fullyQualifiedDomainName`,
    /// `properties.databaseFormat`, `properties.collation`, `properties.isGeneralPurposeV2`
    /// (Next-gen General Purpose). ARM does not return databases, storage in use, failover
    /// group membership or TDE certificates here; those stay `None`.
    pub fn from_arm_json(value: &serde_json::Value) -> Result<Self, ArmShapeError> {
        let props = value
            .get("properties")
            .ok_or_else(|| ArmShapeError("no `properties`".into()))?;
        let sku = value.get("sku");
        let text = |v: Option<&serde_json::Value>| v.and_then(|x| x.as_str()).map(str::to_owned);
        let name = text(value.get("name")).ok_or_else(|| ArmShapeError("no `name`".into()))?;
        let fqdn = text(props.get("fullyQualifiedDomainName"))
            .ok_or_else(|| ArmShapeError("no `properties.fullyQualifiedDomainName`".into()))?;
        let fqdn = MiFqdn::new(&fqdn)
            .map_err(|e| ArmShapeError(format!("fullyQualifiedDomainName: {e}")))?;
        let tier_text = text(sku.and_then(|s| s.get("tier")))
            .ok_or_else(|| ArmShapeError("no `sku.tier`".into()))?;
        let next_gen = props
            .get("isGeneralPurposeV2")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let tier = match tier_text.to_ascii_lowercase().as_str() {
            "generalpurpose" if next_gen => ServiceTier::NextGenGeneralPurpose,
            "generalpurpose" => ServiceTier::GeneralPurpose,
            "businesscritical" => ServiceTier::BusinessCritical,
            other => return Err(ArmShapeError(format!("unknown sku.tier {other:?}"))),
        };
        let vcores = props
            .get("vCores")
            .or_else(|| sku.and_then(|s| s.get("capacity")))
            .and_then(serde_json::Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| ArmShapeError("no `properties.vCores`".into()))?;
        let storage_max_gb = props
            .get("storageSizeInGB")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| ArmShapeError("no `properties.storageSizeInGB`".into()))?;
        let update_policy = match text(props.get("databaseFormat")) {
            Some(v) => Some(
                UpdatePolicy::parse(&v)
                    .map_err(|e| ArmShapeError(format!("databaseFormat: {e}")))?,
            ),
            None => None,
        };
        Ok(TargetFacts {
            name,
            fqdn,
            tier,
            hardware: text(sku.and_then(|s| s.get("family"))),
            vcores,
            storage_max_gb,
            storage_used_gb: None,
            databases: None,
            update_policy,
            in_failover_group: None,
            collation: text(props.get("collation")),
            tde_certificate_thumbprints: None,
            caller_permissions: None,
            tde_protector: None,
            subnet_id: text(props.get("subnetId")),
            subnet_prefixes: None,
            server_trust_certificates: None,
            endpoint_certificate: None,
            links: None,
        })
    }

    /// The number of databases on the instance, when known.
    pub fn database_count(&self) -> Option<usize> {
        self.databases.as_ref().map(Vec::len)
    }

    /// Whether a database of this name exists (case-insensitive), when known.
    pub fn has_database(&self, name: &DatabaseName) -> Option<bool> {
        self.databases.as_ref().map(|dbs| {
            dbs.iter()
                .any(|d| d.as_str().eq_ignore_ascii_case(name.as_str()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editions_from_server_property() {
        for (text, e) in [
            (
                "Enterprise Edition: Core-based Licensing (64-bit)",
                Edition::Enterprise,
            ),
            ("Enterprise Edition (64-bit)", Edition::Enterprise),
            ("Developer Edition (64-bit)", Edition::Developer),
            ("Standard Edition (64-bit)", Edition::Standard),
            (
                "Enterprise Evaluation Edition (64-bit)",
                Edition::Evaluation,
            ),
            (
                "Express Edition with Advanced Services (64-bit)",
                Edition::Express,
            ),
            ("Web Edition (64-bit)", Edition::Web),
            ("SQL Azure", Edition::Other),
        ] {
            assert_eq!(Edition::from_server_property(text), e, "{text}");
        }
    }

    #[test]
    fn host_from_version_text() {
        let w = HostOs::from_version_text(
            "Microsoft SQL Server 2022 (RTM-CU13) (KB5036432) - 16.0.4125.3 (X64) \n\tMay  1 2024 15:05:56 \n\tCopyright (C) 2022 Microsoft Corporation\n\tEnterprise Edition: Core-based Licensing (64-bit) on Windows Server 2022 Datacenter 10.0 <X64> (Build 20348: ) (Hypervisor)\n",
        );
        assert_eq!(w.platform, HostPlatform::Windows);
        assert_eq!(w.description, "Windows Server 2022 Datacenter 10.0");
        assert!(!w.is_windows_client());
        let l = HostOs::from_version_text(
            "Microsoft SQL Server 2022 (RTM-CU14) - 16.0.4135.4 (X64) \n\tJul 10 2024 14:09:09 \n\tCopyright (C) 2022 Microsoft Corporation\n\tDeveloper Edition (64-bit) on Linux (Ubuntu 22.04.4 LTS) <X64>",
        );
        assert_eq!(l.platform, HostPlatform::Linux);
        assert_eq!(l.description, "Linux (Ubuntu 22.04.4 LTS)");
        let c =
            HostOs::from_version_text("… Developer Edition (64-bit) on Windows 10 Pro 10.0 <X64>");
        assert!(c.is_windows_client());
        assert_eq!(
            HostOs::from_version_text("garbage").platform,
            HostPlatform::Unknown
        );
    }

    #[test]
    fn target_from_the_official_arm_example() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/arm/ManagedInstanceGet.json"
        );
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let body = &doc["responses"]["200"]["body"];
        let t = TargetFacts::from_arm_json(body).unwrap();
        assert_eq!(t.name, "testinstance");
        assert_eq!(
            t.fqdn.as_str(),
            "testinstance.1b4e2caff2530.database.windows.net"
        );
        assert_eq!(t.tier, ServiceTier::GeneralPurpose);
        assert_eq!(t.hardware.as_deref(), Some("Gen5"));
        assert_eq!(t.vcores, 8);
        assert_eq!(t.storage_max_gb, 1024);
        assert_eq!(t.update_policy, Some(UpdatePolicy::SqlServer2022));
        assert_eq!(t.collation.as_deref(), Some("SQL_Latin1_General_CP1_CI_AS"));
        assert_eq!(t.databases, None);
        assert_eq!(t.in_failover_group, None);

        let mut next_gen = body.clone();
        next_gen["properties"]["isGeneralPurposeV2"] = serde_json::Value::Bool(true);
        assert_eq!(
            TargetFacts::from_arm_json(&next_gen).unwrap().tier,
            ServiceTier::NextGenGeneralPurpose
        );
        let mut bc = body.clone();
        bc["sku"]["tier"] = "BusinessCritical".into();
        assert_eq!(
            TargetFacts::from_arm_json(&bc).unwrap().tier,
            ServiceTier::BusinessCritical
        );
    }

    #[test]
    fn target_from_arm_refuses_other_shapes() {
        assert!(TargetFacts::from_arm_json(&serde_json::json!({})).is_err());
        let bad_tier = serde_json::json!({"name": "mi", "sku": {"tier": "Hyperscale"},
            "properties": {"fullyQualifiedDomainName": "mi.z.database.windows.net", "vCores": 4, "storageSizeInGB": 32}});
        assert!(TargetFacts::from_arm_json(&bad_tier).is_err());
        let bad_policy = serde_json::json!({"name": "mi", "sku": {"tier": "GeneralPurpose"},
            "properties": {"fullyQualifiedDomainName": "mi.z.database.windows.net", "vCores": 4,
            "storageSizeInGB": 32, "databaseFormat": "SQLServer2019"}});
        assert!(TargetFacts::from_arm_json(&bad_policy).is_err());
    }

    #[test]
    fn linked_server_providers() {
        let ls = |provider: &str, product: &str| LinkedServer {
            name: "x".into(),
            product: product.into(),
            provider: provider.into(),
            data_source: "h".into(),
        };
        assert!(ls("MSOLEDBSQL", "").is_sql_server());
        assert!(ls("SQLNCLI11", "").is_sql_server());
        assert!(ls("SQLOLEDB", "").is_sql_server());
        assert!(ls("", "SQL Server").is_sql_server());
        assert!(!ls("OraOLEDB.Oracle", "Oracle").is_sql_server());
        assert!(!ls("Microsoft.ACE.OLEDB.12.0", "Access").is_sql_server());
    }
}
