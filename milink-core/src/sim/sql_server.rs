//! The simulated SQL Server: applies each [`SourceOp`] to its catalog idempotently, refuses what
//! a real SQL Server refuses (with its error numbers), and reports its view of the link.

use async_trait::async_trait;

use crate::lifecycle::{AvailabilityMode, LinkName, ReplicaRole, Side, SideView, SourceOp};
use crate::names::DatabaseName;
use crate::ports::{PortError, SourceReply, SourceServer};
use crate::redirect::WorkloadActivity;
use crate::tsql::{CreateAgSpec, CreateDagSpec, MirroringEndpointSpec};

use super::errors;
use super::faults::{Call, SourceCall};
use super::lab::RecoveryModel;
use super::world::{
    DbState, EventKind, MirroringEndpoint, SqlAvailabilityGroup, SqlCertificate, SqlDistributedAg,
    World, fake_der,
};
use super::{DurationRange, Sim};

/// The DNS name the Azure root CAs are registered for.
pub const AZURE_ISSUER_DNS: &str = "*.database.windows.net";

/// The simulated SQL Server (TailspinSql in the lab). Implements [`SourceServer`].
#[derive(Debug, Clone)]
pub struct SimSqlServer {
    sim: Sim,
}

impl SimSqlServer {
    pub(crate) fn new(sim: Sim) -> Self {
        SimSqlServer { sim }
    }

    /// The world this server lives in.
    pub fn sim(&self) -> &Sim {
        &self.sim
    }
}

#[async_trait]
impl SourceServer for SimSqlServer {
    async fn execute(&self, op: &SourceOp) -> Result<SourceReply, PortError> {
        let mut w = self.sim.lock();
        let latency = w.source_latency(op);
        let fate = w.enter_call(Call::Source(SourceCall::of(op)), latency)?;
        let reply = w.exec_source(op);
        if fate.lose_response {
            return Err(errors::response_lost());
        }
        reply
    }

    async fn link_state(
        &self,
        link: &LinkName,
        databases: &[DatabaseName],
    ) -> Result<SideView, PortError> {
        let mut w = self.sim.lock();
        let latency = w.config.sql_request;
        w.enter_call(Call::SourceLinkState, latency)?;
        // The DMVs list every database of the link's availability group, not only the ones
        // asked for (a database added to the AG later is replicated too).
        let mut all = databases.to_vec();
        for db in w.source_ag_databases(link) {
            if !all.contains(&db) {
                all.push(db);
            }
        }
        Ok(w.side_view(Side::SqlServer, link, &all))
    }

    async fn workload_activity(
        &self,
        databases: &[DatabaseName],
    ) -> Result<WorkloadActivity, PortError> {
        Ok(self.sim.lock().client_sessions(Side::SqlServer, databases))
    }
}

fn not_found(kind: &str, name: &str) -> PortError {
    errors::sql(
        errors::OBJECT_NOT_FOUND,
        format!(
            "Cannot find the {kind} '{name}', because it does not exist or you do not have permission."
        ),
    )
}

fn hadr_disabled() -> PortError {
    errors::sql(
        errors::HADR_DISABLED,
        "Could not process the operation. Always On Availability Groups replica manager is \
         disabled on this instance of SQL Server. Enable Always On Availability Groups in SQL \
         Server Configuration Manager and restart the service.",
    )
}

impl World {
    pub(crate) fn source_latency(&self, op: &SourceOp) -> DurationRange {
        match op {
            SourceOp::CreateAvailabilityGroup { .. }
            | SourceOp::GrantCreateAnyDatabase { .. }
            | SourceOp::CreateDistributedAvailabilityGroup { .. }
            | SourceOp::SetAvailabilityMode { .. }
            | SourceOp::DropDistributedAvailabilityGroup { .. }
            | SourceOp::DropAvailabilityGroup { .. }
            | SourceOp::EnsureMirroringEndpoint { .. } => self.config.sql_hadr_ddl,
            SourceOp::Failover { .. }
            | SourceOp::ForceFailover { .. }
            | SourceOp::SetRoleSecondary { .. } => self.config.sql_failover,
            SourceOp::EnsureMasterKey
            | SourceOp::EnsureEndpointCertificate { .. }
            | SourceOp::ExportCertificatePublicKey { .. }
            | SourceOp::ImportInstanceCertificate { .. }
            | SourceOp::EnsureRootCaTrust => self.config.sql_request,
        }
    }

    /// Runs one T-SQL operation on the simulated SQL Server.
    pub(crate) fn exec_source(&mut self, op: &SourceOp) -> Result<SourceReply, PortError> {
        match op {
            SourceOp::EnsureMasterKey => {
                self.source.master_key = true;
                Ok(SourceReply::Done)
            }
            SourceOp::EnsureEndpointCertificate {
                name,
                subject,
                expiry,
            } => {
                if self.source.certificates.contains_key(name.as_str()) {
                    return Ok(SourceReply::Done);
                }
                if !self.source.master_key {
                    return Err(errors::sql(
                        errors::NO_MASTER_KEY,
                        "Please create a master key in the database or open the master key in \
                         the session before performing this operation.",
                    ));
                }
                let der = fake_der(self.rng(), 812);
                self.source.certificates.insert(
                    name.as_str().to_string(),
                    SqlCertificate {
                        name: name.as_str().to_string(),
                        subject: Some(subject.clone()),
                        expiry: Some(*expiry),
                        der,
                        has_private_key: true,
                        trusted_issuer_for: None,
                    },
                );
                Ok(SourceReply::Done)
            }
            SourceOp::EnsureMirroringEndpoint { spec } => {
                let MirroringEndpointSpec {
                    name,
                    port,
                    certificate,
                    ..
                } = spec;
                if !self.source.certificates.contains_key(certificate.as_str()) {
                    return Err(not_found("certificate", certificate.as_str()));
                }
                // Guarded by name. One DATABASE_MIRRORING endpoint per instance: one under
                // another name makes CREATE ENDPOINT fail.
                match self.source.endpoint.as_ref() {
                    Some(ep) if &ep.name == name => {}
                    Some(ep) => {
                        return Err(errors::sql(
                            errors::ENDPOINT_EXISTS,
                            format!(
                                "An endpoint of the requested type already exists ('{}'). Only \
                                 one endpoint of this type is supported. Use ALTER ENDPOINT or \
                                 DROP the existing endpoint and execute the CREATE ENDPOINT \
                                 statement.",
                                ep.name
                            ),
                        ));
                    }
                    None => {
                        self.source.endpoint = Some(MirroringEndpoint {
                            name: name.clone(),
                            port: *port,
                            certificate: Some(certificate.clone()),
                            started: true,
                            aes: true,
                        });
                    }
                }
                Ok(SourceReply::Done)
            }
            SourceOp::ExportCertificatePublicKey { name } => self
                .source
                .certificates
                .get(name.as_str())
                .map(|c| SourceReply::PublicKey(c.der.clone()))
                .ok_or_else(|| not_found("certificate", name.as_str())),
            SourceOp::ImportInstanceCertificate { fqdn, der } => {
                // Guarded by IF NOT EXISTS: an existing certificate of that name stays as it is.
                self.source
                    .certificates
                    .entry(fqdn.as_str().to_string())
                    .or_insert_with(|| SqlCertificate {
                        name: fqdn.as_str().to_string(),
                        subject: None,
                        expiry: None,
                        der: der.clone(),
                        has_private_key: false,
                        trusted_issuer_for: None,
                    });
                Ok(SourceReply::Done)
            }
            SourceOp::EnsureRootCaTrust => {
                if !self.source.version.capabilities().link_supported {
                    return Err(errors::sql(
                        errors::PROC_NOT_FOUND,
                        "Could not find stored procedure 'sp_certificate_add_issuer'. This build \
                         does not support the Managed Instance link; install the required \
                         cumulative update.",
                    ));
                }
                for name in ["MicrosoftPKI", "DigiCertPKI"] {
                    let der = fake_der(self.rng(), 1452);
                    let c = self
                        .source
                        .certificates
                        .entry(name.to_string())
                        .or_insert_with(|| SqlCertificate {
                            name: name.to_string(),
                            subject: None,
                            expiry: None,
                            der,
                            has_private_key: false,
                            trusted_issuer_for: None,
                        });
                    c.trusted_issuer_for = Some(AZURE_ISSUER_DNS.to_string());
                }
                self.source.root_ca_trust = true;
                Ok(SourceReply::Done)
            }
            SourceOp::CreateAvailabilityGroup { spec } => {
                let CreateAgSpec {
                    ag,
                    databases,
                    replica,
                    endpoint_url,
                    cluster_type_none,
                } = spec;
                if !self.source.hadr_enabled {
                    return Err(hadr_disabled());
                }
                if self.source.ags.contains_key(ag) {
                    return Ok(SourceReply::Done);
                }
                if *cluster_type_none && !self.source.version.capabilities().cluster_type_none {
                    return Err(errors::sql(102, "Incorrect syntax near 'CLUSTER_TYPE'."));
                }
                for db in databases {
                    let Some(d) = self.source.databases.get(db) else {
                        return Err(errors::sql(
                            errors::DATABASE_NOT_FOUND,
                            format!("Database '{db}' does not exist."),
                        ));
                    };
                    if d.facts.recovery_model != RecoveryModel::Full {
                        return Err(errors::sql(
                            errors::NOT_FULL_RECOVERY,
                            format!(
                                "Database \"{db}\" is not in full recovery mode. The full \
                                 recovery model is required for a database to participate in an \
                                 availability group. Run ALTER DATABASE [{db}] SET RECOVERY FULL \
                                 and take a full backup."
                            ),
                        ));
                    }
                    if d.facts.last_full_backup.is_none() {
                        return Err(errors::sql(
                            errors::NEEDS_FULL_BACKUP,
                            format!(
                                "Database \"{db}\" might contain bulk logged changes that have \
                                 not been backed up, or has never been backed up. Take a full \
                                 database backup (not COPY_ONLY) to start a backup chain."
                            ),
                        ));
                    }
                }
                self.source.ags.insert(
                    ag.clone(),
                    SqlAvailabilityGroup {
                        name: ag.clone(),
                        databases: databases.clone(),
                        replica: replica.clone(),
                        endpoint_url: endpoint_url.clone(),
                        create_any_database: false,
                    },
                );
                Ok(SourceReply::Done)
            }
            SourceOp::GrantCreateAnyDatabase { ag } => {
                let Some(a) = self.source.ags.get_mut(ag) else {
                    return Err(not_found("availability group", ag.as_str()));
                };
                a.create_any_database = true;
                Ok(SourceReply::Done)
            }
            SourceOp::CreateDistributedAvailabilityGroup { spec } => {
                let CreateDagSpec {
                    dag,
                    sql_ag,
                    sql_listener_url,
                    mi_ag,
                    mi_fqdn,
                    mi_database,
                    session_timeout_s,
                } = spec;
                if !self.source.hadr_enabled {
                    return Err(hadr_disabled());
                }
                if self.source.dags.contains_key(dag) {
                    return Ok(SourceReply::Done);
                }
                if !self.source.ags.contains_key(sql_ag) {
                    return Err(not_found("availability group", sql_ag.as_str()));
                }
                let role = if mi_database.is_some() {
                    ReplicaRole::Secondary
                } else {
                    ReplicaRole::Primary
                };
                self.source.dags.insert(
                    dag.clone(),
                    SqlDistributedAg {
                        name: dag.clone(),
                        sql_ag: sql_ag.clone(),
                        mi_ag: mi_ag.clone(),
                        sql_listener_url: sql_listener_url.clone(),
                        mi_fqdn: mi_fqdn.clone(),
                        sql_mode: AvailabilityMode::AsynchronousCommit,
                        mi_mode: AvailabilityMode::AsynchronousCommit,
                        role,
                        session_timeout_s: *session_timeout_s,
                    },
                );
                Ok(SourceReply::Done)
            }
            SourceOp::SetAvailabilityMode { dag, mode, .. } => {
                let Some(d) = self.source.dags.get_mut(dag) else {
                    return Err(not_found("availability group", dag.as_str()));
                };
                // `MODIFY AVAILABILITY GROUP ON` names both AGs: both replicas change.
                d.sql_mode = *mode;
                d.mi_mode = *mode;
                Ok(SourceReply::Done)
            }
            SourceOp::Failover { dag } => self.tsql_failover(dag),
            SourceOp::ForceFailover { dag } => {
                let Some(d) = self.source.dags.get(dag) else {
                    return Err(not_found("availability group", dag.as_str()));
                };
                if d.role == ReplicaRole::Primary {
                    return Ok(SourceReply::Done);
                }
                if !self.can_become_primary(dag, Side::SqlServer) {
                    return Err(errors::sql(
                        errors::FAILOVER_REFUSED,
                        format!(
                            "The availability replica for '{dag}' on this instance cannot become \
                             the primary replica: a database is still seeding, restoring or has \
                             not joined. Never force failover while a secondary database is \
                             INITIALIZING or REVERTING."
                        ),
                    ));
                }
                self.force_primary(dag, Side::SqlServer);
                Ok(SourceReply::Done)
            }
            SourceOp::SetRoleSecondary { dag } => {
                if !self.source.dags.contains_key(dag) {
                    return Err(not_found("availability group", dag.as_str()));
                }
                self.demote_sql_server(dag);
                Ok(SourceReply::Done)
            }
            SourceOp::DropDistributedAvailabilityGroup { dag } => {
                let Some(d) = self.source.dags.get(dag).cloned() else {
                    return Ok(SourceReply::Done);
                };
                let dbs = self
                    .source
                    .ags
                    .get(&d.sql_ag)
                    .map(|a| a.databases.clone())
                    .unwrap_or_default();
                if d.role == ReplicaRole::Primary && self.instance.links.contains_key(dag) {
                    // SQL Server leaves the link while it is primary: the instance keeps the
                    // link's copy, and what SQL Server holds beyond it never reaches it.
                    for db in &dbs {
                        self.count_loss(db, Side::SqlServer, Side::ManagedInstance);
                    }
                }
                self.source.dags.remove(dag);
                for db in &dbs {
                    if self.commits.orphaned.get(db) == Some(dag) {
                        self.commits.orphaned.remove(db);
                    }
                }
                self.remove_replication(dag);
                if d.role != ReplicaRole::Primary {
                    // The forwarder's databases stop being a replica: they are left restoring.
                    for db in &dbs {
                        if let Some(x) = self.source.databases.get_mut(db) {
                            x.state = DbState::Restoring;
                        }
                    }
                }
                self.event(EventKind::LinkRemoved {
                    link: dag.clone(),
                    side: Side::SqlServer,
                });
                Ok(SourceReply::Done)
            }
            SourceOp::DropAvailabilityGroup { ag } => {
                if !self.source.ags.contains_key(ag) {
                    return Ok(SourceReply::Done);
                }
                if let Some(d) = self.source.dags.values().find(|d| &d.sql_ag == ag) {
                    return Err(errors::sql(
                        errors::AG_IN_USE_BY_DAG,
                        format!(
                            "Cannot drop availability group '{ag}': it is a member of the \
                             distributed availability group '{}'. Drop that first.",
                            d.name
                        ),
                    ));
                }
                self.source.ags.remove(ag);
                Ok(SourceReply::Done)
            }
        }
    }

    fn tsql_failover(&mut self, dag: &LinkName) -> Result<SourceReply, PortError> {
        let refuse = |m: String| Err(errors::sql(errors::FAILOVER_REFUSED, m));
        let Some(d) = self.source.dags.get(dag) else {
            return Err(not_found("availability group", dag.as_str()));
        };
        if d.role == ReplicaRole::Secondary {
            // Guarded by the local role: the failover has already happened.
            return Ok(SourceReply::Done);
        }
        if !self.source.version.capabilities().tsql_failover {
            return refuse(format!(
                "ALTER AVAILABILITY GROUP [{dag}] FAILOVER on a distributed availability group \
                 needs SQL Server 2022 CU13 (16.0.4125.3) or later; this is {}.",
                self.source.version
            ));
        }
        if d.role != ReplicaRole::Primary {
            return refuse(format!(
                "FAILOVER must run on the primary replica of '{dag}'; SQL Server is {:?}.",
                d.role
            ));
        }
        if self.effective_mode(dag) != Some(AvailabilityMode::SynchronousCommit) {
            let async_replicas: Vec<&str> = [
                (d.sql_mode, d.sql_ag.as_str()),
                (d.mi_mode, d.mi_ag.as_str()),
            ]
            .into_iter()
            .filter(|(m, _)| *m != AvailabilityMode::SynchronousCommit)
            .map(|(_, ag)| ag)
            .collect();
            let why = if !async_replicas.is_empty() {
                format!(
                    "replica(s) {} are ASYNCHRONOUS_COMMIT in this distributed availability group",
                    async_replicas.join(", ")
                )
            } else if self.instance.links.contains_key(dag) {
                "the managed instance's link has replicationMode Async (ASYNCHRONOUS_COMMIT)"
                    .to_string()
            } else {
                "the managed instance has not joined the distributed availability group".to_string()
            };
            return refuse(format!(
                "The availability replica for '{dag}' cannot fail over: {why}. Set \
                 AVAILABILITY_MODE = SYNCHRONOUS_COMMIT on both replicas and replicationMode Sync \
                 on the instance, and wait for SYNCHRONIZED."
            ));
        }
        match self.planned_failover(dag) {
            Ok(_) => Ok(SourceReply::Done),
            Err(why) => refuse(format!(
                "The availability replica for '{dag}' cannot become the primary replica: {why}."
            )),
        }
    }
}
