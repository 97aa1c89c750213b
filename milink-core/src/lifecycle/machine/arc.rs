//! The Arc route ([`crate::lifecycle::LinkRoute::Arc`]): the same states, guards and journal as the direct route;
//! only the effects on SQL Server's side differ. Arc runs several steps in one operation, which
//! milink follows by its URL and judges afterwards by what it can read.

use super::*;

/// What the machine records (in [`Machine::unverified`]) for every planned role change on the
/// Arc route: which check Arc made and milink did not.
pub(crate) const ARC_GATE_NOTE: &str = "the planned failover ran through Arc's failoverMiLink: \
     Arc switched the link to synchronous commit and waited for SYNCHRONIZED inside its \
     operation; Arc does not report SQL Server's last_hardened_lsn, so milink did not compare \
     the two sides' LSNs itself";

impl Machine {
    /// The commands the Arc route cannot carry out, refused before anything changes.
    pub(super) fn arc_refusal(&self, command: &Command) -> Option<RejectReason> {
        if !self.spec.route.is_arc() || self.state.phase().is_terminal() {
            return None;
        }
        let not = |what| Some(RejectReason::NotOnArcRoute { what });
        match command {
            Command::Failback => {
                not("fail back to SQL Server (Arc's migration offers no reverse failover)")
            }
            Command::Prepare => not(
                "switch the link to synchronous commit ahead of a role change (Arc's \
                 failoverMiLink switches it inside its operation)",
            ),
            // Keeping SQL Server demotes the instance through ARM (setRole), as on the direct
            // route; demoting SQL Server needs T-SQL, which Arc has no operation for.
            Command::RepairSplitBrain {
                keep: Side::ManagedInstance,
            } => not("demote SQL Server after a split brain (keep SQL Server, or repair directly)"),
            Command::Cutover(options) if options.drop_availability_group => {
                not("drop SQL Server's availability group")
            }
            Command::Failover(FailoverKind::Forced(_))
                if matches!(
                    self.state,
                    State::FailedOver {
                        primary: Side::ManagedInstance,
                        ..
                    }
                ) =>
            {
                not("force a failover to SQL Server (failoverMiLink fails over to the instance)")
            }
            Command::Cancel if matches!(&self.state, State::CreatingLinkThroughArc { .. }) => {
                Some(RejectReason::ArcOperationRunning)
            }
            Command::RecordAssessment(_)
            | Command::RepairSplitBrain { .. }
            | Command::Start
            | Command::Failover(_)
            | Command::Cutover(_)
            | Command::Cancel
            | Command::Retry
            | Command::Refresh => None,
        }
    }

    /// A planned role change on the Arc route: Arc's `failoverMiLink` is the switch to
    /// synchronous commit, the wait for SYNCHRONIZED and the failover, in one operation. The
    /// machine has no LSN of SQL Server to gate on, says so, and verifies the roles after.
    pub(super) fn begin_arc_failover(&mut self, mut plan: Plan, now: Timestamp) -> Vec<Effect> {
        let target = plan.target;
        self.role_changed_at = Some(now);
        let then = self.then_of(&plan.goal, target, now);
        self.verified_lsns.clear();
        self.unverified.push(ARC_GATE_NOTE.to_owned());
        // milink switched nothing, so an abandoned failover restores nothing.
        plan.restore_mode = None;
        self.enter(
            State::FailingOver {
                target,
                via: FailoverVia::Arc,
                change: RoleChange::Issued,
                then,
                plan: Some(plan),
                cancel: false,
            },
            now,
        )
    }

    /// Arc's `createManagedInstanceLink`: its answer, its polls, or the reading that judges a
    /// create whose answer was lost.
    pub(super) fn on_arc_creating(
        &mut self,
        effect: &Effect,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        let state = |change| State::CreatingLinkThroughArc { change };
        if let Effect::Probe { .. } = effect {
            let link = self.record_link(obs)?;
            if !link.reachable(Side::SqlServer) || !link.reachable(Side::ManagedInstance) {
                return Ok(self.wait(state(RoleChange::Checking), now));
            }
            return Ok(match (link.source.exists, link.instance.exists) {
                // Both sides have the link: the create went through; seeding follows it.
                (true, true) => self.begin_seeding(now),
                // Nothing of it anywhere: it was never sent (or refused before acting).
                (false, false) => {
                    self.state = state(RoleChange::Issued);
                    self.kick()
                }
                // Half made: the operation may still run inside Arc. Read again until the
                // step's timeout; a create that failed half-way is then cancelled or retried.
                (true, false) | (false, true) => self.wait(state(RoleChange::Checking), now),
            });
        }
        match change_reply(effect, obs)? {
            None => Ok(self.begin_seeding(now)),
            Some(change) => Ok(self.wait(state(change), now)),
        }
    }

    /// The Arc operation that a state's call stands for (what an accepted operation is polled
    /// as), on the Arc route.
    pub(super) fn arc_call(&self) -> Option<ArcLinkOp> {
        if !self.spec.route.is_arc() {
            return None;
        }
        match &self.state {
            State::CreatingLinkThroughArc { .. } => Some(ArcLinkOp::CreateLink),
            State::FailingOver { .. } => Some(ArcLinkOp::Failover {
                kind: FailoverKind::Planned,
            }),
            State::ForcingFailover { .. } => Some(ArcLinkOp::Failover {
                // The command was accepted only with this acknowledgement.
                kind: FailoverKind::Forced(Some(DataLossAcknowledgement {
                    link: self.spec.link.to_string(),
                })),
            }),
            State::RemovingLink { .. }
            | State::Cancelling {
                step: CancelStep::DeleteLink { .. },
            } => Some(ArcLinkOp::DeleteLink),
            _ => None,
        }
    }

    /// Issues the state's Arc call (`Issued`) or its poll (`Accepted`).
    pub(super) fn arc(&mut self, op: ArcLinkOp) -> Effect {
        let step = self.next_id();
        self.issue(Effect::Arc { step, op })
    }

    /// Polls an accepted operation: an Arc one on the Arc route, else ARM's.
    pub(super) fn poll_call(&mut self, operation: OperationRef) -> Effect {
        match self.arc_call() {
            Some(op) => {
                let step = self.next_id();
                self.issue(Effect::PollArc {
                    step,
                    op,
                    operation,
                })
            }
            None => self.poll(operation),
        }
    }
}
