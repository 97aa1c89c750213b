//! Rules: one pure function per check, each with a stable id, a severity, a scope, the evidence
//! it saw and the fix. [`RULES`] is the catalogue; every rule in it runs on every assessment.
//!
//! Ids: the managed instance compatibility rules of milink-facts §5.1 keep their documented ids
//! (`FileStream`, `XpCmdshell`, …); checks specific to the link carry a `Link.` prefix.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::assess::AssessOptions;
use crate::assess::facts::{
    DatabaseFacts, DatabaseState, Edition, HostPlatform, InstanceFacts, RecoveryModel, TargetFacts,
    is_system_database,
};
use crate::assess::network::{ProbeKind, ProbeOutcome};
use crate::assess::scan::Marker;
use crate::assess::sku::{NEXT_GEN_GENERAL_PURPOSE, TierLimits};
use crate::names::{
    CertificateName, DatabaseName, EndpointName, LinkMode, LogicalFileName, TcpPort,
};
use crate::secret::Secret;
use crate::tsql::remediation::{self, BackupPath, LinkTraceFlag, Termination};
use crate::tsql::{
    Batch, EndpointAuth, EndpointEncryption, MirroringEndpointSpec, alter_mirroring_endpoint,
    azure_root_cas, create_master_key,
};

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

// ---------------------------------------------------------------- instance: SQL Server

fn sql_version(ctx: &Context<'_>) -> Outcome {
    let v = ctx.instance.version;
    let caps = v.capabilities();
    if caps.link_supported {
        return Outcome::Pass;
    }
    let ev = Evidence::new(format!(
        "{} build {v} does not support the managed instance link",
        v.release_name()
    ))
    .with("version", v);
    match caps.minimum_build {
        Some(min) => Outcome::Fail(
            ev.with("minimum build", min),
            Fix::action(format!(
                "Update {} to build {min} or later.",
                v.release_name()
            )),
        ),
        None => Outcome::Fail(
            ev,
            Fix::action(
                "Upgrade to a release that supports the link: SQL Server 2016 SP3 with the Azure \
                 Connect pack, 2017 CU31 with the Azure Connect pack, 2019 CU20, 2022 or 2025.",
            ),
        ),
    }
}

fn azure_connect_pack(ctx: &Context<'_>) -> Outcome {
    if ctx.instance.has_certificate_add_issuer {
        return Outcome::Pass;
    }
    let v = ctx.instance.version;
    let ev = Evidence::new(
        "sys.sp_certificate_add_issuer does not exist: the build can't trust the Azure root CAs",
    )
    .with("version", v);
    let fix = match v.capabilities().azure_connect_pack {
        Some(pack) => Fix::action(format!(
            "Install the {} Azure Connect pack (build {pack}).",
            v.release_name()
        )),
        None => Fix::action(format!(
            "Install the latest cumulative update of {}; link-capable builds ship sp_certificate_add_issuer.",
            v.release_name()
        )),
    };
    Outcome::Fail(ev, fix)
}

fn edition(ctx: &Context<'_>) -> Outcome {
    match ctx.instance.edition {
        Edition::Enterprise | Edition::Standard | Edition::Developer | Edition::Evaluation => {
            Outcome::Pass
        }
        e @ (Edition::Express | Edition::Web | Edition::Other) => Outcome::Fail(
            Evidence::new(format!(
                "the {e} edition can't host availability groups; the link needs Enterprise, Standard or Developer"
            ))
            .with("edition", e),
            Fix::action("Upgrade the instance to Enterprise, Standard or Developer edition."),
        ),
    }
}

fn multi_database_mode(ctx: &Context<'_>) -> Outcome {
    if ctx.options.link_mode != LinkMode::MultiDatabase {
        return Outcome::Pass;
    }
    let i = ctx.instance;
    let mut problems = Vec::new();
    if i.version.major < 16 {
        problems.push(format!(
            "{} does not support MultiDatabase links (2022 CU27+ or 2025 CU9+)",
            i.version.release_name()
        ));
    }
    if !matches!(
        i.edition,
        Edition::Enterprise | Edition::Developer | Edition::Evaluation
    ) {
        problems.push(format!(
            "the {} edition's basic availability groups hold one database",
            i.edition
        ));
    }
    if problems.is_empty() {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(problems.join("; "))
            .with("version", i.version)
            .with("edition", i.edition),
        Fix::action(
            "Use SingleDatabase link mode (one link per database), or move to SQL Server 2022 \
             CU27+ / 2025 CU9+ Enterprise or Developer.",
        ),
    )
}

fn host_os(ctx: &Context<'_>) -> Outcome {
    let h = &ctx.instance.host;
    if h.is_windows_client() {
        return Outcome::Fail(
            Evidence::new(format!(
                "{} is a client OS: the availability group feature can't be enabled",
                h.description
            ))
            .with("host", &h.description),
            Fix::action("Host SQL Server on Windows Server 2012 or later, or on Linux (2017+)."),
        );
    }
    if h.platform == HostPlatform::Linux && ctx.instance.version.major == 13 {
        return Outcome::Fail(
            Evidence::new("SQL Server 2016 supports the link on Windows Server only")
                .with("host", &h.description),
            Fix::action(
                "Use SQL Server 2017 or later on Linux, or SQL Server 2016 on Windows Server.",
            ),
        );
    }
    Outcome::Pass
}

fn hadr_enabled(ctx: &Context<'_>) -> Outcome {
    if ctx.instance.hadr_enabled {
        return Outcome::Pass;
    }
    let wsfc = if ctx.instance.version.capabilities().wsfc_required {
        " SQL Server 2016 first needs a Windows Server Failover Cluster (a single-node cluster \
         is enough) and the ALTER ANY AVAILABILITY GROUP, CONNECT SQL and VIEW SERVER STATE \
         permissions for [NT AUTHORITY\\SYSTEM]."
    } else {
        ""
    };
    Outcome::Fail(
        Evidence::new(
            "SERVERPROPERTY('IsHadrEnabled') is 0: Always On availability groups are off",
        )
        .with("IsHadrEnabled", 0),
        Fix::action(format!(
            "Enable Always On availability groups (SQL Server Configuration Manager, \
             `Enable-SqlAlwaysOn`, or `mssql-conf set hadr.hadrenabled 1` on Linux) and restart \
             the service.{wsfc}"
        )),
    )
}

fn link_trace_flags(ctx: &Context<'_>) -> Outcome {
    let missing: Vec<LinkTraceFlag> = [
        LinkTraceFlag::LogIoSectorSize,
        LinkTraceFlag::SeedingCompression,
    ]
    .into_iter()
    .filter(|f| !ctx.instance.trace_flag_on(f.number()))
    .collect();
    let Some(batch) = remediation::trace_on_global(&missing) else {
        return Outcome::Pass;
    };
    let numbers = list(missing.iter().map(|f| f.number().to_string()));
    Outcome::Fail(
        Evidence::new(format!("trace flag(s) {numbers} are not on globally"))
            .with("missing", &numbers),
        Fix::sql(&[batch]).with_note(
            "DBCC TRACEON lasts until the next restart; also add the -T startup parameters \
             (SQL Server Configuration Manager, or `mssql-conf traceflag` on Linux). 1800 matters \
             when the log disks' sector sizes differ (512 B vs 4 KB); 9567 compresses seeding.",
        ),
    )
}

fn master_key(ctx: &Context<'_>) -> Outcome {
    if ctx.instance.master_key_present {
        return Outcome::Pass;
    }
    // The builder redacts the password in everything but the text sent to the server, so the
    // report shows N'***' whatever is passed here.
    let batch = create_master_key(&Secret::new("<strong password>"));
    Outcome::Fail(
        Evidence::new("master has no database master key (symmetric_key_id 101)"),
        Fix::sql(&[batch]).with_note(
            "milink creates the key while preparing SQL Server. To do it yourself, replace \
             N'***' with a strong password and keep that password in your secret store.",
        ),
    )
}

fn endpoint_missing(ctx: &Context<'_>) -> Outcome {
    if !ctx.instance.endpoints.is_empty() {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new("no DATABASE_MIRRORING endpoint exists"),
        Fix::action(
            "milink creates a certificate-authenticated, AES-encrypted endpoint on TCP 5022 while \
             preparing SQL Server.",
        ),
    )
}

fn endpoint(ctx: &Context<'_>) -> Outcome {
    let Some(e) = ctx.instance.endpoints.first() else {
        return Outcome::Pass;
    };
    let mut problems = Vec::new();
    if !e.uses_certificate() {
        problems.push(format!(
            "authentication is {} (no certificate)",
            e.authentication
        ));
    }
    if !e.encryption_enabled {
        problems.push("encryption is disabled".to_owned());
    }
    if !e.allows_aes() {
        problems.push(format!("algorithm is {} (no AES)", e.algorithm));
    }
    if e.state != crate::assess::facts::EndpointState::Started {
        problems.push(format!("state is {:?}", e.state).to_uppercase());
    }
    if problems.is_empty() {
        return Outcome::Pass;
    }
    let evidence = Evidence::new(format!("endpoint {}: {}", e.name, problems.join("; ")))
        .with("endpoint", &e.name)
        .with("authentication", &e.authentication)
        .with("encryption enabled", e.encryption_enabled)
        .with("algorithm", &e.algorithm)
        .with("state", format!("{:?}", e.state))
        .with("port", e.port);
    let auth = e.authentication.to_ascii_uppercase();
    let spec = (|| {
        Some(MirroringEndpointSpec {
            name: EndpointName::new(e.name.as_str()).ok()?,
            port: TcpPort::new(e.port).ok()?,
            certificate: CertificateName::new(e.certificate.clone()?).ok()?,
            auth: if ["NEGOTIATE", "NTLM", "KERBEROS"]
                .iter()
                .any(|w| auth.contains(w))
            {
                EndpointAuth::WindowsNegotiateCertificate
            } else {
                EndpointAuth::Certificate
            },
            encryption: if e.algorithm.to_ascii_uppercase().contains("RC4") {
                EndpointEncryption::AesRc4
            } else {
                EndpointEncryption::Aes
            },
        })
    })();
    let fix = match spec {
        Some(spec) => Fix::sql(&[alter_mirroring_endpoint(&spec)]).with_note(
            "Keeps Windows authentication and RC4 only where the endpoint already uses them \
             (other availability groups may); the link itself needs the certificate and AES.",
        ),
        None => Fix::action(format!(
            "The endpoint has no certificate: milink creates the endpoint certificate while \
             preparing SQL Server, then alters [{}] to STATE = STARTED, AUTHENTICATION = … \
             CERTIFICATE [<endpoint certificate>], ENCRYPTION = REQUIRED ALGORITHM AES.",
            e.name
        )),
    };
    Outcome::Fail(evidence, fix)
}

fn link_certificates<'a>(ctx: &'a Context<'_>) -> Vec<&'a crate::assess::facts::CertificateFact> {
    let mut names: Vec<String> = ctx
        .instance
        .endpoints
        .iter()
        .filter_map(|e| e.certificate.clone())
        .collect();
    if let Some(t) = ctx.target {
        names.push(t.fqdn.as_str().to_owned());
    }
    let mut certs: Vec<_> = names
        .iter()
        .filter_map(|n| ctx.instance.certificate(n))
        .collect();
    certs.dedup_by(|a, b| a.name == b.name);
    certs
}

fn certificate_expired(ctx: &Context<'_>) -> Outcome {
    let now = ctx.options.now;
    let expired: Vec<_> = link_certificates(ctx)
        .into_iter()
        .filter(|c| c.expiry <= now)
        .collect();
    if expired.is_empty() {
        return Outcome::Pass;
    }
    let mut ev = Evidence::new(format!(
        "expired: {}",
        list(expired.iter().map(|c| c.name.as_str()))
    ));
    for c in &expired {
        ev = ev.with(&format!("{} expiry", c.name), c.expiry.date());
    }
    Outcome::Fail(
        ev,
        Fix::action(
            "Rotate the certificate: create a new endpoint certificate, upload its public key to \
             the managed instance as a server trust certificate, ALTER ENDPOINT … AUTHENTICATION \
             = CERTIFICATE [new], then delete the old trust certificate. For the managed \
             instance's certificate, import the current one from endpointCertificates.",
        ),
    )
}

fn certificate_expiring(ctx: &Context<'_>) -> Outcome {
    let now = ctx.options.now;
    let horizon = now.plus(std::time::Duration::from_secs(
        u64::from(ctx.options.certificate_warning_days) * 86_400,
    ));
    let soon: Vec<_> = link_certificates(ctx)
        .into_iter()
        .filter(|c| c.expiry > now && c.expiry <= horizon)
        .collect();
    if soon.is_empty() {
        return Outcome::Pass;
    }
    let mut ev = Evidence::new(format!(
        "expiring within {} days: {}",
        ctx.options.certificate_warning_days,
        list(soon.iter().map(|c| c.name.as_str()))
    ));
    for c in &soon {
        ev = ev.with(&format!("{} expiry", c.name), c.expiry.date());
    }
    Outcome::Fail(
        ev,
        Fix::action(
            "Plan the rotation before the expiry date: an expired certificate breaks the link.",
        ),
    )
}

fn root_ca_trust(ctx: &Context<'_>) -> Outcome {
    let missing: Vec<String> = azure_root_cas()
        .into_iter()
        .filter(|(name, subject)| {
            !ctx.instance
                .certificates
                .iter()
                .any(|c| c.name.eq_ignore_ascii_case(name.as_str()) || c.subject.contains(subject))
        })
        .map(|(name, _)| name.to_string())
        .collect();
    if missing.is_empty() {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "master does not hold the Azure root CA certificate(s) {}",
            list(&missing)
        ))
        .with("missing", list(&missing)),
        Fix::action(
            "milink imports them while exchanging trust (CREATE CERTIFICATE … FROM BINARY and \
             sp_certificate_add_issuer for N'*.database.windows.net'); the certificate blobs \
             come from the Azure Certificate Authority details page or the Arc download.",
        ),
    )
}

// ---------------------------------------------------------------- instance: target

fn collation(ctx: &Context<'_>) -> Outcome {
    let Some(t) = ctx.target else {
        return Outcome::NotEvaluated(NO_TARGET.into());
    };
    let Some(target) = &t.collation else {
        return Outcome::NotEvaluated("the managed instance's collation is unknown".into());
    };
    if target.eq_ignore_ascii_case(&ctx.instance.collation) {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new("the server collations differ")
            .with("SQL Server", &ctx.instance.collation)
            .with("managed instance", target),
        Fix::action(
            "Use a managed instance with the same collation (it is fixed at creation), or test \
             the application against the managed instance's collation (tempdb uses it).",
        ),
    )
}

fn update_policy(ctx: &Context<'_>) -> Outcome {
    if !ctx.options.failback {
        return Outcome::Pass;
    }
    let v = ctx.instance.version;
    let caps = v.capabilities();
    if !caps.two_way {
        return Outcome::Fail(
            Evidence::new(format!(
                "{} links are one-way: no failback to SQL Server",
                v.release_name()
            ))
            .with("version", v),
            Fix::action("Use SQL Server 2022 or 2025 for failback, or accept a one-way migration."),
        );
    }
    let Some(t) = ctx.target else {
        return Outcome::NotEvaluated(NO_TARGET.into());
    };
    let Some(policy) = t.update_policy else {
        return Outcome::NotEvaluated("the managed instance's update policy is unknown".into());
    };
    if caps.failback_allowed_with(policy) {
        return Outcome::Pass;
    }
    let wanted = caps
        .matching_update_policy
        .map(|p| p.to_string())
        .unwrap_or_else(|| "none".into());
    Outcome::Fail(
        Evidence::new(format!(
            "failback to {} needs the {wanted} update policy; the managed instance has {policy}",
            v.release_name()
        ))
        .with("update policy", policy)
        .with("needed", &wanted),
        Fix::action(format!(
            "Use a managed instance with the {wanted} update policy (policies only move forward: \
             2022 → 2025 → Always-up-to-date), or give up failback."
        )),
    )
}

fn one_way(ctx: &Context<'_>) -> Outcome {
    if ctx.options.failback {
        return Outcome::Pass;
    }
    let v = ctx.instance.version;
    let caps = v.capabilities();
    let why = if !caps.two_way {
        format!("{} links are one-way", v.release_name())
    } else {
        let Some(t) = ctx.target else {
            return Outcome::NotEvaluated(NO_TARGET.into());
        };
        let Some(policy) = t.update_policy else {
            return Outcome::NotEvaluated("the managed instance's update policy is unknown".into());
        };
        if caps.failback_allowed_with(policy) {
            return Outcome::Pass;
        }
        format!(
            "the managed instance's {policy} update policy doesn't match {}",
            v.release_name()
        )
    };
    Outcome::Fail(
        Evidence::new(format!(
            "{why}: after failing over to the managed instance there is no way back to SQL Server"
        )),
        Fix::None,
    )
}

fn failover_group(ctx: &Context<'_>) -> Outcome {
    let Some(t) = ctx.target else {
        return Outcome::NotEvaluated(NO_TARGET.into());
    };
    match t.in_failover_group {
        None => Outcome::NotEvaluated("failover group membership is unknown".into()),
        Some(false) => Outcome::Pass,
        Some(true) => Outcome::Fail(
            Evidence::new(format!("{} is in a failover group", t.name)),
            Fix::action(
                "A managed instance in a failover group can't host a link: remove it from the \
                 failover group or choose another instance.",
            ),
        ),
    }
}

fn new_databases<'a>(ctx: &'a Context<'_>, t: &TargetFacts) -> Vec<&'a DatabaseFacts> {
    ctx.selected
        .iter()
        .copied()
        .filter(|d| t.has_database(&d.name) != Some(true))
        .collect()
}

fn database_count_limit(ctx: &Context<'_>) -> Outcome {
    let Some(t) = ctx.target else {
        return Outcome::NotEvaluated(NO_TARGET.into());
    };
    let Some(existing) = t.database_count() else {
        return Outcome::NotEvaluated("the managed instance's databases are unknown".into());
    };
    let limit = TierLimits::of(t.tier).max_databases as usize;
    let adding = new_databases(ctx, t).len();
    if existing + adding <= limit {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "{existing} existing + {adding} linked databases exceed the {limit}-database limit of {}",
            t.tier
        ))
        .with("existing", existing)
        .with("adding", adding)
        .with("limit", limit),
        Fix::action(
            "Link fewer databases to this instance, spread them across instances, or use Next-gen \
             General Purpose (500 databases).",
        ),
    )
}

fn storage_fits(ctx: &Context<'_>) -> Outcome {
    let Some(t) = ctx.target else {
        return Outcome::NotEvaluated(NO_TARGET.into());
    };
    let Some(used) = t.storage_used_gb else {
        return Outcome::NotEvaluated("the managed instance's storage in use is unknown".into());
    };
    let adding_mb: u64 = new_databases(ctx, t).iter().map(|d| d.size_mb()).sum();
    let adding = gb(adding_mb);
    if used.saturating_add(adding) <= t.storage_max_gb {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "{used} GB used + {adding} GB linked exceed the {} GB reserved",
            t.storage_max_gb
        ))
        .with("used GB", used)
        .with("adding GB", adding)
        .with("reserved GB", t.storage_max_gb),
        Fix::action(format!(
            "Increase the managed instance's reserved storage to at least {} GB (32 GB steps; the \
             tier and vCores cap it).",
            (used + adding).div_ceil(32) * 32
        )),
    )
}

// ---------------------------------------------------------------- instance: §5.1

fn num_db_exceeds_100(ctx: &Context<'_>) -> Outcome {
    let n = ctx.all_databases.len();
    if n <= 100 {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "{n} user databases; General Purpose and Business Critical hold 100"
        ))
        .with("databases", n),
        Fix::action(
            "Spread the databases across instances, or use Next-gen General Purpose (500).",
        ),
    )
}

fn mi_instance_size(ctx: &Context<'_>) -> Outcome {
    let total_mb: u64 = ctx.all_databases.iter().map(|d| d.size_mb()).sum();
    let limits = ctx
        .target
        .map(|t| TierLimits::of(t.tier))
        .unwrap_or(&NEXT_GEN_GENERAL_PURPOSE);
    let max = limits.absolute_max_storage_gb();
    if gb(total_mb) <= max {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "the instance holds {} GB; {} offers at most {max} GB",
            gb(total_mb),
            limits.tier
        ))
        .with("total GB", gb(total_mb))
        .with("max GB", max),
        Fix::action("Migrate the databases to more than one managed instance."),
    )
}

fn mi_trace_flags(ctx: &Context<'_>) -> Outcome {
    let ignored = [1800u32, 9567, 12381];
    let flags: Vec<u32> = ctx
        .instance
        .trace_flags
        .iter()
        .filter(|t| t.enabled)
        .map(|t| t.flag)
        .filter(|f| !ignored.contains(f) && !ctx.options.mi_supported_trace_flags.contains(f))
        .collect();
    if flags.is_empty() {
        return Outcome::Pass;
    }
    let shown = list(flags.iter().map(u32::to_string));
    Outcome::Fail(
        Evidence::new(format!(
            "global trace flags {shown} don't carry over to the managed instance"
        ))
        .with("trace flags", &shown),
        Fix::action(
            "Check which of these the managed instance supports and what each one was for; \
             trace flags are not replicated.",
        ),
    )
}

fn windows_authentication(ctx: &Context<'_>) -> Outcome {
    let logins: Vec<&str> = ctx
        .instance
        .windows_logins
        .iter()
        .filter(|l| !l.is_builtin() && !l.is_disabled)
        .map(|l| l.name.as_str())
        .collect();
    if logins.is_empty() {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!("{} Windows login(s) or group(s)", logins.len()))
            .with("logins", list(logins.iter().take(20))),
        Fix::action(
            "Create Microsoft Entra logins (or SQL logins) on the managed instance for these \
             principals; logins are not replicated by the link.",
        ),
    )
}

fn job_rule(ctx: &Context<'_>, subsystem: &str, what: &str) -> Outcome {
    let steps: Vec<String> = ctx
        .instance
        .job_steps
        .iter()
        .filter(|s| s.subsystem.eq_ignore_ascii_case(subsystem))
        .map(|s| format!("{} step {}", s.job, s.step_id))
        .collect();
    if steps.is_empty() {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!("{} {subsystem} job step(s)", steps.len()))
            .with("steps", list(steps.iter().take(20))),
        Fix::action(format!(
            "{what} Agent jobs are not replicated; recreate the supported ones on the managed instance."
        )),
    )
}

fn powershell_job(ctx: &Context<'_>) -> Outcome {
    job_rule(
        ctx,
        "PowerShell",
        "The managed instance's SQL Agent does not run PowerShell steps; move them to Azure Automation or another scheduler.",
    )
}
fn analysis_command_job(ctx: &Context<'_>) -> Outcome {
    job_rule(
        ctx,
        "ANALYSISCOMMAND",
        "SSAS command steps are not supported on the managed instance.",
    )
}
fn analysis_query_job(ctx: &Context<'_>) -> Outcome {
    job_rule(
        ctx,
        "ANALYSISQUERY",
        "SSAS query steps are not supported on the managed instance.",
    )
}
fn merge_job(ctx: &Context<'_>) -> Outcome {
    job_rule(
        ctx,
        "Merge",
        "Merge replication is not supported on the managed instance.",
    )
}
fn queue_reader_job(ctx: &Context<'_>) -> Outcome {
    job_rule(
        ctx,
        "QueueReader",
        "Queue Reader steps are not supported on the managed instance.",
    )
}

fn transact_sql_job(ctx: &Context<'_>) -> Outcome {
    let steps: Vec<String> = ctx
        .instance
        .job_steps
        .iter()
        .filter(|s| s.subsystem.eq_ignore_ascii_case("TSQL") && !s.markers.is_empty())
        .map(|s| {
            format!(
                "{} step {} ({})",
                s.job,
                s.step_id,
                list(s.markers.iter().map(|m| format!("{m:?}")))
            )
        })
        .collect();
    if steps.is_empty() {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "{} T-SQL job step(s) use commands the managed instance does not support",
            steps.len()
        ))
        .with("steps", list(steps.iter().take(20))),
        Fix::action("Rewrite those steps before recreating the jobs on the managed instance."),
    )
}

// ---------------------------------------------------------------- instance: network

fn network_rule(ctx: &Context<'_>, kind: ProbeKind, fix: &str) -> Outcome {
    let probes: Vec<_> = ctx
        .options
        .network
        .iter()
        .filter(|p| p.kind == kind)
        .collect();
    if probes.is_empty() {
        return Outcome::NotEvaluated(NO_NETWORK.into());
    }
    let failed: Vec<_> = probes
        .iter()
        .filter(|p| !matches!(p.outcome, ProbeOutcome::Reachable))
        .collect();
    if failed.is_empty() {
        return Outcome::Pass;
    }
    let mut ev = Evidence::new(list(
        failed
            .iter()
            .map(|p| format!("{}:{} {}", p.host, p.port, p.outcome)),
    ));
    for p in &failed {
        ev = ev.with(&format!("{}:{}", p.host, p.port), &p.outcome);
    }
    Outcome::Fail(ev, Fix::action(fix))
}

fn network_mi_endpoint(ctx: &Context<'_>) -> Outcome {
    network_rule(
        ctx,
        ProbeKind::MiEndpoint,
        "Allow TCP 5022 outbound from SQL Server to the managed instance subnet and inbound on \
         the managed instance subnet's NSG from the SQL Server IP; the link only uses the \
         VNet-local endpoint (VPN, ExpressRoute or peering).",
    )
}

fn network_mi_hadr_port(ctx: &Context<'_>) -> Outcome {
    network_rule(
        ctx,
        ProbeKind::MiHadrPort,
        "Allow TCP 11000-11999 outbound from SQL Server to the managed instance subnet and \
         inbound on its NSG; the HadrPort comes from sys.dm_hadr_fabric_config_parameters on \
         the managed instance and can change after a failover.",
    )
}

fn local_endpoint_listening(ctx: &Context<'_>) -> Outcome {
    network_rule(
        ctx,
        ProbeKind::LocalEndpoint,
        "Start the database mirroring endpoint and allow its port (5022) inbound from the \
         managed instance subnet in the host firewall.",
    )
}

// ---------------------------------------------------------------- requested databases

fn system_database(_: &Context<'_>, name: &DatabaseName) -> Outcome {
    if !is_system_database(name.as_str()) {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "{name} is a system database; the link replicates user databases only"
        )),
        Fix::action(
            "Script server-level objects (logins, Agent jobs, linked servers) from master and \
             msdb and apply them on the managed instance.",
        ),
    )
}

fn database_missing(ctx: &Context<'_>, name: &DatabaseName) -> Outcome {
    if is_system_database(name.as_str())
        || ctx
            .all_databases
            .iter()
            .any(|d| d.name.as_str().eq_ignore_ascii_case(name.as_str()))
    {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "{} has no database named {name}",
            ctx.instance.server_name
        )),
        Fix::action("Check the database name."),
    )
}

// ---------------------------------------------------------------- databases: link

fn database_state(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    if d.state == DatabaseState::Online {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!("the database is {:?}, not ONLINE", d.state))
            .with("state", format!("{:?}", d.state)),
        Fix::action("Bring the database ONLINE before linking it."),
    )
}

fn recovery_model(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    if d.recovery_model == RecoveryModel::Full {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "the recovery model is {}; the link needs FULL",
            d.recovery_model
        ))
        .with("recovery model", d.recovery_model),
        Fix::sql(&[remediation::set_recovery_full(&d.name)])
            .with_note("Take a full backup afterwards (Link.FullBackup) to start the log chain."),
    )
}

fn full_backup(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    if d.last_full_backup.is_some() && d.log_chain_established {
        return Outcome::Pass;
    }
    let summary = match d.last_full_backup {
        None => "no full backup without COPY_ONLY exists".to_owned(),
        Some(_) => {
            "the log chain is not established (no full backup since the switch to FULL recovery)"
                .to_owned()
        }
    };
    let mut ev = Evidence::new(summary).with("log chain established", d.log_chain_established);
    if let Some(t) = d.last_full_backup {
        ev = ev.with("last full backup", t);
    }
    let note = if d.recovery_model == RecoveryModel::Full {
        "The file goes to the instance's default backup directory; change the path as needed. \
         Never COPY_ONLY: a copy-only backup does not start the log chain (error 1475)."
    } else {
        "Run it after ALTER DATABASE … SET RECOVERY FULL (Link.RecoveryModel). The file goes to \
         the instance's default backup directory; change the path as needed. Never COPY_ONLY: \
         a copy-only backup does not start the log chain (error 1475)."
    };
    Outcome::Fail(
        ev,
        Fix::sql(&[remediation::backup_database_full(
            &d.name,
            &BackupPath::default_for(&d.name),
        )])
        .with_note(note),
    )
}

fn multiple_log_files(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    if d.log_files.len() <= 1 {
        return Outcome::Pass;
    }
    let ev = Evidence::new(format!(
        "{} log files; the link replicates databases with one",
        d.log_files.len()
    ))
    .with("log files", list(&d.log_files));
    let removals: Vec<Batch> = d
        .log_files
        .iter()
        .skip(1)
        .filter_map(|f| LogicalFileName::new(f.as_str()).ok())
        .map(|f| remediation::remove_file(&d.name, &f))
        .collect();
    let fix = if removals.is_empty() {
        Fix::action("Remove the extra log files once they hold no active log.")
    } else {
        Fix::sql(&removals).with_note(
            "Back up the log until the extra files hold no active log (sys.dm_db_log_info), \
             then remove them.",
        )
    };
    Outcome::Fail(ev, fix)
}

fn file_stream(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    let Some(c) = &d.catalog else {
        return Outcome::NotEvaluated(NO_CATALOG.into());
    };
    if c.filestream_filegroups.is_empty() && c.filetables == 0 {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new("the database uses FILESTREAM or FileTable, which the managed instance does not support")
            .with("FILESTREAM filegroups", list(&c.filestream_filegroups))
            .with("FileTables", c.filetables),
        Fix::action(
            "Move the FILESTREAM data and FileTables out of the database (e.g. to Azure Blob \
             Storage), drop them and remove the FILESTREAM filegroup(s); otherwise this database \
             can't be linked.",
        ),
    )
}

fn in_memory_oltp_tier(ctx: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    let Some(c) = &d.catalog else {
        return Outcome::NotEvaluated(NO_CATALOG.into());
    };
    let Some(fg) = &c.memory_optimized_filegroup else {
        return Outcome::Pass;
    };
    let Some(t) = ctx.target else {
        return Outcome::NotEvaluated(NO_TARGET.into());
    };
    if TierLimits::of(t.tier).in_memory_oltp {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "In-Memory OLTP (filegroup {fg}) needs Business Critical; the target is {}",
            t.tier
        ))
        .with("filegroup", fg)
        .with("memory-optimized tables", c.memory_optimized_tables)
        .with("target tier", t.tier),
        Fix::action(
            "Link this database to a Business Critical managed instance, sized for the memory-optimized data.",
        ),
    )
}

fn in_memory_oltp_files(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    let Some(c) = &d.catalog else {
        return Outcome::NotEvaluated(NO_CATALOG.into());
    };
    if c.memory_optimized_files <= 1 {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "{} In-Memory OLTP files; the link replicates databases with at most one",
            c.memory_optimized_files
        ))
        .with("files", c.memory_optimized_files),
        Fix::action(
            "Consolidate the memory-optimized filegroup into one container (rebuild the database's memory-optimized filegroup), or migrate with another method.",
        ),
    )
}

fn tde_certificate(ctx: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    let Some(tde) = &d.tde else {
        return Outcome::Pass;
    };
    let Some(known) = ctx
        .target
        .and_then(|t| t.tde_certificate_thumbprints.as_ref())
    else {
        return Outcome::Pass;
    };
    let present = tde
        .thumbprint
        .as_ref()
        .is_some_and(|tp| known.iter().any(|k| k.eq_ignore_ascii_case(tp)));
    if present {
        return Outcome::Pass;
    }
    let mut ev = Evidence::new("the TDE certificate is not on the managed instance")
        .with("encryptor", &tde.encryptor_type);
    if let Some(c) = &tde.certificate {
        ev = ev.with("certificate", c);
    }
    if let Some(tp) = &tde.thumbprint {
        ev = ev.with("thumbprint", tp);
    }
    Outcome::Fail(
        ev,
        Fix::action(
            "Export the TDE certificate with its private key and upload it to the managed \
             instance (PowerShell Add-AzSqlManagedInstanceTransparentDataEncryptionCertificate \
             or the tdeCertificates REST operation), or protect the database with an Azure Key \
             Vault key the managed instance can use.",
        ),
    )
}

fn tde_certificate_unverified(ctx: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    let Some(tde) = &d.tde else {
        return Outcome::Pass;
    };
    if ctx
        .target
        .is_some_and(|t| t.tde_certificate_thumbprints.is_some())
    {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(
            "the database uses TDE; whether its certificate is on the managed instance is unknown",
        )
        .with("encryptor", &tde.encryptor_type)
        .with(
            "certificate",
            tde.certificate.as_deref().unwrap_or("unknown"),
        ),
        Fix::action(
            "Make sure the TDE certificate (with its private key) is uploaded to the managed \
             instance before creating the link.",
        ),
    )
}

fn name_taken(ctx: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    let Some(t) = ctx.target else {
        return Outcome::NotEvaluated(NO_TARGET.into());
    };
    match t.has_database(&d.name) {
        None => Outcome::NotEvaluated("the managed instance's databases are unknown".into()),
        Some(false) => Outcome::Pass,
        Some(true) => Outcome::Fail(
            Evidence::new(format!(
                "{} already has a database named {}",
                t.name, d.name
            )),
            Fix::action(
                "Drop or rename the database on the managed instance, or link to another instance.",
            ),
        ),
    }
}

fn ag_membership(ctx: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    let Some(ag) = &d.ag else {
        return Outcome::Pass;
    };
    if ctx.options.link_mode == LinkMode::MultiDatabase || ag.database_count <= 1 {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "availability group {} holds {} databases; a SingleDatabase link needs an AG with one",
            ag.ag_name, ag.database_count
        ))
        .with("availability group", &ag.ag_name)
        .with("databases", ag.database_count),
        Fix::action(
            "Remove the other databases from the availability group, link this database through \
             an AG of its own, or use MultiDatabase link mode.",
        ),
    )
}

fn seeding_log_backup_risk(ctx: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    if ctx.instance.trace_flag_on(12381) {
        return Outcome::Pass;
    }
    let Some(last) = d.last_log_backup else {
        return Outcome::Pass;
    };
    let window =
        std::time::Duration::from_secs(u64::from(ctx.options.log_backup_window_hours) * 3600);
    if ctx.options.now.since(last) > window {
        return Outcome::Pass;
    }
    let fix = remediation::trace_on_global(&[LinkTraceFlag::SeedingLogTruncation])
        .map(|b| Fix::sql(&[b]))
        .unwrap_or(Fix::None)
        .with_note(
            "A log backup during seeding truncates the log and fails the link (errors 1408/1412). \
             On builds that support trace flag 12381, turn it on for the seeding window and off \
             afterwards (DBCC TRACEOFF (12381, -1)), watching log growth; which build introduced \
             it is not documented. Otherwise pause the log backup jobs until seeding completes.",
        );
    Outcome::Fail(
        Evidence::new("log backups are running; one taken during seeding breaks the link")
            .with("last log backup", last),
        fix,
    )
}

fn adr_version_store(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    if d.adr_enabled != Some(true) {
        return Outcome::Pass;
    }
    let Some(c) = &d.catalog else {
        return Outcome::NotEvaluated(NO_CATALOG.into());
    };
    match &c.pvs_filegroup {
        Some(fg) if !fg.eq_ignore_ascii_case("PRIMARY") => Outcome::Fail(
            Evidence::new(format!(
                "the ADR version store is on filegroup {fg}; restores on the managed instance need it on PRIMARY"
            ))
            .with("version store filegroup", fg),
            Fix::sql(&[remediation::enable_accelerated_database_recovery(&d.name)]).with_note(
                "First turn ADR off (ALTER DATABASE … SET ACCELERATED_DATABASE_RECOVERY = OFF) \
                 and let the version store drain (sys.sp_persistent_version_cleanup), then run this.",
            ),
        ),
        _ => Outcome::Pass,
    }
}

fn adr_disabled(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    if d.adr_enabled != Some(false) {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(
            "accelerated database recovery is off; it can't be turned on after migration",
        ),
        Fix::sql(&[remediation::enable_accelerated_database_recovery(&d.name)])
            .with_note("Only if you want ADR on the managed instance."),
    )
}

fn service_broker(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    if d.broker_enabled {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(
            "Service Broker is disabled; it can't be used on the managed instance unless enabled before migrating",
        ),
        Fix::sql(&[remediation::enable_broker(&d.name, Termination::NoWait)]).with_note(
            "Only if you need Service Broker on the managed instance; it needs exclusive access.",
        ),
    )
}

fn cdc(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    if !d.cdc_enabled {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new("change data capture is enabled"),
        Fix::action(
            "Reconfigure CDC (capture and cleanup jobs) on the managed instance after migration.",
        ),
    )
}

fn replication(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    let r = d.replication;
    let roles: Vec<&str> = [
        (r.published, "publisher"),
        (r.merge_published, "merge publisher"),
        (r.subscribed, "subscriber"),
        (r.distributor, "distributor"),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, n)| n)
    .collect();
    if roles.is_empty() {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "the database takes part in replication as {}",
            list(&roles)
        )),
        Fix::action(
            "The linked copy on the managed instance can't be a publisher while it is a \
             secondary; reconfigure replication after migration.",
        ),
    )
}

// ---------------------------------------------------------------- databases: §5.1

fn mi_database_size(ctx: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    let (max, what) = match ctx.target {
        Some(t) => (t.storage_max_gb, format!("{}'s reserved storage", t.name)),
        None => (
            NEXT_GEN_GENERAL_PURPOSE.absolute_max_storage_gb(),
            "the largest managed instance".to_owned(),
        ),
    };
    let size = gb(d.size_mb());
    if size <= max {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!("{size} GB exceed {what} ({max} GB)"))
            .with("size GB", size)
            .with("max GB", max),
        Fix::action(
            "Reduce the database (archive or purge data) or reserve more storage on a larger instance.",
        ),
    )
}

fn compat_level(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    if d.compatibility_level >= 100 {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "compatibility level {} is raised to 100 on the managed instance",
            d.compatibility_level
        ))
        .with("compatibility level", d.compatibility_level),
        Fix::action(
            "Test the application at compatibility level 100 or later and raise it with ALTER DATABASE … SET COMPATIBILITY_LEVEL.",
        ),
    )
}

fn clr_strict_security(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    let Some(c) = &d.catalog else {
        return Outcome::NotEvaluated(NO_CATALOG.into());
    };
    let safe: Vec<String> = c
        .assemblies
        .iter()
        .filter(|a| !a.permission_set.to_ascii_uppercase().starts_with("UNSAFE"))
        .map(|a| format!("{} ({})", a.name, a.permission_set))
        .collect();
    if safe.is_empty() {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(
            "SAFE and EXTERNAL_ACCESS assemblies are treated as UNSAFE under clr strict security",
        )
        .with("assemblies", list(&safe)),
        Fix::action(
            "Sign the assemblies with a certificate or asymmetric key whose login has UNSAFE \
             ASSEMBLY permission, or trust them with sys.sp_add_trusted_assembly on the managed instance.",
        ),
    )
}

fn principal_alias(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    if d.catalog.is_none() && d.code.is_none() {
        return Outcome::NotEvaluated(NO_CATALOG.into());
    }
    let aliased = d.catalog.as_ref().map_or(0, |c| c.aliased_users);
    let calls: Vec<String> = d
        .code
        .iter()
        .flat_map(|c| c.hits_of(Marker::AddAlias))
        .map(|h| h.object.clone())
        .collect();
    if aliased == 0 && calls.is_empty() {
        return Outcome::Pass;
    }
    let mut ev =
        Evidence::new("database principal aliases are not supported on the managed instance")
            .with("aliased users", aliased);
    if !calls.is_empty() {
        ev = ev.with("sp_addalias in", list(&calls));
    }
    Outcome::Fail(
        ev,
        Fix::action("Replace aliases with database users and role memberships."),
    )
}

fn next_column(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    let Some(c) = &d.catalog else {
        return Outcome::NotEvaluated(NO_CATALOG.into());
    };
    if c.objects_named_next.is_empty() {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new("tables or columns are named NEXT, a reserved word on the managed instance")
            .with("objects", list(c.objects_named_next.iter().take(20))),
        Fix::action("Rename them, or always quote the name ([NEXT]) in every query."),
    )
}

fn code_rule(d: &DatabaseFacts, marker: Marker, what: &str, fix: &str) -> Outcome {
    let Some(code) = &d.code else {
        return Outcome::NotEvaluated(NO_CODE.into());
    };
    let hits: Vec<String> = code
        .hits_of(marker)
        .map(|h| match &h.detail {
            Some(detail) => format!("{} ({detail})", h.object),
            None => h.object.clone(),
        })
        .collect();
    if hits.is_empty() {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!("{what} in {} module(s)", hits.len()))
            .with("modules", list(hits.iter().take(20))),
        Fix::action(fix),
    )
}

fn xp_cmdshell(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    code_rule(
        d,
        Marker::XpCmdshell,
        "xp_cmdshell is called",
        "The managed instance has no xp_cmdshell: move the shell work to Azure Automation, Azure Functions or the application.",
    )
}
fn bulk_insert(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    code_rule(
        d,
        Marker::BulkInsert,
        "BULK INSERT reads a file",
        "Load from Azure Blob Storage instead: CREATE EXTERNAL DATA SOURCE … TYPE = BLOB_STORAGE and BULK INSERT … WITH (DATA_SOURCE = …).",
    )
}
fn openrowset_bulk(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    code_rule(
        d,
        Marker::OpenRowsetBulk,
        "OPENROWSET(BULK) reads a file",
        "Read from Azure Blob Storage instead: OPENROWSET(BULK …, DATA_SOURCE = …).",
    )
}
fn openrowset_provider(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    code_rule(
        d,
        Marker::OpenRowsetProvider,
        "OPENROWSET uses a non-SQL Server provider",
        "The managed instance's OPENROWSET only reaches SQL Server (and Azure SQL); move the other sources into SQL Server or load them through Azure Data Factory.",
    )
}
fn assembly_from_file(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    code_rule(
        d,
        Marker::AssemblyFromFile,
        "CREATE/ALTER ASSEMBLY loads from a file",
        "Create the assembly FROM its binary (0x…) instead of a file path.",
    )
}
fn cryptographic_provider(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    code_rule(
        d,
        Marker::CryptographicProvider,
        "CREATE/ALTER CRYPTOGRAPHIC PROVIDER is used",
        "The managed instance does not support EKM providers; use Azure Key Vault instead.",
    )
}
fn compute_clause(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    code_rule(
        d,
        Marker::ComputeClause,
        "the COMPUTE clause is used",
        "Rewrite with GROUP BY … ROLLUP or window functions.",
    )
}
fn disable_def_cnst_chk(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    code_rule(
        d,
        Marker::DisableDefCnstChk,
        "SET DISABLE_DEF_CNST_CHK is used",
        "Remove the SET option; it no longer exists.",
    )
}
fn fast_first_row(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    code_rule(
        d,
        Marker::FastFirstRow,
        "the FASTFIRSTROW hint is used",
        "Replace FASTFIRSTROW with OPTION (FAST n).",
    )
}
fn non_ansi_left(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    code_rule(
        d,
        Marker::NonAnsiLeftJoin,
        "the *= outer join syntax is used",
        "Rewrite as LEFT OUTER JOIN.",
    )
}
fn non_ansi_right(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    code_rule(
        d,
        Marker::NonAnsiRightJoin,
        "the =* outer join syntax is used",
        "Rewrite as RIGHT OUTER JOIN.",
    )
}
fn raiserror(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    code_rule(
        d,
        Marker::LegacyRaiserror,
        "the legacy RAISERROR syntax is used",
        "Rewrite as RAISERROR(msg, severity, state) or THROW.",
    )
}
fn sql_mail(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    code_rule(
        d,
        Marker::SqlMail,
        "SQL Mail procedures are called",
        "Use Database Mail (msdb.dbo.sp_send_dbmail).",
    )
}
fn system_procedures_110(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    code_rule(
        d,
        Marker::RemovedSystemProcedure,
        "removed system procedures are called",
        "Replace sp_dboption with ALTER DATABASE … SET.",
    )
}

fn remote_servers_by_object(d: &DatabaseFacts) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for h in d.code.iter().flat_map(|c| c.hits_of(Marker::RemoteServer)) {
        if let Some(server) = &h.detail {
            map.entry(h.object.clone())
                .or_default()
                .push(server.clone());
        }
    }
    map
}

fn dtc_rule(ctx: &Context<'_>, d: &DatabaseFacts, heterogeneous: bool) -> Outcome {
    let Some(code) = &d.code else {
        return Outcome::NotEvaluated(NO_CODE.into());
    };
    let remotes = remote_servers_by_object(d);
    let objects: Vec<String> = code
        .hits_of(Marker::DistributedTransaction)
        .filter(|h| {
            let non_sql = remotes.get(&h.object).is_some_and(|servers| {
                servers.iter().any(|s| {
                    ctx.instance
                        .linked_server(s)
                        .is_some_and(|ls| !ls.is_sql_server())
                })
            });
            non_sql == heterogeneous
        })
        .map(|h| h.object.clone())
        .collect();
    if objects.is_empty() {
        return Outcome::Pass;
    }
    let what = if heterogeneous {
        "distributed transactions reach non-SQL Server linked servers"
    } else {
        "distributed transactions span SQL Server instances"
    };
    Outcome::Fail(
        Evidence::new(format!("{what} in {} module(s)", objects.len()))
            .with("modules", list(objects.iter().take(20))),
        Fix::action(if heterogeneous {
            "The managed instance can't run distributed transactions with non-SQL Server sources; redesign the transaction."
        } else {
            "Distributed transactions work only between managed instances in a server trust \
             group; DTC between SQL Server and the managed instance is not carried over."
        }),
    )
}

fn homogeneous_dtc(ctx: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    dtc_rule(ctx, d, false)
}

fn heterogeneous_dtc(ctx: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    dtc_rule(ctx, d, true)
}

fn linked_server_non_sql(ctx: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    if d.code.is_none() {
        return Outcome::NotEvaluated(NO_CODE.into());
    }
    let mut uses: Vec<String> = Vec::new();
    for (object, servers) in remote_servers_by_object(d) {
        for s in servers {
            if let Some(ls) = ctx
                .instance
                .linked_server(&s)
                .filter(|ls| !ls.is_sql_server())
            {
                uses.push(format!("{object} → {} ({})", ls.name, ls.provider));
            }
        }
    }
    if uses.is_empty() {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "{} reference(s) to linked servers with a non-SQL Server provider",
            uses.len()
        ))
        .with("references", list(uses.iter().take(20))),
        Fix::action(
            "The managed instance's linked servers reach SQL Server and Azure SQL only; move \
             the data into SQL Server or integrate through Azure Data Factory.",
        ),
    )
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
pub const RULES: &[Rule] = &[
    rule!(
        "Link.SqlVersion",
        Blocker,
        Instance,
        "SQL Server version supports the link",
        F11,
        "SERVERPROPERTY('ProductVersion') against the minimum builds",
        Instance(sql_version)
    ),
    rule!(
        "Link.AzureConnectPack",
        Blocker,
        Instance,
        "sp_certificate_add_issuer is available (CU / Azure Connect pack)",
        F14,
        "OBJECT_ID('sys.sp_certificate_add_issuer')",
        Instance(azure_connect_pack)
    ),
    rule!(
        "Link.Edition",
        Blocker,
        Instance,
        "Edition supports availability groups",
        F11,
        "SERVERPROPERTY('Edition')",
        Instance(edition)
    ),
    rule!(
        "Link.MultiDatabaseMode",
        Blocker,
        Instance,
        "MultiDatabase link mode is supported",
        "milink-facts §1.2",
        "major version and edition; the CU27 / CU9 build numbers are not in the reference, so the CU is not checked",
        Instance(multi_database_mode)
    ),
    rule!(
        "Link.HostOs",
        Blocker,
        Instance,
        "Host OS can run the link",
        F11,
        "the host named by @@VERSION",
        Instance(host_os)
    ),
    rule!(
        "Link.HadrEnabled",
        Blocker,
        Instance,
        "Always On availability groups are enabled",
        F13,
        "SERVERPROPERTY('IsHadrEnabled')",
        Instance(hadr_enabled)
    ),
    rule!(
        "Link.TraceFlags",
        Warning,
        Instance,
        "Trace flags 1800 and 9567 are on",
        F13,
        "DBCC TRACESTATUS(-1)",
        Instance(link_trace_flags)
    ),
    rule!(
        "Link.MasterKey",
        Warning,
        Instance,
        "Database master key exists in master",
        F13,
        "master.sys.symmetric_keys (id 101)",
        Instance(master_key)
    ),
    rule!(
        "Link.EndpointMissing",
        Info,
        Instance,
        "Database mirroring endpoint exists",
        F15,
        "sys.database_mirroring_endpoints",
        Instance(endpoint_missing)
    ),
    rule!(
        "Link.Endpoint",
        Blocker,
        Instance,
        "Endpoint uses certificate auth and AES, and is started",
        F15,
        "sys.database_mirroring_endpoints",
        Instance(endpoint)
    ),
    rule!(
        "Link.CertificateExpired",
        Blocker,
        Instance,
        "Link certificates are valid",
        F14,
        "expiry of the endpoint certificate and of the certificate named after the managed instance's FQDN",
        Instance(certificate_expired)
    ),
    rule!(
        "Link.CertificateExpiring",
        Warning,
        Instance,
        "Link certificates don't expire soon",
        F14,
        "the same certificates, against the warning window",
        Instance(certificate_expiring)
    ),
    rule!(
        "Link.RootCaTrust",
        Warning,
        Instance,
        "Azure root CAs are trusted",
        F14,
        "certificates in master named MicrosoftPKI / DigiCertPKI or with their subjects; the issuer registration itself is not visible in a catalog view",
        Instance(root_ca_trust)
    ),
    rule!(
        "Link.Collation",
        Warning,
        Instance,
        "Server collations match",
        F13,
        "SERVERPROPERTY('Collation') and the managed instance's collation",
        Instance(collation)
    ),
    rule!(
        "Link.UpdatePolicy",
        Blocker,
        Instance,
        "Update policy allows the intended failback",
        F19,
        "version capabilities and databaseFormat",
        Instance(update_policy)
    ),
    rule!(
        "Link.OneWay",
        Info,
        Instance,
        "Failback is possible",
        F19,
        "version capabilities and databaseFormat",
        Instance(one_way)
    ),
    rule!(
        "Link.FailoverGroup",
        Blocker,
        Instance,
        "Managed instance is not in a failover group",
        F18,
        "failover group membership of the target",
        Instance(failover_group)
    ),
    rule!(
        "Link.DatabaseCountLimit",
        Blocker,
        Instance,
        "Managed instance has room for the databases",
        F53,
        "databases on the target + databases to link, against 100 / 500",
        Instance(database_count_limit)
    ),
    rule!(
        "Link.StorageFits",
        Blocker,
        Instance,
        "Managed instance storage fits the databases",
        F53,
        "storage in use + data and log size of the databases to link, against the reserved storage",
        Instance(storage_fits)
    ),
    rule!(
        "Link.NetworkMiEndpoint",
        Blocker,
        Instance,
        "SQL Server reaches the managed instance on 5022",
        F16,
        "TCP connect to the managed instance FQDN:5022",
        Instance(network_mi_endpoint)
    ),
    rule!(
        "Link.NetworkMiHadrPort",
        Blocker,
        Instance,
        "SQL Server reaches the managed instance's HadrPort",
        F16,
        "TCP connect to node:HadrPort (11000-11999)",
        Instance(network_mi_hadr_port)
    ),
    rule!(
        "Link.LocalEndpointListening",
        Blocker,
        Instance,
        "The mirroring endpoint listens",
        F16,
        "TCP connect to the SQL Server endpoint port",
        Instance(local_endpoint_listening)
    ),
    rule!(
        "NumDbExceeds100",
        Warning,
        Instance,
        "More than 100 databases",
        F51,
        "count of user databases",
        Instance(num_db_exceeds_100)
    ),
    rule!(
        "MIInstanceSize",
        Warning,
        Instance,
        "Instance storage exceeds the managed instance maximum",
        F51,
        "sum of data and log sizes against the current tier maximum (not the outdated 8 TB of the rule page)",
        Instance(mi_instance_size)
    ),
    rule!(
        "TraceFlags",
        Warning,
        Instance,
        "Trace flags don't carry over",
        F51,
        "global trace flags other than 1800, 9567, 12381 and the ones listed as supported in the options",
        Instance(mi_trace_flags)
    ),
    rule!(
        "WindowsAuthentication",
        Warning,
        Instance,
        "Windows logins",
        F51,
        "enabled Windows logins and groups except NT SERVICE, NT AUTHORITY and BUILTIN",
        Instance(windows_authentication)
    ),
    rule!(
        "PowerShellJob",
        Warning,
        Instance,
        "PowerShell job steps",
        F51,
        "msdb job steps by subsystem",
        Instance(powershell_job)
    ),
    rule!(
        "AnalysisCommandJob",
        Warning,
        Instance,
        "SSAS command job steps",
        F51,
        "msdb job steps by subsystem",
        Instance(analysis_command_job)
    ),
    rule!(
        "AnalysisQueryJob",
        Warning,
        Instance,
        "SSAS query job steps",
        F51,
        "msdb job steps by subsystem",
        Instance(analysis_query_job)
    ),
    rule!(
        "MergeJob",
        Warning,
        Instance,
        "Merge replication job steps",
        F51,
        "msdb job steps by subsystem",
        Instance(merge_job)
    ),
    rule!(
        "QueueReaderJob",
        Warning,
        Instance,
        "Queue Reader job steps",
        F51,
        "msdb job steps by subsystem",
        Instance(queue_reader_job)
    ),
    rule!(
        "TransactSqlJob",
        Warning,
        Instance,
        "T-SQL job steps with unsupported commands",
        F51,
        "T-SQL job step commands scanned for the same constructs as module text",
        Instance(transact_sql_job)
    ),
    rule!(
        "Link.SystemDatabase",
        Info,
        Database,
        "System databases are not linked",
        F18,
        "the requested names",
        Requested(system_database)
    ),
    rule!(
        "Link.DatabaseMissing",
        Blocker,
        Database,
        "The database exists",
        F13,
        "the requested names against sys.databases",
        Requested(database_missing)
    ),
    rule!(
        "Link.DatabaseState",
        Blocker,
        Database,
        "The database is online",
        F13,
        "sys.databases.state_desc",
        Database(database_state)
    ),
    rule!(
        "Link.RecoveryModel",
        Blocker,
        Database,
        "Full recovery model",
        F13,
        "sys.databases.recovery_model_desc",
        Database(recovery_model)
    ),
    rule!(
        "Link.FullBackup",
        Blocker,
        Database,
        "A full backup started the log chain",
        F13,
        "msdb.dbo.backupset (type D, not COPY_ONLY) and sys.database_recovery_status.last_log_backup_lsn",
        Database(full_backup)
    ),
    rule!(
        "MultipleLogFiles",
        Blocker,
        Database,
        "One log file",
        F51_18,
        "sys.master_files",
        Database(multiple_log_files)
    ),
    rule!(
        "FileStream",
        Blocker,
        Database,
        "No FILESTREAM or FileTable",
        F51_18,
        "sys.filegroups (FD) and sys.tables.is_filetable",
        Database(file_stream)
    ),
    rule!(
        "Link.InMemoryOltpTier",
        Blocker,
        Database,
        "In-Memory OLTP needs Business Critical",
        F18,
        "sys.filegroups (FX) and the target tier",
        Database(in_memory_oltp_tier)
    ),
    rule!(
        "Link.InMemoryOltpFiles",
        Blocker,
        Database,
        "At most one In-Memory OLTP file",
        F18,
        "files of the memory-optimized filegroup",
        Database(in_memory_oltp_files)
    ),
    rule!(
        "Link.TdeCertificate",
        Blocker,
        Database,
        "TDE certificate is on the managed instance",
        F13,
        "sys.dm_database_encryption_keys thumbprint against the target's TDE certificates",
        Database(tde_certificate)
    ),
    rule!(
        "Link.TdeCertificateUnverified",
        Warning,
        Database,
        "TDE certificate presence is unknown",
        F13,
        "TDE on, target TDE certificates unknown",
        Database(tde_certificate_unverified)
    ),
    rule!(
        "Link.NameTaken",
        Blocker,
        Database,
        "The name is free on the managed instance",
        F13,
        "the target's database names",
        Database(name_taken)
    ),
    rule!(
        "Link.AgMembership",
        Blocker,
        Database,
        "One database per availability group (SingleDatabase mode)",
        F18,
        "sys.availability_databases_cluster",
        Database(ag_membership)
    ),
    rule!(
        "Link.SeedingLogBackupRisk",
        Warning,
        Database,
        "Log backups can break seeding",
        "milink-facts §3.3",
        "recent log backups in msdb and trace flag 12381",
        Database(seeding_log_backup_risk)
    ),
    rule!(
        "Link.AdrVersionStore",
        Blocker,
        Database,
        "ADR version store on PRIMARY",
        F18,
        "sys.dm_tran_persistent_version_store_stats",
        Database(adr_version_store)
    ),
    rule!(
        "Link.AdrDisabled",
        Info,
        Database,
        "Accelerated database recovery",
        F18,
        "sys.databases.is_accelerated_database_recovery_on (2019+)",
        Database(adr_disabled)
    ),
    rule!(
        "Link.ServiceBroker",
        Info,
        Database,
        "Service Broker",
        F13,
        "sys.databases.is_broker_enabled",
        Database(service_broker)
    ),
    rule!(
        "Link.Cdc",
        Info,
        Database,
        "Change data capture",
        F18,
        "sys.databases.is_cdc_enabled",
        Database(cdc)
    ),
    rule!(
        "Link.Replication",
        Warning,
        Database,
        "Replication",
        F18,
        "sys.databases replication flags",
        Database(replication)
    ),
    rule!(
        "MIDatabaseSize",
        Blocker,
        Database,
        "Database fits the managed instance",
        F51,
        "data and log size against the reserved storage (or the largest tier)",
        Database(mi_database_size)
    ),
    rule!(
        "DbCompatLevelLowerThan100",
        Warning,
        Database,
        "Compatibility level below 100",
        F51,
        "sys.databases.compatibility_level",
        Database(compat_level)
    ),
    rule!(
        "ClrStrictSecurity",
        Warning,
        Database,
        "CLR assemblies under clr strict security",
        F51,
        "sys.assemblies permission sets",
        Database(clr_strict_security)
    ),
    rule!(
        "DatabasePrincipalAlias",
        Blocker,
        Database,
        "Database principal aliases",
        F51,
        "sys.sysusers.isaliased and sp_addalias in module text",
        Database(principal_alias)
    ),
    rule!(
        "NextColumn",
        Blocker,
        Database,
        "Tables or columns named NEXT",
        F51,
        "sys.tables and sys.columns",
        Database(next_column)
    ),
    rule!(
        "XpCmdshell",
        Blocker,
        Database,
        "xp_cmdshell",
        F51,
        "module text",
        Database(xp_cmdshell)
    ),
    rule!(
        "BulkInsert",
        Blocker,
        Database,
        "BULK INSERT from a non-blob source",
        F51,
        "module text: BULK INSERT without DATA_SOURCE",
        Database(bulk_insert)
    ),
    rule!(
        "OpenRowsetWithNonBlobDataSourceBulk",
        Blocker,
        Database,
        "OPENROWSET(BULK) from a non-blob source",
        F51,
        "module text: OPENROWSET(BULK) without DATA_SOURCE",
        Database(openrowset_bulk)
    ),
    rule!(
        "OpenRowsetWithNonSQLProvider",
        Blocker,
        Database,
        "OPENROWSET with a non-SQL Server provider",
        F51,
        "module text: OPENROWSET('provider', …)",
        Database(openrowset_provider)
    ),
    rule!(
        "MIHomogeneousMSDTCTransactSQL",
        Blocker,
        Database,
        "Distributed transactions across SQL Server instances",
        F51,
        "module text: BEGIN DISTRIBUTED TRANSACTION without a non-SQL linked server in the same module",
        Database(homogeneous_dtc)
    ),
    rule!(
        "MIHeterogeneousMSDTCTransactSQL",
        Blocker,
        Database,
        "Distributed transactions with non-SQL Server sources",
        F51,
        "module text: BEGIN DISTRIBUTED TRANSACTION with a non-SQL linked server in the same module",
        Database(heterogeneous_dtc)
    ),
    rule!(
        "LinkedServerWithNonSQLProvider",
        Blocker,
        Database,
        "Linked servers with a non-SQL Server provider",
        F51,
        "four-part names, OPENQUERY and EXEC … AT in module text, against sys.servers providers",
        Database(linked_server_non_sql)
    ),
    rule!(
        "AssemblyFromFile",
        Blocker,
        Database,
        "CREATE/ALTER ASSEMBLY from a file",
        F51,
        "module text",
        Database(assembly_from_file)
    ),
    rule!(
        "CryptographicProvider",
        Blocker,
        Database,
        "Cryptographic providers",
        F51,
        "module text",
        Database(cryptographic_provider)
    ),
    rule!(
        "DisableDefCNSTCHK",
        Blocker,
        Database,
        "SET DISABLE_DEF_CNST_CHK",
        F51,
        "module text",
        Database(disable_def_cnst_chk)
    ),
    rule!(
        "ComputeClause",
        Warning,
        Database,
        "COMPUTE clause",
        F51,
        "module text",
        Database(compute_clause)
    ),
    rule!(
        "FastFirstRowHint",
        Warning,
        Database,
        "FASTFIRSTROW hint",
        F51,
        "module text",
        Database(fast_first_row)
    ),
    rule!(
        "NonANSILeftOuterJoinSyntax",
        Warning,
        Database,
        "*= outer joins",
        F51,
        "module text",
        Database(non_ansi_left)
    ),
    rule!(
        "NonANSIRightOuterJoinSyntax",
        Warning,
        Database,
        "=* outer joins",
        F51,
        "module text",
        Database(non_ansi_right)
    ),
    rule!(
        "RAISERROR",
        Warning,
        Database,
        "Legacy RAISERROR syntax",
        F51,
        "module text",
        Database(raiserror)
    ),
    rule!(
        "SqlMail",
        Warning,
        Database,
        "SQL Mail",
        F51,
        "module text",
        Database(sql_mail)
    ),
    rule!(
        "SystemProcedures110",
        Warning,
        Database,
        "Removed system procedures",
        F51,
        "module text: sp_dboption (the rule page does not list the procedures)",
        Database(system_procedures_110)
    ),
];

/// The catalogue entry of `id`.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}
