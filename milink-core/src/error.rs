//! The umbrella error: every failure milink reports, with whose fault it is.

use crate::journal::JournalError;
use crate::names::NameError;
use crate::session::SessionError;

/// Any error milink returns.
///
/// Each area keeps its own `#[non_exhaustive]` enum; this umbrella keeps the source chain and
/// answers the three questions a caller asks: retry it ([`Error::is_transient`]), fix my input
/// ([`Error::is_caller_error`]), or the remote side refused ([`Error::is_remote`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A name or value was refused by its validated type.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The caller supplied an invalid argument.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A link session failed: a refused command, a failed step, a timeout.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// A journal could not be opened, read or written.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The readiness report has blockers for what the caller asked to do; the report says which
    /// and how to fix each one.
    #[error("{}", .0.not_ready_message())]
    NotReady(Box<crate::assess::ReadinessReport>),
    /// Gathering readiness facts failed.
    #[error(transparent)]
    Gather(#[from] crate::assess::GatherError),
    /// A redirect target could not be computed from the caller's options.
    #[error(transparent)]
    Redirect(#[from] crate::redirect::RedirectError),
}

impl Error {
    /// Retrying the same call may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Name(_)
            | Error::InvalidArgument(_)
            | Error::NotReady(_)
            | Error::Redirect(_) => false,
            Error::Gather(e) => e.is_transient(),
            Error::Session(e) => e.is_transient(),
            Error::Journal(e) => SessionError::journal_is_transient(e),
        }
    }

    /// The caller's input is wrong; nothing was changed.
    pub fn is_caller_error(&self) -> bool {
        match self {
            Error::Name(_)
            | Error::InvalidArgument(_)
            | Error::NotReady(_)
            | Error::Redirect(_) => true,
            Error::Gather(_) => false,
            Error::Session(e) => e.is_caller_error(),
            Error::Journal(e) => SessionError::journal_is_caller_error(e),
        }
    }

    /// SQL Server or Azure refused or failed.
    pub fn is_remote(&self) -> bool {
        match self {
            Error::Name(_)
            | Error::InvalidArgument(_)
            | Error::NotReady(_)
            | Error::Journal(_)
            | Error::Redirect(_) => false,
            Error::Gather(e) => e.is_remote(),
            Error::Session(e) => e.is_remote(),
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
