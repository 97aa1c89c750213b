//! The pure link state machine: states, inputs, effects and the edges between them.
//!
//! The machine does no I/O, reads no clock and logs nothing. Time comes in as `now`; the next
//! wake-up goes out as `deadline()`. Other tools can embed it alone.

pub mod effect;
pub mod input;
pub mod spec;

pub use crate::names::LinkName;
pub use effect::{
    ArmFailoverType, AvailabilityMode, Effect, InstanceOp, LinkProperties, OperationKind,
    OperationRef, Probe, RoleChangeType, SourceOp, StepId,
};
pub use input::{
    AssessmentOutcome, Command, CutoverOptions, DataLossAcknowledgement, DatabaseView,
    FailoverKind, FullBackup, Input, LinkObservation, Observation, ProgressEvent, ReplicaRole,
    SideView, StepError, SyncHealth, SyncState,
};
pub use spec::{FailoverMode, LinkSpec, MachineOptions, SeedingMode, Side, SourceSpec, TargetSpec};
