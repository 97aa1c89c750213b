//! The file journal: a durable append (one `write` plus `sync_data` per record) on this disk,
//! what a resume pays to open and replay a 10,000-record journal, and a link that replicated
//! for 7 virtual days on the simulator: its journal's size and its resume time, with
//! checkpoints (the default) and without (as before them).
//!
//! The files live under Cargo's target tmp directory (the project's disk, not a tmpfs).
//! Run with `cargo bench -p milink-benches --bench journal`.
use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use milink_benches::scenario::{Scenario, journal_scenario, link_spec};
use milink_core::journal::{
    FileJournal, JournalEntry, JournalRecord, encoded_line, replay, resume_point,
};
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
        file.write_all(&encoded_line(record).expect("encode"))
            .expect("write");
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

/// Where the 7-day journals go: tmpfs when there is one (the week's 240,000 fsyncs would take
/// minutes on a disk and are not what is measured), else the target's tmp directory.
fn week_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        shm.join(format!("milink-journal-bench-{}", std::process::id()))
    } else {
        bench_dir().join("week")
    };
    std::fs::create_dir_all(&dir).expect("week directory");
    dir
}

/// Creates the Tailspin link on the simulator (seeding ToyStore), then watches it replicate
/// for 7 virtual days (a reading of both sides every probe interval, 5 s, each through the
/// machine and journaled), with a checkpoint every `every` records. Returns the records
/// written.
fn replicate_a_week(path: &Path, every: u64) -> u64 {
    use milink_core::lifecycle::AssessmentOutcome;
    use milink_core::sim::Lab;
    use milink_core::{LinkSession, Session, SessionOptions};
    use std::sync::Arc;

    fresh(path);
    let lab = Lab::tailspin(7).expect("lab");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let session = Session::create(
            lab.spec.clone(),
            Arc::new(lab.sim.sql_server()),
            Arc::new(lab.sim.managed_instance()),
            FileJournal::create(path).expect("journal"),
            Arc::new(lab.sim.clock()),
            SessionOptions {
                seed: 7,
                lock_dir: path.parent().map(Path::to_path_buf),
                ..SessionOptions::default()
            },
        )
        .expect("session")
        .with_checkpoint_every(every);
        session
            .record_assessment(AssessmentOutcome {
                blockers: Vec::new(),
            })
            .await
            .expect("assessment");
        session.start().await.expect("start");
        session
            .watch(Duration::from_secs(7 * 24 * 3600))
            .await
            .expect("watch");
        session.status().journal_records
    })
}

/// What `Session::resume` does before it can act: open (lock, read, parse, validate), read the
/// records, rebuild the machine from the last checkpoint.
fn resume(path: &Path) -> milink_core::journal::ResumePoint {
    let journal = FileJournal::open(path).expect("open");
    let records = journal.records().expect("records");
    resume_point(&records).expect("resume point")
}

fn week(c: &mut Criterion) {
    let dir = week_dir();
    let mut g = c.benchmark_group("journal");
    g.sampling_mode(SamplingMode::Flat);
    g.warm_up_time(Duration::from_secs(1));
    for (name, every) in [
        ("week_checkpointed", milink_core::CHECKPOINT_EVERY),
        ("week_unbounded", u64::MAX),
    ] {
        let path = dir.join(format!("{name}.jsonl"));
        let started = std::time::Instant::now();
        let written = replicate_a_week(&path, every);
        let took = started.elapsed();
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let kept = resume(&path).since_checkpoint;
        println!(
            "journal/{name}: 7 virtual days replicating: {written} records written in {:.1} s, \
             {bytes} bytes on disk, {kept} records replayed on resume",
            took.as_secs_f64()
        );
        g.sample_size(if every == u64::MAX { 10 } else { 50 });
        g.measurement_time(Duration::from_secs(if every == u64::MAX { 30 } else { 5 }));
        g.bench_function(format!("resume_{name}"), |b| {
            b.iter(|| resume(black_box(&path)))
        });
        fresh(&path);
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, append_fsync, open_replay, week);
criterion_main!(benches);
