//! The readiness phase: the instance and its databases assessed, the verdict recorded on the link.

use std::error::Error;
use std::sync::Arc;

use milink_core::LinkSession;
use milink_core::assess::{
    self, AssessOptions, Fix, InstanceFacts, NetworkProbe, ProbeKind, ProbeOutcome,
    ReadinessReport, Scope, Severity, TargetFacts, Verdict,
};

use milink_core::lifecycle::{AssessmentOutcome, FailoverMode, LinkSpec};
use milink_core::sim::Sim;

use super::phases::Run;
use super::report::{DatabaseReport, FindingReport, clip};

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Blocker => "blocker",
        Severity::Warning => "warning",
        _ => "info",
    }
}

fn fix_text(f: &Fix) -> String {
    match f {
        Fix::Sql(s) => {
            let first = s
                .sql
                .lines()
                .find(|l| !l.trim().is_empty() && !l.starts_with("USE "))
                .unwrap_or_default();
            format!("run T-SQL ({}): {}", s.purpose, first.trim())
        }
        Fix::Action(a) => a.clone(),
        Fix::None => String::new(),
    }
}

/// The lab's readiness assessment: what was read and what it concluded. Nothing is changed.
pub(super) struct Assessed {
    /// The SQL Server instance.
    pub(super) instance: InstanceFacts,
    /// The managed instance.
    pub(super) target: TargetFacts,
    /// The assessment.
    pub(super) report: ReadinessReport,
    /// Each database's verdict and findings, as the lab reports them.
    pub(super) databases: Vec<DatabaseReport>,
}

/// Assesses the simulated instance and its databases for the link of `spec`.
pub(super) fn assess_lab(sim: &Sim, spec: &LinkSpec) -> Assessed {
    let (instance, databases, target, now) = sim.with_world(|w| {
        (
            w.instance_facts(),
            w.database_facts(),
            w.target_facts(),
            w.now,
        )
    });
    let network = vec![NetworkProbe {
        kind: ProbeKind::MiEndpoint,
        host: target.fqdn.to_string(),
        port: 5022,
        outcome: ProbeOutcome::Reachable,
        elapsed_ms: 21,
    }];
    let options = AssessOptions {
        failback: spec.failover_mode == FailoverMode::Manual,
        network,
        ..AssessOptions::at(now)
    };
    let report = assess::assess(&instance, &databases, Some(&target), &options);
    let databases = report
        .databases
        .iter()
        .map(|d| DatabaseReport {
            name: d.name.to_string(),
            verdict: d.verdict.name().to_owned(),
            findings: report
                .database_findings(d.name.as_str())
                .filter(|f| f.severity != Severity::Info)
                .map(|f| FindingReport {
                    rule: f.rule_id.clone(),
                    severity: severity(f.severity).to_string(),
                    title: f.title.clone(),
                    evidence: f.evidence.summary.clone(),
                    fix: fix_text(&f.fix),
                })
                .collect(),
        })
        .collect();
    Assessed {
        instance,
        target,
        report,
        databases,
    }
}

/// The read-only probes the readiness phase reads `instance` with, as the plan prints them.
pub(super) fn probes(instance: &InstanceFacts) -> String {
    let mut out =
        "-- Readiness: read-only probes, one batch each, whatever the number of databases"
            .to_string();
    let probes = std::iter::once(milink_core::tsql::readiness::instance_properties()).chain(
        milink_core::tsql::readiness::version_probes(instance.version),
    );
    for b in probes {
        out.push_str(&format!(
            "\n-- [SQL Server] {}\n{}",
            b.purpose(),
            b.display_sql().trim_end()
        ));
    }
    out
}

impl Run {
    /// The Arc route's assessment, beside milink's (`crate::arc_assessment`): milink's rules on
    /// the facts Arc reports, Arc's MI link assessment and its migration assessment, over HTTPS
    /// with the real client, each database's verdict through Arc and over T-SQL, and where the
    /// two disagree. It goes into the narration and the `--json` report; the verdict the link
    /// records stays milink's own assessment's, as on the direct route.
    async fn assess_through_arc(&mut self) -> Result<(), Box<dyn Error>> {
        if self.arc.is_none() {
            return Ok(());
        }
        let section = crate::arc_assessment::assess_lab_through_arc(&self.sim, &self.spec).await?;
        let n = Arc::clone(&self.narrator);
        for line in section.text().lines() {
            n.line(line);
        }
        self.report.arc_assessment = Some(section);
        Ok(())
    }

    /// Assesses the instance and its databases, and records the verdict on a draft link.
    pub(super) async fn readiness(&mut self) -> Result<(), Box<dyn Error>> {
        let Assessed {
            instance,
            target,
            report,
            databases,
        } = assess_lab(&self.sim, &self.spec);
        self.report.databases = databases;
        let n = Arc::clone(&self.narrator);
        n.line(&format!(
            "{} {} {} -> {} ({}, {} vCores, {:?} update policy)",
            instance.server_name,
            instance.version,
            instance.edition,
            target.fqdn,
            target.tier,
            target.vcores,
            self.spec.target.update_policy
        ));
        for (d, assessed) in self.report.databases.iter().zip(&report.databases) {
            let verdict = match assessed.verdict {
                Verdict::Ready => "READY",
                Verdict::ReadyWithWarnings => "READY (with warnings)",
                Verdict::NotReady => "NOT READY",
            };
            n.line(&format!("{:<14}{verdict}", d.name));
            for f in d.findings.iter().filter(|f| f.severity == "blocker") {
                n.line(&format!("    x {}: {}", f.rule, clip(&f.evidence, 90)));
                n.line(&format!("      fix: {}", clip(&f.fix, 100)));
            }
        }
        let instance_blockers: Vec<String> = report
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Blocker && f.scope == Scope::Instance)
            .map(|f| format!("{}: {}", f.rule_id, f.title))
            .collect();
        for b in &instance_blockers {
            n.line(&format!("instance blocker {b}"));
        }
        if let Some(sku) = &report.sku {
            n.line(&format!(
                "SKU for the linked databases: {} {} {} vCores, {} GB",
                sku.tier, sku.hardware, sku.vcores, sku.storage_gb
            ));
        }
        if self.arc.is_some() {
            self.assess_through_arc().await?;
        }
        // No command accepted yet: the link is still a draft.
        if self.status().operation.is_none() {
            // The instance's blockers and the linked database's, as the report has them.
            let blockers = report
                .outcome_for(std::slice::from_ref(&self.database))
                .blockers;
            self.session
                .record_assessment(AssessmentOutcome { blockers })
                .await?;
            n.drain();
            n.line(&format!(
                "{} is linked; Customer360 stays on SQL Server until its blockers are fixed",
                self.database
            ));
        }
        Ok(())
    }
}
