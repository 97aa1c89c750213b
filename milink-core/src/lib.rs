//! # milink-core
//!
//! Migrate SQL Server databases to Azure SQL Managed Instance over the Managed Instance link,
//! as one typed, resumable state machine.
//!
//! The crate is organised as a house (see ARCHITECTURE.md):
//! - [`assess`]: readiness facts, rules, SKU recommendation and the readiness report;
//! - [`arc`]: Arc-enabled SQL Server's operations for the link as ARM requests, and what they
//!   answer, proven against the official specs;
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
//! The machine decides; a driver only moves data. [`lifecycle::Engine`] (the machine with its
//! outbox) says what to do next; the driver journals each input before handing it in, performs
//! effects through the ports and sleeps until the engine's deadline. This is the whole loop of
//! [`session::Session`], without its retries, tracing and locks:
//!
//! ```
//! use std::time::Duration;
//! use milink_core::lifecycle::{Command, Effect, Engine, Input, Observation, Poll, StepError};
//! use milink_core::time::Timestamp;
//!
//! fn drive(
//!     engine: &mut Engine,
//!     command: Command,
//!     journal: &mut impl FnMut(&Input),                                   // durable storage
//!     perform: &mut impl FnMut(&Effect) -> Result<Observation, StepError>, // the ports
//!     now: &impl Fn() -> Timestamp,                                      // the clock
//!     sleep_until: &mut impl FnMut(Timestamp),
//! ) -> Result<(), Box<dyn std::error::Error>> {
//!     let mut inputs = engine.begin(Some(command), now(), Duration::from_secs(3600));
//!     loop {
//!         for input in inputs.drain(..) {
//!             journal(&input); // before anything happens
//!             engine.handle(input, now())?; // Rejected: nothing changed
//!             while let Some(event) = engine.poll_event() {
//!                 println!("{event:?}"); // phases, seeding, lag, the LSN gate, data loss
//!             }
//!         }
//!         match engine.poll(now()) {
//!             Poll::Perform(effect) => inputs.push(Input::Observed {
//!                 step: effect.step(),
//!                 result: perform(&effect),
//!             }),
//!             Poll::Submit(input) => inputs.push(input), // a Tick after a wait, a Resume
//!             Poll::Sleep(until) => sleep_until(until),
//!             Poll::Done(outcome) => return Ok(outcome?), // reached, or why not
//!         }
//!     }
//! }
//! ```
//!
//! After a crash, [`session::Session::resume`] replays the journal into a fresh machine
//! ([`journal::replay`]) and hands in `Resume`; the machine re-issues what was in flight, and
//! reads the link first before it would send a role change again.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod arc;
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
    CHECKPOINT_EVERY, LinkSession, Session, SessionError, SessionEvent, SessionOptions,
    SessionStatus,
};

/// The version of milink-core.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
