//! Property tests over random input sequences.

use proptest::prelude::*;

use super::*;

/// One random thing that happens to a machine.
#[derive(Debug, Clone)]
enum Act {
    /// A command: which one, and a payload selector.
    Command(u8, u8),
    /// An answer to the in-flight effect `pick % len`: `kind` picks success, error or nonsense,
    /// `variant` picks the observation.
    Answer { pick: u8, kind: u8, variant: u8 },
    /// An answer for a step that is not in flight.
    Stale(u64),
    /// Time passes by one of a few amounts, then a tick.
    Tick(u8),
    /// The clock jumps to the deadline, then a tick.
    TickAtDeadline,
    /// The driver restarts.
    Resume,
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        12 => (any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(pick, kind, variant)| Act::Answer { pick, kind, variant }),
        3 => (any::<u8>(), any::<u8>()).prop_map(|(c, p)| Act::Command(c, p)),
        2 => any::<u8>().prop_map(Act::Tick),
        3 => Just(Act::TickAtDeadline),
        1 => Just(Act::Resume),
        1 => (0u64..200).prop_map(Act::Stale),
    ]
}

fn command(h: &H, c: u8, p: u8) -> Command {
    match c % 10 {
        0 => Command::RecordAssessment(AssessmentOutcome { blockers: vec![] }),
        1 => Command::RecordAssessment(AssessmentOutcome {
            blockers: vec!["MultipleLogFiles".into()],
        }),
        2 => Command::Start,
        3 => Command::Failover(FailoverKind::Planned),
        4 => Command::Failover(FailoverKind::Forced(match p % 3 {
            0 => None,
            1 => Some(DataLossAcknowledgement {
                link: "someone-else".to_owned(),
            }),
            _ => Some(DataLossAcknowledgement {
                link: h.spec().link.to_string(),
            }),
        })),
        5 => Command::Failback,
        6 => Command::Cutover(CutoverOptions {
            drop_availability_group: p.is_multiple_of(2),
        }),
        7 => Command::RepairSplitBrain {
            keep: if p.is_multiple_of(2) {
                Side::SqlServer
            } else {
                Side::ManagedInstance
            },
        },
        8 => Command::Cancel,
        _ => Command::Retry,
    }
}

fn link_observation(h: &H, variant: u8) -> Observation {
    let initial = h.spec().initial_primary;
    match variant % 10 {
        0 => h.healthy(),
        1 => h.sync_equal(Side::SqlServer, 1000),
        2 => h.sync_equal(Side::ManagedInstance, 1000),
        3 => h.both_primary(),
        4 => h.roles(Side::ManagedInstance, None),
        5 => h.view(
            initial,
            AvailabilityMode::SynchronousCommit,
            SyncState::Synchronized,
            SyncHealth::Healthy,
            1000,
            999,
        ),
        6 => h.sync_equal(Side::SqlServer, 1000 + u128::from(variant)),
        7 => h.view(
            initial,
            AvailabilityMode::AsynchronousCommit,
            SyncState::NotSynchronizing,
            SyncHealth::NotHealthy,
            100,
            0,
        ),
        8 => h.view(
            initial,
            AvailabilityMode::AsynchronousCommit,
            SyncState::Reverting,
            SyncHealth::NotHealthy,
            100,
            0,
        ),
        _ => h.roles(Side::SqlServer, Some(ReplicaRole::Resolving)),
    }
}

fn answer(h: &H, effect: &Effect, kind: u8, variant: u8) -> Result<Observation, StepError> {
    match kind % 10 {
        0..=5 => Ok(match effect {
            Effect::Probe {
                probe: Probe::Link, ..
            } => link_observation(h, variant),
            Effect::Probe {
                probe: Probe::FirstFullBackups,
                ..
            } => h.backups(if variant.is_multiple_of(2) {
                Some(h.now)
            } else {
                None
            }),
            Effect::Instance { .. } if variant.is_multiple_of(3) => {
                Observation::OperationAccepted(op(u32::from(variant)))
            }
            Effect::PollOperation { .. } if variant.is_multiple_of(3) => {
                if variant.is_multiple_of(2) {
                    Observation::OperationRunning
                } else {
                    Observation::OperationRunningRetryAfter(Duration::from_millis(
                        u64::from(variant) * 700,
                    ))
                }
            }
            other => default_answer(other),
        }),
        6 | 7 => Err(step_error(true)),
        8 => Err(step_error(false)),
        _ => Ok(match variant % 5 {
            0 => Observation::Done,
            1 => Observation::OperationRunning,
            2 => Observation::PublicKey(vec![]),
            3 => Observation::OperationRunningRetryAfter(Duration::from_secs(2)),
            _ => Observation::FullBackups(vec![]),
        }),
    }
}

fn start(spec_pick: u8, start_pick: u8) -> H {
    let spec = match spec_pick % 4 {
        0 => two_way(),
        1 => one_way(),
        2 => reverse(),
        _ => spec_with(
            "16.0.4095.4",
            FailoverMode::Manual,
            Side::SqlServer,
            UpdatePolicy::SqlServer2022,
            &["ToyStore", "Customer360"],
        ),
    };
    let mut h = H::new(spec);
    match start_pick % 3 {
        0 => {}
        1 => h.create(),
        _ => {
            h.create();
            if h.spec().is_two_way() {
                h.planned_failover();
            }
        }
    }
    h
}

const ADVANCE_MS: [u64; 6] = [0, 1_000, 5_000, 60_000, 3_600_000, 7 * 24 * 3_600_000];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_input_sequences_keep_every_invariant(
        spec_pick in any::<u8>(),
        start_pick in any::<u8>(),
        acts in proptest::collection::vec(act(), 0..60),
    ) {
        let _ = take_seen();
        let mut h = start(spec_pick, start_pick);
        let mut steps = Vec::new();
        // Re-run the prefix's inputs to collect its steps for the replay check below.
        let mut replay_prefix = Machine::new(h.spec()).unwrap();
        for (input, now) in &h.journal {
            steps.push(replay_prefix.handle(input.clone(), *now).unwrap());
        }
        for a in acts {
            let input = match a {
                Act::Command(c, p) => Input::Command(command(&h, c, p)),
                Act::Answer { pick, kind, variant } => {
                    let in_flight = h.m.in_flight();
                    if in_flight.is_empty() {
                        Input::Tick
                    } else {
                        let effect = &in_flight[usize::from(pick) % in_flight.len()];
                        Input::Observed {
                            step: effect.step(),
                            result: answer(&h, effect, kind, variant),
                        }
                    }
                }
                Act::Stale(n) => Input::Observed {
                    step: StepId(n),
                    result: Ok(Observation::Done),
                },
                Act::Tick(n) => {
                    h.advance(Duration::from_millis(ADVANCE_MS[usize::from(n) % ADVANCE_MS.len()]));
                    Input::Tick
                }
                Act::TickAtDeadline => {
                    if let Some(d) = h.m.deadline()
                        && d > h.now
                    {
                        h.now = d;
                    }
                    Input::Tick
                }
                Act::Resume => Input::Resume,
            };
            let was_terminal = h.m.is_terminal();
            let stale = matches!(&input, Input::Observed { step, .. }
                if !h.m.in_flight().iter().any(|e| e.step() == *step));
            // `input` checks that a rejection leaves the machine unchanged.
            match h.input(input) {
                Ok(step) => {
                    prop_assert!(!was_terminal, "a terminal state accepted an input");
                    prop_assert!(!stale, "an observation for a step not in flight was accepted");
                    steps.push(step);
                }
                Err(rejected) => {
                    if was_terminal {
                        prop_assert_eq!(rejected.reason, RejectReason::Terminal);
                    } else if stale {
                        prop_assert_eq!(rejected.reason, RejectReason::UnknownStep);
                    }
                }
            }
            let json = serde_json::to_string(&h.m).unwrap();
            let back: Machine = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(&back, &h.m);
        }
        // Replaying the accepted inputs into a fresh machine gives the same machine and the
        // same effects.
        let mut replayed = Machine::new(h.spec()).unwrap();
        prop_assert_eq!(h.journal.len(), steps.len());
        for ((input, now), step) in h.journal.iter().zip(&steps) {
            let again = replayed.handle(input.clone(), *now);
            prop_assert_eq!(again.as_ref(), Ok(step));
        }
        prop_assert_eq!(&replayed, &h.m);
        // Every transition taken is an edge of the table.
        let table: BTreeSet<Triple> = EDGES.iter().map(|e| (e.from, e.input, e.to)).collect();
        for triple in take_seen() {
            prop_assert!(table.contains(&triple), "transition {:?} missing from EDGES", triple);
        }
    }
}
