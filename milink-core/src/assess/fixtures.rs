//! The Tailspin lab as fixtures: server TailspinSql (SQL Server 2022 CU13 Enterprise on Windows
//! Server) with ToyStore (ready) and Customer360 (not ready), the General Purpose target
//! `tailspin-mi`, and [`RecordedSource`], a [`FactSource`] that answers the readiness probes
//! with recorded result sets of the same lab and counts what it was sent.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use crate::assess::facts::*;
use crate::assess::gather::{Cell, FactSource, Rows, SourceError};
use crate::assess::network::{NetworkProbe, ProbeKind, ProbeOutcome};
use crate::assess::scan::{Marker, MarkerHit};
use crate::assess::{AssessOptions, ReadinessReport, assess};
use crate::names::{DatabaseName, MiFqdn, ServerName, SqlVersion, UpdatePolicy};
use crate::time::{Date, Timestamp};
use crate::tsql::{Batch, readiness};

/// The target managed instance's FQDN.
pub const MI_FQDN: &str = "tailspin-mi.a1b2c3d4e5f6.database.windows.net";
/// SQL Server's address in the lab's on-premises network.
pub const SQL_SERVER_ADDRESS: &str = "10.10.1.4";
/// The managed instance's subnet.
pub const MI_SUBNET: &str = "10.20.0.0/24";
/// The managed instance's `DATABASE_MIRRORING` endpoint certificate, as ARM returns it (a
/// stand-in DER prefix: only its bytes are compared).
pub const MI_ENDPOINT_CERTIFICATE: &str = "3082030A308201F2A00302010202101A2B3C4D";

/// The lab's collation (SQL Server and managed instance).
pub const COLLATION: &str = "SQL_Latin1_General_CP1_CI_AS";

/// 2026-11-26T12:00:00Z, the lab's "now".
pub fn lab_now() -> Timestamp {
    Date::new(2026, 11, 26)
        .map(|d| d.start())
        .unwrap_or(Timestamp::EPOCH)
        .plus(Duration::from_secs(12 * 3600))
}

fn hours_before(t: Timestamp, hours: u64) -> Timestamp {
    Timestamp::from_millis(t.as_millis().saturating_sub(hours * 3_600_000))
}

fn lit<T, E>(value: Result<T, E>) -> T {
    match value {
        Ok(v) => v,
        Err(_) => unreachable!("fixture literals are valid names"),
    }
}

fn name(s: &str) -> DatabaseName {
    lit(DatabaseName::new(s))
}

/// The lab: facts, target and options.
#[derive(Debug, Clone, PartialEq)]
pub struct TailspinLab {
    /// TailspinSql.
    pub instance: InstanceFacts,
    /// ToyStore and Customer360.
    pub databases: Vec<DatabaseFacts>,
    /// tailspin-mi.
    pub target: TargetFacts,
    /// At [`lab_now`], failback intended, the network probes reachable.
    pub options: AssessOptions,
}

impl TailspinLab {
    /// Assesses the lab.
    pub fn assess(&self) -> ReadinessReport {
        assess(
            &self.instance,
            &self.databases,
            Some(&self.target),
            &self.options,
        )
    }

    /// A database by name.
    pub fn database(&self, db: &str) -> Option<&DatabaseFacts> {
        self.databases.iter().find(|d| d.name.as_str() == db)
    }

    /// A database by name, to change it.
    pub fn database_mut(&mut self, db: &str) -> Option<&mut DatabaseFacts> {
        self.databases.iter_mut().find(|d| d.name.as_str() == db)
    }
}

/// TailspinSql's facts.
pub fn tailspin_instance() -> InstanceFacts {
    InstanceFacts {
        server_name: lit(ServerName::new("TAILSPINSQL")),
        version: SqlVersion::new(16, 0, 4125, 3),
        update_level: Some("CU13".into()),
        edition: Edition::Enterprise,
        host: HostOs {
            platform: HostPlatform::Windows,
            description: "Windows Server 2022 Datacenter 10.0".into(),
        },
        hadr_enabled: true,
        trace_flags: vec![
            TraceFlag {
                flag: 1800,
                enabled: true,
            },
            TraceFlag {
                flag: 9567,
                enabled: true,
            },
        ],
        master_key_present: false,
        has_certificate_add_issuer: true,
        endpoints: Vec::new(),
        certificates: Vec::new(),
        collation: COLLATION.into(),
        cpu_count: 8,
        physical_memory_mb: 32_768,
        max_server_memory_mb: 28_672,
        job_steps: vec![
            JobStep {
                job: "DatabaseBackup - USER_DATABASES - FULL".into(),
                job_enabled: true,
                step_id: 1,
                step: "Back up user databases".into(),
                subsystem: "TSQL".into(),
                markers: Vec::new(),
            },
            JobStep {
                job: "syspolicy_purge_history".into(),
                job_enabled: true,
                step_id: 1,
                step: "Verify that automation is enabled.".into(),
                subsystem: "TSQL".into(),
                markers: Vec::new(),
            },
            JobStep {
                job: "syspolicy_purge_history".into(),
                job_enabled: true,
                step_id: 3,
                step: "Erase Phantom System Health Records.".into(),
                subsystem: "PowerShell".into(),
                markers: Vec::new(),
            },
        ],
        windows_logins: vec![
            WindowsLogin {
                name: "NT AUTHORITY\\SYSTEM".into(),
                is_group: false,
                is_disabled: false,
            },
            WindowsLogin {
                name: "NT SERVICE\\SQLSERVERAGENT".into(),
                is_group: false,
                is_disabled: false,
            },
            WindowsLogin {
                name: "TAILSPIN\\labadmin".into(),
                is_group: false,
                is_disabled: false,
            },
        ],
        linked_servers: Vec::new(),
        is_sysadmin: Some(true),
        instance_name: None,
        local_address: Some(SQL_SERVER_ADDRESS.into()),
        cluster: Some(ClusterFacts {
            name: None,
            system_permissions: vec!["CONNECT SQL".into()],
        }),
        startup_trace_flags: Some(vec![1800, 9567]),
        multi_database: Some(MultiDatabaseFacts {
            procedure_present: false,
            enabled: None,
        }),
    }
}

/// ToyStore: FULL recovery, a full backup six hours ago, one log file. Ready.
pub fn toy_store() -> DatabaseFacts {
    DatabaseFacts {
        name: name("ToyStore"),
        database_id: 5,
        state: DatabaseState::Online,
        recovery_model: RecoveryModel::Full,
        compatibility_level: 160,
        collation: Some(COLLATION.into()),
        data_size_mb: 2_048,
        log_size_mb: 512,
        data_files: 1,
        log_files: vec!["ToyStore_log".into()],
        last_full_backup: Some(hours_before(lab_now(), 6)),
        last_log_backup: None,
        log_chain_established: true,
        tde: None,
        adr_enabled: Some(false),
        broker_enabled: true,
        cdc_enabled: false,
        replication: ReplicationFlags::default(),
        ag: None,
        catalog: Some(CatalogFacts {
            windows_users: Some(Vec::new()),
            ..CatalogFacts::default()
        }),
        code: Some(CodeFacts {
            modules: 3,
            encrypted_modules: 0,
            encrypted: Vec::new(),
            hits: Vec::new(),
        }),
        last_full_backup_checksum: Some(true),
        distributed_ag: None,
    }
}

/// Customer360: SIMPLE recovery and no full backup, two log files, FILESTREAM with a
/// FileTable, a procedure that calls xp_cmdshell, and two Windows users (one orphaned). Not
/// ready.
pub fn customer_360() -> DatabaseFacts {
    DatabaseFacts {
        name: name("Customer360"),
        database_id: 6,
        state: DatabaseState::Online,
        recovery_model: RecoveryModel::Simple,
        compatibility_level: 150,
        collation: Some(COLLATION.into()),
        data_size_mb: 10_240,
        log_size_mb: 2_048,
        data_files: 1,
        log_files: vec!["Customer360_log".into(), "Customer360_log2".into()],
        last_full_backup: None,
        last_log_backup: None,
        log_chain_established: false,
        tde: None,
        adr_enabled: Some(false),
        broker_enabled: true,
        cdc_enabled: false,
        replication: ReplicationFlags::default(),
        ag: None,
        catalog: Some(CatalogFacts {
            filestream_filegroups: vec!["Customer360_Documents".into()],
            filestream_files: 1,
            filetables: 1,
            windows_users: Some(vec![
                WindowsUser {
                    name: "TAILSPIN\\labadmin".into(),
                    is_group: false,
                    login: Some("TAILSPIN\\labadmin".into()),
                },
                WindowsUser {
                    name: "TAILSPIN\\crm-batch".into(),
                    is_group: false,
                    login: None,
                },
            ]),
            ..CatalogFacts::default()
        }),
        code: Some(CodeFacts {
            modules: 2,
            encrypted_modules: 0,
            encrypted: Vec::new(),
            hits: vec![MarkerHit {
                marker: Marker::XpCmdshell,
                object: "dbo.ExportCustomers (SQL_STORED_PROCEDURE)".into(),
                detail: None,
            }],
        }),
        last_full_backup_checksum: None,
        distributed_ag: None,
    }
}

/// tailspin-mi: General Purpose, Gen5, 8 vCores, 256 GB, SQL Server 2022 update policy, no
/// databases yet, not in a failover group; its TDE protector is a customer-managed key (the
/// lab intends failback), the caller is a SQL Managed Instance Contributor, no server trust
/// certificate and no link yet.
pub fn tailspin_target() -> TargetFacts {
    TargetFacts {
        name: "tailspin-mi".into(),
        fqdn: lit(MiFqdn::new(MI_FQDN)),
        tier: ServiceTier::GeneralPurpose,
        hardware: Some("Gen5".into()),
        vcores: 8,
        storage_max_gb: 256,
        storage_used_gb: Some(0),
        databases: Some(Vec::new()),
        update_policy: Some(UpdatePolicy::SqlServer2022),
        in_failover_group: Some(false),
        collation: Some(COLLATION.into()),
        tde_certificate_thumbprints: Some(Vec::new()),
        caller_permissions: Some(vec![ArmPermission {
            actions: vec![
                "Microsoft.Sql/managedInstances/*".into(),
                "Microsoft.Sql/locations/*".into(),
                "Microsoft.Authorization/*/read".into(),
            ],
            not_actions: Vec::new(),
        }]),
        tde_protector: Some(ProtectorKind::CustomerManaged),
        subnet_id: Some(
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/tailspin/providers/Microsoft.Network/virtualNetworks/tailspin-vnet/subnets/mi".into(),
        ),
        subnet_prefixes: Some(vec![MI_SUBNET.into()]),
        server_trust_certificates: Some(Vec::new()),
        endpoint_certificate: Some(MI_ENDPOINT_CERTIFICATE.into()),
        links: Some(Vec::new()),
    }
}

/// The lab's network probes: both managed instance ports reachable.
pub fn tailspin_network() -> Vec<NetworkProbe> {
    vec![
        NetworkProbe {
            kind: ProbeKind::MiEndpoint,
            host: MI_FQDN.into(),
            port: 5022,
            outcome: ProbeOutcome::Reachable,
            elapsed_ms: 21,
        },
        NetworkProbe {
            kind: ProbeKind::MiHadrPort,
            host: "dc1a2b3c4d5e.tr1.a1b2c3d4e5f6.database.windows.net".into(),
            port: 11002,
            outcome: ProbeOutcome::Reachable,
            elapsed_ms: 19,
        },
    ]
}

/// The whole lab.
pub fn tailspin() -> TailspinLab {
    TailspinLab {
        instance: tailspin_instance(),
        databases: vec![toy_store(), customer_360()],
        target: tailspin_target(),
        options: AssessOptions {
            failback: true,
            network: tailspin_network(),
            ..AssessOptions::at(lab_now())
        },
    }
}

// ------------------------------------------------------------------ recorded result sets

struct RecordedDb {
    id: i64,
    name: String,
    recovery: &'static str,
    compat: i64,
    data_mb: i64,
    logs: Vec<(String, i64)>,
    last_full: Option<Timestamp>,
    chain: bool,
    filestream: Option<(&'static str, i64)>,
    /// Windows users: name, login (`None` = orphaned).
    windows_users: Vec<(&'static str, Option<&'static str>)>,
    modules: Vec<(
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
    )>,
}

fn lab_recorded_databases(n: usize) -> Vec<RecordedDb> {
    let now = lab_now();
    let mut dbs = vec![
        RecordedDb {
            id: 5,
            name: "ToyStore".into(),
            recovery: "FULL",
            compat: 160,
            data_mb: 2_048,
            logs: vec![("ToyStore_log".into(), 512)],
            last_full: Some(hours_before(now, 6)),
            chain: true,
            filestream: None,
            windows_users: Vec::new(),
            modules: vec![
                (
                    "dbo",
                    "GetToys",
                    "SQL_STORED_PROCEDURE",
                    Some(
                        "CREATE PROCEDURE dbo.GetToys AS\n-- never: EXEC xp_cmdshell 'dir'\nSELECT ToyId, Name FROM dbo.Toys WHERE Discontinued = 0;",
                    ),
                ),
                (
                    "dbo",
                    "vActiveToys",
                    "VIEW",
                    Some(
                        "CREATE VIEW dbo.vActiveToys AS SELECT * FROM dbo.Toys WHERE Discontinued = 0",
                    ),
                ),
                (
                    "dbo",
                    "trgToysAudit",
                    "SQL_TRIGGER",
                    Some(
                        "CREATE TRIGGER dbo.trgToysAudit ON dbo.Toys AFTER UPDATE AS INSERT dbo.ToyAudit (ToyId) SELECT ToyId FROM inserted; RAISERROR('audited', 10, 1);",
                    ),
                ),
            ],
        },
        RecordedDb {
            id: 6,
            name: "Customer360".into(),
            recovery: "SIMPLE",
            compat: 150,
            data_mb: 10_240,
            logs: vec![
                ("Customer360_log".into(), 1_024),
                ("Customer360_log2".into(), 1_024),
            ],
            last_full: None,
            chain: false,
            filestream: Some(("Customer360_Documents", 1)),
            windows_users: vec![
                ("TAILSPIN\\labadmin", Some("TAILSPIN\\labadmin")),
                ("TAILSPIN\\crm-batch", None),
            ],
            modules: vec![
                (
                    "dbo",
                    "ExportCustomers",
                    "SQL_STORED_PROCEDURE",
                    Some(
                        "CREATE PROCEDURE dbo.ExportCustomers AS\nBEGIN\n  DECLARE @cmd nvarchar(4000) = N'bcp Customer360.dbo.Customers out C:\\export\\c.dat -T -n';\n  EXEC master..xp_cmdshell @cmd;\nEND",
                    ),
                ),
                (
                    "dbo",
                    "GetCustomer",
                    "SQL_STORED_PROCEDURE",
                    Some(
                        "CREATE PROCEDURE dbo.GetCustomer @id int AS SELECT * FROM dbo.Customers WHERE CustomerId = @id",
                    ),
                ),
            ],
        },
    ];
    dbs.truncate(n);
    let mut id = 7;
    while dbs.len() < n {
        dbs.push(RecordedDb {
            id,
            name: format!("Db{id:04}"),
            recovery: "FULL",
            compat: 160,
            data_mb: 64,
            logs: vec![(format!("Db{id:04}_log"), 16)],
            last_full: Some(hours_before(now, 20)),
            chain: true,
            filestream: None,
            windows_users: Vec::new(),
            modules: Vec::new(),
        });
        id += 1;
    }
    dbs
}

fn rows(columns: &[&str], data: Vec<Vec<Cell>>) -> Rows {
    let mut r = Rows::new(columns.iter().copied());
    for row in data {
        // Rows built here always match their columns.
        let _ = r.push(row);
    }
    r
}

fn ms(t: Option<Timestamp>) -> Cell {
    t.map_or(Cell::Null, |t| {
        Cell::Int(i64::try_from(t.as_millis()).unwrap_or(i64::MAX))
    })
}

fn recorded_answers(dbs: &[RecordedDb]) -> BTreeMap<&'static str, Rows> {
    let mut a = BTreeMap::new();
    a.insert(
        readiness::INSTANCE_PROPERTIES,
        rows(
            &[
                "product_version", "product_update_level", "edition", "is_hadr_enabled",
                "collation", "server_name", "version_text", "cpu_count", "physical_memory_mb",
                "max_server_memory_mb", "master_key_present", "has_certificate_add_issuer",
                "is_sysadmin", "instance_name", "local_net_address", "cluster_name",
                "system_account_permissions", "startup_trace_flags", "has_multidb_milink",
            ],
            vec![vec![
                "16.0.4125.3".into(),
                "CU13".into(),
                "Enterprise Edition: Core-based Licensing (64-bit)".into(),
                Cell::Int(1),
                COLLATION.into(),
                "TAILSPINSQL".into(),
                "Microsoft SQL Server 2022 (RTM-CU13) (KB5036432) - 16.0.4125.3 (X64) \n\tMay  1 2024 15:05:56 \n\tCopyright (C) 2022 Microsoft Corporation\n\tEnterprise Edition: Core-based Licensing (64-bit) on Windows Server 2022 Datacenter 10.0 <X64> (Build 20348: ) (Hypervisor)\n".into(),
                Cell::Int(8),
                Cell::Int(32_768),
                Cell::Int(28_672),
                Cell::Bool(false),
                Cell::Bool(true),
                Cell::Int(1),
                Cell::Null,
                SQL_SERVER_ADDRESS.into(),
                Cell::Null,
                Cell::Int(2),
                Cell::Int(3),
                Cell::Bool(false),
            ]],
        ),
    );
    a.insert(
        readiness::TRACE_FLAGS,
        rows(
            &["trace_flag", "is_enabled"],
            vec![
                vec![Cell::Int(1800), Cell::Bool(true)],
                vec![Cell::Int(9567), Cell::Bool(true)],
            ],
        ),
    );
    a.insert(
        readiness::MIRRORING_ENDPOINTS,
        rows(
            &[
                "name",
                "state_desc",
                "role_desc",
                "connection_auth_desc",
                "is_encryption_enabled",
                "encryption_algorithm_desc",
                "certificate_name",
                "port",
                "ip_address",
            ],
            Vec::new(),
        ),
    );
    a.insert(
        readiness::CERTIFICATES,
        rows(
            &[
                "name",
                "subject",
                "issuer_name",
                "pvt_key_encryption_type_desc",
                "expiry_ms",
                "thumbprint",
                "encoded",
            ],
            Vec::new(),
        ),
    );
    a.insert(
        readiness::AGENT_JOB_STEPS,
        rows(
            &["job_name", "job_enabled", "step_id", "step_name", "subsystem", "command"],
            vec![
                vec![
                    "DatabaseBackup - USER_DATABASES - FULL".into(),
                    Cell::Bool(true),
                    Cell::Int(1),
                    "Back up user databases".into(),
                    "TSQL".into(),
                    "EXECUTE dbo.DatabaseBackup @Databases = 'USER_DATABASES', @BackupType = 'FULL', @CheckSum = 'Y'".into(),
                ],
                vec![
                    "syspolicy_purge_history".into(),
                    Cell::Bool(true),
                    Cell::Int(1),
                    "Verify that automation is enabled.".into(),
                    "TSQL".into(),
                    "IF (msdb.dbo.fn_syspolicy_is_automation_enabled() != 1)\nBEGIN\n    RAISERROR(34022, 16, 1)\nEND".into(),
                ],
                vec![
                    "syspolicy_purge_history".into(),
                    Cell::Bool(true),
                    Cell::Int(3),
                    "Erase Phantom System Health Records.".into(),
                    "PowerShell".into(),
                    "if ('$(ESCAPE_SQUOTE(INST))' -eq 'MSSQLSERVER') {$a = '\\DEFAULT'} ELSE {$a = ''};".into(),
                ],
            ],
        ),
    );
    a.insert(
        readiness::WINDOWS_LOGINS,
        rows(
            &["name", "type_desc", "is_disabled"],
            [
                "NT AUTHORITY\\SYSTEM",
                "NT SERVICE\\SQLSERVERAGENT",
                "TAILSPIN\\labadmin",
            ]
            .iter()
            .map(|n| vec![(*n).into(), "WINDOWS_LOGIN".into(), Cell::Bool(false)])
            .collect(),
        ),
    );
    a.insert(
        readiness::LINKED_SERVERS,
        rows(&["name", "product", "provider", "data_source"], Vec::new()),
    );
    a.insert(
        readiness::DATABASES,
        rows(
            &[
                "database_id",
                "name",
                "state_desc",
                "recovery_model_desc",
                "compatibility_level",
                "collation_name",
                "is_broker_enabled",
                "is_cdc_enabled",
                "is_published",
                "is_subscribed",
                "is_merge_published",
                "is_distributor",
                "is_encrypted",
                "is_accelerated_database_recovery_on",
                "log_chain_established",
                "last_full_backup_ms",
                "last_log_backup_ms",
                "ag_name",
                "ag_database_count",
                "tde_encryptor_type",
                "tde_certificate",
                "tde_thumbprint",
                "last_full_backup_checksum",
                "distributed_ag_name",
            ],
            dbs.iter()
                .map(|d| {
                    vec![
                        Cell::Int(d.id),
                        d.name.clone().into(),
                        "ONLINE".into(),
                        d.recovery.into(),
                        Cell::Int(d.compat),
                        COLLATION.into(),
                        Cell::Bool(true),
                        Cell::Bool(false),
                        Cell::Bool(false),
                        Cell::Bool(false),
                        Cell::Bool(false),
                        Cell::Bool(false),
                        Cell::Bool(false),
                        Cell::Bool(false),
                        Cell::Bool(d.chain),
                        ms(d.last_full),
                        Cell::Null,
                        Cell::Null,
                        Cell::Null,
                        Cell::Null,
                        Cell::Null,
                        Cell::Null,
                        d.last_full.map_or(Cell::Null, |_| Cell::Bool(true)),
                        Cell::Null,
                    ]
                })
                .collect(),
        ),
    );
    let mut files = Vec::new();
    for d in dbs {
        files.push(vec![
            Cell::Int(d.id),
            Cell::Int(1),
            "ROWS".into(),
            d.name.clone().into(),
            Cell::Int(d.data_mb),
            Cell::Int(1),
        ]);
        for (i, (log, mb)) in d.logs.iter().enumerate() {
            files.push(vec![
                Cell::Int(d.id),
                Cell::Int(2 + i64::try_from(i).unwrap_or(0)),
                "LOG".into(),
                log.clone().into(),
                Cell::Int(*mb),
                Cell::Int(0),
            ]);
        }
        if let Some((fg, _)) = d.filestream {
            files.push(vec![
                Cell::Int(d.id),
                Cell::Int(65_537),
                "FILESTREAM".into(),
                format!("{fg}_container").into(),
                Cell::Int(0),
                Cell::Int(2),
            ]);
        }
    }
    a.insert(
        readiness::DATABASE_FILES,
        rows(
            &[
                "database_id",
                "file_id",
                "type_desc",
                "logical_name",
                "size_mb",
                "data_space_id",
            ],
            files,
        ),
    );
    let mut catalog = Vec::new();
    for d in dbs {
        let item = |item: &str, name: Option<&str>, detail: Option<&str>, value: Option<i64>| {
            vec![
                Cell::Int(d.id),
                item.into(),
                name.into(),
                detail.into(),
                value.map_or(Cell::Null, Cell::Int),
            ]
        };
        if let Some((fg, _)) = d.filestream {
            catalog.push(item("filegroup", Some(fg), Some("FD"), Some(2)));
        }
        let filetables = d.filestream.map_or(0, |(_, n)| n);
        catalog.push(item("filetables", None, None, Some(filetables)));
        catalog.push(item("memory_optimized_tables", None, None, Some(0)));
        catalog.push(item("aliased_users", None, None, Some(0)));
        for (user, login) in &d.windows_users {
            catalog.push(item("windows_user", Some(user), *login, None));
        }
        catalog.push(item("catalog_read", None, None, None));
    }
    a.insert(
        readiness::DATABASE_CATALOG,
        rows(&["database_id", "item", "name", "detail", "value"], catalog),
    );
    a
}

/// A [`FactSource`] answering the readiness probes with recorded result sets of the lab, and
/// counting the batches it was sent.
#[derive(Debug)]
pub struct RecordedSource {
    answers: BTreeMap<&'static str, Rows>,
    modules: BTreeMap<String, Rows>,
    sent: Mutex<Vec<&'static str>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    fail: Option<(&'static str, SourceError)>,
}

impl RecordedSource {
    /// The lab: ToyStore and Customer360.
    pub fn tailspin() -> Self {
        RecordedSource::with_databases(2)
    }

    /// The lab's instance with `n` databases: ToyStore, then Customer360, then `Db0007`, … .
    pub fn with_databases(n: usize) -> Self {
        let dbs = lab_recorded_databases(n);
        let modules = dbs
            .iter()
            .map(|d| {
                let r = rows(
                    &["schema_name", "object_name", "object_type", "definition"],
                    d.modules
                        .iter()
                        .map(|(s, o, t, def)| {
                            vec![(*s).into(), (*o).into(), (*t).into(), (*def).into()]
                        })
                        .collect(),
                );
                (d.name.clone(), r)
            })
            .collect();
        RecordedSource {
            answers: recorded_answers(&dbs),
            modules,
            sent: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            fail: None,
        }
    }

    /// Makes the probe with `purpose` fail with `error`.
    pub fn failing(mut self, purpose: &'static str, error: SourceError) -> Self {
        self.fail = Some((purpose, error));
        self
    }

    /// The purposes of the batches sent, in order.
    pub fn sent(&self) -> Vec<&'static str> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// How many batches were sent with `purpose`.
    pub fn sent_with(&self, purpose: &str) -> usize {
        self.sent().iter().filter(|p| **p == purpose).count()
    }

    /// The most module text batches that were in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    fn module_database(sql: &str) -> Option<String> {
        let start = sql.find("FROM [")? + "FROM [".len();
        let end = sql[start..].find("].sys.sql_modules")? + start;
        Some(sql[start..end].replace("]]", "]"))
    }
}

#[async_trait]
impl FactSource for RecordedSource {
    async fn query(&self, batch: &Batch) -> Result<Rows, SourceError> {
        if let Ok(mut s) = self.sent.lock() {
            s.push(batch.purpose());
        }
        if let Some((_, e)) = self.fail.as_ref().filter(|(p, _)| *p == batch.purpose()) {
            return Err(e.clone());
        }
        if batch.purpose() == readiness::MODULE_TEXT {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            let db = RecordedSource::module_database(batch.expose_sql())
                .ok_or_else(|| SourceError::new("no database in the module text batch"))?;
            return self
                .modules
                .get(&db)
                .cloned()
                .ok_or_else(|| SourceError::new(format!("Database '{db}' does not exist")));
        }
        self.answers
            .get(batch.purpose())
            .cloned()
            .ok_or_else(|| SourceError::new(format!("no recording for {:?}", batch.purpose())))
    }
}
