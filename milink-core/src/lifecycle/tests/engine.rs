//! The engine: what a driver is told to do, and when an operation is over.

use super::*;

const HOUR: Duration = Duration::from_secs(3600);

/// An engine on `spec` at T0, with a harness for readings of the same spec.
fn engine(spec: LinkSpec) -> (Engine, H) {
    let h = H::new(spec.clone());
    (Engine::new(Machine::new(spec).unwrap(), None), h)
}

fn accept(e: &mut Engine, input: Input, now: Timestamp) {
    assert_eq!(e.handle(input, now), Ok(Handled::Accepted));
}

/// What a healthy pair of servers answers in the engine's current phase.
fn answer(e: &Engine, h: &H, effect: &Effect) -> Observation {
    match effect {
        Effect::Probe {
            probe: Probe::Link, ..
        } => match e.machine().state().phase() {
            Phase::CatchingUp => h.sync_equal(Side::SqlServer, 1000),
            Phase::VerifyingRoles | Phase::FailedOver => {
                h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary))
            }
            _ => h.healthy(),
        },
        other => default_answer(other),
    }
}

/// The loop of the crate docs, answering every effect with success; returns the outcome, the
/// events seen and the time it ended.
fn drive(
    e: &mut Engine,
    h: &H,
    command: Command,
    mut now: Timestamp,
) -> (Result<(), Ended>, Vec<Event>, Timestamp) {
    let mut inputs = e.begin(Some(command), now, HOUR);
    let mut events = Vec::new();
    for _ in 0..10_000 {
        for input in inputs.drain(..) {
            e.handle(input, now).unwrap();
            while let Some(event) = e.poll_event() {
                events.push(event);
            }
        }
        match e.poll(now) {
            Poll::Perform(effect) => {
                let result = Ok(answer(e, h, &effect));
                inputs.push(Input::Observed {
                    step: effect.step(),
                    result,
                });
            }
            Poll::Submit(input) => inputs.push(input),
            Poll::Sleep(until) => now = now.max(until),
            Poll::Done(outcome) => return (outcome, events, now),
        }
    }
    panic!("the engine never said the operation was over");
}

fn assessed(e: &mut Engine) {
    let inputs = e.begin(
        Some(Command::RecordAssessment(AssessmentOutcome {
            blockers: vec![],
        })),
        t(T0),
        HOUR,
    );
    for input in inputs {
        accept(e, input, t(T0));
    }
}

#[test]
fn nothing_asked_is_done_at_once() {
    let (mut e, _) = engine(two_way());
    assert_eq!(e.operation_status(), OperationStatus::Idle);
    assert!(e.begin(None, t(T0), HOUR).is_empty());
    assert_eq!(e.poll(t(T0)), Poll::Done(Ok(())));
}

#[test]
fn a_link_is_created_and_a_planned_failover_runs_through_the_engine_alone() {
    let (mut e, h) = engine(two_way());
    assessed(&mut e);
    assert_eq!(
        e.poll_event(),
        Some(Event::StateChanged {
            from: Phase::Draft,
            to: Phase::Assessed
        })
    );
    assert_eq!(e.poll(t(T0)), Poll::Done(Ok(())));
    let (outcome, events, now) = drive(&mut e, &h, Command::Start, t(T0));
    assert_eq!(outcome, Ok(()));
    assert_eq!(e.machine().state().phase(), Phase::Replicating);
    assert_eq!(
        e.operation_status(),
        OperationStatus::Reached {
            operation: Operation::Start
        }
    );
    assert!(events.contains(&Event::StateChanged {
        from: Phase::Seeding,
        to: Phase::Replicating
    }));

    let (outcome, events, end) = drive(&mut e, &h, Command::Failover(FailoverKind::Planned), now);
    assert_eq!(outcome, Ok(()));
    assert_eq!(e.machine().state().phase(), Phase::FailedOver);
    assert_eq!(e.primary(), Side::ManagedInstance);
    // The gate's readings, as events: equal LSNs held for the stability window before the
    // role change.
    let held: Vec<Duration> = events
        .iter()
        .filter_map(|ev| match ev {
            Event::Progress(ProgressEvent::CatchUp {
                sql_server: Some(a),
                managed_instance: Some(b),
                equal_for: Some(d),
                ..
            }) if a == b => Some(*d),
            _ => None,
        })
        .collect();
    assert_eq!(held.first(), Some(&Duration::ZERO), "{events:?}");
    assert!(
        // The engine's driver answers the workload reading quiet: the short window.
        held.last().unwrap() >= &two_way().options.quiet_stability_window.unwrap(),
        "{held:?}"
    );
    assert!(end > now);
}

#[test]
fn an_effect_handed_out_and_never_answered_is_reissued_by_the_next_begin() {
    let (mut e, _) = engine(two_way());
    assessed(&mut e);
    for input in e.begin(Some(Command::Start), t(T0), HOUR) {
        accept(&mut e, input, t(T0));
    }
    let Poll::Perform(first) = e.poll(t(T0)) else {
        panic!("the first step is performed")
    };
    // The driver is dropped before the answer: the next drive must not wait forever.
    assert_eq!(e.poll_effect(), None);
    assert_eq!(e.begin(None, t(T0), HOUR), vec![Input::Resume]);
    accept(&mut e, Input::Resume, t(T0));
    assert_eq!(e.poll(t(T0)), Poll::Perform(first));
}

#[test]
fn a_stale_observation_changes_nothing() {
    let (mut e, _) = engine(two_way());
    assessed(&mut e);
    for input in e.begin(Some(Command::Start), t(T0), HOUR) {
        accept(&mut e, input, t(T0));
    }
    let before = e.machine().clone();
    let stale = Input::Observed {
        step: StepId(999),
        result: Ok(Observation::Done),
    };
    assert_eq!(e.handle(stale, t(T0)), Ok(Handled::Stale));
    assert_eq!(e.machine(), &before);
    assert!(matches!(e.poll(t(T0)), Poll::Perform(_)));
}

#[test]
fn a_failure_ends_the_operation_with_its_error() {
    let (mut e, _) = engine(two_way());
    assessed(&mut e);
    for input in e.begin(Some(Command::Start), t(T0), HOUR) {
        accept(&mut e, input, t(T0));
    }
    let Poll::Perform(effect) = e.poll(t(T0)) else {
        panic!("a step to perform")
    };
    let error = step_error(false);
    accept(
        &mut e,
        Input::Observed {
            step: effect.step(),
            result: Err(error.clone()),
        },
        t(T0),
    );
    assert_eq!(e.poll(t(T0)), Poll::Done(Err(Ended::Failed(error.clone()))));
    assert_eq!(
        e.operation_status(),
        OperationStatus::Failed {
            operation: Operation::Start,
            error: error.clone(),
            retryable: false
        }
    );
    assert_eq!(e.last_error(), Some(error));
    // Not retryable: continuing asks nothing of the machine.
    assert!(e.begin(None, t(T0), HOUR).is_empty());
}

#[test]
fn the_time_budget_ends_a_running_operation() {
    let (mut e, _) = engine(two_way());
    assessed(&mut e);
    for input in e.begin(Some(Command::Start), t(T0), Duration::from_secs(60)) {
        accept(&mut e, input, t(T0));
    }
    assert!(matches!(e.poll(t(T0)), Poll::Perform(_)));
    assert_eq!(
        e.poll(t(T0 + 60_000)),
        Poll::Done(Err(Ended::TimedOut)),
        "the step in flight is not answered and the budget is spent"
    );
}

#[test]
fn a_wait_is_a_sleep_then_a_tick_and_an_early_wake_sleeps_again() {
    let (mut e, h) = engine(two_way());
    assessed(&mut e);
    let (_, _, now) = drive(&mut e, &h, Command::Start, t(T0));
    // Replicating: the steady state's reading is in flight; a failover first switches modes.
    for input in e.begin(Some(Command::Failover(FailoverKind::Planned)), now, HOUR) {
        accept(&mut e, input, now);
    }
    let until = loop {
        match e.poll(now) {
            Poll::Perform(effect) => {
                let result = Ok(answer(&e, &h, &effect));
                accept(
                    &mut e,
                    Input::Observed {
                        step: effect.step(),
                        result,
                    },
                    now,
                );
            }
            Poll::Sleep(until) => break until,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(Some(until), e.deadline());
    assert_eq!(e.poll(now), Poll::Sleep(until), "woken early: sleep again");
    assert_eq!(e.poll(until), Poll::Submit(Input::Tick));
}

#[test]
fn a_split_brain_stops_every_operation_but_a_repair() {
    let (mut e, h) = engine(two_way());
    assessed(&mut e);
    let (_, _, now) = drive(&mut e, &h, Command::Start, t(T0));
    accept(&mut e, Input::Command(Command::Refresh), now);
    let probe = e.poll_effect().unwrap();
    accept(
        &mut e,
        Input::Observed {
            step: probe.step(),
            result: Ok(h.both_primary()),
        },
        now,
    );
    assert!(e.is_split_brain());
    assert_eq!(
        e.operation_status(),
        OperationStatus::SplitBrain {
            operation: Operation::Start
        }
    );
    assert_eq!(e.poll(now), Poll::Done(Err(Ended::SplitBrain)));
    for input in e.begin(
        Some(Command::RepairSplitBrain {
            keep: Side::SqlServer,
        }),
        now,
        HOUR,
    ) {
        accept(&mut e, input, now);
    }
    assert!(matches!(
        e.operation_status(),
        OperationStatus::Running {
            operation: Operation::RepairSplitBrain
        }
    ));
    assert!(matches!(e.poll(now), Poll::Perform(_)));
}
