//! Calls that must not run twice, against a fake instance that can answer "accepted, still
//! running" (ARM role changes take effect when their operation ends, not when accepted) and
//! "done, reply lost" (the call takes effect, the answer is a timeout). Each test counts the
//! calls and asserts the exact number: one.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::world::{FakeInstance, FakeSource, World};
use super::*;
use crate::journal::MemoryJournal;
use crate::lifecycle::{DataLossAcknowledgement, LinkSpec, ReplicaRole};
use crate::names::SqlVersion;
use crate::test_support::{VirtualTimer, spec};

type FakeSession = Session<FakeSource, FakeInstance, MemoryJournal>;

/// SQL Server 2022 CU10: planned failovers go through ARM (no T-SQL `FAILOVER` before CU13).
fn arm_spec() -> LinkSpec {
    let mut spec = spec();
    spec.source.version = SqlVersion::new(16, 0, 4095, 4);
    spec
}

struct Rig {
    world: Arc<World>,
    timer: Arc<VirtualTimer>,
    journal: MemoryJournal,
    spec: LinkSpec,
}

impl Rig {
    /// A world whose ARM role changes run for `polls` readings before they take effect.
    fn new(spec: LinkSpec, deferred: bool, polls: u32) -> Rig {
        let timer = Arc::new(VirtualTimer::new(Timestamp::from_millis(1_000_000)));
        let world = World::new(spec.databases.clone(), timer.clone());
        world.role_change_polls.store(polls, Ordering::SeqCst);
        world
            .deferred_role_changes
            .store(deferred, Ordering::SeqCst);
        Rig {
            world,
            timer,
            journal: MemoryJournal::new(),
            spec,
        }
    }

    fn options(&self, operation_timeout: Duration) -> SessionOptions {
        SessionOptions {
            operation_timeout,
            seed: 5,
            ..SessionOptions::default()
        }
    }

    fn create(&self) -> FakeSession {
        Session::create(
            self.spec.clone(),
            Arc::new(FakeSource(self.world.clone())),
            Arc::new(FakeInstance(self.world.clone())),
            self.journal.clone(),
            self.timer.clone(),
            self.options(Duration::from_secs(24 * 3600)),
        )
        .unwrap()
    }

    /// A new process: the same world, the journal as it survived.
    fn restart(&self) -> FakeSession {
        Session::resume(
            self.journal.clone(),
            Arc::new(FakeSource(self.world.clone())),
            Arc::new(FakeInstance(self.world.clone())),
            self.timer.clone(),
            self.options(Duration::from_secs(24 * 3600)),
        )
        .unwrap()
    }

    async fn replicating(&self) -> FakeSession {
        let s = self.create();
        s.record_assessment(AssessmentOutcome {
            blockers: Vec::new(),
        })
        .await
        .unwrap();
        s.start().await.unwrap();
        s
    }

    fn ack(&self) -> FailoverKind {
        FailoverKind::Forced(Some(DataLossAcknowledgement {
            link: self.spec.link.to_string(),
        }))
    }
}

fn roles(rig: &Rig) -> (Option<ReplicaRole>, Option<ReplicaRole>) {
    let s = rig.world.snapshot();
    (s.source.role, s.instance.role)
}

const PRIMARY: Option<ReplicaRole> = Some(ReplicaRole::Primary);
const SECONDARY: Option<ReplicaRole> = Some(ReplicaRole::Secondary);

#[tokio::test]
async fn accepted_still_running_then_a_crash_polls_the_same_operation() {
    // The ARM failover is accepted and runs for 40 readings; the process dies while it runs
    // (the operation's time is up). The next process follows the saved URL: one POST.
    let rig = Rig::new(arm_spec(), true, 100);
    let s = rig.replicating().await;
    let short = Session::resume(
        rig.journal.clone(),
        Arc::new(FakeSource(rig.world.clone())),
        Arc::new(FakeInstance(rig.world.clone())),
        rig.timer.clone(),
        rig.options(Duration::from_secs(120)),
    )
    .unwrap();
    drop(s);
    let err = short.failover(FailoverKind::Planned).await.unwrap_err();
    assert!(matches!(err, SessionError::Timeout { .. }), "{err}");
    assert_eq!(rig.world.count("arm:Failover"), 1);
    assert_eq!(roles(&rig), (PRIMARY, SECONDARY), "still running");
    drop(short);
    let s = rig.restart();
    s.resume().await.unwrap();
    assert_eq!(roles(&rig), (SECONDARY, PRIMARY));
    assert!(matches!(s.machine().state(), State::FailedOver { .. }));
    assert_eq!(
        rig.world.count("arm:Failover"),
        1,
        "{:?}",
        rig.world.calls()
    );
    assert_eq!(rig.world.applied(), ["arm:Failover"]);
}

#[tokio::test]
async fn accepted_still_running_after_a_failed_step_is_followed_on_retry() {
    // A poll fails transiently past the driver's retries: the step fails; resume follows the
    // same operation, it never POSTs again.
    let rig = Rig::new(arm_spec(), true, 6);
    let s = rig.replicating().await;
    let attempts = SessionOptions::default().retry.max_attempts;
    rig.world.inject(
        "arm:poll",
        (0..attempts).map(|_| PortError::transient("http:503", "service unavailable")),
    );
    let err = s.failover(FailoverKind::Planned).await.unwrap_err();
    assert!(matches!(err, SessionError::StepFailed(_)), "{err}");
    s.resume().await.unwrap();
    assert!(matches!(s.machine().state(), State::FailedOver { .. }));
    assert_eq!(
        rig.world.count("arm:Failover"),
        1,
        "{:?}",
        rig.world.calls()
    );
}

#[tokio::test]
async fn done_but_the_reply_was_lost_is_never_sent_again() {
    for (spec, call, kind) in [
        (spec(), "sql:Failover", FailoverKind::Planned),
        (arm_spec(), "arm:Failover", FailoverKind::Planned),
    ] {
        // Taking effect at once, or running for a few readings, the answer never arrives.
        for deferred in [false, true] {
            let rig = Rig::new(spec.clone(), deferred, 3);
            let s = rig.replicating().await;
            rig.world.lose_replies(call, 1);
            let first = s.failover(kind.clone()).await;
            if first.is_err() {
                let again = s.resume().await;
                assert!(
                    again.is_ok(),
                    "{call}, deferred {deferred}: {first:?} then {again:?}\ncalls {:?}\nstate {:?}",
                    rig.world.calls(),
                    s.machine().state()
                );
            }
            assert!(
                matches!(s.machine().state(), State::FailedOver { .. }),
                "{call}, deferred {deferred}: {:?}",
                s.machine().state()
            );
            assert_eq!(rig.world.count(call), 1, "{call}, deferred {deferred}");
            assert_eq!(roles(&rig), (SECONDARY, PRIMARY));
        }
    }
    // The forced failover and the failback through ARM.
    for deferred in [false, true] {
        let rig = Rig::new(spec(), deferred, 3);
        let s = rig.replicating().await;
        rig.world.lose_replies("arm:Failover", 1);
        if s.failover(rig.ack()).await.is_err() {
            s.resume().await.unwrap();
        }
        assert!(matches!(s.machine().state(), State::FailedOver { .. }));
        assert_eq!(
            rig.world.count("arm:Failover"),
            1,
            "forced, deferred {deferred}"
        );

        let rig = Rig::new(arm_spec(), deferred, 3);
        let s = rig.replicating().await;
        s.failover(FailoverKind::Planned).await.unwrap();
        rig.world.lose_replies("arm:Failover", 1);
        if s.failback().await.is_err() {
            s.resume().await.unwrap();
        }
        assert!(matches!(s.machine().state(), State::Replicating { .. }));
        assert_eq!(roles(&rig), (PRIMARY, SECONDARY));
        assert_eq!(
            rig.world.count("arm:Failover"),
            2,
            "one failover, one failback; deferred {deferred}: {:?}",
            rig.world.calls()
        );
    }
}

#[tokio::test]
async fn the_links_delete_is_sent_once_whatever_its_reply() {
    for deferred in [false, true] {
        let rig = Rig::new(spec(), deferred, 3);
        let s = rig.replicating().await;
        rig.world.lose_replies("arm:DeleteLink", 1);
        let options = CutoverOptions {
            drop_availability_group: true,
        };
        if s.cutover(options).await.is_err() {
            s.resume().await.unwrap();
        }
        assert_eq!(s.machine().state(), &State::Completed);
        // Deleted once. Its reply lost before any URL was known, the link still there: a
        // DELETE is sent again, which ARM answers with the running deletion (a DELETE is
        // idempotent at the service), and the machine follows that.
        assert_eq!(rig.world.applied(), ["sql:Failover", "arm:DeleteLink"]);
        assert!(
            rig.world.count("arm:DeleteLink") <= 2,
            "deferred {deferred}: {:?}",
            rig.world.calls()
        );
    }
}

#[tokio::test]
async fn a_repairs_demotion_is_sent_once_whatever_its_reply() {
    for deferred in [false, true] {
        let rig = Rig::new(spec(), deferred, 3);
        let s = rig.replicating().await;
        // Both sides PRIMARY (the instance was made primary outside milink).
        lock(&rig.world.state).instance.role = PRIMARY;
        assert!(s.health().await.is_ok());
        assert_eq!(s.status().state, "SplitBrain");
        rig.world.lose_replies("arm:SetRole", 1);
        if s.repair_split_brain(Side::SqlServer).await.is_err() {
            s.resume().await.unwrap();
        }
        assert!(matches!(s.machine().state(), State::Replicating { .. }));
        assert_eq!(roles(&rig), (PRIMARY, SECONDARY));
        assert_eq!(rig.world.count("arm:SetRole"), 1, "deferred {deferred}");
    }
}

#[tokio::test]
async fn the_fence_is_sent_once_whatever_its_reply() {
    // One-way (SQL Server 2019 CU20): the cutover fences SQL Server with SET (ROLE = SECONDARY)
    // before the DELETE. Its reply is lost: the role decides, no second demotion.
    let mut one_way = spec();
    one_way.source.version = SqlVersion::new(15, 0, 4312, 2);
    one_way.failover_mode = crate::lifecycle::FailoverMode::None;
    let rig = Rig::new(one_way, false, 3);
    let s = rig.replicating().await;
    rig.world.lose_replies("sql:SetRoleSecondary", 1);
    if s.cutover(CutoverOptions::default()).await.is_err() {
        s.resume().await.unwrap();
    }
    assert_eq!(s.machine().state(), &State::Completed);
    assert_eq!(rig.world.count("sql:SetRoleSecondary"), 1);
    assert_eq!(rig.world.count("arm:DeleteLink"), 1);
}
