//! Observations: what each answer to an effect does, per phase.

use super::*;

impl Machine {
    pub(super) fn take(&mut self, step: StepId) -> Result<Effect, RejectReason> {
        match self.in_flight.iter().position(|e| e.step() == step) {
            Some(i) => Ok(self.in_flight.remove(i)),
            None => Err(RejectReason::UnknownStep),
        }
    }

    pub(super) fn on_error(
        &mut self,
        state: State,
        effect: &Effect,
        error: StepError,
        now: Timestamp,
    ) -> Vec<Effect> {
        if matches!(effect, Effect::Probe { .. }) && error.retryable {
            self.state = state;
            self.last_probe_error = Some(error);
            self.schedule(now);
            Vec::new()
        } else if effect.is_role_change() && role_change_evidence(&error.code) {
            // The service says a role change is already running, or already done: that is
            // evidence, not a failure. Read the link (again later) and decide from the roles.
            self.state = checking(state);
            self.last_probe_error = Some(error);
            self.schedule(now);
            Vec::new()
        } else {
            self.fail(state, Some(effect.step()), error)
        }
    }

    pub(super) fn on_prepare(
        &mut self,
        step: PrepareStep,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        expect_done(obs)?;
        let next = match step {
            PrepareStep::MasterKey => State::PreparingSource {
                step: PrepareStep::EndpointCertificate,
            },
            PrepareStep::EndpointCertificate => State::PreparingSource {
                step: PrepareStep::Endpoint,
            },
            PrepareStep::Endpoint => State::ExchangingTrust {
                step: TrustStep::ExportCertificate,
            },
        };
        Ok(self.enter(next, now))
    }

    pub(super) fn on_trust(
        &mut self,
        step: TrustStep,
        effect: &Effect,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        let next = match step {
            TrustStep::ExportCertificate => TrustStep::UploadCertificate {
                public_key: expect_public_key(obs)?,
                operation: None,
            },
            TrustStep::UploadCertificate {
                public_key,
                operation,
            } => match arm_reply(effect, obs)? {
                ArmReply::Completed => TrustStep::GetInstanceCertificate,
                ArmReply::Accepted(op) => {
                    return Ok(self.wait(
                        State::ExchangingTrust {
                            step: TrustStep::UploadCertificate {
                                public_key,
                                operation: Some(op),
                            },
                        },
                        now,
                    ));
                }
                ArmReply::Running => {
                    return Ok(self.wait(
                        State::ExchangingTrust {
                            step: TrustStep::UploadCertificate {
                                public_key,
                                operation,
                            },
                        },
                        now,
                    ));
                }
            },
            TrustStep::GetInstanceCertificate => TrustStep::ImportInstanceCertificate {
                certificate: expect_public_key(obs)?,
            },
            TrustStep::ImportInstanceCertificate { .. } => {
                expect_done(obs)?;
                TrustStep::RootCertificates
            }
            TrustStep::RootCertificates => {
                expect_done(obs)?;
                return Ok(self.enter(
                    State::CreatingAg {
                        step: AgStep::Create,
                    },
                    now,
                ));
            }
        };
        Ok(self.enter(State::ExchangingTrust { step: next }, now))
    }

    pub(super) fn on_creating_ag(
        &mut self,
        step: AgStep,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        expect_done(obs)?;
        let next = match (step, self.spec.initial_primary) {
            (AgStep::Create, Side::ManagedInstance) => State::CreatingAg {
                step: AgStep::GrantCreateAnyDatabase,
            },
            (AgStep::Create, Side::SqlServer) | (AgStep::GrantCreateAnyDatabase, _) => {
                State::CreatingDag
            }
        };
        Ok(self.enter(next, now))
    }

    pub(super) fn on_joining(
        &mut self,
        effect: &Effect,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        match arm_reply(effect, obs)? {
            ArmReply::Completed => Ok(self.begin_seeding(now)),
            ArmReply::Accepted(op) => Ok(self.wait(
                State::JoiningInstance {
                    operation: Some(op),
                },
                now,
            )),
            ArmReply::Running => Ok(self.wait(
                State::JoiningInstance {
                    operation: polled_operation(effect),
                },
                now,
            )),
        }
    }

    /// The link exists on both sides: follow the seeding.
    pub(super) fn begin_seeding(&mut self, now: Timestamp) -> Vec<Effect> {
        self.seeding_started_at = Some(now);
        self.seeding_progress = None;
        let databases = self
            .spec
            .databases
            .iter()
            .map(|d| SeedingProgress {
                database: d.clone(),
                percent: None,
                last_error: None,
            })
            .collect();
        self.enter(State::Seeding { databases }, now)
    }

    pub(super) fn on_seeding(
        &mut self,
        mut databases: Vec<SeedingProgress>,
        step: Option<StepId>,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        let link = self.record_link(obs)?;
        let secondary = self.spec.initial_primary.other();
        let mut events = Vec::new();
        for progress in &mut databases {
            let percent = find_db(side_view(&link, secondary), &progress.database)
                .and_then(|d| d.seeding_percent)
                .or_else(|| {
                    find_db(side_view(&link, secondary.other()), &progress.database)
                        .and_then(|d| d.seeding_percent)
                })
                .map(|p| p.min(100));
            progress.last_error = find_db(side_view(&link, secondary), &progress.database)
                .and_then(|d| d.last_error.clone())
                .or_else(|| {
                    find_db(side_view(&link, secondary.other()), &progress.database)
                        .and_then(|d| d.last_error.clone())
                });
            if percent.is_some() && percent != progress.percent {
                progress.percent = percent;
                if let Some(percent) = percent {
                    self.events.push(ProgressEvent::Seeding {
                        database: progress.database.clone(),
                        percent,
                    });
                }
            }
        }
        if self.spec.options.seeding_timeout_sized {
            self.size_seeding_timeout(&databases, now);
        }
        let seeded = |name: &DatabaseName| {
            find_db(side_view(&link, secondary), name).is_some_and(|d| {
                matches!(
                    sync_state_of(&link, secondary, name),
                    Some(SyncState::Synchronizing | SyncState::Synchronized)
                ) && d.health == SyncHealth::Healthy
            })
        };
        // A seeding that cannot finish fails the phase now, not at the seeding timeout.
        let failure = self
            .spec
            .databases
            .iter()
            .filter(|name| !seeded(name))
            .find_map(|name| {
                [secondary, secondary.other()]
                    .into_iter()
                    .filter_map(|side| find_db(side_view(&link, side), name))
                    .find_map(SeedingFailure::of)
                    .map(|f| f.to_step_error(name))
            });
        if let Some(error) = failure {
            events.extend(self.fail(State::Seeding { databases }, step, error));
            return Ok(events);
        }
        let done = self.spec.databases.iter().all(seeded);
        if done {
            let (mode, health, lag_seconds, lag) =
                self.replication_report(&link, self.spec.initial_primary);
            self.events.extend(lag);
            events.extend(self.enter(
                State::Replicating {
                    mode,
                    health,
                    lag_seconds,
                },
                now,
            ));
        } else {
            events.extend(self.wait(State::Seeding { databases }, now));
        }
        Ok(events)
    }

    pub(super) fn on_replicating(&mut self, obs: Observation, now: Timestamp) -> Outcome {
        let link = self.record_link(obs)?;
        if both_primary(&link) {
            return Ok(self.enter(State::SplitBrain, now));
        }
        let (mode, health, lag_seconds, lag) =
            self.replication_report(&link, self.spec.initial_primary);
        self.events.extend(lag);
        self.pending_proof(&link, now);
        Ok(self.wait(
            State::Replicating {
                mode,
                health,
                lag_seconds,
            },
            now,
        ))
    }

    /// A reading while both sides were PRIMARY: still so, or resolved outside milink (exactly
    /// one PRIMARY, the other SECONDARY: go to that side's steady state; data may have been
    /// lost while both took writes).
    pub(super) fn on_split_brain(&mut self, obs: Observation, now: Timestamp) -> Outcome {
        let link = self.record_link(obs)?;
        let sql = role_of(&link, Side::SqlServer);
        let mi = role_of(&link, Side::ManagedInstance);
        let primary = match (sql, mi) {
            (Some(ReplicaRole::Primary), Some(ReplicaRole::Secondary)) => Side::SqlServer,
            (Some(ReplicaRole::Secondary), Some(ReplicaRole::Primary)) => Side::ManagedInstance,
            _ => {
                self.state = State::SplitBrain;
                return Ok(Vec::new());
            }
        };
        let steady = self.steady_after(primary, true);
        Ok(self.enter(steady.to_state(), now))
    }

    pub(super) fn on_failed_over(
        &mut self,
        primary: Side,
        data_loss_possible: bool,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        let link = self.record_link(obs)?;
        if both_primary(&link) {
            return Ok(self.enter(State::SplitBrain, now));
        }
        let (_, _, _, lag) = self.replication_report(&link, primary);
        self.events.extend(lag);
        self.pending_proof(&link, now);
        Ok(self.wait(
            State::FailedOver {
                primary,
                data_loss_possible,
            },
            now,
        ))
    }

    pub(super) fn on_preparing_failover(
        &mut self,
        plan: Plan,
        mut source_done: bool,
        mut instance: ArmCall,
        effect: &Effect,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        let mut schedule = false;
        self.mode_reply(effect, obs, &mut source_done, &mut instance, &mut schedule)?;
        if source_done && instance == ArmCall::Done {
            self.synchronous = true;
            if plan.goal == Goal::Prepare {
                return Ok(self.enter(plan.from.to_state(), now));
            }
            // The catch-up shares the preparation's timeout.
            let timeout = self.timeout_at;
            let effects = self.enter(
                State::CatchingUp {
                    plan,
                    stable: None,
                    blocker: None,
                },
                now,
            );
            self.timeout_at = timeout;
            return Ok(effects);
        }
        self.state = State::PreparingFailover {
            plan,
            source_done,
            instance,
        };
        if schedule {
            self.schedule(now);
        }
        Ok(Vec::new())
    }

    pub(super) fn on_aborting(
        &mut self,
        abort: Abort,
        mut source_done: bool,
        mut instance: ArmCall,
        effect: &Effect,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        let mut schedule = false;
        self.mode_reply(effect, obs, &mut source_done, &mut instance, &mut schedule)?;
        if source_done && instance == ArmCall::Done {
            self.synchronous = abort.restore_mode == Some(AvailabilityMode::SynchronousCommit);
            return Ok(self.enter(abort.back_to.to_state(), now));
        }
        self.state = State::AbortingFailover {
            abort,
            source_done,
            instance,
        };
        if schedule {
            self.schedule(now);
        }
        Ok(Vec::new())
    }

    /// The reply to one of the two availability-mode changes.
    pub(super) fn mode_reply(
        &mut self,
        effect: &Effect,
        obs: Observation,
        source_done: &mut bool,
        instance: &mut ArmCall,
        schedule: &mut bool,
    ) -> Result<(), RejectReason> {
        match effect {
            Effect::Source { .. } => {
                expect_done(obs)?;
                *source_done = true;
            }
            Effect::Instance { .. }
            | Effect::PollOperation { .. }
            | Effect::Arc { .. }
            | Effect::PollArc { .. } => match arm_reply(effect, obs)? {
                ArmReply::Completed => *instance = ArmCall::Done,
                ArmReply::Accepted(op) => {
                    *instance = ArmCall::Accepted(op);
                    *schedule = true;
                }
                ArmReply::Running => *schedule = true,
            },
            Effect::Probe { .. } | Effect::Redirect { .. } => {
                return Err(RejectReason::UnexpectedObservation {
                    expected: "an answer to an availability mode change",
                });
            }
        }
        Ok(())
    }

    pub(super) fn on_catching_up(
        &mut self,
        plan: Plan,
        stable: Option<StableLsns>,
        blocker: Option<CatchUpBlocker>,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        let link = self.record_link(obs)?;
        self.report_catch_up(&link, now);
        if both_primary(&link) {
            // One reading can catch the two sides on either side of a switch an earlier attempt
            // made (the instance's ARM reading lags): it is a split brain once it lasts.
            let since = match blocker {
                Some(CatchUpBlocker::BothPrimary { since }) => since,
                Some(_) | None => now,
            };
            if now.since(since) >= self.spec.options.stability_window {
                return Ok(self.enter(State::SplitBrain, now));
            }
            return Ok(self.wait(
                State::CatchingUp {
                    plan,
                    stable: None,
                    blocker: Some(CatchUpBlocker::BothPrimary { since }),
                },
                now,
            ));
        }
        // An earlier attempt of this role change is still running, or went through (its reply
        // was lost, or it completed after a failure): follow it, never send another.
        if role_change_running(&link) {
            return Ok(self.wait(
                State::CatchingUp {
                    plan,
                    stable: None,
                    blocker: Some(CatchUpBlocker::RolesNotAsExpected),
                },
                now,
            ));
        }
        if self.spec.is_two_way()
            && role_of(&link, plan.target) == Some(ReplicaRole::Primary)
            && role_of(&link, plan.target.other()) == Some(ReplicaRole::Secondary)
        {
            let then = self.then_of(&plan.goal, plan.target, now);
            return Ok(self.enter(
                State::VerifyingRoles {
                    primary: plan.target,
                    strict: true,
                    then,
                    both_primary_since: None,
                },
                now,
            ));
        }
        // The guards of the role change, on this fresh reading of the live servers.
        let guard = match plan.goal {
            Goal::Failover | Goal::Failback => self.failback_guard(),
            Goal::Cutover(_) if plan.target == Side::SqlServer => self.failback_guard(),
            Goal::Cutover(_) | Goal::Prepare => Ok(()),
        };
        if let Err(reason) = guard {
            let error = StepError {
                code: "guard".to_owned(),
                message: format!(
                    "the role change to {} is refused on the servers' current state: {reason}. \
                     Cancel returns to the steady state it started from",
                    side_name(plan.target)
                ),
                retryable: false,
            };
            let state = State::CatchingUp {
                plan,
                stable: None,
                blocker: None,
            };
            return Ok(self.fail(state, None, error));
        }
        let (stable, blocker) = match self.catch_up_gate(&link, plan.target) {
            Err(CatchUpBlocker::ModeNotSynchronous { .. }) if plan.prepared => {
                // The switch was skipped on an earlier reading and a side is asynchronous
                // now: make it (the catch-up shares the timeout).
                self.synchronous = false;
                let timeout = self.timeout_at;
                let effects = self.enter(
                    State::PreparingFailover {
                        plan: Plan {
                            prepared: false,
                            retried: false,
                            ..plan
                        },
                        source_done: false,
                        instance: ArmCall::Requested,
                    },
                    now,
                );
                self.timeout_at = timeout;
                return Ok(effects);
            }
            Err(blocker) => (None, blocker),
            Ok(lsns) => {
                let live = link.instance.live;
                let (mut stable, moved) = match stable {
                    Some(s) if s.lsns == lsns => (
                        StableLsns {
                            readings: s.readings.saturating_add(1),
                            live: s.live && live,
                            ..s
                        },
                        false,
                    ),
                    Some(_) => (
                        StableLsns {
                            lsns,
                            since: now,
                            readings: 1,
                            quiet: None,
                            live,
                        },
                        true,
                    ),
                    None => (
                        StableLsns {
                            lsns,
                            since: now,
                            readings: 1,
                            quiet: None,
                            live,
                        },
                        false,
                    ),
                };
                if stable.quiet.is_none() && self.mutated_quiet_check() {
                    stable.quiet = Some(true);
                }
                let quiet_window = self.spec.options.quiet_stability_window;
                if quiet_window.is_none() || plan.retried {
                    // The workload is not read, or an attempt was made: the long window.
                    stable.quiet = Some(false);
                }
                let window = match (stable.quiet, quiet_window) {
                    (Some(true), Some(_)) if stable.live => {
                        self.spec.options.live_quiet_stability_window
                    }
                    (Some(true), Some(w)) => w,
                    _ => self.spec.options.stability_window,
                };
                if (stable.readings >= 2 && now.since(stable.since) >= window)
                    || self.mutated_stability()
                {
                    return Ok(self.after_catch_up(plan, stable.lsns, now));
                }
                let blocker = if moved {
                    CatchUpBlocker::LsnsStillMoving
                } else {
                    CatchUpBlocker::Stabilizing {
                        since: stable.since,
                    }
                };
                if stable.quiet.is_none() {
                    // First equal reading of these values: read who is still connected to the
                    // primary now. Quiet, the window shrinks; a session that connects after
                    // this reading and commits moves the LSNs.
                    let side = plan.target.other();
                    let probe = self.probe(Probe::Workload { side });
                    self.state = State::CatchingUp {
                        plan,
                        stable: Some(stable),
                        blocker: Some(blocker),
                    };
                    self.wake_at = None;
                    return Ok(vec![probe]);
                }
                (Some(stable), blocker)
            }
        };
        Ok(self.wait(
            State::CatchingUp {
                plan,
                stable,
                blocker: Some(blocker),
            },
            now,
        ))
    }

    /// One `CatchUp` event per database of the link: both sides' `last_hardened_lsn` in this
    /// reading and, while they are equal, since how long they have been equal to this value.
    fn report_catch_up(&mut self, link: &LinkObservation, now: Timestamp) {
        for database in link_databases(&self.spec.databases, link) {
            let lsn = |side: Side| {
                find_db(side_view(link, side), &database).and_then(|d| d.last_hardened_lsn)
            };
            let (sql_server, managed_instance) = (lsn(Side::SqlServer), lsn(Side::ManagedInstance));
            let known = self.lsns_equal.iter().position(|(d, _, _)| *d == database);
            let equal_for = match (sql_server, managed_instance) {
                (Some(a), Some(b)) if a == b => {
                    let since = match known.map(|i| &self.lsns_equal[i]) {
                        Some((_, lsn, since)) if *lsn == a => *since,
                        Some(_) | None => now,
                    };
                    match known {
                        Some(i) => self.lsns_equal[i] = (database.clone(), a, since),
                        None => self.lsns_equal.push((database.clone(), a, since)),
                    }
                    Some(now.since(since))
                }
                _ => {
                    if let Some(i) = known {
                        self.lsns_equal.remove(i);
                    }
                    None
                }
            };
            self.events.push(ProgressEvent::CatchUp {
                database,
                sql_server,
                managed_instance,
                equal_for,
            });
        }
    }

    /// The LSN gate passed: fail over (two-way) or go on with a one-way cutover.
    pub(super) fn after_catch_up(
        &mut self,
        plan: Plan,
        lsns: Vec<(DatabaseName, Lsn)>,
        now: Timestamp,
    ) -> Vec<Effect> {
        let target = plan.target;
        // One-way: fence SQL Server's writes, check, then remove the link.
        if matches!(plan.goal, Goal::Cutover(_)) && !self.spec.is_two_way() {
            return self.enter(
                State::Fencing {
                    plan,
                    step: FenceStep::Demote {
                        change: RoleChange::Issued,
                    },
                },
                now,
            );
        }
        self.role_changed_at = Some(now);
        let then = self.then_of(&plan.goal, target, now);
        let via = if target.other() == Side::SqlServer && self.spec.capabilities().tsql_failover {
            FailoverVia::Tsql
        } else {
            FailoverVia::Arm
        };
        self.verified_lsns = lsns;
        self.enter(
            State::FailingOver {
                target,
                via,
                change: RoleChange::Issued,
                then,
                plan: Some(plan),
                cancel: false,
            },
            now,
        )
    }

    /// Where a two-way role change for `goal` goes once the roles are verified.
    pub(super) fn then_of(&self, goal: &Goal, target: Side, now: Timestamp) -> Then {
        match goal {
            Goal::Cutover(options) => Then::AwaitFirstFullBackup {
                options: options.clone(),
                backup_after: Some(self.role_changed_at.unwrap_or(now)),
                abort: Abort {
                    back_to: self.steady_after(target, false),
                    restore_mode: None,
                },
            },
            Goal::Failover | Goal::Failback | Goal::Prepare => self.then_after(target, false),
        }
    }

    pub(super) fn on_failing_over(
        &mut self,
        failover: Failover,
        effect: &Effect,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        let target = failover.target;
        match effect {
            Effect::Probe { .. } => {
                let link = self.record_link(obs)?;
                let new = role_of(&link, target);
                let old = role_of(&link, target.other());
                if role_change_running(&link) {
                    return Ok(self.wait(failover.state(RoleChange::Checking), now));
                }
                match (new, old) {
                    // The target took the role (both PRIMARY in one reading can be the two
                    // sides read on either side of the switch): the strict role check decides,
                    // and calls it a split brain only if it lasts.
                    (Some(ReplicaRole::Primary), _) => Ok(self.enter(
                        State::VerifyingRoles {
                            primary: target,
                            strict: true,
                            then: failover.then,
                            both_primary_since: None,
                        },
                        now,
                    )),
                    // The roles did not change. Never send the failover again on readings taken
                    // before it: run the catch-up gate again (or abandon, on cancel).
                    (Some(ReplicaRole::Secondary), Some(ReplicaRole::Primary)) => {
                        match failover.plan {
                            Some(plan) if failover.cancel => {
                                self.verified_lsns.clear();
                                Ok(self.abort(plan_abort(&plan), now))
                            }
                            // Arc's failoverMiLink gates on SYNCHRONIZED itself: send it again.
                            Some(_) if failover.via == FailoverVia::Arc => {
                                self.state = failover.state(RoleChange::Issued);
                                Ok(self.kick())
                            }
                            // The verified LSNs stay: if the earlier attempt went through after
                            // all, they are what its proof compares against.
                            Some(plan) => Ok(self.enter(
                                State::CatchingUp {
                                    plan: Plan {
                                        retried: true,
                                        ..plan
                                    },
                                    stable: None,
                                    blocker: None,
                                },
                                now,
                            )),
                            None => {
                                self.state = failover.state(RoleChange::Issued);
                                Ok(self.kick())
                            }
                        }
                    }
                    _ => Ok(self.wait(failover.state(RoleChange::Checking), now)),
                }
            }
            Effect::Source { .. }
            | Effect::Instance { .. }
            | Effect::PollOperation { .. }
            | Effect::Arc { .. }
            | Effect::PollArc { .. } => match change_reply(effect, obs)? {
                None => Ok(self.enter(
                    State::VerifyingRoles {
                        primary: target,
                        strict: true,
                        then: failover.then,
                        both_primary_since: None,
                    },
                    now,
                )),
                Some(change) => Ok(self.wait(failover.state(change), now)),
            },
            Effect::Redirect { .. } => Err(RejectReason::UnexpectedObservation {
                expected: "an answer to the failover",
            }),
        }
    }

    pub(super) fn on_forcing(
        &mut self,
        target: Side,
        then: Then,
        effect: &Effect,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        if let Effect::Probe { .. } = effect {
            let link = self.record_link(obs)?;
            return Ok(self.on_force_check(target, then, &link, now));
        }
        match change_reply(effect, obs)? {
            None => Ok(self.enter(
                State::VerifyingRoles {
                    primary: target,
                    strict: false,
                    then,
                    both_primary_since: None,
                },
                now,
            )),
            Some(change) => Ok(self.wait(
                State::ForcingFailover {
                    target,
                    change,
                    then,
                },
                now,
            )),
        }
    }

    /// The roles read before re-sending a forced failover whose reply was lost. The force runs
    /// on the target, so the target's role tells whether it happened; the old primary may be
    /// down (the reason to force) and report nothing.
    pub(super) fn on_force_check(
        &mut self,
        target: Side,
        then: Then,
        link: &LinkObservation,
        now: Timestamp,
    ) -> Vec<Effect> {
        let new = role_of(link, target);
        let old = role_of(link, target.other());
        if role_change_running(link) {
            return self.wait(
                State::ForcingFailover {
                    target,
                    change: RoleChange::Checking,
                    then,
                },
                now,
            );
        }
        match (new, old) {
            // It happened: never force again (a second force would hand the role back). If the
            // old primary still reports PRIMARY, the role check calls it a split brain once it
            // lasts (one reading can catch the sides on either side of the switch).
            (Some(ReplicaRole::Primary), _) => self.enter(
                State::VerifyingRoles {
                    primary: target,
                    strict: false,
                    then,
                    both_primary_since: None,
                },
                now,
            ),
            // It did not (or has not been sent yet): the target is still secondary and nothing
            // else took the primary role. The guards again, on this fresh reading, then send.
            (Some(ReplicaRole::Secondary), Some(ReplicaRole::Primary) | None) => {
                if let Err(reason) = self.forced_guard(target, link) {
                    let error = StepError {
                        code: "guard".to_owned(),
                        message: format!(
                            "the forced failover to {} is refused on the servers' current \
                             state: {reason}",
                            side_name(target)
                        ),
                        retryable: false,
                    };
                    let state = State::ForcingFailover {
                        target,
                        change: RoleChange::Checking,
                        then,
                    };
                    return self.fail(state, None, error);
                }
                self.state = State::ForcingFailover {
                    target,
                    change: RoleChange::Issued,
                    then,
                };
                self.kick()
            }
            // Resolving, or both secondary: the roles are moving; read them again.
            (
                Some(ReplicaRole::Secondary),
                Some(ReplicaRole::Secondary | ReplicaRole::Resolving),
            )
            | (Some(ReplicaRole::Resolving) | None, _) => self.wait(
                State::ForcingFailover {
                    target,
                    change: RoleChange::Checking,
                    then,
                },
                now,
            ),
        }
    }

    pub(super) fn on_verifying(
        &mut self,
        primary: Side,
        strict: bool,
        then: Then,
        both_primary_since: Option<Timestamp>,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        let link = self.record_link(obs)?;
        let new = role_of(&link, primary);
        let old = role_of(&link, primary.other());
        let mut both_since = None;
        if new == Some(ReplicaRole::Primary) {
            // Both PRIMARY: right after a demotion a lagging reading may still say so; when it
            // lasts the stability window, it is a split brain.
            if old == Some(ReplicaRole::Primary) {
                let since = both_primary_since.unwrap_or(now);
                if now.since(since) >= self.spec.options.stability_window {
                    return Ok(self.enter(State::SplitBrain, now));
                }
                both_since = Some(since);
            }
            // A planned role change demotes the old primary itself; when that side can no
            // longer be read, go on (the steady state keeps reading it, and a split brain is
            // seen there), and prove the logs once it can be read again.
            if strict && old.is_none() && !link.reachable(primary.other()) {
                if !self.verified_lsns.is_empty() {
                    self.proof_pending = Some(primary);
                    self.unverified.push(format!(
                        "after the role change to {}: {} could not be read, so whether it holds \
                         transactions {} never hardened is not known yet; milink compares the \
                         logs when it can read it again",
                        side_name(primary),
                        side_name(primary.other()),
                        side_name(primary)
                    ));
                }
                return Ok(self.begin_redirect(primary, then, now));
            }
            if strict && old == Some(ReplicaRole::Secondary) {
                self.forced = false;
                self.prove_role_change(&link, primary, now);
                return Ok(self.begin_redirect(primary, then, now));
            }
            if !strict && old != Some(ReplicaRole::Primary) {
                return Ok(self.begin_redirect(primary, then, now));
            }
        }
        Ok(self.wait(
            State::VerifyingRoles {
                primary,
                strict,
                then,
                both_primary_since: both_since,
            },
            now,
        ))
    }

    pub(super) fn after_redirect(
        &mut self,
        primary: Side,
        then: Then,
        now: Timestamp,
    ) -> Vec<Effect> {
        let next = match then {
            Then::FailedOver { data_loss_possible } => State::FailedOver {
                primary,
                data_loss_possible,
            },
            Then::Replicating => Steady::Replicating.to_state(),
            Then::AwaitFirstFullBackup {
                options,
                backup_after,
                abort,
            } => State::AwaitingFirstFullBackup {
                options,
                backup_after,
                redirect_after_removal: false,
                abort,
                missing: self.spec.databases.clone(),
            },
            Then::DropDag { options } => State::DroppingDag { options },
        };
        self.enter(next, now)
    }

    pub(super) fn on_repairing(
        &mut self,
        keep: Side,
        effect: &Effect,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        let verify = |m: &mut Machine| {
            let then = m.then_after(keep, true);
            m.enter(
                State::VerifyingRoles {
                    primary: keep,
                    strict: true,
                    then,
                    both_primary_since: None,
                },
                now,
            )
        };
        if let Effect::Probe { .. } = effect {
            let link = self.record_link(obs)?;
            if role_change_running(&link) {
                return Ok(self.wait(
                    State::Repairing {
                        keep,
                        change: RoleChange::Checking,
                    },
                    now,
                ));
            }
            return Ok(match (role_of(&link, keep), role_of(&link, keep.other())) {
                // Both PRIMARY: demote the other side.
                (Some(ReplicaRole::Primary), Some(ReplicaRole::Primary)) => {
                    self.state = State::Repairing {
                        keep,
                        change: RoleChange::Issued,
                    };
                    self.kick()
                }
                // Already repaired (by the demotion, or outside milink).
                (Some(ReplicaRole::Primary), Some(ReplicaRole::Secondary)) => verify(self),
                // The side to keep is not PRIMARY: demoting the other would leave none.
                (Some(ReplicaRole::Secondary), _) => {
                    let error = StepError {
                        code: "guard".to_owned(),
                        message: format!(
                            "refusing to demote {}: {} is not PRIMARY (it reports SECONDARY), \
                             so the demotion would leave no primary. Read the roles \
                             (health) and keep the side that is PRIMARY, or cancel to settle \
                             on the roles the servers report",
                            side_name(keep.other()),
                            side_name(keep),
                        ),
                        retryable: false,
                    };
                    let state = State::Repairing {
                        keep,
                        change: RoleChange::Checking,
                    };
                    let step = Some(effect.step());
                    self.fail(state, step, error)
                }
                // A side that cannot be read, or roles still moving: read again.
                (Some(ReplicaRole::Primary) | Some(ReplicaRole::Resolving) | None, _) => self.wait(
                    State::Repairing {
                        keep,
                        change: RoleChange::Checking,
                    },
                    now,
                ),
            });
        }
        Ok(match change_reply(effect, obs)? {
            None => verify(self),
            Some(change) => self.wait(State::Repairing { keep, change }, now),
        })
    }

    pub(super) fn on_first_backup(
        &mut self,
        options: crate::lifecycle::input::CutoverOptions,
        backup_after: Option<Timestamp>,
        redirect_after_removal: bool,
        abort: Abort,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        let backups = expect_backups(obs)?;
        let missing = missing_backups(&self.link_databases(), &backups, backup_after);
        if missing.is_empty() {
            // One-way: SQL Server is still primary; catch up, fence, then remove the link.
            if redirect_after_removal {
                let plan = Plan {
                    goal: Goal::Cutover(options),
                    from: abort.back_to,
                    target: Side::ManagedInstance,
                    restore_mode: self.current_mode(),
                    prepared: false,
                    retried: false,
                };
                return Ok(self.begin_role_change(plan, now));
            }
            // Two-way: the instance is primary; read the link before the DELETE.
            return Ok(self.enter(
                State::RemovingLink {
                    options,
                    redirect: false,
                    removal: RoleChange::Checking,
                    verified: Vec::new(),
                },
                now,
            ));
        }
        Ok(self.wait(
            State::AwaitingFirstFullBackup {
                options,
                backup_after,
                redirect_after_removal,
                abort,
                missing,
            },
            now,
        ))
    }

    pub(super) fn on_removing_link(
        &mut self,
        options: crate::lifecycle::input::CutoverOptions,
        redirect: bool,
        verified: Vec<(DatabaseName, Lsn)>,
        effect: &Effect,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        let state = |removal| State::RemovingLink {
            options: options.clone(),
            redirect,
            removal,
            verified: verified.clone(),
        };
        if let Effect::Probe { .. } = effect {
            let link = self.record_link(obs)?;
            if !link.reachable(Side::ManagedInstance) {
                // Never decide on a side that could not be read: read again.
                return Ok(self.wait(state(RoleChange::Checking), now));
            }
            if !link.instance.exists {
                // The link existed (it replicated), so its absence means the DELETE went
                // through. Prove nothing was left behind on SQL Server.
                self.prove_removal(&link, &verified, now);
                return Ok(self.after_link_removal(options, redirect, now));
            }
            if both_primary(&link) {
                return Ok(self.enter(State::SplitBrain, now));
            }
            if self.removal_gate(&link, redirect, &verified) {
                self.state = state(RoleChange::Issued);
                return Ok(self.kick());
            }
            return Ok(self.wait(state(RoleChange::Checking), now));
        }
        Ok(match change_reply(effect, obs)? {
            // Confirm with a reading (which also compares the logs) before going on.
            None => {
                self.state = state(RoleChange::Checking);
                self.kick()
            }
            Some(change) => self.wait(state(change), now),
        })
    }

    /// Whether the link may be deleted on this reading. One-way (fenced): SQL Server is not
    /// PRIMARY and, for every database, its end of log equals what the instance hardened (and
    /// what the fence verified). Two-way (after the failover): the instance is PRIMARY and SQL
    /// Server is not (SQL Server's log then comes from the instance; the failover itself was
    /// proven when the roles were verified).
    pub(super) fn removal_gate(
        &self,
        link: &LinkObservation,
        fenced: bool,
        verified: &[(DatabaseName, Lsn)],
    ) -> bool {
        if role_of(link, Side::SqlServer) == Some(ReplicaRole::Primary) {
            return false;
        }
        // After a forced role change the old primary may still be up and PRIMARY: it must be
        // read, not assumed, before the link goes (unless the removal itself was forced).
        if self.forced && !link.reachable(Side::SqlServer) && !(fenced && verified.is_empty()) {
            return false;
        }
        if !fenced {
            return role_of(link, Side::ManagedInstance) == Some(ReplicaRole::Primary);
        }
        // A removal forced out of a stuck fence: nothing to verify (the machine says so).
        if verified.is_empty() && self.forced {
            return true;
        }
        link_databases(&self.spec.databases, link)
            .iter()
            .all(|name| match log_ends(link, name) {
                (Some(source), Some(instance)) => {
                    (source == instance || self.mutated_equality())
                        && verified
                            .iter()
                            .find(|(n, _)| n == name)
                            .is_none_or(|(_, l)| *l == source || self.mutated_equality())
                }
                (Some(_) | None, None) | (None, Some(_)) => false,
            })
    }

    /// After the link's removal: SQL Server's end of log must still be what the fence verified.
    pub(super) fn prove_removal(
        &mut self,
        link: &LinkObservation,
        verified: &[(DatabaseName, Lsn)],
        now: Timestamp,
    ) {
        if !link.reachable(Side::SqlServer) {
            if !verified.is_empty() {
                self.unverified.push(
                    "after the link was removed SQL Server could not be read, so whether it \
                     wrote log the managed instance never received is not known"
                        .to_owned(),
                );
            }
            return;
        }
        for (name, hardened) in verified {
            if let (Some(end), _) = log_ends(link, name)
                && end > *hardened
            {
                self.report_loss(DataLoss {
                    database: name.clone(),
                    side: Side::SqlServer,
                    end_of_log: end,
                    hardened: Some(*hardened),
                    seen_at: now,
                    context: "after the link was removed: SQL Server wrote log the managed \
                              instance never received"
                        .to_owned(),
                });
            }
        }
    }

    /// After a planned role change, on the first reading with the new roles: the old primary
    /// holds no log beyond what the new primary hardened, and does not revert anything.
    pub(super) fn prove_role_change(
        &mut self,
        link: &LinkObservation,
        primary: Side,
        now: Timestamp,
    ) {
        let verified = std::mem::take(&mut self.verified_lsns);
        if verified.is_empty() {
            // Not a planned role change (a repair or a forced failover): loss is expected.
            return;
        }
        let old = primary.other();
        for name in link_databases(&self.spec.databases, link) {
            let (source, instance) = log_ends(link, &name);
            let (old_end, new_hardened) = match old {
                Side::SqlServer => (source, instance),
                Side::ManagedInstance => (instance, source),
            };
            let reverting = sync_state_of(link, old, &name) == Some(SyncState::Reverting);
            let behind = matches!((old_end, new_hardened), (Some(o), Some(n)) if o > n);
            if (reverting || behind)
                && let Some(end_of_log) = old_end
            {
                self.report_loss(DataLoss {
                    database: name,
                    side: old,
                    end_of_log,
                    hardened: new_hardened,
                    seen_at: now,
                    context: if reverting {
                        "after the failover: the old primary is reverting log the new primary \
                         never hardened"
                            .to_owned()
                    } else {
                        "after the failover".to_owned()
                    },
                });
            }
        }
    }

    /// Feature `mutations` only: the LSN-equality checks are switched off.
    pub(super) fn mutated_equality(&self) -> bool {
        #[cfg(feature = "mutations")]
        {
            self.spec.options.mutations.skip_lsn_equality
        }
        #[cfg(not(feature = "mutations"))]
        {
            false
        }
    }

    /// Feature `mutations` only: the stability requirement is switched off.
    pub(super) fn mutated_quiet_check(&self) -> bool {
        #[cfg(feature = "mutations")]
        {
            self.spec.options.mutations.skip_quiet_check
        }
        #[cfg(not(feature = "mutations"))]
        {
            false
        }
    }

    /// The gate's reading of the primary's workload (`None`: it could not be read): quiet
    /// (no client session on the link's databases) shortens the window for the LSNs read.
    pub(super) fn on_gate_workload(
        &mut self,
        plan: Plan,
        stable: Option<StableLsns>,
        blocker: Option<CatchUpBlocker>,
        obs: Option<Observation>,
        now: Timestamp,
    ) -> Vec<Effect> {
        let quiet = match obs {
            Some(Observation::Workload(activity)) => {
                activity.is_quiet() && !activity.has_open_transactions()
            }
            Some(_) | None => false,
        };
        let stable = stable.map(|s| StableLsns {
            quiet: Some(quiet),
            ..s
        });
        self.wait(
            State::CatchingUp {
                plan,
                stable,
                blocker,
            },
            now,
        )
    }

    pub(super) fn mutated_stability(&self) -> bool {
        #[cfg(feature = "mutations")]
        {
            self.spec.options.mutations.skip_stability
        }
        #[cfg(not(feature = "mutations"))]
        {
            false
        }
    }

    /// The proof of a planned role change whose old primary could not be read then, on the
    /// first reading that can read it.
    pub(super) fn pending_proof(&mut self, link: &LinkObservation, now: Timestamp) {
        match self.proof_pending {
            Some(primary) if link.reachable(primary.other()) && link.reachable(primary) => {
                self.proof_pending = None;
                self.unverified.clear();
                self.prove_role_change(link, primary, now);
            }
            Some(_) | None => {}
        }
    }

    pub(super) fn report_loss(&mut self, report: DataLoss) {
        self.data_loss.push(report.clone());
        self.events.push(ProgressEvent::DataLoss { report });
    }

    pub(super) fn on_fencing(
        &mut self,
        plan: Plan,
        step: FenceStep,
        effect: &Effect,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        let fencing = |step| State::Fencing {
            plan: plan.clone(),
            step,
        };
        match (step, effect) {
            (FenceStep::Demote { .. }, Effect::Source { .. }) => {
                expect_done(obs)?;
                Ok(self.enter(fencing(FenceStep::Verify { behind_since: None }), now))
            }
            (FenceStep::Demote { .. }, Effect::Probe { .. }) => {
                let link = self.record_link(obs)?;
                Ok(match role_of(&link, Side::SqlServer) {
                    Some(ReplicaRole::Secondary) => {
                        self.enter(fencing(FenceStep::Verify { behind_since: None }), now)
                    }
                    Some(ReplicaRole::Primary) => {
                        self.state = fencing(FenceStep::Demote {
                            change: RoleChange::Issued,
                        });
                        self.kick()
                    }
                    Some(ReplicaRole::Resolving) | None => self.wait(
                        fencing(FenceStep::Demote {
                            change: RoleChange::Checking,
                        }),
                        now,
                    ),
                })
            }
            (FenceStep::Verify { behind_since }, Effect::Probe { .. }) => {
                let link = self.record_link(obs)?;
                match role_of(&link, Side::SqlServer) {
                    // The fence was lifted outside milink: fence again.
                    Some(ReplicaRole::Primary) => {
                        self.state = fencing(FenceStep::Demote {
                            change: RoleChange::Issued,
                        });
                        return Ok(self.kick());
                    }
                    Some(ReplicaRole::Secondary) => {}
                    Some(ReplicaRole::Resolving) | None => {
                        return Ok(self.wait(fencing(FenceStep::Verify { behind_since }), now));
                    }
                }
                let names = link_databases(&self.spec.databases, &link);
                let mut lsns = Vec::with_capacity(names.len());
                for name in &names {
                    if let (Some(source), Some(instance)) = log_ends(&link, name)
                        && (source == instance || self.mutated_equality())
                    {
                        lsns.push((name.clone(), source));
                    }
                }
                if lsns.len() == names.len() && !names.is_empty() {
                    let Goal::Cutover(options) = plan.goal else {
                        return Err(RejectReason::NotAllowedInState);
                    };
                    return Ok(self.enter(
                        State::RemovingLink {
                            options,
                            redirect: true,
                            removal: RoleChange::Issued,
                            verified: lsns,
                        },
                        now,
                    ));
                }
                // The instance's reading may lag; a gap that outlasts the stability window is
                // real: SQL Server holds log the instance never hardened. Undo the fence.
                let since = behind_since.unwrap_or(now);
                if now.since(since) >= self.spec.options.stability_window {
                    return Ok(self.enter(
                        fencing(FenceStep::Undo {
                            change: RoleChange::Issued,
                            cancel: false,
                        }),
                        now,
                    ));
                }
                Ok(self.wait(
                    fencing(FenceStep::Verify {
                        behind_since: Some(since),
                    }),
                    now,
                ))
            }
            (FenceStep::Undo { cancel, .. }, Effect::Source { .. }) => {
                expect_done(obs)?;
                Ok(self.after_undo(plan, cancel, now))
            }
            (FenceStep::Undo { cancel, .. }, Effect::Probe { .. }) => {
                let link = self.record_link(obs)?;
                Ok(match role_of(&link, Side::SqlServer) {
                    Some(ReplicaRole::Primary) => self.after_undo(plan, cancel, now),
                    Some(ReplicaRole::Secondary) => {
                        self.state = fencing(FenceStep::Undo {
                            change: RoleChange::Issued,
                            cancel,
                        });
                        self.kick()
                    }
                    Some(ReplicaRole::Resolving) | None => self.wait(
                        fencing(FenceStep::Undo {
                            change: RoleChange::Checking,
                            cancel,
                        }),
                        now,
                    ),
                })
            }
            (
                FenceStep::Verify { .. },
                Effect::Source { .. }
                | Effect::Instance { .. }
                | Effect::PollOperation { .. }
                | Effect::Arc { .. }
                | Effect::PollArc { .. }
                | Effect::Redirect { .. },
            )
            | (
                FenceStep::Demote { .. } | FenceStep::Undo { .. },
                Effect::Instance { .. }
                | Effect::PollOperation { .. }
                | Effect::Arc { .. }
                | Effect::PollArc { .. }
                | Effect::Redirect { .. },
            ) => Err(RejectReason::UnexpectedObservation {
                expected: "an answer to the fence",
            }),
        }
    }

    /// SQL Server takes writes again: run the gate again, or abandon the cutover on cancel.
    pub(super) fn after_undo(&mut self, plan: Plan, cancel: bool, now: Timestamp) -> Vec<Effect> {
        if cancel {
            self.abort(plan_abort(&plan), now)
        } else if self.fences_undone + 1 >= MAX_FENCES {
            self.fences_undone = 0;
            let error = StepError {
                code: "timeout".to_owned(),
                message: format!(
                    "SQL Server was fenced {MAX_FENCES} times and each time held log the managed \
                     instance had not received: the workload still writes to SQL Server. Stop \
                     it, then resume (the gate runs again); SQL Server takes writes meanwhile"
                ),
                retryable: true,
            };
            let state = State::CatchingUp {
                plan: Plan {
                    retried: true,
                    ..plan
                },
                stable: None,
                blocker: None,
            };
            self.fail(state, None, error)
        } else {
            self.fences_undone += 1;
            self.enter(
                State::CatchingUp {
                    plan: Plan {
                        retried: true,
                        ..plan
                    },
                    stable: None,
                    blocker: None,
                },
                now,
            )
        }
    }

    /// Cancel during the fence: read SQL Server's role, undo the fence if it holds, then
    /// abandon the cutover.
    pub(super) fn undo_fence(&mut self, plan: Plan, now: Timestamp) -> Vec<Effect> {
        self.enter(
            State::Fencing {
                plan,
                step: FenceStep::Undo {
                    change: RoleChange::Checking,
                    cancel: true,
                },
            },
            now,
        )
    }

    /// A new redirect (a role change was verified, or a one-way link was removed): counted once
    /// here, so retries and resumes of the same redirect keep its id.
    pub(super) fn begin_redirect(
        &mut self,
        primary: Side,
        then: Then,
        now: Timestamp,
    ) -> Vec<Effect> {
        self.redirects += 1;
        self.enter(State::Redirecting { primary, then }, now)
    }

    /// The link resource is gone: redirect first (one-way cutover), then drop the DAG.
    pub(super) fn after_link_removal(
        &mut self,
        options: crate::lifecycle::input::CutoverOptions,
        redirect: bool,
        now: Timestamp,
    ) -> Vec<Effect> {
        if redirect {
            self.begin_redirect(Side::ManagedInstance, Then::DropDag { options }, now)
        } else if self.spec.route.is_arc() {
            // Arc's deleteMiLink dropped the DAG on SQL Server too.
            self.enter(State::Completed, now)
        } else {
            self.enter(State::DroppingDag { options }, now)
        }
    }

    pub(super) fn on_cancelling(
        &mut self,
        step: CancelStep,
        effect: &Effect,
        obs: Observation,
        now: Timestamp,
    ) -> Outcome {
        let next = match step {
            CancelStep::DeleteLink { .. } if matches!(effect, Effect::Probe { .. }) => {
                // The DELETE's reply was lost. An absent link counts as deleted only if its join
                // was confirmed; otherwise the PUT may still be creating it: delete again.
                let link = self.record_link(obs)?;
                let joined = self.seeding_started_at.is_some();
                if !link.reachable(Side::ManagedInstance) {
                    return Ok(self.wait(
                        State::Cancelling {
                            step: CancelStep::DeleteLink {
                                removal: RoleChange::Checking,
                            },
                        },
                        now,
                    ));
                }
                if link.instance.exists || !joined {
                    self.state = State::Cancelling {
                        step: CancelStep::DeleteLink {
                            removal: RoleChange::Issued,
                        },
                    };
                    return Ok(self.kick());
                }
                self.cancel_after(step)
            }
            CancelStep::DeleteLink { .. } => match change_reply(effect, obs)? {
                None => self.cancel_after(step),
                Some(removal) => {
                    return Ok(self.wait(
                        State::Cancelling {
                            step: CancelStep::DeleteLink { removal },
                        },
                        now,
                    ));
                }
            },
            CancelStep::DropDag | CancelStep::DropAg => {
                expect_done(obs)?;
                self.cancel_after(step)
            }
        };
        Ok(self.enter(next, now))
    }

    /// The cancel step after `done`, or Cancelled.
    pub(super) fn cancel_after(&self, done: CancelStep) -> State {
        let dag = self.attempted.dag;
        let ag = self.attempted.ag;
        let next = match done {
            CancelStep::DeleteLink { .. } if dag => Some(CancelStep::DropDag),
            CancelStep::DeleteLink { .. } | CancelStep::DropDag if ag => Some(CancelStep::DropAg),
            CancelStep::DeleteLink { .. } | CancelStep::DropDag | CancelStep::DropAg => None,
        };
        match next {
            Some(step) => State::Cancelling { step },
            None => State::Cancelled,
        }
    }
}
