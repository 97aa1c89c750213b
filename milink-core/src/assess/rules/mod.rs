//! Rules: one pure function per check, each with a stable id, a severity, a scope, the evidence
//! it saw and the fix. [`RULES`] is the catalogue; every rule in it runs on every assessment.
//!
//! Ids: the managed instance compatibility rules of milink-facts §5.1 keep their documented ids
//! (`FileStream`, `XpCmdshell`, …); checks specific to the link carry a `Link.` prefix.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::assess::AssessOptions;
use crate::assess::facts::{DatabaseFacts, InstanceFacts, TargetFacts};
use crate::names::DatabaseName;
use crate::tsql::Batch;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Severity {
    /// For information; nothing to do before linking.
    Info,
    /// Review it; the link can still be created.
    Warning,
    /// Must be fixed before the link can be created for this scope.
    Blocker,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "Info",
            Severity::Warning => "Warning",
            Severity::Blocker => "Blocker",
        })
    }
}

/// Whether a rule looks at the instance or at each database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScopeKind {
    /// The SQL Server instance (or the target instance).
    Instance,
    /// One database.
    Database,
}

/// What a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// The instance.
    Instance,
    /// One database.
    Database(DatabaseName),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Instance => f.write_str("instance"),
            Scope::Database(d) => write!(f, "database {d}"),
        }
    }
}

/// What a rule saw: a sentence and key/value details.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// One sentence.
    pub summary: String,
    /// Details, ordered by key.
    pub details: BTreeMap<String, String>,
}

impl Evidence {
    /// Evidence with a summary.
    pub fn new(summary: impl Into<String>) -> Self {
        Evidence {
            summary: summary.into(),
            details: BTreeMap::new(),
        }
    }

    /// Adds a detail.
    pub fn with(mut self, key: &str, value: impl fmt::Display) -> Self {
        self.details.insert(key.to_owned(), value.to_string());
        self
    }
}

/// T-SQL that fixes a finding, as displayed (a batch that carries a secret shows its redacted
/// text; a placeholder the user must replace is marked `<…>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlFix {
    /// What the statements do.
    pub purpose: String,
    /// The statements.
    pub sql: String,
    /// What to know before running them.
    pub note: Option<String>,
}

/// How to fix a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fix {
    /// Run this T-SQL (built by the [`crate::tsql`] builders).
    Sql(SqlFix),
    /// Do this (no single statement does it).
    Action(String),
    /// Nothing to do.
    None,
}

impl Fix {
    /// A fix from builder batches, run in order.
    pub fn sql(batches: &[Batch]) -> Fix {
        Fix::Sql(SqlFix {
            purpose: batches
                .iter()
                .map(Batch::purpose)
                .collect::<Vec<_>>()
                .join("; "),
            sql: batches
                .iter()
                .map(|b| b.display_sql().trim_end())
                .collect::<Vec<_>>()
                .join("\n"),
            note: None,
        })
    }

    /// Adds a note to a [`Fix::Sql`]; other fixes are returned unchanged.
    pub fn with_note(self, note: impl Into<String>) -> Fix {
        match self {
            Fix::Sql(mut s) => {
                s.note = Some(note.into());
                Fix::Sql(s)
            }
            other => other,
        }
    }

    /// An action.
    pub fn action(text: impl Into<String>) -> Fix {
        Fix::Action(text.into())
    }
}

/// One finding of one rule for one scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The rule's stable id.
    pub rule_id: String,
    /// Severity.
    pub severity: Severity,
    /// Instance or database.
    pub scope: Scope,
    /// The rule's title.
    pub title: String,
    /// What was seen.
    pub evidence: Evidence,
    /// How to fix it.
    pub fix: Fix,
}

/// A check that could not run because a fact was missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotEvaluated {
    /// The rule's id.
    pub rule_id: String,
    /// Instance or database.
    pub scope: Scope,
    /// Which fact was missing.
    pub reason: String,
}

/// The result of one rule on one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The check passed (or does not apply).
    Pass,
    /// The check failed.
    Fail(Evidence, Fix),
    /// A fact the check needs is unknown.
    NotEvaluated(String),
}

/// What a rule reads.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The SQL Server instance.
    pub instance: &'a InstanceFacts,
    /// Every user database of the instance.
    pub all_databases: &'a [DatabaseFacts],
    /// The databases to link (found, not system databases).
    pub selected: &'a [&'a DatabaseFacts],
    /// The target managed instance, when known.
    pub target: Option<&'a TargetFacts>,
    /// Options.
    pub options: &'a AssessOptions,
    /// [`Context::all_databases`] by name, case-insensitively.
    pub index: &'a DatabaseIndex<'a>,
}

/// The instance's databases by name, compared case-insensitively (the first database of a name
/// wins, as a scan in order would find it).
#[derive(Debug, Clone, Default)]
pub struct DatabaseIndex<'a> {
    by_name: std::collections::HashMap<String, (&'a DatabaseFacts, usize)>,
}

impl<'a> DatabaseIndex<'a> {
    /// Indexes `databases`.
    pub fn new(databases: &'a [DatabaseFacts]) -> DatabaseIndex<'a> {
        let mut by_name: std::collections::HashMap<String, (&'a DatabaseFacts, usize)> =
            std::collections::HashMap::with_capacity(databases.len());
        for d in databases {
            by_name
                .entry(d.name.as_str().to_ascii_lowercase())
                .and_modify(|(_, n)| *n += 1)
                .or_insert((d, 1));
        }
        DatabaseIndex { by_name }
    }

    /// The database named `name` (any case): the first of that name.
    pub fn get(&self, name: &str) -> Option<&'a DatabaseFacts> {
        self.by_name
            .get(&name.to_ascii_lowercase())
            .map(|(d, _)| *d)
    }

    /// How many databases of the facts are named `name` (any case).
    pub fn count(&self, name: &str) -> usize {
        self.by_name
            .get(&name.to_ascii_lowercase())
            .map_or(0, |(_, n)| *n)
    }
}

/// How a rule is run.
#[derive(Clone, Copy)]
pub enum Check {
    /// Once per assessment.
    Instance(fn(&Context<'_>) -> Outcome),
    /// Once per selected database.
    Database(fn(&Context<'_>, &DatabaseFacts) -> Outcome),
    /// Once per requested database name (found or not).
    Requested(fn(&Context<'_>, &DatabaseName) -> Outcome),
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Check::Instance(_) => "Check::Instance",
            Check::Database(_) => "Check::Database",
            Check::Requested(_) => "Check::Requested",
        })
    }
}

/// A rule in the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Stable id.
    pub id: &'static str,
    /// The severity of its findings.
    pub severity: Severity,
    /// Instance or database.
    pub scope: ScopeKind,
    /// Title.
    pub title: &'static str,
    /// Where the rule comes from.
    pub source: &'static str,
    /// What the rule looks at (and what it can't see).
    pub detects: &'static str,
    /// The check.
    pub check: Check,
}

const NO_TARGET: &str = "no target managed instance facts were given";
const NO_CATALOG: &str = "the database's catalog could not be read";
const NO_CODE: &str = "the database's module text was not scanned";
const NO_NETWORK: &str = "the network was not probed";

fn list<I: IntoIterator<Item = S>, S: AsRef<str>>(items: I) -> String {
    let v: Vec<String> = items.into_iter().map(|s| s.as_ref().to_owned()).collect();
    v.join(", ")
}

fn gb(mb: u64) -> u64 {
    mb.div_ceil(1024)
}

macro_rules! rule {
    ($id:expr, $sev:ident, $scope:ident, $title:expr, $source:expr, $detects:expr, $check:ident($f:path)) => {
        Rule {
            id: $id,
            severity: Severity::$sev,
            scope: ScopeKind::$scope,
            title: $title,
            source: $source,
            detects: $detects,
            check: Check::$check($f),
        }
    };
}

mod database_limits;
mod database_link;
mod limits;
mod network;
mod requested;
mod sql_server;
mod target;

pub use limits::MI_SUPPORTED_TRACE_FLAGS;
pub use network::Ipv4Net;
pub use sql_server::cumulative_update;
pub use target::LINK_ARM_ACTIONS;

const F11: &str = "milink-facts §1.1";
const F13: &str = "milink-facts §1.3";
const F14: &str = "milink-facts §1.4";
const F15: &str = "milink-facts §1.5";
const F16: &str = "milink-facts §1.6";
const F18: &str = "milink-facts §1.8";
const F19: &str = "milink-facts §1.9";
const F51: &str = "milink-facts §5.1";
const F51_18: &str = "milink-facts §5.1, §1.8";
const F53: &str = "milink-facts §5.3";

/// The catalogue: every rule, in the order findings are reported.
pub const RULES: &[Rule] = &CATALOGUE;

/// The group catalogues, in the order findings are reported.
const GROUPS: &[&[Rule]] = &[
    sql_server::RULES,
    target::RULES,
    network::RULES,
    limits::RULES,
    requested::RULES,
    database_link::RULES,
    database_limits::RULES,
];

/// The number of rules in the catalogue.
const CATALOGUE_LEN: usize = {
    let mut n = 0;
    let mut g = 0;
    while g < GROUPS.len() {
        n += GROUPS[g].len();
        g += 1;
    }
    n
};

/// The group catalogues concatenated.
const CATALOGUE: [Rule; CATALOGUE_LEN] = {
    let mut all = [GROUPS[0][0]; CATALOGUE_LEN];
    let mut n = 0;
    let mut g = 0;
    while g < GROUPS.len() {
        let mut i = 0;
        while i < GROUPS[g].len() {
            all[n] = GROUPS[g][i];
            n += 1;
            i += 1;
        }
        g += 1;
    }
    all
};

impl Rule {
    /// A managed instance compatibility rule of milink-facts §5.1 (its documented id, no
    /// `Link.` prefix), as opposed to a check of the link's own prerequisites.
    pub fn is_compatibility_rule(&self) -> bool {
        !self.id.starts_with("Link.")
    }
}

/// The catalogue entry of `id`.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}
