//! The pure link state machine: states, inputs, effects and the edges between them.
//!
//! The machine does no I/O, reads no clock and logs nothing. Time comes in as `now`; the next
//! wake-up goes out as `deadline()`. Other tools can embed it alone.
//!
//! - [`spec`]: what a link is ([`LinkSpec`]) and its validation ([`SpecError`]);
//! - [`input`] and [`effect`]: what goes in and what comes out;
//! - [`state`]: the states and their data;
//! - [`machine`]: [`Machine`], the one exhaustive `match (state, input)`;
//! - [`table`]: every edge as data, rendered to `docs/lifecycle.mmd`;
//! - rendering a [`SourceOp`] to T-SQL lives outside the machine, in [`crate::sqlserver`];
//! - [`seeding`]: which seeding failures are final ([`SeedingFailure`]).

pub mod effect;
pub mod engine;
pub mod input;
pub mod machine;
pub mod seeding;
pub mod spec;
pub mod state;
pub mod table;

#[cfg(test)]
mod tests;

pub use crate::names::LinkName;
pub use effect::{
    ArcLinkOp, ArmFailoverType, AvailabilityMode, Effect, InstanceOp, LinkProperties,
    OperationKind, OperationRef, Probe, RoleChangeType, SourceOp, StepId,
};
pub use engine::{Ended, Engine, Event, Handled, OperationStatus, Poll};
pub use input::{
    AssessmentOutcome, Blocker, Command, CutoverOptions, DataLossAcknowledgement, DatabaseView,
    FailoverKind, FullBackup, Input, LinkObservation, Observation, Operation, PartnerReplica,
    ProgressEvent, ReplicaRole, SideView, StepError, SyncHealth, SyncState,
};
pub use machine::{Machine, RejectReason, Rejected, Step};
pub use seeding::SeedingFailure;
#[cfg(feature = "mutations")]
pub use spec::Mutations;
pub use spec::{
    FailoverMode, LinkRoute, LinkSpec, MachineOptions, SEEDING_MARGIN, SeedingMode, Side,
    SourceSpec, SpecError, TargetSpec,
};
pub use state::{
    Abort, AgStep, ArmCall, CancelStep, CatchUpBlocker, DataLoss, FailoverVia, FenceStep, Goal,
    Phase, Plan, PrepareStep, RoleChange, SeedingProgress, StableLsns, State, Steady, Then,
    TrustStep,
};
pub use table::{EDGES, Edge};
