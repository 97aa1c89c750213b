//! One session per link: a second session on the same link is refused whatever its journal,
//! in this process or another, until the first one ends.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use super::world::{FakeInstance, FakeSource, World};
use super::*;
use crate::journal::{FileJournal, MemoryJournal};
use crate::link_lock::lock_file_name;
use crate::test_support::{VirtualTimer, spec};

type FakeSession<J> = Session<FakeSource, FakeInstance, J>;

/// The environment variable that tells [`child_holds_the_link`] where to take the lock.
const CHILD_DIR: &str = "MILINK_TEST_LOCK_CHILD_DIR";
/// The line the child prints once it holds the lock.
const CHILD_READY: &str = "milink-test-child: holding the link";

fn options(lock_dir: Option<&Path>) -> SessionOptions {
    SessionOptions {
        seed: 1,
        lock_dir: lock_dir.map(Path::to_path_buf),
        ..SessionOptions::default()
    }
}

fn world() -> (Arc<World>, Arc<VirtualTimer>) {
    let timer = Arc::new(VirtualTimer::new(Timestamp::from_millis(1_000_000)));
    (World::new(spec().databases, timer.clone()), timer)
}

fn create_with<J: Journal + 'static>(
    spec: LinkSpec,
    journal: J,
    lock_dir: Option<&Path>,
) -> Result<FakeSession<J>, SessionError> {
    let (world, timer) = world();
    Session::create(
        spec,
        Arc::new(FakeSource(world.clone())),
        Arc::new(FakeInstance(world)),
        journal,
        timer,
        options(lock_dir),
    )
}

fn create(path: &Path) -> Result<FakeSession<FileJournal>, SessionError> {
    create_with(spec(), FileJournal::create(path).unwrap(), None)
}

fn resume(path: &Path) -> Result<FakeSession<FileJournal>, SessionError> {
    let (world, timer) = world();
    Session::resume(
        FileJournal::open(path).unwrap(),
        Arc::new(FakeSource(world.clone())),
        Arc::new(FakeInstance(world)),
        timer,
        options(None),
    )
}

fn other_link() -> LinkSpec {
    let mut other = spec();
    other.link = LinkName::new("DAG_Other").unwrap();
    other
}

/// The refusal's parts, or a panic naming what came instead.
fn locked<T>(result: Result<T, SessionError>) -> (SessionError, PathBuf, LockHolder) {
    match result {
        Err(e @ SessionError::LinkLocked { .. }) => {
            let SessionError::LinkLocked {
                lock_file, holder, ..
            } = &e
            else {
                unreachable!()
            };
            let (lock_file, holder) = (lock_file.clone(), holder.clone());
            (e, lock_file, holder)
        }
        Err(e) => panic!("expected LinkLocked, got {e:?}"),
        Ok(_) => panic!("expected LinkLocked, the session was created"),
    }
}

#[test]
fn a_second_journal_for_the_same_link_is_refused_until_the_first_session_ends() {
    let dir = tempfile::tempdir().unwrap();
    let first_path = dir.path().join("first.journal");
    let first = create(&first_path).unwrap();
    let lock_file = dir
        .path()
        .join(lock_file_name(&spec().target.instance, &spec().link));
    assert_eq!(first.lock_file(), Some(lock_file.as_path()));

    let second_path = dir.path().join("second.journal");
    let (error, refused_file, holder) = locked(create(&second_path));
    assert_eq!(refused_file, lock_file);
    assert_eq!(holder.pid, Some(std::process::id()));
    assert_eq!(holder.journal.as_deref(), Some(first_path.as_path()));
    let message = error.to_string();
    for part in [
        &format!("link {}", spec().link),
        &lock_file.display().to_string(),
        &first_path.display().to_string(),
        &format!(
            "(this process, pid {}, journal {})",
            std::process::id(),
            first_path.display()
        ),
        "resume",
    ] {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
    assert!(error.is_caller_error() && !error.is_transient() && !error.is_remote());
    let umbrella = crate::Error::from(error);
    assert!(umbrella.is_caller_error() && !umbrella.is_transient());
    // Nothing was written to the refused journal.
    assert_eq!(
        FileJournal::open(&second_path)
            .unwrap()
            .records()
            .unwrap()
            .len(),
        0
    );

    drop(first);
    let second = create_with(spec(), FileJournal::open(&second_path).unwrap(), None).unwrap();
    assert_eq!(second.status().journal_records, 1);
}

#[test]
fn another_link_in_the_same_directory_is_not_blocked() {
    let dir = tempfile::tempdir().unwrap();
    let _first = create(&dir.path().join("toystore.journal")).unwrap();
    let other = create_with(
        other_link(),
        FileJournal::create(dir.path().join("other.journal")).unwrap(),
        None,
    )
    .unwrap();
    assert_ne!(other.lock_file(), _first.lock_file());
}

#[test]
fn lock_dir_holds_the_lock_of_journals_anywhere_and_of_journals_in_memory() {
    let locks = tempfile::tempdir().unwrap();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let first = create_with(
        spec(),
        FileJournal::create(a.path().join("toystore.journal")).unwrap(),
        Some(locks.path()),
    )
    .unwrap();
    let name = lock_file_name(&spec().target.instance, &spec().link);
    assert_eq!(first.lock_file(), Some(locks.path().join(&name).as_path()));
    assert!(
        !a.path().join(&name).exists(),
        "the lock is in lock_dir only"
    );

    let (_, lock_file, _) = locked(create_with(
        spec(),
        FileJournal::create(b.path().join("toystore.journal")).unwrap(),
        Some(locks.path()),
    ));
    assert_eq!(lock_file, locks.path().join(&name));
    // A journal in memory takes the lock when given a lock_dir, and names no journal file.
    let (error, _, holder) = locked(create_with(
        spec(),
        MemoryJournal::new(),
        Some(locks.path()),
    ));
    assert_eq!(
        holder.journal.as_deref(),
        Some(a.path().join("toystore.journal").as_path())
    );
    assert!(error.to_string().contains("lock file"), "{error}");
    drop(first);
    let memory = create_with(spec(), MemoryJournal::new(), Some(locks.path())).unwrap();
    let (error, _, holder) = locked(create_with(
        spec(),
        MemoryJournal::new(),
        Some(locks.path()),
    ));
    assert_eq!(holder.journal, None);
    assert!(error.to_string().contains("journal in memory"), "{error}");
    drop(memory);

    // Without a lock_dir, journals in memory take no lock: tests and the lab run side by side.
    let one = create_with(spec(), MemoryJournal::new(), None).unwrap();
    let two = create_with(spec(), MemoryJournal::new(), None).unwrap();
    assert_eq!((one.lock_file(), two.lock_file()), (None, None));
}

#[test]
fn a_missing_lock_dir_is_reported_with_the_lock_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let error = create_with(spec(), MemoryJournal::new(), Some(&missing))
        .err()
        .unwrap();
    assert!(matches!(error, SessionError::LockFile { .. }), "{error:?}");
    assert!(error.to_string().contains("no-such-dir"), "{error}");
    assert!(error.is_transient() && !error.is_caller_error());
}

#[tokio::test]
async fn resuming_a_journal_while_another_session_drives_the_link_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first_path = dir.path().join("first.journal");
    {
        let first = create(&first_path).unwrap();
        first
            .record_assessment(AssessmentOutcome {
                blockers: Vec::new(),
            })
            .await
            .unwrap();
    }
    let records = FileJournal::open(&first_path).unwrap().records().unwrap();
    let second_path = dir.path().join("second.journal");
    let second = create(&second_path).unwrap();

    let (_, _, holder) = locked(resume(&first_path));
    assert_eq!(holder.journal.as_deref(), Some(second_path.as_path()));
    assert_eq!(
        FileJournal::open(&first_path).unwrap().records().unwrap(),
        records,
        "the refused resume wrote nothing"
    );
    drop(second);
    let first = resume(&first_path).unwrap();
    assert_eq!(first.status().state, "Assessed");
}

/// Run by [`a_session_in_another_process_holds_the_link_until_it_exits`] in a child process:
/// with [`CHILD_DIR`] set, opens a session on the link in that directory, says so on stdout,
/// and holds it until its stdin closes. Without it (a plain `--ignored` run) it does nothing.
#[test]
#[ignore = "run by a_session_in_another_process_holds_the_link_until_it_exits in a child process"]
fn child_holds_the_link() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let _session = create(&dir.join("child.journal")).unwrap();
    println!("{CHILD_READY}");
    // Holds the link until the parent closes our stdin (or dies).
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
}

#[test]
fn a_session_in_another_process_holds_the_link_until_it_exits() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Process::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "session::lock_tests::child_holds_the_link",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let child_stdin = child.stdin.take().unwrap();

    // Wait (bounded) for the child's word that it holds the link.
    let stdout = child.stdout.take().unwrap();
    let (ready_tx, ready_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // libtest may print the test's name on the same line first.
            if line.contains(CHILD_READY) {
                let _ = ready_tx.send(());
            }
        }
    });
    if ready_rx.recv_timeout(Duration::from_secs(60)).is_err() {
        let _ = child.kill();
        panic!("the child never said it holds the link: {:?}", child.wait());
    }

    let parent_path = dir.path().join("parent.journal");
    let (error, lock_file, holder) = locked(create(&parent_path));
    assert_eq!(holder.pid, Some(child.id()));
    assert_eq!(
        holder.journal.as_deref(),
        Some(dir.path().join("child.journal").as_path())
    );
    assert_eq!(
        lock_file,
        dir.path()
            .join(lock_file_name(&spec().target.instance, &spec().link))
    );
    assert!(
        error
            .to_string()
            .contains(&format!("process {}", child.id())),
        "{error}"
    );

    // Closing its stdin ends the child; its lock ends with it.
    drop(child_stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "the child failed: {status}");
    reader.join().unwrap();
    let parent = create_with(spec(), FileJournal::open(&parent_path).unwrap(), None).unwrap();
    assert!(parent.lock_file().is_some());
}
