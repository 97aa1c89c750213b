//! The planner: the pure machine driven with successful answers from a scripted pair of servers.

use super::*;

/// Drives the machine and collects what it issues.
pub(super) struct Planner<'a> {
    pub(super) machine: Machine,
    pub(super) now: Timestamp,
    pub(super) world: Scripted,
    pub(super) ctx: &'a RenderContext,
    pub(super) instance: InstanceId,
    pub(super) stages: Vec<Stage>,
}

impl Planner<'_> {
    /// Sends `command` and answers until the machine reaches the operation's goal, then answers
    /// what the steady state still has in flight (its first reading).
    pub(super) fn run(&mut self, operation: Operation, command: Command) -> Result<(), PlanError> {
        self.feed(operation, Input::Command(command))?;
        let mut inputs = 0;
        loop {
            let reached = operation.reached(self.machine.state());
            let next = self.machine.in_flight().into_iter().next();
            if inputs >= MAX_INPUTS_PER_OPERATION {
                return Err(PlanError::NoProgress {
                    operation,
                    phase: self.machine.state().phase(),
                });
            }
            inputs += 1;
            match (
                next.map(|e| {
                    let step = e.step();
                    (e, step)
                }),
                reached,
            ) {
                (Some((effect, step)), _) => {
                    let result = Ok(self.world.answer(&effect, self.now));
                    self.feed(operation, Input::Observed { step, result })?;
                }
                (None, true) => return Ok(()),
                (None, false) => match self.machine.deadline() {
                    Some(deadline) => {
                        self.now = self.now.max(deadline);
                        self.feed(operation, Input::Tick)?;
                    }
                    None => {
                        return Err(PlanError::Stuck {
                            operation,
                            phase: self.machine.state().phase(),
                        });
                    }
                },
            }
            if let Some((phase, error)) = self.machine.state().failure() {
                return Err(PlanError::Failed {
                    operation,
                    phase,
                    error: error.clone(),
                });
            }
        }
    }

    /// Hands one input to the machine and records the steps it issues under the state it is in
    /// afterwards (the state that issued them).
    fn feed(&mut self, operation: Operation, input: Input) -> Result<(), PlanError> {
        let step =
            self.machine
                .handle(input, self.now)
                .map_err(|rejected| PlanError::Rejected {
                    operation,
                    rejected,
                })?;
        let phase = self.machine.state().phase();
        let current = self.stages.last().map(|s| (s.operation, s.phase));
        if current != Some((operation, phase)) {
            self.stages.push(Stage {
                operation,
                phase,
                steps: Vec::new(),
            });
        }
        for effect in step.effects {
            let planned = match effect {
                Effect::Source { op, .. } => {
                    let batches = op.render(self.ctx).map_err(|error| PlanError::Render {
                        op: Box::new(op.clone()),
                        error,
                    })?;
                    PlanStep::Sql { op, batches }
                }
                Effect::Instance { op, .. } => {
                    let request = arm::request(&op, &self.instance);
                    let url = request.url(arm::MANAGEMENT_ENDPOINT);
                    PlanStep::Arm { op, request, url }
                }
                Effect::Arc { op, .. } => {
                    let spec = self.machine.spec();
                    let arc =
                        crate::arc::route::link_op(spec, &op).map_err(|error| PlanError::Arc {
                            op: Box::new(op.clone()),
                            error,
                        })?;
                    let request = match &spec.route {
                        LinkRoute::Arc { instance } => crate::arc::request(&arc, instance),
                        LinkRoute::Direct => continue,
                    };
                    let url = request.url(arm::MANAGEMENT_ENDPOINT);
                    PlanStep::Arc { op, request, url }
                }
                Effect::Redirect { primary, .. } => PlanStep::Redirect { primary },
                Effect::PollOperation { .. } | Effect::PollArc { .. } | Effect::Probe { .. } => {
                    continue;
                }
            };
            if let Some(stage) = self.stages.last_mut() {
                stage.steps.push(planned);
            }
        }
        Ok(())
    }
}

/// Both servers as the plan imagines them: every call succeeds at once, and the link reads as
/// the calls answered so far left it.
pub(super) struct Scripted {
    databases: Vec<crate::names::DatabaseName>,
    source_role: ReplicaRole,
    instance_role: ReplicaRole,
    source_mode: AvailabilityMode,
    instance_mode: AvailabilityMode,
    /// The link resource exists on the instance (until its DELETE).
    instance_link: bool,
    /// The DAG exists on SQL Server (until it is dropped).
    source_dag: bool,
}

fn role_of(primary: bool) -> ReplicaRole {
    if primary {
        ReplicaRole::Primary
    } else {
        ReplicaRole::Secondary
    }
}

impl Scripted {
    pub(super) fn new(spec: &LinkSpec) -> Scripted {
        let sql_primary = spec.initial_primary == Side::SqlServer;
        Scripted {
            databases: spec.databases.clone(),
            source_role: role_of(sql_primary),
            instance_role: role_of(!sql_primary),
            source_mode: AvailabilityMode::AsynchronousCommit,
            instance_mode: AvailabilityMode::AsynchronousCommit,
            instance_link: true,
            source_dag: true,
        }
    }

    /// The successful answer to `effect` at `now`, after applying what it changes.
    fn answer(&mut self, effect: &Effect, now: Timestamp) -> Observation {
        match effect {
            Effect::Source { op, .. } => match op {
                SourceOp::ExportCertificatePublicKey { .. } => {
                    return Observation::PublicKey(PLACEHOLDER_SQL_SERVER_CERTIFICATE.to_vec());
                }
                SourceOp::SetAvailabilityMode { mode, .. } => self.source_mode = *mode,
                SourceOp::Failover { .. } => self.swap_roles(),
                SourceOp::ForceFailover { .. } => {
                    self.source_role = ReplicaRole::Primary;
                    self.instance_role = ReplicaRole::Secondary;
                }
                SourceOp::SetRoleSecondary { .. } => self.source_role = ReplicaRole::Secondary,
                SourceOp::DropDistributedAvailabilityGroup { .. } => self.source_dag = false,
                SourceOp::EnsureMasterKey
                | SourceOp::EnsureEndpointCertificate { .. }
                | SourceOp::EnsureMirroringEndpoint { .. }
                | SourceOp::ImportInstanceCertificate { .. }
                | SourceOp::EnsureRootCaTrust
                | SourceOp::CreateAvailabilityGroup { .. }
                | SourceOp::GrantCreateAnyDatabase { .. }
                | SourceOp::CreateDistributedAvailabilityGroup { .. }
                | SourceOp::DropAvailabilityGroup { .. } => {}
            },
            Effect::Instance { op, .. } => match op {
                InstanceOp::GetEndpointCertificate => {
                    return Observation::PublicKey(PLACEHOLDER_INSTANCE_CERTIFICATE.to_vec());
                }
                InstanceOp::SetReplicationMode { mode, .. } => self.instance_mode = *mode,
                InstanceOp::Failover { .. } => self.swap_roles(),
                InstanceOp::SetRole { role, .. } => {
                    self.instance_role = role_of(*role == Side::ManagedInstance);
                }
                InstanceOp::DeleteLink { .. } => self.instance_link = false,
                InstanceOp::PutServerTrustCertificate { .. }
                | InstanceOp::PutLink { .. }
                | InstanceOp::SetLinkDatabases { .. }
                | InstanceOp::DeleteServerTrustCertificate { .. } => {}
            },
            Effect::Probe {
                probe: Probe::Link | Probe::LinkLive,
                ..
            } => return Observation::Link(self.link()),
            Effect::Probe {
                probe: Probe::Workload { .. },
                ..
            } => {
                return Observation::Workload(crate::redirect::WorkloadActivity::default());
            }
            Effect::Probe {
                probe: Probe::FirstFullBackups,
                ..
            } => {
                return Observation::FullBackups(
                    self.databases
                        .iter()
                        .map(|database| FullBackup {
                            database: database.clone(),
                            finished: Some(now),
                        })
                        .collect(),
                );
            }
            Effect::Arc { op, .. } => match op {
                ArcLinkOp::CreateLink => {
                    self.instance_link = true;
                    self.source_dag = true;
                }
                ArcLinkOp::Failover {
                    kind: FailoverKind::Planned,
                } => self.swap_roles(),
                ArcLinkOp::Failover {
                    kind: FailoverKind::Forced(_),
                } => {
                    self.instance_role = ReplicaRole::Primary;
                    self.source_role = ReplicaRole::Secondary;
                }
                ArcLinkOp::DeleteLink => {
                    self.instance_link = false;
                    self.source_dag = false;
                }
            },
            Effect::PollOperation { .. } | Effect::PollArc { .. } | Effect::Redirect { .. } => {}
        }
        Observation::Done
    }

    fn swap_roles(&mut self) {
        std::mem::swap(&mut self.source_role, &mut self.instance_role);
    }

    /// Both sides' view: every database SYNCHRONIZED and HEALTHY with the same hardened LSN.
    fn link(&self) -> LinkObservation {
        let lsn = Lsn::new(PLAN_LSN).unwrap_or_default();
        let side = |exists: bool, role: ReplicaRole, mode: AvailabilityMode| {
            if !exists {
                return SideView::unknown();
            }
            SideView {
                exists,
                role: Some(role),
                mode: Some(mode),
                partner_mode: None,
                connected: true,
                databases: self
                    .databases
                    .iter()
                    .map(|name| DatabaseView {
                        name: name.clone(),
                        sync_state: Some(SyncState::Synchronized),
                        health: SyncHealth::Healthy,
                        last_hardened_lsn: Some(lsn),
                        end_of_log_lsn: Some(lsn),
                        partner: None,
                        last_commit_lsn: Some(lsn),
                        seeding_percent: None,
                        log_send_queue_kb: Some(0),
                        redo_queue_kb: Some(0),
                        lag_seconds: Some(0),
                        last_error: None,
                        replica_state: None,
                    })
                    .collect(),
                version: None,
                update_policy: None,
                failover_mode: None,
                live: false,
            }
        };
        LinkObservation {
            source: side(self.source_dag, self.source_role, self.source_mode),
            instance: side(self.instance_link, self.instance_role, self.instance_mode),
            unreachable: None,
        }
    }
}
