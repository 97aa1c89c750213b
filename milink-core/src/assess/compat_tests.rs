//! The managed instance compatibility rules (milink-facts §5.1) from what a user has to what
//! the report says: module text scanned as the gatherer scans it, instance facts as the probes
//! read them, and the findings, evidence and "not evaluated" entries that come out.

use super::fixtures::{self, TailspinLab};
use super::*;
use crate::assess::scan::scan_module;

/// The Tailspin lab reduced to ToyStore with nothing to report (the rules under test aside).
fn lab() -> TailspinLab {
    let mut lab = fixtures::tailspin();
    lab.databases.retain(|d| d.name.as_str() == "ToyStore");
    lab
}

/// Replaces ToyStore's scanned modules with these (object, definition) pairs.
fn modules(lab: &mut TailspinLab, texts: &[(&str, &str)]) {
    let toy = lab.database_mut("ToyStore").unwrap();
    let mut code = CodeFacts {
        modules: u32::try_from(texts.len()).unwrap(),
        ..CodeFacts::default()
    };
    for (object, text) in texts {
        code.hits.extend(scan_module(object, text));
    }
    toy.code = Some(code);
}

fn findings_of<'a>(report: &'a ReadinessReport, id: &str) -> Vec<&'a Finding> {
    report.findings.iter().filter(|f| f.rule_id == id).collect()
}

// ------------------------------------------------------------------ SystemProcedures110

#[test]
fn every_procedure_of_system_procedures_110_is_reported_with_its_module() {
    for proc in [
        "sp_dboption",
        "sp_addserver",
        "sp_dropalias",
        "sp_activedirectory_obj",
        "sp_activedirectory_scp",
        "sp_activedirectory_start",
    ] {
        let mut l = lab();
        let text = format!("CREATE PROCEDURE dbo.Setup AS EXEC {proc} N'x';");
        modules(&mut l, &[("dbo.Setup (SQL_STORED_PROCEDURE)", &text)]);
        let report = l.assess();
        let found = findings_of(&report, "SystemProcedures110");
        let [f] = found.as_slice() else {
            panic!("{proc}: {:#?}", report.findings)
        };
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(
            f.scope,
            Scope::Database(DatabaseName::new("ToyStore").unwrap())
        );
        assert_eq!(
            f.evidence.details.get("modules").map(String::as_str),
            Some(format!("dbo.Setup (SQL_STORED_PROCEDURE) ({proc})").as_str()),
            "{proc}"
        );
        let Fix::Action(fix) = &f.fix else {
            panic!("{:?}", f.fix)
        };
        let named = if proc.starts_with("sp_activedirectory") {
            "sp_activedirectory_*"
        } else {
            proc
        };
        assert!(fix.contains(named), "{proc}: {fix}");
        assert_eq!(
            report.verdict_of("ToyStore"),
            Some(Verdict::ReadyWithWarnings)
        );
    }
}

#[test]
fn system_procedures_that_still_exist_are_not_reported() {
    let mut l = lab();
    modules(
        &mut l,
        &[(
            "dbo.Setup (SQL_STORED_PROCEDURE)",
            "CREATE PROCEDURE dbo.Setup AS EXEC sp_helpdb; EXEC sp_addlinkedserver N'x'; \
             -- EXEC sp_addserver N'old'\nPRINT 'sp_dboption is gone';",
        )],
    );
    let report = l.assess();
    assert!(findings_of(&report, "SystemProcedures110").is_empty());
}

// --------------------------------------------------------------------------- TraceFlags

fn flags(lab: &mut TailspinLab, on: &[u32]) {
    lab.instance.trace_flags = on
        .iter()
        .map(|&flag| TraceFlag {
            flag,
            enabled: true,
        })
        .collect();
}

#[test]
fn only_trace_flags_the_managed_instance_does_not_support_are_reported() {
    let mut l = lab();
    flags(&mut l, &[1800, 9567, 460, 3226, 2453, 1117]);
    let report = l.assess();
    let found = findings_of(&report, "TraceFlags");
    let [f] = found.as_slice() else {
        panic!("{:#?}", report.findings)
    };
    assert_eq!(f.scope, Scope::Instance);
    assert_eq!(
        f.evidence
            .details
            .get("unsupported trace flags")
            .map(String::as_str),
        Some("3226, 1117")
    );
    assert_eq!(
        f.evidence
            .details
            .get("supported on the managed instance")
            .map(String::as_str),
        Some("460, 2453")
    );
    let Fix::Action(fix) = &f.fix else {
        panic!("{:?}", f.fix)
    };
    assert!(fix.contains("DBCC TRACEON (n, -1)"), "{fix}");
}

#[test]
fn every_documented_managed_instance_flag_and_the_link_flags_pass() {
    let mut on: Vec<u32> = MI_SUPPORTED_TRACE_FLAGS.to_vec();
    on.extend([1800, 9567, 12381]);
    let mut all = lab();
    flags(&mut all, &on);
    let report = all.assess();
    assert!(
        findings_of(&report, "TraceFlags").is_empty(),
        "{:#?}",
        report.findings
    );
    // A flag that is off is not reported either.
    let mut off = lab();
    off.instance.trace_flags = vec![TraceFlag {
        flag: 3226,
        enabled: false,
    }];
    assert!(findings_of(&off.assess(), "TraceFlags").is_empty());
}

// ------------------------------------------------------------- LinkedServerWithNonSQLProvider

fn linked_server(lab: &mut TailspinLab, name: &str, provider: &str) {
    lab.instance.linked_servers.push(LinkedServer {
        name: name.into(),
        product: String::new(),
        provider: provider.into(),
        data_source: format!("{}.tailspin.local", name.to_lowercase()),
    });
}

#[test]
fn an_unused_non_sql_linked_server_is_reported_in_every_database() {
    let mut l = fixtures::tailspin();
    linked_server(&mut l, "ORA", "OraOLEDB.Oracle");
    linked_server(&mut l, "SQL2", "MSOLEDBSQL");
    let report = l.assess();
    for db in ["ToyStore", "Customer360"] {
        let f = report
            .database_findings(db)
            .find(|f| f.rule_id == "LinkedServerWithNonSQLProvider")
            .unwrap_or_else(|| panic!("{db}: {:#?}", report.findings));
        assert_eq!(f.severity, Severity::Blocker);
        assert_eq!(
            f.evidence
                .details
                .get("linked server ORA")
                .map(String::as_str),
            Some(
                "provider OraOLEDB.Oracle, data source ora.tailspin.local; no use in the \
                 scanned module text"
            )
        );
        // The SQL Server linked server is not reported.
        assert!(!f.evidence.details.contains_key("linked server SQL2"));
    }
    assert_eq!(report.verdict_of("ToyStore"), Some(Verdict::NotReady));
}

#[test]
fn a_linked_server_says_where_module_text_uses_it() {
    let mut l = fixtures::tailspin();
    linked_server(&mut l, "ORA", "OraOLEDB.Oracle");
    let toy = l.database_mut("ToyStore").unwrap();
    toy.code.as_mut().unwrap().hits = scan_module(
        "dbo.Prices (SQL_STORED_PROCEDURE)",
        "CREATE PROCEDURE dbo.Prices AS SELECT * FROM OPENQUERY(ORA, 'SELECT 1 FROM dual')",
    );
    let c360 = l.database_mut("Customer360").unwrap();
    c360.code.as_mut().unwrap().hits = scan_module(
        "dbo.Sync (SQL_STORED_PROCEDURE)",
        "CREATE PROCEDURE dbo.Sync AS INSERT ora.CRM.SALES.ACCOUNTS SELECT 1",
    );
    let report = l.assess();
    let ora = |db: &str| {
        report
            .database_findings(db)
            .find(|f| f.rule_id == "LinkedServerWithNonSQLProvider")
            .and_then(|f| f.evidence.details.get("linked server ORA").cloned())
    };
    assert_eq!(
        ora("ToyStore").as_deref(),
        Some(
            "provider OraOLEDB.Oracle, data source ora.tailspin.local; used by \
             dbo.Prices (SQL_STORED_PROCEDURE), Customer360: dbo.Sync (SQL_STORED_PROCEDURE)"
        )
    );
    assert_eq!(
        ora("Customer360").as_deref(),
        Some(
            "provider OraOLEDB.Oracle, data source ora.tailspin.local; used by \
             dbo.Sync (SQL_STORED_PROCEDURE), ToyStore: dbo.Prices (SQL_STORED_PROCEDURE)"
        )
    );
    // A database whose text was not scanned is named: the uses there are unknown.
    l.database_mut("Customer360").unwrap().code = None;
    let report = l.assess();
    let f = report
        .database_findings("ToyStore")
        .find(|f| f.rule_id == "LinkedServerWithNonSQLProvider")
        .unwrap();
    assert!(
        f.evidence.details["linked server ORA"].ends_with(
            "used by dbo.Prices (SQL_STORED_PROCEDURE); module text not scanned in Customer360"
        ),
        "{:?}",
        f.evidence.details
    );
}

#[test]
fn opendatasource_with_a_non_sql_provider_fires_without_any_linked_server() {
    let mut l = lab();
    modules(
        &mut l,
        &[(
            "dbo.LoadPrices (SQL_STORED_PROCEDURE)",
            "CREATE PROCEDURE dbo.LoadPrices AS INSERT dbo.Prices SELECT * FROM \
             OPENDATASOURCE('Microsoft.ACE.OLEDB.12.0', 'Data Source=C:\\p.xlsx')...[Sheet1$]",
        )],
    );
    let report = l.assess();
    let found = findings_of(&report, "LinkedServerWithNonSQLProvider");
    let [f] = found.as_slice() else {
        panic!("{:#?}", report.findings)
    };
    assert_eq!(
        f.evidence
            .details
            .get("OPENDATASOURCE in")
            .map(String::as_str),
        Some("dbo.LoadPrices (SQL_STORED_PROCEDURE) (Microsoft.ACE.OLEDB.12.0)")
    );
    assert!(matches!(&f.fix, Fix::Action(a) if a.contains("sp_dropserver")));
}

#[test]
fn sql_server_linked_servers_and_sql_opendatasource_pass() {
    let mut l = lab();
    linked_server(&mut l, "SQL2", "SQLNCLI11");
    linked_server(&mut l, "SQL3", "MSOLEDBSQL19");
    modules(
        &mut l,
        &[(
            "dbo.Orders (VIEW)",
            "CREATE VIEW dbo.Orders AS SELECT * FROM SQL2.Sales.dbo.Orders UNION ALL \
             SELECT * FROM OPENDATASOURCE('SQLNCLI', 'Data Source=SQL4;Integrated Security=SSPI').Sales.dbo.Orders",
        )],
    );
    let report = l.assess();
    assert!(findings_of(&report, "LinkedServerWithNonSQLProvider").is_empty());
    assert!(
        !report
            .not_evaluated
            .iter()
            .any(|n| n.rule_id == "LinkedServerWithNonSQLProvider")
    );
}

// ------------------------------------------------------------------ encrypted modules

fn encrypted(lab: &mut TailspinLab, names: &[&str]) {
    let code = lab.database_mut("ToyStore").unwrap().code.as_mut().unwrap();
    code.encrypted_modules = u32::try_from(names.len()).unwrap();
    code.encrypted = names.iter().map(|n| (*n).to_owned()).collect();
}

#[test]
fn code_rules_that_find_nothing_report_encrypted_modules_as_not_evaluated() {
    let mut l = lab();
    encrypted(
        &mut l,
        &[
            "dbo.Payroll (SQL_STORED_PROCEDURE)",
            "dbo.Bonus (SQL_SCALAR_FUNCTION)",
        ],
    );
    let report = l.assess();
    let toy = Scope::Database(DatabaseName::new("ToyStore").unwrap());
    let skipped: Vec<&NotEvaluated> = report
        .not_evaluated
        .iter()
        .filter(|n| n.scope == toy)
        .collect();
    let ids: Vec<&str> = skipped.iter().map(|n| n.rule_id.as_str()).collect();
    for id in [
        "XpCmdshell",
        "BulkInsert",
        "OpenRowsetWithNonSQLProvider",
        "MIHomogeneousMSDTCTransactSQL",
        "LinkedServerWithNonSQLProvider",
        "DatabasePrincipalAlias",
        "SystemProcedures110",
        "RAISERROR",
    ] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    for n in &skipped {
        assert_eq!(
            n.reason,
            "2 encrypted module(s) (WITH ENCRYPTION) have no text to scan: \
             dbo.Payroll (SQL_STORED_PROCEDURE), dbo.Bonus (SQL_SCALAR_FUNCTION)"
        );
    }
    // Rules that do not read module text are not affected.
    assert!(!ids.contains(&"NextColumn") && !ids.contains(&"MultipleLogFiles"));
    // The Markdown report lists them.
    assert!(
        report.to_markdown().contains(
            "| `XpCmdshell` | database ToyStore | 2 encrypted module(s) (WITH ENCRYPTION)"
        )
    );
}

#[test]
fn a_hit_in_the_readable_modules_still_fails_and_no_encryption_still_passes() {
    let mut l = lab();
    encrypted(&mut l, &["dbo.Payroll (SQL_STORED_PROCEDURE)"]);
    modules(
        &mut l,
        &[(
            "dbo.Export (SQL_STORED_PROCEDURE)",
            "EXEC xp_cmdshell 'dir'",
        )],
    );
    // `modules` replaced the code facts: keep the encrypted module.
    encrypted(&mut l, &["dbo.Payroll (SQL_STORED_PROCEDURE)"]);
    let report = l.assess();
    assert_eq!(findings_of(&report, "XpCmdshell").len(), 1);
    assert!(
        !report
            .not_evaluated
            .iter()
            .any(|n| n.rule_id == "XpCmdshell")
    );

    let report = lab().assess();
    assert!(
        !report
            .not_evaluated
            .iter()
            .any(|n| n.rule_id == "XpCmdshell" || n.rule_id == "SystemProcedures110"),
        "{:?}",
        report.not_evaluated
    );
}

#[test]
fn gathering_names_the_encrypted_modules() {
    let mut rows = Rows::new(["schema_name", "object_name", "object_type", "definition"]);
    rows.push(vec![
        "dbo".into(),
        "Payroll".into(),
        "SQL_STORED_PROCEDURE".into(),
        Cell::Null,
    ])
    .unwrap();
    rows.push(vec![
        "dbo".into(),
        "Export".into(),
        "SQL_STORED_PROCEDURE".into(),
        "CREATE PROCEDURE dbo.Export AS EXEC xp_cmdshell 'dir'".into(),
    ])
    .unwrap();
    let code = gather::parse_modules(&rows).unwrap();
    assert_eq!(code.modules, 2);
    assert_eq!(code.encrypted_modules, 1);
    assert_eq!(code.encrypted, vec!["dbo.Payroll (SQL_STORED_PROCEDURE)"]);
    assert_eq!(code.hits.len(), 1);
}

// ------------------------------------------------------------------ compatibility scope

/// The lab linking ToyStore only; Customer360 calls xp_cmdshell.
fn linking_toystore() -> TailspinLab {
    let mut l = fixtures::tailspin();
    l.options.databases = Some(vec![DatabaseName::new("ToyStore").unwrap()]);
    l
}

#[test]
fn by_default_only_the_databases_to_link_are_assessed() {
    let report = linking_toystore().assess();
    assert!(report.database_findings("Customer360").next().is_none());
    assert!(findings_of(&report, "XpCmdshell").is_empty());
    assert_eq!(report.verdict_of("Customer360"), None);
}

#[test]
fn every_database_can_be_assessed_for_compatibility_as_microsoft_does() {
    let mut l = linking_toystore();
    l.options.compatibility_scope = CompatibilityScope::AllDatabases;
    let report = l.assess();
    let c360: Vec<&str> = report
        .database_findings("Customer360")
        .map(|f| f.rule_id.as_str())
        .collect();
    // The compatibility rules ran on Customer360 …
    for id in ["XpCmdshell", "FileStream", "MultipleLogFiles"] {
        assert!(c360.contains(&id), "{id} in {c360:?}");
    }
    // … the link's own checks did not: it is not being linked.
    assert!(c360.iter().all(|id| !id.starts_with("Link.")), "{c360:?}");
    // The link of ToyStore is judged on ToyStore and the instance only.
    assert_eq!(report.verdict_of("ToyStore"), Some(Verdict::Ready));
    assert_eq!(report.verdict_of("Customer360"), None);
    assert!(
        report
            .outcome_for(&[DatabaseName::new("ToyStore").unwrap()])
            .blockers
            .is_empty()
    );
    assert!(report.to_markdown().contains("### Database Customer360"));
    // The option crosses the Python boundary as JSON.
    let json = serde_json::to_value(&l.options).unwrap();
    assert_eq!(json["compatibility_scope"], "AllDatabases");
}

// ----------------------------------------------------------------- WindowsAuthentication

fn windows_users(lab: &mut TailspinLab, users: &[(&str, bool, Option<&str>)]) {
    let toy = lab.database_mut("ToyStore").unwrap();
    toy.catalog.as_mut().unwrap().windows_users = Some(
        users
            .iter()
            .map(|(name, is_group, login)| WindowsUser {
                name: (*name).into(),
                is_group: *is_group,
                login: login.map(str::to_owned),
            })
            .collect(),
    );
}

#[test]
fn windows_database_users_are_reported_per_database_with_the_orphaned_ones() {
    let mut l = lab();
    windows_users(
        &mut l,
        &[
            ("TAILSPIN\\app", false, Some("TAILSPIN\\app")),
            ("Sales", true, Some("TAILSPIN\\Sales")),
            ("TAILSPIN\\gone", false, None),
            ("NT AUTHORITY\\SYSTEM", false, Some("NT AUTHORITY\\SYSTEM")),
        ],
    );
    let report = l.assess();
    let found = findings_of(&report, "WindowsAuthentication");
    let [f] = found.as_slice() else {
        panic!("{:#?}", report.findings)
    };
    assert_eq!(
        f.scope,
        Scope::Database(DatabaseName::new("ToyStore").unwrap())
    );
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(
        f.evidence.summary,
        "3 database user(s) or group(s) authenticate with Windows, 1 of them orphaned (no \
         login with their SID)"
    );
    assert_eq!(
        f.evidence
            .details
            .get("mapped to a Windows login")
            .map(String::as_str),
        Some("TAILSPIN\\app (user), Sales (group, login TAILSPIN\\Sales)")
    );
    assert_eq!(
        f.evidence.details.get("orphaned").map(String::as_str),
        Some("TAILSPIN\\gone")
    );
    let Fix::Action(fix) = &f.fix else {
        panic!("{:?}", f.fix)
    };
    assert!(fix.contains("authentication metadata mode to Windows") && fix.contains("orphaned"));
    // The instance's Windows logins alone are no longer the rule's business.
    assert!(
        report
            .findings
            .iter()
            .all(|f| !(f.rule_id == "WindowsAuthentication" && f.scope == Scope::Instance))
    );
}

#[test]
fn a_database_without_windows_users_passes_and_an_unread_one_is_not_evaluated() {
    let mut l = lab();
    // TAILSPIN\labadmin is a Windows login of the instance, but no database user maps to it.
    assert!(
        l.instance
            .windows_logins
            .iter()
            .any(|w| w.name == "TAILSPIN\\labadmin")
    );
    windows_users(&mut l, &[]);
    let report = l.assess();
    assert!(findings_of(&report, "WindowsAuthentication").is_empty());
    assert!(
        !report
            .not_evaluated
            .iter()
            .any(|n| n.rule_id == "WindowsAuthentication")
    );

    // Facts gathered before the principals were read: not evaluated, not passed.
    l.database_mut("ToyStore")
        .unwrap()
        .catalog
        .as_mut()
        .unwrap()
        .windows_users = None;
    let report = l.assess();
    assert!(
        report
            .not_evaluated
            .iter()
            .any(|n| n.rule_id == "WindowsAuthentication")
    );
}

#[test]
fn gathering_reads_windows_principals_from_the_catalog_batch() {
    let source = fixtures::RecordedSource::tailspin();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let got = rt
        .block_on(gather_instance_facts(&source, &GatherOptions::default()))
        .unwrap();
    let c360 = got
        .databases
        .iter()
        .find(|d| d.name.as_str() == "Customer360")
        .unwrap();
    assert_eq!(
        c360.catalog.as_ref().unwrap().windows_users,
        Some(vec![
            WindowsUser {
                name: "TAILSPIN\\labadmin".into(),
                is_group: false,
                login: Some("TAILSPIN\\labadmin".into()),
            },
            WindowsUser {
                name: "TAILSPIN\\crm-batch".into(),
                is_group: false,
                login: None,
            },
        ])
    );
    // Still the same number of round trips.
    assert_eq!(got.probe_batches, PROBE_COUNT);
    let toy = got
        .databases
        .iter()
        .find(|d| d.name.as_str() == "ToyStore")
        .unwrap();
    assert_eq!(
        toy.catalog.as_ref().unwrap().windows_users,
        Some(Vec::new())
    );
}
