//! Why a session operation failed, and how to tell transient, caller and remote errors apart.

use std::path::PathBuf;
use std::time::Duration;

use crate::journal::JournalError;
use crate::lifecycle::{LinkName, Rejected, SpecError, StepError};
use crate::link_lock::LockHolder;

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The machine refused the command in the link's current state; nothing was changed.
    #[error("the link refused {operation}: {source}")]
    Rejected {
        /// The operation.
        operation: &'static str,
        /// The machine's refusal: the state, the input and the reason.
        #[source]
        source: Box<Rejected>,
    },
    /// The link spec is invalid.
    #[error("invalid link spec: {0}")]
    Spec(#[source] SpecError),
    /// A step failed and the link is in `Failed`; fix the cause and call `resume`, or `cancel`.
    #[error("step failed with {}: {}{}", .0.code, .0.message,
        if .0.retryable { " (retryable: call resume)" } else { "" })]
    StepFailed(StepError),
    /// The journal could not be read or written; the link was not changed beyond the last
    /// journaled input.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The journal was created on another pair than the one this session drives
    /// ([`super::SessionOptions::world`]); nothing was read from the servers or written.
    #[error(
        "this journal drives {journal}, not {given}: resume it with the pair (or lab) it was \
         created on, or start a new link with a new journal"
    )]
    WrongWorld {
        /// The world the journal records.
        journal: String,
        /// The world this session was given.
        given: String,
    },
    /// A session option is out of its range ([`super::SessionOptions::validate`]); nothing was
    /// created, read or written.
    #[error("session option {option}: {reason}")]
    InvalidOption {
        /// The option's name (`event_capacity`, `retry.max_delay`, …).
        option: &'static str,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// `create` was given a journal that already holds records.
    #[error("the journal already holds {records} records of a link; resume it instead")]
    JournalNotEmpty {
        /// Records found.
        records: usize,
    },
    /// Another session drives this link (its lock file is held): only one session, in any
    /// process, may drive a link at a time. Nothing was written.
    #[error(
        "link {link} is already driven by another session ({holder}), which holds the lock file \
         {}; only one session may drive a link at a time: let that session finish or stop it, \
         then resume the link from its journal",
        .lock_file.display()
    )]
    LinkLocked {
        /// The link.
        link: LinkName,
        /// The lock file the other session holds.
        lock_file: PathBuf,
        /// Who holds it: process id and journal path, as far as the lock file says.
        holder: LockHolder,
    },
    /// The link's lock file could not be created, locked or written (a missing or read-only
    /// directory, a full disk). Nothing was written to the journal.
    #[error(
        "cannot take the lock of link {link} in {}: {source}; check that the directory exists and \
         is writable, or choose another with SessionOptions::lock_dir",
        .lock_file.display()
    )]
    LockFile {
        /// The link.
        link: LinkName,
        /// The lock file.
        lock_file: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The operation did not finish within `SessionOptions::operation_timeout`. The journal is
    /// intact: call `resume` to continue.
    #[error(
        "{operation} did not finish within {waited:?}; the link is in {state}; call resume to continue"
    )]
    Timeout {
        /// The operation.
        operation: &'static str,
        /// How long it ran.
        waited: Duration,
        /// The state it stopped in.
        state: String,
    },
    /// Both sides report PRIMARY: nothing else can happen until `repair_split_brain(keep)`.
    #[error(
        "split brain: both SQL Server and the managed instance report PRIMARY; choose the side whose \
         data to keep and call repair_split_brain"
    )]
    SplitBrain,
    /// The machine stopped in a state that is not the operation's goal and is waiting for
    /// nothing (for example a one-way link that finished in another terminal state).
    #[error("{operation} stopped in state {state} with nothing left to do")]
    Stalled {
        /// The operation.
        operation: &'static str,
        /// The state it stopped in.
        state: String,
    },
}

impl SessionError {
    /// Retrying (usually `resume`) may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            SessionError::StepFailed(e) => e.retryable,
            SessionError::Timeout { .. } => true,
            SessionError::Journal(e) => Self::journal_is_transient(e),
            // Like a journal I/O error: the disk or directory may recover.
            SessionError::LockFile { .. } => true,
            // The other session may run for days: waiting is not the answer, stopping it is.
            SessionError::LinkLocked { .. }
            | SessionError::Rejected { .. }
            | SessionError::Spec(_)
            | SessionError::WrongWorld { .. }
            | SessionError::InvalidOption { .. }
            | SessionError::JournalNotEmpty { .. }
            | SessionError::Stalled { .. }
            | SessionError::SplitBrain => false,
        }
    }

    /// The caller asked for something the link cannot do now, or gave bad input.
    pub fn is_caller_error(&self) -> bool {
        match self {
            SessionError::Rejected { .. }
            | SessionError::Spec(_)
            | SessionError::WrongWorld { .. }
            | SessionError::InvalidOption { .. }
            | SessionError::JournalNotEmpty { .. }
            | SessionError::LinkLocked { .. } => true,
            SessionError::Journal(e) => Self::journal_is_caller_error(e),
            SessionError::LockFile { .. }
            | SessionError::StepFailed(_)
            | SessionError::Timeout { .. }
            | SessionError::Stalled { .. }
            | SessionError::SplitBrain => false,
        }
    }

    /// SQL Server or Azure refused or failed.
    pub fn is_remote(&self) -> bool {
        match self {
            SessionError::StepFailed(e) => is_remote_code(&e.code),
            SessionError::Rejected { .. }
            | SessionError::Spec(_)
            | SessionError::WrongWorld { .. }
            | SessionError::InvalidOption { .. }
            | SessionError::Journal(_)
            | SessionError::JournalNotEmpty { .. }
            | SessionError::LinkLocked { .. }
            | SessionError::LockFile { .. }
            | SessionError::Timeout { .. }
            | SessionError::Stalled { .. }
            | SessionError::SplitBrain => false,
        }
    }

    /// A journal error that may go away by itself: the lock is released when the other session
    /// ends, and I/O errors (a full or briefly unavailable disk) may clear.
    pub(crate) fn journal_is_transient(e: &JournalError) -> bool {
        matches!(e, JournalError::Locked { .. } | JournalError::Io { .. })
    }

    /// A journal error the caller causes: the wrong path (already exists, in use, not a journal,
    /// not a regular file, far too large)
    /// or a torn tail they must decide to repair.
    pub(crate) fn journal_is_caller_error(e: &JournalError) -> bool {
        matches!(
            e,
            JournalError::AlreadyExists { .. }
                | JournalError::Locked { .. }
                | JournalError::TornTail { .. }
                | JournalError::NotAJournal { .. }
                | JournalError::NotAFile { .. }
                | JournalError::TooLarge { .. }
        )
    }
}

/// A step error's code names an error the remote side reported (SQL Server, ARM, HTTP, or a
/// link state such as `link:LinkCreationError`), rather than the transport or milink itself.
fn is_remote_code(code: &str) -> bool {
    match crate::ports::PortErrorKind::parse(code) {
        crate::ports::PortErrorKind::Sql(_)
        | crate::ports::PortErrorKind::Arm { .. }
        | crate::ports::PortErrorKind::Http(_) => true,
        crate::ports::PortErrorKind::Other(other) => other.starts_with("link:"),
        crate::ports::PortErrorKind::Io
        | crate::ports::PortErrorKind::Timeout
        | crate::ports::PortErrorKind::Hook
        | crate::ports::PortErrorKind::Unsupported => false,
    }
}
