//! Every edge of the machine as data: the diagram in `docs/lifecycle.mmd` is rendered from it, and
//! the tests check that the machine takes exactly these edges.
//!
//! An edge is an accepted input that changed the machine or produced effects; inputs accepted
//! without any change (a Tick before the deadline, a Resume with nothing in flight) are not
//! edges. Phase names are [`super::Phase::name`]; input labels are [`super::Input::label`].
//!
//! The diagram is checked by a test. After changing the edges, refresh it with
//! `MILINK_BLESS=1 cargo test -p milink-core lifecycle_diagram`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One edge: `from --input [guard]--> to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Edge {
    /// The phase the edge leaves.
    pub from: &'static str,
    /// The input label (`Command::Start`, `Observed(ok)`, `Observed(err)`, `Tick`, `Resume`, …).
    pub input: &'static str,
    /// The phase the edge enters.
    pub to: &'static str,
    /// The condition under which this input leads to `to`, when the input alone does not decide.
    pub guard: Option<&'static str>,
}

const fn e(from: &'static str, input: &'static str, to: &'static str) -> Edge {
    Edge {
        from,
        input,
        to,
        guard: None,
    }
}

const fn g(from: &'static str, input: &'static str, to: &'static str, guard: &'static str) -> Edge {
    Edge {
        from,
        input,
        to,
        guard: Some(guard),
    }
}

const OK: &str = "Observed(ok)";
const ERR: &str = "Observed(err)";
const TICK: &str = "Tick";
const RESUME: &str = "Resume";
const RETRY: &str = "Command::Retry";
const CANCEL: &str = "Command::Cancel";
const FORCED: &str = "Command::Failover(Forced)";
const CUTOVER: &str = "Command::Cutover";
const PREPARE: &str = "Command::Prepare";
const FAILED: &str = "Failed";
const REFRESH: &str = "Command::Refresh";

const TIMEOUT: &str = "phase timeout";
const STEP_ERROR: &str = "step failed";
const PROBE_RETRY: &str = "retryable probe error, probe again";
const PROBE_FAILED: &str = "probe error not retryable";
const REISSUE: &str = "crash, re-issue in-flight steps";
const CHECK_ROLES: &str = "crash, check roles before re-issuing";
const CHECK_LINK: &str = "crash, check the link exists before deleting it again";
const PROBE_DUE: &str = "probe or poll due";

/// Every edge of the lifecycle machine.
pub const EDGES: &[Edge] = &[
    // ---- Create.
    g(
        "Draft",
        "Command::RecordAssessment",
        "Assessed",
        "no blocking findings",
    ),
    e("Draft", CANCEL, "Cancelled"),
    g(
        "Assessed",
        "Command::Start",
        "PreparingSource",
        "direct route",
    ),
    g(
        "Assessed",
        "Command::Start",
        "CreatingLinkThroughArc",
        "Arc route: createManagedInstanceLink",
    ),
    e("Assessed", CANCEL, "Cancelled"),
    g("PreparingSource", OK, "PreparingSource", "next sub-step"),
    g("PreparingSource", OK, "ExchangingTrust", "endpoint ready"),
    g("PreparingSource", ERR, FAILED, STEP_ERROR),
    g("PreparingSource", TICK, FAILED, TIMEOUT),
    g("PreparingSource", RESUME, "PreparingSource", REISSUE),
    g("PreparingSource", CANCEL, "Cancelled", "nothing to remove"),
    g(
        "ExchangingTrust",
        OK,
        "ExchangingTrust",
        "next sub-step, or upload accepted or running",
    ),
    g("ExchangingTrust", OK, "CreatingAg", "root CAs trusted"),
    g("ExchangingTrust", ERR, FAILED, STEP_ERROR),
    g("ExchangingTrust", TICK, "ExchangingTrust", PROBE_DUE),
    g("ExchangingTrust", TICK, FAILED, TIMEOUT),
    g("ExchangingTrust", RESUME, "ExchangingTrust", REISSUE),
    g("ExchangingTrust", CANCEL, "Cancelled", "nothing to remove"),
    g(
        "CreatingAg",
        OK,
        "CreatingAg",
        "instance is initial primary, grant CREATE ANY DATABASE",
    ),
    g("CreatingAg", OK, "CreatingDag", "AG ready"),
    g("CreatingAg", ERR, FAILED, STEP_ERROR),
    g("CreatingAg", TICK, FAILED, TIMEOUT),
    g("CreatingAg", RESUME, "CreatingAg", REISSUE),
    g("CreatingAg", CANCEL, "Cancelling", "drop the AG"),
    e("CreatingDag", OK, "JoiningInstance"),
    g("CreatingDag", ERR, FAILED, STEP_ERROR),
    g("CreatingDag", TICK, FAILED, TIMEOUT),
    g("CreatingDag", RESUME, "CreatingDag", REISSUE),
    g("CreatingDag", CANCEL, "Cancelling", "drop DAG and AG"),
    g(
        "JoiningInstance",
        OK,
        "JoiningInstance",
        "operation accepted or running",
    ),
    g("JoiningInstance", OK, "Seeding", "joined"),
    g("JoiningInstance", ERR, FAILED, STEP_ERROR),
    g("JoiningInstance", TICK, "JoiningInstance", PROBE_DUE),
    g("JoiningInstance", TICK, FAILED, TIMEOUT),
    g("JoiningInstance", RESUME, "JoiningInstance", REISSUE),
    g(
        "CreatingLinkThroughArc",
        OK,
        "CreatingLinkThroughArc",
        "operation accepted or running (kept, polled), or a reading after a lost answer finds \
         nothing (send it) or the link on one side only (read again)",
    ),
    g(
        "CreatingLinkThroughArc",
        OK,
        "Seeding",
        "Arc's operation succeeded, or a reading finds the link on both sides",
    ),
    g("CreatingLinkThroughArc", ERR, FAILED, STEP_ERROR),
    g(
        "CreatingLinkThroughArc",
        TICK,
        "CreatingLinkThroughArc",
        PROBE_DUE,
    ),
    g("CreatingLinkThroughArc", TICK, FAILED, TIMEOUT),
    g(
        "CreatingLinkThroughArc",
        RESUME,
        "CreatingLinkThroughArc",
        "crash, poll the kept operation, or read the link before sending the create again",
    ),
    g(
        "JoiningInstance",
        CANCEL,
        "Cancelling",
        "delete link, drop DAG and AG",
    ),
    g(
        "Seeding",
        OK,
        "Seeding",
        "not every secondary database synchronizing and healthy",
    ),
    g(
        "Seeding",
        OK,
        "Replicating",
        "every secondary database synchronizing and healthy",
    ),
    g(
        "Seeding",
        OK,
        FAILED,
        "a database reports a terminal seeding error (1408, 1412, 41977, *Error replica state), not retryable",
    ),
    g("Seeding", ERR, "Seeding", PROBE_RETRY),
    g("Seeding", ERR, FAILED, PROBE_FAILED),
    g("Seeding", TICK, "Seeding", PROBE_DUE),
    g("Seeding", TICK, FAILED, TIMEOUT),
    g("Seeding", RESUME, "Seeding", REISSUE),
    g(
        "Seeding",
        CANCEL,
        "Cancelling",
        "delete link, drop DAG and AG",
    ),
    // ---- Replicating.
    g("Replicating", OK, "Replicating", "health and lag read"),
    g("Replicating", OK, "SplitBrain", "both sides PRIMARY"),
    g("Replicating", ERR, "Replicating", PROBE_RETRY),
    g("Replicating", ERR, FAILED, PROBE_FAILED),
    g("Replicating", TICK, "Replicating", PROBE_DUE),
    g("Replicating", REFRESH, "Replicating", "read both sides now"),
    g("Replicating", RESUME, "Replicating", REISSUE),
    g(
        "Replicating",
        "Command::Failover(Planned)",
        "PreparingFailover",
        "two-way link",
    ),
    g(
        "Replicating",
        "Command::Failover(Planned)",
        "CatchingUp",
        "two-way link, both sides already synchronous (prepared)",
    ),
    g(
        "Replicating",
        "Command::Failover(Planned)",
        "FailingOver",
        "Arc route: failoverMiLink switches, waits for SYNCHRONIZED and fails over",
    ),
    g(
        "Replicating",
        PREPARE,
        "PreparingFailover",
        "not yet synchronous on both sides",
    ),
    g(
        "Replicating",
        CUTOVER,
        "CatchingUp",
        "SQL Server is primary, both sides already synchronous (prepared)",
    ),
    g(
        "Replicating",
        FORCED,
        "ForcingFailover",
        "two-way, acknowledged for this link, target database not REVERTING or INITIALIZING",
    ),
    g(
        "Replicating",
        CUTOVER,
        "PreparingFailover",
        "SQL Server is primary",
    ),
    g(
        "Replicating",
        CUTOVER,
        "FailingOver",
        "Arc route: failoverMiLink first, then deleteMiLink",
    ),
    g(
        "Replicating",
        CUTOVER,
        "AwaitingFirstFullBackup",
        "the instance is primary",
    ),
    g(
        "Replicating",
        CANCEL,
        "Cancelling",
        "delete link, drop DAG and AG",
    ),
    // ---- Planned role change.
    g(
        "PreparingFailover",
        OK,
        "PreparingFailover",
        "other mode change pending, or operation accepted or running",
    ),
    g(
        "PreparingFailover",
        OK,
        "CatchingUp",
        "both sides in synchronous commit",
    ),
    g(
        "PreparingFailover",
        OK,
        "Replicating",
        "prepare only: both sides in synchronous commit, started from Replicating",
    ),
    g(
        "PreparingFailover",
        OK,
        "FailedOver",
        "prepare only: both sides in synchronous commit, started from FailedOver",
    ),
    g("PreparingFailover", ERR, FAILED, STEP_ERROR),
    g("PreparingFailover", TICK, "PreparingFailover", PROBE_DUE),
    g("PreparingFailover", TICK, FAILED, TIMEOUT),
    g("PreparingFailover", RESUME, "PreparingFailover", REISSUE),
    g(
        "PreparingFailover",
        FORCED,
        "ForcingFailover",
        "acknowledged",
    ),
    g(
        "PreparingFailover",
        CANCEL,
        "AbortingFailover",
        "restore asynchronous commit",
    ),
    g(
        "PreparingFailover",
        CANCEL,
        "Replicating",
        "mode unchanged, started from Replicating",
    ),
    g(
        "PreparingFailover",
        CANCEL,
        "FailedOver",
        "mode unchanged, started from FailedOver",
    ),
    g(
        "CatchingUp",
        OK,
        "CatchingUp",
        "gate closed, or LSNs not yet stable for the window",
    ),
    g(
        "CatchingUp",
        OK,
        "FailingOver",
        "sync on both sides, LSNs equal and unchanged for the window",
    ),
    g(
        "CatchingUp",
        OK,
        "Fencing",
        "gate open, one-way cutover: fence SQL Server's writes",
    ),
    g("CatchingUp", OK, "SplitBrain", "both sides PRIMARY"),
    g(
        "CatchingUp",
        OK,
        "PreparingFailover",
        "the switch was skipped (prepared) and a side reads asynchronous",
    ),
    g(
        "CatchingUp",
        OK,
        FAILED,
        "a guard refuses on the live servers (update policy, version, one-way link)",
    ),
    g(
        "CatchingUp",
        OK,
        "VerifyingRoles",
        "an earlier attempt went through (target PRIMARY, old primary SECONDARY): verify it",
    ),
    g("CatchingUp", ERR, "CatchingUp", PROBE_RETRY),
    g("CatchingUp", ERR, FAILED, PROBE_FAILED),
    g("CatchingUp", TICK, "CatchingUp", PROBE_DUE),
    g("CatchingUp", TICK, FAILED, TIMEOUT),
    g("CatchingUp", RESUME, "CatchingUp", REISSUE),
    g("CatchingUp", FORCED, "ForcingFailover", "acknowledged"),
    g(
        "CatchingUp",
        CANCEL,
        "AbortingFailover",
        "restore asynchronous commit",
    ),
    g(
        "CatchingUp",
        CANCEL,
        "Replicating",
        "mode unchanged, started from Replicating",
    ),
    g(
        "CatchingUp",
        CANCEL,
        "FailedOver",
        "mode unchanged, started from FailedOver",
    ),
    g(
        "FailingOver",
        OK,
        "FailingOver",
        "operation accepted or running, roles unsettled, or re-issue after role check",
    ),
    g(
        "FailingOver",
        OK,
        "VerifyingRoles",
        "failover done, or role check shows it done (both PRIMARY included: the role check \
         decides whether that lasts)",
    ),
    g(
        "FailingOver",
        OK,
        "CatchingUp",
        "role check shows the roles unchanged: never re-send on old readings, gate again",
    ),
    g(
        "FailingOver",
        OK,
        "AbortingFailover",
        "cancelled, role check shows the roles unchanged: restore asynchronous commit",
    ),
    g(
        "FailingOver",
        OK,
        "Replicating",
        "cancelled, role check shows the roles unchanged, mode unchanged",
    ),
    g("FailingOver", ERR, "FailingOver", PROBE_RETRY),
    g("FailingOver", ERR, FAILED, STEP_ERROR),
    g("FailingOver", TICK, "FailingOver", PROBE_DUE),
    g("FailingOver", TICK, FAILED, TIMEOUT),
    g("FailingOver", RESUME, "FailingOver", CHECK_ROLES),
    // ---- Forced role change.
    g(
        "ForcingFailover",
        OK,
        "ForcingFailover",
        "operation accepted or running, roles unsettled, or re-issue after role check (target \
         SECONDARY, old primary PRIMARY or unreadable)",
    ),
    g(
        "ForcingFailover",
        OK,
        "VerifyingRoles",
        "forced, or role check shows the target PRIMARY",
    ),
    g(
        "ForcingFailover",
        OK,
        FAILED,
        "a guard refuses on the reading taken before the force (update policy, version, \
         a database REVERTING or INITIALIZING)",
    ),
    g("ForcingFailover", ERR, "ForcingFailover", PROBE_RETRY),
    g("ForcingFailover", ERR, FAILED, STEP_ERROR),
    g("ForcingFailover", TICK, "ForcingFailover", PROBE_DUE),
    g("ForcingFailover", TICK, FAILED, TIMEOUT),
    g("ForcingFailover", RESUME, "ForcingFailover", CHECK_ROLES),
    // ---- Verify, redirect.
    g(
        "VerifyingRoles",
        OK,
        "VerifyingRoles",
        "roles not yet as expected",
    ),
    g(
        "VerifyingRoles",
        OK,
        "Redirecting",
        "new primary PRIMARY, other SECONDARY (or not PRIMARY after a forced failover)",
    ),
    g(
        "VerifyingRoles",
        OK,
        "SplitBrain",
        "both sides PRIMARY for the stability window (after a forced failover: the old \
         primary is up; after a planned change or repair: it did not take)",
    ),
    g("VerifyingRoles", ERR, "VerifyingRoles", PROBE_RETRY),
    g("VerifyingRoles", ERR, FAILED, PROBE_FAILED),
    g("VerifyingRoles", TICK, "VerifyingRoles", PROBE_DUE),
    g("VerifyingRoles", TICK, FAILED, TIMEOUT),
    g("VerifyingRoles", RESUME, "VerifyingRoles", REISSUE),
    g(
        "Redirecting",
        OK,
        "FailedOver",
        "failover, or repair keeping the other side",
    ),
    g(
        "Redirecting",
        OK,
        "Replicating",
        "failback, or repair keeping the initial primary",
    ),
    g(
        "Redirecting",
        OK,
        "AwaitingFirstFullBackup",
        "two-way cutover",
    ),
    g(
        "Redirecting",
        OK,
        "DroppingDag",
        "one-way cutover, link removed",
    ),
    g("Redirecting", ERR, FAILED, STEP_ERROR),
    g("Redirecting", TICK, FAILED, TIMEOUT),
    g("Redirecting", RESUME, "Redirecting", REISSUE),
    // ---- Failed over.
    g("FailedOver", OK, "FailedOver", "health and lag read"),
    g("FailedOver", OK, "SplitBrain", "both sides PRIMARY"),
    g("FailedOver", REFRESH, "FailedOver", "read both sides now"),
    g("FailedOver", ERR, "FailedOver", PROBE_RETRY),
    g("FailedOver", ERR, FAILED, PROBE_FAILED),
    g("FailedOver", TICK, "FailedOver", PROBE_DUE),
    g("FailedOver", RESUME, "FailedOver", REISSUE),
    g(
        "FailedOver",
        "Command::Failback",
        "PreparingFailover",
        "two-way, update policy matches the SQL Server release",
    ),
    g(
        "FailedOver",
        "Command::Failback",
        "CatchingUp",
        "two-way, update policy matches, both sides already synchronous (prepared)",
    ),
    g(
        "FailedOver",
        PREPARE,
        "PreparingFailover",
        "not yet synchronous on both sides",
    ),
    g(
        "FailedOver",
        CUTOVER,
        "CatchingUp",
        "SQL Server is primary, both sides already synchronous (prepared)",
    ),
    g("FailedOver", FORCED, "ForcingFailover", "acknowledged"),
    g(
        "FailedOver",
        CUTOVER,
        "AwaitingFirstFullBackup",
        "the instance is primary",
    ),
    g(
        "FailedOver",
        CUTOVER,
        "PreparingFailover",
        "SQL Server is primary",
    ),
    // ---- Split brain.
    g(
        "SplitBrain",
        "Command::RepairSplitBrain",
        "Repairing",
        "read the roles first",
    ),
    g("SplitBrain", REFRESH, "SplitBrain", "read both sides now"),
    g("SplitBrain", OK, "SplitBrain", "still both PRIMARY"),
    g(
        "SplitBrain",
        OK,
        "FailedOver",
        "resolved outside milink: only the instance PRIMARY",
    ),
    g(
        "SplitBrain",
        OK,
        "Replicating",
        "resolved outside milink: only SQL Server PRIMARY",
    ),
    g(
        "Repairing",
        OK,
        "Repairing",
        "operation accepted or running, roles unsettled, or re-issue after role check",
    ),
    g(
        "Repairing",
        OK,
        "VerifyingRoles",
        "demoted, or role check shows it done",
    ),
    g(
        "Repairing",
        OK,
        FAILED,
        "the side to keep is not PRIMARY: demoting the other would leave no primary",
    ),
    g("Repairing", ERR, "Repairing", PROBE_RETRY),
    g("Repairing", ERR, FAILED, STEP_ERROR),
    g("Repairing", TICK, "Repairing", PROBE_DUE),
    g("Repairing", TICK, FAILED, TIMEOUT),
    g("Repairing", RESUME, "Repairing", CHECK_ROLES),
    // ---- Cutover.
    g(
        "AwaitingFirstFullBackup",
        OK,
        "AwaitingFirstFullBackup",
        "a database has no full backup after the bound",
    ),
    g(
        "AwaitingFirstFullBackup",
        OK,
        "RemovingLink",
        "two-way: every database has a full backup after the bound; read the link first",
    ),
    g(
        "AwaitingFirstFullBackup",
        OK,
        "PreparingFailover",
        "one-way: every database has a full backup after the bound; catch up, then fence",
    ),
    g(
        "AwaitingFirstFullBackup",
        OK,
        "CatchingUp",
        "one-way: every backup taken and both sides already synchronous (prepared)",
    ),
    g(
        "AwaitingFirstFullBackup",
        ERR,
        "AwaitingFirstFullBackup",
        PROBE_RETRY,
    ),
    g("AwaitingFirstFullBackup", ERR, FAILED, PROBE_FAILED),
    g(
        "AwaitingFirstFullBackup",
        TICK,
        "AwaitingFirstFullBackup",
        PROBE_DUE,
    ),
    g("AwaitingFirstFullBackup", TICK, FAILED, TIMEOUT),
    g(
        "AwaitingFirstFullBackup",
        RESUME,
        "AwaitingFirstFullBackup",
        REISSUE,
    ),
    g(
        "AwaitingFirstFullBackup",
        CANCEL,
        "Replicating",
        "mode unchanged, started from Replicating",
    ),
    g(
        "AwaitingFirstFullBackup",
        CANCEL,
        "FailedOver",
        "mode unchanged, the instance is primary",
    ),
    g(
        "RemovingLink",
        OK,
        "RemovingLink",
        "operation accepted or running, DELETE done (confirm by reading), the reading passes \
         the removal gate (DELETE), or not yet / the instance unreadable (read again)",
    ),
    g(
        "RemovingLink",
        OK,
        "Redirecting",
        "one-way cutover, link deleted or the check finds it gone",
    ),
    g(
        "RemovingLink",
        OK,
        "DroppingDag",
        "two-way cutover, link deleted or the check finds it gone",
    ),
    g(
        "RemovingLink",
        OK,
        "Completed",
        "Arc route: deleteMiLink removed the link and SQL Server's DAG",
    ),
    g(
        "RemovingLink",
        OK,
        "SplitBrain",
        "the reading before the DELETE shows both sides PRIMARY",
    ),
    g("RemovingLink", ERR, "RemovingLink", PROBE_RETRY),
    g("RemovingLink", ERR, FAILED, STEP_ERROR),
    g("RemovingLink", TICK, "RemovingLink", PROBE_DUE),
    g("RemovingLink", TICK, FAILED, TIMEOUT),
    g("RemovingLink", RESUME, "RemovingLink", CHECK_LINK),
    // ---- One-way cutover: fence SQL Server, verify, then remove the link.
    g(
        "Fencing",
        OK,
        "Fencing",
        "SQL Server demoted (verify), its role read, or the instance not yet at SQL Server's \
         end of log",
    ),
    g(
        "Fencing",
        OK,
        "RemovingLink",
        "SQL Server SECONDARY and its end of log hardened on the instance: DELETE",
    ),
    g(
        "Fencing",
        OK,
        "CatchingUp",
        "the instance stayed behind for the stability window: fence undone, gate again",
    ),
    g(
        "Fencing",
        OK,
        "AbortingFailover",
        "cancelled: fence undone, restore asynchronous commit",
    ),
    g(
        "Fencing",
        OK,
        "Replicating",
        "cancelled: fence undone (or never held), mode unchanged",
    ),
    g(
        "Fencing",
        OK,
        FAILED,
        "the fence undone for the third time in this cutover: the workload still writes",
    ),
    g("Fencing", ERR, "Fencing", PROBE_RETRY),
    g("Fencing", ERR, FAILED, STEP_ERROR),
    g("Fencing", TICK, "Fencing", PROBE_DUE),
    g("Fencing", TICK, FAILED, TIMEOUT),
    g("Fencing", RESUME, "Fencing", CHECK_ROLES),
    g("Fencing", CANCEL, "Fencing", "undo the fence first"),
    g("DroppingDag", OK, "DroppingAg", "drop_availability_group"),
    g("DroppingDag", OK, "Completed", "keep the AG"),
    g("DroppingDag", ERR, FAILED, STEP_ERROR),
    g("DroppingDag", TICK, FAILED, TIMEOUT),
    g("DroppingDag", RESUME, "DroppingDag", REISSUE),
    e("DroppingAg", OK, "Completed"),
    g("DroppingAg", ERR, FAILED, STEP_ERROR),
    g("DroppingAg", TICK, FAILED, TIMEOUT),
    g("DroppingAg", RESUME, "DroppingAg", REISSUE),
    // ---- Abandon a role change.
    g(
        "AbortingFailover",
        OK,
        "AbortingFailover",
        "other mode change pending, or operation accepted or running",
    ),
    g(
        "AbortingFailover",
        OK,
        "Replicating",
        "mode restored, started from Replicating",
    ),
    g(
        "AbortingFailover",
        OK,
        "FailedOver",
        "mode restored, started from FailedOver",
    ),
    g("AbortingFailover", ERR, FAILED, STEP_ERROR),
    g("AbortingFailover", TICK, "AbortingFailover", PROBE_DUE),
    g("AbortingFailover", TICK, FAILED, TIMEOUT),
    g("AbortingFailover", RESUME, "AbortingFailover", REISSUE),
    // ---- Cancel link creation.
    g(
        "Cancelling",
        OK,
        "Cancelling",
        "next removal, operation accepted or running, or the check finds the link there (or its \
         join unconfirmed), delete again",
    ),
    g(
        "Cancelling",
        OK,
        "Cancelled",
        "everything attempted removed",
    ),
    g("Cancelling", ERR, "Cancelling", PROBE_RETRY),
    g("Cancelling", ERR, FAILED, STEP_ERROR),
    g("Cancelling", TICK, "Cancelling", PROBE_DUE),
    g("Cancelling", TICK, FAILED, TIMEOUT),
    g(
        "Cancelling",
        RESUME,
        "Cancelling",
        "crash, re-issue in-flight steps (check the link exists before deleting it again)",
    ),
    // ---- Failed: resume (retryable) or retry (any) re-enters the failed phase. Replicating and
    // FailedOver fail only on errors that are not retryable (they have no timeout), so only
    // Retry leaves a failure in them.
    g(FAILED, RESUME, "PreparingSource", "retryable"),
    g(FAILED, RESUME, "ExchangingTrust", "retryable"),
    g(FAILED, RESUME, "CreatingAg", "retryable"),
    g(FAILED, RESUME, "CreatingDag", "retryable"),
    g(FAILED, RESUME, "JoiningInstance", "retryable"),
    g(FAILED, RESUME, "CreatingLinkThroughArc", "retryable"),
    g(FAILED, RESUME, "Seeding", "retryable"),
    g(FAILED, RESUME, "PreparingFailover", "retryable"),
    g(FAILED, RESUME, "CatchingUp", "retryable"),
    g(FAILED, RESUME, "FailingOver", "retryable"),
    g(FAILED, RESUME, "ForcingFailover", "retryable"),
    g(FAILED, RESUME, "VerifyingRoles", "retryable"),
    g(FAILED, RESUME, "Redirecting", "retryable"),
    g(FAILED, RESUME, "Repairing", "retryable"),
    g(FAILED, RESUME, "AwaitingFirstFullBackup", "retryable"),
    g(FAILED, RESUME, "RemovingLink", "retryable"),
    g(FAILED, RESUME, "Fencing", "retryable"),
    g(FAILED, RESUME, "DroppingDag", "retryable"),
    g(FAILED, RESUME, "DroppingAg", "retryable"),
    g(FAILED, RESUME, "AbortingFailover", "retryable"),
    g(FAILED, RESUME, "Cancelling", "retryable"),
    e(FAILED, RETRY, "PreparingSource"),
    e(FAILED, RETRY, "ExchangingTrust"),
    e(FAILED, RETRY, "CreatingAg"),
    e(FAILED, RETRY, "CreatingDag"),
    e(FAILED, RETRY, "JoiningInstance"),
    e(FAILED, RETRY, "CreatingLinkThroughArc"),
    e(FAILED, RETRY, "Seeding"),
    e(FAILED, RETRY, "Replicating"),
    e(FAILED, RETRY, "PreparingFailover"),
    e(FAILED, RETRY, "CatchingUp"),
    e(FAILED, RETRY, "FailingOver"),
    e(FAILED, RETRY, "ForcingFailover"),
    e(FAILED, RETRY, "VerifyingRoles"),
    e(FAILED, RETRY, "Redirecting"),
    e(FAILED, RETRY, "FailedOver"),
    e(FAILED, RETRY, "Repairing"),
    e(FAILED, RETRY, "AwaitingFirstFullBackup"),
    e(FAILED, RETRY, "RemovingLink"),
    e(FAILED, RETRY, "Fencing"),
    e(FAILED, RETRY, "DroppingDag"),
    e(FAILED, RETRY, "DroppingAg"),
    e(FAILED, RETRY, "AbortingFailover"),
    e(FAILED, RETRY, "Cancelling"),
    g(
        FAILED,
        CANCEL,
        "Cancelled",
        "failed while preparing, nothing to remove",
    ),
    g(FAILED, CANCEL, "Cancelling", "failed while creating"),
    g(
        FAILED,
        CANCEL,
        "AbortingFailover",
        "failed while catching up, restore asynchronous commit",
    ),
    g(
        FAILED,
        CANCEL,
        "Replicating",
        "failed while catching up, mode unchanged",
    ),
    g(
        FAILED,
        CANCEL,
        "FailedOver",
        "failed while catching up, mode unchanged",
    ),
    g(
        FAILED,
        CANCEL,
        "FailingOver",
        "failed during the failover: read the roles, abandon it if they did not change",
    ),
    g(
        FAILED,
        CANCEL,
        "Fencing",
        "failed during the fence: undo it",
    ),
    g(
        FAILED,
        CANCEL,
        "SplitBrain",
        "failed role change or repair, the latest reading shows both sides PRIMARY",
    ),
    g(
        FAILED,
        "Command::RepairSplitBrain",
        "Repairing",
        "the latest reading shows both sides PRIMARY",
    ),
    g(
        FAILED,
        FORCED,
        "RemovingLink",
        "one-way cutover stuck in its fence: remove the link anyway, acknowledged",
    ),
    g(FAILED, REFRESH, FAILED, "read both sides now"),
    g(
        FAILED,
        OK,
        FAILED,
        "the reading a refresh asked for, no split brain",
    ),
    g(
        FAILED,
        OK,
        "SplitBrain",
        "the reading a refresh asked for shows both sides PRIMARY",
    ),
    g(
        FAILED,
        FORCED,
        "ForcingFailover",
        "failed while replicating or catching up, acknowledged",
    ),
];

/// The edge table rendered as a Mermaid `stateDiagram-v2`: one arrow per pair of phases, its
/// label listing the inputs (and guards) that take it, in table order.
pub fn mermaid() -> String {
    let mut order: Vec<(&str, &str)> = Vec::new();
    let mut labels: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
    for edge in EDGES {
        let key = (edge.from, edge.to);
        if !labels.contains_key(&key) {
            order.push(key);
        }
        let input = edge.input.trim_start_matches("Command::");
        let label = match edge.guard {
            Some(guard) => format!("{input} [{guard}]"),
            None => input.to_owned(),
        };
        let entry = labels.entry(key).or_default();
        if !entry.contains(&label) {
            entry.push(label);
        }
    }
    let mut out = String::new();
    out.push_str("%% Generated from milink-core/src/lifecycle/table.rs. Do not edit.\n");
    out.push_str("%% Refresh: MILINK_BLESS=1 cargo test -p milink-core lifecycle_diagram\n");
    out.push_str("stateDiagram-v2\n");
    out.push_str("    [*] --> Draft\n");
    for (from, to) in order {
        let text = labels
            .get(&(from, to))
            .map(|l| l.join(" / "))
            .unwrap_or_default();
        let text = sanitize(&text);
        let _ = writeln!(out, "    {from} --> {to} : {text}");
    }
    out.push_str("    Completed --> [*]\n");
    out.push_str("    Cancelled --> [*]\n");
    out
}

/// Mermaid ends a transition label at `:`, `;` or a newline, and treats `#` specially.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            ':' | ';' | '\n' | '#' => ' ',
            other => other,
        })
        .collect()
}
