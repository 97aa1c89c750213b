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
//!     FailoverMode, LinkSpec, MachineOptions, SeedingMode, Side, SourceSpec, TargetSpec,
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
    AssessmentOutcome, AvailabilityMode, Command, CutoverOptions, DatabaseView, Effect,
    FailoverKind, FullBackup, Input, InstanceOp, LinkObservation, LinkSpec, Machine, Observation,
    Operation, Phase, Probe, Rejected, ReplicaRole, Side, SideView, SourceOp, SpecError, StepError,
    SyncHealth, SyncState,
};
use crate::names::{InstanceId, LinkName, Lsn};
use crate::secret::Secret;
use crate::sqlserver::{RenderContext, RenderError};
use crate::time::Timestamp;
use crate::tsql::{self, Batch};

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
            PlanStep::Arm { .. } | PlanStep::Redirect { .. } => Vec::new(),
        })
    }

    /// Every ARM request in order, with the operation it came from.
    pub fn requests(&self) -> impl Iterator<Item = (&InstanceOp, &ArmRequest)> {
        self.steps().filter_map(|(_, step)| match step {
            PlanStep::Arm { op, request, .. } => Some((op, request)),
            PlanStep::Sql { .. } | PlanStep::Redirect { .. } => None,
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

/// A [`RenderContext`] of labelled placeholders: [`PLACEHOLDER_MASTER_KEY_PASSWORD`] and the
/// Azure root CAs the docs name ([`tsql::azure_root_cas`]) with empty certificate bytes.
pub fn placeholder_context() -> RenderContext {
    RenderContext {
        master_key_password: Secret::new(PLACEHOLDER_MASTER_KEY_PASSWORD),
        root_cas: tsql::azure_root_cas()
            .into_iter()
            .map(|(name, _)| (name, Vec::new()))
            .collect(),
    }
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

/// Drives the machine and collects what it issues.
struct Planner<'a> {
    machine: Machine,
    now: Timestamp,
    world: Scripted,
    ctx: &'a RenderContext,
    instance: InstanceId,
    stages: Vec<Stage>,
}

impl Planner<'_> {
    /// Sends `command` and answers until the machine reaches the operation's goal, then answers
    /// what the steady state still has in flight (its first reading).
    fn run(&mut self, operation: Operation, command: Command) -> Result<(), PlanError> {
        self.feed(operation, Input::Command(command))?;
        let mut inputs = 0;
        loop {
            let reached = operation.reached(self.machine.state());
            let next = self.machine.in_flight().into_iter().next();
            if inputs >= MAX_INPUTS_PER_OPERATION {
                return Err(PlanError::NoProgress {
                    operation,
                    phase: self.machine.state().phase(),
                });
            }
            inputs += 1;
            match (
                next.map(|e| {
                    let step = e.step();
                    (e, step)
                }),
                reached,
            ) {
                (Some((effect, step)), _) => {
                    let result = Ok(self.world.answer(&effect, self.now));
                    self.feed(operation, Input::Observed { step, result })?;
                }
                (None, true) => return Ok(()),
                (None, false) => match self.machine.deadline() {
                    Some(deadline) => {
                        self.now = self.now.max(deadline);
                        self.feed(operation, Input::Tick)?;
                    }
                    None => {
                        return Err(PlanError::Stuck {
                            operation,
                            phase: self.machine.state().phase(),
                        });
                    }
                },
            }
            if let Some((phase, error)) = self.machine.state().failure() {
                return Err(PlanError::Failed {
                    operation,
                    phase,
                    error: error.clone(),
                });
            }
        }
    }

    /// Hands one input to the machine and records the steps it issues under the state it is in
    /// afterwards (the state that issued them).
    fn feed(&mut self, operation: Operation, input: Input) -> Result<(), PlanError> {
        let step =
            self.machine
                .handle(input, self.now)
                .map_err(|rejected| PlanError::Rejected {
                    operation,
                    rejected,
                })?;
        let phase = self.machine.state().phase();
        let current = self.stages.last().map(|s| (s.operation, s.phase));
        if current != Some((operation, phase)) {
            self.stages.push(Stage {
                operation,
                phase,
                steps: Vec::new(),
            });
        }
        for effect in step.effects {
            let planned = match effect {
                Effect::Source { op, .. } => {
                    let batches = op.render(self.ctx).map_err(|error| PlanError::Render {
                        op: Box::new(op.clone()),
                        error,
                    })?;
                    PlanStep::Sql { op, batches }
                }
                Effect::Instance { op, .. } => {
                    let request = arm::request(&op, &self.instance);
                    let url = request.url(arm::MANAGEMENT_ENDPOINT);
                    PlanStep::Arm { op, request, url }
                }
                Effect::Redirect { primary, .. } => PlanStep::Redirect { primary },
                Effect::PollOperation { .. } | Effect::Probe { .. } => {
                    continue;
                }
            };
            if let Some(stage) = self.stages.last_mut() {
                stage.steps.push(planned);
            }
        }
        Ok(())
    }
}

/// Both servers as the plan imagines them: every call succeeds at once, and the link reads as
/// the calls answered so far left it.
struct Scripted {
    databases: Vec<crate::names::DatabaseName>,
    source_role: ReplicaRole,
    instance_role: ReplicaRole,
    source_mode: AvailabilityMode,
    instance_mode: AvailabilityMode,
    /// The link resource exists on the instance (until its DELETE).
    instance_link: bool,
    /// The DAG exists on SQL Server (until it is dropped).
    source_dag: bool,
}

fn role_of(primary: bool) -> ReplicaRole {
    if primary {
        ReplicaRole::Primary
    } else {
        ReplicaRole::Secondary
    }
}

impl Scripted {
    fn new(spec: &LinkSpec) -> Scripted {
        let sql_primary = spec.initial_primary == Side::SqlServer;
        Scripted {
            databases: spec.databases.clone(),
            source_role: role_of(sql_primary),
            instance_role: role_of(!sql_primary),
            source_mode: AvailabilityMode::AsynchronousCommit,
            instance_mode: AvailabilityMode::AsynchronousCommit,
            instance_link: true,
            source_dag: true,
        }
    }

    /// The successful answer to `effect` at `now`, after applying what it changes.
    fn answer(&mut self, effect: &Effect, now: Timestamp) -> Observation {
        match effect {
            Effect::Source { op, .. } => match op {
                SourceOp::ExportCertificatePublicKey { .. } => {
                    return Observation::PublicKey(PLACEHOLDER_SQL_SERVER_CERTIFICATE.to_vec());
                }
                SourceOp::SetAvailabilityMode { mode, .. } => self.source_mode = *mode,
                SourceOp::Failover { .. } => self.swap_roles(),
                SourceOp::ForceFailover { .. } => {
                    self.source_role = ReplicaRole::Primary;
                    self.instance_role = ReplicaRole::Secondary;
                }
                SourceOp::SetRoleSecondary { .. } => self.source_role = ReplicaRole::Secondary,
                SourceOp::DropDistributedAvailabilityGroup { .. } => self.source_dag = false,
                SourceOp::EnsureMasterKey
                | SourceOp::EnsureEndpointCertificate { .. }
                | SourceOp::EnsureMirroringEndpoint { .. }
                | SourceOp::ImportInstanceCertificate { .. }
                | SourceOp::EnsureRootCaTrust
                | SourceOp::CreateAvailabilityGroup { .. }
                | SourceOp::GrantCreateAnyDatabase { .. }
                | SourceOp::CreateDistributedAvailabilityGroup { .. }
                | SourceOp::DropAvailabilityGroup { .. } => {}
            },
            Effect::Instance { op, .. } => match op {
                InstanceOp::GetEndpointCertificate => {
                    return Observation::PublicKey(PLACEHOLDER_INSTANCE_CERTIFICATE.to_vec());
                }
                InstanceOp::SetReplicationMode { mode, .. } => self.instance_mode = *mode,
                InstanceOp::Failover { .. } => self.swap_roles(),
                InstanceOp::SetRole { role, .. } => {
                    self.instance_role = role_of(*role == Side::ManagedInstance);
                }
                InstanceOp::DeleteLink { .. } => self.instance_link = false,
                InstanceOp::PutServerTrustCertificate { .. }
                | InstanceOp::PutLink { .. }
                | InstanceOp::DeleteServerTrustCertificate { .. } => {}
            },
            Effect::Probe {
                probe: Probe::Link, ..
            } => return Observation::Link(self.link()),
            Effect::Probe {
                probe: Probe::FirstFullBackups,
                ..
            } => {
                return Observation::FullBackups(
                    self.databases
                        .iter()
                        .map(|database| FullBackup {
                            database: database.clone(),
                            finished: Some(now),
                        })
                        .collect(),
                );
            }
            Effect::PollOperation { .. } | Effect::Redirect { .. } => {}
        }
        Observation::Done
    }

    fn swap_roles(&mut self) {
        std::mem::swap(&mut self.source_role, &mut self.instance_role);
    }

    /// Both sides' view: every database SYNCHRONIZED and HEALTHY with the same hardened LSN.
    fn link(&self) -> LinkObservation {
        let lsn = Lsn::new(PLAN_LSN).unwrap_or_default();
        let side = |exists: bool, role: ReplicaRole, mode: AvailabilityMode| {
            if !exists {
                return SideView::unknown();
            }
            SideView {
                exists,
                role: Some(role),
                mode: Some(mode),
                partner_mode: None,
                connected: true,
                databases: self
                    .databases
                    .iter()
                    .map(|name| DatabaseView {
                        name: name.clone(),
                        sync_state: Some(SyncState::Synchronized),
                        health: SyncHealth::Healthy,
                        last_hardened_lsn: Some(lsn),
                        end_of_log_lsn: Some(lsn),
                        partner: None,
                        last_commit_lsn: Some(lsn),
                        seeding_percent: None,
                        log_send_queue_kb: Some(0),
                        redo_queue_kb: Some(0),
                        lag_seconds: Some(0),
                        last_error: None,
                        replica_state: None,
                    })
                    .collect(),
                version: None,
                update_policy: None,
                failover_mode: None,
            }
        };
        LinkObservation {
            source: side(self.source_dag, self.source_role, self.source_mode),
            instance: side(self.instance_link, self.instance_role, self.instance_mode),
            unreachable: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::{FailoverMode, LinkProperties, SeedingMode};
    use std::time::Duration;

    use crate::names::{CertificateName, DatabaseName, LinkMode, SqlVersion};
    use crate::test_support::spec;

    const PASSWORD: &str = "Str0ng!Passw0rd-never-shown";

    fn cutover(drop_availability_group: bool) -> Journey {
        Journey::Cutover(CutoverOptions {
            drop_availability_group,
        })
    }

    /// One label per step: the operation's variant name, or `Redirect(side)`.
    fn labels(plan: &Plan) -> Vec<String> {
        plan.steps()
            .map(|(_, step)| match step {
                PlanStep::Sql { op, .. } => variant(&format!("{op:?}")),
                PlanStep::Arm { op, .. } => variant(&format!("{op:?}")),
                PlanStep::Redirect { primary } => format!("Redirect({primary:?})"),
            })
            .collect()
    }

    fn variant(debug: &str) -> String {
        debug
            .split(|c: char| !c.is_alphanumeric())
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    fn phases(plan: &Plan) -> Vec<(Operation, Phase)> {
        plan.stages.iter().map(|s| (s.operation, s.phase)).collect()
    }

    fn position(plan: &Plan, label: &str) -> usize {
        labels(plan)
            .iter()
            .position(|l| l == label)
            .unwrap_or_else(|| panic!("{label} missing: {:?}", labels(plan)))
    }

    const CREATE: [&str; 11] = [
        "EnsureMasterKey",
        "EnsureEndpointCertificate",
        "EnsureMirroringEndpoint",
        "ExportCertificatePublicKey",
        "PutServerTrustCertificate",
        "GetEndpointCertificate",
        "ImportInstanceCertificate",
        "EnsureRootCaTrust",
        "CreateAvailabilityGroup",
        "CreateDistributedAvailabilityGroup",
        "PutLink",
    ];

    #[test]
    fn the_create_plan_prepares_sql_server_exchanges_trust_and_joins_the_instance_in_order() {
        let plan = plan(&spec(), &Journey::Create).unwrap();
        assert_eq!(labels(&plan), CREATE);
        assert_eq!(plan.len(), 11);
        assert_eq!(plan.final_phase, Phase::Replicating);
        assert!(plan.placeholders);
        let start = |phase| (Operation::Start, phase);
        assert_eq!(
            phases(&plan),
            [
                (Operation::RecordAssessment, Phase::Assessed),
                start(Phase::PreparingSource),
                start(Phase::ExchangingTrust),
                start(Phase::CreatingAg),
                start(Phase::CreatingDag),
                start(Phase::JoiningInstance),
                start(Phase::Seeding),
                start(Phase::Replicating),
            ]
        );
        // Each step sits under the state that issued it.
        let stage_of = |label: &str| {
            let (stage, _) = plan.steps().nth(position(&plan, label)).unwrap();
            stage.phase
        };
        assert_eq!(stage_of("EnsureMirroringEndpoint"), Phase::PreparingSource);
        assert_eq!(stage_of("EnsureRootCaTrust"), Phase::ExchangingTrust);
        assert_eq!(stage_of("PutLink"), Phase::JoiningInstance);
        // The certificates exchanged are the placeholders, each sent to the other side.
        let ops: Vec<&PlanStep> = plan.steps().map(|(_, s)| s).collect();
        assert!(matches!(
            ops[4],
            PlanStep::Arm { op: InstanceOp::PutServerTrustCertificate { name, public_blob }, .. }
                if name == &spec().source.certificate
                    && public_blob == PLACEHOLDER_SQL_SERVER_CERTIFICATE
        ));
        assert!(matches!(
            ops[6],
            PlanStep::Sql { op: SourceOp::ImportInstanceCertificate { der, .. }, .. }
                if der == PLACEHOLDER_INSTANCE_CERTIFICATE
        ));
        // Root CA trust renders one batch per certificate.
        assert_eq!(plan.batches().count(), 9);
        let text = plan.to_string();
        assert!(text.contains("CREATE CERTIFICATE [MicrosoftPKI]"), "{text}");
        assert!(text.contains("CREATE CERTIFICATE [DigiCertPKI]"), "{text}");
        assert!(text.contains("WITH (DISTRIBUTED)"), "{text}");
    }

    #[test]
    fn the_link_put_follows_the_rest_shape() {
        let plan = plan(&spec(), &Journey::Create).unwrap();
        let Some((op, request, url)) = plan.steps().find_map(|(_, step)| match step {
            PlanStep::Arm {
                op: op @ InstanceOp::PutLink { .. },
                request,
                url,
            } => Some((op, request, url)),
            _ => None,
        }) else {
            panic!("no link PUT in {plan}");
        };
        let s = spec();
        assert_eq!(
            op,
            &InstanceOp::PutLink {
                link: s.link.clone(),
                properties: LinkProperties {
                    instance_link_role: Side::SqlServer,
                    instance_ag: s.target.ag.clone(),
                    partner_ag: s.source.ag.clone(),
                    partner_endpoint: "TCP://tailspinsql.corp.example:5022".into(),
                    failover_mode: FailoverMode::Manual,
                    seeding_mode: SeedingMode::Automatic,
                    link_mode: LinkMode::SingleDatabase,
                    databases: s.databases.clone(),
                },
            }
        );
        assert_eq!(request.method, arm::Method::Put);
        assert_eq!(request.api_version, arm::API_VERSION);
        assert_eq!(
            url,
            "https://management.azure.com/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-tailspin/providers/Microsoft.Sql/managedInstances/tailspin-mi/distributedAvailabilityGroups/ToyStoreLink?api-version=2025-01-01"
        );
        let p = &request.body.as_ref().unwrap()["properties"];
        assert_eq!(p["instanceLinkRole"], "Secondary");
        assert_eq!(p["instanceAvailabilityGroupName"], "AG_ToyStore_MI");
        assert_eq!(p["partnerAvailabilityGroupName"], "AG_ToyStore");
        assert_eq!(p["partnerEndpoint"], "TCP://tailspinsql.corp.example:5022");
        assert_eq!(p["failoverMode"], "Manual");
        assert_eq!(p["seedingMode"], "Automatic");
        assert_eq!(p["databases"][0]["databaseName"], "ToyStore");
        assert!(p.get("linkMode").is_none());
    }

    #[test]
    fn the_failover_plan_switches_to_sync_fails_over_and_redirects() {
        let plan = plan(&spec(), &Journey::Failover).unwrap();
        let mut expected: Vec<&str> = CREATE.to_vec();
        expected.extend([
            "SetAvailabilityMode",
            "SetReplicationMode",
            "Failover",
            "Redirect(ManagedInstance)",
        ]);
        assert_eq!(labels(&plan), expected);
        assert_eq!(plan.final_phase, Phase::FailedOver);
        let tail: Vec<&PlanStep> = plan.steps().map(|(_, s)| s).skip(11).collect();
        let sync = AvailabilityMode::SynchronousCommit;
        assert!(matches!(
            tail[0],
            PlanStep::Sql { op: SourceOp::SetAvailabilityMode { mode, .. }, .. } if *mode == sync
        ));
        assert!(matches!(
            tail[1],
            PlanStep::Arm { op: InstanceOp::SetReplicationMode { mode, .. }, request, .. }
                if *mode == sync
                    && request.body.as_ref().unwrap()["properties"]["replicationMode"] == "Sync"
        ));
        // SQL Server 2022 CU13 fails over with T-SQL on the primary.
        assert!(matches!(
            tail[2],
            PlanStep::Sql { op: SourceOp::Failover { dag }, batches }
                if dag == &spec().link && batches[0].display_sql().contains("FAILOVER;")
        ));
        let failover = plan
            .stages
            .iter()
            .find(|s| s.operation == Operation::Failover && s.phase == Phase::FailingOver)
            .unwrap();
        assert_eq!(failover.steps.len(), 1);
        // The gate states are passed through, with readings only.
        for phase in [Phase::CatchingUp, Phase::VerifyingRoles] {
            let stage = plan.stages.iter().find(|s| s.phase == phase).unwrap();
            assert!(stage.steps.is_empty(), "{phase:?}");
        }
    }

    #[test]
    fn before_cu13_the_failover_is_the_arm_request() {
        let mut s = spec();
        s.source.version = SqlVersion::parse("16.0.4100.1").unwrap();
        let plan = plan(&s, &Journey::Failover).unwrap();
        let (op, request) = plan
            .requests()
            .find(|(op, _)| matches!(op, InstanceOp::Failover { .. }))
            .unwrap();
        assert!(matches!(
            op,
            InstanceOp::Failover {
                failover_type: crate::lifecycle::ArmFailoverType::Planned,
                ..
            }
        ));
        assert_eq!(request.method, arm::Method::Post);
        assert!(
            request
                .path
                .ends_with("/distributedAvailabilityGroups/ToyStoreLink/failover")
        );
        assert_eq!(request.body.as_ref().unwrap()["failoverType"], "Planned");
    }

    #[test]
    fn the_failback_plan_fails_over_and_back() {
        let plan = plan(&spec(), &Journey::Failback).unwrap();
        assert_eq!(plan.final_phase, Phase::Replicating);
        let labels = labels(&plan);
        assert_eq!(labels.len(), 19, "{labels:?}");
        assert_eq!(labels.iter().filter(|l| *l == "Failover").count(), 2);
        assert_eq!(
            labels[15..],
            [
                "SetAvailabilityMode",
                "SetReplicationMode",
                "Failover",
                "Redirect(SqlServer)"
            ]
        );
        // The failback is issued on the instance, now primary.
        assert!(matches!(
            plan.steps().nth(17).unwrap(),
            (stage, PlanStep::Arm { op: InstanceOp::Failover { .. }, .. })
                if stage.operation == Operation::Failback
        ));
    }

    #[test]
    fn the_cutover_plan_ends_with_the_link_delete_and_the_drops() {
        let plan = plan(&spec(), &cutover(true)).unwrap();
        assert_eq!(plan.final_phase, Phase::Completed);
        let labels = labels(&plan);
        assert_eq!(labels.len(), 18, "{labels:?}");
        assert_eq!(
            labels[labels.len() - 4..],
            [
                "Redirect(ManagedInstance)",
                "DeleteLink",
                "DropDistributedAvailabilityGroup",
                "DropAvailabilityGroup"
            ]
        );
        let delete = plan
            .requests()
            .find(|(op, _)| matches!(op, InstanceOp::DeleteLink { .. }))
            .unwrap()
            .1;
        assert_eq!(delete.method, arm::Method::Delete);
        assert!(
            delete
                .path
                .ends_with("/distributedAvailabilityGroups/ToyStoreLink")
        );
        assert_eq!(delete.body, None);
        let last = plan
            .stages
            .iter()
            .rev()
            .find(|s| !s.steps.is_empty())
            .unwrap();
        assert_eq!(last.phase, Phase::DroppingAg);
        // Without the AG drop, the DAG drop is last.
        let kept = super::plan(&spec(), &cutover(false)).unwrap();
        assert_eq!(
            self::labels(&kept).last().map(String::as_str),
            Some("DropDistributedAvailabilityGroup")
        );
        assert!(
            kept.to_string()
                .contains("DROP AVAILABILITY GROUP [ToyStoreLink];")
        );
    }

    #[test]
    fn a_one_way_cutover_fences_sql_server_before_the_delete_and_never_fails_over() {
        let mut s = spec();
        s.source.version = SqlVersion::parse("15.0.4312.2").unwrap();
        s.failover_mode = FailoverMode::None;
        let plan = plan(&s, &cutover(false)).unwrap();
        assert_eq!(plan.final_phase, Phase::Completed);
        let labels = labels(&plan);
        assert!(!labels.iter().any(|l| l == "Failover"), "{labels:?}");
        let at = |l: &str| position(&plan, l);
        assert!(at("SetAvailabilityMode") < at("SetRoleSecondary"));
        assert!(at("SetRoleSecondary") < at("DeleteLink"));
        assert!(at("DeleteLink") < at("Redirect(ManagedInstance)"));
        assert!(at("Redirect(ManagedInstance)") < at("DropDistributedAvailabilityGroup"));
        assert!(plan.stages.iter().any(|st| st.phase == Phase::Fencing));
    }

    #[test]
    fn an_instance_primary_link_grants_create_any_database() {
        let mut s = spec();
        s.initial_primary = Side::ManagedInstance;
        let plan = plan(&s, &Journey::Create).unwrap();
        assert_eq!(plan.final_phase, Phase::Replicating);
        let at = |l: &str| position(&plan, l);
        assert!(at("CreateAvailabilityGroup") < at("GrantCreateAnyDatabase"));
        assert!(at("GrantCreateAnyDatabase") < at("PutLink"));
        let (_, put) = plan.requests().last().unwrap();
        assert_eq!(
            put.body.as_ref().unwrap()["properties"]["instanceLinkRole"],
            "Primary"
        );
    }

    #[test]
    fn a_multi_database_link_uses_the_preview_api_version() {
        let mut s = spec();
        s.mode = LinkMode::MultiDatabase;
        s.link = crate::names::LinkName::new("toystore-link").unwrap();
        s.source.version = SqlVersion::parse("17.0.4025.3").unwrap();
        s.target.update_policy = crate::names::UpdatePolicy::SqlServer2025;
        s.databases.push(DatabaseName::new("Orders").unwrap());
        let plan = plan(&s, &Journey::Failover).unwrap();
        let (_, put) = plan
            .requests()
            .find(|(op, _)| matches!(op, InstanceOp::PutLink { .. }))
            .unwrap();
        assert_eq!(put.api_version, arm::PREVIEW_API_VERSION);
        assert_eq!(
            put.body.as_ref().unwrap()["properties"]["databases"][1]["databaseName"],
            "Orders"
        );
    }

    #[test]
    fn the_master_key_password_never_shows() {
        let ctx = RenderContext {
            master_key_password: Secret::new(PASSWORD),
            root_cas: vec![(
                CertificateName::new("MicrosoftPKI").unwrap(),
                vec![0x30, 0x82],
            )],
        };
        for journey in [Journey::Create, Journey::Failback, cutover(true)] {
            let plan = plan_with(&spec(), &journey, &ctx).unwrap();
            assert!(!plan.placeholders);
            for (_, batch) in plan.batches() {
                assert!(!batch.display_sql().contains(PASSWORD));
                assert!(!batch.to_string().contains(PASSWORD));
            }
            assert!(!plan.to_string().contains(PASSWORD));
            assert!(!format!("{plan:?}").contains(PASSWORD));
            assert!(!serde_json::to_string(&plan).unwrap().contains(PASSWORD));
            // The batch the adapter sends carries it.
            let (op, key) = plan.batches().next().unwrap();
            assert_eq!(op, &SourceOp::EnsureMasterKey);
            assert!(key.is_sensitive() && key.expose_sql().contains(PASSWORD));
            assert!(key.display_sql().contains("PASSWORD = N'***'"));
        }
        // The placeholders are labelled as such, and the placeholder is redacted too.
        let plan = plan(&spec(), &Journey::Create).unwrap();
        assert!(plan.to_string().contains("are placeholders"));
        assert!(!plan.to_string().contains(PLACEHOLDER_MASTER_KEY_PASSWORD));
    }

    #[test]
    fn the_plan_serializes_for_json_and_python() {
        let plan = plan(&spec(), &cutover(true)).unwrap();
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(json["link"], "ToyStoreLink");
        assert_eq!(json["final_phase"], "Completed");
        assert_eq!(json["journey"]["Cutover"]["drop_availability_group"], true);
        let first = &json["stages"][1];
        assert_eq!(first["operation"], "Start");
        assert_eq!(first["phase"], "PreparingSource");
        assert_eq!(first["steps"][0]["kind"], "sql");
        assert_eq!(first["steps"][0]["op"], "EnsureMasterKey");
        assert!(
            first["steps"][0]["batches"][0]["sql"]
                .as_str()
                .unwrap()
                .contains("N'***'")
        );
        let arm = json["stages"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["steps"].as_array().unwrap())
            .find(|s| s["kind"] == "arm")
            .unwrap();
        assert_eq!(arm["request"]["method"], "PUT");
        assert_eq!(arm["request"]["api_version"], "2025-01-01");
        assert!(
            arm["url"]
                .as_str()
                .unwrap()
                .starts_with("https://management.azure.com/")
        );
        let redirect = json["stages"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["steps"].as_array().unwrap())
            .find(|s| s["kind"] == "redirect")
            .unwrap();
        assert_eq!(redirect["primary"], "ManagedInstance");
    }

    #[test]
    fn a_plan_is_the_same_every_time() {
        let a = plan(&spec(), &Journey::Failback).unwrap();
        let b = plan(&spec(), &Journey::Failback).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), b.to_string());
    }

    #[test]
    fn what_cannot_be_planned_is_a_typed_error() {
        // A spec the machine refuses.
        let mut s = spec();
        s.databases.clear();
        assert!(matches!(
            plan(&s, &Journey::Create),
            Err(PlanError::Spec(SpecError::NoDatabases))
        ));
        // No root CA certificate configured.
        let ctx = RenderContext {
            master_key_password: Secret::new(PASSWORD),
            root_cas: Vec::new(),
        };
        assert!(matches!(
            plan_with(&spec(), &Journey::Create, &ctx),
            Err(PlanError::Render {
                op,
                error: RenderError::NoRootCertificates
            }) if *op == SourceOp::EnsureRootCaTrust
        ));
        // A catch-up limit shorter than the stability window: the gate can never open.
        let mut s = spec();
        s.options.stability_window = Duration::from_secs(3600);
        s.options.catch_up_timeout = Duration::from_secs(60);
        match plan(&s, &Journey::Failover) {
            Err(PlanError::Failed {
                operation: Operation::Failover,
                phase: Phase::CatchingUp,
                error,
            }) => assert_eq!(error.code, "timeout"),
            other => panic!("{other:?}"),
        }
        // A failback on a one-way link is refused by the machine.
        let mut s = spec();
        s.source.version = SqlVersion::parse("15.0.4312.2").unwrap();
        s.failover_mode = FailoverMode::None;
        assert!(matches!(
            plan(&s, &Journey::Failback),
            Err(PlanError::Rejected {
                operation: Operation::Failover,
                ..
            })
        ));
    }
}
