//! The lab over the wire (`--wire`): SQL Server driven through the real adapter over TDS to the
//! simulator's T-SQL handler, the managed instance through the real ARM adapter over HTTPS to
//! the simulator's REST API (and its T-SQL reads over TDS). For seeds 1 to 10 it reaches the same report as in process, virtual
//! times, LSNs and row counts included (only wall-clock times and file paths differ); an
//! interrupted run continues over the wire too.

use std::io::Write;

use milink_examples::tailspin::{Options, Report, run};

struct Sink;

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The report without what may differ between the transports: wall-clock times,
/// file paths and the transport flag itself.
fn normalized(report: &Report) -> serde_json::Value {
    let mut value = serde_json::to_value(report).unwrap();
    if let Some(o) = value.as_object_mut() {
        o.remove("journal");
        o.remove("wire");
        o.remove("requests");
        if let Some(r) = o.get_mut("redirect").and_then(|r| r.as_object_mut()) {
            r.remove("connection_file");
        }
        if let Some(phases) = o.get_mut("phases").and_then(|p| p.as_array_mut()) {
            for phase in phases {
                if let Some(p) = phase.as_object_mut() {
                    p.remove("wall_ms");
                }
            }
        }
    }
    value
}

fn options(dir: &tempfile::TempDir, seed: u64, wire: bool) -> Options {
    Options {
        seed,
        json: true,
        wire,
        journal_dir: dir.path().to_path_buf(),
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_wire_seeds_1_to_10_report_what_they_report_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut differing = Vec::new();
    for seed in 1..=10u64 {
        let local = run(&options(&dir, seed, false), Box::new(Sink))
            .await
            .unwrap();
        let wire = run(&options(&dir, seed, true), Box::new(Sink))
            .await
            .unwrap();
        assert!(wire.wire && !local.wire);
        assert_eq!(wire.outcome, "completed", "seed {seed}");
        assert_eq!(wire.final_state, local.final_state, "seed {seed}");
        assert!(
            wire.parity.iter().all(|p| p.all_match),
            "seed {seed}: {:?}",
            wire.parity
        );
        if normalized(&wire) != normalized(&local) {
            differing.push(seed);
            let (w, l) = (normalized(&wire), normalized(&local));
            eprintln!(
                "seed {seed}:\n in process {}\n over TDS   {}",
                serde_json::to_string(&l).unwrap(),
                serde_json::to_string(&w).unwrap()
            );
        }
    }
    assert!(
        differing.is_empty(),
        "reports differ for seeds {differing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_over_the_wire_continues_over_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    let reference = run(&options(&dir, 3, true), Box::new(Sink)).await.unwrap();
    for record in [4u64, 9, 15] {
        let crashed = run(
            &Options {
                crash_after: Some(record),
                ..options(&dir, 3, true)
            },
            Box::new(Sink),
        )
        .await
        .unwrap();
        assert_eq!(crashed.outcome, "crashed", "record {record}");
        let journal = crashed.journal.clone().unwrap();
        let resumed = run(
            &Options {
                resume: Some(journal.into()),
                ..options(&dir, 3, true)
            },
            Box::new(Sink),
        )
        .await
        .unwrap();
        assert_eq!(resumed.outcome, "completed", "record {record}");
        assert!(resumed.resumed && resumed.wire);
        assert_eq!(
            resumed.final_state, reference.final_state,
            "record {record}"
        );
        assert_eq!(
            resumed.failover.as_ref().map(|f| f.data_loss),
            Some(false),
            "record {record}"
        );
        assert!(
            resumed.parity.iter().all(|p| p.all_match),
            "record {record}: {:?}",
            resumed.parity
        );
    }
}

/// Failback (`--failback`) and cutover (`--cutover`) over the wire, seeds 1 to 3: the same
/// report as in process, and the requests of every phase counted: the failback reaches the REST
/// API as one `POST failover`, the cutover as one `DELETE link`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failback_and_cutover_over_the_wire_report_what_they_report_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut differing = Vec::new();
    for seed in 1..=3u64 {
        for (path, failback, cutover) in [("failback", true, false), ("cutover", false, true)] {
            let with = |wire| Options {
                failback,
                cutover,
                ..options(&dir, seed, wire)
            };
            let local = run(&with(false), Box::new(Sink)).await.unwrap();
            let wire = run(&with(true), Box::new(Sink)).await.unwrap();
            assert!(local.requests.is_empty(), "seed {seed} {path}");
            assert_eq!(wire.outcome, "completed", "seed {seed} {path}");
            assert_eq!(
                wire.requests.len(),
                wire.phases.len(),
                "seed {seed} {path}: one count per phase"
            );
            // The role change's own ARM request, once, in its phase: failback posts the
            // failover of the link (planned failover to Azure is driven from SQL Server), a
            // cutover deletes the link; the failover to Azure only switches the replication
            // mode (PATCH).
            let count = |phase: &str, key: &str| -> u64 {
                wire.requests
                    .iter()
                    .filter(|p| p.phase == phase)
                    .filter_map(|p| p.arm.get(key))
                    .sum()
            };
            let total =
                |key: &str| -> u64 { wire.requests.iter().filter_map(|p| p.arm.get(key)).sum() };
            let (phase, key) = if failback {
                ("failback", "POST failover")
            } else {
                ("cutover", "DELETE link")
            };
            assert_eq!(
                (count(phase, key), total(key)),
                (1, 1),
                "seed {seed} {path}: {:?}",
                wire.requests
            );
            assert_eq!(total("PUT link"), 1, "seed {seed} {path}");
            assert_eq!(count("link", "PUT link"), 1, "seed {seed} {path}");
            assert!(
                wire.requests.iter().any(|p| p.tds_sql_server > 0),
                "seed {seed} {path}"
            );
            if normalized(&wire) != normalized(&local) {
                differing.push((seed, path));
                eprintln!(
                    "seed {seed} {path}:\n in process {}\n over the wire {}",
                    serde_json::to_string(&normalized(&local)).unwrap(),
                    serde_json::to_string(&normalized(&wire)).unwrap()
                );
            }
        }
    }
    assert!(differing.is_empty(), "reports differ: {differing:?}");
}
