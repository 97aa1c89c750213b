//! Seeding timeouts sized from the measured rate, and journals that stay small while a large
//! database seeds: a 16 TB database (the managed instance's largest) seeds on the simulator at
//! its rate past the six-day floor, and a 4 TB seeding leaves a journal file of a few
//! hundred kilobytes.

use std::time::Duration;

use milink_core::journal::FileJournal;
use milink_core::lifecycle::{Phase, State};
use milink_core::names::DatabaseName;
use milink_core::ports::Journal;
use milink_core::sim::{Lab, SimConfig};
use milink_core::{LinkSession, MemoryJournal, SessionError, SessionOptions};
use milink_tests::{create, ready};

const TB_MB: u64 = 1024 * 1024;

/// The Tailspin lab with ToyStore at `size_mb`, probing every `probe` while it seeds.
fn lab_of(size_mb: u64, probe: Duration, sized: bool) -> Lab {
    let config = SimConfig::with_seed(5);
    let mut topology = Lab::tailspin_topology(config.start).unwrap();
    for d in &mut topology.source.databases {
        if d.name.as_str() == Lab::TOYSTORE {
            d.size_mb = size_mb;
        }
    }
    let database = DatabaseName::new(Lab::TOYSTORE).unwrap();
    let mut lab = Lab::from_topology(topology, config, &database).unwrap();
    lab.spec.options.probe_interval = probe;
    lab.spec.options.seeding_timeout_sized = sized;
    lab
}

fn options() -> SessionOptions {
    SessionOptions {
        seed: 5,
        operation_timeout: Duration::from_secs(60 * 24 * 3600),
        ..SessionOptions::default()
    }
}

#[tokio::test]
async fn a_16_tb_database_seeds_past_the_six_day_floor_and_a_fixed_timeout_refuses_it() {
    // A probe a minute keeps the run short; the rate and the sizes are the simulator's.
    let lab = lab_of(16 * TB_MB, Duration::from_secs(60), true);
    let session = create(&lab, MemoryJournal::new(), options()).unwrap();
    session.record_assessment(ready()).await.unwrap();
    let started = lab.sim.now();
    session.start().await.unwrap();
    let took = lab.sim.now().since(started);
    assert!(
        matches!(session.machine().state(), State::Replicating { .. }),
        "{}",
        session.machine().state()
    );
    // 16 TiB at the simulator's 12 MiB/s: about 16 days, well past the six-day default.
    assert!(took > Duration::from_secs(15 * 24 * 3600), "{took:?}");

    // The same seeding with the timeout fixed at six days (the override) fails at six days.
    let lab = lab_of(16 * TB_MB, Duration::from_secs(60), false);
    let session = create(&lab, MemoryJournal::new(), options()).unwrap();
    session.record_assessment(ready()).await.unwrap();
    match session.start().await.unwrap_err() {
        SessionError::StepFailed(e) => {
            assert_eq!(e.code, "timeout", "{e:?}");
            assert!(
                e.message.contains("Seeding did not finish within 144h"),
                "{e:?}"
            );
        }
        other => panic!("expected the seeding timeout, got {other}"),
    }
    assert!(matches!(
        session.machine().state(),
        State::Failed { phase, .. } if phase.phase() == Phase::Seeding
    ));
}

#[tokio::test]
async fn a_4_tb_seeding_leaves_a_small_journal_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("toystore.journal");
    // A probe a minute: about 4 days of seeding, 11,000 records written, each made durable
    // (the default probe every 5 s writes 130,000; BENCHMARKS.md has those numbers).
    let lab = lab_of(4 * TB_MB, Duration::from_secs(60), true);
    let session = create(&lab, FileJournal::create(&path).unwrap(), options()).unwrap();
    session.record_assessment(ready()).await.unwrap();
    session.start().await.unwrap();
    let written = session.status().journal_records;
    let bytes = std::fs::metadata(&path).unwrap().len();
    let kept = session.with_journal(|j| j.records().unwrap().len());
    println!("4 TB seeding: {written} records written, {kept} kept, {bytes} bytes");
    assert!(written > 10_000, "{written}");
    assert!(kept <= 2 + 256, "{kept}");
    assert!(bytes < 1024 * 1024, "{bytes}");
}
