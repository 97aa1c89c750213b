//! Which seeding failures are final: the signals on which the machine fails the Seeding phase at
//! once, instead of waiting until `seeding_timeout` (six days by default).
//!
//! Automatic seeding restarts by itself after a disconnect, a restart or a failover on either
//! side, so most errors seen while it runs only need time. A few mean that this link will never
//! finish seeding and must be dropped and created again (facts §3.3, §3.4):
//!
//! **Terminal** (the phase fails with a [`StepError`] that is *not* retryable: probing again would
//! only read the same failure until the seeding timeout):
//! - SQL error **1408** or **1412** reported for the database: a log backup on the primary
//!   truncated the log during seeding, so the seeded copy can no longer catch up;
//! - SQL error **41977** (`LinkCreationError`): the target database did not respond during link
//!   creation;
//! - a `replicaState` of the managed instance that ends in `Error` (`LinkCreationError`,
//!   `LinkInitError`, …): the service's own verdict that creating the link failed. The full list
//!   of states is not documented, so every `*Error` state counts.
//!
//! **Transient** (recorded in [`super::SeedingProgress::last_error`]; seeding goes on and
//! `seeding_timeout` bounds the wait):
//! - a disconnect (`connected = false`, error 41986, a network partition): seeding starts again
//!   once the connection is back;
//! - certificate and endpoint errors without an error state (41973, 41974, an expired endpoint
//!   certificate): once the cause is fixed the connection comes back and seeding restarts, with
//!   the same link;
//! - any other text, including text without an error number.
//!
//! The documented recovery from a terminal failure is to cancel the link (delete the link
//! resource, drop the distributed availability group and the availability group on SQL Server;
//! the databases stay) and create it again, taking log backups on the primary only after seeding
//! finished, or enabling trace flag 12381 for the seeding window on builds that support it.
//!
//! Error numbers are read from the start of the reported text (`1412: …`, `sql:1412: …`) or after
//! the words `Msg` or `Error` (`Msg 1412, Level 16 …`, `… failed with error 41977.`); the exact
//! format of the instance's `mostRecentLinkError` is not documented, so all of these are accepted.

use serde::{Deserialize, Serialize};

use crate::names::DatabaseName;

use super::input::{DatabaseView, StepError};

/// 1408: the remote copy is not recovered far enough (log truncated during seeding).
pub const LOG_TRUNCATED_NOT_RECOVERED: u32 = 1408;
/// 1412: the remote copy has not been rolled forward to a point the local log encompasses (log
/// truncated during seeding).
pub const LOG_TRUNCATED_NOT_ROLLED_FORWARD: u32 = 1412;
/// 41977: the target database is not responsive during link creation.
pub const TARGET_DATABASE_NOT_RESPONSIVE: u32 = 41977;

/// The SQL errors that end a seeding: 1408, 1412 and 41977.
pub const TERMINAL_SEEDING_ERRORS: [u32; 3] = [
    LOG_TRUNCATED_NOT_RECOVERED,
    LOG_TRUNCATED_NOT_ROLLED_FORWARD,
    TARGET_DATABASE_NOT_RESPONSIVE,
];

/// A seeding failure the link cannot recover from by itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedingFailure {
    /// The SQL error number, when the report carries one.
    pub error: Option<u32>,
    /// The managed instance's replica state, when it is an error state.
    pub replica_state: Option<String>,
    /// The reported error text, if any.
    pub detail: Option<String>,
}

impl SeedingFailure {
    /// Reads one side's view of one database: `Some` when it reports a terminal seeding failure
    /// (see the module documentation for what counts).
    pub fn of(view: &DatabaseView) -> Option<SeedingFailure> {
        let error = view.last_error.as_deref().and_then(sql_error_number);
        let error_state = view
            .replica_state
            .as_deref()
            .filter(|s| is_error_state(s))
            .map(str::to_owned);
        let terminal_number = error.is_some_and(|n| TERMINAL_SEEDING_ERRORS.contains(&n));
        if !terminal_number && error_state.is_none() {
            return None;
        }
        Some(SeedingFailure {
            error,
            replica_state: error_state,
            detail: view.last_error.clone(),
        })
    }

    /// The step error the Seeding phase fails with: the SQL error as its code (`sql:1412`), or
    /// the replica state (`link:LinkCreationError`) when no number was reported; a message with
    /// the cause and the documented recovery; not retryable.
    pub fn to_step_error(&self, database: &DatabaseName) -> StepError {
        let code = match (self.error, &self.replica_state) {
            (Some(n), _) => format!("sql:{n}"),
            (None, Some(state)) => format!("link:{state}"),
            (None, None) => "link:SeedingFailed".to_owned(),
        };
        let cause = match self.error {
            Some(n @ (LOG_TRUNCATED_NOT_RECOVERED | LOG_TRUNCATED_NOT_ROLLED_FORWARD)) => format!(
                "error {n}: a log backup on the primary truncated the log while seeding ran, so \
                 the seeded copy can no longer catch up"
            ),
            Some(TARGET_DATABASE_NOT_RESPONSIVE) => {
                "error 41977: the target database did not respond during link creation".to_owned()
            }
            Some(n) => format!("link creation failed with error {n}"),
            None => "link creation failed".to_owned(),
        };
        let mut reported = Vec::new();
        if let Some(state) = &self.replica_state {
            reported.push(format!("replica state {state}"));
        }
        if let Some(detail) = &self.detail {
            reported.push(format!("last error: {detail}"));
        }
        let reported = if reported.is_empty() {
            String::new()
        } else {
            format!(" ({})", reported.join("; "))
        };
        StepError {
            code,
            message: format!(
                "seeding of database {database} failed with {cause}{reported}. Resuming cannot \
                 help: drop the link and create it again. Cancel the link (this deletes the link \
                 on the managed instance and drops the distributed availability group and the \
                 availability group on SQL Server; the databases stay), then create the link \
                 again. Take log backups on the primary only after seeding finished (pause the \
                 log backup jobs until then), or enable trace flag 12381 for the seeding window \
                 on builds that support it."
            ),
            retryable: false,
        }
    }
}

/// Whether a managed instance `replicaState` is an error state (`LinkCreationError`,
/// `LinkInitError`, or any other state ending in `Error`).
pub fn is_error_state(state: &str) -> bool {
    state.trim().to_ascii_lowercase().ends_with("error")
}

/// The SQL error number a reported error text carries: a number at the start of the text, or
/// after `sql:`, `Msg` or `Error` (case-insensitive, followed by spaces, `:` or `#`). `None` when
/// the text carries no such number.
pub fn sql_error_number(text: &str) -> Option<u32> {
    let lower = text.to_ascii_lowercase();
    let mut starts = vec![0];
    for marker in ["sql:", "msg", "error"] {
        starts.extend(
            lower
                .match_indices(marker)
                .filter(|(i, _)| {
                    // A marker is a word of its own, not the tail of another one.
                    lower[..*i]
                        .chars()
                        .next_back()
                        .is_none_or(|c| !c.is_ascii_alphanumeric())
                })
                .map(|(i, m)| i + m.len()),
        );
    }
    starts.sort_unstable();
    starts.into_iter().find_map(|i| number_at(&lower[i..]))
}

/// A number after optional separators at the start of `text`, ending at a word boundary.
fn number_at(text: &str) -> Option<u32> {
    let rest = text.trim_start_matches([' ', ':', '#']);
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() || digits.len() > 6 {
        return None;
    }
    let mut after = rest[digits.len()..].chars();
    match after.next() {
        None => {}
        Some(c) if c.is_ascii_alphanumeric() => return None,
        // `16.0.4125` is a version, not an error number.
        Some('.') if after.next().is_some_and(|c| c.is_ascii_digit()) => return None,
        Some(_) => {}
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::{SyncHealth, SyncState};

    fn view(last_error: Option<&str>, replica_state: Option<&str>) -> DatabaseView {
        DatabaseView {
            name: DatabaseName::new("ToyStore").unwrap(),
            sync_state: Some(SyncState::NotSynchronizing),
            health: SyncHealth::NotHealthy,
            last_hardened_lsn: None,
            end_of_log_lsn: None,
            partner: None,
            last_commit_lsn: None,
            seeding_percent: Some(40),
            log_send_queue_kb: None,
            redo_queue_kb: None,
            lag_seconds: None,
            last_error: last_error.map(str::to_owned),
            replica_state: replica_state.map(str::to_owned),
        }
    }

    #[test]
    fn error_numbers_are_read_in_the_formats_reports_use() {
        for (text, number) in [
            ("1412: The remote copy of database ...", Some(1412)),
            (
                "sql:1408: the remote copy is not recovered far enough",
                Some(1408),
            ),
            ("Msg 1412, Level 16, State 1", Some(1412)),
            ("Error: 41977, Severity: 16, State: 1.", Some(41977)),
            ("Link creation failed with error 41977.", Some(41977)),
            ("41986: connection to the partner replica lost", Some(41986)),
            ("  ERROR #1408", Some(1408)),
            ("1412", Some(1412)),
            // No number where one is expected.
            (
                "The remote copy of database ToyStore is not recovered far enough",
                None,
            ),
            ("errors occurred: see the log", None),
            (
                "SQL Server 16.0.4125.3 refused the connection on port 5022",
                None,
            ),
            ("1412abc", None),
            ("suberror 1412", None),
            ("", None),
        ] {
            assert_eq!(sql_error_number(text), number, "{text:?}");
        }
    }

    #[test]
    fn log_truncation_and_unresponsive_target_are_terminal() {
        for (text, code) in [
            (
                "1412: the remote copy has not been rolled forward",
                "sql:1412",
            ),
            ("sql:1408: not recovered far enough", "sql:1408"),
            (
                "Error: 41977, the target database is not responsive",
                "sql:41977",
            ),
        ] {
            let failure = SeedingFailure::of(&view(Some(text), None)).expect(text);
            let error = failure.to_step_error(&DatabaseName::new("ToyStore").unwrap());
            assert_eq!(error.code, code);
            assert!(!error.retryable, "{text}");
            for needle in ["ToyStore", "Cancel the link", "create the link", "12381"] {
                assert!(
                    error.message.contains(needle),
                    "{needle}: {}",
                    error.message
                );
            }
        }
        let truncated = SeedingFailure::of(&view(Some("1412: x"), None))
            .unwrap()
            .to_step_error(&DatabaseName::new("ToyStore").unwrap());
        assert!(
            truncated.message.contains("log backup"),
            "{}",
            truncated.message
        );
    }

    #[test]
    fn an_error_replica_state_is_terminal_with_or_without_a_number() {
        let db = DatabaseName::new("ToyStore").unwrap();
        let state_only = SeedingFailure::of(&view(None, Some("LinkCreationError"))).unwrap();
        let error = state_only.to_step_error(&db);
        assert_eq!(error.code, "link:LinkCreationError");
        assert!(error.message.contains("replica state LinkCreationError"));
        assert!(!error.retryable);
        // An init error carries the cause's number, even one that alone is not terminal.
        let init = SeedingFailure::of(&view(
            Some("41973: the certificate was not imported"),
            Some("LinkInitError"),
        ))
        .unwrap();
        assert_eq!(init.to_step_error(&db).code, "sql:41973");
        assert!(is_error_state("linkcreationerror"));
    }

    #[test]
    fn disconnects_certificate_errors_and_plain_states_are_not_terminal() {
        for (text, state) in [
            (
                Some("41986: connection to the partner replica lost (network partition)"),
                Some("Seeding"),
            ),
            (
                Some("41973: SQL Server's certificate is not on the instance"),
                None,
            ),
            (Some("41974: the instance certificate is missing"), None),
            (
                Some("the endpoint certificate expired"),
                Some("CreatingLink"),
            ),
            (None, Some("LinkSynchronizing")),
            (None, Some("Catchup")),
            (None, None),
        ] {
            assert_eq!(
                SeedingFailure::of(&view(text, state)),
                None,
                "{text:?} {state:?}"
            );
        }
    }
}
