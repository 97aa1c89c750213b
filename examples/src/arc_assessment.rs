//! The Tailspin lab's readiness through Azure Arc, beside milink's own.
//!
//! [`assess_lab_through_arc`] serves the lab's world over loopback HTTPS
//! ([`ArmHttpsServer`]: the simulated Azure, `Microsoft.AzureArcData` included) and reads it
//! with the real client ([`ArcSqlServer`]), read-only except for the one job Arc needs to run
//! first: its migration assessment (`runMigrationAssessment`, whose results appear on the
//! instance once uploaded). It then asks for
//!
//! - the instance and its databases (`GET`), on whose facts milink's own rules run
//!   ([`assess_through_arc`]; the rules whose facts Arc does not report are not evaluated);
//! - Arc's MI link assessment with all categories (`runManagedInstanceLinkAssessment`);
//! - Arc's migration assessment (feature findings, SKU recommendation) from the instance.
//!
//! The section ([`ArcSection`]) shows each of Arc's findings beside milink's: each MI link check
//! with milink's rule for it (if milink has one) and what that rule concluded, on Arc's facts
//! and over T-SQL (the lab's own assessment, which reads every fact); each migration feature
//! with milink's rule of the same id; Arc's SKU recommendation; where the two disagree, both
//! pieces of evidence; and what the Arc extension needs to create, cut over and cancel the link
//! (the Azure RBAC operation and its just-in-time SQL permissions). [`ArcSection::text`] is the
//! lab's summary; the section is serde data for `--json`.

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use milink_core::arc::assessment::{ARC_RULES, arc_check_rule, assess_through_arc};
use milink_core::arc::client::ArcSqlServer;
use milink_core::arc::models::{ArcAnswer, MiLinkAssessmentResult, MiLinkCheck};
use milink_core::arc::permissions::{
    ArcPermissions, EXTENSION_ACCOUNT, EXTENSION_FALLBACK_ACCOUNT,
};
use milink_core::arc::{ArcOp, MiLinkAssessmentRequest};
use milink_core::arm::client::{ArmOptions, StaticToken};
use milink_core::assess::{self, AssessOptions, Finding, ReadinessReport, Scope, Severity};
use milink_core::lifecycle::LinkSpec;
use milink_core::names::DatabaseName;
use milink_core::secret::Secret;
use milink_core::sim::Sim;
use milink_core::sim::arm_https::{ArmHttpsServer, ArmServerConfig, RequestCounts, difference};
use serde::{Deserialize, Serialize};

/// The prefix of a finding that records a disagreement between Arc and milink.
pub const DISAGREEMENT: &str = "Arc.Disagreement.";

/// One database's verdict by each route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArcVerdict {
    /// The database.
    pub database: String,
    /// Through Arc: milink's rules on Arc's facts with both of Arc's assessments merged.
    pub through_arc: String,
    /// milink over T-SQL (every fact read).
    pub over_tsql: String,
}

/// What milink's rule concluded on one side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MilinkSays {
    /// `fails (blocker)`, `fails (warning)`, `passes` or `not evaluated`.
    pub result: String,
    /// The evidence of the finding, or why it was not evaluated; empty for a pass.
    pub evidence: String,
}

/// One of Arc's MI link checks beside milink's rule for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArcCheckRow {
    /// Arc's check (`AlwaysOn`, `DatabaseRecoveryModel`, …).
    pub check: String,
    /// Its category.
    pub category: String,
    /// `Success`, `Warning` or `Failure`.
    pub status: String,
    /// What Arc checked.
    pub information: String,
    /// The databases that fail it.
    pub failing_databases: Vec<String>,
    /// milink's rule for the same requirement, if it has one.
    pub milink_rule: Option<String>,
    /// What that rule concluded on Arc's facts.
    pub milink_on_arc_facts: Option<MilinkSays>,
    /// What that rule concluded over T-SQL.
    pub milink_over_tsql: Option<MilinkSays>,
}

/// One feature of Arc's migration assessment beside milink's rule of the same id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArcFeatureRow {
    /// The feature id (`TraceFlags`, `FileStream`, …).
    pub feature: String,
    /// `Issue` or `Warning`.
    pub category: String,
    /// The impacted objects.
    pub impacted: Vec<String>,
    /// milink's rule of the same id, if it has one.
    pub milink_rule: Option<String>,
    /// What that rule concluded on Arc's facts.
    pub milink_on_arc_facts: Option<MilinkSays>,
    /// What that rule concluded over T-SQL.
    pub milink_over_tsql: Option<MilinkSays>,
}

/// Arc's SKU recommendation for Azure SQL Managed Instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArcSku {
    /// `Ready`, `ReadyWithConditions`, `NotReady` or `Unknown`.
    pub status: String,
    /// The service tier.
    pub service_tier: Option<String>,
    /// The vCores.
    pub vcores: Option<f64>,
    /// The server blocker issues Arc counted.
    pub server_blockers: Option<i32>,
}

/// Where Arc and milink disagree: both pieces of evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArcDisagreement {
    /// Arc's check or migration feature (`AlwaysOn`, `TraceFlags`, …).
    pub subject: String,
    /// Which of milink's assessments disagrees: `on Arc's facts` or `over T-SQL`.
    pub route: String,
    /// milink's rule.
    pub milink_rule: String,
    /// What milink says, with its evidence.
    pub milink: String,
    /// What Arc says, with its evidence.
    pub arc: String,
}

/// The two routes of milink's own assessment, as [`ArcDisagreement::route`] names them.
pub const ROUTES: [&str; 2] = ["on Arc's facts", "over T-SQL"];

/// What the Arc extension needs for one step of the link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArcStepPermissions {
    /// `create`, `cutover` or `cancel`.
    pub step: String,
    /// The REST operation (the RBAC operation the portal's pane names).
    pub operation: String,
    /// The Azure RBAC action to grant on the Arc resource.
    pub rbac_action: String,
    /// The SQL permissions the extension grants itself just in time.
    pub jit_sql: Vec<String>,
}

/// The lab's readiness through Azure Arc, beside milink's own: one report section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArcSection {
    /// The Arc resource assessed.
    pub arc_instance: String,
    /// The instance's verdict through Arc.
    pub instance_verdict: String,
    /// Each database's verdict by each route.
    pub verdicts: Vec<ArcVerdict>,
    /// Arc's MI link checks.
    pub checks: Vec<ArcCheckRow>,
    /// Arc's migration assessment's features for Azure SQL Managed Instance.
    pub migration: Vec<ArcFeatureRow>,
    /// Arc's SKU recommendation.
    pub sku: Option<ArcSku>,
    /// Where Arc and milink disagree.
    pub disagreements: Vec<ArcDisagreement>,
    /// milink's rules not evaluated through Arc (Arc does not report their facts).
    pub not_evaluated: Vec<String>,
    /// What the extension needs for each step of the link.
    pub permissions: Vec<ArcStepPermissions>,
    /// The requests sent to the simulated Azure, by method and route.
    pub requests: RequestCounts,
}

/// Assesses the lab's SQL Server through Azure Arc (see the module docs) for the link of
/// `spec`, on `sim`'s world served over loopback HTTPS. The world's time moves on as Arc's
/// operations are polled.
pub async fn assess_lab_through_arc(
    sim: &Sim,
    spec: &LinkSpec,
) -> Result<ArcSection, Box<dyn Error>> {
    let token = Secret::new("arc-lab-token");
    let server =
        ArmHttpsServer::start(ArmServerConfig::with_token(token.clone()), sim.clone()).await?;
    let options = ArmOptions::builder()
        .endpoint(server.base_url())
        .trust_root_der(server.certificate_der().to_vec())
        .build();
    let id = sim
        .with_world(|w| w.arc_instance_id())
        .ok_or("the lab's SQL Server has no Arc resource id")?;
    let arc = ArcSqlServer::with_timer(
        id.clone(),
        spec.target.instance.clone(),
        Arc::new(StaticToken::new(token)),
        options,
        Arc::new(sim.clock()),
    )?;
    let before = server.request_counter().snapshot();

    // Arc's migration assessment is a job whose results appear on the instance later.
    arc.run(&ArcOp::RunMigrationAssessment, Duration::from_secs(10), 1)
        .await?;
    let reader = arc.read_only();
    let mut instance = reader.instance().await?;
    for _ in 0..60 {
        if instance
            .properties
            .migration
            .as_ref()
            .is_some_and(|m| m.assessment.is_some())
        {
            break;
        }
        sim.advance(Duration::from_secs(30));
        instance = reader.instance().await?;
    }
    let databases = reader.databases().await?;
    // Every database Arc reports, not only the link's: the lab shows which could be linked.
    let names: Vec<DatabaseName> = databases
        .iter()
        .filter_map(|d| DatabaseName::new(d.name.as_deref()?).ok())
        .collect();
    let request = MiLinkAssessmentRequest {
        managed_instance: spec.target.instance.clone(),
        managed_instance_role: None,
        databases: names.clone(),
        availability_group: spec.source.ag.clone(),
        link: spec.link.clone(),
        categories: Vec::new(),
        sql_server_ip: None,
    };
    let checks = match reader
        .run(
            &ArcOp::RunMiLinkAssessment(Box::new(request)),
            Duration::from_secs(10),
            200,
        )
        .await?
    {
        Some(ArcAnswer::MiLinkAssessment(result)) => result,
        _ => return Err("Arc's MI link assessment ended without its checks".into()),
    };
    let target = reader.managed_instance().target_facts().await?;
    let options = AssessOptions {
        databases: Some(names.clone()),
        ..AssessOptions::at(sim.now())
    };
    let through_arc = assess_through_arc(
        &instance,
        &databases,
        Some(&checks),
        Some(&target),
        &options,
    )?;

    // milink over T-SQL: every fact, as the lab's readiness phase reads them.
    let (facts, db_facts, tsql_target) =
        sim.with_world(|w| (w.instance_facts(), w.database_facts(), w.target_facts()));
    let over_tsql = assess::assess(&facts, &db_facts, Some(&tsql_target), &options);

    let requests = difference(&server.request_counter().snapshot(), &before);
    Ok(section(
        id.to_string(),
        &through_arc,
        &over_tsql,
        &checks,
        &instance,
        requests,
    ))
}

fn scope_text(scope: &Scope) -> String {
    match scope {
        Scope::Instance => "instance".to_owned(),
        Scope::Database(d) => d.to_string(),
    }
}

fn severity_text(s: Severity) -> &'static str {
    match s {
        Severity::Blocker => "blocker",
        Severity::Warning => "warning",
        _ => "info",
    }
}

/// What `report` concluded on `rule` (for the scopes `databases`, or the instance when empty).
fn says(report: &ReadinessReport, rule: &str, databases: &[String]) -> MilinkSays {
    let in_scope = |scope: &Scope| match scope {
        Scope::Database(d) => {
            databases.is_empty() || databases.iter().any(|x| x.eq_ignore_ascii_case(d.as_str()))
        }
        _ => true,
    };
    let found: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.rule_id == rule && in_scope(&f.scope))
        .collect();
    if let Some(worst) = found.iter().max_by_key(|f| f.severity) {
        let evidence = found
            .iter()
            .map(|f| format!("{}: {}", scope_text(&f.scope), f.evidence.summary))
            .collect::<Vec<_>>()
            .join("; ");
        return MilinkSays {
            result: format!("fails ({})", severity_text(worst.severity)),
            evidence,
        };
    }
    if let Some(n) = report.not_evaluated.iter().find(|n| n.rule_id == rule) {
        return MilinkSays {
            result: "not evaluated".to_owned(),
            evidence: n.reason.clone(),
        };
    }
    MilinkSays {
        result: "passes".to_owned(),
        evidence: String::new(),
    }
}

fn check_row(
    check: &MiLinkCheck,
    through_arc: &ReadinessReport,
    over_tsql: &ReadinessReport,
) -> ArcCheckRow {
    let name = check.name.clone().unwrap_or_default();
    let rule = arc_check_rule(&name);
    ArcCheckRow {
        category: check
            .category
            .as_ref()
            .map_or_else(String::new, |c| c.as_str().to_owned()),
        status: check
            .status
            .as_ref()
            .map_or_else(|| "unknown".to_owned(), |s| s.as_str().to_owned()),
        information: check.information.clone().unwrap_or_default(),
        failing_databases: check.failing_dbs.clone(),
        milink_rule: rule.map(str::to_owned),
        milink_on_arc_facts: rule.map(|r| says(through_arc, r, &[])),
        milink_over_tsql: rule.map(|r| says(over_tsql, r, &[])),
        check: name,
    }
}

fn section(
    arc_instance: String,
    through_arc: &ReadinessReport,
    over_tsql: &ReadinessReport,
    checks: &MiLinkAssessmentResult,
    instance: &milink_core::arc::models::SqlServerInstance,
    requests: RequestCounts,
) -> ArcSection {
    let verdicts = through_arc
        .databases
        .iter()
        .map(|d| ArcVerdict {
            database: d.name.to_string(),
            through_arc: d.verdict.name().to_owned(),
            over_tsql: over_tsql
                .verdict_of(d.name.as_str())
                .map_or_else(|| "unknown".to_owned(), |v| v.name().to_owned()),
        })
        .collect();
    let checks: Vec<ArcCheckRow> = checks
        .assessments
        .iter()
        .map(|c| check_row(c, through_arc, over_tsql))
        .collect();
    let assessment = instance
        .properties
        .migration
        .as_ref()
        .and_then(|m| m.assessment.as_ref());
    let migration: Vec<ArcFeatureRow> = assessment
        .map(|a| {
            a.managed_instance_findings()
                .filter_map(|f| {
                    let feature = f.feature_id.clone()?;
                    let rule = assess::RULES
                        .iter()
                        .find(|r| r.id == feature)
                        .map(|r| r.id.to_owned());
                    let impacted: Vec<String> = f
                        .impacted_objects
                        .iter()
                        .filter_map(|o| o.name.clone())
                        .collect();
                    Some(ArcFeatureRow {
                        milink_on_arc_facts: rule.as_deref().map(|r| says(through_arc, r, &[])),
                        milink_over_tsql: rule.as_deref().map(|r| says(over_tsql, r, &[])),
                        milink_rule: rule,
                        category: f.issue_category.clone().unwrap_or_default(),
                        impacted,
                        feature,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let sku = assessment
        .and_then(|a| a.managed_instance_sku())
        .map(|s| ArcSku {
            status: s
                .recommendation_status
                .as_ref()
                .map_or_else(|| "Unknown".to_owned(), |s| s.as_str().to_owned()),
            service_tier: s
                .target_sku
                .as_ref()
                .and_then(|t| t.category.as_ref())
                .and_then(|c| c.sql_service_tier.clone()),
            vcores: s.target_sku.as_ref().and_then(|t| t.compute_size),
            server_blockers: s.number_of_server_blocker_issues,
        });
    let disagreements = disagreements(&checks, &migration, [through_arc, over_tsql]);
    let mut not_evaluated: Vec<String> = through_arc
        .not_evaluated
        .iter()
        .filter(|n| !ARC_RULES.contains(&n.rule_id.as_str()))
        .map(|n| n.rule_id.clone())
        .collect();
    not_evaluated.sort();
    not_evaluated.dedup();
    ArcSection {
        arc_instance,
        instance_verdict: through_arc.instance_verdict.name().to_owned(),
        verdicts,
        checks,
        migration,
        sku,
        disagreements,
        not_evaluated,
        permissions: link_permissions(),
        requests,
    }
}

/// What the extension needs to create, cut over and cancel a link
/// ([`ArcPermissions::link_steps`]; the report through Arc names the same in its
/// `Arc.ExtensionPermissions` finding).
pub fn link_permissions() -> Vec<ArcStepPermissions> {
    ArcPermissions::link_steps()
        .iter()
        .map(|p| ArcStepPermissions {
            step: p.step.unwrap_or_default().to_owned(),
            operation: p.operation_id.to_owned(),
            rbac_action: p.rbac_action.clone(),
            jit_sql: p.jit_sql.iter().map(|s| (*s).to_owned()).collect(),
        })
        .collect()
}

fn milink_text(rule: &str, says: &MilinkSays) -> String {
    if says.evidence.is_empty() {
        format!("{rule} {}", says.result)
    } else {
        format!("{rule} {}: {}", says.result, says.evidence)
    }
}

/// Where Arc's findings and milink's (on each route) disagree: a check or feature Arc fails
/// and milink's rule passes, a check Arc passes and milink's rule fails, and a compatibility
/// finding of milink's that Arc's migration assessment does not list. A rule milink could not
/// evaluate on a route is no disagreement (the section lists it as not evaluated).
fn disagreements(
    checks: &[ArcCheckRow],
    migration: &[ArcFeatureRow],
    reports: [&ReadinessReport; 2],
) -> Vec<ArcDisagreement> {
    let mut out = Vec::new();
    let mut compare = |subject: &str,
                       arc_fails: bool,
                       arc: String,
                       rule: &Option<String>,
                       sides: [&Option<MilinkSays>; 2]| {
        let Some(rule) = rule else { return };
        for (route, says) in ROUTES.iter().zip(sides) {
            let Some(says) = says else { continue };
            if says.result == "not evaluated" {
                continue;
            }
            if says.result.starts_with("fails") != arc_fails {
                out.push(ArcDisagreement {
                    subject: subject.to_owned(),
                    route: (*route).to_owned(),
                    milink_rule: rule.clone(),
                    milink: milink_text(rule, says),
                    arc: arc.clone(),
                });
            }
        }
    };
    for c in checks {
        let failing = if c.failing_databases.is_empty() {
            String::new()
        } else {
            format!(", failing: {}", c.failing_databases.join(", "))
        };
        compare(
            &c.check,
            c.status != "Success",
            format!(
                "MI link check {}: {} ({}{failing})",
                c.check, c.status, c.information
            ),
            &c.milink_rule,
            [&c.milink_on_arc_facts, &c.milink_over_tsql],
        );
    }
    for f in migration {
        compare(
            &f.feature,
            true,
            format!(
                "migration assessment: {} {} (impacted: {})",
                f.feature,
                f.category,
                f.impacted.join(", ")
            ),
            &f.milink_rule,
            [&f.milink_on_arc_facts, &f.milink_over_tsql],
        );
    }
    // milink's compatibility findings (rule ids without a dot) Arc does not list.
    for (route, report) in ROUTES.iter().zip(reports) {
        for f in &report.findings {
            if f.rule_id.contains('.') || migration.iter().any(|m| m.feature == f.rule_id) {
                continue;
            }
            out.push(ArcDisagreement {
                subject: f.rule_id.clone(),
                route: (*route).to_owned(),
                milink_rule: f.rule_id.clone(),
                milink: format!(
                    "{} fails ({}): {}: {}",
                    f.rule_id,
                    severity_text(f.severity),
                    scope_text(&f.scope),
                    f.evidence.summary
                ),
                arc: "migration assessment does not list it".to_owned(),
            });
        }
    }
    out
}

fn says_text(s: &Option<MilinkSays>) -> String {
    match s {
        None => "-".to_owned(),
        Some(s) => s.result.clone(),
    }
}

impl ArcSection {
    /// The section as the lab's summary prints it.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line("Readiness through Azure Arc, beside milink's".to_owned());
        line(format!("  Arc resource: {}", self.arc_instance));
        line(format!("  instance through Arc: {}", self.instance_verdict));
        for v in &self.verdicts {
            line(format!(
                "  {}: {} through Arc, {} over T-SQL",
                v.database, v.through_arc, v.over_tsql
            ));
        }
        line("  Arc's MI link checks (milink's rule: on Arc's facts / over T-SQL):".to_owned());
        for c in &self.checks {
            let failing = if c.failing_databases.is_empty() {
                String::new()
            } else {
                format!(" [{}]", c.failing_databases.join(", "))
            };
            line(format!(
                "    {:<28} {:<8}{failing} -> {}: {} / {}",
                c.check,
                c.status,
                c.milink_rule.as_deref().unwrap_or("no rule of milink's"),
                says_text(&c.milink_on_arc_facts),
                says_text(&c.milink_over_tsql),
            ));
        }
        line("  Arc's migration assessment (Azure SQL Managed Instance):".to_owned());
        for f in &self.migration {
            line(format!(
                "    {:<28} {:<8} [{}] -> {}: {} / {}",
                f.feature,
                f.category,
                f.impacted.join(", "),
                f.milink_rule.as_deref().unwrap_or("no rule of milink's"),
                says_text(&f.milink_on_arc_facts),
                says_text(&f.milink_over_tsql),
            ));
        }
        if let Some(sku) = &self.sku {
            line(format!(
                "  Arc's SKU recommendation: {}, {} with {} vCores ({} server blockers)",
                sku.status,
                sku.service_tier.as_deref().unwrap_or("?"),
                sku.vcores.map_or_else(|| "?".to_owned(), |v| v.to_string()),
                sku.server_blockers
                    .map_or_else(|| "?".to_owned(), |v| v.to_string()),
            ));
        }
        if self.disagreements.is_empty() {
            line("  Arc and milink agree on every finding they share".to_owned());
        } else {
            line("  where Arc and milink disagree:".to_owned());
            for d in &self.disagreements {
                line(format!("    {} (milink {})", d.subject, d.route));
                line(format!("      milink: {}", d.milink));
                line(format!("      Arc:    {}", d.arc));
            }
        }
        line(format!(
            "  not evaluated through Arc: {} of milink's rules (Arc does not report their \
             facts; listed in the JSON)",
            self.not_evaluated.len(),
        ));
        line(format!(
            "  what the Arc extension needs (as {EXTENSION_ACCOUNT}; without least privilege, \
             {EXTENSION_FALLBACK_ACCOUNT} needs sysadmin for cutover and cancel):"
        ));
        for p in &self.permissions {
            line(format!(
                "    {:<8} RBAC {} ; SQL {}",
                p.step,
                p.rbac_action,
                p.jit_sql.join(", ")
            ));
        }
        let total: u64 = self.requests.values().sum();
        let detail: BTreeMap<&str, u64> = self
            .requests
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        line(format!("  {total} requests to Azure: {detail:?}"));
        out
    }
}
