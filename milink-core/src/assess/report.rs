//! The readiness report: verdicts for the instance and each database, every finding, the checks
//! that could not run, the SKU recommendation and the network probes. Renders to JSON (with a
//! schema version), Markdown and a self-contained HTML page.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::assess::network::NetworkProbe;
use crate::assess::rules::{Finding, Fix, NotEvaluated, Scope, Severity};
use crate::assess::sku::SkuRecommendation;
use crate::error::Error;
use crate::lifecycle::{AssessmentOutcome, Blocker};
use crate::names::{DatabaseName, LinkMode, SqlVersion};
use crate::time::Timestamp;

/// The JSON schema version of [`ReadinessReport`].
pub const SCHEMA_VERSION: u32 = 1;

/// Whether a scope can be linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Verdict {
    /// No blockers, no warnings.
    Ready,
    /// Warnings to review; no blockers.
    ReadyWithWarnings,
    /// At least one blocker.
    NotReady,
}

impl Verdict {
    /// The verdict that a set of severities gives.
    pub fn from_severities(severities: impl IntoIterator<Item = Severity>) -> Verdict {
        severities
            .into_iter()
            .map(|s| match s {
                Severity::Blocker => Verdict::NotReady,
                Severity::Warning => Verdict::ReadyWithWarnings,
                Severity::Info => Verdict::Ready,
            })
            .max()
            .unwrap_or(Verdict::Ready)
    }

    /// Its name, as in JSON and Python: `Ready`, `ReadyWithWarnings` or `NotReady`.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Ready => "Ready",
            Verdict::ReadyWithWarnings => "ReadyWithWarnings",
            Verdict::NotReady => "NotReady",
        }
    }

    /// Words for people.
    pub fn words(self) -> &'static str {
        match self {
            Verdict::Ready => "Ready",
            Verdict::ReadyWithWarnings => "Ready with warnings",
            Verdict::NotReady => "Not ready",
        }
    }
}

/// The verdict of one database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseVerdict {
    /// Database.
    pub name: DatabaseName,
    /// Verdict: its own findings, and NotReady when the instance has a blocker.
    pub verdict: Verdict,
}

/// The readiness report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadinessReport {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// When the assessment ran.
    pub generated_at: Timestamp,
    /// The SQL Server instance.
    pub server: String,
    /// Its version.
    pub sql_version: SqlVersion,
    /// The target managed instance's FQDN, when one was given.
    pub target: Option<String>,
    /// Link mode assessed.
    pub link_mode: LinkMode,
    /// Whether failback to SQL Server is intended.
    pub failback: bool,
    /// The instance's verdict (instance findings only).
    pub instance_verdict: Verdict,
    /// Each requested database's verdict.
    pub databases: Vec<DatabaseVerdict>,
    /// Every finding.
    pub findings: Vec<Finding>,
    /// Checks that could not run, and why.
    pub not_evaluated: Vec<NotEvaluated>,
    /// The SKU recommendation.
    pub sku: Option<SkuRecommendation>,
    /// Network probes.
    pub network: Vec<NetworkProbe>,
}

impl ReadinessReport {
    /// The verdict of `database`, if it was assessed.
    pub fn verdict_of(&self, database: &str) -> Option<Verdict> {
        self.databases
            .iter()
            .find(|d| d.name.as_str().eq_ignore_ascii_case(database))
            .map(|d| d.verdict)
    }

    /// The findings about `scope`.
    pub fn findings_for<'a>(&'a self, scope: &'a Scope) -> impl Iterator<Item = &'a Finding> {
        self.findings.iter().filter(move |f| &f.scope == scope)
    }

    /// The findings about database `name`.
    pub fn database_findings<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Finding> {
        self.findings.iter().filter(move |f| {
            matches!(&f.scope, Scope::Database(d) if d.as_str().eq_ignore_ascii_case(name))
        })
    }

    /// Every blocker.
    pub fn blockers(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Blocker)
    }

    /// `Ok` when the instance and every one of `databases` can be linked (warnings allowed);
    /// otherwise [`Error::NotReady`] carrying this report. An empty list checks the instance
    /// only; a database the report does not cover is not ready.
    pub fn ensure_ready(&self, databases: &[DatabaseName]) -> Result<(), Error> {
        let instance_ok = self.instance_verdict != Verdict::NotReady;
        let verdicts: HashMap<String, Verdict> = self
            .databases
            .iter()
            .rev()
            .map(|d| (d.name.as_str().to_ascii_lowercase(), d.verdict))
            .collect();
        let dbs_ok = databases.iter().all(|d| {
            verdicts
                .get(&d.as_str().to_ascii_lowercase())
                .is_some_and(|v| *v != Verdict::NotReady)
        });
        if instance_ok && dbs_ok {
            Ok(())
        } else {
            Err(Error::NotReady(Box::new(self.clone())))
        }
    }

    /// The verdict the link machine records for `databases`
    /// ([`crate::lifecycle::Command::RecordAssessment`]): every blocker of the instance and of
    /// those databases as a `rule id: title (scope)` line, and a line for each of them the
    /// report does not cover. Empty exactly when [`ReadinessReport::ensure_ready`] passes.
    pub fn outcome_for(&self, databases: &[DatabaseName]) -> AssessmentOutcome {
        let asked: HashSet<String> = databases
            .iter()
            .map(|n| n.as_str().to_ascii_lowercase())
            .collect();
        let wanted = |scope: &Scope| match scope {
            Scope::Instance => true,
            Scope::Database(d) => asked.contains(&d.as_str().to_ascii_lowercase()),
        };
        let mut blockers: Vec<Blocker> = self
            .blockers()
            .filter(|f| wanted(&f.scope))
            .map(|f| Blocker {
                rule: f.rule_id.to_string(),
                scope: Some(f.scope.clone()),
                title: f.title.to_string(),
            })
            .collect();
        let assessed: HashSet<String> = self
            .databases
            .iter()
            .map(|d| d.name.as_str().to_ascii_lowercase())
            .collect();
        blockers.extend(
            databases
                .iter()
                .filter(|d| !assessed.contains(&d.as_str().to_ascii_lowercase()))
                .map(|d| Blocker {
                    rule: "not-assessed".to_owned(),
                    scope: Some(Scope::Database(d.clone())),
                    title: format!("database {d} is not in the report of {}", self.server),
                }),
        );
        AssessmentOutcome { blockers }
    }

    /// A one-line summary of the blockers, for error messages.
    pub fn not_ready_message(&self) -> String {
        let blockers: Vec<String> = self
            .blockers()
            .map(|f| match &f.scope {
                Scope::Instance => format!("{} (instance)", f.rule_id),
                Scope::Database(d) => format!("{} ({d})", f.rule_id),
            })
            .collect();
        if blockers.is_empty() {
            return format!(
                "not ready: a requested database was not assessed on {}",
                self.server
            );
        }
        const SHOWN: usize = 10;
        let more = match blockers.len().saturating_sub(SHOWN) {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        format!(
            "not ready: {} blocker(s): {}{more}",
            blockers.len(),
            blockers[..blockers.len().min(SHOWN)].join(", ")
        )
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads a report written by [`ReadinessReport::to_json`]; refuses other schema versions.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| Error::InvalidArgument(format!("readiness report JSON: {e}")))?;
        let version = value
            .get("schema_version")
            .and_then(serde_json::Value::as_u64);
        if version != Some(u64::from(SCHEMA_VERSION)) {
            return Err(Error::InvalidArgument(format!(
                "readiness report schema_version {version:?} is not {SCHEMA_VERSION}"
            )));
        }
        serde_json::from_value(value)
            .map_err(|e| Error::InvalidArgument(format!("readiness report JSON: {e}")))
    }

    /// The findings grouped by scope, in order: the instance, then the databases in report
    /// order, then any other scope with findings (system databases asked for). One pass over
    /// the findings, so the reports stay linear in the number of databases.
    fn by_scope(&self) -> Vec<(Scope, Vec<&Finding>)> {
        let mut groups: Vec<(Scope, Vec<&Finding>)> = vec![(Scope::Instance, Vec::new())];
        groups.extend(
            self.databases
                .iter()
                .map(|d| (Scope::Database(d.name.clone()), Vec::new())),
        );
        let mut index: HashMap<Scope, usize> = groups
            .iter()
            .enumerate()
            .map(|(i, (scope, _))| (scope.clone(), i))
            .collect();
        for f in &self.findings {
            let i = *index.entry(f.scope.clone()).or_insert_with(|| {
                groups.push((f.scope.clone(), Vec::new()));
                groups.len() - 1
            });
            groups[i].1.push(f);
        }
        groups
    }

    /// Markdown for people (and snapshot tests).
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let target = self
            .target
            .as_deref()
            .map(|t| format!(" → {}", md(t)))
            .unwrap_or_default();
        let _ = writeln!(out, "# MI link readiness: {}{target}\n", md(&self.server));
        let _ = writeln!(
            out,
            "SQL Server {} · link mode {:?} · failback {} · assessed {}\n",
            self.sql_version,
            self.link_mode,
            if self.failback {
                "intended"
            } else {
                "not intended"
            },
            self.generated_at
        );
        out.push_str("## Verdicts\n\n| Scope | Verdict | Blockers | Warnings | Info |\n|---|---|---|---|---|\n");
        let groups = self.by_scope();
        let (b, w, i) = counts(&groups[0].1);
        let _ = writeln!(
            out,
            "| Instance {} | {} | {b} | {w} | {i} |",
            md(&self.server),
            self.instance_verdict.words()
        );
        for (d, (_, findings)) in self.databases.iter().zip(&groups[1..]) {
            let (b, w, i) = counts(findings);
            let _ = writeln!(
                out,
                "| Database {} | {} | {b} | {w} | {i} |",
                md(d.name.as_str()),
                d.verdict.words()
            );
        }
        if let Some(s) = &self.sku {
            let _ = writeln!(
                out,
                "\n## SKU recommendation\n\n**{}, {} vCores, {} GB** ({})\n",
                s.tier,
                s.vcores,
                s.storage_gb,
                md(&s.hardware)
            );
            for r in &s.reasons {
                let _ = writeln!(out, "- {}", md(r));
            }
        }
        out.push_str("\n## Findings\n");
        for (scope, findings) in &groups {
            if findings.is_empty() {
                continue;
            }
            let heading = match &scope {
                Scope::Instance => format!("Instance {}", md(&self.server)),
                Scope::Database(d) => format!("Database {}", md(d.as_str())),
            };
            let _ = writeln!(out, "\n### {heading}\n");
            for f in findings {
                let _ = writeln!(
                    out,
                    "#### {} `{}`: {}\n\n{}\n",
                    f.severity,
                    f.rule_id,
                    md(&f.title),
                    md(&f.evidence.summary)
                );
                for (k, v) in &f.evidence.details {
                    let _ = writeln!(out, "- {}: {}", md(k), md(v));
                }
                if !f.evidence.details.is_empty() {
                    out.push('\n');
                }
                match &f.fix {
                    Fix::Sql(s) => {
                        let fence = fence_for(&s.sql);
                        let _ = write!(
                            out,
                            "Fix ({}):\n\n{fence}sql\n{}\n{fence}\n\n",
                            md(&s.purpose),
                            s.sql
                        );
                        if let Some(n) = &s.note {
                            let _ = writeln!(out, "{}\n", md(n));
                        }
                    }
                    Fix::Action(a) => {
                        let _ = writeln!(out, "Fix: {}\n", md(a));
                    }
                    Fix::None => {}
                }
            }
        }
        if !self.not_evaluated.is_empty() {
            out.push_str("\n## Not evaluated\n\n| Rule | Scope | Why |\n|---|---|---|\n");
            for n in &self.not_evaluated {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} |",
                    n.rule_id,
                    md(&n.scope.to_string()),
                    md(&n.reason)
                );
            }
        }
        if !self.network.is_empty() {
            out.push_str("\n## Network\n\n| Check | Target | Result | ms |\n|---|---|---|---|\n");
            for p in &self.network {
                let _ = writeln!(
                    out,
                    "| {:?} | {}:{} | {} | {} |",
                    p.kind,
                    md(&p.host),
                    p.port,
                    md(&p.outcome.to_string()),
                    p.elapsed_ms
                );
            }
        }
        out
    }

    /// A self-contained HTML page (inline CSS, no scripts, no external assets; all text
    /// escaped).
    pub fn to_html(&self) -> String {
        let title = self.html_title();
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{}</body>\n</html>\n",
            esc(&title),
            self.html_content(&title, false)
        )
    }

    /// The report as an HTML fragment to embed in another page (a notebook cell): one
    /// `<div class="milink-report">` whose inline CSS applies inside it only; compact, with
    /// the blockers first and the other findings folded in a `<details>`.
    pub fn to_html_fragment(&self) -> String {
        format!(
            "<div class=\"milink-report\">\n<style>{}</style>\n{}</div>\n",
            scoped_css(),
            self.html_content(&self.html_title(), true)
        )
    }

    fn html_title(&self) -> String {
        format!(
            "MI link readiness: {}{}",
            self.server,
            self.target
                .as_deref()
                .map(|t| format!(" → {t}"))
                .unwrap_or_default()
        )
    }

    /// Everything between `<body>` and `</body>`; `compact` (the notebook fragment) puts the
    /// blockers first and folds the other findings.
    fn html_content(&self, title: &str, compact: bool) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "<h1>{}</h1>", esc(title));
        let _ = writeln!(
            out,
            "<p class=\"meta\">SQL Server {} · link mode {:?} · failback {} · assessed {}</p>",
            self.sql_version,
            self.link_mode,
            if self.failback {
                "intended"
            } else {
                "not intended"
            },
            self.generated_at
        );
        out.push_str("<h2>Verdicts</h2>\n<table>\n<tr><th>Scope</th><th>Verdict</th><th>Blockers</th><th>Warnings</th><th>Info</th></tr>\n");
        let row = |out: &mut String,
                   label: String,
                   v: Verdict,
                   (b, w, i): (usize, usize, usize)| {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td><span class=\"verdict {}\">{}</span></td><td>{b}</td><td>{w}</td><td>{i}</td></tr>",
                esc(&label),
                verdict_class(v),
                v.words()
            );
        };
        let groups = self.by_scope();
        row(
            &mut out,
            format!("Instance {}", self.server),
            self.instance_verdict,
            counts(&groups[0].1),
        );
        for (d, (_, findings)) in self.databases.iter().zip(&groups[1..]) {
            row(
                &mut out,
                format!("Database {}", d.name),
                d.verdict,
                counts(findings),
            );
        }
        out.push_str("</table>\n");
        if let Some(s) = &self.sku {
            let _ = writeln!(
                out,
                "<h2>SKU recommendation</h2>\n<p><strong>{}, {} vCores, {} GB</strong> ({})</p>\n<ul>",
                esc(&s.tier.to_string()),
                s.vcores,
                s.storage_gb,
                esc(&s.hardware)
            );
            for r in &s.reasons {
                let _ = writeln!(out, "<li>{}</li>", esc(r));
            }
            out.push_str("</ul>\n");
        }
        out.push_str("<h2>Findings</h2>\n");
        let heading = |scope: &Scope| match scope {
            Scope::Instance => format!("Instance {}", self.server),
            Scope::Database(d) => format!("Database {d}"),
        };
        if compact {
            // Blockers first and open; the rest folded, so a notebook cell stays short.
            let blockers: Vec<&Finding> = self
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Blocker)
                .collect();
            if blockers.is_empty() {
                out.push_str("<p>No blockers.</p>\n");
            }
            for f in blockers {
                let _ = writeln!(out, "<h3>{}</h3>", esc(&heading(&f.scope)));
                finding_html(&mut out, f);
            }
            let rest = self
                .findings
                .iter()
                .filter(|f| f.severity != Severity::Blocker)
                .count();
            if rest > 0 {
                let _ = writeln!(
                    out,
                    "<details><summary>{rest} more finding{} (warnings and notes)</summary>",
                    if rest == 1 { "" } else { "s" }
                );
            }
        }
        for (scope, findings) in &groups {
            let shown: Vec<&&Finding> = findings
                .iter()
                .filter(|f| !compact || f.severity != Severity::Blocker)
                .collect();
            if shown.is_empty() {
                continue;
            }
            let _ = writeln!(out, "<h3>{}</h3>", esc(&heading(scope)));
            for f in shown {
                finding_html(&mut out, f);
            }
        }
        if compact
            && self
                .findings
                .iter()
                .any(|f| f.severity != Severity::Blocker)
        {
            out.push_str("</details>\n");
        }
        if !self.not_evaluated.is_empty() {
            out.push_str("<h2>Not evaluated</h2>\n<table>\n<tr><th>Rule</th><th>Scope</th><th>Why</th></tr>\n");
            for n in &self.not_evaluated {
                let _ = writeln!(
                    out,
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                    esc(&n.rule_id),
                    esc(&n.scope.to_string()),
                    esc(&n.reason)
                );
            }
            out.push_str("</table>\n");
        }
        if !self.network.is_empty() {
            out.push_str("<h2>Network</h2>\n<table>\n<tr><th>Check</th><th>Target</th><th>Result</th><th>ms</th></tr>\n");
            for p in &self.network {
                let _ = writeln!(
                    out,
                    "<tr><td>{:?}</td><td>{}:{}</td><td>{}</td><td>{}</td></tr>",
                    p.kind,
                    esc(&p.host),
                    p.port,
                    esc(&p.outcome.to_string()),
                    p.elapsed_ms
                );
            }
            out.push_str("</table>\n");
        }
        out
    }
}

/// One finding as HTML: severity, rule, title, evidence, fix.
fn finding_html(out: &mut String, f: &Finding) {
    let _ = writeln!(
        out,
        "<div class=\"finding {}\">\n<p><span class=\"sev\">{}</span> <code>{}</code> {}</p>\n<p>{}</p>",
        severity_class(f.severity),
        f.severity,
        esc(&f.rule_id),
        esc(&f.title),
        esc(&f.evidence.summary)
    );
    if !f.evidence.details.is_empty() {
        out.push_str("<dl>");
        for (k, v) in &f.evidence.details {
            let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(v));
        }
        out.push_str("</dl>\n");
    }
    match &f.fix {
        Fix::Sql(s) => {
            let _ = writeln!(
                out,
                "<p class=\"fix\">Fix ({}):</p>\n<pre><code>{}</code></pre>",
                esc(&s.purpose),
                esc(&s.sql)
            );
            if let Some(n) = &s.note {
                let _ = writeln!(out, "<p class=\"note\">{}</p>", esc(n));
            }
        }
        Fix::Action(a) => {
            let _ = writeln!(out, "<p class=\"fix\">Fix: {}</p>", esc(a));
        }
        Fix::None => {}
    }
    out.push_str("</div>\n");
}

/// [`CSS`] with every selector confined to `.milink-report` (`body` becomes the container).
fn scoped_css() -> String {
    let mut out = String::new();
    for rule in CSS.split_inclusive('}') {
        let Some((selectors, declarations)) = rule.split_once('{') else {
            continue;
        };
        let scoped: Vec<String> = selectors
            .split(',')
            .map(|s| match s.trim() {
                "body" => ".milink-report".to_owned(),
                s => format!(".milink-report {s}"),
            })
            .collect();
        let _ = write!(out, "{}{{{declarations}", scoped.join(","));
    }
    out
}

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem;max-width:70rem;color:#1b1b1b}\
table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}\
th{background:#f3f3f3}.verdict{padding:.1rem .5rem;border-radius:.3rem;font-weight:600}\
.ready{background:#dff6dd}.warn{background:#fff4ce}.notready{background:#fde7e9}\
.finding{border-left:.3rem solid #ccc;padding:.2rem 1rem;margin:.8rem 0}\
.finding.blocker{border-color:#c50f1f}.finding.warning{border-color:#c19c00}.finding.info{border-color:#0f6cbd}\
.sev{font-weight:700}pre{background:#f6f8fa;padding:.6rem;overflow-x:auto}dt{font-weight:600}dd{margin:0 0 .3rem 1rem}\
.meta,.note{color:#555}";

fn counts(findings: &[&Finding]) -> (usize, usize, usize) {
    let mut c = (0, 0, 0);
    for f in findings {
        match f.severity {
            Severity::Blocker => c.0 += 1,
            Severity::Warning => c.1 += 1,
            Severity::Info => c.2 += 1,
        }
    }
    c
}

fn verdict_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Ready => "ready",
        Verdict::ReadyWithWarnings => "warn",
        Verdict::NotReady => "notready",
    }
}

fn severity_class(s: Severity) -> &'static str {
    match s {
        Severity::Blocker => "blocker",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

/// HTML-escapes text for element content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A code fence longer than any run of backticks in `code`.
fn fence_for(code: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in code.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    "`".repeat((longest + 1).max(3))
}

/// Escapes Markdown punctuation (and `|` for tables; newlines become spaces).
fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}
