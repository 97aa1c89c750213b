//! The simulated managed instance: each [`InstanceOp`] is an ARM call with a latency. Mutations
//! are long-running operations answered `202 Accepted` with a `Location` URL of the real shape;
//! polling says "running" with `Retry-After` until the latency has passed, then succeeded or
//! failed with the ARM code (or the SQL engine's link error number).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::lifecycle::{
    ArmFailoverType, FailoverMode, FullBackup, InstanceOp, LinkName, OperationKind, OperationRef,
    ReplicaRole, RoleChangeType, Side, SideView,
};
use crate::names::{DatabaseName, LinkMode};
use crate::ports::{ArmReply, ManagedInstance, PollReply, PortError};
use crate::redirect::WorkloadActivity;

use super::Sim;
use super::errors;
use super::faults::{Call, InjectedError, InstanceCall};
use super::world::{
    ArmOperation, DbState, EventKind, InstanceLink, LinkFault, ReplicaPhase, World,
};

/// The api-version of the operation URLs the simulated instance hands out: milink's own.
pub use crate::arm::API_VERSION;

/// The simulated managed instance (`tailspin-mi` in the lab). Implements [`ManagedInstance`].
///
/// Its `link_state_live` reads the instance's DMVs alone and keeps what only ARM knows from
/// this port's (and its clones') last ARM reading of the link, as
/// `sqlserver::instance_reads::WithInstanceTsql` does.
#[derive(Debug, Clone)]
pub struct SimManagedInstance {
    sim: Sim,
    last_arm: Arc<Mutex<Option<(LinkName, SideView)>>>,
}

impl SimManagedInstance {
    pub(crate) fn new(sim: Sim) -> Self {
        SimManagedInstance {
            sim,
            last_arm: Arc::default(),
        }
    }

    fn last_arm(&self) -> std::sync::MutexGuard<'_, Option<(LinkName, SideView)>> {
        self.last_arm.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The world this instance lives in.
    pub fn sim(&self) -> &Sim {
        &self.sim
    }
}

#[async_trait]
impl ManagedInstance for SimManagedInstance {
    async fn begin(&self, op: &InstanceOp) -> Result<ArmReply, PortError> {
        let mut w = self.sim.lock();
        let latency = w.config.arm.request;
        let fate = w.enter_call(Call::Instance(InstanceCall::of(op)), latency)?;
        let reply = w.begin_instance(op);
        if fate.lose_response {
            return Err(errors::response_lost());
        }
        reply
    }

    async fn poll(&self, operation: &OperationRef) -> Result<PollReply, PortError> {
        let mut w = self.sim.lock();
        let latency = w.config.arm.request;
        w.enter_call(Call::Poll, latency)?;
        let reply = w.poll_operation(operation)?;
        // An ARM client ends a PUT of a link with a GET of the link once its operation
        // succeeded (`arm::put_resource`); the in-process instance charges that read too, so
        // the timeline in process and over HTTPS is one.
        if reply == PollReply::Succeeded
            && let Some(InstanceOp::PutLink { link, .. }) = w.operation_of(operation).cloned()
        {
            w.enter_call(Call::InstanceLinkState, latency)?;
            w.arm_link_view(&link);
        }
        Ok(reply)
    }

    async fn link_state(&self, link: &LinkName) -> Result<SideView, PortError> {
        let mut w = self.sim.lock();
        let latency = w.config.arm.request;
        w.enter_call(Call::InstanceLinkState, latency)?;
        // ARM reports what the service last refreshed (`SimConfig::arm_reading_lag`).
        let arm = w.arm_link_view(link);
        *self.last_arm() = Some((link.clone(), arm.clone()));
        if !w.config.instance_tsql_reads || !arm.exists {
            return Ok(arm);
        }
        // Then the instance's own DMVs, as `WithInstanceTsql` reads them: a failure of that
        // read leaves ARM's view, not live.
        let latency = w.config.sql_request;
        if w.enter_call(Call::InstanceTsqlLinkState, latency).is_err() {
            return Ok(arm);
        }
        let names: Vec<DatabaseName> = arm.databases.iter().map(|d| d.name.clone()).collect();
        Ok(match w.live_instance_view(link, &names) {
            Some((live, policy)) => arm.merged_with_live(live, policy),
            None => arm,
        })
    }

    async fn link_state_live(&self, link: &LinkName) -> Result<SideView, PortError> {
        let last = self
            .last_arm()
            .clone()
            .filter(|(l, arm)| l == link && arm.exists);
        let Some((_, arm)) = last else {
            return self.link_state(link).await;
        };
        {
            let mut w = self.sim.lock();
            if w.config.instance_tsql_reads {
                let latency = w.config.sql_request;
                if w.enter_call(Call::InstanceTsqlLinkState, latency).is_ok() {
                    let names: Vec<DatabaseName> =
                        arm.databases.iter().map(|d| d.name.clone()).collect();
                    if let Some((live, policy)) = w.live_instance_view(link, &names) {
                        return Ok(arm.merged_with_live(live, policy));
                    }
                }
            }
        }
        self.link_state(link).await
    }

    async fn full_backups(&self, databases: &[DatabaseName]) -> Result<Vec<FullBackup>, PortError> {
        let mut w = self.sim.lock();
        let latency = w.config.sql_request;
        w.enter_call(Call::FullBackups, latency)?;
        Ok(w.full_backups_of(databases)
            .into_iter()
            .map(|(database, finished)| FullBackup { database, finished })
            .collect())
    }

    async fn workload_activity(
        &self,
        databases: &[DatabaseName],
    ) -> Result<WorkloadActivity, PortError> {
        Ok(self
            .sim
            .lock()
            .client_sessions(Side::ManagedInstance, databases))
    }

    /// The world's instance FQDN; no call is charged, as the HTTPS face charges none for a GET
    /// of the instance.
    async fn instance_fqdn(&self) -> Result<Option<crate::names::MiFqdn>, PortError> {
        Ok(Some(self.sim.lock().instance.fqdn.clone()))
    }
}

enum Completion {
    Done(Result<(), InjectedError>),
    Postpone(crate::time::Timestamp),
}

fn link_error(f: &LinkFault, arm_code: &str) -> InjectedError {
    let message = format!("{} (ARM error {arm_code})", f.message);
    if f.code == errors::LINK_NOT_INITIATED {
        errors::sql_transient(f.code, message).into()
    } else {
        errors::sql(f.code, message).into()
    }
}

fn not_found(link: &LinkName) -> PortError {
    errors::arm(
        404,
        "ResourceNotFound",
        format!("The distributed availability group '{link}' was not found on the instance."),
    )
}

impl World {
    /// The preconditions of ARM planned failover: the replicas connected, every database joined
    /// (SYNCHRONIZING or SYNCHRONIZED), and no log send queue above
    /// [`SimConfig::arm_planned_failover_max_send_queue_kb`](super::SimConfig).
    fn arm_planned_failover_precheck(&self, link: &LinkName) -> Result<(), PortError> {
        let not_synchronizing = |why: &str| {
            Err(errors::arm(
                409,
                "DistributedAvailabilityGroupFailoverSecondariesNotSynchronizing",
                format!(
                    "Planned failover needs synchronizing secondaries: {why}. Wait until every \
                     database of the link is SYNCHRONIZING or SYNCHRONIZED."
                ),
            ))
        };
        let Some(r) = self.replications.get(link) else {
            return not_synchronizing("the link is not replicating");
        };
        let Some(p) = self.primary_of(link) else {
            return not_synchronizing("the link has no single primary replica");
        };
        if !r.connected {
            return not_synchronizing("the replicas are not connected");
        }
        if r.databases.is_empty()
            || !r
                .databases
                .values()
                .all(|d| matches!(d.phase, ReplicaPhase::Synchronizing))
        {
            return not_synchronizing("a database has not joined (still seeding)");
        }
        let diverged = r.databases.iter().any(|(db, d)| {
            d.reverting_until.is_some()
                || self
                    .database(p.other(), db)
                    .is_some_and(|x| x.end.lsn > d.common.lsn)
        });
        if diverged {
            return not_synchronizing("a secondary database is REVERTING");
        }
        let max = self.config.arm_planned_failover_max_send_queue_kb;
        for (db, d) in &r.databases {
            let queue_kb = self
                .database(p, db)
                .map_or(0, |x| x.bytes_after(d.sent_upto).div_ceil(1024));
            if queue_kb > max {
                return Err(errors::arm(
                    409,
                    "DistributedAvailabilityGroupFailoverLogSendQueueSizeTooBig",
                    format!(
                        "The log send queue of '{db}' is {queue_kb} KB, more than a planned \
                         failover accepts ({max} KB). Pause the workload and retry once the \
                         secondary caught up."
                    ),
                ));
            }
        }
        Ok(())
    }

    /// ARM `setRole` Secondary: the instance gives up the primary role. With SQL Server primary
    /// (a split brain) the instance's divergent tail is lost; otherwise nothing is primary
    /// until one side is made primary again.
    fn demote_instance(&mut self, link: &LinkName) {
        let was_primary = self.role(Side::ManagedInstance, link) == Some(ReplicaRole::Primary);
        self.set_role(Side::ManagedInstance, link, ReplicaRole::Secondary);
        if was_primary && self.role(Side::SqlServer, link) == Some(ReplicaRole::Primary) {
            for db in self.link_databases(link) {
                self.count_loss(&db, Side::ManagedInstance, Side::SqlServer);
            }
        }
    }

    fn operation_url(&self, collection: &str, id: &str) -> String {
        format!(
            "https://management.azure.com/subscriptions/{}/providers/Microsoft.Sql/locations/{}/{collection}OperationResults/{id}?api-version={API_VERSION}",
            self.instance.id.subscription_id(),
            self.instance.location,
        )
    }

    fn accept(&mut self, op: &InstanceOp) -> ArmReply {
        let id = self.guid();
        let latency = match op {
            InstanceOp::PutServerTrustCertificate { .. } => self.config.arm.put_trust_certificate,
            InstanceOp::PutLink { .. } => self.config.arm.put_link,
            InstanceOp::SetReplicationMode { .. } => self.config.arm.set_replication_mode,
            InstanceOp::SetLinkDatabases { .. } => self.config.arm.set_link_databases,
            InstanceOp::Failover { .. } => self.config.arm.failover,
            InstanceOp::SetRole { .. } => self.config.arm.set_role,
            InstanceOp::DeleteLink { .. } => self.config.arm.delete_link,
            InstanceOp::DeleteServerTrustCertificate { .. } => {
                self.config.arm.delete_trust_certificate
            }
            InstanceOp::GetEndpointCertificate => self.config.arm.request,
        };
        let d = self.sample(latency);
        let collection = match op {
            InstanceOp::PutServerTrustCertificate { .. }
            | InstanceOp::DeleteServerTrustCertificate { .. } => "serverTrustCertificates",
            _ => "distributedAvailabilityGroups",
        };
        let url = self.operation_url(collection, &id);
        self.instance.operations.insert(
            id.clone(),
            ArmOperation {
                id,
                op: op.clone(),
                started: self.now,
                completes_at: self.now.plus(d),
                outcome: None,
            },
        );
        ArmReply::Accepted(OperationRef {
            url,
            kind: OperationKind::Location,
            resource: None,
        })
    }

    fn pending_on_link(&self, link: &LinkName) -> Option<&ArmOperation> {
        self.instance.operations.values().find(|o| {
            o.outcome.is_none()
                && match &o.op {
                    InstanceOp::PutLink { link: l, .. }
                    | InstanceOp::SetReplicationMode { link: l, .. }
                    | InstanceOp::SetLinkDatabases { link: l, .. }
                    | InstanceOp::Failover { link: l, .. }
                    | InstanceOp::SetRole { link: l, .. }
                    | InstanceOp::DeleteLink { link: l } => l == link,
                    _ => false,
                }
        })
    }

    fn any_seeding(&self) -> bool {
        self.replications.values().any(|r| {
            r.databases.values().any(|d| {
                matches!(
                    d.phase,
                    ReplicaPhase::Seeding(_) | ReplicaPhase::WaitingToSeed
                )
            })
        })
    }

    /// Begins one ARM operation.
    pub(crate) fn begin_instance(&mut self, op: &InstanceOp) -> Result<ArmReply, PortError> {
        match op {
            InstanceOp::GetEndpointCertificate => Ok(ArmReply::PublicKey(
                self.instance.endpoint_certificate.clone(),
            )),
            InstanceOp::PutServerTrustCertificate { name, public_blob } => {
                if self.instance.trust_certificates.get(name.as_str()) == Some(public_blob) {
                    return Ok(ArmReply::Completed);
                }
                if self.any_seeding() {
                    return Err(errors::arm(
                        400,
                        "OperationCanNotStartDueToMiLink",
                        "The operation cannot start while a database is being created through a \
                         Managed Instance link. Retry after seeding completes.",
                    ));
                }
                if public_blob.first() != Some(&0x30) {
                    return Err(errors::arm(
                        400,
                        "InvalidParameterValue",
                        "publicBlob is not a DER-encoded certificate.",
                    ));
                }
                Ok(self.accept(op))
            }
            InstanceOp::PutLink { link, properties } => {
                let p = properties;
                if p.instance_ag == p.partner_ag {
                    return Err(errors::arm(
                        400,
                        "InstanceAvailabilityGroupNamePartnerAvailabilityGroupNameMatch",
                        "instanceAvailabilityGroupName and partnerAvailabilityGroupName must \
                         differ.",
                    ));
                }
                if p.databases.is_empty() {
                    return Err(errors::arm(
                        400,
                        "InvalidDistributedAvailabilityGroupsCreateOrUpdateRequestDatabases",
                        "databases must name at least one database.",
                    ));
                }
                if p.link_mode == LinkMode::SingleDatabase && p.databases.len() > 1 {
                    return Err(errors::arm(
                        400,
                        "ManagedInstanceLinkForProvidedAvailabilityGroupsAlreadyExists",
                        "In single-database mode a link can contain only one database; use a \
                         new link (DAG) name for each database.",
                    ));
                }
                if p.seeding_mode != crate::lifecycle::SeedingMode::Automatic {
                    return Err(errors::arm(
                        400,
                        "InvalidDistributedAvailabilityGroupsCreateOrUpdateRequestSeedingMode",
                        "Currently, only the 'Automatic' seeding mode is supported.",
                    ));
                }
                if p.failover_mode == FailoverMode::Manual
                    && !self
                        .source
                        .version
                        .capabilities()
                        .failback_allowed_with(self.instance.update_policy)
                {
                    return Err(errors::arm(
                        400,
                        "CloudLifterChimeraBoxAndMiOnDifferentDbVersionsFailoverModeManual",
                        format!(
                            "failoverMode 'Manual' needs matching database formats: SQL Server {} \
                             and update policy {}. Use failoverMode 'None' (one-way).",
                            self.source.version, self.instance.update_policy
                        ),
                    ));
                }
                if let Some(other) = self
                    .instance
                    .links
                    .iter()
                    .find(|(l, x)| *l != link && x.properties.instance_ag == p.instance_ag)
                {
                    return Err(errors::arm(
                        400,
                        "CloudLifterChimeraMIAgNameIsAlreadyUsed",
                        format!(
                            "instanceAvailabilityGroupName '{}' is already used by link '{}'.",
                            p.instance_ag, other.0
                        ),
                    ));
                }
                if let Some(existing) = self.instance.links.get(link) {
                    if &existing.properties == p {
                        return Ok(ArmReply::Completed);
                    }
                    return Err(errors::arm(
                        400,
                        "InvalidDistributedAvailabilityGroupsCreateOrUpdateRequest",
                        format!("The link '{link}' exists with other properties; delete it first."),
                    ));
                }
                if self.pending_on_link(link).is_some() {
                    return Err(errors::arm_conflict(link, self.config.arm.retry_after));
                }
                for db in &p.databases {
                    if self
                        .instance
                        .databases
                        .get(db)
                        .is_some_and(|d| d.link.is_none())
                        && p.instance_link_role == Side::SqlServer
                    {
                        return Err(errors::arm(
                            400,
                            "InvalidDistributedAvailabilityGroupsCreateOrUpdateRequestDatabases",
                            format!("A database named '{db}' already exists on the instance."),
                        ));
                    }
                }
                Ok(self.accept(op))
            }
            InstanceOp::SetReplicationMode { link, mode } => {
                let Some(l) = self.instance.links.get(link) else {
                    return Err(not_found(link));
                };
                if l.replication_mode == *mode {
                    return Ok(ArmReply::Completed);
                }
                Ok(self.accept(op))
            }
            InstanceOp::SetLinkDatabases { link, databases } => {
                self.begin_set_link_databases(op, link, databases)
            }
            InstanceOp::Failover {
                link,
                failover_type,
            } => {
                let Some(l) = self.instance.links.get(link) else {
                    return Err(not_found(link));
                };
                if self.pending_on_link(link).is_some() {
                    return Err(errors::arm(
                        409,
                        "DistributedAvailabilityGroupSetRoleChangeRoleAlreadyInProgress",
                        "A role change on this link is already in progress.",
                    ));
                }
                // Failing over to SQL Server needs the instance's update policy to match SQL
                // Server's release (the code is the one the service uses for the same mismatch
                // at link creation; its use here is UNVERIFIED).
                if l.role == ReplicaRole::Primary
                    && !self
                        .source
                        .version
                        .capabilities()
                        .failback_allowed_with(self.instance.update_policy)
                {
                    return Err(errors::arm(
                        409,
                        "CloudLifterChimeraBoxAndMiOnDifferentDbVersionsFailoverModeManual",
                        format!(
                            "The managed instance's update policy {} does not match SQL Server {}: \
                             it cannot fail over to SQL Server.",
                            self.instance.update_policy, self.source.version
                        ),
                    ));
                }
                match failover_type {
                    ArmFailoverType::Planned => {
                        if self.config.arm_planned_failover_requires_primary
                            && l.role != ReplicaRole::Primary
                        {
                            return Err(errors::arm(
                                400,
                                "InvalidDistributedAvailabilityGroupFailoverInstanceRole",
                                "Planned failover can be executed on a link in the primary role \
                                 only.",
                            ));
                        }
                        if l.role == ReplicaRole::Primary
                            && l.properties.failover_mode == FailoverMode::None
                        {
                            return Err(errors::arm(
                                400,
                                "InvalidDistributedAvailabilityGroupFailoverRequest",
                                "The link is one-way (failoverMode None): it cannot fail over to \
                                 SQL Server.",
                            ));
                        }
                        self.arm_planned_failover_precheck(link)?;
                    }
                    ArmFailoverType::ForcedAllowDataLoss => {
                        if l.properties.failover_mode == FailoverMode::None {
                            return Err(errors::arm(
                                409,
                                "DistributedAvailabilityGroupForcedFailoverWrongDbVersion",
                                "Forced failover is not supported on this managed instance \
                                 link. For database migration, please delete the link instead.",
                            ));
                        }
                        if l.role == ReplicaRole::Primary {
                            return Err(errors::arm(
                                409,
                                "DistributedAvailabilityGroupSetRoleInstanceAlreadyInRequestedRole",
                                "The instance is already primary on this link.",
                            ));
                        }
                        if !self.can_become_primary(link, Side::ManagedInstance) {
                            return Err(errors::arm(
                                409,
                                "DistributedAvailabilityGroupSetRoleFailed",
                                "The instance's databases are still seeding and cannot become \
                                 primary.",
                            ));
                        }
                    }
                }
                Ok(self.accept(op))
            }
            InstanceOp::SetRole { link, role, change } => {
                let Some(l) = self.instance.links.get(link) else {
                    return Err(not_found(link));
                };
                let wanted = match role {
                    Side::ManagedInstance => ReplicaRole::Primary,
                    Side::SqlServer => ReplicaRole::Secondary,
                };
                if l.role == wanted {
                    return Err(errors::arm(
                        409,
                        "DistributedAvailabilityGroupSetRoleInstanceAlreadyInRequestedRole",
                        format!("The instance is already {wanted:?} on this link."),
                    ));
                }
                if self.pending_on_link(link).is_some() {
                    return Err(errors::arm(
                        409,
                        "DistributedAvailabilityGroupSetRoleChangeRoleAlreadyInProgress",
                        "A role change on this link is already in progress.",
                    ));
                }
                if wanted == ReplicaRole::Primary {
                    if *change == RoleChangeType::Planned {
                        return Err(errors::arm(
                            409,
                            "DistributedAvailabilityGroupSetRolePrimaryPlannedNotSupported",
                            "A planned setRole to Primary is not supported; use failover.",
                        ));
                    }
                    if !self.can_become_primary(link, Side::ManagedInstance) {
                        return Err(errors::arm(
                            409,
                            "DistributedAvailabilityGroupSetRoleFailed",
                            "The instance's databases cannot become primary.",
                        ));
                    }
                }
                Ok(self.accept(op))
            }
            InstanceOp::DeleteLink { link } => {
                if let Some(existing) = self.instance.operations.values().find(|o| {
                    o.outcome.is_none()
                        && matches!(&o.op, InstanceOp::DeleteLink { link: l } if l == link)
                }) {
                    let collection = "distributedAvailabilityGroups";
                    let id = existing.id.clone();
                    return Ok(ArmReply::Accepted(OperationRef {
                        url: self.operation_url(collection, &id),
                        kind: OperationKind::Location,
                        resource: None,
                    }));
                }
                if !self.instance.links.contains_key(link) {
                    return Ok(ArmReply::Completed);
                }
                Ok(self.accept(op))
            }
            InstanceOp::DeleteServerTrustCertificate { name } => {
                if !self.instance.trust_certificates.contains_key(name.as_str()) {
                    return Ok(ArmReply::Completed);
                }
                Ok(self.accept(op))
            }
        }
    }

    fn operation_id(operation: &OperationRef) -> &str {
        operation
            .url
            .rsplit_once("OperationResults/")
            .map(|(_, rest)| rest.split('?').next().unwrap_or(rest))
            .unwrap_or_default()
    }

    /// The operation `operation` refers to, if the instance knows it.
    pub(crate) fn operation_of(&self, operation: &OperationRef) -> Option<&InstanceOp> {
        self.instance
            .operations
            .get(Self::operation_id(operation))
            .map(|o| &o.op)
    }

    /// Polls an operation by its URL.
    pub(crate) fn poll_operation(
        &mut self,
        operation: &OperationRef,
    ) -> Result<PollReply, PortError> {
        let id = Self::operation_id(operation);
        let Some(op) = self.instance.operations.get(id) else {
            return Err(errors::arm(
                404,
                "ResourceNotFound",
                format!("The operation '{}' was not found.", operation.url),
            ));
        };
        match &op.outcome {
            None => Ok(PollReply::Running {
                retry_after: Some(self.config.arm.retry_after),
            }),
            Some(Ok(())) => Ok(PollReply::Succeeded),
            Some(Err(e)) => Err(e.clone().into()),
        }
    }

    /// Completes the operations whose time has come, oldest first.
    pub(crate) fn complete_due_operations(&mut self) {
        loop {
            let now = self.now;
            let Some(id) = self
                .instance
                .operations
                .values()
                .filter(|o| o.outcome.is_none() && o.completes_at <= now)
                .min_by_key(|o| (o.completes_at, o.started))
                .map(|o| o.id.clone())
            else {
                return;
            };
            let Some(op) = self.instance.operations.get(&id).cloned() else {
                return;
            };
            match self.complete_operation(&op) {
                Completion::Done(result) => {
                    if let Some(o) = self.instance.operations.get_mut(&id) {
                        o.outcome = Some(result);
                    }
                }
                Completion::Postpone(at) => {
                    if let Some(o) = self.instance.operations.get_mut(&id) {
                        o.completes_at = at.max(now.plus(std::time::Duration::from_millis(1)));
                    }
                }
            }
        }
    }

    fn complete_operation(&mut self, o: &ArmOperation) -> Completion {
        match &o.op {
            InstanceOp::GetEndpointCertificate => Completion::Done(Ok(())),
            InstanceOp::PutServerTrustCertificate { name, public_blob } => {
                self.instance
                    .trust_certificates
                    .insert(name.as_str().to_string(), public_blob.clone());
                Completion::Done(Ok(()))
            }
            InstanceOp::DeleteServerTrustCertificate { name } => {
                self.instance.trust_certificates.remove(name.as_str());
                Completion::Done(Ok(()))
            }
            InstanceOp::PutLink { link, properties } => self.complete_put_link(o, link, properties),
            InstanceOp::SetReplicationMode { link, mode } => {
                match self.instance.links.get_mut(link) {
                    Some(l) => {
                        l.replication_mode = *mode;
                        Completion::Done(Ok(()))
                    }
                    None => Completion::Done(Err(not_found(link).into())),
                }
            }
            InstanceOp::SetLinkDatabases { link, databases } => {
                self.complete_set_link_databases(link, databases)
            }
            InstanceOp::Failover {
                link,
                failover_type: ArmFailoverType::Planned,
            } => match self.arm_planned_failover(link) {
                Ok(_) => Completion::Done(Ok(())),
                Err(why) => Completion::Done(Err(errors::arm(
                    409,
                    "DistributedAvailabilityGroupFailoverSecondariesNotSynchronizing",
                    format!("Planned failover failed: {why}."),
                )
                .into())),
            },
            InstanceOp::Failover {
                link,
                failover_type: ArmFailoverType::ForcedAllowDataLoss,
            } => {
                if !self.instance.links.contains_key(link) {
                    return Completion::Done(Err(not_found(link).into()));
                }
                self.force_primary(link, Side::ManagedInstance);
                Completion::Done(Ok(()))
            }
            InstanceOp::SetRole { link, role, .. } => {
                if !self.instance.links.contains_key(link) {
                    return Completion::Done(Err(not_found(link).into()));
                }
                match role {
                    Side::ManagedInstance => self.force_primary(link, Side::ManagedInstance),
                    Side::SqlServer => self.demote_instance(link),
                }
                Completion::Done(Ok(()))
            }
            InstanceOp::DeleteLink { link } => {
                self.instance.links.remove(link);
                self.remove_replication(link);
                let dbs: Vec<DatabaseName> = self
                    .instance
                    .databases
                    .iter()
                    .filter(|(_, d)| d.link.as_ref() == Some(link))
                    .map(|(n, _)| n.clone())
                    .collect();
                let sql_primary = self
                    .source
                    .dags
                    .get(link)
                    .is_some_and(|d| d.role == ReplicaRole::Primary);
                for db in dbs {
                    self.detach_instance_database(link, db, sql_primary);
                }
                self.event(EventKind::LinkRemoved {
                    link: link.clone(),
                    side: Side::ManagedInstance,
                });
                Completion::Done(Ok(()))
            }
        }
    }

    /// `db` leaves `link` on the instance (the link is deleted, or its list no longer names
    /// `db`): a copy still seeding is dropped; a seeded copy becomes the database, writable
    /// and independent, and what SQL Server's copy holds beyond it is counted lost.
    fn detach_instance_database(&mut self, link: &LinkName, db: DatabaseName, sql_primary: bool) {
        let now = self.now;
        let restoring = self
            .instance
            .databases
            .get(&db)
            .is_some_and(|d| d.state == DbState::Restoring);
        if restoring {
            // Seeding never finished: there is no database to keep.
            self.instance.databases.remove(&db);
            self.instance.backup_schedule.remove(&db);
            return;
        }
        // The instance's copy becomes the database: what SQL Server's copy holds
        // beyond it is lost, and while SQL Server stays primary of its DAG every
        // commit there is lost too.
        self.count_loss(&db, Side::SqlServer, Side::ManagedInstance);
        if sql_primary {
            self.commits.orphaned.insert(db.clone(), link.clone());
        }
        let was_primary = self
            .instance
            .databases
            .get(&db)
            .is_some_and(|d| d.primary_since.is_some());
        if let Some(d) = self.instance.databases.get_mut(&db) {
            d.link = None;
            if d.primary_since.is_none() {
                d.primary_since = Some(now);
            }
        }
        if !was_primary {
            self.schedule_first_full(&db);
        }
        self.event(EventKind::DatabaseIndependent { database: db });
    }

    /// The ARM code refusing to replicate SQL Server's `db` to the instance, if any.
    fn source_db_refusal(&self, db: &DatabaseName) -> Option<&'static str> {
        let facts = &self.source.databases.get(db)?.facts;
        if facts.filestream {
            Some("ManagedInstanceLinkSourceDbHasFilestream")
        } else if facts.log_files > 1 {
            Some("ManagedInstanceLinkSourceDbHasMultipleLogFiles")
        } else if facts.in_memory_oltp
            && self.instance.tier != crate::assess::ServiceTier::BusinessCritical
        {
            Some("ManagedInstanceLinkSourceDbHasHekatonFile")
        } else {
            None
        }
    }

    /// The checks ARM makes before it accepts a new database list for `link`.
    fn begin_set_link_databases(
        &mut self,
        op: &InstanceOp,
        link: &LinkName,
        databases: &[DatabaseName],
    ) -> Result<ArmReply, PortError> {
        const CODE: &str = "InvalidDistributedAvailabilityGroupsUpdateRequestDatabases";
        let Some(l) = self.instance.links.get(link) else {
            return Err(not_found(link));
        };
        if l.properties.link_mode != LinkMode::MultiDatabase {
            return Err(errors::arm(
                400,
                CODE,
                format!(
                    "The link '{link}' is a single-database link: its database list cannot \
                     change. Create a link per database, or use MultiDatabase link mode."
                ),
            ));
        }
        if databases.is_empty() {
            return Err(errors::arm(
                400,
                CODE,
                "databases must name at least one database; to end the link, delete it.",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = databases.iter().find(|d| !seen.insert(*d)) {
            return Err(errors::arm(
                400,
                CODE,
                format!("The database '{dup}' is named twice."),
            ));
        }
        let current: std::collections::BTreeSet<&DatabaseName> =
            l.properties.databases.iter().collect();
        if seen == current {
            return Ok(ArmReply::Completed);
        }
        if self.pending_on_link(link).is_some() {
            return Err(errors::arm_conflict(link, self.config.arm.retry_after));
        }
        let instance_primary = l.role == ReplicaRole::Primary;
        for db in databases.iter().filter(|d| !current.contains(d)) {
            let on_instance = self.instance.databases.get(db);
            let refusal = match (instance_primary, on_instance) {
                (true, None) => Some(format!(
                    "The database '{db}' does not exist on the instance, which is the link's \
                     primary."
                )),
                (true, Some(d)) => d.link.as_ref().filter(|x| *x != link).map(|x| {
                    format!("The database '{db}' is already replicated by the link '{x}'.")
                }),
                (false, Some(_)) => Some(format!(
                    "A database named '{db}' already exists on the instance."
                )),
                (false, None) => None,
            };
            if let Some(message) = refusal {
                return Err(errors::arm(400, CODE, message));
            }
        }
        Ok(self.accept(op))
    }

    /// The link's database list becomes `databases`: new ones join the replication (seeded
    /// from the primary), those left out leave it.
    fn complete_set_link_databases(
        &mut self,
        link: &LinkName,
        databases: &[DatabaseName],
    ) -> Completion {
        let Some(l) = self.instance.links.get(link) else {
            return Completion::Done(Err(not_found(link).into()));
        };
        let old = l.properties.databases.clone();
        let instance_primary = l.role == ReplicaRole::Primary;
        let added: Vec<DatabaseName> = databases
            .iter()
            .filter(|d| !old.contains(d))
            .cloned()
            .collect();
        let removed: Vec<DatabaseName> = old
            .iter()
            .filter(|d| !databases.contains(d))
            .cloned()
            .collect();
        if !instance_primary {
            // SQL Server is primary: a database joins the link through its AG first
            // (`ALTER AVAILABILITY GROUP … ADD DATABASE`).
            let sql_ag_dbs = self.source_ag_databases(link);
            if let Some(db) = added.iter().find(|d| !sql_ag_dbs.contains(d)) {
                let ag = self
                    .source
                    .dags
                    .get(link)
                    .map(|d| d.sql_ag.to_string())
                    .unwrap_or_default();
                return Completion::Done(Err(link_error(
                    &LinkFault {
                        code: errors::AG_NOT_RESPONDING,
                        message: format!(
                            "The availability group '{ag}' on SQL Server does not contain '{db}': \
                             add it there first (ALTER AVAILABILITY GROUP … ADD DATABASE)."
                        ),
                    },
                    "LinkCreationError",
                )));
            }
            if let Some((db, code)) = added
                .iter()
                .find_map(|d| self.source_db_refusal(d).map(|c| (d, c)))
            {
                return Completion::Done(Err(errors::arm(
                    400,
                    code,
                    format!("The source database '{db}' cannot be replicated to the instance."),
                )
                .into()));
            }
        }
        if let Some(l) = self.instance.links.get_mut(link) {
            l.properties.databases = databases.to_vec();
        }
        if instance_primary {
            for db in &added {
                if let Some(d) = self.instance.databases.get_mut(db) {
                    d.link = Some(link.clone());
                }
            }
        }
        let sql_primary = self
            .source
            .dags
            .get(link)
            .is_some_and(|d| d.role == ReplicaRole::Primary);
        for db in removed {
            self.remove_replica_database(link, &db);
            let copy_in_link = self
                .instance
                .databases
                .get(&db)
                .is_some_and(|d| d.link.as_ref() == Some(link));
            if copy_in_link {
                self.detach_instance_database(link, db, sql_primary);
            }
        }
        self.add_replica_databases(link, &added);
        Completion::Done(Ok(()))
    }

    fn complete_put_link(
        &mut self,
        o: &ArmOperation,
        link: &LinkName,
        p: &crate::lifecycle::LinkProperties,
    ) -> Completion {
        let fail = |f: LinkFault, arm: &str| Completion::Done(Err(link_error(&f, arm)));
        let Some(dag) = self.source.dags.get(link) else {
            return fail(
                LinkFault {
                    code: errors::AG_NOT_RESPONDING,
                    message: format!(
                        "The availability group on SQL Server is not responding: no distributed \
                         availability group '{link}' exists there. Create it before joining."
                    ),
                },
                "LinkInitError",
            );
        };
        if dag.sql_ag != p.partner_ag || dag.mi_ag != p.instance_ag {
            return fail(
                LinkFault {
                    code: errors::AG_NOT_RESPONDING,
                    message: format!(
                        "The availability group names do not match: SQL Server's DAG '{link}' \
                         joins '{}' and '{}', the request names '{}' and '{}'.",
                        dag.sql_ag, dag.mi_ag, p.partner_ag, p.instance_ag
                    ),
                },
                "LinkInitError",
            );
        }
        let sql_ag_dbs = self
            .source
            .ags
            .get(&dag.sql_ag)
            .map(|a| a.databases.clone())
            .unwrap_or_default();
        if p.instance_link_role == Side::SqlServer
            && p.databases.iter().any(|d| !sql_ag_dbs.contains(d))
        {
            return fail(
                LinkFault {
                    code: errors::AG_NOT_RESPONDING,
                    message: format!(
                        "The availability group '{}' on SQL Server does not contain the \
                         databases of the link.",
                        dag.sql_ag
                    ),
                },
                "LinkInitError",
            );
        }
        if let Err(f) = self.transport() {
            if f.code == errors::SQL_CERT_NOT_ON_INSTANCE {
                return fail(f, "ManagedInstanceLinkCertificateNotFoundOnManagedInstance");
            }
            if f.code == errors::INSTANCE_CERT_NOT_ON_SQL {
                return fail(f, "ManagedInstanceLinkCertificateNotFoundOnSqlServer");
            }
            let deadline = o.started.plus(self.config.link_init_timeout);
            if self.now < deadline {
                return Completion::Postpone(
                    self.now
                        .plus(std::time::Duration::from_secs(30))
                        .min(deadline),
                );
            }
            return fail(
                LinkFault {
                    code: errors::LINK_NOT_INITIATED,
                    message: format!(
                        "The link was not initiated within {} minutes: the instance could not \
                         connect to SQL Server ({}). Check the network path, NSG and firewall \
                         rules for TCP 5022 and 11000-11999.",
                        self.config.link_init_timeout.as_secs() / 60,
                        f.message
                    ),
                },
                "ManagedInstanceLinkConnectivityIsNotEstablished",
            );
        }
        if p.instance_link_role == Side::SqlServer {
            for db in &p.databases {
                if let Some(code) = self.source_db_refusal(db) {
                    return Completion::Done(Err(errors::arm(
                        400,
                        code,
                        format!("The source database '{db}' cannot be replicated to the instance."),
                    )
                    .into()));
                }
            }
        }
        let role = if p.instance_link_role == Side::ManagedInstance {
            ReplicaRole::Primary
        } else {
            ReplicaRole::Secondary
        };
        self.instance.links.insert(
            link.clone(),
            InstanceLink {
                properties: p.clone(),
                role,
                replication_mode: crate::lifecycle::AvailabilityMode::AsynchronousCommit,
                created: self.now,
            },
        );
        if role == ReplicaRole::Primary {
            for db in &p.databases {
                if let Some(d) = self.instance.databases.get_mut(db) {
                    d.link = Some(link.clone());
                }
            }
        }
        self.create_replication(link, &p.databases);
        Completion::Done(Ok(()))
    }
}
