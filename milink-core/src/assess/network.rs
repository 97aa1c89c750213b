//! Network reachability as data: what to probe and what a probe found. The probes themselves
//! are I/O and live in [`crate::reach`]; their results become the findings
//! `Link.NetworkMiEndpoint`, `Link.NetworkMiHadrPort` and `Link.LocalEndpointListening`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The managed instance's fixed endpoint port.
pub const MI_ENDPOINT_PORT: u16 = 5022;
/// The range of the managed instance's HadrPort.
pub const HADR_PORT_RANGE: std::ops::RangeInclusive<u16> = 11000..=11999;

/// What a probe checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProbeKind {
    /// SQL Server → managed instance FQDN:5022.
    MiEndpoint,
    /// SQL Server → managed instance node:HadrPort.
    MiHadrPort,
    /// The local database mirroring endpoint listens.
    LocalEndpoint,
    /// Managed instance → SQL Server's endpoint (5022 by default). milink can't run it from
    /// where it runs (beside SQL Server): a result comes from a test run on the managed
    /// instance (Microsoft's NetHelper job, SSMS's Test Connection, Arc's
    /// `MiToBoxNetworkConnectivity`) and is passed in [`crate::assess::AssessOptions::network`].
    MiToSqlServer,
}

/// How a probe ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProbeOutcome {
    /// The TCP connection was accepted.
    Reachable,
    /// The peer refused the connection (nothing listens, or a firewall rejects).
    Refused,
    /// No answer within the timeout (a firewall drops the packets, or no route).
    TimedOut,
    /// The host name did not resolve.
    Unresolved(String),
    /// The port is outside the range the check expects; nothing was sent.
    PortOutOfRange,
    /// Any other error.
    Failed(String),
}

impl fmt::Display for ProbeOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeOutcome::Reachable => f.write_str("reachable"),
            ProbeOutcome::Refused => f.write_str("connection refused"),
            ProbeOutcome::TimedOut => f.write_str("timed out"),
            ProbeOutcome::Unresolved(e) => write!(f, "name did not resolve ({e})"),
            ProbeOutcome::PortOutOfRange => {
                f.write_str("port outside 11000-11999: not a managed instance HadrPort, not probed")
            }
            ProbeOutcome::Failed(e) => write!(f, "failed ({e})"),
        }
    }
}

/// One TCP probe and its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkProbe {
    /// What it checks.
    pub kind: ProbeKind,
    /// Host name or IP.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Result.
    pub outcome: ProbeOutcome,
    /// Time to the result, ms.
    pub elapsed_ms: u64,
}

/// What to probe.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NetworkTargets {
    /// The managed instance FQDN (probed on 5022).
    pub mi_fqdn: Option<String>,
    /// The managed instance node and its HadrPort (from `sys.dm_hadr_fabric_config_parameters`
    /// and the fabric DMVs on the managed instance).
    pub mi_node: Option<(String, u16)>,
    /// The SQL Server host and the mirroring endpoint port.
    pub local_endpoint: Option<(String, u16)>,
}

/// Probe options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkOptions {
    /// Per-connect timeout.
    pub timeout: Duration,
}

impl Default for NetworkOptions {
    fn default() -> Self {
        NetworkOptions {
            timeout: Duration::from_secs(5),
        }
    }
}
