//! # milink-core
//!
//! Migrate SQL Server databases to Azure SQL Managed Instance over the Managed Instance link,
//! as one typed, resumable state machine.
//!
//! The crate is organised as a house (see ARCHITECTURE.md):
//! - [`assess`]: readiness facts, rules, SKU recommendation and the readiness report;
//! - [`names`]: validated names and values (database, AG, link, certificate and server names,
//!   managed instance resource ids, LSNs, SQL Server versions and their link capabilities);
//! - [`tsql`]: T-SQL builders that only accept those types and return a [`tsql::Batch`];
//! - [`lifecycle`]: the pure link state machine (spec, inputs, effects);
//! - [`plan`]: the whole plan of a link (every T-SQL batch and ARM request, by state) before
//!   anything runs;
//! - [`ports`]: the seams to SQL Server, the managed instance and the journal;
//! - [`journal`]: the append-only record of every accepted input ([`journal::FileJournal`]);
//! - [`link_lock`]: one session per link, across processes ([`link_lock::LinkLock`]);
//! - [`session`]: the driver ([`session::Session`], object safe as [`session::LinkSession`]);
//! - [`retry`]: jittered backoff that honours `Retry-After`;
//! - [`redirect`]: where the workload goes after a role change (connection strings, targets,
//!   the application's redirect hook) and the quiet-workload check before a failover;
//! - [`error`]: the umbrella [`Error`];
//! - [`time`]: [`time::Timestamp`], [`time::Date`] and the [`time::Clock`] trait;
//! - [`secret`]: [`Secret`], a string that never reaches Debug, logs or reports;
//! - `sim` (feature "sim"): a seeded, virtual-time world of a simulated SQL Server and managed
//!   instance that implement the ports.
//!
//! ## The drive loop
//!
//! The machine decides; the session acts. For every input (a command, an observation, a tick,
//! a resume) the session asks the machine, appends the accepted input to the journal, and only
//! then performs the effects it produced through the ports, feeding each result back as an
//! observation:
//!
//! ```text
//! step = machine.handle(input, now)?     // pure: no I/O, no clock
//! journal.append(input)?                 // durable before anything happens
//! for effect in step.effects:            // T-SQL, ARM, polls, probes
//!     result = ports.perform(effect)     // retried if transient
//!     -> next input: Observed { step, result }
//! sleep until machine.deadline() -> next input: Tick
//! ```
//!
//! After a crash, [`session::Session::resume`] replays the journal into a fresh machine and sends
//! `Resume`; the machine re-issues what was in flight.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod arm;
pub mod assess;
pub mod error;
pub mod journal;
pub mod lifecycle;
pub mod link_lock;
pub mod names;
pub mod plan;
pub mod ports;
pub mod reach;
pub mod redirect;
pub mod retry;
pub mod secret;
pub mod session;
#[cfg(feature = "sim")]
pub mod sim;
pub mod sqlserver;
pub mod time;
pub mod tsql;

#[cfg(test)]
mod test_support;

pub use error::{Error, Result};
pub use journal::{FileJournal, MemoryJournal};
pub use secret::Secret;
pub use session::{
    LinkSession, Session, SessionError, SessionEvent, SessionOptions, SessionStatus,
};

/// The version of milink-core.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
