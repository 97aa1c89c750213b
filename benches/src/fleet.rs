//! A fleet of simulated links in one process: what `benches/benches/fleet.rs` measures.
//!
//! Each link has its own simulated world (one SQL Server, one managed instance, the Tailspin
//! lab's ToyStore link) and its own real [`Session`], all on one tokio runtime whose clock is
//! paused: [`FleetTimer`] is the sessions' timer, so every session sleeps on tokio's virtual
//! clock (which jumps to the next sleeper's deadline when every task is asleep) and brings its
//! world to that time when it wakes. The fleet therefore shares one virtual time line, and the
//! counts per virtual second are the fleet's rates.
//!
//! The ports are the simulator's in-process ports wrapped in [`CountedSql`] and [`CountedMi`],
//! which count each call the way the real adapters would send it (see [`Counts`]); the journal
//! is [`CountingJournal`], which serializes every record as `FileJournal` does but keeps
//! nothing (the fleet's journals would be files; their fsyncs are measured by the `journal`
//! bench, not here).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use milink_core::journal::{JournalError, JournalRecord};
use milink_core::lifecycle::{FullBackup, InstanceOp, LinkName, OperationRef, SideView, SourceOp};
use milink_core::names::DatabaseName;
use milink_core::ports::{
    ArmReply, Journal, ManagedInstance, PollReply, PortError, SourceReply, SourceServer,
};
use milink_core::redirect::WorkloadActivity;
use milink_core::sim::{Lab, Sim, SimConfig, SimManagedInstance, SimSqlServer, WorkloadSpec};
use milink_core::time::{Clock, Timer, Timestamp};
use milink_core::{Session, SessionOptions};

use crate::{WorkloadError, ctx};

/// ARM `GET`s behind one `ManagedInstance::link_state` of the real ARM adapter
/// (`ArmManagedInstance`): the link resource, then the instance (its update policy).
pub const ARM_READS_PER_LINK_STATE: u64 = 2;

/// Calls to each side, counted as the real adapters send them.
#[derive(Debug, Default)]
pub struct Counts {
    /// T-SQL round trips to SQL Server: one per `execute` (an op the adapter renders to several
    /// batches counts once here), one per `link_state` (the link's probes are one batch), one
    /// per `workload_activity`.
    pub sql: AtomicU64,
    /// Of which `link_state`: SQL Server's DMV readings.
    pub sql_link_state: AtomicU64,
    /// T-SQL round trips to the managed instance's endpoint (`full_backups`,
    /// `workload_activity`).
    pub mi_tsql: AtomicU64,
    /// ARM reads: [`ARM_READS_PER_LINK_STATE`] per `link_state`, one per operation poll.
    pub arm_reads: AtomicU64,
    /// ARM writes: one per `begin` (PUT, PATCH, POST, DELETE).
    pub arm_writes: AtomicU64,
}

/// A snapshot of [`Counts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counted {
    /// See [`Counts::sql`].
    pub sql: u64,
    /// See [`Counts::sql_link_state`].
    pub sql_link_state: u64,
    /// See [`Counts::mi_tsql`].
    pub mi_tsql: u64,
    /// See [`Counts::arm_reads`].
    pub arm_reads: u64,
    /// See [`Counts::arm_writes`].
    pub arm_writes: u64,
}

impl Counts {
    /// The counts now.
    pub fn snapshot(&self) -> Counted {
        Counted {
            sql: self.sql.load(Ordering::Relaxed),
            sql_link_state: self.sql_link_state.load(Ordering::Relaxed),
            mi_tsql: self.mi_tsql.load(Ordering::Relaxed),
            arm_reads: self.arm_reads.load(Ordering::Relaxed),
            arm_writes: self.arm_writes.load(Ordering::Relaxed),
        }
    }
}

impl Counted {
    /// What was counted between `earlier` and `self`.
    pub fn since(self, earlier: Counted) -> Counted {
        Counted {
            sql: self.sql - earlier.sql,
            sql_link_state: self.sql_link_state - earlier.sql_link_state,
            mi_tsql: self.mi_tsql - earlier.mi_tsql,
            arm_reads: self.arm_reads - earlier.arm_reads,
            arm_writes: self.arm_writes - earlier.arm_writes,
        }
    }
}

fn bump(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// SQL Server's simulated port, counted.
pub struct CountedSql {
    inner: SimSqlServer,
    counts: Arc<Counts>,
}

#[async_trait]
impl SourceServer for CountedSql {
    async fn execute(&self, op: &SourceOp) -> Result<SourceReply, PortError> {
        bump(&self.counts.sql, 1);
        self.inner.execute(op).await
    }

    async fn link_state(
        &self,
        link: &LinkName,
        databases: &[DatabaseName],
    ) -> Result<SideView, PortError> {
        bump(&self.counts.sql, 1);
        bump(&self.counts.sql_link_state, 1);
        self.inner.link_state(link, databases).await
    }

    async fn workload_activity(
        &self,
        databases: &[DatabaseName],
    ) -> Result<WorkloadActivity, PortError> {
        bump(&self.counts.sql, 1);
        self.inner.workload_activity(databases).await
    }
}

/// The managed instance's simulated port, counted.
pub struct CountedMi {
    inner: SimManagedInstance,
    counts: Arc<Counts>,
}

#[async_trait]
impl ManagedInstance for CountedMi {
    async fn begin(&self, op: &InstanceOp) -> Result<ArmReply, PortError> {
        bump(&self.counts.arm_writes, 1);
        self.inner.begin(op).await
    }

    async fn poll(&self, operation: &OperationRef) -> Result<PollReply, PortError> {
        bump(&self.counts.arm_reads, 1);
        self.inner.poll(operation).await
    }

    async fn link_state(&self, link: &LinkName) -> Result<SideView, PortError> {
        bump(&self.counts.arm_reads, ARM_READS_PER_LINK_STATE);
        self.inner.link_state(link).await
    }

    async fn link_state_live(&self, link: &LinkName) -> Result<SideView, PortError> {
        bump(&self.counts.mi_tsql, 1);
        self.inner.link_state_live(link).await
    }

    async fn full_backups(&self, databases: &[DatabaseName]) -> Result<Vec<FullBackup>, PortError> {
        bump(&self.counts.mi_tsql, 1);
        self.inner.full_backups(databases).await
    }

    async fn workload_activity(
        &self,
        databases: &[DatabaseName],
    ) -> Result<WorkloadActivity, PortError> {
        bump(&self.counts.mi_tsql, 1);
        self.inner.workload_activity(databases).await
    }
}

/// A journal that serializes each record as `FileJournal` writes it (JSON), counts it, and
/// keeps nothing: the fleet's CPU includes the serialization, not the disk.
#[derive(Debug, Default)]
pub struct CountingJournal {
    line: Vec<u8>,
    counts: Arc<JournalCounts>,
    /// What `records` answers: a recorded journal a session resumes from (empty for a new
    /// link).
    recorded: Arc<Vec<JournalRecord>>,
}

/// What every [`CountingJournal`] of a fleet appended.
#[derive(Debug, Default)]
pub struct JournalCounts {
    /// Records appended.
    pub records: AtomicU64,
    /// Their JSON bytes.
    pub bytes: AtomicU64,
}

impl Journal for CountingJournal {
    fn append(&mut self, record: &JournalRecord) -> Result<(), JournalError> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, record).map_err(|e| JournalError::Io {
            path: std::path::PathBuf::from("fleet"),
            source: std::io::Error::other(e),
        })?;
        bump(&self.counts.records, 1);
        bump(&self.counts.bytes, self.line.len() as u64 + 1);
        Ok(())
    }

    fn records(&self) -> Result<Vec<JournalRecord>, JournalError> {
        Ok(self.recorded.as_ref().clone())
    }
}

/// A session's timer on the fleet's shared virtual clock: tokio's clock, paused (the runtime
/// jumps it to the next deadline when every task sleeps), read as a [`Timestamp`] from `base`;
/// waking brings the link's world to the time it woke at.
pub struct FleetTimer {
    sim: Option<Sim>,
    epoch: tokio::time::Instant,
    base: Timestamp,
}

impl FleetTimer {
    /// A timer for the world `sim` (if any), whose virtual `base` is tokio's `epoch`.
    pub fn new(sim: Option<Sim>, epoch: tokio::time::Instant, base: Timestamp) -> Self {
        FleetTimer { sim, epoch, base }
    }
}

impl Clock for FleetTimer {
    fn now(&self) -> Timestamp {
        let elapsed = tokio::time::Instant::now().saturating_duration_since(self.epoch);
        self.base
            .plus(Duration::from_millis(elapsed.as_millis() as u64))
    }
}

#[async_trait]
impl Timer for FleetTimer {
    async fn sleep_until(&self, deadline: Timestamp) {
        let now = self.now();
        if deadline > now {
            tokio::time::sleep(deadline.since(now)).await;
        }
        if let Some(sim) = &self.sim {
            sim.advance_to(deadline);
        }
    }
}

/// A session of the fleet.
pub type FleetSession = Session<CountedSql, CountedMi, CountingJournal>;

/// A session of the fleet on recorded ports.
pub type FleetRecordedSession = Session<RecordedSql, RecordedMi, CountingJournal>;

/// A replicating link's journal and its last reading, recorded once on the simulator.
pub struct Template {
    /// The journal (creation, seeding, a few readings).
    pub records: Arc<Vec<JournalRecord>>,
    /// The last whole reading.
    pub reading: milink_core::lifecycle::LinkObservation,
    /// The virtual time the journal ends at.
    pub ends_at: Timestamp,
}

impl Template {
    /// Creates link `seed` on its own simulated world (its own clock) with `probe_interval`,
    /// seeds it and reads it once.
    pub async fn record(seed: u64, probe_interval: Duration) -> Result<Template, WorkloadError> {
        let mut lab = ctx(
            "the Tailspin lab",
            Lab::tailspin_with(SimConfig::with_seed(seed)),
        )?;
        lab.spec.options.probe_interval = probe_interval;
        let journal = milink_core::MemoryJournal::new();
        let session = ctx(
            "the template session",
            Session::create(
                lab.spec.clone(),
                Arc::new(lab.sim.sql_server()),
                Arc::new(lab.sim.managed_instance()),
                journal.clone(),
                Arc::new(lab.sim.clock()),
                SessionOptions {
                    seed,
                    ..SessionOptions::default()
                },
            ),
        )?;
        use milink_core::LinkSession;
        ctx(
            "assessed",
            session
                .record_assessment(milink_core::lifecycle::AssessmentOutcome {
                    blockers: Vec::new(),
                })
                .await,
        )?;
        ctx("started", session.start().await)?;
        ctx("read", session.health().await)?;
        let reading = session
            .machine()
            .health()
            .cloned()
            .ok_or_else(|| WorkloadError("the template was never read".into()))?;
        let records = ctx("the template's journal", journal.records())?;
        Ok(Template {
            records: Arc::new(records),
            reading,
            ends_at: lab.sim.now(),
        })
    }
}

/// SQL Server's side answering every reading with a recorded view (and every operation with
/// success): no simulator behind it.
pub struct RecordedSql {
    view: SideView,
    counts: Arc<Counts>,
}

#[async_trait]
impl SourceServer for RecordedSql {
    async fn execute(&self, _op: &SourceOp) -> Result<SourceReply, PortError> {
        bump(&self.counts.sql, 1);
        Ok(SourceReply::Done)
    }

    async fn link_state(
        &self,
        _link: &LinkName,
        _databases: &[DatabaseName],
    ) -> Result<SideView, PortError> {
        bump(&self.counts.sql, 1);
        bump(&self.counts.sql_link_state, 1);
        Ok(self.view.clone())
    }
}

/// The managed instance's side answering every reading with a recorded view.
pub struct RecordedMi {
    view: SideView,
    counts: Arc<Counts>,
}

#[async_trait]
impl ManagedInstance for RecordedMi {
    async fn begin(&self, _op: &InstanceOp) -> Result<ArmReply, PortError> {
        bump(&self.counts.arm_writes, 1);
        Ok(ArmReply::Completed)
    }

    async fn poll(&self, _operation: &OperationRef) -> Result<PollReply, PortError> {
        bump(&self.counts.arm_reads, 1);
        Ok(PollReply::Succeeded)
    }

    async fn link_state(&self, _link: &LinkName) -> Result<SideView, PortError> {
        bump(&self.counts.arm_reads, ARM_READS_PER_LINK_STATE);
        Ok(self.view.clone())
    }

    async fn full_backups(
        &self,
        _databases: &[DatabaseName],
    ) -> Result<Vec<FullBackup>, PortError> {
        bump(&self.counts.mi_tsql, 1);
        Ok(Vec::new())
    }
}

/// One link of the fleet: its world and its session.
pub struct FleetLink {
    /// The link's world.
    pub lab: Lab,
    /// The session that drives it.
    pub session: FleetSession,
}

/// What a fleet shares: the counters and the clock's origin.
pub struct Fleet {
    /// Calls to each side, all links together.
    pub counts: Arc<Counts>,
    /// Journal records, all links together.
    pub journal: Arc<JournalCounts>,
    /// tokio's instant that is the virtual `base`.
    pub epoch: tokio::time::Instant,
    /// Virtual time at `epoch`.
    pub base: Timestamp,
}

impl Fleet {
    /// A fleet whose clock starts now (call inside the paused runtime) at the simulator's
    /// default start.
    pub fn new() -> Fleet {
        Fleet::starting_at(SimConfig::default().start)
    }

    /// A fleet whose clock starts now at virtual time `base`.
    pub fn starting_at(base: Timestamp) -> Fleet {
        Fleet {
            counts: Arc::new(Counts::default()),
            journal: Arc::new(JournalCounts::default()),
            epoch: tokio::time::Instant::now(),
            base,
        }
    }

    /// A session resumed from `template`'s journal on ports that answer every reading with
    /// `template`'s last one: milink's own cost with no simulator behind the ports.
    pub fn recorded_session(
        &self,
        template: &Template,
        options: SessionOptions,
    ) -> Result<FleetRecordedSession, WorkloadError> {
        ctx(
            "a session on recorded ports",
            Session::resume(
                CountingJournal {
                    line: Vec::new(),
                    counts: self.journal.clone(),
                    recorded: template.records.clone(),
                },
                Arc::new(RecordedSql {
                    view: template.reading.source.clone(),
                    counts: self.counts.clone(),
                }),
                Arc::new(RecordedMi {
                    view: template.reading.instance.clone(),
                    counts: self.counts.clone(),
                }),
                Arc::new(FleetTimer::new(None, self.epoch, self.base)),
                options,
            ),
        )
    }

    /// The virtual time now.
    pub fn now(&self) -> Timestamp {
        let elapsed = tokio::time::Instant::now().saturating_duration_since(self.epoch);
        self.base
            .plus(Duration::from_millis(elapsed.as_millis() as u64))
    }

    /// The world of link `seed`: the Tailspin lab's ToyStore link (seeded by `seed`), probed
    /// every `probe_interval`, the application writing `tps` transactions a second on SQL
    /// Server.
    pub fn lab(&self, seed: u64, probe_interval: Duration, tps: f64) -> Result<Lab, WorkloadError> {
        let mut config = SimConfig::with_seed(seed);
        config.start = self.base;
        let mut lab = ctx("the Tailspin lab", Lab::tailspin_with(config))?;
        lab.spec.options.probe_interval = probe_interval;
        lab.sim.start_workload(WorkloadSpec {
            database: lab.database.clone(),
            target: milink_core::lifecycle::Side::SqlServer,
            transactions_per_second: tps,
            max_rows_per_transaction: 4,
        });
        Ok(lab)
    }

    /// A session created on `lab`'s link (not yet started), on the fleet's clock and counters.
    pub fn session(
        &self,
        lab: &Lab,
        options: SessionOptions,
    ) -> Result<FleetSession, WorkloadError> {
        ctx(
            "a fleet session",
            Session::create(
                lab.spec.clone(),
                Arc::new(CountedSql {
                    inner: lab.sim.sql_server(),
                    counts: self.counts.clone(),
                }),
                Arc::new(CountedMi {
                    inner: lab.sim.managed_instance(),
                    counts: self.counts.clone(),
                }),
                CountingJournal {
                    line: Vec::new(),
                    counts: self.journal.clone(),
                    recorded: Arc::new(Vec::new()),
                },
                Arc::new(FleetTimer::new(
                    Some(lab.sim.clone()),
                    self.epoch,
                    self.base,
                )),
                options,
            ),
        )
    }

    /// [`Fleet::lab`] and [`Fleet::session`] together.
    pub fn link(
        &self,
        seed: u64,
        probe_interval: Duration,
        tps: f64,
        options: SessionOptions,
    ) -> Result<FleetLink, WorkloadError> {
        let lab = self.lab(seed, probe_interval, tps)?;
        let session = self.session(&lab, options)?;
        Ok(FleetLink { lab, session })
    }
}

impl Default for Fleet {
    fn default() -> Self {
        Fleet::new()
    }
}

/// What `/proc/self/status` says of the process's memory, in KiB: (`VmRSS`, `VmHWM`).
pub fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets the process's peak RSS (`VmHWM`) to its current RSS (Linux `clear_refs` 5); false
/// where the kernel does not allow it.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// CPU time of the calling thread, from `/proc/thread-self/schedstat` (nanoseconds on a CPU).
pub fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// CPU time (user + system) of the whole process, from `/proc/self/stat` (in clock ticks of
/// 10 ms, Linux's `USER_HZ` of 100).
pub fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use milink_core::LinkSession;
    use milink_core::lifecycle::AssessmentOutcome;
    use milink_core::sim::{Fault, Trigger};

    fn options(arm_read_interval: Duration) -> SessionOptions {
        SessionOptions {
            seed: 7,
            arm_read_interval,
            ..SessionOptions::default()
        }
    }

    async fn started(fleet: &Fleet, arm_read_interval: Duration) -> FleetLink {
        let link = fleet
            .link(3, Duration::from_secs(5), 2.0, options(arm_read_interval))
            .unwrap();
        link.session
            .record_assessment(AssessmentOutcome {
                blockers: Vec::new(),
            })
            .await
            .unwrap();
        link.session.start().await.unwrap();
        link
    }

    #[tokio::test(start_paused = true)]
    async fn watch_reads_sql_server_every_probe_and_arm_on_its_own_cadence() {
        let fleet = Fleet::new();
        let link = started(&fleet, Duration::from_secs(120)).await;
        let before = fleet.counts.snapshot();
        link.session
            .watch(Duration::from_secs(20 * 60))
            .await
            .unwrap();
        let watched = fleet.counts.snapshot().since(before);
        // 20 minutes at 5 s: 240 readings of SQL Server's DMVs...
        assert!((239..=241).contains(&watched.sql_link_state), "{watched:?}");
        // ...and the whole link (ARM) every 2 minutes on average: 10, give or take the spread.
        let whole = watched.arm_reads / ARM_READS_PER_LINK_STATE;
        assert!((6..=15).contains(&whole), "{watched:?}");
        assert_eq!(watched.arm_writes, 0);
        // With the cadence off, every reading reads ARM too.
        let every = fleet
            .link(3, Duration::from_secs(5), 2.0, options(Duration::ZERO))
            .unwrap();
        every
            .session
            .record_assessment(AssessmentOutcome {
                blockers: Vec::new(),
            })
            .await
            .unwrap();
        every.session.start().await.unwrap();
        let before = fleet.counts.snapshot();
        every.session.watch(Duration::from_secs(60)).await.unwrap();
        let watched = fleet.counts.snapshot().since(before);
        assert!(
            (12..=13).contains(&(watched.arm_reads / ARM_READS_PER_LINK_STATE)),
            "{watched:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_on_sql_server_is_read_whole_at_once_between_arm_readings() {
        let fleet = Fleet::new();
        let link = started(&fleet, Duration::from_secs(3600)).await;
        // The network between the sides fails 90 s from now for 10 minutes: SQL Server's DMVs
        // show the replica disconnected.
        let cut = fleet.now().plus(Duration::from_secs(90));
        link.lab.sim.inject(
            Trigger::At(cut),
            Fault::Partition {
                duration: Duration::from_secs(600),
            },
        );
        let readings = link.session.history().len();
        link.session.watch(Duration::from_secs(300)).await.unwrap();
        let whole: Vec<Timestamp> = link.session.history()[readings..]
            .iter()
            .map(|r| r.at)
            .collect();
        // No whole reading was due for an hour; the cut was read whole within a probe interval
        // of reaching SQL Server's DMVs.
        assert!(!whole.is_empty(), "the change was not read whole");
        assert!(
            whole.iter().all(|at| *at >= cut),
            "a whole reading before the change: {whole:?}"
        );
        assert!(
            whole[0].since(cut) <= Duration::from_secs(60),
            "{whole:?} after {cut:?}"
        );
    }
}
