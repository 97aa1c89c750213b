//! What each DDL statement does to the simulated SQL Server, as world functions. Both paths
//! call them: `World::exec_source` (a [`crate::lifecycle::SourceOp`] in process, with its
//! guard checked in Rust) and the DDL executor (the same statement parsed from T-SQL, its guard
//! evaluated by the query engine), so the two cannot drift.
//!
//! Each function is the unguarded statement: it refuses what SQL Server refuses, with its
//! error number (sim/errors.rs), including "already exists" for a name that is taken.

use crate::lifecycle::{AvailabilityMode, LinkName, ReplicaRole, Side};
use crate::names::{
    AgName, CertificateName, DatabaseName, EndpointName, MiFqdn, ServerName, TcpPort,
};
use crate::ports::PortError;
use crate::time::Date;

use super::super::super::errors;
use super::super::super::lab::RecoveryModel;
use super::super::super::sql_server::AZURE_ISSUER_DNS;
use super::super::super::world::{
    DbState, EventKind, MirroringEndpoint, SqlAvailabilityGroup, SqlCertificate, SqlDistributedAg,
    World, fake_der,
};

/// 15232: a certificate of that name already exists (SQL Server's catalogue).
pub const CERTIFICATE_EXISTS: u32 = 15232;
/// 15578: there is already a master key in the database (SQL Server's catalogue).
pub const MASTER_KEY_EXISTS: u32 = 15578;
/// 19509: an availability group of that name already exists (SQL Server's catalogue).
pub const AG_EXISTS: u32 = 19509;
/// The number the simulator gives "…has been already added as a trusted issuer for DNS name…"
/// (milink-facts §1.4 e quotes the message, not its number): 15232's family, taken as 15233.
pub const ISSUER_EXISTS: u32 = 15233;

pub(crate) fn not_found(kind: &str, name: &str) -> PortError {
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

/// What `CREATE AVAILABILITY GROUP` names (one replica: SQL Server).
#[derive(Debug, Clone)]
pub(crate) struct NewAg<'a> {
    pub name: &'a AgName,
    pub databases: &'a [DatabaseName],
    pub replica: &'a ServerName,
    pub endpoint_url: &'a str,
    pub cluster_type_none: bool,
}

/// What `CREATE AVAILABILITY GROUP … WITH (DISTRIBUTED)` names.
#[derive(Debug, Clone)]
pub(crate) struct NewDag<'a> {
    pub name: &'a LinkName,
    pub sql_ag: &'a AgName,
    pub sql_listener_url: &'a str,
    pub mi_ag: &'a AgName,
    pub mi_fqdn: &'a MiFqdn,
    pub mi_database: Option<&'a DatabaseName>,
    pub session_timeout_s: u16,
}

/// What `CREATE ENDPOINT` / `ALTER ENDPOINT` sets.
#[derive(Debug, Clone)]
pub(crate) struct EndpointSettings {
    pub port: Option<TcpPort>,
    pub certificate: Option<CertificateName>,
    pub started: Option<bool>,
    pub aes: Option<bool>,
}

impl World {
    /// `CREATE MASTER KEY ENCRYPTION BY PASSWORD = …` in `master`.
    pub(crate) fn sql_create_master_key(&mut self) -> Result<(), PortError> {
        if self.source.master_key {
            return Err(errors::sql(
                MASTER_KEY_EXISTS,
                "There is already a master key in the database. Please drop it before performing \
                 this statement.",
            ));
        }
        self.source.master_key = true;
        Ok(())
    }

    fn certificate_exists(name: &str) -> PortError {
        errors::sql(
            CERTIFICATE_EXISTS,
            format!(
                "A certificate with name '{name}' already exists or this certificate already has \
                 been added to the database."
            ),
        )
    }

    /// `CREATE CERTIFICATE name WITH SUBJECT = …, EXPIRY_DATE = …` (encrypted by the master
    /// key; without `EXPIRY_DATE` it expires a year from now, as SQL Server's default).
    pub(crate) fn sql_create_certificate(
        &mut self,
        name: &str,
        subject: &str,
        expiry: Option<Date>,
    ) -> Result<(), PortError> {
        if self.source.certificates.contains_key(name) {
            return Err(Self::certificate_exists(name));
        }
        if !self.source.master_key {
            return Err(errors::sql(
                errors::NO_MASTER_KEY,
                "Please create a master key in the database or open the master key in the \
                 session before performing this operation.",
            ));
        }
        let expiry = expiry.unwrap_or_else(|| {
            Date::from_days_since_epoch(self.now.date().days_since_epoch() + 365)
        });
        let der = fake_der(self.rng(), 812);
        self.source.certificates.insert(
            name.to_string(),
            SqlCertificate {
                name: name.to_string(),
                subject: Some(subject.to_string()),
                expiry: Some(expiry),
                der,
                has_private_key: true,
                trusted_issuer_for: None,
            },
        );
        Ok(())
    }

    /// `CREATE CERTIFICATE name FROM BINARY = 0x…` (a public key only).
    pub(crate) fn sql_create_certificate_from_binary(
        &mut self,
        name: &str,
        der: &[u8],
    ) -> Result<(), PortError> {
        if self.source.certificates.contains_key(name) {
            return Err(Self::certificate_exists(name));
        }
        self.source.certificates.insert(
            name.to_string(),
            SqlCertificate {
                name: name.to_string(),
                subject: None,
                expiry: None,
                der: der.to_vec(),
                has_private_key: false,
                trusted_issuer_for: None,
            },
        );
        Ok(())
    }

    /// `DROP CERTIFICATE name`.
    pub(crate) fn sql_drop_certificate(&mut self, name: &str) -> Result<(), PortError> {
        if self.source.certificates.remove(name).is_none() {
            return Err(not_found("certificate", name));
        }
        Ok(())
    }

    /// `EXEC sp_certificate_add_issuer @cert_id, dns`: 2812 on a build without the link.
    pub(crate) fn sql_add_certificate_issuer(
        &mut self,
        certificate: &str,
        dns: &str,
    ) -> Result<(), PortError> {
        if !self.source.version.capabilities().link_supported {
            return Err(errors::sql(
                errors::PROC_NOT_FOUND,
                "Could not find stored procedure 'sp_certificate_add_issuer'. This build does \
                 not support the Managed Instance link; install the required cumulative update.",
            ));
        }
        let Some(c) = self.source.certificates.get_mut(certificate) else {
            return Err(not_found("certificate", certificate));
        };
        if c.trusted_issuer_for.as_deref() == Some(dns) {
            return Err(errors::sql(
                ISSUER_EXISTS,
                format!(
                    "The certificate '{certificate}' has been already added as a trusted issuer \
                     for DNS name '{dns}'."
                ),
            ));
        }
        c.trusted_issuer_for = Some(dns.to_string());
        if dns == AZURE_ISSUER_DNS {
            self.source.root_ca_trust = true;
        }
        Ok(())
    }

    /// `CREATE ENDPOINT name … FOR DATABASE_MIRRORING (…)`: one per instance (7862).
    pub(crate) fn sql_create_endpoint(
        &mut self,
        name: &EndpointName,
        settings: &EndpointSettings,
    ) -> Result<(), PortError> {
        if let Some(c) = &settings.certificate
            && !self.source.certificates.contains_key(c.as_str())
        {
            return Err(not_found("certificate", c.as_str()));
        }
        if let Some(ep) = &self.source.endpoint {
            return Err(errors::sql(
                errors::ENDPOINT_EXISTS,
                format!(
                    "An endpoint of the requested type already exists ('{}'). Only one endpoint \
                     of this type is supported. Use ALTER ENDPOINT or DROP the existing endpoint \
                     and execute the CREATE ENDPOINT statement.",
                    ep.name
                ),
            ));
        }
        self.source.endpoint = Some(MirroringEndpoint {
            name: name.clone(),
            port: settings.port.unwrap_or(TcpPort::MIRRORING_DEFAULT),
            certificate: settings.certificate.clone(),
            started: settings.started.unwrap_or(false),
            aes: settings.aes.unwrap_or(true),
        });
        Ok(())
    }

    /// `ALTER ENDPOINT name …`: changes what the statement names.
    pub(crate) fn sql_alter_endpoint(
        &mut self,
        name: &str,
        settings: &EndpointSettings,
    ) -> Result<(), PortError> {
        if let Some(c) = &settings.certificate
            && !self.source.certificates.contains_key(c.as_str())
        {
            return Err(not_found("certificate", c.as_str()));
        }
        let Some(ep) = self
            .source
            .endpoint
            .as_mut()
            .filter(|ep| ep.name.as_str() == name)
        else {
            return Err(not_found("endpoint", name));
        };
        if let Some(p) = settings.port {
            ep.port = p;
        }
        if settings.certificate.is_some() {
            ep.certificate.clone_from(&settings.certificate);
        }
        if let Some(s) = settings.started {
            ep.started = s;
        }
        if let Some(a) = settings.aes {
            ep.aes = a;
        }
        Ok(())
    }

    /// `DROP ENDPOINT name`.
    pub(crate) fn sql_drop_endpoint(&mut self, name: &str) -> Result<(), PortError> {
        if self
            .source
            .endpoint
            .as_ref()
            .is_none_or(|ep| ep.name.as_str() != name)
        {
            return Err(not_found("endpoint", name));
        }
        self.source.endpoint = None;
        Ok(())
    }

    fn ag_name_taken(&self, name: &str) -> Option<PortError> {
        let taken = self.source.ags.keys().any(|a| a.as_str() == name)
            || self.source.dags.keys().any(|d| d.as_str() == name);
        taken.then(|| {
            errors::sql(
                AG_EXISTS,
                format!(
                    "Cannot create the availability group '{name}': an availability group with \
                     the same name already exists."
                ),
            )
        })
    }

    /// `CREATE AVAILABILITY GROUP` (not distributed).
    pub(crate) fn sql_create_ag(&mut self, ag: &NewAg<'_>) -> Result<(), PortError> {
        if !self.source.hadr_enabled {
            return Err(hadr_disabled());
        }
        if let Some(e) = self.ag_name_taken(ag.name.as_str()) {
            return Err(e);
        }
        if ag.cluster_type_none && !self.source.version.capabilities().cluster_type_none {
            return Err(errors::sql(102, "Incorrect syntax near 'CLUSTER_TYPE'."));
        }
        for db in ag.databases {
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
                        "Database \"{db}\" is not in full recovery mode. The full recovery model \
                         is required for a database to participate in an availability group. Run \
                         ALTER DATABASE [{db}] SET RECOVERY FULL and take a full backup."
                    ),
                ));
            }
            if d.facts.last_full_backup.is_none() {
                return Err(errors::sql(
                    errors::NEEDS_FULL_BACKUP,
                    format!(
                        "Database \"{db}\" might contain bulk logged changes that have not been \
                         backed up, or has never been backed up. Take a full database backup \
                         (not COPY_ONLY) to start a backup chain."
                    ),
                ));
            }
        }
        self.source.ags.insert(
            ag.name.clone(),
            SqlAvailabilityGroup {
                name: ag.name.clone(),
                databases: ag.databases.to_vec(),
                replica: ag.replica.clone(),
                endpoint_url: ag.endpoint_url.to_string(),
                create_any_database: false,
            },
        );
        Ok(())
    }

    /// `ALTER AVAILABILITY GROUP ag GRANT CREATE ANY DATABASE`.
    pub(crate) fn sql_grant_create_any_database(&mut self, ag: &str) -> Result<(), PortError> {
        let Some(a) = self.source.ags.values_mut().find(|a| a.name.as_str() == ag) else {
            return Err(not_found("availability group", ag));
        };
        a.create_any_database = true;
        Ok(())
    }

    /// `CREATE AVAILABILITY GROUP dag WITH (DISTRIBUTED) …`: both replicas start asynchronous.
    pub(crate) fn sql_create_dag(&mut self, dag: &NewDag<'_>) -> Result<(), PortError> {
        if !self.source.hadr_enabled {
            return Err(hadr_disabled());
        }
        if let Some(e) = self.ag_name_taken(dag.name.as_str()) {
            return Err(e);
        }
        if !self.source.ags.contains_key(dag.sql_ag) {
            return Err(not_found("availability group", dag.sql_ag.as_str()));
        }
        let role = if dag.mi_database.is_some() {
            ReplicaRole::Secondary
        } else {
            ReplicaRole::Primary
        };
        self.source.dags.insert(
            dag.name.clone(),
            SqlDistributedAg {
                name: dag.name.clone(),
                sql_ag: dag.sql_ag.clone(),
                mi_ag: dag.mi_ag.clone(),
                sql_listener_url: dag.sql_listener_url.to_string(),
                mi_fqdn: dag.mi_fqdn.clone(),
                sql_mode: AvailabilityMode::AsynchronousCommit,
                mi_mode: AvailabilityMode::AsynchronousCommit,
                role,
                session_timeout_s: dag.session_timeout_s,
            },
        );
        Ok(())
    }

    /// `ALTER AVAILABILITY GROUP dag MODIFY AVAILABILITY GROUP ON N'ag' WITH
    /// (AVAILABILITY_MODE = …), …`: each named replica's mode. All or nothing.
    pub(crate) fn sql_set_dag_modes(
        &mut self,
        dag: &str,
        modes: &[(&str, AvailabilityMode)],
    ) -> Result<(), PortError> {
        let Some(d) = self
            .source
            .dags
            .values_mut()
            .find(|d| d.name.as_str() == dag)
        else {
            return Err(not_found("availability group", dag));
        };
        if let Some((ag, _)) = modes
            .iter()
            .find(|(ag, _)| *ag != d.sql_ag.as_str() && *ag != d.mi_ag.as_str())
        {
            return Err(not_found("availability group", ag));
        }
        for (ag, mode) in modes {
            if *ag == d.sql_ag.as_str() {
                d.sql_mode = *mode;
            }
            if *ag == d.mi_ag.as_str() {
                d.mi_mode = *mode;
            }
        }
        Ok(())
    }

    /// `ALTER AVAILABILITY GROUP dag FORCE_FAILOVER_ALLOW_DATA_LOSS` (nothing to do when SQL
    /// Server is already the primary).
    pub(crate) fn sql_force_failover(&mut self, dag: &LinkName) -> Result<(), PortError> {
        let Some(d) = self.source.dags.get(dag) else {
            return Err(not_found("availability group", dag.as_str()));
        };
        if d.role == ReplicaRole::Primary {
            return Ok(());
        }
        if !self.can_become_primary(dag, Side::SqlServer) {
            return Err(errors::sql(
                errors::FAILOVER_REFUSED,
                format!(
                    "The availability replica for '{dag}' on this instance cannot become the \
                     primary replica: a database is still seeding, restoring or has not joined. \
                     Never force failover while a secondary database is INITIALIZING or \
                     REVERTING."
                ),
            ));
        }
        self.force_primary(dag, Side::SqlServer);
        Ok(())
    }

    /// `ALTER AVAILABILITY GROUP dag SET (ROLE = SECONDARY)`.
    pub(crate) fn sql_set_role_secondary(&mut self, dag: &LinkName) -> Result<(), PortError> {
        if !self.source.dags.contains_key(dag) {
            return Err(not_found("availability group", dag.as_str()));
        }
        self.demote_sql_server(dag);
        Ok(())
    }

    /// `DROP AVAILABILITY GROUP name`: the distributed one of that name, else the ordinary one.
    pub(crate) fn sql_drop_availability_group(&mut self, name: &str) -> Result<(), PortError> {
        if let Some(dag) = self
            .source
            .dags
            .keys()
            .find(|d| d.as_str() == name)
            .cloned()
        {
            self.drop_dag(&dag);
            return Ok(());
        }
        let Some(ag) = self.source.ags.keys().find(|a| a.as_str() == name).cloned() else {
            return Err(not_found("availability group", name));
        };
        if let Some(d) = self.source.dags.values().find(|d| d.sql_ag == ag) {
            return Err(errors::sql(
                errors::AG_IN_USE_BY_DAG,
                format!(
                    "Cannot drop availability group '{ag}': it is a member of the distributed \
                     availability group '{}'. Drop that first.",
                    d.name
                ),
            ));
        }
        self.source.ags.remove(&ag);
        Ok(())
    }

    fn drop_dag(&mut self, dag: &LinkName) {
        let Some(d) = self.source.dags.get(dag).cloned() else {
            return;
        };
        let dbs = self
            .source
            .ags
            .get(&d.sql_ag)
            .map(|a| a.databases.clone())
            .unwrap_or_default();
        if d.role == ReplicaRole::Primary && self.instance.links.contains_key(dag) {
            // SQL Server leaves the link while it is primary: the instance keeps the link's
            // copy, and what SQL Server holds beyond it never reaches it.
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
    }
}
