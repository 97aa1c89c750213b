//! A journal written by this version of milink, kept as a fixture: later versions must still
//! replay it to the same machine (journals outlive upgrades). It holds a link's creation, a
//! planned failover through ARM whose first call failed (an `arm:409:…` step error), a retry,
//! and a failback. Record it again only on purpose, with
//! `MILINK_BLESS=1 cargo test -p milink-tests --test journal_fixture`.

use std::path::PathBuf;

use milink_core::journal::{FileJournal, JournalEntry, JournalRecord, replay, resume_point};
use milink_core::lifecycle::{FailoverKind, Input, Side, State};
use milink_core::ports::Journal;
use milink_core::sim::SimConfig;
use milink_core::{LinkSession, SessionOptions};
use milink_tests::{SQL_2022_CU12, create, lab_on, options, ready};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/journal-2026-12.jsonl")
}

async fn record(path: &std::path::Path) {
    let lab = lab_on(SQL_2022_CU12, SimConfig::with_seed(31));
    milink_tests::fail_first_arm_failover(&lab);
    let journal = FileJournal::create(path).unwrap();
    let s = create(
        &lab,
        journal,
        SessionOptions {
            lock_dir: None,
            world: None,
            ..options(31)
        },
    )
    .unwrap();
    s.record_assessment(ready()).await.unwrap();
    s.start().await.unwrap();
    assert!(s.failover(FailoverKind::Planned).await.is_err());
    s.retry().await.unwrap();
    s.failback().await.unwrap();
}

#[tokio::test]
async fn a_journal_written_by_this_version_still_replays() {
    let path = fixture();
    if std::env::var_os("MILINK_BLESS").is_some() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("journal.jsonl");
        record(&fresh).await;
        std::fs::copy(&fresh, &path).unwrap();
    }
    let records = FileJournal::open(&path).unwrap().records().unwrap();
    let machine = replay(&records).unwrap();
    assert!(matches!(machine.state(), State::Replicating { .. }));
    assert_eq!(machine.primary(None), Side::SqlServer);
    // What the fixture is for: it holds step errors in today's string form.
    let codes: Vec<String> = records
        .iter()
        .filter_map(|r| match &r.entry {
            JournalEntry::Input {
                input: Input::Observed { result: Err(e), .. },
            } => Some(e.code.clone()),
            _ => None,
        })
        .collect();
    assert!(
        codes.contains(&"arm:409:DistributedAvailabilityGroupSetRoleFailed".to_owned()),
        "{codes:?}"
    );
    assert!(records.len() > 40, "{}", records.len());
}

#[test]
fn a_journal_of_an_earlier_version_compacts_to_a_checkpoint_that_replays_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("journal.jsonl");
    std::fs::copy(fixture(), &copy).unwrap();
    let mut journal = FileJournal::open(&copy).unwrap();
    let records = journal.records().unwrap();
    let point = resume_point(&records).unwrap();
    // Replayed with the options its version applied: the seeding timeout was fixed then.
    assert!(!point.machine.spec().options.seeding_timeout_sized);
    let checkpoint = JournalRecord::new(
        point.next_seq,
        records.last().unwrap().at,
        JournalEntry::Checkpoint {
            machine: Box::new(point.machine.clone()),
            operation: point.operation,
        },
    );
    journal.checkpoint(&checkpoint).unwrap();
    drop(journal);
    let text = std::fs::read_to_string(&copy).unwrap();
    let original = std::fs::read_to_string(fixture()).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert_eq!(text.lines().next(), original.lines().next());
    assert!(text.len() * 4 < original.len(), "{} bytes", text.len());
    let compacted = FileJournal::open(&copy).unwrap().records().unwrap();
    let again = resume_point(&compacted).unwrap();
    assert_eq!(again.machine, point.machine);
    assert_eq!(again.operation, point.operation);
    assert_eq!(again.next_seq, point.next_seq + 1);
}
