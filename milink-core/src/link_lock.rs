//! One session per link: an exclusive lock named after the link's identity.
//!
//! A journal file locks itself ([`crate::journal::FileJournal`]), but a second journal file
//! for the same link would still let a second session drive that link in parallel (cancel and
//! delete a link another session has just failed over, for example). [`LinkLock`] covers the
//! link itself: a file whose name is the link's identity (the managed instance's ARM id and the
//! link's name, see [`lock_file_name`]) in a directory every session of the link uses, held
//! with an exclusive OS file lock for as long as the session lives.
//!
//! The lock is the operating system's (`flock` on Unix, `LockFileEx` on Windows), so it is
//! released when the holder's process ends, however it ends; a lock file left behind by a
//! crash never blocks anyone. The file stays in place between sessions: removing it would let
//! two sessions lock two different files of the same name.
//!
//! The holder writes its process id and journal path into the file (never a secret), so a
//! refused session can say who holds the link. On platforms whose locks are mandatory
//! (Windows) the refused session cannot read them and reports the holder as unknown.

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::names::{InstanceId, LinkName};

/// The longest lock file name written; a longer identity is shortened and given a hash of the
/// whole identity, so the name stays unique and fits every file system (255 bytes).
const MAX_FILE_NAME: usize = 200;

/// The lock file's name for the link `link` of the managed instance `instance`:
/// `<subscription>_<resource group>_<instance>__<link>.lock`.
///
/// Every part is lowercased (ARM resource ids and names are case-insensitive, so
/// `RG-Tailspin` and `rg-tailspin` name the same link). Letters, digits, `-` and `.` are kept;
/// every other byte (`_` included, so the separators stay unambiguous) is written as `%xx`,
/// which keeps distinct identities apart and makes any name safe on any file system. A name
/// longer than 200 bytes is cut and ends with `~` and a hash of the whole identity.
pub fn lock_file_name(instance: &InstanceId, link: &LinkName) -> String {
    let stem = format!(
        "{}_{}_{}__{}",
        escape(instance.subscription_id()),
        escape(instance.resource_group()),
        escape(instance.name()),
        escape(link.as_str()),
    );
    const SUFFIX: &str = ".lock";
    if stem.len() + SUFFIX.len() <= MAX_FILE_NAME {
        return format!("{stem}{SUFFIX}");
    }
    let hash = format!("~{:016x}", fnv1a(stem.as_bytes()));
    let keep = MAX_FILE_NAME - SUFFIX.len() - hash.len();
    // The stem is ASCII, so any byte index is a character boundary.
    format!("{}{hash}{SUFFIX}", &stem[..keep])
}

fn escape(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for byte in part.to_lowercase().bytes() {
        if byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'.' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02x}"));
        }
    }
    out
}

/// FNV-1a, 64 bits: a hash that is the same in every build and process (std's is not).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Who holds a link's lock, as the holder wrote it into the lock file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LockHolder {
    /// The holder's process id; `None` when the file names no holder (it is being written, or
    /// the platform's mandatory lock keeps it from being read).
    pub pid: Option<u32>,
    /// The holder's journal file; `None` for a session whose journal is not a file.
    pub journal: Option<PathBuf>,
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(pid) = self.pid else {
            return f.write_str("holder unknown: the lock file cannot be read or names no one");
        };
        if pid == std::process::id() {
            write!(f, "this process, pid {pid}")?;
        } else {
            write!(f, "process {pid}")?;
        }
        match &self.journal {
            Some(journal) => write!(f, ", journal {}", journal.display()),
            None => f.write_str(", journal in memory"),
        }
    }
}

/// What [`LinkLock::acquire`] met.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkLockError {
    /// Another session holds the link's lock.
    #[error("another session ({holder}) holds the lock file {}", .lock_file.display())]
    Held {
        /// The lock file.
        lock_file: PathBuf,
        /// Who holds it, as far as the file says.
        holder: LockHolder,
    },
    /// The lock file could not be opened, locked or written.
    #[error("cannot use the lock file {}: {source}", .lock_file.display())]
    Io {
        /// The lock file.
        lock_file: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// The holder's details, as written into the lock file (JSON, one line).
#[derive(Serialize, Deserialize)]
struct HolderRecord {
    pid: u32,
    journal: Option<String>,
    instance: String,
    link: String,
}

/// An exclusive lock on one link, held until it is dropped (or its process ends).
#[derive(Debug)]
pub struct LinkLock {
    file: File,
    path: PathBuf,
}

impl LinkLock {
    /// Takes the lock of link `link` of `instance` in `dir` (which must exist), recording this
    /// process and `journal` in it. Another holder, in this process or another, gives
    /// [`LinkLockError::Held`] at once: it never waits.
    pub fn acquire(
        dir: &Path,
        instance: &InstanceId,
        link: &LinkName,
        journal: Option<&Path>,
    ) -> Result<LinkLock, LinkLockError> {
        let path = dir.join(lock_file_name(instance, link));
        let io = |source| LinkLockError::Io {
            lock_file: path.clone(),
            source,
        };
        // Never truncated on open: the holder's details belong to the holder.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LinkLockError::Held {
                    holder: read_holder(&file),
                    lock_file: path,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let record = HolderRecord {
            pid: std::process::id(),
            journal: journal.map(|j| j.display().to_string()),
            instance: instance.to_string(),
            link: link.to_string(),
        };
        let mut line = serde_json::to_vec(&record).map_err(|e| io(io::Error::other(e)))?;
        line.push(b'\n');
        let mut handle = &file;
        handle
            .set_len(0)
            .and_then(|()| handle.seek(SeekFrom::Start(0)))
            .and_then(|_| handle.write_all(&line))
            .map_err(io)?;
        Ok(LinkLock { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LinkLock {
    fn drop(&mut self) {
        // The details of a holder that is gone would mislead; the lock itself goes with the
        // file handle.
        let _ = self.file.set_len(0);
    }
}

fn read_holder(file: &File) -> LockHolder {
    let mut text = String::new();
    let mut handle = file;
    let read = handle
        .seek(SeekFrom::Start(0))
        .and_then(|_| handle.take(64 * 1024).read_to_string(&mut text));
    if read.is_err() {
        return LockHolder::default();
    }
    match serde_json::from_str::<HolderRecord>(text.trim()) {
        Ok(record) => LockHolder {
            pid: Some(record.pid),
            journal: record.journal.map(PathBuf::from),
        },
        Err(_) => LockHolder::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(sub: &str, rg: &str, name: &str) -> InstanceId {
        InstanceId::from_parts(sub, rg, name).unwrap()
    }

    fn link(name: &str) -> LinkName {
        LinkName::new(name).unwrap()
    }

    #[test]
    fn the_name_is_the_links_identity_lowercased_and_escaped() {
        let id = instance(
            "5F1C6A2E-8D3B-4C7A-9E10-3B2D4F6A8C01",
            "RG-Tailspin",
            "tailspin-mi",
        );
        assert_eq!(
            lock_file_name(&id, &link("DAG_ToyStore")),
            "5f1c6a2e-8d3b-4c7a-9e10-3b2d4f6a8c01_rg-tailspin_tailspin-mi__dag%5ftoystore.lock"
        );
        // The same link spelled in another case is the same link.
        let lower = instance(
            "5f1c6a2e-8d3b-4c7a-9e10-3b2d4f6a8c01",
            "rg-tailspin",
            "TAILSPIN-MI",
        );
        assert_eq!(
            lock_file_name(&id, &link("DAG_ToyStore")),
            lock_file_name(&lower, &link("dag_toystore"))
        );
    }

    #[test]
    fn distinct_identities_get_distinct_safe_names() {
        let names = [
            lock_file_name(&instance("s", "a_b", "c"), &link("l")),
            lock_file_name(&instance("s", "a", "b_c"), &link("l")),
            lock_file_name(&instance("s", "a", "b"), &link("c__l")),
            lock_file_name(&instance("s", "a", "b"), &link("l")),
            lock_file_name(&instance("s", "a", "b"), &link("l/..\\x:y é")),
            lock_file_name(&instance("s", "rg(1)", "b"), &link("l")),
        ];
        for (i, a) in names.iter().enumerate() {
            assert!(
                a.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._%".contains(&b)),
                "{a}"
            );
            assert!(a.ends_with(".lock"));
            for b in &names[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn a_long_identity_is_cut_and_keeps_a_hash_of_the_whole() {
        let rg = "r".repeat(90);
        let a = lock_file_name(&instance("s", &rg, "mi"), &link(&"a".repeat(128)));
        let b = lock_file_name(&instance("s", &rg, "mi"), &link(&"a".repeat(127)));
        assert_eq!(a.len(), MAX_FILE_NAME);
        assert_eq!(b.len(), MAX_FILE_NAME);
        assert_ne!(a, b);
        assert!(a.ends_with(".lock") && a.contains('~'));
    }

    #[test]
    fn a_second_holder_is_refused_and_told_who_holds_the_link() {
        let dir = tempfile::tempdir().unwrap();
        let id = instance("s", "rg", "mi");
        let journal = dir.path().join("a.journal");
        let held = LinkLock::acquire(dir.path(), &id, &link("l"), Some(&journal)).unwrap();
        assert_eq!(
            held.path(),
            dir.path().join(lock_file_name(&id, &link("l")))
        );
        match LinkLock::acquire(dir.path(), &id, &link("L"), None) {
            Err(LinkLockError::Held { lock_file, holder }) => {
                assert_eq!(lock_file, held.path());
                assert_eq!(holder.pid, Some(std::process::id()));
                assert_eq!(holder.journal.as_deref(), Some(journal.as_path()));
                assert_eq!(
                    holder.to_string(),
                    format!(
                        "this process, pid {}, journal {}",
                        std::process::id(),
                        journal.display()
                    )
                );
            }
            other => panic!("expected Held, got {other:?}"),
        }
        // Another link is free.
        let other = LinkLock::acquire(dir.path(), &id, &link("other"), None).unwrap();
        drop(other);
        drop(held);
        let again = LinkLock::acquire(dir.path(), &id, &link("l"), None).unwrap();
        let text = std::fs::read_to_string(again.path()).unwrap();
        assert!(
            text.contains(&format!("\"pid\":{}", std::process::id())),
            "{text}"
        );
        assert!(text.contains("\"journal\":null"), "{text}");
    }

    #[test]
    fn a_missing_directory_is_an_io_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-dir");
        let err =
            LinkLock::acquire(&missing, &instance("s", "rg", "mi"), &link("l"), None).unwrap_err();
        assert!(matches!(err, LinkLockError::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("no-such-dir"), "{err}");
    }

    #[test]
    fn an_unreadable_holder_is_reported_as_unknown() {
        let holder = LockHolder::default();
        assert!(holder.to_string().starts_with("holder unknown"), "{holder}");
        let other = LockHolder {
            pid: Some(std::process::id().wrapping_add(1)),
            journal: Some(PathBuf::from("/var/lib/milink/toystore.journal")),
        };
        assert_eq!(
            other.to_string(),
            format!(
                "process {}, journal /var/lib/milink/toystore.journal",
                std::process::id().wrapping_add(1)
            )
        );
    }
}
