//! The Arc route's scenarios: the same machine, with Arc's operations as the effects on SQL
//! Server's side. Each asserts what a user would notice: which calls go out, which are never
//! sent twice, and what is refused.

use super::scenarios::is_probe;
use super::*;
use crate::arc::ArcInstanceId;

/// [`two_way`] on the Arc route.
pub fn arc_spec() -> LinkSpec {
    LinkSpec {
        route: LinkRoute::Arc {
            instance: ArcInstanceId::from_parts("sub", "rg", "TailspinSql").unwrap(),
        },
        ..two_way()
    }
}

fn arc_effects(fx: &[Effect]) -> Vec<ArcLinkOp> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Arc { op, .. } => Some(op.clone()),
            _ => None,
        })
        .collect()
}

fn no_tsql_or_arm_change(fx: &[Effect]) {
    assert!(
        !fx.iter()
            .any(|e| matches!(e, Effect::Source { .. } | Effect::Instance { .. })),
        "the Arc route sent T-SQL or an ARM change: {fx:?}"
    );
}

fn polls_arc(fx: &[Effect], url: &OperationRef) -> bool {
    fx.iter()
        .any(|e| matches!(e, Effect::PollArc { operation, .. } if operation == url))
}

/// Draft → Replicating on the Arc route (the create answered at once).
pub fn arc_replicating() -> H {
    let mut h = H::new(arc_spec());
    h.create();
    h
}

pub fn arc_create_is_one_operation_followed_by_its_url_then_seeding() {
    let mut h = H::new(arc_spec());
    h.cmd(Command::RecordAssessment(AssessmentOutcome {
        blockers: vec![],
    }));
    let fx = h.cmd(Command::Start);
    assert_eq!(h.phase(), Phase::CreatingLinkThroughArc);
    assert_eq!(arc_effects(&fx), vec![ArcLinkOp::CreateLink]);
    no_tsql_or_arm_change(&fx);
    // Accepted: the URL is kept in the state and polled, never sent again.
    let fx = h.answer(Observation::OperationAccepted(op(7)));
    assert!(fx.is_empty());
    assert_eq!(
        h.m.state(),
        &State::CreatingLinkThroughArc {
            change: RoleChange::Accepted(op(7))
        }
    );
    let fx = h.tick_at_deadline();
    assert!(polls_arc(&fx, &op(7)), "{fx:?}");
    h.answer(Observation::OperationRunning);
    let fx = h.tick_at_deadline();
    assert!(polls_arc(&fx, &op(7)), "{fx:?}");
    assert!(arc_effects(&fx).is_empty(), "sent again: {fx:?}");
    // A crash while it runs: the resume polls the same operation.
    let fx = h.resume();
    assert!(polls_arc(&fx, &op(7)), "{fx:?}");
    assert!(arc_effects(&fx).is_empty());
    // Done: milink reads what it can observe (both sides' link) while seeding.
    let fx = h.answer(Observation::Done);
    assert_eq!(h.phase(), Phase::Seeding);
    assert!(is_probe(&fx, Probe::Link), "{fx:?}");
    let obs = h.healthy();
    h.answer(obs);
    assert_eq!(h.phase(), Phase::Replicating);
}

pub fn arc_create_whose_answer_was_lost_is_judged_by_a_reading() {
    let start = || {
        let mut h = H::new(arc_spec());
        h.cmd(Command::RecordAssessment(AssessmentOutcome {
            blockers: vec![],
        }));
        h.cmd(Command::Start);
        // The process dies before the answer is journaled.
        let fx = h.resume();
        assert!(
            is_probe(&fx, Probe::Link),
            "read before sending again: {fx:?}"
        );
        assert!(arc_effects(&fx).is_empty());
        h
    };
    // Nothing anywhere: it was never made; send it.
    let mut h = start();
    let fx = h.done();
    assert_eq!(arc_effects(&fx), vec![ArcLinkOp::CreateLink]);
    // Both sides have the link: it went through; no second create.
    let mut h = start();
    let obs = h.healthy();
    let fx = h.answer(obs);
    assert_eq!(h.phase(), Phase::Seeding);
    assert!(arc_effects(&fx).is_empty());
    // Half made (SQL Server's DAG, no link on the instance): Arc may still be running; read
    // again, never send a second create, and fail at the step's timeout.
    let mut h = start();
    let mut obs = h.healthy();
    if let Observation::Link(l) = &mut obs {
        l.instance = empty_side();
    }
    let fx = h.answer(obs);
    assert!(fx.is_empty());
    assert_eq!(h.phase(), Phase::CreatingLinkThroughArc);
    let fx = h.tick_at_deadline();
    assert!(is_probe(&fx, Probe::Link));
    h.time_out();
    assert_eq!(h.phase(), Phase::Failed);
    let (_, error) = h.m.state().failure().unwrap();
    assert!(
        error.message.contains("createManagedInstanceLink"),
        "{error:?}"
    );
}

pub fn arc_refuses_what_arc_cannot_do() {
    // The spec: a link from the managed instance.
    let reverse_arc = LinkSpec {
        route: arc_spec().route,
        ..reverse()
    };
    assert_eq!(
        Machine::new(reverse_arc).unwrap_err(),
        SpecError::ArcNeedsSqlServerPrimary
    );
    let mut h = arc_replicating();
    let not_on_arc =
        |r: RejectReason| assert!(matches!(r, RejectReason::NotOnArcRoute { .. }), "{r:?}");
    not_on_arc(h.reject_cmd(Command::Prepare));
    not_on_arc(h.reject_cmd(Command::Failback));
    not_on_arc(h.reject_cmd(Command::RepairSplitBrain {
        keep: Side::ManagedInstance,
    }));
    not_on_arc(h.reject_cmd(Command::Cutover(CutoverOptions {
        drop_availability_group: true,
    })));
    // A forced failover still needs the acknowledgement naming the link.
    assert_eq!(
        h.reject_cmd(Command::Failover(FailoverKind::Forced(None))),
        RejectReason::DataLossNotAcknowledged
    );
    assert!(matches!(
        h.reject_cmd(Command::Failover(FailoverKind::Forced(Some(
            DataLossAcknowledgement {
                link: "another".into()
            }
        )))),
        RejectReason::AcknowledgementForWrongLink { .. }
    ));
    // Failed over to the instance: Arc cannot force the way back.
    arc_fail_over(&mut h);
    not_on_arc(h.reject_cmd(ack()));
    // Cancel while Arc's create may still run.
    let mut h = H::new(arc_spec());
    h.cmd(Command::RecordAssessment(AssessmentOutcome {
        blockers: vec![],
    }));
    h.cmd(Command::Start);
    h.answer(Observation::OperationAccepted(op(1)));
    assert_eq!(
        h.reject_cmd(Command::Cancel),
        RejectReason::ArcOperationRunning
    );
}

/// Replicating → FailedOver through `failoverMiLink` (accepted, polled, done).
fn arc_fail_over(h: &mut H) {
    let fx = h.cmd(Command::Failover(FailoverKind::Planned));
    assert_eq!(h.phase(), Phase::FailingOver);
    assert_eq!(
        arc_effects(&fx),
        vec![ArcLinkOp::Failover {
            kind: FailoverKind::Planned
        }]
    );
    no_tsql_or_arm_change(&fx);
    h.answer(Observation::OperationAccepted(op(2)));
    let fx = h.tick_at_deadline();
    assert!(polls_arc(&fx, &op(2)), "{fx:?}");
    h.answer(Observation::Done);
    h.verify_and_redirect(Side::ManagedInstance);
    assert_eq!(h.phase(), Phase::FailedOver);
}

pub fn arc_planned_failover_is_arcs_operation_and_the_unmade_lsn_check_is_said() {
    let mut h = arc_replicating();
    arc_fail_over(&mut h);
    // No switch to synchronous commit and no LSN gate of milink's ran: the machine says which
    // check Arc made and milink did not.
    assert!(
        h.m.unverified()
            .iter()
            .any(|n| n.contains("last_hardened_lsn") && n.contains("did not compare")),
        "{:?}",
        h.m.unverified()
    );
}

pub fn arc_failover_that_failed_with_unchanged_roles_is_sent_again_after_a_reading() {
    let mut h = arc_replicating();
    h.cmd(Command::Failover(FailoverKind::Planned));
    h.fail(false);
    assert_eq!(h.phase(), Phase::Failed);
    let fx = h.cmd(Command::Retry);
    assert!(is_probe(&fx, Probe::Link), "reads the roles first: {fx:?}");
    assert!(arc_effects(&fx).is_empty());
    let obs = h.roles(Side::SqlServer, Some(ReplicaRole::Secondary));
    let fx = h.answer(obs);
    assert_eq!(
        arc_effects(&fx),
        vec![ArcLinkOp::Failover {
            kind: FailoverKind::Planned
        }]
    );
    // Changed: verified, never sent again.
    let mut h = arc_replicating();
    h.cmd(Command::Failover(FailoverKind::Planned));
    h.fail(false);
    h.cmd(Command::Retry);
    let obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary));
    let fx = h.answer(obs);
    assert!(arc_effects(&fx).is_empty());
    assert_eq!(h.phase(), Phase::VerifyingRoles);
}

pub fn arc_forced_failover_sends_force_with_the_acknowledgement() {
    let mut h = arc_replicating();
    let fx = force(&mut h);
    assert_eq!(h.phase(), Phase::ForcingFailover);
    assert_eq!(
        arc_effects(&fx),
        vec![ArcLinkOp::Failover {
            kind: FailoverKind::Forced(Some(DataLossAcknowledgement {
                link: LINK.to_owned()
            }))
        }]
    );
    no_tsql_or_arm_change(&fx);
    h.answer(Observation::Done);
    assert_eq!(h.phase(), Phase::VerifyingRoles);
}

pub fn arc_cutover_fails_over_then_removes_the_link_with_delete_mi_link() {
    let mut h = arc_replicating();
    let fx = h.cmd(Command::Cutover(CutoverOptions::default()));
    assert_eq!(h.phase(), Phase::FailingOver);
    assert_eq!(
        arc_effects(&fx),
        vec![ArcLinkOp::Failover {
            kind: FailoverKind::Planned
        }]
    );
    h.done();
    h.verify_and_redirect(Side::ManagedInstance);
    assert_eq!(h.phase(), Phase::AwaitingFirstFullBackup);
    let now = h.now;
    h.answer(h.backups(Some(now)));
    assert_eq!(h.phase(), Phase::RemovingLink);
    let obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary));
    let fx = h.answer(obs);
    assert_eq!(arc_effects(&fx), vec![ArcLinkOp::DeleteLink]);
    no_tsql_or_arm_change(&fx);
    h.answer(Observation::OperationAccepted(op(3)));
    // A crash while Arc removes it: the resumed machine follows the same operation.
    let mut fx = h.resume();
    fx.extend(h.tick_at_deadline());
    assert!(polls_arc(&fx, &op(3)), "{fx:?}");
    assert!(arc_effects(&fx).is_empty(), "sent again: {fx:?}");
    let fx = h.answer(Observation::Done);
    assert!(
        is_probe(&fx, Probe::Link),
        "confirms with a reading: {fx:?}"
    );
    let mut obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary));
    if let Observation::Link(l) = &mut obs {
        l.instance = empty_side();
        l.source = empty_side();
    }
    let fx = h.answer(obs);
    // deleteMiLink dropped SQL Server's DAG too: nothing left to drop.
    no_tsql_or_arm_change(&fx);
    assert_eq!(h.phase(), Phase::Completed);
}

pub fn arc_cancel_removes_the_link_with_delete_mi_link() {
    let mut h = arc_replicating();
    let fx = h.cmd(Command::Cancel);
    assert_eq!(h.phase(), Phase::Cancelling);
    assert_eq!(arc_effects(&fx), vec![ArcLinkOp::DeleteLink]);
    no_tsql_or_arm_change(&fx);
    let fx = h.answer(Observation::Done);
    no_tsql_or_arm_change(&fx);
    assert_eq!(h.phase(), Phase::Cancelled);
}

pub fn arc_create_that_failed_is_read_before_it_is_sent_again_or_removed() {
    let started = || {
        let mut h = H::new(arc_spec());
        h.cmd(Command::RecordAssessment(AssessmentOutcome {
            blockers: vec![],
        }));
        h.cmd(Command::Start);
        h.answer(Observation::OperationAccepted(op(4)));
        h.tick_at_deadline();
        h
    };
    // The extension failed part-way (not retryable): a retry reads the link first.
    let mut h = started();
    h.fail(false);
    assert_eq!(h.phase(), Phase::Failed);
    assert_eq!(h.reject(Input::Resume), RejectReason::NotRetryable);
    let fx = h.cmd(Command::Retry);
    assert_eq!(h.phase(), Phase::CreatingLinkThroughArc);
    assert!(is_probe(&fx, Probe::Link), "{fx:?}");
    assert!(arc_effects(&fx).is_empty());
    // A poll that failed transiently: the resume follows the same operation.
    let mut h = started();
    h.fail(true);
    let fx = h.resume();
    assert_eq!(h.phase(), Phase::CreatingLinkThroughArc);
    let fx = if fx.is_empty() {
        h.tick_at_deadline()
    } else {
        fx
    };
    assert!(polls_arc(&fx, &op(4)), "{fx:?}");
    assert!(arc_effects(&fx).is_empty());
    // Cancel after the failure removes what Arc made, through deleteMiLink.
    let mut h = started();
    h.fail(false);
    let fx = h.cmd(Command::Cancel);
    assert_eq!(h.phase(), Phase::Cancelling);
    assert_eq!(arc_effects(&fx), vec![ArcLinkOp::DeleteLink]);
}

pub fn arc_operation_sent_again_while_the_first_runs_is_evidence_not_a_failure() {
    let mut h = arc_replicating();
    h.cmd(Command::Failover(FailoverKind::Planned));
    // The process dies before the answer is journaled; the roles have not changed yet.
    let fx = h.resume();
    assert!(is_probe(&fx, Probe::Link), "{fx:?}");
    let obs = h.roles(Side::SqlServer, Some(ReplicaRole::Secondary));
    let fx = h.answer(obs);
    assert_eq!(arc_effects(&fx).len(), 1, "sent again: {fx:?}");
    // Arc refuses it: the first still runs. The machine reads again, it does not fail.
    let step = h.pending_step();
    let fx = h.answer_step(
        step,
        Err(StepError {
            code: "arm:409:ArcOperationInProgress".to_owned(),
            message: "still in progress".to_owned(),
            retryable: false,
        }),
    );
    assert!(fx.is_empty());
    assert_eq!(h.phase(), Phase::FailingOver);
    let fx = h.tick_at_deadline();
    assert!(is_probe(&fx, Probe::Link), "{fx:?}");
    // The first one finishes: the roles are verified, nothing more is sent.
    let obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary));
    let fx = h.answer(obs);
    assert!(arc_effects(&fx).is_empty());
    assert_eq!(h.phase(), Phase::VerifyingRoles);
}
