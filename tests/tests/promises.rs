//! The promises besides "no commit lost", end to end on the simulator through the public API:
//! role changes happen exactly once, a split brain is always seen, repair reads before it acts,
//! guards read the live servers, and there is always a way out.

use std::time::Duration;

use milink_core::lifecycle::{
    ArmFailoverType, DataLossAcknowledgement, FailoverKind, InstanceOp, ReplicaRole, Side,
    SourceOp, State,
};
use milink_core::names::UpdatePolicy;
use milink_core::ports::{ManagedInstance, SourceServer};
use milink_core::sim::{Call, Fault, InstanceCall, Lab, SimConfig, Trigger};
use milink_core::{LinkSession, MemoryJournal, SessionError};
use milink_tests::{SQL_2019_CU20, SQL_2022_CU12, create, lab, lab_on, options, pass, ready};

fn calls(lab: &Lab, call: Call) -> u32 {
    lab.sim
        .with_world(|w| w.faults.calls.get(&call).copied().unwrap_or(0))
}

fn roles(lab: &Lab) -> (Option<ReplicaRole>, Option<ReplicaRole>) {
    let link = lab.spec.link.clone();
    lab.sim.with_world(|w| {
        (
            w.role(Side::SqlServer, &link),
            w.role(Side::ManagedInstance, &link),
        )
    })
}

fn ack(lab: &Lab) -> FailoverKind {
    FailoverKind::Forced(Some(DataLossAcknowledgement {
        link: lab.spec.link.to_string(),
    }))
}

/// SQL Server cannot be read by milink for its next `n` link readings (the server is down).
fn sql_server_down(lab: &Lab, n: u32) {
    let done = calls(lab, Call::SourceLinkState);
    for nth in done + 1..=done + n {
        lab.sim.inject(
            Trigger::OnCall {
                call: Call::SourceLinkState,
                nth,
            },
            Fault::ConnectionDrop,
        );
    }
}

/// A replicating link on lab `seed`, forced over to the instance while SQL Server is cut off
/// and dark for milink (it stays PRIMARY: nothing demoted it).
async fn forced_while_sql_server_is_dark(
    seed: u64,
) -> (Lab, milink_tests::SimSession<MemoryJournal>) {
    let lab = lab(seed);
    let s = create(&lab, MemoryJournal::new(), options(seed)).unwrap();
    s.record_assessment(ready()).await.unwrap();
    s.start().await.unwrap();
    lab.sim.partition(Duration::from_secs(3600));
    sql_server_down(&lab, 40);
    s.failover(ack(&lab)).await.unwrap();
    (lab, s)
}

const PRIMARY: Option<ReplicaRole> = Some(ReplicaRole::Primary);
const SECONDARY: Option<ReplicaRole> = Some(ReplicaRole::Secondary);

#[tokio::test]
async fn a_failback_whose_reply_was_lost_is_posted_once_and_redirects() {
    // As below, over 20 seeds with the instance's ARM readings lagging 2 s (the default): a
    // lagging reading must not turn the completed failback into a split brain.
    for seed in 1..=20 {
        let lab = lab(seed);
        let s = create(&lab, MemoryJournal::new(), options(seed)).unwrap();
        s.record_assessment(ready()).await.unwrap();
        s.start().await.unwrap();
        s.failover(FailoverKind::Planned).await.unwrap();
        let failover = Call::Instance(InstanceCall::Failover);
        lab.sim.inject(
            Trigger::OnCall {
                call: failover,
                nth: 1,
            },
            Fault::LostResponse,
        );
        if s.failback().await.is_err() {
            s.resume().await.unwrap();
        }
        assert!(
            matches!(s.machine().state(), State::Replicating { .. }),
            "seed {seed}: {:?}",
            s.machine().state()
        );
        assert_eq!(roles(&lab), (PRIMARY, SECONDARY), "seed {seed}");
        assert_eq!(calls(&lab, failover), 1, "seed {seed}");
        assert_eq!(
            s.machine().redirect_id().as_deref(),
            Some(format!("{}/redirect/2", lab.spec.link).as_str()),
            "seed {seed}: the application was sent back to SQL Server"
        );
        assert!(s.status().data_loss.is_empty(), "seed {seed}");
    }
}

#[tokio::test]
async fn a_failback_whose_reply_was_lost_is_posted_once() {
    // The failback's ARM failover is accepted and runs for a minute, and its reply is lost.
    // Resume finds it running (LinkFailoverInProgress), waits, and verifies it: one POST, and
    // the roles never go SQL Server -> MI -> SQL Server -> MI.
    let lab = lab(21);
    let s = create(&lab, MemoryJournal::new(), options(21)).unwrap();
    s.record_assessment(ready()).await.unwrap();
    s.start().await.unwrap();
    s.failover(FailoverKind::Planned).await.unwrap();
    let failover = Call::Instance(InstanceCall::Failover);
    assert_eq!(calls(&lab, failover), 0, "the failover ran in T-SQL");
    lab.sim.inject(
        Trigger::OnCall {
            call: failover,
            nth: 1,
        },
        Fault::LostResponse,
    );
    if s.failback().await.is_err() {
        s.resume().await.unwrap();
    }
    assert!(matches!(s.machine().state(), State::Replicating { .. }));
    assert_eq!(roles(&lab), (PRIMARY, SECONDARY));
    assert_eq!(calls(&lab, failover), 1);
    let changes = lab
        .sim
        .events()
        .iter()
        .filter(|e| matches!(e.kind, milink_core::sim::EventKind::RoleChanged { .. }))
        .count();
    assert_eq!(
        changes, 4,
        "two sides, two role changes: failover and failback"
    );
}

#[tokio::test]
async fn a_split_brain_after_a_forced_failover_is_seen_and_blocks_the_cutover() {
    // SQL Server is down for milink while the forced failover runs, and comes back still
    // PRIMARY (nothing demoted it). Both sides then take writes.
    let (lab, s) = forced_while_sql_server_is_dark(22).await;
    assert!(matches!(
        s.machine().state(),
        State::FailedOver {
            primary: Side::ManagedInstance,
            data_loss_possible: true
        }
    ));
    assert_eq!(roles(&lab), (PRIMARY, PRIMARY), "the old primary is up");
    // While SQL Server is dark, watching the idle link finds nothing wrong.
    s.watch(Duration::from_secs(30)).await.unwrap();
    // SQL Server answers again. Health reads both sides now and reports the split brain.
    lab.sim.with_world_mut(|w| w.faults.faults.clear());
    let health = s.health().await.unwrap().unwrap();
    assert_eq!(health.source.role, Some(ReplicaRole::Primary));
    assert_eq!(health.instance.role, Some(ReplicaRole::Primary));
    let status = s.status();
    assert_eq!(status.state, "SplitBrain");
    assert!(status.split_brain_since.is_some());
    assert!(matches!(s.resume().await, Err(SessionError::SplitBrain)));
    // Watching the link sees it too (from a fresh session state, it is reported at once).
    assert!(matches!(
        s.watch(Duration::from_secs(60)).await,
        Err(SessionError::SplitBrain)
    ));
    // A cutover now is refused; nothing was deleted.
    let refused = s.cutover(Default::default()).await.unwrap_err();
    assert!(refused.is_caller_error(), "{refused}");
    assert!(
        lab.sim
            .with_world(|w| w.instance.links.contains_key(&lab.spec.link))
    );
}

#[tokio::test]
async fn repair_reads_the_roles_first_and_never_leaves_no_primary() {
    let (lab, s) = forced_while_sql_server_is_dark(23).await;
    lab.sim.with_world_mut(|w| w.faults.faults.clear());
    s.health().await.unwrap();
    assert_eq!(s.status().state, "SplitBrain");
    // A DBA demotes SQL Server before milink's repair runs.
    let dag = lab.spec.link.clone();
    lab.sim
        .sql_server()
        .execute(&SourceOp::SetRoleSecondary { dag })
        .await
        .unwrap();
    // Keeping SQL Server would demote the instance too: refused, nothing sent.
    let set_role = Call::Instance(InstanceCall::SetRole);
    let refused = s.repair_split_brain(Side::SqlServer).await.unwrap_err();
    assert!(
        refused.to_string().contains("leave no primary"),
        "{refused}"
    );
    assert_eq!(calls(&lab, set_role), 0);
    assert_eq!(roles(&lab), (SECONDARY, PRIMARY));
    // Cancel settles on the roles the servers report.
    s.cancel().await.unwrap();
    assert!(matches!(
        s.machine().state(),
        State::FailedOver {
            primary: Side::ManagedInstance,
            ..
        }
    ));
}

#[tokio::test]
async fn repair_never_reverses_a_one_way_link() {
    let lab = lab_on(SQL_2019_CU20, SimConfig::with_seed(24));
    let s = create(&lab, MemoryJournal::new(), options(24)).unwrap();
    s.record_assessment(ready()).await.unwrap();
    s.start().await.unwrap();
    // Something outside milink made the instance PRIMARY too.
    let link = lab.spec.link.clone();
    lab.sim.with_world_mut(|w| {
        if let Some(l) = w.instance.links.get_mut(&link) {
            l.role = ReplicaRole::Primary;
        }
    });
    pass(&lab, Duration::from_secs(5));
    s.health().await.unwrap();
    assert_eq!(s.status().state, "SplitBrain");
    let refused = s
        .repair_split_brain(Side::ManagedInstance)
        .await
        .unwrap_err();
    assert!(refused.is_caller_error(), "{refused}");
    assert!(refused.to_string().contains("one-way"), "{refused}");
    assert_eq!(roles(&lab), (PRIMARY, PRIMARY), "nothing demoted");
    // Keeping SQL Server is the repair a one-way link allows.
    s.repair_split_brain(Side::SqlServer).await.unwrap();
    assert!(matches!(s.machine().state(), State::Replicating { .. }));
    assert_eq!(roles(&lab), (PRIMARY, SECONDARY));
}

#[tokio::test]
async fn the_failback_guard_reads_the_live_update_policy() {
    let lab = lab(25);
    let s = create(&lab, MemoryJournal::new(), options(25)).unwrap();
    s.record_assessment(ready()).await.unwrap();
    s.start().await.unwrap();
    s.failover(FailoverKind::Planned).await.unwrap();
    // The instance's update policy moves to Always-up-to-date after the link was created.
    lab.sim
        .with_world_mut(|w| w.instance.update_policy = UpdatePolicy::AlwaysUpToDate);
    let failover = Call::Instance(InstanceCall::Failover);
    let refused = s.failback().await.unwrap_err();
    assert!(refused.to_string().contains("AlwaysUpToDate"), "{refused}");
    assert_eq!(calls(&lab, failover), 0, "no failover was sent");
    assert_eq!(roles(&lab), (SECONDARY, PRIMARY));
    // And the service refuses it too, should anything send it.
    let direct = lab
        .sim
        .managed_instance()
        .begin(&InstanceOp::Failover {
            link: lab.spec.link.clone(),
            failover_type: ArmFailoverType::Planned,
        })
        .await
        .unwrap_err();
    assert!(direct.code().starts_with("arm:409:"), "{direct}");
    // Cancel returns to the steady state it started from.
    s.cancel().await.unwrap();
    assert!(matches!(s.machine().state(), State::FailedOver { .. }));
}

#[tokio::test]
async fn a_forced_failover_is_the_way_out_when_the_primary_dies_mid_failover() {
    // A planned failover through ARM fails, and SQL Server goes down: the failed failover can
    // neither finish nor be retried. A forced failover (acknowledged) is allowed from there.
    let lab = lab_on(SQL_2022_CU12, SimConfig::with_seed(26));
    let s = create(&lab, MemoryJournal::new(), options(26)).unwrap();
    s.record_assessment(ready()).await.unwrap();
    s.start().await.unwrap();
    milink_tests::fail_first_arm_failover(&lab);
    assert!(s.failover(FailoverKind::Planned).await.is_err());
    lab.sim.partition(Duration::from_secs(6 * 3600));
    sql_server_down(&lab, 10_000);
    // Both sides answered when it failed: a forced failover is refused, with what to do.
    let refused = s.failover(ack(&lab)).await.unwrap_err();
    assert!(
        refused.to_string().contains("retry the failed step"),
        "{refused}"
    );
    // Retry reads the roles first: SQL Server does not answer; the role check times out.
    assert!(s.retry().await.is_err());
    assert!(matches!(s.machine().state(), State::Failed { .. }));
    assert_eq!(
        s.machine().health().and_then(|h| h.unreachable),
        Some(Side::SqlServer)
    );
    s.failover(ack(&lab)).await.unwrap();
    assert!(matches!(
        s.machine().state(),
        State::FailedOver {
            primary: Side::ManagedInstance,
            data_loss_possible: true
        }
    ));
    assert_eq!(roles(&lab).1, PRIMARY);
}
