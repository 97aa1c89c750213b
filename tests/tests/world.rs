//! A journal knows the pair it drives: resumed on another, it is refused and nothing changes.

use milink_core::journal::MemoryJournal;
use milink_core::ports::Journal;
use milink_core::session::SessionOptions;
use milink_core::{LinkSession, SessionError};
use milink_tests::{create, lab, options, ready, resume};

fn in_world(seed: u64, world: Option<&str>) -> SessionOptions {
    SessionOptions {
        world: world.map(str::to_owned),
        ..options(seed)
    }
}

#[tokio::test]
async fn a_journal_resumed_on_another_world_is_refused_and_unchanged() {
    let first = lab(1);
    let journal = MemoryJournal::new();
    let session = create(
        &first,
        journal.clone(),
        in_world(1, Some("lab tailspin seed 1")),
    )
    .unwrap();
    session.record_assessment(ready()).await.unwrap();
    session.start().await.unwrap();
    drop(session);
    let records = journal.records().unwrap();

    // Another lab (same names, another world): refused before anything is read or written.
    let other = lab(7);
    let calls_before = other.sim.with_world(|w| w.faults.calls.clone());
    let refused = resume(
        &other.sim,
        journal.clone(),
        in_world(7, Some("lab tailspin seed 7")),
    );
    let Err(SessionError::WrongWorld {
        journal: recorded,
        given,
    }) = refused
    else {
        panic!("resumed on another world");
    };
    assert_eq!(
        (recorded.as_str(), given.as_str()),
        ("lab tailspin seed 1", "lab tailspin seed 7")
    );
    assert_eq!(
        journal.records().unwrap(),
        records,
        "the journal is unchanged"
    );
    assert_eq!(
        other.sim.with_world(|w| w.faults.calls.clone()),
        calls_before
    );
    let e = SessionError::WrongWorld {
        journal: recorded,
        given,
    };
    assert!(e.is_caller_error() && !e.is_transient());
    assert!(e.to_string().contains("lab tailspin seed 1"), "{e}");

    // Its own world resumes; a caller that names none is not checked (older embeddings).
    let again = resume(
        &first.sim,
        journal.clone(),
        in_world(1, Some("lab tailspin seed 1")),
    )
    .unwrap();
    assert_eq!(again.status().state.name(), "Replicating");
    drop(again);
    assert!(resume(&first.sim, journal, in_world(1, None)).is_ok());
}
