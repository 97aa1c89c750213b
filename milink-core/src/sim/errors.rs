//! The errors the simulated servers return, with the vendor's identity kept in
//! [`PortError::code`] (`sql:<number>`, `arm:<status>:<code>`, `io`, `timeout`).
//!
//! Where `milink-facts` gives a number or code it is used as is (§3.3, §3.4, §1.3; REST notes §5).
//! The few numbers the facts do not give are SQL Server's own catalogue numbers for the same
//! message family; each constant says which kind it is.

use std::time::Duration;

use crate::ports::PortError;

/// 41962: the link was not initiated within 5 minutes (network). Facts §3.4.
pub const LINK_NOT_INITIATED: u32 = 41962;
/// 41973: SQL Server's certificate was not imported into the managed instance. Facts §3.4.
pub const SQL_CERT_NOT_ON_INSTANCE: u32 = 41973;
/// 41974: the managed instance's certificate was not imported into SQL Server. Facts §3.4.
pub const INSTANCE_CERT_NOT_ON_SQL: u32 = 41974;
/// 41976: the availability group is not responding (names or parameters). Facts §3.4.
pub const AG_NOT_RESPONDING: u32 = 41976;
/// 41986: the connection failed or the secondary is unresponsive. Facts §3.4.
pub const CONNECTION_FAILED: u32 = 41986;
/// 1408: the remote copy is not recovered far enough (log truncated during seeding). Facts §3.3.
pub const NOT_RECOVERED_FAR_ENOUGH: u32 = 1408;
/// 1412: the remote copy has not been rolled forward to a point the local log encompasses
/// (log truncated during seeding). Facts §3.3.
pub const NOT_ROLLED_FORWARD: u32 = 1412;
/// 1475: the database needs a (new) full backup. Facts §1.3.
pub const NEEDS_FULL_BACKUP: u32 = 1475;
/// 2812: stored procedure not found (`sp_certificate_add_issuer` on a build without the link).
/// DESIGN §7.
pub const PROC_NOT_FOUND: u32 = 2812;
/// 1465: the database is not in the FULL recovery model (SQL Server's catalogue; not in the
/// facts).
pub const NOT_FULL_RECOVERY: u32 = 1465;
/// 15581: no database master key to protect a new certificate (SQL Server's catalogue).
pub const NO_MASTER_KEY: u32 = 15581;
/// 15151: the named object does not exist or no permission (SQL Server's catalogue).
pub const OBJECT_NOT_FOUND: u32 = 15151;
/// 35221: the Always On availability groups feature is not enabled (SQL Server's catalogue).
pub const HADR_DISABLED: u32 = 35221;
/// 41142: this replica cannot become (or make another) the primary: not synchronized, not the
/// primary, or the build lacks DAG `FAILOVER` (SQL Server's failover-refusal family; the facts
/// give no number).
pub const FAILOVER_REFUSED: u32 = 41142;
/// 976: the database is a secondary that is not accessible for queries (SQL Server's catalogue):
/// a write to SQL Server while it is the link's secondary (the AG replica allows no connections).
pub const SECONDARY_NOT_ACCESSIBLE: u32 = 976;
/// 3906: the database is read-only (SQL Server's catalogue): a write to the managed instance while
/// it is the link's (readable) secondary.
pub const DATABASE_READ_ONLY: u32 = 3906;
/// 927: the database is in the middle of a restore (seeding, or left restoring).
pub const DATABASE_RESTORING: u32 = 927;
/// 911: the database does not exist.
pub const DATABASE_NOT_FOUND: u32 = 911;
/// 4214: `BACKUP LOG` without a current full backup.
pub const NO_CURRENT_BACKUP: u32 = 4214;
/// 4208: `BACKUP LOG` under the SIMPLE recovery model.
pub const LOG_BACKUP_SIMPLE: u32 = 4208;
/// 7862: a `DATABASE_MIRRORING` endpoint of another name exists (SQL Server's catalogue; the
/// `tsql` endpoint builder documents it).
pub const ENDPOINT_EXISTS: u32 = 7862;
/// 41190: the object is in use by a distributed availability group (dropping an AG a DAG still
/// references).
pub const AG_IN_USE_BY_DAG: u32 = 41190;

/// A SQL Server error.
pub fn sql(number: u32, message: impl Into<String>) -> PortError {
    PortError::permanent(format!("sql:{number}"), message)
}

/// A transient SQL Server error.
pub fn sql_transient(number: u32, message: impl Into<String>) -> PortError {
    PortError::transient(format!("sql:{number}"), message)
}

/// An ARM error (`arm:<status>:<code>`); transient for 409 busy/conflict, 429 and 5xx.
pub fn arm(status: u16, code: &str, message: impl Into<String>) -> PortError {
    let error = PortError::permanent(format!("arm:{status}:{code}"), message);
    // The busy codes are the ones the driver itself treats as busy ([`PortError::is_busy`]).
    let transient = error.is_busy() || status >= 500;
    PortError { transient, ..error }
}

/// 429 `SubscriptionTooManyRequests` with `Retry-After`.
pub fn arm_throttled(retry_after: Duration) -> PortError {
    arm(
        429,
        "SubscriptionTooManyRequests",
        "too many requests for this subscription; retry after the Retry-After interval",
    )
    .with_retry_after(retry_after)
}

/// A 5xx with its ARM code from the REST notes §5.
pub fn arm_server_error(status: u16) -> PortError {
    let code = match status {
        503 => "TooManyRequests",
        504 => "RequestTimeout",
        _ => "GatewayInternalServerError",
    };
    arm(
        status,
        code,
        format!("the service returned {status} ({code}); the request may be retried"),
    )
}

/// 409 `ManagedInstanceIsBusy` with `Retry-After`.
pub fn arm_busy(retry_after: Duration) -> PortError {
    arm(
        409,
        "ManagedInstanceIsBusy",
        "the managed instance is busy with another operation; retry after the Retry-After interval",
    )
    .with_retry_after(retry_after)
}

/// 409 `ConflictingServerOperation` with `Retry-After`: another operation on `target` (the
/// link) is still running.
pub fn arm_conflict(target: impl std::fmt::Display, retry_after: Duration) -> PortError {
    arm(
        409,
        "ConflictingServerOperation",
        format!("An operation on '{target}' is in progress; retry after the Retry-After interval."),
    )
    .with_retry_after(retry_after)
}

/// A dropped connection to SQL Server.
pub fn connection_dropped() -> PortError {
    PortError::transient(
        "io",
        "the connection to SQL Server was closed by the remote host; reconnect and retry",
    )
}

/// The request was executed but its response was lost.
pub fn response_lost() -> PortError {
    PortError::transient(
        "timeout",
        "no response within the timeout; the operation may or may not have been applied",
    )
}
