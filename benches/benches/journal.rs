//! The file journal: a durable append (one `write` plus `sync_data` per record) on this disk,
//! and what a resume pays to open and replay a 10,000-record journal.
//!
//! The files live under Cargo's target tmp directory (the project's disk, not a tmpfs).
//! Run with `cargo bench -p milink-benches --bench journal`.
use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use milink_benches::scenario::{Scenario, journal_scenario, link_spec};
use milink_core::journal::{FileJournal, JournalEntry, JournalRecord, replay};
use milink_core::lifecycle::{Input, Observation};
use milink_core::ports::Journal;
use milink_core::time::Timestamp;

fn bench_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("milink-journal-bench");
    std::fs::create_dir_all(&dir).expect("bench directory");
    dir
}

fn fresh(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("cannot remove {}: {e}", path.display()),
    }
}

/// The journal records of `scenario`: `Created`, then one record per input.
fn records_of(scenario: &Scenario) -> Vec<JournalRecord> {
    let start = scenario
        .inputs
        .first()
        .map_or(Timestamp::EPOCH, |(_, at)| *at);
    std::iter::once(JournalRecord::new(
        0,
        start,
        JournalEntry::Created {
            spec: Box::new(scenario.spec.clone()),
            world: None,
        },
    ))
    .chain(scenario.inputs.iter().enumerate().map(|(i, (input, at))| {
        JournalRecord::new(
            i as u64 + 1,
            *at,
            JournalEntry::Input {
                input: input.clone(),
            },
        )
    }))
    .collect()
}

fn append_fsync(c: &mut Criterion) {
    let path = bench_dir().join("append.jsonl");
    fresh(&path);
    let spec = link_spec().expect("spec");
    // Steady-state inputs (ticks and probe readings), the bulk of a long-lived link's journal.
    let scenario = journal_scenario(1_000).expect("scenario");
    let inputs: Vec<_> = scenario
        .inputs
        .into_iter()
        .filter(|(input, _)| {
            matches!(
                input,
                Input::Tick
                    | Input::Observed {
                        result: Ok(Observation::Link(_)),
                        ..
                    }
            )
        })
        .collect();
    let mut journal = FileJournal::create(&path).expect("create journal");
    journal
        .append(&JournalRecord::new(
            0,
            Timestamp::EPOCH,
            JournalEntry::Created {
                spec: Box::new(spec),
                world: None,
            },
        ))
        .expect("append Created");
    let mut seq = 1u64;
    let mut g = c.benchmark_group("journal");
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(20);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(1));
    g.bench_function("append_fsync", |b| {
        b.iter(|| {
            let (input, at) = &inputs[(seq as usize) % inputs.len()];
            let record = JournalRecord::new(
                seq,
                *at,
                JournalEntry::Input {
                    input: input.clone(),
                },
            );
            journal.append(black_box(&record)).expect("append");
            seq += 1;
        })
    });
    g.finish();
    let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "journal/append_fsync: {seq} records appended, {} bytes per record on average, on {}",
        len / seq.max(1),
        path.display()
    );
    drop(journal);
    fresh(&path);
}

fn open_replay(c: &mut Criterion) {
    let path = bench_dir().join("replay-10k.jsonl");
    fresh(&path);
    // 10,000 records: Created plus 9,999 inputs, written in the journal's own line format
    // (fsync per record would only slow the setup down).
    let scenario = journal_scenario(9_999).expect("scenario");
    let records = records_of(&scenario);
    let mut file = std::fs::File::create(&path).expect("journal file");
    for record in &records {
        let mut line = serde_json::to_vec(record).expect("encode");
        line.push(b'\n');
        file.write_all(&line).expect("write");
    }
    file.sync_all().expect("sync");
    drop(file);
    let opened = FileJournal::open(&path).expect("open");
    let read = opened.records().expect("records");
    assert_eq!(read.len(), 10_000);
    assert_eq!(
        replay(&read).expect("replay").state(),
        scenario.replay().expect("replay").state()
    );
    drop(opened);
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "journal/*_10k: {} records, {} KB (file in the page cache: warm reads)",
        records.len(),
        bytes / 1024
    );

    let mut g = c.benchmark_group("journal");
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(20);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(6));
    g.throughput(Throughput::Elements(records.len() as u64));
    g.bench_function("open_10k", |b| {
        b.iter(|| FileJournal::open(black_box(&path)).expect("open"))
    });
    // What a resume does before it can act: open, read the records, replay them.
    g.bench_function("open_replay_10k", |b| {
        b.iter(|| {
            let journal = FileJournal::open(black_box(&path)).expect("open");
            let records = journal.records().expect("records");
            replay(&records).expect("replay")
        })
    });
    g.finish();
    fresh(&path);
}

criterion_group!(benches, append_fsync, open_replay);
criterion_main!(benches);
