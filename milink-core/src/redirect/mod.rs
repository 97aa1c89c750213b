//! Redirecting the workload after a role change: connection strings, targets, hooks, and the
//! quiet-workload check before a failover.
//!
//! The link provides no listener or DNS redirection (milink-facts §4.5): after a failover the
//! application must be pointed at the managed instance, and after a failback at SQL Server
//! again. This module computes where ([`RedirectTarget`]: host, port and a connection string
//! derived from the user's own, see [`connection_string`]) and defines the seam through which
//! the session tells the application ([`RedirectHook`]; [`FileRedirectHook`] is ready-made).
//! [`WorkloadActivity`] answers whether the workload has stopped before a failover.

pub mod connection_string;
pub mod hook;
pub mod target;
pub mod workload;

pub use connection_string::{
    ConnectionString, ConnectionStringError, DataSource, Keyword, Protocol,
};
pub use hook::{FileRedirectHook, HookError, RedirectHook};
pub use target::{
    EndpointChoice, EntraAuth, MiPorts, RedirectAuth, RedirectOptions, RedirectTarget,
    public_endpoint_host,
};
pub use workload::{ClientSession, WorkloadActivity};

/// Why a redirect target could not be computed. Always the caller's options; never contains a
/// password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedirectError {
    /// The original connection string (or a value in it) is malformed.
    #[error(transparent)]
    ConnectionString(#[from] ConnectionStringError),
    /// The original connection string names no server, so failback cannot return to it.
    #[error(
        "the original connection string has no Server / Data Source: give the one the workload \
         uses for SQL Server"
    )]
    NoDataSource,
    /// A connection string was given but holds no `key=value` pair at all (empty, blank, only
    /// separators): refused rather than taken for no connection string.
    #[error(
        "the connection string is empty (no key=value pair): give the one the workload uses for \
         SQL Server, or none at all"
    )]
    EmptyConnectionString,
    /// The public endpoint's host cannot be derived from the managed instance's FQDN.
    #[error("cannot derive the public endpoint from {fqdn}: {reason}; use EndpointChoice::Custom")]
    PublicEndpoint {
        /// The managed instance FQDN.
        fqdn: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The chosen authentication is incomplete.
    #[error("invalid redirect authentication: {0}")]
    InvalidAuth(&'static str),
}
