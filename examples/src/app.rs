//! The lab's application: a workload that reads its connection string from a file, and the
//! redirect hook the session calls after each role change.
//!
//! The hook does what a real deployment would: milink's [`FileRedirectHook`] rewrites the
//! application's connection string file atomically, the application reads the file again and
//! reconnects to the server it names. Where each write landed is kept per connection ("leg"),
//! so the report shows the writes before and after every redirect, and writes still sent to
//! the old primary show whether it refuses them.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use milink_core::lifecycle::{LinkSpec, Side};
use milink_core::names::DatabaseName;
use milink_core::redirect::{
    ConnectionString, FileRedirectHook, HookError, RedirectHook, RedirectTarget,
    hook::write_atomically, public_endpoint_host,
};
use milink_core::sim::{DbSnapshot, Sim, WorkloadSpec, WorkloadStats};
use milink_core::time::Timestamp;
use serde::{Deserialize, Serialize};

use crate::narrate::side_name;

/// The connection string the lab's application starts with (SQL authentication with a login
/// that is also created on the managed instance; the password shows how it is kept out of
/// every report).
pub const ORIGINAL_CONNECTION_STRING: &str = "Server=tcp:TailspinSql,1433;Database=ToyStore;\
     User ID=tailspin_app;Password='lab-only;P@ss=word';Application Name=Tailspin.Web;\
     Encrypt=True;TrustServerCertificate=True;MultiSubnetFailover=True;Connect Timeout=30";

/// Transactions per second of the lab's application.
pub const WORKLOAD_TPS: f64 = 15.0;

/// The writes of one connection: where they went and how many there were.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadLeg {
    /// `SQL Server` or `managed instance`.
    pub side: String,
    /// `host,port` the application was connected to.
    pub server: String,
    /// Transactions committed on that connection.
    pub committed: u64,
    /// Rows they wrote.
    pub rows: u64,
    /// Transactions refused on that connection.
    pub refused: u64,
}

/// One redirect made by the session through the hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedirectRecord {
    /// The side that had become primary.
    pub to: String,
    /// `host,port` of the target.
    pub server: String,
    /// The new connection string, password redacted.
    pub connection_string: String,
    /// What changed beyond host and authentication.
    pub notes: Vec<String>,
    /// Transactions the application had committed before it (all connections).
    pub writes_before: u64,
    /// How long the application could not write: from the moment it was told to stop to this
    /// redirect, which comes once the new primary takes writes (milliseconds of virtual time;
    /// absent when it was never stopped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_unavailable_ms: Option<u64>,
    /// When the application was told to stop before this redirect (virtual time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<Timestamp>,
}

/// Writes sent to the old primary after a redirect (a client that was not redirected).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OldPrimaryWrites {
    /// The old primary.
    pub side: String,
    /// Writes tried.
    pub attempted: u32,
    /// Writes refused.
    pub refused: u32,
    /// The error code of the refusals.
    pub error: Option<String>,
}

/// What the application did across redirects (the report's `redirect` section).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadLedger {
    /// The application's connection string file (permissions 0600), if one is written.
    pub connection_file: Option<String>,
    /// Every connection, in order: where each write landed.
    pub legs: Vec<WorkloadLeg>,
    /// The redirects, in order.
    pub redirects: Vec<RedirectRecord>,
    /// Writes tried on the old primary after the redirects.
    pub old_primary_writes: Vec<OldPrimaryWrites>,
    /// The workload counters when the current leg began (internal; absent once finished).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leg_started: Option<WorkloadStats>,
}

/// The state that must survive an interrupted lab run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppState {
    /// The ledger.
    pub ledger: WorkloadLedger,
    /// The new primary's copy of the database at the last redirect, before the application
    /// wrote to it (what parity compares against).
    pub at_redirect: Option<DbSnapshot>,
    /// The side the application is connected to.
    pub connected: Option<Side>,
    /// When the application was last told to stop writing (cleared by the next redirect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<milink_core::time::Timestamp>,
}

/// The lab's application and its redirect hook.
pub struct App {
    sim: Sim,
    database: DatabaseName,
    file: Option<FileRedirectHook>,
    instance_hosts: Vec<String>,
    state: Mutex<AppState>,
}

/// Locks `m`, going on with the data a panicking holder left behind.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn server_of(cs: &ConnectionString) -> Result<(String, String), HookError> {
    let source = cs
        .data_source()
        .map_err(|e| HookError::new(format!("the connection string is not usable: {e}")))?
        .ok_or_else(|| HookError::new("the connection string names no server"))?;
    let server = match source.effective_port() {
        Some(port) => format!("{},{port}", source.host),
        None => source.host.clone(),
    };
    Ok((source.host, server))
}

impl App {
    /// The application of `spec`'s first database in `sim`. With `file`, its configuration is
    /// that file (written now with the original connection string if `fresh`).
    pub fn new(
        sim: Sim,
        spec: &LinkSpec,
        database: DatabaseName,
        file: Option<FileRedirectHook>,
        state: AppState,
        fresh: bool,
    ) -> Result<Arc<App>, Box<dyn std::error::Error>> {
        let mut instance_hosts = vec![spec.target.fqdn.as_str().to_ascii_lowercase()];
        if let Ok(public) = public_endpoint_host(&spec.target.fqdn) {
            instance_hosts.push(public.as_str().to_ascii_lowercase());
        }
        let mut state = state;
        if let Some(f) = &file {
            if fresh {
                write_atomically(
                    f.path(),
                    format!("{ORIGINAL_CONNECTION_STRING}\n").as_bytes(),
                )?;
            }
            state.ledger.connection_file = Some(f.path().display().to_string());
        }
        Ok(Arc::new(App {
            sim,
            database,
            file,
            instance_hosts,
            state: Mutex::new(state),
        }))
    }

    /// The connection string the application uses now: its file's, or the original one.
    fn read_configuration(&self) -> Result<ConnectionString, HookError> {
        let text = match &self.file {
            Some(f) => std::fs::read_to_string(f.path())
                .map_err(|e| HookError::new(format!("cannot read {}: {e}", f.path().display())))?,
            None => ORIGINAL_CONNECTION_STRING.to_owned(),
        };
        ConnectionString::parse(text.trim_end())
            .map_err(|e| HookError::new(format!("the configuration file is not usable: {e}")))
    }

    /// Which side a host name reaches in the lab.
    fn side_of(&self, host: &str) -> Side {
        if self.instance_hosts.contains(&host.to_ascii_lowercase()) {
            Side::ManagedInstance
        } else {
            Side::SqlServer
        }
    }

    fn spec(&self, target: Side) -> WorkloadSpec {
        WorkloadSpec {
            database: self.database.clone(),
            target,
            transactions_per_second: WORKLOAD_TPS,
            max_rows_per_transaction: 4,
        }
    }

    /// Closes the current leg at the workload's counters now.
    fn close_leg(&self, state: &mut AppState) {
        let now = self.sim.workload_stats();
        if let (Some(start), Some(leg)) = (
            state.ledger.leg_started.take(),
            state.ledger.legs.last_mut(),
        ) {
            leg.committed = now.committed.saturating_sub(start.committed);
            leg.rows = now.rows.saturating_sub(start.rows);
            leg.refused = now.refused.saturating_sub(start.refused);
        }
    }

    fn open_leg(&self, state: &mut AppState, side: Side, server: String) {
        state.ledger.legs.push(WorkloadLeg {
            side: side_name(side).to_owned(),
            server,
            ..WorkloadLeg::default()
        });
        state.ledger.leg_started = Some(self.sim.workload_stats());
        state.connected = Some(side);
    }

    /// Connects with the configured connection string and starts writing.
    pub fn start(&self) -> Result<Side, HookError> {
        let cs = self.read_configuration()?;
        let (host, server) = server_of(&cs)?;
        let side = self.side_of(&host);
        let mut state = lock(&self.state);
        // Started again after an interrupted run: the connection is the same one.
        if state.connected != Some(side) || state.ledger.leg_started.is_none() {
            self.close_leg(&mut state);
            self.open_leg(&mut state, side, server);
        }
        // Writing again without a redirect: no window to measure.
        state.stopped_at = None;
        drop(state);
        self.sim.start_workload(self.spec(side));
        Ok(side)
    }

    /// Stops writing (the connection stays configured). Returns the counters so far.
    pub fn pause(&self) -> WorkloadStats {
        let stats = self.sim.stop_workload();
        let mut state = lock(&self.state);
        if state.stopped_at.is_none() {
            state.stopped_at = Some(self.sim.now());
        }
        stats
    }

    /// The last redirect's window without writes (see [`RedirectRecord::write_unavailable_ms`]).
    pub fn last_write_unavailable(&self) -> Option<Duration> {
        lock(&self.state)
            .ledger
            .redirects
            .last()
            .and_then(|r| r.write_unavailable_ms)
            .map(Duration::from_millis)
    }

    /// When the application was told to stop before the last redirect.
    pub fn last_stopped_at(&self) -> Option<Timestamp> {
        lock(&self.state)
            .ledger
            .redirects
            .last()
            .and_then(|r| r.stopped_at)
    }

    /// The new primary's copy at the last redirect, if it is on `side`.
    pub fn at_redirect(&self, side: Side) -> Option<DbSnapshot> {
        lock(&self.state)
            .at_redirect
            .clone()
            .filter(|s| s.side == side)
    }

    /// Sends `attempts` single-row writes to `side` as a client that still uses the old
    /// connection string would, and records how many were refused.
    pub fn write_to_old_primary(&self, side: Side, attempts: u32) -> OldPrimaryWrites {
        let mut refused = 0;
        let mut error = None;
        for _ in 0..attempts {
            if let Err(e) = self.sim.write(side, &self.database, 1) {
                refused += 1;
                error.get_or_insert(e.code());
            }
        }
        let writes = OldPrimaryWrites {
            side: side_name(side).to_owned(),
            attempted: attempts,
            refused,
            error,
        };
        lock(&self.state)
            .ledger
            .old_primary_writes
            .push(writes.clone());
        writes
    }

    /// Closes the last leg and returns what must be saved or reported.
    pub fn finish(&self) -> AppState {
        let mut state = lock(&self.state);
        self.close_leg(&mut state);
        state.clone()
    }

    /// The state to save when a run is interrupted (the current leg stays open).
    pub fn state(&self) -> AppState {
        lock(&self.state).clone()
    }
}

#[async_trait]
impl RedirectHook for App {
    async fn redirect(&self, target: &RedirectTarget) -> Result<(), HookError> {
        // 1. The configuration changes: the ready-made hook rewrites the file atomically.
        if let Some(f) = &self.file {
            f.redirect(target).await?;
        }
        // 2. The application reads it and reconnects to the server it names.
        let cs = match &self.file {
            Some(_) => self.read_configuration()?,
            None => target.connection_string.clone(),
        };
        let (host, server) = server_of(&cs)?;
        let side = self.side_of(&host);
        if side != target.side {
            return Err(HookError::new(format!(
                "the configuration names {host}, which is not the new primary"
            )));
        }
        let mut state = lock(&self.state);
        if state.connected == Some(side) {
            // Called again for the same role change (a resume after a crash): already done.
            return Ok(());
        }
        self.close_leg(&mut state);
        let writes_before = self.sim.workload_stats().committed;
        let now = self.sim.now();
        let stopped_at = state.stopped_at.take();
        let write_unavailable_ms =
            stopped_at.map(|t| u64::try_from(now.since(t).as_millis()).unwrap_or(u64::MAX));
        state.ledger.redirects.push(RedirectRecord {
            to: side_name(side).to_owned(),
            server: server.clone(),
            connection_string: cs.to_string(),
            notes: target.notes.clone(),
            writes_before,
            write_unavailable_ms,
            stopped_at,
        });
        // What parity compares: the new primary's copy before the application writes to it.
        state.at_redirect = self.sim.snapshot(side, &self.database);
        self.open_leg(&mut state, side, server);
        drop(state);
        self.sim.start_workload(self.spec(side));
        Ok(())
    }
}
