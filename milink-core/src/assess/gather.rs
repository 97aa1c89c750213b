//! Gathering facts: the [`FactSource`] seam (a real TDS adapter or the simulator implements it)
//! and [`gather_instance_facts`], which sends the fixed readiness probes and parses their
//! result sets by column name into [`InstanceFacts`] and [`DatabaseFacts`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use async_trait::async_trait;
use futures_util::stream::{self, StreamExt};

use crate::assess::facts::{
    AgMembership, AssemblyFact, CatalogFacts, CertificateFact, ClusterFacts, CodeFacts,
    DatabaseFacts, DatabaseState, Edition, EndpointState, HostOs, InstanceFacts, JobStep,
    LinkedServer, MirroringEndpoint, MultiDatabaseFacts, RecoveryModel, ReplicationFlags, TdeFacts,
    TraceFlag, WindowsLogin, WindowsUser,
};
use crate::assess::scan::{self, Marker};
use crate::names::{DatabaseName, ServerName, SqlVersion};
use crate::time::Timestamp;
use crate::tsql::{Batch, readiness};

/// One value of a result set.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// `bit`.
    Bool(bool),
    /// Integer types.
    Int(i64),
    /// `float`, `real`, `decimal`.
    Float(f64),
    /// Character types.
    Text(String),
    /// `varbinary`, `binary`.
    Binary(Vec<u8>),
}

impl From<&str> for Cell {
    fn from(v: &str) -> Self {
        Cell::Text(v.to_owned())
    }
}
impl From<String> for Cell {
    fn from(v: String) -> Self {
        Cell::Text(v)
    }
}
impl From<i64> for Cell {
    fn from(v: i64) -> Self {
        Cell::Int(v)
    }
}
impl From<bool> for Cell {
    fn from(v: bool) -> Self {
        Cell::Bool(v)
    }
}
impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(v: Option<T>) -> Self {
        v.map_or(Cell::Null, Into::into)
    }
}

/// One result set: column names and typed rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    columns: Vec<String>,
    rows: Vec<Vec<Cell>>,
}

impl Rows {
    /// An empty result set with these columns.
    pub fn new<S: Into<String>>(columns: impl IntoIterator<Item = S>) -> Self {
        Rows {
            columns: columns.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; refuses a row whose length differs from the column count.
    pub fn push(&mut self, row: Vec<Cell>) -> Result<(), SourceError> {
        if row.len() != self.columns.len() {
            return Err(SourceError::new(format!(
                "row has {} cells for {} columns",
                row.len(),
                self.columns.len()
            )));
        }
        self.rows.push(row);
        Ok(())
    }

    /// The column names.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The rows, each with one cell per column.
    pub fn rows(&self) -> &[Vec<Cell>] {
        &self.rows
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// No rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn index(&self, column: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(column))
    }
}

/// A failure reported by the fact source (the adapter keeps the server's error number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    /// What went wrong.
    pub message: String,
    /// Retrying may succeed (connection dropped, timeout).
    pub transient: bool,
    /// The SQL Server error number, when there is one.
    pub number: Option<i32>,
}

impl SourceError {
    /// A permanent error.
    pub fn new(message: impl Into<String>) -> Self {
        SourceError {
            message: message.into(),
            transient: false,
            number: None,
        }
    }

    /// A transient error.
    pub fn transient(message: impl Into<String>) -> Self {
        SourceError {
            transient: true,
            ..SourceError::new(message)
        }
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.number {
            Some(n) => write!(f, "SQL error {n}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for SourceError {}

/// Gathering failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GatherError {
    /// The source could not run a probe.
    #[error("readiness probe {probe:?} failed: {source}")]
    Source {
        /// The probe's purpose.
        probe: &'static str,
        /// The source's error.
        source: SourceError,
    },
    /// A probe's result set lacks a column.
    #[error("readiness probe {probe:?} returned no column {column:?}")]
    MissingColumn {
        /// The probe's purpose.
        probe: &'static str,
        /// The column.
        column: &'static str,
    },
    /// A value could not be read.
    #[error("readiness probe {probe:?}: column {column:?} {problem}")]
    BadValue {
        /// The probe's purpose.
        probe: &'static str,
        /// The column.
        column: &'static str,
        /// What is wrong.
        problem: String,
    },
}

impl GatherError {
    /// Retrying may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, GatherError::Source { source, .. } if source.transient)
    }

    /// The server failed (rather than returning something unexpected).
    pub fn is_remote(&self) -> bool {
        matches!(self, GatherError::Source { .. })
    }
}

/// Runs read-only batches and returns their single result set. A TDS adapter or the
/// simulator implements it.
#[async_trait]
pub trait FactSource: Send + Sync {
    /// Runs `batch` and returns its result set.
    async fn query(&self, batch: &Batch) -> Result<Rows, SourceError>;
}

/// Which databases' module text to scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ModuleScan {
    /// None: the code-based rules report "not evaluated".
    Off,
    /// Every online user database.
    #[default]
    All,
    /// Only these (e.g. the ones about to be linked).
    Only(Vec<DatabaseName>),
}

/// Gathering options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatherOptions {
    /// Which databases' module text to scan.
    pub modules: ModuleScan,
    /// At most this many module text batches in flight (0 counts as 1; default 4).
    pub module_concurrency: usize,
}

impl Default for GatherOptions {
    fn default() -> Self {
        GatherOptions {
            modules: ModuleScan::All,
            module_concurrency: 4,
        }
    }
}

/// What [`gather_instance_facts`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct GatheredFacts {
    /// The instance.
    pub instance: InstanceFacts,
    /// Its user databases.
    pub databases: Vec<DatabaseFacts>,
    /// Databases left out because their name is not a valid [`DatabaseName`], with the reason.
    pub skipped_databases: Vec<(String, String)>,
    /// Databases whose module text could not be read, with the error.
    pub module_scan_errors: Vec<(DatabaseName, String)>,
    /// Probe batches sent (always [`readiness::PROBE_COUNT`]).
    pub probe_batches: usize,
    /// Module text batches sent (one per scanned database).
    pub module_batches: usize,
}

/// Reads one row by column name.
struct RowReader<'a> {
    probe: &'static str,
    rows: &'a Rows,
    cells: &'a [Cell],
}

impl<'a> RowReader<'a> {
    fn cell(&self, column: &'static str) -> Result<&'a Cell, GatherError> {
        let i = self.rows.index(column).ok_or(GatherError::MissingColumn {
            probe: self.probe,
            column,
        })?;
        Ok(&self.cells[i])
    }

    /// Whether the result set has `column` (the columns added at the end of a probe are read
    /// only when present, so a recording or a server that predates them still parses).
    fn has(&self, column: &str) -> bool {
        self.rows.index(column).is_some()
    }

    fn bad(&self, column: &'static str, problem: impl Into<String>) -> GatherError {
        GatherError::BadValue {
            probe: self.probe,
            column,
            problem: problem.into(),
        }
    }

    fn opt_text(&self, column: &'static str) -> Result<Option<String>, GatherError> {
        Ok(match self.cell(column)? {
            Cell::Null => None,
            Cell::Text(s) => Some(s.clone()),
            Cell::Int(i) => Some(i.to_string()),
            Cell::Bool(b) => Some(b.to_string()),
            Cell::Float(f) => Some(f.to_string()),
            Cell::Binary(_) => return Err(self.bad(column, "is binary, expected text")),
        })
    }

    fn text(&self, column: &'static str) -> Result<String, GatherError> {
        self.opt_text(column)?
            .ok_or_else(|| self.bad(column, "is NULL"))
    }

    fn opt_int(&self, column: &'static str) -> Result<Option<i64>, GatherError> {
        Ok(match self.cell(column)? {
            Cell::Null => None,
            Cell::Int(i) => Some(*i),
            Cell::Bool(b) => Some(i64::from(*b)),
            Cell::Float(f) if f.fract() == 0.0 && f.is_finite() => Some(*f as i64),
            Cell::Text(s) => Some(
                s.trim()
                    .parse()
                    .map_err(|_| self.bad(column, format!("{s:?} is not an integer")))?,
            ),
            other => return Err(self.bad(column, format!("{other:?} is not an integer"))),
        })
    }

    fn int(&self, column: &'static str) -> Result<i64, GatherError> {
        self.opt_int(column)?
            .ok_or_else(|| self.bad(column, "is NULL"))
    }

    fn num<T: TryFrom<i64>>(&self, column: &'static str) -> Result<T, GatherError> {
        let v = self.int(column)?;
        T::try_from(v).map_err(|_| self.bad(column, format!("{v} is out of range")))
    }

    fn opt_bool(&self, column: &'static str) -> Result<Option<bool>, GatherError> {
        Ok(match self.cell(column)? {
            Cell::Null => None,
            Cell::Bool(b) => Some(*b),
            Cell::Int(i) => Some(*i != 0),
            Cell::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
                "1" | "true" => Some(true),
                "0" | "false" => Some(false),
                _ => return Err(self.bad(column, format!("{s:?} is not a bit"))),
            },
            other => return Err(self.bad(column, format!("{other:?} is not a bit"))),
        })
    }

    fn flag(&self, column: &'static str) -> Result<bool, GatherError> {
        Ok(self.opt_bool(column)?.unwrap_or(false))
    }

    fn opt_hex(&self, column: &'static str) -> Result<Option<String>, GatherError> {
        Ok(match self.cell(column)? {
            Cell::Null => None,
            Cell::Binary(b) => Some(b.iter().map(|x| format!("{x:02X}")).collect()),
            Cell::Text(s) => Some(
                s.trim()
                    .trim_start_matches("0x")
                    .trim_start_matches("0X")
                    .to_ascii_uppercase(),
            ),
            other => return Err(self.bad(column, format!("{other:?} is not binary"))),
        })
    }

    fn opt_time(&self, column: &'static str) -> Result<Option<Timestamp>, GatherError> {
        Ok(self
            .opt_int(column)?
            .map(|ms| Timestamp::from_millis(u64::try_from(ms).unwrap_or(0))))
    }
}

fn readers<'a>(probe: &'static str, rows: &'a Rows) -> impl Iterator<Item = RowReader<'a>> {
    rows.rows
        .iter()
        .map(move |cells| RowReader { probe, rows, cells })
}

async fn send(source: &dyn FactSource, batch: &Batch) -> Result<Rows, GatherError> {
    source
        .query(batch)
        .await
        .map_err(|source| GatherError::Source {
            probe: batch.purpose(),
            source,
        })
}

/// Instance facts that come before the other probes.
struct InstanceProperties {
    version: SqlVersion,
    update_level: Option<String>,
    edition: Edition,
    hadr_enabled: bool,
    collation: String,
    server_name: ServerName,
    host: HostOs,
    cpu_count: u32,
    physical_memory_mb: u64,
    max_server_memory_mb: u64,
    master_key_present: bool,
    has_certificate_add_issuer: bool,
    is_sysadmin: Option<bool>,
    instance_name: Option<String>,
    local_address: Option<String>,
    cluster: Option<ClusterFacts>,
    startup_trace_flags: Option<Vec<u32>>,
    multi_database: Option<MultiDatabaseFacts>,
}

/// The bits of `system_account_permissions` ([`readiness::instance_properties`]).
pub(crate) const SYSTEM_PERMISSION_BITS: [(i64, &str); 4] = [
    (1, "ALTER ANY AVAILABILITY GROUP"),
    (2, "CONNECT SQL"),
    (4, "VIEW SERVER STATE"),
    (8, "CONTROL SERVER"),
];

/// The bits of `startup_trace_flags` ([`readiness::instance_properties`]).
pub(crate) const STARTUP_FLAG_BITS: [(i64, u32); 3] = [(1, 1800), (2, 9567), (4, 12381)];

fn parse_instance(rows: &Rows) -> Result<InstanceProperties, GatherError> {
    let p = readiness::INSTANCE_PROPERTIES;
    let r = readers(p, rows).next().ok_or(GatherError::BadValue {
        probe: p,
        column: "product_version",
        problem: "no row returned".into(),
    })?;
    let version_text = r.text("product_version")?;
    let version =
        SqlVersion::parse(&version_text).map_err(|e| r.bad("product_version", e.to_string()))?;
    let server_name =
        ServerName::new(r.text("server_name")?).map_err(|e| r.bad("server_name", e.to_string()))?;
    Ok(InstanceProperties {
        version,
        update_level: r.opt_text("product_update_level")?,
        edition: Edition::from_server_property(&r.text("edition")?),
        hadr_enabled: r.opt_int("is_hadr_enabled")? == Some(1),
        collation: r.text("collation")?,
        server_name,
        host: HostOs::from_version_text(&r.opt_text("version_text")?.unwrap_or_default()),
        cpu_count: r.num("cpu_count")?,
        physical_memory_mb: r.num("physical_memory_mb")?,
        max_server_memory_mb: r.num("max_server_memory_mb")?,
        master_key_present: r.flag("master_key_present")?,
        has_certificate_add_issuer: r.flag("has_certificate_add_issuer")?,
        is_sysadmin: if r.has("is_sysadmin") {
            r.opt_bool("is_sysadmin")?
        } else {
            None
        },
        instance_name: if r.has("instance_name") {
            r.opt_text("instance_name")?
        } else {
            None
        },
        local_address: if r.has("local_net_address") {
            r.opt_text("local_net_address")?
        } else {
            None
        },
        cluster: if r.has("cluster_name") && r.has("system_account_permissions") {
            let mask = r.opt_int("system_account_permissions")?.unwrap_or(0);
            Some(ClusterFacts {
                name: r.opt_text("cluster_name")?.filter(|n| !n.trim().is_empty()),
                system_permissions: SYSTEM_PERMISSION_BITS
                    .iter()
                    .filter(|(bit, _)| mask & bit != 0)
                    .map(|(_, name)| (*name).to_owned())
                    .collect(),
            })
        } else {
            None
        },
        startup_trace_flags: if r.has("startup_trace_flags") {
            r.opt_int("startup_trace_flags")?.map(|mask| {
                STARTUP_FLAG_BITS
                    .iter()
                    .filter(|(bit, _)| mask & bit != 0)
                    .map(|(_, flag)| *flag)
                    .collect()
            })
        } else {
            None
        },
        multi_database: if r.has("has_multidb_milink") {
            Some(MultiDatabaseFacts {
                procedure_present: r.flag("has_multidb_milink")?,
                enabled: None,
            })
        } else {
            None
        },
    })
}

fn parse_trace_flags(rows: &Rows) -> Result<Vec<TraceFlag>, GatherError> {
    readers(readiness::TRACE_FLAGS, rows)
        .map(|r| {
            Ok(TraceFlag {
                flag: r.num("trace_flag")?,
                enabled: r.opt_bool("is_enabled")?.unwrap_or(true),
            })
        })
        .collect()
}

fn parse_endpoints(rows: &Rows) -> Result<Vec<MirroringEndpoint>, GatherError> {
    readers(readiness::MIRRORING_ENDPOINTS, rows)
        .map(|r| {
            Ok(MirroringEndpoint {
                name: r.text("name")?,
                state: EndpointState::from_desc(&r.text("state_desc")?),
                role: r.opt_text("role_desc")?.unwrap_or_default(),
                authentication: r.opt_text("connection_auth_desc")?.unwrap_or_default(),
                encryption_enabled: r.flag("is_encryption_enabled")?,
                algorithm: r.opt_text("encryption_algorithm_desc")?.unwrap_or_default(),
                certificate: r.opt_text("certificate_name")?,
                port: r.num("port")?,
                ip_address: r.opt_text("ip_address")?,
            })
        })
        .collect()
}

fn parse_certificates(rows: &Rows) -> Result<Vec<CertificateFact>, GatherError> {
    readers(readiness::CERTIFICATES, rows)
        .map(|r| {
            Ok(CertificateFact {
                name: r.text("name")?,
                subject: r.opt_text("subject")?.unwrap_or_default(),
                issuer: r.opt_text("issuer_name")?.unwrap_or_default(),
                expiry: r.opt_time("expiry_ms")?.unwrap_or(Timestamp::EPOCH),
                private_key: r
                    .opt_text("pvt_key_encryption_type_desc")?
                    .unwrap_or_default(),
                thumbprint: r.opt_hex("thumbprint")?.unwrap_or_default(),
                encoded: if r.has("encoded") {
                    r.opt_hex("encoded")?
                } else {
                    None
                },
            })
        })
        .collect()
}

fn parse_job_steps(rows: &Rows) -> Result<Vec<JobStep>, GatherError> {
    readers(readiness::AGENT_JOB_STEPS, rows)
        .map(|r| {
            let job = r.text("job_name")?;
            let step_id: u32 = r.num("step_id")?;
            let subsystem = r.text("subsystem")?;
            let markers = if subsystem.eq_ignore_ascii_case("TSQL") {
                let command = r.opt_text("command")?.unwrap_or_default();
                let set: BTreeSet<Marker> = scan::scan_module(&job, &command)
                    .into_iter()
                    .map(|h| h.marker)
                    .filter(|m| *m != Marker::RemoteServer)
                    .collect();
                set.into_iter().collect()
            } else {
                Vec::new()
            };
            Ok(JobStep {
                job,
                job_enabled: r.flag("job_enabled")?,
                step_id,
                step: r.opt_text("step_name")?.unwrap_or_default(),
                subsystem,
                markers,
            })
        })
        .collect()
}

fn parse_logins(rows: &Rows) -> Result<Vec<WindowsLogin>, GatherError> {
    readers(readiness::WINDOWS_LOGINS, rows)
        .map(|r| {
            Ok(WindowsLogin {
                name: r.text("name")?,
                is_group: r
                    .opt_text("type_desc")?
                    .is_some_and(|t| t.eq_ignore_ascii_case("WINDOWS_GROUP")),
                is_disabled: r.flag("is_disabled")?,
            })
        })
        .collect()
}

fn parse_linked_servers(rows: &Rows) -> Result<Vec<LinkedServer>, GatherError> {
    readers(readiness::LINKED_SERVERS, rows)
        .map(|r| {
            Ok(LinkedServer {
                name: r.text("name")?,
                product: r.opt_text("product")?.unwrap_or_default(),
                provider: r.opt_text("provider")?.unwrap_or_default(),
                data_source: r.opt_text("data_source")?.unwrap_or_default(),
            })
        })
        .collect()
}

#[derive(Default)]
struct FileTotals {
    data_mb: u64,
    log_mb: u64,
    data_files: u32,
    log_files: Vec<String>,
    filestream_type_spaces: Vec<i64>,
}

fn parse_files(rows: &Rows) -> Result<BTreeMap<i64, FileTotals>, GatherError> {
    let mut by_db: BTreeMap<i64, FileTotals> = BTreeMap::new();
    for r in readers(readiness::DATABASE_FILES, rows) {
        let t = by_db.entry(r.int("database_id")?).or_default();
        let size: u64 = u64::try_from(r.int("size_mb")?).unwrap_or(0);
        match r.text("type_desc")?.to_ascii_uppercase().as_str() {
            "ROWS" => {
                t.data_files += 1;
                t.data_mb += size;
            }
            "LOG" => {
                t.log_files.push(r.text("logical_name")?);
                t.log_mb += size;
            }
            "FILESTREAM" => t
                .filestream_type_spaces
                .push(r.opt_int("data_space_id")?.unwrap_or(0)),
            _ => {}
        }
    }
    Ok(by_db)
}

fn parse_catalog(
    rows: &Rows,
    files: &BTreeMap<i64, FileTotals>,
) -> Result<BTreeMap<i64, CatalogFacts>, GatherError> {
    let mut read: BTreeMap<i64, CatalogFacts> = BTreeMap::new();
    let mut failed: BTreeSet<i64> = BTreeSet::new();
    let mut fd_spaces: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    let mut fx_spaces: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for r in readers(readiness::DATABASE_CATALOG, rows) {
        let id = r.int("database_id")?;
        let item = r.text("item")?;
        let c = read.entry(id).or_default();
        let count = || -> Result<u32, GatherError> {
            u32::try_from(r.opt_int("value")?.unwrap_or(0))
                .map_err(|_| r.bad("value", "out of range"))
        };
        match item.as_str() {
            "filegroup" => {
                let name = r.opt_text("name")?.unwrap_or_default();
                let space = r.opt_int("value")?.unwrap_or(0);
                match r.opt_text("detail")?.unwrap_or_default().trim() {
                    "FD" => {
                        c.filestream_filegroups.push(name);
                        fd_spaces.entry(id).or_default().push(space);
                    }
                    "FX" => {
                        c.memory_optimized_filegroup = Some(name);
                        fx_spaces.entry(id).or_default().push(space);
                    }
                    _ => {}
                }
            }
            "filetables" => c.filetables = count()?,
            "memory_optimized_tables" => c.memory_optimized_tables = count()?,
            "aliased_users" => c.aliased_users = count()?,
            "assembly" => c.assemblies.push(AssemblyFact {
                name: r.opt_text("name")?.unwrap_or_default(),
                permission_set: r.opt_text("detail")?.unwrap_or_default(),
            }),
            "next_name" => c
                .objects_named_next
                .push(r.opt_text("name")?.unwrap_or_default()),
            "pvs_filegroup" => c.pvs_filegroup = r.opt_text("name")?,
            "error" => {
                failed.insert(id);
            }
            _ => {}
        }
    }
    let ok_ids: BTreeSet<i64> = readers(readiness::DATABASE_CATALOG, rows)
        .filter(|r| r.text("item").is_ok_and(|i| i == "catalog_read"))
        .filter_map(|r| r.int("database_id").ok())
        .collect();
    read.retain(|id, _| ok_ids.contains(id) && !failed.contains(id));
    let mut windows = parse_windows_principals(rows)?;
    for (id, c) in read.iter_mut() {
        // A database read without Windows principals has none.
        c.windows_users = Some(windows.remove(id).unwrap_or_default());
        if let Some(f) = files.get(id) {
            let fd = fd_spaces.get(id).cloned().unwrap_or_default();
            let fx = fx_spaces.get(id).cloned().unwrap_or_default();
            for space in &f.filestream_type_spaces {
                if fx.contains(space) {
                    c.memory_optimized_files += 1;
                } else if fd.contains(space) {
                    c.filestream_files += 1;
                }
            }
        }
    }
    Ok(read)
}

/// One `windows_user` / `windows_group` row of the per-database catalog
/// ([`readiness::windows_principals`]).
fn windows_principal(r: &RowReader<'_>, item: &str) -> Result<WindowsUser, GatherError> {
    Ok(WindowsUser {
        name: r.text("name")?,
        is_group: item == "windows_group",
        login: r.opt_text("detail")?,
    })
}

/// The rows of [`readiness::windows_principals`] (columns `database_id`, `item`, `name`,
/// `detail`), by database id.
pub(crate) fn parse_windows_principals(
    rows: &Rows,
) -> Result<BTreeMap<i64, Vec<WindowsUser>>, GatherError> {
    let mut by_db: BTreeMap<i64, Vec<WindowsUser>> = BTreeMap::new();
    for r in readers(readiness::DATABASE_CATALOG, rows) {
        let item = r.text("item")?;
        if item == "windows_user" || item == "windows_group" {
            by_db
                .entry(r.int("database_id")?)
                .or_default()
                .push(windows_principal(&r, &item)?);
        }
    }
    Ok(by_db)
}

fn parse_databases(
    rows: &Rows,
    files: &BTreeMap<i64, FileTotals>,
    catalogs: &mut BTreeMap<i64, CatalogFacts>,
    skipped: &mut Vec<(String, String)>,
) -> Result<Vec<DatabaseFacts>, GatherError> {
    let mut out = Vec::new();
    for r in readers(readiness::DATABASES, rows) {
        let raw_name = r.text("name")?;
        let name = match DatabaseName::new(raw_name.as_str()) {
            Ok(n) => n,
            Err(e) => {
                skipped.push((raw_name, e.to_string()));
                continue;
            }
        };
        let id = r.int("database_id")?;
        if out
            .iter()
            .any(|d: &DatabaseFacts| i64::from(d.database_id) == id)
        {
            continue;
        }
        let recovery = r.text("recovery_model_desc")?;
        let recovery_model = RecoveryModel::from_desc(&recovery)
            .ok_or_else(|| r.bad("recovery_model_desc", format!("{recovery:?} is unknown")))?;
        let f = files.get(&id);
        let tde = if r.flag("is_encrypted")? {
            Some(TdeFacts {
                encryptor_type: r.opt_text("tde_encryptor_type")?.unwrap_or_default(),
                certificate: r.opt_text("tde_certificate")?,
                thumbprint: r.opt_hex("tde_thumbprint")?,
            })
        } else {
            None
        };
        let ag = match r.opt_text("ag_name")? {
            Some(ag_name) => Some(AgMembership {
                ag_name,
                database_count: u32::try_from(r.opt_int("ag_database_count")?.unwrap_or(1))
                    .unwrap_or(1),
            }),
            None => None,
        };
        out.push(DatabaseFacts {
            name,
            database_id: r.num("database_id")?,
            state: DatabaseState::from_desc(&r.text("state_desc")?),
            recovery_model,
            compatibility_level: r.num("compatibility_level")?,
            collation: r.opt_text("collation_name")?,
            data_size_mb: f.map_or(0, |f| f.data_mb),
            log_size_mb: f.map_or(0, |f| f.log_mb),
            data_files: f.map_or(0, |f| f.data_files),
            log_files: f.map(|f| f.log_files.clone()).unwrap_or_default(),
            last_full_backup: r.opt_time("last_full_backup_ms")?,
            last_log_backup: r.opt_time("last_log_backup_ms")?,
            log_chain_established: r.flag("log_chain_established")?,
            tde,
            adr_enabled: r.opt_bool("is_accelerated_database_recovery_on")?,
            broker_enabled: r.flag("is_broker_enabled")?,
            cdc_enabled: r.flag("is_cdc_enabled")?,
            replication: ReplicationFlags {
                published: r.flag("is_published")?,
                subscribed: r.flag("is_subscribed")?,
                merge_published: r.flag("is_merge_published")?,
                distributor: r.flag("is_distributor")?,
            },
            ag,
            catalog: catalogs.remove(&id),
            code: None,
            last_full_backup_checksum: if r.has("last_full_backup_checksum") {
                r.opt_bool("last_full_backup_checksum")?
            } else {
                None
            },
            distributed_ag: if r.has("distributed_ag_name") {
                r.opt_text("distributed_ag_name")?
            } else {
                None
            },
        });
    }
    Ok(out)
}

pub(crate) fn parse_modules(rows: &Rows) -> Result<CodeFacts, GatherError> {
    let mut code = CodeFacts::default();
    for r in readers(readiness::MODULE_TEXT, rows) {
        code.modules += 1;
        let object = match r.opt_text("schema_name")? {
            Some(schema) => format!("{schema}.{}", r.text("object_name")?),
            None => r.text("object_name")?,
        };
        let object = format!(
            "{object} ({})",
            r.opt_text("object_type")?.unwrap_or_default()
        );
        match r.opt_text("definition")? {
            Some(text) => code.hits.extend(scan::scan_module(&object, &text)),
            None => {
                code.encrypted_modules += 1;
                code.encrypted.push(object);
            }
        }
    }
    Ok(code)
}

/// Sends the [`readiness::PROBE_COUNT`] probes (instance properties first, to learn the
/// version; then the rest), parses them, then scans module text with bounded concurrency.
pub async fn gather_instance_facts(
    source: &dyn FactSource,
    options: &GatherOptions,
) -> Result<GatheredFacts, GatherError> {
    let props = parse_instance(&send(source, &readiness::instance_properties()).await?)?;
    let probes = readiness::version_probes(props.version);
    let mut results = Vec::with_capacity(probes.len());
    for batch in &probes {
        results.push(send(source, batch).await?);
    }
    let probe_batches = 1 + probes.len();
    let by_purpose = |purpose: &str| {
        probes
            .iter()
            .position(|b| b.purpose() == purpose)
            .and_then(|i| results.get(i))
            .ok_or(GatherError::MissingColumn {
                probe: readiness::INSTANCE_PROPERTIES,
                column: "probe",
            })
    };

    let instance = InstanceFacts {
        server_name: props.server_name,
        version: props.version,
        update_level: props.update_level,
        edition: props.edition,
        host: props.host,
        hadr_enabled: props.hadr_enabled,
        trace_flags: parse_trace_flags(by_purpose(readiness::TRACE_FLAGS)?)?,
        master_key_present: props.master_key_present,
        has_certificate_add_issuer: props.has_certificate_add_issuer,
        endpoints: parse_endpoints(by_purpose(readiness::MIRRORING_ENDPOINTS)?)?,
        certificates: parse_certificates(by_purpose(readiness::CERTIFICATES)?)?,
        collation: props.collation,
        cpu_count: props.cpu_count,
        physical_memory_mb: props.physical_memory_mb,
        max_server_memory_mb: props.max_server_memory_mb,
        job_steps: parse_job_steps(by_purpose(readiness::AGENT_JOB_STEPS)?)?,
        windows_logins: parse_logins(by_purpose(readiness::WINDOWS_LOGINS)?)?,
        linked_servers: parse_linked_servers(by_purpose(readiness::LINKED_SERVERS)?)?,
        is_sysadmin: props.is_sysadmin,
        instance_name: props.instance_name,
        local_address: props.local_address,
        cluster: props.cluster,
        startup_trace_flags: props.startup_trace_flags,
        multi_database: props.multi_database,
    };
    let files = parse_files(by_purpose(readiness::DATABASE_FILES)?)?;
    let mut catalogs = parse_catalog(by_purpose(readiness::DATABASE_CATALOG)?, &files)?;
    let mut skipped_databases = Vec::new();
    let mut databases = parse_databases(
        by_purpose(readiness::DATABASES)?,
        &files,
        &mut catalogs,
        &mut skipped_databases,
    )?;

    // Module text: the documented per-database exception, bounded.
    let targets: Vec<(usize, DatabaseName)> = databases
        .iter()
        .enumerate()
        .filter(|(_, d)| d.state == DatabaseState::Online)
        .filter(|(_, d)| match &options.modules {
            ModuleScan::Off => false,
            ModuleScan::All => true,
            ModuleScan::Only(names) => names
                .iter()
                .any(|n| n.as_str().eq_ignore_ascii_case(d.name.as_str())),
        })
        .map(|(i, d)| (i, d.name.clone()))
        .collect();
    let module_batches = targets.len();
    let scans: Vec<(usize, DatabaseName, Result<Rows, GatherError>)> = stream::iter(targets)
        .map(|(i, name)| async move {
            let rows = send(source, &readiness::module_text(&name)).await;
            (i, name, rows)
        })
        .buffer_unordered(options.module_concurrency.max(1))
        .collect()
        .await;
    let mut module_scan_errors = Vec::new();
    for (i, name, rows) in scans {
        match rows.and_then(|r| parse_modules(&r)) {
            Ok(code) => {
                if let Some(d) = databases.get_mut(i) {
                    d.code = Some(code);
                }
            }
            Err(e) => module_scan_errors.push((name, e.to_string())),
        }
    }
    module_scan_errors.sort();

    Ok(GatheredFacts {
        instance,
        databases,
        skipped_databases,
        module_scan_errors,
        probe_batches,
        module_batches,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assess::fixtures::RecordedSource;

    /// Answers like the lab, with a change to one probe's result set.
    struct Edited(RecordedSource, fn(&Batch, &mut Rows));

    #[async_trait]
    impl FactSource for Edited {
        async fn query(&self, batch: &Batch) -> Result<Rows, SourceError> {
            let mut rows = self.0.query(batch).await?;
            (self.1)(batch, &mut rows);
            Ok(rows)
        }
    }

    fn gather(edit: fn(&Batch, &mut Rows)) -> Result<GatheredFacts, GatherError> {
        let source = Edited(RecordedSource::tailspin(), edit);
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(gather_instance_facts(&source, &GatherOptions::default()))
    }

    #[test]
    fn a_database_listed_twice_is_kept_once() {
        let g = gather(|b, r| {
            if b.purpose() == readiness::DATABASES {
                let again = r.rows.clone();
                r.rows.extend(again);
            }
        })
        .unwrap();
        assert_eq!(g.databases.len(), 2);
    }

    #[test]
    fn an_unknown_recovery_model_is_a_bad_value() {
        let err = gather(|b, r| {
            if b.purpose() == readiness::DATABASES {
                let i = r.index("recovery_model_desc").unwrap();
                r.rows[0][i] = "PARTIAL".into();
            }
        })
        .unwrap_err();
        assert!(
            matches!(
                &err,
                GatherError::BadValue {
                    column: "recovery_model_desc",
                    ..
                }
            ),
            "{err}"
        );
        assert!(!err.is_transient() && !err.is_remote());
    }

    #[test]
    fn an_invalid_database_name_is_skipped_and_reported() {
        let g = gather(|b, r| {
            if b.purpose() == readiness::DATABASES {
                let i = r.index("name").unwrap();
                r.rows[1][i] = " Customer360".into();
            }
        })
        .unwrap();
        assert_eq!(g.databases.len(), 1);
        assert_eq!(g.skipped_databases.len(), 1);
        assert_eq!(g.skipped_databases[0].0, " Customer360");
    }

    #[test]
    fn cells_are_read_leniently_but_not_wrongly() {
        let mut rows = Rows::new(["b", "n", "t", "x"]);
        rows.push(vec![
            Cell::Text("1".into()),
            Cell::Text(" 42 ".into()),
            Cell::Int(7),
            Cell::Binary(vec![0xAB, 0x01]),
        ])
        .unwrap();
        let r = readers("test", &rows).next().unwrap();
        assert_eq!(r.opt_bool("b").unwrap(), Some(true));
        assert_eq!(r.int("n").unwrap(), 42);
        assert_eq!(r.text("t").unwrap(), "7");
        assert_eq!(r.opt_hex("x").unwrap().as_deref(), Some("AB01"));
        assert!(r.opt_bool("t").is_ok(), "an int is a bit");
        assert!(r.int("x").is_err());
        assert!(r.text("x").is_err());
        assert!(matches!(
            r.int("missing"),
            Err(GatherError::MissingColumn {
                column: "missing",
                ..
            })
        ));
        let mut rows = Rows::new(["n"]);
        rows.push(vec![Cell::Int(-1)]).unwrap();
        let r = readers("test", &rows).next().unwrap();
        assert!(r.num::<u32>("n").is_err(), "negative into u32");
    }
}
