//! Entering phases and issuing effects.

use super::*;
use crate::tsql::{
    CreateAgSpec, CreateDagSpec, EndpointAuth, EndpointEncryption, MirroringEndpointSpec,
};

impl Machine {
    /// Enters `state` (a new phase or sub-step): resets timers and issues the phase's effects.
    pub(super) fn enter(&mut self, state: State, now: Timestamp) -> Vec<Effect> {
        self.in_flight.clear();
        self.wake_at = None;
        self.timeout_at = self.timeout_for(&state).map(|d| now.plus(d));
        if state.phase() == Phase::PreparingFailover {
            self.lsns_equal.clear();
        }
        self.state = state;
        self.kick()
    }

    /// Stays in (an updated) `state` and schedules the next probe or poll.
    pub(super) fn wait(&mut self, state: State, now: Timestamp) -> Vec<Effect> {
        self.state = state;
        self.schedule(now);
        Vec::new()
    }

    /// Schedules the next probe or poll: `gate_interval` for the readings around a role
    /// change (the catch-up gate, a role check), `probe_interval` for everything else.
    pub(super) fn schedule(&mut self, now: Timestamp) {
        let o = &self.spec.options;
        let every = match &self.state {
            State::CatchingUp { .. }
            | State::VerifyingRoles { .. }
            | State::FailingOver {
                change: RoleChange::Checking,
                ..
            } => o.gate_interval,
            _ => o.probe_interval,
        };
        self.wake_at = Some(now.plus(every));
    }

    pub(super) fn fail(
        &mut self,
        state: State,
        step: Option<StepId>,
        error: StepError,
    ) -> Vec<Effect> {
        self.in_flight.clear();
        self.wake_at = None;
        self.timeout_at = None;
        self.state = State::Failed {
            phase: Box::new(state),
            step,
            retryable: error.retryable,
            error,
        };
        Vec::new()
    }

    /// Issues what the current state needs now (and is not already in flight).
    pub(super) fn kick(&mut self) -> Vec<Effect> {
        let spec = &self.spec;
        let link = spec.link.clone();
        match self.state.clone() {
            State::Draft
            | State::Assessed
            | State::SplitBrain
            | State::Completed
            | State::Cancelled
            | State::Failed { .. } => Vec::new(),
            State::PreparingSource { step } => {
                let op = match step {
                    PrepareStep::MasterKey => SourceOp::EnsureMasterKey,
                    PrepareStep::EndpointCertificate => SourceOp::EnsureEndpointCertificate {
                        name: spec.source.certificate.clone(),
                        subject: format!("Certificate for {}", spec.source.certificate),
                        expiry: spec.source.certificate_expiry,
                    },
                    PrepareStep::Endpoint => SourceOp::EnsureMirroringEndpoint {
                        spec: MirroringEndpointSpec {
                            name: spec.source.endpoint_name.clone(),
                            port: spec.source.endpoint_port,
                            certificate: spec.source.certificate.clone(),
                            auth: EndpointAuth::Certificate,
                            encryption: EndpointEncryption::Aes,
                        },
                    },
                };
                vec![self.source(op)]
            }
            State::ExchangingTrust { step } => match step {
                TrustStep::ExportCertificate => {
                    let name = spec.source.certificate.clone();
                    vec![self.source(SourceOp::ExportCertificatePublicKey { name })]
                }
                TrustStep::UploadCertificate {
                    public_key,
                    operation: None,
                } => {
                    let name = spec.source.certificate.clone();
                    vec![self.instance(InstanceOp::PutServerTrustCertificate {
                        name,
                        public_blob: public_key,
                    })]
                }
                TrustStep::UploadCertificate {
                    operation: Some(op),
                    ..
                } => vec![self.poll(op)],
                TrustStep::GetInstanceCertificate => {
                    vec![self.instance(InstanceOp::GetEndpointCertificate)]
                }
                TrustStep::ImportInstanceCertificate { certificate } => {
                    let fqdn = spec.target.fqdn.clone();
                    vec![self.source(SourceOp::ImportInstanceCertificate {
                        fqdn,
                        der: certificate,
                    })]
                }
                TrustStep::RootCertificates => vec![self.source(SourceOp::EnsureRootCaTrust)],
            },
            State::CreatingAg { step } => {
                let ag = spec.source.ag.clone();
                let op = match step {
                    AgStep::Create => SourceOp::CreateAvailabilityGroup {
                        spec: CreateAgSpec {
                            ag,
                            databases: match spec.initial_primary {
                                Side::SqlServer => spec.databases.clone(),
                                Side::ManagedInstance => Vec::new(),
                            },
                            replica: spec.source.server.clone(),
                            endpoint_url: spec.source.endpoint_url(),
                            cluster_type_none: spec.capabilities().cluster_type_none,
                        },
                    },
                    AgStep::GrantCreateAnyDatabase => SourceOp::GrantCreateAnyDatabase { ag },
                };
                self.attempted.ag = true;
                vec![self.source(op)]
            }
            State::CreatingDag => {
                let op = SourceOp::CreateDistributedAvailabilityGroup {
                    spec: CreateDagSpec {
                        dag: link,
                        sql_ag: spec.source.ag.clone(),
                        sql_listener_url: spec.source.endpoint_url(),
                        mi_ag: spec.target.ag.clone(),
                        mi_fqdn: spec.target.fqdn.clone(),
                        mi_database: match spec.initial_primary {
                            Side::SqlServer => None,
                            Side::ManagedInstance => spec.databases.first().cloned(),
                        },
                        session_timeout_s: spec.session_timeout_s,
                    },
                };
                self.attempted.dag = true;
                vec![self.source(op)]
            }
            State::JoiningInstance { operation } => {
                self.attempted.link = true;
                match operation {
                    Some(op) => vec![self.poll(op)],
                    None => {
                        let properties = LinkProperties {
                            instance_link_role: spec.initial_primary,
                            instance_ag: spec.target.ag.clone(),
                            partner_ag: spec.source.ag.clone(),
                            partner_endpoint: spec.source.endpoint_url(),
                            failover_mode: spec.failover_mode,
                            seeding_mode: spec.seeding_mode,
                            link_mode: spec.mode,
                            databases: spec.databases.clone(),
                        };
                        vec![self.instance(InstanceOp::PutLink { link, properties })]
                    }
                }
            }
            // Inside the gate, after its first (whole) reading, the instance is read from its
            // DMVs alone while the last reading was live: the gate decides on what the DMVs
            // say, and each ARM read would add to the application's downtime. Not after an
            // attempt: then ARM's evidence of an operation still running (which its reading
            // shows late) must be read before anything is sent again.
            State::CatchingUp {
                blocker: Some(_),
                plan: Plan { retried: false, .. },
                ..
            } if self.last_link.as_ref().is_some_and(|l| l.instance.live) => {
                vec![self.probe(Probe::LinkLive)]
            }
            State::CreatingLinkThroughArc { change } => match change {
                RoleChange::Checking => vec![self.probe(Probe::Link)],
                RoleChange::Accepted(op) => vec![self.poll_call(op)],
                RoleChange::Issued => vec![self.arc(ArcLinkOp::CreateLink)],
            },
            State::Seeding { .. }
            | State::Replicating { .. }
            | State::CatchingUp { .. }
            | State::VerifyingRoles { .. }
            | State::FailedOver { .. } => vec![self.probe(Probe::Link)],
            State::AwaitingFirstFullBackup { .. } => vec![self.probe(Probe::FirstFullBackups)],
            State::PreparingFailover {
                source_done,
                instance,
                ..
            } => self.kick_modes(AvailabilityMode::SynchronousCommit, source_done, instance),
            State::AbortingFailover {
                abort,
                source_done,
                instance,
            } => self.kick_modes(
                abort
                    .restore_mode
                    .unwrap_or(AvailabilityMode::AsynchronousCommit),
                source_done,
                instance,
            ),
            State::FailingOver { via, change, .. } => match change {
                RoleChange::Checking => vec![self.probe(Probe::Link)],
                RoleChange::Accepted(op) => vec![self.poll_call(op)],
                RoleChange::Issued => match via {
                    FailoverVia::Arc => vec![self.arc(ArcLinkOp::Failover {
                        kind: FailoverKind::Planned,
                    })],
                    FailoverVia::Tsql => vec![self.source(SourceOp::Failover { dag: link })],
                    FailoverVia::Arm => vec![self.instance(InstanceOp::Failover {
                        link,
                        failover_type: ArmFailoverType::Planned,
                    })],
                },
            },
            State::ForcingFailover { target, change, .. } => match change {
                RoleChange::Checking => vec![self.probe(Probe::Link)],
                RoleChange::Accepted(op) => vec![self.poll_call(op)],
                RoleChange::Issued if self.spec.route.is_arc() => match self.arc_call() {
                    Some(op) => vec![self.arc(op)],
                    None => Vec::new(),
                },
                RoleChange::Issued => match target {
                    Side::ManagedInstance => vec![self.instance(InstanceOp::Failover {
                        link,
                        failover_type: ArmFailoverType::ForcedAllowDataLoss,
                    })],
                    Side::SqlServer => vec![self.source(SourceOp::ForceFailover { dag: link })],
                },
            },
            State::Repairing { keep, change } => match change {
                RoleChange::Checking => vec![self.probe(Probe::Link)],
                RoleChange::Accepted(op) => vec![self.poll(op)],
                RoleChange::Issued => match keep {
                    Side::ManagedInstance => {
                        vec![self.source(SourceOp::SetRoleSecondary { dag: link })]
                    }
                    // `role` names the side that is primary afterwards: the instance becomes
                    // secondary.
                    Side::SqlServer => vec![self.instance(InstanceOp::SetRole {
                        link,
                        role: Side::SqlServer,
                        change: RoleChangeType::Forced,
                    })],
                },
            },
            State::Redirecting { primary, .. } => vec![self.redirect(primary)],
            State::RemovingLink { removal, .. } => self.kick_removal(removal),
            State::Fencing { step, .. } => match step {
                FenceStep::Demote {
                    change: RoleChange::Issued,
                } => vec![self.source(SourceOp::SetRoleSecondary { dag: link })],
                FenceStep::Undo {
                    change: RoleChange::Issued,
                    ..
                } => vec![self.source(SourceOp::ForceFailover { dag: link })],
                // T-SQL calls are never accepted as operations; read the roles.
                FenceStep::Demote {
                    change: RoleChange::Checking | RoleChange::Accepted(_),
                }
                | FenceStep::Undo {
                    change: RoleChange::Checking | RoleChange::Accepted(_),
                    ..
                }
                | FenceStep::Verify { .. } => vec![self.probe(Probe::Link)],
            },
            State::DroppingDag { .. } => {
                vec![self.source(SourceOp::DropDistributedAvailabilityGroup { dag: link })]
            }
            State::DroppingAg => {
                let ag = spec.source.ag.clone();
                vec![self.source(SourceOp::DropAvailabilityGroup { ag })]
            }
            State::Cancelling { step } => match step {
                CancelStep::DeleteLink { removal } => self.kick_removal(removal),
                CancelStep::DropDag => {
                    vec![self.source(SourceOp::DropDistributedAvailabilityGroup { dag: link })]
                }
                CancelStep::DropAg => {
                    let ag = spec.source.ag.clone();
                    vec![self.source(SourceOp::DropAvailabilityGroup { ag })]
                }
            },
        }
    }

    /// The link's `DELETE`, its poll, or the read of the link before sending it again.
    pub(super) fn kick_removal(&mut self, removal: RoleChange) -> Vec<Effect> {
        match removal {
            RoleChange::Checking => vec![self.probe(Probe::Link)],
            RoleChange::Accepted(op) => vec![self.poll_call(op)],
            // Arc's deleteMiLink drops SQL Server's DAG and deletes the instance's link.
            RoleChange::Issued if self.spec.route.is_arc() => {
                vec![self.arc(ArcLinkOp::DeleteLink)]
            }
            RoleChange::Issued => {
                let link = self.spec.link.clone();
                vec![self.instance(InstanceOp::DeleteLink { link })]
            }
        }
    }

    /// The two availability-mode changes, each unless done or already in flight.
    pub(super) fn kick_modes(
        &mut self,
        mode: AvailabilityMode,
        source_done: bool,
        instance: ArmCall,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        let source_in_flight = self
            .in_flight
            .iter()
            .any(|e| matches!(e, Effect::Source { .. }));
        let instance_in_flight = self
            .in_flight
            .iter()
            .any(|e| matches!(e, Effect::Instance { .. } | Effect::PollOperation { .. }));
        if !source_done && !source_in_flight {
            let op = SourceOp::SetAvailabilityMode {
                dag: self.spec.link.clone(),
                sql_ag: self.spec.source.ag.clone(),
                mi_ag: self.spec.target.ag.clone(),
                mode,
            };
            effects.push(self.source(op));
        }
        if !instance_in_flight {
            match instance {
                ArmCall::Requested => {
                    let link = self.spec.link.clone();
                    effects.push(self.instance(InstanceOp::SetReplicationMode { link, mode }));
                }
                ArmCall::Accepted(op) => effects.push(self.poll(op)),
                ArmCall::Done => {}
            }
        }
        effects
    }

    pub(super) fn next_id(&mut self) -> StepId {
        self.next_step += 1;
        StepId(self.next_step)
    }

    pub(super) fn issue(&mut self, effect: Effect) -> Effect {
        self.in_flight.push(effect.clone());
        effect
    }

    pub(super) fn source(&mut self, op: SourceOp) -> Effect {
        let step = self.next_id();
        self.issue(Effect::Source { step, op })
    }

    pub(super) fn instance(&mut self, op: InstanceOp) -> Effect {
        let step = self.next_id();
        self.issue(Effect::Instance { step, op })
    }

    pub(super) fn poll(&mut self, operation: OperationRef) -> Effect {
        let step = self.next_id();
        self.issue(Effect::PollOperation { step, operation })
    }

    pub(super) fn probe(&mut self, probe: Probe) -> Effect {
        let step = self.next_id();
        self.issue(Effect::Probe { step, probe })
    }

    pub(super) fn redirect(&mut self, primary: Side) -> Effect {
        let step = self.next_id();
        self.issue(Effect::Redirect { step, primary })
    }
}
