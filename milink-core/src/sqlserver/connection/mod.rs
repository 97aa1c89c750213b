//! The connection to SQL Server over TDS (feature `tds`): [`ConnectOptions`] and
//! [`Connection`], on tiberius with rustls.
//!
//! - **Options.** Built in code ([`ConnectOptions::builder`]) or read from an ADO.NET
//!   connection string ([`ConnectOptions::from_connection_string`], SqlClient's rules). TCP
//!   only (`host`, `host,port`, `tcp:host,port`; port 1433 by default). Logins are SQL logins
//!   (user and [`Secret`](crate::Secret) password) or Microsoft Entra access tokens from a
//!   [`TokenProvider`]; integrated, Windows and Kerberos authentication are refused with an
//!   error that names these alternatives.
//! - **Encryption is never off.** [`Encryption::Mandatory`] (TDS 7.4 with TLS, the default) or
//!   [`Encryption::Strict`] (TDS 8). The server's certificate is verified against the system
//!   roots, plus one CA file if given; `TrustServerCertificate=true` is honoured only when
//!   asked for, and [`ConnectOptions::trusts_server_certificate`] reports it.
//! - **Time limits.** A login timeout (resolution, TCP, TLS and login together, 30 s by
//!   default) and a limit per [`CommandKind`]: probes 15 s, reads 2 min, AG/DAG DDL 15 min,
//!   backups 6 h, each configurable. Every limit and every pause waits on the
//!   [`Timer`](crate::time::Timer) the connection is given; tiberius's own timers are off.
//! - **Errors.** [`ConnectError`] and [`SqlError`] name the problem and the fix (unknown host,
//!   refused port, untrusted certificate, login failed, timeout …), never show a password or
//!   token, and convert to [`PortError`](crate::ports::PortError) with the right transient
//!   flag.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use milink_core::sqlserver::connection::{CommandKind, ConnectOptions, Connection};
//! use milink_core::time::SystemTimer;
//!
//! let options = ConnectOptions::from_connection_string(
//!     "Server=tcp:sql01.contoso.com,1433;User ID=milink;Password=…;Database=master",
//! )?;
//! let connection = Connection::new(options, Arc::new(SystemTimer));
//! let sets = connection.simple_query("SELECT @@VERSION AS v", CommandKind::Probe).await?;
//! println!("{}", sets[0].rows[0].str("v")?);
//! # Ok(()) }
//! ```
//!
//! ## Tests against a real server
//!
//! The tests here need no server: they parse options and connect to loopback ports that refuse,
//! or accept and never answer. One test talks to a real SQL Server when asked to: set
//! `MILINK_LIVE_SQLSERVER` to a connection string and run the ignored tests, e.g.
//!
//! ```text
//! MILINK_LIVE_SQLSERVER='Server=tcp:localhost,1433;User ID=sa;Password=…;TrustServerCertificate=true' \
//!     cargo test -p milink-core --features tds -- --ignored live_
//! ```
//!
//! It connects and runs `SELECT @@VERSION`. Without the variable it passes without doing
//! anything.

mod client;
mod error;
mod options;

pub use client::{Connection, ResultSet};
pub use error::{ConnectError, SqlError, TRANSIENT_SQL_ERRORS, TokenError, is_transient_number};
pub use options::{
    Authentication, CommandKind, CommandTimeouts, ConnectOptions, ConnectOptionsBuilder,
    DEFAULT_PORT, Encryption, MAX_CONNECTION_STRING_LEN, MAX_RECONNECT_ATTEMPTS, StaticToken,
    TokenProvider,
};

#[cfg(test)]
mod tests;
