//! The SQL Server side of the link: what milink runs there and how it reads the answers.
//!
//! The pure parts live here: each [`SourceOp`](crate::lifecycle::SourceOp) rendered into its
//! T-SQL batches with the [`crate::tsql`] builders ([`render`]); SQL Server's error numbers typed
//! into the port's errors, with which "already exists" answers count as success ([`errors`]);
//! result rows free of any driver's types ([`rows`]) and the probes' rowsets parsed into the
//! core's types ([`parse`]); the Azure root CA certificates shipped in the crate ([`certs`]); and
//! the database master key password ([`password`]). With the feature `tds`, `connection` opens
//! and drives the connection to SQL Server over TDS, and `adapter` implements the
//! [`SourceServer`](crate::ports::SourceServer) port on it (`SqlServerAdapter`), which also
//! checks first that the server's build can host the link (`link_host`). On the same
//! connection, `facts` is the assessment's [`FactSource`](crate::assess::FactSource)
//! (`TdsFactSource`), and `instance_reads` reads the managed instance's full backups and
//! sessions over its T-SQL endpoint (`InstanceTsql`, and `WithInstanceTsql` adding them to an
//! ARM port). With the feature `entra`, `entra::CredentialTokens` logs in with Microsoft Entra
//! tokens from an `azure_core` credential.

#[cfg(feature = "tds")]
pub mod adapter;
pub mod certs;
#[cfg(feature = "tds")]
pub mod connection;
#[cfg(feature = "entra")]
pub mod entra;
pub mod errors;
#[cfg(feature = "tds")]
pub mod facts;
#[cfg(feature = "tds")]
pub mod instance_reads;
#[cfg(feature = "tds")]
pub mod link_host;
pub mod parse;
pub mod password;
pub mod render;
pub mod rows;
#[cfg(all(test, feature = "sim", feature = "tds"))]
mod testkit;

#[cfg(feature = "tds")]
pub use adapter::SqlServerAdapter;
pub use certs::azure_root_ca_certificates;
#[cfg(feature = "entra")]
pub use entra::CredentialTokens;
pub use errors::{AlreadyExistsPolicy, SqlError};
#[cfg(feature = "tds")]
pub use facts::TdsFactSource;
#[cfg(feature = "tds")]
pub use instance_reads::{InstanceTsql, WithInstanceTsql};
#[cfg(feature = "tds")]
pub use link_host::LinkHostError;
pub use parse::ParseError;
pub use password::PasswordError;
pub use render::{RenderContext, RenderError};
pub use rows::{Row, RowError, Value};
