//! What a session reports: its events and its status.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Operation;
use crate::lifecycle::{
    DataLoss, LinkName, OperationStatus, Phase, ProgressEvent, Side, State, StepError, StepId,
};
use crate::redirect::RedirectTarget;
use crate::time::Timestamp;

/// Something a session reports while it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SessionEvent {
    /// The link moved to another state.
    StateChanged {
        /// The previous state's name.
        from: String,
        /// The new state's name.
        to: String,
    },
    /// The driver began performing a step.
    StepStarted {
        /// The step.
        step: StepId,
        /// What it does, e.g. `sql:CreateAvailabilityGroup`, `arm:PutLink`, `probe:link`.
        action: String,
    },
    /// A step hit a transient error and will be retried.
    StepRetrying {
        /// The step.
        step: StepId,
        /// The attempt that failed (1-based).
        attempt: u32,
        /// The error code.
        code: String,
        /// How long the driver waits before the next attempt.
        wait: Duration,
    },
    /// A step finished (its observation was handed to the machine).
    StepFinished {
        /// The step.
        step: StepId,
        /// What it did.
        action: String,
        /// The error, if it failed.
        error: Option<StepError>,
    },
    /// Progress reported by the machine: phase, seeding percent, lag and LSN gap.
    Progress(ProgressEvent),
}

/// A snapshot of a session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionStatus {
    /// The link.
    pub link: LinkName,
    /// The state's phase, e.g. [`Phase::Seeding`] (its name in JSON and Python: `"Seeding"`).
    pub state: Phase,
    /// The state with its details, as the machine describes it.
    pub detail: String,
    /// The state with its data (for JSON, Python dicts and notebooks: `"Replicating"`, or e.g.
    /// `{"FailedOver": {"primary": ..., "data_loss_possible": ...}}`).
    pub phase: State,
    /// The state is final (no command can leave it).
    pub terminal: bool,
    /// What the machine is waiting on.
    pub in_flight: Vec<String>,
    /// When the machine next wants a tick.
    pub deadline: Option<Timestamp>,
    /// Why the link failed, if it is `Failed`; otherwise the last step or probe error seen.
    pub last_error: Option<StepError>,
    /// The operation last requested, if any.
    pub operation: Option<Operation>,
    /// Where that operation stands (JSON and Python: `{"status": "running", "operation":
    /// "Failover"}`; `status` is `idle`, `running`, `reached`, `failed`, `stalled` or
    /// `split_brain`).
    pub progress: OperationStatus,
    /// The side that accepts writes now, as far as the machine knows.
    pub primary: Side,
    /// After a role change: transactions may have been lost (a forced failover or a repaired
    /// split brain).
    pub data_loss_possible: bool,
    /// The journal file, if the journal is a file.
    pub journal_path: Option<PathBuf>,
    /// Records in the journal (the next record's seq).
    pub journal_records: u64,
    /// Where the workload was last told to connect (computed at the last role change in this
    /// process; `None` before one), with the redirect's id. Its connection string shows
    /// `Password=***`.
    pub redirect: Option<RedirectTarget>,
    /// Evidence that a role change or the link's removal lost transactions (the old primary
    /// holds log the other side never hardened). Empty when every check passed. A cutover
    /// that lost data still ends `Completed` (the link is gone); this says so.
    pub data_loss: Vec<DataLoss>,
    /// Checks of lost transactions that could not be made (a side could not be read when the
    /// logs were to be compared), as readable notes; empty when every check ran.
    pub loss_unverified: Vec<String>,
    /// Since when both sides report PRIMARY, while the link is in SplitBrain (see
    /// [`super::LinkSession::repair_split_brain`]).
    pub split_brain_since: Option<Timestamp>,
    /// What the SQL Server port says about how it reaches the server (e.g. a TLS certificate
    /// that is not verified, on the user's explicit request); empty when nothing is amiss.
    #[serde(default)]
    pub connection_warnings: Vec<String>,
}

impl SessionStatus {
    /// Whether the link is at `operation`'s goal now (e.g. `Failover`: failed over; `Start`
    /// and `Failback`: replicating; `Cutover`: completed).
    pub fn reached(&self, operation: Operation) -> bool {
        operation.reached(&self.phase)
    }
}

/// One reading of the link kept in a session's history ([`super::LinkSession::history`]):
/// when, in which state, and each database's LSNs, lag and seeding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reading {
    /// When it was read (the session's clock: virtual on the simulator).
    pub at: Timestamp,
    /// The link's state then, e.g. `"Seeding"`, `"Replicating"`.
    pub state: String,
    /// Each database of the reading.
    pub databases: Vec<DatabaseReading>,
}

/// One database in a [`Reading`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseReading {
    /// The database.
    pub database: crate::names::DatabaseName,
    /// SQL Server's `last_hardened_lsn` (its end of log while it is primary).
    pub source_lsn: Option<crate::names::Lsn>,
    /// The managed instance's `last_hardened_lsn` (its end of log while it is primary).
    pub instance_lsn: Option<crate::names::Lsn>,
    /// Replication lag in seconds, as either side reported it (the larger).
    pub lag_seconds: Option<u64>,
    /// Seeding progress in percent, while seeding.
    pub seeding_percent: Option<u8>,
}

impl Reading {
    /// The reading of `link` at `at` in `state`.
    pub fn of(at: Timestamp, state: &str, link: &crate::lifecycle::LinkObservation) -> Reading {
        let mut databases: Vec<DatabaseReading> = Vec::new();
        for (side, view) in [
            (Side::SqlServer, &link.source),
            (Side::ManagedInstance, &link.instance),
        ] {
            for d in &view.databases {
                let i = match databases.iter().position(|r| r.database == d.name) {
                    Some(i) => i,
                    None => {
                        databases.push(DatabaseReading {
                            database: d.name.clone(),
                            source_lsn: None,
                            instance_lsn: None,
                            lag_seconds: None,
                            seeding_percent: None,
                        });
                        databases.len() - 1
                    }
                };
                let Some(r) = databases.get_mut(i) else {
                    continue;
                };
                // A primary reports its end of log where a secondary reports what it hardened.
                let lsn = d.last_hardened_lsn.or(d.end_of_log_lsn);
                match side {
                    Side::SqlServer => r.source_lsn = lsn,
                    Side::ManagedInstance => r.instance_lsn = lsn,
                }
                r.lag_seconds = r.lag_seconds.max(d.lag_seconds);
                r.seeding_percent = r.seeding_percent.max(d.seeding_percent);
            }
        }
        Reading {
            at,
            state: state.to_owned(),
            databases,
        }
    }
}
