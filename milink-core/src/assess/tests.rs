//! Assessment tests: the lab, every rule firing and staying silent, the report renderings,
//! and fact gathering with a constant number of probe batches.

use std::time::Duration;

use super::fixtures::{self, RecordedSource, TailspinLab, lab_now};
use super::*;
use crate::assess::scan::{Marker, MarkerHit};
use crate::names::{DatabaseName, LinkMode, SqlVersion, UpdatePolicy};
use crate::time::Timestamp;

fn dbn(s: &str) -> DatabaseName {
    DatabaseName::new(s).unwrap()
}

fn ids<'a>(fs: impl Iterator<Item = &'a Finding>) -> Vec<&'a str> {
    let mut v: Vec<&str> = fs.map(|f| f.rule_id.as_str()).collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------- the lab

#[test]
fn toystore_is_ready_and_customer360_is_not() {
    let report = fixtures::tailspin().assess();
    assert_eq!(report.verdict_of("ToyStore"), Some(Verdict::Ready));
    assert_eq!(report.verdict_of("Customer360"), Some(Verdict::NotReady));
    assert_eq!(report.instance_verdict, Verdict::ReadyWithWarnings);

    let blockers: Vec<&Finding> = report
        .database_findings("Customer360")
        .filter(|f| f.severity == Severity::Blocker)
        .collect();
    assert_eq!(
        ids(blockers.iter().copied()),
        vec![
            "FileStream",
            "Link.FullBackup",
            "Link.RecoveryModel",
            "MultipleLogFiles",
            "XpCmdshell"
        ]
    );
    for b in &blockers {
        assert_ne!(b.fix, Fix::None, "{} has a fix", b.rule_id);
    }
    // The recovery and backup blockers come with the builders' T-SQL.
    let sql = |id: &str| match &blockers.iter().find(|f| f.rule_id == id).unwrap().fix {
        Fix::Sql(s) => s.sql.clone(),
        other => panic!("{id}: {other:?}"),
    };
    assert_eq!(
        sql("Link.RecoveryModel"),
        "ALTER DATABASE [Customer360] SET RECOVERY FULL;"
    );
    assert_eq!(
        sql("Link.FullBackup"),
        "BACKUP DATABASE [Customer360] TO DISK = N'Customer360_milink_full.bak' WITH CHECKSUM;"
    );
    assert_eq!(
        sql("MultipleLogFiles"),
        "ALTER DATABASE [Customer360] REMOVE FILE [Customer360_log2];"
    );
    // ToyStore has nothing above info.
    assert!(
        report
            .database_findings("ToyStore")
            .all(|f| f.severity == Severity::Info)
    );
}

#[test]
fn acting_on_a_blocked_database_is_an_error_that_carries_the_report() {
    let report = fixtures::tailspin().assess();
    assert!(report.ensure_ready(&[dbn("ToyStore")]).is_ok());
    assert!(report.ensure_ready(&[]).is_ok());
    let err = report
        .ensure_ready(&[dbn("ToyStore"), dbn("Customer360")])
        .unwrap_err();
    assert!(err.is_caller_error() && !err.is_transient() && !err.is_remote());
    let msg = err.to_string();
    assert!(msg.contains("Link.RecoveryModel (Customer360)"), "{msg}");
    match err {
        crate::Error::NotReady(r) => assert_eq!(*r, report),
        other => panic!("{other:?}"),
    }
    // The message stays short however many blockers there are.
    let mut many = report.clone();
    let blocker = many.blockers().next().unwrap().clone();
    many.findings.extend(std::iter::repeat_n(blocker, 40));
    let msg = many.not_ready_message();
    assert!(
        msg.starts_with("not ready: 45 blocker(s): ") && msg.ends_with(" and 35 more"),
        "{msg}"
    );
    // A database the report does not cover is not ready either.
    assert!(report.ensure_ready(&[dbn("Elsewhere")]).is_err());
}

#[test]
fn the_outcome_for_a_link_lists_only_its_own_and_the_instance_blockers() {
    let report = fixtures::tailspin().assess();
    // ToyStore is ready even though Customer360 in the same report is not.
    assert!(report.outcome_for(&[dbn("ToyStore")]).blockers.is_empty());
    assert!(report.outcome_for(&[]).blockers.is_empty());
    let blocked = report.outcome_for(&[dbn("toystore"), dbn("Customer360")]);
    assert!(
        blocked
            .blockers
            .iter()
            .any(|b| b.to_string().starts_with("Link.RecoveryModel: ")
                && b.to_string().ends_with(" (database Customer360)")),
        "{blocked:?}"
    );
    assert!(
        blocked
            .blockers
            .iter()
            .all(|b| b.to_string().contains("Customer360")),
        "{blocked:?}"
    );
    let missing = report.outcome_for(&[dbn("Elsewhere")]);
    assert_eq!(missing.blockers.len(), 1);
    assert!(
        missing.blockers[0].to_string().contains("Elsewhere"),
        "{missing:?}"
    );

    let mut lab = fixtures::tailspin();
    lab.instance.hadr_enabled = false;
    let report = lab.assess();
    let outcome = report.outcome_for(&[dbn("ToyStore")]);
    assert!(
        outcome
            .blockers
            .iter()
            .any(|b| b.to_string().ends_with(" (instance)")),
        "{outcome:?}"
    );
    // Empty exactly when ensure_ready passes.
    assert!(report.ensure_ready(&[dbn("ToyStore")]).is_err());
}

#[test]
fn an_instance_blocker_makes_every_database_not_ready() {
    let mut lab = fixtures::tailspin();
    lab.instance.hadr_enabled = false;
    let report = lab.assess();
    assert_eq!(report.instance_verdict, Verdict::NotReady);
    assert_eq!(report.verdict_of("ToyStore"), Some(Verdict::NotReady));
    assert!(report.ensure_ready(&[]).is_err());
}

#[test]
fn system_databases_are_excluded_with_an_info_finding() {
    let mut lab = fixtures::tailspin();
    lab.options.databases = Some(vec![dbn("ToyStore"), dbn("master"), dbn("MSDB")]);
    let report = lab.assess();
    let sys: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.rule_id == "Link.SystemDatabase")
        .collect();
    assert_eq!(sys.len(), 2);
    assert!(sys.iter().all(|f| f.severity == Severity::Info));
    assert_eq!(
        report
            .databases
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>(),
        vec!["ToyStore"]
    );
    // System databases never get database rules.
    assert!(
        report
            .findings
            .iter()
            .filter(|f| f.scope == Scope::Database(dbn("master")))
            .all(|f| f.rule_id == "Link.SystemDatabase")
    );
}

#[test]
fn without_a_target_the_target_checks_are_reported_as_not_evaluated() {
    let lab = fixtures::tailspin();
    let report = assess(&lab.instance, &lab.databases, None, &lab.options);
    let skipped: Vec<&str> = report
        .not_evaluated
        .iter()
        .filter(|n| n.scope == Scope::Instance)
        .map(|n| n.rule_id.as_str())
        .collect();
    for id in [
        "Link.Collation",
        "Link.UpdatePolicy",
        "Link.FailoverGroup",
        "Link.DatabaseCountLimit",
        "Link.StorageFits",
    ] {
        assert!(skipped.contains(&id), "{id} in {skipped:?}");
    }
    assert!(report.target.is_none());
    // The database verdicts still come out.
    assert_eq!(report.verdict_of("Customer360"), Some(Verdict::NotReady));
}

#[test]
fn every_rule_runs_even_after_a_blocker() {
    let mut lab = fixtures::tailspin();
    lab.instance.version = SqlVersion::new(12, 0, 6024, 0);
    lab.instance.hadr_enabled = false;
    let report = lab.assess();
    let ids = ids(report.blockers());
    for id in [
        "Link.SqlVersion",
        "Link.HadrEnabled",
        "Link.RecoveryModel",
        "FileStream",
    ] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
}

#[test]
fn rule_ids_are_unique_and_cover_section_5_1() {
    let mut seen = std::collections::BTreeSet::new();
    for r in RULES {
        assert!(seen.insert(r.id), "duplicate rule id {}", r.id);
    }
    for documented in [
        "AnalysisCommandJob",
        "AnalysisQueryJob",
        "AssemblyFromFile",
        "BulkInsert",
        "ClrStrictSecurity",
        "ComputeClause",
        "CryptographicProvider",
        "DatabasePrincipalAlias",
        "DbCompatLevelLowerThan100",
        "DisableDefCNSTCHK",
        "FastFirstRowHint",
        "FileStream",
        "LinkedServerWithNonSQLProvider",
        "MergeJob",
        "MIDatabaseSize",
        "MIHeterogeneousMSDTCTransactSQL",
        "MIHomogeneousMSDTCTransactSQL",
        "MIInstanceSize",
        "MultipleLogFiles",
        "NextColumn",
        "NonANSILeftOuterJoinSyntax",
        "NonANSIRightOuterJoinSyntax",
        "NumDbExceeds100",
        "OpenRowsetWithNonBlobDataSourceBulk",
        "OpenRowsetWithNonSQLProvider",
        "PowerShellJob",
        "QueueReaderJob",
        "RAISERROR",
        "SqlMail",
        "SystemProcedures110",
        "TraceFlags",
        "TransactSqlJob",
        "WindowsAuthentication",
        "XpCmdshell",
    ] {
        assert!(seen.contains(documented), "{documented} is not in RULES");
    }
    for r in RULES {
        let documented_id = !r.id.starts_with("Link.");
        assert_eq!(documented_id, r.source.contains("§5.1"), "{}", r.id);
    }
}

// ------------------------------------------------------------------ every rule, both ways

/// A lab where no rule fires and every check can be evaluated.
/// The clean lab's SQL Server endpoint certificate (a stand-in DER prefix).
const ENDPOINT_CERTIFICATE: &str = "308202FE308201E6A003020102021055AA";

fn clean() -> TailspinLab {
    let mut lab = fixtures::tailspin();
    let now = lab_now();
    let year = now.plus(Duration::from_secs(365 * 86_400));
    lab.instance.master_key_present = true;
    lab.instance.endpoints = vec![MirroringEndpoint {
        name: "database_mirroring_endpoint".into(),
        state: EndpointState::Started,
        role: "ALL".into(),
        authentication: "CERTIFICATE".into(),
        encryption_enabled: true,
        algorithm: "AES".into(),
        certificate: Some("Cert_TAILSPINSQL_endpoint".into()),
        port: 5022,
        ip_address: None,
    }];
    let cert = |name: &str, subject: &str, expiry: Timestamp, der: &str| CertificateFact {
        name: name.into(),
        subject: subject.into(),
        issuer: subject.into(),
        expiry,
        private_key: "ENCRYPTED_BY_MASTER_KEY".into(),
        thumbprint: "00".into(),
        encoded: Some(der.into()),
    };
    let roots = crate::sqlserver::certs::azure_root_ca_certificates();
    let root_der = |name: &str| {
        roots
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, der)| facts::to_hex(der))
            .unwrap()
    };
    lab.instance.certificates = vec![
        cert(
            "Cert_TAILSPINSQL_endpoint",
            "Certificate for Cert_TAILSPINSQL_endpoint",
            year,
            ENDPOINT_CERTIFICATE,
        ),
        cert(
            fixtures::MI_FQDN,
            "CN=tailspin-mi",
            year,
            fixtures::MI_ENDPOINT_CERTIFICATE,
        ),
        cert(
            "MicrosoftPKI",
            "CN=Microsoft RSA Root Certificate Authority 2017",
            year,
            &root_der("MicrosoftPKI"),
        ),
        cert(
            "DigiCertPKI",
            "CN=DigiCert Global Root G2",
            year,
            &root_der("DigiCertPKI"),
        ),
    ];
    lab.target.server_trust_certificates = Some(vec![TrustCertificateFact {
        name: "Cert_TAILSPINSQL_endpoint".into(),
        public_blob: ENDPOINT_CERTIFICATE.into(),
    }]);
    lab.options.network.push(NetworkProbe {
        kind: ProbeKind::MiToSqlServer,
        host: fixtures::SQL_SERVER_ADDRESS.into(),
        port: 5022,
        outcome: ProbeOutcome::Reachable,
        elapsed_ms: 3,
    });
    lab.instance.windows_logins.retain(WindowsLogin::is_builtin);
    lab.instance
        .job_steps
        .retain(|s| s.subsystem.eq_ignore_ascii_case("TSQL"));
    let mut toy = fixtures::toy_store();
    toy.adr_enabled = Some(true);
    toy.catalog.as_mut().unwrap().pvs_filegroup = Some("PRIMARY".into());
    lab.databases = vec![toy];
    lab.options.network.push(NetworkProbe {
        kind: ProbeKind::LocalEndpoint,
        host: "tailspinsql.tailspin.local".into(),
        port: 5022,
        outcome: ProbeOutcome::Reachable,
        elapsed_ms: 1,
    });
    lab
}

fn toy(l: &mut TailspinLab) -> &mut DatabaseFacts {
    l.database_mut("ToyStore").unwrap()
}

fn catalog(l: &mut TailspinLab) -> &mut CatalogFacts {
    toy(l).catalog.as_mut().unwrap()
}

fn hit(l: &mut TailspinLab, marker: Marker, object: &str, detail: Option<&str>) {
    toy(l).code.as_mut().unwrap().hits.push(MarkerHit {
        marker,
        object: object.into(),
        detail: detail.map(str::to_owned),
    });
}

fn linked(l: &mut TailspinLab, name: &str, provider: &str) {
    l.instance.linked_servers.push(LinkedServer {
        name: name.into(),
        product: String::new(),
        provider: provider.into(),
        data_source: "host".into(),
    });
}

fn job(l: &mut TailspinLab, subsystem: &str, markers: Vec<Marker>) {
    l.instance.job_steps.push(JobStep {
        job: "Nightly".into(),
        job_enabled: true,
        step_id: 2,
        step: "step".into(),
        subsystem: subsystem.into(),
        markers,
    });
}

fn probe_outcome(l: &mut TailspinLab, kind: ProbeKind, outcome: ProbeOutcome) {
    for p in l.options.network.iter_mut().filter(|p| p.kind == kind) {
        p.outcome = outcome.clone();
    }
}

fn endpoint_cert_expiry(l: &mut TailspinLab, days_from_now: i64) {
    let now = lab_now().as_millis() as i64;
    let t = Timestamp::from_millis((now + days_from_now * 86_400_000) as u64);
    l.instance.certificates[0].expiry = t;
}

fn more_databases(l: &mut TailspinLab, total: usize) {
    l.options.databases = Some(vec![dbn("ToyStore")]);
    for i in l.databases.len()..total {
        let mut d = fixtures::toy_store();
        d.name = dbn(&format!("Extra{i}"));
        l.databases.push(d);
    }
}

fn tde(l: &mut TailspinLab, target_thumbprints: Option<Vec<&str>>) {
    toy(l).tde = Some(TdeFacts {
        encryptor_type: "CERTIFICATE".into(),
        certificate: Some("TDECert".into()),
        thumbprint: Some("AB12".into()),
    });
    l.target.tde_certificate_thumbprints =
        target_thumbprints.map(|v| v.into_iter().map(str::to_owned).collect());
}

type Mutation = fn(&mut TailspinLab);

struct Case {
    id: &'static str,
    fires: Mutation,
    silent: Mutation,
}

const fn case(id: &'static str, fires: Mutation, silent: Mutation) -> Case {
    Case { id, fires, silent }
}

const CASES: &[Case] = &[
    case(
        "Link.SqlVersion",
        |l| l.instance.version = SqlVersion::new(16, 0, 900, 1),
        |l| l.instance.version = SqlVersion::new(16, 0, 1000, 6),
    ),
    case(
        "Link.AzureConnectPack",
        // 2017 CU31 with sp_certificate_add_issuer present but below the pack's build.
        |l| l.instance.version = SqlVersion::new(14, 0, 3456, 2),
        |l| l.instance.version = SqlVersion::new(14, 0, 3490, 10),
    ),
    case(
        "Link.Edition",
        |l| l.instance.edition = Edition::Express,
        |l| l.instance.edition = Edition::Standard,
    ),
    case(
        "Link.MultiDatabaseMode",
        // 2022 CU13 is below CU27.
        |l| l.options.link_mode = LinkMode::MultiDatabase,
        |l| {
            l.options.link_mode = LinkMode::MultiDatabase;
            l.instance.update_level = Some("CU27".into());
            l.instance.multi_database = Some(MultiDatabaseFacts {
                procedure_present: true,
                enabled: Some(true),
            });
        },
    ),
    case(
        "Link.FromManagedInstance",
        |l| {
            l.options.from_managed_instance = true;
            l.instance.version = SqlVersion::new(16, 0, 4085, 2);
        },
        |l| {
            l.options.from_managed_instance = true;
            l.instance.version = SqlVersion::new(16, 0, 4095, 4);
        },
    ),
    case(
        "Link.Sysadmin",
        |l| l.instance.is_sysadmin = Some(false),
        |l| l.instance.is_sysadmin = Some(true),
    ),
    case(
        "Link.FailoverCluster2016",
        |l| {
            l.instance.version = SqlVersion::new(13, 0, 7000, 253);
            l.instance.cluster = Some(ClusterFacts::default());
        },
        |l| {
            l.instance.version = SqlVersion::new(13, 0, 7000, 253);
            l.instance.cluster = Some(ClusterFacts {
                name: Some("TAILSPIN-WSFC".into()),
                system_permissions: vec!["CONTROL SERVER".into()],
            });
        },
    ),
    case(
        "Link.SystemAccount2016",
        |l| {
            l.instance.version = SqlVersion::new(13, 0, 7000, 253);
            l.instance.cluster = Some(ClusterFacts {
                name: Some("TAILSPIN-WSFC".into()),
                system_permissions: vec!["CONNECT SQL".into()],
            });
        },
        |l| {
            l.instance.version = SqlVersion::new(13, 0, 7000, 253);
            l.instance.cluster = Some(ClusterFacts {
                name: Some("TAILSPIN-WSFC".into()),
                system_permissions: vec![
                    "ALTER ANY AVAILABILITY GROUP".into(),
                    "CONNECT SQL".into(),
                    "VIEW SERVER STATE".into(),
                ],
            });
        },
    ),
    case(
        "Link.HostOs",
        |l| l.instance.host.description = "Windows 10 Pro 10.0".into(),
        |l| l.instance.host.description = "Windows Server 2019 Standard 10.0".into(),
    ),
    case(
        "Link.HadrEnabled",
        |l| l.instance.hadr_enabled = false,
        |l| l.instance.hadr_enabled = true,
    ),
    case(
        "Link.TraceFlags",
        |l| l.instance.trace_flags.retain(|t| t.flag != 9567),
        |l| {
            l.instance.trace_flags.push(TraceFlag {
                flag: 3226,
                enabled: true,
            })
        },
    ),
    case(
        "Link.TraceFlagsAtStartup",
        |l| l.instance.startup_trace_flags = Some(vec![1800]),
        |l| l.instance.startup_trace_flags = Some(vec![1800, 3226, 9567]),
    ),
    case(
        "Link.MasterKey",
        |l| l.instance.master_key_present = false,
        |l| l.instance.master_key_present = true,
    ),
    case(
        "Link.EndpointMissing",
        |l| l.instance.endpoints.clear(),
        |_| {},
    ),
    case(
        "Link.Endpoint",
        |l| l.instance.endpoints[0].algorithm = "RC4".into(),
        |l| l.instance.endpoints[0].algorithm = "RC4_AES".into(),
    ),
    case(
        "Link.CertificateExpired",
        |l| endpoint_cert_expiry(l, -1),
        |l| endpoint_cert_expiry(l, 10),
    ),
    case(
        "Link.CertificateExpiring",
        |l| endpoint_cert_expiry(l, 10),
        |l| endpoint_cert_expiry(l, 40),
    ),
    case(
        "Link.RootCaTrust",
        // A certificate named DigiCertPKI that is not DigiCert Global Root G2.
        |l| {
            for c in &mut l.instance.certificates {
                if c.name == "DigiCertPKI" {
                    c.encoded = Some("3082012200".into());
                }
            }
        },
        |l| {
            for c in &mut l.instance.certificates {
                if c.name == "DigiCertPKI" {
                    c.name = "AzureRoot2".into();
                }
            }
        },
    ),
    case(
        "Link.Collation",
        |l| l.target.collation = Some("Latin1_General_100_CI_AS_SC".into()),
        |l| l.target.collation = Some(fixtures::COLLATION.to_lowercase()),
    ),
    case(
        "Link.UpdatePolicy",
        |l| l.target.update_policy = Some(UpdatePolicy::AlwaysUpToDate),
        |l| {
            l.target.update_policy = Some(UpdatePolicy::AlwaysUpToDate);
            l.options.failback = false;
        },
    ),
    case(
        "Link.OneWay",
        |l| {
            l.options.failback = false;
            l.target.update_policy = Some(UpdatePolicy::AlwaysUpToDate);
        },
        |l| l.options.failback = false,
    ),
    case(
        "Link.FailoverGroup",
        |l| l.target.in_failover_group = Some(true),
        |l| l.target.in_failover_group = Some(false),
    ),
    case(
        "Link.DatabaseCountLimit",
        |l| l.target.databases = Some((0..100).map(|i| dbn(&format!("Mi{i}"))).collect()),
        |l| l.target.databases = Some((0..99).map(|i| dbn(&format!("Mi{i}"))).collect()),
    ),
    case(
        "Link.StorageFits",
        |l| l.target.storage_used_gb = Some(255),
        |l| l.target.storage_used_gb = Some(253),
    ),
    case(
        "Link.NetworkMiEndpoint",
        |l| probe_outcome(l, ProbeKind::MiEndpoint, ProbeOutcome::TimedOut),
        |l| probe_outcome(l, ProbeKind::MiEndpoint, ProbeOutcome::Reachable),
    ),
    case(
        "Link.NetworkMiHadrPort",
        |l| probe_outcome(l, ProbeKind::MiHadrPort, ProbeOutcome::PortOutOfRange),
        |l| probe_outcome(l, ProbeKind::MiHadrPort, ProbeOutcome::Reachable),
    ),
    case(
        "Link.LocalEndpointListening",
        |l| probe_outcome(l, ProbeKind::LocalEndpoint, ProbeOutcome::Refused),
        |l| probe_outcome(l, ProbeKind::LocalEndpoint, ProbeOutcome::Reachable),
    ),
    case(
        "NumDbExceeds100",
        |l| more_databases(l, 101),
        |l| more_databases(l, 100),
    ),
    case(
        "MIInstanceSize",
        |l| toy(l).data_size_mb = 17 * 1024 * 1024,
        |l| toy(l).data_size_mb = 15 * 1024 * 1024,
    ),
    case(
        "TraceFlags",
        |l| {
            l.instance.trace_flags.push(TraceFlag {
                flag: 3226,
                enabled: true,
            })
        },
        |l| {
            l.instance.trace_flags.push(TraceFlag {
                flag: 12381,
                enabled: true,
            });
            l.instance.trace_flags.push(TraceFlag {
                flag: 3226,
                enabled: true,
            });
            l.options.mi_supported_trace_flags = vec![3226];
        },
    ),
    case(
        "WindowsAuthentication",
        |l| {
            catalog(l).windows_users = Some(vec![WindowsUser {
                name: "TAILSPIN\\app".into(),
                is_group: false,
                login: Some("TAILSPIN\\app".into()),
            }])
        },
        |l| {
            // A Windows login with no database user, and a built-in account's user.
            l.instance.windows_logins.push(WindowsLogin {
                name: "TAILSPIN\\app".into(),
                is_group: false,
                is_disabled: false,
            });
            catalog(l).windows_users = Some(vec![WindowsUser {
                name: "NT AUTHORITY\\NETWORK SERVICE".into(),
                is_group: false,
                login: Some("NT AUTHORITY\\NETWORK SERVICE".into()),
            }]);
        },
    ),
    case(
        "PowerShellJob",
        |l| job(l, "PowerShell", vec![]),
        |l| job(l, "CmdExec", vec![]),
    ),
    case(
        "AnalysisCommandJob",
        |l| job(l, "ANALYSISCOMMAND", vec![]),
        |l| job(l, "ANALYSISQUERY", vec![]),
    ),
    case(
        "AnalysisQueryJob",
        |l| job(l, "ANALYSISQUERY", vec![]),
        |l| job(l, "ANALYSISCOMMAND", vec![]),
    ),
    case(
        "MergeJob",
        |l| job(l, "Merge", vec![]),
        |l| job(l, "Snapshot", vec![]),
    ),
    case(
        "QueueReaderJob",
        |l| job(l, "QueueReader", vec![]),
        |l| job(l, "LogReader", vec![]),
    ),
    case(
        "TransactSqlJob",
        |l| job(l, "TSQL", vec![Marker::XpCmdshell]),
        |l| job(l, "TSQL", vec![]),
    ),
    case(
        "Link.SystemDatabase",
        |l| l.options.databases = Some(vec![dbn("ToyStore"), dbn("tempdb")]),
        |l| l.options.databases = Some(vec![dbn("ToyStore")]),
    ),
    case(
        "Link.DatabaseMissing",
        |l| l.options.databases = Some(vec![dbn("ToyStore"), dbn("Nope")]),
        |l| l.options.databases = Some(vec![dbn("toystore")]),
    ),
    case(
        "Link.DuplicateFacts",
        |l| {
            // A second ToyStore, spelled otherwise, that would pass where the first fails.
            let mut copy = toy(l).clone();
            copy.name = dbn("TOYSTORE");
            l.databases.push(copy);
        },
        |_| {},
    ),
    case(
        "Link.DatabaseState",
        |l| toy(l).state = DatabaseState::Offline,
        |l| toy(l).state = DatabaseState::Online,
    ),
    case(
        "Link.RecoveryModel",
        |l| toy(l).recovery_model = RecoveryModel::Simple,
        |l| toy(l).recovery_model = RecoveryModel::Full,
    ),
    case(
        "Link.FullBackup",
        |l| toy(l).log_chain_established = false,
        |l| toy(l).log_chain_established = true,
    ),
    case(
        "MultipleLogFiles",
        |l| toy(l).log_files.push("ToyStore_log2".into()),
        |_| {},
    ),
    case(
        "FileStream",
        |l| catalog(l).filetables = 1,
        |l| catalog(l).memory_optimized_filegroup = Some("imoltp".into()),
    ),
    case(
        "Link.InMemoryOltpTier",
        |l| catalog(l).memory_optimized_filegroup = Some("imoltp".into()),
        |l| {
            catalog(l).memory_optimized_filegroup = Some("imoltp".into());
            l.target.tier = ServiceTier::BusinessCritical;
        },
    ),
    case(
        "Link.InMemoryOltpFiles",
        |l| catalog(l).memory_optimized_files = 2,
        |l| catalog(l).memory_optimized_files = 1,
    ),
    case(
        "Link.TdeCertificate",
        |l| tde(l, Some(vec!["FF00"])),
        |l| tde(l, Some(vec!["ab12"])),
    ),
    case(
        "Link.TdeCertificateUnverified",
        |l| tde(l, None),
        |l| tde(l, Some(vec![])),
    ),
    case(
        "Link.NameTaken",
        |l| l.target.databases = Some(vec![dbn("TOYSTORE")]),
        |l| l.target.databases = Some(vec![dbn("ToyStore2")]),
    ),
    case(
        "Link.AgMembership",
        |l| {
            toy(l).ag = Some(AgMembership {
                ag_name: "AG1".into(),
                database_count: 2,
            })
        },
        |l| {
            toy(l).ag = Some(AgMembership {
                ag_name: "AG_ToyStore".into(),
                database_count: 1,
            })
        },
    ),
    case(
        "Link.SeedingLogBackupRisk",
        |l| {
            toy(l).last_log_backup = Some(Timestamp::from_millis(lab_now().as_millis() - 3_600_000))
        },
        |l| {
            toy(l).last_log_backup =
                Some(Timestamp::from_millis(lab_now().as_millis() - 3_600_000));
            l.instance.trace_flags.push(TraceFlag {
                flag: 12381,
                enabled: true,
            });
        },
    ),
    case(
        "Link.AdrVersionStore",
        |l| catalog(l).pvs_filegroup = Some("PVS".into()),
        |l| catalog(l).pvs_filegroup = Some("primary".into()),
    ),
    case(
        "Link.AdrDisabled",
        |l| toy(l).adr_enabled = Some(false),
        |l| toy(l).adr_enabled = None,
    ),
    case(
        "Link.ServiceBroker",
        |l| toy(l).broker_enabled = false,
        |l| toy(l).broker_enabled = true,
    ),
    case(
        "Link.Cdc",
        |l| toy(l).cdc_enabled = true,
        |l| toy(l).cdc_enabled = false,
    ),
    case(
        "Link.Replication",
        |l| toy(l).replication.published = true,
        |_| {},
    ),
    case(
        "MIDatabaseSize",
        |l| toy(l).data_size_mb = 300 * 1024,
        |l| toy(l).data_size_mb = 200 * 1024,
    ),
    case(
        "DbCompatLevelLowerThan100",
        |l| toy(l).compatibility_level = 90,
        |l| toy(l).compatibility_level = 100,
    ),
    case(
        "ClrStrictSecurity",
        |l| {
            catalog(l).assemblies.push(AssemblyFact {
                name: "Util".into(),
                permission_set: "SAFE_ACCESS".into(),
            })
        },
        |l| {
            catalog(l).assemblies.push(AssemblyFact {
                name: "Util".into(),
                permission_set: "UNSAFE_ACCESS".into(),
            })
        },
    ),
    case(
        "DatabasePrincipalAlias",
        |l| catalog(l).aliased_users = 1,
        |l| catalog(l).aliased_users = 0,
    ),
    case(
        "NextColumn",
        |l| catalog(l).objects_named_next.push("dbo.Orders.NEXT".into()),
        |_| {},
    ),
    case(
        "XpCmdshell",
        |l| hit(l, Marker::XpCmdshell, "dbo.p", None),
        |l| hit(l, Marker::SqlMail, "dbo.p", Some("xp_sendmail")),
    ),
    case(
        "BulkInsert",
        |l| hit(l, Marker::BulkInsert, "dbo.p", Some("C:\\x.csv")),
        |l| hit(l, Marker::OpenRowsetBulk, "dbo.p", None),
    ),
    case(
        "OpenRowsetWithNonBlobDataSourceBulk",
        |l| hit(l, Marker::OpenRowsetBulk, "dbo.p", None),
        |l| hit(l, Marker::BulkInsert, "dbo.p", None),
    ),
    case(
        "OpenRowsetWithNonSQLProvider",
        |l| {
            hit(
                l,
                Marker::OpenRowsetProvider,
                "dbo.p",
                Some("Microsoft.ACE.OLEDB.12.0"),
            )
        },
        |l| hit(l, Marker::OpenRowsetBulk, "dbo.p", None),
    ),
    case(
        "MIHomogeneousMSDTCTransactSQL",
        |l| {
            linked(l, "SQL2", "MSOLEDBSQL");
            hit(l, Marker::DistributedTransaction, "dbo.p", None);
            hit(l, Marker::RemoteServer, "dbo.p", Some("SQL2"));
        },
        |l| {
            linked(l, "ORA", "OraOLEDB.Oracle");
            hit(l, Marker::DistributedTransaction, "dbo.p", None);
            hit(l, Marker::RemoteServer, "dbo.p", Some("ORA"));
        },
    ),
    case(
        "MIHeterogeneousMSDTCTransactSQL",
        |l| {
            linked(l, "ORA", "OraOLEDB.Oracle");
            hit(l, Marker::DistributedTransaction, "dbo.p", None);
            hit(l, Marker::RemoteServer, "dbo.p", Some("ora"));
        },
        |l| {
            linked(l, "SQL2", "MSOLEDBSQL");
            hit(l, Marker::DistributedTransaction, "dbo.p", None);
            hit(l, Marker::RemoteServer, "dbo.p", Some("SQL2"));
        },
    ),
    case(
        "LinkedServerWithNonSQLProvider",
        |l| {
            linked(l, "ORA", "OraOLEDB.Oracle");
            hit(l, Marker::RemoteServer, "dbo.p", Some("ORA"));
        },
        |l| {
            linked(l, "SQL2", "SQLNCLI11");
            hit(l, Marker::RemoteServer, "dbo.p", Some("SQL2"));
        },
    ),
    case(
        "AssemblyFromFile",
        |l| hit(l, Marker::AssemblyFromFile, "dbo.p", Some("C:\\a.dll")),
        |l| hit(l, Marker::CryptographicProvider, "dbo.q", None),
    ),
    case(
        "CryptographicProvider",
        |l| hit(l, Marker::CryptographicProvider, "dbo.p", None),
        |l| hit(l, Marker::AssemblyFromFile, "dbo.p", None),
    ),
    case(
        "DisableDefCNSTCHK",
        |l| hit(l, Marker::DisableDefCnstChk, "dbo.p", None),
        |l| hit(l, Marker::FastFirstRow, "dbo.p", None),
    ),
    case(
        "ComputeClause",
        |l| hit(l, Marker::ComputeClause, "dbo.p", None),
        |l| hit(l, Marker::FastFirstRow, "dbo.p", None),
    ),
    case(
        "FastFirstRowHint",
        |l| hit(l, Marker::FastFirstRow, "dbo.p", None),
        |l| hit(l, Marker::ComputeClause, "dbo.p", None),
    ),
    case(
        "NonANSILeftOuterJoinSyntax",
        |l| hit(l, Marker::NonAnsiLeftJoin, "dbo.p", None),
        |l| hit(l, Marker::NonAnsiRightJoin, "dbo.p", None),
    ),
    case(
        "NonANSIRightOuterJoinSyntax",
        |l| hit(l, Marker::NonAnsiRightJoin, "dbo.p", None),
        |l| hit(l, Marker::NonAnsiLeftJoin, "dbo.p", None),
    ),
    case(
        "RAISERROR",
        |l| hit(l, Marker::LegacyRaiserror, "dbo.p", None),
        |l| hit(l, Marker::SqlMail, "dbo.p", None),
    ),
    case(
        "SqlMail",
        |l| hit(l, Marker::SqlMail, "dbo.p", Some("xp_sendmail")),
        |l| hit(l, Marker::LegacyRaiserror, "dbo.p", None),
    ),
    case(
        "SystemProcedures110",
        |l| {
            hit(
                l,
                Marker::RemovedSystemProcedure,
                "dbo.p",
                Some("sp_dboption"),
            )
        },
        |l| hit(l, Marker::AddAlias, "dbo.p", None),
    ),
    case(
        "Link.EndpointPort",
        |l| l.instance.instance_name = Some("SALES".into()),
        |l| {
            l.instance.instance_name = Some("SALES".into());
            l.instance.endpoints[0].port = 5023;
        },
    ),
    case(
        "Link.InstanceCertificate",
        |l| {
            for c in &mut l.instance.certificates {
                if c.name == fixtures::MI_FQDN {
                    c.encoded = Some("3082030A00".into());
                }
            }
        },
        // Not imported yet: milink imports it.
        |l| {
            l.instance
                .certificates
                .retain(|c| c.name != fixtures::MI_FQDN)
        },
    ),
    case(
        "Link.AzurePermissions",
        |l| {
            l.target.caller_permissions = Some(vec![ArmPermission {
                actions: vec!["Microsoft.Sql/managedInstances/*/read".into()],
                not_actions: Vec::new(),
            }])
        },
        |l| {
            l.target.caller_permissions = Some(vec![ArmPermission {
                actions: vec!["*".into()],
                not_actions: vec!["Microsoft.Authorization/*/Delete".into()],
            }])
        },
    ),
    case(
        "Link.ServiceManagedKey",
        |l| l.target.tde_protector = Some(ProtectorKind::ServiceManaged),
        |l| {
            l.target.tde_protector = Some(ProtectorKind::ServiceManaged);
            l.options.failback = false;
        },
    ),
    case(
        "Link.ServerTrustCertificate",
        |l| {
            l.target.server_trust_certificates = Some(vec![TrustCertificateFact {
                name: "cert_tailspinsql_endpoint".into(),
                public_blob: "0x308202FE00".into(),
            }])
        },
        // The right key under another name.
        |l| {
            l.target.server_trust_certificates = Some(vec![TrustCertificateFact {
                name: "TAILSPINSQL".into(),
                public_blob: format!("0x{}", ENDPOINT_CERTIFICATE.to_lowercase()),
            }])
        },
    ),
    case(
        "Link.NetworkMiToSqlServer",
        |l| {
            for p in &mut l.options.network {
                if p.kind == ProbeKind::MiToSqlServer {
                    p.outcome = ProbeOutcome::TimedOut;
                }
            }
        },
        |l| {
            for p in &mut l.options.network {
                if p.kind == ProbeKind::MiToSqlServer {
                    p.outcome = ProbeOutcome::Reachable;
                }
            }
        },
    ),
    case(
        "Link.SubnetOverlap",
        |l| l.target.subnet_prefixes = Some(vec!["10.10.0.0/16".into()]),
        |l| l.options.sql_server_networks = vec!["10.10.0.0/16".into(), "192.168.4.0/22".into()],
    ),
    case(
        "Link.BackupChecksum",
        |l| toy(l).last_full_backup_checksum = Some(false),
        |l| toy(l).last_full_backup_checksum = Some(true),
    ),
    case(
        "Link.ExistingLink",
        |l| {
            l.target.links = Some(vec![LinkFact {
                name: "toystore-link".into(),
                databases: vec!["toystore".into()],
            }])
        },
        |l| {
            l.target.links = Some(vec![LinkFact {
                name: "crm-link".into(),
                databases: vec!["Customer360".into()],
            }])
        },
    ),
    case(
        "Link.OtherDistributedAg",
        |l| {
            toy(l).ag = Some(AgMembership {
                ag_name: "ToyStoreAG".into(),
                database_count: 1,
            });
            toy(l).distributed_ag = Some("toystore-dr".into());
        },
        |l| {
            toy(l).ag = Some(AgMembership {
                ag_name: "ToyStoreAG".into(),
                database_count: 1,
            });
        },
    ),
];

#[test]
fn the_clean_lab_has_no_findings_and_evaluates_everything() {
    let report = clean().assess();
    assert_eq!(ids(report.findings.iter()), Vec::<&str>::new());
    assert_eq!(report.not_evaluated, vec![]);
    assert_eq!(report.verdict_of("ToyStore"), Some(Verdict::Ready));
    assert_eq!(report.instance_verdict, Verdict::Ready);
}

#[test]
fn every_rule_fires_and_stays_silent() {
    for rule in RULES {
        let case = CASES
            .iter()
            .find(|c| c.id == rule.id)
            .unwrap_or_else(|| panic!("rule {} has no fire/silent case", rule.id));

        let mut lab = clean();
        (case.fires)(&mut lab);
        let report = lab.assess();
        let found: Vec<&Finding> = report
            .findings
            .iter()
            .filter(|f| f.rule_id == rule.id)
            .collect();
        assert!(
            !found.is_empty(),
            "{} did not fire: {:#?}",
            rule.id,
            report.findings
        );
        for f in &found {
            assert_eq!(f.severity, rule.severity, "{}", rule.id);
            assert_eq!(f.title, rule.title);
            assert!(!f.evidence.summary.is_empty(), "{} has evidence", rule.id);
            match (&f.scope, rule.scope) {
                (Scope::Instance, rules::ScopeKind::Instance)
                | (Scope::Database(_), rules::ScopeKind::Database) => {}
                other => panic!("{}: scope {other:?}", rule.id),
            }
            if f.severity == Severity::Blocker {
                assert_ne!(f.fix, Fix::None, "blocker {} has a fix", rule.id);
            }
        }

        let mut lab = clean();
        (case.silent)(&mut lab);
        let report = lab.assess();
        assert!(
            !report.findings.iter().any(|f| f.rule_id == rule.id),
            "{} fired when it should not: {:#?}",
            rule.id,
            report.findings
        );
        assert!(
            !report.not_evaluated.iter().any(|n| n.rule_id == rule.id),
            "{} was not evaluated",
            rule.id
        );
    }
    assert_eq!(
        CASES.len(),
        RULES.len(),
        "a case for a rule that does not exist"
    );
}

#[test]
fn code_rules_without_a_scan_are_not_evaluated_rather_than_silent() {
    let mut lab = clean();
    toy(&mut lab).code = None;
    toy(&mut lab).catalog = None;
    let report = lab.assess();
    let skipped: Vec<&str> = report
        .not_evaluated
        .iter()
        .map(|n| n.rule_id.as_str())
        .collect();
    for id in [
        "XpCmdshell",
        "BulkInsert",
        "FileStream",
        "NextColumn",
        "LinkedServerWithNonSQLProvider",
    ] {
        assert!(skipped.contains(&id), "{id} in {skipped:?}");
    }
}

#[test]
fn the_master_key_fix_carries_no_password() {
    let mut lab = clean();
    lab.instance.master_key_present = false;
    let report = lab.assess();
    let f = report
        .findings
        .iter()
        .find(|f| f.rule_id == "Link.MasterKey")
        .unwrap();
    let Fix::Sql(fix) = &f.fix else {
        panic!("{:?}", f.fix)
    };
    assert!(
        fix.sql
            .contains("CREATE MASTER KEY ENCRYPTION BY PASSWORD = N'***'"),
        "{}",
        fix.sql
    );
    assert!(!report.to_json().contains("strong password>'"));
}

#[test]
fn a_misconfigured_endpoint_gets_the_alter_endpoint_builder() {
    let mut lab = clean();
    let e = &mut lab.instance.endpoints[0];
    e.authentication = "NEGOTIATE".into();
    e.algorithm = "RC4".into();
    e.state = EndpointState::Stopped;
    let report = lab.assess();
    let f = report
        .findings
        .iter()
        .find(|f| f.rule_id == "Link.Endpoint")
        .unwrap();
    assert!(
        f.evidence.summary.contains("no certificate"),
        "{}",
        f.evidence.summary
    );
    assert!(f.evidence.summary.contains("no AES"));
    assert!(f.evidence.summary.contains("STOPPED"));
    let Fix::Sql(fix) = &f.fix else {
        panic!("{:?}", f.fix)
    };
    assert!(
        fix.sql
            .contains("ALTER ENDPOINT [database_mirroring_endpoint]"),
        "{}",
        fix.sql
    );
    assert!(fix.sql.contains("STATE = STARTED"));
    assert!(
        fix.sql
            .contains("AUTHENTICATION = WINDOWS NEGOTIATE CERTIFICATE [Cert_TAILSPINSQL_endpoint]")
    );
    assert!(fix.sql.contains("ALGORITHM AES RC4"));
    // Without a certificate there is nothing to alter to yet: an action.
    lab.instance.endpoints[0].certificate = None;
    let report = lab.assess();
    let f = report
        .findings
        .iter()
        .find(|f| f.rule_id == "Link.Endpoint")
        .unwrap();
    assert!(matches!(f.fix, Fix::Action(_)));
}

// ------------------------------------------------------------------------ report renderings

#[test]
fn markdown_report_snapshot() {
    insta::assert_snapshot!(
        "tailspin_report_markdown",
        fixtures::tailspin().assess().to_markdown()
    );
}

#[test]
fn json_round_trip_with_schema_version() {
    let report = fixtures::tailspin().assess();
    let json = report.to_json();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["schema_version"], 1);
    assert_eq!(ReadinessReport::from_json(&json).unwrap(), report);

    let mut other = value.clone();
    other["schema_version"] = 2.into();
    assert!(ReadinessReport::from_json(&other.to_string()).is_err());
    assert!(ReadinessReport::from_json("{").is_err());
    // A report with a hostile or invalid database name does not deserialize into names.
    let mut bad = value;
    bad["databases"][0]["name"] = "".into();
    assert!(ReadinessReport::from_json(&bad.to_string()).is_err());
}

#[test]
fn html_is_self_contained_and_escapes_names() {
    let mut lab = fixtures::tailspin();
    let mut evil = fixtures::customer_360();
    evil.name = dbn("<script>alert('x')</script>");
    lab.databases.push(evil);
    let html = lab.assess().to_html();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<style>"));
    assert!(!html.contains("<script"), "unescaped name in the page");
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    for external in ["http://", "https://", "<link", "src="] {
        assert!(!html.contains(external), "external asset {external}");
    }
    // Outside code fences (where renderers show text as is), Markdown escapes it too.
    let md = lab.assess().to_markdown();
    let mut in_fence = false;
    for line in md.lines() {
        if line.starts_with("```") {
            in_fence = !in_fence;
        } else if !in_fence {
            assert!(!line.contains("<script>"), "{line}");
        }
    }
    assert!(md.contains("\\<script\\>"));
}

#[test]
fn the_html_fragment_styles_only_itself() {
    let mut lab = fixtures::tailspin();
    let mut evil = fixtures::customer_360();
    evil.name = dbn("<script>alert('x')</script>");
    lab.databases.push(evil);
    let report = lab.assess();
    let fragment = report.to_html_fragment();
    assert!(fragment.starts_with("<div class=\"milink-report\">\n<style>"));
    assert!(fragment.trim_end().ends_with("</div>"));
    for page_only in ["<!DOCTYPE", "<html", "<head", "<body", "</body>"] {
        assert!(!fragment.contains(page_only), "{page_only}");
    }
    assert!(
        !fragment.contains("<script"),
        "unescaped name in the fragment"
    );
    // The same verdicts as the page, and every finding; compact: the blockers first, the
    // rest folded.
    let page = report.to_html();
    let content = fragment.split_once("</style>\n").unwrap().1;
    let verdicts = content.split_once("<h2>Findings</h2>").unwrap().0;
    assert!(page.contains(verdicts));
    let count = |html: &str, what: &str| html.matches(what).count();
    assert_eq!(
        count(content, "<div class=\"finding"),
        count(&page, "<div class=\"finding")
    );
    let findings = content.split_once("<h2>Findings</h2>").unwrap().1;
    let (open, folded) = findings.split_once("<details>").unwrap();
    let blockers = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Blocker)
        .count();
    assert!(blockers > 0);
    assert_eq!(count(open, "<div class=\"finding"), blockers);
    assert_eq!(count(folded, "<span class=\"sev\">Blocker"), 0);
    assert!(folded.contains("</details>"));
    // Every CSS rule is confined to the container.
    let css = fragment
        .split_once("<style>")
        .unwrap()
        .1
        .split_once("</style>")
        .unwrap()
        .0;
    let rules: Vec<&str> = css.split_inclusive('}').collect();
    assert!(rules.len() > 10);
    for rule in rules {
        let selectors = rule.split_once('{').unwrap().0;
        for s in selectors.split(',') {
            assert!(s.starts_with(".milink-report"), "{s} in {rule}");
        }
    }
    assert!(css.starts_with(".milink-report{font-family:"));
}

#[test]
fn sku_is_part_of_the_report() {
    let report = fixtures::tailspin().assess();
    let sku = report.sku.as_ref().unwrap();
    assert_eq!(sku.tier, ServiceTier::GeneralPurpose);
    assert_eq!(sku.vcores, 8);
    assert_eq!(sku.storage_gb, 32);
}

// ------------------------------------------------------------------------ gathering

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn gathering_the_recorded_lab_gives_the_lab_facts() {
    let source = RecordedSource::tailspin();
    let got = block_on(gather_instance_facts(&source, &GatherOptions::default())).unwrap();
    let lab = fixtures::tailspin();
    assert_eq!(got.instance, lab.instance);
    assert_eq!(got.databases, lab.databases);
    assert_eq!(got.probe_batches, PROBE_COUNT);
    assert_eq!(got.module_batches, 2);
    assert!(got.skipped_databases.is_empty() && got.module_scan_errors.is_empty());
    // The report from gathered facts is the lab's report.
    let report = assess(
        &got.instance,
        &got.databases,
        Some(&lab.target),
        &lab.options,
    );
    assert_eq!(report, lab.assess());
    // Instance properties go first: the version decides the other probes.
    assert_eq!(
        source.sent()[0],
        crate::tsql::readiness::INSTANCE_PROPERTIES
    );
}

#[test]
fn five_hundred_databases_take_the_same_probe_batches_as_one() {
    let one = RecordedSource::with_databases(1);
    let many = RecordedSource::with_databases(500);
    let no_modules = GatherOptions {
        modules: ModuleScan::Off,
        ..GatherOptions::default()
    };
    let g1 = block_on(gather_instance_facts(&one, &no_modules)).unwrap();
    let g500 = block_on(gather_instance_facts(&many, &no_modules)).unwrap();
    assert_eq!(g1.databases.len(), 1);
    assert_eq!(g500.databases.len(), 500);
    assert_eq!(one.sent().len(), PROBE_COUNT);
    assert_eq!(many.sent().len(), PROBE_COUNT);
    assert_eq!(one.sent(), many.sent());
    assert_eq!(g1.probe_batches, g500.probe_batches);

    // With module scanning on, only the module text batches grow, one per database.
    let one = RecordedSource::with_databases(1);
    let many = RecordedSource::with_databases(500);
    let g1 = block_on(gather_instance_facts(&one, &GatherOptions::default())).unwrap();
    let g500 = block_on(gather_instance_facts(&many, &GatherOptions::default())).unwrap();
    let probes =
        |s: &RecordedSource| s.sent().len() - s.sent_with(crate::tsql::readiness::MODULE_TEXT);
    assert_eq!(probes(&one), PROBE_COUNT);
    assert_eq!(probes(&many), PROBE_COUNT);
    assert_eq!((g1.module_batches, g500.module_batches), (1, 500));

    // The 500-database instance is assessed: more than 100 databases is reported.
    let lab = fixtures::tailspin();
    let options = AssessOptions {
        databases: Some(vec![dbn("ToyStore")]),
        ..lab.options.clone()
    };
    let report = assess(&g500.instance, &g500.databases, Some(&lab.target), &options);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.rule_id == "NumDbExceeds100")
    );
}

#[test]
fn module_scanning_respects_the_concurrency_bound() {
    for limit in [1usize, 3] {
        let source = RecordedSource::with_databases(12);
        let options = GatherOptions {
            module_concurrency: limit,
            ..GatherOptions::default()
        };
        let g = block_on(gather_instance_facts(&source, &options)).unwrap();
        assert_eq!(g.module_batches, 12);
        assert_eq!(source.max_in_flight(), limit, "limit {limit}");
    }
    // Only the named databases are scanned.
    let source = RecordedSource::with_databases(12);
    let options = GatherOptions {
        modules: ModuleScan::Only(vec![dbn("customer360")]),
        ..GatherOptions::default()
    };
    let g = block_on(gather_instance_facts(&source, &options)).unwrap();
    assert_eq!(g.module_batches, 1);
    assert!(g.databases.iter().filter(|d| d.code.is_some()).count() == 1);
}

#[test]
fn a_failing_probe_is_a_gather_error_with_its_probe_and_transience() {
    let source = RecordedSource::tailspin().failing(
        crate::tsql::readiness::DATABASE_FILES,
        SourceError::transient("connection reset"),
    );
    let err = block_on(gather_instance_facts(&source, &GatherOptions::default())).unwrap_err();
    assert!(err.is_transient() && err.is_remote());
    assert!(err.to_string().contains("database files"), "{err}");
    let umbrella: crate::Error = err.into();
    assert!(umbrella.is_transient() && !umbrella.is_caller_error());
}

#[test]
fn a_result_set_without_an_expected_column_is_refused() {
    struct Empty;
    #[async_trait::async_trait]
    impl FactSource for Empty {
        async fn query(&self, _: &crate::tsql::Batch) -> Result<Rows, SourceError> {
            let mut r = Rows::new(["product_version"]);
            r.push(vec!["16.0.4125.3".into()]).unwrap();
            Ok(r)
        }
    }
    let err = block_on(gather_instance_facts(&Empty, &GatherOptions::default())).unwrap_err();
    assert!(matches!(err, GatherError::MissingColumn { .. }), "{err}");
    assert!(Rows::new(["a", "b"]).push(vec![Cell::Null]).is_err());
}

/// Sizes near `u64::MAX` (hostile or mistyped facts) are summed without overflow: the report
/// says the data is too large, it never panics.
#[test]
fn huge_database_sizes_saturate_instead_of_overflowing() {
    let mut lab = fixtures::tailspin();
    for d in &mut lab.databases {
        d.data_size_mb = u64::MAX;
        d.log_size_mb = u64::MAX;
    }
    let report = lab.assess();
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.severity == Severity::Blocker),
        "{:?}",
        report.findings
    );
    assert!(report.databases.iter().all(|d| d.verdict != Verdict::Ready));
}

/// A misspelt option is refused by name, never silently left at its default.
#[test]
fn options_and_facts_refuse_unknown_keys() {
    let e = serde_json::from_str::<AssessOptions>(r#"{"failbak": true}"#).unwrap_err();
    assert!(e.to_string().contains("failbak"), "{e}");
    let e = serde_json::from_str::<crate::session::SessionOptions>(r#"{"opertion_timeout": 5}"#)
        .unwrap_err();
    assert!(e.to_string().contains("opertion_timeout"), "{e}");
    let mut value = serde_json::to_value(fixtures::tailspin().instance).unwrap();
    value["sever_name"] = serde_json::json!("x");
    let e = serde_json::from_value::<InstanceFacts>(value).unwrap_err();
    assert!(e.to_string().contains("sever_name"), "{e}");
}

// ------------------------------------------------------------ the link's prerequisites

fn finding_of<'a>(report: &'a ReadinessReport, id: &str) -> Option<&'a Finding> {
    report.findings.iter().find(|f| f.rule_id == id)
}

fn not_evaluated_of<'a>(report: &'a ReadinessReport, id: &str) -> Option<&'a NotEvaluated> {
    report.not_evaluated.iter().find(|n| n.rule_id == id)
}

#[test]
fn the_new_facts_flow_from_the_recorded_probes() {
    let got = block_on(gather_instance_facts(
        &RecordedSource::tailspin(),
        &GatherOptions::default(),
    ))
    .unwrap();
    let i = &got.instance;
    assert_eq!(i.is_sysadmin, Some(true));
    assert_eq!(i.instance_name, None, "the default instance");
    assert_eq!(
        i.local_address.as_deref(),
        Some(fixtures::SQL_SERVER_ADDRESS)
    );
    assert_eq!(i.startup_trace_flags, Some(vec![1800, 9567]));
    let cluster = i.cluster.as_ref().unwrap();
    assert_eq!(cluster.name, None);
    assert_eq!(cluster.system_permissions, vec!["CONNECT SQL".to_owned()]);
    assert_eq!(
        i.multi_database,
        Some(MultiDatabaseFacts {
            procedure_present: false,
            enabled: None
        })
    );
    let toy = got
        .databases
        .iter()
        .find(|d| d.name.as_str() == "ToyStore")
        .unwrap();
    assert_eq!(toy.last_full_backup_checksum, Some(true));
    assert_eq!(toy.distributed_ag, None);
    let c360 = got
        .databases
        .iter()
        .find(|d| d.name.as_str() == "Customer360")
        .unwrap();
    assert_eq!(c360.last_full_backup_checksum, None, "no full backup");
}

/// Answers like the lab's recording, with the columns a probe gained at its end removed (a
/// server or a recording from before them).
struct WithoutNewColumns(RecordedSource);

#[async_trait::async_trait]
impl FactSource for WithoutNewColumns {
    async fn query(&self, batch: &crate::tsql::Batch) -> Result<Rows, SourceError> {
        let rows = self.0.query(batch).await?;
        let drop = [
            "is_sysadmin",
            "instance_name",
            "local_net_address",
            "cluster_name",
            "system_account_permissions",
            "startup_trace_flags",
            "has_multidb_milink",
            "multidb_milink",
            "encoded",
            "last_full_backup_checksum",
            "distributed_ag_name",
        ];
        let keep: Vec<usize> = (0..rows.columns().len())
            .filter(|i| !drop.contains(&rows.columns()[*i].as_str()))
            .collect();
        let mut out = Rows::new(keep.iter().map(|i| rows.columns()[*i].clone()));
        for r in rows.rows() {
            out.push(keep.iter().map(|i| r[*i].clone()).collect())?;
        }
        Ok(out)
    }
}

#[test]
fn probes_without_the_new_columns_still_parse_and_their_rules_say_not_evaluated() {
    let got = block_on(gather_instance_facts(
        &WithoutNewColumns(RecordedSource::tailspin()),
        &GatherOptions::default(),
    ))
    .unwrap();
    assert_eq!(got.instance.is_sysadmin, None);
    assert_eq!(got.instance.startup_trace_flags, None);
    assert_eq!(got.instance.cluster, None);
    assert_eq!(got.instance.multi_database, None);
    assert!(
        got.databases
            .iter()
            .all(|d| d.last_full_backup_checksum.is_none())
    );
    let lab = fixtures::tailspin();
    let report = assess(
        &got.instance,
        &got.databases,
        Some(&lab.target),
        &lab.options,
    );
    for id in [
        "Link.Sysadmin",
        "Link.TraceFlagsAtStartup",
        "Link.BackupChecksum",
    ] {
        assert!(
            not_evaluated_of(&report, id).is_some(),
            "{id}: {:#?}",
            report.not_evaluated
        );
    }
    // The verdicts don't move on facts that were not read.
    assert_eq!(
        report.verdict_of("ToyStore"),
        lab.assess().verdict_of("ToyStore")
    );
}

#[test]
fn startup_parameters_are_read_for_their_trace_flags_only() {
    let mut lab = clean();
    lab.instance.startup_trace_flags = None;
    let report = lab.assess();
    let n = not_evaluated_of(&report, "Link.TraceFlagsAtStartup").unwrap();
    assert!(n.reason.contains("mssql.conf"), "{}", n.reason);
    // Flags set with DBCC TRACEON only: on now, gone at the next restart.
    let mut lab = clean();
    lab.instance.startup_trace_flags = Some(Vec::new());
    let f = finding_of(&lab.assess(), "Link.TraceFlagsAtStartup")
        .cloned()
        .unwrap();
    assert!(
        f.evidence.summary.contains("1800, 9567"),
        "{}",
        f.evidence.summary
    );
    assert!(
        matches!(&f.fix, Fix::Action(a) if a.contains("-T1800 -T9567")),
        "{:?}",
        f.fix
    );
    // A flag that is off is Link.TraceFlags' finding, not this one's.
    let mut lab = clean();
    lab.instance.trace_flags.clear();
    lab.instance.startup_trace_flags = Some(Vec::new());
    let report = lab.assess();
    assert!(finding_of(&report, "Link.TraceFlagsAtStartup").is_none());
    assert!(finding_of(&report, "Link.TraceFlags").is_some());
}

#[test]
fn the_multi_database_switch_off_is_fixed_by_the_documented_procedure() {
    let mut lab = clean();
    lab.options.link_mode = LinkMode::MultiDatabase;
    lab.instance.update_level = Some("CU28".into());
    lab.instance.multi_database = Some(MultiDatabaseFacts {
        procedure_present: true,
        enabled: Some(false),
    });
    let f = finding_of(&lab.assess(), "Link.MultiDatabaseMode")
        .cloned()
        .unwrap();
    assert!(
        f.evidence.summary.contains("returns 0"),
        "{}",
        f.evidence.summary
    );
    match &f.fix {
        Fix::Sql(s) => {
            assert_eq!(s.sql, "EXEC sys.sp_multidb_milink 1;");
            assert!(s.note.as_deref().unwrap().contains("existing link"));
        }
        other => panic!("{other:?}"),
    }
    // 2025 needs CU9; an RTM 2022 (no update level) is below CU27.
    let mut lab = clean();
    lab.options.link_mode = LinkMode::MultiDatabase;
    lab.instance.version = SqlVersion::new(17, 0, 4035, 5);
    lab.instance.update_level = Some("CU4".into());
    let f = finding_of(&lab.assess(), "Link.MultiDatabaseMode")
        .cloned()
        .unwrap();
    assert!(
        f.evidence.summary.contains("below CU9"),
        "{}",
        f.evidence.summary
    );
    let mut lab = clean();
    lab.options.link_mode = LinkMode::MultiDatabase;
    lab.instance.update_level = None;
    let f = finding_of(&lab.assess(), "Link.MultiDatabaseMode")
        .cloned()
        .unwrap();
    assert!(
        f.evidence.summary.contains("RTM is below CU27"),
        "{}",
        f.evidence.summary
    );
}

#[test]
fn the_azure_connect_pack_is_checked_by_build_and_by_procedure() {
    // 2016 SP3 without the pack: the build says so even if the procedure were there.
    let mut lab = clean();
    lab.instance.version = SqlVersion::new(13, 0, 6300, 2);
    let f = finding_of(&lab.assess(), "Link.AzureConnectPack")
        .cloned()
        .unwrap();
    assert_eq!(
        f.evidence
            .details
            .get("Azure Connect pack build")
            .map(String::as_str),
        Some("13.0.7000.253")
    );
    assert!(matches!(&f.fix, Fix::Action(a) if a.contains("13.0.7000.253")));
    // 2022 has no pack: a missing procedure is a missing cumulative update.
    let mut lab = clean();
    lab.instance.has_certificate_add_issuer = false;
    let f = finding_of(&lab.assess(), "Link.AzureConnectPack")
        .cloned()
        .unwrap();
    assert!(
        f.evidence
            .summary
            .contains("sp_certificate_add_issuer does not exist")
    );
    assert!(matches!(&f.fix, Fix::Action(a) if a.contains("latest cumulative update")));
}

#[test]
fn azure_permissions_name_the_missing_actions_and_honour_not_actions() {
    let mut lab = clean();
    lab.target.caller_permissions = Some(vec![ArmPermission {
        actions: vec!["Microsoft.Sql/managedInstances/*".into()],
        not_actions: vec!["Microsoft.Sql/managedInstances/distributedAvailabilityGroups/*".into()],
    }]);
    let f = finding_of(&lab.assess(), "Link.AzurePermissions")
        .cloned()
        .unwrap();
    let missing = &f.evidence.details["missing"];
    assert!(
        missing.contains("distributedAvailabilityGroups/setRole/action"),
        "{missing}"
    );
    assert!(!missing.contains("serverTrustCertificates"), "{missing}");
    assert!(matches!(&f.fix, Fix::Action(a) if a.contains("SQL Managed Instance Contributor")));
    // Two role assignments add up.
    let mut lab = clean();
    lab.target.caller_permissions = Some(vec![
        ArmPermission {
            actions: vec!["Microsoft.Sql/managedInstances/*".into()],
            not_actions: vec![
                "Microsoft.Sql/managedInstances/distributedAvailabilityGroups/*".into(),
            ],
        },
        ArmPermission {
            actions: vec!["microsoft.sql/managedinstances/distributedavailabilitygroups/*".into()],
            not_actions: Vec::new(),
        },
    ]);
    assert!(finding_of(&lab.assess(), "Link.AzurePermissions").is_none());
    let mut lab = clean();
    lab.target.caller_permissions = None;
    assert!(not_evaluated_of(&lab.assess(), "Link.AzurePermissions").is_some());
}

#[test]
fn arm_action_patterns_match_as_rbac_does() {
    use facts::action_matches;
    assert!(action_matches("*", "Microsoft.Sql/managedInstances/read"));
    assert!(action_matches(
        "Microsoft.Sql/*",
        "microsoft.sql/managedinstances/write"
    ));
    assert!(action_matches(
        "Microsoft.Sql/managedInstances/*/read",
        "Microsoft.Sql/managedInstances/databases/read"
    ));
    assert!(!action_matches(
        "Microsoft.Sql/managedInstances/*/read",
        "Microsoft.Sql/managedInstances/databases/write"
    ));
    assert!(!action_matches(
        "Microsoft.Sql/servers/*",
        "Microsoft.Sql/managedInstances/read"
    ));
    assert!(!action_matches("", "x"));
}

#[test]
fn the_instance_certificate_is_matched_by_its_bytes_and_its_name() {
    // The instance's certificate imported under another name.
    let mut lab = clean();
    for c in &mut lab.instance.certificates {
        if c.name == fixtures::MI_FQDN {
            c.name = "tailspin-mi".into();
        }
    }
    let f = finding_of(&lab.assess(), "Link.InstanceCertificate")
        .cloned()
        .unwrap();
    assert!(
        f.evidence.summary.contains("not under its FQDN"),
        "{}",
        f.evidence.summary
    );
    assert_eq!(
        f.evidence.details["holding the instance's certificate"],
        "tailspin-mi"
    );
    // Without the instance's certificate from ARM it is not evaluated.
    let mut lab = clean();
    lab.target.endpoint_certificate = None;
    assert!(not_evaluated_of(&lab.assess(), "Link.InstanceCertificate").is_some());
}

#[test]
fn a_root_ca_is_present_only_with_its_exact_certificate() {
    let mut lab = clean();
    lab.instance
        .certificates
        .retain(|c| c.name != "MicrosoftPKI");
    let f = finding_of(&lab.assess(), "Link.RootCaTrust")
        .cloned()
        .unwrap();
    assert_eq!(f.evidence.details["missing"], "MicrosoftPKI");
    assert!(
        !f.evidence
            .details
            .contains_key("named like a root CA but holding another certificate")
    );
    let mut lab = clean();
    for c in &mut lab.instance.certificates {
        if c.name == "MicrosoftPKI" {
            c.encoded = Some("00".into());
        }
    }
    let f = finding_of(&lab.assess(), "Link.RootCaTrust")
        .cloned()
        .unwrap();
    assert_eq!(
        f.evidence.details["named like a root CA but holding another certificate"],
        "MicrosoftPKI"
    );
}

#[test]
fn the_other_direction_is_said_to_be_unverified_with_how_to_verify_it() {
    let mut lab = clean();
    lab.options
        .network
        .retain(|p| p.kind != ProbeKind::MiToSqlServer);
    let report = lab.assess();
    let n = not_evaluated_of(&report, "Link.NetworkMiToSqlServer").unwrap();
    for words in [
        "not verified",
        "NetHelper",
        "tnc",
        "MiToBoxNetworkConnectivity",
    ] {
        assert!(n.reason.contains(words), "{words}: {}", n.reason);
    }
    assert!(finding_of(&report, "Link.NetworkMiToSqlServer").is_none());
    assert_eq!(report.verdict_of("ToyStore"), Some(Verdict::Ready));
}

#[test]
fn subnets_overlap_by_address_or_by_the_networks_given() {
    let net = |s: &str| rules::Ipv4Net::parse(s).unwrap();
    assert!(net("10.10.1.4").overlaps(net("10.10.0.0/16")));
    assert!(net("10.0.0.0/8").overlaps(net("10.20.0.0/24")));
    assert!(!net("10.10.0.0/16").overlaps(net("10.20.0.0/24")));
    assert!(net("0.0.0.0/0").overlaps(net("192.168.1.0/24")));
    assert_eq!(net("10.20.0.77/24"), net("10.20.0.0/24"));
    assert!(rules::Ipv4Net::parse("fd00::/8").is_none());
    assert!(rules::Ipv4Net::parse("10.0.0.0/33").is_none());
    // A network given by the caller that overlaps.
    let mut lab = clean();
    lab.options.sql_server_networks = vec!["10.20.0.128/25".into()];
    let f = finding_of(&lab.assess(), "Link.SubnetOverlap")
        .cloned()
        .unwrap();
    assert_eq!(f.evidence.summary, "10.20.0.128/25 overlaps 10.20.0.0/24");
    // A loopback address says nothing.
    let mut lab = clean();
    lab.instance.local_address = Some("127.0.0.1".into());
    assert!(not_evaluated_of(&lab.assess(), "Link.SubnetOverlap").is_some());
}

#[test]
fn cumulative_updates_are_read_from_the_update_level() {
    use rules::cumulative_update;
    assert_eq!(cumulative_update(Some("CU27")), Some(27));
    assert_eq!(cumulative_update(Some("cu9")), Some(9));
    assert_eq!(cumulative_update(Some("CU13-GDR")), Some(13));
    assert_eq!(cumulative_update(None), None);
    assert_eq!(cumulative_update(Some("SP3")), None);
}

#[test]
fn a_database_named_twice_is_not_ready_whichever_comes_first() {
    for simple_first in [true, false] {
        let mut lab = clean();
        let mut simple = toy(&mut lab).clone();
        simple.recovery_model = RecoveryModel::Simple;
        let full = toy(&mut lab).clone();
        lab.databases.retain(|d| d.name.as_str() != "ToyStore");
        if simple_first {
            lab.databases.extend([simple, full]);
        } else {
            lab.databases.extend([full, simple]);
        }
        let report = lab.assess();
        assert_eq!(report.verdict_of("ToyStore"), Some(Verdict::NotReady));
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.rule_id == "Link.DuplicateFacts"),
            "{:?}",
            report.findings
        );
    }
}
