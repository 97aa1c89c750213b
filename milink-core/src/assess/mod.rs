//! Readiness assessment and SKU recommendation, as data (DESIGN §5).
//!
//! Facts in ([`InstanceFacts`], [`DatabaseFacts`], [`TargetFacts`]), a [`ReadinessReport`] out.
//! [`assess`] is pure: no I/O, no clock (time comes in [`AssessOptions::now`]). Every rule in
//! [`RULES`] runs; nothing stops at the first problem. Acting on a report with blockers is the
//! error ([`ReadinessReport::ensure_ready`] → [`crate::Error::NotReady`]).
//!
//! Gathering the facts is separate ([`gather`]): a fixed set of [`PROBE_COUNT`] probe batches
//! per instance, whatever the number of databases, sent through the [`FactSource`] seam, plus
//! module text scanning, one batch per scanned database with bounded concurrency (the one
//! documented exception). Network reachability ([`network`]) is async TCP and turns into
//! findings through [`AssessOptions::network`].
//!
//! # Rule ids
//!
//! Link checks (milink-facts §1, §3.3): `Link.SqlVersion`, `Link.AzureConnectPack`,
//! `Link.Edition`, `Link.MultiDatabaseMode`, `Link.FromManagedInstance`, `Link.HostOs`,
//! `Link.Sysadmin`, `Link.FailoverCluster2016`, `Link.SystemAccount2016`, `Link.HadrEnabled`,
//! `Link.TraceFlags`, `Link.TraceFlagsAtStartup`, `Link.MasterKey`, `Link.EndpointMissing`,
//! `Link.Endpoint`, `Link.EndpointPort`, `Link.CertificateExpired`, `Link.CertificateExpiring`,
//! `Link.InstanceCertificate`, `Link.RootCaTrust`, `Link.AzurePermissions`, `Link.Collation`,
//! `Link.UpdatePolicy`, `Link.OneWay`, `Link.ServiceManagedKey`, `Link.FailoverGroup`,
//! `Link.DatabaseCountLimit`, `Link.StorageFits`, `Link.ServerTrustCertificate`,
//! `Link.NetworkMiEndpoint`, `Link.NetworkMiHadrPort`, `Link.LocalEndpointListening`,
//! `Link.NetworkMiToSqlServer`, `Link.SubnetOverlap`, `Link.SystemDatabase`,
//! `Link.DatabaseMissing`, `Link.DatabaseState`, `Link.RecoveryModel`, `Link.FullBackup`,
//! `Link.BackupChecksum`, `Link.InMemoryOltpTier`, `Link.InMemoryOltpFiles`,
//! `Link.TdeCertificate`, `Link.TdeCertificateUnverified`, `Link.NameTaken`,
//! `Link.ExistingLink`, `Link.OtherDistributedAg`, `Link.AgMembership`,
//! `Link.SeedingLogBackupRisk`, `Link.AdrVersionStore`, `Link.AdrDisabled`,
//! `Link.ServiceBroker`, `Link.Cdc`, `Link.Replication`. `docs/readiness-coverage.md` maps them
//! to the link's documented prerequisites, with what each can't see.
//!
//! Managed instance compatibility rules (milink-facts §5.1), under their documented ids: all 34
//! ids of the stored list (33 rows; the two non-ANSI join ids share one) — `AnalysisCommandJob`, `AnalysisQueryJob`, `AssemblyFromFile`,
//! `BulkInsert`, `ClrStrictSecurity`, `ComputeClause`, `CryptographicProvider`,
//! `DatabasePrincipalAlias`, `DbCompatLevelLowerThan100`, `DisableDefCNSTCHK`,
//! `FastFirstRowHint`, `FileStream`, `LinkedServerWithNonSQLProvider`, `MergeJob`,
//! `MIDatabaseSize`, `MIHeterogeneousMSDTCTransactSQL`, `MIHomogeneousMSDTCTransactSQL`,
//! `MIInstanceSize`, `MultipleLogFiles`, `NextColumn`, `NonANSILeftOuterJoinSyntax`,
//! `NonANSIRightOuterJoinSyntax`, `NumDbExceeds100`, `OpenRowsetWithNonBlobDataSourceBulk`,
//! `OpenRowsetWithNonSQLProvider`, `PowerShellJob`, `QueueReaderJob`, `RAISERROR`, `SqlMail`,
//! `SystemProcedures110`, `TraceFlags`, `TransactSqlJob`, `WindowsAuthentication`.
//! "Issue" rules are blockers, "Warning" rules warnings.
//!
//! What the facts can't decide, and so what these rules can't see:
//! - Code-based rules read the text of modules stored in the database (procedures, functions,
//!   views, triggers) and of T-SQL Agent job steps. SQL sent by applications, SSIS packages or
//!   reports and SQL built at run time (dynamic SQL in strings and variables) are invisible
//!   to them. Encrypted modules (`WITH ENCRYPTION`: no text) are named in
//!   [`CodeFacts::encrypted`]; a code-based rule that finds nothing in a database with
//!   encrypted modules reports "not evaluated" with their names instead of passing.
//! - The database rules of §5.1 assess the databases to link by default; Microsoft's tools
//!   assess every database, which [`AssessOptions::compatibility_scope`] offers
//!   ([`CompatibilityScope::AllDatabases`]). The `Link.` rules always look at the databases to
//!   link only.
//! - `SystemProcedures110`: the six procedures the rule page lists (`sp_dboption`,
//!   `sp_addserver`, `sp_dropalias`, `sp_activedirectory_obj`, `sp_activedirectory_scp`,
//!   `sp_activedirectory_start`) are recognised when module text calls them by name.
//! - `TransactSqlJob`: "unsupported commands" are not enumerated; job steps are checked for
//!   the constructs the module rules know.
//! - `MIHomogeneousMSDTCTransactSQL` vs `MIHeterogeneousMSDTCTransactSQL`: decided by the
//!   linked servers referenced in the same module; a remote reached only through dynamic SQL
//!   or a synonym counts as homogeneous.
//! - `LinkedServerWithNonSQLProvider` reports every linked server of `sys.servers` with a
//!   non-SQL Server provider, used or not, and where module text uses it (four-part names,
//!   `OPENQUERY`, `EXEC … AT`); a use through dynamic SQL or from outside the database is not
//!   seen. `OPENDATASOURCE` with a non-SQL Server provider in module text is reported too.
//! - `MIInstanceSize` / `MIDatabaseSize` use the current tier limits (§5.3), not the outdated
//!   8 TB / 16 TB of the rule page.
//! - `TraceFlags` reports the global flags outside the managed instance's documented list
//!   ([`MI_SUPPORTED_TRACE_FLAGS`]); the link's own 1800, 9567 and 12381 are `Link.TraceFlags`'
//!   business.
//! - `WindowsAuthentication` is about database users, as the rule page says: it reports, per
//!   database, the users and groups of type Windows with the login each maps to and the
//!   orphaned ones ([`CatalogFacts::windows_users`]), not the instance's Windows logins.
//!
//! # Round trips
//!
//! [`gather_instance_facts`] sends [`PROBE_COUNT`] (10) batches per instance: instance
//! properties (with sysadmin, the instance name, SQL Server's address, the failover cluster and
//! `NT AUTHORITY\SYSTEM`'s permissions, the `-T` startup parameters and the MultiDatabase
//! switch), trace flags, mirroring endpoints, certificates (with their DER), Agent job steps,
//! Windows logins, linked servers, databases (with backups and their checksums, AG and
//! distributed AG membership, and TDE), database files, and the per-database catalog (one batch
//! that loops over the databases on the server and reads, among the rest, each database's
//! Windows users with their logins), plus one module-text batch per scanned database, at most
//! [`GatherOptions::module_concurrency`] at a time. The managed instance's facts come from
//! `ArmManagedInstance::target_facts` (feature `arm`) in a fixed number of `GET`s.

pub mod facts;
#[cfg(any(test, feature = "sim"))]
pub mod fixtures;
pub mod gather;
pub mod network;
pub mod report;
pub mod rules;
pub mod scan;
pub mod sku;

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

pub use crate::tsql::readiness::PROBE_COUNT;
pub use facts::{
    AgMembership, ArmPermission, AssemblyFact, CatalogFacts, CertificateFact, ClusterFacts,
    CodeFacts, DatabaseFacts, DatabaseState, Edition, EndpointState, HostOs, HostPlatform,
    InstanceFacts, JobStep, LinkFact, LinkedServer, MirroringEndpoint, MultiDatabaseFacts,
    ProtectorKind, RecoveryModel, ReplicationFlags, ServiceTier, TargetFacts, TdeFacts, TraceFlag,
    TrustCertificateFact, WindowsLogin, WindowsUser,
};
pub use gather::{
    Cell, FactSource, GatherError, GatherOptions, GatheredFacts, ModuleScan, Rows, SourceError,
    gather_instance_facts,
};
pub use network::{
    HADR_PORT_RANGE, MI_ENDPOINT_PORT, NetworkOptions, NetworkProbe, NetworkTargets, ProbeKind,
    ProbeOutcome,
};
pub use report::{DatabaseVerdict, ReadinessReport, SCHEMA_VERSION, Verdict};
pub use rules::{
    Evidence, Finding, Fix, MI_SUPPORTED_TRACE_FLAGS, NotEvaluated, RULES, Rule, Scope, Severity,
    SqlFix,
};
pub use scan::{Marker, MarkerHit};
pub use sku::{PerfSamples, SkuOptions, SkuRecommendation, TierLimits};

use crate::names::{DatabaseName, LinkMode};
use crate::time::Timestamp;

/// What to assess and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AssessOptions {
    /// Now (certificate expiry, recent log backups). Set it: the default is the epoch.
    pub now: Timestamp,
    /// The databases to link; `None` means every user database.
    pub databases: Option<Vec<DatabaseName>>,
    /// Failback to SQL Server is intended.
    pub failback: bool,
    /// Link mode.
    pub link_mode: LinkMode,
    /// Performance samples for the SKU recommendation.
    pub performance: Option<PerfSamples>,
    /// How samples are summarised.
    pub sku: SkuOptions,
    /// Certificates expiring within this many days are a warning (default 30).
    pub certificate_warning_days: u32,
    /// A log backup this recent (hours, default 48) means log backups are scheduled.
    pub log_backup_window_hours: u32,
    /// Trace flags to treat as supported on the managed instance besides the documented
    /// [`MI_SUPPORTED_TRACE_FLAGS`] (not reported by `TraceFlags`), e.g. a flag Microsoft adds
    /// to the list later.
    pub mi_supported_trace_flags: Vec<u32>,
    /// Network probe results ([`crate::reach::check_network`]).
    pub network: Vec<NetworkProbe>,
    /// Which databases the database rules of milink-facts §5.1 assess (default: the
    /// databases to link).
    pub compatibility_scope: CompatibilityScope,
    /// The link is created from the managed instance (the instance is the initial primary and
    /// SQL Server the secondary), which needs SQL Server 2022 CU10 or 2025.
    pub from_managed_instance: bool,
    /// The address ranges (CIDR, e.g. `10.1.0.0/16`) of SQL Server's network, to compare with
    /// the managed instance's subnet; without them only SQL Server's own address is compared.
    pub sql_server_networks: Vec<String>,
}

/// Which databases the managed instance compatibility rules (milink-facts §5.1, the rules
/// without a `Link.` prefix) assess. The `Link.` rules assess the databases to link whatever
/// this says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CompatibilityScope {
    /// The databases to link ([`AssessOptions::databases`]).
    #[default]
    LinkedDatabases,
    /// Every user database of the instance, as Microsoft's assessment does. The findings of a
    /// database that is not linked are reported under its name; the report's verdicts
    /// ([`ReadinessReport::databases`]) and the link's outcome
    /// ([`ReadinessReport::outcome_for`]) still cover the databases to link only.
    AllDatabases,
}

impl Default for AssessOptions {
    fn default() -> Self {
        AssessOptions {
            now: Timestamp::EPOCH,
            databases: None,
            failback: false,
            link_mode: LinkMode::SingleDatabase,
            performance: None,
            sku: SkuOptions::default(),
            certificate_warning_days: 30,
            log_backup_window_hours: 48,
            mi_supported_trace_flags: Vec::new(),
            network: Vec::new(),
            compatibility_scope: CompatibilityScope::LinkedDatabases,
            from_managed_instance: false,
            sql_server_networks: Vec::new(),
        }
    }
}

impl AssessOptions {
    /// Defaults, at `now`.
    pub fn at(now: Timestamp) -> Self {
        AssessOptions {
            now,
            ..AssessOptions::default()
        }
    }
}

/// Two databases of the facts have one name (compared case-insensitively, as SQL Server's
/// default collation and the report compare them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "database facts: databases[{first}] and databases[{second}] are both named {name:?} (names \
     are compared case-insensitively): give each database once"
)]
pub struct DuplicateDatabase {
    /// The name, as the second database spells it.
    pub name: String,
    /// The index of the first database of that name.
    pub first: usize,
    /// The index of the second.
    pub second: usize,
}

/// Refuses facts that name one database twice: which of the two the report would assess (and
/// whether the link's check passed) would depend on their order.
pub fn distinct_databases(databases: &[DatabaseFacts]) -> Result<(), DuplicateDatabase> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (index, database) in databases.iter().enumerate() {
        if let Some(first) = seen.insert(database.name.as_str().to_lowercase(), index) {
            return Err(DuplicateDatabase {
                name: database.name.as_str().to_owned(),
                first,
                second: index,
            });
        }
    }
    Ok(())
}

/// [`assess`], after refusing facts that name one database twice ([`distinct_databases`]): what
/// callers with facts from outside (files, other tools, users) use. The Python binding's
/// `assess` is this.
pub fn try_assess(
    instance: &InstanceFacts,
    databases: &[DatabaseFacts],
    target: Option<&TargetFacts>,
    options: &AssessOptions,
) -> Result<ReadinessReport, DuplicateDatabase> {
    distinct_databases(databases)?;
    Ok(assess(instance, databases, target, options))
}

/// Assesses `databases` of `instance` for a link to `target`.
///
/// `databases` are all user databases of the instance (the instance-wide rules count them);
/// [`AssessOptions::databases`] picks the ones to link. System databases requested are
/// reported (`Link.SystemDatabase`) and excluded; unknown names are blockers. A database the
/// facts name twice is assessed with the first of them and blocked (`Link.DuplicateFacts`), so
/// the order of the facts never decides whether it is ready; [`try_assess`] refuses such facts
/// outright.
pub fn assess(
    instance: &InstanceFacts,
    databases: &[DatabaseFacts],
    target: Option<&TargetFacts>,
    options: &AssessOptions,
) -> ReadinessReport {
    // Every lookup by name goes through this index (case-insensitive, first database of a
    // name wins), so the assessment stays linear in the number of databases.
    let index = rules::DatabaseIndex::new(databases);
    let mut requested: Vec<DatabaseName> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let names = options
        .databases
        .clone()
        .unwrap_or_else(|| databases.iter().map(|d| d.name.clone()).collect());
    for n in names {
        // A name that matches a database (case-insensitively) takes the database's spelling.
        let n = index.get(n.as_str()).map_or(n, |d| d.name.clone());
        if seen.insert(n.as_str().to_ascii_lowercase()) {
            requested.push(n);
        }
    }
    let selected: Vec<&DatabaseFacts> = requested
        .iter()
        .filter(|n| !facts::is_system_database(n.as_str()))
        .filter_map(|n| index.get(n.as_str()))
        .collect();
    let ctx = rules::Context {
        instance,
        all_databases: databases,
        selected: &selected,
        target,
        options,
        index: &index,
    };

    let mut findings = Vec::new();
    let mut not_evaluated = Vec::new();
    let mut record = |rule: &rules::Rule, scope: Scope, outcome: rules::Outcome| match outcome {
        rules::Outcome::Pass => {}
        rules::Outcome::Fail(evidence, fix) => findings.push(Finding {
            rule_id: rule.id.to_owned(),
            severity: rule.severity,
            scope,
            title: rule.title.to_owned(),
            evidence,
            fix,
        }),
        rules::Outcome::NotEvaluated(reason) => not_evaluated.push(NotEvaluated {
            rule_id: rule.id.to_owned(),
            scope,
            reason,
        }),
    };
    // The compatibility rules' databases: the selected ones, then (when every database is
    // assessed) the instance's other user databases in their order.
    let compatibility: Vec<&DatabaseFacts> = match options.compatibility_scope {
        CompatibilityScope::LinkedDatabases => selected.clone(),
        CompatibilityScope::AllDatabases => {
            let mut named: HashSet<String> = selected
                .iter()
                .map(|d| d.name.as_str().to_ascii_lowercase())
                .collect();
            let mut all = selected.clone();
            all.extend(databases.iter().filter(|d| {
                !facts::is_system_database(d.name.as_str())
                    && named.insert(d.name.as_str().to_ascii_lowercase())
            }));
            all
        }
    };
    for rule in RULES {
        match rule.check {
            rules::Check::Instance(f) => record(rule, Scope::Instance, f(&ctx)),
            rules::Check::Database(f) => {
                let scoped = if rule.is_compatibility_rule() {
                    &compatibility
                } else {
                    &selected
                };
                for d in scoped {
                    record(rule, Scope::Database(d.name.clone()), f(&ctx, d));
                }
            }
            rules::Check::Requested(f) => {
                for n in &requested {
                    record(rule, Scope::Database(n.clone()), f(&ctx, n));
                }
            }
        }
    }

    let instance_verdict = Verdict::from_severities(
        findings
            .iter()
            .filter(|f| f.scope == Scope::Instance)
            .map(|f| f.severity),
    );
    let instance_blocked = instance_verdict == Verdict::NotReady;
    let mut own_verdicts: HashMap<&DatabaseName, Verdict> = HashMap::new();
    for f in &findings {
        if let Scope::Database(d) = &f.scope {
            let v = own_verdicts.entry(d).or_insert(Verdict::Ready);
            *v = (*v).max(Verdict::from_severities([f.severity]));
        }
    }
    let database_verdicts = requested
        .iter()
        .filter(|n| !facts::is_system_database(n.as_str()))
        .map(|n| {
            let own = own_verdicts.get(n).copied().unwrap_or(Verdict::Ready);
            DatabaseVerdict {
                name: n.clone(),
                verdict: if instance_blocked {
                    Verdict::NotReady
                } else {
                    own
                },
            }
        })
        .collect();
    let sku = (!selected.is_empty()).then(|| {
        sku::recommend(
            instance,
            &selected,
            options.performance.as_ref(),
            &options.sku,
        )
    });

    ReadinessReport {
        schema_version: SCHEMA_VERSION,
        generated_at: options.now,
        server: instance.server_name.to_string(),
        sql_version: instance.version,
        target: target.map(|t| t.fqdn.to_string()),
        link_mode: options.link_mode,
        failback: options.failback,
        instance_verdict,
        databases: database_verdicts,
        findings,
        not_evaluated,
        sku,
        network: options.network.clone(),
    }
}

#[cfg(test)]
mod compat_tests;
#[cfg(test)]
mod tests;
