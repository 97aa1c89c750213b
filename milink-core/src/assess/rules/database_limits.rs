//! Database checks of milink-facts §5.1: catalog and module text.

use std::collections::BTreeMap;

use crate::assess::facts::{CodeFacts, DatabaseFacts};
use crate::assess::scan::Marker;
use crate::assess::sku::NEXT_GEN_GENERAL_PURPOSE;

use super::{
    Check, Context, Evidence, F51, Fix, NO_CATALOG, NO_CODE, Outcome, Rule, ScopeKind, Severity,
    gb, list,
};

/// This group's part of the catalogue, in catalogue order.
pub(super) const RULES: &[Rule] = &[
    MI_DATABASE_SIZE,
    COMPAT_LEVEL,
    CLR_STRICT_SECURITY,
    PRINCIPAL_ALIAS,
    WINDOWS_AUTHENTICATION,
    NEXT_COLUMN,
    XP_CMDSHELL,
    BULK_INSERT,
    OPENROWSET_BULK,
    OPENROWSET_PROVIDER,
    HOMOGENEOUS_DTC,
    HETEROGENEOUS_DTC,
    LINKED_SERVER_NON_SQL,
    ASSEMBLY_FROM_FILE,
    CRYPTOGRAPHIC_PROVIDER,
    DISABLE_DEF_CNST_CHK,
    COMPUTE_CLAUSE,
    FAST_FIRST_ROW,
    NON_ANSI_LEFT,
    NON_ANSI_RIGHT,
    RAISERROR,
    SQL_MAIL,
    SYSTEM_PROCEDURES_110,
];

const MI_DATABASE_SIZE: Rule = rule!(
    "MIDatabaseSize",
    Blocker,
    Database,
    "Database fits the managed instance",
    F51,
    "data and log size against the reserved storage (or the largest tier)",
    Database(mi_database_size)
);
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

const COMPAT_LEVEL: Rule = rule!(
    "DbCompatLevelLowerThan100",
    Warning,
    Database,
    "Compatibility level below 100",
    F51,
    "sys.databases.compatibility_level",
    Database(compat_level)
);
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

const CLR_STRICT_SECURITY: Rule = rule!(
    "ClrStrictSecurity",
    Warning,
    Database,
    "CLR assemblies under clr strict security",
    F51,
    "sys.assemblies permission sets",
    Database(clr_strict_security)
);
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

const PRINCIPAL_ALIAS: Rule = rule!(
    "DatabasePrincipalAlias",
    Blocker,
    Database,
    "Database principal aliases",
    F51,
    "sys.sysusers.isaliased and sp_addalias in module text",
    Database(principal_alias)
);
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
        return d.code.as_ref().map_or(Outcome::Pass, nothing_found);
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

/// `WindowsAuthentication`: "Database users mapped with Windows authentication (integrated
/// security) are not supported in Azure SQL Managed Instance" (the rule page's section
/// WindowsAuthentication). Reads [`CatalogFacts::windows_users`](crate::assess::CatalogFacts):
/// the database's Windows users and groups, the login each maps to, and the orphaned ones
/// (no login with the user's SID), which need attention whatever the target. Built-in accounts
/// (`NT SERVICE\…`, `NT AUTHORITY\…`, `BUILTIN\…`) are left out: every Windows host has them.
///
/// The fix follows the rule page (federate Active Directory with Microsoft Entra ID and use
/// Entra identities) and the managed instance's native Windows principals, the Windows
/// authentication metadata mode that lets the `FROM WINDOWS` logins and users a link
/// replicates authenticate after a failover (sql-docs
/// `azure-sql/managed-instance/native-windows-principals.md`, section "Managed Instance link").
const WINDOWS_AUTHENTICATION: Rule = rule!(
    "WindowsAuthentication",
    Warning,
    Database,
    "Database users mapped to Windows authentication",
    F51,
    "sys.database_principals of type U/G (authentication type WINDOWS) with the \
     sys.server_principals login of the same SID; orphaned ones named; built-in accounts aside",
    Database(windows_authentication)
);
fn windows_authentication(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    const SHOWN: usize = 20;
    let Some(users) = d.catalog.as_ref().and_then(|c| c.windows_users.as_ref()) else {
        return Outcome::NotEvaluated(NO_CATALOG.into());
    };
    let users: Vec<_> = users.iter().filter(|u| !u.is_builtin()).collect();
    if users.is_empty() {
        return Outcome::Pass;
    }
    let shown = |names: Vec<String>| -> String {
        match names.len() {
            n if n > SHOWN => format!("{} and {} more", list(&names[..SHOWN]), n - SHOWN),
            _ => list(&names),
        }
    };
    let mapped: Vec<String> = users
        .iter()
        .filter_map(|u| {
            let kind = if u.is_group { "group" } else { "user" };
            u.login.as_ref().map(|l| {
                if l.eq_ignore_ascii_case(&u.name) {
                    format!("{} ({kind})", u.name)
                } else {
                    format!("{} ({kind}, login {l})", u.name)
                }
            })
        })
        .collect();
    let orphaned: Vec<String> = users
        .iter()
        .filter(|u| u.is_orphaned())
        .map(|u| u.name.clone())
        .collect();
    let mut evidence = Evidence::new(format!(
        "{} database user(s) or group(s) authenticate with Windows{}",
        users.len(),
        match orphaned.len() {
            0 => String::new(),
            n => format!(", {n} of them orphaned (no login with their SID)"),
        }
    ));
    if !mapped.is_empty() {
        evidence = evidence.with("mapped to a Windows login", shown(mapped));
    }
    if !orphaned.is_empty() {
        evidence = evidence.with("orphaned", shown(orphaned));
    }
    Outcome::Fail(
        evidence,
        Fix::action(
            "Synchronize Active Directory with Microsoft Entra ID, then either set the managed \
             instance's authentication metadata mode to Windows (native Windows principals: \
             create the logins there with CREATE LOGIN … FROM WINDOWS and the replicated users \
             authenticate after a failover), or replace these principals with Microsoft Entra \
             ones (CREATE USER … FROM EXTERNAL PROVIDER). Drop the orphaned users, or map them \
             to a login with ALTER USER … WITH LOGIN, before migrating.",
        ),
    )
}

const NEXT_COLUMN: Rule = rule!(
    "NextColumn",
    Blocker,
    Database,
    "Tables or columns named NEXT",
    F51,
    "sys.tables and sys.columns",
    Database(next_column)
);
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

/// A code-based check that found nothing: a pass when every module was scanned, "not
/// evaluated" naming the encrypted modules otherwise.
fn nothing_found(code: &CodeFacts) -> Outcome {
    match code.unscanned_reason() {
        Some(reason) => Outcome::NotEvaluated(reason),
        None => Outcome::Pass,
    }
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
        return nothing_found(code);
    }
    Outcome::Fail(
        Evidence::new(format!("{what} in {} module(s)", hits.len()))
            .with("modules", list(hits.iter().take(20))),
        Fix::action(fix),
    )
}

const XP_CMDSHELL: Rule = rule!(
    "XpCmdshell",
    Blocker,
    Database,
    "xp_cmdshell",
    F51,
    "module text",
    Database(xp_cmdshell)
);
fn xp_cmdshell(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    code_rule(
        d,
        Marker::XpCmdshell,
        "xp_cmdshell is called",
        "The managed instance has no xp_cmdshell: move the shell work to Azure Automation, Azure Functions or the application.",
    )
}

const BULK_INSERT: Rule = rule!(
    "BulkInsert",
    Blocker,
    Database,
    "BULK INSERT from a non-blob source",
    F51,
    "module text: BULK INSERT without DATA_SOURCE",
    Database(bulk_insert)
);
fn bulk_insert(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    code_rule(
        d,
        Marker::BulkInsert,
        "BULK INSERT reads a file",
        "Load from Azure Blob Storage instead: CREATE EXTERNAL DATA SOURCE … TYPE = BLOB_STORAGE and BULK INSERT … WITH (DATA_SOURCE = …).",
    )
}

const OPENROWSET_BULK: Rule = rule!(
    "OpenRowsetWithNonBlobDataSourceBulk",
    Blocker,
    Database,
    "OPENROWSET(BULK) from a non-blob source",
    F51,
    "module text: OPENROWSET(BULK) without DATA_SOURCE",
    Database(openrowset_bulk)
);
fn openrowset_bulk(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    code_rule(
        d,
        Marker::OpenRowsetBulk,
        "OPENROWSET(BULK) reads a file",
        "Read from Azure Blob Storage instead: OPENROWSET(BULK …, DATA_SOURCE = …).",
    )
}

const OPENROWSET_PROVIDER: Rule = rule!(
    "OpenRowsetWithNonSQLProvider",
    Blocker,
    Database,
    "OPENROWSET with a non-SQL Server provider",
    F51,
    "module text: OPENROWSET('provider', …)",
    Database(openrowset_provider)
);
fn openrowset_provider(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    code_rule(
        d,
        Marker::OpenRowsetProvider,
        "OPENROWSET uses a non-SQL Server provider",
        "The managed instance's OPENROWSET only reaches SQL Server (and Azure SQL); move the other sources into SQL Server or load them through Azure Data Factory.",
    )
}

const ASSEMBLY_FROM_FILE: Rule = rule!(
    "AssemblyFromFile",
    Blocker,
    Database,
    "CREATE/ALTER ASSEMBLY from a file",
    F51,
    "module text",
    Database(assembly_from_file)
);
fn assembly_from_file(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    code_rule(
        d,
        Marker::AssemblyFromFile,
        "CREATE/ALTER ASSEMBLY loads from a file",
        "Create the assembly FROM its binary (0x…) instead of a file path.",
    )
}

const CRYPTOGRAPHIC_PROVIDER: Rule = rule!(
    "CryptographicProvider",
    Blocker,
    Database,
    "Cryptographic providers",
    F51,
    "module text",
    Database(cryptographic_provider)
);
fn cryptographic_provider(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    code_rule(
        d,
        Marker::CryptographicProvider,
        "CREATE/ALTER CRYPTOGRAPHIC PROVIDER is used",
        "The managed instance does not support EKM providers; use Azure Key Vault instead.",
    )
}

const COMPUTE_CLAUSE: Rule = rule!(
    "ComputeClause",
    Warning,
    Database,
    "COMPUTE clause",
    F51,
    "module text",
    Database(compute_clause)
);
fn compute_clause(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    code_rule(
        d,
        Marker::ComputeClause,
        "the COMPUTE clause is used",
        "Rewrite with GROUP BY … ROLLUP or window functions.",
    )
}

const DISABLE_DEF_CNST_CHK: Rule = rule!(
    "DisableDefCNSTCHK",
    Blocker,
    Database,
    "SET DISABLE_DEF_CNST_CHK",
    F51,
    "module text",
    Database(disable_def_cnst_chk)
);
fn disable_def_cnst_chk(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    code_rule(
        d,
        Marker::DisableDefCnstChk,
        "SET DISABLE_DEF_CNST_CHK is used",
        "Remove the SET option; it no longer exists.",
    )
}

const FAST_FIRST_ROW: Rule = rule!(
    "FastFirstRowHint",
    Warning,
    Database,
    "FASTFIRSTROW hint",
    F51,
    "module text",
    Database(fast_first_row)
);
fn fast_first_row(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    code_rule(
        d,
        Marker::FastFirstRow,
        "the FASTFIRSTROW hint is used",
        "Replace FASTFIRSTROW with OPTION (FAST n).",
    )
}

const NON_ANSI_LEFT: Rule = rule!(
    "NonANSILeftOuterJoinSyntax",
    Warning,
    Database,
    "*= outer joins",
    F51,
    "module text",
    Database(non_ansi_left)
);
fn non_ansi_left(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    code_rule(
        d,
        Marker::NonAnsiLeftJoin,
        "the *= outer join syntax is used",
        "Rewrite as LEFT OUTER JOIN.",
    )
}

const NON_ANSI_RIGHT: Rule = rule!(
    "NonANSIRightOuterJoinSyntax",
    Warning,
    Database,
    "=* outer joins",
    F51,
    "module text",
    Database(non_ansi_right)
);
fn non_ansi_right(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    code_rule(
        d,
        Marker::NonAnsiRightJoin,
        "the =* outer join syntax is used",
        "Rewrite as RIGHT OUTER JOIN.",
    )
}

const RAISERROR: Rule = rule!(
    "RAISERROR",
    Warning,
    Database,
    "Legacy RAISERROR syntax",
    F51,
    "module text",
    Database(raiserror)
);
fn raiserror(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    code_rule(
        d,
        Marker::LegacyRaiserror,
        "the legacy RAISERROR syntax is used",
        "Rewrite as RAISERROR(msg, severity, state) or THROW.",
    )
}

const SQL_MAIL: Rule = rule!(
    "SqlMail",
    Warning,
    Database,
    "SQL Mail",
    F51,
    "module text",
    Database(sql_mail)
);
fn sql_mail(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    code_rule(
        d,
        Marker::SqlMail,
        "SQL Mail procedures are called",
        "Use Database Mail (msdb.dbo.sp_send_dbmail).",
    )
}

/// `SystemProcedures110`: calls of the six system and extended stored procedures Microsoft's
/// rule page lists as unavailable on the managed instance — `sp_dboption`, `sp_addserver`,
/// `sp_dropalias`, `sp_activedirectory_obj`, `sp_activedirectory_scp` and
/// `sp_activedirectory_start` ([`crate::assess::scan::REMOVED_SYSTEM_PROCEDURES`]; sql-docs
/// `azure-sql/migration-guides/managed-instance/sql-server-to-sql-managed-instance-assessment-rules.md`,
/// section SystemProcedures110). The evidence names each module with the procedure it calls.
const SYSTEM_PROCEDURES_110: Rule = rule!(
    "SystemProcedures110",
    Warning,
    Database,
    "Removed system procedures",
    F51,
    "module text: sp_dboption, sp_addserver, sp_dropalias, sp_activedirectory_obj, \
     sp_activedirectory_scp and sp_activedirectory_start, as the rule page lists them",
    Database(system_procedures_110)
);
fn system_procedures_110(_: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    code_rule(
        d,
        Marker::RemovedSystemProcedure,
        "system procedures the managed instance does not have are called",
        "Remove the calls: replace sp_dboption with ALTER DATABASE … SET and \
         DATABASEPROPERTYEX; sp_dropalias with database users and role memberships; \
         sp_addserver has nothing to do on the managed instance (its name is set by Azure); \
         the sp_activedirectory_* procedures (publishing the instance in Active Directory) \
         have no replacement.",
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
        return nothing_found(code);
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

const HOMOGENEOUS_DTC: Rule = rule!(
    "MIHomogeneousMSDTCTransactSQL",
    Blocker,
    Database,
    "Distributed transactions across SQL Server instances",
    F51,
    "module text: BEGIN DISTRIBUTED TRANSACTION without a non-SQL linked server in the same module",
    Database(homogeneous_dtc)
);
fn homogeneous_dtc(ctx: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    dtc_rule(ctx, d, false)
}

const HETEROGENEOUS_DTC: Rule = rule!(
    "MIHeterogeneousMSDTCTransactSQL",
    Blocker,
    Database,
    "Distributed transactions with non-SQL Server sources",
    F51,
    "module text: BEGIN DISTRIBUTED TRANSACTION with a non-SQL linked server in the same module",
    Database(heterogeneous_dtc)
);
fn heterogeneous_dtc(ctx: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    dtc_rule(ctx, d, true)
}

/// `LinkedServerWithNonSQLProvider`: the managed instance's linked servers reach SQL Server
/// and Azure SQL only, and its `OPENDATASOURCE` accepts SQL Server's providers only (sql-docs
/// `azure-sql/managed-instance/transact-sql-tsql-differences-sql-server.md`, section Linked
/// servers; the rule page's section LinkedServerWithNonSQLProvider).
///
/// Every linked server of `sys.servers` whose provider is not SQL Server's is reported, in every
/// assessed database, used or not (an application may use it too), with where the scanned
/// module text uses it: this database's modules first, then the other databases' (four-part
/// names, `OPENQUERY`, `EXEC … AT`). `OPENDATASOURCE` with a non-SQL Server provider in this
/// database's modules is reported as well: it is an ad hoc linked server.
const LINKED_SERVER_NON_SQL: Rule = rule!(
    "LinkedServerWithNonSQLProvider",
    Blocker,
    Database,
    "Linked servers with a non-SQL Server provider",
    F51,
    "every sys.servers linked server whose provider is not SQL Server's, with its uses in \
     module text (four-part names, OPENQUERY, EXEC … AT); OPENDATASOURCE with a non-SQL \
     Server provider in module text",
    Database(linked_server_non_sql)
);

/// At most this many uses are listed per linked server.
const USES_SHOWN: usize = 10;

/// Where the scanned module text uses linked server `name`: this database's modules, then the
/// other databases' (`Db: module`), and the databases whose text was not scanned.
fn linked_server_uses(ctx: &Context<'_>, d: &DatabaseFacts, name: &str) -> String {
    let uses_in = |db: &DatabaseFacts| -> Vec<String> {
        let mut objects: Vec<String> = db
            .code
            .iter()
            .flat_map(|c| c.hits_of(Marker::RemoteServer))
            .filter(|h| {
                h.detail
                    .as_deref()
                    .is_some_and(|s| s.eq_ignore_ascii_case(name))
            })
            .map(|h| h.object.clone())
            .collect();
        objects.dedup();
        objects
    };
    let mut uses: Vec<String> = uses_in(d);
    let mut unscanned: Vec<&str> = Vec::new();
    for other in ctx.all_databases.iter().filter(|o| o.name != d.name) {
        if other.code.is_none() {
            unscanned.push(other.name.as_str());
        }
        uses.extend(
            uses_in(other)
                .into_iter()
                .map(|o| format!("{}: {o}", other.name)),
        );
    }
    let mut text = match uses.len() {
        0 => "no use in the scanned module text".to_owned(),
        n if n > USES_SHOWN => format!(
            "used by {} and {} more",
            list(&uses[..USES_SHOWN]),
            n - USES_SHOWN
        ),
        _ => format!("used by {}", list(&uses)),
    };
    if d.code.is_none() {
        unscanned.insert(0, d.name.as_str());
    }
    if !unscanned.is_empty() {
        text.push_str(&format!(
            "; module text not scanned in {}",
            list(&unscanned)
        ));
    }
    text
}

fn linked_server_non_sql(ctx: &Context<'_>, d: &DatabaseFacts) -> Outcome {
    let servers: Vec<_> = ctx
        .instance
        .linked_servers
        .iter()
        .filter(|ls| !ls.is_sql_server())
        .collect();
    let ad_hoc: Vec<String> = d
        .code
        .iter()
        .flat_map(|c| c.hits_of(Marker::OpenDataSource))
        .map(|h| match &h.detail {
            Some(provider) => format!("{} ({provider})", h.object),
            None => h.object.clone(),
        })
        .collect();
    if servers.is_empty() && ad_hoc.is_empty() {
        return match &d.code {
            None => Outcome::NotEvaluated(NO_CODE.into()),
            Some(code) => nothing_found(code),
        };
    }
    let mut parts = Vec::new();
    if !servers.is_empty() {
        parts.push(format!(
            "{} linked server(s) with a non-SQL Server provider ({})",
            servers.len(),
            list(servers.iter().map(|s| s.name.as_str()))
        ));
    }
    if !ad_hoc.is_empty() {
        parts.push(format!(
            "OPENDATASOURCE with a non-SQL Server provider in {} module(s)",
            ad_hoc.len()
        ));
    }
    let mut evidence = Evidence::new(format!(
        "{}; the managed instance reaches SQL Server and Azure SQL only",
        parts.join(" and ")
    ));
    for s in &servers {
        evidence = evidence.with(
            &format!("linked server {}", s.name),
            format!(
                "provider {}, data source {}; {}",
                s.provider,
                s.data_source,
                linked_server_uses(ctx, d, &s.name)
            ),
        );
    }
    if !ad_hoc.is_empty() {
        evidence = evidence.with("OPENDATASOURCE in", list(ad_hoc.iter().take(20)));
    }
    Outcome::Fail(
        evidence,
        Fix::action(
            "Move the data these sources hold into SQL Server or the managed instance (or \
             another SQL target), or load it through Azure Data Factory; as a temporary two-hop \
             workaround, reach them through a linked server to SQL Server on an Azure VM. Then \
             drop the linked servers (sp_dropserver) and rewrite the OPENDATASOURCE calls: on \
             the managed instance linked servers and OPENDATASOURCE reach SQL Server only.",
        ),
    )
}
