//! Input sequences for the pure link machine, recorded by driving a [`Machine`] the way a
//! driver would: every effect is answered with the success an adapter reports, probes with a
//! healthy reading, and time jumps to `deadline()` before each tick.

use std::time::Duration;

use milink_core::lifecycle::{
    AssessmentOutcome, AvailabilityMode, Command, DatabaseView, Effect, FailoverKind, FailoverMode,
    Input, InstanceOp, LinkObservation, LinkSpec, Machine, MachineOptions, Observation, Phase,
    Probe, ReplicaRole, SeedingMode, Side, SideView, SourceOp, SourceSpec, Step, StepId,
    SyncHealth, SyncState, TargetSpec,
};
use milink_core::names::{
    AgName, CertificateName, DatabaseName, EndpointHost, EndpointName, InstanceId, LinkMode,
    LinkName, Lsn, MiFqdn, ServerName, SqlVersion, TcpPort, UpdatePolicy,
};
use milink_core::time::{Date, Timestamp};

use crate::{WorkloadError, ctx};

/// The scenarios' start time (2027-01-15T08:00:00Z).
pub const T0_MS: u64 = 1_800_000_000_000;

/// The Tailspin link: ToyStore from TailspinSql (SQL Server 2022 CU13, two-way, SQL Server 2022
/// update policy) to `tailspin-mi`, default timing options.
pub fn link_spec() -> Result<LinkSpec, WorkloadError> {
    link_spec_with(1)
}

/// [`link_spec`] carrying `databases` databases: ToyStore alone for one, else a MultiDatabase
/// link of `ToyStore0001`, … .
pub fn link_spec_with(databases: usize) -> Result<LinkSpec, WorkloadError> {
    let (mode, databases) = if databases == 1 {
        (
            LinkMode::SingleDatabase,
            vec![ctx("database name", DatabaseName::new("ToyStore"))?],
        )
    } else {
        (
            LinkMode::MultiDatabase,
            (1..=databases)
                .map(|i| {
                    ctx(
                        "database name",
                        DatabaseName::new(format!("ToyStore{i:04}")),
                    )
                })
                .collect::<Result<_, _>>()?,
        )
    };
    Ok(LinkSpec {
        link: ctx("link name", LinkName::new("tailspin-link"))?,
        mode,
        databases,
        initial_primary: Side::SqlServer,
        failover_mode: FailoverMode::Manual,
        seeding_mode: SeedingMode::Automatic,
        source: SourceSpec {
            server: ctx("server name", ServerName::new("TailspinSql"))?,
            version: ctx("version", SqlVersion::parse("16.0.4125.3"))?,
            endpoint_host: ctx("endpoint host", EndpointHost::new("10.0.0.4"))?,
            endpoint_port: TcpPort::MIRRORING_DEFAULT,
            endpoint_name: ctx(
                "endpoint name",
                EndpointName::new("database_mirroring_endpoint"),
            )?,
            certificate: ctx(
                "certificate name",
                CertificateName::new("Cert_TailspinSql_endpoint"),
            )?,
            certificate_expiry: ctx("expiry", Date::new(2030, 1, 1))?,
            ag: ctx("AG name", AgName::new("AG_ToyStore"))?,
        },
        target: TargetSpec {
            instance: ctx(
                "instance id",
                InstanceId::from_parts("sub", "rg", "tailspin-mi"),
            )?,
            fqdn: ctx(
                "FQDN",
                MiFqdn::new("tailspin-mi.a1b2c3d4e5f6.database.windows.net"),
            )?,
            ag: ctx("AG name", AgName::new("AG_ToyStore_MI"))?,
            update_policy: UpdatePolicy::SqlServer2022,
        },
        session_timeout_s: 20,
        options: MachineOptions::default(),
        route: milink_core::lifecycle::LinkRoute::Direct,
    })
}

/// A recorded run: the spec and every accepted input with the time it was handled at, as the
/// journal would hold them.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// The link.
    pub spec: LinkSpec,
    /// The accepted inputs, in order.
    pub inputs: Vec<(Input, Timestamp)>,
}

impl Scenario {
    /// Replays every input into a fresh machine and returns it.
    pub fn replay(&self) -> Result<Machine, WorkloadError> {
        let mut machine = ctx("spec", Machine::new(self.spec.clone()))?;
        for (input, at) in &self.inputs {
            ctx("replayed input", machine.handle(input.clone(), *at))?;
        }
        Ok(machine)
    }
}

/// Drives a machine along a path and records the inputs it accepted.
#[derive(Debug, Clone)]
pub struct Recorder {
    machine: Machine,
    now: Timestamp,
    inputs: Vec<(Input, Timestamp)>,
    lsn: u128,
}

impl Recorder {
    /// A machine for `spec` in Draft at [`T0_MS`].
    pub fn new(spec: LinkSpec) -> Result<Self, WorkloadError> {
        Ok(Recorder {
            machine: ctx("spec", Machine::new(spec))?,
            now: Timestamp::from_millis(T0_MS),
            inputs: Vec::new(),
            lsn: 1_000_000,
        })
    }

    /// The machine as driven so far.
    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// The time of the last input.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// How many inputs were accepted so far.
    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    /// Whether no input was accepted yet.
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    /// The recorded scenario.
    pub fn into_scenario(self) -> Scenario {
        Scenario {
            spec: self.machine.spec().clone(),
            inputs: self.inputs,
        }
    }

    fn phase(&self) -> Phase {
        self.machine.state().phase()
    }

    fn feed(&mut self, input: Input) -> Result<Step, WorkloadError> {
        let step = self
            .machine
            .handle(input.clone(), self.now)
            .map_err(|r| WorkloadError(format!("input refused: {r}")))?;
        self.inputs.push((input, self.now));
        Ok(step)
    }

    fn answer(&mut self, step: StepId, obs: Observation) -> Result<Step, WorkloadError> {
        self.feed(Input::Observed {
            step,
            result: Ok(obs),
        })
    }

    /// The single in-flight effect's step.
    fn pending_step(&self) -> Result<(StepId, Effect), WorkloadError> {
        match self.machine.in_flight().as_slice() {
            [effect] => Ok((effect.step(), effect.clone())),
            other => Err(WorkloadError(format!(
                "expected one effect in flight in {:?}, found {}",
                self.phase(),
                other.len()
            ))),
        }
    }

    fn expect_phase(&self, phase: Phase) -> Result<(), WorkloadError> {
        if self.phase() == phase {
            Ok(())
        } else {
            Err(WorkloadError(format!(
                "expected {phase:?}, the machine is in {:?}",
                self.phase()
            )))
        }
    }

    fn tick_at_deadline(&mut self) -> Result<Step, WorkloadError> {
        let deadline = self
            .machine
            .deadline()
            .ok_or_else(|| WorkloadError(format!("no deadline in {:?}", self.phase())))?;
        if deadline > self.now {
            self.now = deadline;
        }
        self.feed(Input::Tick)
    }

    /// Draft → Replicating, leaving the machine waiting for its next probe.
    pub fn create(&mut self) -> Result<(), WorkloadError> {
        self.feed(Input::Command(Command::RecordAssessment(
            AssessmentOutcome { blockers: vec![] },
        )))?;
        self.feed(Input::Command(Command::Start))?;
        while matches!(
            self.phase(),
            Phase::PreparingSource
                | Phase::ExchangingTrust
                | Phase::CreatingAg
                | Phase::CreatingDag
                | Phase::JoiningInstance
        ) {
            let (step, effect) = self.pending_step()?;
            self.now = self.now.plus(Duration::from_millis(250));
            self.answer(step, default_answer(&effect))?;
        }
        self.expect_phase(Phase::Seeding)?;
        let (step, _) = self.pending_step()?;
        let obs = self.healthy()?;
        self.answer(step, obs)?;
        self.expect_phase(Phase::Replicating)?;
        self.settle()
    }

    /// Answers the probe in flight in a steady state, if any.
    fn settle(&mut self) -> Result<(), WorkloadError> {
        let probing = matches!(
            self.machine.in_flight().as_slice(),
            [Effect::Probe {
                probe: Probe::Link,
                ..
            }]
        );
        if !probing {
            return Ok(());
        }
        let obs = match self.phase() {
            Phase::Replicating => self.healthy()?,
            Phase::FailedOver => self.view(
                Side::ManagedInstance,
                AvailabilityMode::SynchronousCommit,
                0,
            )?,
            _ => return Ok(()),
        };
        let (step, _) = self.pending_step()?;
        self.answer(step, obs)?;
        Ok(())
    }

    /// A driver restart: `Resume`.
    pub fn restart(&mut self) -> Result<(), WorkloadError> {
        self.feed(Input::Resume)?;
        Ok(())
    }

    /// `n` probe cycles in Replicating: Tick at the deadline, then the healthy reading that
    /// answers the probe (two inputs per cycle). LSNs advance each cycle.
    pub fn steady_cycles(&mut self, n: usize) -> Result<(), WorkloadError> {
        for _ in 0..n {
            self.expect_phase(Phase::Replicating)?;
            self.tick_at_deadline()?;
            let (step, _) = self.pending_step()?;
            self.lsn += 1_000;
            let obs = self.healthy()?;
            self.answer(step, obs)?;
        }
        Ok(())
    }

    /// Replicating → planned failover → FailedOver with the managed instance primary, leaving
    /// the machine waiting for its next probe.
    pub fn planned_failover(&mut self) -> Result<(), WorkloadError> {
        self.expect_phase(Phase::Replicating)?;
        self.feed(Input::Command(Command::Failover(FailoverKind::Planned)))?;
        for effect in self.machine.in_flight() {
            let step = effect.step();
            self.answer(step, default_answer(&effect))?;
        }
        self.expect_phase(Phase::CatchingUp)?;
        self.lsn += 1_000;
        let equal = self.view(Side::SqlServer, AvailabilityMode::SynchronousCommit, 0)?;
        let (step, _) = self.pending_step()?;
        self.answer(step, equal.clone())?;
        let mut rounds = 0;
        while self.phase() == Phase::CatchingUp {
            rounds += 1;
            if rounds > 100 {
                return Err(WorkloadError("the catch-up gate never opened".into()));
            }
            // The gate reads the primary's workload once the LSNs are equal: quiet.
            if let [
                Effect::Probe {
                    step,
                    probe: Probe::Workload { .. },
                },
            ] = self.machine.in_flight().as_slice()
            {
                let step = *step;
                self.answer(step, Observation::Workload(Default::default()))?;
                continue;
            }
            self.tick_at_deadline()?;
            let (step, _) = self.pending_step()?;
            self.answer(step, equal.clone())?;
        }
        self.expect_phase(Phase::FailingOver)?;
        let (step, effect) = self.pending_step()?;
        self.answer(step, default_answer(&effect))?;
        self.expect_phase(Phase::VerifyingRoles)?;
        let roles = self.view(
            Side::ManagedInstance,
            AvailabilityMode::SynchronousCommit,
            0,
        )?;
        let (step, _) = self.pending_step()?;
        self.answer(step, roles)?;
        self.expect_phase(Phase::Redirecting)?;
        let (step, effect) = self.pending_step()?;
        self.answer(step, default_answer(&effect))?;
        self.expect_phase(Phase::FailedOver)?;
        self.settle()
    }

    /// Healthy asynchronous replication from SQL Server, the secondary 10 LSNs behind.
    pub fn healthy(&self) -> Result<Observation, WorkloadError> {
        self.view(Side::SqlServer, AvailabilityMode::AsynchronousCommit, 10)
    }

    /// Both sides' view with `primary` PRIMARY and the other side SECONDARY in `mode`; the
    /// secondary's hardened LSN `behind` the primary's (SYNCHRONIZED when equal).
    fn view(
        &self,
        primary: Side,
        mode: AvailabilityMode,
        behind: u128,
    ) -> Result<Observation, WorkloadError> {
        link_view(
            &self.machine.spec().databases,
            primary,
            mode,
            self.lsn,
            behind,
        )
    }
}

/// Both sides' view of a link carrying `databases`: `primary` PRIMARY and SYNCHRONIZED at
/// `lsn`, the other side SECONDARY `behind` LSNs behind (SYNCHRONIZED when equal, else
/// SYNCHRONIZING), both in `mode`, healthy and connected.
pub fn link_view(
    databases: &[DatabaseName],
    primary: Side,
    mode: AvailabilityMode,
    lsn: u128,
    behind: u128,
) -> Result<Observation, WorkloadError> {
    let primary_lsn = ctx("LSN", Lsn::new(lsn))?;
    let secondary_lsn = ctx("LSN", Lsn::new(lsn.saturating_sub(behind)))?;
    let side = |role, state, at: Lsn, on_instance: bool| SideView {
        exists: true,
        role: Some(role),
        mode: Some(mode),
        partner_mode: None,
        version: None,
        update_policy: None,
        failover_mode: None,
        connected: true,
        databases: databases
            .iter()
            .map(|d| DatabaseView {
                name: d.clone(),
                sync_state: Some(state),
                health: SyncHealth::Healthy,
                last_hardened_lsn: Some(at),
                end_of_log_lsn: None,
                partner: None,
                last_commit_lsn: Some(at),
                seeding_percent: None,
                log_send_queue_kb: Some(0),
                redo_queue_kb: Some(0),
                lag_seconds: Some(0),
                last_error: None,
                replica_state: on_instance.then(|| "LinkSynchronizing".to_owned()),
            })
            .collect(),
        live: false,
    };
    let secondary_state = if behind == 0 {
        SyncState::Synchronized
    } else {
        SyncState::Synchronizing
    };
    let on_instance = primary == Side::ManagedInstance;
    let p = side(
        ReplicaRole::Primary,
        SyncState::Synchronized,
        primary_lsn,
        on_instance,
    );
    let s = side(
        ReplicaRole::Secondary,
        secondary_state,
        secondary_lsn,
        !on_instance,
    );
    Ok(Observation::Link(match primary {
        Side::SqlServer => LinkObservation {
            source: p,
            instance: s,
            unreachable: None,
        },
        Side::ManagedInstance => LinkObservation {
            source: s,
            instance: p,
            unreachable: None,
        },
    }))
}

/// The success an adapter reports for a non-probe effect.
pub fn default_answer(effect: &Effect) -> Observation {
    match effect {
        Effect::Source {
            op: SourceOp::ExportCertificatePublicKey { .. },
            ..
        } => Observation::PublicKey(vec![0x30, 0x82, 0x03, 0x1A]),
        Effect::Instance {
            op: InstanceOp::GetEndpointCertificate,
            ..
        } => Observation::PublicKey(vec![0x30, 0x82, 0x02, 0xF4]),
        Effect::Probe {
            probe: Probe::FirstFullBackups,
            ..
        } => Observation::FullBackups(vec![]),
        Effect::Probe {
            probe: Probe::Workload { .. },
            ..
        } => Observation::Workload(Default::default()),
        _ => Observation::Done,
    }
}

/// Create → replicate (one probe cycle) → planned failover → FailedOver: the full two-way path.
pub fn failover_scenario() -> Result<Scenario, WorkloadError> {
    let mut r = Recorder::new(link_spec()?)?;
    r.create()?;
    r.steady_cycles(1)?;
    r.planned_failover()?;
    Ok(r.into_scenario())
}

/// A journal of exactly `total` inputs: create, probe cycles in Replicating (the bulk of any
/// long-lived link's journal: two inputs every `probe_interval`), then a planned failover.
pub fn journal_scenario(total: usize) -> Result<Scenario, WorkloadError> {
    let spec = link_spec()?;
    // Measure the fixed parts once, then fill the middle with cycles.
    let fixed = failover_scenario()?.inputs.len() - 2;
    if total < fixed + 2 {
        return Err(WorkloadError(format!(
            "a journal scenario needs more than its {fixed} fixed inputs, not {total}"
        )));
    }
    let mut r = Recorder::new(spec)?;
    r.create()?;
    if (total - fixed) % 2 == 1 {
        // A driver restart while replicating: nothing was in flight, nothing is re-issued.
        r.restart()?;
    }
    r.steady_cycles((total - fixed) / 2)?;
    r.planned_failover()?;
    if r.len() != total {
        return Err(WorkloadError(format!(
            "the journal scenario has {} inputs, not {total}",
            r.len()
        )));
    }
    Ok(r.into_scenario())
}

/// A machine for [`link_spec_with`]`(databases)` in Replicating, waiting for its next probe, and
/// the time it was left at.
pub fn replicating(databases: usize) -> Result<(Machine, Timestamp), WorkloadError> {
    let mut r = Recorder::new(link_spec_with(databases)?)?;
    r.create()?;
    Ok((r.machine().clone(), r.now()))
}

/// The steady-state hot path: one Tick at the deadline, then the healthy reading that answers
/// the probe it issued. Returns how many effects the two inputs produced.
pub fn probe_cycle(
    machine: &mut Machine,
    now: &mut Timestamp,
    reading: &Observation,
) -> Result<usize, WorkloadError> {
    if let Some(deadline) = machine.deadline()
        && deadline > *now
    {
        *now = deadline;
    }
    let tick = ctx("tick", machine.handle(Input::Tick, *now))?;
    let step = tick
        .effects
        .first()
        .map(Effect::step)
        .ok_or_else(|| WorkloadError("the tick issued no probe".into()))?;
    let observed = ctx(
        "probe reading",
        machine.handle(
            Input::Observed {
                step,
                result: Ok(reading.clone()),
            },
            *now,
        ),
    )?;
    Ok(tick.effects.len() + observed.effects.len())
}

/// The `SourceOp`s a link creation issues, in order, recorded from [`failover_scenario`]'s
/// creation part.
pub fn create_source_ops() -> Result<Vec<SourceOp>, WorkloadError> {
    let spec = link_spec()?;
    let mut machine = ctx("spec", Machine::new(spec.clone()))?;
    let scenario = failover_scenario()?;
    let mut ops = Vec::new();
    for (input, at) in scenario.inputs {
        let step = ctx("replayed input", machine.handle(input, at))?;
        for effect in step.effects {
            if let Effect::Source { op, .. } = effect {
                ops.push(op);
            }
        }
        if machine.state().phase() == Phase::Replicating {
            break;
        }
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failover_scenario_ends_failed_over_to_the_instance() {
        let s = failover_scenario().unwrap();
        let m = s.replay().unwrap();
        assert_eq!(m.state().phase(), Phase::FailedOver);
        assert!(s.inputs.len() > 20, "{} inputs", s.inputs.len());
    }

    #[test]
    fn the_journal_scenario_has_exactly_the_inputs_asked_for() {
        let s = journal_scenario(10_000).unwrap();
        assert_eq!(s.inputs.len(), 10_000);
        assert_eq!(s.replay().unwrap().state().phase(), Phase::FailedOver);
        let ticks = s.inputs.iter().filter(|(i, _)| *i == Input::Tick).count();
        assert!(ticks > 4_900, "{ticks} ticks");
        let odd = journal_scenario(10_001).unwrap();
        assert_eq!(odd.inputs.len(), 10_001);
        assert!(journal_scenario(10).is_err());
    }

    #[test]
    fn a_multi_database_link_replicates_every_database() {
        let (m, _) = replicating(50).unwrap();
        assert_eq!(m.spec().databases.len(), 50);
        assert_eq!(m.state().phase(), Phase::Replicating);
        assert_eq!(m.health().unwrap().instance.databases.len(), 50);
    }

    #[test]
    fn a_probe_cycle_keeps_the_machine_replicating() {
        let (mut m, mut now) = replicating(1).unwrap();
        let reading = link_view(
            &m.spec().databases,
            Side::SqlServer,
            AvailabilityMode::AsynchronousCommit,
            5_000,
            10,
        )
        .unwrap();
        let start = now;
        for _ in 0..3 {
            assert!(probe_cycle(&mut m, &mut now, &reading).unwrap() >= 1);
            assert_eq!(m.state().phase(), Phase::Replicating);
        }
        assert_eq!(
            now.since(start),
            m.spec().options.probe_interval * 3,
            "each cycle waits one probe interval"
        );
    }

    #[test]
    fn link_creation_issues_the_source_ops_of_every_creation_phase() {
        let ops = create_source_ops().unwrap();
        assert!(matches!(ops.first(), Some(SourceOp::EnsureMasterKey)));
        for wanted in [
            "EnsureEndpointCertificate",
            "EnsureMirroringEndpoint",
            "ExportCertificatePublicKey",
            "ImportInstanceCertificate",
            "EnsureRootCaTrust",
            "CreateAvailabilityGroup",
            "CreateDistributedAvailabilityGroup",
        ] {
            assert!(
                ops.iter().any(|op| format!("{op:?}").starts_with(wanted)),
                "{wanted} missing from {ops:?}"
            );
        }
    }
}
