//! The whole plan of a link: every T-SQL batch and ARM request milink would send for a
//! [`LinkSpec`], in order, grouped by the machine state that issues them, before anything runs.
//!
//! [`plan`] drives the real lifecycle [`Machine`] with a scripted responder that answers every
//! effect with success: T-SQL and ARM calls complete at once, each certificate exchange returns a
//! placeholder public key ([`PLACEHOLDER_SQL_SERVER_CERTIFICATE`],
//! [`PLACEHOLDER_INSTANCE_CERTIFICATE`]), every reading of the link passes the gate of the state
//! that asked for it (every database SYNCHRONIZED and HEALTHY, the roles as the role changes
//! answered so far left them, synchronous commit after the mode changes, equal and unchanged
//! `last_hardened_lsn` on both sides), the stability window is let pass with [`Input::Tick`] at
//! [`Machine::deadline`], and the first full backups are present when asked. The plan is
//! therefore the happy path the machine takes; retries, polls of long-running operations and the
//! readings themselves are not part of it.
//!
//! Each [`SourceOp`] is rendered to its batches with [`SourceOp::render`] and each
//! [`InstanceOp`] to its request with [`crate::arm::request`]. What comes from the SQL Server
//! adapter's configuration (the master key password, the Azure root CA certificates) comes from
//! the caller's [`RenderContext`] ([`plan_with`]) or from clearly labelled placeholders
//! ([`plan`], [`placeholder_context`]). A batch that carries the password shows it redacted in
//! `Debug`, `Display` and `Serialize`; only [`Batch::expose_sql`] returns the real text.
//!
//! Pure: no I/O, no clock (the plan runs on its own virtual time), nothing sent.
//!
//! # Example
//!
//! ```
//! use milink_core::lifecycle::{
//!     FailoverMode, LinkRoute, LinkSpec, MachineOptions, SeedingMode, Side, SourceSpec,
//!     TargetSpec,
//! };
//! use milink_core::names::{
//!     AgName, CertificateName, DatabaseName, EndpointHost, EndpointName, InstanceId, LinkMode,
//!     LinkName, MiFqdn, ServerName, SqlVersion, TcpPort, UpdatePolicy,
//! };
//! use milink_core::plan::{Journey, PlanStep, plan};
//! use milink_core::time::Date;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let spec = LinkSpec {
//!     link: LinkName::new("DAG_ToyStore")?,
//!     mode: LinkMode::SingleDatabase,
//!     databases: vec![DatabaseName::new("ToyStore")?],
//!     initial_primary: Side::SqlServer,
//!     failover_mode: FailoverMode::Manual,
//!     seeding_mode: SeedingMode::Automatic,
//!     source: SourceSpec {
//!         server: ServerName::new("TAILSPINSQL")?,
//!         version: SqlVersion::parse("16.0.4125.3")?,
//!         endpoint_host: EndpointHost::new("10.0.1.4")?,
//!         endpoint_port: TcpPort::MIRRORING_DEFAULT,
//!         endpoint_name: EndpointName::new("database_mirroring_endpoint")?,
//!         certificate: CertificateName::new("Cert_TAILSPINSQL_endpoint")?,
//!         certificate_expiry: Date::new(2030, 1, 1)?,
//!         ag: AgName::new("AG_ToyStore")?,
//!     },
//!     target: TargetSpec {
//!         instance: InstanceId::from_parts("sub", "rg", "tailspin-mi")?,
//!         fqdn: MiFqdn::new("tailspin-mi.abc123.database.windows.net")?,
//!         ag: AgName::new("AG_ToyStore_MI")?,
//!         update_policy: UpdatePolicy::SqlServer2022,
//!     },
//!     session_timeout_s: 20,
//!     options: MachineOptions::default(),
//!     route: LinkRoute::Direct,
//! };
//! let plan = plan(&spec, &Journey::Failover)?;
//! // The first step creates the master key; its password never shows.
//! let (_, first) = plan.steps().next().ok_or("empty plan")?;
//! assert!(matches!(first, PlanStep::Sql { .. }));
//! assert!(first.to_string().contains("CREATE MASTER KEY ENCRYPTION BY PASSWORD = N'***'"));
//! // The link PUT, then the planned failover, come later.
//! assert!(plan.to_string().contains("/distributedAvailabilityGroups/DAG_ToyStore?"));
//! assert!(plan.to_string().contains("FAILOVER"));
//! // As JSON for Python and other tools.
//! let json = serde_json::to_value(&plan)?;
//! assert_eq!(json["stages"][1]["phase"], "PreparingSource");
//! # Ok(())
//! # }
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::arm::{self, ArmRequest};
use crate::lifecycle::{
    ArcLinkOp, AssessmentOutcome, AvailabilityMode, Command, CutoverOptions, DatabaseView, Effect,
    FailoverKind, FullBackup, Input, InstanceOp, LinkObservation, LinkRoute, LinkSpec, Machine,
    Observation, Operation, Phase, Probe, Rejected, ReplicaRole, Side, SideView, SourceOp,
    SpecError, StepError, SyncHealth, SyncState,
};
use crate::names::{InstanceId, LinkName, Lsn};
use crate::secret::Secret;
use crate::sqlserver::{RenderContext, RenderError};
use crate::time::Timestamp;
use crate::tsql::Batch;

/// The public key the plan's SQL Server returns when its endpoint certificate is exported: an
/// empty DER `SEQUENCE`, standing in for the real certificate, which only exists at run time.
pub const PLACEHOLDER_SQL_SERVER_CERTIFICATE: &[u8] = &[0x30, 0x00];

/// The public key the plan's managed instance returns for its `DATABASE_MIRRORING` endpoint
/// certificate: an empty DER `SEQUENCE` written with a long-form length, a stand-in like
/// [`PLACEHOLDER_SQL_SERVER_CERTIFICATE`].
pub const PLACEHOLDER_INSTANCE_CERTIFICATE: &[u8] = &[0x30, 0x81, 0x00];

/// The master key password [`placeholder_context`] renders with (shown redacted anyway).
pub const PLACEHOLDER_MASTER_KEY_PASSWORD: &str =
    "<master key password from the SQL Server adapter's configuration>";

/// The most inputs one operation of a plan may take before the plan gives up
/// ([`PlanError::NoProgress`]). The happy path of the longest operation takes a few dozen.
pub const MAX_INPUTS_PER_OPERATION: usize = 10_000;

/// The virtual time a plan starts at (2027-01-15T08:00:00Z); only its differences matter.
const PLAN_START: Timestamp = Timestamp::from_millis(1_800_000_000_000);

/// The `last_hardened_lsn` every database reports on both sides in the plan's readings.
const PLAN_LSN: u128 = 71_000_000_940_810_001;

/// Which paths of the machine to plan. Every journey starts by creating the link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Journey {
    /// Create the link: Draft → Assessed → … → Seeding → Replicating.
    Create,
    /// Create the link, then a planned failover to the other side (→ FailedOver).
    Failover,
    /// Create the link, fail over, then fail back to the initial primary (→ Replicating).
    Failback,
    /// Create the link, then cut over: the link is removed and the DAG (and the AG, if asked)
    /// dropped (→ Completed).
    Cutover(CutoverOptions),
}

impl Journey {
    /// The commands the journey sends, each with the operation it starts, in order.
    pub fn commands(&self) -> Vec<(Operation, Command)> {
        let mut commands = vec![
            (
                Operation::RecordAssessment,
                Command::RecordAssessment(AssessmentOutcome {
                    blockers: Vec::new(),
                }),
            ),
            (Operation::Start, Command::Start),
        ];
        let failover = (
            Operation::Failover,
            Command::Failover(FailoverKind::Planned),
        );
        match self {
            Journey::Create => {}
            Journey::Failover => commands.push(failover),
            Journey::Failback => {
                commands.push(failover);
                commands.push((Operation::Failback, Command::Failback));
            }
            Journey::Cutover(options) => {
                commands.push((Operation::Cutover, Command::Cutover(options.clone())));
            }
        }
        commands
    }
}

/// One request the plan sends, or the redirect of the application.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PlanStep {
    /// T-SQL on SQL Server: the operation and the batches it renders to, in order.
    Sql {
        /// The operation the machine issued.
        op: SourceOp,
        /// Its batches (redacted where they carry a secret, except through
        /// [`Batch::expose_sql`]).
        batches: Vec<Batch>,
    },
    /// An Azure Resource Manager request on the managed instance.
    Arm {
        /// The operation the machine issued.
        op: InstanceOp,
        /// The request (method, path, api-version, body).
        request: ArmRequest,
        /// The full URL on Azure public cloud's [`arm::MANAGEMENT_ENDPOINT`].
        url: String,
    },
    /// An Azure Arc operation on the Arc-enabled SQL Server (the Arc route): one request that
    /// runs several steps inside the Arc extension, which milink does not see.
    Arc {
        /// The operation the machine issued.
        op: ArcLinkOp,
        /// The request (method, path, api-version, body).
        request: ArmRequest,
        /// The full URL on Azure public cloud's [`arm::MANAGEMENT_ENDPOINT`].
        url: String,
    },
    /// The application's redirect hook is called: the workload must now connect to `primary`.
    Redirect {
        /// The side that is primary from here on.
        primary: Side,
    },
}

impl fmt::Display for PlanStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanStep::Sql { batches, .. } => {
                for (i, b) in batches.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(
                        f,
                        "-- [SQL Server] {}\n{}",
                        b.purpose(),
                        b.display_sql().trim_end()
                    )?;
                }
                Ok(())
            }
            PlanStep::Arm { request, url, .. } => {
                write!(f, "-- [Azure Resource Manager]\n{} {url}", request.method)?;
                match &request.body {
                    Some(body) => write!(f, "\n{body}"),
                    None => Ok(()),
                }
            }
            PlanStep::Arc { op, request, url } => {
                write!(
                    f,
                    "-- [Azure Arc: SQL Server through the Arc extension] {}\n{} {url}",
                    op.operation_id(),
                    request.method
                )?;
                match &request.body {
                    Some(body) => write!(f, "\n{body}"),
                    None => Ok(()),
                }
            }
            PlanStep::Redirect { primary } => write!(
                f,
                "-- [application] redirect the workload to the {}",
                match primary {
                    Side::SqlServer => "SQL Server",
                    Side::ManagedInstance => "managed instance",
                }
            ),
        }
    }
}

/// The steps issued while the machine was in one state of one operation, in order. A state
/// without steps (Seeding, CatchingUp, VerifyingRoles: readings only) is listed too, so the
/// stages show every state the journey passes through.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stage {
    /// The operation (command) under way.
    pub operation: Operation,
    /// The machine's state (phase) that issued the steps.
    pub phase: Phase,
    /// The steps, in the order the machine issued them.
    pub steps: Vec<PlanStep>,
}

/// Everything milink would send for a journey of a link, grouped by machine state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// The link.
    pub link: LinkName,
    /// The managed instance the ARM requests address.
    pub instance: InstanceId,
    /// The journey planned.
    pub journey: Journey,
    /// The master key password and root CA certificates are [`placeholder_context`]'s, not the
    /// adapter's configuration.
    pub placeholders: bool,
    /// The states the journey passes through, in order, with what each one sends.
    pub stages: Vec<Stage>,
    /// The state the journey ends in.
    pub final_phase: Phase,
}

impl Plan {
    /// Every step in order, with the stage it belongs to.
    pub fn steps(&self) -> impl Iterator<Item = (&Stage, &PlanStep)> {
        self.stages
            .iter()
            .flat_map(|stage| stage.steps.iter().map(move |step| (stage, step)))
    }

    /// The number of steps (T-SQL operations, ARM requests and redirects).
    pub fn len(&self) -> usize {
        self.stages.iter().map(|s| s.steps.len()).sum()
    }

    /// Whether the plan has no step.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every T-SQL batch in order, with the operation it came from.
    pub fn batches(&self) -> impl Iterator<Item = (&SourceOp, &Batch)> {
        self.steps().flat_map(|(_, step)| match step {
            PlanStep::Sql { op, batches } => batches.iter().map(|b| (op, b)).collect::<Vec<_>>(),
            PlanStep::Arm { .. } | PlanStep::Arc { .. } | PlanStep::Redirect { .. } => Vec::new(),
        })
    }

    /// Every ARM request in order, with the operation it came from.
    pub fn requests(&self) -> impl Iterator<Item = (&InstanceOp, &ArmRequest)> {
        self.steps().filter_map(|(_, step)| match step {
            PlanStep::Arm { op, request, .. } => Some((op, request)),
            PlanStep::Sql { .. } | PlanStep::Arc { .. } | PlanStep::Redirect { .. } => None,
        })
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "-- plan of link {} ({:?}): every T-SQL batch and ARM request, in order",
            self.link, self.journey
        )?;
        if self.placeholders {
            write!(
                f,
                "\n-- the master key password and root CA certificates are placeholders"
            )?;
        }
        let mut operation = None;
        for stage in &self.stages {
            if operation != Some(stage.operation) {
                operation = Some(stage.operation);
                write!(f, "\n\n-- == {}", stage.operation.name())?;
            }
            write!(f, "\n-- state: {}", stage.phase.name())?;
            for step in &stage.steps {
                write!(f, "\n{step}")?;
            }
        }
        write!(f, "\n-- final state: {}", self.final_phase.name())
    }
}

/// Why a plan could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The spec is refused by the machine.
    #[error("the link spec is refused: {0}")]
    Spec(#[from] SpecError),
    /// The machine refused an input of the plan (a command of the journey, an answer, a tick).
    #[error("planning {operation:?}: {rejected}")]
    Rejected {
        /// The operation under way.
        operation: Operation,
        /// The refusal.
        rejected: Rejected,
    },
    /// An operation could not be rendered to T-SQL.
    #[error("planning {op:?}: {error}")]
    Render {
        /// The operation.
        op: Box<SourceOp>,
        /// Why.
        error: RenderError,
    },
    /// The machine failed a phase although every effect succeeded (a phase timeout shorter than
    /// the probe interval or the stability window, for instance).
    #[error("planning {operation:?}: phase {phase:?} failed: {} ({})", error.code, error.message)]
    Failed {
        /// The operation under way.
        operation: Operation,
        /// The phase that failed.
        phase: Phase,
        /// The machine's error.
        error: StepError,
    },
    /// An Arc operation the route could not render.
    #[error("planning {op:?} on the Arc route: {error}")]
    Arc {
        /// The operation.
        op: Box<ArcLinkOp>,
        /// Why it was refused.
        error: crate::ports::PortError,
    },
    /// The machine waits for nothing and has no deadline, yet has not reached the goal.
    #[error("planning {operation:?}: the machine is idle in {phase:?} before reaching the goal")]
    Stuck {
        /// The operation under way.
        operation: Operation,
        /// Where the machine rests.
        phase: Phase,
    },
    /// The operation did not reach its goal within [`MAX_INPUTS_PER_OPERATION`] inputs.
    #[error(
        "planning {operation:?}: no goal after {MAX_INPUTS_PER_OPERATION} inputs (in {phase:?})"
    )]
    NoProgress {
        /// The operation under way.
        operation: Operation,
        /// Where the machine was.
        phase: Phase,
    },
}

/// A [`RenderContext`] with the labelled placeholder [`PLACEHOLDER_MASTER_KEY_PASSWORD`] and the
/// real Azure root CAs the docs name ([`crate::tsql::azure_root_cas`]), as shipped in the crate
/// ([`crate::sqlserver::certs`]).
pub fn placeholder_context() -> RenderContext {
    RenderContext::new(Secret::new(PLACEHOLDER_MASTER_KEY_PASSWORD))
}

/// The plan of `journey` for `spec`, with [`placeholder_context`] for what comes from the SQL
/// Server adapter's configuration. ARM requests address `spec.target.instance`.
pub fn plan(spec: &LinkSpec, journey: &Journey) -> Result<Plan, PlanError> {
    let mut plan = plan_with(spec, journey, &placeholder_context())?;
    plan.placeholders = true;
    Ok(plan)
}

/// The plan of `journey` for `spec`, rendering T-SQL with the caller's `ctx` (the SQL Server
/// adapter's configuration). The batches then carry the real master key password, shown
/// redacted everywhere except [`Batch::expose_sql`].
pub fn plan_with(
    spec: &LinkSpec,
    journey: &Journey,
    ctx: &RenderContext,
) -> Result<Plan, PlanError> {
    let mut planner = Planner {
        machine: Machine::new(spec.clone())?,
        now: PLAN_START,
        world: Scripted::new(spec),
        ctx,
        instance: spec.target.instance.clone(),
        stages: Vec::new(),
    };
    for (operation, command) in journey.commands() {
        planner.run(operation, command)?;
    }
    Ok(Plan {
        link: spec.link.clone(),
        instance: spec.target.instance.clone(),
        journey: journey.clone(),
        placeholders: false,
        final_phase: planner.machine.state().phase(),
        stages: planner.stages,
    })
}

mod planner;
#[cfg(test)]
mod tests;

use planner::{Planner, Scripted};
