//! The reproductions of the catch-up gate review as reusable scenarios: the end-to-end tests
//! run them as they are, the mutation tests run them with a guard switched off. Loss is counted
//! by the rows the data holds (which transactions each copy of ToyStore holds), not by what the
//! machine believes.

use std::time::Duration;

use milink_core::lifecycle::{
    AvailabilityMode, CutoverOptions, FailoverKind, LinkSpec, Side, State,
};
use milink_core::sim::{Call, InstanceCall, SimConfig};
use milink_core::{LinkSession, MemoryJournal};

use crate::{SQL_2019_CU20, SQL_2022_CU12, create, lab_on, options, pass, ready, workload};

/// What a run left behind, by the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Transactions SQL Server's copy holds that the managed instance's copy does not.
    pub missing_on_instance: u64,
    /// Transactions the simulator counted lost at a role change or removal.
    pub lost: u64,
    /// Data-loss reports the machine raised.
    pub reported: usize,
    /// The run ended as the test expects (Completed, FailedOver).
    pub finished: bool,
}

/// A one-way cutover (SQL Server 2019 CU20) while the application still writes a trickle
/// (0.05 transactions per second) to SQL Server, then keeps writing wherever the redirect hook
/// sends it.
pub async fn one_way_trickle_cutover(
    seed: u64,
    config: SimConfig,
    tweak: &dyn Fn(&mut LinkSpec),
) -> Outcome {
    let mut lab = lab_on(SQL_2019_CU20, config);
    tweak(&mut lab.spec);
    assert!(!lab.spec.is_two_way());
    let s = create(&lab, MemoryJournal::new(), options(seed)).expect("scenario step");
    s.record_assessment(ready()).await.expect("scenario step");
    s.start().await.expect("scenario step");
    workload(&lab, Side::SqlServer, 0.05);
    pass(&lab, Duration::from_secs(120));
    let result = s.cutover(CutoverOptions::default()).await;
    // The application goes on for a minute after the cutover.
    pass(&lab, Duration::from_secs(60));
    lab.sim.stop_workload();
    outcome(
        &lab,
        &s,
        result.is_ok() && s.machine().state() == &State::Completed,
    )
}

/// A planned failover through ARM (SQL Server 2022 CU12) whose first call fails; the
/// application comes back at 50 transactions per second before the retry, and stops two minutes
/// into it. Returns the outcome and how many ARM failover calls were made.
pub async fn retried_failover_with_the_workload_back(
    seed: u64,
    config: SimConfig,
    tweak: &dyn Fn(&mut LinkSpec),
) -> (Outcome, u32) {
    let mut lab = lab_on(SQL_2022_CU12, config);
    tweak(&mut lab.spec);
    assert!(lab.spec.is_two_way());
    assert!(!lab.spec.capabilities().tsql_failover);
    let failover = Call::Instance(InstanceCall::Failover);
    crate::fail_first_arm_failover(&lab);
    let s = create(&lab, MemoryJournal::new(), options(seed)).expect("scenario step");
    s.record_assessment(ready()).await.expect("scenario step");
    s.start().await.expect("scenario step");
    workload(&lab, Side::SqlServer, 10.0);
    pass(&lab, Duration::from_secs(60));
    lab.sim.stop_workload();
    assert!(s.failover(FailoverKind::Planned).await.is_err());
    assert!(matches!(s.machine().state(), State::Failed { .. }));
    // The application is back, at 50 tps, and the operator retries. The machine must not
    // send the failover again until the gate passes on new readings.
    workload(&lab, Side::SqlServer, 50.0);
    pass(&lab, Duration::from_secs(5));
    // The application is stopped two minutes of virtual time into the retry.
    lab.sim
        .stop_workload_at(lab.sim.now().plus(Duration::from_secs(120)));
    let result = s.retry().await;
    trace(&s, &result, &lab);
    lab.sim.stop_workload();
    let calls = lab
        .sim
        .with_world(|w| w.faults.calls.get(&failover).copied().unwrap_or(0));
    let outcome = outcome(
        &lab,
        &s,
        result.is_ok()
            && matches!(
                s.machine().state(),
                State::FailedOver {
                    primary: Side::ManagedInstance,
                    ..
                }
            ),
    );
    (outcome, calls)
}

/// A one-way link (SQL Server 2019 CU20) kept in synchronous commit with a long
/// `SESSION_TIMEOUT` (120 s): the network to the instance drops while commits wait for it, the
/// application stops a second later, and the operator starts the cutover. Within the session
/// timeout SQL Server still reports the instance SYNCHRONIZED and both LSNs are stable, but
/// unequal: only the LSN-equality check stands between the cutover and the lost commits.
pub async fn cutover_while_the_synchronous_link_is_cut(
    seed: u64,
    config: SimConfig,
    tweak: &dyn Fn(&mut LinkSpec),
) -> Outcome {
    let mut lab = lab_on(SQL_2019_CU20, config);
    lab.spec.session_timeout_s = 120;
    tweak(&mut lab.spec);
    let s = create(&lab, MemoryJournal::new(), options(seed)).expect("scenario step");
    s.record_assessment(ready()).await.expect("scenario step");
    s.start().await.expect("scenario step");
    workload(&lab, Side::SqlServer, 5.0);
    // Long enough for the instance's first full backup.
    pass(&lab, Duration::from_secs(15 * 60));
    let link = lab.spec.link.clone();
    lab.sim.with_world_mut(|w| {
        w.set_dag_replica_mode(&link, Side::SqlServer, AvailabilityMode::SynchronousCommit);
        w.set_dag_replica_mode(
            &link,
            Side::ManagedInstance,
            AvailabilityMode::SynchronousCommit,
        );
        if let Some(l) = w.instance.links.get_mut(&link) {
            l.replication_mode = AvailabilityMode::SynchronousCommit;
        }
    });
    pass(&lab, Duration::from_secs(30));
    lab.sim.partition(Duration::from_secs(10 * 60));
    pass(&lab, Duration::from_secs(1));
    lab.sim.stop_workload();
    let result = s.cutover(CutoverOptions::default()).await;
    trace(&s, &result, &lab);
    outcome(
        &lab,
        &s,
        result.is_ok() && s.machine().state() == &State::Completed,
    )
}

/// A planned failover through ARM (SQL Server 2022 CU12) over a long-distance link (100 ms)
/// while the application still writes 4 transactions per second and the instance's ARM
/// readings are fresh: LSNs are often equal at a single reading, and commits wait 100 ms for
/// the instance. The application is stopped three minutes into the failover. Only the
/// stability requirement (equal and unchanged across readings) keeps the failover from running
/// while commits are in flight.
pub async fn failover_while_the_application_still_writes(
    seed: u64,
    tweak: &dyn Fn(&mut LinkSpec),
) -> Outcome {
    failover_while_the_application_writes_at(seed, 4.0, tweak).await
}

/// [`failover_while_the_application_still_writes`] at `tps` transactions per second: at one
/// per second or less, the LSNs often stay unchanged for a second between commits, so only the
/// workload reading (client sessions still connected) keeps the window long.
pub async fn failover_while_the_application_writes_at(
    seed: u64,
    tps: f64,
    tweak: &dyn Fn(&mut LinkSpec),
) -> Outcome {
    let config = SimConfig {
        link_latency: Duration::from_millis(100),
        arm_reading_lag: Duration::ZERO,
        ..SimConfig::with_seed(seed)
    };
    let mut lab = lab_on(SQL_2022_CU12, config);
    tweak(&mut lab.spec);
    let s = create(&lab, MemoryJournal::new(), options(seed)).expect("scenario step");
    s.record_assessment(ready()).await.expect("scenario step");
    s.start().await.expect("scenario step");
    workload(&lab, Side::SqlServer, tps);
    pass(&lab, Duration::from_secs(60));
    lab.sim
        .stop_workload_at(lab.sim.now().plus(Duration::from_secs(180)));
    let result = s.failover(FailoverKind::Planned).await;
    trace(&s, &result, &lab);
    lab.sim.stop_workload();
    outcome(
        &lab,
        &s,
        result.is_ok()
            && matches!(
                s.machine().state(),
                State::FailedOver {
                    primary: Side::ManagedInstance,
                    ..
                }
            ),
    )
}

/// What the run left behind, by the data, and whether it `finished` as the test expects.
fn outcome<J: milink_core::ports::Journal + 'static>(
    lab: &milink_core::sim::Lab,
    s: &crate::SimSession<J>,
    finished: bool,
) -> Outcome {
    let db = &lab.database;
    Outcome {
        missing_on_instance: lab
            .sim
            .missing_transactions(db, Side::SqlServer, Side::ManagedInstance)
            .0,
        lost: lab.sim.lost_transactions(db),
        reported: s.status().data_loss.len(),
        finished,
    }
}

/// With `MILINK_TEST_TRACE` set, prints how a scenario ended.
fn trace<J: milink_core::ports::Journal + 'static>(
    s: &crate::SimSession<J>,
    result: &Result<(), milink_core::SessionError>,
    lab: &milink_core::sim::Lab,
) {
    if std::env::var_os("MILINK_TEST_TRACE").is_some() {
        eprintln!(
            "{result:?}; state {:?}; workload {:?}; lost {}",
            s.machine().state().name(),
            lab.sim.workload_stats(),
            lab.sim.lost_transactions(&lab.database)
        );
    }
}

impl Outcome {
    /// Nothing lost by any measure, nothing reported.
    pub fn clean(&self) -> bool {
        self.missing_on_instance == 0 && self.lost == 0 && self.reported == 0
    }
}
