//! Whole scenarios against the fake world: crash after every journal record, resume, and reach
//! the same end without repeating a role change; drop a running operation and resume from the
//! file; never write a secret to the journal.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::world::{FakeInstance, FakeSource, World, WorldState};
use super::*;
use crate::journal::{FileJournal, MemoryJournal};
use crate::lifecycle::ReplicaRole;
use crate::redirect::FileRedirectHook;
use crate::retry::Jitter;
use crate::test_support::{VirtualTimer, spec};

fn options() -> SessionOptions {
    SessionOptions {
        retry: RetryPolicy {
            max_attempts: 3,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            multiplier: 2.0,
            jitter: Jitter::Full,
            max_retry_after: Duration::from_secs(60),
            busy_timeout: Duration::from_secs(15 * 60),
        },
        call_timeout: Duration::from_secs(30),
        operation_timeout: Duration::from_secs(24 * 3600),
        seed: 11,
        event_capacity: 1024,
        lock_dir: None,
        world: None,
        arm_read_interval: super::DEFAULT_ARM_READ_INTERVAL,
    }
}

/// One user operation of a scenario.
#[derive(Debug, Clone)]
enum Op {
    Assess,
    Start,
    Failover(FailoverKind),
    Failback,
    Cutover(CutoverOptions),
}

async fn run(session: &dyn LinkSession, op: &Op) -> Result<(), SessionError> {
    match op {
        Op::Assess => {
            session
                .record_assessment(AssessmentOutcome {
                    blockers: Vec::new(),
                })
                .await
        }
        Op::Start => session.start().await,
        Op::Failover(kind) => session.failover(kind.clone()).await,
        Op::Failback => session.failback().await,
        Op::Cutover(options) => session.cutover(options.clone()).await,
    }
}

fn failover_scenario() -> Vec<Op> {
    vec![Op::Assess, Op::Start, Op::Failover(FailoverKind::Planned)]
}

fn failback_scenario() -> Vec<Op> {
    vec![
        Op::Assess,
        Op::Start,
        Op::Failover(FailoverKind::Planned),
        Op::Failback,
    ]
}

fn forced_failover_scenario() -> Vec<Op> {
    vec![
        Op::Assess,
        Op::Start,
        Op::Failover(FailoverKind::Forced(Some(
            crate::lifecycle::DataLossAcknowledgement {
                link: spec().link.to_string(),
            },
        ))),
    ]
}

fn cutover_scenario() -> Vec<Op> {
    vec![
        Op::Assess,
        Op::Start,
        Op::Cutover(CutoverOptions {
            drop_availability_group: true,
        }),
    ]
}

/// Calls that change a role or remove the link: each may run at most as often as in a run
/// without crashes.
const ROLE_CHANGES: [&str; 6] = [
    "sql:Failover",
    "sql:ForceFailover",
    "sql:SetRoleSecondary",
    "arm:Failover",
    "arm:SetRole",
    "arm:DeleteLink",
];

fn role_change_counts(calls: &[String], watched: &[&'static str]) -> Vec<(&'static str, usize)> {
    watched
        .iter()
        .map(|name| (*name, calls.iter().filter(|c| c == name).count()))
        .collect()
}

/// The world as the user sees it (operation URLs differ between runs and are left out).
fn visible(state: &WorldState) -> WorldState {
    WorldState {
        operations: Default::default(),
        next_operation: 0,
        full_backup: state.full_backup.map(|_| Timestamp::EPOCH),
        ..state.clone()
    }
}

/// A journal that "crashes" at record `seq`: either after writing it or before.
struct CrashingJournal {
    inner: MemoryJournal,
    crash_at: u64,
    write_then_crash: bool,
}

impl Journal for CrashingJournal {
    fn append(&mut self, record: &JournalRecord) -> Result<(), JournalError> {
        if record.seq >= self.crash_at {
            if record.seq == self.crash_at && self.write_then_crash {
                self.inner.append(record)?;
            }
            return Err(JournalError::Io {
                path: "memory".into(),
                source: io::Error::other("simulated crash"),
            });
        }
        self.inner.append(record)
    }

    fn records(&self) -> Result<Vec<JournalRecord>, JournalError> {
        self.inner.records()
    }
}

struct Outcome {
    state: State,
    /// The session's last redirect target.
    redirect: Option<RedirectTarget>,
    world: WorldState,
    calls: Vec<String>,
    /// Role changes and removals that took effect, in order.
    applied: Vec<String>,
    records: usize,
}

type FakeSession<J> = Session<FakeSource, FakeInstance, J>;

fn new_session<J: Journal + 'static>(
    world: &Arc<World>,
    timer: &Arc<VirtualTimer>,
    journal: J,
) -> Result<FakeSession<J>, SessionError> {
    new_session_for(spec(), world, timer, journal)
}

fn new_session_for<J: Journal + 'static>(
    spec: LinkSpec,
    world: &Arc<World>,
    timer: &Arc<VirtualTimer>,
    journal: J,
) -> Result<FakeSession<J>, SessionError> {
    Session::create(
        spec,
        Arc::new(FakeSource(world.clone())),
        Arc::new(FakeInstance(world.clone())),
        journal,
        timer.clone(),
        options(),
    )
}

/// The application's redirect hook, if any (no hook: the redirect succeeds at once).
type Hook = Option<Arc<dyn RedirectHook>>;

fn hooked<J: Journal + 'static>(session: FakeSession<J>, hook: &Hook) -> FakeSession<J> {
    session.with_redirect(hook.clone(), RedirectOptions::default())
}

fn resumed_session<J: Journal + 'static>(
    world: &Arc<World>,
    timer: &Arc<VirtualTimer>,
    journal: J,
) -> Result<FakeSession<J>, SessionError> {
    Session::resume(
        journal,
        Arc::new(FakeSource(world.clone())),
        Arc::new(FakeInstance(world.clone())),
        timer.clone(),
        options(),
    )
}

async fn uninterrupted(scenario: &[Op]) -> Outcome {
    uninterrupted_with(spec(), scenario, MemoryJournal::new(), None, false).await
}

/// [`uninterrupted`] for the link `spec`, journaled to `journal` (empty), with `hook`.
async fn uninterrupted_with(
    spec: LinkSpec,
    scenario: &[Op],
    journal: MemoryJournal,
    hook: Hook,
    deferred: bool,
) -> Outcome {
    let timer = Arc::new(VirtualTimer::new(Timestamp::from_millis(1_000_000)));
    let world = World::new(spec.databases.clone(), timer.clone());
    world
        .deferred_role_changes
        .store(deferred, std::sync::atomic::Ordering::SeqCst);
    let session = hooked(
        new_session_for(spec, &world, &timer, journal.clone()).unwrap(),
        &hook,
    );
    for op in scenario {
        run(&session, op)
            .await
            .unwrap_or_else(|e| panic!("{op:?} failed: {e}\nstatus: {:?}", session.status()));
    }
    assert_eq!(replay(&journal.snapshot()).unwrap(), session.machine());
    Outcome {
        state: session.machine().state().clone(),
        redirect: session.status().redirect,
        world: world.snapshot(),
        calls: world.calls(),
        applied: world.applied(),
        records: journal.snapshot().len(),
    }
}

/// Runs `scenario`, crashing at record `crash_at`, then restarts from the journal and finishes.
async fn crash_and_resume(scenario: &[Op], crash_at: u64, write_then_crash: bool) -> Outcome {
    crash_and_resume_with(
        spec(),
        scenario,
        crash_at,
        write_then_crash,
        MemoryJournal::new(),
        None,
        false,
    )
    .await
}

/// [`crash_and_resume`] for the link `spec`, journaled to `journal` (empty; the records that
/// survive the crash stay in it), with `hook` as the redirect hook of the session before the
/// crash and of the one after it.
async fn crash_and_resume_with(
    spec: LinkSpec,
    scenario: &[Op],
    crash_at: u64,
    write_then_crash: bool,
    journal: MemoryJournal,
    hook: Hook,
    deferred: bool,
) -> Outcome {
    let timer = Arc::new(VirtualTimer::new(Timestamp::from_millis(1_000_000)));
    let world = World::new(spec.databases.clone(), timer.clone());
    world
        .deferred_role_changes
        .store(deferred, std::sync::atomic::Ordering::SeqCst);
    let crashing = CrashingJournal {
        inner: journal.clone(),
        crash_at,
        write_then_crash,
    };
    let mut crashed = false;
    match new_session_for(spec.clone(), &world, &timer, crashing) {
        Err(SessionError::Journal(_)) => crashed = true,
        Err(e) => panic!("create: {e}"),
        Ok(session) => {
            let session = hooked(session, &hook);
            for op in scenario {
                match run(&session, op).await {
                    Ok(()) => {}
                    Err(SessionError::Journal(_)) => {
                        crashed = true;
                        break;
                    }
                    Err(e) => panic!("{op:?} failed before the crash: {e}"),
                }
            }
        }
    }
    assert!(crashed, "no crash at record {crash_at}");

    // Restart: a new process with the same world and the surviving journal.
    let records = journal.snapshot();
    let session = if records.is_empty() {
        new_session_for(spec, &world, &timer, journal.clone()).unwrap()
    } else {
        resumed_session(&world, &timer, journal.clone()).unwrap()
    };
    let session = hooked(session, &hook);
    let label = format!(
        "crash at record {crash_at} ({}), state after restart {}",
        if write_then_crash {
            "after writing it"
        } else {
            "before writing it"
        },
        session.status().state
    );
    session
        .resume()
        .await
        .unwrap_or_else(|e| panic!("{label}: resume failed: {e}\ncalls: {:?}", world.calls()));
    let started = journal
        .snapshot()
        .iter()
        .filter(|r| {
            // A scenario's commands; `resume` reads the link with `Refresh`, which is not one.
            matches!(
                &r.entry,
                JournalEntry::Input {
                    input: Input::Command(c)
                } if !matches!(c, Command::Refresh)
            )
        })
        .count();
    for op in &scenario[started..] {
        run(&session, op)
            .await
            .unwrap_or_else(|e| panic!("{label}: {op:?} failed: {e}"));
    }
    assert_eq!(
        replay(&journal.snapshot()).unwrap(),
        session.machine(),
        "{label}: replay differs from the live machine"
    );
    Outcome {
        state: session.machine().state().clone(),
        redirect: session.status().redirect,
        world: world.snapshot(),
        calls: world.calls(),
        applied: world.applied(),
        records: journal.snapshot().len(),
    }
}

/// Crashes `scenario` at every record, both before and after writing it, and checks each run
/// against one without crashes: same final state, same world, and none of the `watched` calls
/// run more often.
async fn crash_everywhere(scenario: Vec<Op>, watched: &[&'static str]) {
    let baseline = uninterrupted(&scenario).await;
    let baseline_role_changes = role_change_counts(&baseline.calls, watched);
    assert!(
        baseline_role_changes.iter().any(|(_, n)| *n > 0),
        "the scenario changes no role: {:?}",
        baseline.calls
    );
    for crash_at in 0..baseline.records as u64 {
        for write_then_crash in [true, false] {
            let outcome = crash_and_resume(&scenario, crash_at, write_then_crash).await;
            let label = format!("crash at record {crash_at}, written: {write_then_crash}");
            assert_eq!(outcome.state.name(), baseline.state.name(), "{label}");
            assert_eq!(visible(&outcome.world), visible(&baseline.world), "{label}");
            assert_eq!(
                role_change_counts(&outcome.calls, watched),
                baseline_role_changes,
                "{label}: a role change ran a different number of times\ncalls: {:?}",
                outcome.calls
            );
            assert!(outcome.records >= 2, "{label}");
        }
    }
}

/// [`crash_everywhere`] for `spec`, with ARM role changes that are accepted and run for a
/// while before they take effect ("accepted, still running"), asserting each watched call's
/// exact count: once.
async fn crash_everywhere_while_running(
    spec: LinkSpec,
    scenario: Vec<Op>,
    watched: &[&'static str],
) {
    let baseline =
        uninterrupted_with(spec.clone(), &scenario, MemoryJournal::new(), None, true).await;
    let once = role_change_counts(&baseline.calls, watched);
    assert!(
        once.iter().all(|(_, n)| *n == 1),
        "each watched call once without crashes: {once:?}"
    );
    for crash_at in 0..baseline.records as u64 {
        for written in [true, false] {
            let outcome = crash_and_resume_with(
                spec.clone(),
                &scenario,
                crash_at,
                written,
                MemoryJournal::new(),
                None,
                true,
            )
            .await;
            let label = format!("crash at record {crash_at}, written: {written}");
            assert_eq!(outcome.state.name(), baseline.state.name(), "{label}");
            assert_eq!(visible(&outcome.world), visible(&baseline.world), "{label}");
            // Every watched change took effect exactly once. A failover or setRole was also
            // sent once; a DELETE whose reply was lost before its URL was journaled is sent
            // again while the link still exists, and ARM answers it with the running deletion.
            assert_eq!(
                role_change_counts(&outcome.applied, watched),
                once,
                "{label}: applied {:?}",
                outcome.applied
            );
            for (call, sent) in role_change_counts(&outcome.calls, watched) {
                let limit = if call == "arm:DeleteLink" { 2 } else { 1 };
                assert!(
                    sent <= limit,
                    "{label}: {call} sent {sent} times: {:?}",
                    outcome.calls
                );
            }
        }
    }
}

/// SQL Server 2022 CU10: planned failovers go through ARM.
fn arm_spec() -> LinkSpec {
    let mut spec = spec();
    spec.source.version = crate::names::SqlVersion::new(16, 0, 4095, 4);
    spec
}

#[tokio::test]
async fn a_crash_anywhere_while_an_arm_failover_runs_never_posts_it_twice() {
    crash_everywhere_while_running(arm_spec(), failover_scenario(), &["arm:Failover"]).await;
}

#[tokio::test]
async fn a_crash_anywhere_while_a_forced_failover_runs_never_posts_it_twice() {
    crash_everywhere_while_running(spec(), forced_failover_scenario(), &["arm:Failover"]).await;
}

#[tokio::test]
async fn a_crash_anywhere_while_a_link_deletion_runs_never_deletes_twice() {
    crash_everywhere_while_running(
        spec(),
        cutover_scenario(),
        &["sql:Failover", "arm:DeleteLink"],
    )
    .await;
}

#[tokio::test]
async fn a_crash_after_any_record_of_a_planned_failover_resumes_to_the_same_end() {
    crash_everywhere(failover_scenario(), &ROLE_CHANGES).await;
}

#[tokio::test]
async fn a_crash_after_any_record_of_a_failback_resumes_to_the_same_end() {
    crash_everywhere(failback_scenario(), &ROLE_CHANGES).await;
}

/// A forced failover whose reply was lost is not sent again once it happened: in the fake world a
/// second one would hand the primary role back to the old primary, and the link would never
/// reach FailedOver.
#[tokio::test]
async fn a_crash_after_any_record_of_a_forced_failover_resumes_to_the_same_end() {
    crash_everywhere(forced_failover_scenario(), &ROLE_CHANGES).await;
}

/// The role changes alone (the link's removal is watched by the test below it).
const GUARDED_ROLE_CHANGES: [&str; 5] = [
    "sql:Failover",
    "sql:ForceFailover",
    "sql:SetRoleSecondary",
    "arm:Failover",
    "arm:SetRole",
];

#[tokio::test]
async fn a_crash_after_any_record_of_a_cutover_resumes_to_the_same_end() {
    crash_everywhere(cutover_scenario(), &GUARDED_ROLE_CHANGES).await;
}

/// The link's `DELETE` whose reply was lost is not sent again once the link is gone: the machine
/// reads the link first, as it reads the roles before re-issuing a role change.
#[tokio::test]
async fn a_crash_during_a_cutover_never_repeats_the_link_removal() {
    crash_everywhere(cutover_scenario(), &ROLE_CHANGES).await;
}

#[tokio::test]
async fn dropping_a_running_failover_leaves_a_resumable_file_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("toystore.journal");
    let timer = Arc::new(VirtualTimer::new(Timestamp::from_millis(1_000_000)));
    let world = World::new(spec().databases, timer.clone());
    {
        let session = new_session(&world, &timer, FileJournal::create(&path).unwrap()).unwrap();
        run(&session, &Op::Assess).await.unwrap();
        run(&session, &Op::Start).await.unwrap();
        *lock(&world.role_change_delay) = Some(Duration::from_secs(5));
        let mut events = session.subscribe();
        let mut failover = std::pin::pin!(session.failover(FailoverKind::Planned));
        // Run the failover until the role change is on the wire, then drop it, as a caller's
        // timeout or Ctrl-C would.
        loop {
            // Events first: once the role change has started, the failover is not polled again.
            tokio::select! {
                biased;
                event = events.recv() => match event {
                    Ok(SessionEvent::StepStarted { action, .. })
                        if ROLE_CHANGES.contains(&action.as_str()) => break,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(e) => panic!("{e}"),
                },
                result = &mut failover => panic!("the failover should still be running: {result:?}"),
            }
        }
        // While this session lives, nobody else can drive the link.
        assert!(matches!(
            FileJournal::open(&path).unwrap_err(),
            JournalError::Locked { .. }
        ));
    }
    // The role change never got through before the drop.
    assert_eq!(world.snapshot().instance.role, Some(ReplicaRole::Secondary));
    *lock(&world.role_change_delay) = None;

    let session = resumed_session(&world, &timer, FileJournal::open(&path).unwrap()).unwrap();
    assert_eq!(session.status().operation, Some(Operation::Failover));
    session.resume().await.unwrap();
    assert_eq!(session.status().state, "FailedOver");
    assert_eq!(world.snapshot().instance.role, Some(ReplicaRole::Primary));
    // The dropped call never took effect; the resumed one did, once.
    assert_eq!(world.applied().len(), 1, "{:?}", world.calls());
    let records = session.with_journal(|j| j.records().unwrap());
    assert_eq!(replay(&records).unwrap(), session.machine());
}

#[tokio::test]
async fn the_journal_file_never_holds_the_password_the_ports_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("toystore.journal");
    let timer = Arc::new(VirtualTimer::new(Timestamp::from_millis(1_000_000)));
    let world = World::new(spec().databases, timer.clone());
    let session = new_session(&world, &timer, FileJournal::create(&path).unwrap()).unwrap();
    let mut events = session.subscribe();
    for op in failover_scenario() {
        run(&session, &op).await.unwrap();
    }
    assert!(world.snapshot().master_key, "the password was used");
    let password = world.password().expose().to_owned();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.lines().count() > 5);
    assert!(!text.contains(&password), "password found in the journal");
    let status = serde_json::to_string(&session.status()).unwrap();
    assert!(!status.contains(&password));
    while let Ok(event) = events.try_recv() {
        assert!(!format!("{event:?}").contains(&password));
    }
}

/// One call of [`CountingHook`].
#[derive(Debug, Clone)]
struct HookCall {
    redirect_id: String,
    side: Side,
    /// The seq of the record that journals this call's outcome (the journal's length during
    /// the call: effects run one at a time and each outcome is journaled right after).
    outcome_record: u64,
    /// The connection string file was written by this call (with a [`FileRedirectHook`]).
    wrote: bool,
}

/// A redirect hook that records every call, and passes it on to a [`FileRedirectHook`] if
/// given one, noting whether that call rewrote the file.
struct CountingHook {
    journal: MemoryJournal,
    file: Option<FileRedirectHook>,
    calls: Mutex<Vec<HookCall>>,
}

impl CountingHook {
    fn new(journal: &MemoryJournal, file: Option<FileRedirectHook>) -> Arc<CountingHook> {
        Arc::new(CountingHook {
            journal: journal.clone(),
            file,
            calls: Mutex::new(Vec::new()),
        })
    }

    fn calls(&self) -> Vec<HookCall> {
        lock(&self.calls).clone()
    }
}

/// A modification time no write of today can have: a file that still has it was not rewritten.
fn untouched_mtime() -> std::time::SystemTime {
    std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1)
}

#[async_trait]
impl RedirectHook for CountingHook {
    async fn redirect(&self, target: &RedirectTarget) -> Result<(), crate::redirect::HookError> {
        let mut wrote = false;
        if let Some(file) = &self.file {
            // The hook writes by renaming a new file over the old one, which gives it a new
            // modification time: mark the old one to see whether this call replaced it.
            if let Ok(f) = std::fs::File::options().write(true).open(file.path()) {
                f.set_modified(untouched_mtime()).unwrap();
            }
            file.redirect(target).await?;
            let modified = std::fs::metadata(file.path()).unwrap().modified().unwrap();
            wrote = modified != untouched_mtime();
        }
        lock(&self.calls).push(HookCall {
            redirect_id: target.redirect_id.clone(),
            side: target.side,
            outcome_record: self.journal.snapshot().len() as u64,
            wrote,
        });
        Ok(())
    }
}

/// What one crash point did to the hook: calls per redirect, in the baseline's order.
#[derive(Debug, PartialEq, Eq)]
struct HookCounts {
    crash_at: u64,
    written: bool,
    calls: Vec<usize>,
    writes: Vec<usize>,
}

/// Crashes `scenario` of the link `spec` at every record, before and after writing it, with a
/// counting hook (passing each call to a [`FileRedirectHook`] when `file` is set), and checks
/// the hook's contract: every redirect of the run without crashes is called at least once and
/// at most twice, twice exactly when the crash fell on the record of its outcome before that
/// record was written; every call for one redirect carries its id and side; and the file is
/// written once per redirect, repeats included. Returns the counts for every crash point.
async fn hook_calls_at_every_crash_point(
    spec: LinkSpec,
    scenario: Vec<Op>,
    file: bool,
) -> Vec<HookCounts> {
    let new_hook = |journal: &MemoryJournal, dir: &tempfile::TempDir| {
        CountingHook::new(
            journal,
            file.then(|| FileRedirectHook::new(dir.path().join("app.connstr"))),
        )
    };
    // The run without crashes: one call per redirect, each with its own id.
    let dir = tempfile::tempdir().unwrap();
    let journal = MemoryJournal::new();
    let baseline_hook = new_hook(&journal, &dir);
    let baseline = uninterrupted_with(
        spec.clone(),
        &scenario,
        journal,
        Some(baseline_hook.clone()),
        false,
    )
    .await;
    assert_eq!(
        baseline.redirect.map(|t| t.redirect_id),
        baseline_hook.calls().last().map(|c| c.redirect_id.clone()),
        "the status shows the last redirect's id"
    );
    let redirects = baseline_hook.calls();
    assert!(!redirects.is_empty(), "the scenario redirects nothing");
    for (n, call) in redirects.iter().enumerate() {
        assert_eq!(
            call.redirect_id,
            format!("{}/redirect/{}", spec.link, n + 1)
        );
        assert!(!file || call.wrote, "the baseline wrote redirect {}", n + 1);
    }
    let mut observed = Vec::new();
    for crash_at in 0..baseline.records as u64 {
        for written in [true, false] {
            let label = format!("crash at record {crash_at}, written: {written}");
            let dir = tempfile::tempdir().unwrap();
            let journal = MemoryJournal::new();
            // The crashed run's hook must see the journal the crashed session writes to.
            let hook = new_hook(&journal, &dir);
            let outcome = crash_and_resume_with(
                spec.clone(),
                &scenario,
                crash_at,
                written,
                journal,
                Some(hook.clone()),
                false,
            )
            .await;
            assert_eq!(outcome.state.name(), baseline.state.name(), "{label}");
            assert_eq!(visible(&outcome.world), visible(&baseline.world), "{label}");
            let calls = hook.calls();
            for call in &calls {
                assert!(
                    redirects.iter().any(|r| r.redirect_id == call.redirect_id),
                    "{label}: a call for a redirect the run without crashes never made: {call:?}"
                );
            }
            let mut counts = HookCounts {
                crash_at,
                written,
                calls: Vec::new(),
                writes: Vec::new(),
            };
            for redirect in &redirects {
                let mine: Vec<&HookCall> = calls
                    .iter()
                    .filter(|c| c.redirect_id == redirect.redirect_id)
                    .collect();
                let expected = if crash_at == redirect.outcome_record && !written {
                    2
                } else {
                    1
                };
                assert_eq!(
                    mine.len(),
                    expected,
                    "{label}: calls for {}: {calls:?}",
                    redirect.redirect_id
                );
                assert!(mine.iter().all(|c| c.side == redirect.side), "{label}");
                let writes = mine.iter().filter(|c| c.wrote).count();
                if file {
                    assert_eq!(
                        writes, 1,
                        "{label}: the file was not written exactly once for {}",
                        redirect.redirect_id
                    );
                }
                counts.calls.push(mine.len());
                counts.writes.push(writes);
            }
            let last = redirects.last().map(|r| r.redirect_id.clone());
            // The status keeps the redirects of this process only: none when the crash came
            // after the last one.
            if let Some(target) = outcome.redirect {
                assert_eq!(
                    Some(target.redirect_id),
                    last,
                    "{label}: the status's redirect"
                );
            }
            if let Some(file) = &hook.file {
                assert_eq!(file.last_applied(), last, "{label}");
            }
            observed.push(counts);
        }
    }
    // Every redirect met the crash that repeats it.
    for (n, redirect) in redirects.iter().enumerate() {
        assert!(
            observed
                .iter()
                .any(|c| c.crash_at == redirect.outcome_record && c.calls[n] == 2),
            "no crash point repeated {}",
            redirect.redirect_id
        );
    }
    println!(
        "{} redirects {:?}, outcomes journaled at records {:?}",
        spec.link,
        redirects
            .iter()
            .map(|r| r.redirect_id.as_str())
            .collect::<Vec<_>>(),
        redirects
            .iter()
            .map(|r| r.outcome_record)
            .collect::<Vec<_>>()
    );
    for c in &observed {
        if c.calls.iter().any(|n| *n != 1) {
            println!(
                "  crash at record {} ({}): calls per redirect {:?}, file writes {:?}",
                c.crash_at,
                if c.written {
                    "after writing it"
                } else {
                    "before writing it"
                },
                c.calls,
                c.writes
            );
        }
    }
    println!(
        "  every other crash point ({} of {}): one call per redirect",
        observed
            .iter()
            .filter(|c| c.calls.iter().all(|n| *n == 1))
            .count(),
        observed.len()
    );
    observed
}

fn one_way() -> LinkSpec {
    LinkSpec {
        failover_mode: crate::lifecycle::FailoverMode::None,
        ..spec()
    }
}

#[tokio::test]
async fn a_crash_anywhere_in_a_planned_failover_calls_the_hook_at_least_once_with_one_id() {
    hook_calls_at_every_crash_point(spec(), failover_scenario(), false).await;
}

#[tokio::test]
async fn a_crash_anywhere_in_a_failback_calls_the_hook_at_least_once_per_redirect() {
    hook_calls_at_every_crash_point(spec(), failback_scenario(), false).await;
}

#[tokio::test]
async fn a_crash_anywhere_in_a_one_way_cutover_calls_the_hook_at_least_once() {
    // One way indeed: SQL Server is fenced and the roles never reverse.
    let plain = uninterrupted_with(
        one_way(),
        &cutover_scenario(),
        MemoryJournal::new(),
        None,
        false,
    )
    .await;
    assert!(plain.calls.iter().any(|c| c == "sql:SetRoleSecondary"));
    assert!(
        !plain
            .calls
            .iter()
            .any(|c| c == "sql:Failover" || c == "arm:Failover")
    );
    hook_calls_at_every_crash_point(one_way(), cutover_scenario(), false).await;
}

#[tokio::test]
async fn a_crash_anywhere_writes_the_connection_string_file_once_per_redirect() {
    for (spec, scenario) in [
        (spec(), failover_scenario()),
        (spec(), failback_scenario()),
        (one_way(), cutover_scenario()),
    ] {
        hook_calls_at_every_crash_point(spec, scenario, true).await;
    }
}

/// A journal that crashes at record `crash_at` like [`CrashingJournal`], compacts at each
/// checkpoint (the memory journal keeps only `Created` and the checkpoint, as a file journal
/// does), and counts the scenario's commands it wrote (compaction drops them from the records).
struct CompactingCrashJournal {
    inner: MemoryJournal,
    crash_at: u64,
    write_then_crash: bool,
    commands: Arc<std::sync::atomic::AtomicUsize>,
}

impl CompactingCrashJournal {
    fn write(
        &mut self,
        record: &JournalRecord,
        write: impl FnOnce(&mut MemoryJournal, &JournalRecord) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        if record.seq >= self.crash_at {
            if record.seq == self.crash_at && self.write_then_crash {
                write(&mut self.inner, record)?;
                self.count(record);
            }
            return Err(JournalError::Io {
                path: "memory".into(),
                source: io::Error::other("simulated crash"),
            });
        }
        write(&mut self.inner, record)?;
        self.count(record);
        Ok(())
    }

    fn count(&self, record: &JournalRecord) {
        if matches!(
            &record.entry,
            JournalEntry::Input { input: Input::Command(c) } if !matches!(c, Command::Refresh)
        ) {
            self.commands
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

impl Journal for CompactingCrashJournal {
    fn append(&mut self, record: &JournalRecord) -> Result<(), JournalError> {
        self.write(record, |j, r| j.append(r))
    }

    fn checkpoint(&mut self, record: &JournalRecord) -> Result<(), JournalError> {
        self.write(record, |j, r| j.checkpoint(r))
    }

    fn records(&self) -> Result<Vec<JournalRecord>, JournalError> {
        self.inner.records()
    }
}

/// Runs `scenario` with a checkpoint (and compaction) every `every` records, crashing at
/// record `crash_at`, then resumes from what the compacted journal kept and finishes.
async fn crash_and_resume_compacting(
    scenario: &[Op],
    crash_at: u64,
    write_then_crash: bool,
    every: u64,
) -> Outcome {
    crash_and_resume_compacting_with(spec(), scenario, crash_at, write_then_crash, every, false)
        .await
}

/// [`crash_and_resume_compacting`] for the link `spec`, with ARM role changes that run for a
/// while before they take effect when `deferred`.
async fn crash_and_resume_compacting_with(
    spec: LinkSpec,
    scenario: &[Op],
    crash_at: u64,
    write_then_crash: bool,
    every: u64,
    deferred: bool,
) -> Outcome {
    let timer = Arc::new(VirtualTimer::new(Timestamp::from_millis(1_000_000)));
    let world = World::new(spec.databases.clone(), timer.clone());
    world
        .deferred_role_changes
        .store(deferred, std::sync::atomic::Ordering::SeqCst);
    let journal = MemoryJournal::new();
    let commands = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let crashing = CompactingCrashJournal {
        inner: journal.clone(),
        crash_at,
        write_then_crash,
        commands: commands.clone(),
    };
    let mut crashed = false;
    match new_session_for(spec.clone(), &world, &timer, crashing) {
        Err(SessionError::Journal(_)) => crashed = true,
        Err(e) => panic!("create: {e}"),
        Ok(session) => {
            let session = session.with_checkpoint_every(every);
            for op in scenario {
                match run(&session, op).await {
                    Ok(()) => {}
                    Err(SessionError::Journal(_)) => {
                        crashed = true;
                        break;
                    }
                    Err(e) => panic!("{op:?} failed before the crash: {e}"),
                }
            }
        }
    }
    assert!(crashed, "no crash at record {crash_at}");
    let label = format!("every {every}, crash at record {crash_at}, written: {write_then_crash}");
    let session = if journal.snapshot().is_empty() {
        new_session_for(spec, &world, &timer, journal.clone()).unwrap()
    } else {
        resumed_session(&world, &timer, journal.clone()).unwrap_or_else(|e| panic!("{label}: {e}"))
    }
    .with_checkpoint_every(every);
    session
        .resume()
        .await
        .unwrap_or_else(|e| panic!("{label}: resume failed: {e}"));
    let started = commands.load(std::sync::atomic::Ordering::SeqCst);
    for op in &scenario[started..] {
        run(&session, op)
            .await
            .unwrap_or_else(|e| panic!("{label}: {op:?} failed: {e}"));
    }
    let records = journal.snapshot();
    assert!(
        records.len() as u64 <= every + 2,
        "{label}: the compacted journal holds {} records",
        records.len()
    );
    assert_eq!(
        replay(&records).unwrap(),
        session.machine(),
        "{label}: replay from the checkpoint differs from the live machine"
    );
    Outcome {
        state: session.machine().state().clone(),
        redirect: session.status().redirect,
        world: world.snapshot(),
        calls: world.calls(),
        applied: world.applied(),
        records: session.status().journal_records as usize,
    }
}

#[tokio::test]
async fn a_crash_at_any_record_of_a_compacted_journal_resumes_to_the_same_end() {
    let scenario = failback_scenario();
    let baseline = uninterrupted(&scenario).await;
    let baseline_role_changes = role_change_counts(&baseline.calls, &ROLE_CHANGES);
    for every in [1, 4] {
        // The number of records written (checkpoints included) without a crash.
        let written = {
            let timer = Arc::new(VirtualTimer::new(Timestamp::from_millis(1_000_000)));
            let world = World::new(spec().databases.clone(), timer.clone());
            let journal = MemoryJournal::new();
            let session = new_session(&world, &timer, journal.clone())
                .unwrap()
                .with_checkpoint_every(every);
            for op in &scenario {
                run(&session, op).await.unwrap();
            }
            let records = journal.snapshot();
            assert!(
                matches!(
                    records.get(1).map(|r| &r.entry),
                    Some(JournalEntry::Checkpoint { .. })
                ),
                "compacted to a checkpoint"
            );
            assert!(records.len() as u64 <= every + 2, "{}", records.len());
            assert_eq!(replay(&records).unwrap(), session.machine());
            session.status().journal_records
        };
        assert!(written > baseline.records as u64, "checkpoints are records");
        for crash_at in 0..written {
            for write_then_crash in [true, false] {
                let outcome =
                    crash_and_resume_compacting(&scenario, crash_at, write_then_crash, every).await;
                let label = format!("every {every}, crash at {crash_at}, {write_then_crash}");
                assert_eq!(outcome.state.name(), baseline.state.name(), "{label}");
                assert_eq!(visible(&outcome.world), visible(&baseline.world), "{label}");
                assert_eq!(
                    role_change_counts(&outcome.calls, &ROLE_CHANGES),
                    baseline_role_changes,
                    "{label}: a role change ran a different number of times"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_crash_anywhere_in_a_compacted_journal_while_an_arm_failover_runs_never_posts_it_twice() {
    // The operation URL of the running failover is in the checkpoint's machine: a resume from
    // it polls the operation and never posts the failover again.
    let scenario = failover_scenario();
    let baseline =
        uninterrupted_with(arm_spec(), &scenario, MemoryJournal::new(), None, true).await;
    let once = role_change_counts(&baseline.calls, &["arm:Failover"]);
    assert_eq!(once, vec![("arm:Failover", 1)]);
    let every = 3;
    // The records written without a crash, checkpoints included.
    let written = {
        let timer = Arc::new(VirtualTimer::new(Timestamp::from_millis(1_000_000)));
        let world = World::new(spec().databases.clone(), timer.clone());
        world
            .deferred_role_changes
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let session = new_session_for(arm_spec(), &world, &timer, MemoryJournal::new())
            .unwrap()
            .with_checkpoint_every(every);
        for op in &scenario {
            run(&session, op).await.unwrap();
        }
        session.status().journal_records
    };
    assert!(written > baseline.records as u64, "checkpoints are records");
    for crash_at in 0..written {
        for written in [true, false] {
            let outcome = crash_and_resume_compacting_with(
                arm_spec(),
                &scenario,
                crash_at,
                written,
                every,
                true,
            )
            .await;
            let label = format!("crash at record {crash_at}, written: {written}");
            assert_eq!(outcome.state.name(), baseline.state.name(), "{label}");
            assert_eq!(visible(&outcome.world), visible(&baseline.world), "{label}");
            assert_eq!(
                role_change_counts(&outcome.applied, &["arm:Failover"]),
                once,
                "{label}"
            );
            assert_eq!(
                role_change_counts(&outcome.calls, &["arm:Failover"]),
                once,
                "{label}: {:?}",
                outcome.calls
            );
        }
    }
}

/// A journal that keeps every record, checkpoints included (the `Journal` default: a
/// checkpoint is appended).
struct AppendingJournal(MemoryJournal);

impl Journal for AppendingJournal {
    fn append(&mut self, record: &JournalRecord) -> Result<(), JournalError> {
        self.0.append(record)
    }

    fn records(&self) -> Result<Vec<JournalRecord>, JournalError> {
        self.0.records()
    }
}

#[tokio::test]
async fn every_checkpoint_holds_the_machine_that_replaying_every_input_before_it_gives() {
    let timer = Arc::new(VirtualTimer::new(Timestamp::from_millis(1_000_000)));
    let world = World::new(spec().databases.clone(), timer.clone());
    let journal = MemoryJournal::new();
    let session = new_session(&world, &timer, AppendingJournal(journal.clone()))
        .unwrap()
        .with_checkpoint_every(1);
    for op in failback_scenario() {
        run(&session, &op).await.unwrap();
    }
    let records = journal.snapshot();
    let mut checkpoints = 0;
    for (index, record) in records.iter().enumerate() {
        if let JournalEntry::Checkpoint { machine, .. } = &record.entry {
            checkpoints += 1;
            // The inputs alone, from `Created` on, without any checkpoint.
            let inputs_only: Vec<JournalRecord> = records[..index]
                .iter()
                .filter(|r| !matches!(r.entry, JournalEntry::Checkpoint { .. }))
                .cloned()
                .enumerate()
                .map(|(seq, mut r)| {
                    r.seq = seq as u64;
                    r
                })
                .collect();
            assert_eq!(
                **machine,
                replay(&inputs_only).unwrap(),
                "checkpoint at seq {}",
                record.seq
            );
            // And a resume from any prefix ending at this checkpoint starts from it.
            assert_eq!(replay(&records[..=index]).unwrap(), **machine);
        }
    }
    assert!(checkpoints > 20, "{checkpoints}");
    assert_eq!(replay(&records).unwrap(), session.machine());
}

#[tokio::test]
async fn a_file_journal_stays_compacted_and_resumes_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("link.journal");
    let timer = Arc::new(VirtualTimer::new(Timestamp::from_millis(1_000_000)));
    let world = World::new(spec().databases.clone(), timer.clone());
    let full = MemoryJournal::new();
    let baseline = {
        let session = new_session(&world, &timer, AppendingJournal(full.clone()))
            .unwrap()
            .with_checkpoint_every(u64::MAX);
        for op in failback_scenario() {
            run(&session, &op).await.unwrap();
        }
        session.machine()
    };
    let timer = Arc::new(VirtualTimer::new(Timestamp::from_millis(1_000_000)));
    let world = World::new(spec().databases.clone(), timer.clone());
    let session = new_session(&world, &timer, FileJournal::create(&path).unwrap())
        .unwrap()
        .with_checkpoint_every(8);
    for op in failback_scenario() {
        run(&session, &op).await.unwrap();
    }
    let live = session.machine();
    let written = session.status().journal_records;
    drop(session);
    assert_eq!(
        live, baseline,
        "checkpoints change nothing the machine does"
    );
    let records = FileJournal::open(&path).unwrap().records().unwrap();
    assert!(records.len() <= 10, "{} records in the file", records.len());
    assert!(matches!(records[1].entry, JournalEntry::Checkpoint { .. }));
    assert_eq!(records.last().unwrap().seq + 1, written);
    assert!(!dir.path().join(".link.journal.compacting").exists());
    let resumed = resumed_session(&world, &timer, FileJournal::open(&path).unwrap()).unwrap();
    assert_eq!(resumed.machine(), baseline);
    assert_eq!(resumed.status().journal_records, written);
}
