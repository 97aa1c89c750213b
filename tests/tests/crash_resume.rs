//! A crash of the orchestrator after any journal record, then a resume from the journal, ends
//! the same as a run without a crash: the link fails over with every row on the instance. On
//! both routes: T-SQL (direct) and Azure Arc, whose operations are never started twice.

use std::sync::atomic::Ordering;
use std::time::Duration;

use milink_core::lifecycle::{FailoverKind, Side, State};
use milink_core::ports::Journal;
use milink_core::sim::{CrashPoint, CrashingJournal, DurationRange, Lab, SimConfig};
use milink_core::{LinkSession, MemoryJournal, SessionError};
use milink_tests::route::{ROUTES, Route, RouteSession, Routed};
use milink_tests::{options, ready, workload};

/// The lab with a small ToyStore and quick ARM operations, so a whole run has a short journal
/// (the same steps as the full lab, fewer probes while waiting).
fn small_lab(seed: u64) -> Lab {
    let mut config = SimConfig::with_seed(seed);
    config.arm.put_link = DurationRange::secs(15, 25);
    config.arm.put_trust_certificate = DurationRange::secs(5, 10);
    config.arm.set_replication_mode = DurationRange::secs(5, 10);
    config.connect_delay = DurationRange::secs(5, 10);
    let mut topology = Lab::tailspin_topology(config.start).unwrap();
    for d in &mut topology.source.databases {
        d.size_mb = 64;
    }
    let db = milink_core::names::DatabaseName::new(Lab::TOYSTORE).unwrap();
    let mut lab = Lab::from_topology(topology, config, &db).unwrap();
    lab.spec.options.stability_window = Duration::from_secs(10);
    lab
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Assess,
    Start,
    Failover,
}

const SCRIPT: [Op; 3] = [Op::Assess, Op::Start, Op::Failover];

async fn perform<J: Journal + 'static>(
    s: &RouteSession<J>,
    lab: &Lab,
    op: Op,
) -> Result<(), SessionError> {
    match op {
        Op::Assess => s.record_assessment(ready()).await,
        Op::Start => {
            workload(lab, Side::SqlServer, 8.0);
            s.start().await
        }
        Op::Failover => {
            lab.sim.stop_workload();
            s.failover(FailoverKind::Planned).await
        }
    }
}

fn reached(op: Op, state: &State) -> bool {
    match op {
        Op::Assess => !matches!(state, State::Draft),
        Op::Start => matches!(state, State::Replicating { .. }),
        Op::Failover => matches!(state, State::FailedOver { .. }),
    }
}

#[derive(Debug, PartialEq)]
struct Outcome {
    state: State,
    primary: Option<Side>,
    parity: bool,
    lost: u64,
    /// Arc's createManagedInstanceLink and failoverMiLink started (0 on the direct route).
    arc_started: (u32, u32),
}

/// Runs the script on `route`, crashing at `crash` if given; returns the outcome and the
/// journal length.
async fn run(route: Route, seed: u64, crash: Option<CrashPoint>) -> (Outcome, usize, bool) {
    run_on(Routed::new(small_lab(seed), route).await, seed, crash)
        .await
        .0
}

/// Runs the script on `routed`'s lab; also returns the journal.
async fn run_on(
    routed: Routed,
    seed: u64,
    crash: Option<CrashPoint>,
) -> (
    (Outcome, usize, bool),
    Vec<milink_core::journal::JournalRecord>,
) {
    let inner = MemoryJournal::new();
    let point = crash.unwrap_or(CrashPoint::AfterRecord(u64::MAX));
    let journal = CrashingJournal::new(inner.clone(), point);
    let crashed = journal.crashed_flag();
    let lab = &routed.lab;
    let mut session = match routed.create(journal, options(seed)) {
        Ok(s) => Some(s),
        Err(e) => panic!("create: {e}"),
    };
    let mut resumed = None;
    let mut i = 0;
    while i < SCRIPT.len() {
        let op = SCRIPT[i];
        let result = match (&session, &resumed) {
            (Some(s), _) => perform(s, lab, op).await,
            (None, Some(r)) => perform(r, lab, op).await,
            (None, None) => unreachable!(),
        };
        match result {
            Ok(()) => i += 1,
            Err(SessionError::Journal(_))
                if crashed.load(Ordering::SeqCst) && resumed.is_none() =>
            {
                // The process died here. A new one opens the journal and continues.
                session = None;
                let r = routed.resume(inner.clone(), options(seed + 1000)).unwrap();
                // One resume finishes the interrupted operation. A re-issued link PUT that meets
                // the first one still running (409 ConflictingServerOperation) waits it out.
                r.resume().await.unwrap_or_else(|e| {
                    panic!("resume after {crash:?} on {:?}: {e}", routed.route)
                });
                // A command the crash kept out of the journal is given again.
                if !reached(op, r.machine().state()) {
                    perform(&r, lab, op)
                        .await
                        .unwrap_or_else(|e| panic!("{op:?} again after {crash:?}: {e}"));
                }
                resumed = Some(r);
                i += 1;
            }
            Err(e) => panic!("{op:?} with crash {crash:?}: {e}"),
        }
    }
    let state = match (&session, &resumed) {
        (Some(s), _) => s.machine().state().clone(),
        (None, Some(r)) => r.machine().state().clone(),
        (None, None) => unreachable!(),
    };
    lab.sim.advance(Duration::from_secs(5));
    let outcome = Outcome {
        state,
        primary: lab.sim.with_world(|w| w.primary_of(&lab.spec.link)),
        parity: lab.sim.parity(&lab.database).unwrap().all_match(),
        lost: lab.sim.lost_transactions(&lab.database),
        arc_started: lab.sim.with_world(|w| {
            (
                w.arc
                    .started("SqlServerAvailabilityGroups_CreateManagedInstanceLink"),
                w.arc.started("SqlServerAvailabilityGroups_failoverMiLink"),
            )
        }),
    };
    let records = inner.snapshot();
    ((outcome, records.len(), resumed.is_some()), records)
}

async fn a_crash_after_any_journal_record_resumes_to_the_same_outcome_on(route: Route) {
    let (reference, records, _) = run(route, 21, None).await;
    assert_eq!(
        reference,
        Outcome {
            state: State::FailedOver {
                primary: Side::ManagedInstance,
                data_loss_possible: false
            },
            primary: Some(Side::ManagedInstance),
            parity: true,
            lost: 0,
            arc_started: match route {
                Route::Direct => (0, 0),
                Route::Arc => (1, 1),
            },
        }
    );
    assert!(records > 20, "{route:?}: {records}");
    for k in 1..records as u64 {
        for point in [
            CrashPoint::AfterRecord(k),
            CrashPoint::BeforeEffectsOf(k + 1),
        ] {
            let (outcome, _, resumed) = run(route, 21, Some(point)).await;
            assert!(resumed, "{route:?}: {point:?} did not crash");
            assert_eq!(outcome, reference, "{route:?}: {point:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_any_journal_record_resumes_to_the_same_outcome() {
    for route in ROUTES {
        a_crash_after_any_journal_record_resumes_to_the_same_outcome_on(route).await;
    }
}

#[tokio::test]
async fn a_crash_before_the_link_operation_is_journaled_resumes_on_the_full_lab() {
    use milink_core::journal::JournalEntry;
    use milink_core::lifecycle::{Input, Observation};
    let ((reference, _, _), records) = run_on(
        Routed::new(milink_tests::lab(22), Route::Direct).await,
        22,
        None,
    )
    .await;
    // The record that would have saved the link's operation URL.
    let accepted = records
        .iter()
        .find(|r| {
            matches!(&r.entry, JournalEntry::Input { input: Input::Observed { result: Ok(Observation::OperationAccepted(op)), .. } }
                if op.url.contains("distributedAvailabilityGroupsOperationResults"))
        })
        .unwrap()
        .seq;
    // The PUT was accepted by ARM, the process died before writing its URL down. The re-sent
    // PUT meets the first one still running (one to three minutes) and waits it out.
    let ((outcome, _, resumed), records) = run_on(
        Routed::new(milink_tests::lab(22), Route::Direct).await,
        22,
        Some(CrashPoint::AfterRecord(accepted)),
    )
    .await;
    assert!(resumed);
    assert_eq!(outcome, reference);
    assert!(
        !records.iter().any(|r| matches!(
            &r.entry,
            JournalEntry::Input {
                input: Input::Observed { result: Err(e), .. }
            } if e.code.starts_with("arm:409")
        )),
        "a 409 reached the machine"
    );
}
