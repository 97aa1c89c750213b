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
    assert!(lsn.stable_seconds >= 30);
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
