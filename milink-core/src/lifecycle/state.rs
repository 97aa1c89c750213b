//! The machine's states: where a link is in its life, with the data each phase needs to go on.
//!
//! A [`State`] is plain data (serde, `Clone`, `PartialEq`). Its [`Phase`] is the variant without
//! data; the phase names are what the edge table ([`super::table::EDGES`]), the diagram and the
//! `Phase` progress events use.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::names::{DatabaseName, Lsn};
use crate::time::Timestamp;

use super::effect::{AvailabilityMode, OperationRef, StepId};
use super::input::{CutoverOptions, StepError, SyncHealth, SyncState};
use super::spec::Side;

/// The state without its data: one name per phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Phase {
    /// Nothing decided yet.
    Draft,
    /// The readiness assessment found no blockers.
    Assessed,
    /// Master key, endpoint certificate and mirroring endpoint on SQL Server.
    PreparingSource,
    /// Certificates exchanged both ways, Azure root CAs trusted.
    ExchangingTrust,
    /// The availability group on SQL Server.
    CreatingAg,
    /// The distributed availability group on SQL Server.
    CreatingDag,
    /// The managed instance joins the link (ARM, long-running).
    JoiningInstance,
    /// The Arc route: Arc's `createManagedInstanceLink` makes SQL Server's side and the
    /// instance's in one long-running operation.
    CreatingLinkThroughArc,
    /// Automatic seeding of the secondary.
    Seeding,
    /// Steady state: the initial primary replicates to the other side.
    Replicating,
    /// Switching both sides to synchronous commit before a role change.
    PreparingFailover,
    /// Waiting until `last_hardened_lsn` is equal and stable on both sides.
    CatchingUp,
    /// A planned role change (T-SQL `FAILOVER` or ARM `Planned`).
    FailingOver,
    /// A forced role change (possible data loss).
    ForcingFailover,
    /// Waiting until both sides report the expected roles.
    VerifyingRoles,
    /// Telling the application to connect to the new primary.
    Redirecting,
    /// Steady state: the side that was not the initial primary is primary.
    FailedOver,
    /// Both sides report PRIMARY; waiting for the caller to pick the side to keep.
    SplitBrain,
    /// Demoting one side after a split brain.
    Repairing,
    /// Cutover: waiting for the managed instance's first full backup.
    AwaitingFirstFullBackup,
    /// One-way cutover: SQL Server stops taking writes (`SET (ROLE = SECONDARY)`) and the
    /// instance is checked to hold its whole log before the link is removed.
    Fencing,
    /// Cutover: deleting the link resource on the managed instance.
    RemovingLink,
    /// Cutover: dropping the distributed availability group on SQL Server.
    DroppingDag,
    /// Cutover: dropping the availability group on SQL Server.
    DroppingAg,
    /// The migration is done (terminal).
    Completed,
    /// Undoing the synchronous-commit switch of an abandoned role change.
    AbortingFailover,
    /// Removing what link creation made.
    Cancelling,
    /// Link creation was undone (terminal).
    Cancelled,
    /// A step failed; waiting for resume, retry or cancel.
    Failed,
}

impl Phase {
    /// Every phase, in lifecycle order.
    pub const ALL: [Phase; 29] = [
        Phase::Draft,
        Phase::Assessed,
        Phase::PreparingSource,
        Phase::ExchangingTrust,
        Phase::CreatingAg,
        Phase::CreatingDag,
        Phase::JoiningInstance,
        Phase::CreatingLinkThroughArc,
        Phase::Seeding,
        Phase::Replicating,
        Phase::PreparingFailover,
        Phase::CatchingUp,
        Phase::FailingOver,
        Phase::ForcingFailover,
        Phase::VerifyingRoles,
        Phase::Redirecting,
        Phase::FailedOver,
        Phase::SplitBrain,
        Phase::Repairing,
        Phase::AwaitingFirstFullBackup,
        Phase::Fencing,
        Phase::RemovingLink,
        Phase::DroppingDag,
        Phase::DroppingAg,
        Phase::Completed,
        Phase::AbortingFailover,
        Phase::Cancelling,
        Phase::Cancelled,
        Phase::Failed,
    ];

    /// The phase name used in the edge table, the diagram and progress events.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Draft => "Draft",
            Phase::Assessed => "Assessed",
            Phase::PreparingSource => "PreparingSource",
            Phase::ExchangingTrust => "ExchangingTrust",
            Phase::CreatingAg => "CreatingAg",
            Phase::CreatingDag => "CreatingDag",
            Phase::JoiningInstance => "JoiningInstance",
            Phase::CreatingLinkThroughArc => "CreatingLinkThroughArc",
            Phase::Seeding => "Seeding",
            Phase::Replicating => "Replicating",
            Phase::PreparingFailover => "PreparingFailover",
            Phase::CatchingUp => "CatchingUp",
            Phase::FailingOver => "FailingOver",
            Phase::ForcingFailover => "ForcingFailover",
            Phase::VerifyingRoles => "VerifyingRoles",
            Phase::Redirecting => "Redirecting",
            Phase::FailedOver => "FailedOver",
            Phase::SplitBrain => "SplitBrain",
            Phase::Repairing => "Repairing",
            Phase::AwaitingFirstFullBackup => "AwaitingFirstFullBackup",
            Phase::Fencing => "Fencing",
            Phase::RemovingLink => "RemovingLink",
            Phase::DroppingDag => "DroppingDag",
            Phase::DroppingAg => "DroppingAg",
            Phase::Completed => "Completed",
            Phase::AbortingFailover => "AbortingFailover",
            Phase::Cancelling => "Cancelling",
            Phase::Cancelled => "Cancelled",
            Phase::Failed => "Failed",
        }
    }

    /// Completed and Cancelled accept nothing more.
    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Completed | Phase::Cancelled)
    }
}

/// A phase equals its name (`Phase::Seeding == "Seeding"`), as status and events show it.
impl PartialEq<&str> for Phase {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

impl PartialEq<str> for Phase {
    fn eq(&self, other: &str) -> bool {
        self.name() == other
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Sub-steps of [`State::PreparingSource`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PrepareStep {
    /// The database master key in `master`.
    MasterKey,
    /// The endpoint certificate.
    EndpointCertificate,
    /// The database mirroring endpoint.
    Endpoint,
}

/// Sub-steps of [`State::ExchangingTrust`], in the documented order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrustStep {
    /// Read SQL Server's endpoint certificate public key.
    ExportCertificate,
    /// Upload it to the managed instance as a server trust certificate (may be long-running).
    UploadCertificate {
        /// The DER public key read in the previous step.
        public_key: Vec<u8>,
        /// The accepted ARM operation, once the upload was accepted.
        operation: Option<OperationRef>,
    },
    /// Read the managed instance's `DATABASE_MIRRORING` endpoint certificate.
    GetInstanceCertificate,
    /// Import it into SQL Server `master`, named after the instance FQDN.
    ImportInstanceCertificate {
        /// The DER certificate read in the previous step.
        certificate: Vec<u8>,
    },
    /// Trust the Azure root CAs for `*.database.windows.net`.
    RootCertificates,
}

/// Sub-steps of [`State::CreatingAg`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AgStep {
    /// `CREATE AVAILABILITY GROUP`.
    Create,
    /// `GRANT CREATE ANY DATABASE` (managed instance as initial primary only).
    GrantCreateAnyDatabase,
}

/// Seeding progress of one database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedingProgress {
    /// The database.
    pub database: DatabaseName,
    /// Percent done, once either side reported it.
    pub percent: Option<u8>,
    /// The most recent link error either side reports for the database. Errors that end seeding
    /// (1408/1412 when a log backup truncated the log, 41977, an `*Error` replica state) fail the
    /// phase at once (see [`super::seeding`]); others, such as a disconnect, are kept here.
    #[serde(default)]
    pub last_error: Option<String>,
}

/// What a role change is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Goal {
    /// A planned failover to the secondary; ends in [`State::FailedOver`].
    Failover,
    /// A planned failover back to the initial primary; ends in [`State::Replicating`].
    Failback,
    /// A migration cutover; ends in [`State::Completed`] with the link removed.
    Cutover(CutoverOptions),
    /// Only the switch to synchronous commit, ahead of a role change ([`super::Command::Prepare`]);
    /// ends in the steady state it started from.
    Prepare,
}

/// A steady state a role change starts from, and returns to when it is abandoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Steady {
    /// [`State::Replicating`]: the initial primary is primary.
    Replicating,
    /// [`State::FailedOver`].
    FailedOver {
        /// The primary side.
        primary: Side,
        /// Whether the failover that led here may have lost data.
        data_loss_possible: bool,
    },
}

impl Steady {
    /// The primary side in this steady state.
    pub fn primary(self, initial_primary: Side) -> Side {
        match self {
            Steady::Replicating => initial_primary,
            Steady::FailedOver { primary, .. } => primary,
        }
    }

    /// The state this steady state is, with no observation yet.
    pub fn to_state(self) -> State {
        match self {
            Steady::Replicating => State::Replicating {
                mode: None,
                health: None,
                lag_seconds: None,
            },
            Steady::FailedOver {
                primary,
                data_loss_possible,
            } => State::FailedOver {
                primary,
                data_loss_possible,
            },
        }
    }
}

/// A planned role change in preparation: what for, from where, to which side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// What the role change is for.
    pub goal: Goal,
    /// The steady state it started from (and returns to if cancelled).
    pub from: Steady,
    /// The side that becomes primary.
    pub target: Side,
    /// The DAG availability mode before the switch to synchronous commit, restored on cancel.
    pub restore_mode: Option<AvailabilityMode>,
    /// The switch to synchronous commit was skipped because the last reading showed it done
    /// (by [`super::Command::Prepare`]); a gate reading that finds a side asynchronous makes it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prepared: bool,
    /// An attempt of this role change (a FAILOVER, or the one-way fence) left the roles as
    /// they were and the gate runs again: the long `stability_window` applies whatever the
    /// workload, long enough for the service's lagging readings to show an operation that
    /// still runs (`LinkFailoverInProgress`) before anything is sent again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retried: bool,
}

/// Progress of an ARM call issued next to a T-SQL call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArmCall {
    /// Issued; waiting for the reply.
    Requested,
    /// Accepted; the operation is polled (the URL survives a crash).
    Accepted(OperationRef),
    /// Finished.
    Done,
}

/// How a planned failover is carried out (chosen from the SQL Server build's capabilities).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FailoverVia {
    /// `ALTER AVAILABILITY GROUP [dag] FAILOVER` on SQL Server as primary (2022 CU13+, 2025).
    Tsql,
    /// `POST …/failover` on the managed instance's link resource.
    Arm,
    /// The Arc route: `failoverMiLink` (`force: false`) on SQL Server's distributed availability
    /// group, which switches to synchronous commit, waits for SYNCHRONIZED and fails over inside
    /// the Arc extension.
    Arc,
}

/// Progress of a call that must not run twice: a role change (planned or forced failover,
/// split-brain demotion) or the removal of the link resource.
///
/// Such a call is never re-issued blindly: after a crash that lost its reply, or a failure, the
/// machine first reads the link (both sides' roles, or whether the link resource still exists)
/// and issues the call again only if it did not take effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RoleChange {
    /// Reading the link before (re-)issuing the call.
    Checking,
    /// The call was issued; waiting for the reply.
    Issued,
    /// The ARM operation was accepted and is polled.
    Accepted(OperationRef),
}

/// Reads a [`RoleChange`] also from the `operation: Option<OperationRef>` field that
/// ForcingFailover, RemovingLink and the cancel's DeleteLink step had before they tracked the
/// check: `null` was an issued call, an operation an accepted one.
fn role_change_or_operation<'de, D>(deserializer: D) -> Result<RoleChange, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Change(RoleChange),
        Operation(Option<OperationRef>),
    }
    Ok(match Either::deserialize(deserializer)? {
        Either::Change(change) => change,
        Either::Operation(None) => RoleChange::Issued,
        Either::Operation(Some(op)) => RoleChange::Accepted(op),
    })
}

/// How to abandon a cutover or role change before the point of no return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Abort {
    /// The steady state to return to.
    pub back_to: Steady,
    /// The availability mode to restore first, if it was changed.
    pub restore_mode: Option<AvailabilityMode>,
}

/// Where the machine goes once a role change is verified and the application redirected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Then {
    /// [`State::FailedOver`] with the new primary.
    FailedOver {
        /// Whether data may have been lost.
        data_loss_possible: bool,
    },
    /// [`State::Replicating`] (the initial primary is primary again).
    Replicating,
    /// Cutover continues: wait for the first full backup.
    AwaitFirstFullBackup {
        /// Cutover options.
        options: CutoverOptions,
        /// A full backup counts only if it finished at or after this time.
        backup_after: Option<Timestamp>,
        /// How to abandon the rest of the cutover.
        abort: Abort,
    },
    /// Cutover continues: drop the DAG (the link is already removed).
    DropDag {
        /// Cutover options.
        options: CutoverOptions,
    },
}

/// Sub-steps of [`State::Cancelling`], in removal order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CancelStep {
    /// Delete the link resource on the managed instance (may be long-running).
    DeleteLink {
        /// Progress of the `DELETE` (checked against the link's existence before it is sent
        /// again).
        #[serde(alias = "operation", deserialize_with = "role_change_or_operation")]
        removal: RoleChange,
    },
    /// Drop the distributed availability group on SQL Server.
    DropDag,
    /// Drop the availability group on SQL Server.
    DropAg,
}

/// Sub-steps of [`State::Fencing`].
///
/// A one-way link never reverses roles, so SQL Server stays PRIMARY and writable until the link
/// is removed: a commit between the last gate reading and the `DELETE` would never reach the
/// instance. The fence closes that window with the documented statement that makes a DAG's
/// global primary stop taking writes, `ALTER AVAILABILITY GROUP [dag] SET (ROLE = SECONDARY)`,
/// then checks that the instance hardened SQL Server's whole log, and only then removes the
/// link. If the instance does not catch up, the fence is undone with
/// `FORCE_FAILOVER_ALLOW_DATA_LOSS` on SQL Server, which holds the longer log and so loses
/// nothing, and the catch-up gate runs again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FenceStep {
    /// `SET (ROLE = SECONDARY)` on SQL Server (a role change: read the roles before re-sending).
    Demote {
        /// Progress of the call.
        change: RoleChange,
    },
    /// Reading both sides until SQL Server's end of log equals the instance's hardened LSN.
    Verify {
        /// When a reading first showed SQL Server ahead of the instance (the instance's ARM
        /// reading may lag; a difference that outlasts the stability window is real).
        behind_since: Option<Timestamp>,
    },
    /// `FORCE_FAILOVER_ALLOW_DATA_LOSS` on SQL Server: SQL Server takes writes again.
    Undo {
        /// Progress of the call.
        change: RoleChange,
        /// Abandon the cutover afterwards (a cancel), instead of running the gate again.
        cancel: bool,
    },
}

/// Evidence that a role change or the link's removal lost transactions: the old primary holds
/// log the side that is primary now never hardened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataLoss {
    /// The database.
    pub database: DatabaseName,
    /// The side whose log is longer (the old primary).
    pub side: Side,
    /// Its end of log (or `last_hardened_lsn`).
    pub end_of_log: Lsn,
    /// What the other side hardened.
    pub hardened: Option<Lsn>,
    /// When the machine saw it.
    pub seen_at: Timestamp,
    /// What happened: `"after the failover"`, `"after the link was removed"`, …
    pub context: String,
}

impl fmt::Display for DataLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DATA LOSS {}: {} ended its log at {} but {} hardened {} (seen {} {})",
            self.database,
            side_name(self.side),
            self.end_of_log,
            side_name(self.side.other()),
            match self.hardened {
                Some(l) => l.to_string(),
                None => "nothing".to_owned(),
            },
            self.seen_at,
            self.context
        )
    }
}

/// LSNs found equal on both sides, and since when they have not moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StableLsns {
    /// `last_hardened_lsn` per database, equal on both sides.
    pub lsns: Vec<(DatabaseName, Lsn)>,
    /// When these values were first read.
    pub since: Timestamp,
    /// How many consecutive readings returned exactly these values.
    pub readings: u32,
    /// What the current primary's workload looked like, read after these values were first
    /// seen: `Some(true)` no client session on the link's databases (the short
    /// `quiet_stability_window` applies), `Some(false)` sessions or unreadable (the
    /// `stability_window`), `None` not read yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet: Option<bool>,
    /// Every reading of these values read the managed instance live, over T-SQL on its
    /// endpoint ([`crate::lifecycle::SideView::live`]): with the workload quiet, the shorter
    /// `live_quiet_stability_window` applies.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub live: bool,
}

/// Why the catch-up gate is still closed (shown in the state and in the timeout error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CatchUpBlocker {
    /// A side's DAG replica is not in synchronous commit.
    ModeNotSynchronous {
        /// The side.
        side: Side,
        /// Its reported mode.
        mode: Option<AvailabilityMode>,
    },
    /// The sides' roles are not the expected ones (old primary PRIMARY, target SECONDARY).
    RolesNotAsExpected,
    /// A database on the future primary is not SYNCHRONIZED.
    NotSynchronized {
        /// The database.
        database: DatabaseName,
        /// Its state, or `None` when the side did not report the database.
        state: Option<SyncState>,
    },
    /// A side did not report `last_hardened_lsn` for a database.
    LsnMissing {
        /// The database.
        database: DatabaseName,
        /// The side.
        side: Side,
    },
    /// `last_hardened_lsn` differs between the sides.
    LsnsNotEqual {
        /// The database.
        database: DatabaseName,
        /// SQL Server's value.
        source: Lsn,
        /// The managed instance's value.
        instance: Lsn,
    },
    /// The LSNs are equal but moved since the previous reading (the workload is still running).
    LsnsStillMoving,
    /// Both sides report PRIMARY, since then (a split brain if it lasts the stability window).
    BothPrimary {
        /// First seen.
        since: Timestamp,
    },
    /// The LSNs are equal and unchanged, but not yet for the whole stability window.
    Stabilizing {
        /// Unchanged since.
        since: Timestamp,
    },
}

impl fmt::Display for CatchUpBlocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatchUpBlocker::ModeNotSynchronous { side, mode } => write!(
                f,
                "{} is not in synchronous commit (reported {})",
                side_name(*side),
                match mode {
                    Some(AvailabilityMode::SynchronousCommit) => "SYNCHRONOUS_COMMIT",
                    Some(AvailabilityMode::AsynchronousCommit) => "ASYNCHRONOUS_COMMIT",
                    None => "nothing",
                }
            ),
            CatchUpBlocker::RolesNotAsExpected => f.write_str(
                "the sides do not report the expected roles (current primary PRIMARY, target SECONDARY)",
            ),
            CatchUpBlocker::NotSynchronized { database, state } => match state {
                Some(s) => write!(f, "database {database} is {s:?}, not SYNCHRONIZED"),
                None => write!(f, "database {database} is not reported by the future primary"),
            },
            CatchUpBlocker::LsnMissing { database, side } => write!(
                f,
                "{} reports no last_hardened_lsn for database {database}",
                side_name(*side)
            ),
            CatchUpBlocker::LsnsNotEqual {
                database,
                source,
                instance,
            } => write!(
                f,
                "last_hardened_lsn of database {database} differs: SQL Server {source}, managed instance {instance}"
            ),
            CatchUpBlocker::BothPrimary { since } => {
                write!(f, "both sides report PRIMARY since {since}")
            }
            CatchUpBlocker::LsnsStillMoving => {
                f.write_str("last_hardened_lsn is equal but still moving (is the workload stopped?)")
            }
            CatchUpBlocker::Stabilizing { since } => {
                write!(f, "last_hardened_lsn equal and unchanged since {since}")
            }
        }
    }
}

pub(crate) fn side_name(side: Side) -> &'static str {
    match side {
        Side::SqlServer => "SQL Server",
        Side::ManagedInstance => "the managed instance",
    }
}

/// Where the link is in its life, with the data the current phase needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    /// Nothing decided yet; waiting for the assessment verdict.
    Draft,
    /// Ready; waiting for `Start`.
    Assessed,
    /// Preparing SQL Server.
    PreparingSource {
        /// The current sub-step.
        step: PrepareStep,
    },
    /// Exchanging certificates between the sides.
    ExchangingTrust {
        /// The current sub-step.
        step: TrustStep,
    },
    /// Creating the availability group on SQL Server.
    CreatingAg {
        /// The current sub-step.
        step: AgStep,
    },
    /// Creating the distributed availability group on SQL Server.
    CreatingDag,
    /// The managed instance joins the link.
    JoiningInstance {
        /// The accepted ARM operation (`PUT …/distributedAvailabilityGroups/{link}`), kept so a
        /// crash does not lose it.
        operation: Option<OperationRef>,
    },
    /// The Arc route: Arc's `createManagedInstanceLink` runs. Its accepted operation is kept
    /// (journaled with the observation) and polled after a resume, never sent again; a create
    /// whose answer was lost is judged by a reading of the link first.
    CreatingLinkThroughArc {
        /// Progress of the operation.
        change: RoleChange,
    },
    /// Seeding the secondary.
    Seeding {
        /// Progress per database.
        databases: Vec<SeedingProgress>,
    },
    /// The initial primary replicates to the other side.
    Replicating {
        /// The primary's DAG availability mode, as last read.
        mode: Option<AvailabilityMode>,
        /// The worst synchronization health of the secondary's databases, as last read.
        health: Option<SyncHealth>,
        /// The largest replication lag in seconds, as last read.
        lag_seconds: Option<u64>,
    },
    /// Switching both sides to synchronous commit.
    PreparingFailover {
        /// The role change being prepared.
        plan: Plan,
        /// SQL Server's DAG mode change finished.
        source_done: bool,
        /// The managed instance's `replicationMode` change.
        instance: ArmCall,
    },
    /// Waiting for the LSN gate.
    CatchingUp {
        /// The role change being prepared.
        plan: Plan,
        /// LSNs found equal, and since when.
        stable: Option<StableLsns>,
        /// Why the gate is still closed, as of the last reading.
        blocker: Option<CatchUpBlocker>,
    },
    /// A planned role change.
    FailingOver {
        /// The side that becomes primary.
        target: Side,
        /// T-SQL or ARM.
        via: FailoverVia,
        /// Progress of the call.
        change: RoleChange,
        /// Where to go once the roles are verified.
        then: Then,
        /// The role change this failover carries out. When a failed or unconfirmed failover
        /// left the roles unchanged, the machine returns to [`State::CatchingUp`] with it: a
        /// FAILOVER is never sent again without a fresh pass of the catch-up gate. `None` only
        /// in journals written before the plan was kept (then the failover is re-sent as it was).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        plan: Option<Plan>,
        /// A cancel arrived after the failover failed: the roles are read, and if the failover
        /// did not take effect the role change is abandoned instead of retried.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        cancel: bool,
    },
    /// A forced role change (possible data loss).
    ForcingFailover {
        /// The side that becomes primary.
        target: Side,
        /// Progress of the forced failover (T-SQL on SQL Server, ARM on the instance).
        #[serde(alias = "operation", deserialize_with = "role_change_or_operation")]
        change: RoleChange,
        /// Where to go once the roles are verified.
        then: Then,
    },
    /// Waiting for both sides to report the expected roles.
    VerifyingRoles {
        /// The side that must report PRIMARY.
        primary: Side,
        /// Whether the other side must report SECONDARY (planned changes and repairs); after a
        /// forced failover it only must not report PRIMARY (it may be unreachable).
        strict: bool,
        /// Where to go next.
        then: Then,
        /// Since when consecutive readings show both sides PRIMARY (a first such reading may
        /// be a lagging one, right after a demotion; one that lasts the stability window is a
        /// split brain).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        both_primary_since: Option<Timestamp>,
    },
    /// The application is told to connect to `primary`.
    Redirecting {
        /// The new primary.
        primary: Side,
        /// Where to go next.
        then: Then,
    },
    /// The side that was not the initial primary is primary.
    FailedOver {
        /// The primary side.
        primary: Side,
        /// Whether the failover may have lost data.
        data_loss_possible: bool,
    },
    /// Both sides report PRIMARY.
    SplitBrain,
    /// Demoting the side not kept.
    Repairing {
        /// The side whose data is kept.
        keep: Side,
        /// Progress of the demotion.
        change: RoleChange,
    },
    /// Waiting for the managed instance's first full backup of every database.
    AwaitingFirstFullBackup {
        /// Cutover options.
        options: CutoverOptions,
        /// A backup counts only if it finished at or after this time.
        backup_after: Option<Timestamp>,
        /// One-way cutover: redirect the application after the link is removed.
        redirect_after_removal: bool,
        /// How to abandon the cutover from here.
        abort: Abort,
        /// Databases still without a qualifying full backup, as of the last reading.
        missing: Vec<DatabaseName>,
    },
    /// Deleting the link resource.
    RemovingLink {
        /// Cutover options.
        options: CutoverOptions,
        /// Redirect the application once the link is gone (one-way cutover).
        redirect: bool,
        /// Progress of the `DELETE`. Every `DELETE` is preceded by a reading of the link
        /// (`Checking`) that passes the removal gate, and a completed `DELETE` is confirmed by
        /// another reading, which also compares SQL Server's end of log with `verified`.
        #[serde(alias = "operation", deserialize_with = "role_change_or_operation")]
        removal: RoleChange,
        /// One-way cutover: the `last_hardened_lsn` per database both sides held after SQL
        /// Server was fenced. After the removal SQL Server's end of log must still be there.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        verified: Vec<(DatabaseName, Lsn)>,
    },
    /// One-way cutover: fencing SQL Server's writes before the link is removed.
    Fencing {
        /// The cutover being carried out (its abort returns here after undoing the fence).
        plan: Plan,
        /// The current sub-step.
        step: FenceStep,
    },
    /// Dropping the DAG on SQL Server.
    DroppingDag {
        /// Cutover options.
        options: CutoverOptions,
    },
    /// Dropping the AG on SQL Server.
    DroppingAg,
    /// Migration done.
    Completed,
    /// Restoring the availability mode of an abandoned role change.
    AbortingFailover {
        /// Where to return.
        abort: Abort,
        /// SQL Server's DAG mode change finished.
        source_done: bool,
        /// The managed instance's `replicationMode` change.
        instance: ArmCall,
    },
    /// Undoing link creation.
    Cancelling {
        /// The current sub-step.
        step: CancelStep,
    },
    /// Link creation undone.
    Cancelled,
    /// A step failed.
    Failed {
        /// The state the machine was in when the step failed; resume returns to it.
        phase: Box<State>,
        /// The failed step, if one was in flight.
        step: Option<StepId>,
        /// What went wrong.
        error: StepError,
        /// Whether resuming may succeed without outside help.
        retryable: bool,
    },
}

impl State {
    /// Whether the link is in `Failed`.
    pub fn is_failed(&self) -> bool {
        matches!(self, State::Failed { .. })
    }

    /// In `Failed`: the phase that failed and why.
    pub fn failure(&self) -> Option<(Phase, &StepError)> {
        match self {
            State::Failed { phase, error, .. } => Some((phase.phase(), error)),
            _ => None,
        }
    }

    /// A failure that `Input::Resume` retries without outside help.
    pub fn is_retryable_failure(&self) -> bool {
        matches!(
            self,
            State::Failed {
                retryable: true,
                ..
            }
        )
    }

    /// The phase of this state.
    pub fn phase(&self) -> Phase {
        match self {
            State::Draft => Phase::Draft,
            State::Assessed => Phase::Assessed,
            State::PreparingSource { .. } => Phase::PreparingSource,
            State::ExchangingTrust { .. } => Phase::ExchangingTrust,
            State::CreatingAg { .. } => Phase::CreatingAg,
            State::CreatingDag => Phase::CreatingDag,
            State::JoiningInstance { .. } => Phase::JoiningInstance,
            State::CreatingLinkThroughArc { .. } => Phase::CreatingLinkThroughArc,
            State::Seeding { .. } => Phase::Seeding,
            State::Replicating { .. } => Phase::Replicating,
            State::PreparingFailover { .. } => Phase::PreparingFailover,
            State::CatchingUp { .. } => Phase::CatchingUp,
            State::FailingOver { .. } => Phase::FailingOver,
            State::ForcingFailover { .. } => Phase::ForcingFailover,
            State::VerifyingRoles { .. } => Phase::VerifyingRoles,
            State::Redirecting { .. } => Phase::Redirecting,
            State::FailedOver { .. } => Phase::FailedOver,
            State::SplitBrain => Phase::SplitBrain,
            State::Repairing { .. } => Phase::Repairing,
            State::AwaitingFirstFullBackup { .. } => Phase::AwaitingFirstFullBackup,
            State::Fencing { .. } => Phase::Fencing,
            State::RemovingLink { .. } => Phase::RemovingLink,
            State::DroppingDag { .. } => Phase::DroppingDag,
            State::DroppingAg => Phase::DroppingAg,
            State::Completed => Phase::Completed,
            State::AbortingFailover { .. } => Phase::AbortingFailover,
            State::Cancelling { .. } => Phase::Cancelling,
            State::Cancelled => Phase::Cancelled,
            State::Failed { .. } => Phase::Failed,
        }
    }

    /// The phase name (as used in the edge table and the diagram).
    pub fn name(&self) -> &'static str {
        self.phase().name()
    }

    /// Completed or Cancelled.
    pub fn is_terminal(&self) -> bool {
        self.phase().is_terminal()
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
