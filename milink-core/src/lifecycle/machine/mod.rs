//! The machine: one exhaustive `match (state, input)` that decides everything about a link.
//!
//! [`Machine::handle`] takes an [`Input`] and the current time and either returns the
//! [`Step`] (the effects the driver must perform) or [`Rejected`], in which case the machine is
//! unchanged. [`Machine::deadline`] says when the driver must send [`Input::Tick`].
//!
//! # Rules the machine follows
//!
//! - **Intent, then confirmation.** A state advances only on an observation carrying the
//!   [`StepId`] of an effect it issued and that is still in flight ([`Machine::in_flight`]).
//!   Observations for unknown or stale steps are rejected with [`RejectReason::UnknownStep`].
//! - **Waiting phases probe.** Seeding, Replicating, CatchingUp, VerifyingRoles, FailedOver and
//!   AwaitingFirstFullBackup issue a probe, and once it is answered schedule the next one
//!   `probe_interval` later. Accepted ARM operations are polled the same way; the operation URL
//!   lives in the state, so it survives a crash.
//! - **Timeouts.** Every working phase has a limit from [`super::MachineOptions`] (`join_timeout`,
//!   `seeding_timeout`, sized from the measured seeding rate unless `seeding_timeout_sized` is
//!   off, `catch_up_timeout` for PreparingFailover and CatchingUp together,
//!   `failover_timeout`, `first_backup_timeout`, `join_timeout` for deleting the link, and
//!   `step_timeout` for each single step). A Tick past it fails the phase with
//!   `StepError { code: "timeout", retryable: true }`.
//! - **Errors.** An error observation fails the phase: `Failed { phase, step, error, retryable }`.
//!   One exception: a *retryable* error of a probe does not fail the phase; the probe is repeated
//!   after `probe_interval` (the phase timeout still bounds the wait) and the error is kept in
//!   [`Machine::last_probe_error`].
//! - **Seeding fails fast.** A probe in Seeding that shows a terminal seeding failure for a
//!   database that is not yet seeded (SQL error 1408, 1412 or 41977, or a `*Error` replica state
//!   such as `LinkCreationError`; see [`super::seeding`]) fails the phase at once with a
//!   [`StepError`] that is not retryable, coded after the SQL error (`sql:1412`) and naming the
//!   documented recovery: cancel, then create the link again. Other errors (a disconnect, after
//!   which seeding restarts) are recorded in the state and the seeding timeout bounds the wait.
//! - **Resume.** In `Failed` with a retryable error, [`Input::Resume`] re-enters the failed phase
//!   and re-issues its step with a new id ([`Command::Retry`] does the same for any failure, for
//!   a caller who fixed the cause). In any other state, Resume (sent by the driver after a crash)
//!   re-issues the in-flight effects with their *same* ids, with one exception: a call that must
//!   not run twice ([`RoleChange`]) whose reply was not seen is never re-issued blindly; the
//!   machine first reads the link (`Probe::Link`) and re-issues the call only if it did not take
//!   effect. These calls are the role changes (T-SQL `FAILOVER` and
//!   `FORCE_FAILOVER_ALLOW_DATA_LOSS`, ARM `failover` Planned and ForcedAllowDataLoss, `setRole`,
//!   `SET (ROLE = SECONDARY)`), judged by both sides' roles, and the link's ARM `DELETE`, judged
//!   by whether the instance still reports the link. The same check runs when a failed role
//!   change or link removal is resumed or retried. Every other effect is idempotent: guarded
//!   T-SQL (`IF NOT EXISTS` / `IF EXISTS`, `MODIFY` to the same mode), ARM `PUT` and `PATCH` to
//!   the same value, reads, polls of a saved operation, and the redirect to the same primary.
//! - **Terminal states absorb.** Completed and Cancelled reject every input.
//!
//! # Paths
//!
//! - **Create:** Draft → Assessed (a verdict without blockers) → PreparingSource (master key,
//!   endpoint certificate, endpoint) → ExchangingTrust (export the SQL Server certificate, upload
//!   it to the instance, read the instance's certificate, import it, trust the Azure root CAs) →
//!   CreatingAg (+ `GRANT CREATE ANY DATABASE` when the instance is the initial primary) →
//!   CreatingDag → JoiningInstance (ARM PUT) → Seeding (done when every database on the
//!   secondary is SYNCHRONIZING or SYNCHRONIZED and HEALTHY) → Replicating. A terminal seeding
//!   failure goes to Failed (not retryable); Cancel from there removes the link, and a new
//!   machine creates it again.
//! - **Planned failover / failback:** PreparingFailover (T-SQL `SetAvailabilityMode` and ARM
//!   `SetReplicationMode` to synchronous commit, both issued at once, also for failback where
//!   the docs call it optional: it keeps the LSN gate meaningful) → CatchingUp → FailingOver →
//!   VerifyingRoles → Redirecting → FailedOver (failover) or Replicating (failback).
//!   The gate in CatchingUp: both sides report synchronous commit, the current primary reports
//!   PRIMARY and the target SECONDARY, every database is SYNCHRONIZED on the target, and
//!   `last_hardened_lsn` is equal on both sides for every database and unchanged for at least
//!   two consecutive readings spanning `stability_window`. Any change of any LSN restarts the
//!   window. A failed or unconfirmed failover whose roles are unchanged returns to CatchingUp:
//!   the FAILOVER is never sent again on readings taken before the last attempt. The failover
//!   uses T-SQL when SQL Server is the current primary and the build has `tsql_failover`,
//!   otherwise ARM `failover` Planned.
//! - **Forced failover** (two-way links only; needs an acknowledgement naming the link; refused
//!   while a database on the target is REVERTING or INITIALIZING in the latest reading):
//!   ForcingFailover (ARM `ForcedAllowDataLoss` when the instance becomes primary, T-SQL
//!   `FORCE_FAILOVER_ALLOW_DATA_LOSS` when SQL Server does) → VerifyingRoles (the old primary only
//!   must not report PRIMARY; it may be down) → Redirecting → FailedOver{data_loss_possible}.
//!   If the old primary still reports PRIMARY the machine goes to SplitBrain instead. A forced
//!   failover back to the initial primary ends in Replicating. When the force's reply was lost,
//!   the target's role decides: PRIMARY means it happened (go on to VerifyingRoles, or
//!   SplitBrain if the old primary is PRIMARY too); SECONDARY while the old primary reports
//!   PRIMARY or nothing (it may be down, the reason to force) means it did not, and the force is
//!   sent again; anything else is read again after `probe_interval`.
//! - **Split brain:** detected when both sides report PRIMARY in Replicating, CatchingUp,
//!   FailedOver, the role check of FailingOver, or after a forced failover.
//!   `RepairSplitBrain { keep }` → Repairing (T-SQL `SET (ROLE = SECONDARY)` on SQL Server, or
//!   ARM `setRole` Secondary/Forced on the instance) → VerifyingRoles → Redirecting{keep} →
//!   Replicating (kept the initial primary) or FailedOver{data_loss_possible: true}.
//! - **Cutover** from Replicating or FailedOver. Two-way links with SQL Server primary catch up
//!   as for a planned failover and fail over (FailingOver, VerifyingRoles,
//!   Redirecting{instance}), then AwaitingFirstFullBackup → RemovingLink. One-way links keep the
//!   roles: AwaitingFirstFullBackup first (SQL Server still replicates and takes writes), then
//!   PreparingFailover → CatchingUp → Fencing (`SET (ROLE = SECONDARY)` on SQL Server, then
//!   readings until SQL Server's end of log equals what the instance hardened; a gap that
//!   outlasts the stability window undoes the fence with `FORCE_FAILOVER_ALLOW_DATA_LOSS` on SQL
//!   Server and runs the gate again) → RemovingLink → Redirecting{instance} (after the instance
//!   is writable and before anything is dropped). If the instance is already primary, no
//!   catch-up is needed. Then DroppingDag → DroppingAg (if asked) → Completed. Every `DELETE`
//!   follows a reading that passes the removal gate and is confirmed by another reading, which
//!   for a one-way link also checks that SQL Server's end of log did not move past what the
//!   fence verified ([`Machine::data_loss`] otherwise). If the DELETE's reply was lost, the link
//!   resource is read first and the DELETE is sent again only while it exists.
//!   A full backup counts when it finished at or after: the time the last role change that made
//!   the instance primary was issued; for one-way links, the time seeding began (the instance
//!   cannot back up a database before seeding made it); no bound when the instance was the
//!   initial primary and never changed role. Times compare the driver's clock with the
//!   instance's `backup_finish_date`, so clock skew between them shifts the bound.
//! - **Cancel:** in Draft and Assessed → Cancelled. From PreparingSource to Replicating (and
//!   Failed in those phases) → Cancelling, which deletes the link if the join was attempted,
//!   drops the DAG if its creation was attempted, and drops the AG if its creation was attempted
//!   (the AG named in the spec is treated as owned by the link), then Cancelled. A link DELETE
//!   whose reply was lost is skipped only if the instance no longer reports a link it had
//!   confirmed joining; a link whose join was never confirmed may still be appearing, so it is
//!   deleted again. The master key, certificates, endpoint and the server trust certificate stay
//!   (other links may use them); no database is touched (a seeded copy on the instance stays as
//!   an independent database).
//!   During PreparingFailover, CatchingUp or AwaitingFirstFullBackup, Cancel abandons the role
//!   change or cutover: it restores asynchronous commit if it was switched from it
//!   (AbortingFailover) and returns to the steady state. After a role change or once the link
//!   removal has begun, Cancel is refused ([`RejectReason::CancelTooLate`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::names::{DatabaseName, LinkName, Lsn, SqlVersion, UpdatePolicy};
use crate::time::Timestamp;

use super::effect::{
    ArcLinkOp, ArmFailoverType, AvailabilityMode, Effect, InstanceOp, LinkProperties, OperationRef,
    Probe, RoleChangeType, SourceOp, StepId,
};
use super::input::{
    AssessmentOutcome, Command, DataLossAcknowledgement, FailoverKind, FullBackup, Input,
    LinkObservation, Observation, ProgressEvent, ReplicaRole, SideView, StepError, SyncHealth,
    SyncState,
};
use super::seeding::SeedingFailure;
use super::spec::{LinkSpec, SEEDING_MARGIN, Side, SpecError};
use super::state::{
    Abort, AgStep, ArmCall, CancelStep, CatchUpBlocker, DataLoss, FailoverVia, FenceStep, Goal,
    Phase, Plan, PrepareStep, RoleChange, SeedingProgress, StableLsns, State, Steady, Then,
    TrustStep, side_name,
};

/// The data of [`State::FailingOver`], handed to its observation handler.
struct Failover {
    target: Side,
    via: FailoverVia,
    then: Then,
    plan: Option<Plan>,
    cancel: bool,
}

impl Failover {
    fn state(self, change: RoleChange) -> State {
        State::FailingOver {
            target: self.target,
            via: self.via,
            change,
            then: self.then,
            plan: self.plan,
            cancel: self.cancel,
        }
    }
}

/// The effects one accepted input produced, in the order the driver should perform them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Step {
    /// The effects to perform; each expects an observation.
    pub effects: Vec<Effect>,
    /// What happened, in order: the phase change first (and split brain, if entered), then
    /// seeding progress, lag and evidence of lost transactions.
    pub events: Vec<ProgressEvent>,
}

/// Why an input was refused. The machine is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input} refused in state {state}: {reason}")]
pub struct Rejected {
    /// The phase the machine is in.
    pub state: &'static str,
    /// A short description of the input.
    pub input: String,
    /// The reason.
    pub reason: RejectReason,
}

/// The class of refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RejectReason {
    /// The link is completed or cancelled; nothing more happens to it.
    #[error("the link's life is over (completed or cancelled)")]
    Terminal,
    /// The input has no meaning in this state.
    #[error("not allowed in this state")]
    NotAllowedInState,
    /// `Start` before an assessment without blockers was recorded.
    #[error("record a readiness assessment without blockers first")]
    AssessmentRequired,
    /// A failover or cutover before the link replicates.
    #[error("the link is not replicating yet; wait until seeding is done")]
    NotReplicatingYet,
    /// A planned failover while already failed over.
    #[error("already failed over; use Command::Failback to return to the initial primary")]
    AlreadyFailedOver,
    /// A failback while the initial primary is primary.
    #[error("the initial primary is primary; there is nothing to fail back")]
    NotFailedOver,
    /// An observation whose step is not in flight (stale, duplicate, or never issued).
    #[error("the step is not in flight (stale or unknown); ignore this observation")]
    UnknownStep,
    /// An observation of the wrong kind for the effect it answers.
    #[error("the observation does not answer the effect: expected {expected}")]
    UnexpectedObservation {
        /// What the effect expects.
        expected: &'static str,
    },
    /// The assessment has blocking findings.
    #[error(
        "the readiness assessment has blockers: {}",
        .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    NotReadyAssessment(Vec<super::input::Blocker>),
    /// A forced failover without the data-loss acknowledgement.
    #[error(
        "a forced failover may lose data: pass a DataLossAcknowledgement naming the link, or use \
         a planned failover"
    )]
    DataLossNotAcknowledged,
    /// The acknowledgement names another link.
    #[error("the data-loss acknowledgement names link {given:?}, but this link is {expected}")]
    AcknowledgementForWrongLink {
        /// This link.
        expected: LinkName,
        /// The name in the acknowledgement.
        given: String,
    },
    /// Failover, forced failover or failback on a one-way link.
    #[error(
        "the link is one-way (FailoverMode::None): the roles never reverse; use Command::Cutover \
         to move to the managed instance and remove the link"
    )]
    OneWayLink,
    /// Failback (or a role change to SQL Server) with an update policy that forbids it.
    #[error(
        "the managed instance update policy {policy} does not allow replication or failover to \
         this SQL Server{}",
        match required { Some(r) => format!(" (it needs {r})"), None => String::new() }
    )]
    UpdatePolicyMismatch {
        /// The instance's policy.
        policy: UpdatePolicy,
        /// The policy the SQL Server release needs.
        required: Option<UpdatePolicy>,
    },
    /// The SQL Server build cannot do what was asked.
    #[error("SQL Server {version} cannot do this: needs {needed}")]
    VersionNotCapable {
        /// The build.
        version: SqlVersion,
        /// What is needed.
        needed: &'static str,
    },
    /// A forced failover while a database on the future primary cannot start as primary.
    #[error(
        "database {database} on the future primary is {state:?}; a forced failover now would \
         leave it unable to start (wait until it is SYNCHRONIZING or SYNCHRONIZED)"
    )]
    SecondaryNotReady {
        /// The database.
        database: DatabaseName,
        /// Its state in the latest reading.
        state: SyncState,
    },
    /// `RepairSplitBrain` without a split brain.
    #[error("there is no split brain to repair")]
    SplitBrainNotPresent,
    /// A role change or cutover during a split brain.
    #[error("both sides are PRIMARY; repair the split brain first")]
    SplitBrainPresent,
    /// Cancel after a role change or after the link removal began.
    #[error(
        "too late to cancel: a role change or the link removal has begun; resume or retry to \
         finish it"
    )]
    CancelTooLate,
    /// A forced failover out of a failed role change while the latest reading shows both sides
    /// answering.
    #[error(
        "the latest reading shows both sides answering ({side:?} is primary as far as milink \
         knows): retry the failed step (it reads the roles first) or cancel; a forced failover \
         is allowed once a reading cannot reach the current primary"
    )]
    PrimaryAnswers {
        /// The side milink takes as primary.
        side: Side,
    },
    /// Cancel of a failed role change needs a reading that shows who is primary.
    #[error(
        "the latest reading does not show which side is primary; resume (it reads the roles) \
         and cancel again, or force a failover"
    )]
    RolesUnknown,
    /// The Arc route cannot do what was asked: Arc offers no such operation.
    #[error(
        "the link runs on the Arc route, which cannot {what}: Azure Arc offers no operation for \
         it; do it on SQL Server directly (a link on LinkRoute::Direct)"
    )]
    NotOnArcRoute {
        /// What was asked.
        what: &'static str,
    },
    /// Cancel while Arc's `createManagedInstanceLink` may still run.
    #[error(
        "Arc's createManagedInstanceLink may still be running and cannot be stopped; wait until \
         it ends (the link replicates or the step fails), then cancel"
    )]
    ArcOperationRunning,
    /// Resume of a failure that is not retryable.
    #[error("the failure is not retryable: fix its cause and send Command::Retry, or cancel")]
    NotRetryable,
}

/// What link creation attempted, so that cancel removes exactly that.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Attempted {
    ag: bool,
    dag: bool,
    link: bool,
}

/// The link lifecycle state machine. Pure: no I/O, no clock, no logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "MachineRepr")]
pub struct Machine {
    spec: LinkSpec,
    state: State,
    next_step: u64,
    in_flight: Vec<Effect>,
    wake_at: Option<Timestamp>,
    timeout_at: Option<Timestamp>,
    attempted: Attempted,
    seeding_started_at: Option<Timestamp>,
    role_changed_at: Option<Timestamp>,
    last_link: Option<LinkObservation>,
    last_probe_error: Option<StepError>,
    /// The LSNs the catch-up gate found equal before the last planned role change, checked
    /// against both sides once the roles are verified.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    verified_lsns: Vec<(DatabaseName, Lsn)>,
    /// Evidence of lost transactions, in the order seen.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    data_loss: Vec<DataLoss>,
    /// When the machine entered SplitBrain (both sides PRIMARY), while it is there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    split_brain_since: Option<Timestamp>,
    /// The last role change was forced (or a split brain repaired): the old primary may still be
    /// PRIMARY, so it must be read as not PRIMARY before the link is removed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    forced: bool,
    /// After a planned role change whose old primary could not be read: the new primary, until
    /// a reading of the old side proves (or disproves) that nothing was lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    proof_pending: Option<Side>,
    /// Checks of lost transactions that could not be made, as readable notes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    unverified: Vec<String>,
    /// Fences undone in the current one-way cutover (bounded: a workload that keeps writing
    /// would otherwise fence and undo forever).
    #[serde(default)]
    fences_undone: u32,
    /// How many redirects this link has begun (one per role change or one-way removal); names
    /// the current redirect in [`Machine::redirect_id`].
    #[serde(default)]
    redirects: u64,
    /// While catching up: per database, the `last_hardened_lsn` both sides last reported equal
    /// and since when (for the `CatchUp` progress events; the gate keeps its own record).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    lsns_equal: Vec<(DatabaseName, Lsn, Timestamp)>,
    /// Both sides were last switched to synchronous commit by this machine and not switched
    /// back since, nor read asynchronous on SQL Server (whose T-SQL reading is live): a role
    /// change skips the switch ([`Plan::prepared`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    synchronous: bool,
    /// While seeding with a sized timeout: the slowest database's highest percent and when it
    /// was first read (the rate the timeout is sized from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seeding_progress: Option<(u8, Timestamp)>,
    /// Events of the input being handled (always empty between inputs).
    #[serde(skip)]
    events: Vec<ProgressEvent>,
}

/// The serialized shape of [`Machine`]; deserializing re-validates the spec.
#[derive(Deserialize)]
struct MachineRepr {
    spec: LinkSpec,
    state: State,
    next_step: u64,
    #[serde(default)]
    in_flight: Vec<Effect>,
    #[serde(default)]
    wake_at: Option<Timestamp>,
    #[serde(default)]
    timeout_at: Option<Timestamp>,
    #[serde(default)]
    attempted: Attempted,
    #[serde(default)]
    seeding_started_at: Option<Timestamp>,
    #[serde(default)]
    role_changed_at: Option<Timestamp>,
    #[serde(default)]
    last_link: Option<LinkObservation>,
    #[serde(default)]
    last_probe_error: Option<StepError>,
    #[serde(default)]
    verified_lsns: Vec<(DatabaseName, Lsn)>,
    #[serde(default)]
    data_loss: Vec<DataLoss>,
    #[serde(default)]
    split_brain_since: Option<Timestamp>,
    #[serde(default)]
    forced: bool,
    #[serde(default)]
    proof_pending: Option<Side>,
    #[serde(default)]
    unverified: Vec<String>,
    #[serde(default)]
    fences_undone: u32,
    #[serde(default)]
    redirects: u64,
    #[serde(default)]
    lsns_equal: Vec<(DatabaseName, Lsn, Timestamp)>,
    #[serde(default)]
    synchronous: bool,
    #[serde(default)]
    seeding_progress: Option<(u8, Timestamp)>,
}

impl TryFrom<MachineRepr> for Machine {
    type Error = SpecError;
    fn try_from(r: MachineRepr) -> Result<Self, SpecError> {
        r.spec.validate()?;
        Ok(Machine {
            spec: r.spec,
            state: r.state,
            next_step: r.next_step,
            in_flight: r.in_flight,
            wake_at: r.wake_at,
            timeout_at: r.timeout_at,
            attempted: r.attempted,
            seeding_started_at: r.seeding_started_at,
            role_changed_at: r.role_changed_at,
            last_link: r.last_link,
            last_probe_error: r.last_probe_error,
            verified_lsns: r.verified_lsns,
            data_loss: r.data_loss,
            split_brain_since: r.split_brain_since,
            forced: r.forced,
            proof_pending: r.proof_pending,
            unverified: r.unverified,
            fences_undone: r.fences_undone,
            redirects: r.redirects,
            lsns_equal: r.lsns_equal,
            synchronous: r.synchronous,
            seeding_progress: r.seeding_progress,
            events: Vec::new(),
        })
    }
}

type Outcome = Result<Vec<Effect>, RejectReason>;

/// Unwraps an observation for the in-flight step `$step`; an error goes to `on_error` with the
/// rebuilt state, a success to `$ok`.
macro_rules! observe {
    (
        $m:ident, $step:ident, $result:ident, $now:ident, $rebuild:expr,
        |$effect:ident, $obs:ident| $ok:expr $(,)?
    ) => {{
        let $effect = $m.take($step)?;
        match $result {
            Ok($obs) => $ok,
            Err(error) => Ok($m.on_error($rebuild, &$effect, error, $now)),
        }
    }};
}

// The state groups. Each expands to an explicit list of variants, and the small groups
// partition every state, so a match written with groups is still checked for exhaustiveness:
// a new state must join a group (and so takes that group's answer everywhere) or be named in
// every match. `dispatch` and `kick` name each state; the other state-wide matches use groups.

/// Before Start: Draft and Assessed.
macro_rules! setup {
    () => {
        State::Draft | State::Assessed
    };
}

/// Link creation after Start, before the link replicates.
macro_rules! creating {
    () => {
        State::PreparingSource { .. }
            | State::ExchangingTrust { .. }
            | State::CreatingAg { .. }
            | State::CreatingDag
            | State::JoiningInstance { .. }
            | State::CreatingLinkThroughArc { .. }
            | State::Seeding { .. }
    };
}

/// Every state before the link replicates.
macro_rules! before_replicating {
    () => {
        setup!() | creating!()
    };
}

/// The two steady states of a replicating link.
macro_rules! steady {
    () => {
        State::Replicating { .. } | State::FailedOver { .. }
    };
}

/// Catching up before a role change or a cutover's link removal.
macro_rules! catching_up {
    () => {
        State::PreparingFailover { .. } | State::CatchingUp { .. }
    };
}

/// A role change or split-brain repair, its role check and the redirect after it.
macro_rules! changing_roles {
    () => {
        State::FailingOver { .. }
            | State::ForcingFailover { .. }
            | State::VerifyingRoles { .. }
            | State::Redirecting { .. }
            | State::Repairing { .. }
    };
}

/// A cutover removing the link: the first full backup, the fence, the DELETE, the drops.
macro_rules! removing {
    () => {
        State::AwaitingFirstFullBackup { .. }
            | State::Fencing { .. }
            | State::RemovingLink { .. }
            | State::DroppingDag { .. }
            | State::DroppingAg
    };
}

/// Going back: abandoning a role change, or cancelling the link's creation.
macro_rules! backing_out {
    () => {
        State::AbortingFailover { .. } | State::Cancelling { .. }
    };
}

/// Completed and Cancelled: they absorb every input.
macro_rules! terminal {
    () => {
        State::Completed | State::Cancelled
    };
}

/// A role change, cutover or removal under way.
macro_rules! underway {
    () => {
        catching_up!() | changing_roles!() | removing!() | backing_out!()
    };
}

/// Every state that is neither terminal nor Failed.
macro_rules! working {
    () => {
        before_replicating!() | steady!() | State::SplitBrain | underway!()
    };
}

impl Machine {
    /// A machine for `spec` in Draft. Refuses a spec the link cannot carry.
    pub fn new(spec: LinkSpec) -> Result<Machine, SpecError> {
        spec.validate()?;
        Ok(Machine {
            spec,
            state: State::Draft,
            next_step: 0,
            in_flight: Vec::new(),
            wake_at: None,
            timeout_at: None,
            attempted: Attempted::default(),
            seeding_started_at: None,
            role_changed_at: None,
            last_link: None,
            last_probe_error: None,
            verified_lsns: Vec::new(),
            data_loss: Vec::new(),
            split_brain_since: None,
            forced: false,
            proof_pending: None,
            unverified: Vec::new(),
            fences_undone: 0,
            redirects: 0,
            lsns_equal: Vec::new(),
            synchronous: false,
            seeding_progress: None,
            events: Vec::new(),
        })
    }

    /// The link spec.
    pub fn spec(&self) -> &LinkSpec {
        &self.spec
    }

    /// The current state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// When the driver must send [`Input::Tick`] (the next probe or poll, or the phase timeout),
    /// if anything is time-bound.
    pub fn deadline(&self) -> Option<Timestamp> {
        match (self.wake_at, self.timeout_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When the current phase (or sub-step) times out, if it is time-bound. [`Machine::deadline`]
    /// is the earlier of this and the next probe or poll; a driver bounds its own waits within a
    /// step (retries of busy answers) by this.
    pub fn phase_timeout(&self) -> Option<Timestamp> {
        self.timeout_at
    }

    /// The effects awaiting observations (what a crash-resume re-issues).
    pub fn in_flight(&self) -> Vec<Effect> {
        self.in_flight.clone()
    }

    /// Completed or Cancelled.
    pub fn is_terminal(&self) -> bool {
        self.state.is_terminal()
    }

    /// The latest link observation, for status and health.
    pub fn health(&self) -> Option<&LinkObservation> {
        self.last_link.as_ref()
    }

    /// The side that accepts writes now, as far as the machine knows: from the machine's latest
    /// link reading (or, if it has none, the caller's `reading`) when exactly one side reports
    /// PRIMARY; otherwise from the state (FailedOver names
    /// its primary, Completed leaves only the managed instance, every other state still has the
    /// initial primary writable).
    pub fn primary(&self, reading: Option<&LinkObservation>) -> Side {
        if let Some(link) = self.last_link.as_ref().or(reading) {
            let is_primary = |v: &super::input::SideView| v.role == Some(ReplicaRole::Primary);
            match (is_primary(&link.source), is_primary(&link.instance)) {
                (true, false) => return Side::SqlServer,
                (false, true) => return Side::ManagedInstance,
                (true, true) | (false, false) => {}
            }
        }
        match &self.state {
            State::FailedOver { primary, .. } => *primary,
            // The link is removed: the instance's databases are independent and writable.
            State::DroppingDag { .. } | State::DroppingAg | State::Completed => {
                Side::ManagedInstance
            }
            before_replicating!()
            | State::Replicating { .. }
            | catching_up!()
            | changing_roles!()
            | State::SplitBrain
            | State::AwaitingFirstFullBackup { .. }
            | State::Fencing { .. }
            | State::RemovingLink { .. }
            | backing_out!()
            | State::Cancelled
            | State::Failed { .. } => self.spec.initial_primary,
        }
    }

    /// Checks of lost transactions that could not be made (a side could not be read when the
    /// logs were to be compared), as readable notes; a later reading that can make the check
    /// removes the note (and reports any loss in [`Machine::data_loss`]).
    pub fn unverified(&self) -> &[String] {
        &self.unverified
    }

    /// Every database the link carries as the machine knows it: the spec's, and any other
    /// database a reading showed in the link's availability group.
    pub fn link_databases(&self) -> Vec<DatabaseName> {
        match &self.last_link {
            Some(link) => link_databases(&self.spec.databases, link),
            None => self.spec.databases.clone(),
        }
    }

    /// Since when both sides report PRIMARY, while the machine is in SplitBrain.
    pub fn split_brain_since(&self) -> Option<Timestamp> {
        self.split_brain_since
    }

    /// The identity of the current (or last) redirect: `<link>/redirect/<n>`, where `n` counts
    /// the redirects this link has begun. The same redirect keeps its id across retries,
    /// resumes and crashes, so an application whose hook is called again for it (the hook is
    /// called at least once per redirect: a crash after the hook ran and before its outcome
    /// was journaled calls it again) can recognise the repeat and ignore it. `None` before the
    /// first redirect.
    pub fn redirect_id(&self) -> Option<String> {
        (self.redirects > 0).then(|| format!("{}/redirect/{}", self.spec.link, self.redirects))
    }

    /// Evidence that a role change or the link's removal lost transactions (the old primary's
    /// end of log beyond what the other side hardened), in the order seen. Empty when every
    /// check passed. A cutover that lost data still ends in Completed (the link is gone), but
    /// this list says so, as do the `DataLoss` progress events and the session status.
    pub fn data_loss(&self) -> &[DataLoss] {
        &self.data_loss
    }

    /// The error of the latest probe, if it failed and no probe succeeded since.
    pub fn last_probe_error(&self) -> Option<&StepError> {
        self.last_probe_error.as_ref()
    }

    /// Handles one input at time `now`. On `Err` the machine is unchanged.
    pub fn handle(&mut self, input: Input, now: Timestamp) -> Result<Step, Rejected> {
        let before = self.state.phase();
        let description = describe(&input);
        let accepted = matches!(
            &input,
            Input::Observed {
                result: Ok(Observation::OperationAccepted(_)),
                ..
            }
        );
        let retry_after = match &input {
            Input::Observed {
                result: Ok(Observation::OperationRunningRetryAfter(after)),
                ..
            } => Some(*after),
            _ => None,
        };
        let mut next = self.clone();
        match next.dispatch(input, now) {
            Ok(effects) => {
                // An operation just accepted is polled soon; then as its `Retry-After` says,
                // clamped to `first_poll ..= probe_interval`, or every probe interval.
                if accepted && let Some(wake) = next.wake_at {
                    next.wake_at = Some(wake.min(now.plus(next.spec.options.first_poll)));
                }
                if let (Some(after), Some(wake)) = (retry_after, next.wake_at) {
                    next.wake_at = Some(wake.min(now.plus(next.spec.options.poll_after(after))));
                }
                let mut events = Vec::with_capacity(next.events.len() + 2);
                let after = next.state.phase();
                if after != before {
                    events.push(ProgressEvent::Phase { name: after });
                    if after == Phase::SplitBrain {
                        next.split_brain_since = Some(now);
                        events.push(ProgressEvent::SplitBrain { seen_at: now });
                    } else {
                        next.split_brain_since = None;
                    }
                }
                events.append(&mut next.events);
                *self = next;
                Ok(Step { effects, events })
            }
            Err(reason) => Err(Rejected {
                state: before.name(),
                input: description,
                reason,
            }),
        }
    }

    /// The one decision point: every (state, input) pair, no wildcard arm. The state-group
    /// macros below expand to explicit variant lists, so the compiler still checks that every
    /// pair is covered exactly.
    fn dispatch(&mut self, input: Input, now: Timestamp) -> Outcome {
        use Command as C;
        use FailoverKind as K;
        use Input as I;
        use RejectReason as R;
        use State as S;
        if let I::Command(command) = &input
            && let Some(reason) = self.arc_refusal(command)
        {
            return Err(reason);
        }
        let state = std::mem::replace(&mut self.state, S::Draft);
        match (state, input) {
            // ---- Terminal states absorb everything.
            (
                S::Completed | S::Cancelled,
                I::Command(
                    C::RecordAssessment(_)
                    | C::Start
                    | C::Failover(K::Planned | K::Forced(_))
                    | C::Failback
                    | C::Prepare
                    | C::Cutover(_)
                    | C::RepairSplitBrain { .. }
                    | C::Cancel
                    | C::Retry
                    | C::Refresh,
                )
                | I::Observed { .. }
                | I::Tick
                | I::Resume,
            ) => Err(R::Terminal),

            // ---- Observations, per phase.
            (S::Draft | S::Assessed, I::Observed { .. }) => Err(R::UnknownStep),
            (s @ S::Failed { .. }, I::Observed { step, result }) => {
                self.take(step)?;
                match result {
                    Ok(obs) => {
                        let link = self.record_link(obs)?;
                        if both_primary(&link) {
                            return Ok(self.enter(S::SplitBrain, now));
                        }
                    }
                    Err(error) => self.last_probe_error = Some(error),
                }
                self.state = s;
                Ok(Vec::new())
            }
            (S::SplitBrain, I::Observed { step, result }) => observe! {
                self, step, result, now, S::SplitBrain,
                |_e, obs| self.on_split_brain(obs, now)
            },
            (S::PreparingSource { step: sub }, I::Observed { step, result }) => observe! {
                self, step, result, now, S::PreparingSource { step: sub },
                |_e, obs| self.on_prepare(sub, obs, now)
            },
            (S::ExchangingTrust { step: sub }, I::Observed { step, result }) => observe! {
                self, step, result, now, S::ExchangingTrust { step: sub },
                |e, obs| self.on_trust(sub, &e, obs, now)
            },
            (S::CreatingAg { step: sub }, I::Observed { step, result }) => observe! {
                self, step, result, now, S::CreatingAg { step: sub },
                |_e, obs| self.on_creating_ag(sub, obs, now)
            },
            (S::CreatingDag, I::Observed { step, result }) => observe! {
                self, step, result, now, S::CreatingDag,
                |_e, obs| {
                    expect_done(obs)?;
                    Ok(self.enter(S::JoiningInstance { operation: None }, now))
                }
            },
            (S::JoiningInstance { operation }, I::Observed { step, result }) => observe! {
                self, step, result, now, S::JoiningInstance { operation },
                |e, obs| self.on_joining(&e, obs, now)
            },
            (S::CreatingLinkThroughArc { change }, I::Observed { step, result }) => observe! {
                self, step, result, now, S::CreatingLinkThroughArc { change },
                |e, obs| self.on_arc_creating(&e, obs, now)
            },
            (S::Seeding { databases }, I::Observed { step, result }) => observe! {
                self, step, result, now, S::Seeding { databases },
                |e, obs| self.on_seeding(databases, Some(e.step()), obs, now)
            },
            (s @ S::Replicating { .. }, I::Observed { step, result }) => observe! {
                self, step, result, now, s,
                |_e, obs| self.on_replicating(obs, now)
            },
            (
                S::PreparingFailover {
                    plan,
                    source_done,
                    instance,
                },
                I::Observed { step, result },
            ) => observe! {
                self, step, result, now, S::PreparingFailover { plan, source_done, instance },
                |e, obs| self.on_preparing_failover(plan, source_done, instance, &e, obs, now)
            },
            (
                S::CatchingUp {
                    plan,
                    stable,
                    blocker,
                },
                I::Observed { step, result },
            ) => {
                let effect = self.take(step)?;
                match (&effect, result) {
                    // The gate's workload reading: a failure to read it only means the long
                    // window applies.
                    (
                        Effect::Probe {
                            probe: Probe::Workload { .. },
                            ..
                        },
                        result,
                    ) => Ok(self.on_gate_workload(plan, stable, blocker, result.ok(), now)),
                    (_, Ok(obs)) => self.on_catching_up(plan, stable, blocker, obs, now),
                    (_, Err(error)) => Ok(self.on_error(
                        S::CatchingUp {
                            plan,
                            stable,
                            blocker,
                        },
                        &effect,
                        error,
                        now,
                    )),
                }
            }
            (
                S::FailingOver {
                    target,
                    via,
                    change,
                    then,
                    plan,
                    cancel,
                },
                I::Observed { step, result },
            ) => observe! {
                self, step, result, now,
                S::FailingOver { target, via, change, then, plan, cancel },
                |e, obs| self.on_failing_over(
                    Failover { target, via, then, plan, cancel }, &e, obs, now
                )
            },
            (
                S::ForcingFailover {
                    target,
                    change,
                    then,
                },
                I::Observed { step, result },
            ) => observe! {
                self, step, result, now, S::ForcingFailover { target, change, then },
                |e, obs| self.on_forcing(target, then, &e, obs, now)
            },
            (
                S::VerifyingRoles {
                    primary,
                    strict,
                    then,
                    both_primary_since,
                },
                I::Observed { step, result },
            ) => observe! {
                self, step, result, now,
                S::VerifyingRoles { primary, strict, then, both_primary_since },
                |_e, obs| self.on_verifying(primary, strict, then, both_primary_since, obs, now)
            },
            (S::Redirecting { primary, then }, I::Observed { step, result }) => observe! {
                self, step, result, now, S::Redirecting { primary, then },
                |_e, obs| {
                    expect_done(obs)?;
                    Ok(self.after_redirect(primary, then, now))
                }
            },
            (
                S::FailedOver {
                    primary,
                    data_loss_possible,
                },
                I::Observed { step, result },
            ) => observe! {
                self, step, result, now, S::FailedOver { primary, data_loss_possible },
                |_e, obs| self.on_failed_over(primary, data_loss_possible, obs, now)
            },
            (S::Repairing { keep, change }, I::Observed { step, result }) => observe! {
                self, step, result, now, S::Repairing { keep, change },
                |e, obs| self.on_repairing(keep, &e, obs, now)
            },
            (
                S::AwaitingFirstFullBackup {
                    options,
                    backup_after,
                    redirect_after_removal,
                    abort,
                    missing,
                },
                I::Observed { step, result },
            ) => observe! {
                self, step, result, now,
                S::AwaitingFirstFullBackup {
                    options, backup_after, redirect_after_removal, abort, missing
                },
                |_e, obs| self.on_first_backup(
                    options, backup_after, redirect_after_removal, abort, obs, now
                )
            },
            (
                S::RemovingLink {
                    options,
                    redirect,
                    removal,
                    verified,
                },
                I::Observed { step, result },
            ) => observe! {
                self, step, result, now, S::RemovingLink { options, redirect, removal, verified },
                |e, obs| self.on_removing_link(options, redirect, verified, &e, obs, now)
            },
            (S::Fencing { plan, step: sub }, I::Observed { step, result }) => observe! {
                self, step, result, now, S::Fencing { plan, step: sub },
                |e, obs| self.on_fencing(plan, sub, &e, obs, now)
            },
            (S::DroppingDag { options }, I::Observed { step, result }) => observe! {
                self, step, result, now, S::DroppingDag { options },
                |_e, obs| {
                    expect_done(obs)?;
                    let drop_ag = options.drop_availability_group;
                    Ok(self.enter(if drop_ag { S::DroppingAg } else { S::Completed }, now))
                }
            },
            (S::DroppingAg, I::Observed { step, result }) => observe! {
                self, step, result, now, S::DroppingAg,
                |_e, obs| {
                    expect_done(obs)?;
                    Ok(self.enter(S::Completed, now))
                }
            },
            (
                S::AbortingFailover {
                    abort,
                    source_done,
                    instance,
                },
                I::Observed { step, result },
            ) => observe! {
                self, step, result, now, S::AbortingFailover { abort, source_done, instance },
                |e, obs| self.on_aborting(abort, source_done, instance, &e, obs, now)
            },
            (S::Cancelling { step: sub }, I::Observed { step, result }) => observe! {
                self, step, result, now, S::Cancelling { step: sub },
                |e, obs| self.on_cancelling(sub, &e, obs, now)
            },

            // ---- Time passes: timeouts, due probes and polls.
            (s @ (working!() | S::Failed { .. }), I::Tick) => {
                self.state = s;
                Ok(self.tick(now))
            }

            // ---- Resume: after a failure, re-enter the phase; after a crash, re-issue.
            (
                S::Failed {
                    phase, retryable, ..
                },
                I::Resume,
            ) => {
                if retryable {
                    Ok(self.enter(reset_for_retry(*phase, true), now))
                } else {
                    Err(R::NotRetryable)
                }
            }
            (s @ working!(), I::Resume) => {
                self.state = s;
                Ok(self.resume())
            }

            // ---- Command::Retry.
            (
                S::Failed {
                    phase, retryable, ..
                },
                I::Command(C::Retry),
            ) => Ok(self.enter(reset_for_retry(*phase, retryable), now)),
            (working!(), I::Command(C::Retry)) => Err(R::NotAllowedInState),

            // ---- Command::Refresh.
            (s @ (steady!() | S::SplitBrain), I::Command(C::Refresh)) => {
                self.state = s;
                let probing = self.in_flight.iter().any(|e| {
                    matches!(
                        e,
                        Effect::Probe {
                            probe: Probe::Link,
                            ..
                        }
                    )
                });
                if probing {
                    Ok(Vec::new())
                } else {
                    self.wake_at = None;
                    Ok(vec![self.probe(Probe::Link)])
                }
            }
            // A failed link is read too: a split brain that arises while it waits is seen.
            (s @ S::Failed { .. }, I::Command(C::Refresh)) => {
                self.state = s;
                if self.in_flight.is_empty() {
                    Ok(vec![self.probe(Probe::Link)])
                } else {
                    Ok(Vec::new())
                }
            }
            (before_replicating!() | underway!(), I::Command(C::Refresh)) => {
                Err(R::NotAllowedInState)
            }

            // ---- Command::RecordAssessment.
            (S::Draft, I::Command(C::RecordAssessment(outcome))) => {
                self.record_assessment(outcome, now)
            }
            (
                S::Assessed
                | creating!()
                | steady!()
                | S::SplitBrain
                | underway!()
                | S::Failed { .. },
                I::Command(C::RecordAssessment(_)),
            ) => Err(R::NotAllowedInState),

            // ---- Command::Start.
            (S::Assessed, I::Command(C::Start)) if self.spec.route.is_arc() => {
                self.attempted.link = true;
                Ok(self.enter(
                    S::CreatingLinkThroughArc {
                        change: RoleChange::Issued,
                    },
                    now,
                ))
            }
            (S::Assessed, I::Command(C::Start)) => Ok(self.enter(
                S::PreparingSource {
                    step: PrepareStep::MasterKey,
                },
                now,
            )),
            (S::Draft, I::Command(C::Start)) => Err(R::AssessmentRequired),
            (
                creating!() | steady!() | S::SplitBrain | underway!() | S::Failed { .. },
                I::Command(C::Start),
            ) => Err(R::NotAllowedInState),

            // ---- Command::Failover(Planned).
            (S::Replicating { .. }, I::Command(C::Failover(K::Planned))) => {
                self.cmd_planned_failover(now)
            }
            (before_replicating!(), I::Command(C::Failover(K::Planned))) => {
                Err(self.refuse_role_change(R::NotReplicatingYet))
            }
            (S::FailedOver { .. }, I::Command(C::Failover(K::Planned))) => {
                Err(self.refuse_role_change(R::AlreadyFailedOver))
            }
            (S::SplitBrain, I::Command(C::Failover(K::Planned))) => {
                Err(self.refuse_role_change(R::SplitBrainPresent))
            }
            (underway!() | S::Failed { .. }, I::Command(C::Failover(K::Planned))) => {
                Err(self.refuse_role_change(R::NotAllowedInState))
            }

            // ---- Command::Failover(Forced).
            (S::Replicating { .. }, I::Command(C::Failover(K::Forced(ack)))) => {
                self.cmd_forced(Steady::Replicating, ack, now)
            }
            (
                S::FailedOver {
                    primary,
                    data_loss_possible,
                },
                I::Command(C::Failover(K::Forced(ack))),
            ) => self.cmd_forced(
                Steady::FailedOver {
                    primary,
                    data_loss_possible,
                },
                ack,
                now,
            ),
            (
                S::PreparingFailover { plan, .. } | S::CatchingUp { plan, .. },
                I::Command(C::Failover(K::Forced(ack))),
            ) => self.cmd_forced(plan.from, ack, now),
            (S::Failed { phase, .. }, I::Command(C::Failover(K::Forced(ack))))
                if matches!(*phase, S::Fencing { .. }) =>
            {
                self.force_removal(*phase, ack, now)
            }
            (S::Failed { phase, .. }, I::Command(C::Failover(K::Forced(ack)))) => {
                match steady_of_failed(&phase).or_else(|| self.way_out_of(&phase)) {
                    Some(from) => self.cmd_forced(from, ack, now),
                    None if is_half_way(&phase) => {
                        Err(self.refuse_role_change(R::PrimaryAnswers {
                            side: self.primary(None),
                        }))
                    }
                    None => Err(self.refuse_role_change(R::NotAllowedInState)),
                }
            }
            (before_replicating!(), I::Command(C::Failover(K::Forced(_)))) => {
                Err(self.refuse_role_change(R::NotReplicatingYet))
            }
            (S::SplitBrain, I::Command(C::Failover(K::Forced(_)))) => {
                Err(self.refuse_role_change(R::SplitBrainPresent))
            }
            (
                S::FailingOver { .. }
                | S::ForcingFailover { .. }
                | S::VerifyingRoles { .. }
                | S::Redirecting { .. }
                | S::Repairing { .. }
                | S::AwaitingFirstFullBackup { .. }
                | S::Fencing { .. }
                | S::RemovingLink { .. }
                | S::DroppingDag { .. }
                | S::DroppingAg
                | S::AbortingFailover { .. }
                | S::Cancelling { .. },
                I::Command(C::Failover(K::Forced(_))),
            ) => Err(self.refuse_role_change(R::NotAllowedInState)),

            // ---- Command::Failback.
            (
                S::FailedOver {
                    primary,
                    data_loss_possible,
                },
                I::Command(C::Failback),
            ) => self.cmd_failback(primary, data_loss_possible, now),
            (S::Replicating { .. }, I::Command(C::Failback)) => {
                Err(self.refuse_failback(R::NotFailedOver))
            }
            (before_replicating!(), I::Command(C::Failback)) => {
                Err(self.refuse_failback(R::NotReplicatingYet))
            }
            (S::SplitBrain, I::Command(C::Failback)) => {
                Err(self.refuse_failback(R::SplitBrainPresent))
            }
            (underway!() | S::Failed { .. }, I::Command(C::Failback)) => {
                Err(self.refuse_failback(R::NotAllowedInState))
            }

            // ---- Command::Prepare.
            (s @ S::Replicating { .. }, I::Command(C::Prepare)) => {
                self.state = s;
                self.cmd_prepare(Steady::Replicating, now)
            }
            (
                s @ S::FailedOver {
                    primary,
                    data_loss_possible,
                },
                I::Command(C::Prepare),
            ) => {
                self.state = s;
                self.cmd_prepare(
                    Steady::FailedOver {
                        primary,
                        data_loss_possible,
                    },
                    now,
                )
            }
            (before_replicating!(), I::Command(C::Prepare)) => Err(R::NotReplicatingYet),
            (S::SplitBrain, I::Command(C::Prepare)) => Err(R::SplitBrainPresent),
            (underway!() | S::Failed { .. }, I::Command(C::Prepare)) => Err(R::NotAllowedInState),

            // ---- Command::Cutover.
            (S::Replicating { .. }, I::Command(C::Cutover(options))) => {
                Ok(self.cmd_cutover(Steady::Replicating, options, now))
            }
            (
                S::FailedOver {
                    primary,
                    data_loss_possible,
                },
                I::Command(C::Cutover(options)),
            ) => {
                let from = Steady::FailedOver {
                    primary,
                    data_loss_possible,
                };
                Ok(self.cmd_cutover(from, options, now))
            }
            (before_replicating!(), I::Command(C::Cutover(_))) => Err(R::NotReplicatingYet),
            (S::SplitBrain, I::Command(C::Cutover(_))) => Err(R::SplitBrainPresent),
            (underway!() | S::Failed { .. }, I::Command(C::Cutover(_))) => {
                Err(R::NotAllowedInState)
            }

            // ---- Command::RepairSplitBrain.
            (S::SplitBrain, I::Command(C::RepairSplitBrain { keep })) => self.cmd_repair(keep, now),
            // A failure whose latest reading shows both sides PRIMARY.
            (s @ S::Failed { .. }, I::Command(C::RepairSplitBrain { keep }))
                if self.last_link.as_ref().is_some_and(both_primary) =>
            {
                self.state = s;
                self.cmd_repair(keep, now)
            }
            (
                before_replicating!() | steady!() | underway!() | S::Failed { .. },
                I::Command(C::RepairSplitBrain { .. }),
            ) => Err(R::SplitBrainNotPresent),

            // ---- Command::Cancel.
            (S::Draft | S::Assessed, I::Command(C::Cancel)) => Ok(self.enter(S::Cancelled, now)),
            (creating!() | S::Replicating { .. }, I::Command(C::Cancel)) => {
                Ok(self.cancel_creation(now))
            }
            (
                S::PreparingFailover { plan, .. } | S::CatchingUp { plan, .. },
                I::Command(C::Cancel),
            ) => Ok(self.abort(plan_abort(&plan), now)),
            (S::AwaitingFirstFullBackup { abort, .. }, I::Command(C::Cancel)) => {
                Ok(self.abort(abort, now))
            }
            (S::Fencing { plan, step }, I::Command(C::Cancel)) => match step {
                FenceStep::Undo { change, .. } => {
                    // Already undoing: abandon the cutover once SQL Server takes writes again.
                    self.state = S::Fencing {
                        plan,
                        step: FenceStep::Undo {
                            change,
                            cancel: true,
                        },
                    };
                    Ok(Vec::new())
                }
                FenceStep::Demote { .. } | FenceStep::Verify { .. } => {
                    Ok(self.undo_fence(plan, now))
                }
            },
            (S::Failed { phase, .. }, I::Command(C::Cancel)) => self.cancel_failed(*phase, now),
            (S::AbortingFailover { .. } | S::Cancelling { .. }, I::Command(C::Cancel)) => {
                Err(R::NotAllowedInState)
            }
            (
                S::FailingOver { .. }
                | S::ForcingFailover { .. }
                | S::VerifyingRoles { .. }
                | S::Redirecting { .. }
                | S::FailedOver { .. }
                | S::SplitBrain
                | S::Repairing { .. }
                | S::RemovingLink { .. }
                | S::DroppingDag { .. }
                | S::DroppingAg,
                I::Command(C::Cancel),
            ) => Err(R::CancelTooLate),
        }
    }
}

mod arc;
mod commands;
mod entry;
mod helpers;
mod observations;
mod readings;
mod timers;

use helpers::*;
