//! Topologies the simulator can build, and the Tailspin lab.
//!
//! [`SimTopology`] describes a SQL Server instance, its databases and a managed instance with the
//! facts the assessment and the link depend on. [`Lab::tailspin`] builds the reference scenario:
//! TailspinSql (SQL Server 2022 CU13) with ToyStore (ready) and Customer360 (not ready), and the
//! General Purpose instance `tailspin-mi` with the SQL Server 2022 update policy.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::lifecycle::{
    FailoverMode, LinkSpec, MachineOptions, SeedingMode, Side, SourceSpec, TargetSpec,
};
use crate::names::{
    AgName, CertificateName, DatabaseName, EndpointHost, EndpointName, InstanceId, LinkMode,
    LinkName, MiFqdn, NameError, NameRule, ServerName, SqlVersion, TcpPort, UpdatePolicy,
};
use crate::time::{Date, Timestamp};

use super::{Sim, SimConfig};

pub use crate::assess::RecoveryModel;
use crate::assess::{DatabaseFacts, Edition, HostOs, HostPlatform, InstanceFacts, ServiceTier};

/// One table and its initial row count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableTopology {
    /// Schema-qualified name.
    pub name: String,
    /// Rows at the start.
    pub rows: u64,
}

impl TableTopology {
    /// A table.
    pub fn new(name: &str, rows: u64) -> Self {
        TableTopology {
            name: name.to_string(),
            rows,
        }
    }
}

/// A database and the facts about it that readiness and the link depend on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseTopology {
    /// Name.
    pub name: DatabaseName,
    /// Allocated data size in MB (what seeding copies).
    pub size_mb: u64,
    /// Log size in MB.
    pub log_size_mb: u64,
    /// Recovery model.
    pub recovery_model: RecoveryModel,
    /// Finish time of the last full (non copy-only) backup, if any.
    pub last_full_backup: Option<Timestamp>,
    /// Data files.
    pub data_files: u32,
    /// Log files (more than one blocks the link).
    pub log_files: u32,
    /// Has a FILESTREAM filegroup (blocks the link).
    pub filestream: bool,
    /// Has memory-optimized (In-Memory OLTP) filegroups (Business Critical only).
    pub in_memory_oltp: bool,
    /// Encrypted with TDE.
    pub tde: bool,
    /// Compatibility level.
    pub compatibility_level: u16,
    /// Service Broker enabled.
    pub broker_enabled: bool,
    /// Tables and their initial rows.
    pub tables: Vec<TableTopology>,
    /// The assessment facts this database was built from, if any: what the simulator does not
    /// model (catalog, code, TDE details, replication flags) is reported from here.
    pub facts: Option<DatabaseFacts>,
}

impl DatabaseTopology {
    /// A database that is ready for the link: FULL recovery with a full backup, one data and one
    /// log file, no FILESTREAM, no In-Memory OLTP, no TDE.
    pub fn ready(name: DatabaseName, size_mb: u64, last_full_backup: Timestamp) -> Self {
        DatabaseTopology {
            name,
            size_mb,
            log_size_mb: (size_mb / 4).max(64),
            recovery_model: RecoveryModel::Full,
            last_full_backup: Some(last_full_backup),
            data_files: 1,
            log_files: 1,
            filestream: false,
            in_memory_oltp: false,
            tde: false,
            compatibility_level: 160,
            broker_enabled: false,
            tables: vec![TableTopology::new("dbo.Items", 1000)],
            facts: None,
        }
    }

    /// Size in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.size_mb.saturating_mul(1024 * 1024)
    }
}

/// The SQL Server instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceTopology {
    /// `@@SERVERNAME`.
    pub server: ServerName,
    /// `SERVERPROPERTY('ProductVersion')`.
    pub version: SqlVersion,
    /// `SERVERPROPERTY('Edition')`.
    pub edition: Edition,
    /// Host operating system.
    pub host: HostOs,
    /// Server collation.
    pub collation: String,
    /// `SERVERPROPERTY('IsHadrEnabled')`.
    pub hadr_enabled: bool,
    /// Global trace flags on.
    pub trace_flags: Vec<u32>,
    /// A database master key exists in `master`.
    pub master_key: bool,
    /// The address the instance reaches the mirroring endpoint on.
    pub endpoint_host: EndpointHost,
    /// CPU cores.
    pub cores: u32,
    /// Memory in MB.
    pub memory_mb: u64,
    /// `max server memory (MB)`.
    pub max_server_memory_mb: u64,
    /// User databases.
    pub databases: Vec<DatabaseTopology>,
    /// The assessment facts this instance was built from, if any: what the simulator does not
    /// model (Agent job steps, Windows logins, linked servers) is reported from here.
    pub facts: Option<InstanceFacts>,
}

/// The managed instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceTopology {
    /// ARM resource id.
    pub id: InstanceId,
    /// VNet-local FQDN.
    pub fqdn: MiFqdn,
    /// Service tier.
    pub tier: ServiceTier,
    /// Hardware family, e.g. `Gen5`.
    pub hardware: Option<String>,
    /// vCores.
    pub vcores: u32,
    /// Reserved storage in GB.
    pub storage_gb: u32,
    /// Update policy (`databaseFormat`).
    pub update_policy: UpdatePolicy,
    /// Collation.
    pub collation: String,
    /// Member of a failover group (a linked instance cannot be).
    pub in_failover_group: bool,
    /// Databases already on the instance (for links where it is the initial primary).
    pub databases: Vec<DatabaseTopology>,
}

/// A whole scenario: one SQL Server and one managed instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimTopology {
    /// SQL Server.
    pub source: SourceTopology,
    /// The managed instance.
    pub instance: InstanceTopology,
}

impl SimTopology {
    /// The source database named `name`.
    pub fn source_database(&self, name: &DatabaseName) -> Option<&DatabaseTopology> {
        self.source.databases.iter().find(|d| &d.name == name)
    }
}

/// The lab: a simulated world and the link spec for its ready database.
#[derive(Debug, Clone)]
pub struct Lab {
    /// The world.
    pub sim: Sim,
    /// What the world was built from.
    pub topology: SimTopology,
    /// The database the spec links (ToyStore in the Tailspin lab).
    pub database: DatabaseName,
    /// The link spec for that database (two-way where allowed, SQL Server initial primary).
    pub spec: LinkSpec,
}

impl Lab {
    /// The ready database of the Tailspin lab.
    pub const TOYSTORE: &'static str = "ToyStore";
    /// The not-ready database of the Tailspin lab.
    pub const CUSTOMER360: &'static str = "Customer360";

    /// The Tailspin lab with the default configuration and `seed`.
    ///
    /// Fails only if a name in the lab were invalid (a unit test shows none is).
    pub fn tailspin(seed: u64) -> Result<Lab, NameError> {
        Lab::tailspin_with(SimConfig::with_seed(seed))
    }

    /// The Tailspin lab with a configuration.
    pub fn tailspin_with(config: SimConfig) -> Result<Lab, NameError> {
        let topology = Lab::tailspin_topology(config.start)?;
        let database = DatabaseName::new(Lab::TOYSTORE)?;
        Lab::from_topology(topology, config, &database)
    }

    /// A world built from any topology (e.g. one mapped from a real assessment), to rehearse the
    /// migration of `database` of that estate.
    pub fn from_topology(
        topology: SimTopology,
        config: SimConfig,
        database: &DatabaseName,
    ) -> Result<Lab, NameError> {
        // Two databases of one name: which one the world and the link use would depend on
        // their order.
        let mut seen = std::collections::HashSet::new();
        for d in &topology.source.databases {
            if !seen.insert(d.name.as_str().to_lowercase()) {
                return Err(NameError::new_public(
                    "DatabaseName",
                    d.name.as_str(),
                    NameRule::Duplicate {
                        within: "the SQL Server instance",
                    },
                ));
            }
        }
        // A link for a database the world does not hold would only fail once the session runs.
        if topology.source_database(database).is_none() {
            return Err(NameError::new_public(
                "DatabaseName",
                database.as_str(),
                NameRule::UnknownValue {
                    accepted: "the SQL Server databases of the topology (or of the facts it was \
                               built from); name one of them",
                },
            ));
        }
        let spec = Lab::link_spec(&topology, database, config.start)?;
        let sim = Sim::new(&topology, config);
        Ok(Lab {
            sim,
            topology,
            database: database.clone(),
            spec,
        })
    }

    /// The Tailspin topology; `now` anchors backup and certificate dates.
    pub fn tailspin_topology(now: Timestamp) -> Result<SimTopology, NameError> {
        let day = Duration::from_secs(24 * 3600);
        let yesterday = Timestamp::from_millis(
            now.as_millis()
                .saturating_sub(u64::try_from(day.as_millis()).unwrap_or(0)),
        );
        let toystore = DatabaseTopology {
            tables: vec![
                TableTopology::new("dbo.Products", 4_800),
                TableTopology::new("dbo.Customers", 52_000),
                TableTopology::new("dbo.Orders", 180_000),
                TableTopology::new("dbo.OrderLines", 610_000),
            ],
            compatibility_level: 160,
            ..DatabaseTopology::ready(DatabaseName::new(Lab::TOYSTORE)?, 2048, yesterday)
        };
        let customer360 = DatabaseTopology {
            name: DatabaseName::new(Lab::CUSTOMER360)?,
            size_mb: 5 * 1024,
            log_size_mb: 2048,
            recovery_model: RecoveryModel::Simple,
            last_full_backup: None,
            data_files: 2,
            log_files: 2,
            filestream: true,
            in_memory_oltp: false,
            tde: false,
            compatibility_level: 150,
            broker_enabled: true,
            tables: vec![
                TableTopology::new("dbo.Profiles", 240_000),
                TableTopology::new("dbo.Interactions", 900_000),
                TableTopology::new("dbo.Documents", 35_000),
            ],
            facts: None,
        };
        Ok(SimTopology {
            source: SourceTopology {
                server: ServerName::new("TailspinSql")?,
                version: SqlVersion::new(16, 0, 4125, 3),
                edition: Edition::Enterprise,
                host: HostOs {
                    platform: HostPlatform::Windows,
                    description: "Windows Server 2022 Datacenter 10.0".to_string(),
                },
                collation: "SQL_Latin1_General_CP1_CI_AS".to_string(),
                hadr_enabled: true,
                trace_flags: vec![1800, 9567],
                master_key: false,
                endpoint_host: EndpointHost::new("10.0.1.4")?,
                cores: 8,
                memory_mb: 32 * 1024,
                max_server_memory_mb: 28 * 1024,
                databases: vec![toystore, customer360],
                facts: None,
            },
            instance: InstanceTopology {
                id: InstanceId::from_parts(
                    "5f1c6a2e-8d3b-4c7a-9e10-3b2d4f6a8c01",
                    "rg-tailspin",
                    "tailspin-mi",
                )?,
                fqdn: MiFqdn::new("tailspin-mi.abc123def456.database.windows.net")?,
                tier: ServiceTier::GeneralPurpose,
                hardware: Some("Gen5".to_string()),
                vcores: 8,
                storage_gb: 256,
                update_policy: UpdatePolicy::SqlServer2022,
                collation: "SQL_Latin1_General_CP1_CI_AS".to_string(),
                in_failover_group: false,
                databases: Vec::new(),
            },
        })
    }

    /// A link spec for `database` of `topology`: SQL Server initial primary, two-way when the
    /// version and update policy allow it, automatic seeding, names following the documented
    /// conventions (`AG_<db>`, `DAG_<db>`, `Cert_<server>_endpoint`), a certificate valid for
    /// one year from `now`.
    pub fn link_spec(
        topology: &SimTopology,
        database: &DatabaseName,
        now: Timestamp,
    ) -> Result<LinkSpec, NameError> {
        let src = &topology.source;
        let short_server: String = src
            .server
            .as_str()
            .chars()
            .map(|c| if c == '\\' { '_' } else { c })
            .collect();
        let caps = src.version.capabilities();
        let two_way = caps.failback_allowed_with(topology.instance.update_policy);
        let expiry = Date::from_days_since_epoch(now.date().days_since_epoch() + 365);
        Ok(LinkSpec {
            link: LinkName::new(format!("DAG_{database}"))?,
            mode: LinkMode::SingleDatabase,
            databases: vec![database.clone()],
            initial_primary: Side::SqlServer,
            failover_mode: if two_way {
                FailoverMode::Manual
            } else {
                FailoverMode::None
            },
            seeding_mode: SeedingMode::Automatic,
            source: SourceSpec {
                server: src.server.clone(),
                version: src.version,
                endpoint_host: src.endpoint_host.clone(),
                endpoint_port: TcpPort::MIRRORING_DEFAULT,
                endpoint_name: EndpointName::new("database_mirroring_endpoint")?,
                certificate: CertificateName::new(format!("Cert_{short_server}_endpoint"))?,
                certificate_expiry: expiry,
                ag: AgName::new(format!("AG_{database}"))?,
            },
            target: TargetSpec {
                instance: topology.instance.id.clone(),
                fqdn: topology.instance.fqdn.clone(),
                ag: AgName::new(format!("AG_{database}_MI"))?,
                update_policy: topology.instance.update_policy,
            },
            session_timeout_s: 20,
            options: MachineOptions::default(),
            route: crate::lifecycle::LinkRoute::Direct,
        })
    }
}
