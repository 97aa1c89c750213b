//! The run's report (the `--json` document) and the summary printed from it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use milink_core::sim::{Lab, WorkloadStats};
use serde::{Deserialize, Serialize};

use super::cli::Options;
use crate::app::WorkloadLedger;
use crate::narrate::LsnCheck;

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

/// The requests one phase sent over the wire (`--wire` only).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PhaseRequests {
    /// Phase name.
    pub phase: String,
    /// ARM requests the simulated REST API received, by method and route kind
    /// (`PUT link`, `GET operation (AzureAsyncOperation)`, …).
    pub arm: BTreeMap<String, u64>,
    /// T-SQL batches (and RPCs) SQL Server's TDS endpoint received.
    pub tds_sql_server: u64,
    /// T-SQL batches (and RPCs) the managed instance's TDS endpoint received.
    pub tds_managed_instance: u64,
}

impl PhaseRequests {
    /// The phase's ARM requests in all.
    pub fn arm_total(&self) -> u64 {
        self.arm.values().sum()
    }
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// How long the application could not write, in seconds of virtual time: from the moment it
    /// was told to stop to the moment it wrote to the new primary (the redirect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_unavailable_seconds: Option<f64>,
    /// Of that window, how long the service itself took to change the roles (L): from the
    /// moment the role change was asked for to the moment the new primary took the role, in
    /// seconds of virtual time. The rest is what the orchestration added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_change_seconds: Option<f64>,
    /// From the moment the application was told to stop to the moment the new primary took
    /// the role and accepts writes, in seconds of virtual time (the window without the role
    /// check and the redirect that follow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepts_writes_seconds: Option<f64>,
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
    /// Set when SQL Server was driven over TDS (`--wire`); absent in process.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wire: bool,
    /// The requests each phase sent over the wire (`--wire`); absent in process.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<PhaseRequests>,
    /// `arc` when SQL Server's side went through Azure Arc (`--route arc`); absent on the
    /// direct route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The readiness through Azure Arc beside milink's (`--route arc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arc_assessment: Option<crate::arc_assessment::ArcSection>,
}

/// `n` with thousands separators: `1,234,567`.
pub(super) fn thousands(n: u64) -> String {
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

/// `s` cut to `n` characters, with `…` when cut.
pub(super) fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

impl Report {
    /// The report of a new run of `opts` on `lab`, before anything ran.
    pub(crate) fn new(opts: &Options, lab: &Lab) -> Report {
        Report {
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
            wire: opts.wire,
            requests: Vec::new(),
            route: opts.route_arc.then(|| "arc".to_owned()),
            arc_assessment: None,
        }
    }

    /// The summary printed at the end of a run: per-phase times (`virtual_total` of virtual
    /// time since the start, `wall` of wall time), readiness, the role changes, parity, the
    /// workload and its redirects.
    pub(crate) fn summary(&self, virtual_total: Duration, wall: Duration) -> String {
        let r = self;
        let mut s = String::new();
        let _ = writeln!(s, "\n== Summary");
        let _ = writeln!(s, "  {:<28}{:>12}{:>12}", "phase", "virtual", "wall");
        for p in &r.phases {
            let v = p.virtual_seconds as u64;
            let _ = writeln!(
                s,
                "  {:<28}{:>12}{:>10.1}ms",
                p.name,
                format!("{}:{:02}:{:02}", v / 3600, (v / 60) % 60, v % 60),
                p.wall_ms
            );
        }
        let tv = virtual_total.as_secs();
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
                if f.data_loss {
                    "possible (below)"
                } else {
                    "no"
                },
                f.lost_transactions
            );
            for line in &f.loss_evidence {
                let _ = writeln!(s, "  !!!         {line}");
            }
            downtime_line(&mut s, f);
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
                if f.data_loss {
                    "possible (below)"
                } else {
                    "no"
                }
            );
            for line in &f.loss_evidence {
                let _ = writeln!(s, "  !!!         {line}");
            }
            downtime_line(&mut s, f);
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
        if !r.requests.is_empty() {
            let _ = writeln!(
                s,
                "  requests    {:<26}{:>6}{:>8}{:>8}  ARM by route",
                "phase", "ARM", "TDS sql", "TDS mi"
            );
            for p in &r.requests {
                let routes: Vec<String> = p.arm.iter().map(|(k, n)| format!("{k} {n}")).collect();
                let line = format!(
                    "              {:<26}{:>6}{:>8}{:>8}  {}",
                    p.phase,
                    p.arm_total(),
                    p.tds_sql_server,
                    p.tds_managed_instance,
                    routes.join(", ")
                );
                let _ = writeln!(s, "{}", line.trim_end());
            }
        }
        let _ = writeln!(s, "  final state {}", r.final_state);
        if let Some(j) = &r.journal {
            let _ = write!(s, "  journal     {j}");
        }
        s
    }
}

/// The summary's downtime line: the window, and L with what was added to it.
fn downtime_line(s: &mut String, f: &RoleChangeReport) {
    let Some(w) = f.write_unavailable_seconds else {
        return;
    };
    let _ = writeln!(s, "  downtime    writes unavailable for {w:.1} s");
    if let (Some(l), Some(a)) = (f.role_change_seconds, f.accepts_writes_seconds) {
        let _ = writeln!(
            s,
            "              the new primary accepted writes {a:.1} s after the stop: L (the \
             role change itself) {l:.1} s + {:.1} s",
            a - l
        );
    }
}

/// Seconds to the millisecond, as the report's other windows are (a float that reads back as
/// written).
pub(super) fn seconds(d: std::time::Duration) -> f64 {
    let ms = u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
    f64::from(ms) / 1000.0
}
