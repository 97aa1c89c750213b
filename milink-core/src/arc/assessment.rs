//! Readiness through Azure Arc, as one [`ReadinessReport`]: milink's own rules on the facts Arc
//! reports (the instance's `GET` and its databases), Arc's `runManagedInstanceLinkAssessment`
//! checks and Arc's migration assessment (`properties.migration.assessment`). Pure.
//!
//! - Own rules: the facts are mapped into [`InstanceFacts`] and [`DatabaseFacts`] and
//!   [`assess`] runs as for the T-SQL route. Only the rules in [`ARC_RULES`] read facts Arc
//!   reports; every other rule's findings are dropped and it is listed in `not_evaluated`
//!   ("Azure Arc does not report the facts it reads"), so nothing passes for want of a fact.
//!   Assumed where Arc is silent: the endpoint is `STARTED` (Arc reports no state) and a full
//!   backup established the log chain.
//! - Arc's MI link checks: each check is mapped to milink's rule where one exists
//!   ([`arc_check_rule`]). When both fail, milink's finding gains Arc's evidence (`arc check`,
//!   `arc status`, `arc information`); when they disagree, an `Arc.Disagreement.<check>`
//!   warning states both evidences (milink's finding, or its pass, and Arc's). A failing or
//!   warning check without a rule of milink's is its own finding `Arc.<check>` (a `Failure` is a
//!   blocker, a `Warning` a warning), per failing database when it names some.
//! - Arc's migration assessment: its findings for Azure SQL Managed Instance use the same
//!   feature ids as milink's compatibility rules (`TraceFlags`, `FileStream`, …). A feature
//!   milink reported gains Arc's evidence. One milink did not report is, if milink's rule of
//!   that id ran on Arc's facts and passed, an `Arc.Disagreement.<feature>` warning with both
//!   evidences; otherwise its own finding `ArcMigration.<feature>` (an `Issue` is a blocker, a
//!   `Warning` a warning) with the impacted objects, scoped to each impacted database the
//!   assessment covers (objects of type `Database`), else to the instance. Arc's SKU
//!   recommendation for the managed instance is an `Arc.SkuRecommendation` info finding.
//!
//! The verdicts are computed again from the findings, as [`assess`] computes them.

use std::collections::{BTreeSet, HashMap};

use super::models::{
    AssessmentStatus, DbmEndpoint, MiLinkAssessmentResult, MiLinkCheck, MigrationAssessment,
    SqlServerDatabase, SqlServerInstance,
};
use super::permissions::{ArcPermissions, EXTENSION_ACCOUNT, EXTENSION_FALLBACK_ACCOUNT};
use crate::assess::CertificateFact;
use crate::assess::rules::ScopeKind;
use crate::assess::{
    AssessOptions, DatabaseFacts, DatabaseState, DatabaseVerdict, Edition, EndpointState, Evidence,
    Finding, Fix, HostOs, HostPlatform, InstanceFacts, MirroringEndpoint, NotEvaluated, RULES,
    ReadinessReport, RecoveryModel, ReplicationFlags, Scope, Severity, TargetFacts, TraceFlag,
    Verdict, assess,
};
use crate::names::{DatabaseName, ServerName, SqlVersion};
use crate::time::Timestamp;

/// The rules whose facts Azure Arc reports.
pub const ARC_RULES: &[&str] = &[
    "Link.SqlVersion",
    "Link.Edition",
    "Link.HadrEnabled",
    "Link.TraceFlags",
    "Link.MasterKey",
    "Link.EndpointMissing",
    "Link.Endpoint",
    "Link.CertificateExpired",
    "Link.CertificateExpiring",
    "Link.Collation",
    "Link.SystemDatabase",
    "Link.DatabaseMissing",
    "Link.DatabaseState",
    "Link.RecoveryModel",
    "Link.FullBackup",
    "TraceFlags",
];

/// Why a rule outside [`ARC_RULES`] is not evaluated.
pub const NOT_FROM_ARC: &str = "Azure Arc does not report the facts this rule reads";

/// milink's rule for one of Arc's MI link checks, if it has one.
pub fn arc_check_rule(check: &str) -> Option<&'static str> {
    Some(match check {
        "AlwaysOn" => "Link.HadrEnabled",
        "DatabaseMirroringEndpoint" => "Link.EndpointMissing",
        "DatabaseMirroringEndpointAuthentication"
        | "DatabaseMirroringEndpointEncryption"
        | "DatabaseMirroringEndpointEncryptionAlgorithm" => "Link.Endpoint",
        "MicrosoftPkiCertificate" => "Link.RootCaTrust",
        "DatabaseNameNotInUse" => "Link.NameTaken",
        "DatabaseRecoveryModel" => "Link.RecoveryModel",
        "DatabaseFullBackup" => "Link.FullBackup",
        _ => return None,
    })
}

/// Facts Arc could not give.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArcFactsError {
    /// Neither `patchLevel` nor `currentVersion` is a four-part build.
    #[error("Azure Arc reports no build of the instance (patchLevel and currentVersion)")]
    NoBuild,
    /// The instance's name is not a server name.
    #[error("the Arc instance's name is not a SQL Server name: {0}")]
    Name(String),
}

/// The instance's facts as Arc reports them (what it does not report is empty or assumed; the
/// rules that read it are not evaluated, see the module docs).
pub fn instance_facts(instance: &SqlServerInstance) -> Result<InstanceFacts, ArcFactsError> {
    let p = &instance.properties;
    let version: SqlVersion = p.build().ok_or(ArcFactsError::NoBuild)?;
    let resource = instance.name.clone().unwrap_or_default();
    let server = match p.instance_name.as_deref() {
        Some(inst) if !inst.eq_ignore_ascii_case("MSSQLSERVER") => resource
            .strip_suffix(&format!("_{inst}"))
            .map_or(resource.clone(), |host| format!("{host}\\{inst}")),
        _ => resource.clone(),
    };
    let server_name = ServerName::new(&server).map_err(|e| ArcFactsError::Name(e.to_string()))?;
    let edition = match p.edition.as_ref().map(|e| e.as_str()) {
        Some("Enterprise") => Edition::Enterprise,
        Some("Standard") => Edition::Standard,
        Some("Developer") => Edition::Developer,
        Some("Evaluation") => Edition::Evaluation,
        Some("Express") => Edition::Express,
        Some("Web") => Edition::Web,
        _ => Edition::Other,
    };
    let (endpoints, certificates) = match &p.database_mirroring_endpoint {
        Some(e) => endpoint_facts(e),
        None => (Vec::new(), Vec::new()),
    };
    Ok(InstanceFacts {
        server_name,
        version,
        update_level: None,
        edition,
        host: HostOs {
            platform: HostPlatform::Unknown,
            description: "not reported by Azure Arc".to_owned(),
        },
        hadr_enabled: p.is_hadr_enabled.unwrap_or(false),
        trace_flags: p
            .trace_flags
            .iter()
            .filter_map(|f| u32::try_from(*f).ok())
            .map(|flag| TraceFlag {
                flag,
                enabled: true,
            })
            .collect(),
        master_key_present: p.db_master_key_exists.unwrap_or(false),
        has_certificate_add_issuer: version.capabilities().tsql_failover,
        endpoints,
        certificates,
        collation: p.collation.clone().unwrap_or_default(),
        cpu_count: p
            .v_core
            .as_deref()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        physical_memory_mb: p
            .max_server_memory_mb
            .and_then(|m| u64::try_from(m).ok())
            .unwrap_or(0),
        max_server_memory_mb: p
            .max_server_memory_mb
            .and_then(|m| u64::try_from(m).ok())
            .unwrap_or(0),
        job_steps: Vec::new(),
        windows_logins: Vec::new(),
        linked_servers: Vec::new(),
        is_sysadmin: None,
        instance_name: p.instance_name.clone(),
        local_address: None,
        cluster: None,
        startup_trace_flags: None,
        multi_database: None,
    })
}

fn endpoint_facts(e: &DbmEndpoint) -> (Vec<MirroringEndpoint>, Vec<CertificateFact>) {
    let endpoint = MirroringEndpoint {
        name: e.endpoint_name.clone().unwrap_or_default(),
        // Arc reports no state: assumed started.
        state: EndpointState::Started,
        role: e
            .role
            .as_ref()
            .map_or_else(|| "ALL".to_owned(), |r| r.as_str().to_owned()),
        authentication: e.connection_auth.clone().unwrap_or_default(),
        encryption_enabled: e.is_encryption_enabled.unwrap_or(false),
        algorithm: e.encryption_algorithm.clone().unwrap_or_default(),
        certificate: e.certificate_name.clone(),
        port: e
            .port
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or_default(),
        ip_address: e.ip_address.clone(),
    };
    let certificate = match (&e.certificate_name, &e.certificate_expiry_date) {
        (Some(name), Some(expiry)) => parse_time(expiry).map(|expiry| CertificateFact {
            name: name.clone(),
            subject: String::new(),
            issuer: String::new(),
            expiry,
            private_key: "ENCRYPTED_BY_MASTER_KEY".to_owned(),
            thumbprint: String::new(),
            encoded: None,
        }),
        _ => None,
    };
    (vec![endpoint], certificate.into_iter().collect())
}

/// A database's facts as Arc reports them.
pub fn database_facts(database: &SqlServerDatabase, index: usize) -> Option<DatabaseFacts> {
    let name = DatabaseName::new(database.name.as_deref()?).ok()?;
    let p = &database.properties;
    let recovery_model = match p.recovery_mode.as_deref().map(str::to_ascii_lowercase) {
        Some(m) if m == "simple" => RecoveryModel::Simple,
        Some(m) if m.starts_with("bulk") => RecoveryModel::BulkLogged,
        _ => RecoveryModel::Full,
    };
    let backup = p.backup_information.as_ref();
    let time = |t: Option<&String>| t.and_then(|t| parse_time(t));
    let last_full_backup = time(backup.and_then(|b| b.last_full_backup.as_ref()));
    let mb = |v: Option<f64>| {
        v.filter(|v| v.is_finite() && *v >= 0.0)
            .map_or(0, |v| v as u64)
    };
    Some(DatabaseFacts {
        name,
        database_id: i32::try_from(index + 5).unwrap_or(i32::MAX),
        state: match p.state.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("online") => DatabaseState::Online,
            Some("restoring") => DatabaseState::Restoring,
            Some("offline") => DatabaseState::Offline,
            Some(_) => DatabaseState::Other,
        },
        recovery_model,
        compatibility_level: p
            .compatibility_level
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(0),
        collation: p.collation_name.clone(),
        data_size_mb: mb(p.data_file_size_mb.or(p.size_mb)),
        log_size_mb: mb(p.log_file_size_mb),
        data_files: 1,
        log_files: vec!["log".to_owned()],
        last_full_backup,
        last_log_backup: time(backup.and_then(|b| b.last_log_backup.as_ref())),
        // Assumed: Arc reports no log chain.
        log_chain_established: last_full_backup.is_some(),
        tde: None,
        adr_enabled: None,
        broker_enabled: false,
        cdc_enabled: false,
        replication: ReplicationFlags::default(),
        ag: None,
        catalog: None,
        code: None,
        last_full_backup_checksum: None,
        distributed_ag: None,
    })
}

/// An RFC 3339 time as Arc writes it (`2024-03-15T00:16:11.0000000Z`, `…-08:00`); `None` if it
/// is not one.
pub fn parse_time(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    let date = crate::time::Date::parse_iso(text.get(..10)?).ok()?;
    let rest = text.get(10..)?;
    let rest = rest.strip_prefix('T').or_else(|| rest.strip_prefix(' '))?;
    let number = |s: Option<&str>| s.and_then(|s| s.parse::<u64>().ok());
    let (h, m, sec) = (
        number(rest.get(0..2))?,
        number(rest.get(3..5))?,
        number(rest.get(6..8))?,
    );
    if h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let tail = rest.get(8..)?;
    let zone_at = tail.find(['Z', 'z', '+', '-']).unwrap_or(tail.len());
    let zone = &tail[zone_at..];
    let offset: i64 = match zone {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let oh = number(zone.get(1..3))?;
            let om = number(zone.get(4..6))?;
            sign * i64::try_from(oh * 3600 + om * 60).ok()?
        }
    };
    let local = i64::try_from(h * 3600 + m * 60 + sec).ok()?;
    let start = date.start();
    let utc = local - offset;
    let millis = i64::try_from(start.as_millis()).ok()? + utc * 1000;
    Some(Timestamp::from_millis(u64::try_from(millis).ok()?))
}

/// The whole assessment through Arc (see the module docs).
pub fn assess_through_arc(
    instance: &SqlServerInstance,
    databases: &[SqlServerDatabase],
    mi_link: Option<&MiLinkAssessmentResult>,
    target: Option<&TargetFacts>,
    options: &AssessOptions,
) -> Result<ReadinessReport, ArcFactsError> {
    let facts = instance_facts(instance)?;
    let dbs: Vec<DatabaseFacts> = databases
        .iter()
        .enumerate()
        .filter_map(|(i, d)| database_facts(d, i))
        .collect();
    let mut report = assess(&facts, &dbs, target, options);
    let requested: Vec<DatabaseName> = report.databases.iter().map(|d| d.name.clone()).collect();

    // Own rules: only those whose facts Arc reports.
    report
        .findings
        .retain(|f| ARC_RULES.contains(&f.rule_id.as_str()));
    report
        .not_evaluated
        .retain(|n| ARC_RULES.contains(&n.rule_id.as_str()));
    for rule in RULES.iter().filter(|r| !ARC_RULES.contains(&r.id)) {
        let scopes: Vec<Scope> = if rule.scope == ScopeKind::Instance {
            vec![Scope::Instance]
        } else {
            requested.iter().cloned().map(Scope::Database).collect()
        };
        for scope in scopes {
            report.not_evaluated.push(NotEvaluated {
                rule_id: rule.id.to_owned(),
                scope,
                reason: NOT_FROM_ARC.to_owned(),
            });
        }
    }

    if let Some(result) = mi_link {
        merge_mi_link_checks(&mut report, result, &requested);
    }
    if let Some(migration) = instance
        .properties
        .migration
        .as_ref()
        .and_then(|m| m.assessment.as_ref())
    {
        merge_migration(&mut report, migration, &requested);
    }
    report.findings.push(extension_permissions());
    recompute_verdicts(&mut report);
    Ok(report)
}

/// The rule id of the info finding that names what the Arc extension needs.
pub const EXTENSION_PERMISSIONS: &str = "Arc.ExtensionPermissions";

/// An info finding naming, for the link's create, cutover and cancel through Arc, the Azure
/// RBAC operation the caller needs and the SQL permissions the extension grants itself just in
/// time ([`ArcPermissions::link_steps`]).
fn extension_permissions() -> Finding {
    let mut evidence = Evidence::new(
        "what the Azure Extension for SQL Server needs to create, cut over and cancel the link \
         through Azure Arc",
    );
    for p in ArcPermissions::link_steps() {
        evidence = evidence.with(
            p.step.unwrap_or(p.operation_id),
            format!(
                "RBAC {} ({}); SQL just in time: {}",
                p.rbac_action,
                p.operation_id,
                p.jit_sql.join(", ")
            ),
        );
    }
    Finding {
        rule_id: EXTENSION_PERMISSIONS.to_owned(),
        severity: Severity::Info,
        scope: Scope::Instance,
        title: "Permissions for the link through Azure Arc".to_owned(),
        evidence,
        fix: Fix::action(format!(
            "Grant the caller the RBAC operations on the Arc-enabled SQL Server resource. The \
             extension grants itself the SQL permissions as {EXTENSION_ACCOUNT} under least \
             privilege; without it, {EXTENSION_FALLBACK_ACCOUNT} needs sysadmin for the cutover \
             and the cancel."
        )),
    }
}

fn arc_severity(status: Option<&AssessmentStatus>) -> Option<Severity> {
    match status? {
        AssessmentStatus::Failure => Some(Severity::Blocker),
        AssessmentStatus::Warning => Some(Severity::Warning),
        _ => None,
    }
}

fn check_scopes(check: &MiLinkCheck, requested: &[DatabaseName]) -> Vec<Scope> {
    if check.failing_dbs.is_empty() {
        return vec![Scope::Instance];
    }
    check
        .failing_dbs
        .iter()
        .map(|db| {
            requested
                .iter()
                .find(|r| r.as_str().eq_ignore_ascii_case(db))
                .cloned()
                .or_else(|| DatabaseName::new(db).ok())
                .map_or(Scope::Instance, Scope::Database)
        })
        .collect()
}

fn with_arc(evidence: &mut Evidence, check: &MiLinkCheck) {
    let name = check.name.clone().unwrap_or_default();
    evidence.details.insert("arc check".to_owned(), name);
    evidence.details.insert(
        "arc status".to_owned(),
        check
            .status
            .as_ref()
            .map_or_else(|| "unknown".to_owned(), |s| s.as_str().to_owned()),
    );
    if let Some(info) = &check.information {
        evidence
            .details
            .insert("arc information".to_owned(), info.clone());
    }
}

fn merge_mi_link_checks(
    report: &mut ReadinessReport,
    result: &MiLinkAssessmentResult,
    requested: &[DatabaseName],
) {
    let mut added = Vec::new();
    for check in &result.assessments {
        let name = check.name.clone().unwrap_or_else(|| "Unnamed".to_owned());
        let arc_fails = arc_severity(check.status.as_ref());
        let Some(rule) = arc_check_rule(&name) else {
            if let Some(severity) = arc_fails {
                for scope in check_scopes(check, requested) {
                    let mut evidence = Evidence::new(format!(
                        "Azure Arc's MI link check {name} reports {}",
                        check.information.as_deref().unwrap_or("a problem")
                    ));
                    with_arc(&mut evidence, check);
                    added.push(Finding {
                        rule_id: format!("Arc.{name}"),
                        severity,
                        scope,
                        title: format!("Azure Arc MI link check {name}"),
                        evidence,
                        fix: Fix::action(
                            check
                                .additional_information
                                .clone()
                                .filter(|s| !s.is_empty())
                                .unwrap_or_else(|| {
                                    "See the check in the portal's MI link assessment.".to_owned()
                                }),
                        ),
                    });
                }
            }
            continue;
        };
        let evaluated = ARC_RULES.contains(&rule);
        let ours: Vec<usize> = report
            .findings
            .iter()
            .enumerate()
            .filter(|(_, f)| f.rule_id == rule)
            .map(|(i, _)| i)
            .collect();
        match (arc_fails, ours.is_empty()) {
            // Both report it: milink's finding gains Arc's evidence.
            (Some(_), false) => {
                for i in ours {
                    if let Some(f) = report.findings.get_mut(i) {
                        with_arc(&mut f.evidence, check);
                    }
                }
            }
            // Both pass (or Arc passes a rule milink could not evaluate): nothing to add.
            (None, true) => {}
            // Arc fails where milink passed or could not look.
            (Some(severity), true) => {
                for scope in check_scopes(check, requested) {
                    let summary = if evaluated {
                        format!(
                            "Azure Arc's check {name} fails, while milink's rule {rule} passed \
                             on the facts Arc reports"
                        )
                    } else {
                        format!(
                            "Azure Arc's check {name} fails; milink's rule {rule} could not be \
                             evaluated through Arc"
                        )
                    };
                    let mut evidence = Evidence::new(summary).with("milink rule", rule);
                    with_arc(&mut evidence, check);
                    added.push(Finding {
                        rule_id: if evaluated {
                            format!("Arc.Disagreement.{name}")
                        } else {
                            format!("Arc.{name}")
                        },
                        severity: if evaluated {
                            Severity::Warning
                        } else {
                            severity
                        },
                        scope,
                        title: format!("Azure Arc MI link check {name}"),
                        evidence,
                        fix: Fix::action(format!(
                            "Compare Arc's evidence with milink's rule {rule}; run the T-SQL \
                             assessment over TDS if SQL Server's port can be reached."
                        )),
                    });
                }
            }
            // milink fails where Arc passes.
            (None, false) => {
                for i in ours {
                    let Some(f) = report.findings.get(i) else {
                        continue;
                    };
                    let mut evidence = Evidence::new(format!(
                        "milink's rule {rule} reports \"{}\", while Azure Arc's check {name} \
                         passes",
                        f.evidence.summary
                    ))
                    .with("milink rule", rule)
                    .with("milink evidence", &f.evidence.summary);
                    with_arc(&mut evidence, check);
                    added.push(Finding {
                        rule_id: format!("Arc.Disagreement.{name}"),
                        severity: Severity::Warning,
                        scope: f.scope.clone(),
                        title: format!("milink and Azure Arc disagree on {rule}"),
                        evidence,
                        fix: Fix::action(
                            "milink's finding stands; check which facts differ (Arc reads them \
                             through its extension, on its own schedule).",
                        ),
                    });
                }
            }
        }
    }
    report.findings.extend(added);
}

fn merge_migration(
    report: &mut ReadinessReport,
    migration: &MigrationAssessment,
    requested: &[DatabaseName],
) {
    let uploaded = migration
        .assessment_upload_time
        .clone()
        .unwrap_or_else(|| "unknown".to_owned());
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut added = Vec::new();
    for a in migration.managed_instance_findings() {
        let Some(feature) = a.feature_id.clone() else {
            continue;
        };
        seen.insert(feature.clone());
        let objects: Vec<String> = a
            .impacted_objects
            .iter()
            .filter_map(|o| o.name.clone())
            .collect();
        let mut matched = false;
        for f in report.findings.iter_mut().filter(|f| f.rule_id == feature) {
            matched = true;
            f.evidence.details.insert(
                "arc migration assessment".to_owned(),
                format!(
                    "{} ({}): {}",
                    a.issue_category.as_deref().unwrap_or("reported"),
                    uploaded,
                    objects.join(", ")
                ),
            );
        }
        if matched {
            continue;
        }
        let severity = match a.issue_category.as_deref() {
            Some("Issue") => Severity::Blocker,
            Some("Warning") => Severity::Warning,
            _ => Severity::Info,
        };
        // Impacted databases the assessment covers are the finding's scopes; anything else
        // (trace flags, logins, databases not asked about) is the instance's.
        let mut scopes: Vec<Scope> = Vec::new();
        for o in &a.impacted_objects {
            let database = o
                .object_type
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("Database"))
                .then(|| {
                    requested.iter().find(|r| {
                        o.name
                            .as_deref()
                            .is_some_and(|n| r.as_str().eq_ignore_ascii_case(n))
                    })
                })
                .flatten();
            let scope = database.map_or(Scope::Instance, |d| Scope::Database(d.clone()));
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        if scopes.is_empty() {
            scopes.push(Scope::Instance);
        }
        // milink evaluated the same rule on Arc's facts and it passed: both evidences.
        let evaluated = ARC_RULES.contains(&feature.as_str());
        for scope in scopes {
            let arc_says = format!(
                "Azure Arc's migration assessment of {uploaded} reports {feature} ({}) for \
                 Azure SQL Managed Instance: {}",
                a.issue_category.as_deref().unwrap_or("reported"),
                objects.join(", ")
            );
            let (rule_id, severity, title, evidence) = if evaluated {
                (
                    format!("Arc.Disagreement.{feature}"),
                    Severity::Warning,
                    format!("milink and Azure Arc's migration assessment disagree on {feature}"),
                    Evidence::new(format!(
                        "{arc_says}; milink's rule {feature} passes on the facts Arc reports"
                    ))
                    .with("milink rule", &feature)
                    .with("milink evidence", "passes on the facts Arc reports"),
                )
            } else {
                (
                    format!("ArcMigration.{feature}"),
                    severity,
                    format!("Azure Arc migration assessment: {feature}"),
                    Evidence::new(format!(
                        "Azure Arc's migration assessment reports {feature} for Azure SQL \
                         Managed Instance"
                    )),
                )
            };
            added.push(Finding {
                rule_id,
                severity,
                scope,
                title,
                evidence: evidence
                    .with("arc migration assessment", &arc_says)
                    .with("impacted objects", objects.join(", "))
                    .with("uploaded", &uploaded),
                fix: Fix::action(a.more_information.clone().unwrap_or_else(|| {
                    "See the feature in Azure Arc's migration assessment.".to_owned()
                })),
            });
        }
    }
    // A compatibility feature milink reports and Arc's assessment does not: both evidences.
    for f in &report.findings {
        if f.rule_id.contains('.') || seen.contains(&f.rule_id) {
            continue;
        }
        added.push(Finding {
            rule_id: format!("Arc.Disagreement.{}", f.rule_id),
            severity: Severity::Info,
            scope: f.scope.clone(),
            title: format!(
                "Azure Arc's migration assessment does not report {}",
                f.rule_id
            ),
            evidence: Evidence::new(format!(
                "milink's rule {} reports \"{}\"; Azure Arc's migration assessment of {uploaded} \
                 does not list it",
                f.rule_id, f.evidence.summary
            ))
            .with("milink rule", &f.rule_id)
            .with("milink evidence", &f.evidence.summary),
            fix: Fix::None,
        });
    }
    if let Some(sku) = migration.managed_instance_sku() {
        let category = sku.target_sku.as_ref().and_then(|t| t.category.as_ref());
        let mut evidence =
            Evidence::new("Azure Arc's SKU recommendation for Azure SQL Managed Instance").with(
                "status",
                sku.recommendation_status
                    .as_ref()
                    .map_or("unknown", |s| s.as_str()),
            );
        if let Some(tier) = category.and_then(|c| c.sql_service_tier.as_ref()) {
            evidence = evidence.with("service tier", tier);
        }
        if let Some(size) = sku.target_sku.as_ref().and_then(|t| t.compute_size) {
            evidence = evidence.with("vCores", size);
        }
        if let Some(n) = sku.number_of_server_blocker_issues {
            evidence = evidence.with("server blockers", n);
        }
        added.push(Finding {
            rule_id: "Arc.SkuRecommendation".to_owned(),
            severity: Severity::Info,
            scope: Scope::Instance,
            title: "Azure Arc SKU recommendation".to_owned(),
            evidence,
            fix: Fix::None,
        });
    }
    report.findings.extend(added);
}

/// The verdicts from the findings, as [`assess`] computes them.
fn recompute_verdicts(report: &mut ReadinessReport) {
    report.instance_verdict = Verdict::from_severities(
        report
            .findings
            .iter()
            .filter(|f| f.scope == Scope::Instance)
            .map(|f| f.severity),
    );
    let blocked = report.instance_verdict == Verdict::NotReady;
    let mut own: HashMap<DatabaseName, Verdict> = HashMap::new();
    for f in &report.findings {
        if let Scope::Database(d) = &f.scope {
            let v = own.entry(d.clone()).or_insert(Verdict::Ready);
            *v = (*v).max(Verdict::from_severities([f.severity]));
        }
    }
    report.databases = report
        .databases
        .iter()
        .map(|d| DatabaseVerdict {
            name: d.name.clone(),
            verdict: if blocked {
                Verdict::NotReady
            } else {
                own.get(&d.name).copied().unwrap_or(Verdict::Ready)
            },
        })
        .collect();
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::arc::models::parse;

    fn instance(hadr: bool) -> SqlServerInstance {
        parse(
            json!({
                "name": "TAILSPIN_SQL2",
                "properties": {
                    "version": "SQL Server 2022", "edition": "Enterprise",
                    "patchLevel": "16.0.4125.3", "instanceName": "SQL2",
                    "collation": "SQL_Latin1_General_CP1_CI_AS", "isHadrEnabled": hadr,
                    "dbMasterKeyExists": true, "traceFlags": [1800, 9567],
                    "status": "Connected",
                },
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap()
    }

    fn databases() -> Vec<SqlServerDatabase> {
        vec![
            parse(
                json!({"name": "ToyStore", "properties": {
                    "recoveryMode": "Full", "dataFileSizeMB": 2048, "logFileSizeMB": 512,
                    "backupInformation": {"lastFullBackup": "2026-12-01T10:00:00Z"},
                }})
                .to_string()
                .as_bytes(),
            )
            .unwrap(),
        ]
    }

    fn checks(name: &str, status: &str) -> MiLinkAssessmentResult {
        parse(
            json!({"assessments": [{"name": name, "category": "SqlInstance", "status": status,
                "information": "Always-On Availability Groups enabled"}]})
            .to_string()
            .as_bytes(),
        )
        .unwrap()
    }

    fn options() -> AssessOptions {
        AssessOptions::at(Timestamp::from_millis(1_796_000_000_000))
    }

    #[test]
    fn times_are_read_as_arc_writes_them() {
        let z = parse_time("2024-03-15T00:16:11.0000000Z").unwrap();
        assert_eq!(z.to_string(), "2024-03-15T00:16:11.000Z");
        let offset = parse_time("2024-02-22T00:04:06.88265-08:00").unwrap();
        assert_eq!(offset.to_string(), "2024-02-22T08:04:06.000Z");
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("2024-02-22T25:00:00Z"), None);
    }

    #[test]
    fn the_instance_facts_are_arcs_and_the_rest_is_not_evaluated() {
        let facts = instance_facts(&instance(true)).unwrap();
        assert_eq!(facts.server_name.to_string(), "TAILSPIN\\SQL2");
        assert!(facts.hadr_enabled && facts.master_key_present);
        let report =
            assess_through_arc(&instance(true), &databases(), None, None, &options()).unwrap();
        assert!(
            report
                .findings
                .iter()
                .all(|f| ARC_RULES.contains(&f.rule_id.as_str())
                    || f.rule_id == EXTENSION_PERMISSIONS)
        );
        // What the extension needs for each step is named, without changing a verdict.
        let needs = report
            .findings
            .iter()
            .find(|f| f.rule_id == EXTENSION_PERMISSIONS)
            .unwrap();
        assert_eq!(needs.severity, Severity::Info);
        assert!(needs.evidence.details["create"].contains("CREATE ENDPOINT"));
        assert!(needs.evidence.details["cutover"].contains("failoverMiLink/action"));
        assert!(needs.evidence.details["cancel"].contains("sysadmin"));
        assert!(matches!(&needs.fix, Fix::Action(a) if a.contains("NT AUTHORITY\\SYSTEM")));
        assert!(
            report
                .not_evaluated
                .iter()
                .any(|n| n.rule_id == "Link.HostOs" && n.reason == NOT_FROM_ARC)
        );
        // No build: refused, not guessed.
        let mut no_build = instance(true);
        no_build.properties.patch_level = None;
        assert_eq!(
            assess_through_arc(&no_build, &databases(), None, None, &options()).unwrap_err(),
            ArcFactsError::NoBuild
        );
    }

    #[test]
    fn disagreements_state_both_evidences() {
        // Arc fails a check milink's rule passes.
        let report = assess_through_arc(
            &instance(true),
            &databases(),
            Some(&checks("AlwaysOn", "Failure")),
            None,
            &options(),
        )
        .unwrap();
        let d = report
            .findings
            .iter()
            .find(|f| f.rule_id == "Arc.Disagreement.AlwaysOn")
            .unwrap();
        assert_eq!(d.evidence.details["milink rule"], "Link.HadrEnabled");
        assert_eq!(d.evidence.details["arc status"], "Failure");
        assert_eq!(d.severity, Severity::Warning);

        // milink's rule fails where Arc passes: milink's finding stays, the disagreement names it.
        let report = assess_through_arc(
            &instance(false),
            &databases(),
            Some(&checks("AlwaysOn", "Success")),
            None,
            &options(),
        )
        .unwrap();
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.rule_id == "Link.HadrEnabled")
        );
        let d = report
            .findings
            .iter()
            .find(|f| f.rule_id == "Arc.Disagreement.AlwaysOn")
            .unwrap();
        assert!(d.evidence.details.contains_key("milink evidence"));
        assert_eq!(report.instance_verdict, Verdict::NotReady);

        // Both fail: one finding, milink's, with Arc's evidence.
        let report = assess_through_arc(
            &instance(false),
            &databases(),
            Some(&checks("AlwaysOn", "Failure")),
            None,
            &options(),
        )
        .unwrap();
        let f = report
            .findings
            .iter()
            .find(|f| f.rule_id == "Link.HadrEnabled")
            .unwrap();
        assert_eq!(f.evidence.details["arc check"], "AlwaysOn");
        assert!(
            !report
                .findings
                .iter()
                .any(|f| f.rule_id.starts_with("Arc.") && f.rule_id != EXTENSION_PERMISSIONS)
        );

        // A failing check milink has no rule for is its own finding.
        let report = assess_through_arc(
            &instance(true),
            &databases(),
            Some(&checks("SqlServerSomethingNew", "Failure")),
            None,
            &options(),
        )
        .unwrap();
        let own = report
            .findings
            .iter()
            .find(|f| f.rule_id == "Arc.SqlServerSomethingNew")
            .unwrap();
        assert_eq!(own.severity, Severity::Blocker);
        assert_eq!(report.instance_verdict, Verdict::NotReady);
    }
}
