//! Redirecting the workload: without failures the hook runs once per role change (with one id
//! per redirect), after the new primary accepts writes and before anything is dropped; a
//! failing hook leaves a resumable link; the quiet check asks the current primary.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::world::{FakeInstance, FakeSource, World};
use super::*;
use crate::journal::MemoryJournal;
use crate::lifecycle::ReplicaRole;
use crate::ports::{MockManagedInstance, MockSourceServer, UNSUPPORTED};
use crate::redirect::{
    ClientSession, ConnectionString, HookError, RedirectAuth, RedirectOptions, RedirectTarget,
};
use crate::retry::Jitter;
use crate::test_support::{VirtualTimer, spec};
use crate::{Secret, names::DatabaseName};

const ORIGINAL: &str = "Server=tcp:TAILSPINSQL,1433;Database=ToyStore;User ID=web;Password=0ld-Secr3t;App=Tailspin.Web";
const NEW_PASSWORD: &str = "N3w;Secr3t=x";

fn options() -> SessionOptions {
    SessionOptions {
        retry: RetryPolicy {
            max_attempts: 2,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            multiplier: 2.0,
            jitter: Jitter::None,
            max_retry_after: Duration::from_secs(60),
            busy_timeout: Duration::from_secs(15 * 60),
        },
        call_timeout: Duration::from_secs(30),
        operation_timeout: Duration::from_secs(24 * 3600),
        seed: 3,
        event_capacity: 4096,
        lock_dir: None,
        world: None,
        arm_read_interval: super::DEFAULT_ARM_READ_INTERVAL,
    }
}

fn redirect_options() -> RedirectOptions {
    RedirectOptions {
        auth: RedirectAuth::SqlPassword {
            user: "web_mi".to_owned(),
            password: Secret::new(NEW_PASSWORD),
        },
        ..RedirectOptions::new(ConnectionString::parse(ORIGINAL).unwrap())
    }
}

/// What the hook saw when it was called.
#[derive(Debug, Clone)]
struct Seen {
    target: RedirectTarget,
    /// The new primary reported PRIMARY and the old one SECONDARY (or no link, after removal).
    new_primary_writable: bool,
    /// Both sides still held the link.
    link_intact: bool,
}

/// A hook that logs itself into the fake world's call log, so its place among the port calls
/// can be checked, and that can be made to fail (echoing the password, as a careless hook
/// might).
struct WorldHook {
    world: Arc<World>,
    fail: AtomicBool,
    seen: Mutex<Vec<Seen>>,
}

impl WorldHook {
    fn new(world: &Arc<World>) -> Arc<WorldHook> {
        Arc::new(WorldHook {
            world: world.clone(),
            fail: AtomicBool::new(false),
            seen: Mutex::new(Vec::new()),
        })
    }

    fn seen(&self) -> Vec<Seen> {
        lock(&self.seen).clone()
    }
}

#[async_trait]
impl RedirectHook for WorldHook {
    async fn redirect(&self, target: &RedirectTarget) -> Result<(), HookError> {
        let s = self.world.snapshot();
        let (new, old) = match target.side {
            Side::SqlServer => (&s.source, &s.instance),
            Side::ManagedInstance => (&s.instance, &s.source),
        };
        let new_primary_writable = new.role == Some(ReplicaRole::Primary)
            && (old.role == Some(ReplicaRole::Secondary) || !old.link_exists);
        lock(&self.world.calls).push(format!("hook:{:?}", target.side));
        lock(&self.seen).push(Seen {
            target: target.clone(),
            new_primary_writable,
            link_intact: s.source.link_exists && s.instance.link_exists,
        });
        if self.fail.load(Ordering::SeqCst) {
            return Err(HookError::new(format!(
                "the configuration service refused {}",
                target.connection_string.expose()
            )));
        }
        Ok(())
    }
}

struct Fixture {
    world: Arc<World>,
    timer: Arc<VirtualTimer>,
    journal: MemoryJournal,
    hook: Arc<WorldHook>,
    session: Session<FakeSource, FakeInstance, MemoryJournal>,
}

fn fixture() -> Fixture {
    let timer = Arc::new(VirtualTimer::new(Timestamp::from_millis(1_000_000)));
    let world = World::new(spec().databases, timer.clone());
    let journal = MemoryJournal::new();
    let hook = WorldHook::new(&world);
    let session = Session::create(
        spec(),
        Arc::new(FakeSource(world.clone())),
        Arc::new(FakeInstance(world.clone())),
        journal.clone(),
        timer.clone(),
        options(),
    )
    .unwrap()
    .with_redirect(Some(hook.clone()), redirect_options());
    Fixture {
        world,
        timer,
        journal,
        hook,
        session,
    }
}

async fn replicating(f: &Fixture) {
    f.session
        .record_assessment(AssessmentOutcome {
            blockers: Vec::new(),
        })
        .await
        .unwrap();
    f.session.start().await.unwrap();
}

fn is_role_change_call(call: &str) -> bool {
    [
        "sql:Failover",
        "sql:ForceFailover",
        "sql:SetRoleSecondary",
        "arm:Failover",
        "arm:SetRole",
    ]
    .contains(&call)
}

fn journal_text(journal: &MemoryJournal) -> String {
    journal
        .snapshot()
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn the_hook_runs_once_per_role_change_after_the_new_primary_accepts_writes() {
    let f = fixture();
    replicating(&f).await;
    assert!(f.hook.seen().is_empty(), "no role change yet");
    assert_eq!(f.session.status().redirect, None);

    f.session.failover(FailoverKind::Planned).await.unwrap();
    f.session.failback().await.unwrap();
    f.session
        .cutover(CutoverOptions {
            drop_availability_group: false,
        })
        .await
        .unwrap();
    assert_eq!(f.session.status().state, "Completed");

    let seen = f.hook.seen();
    let sides: Vec<Side> = seen.iter().map(|s| s.target.side).collect();
    assert_eq!(
        sides,
        [
            Side::ManagedInstance,
            Side::SqlServer,
            Side::ManagedInstance
        ]
    );
    // Each redirect has its own id, shown in the status too.
    let ids: Vec<&str> = seen.iter().map(|s| s.target.redirect_id.as_str()).collect();
    let link = spec().link;
    assert_eq!(
        ids,
        [1, 2, 3].map(|n| format!("{link}/redirect/{n}")),
        "one id per redirect"
    );
    assert_eq!(
        f.session.status().redirect.map(|t| t.redirect_id),
        Some(format!("{link}/redirect/3"))
    );
    for s in &seen {
        assert!(
            s.new_primary_writable,
            "called before {:?} was writable",
            s.target.side
        );
        assert!(s.link_intact, "called after the link was dropped");
    }

    // In the call log: each role change is followed by a roles reading and then exactly one
    // hook call, before the next role change; nothing is removed before the last hook call.
    let calls = f.world.calls();
    let mut pending_hook = false;
    let mut read_since_change = false;
    let mut hooks = 0;
    for call in &calls {
        if is_role_change_call(call) {
            assert!(
                !pending_hook,
                "a role change without its redirect: {calls:?}"
            );
            pending_hook = true;
            read_since_change = false;
        } else if call.ends_with(":link_state") {
            read_since_change = true;
        } else if call.starts_with("hook:") {
            assert!(pending_hook, "a redirect without a role change: {calls:?}");
            assert!(read_since_change, "redirect before the roles were verified");
            pending_hook = false;
            hooks += 1;
        } else if call == "arm:DeleteLink" || call.starts_with("sql:Drop") {
            assert!(!pending_hook, "{call} before the redirect: {calls:?}");
        }
    }
    assert_eq!(hooks, 3);
    let last_hook = calls.iter().rposition(|c| c.starts_with("hook:")).unwrap();
    let delete = calls.iter().position(|c| c == "arm:DeleteLink").unwrap();
    assert!(last_hook < delete);
}

#[tokio::test]
async fn the_status_shows_the_target_and_nothing_shows_the_password() {
    let f = fixture();
    replicating(&f).await;
    f.session.failover(FailoverKind::Planned).await.unwrap();

    let status = f.session.status();
    let target = status.redirect.clone().unwrap();
    assert_eq!(target.side, Side::ManagedInstance);
    assert_eq!(target.host, "tailspin-mi.abc123.database.windows.net");
    assert_eq!(
        target.connection_string.expose(),
        "Server=tcp:tailspin-mi.abc123.database.windows.net,1433;Database=ToyStore;\
         User ID=web_mi;Password=\"N3w;Secr3t=x\";App=Tailspin.Web"
    );
    // The hook received the real string.
    assert_eq!(f.hook.seen()[0].target, target);

    let shown = format!(
        "{status:?} {} {}",
        serde_json::to_string(&status).unwrap(),
        journal_text(&f.journal)
    );
    for secret in [NEW_PASSWORD, "0ld-Secr3t", "N3w"] {
        assert!(!shown.contains(secret), "{secret} leaked");
    }
    assert!(shown.contains("Password=***"));

    f.session.failback().await.unwrap();
    let back = f.session.status().redirect.unwrap();
    assert_eq!(back.side, Side::SqlServer);
    assert_eq!(back.connection_string.expose(), ORIGINAL);
    assert_eq!(
        (back.host.as_str(), back.port.map(|p| p.get())),
        ("TAILSPINSQL", Some(1433))
    );
}

#[tokio::test]
async fn a_failing_hook_stops_resumably_with_the_link_intact() {
    let f = fixture();
    replicating(&f).await;
    f.hook.fail.store(true, Ordering::SeqCst);

    let err = f.session.failover(FailoverKind::Planned).await.unwrap_err();
    let SessionError::StepFailed(step) = &err else {
        panic!("expected StepFailed, got {err}");
    };
    assert_eq!(step.code, "hook");
    assert!(step.retryable && err.is_transient());
    assert!(
        step.message.contains("configuration service refused"),
        "{}",
        step.message
    );

    let status = f.session.status();
    assert_eq!(status.state, "Failed");
    let phase = serde_json::to_string(&status.phase).unwrap();
    assert!(phase.contains("Redirecting"), "{phase}");
    // The role change happened and nothing was dropped: both sides hold the link.
    let s = f.world.snapshot();
    assert!(s.source.link_exists && s.instance.link_exists);
    assert_eq!(s.instance.role, Some(ReplicaRole::Primary));
    assert!(
        !f.world
            .calls()
            .iter()
            .any(|c| c.contains("Drop") || c.contains("Delete"))
    );
    // The hook echoed the connection string: the journal, the status and the error do not.
    let shown = format!("{err} {status:?} {}", journal_text(&f.journal));
    assert!(!shown.contains("N3w;Secr3t"), "{shown}");

    // Resume while it still fails: still Failed, the failover is not repeated.
    assert!(f.session.resume().await.is_err());

    f.hook.fail.store(false, Ordering::SeqCst);
    f.session.resume().await.unwrap();
    assert_eq!(f.session.status().state, "FailedOver");
    let failovers = f
        .world
        .applied()
        .iter()
        .filter(|c| is_role_change_call(c))
        .count();
    assert_eq!(
        failovers,
        1,
        "the role change ran once: {:?}",
        f.world.applied()
    );
    let seen = f.hook.seen();
    assert_eq!(seen.len(), 3, "two failed calls, one that succeeded");
    assert!(seen.iter().all(|s| s.target.side == Side::ManagedInstance));
    // One redirect, called three times: the same id every time.
    let first = format!("{}/redirect/1", spec().link);
    assert!(
        seen.iter().all(|s| s.target.redirect_id == first),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_session_reopened_after_a_failing_hook_finishes_the_failover() {
    let f = fixture();
    replicating(&f).await;
    f.hook.fail.store(true, Ordering::SeqCst);
    assert!(f.session.failover(FailoverKind::Planned).await.is_err());
    drop(f.session);

    let fixed = WorldHook::new(&f.world);
    let session = Session::resume(
        f.journal.clone(),
        Arc::new(FakeSource(f.world.clone())),
        Arc::new(FakeInstance(f.world.clone())),
        f.timer.clone(),
        options(),
    )
    .unwrap()
    .with_redirect(Some(fixed.clone()), redirect_options());
    session.resume().await.unwrap();
    assert_eq!(session.status().state, "FailedOver");
    assert_eq!(fixed.seen().len(), 1);
    assert_eq!(
        session.status().redirect.unwrap().side,
        Side::ManagedInstance
    );
}

struct NeverAnswers;

#[async_trait]
impl RedirectHook for NeverAnswers {
    async fn redirect(&self, _target: &RedirectTarget) -> Result<(), HookError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_hook_that_never_answers_times_out_as_a_hook_failure() {
    let f = fixture();
    let session = Session::resume(
        f.journal.clone(),
        Arc::new(FakeSource(f.world.clone())),
        Arc::new(FakeInstance(f.world.clone())),
        f.timer.clone(),
        options(),
    )
    .unwrap()
    .with_redirect(Some(Arc::new(NeverAnswers)), redirect_options());
    session
        .record_assessment(AssessmentOutcome {
            blockers: Vec::new(),
        })
        .await
        .unwrap();
    session.start().await.unwrap();
    let err = session.failover(FailoverKind::Planned).await.unwrap_err();
    let SessionError::StepFailed(step) = err else {
        panic!("expected StepFailed");
    };
    assert_eq!(step.code, "hook");
    assert!(step.retryable);
    assert!(
        step.message.contains("no answer within"),
        "{}",
        step.message
    );
}

#[tokio::test]
async fn without_a_hook_the_redirect_succeeds_and_the_status_still_shows_the_target() {
    let timer = Arc::new(VirtualTimer::new(Timestamp::from_millis(1_000_000)));
    let world = World::new(spec().databases, timer.clone());
    let session = Session::create(
        spec(),
        Arc::new(FakeSource(world.clone())),
        Arc::new(FakeInstance(world.clone())),
        MemoryJournal::new(),
        timer,
        options(),
    )
    .unwrap()
    .with_redirect(None, redirect_options());
    session
        .record_assessment(AssessmentOutcome {
            blockers: Vec::new(),
        })
        .await
        .unwrap();
    session.start().await.unwrap();
    session.failover(FailoverKind::Planned).await.unwrap();
    let target = session.status().redirect.unwrap();
    assert_eq!(target.side, Side::ManagedInstance);
    assert!(!world.calls().iter().any(|c| c.starts_with("hook:")));
}

#[tokio::test]
async fn options_that_cannot_give_a_target_fail_without_calling_the_hook() {
    let f = fixture();
    // A connection string without a server cannot be returned to on failback.
    let session = Session::resume(
        f.journal.clone(),
        Arc::new(FakeSource(f.world.clone())),
        Arc::new(FakeInstance(f.world.clone())),
        f.timer.clone(),
        options(),
    )
    .unwrap()
    .with_redirect(
        Some(f.hook.clone()),
        RedirectOptions::new(ConnectionString::parse("Database=ToyStore").unwrap()),
    );
    session
        .record_assessment(AssessmentOutcome {
            blockers: Vec::new(),
        })
        .await
        .unwrap();
    session.start().await.unwrap();
    session.failover(FailoverKind::Planned).await.unwrap();
    let err = session.failback().await.unwrap_err();
    let SessionError::StepFailed(step) = &err else {
        panic!("expected StepFailed, got {err}");
    };
    assert_eq!(step.code, "redirect");
    assert!(!step.retryable);
    assert!(
        step.message.contains("Server / Data Source"),
        "{}",
        step.message
    );
    assert_eq!(f.hook.seen().len(), 1, "only the failover's redirect ran");
    let s = f.world.snapshot();
    assert!(s.source.link_exists && s.instance.link_exists);
}

fn activity(database: &str) -> WorkloadActivity {
    WorkloadActivity {
        sessions: vec![ClientSession {
            session_id: 57,
            database: DatabaseName::new(database).unwrap(),
            login: "web".to_owned(),
            host: Some("WEB01".to_owned()),
            program: Some("Tailspin.Web".to_owned()),
            status: "sleeping".to_owned(),
            open_transactions: 1,
            oldest_transaction_start: None,
        }],
    }
}

#[tokio::test]
async fn the_quiet_check_asks_the_current_primary_for_the_links_databases() {
    let mut source = MockSourceServer::new();
    source
        .expect_workload_activity()
        .withf(|dbs| dbs == [DatabaseName::new("ToyStore").unwrap()])
        .times(1)
        .returning(|_| Ok(activity("ToyStore")));
    let mut instance = MockManagedInstance::new();
    instance.expect_workload_activity().never();
    let timer = Arc::new(VirtualTimer::new(Timestamp::from_millis(1_000_000)));
    let session = Session::create(
        spec(),
        Arc::new(source),
        Arc::new(instance),
        MemoryJournal::new(),
        timer,
        options(),
    )
    .unwrap();
    let found = session.check_workload_quiet().await.unwrap();
    assert!(!found.is_quiet());
    assert!(found.summary().contains("session 57 login web from WEB01"));
}

#[tokio::test]
async fn the_quiet_check_follows_the_role_change_and_reports_unsupported_adapters() {
    let f = fixture();
    replicating(&f).await;
    let before = f.session.check_workload_quiet().await.unwrap_err();
    let SessionError::StepFailed(e) = &before else {
        panic!("{before}");
    };
    assert_eq!(e.code, UNSUPPORTED);
    assert!(e.message.contains("SQL Server adapter"), "{}", e.message);

    f.session.failover(FailoverKind::Planned).await.unwrap();
    let after = f.session.check_workload_quiet().await.unwrap_err();
    let SessionError::StepFailed(e) = &after else {
        panic!("{after}");
    };
    assert!(
        e.message.contains("managed instance adapter"),
        "{}",
        e.message
    );
    // Reading changes nothing.
    assert_eq!(f.session.status().state, "FailedOver");
}
