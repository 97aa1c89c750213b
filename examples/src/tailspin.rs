//! The Tailspin lab end to end on the simulator: readiness, link creation, seeding, replication
//! under a running workload, planned failover with the LSN check, validation of every row, and
//! optionally failback or a one-way cutover; interrupted runs continue from their journal.
//!
//! The real session driver and lifecycle machine run unchanged; only the servers are simulated.

use std::error::Error;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use milink_core::assess::{
    self, AssessOptions, Fix, NetworkProbe, ProbeKind, ProbeOutcome, Scope, Severity,
};
use milink_core::journal::FileJournal;
use milink_core::lifecycle::{
    AssessmentOutcome, CutoverOptions, FailoverKind, LinkSpec, Side, State,
};
use milink_core::names::DatabaseName;
use milink_core::sim::{
    CrashPoint, CrashingJournal, DbSnapshot, Lab, ParityReport, Sim, WorkloadStats, World,
};
use milink_core::time::Timestamp;
use milink_core::{LinkSession, MemoryJournal, Session, SessionError, SessionOptions};
use serde::{Deserialize, Serialize};

use milink_core::redirect::{ConnectionString, FileRedirectHook, RedirectOptions};

use crate::app::{App, AppState, ORIGINAL_CONNECTION_STRING, WORKLOAD_TPS, WorkloadLedger};
use crate::narrate::{LsnCheck, Narrated, Narrator, elapsed, side_name};

/// The command line.
pub const USAGE: &str = "\
usage: tailspin [--seed N] [--plan] [--failback | --cutover] [--crash-after RECORD]
                [--resume JOURNAL] [--json] [--journal-dir DIR]

  --seed N              seed of the simulated world (default 1); the same seed gives the same run
  --plan                print every T-SQL batch and ARM call the run would make; nothing is sent
  --failback            after the failover, fail back to SQL Server
  --cutover             one-way migration: the link ends removed and the DAG dropped
  --crash-after RECORD  stop the orchestrator right after journal record RECORD (>= 1)
  --resume JOURNAL      continue an interrupted run from its journal
  --json                print only one JSON document (verdicts, phases, failover, parity, journal)
  --journal-dir DIR     where journals are written (default: the system temp dir)";

/// Parsed command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    /// World seed.
    pub seed: u64,
    /// Plan mode.
    pub plan: bool,
    /// Fail back after the failover.
    pub failback: bool,
    /// One-way cutover instead of a failover.
    pub cutover: bool,
    /// Crash after this journal record.
    pub crash_after: Option<u64>,
    /// Resume from this journal.
    pub resume: Option<PathBuf>,
    /// JSON output only.
    pub json: bool,
    /// Where journals go.
    pub journal_dir: PathBuf,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: 1,
            plan: false,
            failback: false,
            cutover: false,
            crash_after: None,
            resume: None,
            json: false,
            journal_dir: std::env::temp_dir().join("milink-tailspin"),
        }
    }
}

impl Options {
    /// Parses the arguments after the program name.
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match a.as_str() {
                "--seed" => {
                    o.seed = value("--seed")?
                        .parse()
                        .map_err(|_| "--seed takes a number".to_string())?;
                }
                "--plan" => o.plan = true,
                "--failback" => o.failback = true,
                "--cutover" => o.cutover = true,
                "--json" => o.json = true,
                "--crash-after" => {
                    let n: u64 = value("--crash-after")?
                        .parse()
                        .map_err(|_| "--crash-after takes a journal record number".to_string())?;
                    if n == 0 {
                        return Err(
                            "--crash-after counts from 1 (record 1 creates the link's journal)"
                                .into(),
                        );
                    }
                    o.crash_after = Some(n);
                }
                "--resume" => o.resume = Some(PathBuf::from(value("--resume")?)),
                "--journal-dir" => o.journal_dir = PathBuf::from(value("--journal-dir")?),
                "-h" | "--help" => return Err(USAGE.to_string()),
                other => return Err(format!("unknown argument {other}\n\n{USAGE}")),
            }
        }
        if o.failback && o.cutover {
            return Err(
                "--failback and --cutover exclude each other: a cutover removes the link".into(),
            );
        }
        if o.plan && (o.crash_after.is_some() || o.resume.is_some()) {
            return Err("--plan runs nothing, so it cannot crash or resume".into());
        }
        Ok(o)
    }
}

/// One phase's duration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseTime {
    /// Phase name.
    pub name: String,
    /// Virtual seconds.
    pub virtual_seconds: f64,
    /// Wall milliseconds.
    pub wall_ms: f64,
}

/// One readiness finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingReport {
    /// Rule id.
    pub rule: String,
    /// `blocker`, `warning` or `info`.
    pub severity: String,
    /// Rule title.
    pub title: String,
    /// What was seen.
    pub evidence: String,
    /// How to fix it.
    pub fix: String,
}

/// One database's readiness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseReport {
    /// Name.
    pub name: String,
    /// `Ready`, `ReadyWithWarnings` or `NotReady`.
    pub verdict: String,
    /// Its findings (blockers and warnings).
    pub findings: Vec<FindingReport>,
}

/// A role change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleChangeReport {
    /// `planned`, `failback` or `cutover`.
    pub kind: String,
    /// The side that is primary afterwards.
    pub primary: String,
    /// The machine flagged possible data loss.
    pub data_loss: bool,
    /// Transactions the simulator counted as lost.
    pub lost_transactions: u64,
    /// The LSNs compared before the role change.
    pub lsn_check: Option<LsnCheck>,
    /// The machine's evidence of lost transactions (old primary's log beyond what the other
    /// side hardened), one line per database; empty when every check passed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loss_evidence: Vec<String>,
}

/// One table compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableReport {
    /// Table.
    pub table: String,
    /// Rows on the side the data came from.
    pub expected_rows: u64,
    /// Rows on the other side.
    pub actual_rows: u64,
    /// Checksums equal as well as counts.
    pub matches: bool,
}

/// A parity check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParityOut {
    /// What was compared.
    pub compared: String,
    /// Database.
    pub database: String,
    /// Every table matches.
    pub all_match: bool,
    /// Per table.
    pub tables: Vec<TableReport>,
}

/// The run's result (the `--json` document).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Seed.
    pub seed: u64,
    /// SQL Server.
    pub server: String,
    /// Managed instance.
    pub target: String,
    /// Readiness per database.
    pub databases: Vec<DatabaseReport>,
    /// Phases with virtual and wall times.
    pub phases: Vec<PhaseTime>,
    /// The failover (or cutover).
    pub failover: Option<RoleChangeReport>,
    /// The failback, if run.
    pub failback: Option<RoleChangeReport>,
    /// Parity checks.
    pub parity: Vec<ParityOut>,
    /// The link's final state.
    pub final_state: String,
    /// The journal file.
    pub journal: Option<String>,
    /// `completed`, `crashed` or `planned`.
    pub outcome: String,
    /// Set when the run stopped after a journal record on purpose.
    pub crashed_after_record: Option<u64>,
    /// The run continued from a journal.
    pub resumed: bool,
    /// What the application did.
    pub workload: WorkloadStats,
    /// How the application followed the role changes: the redirects made through the hook, where
    /// each write landed (one leg per connection) and the writes refused by the old primary.
    #[serde(default)]
    pub redirect: WorkloadLedger,
}

/// What an interrupted run leaves next to its journal to continue with.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Saved {
    options: Options,
    world: World,
    next_phase: usize,
    /// When the interrupted phase began (virtual) and the wall time it had used.
    phase_started: Timestamp,
    phase_wall_ms: f64,
    before: Option<DbSnapshot>,
    report: Report,
    /// The application's connection and ledger.
    #[serde(default)]
    app: AppState,
}

/// The file next to a journal that holds the world of an interrupted run.
pub fn sidecar(journal: &Path) -> PathBuf {
    let mut s = journal.as_os_str().to_owned();
    s.push(".world.json");
    PathBuf::from(s)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Readiness,
    Link,
    Replication,
    Failover,
    Validation,
    Failback,
    ValidationBack,
    Cutover,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Readiness => "readiness",
            Phase::Link => "link",
            Phase::Replication => "replication",
            Phase::Failover => "failover",
            Phase::Validation => "validation",
            Phase::Failback => "failback",
            Phase::ValidationBack => "validation after failback",
            Phase::Cutover => "cutover",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Phase::Readiness => "Readiness",
            Phase::Link => "Link creation and seeding (the application keeps writing)",
            Phase::Replication => "Replication under the running workload",
            Phase::Failover => "Planned failover to the managed instance",
            Phase::Validation => "Validation: every row committed before the failover",
            Phase::Failback => "Failback to SQL Server",
            Phase::ValidationBack => "Validation: every row written on the managed instance",
            Phase::Cutover => "Cutover: one-way migration, link removed",
        }
    }
}

fn phases(o: &Options) -> Vec<Phase> {
    let mut p = vec![Phase::Readiness, Phase::Link, Phase::Replication];
    if o.cutover {
        p.extend([Phase::Cutover, Phase::Validation]);
    } else {
        p.extend([Phase::Failover, Phase::Validation]);
        if o.failback {
            p.extend([Phase::Failback, Phase::ValidationBack]);
        }
    }
    p
}

/// The lab's journal: a file, or memory in plan mode (which writes nothing).
enum LabJournal {
    File(FileJournal),
    Memory(MemoryJournal),
}

impl milink_core::ports::Journal for LabJournal {
    fn append(
        &mut self,
        record: &milink_core::journal::JournalRecord,
    ) -> Result<(), milink_core::journal::JournalError> {
        match self {
            LabJournal::File(j) => j.append(record),
            LabJournal::Memory(j) => j.append(record),
        }
    }

    fn records(
        &self,
    ) -> Result<Vec<milink_core::journal::JournalRecord>, milink_core::journal::JournalError> {
        match self {
            LabJournal::File(j) => j.records(),
            LabJournal::Memory(j) => j.records(),
        }
    }

    fn location(&self) -> Option<PathBuf> {
        match self {
            LabJournal::File(j) => j.location(),
            LabJournal::Memory(j) => j.location(),
        }
    }
}

type Journal = CrashingJournal<LabJournal>;
type LabSession = Session<
    Narrated<milink_core::sim::SimSqlServer>,
    Narrated<milink_core::sim::SimManagedInstance>,
    Journal,
>;

struct Run {
    sim: Sim,
    spec: LinkSpec,
    database: DatabaseName,
    narrator: Arc<Narrator>,
    session: LabSession,
    report: Report,
    before: Option<DbSnapshot>,
    start: Timestamp,
    app: Arc<App>,
}

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

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

impl Run {
    fn n(&self) -> &Narrator {
        &self.narrator
    }

    fn state(&self) -> State {
        self.session.machine().state().clone()
    }

    /// The machine's data-loss evidence so far, one line each, and printed loudly.
    fn loss_evidence(&mut self) -> Vec<String> {
        let machine = self.session.machine();
        let lines: Vec<String> = machine
            .data_loss()
            .iter()
            .map(ToString::to_string)
            .chain(
                machine
                    .unverified()
                    .iter()
                    .map(|note| format!("NOT VERIFIED: {note}")),
            )
            .collect();
        for line in &lines {
            self.n().line(&format!("!!! {line}"));
        }
        lines
    }

    fn stop_workload(&self, why: &str) {
        let stats = self.app.pause();
        self.n().line(&format!(
            "application stopped ({why}): {} transactions, {} rows committed so far",
            thousands(stats.committed),
            thousands(stats.rows)
        ));
    }

    /// Asks the current primary who is still connected to the link's databases.
    async fn quiet_check(&self) {
        match self.session.check_workload_quiet().await {
            Ok(activity) => {
                for (i, line) in activity.summary().lines().enumerate() {
                    let line = line.trim_start();
                    self.n().line(&if i == 0 {
                        format!("quiet check: {line}")
                    } else {
                        format!("  {line}")
                    });
                }
            }
            Err(e) => self.n().line(&format!("quiet check unavailable: {e}")),
        }
    }

    /// Stops the application the way the failover procedures ask, showing the check before and
    /// after.
    async fn stop_for_role_change(&self, why: &str) {
        self.quiet_check().await;
        self.stop_workload(why);
        self.quiet_check().await;
    }

    /// Tells where the session redirected the application.
    fn narrate_redirect(&self) {
        let Some(target) = self.session.status().redirect else {
            return;
        };
        self.n().line(&format!(
            "redirect hook (run once the new primary took writes, before anything was dropped): \
             the application now uses the {target}"
        ));
        self.n()
            .line(&format!("  connection string {}", target.connection_string));
        for note in &target.notes {
            self.n().line(&format!("  note: {note}"));
        }
    }

    /// The application keeps writing for a minute; a client still on the old connection
    /// string tries the old primary.
    fn writes_after_redirect(&self, old: Side) {
        self.sim.advance(Duration::from_secs(60));
        let state = self.app.state();
        if let Some(leg) = state.ledger.legs.last() {
            let now = self.sim.workload_stats();
            let since = state
                .ledger
                .leg_started
                .as_ref()
                .map_or(0, |s| now.committed.saturating_sub(s.committed));
            self.n().line(&format!(
                "application writes to the {} ({}): {} transactions since the redirect",
                leg.side,
                leg.server,
                thousands(since)
            ));
        }
        let tried = self.app.write_to_old_primary(old, 3);
        self.n().line(&format!(
            "a client still on the old connection string: {} of {} writes on the {} refused{}",
            tried.refused,
            tried.attempted,
            tried.side,
            tried.error.map(|e| format!(" ({e})")).unwrap_or_default()
        ));
    }

    async fn readiness(&mut self) -> Result<(), Box<dyn Error>> {
        let (instance, databases, target, now) = self.sim.with_world(|w| {
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
            failback: self.spec.failover_mode == milink_core::lifecycle::FailoverMode::Manual,
            network,
            ..AssessOptions::at(now)
        };
        if self.n().is_plan() {
            self.n().raw(
                "-- Readiness: read-only probes, one batch each, whatever the number of databases",
            );
            let probes = std::iter::once(milink_core::tsql::readiness::instance_properties())
                .chain(milink_core::tsql::readiness::version_probes(
                    instance.version,
                ));
            for b in probes {
                self.n().raw(&format!(
                    "-- [SQL Server] {}\n{}",
                    b.purpose(),
                    b.display_sql().trim_end()
                ));
            }
        }
        let report = assess::assess(&instance, &databases, Some(&target), &options);
        self.report.databases = report
            .databases
            .iter()
            .map(|d| DatabaseReport {
                name: d.name.to_string(),
                verdict: format!("{:?}", d.verdict),
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
        for d in &self.report.databases {
            let verdict = match d.verdict.as_str() {
                "Ready" => "READY",
                "ReadyWithWarnings" => "READY (with warnings)",
                _ => "NOT READY",
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
        if matches!(self.state(), State::Draft) {
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

    async fn link(&mut self) -> Result<(), Box<dyn Error>> {
        if !matches!(self.state(), State::Replicating { .. }) {
            if self.sim.workload_stats().committed == 0 {
                let side = self.app.start()?;
                self.n().line(&format!(
                    "application running on {}: {WORKLOAD_TPS} transactions/s into {}",
                    side_name(side),
                    self.database
                ));
            }
            self.session.start().await?;
        }
        self.n().drain();
        Ok(())
    }

    async fn replication(&mut self) -> Result<(), Box<dyn Error>> {
        let link = self.spec.link.clone();
        let refused = self
            .sim
            .write(Side::ManagedInstance, &self.database, 1)
            .err()
            .map(|e| e.code())
            .unwrap_or_else(|| "accepted".into());
        self.n().line(&format!(
            "the managed instance is a readable secondary: a write there gives {refused}"
        ));
        for _ in 0..4 {
            self.sim.advance(Duration::from_secs(30));
            let (lag, stats) = self
                .sim
                .with_world(|w| (w.lag(&link, &self.database), w.workload_stats.clone()));
            if let Some(l) = lag {
                self.n().line(&format!(
                    "lag {} ms | {} tx ({} KB) not yet hardened | LSN primary {} secondary {} | {} tx committed",
                    l.lag.as_millis(),
                    l.unshipped_transactions,
                    l.unshipped_bytes.div_ceil(1024),
                    l.primary_lsn,
                    l.secondary_lsn,
                    thousands(stats.committed)
                ));
            }
        }
        Ok(())
    }

    async fn failover(&mut self) -> Result<(), Box<dyn Error>> {
        if !matches!(self.state(), State::FailedOver { .. }) {
            if self.before.is_none() {
                self.stop_for_role_change(
                    "the docs say to stop the workload before a planned failover",
                )
                .await;
                self.before = self.sim.snapshot(Side::SqlServer, &self.database);
            }
            self.n().reset_lsn_check();
            self.session.failover(FailoverKind::Planned).await?;
        }
        self.n().drain();
        self.narrate_redirect();
        let state = self.state();
        let (primary, data_loss) = match &state {
            State::FailedOver {
                primary,
                data_loss_possible,
            } => (*primary, *data_loss_possible),
            _ => (Side::SqlServer, false),
        };
        self.n().line(&format!(
            "{} is primary; data loss possible: {}",
            side_name(primary),
            if data_loss { "yes" } else { "no" }
        ));
        let loss_evidence = self.loss_evidence();
        self.report.failover = Some(RoleChangeReport {
            kind: "planned".into(),
            primary: side_name(primary).into(),
            data_loss: data_loss || !loss_evidence.is_empty(),
            lost_transactions: self.sim.lost_transactions(&self.database),
            lsn_check: self.n().lsn_check(),
            loss_evidence,
        });
        Ok(())
    }

    fn parity(&mut self, compared: &str, actual: Side) -> ParityOut {
        let expected = self.before.clone();
        // The new primary as the redirect found it, before the application wrote to it.
        let actual_snap = self
            .app
            .at_redirect(actual)
            .or_else(|| self.sim.snapshot(actual, &self.database));
        let report = match (expected, actual_snap) {
            (Some(e), Some(a)) => ParityReport::compare(&e, &a),
            _ => ParityReport {
                database: self.database.clone(),
                expected: actual.other(),
                actual,
                tables: Vec::new(),
            },
        };
        let n = Arc::clone(&self.narrator);
        let short = |side: Side| match side {
            Side::SqlServer => "SQL Server",
            Side::ManagedInstance => "managed inst.",
        };
        n.line(&format!(
            "{:<18}{:>14}{:>14}  {}",
            "table",
            short(report.expected),
            short(report.actual),
            "rows and checksum"
        ));
        for t in &report.tables {
            n.line(&format!(
                "{:<18}{:>14}{:>14}  {}",
                t.table,
                thousands(t.expected_rows),
                thousands(t.actual_rows),
                if t.matches() { "match" } else { "MISMATCH" }
            ));
        }
        let out = ParityOut {
            compared: compared.to_string(),
            database: self.database.to_string(),
            all_match: report.all_match(),
            tables: report
                .tables
                .iter()
                .map(|t| TableReport {
                    table: t.table.clone(),
                    expected_rows: t.expected_rows,
                    actual_rows: t.actual_rows,
                    matches: t.matches(),
                })
                .collect(),
        };
        n.line(&format!(
            "{}: {} of {} tables identical",
            if out.all_match { "PASS" } else { "FAIL" },
            out.tables.iter().filter(|t| t.matches).count(),
            out.tables.len()
        ));
        out
    }

    async fn validation(&mut self) -> Result<(), Box<dyn Error>> {
        let p = self.parity(
            "SQL Server at the role change vs the managed instance",
            Side::ManagedInstance,
        );
        self.report.parity.push(p);
        if matches!(self.state(), State::FailedOver { .. } | State::Completed) {
            // The application followed the redirect: it writes to the managed instance, and SQL
            // Server refuses writes.
            self.writes_after_redirect(Side::SqlServer);
        }
        if matches!(self.state(), State::FailedOver { .. }) {
            let link = self.spec.link.clone();
            if let Some(l) = self.sim.with_world(|w| w.lag(&link, &self.database)) {
                self.n().line(&format!(
                    "replication runs back to SQL Server: lag {} ms, {} tx not yet hardened",
                    l.lag.as_millis(),
                    l.unshipped_transactions
                ));
            }
        }
        Ok(())
    }

    async fn failback(&mut self) -> Result<(), Box<dyn Error>> {
        if !matches!(self.state(), State::Replicating { .. }) {
            if self
                .before
                .as_ref()
                .is_none_or(|b| b.side != Side::ManagedInstance)
            {
                self.stop_for_role_change("before failing back").await;
                self.before = self.sim.snapshot(Side::ManagedInstance, &self.database);
            }
            self.n().reset_lsn_check();
            self.session.failback().await?;
        }
        self.n().drain();
        self.narrate_redirect();
        let loss_evidence = self.loss_evidence();
        self.report.failback = Some(RoleChangeReport {
            kind: "failback".into(),
            primary: side_name(Side::SqlServer).into(),
            data_loss: !loss_evidence.is_empty(),
            lost_transactions: self.sim.lost_transactions(&self.database),
            lsn_check: self.n().lsn_check(),
            loss_evidence,
        });
        Ok(())
    }

    async fn validation_back(&mut self) -> Result<(), Box<dyn Error>> {
        let p = self.parity(
            "the managed instance at failback vs SQL Server",
            Side::SqlServer,
        );
        self.report.parity.push(p);
        if matches!(self.state(), State::Replicating { .. }) {
            self.writes_after_redirect(Side::ManagedInstance);
        }
        Ok(())
    }

    async fn cutover(&mut self) -> Result<(), Box<dyn Error>> {
        if !matches!(self.state(), State::Completed) {
            if self.before.is_none() {
                self.stop_for_role_change("the application moves to the managed instance")
                    .await;
                self.before = self.sim.snapshot(Side::SqlServer, &self.database);
            }
            self.n().reset_lsn_check();
            self.session
                .cutover(CutoverOptions {
                    drop_availability_group: true,
                })
                .await?;
        }
        self.n().drain();
        self.narrate_redirect();
        let link = self.spec.link.clone();
        let (backup, dags, ags, mi_link) = self.sim.with_world(|w| {
            (
                w.latest_full_backup(&self.database),
                w.source.dags.len(),
                w.source.ags.len(),
                w.instance.links.contains_key(&link),
            )
        });
        if let Some(b) = backup {
            self.n().line(&format!(
                "first full backup on the managed instance finished at {}",
                elapsed(self.start, b)
            ));
        }
        self.n().line(&format!(
            "link on the managed instance: {}; DAG on SQL Server: {}; AG on SQL Server: {}",
            if mi_link { "present" } else { "removed" },
            if dags == 0 { "dropped" } else { "present" },
            if ags == 0 { "dropped" } else { "present" }
        ));
        let loss_evidence = self.loss_evidence();
        self.report.failover = Some(RoleChangeReport {
            kind: "cutover".into(),
            primary: side_name(Side::ManagedInstance).into(),
            data_loss: !loss_evidence.is_empty(),
            lost_transactions: self.sim.lost_transactions(&self.database),
            lsn_check: self.n().lsn_check(),
            loss_evidence,
        });
        Ok(())
    }

    async fn phase(&mut self, p: Phase) -> Result<(), Box<dyn Error>> {
        match p {
            Phase::Readiness => self.readiness().await,
            Phase::Link => self.link().await,
            Phase::Replication => self.replication().await,
            Phase::Failover => self.failover().await,
            Phase::Validation => self.validation().await,
            Phase::Failback => self.failback().await,
            Phase::ValidationBack => self.validation_back().await,
            Phase::Cutover => self.cutover().await,
        }
    }
}

fn session_options(seed: u64) -> SessionOptions {
    SessionOptions {
        seed,
        event_capacity: 8192,
        ..SessionOptions::default()
    }
}

/// Runs the lab and writes its narration to `out`.
pub async fn run(opts: &Options, out: Box<dyn Write + Send>) -> Result<Report, Box<dyn Error>> {
    let wall_start = Instant::now();
    let (sim, opts, next_phase, before, mut report, journal_path, resumed, interrupted, app_state) =
        match &opts.resume {
            Some(path) => {
                let text = std::fs::read_to_string(sidecar(path)).map_err(|e| {
                    format!(
                        "{}: {e} (a run leaves this file next to its journal when it stops early)",
                        sidecar(path).display()
                    )
                })?;
                let saved: Saved = serde_json::from_str(&text)?;
                let mut report = saved.report;
                report.resumed = true;
                report.outcome = "completed".into();
                report.crashed_after_record = None;
                let options = Options {
                    json: opts.json,
                    crash_after: opts.crash_after,
                    resume: opts.resume.clone(),
                    ..saved.options
                };
                (
                    Sim::from_world(saved.world),
                    options,
                    saved.next_phase,
                    saved.before,
                    report,
                    path.clone(),
                    true,
                    Some((saved.phase_started, saved.phase_wall_ms)),
                    saved.app,
                )
            }
            None => {
                let lab = Lab::tailspin(opts.seed)?;
                if !opts.plan {
                    std::fs::create_dir_all(&opts.journal_dir)?;
                }
                let stamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or(0);
                let path = opts
                    .journal_dir
                    .join(format!("tailspin-seed{}-{stamp}.journal", opts.seed));
                let report = Report {
                    seed: opts.seed,
                    server: lab.topology.source.server.to_string(),
                    target: lab.topology.instance.fqdn.to_string(),
                    databases: Vec::new(),
                    phases: Vec::new(),
                    failover: None,
                    failback: None,
                    parity: Vec::new(),
                    final_state: String::new(),
                    journal: None,
                    outcome: if opts.plan { "planned" } else { "completed" }.into(),
                    crashed_after_record: None,
                    resumed: false,
                    workload: WorkloadStats::default(),
                    redirect: WorkloadLedger::default(),
                };
                (
                    lab.sim,
                    opts.clone(),
                    0,
                    None,
                    report,
                    path,
                    false,
                    None,
                    AppState::default(),
                )
            }
        };
    let start = sim.with_world(|w| w.config.start);
    let file = if resumed {
        LabJournal::File(FileJournal::open(&journal_path)?)
    } else if opts.plan {
        LabJournal::Memory(MemoryJournal::new())
    } else {
        LabJournal::File(FileJournal::create(&journal_path)?)
    };
    if !opts.plan {
        report.journal = Some(journal_path.display().to_string());
    }
    // The spec: the lab's, or the one the journal was created with when resuming.
    let spec = if resumed {
        let records = milink_core::ports::Journal::records(&file)?;
        match records.first().map(|r| &r.entry) {
            Some(milink_core::journal::JournalEntry::Created { spec }) => (**spec).clone(),
            _ => return Err("the journal does not start with the link's spec".into()),
        }
    } else {
        Lab::tailspin(opts.seed)?.spec
    };
    let (instance_id, link_name) = (spec.target.instance.clone(), spec.link.clone());
    let point = CrashPoint::AfterRecord(opts.crash_after.unwrap_or(u64::MAX));
    let journal = CrashingJournal::new(file, point);
    let crashed = journal.crashed_flag();

    let narrator = Narrator::new(out, sim.clone(), start, opts.plan, instance_id, link_name);
    let sql = Arc::new(Narrated::new(sim.sql_server(), Arc::clone(&narrator)));
    let mi = Arc::new(Narrated::new(sim.managed_instance(), Arc::clone(&narrator)));
    let timer = Arc::new(sim.clock());
    let database = spec
        .databases
        .first()
        .cloned()
        .ok_or("the link spec names no database")?;
    // The application reads its connection string from a file next to the journal; the
    // session's redirect hook rewrites it and the application reconnects.
    let connection_file =
        (!opts.plan).then(|| FileRedirectHook::new(journal_path.with_extension("connstr")));
    let app = App::new(
        sim.clone(),
        &spec,
        database.clone(),
        connection_file,
        app_state,
        !resumed,
    )?;
    let redirect = RedirectOptions::new(ConnectionString::parse(ORIGINAL_CONNECTION_STRING)?);
    let session = if resumed {
        Session::resume(journal, sql, mi, timer, session_options(opts.seed))?
    } else {
        Session::create(spec, sql, mi, journal, timer, session_options(opts.seed))?
    }
    .with_redirect(Some(app.clone()), redirect);
    narrator.follow(session.subscribe());
    let spec = session.machine().spec().clone();

    if opts.plan {
        narrator.raw(&format!(
            "-- milink {}: plan for the Tailspin lab, seed {}\n-- every T-SQL batch (SQL Server) and ARM request (managed instance) the run makes, in order;\n-- computed on the simulator, nothing is sent to a server. Master key password and root CA\n-- certificates come from the adapter's configuration and are placeholders here.",
            milink_core::VERSION,
            opts.seed
        ));
    } else {
        narrator.raw(&format!(
            "milink {} | Tailspin lab | seed {} | virtual start {}",
            milink_core::VERSION,
            opts.seed,
            start
        ));
        narrator.raw(&format!("journal {}", journal_path.display()));
    }

    let mut run = Run {
        sim: sim.clone(),
        spec,
        database,
        narrator: Arc::clone(&narrator),
        session,
        report,
        before,
        start,
        app: app.clone(),
    };

    let all = phases(&opts);
    for (i, phase) in all.iter().enumerate().skip(next_phase) {
        if opts.plan {
            narrator.raw(&format!("\n-- == {}", phase.title()));
        } else {
            narrator.raw(&format!("\n== {}. {}", i + 1, phase.title()));
        }
        let (mut v0, w0) = (sim.now(), Instant::now());
        let mut wall_before = 0.0;
        let mut result = Ok(());
        if i == next_phase
            && let Some((started, wall)) = interrupted
        {
            (v0, wall_before) = (started, wall);
            narrator.line(&format!(
                "resuming from the journal ({} records) in state {}",
                run.session.status().journal_records,
                run.session.status().state
            ));
            result = resume_session(&run).await;
        }
        if result.is_ok() {
            result = run.phase(*phase).await;
        }
        if let Err(e) = result {
            if crashed.load(Ordering::SeqCst) {
                narrator.drain();
                let records = opts.crash_after.unwrap_or_default();
                run.report.outcome = "crashed".into();
                run.report.crashed_after_record = Some(records);
                run.report.final_state = run.session.status().state.name().to_owned();
                run.report.workload = sim.workload_stats();
                run.report.redirect = app.state().ledger;
                let saved = Saved {
                    options: opts.clone(),
                    world: sim.with_world(Clone::clone),
                    next_phase: i,
                    phase_started: v0,
                    phase_wall_ms: wall_before + w0.elapsed().as_secs_f64() * 1000.0,
                    before: run.before.clone(),
                    report: run.report.clone(),
                    app: app.state(),
                };
                std::fs::write(sidecar(&journal_path), serde_json::to_string(&saved)?)?;
                narrator.raw(&format!(
                    "\n!! the orchestrator stopped after journal record {records} (simulated crash in phase {}).\n!! SQL Server and the managed instance keep running; continue with:\n!!   cargo run --release --example tailspin -- --resume {}",
                    phase.name(),
                    journal_path.display()
                ));
                return Ok(run.report);
            }
            return Err(e);
        }
        run.report.phases.push(PhaseTime {
            name: phase.name().to_string(),
            virtual_seconds: sim.now().since(v0).as_secs_f64(),
            wall_ms: wall_before + w0.elapsed().as_secs_f64() * 1000.0,
        });
    }
    sim.stop_workload();
    run.report.final_state = run.session.status().state.name().to_owned();
    run.report.workload = sim.workload_stats();
    run.report.redirect = app.finish().ledger;
    if opts.plan {
        print_monitoring(&run);
    } else {
        print_summary(&run, wall_start.elapsed());
    }
    Ok(run.report)
}

/// Continues the interrupted operation, once. A re-issued link PUT that meets the first one
/// still running (409 ConflictingServerOperation) is waited out by the driver.
async fn resume_session(run: &Run) -> Result<(), Box<dyn Error>> {
    match run.session.resume().await {
        Ok(()) | Err(SessionError::Stalled { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    run.n().drain();
    Ok(())
}

fn print_monitoring(run: &Run) {
    let n = run.n();
    let link = &run.spec.link;
    n.raw("\n-- == Monitoring, repeated while waiting (every probe interval)");
    for b in [
        milink_core::tsql::probe_replica_states(link),
        milink_core::tsql::probe_database_replica_states(link),
        milink_core::tsql::probe_seeding_stats(),
        milink_core::tsql::probe_first_full_backups(std::slice::from_ref(&run.database)),
    ] {
        n.raw(&format!(
            "-- [SQL Server / managed instance] {}\n{}",
            b.purpose(),
            b.display_sql().trim_end()
        ));
    }
    n.raw(&format!(
        "-- [Azure Resource Manager]\nGET https://management.azure.com{}/distributedAvailabilityGroups/{link}?api-version={}\nGET <the Location URL of each long-running operation, honouring Retry-After>",
        run.spec.target.instance,
        crate::plan::API_VERSION
    ));
}

fn print_summary(run: &Run, wall: Duration) {
    let n = run.n();
    let r = &run.report;
    let mut s = String::new();
    let _ = writeln!(s, "\n== Summary");
    let _ = writeln!(s, "  {:<28}{:>12}{:>12}", "phase", "virtual", "wall");
    let mut total_v = 0.0;
    for p in &r.phases {
        total_v += p.virtual_seconds;
        let v = p.virtual_seconds as u64;
        let _ = writeln!(
            s,
            "  {:<28}{:>12}{:>10.1}ms",
            p.name,
            format!("{}:{:02}:{:02}", v / 3600, (v / 60) % 60, v % 60),
            p.wall_ms
        );
    }
    let _ = total_v;
    let tv = run.sim.now().since(run.start).as_secs();
    let _ = writeln!(
        s,
        "  {:<28}{:>12}{:>10.1}ms",
        "total",
        format!("{}:{:02}:{:02}", tv / 3600, (tv / 60) % 60, tv % 60),
        wall.as_secs_f64() * 1000.0
    );
    for d in &r.databases {
        let _ = writeln!(s, "  readiness   {:<14}{}", d.name, d.verdict);
    }
    if let Some(f) = &r.failover {
        let _ = writeln!(
            s,
            "  {:<11} primary: {}, data loss: {}, lost transactions: {}",
            f.kind,
            f.primary,
            if f.data_loss { "yes" } else { "no" },
            f.lost_transactions
        );
        for line in &f.loss_evidence {
            let _ = writeln!(s, "  !!!         {line}");
        }
        if let Some(c) = f.lsn_check {
            let _ = writeln!(
                s,
                "  LSN check   SQL Server {} = managed instance {} (stable {} s)",
                c.sql_server, c.managed_instance, c.stable_seconds
            );
        }
    }
    if let Some(f) = &r.failback {
        let _ = writeln!(
            s,
            "  failback    primary: {}, data loss: {}",
            f.primary,
            if f.data_loss { "yes" } else { "no" }
        );
        for line in &f.loss_evidence {
            let _ = writeln!(s, "  !!!         {line}");
        }
    }
    for p in &r.parity {
        let _ = writeln!(
            s,
            "  parity      {}: {} ({} tables)",
            p.compared,
            if p.all_match {
                "every row there"
            } else {
                "MISMATCH"
            },
            p.tables.len()
        );
    }
    let _ = writeln!(
        s,
        "  workload    {} transactions committed, {} refused",
        thousands(r.workload.committed),
        thousands(r.workload.refused)
    );
    let mut redirects = r.redirect.redirects.iter();
    for (i, leg) in r.redirect.legs.iter().enumerate() {
        if i > 0
            && let Some(to) = redirects.next()
        {
            let _ = writeln!(
                s,
                "  redirect    through the hook to the {} ({}) after {} transactions",
                to.to,
                to.server,
                thousands(to.writes_before)
            );
        }
        let _ = writeln!(
            s,
            "  writes      {} transactions on the {} ({}){}",
            thousands(leg.committed),
            leg.side,
            leg.server,
            if i == 0 && r.redirect.legs.len() > 1 {
                " before the redirect"
            } else if i > 0 {
                " after it"
            } else {
                ""
            }
        );
    }
    for w in &r.redirect.old_primary_writes {
        let _ = writeln!(
            s,
            "  old primary {} refused {} of {} writes after the redirect{}",
            w.side,
            w.refused,
            w.attempted,
            w.error
                .as_ref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(s, "  final state {}", r.final_state);
    if let Some(j) = &r.journal {
        let _ = write!(s, "  journal     {j}");
    }
    n.raw(&s);
}
