//! The simulator: one seeded world with a virtual clock, shared by a simulated SQL Server
//! ([`SimSqlServer`]) and a simulated managed instance ([`SimManagedInstance`]) that implement
//! the [ports](crate::ports), so the real session driver runs against it unchanged.
//!
//! The world models what the link workflow depends on: instance and database facts, a workload
//! that commits transactions (LSNs advance), log shipping with bandwidth and latency, automatic
//! seeding at a rate (restarted after a disconnect, failed with 1408/1412 by a log backup during
//! seeding), the AG/DAG catalogs and replica roles on both sides, replication modes and
//! `last_hardened_lsn` per side, the instance's automatic backups, ARM long-running operations
//! with latencies and `Retry-After`, certificates with expiry, and faults ([`faults`]).
//!
//! It can lose data, and counts loss by what the copies hold ([`commits`]): every transaction
//! has an id and every copy of a database knows which ids it holds; at each role change and
//! each removal of the link, what the old primary holds beyond the surviving primary is lost.
//! Commits in synchronous commit wait for the secondary (up to the DAG's `SESSION_TIMEOUT`);
//! each replica of SQL Server's DAG has its own availability mode; ARM's view of the link lags
//! ([`SimConfig::arm_reading_lag`]); the application can hold transactions open, and a system
//! writer can add log of its own ([`SimConfig::background_log_interval`]).
//!
//! [`tds`] serves the simulated SQL Server over TDS on loopback (TLS with a generated
//! certificate), so the real SQL Server client is tested end to end against it.
//!
//! Time is virtual: [`SimClock`] implements [`Timer`](crate::time::Timer) by advancing the world,
//! never by sleeping. Every random choice comes from one seeded generator, so the same seed and
//! the same calls give the same run.
//!
//! ```
//! use milink_core::sim::Lab;
//! use milink_core::time::Clock;
//!
//! let lab = Lab::tailspin(7).unwrap();
//! let start = lab.sim.clock().now();
//! lab.sim.advance(std::time::Duration::from_secs(3600));
//! assert_eq!(lab.sim.clock().now().since(start).as_secs(), 3600);
//! ```

pub mod arm_https;
mod arm_view;
pub mod clock;
pub mod commits;
pub mod crash;
pub mod errors;
pub mod facts;
pub mod faults;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod lab;
mod loopback_tls;
pub mod managed_instance;
pub mod sql;
pub mod sql_server;
pub mod tds;
pub mod wire;
pub mod workload;
pub mod world;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use clock::SimClock;
pub use commits::{CommitStatus, Committed};
pub use crash::{CrashPoint, CrashingJournal, WorkloadRedirect};
pub use faults::{Call, Fault, FaultPlan, InjectedError, InstanceCall, SourceCall, Trigger};
pub use lab::{
    DatabaseTopology, InstanceTopology, Lab, RecoveryModel, SimTopology, SourceTopology,
    TableTopology,
};
pub use managed_instance::SimManagedInstance;
pub use sql_server::SimSqlServer;
pub use workload::{
    DbSnapshot, ParityReport, TableParity, TableState, WorkloadSpec, WorkloadStats,
};
pub use world::{BackupKind, BackupRecord, EventKind, OpenTransaction, SimEvent, World};

use crate::lifecycle::Side;
use crate::names::{DatabaseName, Lsn};
use crate::ports::PortError;
use crate::time::{Date, Timestamp};

/// A range of durations a latency is drawn from (uniformly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurationRange {
    /// Shortest.
    pub min: Duration,
    /// Longest.
    pub max: Duration,
}

impl DurationRange {
    /// From seconds.
    pub const fn secs(min: u64, max: u64) -> Self {
        DurationRange {
            min: Duration::from_secs(min),
            max: Duration::from_secs(max),
        }
    }

    /// From milliseconds.
    pub const fn millis(min: u64, max: u64) -> Self {
        DurationRange {
            min: Duration::from_millis(min),
            max: Duration::from_millis(max),
        }
    }

    /// A fixed duration.
    pub const fn fixed(d: Duration) -> Self {
        DurationRange { min: d, max: d }
    }

    pub(crate) fn sample(&self, rng: &mut fastrand::Rng) -> Duration {
        let lo = u64::try_from(self.min.as_millis()).unwrap_or(u64::MAX);
        let hi = u64::try_from(self.max.as_millis()).unwrap_or(u64::MAX);
        if hi <= lo {
            return Duration::from_millis(lo);
        }
        Duration::from_millis(rng.u64(lo..=hi))
    }
}

/// Latencies of ARM operations: the request itself and each long-running operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ArmTiming {
    /// One HTTP round trip.
    pub request: DurationRange,
    /// `PUT serverTrustCertificates`.
    pub put_trust_certificate: DurationRange,
    /// `PUT distributedAvailabilityGroups` (joining the link; "up to 10 minutes").
    pub put_link: DurationRange,
    /// `PATCH replicationMode`.
    pub set_replication_mode: DurationRange,
    /// `PATCH databases` (a MultiDatabase link's list).
    pub set_link_databases: DurationRange,
    /// `POST failover`.
    pub failover: DurationRange,
    /// `POST setRole`.
    pub set_role: DurationRange,
    /// `DELETE distributedAvailabilityGroups`.
    pub delete_link: DurationRange,
    /// `DELETE serverTrustCertificates`.
    pub delete_trust_certificate: DurationRange,
    /// The `Retry-After` sent with 202 and with running polls.
    pub retry_after: Duration,
}

impl Default for ArmTiming {
    fn default() -> Self {
        ArmTiming {
            request: DurationRange::millis(150, 600),
            put_trust_certificate: DurationRange::secs(15, 45),
            put_link: DurationRange::secs(60, 180),
            set_replication_mode: DurationRange::secs(10, 40),
            set_link_databases: DurationRange::secs(20, 60),
            failover: DurationRange::secs(30, 90),
            set_role: DurationRange::secs(20, 60),
            delete_link: DurationRange::secs(30, 90),
            delete_trust_certificate: DurationRange::secs(10, 30),
            retry_after: Duration::from_secs(10),
        }
    }
}

/// Everything that shapes a simulated world besides its topology.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimConfig {
    /// The seed of the world's one random generator.
    pub seed: u64,
    /// Virtual time at the start.
    pub start: Timestamp,
    /// Automatic seeding throughput in bytes per second, shared by databases that seed at the
    /// same time (compression with trace flag 9567 is already in this number).
    pub seeding_bytes_per_sec: u64,
    /// Log shipping bandwidth in bytes per second.
    pub link_bandwidth_bytes_per_sec: u64,
    /// One-way network latency between SQL Server and the managed instance.
    pub link_latency: Duration,
    /// From the instance joining the link to the first connection ("about a minute").
    pub connect_delay: DurationRange,
    /// How long the instance tries to reach SQL Server before failing the join with 41962.
    pub link_init_timeout: Duration,
    /// Whether the network path (NSG, firewalls, routing) between the two sides is open.
    pub network_reachable: bool,
    /// ARM latencies.
    pub arm: ArmTiming,
    /// A T-SQL round trip for a small batch.
    pub sql_request: DurationRange,
    /// `CREATE AVAILABILITY GROUP` and other DDL that touches the HADR catalog.
    pub sql_hadr_ddl: DurationRange,
    /// `ALTER AVAILABILITY GROUP … FAILOVER` and friends.
    pub sql_failover: DurationRange,
    /// From a database becoming primary (or independent) on the instance to its first automatic
    /// full backup.
    pub first_full_backup_delay: DurationRange,
    /// Whether the instance also backs up linked secondary databases (full + log; facts §4.4).
    pub backups_while_secondary: bool,
    /// Interval of the instance's automatic full backups after the first.
    pub full_backup_interval: Duration,
    /// Interval of the instance's automatic log backups.
    pub log_backup_interval: Duration,
    /// Interval of scheduled log backups on SQL Server (`None`: no log backup job).
    pub source_log_backup_interval: Option<Duration>,
    /// UNVERIFIED service rule: ARM `failover` with `Planned` only on a link whose instance role
    /// is primary (400 `InvalidDistributedAvailabilityGroupFailoverInstanceRole`). Off by default
    /// (the docs show REST planned failover from SQL Server to the instance).
    pub arm_planned_failover_requires_primary: bool,
    /// UNVERIFIED: whether a forced failover also demotes a reachable old primary. Off by
    /// default (distributed AG behaviour: both sides stay primary, a split brain).
    pub forced_failover_demotes_old_primary: bool,
    /// UNVERIFIED threshold: ARM `failover` with `Planned` answers 409
    /// `DistributedAvailabilityGroupFailoverLogSendQueueSizeTooBig` when a database's log send
    /// queue is larger than this many KB (the spec names the error, not the limit). Default 64.
    pub arm_planned_failover_max_send_queue_kb: u64,
    /// How old the managed instance's ARM readings of a link are (role, `replicationMode`,
    /// `databases[]`): ARM reports what the service last refreshed. Default 2 s; zero reads
    /// live. T-SQL reads on SQL Server are always live.
    pub arm_reading_lag: Duration,
    /// The in-process managed instance reads a link as an adapter with the instance's endpoint
    /// does (`sqlserver::instance_reads::WithInstanceTsql`): ARM's view, then the instance's
    /// own DMVs over T-SQL (live, one more call, `Call::InstanceTsqlLinkState`, with
    /// `sql_request` latency), merged ([`crate::lifecycle::SideView::merged_with_live`]).
    /// Default `true`; `false` reads through ARM alone, as a port without the endpoint does.
    pub instance_tsql_reads: bool,
    /// Interval of log written by the servers themselves (index maintenance, ghost cleanup): a
    /// log record without rows on the primary's copy of every linked database. `None` (the
    /// default): only the application writes log.
    pub background_log_interval: Option<Duration>,
    /// How long a demoted old primary stays REVERTING while it undoes a divergent tail, before
    /// it takes the new primary's log. Default 10 s.
    pub revert_duration: Duration,
    /// The Azure region in operation URLs.
    pub location: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        let start = Date::new(2026, 11, 26)
            .map(|d| d.start().plus(Duration::from_secs(9 * 3600)))
            .unwrap_or(Timestamp::EPOCH);
        SimConfig {
            seed: 1,
            start,
            seeding_bytes_per_sec: 12 * 1024 * 1024,
            link_bandwidth_bytes_per_sec: 4 * 1024 * 1024,
            link_latency: Duration::from_millis(25),
            connect_delay: DurationRange::secs(20, 60),
            link_init_timeout: Duration::from_secs(5 * 60),
            network_reachable: true,
            arm: ArmTiming::default(),
            sql_request: DurationRange::millis(3, 40),
            sql_hadr_ddl: DurationRange::millis(400, 2500),
            sql_failover: DurationRange::secs(2, 8),
            first_full_backup_delay: DurationRange::secs(4 * 60, 12 * 60),
            backups_while_secondary: true,
            full_backup_interval: Duration::from_secs(7 * 24 * 3600),
            log_backup_interval: Duration::from_secs(10 * 60),
            source_log_backup_interval: None,
            arm_planned_failover_requires_primary: false,
            forced_failover_demotes_old_primary: false,
            arm_planned_failover_max_send_queue_kb: 64,
            arm_reading_lag: Duration::from_secs(2),
            instance_tsql_reads: true,
            background_log_interval: None,
            revert_duration: Duration::from_secs(10),
            location: "eastus".to_string(),
        }
    }
}

impl SimConfig {
    /// The default configuration with another seed.
    pub fn with_seed(seed: u64) -> Self {
        SimConfig {
            seed,
            ..SimConfig::default()
        }
    }
}

/// A handle on one simulated world. Cheap to clone; every clone sees the same world.
#[derive(Clone)]
pub struct Sim {
    world: Arc<Mutex<World>>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // try_lock: formatting must not deadlock when the world is locked by this thread.
        match self.world.try_lock() {
            Ok(w) => f
                .debug_struct("Sim")
                .field("now", &w.now)
                .field("seed", &w.config.seed)
                .finish_non_exhaustive(),
            Err(_) => f.debug_struct("Sim").finish_non_exhaustive(),
        }
    }
}

impl Sim {
    /// A world built from a topology.
    pub fn new(topology: &SimTopology, config: SimConfig) -> Self {
        Sim::from_world(World::new(topology, config))
    }

    /// Wraps an existing world (e.g. one restored with [`World::from_json`]).
    pub fn from_world(world: World) -> Self {
        Sim {
            world: Arc::new(Mutex::new(world)),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the world.
    pub fn with_world<R>(&self, f: impl FnOnce(&World) -> R) -> R {
        f(&self.lock())
    }

    /// Changes the world directly (test set-up: expire a certificate, drop a trust, …).
    pub fn with_world_mut<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        f(&mut self.lock())
    }

    /// The simulated SQL Server.
    pub fn sql_server(&self) -> SimSqlServer {
        SimSqlServer::new(self.clone())
    }

    /// The simulated managed instance.
    pub fn managed_instance(&self) -> SimManagedInstance {
        SimManagedInstance::new(self.clone())
    }

    /// The virtual clock.
    pub fn clock(&self) -> SimClock {
        SimClock::new(self.clone())
    }

    /// Virtual now.
    pub fn now(&self) -> Timestamp {
        self.lock().now
    }

    /// Advances virtual time by `d`, running the world.
    pub fn advance(&self, d: Duration) {
        let mut w = self.lock();
        let target = w.now.plus(d);
        w.advance_to(target);
    }

    /// Advances virtual time to `t` (no-op if it has passed).
    pub fn advance_to(&self, t: Timestamp) {
        self.lock().advance_to(t);
    }

    /// Adds a fault.
    pub fn inject(&self, trigger: Trigger, fault: Fault) {
        self.lock().faults.add(trigger, fault);
    }

    /// Cuts the network between the two sides for `duration`, starting now.
    pub fn partition(&self, duration: Duration) {
        self.lock().apply_fault(&Fault::Partition { duration });
    }

    /// Takes a log backup of `database` on SQL Server now.
    pub fn take_log_backup(&self, database: &DatabaseName) -> Result<(), PortError> {
        self.lock().source_log_backup(database)
    }

    /// Turns a global trace flag on SQL Server on or off (e.g. 12381).
    pub fn set_trace_flag(&self, flag: u32, on: bool) {
        let mut w = self.lock();
        if on {
            w.source.trace_flags.insert(flag);
        } else {
            w.source.trace_flags.remove(&flag);
        }
    }

    /// Starts (or replaces) the application workload.
    pub fn start_workload(&self, spec: WorkloadSpec) {
        self.lock().start_workload(spec);
    }

    /// Makes the running workload stop by itself at `at` (virtual time): an application shut
    /// down while a session call is under way.
    pub fn stop_workload_at(&self, at: Timestamp) {
        self.lock().stop_workload_at(at);
    }

    /// Stops the workload; returns what it did.
    pub fn stop_workload(&self) -> WorkloadStats {
        let mut w = self.lock();
        w.stop_workload();
        w.workload_stats.clone()
    }

    /// Points the workload at another side (the application's connection string changed).
    pub fn redirect_workload(&self, target: Side) {
        self.lock().redirect_workload(target);
    }

    /// What the workload did so far.
    pub fn workload_stats(&self) -> WorkloadStats {
        self.lock().workload_stats.clone()
    }

    /// Commits one transaction of `rows` rows on `side`, as an application would.
    pub fn write(&self, side: Side, database: &DatabaseName, rows: u32) -> Result<Lsn, PortError> {
        self.lock().write(side, database, rows)
    }

    /// Commits one transaction of `rows` rows on `side`, as an application would, and says
    /// where its acknowledgement stands ([`World::commit_transaction`]).
    pub fn commit(
        &self,
        side: Side,
        database: &DatabaseName,
        rows: u32,
    ) -> Result<Committed, PortError> {
        self.lock().commit_transaction(side, database, rows)
    }

    /// Where the application's commit `id` stands.
    pub fn commit_status(&self, id: u64) -> Option<CommitStatus> {
        self.lock().commit_status(id)
    }

    /// The application holds a transaction open on `side` for `duration`, then commits it
    /// ([`World::hold_open_transaction`]).
    pub fn hold_open_transaction(
        &self,
        side: Side,
        database: &DatabaseName,
        duration: Duration,
    ) -> Result<(), PortError> {
        self.lock().hold_open_transaction(side, database, duration)
    }

    /// A copy of `database`'s tables on `side`, if it exists there.
    pub fn snapshot(&self, side: Side, database: &DatabaseName) -> Option<DbSnapshot> {
        self.lock().snapshot(side, database)
    }

    /// Compares `database` on SQL Server (expected) with the managed instance, table by table.
    pub fn parity(&self, database: &DatabaseName) -> Option<ParityReport> {
        let w = self.lock();
        let s = w.snapshot(Side::SqlServer, database)?;
        let m = w.snapshot(Side::ManagedInstance, database)?;
        Some(ParityReport::compare(&s, &m))
    }

    /// The last role change: when it was asked for (the call's start,
    /// [`SimStats::last_role_change_requested`](world::SimStats)) and when a side became
    /// primary by it (the `RoleChanged` event). The difference is L, the service's latency, which
    /// a failover cannot avoid; the application's write-unavailability window minus L is what
    /// the orchestration added. `None` before a role change completed.
    pub fn last_role_change(&self) -> Option<(Timestamp, Timestamp)> {
        let w = self.lock();
        let asked = w.stats.last_role_change_requested?;
        w.events.iter().find_map(|e| match &e.kind {
            EventKind::RoleChanged {
                role: crate::lifecycle::ReplicaRole::Primary,
                ..
            } if e.at >= asked => Some((asked, e.at)),
            _ => None,
        })
    }

    /// The world's event log.
    pub fn events(&self) -> Vec<SimEvent> {
        self.lock().events.clone()
    }

    /// Transactions of `database` counted lost so far, by the data (see
    /// [`SimStats::lost_transactions`](world::SimStats::lost_transactions)).
    pub fn lost_transactions(&self, database: &DatabaseName) -> u64 {
        self.lock()
            .stats
            .lost_transactions
            .get(database)
            .copied()
            .unwrap_or(0)
    }

    /// Of the transactions of `database` counted lost, those the application was told had
    /// committed.
    pub fn lost_acknowledged_transactions(&self, database: &DatabaseName) -> u64 {
        self.lock()
            .stats
            .lost_acknowledged_transactions
            .get(database)
            .copied()
            .unwrap_or(0)
    }

    /// Transactions (and rows) `from`'s copy of `database` holds that `to`'s copy does not.
    pub fn missing_transactions(
        &self,
        database: &DatabaseName,
        from: Side,
        to: Side,
    ) -> (u64, u64) {
        self.lock().missing_transactions(database, from, to)
    }

    /// The whole world as JSON (to continue a run in another process).
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        self.lock().to_json()
    }
}

#[cfg(test)]
mod tests;
