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
    world: WorldState,
    calls: Vec<String>,
    records: usize,
}

type FakeSession<J> = Session<FakeSource, FakeInstance, J>;

fn new_session<J: Journal + 'static>(
    world: &Arc<World>,
    timer: &Arc<VirtualTimer>,
    journal: J,
) -> Result<FakeSession<J>, SessionError> {
    Session::create(
        spec(),
        Arc::new(FakeSource(world.clone())),
        Arc::new(FakeInstance(world.clone())),
        journal,
        timer.clone(),
        options(),
    )
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
    let timer = Arc::new(VirtualTimer::new(Timestamp::from_millis(1_000_000)));
    let world = World::new(spec().databases, timer.clone());
    let journal = MemoryJournal::new();
    let session = new_session(&world, &timer, journal.clone()).unwrap();
    for op in scenario {
        run(&session, op)
            .await
            .unwrap_or_else(|e| panic!("{op:?} failed: {e}\nstatus: {:?}", session.status()));
    }
    assert_eq!(replay(&journal.snapshot()).unwrap(), session.machine());
    Outcome {
        state: session.machine().state().clone(),
        world: world.snapshot(),
        calls: world.calls(),
        records: journal.snapshot().len(),
    }
}

/// Runs `scenario`, crashing at record `crash_at`, then restarts from the journal and finishes.
async fn crash_and_resume(scenario: &[Op], crash_at: u64, write_then_crash: bool) -> Outcome {
    let timer = Arc::new(VirtualTimer::new(Timestamp::from_millis(1_000_000)));
    let world = World::new(spec().databases, timer.clone());
    let journal = MemoryJournal::new();
    let crashing = CrashingJournal {
        inner: journal.clone(),
        crash_at,
        write_then_crash,
    };
    let mut crashed = false;
    match new_session(&world, &timer, crashing) {
        Err(SessionError::Journal(_)) => crashed = true,
        Err(e) => panic!("create: {e}"),
        Ok(session) => {
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
        new_session(&world, &timer, journal.clone()).unwrap()
    } else {
        resumed_session(&world, &timer, journal.clone()).unwrap()
    };
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
            matches!(
                r.entry,
                JournalEntry::Input {
                    input: Input::Command(_)
                }
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
        world: world.snapshot(),
        calls: world.calls(),
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
