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
//!   `seeding_timeout`, `catch_up_timeout` for PreparingFailover and CatchingUp together,
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
    ArmFailoverType, AvailabilityMode, Effect, InstanceOp, LinkProperties, OperationRef, Probe,
    RoleChangeType, SourceOp, StepId,
};
use super::input::{
    AssessmentOutcome, Command, DataLossAcknowledgement, FailoverKind, FullBackup, Input,
    LinkObservation, Observation, ProgressEvent, ReplicaRole, SideView, StepError, SyncHealth,
    SyncState,
};
use super::seeding::SeedingFailure;
use super::spec::{LinkSpec, Side, SpecError};
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
    /// Progress events first, then the effects that expect observations.
    pub effects: Vec<Effect>,
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

// The state groups the dispatch refers to. Each expands to an explicit list of variants.

/// Link creation after Start, before the link replicates.
macro_rules! creating {
    () => {
        State::PreparingSource { .. }
            | State::ExchangingTrust { .. }
            | State::CreatingAg { .. }
            | State::CreatingDag
            | State::JoiningInstance { .. }
            | State::Seeding { .. }
    };
}

/// Every state before the link replicates.
macro_rules! before_replicating {
    () => {
        State::Draft | State::Assessed | creating!()
    };
}

/// The two steady states of a replicating link.
macro_rules! steady {
    () => {
        State::Replicating { .. } | State::FailedOver { .. }
    };
}

/// A role change, cutover or removal under way.
macro_rules! underway {
    () => {
        State::PreparingFailover { .. }
            | State::CatchingUp { .. }
            | State::FailingOver { .. }
            | State::ForcingFailover { .. }
            | State::VerifyingRoles { .. }
            | State::Redirecting { .. }
            | State::Repairing { .. }
            | State::AwaitingFirstFullBackup { .. }
            | State::Fencing { .. }
            | State::RemovingLink { .. }
            | State::DroppingDag { .. }
            | State::DroppingAg
            | State::AbortingFailover { .. }
            | State::Cancelling { .. }
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
            State::Draft
            | State::Assessed
            | State::PreparingSource { .. }
            | State::ExchangingTrust { .. }
            | State::CreatingAg { .. }
            | State::CreatingDag
            | State::JoiningInstance { .. }
            | State::Seeding { .. }
            | State::Replicating { .. }
            | State::PreparingFailover { .. }
            | State::CatchingUp { .. }
            | State::FailingOver { .. }
            | State::ForcingFailover { .. }
            | State::VerifyingRoles { .. }
            | State::Redirecting { .. }
            | State::SplitBrain
            | State::Repairing { .. }
            | State::AwaitingFirstFullBackup { .. }
            | State::Fencing { .. }
            | State::RemovingLink { .. }
            | State::AbortingFailover { .. }
            | State::Cancelling { .. }
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
        let mut next = self.clone();
        match next.dispatch(input, now) {
            Ok(mut effects) => {
                // Progress first, then the effects that expect observations (stable order).
                effects.sort_by_key(|e| !matches!(e, Effect::Progress(_)));
                let after = next.state.phase();
                if after != before {
                    if after == Phase::SplitBrain {
                        next.split_brain_since = Some(now);
                        effects.insert(
                            0,
                            Effect::Progress(ProgressEvent::SplitBrain { seen_at: now }),
                        );
                    } else {
                        next.split_brain_since = None;
                    }
                    effects.insert(0, Effect::Progress(ProgressEvent::Phase { name: after }));
                }
                *self = next;
                Ok(Step { effects })
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
            (S::Seeding { databases }, I::Observed { step, result }) => observe! {
                self, step, result, now, S::Seeding { databases },
                |e, obs| self.on_seeding(databases, e.step(), obs, now)
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
            ) => observe! {
                self, step, result, now, S::CatchingUp { plan, stable, blocker },
                |_e, obs| self.on_catching_up(plan, stable, blocker, obs, now)
            },
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

    // ------------------------------------------------------------------------------------------
    // Commands.

    fn record_assessment(&mut self, outcome: AssessmentOutcome, now: Timestamp) -> Outcome {
        if !outcome.blockers.is_empty() {
            return Err(RejectReason::NotReadyAssessment(outcome.blockers));
        }
        Ok(self.enter(State::Assessed, now))
    }

    /// Capability guards of role changes win over state-based refusals, so that a one-way link
    /// always says so.
    fn refuse_role_change(&self, otherwise: RejectReason) -> RejectReason {
        if self.two_way_now() {
            otherwise
        } else {
            RejectReason::OneWayLink
        }
    }

    /// The link can reverse roles: the spec says two-way and the link resource, as last read,
    /// has `failoverMode Manual`.
    fn two_way_now(&self) -> bool {
        self.spec.is_two_way()
            && self
                .last_link
                .as_ref()
                .and_then(|l| l.instance.failover_mode)
                .is_none_or(|m| m == super::spec::FailoverMode::Manual)
    }

    /// The guard of every role change to SQL Server (failback, a planned or forced failover to
    /// SQL Server), judged on the live servers: SQL Server's build and the instance's update
    /// policy as last read with the link (the spec's values only before any reading). It runs
    /// when the command arrives and again on the catch-up gate's fresh readings, right before
    /// the role change.
    /// SQL Server's build as last read with the link (the spec's before any reading).
    fn live_version(&self) -> crate::names::SqlVersion {
        self.last_link
            .as_ref()
            .and_then(|l| l.source.version)
            .unwrap_or(self.spec.source.version)
    }

    fn failback_guard(&self) -> Result<(), RejectReason> {
        if !self.two_way_now() {
            return Err(RejectReason::OneWayLink);
        }
        let link = self.last_link.as_ref();
        let version = self.live_version();
        let policy = link
            .and_then(|l| l.instance.update_policy)
            .unwrap_or(self.spec.target.update_policy);
        let caps = version.capabilities();
        if !caps.failback_allowed_with(policy) {
            return Err(RejectReason::UpdatePolicyMismatch {
                policy,
                required: caps.matching_update_policy,
            });
        }
        Ok(())
    }

    fn refuse_failback(&self, otherwise: RejectReason) -> RejectReason {
        match self.failback_guard() {
            Err(reason) => reason,
            Ok(()) => otherwise,
        }
    }

    /// Repair reads before it acts ([`State::Repairing`] starts with a reading), and never
    /// reverses a one-way link: only its initial primary can be kept.
    fn cmd_repair(&mut self, keep: Side, now: Timestamp) -> Outcome {
        if keep != self.spec.initial_primary {
            // The initial primary becomes a secondary of the other side: only a two-way link
            // whose live servers can carry that.
            self.failback_guard()?;
        }
        Ok(self.enter(
            State::Repairing {
                keep,
                change: RoleChange::Checking,
            },
            now,
        ))
    }

    fn cmd_planned_failover(&mut self, now: Timestamp) -> Outcome {
        if !self.two_way_now() {
            return Err(RejectReason::OneWayLink);
        }
        let target = self.spec.initial_primary.other();
        // Either way SQL Server ends up a secondary of, or primary to, the instance: its build
        // and the instance's update policy must match (facts §1.9).
        self.failback_guard()?;
        let plan = Plan {
            goal: Goal::Failover,
            from: Steady::Replicating,
            target,
            restore_mode: self.current_mode(),
        };
        Ok(self.enter(
            State::PreparingFailover {
                plan,
                source_done: false,
                instance: ArmCall::Requested,
            },
            now,
        ))
    }

    fn cmd_failback(&mut self, primary: Side, data_loss_possible: bool, now: Timestamp) -> Outcome {
        self.failback_guard()?;
        let initial = self.spec.initial_primary;
        if primary == initial {
            return Err(RejectReason::NotFailedOver);
        }
        let plan = Plan {
            goal: Goal::Failback,
            from: Steady::FailedOver {
                primary,
                data_loss_possible,
            },
            target: initial,
            restore_mode: self.current_mode(),
        };
        Ok(self.enter(
            State::PreparingFailover {
                plan,
                source_done: false,
                instance: ArmCall::Requested,
            },
            now,
        ))
    }

    fn cmd_cutover(
        &mut self,
        from: Steady,
        options: super::input::CutoverOptions,
        now: Timestamp,
    ) -> Vec<Effect> {
        match from.primary(self.spec.initial_primary) {
            Side::ManagedInstance => {
                let state = State::AwaitingFirstFullBackup {
                    options,
                    backup_after: self.role_changed_at,
                    redirect_after_removal: false,
                    abort: Abort {
                        back_to: from,
                        restore_mode: None,
                    },
                    missing: self.spec.databases.clone(),
                };
                self.enter(state, now)
            }
            // One-way: SQL Server stays primary until the link is removed, so the first full
            // backup is awaited while it still replicates; the catch-up gate and the fence come
            // last, right before the removal.
            Side::SqlServer if !self.spec.is_two_way() => {
                let state = State::AwaitingFirstFullBackup {
                    options,
                    backup_after: self.seeding_started_at,
                    redirect_after_removal: true,
                    abort: Abort {
                        back_to: from,
                        restore_mode: None,
                    },
                    missing: self.spec.databases.clone(),
                };
                self.enter(state, now)
            }
            Side::SqlServer => {
                let plan = Plan {
                    goal: Goal::Cutover(options),
                    from,
                    target: Side::ManagedInstance,
                    restore_mode: self.current_mode(),
                };
                self.enter(
                    State::PreparingFailover {
                        plan,
                        source_done: false,
                        instance: ArmCall::Requested,
                    },
                    now,
                )
            }
        }
    }

    fn cmd_forced(
        &mut self,
        from: Steady,
        ack: Option<DataLossAcknowledgement>,
        now: Timestamp,
    ) -> Outcome {
        if !self.two_way_now() {
            return Err(RejectReason::OneWayLink);
        }
        let target = from.primary(self.spec.initial_primary).other();
        if let Some(link) = self.last_link.clone() {
            self.forced_guard(target, &link)?;
        } else {
            self.failback_guard()?;
        }
        self.check_acknowledgement(ack)?;
        self.role_changed_at = Some(now);
        self.forced = true;
        self.verified_lsns.clear();
        self.proof_pending = None;
        let then = self.then_after(target, true);
        // Read first: the guards are judged again on this reading of the live servers before
        // anything is sent.
        Ok(self.enter(
            State::ForcingFailover {
                target,
                change: RoleChange::Checking,
                then,
            },
            now,
        ))
    }

    /// A forced failover (or a forced removal) needs an acknowledgement naming this link.
    fn check_acknowledgement(
        &self,
        ack: Option<DataLossAcknowledgement>,
    ) -> Result<(), RejectReason> {
        match ack {
            None => Err(RejectReason::DataLossNotAcknowledged),
            Some(ack) if ack.link != self.spec.link.as_str() => {
                Err(RejectReason::AcknowledgementForWrongLink {
                    expected: self.spec.link.clone(),
                    given: ack.link,
                })
            }
            Some(_) => Ok(()),
        }
    }

    /// The guards of a forced failover to `target`, on `link`: the live build and update
    /// policy, T-SQL `FORCE_FAILOVER_ALLOW_DATA_LOSS` on SQL Server 2022 CU13+, and no database
    /// on the target REVERTING or INITIALIZING.
    fn forced_guard(&self, target: Side, link: &LinkObservation) -> Result<(), RejectReason> {
        self.failback_guard()?;
        if target == Side::SqlServer {
            let version = self.live_version();
            if !version.capabilities().tsql_failover {
                return Err(RejectReason::VersionNotCapable {
                    version,
                    needed: "SQL Server 2022 CU13 (16.0.4125.3) or 2025 to run \
                             FORCE_FAILOVER_ALLOW_DATA_LOSS on the distributed availability group",
                });
            }
        }
        for name in link_databases(&self.spec.databases, link) {
            if let Some(state @ (SyncState::Reverting | SyncState::Initializing)) =
                sync_state_of(link, target, &name)
            {
                return Err(RejectReason::SecondaryNotReady {
                    database: name,
                    state,
                });
            }
        }
        Ok(())
    }

    fn cancel_creation(&mut self, now: Timestamp) -> Vec<Effect> {
        let step = if self.attempted.link {
            Some(CancelStep::DeleteLink {
                removal: RoleChange::Issued,
            })
        } else if self.attempted.dag {
            Some(CancelStep::DropDag)
        } else if self.attempted.ag {
            Some(CancelStep::DropAg)
        } else {
            None
        };
        match step {
            Some(step) => self.enter(State::Cancelling { step }, now),
            None => self.enter(State::Cancelled, now),
        }
    }

    fn abort(&mut self, abort: Abort, now: Timestamp) -> Vec<Effect> {
        match abort.restore_mode {
            Some(AvailabilityMode::AsynchronousCommit) => self.enter(
                State::AbortingFailover {
                    abort,
                    source_done: false,
                    instance: ArmCall::Requested,
                },
                now,
            ),
            Some(AvailabilityMode::SynchronousCommit) | None => {
                self.enter(abort.back_to.to_state(), now)
            }
        }
    }

    fn cancel_failed(&mut self, phase: State, now: Timestamp) -> Outcome {
        use State as S;
        match phase {
            S::Draft | S::Assessed => Ok(self.enter(S::Cancelled, now)),
            S::PreparingSource { .. }
            | S::ExchangingTrust { .. }
            | S::CreatingAg { .. }
            | S::CreatingDag
            | S::JoiningInstance { .. }
            | S::Seeding { .. }
            | S::Replicating { .. } => Ok(self.cancel_creation(now)),
            S::PreparingFailover { plan, .. } | S::CatchingUp { plan, .. } => {
                Ok(self.abort(plan_abort(&plan), now))
            }
            S::AwaitingFirstFullBackup { abort, .. } => Ok(self.abort(abort, now)),
            S::Fencing { plan, .. } => Ok(self.undo_fence(plan, now)),
            // The failover failed: read the roles; if it did not take effect, abandon it.
            S::FailingOver {
                target,
                via,
                then,
                plan: Some(plan),
                ..
            } => Ok(self.enter(
                S::FailingOver {
                    target,
                    via,
                    change: RoleChange::Checking,
                    then,
                    plan: Some(plan),
                    cancel: true,
                },
                now,
            )),
            S::AbortingFailover { .. } | S::Cancelling { .. } | S::Failed { .. } => {
                Err(RejectReason::NotAllowedInState)
            }
            // A role change that failed half-way: settle on the roles the servers last reported.
            S::FailingOver { plan: None, .. }
            | S::ForcingFailover { .. }
            | S::VerifyingRoles { .. }
            | S::Repairing { .. } => self.settle(&phase, now),
            S::Redirecting { .. }
            | S::FailedOver { .. }
            | S::SplitBrain
            | S::RemovingLink { .. }
            | S::DroppingDag { .. }
            | S::DroppingAg
            | S::Completed
            | S::Cancelled => Err(RejectReason::CancelTooLate),
        }
    }

    /// Cancel of a role change or repair that failed half-way: go to the steady state the
    /// servers' latest reading shows (exactly one PRIMARY, the other SECONDARY or unreadable),
    /// or to SplitBrain when both are PRIMARY. The application is not redirected: it is where
    /// the last completed redirect sent it, and a later failover or failback moves it.
    fn settle(&mut self, phase: &State, now: Timestamp) -> Outcome {
        let Some(link) = self.last_link.clone() else {
            return Err(RejectReason::RolesUnknown);
        };
        // A planned change whose roles were being verified keeps its flag; a forced failover
        // or a repair may have lost data.
        let data_loss_possible = matches!(
            phase,
            State::VerifyingRoles {
                then: Then::FailedOver {
                    data_loss_possible: true
                },
                ..
            } | State::ForcingFailover { .. }
                | State::Repairing { .. }
        );
        let sql = role_of(&link, Side::SqlServer);
        let mi = role_of(&link, Side::ManagedInstance);
        let settled = |side: Side, other: Option<ReplicaRole>| {
            other == Some(ReplicaRole::Secondary) || (other.is_none() && !link.reachable(side))
        };
        let primary = match (sql, mi) {
            (Some(ReplicaRole::Primary), Some(ReplicaRole::Primary)) => {
                return Ok(self.enter(State::SplitBrain, now));
            }
            (Some(ReplicaRole::Primary), other) if settled(Side::ManagedInstance, other) => {
                Side::SqlServer
            }
            (other, Some(ReplicaRole::Primary)) if settled(Side::SqlServer, other) => {
                Side::ManagedInstance
            }
            _ => return Err(RejectReason::RolesUnknown),
        };
        let steady = self.steady_after(primary, data_loss_possible);
        Ok(self.enter(steady.to_state(), now))
    }

    /// The way out of a one-way cutover stuck in its fence (SQL Server cannot be read, or will not
    /// take writes back): remove the link anyway, as the documented one-way equivalent of a
    /// forced failover ("delete the link instead"), with the same acknowledgement. SQL Server's
    /// log is not verified; the machine notes that, and the instance becomes writable.
    fn force_removal(
        &mut self,
        phase: State,
        ack: Option<DataLossAcknowledgement>,
        now: Timestamp,
    ) -> Outcome {
        self.check_acknowledgement(ack)?;
        let State::Fencing { plan, .. } = phase else {
            return Err(RejectReason::NotAllowedInState);
        };
        let Goal::Cutover(options) = plan.goal else {
            return Err(RejectReason::NotAllowedInState);
        };
        self.forced = true;
        self.unverified.push(
            "the link was removed without verifying SQL Server's end of log (acknowledged): \
             transactions SQL Server committed after the instance last received its log may be \
             lost"
                .to_owned(),
        );
        Ok(self.enter(
            State::RemovingLink {
                options,
                redirect: true,
                removal: RoleChange::Checking,
                verified: Vec::new(),
            },
            now,
        ))
    }

    /// A forced failover out of a role change that failed half-way, when the latest reading
    /// could not read one side: that side is taken as the current primary, and the other side
    /// is forced primary.
    fn way_out_of(&self, phase: &State) -> Option<Steady> {
        let target = half_way_target(phase)?;
        let link = self.last_link.as_ref()?;
        if let Some(down) = link.unreachable {
            return Some(self.steady_after(down, true));
        }
        // Both sides read as SECONDARY: no primary at all. Force the side the role change was
        // for.
        if role_of(link, Side::SqlServer) == Some(ReplicaRole::Secondary)
            && role_of(link, Side::ManagedInstance) == Some(ReplicaRole::Secondary)
        {
            return Some(self.steady_after(target.other(), true));
        }
        None
    }

    // ------------------------------------------------------------------------------------------
    // Observations.

    fn take(&mut self, step: StepId) -> Result<Effect, RejectReason> {
        match self.in_flight.iter().position(|e| e.step() == Some(step)) {
            Some(i) => Ok(self.in_flight.remove(i)),
            None => Err(RejectReason::UnknownStep),
        }
    }

    fn on_error(
        &mut self,
        state: State,
        effect: &Effect,
        error: StepError,
        now: Timestamp,
    ) -> Vec<Effect> {
        if matches!(effect, Effect::Probe { .. }) && error.retryable {
            self.state = state;
            self.last_probe_error = Some(error);
            self.schedule(now);
            Vec::new()
        } else if effect.is_role_change() && role_change_evidence(&error.code) {
            // The service says a role change is already running, or already done: that is
            // evidence, not a failure. Read the link (again later) and decide from the roles.
            self.state = checking(state);
            self.last_probe_error = Some(error);
            self.schedule(now);
            Vec::new()
        } else {
            self.fail(state, effect.step(), error)
        }
    }

    fn on_prepare(&mut self, step: PrepareStep, obs: Observation, now: Timestamp) -> Outcome {
        expect_done(obs)?;
        let next = match step {
            PrepareStep::MasterKey => State::PreparingSource {
                step: PrepareStep::EndpointCertificate,
            },
            PrepareStep::EndpointCertificate => State::PreparingSource {
                step: PrepareStep::Endpoint,
            },
            PrepareStep::Endpoint => State::ExchangingTrust {
                step: TrustStep::ExportCertificate,
            },
        };
        Ok(self.enter(next, now))
    }

    fn on_trust(
        &mut self,
        step: TrustStep,
        effect: &Effect,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        let next = match step {
            TrustStep::ExportCertificate => TrustStep::UploadCertificate {
                public_key: expect_public_key(obs)?,
                operation: None,
            },
            TrustStep::UploadCertificate {
                public_key,
                operation,
            } => match arm_reply(effect, obs)? {
                ArmReply::Completed => TrustStep::GetInstanceCertificate,
                ArmReply::Accepted(op) => {
                    return Ok(self.wait(
                        State::ExchangingTrust {
                            step: TrustStep::UploadCertificate {
                                public_key,
                                operation: Some(op),
                            },
                        },
                        now,
                    ));
                }
                ArmReply::Running => {
                    return Ok(self.wait(
                        State::ExchangingTrust {
                            step: TrustStep::UploadCertificate {
                                public_key,
                                operation,
                            },
                        },
                        now,
                    ));
                }
            },
            TrustStep::GetInstanceCertificate => TrustStep::ImportInstanceCertificate {
                certificate: expect_public_key(obs)?,
            },
            TrustStep::ImportInstanceCertificate { .. } => {
                expect_done(obs)?;
                TrustStep::RootCertificates
            }
            TrustStep::RootCertificates => {
                expect_done(obs)?;
                return Ok(self.enter(
                    State::CreatingAg {
                        step: AgStep::Create,
                    },
                    now,
                ));
            }
        };
        Ok(self.enter(State::ExchangingTrust { step: next }, now))
    }

    fn on_creating_ag(&mut self, step: AgStep, obs: Observation, now: Timestamp) -> Outcome {
        expect_done(obs)?;
        let next = match (step, self.spec.initial_primary) {
            (AgStep::Create, Side::ManagedInstance) => State::CreatingAg {
                step: AgStep::GrantCreateAnyDatabase,
            },
            (AgStep::Create, Side::SqlServer) | (AgStep::GrantCreateAnyDatabase, _) => {
                State::CreatingDag
            }
        };
        Ok(self.enter(next, now))
    }

    fn on_joining(&mut self, effect: &Effect, obs: Observation, now: Timestamp) -> Outcome {
        match arm_reply(effect, obs)? {
            ArmReply::Completed => {
                self.seeding_started_at = Some(now);
                let databases = self
                    .spec
                    .databases
                    .iter()
                    .map(|d| SeedingProgress {
                        database: d.clone(),
                        percent: None,
                        last_error: None,
                    })
                    .collect();
                Ok(self.enter(State::Seeding { databases }, now))
            }
            ArmReply::Accepted(op) => Ok(self.wait(
                State::JoiningInstance {
                    operation: Some(op),
                },
                now,
            )),
            ArmReply::Running => Ok(self.wait(
                State::JoiningInstance {
                    operation: polled_operation(effect),
                },
                now,
            )),
        }
    }

    fn on_seeding(
        &mut self,
        mut databases: Vec<SeedingProgress>,
        step: Option<StepId>,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        let link = self.record_link(obs)?;
        let secondary = self.spec.initial_primary.other();
        let mut events = Vec::new();
        for progress in &mut databases {
            let percent = find_db(side_view(&link, secondary), &progress.database)
                .and_then(|d| d.seeding_percent)
                .or_else(|| {
                    find_db(side_view(&link, secondary.other()), &progress.database)
                        .and_then(|d| d.seeding_percent)
                })
                .map(|p| p.min(100));
            progress.last_error = find_db(side_view(&link, secondary), &progress.database)
                .and_then(|d| d.last_error.clone())
                .or_else(|| {
                    find_db(side_view(&link, secondary.other()), &progress.database)
                        .and_then(|d| d.last_error.clone())
                });
            if percent.is_some() && percent != progress.percent {
                progress.percent = percent;
                if let Some(percent) = percent {
                    events.push(Effect::Progress(ProgressEvent::Seeding {
                        database: progress.database.clone(),
                        percent,
                    }));
                }
            }
        }
        let seeded = |name: &DatabaseName| {
            find_db(side_view(&link, secondary), name).is_some_and(|d| {
                matches!(
                    sync_state_of(&link, secondary, name),
                    Some(SyncState::Synchronizing | SyncState::Synchronized)
                ) && d.health == SyncHealth::Healthy
            })
        };
        // A seeding that cannot finish fails the phase now, not at the seeding timeout.
        let failure = self
            .spec
            .databases
            .iter()
            .filter(|name| !seeded(name))
            .find_map(|name| {
                [secondary, secondary.other()]
                    .into_iter()
                    .filter_map(|side| find_db(side_view(&link, side), name))
                    .find_map(SeedingFailure::of)
                    .map(|f| f.to_step_error(name))
            });
        if let Some(error) = failure {
            events.extend(self.fail(State::Seeding { databases }, step, error));
            return Ok(events);
        }
        let done = self.spec.databases.iter().all(seeded);
        if done {
            let (mode, health, lag_seconds, lag) =
                self.replication_report(&link, self.spec.initial_primary);
            events.extend(self.enter(
                State::Replicating {
                    mode,
                    health,
                    lag_seconds,
                },
                now,
            ));
            events.extend(lag);
        } else {
            events.extend(self.wait(State::Seeding { databases }, now));
        }
        Ok(events)
    }

    fn on_replicating(&mut self, obs: Observation, now: Timestamp) -> Outcome {
        let link = self.record_link(obs)?;
        if both_primary(&link) {
            return Ok(self.enter(State::SplitBrain, now));
        }
        let proof = self.pending_proof(&link, now);
        let (mode, health, lag_seconds, mut events) =
            self.replication_report(&link, self.spec.initial_primary);
        events.extend(proof);
        events.extend(self.wait(
            State::Replicating {
                mode,
                health,
                lag_seconds,
            },
            now,
        ));
        Ok(events)
    }

    /// A reading while both sides were PRIMARY: still so, or resolved outside milink (exactly
    /// one PRIMARY, the other SECONDARY: go to that side's steady state; data may have been
    /// lost while both took writes).
    fn on_split_brain(&mut self, obs: Observation, now: Timestamp) -> Outcome {
        let link = self.record_link(obs)?;
        let sql = role_of(&link, Side::SqlServer);
        let mi = role_of(&link, Side::ManagedInstance);
        let primary = match (sql, mi) {
            (Some(ReplicaRole::Primary), Some(ReplicaRole::Secondary)) => Side::SqlServer,
            (Some(ReplicaRole::Secondary), Some(ReplicaRole::Primary)) => Side::ManagedInstance,
            _ => {
                self.state = State::SplitBrain;
                return Ok(Vec::new());
            }
        };
        let steady = self.steady_after(primary, true);
        Ok(self.enter(steady.to_state(), now))
    }

    fn on_failed_over(
        &mut self,
        primary: Side,
        data_loss_possible: bool,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        let link = self.record_link(obs)?;
        if both_primary(&link) {
            return Ok(self.enter(State::SplitBrain, now));
        }
        let proof = self.pending_proof(&link, now);
        let (_, _, _, mut events) = self.replication_report(&link, primary);
        events.extend(proof);
        events.extend(self.wait(
            State::FailedOver {
                primary,
                data_loss_possible,
            },
            now,
        ));
        Ok(events)
    }

    fn on_preparing_failover(
        &mut self,
        plan: Plan,
        mut source_done: bool,
        mut instance: ArmCall,
        effect: &Effect,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        let mut schedule = false;
        self.mode_reply(effect, obs, &mut source_done, &mut instance, &mut schedule)?;
        if source_done && instance == ArmCall::Done {
            // The catch-up shares the preparation's timeout.
            let timeout = self.timeout_at;
            let effects = self.enter(
                State::CatchingUp {
                    plan,
                    stable: None,
                    blocker: None,
                },
                now,
            );
            self.timeout_at = timeout;
            return Ok(effects);
        }
        self.state = State::PreparingFailover {
            plan,
            source_done,
            instance,
        };
        if schedule {
            self.schedule(now);
        }
        Ok(Vec::new())
    }

    fn on_aborting(
        &mut self,
        abort: Abort,
        mut source_done: bool,
        mut instance: ArmCall,
        effect: &Effect,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        let mut schedule = false;
        self.mode_reply(effect, obs, &mut source_done, &mut instance, &mut schedule)?;
        if source_done && instance == ArmCall::Done {
            return Ok(self.enter(abort.back_to.to_state(), now));
        }
        self.state = State::AbortingFailover {
            abort,
            source_done,
            instance,
        };
        if schedule {
            self.schedule(now);
        }
        Ok(Vec::new())
    }

    /// The reply to one of the two availability-mode changes.
    fn mode_reply(
        &mut self,
        effect: &Effect,
        obs: Observation,
        source_done: &mut bool,
        instance: &mut ArmCall,
        schedule: &mut bool,
    ) -> Result<(), RejectReason> {
        match effect {
            Effect::Source { .. } => {
                expect_done(obs)?;
                *source_done = true;
            }
            Effect::Instance { .. } | Effect::PollOperation { .. } => {
                match arm_reply(effect, obs)? {
                    ArmReply::Completed => *instance = ArmCall::Done,
                    ArmReply::Accepted(op) => {
                        *instance = ArmCall::Accepted(op);
                        *schedule = true;
                    }
                    ArmReply::Running => *schedule = true,
                }
            }
            Effect::Probe { .. } | Effect::Redirect { .. } | Effect::Progress(_) => {
                return Err(RejectReason::UnexpectedObservation {
                    expected: "an answer to an availability mode change",
                });
            }
        }
        Ok(())
    }

    fn on_catching_up(
        &mut self,
        plan: Plan,
        stable: Option<StableLsns>,
        blocker: Option<CatchUpBlocker>,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        let link = self.record_link(obs)?;
        if both_primary(&link) {
            // One reading can catch the two sides on either side of a switch an earlier attempt
            // made (the instance's ARM reading lags): it is a split brain once it lasts.
            let since = match blocker {
                Some(CatchUpBlocker::BothPrimary { since }) => since,
                Some(_) | None => now,
            };
            if now.since(since) >= self.spec.options.stability_window {
                return Ok(self.enter(State::SplitBrain, now));
            }
            return Ok(self.wait(
                State::CatchingUp {
                    plan,
                    stable: None,
                    blocker: Some(CatchUpBlocker::BothPrimary { since }),
                },
                now,
            ));
        }
        // An earlier attempt of this role change is still running, or went through (its reply
        // was lost, or it completed after a failure): follow it, never send another.
        if role_change_running(&link) {
            return Ok(self.wait(
                State::CatchingUp {
                    plan,
                    stable: None,
                    blocker: Some(CatchUpBlocker::RolesNotAsExpected),
                },
                now,
            ));
        }
        if self.spec.is_two_way()
            && role_of(&link, plan.target) == Some(ReplicaRole::Primary)
            && role_of(&link, plan.target.other()) == Some(ReplicaRole::Secondary)
        {
            let then = self.then_of(&plan.goal, plan.target, now);
            return Ok(self.enter(
                State::VerifyingRoles {
                    primary: plan.target,
                    strict: true,
                    then,
                    both_primary_since: None,
                },
                now,
            ));
        }
        // The guards of the role change, on this fresh reading of the live servers.
        let guard = match plan.goal {
            Goal::Failover | Goal::Failback => self.failback_guard(),
            Goal::Cutover(_) if plan.target == Side::SqlServer => self.failback_guard(),
            Goal::Cutover(_) => Ok(()),
        };
        if let Err(reason) = guard {
            let error = StepError {
                code: "guard".to_owned(),
                message: format!(
                    "the role change to {} is refused on the servers' current state: {reason}. \
                     Cancel returns to the steady state it started from",
                    side_name(plan.target)
                ),
                retryable: false,
            };
            let state = State::CatchingUp {
                plan,
                stable: None,
                blocker: None,
            };
            return Ok(self.fail(state, None, error));
        }
        let (stable, blocker) = match self.catch_up_gate(&link, plan.target) {
            Err(blocker) => (None, blocker),
            Ok(lsns) => {
                let (stable, moved) = match stable {
                    Some(s) if s.lsns == lsns => (
                        StableLsns {
                            readings: s.readings.saturating_add(1),
                            ..s
                        },
                        false,
                    ),
                    Some(_) => (
                        StableLsns {
                            lsns,
                            since: now,
                            readings: 1,
                        },
                        true,
                    ),
                    None => (
                        StableLsns {
                            lsns,
                            since: now,
                            readings: 1,
                        },
                        false,
                    ),
                };
                if (stable.readings >= 2
                    && now.since(stable.since) >= self.spec.options.stability_window)
                    || self.mutated_stability()
                {
                    return Ok(self.after_catch_up(plan, stable.lsns, now));
                }
                let blocker = if moved {
                    CatchUpBlocker::LsnsStillMoving
                } else {
                    CatchUpBlocker::Stabilizing {
                        since: stable.since,
                    }
                };
                (Some(stable), blocker)
            }
        };
        Ok(self.wait(
            State::CatchingUp {
                plan,
                stable,
                blocker: Some(blocker),
            },
            now,
        ))
    }

    /// The LSN gate passed: fail over (two-way) or go on with a one-way cutover.
    fn after_catch_up(
        &mut self,
        plan: Plan,
        lsns: Vec<(DatabaseName, Lsn)>,
        now: Timestamp,
    ) -> Vec<Effect> {
        let target = plan.target;
        // One-way: fence SQL Server's writes, check, then remove the link.
        if matches!(plan.goal, Goal::Cutover(_)) && !self.spec.is_two_way() {
            return self.enter(
                State::Fencing {
                    plan,
                    step: FenceStep::Demote {
                        change: RoleChange::Issued,
                    },
                },
                now,
            );
        }
        self.role_changed_at = Some(now);
        let then = self.then_of(&plan.goal, target, now);
        let via = if target.other() == Side::SqlServer && self.spec.capabilities().tsql_failover {
            FailoverVia::Tsql
        } else {
            FailoverVia::Arm
        };
        self.verified_lsns = lsns;
        self.enter(
            State::FailingOver {
                target,
                via,
                change: RoleChange::Issued,
                then,
                plan: Some(plan),
                cancel: false,
            },
            now,
        )
    }

    /// Where a two-way role change for `goal` goes once the roles are verified.
    fn then_of(&self, goal: &Goal, target: Side, now: Timestamp) -> Then {
        match goal {
            Goal::Cutover(options) => Then::AwaitFirstFullBackup {
                options: options.clone(),
                backup_after: Some(self.role_changed_at.unwrap_or(now)),
                abort: Abort {
                    back_to: self.steady_after(target, false),
                    restore_mode: None,
                },
            },
            Goal::Failover | Goal::Failback => self.then_after(target, false),
        }
    }

    fn on_failing_over(
        &mut self,
        failover: Failover,
        effect: &Effect,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        let target = failover.target;
        match effect {
            Effect::Probe { .. } => {
                let link = self.record_link(obs)?;
                let new = role_of(&link, target);
                let old = role_of(&link, target.other());
                if role_change_running(&link) {
                    return Ok(self.wait(failover.state(RoleChange::Checking), now));
                }
                match (new, old) {
                    // The target took the role (both PRIMARY in one reading can be the two
                    // sides read on either side of the switch): the strict role check decides,
                    // and calls it a split brain only if it lasts.
                    (Some(ReplicaRole::Primary), _) => Ok(self.enter(
                        State::VerifyingRoles {
                            primary: target,
                            strict: true,
                            then: failover.then,
                            both_primary_since: None,
                        },
                        now,
                    )),
                    // The roles did not change. Never send the failover again on readings taken
                    // before it: run the catch-up gate again (or abandon, on cancel).
                    (Some(ReplicaRole::Secondary), Some(ReplicaRole::Primary)) => {
                        match failover.plan {
                            Some(plan) if failover.cancel => {
                                self.verified_lsns.clear();
                                Ok(self.abort(plan_abort(&plan), now))
                            }
                            // The verified LSNs stay: if the earlier attempt went through after
                            // all, they are what its proof compares against.
                            Some(plan) => Ok(self.enter(
                                State::CatchingUp {
                                    plan,
                                    stable: None,
                                    blocker: None,
                                },
                                now,
                            )),
                            None => {
                                self.state = failover.state(RoleChange::Issued);
                                Ok(self.kick())
                            }
                        }
                    }
                    _ => Ok(self.wait(failover.state(RoleChange::Checking), now)),
                }
            }
            Effect::Source { .. } | Effect::Instance { .. } | Effect::PollOperation { .. } => {
                let reply = match effect {
                    Effect::Source { .. } => {
                        expect_done(obs)?;
                        ArmReply::Completed
                    }
                    Effect::Instance { .. }
                    | Effect::PollOperation { .. }
                    | Effect::Probe { .. }
                    | Effect::Redirect { .. }
                    | Effect::Progress(_) => arm_reply(effect, obs)?,
                };
                match reply {
                    ArmReply::Completed => Ok(self.enter(
                        State::VerifyingRoles {
                            primary: target,
                            strict: true,
                            then: failover.then,
                            both_primary_since: None,
                        },
                        now,
                    )),
                    ArmReply::Accepted(op) => {
                        Ok(self.wait(failover.state(RoleChange::Accepted(op)), now))
                    }
                    ArmReply::Running => {
                        let change = match polled_operation(effect) {
                            Some(op) => RoleChange::Accepted(op),
                            None => RoleChange::Issued,
                        };
                        Ok(self.wait(failover.state(change), now))
                    }
                }
            }
            Effect::Redirect { .. } | Effect::Progress(_) => {
                Err(RejectReason::UnexpectedObservation {
                    expected: "an answer to the failover",
                })
            }
        }
    }

    fn on_forcing(
        &mut self,
        target: Side,
        then: Then,
        effect: &Effect,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        let reply = match effect {
            Effect::Probe { .. } => {
                let link = self.record_link(obs)?;
                return Ok(self.on_force_check(target, then, &link, now));
            }
            Effect::Source { .. } => {
                expect_done(obs)?;
                ArmReply::Completed
            }
            Effect::Instance { .. }
            | Effect::PollOperation { .. }
            | Effect::Redirect { .. }
            | Effect::Progress(_) => arm_reply(effect, obs)?,
        };
        match reply {
            ArmReply::Completed => Ok(self.enter(
                State::VerifyingRoles {
                    primary: target,
                    strict: false,
                    then,
                    both_primary_since: None,
                },
                now,
            )),
            ArmReply::Accepted(op) => Ok(self.wait(
                State::ForcingFailover {
                    target,
                    change: RoleChange::Accepted(op),
                    then,
                },
                now,
            )),
            ArmReply::Running => {
                let change = match polled_operation(effect) {
                    Some(op) => RoleChange::Accepted(op),
                    None => RoleChange::Issued,
                };
                Ok(self.wait(
                    State::ForcingFailover {
                        target,
                        change,
                        then,
                    },
                    now,
                ))
            }
        }
    }

    /// The roles read before re-sending a forced failover whose reply was lost. The force runs
    /// on the target, so the target's role tells whether it happened; the old primary may be
    /// down (the reason to force) and report nothing.
    fn on_force_check(
        &mut self,
        target: Side,
        then: Then,
        link: &LinkObservation,
        now: Timestamp,
    ) -> Vec<Effect> {
        let new = role_of(link, target);
        let old = role_of(link, target.other());
        if role_change_running(link) {
            return self.wait(
                State::ForcingFailover {
                    target,
                    change: RoleChange::Checking,
                    then,
                },
                now,
            );
        }
        match (new, old) {
            // It happened: never force again (a second force would hand the role back). If the
            // old primary still reports PRIMARY, the role check calls it a split brain once it
            // lasts (one reading can catch the sides on either side of the switch).
            (Some(ReplicaRole::Primary), _) => self.enter(
                State::VerifyingRoles {
                    primary: target,
                    strict: false,
                    then,
                    both_primary_since: None,
                },
                now,
            ),
            // It did not (or has not been sent yet): the target is still secondary and nothing
            // else took the primary role. The guards again, on this fresh reading, then send.
            (Some(ReplicaRole::Secondary), Some(ReplicaRole::Primary) | None) => {
                if let Err(reason) = self.forced_guard(target, link) {
                    let error = StepError {
                        code: "guard".to_owned(),
                        message: format!(
                            "the forced failover to {} is refused on the servers' current \
                             state: {reason}",
                            side_name(target)
                        ),
                        retryable: false,
                    };
                    let state = State::ForcingFailover {
                        target,
                        change: RoleChange::Checking,
                        then,
                    };
                    return self.fail(state, None, error);
                }
                self.state = State::ForcingFailover {
                    target,
                    change: RoleChange::Issued,
                    then,
                };
                self.kick()
            }
            // Resolving, or both secondary: the roles are moving; read them again.
            (
                Some(ReplicaRole::Secondary),
                Some(ReplicaRole::Secondary | ReplicaRole::Resolving),
            )
            | (Some(ReplicaRole::Resolving) | None, _) => self.wait(
                State::ForcingFailover {
                    target,
                    change: RoleChange::Checking,
                    then,
                },
                now,
            ),
        }
    }

    fn on_verifying(
        &mut self,
        primary: Side,
        strict: bool,
        then: Then,
        both_primary_since: Option<Timestamp>,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        let link = self.record_link(obs)?;
        let new = role_of(&link, primary);
        let old = role_of(&link, primary.other());
        let mut both_since = None;
        if new == Some(ReplicaRole::Primary) {
            // Both PRIMARY: right after a demotion a lagging reading may still say so; when it
            // lasts the stability window, it is a split brain.
            if old == Some(ReplicaRole::Primary) {
                let since = both_primary_since.unwrap_or(now);
                if now.since(since) >= self.spec.options.stability_window {
                    return Ok(self.enter(State::SplitBrain, now));
                }
                both_since = Some(since);
            }
            // A planned role change demotes the old primary itself; when that side can no
            // longer be read, go on (the steady state keeps reading it, and a split brain is
            // seen there), and prove the logs once it can be read again.
            if strict && old.is_none() && !link.reachable(primary.other()) {
                if !self.verified_lsns.is_empty() {
                    self.proof_pending = Some(primary);
                    self.unverified.push(format!(
                        "after the role change to {}: {} could not be read, so whether it holds \
                         transactions {} never hardened is not known yet; milink compares the \
                         logs when it can read it again",
                        side_name(primary),
                        side_name(primary.other()),
                        side_name(primary)
                    ));
                }
                return Ok(self.begin_redirect(primary, then, now));
            }
            if strict && old == Some(ReplicaRole::Secondary) {
                self.forced = false;
                let mut events = self.prove_role_change(&link, primary, now);
                events.extend(self.begin_redirect(primary, then, now));
                return Ok(events);
            }
            if !strict && old != Some(ReplicaRole::Primary) {
                return Ok(self.begin_redirect(primary, then, now));
            }
        }
        Ok(self.wait(
            State::VerifyingRoles {
                primary,
                strict,
                then,
                both_primary_since: both_since,
            },
            now,
        ))
    }

    fn after_redirect(&mut self, primary: Side, then: Then, now: Timestamp) -> Vec<Effect> {
        let next = match then {
            Then::FailedOver { data_loss_possible } => State::FailedOver {
                primary,
                data_loss_possible,
            },
            Then::Replicating => Steady::Replicating.to_state(),
            Then::AwaitFirstFullBackup {
                options,
                backup_after,
                abort,
            } => State::AwaitingFirstFullBackup {
                options,
                backup_after,
                redirect_after_removal: false,
                abort,
                missing: self.spec.databases.clone(),
            },
            Then::DropDag { options } => State::DroppingDag { options },
        };
        self.enter(next, now)
    }

    fn on_repairing(
        &mut self,
        keep: Side,
        effect: &Effect,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        let verify = |m: &mut Machine| {
            let then = m.then_after(keep, true);
            m.enter(
                State::VerifyingRoles {
                    primary: keep,
                    strict: true,
                    then,
                    both_primary_since: None,
                },
                now,
            )
        };
        let reply = match effect {
            Effect::Probe { .. } => {
                let link = self.record_link(obs)?;
                if role_change_running(&link) {
                    return Ok(self.wait(
                        State::Repairing {
                            keep,
                            change: RoleChange::Checking,
                        },
                        now,
                    ));
                }
                return Ok(match (role_of(&link, keep), role_of(&link, keep.other())) {
                    // Both PRIMARY: demote the other side.
                    (Some(ReplicaRole::Primary), Some(ReplicaRole::Primary)) => {
                        self.state = State::Repairing {
                            keep,
                            change: RoleChange::Issued,
                        };
                        self.kick()
                    }
                    // Already repaired (by the demotion, or outside milink).
                    (Some(ReplicaRole::Primary), Some(ReplicaRole::Secondary)) => verify(self),
                    // The side to keep is not PRIMARY: demoting the other would leave none.
                    (Some(ReplicaRole::Secondary), _) => {
                        let error = StepError {
                            code: "guard".to_owned(),
                            message: format!(
                                "refusing to demote {}: {} is not PRIMARY (it reports SECONDARY), \
                                 so the demotion would leave no primary. Read the roles \
                                 (health) and keep the side that is PRIMARY, or cancel to settle \
                                 on the roles the servers report",
                                side_name(keep.other()),
                                side_name(keep),
                            ),
                            retryable: false,
                        };
                        let state = State::Repairing {
                            keep,
                            change: RoleChange::Checking,
                        };
                        let step = effect.step();
                        self.fail(state, step, error)
                    }
                    // A side that cannot be read, or roles still moving: read again.
                    (Some(ReplicaRole::Primary) | Some(ReplicaRole::Resolving) | None, _) => self
                        .wait(
                            State::Repairing {
                                keep,
                                change: RoleChange::Checking,
                            },
                            now,
                        ),
                });
            }
            Effect::Source { .. } => {
                expect_done(obs)?;
                ArmReply::Completed
            }
            Effect::Instance { .. }
            | Effect::PollOperation { .. }
            | Effect::Redirect { .. }
            | Effect::Progress(_) => arm_reply(effect, obs)?,
        };
        Ok(match reply {
            ArmReply::Completed => verify(self),
            ArmReply::Accepted(op) => self.wait(
                State::Repairing {
                    keep,
                    change: RoleChange::Accepted(op),
                },
                now,
            ),
            ArmReply::Running => {
                let change = match polled_operation(effect) {
                    Some(op) => RoleChange::Accepted(op),
                    None => RoleChange::Issued,
                };
                self.wait(State::Repairing { keep, change }, now)
            }
        })
    }

    fn on_first_backup(
        &mut self,
        options: super::input::CutoverOptions,
        backup_after: Option<Timestamp>,
        redirect_after_removal: bool,
        abort: Abort,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        let backups = expect_backups(obs)?;
        let missing = missing_backups(&self.link_databases(), &backups, backup_after);
        if missing.is_empty() {
            // One-way: SQL Server is still primary; catch up, fence, then remove the link.
            if redirect_after_removal {
                let plan = Plan {
                    goal: Goal::Cutover(options),
                    from: abort.back_to,
                    target: Side::ManagedInstance,
                    restore_mode: self.current_mode(),
                };
                return Ok(self.enter(
                    State::PreparingFailover {
                        plan,
                        source_done: false,
                        instance: ArmCall::Requested,
                    },
                    now,
                ));
            }
            // Two-way: the instance is primary; read the link before the DELETE.
            return Ok(self.enter(
                State::RemovingLink {
                    options,
                    redirect: false,
                    removal: RoleChange::Checking,
                    verified: Vec::new(),
                },
                now,
            ));
        }
        Ok(self.wait(
            State::AwaitingFirstFullBackup {
                options,
                backup_after,
                redirect_after_removal,
                abort,
                missing,
            },
            now,
        ))
    }

    fn on_removing_link(
        &mut self,
        options: super::input::CutoverOptions,
        redirect: bool,
        verified: Vec<(DatabaseName, Lsn)>,
        effect: &Effect,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        let state = |removal| State::RemovingLink {
            options: options.clone(),
            redirect,
            removal,
            verified: verified.clone(),
        };
        if let Effect::Probe { .. } = effect {
            let link = self.record_link(obs)?;
            if !link.reachable(Side::ManagedInstance) {
                // Never decide on a side that could not be read: read again.
                return Ok(self.wait(state(RoleChange::Checking), now));
            }
            if !link.instance.exists {
                // The link existed (it replicated), so its absence means the DELETE went
                // through. Prove nothing was left behind on SQL Server.
                let mut events = self.prove_removal(&link, &verified, now);
                events.extend(self.after_link_removal(options, redirect, now));
                return Ok(events);
            }
            if both_primary(&link) {
                return Ok(self.enter(State::SplitBrain, now));
            }
            if self.removal_gate(&link, redirect, &verified) {
                self.state = state(RoleChange::Issued);
                return Ok(self.kick());
            }
            return Ok(self.wait(state(RoleChange::Checking), now));
        }
        Ok(match arm_reply(effect, obs)? {
            // Confirm with a reading (which also compares the logs) before going on.
            ArmReply::Completed => {
                self.state = state(RoleChange::Checking);
                self.kick()
            }
            ArmReply::Accepted(op) => self.wait(state(RoleChange::Accepted(op)), now),
            ArmReply::Running => self.wait(
                state(match polled_operation(effect) {
                    Some(op) => RoleChange::Accepted(op),
                    None => RoleChange::Issued,
                }),
                now,
            ),
        })
    }

    /// Whether the link may be deleted on this reading. One-way (fenced): SQL Server is not
    /// PRIMARY and, for every database, its end of log equals what the instance hardened (and
    /// what the fence verified). Two-way (after the failover): the instance is PRIMARY and SQL
    /// Server is not (SQL Server's log then comes from the instance; the failover itself was
    /// proven when the roles were verified).
    fn removal_gate(
        &self,
        link: &LinkObservation,
        fenced: bool,
        verified: &[(DatabaseName, Lsn)],
    ) -> bool {
        if role_of(link, Side::SqlServer) == Some(ReplicaRole::Primary) {
            return false;
        }
        // After a forced role change the old primary may still be up and PRIMARY: it must be
        // read, not assumed, before the link goes (unless the removal itself was forced).
        if self.forced && !link.reachable(Side::SqlServer) && !(fenced && verified.is_empty()) {
            return false;
        }
        if !fenced {
            return role_of(link, Side::ManagedInstance) == Some(ReplicaRole::Primary);
        }
        // A removal forced out of a stuck fence: nothing to verify (the machine says so).
        if verified.is_empty() && self.forced {
            return true;
        }
        link_databases(&self.spec.databases, link)
            .iter()
            .all(|name| match log_ends(link, name) {
                (Some(source), Some(instance)) => {
                    (source == instance || self.mutated_equality())
                        && verified
                            .iter()
                            .find(|(n, _)| n == name)
                            .is_none_or(|(_, l)| *l == source || self.mutated_equality())
                }
                (Some(_) | None, None) | (None, Some(_)) => false,
            })
    }

    /// After the link's removal: SQL Server's end of log must still be what the fence verified.
    fn prove_removal(
        &mut self,
        link: &LinkObservation,
        verified: &[(DatabaseName, Lsn)],
        now: Timestamp,
    ) -> Vec<Effect> {
        let mut events = Vec::new();
        if !link.reachable(Side::SqlServer) {
            if !verified.is_empty() {
                self.unverified.push(
                    "after the link was removed SQL Server could not be read, so whether it \
                     wrote log the managed instance never received is not known"
                        .to_owned(),
                );
            }
            return events;
        }
        for (name, hardened) in verified {
            if let (Some(end), _) = log_ends(link, name)
                && end > *hardened
            {
                events.push(
                    self.report_loss(DataLoss {
                        database: name.clone(),
                        side: Side::SqlServer,
                        end_of_log: end,
                        hardened: Some(*hardened),
                        seen_at: now,
                        context: "after the link was removed: SQL Server wrote log the managed \
                              instance never received"
                            .to_owned(),
                    }),
                );
            }
        }
        events
    }

    /// After a planned role change, on the first reading with the new roles: the old primary
    /// holds no log beyond what the new primary hardened, and does not revert anything.
    fn prove_role_change(
        &mut self,
        link: &LinkObservation,
        primary: Side,
        now: Timestamp,
    ) -> Vec<Effect> {
        let verified = std::mem::take(&mut self.verified_lsns);
        let mut events = Vec::new();
        if verified.is_empty() {
            // Not a planned role change (a repair or a forced failover): loss is expected.
            return events;
        }
        let old = primary.other();
        for name in link_databases(&self.spec.databases, link) {
            let (source, instance) = log_ends(link, &name);
            let (old_end, new_hardened) = match old {
                Side::SqlServer => (source, instance),
                Side::ManagedInstance => (instance, source),
            };
            let reverting = sync_state_of(link, old, &name) == Some(SyncState::Reverting);
            let behind = matches!((old_end, new_hardened), (Some(o), Some(n)) if o > n);
            if (reverting || behind)
                && let Some(end_of_log) = old_end
            {
                events.push(self.report_loss(DataLoss {
                    database: name,
                    side: old,
                    end_of_log,
                    hardened: new_hardened,
                    seen_at: now,
                    context: if reverting {
                        "after the failover: the old primary is reverting log the new primary \
                         never hardened"
                            .to_owned()
                    } else {
                        "after the failover".to_owned()
                    },
                }));
            }
        }
        events
    }

    /// Feature `mutations` only: the LSN-equality checks are switched off.
    fn mutated_equality(&self) -> bool {
        #[cfg(feature = "mutations")]
        {
            self.spec.options.mutations.skip_lsn_equality
        }
        #[cfg(not(feature = "mutations"))]
        {
            false
        }
    }

    /// Feature `mutations` only: the stability requirement is switched off.
    fn mutated_stability(&self) -> bool {
        #[cfg(feature = "mutations")]
        {
            self.spec.options.mutations.skip_stability
        }
        #[cfg(not(feature = "mutations"))]
        {
            false
        }
    }

    /// The proof of a planned role change whose old primary could not be read then, on the
    /// first reading that can read it.
    fn pending_proof(&mut self, link: &LinkObservation, now: Timestamp) -> Vec<Effect> {
        match self.proof_pending {
            Some(primary) if link.reachable(primary.other()) && link.reachable(primary) => {
                self.proof_pending = None;
                self.unverified.clear();
                self.prove_role_change(link, primary, now)
            }
            Some(_) | None => Vec::new(),
        }
    }

    fn report_loss(&mut self, report: DataLoss) -> Effect {
        self.data_loss.push(report.clone());
        Effect::Progress(ProgressEvent::DataLoss { report })
    }

    fn on_fencing(
        &mut self,
        plan: Plan,
        step: FenceStep,
        effect: &Effect,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        let fencing = |step| State::Fencing {
            plan: plan.clone(),
            step,
        };
        match (step, effect) {
            (FenceStep::Demote { .. }, Effect::Source { .. }) => {
                expect_done(obs)?;
                Ok(self.enter(fencing(FenceStep::Verify { behind_since: None }), now))
            }
            (FenceStep::Demote { .. }, Effect::Probe { .. }) => {
                let link = self.record_link(obs)?;
                Ok(match role_of(&link, Side::SqlServer) {
                    Some(ReplicaRole::Secondary) => {
                        self.enter(fencing(FenceStep::Verify { behind_since: None }), now)
                    }
                    Some(ReplicaRole::Primary) => {
                        self.state = fencing(FenceStep::Demote {
                            change: RoleChange::Issued,
                        });
                        self.kick()
                    }
                    Some(ReplicaRole::Resolving) | None => self.wait(
                        fencing(FenceStep::Demote {
                            change: RoleChange::Checking,
                        }),
                        now,
                    ),
                })
            }
            (FenceStep::Verify { behind_since }, Effect::Probe { .. }) => {
                let link = self.record_link(obs)?;
                match role_of(&link, Side::SqlServer) {
                    // The fence was lifted outside milink: fence again.
                    Some(ReplicaRole::Primary) => {
                        self.state = fencing(FenceStep::Demote {
                            change: RoleChange::Issued,
                        });
                        return Ok(self.kick());
                    }
                    Some(ReplicaRole::Secondary) => {}
                    Some(ReplicaRole::Resolving) | None => {
                        return Ok(self.wait(fencing(FenceStep::Verify { behind_since }), now));
                    }
                }
                let names = link_databases(&self.spec.databases, &link);
                let mut lsns = Vec::with_capacity(names.len());
                for name in &names {
                    if let (Some(source), Some(instance)) = log_ends(&link, name)
                        && (source == instance || self.mutated_equality())
                    {
                        lsns.push((name.clone(), source));
                    }
                }
                if lsns.len() == names.len() && !names.is_empty() {
                    let Goal::Cutover(options) = plan.goal else {
                        return Err(RejectReason::NotAllowedInState);
                    };
                    return Ok(self.enter(
                        State::RemovingLink {
                            options,
                            redirect: true,
                            removal: RoleChange::Issued,
                            verified: lsns,
                        },
                        now,
                    ));
                }
                // The instance's reading may lag; a gap that outlasts the stability window is
                // real: SQL Server holds log the instance never hardened. Undo the fence.
                let since = behind_since.unwrap_or(now);
                if now.since(since) >= self.spec.options.stability_window {
                    return Ok(self.enter(
                        fencing(FenceStep::Undo {
                            change: RoleChange::Issued,
                            cancel: false,
                        }),
                        now,
                    ));
                }
                Ok(self.wait(
                    fencing(FenceStep::Verify {
                        behind_since: Some(since),
                    }),
                    now,
                ))
            }
            (FenceStep::Undo { cancel, .. }, Effect::Source { .. }) => {
                expect_done(obs)?;
                Ok(self.after_undo(plan, cancel, now))
            }
            (FenceStep::Undo { cancel, .. }, Effect::Probe { .. }) => {
                let link = self.record_link(obs)?;
                Ok(match role_of(&link, Side::SqlServer) {
                    Some(ReplicaRole::Primary) => self.after_undo(plan, cancel, now),
                    Some(ReplicaRole::Secondary) => {
                        self.state = fencing(FenceStep::Undo {
                            change: RoleChange::Issued,
                            cancel,
                        });
                        self.kick()
                    }
                    Some(ReplicaRole::Resolving) | None => self.wait(
                        fencing(FenceStep::Undo {
                            change: RoleChange::Checking,
                            cancel,
                        }),
                        now,
                    ),
                })
            }
            (
                FenceStep::Verify { .. },
                Effect::Source { .. }
                | Effect::Instance { .. }
                | Effect::PollOperation { .. }
                | Effect::Redirect { .. }
                | Effect::Progress(_),
            )
            | (
                FenceStep::Demote { .. } | FenceStep::Undo { .. },
                Effect::Instance { .. }
                | Effect::PollOperation { .. }
                | Effect::Redirect { .. }
                | Effect::Progress(_),
            ) => Err(RejectReason::UnexpectedObservation {
                expected: "an answer to the fence",
            }),
        }
    }

    /// SQL Server takes writes again: run the gate again, or abandon the cutover on cancel.
    fn after_undo(&mut self, plan: Plan, cancel: bool, now: Timestamp) -> Vec<Effect> {
        if cancel {
            self.abort(plan_abort(&plan), now)
        } else if self.fences_undone + 1 >= MAX_FENCES {
            self.fences_undone = 0;
            let error = StepError {
                code: "timeout".to_owned(),
                message: format!(
                    "SQL Server was fenced {MAX_FENCES} times and each time held log the managed \
                     instance had not received: the workload still writes to SQL Server. Stop \
                     it, then resume (the gate runs again); SQL Server takes writes meanwhile"
                ),
                retryable: true,
            };
            let state = State::CatchingUp {
                plan,
                stable: None,
                blocker: None,
            };
            self.fail(state, None, error)
        } else {
            self.fences_undone += 1;
            self.enter(
                State::CatchingUp {
                    plan,
                    stable: None,
                    blocker: None,
                },
                now,
            )
        }
    }

    /// Cancel during the fence: read SQL Server's role, undo the fence if it holds, then
    /// abandon the cutover.
    fn undo_fence(&mut self, plan: Plan, now: Timestamp) -> Vec<Effect> {
        self.enter(
            State::Fencing {
                plan,
                step: FenceStep::Undo {
                    change: RoleChange::Checking,
                    cancel: true,
                },
            },
            now,
        )
    }

    /// A new redirect (a role change was verified, or a one-way link was removed): counted once
    /// here, so retries and resumes of the same redirect keep its id.
    fn begin_redirect(&mut self, primary: Side, then: Then, now: Timestamp) -> Vec<Effect> {
        self.redirects += 1;
        self.enter(State::Redirecting { primary, then }, now)
    }

    /// The link resource is gone: redirect first (one-way cutover), then drop the DAG.
    fn after_link_removal(
        &mut self,
        options: super::input::CutoverOptions,
        redirect: bool,
        now: Timestamp,
    ) -> Vec<Effect> {
        if redirect {
            self.begin_redirect(Side::ManagedInstance, Then::DropDag { options }, now)
        } else {
            self.enter(State::DroppingDag { options }, now)
        }
    }

    fn on_cancelling(
        &mut self,
        step: CancelStep,
        effect: &Effect,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        let next = match step {
            CancelStep::DeleteLink { .. } if matches!(effect, Effect::Probe { .. }) => {
                // The DELETE's reply was lost. An absent link counts as deleted only if its join
                // was confirmed; otherwise the PUT may still be creating it: delete again.
                let link = self.record_link(obs)?;
                let joined = self.seeding_started_at.is_some();
                if !link.reachable(Side::ManagedInstance) {
                    return Ok(self.wait(
                        State::Cancelling {
                            step: CancelStep::DeleteLink {
                                removal: RoleChange::Checking,
                            },
                        },
                        now,
                    ));
                }
                if link.instance.exists || !joined {
                    self.state = State::Cancelling {
                        step: CancelStep::DeleteLink {
                            removal: RoleChange::Issued,
                        },
                    };
                    return Ok(self.kick());
                }
                self.cancel_after(step)
            }
            CancelStep::DeleteLink { .. } => match arm_reply(effect, obs)? {
                ArmReply::Completed => self.cancel_after(step),
                ArmReply::Accepted(op) => {
                    return Ok(self.wait(
                        State::Cancelling {
                            step: CancelStep::DeleteLink {
                                removal: RoleChange::Accepted(op),
                            },
                        },
                        now,
                    ));
                }
                ArmReply::Running => {
                    let removal = match polled_operation(effect) {
                        Some(op) => RoleChange::Accepted(op),
                        None => RoleChange::Issued,
                    };
                    return Ok(self.wait(
                        State::Cancelling {
                            step: CancelStep::DeleteLink { removal },
                        },
                        now,
                    ));
                }
            },
            CancelStep::DropDag | CancelStep::DropAg => {
                expect_done(obs)?;
                self.cancel_after(step)
            }
        };
        Ok(self.enter(next, now))
    }

    /// The cancel step after `done`, or Cancelled.
    fn cancel_after(&self, done: CancelStep) -> State {
        let dag = self.attempted.dag;
        let ag = self.attempted.ag;
        let next = match done {
            CancelStep::DeleteLink { .. } if dag => Some(CancelStep::DropDag),
            CancelStep::DeleteLink { .. } | CancelStep::DropDag if ag => Some(CancelStep::DropAg),
            CancelStep::DeleteLink { .. } | CancelStep::DropDag | CancelStep::DropAg => None,
        };
        match next {
            Some(step) => State::Cancelling { step },
            None => State::Cancelled,
        }
    }

    // ------------------------------------------------------------------------------------------
    // Time and resume.

    fn tick(&mut self, now: Timestamp) -> Vec<Effect> {
        if self.timeout_at.is_some_and(|t| now >= t) {
            return self.time_out();
        }
        if self.wake_at.is_some_and(|w| now >= w) {
            self.wake_at = None;
            return self.kick();
        }
        Vec::new()
    }

    /// Crash-resume: re-issue what is in flight with the same ids, except a call that must not
    /// run twice (a role change or the link's removal) whose reply was not seen: it is replaced
    /// by a read of the link, which decides whether to issue it again.
    fn resume(&mut self) -> Vec<Effect> {
        let unconfirmed = !self.in_flight.is_empty();
        let change = match &mut self.state {
            State::FailingOver { change, .. }
            | State::ForcingFailover { change, .. }
            | State::Repairing { change, .. }
            | State::RemovingLink {
                removal: change, ..
            }
            | State::Cancelling {
                step: CancelStep::DeleteLink { removal: change },
            }
            | State::Fencing {
                step: FenceStep::Demote { change } | FenceStep::Undo { change, .. },
                ..
            } => Some(change),
            State::Draft
            | State::Assessed
            | State::PreparingSource { .. }
            | State::ExchangingTrust { .. }
            | State::CreatingAg { .. }
            | State::CreatingDag
            | State::JoiningInstance { .. }
            | State::Seeding { .. }
            | State::Replicating { .. }
            | State::PreparingFailover { .. }
            | State::CatchingUp { .. }
            | State::VerifyingRoles { .. }
            | State::Redirecting { .. }
            | State::FailedOver { .. }
            | State::SplitBrain
            | State::AwaitingFirstFullBackup { .. }
            | State::Fencing {
                step: FenceStep::Verify { .. },
                ..
            }
            | State::DroppingDag { .. }
            | State::DroppingAg
            | State::Completed
            | State::AbortingFailover { .. }
            | State::Cancelling {
                step: CancelStep::DropDag | CancelStep::DropAg,
            }
            | State::Cancelled
            | State::Failed { .. } => None,
        };
        if let Some(change) = change
            && *change == RoleChange::Issued
            && unconfirmed
        {
            *change = RoleChange::Checking;
            self.in_flight.clear();
            self.wake_at = None;
            return vec![self.probe(Probe::Link)];
        }
        self.in_flight.clone()
    }

    fn time_out(&mut self) -> Vec<Effect> {
        let limit = self.timeout_for(&self.state).unwrap_or_default();
        let detail = match &self.state {
            State::CatchingUp {
                blocker: Some(b), ..
            } => format!(
                ": {b}. Stop the application workload on the primary, check the lag, then resume"
            ),
            State::AwaitingFirstFullBackup { missing, .. } => format!(
                ": the managed instance has no qualifying full backup yet of {}; the link is \
                 kept until it has one. Resume to keep waiting",
                join_names(missing)
            ),
            State::Seeding { databases } => format!(
                ": seeding progress {}. Check the error logs for 1408/1412 and the network",
                databases
                    .iter()
                    .map(|p| {
                        let percent = match p.percent {
                            Some(pc) => format!("{} {pc}%", p.database),
                            None => format!("{} unknown", p.database),
                        };
                        match &p.last_error {
                            Some(e) => format!("{percent} (last error: {e})"),
                            None => percent,
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            State::Fencing {
                step: FenceStep::Verify { .. },
                ..
            } => ": SQL Server is fenced (SECONDARY) and the managed instance has not reported \
                 SQL Server's end of log as hardened yet; resume to keep checking, or cancel to \
                 let SQL Server take writes again"
                .to_owned(),
            State::RemovingLink { redirect, .. } => format!(
                ": the link is kept until a reading shows {}",
                if *redirect {
                    "SQL Server fenced (not PRIMARY) and its end of log hardened on the managed \
                     instance"
                } else {
                    "the managed instance PRIMARY, SQL Server not, and no SQL Server log beyond \
                     what the instance hardened"
                }
            ),
            State::JoiningInstance { .. } => ": the managed instance did not join the link; \
                 check connectivity on port 5022 and 11000-11999 (error 41962) and the \
                 certificates (41973, 41974)"
                .to_owned(),
            State::VerifyingRoles { primary, .. } => format!(
                ": {} did not report the expected roles{}",
                side_name(*primary),
                match &self.last_link {
                    Some(l) => format!(
                        " (last read: SQL Server {:?}, managed instance {:?})",
                        l.source.role, l.instance.role
                    ),
                    None => String::new(),
                }
            ),
            State::Draft
            | State::Assessed
            | State::PreparingSource { .. }
            | State::ExchangingTrust { .. }
            | State::CreatingAg { .. }
            | State::CreatingDag
            | State::Replicating { .. }
            | State::PreparingFailover { .. }
            | State::CatchingUp { blocker: None, .. }
            | State::FailingOver { .. }
            | State::ForcingFailover { .. }
            | State::Redirecting { .. }
            | State::FailedOver { .. }
            | State::SplitBrain
            | State::Repairing { .. }
            | State::Fencing {
                step: FenceStep::Demote { .. } | FenceStep::Undo { .. },
                ..
            }
            | State::DroppingDag { .. }
            | State::DroppingAg
            | State::Completed
            | State::AbortingFailover { .. }
            | State::Cancelling { .. }
            | State::Cancelled
            | State::Failed { .. } => String::new(),
        };
        let error = StepError {
            code: "timeout".to_owned(),
            message: format!(
                "{} did not finish within {}{detail}",
                self.state.name(),
                format_duration(limit)
            ),
            retryable: true,
        };
        let step = self.in_flight.first().and_then(Effect::step);
        let state = std::mem::replace(&mut self.state, State::Draft);
        self.fail(state, step, error)
    }

    fn timeout_for(&self, state: &State) -> Option<Duration> {
        let o = &self.spec.options;
        match state {
            State::Draft
            | State::Assessed
            | State::Replicating { .. }
            | State::FailedOver { .. }
            | State::SplitBrain
            | State::Completed
            | State::Cancelled
            | State::Failed { .. } => None,
            State::PreparingSource { .. }
            | State::ExchangingTrust { .. }
            | State::CreatingAg { .. }
            | State::CreatingDag
            | State::Redirecting { .. }
            | State::DroppingDag { .. }
            | State::DroppingAg
            | State::AbortingFailover { .. }
            | State::Cancelling {
                step: CancelStep::DropDag | CancelStep::DropAg,
            } => Some(o.step_timeout),
            State::JoiningInstance { .. }
            | State::RemovingLink { .. }
            | State::Cancelling {
                step: CancelStep::DeleteLink { .. },
            } => Some(o.join_timeout),
            State::Seeding { .. } => Some(o.seeding_timeout),
            State::PreparingFailover { .. } | State::CatchingUp { .. } => Some(o.catch_up_timeout),
            State::FailingOver { .. }
            | State::ForcingFailover { .. }
            | State::VerifyingRoles { .. }
            | State::Repairing { .. }
            | State::Fencing { .. } => Some(o.failover_timeout),
            State::AwaitingFirstFullBackup { .. } => Some(o.first_backup_timeout),
        }
    }

    // ------------------------------------------------------------------------------------------
    // Entering phases and issuing effects.

    /// Enters `state` (a new phase or sub-step): resets timers and issues the phase's effects.
    fn enter(&mut self, state: State, now: Timestamp) -> Vec<Effect> {
        self.in_flight.clear();
        self.wake_at = None;
        self.timeout_at = self.timeout_for(&state).map(|d| now.plus(d));
        self.state = state;
        self.kick()
    }

    /// Stays in (an updated) `state` and schedules the next probe or poll.
    fn wait(&mut self, state: State, now: Timestamp) -> Vec<Effect> {
        self.state = state;
        self.schedule(now);
        Vec::new()
    }

    fn schedule(&mut self, now: Timestamp) {
        self.wake_at = Some(now.plus(self.spec.options.probe_interval));
    }

    fn fail(&mut self, state: State, step: Option<StepId>, error: StepError) -> Vec<Effect> {
        self.in_flight.clear();
        self.wake_at = None;
        self.timeout_at = None;
        self.state = State::Failed {
            phase: Box::new(state),
            step,
            retryable: error.retryable,
            error,
        };
        Vec::new()
    }

    /// Issues what the current state needs now (and is not already in flight).
    fn kick(&mut self) -> Vec<Effect> {
        let spec = &self.spec;
        let link = spec.link.clone();
        match self.state.clone() {
            State::Draft
            | State::Assessed
            | State::SplitBrain
            | State::Completed
            | State::Cancelled
            | State::Failed { .. } => Vec::new(),
            State::PreparingSource { step } => {
                let op = match step {
                    PrepareStep::MasterKey => SourceOp::EnsureMasterKey,
                    PrepareStep::EndpointCertificate => SourceOp::EnsureEndpointCertificate {
                        name: spec.source.certificate.clone(),
                        subject: format!("Certificate for {}", spec.source.certificate),
                        expiry: spec.source.certificate_expiry,
                    },
                    PrepareStep::Endpoint => SourceOp::EnsureMirroringEndpoint {
                        name: spec.source.endpoint_name.clone(),
                        port: spec.source.endpoint_port,
                        certificate: spec.source.certificate.clone(),
                    },
                };
                vec![self.source(op)]
            }
            State::ExchangingTrust { step } => match step {
                TrustStep::ExportCertificate => {
                    let name = spec.source.certificate.clone();
                    vec![self.source(SourceOp::ExportCertificatePublicKey { name })]
                }
                TrustStep::UploadCertificate {
                    public_key,
                    operation: None,
                } => {
                    let name = spec.source.certificate.clone();
                    vec![self.instance(InstanceOp::PutServerTrustCertificate {
                        name,
                        public_blob: public_key,
                    })]
                }
                TrustStep::UploadCertificate {
                    operation: Some(op),
                    ..
                } => vec![self.poll(op)],
                TrustStep::GetInstanceCertificate => {
                    vec![self.instance(InstanceOp::GetEndpointCertificate)]
                }
                TrustStep::ImportInstanceCertificate { certificate } => {
                    let fqdn = spec.target.fqdn.clone();
                    vec![self.source(SourceOp::ImportInstanceCertificate {
                        fqdn,
                        der: certificate,
                    })]
                }
                TrustStep::RootCertificates => vec![self.source(SourceOp::EnsureRootCaTrust)],
            },
            State::CreatingAg { step } => {
                let ag = spec.source.ag.clone();
                let op = match step {
                    AgStep::Create => SourceOp::CreateAvailabilityGroup {
                        ag,
                        databases: match spec.initial_primary {
                            Side::SqlServer => spec.databases.clone(),
                            Side::ManagedInstance => Vec::new(),
                        },
                        replica: spec.source.server.clone(),
                        endpoint_url: spec.source.endpoint_url(),
                        cluster_type_none: spec.capabilities().cluster_type_none,
                    },
                    AgStep::GrantCreateAnyDatabase => SourceOp::GrantCreateAnyDatabase { ag },
                };
                self.attempted.ag = true;
                vec![self.source(op)]
            }
            State::CreatingDag => {
                let op = SourceOp::CreateDistributedAvailabilityGroup {
                    dag: link,
                    sql_ag: spec.source.ag.clone(),
                    sql_listener_url: spec.source.endpoint_url(),
                    mi_ag: spec.target.ag.clone(),
                    mi_fqdn: spec.target.fqdn.clone(),
                    mi_database: match spec.initial_primary {
                        Side::SqlServer => None,
                        Side::ManagedInstance => spec.databases.first().cloned(),
                    },
                    session_timeout_s: spec.session_timeout_s,
                };
                self.attempted.dag = true;
                vec![self.source(op)]
            }
            State::JoiningInstance { operation } => {
                self.attempted.link = true;
                match operation {
                    Some(op) => vec![self.poll(op)],
                    None => {
                        let properties = LinkProperties {
                            instance_link_role: spec.initial_primary,
                            instance_ag: spec.target.ag.clone(),
                            partner_ag: spec.source.ag.clone(),
                            partner_endpoint: spec.source.endpoint_url(),
                            failover_mode: spec.failover_mode,
                            seeding_mode: spec.seeding_mode,
                            link_mode: spec.mode,
                            databases: spec.databases.clone(),
                        };
                        vec![self.instance(InstanceOp::PutLink { link, properties })]
                    }
                }
            }
            State::Seeding { .. }
            | State::Replicating { .. }
            | State::CatchingUp { .. }
            | State::VerifyingRoles { .. }
            | State::FailedOver { .. } => vec![self.probe(Probe::Link)],
            State::AwaitingFirstFullBackup { .. } => vec![self.probe(Probe::FirstFullBackups)],
            State::PreparingFailover {
                source_done,
                instance,
                ..
            } => self.kick_modes(AvailabilityMode::SynchronousCommit, source_done, instance),
            State::AbortingFailover {
                abort,
                source_done,
                instance,
            } => self.kick_modes(
                abort
                    .restore_mode
                    .unwrap_or(AvailabilityMode::AsynchronousCommit),
                source_done,
                instance,
            ),
            State::FailingOver { via, change, .. } => match change {
                RoleChange::Checking => vec![self.probe(Probe::Link)],
                RoleChange::Accepted(op) => vec![self.poll(op)],
                RoleChange::Issued => match via {
                    FailoverVia::Tsql => vec![self.source(SourceOp::Failover { dag: link })],
                    FailoverVia::Arm => vec![self.instance(InstanceOp::Failover {
                        link,
                        failover_type: ArmFailoverType::Planned,
                    })],
                },
            },
            State::ForcingFailover { target, change, .. } => match change {
                RoleChange::Checking => vec![self.probe(Probe::Link)],
                RoleChange::Accepted(op) => vec![self.poll(op)],
                RoleChange::Issued => match target {
                    Side::ManagedInstance => vec![self.instance(InstanceOp::Failover {
                        link,
                        failover_type: ArmFailoverType::ForcedAllowDataLoss,
                    })],
                    Side::SqlServer => vec![self.source(SourceOp::ForceFailover { dag: link })],
                },
            },
            State::Repairing { keep, change } => match change {
                RoleChange::Checking => vec![self.probe(Probe::Link)],
                RoleChange::Accepted(op) => vec![self.poll(op)],
                RoleChange::Issued => match keep {
                    Side::ManagedInstance => {
                        vec![self.source(SourceOp::SetRoleSecondary { dag: link })]
                    }
                    // `role` names the side that is primary afterwards: the instance becomes
                    // secondary.
                    Side::SqlServer => vec![self.instance(InstanceOp::SetRole {
                        link,
                        role: Side::SqlServer,
                        change: RoleChangeType::Forced,
                    })],
                },
            },
            State::Redirecting { primary, .. } => vec![self.redirect(primary)],
            State::RemovingLink { removal, .. } => self.kick_removal(removal),
            State::Fencing { step, .. } => match step {
                FenceStep::Demote {
                    change: RoleChange::Issued,
                } => vec![self.source(SourceOp::SetRoleSecondary { dag: link })],
                FenceStep::Undo {
                    change: RoleChange::Issued,
                    ..
                } => vec![self.source(SourceOp::ForceFailover { dag: link })],
                // T-SQL calls are never accepted as operations; read the roles.
                FenceStep::Demote {
                    change: RoleChange::Checking | RoleChange::Accepted(_),
                }
                | FenceStep::Undo {
                    change: RoleChange::Checking | RoleChange::Accepted(_),
                    ..
                }
                | FenceStep::Verify { .. } => vec![self.probe(Probe::Link)],
            },
            State::DroppingDag { .. } => {
                vec![self.source(SourceOp::DropDistributedAvailabilityGroup { dag: link })]
            }
            State::DroppingAg => {
                let ag = spec.source.ag.clone();
                vec![self.source(SourceOp::DropAvailabilityGroup { ag })]
            }
            State::Cancelling { step } => match step {
                CancelStep::DeleteLink { removal } => self.kick_removal(removal),
                CancelStep::DropDag => {
                    vec![self.source(SourceOp::DropDistributedAvailabilityGroup { dag: link })]
                }
                CancelStep::DropAg => {
                    let ag = spec.source.ag.clone();
                    vec![self.source(SourceOp::DropAvailabilityGroup { ag })]
                }
            },
        }
    }

    /// The link's `DELETE`, its poll, or the read of the link before sending it again.
    fn kick_removal(&mut self, removal: RoleChange) -> Vec<Effect> {
        match removal {
            RoleChange::Checking => vec![self.probe(Probe::Link)],
            RoleChange::Accepted(op) => vec![self.poll(op)],
            RoleChange::Issued => {
                let link = self.spec.link.clone();
                vec![self.instance(InstanceOp::DeleteLink { link })]
            }
        }
    }

    /// The two availability-mode changes, each unless done or already in flight.
    fn kick_modes(
        &mut self,
        mode: AvailabilityMode,
        source_done: bool,
        instance: ArmCall,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        let source_in_flight = self
            .in_flight
            .iter()
            .any(|e| matches!(e, Effect::Source { .. }));
        let instance_in_flight = self
            .in_flight
            .iter()
            .any(|e| matches!(e, Effect::Instance { .. } | Effect::PollOperation { .. }));
        if !source_done && !source_in_flight {
            let op = SourceOp::SetAvailabilityMode {
                dag: self.spec.link.clone(),
                sql_ag: self.spec.source.ag.clone(),
                mi_ag: self.spec.target.ag.clone(),
                mode,
            };
            effects.push(self.source(op));
        }
        if !instance_in_flight {
            match instance {
                ArmCall::Requested => {
                    let link = self.spec.link.clone();
                    effects.push(self.instance(InstanceOp::SetReplicationMode { link, mode }));
                }
                ArmCall::Accepted(op) => effects.push(self.poll(op)),
                ArmCall::Done => {}
            }
        }
        effects
    }

    fn next_id(&mut self) -> StepId {
        self.next_step += 1;
        StepId(self.next_step)
    }

    fn issue(&mut self, effect: Effect) -> Effect {
        self.in_flight.push(effect.clone());
        effect
    }

    fn source(&mut self, op: SourceOp) -> Effect {
        let step = self.next_id();
        self.issue(Effect::Source { step, op })
    }

    fn instance(&mut self, op: InstanceOp) -> Effect {
        let step = self.next_id();
        self.issue(Effect::Instance { step, op })
    }

    fn poll(&mut self, operation: OperationRef) -> Effect {
        let step = self.next_id();
        self.issue(Effect::PollOperation { step, operation })
    }

    fn probe(&mut self, probe: Probe) -> Effect {
        let step = self.next_id();
        self.issue(Effect::Probe { step, probe })
    }

    fn redirect(&mut self, primary: Side) -> Effect {
        let step = self.next_id();
        self.issue(Effect::Redirect { step, primary })
    }

    // ------------------------------------------------------------------------------------------
    // Reading observations.

    fn record_link(&mut self, obs: Observation) -> Result<LinkObservation, RejectReason> {
        let link = expect_link(obs)?;
        self.last_link = Some(link.clone());
        self.last_probe_error = None;
        Ok(link)
    }

    /// The SQL Server DAG mode as last read (restored when a role change is abandoned).
    fn current_mode(&self) -> Option<AvailabilityMode> {
        self.last_link.as_ref().and_then(|l| l.source.mode)
    }

    fn steady_after(&self, primary: Side, data_loss_possible: bool) -> Steady {
        if primary == self.spec.initial_primary {
            Steady::Replicating
        } else {
            Steady::FailedOver {
                primary,
                data_loss_possible,
            }
        }
    }

    fn then_after(&self, primary: Side, data_loss_possible: bool) -> Then {
        match self.steady_after(primary, data_loss_possible) {
            Steady::Replicating => Then::Replicating,
            Steady::FailedOver {
                data_loss_possible, ..
            } => Then::FailedOver { data_loss_possible },
        }
    }

    /// Mode, worst health and largest lag of the link with `primary` as primary, and one `Lag`
    /// event per database.
    fn replication_report(
        &self,
        link: &LinkObservation,
        primary: Side,
    ) -> (
        Option<AvailabilityMode>,
        Option<SyncHealth>,
        Option<u64>,
        Vec<Effect>,
    ) {
        let pview = side_view(link, primary);
        let sview = side_view(link, primary.other());
        let mut health: Option<SyncHealth> = None;
        let mut lag: Option<u64> = None;
        let mut events = Vec::new();
        for name in &self.spec.databases {
            let p = find_db(pview, name);
            let s = find_db(sview, name);
            if let Some(s) = s {
                health = Some(match health {
                    Some(h) if health_rank(h) <= health_rank(s.health) => h,
                    Some(_) | None => s.health,
                });
            }
            let seconds = s
                .and_then(|d| d.lag_seconds)
                .or_else(|| p.and_then(|d| d.lag_seconds));
            let lsn_gap = match (
                p.and_then(|d| d.last_hardened_lsn),
                s.and_then(|d| d.last_hardened_lsn),
            ) {
                (Some(a), Some(b)) => Some(a.value().saturating_sub(b.value())),
                (Some(_), None) | (None, Some(_)) | (None, None) => None,
            };
            if let Some(sec) = seconds {
                lag = Some(lag.map_or(sec, |l| l.max(sec)));
            }
            if seconds.is_some() || lsn_gap.is_some() {
                events.push(Effect::Progress(ProgressEvent::Lag {
                    database: name.clone(),
                    seconds,
                    lsn_gap,
                }));
            }
        }
        (pview.mode, health, lag, events)
    }

    /// The catch-up gate for a role change to `target`: the equal LSNs, or why not yet.
    ///
    /// Each fact comes from the source that really reports it:
    /// - availability modes: SQL Server's `sys.availability_replicas` for both replicas of the
    ///   distributed availability group (its own, and the managed instance's as SQL Server's
    ///   catalog holds it, when reported), and the instance's ARM `replicationMode`;
    /// - roles: SQL Server's `sys.dm_hadr_availability_replica_states` and the instance's ARM
    ///   `instanceLinkRole`;
    /// - the target's synchronization state: its own DMV row when the side reports one (SQL
    ///   Server over T-SQL), else the primary's DMV row for the remote replica (ARM has no
    ///   synchronization state);
    /// - LSNs: the current primary's `end_of_log_lsn` (else its `last_hardened_lsn`), the
    ///   target's `last_hardened_lsn` (the instance's through ARM `lastHardenedLsn`, which may
    ///   lag), and, when the primary reports its remote replica's row, that row's
    ///   `last_hardened_lsn`. All must be equal.
    ///
    /// Every database either side reports in the link is covered, not only the spec's.
    fn catch_up_gate(
        &self,
        link: &LinkObservation,
        target: Side,
    ) -> Result<Vec<(DatabaseName, Lsn)>, CatchUpBlocker> {
        for side in [Side::SqlServer, Side::ManagedInstance] {
            let mode = side_view(link, side).mode;
            if mode != Some(AvailabilityMode::SynchronousCommit) {
                return Err(CatchUpBlocker::ModeNotSynchronous { side, mode });
            }
            let partner = side_view(link, side).partner_mode;
            if partner.is_some_and(|m| m != AvailabilityMode::SynchronousCommit) {
                return Err(CatchUpBlocker::ModeNotSynchronous {
                    side: side.other(),
                    mode: partner,
                });
            }
        }
        if role_of(link, target) != Some(ReplicaRole::Secondary)
            || role_of(link, target.other()) != Some(ReplicaRole::Primary)
        {
            return Err(CatchUpBlocker::RolesNotAsExpected);
        }
        let primary = target.other();
        let names = link_databases(&self.spec.databases, link);
        let mut lsns = Vec::with_capacity(names.len());
        for name in names {
            match sync_state_of(link, target, &name) {
                Some(SyncState::Synchronized) => {}
                state => {
                    return Err(CatchUpBlocker::NotSynchronized {
                        database: name,
                        state,
                    });
                }
            }
            let missing = |side: Side| CatchUpBlocker::LsnMissing {
                database: name.clone(),
                side,
            };
            let p = find_db(side_view(link, primary), &name);
            let t = find_db(side_view(link, target), &name);
            let primary_end = p
                .and_then(|d| d.end_of_log_lsn.or(d.last_hardened_lsn))
                .ok_or_else(|| missing(primary))?;
            let target_hardened = t
                .and_then(|d| d.last_hardened_lsn.or(d.end_of_log_lsn))
                .ok_or_else(|| missing(target))?;
            let partner_hardened = p.and_then(|d| d.partner).and_then(|r| r.last_hardened_lsn);
            let (source, instance) = match primary {
                Side::SqlServer => (primary_end, target_hardened),
                Side::ManagedInstance => (target_hardened, primary_end),
            };
            if source != instance && !self.mutated_equality() {
                return Err(CatchUpBlocker::LsnsNotEqual {
                    database: name,
                    source,
                    instance,
                });
            }
            if let Some(seen) = partner_hardened
                && seen != primary_end
                && !self.mutated_equality()
            {
                let (source, instance) = match primary {
                    Side::SqlServer => (primary_end, seen),
                    Side::ManagedInstance => (seen, primary_end),
                };
                return Err(CatchUpBlocker::LsnsNotEqual {
                    database: name,
                    source,
                    instance,
                });
            }
            lsns.push((name, primary_end));
        }
        Ok(lsns)
    }
}

// ----------------------------------------------------------------------------------------------
// Free helpers.

/// A reply to an ARM call or poll.
enum ArmReply {
    Completed,
    Accepted(OperationRef),
    Running,
}

fn arm_reply(effect: &Effect, obs: Observation) -> Result<ArmReply, RejectReason> {
    let polling = matches!(effect, Effect::PollOperation { .. });
    match obs {
        Observation::Done => Ok(ArmReply::Completed),
        Observation::OperationAccepted(op) if !polling => Ok(ArmReply::Accepted(op)),
        Observation::OperationRunning if polling => Ok(ArmReply::Running),
        Observation::OperationAccepted(_)
        | Observation::OperationRunning
        | Observation::PublicKey(_)
        | Observation::Link(_)
        | Observation::FullBackups(_) => Err(RejectReason::UnexpectedObservation {
            expected: if polling {
                "Done or OperationRunning"
            } else {
                "Done or OperationAccepted"
            },
        }),
    }
}

fn polled_operation(effect: &Effect) -> Option<OperationRef> {
    match effect {
        Effect::PollOperation { operation, .. } => Some(operation.clone()),
        Effect::Source { .. }
        | Effect::Instance { .. }
        | Effect::Probe { .. }
        | Effect::Redirect { .. }
        | Effect::Progress(_) => None,
    }
}

fn expect_done(obs: Observation) -> Result<(), RejectReason> {
    match obs {
        Observation::Done => Ok(()),
        Observation::PublicKey(_)
        | Observation::OperationAccepted(_)
        | Observation::OperationRunning
        | Observation::Link(_)
        | Observation::FullBackups(_) => {
            Err(RejectReason::UnexpectedObservation { expected: "Done" })
        }
    }
}

fn expect_public_key(obs: Observation) -> Result<Vec<u8>, RejectReason> {
    match obs {
        Observation::PublicKey(der) if !der.is_empty() => Ok(der),
        Observation::PublicKey(_)
        | Observation::Done
        | Observation::OperationAccepted(_)
        | Observation::OperationRunning
        | Observation::Link(_)
        | Observation::FullBackups(_) => Err(RejectReason::UnexpectedObservation {
            expected: "a non-empty PublicKey",
        }),
    }
}

fn expect_link(obs: Observation) -> Result<LinkObservation, RejectReason> {
    match obs {
        Observation::Link(link) => Ok(link),
        Observation::Done
        | Observation::PublicKey(_)
        | Observation::OperationAccepted(_)
        | Observation::OperationRunning
        | Observation::FullBackups(_) => {
            Err(RejectReason::UnexpectedObservation { expected: "Link" })
        }
    }
}

fn expect_backups(obs: Observation) -> Result<Vec<FullBackup>, RejectReason> {
    match obs {
        Observation::FullBackups(backups) => Ok(backups),
        Observation::Done
        | Observation::PublicKey(_)
        | Observation::OperationAccepted(_)
        | Observation::OperationRunning
        | Observation::Link(_) => Err(RejectReason::UnexpectedObservation {
            expected: "FullBackups",
        }),
    }
}

/// The databases without a full backup finished at or after `after`.
fn missing_backups(
    databases: &[DatabaseName],
    backups: &[FullBackup],
    after: Option<Timestamp>,
) -> Vec<DatabaseName> {
    databases
        .iter()
        .filter(|db| {
            !backups.iter().any(|b| {
                &b.database == *db
                    && b.finished
                        .is_some_and(|t| after.is_none_or(|after| t >= after))
            })
        })
        .cloned()
        .collect()
}

fn side_view(link: &LinkObservation, side: Side) -> &SideView {
    match side {
        Side::SqlServer => &link.source,
        Side::ManagedInstance => &link.instance,
    }
}

fn role_of(link: &LinkObservation, side: Side) -> Option<ReplicaRole> {
    side_view(link, side).role
}

fn both_primary(link: &LinkObservation) -> bool {
    link.source.role == Some(ReplicaRole::Primary)
        && link.instance.role == Some(ReplicaRole::Primary)
}

fn find_db<'a>(view: &'a SideView, name: &DatabaseName) -> Option<&'a super::input::DatabaseView> {
    view.databases.iter().find(|d| &d.name == name)
}

/// The synchronization state of `side`'s replica of `name`: the side's own DMV row when it
/// reports one (T-SQL), else the other side's row for its remote replica (a primary's DMV has a
/// row per remote replica). ARM reports neither, so for a managed instance read through ARM
/// the state comes from SQL Server's DMV.
fn sync_state_of(link: &LinkObservation, side: Side, name: &DatabaseName) -> Option<SyncState> {
    find_db(side_view(link, side), name)
        .and_then(|d| d.sync_state)
        .or_else(|| {
            find_db(side_view(link, side.other()), name)
                .and_then(|d| d.partner)
                .map(|p| p.sync_state)
        })
}

/// SQL Server's end of log (the DMV's `end_of_log_lsn`, else `last_hardened_lsn`) and the
/// instance's hardened LSN (ARM `lastHardenedLsn`, else its end of log) for `name`.
fn log_ends(link: &LinkObservation, name: &DatabaseName) -> (Option<Lsn>, Option<Lsn>) {
    let source = find_db(&link.source, name).and_then(|d| d.end_of_log_lsn.or(d.last_hardened_lsn));
    let instance =
        find_db(&link.instance, name).and_then(|d| d.last_hardened_lsn.or(d.end_of_log_lsn));
    (source, instance)
}

/// Every database the link carries: the spec's, and any other database either side reports
/// in the link (a database added to the availability group later, in MultiDatabase mode), in
/// name order.
fn link_databases(spec: &[DatabaseName], link: &LinkObservation) -> Vec<DatabaseName> {
    let mut names: Vec<DatabaseName> = spec.to_vec();
    for view in [&link.source, &link.instance] {
        for d in &view.databases {
            if !names.contains(&d.name) {
                names.push(d.name.clone());
            }
        }
    }
    names
}

fn health_rank(h: SyncHealth) -> u8 {
    match h {
        SyncHealth::NotHealthy => 0,
        SyncHealth::PartiallyHealthy => 1,
        SyncHealth::Healthy => 2,
    }
}

fn plan_abort(plan: &Plan) -> Abort {
    Abort {
        back_to: plan.from,
        restore_mode: plan.restore_mode,
    }
}

/// How many times a one-way cutover fences SQL Server and undoes the fence before it fails.
const MAX_FENCES: u32 = 3;

/// A role change or repair that failed half-way (a forced failover may be the way out).
fn is_half_way(phase: &State) -> bool {
    half_way_target(phase).is_some()
}

/// The side a role change or repair was making primary, for the phases that can fail half-way.
fn half_way_target(phase: &State) -> Option<Side> {
    match phase {
        State::FailingOver { target, .. } | State::ForcingFailover { target, .. } => Some(*target),
        State::VerifyingRoles { primary, .. } | State::Redirecting { primary, .. } => {
            Some(*primary)
        }
        State::Repairing { keep, .. } => Some(*keep),
        State::Draft
        | State::Assessed
        | State::PreparingSource { .. }
        | State::ExchangingTrust { .. }
        | State::CreatingAg { .. }
        | State::CreatingDag
        | State::JoiningInstance { .. }
        | State::Seeding { .. }
        | State::Replicating { .. }
        | State::PreparingFailover { .. }
        | State::CatchingUp { .. }
        | State::FailedOver { .. }
        | State::SplitBrain
        | State::AwaitingFirstFullBackup { .. }
        | State::Fencing { .. }
        | State::RemovingLink { .. }
        | State::DroppingDag { .. }
        | State::DroppingAg
        | State::Completed
        | State::AbortingFailover { .. }
        | State::Cancelling { .. }
        | State::Cancelled
        | State::Failed { .. } => None,
    }
}

/// The steady state a failed phase belongs to, when a forced failover may start from it.
fn steady_of_failed(phase: &State) -> Option<Steady> {
    match phase {
        State::Replicating { .. } => Some(Steady::Replicating),
        State::FailedOver {
            primary,
            data_loss_possible,
        } => Some(Steady::FailedOver {
            primary: *primary,
            data_loss_possible: *data_loss_possible,
        }),
        State::PreparingFailover { plan, .. } | State::CatchingUp { plan, .. } => Some(plan.from),
        State::Draft
        | State::Assessed
        | State::PreparingSource { .. }
        | State::ExchangingTrust { .. }
        | State::CreatingAg { .. }
        | State::CreatingDag
        | State::JoiningInstance { .. }
        | State::Seeding { .. }
        | State::FailingOver { .. }
        | State::ForcingFailover { .. }
        | State::VerifyingRoles { .. }
        | State::Redirecting { .. }
        | State::SplitBrain
        | State::Repairing { .. }
        | State::AwaitingFirstFullBackup { .. }
        | State::Fencing { .. }
        | State::RemovingLink { .. }
        | State::DroppingDag { .. }
        | State::DroppingAg
        | State::Completed
        | State::AbortingFailover { .. }
        | State::Cancelling { .. }
        | State::Cancelled
        | State::Failed { .. } => None,
    }
}

/// The state a failed phase is re-entered in: accepted operations are re-issued (PUT and PATCH
/// are idempotent), role changes and the link's removal start with a read of the link (the
/// failed call may have taken effect: a timeout does not say) unless their accepted operation is
/// still to be followed, and the catch-up window restarts.
fn reset_for_retry(state: State, retryable: bool) -> State {
    // An accepted operation that did not report failure (the step timed out, or its poll failed
    // transiently) may still be running: follow it by its URL, never send it again. One that
    // failed for good is judged by a reading of the link.
    let after = |change: RoleChange| match change {
        RoleChange::Accepted(op) if retryable => RoleChange::Accepted(op),
        RoleChange::Accepted(_) | RoleChange::Issued | RoleChange::Checking => RoleChange::Checking,
    };
    match state {
        State::ExchangingTrust {
            step: TrustStep::UploadCertificate { public_key, .. },
        } => State::ExchangingTrust {
            step: TrustStep::UploadCertificate {
                public_key,
                operation: None,
            },
        },
        State::JoiningInstance { .. } => State::JoiningInstance { operation: None },
        State::PreparingFailover {
            plan,
            source_done,
            instance,
        } => State::PreparingFailover {
            plan,
            source_done,
            instance: requested_unless_done(instance),
        },
        State::AbortingFailover {
            abort,
            source_done,
            instance,
        } => State::AbortingFailover {
            abort,
            source_done,
            instance: requested_unless_done(instance),
        },
        State::CatchingUp { plan, .. } => State::CatchingUp {
            plan,
            stable: None,
            blocker: None,
        },
        State::FailingOver {
            target,
            via,
            change,
            then,
            plan,
            ..
        } => State::FailingOver {
            target,
            via,
            change: after(change),
            then,
            plan,
            cancel: false,
        },
        State::Fencing {
            plan,
            step: FenceStep::Verify { .. },
        } => State::Fencing {
            plan,
            step: FenceStep::Verify { behind_since: None },
        },
        s => map_role_change(s, &after),
    }
}

/// The state with the progress of its call that must not run twice (a role change, the fence
/// and its undo, the link's removal) mapped by `f`; other states unchanged.
fn map_role_change(state: State, f: &dyn Fn(RoleChange) -> RoleChange) -> State {
    match state {
        State::FailingOver {
            target,
            via,
            change,
            then,
            plan,
            cancel,
        } => State::FailingOver {
            target,
            via,
            change: f(change),
            then,
            plan,
            cancel,
        },
        State::ForcingFailover {
            target,
            change,
            then,
        } => State::ForcingFailover {
            target,
            change: f(change),
            then,
        },
        State::Repairing { keep, change } => State::Repairing {
            keep,
            change: f(change),
        },
        State::RemovingLink {
            options,
            redirect,
            verified,
            removal,
        } => State::RemovingLink {
            options,
            redirect,
            removal: f(removal),
            verified,
        },
        State::Cancelling {
            step: CancelStep::DeleteLink { removal },
        } => State::Cancelling {
            step: CancelStep::DeleteLink {
                removal: f(removal),
            },
        },
        State::Fencing {
            plan,
            step: FenceStep::Demote { change },
        } => State::Fencing {
            plan,
            step: FenceStep::Demote { change: f(change) },
        },
        State::Fencing {
            plan,
            step: FenceStep::Undo { change, cancel },
        } => State::Fencing {
            plan,
            step: FenceStep::Undo {
                change: f(change),
                cancel,
            },
        },
        s @ (State::Draft
        | State::Assessed
        | State::PreparingSource { .. }
        | State::ExchangingTrust { .. }
        | State::CreatingAg { .. }
        | State::CreatingDag
        | State::JoiningInstance { .. }
        | State::Seeding { .. }
        | State::Replicating { .. }
        | State::PreparingFailover { .. }
        | State::CatchingUp { .. }
        | State::VerifyingRoles { .. }
        | State::Redirecting { .. }
        | State::FailedOver { .. }
        | State::SplitBrain
        | State::AwaitingFirstFullBackup { .. }
        | State::Fencing {
            step: FenceStep::Verify { .. },
            ..
        }
        | State::DroppingDag { .. }
        | State::DroppingAg
        | State::Completed
        | State::AbortingFailover { .. }
        | State::Cancelling { .. }
        | State::Cancelled
        | State::Failed { .. }) => s,
    }
}

/// ARM answers to a role change that say one is already running or already done (the spec's
/// 409 codes): evidence to read the roles by, never a reason to send the call again.
pub(crate) const ROLE_CHANGE_EVIDENCE: [&str; 2] = [
    "arm:409:DistributedAvailabilityGroupSetRoleChangeRoleAlreadyInProgress",
    "arm:409:DistributedAvailabilityGroupSetRoleInstanceAlreadyInRequestedRole",
];

fn role_change_evidence(code: &str) -> bool {
    ROLE_CHANGE_EVIDENCE.contains(&code)
}

/// The state with its call that must not run twice set to be judged by a reading of the link.
fn checking(state: State) -> State {
    map_role_change(state, &|_| RoleChange::Checking)
}

/// The link resource says an accepted failover or setRole is still running
/// (`databases[].replicaState` `LinkFailoverInProgress`): wait, never send another.
fn role_change_running(link: &LinkObservation) -> bool {
    link.instance
        .databases
        .iter()
        .any(|d| d.replica_state.as_deref() == Some("LinkFailoverInProgress"))
}

fn requested_unless_done(call: ArmCall) -> ArmCall {
    match call {
        ArmCall::Done => ArmCall::Done,
        ArmCall::Requested | ArmCall::Accepted(_) => ArmCall::Requested,
    }
}

fn describe(input: &Input) -> String {
    match input {
        Input::Observed { step, .. } => format!("{} {step}", input.label()),
        Input::Command(_) | Input::Tick | Input::Resume => input.label().to_owned(),
    }
}

fn join_names(names: &[DatabaseName]) -> String {
    names
        .iter()
        .map(DatabaseName::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s >= 60 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}
