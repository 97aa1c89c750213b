//! Deterministic simulation: one seed gives a whole world (a topology, a workload, a fault plan
//! and a script of operator commands), which the real session drives on the simulator while
//! the promises are checked after every journal record and at the end of every command.
//!
//! The promises, each counted by what the simulated servers hold rather than by what the machine
//! believes:
//! 1. **No commit lost**: a planned failover, a failback or a cutover loses no transaction that
//!    committed on the old primary (the workload's rows on both copies, and the simulator's count
//!    of transactions lost at role changes and removals). Loss after a forced failover is
//!    allowed, but must be reported.
//! 2. **One writable primary**: while the link exists, never both copies accept writes, unless
//!    an acknowledged forced failover made it so.
//! 3. **Bounded**: every command returns within bounded virtual time, in its goal state or with
//!    a typed error, and the run ends in a terminal state or in `Failed`.
//! 4. **Resumable**: a run crashed after any journal record and resumed from the journal ends
//!    like the same run without the crash.
//! 5. **Journal first**: every T-SQL operation and ARM call that changes something is made only
//!    when the journal, as durable at that moment, already asks for it (replaying it gives a
//!    machine with that effect in flight).
//! 6. **Once**: each role change happens once (one promotion event per completed failover or
//!    failback), and the redirect hook runs at least once per redirect, again only after a
//!    crash, and always with the redirect's own id.
//! 7. **Split brain seen**: two writable primaries after a forced failover are reported within
//!    a bounded time of the old primary coming back.
//! 8. **Commands at any time**: a user command issued while another runs (a second failover, a
//!    cutover, cancel, failback, prepare or `health()`, a tokio task on the same session issued
//!    at a seeded virtual moment, often within the catch-up gate) never panics or hangs, returns
//!    within bounded virtual time, and ends in its goal state (after waiting for the running
//!    command) or with a typed refusal naming its reason; `health()` reads without waiting. No
//!    role change or link removal happens twice, and the redirect hook runs once per role
//!    change either command made.
//!
//! Late-writer worlds test promise 1 where the catch-up gate's stability window and quiet check
//! matter: the application stops, but a session of it lingers with transactions open and
//! commits them in batches every few seconds, into the gate and past it. Any transaction lost
//! there (counted by the rows each copy holds, acknowledged or not) breaks the promise: the gate
//! could see the session coming.
//!
//! A failing seed is replayed alone with `MILINK_DST_SEED=<seed>`, which prints its plan and
//! its trace.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use milink_core::journal::{JournalError, JournalRecord, replay};
use milink_core::lifecycle::{
    CutoverOptions, DataLossAcknowledgement, Effect, FailoverKind, FullBackup, InstanceOp,
    LinkName, LinkSpec, OperationRef, Side, SideView, SourceOp, State,
};
use milink_core::names::{DatabaseName, SqlVersion, UpdatePolicy};
use milink_core::ports::{
    ArmReply, Journal, ManagedInstance, PollReply, PortError, SourceReply, SourceServer,
};
use milink_core::redirect::{HookError, RedirectHook, RedirectTarget, WorkloadActivity};
use milink_core::sim::{
    Call, CrashPoint, CrashingJournal, DurationRange, EventKind, Fault, InstanceCall, Lab, Sim,
    SimConfig, SimManagedInstance, SimSqlServer, Trigger, WorkloadRedirect,
};
use milink_core::time::{Clock, Timer, Timestamp};
use milink_core::{LinkSession, MemoryJournal, Session, SessionError};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::{options, ready, workload};

/// How many seeds the suite runs unless `MILINK_DST_SEEDS` says otherwise: 1,000 in an optimised
/// build (the test command runs it so), 40 in a debug build, which is some twenty times slower.
pub const DEFAULT_SEEDS: u64 = if cfg!(debug_assertions) { 40 } else { 1_000 };

/// SQL Server builds the plans pick from, with their real capabilities (see
/// `SqlVersion::capabilities`): 2016 SP3 and 2017 CU31 with the Azure Connect pack, 2019 CU20
/// (one-way), 2022 CU12 (two-way, failover through ARM), 2022 CU13 (T-SQL failover) and 2025.
pub const VERSIONS: [SqlVersion; 6] = [
    SqlVersion::new(13, 0, 7000, 253),
    SqlVersion::new(14, 0, 3490, 10),
    SqlVersion::new(15, 0, 4312, 2),
    SqlVersion::new(16, 0, 4115, 5),
    SqlVersion::new(16, 0, 4125, 3),
    SqlVersion::new(17, 0, 1000, 7),
];

/// One operator command of a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Record a readiness verdict without blockers.
    Assess,
    /// Create the link (the application writes to SQL Server meanwhile).
    Start,
    /// Stop the application, fail over (planned), restart it where the redirect said.
    Planned,
    /// Fail over with data loss acknowledged, the application still writing.
    Forced,
    /// Stop the application, fail back to SQL Server, restart it where the redirect said.
    Failback,
    /// Stop the application and cut over (one way).
    Cutover,
    /// Remove the link.
    Cancel,
    /// Switch the link to synchronous commit while the application writes.
    Prepare,
}

impl Op {
    /// Whether the command's goal state is reached.
    fn reached(self, state: &State) -> bool {
        match self {
            Op::Assess => !matches!(state, State::Draft),
            Op::Start => matches!(state, State::Replicating { .. }),
            Op::Planned | Op::Forced => matches!(
                state,
                State::FailedOver {
                    primary: Side::ManagedInstance,
                    ..
                }
            ),
            Op::Failback => matches!(
                state,
                State::FailedOver {
                    primary: Side::SqlServer,
                    ..
                } | State::Replicating { .. }
            ),
            Op::Cutover => matches!(state, State::Completed),
            Op::Cancel => matches!(state, State::Cancelled),
            Op::Prepare => matches!(state, State::Replicating { .. }),
        }
    }

    /// Whether the command must lose nothing.
    fn lossless(self) -> bool {
        matches!(self, Op::Planned | Op::Failback | Op::Cutover)
    }
}

/// The faults a plan can inject, by kind (for the summary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    /// The orchestrator dies after a journal record.
    Crash,
    /// A SQL Server connection drops before a batch.
    TdsDisconnect,
    /// ARM answers 429 with `Retry-After`.
    ArmThrottle,
    /// ARM answers 500 or 503.
    Arm5xx,
    /// ARM answers 409 `ManagedInstanceIsBusy`.
    ArmBusy,
    /// A mutation runs but its reply is lost.
    LostResponse,
    /// The network between the servers is cut (replication stalls, seeding restarts).
    Partition,
    /// A log backup runs on SQL Server while the database seeds.
    LogBackupDuringSeeding,
    /// The virtual clock jumps ahead between two commands.
    ClockJump,
    /// The world is built to attack the catch-up gate (see [`plan`]).
    GateAttack,
    /// The application stops before the first planned failover, but one of its sessions
    /// lingers: it holds transactions open and commits them every few seconds, into the
    /// catch-up gate and past it (see [`Plan::late_writer`]).
    LateWriter,
    /// A second planned failover issued while another command runs.
    ConcurrentFailover,
    /// A cutover issued while another command runs.
    ConcurrentCutover,
    /// A cancel issued while another command runs.
    ConcurrentCancel,
    /// A failback issued while another command runs.
    ConcurrentFailback,
    /// A prepare issued while another command runs.
    ConcurrentPrepare,
    /// A `health()` issued while another command runs.
    ConcurrentHealth,
}

/// A user command issued while another runs: a tokio task on the same session, started at a
/// virtual moment of the running command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concurrent {
    /// `failover(Planned)`.
    Failover,
    /// `cutover(default)`.
    Cutover,
    /// `cancel()`.
    Cancel,
    /// `failback()`.
    Failback,
    /// `prepare()`.
    Prepare,
    /// `health()`: it reads both sides at once, without waiting for the running command.
    Health,
}

impl Concurrent {
    /// The script command whose goal state this command's success must reach (`None` for
    /// `health()`, which changes nothing).
    fn goal(self) -> Option<Op> {
        match self {
            Concurrent::Failover => Some(Op::Planned),
            Concurrent::Cutover => Some(Op::Cutover),
            Concurrent::Cancel => Some(Op::Cancel),
            Concurrent::Failback => Some(Op::Failback),
            Concurrent::Prepare => Some(Op::Prepare),
            Concurrent::Health => None,
        }
    }

    /// Whether a success left the link where this command's contract says: its goal state, or
    /// for `cancel` also the steady state a failed operation started from (a cancel backs it
    /// out), and for `prepare` either steady state (it prepares a failover or a failback).
    fn reached(self, state: &State) -> bool {
        let steady = matches!(state, State::Replicating { .. } | State::FailedOver { .. });
        match self {
            Concurrent::Cancel => Op::Cancel.reached(state) || steady,
            Concurrent::Prepare => steady,
            other => other.goal().is_none_or(|op| op.reached(state)),
        }
    }

    fn kind(self) -> FaultKind {
        match self {
            Concurrent::Failover => FaultKind::ConcurrentFailover,
            Concurrent::Cutover => FaultKind::ConcurrentCutover,
            Concurrent::Cancel => FaultKind::ConcurrentCancel,
            Concurrent::Failback => FaultKind::ConcurrentFailback,
            Concurrent::Prepare => FaultKind::ConcurrentPrepare,
            Concurrent::Health => FaultKind::ConcurrentHealth,
        }
    }
}

/// The command a [`ConcurrentCommand`] arrives during.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum During {
    /// The start command (seeding, the first full backup).
    Start,
    /// The first planned failover, failback or cutover (its switch to synchronous commit, its
    /// catch-up gate, its role change).
    FirstRoleChange,
}

/// A user command issued while another runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConcurrentCommand {
    /// The command it arrives during.
    pub during: During,
    /// How long after that command began (virtual time); if that command ends sooner, the
    /// command arrives as it ends.
    pub after: Duration,
    /// What is issued.
    pub command: Concurrent,
}

/// Everything one seed decides.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The seed.
    pub seed: u64,
    /// SQL Server's build.
    pub version: SqlVersion,
    /// The managed instance's update policy.
    pub update_policy: UpdatePolicy,
    /// Sizes (MB) of the user databases; the first is ToyStore, which the link carries.
    pub database_sizes: Vec<u64>,
    /// The application's rate, transactions per second.
    pub tps: f64,
    /// The commands, in order.
    pub script: Vec<Op>,
    /// Faults on calls: (trigger, fault).
    pub faults: Vec<(Trigger, Fault)>,
    /// The network cut, if any: (seconds after the start command, how long).
    pub partition: Option<(u64, Duration)>,
    /// Where the orchestrator crashes, if it does.
    pub crash: Option<CrashPoint>,
    /// Virtual time that passes between two commands, if the clock jumps.
    pub clock_jump: Option<Duration>,
    /// When the application stops for a planned failover, a failback or a cutover: `None`
    /// before the command, `Some(s)` only `s` seconds into it (the gate must wait for it).
    pub late_stop: Option<u64>,
    /// Whether the network cut is timed from the first planned failover, failback or cutover
    /// (while its catch-up runs) rather than from the start command.
    pub partition_in_role_change: bool,
    /// The link's `SESSION_TIMEOUT`, seconds: how long a synchronous commit waits for the
    /// other side before SQL Server lets it go.
    pub session_timeout_s: u16,
    /// Whether, before the first planned failover, failback or cutover, the link is prepared
    /// (synchronous commit) while the application writes, then the network between the servers
    /// is cut and the application stops a second later: SQL Server holds commits the instance
    /// does not, and for the link's session timeout still reports it SYNCHRONIZED. Only the
    /// gate's LSN equality stands between the command and the lost commits.
    pub cut_then_stop: bool,
    /// One-way latency between the servers, milliseconds.
    pub link_latency_ms: u64,
    /// How far the instance's ARM readings lag behind, seconds.
    pub arm_reading_lag_s: u64,
    /// Commands issued while another runs (at most one that waits for the running command,
    /// and possibly a `health()`).
    pub concurrent: Vec<ConcurrentCommand>,
    /// In a late-writer world: when, after the first planned failover or failback begins, the
    /// application's lingering session commits (each a transaction it held open from the
    /// command's start, so the session shows open transactions until the last one). Its gaps
    /// are shorter than the stability window, so the intact gate waits them out; they are
    /// longer than the quiet window, so a gate that skipped the workload reading or the
    /// window passes between two of them, and the next commits land in the role change.
    pub late_writer: Vec<Duration>,
    /// The faults, by kind.
    pub kinds: Vec<FaultKind>,
}

/// The plan of `seed`.
pub fn plan(seed: u64) -> Plan {
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x6d69_6c69_6e6b);
    let version = VERSIONS[rng.usize(..VERSIONS.len())];
    let update_policy = match rng.u8(..3) {
        0 => UpdatePolicy::SqlServer2022,
        1 => UpdatePolicy::SqlServer2025,
        _ => UpdatePolicy::AlwaysUpToDate,
    };
    let database_sizes = (0..rng.usize(1..=5)).map(|_| rng.u64(16..=256)).collect();
    let tps = [0.0, 0.05, 0.5, 4.0, 12.0][rng.usize(..5)];
    let script = match rng.u8(..7) {
        0 | 1 => vec![Op::Assess, Op::Start, Op::Planned],
        2 => vec![Op::Assess, Op::Start, Op::Forced],
        3 => vec![Op::Assess, Op::Start, Op::Planned, Op::Failback],
        4 => vec![Op::Assess, Op::Start, Op::Cutover],
        5 => vec![Op::Assess, Op::Start, Op::Cancel],
        _ => vec![
            Op::Assess,
            Op::Start,
            Op::Planned,
            Op::Failback,
            Op::Cutover,
        ],
    };
    let mut faults = Vec::new();
    let mut kinds = Vec::new();
    for _ in 0..rng.usize(0..=4) {
        let (call, fault, kind) = match rng.u8(..6) {
            0 => (
                Call::SourceLinkState,
                Fault::ConnectionDrop,
                FaultKind::TdsDisconnect,
            ),
            1 => (
                Call::InstanceLinkState,
                Fault::Throttle {
                    retry_after: Duration::from_secs(rng.u64(1..=20)),
                },
                FaultKind::ArmThrottle,
            ),
            2 => (
                Call::Poll,
                Fault::ServerError {
                    status: [500, 503][rng.usize(..2)],
                },
                FaultKind::Arm5xx,
            ),
            3 => (
                Call::Instance(InstanceCall::PutLink),
                Fault::Busy,
                FaultKind::ArmBusy,
            ),
            4 => (
                Call::Instance(InstanceCall::PutLink),
                Fault::LostResponse,
                FaultKind::LostResponse,
            ),
            _ => (
                Call::Instance(InstanceCall::Failover),
                Fault::ServerError { status: 503 },
                FaultKind::Arm5xx,
            ),
        };
        let nth = rng.u32(1..=6);
        faults.push((Trigger::OnCall { call, nth }, fault));
        kinds.push(kind);
    }
    let partition = rng.bool().then(|| {
        kinds.push(FaultKind::Partition);
        (rng.u64(0..=600), Duration::from_secs(rng.u64(5..=15 * 60)))
    });
    if rng.u8(..4) == 0 {
        kinds.push(FaultKind::LogBackupDuringSeeding);
    }
    let crash = rng.bool().then(|| {
        kinds.push(FaultKind::Crash);
        let record = rng.u64(1..=90);
        if rng.bool() {
            CrashPoint::AfterRecord(record)
        } else {
            CrashPoint::BeforeEffectsOf(record)
        }
    });
    let clock_jump = (rng.u8(..4) == 0).then(|| {
        kinds.push(FaultKind::ClockJump);
        Duration::from_secs(rng.u64(3600..=3 * 24 * 3600))
    });
    let late_stop = rng.bool().then(|| rng.u64(5..=240));
    let partition_in_role_change = rng.bool();
    let cut_then_stop = rng.u8(..3) == 0;
    let session_timeout_s = [10, 30, 120][rng.usize(..3)];
    let link_latency_ms = [0, 5, 40, 100, 100][rng.usize(..5)];
    let arm_reading_lag_s = [0, 0, 1, 2][rng.usize(..4)];
    // One world in four attacks the catch-up gate on purpose (swarm testing): the failover
    // goes through ARM (2022 CU12), the instance's readings are fresh and the servers far
    // apart, and the application writes a trickle into the failover and stops minutes later,
    // so LSNs are often equal at a single reading while commits are still in flight.
    let attack = rng.u8(..4) == 0;
    let (version, tps, late_stop, link_latency_ms, arm_reading_lag_s, script) = if attack {
        (
            SqlVersion::new(16, 0, 4115, 5),
            [0.3, 1.0, 4.0][rng.usize(..3)],
            Some(rng.u64(120..=200)),
            100,
            0,
            vec![Op::Assess, Op::Start, Op::Planned],
        )
    } else {
        (
            version,
            tps,
            late_stop,
            link_latency_ms,
            arm_reading_lag_s,
            script,
        )
    };
    if attack {
        kinds.push(FaultKind::GateAttack);
    }
    // The draws below come from a generator of their own, so the worlds above stay what they
    // were.
    let mut extra = fastrand::Rng::with_seed(seed ^ 0x636f_6e63_7572);
    // One world in five (of those not attacking the gate) has a late writer: the failover
    // goes through ARM (2022 CU12), where what is in flight at the role change is lost, and the
    // servers are far apart, so each commit is in flight for a while.
    let (mut version, mut tps, mut late_stop, mut link_latency_ms, mut script) =
        (version, tps, late_stop, link_latency_ms, script);
    let mut cut_then_stop = cut_then_stop;
    let mut late_writer = Vec::new();
    if !attack && extra.u8(..5) == 0 {
        kinds.push(FaultKind::LateWriter);
        version = SqlVersion::new(16, 0, 4115, 5);
        tps = [0.5, 4.0][extra.usize(..2)];
        late_stop = None;
        cut_then_stop = false;
        link_latency_ms = [150, 300, 500][extra.usize(..3)];
        script = if extra.bool() {
            vec![Op::Assess, Op::Start, Op::Planned]
        } else {
            vec![Op::Assess, Op::Start, Op::Planned, Op::Failback]
        };
        // Each wake-up commits a batch of one to ten transactions 100 ms apart, 3.5 to 8 s
        // after the last batch (the stability window of these worlds is 10 s, the quiet window
        // 3 s), for about three minutes: past the switch to synchronous commit, the gate and an
        // ARM failover (30 to 90 s).
        let mut at = Duration::from_millis(extra.u64(1_000..=6_000));
        while at < Duration::from_secs(180) {
            let batch = extra.u64(1..=10);
            for i in 0..batch {
                late_writer.push(at + Duration::from_millis(100 * i));
            }
            at += Duration::from_millis(100 * (batch - 1) + extra.u64(3_500..=8_000));
        }
    }
    // Four worlds in ten get a user command while another runs: mostly during the first role
    // change (often within its catch-up gate), sometimes during the start; now and then a
    // `health()` as well.
    let mut concurrent = Vec::new();
    if extra.u8(..10) < 4 {
        let during = if extra.u8(..4) == 0 {
            During::Start
        } else {
            During::FirstRoleChange
        };
        let command = match during {
            During::Start => {
                [Concurrent::Cancel, Concurrent::Prepare, Concurrent::Health][extra.usize(..3)]
            }
            During::FirstRoleChange => [
                Concurrent::Failover,
                Concurrent::Cutover,
                Concurrent::Cancel,
                Concurrent::Failback,
                Concurrent::Prepare,
                Concurrent::Health,
            ][extra.usize(..6)],
        };
        let after = match during {
            During::Start => Duration::from_millis(extra.u64(0..=900_000)),
            During::FirstRoleChange => Duration::from_millis(extra.u64(0..=60_000)),
        };
        concurrent.push(ConcurrentCommand {
            during,
            after,
            command,
        });
        if command != Concurrent::Health && extra.u8(..3) == 0 {
            concurrent.push(ConcurrentCommand {
                during,
                after: Duration::from_millis(extra.u64(0..=30_000)),
                command: Concurrent::Health,
            });
        }
    }
    for c in &concurrent {
        kinds.push(c.command.kind());
    }
    Plan {
        seed,
        version,
        late_stop,
        partition_in_role_change,
        cut_then_stop,
        session_timeout_s,
        link_latency_ms,
        arm_reading_lag_s,
        update_policy,
        database_sizes,
        tps,
        script,
        faults,
        partition,
        crash,
        clock_jump,
        concurrent,
        late_writer,
        kinds,
    }
}

/// How a run ended, by the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The machine's final state name.
    pub state: &'static str,
    /// The link's primary in the world, if the link exists.
    pub primary: Option<Side>,
    /// Transactions on SQL Server's copy missing on the instance's copy.
    pub missing_on_instance: u64,
    /// Transactions the simulator counted lost at role changes and removals.
    pub lost: u64,
    /// The command the run stopped at with an error, if any, and the error's code.
    pub stopped_at: Option<(Op, String)>,
}

/// What one seed did.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The plan.
    pub plan: Plan,
    /// How it ended.
    pub outcome: Outcome,
    /// Broken promises: empty when every invariant held.
    pub violations: Vec<String>,
    /// Invariant checks performed.
    pub checks: u64,
    /// Whether the orchestrator crashed and a new session resumed the journal.
    pub crashed: bool,
    /// Journal records written.
    pub records: usize,
    /// What happened, for a failing seed.
    pub trace: Vec<String>,
    /// Unacknowledged transactions in flight at a role change, lost with it (an application
    /// that stopped late was writing into the role change).
    pub in_flight_lost: u64,
    /// The crashed run ended otherwise than the run without the crash because a log backup
    /// triggered by the seeding's progress hit the seeding in one run and not in the other.
    pub diverged_by_timing: bool,
    /// How each command issued while another ran ended: `"<command> during <command>:
    /// <outcome>"`.
    pub concurrent: Vec<String>,
}

/// The promises checked while a run goes on, shared by the journal and the ports.
#[derive(Debug)]
struct Watch {
    sim: Sim,
    link: LinkName,
    database: DatabaseName,
    journal: MemoryJournal,
    /// An acknowledged forced failover was asked for: two primaries are allowed from then on.
    forced: AtomicBool,
    violations: Mutex<Vec<String>>,
    checks: Mutex<u64>,
}

impl Watch {
    fn violation(&self, what: String) {
        let mut v = self
            .violations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if v.len() < 20 {
            v.push(what);
        }
    }

    fn count(&self) {
        *self.checks.lock().unwrap_or_else(PoisonError::into_inner) += 1;
    }

    /// Promise 2: not both copies writable while the link exists, unless forced.
    fn one_writable_primary(&self, when: &str) {
        self.count();
        if self.forced.load(Ordering::SeqCst) {
            return;
        }
        let (both_linked, both_writable) = self.sim.with_world(|w| {
            (
                w.role(Side::SqlServer, &self.link).is_some()
                    && w.role(Side::ManagedInstance, &self.link).is_some(),
                w.writable(Side::SqlServer, &self.database).is_ok()
                    && w.writable(Side::ManagedInstance, &self.database).is_ok(),
            )
        });
        if both_linked && both_writable {
            self.violation(format!(
                "two writable primaries without a forced failover, {when} (t={})",
                self.sim.now().as_millis()
            ));
        }
    }

    /// Promise 5: the journal as durable now has an effect in flight that `matches`.
    fn journaled_first(&self, what: &str, matches: impl Fn(&Effect) -> bool) {
        self.count();
        match replay(&self.journal.snapshot()) {
            Ok(machine) if machine.in_flight().iter().any(matches) => {}
            Ok(machine) => self.violation(format!(
                "{what} ran before the journal asked for it; in flight: {:?}",
                machine.in_flight()
            )),
            Err(e) => self.violation(format!("the journal does not replay: {e}")),
        }
    }
}

/// The journal of a run: every append is followed by the checks of promise 2.
struct WatchedJournal {
    inner: MemoryJournal,
    watch: Arc<Watch>,
}

impl Journal for WatchedJournal {
    fn append(&mut self, record: &JournalRecord) -> Result<(), JournalError> {
        self.inner.append(record)?;
        self.watch
            .one_writable_primary(&format!("after journal record {}", record.seq));
        Ok(())
    }

    fn records(&self) -> Result<Vec<JournalRecord>, JournalError> {
        self.inner.records()
    }
}

/// SQL Server's port, checking promise 5 before every operation.
struct WatchedSql {
    inner: SimSqlServer,
    watch: Arc<Watch>,
}

#[async_trait]
impl SourceServer for WatchedSql {
    async fn execute(&self, op: &SourceOp) -> Result<SourceReply, PortError> {
        self.watch.journaled_first(
            &format!("SQL Server operation {op:?}"),
            |e| matches!(e, Effect::Source { op: o, .. } if o == op),
        );
        self.inner.execute(op).await
    }

    async fn link_state(
        &self,
        link: &LinkName,
        databases: &[DatabaseName],
    ) -> Result<SideView, PortError> {
        self.inner.link_state(link, databases).await
    }

    async fn workload_activity(
        &self,
        databases: &[DatabaseName],
    ) -> Result<WorkloadActivity, PortError> {
        self.inner.workload_activity(databases).await
    }
}

/// The managed instance's port, checking promise 5 before every ARM operation.
struct WatchedInstance {
    inner: SimManagedInstance,
    watch: Arc<Watch>,
}

#[async_trait]
impl ManagedInstance for WatchedInstance {
    async fn begin(&self, op: &InstanceOp) -> Result<ArmReply, PortError> {
        self.watch.journaled_first(
            &format!("ARM operation {op:?}"),
            |e| matches!(e, Effect::Instance { op: o, .. } if o == op),
        );
        self.inner.begin(op).await
    }

    async fn poll(&self, operation: &OperationRef) -> Result<PollReply, PortError> {
        self.inner.poll(operation).await
    }

    async fn link_state(&self, link: &LinkName) -> Result<SideView, PortError> {
        self.inner.link_state(link).await
    }

    async fn link_state_live(&self, link: &LinkName) -> Result<SideView, PortError> {
        self.inner.link_state_live(link).await
    }

    async fn full_backups(&self, databases: &[DatabaseName]) -> Result<Vec<FullBackup>, PortError> {
        self.inner.full_backups(databases).await
    }

    async fn workload_activity(
        &self,
        databases: &[DatabaseName],
    ) -> Result<WorkloadActivity, PortError> {
        self.inner.workload_activity(databases).await
    }
}

/// The application's redirect hook, counting calls per redirect id (promise 6).
struct CountingRedirect {
    inner: WorkloadRedirect,
    calls: Arc<Mutex<Vec<(String, Side)>>>,
}

#[async_trait]
impl RedirectHook for CountingRedirect {
    async fn redirect(&self, target: &RedirectTarget) -> Result<(), HookError> {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((target.redirect_id.clone(), target.side));
        self.inner.redirect(target).await
    }
}

type DstSession = Session<WatchedSql, WatchedInstance, CrashingJournal<WatchedJournal>>;

/// Moments at which a waiting user command is issued, each with the signal that issues it.
type Wakes = Arc<Mutex<Vec<(Timestamp, Arc<Notify>)>>>;

/// The sessions' timer: the simulator's virtual clock, which also issues the user commands
/// waiting for a moment. A sleep that passes such a moment stops there, signals the command and
/// lets its task run (it starts, and either runs, like `health()`, or waits for the running
/// command) before sleeping on.
struct DstTimer {
    sim: Sim,
    wakes: Wakes,
}

impl Clock for DstTimer {
    fn now(&self) -> Timestamp {
        self.sim.now()
    }
}

#[async_trait]
impl Timer for DstTimer {
    async fn sleep_until(&self, deadline: Timestamp) {
        loop {
            let due = {
                let mut wakes = self.wakes.lock().unwrap_or_else(PoisonError::into_inner);
                let first = wakes
                    .iter()
                    .enumerate()
                    .filter(|(_, (at, _))| *at <= deadline)
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(i, _)| i);
                first.map(|i| wakes.remove(i))
            };
            let Some((at, notify)) = due else { break };
            self.sim.advance_to(at);
            notify.notify_one();
            for _ in 0..16 {
                tokio::task::yield_now().await;
            }
        }
        self.sim.advance_to(deadline);
    }
}

fn lab_for(plan: &Plan, tweak: &dyn Fn(&mut LinkSpec)) -> Lab {
    let mut config = SimConfig::with_seed(plan.seed);
    config.link_latency = Duration::from_millis(plan.link_latency_ms);
    config.arm_reading_lag = Duration::from_secs(plan.arm_reading_lag_s);
    // Quicker ARM operations than the service's: the same steps, fewer probes while waiting.
    config.arm.put_link = DurationRange::secs(15, 40);
    config.arm.put_trust_certificate = DurationRange::secs(5, 15);
    config.arm.set_replication_mode = DurationRange::secs(5, 20);
    config.connect_delay = DurationRange::secs(5, 10);
    let built = Lab::tailspin_topology(config.start).and_then(|mut topology| {
        topology.source.version = plan.version;
        topology.instance.update_policy = plan.update_policy;
        // Customer360 (never ready) goes; the plan's databases come in its place.
        topology.source.databases.truncate(1);
        let template = topology.source.databases[0].clone();
        topology.source.databases[0].size_mb = plan.database_sizes[0];
        for (i, size) in plan.database_sizes.iter().enumerate().skip(1) {
            let mut d = template.clone();
            d.name = DatabaseName::new(format!("Sales{i}"))?;
            d.size_mb = *size;
            topology.source.databases.push(d);
        }
        if plan.kinds.contains(&FaultKind::LogBackupDuringSeeding) {
            // With trace flag 12381 a log backup during seeding does not break it.
            if plan.seed.is_multiple_of(2) {
                topology.source.trace_flags.push(12381);
            }
        }
        let database = DatabaseName::new(Lab::TOYSTORE)?;
        Lab::from_topology(topology, config, &database)
    });
    match built {
        Ok(mut lab) => {
            lab.spec.options.stability_window = Duration::from_secs(10);
            lab.spec.session_timeout_s = plan.session_timeout_s;
            tweak(&mut lab.spec);
            lab
        }
        Err(e) => panic!("the plan's names are valid: {e}"),
    }
}

fn open(
    lab: &Lab,
    watch: &Arc<Watch>,
    journal: Option<CrashingJournal<WatchedJournal>>,
    seed: u64,
    redirects: &Arc<Mutex<Vec<(String, Side)>>>,
    wakes: &Wakes,
) -> Result<Arc<DstSession>, SessionError> {
    let sql = Arc::new(WatchedSql {
        inner: lab.sim.sql_server(),
        watch: Arc::clone(watch),
    });
    let instance = Arc::new(WatchedInstance {
        inner: lab.sim.managed_instance(),
        watch: Arc::clone(watch),
    });
    let clock = Arc::new(DstTimer {
        sim: lab.sim.clone(),
        wakes: Arc::clone(wakes),
    });
    let session = match journal {
        Some(journal) => Session::create(
            lab.spec.clone(),
            sql,
            instance,
            journal,
            clock,
            options(seed),
        )?,
        None => {
            // A new process: the same journal, never crashing again.
            let journal = CrashingJournal::new(
                WatchedJournal {
                    inner: watch.journal.clone(),
                    watch: Arc::clone(watch),
                },
                CrashPoint::AfterRecord(u64::MAX),
            );
            Session::resume(journal, sql, instance, clock, options(seed + 1_000_000))?
        }
    };
    Ok(Arc::new(session.with_redirect_hook(Arc::new(
        CountingRedirect {
            inner: WorkloadRedirect::new(lab.sim.clone()),
            calls: Arc::clone(redirects),
        },
    ))))
}

fn ack(lab: &Lab) -> FailoverKind {
    FailoverKind::Forced(Some(DataLossAcknowledgement {
        link: lab.spec.link.to_string(),
    }))
}

/// The side the application was last redirected to, if any.
fn redirected_to(redirects: &Arc<Mutex<Vec<(String, Side)>>>) -> Option<Side> {
    redirects
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .last()
        .map(|(_, side)| *side)
}

async fn perform(
    s: &DstSession,
    lab: &Lab,
    op: Op,
    plan: &Plan,
    watch: &Watch,
) -> Result<(), SessionError> {
    match op {
        Op::Assess => s.record_assessment(ready()).await,
        Op::Start => {
            if plan.tps > 0.0 {
                workload(lab, Side::SqlServer, plan.tps);
            }
            s.start().await
        }
        Op::Planned => {
            stop_application(lab, plan);
            s.failover(FailoverKind::Planned).await
        }
        Op::Forced => {
            watch.forced.store(true, Ordering::SeqCst);
            s.failover(ack(lab)).await
        }
        Op::Failback => {
            stop_application(lab, plan);
            s.failback().await
        }
        Op::Cutover => {
            stop_application(lab, plan);
            s.cutover(CutoverOptions::default()).await
        }
        Op::Cancel => {
            lab.sim.stop_workload();
            s.cancel().await
        }
        Op::Prepare => s.prepare().await,
    }
}

/// Stops the application before a lossless command, or, in a plan whose application stops
/// late, lets it write on for a while into the command.
fn stop_application(lab: &Lab, plan: &Plan) {
    match plan.late_stop {
        Some(after) => lab
            .sim
            .stop_workload_at(lab.sim.now().plus(Duration::from_secs(after))),
        None => {
            lab.sim.stop_workload();
        }
    }
}

fn promotions(sim: &Sim, link: &LinkName) -> usize {
    sim.events()
        .iter()
        .filter(|e| {
            matches!(&e.kind, EventKind::RoleChanged { link: l, role, .. }
                if l == link && *role == milink_core::lifecycle::ReplicaRole::Primary)
        })
        .count()
}

/// A user command issued while another runs, as its task ended.
struct Issued {
    result: Result<(), SessionError>,
    /// The machine's state when it was issued (`CatchingUp`: within the catch-up gate).
    issued_in: &'static str,
    /// When it was issued and when it returned (virtual time).
    issued: Timestamp,
    ended: Timestamp,
    /// The machine's state and the link's primary in the world as it returned.
    state: State,
    primary: Option<Side>,
}

/// A user command waiting for its moment, or issued and running.
struct Pending {
    command: Concurrent,
    /// The script command it arrived during.
    during: Op,
    /// The session it was issued on.
    session: Arc<DstSession>,
    notify: Arc<Notify>,
    handle: JoinHandle<Issued>,
}

async fn issue(s: &DstSession, sim: &Sim, link: &LinkName, command: Concurrent) -> Issued {
    let issued = sim.now();
    let issued_in = s.machine().state().name();
    let result = match command {
        Concurrent::Failover => s.failover(FailoverKind::Planned).await,
        Concurrent::Cutover => s.cutover(CutoverOptions::default()).await,
        Concurrent::Cancel => s.cancel().await,
        Concurrent::Failback => s.failback().await,
        Concurrent::Prepare => s.prepare().await,
        Concurrent::Health => s.health().await.map(|_| ()),
    };
    Issued {
        result,
        issued_in,
        issued,
        ended: sim.now(),
        state: s.machine().state().clone(),
        primary: sim.with_world(|w| w.primary_of(link)),
    }
}

/// Spawns `command` on `session`'s runtime, to be issued at `at` (see [`DstTimer`]).
fn spawn_command(
    session: &Arc<DstSession>,
    lab: &Lab,
    command: Concurrent,
    during: Op,
    at: Timestamp,
    wakes: &Wakes,
) -> Pending {
    let notify = Arc::new(Notify::new());
    wakes
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((at, Arc::clone(&notify)));
    let (s, sim, link, signal) = (
        Arc::clone(session),
        lab.sim.clone(),
        lab.spec.link.clone(),
        Arc::clone(&notify),
    );
    let handle = tokio::spawn(async move {
        signal.notified().await;
        issue(&s, &sim, &link, command).await
    });
    Pending {
        command,
        during,
        session: Arc::clone(session),
        notify,
        handle,
    }
}

/// What the commands issued during one script command did.
#[derive(Debug, Default)]
struct Settled {
    /// One of them succeeded and left the link elsewhere than the script command did: the
    /// script does not go on.
    diverted: bool,
    /// Role changes they made (a failback after a planned failover).
    role_changes: usize,
}

/// Where a run is: what [`settle`] may change when a command issued concurrently met the
/// orchestrator's crash.
struct Runner<'a> {
    lab: &'a Lab,
    watch: &'a Arc<Watch>,
    plan: &'a Plan,
    redirects: &'a Arc<Mutex<Vec<(String, Side)>>>,
    wakes: &'a Wakes,
    crashed: &'a AtomicBool,
    session: Arc<DstSession>,
    resumed: bool,
    trace: Vec<String>,
    outcomes: Vec<String>,
}

impl Runner<'_> {
    /// Issues the commands of `pending` whose moment has not come (the command they arrived
    /// during ended first), waits for each, and checks how it ended: never a panic or a hang,
    /// within bounded virtual time, in its goal state when it succeeded, with a typed error
    /// otherwise. A command that died with the orchestrator is issued again on the resumed
    /// session, as its user would.
    async fn settle(&mut self, pending: &mut Vec<Pending>) -> Settled {
        let (lab, watch) = (self.lab, self.watch);
        let link = &lab.spec.link;
        let main_state = self.session.machine().state().clone();
        let main_primary = lab.sim.with_world(|w| w.primary_of(link));
        let mut settled = Settled::default();
        for p in pending.drain(..) {
            let waiting = {
                let mut wakes = self.wakes.lock().unwrap_or_else(PoisonError::into_inner);
                let before = wakes.len();
                wakes.retain(|(_, n)| !Arc::ptr_eq(n, &p.notify));
                before != wakes.len()
            };
            if waiting {
                p.notify.notify_one();
            }
            let what = format!("{:?} during {:?}", p.command, p.during);
            let mut handle = p.handle;
            // Virtual time never waits, so only a deadlock reaches this bound.
            let joined = tokio::time::timeout(Duration::from_secs(600), &mut handle).await;
            let mut issued = match joined {
                Err(_) => {
                    handle.abort();
                    watch.violation(format!("{what} never returned"));
                    continue;
                }
                Ok(Err(e)) => {
                    watch.violation(format!("{what} panicked: {e}"));
                    continue;
                }
                Ok(Ok(issued)) => issued,
            };
            // The orchestrator died before the command ran (it waited for the command that
            // crashed, then met a dead session): its user issues it again on the new one.
            if !Arc::ptr_eq(&p.session, &self.session) {
                issued = issue(&self.session, &lab.sim, link, p.command).await;
            }
            if matches!(issued.result, Err(SessionError::Journal(_)))
                && self.crashed.load(Ordering::SeqCst)
            {
                if !self.resumed {
                    // The orchestrator died while this command ran: a new process resumes
                    // the journal, which continues it.
                    self.resumed = true;
                    self.trace.push(format!("crash during {what}"));
                    match open(lab, watch, None, self.plan.seed, self.redirects, self.wakes) {
                        Ok(s) => self.session = s,
                        Err(e) => {
                            watch.violation(format!("resume after the crash failed: {e}"));
                            continue;
                        }
                    }
                    let result = self.session.resume().await;
                    let state = self.session.machine().state().clone();
                    if p.command.goal().is_some_and(|g| g.reached(&state)) || result.is_err() {
                        issued = Issued {
                            result,
                            issued_in: issued.issued_in,
                            issued: issued.issued,
                            ended: lab.sim.now(),
                            state,
                            primary: lab.sim.with_world(|w| w.primary_of(link)),
                        };
                    }
                }
                if matches!(issued.result, Err(SessionError::Journal(_))) {
                    // Its user issues it again.
                    issued = issue(&self.session, &lab.sim, link, p.command).await;
                }
            }
            watch.count();
            let took = issued.ended.since(issued.issued);
            if took > Duration::from_secs(8 * 24 * 3600) {
                watch.violation(format!("{what} took {} s of virtual time", took.as_secs()));
            }
            let outcome = match &issued.result {
                Ok(()) => {
                    if !p.command.reached(&issued.state) {
                        watch.violation(format!(
                            "{what} returned Ok in state {}",
                            issued.state.name()
                        ));
                    }
                    if p.command != Concurrent::Health
                        && (issued.state.name() != main_state.name()
                            || issued.primary != main_primary)
                    {
                        settled.diverted = true;
                    }
                    if matches!(p.command, Concurrent::Failover | Concurrent::Failback)
                        && issued.primary != main_primary
                    {
                        settled.role_changes += 1;
                    }
                    "ok".to_owned()
                }
                Err(SessionError::Journal(e)) => {
                    watch.violation(format!("{what}: journal error without a crash: {e}"));
                    "journal".to_owned()
                }
                Err(e @ SessionError::Rejected { source, .. })
                    if source.reason.to_string().is_empty() =>
                {
                    watch.violation(format!("{what} was refused without a reason: {source:?}"));
                    error_name(e)
                }
                Err(e) => error_name(e),
            };
            self.trace.push(format!(
                "{what}: issued at {} ms in {}, {outcome} after {} ms, state {}",
                issued.issued.as_millis(),
                issued.issued_in,
                took.as_millis(),
                issued.state.name()
            ));
            let when = if waiting { "as it ended" } else { "in " };
            let state = if waiting { "" } else { issued.issued_in };
            self.outcomes
                .push(format!("{what}, issued {when}{state}: {outcome}"));
        }
        settled
    }
}

/// The short name of a session error, for the counts of outcomes.
fn error_name(e: &SessionError) -> String {
    match e {
        SessionError::Rejected { operation, source } => {
            let reason = format!("{:?}", source.reason);
            let class = reason
                .split(['(', '{', ' '])
                .next()
                .unwrap_or_default()
                .to_owned();
            format!("refused ({operation}: {class} in {})", source.state)
        }
        SessionError::StepFailed(step) => format!("failed ({})", step.code),
        other => format!("{other:?}").chars().take(24).collect(),
    }
}

/// Runs `plan` (with its crash, or without any crash when `crash` is false), with `tweak`
/// applied to the link spec (the mutation tests switch guards off with it).
pub async fn run(plan: &Plan, crash: bool, tweak: &dyn Fn(&mut LinkSpec)) -> RunReport {
    let lab = lab_for(plan, tweak);
    let started = lab.sim.now();
    let memory = MemoryJournal::new();
    let watch = Arc::new(Watch {
        sim: lab.sim.clone(),
        link: lab.spec.link.clone(),
        database: lab.database.clone(),
        journal: memory.clone(),
        forced: AtomicBool::new(false),
        violations: Mutex::new(Vec::new()),
        checks: Mutex::new(0),
    });
    let mut trace = Vec::new();
    for (trigger, fault) in &plan.faults {
        lab.sim.inject(trigger.clone(), fault.clone());
    }
    if plan.kinds.contains(&FaultKind::LogBackupDuringSeeding) {
        lab.sim.inject(
            Trigger::SeedingReaches {
                database: lab.database.clone(),
                percent: 40,
            },
            Fault::LogBackup {
                database: lab.database.clone(),
            },
        );
    }
    let point = match (crash, plan.crash) {
        (true, Some(point)) => point,
        _ => CrashPoint::AfterRecord(u64::MAX),
    };
    let journal = CrashingJournal::new(
        WatchedJournal {
            inner: memory.clone(),
            watch: Arc::clone(&watch),
        },
        point,
    );
    let crashed = journal.crashed_flag();
    let redirects = Arc::new(Mutex::new(Vec::new()));
    let wakes: Wakes = Arc::new(Mutex::new(Vec::new()));
    let mut pending: Vec<Pending> = Vec::new();
    let mut concurrent_outcomes = Vec::new();
    let mut resumed = false;
    let mut session = match open(&lab, &watch, Some(journal), plan.seed, &redirects, &wakes) {
        Ok(s) => s,
        // The process died on its first record: a new one resumes the journal.
        Err(SessionError::Journal(_)) if crashed.load(Ordering::SeqCst) => {
            resumed = true;
            trace.push("crash while creating the session".to_owned());
            match open(&lab, &watch, None, plan.seed, &redirects, &wakes) {
                Ok(s) => s,
                Err(e) => panic!("seed {}: resume after a crash in create: {e}", plan.seed),
            }
        }
        Err(e) => panic!("seed {}: create: {e}", plan.seed),
    };
    let mut stopped_at = None;
    let mut completed_role_changes = 0usize;
    let mut in_flight_lost = 0u64;
    let mut promotions_before = 0usize;
    let two_way = lab.spec.is_two_way();
    // One-way links cut over instead of failing over, and never fail back.
    let script: Vec<Op> = plan
        .script
        .iter()
        .filter_map(|op| match op {
            Op::Planned if !two_way => Some(Op::Cutover),
            Op::Failback if !two_way => None,
            Op::Cutover if !two_way && plan.script.contains(&Op::Planned) => None,
            other => Some(*other),
        })
        .collect();
    // The link is prepared while the application writes, before the first lossless command.
    let script: Vec<Op> = match script.iter().position(|o| o.lossless()) {
        Some(at) if plan.cut_then_stop && plan.tps > 0.0 => {
            let mut with = script.clone();
            with.insert(at, Op::Prepare);
            with
        }
        _ => script,
    };
    'script: for (index, &op) in script.iter().enumerate() {
        if index == 2
            && let Some(jump) = plan.clock_jump
        {
            // The application pauses over the jump (simulating every one of its
            // transactions over days would only cost time).
            let side = redirected_to(&redirects).unwrap_or(Side::SqlServer);
            lab.sim.stop_workload();
            lab.sim.advance(jump);
            if plan.tps > 0.0 {
                workload(&lab, side, plan.tps);
            }
            trace.push(format!("clock jumps {} s", jump.as_secs()));
        }
        let first_lossless = op.lossless() && script[..index].iter().all(|o| !o.lossless());
        let partition_now = if plan.partition_in_role_change {
            first_lossless
        } else {
            op == Op::Start
        };
        if partition_now && let Some((after, duration)) = plan.partition {
            // Into a role change: while its catch-up runs.
            let after = if plan.partition_in_role_change {
                after % 121
            } else {
                after
            };
            lab.sim.inject(
                Trigger::At(lab.sim.now().plus(Duration::from_secs(after))),
                Fault::Partition { duration },
            );
        }
        if first_lossless && plan.cut_then_stop && plan.tps > 0.0 {
            lab.sim.partition(Duration::from_secs(10 * 60));
            lab.sim.advance(Duration::from_secs(1));
            lab.sim.stop_workload();
            trace.push("prepared, network cut, application stopped".to_owned());
        }
        let old_primary = lab.sim.with_world(|w| w.primary_of(&lab.spec.link));
        if op == Op::Planned || op == Op::Failback || op == Op::Forced {
            promotions_before = promotions(&lab.sim, &lab.spec.link);
        }
        let before = lab.sim.now();
        for c in &plan.concurrent {
            let now = match c.during {
                During::Start => op == Op::Start,
                During::FirstRoleChange => first_lossless,
            };
            if now {
                pending.push(spawn_command(
                    &session,
                    &lab,
                    c.command,
                    op,
                    before.plus(c.after),
                    &wakes,
                ));
            }
        }
        let late_writer = first_lossless && !plan.late_writer.is_empty();
        if late_writer {
            for at in &plan.late_writer {
                // (SQL Server is the primary before the first role change.)
                let _ = lab
                    .sim
                    .hold_open_transaction(Side::SqlServer, &lab.database, *at);
            }
            trace.push(format!(
                "a session lingers: {} commits over {} s",
                plan.late_writer.len(),
                plan.late_writer.last().map_or(0, |d| d.as_secs())
            ));
        }
        let (mut attempts, mut retries) = (0, 0);
        let mut result = perform(&session, &lab, op, plan, &watch).await;
        loop {
            match result {
                Ok(()) => break,
                Err(SessionError::Journal(_)) if crashed.load(Ordering::SeqCst) && !resumed => {
                    // The process died here; a new one opens the journal and goes on.
                    resumed = true;
                    trace.push(format!(
                        "crash during {op:?} after {} records",
                        memory.snapshot().len()
                    ));
                    session = match open(&lab, &watch, None, plan.seed, &redirects, &wakes) {
                        Ok(s) => s,
                        Err(e) => {
                            watch.violation(format!("resume after the crash failed: {e}"));
                            stopped_at = Some((op, "resume".to_owned()));
                            break 'script;
                        }
                    };
                    result = session.resume().await;
                    if result.is_ok() && !op.reached(session.machine().state()) {
                        result = perform(&session, &lab, op, plan, &watch).await;
                    }
                }
                Err(e) if e.is_transient() && attempts < 3 => {
                    attempts += 1;
                    trace.push(format!("{op:?}: transient {e}; resume"));
                    lab.sim.advance(Duration::from_secs(60));
                    result = session.resume().await;
                    if result.is_ok() && !op.reached(session.machine().state()) {
                        result = perform(&session, &lab, op, plan, &watch).await;
                    }
                }
                Err(SessionError::Rejected { .. }) if op == Op::Forced && !two_way => {
                    // A one-way link never reverses roles, not even forced: the refusal must
                    // leave the link as it was.
                    watch.forced.store(false, Ordering::SeqCst);
                    watch.count();
                    let now_primary = lab.sim.with_world(|w| w.primary_of(&lab.spec.link));
                    if now_primary != old_primary
                        || !matches!(session.machine().state(), State::Replicating { .. })
                    {
                        watch.violation(format!(
                            "a refused forced failover changed the link: primary {now_primary:?}, state {}",
                            session.machine().state().name()
                        ));
                    }
                    trace.push("Forced refused: the link is one-way".to_owned());
                    continue 'script;
                }
                Err(SessionError::StepFailed(step)) if retries < 2 => {
                    // The operator waits for the cause to pass (a network cut lasts at most
                    // 15 minutes in these worlds) and retries, as the error tells them to.
                    retries += 1;
                    trace.push(format!(
                        "{op:?}: step failed with {}; retry in 20 minutes",
                        step.code
                    ));
                    lab.sim.advance(Duration::from_secs(20 * 60));
                    result = session.retry().await;
                    if result.is_ok() && !op.reached(session.machine().state()) {
                        result = perform(&session, &lab, op, plan, &watch).await;
                    }
                }
                Err(e) => {
                    trace.push(format!("{op:?} failed: {e}"));
                    let code = match &e {
                        SessionError::StepFailed(step) => step.code.clone(),
                        other => format!("{other:?}").chars().take(40).collect(),
                    };
                    stopped_at = Some((op, code));
                    break 'script;
                }
            }
        }
        let took = lab.sim.now().since(before);
        let ended_in = session.machine().state().clone();
        trace.push(format!(
            "{op:?} done in {} s, state {}",
            took.as_secs(),
            ended_in.name()
        ));
        // The commands issued while it ran: they ran after it (or, like `health()`, alongside).
        let settled = {
            let mut runner = Runner {
                lab: &lab,
                watch: &watch,
                plan,
                redirects: &redirects,
                wakes: &wakes,
                crashed: &crashed,
                session: Arc::clone(&session),
                resumed,
                trace: std::mem::take(&mut trace),
                outcomes: std::mem::take(&mut concurrent_outcomes),
            };
            let settled = runner.settle(&mut pending).await;
            (session, resumed, trace, concurrent_outcomes) = (
                runner.session,
                runner.resumed,
                runner.trace,
                runner.outcomes,
            );
            settled
        };
        if late_writer {
            // The lingering session gives up once the role change is done.
            lab.sim.with_world_mut(|w| w.open_transactions.clear());
        }
        // Promise 3: bounded.
        watch.count();
        if took > Duration::from_secs(8 * 24 * 3600) {
            watch.violation(format!("{op:?} took {} s of virtual time", took.as_secs()));
        }
        if !op.reached(&ended_in) {
            watch.violation(format!("{op:?} returned Ok in state {}", ended_in.name()));
        }
        // Promise 1: nothing lost by the data, after a lossless command. No transaction the
        // application was told had committed is ever lost. When the application stopped before
        // the command, nothing was in flight, so no transaction at all may be lost and the new
        // primary holds all of the old one's. An application that stops late writes into the
        // role change: a commit in flight at that moment was never acknowledged (the
        // application sees its connection fail, not a commit); those are counted apart.
        if op.lossless() && !watch.forced.load(Ordering::SeqCst) {
            watch.count();
            let acknowledged = lab.sim.lost_acknowledged_transactions(&lab.database);
            let lost = lab.sim.lost_transactions(&lab.database);
            // (In a cut-then-stop world the application stopped a second after the cut, before
            // the command: what it committed is in SQL Server's log, committed there.)
            let stopped_before = plan.late_stop.is_none() || (plan.cut_then_stop && plan.tps > 0.0);
            if acknowledged > 0 || (stopped_before && lost > 0) {
                watch.violation(format!(
                    "{op:?} lost {lost} transactions, {acknowledged} of them acknowledged as committed"
                ));
            }
            in_flight_lost = lost - acknowledged;
            if let (Some(from), Some(to)) = (
                old_primary,
                lab.sim.with_world(|w| w.primary_of(&lab.spec.link)),
            ) && from != to
                && stopped_before
            {
                let missing = lab.sim.missing_transactions(&lab.database, from, to).0;
                if missing > 0 {
                    watch.violation(format!(
                        "{op:?}: {missing} transactions of {from:?} missing on {to:?}"
                    ));
                }
            }
        }
        // Promise 6: one promotion per role change (and one per role change a command issued
        // meanwhile made after it).
        completed_role_changes += settled.role_changes;
        if matches!(op, Op::Planned | Op::Failback | Op::Forced) {
            completed_role_changes += 1;
            watch.count();
            let made = promotions(&lab.sim, &lab.spec.link) - promotions_before;
            if made != 1 + settled.role_changes {
                watch.violation(format!(
                    "{op:?} and the commands issued meanwhile ({} role changes) promoted {made} times",
                    settled.role_changes
                ));
            }
        }
        // The application comes back where the redirect hook sent it, for a while.
        if !settled.diverted
            && matches!(op, Op::Planned | Op::Failback)
            && plan.tps > 0.0
            && let Some(side) = redirected_to(&redirects)
        {
            // Refusals so far (an application stopping late writes to the old primary
            // until the role change, and is refused from then on: never a loss).
            lab.sim.stop_workload();
            let refused_before = lab.sim.workload_stats().refused;
            workload(&lab, side, plan.tps);
            lab.sim.advance(Duration::from_secs(30));
            let refused = lab.sim.stop_workload().refused - refused_before;
            watch.count();
            if refused > 0 {
                watch.violation(format!(
                        "after {op:?} the application, redirected to {side:?}, had {refused} writes refused"
                    ));
            }
        }
        watch.one_writable_primary(&format!("after {op:?}"));
        if settled.diverted {
            trace.push(format!(
                "a command issued during {op:?} left the link in {}: the script ends",
                session.machine().state().name()
            ));
            break 'script;
        }
    }
    if !pending.is_empty() {
        // The script stopped at a command during which others were issued.
        let mut runner = Runner {
            lab: &lab,
            watch: &watch,
            plan,
            redirects: &redirects,
            wakes: &wakes,
            crashed: &crashed,
            session: Arc::clone(&session),
            resumed,
            trace: std::mem::take(&mut trace),
            outcomes: std::mem::take(&mut concurrent_outcomes),
        };
        let settled = runner.settle(&mut pending).await;
        (session, resumed, trace, concurrent_outcomes) = (
            runner.session,
            runner.resumed,
            runner.trace,
            runner.outcomes,
        );
        completed_role_changes += settled.role_changes;
        lab.sim.with_world_mut(|w| w.open_transactions.clear());
    }
    // Each side of the link removed at most once.
    for side in [Side::SqlServer, Side::ManagedInstance] {
        watch.count();
        let removed = lab
            .sim
            .events()
            .iter()
            .filter(|e| matches!(&e.kind, EventKind::LinkRemoved { link, side: s } if *link == lab.spec.link && *s == side))
            .count();
        if removed > 1 {
            watch.violation(format!("the link was removed {removed} times on {side:?}"));
        }
    }
    lab.sim.stop_workload();
    // Let the link settle so what is still in flight is not counted as missing: past the end
    // of any network cut (at most 10 minutes after its command began, for 15 minutes).
    lab.sim.advance(Duration::from_secs(30 * 60));
    // Promise 7: a split brain after a forced failover is seen.
    if watch.forced.load(Ordering::SeqCst) && stopped_at.is_none() {
        let both = lab.sim.with_world(|w| {
            w.writable(Side::SqlServer, &lab.database).is_ok()
                && w.writable(Side::ManagedInstance, &lab.database).is_ok()
                && w.role(Side::SqlServer, &lab.spec.link).is_some()
        });
        if both {
            watch.count();
            let seen = session.watch(Duration::from_secs(120)).await;
            if !matches!(seen, Err(SessionError::SplitBrain))
                && session.status().split_brain_since.is_none()
            {
                watch.violation(format!(
                    "two primaries after the forced failover, not reported within 120 s: {seen:?}"
                ));
            }
        }
    }
    // Promise 6: the redirect hook.
    {
        let calls = redirects.lock().unwrap_or_else(PoisonError::into_inner);
        let mut per_id: BTreeMap<&str, usize> = BTreeMap::new();
        for (id, _) in calls.iter() {
            *per_id.entry(id.as_str()).or_default() += 1;
        }
        watch.count();
        for (id, n) in &per_id {
            if *n > 1 && !resumed {
                watch.violation(format!("redirect {id} ran {n} times without a crash"));
            }
            if *n > 2 {
                watch.violation(format!("redirect {id} ran {n} times"));
            }
        }
        if stopped_at.is_none() && per_id.len() < completed_role_changes {
            watch.violation(format!(
                "{completed_role_changes} role changes but {} redirects",
                per_id.len()
            ));
        }
    }
    // Promise 3: a run ends in a terminal state, a goal state, or Failed.
    let state = session.machine().state().clone();
    watch.count();
    let settled = state.is_terminal()
        || matches!(
            state,
            State::Failed { .. }
                | State::FailedOver { .. }
                | State::Replicating { .. }
                | State::SplitBrain
        );
    if !settled {
        watch.violation(format!("the run ended in state {}", state.name()));
    }
    if stopped_at.is_some() && !matches!(state, State::Failed { .. }) && !state.is_terminal() {
        trace.push(format!("stopped in {}", state.name()));
    }
    let total = lab.sim.now().since(started);
    if total > Duration::from_secs(40 * 24 * 3600) {
        watch.violation(format!(
            "the run took {} s of virtual time",
            total.as_secs()
        ));
    }
    let outcome = Outcome {
        state: state.name(),
        primary: lab.sim.with_world(|w| w.primary_of(&lab.spec.link)),
        missing_on_instance: lab
            .sim
            .missing_transactions(&lab.database, Side::SqlServer, Side::ManagedInstance)
            .0,
        lost: lab.sim.lost_transactions(&lab.database),
        stopped_at,
    };
    // Promise 1 by rows and checksums: with nothing forced, once the link has settled, every
    // table holds the same rows with the same checksum on both copies.
    if !watch.forced.load(Ordering::SeqCst)
        && outcome.stopped_at.is_none()
        && matches!(state, State::Replicating { .. } | State::FailedOver { .. })
    {
        watch.count();
        if let Some(parity) = lab.sim.parity(&lab.database)
            && !parity.all_match()
        {
            watch.violation(format!(
                "the copies differ after the link settled: {parity:?}"
            ));
        }
    }
    // A forced failover that lost data must say so: a data-loss report, the link's state
    // saying data loss was possible, or a split brain.
    let said_so = !session.status().data_loss.is_empty()
        || matches!(
            state,
            State::SplitBrain
                | State::FailedOver {
                    data_loss_possible: true,
                    ..
                }
        );
    if watch.forced.load(Ordering::SeqCst) && outcome.lost > 0 && !said_so {
        watch.violation(format!(
            "the forced failover lost {} transactions and reported none",
            outcome.lost
        ));
    }
    let violations = watch
        .violations
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let checks = *watch.checks.lock().unwrap_or_else(PoisonError::into_inner);
    RunReport {
        plan: plan.clone(),
        outcome,
        violations,
        checks,
        crashed: resumed,
        records: memory.snapshot().len(),
        trace,
        in_flight_lost,
        diverged_by_timing: false,
        concurrent: concurrent_outcomes,
    }
}

/// Runs seed `seed`: the plan as it is and, when it crashes, also without the crash, whose
/// outcome the crashed run must equal (promise 4).
pub async fn run_seed(seed: u64) -> RunReport {
    run_seed_with(seed, &|_| {}).await
}

/// How many threads [`run_seeds`] uses: `MILINK_DST_THREADS`, else the machine's cores (at
/// most 8).
pub fn dst_threads() -> usize {
    std::env::var("MILINK_DST_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(8)))
}

/// Runs every seed of `seeds` ([`run_seed_with`] with `tweak`) on [`dst_threads`] threads, each
/// with its own single-threaded runtime. Each seed is its own world on its own virtual clock,
/// so a seed's run is the same whichever thread runs it and whatever runs beside it. Returns,
/// in the order of `seeds`, each seed with its report and the wall time it took.
pub fn run_seeds(
    seeds: &[u64],
    tweak: &(dyn Fn(&mut LinkSpec) + Sync),
) -> Vec<(u64, RunReport, Duration)> {
    let threads = dst_threads().min(seeds.len()).max(1);
    let mut out: Vec<(usize, u64, RunReport, Duration)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a runtime for the simulation");
                    let mut mine = Vec::new();
                    for (i, &seed) in seeds.iter().enumerate().skip(t).step_by(threads) {
                        let started = std::time::Instant::now();
                        let report = runtime.block_on(run_seed_with(seed, tweak));
                        mine.push((i, seed, report, started.elapsed()));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a simulation thread"))
            .collect()
    });
    out.sort_by_key(|(i, ..)| *i);
    out.into_iter()
        .map(|(_, seed, report, took)| (seed, report, took))
        .collect()
}

/// [`run_seed`] with `tweak` applied to the link spec.
pub async fn run_seed_with(seed: u64, tweak: &dyn Fn(&mut LinkSpec)) -> RunReport {
    let plan = plan(seed);
    let mut report = run(&plan, true, tweak).await;
    if report.crashed {
        let reference = run(&plan, false, tweak).await;
        report.checks += reference.checks + 1;
        if !same_ending(&reference, &report) && timing_explains(&reference, &report) {
            // A fault triggered by the seeding's progress landed in another phase: the crash
            // changed the timing, not the machine's decisions.
            report.diverged_by_timing = true;
        } else if !same_ending(&reference, &report) {
            report.violations.push(format!(
                "resumed after the crash: {:?}; without the crash: {:?}",
                report.outcome, reference.outcome
            ));
        }
        report.violations.extend(
            reference
                .violations
                .into_iter()
                .map(|v| format!("(run without the crash) {v}")),
        );
    }
    report
}

/// Whether a crashed-and-resumed run ended like the same run without the crash: the same state,
/// primary and stopping command; and, where nothing was forced and every command finished, the
/// same data on both copies. (A forced failover loses what was in flight at its moment, so
/// does a role change an application writes into, and a failed run leaves the application
/// writing to a link that no longer replicates: those counts depend on timing, which a crash
/// changes.)
fn same_ending(reference: &RunReport, resumed: &RunReport) -> bool {
    let (a, b) = (&reference.outcome, &resumed.outcome);
    // (A command issued while another ran, other than `health()`, runs when that one lets
    // go of the session, which the crash moves: after a failed attempt, for example, rather
    // than after the retry.)
    let interleaved = reference
        .plan
        .concurrent
        .iter()
        .any(|c| c.command != Concurrent::Health);
    let comparable = !reference.plan.script.contains(&Op::Forced)
        && !interleaved
        && (reference.plan.late_stop.is_none()
            || (reference.plan.cut_then_stop && reference.plan.tps > 0.0))
        && a.stopped_at.is_none()
        && b.stopped_at.is_none();
    a.state == b.state
        && a.primary == b.primary
        && a.stopped_at.as_ref().map(|(op, _)| *op) == b.stopped_at.as_ref().map(|(op, _)| *op)
        && (!comparable || (a.lost == b.lost && a.missing_on_instance == b.missing_on_instance))
}

/// Whether the two runs differ only because of timing the crash moved: the plan's log backup
/// during seeding (triggered when the seeding reaches 40 %) broke the seeding in one of them
/// (that run stopped at `start` with error 1412, as the service does), or a command issued while
/// another ran ended otherwise.
fn timing_explains(reference: &RunReport, resumed: &RunReport) -> bool {
    let broke = |r: &RunReport| matches!(&r.outcome.stopped_at, Some((Op::Start, code)) if code == "sql:1412");
    let by_log_backup = reference
        .plan
        .kinds
        .contains(&FaultKind::LogBackupDuringSeeding)
        && (broke(reference) != broke(resumed));
    // A command issued while another ran met that one elsewhere in the two runs (before or
    // after a failed attempt, or a retry), and so ended otherwise: each run's own checks hold.
    by_log_backup || reference.concurrent != resumed.concurrent
}

/// The one-line command that replays `seed` with its trace.
pub fn replay_command(seed: u64) -> String {
    format!("MILINK_DST_SEED={seed} cargo test -p milink-tests --release --test dst -- --nocapture")
}
