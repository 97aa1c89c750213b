//! The journal: every accepted input of one link, appended before its effects run.
//!
//! The on-disk form ([`FileJournal`]) is JSON lines, one [`JournalRecord`] per line, each line
//! written with a single `write` and made durable with `sync_data` before `append` returns. The
//! first record (`seq` 0) is always [`JournalEntry::Created`] with the link's spec; every later
//! record is one [`JournalEntry::Input`] or [`JournalEntry::Checkpoint`]. Replaying the inputs
//! through a fresh machine gives the state the link was in (see `session`); with checkpoints,
//! replay starts from the machine the last one holds ([`resume_point`]).
//!
//! A checkpoint (schema version 3) holds the machine's whole state. [`FileJournal`] compacts at
//! each one ([`Journal::checkpoint`]): the `Created` line, kept verbatim, and the checkpoint are
//! written to a hidden file next to the journal, made durable and renamed over it, so a crash
//! leaves either the old file or the new one, each a whole journal of the same link; the file
//! stays bounded whatever the link's age. A damaged checkpoint is
//! [`JournalError::CorruptCheckpoint`], never a torn tail to drop.
//!
//! A crash can leave the last line incomplete. [`FileJournal::open`] reports that as
//! [`JournalError::TornTail`] instead of silently dropping data; [`FileJournal::open_repairing`]
//! truncates the torn line (the input it held was never acted on, because effects only run after
//! `append` returns) and says what it removed.
//!
//! A file whose first line is no journal record, and cannot be one torn by a crash (every record
//! starts with [`RECORD_START`]), is not a journal at all: [`JournalError::NotAJournal`], which
//! neither `open` nor `open_repairing` ever offers to repair, so a file given by mistake is never
//! truncated.
//!
//! Every record carries a checksum of its own text (`"sum"`, the last field: the first 16 hex
//! digits of the SHA-256 of the line as it was before the field was appended), so a record
//! changed after it was written (a digit of an LSN, the spec's host name) is refused as
//! [`JournalError::Corrupt`] on open instead of replayed. The checksum guards against
//! accidental damage and hand edits; it is no signature (whoever can write the file can
//! recompute it), which is why the session also checks the spec against the live pair before
//! any redirect. Journals written before checksums (schema version 1) are still read; a record
//! of an older version after a newer one is corruption.
//!
//! Journal files are created owner-only (mode 0600 on Unix). Only regular files are opened (a
//! FIFO would block the reader for ever, a device such as `/dev/zero` would be read until memory
//! runs out), and at most [`MAX_JOURNAL_BYTES`] are read.
//!
//! The journal holds no secrets: the spec holds none, and step errors carry port messages, which
//! never contain secrets.
//!
//! An open [`FileJournal`] holds an exclusive lock on its file, so two processes (or two sessions
//! in one process) cannot write the same journal. That does not keep a second journal off the
//! same link: the session locks the link itself ([`crate::link_lock`]).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::lifecycle::{Input, LinkSpec, Machine, Operation};
use crate::ports::Journal;
use crate::time::Timestamp;

/// The journal format version written by this build. Files with a higher version are refused.
///
/// 2: every record carries its checksum (`"sum"`); the catch-up gate reads the primary's
/// workload and a role change skips the switch to synchronous commit when the link already
/// is. Version 1 records (no checksum) are still read, and a journal created in version 1
/// replays with the options as that machine applied them
/// ([`crate::lifecycle::MachineOptions::as_of_schema_1`]).
///
/// 3: [`JournalEntry::Checkpoint`] records, which hold the machine's whole state; records
/// before the last checkpoint may have been dropped (compaction). Version 1 and 2 journals
/// (which have none) are still read and replayed from their first record.
pub const JOURNAL_SCHEMA_VERSION: u32 = 3;

/// The first schema version with checkpoint records.
pub const CHECKPOINT_SCHEMA_VERSION: u32 = 3;

/// The largest journal file read (1 GiB). A link's journal grows by a few hundred bytes per
/// accepted input; a file larger than this is not one this build wrote.
pub const MAX_JOURNAL_BYTES: u64 = 1 << 30;

/// How a checked record's line ends: `,"sum":"` then [`SUM_HEX_LEN`] hex digits, then `"}`.
const SUM_FIELD: &[u8] = b",\"sum\":\"";

/// The checksum's length in hex digits (64 bits of SHA-256).
const SUM_HEX_LEN: usize = 16;

/// What every checkpoint record's line holds (the entry's tag, written first in the entry).
const CHECKPOINT_MARK: &[u8] = b"\"entry\":{\"kind\":\"checkpoint\"";

/// How every record's line starts: `schema_version` is the first field written.
pub const RECORD_START: &str = "{\"schema_version\":";

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalRecord {
    /// The format version ([`JOURNAL_SCHEMA_VERSION`] when written by this build).
    pub schema_version: u32,
    /// Position in the journal: 0 for the `Created` record, then +1 per record, no gaps.
    pub seq: u64,
    /// When the input was accepted (the `now` given to the machine).
    pub at: Timestamp,
    /// What happened.
    pub entry: JournalEntry,
}

impl JournalRecord {
    /// A record in the current schema version.
    pub fn new(seq: u64, at: Timestamp, entry: JournalEntry) -> Self {
        JournalRecord {
            schema_version: JOURNAL_SCHEMA_VERSION,
            seq,
            at,
            entry,
        }
    }
}

/// What a journal record holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JournalEntry {
    /// The link was created with this spec (always and only the first record).
    Created {
        /// The link's spec.
        spec: Box<LinkSpec>,
        /// The pair the link is driven on, as the session that created it named it
        /// ([`crate::session::SessionOptions::world`]); a session resuming the journal on
        /// another pair is refused. Absent in journals of sessions that named none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        world: Option<String>,
    },
    /// The machine accepted this input.
    Input {
        /// The input.
        input: Input,
    },
    /// The machine's whole state after the record before it (schema version 3 on). Replay
    /// starts from the last checkpoint and hands in only the inputs after it; the records
    /// between the `Created` record and a checkpoint may have been dropped (its `seq` then
    /// jumps). Written by the session every few hundred inputs ([`Journal::checkpoint`]).
    Checkpoint {
        /// The machine, as replaying every record up to here leaves it.
        machine: Box<Machine>,
        /// The operation last requested (what a resumed session continues).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operation: Option<Operation>,
    },
}

/// What went wrong reading or writing a journal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The file system refused.
    #[error("journal {path}: {source}")]
    Io {
        /// The journal file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// `create` found a file already there: an existing link's journal is never overwritten.
    #[error(
        "journal {path} already exists; open it to resume that link, or choose another path for a new link"
    )]
    AlreadyExists {
        /// The journal file.
        path: PathBuf,
    },
    /// Another session holds the journal's lock: it is driving this link now.
    #[error(
        "journal {path} is locked by another session driving the same link; stop that session first"
    )]
    Locked {
        /// The journal file.
        path: PathBuf,
    },
    /// The last line is incomplete (no final newline) or unreadable: a crash interrupted its
    /// write. The input it held was never acted on.
    #[error(
        "journal {} ends with a torn record at line {line} ({bytes} bytes), left by an interrupted \
         write; open it with `FileJournal::open_repairing` to drop that record and resume",
        .path.display()
    )]
    TornTail {
        /// The journal file.
        path: PathBuf,
        /// The 1-based line number of the torn record.
        line: u64,
        /// Its length in bytes.
        bytes: u64,
    },
    /// The file is not a milink journal: its first line is not a journal record, nor what an
    /// interrupted write of one leaves. Nothing offers to repair it (that would truncate it);
    /// it is left as it is.
    #[error(
        "{} is not a milink journal: its first line is not a journal record ({reason}); it was \
         left as it is: give the path of the journal file the session wrote",
        .path.display()
    )]
    NotAJournal {
        /// The file.
        path: PathBuf,
        /// What the first line is instead.
        reason: String,
    },
    /// A record was written by a newer milink.
    #[error(
        "journal line {line} has schema version {found}, this build reads up to {supported}; upgrade milink"
    )]
    UnsupportedSchema {
        /// The 1-based line number.
        line: u64,
        /// The version found.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// A checkpoint record is damaged (its checksum does not match, or it does not parse). A
    /// checkpoint is written whole and made durable before it replaces the records before
    /// it, so it is never a torn write: nothing offers to repair it, and the file is left as
    /// it is.
    #[error(
        "journal checkpoint at line {line} is corrupt: {reason}; the records before it were \
         dropped when it was written, so the link cannot be rebuilt without it: restore the \
         journal file from a backup"
    )]
    CorruptCheckpoint {
        /// The 1-based line number.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// A complete record in the middle of the journal is invalid (not a torn write).
    #[error("journal is corrupt at line {line}: {reason}")]
    Corrupt {
        /// The 1-based line number.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// The path is not a regular file (a directory, a FIFO, a device), so it is not read.
    #[error(
        "{} is not a journal file: it is {kind}, and only a regular file is read as a journal; \
         give the path of the journal file the session wrote",
        .path.display()
    )]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// The file is larger than any journal this build writes ([`MAX_JOURNAL_BYTES`]).
    #[error(
        "{} is {len} bytes, more than the {max} bytes a journal can hold: it is not a journal \
         this build wrote, and it was not read",
        .path.display()
    )]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// Its length.
        len: u64,
        /// The largest journal read.
        max: u64,
    },
    /// The journal has no `Created` record: there is no link to resume.
    #[error("journal is empty: it holds no link to resume")]
    Empty,
    /// A record was appended out of order.
    #[error("record seq {found} appended where seq {expected} was due")]
    OutOfOrder {
        /// The seq the journal expected.
        expected: u64,
        /// The seq given.
        found: u64,
    },
    /// A previous write failed part-way and could not be undone; the journal refuses further
    /// writes. Reopen it (with `open_repairing` if the tail is torn).
    #[error(
        "journal {path} refused the write: an earlier write failed and the file must be reopened"
    )]
    Poisoned {
        /// The journal file.
        path: PathBuf,
    },
    /// Replaying a record through the machine failed: the journal does not match the machine
    /// that wrote it.
    #[error("journal record seq {seq} cannot be replayed: {reason}")]
    Replay {
        /// The record's seq.
        seq: u64,
        /// Why the machine refused it.
        reason: String,
    },
}

impl JournalError {
    fn io(path: &Path, source: io::Error) -> Self {
        JournalError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A torn final record that [`FileJournal::open_repairing`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TornTail {
    /// The 1-based line number of the removed record.
    pub line: u64,
    /// Its length in bytes.
    pub bytes: u64,
}

/// Checks a sequence of records as a journal: the first is `Created` at seq 0, then `Input`
/// and `Checkpoint` records with consecutive seqs (a checkpoint's seq may jump ahead: the
/// records it replaced were dropped), all in a schema version this build reads.
pub fn validate_records(records: &[JournalRecord]) -> Result<(), JournalError> {
    for (index, record) in records.iter().enumerate() {
        let line = index as u64 + 1;
        let previous = index.checked_sub(1).and_then(|i| records.get(i));
        validate_next(record, previous, next_seq_after(previous), line)?;
    }
    Ok(())
}

/// The seq due after `previous` (0 for the first record).
fn next_seq_after(previous: Option<&JournalRecord>) -> u64 {
    previous.map_or(0, |p| p.seq.saturating_add(1))
}

fn validate_next(
    record: &JournalRecord,
    previous: Option<&JournalRecord>,
    expected_seq: u64,
    line: u64,
) -> Result<(), JournalError> {
    if record.schema_version > JOURNAL_SCHEMA_VERSION || record.schema_version == 0 {
        return Err(JournalError::UnsupportedSchema {
            line,
            found: record.schema_version,
            supported: JOURNAL_SCHEMA_VERSION,
        });
    }
    if let Some(previous) = previous.filter(|p| p.schema_version > record.schema_version) {
        return Err(JournalError::Corrupt {
            line,
            reason: format!(
                "a record of schema version {} after one of version {}: records are never \
                 written in an older format than the ones before them",
                record.schema_version, previous.schema_version
            ),
        });
    }
    let checkpoint = matches!(record.entry, JournalEntry::Checkpoint { .. });
    if checkpoint && record.schema_version < CHECKPOINT_SCHEMA_VERSION {
        return Err(JournalError::Corrupt {
            line,
            reason: format!(
                "a checkpoint record of schema version {}: checkpoints exist from version \
                 {CHECKPOINT_SCHEMA_VERSION} on",
                record.schema_version
            ),
        });
    }
    // A checkpoint may follow the `Created` record with a jump: compaction dropped the
    // records in between.
    let seq_ok = if checkpoint {
        record.seq >= expected_seq
    } else {
        record.seq == expected_seq
    };
    if !seq_ok {
        return Err(JournalError::Corrupt {
            line,
            reason: format!("seq {} where {expected_seq} was due", record.seq),
        });
    }
    if checkpoint && expected_seq == 0 {
        return Err(JournalError::Corrupt {
            line,
            reason: "the first record is a checkpoint, not `created`".into(),
        });
    }
    let created = matches!(record.entry, JournalEntry::Created { .. });
    if expected_seq == 0 && !created {
        return Err(JournalError::Corrupt {
            line,
            reason: "the first record is not `created`".into(),
        });
    }
    if expected_seq != 0 && created {
        return Err(JournalError::Corrupt {
            line,
            reason: "a second `created` record".into(),
        });
    }
    Ok(())
}

/// Rebuilds a link's machine from its journal: a fresh machine from the `Created` spec, then
/// every input at the time it was accepted. The machine is deterministic, so this gives the state
/// the link was in when the last record was written. A record the machine refuses means the
/// journal does not belong to this machine (or was edited): [`JournalError::Replay`].
///
/// With checkpoints, replay starts from the last one (the machine it holds) and hands in only
/// the inputs after it: the same state, in a time that does not grow with the link's age.
pub fn replay(records: &[JournalRecord]) -> Result<Machine, JournalError> {
    resume_point(records).map(|point| point.machine)
}

/// Where a journal leaves its link: what [`resume_point`] rebuilds.
#[derive(Debug, Clone)]
pub struct ResumePoint {
    /// The machine after the last record.
    pub machine: Machine,
    /// The operation last requested (the last command that names one), if any.
    pub operation: Option<Operation>,
    /// The seq of the next record.
    pub next_seq: u64,
    /// How many records follow the last checkpoint (all but `Created` when there is none).
    pub since_checkpoint: u64,
}

/// Rebuilds a link from its journal like [`replay`], with what a session needs besides the
/// machine: the operation to continue and the next seq.
pub fn resume_point(records: &[JournalRecord]) -> Result<ResumePoint, JournalError> {
    validate_records(records)?;
    let Some(JournalRecord {
        entry: JournalEntry::Created { spec, .. },
        schema_version,
        ..
    }) = records.first()
    else {
        return Err(JournalError::Empty);
    };
    let last_checkpoint = records
        .iter()
        .rposition(|r| matches!(r.entry, JournalEntry::Checkpoint { .. }));
    let (mut machine, mut operation, start) = match last_checkpoint.map(|i| (i, &records[i])) {
        Some((
            index,
            JournalRecord {
                entry: JournalEntry::Checkpoint { machine, operation },
                ..
            },
        )) => ((**machine).clone(), *operation, index + 1),
        _ => {
            let mut spec = (**spec).clone();
            if *schema_version < 2 {
                spec.options = spec.options.as_of_schema_1();
            } else if *schema_version < 3 {
                spec.options = spec.options.as_of_schema_2();
            }
            let machine = Machine::new(spec).map_err(|e| JournalError::Replay {
                seq: 0,
                reason: e.to_string(),
            })?;
            (machine, None, 1)
        }
    };
    let tail = records.get(start..).unwrap_or_default();
    for record in tail {
        if let JournalEntry::Input { input } = &record.entry {
            if let Input::Command(command) = input
                && let Some(named) = Operation::of(command)
            {
                operation = Some(named);
            }
            machine
                .handle(input.clone(), record.at)
                .map_err(|e| JournalError::Replay {
                    seq: record.seq,
                    reason: e.to_string(),
                })?;
        }
    }
    Ok(ResumePoint {
        machine,
        operation,
        next_seq: next_seq_after(records.last()),
        since_checkpoint: tail.len() as u64,
    })
}

/// The first field of every record, read before the rest so a newer format is reported as such
/// rather than as a parse error.
#[derive(Deserialize)]
struct VersionProbe {
    schema_version: u32,
}

/// The result of scanning a journal file.
struct Scan {
    records: Vec<JournalRecord>,
    /// Byte length of the valid prefix (everything up to and including the last good newline).
    valid_len: u64,
    torn: Option<TornTail>,
}

/// Whether an unreadable line can be what an interrupted append left behind: a prefix of a
/// record, a record cut or damaged after its start, or bytes the file system allocated but never
/// wrote (NUL).
fn could_be_torn(text: &[u8]) -> bool {
    let start = RECORD_START.as_bytes();
    text.first() == Some(&0) || text.starts_with(start) || start.starts_with(text)
}

/// The seq a record's line declares in its opening (`{"schema_version":N,"seq":S,`), if that
/// much of it is intact.
fn declared_seq(text: &[u8]) -> Option<u64> {
    let rest = text.strip_prefix(RECORD_START.as_bytes())?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let rest = rest.get(digits..)?.strip_prefix(b",\"seq\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || rest.get(digits) != Some(&b',') {
        return None;
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// Why an unreadable first line makes the file something other than a journal.
fn not_a_journal(path: &Path, text: &[u8], error: Option<JournalError>) -> JournalError {
    let reason = match error {
        Some(JournalError::Corrupt { reason, .. }) if text.starts_with(b"{") => {
            format!("a JSON text that is no journal record: {reason}")
        }
        _ if std::str::from_utf8(text).is_err() => "binary data".to_owned(),
        _ if text.starts_with(b"{") || text.starts_with(b"[") => {
            "JSON of something else".to_owned()
        }
        _ => "text that is not JSON".to_owned(),
    };
    JournalError::NotAJournal {
        path: path.to_path_buf(),
        reason,
    }
}

fn scan(path: &Path, bytes: &[u8]) -> Result<Scan, JournalError> {
    let mut records = Vec::new();
    let mut offset = 0usize;
    let mut line = 0u64;
    while offset < bytes.len() {
        line += 1;
        let rest = &bytes[offset..];
        let (text, complete) = match rest.iter().position(|b| *b == b'\n') {
            Some(end) => (&rest[..end], true),
            None => (rest, false),
        };
        let is_last = !complete || offset + text.len() + 1 == bytes.len();
        let torn = TornTail {
            line,
            bytes: rest.len() as u64,
        };
        // The first line decides whether this is a journal at all: a file given by mistake is
        // never taken for a journal with a torn record, which a repair would truncate.
        let first = records.is_empty();
        // A checkpoint is written whole and made durable before it replaces the records
        // before it (or, appended, before anything after it is written), so a damaged one is
        // never a torn write: dropping it would lose the link's state.
        // An appended checkpoint (its seq the one due) replaces nothing: torn, it is dropped
        // like any torn record. The compacted one (its seq jumps) is the link's state.
        let expected = next_seq_after(records.last());
        let checkpoint_line = || match declared_seq(text) {
            Some(seq) => seq > expected,
            None => text
                .windows(CHECKPOINT_MARK.len())
                .any(|w| w == CHECKPOINT_MARK),
        };
        if !complete {
            if checkpoint_line() {
                return Err(JournalError::CorruptCheckpoint {
                    line,
                    reason: "the line is cut short (no final newline)".into(),
                });
            }
            if first && !could_be_torn(text) {
                return Err(not_a_journal(path, text, None));
            }
            return Ok(Scan {
                records,
                valid_len: offset as u64,
                torn: Some(torn),
            });
        }
        let parsed = parse_line(text, line);
        match parsed {
            Err(JournalError::Corrupt { reason, .. }) if checkpoint_line() => {
                return Err(JournalError::CorruptCheckpoint { line, reason });
            }
            Err(e @ JournalError::Corrupt { .. }) if first && !could_be_torn(text) => {
                return Err(not_a_journal(path, text, Some(e)));
            }
            Ok(record) => {
                validate_next(&record, records.last(), expected, line)?;
                records.push(record);
            }
            // An unreadable final line is a torn write (e.g. a crash after the file grew but
            // before its data reached the disk); an unreadable line followed by good ones is not.
            Err(JournalError::Corrupt { .. }) if is_last => {
                return Ok(Scan {
                    records,
                    valid_len: offset as u64,
                    torn: Some(torn),
                });
            }
            Err(e) => return Err(e),
        }
        offset += text.len() + 1;
    }
    Ok(Scan {
        records,
        valid_len: offset as u64,
        torn: None,
    })
}

fn parse_line(text: &[u8], line: u64) -> Result<JournalRecord, JournalError> {
    let corrupt = |e: serde_json::Error| JournalError::Corrupt {
        line,
        reason: e.to_string(),
    };
    let probe: VersionProbe = serde_json::from_slice(text).map_err(corrupt)?;
    if probe.schema_version > JOURNAL_SCHEMA_VERSION {
        return Err(JournalError::UnsupportedSchema {
            line,
            found: probe.schema_version,
            supported: JOURNAL_SCHEMA_VERSION,
        });
    }
    if probe.schema_version < 2 {
        return serde_json::from_slice(text).map_err(corrupt);
    }
    let body = checked_body(text).map_err(|reason| JournalError::Corrupt { line, reason })?;
    serde_json::from_slice(&body).map_err(corrupt)
}

/// The checksum of a record's text, as written in its `"sum"` field.
fn checksum(body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(body);
    let mut hex = String::with_capacity(SUM_HEX_LEN);
    for byte in digest.iter().take(SUM_HEX_LEN / 2) {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// A record's line with its checksum: the record's JSON object with `"sum"` appended last.
fn checked_line(body: &[u8]) -> Vec<u8> {
    let mut line = Vec::with_capacity(body.len() + SUM_FIELD.len() + SUM_HEX_LEN + 3);
    // `body` is a JSON object: `{…}`. The sum goes before its closing brace.
    line.extend_from_slice(body.strip_suffix(b"}").unwrap_or(body));
    line.extend_from_slice(SUM_FIELD);
    line.extend_from_slice(checksum(body).as_bytes());
    line.extend_from_slice(b"\"}");
    line
}

/// The record's text without its checksum, if the checksum is there and matches.
fn checked_body(text: &[u8]) -> Result<Vec<u8>, String> {
    let tail_len = SUM_FIELD.len() + SUM_HEX_LEN + 2;
    let split = text
        .len()
        .checked_sub(tail_len)
        .filter(|&at| text[at..].starts_with(SUM_FIELD) && text.ends_with(b"\"}"))
        .ok_or_else(|| "the record has no checksum (\"sum\" as its last field)".to_owned())?;
    let found = &text[split + SUM_FIELD.len()..text.len() - 2];
    let mut body = text[..split].to_vec();
    body.push(b'}');
    let expected = checksum(&body);
    if found != expected.as_bytes() {
        return Err(format!(
            "its checksum does not match its content (sum {}, content sums to {expected}): the \
             record was changed after it was written",
            String::from_utf8_lossy(found)
        ));
    }
    Ok(body)
}

/// An append-only journal file: JSON lines, fsync per record, exclusively locked while open.
#[derive(Debug)]
pub struct FileJournal {
    path: PathBuf,
    file: File,
    next_seq: u64,
    /// Length of the file after the last successful append.
    len: u64,
    poisoned: bool,
}

impl FileJournal {
    /// Creates a new, empty journal. Fails with [`JournalError::AlreadyExists`] if the file
    /// exists: an existing link's history is never overwritten.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, JournalError> {
        let path = path.as_ref();
        let mut options = OpenOptions::new();
        options.read(true).append(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path).map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => JournalError::AlreadyExists {
                path: path.to_path_buf(),
            },
            _ => JournalError::io(path, e),
        })?;
        lock(&file, path)?;
        sync_parent_dir(path)?;
        Ok(FileJournal {
            path: path.to_path_buf(),
            file,
            next_seq: 0,
            len: 0,
            poisoned: false,
        })
    }

    /// Opens an existing journal for resuming: takes the lock, reads and validates every record.
    /// A torn last line is reported as [`JournalError::TornTail`] and the file is left as it is.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, JournalError> {
        let (journal, scan) = Self::open_scanned(path.as_ref())?;
        match scan.torn {
            Some(torn) => Err(JournalError::TornTail {
                path: journal.path.clone(),
                line: torn.line,
                bytes: torn.bytes,
            }),
            None => Ok(journal),
        }
    }

    /// Opens an existing journal like [`FileJournal::open`], but truncates a torn last line
    /// instead of refusing, and returns what it removed. Only the torn line is removed: a corrupt
    /// record followed by good ones is still an error.
    pub fn open_repairing(
        path: impl AsRef<Path>,
    ) -> Result<(Self, Option<TornTail>), JournalError> {
        let path = path.as_ref();
        let (mut journal, scan) = Self::open_scanned(path)?;
        if scan.torn.is_some() {
            journal
                .file
                .set_len(scan.valid_len)
                .and_then(|()| journal.file.sync_all())
                .map_err(|e| JournalError::io(path, e))?;
            journal.len = scan.valid_len;
        }
        Ok((journal, scan.torn))
    }

    fn open_scanned(path: &Path) -> Result<(Self, Scan), JournalError> {
        // Checked before opening (opening a FIFO can block) and again on the handle (the path
        // may have changed in between).
        let metadata = std::fs::metadata(path).map_err(|e| JournalError::io(path, e))?;
        regular_file(path, &metadata)?;
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| JournalError::io(path, e))?;
        let metadata = file.metadata().map_err(|e| JournalError::io(path, e))?;
        regular_file(path, &metadata)?;
        let too_large = |len: u64| JournalError::TooLarge {
            path: path.to_path_buf(),
            len,
            max: MAX_JOURNAL_BYTES,
        };
        if metadata.len() > MAX_JOURNAL_BYTES {
            return Err(too_large(metadata.len()));
        }
        lock(&file, path)?;
        let mut bytes = Vec::new();
        (&file)
            .take(MAX_JOURNAL_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| JournalError::io(path, e))?;
        // The file may have grown since its length was read.
        let read = bytes.len() as u64;
        if read > MAX_JOURNAL_BYTES {
            return Err(too_large(read));
        }
        let scan = scan(path, &bytes)?;
        let journal = FileJournal {
            path: path.to_path_buf(),
            file,
            next_seq: next_seq_after(scan.records.last()),
            len: scan.valid_len,
            poisoned: false,
        };
        Ok((journal, scan))
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where a compaction writes the new file before renaming it over the journal: a hidden
    /// file next to it.
    pub fn compaction_path(&self) -> PathBuf {
        let mut name = std::ffi::OsString::from(".");
        name.push(self.path.file_name().unwrap_or_default());
        name.push(".compacting");
        self.path.with_file_name(name)
    }

    /// The file's length in bytes after the last write.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file holds no record.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `Created` record's line as it is in the file (kept verbatim by a compaction, with
    /// its checksum and schema version), without its newline.
    fn created_line(&self) -> Result<Vec<u8>, JournalError> {
        let mut file = &self.file;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| JournalError::io(&self.path, e))?;
        let mut bytes = Vec::new();
        // The `Created` record holds the spec and the world, each bounded; read in pieces
        // until its newline.
        let mut chunk = [0u8; 8192];
        loop {
            let n = file
                .read(&mut chunk)
                .map_err(|e| JournalError::io(&self.path, e))?;
            if let Some(end) = chunk[..n].iter().position(|b| *b == b'\n') {
                bytes.extend_from_slice(&chunk[..end]);
                return Ok(bytes);
            }
            if n == 0 || bytes.len() as u64 + n as u64 > self.len {
                return Err(JournalError::Empty);
            }
            bytes.extend_from_slice(&chunk[..n]);
        }
    }

    /// Compaction: writes the `Created` record and `checkpoint` to
    /// [`FileJournal::compaction_path`] (owner-only, locked, made durable), renames it over the
    /// journal and makes the rename durable. A crash at any point leaves either the old file
    /// or the new one under the journal's name, each a valid journal of the same link; a
    /// leftover temporary file is removed by the next compaction.
    fn compact(&mut self, checkpoint: &JournalRecord) -> Result<(), JournalError> {
        let temp = self.compaction_path();
        let (file, len) = self.write_compaction(checkpoint)?;
        if let Err(e) = std::fs::rename(&temp, &self.path) {
            // The journal is as it was; the temporary file is not needed.
            let _ = std::fs::remove_file(&temp);
            return Err(JournalError::io(&self.path, e));
        }
        // Renamed: the new file is the journal now, whichever way its directory entry
        // reaches the disk.
        self.file = file;
        self.len = len;
        self.next_seq += 1;
        self.poisoned = false;
        // Until the directory is synced a crash may bring back the old file, which is as
        // valid; so the checkpoint is written either way, and a failure here is not one.
        if let Err(e) = sync_parent_dir(&self.path) {
            tracing::warn!(journal = %self.path.display(), error = %e, "journal directory not synced after compaction");
        }
        Ok(())
    }

    /// The first half of a compaction: the new file, written, locked and durable under
    /// [`FileJournal::compaction_path`], and its length. The journal is unchanged.
    fn write_compaction(&self, checkpoint: &JournalRecord) -> Result<(File, u64), JournalError> {
        let created = self.created_line()?;
        let mut text = created;
        text.push(b'\n');
        text.extend_from_slice(&encode(checkpoint, self.next_seq)?);
        let temp = self.compaction_path();
        match std::fs::remove_file(&temp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(JournalError::io(&temp, e)),
        }
        let mut options = OpenOptions::new();
        options.read(true).append(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&temp)
            .map_err(|e| JournalError::io(&temp, e))?;
        let written = lock(&file, &temp).and_then(|()| {
            file.write_all(&text)
                .and_then(|()| file.sync_all())
                .map_err(|e| JournalError::io(&temp, e))
        });
        if let Err(e) = written {
            drop(file);
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
        Ok((file, text.len() as u64))
    }
}

/// A record's line as [`FileJournal`] writes it (its JSON with the checksum, and a newline), for
/// tools that prepare journal files in bulk without a `sync_data` per record.
pub fn encoded_line(record: &JournalRecord) -> Result<Vec<u8>, JournalError> {
    encode(record, record.seq)
}

/// A record's line as this build writes it: the checked JSON and a newline. `seq` is the line
/// number's base for errors.
fn encode(record: &JournalRecord, next_seq: u64) -> Result<Vec<u8>, JournalError> {
    let body = serde_json::to_vec(record).map_err(|e| JournalError::Corrupt {
        line: next_seq + 1,
        reason: format!("cannot encode the record: {e}"),
    })?;
    let mut line = checked_line(&body);
    line.push(b'\n');
    Ok(line)
}

/// Refuses anything but a regular file (after following symlinks).
fn regular_file(path: &Path, metadata: &std::fs::Metadata) -> Result<(), JournalError> {
    let file_type = metadata.file_type();
    if file_type.is_file() {
        return Ok(());
    }
    let kind = if file_type.is_dir() {
        "a directory"
    } else {
        special_kind(&file_type)
    };
    Err(JournalError::NotAFile {
        path: path.to_path_buf(),
        kind,
    })
}

#[cfg(unix)]
fn special_kind(file_type: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() || file_type.is_block_device() {
        "a device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

#[cfg(not(unix))]
fn special_kind(_file_type: &std::fs::FileType) -> &'static str {
    "not a regular file"
}

fn lock(file: &File, path: &Path) -> Result<(), JournalError> {
    file.try_lock().map_err(|e| match e {
        TryLockError::WouldBlock => JournalError::Locked {
            path: path.to_path_buf(),
        },
        TryLockError::Error(e) => JournalError::io(path, e),
    })
}

/// Makes a newly created file's directory entry durable.
fn sync_parent_dir(path: &Path) -> Result<(), JournalError> {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(parent)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| JournalError::io(path, e))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Checks a record about to be written after `next_seq` records: in order, valid, and in the
/// schema version this build writes.
fn check_new(record: &JournalRecord, next_seq: u64) -> Result<(), JournalError> {
    if record.seq != next_seq {
        return Err(JournalError::OutOfOrder {
            expected: next_seq,
            found: record.seq,
        });
    }
    validate_next(record, None, next_seq, next_seq + 1)?;
    if record.schema_version != JOURNAL_SCHEMA_VERSION {
        return Err(JournalError::Corrupt {
            line: next_seq + 1,
            reason: format!(
                "a record of schema version {} cannot be appended: this build writes version \
                 {JOURNAL_SCHEMA_VERSION}",
                record.schema_version
            ),
        });
    }
    Ok(())
}

/// Refuses a record that is not a checkpoint where one is due.
fn check_checkpoint(record: &JournalRecord, next_seq: u64) -> Result<(), JournalError> {
    if !matches!(record.entry, JournalEntry::Checkpoint { .. }) {
        return Err(JournalError::Corrupt {
            line: next_seq + 1,
            reason: "only a checkpoint record can replace the records before it".into(),
        });
    }
    if next_seq == 0 {
        return Err(JournalError::Empty);
    }
    Ok(())
}

impl Journal for FileJournal {
    fn checkpoint(&mut self, record: &JournalRecord) -> Result<(), JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned {
                path: self.path.clone(),
            });
        }
        check_new(record, self.next_seq)?;
        check_checkpoint(record, self.next_seq)?;
        self.compact(record)
    }

    fn append(&mut self, record: &JournalRecord) -> Result<(), JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned {
                path: self.path.clone(),
            });
        }
        check_new(record, self.next_seq)?;
        let line = encode(record, self.next_seq)?;
        let written = self
            .file
            .write_all(&line)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // Undo a partial line so the next append does not glue onto it.
            let undone = self
                .file
                .set_len(self.len)
                .and_then(|()| self.file.sync_data());
            if undone.is_err() {
                self.poisoned = true;
            }
            return Err(JournalError::io(&self.path, e));
        }
        self.len += line.len() as u64;
        self.next_seq += 1;
        Ok(())
    }

    fn records(&self) -> Result<Vec<JournalRecord>, JournalError> {
        // Read through the locked handle itself (a second handle could be refused by a
        // mandatory lock on some platforms). Appends go to the end whatever the cursor is.
        let mut file = &self.file;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| JournalError::io(&self.path, e))?;
        let mut bytes = Vec::new();
        file.take(self.len)
            .read_to_end(&mut bytes)
            .map_err(|e| JournalError::io(&self.path, e))?;
        let scan = scan(&self.path, &bytes)?;
        if let Some(torn) = scan.torn {
            return Err(JournalError::TornTail {
                path: self.path.clone(),
                line: torn.line,
                bytes: torn.bytes,
            });
        }
        Ok(scan.records)
    }

    fn location(&self) -> Option<PathBuf> {
        Some(self.path.clone())
    }
}

/// A journal in memory, for tests and for callers who do not need durability. Clones share the
/// same records, so a test can keep a handle and "restart" from it.
#[derive(Debug, Clone, Default)]
pub struct MemoryJournal {
    records: Arc<Mutex<Vec<JournalRecord>>>,
}

impl MemoryJournal {
    /// An empty journal.
    pub fn new() -> Self {
        MemoryJournal::default()
    }

    /// A snapshot of the records.
    pub fn snapshot(&self) -> Vec<JournalRecord> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Keeps only the first `len` records (simulates losing the tail).
    pub fn truncate(&self, len: usize) {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .truncate(len);
    }
}

impl Journal for MemoryJournal {
    fn checkpoint(&mut self, record: &JournalRecord) -> Result<(), JournalError> {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        let expected = next_seq_after(records.last());
        if record.seq != expected {
            return Err(JournalError::OutOfOrder {
                expected,
                found: record.seq,
            });
        }
        check_checkpoint(record, expected)?;
        validate_next(record, records.last(), expected, expected + 1)?;
        records.truncate(1);
        records.push(record.clone());
        Ok(())
    }

    fn append(&mut self, record: &JournalRecord) -> Result<(), JournalError> {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        let expected = next_seq_after(records.last());
        if record.seq != expected {
            return Err(JournalError::OutOfOrder {
                expected,
                found: record.seq,
            });
        }
        validate_next(record, records.last(), expected, expected + 1)?;
        records.push(record.clone());
        Ok(())
    }

    fn records(&self) -> Result<Vec<JournalRecord>, JournalError> {
        Ok(self.snapshot())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::{Command, Observation, StepId};

    use crate::test_support::spec;

    fn created() -> JournalRecord {
        JournalRecord::new(
            0,
            Timestamp::from_millis(1),
            JournalEntry::Created {
                spec: Box::new(spec()),
                world: None,
            },
        )
    }

    fn input(seq: u64, input: Input) -> JournalRecord {
        JournalRecord::new(
            seq,
            Timestamp::from_millis(1 + seq),
            JournalEntry::Input { input },
        )
    }

    fn three_records() -> Vec<JournalRecord> {
        vec![
            created(),
            input(1, Input::Command(Command::Start)),
            input(
                2,
                Input::Observed {
                    step: StepId(1),
                    result: Ok(Observation::Done),
                },
            ),
        ]
    }

    /// A record's line as `FileJournal` writes it (with its checksum, without the newline).
    fn encoded(record: &JournalRecord) -> Vec<u8> {
        checked_line(&serde_json::to_vec(record).unwrap())
    }

    fn encoded_str(record: &JournalRecord) -> String {
        String::from_utf8(encoded(record)).unwrap()
    }

    fn write_all(path: &Path, records: &[JournalRecord]) {
        let mut j = FileJournal::create(path).unwrap();
        for r in records {
            j.append(r).unwrap();
        }
    }

    #[test]
    fn records_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("link.journal");
        write_all(&path, &three_records());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.ends_with('\n'));
        assert!(
            text.starts_with("{\"schema_version\":3,\"seq\":0,"),
            "{text}"
        );
        let j = FileJournal::open(&path).unwrap();
        assert_eq!(j.records().unwrap(), three_records());
    }

    #[test]
    fn appends_after_reopen_continue_the_sequence() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        write_all(&path, &three_records()[..2]);
        let mut j = FileJournal::open(&path).unwrap();
        let err = j.append(&input(5, Input::Tick)).unwrap_err();
        assert!(matches!(
            err,
            JournalError::OutOfOrder {
                expected: 2,
                found: 5
            }
        ));
        j.append(&three_records()[2]).unwrap();
        assert_eq!(j.records().unwrap(), three_records());
    }

    #[test]
    fn create_refuses_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        write_all(&path, &three_records());
        let err = FileJournal::create(&path).unwrap_err();
        assert!(matches!(err, JournalError::AlreadyExists { .. }), "{err}");
        // And the existing history is untouched.
        assert_eq!(
            FileJournal::open(&path).unwrap().records().unwrap(),
            three_records()
        );
    }

    #[test]
    fn a_second_open_is_refused_while_the_first_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let first = FileJournal::create(&path).unwrap();
        let err = FileJournal::open(&path).unwrap_err();
        assert!(matches!(err, JournalError::Locked { .. }), "{err}");
        assert!(err.to_string().contains("locked by another session"));
        drop(first);
        FileJournal::open(&path).unwrap();
    }

    #[test]
    fn a_final_line_without_newline_is_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        write_all(&path, &three_records()[..2]);
        let mut partial = encoded(&three_records()[2]);
        partial.truncate(partial.len() / 2);
        let before = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&partial)
            .unwrap();

        let err = FileJournal::open(&path).unwrap_err();
        match err {
            JournalError::TornTail { line, bytes, .. } => {
                assert_eq!(line, 3);
                assert_eq!(bytes, partial.len() as u64);
            }
            other => panic!("expected TornTail, got {other}"),
        }
        // `open` changed nothing.
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            before + partial.len() as u64
        );

        let (mut j, torn) = FileJournal::open_repairing(&path).unwrap();
        assert_eq!(
            torn,
            Some(TornTail {
                line: 3,
                bytes: partial.len() as u64
            })
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), before);
        assert_eq!(j.records().unwrap(), three_records()[..2].to_vec());
        j.append(&three_records()[2]).unwrap();
        drop(j);
        assert_eq!(
            FileJournal::open(&path).unwrap().records().unwrap(),
            three_records()
        );
    }

    #[test]
    fn a_complete_record_without_its_newline_is_torn_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        write_all(&path, &three_records()[..2]);
        let whole = encoded(&three_records()[2]);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&whole)
            .unwrap();
        assert!(matches!(
            FileJournal::open(&path).unwrap_err(),
            JournalError::TornTail { line: 3, .. }
        ));
    }

    #[test]
    fn an_unreadable_last_line_is_torn_but_an_unreadable_middle_line_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        write_all(&path, &three_records()[..2]);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"\0\0\0\0\n")
            .unwrap();
        assert!(matches!(
            FileJournal::open(&path).unwrap_err(),
            JournalError::TornTail {
                line: 3,
                bytes: 5,
                ..
            }
        ));

        let path = dir.path().join("k");
        let mut text = String::new();
        let recs = three_records();
        text.push_str(&encoded_str(&recs[0]));
        text.push_str("\n{not json}\n");
        text.push_str(&encoded_str(&recs[1]));
        text.push('\n');
        std::fs::write(&path, text).unwrap();
        let err = FileJournal::open(&path).unwrap_err();
        assert!(
            matches!(err, JournalError::Corrupt { line: 2, .. }),
            "{err}"
        );
        // Repairing does not paper over a corrupt middle.
        assert!(matches!(
            FileJournal::open_repairing(&path).unwrap_err(),
            JournalError::Corrupt { line: 2, .. }
        ));
    }

    #[test]
    fn a_file_that_never_was_a_journal_is_not_a_journal_and_is_never_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&str, &[u8], &str); 6] = [
            ("words", b"hello world", "not JSON"),
            ("lines", b"hello\nworld\n", "not JSON"),
            ("json", b"{\"name\": \"ToyStore\"}\n", "JSON text"),
            ("json-no-newline", b"{\"name\": \"ToyStore\"}", "JSON"),
            ("array", b"[1, 2, 3]\n", "JSON"),
            ("binary", b"\x89PNG\r\n\x1a\n\xff\xfe", "binary"),
        ];
        for (name, bytes, reason) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let err = FileJournal::open(&path).unwrap_err();
            assert!(
                matches!(&err, JournalError::NotAJournal { reason: r, .. } if r.contains(reason)),
                "{name}: {err}"
            );
            let text = err.to_string();
            assert!(text.contains("is not a milink journal"), "{text}");
            assert!(!text.contains("torn") && !text.contains("repair"), "{text}");
            assert!(matches!(
                FileJournal::open_repairing(&path).unwrap_err(),
                JournalError::NotAJournal { .. }
            ));
            assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name} was changed");
        }
    }

    #[test]
    fn a_torn_first_record_is_still_a_torn_journal() {
        let dir = tempfile::tempdir().unwrap();
        let whole = encoded(&created());
        assert!(whole.starts_with(RECORD_START.as_bytes()));
        for (name, bytes) in [
            ("cut", whole[..whole.len() / 2].to_vec()),
            ("cut-in-the-start", whole[..5].to_vec()),
            ("no-newline", whole.clone()),
            ("unwritten", vec![0u8; 40]),
            ("unwritten-line", b"\0\0\0\n".to_vec()),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            let err = FileJournal::open(&path).unwrap_err();
            assert!(
                matches!(err, JournalError::TornTail { line: 1, .. }),
                "{name}: {err}"
            );
            let (j, torn) = FileJournal::open_repairing(&path).unwrap();
            assert_eq!(torn.map(|t| t.line), Some(1), "{name}");
            assert_eq!(j.records().unwrap(), Vec::new());
        }
    }

    #[test]
    fn a_newer_schema_version_is_refused_with_its_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let recs = three_records();
        let mut v2 = serde_json::to_value(&recs[1]).unwrap();
        v2["schema_version"] = (JOURNAL_SCHEMA_VERSION + 1).into();
        v2["entry"] = serde_json::json!({"kind": "something_new"});
        let text = format!(
            "{}\n{}\n{}\n",
            encoded_str(&recs[0]),
            v2,
            encoded_str(&recs[2])
        );
        std::fs::write(&path, text).unwrap();
        let err = FileJournal::open(&path).unwrap_err();
        assert!(
            matches!(
                err,
                JournalError::UnsupportedSchema {
                    line: 2,
                    found: 4,
                    supported: 3
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn gaps_and_misplaced_created_records_are_corruption() {
        let recs = three_records();
        let mut gap = recs.clone();
        gap[2].seq = 3;
        assert!(matches!(
            validate_records(&gap).unwrap_err(),
            JournalError::Corrupt { line: 3, .. }
        ));
        let no_created = recs[1..].to_vec();
        assert!(validate_records(&no_created).is_err());
        let mut twice = recs.clone();
        twice[1] = JournalRecord::new(
            1,
            Timestamp::EPOCH,
            JournalEntry::Created {
                spec: Box::new(spec()),
                world: None,
            },
        );
        assert!(validate_records(&twice).is_err());
        validate_records(&recs).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let text: String = gap.iter().map(|r| encoded_str(r) + "\n").collect();
        std::fs::write(&path, text).unwrap();
        assert!(matches!(
            FileJournal::open(&path).unwrap_err(),
            JournalError::Corrupt { line: 3, .. }
        ));
    }

    #[test]
    fn a_record_changed_after_it_was_written_is_refused_and_never_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        write_all(&path, &three_records());
        let text = std::fs::read_to_string(&path).unwrap();
        // A digit of the first input's time, then the spec's host name: each is a valid record
        // that still parses, so only the checksum tells.
        let changed_time = text.replacen("\"at\":2,", "\"at\":9,", 1);
        assert_ne!(changed_time, text);
        let host = spec().target.fqdn.to_string();
        let changed_host = text.replacen(&host, "evil.example.com", 1);
        assert_ne!(changed_host, text, "{host}");
        for (what, changed, line) in [("time", changed_time, 2), ("host", changed_host, 1)] {
            std::fs::write(&path, &changed).unwrap();
            for err in [
                FileJournal::open(&path).unwrap_err(),
                FileJournal::open_repairing(&path).unwrap_err(),
            ] {
                match &err {
                    JournalError::Corrupt { line: l, reason } => {
                        assert_eq!(*l, line, "{what}: {err}");
                        assert!(reason.contains("changed after it was written"), "{err}");
                    }
                    other => panic!("{what}: expected Corrupt, got {other}"),
                }
            }
            assert_eq!(std::fs::read_to_string(&path).unwrap(), changed, "{what}");
        }
    }

    #[test]
    fn a_record_without_its_checksum_is_refused_but_a_version_1_journal_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let recs = three_records();
        // Version 1 (before checksums): read as it is, and later appends are version 2.
        let v1: Vec<JournalRecord> = recs
            .iter()
            .cloned()
            .map(|mut r| {
                r.schema_version = 1;
                r
            })
            .collect();
        let path = dir.path().join("v1");
        let text: String = v1[..2]
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect();
        std::fs::write(&path, text).unwrap();
        let mut j = FileJournal::open(&path).unwrap();
        assert_eq!(j.records().unwrap(), v1[..2].to_vec());
        j.append(&recs[2]).unwrap();
        drop(j);
        assert_eq!(
            FileJournal::open(&path).unwrap().records().unwrap()[2],
            recs[2]
        );

        // A version 2 record whose checksum was removed.
        let path = dir.path().join("stripped");
        let text = format!(
            "{}\n{}\n{}\n",
            encoded_str(&recs[0]),
            serde_json::to_string(&recs[1]).unwrap(),
            encoded_str(&recs[2])
        );
        std::fs::write(&path, text).unwrap();
        let err = FileJournal::open(&path).unwrap_err();
        assert!(
            matches!(&err, JournalError::Corrupt { line: 2, reason } if reason.contains("no checksum")),
            "{err}"
        );

        // A version 1 record after version 2 ones: a downgraded record, not an old journal.
        let path = dir.path().join("downgraded");
        let text = format!(
            "{}\n{}\n",
            encoded_str(&recs[0]),
            serde_json::to_string(&v1[1]).unwrap()
        );
        std::fs::write(&path, text).unwrap();
        let err = FileJournal::open(&path).unwrap_err();
        assert!(
            matches!(&err, JournalError::Corrupt { line: 2, reason } if reason.contains("older format")),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn journal_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        write_all(&path, &three_records());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }

    #[cfg(unix)]
    #[test]
    fn only_a_regular_file_is_read_as_a_journal() {
        let dir = tempfile::tempdir().unwrap();
        // A FIFO would block the reader for ever (nothing writes to it).
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // A symlink to /dev/zero would be read until memory runs out.
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        for (path, kind) in [
            (&fifo, "a FIFO"),
            (&zero, "a device"),
            (&sub, "a directory"),
        ] {
            for err in [
                FileJournal::open(path).unwrap_err(),
                FileJournal::open_repairing(path).unwrap_err(),
            ] {
                match &err {
                    JournalError::NotAFile { kind: k, .. } => assert_eq!(*k, kind),
                    other => panic!("{}: expected NotAFile, got {other}", path.display()),
                }
                assert!(err.to_string().contains("only a regular file"), "{err}");
            }
        }
    }

    #[test]
    fn a_file_larger_than_any_journal_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge");
        write_all(&path, &three_records());
        // Sparse: no disk used, and it is refused before a byte is read.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(MAX_JOURNAL_BYTES + 1)
            .unwrap();
        let err = FileJournal::open(&path).unwrap_err();
        assert!(
            matches!(err, JournalError::TooLarge { len, max, .. } if len == MAX_JOURNAL_BYTES + 1 && max == MAX_JOURNAL_BYTES),
            "{err}"
        );
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            MAX_JOURNAL_BYTES + 1
        );
    }

    #[test]
    fn memory_journal_enforces_order_and_shares_records_between_clones() {
        let mut j = MemoryJournal::new();
        let other = j.clone();
        assert!(j.append(&input(0, Input::Tick)).is_err());
        j.append(&created()).unwrap();
        assert!(matches!(
            j.append(&input(2, Input::Tick)).unwrap_err(),
            JournalError::OutOfOrder {
                expected: 1,
                found: 2
            }
        ));
        j.append(&input(1, Input::Tick)).unwrap();
        assert_eq!(other.records().unwrap().len(), 2);
        other.truncate(1);
        assert_eq!(j.records().unwrap(), vec![created()]);
    }

    fn checkpoint_after(records: &[JournalRecord]) -> JournalRecord {
        let seq = records.last().unwrap().seq + 1;
        JournalRecord::new(
            seq,
            Timestamp::from_millis(1 + seq),
            JournalEntry::Checkpoint {
                // The inputs of `three_records` are no run of a machine; the checkpoint holds
                // the machine of the `Created` record.
                machine: Box::new(replay(&records[..1]).unwrap()),
                operation: Some(Operation::Start),
            },
        )
    }

    /// A file journal of `three_records` compacted to its checkpoint, and the checkpoint.
    fn compacted(path: &Path) -> JournalRecord {
        write_all(path, &three_records());
        let checkpoint = checkpoint_after(&three_records());
        FileJournal::open(path)
            .unwrap()
            .checkpoint(&checkpoint)
            .unwrap();
        checkpoint
    }

    #[test]
    fn a_checkpoint_compacts_the_file_to_created_and_itself_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        write_all(&path, &three_records());
        let before = std::fs::read_to_string(&path).unwrap();
        let checkpoint = checkpoint_after(&three_records());
        let mut j = FileJournal::open(&path).unwrap();
        j.checkpoint(&checkpoint).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        // The `Created` record is kept byte for byte (checksum and version included).
        assert_eq!(text.lines().next(), before.lines().next());
        assert_eq!(j.records().unwrap(), vec![created(), checkpoint.clone()]);
        assert_eq!(j.len(), text.len() as u64);
        let after = input(4, Input::Tick);
        j.append(&after).unwrap();
        assert!(matches!(
            j.append(&input(4, Input::Tick)).unwrap_err(),
            JournalError::OutOfOrder {
                expected: 5,
                found: 4
            }
        ));
        assert!(!j.compaction_path().exists());
        drop(j);
        let j = FileJournal::open(&path).unwrap();
        let records = j.records().unwrap();
        assert_eq!(records, vec![created(), checkpoint, after]);
        let point = resume_point(&records).unwrap();
        assert_eq!(point.next_seq, 5);
        assert_eq!(point.since_checkpoint, 1);
        assert_eq!(point.operation, Some(Operation::Start));
        assert_eq!(point.machine, Machine::new(spec()).unwrap());
        // Not a checkpoint: nothing is replaced.
        let mut j = j;
        assert!(matches!(
            j.checkpoint(&input(5, Input::Tick)).unwrap_err(),
            JournalError::Corrupt { .. }
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }
    }

    #[test]
    fn a_crash_between_writing_the_compacted_file_and_renaming_it_leaves_the_journal_valid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        write_all(&path, &three_records());
        let checkpoint = checkpoint_after(&three_records());
        let j = FileJournal::open(&path).unwrap();
        let temp = j.compaction_path();
        let (written, _) = j.write_compaction(&checkpoint).unwrap();
        // The process dies here: neither file is renamed.
        drop(written);
        drop(j);
        assert!(temp.exists());
        // The journal is the old one, whole; the new file would have been as good.
        let mut j = FileJournal::open(&path).unwrap();
        assert_eq!(j.records().unwrap(), three_records());
        assert_eq!(
            FileJournal::open(&temp).unwrap().records().unwrap(),
            vec![created(), checkpoint.clone()]
        );
        // The next compaction replaces the leftover.
        j.checkpoint(&checkpoint).unwrap();
        assert!(!temp.exists());
        drop(j);
        assert_eq!(
            FileJournal::open(&path).unwrap().records().unwrap(),
            vec![created(), checkpoint]
        );
    }

    #[test]
    fn a_damaged_checkpoint_is_refused_as_such_and_never_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        compacted(&path);
        let text = std::fs::read_to_string(&path).unwrap();
        let (first, second) = text.split_once('\n').unwrap();
        // A digit of the machine's next step id, then the line cut short (no newline), then
        // the line cut where its kind was: each still says it is the checkpoint.
        let changed = format!(
            "{first}\n{}",
            second.replacen("\"next_step\":", "\"next_step\":9", 1)
        );
        assert_ne!(changed, text);
        let cut = format!("{first}\n{}", &second[..second.len() / 2]);
        let cut_early = format!("{first}\n{}", &second[..30]);
        let with_tail = format!("{changed}{}\n", encoded_str(&input(5, Input::Tick)));
        for (what, damaged) in [
            ("changed", changed),
            ("cut", cut),
            ("cut early", cut_early),
            ("followed by a record", with_tail),
        ] {
            std::fs::write(&path, &damaged).unwrap();
            for err in [
                FileJournal::open(&path).unwrap_err(),
                FileJournal::open_repairing(&path).unwrap_err(),
            ] {
                assert!(
                    matches!(err, JournalError::CorruptCheckpoint { line: 2, .. }),
                    "{what}: {err}"
                );
                assert!(
                    err.to_string().contains("restore the journal file"),
                    "{err}"
                );
            }
            assert_eq!(std::fs::read_to_string(&path).unwrap(), damaged, "{what}");
        }
    }

    #[test]
    fn a_torn_appended_checkpoint_is_a_torn_tail_it_replaced_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        write_all(&path, &three_records());
        let mut line = encoded(&checkpoint_after(&three_records()));
        line.truncate(line.len() / 2);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&line)
            .unwrap();
        assert!(matches!(
            FileJournal::open(&path).unwrap_err(),
            JournalError::TornTail { line: 4, .. }
        ));
        let (j, torn) = FileJournal::open_repairing(&path).unwrap();
        assert_eq!(torn.map(|t| t.line), Some(4));
        assert_eq!(j.records().unwrap(), three_records());
    }

    #[test]
    fn a_version_2_journal_is_compacted_with_its_created_record_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2");
        let v2: Vec<JournalRecord> = three_records()
            .into_iter()
            .map(|mut r| {
                r.schema_version = 2;
                r
            })
            .collect();
        let text: String = v2.iter().map(|r| encoded_str(r) + "\n").collect();
        std::fs::write(&path, &text).unwrap();
        let mut j = FileJournal::open(&path).unwrap();
        assert_eq!(j.records().unwrap(), v2);
        let checkpoint = checkpoint_after(&v2);
        j.checkpoint(&checkpoint).unwrap();
        drop(j);
        let after = std::fs::read_to_string(&path).unwrap();
        assert_eq!(after.lines().next(), text.lines().next());
        let records = FileJournal::open(&path).unwrap().records().unwrap();
        assert_eq!(records, vec![v2[0].clone(), checkpoint]);
        assert_eq!(replay(&records).unwrap(), replay(&v2[..1]).unwrap());
    }

    #[test]
    fn checkpoints_out_of_place_are_corruption() {
        let recs = three_records();
        let checkpoint = checkpoint_after(&recs);
        // A jump before a checkpoint is compaction; before anything else it is a gap.
        let mut jumped = checkpoint.clone();
        jumped.seq = 40;
        validate_records(&[recs[0].clone(), jumped.clone()]).unwrap();
        let mut tick = input(40, Input::Tick);
        tick.seq = 40;
        assert!(validate_records(&[recs[0].clone(), tick]).is_err());
        // Never first, never in a version before checkpoints existed.
        let mut first = checkpoint.clone();
        first.seq = 0;
        assert!(matches!(
            validate_records(&[first]).unwrap_err(),
            JournalError::Corrupt { line: 1, .. }
        ));
        let mut old = checkpoint.clone();
        old.schema_version = 2;
        let mut v2 = recs.clone();
        for r in &mut v2 {
            r.schema_version = 2;
        }
        v2.push(old);
        assert!(matches!(
            validate_records(&v2).unwrap_err(),
            JournalError::Corrupt { line: 4, reason } if reason.contains("checkpoints exist from")
        ));
        // A newer schema after a checkpoint is still refused with its number.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        compacted(&path);
        let mut newer = serde_json::to_value(input(4, Input::Tick)).unwrap();
        newer["schema_version"] = (JOURNAL_SCHEMA_VERSION + 1).into();
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&format!("{newer}\n"));
        std::fs::write(&path, text).unwrap();
        assert!(matches!(
            FileJournal::open(&path).unwrap_err(),
            JournalError::UnsupportedSchema { line: 3, .. }
        ));
    }

    #[test]
    fn a_memory_journal_checkpoint_keeps_created_and_itself() {
        let mut j = MemoryJournal::new();
        for r in three_records() {
            j.append(&r).unwrap();
        }
        let checkpoint = checkpoint_after(&three_records());
        assert!(matches!(
            j.checkpoint(&input(3, Input::Tick)).unwrap_err(),
            JournalError::Corrupt { .. }
        ));
        j.checkpoint(&checkpoint).unwrap();
        assert_eq!(j.snapshot(), vec![created(), checkpoint]);
        j.append(&input(4, Input::Tick)).unwrap();
        assert_eq!(resume_point(&j.snapshot()).unwrap().next_seq, 5);
    }
}
