//! The world: both servers' state, the link's replication between them, the workload, faults
//! and virtual time.
//!
//! [`World::advance_to`] runs the world forward: the workload commits (the primary's LSN
//! advances), log ships at the link's bandwidth and latency (the secondary's
//! `last_hardened_lsn` follows, and commits waiting for it are acknowledged), seeding progresses
//! at its rate and restarts after a disconnect, a demoted old primary reverts its divergent tail,
//! long-running ARM operations complete, and the managed instance takes its automatic backups.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::assess::{Edition, HostOs, InstanceFacts, ServiceTier};
use crate::lifecycle::{
    AvailabilityMode, DatabaseView, InstanceOp, LinkProperties, PartnerReplica, ReplicaRole, Side,
    SideView, SyncHealth, SyncState,
};
use crate::names::{
    AgName, CertificateName, DatabaseName, EndpointName, InstanceId, LinkName, Lsn, MiFqdn,
    ServerName, SqlVersion, TcpPort, UpdatePolicy,
};
use crate::ports::PortError;
use crate::time::{Date, Timestamp};

use super::arm_view::ArmReading;
use super::commits::{CommitBook, CommitStatus, Committed};
use super::errors;
use super::faults::{Call, Fault, FaultPlan, InjectedError};
use super::lab::{DatabaseTopology, RecoveryModel, SimTopology};
use crate::redirect::{ClientSession, WorkloadActivity};

use super::workload::{
    DbData, DbSnapshot, LogPoint, Txn, Workload, WorkloadSpec, WorkloadStats, row_hash,
};
use super::{DurationRange, SimConfig};

pub mod arc;
mod backups;
mod data;
mod events;
mod replication;
mod time;
mod views;
mod workload;

pub use arc::ArcState;
pub use events::{EventKind, SimEvent};

/// The simulated application's session id, login, client host and program name, as the DMVs
/// show them.
pub const APP_SESSION_ID: u16 = 57;
/// The simulated application's login.
pub const APP_LOGIN: &str = "tailspin_app";
/// The simulated application's client host.
pub const APP_HOST: &str = "TAILSPIN-WEB01";
/// The simulated application's program name (its connection string's `Application Name`).
pub const APP_PROGRAM: &str = "Tailspin.Web";

/// The trace flag that keeps the log from being truncated during seeding (facts §1.3).
pub const TF_HOLD_LOG_DURING_SEEDING: u32 = 12381;

/// The longest step the world takes while something is moving (workload, shipping, seeding).
const ACTIVE_STEP: Duration = Duration::from_secs(1);

/// The world's one random generator, serialised as its state.
#[derive(Debug, Clone)]
pub(crate) struct SimRng(pub(crate) fastrand::Rng);

impl Serialize for SimRng {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0.get_seed())
    }
}

impl<'de> Deserialize<'de> for SimRng {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(SimRng(fastrand::Rng::with_seed(u64::deserialize(d)?)))
    }
}

/// A database's availability on one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DbState {
    /// Online.
    Online,
    /// Restoring: being seeded, or left behind after its availability group was removed.
    Restoring,
}

/// A certificate in SQL Server's `master`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlCertificate {
    /// Name.
    pub name: String,
    /// Subject, for certificates created here.
    pub subject: Option<String>,
    /// Expiry date, if known.
    pub expiry: Option<Date>,
    /// The public key (DER).
    pub der: Vec<u8>,
    /// Created here with a private key (protected by the master key), not imported.
    pub has_private_key: bool,
    /// `sp_certificate_add_issuer` registered it for this DNS name.
    pub trusted_issuer_for: Option<String>,
}

/// The `DATABASE_MIRRORING` endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirroringEndpoint {
    /// Name.
    pub name: EndpointName,
    /// Listener port.
    pub port: TcpPort,
    /// The authentication certificate, if certificate authentication is on.
    pub certificate: Option<CertificateName>,
    /// `STATE = STARTED`.
    pub started: bool,
    /// `ENCRYPTION = REQUIRED ALGORITHM AES`.
    pub aes: bool,
}

/// An availability group on SQL Server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlAvailabilityGroup {
    /// Name.
    pub name: AgName,
    /// Databases.
    pub databases: Vec<DatabaseName>,
    /// The replica (`@@SERVERNAME`).
    pub replica: ServerName,
    /// `ENDPOINT_URL`.
    pub endpoint_url: String,
    /// `GRANT CREATE ANY DATABASE` (seeding may create databases).
    pub create_any_database: bool,
}

/// The distributed availability group (the link) in SQL Server's catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlDistributedAg {
    /// Name (the link name).
    pub name: LinkName,
    /// The SQL Server AG.
    pub sql_ag: AgName,
    /// The managed instance AG.
    pub mi_ag: AgName,
    /// `LISTENER_URL` of the SQL Server AG.
    pub sql_listener_url: String,
    /// The managed instance FQDN in the second `LISTENER_URL`.
    pub mi_fqdn: MiFqdn,
    /// `AVAILABILITY_MODE` of SQL Server's replica (its AG) in this catalog.
    pub sql_mode: AvailabilityMode,
    /// `AVAILABILITY_MODE` of the managed instance's replica (its AG) in this catalog.
    pub mi_mode: AvailabilityMode,
    /// SQL Server's role in the DAG.
    pub role: ReplicaRole,
    /// `SESSION_TIMEOUT`.
    pub session_timeout_s: u16,
}

/// A user database on SQL Server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceDatabase {
    /// Facts (recovery model, files, backups, …).
    pub facts: DatabaseTopology,
    /// Content.
    pub data: DbData,
    /// Availability.
    pub state: DbState,
    /// When the last log backup finished.
    pub last_log_backup: Option<Timestamp>,
    /// `database_id`.
    pub database_id: i32,
}

/// SQL Server's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceState {
    /// `@@SERVERNAME`.
    pub server: ServerName,
    /// Version.
    pub version: SqlVersion,
    /// Edition.
    pub edition: Edition,
    /// Host OS.
    pub host: HostOs,
    /// Collation.
    pub collation: String,
    /// Always On enabled.
    pub hadr_enabled: bool,
    /// Global trace flags.
    pub trace_flags: BTreeSet<u32>,
    /// CPU cores.
    pub cores: u32,
    /// Memory in MB.
    pub memory_mb: u64,
    /// `max server memory (MB)`.
    pub max_server_memory_mb: u64,
    /// Assessment facts the simulator does not model (Agent jobs, logins, linked servers).
    pub static_facts: Option<InstanceFacts>,
    /// A database master key exists in `master`.
    pub master_key: bool,
    /// Certificates in `master`, by name.
    pub certificates: BTreeMap<String, SqlCertificate>,
    /// The mirroring endpoint.
    pub endpoint: Option<MirroringEndpoint>,
    /// The Azure root CAs are imported and registered as issuers for `*.database.windows.net`.
    pub root_ca_trust: bool,
    /// Availability groups.
    pub ags: BTreeMap<AgName, SqlAvailabilityGroup>,
    /// Distributed availability groups.
    pub dags: BTreeMap<LinkName, SqlDistributedAg>,
    /// User databases.
    pub databases: BTreeMap<DatabaseName, SourceDatabase>,
}

/// The link resource on the managed instance (`distributedAvailabilityGroups/{name}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceLink {
    /// The properties it was created with.
    pub properties: LinkProperties,
    /// `instanceLinkRole`.
    pub role: ReplicaRole,
    /// `replicationMode`.
    pub replication_mode: AvailabilityMode,
    /// When it was created.
    pub created: Timestamp,
}

/// A database on the managed instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceDatabase {
    /// Content.
    pub data: DbData,
    /// Availability.
    pub state: DbState,
    /// The link it belongs to, if any.
    pub link: Option<LinkName>,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Since when it is primary (or independent) on the instance.
    pub primary_since: Option<Timestamp>,
}

/// Full or log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackupKind {
    /// Full (`type = 'D'`).
    Full,
    /// Log (`type = 'L'`).
    Log,
}

/// One automatic backup on the managed instance (`msdb.dbo.backupset`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRecord {
    /// Database.
    pub database: DatabaseName,
    /// Kind.
    pub kind: BackupKind,
    /// `backup_finish_date`.
    pub finished: Timestamp,
}

/// When the instance's next automatic backups of one database are due.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupSchedule {
    /// Next full backup.
    pub next_full: Option<Timestamp>,
    /// Next log backup.
    pub next_log: Option<Timestamp>,
}

/// A long-running ARM operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmOperation {
    /// The operation id (the GUID in its URL).
    pub id: String,
    /// What it does.
    pub op: InstanceOp,
    /// When it was accepted.
    pub started: Timestamp,
    /// When it finishes (may move later while it waits for the network).
    pub completes_at: Timestamp,
    /// The result once finished.
    pub outcome: Option<Result<(), InjectedError>>,
}

/// The managed instance's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceState {
    /// ARM id.
    pub id: InstanceId,
    /// FQDN.
    pub fqdn: MiFqdn,
    /// Region.
    pub location: String,
    /// Service tier.
    pub tier: ServiceTier,
    /// Hardware family.
    pub hardware: Option<String>,
    /// Member of a failover group.
    pub in_failover_group: bool,
    /// vCores.
    pub vcores: u32,
    /// Reserved storage in GB.
    pub storage_gb: u32,
    /// Update policy.
    pub update_policy: UpdatePolicy,
    /// Collation.
    pub collation: String,
    /// The instance's `DATABASE_MIRRORING` endpoint certificate (DER).
    pub endpoint_certificate: Vec<u8>,
    /// Server trust certificates, by name (SQL Server certificates the instance trusts).
    pub trust_certificates: BTreeMap<String, Vec<u8>>,
    /// Link resources.
    pub links: BTreeMap<LinkName, InstanceLink>,
    /// Databases.
    pub databases: BTreeMap<DatabaseName, InstanceDatabase>,
    /// Automatic backups taken.
    pub backups: Vec<BackupRecord>,
    /// Upcoming automatic backups.
    pub backup_schedule: BTreeMap<DatabaseName, BackupSchedule>,
    /// ARM operations, by id.
    pub operations: BTreeMap<String, ArmOperation>,
    /// What ARM reports of the instance besides the link: its subnet, TDE protector and what
    /// the caller may do on it (the readiness facts).
    #[serde(default)]
    pub settings: InstanceSettings,
}

/// The managed instance's settings ARM reports and the link's readiness reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct InstanceSettings {
    /// The subnet's resource id (`properties.subnetId`); `None`: the instance reports none.
    pub subnet_id: Option<String>,
    /// The subnet's address ranges.
    pub subnet_prefixes: Vec<String>,
    /// The TDE protector's kind. The simulated instance uses a customer-managed key, so a link
    /// can replicate back to SQL Server; set it to `ServiceManaged` to see what that blocks.
    pub tde_protector: crate::assess::ProtectorKind,
    /// What the caller may do on the instance (ARM's permissions call).
    pub caller_permissions: Vec<crate::assess::ArmPermission>,
}

impl Default for InstanceSettings {
    fn default() -> Self {
        InstanceSettings {
            subnet_id: None,
            subnet_prefixes: vec!["10.20.0.0/24".to_owned()],
            tde_protector: crate::assess::ProtectorKind::CustomerManaged,
            caller_permissions: vec![crate::assess::ArmPermission {
                actions: vec!["Microsoft.Sql/managedInstances/*".to_owned()],
                not_actions: Vec::new(),
            }],
        }
    }
}

impl InstanceSettings {
    /// The defaults, with a subnet in the instance's subscription and resource group.
    pub fn for_instance(id: &InstanceId) -> Self {
        InstanceSettings {
            subnet_id: Some(format!(
                "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/virtualNetworks/{}-vnet/subnets/ManagedInstance",
                id.subscription_id(),
                id.resource_group(),
                id.name()
            )),
            ..InstanceSettings::default()
        }
    }
}

/// Seeding of one database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seeding {
    /// When this attempt started.
    pub started: Timestamp,
    /// Bytes to copy.
    pub bytes_total: u64,
    /// Bytes copied.
    pub bytes_done: u64,
    /// The primary's log point the backup stream starts from.
    pub start: LogPoint,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// The content being copied.
    pub(crate) image: Box<DbData>,
}

impl Seeding {
    /// Percent done.
    pub fn percent(&self) -> u8 {
        if self.bytes_total == 0 {
            return 100;
        }
        u8::try_from((u128::from(self.bytes_done) * 100 / u128::from(self.bytes_total)).min(100))
            .unwrap_or(100)
    }
}

/// Where one database's replication is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplicaPhase {
    /// Waiting for a connection to start (or restart) seeding.
    WaitingToSeed,
    /// Automatic seeding.
    Seeding(Seeding),
    /// Joined: log ships from the primary.
    Synchronizing,
    /// Link creation failed (`LinkCreationError`).
    Failed {
        /// SQL error number.
        code: u32,
        /// Message with cause and fix.
        message: String,
    },
}

/// Replication of one database over a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbReplication {
    /// Phase.
    pub phase: ReplicaPhase,
    /// The last log point known to be on both copies (the fork point after a forced failover).
    pub common: LogPoint,
    /// The last LSN sent to the secondary.
    pub sent_upto: u128,
    /// Synchronous commit and caught up (stays so under load while connected).
    pub synchronized: bool,
    /// Seeding attempts so far.
    pub seeding_attempts: u32,
    /// A demoted old primary holds a divergent tail and undoes it until then (REVERTING).
    #[serde(default)]
    pub reverting_until: Option<Timestamp>,
    pub(crate) link_free_at: Timestamp,
    pub(crate) in_flight: VecDeque<(Timestamp, Txn)>,
}

/// The replication of one link (exists while both the DAG and the link resource do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replication {
    /// Link.
    pub link: LinkName,
    /// When the instance joined.
    pub created: Timestamp,
    /// The first connection is not before this.
    pub connect_at: Timestamp,
    /// Connected now.
    pub connected: bool,
    /// Why it is not connected, as `<number>: <message>`.
    pub last_error: Option<String>,
    /// When the connection was lost, while it is down.
    #[serde(default)]
    pub disconnected_at: Option<Timestamp>,
    /// Per database.
    pub databases: BTreeMap<DatabaseName, DbReplication>,
}

/// The network between the two sides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkState {
    /// Cut until this time.
    pub partitioned_until: Option<Timestamp>,
}

/// Counters the tests and the example read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    /// Transactions lost, counted by the data: at every role change and every removal of the
    /// link, the transactions the old primary's copy holds and the surviving primary's copy does
    /// not; and every commit on SQL Server's copy of a database the instance owns independently
    /// after the link was removed while SQL Server was still primary.
    pub lost_transactions: BTreeMap<DatabaseName, u64>,
    /// Rows in those transactions.
    pub lost_rows: BTreeMap<DatabaseName, u64>,
    /// Of the lost transactions, the application commits the application was told had
    /// committed (acknowledged before or after they were lost).
    #[serde(default)]
    pub lost_acknowledged_transactions: BTreeMap<DatabaseName, u64>,
    /// Transactions undone on a demoted old primary when it rejoined as secondary.
    pub reverted_transactions: BTreeMap<DatabaseName, u64>,
    /// Faults that fired.
    pub faults_fired: u64,
    /// When the last role change was asked for (a T-SQL `FAILOVER` or
    /// `FORCE_FAILOVER_ALLOW_DATA_LOSS`, an ARM `failover` or `setRole`), before the call's
    /// latency: with the `RoleChanged` event that follows, the service's own latency L.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_role_change_requested: Option<Timestamp>,
}

/// Replication lag of one database, as the simulator knows it exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LagInfo {
    /// The primary's end of log.
    pub primary_lsn: u128,
    /// The secondary's hardened end of log.
    pub secondary_lsn: u128,
    /// How long the oldest commit the secondary has not hardened has been waiting (zero when
    /// caught up).
    pub lag: Duration,
    /// Log bytes committed on the primary and not yet hardened on the secondary.
    pub unshipped_bytes: u64,
    /// Transactions committed on the primary and not yet hardened on the secondary.
    pub unshipped_transactions: u64,
}

/// Why the transport of a link is down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkFault {
    pub(crate) code: u32,
    pub(crate) message: String,
}

impl LinkFault {
    fn new(code: u32, message: impl Into<String>) -> Self {
        LinkFault {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn render(&self) -> String {
        format!("{}: {}", self.code, self.message)
    }
}

/// What a port call may still suffer after it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CallFate {
    /// The call runs but its response is lost.
    pub(crate) lose_response: bool,
}

/// The whole simulated world.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct World {
    /// Virtual now.
    pub now: Timestamp,
    /// Configuration.
    pub config: SimConfig,
    pub(crate) rng: SimRng,
    /// SQL Server.
    pub source: SourceState,
    /// The managed instance.
    pub instance: InstanceState,
    /// Running replications, by link.
    pub replications: BTreeMap<LinkName, Replication>,
    pub(crate) workload: Option<Workload>,
    /// What the workload did.
    pub workload_stats: WorkloadStats,
    /// Faults.
    pub faults: FaultPlan,
    /// The network.
    pub network: NetworkState,
    /// Notable events, in order.
    pub events: Vec<SimEvent>,
    /// Counters.
    pub stats: SimStats,
    /// When the next scheduled log backup on SQL Server runs.
    pub(crate) next_source_log_backup: Option<Timestamp>,
    /// Transaction ids, waiting acknowledgements and what was counted lost.
    #[serde(default)]
    pub commits: CommitBook,
    /// Application transactions held open, committed when they end.
    #[serde(default)]
    pub open_transactions: Vec<OpenTransaction>,
    /// When the system writer next commits on the linked databases' primaries.
    #[serde(default)]
    pub(crate) next_background_log: Option<Timestamp>,
    /// Recent readings of each link resource, for ARM's lagging view.
    #[serde(default)]
    pub(crate) arm_readings: BTreeMap<LinkName, VecDeque<ArmReading>>,
    /// Azure Arc's operations and faults (the Arc route to SQL Server).
    #[serde(default)]
    pub arc: ArcState,
}

/// An application transaction held open on one side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenTransaction {
    /// The side it runs on.
    pub side: Side,
    /// Database.
    pub database: DatabaseName,
    /// When it began.
    pub started: Timestamp,
    /// When it commits.
    pub ends_at: Timestamp,
}

pub(crate) fn fake_der(rng: &mut fastrand::Rng, len: usize) -> Vec<u8> {
    let body = len.saturating_sub(4);
    let mut v = vec![
        0x30,
        0x82,
        u8::try_from(body >> 8).unwrap_or(0xff),
        u8::try_from(body & 0xff).unwrap_or(0xff),
    ];
    v.extend((0..body).map(|_| rng.u8(..)));
    v
}

fn lsn(v: u128) -> Option<Lsn> {
    Lsn::new(v).ok()
}

impl World {
    /// A world built from a topology.
    pub fn new(topology: &SimTopology, config: SimConfig) -> World {
        let mut rng = fastrand::Rng::with_seed(config.seed);
        let now = config.start;
        let mut source_dbs = BTreeMap::new();
        for (i, d) in topology.source.databases.iter().enumerate() {
            let database_id = d
                .facts
                .as_ref()
                .map(|f| f.database_id)
                .unwrap_or(i32::try_from(i + 5).unwrap_or(i32::MAX));
            let tables: Vec<(String, u64)> =
                d.tables.iter().map(|t| (t.name.clone(), t.rows)).collect();
            let data = DbData::with_tables(&tables, rng.u64(30..90), rng.u64(..));
            source_dbs.insert(
                d.name.clone(),
                SourceDatabase {
                    facts: d.clone(),
                    data,
                    state: DbState::Online,
                    last_log_backup: None,
                    database_id,
                },
            );
        }
        let mut instance_dbs = BTreeMap::new();
        let mut backups = Vec::new();
        for d in &topology.instance.databases {
            let tables: Vec<(String, u64)> =
                d.tables.iter().map(|t| (t.name.clone(), t.rows)).collect();
            let data = DbData::with_tables(&tables, rng.u64(30..90), rng.u64(..));
            instance_dbs.insert(
                d.name.clone(),
                InstanceDatabase {
                    data,
                    state: DbState::Online,
                    link: None,
                    size_bytes: d.size_bytes(),
                    primary_since: Some(now),
                },
            );
            if let Some(finished) = d.last_full_backup {
                backups.push(BackupRecord {
                    database: d.name.clone(),
                    kind: BackupKind::Full,
                    finished,
                });
            }
        }
        let endpoint_certificate = fake_der(&mut rng, 742);
        let next_source_log_backup = config.source_log_backup_interval.map(|i| now.plus(i));
        let next_background_log = config.background_log_interval.map(|i| now.plus(i));
        World {
            now,
            source: SourceState {
                server: topology.source.server.clone(),
                version: topology.source.version,
                edition: topology.source.edition,
                host: topology.source.host.clone(),
                collation: topology.source.collation.clone(),
                hadr_enabled: topology.source.hadr_enabled,
                trace_flags: topology.source.trace_flags.iter().copied().collect(),
                cores: topology.source.cores,
                memory_mb: topology.source.memory_mb,
                max_server_memory_mb: topology.source.max_server_memory_mb,
                static_facts: topology.source.facts.clone(),
                master_key: topology.source.master_key,
                certificates: BTreeMap::new(),
                endpoint: None,
                root_ca_trust: false,
                ags: BTreeMap::new(),
                dags: BTreeMap::new(),
                databases: source_dbs,
            },
            instance: InstanceState {
                id: topology.instance.id.clone(),
                fqdn: topology.instance.fqdn.clone(),
                location: config.location.clone(),
                tier: topology.instance.tier,
                hardware: topology.instance.hardware.clone(),
                in_failover_group: topology.instance.in_failover_group,
                vcores: topology.instance.vcores,
                storage_gb: topology.instance.storage_gb,
                update_policy: topology.instance.update_policy,
                collation: topology.instance.collation.clone(),
                endpoint_certificate,
                trust_certificates: BTreeMap::new(),
                links: BTreeMap::new(),
                databases: instance_dbs,
                backups,
                backup_schedule: BTreeMap::new(),
                operations: BTreeMap::new(),
                settings: InstanceSettings::for_instance(&topology.instance.id),
            },
            rng: SimRng(rng),
            config,
            replications: BTreeMap::new(),
            workload: None,
            workload_stats: WorkloadStats::default(),
            faults: FaultPlan::new(),
            network: NetworkState::default(),
            events: Vec::new(),
            stats: SimStats::default(),
            next_source_log_backup,
            commits: CommitBook::default(),
            open_transactions: Vec::new(),
            next_background_log,
            arm_readings: BTreeMap::new(),
            arc: ArcState::default(),
        }
    }

    /// The world as JSON.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// A world from [`World::to_json`].
    pub fn from_json(json: &str) -> Result<World, serde_json::Error> {
        serde_json::from_str(json)
    }

    pub(crate) fn rng(&mut self) -> &mut fastrand::Rng {
        &mut self.rng.0
    }

    pub(crate) fn sample(&mut self, range: DurationRange) -> Duration {
        range.sample(&mut self.rng.0)
    }

    /// A GUID from the world's generator.
    pub(crate) fn guid(&mut self) -> String {
        let a = self.rng().u64(..);
        let b = self.rng().u64(..);
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0x0fff,
            0x8000 | ((b >> 48) & 0x3fff),
            b & 0xffff_ffff_ffff
        )
    }

    pub(crate) fn event(&mut self, kind: EventKind) {
        self.events.push(SimEvent { at: self.now, kind });
    }
}
