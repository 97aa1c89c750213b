//! The lab's main job as a user runs it: the JSON report, determinism, plan mode, and an
//! interrupted run continued from its journal.

use std::io::Write;
use std::sync::{Arc, Mutex};

use milink_examples::tailspin::{Options, Report, run, sidecar};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

async fn lab(options: Options) -> (Report, String) {
    let out = Capture::default();
    let report = run(&options, Box::new(out.clone())).await.unwrap();
    (report, out.text())
}

fn opts(dir: &tempfile::TempDir, args: &[&str]) -> Options {
    let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    args.extend([
        "--journal-dir".to_string(),
        dir.path().display().to_string(),
    ]);
    Options::parse(&args).unwrap()
}

#[tokio::test]
async fn the_default_run_reports_readiness_failover_and_parity() {
    let dir = tempfile::tempdir().unwrap();
    let wall = std::time::Instant::now();
    let (r, text) = lab(opts(&dir, &[])).await;
    assert!(wall.elapsed().as_secs() < 10);
    let verdict = |name: &str| r.databases.iter().find(|d| d.name == name).unwrap().clone();
    assert_eq!(verdict("ToyStore").verdict, "Ready");
    let c360 = verdict("Customer360");
    assert_eq!(c360.verdict, "NotReady");
    let blockers: Vec<&str> = c360
        .findings
        .iter()
        .filter(|f| f.severity == "blocker")
        .map(|f| f.rule.as_str())
        .collect();
    assert!(blockers.len() >= 2, "{blockers:?}");
    assert!(c360.findings.iter().all(|f| !f.fix.is_empty()));
    let f = r.failover.as_ref().unwrap();
    assert_eq!((f.kind.as_str(), f.data_loss), ("planned", false));
    let lsn = f.lsn_check.unwrap();
    assert_eq!(lsn.sql_server, lsn.managed_instance);
    // The link was prepared while the application wrote, no client was left once it stopped,
    // and the instance was read live over T-SQL: the LSNs are held for the live quiet window
    // (1 s), and the new primary accepted writes within L + 2 s of the stop.
    assert!(lsn.stable_seconds >= 1);
    assert!(f.write_unavailable_seconds.unwrap() < 30.0, "{f:?}");
    let (l, accepted) = (
        f.role_change_seconds.unwrap(),
        f.accepts_writes_seconds.unwrap(),
    );
    assert!(accepted >= l && accepted <= l + 2.0, "{f:?}");
    assert_eq!(r.parity.len(), 1);
    assert!(r.parity[0].all_match && r.parity[0].tables.len() == 4);
    assert_eq!(r.final_state, "FailedOver");
    assert_eq!(r.outcome, "completed");
    let names: Vec<&str> = r.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["readiness", "link", "replication", "failover", "validation"]
    );
    assert!(std::path::Path::new(r.journal.as_ref().unwrap()).exists());
    for shown in [
        "Customer360   NOT READY",
        "seeding ToyStore",
        "LSN check: SQL Server last_hardened_lsn",
        "PASS: 4 of 4 tables identical",
        "== Summary",
    ] {
        assert!(text.contains(shown), "{shown} missing:\n{text}");
    }
    // The JSON document carries LSNs as decimal strings, like the REST API.
    let json = serde_json::to_value(&r).unwrap();
    assert!(json["failover"]["lsn_check"]["sql_server"].is_string());
}

#[tokio::test]
async fn the_same_seed_gives_the_same_run() {
    let dir = tempfile::tempdir().unwrap();
    let strip = |mut r: Report| {
        r.journal = None;
        r.redirect.connection_file = None;
        for p in &mut r.phases {
            p.wall_ms = 0.0;
        }
        r
    };
    let (a, ta) = lab(opts(&dir, &["--seed", "11"])).await;
    let (b, tb) = lab(opts(&dir, &["--seed", "11"])).await;
    let (c, _) = lab(opts(&dir, &["--seed", "12"])).await;
    let body = |t: &str| {
        t.lines()
            .filter(|l| !l.starts_with("journal") && !l.contains("ms") && !l.contains("journal "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(body(&ta), body(&tb));
    let (a, b, c) = (strip(a), strip(b), strip(c));
    assert_eq!(a, b);
    assert_ne!(a.workload, c.workload);
}

#[tokio::test]
async fn plan_mode_prints_every_batch_and_request_and_writes_no_journal() {
    let dir = tempfile::tempdir().unwrap();
    let (r, text) = lab(opts(&dir, &["--plan", "--cutover"])).await;
    assert_eq!(r.outcome, "planned");
    assert!(r.journal.is_none());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    for expected in [
        "CREATE MASTER KEY ENCRYPTION BY PASSWORD = N'***'",
        "CREATE ENDPOINT [database_mirroring_endpoint]",
        "CREATE AVAILABILITY GROUP [AG_ToyStore]",
        "WITH (DISTRIBUTED)",
        "PUT https://management.azure.com/subscriptions/",
        "/serverTrustCertificates/Cert_TailspinSql_endpoint?api-version=2025-01-01",
        "GET https://management.azure.com/subscriptions/",
        "PATCH https://management.azure.com/",
        "{\"properties\":{\"replicationMode\":\"Sync\"}}",
        "FAILOVER;",
        "DELETE https://management.azure.com/",
        "DROP AVAILABILITY GROUP [DAG_ToyStore]",
        "DROP AVAILABILITY GROUP [AG_ToyStore]",
        "readiness: instance properties",
    ] {
        assert!(text.contains(expected), "{expected} missing from the plan");
    }
    // Each distinct operation once, even though probes and polls repeat.
    assert_eq!(
        text.matches("-- [SQL Server] create the availability group")
            .count(),
        1
    );
    // Nothing narrated in virtual time: it is a plan.
    assert!(!text.contains("  +00:"));
}

#[tokio::test]
async fn an_interrupted_run_continues_from_its_journal_to_the_same_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let (reference, _) = lab(opts(&dir, &["--seed", "13", "--failback"])).await;
    let journal = std::fs::read_to_string(reference.journal.as_ref().unwrap()).unwrap();
    let total = journal.lines().count() as u64;
    assert!(total > 100, "{total}");
    // The record that saves the link PUT's operation URL (its seq is its line): a crash that
    // loses it makes the resumed run send the PUT again while the first one still runs (409,
    // waited out).
    let put_accepted = journal
        .lines()
        .position(|l| {
            l.contains("OperationAccepted")
                && l.contains("distributedAvailabilityGroupsOperationResults")
        })
        .unwrap() as u64;
    for record in [
        1,
        2,
        7,
        put_accepted,
        total / 4,
        total / 2,
        total * 3 / 4,
        total - 1,
    ] {
        let n = record.to_string();
        let (crashed, text) = lab(opts(
            &dir,
            &["--seed", "13", "--failback", "--crash-after", &n],
        ))
        .await;
        assert_eq!(crashed.outcome, "crashed", "record {record}");
        assert_eq!(crashed.crashed_after_record, Some(record));
        assert!(text.contains("--resume"), "{text}");
        let journal = crashed.journal.clone().unwrap();
        assert!(sidecar(std::path::Path::new(&journal)).exists());
        let (resumed, _) = lab(opts(&dir, &["--resume", &journal])).await;
        assert_eq!(resumed.outcome, "completed", "record {record}");
        assert!(resumed.resumed);
        assert_eq!(
            resumed.final_state, reference.final_state,
            "record {record}"
        );
        assert_eq!(
            resumed
                .parity
                .iter()
                .map(|p| p.all_match)
                .collect::<Vec<_>>(),
            vec![true, true],
            "record {record}"
        );
        assert_eq!(resumed.failover.as_ref().map(|f| f.data_loss), Some(false));
        let names: Vec<&str> = resumed.phases.iter().map(|p| p.name.as_str()).collect();
        let expected: Vec<&str> = reference.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, expected, "record {record}");
        // The application was redirected once per role change, also across the crash.
        let sides = |r: &Report| -> Vec<String> {
            r.redirect.legs.iter().map(|l| l.side.clone()).collect()
        };
        assert_eq!(sides(&resumed), sides(&reference), "record {record}");
        assert_eq!(resumed.redirect.redirects.len(), 2, "record {record}");
        let landed: u64 = resumed.redirect.legs.iter().map(|l| l.committed).sum();
        assert_eq!(landed, resumed.workload.committed, "record {record}");
    }
}

#[test]
fn arguments_are_checked() {
    let parse = |a: &[&str]| Options::parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert!(parse(&["--failback", "--cutover"]).is_err());
    assert!(parse(&["--crash-after", "0"]).is_err());
    assert!(parse(&["--plan", "--crash-after", "3"]).is_err());
    assert!(parse(&["--seed"]).is_err());
    assert!(parse(&["--bogus"]).is_err());
    let o = parse(&["--seed", "7", "--json", "--cutover"]).unwrap();
    assert_eq!((o.seed, o.json, o.cutover), (7, true, true));
}

#[tokio::test]
async fn the_workload_is_redirected_through_the_hook_and_the_old_primary_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (r, text) = lab(opts(&dir, &["--seed", "5"])).await;
    let legs = &r.redirect.legs;
    assert_eq!(legs.len(), 2, "{legs:?}");
    assert_eq!(
        (legs[0].side.as_str(), legs[0].server.as_str()),
        ("SQL Server", "TailspinSql,1433")
    );
    assert_eq!(legs[1].side, "managed instance");
    assert_eq!(legs[1].server, format!("{},1433", r.target));
    assert!(legs[0].committed > 0 && legs[1].committed > 0, "{legs:?}");
    // Every committed write is accounted to the connection it went through, none refused.
    assert_eq!(legs[0].committed + legs[1].committed, r.workload.committed);
    assert_eq!(r.workload.refused, 0);
    let redirect = &r.redirect.redirects[0];
    assert_eq!(redirect.to, "managed instance");
    assert_eq!(redirect.writes_before, legs[0].committed);
    assert!(
        redirect
            .connection_string
            .starts_with(&format!("Server=tcp:{},1433;Database=ToyStore;", r.target)),
        "{}",
        redirect.connection_string
    );
    let old = &r.redirect.old_primary_writes[0];
    assert_eq!(
        (old.side.as_str(), old.refused, old.attempted),
        ("SQL Server", 3, 3)
    );
    assert!(old.error.as_deref().is_some_and(|e| e.starts_with("sql:")));

    // The application's configuration file now names the managed instance, and only its
    // owner can read it; the password is nowhere else.
    let file = r.redirect.connection_file.clone().unwrap();
    let config = std::fs::read_to_string(&file).unwrap();
    assert!(config.starts_with(&format!("Server=tcp:{},1433;", r.target)));
    assert!(config.contains("Password='lab-only;P@ss=word'"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let json = serde_json::to_string(&r).unwrap();
    let journal = std::fs::read_to_string(r.journal.as_ref().unwrap()).unwrap();
    for shown in [&json, &text, &journal] {
        assert!(!shown.contains("lab-only"), "the password leaked");
    }
    for shown in [
        "quiet check: not quiet: 1 client session",
        "quiet check: quiet",
        "redirect hook",
        "3 of 3 writes on the SQL Server refused",
        "before the redirect",
    ] {
        assert!(text.contains(shown), "{shown} missing:\n{text}");
    }
}

#[tokio::test]
async fn with_failback_the_workload_comes_back_to_sql_server_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let (r, _) = lab(opts(&dir, &["--seed", "5", "--failback"])).await;
    let sides: Vec<&str> = r.redirect.legs.iter().map(|l| l.side.as_str()).collect();
    assert_eq!(sides, ["SQL Server", "managed instance", "SQL Server"]);
    assert!(r.redirect.legs.iter().all(|l| l.committed > 0));
    let to: Vec<&str> = r.redirect.redirects.iter().map(|x| x.to.as_str()).collect();
    assert_eq!(to, ["managed instance", "SQL Server"]);
    let back = &r.redirect.redirects[1];
    assert_eq!(back.server, "TailspinSql,1433");
    let refused: Vec<(&str, u32)> = r
        .redirect
        .old_primary_writes
        .iter()
        .map(|w| (w.side.as_str(), w.refused))
        .collect();
    assert_eq!(refused, [("SQL Server", 3), ("managed instance", 3)]);
    let config = std::fs::read_to_string(r.redirect.connection_file.unwrap()).unwrap();
    assert!(
        config.starts_with("Server=tcp:TailspinSql,1433;"),
        "{config}"
    );
    assert!(r.parity.iter().all(|p| p.all_match));
}

#[test]
fn an_empty_path_option_is_refused_instead_of_meaning_the_current_directory() {
    let parse = |a: &[&str]| Options::parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    for flag in ["--journal-dir", "--resume"] {
        for empty in ["", "  "] {
            let e = parse(&[flag, empty]).unwrap_err();
            assert!(e.contains(flag) && e.contains("current directory"), "{e}");
        }
    }
    let e = parse(&["--serve", "--dir", ""]).unwrap_err();
    assert!(
        e.contains("--dir") && e.contains("current directory"),
        "{e}"
    );
}

#[tokio::test]
async fn a_journal_dir_that_cannot_be_created_is_named_with_its_flag() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, b"x").unwrap();
    let options =
        Options::parse(&["--journal-dir".to_string(), file.display().to_string()]).unwrap();
    let e = run(&options, Box::new(Capture::default()))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("--journal-dir"), "{e}");
    assert!(e.contains(&file.display().to_string()), "{e}");
    // Nothing was written beside it.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[tokio::test]
async fn resuming_a_journal_that_is_not_there_names_the_flag_and_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.journal");
    let e = run(
        &opts(&dir, &["--resume", &missing.display().to_string()]),
        Box::new(Capture::default()),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("--resume"), "{e}");
    assert!(e.contains(&missing.display().to_string()), "{e}");
}

#[tokio::test]
async fn a_second_resume_of_a_finished_run_says_it_finished() {
    let dir = tempfile::tempdir().unwrap();
    let (crashed, _) = lab(opts(&dir, &["--seed", "5", "--crash-after", "7"])).await;
    assert_eq!(crashed.outcome, "crashed");
    let journal = crashed.journal.clone().unwrap();
    let (resumed, _) = lab(opts(&dir, &["--resume", &journal])).await;
    assert_eq!(resumed.outcome, "completed");
    let records = std::fs::read_to_string(&journal).unwrap().lines().count();
    let e = run(
        &opts(&dir, &["--resume", &journal]),
        Box::new(Capture::default()),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("already finished"), "{e}");
    assert!(e.contains(&resumed.final_state), "{e}");
    assert!(e.contains("--resume") && e.contains(&journal), "{e}");
    // The journal was not touched by the refused second continuation.
    assert_eq!(
        std::fs::read_to_string(&journal).unwrap().lines().count(),
        records
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_arc_runs_the_story_through_arc_and_loses_no_row() {
    let dir = tempfile::tempdir().unwrap();
    let (r, text) = lab(opts(&dir, &["--route", "arc"])).await;
    let verdict = |name: &str| r.databases.iter().find(|d| d.name == name).unwrap().clone();
    assert_eq!(verdict("ToyStore").verdict, "Ready");
    assert_eq!(verdict("Customer360").verdict, "NotReady");
    // The assessment through Arc agrees, shown beside milink's, and goes into the report.
    assert!(
        text.contains("Readiness through Azure Arc, beside milink's"),
        "{text}"
    );
    assert!(
        text.contains("ToyStore: Ready through Arc, Ready over T-SQL"),
        "{text}"
    );
    assert!(
        text.contains("Customer360: NotReady through Arc, NotReady over T-SQL"),
        "{text}"
    );
    assert_eq!(r.route.as_deref(), Some("arc"));
    let section = r.arc_assessment.as_ref().unwrap();
    assert!(!section.disagreements.is_empty());
    // A cutover after the failover redirects nothing new: the hook's line is told once.
    assert_eq!(text.matches("redirect hook (run once").count(), 1, "{text}");
    // SQL Server was changed by Arc's three operations, never by T-SQL.
    for op in [
        "SqlServerAvailabilityGroups_CreateManagedInstanceLink",
        "SqlServerAvailabilityGroups_failoverMiLink",
        "SqlServerAvailabilityGroups_deleteMiLink",
    ] {
        assert!(
            text.contains(&format!("arc  {op} ended: succeeded")),
            "{op}"
        );
    }
    assert!(!text.contains("  sql  "), "T-SQL ran: {text}");
    assert!(text.contains("state -> CreatingLinkThroughArc"));
    // The planned failover is validated, and the check milink could not make is said.
    let failover = r.failover.as_ref().unwrap();
    assert_eq!(failover.kind, "planned");
    assert_eq!(failover.primary, "managed instance");
    assert_eq!(failover.lost_transactions, 0);
    assert!(r.parity.iter().all(|p| p.all_match), "{:?}", r.parity);
    assert!(text.contains("did not compare the two sides' LSNs"));
    assert_eq!(r.final_state, "Completed");
    assert!(text.contains("link on the managed instance: removed; DAG on SQL Server: dropped"));
}

#[tokio::test]
async fn route_arc_plan_shows_arcs_operations_in_place_of_the_links_tsql() {
    let dir = tempfile::tempdir().unwrap();
    let (r, text) = lab(opts(&dir, &["--route", "arc", "--plan"])).await;
    assert_eq!(r.final_state, "FailedOver");
    assert!(
        text.contains("createManagedInstanceLink?api-version=2026-01-01"),
        "{text}"
    );
    assert!(
        text.contains("/failoverMiLink?api-version=2026-01-01"),
        "{text}"
    );
    assert!(text.contains("\"force\":false"), "{text}");
    // SQL Server's side is read through Arc while waiting, too.
    assert!(
        text.contains("-- [Azure Arc] SqlServerAvailabilityGroups_Get"),
        "{text}"
    );
    assert!(
        text.contains("-- [Azure Arc] SqlServerInstances_GetTelemetry"),
        "{text}"
    );
    for tsql in ["CREATE AVAILABILITY GROUP", "CREATE ENDPOINT"] {
        assert!(!text.contains(tsql), "{tsql} in the Arc route's plan");
    }
}
