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
use super::sql::ddl::apply::{EndpointSettings, ISSUER_EXISTS, NewAg, NewDag, not_found};
use super::world::World;
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
        if let SourceOp::EnsureRootCaTrust = op {
            // One round trip per root CA, as the adapter sends them (its batch declares a
            // variable, so the two cannot share one): each costs a call, and a failure stops
            // before the next.
            for (name, der) in crate::sqlserver::azure_root_ca_certificates() {
                let fate = w.enter_call(Call::Source(SourceCall::of(op)), latency)?;
                w.trust_root_ca(name.as_str(), &der)?;
                if fate.lose_response {
                    return Err(errors::response_lost());
                }
            }
            return Ok(SourceReply::Done);
        }
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

impl World {
    pub(crate) fn source_latency(&self, op: &SourceOp) -> DurationRange {
        self.source_call_latency(SourceCall::of(op))
    }

    /// The virtual latency of one T-SQL operation kind.
    pub(crate) fn source_call_latency(&self, call: SourceCall) -> DurationRange {
        match call {
            SourceCall::CreateAvailabilityGroup
            | SourceCall::GrantCreateAnyDatabase
            | SourceCall::CreateDistributedAvailabilityGroup
            | SourceCall::SetAvailabilityMode
            | SourceCall::DropDistributedAvailabilityGroup
            | SourceCall::DropAvailabilityGroup
            | SourceCall::EnsureMirroringEndpoint => self.config.sql_hadr_ddl,
            SourceCall::Failover | SourceCall::ForceFailover | SourceCall::SetRoleSecondary => {
                self.config.sql_failover
            }
            SourceCall::EnsureMasterKey
            | SourceCall::EnsureEndpointCertificate
            | SourceCall::ExportCertificatePublicKey
            | SourceCall::ImportInstanceCertificate
            | SourceCall::EnsureRootCaTrust => self.config.sql_request,
        }
    }

    /// One root CA's batch: import the certificate (the shipped DER, as the adapter sends it)
    /// unless it exists, then add it as a trusted issuer; "already added as a trusted issuer"
    /// is what a re-run answers (caught).
    pub(crate) fn trust_root_ca(&mut self, name: &str, der: &[u8]) -> Result<(), PortError> {
        if !self.source.certificates.contains_key(name) {
            self.sql_create_certificate_from_binary(name, der)?;
        }
        match self.sql_add_certificate_issuer(name, AZURE_ISSUER_DNS) {
            Err(e) if e.code() == format!("sql:{ISSUER_EXISTS}") => Ok(()),
            other => other,
        }
    }

    /// Runs one T-SQL operation on the simulated SQL Server: its guard (checked here, as the
    /// rendered batch's `IF [NOT] EXISTS` would), then the statements' world functions
    /// ([`super::sql::ddl`]), which the T-SQL path calls too.
    pub(crate) fn exec_source(&mut self, op: &SourceOp) -> Result<SourceReply, PortError> {
        match op {
            SourceOp::EnsureMasterKey => {
                if !self.source.master_key {
                    self.sql_create_master_key()?;
                }
            }
            SourceOp::EnsureEndpointCertificate {
                name,
                subject,
                expiry,
            } => {
                if !self.source.certificates.contains_key(name.as_str()) {
                    self.sql_create_certificate(name.as_str(), subject, Some(*expiry))?;
                }
            }
            SourceOp::EnsureMirroringEndpoint { spec } => {
                let MirroringEndpointSpec {
                    name,
                    port,
                    certificate,
                    ..
                } = spec;
                // Guarded by name. One DATABASE_MIRRORING endpoint per instance: one under
                // another name makes CREATE ENDPOINT fail.
                if self
                    .source
                    .endpoint
                    .as_ref()
                    .is_none_or(|ep| &ep.name != name)
                {
                    self.sql_create_endpoint(
                        name,
                        &EndpointSettings {
                            port: Some(*port),
                            certificate: Some(certificate.clone()),
                            started: Some(true),
                            aes: Some(true),
                        },
                    )?;
                }
            }
            SourceOp::ExportCertificatePublicKey { name } => {
                return self
                    .source
                    .certificates
                    .get(name.as_str())
                    .map(|c| SourceReply::PublicKey(c.der.clone()))
                    .ok_or_else(|| not_found("certificate", name.as_str()));
            }
            SourceOp::ImportInstanceCertificate { fqdn, der } => {
                // Guarded by IF NOT EXISTS: an existing certificate of that name stays as it is.
                let name = fqdn.certificate_name();
                if !self.source.certificates.contains_key(name.as_str()) {
                    self.sql_create_certificate_from_binary(name.as_str(), der)?;
                }
            }
            SourceOp::EnsureRootCaTrust => {
                for (name, der) in crate::sqlserver::azure_root_ca_certificates() {
                    self.trust_root_ca(name.as_str(), &der)?;
                }
            }
            SourceOp::CreateAvailabilityGroup { spec } => {
                let CreateAgSpec {
                    ag,
                    databases,
                    replica,
                    endpoint_url,
                    cluster_type_none,
                } = spec;
                if !self.source.hadr_enabled || !self.source.ags.contains_key(ag) {
                    self.sql_create_ag(&NewAg {
                        name: ag,
                        databases,
                        replica,
                        endpoint_url,
                        cluster_type_none: *cluster_type_none,
                    })?;
                }
            }
            SourceOp::GrantCreateAnyDatabase { ag } => {
                self.sql_grant_create_any_database(ag.as_str())?;
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
                if !self.source.hadr_enabled || !self.source.dags.contains_key(dag) {
                    self.sql_create_dag(&NewDag {
                        name: dag,
                        sql_ag,
                        sql_listener_url,
                        mi_ag,
                        mi_fqdn,
                        mi_database: mi_database.as_ref(),
                        session_timeout_s: *session_timeout_s,
                    })?;
                }
            }
            SourceOp::SetAvailabilityMode {
                dag,
                sql_ag,
                mi_ag,
                mode,
            } => {
                // `MODIFY AVAILABILITY GROUP ON` names both AGs: both replicas change.
                self.sql_set_dag_modes(
                    dag.as_str(),
                    &[(sql_ag.as_str(), *mode), (mi_ag.as_str(), *mode)],
                )?;
            }
            SourceOp::Failover { dag } => self.tsql_failover(dag).map(|_| ())?,
            SourceOp::ForceFailover { dag } => self.sql_force_failover(dag)?,
            SourceOp::SetRoleSecondary { dag } => self.sql_set_role_secondary(dag)?,
            SourceOp::DropDistributedAvailabilityGroup { dag } => {
                if self.source.dags.contains_key(dag) {
                    self.sql_drop_availability_group(dag.as_str())?;
                }
            }
            SourceOp::DropAvailabilityGroup { ag } => {
                if self.source.ags.contains_key(ag) {
                    self.sql_drop_availability_group(ag.as_str())?;
                }
            }
        }
        Ok(SourceReply::Done)
    }

    /// `ALTER AVAILABILITY GROUP dag FAILOVER` (nothing to do when SQL Server is already the
    /// secondary).
    pub(crate) fn tsql_failover(&mut self, dag: &LinkName) -> Result<SourceReply, PortError> {
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
