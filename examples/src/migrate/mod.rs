//! `migrate`: the link between a real SQL Server and a real managed instance, from a terminal.
//!
//! A thin layer over the library: the configuration ([`crate::config::LinkConfig`]) with flags
//! and environment variables over it ([`pair::Settings`]), the real ports ([`pair::ports`]), the
//! assessment ([`pair::assess`]), the library's [`Session`](milink_core::Session) with a
//! [`FileJournal`](milink_core::journal::FileJournal) for every change ([`commands`]), and the
//! session's events shown as a progress bar on a terminal or as plain lines otherwise
//! ([`progress`]). Safe by default: without `--execute` nothing is changed.

pub mod cli;
pub mod commands;
pub mod pair;
pub mod progress;

use milink_core::ports::PortError;
use milink_core::session::SessionError;

/// How a run ended, as its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done, or nothing to do.
    Done,
    /// 1: failed; `resume` alone will not fix it.
    Failed,
    /// 2: bad flags or configuration.
    Usage,
    /// 3: the assessment found blockers for the link's databases.
    NotReady,
    /// 4: the link (or milink) refused the command; nothing was changed.
    Refused,
    /// 5: failed, and `resume` may succeed.
    Retryable,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Done => 0,
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::NotReady => 3,
            Exit::Refused => 4,
            Exit::Retryable => 5,
        }
    }
}

/// Why a run stopped early: the exit it maps to and what to tell the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The exit code's meaning.
    pub exit: Exit,
    /// The message (never a secret: the library's errors carry none).
    pub message: String,
}

impl Failure {
    fn new(exit: Exit, message: impl Into<String>) -> Failure {
        Failure {
            exit,
            message: message.into(),
        }
    }

    /// Bad flags or configuration.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(Exit::Usage, message)
    }

    /// Refused; nothing was changed.
    pub fn refused(message: impl Into<String>) -> Failure {
        Failure::new(Exit::Refused, message)
    }

    /// Failed for good.
    pub fn failed(message: impl Into<String>) -> Failure {
        Failure::new(Exit::Failed, message)
    }

    /// Failed; `resume` (or running the command again) may succeed.
    pub fn retryable(message: impl Into<String>) -> Failure {
        Failure::new(Exit::Retryable, message)
    }

    /// A port's error while reading, by its transient flag.
    pub fn port(context: &str, e: &PortError) -> Failure {
        let message = format!("{context}: {e}");
        if e.transient {
            Failure::retryable(message)
        } else {
            Failure::failed(message)
        }
    }

    /// A session's error: refusals (the link's, a wrong world, a locked link, an existing
    /// journal) are [`Exit::Refused`], what `resume` may fix is [`Exit::Retryable`], the rest
    /// [`Exit::Failed`].
    pub fn session(e: &SessionError) -> Failure {
        let message = e.to_string();
        match e {
            SessionError::Rejected { .. }
            | SessionError::Spec(_)
            | SessionError::WrongWorld { .. }
            | SessionError::JournalNotEmpty { .. }
            | SessionError::LinkLocked { .. } => Failure::refused(message),
            _ if e.is_transient() => Failure::retryable(message),
            _ => Failure::failed(message),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Runs the command line; what it printed is on stdout, the failure (if any) is returned.
pub async fn run(cli: cli::Cli) -> Result<Exit, Failure> {
    let settings = pair::Settings::load(&cli)?;
    commands::run(&cli, &settings).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use milink_core::lifecycle::StepError;

    fn step(retryable: bool) -> SessionError {
        SessionError::StepFailed(StepError {
            code: "arm:500:InternalServerError".into(),
            message: "the instance failed".into(),
            retryable,
        })
    }

    #[test]
    fn session_errors_map_to_their_exit_codes() {
        assert_eq!(Failure::session(&step(true)).exit, Exit::Retryable);
        assert_eq!(Failure::session(&step(false)).exit, Exit::Failed);
        let timeout = SessionError::Timeout {
            operation: "failover",
            waited: std::time::Duration::from_secs(60),
            state: "CatchingUp".into(),
        };
        assert_eq!(Failure::session(&timeout).exit, Exit::Retryable);
        let wrong = SessionError::WrongWorld {
            journal: "a".into(),
            given: "b".into(),
        };
        assert_eq!(Failure::session(&wrong).exit, Exit::Refused);
        assert_eq!(
            Failure::session(&SessionError::JournalNotEmpty { records: 3 }).exit,
            Exit::Refused
        );
        let codes: Vec<u8> = [
            Exit::Done,
            Exit::Failed,
            Exit::Usage,
            Exit::NotReady,
            Exit::Refused,
            Exit::Retryable,
        ]
        .iter()
        .map(|e| e.code())
        .collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 5]);
    }
}
