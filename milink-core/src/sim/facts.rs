//! What the assessment reads, from the simulated world, and worlds built from a real
//! assessment's facts.
//!
//! [`World::instance_facts`], [`World::database_facts`] and [`World::target_facts`] report the
//! live state (master key, endpoint, certificates, recovery models, backups, AG membership,
//! databases on the instance), so assessing the world before and after preparing a link gives
//! different findings. [`topology_from_facts`] and [`Lab::from_facts`] go the other way: a user's
//! gathered facts become a world to rehearse their migration on; the facts the simulator does
//! not model (Agent jobs, logins, code, catalog details) are kept and reported back unchanged.

use crate::assess::{
    AgMembership, CatalogFacts, CertificateFact, DatabaseFacts, DatabaseState, EndpointState,
    InstanceFacts, MirroringEndpoint, ReplicationFlags, TargetFacts, TdeFacts, TraceFlag,
};
use crate::names::{DatabaseName, EndpointHost, InstanceId, NameError};
use crate::time::{Date, Timestamp};
use crate::tsql;

use super::lab::{DatabaseTopology, InstanceTopology, Lab, SourceTopology, TableTopology};
use super::workload::mix;
use super::world::{DbState, World};
use super::{SimConfig, SimTopology};

const GB: u64 = 1024 * 1024 * 1024;

fn far_future() -> Timestamp {
    Date::new(9999, 12, 31)
        .map(Date::start)
        .unwrap_or(Timestamp::from_millis(u64::MAX / 2))
}

fn thumbprint(der: &[u8]) -> String {
    let mut h = 0u64;
    for chunk in der.chunks(8) {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        h = mix(h ^ u64::from_le_bytes(b));
    }
    let a = mix(h);
    let c = mix(a);
    format!("{h:016X}{a:016X}{:08X}", c >> 32)
}

impl World {
    /// SQL Server's facts as the readiness probes would read them now.
    pub fn instance_facts(&self) -> InstanceFacts {
        let src = &self.source;
        let base = src.static_facts.as_ref();
        let root_subjects = tsql::azure_root_cas();
        InstanceFacts {
            server_name: src.server.clone(),
            version: src.version,
            update_level: base.and_then(|b| b.update_level.clone()),
            edition: src.edition,
            host: src.host.clone(),
            hadr_enabled: src.hadr_enabled,
            trace_flags: src
                .trace_flags
                .iter()
                .map(|f| TraceFlag {
                    flag: *f,
                    enabled: true,
                })
                .collect(),
            master_key_present: src.master_key,
            has_certificate_add_issuer: src.version.capabilities().link_supported,
            endpoints: src
                .endpoint
                .iter()
                .map(|e| MirroringEndpoint {
                    name: e.name.to_string(),
                    state: if e.started {
                        EndpointState::Started
                    } else {
                        EndpointState::Stopped
                    },
                    role: "ALL".to_string(),
                    authentication: if e.certificate.is_some() {
                        "CERTIFICATE".to_string()
                    } else {
                        "WINDOWS_NEGOTIATE".to_string()
                    },
                    encryption_enabled: e.aes,
                    algorithm: if e.aes { "AES" } else { "NONE" }.to_string(),
                    certificate: e.certificate.as_ref().map(ToString::to_string),
                    port: e.port.get(),
                    ip_address: None,
                })
                .collect(),
            certificates: src
                .certificates
                .values()
                .map(|c| {
                    let subject = c
                        .subject
                        .clone()
                        .or_else(|| {
                            root_subjects
                                .iter()
                                .find(|(n, _)| n.as_str() == c.name)
                                .map(|(_, s)| format!("CN={s}"))
                        })
                        .unwrap_or_else(|| format!("CN={}", c.name));
                    CertificateFact {
                        name: c.name.clone(),
                        issuer: subject.clone(),
                        subject,
                        expiry: c.expiry.map_or_else(far_future, Date::start),
                        private_key: if c.has_private_key {
                            "ENCRYPTED_BY_MASTER_KEY".to_string()
                        } else {
                            "NO_PRIVATE_KEY".to_string()
                        },
                        thumbprint: thumbprint(&c.der),
                        encoded: Some(crate::assess::facts::to_hex(&c.der)),
                    }
                })
                .collect(),
            collation: src.collation.clone(),
            cpu_count: src.cores,
            physical_memory_mb: src.memory_mb,
            max_server_memory_mb: src.max_server_memory_mb,
            job_steps: base.map(|b| b.job_steps.clone()).unwrap_or_default(),
            windows_logins: base.map(|b| b.windows_logins.clone()).unwrap_or_default(),
            linked_servers: base.map(|b| b.linked_servers.clone()).unwrap_or_default(),
            // milink's login on the simulated server is sysadmin; the facts the simulator does
            // not model are those a user's gathered facts brought, if any.
            is_sysadmin: Some(true),
            instance_name: base.and_then(|b| b.instance_name.clone()),
            local_address: base.and_then(|b| b.local_address.clone()),
            // No failover cluster (CLUSTER_TYPE = NONE) unless the gathered facts name one;
            // NT AUTHORITY\SYSTEM has CONNECT SQL, as every login, when it is a login.
            cluster: Some(crate::assess::ClusterFacts {
                name: base
                    .and_then(|b| b.cluster.as_ref())
                    .and_then(|c| c.name.clone()),
                system_permissions: base
                    .and_then(|b| b.cluster.as_ref())
                    .map(|c| c.system_permissions.clone())
                    .unwrap_or_else(|| {
                        base.filter(|b| {
                            b.windows_logins
                                .iter()
                                .any(|l| l.name.eq_ignore_ascii_case("NT AUTHORITY\\SYSTEM"))
                        })
                        .map(|_| vec!["CONNECT SQL".to_string()])
                        .unwrap_or_default()
                    }),
            }),
            // The simulated server's flags are its startup configuration.
            startup_trace_flags: Some(
                src.trace_flags
                    .iter()
                    .copied()
                    .filter(|f| [1800, 9567, 12381].contains(f))
                    .collect(),
            ),
            multi_database: Some(crate::assess::MultiDatabaseFacts {
                procedure_present: base
                    .and_then(|b| b.multi_database)
                    .is_some_and(|m| m.procedure_present),
                enabled: base.and_then(|b| b.multi_database).and_then(|m| m.enabled),
            }),
        }
    }

    /// The user databases' facts as the readiness probes would read them now.
    pub fn database_facts(&self) -> Vec<DatabaseFacts> {
        let src = &self.source;
        let mut dbs: Vec<_> = src.databases.iter().collect();
        dbs.sort_by_key(|(_, d)| d.database_id);
        dbs.into_iter()
            .map(|(name, d)| {
                let t = &d.facts;
                let base = t.facts.as_ref();
                let log_files = match base.map(|b| &b.log_files) {
                    Some(files) if files.len() == t.log_files as usize => files.clone(),
                    _ => (0..t.log_files.max(1))
                        .map(|n| {
                            if n == 0 {
                                format!("{name}_log")
                            } else {
                                format!("{name}_log{}", n + 1)
                            }
                        })
                        .collect(),
                };
                let ag = src
                    .ags
                    .values()
                    .find(|ag| ag.databases.contains(name))
                    .map(|ag| AgMembership {
                        ag_name: ag.name.to_string(),
                        database_count: u32::try_from(ag.databases.len()).unwrap_or(u32::MAX),
                    });
                let catalog = base.and_then(|b| b.catalog.clone()).or_else(|| {
                    Some(CatalogFacts {
                        filestream_filegroups: if t.filestream {
                            vec![format!("{name}_FileStream")]
                        } else {
                            Vec::new()
                        },
                        filestream_files: u32::from(t.filestream),
                        memory_optimized_filegroup: t
                            .in_memory_oltp
                            .then(|| format!("{name}_InMemory")),
                        memory_optimized_files: u32::from(t.in_memory_oltp),
                        windows_users: Some(Vec::new()),
                        ..CatalogFacts::default()
                    })
                });
                DatabaseFacts {
                    name: name.clone(),
                    database_id: d.database_id,
                    state: match d.state {
                        DbState::Online => DatabaseState::Online,
                        DbState::Restoring => DatabaseState::Restoring,
                    },
                    recovery_model: t.recovery_model,
                    compatibility_level: t.compatibility_level,
                    collation: base
                        .and_then(|b| b.collation.clone())
                        .or_else(|| Some(src.collation.clone())),
                    data_size_mb: t.size_mb,
                    log_size_mb: t.log_size_mb,
                    data_files: t.data_files,
                    log_files,
                    last_full_backup: t.last_full_backup,
                    last_log_backup: d
                        .last_log_backup
                        .or_else(|| base.and_then(|b| b.last_log_backup)),
                    log_chain_established: t.recovery_model != crate::assess::RecoveryModel::Simple
                        && t.last_full_backup.is_some(),
                    tde: base.and_then(|b| b.tde.clone()).or_else(|| {
                        t.tde.then(|| TdeFacts {
                            encryptor_type: "CERTIFICATE".to_string(),
                            certificate: None,
                            thumbprint: None,
                        })
                    }),
                    adr_enabled: base.and_then(|b| b.adr_enabled).or(Some(false)),
                    broker_enabled: t.broker_enabled,
                    cdc_enabled: base.is_some_and(|b| b.cdc_enabled),
                    replication: base
                        .map(|b| b.replication)
                        .unwrap_or_else(ReplicationFlags::default),
                    ag,
                    catalog,
                    code: base.and_then(|b| b.code.clone()),
                    // The simulated backups are taken WITH CHECKSUM.
                    last_full_backup_checksum: t.last_full_backup.map(|_| {
                        base.and_then(|b| b.last_full_backup_checksum)
                            .unwrap_or(true)
                    }),
                    distributed_ag: src
                        .ags
                        .values()
                        .find(|ag| ag.databases.contains(name))
                        .and_then(|ag| {
                            src.dags
                                .values()
                                .find(|dag| dag.sql_ag == ag.name)
                                .map(|dag| dag.name.to_string())
                        }),
                }
            })
            .collect()
    }

    /// The managed instance's facts as ARM (and a connection to it) would report them now.
    pub fn target_facts(&self) -> TargetFacts {
        let i = &self.instance;
        let used: u64 = i.databases.values().map(|d| d.size_bytes).sum();
        TargetFacts {
            name: i.fqdn.instance_name().to_string(),
            fqdn: i.fqdn.clone(),
            tier: i.tier,
            hardware: i.hardware.clone(),
            vcores: i.vcores,
            storage_max_gb: u64::from(i.storage_gb),
            storage_used_gb: Some(used.div_ceil(GB)),
            databases: Some(i.databases.keys().cloned().collect()),
            update_policy: Some(i.update_policy),
            in_failover_group: Some(i.in_failover_group),
            collation: Some(i.collation.clone()),
            tde_certificate_thumbprints: Some(Vec::new()),
            caller_permissions: Some(i.settings.caller_permissions.clone()),
            tde_protector: Some(i.settings.tde_protector),
            subnet_id: i.settings.subnet_id.clone(),
            subnet_prefixes: i
                .settings
                .subnet_id
                .as_ref()
                .map(|_| i.settings.subnet_prefixes.clone()),
            server_trust_certificates: Some(
                i.trust_certificates
                    .iter()
                    .map(|(name, der)| crate::assess::TrustCertificateFact {
                        name: name.clone(),
                        public_blob: crate::assess::facts::to_hex(der),
                    })
                    .collect(),
            ),
            endpoint_certificate: Some(crate::assess::facts::to_hex(&i.endpoint_certificate)),
            links: Some(
                i.links
                    .keys()
                    .map(|link| crate::assess::LinkFact {
                        name: link.to_string(),
                        databases: i
                            .databases
                            .iter()
                            .filter(|(_, d)| d.link.as_ref() == Some(link))
                            .map(|(n, _)| n.to_string())
                            .collect(),
                    })
                    .collect(),
            ),
        }
    }
}

/// Tables for a database known only by its size: rows roughly in proportion, capped so a world
/// stays small.
fn tables_for(size_mb: u64) -> Vec<TableTopology> {
    let rows = (size_mb.saturating_mul(60)).clamp(1_000, 400_000);
    vec![
        TableTopology::new("dbo.Header", rows / 4),
        TableTopology::new("dbo.Detail", rows / 2),
        TableTopology::new("dbo.Reference", rows / 4),
    ]
}

/// A topology from gathered facts, to rehearse a migration of that estate.
///
/// The facts do not say where the managed instance reaches the mirroring endpoint, nor the
/// instance's subscription and resource group; the endpoint host is taken from the endpoint's
/// listener address or the server's host name, and the instance id gets a placeholder
/// subscription (`00000000-0000-0000-0000-000000000000`) and resource group (`rehearsal`).
pub fn topology_from_facts(
    instance: &InstanceFacts,
    databases: &[DatabaseFacts],
    target: &TargetFacts,
) -> Result<SimTopology, NameError> {
    let host = instance
        .endpoints
        .iter()
        .find_map(|e| e.ip_address.clone())
        .filter(|ip| ip != "0.0.0.0" && !ip.is_empty())
        .unwrap_or_else(|| {
            instance
                .server_name
                .as_str()
                .split('\\')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase()
        });
    let source = SourceTopology {
        server: instance.server_name.clone(),
        version: instance.version,
        edition: instance.edition,
        host: instance.host.clone(),
        collation: instance.collation.clone(),
        hadr_enabled: instance.hadr_enabled,
        trace_flags: instance
            .trace_flags
            .iter()
            .filter(|f| f.enabled)
            .map(|f| f.flag)
            .collect(),
        master_key: instance.master_key_present,
        endpoint_host: EndpointHost::new(host)?,
        cores: instance.cpu_count,
        memory_mb: instance.physical_memory_mb,
        max_server_memory_mb: instance.max_server_memory_mb,
        databases: databases
            .iter()
            .filter(|d| !crate::assess::facts::is_system_database(d.name.as_str()))
            .map(|d| {
                let catalog = d.catalog.as_ref();
                DatabaseTopology {
                    name: d.name.clone(),
                    size_mb: d.data_size_mb,
                    log_size_mb: d.log_size_mb,
                    recovery_model: d.recovery_model,
                    last_full_backup: d.last_full_backup,
                    data_files: d.data_files,
                    log_files: u32::try_from(d.log_files.len()).unwrap_or(u32::MAX),
                    filestream: catalog.is_some_and(|c| {
                        c.filestream_files > 0 || !c.filestream_filegroups.is_empty()
                    }),
                    in_memory_oltp: catalog.is_some_and(|c| c.memory_optimized_filegroup.is_some()),
                    tde: d.tde.is_some(),
                    compatibility_level: d.compatibility_level,
                    broker_enabled: d.broker_enabled,
                    tables: tables_for(d.data_size_mb),
                    facts: Some(d.clone()),
                }
            })
            .collect(),
        facts: Some(instance.clone()),
    };
    let instance_topology = InstanceTopology {
        id: InstanceId::from_parts(
            "00000000-0000-0000-0000-000000000000",
            "rehearsal",
            &target.name,
        )?,
        fqdn: target.fqdn.clone(),
        tier: target.tier,
        vcores: target.vcores,
        storage_gb: u32::try_from(target.storage_max_gb).unwrap_or(u32::MAX),
        hardware: target.hardware.clone(),
        update_policy: target
            .update_policy
            .unwrap_or(crate::names::UpdatePolicy::AlwaysUpToDate),
        collation: target
            .collation
            .clone()
            .unwrap_or_else(|| instance.collation.clone()),
        in_failover_group: target.in_failover_group.unwrap_or(false),
        databases: Vec::new(),
    };
    Ok(SimTopology {
        source,
        instance: instance_topology,
    })
}

impl Lab {
    /// A world built from a real assessment's facts, with a link spec for `database`, so a user
    /// can rehearse the migration of their own topology.
    pub fn from_facts(
        instance: &InstanceFacts,
        databases: &[DatabaseFacts],
        target: &TargetFacts,
        config: SimConfig,
        database: &DatabaseName,
    ) -> Result<Lab, NameError> {
        let topology = topology_from_facts(instance, databases, target)?;
        Lab::from_topology(topology, config, database)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::assess::{AssessOptions, ReadinessReport, Severity, Verdict, assess, fixtures};
    use crate::lifecycle::SourceOp;
    use crate::ports::{ManagedInstance, SourceReply, SourceServer};

    fn assess_world(lab: &Lab) -> ReadinessReport {
        lab.sim.with_world(|w| {
            let options = AssessOptions {
                failback: true,
                network: fixtures::tailspin_network(),
                ..AssessOptions::at(w.now)
            };
            assess(
                &w.instance_facts(),
                &w.database_facts(),
                Some(&w.target_facts()),
                &options,
            )
        })
    }

    fn blocker_ids(report: &ReadinessReport, db: &str) -> BTreeSet<String> {
        report
            .database_findings(db)
            .filter(|f| f.severity == Severity::Blocker)
            .map(|f| f.rule_id.clone())
            .collect()
    }

    #[test]
    fn the_lab_assesses_toystore_ready_and_customer360_not_ready() {
        let lab = Lab::tailspin(1).unwrap();
        let report = assess_world(&lab);
        assert_ne!(report.verdict_of("ToyStore"), Some(Verdict::NotReady));
        assert_eq!(report.verdict_of("Customer360"), Some(Verdict::NotReady));
        let blockers = blocker_ids(&report, "Customer360");
        assert!(blockers.len() >= 2, "{blockers:?}");
        for id in ["Link.RecoveryModel", "Link.FullBackup"] {
            assert!(blockers.contains(id), "{id} missing from {blockers:?}");
        }
        assert!(blocker_ids(&report, "ToyStore").is_empty());
    }

    #[tokio::test]
    async fn facts_follow_the_world_as_the_link_is_prepared() {
        let lab = Lab::tailspin(2).unwrap();
        let before = lab.sim.with_world(World::instance_facts);
        assert!(!before.master_key_present && before.endpoints.is_empty());
        let sql = lab.sim.sql_server();
        let s = &lab.spec;
        sql.execute(&SourceOp::EnsureMasterKey).await.unwrap();
        sql.execute(&SourceOp::EnsureEndpointCertificate {
            name: s.source.certificate.clone(),
            subject: "CN=TailspinSql endpoint".into(),
            expiry: s.source.certificate_expiry,
        })
        .await
        .unwrap();
        sql.execute(&SourceOp::EnsureMirroringEndpoint {
            spec: crate::tsql::MirroringEndpointSpec {
                name: s.source.endpoint_name.clone(),
                port: s.source.endpoint_port,
                certificate: s.source.certificate.clone(),
                auth: crate::tsql::EndpointAuth::Certificate,
                encryption: crate::tsql::EndpointEncryption::Aes,
            },
        })
        .await
        .unwrap();
        sql.execute(&SourceOp::EnsureRootCaTrust).await.unwrap();
        let mi = lab.sim.managed_instance();
        let crate::ports::ArmReply::PublicKey(der) = mi
            .begin(&crate::lifecycle::InstanceOp::GetEndpointCertificate)
            .await
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(
            sql.execute(&SourceOp::ImportInstanceCertificate {
                fqdn: s.target.fqdn.clone(),
                der,
            })
            .await
            .unwrap(),
            SourceReply::Done
        );
        let after = lab.sim.with_world(World::instance_facts);
        assert!(after.master_key_present);
        let ep = &after.endpoints[0];
        assert!(ep.uses_certificate() && ep.allows_aes());
        assert_eq!(ep.state, EndpointState::Started);
        let cert = after
            .certificates
            .iter()
            .find(|c| c.name == s.source.certificate.as_str())
            .unwrap();
        assert_eq!(cert.expiry, s.source.certificate_expiry.start());
        assert_eq!(cert.private_key, "ENCRYPTED_BY_MASTER_KEY");
        let report = assess_world(&lab);
        let instance_ids: BTreeSet<String> = report
            .findings
            .iter()
            .filter(|f| f.scope == crate::assess::Scope::Instance)
            .map(|f| f.rule_id.clone())
            .collect();
        for gone in ["Link.MasterKey", "Link.EndpointMissing", "Link.RootCaTrust"] {
            assert!(!instance_ids.contains(gone), "{gone} still reported");
        }
    }

    #[test]
    fn a_world_from_real_facts_assesses_like_the_facts() {
        let fixture = fixtures::tailspin();
        let expected = fixture.assess();
        let toy = DatabaseName::new("ToyStore").unwrap();
        let lab = Lab::from_facts(
            &fixture.instance,
            &fixture.databases,
            &fixture.target,
            SimConfig {
                start: fixture.options.now,
                ..SimConfig::with_seed(3)
            },
            &toy,
        )
        .unwrap();
        assert_eq!(lab.spec.databases, vec![toy]);
        let got = lab.sim.with_world(|w| {
            assess(
                &w.instance_facts(),
                &w.database_facts(),
                Some(&w.target_facts()),
                &fixture.options,
            )
        });
        assert_eq!(got.databases, expected.databases);
        for db in ["ToyStore", "Customer360"] {
            assert_eq!(blocker_ids(&got, db), blocker_ids(&expected, db), "{db}");
        }
        // The facts the simulator does not model come back unchanged.
        let facts = lab.sim.with_world(World::instance_facts);
        assert_eq!(facts.job_steps, fixture.instance.job_steps);
        assert_eq!(facts.windows_logins, fixture.instance.windows_logins);
    }
}
