//! A small driver for tests: feeds inputs, records edges, and builds observations.

use super::*;

/// A machine, a clock, and the journal of accepted inputs.
pub struct H {
    pub m: Machine,
    pub now: Timestamp,
    pub journal: Vec<(Input, Timestamp)>,
    /// The events of the last accepted input.
    pub events: Vec<ProgressEvent>,
    /// How the catch-up gate's workload readings are answered as soon as they are issued
    /// (`None`: left in flight for the test). By default one client session is connected, so
    /// the long stability window applies.
    pub workload: Option<crate::redirect::WorkloadActivity>,
}

/// One idle client session on ToyStore: not quiet.
pub fn busy_workload() -> crate::redirect::WorkloadActivity {
    crate::redirect::WorkloadActivity {
        sessions: vec![crate::redirect::ClientSession {
            session_id: 57,
            database: DatabaseName::new("ToyStore").unwrap(),
            login: "app".into(),
            host: None,
            program: None,
            status: "sleeping".into(),
            open_transactions: 0,
            oldest_transaction_start: None,
        }],
    }
}

impl H {
    pub fn new(spec: LinkSpec) -> H {
        H {
            m: Machine::new(spec).unwrap(),
            now: t(T0),
            journal: Vec::new(),
            events: Vec::new(),
            workload: Some(busy_workload()),
        }
    }

    pub fn phase(&self) -> Phase {
        self.m.state().phase()
    }

    pub fn spec(&self) -> LinkSpec {
        self.m.spec().clone()
    }

    /// Feeds one input; on success records the edge, on rejection checks the machine is unchanged.
    pub fn input(&mut self, input: Input) -> Result<Step, Rejected> {
        let before = self.m.clone();
        let label = input.label();
        match self.m.handle(input.clone(), self.now) {
            Ok(step) => {
                if self.m != before || !step.effects.is_empty() {
                    record((before.state().name(), label, self.m.state().name()));
                }
                self.journal.push((input, self.now));
                check_step_invariants(&self.m, &step);
                Ok(step)
            }
            Err(rejected) => {
                assert_eq!(self.m, before, "a rejected input changed the machine");
                Err(rejected)
            }
        }
    }

    pub fn ok(&mut self, input: Input) -> Vec<Effect> {
        let state = self.m.state().name();
        match self.input(input.clone()) {
            Ok(step) => {
                self.events = step.events;
                let mut effects = step.effects;
                while let Some(activity) = self.workload.clone()
                    && let Some(i) = effects.iter().position(|e| {
                        matches!(
                            e,
                            Effect::Probe {
                                probe: Probe::Workload { .. },
                                ..
                            }
                        )
                    })
                {
                    let probe = effects.remove(i);
                    let result = Ok(Observation::Workload(activity));
                    match self.input(Input::Observed {
                        step: probe.step(),
                        result,
                    }) {
                        Ok(mut more) => {
                            self.events.append(&mut more.events);
                            effects.append(&mut more.effects);
                        }
                        Err(r) => panic!("workload reading rejected: {r}"),
                    }
                }
                effects
            }
            Err(r) => panic!("{input:?} rejected in {state}: {r}"),
        }
    }

    pub fn cmd(&mut self, c: Command) -> Vec<Effect> {
        self.ok(Input::Command(c))
    }

    pub fn reject(&mut self, input: Input) -> RejectReason {
        match self.input(input.clone()) {
            Ok(step) => panic!("{input:?} accepted in {}: {step:?}", self.m.state().name()),
            Err(r) => r.reason,
        }
    }

    pub fn reject_cmd(&mut self, c: Command) -> RejectReason {
        self.reject(Input::Command(c))
    }

    pub fn advance(&mut self, d: Duration) {
        self.now = self.now.plus(d);
    }

    pub fn tick(&mut self) -> Vec<Effect> {
        self.ok(Input::Tick)
    }

    /// Moves the clock to the deadline and ticks.
    pub fn tick_at_deadline(&mut self) -> Vec<Effect> {
        let deadline = self.m.deadline().expect("a deadline");
        if deadline > self.now {
            self.now = deadline;
        }
        self.tick()
    }

    /// Moves the clock past the phase timeout and ticks.
    pub fn time_out(&mut self) -> Vec<Effect> {
        self.advance(Duration::from_secs(400 * 24 * 3600));
        self.tick()
    }

    pub fn resume(&mut self) -> Vec<Effect> {
        self.ok(Input::Resume)
    }

    /// The single in-flight effect.
    pub fn pending(&self) -> Effect {
        let in_flight = self.m.in_flight();
        assert_eq!(
            in_flight.len(),
            1,
            "expected one effect in flight: {in_flight:?}"
        );
        in_flight[0].clone()
    }

    pub fn pending_step(&self) -> StepId {
        self.pending().step()
    }

    pub fn answer_step(
        &mut self,
        step: StepId,
        result: Result<Observation, StepError>,
    ) -> Vec<Effect> {
        self.ok(Input::Observed { step, result })
    }

    pub fn answer(&mut self, obs: Observation) -> Vec<Effect> {
        let step = self.pending_step();
        self.answer_step(step, Ok(obs))
    }

    pub fn fail(&mut self, retryable: bool) -> Vec<Effect> {
        let step = self.pending_step();
        self.answer_step(step, Err(step_error(retryable)))
    }

    /// Fails the first in-flight effect.
    pub fn fail_first(&mut self, retryable: bool) -> Vec<Effect> {
        let step = self.m.in_flight()[0].step();
        self.answer_step(step, Err(step_error(retryable)))
    }

    /// Answers the single in-flight effect with the success an adapter would report.
    pub fn done(&mut self) -> Vec<Effect> {
        let obs = default_answer(&self.pending());
        self.answer(obs)
    }

    /// Answers every in-flight effect with success.
    pub fn done_all(&mut self) -> Vec<Effect> {
        let mut effects = Vec::new();
        let mut events = Vec::new();
        for e in self.m.in_flight() {
            let obs = default_answer(&e);
            effects.extend(self.answer_step(e.step(), Ok(obs)));
            events.append(&mut self.events);
        }
        self.events = events;
        effects
    }

    // ---- Observations for this link.

    pub fn dbs(&self) -> Vec<DatabaseName> {
        self.m.spec().databases.clone()
    }

    /// Both sides' view: `primary` is PRIMARY, the other SECONDARY; `mode` on both; the
    /// secondary's databases in `state`/`health`; hardened LSNs as given.
    pub fn view(
        &self,
        primary: Side,
        mode: AvailabilityMode,
        state: SyncState,
        health: SyncHealth,
        primary_lsn: u128,
        secondary_lsn: u128,
    ) -> Observation {
        let dbs = self.dbs();
        let side = |role, st, h, l| SideView {
            exists: true,
            role: Some(role),
            mode: Some(mode),
            partner_mode: None,
            version: None,
            update_policy: None,
            failover_mode: None,
            connected: true,
            databases: dbs
                .iter()
                .map(|d| DatabaseView {
                    name: d.clone(),
                    sync_state: Some(st),
                    health: h,
                    last_hardened_lsn: Some(lsn(l)),
                    end_of_log_lsn: None,
                    partner: None,
                    last_commit_lsn: Some(lsn(l)),
                    seeding_percent: None,
                    log_send_queue_kb: Some(0),
                    redo_queue_kb: Some(0),
                    lag_seconds: Some(0),
                    last_error: None,
                    replica_state: None,
                })
                .collect(),
            live: false,
        };
        let p = side(
            ReplicaRole::Primary,
            SyncState::Synchronized,
            SyncHealth::Healthy,
            primary_lsn,
        );
        let s = side(ReplicaRole::Secondary, state, health, secondary_lsn);
        match primary {
            Side::SqlServer => Observation::Link(LinkObservation {
                source: p,
                instance: s,
                unreachable: None,
            }),
            Side::ManagedInstance => Observation::Link(LinkObservation {
                source: s,
                instance: p,
                unreachable: None,
            }),
        }
    }

    /// Healthy async replication from the initial primary.
    pub fn healthy(&self) -> Observation {
        let p = self.m.spec().initial_primary;
        self.view(
            p,
            AvailabilityMode::AsynchronousCommit,
            SyncState::Synchronizing,
            SyncHealth::Healthy,
            100,
            90,
        )
    }

    /// Both sides in sync, the secondary SYNCHRONIZED, LSNs equal.
    pub fn sync_equal(&self, primary: Side, l: u128) -> Observation {
        self.view(
            primary,
            AvailabilityMode::SynchronousCommit,
            SyncState::Synchronized,
            SyncHealth::Healthy,
            l,
            l,
        )
    }

    /// `primary` PRIMARY and the other side `other`.
    pub fn roles(&self, primary: Side, other: Option<ReplicaRole>) -> Observation {
        let mut obs = self.sync_equal(primary, 500);
        if let Observation::Link(link) = &mut obs {
            match primary {
                Side::SqlServer => link.instance.role = other,
                Side::ManagedInstance => link.source.role = other,
            }
        }
        obs
    }

    /// SQL Server fenced (SECONDARY), the instance SECONDARY, both at LSN `l`.
    pub fn fenced(&self, l: u128) -> Observation {
        let mut obs = self.sync_equal(Side::SqlServer, l);
        if let Observation::Link(link) = &mut obs {
            link.source.role = Some(ReplicaRole::Secondary);
        }
        obs
    }

    /// The link resource is gone on the instance; SQL Server (fenced) still ends at `l`.
    pub fn gone(&self, l: u128) -> Observation {
        let mut obs = self.fenced(l);
        if let Observation::Link(link) = &mut obs {
            link.instance = empty_side();
        }
        obs
    }

    /// One-way cutover from CatchingUp with the gate passing at `l`: fence, verify, DELETE
    /// (completed at once), confirm, leaving the machine in Redirecting. Returns the effects.
    pub fn fence_and_remove(&mut self, l: u128) -> Vec<Effect> {
        let mut all = Vec::new();
        let obs = self.sync_equal(Side::SqlServer, l);
        all.extend(self.answer(obs.clone()));
        while self.phase() == Phase::CatchingUp {
            all.extend(self.tick_at_deadline());
            all.extend(self.answer(obs.clone()));
        }
        assert_eq!(self.phase(), Phase::Fencing);
        all.extend(self.done());
        let obs = self.fenced(l);
        all.extend(self.answer(obs));
        assert_eq!(self.phase(), Phase::RemovingLink);
        all.extend(self.done());
        let obs = self.gone(l);
        all.extend(self.answer(obs));
        all
    }

    /// Answers readings with both sides PRIMARY until the machine calls it a split brain
    /// (a role check waits for it to last the stability window); returns the last effects.
    pub fn until_split_brain(&mut self) -> Vec<Effect> {
        let mut fx = Vec::new();
        for _ in 0..20 {
            if self.phase() == Phase::SplitBrain {
                return fx;
            }
            if self.m.in_flight().is_empty() {
                self.tick_at_deadline();
            }
            let obs = self.both_primary();
            fx = self.answer(obs);
        }
        assert_eq!(self.phase(), Phase::SplitBrain);
        fx
    }

    pub fn both_primary(&self) -> Observation {
        self.roles(Side::SqlServer, Some(ReplicaRole::Primary))
    }

    pub fn backups(&self, finished: Option<Timestamp>) -> Observation {
        Observation::FullBackups(
            self.dbs()
                .into_iter()
                .map(|d| FullBackup {
                    database: d,
                    finished,
                })
                .collect(),
        )
    }

    // ---- Driving along the paths.

    /// Draft → Replicating.
    pub fn create(&mut self) {
        self.cmd(Command::RecordAssessment(AssessmentOutcome {
            blockers: vec![],
        }));
        self.cmd(Command::Start);
        while matches!(
            self.phase(),
            Phase::PreparingSource
                | Phase::ExchangingTrust
                | Phase::CreatingAg
                | Phase::CreatingDag
                | Phase::JoiningInstance
                | Phase::CreatingLinkThroughArc
        ) {
            self.done();
        }
        assert_eq!(self.phase(), Phase::Seeding);
        let obs = self.healthy();
        self.answer(obs);
        assert_eq!(self.phase(), Phase::Replicating);
        self.settle();
    }

    /// In Replicating or FailedOver with a probe in flight: answer it with a healthy reading,
    /// leaving the machine waiting for the next probe.
    pub fn settle(&mut self) {
        let probing = matches!(
            self.m.in_flight()[..],
            [Effect::Probe {
                probe: Probe::Link,
                ..
            }]
        );
        let obs = match self.m.state() {
            State::Replicating { .. } if probing => self.healthy(),
            State::FailedOver { primary, .. } if probing => {
                self.roles(*primary, Some(ReplicaRole::Secondary))
            }
            _ => return,
        };
        self.answer(obs);
    }

    /// In CatchingUp: feed equal, unchanged LSNs until the gate opens.
    pub fn pass_gate(&mut self, target: Side) {
        let primary = target.other();
        let obs = self.sync_equal(primary, 1000);
        self.answer(obs.clone());
        for _ in 0..100 {
            if self.phase() != Phase::CatchingUp {
                return;
            }
            self.tick_at_deadline();
            self.answer(obs.clone());
        }
        panic!("the gate never opened");
    }

    /// Answers the switch to synchronous commit, unless the role change skipped it (prepared).
    pub fn switch_to_sync(&mut self) {
        if self.phase() == Phase::PreparingFailover {
            self.done_all();
        }
    }

    /// Replicating → FailedOver (planned) with the other side primary.
    pub fn planned_failover(&mut self) {
        let target = self.m.spec().initial_primary.other();
        self.cmd(Command::Failover(FailoverKind::Planned));
        self.switch_to_sync();
        assert_eq!(self.phase(), Phase::CatchingUp);
        self.pass_gate(target);
        assert_eq!(self.phase(), Phase::FailingOver);
        self.done();
        self.verify_and_redirect(target);
    }

    /// VerifyingRoles → Redirecting → next.
    pub fn verify_and_redirect(&mut self, primary: Side) {
        assert_eq!(self.phase(), Phase::VerifyingRoles);
        let obs = self.roles(primary, Some(ReplicaRole::Secondary));
        self.answer(obs);
        assert_eq!(self.phase(), Phase::Redirecting);
        assert_eq!(
            self.pending(),
            Effect::Redirect {
                step: self.pending_step(),
                primary
            }
        );
        self.done();
        self.settle();
    }
}

pub fn step_error(retryable: bool) -> StepError {
    StepError {
        code: if retryable { "http:503" } else { "sql:15151" }.to_owned(),
        message: "it failed".to_owned(),
        retryable,
    }
}

pub fn op(n: u32) -> OperationRef {
    OperationRef {
        url: format!("https://management.azure.com/operations/{n}"),
        kind: OperationKind::AzureAsyncOperation,
        resource: None,
    }
}

/// The success an adapter reports for an effect (probes have no default and get an empty view).
pub fn default_answer(effect: &Effect) -> Observation {
    match effect {
        Effect::Source {
            op: SourceOp::ExportCertificatePublicKey { .. },
            ..
        } => Observation::PublicKey(vec![0x30, 0x82, 0x01]),
        Effect::Instance {
            op: InstanceOp::GetEndpointCertificate,
            ..
        } => Observation::PublicKey(vec![0x30, 0x82, 0x02]),
        Effect::Probe {
            probe: Probe::FirstFullBackups,
            ..
        } => Observation::FullBackups(vec![]),
        Effect::Probe {
            probe: Probe::Workload { .. },
            ..
        } => Observation::Workload(crate::redirect::WorkloadActivity::default()),
        Effect::Probe {
            probe: Probe::Link, ..
        } => Observation::Link(LinkObservation {
            source: empty_side(),
            instance: empty_side(),
            unreachable: None,
        }),
        _ => Observation::Done,
    }
}

pub fn empty_side() -> SideView {
    SideView {
        exists: false,
        role: None,
        mode: None,
        partner_mode: None,
        version: None,
        update_policy: None,
        failover_mode: None,
        connected: false,
        databases: vec![],
        live: false,
    }
}

/// Invariants every accepted step keeps.
pub fn check_step_invariants(m: &Machine, step: &Step) {
    let in_flight = m.in_flight();
    let mut ids = BTreeSet::new();
    for e in &in_flight {
        let id = e.step();
        assert!(ids.insert(id), "duplicate in-flight step id {id}");
    }
    for e in &step.effects {
        let id = e.step();
        assert!(
            in_flight.iter().any(|f| f.step() == id),
            "emitted effect {e:?} is not tracked in flight"
        );
    }
    if m.is_terminal() {
        assert!(in_flight.is_empty());
        assert_eq!(m.deadline(), None);
    }
    if let State::Failed { .. } = m.state() {
        // At most the reading a refresh asked for.
        assert!(
            in_flight.iter().all(|e| matches!(
                e,
                Effect::Probe {
                    probe: Probe::Link,
                    ..
                }
            )) && in_flight.len() <= 1,
            "{in_flight:?}"
        );
        assert_eq!(m.deadline(), None);
    }
}

/// The effects that carry a step (all of them: progress is reported as events).
pub fn actions(effects: &[Effect]) -> Vec<Effect> {
    effects.to_vec()
}

pub fn has_failover(effects: &[Effect]) -> bool {
    effects.iter().any(|e| {
        matches!(
            e,
            Effect::Source {
                op: SourceOp::Failover { .. } | SourceOp::ForceFailover { .. },
                ..
            } | Effect::Instance {
                op: InstanceOp::Failover { .. },
                ..
            }
        )
    })
}
