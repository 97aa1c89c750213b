//! The session driver: runs the pure lifecycle machine against the ports, journaling every
//! accepted input before acting on it.
//!
//! # The drive loop
//!
//! The session decides nothing: the [`Engine`] (the machine with its outbox) says what to do
//! next, and the session moves data between it, the journal and the ports.
//!
//! ```text
//! submit(input):  next = engine.clone(); next.handle(input, now)?   (Rejected or Stale: nothing changes)
//!                 journal.append(record)?                          (durable before any effect)
//!                 engine = next; forward engine.poll_event()s as SessionEvents
//! drive(command): submit each of engine.begin(command, now, operation_timeout)
//!                 loop match engine.poll(now):
//!                   Perform(effect) -> perform it through the ports (transient errors retried
//!                                      with jittered backoff, busy answers up to the step's
//!                                      timeout, each call bounded by call_timeout),
//!                                      submit(Observed { step, result })
//!                   Submit(input)   -> submit(input)              (a Tick after a wait, a Resume)
//!                   Sleep(until)    -> sleep until `until`
//!                   Done(outcome)   -> return it
//! ```
//!
//! Effects are performed one at a time, in the order the machine issued them, which keeps runs
//! reproducible; a link probe reads both sides concurrently.
//!
//! # Crashes and interruptions
//!
//! Because an input is journaled before its effects run, replaying the journal
//! ([`crate::journal::replay`]) always gives a state whose in-flight effects may or may not have
//! been performed. [`Session::resume`] replays and then sends [`Input::Resume`]; the machine
//! decides what to re-issue (every effect is idempotent, and role changes and the link's removal
//! are guarded by the machine: it reads the link before sending one again). Dropping an
//! operation's future mid-way has the same effect within one process: the next operation on the
//! session notices in-flight effects it is not about to perform and sends `Resume` first.
//!
//! # Retries
//!
//! Transient port errors are retried by the driver within the step ([`RetryPolicy`]). Answers
//! that only say "busy, ask again later" (ARM 409 `ConflictingServerOperation` and
//! `ManagedInstanceIsBusy`, 429) are retried longer: honouring `Retry-After`, for
//! [`RetryPolicy::busy_timeout`] but never past the machine's timeout of the step
//! ([`Machine::phase_timeout`]). This is what a link `PUT` re-sent after a crash meets while the
//! first one still runs (one to three minutes), so `resume` completes it in one call.
//!
//! Role changes (`FAILOVER`, ARM failover and setRole, link deletion) are not idempotent at the
//! remote side, so the driver does not retry them itself unless the remote side refused the
//! request outright (HTTP 429, retried like any busy answer); any other failure, a 409 included,
//! goes to the machine as a retryable step error.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tracing::Instrument;

use crate::journal::{JournalEntry, JournalError, JournalRecord, replay};
use crate::lifecycle::Input;
use crate::lifecycle::{
    AssessmentOutcome, Command, CutoverOptions, DataLoss, Effect, Ended, Engine, Event,
    FailoverKind, Handled, LinkName, LinkObservation, LinkSpec, Machine, Observation, Phase, Poll,
    Probe, ProgressEvent, Rejected, Side, SpecError, State, StepError, StepId,
};
pub use crate::lifecycle::{Operation, OperationStatus};
use crate::link_lock::{LinkLock, LinkLockError, LockHolder};
use crate::ports::{
    ArmReply, Journal, ManagedInstance, PollReply, PortError, SourceReply, SourceServer,
};
pub use crate::redirect::RedirectHook;
use crate::redirect::{RedirectOptions, RedirectTarget, WorkloadActivity};
use crate::retry::{RetryPolicy, Retryable, retry_notify_until};
use crate::time::{Timer, Timestamp};

/// How a session drives: retries, timeouts and the jitter seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionOptions {
    /// Retries of transient port errors; busy answers (409 `ConflictingServerOperation` /
    /// `ManagedInstanceIsBusy`, 429) are retried for `retry.busy_timeout`, up to the step's
    /// timeout.
    pub retry: RetryPolicy,
    /// Longest wait for any one port call; a call that takes longer fails with code `timeout`.
    pub call_timeout: Duration,
    /// Longest one operation (`start`, `failover`, …) may run before it returns
    /// [`SessionError::Timeout`], leaving the journal resumable. The machine's own timeouts
    /// (`MachineOptions`) bound each phase within it.
    pub operation_timeout: Duration,
    /// Seed of the retry jitter. Defaults to a random seed; set it for reproducible runs.
    pub seed: u64,
    /// How many events a slow subscriber may fall behind before it misses some.
    pub event_capacity: usize,
    /// Where the link's lock file goes (see [`crate::link_lock`]): one session per link, across
    /// processes. `None` puts it next to the journal file, so sessions whose journals are in
    /// different directories must share a `lock_dir` to exclude each other. A session whose
    /// journal is not a file takes no lock unless this is set. The directory must exist.
    pub lock_dir: Option<PathBuf>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            retry: RetryPolicy::default(),
            call_timeout: Duration::from_secs(120),
            operation_timeout: Duration::from_secs(7 * 24 * 3600),
            seed: fastrand::u64(..),
            event_capacity: 256,
            lock_dir: None,
        }
    }
}

/// Something a session reports while it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SessionEvent {
    /// The link moved to another state.
    StateChanged {
        /// The previous state's name.
        from: String,
        /// The new state's name.
        to: String,
    },
    /// The driver began performing a step.
    StepStarted {
        /// The step.
        step: StepId,
        /// What it does, e.g. `sql:CreateAvailabilityGroup`, `arm:PutLink`, `probe:link`.
        action: String,
    },
    /// A step hit a transient error and will be retried.
    StepRetrying {
        /// The step.
        step: StepId,
        /// The attempt that failed (1-based).
        attempt: u32,
        /// The error code.
        code: String,
        /// How long the driver waits before the next attempt.
        wait: Duration,
    },
    /// A step finished (its observation was handed to the machine).
    StepFinished {
        /// The step.
        step: StepId,
        /// What it did.
        action: String,
        /// The error, if it failed.
        error: Option<StepError>,
    },
    /// Progress reported by the machine: phase, seeding percent, lag and LSN gap.
    Progress(ProgressEvent),
}

/// A snapshot of a session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionStatus {
    /// The link.
    pub link: LinkName,
    /// The state's phase, e.g. [`Phase::Seeding`] (its name in JSON and Python: `"Seeding"`).
    pub state: Phase,
    /// The state with its details, as the machine describes it.
    pub detail: String,
    /// The state with its data (for JSON, Python dicts and notebooks: `"Replicating"`, or e.g.
    /// `{"FailedOver": {"primary": ..., "data_loss_possible": ...}}`).
    pub phase: State,
    /// The state is final (no command can leave it).
    pub terminal: bool,
    /// What the machine is waiting on.
    pub in_flight: Vec<String>,
    /// When the machine next wants a tick.
    pub deadline: Option<Timestamp>,
    /// Why the link failed, if it is `Failed`; otherwise the last step or probe error seen.
    pub last_error: Option<StepError>,
    /// The operation last requested, if any.
    pub operation: Option<Operation>,
    /// Where that operation stands (JSON and Python: `{"status": "running", "operation":
    /// "Failover"}`; `status` is `idle`, `running`, `reached`, `failed`, `stalled` or
    /// `split_brain`).
    pub progress: OperationStatus,
    /// The side that accepts writes now, as far as the machine knows.
    pub primary: Side,
    /// After a role change: transactions may have been lost (a forced failover or a repaired
    /// split brain).
    pub data_loss_possible: bool,
    /// The journal file, if the journal is a file.
    pub journal_path: Option<PathBuf>,
    /// Records in the journal (the next record's seq).
    pub journal_records: u64,
    /// Where the workload was last told to connect (computed at the last role change in this
    /// process; `None` before one), with the redirect's id. Its connection string shows
    /// `Password=***`.
    pub redirect: Option<RedirectTarget>,
    /// Evidence that a role change or the link's removal lost transactions (the old primary
    /// holds log the other side never hardened). Empty when every check passed. A cutover
    /// that lost data still ends `Completed` (the link is gone); this says so.
    pub data_loss: Vec<DataLoss>,
    /// Checks of lost transactions that could not be made (a side could not be read when the
    /// logs were to be compared), as readable notes; empty when every check ran.
    pub loss_unverified: Vec<String>,
    /// Since when both sides report PRIMARY, while the link is in SplitBrain (see
    /// [`LinkSession::repair_split_brain`]).
    pub split_brain_since: Option<Timestamp>,
}

impl SessionStatus {
    /// Whether the link is at `operation`'s goal now (e.g. `Failover`: failed over; `Start`
    /// and `Failback`: replicating; `Cutover`: completed).
    pub fn reached(&self, operation: Operation) -> bool {
        operation.reached(&self.phase)
    }
}

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The machine refused the command in the link's current state; nothing was changed.
    #[error("the link refused {operation}: {source}")]
    Rejected {
        /// The operation.
        operation: &'static str,
        /// The machine's refusal: the state, the input and the reason.
        #[source]
        source: Box<Rejected>,
    },
    /// The link spec is invalid.
    #[error("invalid link spec: {0}")]
    Spec(#[source] SpecError),
    /// A step failed and the link is in `Failed`; fix the cause and call `resume`, or `cancel`.
    #[error("step failed with {}: {}{}", .0.code, .0.message,
        if .0.retryable { " (retryable: call resume)" } else { "" })]
    StepFailed(StepError),
    /// The journal could not be read or written; the link was not changed beyond the last
    /// journaled input.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// `create` was given a journal that already holds records.
    #[error("the journal already holds {records} records of a link; resume it instead")]
    JournalNotEmpty {
        /// Records found.
        records: usize,
    },
    /// Another session drives this link (its lock file is held): only one session, in any
    /// process, may drive a link at a time. Nothing was written.
    #[error(
        "link {link} is already driven by another session ({holder}), which holds the lock file \
         {}; only one session may drive a link at a time: let that session finish or stop it, \
         then resume the link from its journal",
        .lock_file.display()
    )]
    LinkLocked {
        /// The link.
        link: LinkName,
        /// The lock file the other session holds.
        lock_file: PathBuf,
        /// Who holds it: process id and journal path, as far as the lock file says.
        holder: LockHolder,
    },
    /// The link's lock file could not be created, locked or written (a missing or read-only
    /// directory, a full disk). Nothing was written to the journal.
    #[error(
        "cannot take the lock of link {link} in {}: {source}; check that the directory exists and \
         is writable, or choose another with SessionOptions::lock_dir",
        .lock_file.display()
    )]
    LockFile {
        /// The link.
        link: LinkName,
        /// The lock file.
        lock_file: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The operation did not finish within `SessionOptions::operation_timeout`. The journal is
    /// intact: call `resume` to continue.
    #[error(
        "{operation} did not finish within {waited:?}; the link is in {state}; call resume to continue"
    )]
    Timeout {
        /// The operation.
        operation: &'static str,
        /// How long it ran.
        waited: Duration,
        /// The state it stopped in.
        state: String,
    },
    /// Both sides report PRIMARY: nothing else can happen until `repair_split_brain(keep)`.
    #[error(
        "split brain: both SQL Server and the managed instance report PRIMARY; choose the side whose \
         data to keep and call repair_split_brain"
    )]
    SplitBrain,
    /// The machine stopped in a state that is not the operation's goal and is waiting for
    /// nothing (for example a one-way link that finished in another terminal state).
    #[error("{operation} stopped in state {state} with nothing left to do")]
    Stalled {
        /// The operation.
        operation: &'static str,
        /// The state it stopped in.
        state: String,
    },
}

impl SessionError {
    /// Retrying (usually `resume`) may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            SessionError::StepFailed(e) => e.retryable,
            SessionError::Timeout { .. } => true,
            SessionError::Journal(e) => Self::journal_is_transient(e),
            // Like a journal I/O error: the disk or directory may recover.
            SessionError::LockFile { .. } => true,
            // The other session may run for days: waiting is not the answer, stopping it is.
            SessionError::LinkLocked { .. }
            | SessionError::Rejected { .. }
            | SessionError::Spec(_)
            | SessionError::JournalNotEmpty { .. }
            | SessionError::Stalled { .. }
            | SessionError::SplitBrain => false,
        }
    }

    /// The caller asked for something the link cannot do now, or gave bad input.
    pub fn is_caller_error(&self) -> bool {
        match self {
            SessionError::Rejected { .. }
            | SessionError::Spec(_)
            | SessionError::JournalNotEmpty { .. }
            | SessionError::LinkLocked { .. } => true,
            SessionError::Journal(e) => Self::journal_is_caller_error(e),
            SessionError::LockFile { .. }
            | SessionError::StepFailed(_)
            | SessionError::Timeout { .. }
            | SessionError::Stalled { .. }
            | SessionError::SplitBrain => false,
        }
    }

    /// SQL Server or Azure refused or failed.
    pub fn is_remote(&self) -> bool {
        match self {
            SessionError::StepFailed(e) => is_remote_code(&e.code),
            SessionError::Rejected { .. }
            | SessionError::Spec(_)
            | SessionError::Journal(_)
            | SessionError::JournalNotEmpty { .. }
            | SessionError::LinkLocked { .. }
            | SessionError::LockFile { .. }
            | SessionError::Timeout { .. }
            | SessionError::Stalled { .. }
            | SessionError::SplitBrain => false,
        }
    }

    /// A journal error that may go away by itself: the lock is released when the other session
    /// ends, and I/O errors (a full or briefly unavailable disk) may clear.
    pub(crate) fn journal_is_transient(e: &JournalError) -> bool {
        matches!(e, JournalError::Locked { .. } | JournalError::Io { .. })
    }

    /// A journal error the caller causes: the wrong path (already exists, in use) or a torn tail
    /// they must decide to repair.
    pub(crate) fn journal_is_caller_error(e: &JournalError) -> bool {
        matches!(
            e,
            JournalError::AlreadyExists { .. }
                | JournalError::Locked { .. }
                | JournalError::TornTail { .. }
        )
    }
}

/// A step error's code names an error the remote side reported (SQL Server, ARM, HTTP, or a
/// link state such as `link:LinkCreationError`), rather than the transport or milink itself.
fn is_remote_code(code: &str) -> bool {
    match crate::ports::PortErrorKind::parse(code) {
        crate::ports::PortErrorKind::Sql(_)
        | crate::ports::PortErrorKind::Arm { .. }
        | crate::ports::PortErrorKind::Http(_) => true,
        crate::ports::PortErrorKind::Other(other) => other.starts_with("link:"),
        crate::ports::PortErrorKind::Io
        | crate::ports::PortErrorKind::Timeout
        | crate::ports::PortErrorKind::Hook
        | crate::ports::PortErrorKind::Unsupported => false,
    }
}

/// One link, driven: the object-safe face of a session (Python holds a `Box<dyn LinkSession>`).
///
/// Each operation sends its command and drives until the operation's goal state, a failed step,
/// or the operation timeout. Dropping an operation's future stops it; the journal stays
/// resumable and the next operation (or `resume`) continues from it.
#[async_trait]
pub trait LinkSession: Send + Sync {
    /// The link this session drives.
    fn link(&self) -> &LinkName;
    /// Records the readiness verdict (Draft → Assessed).
    async fn record_assessment(&self, outcome: AssessmentOutcome) -> Result<(), SessionError>;
    /// Creates the link; returns once it replicates.
    async fn start(&self) -> Result<(), SessionError>;
    /// Fails over; returns once the other side is primary.
    async fn failover(&self, kind: FailoverKind) -> Result<(), SessionError>;
    /// Fails back to SQL Server (two-way links).
    async fn failback(&self) -> Result<(), SessionError>;
    /// Migrates and removes the link; returns once it is completed.
    async fn cutover(&self, options: CutoverOptions) -> Result<(), SessionError>;
    /// Repairs a split brain, keeping `keep` as primary: reads both sides first, demotes the
    /// other side only while both are PRIMARY, refuses when `keep` is not PRIMARY (that would
    /// leave no primary) and, on a one-way link, unless `keep` is the initial primary.
    async fn repair_split_brain(&self, keep: Side) -> Result<(), SessionError>;
    /// Undoes link creation; returns once cancelled.
    async fn cancel(&self) -> Result<(), SessionError>;
    /// Continues the last operation after an interruption or a retryable failure. With nothing
    /// left to continue, reads both sides ([`Command::Refresh`]) and reports a split brain
    /// ([`SessionError::SplitBrain`]) that arose while nothing ran.
    async fn resume(&self) -> Result<(), SessionError>;
    /// Re-issues a failed step after its cause was fixed (any failure, retryable or not), then
    /// continues the last operation.
    async fn retry(&self) -> Result<(), SessionError>;
    /// Where the link is.
    fn status(&self) -> SessionStatus;
    /// Both sides read now. In a steady state, a split brain or a failure the reading goes
    /// through the machine ([`Command::Refresh`]), so a split brain is seen (and one resolved
    /// outside milink is left); while an operation runs, and elsewhere, a direct reading. A side
    /// that cannot be read is marked [`LinkObservation::unreachable`], never shown as its last
    /// value.
    async fn health(&self) -> Result<Option<LinkObservation>, SessionError>;
    /// Watches an idle link for `duration`: reads both sides every probe interval of the spec
    /// (through the machine, as [`LinkSession::health`] does) and returns early with
    /// [`SessionError::SplitBrain`] as soon as both sides are PRIMARY. The library never reads
    /// on its own: an embedding service calls this (or `health`) to watch a steady link, for
    /// example after a forced failover while the old primary may come back.
    async fn watch(&self, duration: Duration) -> Result<(), SessionError>;
    /// Events from now on: state changes, steps, progress.
    fn subscribe(&self) -> broadcast::Receiver<SessionEvent>;
    /// Who is still using the link's databases on the current primary: client sessions and
    /// open transactions (check [`WorkloadActivity::is_quiet`] before a failover; the
    /// procedures start with stopping the workload). Reads only; changes nothing.
    async fn check_workload_quiet(&self) -> Result<WorkloadActivity, SessionError>;
}

/// The mutable part of a session, behind a short-held lock.
struct Core {
    engine: Engine,
    next_seq: u64,
    last_redirect: Option<RedirectTarget>,
}

/// A link session over a SQL Server port `S`, a managed instance port `M` and a journal `J`.
pub struct Session<S, M, J> {
    link: LinkName,
    source: Arc<S>,
    instance: Arc<M>,
    timer: Arc<dyn Timer>,
    options: SessionOptions,
    redirect: Option<Arc<dyn RedirectHook>>,
    redirect_options: RedirectOptions,
    journal: Mutex<J>,
    journal_path: Option<PathBuf>,
    /// The link's lock, held for the session's lifetime (`None`: a journal in memory and no
    /// `lock_dir`).
    link_lock: Option<LinkLock>,
    core: Mutex<Core>,
    operation_lock: tokio::sync::Mutex<()>,
    events: broadcast::Sender<SessionEvent>,
    rng: Mutex<fastrand::Rng>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<S, M, J> Session<S, M, J>
where
    S: SourceServer + 'static,
    M: ManagedInstance + 'static,
    J: Journal + 'static,
{
    /// Starts a new link: validates the spec, takes the link's lock (see
    /// [`SessionOptions::lock_dir`]; [`SessionError::LinkLocked`] if another session drives
    /// the link) and writes the journal's `Created` record.
    pub fn create(
        spec: LinkSpec,
        source: Arc<S>,
        instance: Arc<M>,
        mut journal: J,
        timer: Arc<dyn Timer>,
        options: SessionOptions,
    ) -> Result<Self, SessionError> {
        let machine = Machine::new(spec.clone()).map_err(SessionError::Spec)?;
        let link_lock = Self::lock_link(&spec, &journal, &options)?;
        let existing = journal.records()?.len();
        if existing != 0 {
            return Err(SessionError::JournalNotEmpty { records: existing });
        }
        journal.append(&JournalRecord::new(
            0,
            timer.now(),
            JournalEntry::Created {
                spec: Box::new(spec),
            },
        ))?;
        Ok(Self::assemble(
            machine, 1, None, link_lock, source, instance, journal, timer, options,
        ))
    }

    /// Reopens a link from its journal: replays every record, takes the link's lock (see
    /// [`SessionOptions::lock_dir`]; [`SessionError::LinkLocked`] if another session drives
    /// the link, with nothing written), then, if the machine has in-flight effects or failed
    /// with a retryable error, sends [`Input::Resume`] (journaled) so the machine re-issues
    /// what must be re-issued. The effects run on the next operation or
    /// [`LinkSession::resume`]. A failure that is not retryable waits for
    /// [`LinkSession::retry`] (after its cause was fixed) or [`LinkSession::cancel`].
    pub fn resume(
        journal: J,
        source: Arc<S>,
        instance: Arc<M>,
        timer: Arc<dyn Timer>,
        options: SessionOptions,
    ) -> Result<Self, SessionError> {
        let records = journal.records()?;
        let machine = replay(&records)?;
        let link_lock = Self::lock_link(machine.spec(), &journal, &options)?;
        let operation = records.iter().rev().find_map(|r| match &r.entry {
            JournalEntry::Input {
                input: Input::Command(c),
            } => Operation::of(c),
            _ => None,
        });
        let session = Self::assemble(
            machine,
            records.len() as u64,
            operation,
            link_lock,
            source,
            instance,
            journal,
            timer,
            options,
        );
        let needs_resume = lock(&session.core).engine.needs_resume();
        if needs_resume {
            session.submit(Input::Resume)?;
        }
        Ok(session)
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        machine: Machine,
        next_seq: u64,
        operation: Option<Operation>,
        link_lock: Option<LinkLock>,
        source: Arc<S>,
        instance: Arc<M>,
        journal: J,
        timer: Arc<dyn Timer>,
        options: SessionOptions,
    ) -> Self {
        let (events, _) = broadcast::channel(options.event_capacity.max(1));
        Session {
            link: machine.spec().link.clone(),
            journal_path: journal.location(),
            link_lock,
            source,
            instance,
            timer,
            rng: Mutex::new(fastrand::Rng::with_seed(options.seed)),
            options,
            redirect: None,
            redirect_options: RedirectOptions::default(),
            journal: Mutex::new(journal),
            core: Mutex::new(Core {
                engine: Engine::new(machine, operation),
                next_seq,
                last_redirect: None,
            }),
            operation_lock: tokio::sync::Mutex::new(()),
            events,
        }
    }

    /// Takes the lock of the link in `spec`: in `options.lock_dir`, else in the journal file's
    /// directory; no lock for a journal that is not a file when no `lock_dir` is given.
    fn lock_link(
        spec: &LinkSpec,
        journal: &J,
        options: &SessionOptions,
    ) -> Result<Option<LinkLock>, SessionError> {
        let journal = journal
            .location()
            .map(|path| std::path::absolute(&path).unwrap_or(path));
        let dir = match (&options.lock_dir, &journal) {
            (Some(dir), _) => dir.clone(),
            (None, Some(path)) => match path.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
                _ => PathBuf::from("."),
            },
            (None, None) => return Ok(None),
        };
        LinkLock::acquire(&dir, &spec.target.instance, &spec.link, journal.as_deref())
            .map(Some)
            .map_err(|e| match e {
                LinkLockError::Held { lock_file, holder } => SessionError::LinkLocked {
                    link: spec.link.clone(),
                    lock_file,
                    holder,
                },
                LinkLockError::Io { lock_file, source } => SessionError::LockFile {
                    link: spec.link.clone(),
                    lock_file,
                    source,
                },
            })
    }

    /// The link's lock file this session holds until it is dropped; `None` when it takes no
    /// lock (a journal that is not a file and no [`SessionOptions::lock_dir`]).
    pub fn lock_file(&self) -> Option<&std::path::Path> {
        self.link_lock.as_ref().map(LinkLock::path)
    }

    /// Calls `hook` for `Redirect` effects (without one they succeed at once), with targets
    /// computed from `RedirectOptions::default()` unless [`Self::with_redirect`] gives options.
    pub fn with_redirect_hook(mut self, hook: Arc<dyn RedirectHook>) -> Self {
        self.redirect = Some(hook);
        self
    }

    /// How `Redirect` effects are answered after a role change (failover, failback, cutover,
    /// split-brain repair): the session computes the new primary's [`RedirectTarget`] from
    /// `options` and the link spec, names the redirect ([`RedirectTarget::redirect_id`], from
    /// [`Machine::redirect_id`]), shows it in [`SessionStatus::redirect`], and calls `hook`
    /// with it after the new primary accepts writes and before anything is dropped on the old
    /// side.
    ///
    /// - No hook: the step succeeds at once (the target is still shown in the status).
    /// - The hook succeeds: the step succeeds (journaled as done).
    /// - The hook fails or does not answer within `call_timeout`: the step fails with code
    ///   `hook`, retryable, and its message scrubbed of the target's password; the link stays
    ///   `Failed` in the redirect phase with both sides intact, and `resume` calls the hook again.
    /// - The target cannot be computed from `options`: the step fails with code `redirect`,
    ///   not retryable; reopen the session with corrected options and call `retry`.
    ///
    /// The hook is called **at least once per redirect**, not exactly once: the driver never
    /// retries it, but a `resume` after a failure calls it again, and so does a resume after a
    /// crash between the hook's success and the journaling of that success. Every call for one
    /// redirect carries the same `redirect_id`, so the hook can recognise a repeat and ignore
    /// it ([`crate::redirect::FileRedirectHook`] does).
    pub fn with_redirect(
        mut self,
        hook: Option<Arc<dyn RedirectHook>>,
        options: RedirectOptions,
    ) -> Self {
        self.redirect = hook;
        self.redirect_options = options;
        self
    }

    /// Answers a `Redirect` effect (see [`Self::with_redirect`]).
    async fn redirect(&self, primary: Side) -> Result<Observation, PortError> {
        let (spec, redirect_id) = {
            let core = lock(&self.core);
            let spec = core.engine.machine().spec().clone();
            // The machine counts a redirect before it issues one; the fallback never shows.
            let id = core
                .engine
                .machine()
                .redirect_id()
                .unwrap_or_else(|| format!("{}/redirect/0", spec.link));
            (spec, id)
        };
        let target = RedirectTarget::for_primary(&spec, primary, &self.redirect_options)
            .map(|target| target.with_redirect_id(redirect_id));
        let Some(hook) = &self.redirect else {
            if let Ok(target) = target {
                lock(&self.core).last_redirect = Some(target);
            }
            return Ok(Observation::Done);
        };
        let target = target.map_err(|e| {
            PortError::permanent(
                "redirect",
                format!("cannot compute where the workload must connect: {e}"),
            )
        })?;
        lock(&self.core).last_redirect = Some(target.clone());
        tracing::info!(link = %self.link, target = %target, redirect_id = %target.redirect_id, "redirecting the workload");
        let called = self
            .bounded(async {
                hook.redirect(&target)
                    .await
                    .map_err(|e| PortError::transient("hook", e.scrubbed(&target).message()))
            })
            .await;
        called.map(|()| Observation::Done).map_err(|e| {
            PortError::transient(
                "hook",
                format!(
                    "the redirect hook failed for {target}: {}; the link is intact: fix the \
                     hook and resume",
                    target.scrub(&e.message)
                ),
            )
        })
    }

    /// A copy of the machine, for inspection.
    pub fn machine(&self) -> Machine {
        lock(&self.core).engine.machine().clone()
    }

    /// The journal, for inspection.
    pub fn with_journal<T>(&self, f: impl FnOnce(&J) -> T) -> T {
        f(&lock(&self.journal))
    }

    fn emit(&self, event: SessionEvent) {
        // No subscribers is fine.
        let _ = self.events.send(event);
    }

    /// Hands `input` to the engine; if accepted, journals it, then reports what happened.
    fn submit(&self, input: Input) -> Result<Handled, SessionError> {
        let what = label(&input);
        let now = self.timer.now();
        let mut core = lock(&self.core);
        let mut next = core.engine.clone();
        match next.handle(input.clone(), now) {
            Ok(Handled::Accepted) => {}
            Ok(Handled::Stale) => {
                tracing::debug!(link = %self.link, input = what, "stale observation ignored");
                return Ok(Handled::Stale);
            }
            Err(rejected) => {
                return Err(SessionError::Rejected {
                    operation: what,
                    source: Box::new(rejected),
                });
            }
        }
        let seq = core.next_seq;
        lock(&self.journal).append(&JournalRecord::new(seq, now, JournalEntry::Input { input }))?;
        core.next_seq += 1;
        core.engine = next;
        let after = core.engine.machine().state().name();
        let mut events = Vec::new();
        while let Some(event) = core.engine.poll_event() {
            events.push(event);
        }
        drop(core);
        tracing::debug!(link = %self.link, seq, input = what, state = after, "input journaled");
        for event in events {
            self.emit(match event {
                Event::StateChanged { from, to } => SessionEvent::StateChanged {
                    from: from.name().to_owned(),
                    to: to.name().to_owned(),
                },
                Event::Progress(p) => SessionEvent::Progress(p),
            });
        }
        Ok(Handled::Accepted)
    }

    /// Reads both sides through the machine when its state allows it (Replicating, FailedOver,
    /// SplitBrain) and no operation is running: sends [`Command::Refresh`] and performs the
    /// reading (and the few effects its answer issues).
    async fn refresh(&self) -> Result<Refreshed, SessionError> {
        let Ok(_exclusive) = self.operation_lock.try_lock() else {
            return Ok(Refreshed::Busy);
        };
        match self.submit(Input::Command(Command::Refresh)) {
            Ok(_) => {}
            Err(SessionError::Rejected { .. }) => return Ok(Refreshed::NotApplicable),
            Err(e) => return Err(e),
        }
        // The probe, then at most a probe issued by entering a steady state.
        for _ in 0..4 {
            let effect = lock(&self.core).engine.poll_effect();
            let Some(effect) = effect else { break };
            let step = effect.step();
            let result = self.perform(step, &effect).await;
            self.submit(Input::Observed { step, result })?;
        }
        Ok(Refreshed::Read)
    }

    /// Runs the operation (sending `command` first, if any) until the engine says it is over:
    /// perform effects, hand back observations and the inputs the engine asks for, sleep.
    async fn drive(&self, command: Option<Command>) -> Result<(), SessionError> {
        let _exclusive = self.operation_lock.lock().await;
        let started = self.timer.now();
        let first = lock(&self.core)
            .engine
            .begin(command, started, self.options.operation_timeout);
        for input in first {
            self.submit(input)?;
        }
        loop {
            let next = lock(&self.core).engine.poll(self.timer.now());
            match next {
                Poll::Perform(effect) => {
                    let step = effect.step();
                    let action = action(&effect);
                    let span = tracing::info_span!("step", link = %self.link, step = step.0, action = %action);
                    self.emit(SessionEvent::StepStarted {
                        step,
                        action: action.clone(),
                    });
                    let result = self.perform(step, &effect).instrument(span).await;
                    let error = result.as_ref().err().cloned();
                    self.submit(Input::Observed { step, result })?;
                    self.emit(SessionEvent::StepFinished {
                        step,
                        action,
                        error,
                    });
                }
                Poll::Submit(input) => {
                    self.submit(input)?;
                }
                Poll::Sleep(until) => self.timer.sleep_until(until).await,
                Poll::Done(outcome) => return outcome.map_err(|ended| self.ended(ended, started)),
            }
        }
    }

    /// The session error for an operation that ended short of its goal.
    fn ended(&self, ended: Ended, started: Timestamp) -> SessionError {
        let core = lock(&self.core);
        let operation = core.engine.operation().map_or("retry", Operation::name);
        let state = core.engine.machine().state().to_string();
        match ended {
            Ended::Failed(error) => SessionError::StepFailed(error),
            Ended::SplitBrain => SessionError::SplitBrain,
            Ended::Stalled => SessionError::Stalled { operation, state },
            Ended::TimedOut => SessionError::Timeout {
                operation,
                waited: self.timer.now().since(started),
                state,
            },
        }
    }

    /// Performs one effect through the ports.
    async fn perform(&self, step: StepId, effect: &Effect) -> Result<Observation, StepError> {
        let result = match effect {
            Effect::Source { op, .. } => self
                .call(step, op.is_role_change(), || self.source.execute(op))
                .await
                .map(|reply| match reply {
                    SourceReply::Done => Observation::Done,
                    SourceReply::PublicKey(der) => Observation::PublicKey(der),
                }),
            Effect::Instance { op, .. } => self
                .call(step, op.is_role_change(), || self.instance.begin(op))
                .await
                .map(|reply| match reply {
                    ArmReply::Completed => Observation::Done,
                    ArmReply::PublicKey(der) => Observation::PublicKey(der),
                    ArmReply::Accepted(operation) => Observation::OperationAccepted(operation),
                }),
            Effect::PollOperation { operation, .. } => self
                .call(step, false, || self.instance.poll(operation))
                .await
                .map(|reply| match reply {
                    PollReply::Running { .. } => Observation::OperationRunning,
                    PollReply::Succeeded => Observation::Done,
                }),
            Effect::Probe {
                probe: Probe::Link, ..
            } => self.probe_link(step).await.map(Observation::Link),
            Effect::Probe {
                probe: Probe::FirstFullBackups,
                ..
            } => {
                let databases = lock(&self.core).engine.machine().link_databases();
                self.call(step, false, || self.instance.full_backups(&databases))
                    .await
                    .map(Observation::FullBackups)
            }
            Effect::Redirect { primary, .. } => self.redirect(*primary).await,
        };
        result.map_err(|e| StepError {
            code: e.code(),
            message: e.message,
            retryable: e.transient,
        })
    }

    async fn probe_link(&self, step: StepId) -> Result<LinkObservation, PortError> {
        let databases = lock(&self.core).engine.machine().spec().databases.clone();
        let (source, instance) = tokio::join!(
            self.call(step, false, || self
                .source
                .link_state(&self.link, &databases)),
            self.call(step, false, || self.instance.link_state(&self.link)),
        );
        // One side failing transiently still yields a reading: its view is empty and marked
        // unreachable, so the machine can finish a forced failover while the old primary is down
        // and never mistakes "could not read" for "absent". Anything else fails the probe.
        match (source, instance) {
            (Ok(source), Ok(instance)) => Ok(LinkObservation {
                source,
                instance,
                unreachable: None,
            }),
            (Err(e), Ok(instance)) if e.transient => Ok(LinkObservation {
                source: crate::lifecycle::SideView::unknown(),
                instance,
                unreachable: Some(Side::SqlServer),
            }),
            (Ok(source), Err(e)) if e.transient => Ok(LinkObservation {
                source,
                instance: crate::lifecycle::SideView::unknown(),
                unreachable: Some(Side::ManagedInstance),
            }),
            (Err(e), _) | (_, Err(e)) => Err(e),
        }
    }

    /// One port call with the call timeout and, unless it changes a role, retries.
    async fn call<'a, T, F, Fut>(
        &'a self,
        step: StepId,
        role_change: bool,
        mut op: F,
    ) -> Result<T, PortError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, PortError>> + 'a,
    {
        let mut rng = lock(&self.rng).fork();
        // Busy answers are waited out no longer than the step may take.
        let step_timeout = lock(&self.core).engine.machine().phase_timeout();
        retry_notify_until(
            &self.options.retry,
            self.timer.as_ref(),
            &mut rng,
            step_timeout,
            |_| {
                let call = op();
                async move {
                    self.bounded(call).await.map_err(|error| AttemptError {
                        // A role change is retried only when the remote side refused the
                        // request outright; anything else may have changed the role already.
                        retry: !role_change || error.is_throttled(),
                        error,
                    })
                }
            },
            |attempt, failed: &AttemptError, wait| {
                self.emit(SessionEvent::StepRetrying {
                    step,
                    attempt,
                    code: failed.error.code(),
                    wait,
                });
                tracing::info!(link = %self.link, step = step.0, attempt, code = %failed.error.kind, ?wait, "retrying");
            },
        )
        .await
        .map_err(|failed| failed.error)
    }

    async fn bounded<T>(
        &self,
        call: impl Future<Output = Result<T, PortError>>,
    ) -> Result<T, PortError> {
        let limit = self.options.call_timeout;
        let deadline = self.timer.now().plus(limit);
        tokio::select! {
            biased;
            result = call => result,
            () = self.timer.sleep_until(deadline) => Err(PortError::transient(
                "timeout",
                format!("no answer within {limit:?}; the call may or may not have taken effect"),
            )),
        }
    }
}

/// What an operation begins with.
/// What [`Session::refresh`] did.
enum Refreshed {
    /// The machine read both sides.
    Read,
    /// An operation is running (it reads the link itself).
    Busy,
    /// The machine's state does not read on request.
    NotApplicable,
}

/// A failed attempt, and whether the driver may retry it.
struct AttemptError {
    error: PortError,
    retry: bool,
}

impl Retryable for AttemptError {
    fn is_transient(&self) -> bool {
        self.retry && self.error.transient
    }
    fn retry_after(&self) -> Option<Duration> {
        self.error.retry_after
    }
    fn is_busy(&self) -> bool {
        self.error.is_busy()
    }
}

/// The name of a serialized enum's variant (`"EnsureMasterKey"`, `"PutLink"`), without its data.
fn variant_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        Ok(serde_json::Value::Object(map)) => map.keys().next().cloned().unwrap_or_default(),
        _ => String::from("?"),
    }
}

/// A short label of an input for traces and refusals: the operation a command starts
/// (`retry`, `refresh`), `observation`, `tick` or `resume`.
fn label(input: &Input) -> &'static str {
    match input {
        Input::Command(Command::Refresh) => "refresh",
        Input::Command(c) => Operation::of(c).map_or("retry", Operation::name),
        Input::Observed { .. } => "observation",
        Input::Tick => "tick",
        Input::Resume => "resume",
    }
}

/// A short label of an effect for events and traces: what it does, never its data.
pub fn action(effect: &Effect) -> String {
    match effect {
        Effect::Source { op, .. } => format!("sql:{}", variant_name(op)),
        Effect::Instance { op, .. } => format!("arm:{}", variant_name(op)),
        Effect::PollOperation { .. } => "arm:poll".into(),
        Effect::Probe {
            probe: Probe::Link, ..
        } => "probe:link".into(),
        Effect::Probe {
            probe: Probe::FirstFullBackups,
            ..
        } => "probe:full_backups".into(),
        Effect::Redirect { primary, .. } => format!("redirect:{}", variant_name(primary)),
    }
}

#[async_trait]
impl<S, M, J> LinkSession for Session<S, M, J>
where
    S: SourceServer + 'static,
    M: ManagedInstance + 'static,
    J: Journal + 'static,
{
    fn link(&self) -> &LinkName {
        &self.link
    }

    async fn record_assessment(&self, outcome: AssessmentOutcome) -> Result<(), SessionError> {
        self.drive(Some(Command::RecordAssessment(outcome))).await
    }

    async fn start(&self) -> Result<(), SessionError> {
        self.drive(Some(Command::Start)).await
    }

    async fn failover(&self, kind: FailoverKind) -> Result<(), SessionError> {
        self.drive(Some(Command::Failover(kind))).await
    }

    async fn failback(&self) -> Result<(), SessionError> {
        self.drive(Some(Command::Failback)).await
    }

    async fn cutover(&self, options: CutoverOptions) -> Result<(), SessionError> {
        self.drive(Some(Command::Cutover(options))).await
    }

    async fn repair_split_brain(&self, keep: Side) -> Result<(), SessionError> {
        self.drive(Some(Command::RepairSplitBrain { keep })).await
    }

    async fn cancel(&self) -> Result<(), SessionError> {
        self.drive(Some(Command::Cancel)).await
    }

    async fn resume(&self) -> Result<(), SessionError> {
        self.drive(None).await?;
        // Nothing left to continue: read both sides, so that a split brain that arose while
        // nothing ran is seen (or one resolved outside milink is left).
        self.refresh().await?;
        if lock(&self.core).engine.is_split_brain() {
            return Err(SessionError::SplitBrain);
        }
        Ok(())
    }

    async fn retry(&self) -> Result<(), SessionError> {
        self.drive(Some(Command::Retry)).await
    }

    fn status(&self) -> SessionStatus {
        let core = lock(&self.core);
        let machine = core.engine.machine();
        let state = machine.state();
        SessionStatus {
            link: self.link.clone(),
            state: state.phase(),
            detail: state.to_string(),
            phase: state.clone(),
            terminal: machine.is_terminal(),
            in_flight: machine.in_flight().iter().map(action).collect(),
            deadline: machine.deadline(),
            last_error: core.engine.last_error(),
            operation: core.engine.operation(),
            progress: core.engine.operation_status(),
            primary: core.engine.primary(),
            data_loss_possible: core.engine.data_loss_possible(),
            journal_path: self.journal_path.clone(),
            journal_records: core.next_seq,
            redirect: core.last_redirect.clone(),
            data_loss: machine.data_loss().to_vec(),
            loss_unverified: machine.unverified().to_vec(),
            split_brain_since: machine.split_brain_since(),
        }
    }

    async fn health(&self) -> Result<Option<LinkObservation>, SessionError> {
        // In a steady state, a split brain or a failure the machine reads both sides now (and
        // sees a split brain, or its end).
        if let Refreshed::Read = self.refresh().await? {
            let core = lock(&self.core);
            if let Some(link) = core.engine.machine().health() {
                return Ok(Some(link.clone()));
            }
        }
        // While an operation runs, or elsewhere (creating, completed): a fresh reading straight
        // from the ports, never a cached one; a side that cannot be read is marked unreachable.
        match self.probe_link(StepId(0)).await {
            Ok(link) => {
                lock(&self.core).engine.note_reading(link.clone());
                Ok(Some(link))
            }
            Err(e) => Err(SessionError::StepFailed(StepError {
                code: e.code(),
                message: e.message,
                retryable: e.transient,
            })),
        }
    }

    async fn watch(&self, duration: Duration) -> Result<(), SessionError> {
        let until = self.timer.now().plus(duration);
        let every = lock(&self.core)
            .engine
            .machine()
            .spec()
            .options
            .probe_interval;
        loop {
            self.refresh().await?;
            if lock(&self.core).engine.is_split_brain() {
                return Err(SessionError::SplitBrain);
            }
            let next = self.timer.now().plus(every);
            if next > until {
                return Ok(());
            }
            self.timer.sleep_until(next).await;
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<SessionEvent> {
        self.events.subscribe()
    }

    async fn check_workload_quiet(&self) -> Result<WorkloadActivity, SessionError> {
        let (primary, databases) = {
            let core = lock(&self.core);
            (
                core.engine.primary(),
                core.engine.machine().spec().databases.clone(),
            )
        };
        let activity = match primary {
            Side::SqlServer => {
                self.call(StepId(0), false, || {
                    self.source.workload_activity(&databases)
                })
                .await
            }
            Side::ManagedInstance => {
                self.call(StepId(0), false, || {
                    self.instance.workload_activity(&databases)
                })
                .await
            }
        };
        activity.map_err(|e| {
            SessionError::StepFailed(StepError {
                code: e.code(),
                message: e.message,
                retryable: e.transient,
            })
        })
    }
}

#[cfg(test)]
mod crash_tests;
#[cfg(test)]
mod drive_tests;
#[cfg(test)]
mod lock_tests;
#[cfg(test)]
mod once_tests;
#[cfg(test)]
mod redirect_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod world;
