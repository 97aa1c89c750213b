//! What a link is: the spec the caller gives, fixed for the life of the link.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::names::{
    AgName, CertificateName, DatabaseName, EndpointHost, EndpointName, InstanceId, LinkMode,
    LinkName, MiFqdn, ServerName, SqlVersion, TcpPort, UpdatePolicy,
};
use crate::time::Date;

/// One side of the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Side {
    /// The SQL Server instance (on premises or IaaS).
    SqlServer,
    /// The Azure SQL Managed Instance.
    ManagedInstance,
}

impl Side {
    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::SqlServer => Side::ManagedInstance,
            Side::ManagedInstance => Side::SqlServer,
        }
    }
}

/// REST `failoverMode`: whether the link can be reversed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FailoverMode {
    /// Two-way: failover keeps the link and failback is possible (SQL Server 2022/2025 with the
    /// matching update policy).
    Manual,
    /// One-way: failover to Azure only (SQL Server 2016-2019, or a pure migration).
    None,
}

/// REST `seedingMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum SeedingMode {
    /// Automatic seeding (the default).
    #[default]
    Automatic,
    /// Manual seeding ("for supported scenarios").
    Manual,
}

/// How milink reaches SQL Server's side of a link. The machine's states, guards and journal are
/// the same on both routes; only the effects that change SQL Server differ.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum LinkRoute {
    /// T-SQL over TDS: milink runs each step on SQL Server itself (the default, and what every
    /// journal written before routes existed replays).
    #[default]
    Direct,
    /// Azure Arc (`Microsoft.AzureArcData`): the Arc extension on SQL Server's machine creates
    /// the link in one operation (`createManagedInstanceLink`), fails it over
    /// (`failoverMiLink`) and removes it (`deleteMiLink`); milink reads SQL Server's side
    /// through Arc's availability group resources and telemetry.
    Arc {
        /// The Arc-enabled SQL Server instance's resource
        /// (`…/Microsoft.AzureArcData/sqlServerInstances/{name}`).
        instance: crate::arc::ArcInstanceId,
    },
}

impl LinkRoute {
    /// Whether this is the default [`LinkRoute::Direct`] (the spec then omits the field).
    pub fn is_direct(&self) -> bool {
        *self == LinkRoute::Direct
    }

    /// Whether this is the Arc route.
    pub fn is_arc(&self) -> bool {
        matches!(self, LinkRoute::Arc { .. })
    }

    /// The route's name as the plan and the lab show it: `direct` or `arc`.
    pub fn name(&self) -> &'static str {
        match self {
            LinkRoute::Direct => "direct",
            LinkRoute::Arc { .. } => "arc",
        }
    }
}

/// The SQL Server side of the link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceSpec {
    /// `@@SERVERNAME`: the replica name in `CREATE AVAILABILITY GROUP`.
    pub server: ServerName,
    /// The product version (`SERVERPROPERTY('ProductVersion')`), which decides capabilities.
    pub version: SqlVersion,
    /// The address the managed instance uses to reach the mirroring endpoint.
    pub endpoint_host: EndpointHost,
    /// The mirroring endpoint port (5022 by default; other instances on the host need others).
    pub endpoint_port: TcpPort,
    /// The mirroring endpoint name.
    pub endpoint_name: EndpointName,
    /// The endpoint certificate (`Cert_<server>_endpoint` by convention; no `\`).
    pub certificate: CertificateName,
    /// The endpoint certificate's expiry date.
    pub certificate_expiry: Date,
    /// The availability group on SQL Server (one per link in single-database mode).
    pub ag: AgName,
}

impl SourceSpec {
    /// `TCP://host:port` of the mirroring endpoint.
    pub fn endpoint_url(&self) -> String {
        self.endpoint_host.tcp_url(self.endpoint_port)
    }
}

/// The managed instance side of the link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetSpec {
    /// The instance's ARM resource id.
    pub instance: InstanceId,
    /// The instance's VNet-local FQDN (the link only runs over it).
    pub fqdn: MiFqdn,
    /// `instanceAvailabilityGroupName`: the AG name on the managed instance (unique on it).
    pub ag: AgName,
    /// The instance's update policy (`databaseFormat`).
    pub update_policy: UpdatePolicy,
}

/// Timing knobs of the machine. All waits are bounded by one of these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MachineOptions {
    /// How often to probe link state while waiting (seeding, catch-up, role checks), and to
    /// poll a long-running ARM operation after its first poll.
    pub probe_interval: Duration,
    /// How soon an accepted long-running ARM operation is polled the first time (then as each
    /// reply's `Retry-After` says, at least `first_poll` and at most `probe_interval` apart, or
    /// every `probe_interval` without one): an operation that takes 3 s is not waited on for a
    /// whole interval.
    pub first_poll: Duration,
    /// How often the catch-up gate and the role check read both sides: the readings that stand
    /// between the stopped application and the role change, and between the role change and
    /// the redirect, are sub-second.
    pub gate_interval: Duration,
    /// How long `last_hardened_lsn` must stay equal and unchanged on both sides before a
    /// planned failover or cutover proceeds, while the workload on the current primary is not
    /// known to be quiet (client sessions connected, or the port cannot read them).
    pub stability_window: Duration,
    /// The same window once the current primary reported no client session on the link's
    /// databases (and so no open transaction), read after the LSNs were first found equal:
    /// what the window must still cover is a session that connects after that reading, and
    /// any commit it makes moves the LSNs and restarts the window. `None`: the workload is not
    /// read and `stability_window` always applies (what journals of schema version 1 replay).
    pub quiet_stability_window: Option<Duration>,
    /// The quiet window when every reading in it read the managed instance live, over T-SQL
    /// on its endpoint, rather than through ARM, whose view lags the instance (the simulator
    /// lags 2 s; the real lag is not documented). `quiet_stability_window` must outlast that
    /// lag so that a commit in flight shows as a moved LSN before the gate passes; live
    /// readings have no lag, so the window needs to cover only a few readings
    /// (`gate_interval`). Ignored when `quiet_stability_window` is `None`.
    pub live_quiet_stability_window: Duration,
    /// A role change on a link both sides of which are already synchronous (by
    /// [`crate::lifecycle::Command::Prepare`] or an earlier role change) goes straight to the
    /// catch-up gate; `false` always sends the switch (what journals of schema version 1
    /// replay).
    pub skip_synchronous_switch: bool,
    /// Longest wait for the managed instance to join the link (ARM operation).
    pub join_timeout: Duration,
    /// Longest wait for seeding to finish while it reports no progress; with
    /// `seeding_timeout_sized`, the floor of the sized timeout. Set
    /// `seeding_timeout_sized: false` to make it the exact limit (an override).
    pub seeding_timeout: Duration,
    /// Sizes the seeding timeout from the measured rate: each time the slowest database's
    /// seeding percent rises, the phase's deadline becomes at least the seeding's start plus
    /// [`SEEDING_MARGIN`] times the whole seeding at the rate measured up to that percent
    /// (never earlier than before, never later than `seeding_max_timeout` after the start).
    /// A seeding that stops progressing keeps its deadline and times out. A 16 TB database at
    /// 43 GB/h seeds for about 16 days, past any fixed default; one at 84 GB/h of 100 GB keeps
    /// the six days. `false` in journals of schema versions 1 and 2
    /// ([`MachineOptions::as_of_schema_2`]).
    pub seeding_timeout_sized: bool,
    /// The longest a sized seeding timeout grows to, from the seeding's start (90 days: 16 TB
    /// at 8 GB/h).
    pub seeding_max_timeout: Duration,
    /// Longest wait for both sides to reach synchronous commit and equal LSNs.
    pub catch_up_timeout: Duration,
    /// Longest wait for a role change to be confirmed.
    pub failover_timeout: Duration,
    /// Longest wait for the managed instance's first full backup before removing the link.
    pub first_backup_timeout: Duration,
    /// Longest wait for any single other step (T-SQL batch, ARM operation).
    pub step_timeout: Duration,
    /// Guards switched off, to show that the tests fail without them (feature `mutations`,
    /// tests only).
    #[cfg(feature = "mutations")]
    #[serde(skip)]
    pub mutations: Mutations,
}

/// Guards a mutation test switches off (feature `mutations`; never in a real build).
#[cfg(feature = "mutations")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mutations {
    /// The catch-up gate and the fence's check accept unequal LSNs.
    pub skip_lsn_equality: bool,
    /// The catch-up gate passes on the first equal reading (no stability window, one reading).
    pub skip_stability: bool,
    /// The catch-up gate takes the workload as quiet without reading it (the short window
    /// applies while the application still writes).
    pub skip_quiet_check: bool,
}

impl MachineOptions {
    /// When to poll a running ARM operation again after its reply said `Retry-After:
    /// retry_after`: no sooner than `first_poll` (a zero or sub-second hint does not make the
    /// machine spin) and no later than `probe_interval` (a huge hint does not leave an
    /// operation, perhaps a role change, unseen for longer than any other wait reads).
    pub fn poll_after(&self, retry_after: Duration) -> Duration {
        retry_after.max(self.first_poll).min(self.probe_interval)
    }

    /// These options as the machine of journal schema version 1 applied them: the gate read at
    /// `probe_interval`, no workload reading, the switch to synchronous commit always sent. A
    /// journal is replayed with the behaviour it was written with.
    pub fn as_of_schema_1(mut self) -> Self {
        self = self.as_of_schema_2();
        self.gate_interval = self.probe_interval;
        self.quiet_stability_window = None;
        self.skip_synchronous_switch = false;
        self
    }
}

impl MachineOptions {
    /// These options as the machine of journal schema version 2 applied them: the seeding
    /// timeout fixed at `seeding_timeout`.
    pub fn as_of_schema_2(mut self) -> Self {
        self.seeding_timeout_sized = false;
        self
    }
}

/// How many times the duration the measured rate projects a sized seeding timeout allows
/// ([`MachineOptions::seeding_timeout_sized`]): twice, so a rate that halves (parallel links
/// sharing bandwidth, a busier network) still finishes.
pub const SEEDING_MARGIN: u32 = 2;

impl Default for MachineOptions {
    fn default() -> Self {
        MachineOptions {
            probe_interval: Duration::from_secs(5),
            first_poll: Duration::from_secs(1),
            gate_interval: Duration::from_millis(250),
            stability_window: Duration::from_secs(30),
            quiet_stability_window: Some(Duration::from_secs(3)),
            live_quiet_stability_window: Duration::from_secs(1),
            skip_synchronous_switch: true,
            join_timeout: Duration::from_secs(15 * 60),
            seeding_timeout: Duration::from_secs(6 * 24 * 3600),
            seeding_timeout_sized: true,
            seeding_max_timeout: Duration::from_secs(90 * 24 * 3600),
            catch_up_timeout: Duration::from_secs(15 * 60),
            failover_timeout: Duration::from_secs(15 * 60),
            first_backup_timeout: Duration::from_secs(24 * 3600),
            step_timeout: Duration::from_secs(10 * 60),
            #[cfg(feature = "mutations")]
            mutations: Mutations::default(),
        }
    }
}

/// Everything the machine needs to know about one link. Contains no secret: the master key
/// password and credentials live in the adapters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkSpec {
    /// The link name: the distributed availability group and the ARM resource name.
    pub link: LinkName,
    /// SingleDatabase or MultiDatabase.
    pub mode: LinkMode,
    /// The databases the link carries (exactly one in SingleDatabase mode).
    pub databases: Vec<DatabaseName>,
    /// Where the databases live when the link is created.
    pub initial_primary: Side,
    /// Two-way (`Manual`) or one-way (`None`).
    pub failover_mode: FailoverMode,
    /// Automatic or manual seeding.
    pub seeding_mode: SeedingMode,
    /// The SQL Server side.
    pub source: SourceSpec,
    /// The managed instance side.
    pub target: TargetSpec,
    /// DAG `SESSION_TIMEOUT` in seconds (20 in the documented scripts).
    pub session_timeout_s: u16,
    /// Timing knobs.
    pub options: MachineOptions,
    /// How SQL Server's side is reached (absent in journals before routes: direct).
    #[serde(default, skip_serializing_if = "LinkRoute::is_direct")]
    pub route: LinkRoute,
}

/// What is wrong with a [`LinkSpec`]; refused by [`super::Machine::new`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// A two-way link whose instance update policy cannot replicate or fail back to this SQL
    /// Server release (the same rule the failback guard applies to the live servers).
    #[error(
        "a two-way link (FailoverMode::Manual) needs the managed instance update policy to match \
         SQL Server's release, but it is {policy}{}; use FailoverMode::None (one-way) or change \
         the policy",
        match required { Some(r) => format!(" (this release needs {r})"), None => String::new() }
    )]
    TwoWayPolicyMismatch {
        /// The instance's policy.
        policy: UpdatePolicy,
        /// The policy the release needs.
        required: Option<UpdatePolicy>,
    },
    /// The link carries no database.
    #[error("the link carries no database; name at least one")]
    NoDatabases,
    /// SingleDatabase mode carries exactly one database.
    #[error(
        "a SingleDatabase link carries exactly one database, not {count}; use one link per \
         database or LinkMode::MultiDatabase (SQL Server 2022 CU27+ / 2025 CU9+)"
    )]
    SingleDatabaseCount {
        /// How many were given.
        count: usize,
    },
    /// The endpoint certificate's expiry date is not after today: the link would not connect.
    #[error(
        "the endpoint certificate's expiry date {expiry} is not after today ({today}); give a \
         date in the future (a year ahead is usual) and renew the certificate before it passes"
    )]
    CertificateExpiry {
        /// The expiry date given.
        expiry: crate::time::Date,
        /// Today, by the session's clock.
        today: crate::time::Date,
    },
    /// A system database (master, model, msdb, tempdb) cannot join an availability group.
    #[error(
        "{database} is a system database, which SQL Server does not add to an availability \
         group; link user databases only, and script the server-level objects it holds \
         (logins, Agent jobs, linked servers) to the managed instance"
    )]
    SystemDatabase {
        /// The system database named.
        database: DatabaseName,
    },
    /// A database is listed twice.
    #[error("database {database} is listed more than once")]
    DuplicateDatabase {
        /// The repeated database.
        database: DatabaseName,
    },
    /// The link name breaks the MultiDatabase naming rule.
    #[error(transparent)]
    LinkName(#[from] crate::names::NameError),
    /// The SQL Server build cannot carry the link.
    #[error(
        "{release} build {version} does not support the Managed Instance link{}",
        match minimum { Some(m) => format!("; update to {m} or later"), None => String::new() }
    )]
    VersionNotSupported {
        /// The build.
        version: SqlVersion,
        /// Its release name.
        release: &'static str,
        /// The minimum build of that release, if the release supports the link at all.
        minimum: Option<SqlVersion>,
    },
    /// MultiDatabase mode needs SQL Server 2022 or later.
    #[error(
        "LinkMode::MultiDatabase needs SQL Server 2022 CU27+ or 2025 CU9+ (Enterprise or \
         Developer); {version} is older"
    )]
    MultiDatabaseNeedsSql2022 {
        /// The build.
        version: SqlVersion,
    },
    /// MultiDatabase mode with the managed instance as initial primary is not modelled.
    #[error(
        "LinkMode::MultiDatabase with the managed instance as initial primary is not supported; \
         create one SingleDatabase link per database"
    )]
    MultiDatabaseFromInstance,
    /// A two-way link (`FailoverMode::Manual`) needs SQL Server 2022 or 2025.
    #[error(
        "FailoverMode::Manual (two-way) needs SQL Server 2022 or 2025; {release} links are \
         one-way: use FailoverMode::None"
    )]
    TwoWayNotSupported {
        /// The release name.
        release: &'static str,
    },
    /// The build cannot create a link from the managed instance.
    #[error(
        "a link with the managed instance as initial primary needs SQL Server 2022 CU10 \
         (16.0.4095.4) or 2025; {version} cannot"
    )]
    InstancePrimaryNotSupported {
        /// The build.
        version: SqlVersion,
    },
    /// A link from the managed instance must be two-way.
    #[error(
        "a link with the managed instance as initial primary replicates to SQL Server and must \
         be two-way: use FailoverMode::Manual"
    )]
    InstancePrimaryNeedsTwoWay,
    /// A link from the managed instance needs the update policy matching the SQL Server release.
    #[error(
        "a link with the managed instance as initial primary needs the managed instance update \
         policy {}; the instance has {policy}",
        match required { Some(r) => r.to_string(), None => "matching the SQL Server release".to_owned() }
    )]
    InstancePrimaryPolicyMismatch {
        /// The instance's policy.
        policy: UpdatePolicy,
        /// The policy the SQL Server release needs.
        required: Option<UpdatePolicy>,
    },
    /// The DAG session timeout is below the minimum.
    #[error(
        "SESSION_TIMEOUT must be at least 5 seconds (the documented scripts use 20), not {seconds}"
    )]
    SessionTimeoutTooShort {
        /// The given value.
        seconds: u16,
    },
    /// The Arc route creates links whose SQL Server is the initial primary only.
    #[error(
        "the Arc route creates a link from SQL Server to the managed instance only (Arc's \
         migration offers no reverse link); use LinkRoute::Direct for a link whose initial \
         primary is the managed instance"
    )]
    ArcNeedsSqlServerPrimary,
    /// A zero probe interval would make the driver spin.
    #[error("MachineOptions::probe_interval must be greater than zero")]
    ZeroProbeInterval,
}

impl LinkSpec {
    /// Checks the spec against the link's rules and the SQL Server build's capabilities
    /// (milink-facts §1.1, §1.2, §1.9).
    pub fn validate(&self) -> Result<(), SpecError> {
        let version = self.source.version;
        let caps = version.capabilities();
        if !caps.link_supported {
            return Err(SpecError::VersionNotSupported {
                version,
                release: version.release_name(),
                minimum: caps.minimum_build,
            });
        }
        if self.databases.is_empty() {
            return Err(SpecError::NoDatabases);
        }
        if let Some(db) = self
            .databases
            .iter()
            .find(|d| crate::assess::facts::is_system_database(d.as_str()))
        {
            return Err(SpecError::SystemDatabase {
                database: db.clone(),
            });
        }
        for (i, db) in self.databases.iter().enumerate() {
            if self.databases[..i].contains(db) {
                return Err(SpecError::DuplicateDatabase {
                    database: db.clone(),
                });
            }
        }
        match self.mode {
            LinkMode::SingleDatabase => {
                if self.databases.len() != 1 {
                    return Err(SpecError::SingleDatabaseCount {
                        count: self.databases.len(),
                    });
                }
            }
            LinkMode::MultiDatabase => {
                if version.major < 16 {
                    return Err(SpecError::MultiDatabaseNeedsSql2022 { version });
                }
                if self.initial_primary == Side::ManagedInstance {
                    return Err(SpecError::MultiDatabaseFromInstance);
                }
            }
        }
        self.link.check_mode(self.mode)?;
        if self.failover_mode == FailoverMode::Manual && !caps.two_way {
            return Err(SpecError::TwoWayNotSupported {
                release: version.release_name(),
            });
        }
        if self.initial_primary == Side::ManagedInstance {
            if !caps.mi_initial_primary {
                return Err(SpecError::InstancePrimaryNotSupported { version });
            }
            if self.failover_mode != FailoverMode::Manual {
                return Err(SpecError::InstancePrimaryNeedsTwoWay);
            }
            if !caps.failback_allowed_with(self.target.update_policy) {
                return Err(SpecError::InstancePrimaryPolicyMismatch {
                    policy: self.target.update_policy,
                    required: caps.matching_update_policy,
                });
            }
        }
        if self.failover_mode == FailoverMode::Manual
            && !caps.failback_allowed_with(self.target.update_policy)
        {
            return Err(SpecError::TwoWayPolicyMismatch {
                policy: self.target.update_policy,
                required: caps.matching_update_policy,
            });
        }
        if self.session_timeout_s < 5 {
            return Err(SpecError::SessionTimeoutTooShort {
                seconds: self.session_timeout_s,
            });
        }
        if self.options.probe_interval.is_zero() {
            return Err(SpecError::ZeroProbeInterval);
        }
        if self.route.is_arc() && self.initial_primary != Side::SqlServer {
            return Err(SpecError::ArcNeedsSqlServerPrimary);
        }
        Ok(())
    }

    /// The SQL Server build's link capabilities.
    pub fn capabilities(&self) -> crate::names::Capabilities {
        self.source.version.capabilities()
    }

    /// Whether failover keeps the link (two-way).
    pub fn is_two_way(&self) -> bool {
        self.failover_mode == FailoverMode::Manual
    }
}
