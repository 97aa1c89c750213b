//! The drive loop against the fake world: journal before act, refusals, stale observations,
//! timeouts, failures and how to get out of them, events, health and status.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::world::{FakeInstance, FakeSource, World};
use super::*;
use crate::journal::{FileJournal, MemoryJournal};
use crate::lifecycle::FullBackup;
use crate::lifecycle::{DataLossAcknowledgement, ReplicaRole, SideView};
use crate::lifecycle::{InstanceOp, SourceOp};
use crate::names::DatabaseName;
use crate::retry::Jitter;
use crate::test_support::{VirtualTimer, spec};
use crate::time::Clock;

fn options() -> SessionOptions {
    SessionOptions {
        retry: RetryPolicy {
            max_attempts: 2,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            multiplier: 2.0,
            jitter: Jitter::Full,
            max_retry_after: Duration::from_secs(60),
            busy_timeout: Duration::from_secs(15 * 60),
        },
        call_timeout: Duration::from_secs(30),
        operation_timeout: Duration::from_secs(24 * 3600),
        seed: 5,
        event_capacity: 4096,
        lock_dir: None,
        world: None,
        arm_read_interval: super::DEFAULT_ARM_READ_INTERVAL,
    }
}

fn no_blockers() -> AssessmentOutcome {
    AssessmentOutcome {
        blockers: Vec::new(),
    }
}

struct Fixture {
    world: Arc<World>,
    timer: Arc<VirtualTimer>,
    journal: MemoryJournal,
    session: Session<FakeSource, FakeInstance, MemoryJournal>,
}

fn fixture_with(options: SessionOptions) -> Fixture {
    let timer = Arc::new(VirtualTimer::new(Timestamp::from_millis(1_000_000)));
    let world = World::new(spec().databases, timer.clone());
    let journal = MemoryJournal::new();
    let session = Session::create(
        spec(),
        Arc::new(FakeSource(world.clone())),
        Arc::new(FakeInstance(world.clone())),
        journal.clone(),
        timer.clone(),
        options,
    )
    .unwrap();
    Fixture {
        world,
        timer,
        journal,
        session,
    }
}

fn fixture() -> Fixture {
    fixture_with(options())
}

fn restart(
    world: &Arc<World>,
    timer: &Arc<VirtualTimer>,
    journal: &MemoryJournal,
) -> Session<FakeSource, FakeInstance, MemoryJournal> {
    Session::resume(
        journal.clone(),
        Arc::new(FakeSource(world.clone())),
        Arc::new(FakeInstance(world.clone())),
        timer.clone(),
        options(),
    )
    .unwrap()
}

#[tokio::test]
async fn create_refuses_a_journal_that_already_holds_a_link() {
    let f = fixture();
    let err = Session::create(
        spec(),
        Arc::new(FakeSource(f.world.clone())),
        Arc::new(FakeInstance(f.world.clone())),
        f.journal.clone(),
        f.timer.clone(),
        options(),
    )
    .err()
    .unwrap();
    assert!(
        matches!(err, SessionError::JournalNotEmpty { records: 1 }),
        "{err}"
    );
    assert!(err.is_caller_error());
    assert_eq!(f.journal.snapshot().len(), 1);
}

#[tokio::test]
async fn create_refuses_an_invalid_spec_before_writing_anything() {
    let mut bad = spec();
    bad.databases.clear();
    let timer = Arc::new(VirtualTimer::new(Timestamp::EPOCH));
    let world = World::new(Vec::new(), timer.clone());
    let journal = MemoryJournal::new();
    let err = Session::create(
        bad,
        Arc::new(FakeSource(world.clone())),
        Arc::new(FakeInstance(world)),
        journal.clone(),
        timer,
        options(),
    )
    .err()
    .unwrap();
    assert!(matches!(err, SessionError::Spec(_)), "{err}");
    assert!(journal.snapshot().is_empty());
}

#[tokio::test]
async fn resume_of_an_empty_journal_is_refused() {
    let timer = Arc::new(VirtualTimer::new(Timestamp::EPOCH));
    let world = World::new(spec().databases, timer.clone());
    let err = Session::resume(
        MemoryJournal::new(),
        Arc::new(FakeSource(world.clone())),
        Arc::new(FakeInstance(world)),
        timer,
        options(),
    )
    .err()
    .unwrap();
    assert!(
        matches!(err, SessionError::Journal(JournalError::Empty)),
        "{err}"
    );
}

#[tokio::test]
async fn a_refused_command_changes_nothing_and_says_why() {
    let f = fixture();
    f.session.record_assessment(no_blockers()).await.unwrap();
    let before = f.journal.snapshot();
    let err = f.session.failover(FailoverKind::Planned).await.unwrap_err();
    assert!(err.is_caller_error(), "{err}");
    match &err {
        SessionError::Rejected { source, .. } => {
            assert_eq!(
                source.reason,
                crate::lifecycle::RejectReason::NotReplicatingYet
            );
        }
        other => panic!("expected Rejected, got {other}"),
    }
    assert!(err.to_string().contains("not replicating yet"), "{err}");
    assert_eq!(f.journal.snapshot(), before);
    assert!(f.world.calls().is_empty());
}

#[tokio::test]
async fn an_assessment_with_blockers_is_refused() {
    let f = fixture();
    let err = f
        .session
        .record_assessment(AssessmentOutcome {
            blockers: vec!["db.recovery_model: ToyStore uses SIMPLE recovery".into()],
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("SIMPLE recovery"), "{err}");
    assert_eq!(f.session.status().state, "Draft");
}

#[tokio::test]
async fn stale_observations_are_ignored_without_journaling() {
    let f = fixture();
    f.session.record_assessment(no_blockers()).await.unwrap();
    let before = f.journal.snapshot();
    let outcome = f
        .session
        .submit(Input::Observed {
            step: StepId(999),
            result: Ok(Observation::Done),
        })
        .unwrap();
    assert!(matches!(outcome, crate::lifecycle::Handled::Stale));
    assert_eq!(f.journal.snapshot(), before);
}

/// Ports that check, at every call, that the journal already holds the input that asked for it:
/// replaying the journal as it is at that moment gives a machine with this effect in flight.
struct Checked<P> {
    inner: P,
    journal: MemoryJournal,
}

impl<P> Checked<P> {
    fn assert_in_flight(&self, what: &str, matches: impl Fn(&Effect) -> bool) {
        let machine = replay(&self.journal.snapshot()).unwrap();
        assert!(
            machine.in_flight().iter().any(matches),
            "{what} was called before the input that issued it was journaled; in flight: {:?}",
            machine.in_flight()
        );
    }
}

#[async_trait]
impl SourceServer for Checked<FakeSource> {
    async fn execute(&self, op: &SourceOp) -> Result<SourceReply, PortError> {
        self.assert_in_flight(
            "execute",
            |e| matches!(e, Effect::Source { op: o, .. } if o == op),
        );
        self.inner.execute(op).await
    }
    async fn link_state(
        &self,
        link: &LinkName,
        databases: &[DatabaseName],
    ) -> Result<SideView, PortError> {
        self.assert_in_flight("source link_state", |e| {
            matches!(
                e,
                Effect::Probe {
                    probe: Probe::Link,
                    ..
                }
            )
        });
        self.inner.link_state(link, databases).await
    }
}

#[async_trait]
impl ManagedInstance for Checked<FakeInstance> {
    async fn begin(&self, op: &InstanceOp) -> Result<ArmReply, PortError> {
        self.assert_in_flight(
            "begin",
            |e| matches!(e, Effect::Instance { op: o, .. } if o == op),
        );
        self.inner.begin(op).await
    }
    async fn poll(
        &self,
        operation: &crate::lifecycle::OperationRef,
    ) -> Result<PollReply, PortError> {
        self.assert_in_flight(
            "poll",
            |e| matches!(e, Effect::PollOperation { operation: o, .. } if o == operation),
        );
        self.inner.poll(operation).await
    }
    async fn link_state(&self, link: &LinkName) -> Result<SideView, PortError> {
        self.assert_in_flight("instance link_state", |e| {
            matches!(
                e,
                Effect::Probe {
                    probe: Probe::Link,
                    ..
                }
            )
        });
        self.inner.link_state(link).await
    }
    async fn full_backups(&self, databases: &[DatabaseName]) -> Result<Vec<FullBackup>, PortError> {
        self.assert_in_flight("full_backups", |e| {
            matches!(
                e,
                Effect::Probe {
                    probe: Probe::FirstFullBackups,
                    ..
                }
            )
        });
        self.inner.full_backups(databases).await
    }
}

#[tokio::test]
async fn every_port_call_comes_after_the_journal_record_that_asked_for_it() {
    let timer = Arc::new(VirtualTimer::new(Timestamp::from_millis(1_000_000)));
    let world = World::new(spec().databases, timer.clone());
    let journal = MemoryJournal::new();
    let session = Session::create(
        spec(),
        Arc::new(Checked {
            inner: FakeSource(world.clone()),
            journal: journal.clone(),
        }),
        Arc::new(Checked {
            inner: FakeInstance(world.clone()),
            journal: journal.clone(),
        }),
        journal.clone(),
        timer,
        options(),
    )
    .unwrap();
    session.record_assessment(no_blockers()).await.unwrap();
    session.start().await.unwrap();
    session.failover(FailoverKind::Planned).await.unwrap();
    session.failback().await.unwrap();
    session
        .cutover(CutoverOptions {
            drop_availability_group: false,
        })
        .await
        .unwrap();
    assert_eq!(session.status().state, "Completed");
    // Every kind of call was checked.
    let calls = world.calls();
    for call in [
        "sql:CreateDistributedAvailabilityGroup",
        "arm:PutLink",
        "arm:poll",
        "sql:link_state",
        "arm:link_state",
        "arm:full_backups",
        "arm:DeleteLink",
    ] {
        assert!(calls.iter().any(|c| c == call), "{call} never ran");
    }
    // The AG was kept, as asked.
    assert!(world.snapshot().ag);
}

#[tokio::test]
async fn an_operation_that_outlives_its_budget_times_out_and_resumes_later() {
    let f = fixture_with(SessionOptions {
        operation_timeout: Duration::from_secs(600),
        ..options()
    });
    f.world.seeding_blocked.store(true, Ordering::SeqCst);
    f.session.record_assessment(no_blockers()).await.unwrap();
    let started = f.timer.now();
    let err = f.session.start().await.unwrap_err();
    match &err {
        SessionError::Timeout {
            operation, state, ..
        } => {
            assert_eq!(*operation, "start");
            assert_eq!(state, "Seeding");
        }
        other => panic!("expected Timeout, got {other}"),
    }
    assert!(err.is_transient());
    let waited = f.timer.now().since(started);
    assert!(
        waited >= Duration::from_secs(600) && waited < Duration::from_secs(700),
        "{waited:?}"
    );

    f.world.seeding_blocked.store(false, Ordering::SeqCst);
    f.session.resume().await.unwrap();
    assert_eq!(f.session.status().state, "Replicating");
}

#[tokio::test]
async fn a_retryable_failure_stops_the_operation_and_resume_retries_it() {
    let f = fixture();
    // More transient failures than the driver's retries: the step fails, retryable.
    f.world.inject(
        "sql:EnsureEndpointCertificate",
        [
            PortError::transient("io", "connection reset"),
            PortError::transient("io", "connection reset"),
        ],
    );
    f.session.record_assessment(no_blockers()).await.unwrap();
    let err = f.session.start().await.unwrap_err();
    match &err {
        SessionError::StepFailed(e) => {
            assert_eq!(e.code, "io");
            assert!(e.retryable);
        }
        other => panic!("expected StepFailed, got {other}"),
    }
    assert!(err.is_transient() && !err.is_remote());
    let status = f.session.status();
    assert_eq!(status.state, "Failed");
    assert_eq!(status.last_error.unwrap().code, "io");

    f.session.resume().await.unwrap();
    assert_eq!(f.session.status().state, "Replicating");
}

#[tokio::test]
async fn a_permanent_failure_needs_retry_after_the_fix() {
    let f = fixture();
    f.world.inject(
        "sql:CreateAvailabilityGroup",
        [PortError::permanent(
            "sql:41158",
            "failed to join the replica; check the endpoint URL",
        )],
    );
    f.session.record_assessment(no_blockers()).await.unwrap();
    let err = f.session.start().await.unwrap_err();
    assert!(err.is_remote() && !err.is_transient(), "{err}");
    assert!(err.to_string().contains("sql:41158"), "{err}");

    // Resume does not blindly repeat a permanent failure.
    let again = f.session.resume().await.unwrap_err();
    assert!(matches!(again, SessionError::StepFailed(_)), "{again}");
    let ags = |calls: Vec<String>| {
        calls
            .iter()
            .filter(|c| *c == "sql:CreateAvailabilityGroup")
            .count()
    };
    assert_eq!(ags(f.world.calls()), 1);

    // The caller fixed the cause: retry re-issues the step and finishes the start.
    f.session.retry().await.unwrap();
    assert_eq!(f.session.status().state, "Replicating");
    assert_eq!(ags(f.world.calls()), 2);
}

#[tokio::test]
async fn a_restart_after_a_failure_resumes_the_failed_operation() {
    let f = fixture();
    f.world.inject(
        "arm:GetEndpointCertificate",
        [
            PortError::transient("http:503", "unavailable"),
            PortError::transient("http:503", "unavailable"),
        ],
    );
    f.session.record_assessment(no_blockers()).await.unwrap();
    assert!(f.session.start().await.is_err());
    let Fixture {
        world,
        timer,
        journal,
        session,
    } = f;
    drop(session);
    let session = restart(&world, &timer, &journal);
    assert_eq!(session.status().operation, Some(Operation::Start));
    session.resume().await.unwrap();
    assert_eq!(session.status().state, "Replicating");
}

#[tokio::test]
async fn progress_state_changes_and_steps_are_published() {
    let f = fixture();
    let mut events = f.session.subscribe();
    f.session.record_assessment(no_blockers()).await.unwrap();
    f.session.start().await.unwrap();
    let mut states = Vec::new();
    let mut phases = 0;
    let mut started = 0;
    let mut finished = 0;
    while let Ok(event) = events.try_recv() {
        match event {
            SessionEvent::StateChanged { to, .. } => states.push(to),
            SessionEvent::Progress(ProgressEvent::Phase { .. }) => phases += 1,
            SessionEvent::StepStarted { .. } => started += 1,
            SessionEvent::StepFinished { error, .. } => {
                assert!(error.is_none());
                finished += 1;
            }
            _ => {}
        }
    }
    assert_eq!(states.first().map(String::as_str), Some("Assessed"));
    assert_eq!(states.last().map(String::as_str), Some("Replicating"));
    for phase in [
        "PreparingSource",
        "ExchangingTrust",
        "CreatingDag",
        "Seeding",
    ] {
        assert!(
            states.iter().any(|s| s == phase),
            "{phase} missing: {states:?}"
        );
    }
    assert!(phases > 0);
    assert!(started > 5);
    assert_eq!(started, finished);
}

#[tokio::test]
async fn events_are_announced_inside_the_operation_and_an_unwind_there_leaves_it_resumable() {
    use futures_util::FutureExt;
    use std::sync::Mutex;

    let f = fixture();
    let receiver = Arc::new(Mutex::new(f.session.subscribe()));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let interrupt_on = Arc::new(Mutex::new(None::<String>));
    let notify: EventsSent = {
        let (receiver, seen, interrupt_on) = (receiver.clone(), seen.clone(), interrupt_on.clone());
        Arc::new(move || {
            let mut stop = false;
            while let Ok(event) = receiver.lock().unwrap().try_recv() {
                let mut interrupt_on = interrupt_on.lock().unwrap();
                if matches!(&event, SessionEvent::StateChanged { to, .. }
                    if interrupt_on.as_ref() == Some(to))
                {
                    *interrupt_on = None;
                    stop = true;
                }
                seen.lock().unwrap().push(event);
            }
            // No lock of the test's held: the unwind poisons nothing.
            assert!(!stop, "interrupted from the notification");
        })
    };
    let session = f.session.with_events_sent(Some(notify));
    session.record_assessment(no_blockers()).await.unwrap();
    // Every event was handed over while the operation ran: none is left for afterwards.
    assert!(receiver.lock().unwrap().try_recv().is_err());
    assert_eq!(
        seen.lock().unwrap().first(),
        Some(&SessionEvent::StateChanged {
            from: "Draft".into(),
            to: "Assessed".into()
        })
    );

    // Unwinding out of the notification abandons the operation there.
    *interrupt_on.lock().unwrap() = Some("Seeding".into());
    let unwound = std::panic::AssertUnwindSafe(session.start())
        .catch_unwind()
        .await;
    assert!(unwound.is_err(), "start ran to its end");
    assert_eq!(session.status().state, "Seeding");
    session.resume().await.unwrap();
    assert_eq!(session.status().state, "Replicating");
    drop(session);
    let again = restart(&f.world, &f.timer, &f.journal);
    assert_eq!(again.status().state, "Replicating");
}

#[tokio::test]
async fn health_reads_both_sides_now_and_never_returns_a_cached_side() {
    let f = fixture();
    // Before the link exists: a probe now, through both ports.
    let fresh = f.session.health().await.unwrap().unwrap();
    assert!(!fresh.source.exists && !fresh.instance.exists);
    assert!(f.world.calls().contains(&"sql:link_state".to_string()));

    f.session.record_assessment(no_blockers()).await.unwrap();
    f.session.start().await.unwrap();
    let calls = f.world.calls().len();
    let latest = f.session.health().await.unwrap().unwrap();
    assert_eq!(latest.source.role, Some(ReplicaRole::Primary));
    assert_eq!(latest.instance.role, Some(ReplicaRole::Secondary));
    let read: Vec<String> = f.world.calls()[calls..].to_vec();
    assert!(
        read.contains(&"sql:link_state".to_string())
            && read.contains(&"arm:link_state".to_string()),
        "both sides read now: {read:?}"
    );
    // SQL Server cannot be read: reported unreachable and empty, not as its last reading.
    f.world.inject(
        "sql:link_state",
        (0..10).map(|_| PortError::transient("io", "connection reset")),
    );
    let now = f.session.health().await.unwrap().unwrap();
    assert_eq!(now.unreachable, Some(Side::SqlServer));
    assert_eq!(now.source.role, None);
    assert_eq!(now.instance.role, Some(ReplicaRole::Secondary));
}

#[tokio::test]
async fn status_shows_the_journal_file_and_where_the_link_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("toystore.journal");
    let timer = Arc::new(VirtualTimer::new(Timestamp::from_millis(1_000_000)));
    let world = World::new(spec().databases, timer.clone());
    let session = Session::create(
        spec(),
        Arc::new(FakeSource(world.clone())),
        Arc::new(FakeInstance(world.clone())),
        FileJournal::create(&path).unwrap(),
        timer,
        options(),
    )
    .unwrap();
    let boxed: Box<dyn LinkSession> = Box::new(session);
    boxed.record_assessment(no_blockers()).await.unwrap();
    boxed.start().await.unwrap();
    let status = boxed.status();
    assert_eq!(status.link, spec().link);
    assert_eq!(status.state, "Replicating");
    assert!(!status.terminal);
    assert_eq!(status.operation, Some(Operation::Start));
    assert_eq!(status.journal_path.as_deref(), Some(path.as_path()));
    let lines = std::fs::read_to_string(&path).unwrap().lines().count() as u64;
    assert_eq!(status.journal_records, lines);
    // The state as data: in JSON (and Python) the shape it always had.
    let phase = serde_json::to_value(&status.phase).unwrap();
    assert!(phase.get("Replicating").is_some(), "{phase}");
    assert_eq!(boxed.link(), &spec().link);
}

#[tokio::test]
async fn a_forced_failover_needs_the_acknowledgement_and_then_runs() {
    let f = fixture();
    f.session.record_assessment(no_blockers()).await.unwrap();
    f.session.start().await.unwrap();
    let err = f
        .session
        .failover(FailoverKind::Forced(None))
        .await
        .unwrap_err();
    assert!(err.is_caller_error(), "{err}");
    assert!(f.world.applied().is_empty());

    f.session
        .failover(FailoverKind::Forced(Some(DataLossAcknowledgement {
            link: spec().link.to_string(),
        })))
        .await
        .unwrap();
    match f.session.machine().state() {
        State::FailedOver {
            primary,
            data_loss_possible,
        } => {
            assert_eq!(*primary, Side::ManagedInstance);
            assert!(*data_loss_possible);
        }
        other => panic!("expected FailedOver, got {other}"),
    }
    assert_eq!(f.world.applied(), vec!["arm:Failover".to_string()]);
}

#[tokio::test]
async fn a_forced_failover_completes_while_sql_server_cannot_be_read() {
    let f = fixture();
    f.session.record_assessment(no_blockers()).await.unwrap();
    f.session.start().await.unwrap();
    // The old primary is down: every read of SQL Server fails with a connection error.
    f.world.inject(
        "sql:link_state",
        (0..10_000).map(|_| PortError::transient("io", "connection refused")),
    );
    f.session
        .failover(FailoverKind::Forced(Some(DataLossAcknowledgement {
            link: spec().link.to_string(),
        })))
        .await
        .unwrap();
    match f.session.machine().state() {
        State::FailedOver {
            primary,
            data_loss_possible,
        } => {
            assert_eq!(*primary, Side::ManagedInstance);
            assert!(*data_loss_possible);
        }
        other => panic!("expected FailedOver, got {other}"),
    }
    let health = f.session.machine().health().cloned().unwrap();
    assert_eq!(health.unreachable, Some(Side::SqlServer));
    assert_eq!(f.world.applied(), vec!["arm:Failover".to_string()]);
}

#[tokio::test]
async fn a_link_that_cannot_be_read_is_never_taken_for_removed() {
    let f = fixture();
    f.session.record_assessment(no_blockers()).await.unwrap();
    f.session.start().await.unwrap();
    f.world.inject(
        "arm:link_state",
        (0..10_000).map(|_| PortError::transient("http:503", "service unavailable")),
    );
    let obs = f.session.probe_link(StepId(999), false).await.unwrap();
    assert_eq!(obs.unreachable, Some(Side::ManagedInstance));
    assert!(!obs.instance.exists);
    assert!(!obs.reachable(Side::ManagedInstance));
    assert!(obs.source.exists, "SQL Server's view is real");
    // Both sides unreadable is an error, not an empty reading.
    f.world.inject(
        "sql:link_state",
        (0..10_000).map(|_| PortError::transient("io", "connection refused")),
    );
    assert!(f.session.probe_link(StepId(1000), false).await.is_err());
    // A permanent error on one side fails the reading too.
    let g = fixture();
    g.session.record_assessment(no_blockers()).await.unwrap();
    g.session.start().await.unwrap();
    g.world.inject(
        "arm:link_state",
        [PortError::permanent(
            "arm:403:AuthorizationFailed",
            "no access",
        )],
    );
    assert!(g.session.probe_link(StepId(999), false).await.is_err());
}

#[tokio::test]
async fn cancel_during_seeding_removes_what_was_created() {
    let f = fixture_with(SessionOptions {
        operation_timeout: Duration::from_secs(60),
        ..options()
    });
    f.world.seeding_blocked.store(true, Ordering::SeqCst);
    f.session.record_assessment(no_blockers()).await.unwrap();
    assert!(matches!(
        f.session.start().await.unwrap_err(),
        SessionError::Timeout { .. }
    ));
    f.session.cancel().await.unwrap();
    assert_eq!(f.session.status().state, "Cancelled");
    assert!(f.session.status().terminal);
    let world = f.world.snapshot();
    assert!(!world.source.link_exists && !world.instance.link_exists && !world.ag);
    // Nothing more can happen to a cancelled link.
    assert!(f.session.start().await.unwrap_err().is_caller_error());
}

#[tokio::test]
async fn a_journal_torn_by_a_crash_is_repaired_explicitly_and_resumed() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("toystore.journal");
    let timer = Arc::new(VirtualTimer::new(Timestamp::from_millis(1_000_000)));
    let world = World::new(spec().databases, timer.clone());
    let open = |journal: FileJournal| {
        Session::resume(
            journal,
            Arc::new(FakeSource(world.clone())),
            Arc::new(FakeInstance(world.clone())),
            timer.clone(),
            options(),
        )
    };
    {
        let session = Session::create(
            spec(),
            Arc::new(FakeSource(world.clone())),
            Arc::new(FakeInstance(world.clone())),
            FileJournal::create(&path).unwrap(),
            timer.clone(),
            options(),
        )
        .unwrap();
        session.record_assessment(no_blockers()).await.unwrap();
        session.start().await.unwrap();
    }
    let good = std::fs::read_to_string(&path).unwrap().lines().count() as u64;
    // A crash in the middle of writing the next record.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(br#"{"schema_version":1,"seq":"#)
        .unwrap();

    let err = FileJournal::open(&path).unwrap_err();
    assert!(
        matches!(err, JournalError::TornTail { line, .. } if line == good + 1),
        "{err}"
    );
    let (journal, torn) = FileJournal::open_repairing(&path).unwrap();
    assert_eq!(torn.map(|t| t.line), Some(good + 1));
    let session = open(journal).unwrap();
    assert_eq!(session.status().state, "Replicating");
    session.failover(FailoverKind::Planned).await.unwrap();
    assert_eq!(session.status().state, "FailedOver");
}

fn conflict() -> PortError {
    PortError::transient(
        "arm:409:ConflictingServerOperation",
        "An operation on 'ToyStoreLink' is in progress; retry after the Retry-After interval.",
    )
    .with_retry_after(Duration::from_secs(10))
}

#[tokio::test]
async fn a_link_put_that_meets_a_running_operation_waits_it_out() {
    // A PUT re-sent after a crash meets the first one still running for two minutes: far more
    // 409s than the two attempts the policy allows other transient errors.
    let f = fixture();
    f.world
        .inject("arm:PutLink", std::iter::repeat_n(conflict(), 12));
    let mut events = f.session.subscribe();
    f.session.record_assessment(no_blockers()).await.unwrap();
    let started = f.timer.now();
    f.session.start().await.unwrap();
    assert_eq!(f.session.status().state, "Replicating");
    let puts = f
        .world
        .calls()
        .iter()
        .filter(|c| *c == "arm:PutLink")
        .count();
    assert_eq!(puts, 13);
    let mut waits = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let SessionEvent::StepRetrying { code, wait, .. } = e {
            assert_eq!(code, "arm:409:ConflictingServerOperation");
            waits.push(wait);
        }
    }
    assert_eq!(waits.len(), 12);
    assert!(
        waits.iter().all(|w| *w >= Duration::from_secs(10)),
        "Retry-After honoured: {waits:?}"
    );
    assert!(f.timer.now().since(started) >= Duration::from_secs(120));
}

#[tokio::test]
async fn busy_answers_are_not_waited_out_past_the_steps_timeout() {
    // A budget far longer than the join timeout (15 minutes): the step's timeout wins.
    let mut opts = options();
    opts.retry.busy_timeout = Duration::from_secs(10 * 3600);
    let f = fixture_with(opts);
    f.world
        .inject("arm:PutLink", std::iter::repeat_n(conflict(), 1000));
    f.session.record_assessment(no_blockers()).await.unwrap();
    let started = f.timer.now();
    let err = f.session.start().await.unwrap_err();
    match &err {
        SessionError::StepFailed(e) => {
            assert_eq!(e.code, "arm:409:ConflictingServerOperation");
            assert!(e.retryable, "resume tries again later");
        }
        other => panic!("expected StepFailed, got {other}"),
    }
    let waited = f.timer.now().since(started);
    let join = spec().options.join_timeout;
    assert!(
        waited <= join && waited >= join - Duration::from_secs(60),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_role_change_meeting_a_conflict_is_left_to_the_machine() {
    let f = fixture();
    f.session.record_assessment(no_blockers()).await.unwrap();
    f.session.start().await.unwrap();
    // SQL Server 2022 CU13 fails over with T-SQL; the failback is the ARM failover.
    f.session.failover(FailoverKind::Planned).await.unwrap();
    f.world.inject("arm:Failover", [conflict()]);
    let err = f.session.failback().await.unwrap_err();
    match &err {
        SessionError::StepFailed(e) => {
            assert_eq!(e.code, "arm:409:ConflictingServerOperation");
            assert!(e.retryable);
        }
        other => panic!("expected StepFailed, got {other}"),
    }
    let failovers = |calls: Vec<String>| calls.iter().filter(|c| *c == "arm:Failover").count();
    assert_eq!(failovers(f.world.calls()), 1, "not retried by the driver");
    // The machine reads the roles first, then sends it again.
    f.session.resume().await.unwrap();
    assert_eq!(f.session.status().state, "Replicating");
    assert_eq!(failovers(f.world.calls()), 2);
}
