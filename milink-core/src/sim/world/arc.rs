//! Azure Arc in the simulated world: the long-running `Microsoft.AzureArcData` operations the
//! Arc extension performs on SQL Server, applied step by step to the same catalogs the T-SQL
//! route changes, and the faults of the Arc route (the agent offline, an extension too old for
//! several databases, a missing RBAC operation, an operation failing part-way).
//!
//! An operation is accepted at once (its checks done), then advances one step per
//! [`ArcState::step`] of virtual time whenever Arc is asked about it
//! ([`World::arc_progress`]): `createManagedInstanceLink` creates the master key, the endpoint
//! certificate and the endpoint; exchanges the certificates (SQL Server's into the instance's
//! server trust certificates, the instance's into `master`, the Azure root CAs); creates the
//! availability group; the distributed availability group; then the link on the managed
//! instance, as the instance's own ARM operation, and waits for it. `failoverMiLink` switches the
//! link to synchronous commit, waits for the secondary to be synchronized and fails over
//! through the world's planned failover, or, forced, makes the instance primary at once.
//! `deleteMiLink` drops the distributed availability group on SQL Server and deletes the link on
//! the instance. What a step did stays when a later step fails.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::World;
use crate::lifecycle::{
    AvailabilityMode, FailoverMode, InstanceOp, LinkProperties, OperationRef, ReplicaRole,
    SeedingMode, Side, SourceOp,
};
use crate::names::{
    AgName, CertificateName, DatabaseName, EndpointName, LinkMode, LinkName, ServerName, TcpPort,
};
use crate::ports::{ArmReply, PollReply};
use crate::time::Timestamp;
use crate::tsql::{
    CreateAgSpec, CreateDagSpec, EndpointAuth, EndpointEncryption, MirroringEndpointSpec,
};

/// The extension version that links several databases at once (milink-facts §6.1).
pub const MULTI_DATABASE_EXTENSION: &str = "1.1.3348.364";

/// Arc's state and faults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ArcState {
    /// The Arc agent reports (`status` `Connected`); `false`: every action is refused and the
    /// instance reads `Disconnected`.
    pub agent_connected: bool,
    /// The Azure Extension for SQL Server's version; older than [`MULTI_DATABASE_EXTENSION`]
    /// links one database at a time.
    pub extension_version: String,
    /// Operation ids the caller lacks the RBAC operation for (answered 403).
    pub denied: Vec<String>,
    /// The next operation of that id fails at that step (then the fault is spent).
    pub fail: Option<ArcFailure>,
    /// Virtual time between two steps of an operation.
    pub step: Duration,
    /// How long a planned failover waits for the secondary to be synchronized.
    pub sync_timeout: Duration,
    /// Operations, by id.
    pub operations: BTreeMap<String, ArcSimOperation>,
    /// How many operations of each id were started (accepted).
    pub starts: BTreeMap<String, u32>,
    /// When the migration assessment was last started.
    pub migration_assessment_started: Option<Timestamp>,
}

impl Default for ArcState {
    fn default() -> Self {
        ArcState {
            agent_connected: true,
            extension_version: MULTI_DATABASE_EXTENSION.to_owned(),
            denied: Vec::new(),
            fail: None,
            step: Duration::from_secs(20),
            sync_timeout: Duration::from_secs(600),
            operations: BTreeMap::new(),
            starts: BTreeMap::new(),
            migration_assessment_started: None,
        }
    }
}

impl ArcState {
    /// Whether the extension links several databases at once.
    pub fn extension_links_many(&self) -> bool {
        let parse =
            |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
        parse(&self.extension_version) >= parse(MULTI_DATABASE_EXTENSION)
    }

    /// The operation id of a link operation on `link` that has not ended, if one runs.
    pub fn running_on(&self, link: &LinkName) -> Option<&str> {
        self.operations
            .values()
            .find(|o| o.outcome.is_none() && o.work.link() == Some(link))
            .map(|o| o.operation_id.as_str())
    }

    /// How many operations of `operation_id` were started.
    pub fn started(&self, operation_id: &str) -> u32 {
        self.starts.get(operation_id).copied().unwrap_or(0)
    }
}

/// An operation that fails part-way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArcFailure {
    /// The operation's id (`SqlServerAvailabilityGroups_CreateManagedInstanceLink`, …).
    pub operation_id: String,
    /// The step it fails at (1 is the first).
    pub at_step: u8,
    /// The error code of the operation's status.
    pub code: String,
    /// Its message.
    pub message: String,
}

/// What SQL Server's side of a new link is made of (from `createManagedInstanceLink`'s body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArcLinkPlan {
    /// SQL Server's availability group.
    pub ag: AgName,
    /// Its databases.
    pub databases: Vec<DatabaseName>,
    /// The replica (`serverInstance`, else `@@SERVERNAME`).
    pub replica: ServerName,
    /// The mirroring endpoint's name.
    pub endpoint_name: EndpointName,
    /// Its URL.
    pub endpoint_url: String,
    /// Its port.
    pub port: TcpPort,
    /// The endpoint's certificate.
    pub certificate: CertificateName,
    /// The link (the distributed availability group).
    pub dag: LinkName,
    /// The managed instance's availability group.
    pub mi_ag: AgName,
}

/// What an operation does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArcWork {
    /// `createManagedInstanceLink`.
    CreateLink(ArcLinkPlan),
    /// `failoverMiLink`.
    Failover {
        /// The link.
        link: LinkName,
        /// Forced (`force: true`).
        force: bool,
    },
    /// `deleteMiLink`.
    Delete {
        /// The link.
        link: LinkName,
    },
    /// `runManagedInstanceLinkAssessment`, its result computed when it finishes.
    MiLinkAssessment {
        /// The request body.
        request: Value,
    },
    /// `getTelemetry`.
    Telemetry {
        /// The request body.
        request: Value,
    },
}

impl ArcWork {
    /// The link a link operation works on; `None` for the others.
    pub fn link(&self) -> Option<&LinkName> {
        match self {
            ArcWork::CreateLink(plan) => Some(&plan.dag),
            ArcWork::Failover { link, .. } | ArcWork::Delete { link } => Some(link),
            ArcWork::MiLinkAssessment { .. } | ArcWork::Telemetry { .. } => None,
        }
    }
}

/// The code of a link operation refused because another one on the same link still runs
/// (the simulator's; UNVERIFIED).
pub const OPERATION_IN_PROGRESS: &str = "ArcOperationInProgress";

/// One long-running Arc operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArcSimOperation {
    /// The GUID in its URLs.
    pub id: String,
    /// The REST operation id.
    pub operation_id: String,
    /// What it does.
    pub work: ArcWork,
    /// When it was accepted.
    pub started: Timestamp,
    /// When its next step is due.
    pub next_at: Timestamp,
    /// Steps done.
    pub steps_done: u8,
    /// The managed instance's own operation it waits for, if any.
    pub waiting_for: Option<OperationRef>,
    /// When it began waiting for synchronization (planned failover).
    pub waiting_since: Option<Timestamp>,
    /// The result: the status body's `properties` on success, `(code, message)` on failure.
    pub outcome: Option<Result<Value, (String, String)>>,
    /// When it ended.
    pub ended: Option<Timestamp>,
}

/// What a step did.
enum Step {
    /// Done; the next step follows.
    Next,
    /// Not yet (waiting for the instance or for synchronization): the same step again later.
    Wait,
    /// The operation succeeded with this result.
    Finished(Value),
    /// The operation failed.
    Failed(String, String),
}

/// The code of an operation the extension could not complete.
pub const EXTENSION_FAILED: &str = "SqlServerExtensionOperationFailed";

impl World {
    /// Starts an operation (its checks were done by the caller): counted, given an id.
    pub(crate) fn arc_start(&mut self, operation_id: &str, work: ArcWork) -> String {
        let id = self.guid();
        *self.arc.starts.entry(operation_id.to_owned()).or_insert(0) += 1;
        let now = self.now;
        let next_at = now.plus(self.arc.step);
        self.arc.operations.insert(
            id.clone(),
            ArcSimOperation {
                id: id.clone(),
                operation_id: operation_id.to_owned(),
                work,
                started: now,
                next_at,
                steps_done: 0,
                waiting_for: None,
                waiting_since: None,
                outcome: None,
                ended: None,
            },
        );
        id
    }

    /// Advances every running operation through the steps whose time has come.
    pub(crate) fn arc_progress(&mut self) {
        let ids: Vec<String> = self
            .arc
            .operations
            .values()
            .filter(|o| o.outcome.is_none())
            .map(|o| o.id.clone())
            .collect();
        for id in ids {
            for _ in 0..16 {
                let Some(op) = self.arc.operations.get(&id).cloned() else {
                    break;
                };
                if op.outcome.is_some() || op.next_at > self.now {
                    break;
                }
                let step = op.steps_done + 1;
                let fail = self
                    .arc
                    .fail
                    .as_ref()
                    .filter(|f| f.operation_id == op.operation_id && f.at_step == step)
                    .cloned();
                let result = match fail {
                    Some(f) => {
                        self.arc.fail = None;
                        Step::Failed(f.code, f.message)
                    }
                    None => self.arc_step(&op, step),
                };
                let now = self.now;
                let every = self.arc.step;
                let Some(o) = self.arc.operations.get_mut(&id) else {
                    break;
                };
                match result {
                    Step::Next => {
                        o.steps_done = step;
                        o.next_at = o.next_at.plus(every);
                    }
                    Step::Wait => {
                        o.next_at = now.plus(every);
                        break;
                    }
                    Step::Finished(value) => {
                        o.steps_done = step;
                        o.outcome = Some(Ok(value));
                        o.ended = Some(now);
                    }
                    Step::Failed(code, message) => {
                        o.outcome = Some(Err((code, message)));
                        o.ended = Some(now);
                    }
                }
            }
        }
    }

    fn arc_step(&mut self, op: &ArcSimOperation, step: u8) -> Step {
        match &op.work {
            ArcWork::CreateLink(plan) => self.arc_create_step(op, plan, step),
            ArcWork::Failover { link, force } => self.arc_failover_step(op, link, *force, step),
            ArcWork::Delete { link } => self.arc_delete_step(op, link, step),
            ArcWork::MiLinkAssessment { request } => {
                Step::Finished(self.arc_mi_link_assessment(request))
            }
            ArcWork::Telemetry { request } => Step::Finished(self.arc_telemetry(request)),
        }
    }

    fn arc_source(&mut self, ops: &[SourceOp]) -> Result<(), (String, String)> {
        for op in ops {
            self.exec_source(op)
                .map_err(|e| (EXTENSION_FAILED.to_owned(), e.to_string()))?;
        }
        Ok(())
    }

    fn arc_create_step(&mut self, op: &ArcSimOperation, plan: &ArcLinkPlan, step: u8) -> Step {
        let fqdn = self.instance.fqdn.clone();
        let done = |r: Result<(), (String, String)>| match r {
            Ok(()) => Step::Next,
            Err((code, message)) => Step::Failed(code, message),
        };
        match step {
            1 => {
                let expiry = crate::time::Date::from_days_since_epoch(
                    self.now.date().days_since_epoch() + 365,
                );
                done(self.arc_source(&[
                    SourceOp::EnsureMasterKey,
                    SourceOp::EnsureEndpointCertificate {
                        name: plan.certificate.clone(),
                        subject: format!("Certificate for {}", plan.certificate),
                        expiry,
                    },
                    SourceOp::EnsureMirroringEndpoint {
                        spec: MirroringEndpointSpec {
                            name: plan.endpoint_name.clone(),
                            port: plan.port,
                            certificate: plan.certificate.clone(),
                            auth: EndpointAuth::Certificate,
                            encryption: EndpointEncryption::Aes,
                        },
                    },
                ]))
            }
            2 => {
                let Some(der) = self
                    .source
                    .certificates
                    .get(plan.certificate.as_str())
                    .map(|c| c.der.clone())
                else {
                    return Step::Failed(
                        EXTENSION_FAILED.to_owned(),
                        format!("The certificate '{}' does not exist.", plan.certificate),
                    );
                };
                self.instance
                    .trust_certificates
                    .insert(plan.certificate.as_str().to_owned(), der);
                let mi_der = self.instance.endpoint_certificate.clone();
                done(self.arc_source(&[
                    SourceOp::ImportInstanceCertificate { fqdn, der: mi_der },
                    SourceOp::EnsureRootCaTrust,
                ]))
            }
            3 => done(self.arc_source(&[SourceOp::CreateAvailabilityGroup {
                spec: CreateAgSpec {
                    ag: plan.ag.clone(),
                    databases: plan.databases.clone(),
                    replica: plan.replica.clone(),
                    endpoint_url: plan.endpoint_url.clone(),
                    cluster_type_none: true,
                },
            }])),
            4 => done(
                self.arc_source(&[SourceOp::CreateDistributedAvailabilityGroup {
                    spec: CreateDagSpec {
                        dag: plan.dag.clone(),
                        sql_ag: plan.ag.clone(),
                        sql_listener_url: plan.endpoint_url.clone(),
                        mi_ag: plan.mi_ag.clone(),
                        mi_fqdn: fqdn,
                        mi_database: None,
                        session_timeout_s: 10,
                    },
                }]),
            ),
            5 => {
                let put = InstanceOp::PutLink {
                    link: plan.dag.clone(),
                    properties: LinkProperties {
                        instance_link_role: Side::SqlServer,
                        instance_ag: plan.mi_ag.clone(),
                        partner_ag: plan.ag.clone(),
                        partner_endpoint: plan.endpoint_url.clone(),
                        failover_mode: FailoverMode::Manual,
                        seeding_mode: SeedingMode::Automatic,
                        link_mode: if plan.databases.len() > 1 {
                            LinkMode::MultiDatabase
                        } else {
                            LinkMode::SingleDatabase
                        },
                        databases: plan.databases.clone(),
                    },
                };
                self.arc_instance_op(op, &put)
            }
            _ => self.arc_wait_instance(op, Value::Null),
        }
    }

    /// Begins the instance's own operation: waits for it at the next steps.
    fn arc_instance_op(&mut self, op: &ArcSimOperation, instance_op: &InstanceOp) -> Step {
        match self.begin_instance(instance_op) {
            Ok(ArmReply::Accepted(reference)) => {
                if let Some(o) = self.arc.operations.get_mut(&op.id) {
                    o.waiting_for = Some(reference);
                }
                Step::Next
            }
            Ok(_) => Step::Next,
            Err(e) => Step::Failed(EXTENSION_FAILED.to_owned(), e.to_string()),
        }
    }

    /// Waits for the instance's operation, then finishes with `result`.
    fn arc_wait_instance(&mut self, op: &ArcSimOperation, result: Value) -> Step {
        let Some(reference) = op.waiting_for.clone() else {
            return Step::Finished(result);
        };
        self.complete_due_operations();
        match self.poll_operation(&reference) {
            Ok(PollReply::Running { .. }) => Step::Wait,
            Ok(PollReply::Succeeded) => Step::Finished(result),
            Err(e) => Step::Failed(EXTENSION_FAILED.to_owned(), e.to_string()),
        }
    }

    fn arc_failover_step(
        &mut self,
        op: &ArcSimOperation,
        link: &LinkName,
        force: bool,
        step: u8,
    ) -> Step {
        let failed = |m: String| Step::Failed(EXTENSION_FAILED.to_owned(), m);
        if force {
            if !self.can_become_primary(link, Side::ManagedInstance) {
                return failed(format!(
                    "The managed instance's replica of '{link}' cannot become primary: a \
                     database is still seeding or has not joined."
                ));
            }
            self.force_primary(link, Side::ManagedInstance);
            return Step::Finished(Value::Null);
        }
        match step {
            1 => {
                let Some(d) = self.source.dags.get(link).cloned() else {
                    return failed(format!("The availability group '{link}' does not exist."));
                };
                if let Err(e) = self.sql_set_dag_modes(
                    link.as_str(),
                    &[
                        (d.sql_ag.as_str(), AvailabilityMode::SynchronousCommit),
                        (d.mi_ag.as_str(), AvailabilityMode::SynchronousCommit),
                    ],
                ) {
                    return failed(e.to_string());
                }
                if let Some(l) = self.instance.links.get_mut(link) {
                    l.replication_mode = AvailabilityMode::SynchronousCommit;
                }
                Step::Next
            }
            2 => {
                if self.is_synchronized(link) {
                    return Step::Next;
                }
                let since = op.waiting_since.unwrap_or(self.now);
                if self.now.since(since) >= self.arc.sync_timeout {
                    return failed(format!(
                        "The secondary replica of '{link}' did not become SYNCHRONIZED within \
                         {} s; the failover was not attempted.",
                        self.arc.sync_timeout.as_secs()
                    ));
                }
                if let Some(o) = self.arc.operations.get_mut(&op.id) {
                    o.waiting_since = Some(since);
                }
                Step::Wait
            }
            _ => match self.planned_failover(link) {
                Ok(_) => Step::Finished(Value::Null),
                Err(why) => failed(format!(
                    "The availability replica for '{link}' cannot become the primary replica: \
                     {why}."
                )),
            },
        }
    }

    fn arc_delete_step(&mut self, op: &ArcSimOperation, link: &LinkName, step: u8) -> Step {
        match step {
            1 => {
                if self.source.dags.contains_key(link)
                    && let Err(e) = self.sql_drop_availability_group(link.as_str())
                {
                    return Step::Failed(EXTENSION_FAILED.to_owned(), e.to_string());
                }
                Step::Next
            }
            2 => {
                if !self.instance.links.contains_key(link) {
                    return Step::Next;
                }
                self.arc_instance_op(op, &InstanceOp::DeleteLink { link: link.clone() })
            }
            _ => self.arc_wait_instance(op, Value::Null),
        }
    }

    /// Whether SQL Server is the primary of `link` (the only direction Arc fails over).
    pub(crate) fn arc_sql_is_primary(&self, link: &LinkName) -> bool {
        self.source
            .dags
            .get(link)
            .is_some_and(|d| d.role == ReplicaRole::Primary)
    }
}
