//! The Arc route driven by a real session: SQL Server's side through [`ArcSourceServer`] (the
//! real [`crate::arc::client::ArcSqlServer`] over loopback HTTPS to the simulated Azure), the
//! managed instance through the real ARM adapter to the same server, one simulated world, the
//! session sleeping on a [`WireClock`]. (The instance's T-SQL reads, its first full backups,
//! stay in process: ARM cannot read them.)

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::tests::TOKEN;
use super::{ArmHttpsServer, ArmServerConfig};
use crate::arc::client::ArcSqlServer;
use crate::arc::source::{ARC_ROUTE_WARNING, ArcSourceServer};
use crate::arm::client::{ArmManagedInstance, ArmOptions, StaticToken};
use crate::journal::MemoryJournal;
use crate::lifecycle::{
    AssessmentOutcome, CutoverOptions, DataLossAcknowledgement, FailoverKind, FullBackup,
    InstanceOp, LinkName, LinkRoute, OperationRef, Side, SideView, State,
};
use crate::names::DatabaseName;
use crate::ports::{ArmReply, ManagedInstance, PollReply, PortError};
use crate::redirect::WorkloadActivity;
use crate::session::{LinkSession, Session, SessionOptions};
use crate::sim::wire::{InFlight, WireClock};
use crate::sim::{Lab, ParityReport, SimManagedInstance, WorkloadRedirect, WorkloadSpec};

/// The instance's ARM port over HTTPS, with its T-SQL reads in process.
struct Instance {
    arm: ArmManagedInstance,
    tsql: SimManagedInstance,
}

#[async_trait]
impl ManagedInstance for Instance {
    async fn begin(&self, op: &InstanceOp) -> Result<ArmReply, PortError> {
        self.arm.begin(op).await
    }
    async fn poll(&self, operation: &OperationRef) -> Result<PollReply, PortError> {
        self.arm.poll(operation).await
    }
    async fn link_state(&self, link: &LinkName) -> Result<SideView, PortError> {
        self.arm.link_state(link).await
    }
    async fn full_backups(&self, databases: &[DatabaseName]) -> Result<Vec<FullBackup>, PortError> {
        self.tsql.full_backups(databases).await
    }
    async fn workload_activity(
        &self,
        databases: &[DatabaseName],
    ) -> Result<WorkloadActivity, PortError> {
        self.tsql.workload_activity(databases).await
    }
}

type ArcSession = Session<ArcSourceServer, Instance, MemoryJournal>;

struct Pair {
    lab: Lab,
    _server: ArmHttpsServer,
    session: ArcSession,
}

fn options(seed: u64) -> SessionOptions {
    SessionOptions {
        seed,
        event_capacity: 4096,
        ..SessionOptions::default()
    }
}

async fn pair(seed: u64) -> Pair {
    let lab = Lab::tailspin(seed).unwrap();
    let server = ArmHttpsServer::start(ArmServerConfig::with_token(TOKEN), lab.sim.clone())
        .await
        .unwrap();
    let in_flight = InFlight::new();
    let timer = Arc::new(WireClock::new(lab.sim.clock(), Arc::clone(&in_flight)));
    let arm_options = || {
        ArmOptions::builder()
            .endpoint(server.base_url())
            .trust_root_der(server.certificate_der().to_vec())
            .build()
    };
    let token = || Arc::new(StaticToken::new(TOKEN.into()));
    let arc_id = lab.sim.with_world(|w| w.arc_instance_id()).unwrap();
    let counter = Arc::clone(&in_flight);
    let arc = ArcSqlServer::with_timer(
        arc_id.clone(),
        lab.spec.target.instance.clone(),
        token(),
        arm_options(),
        timer.clone(),
    )
    .unwrap()
    .on_the_wire(Arc::new(move || Box::new(counter.enter())));
    let counter = Arc::clone(&in_flight);
    let arm = ArmManagedInstance::with_timer(
        lab.spec.target.instance.clone(),
        token(),
        arm_options(),
        timer.clone(),
    )
    .unwrap()
    .on_the_wire(Arc::new(move || Box::new(counter.enter())));
    let spec = crate::lifecycle::LinkSpec {
        route: LinkRoute::Arc { instance: arc_id },
        ..lab.spec.clone()
    };
    let session = Session::create(
        spec,
        Arc::new(ArcSourceServer::new(arc)),
        Arc::new(Instance {
            arm,
            tsql: lab.sim.managed_instance(),
        }),
        MemoryJournal::new(),
        timer,
        options(seed),
    )
    .unwrap()
    .with_redirect_hook(Arc::new(WorkloadRedirect::new(lab.sim.clone())));
    Pair {
        lab,
        _server: server,
        session,
    }
}

fn ready() -> AssessmentOutcome {
    AssessmentOutcome {
        blockers: Vec::new(),
    }
}

fn starts(lab: &Lab, operation_id: &str) -> u32 {
    lab.sim.with_world(|w| w.arc.started(operation_id))
}

const CREATE: &str = "SqlServerAvailabilityGroups_CreateManagedInstanceLink";
const FAILOVER: &str = "SqlServerAvailabilityGroups_failoverMiLink";
const DELETE: &str = "SqlServerAvailabilityGroups_deleteMiLink";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_links_fails_over_and_cuts_over_through_arc_without_losing_a_row() {
    let Pair {
        lab,
        session,
        _server: _kept,
    } = pair(31).await;
    let db = DatabaseName::new(Lab::TOYSTORE).unwrap();
    session.record_assessment(ready()).await.unwrap();
    lab.sim.start_workload(WorkloadSpec {
        database: db.clone(),
        target: Side::SqlServer,
        transactions_per_second: 10.0,
        max_rows_per_transaction: 4,
    });
    session.start().await.unwrap();
    assert!(matches!(
        session.machine().state(),
        State::Replicating { .. }
    ));
    // One create, whose steps ran in the world: SQL Server's DAG and the instance's link.
    assert_eq!(starts(&lab, CREATE), 1);
    lab.sim.with_world(|w| {
        assert_eq!(w.primary_of(&lab.spec.link), Some(Side::SqlServer));
    });
    // SQL Server's side as Arc reports it: the DAG's roles, no LSN; the lag from telemetry.
    let status = session.status();
    assert!(
        status
            .connection_warnings
            .iter()
            .any(|w| w == ARC_ROUTE_WARNING),
        "{status:?}"
    );
    lab.sim.advance(Duration::from_secs(60));
    let before_stop = lab.sim.stop_workload();
    assert!(before_stop.committed > 100, "{before_stop:?}");
    let before = lab.sim.snapshot(Side::SqlServer, &db).unwrap();
    session.failover(FailoverKind::Planned).await.unwrap();
    assert_eq!(
        session.machine().state(),
        &State::FailedOver {
            primary: Side::ManagedInstance,
            data_loss_possible: false
        }
    );
    assert_eq!(starts(&lab, FAILOVER), 1);
    let after = lab.sim.snapshot(Side::ManagedInstance, &db).unwrap();
    assert!(ParityReport::compare(&before, &after).all_match());
    assert_eq!(lab.sim.lost_transactions(&db), 0);
    // The LSN check Arc made and milink did not is said, not claimed.
    let status = session.status();
    assert!(
        status
            .loss_unverified
            .iter()
            .any(|n| n.contains("did not compare")),
        "{status:?}"
    );
    session.cutover(CutoverOptions::default()).await.unwrap();
    assert_eq!(session.machine().state(), &State::Completed);
    assert_eq!(starts(&lab, DELETE), 1);
    lab.sim.with_world(|w| {
        assert_eq!(w.primary_of(&lab.spec.link), None);
    });
    // The instance keeps the data and takes writes.
    lab.sim.write(Side::ManagedInstance, &db, 1).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_failover_through_arc_needs_the_acknowledgement() {
    let Pair {
        lab,
        session,
        _server: _kept,
    } = pair(32).await;
    session.record_assessment(ready()).await.unwrap();
    session.start().await.unwrap();
    let refused = session
        .failover(FailoverKind::Forced(None))
        .await
        .unwrap_err();
    assert!(refused.is_caller_error(), "{refused}");
    assert_eq!(starts(&lab, FAILOVER), 0, "nothing was sent");
    let ack = DataLossAcknowledgement {
        link: lab.spec.link.to_string(),
    };
    // SQL Server is still up and PRIMARY: Arc made the instance primary too, and the machine
    // sees the split brain.
    let forced = session.failover(FailoverKind::Forced(Some(ack))).await;
    assert!(
        matches!(forced, Err(crate::session::SessionError::SplitBrain)),
        "{forced:?}"
    );
    assert_eq!(starts(&lab, FAILOVER), 1);
    // Arc cannot demote SQL Server; keeping SQL Server demotes the instance through ARM.
    let refused = session
        .repair_split_brain(Side::ManagedInstance)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("Arc route"), "{refused}");
    session.repair_split_brain(Side::SqlServer).await.unwrap();
    lab.sim.with_world(|w| {
        assert_eq!(w.primary_of(&lab.spec.link), Some(Side::SqlServer));
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_through_arc_removes_the_link_on_both_sides() {
    let Pair {
        lab,
        session,
        _server: _kept,
    } = pair(33).await;
    session.record_assessment(ready()).await.unwrap();
    session.start().await.unwrap();
    session.cancel().await.unwrap();
    assert_eq!(session.machine().state(), &State::Cancelled);
    assert_eq!(starts(&lab, DELETE), 1);
    lab.sim.with_world(|w| {
        assert_eq!(w.primary_of(&lab.spec.link), None);
    });
}
