//! The main job end to end on the simulator: the real session driver and lifecycle machine
//! against the simulated TailspinSql and tailspin-mi.

use std::time::Duration;

use milink_core::lifecycle::{
    CutoverOptions, DataLossAcknowledgement, FailoverKind, ReplicaRole, Side, State,
};
use milink_core::ports::ManagedInstance;
use milink_core::sim::{
    BackupKind, Call, EventKind, Fault, InstanceCall, ParityReport, SimConfig, SourceCall, Trigger,
};
use milink_core::{LinkSession, MemoryJournal, SessionError, SessionEvent};
use milink_tests::route::{ROUTES, Route, Routed};
use milink_tests::{create, lab, lab_with, options, pass, ready, workload};

fn state<S, M, J>(s: &milink_core::Session<S, M, J>) -> State
where
    S: milink_core::ports::SourceServer + 'static,
    M: ManagedInstance + 'static,
    J: milink_core::ports::Journal + 'static,
{
    s.machine().state().clone()
}

/// Runs `test` on the lab of `seed` on each route (T-SQL, and Azure Arc over HTTPS).
macro_rules! on_each_route {
    ($seed:expr, |$routed:ident| $body:block) => {
        for route in ROUTES {
            let $routed = Routed::new(lab($seed), route).await;
            $body
        }
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn happy_path_links_replicates_and_fails_over_without_losing_a_row() {
    on_each_route!(1, |routed| {
        happy_path_on(&routed).await;
    });
}

async fn happy_path_on(routed: &Routed) {
    let lab = &routed.lab;
    let s = routed.create(MemoryJournal::new(), options(1)).unwrap();
    s.record_assessment(ready()).await.unwrap();
    workload(lab, Side::SqlServer, 15.0);
    s.start().await.unwrap();
    assert!(matches!(state(&s), State::Replicating { .. }));
    pass(lab, Duration::from_secs(180));
    let committed = lab.sim.stop_workload().committed;
    assert!(committed > 2000, "{committed}");
    let before = lab.sim.snapshot(Side::SqlServer, &lab.database).unwrap();
    s.failover(FailoverKind::Planned).await.unwrap();
    assert_eq!(
        state(&s),
        State::FailedOver {
            primary: Side::ManagedInstance,
            data_loss_possible: false
        }
    );
    let after = lab
        .sim
        .snapshot(Side::ManagedInstance, &lab.database)
        .unwrap();
    let parity = ParityReport::compare(&before, &after);
    assert!(parity.all_match(), "{parity:?}");
    assert_eq!(parity.tables.len(), 4);
    // The application was redirected: writes now go to the instance and are accepted there.
    workload(lab, Side::ManagedInstance, 5.0);
    pass(lab, Duration::from_secs(30));
    let stats = lab.sim.stop_workload();
    assert!(stats.committed > 50 && stats.refused == 0, "{stats:?}");
    assert_eq!(
        lab.sim
            .write(Side::SqlServer, &lab.database, 1)
            .unwrap_err()
            .code(),
        "sql:976"
    );
    assert_eq!(lab.sim.lost_transactions(&lab.database), 0);
}

#[tokio::test]
async fn failback_returns_to_sql_server_with_the_rows_written_on_the_instance() {
    let lab = lab(2);
    let s = create(&lab, MemoryJournal::new(), options(2)).unwrap();
    s.record_assessment(ready()).await.unwrap();
    s.start().await.unwrap();
    s.failover(FailoverKind::Planned).await.unwrap();
    workload(&lab, Side::SqlServer, 10.0);
    // The redirect hook moved the workload when the instance became primary: here it is
    // started on SQL Server and refused there, then moved by hand as an application would.
    pass(&lab, Duration::from_secs(5));
    assert!(lab.sim.workload_stats().refused > 0);
    lab.sim.redirect_workload(Side::ManagedInstance);
    pass(&lab, Duration::from_secs(120));
    lab.sim.stop_workload();
    let on_mi = lab
        .sim
        .snapshot(Side::ManagedInstance, &lab.database)
        .unwrap();
    s.failback().await.unwrap();
    assert!(matches!(state(&s), State::Replicating { .. }));
    lab.sim.with_world(|w| {
        assert_eq!(w.primary_of(&lab.spec.link), Some(Side::SqlServer));
    });
    let back = lab.sim.snapshot(Side::SqlServer, &lab.database).unwrap();
    assert!(ParityReport::compare(&on_mi, &back).all_match());
    lab.sim.write(Side::SqlServer, &lab.database, 1).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_failover_sets_and_reports_the_data_loss_flag() {
    on_each_route!(3, |routed| {
        forced_failover_on(&routed).await;
    });
}

async fn forced_failover_on(routed: &Routed) {
    let lab = &routed.lab;
    let s = routed.create(MemoryJournal::new(), options(3)).unwrap();
    s.record_assessment(ready()).await.unwrap();
    s.start().await.unwrap();
    // SQL Server's site is cut off while the application keeps writing there.
    workload(lab, Side::SqlServer, 20.0);
    pass(lab, Duration::from_secs(30));
    lab.sim.partition(Duration::from_secs(3600));
    pass(lab, Duration::from_secs(60));
    lab.sim.stop_workload();
    // Without an acknowledgement naming the link, nothing happens.
    let refused = s.failover(FailoverKind::Forced(None)).await.unwrap_err();
    assert!(refused.is_caller_error(), "{refused}");
    let ack = DataLossAcknowledgement {
        link: lab.spec.link.to_string(),
    };
    match s.failover(FailoverKind::Forced(Some(ack))).await {
        // The old primary is still up behind the partition: both sides are primary. Arc
        // reads SQL Server through Azure, across the partition, and so always sees it.
        Err(SessionError::SplitBrain) if routed.route == Route::Arc => {
            // Arc has no operation that demotes SQL Server: refused, nothing sent.
            let refused = s
                .repair_split_brain(Side::ManagedInstance)
                .await
                .unwrap_err();
            assert!(refused.to_string().contains("Arc route"), "{refused}");
            assert_eq!(
                lab.sim
                    .with_world(|w| w.arc.started("SqlServerAvailabilityGroups_failoverMiLink")),
                1
            );
            return;
        }
        Err(SessionError::SplitBrain) => {
            s.repair_split_brain(Side::ManagedInstance).await.unwrap();
        }
        other => other.unwrap(),
    }
    assert_eq!(
        state(&s),
        State::FailedOver {
            primary: Side::ManagedInstance,
            data_loss_possible: true
        }
    );
    let lost = lab.sim.lost_transactions(&lab.database);
    assert!(
        lost > 500,
        "the minute behind the partition is lost: {lost}"
    );
    lab.sim.with_world(|w| {
        assert_eq!(
            w.role(Side::SqlServer, &lab.spec.link),
            Some(ReplicaRole::Secondary)
        );
    });
    // When the network heals, SQL Server drops what the instance never had and follows it.
    pass(lab, Duration::from_secs(3700));
    assert!(lab.sim.parity(&lab.database).unwrap().all_match());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cutover_removes_the_link_after_the_first_full_backup() {
    on_each_route!(4, |routed| {
        cutover_on(&routed).await;
    });
}

async fn cutover_on(routed: &Routed) {
    let lab = &routed.lab;
    let arc = routed.route == Route::Arc;
    let s = routed.create(MemoryJournal::new(), options(4)).unwrap();
    s.record_assessment(ready()).await.unwrap();
    workload(lab, Side::SqlServer, 10.0);
    s.start().await.unwrap();
    pass(lab, Duration::from_secs(60));
    lab.sim.stop_workload();
    let before = lab.sim.snapshot(Side::SqlServer, &lab.database).unwrap();
    // Arc's deleteMiLink leaves the availability group, and the Arc route cannot drop it.
    s.cutover(CutoverOptions {
        drop_availability_group: !arc,
    })
    .await
    .unwrap();
    assert_eq!(state(&s), State::Completed);
    let mi = lab.sim.managed_instance();
    assert!(!mi.link_state(&lab.spec.link).await.unwrap().exists);
    lab.sim.with_world(|w| {
        assert!(w.source.dags.is_empty(), "the DAG is dropped");
        assert_eq!(
            w.source.ags.is_empty(),
            !arc,
            "the AG is dropped on the direct route"
        );
        // The link was removed only after a full backup that followed the role change.
        let promoted = w
            .events
            .iter()
            .rev()
            .find(|e| {
                matches!(
                    e.kind,
                    EventKind::RoleChanged {
                        side: Side::ManagedInstance,
                        role: ReplicaRole::Primary,
                        ..
                    }
                )
            })
            .unwrap()
            .at;
        let removed = w
            .events
            .iter()
            .find(|e| {
                matches!(
                    e.kind,
                    EventKind::LinkRemoved {
                        side: Side::ManagedInstance,
                        ..
                    }
                )
            })
            .unwrap()
            .at;
        assert!(
            w.instance.backups.iter().any(|b| b.kind == BackupKind::Full
                && b.finished > promoted
                && b.finished <= removed)
        );
    });
    let after = lab
        .sim
        .snapshot(Side::ManagedInstance, &lab.database)
        .unwrap();
    assert!(ParityReport::compare(&before, &after).all_match());
    lab.sim
        .write(Side::ManagedInstance, &lab.database, 2)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_before_failover_leaves_sql_server_as_it_was() {
    on_each_route!(5, |routed| {
        cancel_on(&routed).await;
    });
}

async fn cancel_on(routed: &Routed) {
    let lab = &routed.lab;
    let before = lab.sim.snapshot(Side::SqlServer, &lab.database).unwrap();
    let s = routed.create(MemoryJournal::new(), options(5)).unwrap();
    s.record_assessment(ready()).await.unwrap();
    s.start().await.unwrap();
    s.cancel().await.unwrap();
    assert_eq!(state(&s), State::Cancelled);
    lab.sim.with_world(|w| {
        assert!(w.source.dags.is_empty());
        assert!(w.instance.links.is_empty());
        // Arc's deleteMiLink leaves SQL Server's availability group (with the databases in it).
        assert_eq!(w.source.ags.is_empty(), routed.route == Route::Direct);
    });
    let after = lab.sim.snapshot(Side::SqlServer, &lab.database).unwrap();
    assert_eq!(before.tables, after.tables);
    assert_eq!(before.end_lsn, after.end_lsn);
    lab.sim.write(Side::SqlServer, &lab.database, 1).unwrap();
}

#[tokio::test]
async fn a_disconnect_during_seeding_restarts_it_and_the_link_still_completes() {
    let lab = lab(6);
    lab.sim.inject(
        Trigger::SeedingReaches {
            database: lab.database.clone(),
            percent: 60,
        },
        Fault::Partition {
            duration: Duration::from_secs(120),
        },
    );
    let s = create(&lab, MemoryJournal::new(), options(6)).unwrap();
    s.record_assessment(ready()).await.unwrap();
    workload(&lab, Side::SqlServer, 5.0);
    s.start().await.unwrap();
    lab.sim.stop_workload();
    let events = lab.sim.events();
    assert!(events.iter().any(|e| matches!(
        e.kind,
        EventKind::SeedingInterrupted { percent, .. } if percent >= 60
    )));
    assert!(
        events
            .iter()
            .any(|e| matches!(e.kind, EventKind::SeedingStarted { attempt: 2, .. }))
    );
    pass(&lab, Duration::from_secs(10));
    assert!(lab.sim.parity(&lab.database).unwrap().all_match());
}

#[tokio::test]
async fn a_log_backup_during_seeding_fails_the_link_at_once_and_recreating_it_recovers() {
    let lab = lab(7);
    lab.sim.inject(
        Trigger::SeedingReaches {
            database: lab.database.clone(),
            percent: 40,
        },
        Fault::LogBackup {
            database: lab.database.clone(),
        },
    );
    // Without fail-fast the machine would wait for the six-day seeding timeout; an hour bounds
    // this test instead.
    let opts = milink_core::SessionOptions {
        operation_timeout: Duration::from_secs(3600),
        ..options(7)
    };
    let s = create(&lab, MemoryJournal::new(), opts.clone()).unwrap();
    s.record_assessment(ready()).await.unwrap();
    workload(&lab, Side::SqlServer, 5.0);
    let started = lab.sim.now();
    let failed = match s.start().await {
        Err(SessionError::StepFailed(e)) => e,
        other => panic!("start must fail on 1412, got {other:?}"),
    };
    let failed_at = lab.sim.now();
    assert_eq!(failed.code, "sql:1412", "{failed:?}");
    assert!(!failed.retryable, "re-probing cannot help: {failed:?}");
    for recovery in [
        "Cancel the link",
        "create the link again",
        "log backups",
        "12381",
    ] {
        assert!(
            failed.message.contains(recovery),
            "{recovery}: {}",
            failed.message
        );
    }
    // The failure arrives with the first probe after the instance reports it, minutes into
    // seeding, not at the seeding timeout days later.
    let reported = lab
        .sim
        .events()
        .iter()
        .find(|e| matches!(e.kind, EventKind::SeedingFailed { code: 1412, .. }))
        .map(|e| e.at)
        .expect("the simulated instance fails the seeding with 1412");
    assert!(
        failed_at.since(reported) <= Duration::from_secs(60),
        "failed {:?} after the instance reported it",
        failed_at.since(reported)
    );
    assert!(
        failed_at.since(started) <= Duration::from_secs(3600),
        "start ran {:?}",
        failed_at.since(started)
    );
    let seq = s.status().journal_records;
    // Resume would only probe the same failure again: it returns the failure, changing nothing.
    let again = s.resume().await.unwrap_err();
    assert!(!again.is_transient(), "{again}");
    assert_eq!(s.status().journal_records, seq);
    assert!(matches!(state(&s), State::Failed { .. }));
    // The documented recovery: cancel removes the link (and the DAG and AG), a new link seeds.
    s.cancel().await.unwrap();
    assert_eq!(state(&s), State::Cancelled);
    lab.sim.with_world(|w| {
        assert!(w.instance.links.is_empty());
        assert!(w.source.dags.is_empty() && w.source.ags.is_empty());
    });
    let again = create(&lab, MemoryJournal::new(), opts).unwrap();
    again.record_assessment(ready()).await.unwrap();
    again.start().await.unwrap();
    assert!(matches!(state(&again), State::Replicating { .. }));
    lab.sim.stop_workload();
    pass(&lab, Duration::from_secs(10));
    assert!(lab.sim.parity(&lab.database).unwrap().all_match());
}

#[tokio::test]
async fn trace_flag_12381_lets_seeding_survive_a_log_backup() {
    let lab = lab(8);
    lab.sim.set_trace_flag(12381, true);
    lab.sim.inject(
        Trigger::SeedingReaches {
            database: lab.database.clone(),
            percent: 40,
        },
        Fault::LogBackup {
            database: lab.database.clone(),
        },
    );
    let s = create(&lab, MemoryJournal::new(), options(8)).unwrap();
    s.record_assessment(ready()).await.unwrap();
    workload(&lab, Side::SqlServer, 5.0);
    s.start().await.unwrap();
    assert!(
        lab.sim
            .events()
            .iter()
            .any(|e| matches!(e.kind, EventKind::LogBackup { .. }))
    );
}

#[tokio::test]
async fn arm_429_and_5xx_and_a_dropped_connection_are_retried() {
    let lab = lab_with(SimConfig::with_seed(9));
    let put = Call::Instance(InstanceCall::PutLink);
    lab.sim.inject(
        Trigger::OnCall { call: put, nth: 1 },
        Fault::Throttle {
            retry_after: Duration::from_secs(20),
        },
    );
    lab.sim.inject(
        Trigger::OnCall { call: put, nth: 2 },
        Fault::ServerError { status: 503 },
    );
    lab.sim.inject(
        Trigger::OnCall {
            call: Call::Poll,
            nth: 2,
        },
        Fault::ServerError { status: 500 },
    );
    lab.sim.inject(
        Trigger::OnCall {
            call: Call::Instance(InstanceCall::PutServerTrustCertificate),
            nth: 1,
        },
        Fault::Busy,
    );
    lab.sim.inject(
        Trigger::OnCall {
            call: Call::Source(SourceCall::CreateAvailabilityGroup),
            nth: 1,
        },
        Fault::ConnectionDrop,
    );
    let s = create(&lab, MemoryJournal::new(), options(9)).unwrap();
    let mut events = s.subscribe();
    s.record_assessment(ready()).await.unwrap();
    s.start().await.unwrap();
    assert!(matches!(state(&s), State::Replicating { .. }));
    let mut retried = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let SessionEvent::StepRetrying { code, wait, .. } = e {
            retried.push((code, wait));
        }
    }
    let codes: Vec<&str> = retried.iter().map(|(c, _)| c.as_str()).collect();
    for expected in [
        "arm:429:SubscriptionTooManyRequests",
        "arm:503:TooManyRequests",
        "arm:500:GatewayInternalServerError",
        "arm:409:ManagedInstanceIsBusy",
        "io",
    ] {
        assert!(
            codes.contains(&expected),
            "{expected} not retried: {codes:?}"
        );
    }
    let throttled = retried
        .iter()
        .find(|(c, _)| c.starts_with("arm:429"))
        .unwrap();
    assert!(
        throttled.1 >= Duration::from_secs(20),
        "Retry-After honoured"
    );
    assert_eq!(lab.sim.with_world(|w| w.stats.faults_fired), 5);
}
