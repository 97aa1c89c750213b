//! The `Microsoft.AzureArcData` resources of the simulated SQL Server as JSON, shaped like the
//! official examples (`arc/testdata/…/examples`): the `sqlServerInstances` resource with the
//! readiness facts and the migration assessment, its databases, its availability groups (a
//! link's distributed one too), the MI link assessment's checks and the replica lag telemetry,
//! all read from the world.
//!
//! The check names of the MI link assessment are the example's (`AlwaysOn`,
//! `DatabaseMirroringEndpoint`, `MicrosoftPkiCertificate`, `DatabaseNameNotInUse`) plus two of
//! the simulator's own for what the example does not show (`DatabaseRecoveryModel`,
//! `DatabaseFullBackup`). The telemetry columns of `SecondaryReplicaLag` are
//! [`crate::arc::client::LAG_COLUMNS`] (UNVERIFIED).

use serde_json::{Value, json};

use crate::arc::{ArcInstanceId, date_time};
use crate::assess::{Edition, RecoveryModel};
use crate::lifecycle::Side;
use crate::names::{DatabaseName, LinkName};
use crate::sim::world::World;
use crate::sim::world::arc::MULTI_DATABASE_EXTENSION;

/// The resource type of an instance.
pub(crate) const INSTANCE_TYPE: &str = "Microsoft.AzureArcData/sqlServerInstances";

impl World {
    /// The Arc resource of the simulated SQL Server: in the managed instance's subscription and
    /// resource group, named `HOST_INSTANCE` (or `HOST`) as the extension names it.
    pub fn arc_instance_id(&self) -> Option<ArcInstanceId> {
        let name = self.source.server.to_string().replace('\\', "_");
        ArcInstanceId::from_parts(
            self.instance.id.subscription_id(),
            self.instance.id.resource_group(),
            &name,
        )
        .ok()
    }

    fn arc_instance_name(&self) -> String {
        let server = self.source.server.to_string();
        match server.split_once('\\') {
            Some((_, instance)) => instance.to_owned(),
            None => "MSSQLSERVER".to_owned(),
        }
    }

    /// `GET …/sqlServerInstances/{name}`.
    pub(crate) fn arc_instance(&self, id: &ArcInstanceId) -> Value {
        let s = &self.source;
        let version = match s.version.major {
            11 => "SQL Server 2012",
            12 => "SQL Server 2014",
            13 => "SQL Server 2016",
            14 => "SQL Server 2017",
            15 => "SQL Server 2019",
            16 => "SQL Server 2022",
            17 => "SQL Server 2025",
            _ => "Unknown",
        };
        let edition = match s.edition {
            Edition::Enterprise => "Enterprise",
            Edition::Standard => "Standard",
            Edition::Developer => "Developer",
            Edition::Evaluation => "Evaluation",
            Edition::Express => "Express",
            Edition::Web => "Web",
            Edition::Other => "Unknown",
        };
        let endpoint = s.endpoint.as_ref().map(|e| {
            let expiry = e
                .certificate
                .as_ref()
                .and_then(|c| s.certificates.get(c.as_str()))
                .and_then(|c| c.expiry)
                .map(|d| format!("{d}T00:00:00Z"));
            json!({
                "endpointName": e.name.as_str(),
                "role": "ALL",
                "isEncryptionEnabled": e.aes,
                "encryptionAlgorithm": if e.aes { "AES" } else { "NONE" },
                "connectionAuth": if e.certificate.is_some() { "Certificate" } else { "Windows" },
                "port": e.port.get(),
                "isDynamicPort": false,
                "certificateName": e.certificate.as_ref().map(|c| c.as_str()),
                "certificateExpiryDate": expiry,
            })
        });
        let mut properties = json!({
            "version": version,
            "edition": edition,
            "patchLevel": s.version.to_string(),
            "currentVersion": s.version.to_string(),
            "instanceName": self.arc_instance_name(),
            "collation": s.collation,
            "isHadrEnabled": s.hadr_enabled,
            "dbMasterKeyExists": s.master_key,
            "traceFlags": s.trace_flags.iter().collect::<Vec<_>>(),
            "isMicrosoftPkiCertTrustConfigured": s.root_ca_trust,
            "isDigiCertPkiCertTrustConfigured": s.root_ca_trust,
            "status": if self.arc.agent_connected { "Connected" } else { "Disconnected" },
            "hostType": "Physical Server",
            "vCore": s.cores.to_string(),
            "maxServerMemoryMB": s.max_server_memory_mb,
            "licenseType": "PAYG",
            "provisioningState": "Succeeded",
        });
        if let (Some(map), Some(endpoint)) = (properties.as_object_mut(), endpoint) {
            map.insert("databaseMirroringEndpoint".to_owned(), endpoint);
        }
        if let (Some(map), Some(assessment)) =
            (properties.as_object_mut(), self.arc_migration_assessment())
        {
            map.insert("migration".to_owned(), json!({"assessment": assessment}));
        }
        json!({
            "id": id.to_string(),
            "name": id.name(),
            "type": INSTANCE_TYPE,
            "location": self.config.location,
            "properties": properties,
        })
    }

    /// `GET …/databases`: the user databases, with the facts the readiness rules read.
    pub(crate) fn arc_databases(&self, id: &ArcInstanceId) -> Value {
        let value: Vec<Value> = self
            .source
            .databases
            .iter()
            .map(|(name, d)| {
                let f = &d.facts;
                let recovery = match f.recovery_model {
                    RecoveryModel::Full => "Full",
                    RecoveryModel::BulkLogged => "Bulk-logged",
                    RecoveryModel::Simple => "Simple",
                };
                json!({
                    "id": format!("{id}/databases/{name}"),
                    "name": name.as_str(),
                    "type": "Microsoft.AzureArcData/sqlServerInstances/databases",
                    "location": self.config.location,
                    "properties": {
                        "collationName": self.source.collation,
                        "compatibilityLevel": f.compatibility_level,
                        "sizeMB": f.size_mb + f.log_size_mb,
                        "dataFileSizeMB": f.size_mb,
                        "logFileSizeMB": f.log_size_mb,
                        "state": match d.state {
                            crate::sim::world::DbState::Online => "Online",
                            crate::sim::world::DbState::Restoring => "Restoring",
                        },
                        "recoveryMode": recovery,
                        "backupInformation": {
                            "lastFullBackup": f.last_full_backup.map(date_time),
                            "lastLogBackup": d.last_log_backup.map(date_time),
                        },
                        "databaseOptions": {
                            "isEncrypted": f.tde,
                            "isMemoryOptimizationEnabled": f.in_memory_oltp,
                            "isHekatonFilesOn": f.in_memory_oltp,
                            "numberOfHekatonFiles": u32::from(f.in_memory_oltp),
                        },
                        "provisioningState": "Succeeded",
                    },
                })
            })
            .collect();
        json!({ "value": value })
    }

    /// An availability group of the instance by name (a link's distributed one too), shaped
    /// like the `createManagedInstanceLink` example's answer; `None` if there is none.
    pub(crate) fn arc_availability_group(&self, id: &ArcInstanceId, name: &str) -> Option<Value> {
        let s = &self.source;
        let server = s.server.to_string();
        let instance_name = self.arc_instance_name();
        let resource = |props: Value| {
            json!({
                "id": format!("{id}/availabilityGroups/{name}"),
                "name": name,
                "type": "Microsoft.AzureArcData/sqlServerInstances/availabilityGroups",
                "location": self.config.location,
                "properties": props,
            })
        };
        if let Some(d) = s.dags.values().find(|d| d.name.as_str() == name) {
            let role = |r: crate::lifecycle::ReplicaRole| match r {
                crate::lifecycle::ReplicaRole::Primary => "PRIMARY",
                crate::lifecycle::ReplicaRole::Secondary => "SECONDARY",
                crate::lifecycle::ReplicaRole::Resolving => "RESOLVING",
            };
            let mi_role = self
                .instance
                .links
                .get(&d.name)
                .map(|l| role(l.role))
                .unwrap_or("RESOLVING");
            let mode = |m: crate::lifecycle::AvailabilityMode| match m {
                crate::lifecycle::AvailabilityMode::SynchronousCommit => "SYNCHRONOUS_COMMIT",
                crate::lifecycle::AvailabilityMode::AsynchronousCommit => "ASYNCHRONOUS_COMMIT",
            };
            // The database replica rows as SQL Server's DMVs hold them: its own row, and on the
            // primary a row for the managed instance's replica (UNVERIFIED: the rows Arc
            // collects are not documented beyond the resource's schema).
            let state = |s: crate::lifecycle::SyncState| match s {
                crate::lifecycle::SyncState::Synchronized => "SYNCHRONIZED",
                crate::lifecycle::SyncState::Synchronizing => "SYNCHRONIZING",
                crate::lifecycle::SyncState::NotSynchronizing => "NOT SYNCHRONIZING",
                crate::lifecycle::SyncState::Reverting => "REVERTING",
                crate::lifecycle::SyncState::Initializing => "INITIALIZING",
            };
            let health = |h: crate::lifecycle::SyncHealth| match h {
                crate::lifecycle::SyncHealth::Healthy => "HEALTHY",
                crate::lifecycle::SyncHealth::PartiallyHealthy => "PARTIALLY_HEALTHY",
                crate::lifecycle::SyncHealth::NotHealthy => "NOT_HEALTHY",
            };
            let link_dbs = self.link_databases(&d.name);
            let view = self.side_view(Side::SqlServer, &d.name, &link_dbs);
            let mut databases: Vec<Value> = Vec::new();
            for db in &link_dbs {
                let row = view.databases.iter().find(|v| &v.name == db);
                databases.push(json!({
                    "databaseName": db.as_str(),
                    "replicaName": server,
                    "isLocal": true,
                    "isPrimaryReplica": d.role == crate::lifecycle::ReplicaRole::Primary,
                    "synchronizationStateDescription": row.and_then(|r| r.sync_state).map(state),
                    "synchronizationHealthDescription": row.map(|r| health(r.health)),
                    "databaseStateDescription": "ONLINE",
                    "isSuspended": false,
                }));
                if let Some(partner) = row.and_then(|r| r.partner) {
                    databases.push(json!({
                        "databaseName": db.as_str(),
                        "replicaName": d.mi_ag.as_str(),
                        "isLocal": false,
                        "isPrimaryReplica": false,
                        "synchronizationStateDescription": state(partner.sync_state),
                    }));
                }
            }
            let primary = if d.role == crate::lifecycle::ReplicaRole::Primary {
                d.sql_ag.as_str().to_owned()
            } else {
                d.mi_ag.as_str().to_owned()
            };
            return Some(resource(json!({
                "availabilityGroupId": crate::sim::arm_https::resources::name_uuid("dag", name),
                "serverName": server,
                "instanceName": instance_name,
                "info": {
                    "failureConditionLevel": 3,
                    "healthCheckTimeout": 30000,
                    "isDistributed": true,
                    "isContained": false,
                    "clusterTypeDescription": "NONE",
                    "primaryReplica": primary,
                    "synchronizationHealthDescription": "HEALTHY",
                    "replicationPartnerType": "AzureSQLManagedInstance",
                },
                "replicas": {"value": [
                    {
                        "replicaName": d.sql_ag.as_str(),
                        "configure": {
                            "endpointUrl": d.sql_listener_url,
                            "availabilityModeDescription": mode(d.sql_mode),
                            "failoverModeDescription": "MANUAL",
                            "seedingModeDescription": "AUTOMATIC",
                            "sessionTimeout": d.session_timeout_s,
                        },
                        "state": {
                            "availabilityGroupReplicaRole": role(d.role),
                            "connectedStateDescription": "CONNECTED",
                            "synchronizationHealthDescription": "HEALTHY",
                        },
                    },
                    {
                        "replicaName": d.mi_ag.as_str(),
                        "replicaResourceId": self.instance.id.to_string(),
                        "configure": {
                            "endpointUrl": format!("TCP://{}:5022", d.mi_fqdn),
                            "availabilityModeDescription": mode(d.mi_mode),
                            "failoverModeDescription": "MANUAL",
                            "seedingModeDescription": "AUTOMATIC",
                            "sessionTimeout": d.session_timeout_s,
                        },
                        "state": {
                            "availabilityGroupReplicaRole": mi_role,
                            "connectedStateDescription": "CONNECTED",
                            "synchronizationHealthDescription": "HEALTHY",
                        },
                    },
                ]},
                "databases": {"value": databases},
                "provisioningState": "Succeeded",
            })));
        }
        let ag = s.ags.values().find(|a| a.name.as_str() == name)?;
        Some(resource(json!({
            "availabilityGroupId": crate::sim::arm_https::resources::name_uuid("ag", name),
            "serverName": server,
            "instanceName": instance_name,
            "info": {
                "failureConditionLevel": 3,
                "healthCheckTimeout": 30000,
                "isDistributed": false,
                "isContained": false,
                "clusterTypeDescription": "NONE",
                "primaryReplica": ag.replica.to_string(),
                "synchronizationHealthDescription": "HEALTHY",
            },
            "replicas": {"value": [{
                "replicaName": ag.replica.to_string(),
                "configure": {
                    "endpointUrl": ag.endpoint_url,
                    "availabilityModeDescription": "SYNCHRONOUS_COMMIT",
                    "failoverModeDescription": "MANUAL",
                    "seedingModeDescription": "AUTOMATIC",
                },
                "state": {"availabilityGroupReplicaRole": "PRIMARY"},
            }]},
            "databases": {"value": ag.databases.iter().map(|db| json!({
                "databaseName": db.as_str(),
                "replicaName": ag.replica.to_string(),
                "isLocal": true,
                "isPrimaryReplica": true,
                "databaseStateDescription": "ONLINE",
            })).collect::<Vec<_>>()},
            "provisioningState": "Succeeded",
        })))
    }

    /// `GET …/availabilityGroups`: every availability group, distributed ones too.
    pub(crate) fn arc_availability_groups(&self, id: &ArcInstanceId) -> Value {
        let names: Vec<String> = self
            .source
            .ags
            .keys()
            .map(|a| a.as_str().to_owned())
            .chain(self.source.dags.keys().map(|d| d.as_str().to_owned()))
            .collect();
        let value: Vec<Value> = names
            .iter()
            .filter_map(|n| self.arc_availability_group(id, n))
            .collect();
        json!({ "value": value })
    }

    /// The migration assessment's results, once a run has had time to upload them.
    fn arc_migration_assessment(&self) -> Option<Value> {
        let started = self.arc.migration_assessment_started?;
        let uploaded = started.plus(self.arc.step * 3);
        if self.now < uploaded {
            return None;
        }
        let s = &self.source;
        let mut findings = Vec::new();
        if !s.trace_flags.is_empty() {
            findings.push(json!({
                "appliesToMigrationTargetPlatform": "AzureSqlManagedInstance",
                "featureId": "TraceFlags",
                "issueCategory": "Warning",
                "moreInformation": "Trace Flags",
                "impactedObjects": s.trace_flags.iter().map(|f| json!({
                    "name": f.to_string(), "objectType": "TraceFlag", "impactDetail": "",
                })).collect::<Vec<_>>(),
            }));
        }
        let filestream: Vec<&DatabaseName> = s
            .databases
            .iter()
            .filter(|(_, d)| d.facts.filestream)
            .map(|(n, _)| n)
            .collect();
        if !filestream.is_empty() {
            findings.push(json!({
                "appliesToMigrationTargetPlatform": "AzureSqlManagedInstance",
                "featureId": "FileStream",
                "issueCategory": "Issue",
                "moreInformation": "FILESTREAM is not supported in Azure SQL Managed Instance",
                "impactedObjects": filestream.iter().map(|n| json!({
                    "name": n.as_str(), "objectType": "Database", "impactDetail": "",
                })).collect::<Vec<_>>(),
            }));
        }
        let blockers = u32::try_from(filestream.len()).unwrap_or(u32::MAX);
        let in_memory = s.databases.values().any(|d| d.facts.in_memory_oltp);
        let data_mb: u64 = s.databases.values().map(|d| d.facts.size_mb).sum();
        let log_mb: u64 = s.databases.values().map(|d| d.facts.log_size_mb).sum();
        Some(json!({
            "enabled": true,
            "version": "1.0",
            "assessmentUploadTime": date_time(uploaded),
            "serverAssessments": findings,
            "skuRecommendationResults": {
                "azureSqlManagedInstance": {
                    "recommendationStatus": if blockers == 0 { "Ready" } else { "NotReady" },
                    "numberOfServerBlockerIssues": blockers,
                    "targetSku": {
                        "category": {
                            "computeTier": "Provisioned",
                            "hardwareType": "Gen5",
                            "sqlPurchasingModel": "vCore",
                            "sqlServiceTier":
                                if in_memory { "Business Critical" } else { "General Purpose" },
                            "zoneRedundancyAvailable": false,
                        },
                        "computeSize": s.cores.max(4),
                        "storageMaxSizeInMb": ((data_mb + log_mb) * 2).max(32 * 1024),
                        "predictedDataSizeInMb": data_mb,
                        "predictedLogSizeInMb": log_mb,
                    },
                },
            },
        }))
    }

    /// The migration assessment job's status (`runMigrationAssessment`'s answer).
    pub(crate) fn arc_migration_job(&self, id: &ArcInstanceId, job: &str) -> Value {
        let started = self.arc.migration_assessment_started.map(date_time);
        json!({
            "id": format!("{id}/jobs/{job}MigrationJobOnDemand"),
            "instanceName": self.arc_instance_name(),
            "jobStatus": "InProgress",
            "jobException": null,
            "backgroundJob": {
                "state": "Enabled",
                "executionState": "Running",
                "startTime": started,
                "endTime": null,
                "lastExecutionTime": null,
                "lastExecutionStatus": null,
            },
            "sequencerActions": [
                {"actionId": "system.first", "state": "Completed", "result": "Succeeded"},
                {"actionId": "system.last", "state": "NotStarted", "result": "NotCompleted"},
            ],
        })
    }

    /// The checks of `runManagedInstanceLinkAssessment` for `request`, from the world as it is.
    pub(crate) fn arc_mi_link_assessment(&self, request: &Value) -> Value {
        let categories: Vec<&str> = request["assessmentCategories"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let databases: Vec<&str> = request["databaseNames"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let s = &self.source;
        let status = |ok: bool, otherwise: &'static str| if ok { "Success" } else { otherwise };
        let failing = |pred: &dyn Fn(&crate::sim::world::SourceDatabase) -> bool| -> Vec<String> {
            databases
                .iter()
                .filter(|db| {
                    s.databases
                        .iter()
                        .find(|(n, _)| n.as_str() == **db)
                        .is_none_or(|(_, d)| !pred(d))
                })
                .map(|db| (*db).to_owned())
                .collect()
        };
        let in_use: Vec<String> = databases
            .iter()
            .filter(|db| {
                self.instance
                    .databases
                    .iter()
                    .any(|(n, d)| n.as_str() == **db && d.link.is_none())
            })
            .map(|db| (*db).to_owned())
            .collect();
        let not_full = failing(&|d| d.facts.recovery_model == RecoveryModel::Full);
        let no_backup = failing(&|d| d.facts.last_full_backup.is_some());
        let endpoint = s.endpoint.is_some();
        let checks = [
            (
                "MicrosoftPkiCertificate",
                "Certificates",
                status(s.root_ca_trust, "Warning"),
                "Microsoft PKI certificate trust configured",
                Vec::new(),
            ),
            (
                "DatabaseMirroringEndpoint",
                "SqlInstance",
                status(endpoint, "Warning"),
                "Database Mirroring Endpoint present",
                Vec::new(),
            ),
            (
                "AlwaysOn",
                "SqlInstance",
                status(s.hadr_enabled, "Failure"),
                "Always-On Availability Groups enabled",
                Vec::new(),
            ),
            (
                "DatabaseNameNotInUse",
                "ManagedInstanceDatabase",
                status(in_use.is_empty(), "Failure"),
                "Database name not already in use",
                in_use,
            ),
            (
                "DatabaseRecoveryModel",
                "SqlInstanceDatabase",
                status(not_full.is_empty(), "Failure"),
                "Database recovery model is FULL",
                not_full,
            ),
            (
                "DatabaseFullBackup",
                "SqlInstanceDatabase",
                status(no_backup.is_empty(), "Failure"),
                "Database has a full backup",
                no_backup,
            ),
        ];
        let assessments: Vec<Value> = checks
            .into_iter()
            .filter(|(_, category, ..)| categories.is_empty() || categories.contains(category))
            .map(|(name, category, status, information, failing)| {
                json!({
                    "name": name,
                    "category": category,
                    "status": status,
                    "information": information,
                    "additionalInformation": "",
                    "failingDbs": failing,
                })
            })
            .collect();
        json!({ "assessments": assessments })
    }

    /// `getTelemetry`: `SecondaryReplicaLag` from the world's exact lag of each database of a
    /// link (the requested ones, else all); another dataset is an empty table.
    pub(crate) fn arc_telemetry(&self, request: &Value) -> Value {
        if request["datasetName"].as_str() != Some("SecondaryReplicaLag") {
            return json!({"columns": [], "rows": []});
        }
        let wanted: Vec<&str> = request["databaseNames"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut rows = Vec::new();
        let links: Vec<LinkName> = self.source.dags.keys().cloned().collect();
        for link in &links {
            for db in self.link_databases(link) {
                if !wanted.is_empty() && !wanted.contains(&db.as_str()) {
                    continue;
                }
                let lag = self
                    .lag(link, &db)
                    .map(|l| format!("{:.3}", l.lag.as_secs_f64()));
                rows.push(json!([
                    date_time(self.now),
                    db.as_str(),
                    link.as_str(),
                    lag
                ]));
            }
        }
        json!({
            "columns": [
                {"name": "sample_time_utc", "type": "datetime"},
                {"name": "database_name", "type": "string"},
                {"name": "availability_group_name", "type": "string"},
                {"name": "secondary_lag_seconds", "type": "double"},
            ],
            "rows": rows,
        })
    }

    /// Whether the extension may link `count` databases at once.
    pub(crate) fn arc_extension_allows(&self, count: usize) -> bool {
        count <= 1 || self.arc.extension_links_many()
    }
}

/// The refusal of a link of several databases by an older extension.
pub(crate) fn extension_too_old_message(version: &str, count: usize) -> String {
    format!(
        "The Azure Extension for SQL Server {version} links one database at a time; {count} \
         were requested. Update the extension to {MULTI_DATABASE_EXTENSION} or later."
    )
}
