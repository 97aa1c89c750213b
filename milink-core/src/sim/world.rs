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
}

/// Something notable that happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// The two sides of a link connected.
    Connected {
        /// Link.
        link: LinkName,
    },
    /// They disconnected.
    Disconnected {
        /// Link.
        link: LinkName,
        /// Why.
        reason: String,
    },
    /// Seeding (re)started.
    SeedingStarted {
        /// Database.
        database: DatabaseName,
        /// Attempt, from 1.
        attempt: u32,
    },
    /// Seeding was interrupted and will restart from zero.
    SeedingInterrupted {
        /// Database.
        database: DatabaseName,
        /// Percent reached.
        percent: u8,
    },
    /// Seeding finished; the secondary joined.
    SeedingCompleted {
        /// Database.
        database: DatabaseName,
    },
    /// Seeding failed.
    SeedingFailed {
        /// Database.
        database: DatabaseName,
        /// SQL error number.
        code: u32,
    },
    /// A side's role in a link changed.
    RoleChanged {
        /// Link.
        link: LinkName,
        /// Side.
        side: Side,
        /// New role.
        role: ReplicaRole,
    },
    /// A log backup on SQL Server.
    LogBackup {
        /// Database.
        database: DatabaseName,
        /// The log was truncated up to this LSN.
        truncated_to: u128,
    },
    /// An automatic full backup on the managed instance.
    FullBackup {
        /// Database.
        database: DatabaseName,
    },
    /// Transactions were lost: the old primary held them and the surviving primary does not.
    TransactionsLost {
        /// Database.
        database: DatabaseName,
        /// Transactions.
        transactions: u64,
        /// Rows.
        rows: u64,
    },
    /// A demoted old primary undid its divergent transactions.
    TransactionsReverted {
        /// Database.
        database: DatabaseName,
        /// The side that reverted.
        side: Side,
        /// Transactions.
        transactions: u64,
    },
    /// The instance joined a link.
    LinkJoined {
        /// Link.
        link: LinkName,
    },
    /// A link was removed on one side.
    LinkRemoved {
        /// Link.
        link: LinkName,
        /// Side.
        side: Side,
    },
    /// A database on the instance became independent and writable.
    DatabaseIndependent {
        /// Database.
        database: DatabaseName,
    },
    /// A fault fired.
    Fault {
        /// What.
        description: String,
    },
    /// The network healed.
    NetworkHealed,
    /// A synchronous secondary was not waited for any more (`SESSION_TIMEOUT` passed, or the
    /// link left synchronous commit while commits waited): it falls back to SYNCHRONIZING and the
    /// waiting commits are acknowledged.
    ReplicaFellOutOfSync {
        /// Link.
        link: LinkName,
        /// Waiting commits acknowledged at that moment.
        released: u64,
    },
    /// SQL Server's replica was set to SECONDARY while the instance was secondary too: nothing
    /// accepts writes or ships until one side becomes primary.
    Fenced {
        /// Link.
        link: LinkName,
    },
}

/// An event at a virtual time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimEvent {
    /// When.
    pub at: Timestamp,
    /// What.
    pub kind: EventKind,
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

    // ----- time -------------------------------------------------------------------------------

    /// Runs the world up to `target`.
    pub fn advance_to(&mut self, target: Timestamp) {
        while self.now < target {
            let next = self.next_stop(target);
            self.step_to(next);
        }
    }

    fn is_active(&self) -> bool {
        if self.workload.as_ref().is_some_and(|w| w.running) {
            return true;
        }
        self.replications.values().any(|r| {
            r.databases.values().any(|d| match &d.phase {
                ReplicaPhase::WaitingToSeed | ReplicaPhase::Seeding(_) => true,
                ReplicaPhase::Synchronizing => !d.in_flight.is_empty(),
                ReplicaPhase::Failed { .. } => false,
            }) || !r.connected
        }) || self.has_unsent_log()
    }

    fn has_unsent_log(&self) -> bool {
        self.replications.iter().any(|(link, r)| {
            let Some(p) = self.primary_of(link) else {
                return false;
            };
            r.connected
                && r.databases.iter().any(|(db, d)| {
                    matches!(d.phase, ReplicaPhase::Synchronizing)
                        && self
                            .database(p, db)
                            .is_some_and(|data| data.end.lsn > d.sent_upto)
                })
        })
    }

    fn next_stop(&self, target: Timestamp) -> Timestamp {
        let now = self.now;
        let mut next = target;
        if self.is_active() {
            next = next.min(now.plus(ACTIVE_STEP));
        }
        let mut candidates: Vec<Option<Timestamp>> = vec![
            self.faults.next_time(now),
            self.network.partitioned_until,
            self.next_source_log_backup,
            self.next_background_log,
        ];
        candidates.extend(self.open_transactions.iter().map(|o| Some(o.ends_at)));
        candidates.extend(self.commit_deadlines().into_iter().map(Some));
        candidates.extend(
            self.replications
                .values()
                .flat_map(|r| r.databases.values())
                .map(|d| d.reverting_until),
        );
        candidates.extend(
            self.instance
                .operations
                .values()
                .filter(|o| o.outcome.is_none())
                .map(|o| Some(o.completes_at)),
        );
        candidates.extend(self.replications.values().map(|r| Some(r.connect_at)));
        for s in self.instance.backup_schedule.values() {
            candidates.push(s.next_full);
            candidates.push(s.next_log);
        }
        for t in candidates.into_iter().flatten() {
            if t > now {
                next = next.min(t);
            }
        }
        next.max(now.plus(Duration::from_millis(1))).min(target)
    }

    fn step_to(&mut self, t: Timestamp) {
        let t0 = self.now;
        // What ARM reports is read from what the world was (see `arm_view`).
        self.record_arm_readings();
        self.run_workload(t);
        self.now = t;
        self.finish_open_transactions(t);
        self.run_background_log(t);
        for f in self.faults.due_at(t) {
            self.apply_fault(&f);
        }
        if self.network.partitioned_until.is_some_and(|u| u <= t) {
            self.network.partitioned_until = None;
            self.event(EventKind::NetworkHealed);
        }
        if let Some(due) = self.next_source_log_backup
            && due <= t
        {
            let dbs: Vec<DatabaseName> = self.source.databases.keys().cloned().collect();
            for db in dbs {
                // Scheduled jobs skip databases that cannot take a log backup.
                let _ = self.source_log_backup(&db);
            }
            self.next_source_log_backup =
                self.config.source_log_backup_interval.map(|i| due.plus(i));
        }
        self.complete_due_operations();
        self.update_replications(t0, t);
        self.check_commit_timeouts();
        self.run_backups(t);
        self.compact_logs();
        self.prune_held();
    }

    /// Keeps memory bounded on long runs: log records that every copy has hardened are dropped
    /// once a log holds many of them.
    fn compact_logs(&mut self) {
        const KEEP: usize = 8192;
        for side in [Side::SqlServer, Side::ManagedInstance] {
            let dbs: Vec<DatabaseName> = match side {
                Side::SqlServer => self.source.databases.keys().cloned().collect(),
                Side::ManagedInstance => self.instance.databases.keys().cloned().collect(),
            };
            for db in dbs {
                if self.database(side, &db).is_none_or(|d| d.log.len() < KEEP) {
                    continue;
                }
                let needed = self
                    .replications
                    .values()
                    .filter_map(|r| r.databases.get(&db))
                    .map(|d| match &d.phase {
                        ReplicaPhase::Seeding(s) => s.start.lsn.min(d.common.lsn),
                        _ => d.common.lsn,
                    })
                    .min();
                if let Some(d) = self.database_mut(side, &db) {
                    let keep = needed.unwrap_or(d.end.lsn).min(d.end.lsn);
                    d.compact(keep);
                }
            }
        }
    }

    // ----- calls and faults -------------------------------------------------------------------

    /// Counts a port call, fires the faults it triggers and lets the call's latency pass.
    pub(crate) fn enter_call(
        &mut self,
        call: Call,
        latency: DurationRange,
    ) -> Result<CallFate, PortError> {
        let (world, hit) = self.faults.on_call_made(call);
        for f in &world {
            self.apply_fault(f);
        }
        let d = self.sample(latency);
        let target = self.now.plus(d);
        self.advance_to(target);
        let Some(fault) = hit else {
            return Ok(CallFate {
                lose_response: false,
            });
        };
        self.stats.faults_fired += 1;
        self.event(EventKind::Fault {
            description: format!("{} on {call:?}", fault.describe()),
        });
        match fault {
            Fault::Throttle { retry_after } => Err(errors::arm_throttled(retry_after)),
            Fault::ServerError { status } => Err(errors::arm_server_error(status)),
            Fault::Busy => Err(errors::arm_busy(self.config.arm.retry_after)),
            Fault::ConnectionDrop => Err(errors::connection_dropped()),
            Fault::Fail(e) => Err(e.into()),
            Fault::LostResponse => Ok(CallFate {
                lose_response: true,
            }),
            Fault::Partition { .. } | Fault::LogBackup { .. } => Ok(CallFate {
                lose_response: false,
            }),
        }
    }

    /// Applies a world fault now (call faults are armed for the next call they can hit).
    pub(crate) fn apply_fault(&mut self, fault: &Fault) {
        match fault {
            Fault::Partition { duration } => {
                let until = self.now.plus(*duration);
                self.network.partitioned_until = Some(
                    self.network
                        .partitioned_until
                        .map_or(until, |u| u.max(until)),
                );
                self.stats.faults_fired += 1;
                self.event(EventKind::Fault {
                    description: fault.describe(),
                });
            }
            Fault::LogBackup { database } => {
                self.stats.faults_fired += 1;
                self.event(EventKind::Fault {
                    description: fault.describe(),
                });
                // A backup the recovery model refuses is simply not taken.
                let _ = self.source_log_backup(database);
            }
            other => self.faults.armed.push(other.clone()),
        }
    }

    // ----- data access ------------------------------------------------------------------------

    /// `database`'s content on `side`, if it exists there.
    pub fn database(&self, side: Side, database: &DatabaseName) -> Option<&DbData> {
        match side {
            Side::SqlServer => self.source.databases.get(database).map(|d| &d.data),
            Side::ManagedInstance => self.instance.databases.get(database).map(|d| &d.data),
        }
    }

    pub(crate) fn database_mut(
        &mut self,
        side: Side,
        database: &DatabaseName,
    ) -> Option<&mut DbData> {
        match side {
            Side::SqlServer => self.source.databases.get_mut(database).map(|d| &mut d.data),
            Side::ManagedInstance => self
                .instance
                .databases
                .get_mut(database)
                .map(|d| &mut d.data),
        }
    }

    fn db_state(&self, side: Side, database: &DatabaseName) -> Option<DbState> {
        match side {
            Side::SqlServer => self.source.databases.get(database).map(|d| d.state),
            Side::ManagedInstance => self.instance.databases.get(database).map(|d| d.state),
        }
    }

    /// `side`'s role in `link`, if the link exists there.
    pub fn role(&self, side: Side, link: &LinkName) -> Option<ReplicaRole> {
        match side {
            Side::SqlServer => self.source.dags.get(link).map(|d| d.role),
            Side::ManagedInstance => self.instance.links.get(link).map(|l| l.role),
        }
    }

    /// The side that is the only primary of `link` (none in a split brain or without a link).
    pub fn primary_of(&self, link: &LinkName) -> Option<Side> {
        match (
            self.role(Side::SqlServer, link),
            self.role(Side::ManagedInstance, link),
        ) {
            (Some(ReplicaRole::Primary), Some(ReplicaRole::Secondary)) => Some(Side::SqlServer),
            (Some(ReplicaRole::Secondary), Some(ReplicaRole::Primary)) => {
                Some(Side::ManagedInstance)
            }
            _ => None,
        }
    }

    /// The availability mode `side` has configured for its own replica of `link`: SQL Server's
    /// replica in SQL Server's catalog, the instance's `replicationMode`.
    pub fn mode_of(&self, side: Side, link: &LinkName) -> Option<AvailabilityMode> {
        match side {
            Side::SqlServer => self.source.dags.get(link).map(|d| d.sql_mode),
            Side::ManagedInstance => self.instance.links.get(link).map(|l| l.replication_mode),
        }
    }

    /// Sets the mode of one replica of `link` in SQL Server's catalog alone (`replica` names the
    /// side whose AG it is), as `MODIFY AVAILABILITY GROUP ON` naming one AG would. The instance's
    /// own `replicationMode` is not changed.
    pub fn set_dag_replica_mode(
        &mut self,
        link: &LinkName,
        replica: Side,
        mode: AvailabilityMode,
    ) -> bool {
        let Some(d) = self.source.dags.get_mut(link) else {
            return false;
        };
        match replica {
            Side::SqlServer => d.sql_mode = mode,
            Side::ManagedInstance => d.mi_mode = mode,
        }
        true
    }

    /// Sets `side`'s role in `link` (records an event when it changes).
    pub(crate) fn set_role(&mut self, side: Side, link: &LinkName, role: ReplicaRole) {
        let changed = match side {
            Side::SqlServer => self.source.dags.get_mut(link).map(|d| {
                let c = d.role != role;
                d.role = role;
                c
            }),
            Side::ManagedInstance => self.instance.links.get_mut(link).map(|l| {
                let c = l.role != role;
                l.role = role;
                c
            }),
        };
        if changed == Some(true) {
            self.event(EventKind::RoleChanged {
                link: link.clone(),
                side,
                role,
            });
            if role != ReplicaRole::Primary {
                // The sessions of a demoted primary are ended: commits still waiting for the
                // secondary get an error.
                self.end_held_commits(side, link);
            }
            if side == Side::ManagedInstance {
                let now = self.now;
                for db in self.instance.databases.values_mut() {
                    if db.link.as_ref() == Some(link) {
                        db.primary_since = (role == ReplicaRole::Primary).then_some(now);
                    }
                }
            }
        }
    }

    /// An accepted ARM failover or setRole on `link` is still running.
    pub fn role_change_pending(&self, link: &LinkName) -> bool {
        self.instance.operations.values().any(|o| {
            o.outcome.is_none()
                && matches!(
                    &o.op,
                    InstanceOp::Failover { link: l, .. } | InstanceOp::SetRole { link: l, .. }
                        if l == link
                )
        })
    }

    /// The databases of SQL Server's availability group in `link` (empty without a DAG).
    pub fn source_ag_databases(&self, link: &LinkName) -> Vec<DatabaseName> {
        self.source
            .dags
            .get(link)
            .and_then(|d| self.source.ags.get(&d.sql_ag))
            .map(|ag| ag.databases.clone())
            .unwrap_or_default()
    }

    /// Databases of `link` (the link resource's list, else the SQL Server AG's).
    pub fn link_databases(&self, link: &LinkName) -> Vec<DatabaseName> {
        if let Some(r) = self.replications.get(link) {
            return r.databases.keys().cloned().collect();
        }
        if let Some(l) = self.instance.links.get(link) {
            return l.properties.databases.clone();
        }
        self.source
            .dags
            .get(link)
            .and_then(|d| self.source.ags.get(&d.sql_ag))
            .map(|ag| ag.databases.clone())
            .unwrap_or_default()
    }

    /// Whether the link's transport is up (network, endpoint, certificates and trust).
    pub(crate) fn transport(&self) -> Result<(), LinkFault> {
        if !self.config.network_reachable {
            return Err(LinkFault::new(
                errors::CONNECTION_FAILED,
                "the managed instance cannot reach the SQL Server mirroring endpoint (network \
                 path closed: open TCP 5022 and 11000-11999 in the NSG and firewalls)",
            ));
        }
        if self.network.partitioned_until.is_some() {
            return Err(LinkFault::new(
                errors::CONNECTION_FAILED,
                "connection to the partner replica lost (network partition)",
            ));
        }
        let Some(ep) = self.source.endpoint.as_ref().filter(|e| e.started) else {
            return Err(LinkFault::new(
                errors::CONNECTION_FAILED,
                "no DATABASE_MIRRORING endpoint is started on SQL Server",
            ));
        };
        let Some(cert) = ep
            .certificate
            .as_ref()
            .and_then(|c| self.source.certificates.get(c.as_str()))
        else {
            return Err(LinkFault::new(
                errors::CONNECTION_FAILED,
                "the mirroring endpoint does not use certificate authentication",
            ));
        };
        if cert.expiry.is_some_and(|e| e < self.now.date()) {
            return Err(LinkFault::new(
                errors::CONNECTION_FAILED,
                format!(
                    "connection handshake failed: the endpoint certificate '{}' expired; rotate it \
                     and upload the new public key to the managed instance",
                    cert.name
                ),
            ));
        }
        if !self
            .instance
            .trust_certificates
            .values()
            .any(|blob| blob == &cert.der)
        {
            return Err(LinkFault::new(
                errors::SQL_CERT_NOT_ON_INSTANCE,
                format!(
                    "SQL Server's certificate '{}' is not imported into the managed instance as a \
                     server trust certificate",
                    cert.name
                ),
            ));
        }
        let fqdn = self.instance.fqdn.as_str();
        match self.source.certificates.get(fqdn) {
            Some(c) if c.der == self.instance.endpoint_certificate => {}
            Some(_) => {
                return Err(LinkFault::new(
                    errors::INSTANCE_CERT_NOT_ON_SQL,
                    format!(
                        "the certificate '{fqdn}' on SQL Server is not the managed instance's \
                         current endpoint certificate"
                    ),
                ));
            }
            None => {
                return Err(LinkFault::new(
                    errors::INSTANCE_CERT_NOT_ON_SQL,
                    format!(
                        "the managed instance's endpoint certificate is not imported into SQL \
                         Server as '{fqdn}'"
                    ),
                ));
            }
        }
        if !self.source.root_ca_trust {
            return Err(LinkFault::new(
                errors::INSTANCE_CERT_NOT_ON_SQL,
                "SQL Server does not trust the Azure root CAs for *.database.windows.net \
                 (sp_certificate_add_issuer)",
            ));
        }
        Ok(())
    }

    // ----- writes and the workload ------------------------------------------------------------

    /// Whether an application can write to `database` on `side` now.
    pub fn writable(&self, side: Side, database: &DatabaseName) -> Result<(), PortError> {
        match self.db_state(side, database) {
            None => {
                return Err(errors::sql(
                    errors::DATABASE_NOT_FOUND,
                    format!("Database '{database}' does not exist."),
                ));
            }
            Some(DbState::Restoring) => {
                return Err(errors::sql(
                    errors::DATABASE_RESTORING,
                    format!(
                        "Database '{database}' cannot be opened. It is in the middle of a restore."
                    ),
                ));
            }
            Some(DbState::Online) => {}
        }
        match side {
            Side::SqlServer => {
                let in_secondary_dag = self
                    .source
                    .ags
                    .values()
                    .filter(|ag| ag.databases.contains(database))
                    .any(|ag| {
                        self.source
                            .dags
                            .values()
                            .any(|d| d.sql_ag == ag.name && d.role != ReplicaRole::Primary)
                    });
                if in_secondary_dag {
                    return Err(errors::sql(
                        errors::SECONDARY_NOT_ACCESSIBLE,
                        format!(
                            "The target database, '{database}', is participating in an \
                             availability group and is currently not accessible for queries."
                        ),
                    ));
                }
            }
            Side::ManagedInstance => {
                let secondary = self
                    .instance
                    .databases
                    .get(database)
                    .and_then(|d| d.link.as_ref())
                    .and_then(|l| self.instance.links.get(l))
                    .is_some_and(|l| l.role != ReplicaRole::Primary);
                if secondary {
                    return Err(errors::sql(
                        errors::DATABASE_READ_ONLY,
                        format!(
                            "Failed to update database \"{database}\" because the database is \
                             read-only."
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Commits one transaction on `side`'s copy of `database` at `at`: an application's with
    /// `rows` rows (at least one), or a system task's with none. Returns its id, commit LSN and
    /// where its acknowledgement stands; `None` when the copy does not exist (or, for the
    /// application, has no tables).
    fn commit(
        &mut self,
        side: Side,
        database: &DatabaseName,
        at: Timestamp,
        rows: u32,
        application: bool,
    ) -> Option<(u64, u128, CommitStatus)> {
        let ntables = self.database(side, database).map(|d| d.tables.len())?;
        let mut inserted = Vec::new();
        let bytes = if application {
            if ntables == 0 {
                return None;
            }
            for i in 0..rows.max(1) {
                let table = self.rng().usize(0..ntables);
                let payload = self.rng().u64(..);
                let base = self
                    .database(side, database)
                    .and_then(|d| d.tables.get(table))
                    .map_or(0, |t| t.rows);
                let id = base + u64::from(i);
                let hash = row_hash(table, id, payload);
                inserted.push((u16::try_from(table).unwrap_or(u16::MAX), hash));
            }
            300 + 450 * rows.max(1) + self.rng().u32(0..400)
        } else {
            self.rng().u32(600..2400)
        };
        let nrows = u32::try_from(inserted.len()).unwrap_or(u32::MAX);
        let id = self.next_txn_id();
        let data = self.database_mut(side, database)?;
        let txn = data.next_txn(id, application, at, inserted, bytes);
        let lsn = txn.lsn;
        data.apply(txn);
        let status = if application {
            self.register_app_commit(side, database, id, nrows, at)
        } else {
            CommitStatus::Acknowledged
        };
        Some((id, lsn, status))
    }

    /// Commits one application transaction of `rows` rows on `side` now, as an application
    /// would. With the link in synchronous commit and its secondary SYNCHRONIZED the
    /// acknowledgement waits for the secondary ([`World::commit_status`] follows it).
    pub fn commit_transaction(
        &mut self,
        side: Side,
        database: &DatabaseName,
        rows: u32,
    ) -> Result<Committed, PortError> {
        self.writable(side, database)?;
        let now = self.now;
        let Some((id, lsn, status)) = self.commit(side, database, now, rows, true) else {
            return Err(errors::sql(
                errors::DATABASE_NOT_FOUND,
                format!("Database '{database}' has no table to write to."),
            ));
        };
        let lsn = Lsn::new(lsn).map_err(|e| PortError::permanent("sim", e.to_string()))?;
        Ok(Committed { id, lsn, status })
    }

    /// Commits one transaction of `rows` rows on `side` now.
    pub(crate) fn write(
        &mut self,
        side: Side,
        database: &DatabaseName,
        rows: u32,
    ) -> Result<Lsn, PortError> {
        self.commit_transaction(side, database, rows).map(|c| c.lsn)
    }

    /// The application begins a transaction on `side`'s copy of `database` now and holds it open
    /// for `duration`; then it commits one row (if the copy still accepts writes). While it is
    /// open the application's session shows it ([`World::client_sessions`]).
    pub fn hold_open_transaction(
        &mut self,
        side: Side,
        database: &DatabaseName,
        duration: Duration,
    ) -> Result<(), PortError> {
        self.writable(side, database)?;
        self.open_transactions.push(OpenTransaction {
            side,
            database: database.clone(),
            started: self.now,
            ends_at: self.now.plus(duration),
        });
        Ok(())
    }

    /// Commits the open transactions whose time has come (by `t`).
    fn finish_open_transactions(&mut self, t: Timestamp) {
        let mut due: Vec<OpenTransaction> = Vec::new();
        self.open_transactions.retain(|o| {
            if o.ends_at <= t {
                due.push(o.clone());
                false
            } else {
                true
            }
        });
        due.sort_by_key(|o| o.ends_at);
        for o in due {
            match self.writable(o.side, &o.database) {
                Ok(()) => {
                    self.commit(o.side, &o.database, o.ends_at, 1, true);
                }
                Err(e) => {
                    self.workload_stats.refused += 1;
                    self.workload_stats.last_refusal = Some(e.to_string());
                }
            }
        }
    }

    /// The system writer (index maintenance, ghost cleanup): at each interval, one log record
    /// without rows on the primary's copy of every database of every replicating link.
    fn run_background_log(&mut self, t: Timestamp) {
        while let Some(due) = self.next_background_log.filter(|d| *d <= t) {
            let targets: Vec<(Side, DatabaseName)> = self
                .replications
                .iter()
                .filter_map(|(link, r)| self.primary_of(link).map(|p| (p, r)))
                .flat_map(|(p, r)| r.databases.keys().map(move |db| (p, db.clone())))
                .collect();
            for (side, db) in targets {
                if self.db_state(side, &db) == Some(DbState::Online) {
                    self.commit(side, &db, due, 0, false);
                }
            }
            self.next_background_log = match self.config.background_log_interval {
                Some(i) if !i.is_zero() => Some(due.plus(i)),
                _ => None,
            };
        }
    }

    fn next_interarrival(&mut self, tps: f64) -> Duration {
        let tps = if tps.is_finite() && tps > 0.0 {
            tps
        } else {
            1.0
        };
        let u = self.rng().f64();
        let secs = -(1.0 - u).ln() / tps;
        Duration::from_millis((secs * 1000.0).clamp(1.0, 3_600_000.0) as u64)
    }

    pub(crate) fn start_workload(&mut self, spec: WorkloadSpec) {
        let gap = self.next_interarrival(spec.transactions_per_second);
        self.workload = Some(Workload {
            next_commit: self.now.plus(gap),
            spec,
            running: true,
            until: None,
        });
    }

    /// Makes the running workload stop by itself at `at` (virtual time), as an application
    /// that an operator shuts down while a session call is under way.
    pub(crate) fn stop_workload_at(&mut self, at: Timestamp) {
        if let Some(w) = self.workload.as_mut() {
            w.until = Some(at);
        }
    }

    pub(crate) fn stop_workload(&mut self) {
        if let Some(w) = self.workload.as_mut() {
            w.running = false;
        }
    }

    pub(crate) fn redirect_workload(&mut self, target: Side) {
        if let Some(w) = self.workload.as_mut() {
            w.spec.target = target;
        }
    }

    /// What `sys.dm_exec_sessions` shows of the simulated application on `side`: a client
    /// session per database of `databases` it uses there: the one the workload runs against
    /// (idle between commits), and each one it holds a transaction open in (with the count and
    /// start of its open transactions). None when it uses none of them.
    pub fn client_sessions(&self, side: Side, databases: &[DatabaseName]) -> WorkloadActivity {
        let workload_db = self
            .workload
            .as_ref()
            .filter(|w| w.running && w.spec.target == side)
            .map(|w| &w.spec.database);
        // The workload's session keeps its id; a transaction held open in another database has
        // a session of its own.
        let others: BTreeSet<&DatabaseName> = self
            .open_transactions
            .iter()
            .filter(|o| o.side == side && Some(&o.database) != workload_db)
            .map(|o| &o.database)
            .collect();
        let used = workload_db
            .map(|db| (db, APP_SESSION_ID))
            .into_iter()
            .chain(others.into_iter().zip(APP_SESSION_ID.saturating_add(1)..));
        let mut sessions: Vec<ClientSession> = used
            .filter(|(db, _)| databases.contains(db))
            .map(|(db, session_id)| {
                let open: Vec<&OpenTransaction> = self
                    .open_transactions
                    .iter()
                    .filter(|o| o.side == side && &o.database == db)
                    .collect();
                ClientSession {
                    session_id,
                    database: db.clone(),
                    login: APP_LOGIN.to_owned(),
                    host: Some(APP_HOST.to_owned()),
                    program: Some(APP_PROGRAM.to_owned()),
                    status: "sleeping".to_owned(),
                    open_transactions: u32::try_from(open.len()).unwrap_or(u32::MAX),
                    oldest_transaction_start: open.iter().map(|o| o.started).min(),
                }
            })
            .collect();
        sessions.sort_by(|a, b| (&a.database, a.session_id).cmp(&(&b.database, b.session_id)));
        WorkloadActivity { sessions }
    }

    fn run_workload(&mut self, until: Timestamp) {
        loop {
            let Some(w) = self.workload.as_ref().filter(|w| w.running) else {
                return;
            };
            if w.until.is_some_and(|u| w.next_commit >= u) {
                self.stop_workload();
                return;
            }
            if w.next_commit > until {
                return;
            }
            let at = w.next_commit;
            let spec = w.spec.clone();
            match self.writable(spec.target, &spec.database) {
                Ok(()) => {
                    let max = spec.max_rows_per_transaction.max(1);
                    let rows = self.rng().u32(1..=max);
                    self.commit(spec.target, &spec.database, at, rows, true);
                    self.workload_stats.committed += 1;
                    self.workload_stats.rows += u64::from(rows);
                }
                Err(e) => {
                    self.workload_stats.refused += 1;
                    self.workload_stats.last_refusal = Some(e.to_string());
                }
            }
            let gap = self.next_interarrival(spec.transactions_per_second);
            if let Some(w) = self.workload.as_mut() {
                w.next_commit = at.plus(gap);
            }
        }
    }

    /// A copy of `database`'s tables on `side`.
    pub fn snapshot(&self, side: Side, database: &DatabaseName) -> Option<DbSnapshot> {
        let d = self.database(side, database)?;
        if self.db_state(side, database) == Some(DbState::Restoring) && d.tables.is_empty() {
            return None;
        }
        Some(DbSnapshot {
            side,
            database: database.clone(),
            tables: d.tables.clone(),
            end_lsn: d.end.lsn,
        })
    }

    // ----- log backups and truncation ---------------------------------------------------------

    /// The lowest LSN the log of `database` on `side` must keep for replication.
    fn truncation_hold(&self, side: Side, database: &DatabaseName) -> Option<u128> {
        let mut hold: Option<u128> = None;
        let mut keep = |l: u128| hold = Some(hold.map_or(l, |h| h.min(l)));
        for (link, r) in &self.replications {
            let Some(d) = r.databases.get(database) else {
                continue;
            };
            if self.role(side, link) != Some(ReplicaRole::Primary) {
                continue;
            }
            match &d.phase {
                ReplicaPhase::Synchronizing => keep(d.common.lsn),
                ReplicaPhase::Seeding(s)
                    if side == Side::SqlServer
                        && self
                            .source
                            .trace_flags
                            .contains(&TF_HOLD_LOG_DURING_SEEDING) =>
                {
                    keep(s.start.lsn)
                }
                _ => {}
            }
        }
        hold
    }

    /// `BACKUP LOG` of `database` on SQL Server: truncates the log up to what replication
    /// still needs.
    pub(crate) fn source_log_backup(&mut self, database: &DatabaseName) -> Result<(), PortError> {
        let Some(db) = self.source.databases.get(database) else {
            return Err(errors::sql(
                errors::DATABASE_NOT_FOUND,
                format!("Database '{database}' does not exist."),
            ));
        };
        if db.facts.recovery_model == RecoveryModel::Simple {
            return Err(errors::sql(
                errors::LOG_BACKUP_SIMPLE,
                format!(
                    "The statement BACKUP LOG is not allowed while the recovery model is SIMPLE \
                     ('{database}')."
                ),
            ));
        }
        if db.facts.last_full_backup.is_none() {
            return Err(errors::sql(
                errors::NO_CURRENT_BACKUP,
                format!(
                    "BACKUP LOG cannot be performed because there is no current database backup \
                     of '{database}'."
                ),
            ));
        }
        let end = db.data.end.lsn;
        let to = self
            .truncation_hold(Side::SqlServer, database)
            .map_or(end, |h| h.min(end));
        let now = self.now;
        if let Some(d) = self.source.databases.get_mut(database) {
            d.data.truncate_log(to);
            d.last_log_backup = Some(now);
        }
        self.event(EventKind::LogBackup {
            database: database.clone(),
            truncated_to: to,
        });
        Ok(())
    }

    // ----- replication ------------------------------------------------------------------------

    /// Starts replicating `link` (the instance joined): the first connection comes after the
    /// configured delay.
    pub(crate) fn create_replication(&mut self, link: &LinkName, databases: &[DatabaseName]) {
        let delay = self.sample(self.config.connect_delay);
        let now = self.now;
        let dbs = databases
            .iter()
            .map(|db| {
                let point = LogPoint {
                    lsn: 0,
                    offset: 0,
                    committed: None,
                };
                (
                    db.clone(),
                    DbReplication {
                        phase: ReplicaPhase::WaitingToSeed,
                        common: point,
                        sent_upto: 0,
                        synchronized: false,
                        seeding_attempts: 0,
                        reverting_until: None,
                        link_free_at: now,
                        in_flight: VecDeque::new(),
                    },
                )
            })
            .collect();
        self.replications.insert(
            link.clone(),
            Replication {
                link: link.clone(),
                created: now,
                connect_at: now.plus(delay),
                connected: false,
                last_error: None,
                disconnected_at: None,
                databases: dbs,
            },
        );
        for db in databases {
            self.commits.orphaned.remove(db);
        }
        self.event(EventKind::LinkJoined { link: link.clone() });
    }

    /// Stops replicating `link` (either side removed it).
    pub(crate) fn remove_replication(&mut self, link: &LinkName) {
        self.replications.remove(link);
    }

    /// Every database of `link` is joined, connected, in synchronous commit (both replicas of
    /// SQL Server's DAG and the instance's `replicationMode`) and SYNCHRONIZED.
    pub fn is_synchronized(&self, link: &LinkName) -> bool {
        let Some(r) = self.replications.get(link) else {
            return false;
        };
        if self.primary_of(link).is_none() {
            return false;
        }
        r.connected
            && self.effective_mode(link) == Some(AvailabilityMode::SynchronousCommit)
            && !r.databases.is_empty()
            && r.databases
                .values()
                .all(|d| matches!(d.phase, ReplicaPhase::Synchronizing) && d.synchronized)
    }

    /// Exact lag of `database` in `link`.
    pub fn lag(&self, link: &LinkName, database: &DatabaseName) -> Option<LagInfo> {
        let r = self.replications.get(link)?.databases.get(database)?;
        if !matches!(r.phase, ReplicaPhase::Synchronizing) {
            return None;
        }
        let p = self.primary_of(link)?;
        let pd = self.database(p, database)?;
        let sd = self.database(p.other(), database)?;
        let behind: Vec<&Txn> = pd.log_after(sd.end.lsn).collect();
        // How long the oldest commit the secondary lacks has been waiting.
        let lag = behind
            .first()
            .map_or(Duration::ZERO, |t| self.now.since(t.committed));
        Some(LagInfo {
            primary_lsn: pd.end.lsn,
            secondary_lsn: sd.end.lsn,
            lag,
            unshipped_bytes: behind.iter().map(|t| u64::from(t.bytes)).sum(),
            unshipped_transactions: behind.len() as u64,
        })
    }

    fn update_replications(&mut self, t0: Timestamp, t1: Timestamp) {
        let links: Vec<LinkName> = self.replications.keys().cloned().collect();
        let seeding_now = self
            .replications
            .values()
            .flat_map(|r| r.databases.values())
            .filter(|d| matches!(d.phase, ReplicaPhase::Seeding(_)))
            .count()
            .max(1);
        for link in links {
            let transport = self.transport();
            let split_brain = self.role(Side::SqlServer, &link) == Some(ReplicaRole::Primary)
                && self.role(Side::ManagedInstance, &link) == Some(ReplicaRole::Primary);
            let Some(r) = self.replications.get(&link) else {
                continue;
            };
            let due = t1 >= r.connect_at;
            let up = due && transport.is_ok() && !split_brain;
            let was = r.connected;
            let reason = match (&transport, split_brain) {
                (Err(f), _) => Some(f.render()),
                (Ok(()), true) => Some(
                    "both replicas are PRIMARY (split brain); demote one with SET (ROLE = \
                     SECONDARY)"
                        .to_string(),
                ),
                (Ok(()), false) => None,
            };
            if let Some(r) = self.replications.get_mut(&link) {
                r.connected = up;
                r.last_error = if due { reason.clone() } else { None };
            }
            if was && !up {
                self.on_disconnect(&link, reason.unwrap_or_default());
            } else if !was && up {
                self.on_connect(&link, t1);
            }
            if !up {
                continue;
            }
            let Some(p) = self.primary_of(&link) else {
                continue;
            };
            let dbs: Vec<DatabaseName> = self
                .replications
                .get(&link)
                .map(|r| r.databases.keys().cloned().collect())
                .unwrap_or_default();
            for db in dbs {
                self.replicate(&link, &db, p, t0, t1, seeding_now);
            }
        }
    }

    fn on_connect(&mut self, link: &LinkName, t: Timestamp) {
        if let Some(r) = self.replications.get_mut(link) {
            r.disconnected_at = None;
            for d in r.databases.values_mut() {
                d.link_free_at = t;
            }
        }
        self.event(EventKind::Connected { link: link.clone() });
    }

    fn on_disconnect(&mut self, link: &LinkName, reason: String) {
        let mut interrupted = Vec::new();
        let now = self.now;
        if let Some(r) = self.replications.get_mut(link) {
            r.disconnected_at = Some(now);
            for (db, d) in r.databases.iter_mut() {
                d.in_flight.clear();
                d.sent_upto = d.common.lsn;
                d.reverting_until = None;
                // A synchronous secondary stays SYNCHRONIZED for the primary (commits keep
                // waiting for it) until `SESSION_TIMEOUT` passes without an answer.
                if let ReplicaPhase::Seeding(s) = &d.phase {
                    interrupted.push((db.clone(), s.percent()));
                    d.phase = ReplicaPhase::WaitingToSeed;
                }
            }
        }
        self.event(EventKind::Disconnected {
            link: link.clone(),
            reason,
        });
        for (database, percent) in interrupted {
            self.event(EventKind::SeedingInterrupted { database, percent });
        }
    }

    fn replicate(
        &mut self,
        link: &LinkName,
        db: &DatabaseName,
        primary: Side,
        t0: Timestamp,
        t1: Timestamp,
        seeding_now: usize,
    ) {
        let Some(mut r) = self
            .replications
            .get_mut(link)
            .and_then(|x| x.databases.remove(db))
        else {
            return;
        };
        let mut fired = Vec::new();
        match r.phase.clone() {
            ReplicaPhase::WaitingToSeed => self.start_seeding(link, db, primary, &mut r, t1),
            ReplicaPhase::Seeding(s) => {
                fired = self.progress_seeding(link, db, primary, &mut r, s, t0, t1, seeding_now);
            }
            ReplicaPhase::Synchronizing => self.ship(link, db, primary, &mut r, t1),
            ReplicaPhase::Failed { .. } => {}
        }
        if let Some(x) = self.replications.get_mut(link) {
            x.databases.insert(db.clone(), r);
        }
        // Faults triggered by seeding progress see the replication as it is now.
        for f in fired {
            if f.is_world_fault() {
                self.apply_fault(&f);
            } else {
                self.faults.armed.push(f);
            }
        }
    }

    fn start_seeding(
        &mut self,
        link: &LinkName,
        db: &DatabaseName,
        primary: Side,
        r: &mut DbReplication,
        t: Timestamp,
    ) {
        let Some(image) = self.database(primary, db).map(DbData::image) else {
            return;
        };
        let size = match primary {
            Side::SqlServer => self
                .source
                .databases
                .get(db)
                .map_or(0, |d| d.facts.size_bytes()),
            Side::ManagedInstance => self.instance.databases.get(db).map_or(0, |d| d.size_bytes),
        };
        let secondary = primary.other();
        let empty = DbData::restoring(&image);
        match secondary {
            Side::ManagedInstance => {
                let e = self
                    .instance
                    .databases
                    .entry(db.clone())
                    .or_insert_with(|| InstanceDatabase {
                        data: empty.clone(),
                        state: DbState::Restoring,
                        link: Some(link.clone()),
                        size_bytes: size,
                        primary_since: None,
                    });
                e.state = DbState::Restoring;
                e.link = Some(link.clone());
                e.data = empty;
            }
            Side::SqlServer => {
                let database_id = self
                    .source
                    .databases
                    .values()
                    .map(|d| d.database_id)
                    .max()
                    .unwrap_or(4)
                    .saturating_add(1);
                let facts = DatabaseTopology {
                    tables: Vec::new(),
                    last_full_backup: None,
                    ..DatabaseTopology::ready(db.clone(), size / (1024 * 1024), t)
                };
                let e = self
                    .source
                    .databases
                    .entry(db.clone())
                    .or_insert_with(|| SourceDatabase {
                        facts,
                        data: empty.clone(),
                        state: DbState::Restoring,
                        last_log_backup: None,
                        database_id,
                    });
                e.state = DbState::Restoring;
                e.data = empty;
            }
        }
        r.seeding_attempts += 1;
        r.phase = ReplicaPhase::Seeding(Seeding {
            started: t,
            bytes_total: size,
            bytes_done: 0,
            start: image.end,
            attempt: r.seeding_attempts,
            image: Box::new(image),
        });
        self.event(EventKind::SeedingStarted {
            database: db.clone(),
            attempt: r.seeding_attempts,
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn progress_seeding(
        &mut self,
        link: &LinkName,
        db: &DatabaseName,
        primary: Side,
        r: &mut DbReplication,
        mut s: Seeding,
        t0: Timestamp,
        t1: Timestamp,
        seeding_now: usize,
    ) -> Vec<Fault> {
        let from = t0.max(s.started);
        let dt_ms = u128::from(t1.as_millis().saturating_sub(from.as_millis()));
        let rate = u128::from(self.config.seeding_bytes_per_sec) / seeding_now as u128;
        let add = u64::try_from(rate * dt_ms / 1000).unwrap_or(u64::MAX);
        s.bytes_done = s.bytes_done.saturating_add(add).min(s.bytes_total);
        let fired = self.faults.seeding_reached(db, s.percent());
        if !fired.is_empty() || s.bytes_done < s.bytes_total || self.transport().is_err() {
            r.phase = ReplicaPhase::Seeding(s);
            return fired;
        }
        // The backup is restored; the secondary now needs the log from the backup's start.
        let truncated = self
            .database(primary, db)
            .is_some_and(|d| d.truncated_to > s.start.lsn);
        if truncated {
            let message = format!(
                "The remote copy of database '{db}' has not been rolled forward to a point in \
                 time that is encompassed in the local copy of the database log (a log backup on \
                 the primary truncated the log during seeding; 1408 may also appear). Delete the \
                 link and drop the distributed availability group, then create them again; do \
                 not take log backups during seeding, or enable trace flag 12381."
            );
            r.phase = ReplicaPhase::Failed {
                code: errors::NOT_ROLLED_FORWARD,
                message,
            };
            self.event(EventKind::SeedingFailed {
                database: db.clone(),
                code: errors::NOT_ROLLED_FORWARD,
            });
            return Vec::new();
        }
        let secondary = primary.other();
        let start = s.start;
        let image = *s.image;
        match secondary {
            Side::ManagedInstance => {
                if let Some(d) = self.instance.databases.get_mut(db) {
                    d.data = image;
                    d.state = DbState::Online;
                    d.link = Some(link.clone());
                }
                if self.config.backups_while_secondary {
                    self.schedule_first_full(db);
                }
            }
            Side::SqlServer => {
                if let Some(d) = self.source.databases.get_mut(db) {
                    d.data = image;
                    d.state = DbState::Online;
                    d.facts.last_full_backup = None;
                }
            }
        }
        r.phase = ReplicaPhase::Synchronizing;
        r.common = start;
        r.sent_upto = start.lsn;
        r.link_free_at = t1;
        r.in_flight.clear();
        self.event(EventKind::SeedingCompleted {
            database: db.clone(),
        });
        Vec::new()
    }

    fn ship(
        &mut self,
        link: &LinkName,
        db: &DatabaseName,
        primary: Side,
        r: &mut DbReplication,
        t1: Timestamp,
    ) {
        let secondary = primary.other();
        // A demoted old primary first undoes what the new primary never had: it is REVERTING
        // for a while and keeps its end of log until the tail is undone.
        let divergent = self
            .database(secondary, db)
            .is_some_and(|d| d.end.lsn > r.common.lsn);
        if divergent {
            let until = match r.reverting_until {
                Some(until) => until,
                None => {
                    r.sent_upto = r.common.lsn;
                    r.in_flight.clear();
                    t1.plus(self.config.revert_duration)
                }
            };
            if until > t1 {
                r.reverting_until = Some(until);
                return;
            }
        }
        r.reverting_until = None;
        let reverted = match self.database_mut(secondary, db) {
            Some(d) if d.end.lsn > r.common.lsn => d.revert_to(r.common),
            _ => 0,
        };
        if reverted > 0 {
            *self
                .stats
                .reverted_transactions
                .entry(db.clone())
                .or_insert(0) += reverted;
            self.event(EventKind::TransactionsReverted {
                database: db.clone(),
                side: secondary,
                transactions: reverted,
            });
            r.sent_upto = r.common.lsn;
            r.in_flight.clear();
        }
        let bandwidth = u128::from(self.config.link_bandwidth_bytes_per_sec.max(1));
        let latency = self.config.link_latency;
        if let Some(p) = self.database(primary, db) {
            for txn in p.log_after(r.sent_upto) {
                let start = txn.committed.max(r.link_free_at);
                if start > t1 {
                    break;
                }
                let ms = (u128::from(txn.bytes) * 1000).div_ceil(bandwidth);
                let sent_at = start.plus(Duration::from_millis(u64::try_from(ms).unwrap_or(0)));
                r.link_free_at = sent_at;
                r.sent_upto = txn.lsn;
                r.in_flight.push_back((sent_at.plus(latency), txn.clone()));
            }
        }
        let mut hardened = Vec::new();
        while r.in_flight.front().is_some_and(|(at, _)| *at <= t1) {
            let Some((_, txn)) = r.in_flight.pop_front() else {
                break;
            };
            if let Some(s) = self.database_mut(secondary, db) {
                hardened.push(txn.id);
                s.apply(txn);
                r.common = s.end;
            }
        }
        for id in hardened {
            self.harden(id);
        }
        let sync = self.effective_mode(link) == Some(AvailabilityMode::SynchronousCommit);
        let caught_up = r.in_flight.is_empty()
            && self.database(primary, db).map(|d| d.end.lsn)
                == self.database(secondary, db).map(|d| d.end.lsn);
        r.synchronized = sync && (r.synchronized || caught_up);
    }

    /// T-SQL planned failover (`ALTER AVAILABILITY GROUP … FAILOVER`): only from a SYNCHRONIZED
    /// secondary in synchronous commit; what is still in flight reaches it (the primary waits for
    /// its synchronized secondary), then the roles swap. Nothing is lost.
    pub(crate) fn planned_failover(&mut self, link: &LinkName) -> Result<Side, String> {
        let Some(p) = self.primary_of(link) else {
            return Err("the link has no single primary replica".to_string());
        };
        if !self.is_synchronized(link) {
            return Err(
                "the secondary is not SYNCHRONIZED in synchronous commit (switch both sides to \
                 SYNCHRONOUS_COMMIT and wait for the secondary to catch up)"
                    .to_string(),
            );
        }
        let s = p.other();
        for db in self.link_databases(link) {
            let tail: Vec<Txn> = match (self.database(p, &db), self.database(s, &db)) {
                (Some(pd), Some(sd)) => pd.log_after(sd.end.lsn).cloned().collect(),
                _ => Vec::new(),
            };
            let ids: Vec<u64> = tail.iter().map(|t| t.id).collect();
            if let Some(sd) = self.database_mut(s, &db) {
                for txn in tail {
                    sd.apply(txn);
                }
            }
            for id in ids {
                self.harden(id);
            }
            let end = self.database(s, &db).map(|d| d.end);
            if let Some(r) = self
                .replications
                .get_mut(link)
                .and_then(|r| r.databases.get_mut(&db))
                && let Some(end) = end
            {
                r.in_flight.clear();
                r.common = end;
                r.sent_upto = end.lsn;
            }
        }
        self.swap_roles(link, p);
        Ok(s)
    }

    /// ARM planned failover (`failover` with `Planned`) as it completes: the roles swap with what
    /// the secondary has hardened. The old primary's unshipped tail (not yet sent, or in flight)
    /// is discarded and counted lost; the old primary reverts it when it rejoins as secondary.
    pub(crate) fn arm_planned_failover(&mut self, link: &LinkName) -> Result<Side, String> {
        let Some(p) = self.primary_of(link) else {
            return Err("the link has no single primary replica".to_string());
        };
        if !self.replications.get(link).is_some_and(|r| r.connected) {
            return Err("the replicas are not connected".to_string());
        }
        let s = p.other();
        for db in self.link_databases(link) {
            let ends = (
                self.database(p, &db).map(|d| d.end),
                self.database(s, &db).map(|d| d.end),
            );
            if let (Some(old_end), Some(end)) = ends
                && let Some(r) = self
                    .replications
                    .get_mut(link)
                    .and_then(|r| r.databases.get_mut(&db))
            {
                r.in_flight.clear();
                r.common = end;
                r.sent_upto = end.lsn;
                r.synchronized = r.synchronized && old_end.lsn == end.lsn;
            }
        }
        self.swap_roles(link, p);
        Ok(s)
    }

    /// The planned role change itself: `old` becomes secondary, the other side primary; what
    /// the old primary holds beyond the new primary is counted lost.
    fn swap_roles(&mut self, link: &LinkName, old: Side) {
        let new = old.other();
        self.set_role(old, link, ReplicaRole::Secondary);
        self.set_role(new, link, ReplicaRole::Primary);
        for db in self.link_databases(link) {
            self.count_loss(&db, old, new);
            if new == Side::ManagedInstance {
                self.schedule_first_full(&db);
            }
        }
    }

    /// Forced failover: `new_primary` becomes primary with what it has; what the other side
    /// holds beyond it (the old primary's unshipped tail, or a fenced primary's) is lost.
    pub(crate) fn force_primary(&mut self, link: &LinkName, new_primary: Side) {
        let old = new_primary.other();
        let old_was_primary = self.role(old, link) == Some(ReplicaRole::Primary);
        self.set_role(new_primary, link, ReplicaRole::Primary);
        if old_was_primary
            && self.config.forced_failover_demotes_old_primary
            && self.transport().is_ok()
        {
            self.set_role(old, link, ReplicaRole::Secondary);
        }
        for db in self.link_databases(link) {
            let Some(new_end) = self.database(new_primary, &db).map(|d| d.end) else {
                continue;
            };
            self.count_loss(&db, old, new_primary);
            if let Some(r) = self
                .replications
                .get_mut(link)
                .and_then(|r| r.databases.get_mut(&db))
            {
                // The logs part where they last agreed: the new primary's end, or, when the new
                // primary is ahead of the other copy (a fenced old primary), the other copy's.
                if r.common.lsn > new_end.lsn {
                    r.common = new_end;
                }
                r.sent_upto = r.common.lsn;
                r.in_flight.clear();
                r.synchronized = false;
                r.reverting_until = None;
            }
            if new_primary == Side::ManagedInstance {
                self.schedule_first_full(&db);
            }
        }
    }

    /// `SET (ROLE = SECONDARY)` on SQL Server. With the instance primary it ends a split brain:
    /// SQL Server's divergent tail is lost (counted here; it reverts when it rejoins). With the
    /// instance secondary it fences the link: no side accepts writes or ships, waiting commits
    /// end with an error, and nothing is lost (the data stays).
    pub(crate) fn demote_sql_server(&mut self, link: &LinkName) {
        let was_primary = self.role(Side::SqlServer, link) == Some(ReplicaRole::Primary);
        self.set_role(Side::SqlServer, link, ReplicaRole::Secondary);
        if !was_primary {
            return;
        }
        match self.role(Side::ManagedInstance, link) {
            Some(ReplicaRole::Primary) => {
                for db in self.link_databases(link) {
                    self.count_loss(&db, Side::SqlServer, Side::ManagedInstance);
                }
            }
            Some(ReplicaRole::Secondary) => self.event(EventKind::Fenced { link: link.clone() }),
            Some(ReplicaRole::Resolving) | None => {}
        }
    }

    /// Whether the secondary copy of every database of `link` on `side` can start as primary
    /// (not seeding, not restoring, not REVERTING).
    pub(crate) fn can_become_primary(&self, link: &LinkName, side: Side) -> bool {
        let dbs = self.link_databases(link);
        let secondary = self.role(side, link) != Some(ReplicaRole::Primary);
        !dbs.is_empty()
            && dbs.iter().all(|db| {
                self.db_state(side, db) == Some(DbState::Online)
                    && self
                        .replications
                        .get(link)
                        .and_then(|r| r.databases.get(db))
                        .is_none_or(|d| {
                            matches!(d.phase, ReplicaPhase::Synchronizing)
                                && !(secondary && d.reverting_until.is_some())
                        })
            })
    }

    // ----- the instance's automatic backups ---------------------------------------------------

    /// Schedules the instance's next full backup of `database` within the first-backup delay.
    pub(crate) fn schedule_first_full(&mut self, database: &DatabaseName) {
        let at = self
            .now
            .plus(self.sample(self.config.first_full_backup_delay));
        let now = self.now;
        let s = self
            .instance
            .backup_schedule
            .entry(database.clone())
            .or_default();
        s.next_full = Some(match s.next_full {
            Some(t) if t > now => t.min(at),
            _ => at,
        });
    }

    fn run_backups(&mut self, t: Timestamp) {
        let dbs: Vec<DatabaseName> = self.instance.backup_schedule.keys().cloned().collect();
        for db in dbs {
            let Some(d) = self.instance.databases.get(&db) else {
                self.instance.backup_schedule.remove(&db);
                continue;
            };
            let primary = d.link.is_none()
                || d.link
                    .as_ref()
                    .and_then(|l| self.instance.links.get(l))
                    .is_none_or(|l| l.role == ReplicaRole::Primary);
            let eligible =
                d.state == DbState::Online && (primary || self.config.backups_while_secondary);
            let Some(mut sched) = self.instance.backup_schedule.get(&db).cloned() else {
                continue;
            };
            if !eligible {
                continue;
            }
            if let Some(due) = sched.next_full.filter(|d| *d <= t) {
                self.instance.backups.push(BackupRecord {
                    database: db.clone(),
                    kind: BackupKind::Full,
                    finished: due,
                });
                self.events.push(SimEvent {
                    at: due,
                    kind: EventKind::FullBackup {
                        database: db.clone(),
                    },
                });
                sched.next_full = Some(due.plus(self.config.full_backup_interval));
                if sched.next_log.is_none() {
                    sched.next_log = Some(due.plus(self.config.log_backup_interval));
                }
            }
            while let Some(due) = sched.next_log.filter(|d| *d <= t) {
                self.instance.backups.push(BackupRecord {
                    database: db.clone(),
                    kind: BackupKind::Log,
                    finished: due,
                });
                let hold = self.truncation_hold(Side::ManagedInstance, &db);
                if let Some(d) = self.instance.databases.get_mut(&db) {
                    let to = hold.map_or(d.data.end.lsn, |h| h.min(d.data.end.lsn));
                    d.data.truncate_log(to);
                }
                sched.next_log = Some(due.plus(self.config.log_backup_interval));
            }
            self.instance.backup_schedule.insert(db, sched);
        }
    }

    /// The latest full backup of `database` on the instance finished by now.
    pub fn latest_full_backup(&self, database: &DatabaseName) -> Option<Timestamp> {
        self.instance
            .backups
            .iter()
            .filter(|b| &b.database == database && b.kind == BackupKind::Full)
            .map(|b| b.finished)
            .filter(|f| *f <= self.now)
            .max()
    }

    // ----- what each side reports -------------------------------------------------------------

    /// `side`'s view of `link` for `databases`.
    pub(crate) fn side_view(
        &self,
        side: Side,
        link: &LinkName,
        databases: &[DatabaseName],
    ) -> SideView {
        let exists = match side {
            Side::SqlServer => self.source.dags.contains_key(link),
            Side::ManagedInstance => self.instance.links.contains_key(link),
        };
        if !exists {
            return SideView::unknown();
        }
        let repl = self.replications.get(link);
        SideView {
            exists: true,
            role: self.role(side, link),
            mode: self.mode_of(side, link),
            // SQL Server's catalog lists both replicas of the DAG; ARM has one mode.
            partner_mode: match side {
                Side::SqlServer => self.source.dags.get(link).map(|d| d.mi_mode),
                Side::ManagedInstance => None,
            },
            connected: repl
                .is_some_and(|r| r.connected || r.databases.values().any(|d| d.synchronized)),
            // Read with the link: the build from SQL Server, the update policy and the link's
            // failover mode from ARM.
            version: (side == Side::SqlServer).then_some(self.source.version),
            update_policy: (side == Side::ManagedInstance).then_some(self.instance.update_policy),
            failover_mode: match side {
                Side::SqlServer => None,
                Side::ManagedInstance => self
                    .instance
                    .links
                    .get(link)
                    .map(|l| l.properties.failover_mode),
            },
            databases: databases
                .iter()
                .map(|db| {
                    let mut v = self.database_view(side, link, db, repl);
                    match side {
                        // The DMV's local row: the end of this copy's log.
                        Side::SqlServer => {
                            v.end_of_log_lsn = self
                                .database(side, db)
                                .filter(|_| self.db_state(side, db) == Some(DbState::Online))
                                .and_then(|d| lsn(d.end.lsn));
                        }
                        // ARM's `databases[]` has no synchronization state.
                        Side::ManagedInstance => v.sync_state = None,
                    }
                    v
                })
                .collect(),
        }
    }

    fn database_view(
        &self,
        side: Side,
        link: &LinkName,
        db: &DatabaseName,
        repl: Option<&Replication>,
    ) -> DatabaseView {
        let local = self
            .database(side, db)
            .filter(|_| self.db_state(side, db) == Some(DbState::Online));
        let is_primary = self.role(side, link) == Some(ReplicaRole::Primary);
        let own_mode = self.mode_of(side, link);
        let mut v = DatabaseView {
            name: db.clone(),
            sync_state: Some(SyncState::NotSynchronizing),
            health: SyncHealth::NotHealthy,
            last_hardened_lsn: None,
            end_of_log_lsn: None,
            partner: None,
            last_commit_lsn: local.and_then(|d| lsn(d.end.lsn)),
            seeding_percent: None,
            log_send_queue_kb: None,
            redo_queue_kb: None,
            lag_seconds: None,
            last_error: repl.and_then(|r| r.last_error.clone()),
            replica_state: None,
        };
        if is_primary && own_mode == Some(AvailabilityMode::SynchronousCommit) {
            v.last_hardened_lsn = local.and_then(|d| lsn(d.end.lsn));
        }
        let Some(r) = repl.and_then(|r| r.databases.get(db)) else {
            if !is_primary {
                v.last_hardened_lsn = local.and_then(|d| lsn(d.end.lsn));
            }
            return v;
        };
        if side == Side::ManagedInstance {
            // The link resource's `databases[].replicaState`.
            v.replica_state = Some(
                match &r.phase {
                    ReplicaPhase::WaitingToSeed => "CreatingLink",
                    ReplicaPhase::Seeding(_) => "Seeding",
                    // An accepted failover or setRole that has not finished yet.
                    ReplicaPhase::Synchronizing if self.role_change_pending(link) => {
                        "LinkFailoverInProgress"
                    }
                    ReplicaPhase::Synchronizing => "LinkSynchronizing",
                    ReplicaPhase::Failed { .. } => "LinkCreationError",
                }
                .to_owned(),
            );
        }
        match &r.phase {
            ReplicaPhase::WaitingToSeed => {}
            ReplicaPhase::Seeding(s) => v.seeding_percent = Some(s.percent()),
            ReplicaPhase::Failed { code, message } => {
                v.last_error = Some(format!("{code}: {message}"));
            }
            ReplicaPhase::Synchronizing => {
                if !is_primary {
                    v.last_hardened_lsn = local.and_then(|d| lsn(d.end.lsn));
                    v.redo_queue_kb = Some(0);
                }
                // A cut network is noticed only when `SESSION_TIMEOUT` passes without an
                // answer: until then the primary still reports its synchronous secondary
                // connected and SYNCHRONIZED, at the log point it last heard of.
                let connected = repl.is_some_and(|x| x.connected) || r.synchronized;
                if let (true, Some(p)) = (connected, self.primary_of(link)) {
                    let sync =
                        self.effective_mode(link) == Some(AvailabilityMode::SynchronousCommit);
                    let (mut state, mut health) = match (sync, r.synchronized) {
                        (true, true) => (SyncState::Synchronized, SyncHealth::Healthy),
                        (true, false) => (SyncState::Synchronizing, SyncHealth::PartiallyHealthy),
                        (false, _) => (SyncState::Synchronizing, SyncHealth::Healthy),
                    };
                    // A demoted old primary undoing its divergent tail: its own row and the
                    // primary's row for it say REVERTING; the primary's own row does not.
                    let reverting = r.reverting_until.is_some();
                    let secondary_state = if reverting {
                        SyncState::Reverting
                    } else {
                        state
                    };
                    if reverting && !is_primary {
                        (state, health) = (SyncState::Reverting, SyncHealth::NotHealthy);
                    }
                    v.sync_state = Some(state);
                    v.health = health;
                    if is_primary && side == Side::SqlServer {
                        // The primary's DMV row for the remote replica.
                        v.partner = Some(PartnerReplica {
                            sync_state: secondary_state,
                            last_hardened_lsn: if reverting || !repl.is_some_and(|x| x.connected) {
                                lsn(r.common.lsn)
                            } else {
                                self.database(side.other(), db).and_then(|d| lsn(d.end.lsn))
                            },
                        });
                    }
                    if let Some(lag) = self.lag(link, db) {
                        v.lag_seconds = Some(lag.lag.as_secs());
                    }
                    if is_primary {
                        v.log_send_queue_kb = self
                            .database(p, db)
                            .map(|d| d.bytes_after(r.sent_upto).div_ceil(1024));
                    }
                }
            }
        }
        v
    }

    /// A readable summary of a seeding in progress: `(percent, attempt)`.
    pub fn seeding(&self, link: &LinkName, database: &DatabaseName) -> Option<(u8, u32)> {
        match &self.replications.get(link)?.databases.get(database)?.phase {
            ReplicaPhase::Seeding(s) => Some((s.percent(), s.attempt)),
            _ => None,
        }
    }

    /// Events of a kind since index `from` (for the example's progress output).
    pub fn events_since(&self, from: usize) -> &[SimEvent] {
        self.events.get(from..).unwrap_or(&[])
    }

    /// Latest full backups per database, as `msdb.dbo.backupset` would answer.
    pub(crate) fn full_backups_of(
        &self,
        databases: &[DatabaseName],
    ) -> Vec<(DatabaseName, Option<Timestamp>)> {
        databases
            .iter()
            .map(|d| (d.clone(), self.latest_full_backup(d)))
            .collect()
    }

    /// A source database's facts.
    pub fn source_database(&self, database: &DatabaseName) -> Option<&SourceDatabase> {
        self.source.databases.get(database)
    }
}
