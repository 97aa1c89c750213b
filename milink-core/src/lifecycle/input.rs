//! Inputs: commands (user intent), observations (answers to effects), ticks and resume.

use serde::{Deserialize, Serialize};

use crate::names::{DatabaseName, Lsn};
use crate::time::Timestamp;

use super::effect::{AvailabilityMode, OperationRef, StepId};
use super::spec::Side;
use super::state::State;

/// The caller's explicit acknowledgement that a forced failover may lose data.
///
/// It can only be built by naming the link, so it cannot be passed by accident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataLossAcknowledgement {
    /// The link name, typed again by the caller.
    pub link: String,
}

/// Which failover to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailoverKind {
    /// No data loss: sync on both sides, LSNs equal and stable, then fail over.
    Planned,
    /// Possible data loss; refused without an acknowledgement that names the link.
    Forced(Option<DataLossAcknowledgement>),
}

/// Options of a cutover (one-way migration ending with the link removed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CutoverOptions {
    /// Also drop the availability group on SQL Server (the databases stay).
    pub drop_availability_group: bool,
}

/// What the caller wants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Record the readiness verdict for the link's databases (Draft → Assessed).
    RecordAssessment(AssessmentOutcome),
    /// Create the link: prepare SQL Server, exchange trust, AG, DAG, join the instance, seed.
    Start,
    /// Fail over to the secondary side.
    Failover(FailoverKind),
    /// Fail back to SQL Server (two-way links only).
    Failback,
    /// Prepare the next role change while the application still writes: switch both sides of
    /// the link to synchronous commit and return to the steady state (Replicating or
    /// FailedOver). A failover, failback or cutover that finds both sides synchronous then
    /// skips the switch, so the application's stop is followed by the catch-up gate at once.
    Prepare,
    /// One-way migration: catch up, fail over, wait for the first full backup, remove the link.
    Cutover(CutoverOptions),
    /// Repair a split brain: keep `keep` as primary, demote the other side.
    RepairSplitBrain {
        /// The side whose data is kept.
        keep: Side,
    },
    /// Undo link creation before any failover: remove the link, drop DAG and AG, keep data.
    /// During the catch-up of a failover, failback or cutover: abandon it and return to the
    /// steady state it started from.
    Cancel,
    /// Re-issue the failed step after its cause was fixed (allowed for any failure, retryable or
    /// not; `Input::Resume` only retries retryable failures).
    Retry,
    /// Read both sides now. Accepted in the steady states (Replicating, FailedOver) and in a
    /// split brain, where the link is otherwise only read while an operation runs: it is how a
    /// split brain that arose while nothing ran is seen (both sides PRIMARY → SplitBrain), and
    /// how one resolved outside milink is left (exactly one PRIMARY → the steady state).
    Refresh,
}

/// The readiness verdict the machine needs (the full report lives in `assess`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssessmentOutcome {
    /// Blocking findings; empty when ready.
    pub blockers: Vec<Blocker>,
}

/// One blocking finding as the machine records it: the rule's id, what it is about, and its
/// title. Journals written before it was typed hold `rule id: title` strings; they still load
/// (the scope is then unknown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "BlockerRepr")]
pub struct Blocker {
    /// The rule id, e.g. `Link.RecoveryModel` (`not-assessed` for a database the report does not
    /// cover).
    pub rule: String,
    /// What the finding is about, when known.
    pub scope: Option<crate::assess::Scope>,
    /// The finding's title.
    pub title: String,
}

impl Blocker {
    /// A blocker from a `rule id: title` line (what earlier versions recorded, and what callers
    /// without a report pass); a line without `: ` is all title.
    pub fn from_line(line: &str) -> Blocker {
        match line.split_once(": ") {
            Some((rule, title)) if !rule.contains(' ') => Blocker {
                rule: rule.to_owned(),
                scope: None,
                title: title.to_owned(),
            },
            Some(_) | None => Blocker {
                rule: String::new(),
                scope: None,
                title: line.to_owned(),
            },
        }
    }
}

impl From<&str> for Blocker {
    fn from(line: &str) -> Blocker {
        Blocker::from_line(line)
    }
}

impl From<String> for Blocker {
    fn from(line: String) -> Blocker {
        Blocker::from_line(&line)
    }
}

impl std::fmt::Display for Blocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.rule.is_empty() {
            write!(f, "{}: ", self.rule)?;
        }
        f.write_str(&self.title)?;
        match &self.scope {
            Some(scope) => write!(f, " ({scope})"),
            None => Ok(()),
        }
    }
}

/// A blocker as stored: the typed shape, or an earlier version's line.
#[derive(Deserialize)]
#[serde(untagged)]
enum BlockerRepr {
    Typed {
        rule: String,
        #[serde(default)]
        scope: Option<crate::assess::Scope>,
        title: String,
    },
    Line(String),
}

impl From<BlockerRepr> for Blocker {
    fn from(repr: BlockerRepr) -> Blocker {
        match repr {
            BlockerRepr::Typed { rule, scope, title } => Blocker { rule, scope, title },
            BlockerRepr::Line(line) => Blocker::from_line(&line),
        }
    }
}

/// Why an effect failed, as the journal keeps it (no secrets, no vendor types).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepError {
    /// The vendor's identity of the error: `sql:41962`, `arm:409:ManagedInstanceIsBusy`,
    /// `http:503`, `link:LinkCreationError` (a replica state without an error number), `io`,
    /// `timeout`, …
    pub code: String,
    /// A message with cause and fix.
    pub message: String,
    /// Whether re-issuing the same step may succeed.
    pub retryable: bool,
}

/// A replica's role in the DAG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReplicaRole {
    /// `PRIMARY`.
    Primary,
    /// `SECONDARY`.
    Secondary,
    /// `RESOLVING` or unknown.
    Resolving,
}

/// `synchronization_state_desc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SyncState {
    /// `NOT SYNCHRONIZING`.
    NotSynchronizing,
    /// `SYNCHRONIZING`.
    Synchronizing,
    /// `SYNCHRONIZED`.
    Synchronized,
    /// `REVERTING`.
    Reverting,
    /// `INITIALIZING`.
    Initializing,
}

/// `synchronization_health_desc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SyncHealth {
    /// `NOT_HEALTHY`.
    NotHealthy,
    /// `PARTIALLY_HEALTHY`.
    PartiallyHealthy,
    /// `HEALTHY`.
    Healthy,
}

/// One database as one side sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseView {
    /// Database name.
    pub name: DatabaseName,
    /// `synchronization_state_desc` of this side's replica of the database, read from
    /// `sys.dm_hadr_database_replica_states` (the local row) over T-SQL. `None` when the side
    /// does not report it: ARM's `databases[]` has no such field, so a managed instance read
    /// through ARM alone reports `None`, and the state of its replica comes from the primary's
    /// [`DatabaseView::partner`] row instead.
    pub sync_state: Option<SyncState>,
    /// Synchronization health.
    pub health: SyncHealth,
    /// `last_hardened_lsn` (NULL on an async primary's own row). SQL Server: the DMV's local
    /// row; the managed instance through ARM: `databases[].lastHardenedLsn`, which may lag the
    /// DMVs.
    pub last_hardened_lsn: Option<Lsn>,
    /// `end_of_log_lsn` of this side's local replica (the DMV's local row): the last log record
    /// written on this copy. The primary's end of log is what a secondary must have hardened
    /// before a role change or the link's removal loses nothing. ARM does not report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_of_log_lsn: Option<Lsn>,
    /// The other replica's row of this database as this side's DMV shows it (a primary has a
    /// row per remote replica, `is_local = 0`): its synchronization state and hardened LSN as
    /// the primary knows them. `None` on a secondary and through ARM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner: Option<PartnerReplica>,
    /// `last_commit_lsn`.
    pub last_commit_lsn: Option<Lsn>,
    /// Seeding progress in percent, while seeding.
    pub seeding_percent: Option<u8>,
    /// `log_send_queue_size` in KB (on the primary).
    pub log_send_queue_kb: Option<u64>,
    /// `redo_queue_size` in KB.
    pub redo_queue_kb: Option<u64>,
    /// Replication lag in seconds.
    pub lag_seconds: Option<u64>,
    /// The most recent link error reported for this database, if any (the instance's
    /// `mostRecentLinkError`; on SQL Server the replica's last connection error).
    pub last_error: Option<String>,
    /// The managed instance's `replicaState` of the database in the link resource (`CreatingLink`,
    /// `Seeding`, `LinkSynchronizing`, `LinkCreationError`, `LinkInitError`, …), when the side
    /// reports one. SQL Server's view has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_state: Option<String>,
}

/// The remote replica's row of a database in the primary's `sys.dm_hadr_database_replica_states`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerReplica {
    /// `synchronization_state_desc` of the remote replica.
    pub sync_state: SyncState,
    /// `last_hardened_lsn` of the remote replica, as the primary knows it.
    pub last_hardened_lsn: Option<Lsn>,
}

/// One side's view of the link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideView {
    /// The link exists on this side (DAG in `sys.availability_groups`, or the ARM resource).
    pub exists: bool,
    /// This side's role in the DAG.
    pub role: Option<ReplicaRole>,
    /// This side's DAG availability mode: SQL Server's own replica in
    /// `sys.availability_replicas`; the managed instance's ARM `replicationMode`.
    pub mode: Option<AvailabilityMode>,
    /// The availability mode this side's catalog holds for the *other* replica of the DAG
    /// (SQL Server's `sys.availability_replicas` lists both replicas of the distributed
    /// availability group, each with its own mode). `None` when the side does not report it
    /// (ARM has one `replicationMode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_mode: Option<AvailabilityMode>,
    /// Connected to the other side.
    pub connected: bool,
    /// Per-database state.
    pub databases: Vec<DatabaseView>,
    /// SQL Server's build as it reports it now (`SERVERPROPERTY('ProductVersion')`), read with
    /// the link so the failback guards judge the live server, not the spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<crate::names::SqlVersion>,
    /// The managed instance's update policy now (ARM `databaseFormat` of the instance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_policy: Option<crate::names::UpdatePolicy>,
    /// The link resource's `failoverMode` now (ARM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover_mode: Option<super::spec::FailoverMode>,
    /// The managed instance's view was read live, over T-SQL on the instance's own endpoint
    /// (its DMVs, this instant), not only through ARM, whose view of the link lags the instance
    /// by seconds. Only the instance's view sets it (SQL Server is always read over T-SQL). The
    /// catch-up gate holds equal LSNs for the shorter
    /// [`MachineOptions::live_quiet_stability_window`](super::MachineOptions::live_quiet_stability_window)
    /// only when every reading in the window was live.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub live: bool,
}

/// Both sides' view of the link, read together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkObservation {
    /// SQL Server's view.
    pub source: SideView,
    /// The managed instance's view.
    pub instance: SideView,
    /// A side that could not be read (a transient failure that outlasted the retries). Its view
    /// is empty: no role, not connected, no databases, and `exists` says nothing. The other
    /// side's view is real. A forced failover needs this: the old primary is usually down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable: Option<Side>,
}

impl SideView {
    /// The view of a side that could not be read.
    pub fn unknown() -> SideView {
        SideView {
            exists: false,
            role: None,
            mode: None,
            partner_mode: None,
            connected: false,
            databases: Vec::new(),
            version: None,
            update_policy: None,
            failover_mode: None,
            live: false,
        }
    }

    /// The managed instance's view from two readings: `self` read through ARM (the link
    /// resource and the instance), `live` read over T-SQL on the instance's endpoint just after
    /// it (the DMVs, parsed as SQL Server's are).
    ///
    /// ARM says whether the link exists (its resource) and what only ARM knows: the link's
    /// `failoverMode`, each database's `replicaState`, the seeding percentage and link error
    /// when the DMVs have none. The DMVs say everything that moves: the role, both modes, the
    /// connection, each database's synchronization state, health, LSNs, queues and lag (and a
    /// database they show joined has no seeding percentage left). The
    /// update policy is ARM's, except that an instance whose `ProductUpdateType` reads
    /// `Continuous` is Always-up-to-date whatever ARM still says (the policy cannot change back,
    /// so a stale ARM reading never hides it; `live_policy` carries that reading).
    ///
    /// When ARM has no link resource, or the DMVs show no distributed availability group of
    /// that name (the link is being created or removed), ARM's view stands alone and is not
    /// live.
    pub fn merged_with_live(
        self,
        live: SideView,
        live_policy: Option<crate::names::UpdatePolicy>,
    ) -> SideView {
        if !self.exists || !live.exists {
            return self;
        }
        let arm = self;
        let databases = live
            .databases
            .into_iter()
            .map(|mut d| {
                if let Some(a) = arm.databases.iter().find(|a| a.name == d.name) {
                    d.replica_state = a.replica_state.clone();
                    // A database the DMVs show joined has finished seeding, whatever ARM's
                    // older reading still says.
                    let joined = matches!(
                        d.sync_state,
                        Some(SyncState::Synchronizing | SyncState::Synchronized)
                    );
                    if !joined {
                        d.seeding_percent = d.seeding_percent.or(a.seeding_percent);
                    }
                    if d.last_error.is_none() {
                        d.last_error = a.last_error.clone();
                    }
                }
                d
            })
            .collect();
        let update_policy = match live_policy {
            Some(crate::names::UpdatePolicy::AlwaysUpToDate) => {
                Some(crate::names::UpdatePolicy::AlwaysUpToDate)
            }
            _ => arm.update_policy,
        };
        SideView {
            exists: true,
            role: live.role,
            mode: live.mode,
            partner_mode: live.partner_mode,
            connected: live.connected,
            databases,
            version: None,
            update_policy,
            failover_mode: arm.failover_mode,
            live: true,
        }
    }
}

impl LinkObservation {
    /// Whether `side` was read.
    pub fn reachable(&self, side: Side) -> bool {
        self.unreachable != Some(side)
    }
}

/// The managed instance's latest full backup of one database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FullBackup {
    /// Database name.
    pub database: DatabaseName,
    /// `backup_finish_date` of the latest full (type 'D') backup, if any.
    pub finished: Option<Timestamp>,
}

/// What an effect produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Observation {
    /// The operation completed; nothing to report.
    Done,
    /// A certificate's public key (DER bytes).
    PublicKey(Vec<u8>),
    /// A long-running ARM operation was accepted; poll it.
    OperationAccepted(OperationRef),
    /// The polled operation is still running (its reply named no `Retry-After`; journals
    /// written before [`Observation::OperationRunningRetryAfter`] hold this for every reply).
    OperationRunning,
    /// The polled operation is still running, and its reply asked to be polled again after
    /// this long (`Retry-After`). The machine polls next after this delay, clamped to
    /// `first_poll` ..= `probe_interval` ([`super::MachineOptions`]).
    OperationRunningRetryAfter(std::time::Duration),
    /// Link state from both sides.
    Link(LinkObservation),
    /// Latest full backups on the managed instance.
    FullBackups(Vec<FullBackup>),
    /// The client sessions and open transactions on the link's databases.
    Workload(crate::redirect::WorkloadActivity),
}

/// A progress report for callers (forwarded by the driver as an event stream).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProgressEvent {
    /// A phase began.
    Phase {
        /// The phase (its name in JSON and Python, e.g. `"Seeding"`).
        name: super::state::Phase,
    },
    /// Seeding progress of one database.
    Seeding {
        /// Database.
        database: DatabaseName,
        /// Percent done.
        percent: u8,
    },
    /// A role change or the link's removal lost transactions: the old primary holds log the new
    /// primary never hardened. Also kept in [`super::Machine::data_loss`] and the status.
    DataLoss {
        /// The evidence.
        report: super::state::DataLoss,
    },
    /// Both sides report PRIMARY (also in [`super::Machine::split_brain_since`] and the
    /// status).
    SplitBrain {
        /// When the machine first saw it.
        seen_at: Timestamp,
    },
    /// A reading while catching up before a role change, for one database: both sides'
    /// `last_hardened_lsn` and how long they have been equal to this value (`None` while they
    /// differ). The gate lets the role change go ahead once they have held for the stability
    /// window over at least two readings and its other conditions hold (see the `CatchingUp`
    /// state's blocker).
    CatchUp {
        /// Database.
        database: DatabaseName,
        /// SQL Server's `last_hardened_lsn`, if reported.
        sql_server: Option<crate::names::Lsn>,
        /// The managed instance's `last_hardened_lsn`, if reported.
        managed_instance: Option<crate::names::Lsn>,
        /// How long both sides have reported these equal LSNs.
        equal_for: Option<std::time::Duration>,
    },
    /// Replication lag and LSN gap of one database.
    Lag {
        /// Database.
        database: DatabaseName,
        /// Lag in seconds, if known.
        seconds: Option<u64>,
        /// Primary's minus secondary's `last_hardened_lsn`, if both known.
        lsn_gap: Option<u128>,
    },
}

/// Everything the machine accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// User intent.
    Command(Command),
    /// The answer to an effect.
    Observed {
        /// The step the effect carried.
        step: StepId,
        /// Its result.
        result: Result<Observation, StepError>,
    },
    /// Time passed (the driver sends it at or after `deadline()`).
    Tick,
    /// The driver restarted from the journal: re-issue the in-flight step.
    Resume,
}

impl Input {
    /// A short label of the input's kind, as the edge table names it: `Command::Start`,
    /// `Command::Failover(Forced)`, `Observed(ok)`, `Observed(err)`, `Tick`, `Resume`.
    pub fn label(&self) -> &'static str {
        match self {
            Input::Command(command) => command.label(),
            Input::Observed { result: Ok(_), .. } => "Observed(ok)",
            Input::Observed { result: Err(_), .. } => "Observed(err)",
            Input::Tick => "Tick",
            Input::Resume => "Resume",
        }
    }
}

impl Command {
    /// A short label of the command, as the edge table names it.
    pub fn label(&self) -> &'static str {
        match self {
            Command::RecordAssessment(_) => "Command::RecordAssessment",
            Command::Start => "Command::Start",
            Command::Failover(FailoverKind::Planned) => "Command::Failover(Planned)",
            Command::Failover(FailoverKind::Forced(_)) => "Command::Failover(Forced)",
            Command::Failback => "Command::Failback",
            Command::Prepare => "Command::Prepare",
            Command::Cutover(_) => "Command::Cutover",
            Command::RepairSplitBrain { .. } => "Command::RepairSplitBrain",
            Command::Cancel => "Command::Cancel",
            Command::Retry => "Command::Retry",
            Command::Refresh => "Command::Refresh",
        }
    }
}

/// The user-level operations of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Operation {
    /// Record the readiness verdict.
    RecordAssessment,
    /// Create the link and seed it.
    Start,
    /// Fail over (planned or forced).
    Failover,
    /// Fail back to SQL Server.
    Failback,
    /// Switch the link to synchronous commit ahead of a role change.
    Prepare,
    /// Migrate and remove the link.
    Cutover,
    /// Repair a split brain.
    RepairSplitBrain,
    /// Undo link creation.
    Cancel,
}

impl Operation {
    /// The operation a command starts; `None` for [`Command::Retry`], which continues the
    /// current one.
    pub fn of(command: &Command) -> Option<Operation> {
        match command {
            Command::RecordAssessment(_) => Some(Operation::RecordAssessment),
            Command::Start => Some(Operation::Start),
            Command::Failover(_) => Some(Operation::Failover),
            Command::Failback => Some(Operation::Failback),
            Command::Prepare => Some(Operation::Prepare),
            Command::Cutover(_) => Some(Operation::Cutover),
            Command::RepairSplitBrain { .. } => Some(Operation::RepairSplitBrain),
            Command::Cancel => Some(Operation::Cancel),
            Command::Retry | Command::Refresh => None,
        }
    }

    /// The operation's name.
    pub fn name(self) -> &'static str {
        match self {
            Operation::RecordAssessment => "record_assessment",
            Operation::Start => "start",
            Operation::Failover => "failover",
            Operation::Failback => "failback",
            Operation::Prepare => "prepare",
            Operation::Cutover => "cutover",
            Operation::RepairSplitBrain => "repair_split_brain",
            Operation::Cancel => "cancel",
        }
    }

    /// Whether a link in `state` has reached this operation's goal (the drive loop stops there).
    pub fn reached(self, state: &State) -> bool {
        match self {
            Operation::RecordAssessment => matches!(state, State::Assessed),
            Operation::Start | Operation::Failback => matches!(state, State::Replicating { .. }),
            Operation::Failover => matches!(state, State::FailedOver { .. }),
            Operation::Cutover => matches!(state, State::Completed),
            // Cancel during creation ends in Cancelled; during the catch-up of a role change or
            // cutover it abandons it and returns to the steady state it started from.
            Operation::Cancel => matches!(
                state,
                State::Cancelled | State::Replicating { .. } | State::FailedOver { .. }
            ),
            Operation::RepairSplitBrain | Operation::Prepare => {
                matches!(state, State::Replicating { .. } | State::FailedOver { .. })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assess::Scope;

    #[test]
    fn blockers_load_from_earlier_lines_and_round_trip_typed() {
        // What earlier versions journaled.
        let old: AssessmentOutcome = serde_json::from_str(
            r#"{"blockers":["Link.RecoveryModel: SIMPLE recovery (database ToyStore)"]}"#,
        )
        .unwrap();
        assert_eq!(old.blockers[0].rule, "Link.RecoveryModel");
        assert_eq!(old.blockers[0].scope, None);
        assert_eq!(
            old.blockers[0].to_string(),
            "Link.RecoveryModel: SIMPLE recovery (database ToyStore)"
        );
        let typed = Blocker {
            rule: "FileStream".to_owned(),
            scope: Some(Scope::Database(DatabaseName::new("Customer360").unwrap())),
            title: "FILESTREAM is not supported".to_owned(),
        };
        let json = serde_json::to_string(&typed).unwrap();
        assert!(json.contains("\"rule\":\"FileStream\""), "{json}");
        assert_eq!(serde_json::from_str::<Blocker>(&json).unwrap(), typed);
        assert_eq!(
            typed.to_string(),
            "FileStream: FILESTREAM is not supported (database Customer360)"
        );
        assert_eq!(Blocker::from_line("no rule here").rule, "");
    }
}
