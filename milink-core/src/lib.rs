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
//! - [`ports`]: the seams to SQL Server and the managed instance;
//! - [`error`]: the umbrella [`Error`];
//! - [`time`]: [`time::Timestamp`], [`time::Date`] and the [`time::Clock`] trait;
//! - [`secret`]: [`Secret`], a string that never reaches Debug, logs or reports;
//! - `sim` (feature "sim"): a seeded, virtual-time world of a simulated SQL Server and managed
//!   instance that implement the ports.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod assess;
pub mod error;
pub mod lifecycle;
pub mod names;
pub mod ports;
pub mod secret;
#[cfg(feature = "sim")]
pub mod sim;
pub mod time;
pub mod tsql;

pub use error::{Error, Result};
pub use secret::Secret;

/// The version of milink-core.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
