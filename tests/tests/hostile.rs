//! The hostile and bad input catalogue: every case is refused with a typed error whose message
//! names the problem and what to do, and leaves both simulated servers as they were (and, for a
//! refused creation, no journal record behind).
//!
//! The catalogue is the `CASES` list of each group below; each group's test walks its list, so
//! the count is the number of rows. `catalogue_has_at_least_forty_cases` adds them up.

use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use milink_core::assess::{AssessOptions, assess};
use milink_core::journal::{FileJournal, JournalEntry, JournalError, JournalRecord};
use milink_core::lifecycle::{
    CutoverOptions, DataLossAcknowledgement, FailoverKind, FailoverMode, LinkSpec,
};
use milink_core::names::{
    AgName, CertificateName, DatabaseName, EndpointHost, EndpointName, InstanceId, LinkMode,
    LinkName, Lsn, MiFqdn, NameError, ServerName, SqlVersion, TcpPort, UpdatePolicy,
};
use milink_core::ports::Journal;
use milink_core::sim::{
    Call, Fault, InjectedError, InstanceCall, Lab, SimConfig, SourceCall, Trigger,
};
use milink_core::tsql::quote::quote_ident;
use milink_core::{LinkSession, MemoryJournal, Session, SessionError, SessionOptions};
use milink_tests::{SQL_2019_CU20, create, lab, lab_on, options, ready, resume};
use serde_json::Value;

/// What both servers hold: SQL Server, the managed instance and the link between them (not the
/// clock, the event log or the call counters).
fn sides(lab: &Lab) -> Value {
    let world: Value = serde_json::from_str(&lab.sim.to_json().unwrap()).unwrap();
    serde_json::json!({
        "source": world["source"],
        "instance": world["instance"],
        "replications": world["replications"],
    })
}

/// The message names every word of `words` (case-insensitive).
fn says(e: &dyn Display, words: &[&str]) {
    let text = e.to_string().to_lowercase();
    for w in words {
        assert!(
            text.contains(&w.to_lowercase()),
            "{e}\n  does not say {w:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Names: every name field refuses a hostile or invalid value with the type and the rule.
// ---------------------------------------------------------------------------------------------

type NameCase = (
    &'static str,
    fn() -> Result<(), NameError>,
    &'static [&'static str],
);

fn long() -> String {
    "x".repeat(129)
}

const NAME_CASES: &[NameCase] = &[
    (
        "empty database name",
        || DatabaseName::new("").map(drop),
        &["DatabaseName", "empty"],
    ),
    (
        "database name over 128 UTF-16 units",
        || DatabaseName::new(long()).map(drop),
        &["DatabaseName", "129", "128"],
    ),
    (
        "NUL in a database name",
        || DatabaseName::new("Toy\0Store").map(drop),
        &["DatabaseName", "control character"],
    ),
    (
        "right-to-left override in an AG name",
        || AgName::new("AG_\u{202E}erotSyoT").map(drop),
        &["AgName", "U+202E", "look like another"],
    ),
    (
        "zero-width space in a link name",
        || LinkName::new("DAG_\u{200B}ToyStore").map(drop),
        &["LinkName", "U+200B"],
    ),
    (
        "backslash in a certificate name",
        || CertificateName::new("Cert\\endpoint").map(drop),
        &["CertificateName", "backslash"],
    ),
    (
        "leading space in a server name",
        || ServerName::new(" TailspinSql").map(drop),
        &["ServerName", "whitespace"],
    ),
    (
        "byte order mark in an endpoint name",
        || EndpointName::new("\u{FEFF}database_mirroring_endpoint").map(drop),
        &["EndpointName", "U+FEFF"],
    ),
    (
        "a URL as the endpoint host",
        || EndpointHost::new("TCP://10.0.1.4:5022").map(drop),
        &["EndpointHost", "not an IP address or DNS host name"],
    ),
    (
        "a space in the instance's FQDN",
        || MiFqdn::new("tailspin mi.database.windows.net").map(drop),
        &["MiFqdn"],
    ),
    (
        "a resource id of another provider",
        || {
            InstanceId::parse(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Evil/managedInstances/mi",
            )
            .map(drop)
        },
        &["InstanceId", "Microsoft.Sql/managedInstances"],
    ),
    (
        "port 0",
        || TcpPort::new(0).map(drop),
        &["TcpPort", "port 0"],
    ),
    (
        "an LSN with letters",
        || "12abc".parse::<Lsn>().map(drop),
        &["Lsn", "log sequence number"],
    ),
    (
        "a two-part version",
        || "16.0".parse::<SqlVersion>().map(drop),
        &["SqlVersion", "16.0.4125.3"],
    ),
    (
        "a MultiDatabase link name with capitals",
        || LinkName::new("Tailspin_Link").and_then(|l| l.check_mode(LinkMode::MultiDatabase)),
        &["LinkName", "lowercase letters and hyphens"],
    ),
];

#[test]
fn hostile_names_are_refused_in_every_name_field() {
    for (case, make, words) in NAME_CASES {
        let e = make().expect_err(case);
        says(&e, words);
    }
}

/// Proven correct acceptance: a name made to break out of a bracketed identifier is a valid
/// sysname; it is quoted, never spliced.
#[test]
fn an_injection_shaped_name_is_accepted_and_quoted() {
    let name = DatabaseName::new("x]; DROP DATABASE master;--").unwrap();
    assert_eq!(quote_ident(name.as_str()), "[x]]; DROP DATABASE master;--]");
}

// ---------------------------------------------------------------------------------------------
// 2. Link specs: refused by `Session::create` before anything is journaled or sent.
// ---------------------------------------------------------------------------------------------

type SpecCase = (&'static str, fn(&mut LinkSpec), &'static [&'static str]);

fn db(name: &str) -> DatabaseName {
    DatabaseName::new(name).unwrap()
}

const SPEC_CASES: &[SpecCase] = &[
    (
        "master as the link's database",
        |s| s.databases = vec![db("master")],
        &["master", "system database", "user databases only"],
    ),
    (
        "tempdb as the link's database",
        |s| s.databases = vec![db("tempdb")],
        &["tempdb", "system database"],
    ),
    (
        "model as the link's database",
        |s| s.databases = vec![db("model")],
        &["model", "system database"],
    ),
    (
        "MSDB (any case) as the link's database",
        |s| s.databases = vec![db("MSDB")],
        &["MSDB", "system database"],
    ),
    (
        "no database",
        |s| s.databases.clear(),
        &["no database", "at least one"],
    ),
    (
        "a database twice",
        |s| {
            s.mode = LinkMode::MultiDatabase;
            s.link = LinkName::new("toystore").unwrap();
            s.databases = vec![db("ToyStore"), db("ToyStore")]
        },
        &["ToyStore", "more than once"],
    ),
    (
        "two databases on a SingleDatabase link",
        |s| s.databases = vec![db("ToyStore"), db("Customer360")],
        &["exactly one", "MultiDatabase"],
    ),
    (
        "SESSION_TIMEOUT = 0",
        |s| s.session_timeout_s = 0,
        &["session", "5"],
    ),
    (
        "SESSION_TIMEOUT = 4",
        |s| s.session_timeout_s = 4,
        &["session", "5"],
    ),
    (
        "SQL Server 2019 below CU20",
        |s| s.source.version = SqlVersion::new(15, 0, 4100, 1),
        &["does not support", "update to 15.0.4312"],
    ),
    (
        "SQL Server 2014",
        |s| s.source.version = SqlVersion::new(12, 0, 6024, 0),
        &["does not support the managed instance link"],
    ),
    (
        "two-way on SQL Server 2019",
        |s| {
            s.source.version = SQL_2019_CU20;
            s.failover_mode = FailoverMode::Manual
        },
        &["two-way", "FailoverMode::None"],
    ),
    (
        "two-way (failback) on an Always-up-to-date instance",
        |s| s.target.update_policy = UpdatePolicy::AlwaysUpToDate,
        &["update policy", "FailoverMode::None"],
    ),
    (
        "a zero probe interval",
        |s| s.options.probe_interval = Duration::ZERO,
        &["probe"],
    ),
    (
        "MultiDatabase on SQL Server 2019",
        |s| {
            s.source.version = SQL_2019_CU20;
            s.failover_mode = FailoverMode::None;
            s.mode = LinkMode::MultiDatabase;
            s.link = LinkName::new("toystore").unwrap()
        },
        &["MultiDatabase", "2022"],
    ),
];

#[test]
fn bad_link_specs_are_refused_before_anything_is_journaled_or_sent() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (case, edit, words)) in SPEC_CASES.iter().enumerate() {
        let lab = lab(100 + i as u64);
        let before = sides(&lab);
        let mut spec = lab.spec.clone();
        edit(&mut spec);
        let path = dir.path().join(format!("spec-{i}.journal"));
        let journal = FileJournal::create(&path).unwrap();
        let refused = Session::create(
            spec,
            Arc::new(lab.sim.sql_server()),
            Arc::new(lab.sim.managed_instance()),
            journal,
            Arc::new(lab.sim.clock()),
            options(1),
        )
        .err()
        .unwrap_or_else(|| panic!("{case}: accepted"));
        assert!(
            matches!(refused, SessionError::Spec(_)),
            "{case}: {refused:?}"
        );
        assert!(refused.is_caller_error(), "{case}");
        says(&refused, words);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            0,
            "{case}: journaled"
        );
        assert_eq!(sides(&lab), before, "{case}: a server changed");
    }
}

#[test]
fn a_lab_for_a_database_the_facts_do_not_hold_is_refused() {
    let topology = Lab::tailspin_topology(SimConfig::with_seed(1).start).unwrap();
    let e = Lab::from_topology(topology, SimConfig::with_seed(1), &db("NoSuchDb")).unwrap_err();
    says(
        &e,
        &[
            "NoSuchDb",
            "SQL Server databases of the topology",
            "name one of them",
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Readiness: every blocking finding keeps `start` from sending anything.
// ---------------------------------------------------------------------------------------------

/// The blockers the assessment of the lab's world finds for `databases`.
fn blockers_for(lab: &Lab, databases: &[&str]) -> milink_core::lifecycle::AssessmentOutcome {
    lab.sim.with_world(|w| {
        let names: Vec<DatabaseName> = databases.iter().map(|d| db(d)).collect();
        let options = AssessOptions {
            databases: Some(names.clone()),
            failback: true,
            ..AssessOptions::at(w.now)
        };
        assess(
            &w.instance_facts(),
            &w.database_facts(),
            Some(&w.target_facts()),
            &options,
        )
        .outcome_for(&names)
    })
}

/// A session on `lab` given an assessment with `outcome`'s blockers: the assessment is refused
/// naming each, `start` is refused after it, and nothing is sent.
async fn start_is_refused(lab: &Lab, outcome: milink_core::lifecycle::AssessmentOutcome) -> String {
    let before = sides(lab);
    let s = create(lab, MemoryJournal::new(), options(1)).unwrap();
    let e = s.record_assessment(outcome.clone()).await.unwrap_err();
    assert!(matches!(e, SessionError::Rejected { .. }), "{e:?}");
    for b in &outcome.blockers {
        says(&e, &[&b.rule, &b.title]);
    }
    let e = s.start().await.unwrap_err();
    assert!(matches!(e, SessionError::Rejected { .. }), "{e:?}");
    says(&e, &["assess"]);
    assert_eq!(sides(lab), before);
    e.to_string()
}

#[tokio::test]
async fn every_blocking_finding_of_a_not_ready_database_blocks_start_on_its_own() {
    let lab = lab(7);
    let all = blockers_for(&lab, &["Customer360"]);
    // SIMPLE recovery, no full backup, FILESTREAM, two log files.
    let rules: Vec<&str> = all.blockers.iter().map(|b| b.rule.as_str()).collect();
    for expected in [
        "RecoveryModel",
        "FullBackup",
        "FileStream",
        "MultipleLogFiles",
    ] {
        assert!(
            rules.iter().any(|r| r.contains(expected)),
            "{expected} not among {rules:?}"
        );
    }
    for blocker in &all.blockers {
        let lab = milink_tests::lab(7);
        let one = milink_core::lifecycle::AssessmentOutcome {
            blockers: vec![blocker.clone()],
        };
        start_is_refused(&lab, one).await;
    }
}

/// Facts of the lab's world, changed by a case.
struct Facts {
    instance: milink_core::assess::InstanceFacts,
    databases: Vec<milink_core::assess::DatabaseFacts>,
    target: milink_core::assess::TargetFacts,
    options: AssessOptions,
}

type FactsCase = (&'static str, fn(&mut Facts), &'static str);

fn toystore(f: &mut Facts) -> &mut milink_core::assess::DatabaseFacts {
    f.databases
        .iter_mut()
        .find(|d| d.name.as_str() == Lab::TOYSTORE)
        .unwrap()
}

const FACTS_CASES: &[FactsCase] = &[
    (
        "SIMPLE recovery",
        |f| toystore(f).recovery_model = milink_core::assess::RecoveryModel::Simple,
        "Link.RecoveryModel",
    ),
    (
        "no full backup, or only copy-only ones (they are not counted)",
        |f| toystore(f).last_full_backup = None,
        "Link.FullBackup",
    ),
    (
        "an unsupported SQL Server build",
        |f| f.instance.version = SqlVersion::new(15, 0, 4100, 1),
        "Link.SqlVersion",
    ),
    (
        "availability groups disabled",
        |f| f.instance.hadr_enabled = false,
        "Link.HadrEnabled",
    ),
    (
        "Standard edition with a MultiDatabase link",
        |f| {
            f.instance.edition = milink_core::assess::Edition::Standard;
            f.options.link_mode = LinkMode::MultiDatabase
        },
        "Link.MultiDatabaseMode",
    ),
    (
        "the instance's storage full",
        |f| {
            f.target.storage_max_gb = 32;
            f.target.storage_used_gb = Some(32)
        },
        "Link.StorageFits",
    ),
    (
        "the database's name taken on the instance",
        |f| f.target.databases = Some(vec![db(Lab::TOYSTORE)]),
        "Link.NameTaken",
    ),
    (
        "the instance in a failover group",
        |f| f.target.in_failover_group = Some(true),
        "Link.FailoverGroup",
    ),
    (
        "failback asked of an Always-up-to-date instance",
        |f| {
            f.target.update_policy = Some(UpdatePolicy::AlwaysUpToDate);
            f.options.failback = true
        },
        "Link.UpdatePolicy",
    ),
    (
        "the instance's certificate expired in master",
        |f| {
            let fqdn = f.target.fqdn.to_string();
            let expiry =
                milink_core::time::Timestamp::from_millis(f.options.now.as_millis() - 86_400_000);
            // Read as the probes' facts are, so fields added later keep their defaults.
            let expired = serde_json::from_value(serde_json::json!({
                "name": fqdn, "subject": format!("CN={fqdn}"), "issuer": format!("CN={fqdn}"),
                "expiry": expiry, "private_key": "NO_PRIVATE_KEY", "thumbprint": "00".repeat(20),
            }))
            .unwrap();
            f.instance.certificates.push(expired);
        },
        "Link.CertificateExpired",
    ),
];

#[tokio::test]
async fn each_blocking_fact_blocks_start_with_its_rule() {
    for (i, (case, change, rule)) in FACTS_CASES.iter().enumerate() {
        let lab = lab(50 + i as u64);
        let mut facts = lab.sim.with_world(|w| Facts {
            instance: w.instance_facts(),
            databases: w.database_facts(),
            target: w.target_facts(),
            options: AssessOptions {
                databases: Some(vec![db(Lab::TOYSTORE)]),
                ..AssessOptions::at(w.now)
            },
        });
        change(&mut facts);
        let outcome = assess(
            &facts.instance,
            &facts.databases,
            Some(&facts.target),
            &facts.options,
        )
        .outcome_for(&[db(Lab::TOYSTORE)]);
        assert!(
            outcome.blockers.iter().any(|b| b.rule == *rule),
            "{case}: {rule} not among {:?}",
            outcome.blockers
        );
        start_is_refused(&lab, outcome).await;
    }
}

#[tokio::test]
async fn an_unknown_database_and_a_system_database_block_start() {
    for name in ["NoSuchDb", "msdb"] {
        let lab = lab(8);
        let outcome = blockers_for(&lab, &[name]);
        assert!(!outcome.blockers.is_empty(), "{name}");
        start_is_refused(&lab, outcome).await;
    }
}

#[tokio::test]
async fn start_before_any_assessment_is_refused() {
    let lab = lab(9);
    let before = sides(&lab);
    let s = create(&lab, MemoryJournal::new(), options(9)).unwrap();
    let e = s.start().await.unwrap_err();
    assert!(e.is_caller_error(), "{e:?}");
    says(&e, &["assess"]);
    assert_eq!(sides(&lab), before);
}

// ---------------------------------------------------------------------------------------------
// 4. Commands the link cannot take in its state.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_forced_failover_without_or_with_a_wrong_acknowledgement_is_refused() {
    let lab = lab(10);
    let s = create(&lab, MemoryJournal::new(), options(10)).unwrap();
    s.record_assessment(ready()).await.unwrap();
    s.start().await.unwrap();
    let before = sides(&lab);
    let e = s.failover(FailoverKind::Forced(None)).await.unwrap_err();
    assert!(e.is_caller_error(), "{e:?}");
    says(
        &e,
        &[
            "DataLossAcknowledgement naming the link",
            "planned failover",
        ],
    );
    let wrong = DataLossAcknowledgement {
        link: "DAG_SomethingElse".to_owned(),
    };
    let e = s
        .failover(FailoverKind::Forced(Some(wrong)))
        .await
        .unwrap_err();
    assert!(e.is_caller_error(), "{e:?}");
    says(&e, &[lab.spec.link.as_str()]);
    assert_eq!(sides(&lab), before);
}

#[tokio::test]
async fn failback_while_sql_server_is_still_primary_is_refused() {
    let lab = lab(11);
    let s = create(&lab, MemoryJournal::new(), options(11)).unwrap();
    s.record_assessment(ready()).await.unwrap();
    s.start().await.unwrap();
    let before = sides(&lab);
    let e = s.failback().await.unwrap_err();
    assert!(matches!(e, SessionError::Rejected { .. }), "{e:?}");
    says(&e, &["failback"]);
    assert_eq!(sides(&lab), before);
}

#[tokio::test]
async fn failback_on_a_one_way_link_is_refused() {
    let lab = lab_on(SQL_2019_CU20, SimConfig::with_seed(12));
    let s = create(&lab, MemoryJournal::new(), options(12)).unwrap();
    s.record_assessment(ready()).await.unwrap();
    s.start().await.unwrap();
    let before = sides(&lab);
    let e = s.failback().await.unwrap_err();
    assert!(e.is_caller_error(), "{e:?}");
    says(&e, &["failback"]);
    assert_eq!(sides(&lab), before);
}

#[tokio::test]
async fn failover_and_cutover_before_the_link_exists_are_refused() {
    let lab = lab(13);
    let before = sides(&lab);
    let s = create(&lab, MemoryJournal::new(), options(13)).unwrap();
    s.record_assessment(ready()).await.unwrap();
    let e = s.failover(FailoverKind::Planned).await.unwrap_err();
    assert!(matches!(e, SessionError::Rejected { .. }), "{e:?}");
    let e = s.cutover(CutoverOptions::default()).await.unwrap_err();
    assert!(matches!(e, SessionError::Rejected { .. }), "{e:?}");
    assert_eq!(sides(&lab), before);
}

// ---------------------------------------------------------------------------------------------
// 5. Journals: truncated, from a newer build, from another world, in use, not empty.
// ---------------------------------------------------------------------------------------------

/// A journal of a link created on `lab`, written to `path`.
fn journal_on(lab: &Lab, path: &std::path::Path) {
    let s = create(lab, FileJournal::create(path).unwrap(), options(1)).unwrap();
    drop(s);
}

#[test]
fn a_truncated_journal_is_refused_with_the_repair_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let lab = lab(20);
    let path = dir.path().join("torn.journal");
    journal_on(&lab, &path);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    let before = sides(&lab);
    let e = FileJournal::open(&path).err().unwrap();
    assert!(matches!(e, JournalError::TornTail { .. }), "{e:?}");
    says(&e, &["torn", "open_repairing"]);
    assert_eq!(sides(&lab), before);
}

#[test]
fn a_journal_from_a_newer_schema_is_refused_with_upgrade_advice() {
    let dir = tempfile::tempdir().unwrap();
    let lab = lab(21);
    let path = dir.path().join("newer.journal");
    journal_on(&lab, &path);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut record: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    record["schema_version"] = Value::from(99);
    std::fs::write(&path, format!("{record}\n")).unwrap();
    let e = FileJournal::open(&path).err().unwrap();
    assert!(matches!(e, JournalError::UnsupportedSchema { .. }), "{e:?}");
    says(&e, &["99", "upgrade milink"]);
}

#[test]
fn a_journal_from_another_world_is_refused_before_anything_is_read_or_sent() {
    let dir = tempfile::tempdir().unwrap();
    let lab = lab(22);
    let path = dir.path().join("world.journal");
    let mine = SessionOptions {
        world: Some("lab-a".into()),
        ..options(1)
    };
    drop(create(&lab, FileJournal::create(&path).unwrap(), mine).unwrap());
    let records = std::fs::read_to_string(&path).unwrap();
    let before = sides(&lab);
    let other = SessionOptions {
        world: Some("lab-b".into()),
        ..options(1)
    };
    let e = resume(&lab.sim, FileJournal::open(&path).unwrap(), other)
        .err()
        .unwrap();
    assert!(matches!(e, SessionError::WrongWorld { .. }), "{e:?}");
    says(&e, &["lab-a", "lab-b"]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), records);
    assert_eq!(sides(&lab), before);
}

#[test]
fn a_second_session_on_the_same_link_is_refused_and_leaves_no_journal_record() {
    let dir = tempfile::tempdir().unwrap();
    let lab = lab(23);
    let first = create(
        &lab,
        FileJournal::create(dir.path().join("a.journal")).unwrap(),
        options(1),
    )
    .unwrap();
    let before = sides(&lab);
    let second = dir.path().join("b.journal");
    let e = create(&lab, FileJournal::create(&second).unwrap(), options(1))
        .err()
        .unwrap();
    assert!(matches!(e, SessionError::LinkLocked { .. }), "{e:?}");
    says(&e, &[lab.spec.link.as_str()]);
    assert_eq!(std::fs::metadata(&second).unwrap().len(), 0);
    assert_eq!(sides(&lab), before);
    drop(first);
}

#[test]
fn creating_a_link_in_a_journal_that_holds_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let lab = lab(24);
    let path = dir.path().join("full.journal");
    journal_on(&lab, &path);
    let records = std::fs::read_to_string(&path).unwrap();
    let e = create(&lab, FileJournal::open(&path).unwrap(), options(1))
        .err()
        .unwrap();
    assert!(matches!(e, SessionError::JournalNotEmpty { .. }), "{e:?}");
    says(&e, &["resume it instead"]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), records);
    // `FileJournal::create` on the same path refuses to overwrite it.
    let e = FileJournal::create(&path).err().unwrap();
    says(&e, &["already exists", "resume"]);
}

#[test]
fn resuming_an_empty_journal_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let lab = lab(25);
    let path = dir.path().join("empty.journal");
    drop(FileJournal::create(&path).unwrap());
    let e = FileJournal::open(&path)
        .map_err(SessionError::from)
        .and_then(|j| resume(&lab.sim, j, options(1)))
        .err()
        .unwrap();
    says(&e, &["empty", "no link to resume"]);
}

// ---------------------------------------------------------------------------------------------
// 6. The servers refuse: the first call fails for good, nothing else is sent.
// ---------------------------------------------------------------------------------------------

type ServerCase = (&'static str, Call, &'static str, &'static str);

const SERVER_CASES: &[ServerCase] = &[
    (
        "the instance's certificate in master under another name",
        Call::Source(SourceCall::ImportInstanceCertificate),
        "sql:15232",
        "A certificate with name 'tailspin-mi' already exists or this certificate already has been added to the database.",
    ),
    (
        "bad SQL credentials",
        Call::Source(SourceCall::EnsureMasterKey),
        "sql:18456",
        "Login failed for user 'milink'.",
    ),
    (
        "SQL Server unreachable",
        Call::Source(SourceCall::EnsureMasterKey),
        "sql:53",
        "A network-related error occurred: the server was not found.",
    ),
    (
        "an ARM token refused",
        Call::Instance(InstanceCall::PutServerTrustCertificate),
        "arm:401:InvalidAuthenticationToken",
        "The access token is invalid.",
    ),
    (
        "an ARM permission missing",
        Call::Instance(InstanceCall::PutServerTrustCertificate),
        "arm:403:AuthorizationFailed",
        "The client does not have authorization.",
    ),
    (
        "the instance's storage is full",
        Call::Instance(InstanceCall::PutLink),
        "arm:409:ManagedInstanceStorageLimitReached",
        "The storage limit of the instance was reached.",
    ),
    (
        "the link name is taken on the instance",
        Call::Instance(InstanceCall::PutLink),
        "arm:409:ManagedInstanceHasHybridLink",
        "The instance already has a link with this name.",
    ),
];

#[test]
fn an_endpoint_certificate_that_has_expired_is_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let lab = lab(45);
    let before = sides(&lab);
    let mut spec = lab.spec.clone();
    spec.source.certificate_expiry = lab.sim.now().date();
    let path = dir.path().join("expired.journal");
    let e = Session::create(
        spec,
        Arc::new(lab.sim.sql_server()),
        Arc::new(lab.sim.managed_instance()),
        FileJournal::create(&path).unwrap(),
        Arc::new(lab.sim.clock()),
        options(1),
    )
    .err()
    .unwrap();
    assert!(matches!(e, SessionError::Spec(_)), "{e:?}");
    says(
        &e,
        &["expiry date", "not after today", "date in the future"],
    );
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    assert_eq!(sides(&lab), before);
}

#[tokio::test]
async fn a_refusal_by_either_server_fails_the_step_with_its_code() {
    for (i, (case, call, code, message)) in SERVER_CASES.iter().enumerate() {
        let lab = lab(30 + i as u64);
        lab.sim.inject(
            Trigger::OnCall {
                call: *call,
                nth: 1,
            },
            Fault::Fail(InjectedError {
                code: (*code).to_owned(),
                message: (*message).to_owned(),
                transient: false,
                retry_after: None,
            }),
        );
        let s = create(&lab, MemoryJournal::new(), options(1)).unwrap();
        s.record_assessment(ready()).await.unwrap();
        let e = s.start().await.unwrap_err();
        assert!(matches!(e, SessionError::StepFailed(_)), "{case}: {e:?}");
        says(&e, &[code, message]);
        // The link was never created on the instance.
        lab.sim.with_world(|w| {
            assert!(w.primary_of(&lab.spec.link).is_none(), "{case}");
        });
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Data read from outside (options, facts, operations): out of range, twice, malformed.
// ---------------------------------------------------------------------------------------------

type DataCase = (
    &'static str,
    fn() -> Result<(), String>,
    &'static [&'static str],
);

fn read<T: serde::de::DeserializeOwned>(v: Value) -> Result<(), String> {
    serde_json::from_value::<T>(v)
        .map(drop)
        .map_err(|e| e.to_string())
}

fn dag_spec(listener: &str, timeout: u16) -> Value {
    serde_json::json!({
        "dag": "DAG_ToyStore", "sql_ag": "AG_ToyStore", "sql_listener_url": listener,
        "mi_ag": "AG_ToyStore_MI", "mi_fqdn": "tailspin-mi.abc123def456.database.windows.net",
        "mi_database": null, "session_timeout_s": timeout,
    })
}

fn ag_spec(url: &str) -> Value {
    serde_json::json!({
        "ag": "AG_ToyStore", "databases": ["ToyStore"], "replica": "TailspinSql",
        "endpoint_url": url, "cluster_type_none": true,
    })
}

/// The lab's facts with its ready database given a second time under another case, once after
/// and once before the first.
fn facts_named_twice() -> Result<(), String> {
    let lab = lab(40);
    let (instance, mut dbs, target) = lab
        .sim
        .with_world(|w| (w.instance_facts(), w.database_facts(), w.target_facts()));
    let mut twice = dbs[0].clone();
    twice.name = db(&twice.name.as_str().to_uppercase());
    twice.recovery_model = milink_core::assess::RecoveryModel::Simple;
    let options = AssessOptions::default();
    dbs.push(twice.clone());
    let after = milink_core::assess::try_assess(&instance, &dbs, Some(&target), &options)
        .map(drop)
        .map_err(|e| e.to_string());
    dbs.pop();
    dbs.insert(0, twice);
    let before = milink_core::assess::try_assess(&instance, &dbs, Some(&target), &options)
        .map(drop)
        .map_err(|e| e.to_string());
    match (after, before) {
        (Err(a), Err(b)) => Err(format!("{a} / {b}")),
        other => panic!("accepted: {other:?}"),
    }
}

fn topology_named_twice() -> Result<(), String> {
    let config = SimConfig::with_seed(41);
    let mut topology = Lab::tailspin_topology(config.start).unwrap();
    let mut twice = topology.source.databases[0].clone();
    twice.name = db("toystore");
    topology.source.databases.push(twice);
    Lab::from_topology(topology, config, &db("ToyStore"))
        .map(drop)
        .map_err(|e| e.to_string())
}

const DATA_CASES: &[DataCase] = &[
    (
        "percentile 150",
        || {
            read::<AssessOptions>(
                serde_json::json!({"sku": {"percentile": 150.0, "scale_factor_percent": 100}}),
            )
        },
        &["percentile 150", "0–100"],
    ),
    (
        "percentile -5",
        || {
            read::<AssessOptions>(
                serde_json::json!({"sku": {"percentile": -5.0, "scale_factor_percent": 100}}),
            )
        },
        &["percentile -5", "0–100"],
    ),
    (
        "a comfort factor of 0%",
        || {
            read::<AssessOptions>(
                serde_json::json!({"sku": {"percentile": 95.0, "scale_factor_percent": 0}}),
            )
        },
        &["scale_factor_percent 0", "use 100"],
    ),
    (
        "a misspelled sizing option",
        || {
            read::<AssessOptions>(
                serde_json::json!({"sku": {"percentil": 95.0, "scale_factor_percent": 100}}),
            )
        },
        &["unknown field", "percentil"],
    ),
    (
        "facts naming one database twice",
        facts_named_twice,
        &["are both named", "TOYSTORE", "give each database once"],
    ),
    (
        "a topology naming one database twice",
        topology_named_twice,
        &["toystore", "two databases", "give each database once"],
    ),
    (
        "an http:// endpoint URL",
        || {
            read::<milink_core::tsql::availability_groups::CreateAgSpec>(ag_spec(
                "http://10.0.1.4:5022",
            ))
        },
        &["TCP://host:port", "does not start with TCP://"],
    ),
    (
        "an endpoint URL without a port",
        || read::<milink_core::tsql::availability_groups::CreateAgSpec>(ag_spec("TCP://10.0.1.4")),
        &["TCP://host:port", "port"],
    ),
    (
        "an endpoint URL on port 0",
        || {
            read::<milink_core::tsql::availability_groups::CreateAgSpec>(ag_spec(
                "TCP://10.0.1.4:0",
            ))
        },
        &["port 0"],
    ),
    (
        "T-SQL in a listener URL",
        || {
            read::<milink_core::tsql::availability_groups::CreateDagSpec>(dag_spec(
                "TCP://x';DROP DATABASE master;--:5022",
                20,
            ))
        },
        &["endpoint URL", "not an IP address or DNS host name"],
    ),
    (
        "ARM JSON without properties",
        || {
            milink_core::assess::TargetFacts::from_arm_json(&serde_json::json!({"name": "mi"}))
                .map(drop)
                .map_err(|e| e.0)
        },
        &["properties"],
    ),
    (
        "ARM JSON with properties of the wrong type",
        || {
            milink_core::assess::TargetFacts::from_arm_json(
                &serde_json::json!({"name": "mi", "properties": ["x"]}),
            )
            .map(drop)
            .map_err(|e| e.0)
        },
        &["properties"],
    ),
    (
        "SESSION_TIMEOUT = 0 in an operation",
        || {
            read::<milink_core::tsql::availability_groups::CreateDagSpec>(dag_spec(
                "TCP://10.0.1.4:5022",
                0,
            ))
        },
        &["SESSION_TIMEOUT 0", "minimum of 5"],
    ),
];

#[test]
fn data_read_from_outside_is_refused_out_of_range_twice_or_malformed() {
    for (case, read, words) in DATA_CASES {
        let e = read().expect_err(case);
        says(&e, words);
    }
}

/// Proven correct acceptances: what milink writes reads back, IPv6 in brackets included.
#[test]
fn the_urls_milink_writes_read_back() {
    for host in ["10.0.1.4", "sql01.corp.example", "fd00::4"] {
        let url = EndpointHost::new(host)
            .unwrap()
            .tcp_url(TcpPort::MIRRORING_DEFAULT);
        read::<milink_core::tsql::availability_groups::CreateAgSpec>(ag_spec(&url)).unwrap();
        read::<milink_core::tsql::availability_groups::CreateDagSpec>(dag_spec(&url, 5)).unwrap();
    }
}

#[test]
fn catalogue_has_at_least_forty_cases() {
    let total = NAME_CASES.len() + SPEC_CASES.len() + SERVER_CASES.len() + DATA_CASES.len();
    // Plus the facts' blockers and the single tests: an expired endpoint certificate, a lab for
    // a missing database, four readiness blockers, an unknown
    // and a system database, start before assessment, two forced failovers, two failbacks,
    // failover and cutover before the link, five journals, a second session, an empty journal.
    let total = total + FACTS_CASES.len() + 1 + 1 + 4 + 2 + 1 + 2 + 2 + 2 + 5 + 1 + 1;
    println!("hostile input catalogue: {total} cases");
    assert!(total >= 40, "{total}");
}

/// A redirect hook that counts its calls.
struct CountingHook(std::sync::atomic::AtomicUsize);

#[async_trait::async_trait]
impl milink_core::redirect::RedirectHook for CountingHook {
    async fn redirect(
        &self,
        _target: &milink_core::redirect::RedirectTarget,
    ) -> Result<(), milink_core::redirect::HookError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

/// A journal edited to name another host as the managed instance (its `Created` spec, the
/// records re-sealed): the resumed session's failover reaches the role change, but its redirect
/// is refused with `spec_mismatch` before the hook runs, so the workload's connection string
/// (its password included) never goes to that host; the refusal is final, not retried.
#[tokio::test]
async fn a_journal_naming_another_instance_host_is_never_redirected_to() {
    let lab = lab(5);
    let first = create(&lab, MemoryJournal::new(), options(5))
        .unwrap()
        .with_checkpoint_every(u64::MAX);
    first.record_assessment(ready()).await.unwrap();
    first.start().await.unwrap();
    let records = first.with_journal(|j| j.records().unwrap());
    drop(first);
    let mut edited = MemoryJournal::new();
    for r in records {
        let entry = match r.entry {
            JournalEntry::Created { mut spec, world } => {
                spec.target.fqdn = MiFqdn::new("attacker.example.net").unwrap();
                JournalEntry::Created { spec, world }
            }
            other => other,
        };
        edited
            .append(&JournalRecord::new(r.seq, r.at, entry))
            .unwrap();
    }
    let hook = Arc::new(CountingHook(std::sync::atomic::AtomicUsize::new(0)));
    let s = resume(&lab.sim, edited, options(5))
        .unwrap()
        .with_redirect_hook(hook.clone());
    let err = s.failover(FailoverKind::Planned).await.unwrap_err();
    let SessionError::StepFailed(step) = &err else {
        panic!("expected StepFailed, got {err}");
    };
    assert_eq!(step.code, "spec_mismatch", "{step:?}");
    assert!(!step.retryable);
    assert!(
        step.message.contains("attacker.example.net"),
        "{}",
        step.message
    );
    assert!(
        step.message
            .contains(lab.sim.with_world(|w| w.instance.fqdn.to_string()).as_str()),
        "{}",
        step.message
    );
    assert_eq!(hook.0.load(std::sync::atomic::Ordering::SeqCst), 0);
}
