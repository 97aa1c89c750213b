//! Data access: databases, roles and modes on each side, and the link's transport.

use super::*;

impl World {
    // ----- data access ------------------------------------------------------------------------

    /// `database`'s content on `side`, if it exists there.
    pub fn database(&self, side: Side, database: &DatabaseName) -> Option<&DbData> {
        match side {
            Side::SqlServer => self.source.databases.get(database).map(|d| &d.data),
            Side::ManagedInstance => self.instance.databases.get(database).map(|d| &d.data),
        }
    }

    pub(crate) fn database_mut(
        &mut self,
        side: Side,
        database: &DatabaseName,
    ) -> Option<&mut DbData> {
        match side {
            Side::SqlServer => self.source.databases.get_mut(database).map(|d| &mut d.data),
            Side::ManagedInstance => self
                .instance
                .databases
                .get_mut(database)
                .map(|d| &mut d.data),
        }
    }

    pub(super) fn db_state(&self, side: Side, database: &DatabaseName) -> Option<DbState> {
        match side {
            Side::SqlServer => self.source.databases.get(database).map(|d| d.state),
            Side::ManagedInstance => self.instance.databases.get(database).map(|d| d.state),
        }
    }

    /// `side`'s role in `link`, if the link exists there.
    pub fn role(&self, side: Side, link: &LinkName) -> Option<ReplicaRole> {
        match side {
            Side::SqlServer => self.source.dags.get(link).map(|d| d.role),
            Side::ManagedInstance => self.instance.links.get(link).map(|l| l.role),
        }
    }

    /// The side that is the only primary of `link` (none in a split brain or without a link).
    pub fn primary_of(&self, link: &LinkName) -> Option<Side> {
        match (
            self.role(Side::SqlServer, link),
            self.role(Side::ManagedInstance, link),
        ) {
            (Some(ReplicaRole::Primary), Some(ReplicaRole::Secondary)) => Some(Side::SqlServer),
            (Some(ReplicaRole::Secondary), Some(ReplicaRole::Primary)) => {
                Some(Side::ManagedInstance)
            }
            _ => None,
        }
    }

    /// The availability mode `side` has configured for its own replica of `link`: SQL Server's
    /// replica in SQL Server's catalog, the instance's `replicationMode`.
    pub fn mode_of(&self, side: Side, link: &LinkName) -> Option<AvailabilityMode> {
        match side {
            Side::SqlServer => self.source.dags.get(link).map(|d| d.sql_mode),
            Side::ManagedInstance => self.instance.links.get(link).map(|l| l.replication_mode),
        }
    }

    /// Sets the mode of one replica of `link` in SQL Server's catalog alone (`replica` names the
    /// side whose AG it is), as `MODIFY AVAILABILITY GROUP ON` naming one AG would. The instance's
    /// own `replicationMode` is not changed.
    pub fn set_dag_replica_mode(
        &mut self,
        link: &LinkName,
        replica: Side,
        mode: AvailabilityMode,
    ) -> bool {
        let Some(d) = self.source.dags.get_mut(link) else {
            return false;
        };
        match replica {
            Side::SqlServer => d.sql_mode = mode,
            Side::ManagedInstance => d.mi_mode = mode,
        }
        true
    }

    /// Sets `side`'s role in `link` (records an event when it changes).
    pub(crate) fn set_role(&mut self, side: Side, link: &LinkName, role: ReplicaRole) {
        let changed = match side {
            Side::SqlServer => self.source.dags.get_mut(link).map(|d| {
                let c = d.role != role;
                d.role = role;
                c
            }),
            Side::ManagedInstance => self.instance.links.get_mut(link).map(|l| {
                let c = l.role != role;
                l.role = role;
                c
            }),
        };
        if changed == Some(true) {
            self.event(EventKind::RoleChanged {
                link: link.clone(),
                side,
                role,
            });
            if role != ReplicaRole::Primary {
                // The sessions of a demoted primary are ended: commits still waiting for the
                // secondary get an error.
                self.end_held_commits(side, link);
            }
            if side == Side::ManagedInstance {
                let now = self.now;
                for db in self.instance.databases.values_mut() {
                    if db.link.as_ref() == Some(link) {
                        db.primary_since = (role == ReplicaRole::Primary).then_some(now);
                    }
                }
            }
        }
    }

    /// An accepted ARM failover or setRole on `link` is still running.
    pub fn role_change_pending(&self, link: &LinkName) -> bool {
        self.instance.operations.values().any(|o| {
            o.outcome.is_none()
                && matches!(
                    &o.op,
                    InstanceOp::Failover { link: l, .. } | InstanceOp::SetRole { link: l, .. }
                        if l == link
                )
        })
    }

    /// The databases of SQL Server's availability group in `link` (empty without a DAG).
    pub fn source_ag_databases(&self, link: &LinkName) -> Vec<DatabaseName> {
        self.source
            .dags
            .get(link)
            .and_then(|d| self.source.ags.get(&d.sql_ag))
            .map(|ag| ag.databases.clone())
            .unwrap_or_default()
    }

    /// Databases of `link` (the link resource's list, else the SQL Server AG's).
    pub fn link_databases(&self, link: &LinkName) -> Vec<DatabaseName> {
        if let Some(r) = self.replications.get(link) {
            return r.databases.keys().cloned().collect();
        }
        if let Some(l) = self.instance.links.get(link) {
            return l.properties.databases.clone();
        }
        self.source
            .dags
            .get(link)
            .and_then(|d| self.source.ags.get(&d.sql_ag))
            .map(|ag| ag.databases.clone())
            .unwrap_or_default()
    }

    /// Whether the link's transport is up (network, endpoint, certificates and trust).
    pub(crate) fn transport(&self) -> Result<(), LinkFault> {
        if !self.config.network_reachable {
            return Err(LinkFault::new(
                errors::CONNECTION_FAILED,
                "the managed instance cannot reach the SQL Server mirroring endpoint (network \
                 path closed: open TCP 5022 and 11000-11999 in the NSG and firewalls)",
            ));
        }
        if self.network.partitioned_until.is_some() {
            return Err(LinkFault::new(
                errors::CONNECTION_FAILED,
                "connection to the partner replica lost (network partition)",
            ));
        }
        let Some(ep) = self.source.endpoint.as_ref().filter(|e| e.started) else {
            return Err(LinkFault::new(
                errors::CONNECTION_FAILED,
                "no DATABASE_MIRRORING endpoint is started on SQL Server",
            ));
        };
        let Some(cert) = ep
            .certificate
            .as_ref()
            .and_then(|c| self.source.certificates.get(c.as_str()))
        else {
            return Err(LinkFault::new(
                errors::CONNECTION_FAILED,
                "the mirroring endpoint does not use certificate authentication",
            ));
        };
        if cert.expiry.is_some_and(|e| e < self.now.date()) {
            return Err(LinkFault::new(
                errors::CONNECTION_FAILED,
                format!(
                    "connection handshake failed: the endpoint certificate '{}' expired; rotate it \
                     and upload the new public key to the managed instance",
                    cert.name
                ),
            ));
        }
        if !self
            .instance
            .trust_certificates
            .values()
            .any(|blob| blob == &cert.der)
        {
            return Err(LinkFault::new(
                errors::SQL_CERT_NOT_ON_INSTANCE,
                format!(
                    "SQL Server's certificate '{}' is not imported into the managed instance as a \
                     server trust certificate",
                    cert.name
                ),
            ));
        }
        let fqdn = self.instance.fqdn.as_str();
        match self.source.certificates.get(fqdn) {
            Some(c) if c.der == self.instance.endpoint_certificate => {}
            Some(_) => {
                return Err(LinkFault::new(
                    errors::INSTANCE_CERT_NOT_ON_SQL,
                    format!(
                        "the certificate '{fqdn}' on SQL Server is not the managed instance's \
                         current endpoint certificate"
                    ),
                ));
            }
            None => {
                return Err(LinkFault::new(
                    errors::INSTANCE_CERT_NOT_ON_SQL,
                    format!(
                        "the managed instance's endpoint certificate is not imported into SQL \
                         Server as '{fqdn}'"
                    ),
                ));
            }
        }
        if !self.source.root_ca_trust {
            return Err(LinkFault::new(
                errors::INSTANCE_CERT_NOT_ON_SQL,
                "SQL Server does not trust the Azure root CAs for *.database.windows.net \
                 (sp_certificate_add_issuer)",
            ));
        }
        Ok(())
    }
}
