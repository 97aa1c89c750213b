//! The lab's `--json` report for seeds 1 to 20 (failover, and failback and cutover for five of
//! them) is what it was when the fixtures were recorded, apart from wall-clock times and the
//! paths of the files it writes. A change that means to alter the report refreshes them with
//! `MILINK_BLESS=1 cargo test -p milink-examples --test report_fixtures`; any other change must
//! leave them as they are (refactors of the machine and the driver promise the same runs).

use std::io::Write;
use std::path::PathBuf;

use milink_examples::tailspin::{Options, run};

struct Sink;

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The report without what differs between identical runs (wall-clock times, file paths).
fn normalized(mut report: serde_json::Value) -> serde_json::Value {
    if let Some(o) = report.as_object_mut() {
        o.remove("journal");
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
    report
}

#[tokio::test]
async fn the_lab_reports_of_seeds_1_to_20_are_unchanged() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let bless = std::env::var_os("MILINK_BLESS").is_some();
    let dir = tempfile::tempdir().unwrap();
    let mut runs: Vec<(String, Options)> = Vec::new();
    for seed in 1..=20u64 {
        let base = Options {
            seed,
            json: true,
            journal_dir: dir.path().to_path_buf(),
            ..Options::default()
        };
        runs.push((format!("seed{seed}-failover"), base.clone()));
        if seed <= 5 {
            runs.push((
                format!("seed{seed}-failback"),
                Options {
                    failback: true,
                    ..base.clone()
                },
            ));
            runs.push((
                format!("seed{seed}-cutover"),
                Options {
                    cutover: true,
                    ..base.clone()
                },
            ));
        }
    }
    let mut changed = Vec::new();
    for (name, options) in runs {
        let report = run(&options, Box::new(Sink)).await.unwrap();
        let actual = normalized(serde_json::to_value(&report).unwrap());
        let path = fixtures.join(format!("lab-{name}.json"));
        if bless {
            std::fs::create_dir_all(&fixtures).unwrap();
            let text = serde_json::to_string_pretty(&actual).unwrap();
            std::fs::write(&path, text + "\n").unwrap();
            continue;
        }
        let expected: serde_json::Value = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).unwrap(),
            Err(e) => panic!("{}: {e}; record it with MILINK_BLESS=1", path.display()),
        };
        if expected != actual {
            changed.push(name);
        }
    }
    assert!(
        changed.is_empty(),
        "reports differ from tests/fixtures for {changed:?} (MILINK_BLESS=1 refreshes them when \
         the change is meant)"
    );
}
