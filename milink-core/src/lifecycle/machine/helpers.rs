//! Free helpers of the machine: readings, replies, and the per-phase data it maps.

use super::*;

/// A reply to an ARM call or poll.
pub(super) enum ArmReply {
    Completed,
    Accepted(OperationRef),
    Running,
}

pub(super) fn arm_reply(effect: &Effect, obs: Observation) -> Result<ArmReply, RejectReason> {
    let polling = matches!(
        effect,
        Effect::PollOperation { .. } | Effect::PollArc { .. }
    );
    match obs {
        Observation::Done => Ok(ArmReply::Completed),
        Observation::OperationAccepted(op) if !polling => Ok(ArmReply::Accepted(op)),
        Observation::OperationRunning | Observation::OperationRunningRetryAfter(_) if polling => {
            Ok(ArmReply::Running)
        }
        Observation::OperationAccepted(_)
        | Observation::OperationRunning
        | Observation::OperationRunningRetryAfter(_)
        | Observation::PublicKey(_)
        | Observation::Link(_)
        | Observation::FullBackups(_)
        | Observation::Workload(_) => Err(RejectReason::UnexpectedObservation {
            expected: if polling {
                "Done or OperationRunning"
            } else {
                "Done or OperationAccepted"
            },
        }),
    }
}

/// The reply to a call that must not run twice (a role change, the fence, the link's removal):
/// `None` when it completed, else its progress to wait with (an accepted or still running ARM
/// operation is followed by its URL). SQL Server's T-SQL is complete when it answers.
pub(super) fn change_reply(
    effect: &Effect,
    obs: Observation,
) -> Result<Option<RoleChange>, RejectReason> {
    let reply = match effect {
        Effect::Source { .. } => {
            expect_done(obs)?;
            ArmReply::Completed
        }
        Effect::Instance { .. }
        | Effect::PollOperation { .. }
        | Effect::Arc { .. }
        | Effect::PollArc { .. }
        | Effect::Probe { .. }
        | Effect::Redirect { .. } => arm_reply(effect, obs)?,
    };
    Ok(match reply {
        ArmReply::Completed => None,
        ArmReply::Accepted(op) => Some(RoleChange::Accepted(op)),
        ArmReply::Running => Some(match polled_operation(effect) {
            Some(op) => RoleChange::Accepted(op),
            None => RoleChange::Issued,
        }),
    })
}

pub(super) fn polled_operation(effect: &Effect) -> Option<OperationRef> {
    match effect {
        Effect::PollOperation { operation, .. } | Effect::PollArc { operation, .. } => {
            Some(operation.clone())
        }
        Effect::Source { .. }
        | Effect::Instance { .. }
        | Effect::Arc { .. }
        | Effect::Probe { .. }
        | Effect::Redirect { .. } => None,
    }
}

pub(super) fn expect_done(obs: Observation) -> Result<(), RejectReason> {
    match obs {
        Observation::Done => Ok(()),
        Observation::PublicKey(_)
        | Observation::OperationAccepted(_)
        | Observation::OperationRunning
        | Observation::OperationRunningRetryAfter(_)
        | Observation::Link(_)
        | Observation::FullBackups(_)
        | Observation::Workload(_) => Err(RejectReason::UnexpectedObservation { expected: "Done" }),
    }
}

pub(super) fn expect_public_key(obs: Observation) -> Result<Vec<u8>, RejectReason> {
    match obs {
        Observation::PublicKey(der) if !der.is_empty() => Ok(der),
        Observation::PublicKey(_)
        | Observation::Done
        | Observation::OperationAccepted(_)
        | Observation::OperationRunning
        | Observation::OperationRunningRetryAfter(_)
        | Observation::Link(_)
        | Observation::FullBackups(_)
        | Observation::Workload(_) => Err(RejectReason::UnexpectedObservation {
            expected: "a non-empty PublicKey",
        }),
    }
}

pub(super) fn expect_link(obs: Observation) -> Result<LinkObservation, RejectReason> {
    match obs {
        Observation::Link(link) => Ok(link),
        Observation::Done
        | Observation::PublicKey(_)
        | Observation::OperationAccepted(_)
        | Observation::OperationRunning
        | Observation::OperationRunningRetryAfter(_)
        | Observation::FullBackups(_)
        | Observation::Workload(_) => Err(RejectReason::UnexpectedObservation { expected: "Link" }),
    }
}

pub(super) fn expect_backups(obs: Observation) -> Result<Vec<FullBackup>, RejectReason> {
    match obs {
        Observation::FullBackups(backups) => Ok(backups),
        Observation::Done
        | Observation::PublicKey(_)
        | Observation::OperationAccepted(_)
        | Observation::OperationRunning
        | Observation::OperationRunningRetryAfter(_)
        | Observation::Link(_)
        | Observation::Workload(_) => Err(RejectReason::UnexpectedObservation {
            expected: "FullBackups",
        }),
    }
}

/// The databases without a full backup finished at or after `after`.
pub(super) fn missing_backups(
    databases: &[DatabaseName],
    backups: &[FullBackup],
    after: Option<Timestamp>,
) -> Vec<DatabaseName> {
    databases
        .iter()
        .filter(|db| {
            !backups.iter().any(|b| {
                &b.database == *db
                    && b.finished
                        .is_some_and(|t| after.is_none_or(|after| t >= after))
            })
        })
        .cloned()
        .collect()
}

pub(super) fn side_view(link: &LinkObservation, side: Side) -> &SideView {
    match side {
        Side::SqlServer => &link.source,
        Side::ManagedInstance => &link.instance,
    }
}

pub(super) fn role_of(link: &LinkObservation, side: Side) -> Option<ReplicaRole> {
    side_view(link, side).role
}

/// Both sides read in synchronous commit: SQL Server's DAG replicas (its own and, when
/// reported, the instance's) and the instance's `replicationMode`.
pub(super) fn link_synchronous(link: &LinkObservation) -> bool {
    [Side::SqlServer, Side::ManagedInstance]
        .into_iter()
        .all(|side| {
            let view = side_view(link, side);
            view.mode == Some(AvailabilityMode::SynchronousCommit)
                && view
                    .partner_mode
                    .is_none_or(|m| m == AvailabilityMode::SynchronousCommit)
        })
}

pub(super) fn both_primary(link: &LinkObservation) -> bool {
    link.source.role == Some(ReplicaRole::Primary)
        && link.instance.role == Some(ReplicaRole::Primary)
}

pub(super) fn find_db<'a>(
    view: &'a SideView,
    name: &DatabaseName,
) -> Option<&'a crate::lifecycle::input::DatabaseView> {
    view.databases.iter().find(|d| &d.name == name)
}

/// The synchronization state of `side`'s replica of `name`: the side's own DMV row when it
/// reports one (T-SQL), else the other side's row for its remote replica (a primary's DMV has a
/// row per remote replica). ARM reports neither, so for a managed instance read through ARM
/// the state comes from SQL Server's DMV.
pub(super) fn sync_state_of(
    link: &LinkObservation,
    side: Side,
    name: &DatabaseName,
) -> Option<SyncState> {
    find_db(side_view(link, side), name)
        .and_then(|d| d.sync_state)
        .or_else(|| {
            find_db(side_view(link, side.other()), name)
                .and_then(|d| d.partner)
                .map(|p| p.sync_state)
        })
}

/// SQL Server's end of log (the DMV's `end_of_log_lsn`, else `last_hardened_lsn`) and the
/// instance's hardened LSN (ARM `lastHardenedLsn`, else its end of log) for `name`.
pub(super) fn log_ends(link: &LinkObservation, name: &DatabaseName) -> (Option<Lsn>, Option<Lsn>) {
    let source = find_db(&link.source, name).and_then(|d| d.end_of_log_lsn.or(d.last_hardened_lsn));
    let instance =
        find_db(&link.instance, name).and_then(|d| d.last_hardened_lsn.or(d.end_of_log_lsn));
    (source, instance)
}

/// Every database the link carries: the spec's, and any other database either side reports
/// in the link (a database added to the availability group later, in MultiDatabase mode), in
/// name order.
pub(super) fn link_databases(spec: &[DatabaseName], link: &LinkObservation) -> Vec<DatabaseName> {
    let mut names: Vec<DatabaseName> = spec.to_vec();
    for view in [&link.source, &link.instance] {
        for d in &view.databases {
            if !names.contains(&d.name) {
                names.push(d.name.clone());
            }
        }
    }
    names
}

pub(super) fn health_rank(h: SyncHealth) -> u8 {
    match h {
        SyncHealth::NotHealthy => 0,
        SyncHealth::PartiallyHealthy => 1,
        SyncHealth::Healthy => 2,
    }
}

pub(super) fn plan_abort(plan: &Plan) -> Abort {
    Abort {
        back_to: plan.from,
        restore_mode: plan.restore_mode,
    }
}

/// How many times a one-way cutover fences SQL Server and undoes the fence before it fails.
pub(super) const MAX_FENCES: u32 = 3;

/// A role change or repair that failed half-way (a forced failover may be the way out).
pub(super) fn is_half_way(phase: &State) -> bool {
    half_way_target(phase).is_some()
}

/// The side a role change or repair was making primary, for the phases that can fail half-way.
pub(super) fn half_way_target(phase: &State) -> Option<Side> {
    match phase {
        State::FailingOver { target, .. } | State::ForcingFailover { target, .. } => Some(*target),
        State::VerifyingRoles { primary, .. } | State::Redirecting { primary, .. } => {
            Some(*primary)
        }
        State::Repairing { keep, .. } => Some(*keep),
        before_replicating!()
        | steady!()
        | catching_up!()
        | State::SplitBrain
        | removing!()
        | backing_out!()
        | terminal!()
        | State::Failed { .. } => None,
    }
}

/// The steady state a failed phase belongs to, when a forced failover may start from it.
pub(super) fn steady_of_failed(phase: &State) -> Option<Steady> {
    match phase {
        State::Replicating { .. } => Some(Steady::Replicating),
        State::FailedOver {
            primary,
            data_loss_possible,
        } => Some(Steady::FailedOver {
            primary: *primary,
            data_loss_possible: *data_loss_possible,
        }),
        State::PreparingFailover { plan, .. } | State::CatchingUp { plan, .. } => Some(plan.from),
        before_replicating!()
        | changing_roles!()
        | State::SplitBrain
        | removing!()
        | backing_out!()
        | terminal!()
        | State::Failed { .. } => None,
    }
}

/// The state a failed phase is re-entered in: accepted operations are re-issued (PUT and PATCH
/// are idempotent), role changes and the link's removal start with a read of the link (the
/// failed call may have taken effect: a timeout does not say) unless their accepted operation is
/// still to be followed, and the catch-up window restarts.
pub(super) fn reset_for_retry(state: State, retryable: bool) -> State {
    // An accepted operation that did not report failure (the step timed out, or its poll failed
    // transiently) may still be running: follow it by its URL, never send it again. One that
    // failed for good is judged by a reading of the link.
    let after = |change: RoleChange| match change {
        RoleChange::Accepted(op) if retryable => RoleChange::Accepted(op),
        RoleChange::Accepted(_) | RoleChange::Issued | RoleChange::Checking => RoleChange::Checking,
    };
    match state {
        State::ExchangingTrust {
            step: TrustStep::UploadCertificate { public_key, .. },
        } => State::ExchangingTrust {
            step: TrustStep::UploadCertificate {
                public_key,
                operation: None,
            },
        },
        State::JoiningInstance { .. } => State::JoiningInstance { operation: None },
        State::PreparingFailover {
            plan,
            source_done,
            instance,
        } => State::PreparingFailover {
            plan,
            source_done,
            instance: requested_unless_done(instance),
        },
        State::AbortingFailover {
            abort,
            source_done,
            instance,
        } => State::AbortingFailover {
            abort,
            source_done,
            instance: requested_unless_done(instance),
        },
        State::CatchingUp { plan, .. } => State::CatchingUp {
            plan,
            stable: None,
            blocker: None,
        },
        State::FailingOver {
            target,
            via,
            change,
            then,
            plan,
            ..
        } => State::FailingOver {
            target,
            via,
            change: after(change),
            then,
            plan,
            cancel: false,
        },
        State::Fencing {
            plan,
            step: FenceStep::Verify { .. },
        } => State::Fencing {
            plan,
            step: FenceStep::Verify { behind_since: None },
        },
        s => map_role_change(s, &after),
    }
}

/// The progress of the state's call that must not run twice (a role change, the fence and its
/// undo, the link's removal); `None` for every other state. The one list of those states.
pub(super) fn role_change_mut(state: &mut State) -> Option<&mut RoleChange> {
    if let State::CreatingLinkThroughArc { change } = state {
        return Some(change);
    }
    match state {
        State::FailingOver { change, .. }
        | State::ForcingFailover { change, .. }
        | State::Repairing { change, .. }
        | State::RemovingLink {
            removal: change, ..
        }
        | State::Cancelling {
            step: CancelStep::DeleteLink { removal: change },
        }
        | State::Fencing {
            step: FenceStep::Demote { change } | FenceStep::Undo { change, .. },
            ..
        } => Some(change),
        before_replicating!()
        | steady!()
        | catching_up!()
        | State::VerifyingRoles { .. }
        | State::Redirecting { .. }
        | State::SplitBrain
        | State::AwaitingFirstFullBackup { .. }
        | State::Fencing {
            step: FenceStep::Verify { .. },
            ..
        }
        | State::DroppingDag { .. }
        | State::DroppingAg
        | terminal!()
        | State::AbortingFailover { .. }
        | State::Cancelling {
            step: CancelStep::DropDag | CancelStep::DropAg,
        }
        | State::Failed { .. } => None,
    }
}

/// The state with the progress of its call that must not run twice mapped by `f`; other states
/// unchanged.
pub(super) fn map_role_change(mut state: State, f: &dyn Fn(RoleChange) -> RoleChange) -> State {
    if let Some(change) = role_change_mut(&mut state) {
        *change = f(change.clone());
    }
    state
}

/// ARM answers to a role change that say one is already running or already done (the spec's
/// 409 codes): evidence to read the roles by, never a reason to send the call again.
/// On the Arc route, a link operation sent again while the first still runs (its answer was
/// lost) is refused the same way (`ArcOperationInProgress`), a failover sent again after the
/// first went through finds SQL Server no longer primary (`FailoverNotAllowed`), and a create
/// sent again after the first made the link finds it (`AvailabilityGroupAlreadyExists`) (the
/// simulator's codes; UNVERIFIED).
pub(crate) const ROLE_CHANGE_EVIDENCE: [&str; 5] = [
    "arm:409:DistributedAvailabilityGroupSetRoleChangeRoleAlreadyInProgress",
    "arm:409:DistributedAvailabilityGroupSetRoleInstanceAlreadyInRequestedRole",
    "arm:409:ArcOperationInProgress",
    "arm:409:FailoverNotAllowed",
    "arm:409:AvailabilityGroupAlreadyExists",
];

pub(super) fn role_change_evidence(code: &str) -> bool {
    ROLE_CHANGE_EVIDENCE.contains(&code)
}

/// The state with its call that must not run twice set to be judged by a reading of the link.
pub(super) fn checking(state: State) -> State {
    map_role_change(state, &|_| RoleChange::Checking)
}

/// The link resource says an accepted failover or setRole is still running
/// (`databases[].replicaState` `LinkFailoverInProgress`): wait, never send another.
pub(super) fn role_change_running(link: &LinkObservation) -> bool {
    link.instance
        .databases
        .iter()
        .any(|d| d.replica_state.as_deref() == Some("LinkFailoverInProgress"))
}

pub(super) fn requested_unless_done(call: ArmCall) -> ArmCall {
    match call {
        ArmCall::Done => ArmCall::Done,
        ArmCall::Requested | ArmCall::Accepted(_) => ArmCall::Requested,
    }
}

pub(super) fn describe(input: &Input) -> String {
    match input {
        Input::Observed { step, .. } => format!("{} {step}", input.label()),
        Input::Command(_) | Input::Tick | Input::Resume => input.label().to_owned(),
    }
}

pub(super) fn join_names(names: &[DatabaseName]) -> String {
    names
        .iter()
        .map(DatabaseName::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s >= 60 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}
