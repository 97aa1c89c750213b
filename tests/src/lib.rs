//! Integration tests for milink (see `tests/`), and the helpers they share: a link session
//! driven by the real [`Session`] against the simulated Tailspin lab.

use std::sync::Arc;
use std::time::Duration;

use milink_core::lifecycle::{AssessmentOutcome, Side};
use milink_core::names::{DatabaseName, SqlVersion};
use milink_core::ports::Journal;
use milink_core::sim::{
    Call, Fault, InjectedError, InstanceCall, Lab, Sim, SimConfig, SimManagedInstance,
    SimSqlServer, Trigger, WorkloadRedirect, WorkloadSpec,
};
use milink_core::{Session, SessionError, SessionOptions};

pub mod dst;
pub mod route;
pub mod scenarios;

/// A session over the simulated servers.
pub type SimSession<J> = Session<SimSqlServer, SimManagedInstance, J>;

/// Session options for reproducible runs.
pub fn options(seed: u64) -> SessionOptions {
    SessionOptions {
        seed,
        event_capacity: 4096,
        ..SessionOptions::default()
    }
}

/// The Tailspin lab with `seed`.
pub fn lab(seed: u64) -> Lab {
    lab_with(SimConfig::with_seed(seed))
}

/// The Tailspin lab with a configuration.
pub fn lab_with(config: SimConfig) -> Lab {
    match Lab::tailspin_with(config) {
        Ok(lab) => lab,
        Err(e) => panic!("the lab's names are valid: {e}"),
    }
}

/// SQL Server 2019 CU20: the link is one-way (no failback, `failoverMode None`).
pub const SQL_2019_CU20: SqlVersion = SqlVersion::new(15, 0, 4312, 2);
/// SQL Server 2022 CU12: two-way, but without T-SQL `FAILOVER` on the DAG (CU13), so planned
/// failovers go through ARM.
pub const SQL_2022_CU12: SqlVersion = SqlVersion::new(16, 0, 4115, 5);

/// The Tailspin lab with TailspinSql running `version`.
pub fn lab_on(version: SqlVersion, config: SimConfig) -> Lab {
    let built = Lab::tailspin_topology(config.start).and_then(|mut topology| {
        topology.source.version = version;
        let database = DatabaseName::new(Lab::TOYSTORE)?;
        Lab::from_topology(topology, config, &database)
    });
    match built {
        Ok(lab) => lab,
        Err(e) => panic!("the lab's names are valid: {e}"),
    }
}

/// Makes the lab's first ARM `failover` call fail for good, as the service's 409
/// `DistributedAvailabilityGroupSetRoleFailed` does.
pub fn fail_first_arm_failover(lab: &Lab) {
    lab.sim.inject(
        Trigger::OnCall {
            call: Call::Instance(InstanceCall::Failover),
            nth: 1,
        },
        Fault::Fail(InjectedError {
            code: "arm:409:DistributedAvailabilityGroupSetRoleFailed".to_owned(),
            message: "Set role failed (injected)".to_owned(),
            transient: false,
            retry_after: None,
        }),
    );
}

/// A new link session for the lab's ToyStore link, writing `journal`.
pub fn create<J: Journal + 'static>(
    lab: &Lab,
    journal: J,
    options: SessionOptions,
) -> Result<SimSession<J>, SessionError> {
    Ok(Session::create(
        lab.spec.clone(),
        Arc::new(lab.sim.sql_server()),
        Arc::new(lab.sim.managed_instance()),
        journal,
        Arc::new(lab.sim.clock()),
        options,
    )?
    .with_redirect_hook(Arc::new(WorkloadRedirect::new(lab.sim.clone()))))
}

/// The session of the same link, reopened from its journal.
pub fn resume<J: Journal + 'static>(
    sim: &Sim,
    journal: J,
    options: SessionOptions,
) -> Result<SimSession<J>, SessionError> {
    Ok(Session::resume(
        journal,
        Arc::new(sim.sql_server()),
        Arc::new(sim.managed_instance()),
        Arc::new(sim.clock()),
        options,
    )?
    .with_redirect_hook(Arc::new(WorkloadRedirect::new(sim.clone()))))
}

/// The readiness verdict of a ready database.
pub fn ready() -> AssessmentOutcome {
    AssessmentOutcome {
        blockers: Vec::new(),
    }
}

/// Starts the application's workload on `side`.
pub fn workload(lab: &Lab, side: Side, tps: f64) {
    lab.sim.start_workload(WorkloadSpec {
        database: lab.database.clone(),
        target: side,
        transactions_per_second: tps,
        max_rows_per_transaction: 4,
    });
}

/// Lets `d` of virtual time pass.
pub fn pass(lab: &Lab, d: Duration) {
    lab.sim.advance(d);
}
