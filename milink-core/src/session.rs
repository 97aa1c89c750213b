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

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tracing::Instrument;

use crate::journal::{JournalEntry, JournalRecord, ResumePoint, resume_point};
use crate::lifecycle::Input;
use crate::lifecycle::{
    AssessmentOutcome, Command, CutoverOptions, Ended, Engine, Event, FailoverKind, Handled,
    LinkName, LinkObservation, LinkSpec, Machine, Poll, Side, StepError, StepId,
};
pub use crate::lifecycle::{Operation, OperationStatus};
use crate::link_lock::{LinkLock, LinkLockError};
use crate::ports::{Journal, ManagedInstance, SourceServer};
pub use crate::redirect::RedirectHook;
use crate::redirect::{RedirectOptions, RedirectTarget, WorkloadActivity};
use crate::retry::RetryPolicy;
use crate::time::{Timer, Timestamp};

/// How a session drives: retries, timeouts and the jitter seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
    /// The pair this session drives, in words that tell it apart from every other (for
    /// example the SQL Server's name with the managed instance's resource id, or a lab and its
    /// seed). Recorded in the journal when the link is created; resuming a journal recorded
    /// for another world is refused with [`SessionError::WrongWorld`] and changes nothing.
    /// `None` records and checks nothing.
    pub world: Option<String>,
    /// How often [`LinkSession::watch`] reads the whole link through the machine (the managed
    /// instance's side over ARM included). Between those readings it reads only SQL Server's
    /// side (one T-SQL round trip, its DMVs) every probe interval, and reads the whole link at
    /// once when that reading differs from the last whole one in anything but its LSNs and
    /// queues (a role, a mode, a connection, a synchronization state, an error). ARM's read
    /// budget is shared by every link of a subscription (25 reads a second refilled, each
    /// whole reading costs two), so a fleet must not read ARM every second; see
    /// ARCHITECTURE.md. `0` reads the whole link every probe interval.
    pub arm_read_interval: Duration,
}

/// The default [`SessionOptions::arm_read_interval`]: 2 minutes, which keeps 1,000 watched
/// links at about 17 ARM reads a second, under ARM's refill of 25.
pub const DEFAULT_ARM_READ_INTERVAL: Duration = Duration::from_secs(120);

/// The most events a session keeps for a slow subscriber: every slot is allocated when the
/// session opens, so the bound keeps a mistyped capacity from exhausting memory.
pub const MAX_EVENT_CAPACITY: usize = 1 << 20;

/// The longest `call_timeout` accepted: 30 days.
pub const MAX_CALL_TIMEOUT: Duration = Duration::from_secs(30 * 24 * 3600);

/// The longest `operation_timeout` (and retry delay or budget) accepted: 366 days.
pub const MAX_OPERATION_TIMEOUT: Duration = Duration::from_secs(366 * 24 * 3600);

/// The longest `world` accepted, in bytes (it is written to the journal's first record).
pub const MAX_WORLD_LEN: usize = 4096;

impl SessionOptions {
    /// Checks every option against its range. `Session::create` and `Session::resume` call it
    /// before they touch the journal or the servers; a caller that creates the journal file
    /// itself should call it first, so a bad option leaves no file behind.
    pub fn validate(&self) -> Result<(), SessionError> {
        let invalid = |option: &'static str, reason: String| {
            Err(SessionError::InvalidOption { option, reason })
        };
        if self.event_capacity == 0 || self.event_capacity > MAX_EVENT_CAPACITY {
            return invalid(
                "event_capacity",
                format!(
                    "{} is out of range: give 1 to {MAX_EVENT_CAPACITY} events",
                    self.event_capacity
                ),
            );
        }
        let durations = [
            ("call_timeout", self.call_timeout, MAX_CALL_TIMEOUT),
            (
                "operation_timeout",
                self.operation_timeout,
                MAX_OPERATION_TIMEOUT,
            ),
            (
                "retry.initial_delay",
                self.retry.initial_delay,
                MAX_CALL_TIMEOUT,
            ),
            ("retry.max_delay", self.retry.max_delay, MAX_CALL_TIMEOUT),
            (
                "arm_read_interval",
                self.arm_read_interval,
                MAX_OPERATION_TIMEOUT,
            ),
            (
                "retry.max_retry_after",
                self.retry.max_retry_after,
                MAX_CALL_TIMEOUT,
            ),
            (
                "retry.busy_timeout",
                self.retry.busy_timeout,
                MAX_OPERATION_TIMEOUT,
            ),
        ];
        for (option, value, max) in durations {
            if value > max {
                return invalid(
                    option,
                    format!(
                        "{} s is longer than the {} s accepted",
                        value.as_secs(),
                        max.as_secs()
                    ),
                );
            }
        }
        for (option, value) in [
            ("call_timeout", self.call_timeout),
            ("operation_timeout", self.operation_timeout),
        ] {
            if value.is_zero() {
                return invalid(
                    option,
                    "0 would fail every call at once: give a positive duration".into(),
                );
            }
        }
        if self.retry.max_attempts == 0 {
            return invalid(
                "retry.max_attempts",
                "0 would never make the first attempt: give 1 (no retry) or more".into(),
            );
        }
        if !self.retry.multiplier.is_finite() || self.retry.multiplier < 1.0 {
            return invalid(
                "retry.multiplier",
                format!(
                    "{} is not a growth factor: give a finite number of at least 1",
                    self.retry.multiplier
                ),
            );
        }
        if let Some(world) = &self.world
            && (world.trim().is_empty() || world.len() > MAX_WORLD_LEN)
        {
            return invalid(
                "world",
                format!(
                    "give a non-empty name of at most {MAX_WORLD_LEN} bytes ({} given)",
                    world.len()
                ),
            );
        }
        Ok(())
    }
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
            world: None,
            arm_read_interval: DEFAULT_ARM_READ_INTERVAL,
        }
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
    /// Prepares the next role change while the application still writes: switches both sides
    /// to synchronous commit ([`Command::Prepare`]) and returns in the steady state. The
    /// failover, failback or cutover that follows skips the switch, so once the application
    /// stops only the catch-up gate stands before the role change.
    async fn prepare(&self) -> Result<(), SessionError>;
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
    /// Watches an idle link for `duration`: reads SQL Server's side every probe interval of the
    /// spec, and both sides through the machine (as [`LinkSession::health`] does) every
    /// [`SessionOptions::arm_read_interval`] on average, at once when SQL Server's reading
    /// changed in anything but its LSNs, and every probe interval while in a split brain;
    /// returns early with
    /// [`SessionError::SplitBrain`] as soon as both sides are PRIMARY. The library never reads
    /// on its own: an embedding service calls this (or `health`) to watch a steady link, for
    /// example after a forced failover while the old primary may come back.
    async fn watch(&self, duration: Duration) -> Result<(), SessionError>;
    /// Events from now on: state changes, steps, progress.
    fn subscribe(&self) -> broadcast::Receiver<SessionEvent>;
    /// The link's readings since the session opened, oldest first: one per link-state reading
    /// the machine accepted (probes while waiting, `health`, `watch`), at most
    /// [`HISTORY_CAPACITY`] (the oldest are dropped). Not journaled: a resumed session starts
    /// a new history.
    fn history(&self) -> Vec<Reading>;
    /// Who is still using the link's databases on the current primary: client sessions and
    /// open transactions (check [`WorkloadActivity::is_quiet`] before a failover; the
    /// procedures start with stopping the workload). Reads only; changes nothing.
    async fn check_workload_quiet(&self) -> Result<WorkloadActivity, SessionError>;
}

/// What a session calls each time it has sent events to its subscribers; see
/// [`Session::with_events_sent`].
pub type EventsSent = Arc<dyn Fn() + Send + Sync>;

/// The mutable part of a session, behind a short-held lock.
struct Core {
    engine: Engine,
    next_seq: u64,
    /// Records journaled since the last checkpoint (or since `Created`).
    since_checkpoint: u64,
    last_redirect: Option<RedirectTarget>,
    /// When [`LinkSession::watch`] next reads the whole link through the machine: after each
    /// accepted link reading, `arm_read_interval` times a factor drawn from 0.5 to 1.5 (so a
    /// fleet's ARM reads spread out instead of arriving together).
    next_whole: Option<Timestamp>,
}

/// How many records a session journals between checkpoints unless told otherwise
/// ([`Session::with_checkpoint_every`]). A file journal is compacted at each checkpoint to its
/// `Created` record and the checkpoint, so it holds at most this many records more: a few
/// hundred kilobytes.
pub const CHECKPOINT_EVERY: u64 = 256;

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
    events_sent: Option<EventsSent>,
    rng: Mutex<fastrand::Rng>,
    history: Mutex<std::collections::VecDeque<Reading>>,
    checkpoint_every: u64,
}

/// How many readings a session's history keeps (a week of readings every minute).
pub const HISTORY_CAPACITY: usize = 10_080;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<S, M, J> Session<S, M, J>
where
    S: SourceServer + 'static,
    M: ManagedInstance + 'static,
    J: Journal + 'static,
{
    /// Starts a new link: validates the spec (and that its endpoint certificate expires after
    /// today by `timer`, [`crate::lifecycle::SpecError::CertificateExpiry`]), takes the link's lock (see
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
        options.validate()?;
        let machine = Machine::new(spec.clone()).map_err(SessionError::Spec)?;
        // An endpoint certificate that expires before it is created: the link would never
        // connect. Checked here, where the clock is, before anything is journaled or sent.
        let today = timer.now().date();
        if spec.source.certificate_expiry <= today {
            return Err(SessionError::Spec(
                crate::lifecycle::SpecError::CertificateExpiry {
                    expiry: spec.source.certificate_expiry,
                    today,
                },
            ));
        }
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
                world: options.world.clone(),
            },
        ))?;
        let start = ResumePoint {
            machine,
            operation: None,
            next_seq: 1,
            since_checkpoint: 0,
        };
        Ok(Self::assemble(
            start, link_lock, source, instance, journal, timer, options,
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
        options.validate()?;
        let records = journal.records()?;
        let start = resume_point(&records)?;
        // A journal belongs to the pair it was created on: resumed on another, its readings
        // and operations would be applied to the wrong servers.
        if let Some(JournalRecord {
            entry:
                JournalEntry::Created {
                    world: Some(recorded),
                    ..
                },
            ..
        }) = records.first()
            && let Some(given) = &options.world
            && given != recorded
        {
            return Err(SessionError::WrongWorld {
                journal: recorded.clone(),
                given: given.clone(),
            });
        }
        let link_lock = Self::lock_link(start.machine.spec(), &journal, &options)?;
        drop(records);
        let session = Self::assemble(start, link_lock, source, instance, journal, timer, options);
        let needs_resume = lock(&session.core).engine.needs_resume();
        if needs_resume {
            session.submit(Input::Resume)?;
        }
        Ok(session)
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        start: ResumePoint,
        link_lock: Option<LinkLock>,
        source: Arc<S>,
        instance: Arc<M>,
        journal: J,
        timer: Arc<dyn Timer>,
        options: SessionOptions,
    ) -> Self {
        let ResumePoint {
            machine,
            operation,
            next_seq,
            since_checkpoint,
        } = start;
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
                since_checkpoint,
                last_redirect: None,
                next_whole: None,
            }),
            operation_lock: tokio::sync::Mutex::new(()),
            events,
            events_sent: None,
            history: Mutex::new(std::collections::VecDeque::new()),
            checkpoint_every: CHECKPOINT_EVERY,
        }
    }

    /// Writes a checkpoint every `records` journaled records (at least 1) instead of every
    /// [`CHECKPOINT_EVERY`]: fewer makes the journal file and the replay on resume shorter, at
    /// the cost of writing the machine's whole state (a few kilobytes) more often.
    pub fn with_checkpoint_every(mut self, records: u64) -> Self {
        self.checkpoint_every = records.max(1);
        self
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

    /// `notify` is called each time the session has sent events to its subscribers
    /// ([`LinkSession::subscribe`]): on the thread that runs the operation, inside it, after the
    /// events were sent and with no lock of the session held.
    ///
    /// An operation on a simulator's virtual clock never waits, so it runs from start to end
    /// in one poll of its future; an embedding that must see progress while it runs (a
    /// progress callback, an interrupt raised in one) drains its receiver here rather than
    /// between polls. What `notify` does delays the operation. If it unwinds, the operation is
    /// abandoned as if its future were dropped at that point: every event is sent after the
    /// input that produced it was journaled, and no lock is held, so the journal and the
    /// session stay consistent and `resume` continues.
    pub fn with_events_sent(mut self, notify: Option<EventsSent>) -> Self {
        self.events_sent = notify;
        self
    }

    /// A copy of the machine, for inspection.
    pub fn machine(&self) -> Machine {
        lock(&self.core).engine.machine().clone()
    }

    /// The journal, for inspection.
    pub fn with_journal<T>(&self, f: impl FnOnce(&J) -> T) -> T {
        f(&lock(&self.journal))
    }

    /// Sends `event` to the subscribers and says so ([`Self::with_events_sent`]).
    fn emit(&self, event: SessionEvent) {
        self.send(event);
        self.events_sent();
    }

    fn send(&self, event: SessionEvent) {
        // No subscribers is fine.
        let _ = self.events.send(event);
    }

    fn events_sent(&self) {
        if let Some(notify) = &self.events_sent {
            notify();
        }
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
        // An input that leaves the machine exactly as it was (a tick with nothing due, a
        // resume with nothing to re-issue) is not journaled: replay without it reaches the
        // same machine. A command is always journaled (it names the operation to continue).
        let unchanged =
            !matches!(input, Input::Command(_)) && next.machine() == core.engine.machine();
        let seq = core.next_seq;
        let reading = match &input {
            Input::Observed {
                result: Ok(crate::lifecycle::Observation::Link(link)),
                ..
            } => Some(Reading::of(now, next.machine().state().name(), link)),
            _ => None,
        };
        let whole = reading.is_some();
        if !unchanged {
            lock(&self.journal).append(&JournalRecord::new(
                seq,
                now,
                JournalEntry::Input { input },
            ))?;
        }
        if let Some(reading) = reading {
            let mut history = lock(&self.history);
            if history.len() >= HISTORY_CAPACITY {
                history.pop_front();
            }
            history.push_back(reading);
        }
        core.engine = next;
        if whole {
            let factor = 0.5 + lock(&self.rng).f64();
            core.next_whole = Some(now.plus(self.options.arm_read_interval.mul_f64(factor)));
        }
        if !unchanged {
            core.next_seq += 1;
            core.since_checkpoint += 1;
            if core.since_checkpoint >= self.checkpoint_every {
                self.checkpoint(&mut core, now)?;
            }
        }
        let after = core.engine.machine().state().name();
        let mut events = Vec::new();
        while let Some(event) = core.engine.poll_event() {
            events.push(event);
        }
        drop(core);
        tracing::debug!(link = %self.link, seq, input = what, state = after, "input journaled");
        let sent = !events.is_empty();
        for event in events {
            self.send(match event {
                Event::StateChanged { from, to } => SessionEvent::StateChanged {
                    from: from.name().to_owned(),
                    to: to.name().to_owned(),
                },
                Event::Progress(p) => SessionEvent::Progress(p),
            });
        }
        if sent {
            self.events_sent();
        }
        Ok(Handled::Accepted)
    }

    /// Writes a checkpoint of the machine as it is after the last journaled record (which is
    /// already durable, so no effect waits on this). A failed checkpoint changes nothing that
    /// was journaled: the error is returned like a failed append, and the next operation
    /// continues from the journal as it stands.
    fn checkpoint(&self, core: &mut Core, now: Timestamp) -> Result<(), SessionError> {
        let record = JournalRecord::new(
            core.next_seq,
            now,
            JournalEntry::Checkpoint {
                machine: Box::new(core.engine.machine().clone()),
                operation: core.engine.operation(),
            },
        );
        lock(&self.journal).checkpoint(&record)?;
        core.next_seq += 1;
        core.since_checkpoint = 0;
        tracing::debug!(link = %self.link, seq = record.seq, "checkpoint journaled");
        Ok(())
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
}

/// What [`Session::refresh`] did.
enum Refreshed {
    /// The machine read both sides.
    Read,
    /// An operation is running (it reads the link itself).
    Busy,
    /// The machine's state does not read on request.
    NotApplicable,
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

    async fn prepare(&self) -> Result<(), SessionError> {
        self.drive(Some(Command::Prepare)).await
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
            connection_warnings: self.source.connection_warnings(),
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
        match self.probe_link(StepId(0), false).await {
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
            let now = self.timer.now();
            let due = {
                let core = lock(&self.core);
                core.engine.is_split_brain() || core.next_whole.is_none_or(|at| now >= at)
            };
            if due || self.sql_server_changed().await {
                self.refresh().await?;
            }
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

    fn history(&self) -> Vec<Reading> {
        lock(&self.history).iter().cloned().collect()
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

mod calls;
// What the tests below reach through `use super::*`.
#[cfg(test)]
use crate::journal::{JournalError, replay};
#[cfg(test)]
use crate::lifecycle::{Effect, Observation, Probe, ProgressEvent, State};
#[cfg(test)]
use crate::link_lock::LockHolder;
#[cfg(test)]
use crate::ports::{ArmReply, PollReply, PortError, SourceReply};
#[cfg(test)]
use calls::variant_name;
mod error;
mod status;

pub use calls::action;
use calls::label;
pub use error::SessionError;
pub use status::{DatabaseReading, Reading, SessionEvent, SessionStatus};

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
