//! Commands: what each user command starts, and its guards.

use super::*;

impl Machine {
    pub(super) fn record_assessment(
        &mut self,
        outcome: AssessmentOutcome,
        now: Timestamp,
    ) -> Outcome {
        if !outcome.blockers.is_empty() {
            return Err(RejectReason::NotReadyAssessment(outcome.blockers));
        }
        Ok(self.enter(State::Assessed, now))
    }

    /// Capability guards of role changes win over state-based refusals, so that a one-way link
    /// always says so.
    pub(super) fn refuse_role_change(&self, otherwise: RejectReason) -> RejectReason {
        if self.two_way_now() {
            otherwise
        } else {
            RejectReason::OneWayLink
        }
    }

    /// The link can reverse roles: the spec says two-way and the link resource, as last read,
    /// has `failoverMode Manual`.
    pub(super) fn two_way_now(&self) -> bool {
        self.spec.is_two_way()
            && self
                .last_link
                .as_ref()
                .and_then(|l| l.instance.failover_mode)
                .is_none_or(|m| m == crate::lifecycle::spec::FailoverMode::Manual)
    }

    /// The guard of every role change to SQL Server (failback, a planned or forced failover to
    /// SQL Server), judged on the live servers: SQL Server's build and the instance's update
    /// policy as last read with the link (the spec's values only before any reading). It runs
    /// when the command arrives and again on the catch-up gate's fresh readings, right before
    /// the role change.
    /// SQL Server's build as last read with the link (the spec's before any reading).
    pub(super) fn live_version(&self) -> crate::names::SqlVersion {
        self.last_link
            .as_ref()
            .and_then(|l| l.source.version)
            .unwrap_or(self.spec.source.version)
    }

    pub(super) fn failback_guard(&self) -> Result<(), RejectReason> {
        if !self.two_way_now() {
            return Err(RejectReason::OneWayLink);
        }
        let link = self.last_link.as_ref();
        let version = self.live_version();
        let policy = link
            .and_then(|l| l.instance.update_policy)
            .unwrap_or(self.spec.target.update_policy);
        let caps = version.capabilities();
        if !caps.failback_allowed_with(policy) {
            return Err(RejectReason::UpdatePolicyMismatch {
                policy,
                required: caps.matching_update_policy,
            });
        }
        Ok(())
    }

    pub(super) fn refuse_failback(&self, otherwise: RejectReason) -> RejectReason {
        match self.failback_guard() {
            Err(reason) => reason,
            Ok(()) => otherwise,
        }
    }

    /// Repair reads before it acts ([`State::Repairing`] starts with a reading), and never
    /// reverses a one-way link: only its initial primary can be kept.
    pub(super) fn cmd_repair(&mut self, keep: Side, now: Timestamp) -> Outcome {
        if keep != self.spec.initial_primary {
            // The initial primary becomes a secondary of the other side: only a two-way link
            // whose live servers can carry that.
            self.failback_guard()?;
        }
        Ok(self.enter(
            State::Repairing {
                keep,
                change: RoleChange::Checking,
            },
            now,
        ))
    }

    pub(super) fn cmd_planned_failover(&mut self, now: Timestamp) -> Outcome {
        if !self.two_way_now() {
            return Err(RejectReason::OneWayLink);
        }
        let target = self.spec.initial_primary.other();
        // Either way SQL Server ends up a secondary of, or primary to, the instance: its build
        // and the instance's update policy must match (facts §1.9).
        self.failback_guard()?;
        let plan = Plan {
            goal: Goal::Failover,
            from: Steady::Replicating,
            target,
            restore_mode: self.current_mode(),
            prepared: false,
            retried: false,
        };
        Ok(self.begin_role_change(plan, now))
    }

    /// [`Command::Prepare`]: switch both sides to synchronous commit while the application
    /// still writes, and come back to the steady state `from`. Already synchronous: nothing to do.
    pub(super) fn cmd_prepare(&mut self, from: Steady, now: Timestamp) -> Outcome {
        if self.synchronous || self.last_link.as_ref().is_some_and(link_synchronous) {
            // The state was put back by the caller: nothing changes.
            self.synchronous = true;
            return Ok(Vec::new());
        }
        let plan = Plan {
            goal: Goal::Prepare,
            from,
            target: from.primary(self.spec.initial_primary).other(),
            restore_mode: self.current_mode(),
            prepared: false,
            retried: false,
        };
        Ok(self.enter(
            State::PreparingFailover {
                plan,
                source_done: false,
                instance: ArmCall::Requested,
            },
            now,
        ))
    }

    /// Enters a role change's first phase: the switch to synchronous commit, or straight the
    /// catch-up gate when both sides are already synchronous (prepared; the gate still reads
    /// the modes, and a side found asynchronous sends the machine back to the switch).
    pub(super) fn begin_role_change(&mut self, mut plan: Plan, now: Timestamp) -> Vec<Effect> {
        if self.spec.route.is_arc() {
            return self.begin_arc_failover(plan, now);
        }
        if self.spec.options.skip_synchronous_switch
            && (self.synchronous || self.last_link.as_ref().is_some_and(link_synchronous))
        {
            plan.prepared = true;
            return self.enter(
                State::CatchingUp {
                    plan,
                    stable: None,
                    blocker: None,
                },
                now,
            );
        }
        self.enter(
            State::PreparingFailover {
                plan,
                source_done: false,
                instance: ArmCall::Requested,
            },
            now,
        )
    }

    pub(super) fn cmd_failback(
        &mut self,
        primary: Side,
        data_loss_possible: bool,
        now: Timestamp,
    ) -> Outcome {
        self.failback_guard()?;
        let initial = self.spec.initial_primary;
        if primary == initial {
            return Err(RejectReason::NotFailedOver);
        }
        let plan = Plan {
            goal: Goal::Failback,
            from: Steady::FailedOver {
                primary,
                data_loss_possible,
            },
            target: initial,
            restore_mode: self.current_mode(),
            prepared: false,
            retried: false,
        };
        Ok(self.begin_role_change(plan, now))
    }

    pub(super) fn cmd_cutover(
        &mut self,
        from: Steady,
        options: crate::lifecycle::input::CutoverOptions,
        now: Timestamp,
    ) -> Vec<Effect> {
        match from.primary(self.spec.initial_primary) {
            Side::ManagedInstance => {
                let state = State::AwaitingFirstFullBackup {
                    options,
                    backup_after: self.role_changed_at,
                    redirect_after_removal: false,
                    abort: Abort {
                        back_to: from,
                        restore_mode: None,
                    },
                    missing: self.spec.databases.clone(),
                };
                self.enter(state, now)
            }
            // One-way: SQL Server stays primary until the link is removed, so the first full
            // backup is awaited while it still replicates; the catch-up gate and the fence come
            // last, right before the removal.
            // (Arc's cutover is its planned failover, then the link's removal, on either kind
            // of link: SQL Server cannot be fenced through Arc.)
            Side::SqlServer if !self.spec.is_two_way() && self.spec.route.is_direct() => {
                let state = State::AwaitingFirstFullBackup {
                    options,
                    backup_after: self.seeding_started_at,
                    redirect_after_removal: true,
                    abort: Abort {
                        back_to: from,
                        restore_mode: None,
                    },
                    missing: self.spec.databases.clone(),
                };
                self.enter(state, now)
            }
            Side::SqlServer => {
                let plan = Plan {
                    goal: Goal::Cutover(options),
                    from,
                    target: Side::ManagedInstance,
                    restore_mode: self.current_mode(),
                    prepared: false,
                    retried: false,
                };
                self.begin_role_change(plan, now)
            }
        }
    }

    pub(super) fn cmd_forced(
        &mut self,
        from: Steady,
        ack: Option<DataLossAcknowledgement>,
        now: Timestamp,
    ) -> Outcome {
        if !self.two_way_now() {
            return Err(RejectReason::OneWayLink);
        }
        let target = from.primary(self.spec.initial_primary).other();
        if let Some(link) = self.last_link.clone() {
            self.forced_guard(target, &link)?;
        } else {
            self.failback_guard()?;
        }
        self.check_acknowledgement(ack)?;
        self.role_changed_at = Some(now);
        self.forced = true;
        self.verified_lsns.clear();
        self.proof_pending = None;
        let then = self.then_after(target, true);
        // Read first: the guards are judged again on this reading of the live servers before
        // anything is sent.
        Ok(self.enter(
            State::ForcingFailover {
                target,
                change: RoleChange::Checking,
                then,
            },
            now,
        ))
    }

    /// A forced failover (or a forced removal) needs an acknowledgement naming this link.
    pub(super) fn check_acknowledgement(
        &self,
        ack: Option<DataLossAcknowledgement>,
    ) -> Result<(), RejectReason> {
        match ack {
            None => Err(RejectReason::DataLossNotAcknowledged),
            Some(ack) if ack.link != self.spec.link.as_str() => {
                Err(RejectReason::AcknowledgementForWrongLink {
                    expected: self.spec.link.clone(),
                    given: ack.link,
                })
            }
            Some(_) => Ok(()),
        }
    }

    /// The guards of a forced failover to `target`, on `link`: the live build and update
    /// policy, T-SQL `FORCE_FAILOVER_ALLOW_DATA_LOSS` on SQL Server 2022 CU13+, and no database
    /// on the target REVERTING or INITIALIZING.
    pub(super) fn forced_guard(
        &self,
        target: Side,
        link: &LinkObservation,
    ) -> Result<(), RejectReason> {
        self.failback_guard()?;
        if target == Side::SqlServer {
            let version = self.live_version();
            if !version.capabilities().tsql_failover {
                return Err(RejectReason::VersionNotCapable {
                    version,
                    needed: "SQL Server 2022 CU13 (16.0.4125.3) or 2025 to run \
                             FORCE_FAILOVER_ALLOW_DATA_LOSS on the distributed availability group",
                });
            }
        }
        for name in link_databases(&self.spec.databases, link) {
            if let Some(state @ (SyncState::Reverting | SyncState::Initializing)) =
                sync_state_of(link, target, &name)
            {
                return Err(RejectReason::SecondaryNotReady {
                    database: name,
                    state,
                });
            }
        }
        Ok(())
    }

    pub(super) fn cancel_creation(&mut self, now: Timestamp) -> Vec<Effect> {
        let step = if self.attempted.link {
            Some(CancelStep::DeleteLink {
                removal: RoleChange::Issued,
            })
        } else if self.attempted.dag {
            Some(CancelStep::DropDag)
        } else if self.attempted.ag {
            Some(CancelStep::DropAg)
        } else {
            None
        };
        match step {
            Some(step) => self.enter(State::Cancelling { step }, now),
            None => self.enter(State::Cancelled, now),
        }
    }

    pub(super) fn abort(&mut self, abort: Abort, now: Timestamp) -> Vec<Effect> {
        match abort.restore_mode {
            Some(AvailabilityMode::AsynchronousCommit) => self.enter(
                State::AbortingFailover {
                    abort,
                    source_done: false,
                    instance: ArmCall::Requested,
                },
                now,
            ),
            Some(AvailabilityMode::SynchronousCommit) | None => {
                self.enter(abort.back_to.to_state(), now)
            }
        }
    }

    pub(super) fn cancel_failed(&mut self, phase: State, now: Timestamp) -> Outcome {
        use State as S;
        match phase {
            S::Draft | S::Assessed => Ok(self.enter(S::Cancelled, now)),
            S::PreparingSource { .. }
            | S::ExchangingTrust { .. }
            | S::CreatingAg { .. }
            | S::CreatingDag
            | S::JoiningInstance { .. }
            | S::CreatingLinkThroughArc { .. }
            | S::Seeding { .. }
            | S::Replicating { .. } => Ok(self.cancel_creation(now)),
            S::PreparingFailover { plan, .. } | S::CatchingUp { plan, .. } => {
                Ok(self.abort(plan_abort(&plan), now))
            }
            S::AwaitingFirstFullBackup { abort, .. } => Ok(self.abort(abort, now)),
            S::Fencing { plan, .. } => Ok(self.undo_fence(plan, now)),
            // The failover failed: read the roles; if it did not take effect, abandon it.
            S::FailingOver {
                target,
                via,
                then,
                plan: Some(plan),
                ..
            } => Ok(self.enter(
                S::FailingOver {
                    target,
                    via,
                    change: RoleChange::Checking,
                    then,
                    plan: Some(plan),
                    cancel: true,
                },
                now,
            )),
            S::AbortingFailover { .. } | S::Cancelling { .. } | S::Failed { .. } => {
                Err(RejectReason::NotAllowedInState)
            }
            // A role change that failed half-way: settle on the roles the servers last reported.
            S::FailingOver { plan: None, .. }
            | S::ForcingFailover { .. }
            | S::VerifyingRoles { .. }
            | S::Repairing { .. } => self.settle(&phase, now),
            S::Redirecting { .. }
            | S::FailedOver { .. }
            | S::SplitBrain
            | S::RemovingLink { .. }
            | S::DroppingDag { .. }
            | S::DroppingAg
            | S::Completed
            | S::Cancelled => Err(RejectReason::CancelTooLate),
        }
    }

    /// Cancel of a role change or repair that failed half-way: go to the steady state the
    /// servers' latest reading shows (exactly one PRIMARY, the other SECONDARY or unreadable),
    /// or to SplitBrain when both are PRIMARY. The application is not redirected: it is where
    /// the last completed redirect sent it, and a later failover or failback moves it.
    pub(super) fn settle(&mut self, phase: &State, now: Timestamp) -> Outcome {
        let Some(link) = self.last_link.clone() else {
            return Err(RejectReason::RolesUnknown);
        };
        // A planned change whose roles were being verified keeps its flag; a forced failover
        // or a repair may have lost data.
        let data_loss_possible = matches!(
            phase,
            State::VerifyingRoles {
                then: Then::FailedOver {
                    data_loss_possible: true
                },
                ..
            } | State::ForcingFailover { .. }
                | State::Repairing { .. }
        );
        let sql = role_of(&link, Side::SqlServer);
        let mi = role_of(&link, Side::ManagedInstance);
        let settled = |side: Side, other: Option<ReplicaRole>| {
            other == Some(ReplicaRole::Secondary) || (other.is_none() && !link.reachable(side))
        };
        let primary = match (sql, mi) {
            (Some(ReplicaRole::Primary), Some(ReplicaRole::Primary)) => {
                return Ok(self.enter(State::SplitBrain, now));
            }
            (Some(ReplicaRole::Primary), other) if settled(Side::ManagedInstance, other) => {
                Side::SqlServer
            }
            (other, Some(ReplicaRole::Primary)) if settled(Side::SqlServer, other) => {
                Side::ManagedInstance
            }
            _ => return Err(RejectReason::RolesUnknown),
        };
        let steady = self.steady_after(primary, data_loss_possible);
        Ok(self.enter(steady.to_state(), now))
    }

    /// The way out of a one-way cutover stuck in its fence (SQL Server cannot be read, or will not
    /// take writes back): remove the link anyway, as the documented one-way equivalent of a
    /// forced failover ("delete the link instead"), with the same acknowledgement. SQL Server's
    /// log is not verified; the machine notes that, and the instance becomes writable.
    pub(super) fn force_removal(
        &mut self,
        phase: State,
        ack: Option<DataLossAcknowledgement>,
        now: Timestamp,
    ) -> Outcome {
        self.check_acknowledgement(ack)?;
        let State::Fencing { plan, .. } = phase else {
            return Err(RejectReason::NotAllowedInState);
        };
        let Goal::Cutover(options) = plan.goal else {
            return Err(RejectReason::NotAllowedInState);
        };
        self.forced = true;
        self.unverified.push(
            "the link was removed without verifying SQL Server's end of log (acknowledged): \
             transactions SQL Server committed after the instance last received its log may be \
             lost"
                .to_owned(),
        );
        Ok(self.enter(
            State::RemovingLink {
                options,
                redirect: true,
                removal: RoleChange::Checking,
                verified: Vec::new(),
            },
            now,
        ))
    }

    /// A forced failover out of a role change that failed half-way, when the latest reading
    /// could not read one side: that side is taken as the current primary, and the other side
    /// is forced primary.
    pub(super) fn way_out_of(&self, phase: &State) -> Option<Steady> {
        let target = half_way_target(phase)?;
        let link = self.last_link.as_ref()?;
        if let Some(down) = link.unreachable {
            return Some(self.steady_after(down, true));
        }
        // Both sides read as SECONDARY: no primary at all. Force the side the role change was
        // for.
        if role_of(link, Side::SqlServer) == Some(ReplicaRole::Secondary)
            && role_of(link, Side::ManagedInstance) == Some(ReplicaRole::Secondary)
        {
            return Some(self.steady_after(target.other(), true));
        }
        None
    }
}
