//! A running ARM operation is polled `first_poll` after it was accepted, then as each reply's
//! `Retry-After` says (clamped to `first_poll ..= probe_interval`), and the journal replays that
//! schedule exactly.

use std::time::Duration;

use milink_core::journal::{JournalEntry, JournalRecord, MemoryJournal, replay};
use milink_core::lifecycle::{Input, Observation};
use milink_core::ports::Journal;
use milink_core::sim::SimConfig;
use milink_core::time::Timestamp;
use milink_core::{LinkSession, SessionOptions};
use milink_tests::{SQL_2022_CU12, create, lab_on, options, ready};

/// The journal's ticks after each operation reply, as (reply time, tick time, hint).
fn poll_schedule(records: &[JournalRecord]) -> Vec<(Timestamp, Timestamp, Option<Duration>)> {
    let mut out = Vec::new();
    let mut pending: Option<(Timestamp, Option<Duration>)> = None;
    for r in records {
        let JournalEntry::Input { input } = &r.entry else {
            continue;
        };
        match input {
            Input::Observed {
                result: Ok(Observation::OperationAccepted(_)),
                ..
            } => pending = Some((r.at, None)),
            Input::Observed {
                result: Ok(Observation::OperationRunningRetryAfter(d)),
                ..
            } => pending = Some((r.at, Some(*d))),
            Input::Observed {
                result: Ok(Observation::OperationRunning),
                ..
            } => pending = Some((r.at, Some(Duration::MAX))),
            Input::Tick => {
                if let Some((at, hint)) = pending.take() {
                    out.push((at, r.at, hint));
                }
            }
            Input::Observed { .. } | Input::Command(_) | Input::Resume => pending = None,
        }
    }
    out
}

async fn run(retry_after: Duration) -> Vec<(Timestamp, Timestamp, Option<Duration>)> {
    let mut config = SimConfig::with_seed(4);
    config.arm.retry_after = retry_after;
    let lab = lab_on(SQL_2022_CU12, config);
    let s = create(
        &lab,
        MemoryJournal::new(),
        SessionOptions {
            lock_dir: None,
            ..options(4)
        },
    )
    .unwrap()
    // The whole schedule stays in the journal (no checkpoint folds it away).
    .with_checkpoint_every(u64::MAX);
    s.record_assessment(ready()).await.unwrap();
    s.start().await.unwrap();
    let records = s.with_journal(|j| j.records().unwrap());
    // Replay rebuilds the same machine, deadline included.
    let replayed = replay(&records).unwrap();
    assert_eq!(replayed, s.machine());
    assert_eq!(replayed.deadline(), s.machine().deadline());
    poll_schedule(&records)
}

#[tokio::test]
async fn an_operation_is_polled_after_one_second_then_as_retry_after_says() {
    let schedule = run(Duration::from_secs(2)).await;
    let first: Vec<_> = schedule.iter().filter(|(_, _, h)| h.is_none()).collect();
    let hinted: Vec<_> = schedule.iter().filter(|(_, _, h)| h.is_some()).collect();
    assert!(!first.is_empty() && hinted.len() >= 3, "{schedule:?}");
    // Accepted at t: the first poll at t + 1 s.
    for (at, tick, _) in &first {
        assert_eq!(tick.since(*at), Duration::from_secs(1), "{schedule:?}");
    }
    // Running, Retry-After 2 s: the next poll 2 s after that reply (+1 s, +3 s, ...).
    for (at, tick, hint) in &hinted {
        assert_eq!(*hint, Some(Duration::from_secs(2)));
        assert_eq!(tick.since(*at), Duration::from_secs(2), "{schedule:?}");
    }
}

#[tokio::test]
async fn a_huge_or_zero_retry_after_is_clamped() {
    for (sent, polled) in [
        (Duration::from_secs(3600), Duration::from_secs(5)),
        (Duration::ZERO, Duration::from_secs(1)),
    ] {
        let schedule = run(sent).await;
        let hinted: Vec<_> = schedule.iter().filter(|(_, _, h)| h.is_some()).collect();
        assert!(!hinted.is_empty(), "{schedule:?}");
        for (at, tick, _) in hinted {
            assert_eq!(
                tick.since(*at),
                polled,
                "Retry-After {sent:?}: {schedule:?}"
            );
        }
    }
}
