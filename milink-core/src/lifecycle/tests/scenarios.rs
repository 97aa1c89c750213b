//! Table tests: each scenario walks edges and asserts what a user of the link would notice
//! (effects issued, states reached, refusals). Each is a `#[test]`, and the coverage test runs
//! them all to check the edge table.

use super::arc::*;
use super::*;

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        /// Every scenario, for the coverage test.
        pub const ALL: &[(&str, fn())] = &[$((stringify!($name), $name as fn())),*];
        mod generated {
            $( #[test] fn $name() { super::$name(); } )*
        }
    };
}

scenarios!(
    arc_create_is_one_operation_followed_by_its_url_then_seeding,
    arc_create_whose_answer_was_lost_is_judged_by_a_reading,
    arc_refuses_what_arc_cannot_do,
    arc_planned_failover_is_arcs_operation_and_the_unmade_lsn_check_is_said,
    arc_failover_that_failed_with_unchanged_roles_is_sent_again_after_a_reading,
    arc_forced_failover_sends_force_with_the_acknowledgement,
    arc_cutover_fails_over_then_removes_the_link_with_delete_mi_link,
    arc_cancel_removes_the_link_with_delete_mi_link,
    arc_create_that_failed_is_read_before_it_is_sent_again_or_removed,
    arc_operation_sent_again_while_the_first_runs_is_evidence_not_a_failure,
    create_from_sql_server_issues_every_documented_step_in_order,
    long_running_operations_are_polled_and_kept_in_state,
    running_operations_are_polled_as_retry_after_says_within_bounds,
    create_from_the_instance_grants_create_any_database,
    assessment_and_start_guards,
    seeding_waits_for_every_database_to_be_synchronizing_and_healthy,
    seeding_fails_fast_on_a_terminal_error_and_cancel_recovers,
    replicating_reports_lag_and_detects_split_brain,
    planned_failover_catches_up_then_fails_over_with_tsql,
    planned_failover_uses_arm_before_cu13,
    prepare_switches_to_sync_ahead_and_the_role_change_skips_the_switch,
    guard_a_quiet_workload_shortens_the_window_and_nothing_else_does,
    guard_the_live_window_applies_only_while_every_reading_is_live,
    the_gate_reads_the_instance_from_its_dmvs_alone_between_whole_readings,
    guard_after_an_attempt_the_gate_waits_the_long_window_however_quiet,
    guard_no_failover_while_asynchronous,
    guard_no_failover_while_lsns_differ,
    guard_no_failover_while_lsns_move,
    guard_no_failover_while_not_synchronized_or_roles_unexpected,
    guard_the_gate_covers_every_database_either_side_reports,
    guard_planned_failover_refused_before_replicating_and_on_one_way_links,
    guard_forced_failover_needs_acknowledgement_for_this_link,
    guard_forced_failover_refused_while_target_reverting_or_initializing,
    forced_failover_to_the_instance,
    forced_failover_with_old_primary_still_primary_is_split_brain,
    forced_failover_back_to_sql_server_and_its_version_guard,
    forced_failover_during_catch_up_and_after_a_failure,
    split_brain_repair_keeping_the_instance,
    split_brain_repair_keeping_sql_server,
    split_brain_guards,
    failback_returns_to_replicating,
    guard_failback_refused_on_one_way_links_and_mismatched_policies,
    cutover_two_way_fails_over_waits_for_backup_and_removes_everything,
    cutover_one_way_keeps_roles_and_redirects_after_removing_the_link,
    guard_link_never_removed_before_the_first_full_backup,
    guard_one_way_cutover_fences_sql_server_and_removes_the_link_only_when_caught_up,
    guard_a_failed_failover_is_never_sent_again_without_a_fresh_gate,
    data_loss_after_a_role_change_or_removal_is_reported,
    an_accepted_role_change_is_followed_never_sent_again,
    the_services_evidence_decides_before_a_role_change_is_sent_again,
    split_brain_is_seen_whenever_the_roles_are_read,
    repair_reads_before_it_acts_and_never_leaves_no_primary,
    there_is_always_a_way_out_of_a_failed_role_change,
    the_proof_runs_when_it_can_and_says_when_it_could_not,
    no_removal_on_a_guess_and_a_way_out_of_every_stuck_state,
    cutover_when_the_instance_is_already_primary,
    cutover_on_a_reverse_link,
    cancel_during_creation_removes_what_was_attempted,
    cancel_during_catch_up_abandons_the_role_change,
    cancel_of_a_cutover_before_link_removal,
    cancel_is_refused_after_a_role_change,
    cancel_after_a_failure,
    every_phase_fails_resumes_retries_and_times_out,
    crash_resume_reissues_in_flight_steps_with_the_same_ids,
    crash_resume_checks_roles_before_reissuing_a_role_change,
    crash_resume_checks_roles_before_forcing_again,
    crash_resume_checks_the_link_before_deleting_it_again,
    crash_resume_of_a_cancel_checks_the_link_before_deleting_it_again,
    states_of_earlier_builds_still_load,
    stale_and_unexpected_observations_are_rejected,
    terminal_states_absorb_every_input,
    rejection_classes,
    deadlines_follow_probes_and_timeouts,
    seeding_timeout_is_sized_from_the_measured_rate,
    machine_round_trips_through_json,
);

fn drop_ag() -> CutoverOptions {
    CutoverOptions {
        drop_availability_group: true,
    }
}

fn keep_ag() -> CutoverOptions {
    CutoverOptions::default()
}

fn phase_events(events: &[ProgressEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            ProgressEvent::Phase { name } => Some(name.name().to_owned()),
            _ => None,
        })
        .collect()
}

fn source_op(effects: &[Effect]) -> SourceOp {
    let acts = actions(effects);
    assert_eq!(acts.len(), 1, "{effects:?}");
    match &acts[0] {
        Effect::Source { op, .. } => op.clone(),
        other => panic!("expected a T-SQL step, got {other:?}"),
    }
}

fn instance_op(effects: &[Effect]) -> InstanceOp {
    let acts = actions(effects);
    assert_eq!(acts.len(), 1, "{effects:?}");
    match &acts[0] {
        Effect::Instance { op, .. } => op.clone(),
        other => panic!("expected an ARM step, got {other:?}"),
    }
}

pub fn is_probe(effects: &[Effect], probe: Probe) -> bool {
    let acts = actions(effects);
    acts.len() == 1 && matches!(&acts[0], Effect::Probe { probe: p, .. } if *p == probe)
}

fn is_poll(effects: &[Effect], operation: &OperationRef) -> bool {
    let acts = actions(effects);
    acts.len() == 1
        && matches!(&acts[0], Effect::PollOperation { operation: o, .. } if o == operation)
}

/// Replicating → (sync both sides) → CatchingUp, for the machine's initial direction.
fn to_catching_up(h: &mut H) {
    h.cmd(Command::Failover(FailoverKind::Planned));
    h.switch_to_sync();
    assert_eq!(h.phase(), Phase::CatchingUp);
}

// ---------------------------------------------------------------------------------------------
// Create.

pub fn create_from_sql_server_issues_every_documented_step_in_order() {
    let mut h = H::new(two_way());
    let spec = h.spec();
    assert_eq!(h.m.deadline(), None);
    h.cmd(Command::RecordAssessment(AssessmentOutcome {
        blockers: vec![],
    }));
    assert_eq!(phase_events(&h.events), ["Assessed"]);
    let fx = h.cmd(Command::Start);
    assert_eq!(phase_events(&h.events), ["PreparingSource"]);
    assert_eq!(source_op(&fx), SourceOp::EnsureMasterKey);
    let fx = h.done();
    assert_eq!(
        phase_events(&h.events),
        Vec::<String>::new(),
        "sub-steps are not phases"
    );
    assert_eq!(
        source_op(&fx),
        SourceOp::EnsureEndpointCertificate {
            name: spec.source.certificate.clone(),
            subject: "Certificate for Cert_TailspinSql_endpoint".to_owned(),
            expiry: spec.source.certificate_expiry,
        }
    );
    let fx = h.done();
    assert_eq!(
        source_op(&fx),
        SourceOp::EnsureMirroringEndpoint {
            spec: crate::tsql::MirroringEndpointSpec {
                name: spec.source.endpoint_name.clone(),
                port: TcpPort::MIRRORING_DEFAULT,
                certificate: spec.source.certificate.clone(),
                auth: crate::tsql::EndpointAuth::Certificate,
                encryption: crate::tsql::EndpointEncryption::Aes,
            },
        }
    );
    let fx = h.done();
    assert_eq!(phase_events(&h.events), ["ExchangingTrust"]);
    assert_eq!(
        source_op(&fx),
        SourceOp::ExportCertificatePublicKey {
            name: spec.source.certificate.clone()
        }
    );
    let fx = h.answer(Observation::PublicKey(vec![1, 2, 3]));
    assert_eq!(
        instance_op(&fx),
        InstanceOp::PutServerTrustCertificate {
            name: spec.source.certificate.clone(),
            public_blob: vec![1, 2, 3],
        }
    );
    let fx = h.done();
    assert_eq!(instance_op(&fx), InstanceOp::GetEndpointCertificate);
    let fx = h.answer(Observation::PublicKey(vec![9, 9]));
    assert_eq!(
        source_op(&fx),
        SourceOp::ImportInstanceCertificate {
            fqdn: spec.target.fqdn.clone(),
            der: vec![9, 9],
        }
    );
    let fx = h.done();
    assert_eq!(source_op(&fx), SourceOp::EnsureRootCaTrust);
    let fx = h.done();
    assert_eq!(phase_events(&h.events), ["CreatingAg"]);
    assert_eq!(
        source_op(&fx),
        SourceOp::CreateAvailabilityGroup {
            spec: crate::tsql::CreateAgSpec {
                ag: spec.source.ag.clone(),
                databases: vec![db("ToyStore")],
                replica: spec.source.server.clone(),
                endpoint_url: "TCP://10.0.0.4:5022".to_owned(),
                cluster_type_none: true,
            },
        }
    );
    let fx = h.done();
    assert_eq!(
        source_op(&fx),
        SourceOp::CreateDistributedAvailabilityGroup {
            spec: crate::tsql::CreateDagSpec {
                dag: spec.link.clone(),
                sql_ag: spec.source.ag.clone(),
                sql_listener_url: "TCP://10.0.0.4:5022".to_owned(),
                mi_ag: spec.target.ag.clone(),
                mi_fqdn: spec.target.fqdn.clone(),
                mi_database: None,
                session_timeout_s: 20,
            },
        }
    );
    let fx = h.done();
    assert_eq!(
        instance_op(&fx),
        InstanceOp::PutLink {
            link: spec.link.clone(),
            properties: LinkProperties {
                instance_link_role: Side::SqlServer,
                instance_ag: spec.target.ag.clone(),
                partner_ag: spec.source.ag.clone(),
                partner_endpoint: "TCP://10.0.0.4:5022".to_owned(),
                failover_mode: FailoverMode::Manual,
                seeding_mode: SeedingMode::Automatic,
                link_mode: LinkMode::SingleDatabase,
                databases: vec![db("ToyStore")],
            }
        }
    );
    let fx = h.done();
    assert_eq!(phase_events(&h.events), ["Seeding"]);
    assert!(is_probe(&fx, Probe::Link));

    // Seeding at 40 %: a progress event, then nothing until the next probe is due.
    let mut seeding = h.view(
        Side::SqlServer,
        AvailabilityMode::AsynchronousCommit,
        SyncState::NotSynchronizing,
        SyncHealth::NotHealthy,
        100,
        0,
    );
    if let Observation::Link(l) = &mut seeding {
        l.instance.databases[0].seeding_percent = Some(40);
    }
    let fx = h.answer(seeding.clone());
    assert!(fx.is_empty());
    assert_eq!(
        h.events,
        vec![ProgressEvent::Seeding {
            database: db("ToyStore"),
            percent: 40
        }]
    );
    assert!(h.tick().is_empty(), "the next probe is not due yet");
    let fx = h.tick_at_deadline();
    assert!(is_probe(&fx, Probe::Link));
    assert!(
        h.answer(seeding).is_empty() && h.events.is_empty(),
        "no event when the percentage is unchanged"
    );
    h.tick_at_deadline();
    let obs = h.healthy();
    h.answer(obs.clone());
    assert_eq!(phase_events(&h.events), ["Replicating"]);
    assert_eq!(
        h.m.state(),
        &State::Replicating {
            mode: Some(AvailabilityMode::AsynchronousCommit),
            health: Some(SyncHealth::Healthy),
            lag_seconds: Some(0),
        }
    );
    assert!(h.events.contains(&ProgressEvent::Lag {
        database: db("ToyStore"),
        seconds: Some(0),
        lsn_gap: Some(10)
    }));
    if let Observation::Link(l) = obs {
        assert_eq!(h.m.health(), Some(&l));
    }
}

pub fn long_running_operations_are_polled_and_kept_in_state() {
    let mut h = H::new(two_way());
    h.cmd(Command::RecordAssessment(AssessmentOutcome {
        blockers: vec![],
    }));
    h.cmd(Command::Start);
    while h.phase() == Phase::PreparingSource {
        h.done();
    }
    h.answer(Observation::PublicKey(vec![7]));
    // The upload is accepted: its URL is kept in the state, and polled when due.
    let fx = h.answer(Observation::OperationAccepted(op(1)));
    assert!(fx.is_empty());
    assert_eq!(
        h.m.state(),
        &State::ExchangingTrust {
            step: TrustStep::UploadCertificate {
                public_key: vec![7],
                operation: Some(op(1))
            }
        }
    );
    // Polled first after `first_poll` (1 s), then every probe interval (5 s).
    assert_eq!(h.m.deadline(), Some(h.now.plus(Duration::from_secs(1))));
    assert!(h.tick().is_empty());
    let fx = h.tick_at_deadline();
    assert!(is_poll(&fx, &op(1)));
    assert!(h.answer(Observation::OperationRunning).is_empty());
    assert_eq!(h.m.deadline(), Some(h.now.plus(Duration::from_secs(5))));
    let fx = h.tick_at_deadline();
    assert!(is_poll(&fx, &op(1)));
    let fx = h.done();
    assert_eq!(instance_op(&fx), InstanceOp::GetEndpointCertificate);
    while h.phase() != Phase::JoiningInstance {
        h.done();
    }
    h.answer(Observation::OperationAccepted(op(2)));
    assert_eq!(
        h.m.state(),
        &State::JoiningInstance {
            operation: Some(op(2))
        }
    );
    // The URL survives a crash: a machine restored from JSON polls the same operation.
    let restored: Machine = serde_json::from_str(&serde_json::to_string(&h.m).unwrap()).unwrap();
    assert_eq!(restored, h.m);
    let fx = h.tick_at_deadline();
    assert!(is_poll(&fx, &op(2)));
    h.answer(Observation::OperationRunning);
    assert_eq!(
        h.m.state(),
        &State::JoiningInstance {
            operation: Some(op(2))
        }
    );
    h.tick_at_deadline();
    let fx = h.done();
    assert_eq!(h.phase(), Phase::Seeding);
    assert!(is_probe(&fx, Probe::Link));
}

pub fn running_operations_are_polled_as_retry_after_says_within_bounds() {
    let mut h = H::new(two_way());
    h.cmd(Command::RecordAssessment(AssessmentOutcome {
        blockers: vec![],
    }));
    h.cmd(Command::Start);
    while h.phase() == Phase::PreparingSource {
        h.done();
    }
    h.answer(Observation::PublicKey(vec![7]));
    let accepted = h.now;
    h.answer(Observation::OperationAccepted(op(1)));
    // The first poll after `first_poll` (1 s) whatever the service says...
    assert_eq!(h.m.deadline(), Some(accepted.plus(Duration::from_secs(1))));
    assert!(is_poll(&h.tick_at_deadline(), &op(1)));
    // ...then as `Retry-After` says: 2 s, so the next poll is at +3 s.
    h.answer(Observation::OperationRunningRetryAfter(
        Duration::from_secs(2),
    ));
    assert_eq!(h.m.deadline(), Some(accepted.plus(Duration::from_secs(3))));
    assert!(h.tick().is_empty(), "not before the hint");
    assert!(is_poll(&h.tick_at_deadline(), &op(1)));
    assert_eq!(h.now, accepted.plus(Duration::from_secs(3)));
    // A zero hint is clamped up to `first_poll`: the machine does not spin.
    h.answer(Observation::OperationRunningRetryAfter(Duration::ZERO));
    assert_eq!(h.m.deadline(), Some(h.now.plus(Duration::from_secs(1))));
    assert!(is_poll(&h.tick_at_deadline(), &op(1)));
    // A huge one is clamped down to `probe_interval` (5 s).
    h.answer(Observation::OperationRunningRetryAfter(
        Duration::from_secs(24 * 3600),
    ));
    assert_eq!(h.m.deadline(), Some(h.now.plus(Duration::from_secs(5))));
    assert!(is_poll(&h.tick_at_deadline(), &op(1)));
    // No hint: every probe interval, as journals written before the hint replay.
    h.answer(Observation::OperationRunning);
    assert_eq!(h.m.deadline(), Some(h.now.plus(Duration::from_secs(5))));
    assert!(is_poll(&h.tick_at_deadline(), &op(1)));
    h.answer(Observation::OperationRunningRetryAfter(
        Duration::from_millis(2500),
    ));
    let deadline = h.m.deadline();
    // The hint is journaled with the observation: replaying the inputs gives the same
    // schedule, and so does a journal read back from its JSON.
    let mut replayed = Machine::new(h.spec()).unwrap();
    for (input, at) in &h.journal {
        let json = serde_json::to_string(input).unwrap();
        let input: Input = serde_json::from_str(&json).unwrap();
        replayed.handle(input, *at).unwrap();
    }
    assert_eq!(replayed.deadline(), deadline);
    assert_eq!(replayed, h.m);
    assert_eq!(
        serde_json::to_string(&Observation::OperationRunningRetryAfter(
            Duration::from_secs(2)
        ))
        .unwrap(),
        r#"{"OperationRunningRetryAfter":{"secs":2,"nanos":0}}"#
    );
    assert_eq!(
        serde_json::from_str::<Observation>(r#""OperationRunning""#).unwrap(),
        Observation::OperationRunning
    );
}

pub fn create_from_the_instance_grants_create_any_database() {
    let mut h = H::new(reverse());
    h.cmd(Command::RecordAssessment(AssessmentOutcome {
        blockers: vec![],
    }));
    h.cmd(Command::Start);
    while h.phase() != Phase::CreatingAg {
        h.done();
    }
    match source_op(&h.m.in_flight()) {
        SourceOp::CreateAvailabilityGroup { spec } => assert!(spec.databases.is_empty()),
        other => panic!("{other:?}"),
    }
    let fx = h.done();
    assert_eq!(h.phase(), Phase::CreatingAg);
    assert_eq!(
        source_op(&fx),
        SourceOp::GrantCreateAnyDatabase {
            ag: h.spec().source.ag
        }
    );
    let fx = h.done();
    match source_op(&fx) {
        SourceOp::CreateDistributedAvailabilityGroup { spec } => {
            assert_eq!(spec.mi_database, Some(db("ToyStore")))
        }
        other => panic!("{other:?}"),
    }
    let fx = h.done();
    match instance_op(&fx) {
        InstanceOp::PutLink { properties, .. } => {
            assert_eq!(properties.instance_link_role, Side::ManagedInstance)
        }
        other => panic!("{other:?}"),
    }
    h.done();
    // Seeding goes to SQL Server: its databases decide.
    let obs = h.healthy();
    h.answer(obs);
    assert_eq!(h.phase(), Phase::Replicating);
}

pub fn assessment_and_start_guards() {
    let mut h = H::new(two_way());
    assert_eq!(
        h.reject_cmd(Command::Start),
        RejectReason::AssessmentRequired
    );
    let blockers: Vec<Blocker> = vec!["FileStream: FILESTREAM is not supported".into()];
    assert_eq!(
        h.reject_cmd(Command::RecordAssessment(AssessmentOutcome {
            blockers: blockers.clone()
        })),
        RejectReason::NotReadyAssessment(blockers)
    );
    assert_eq!(h.phase(), Phase::Draft);
    h.cmd(Command::RecordAssessment(AssessmentOutcome {
        blockers: vec![],
    }));
    assert_eq!(
        h.reject_cmd(Command::RecordAssessment(AssessmentOutcome {
            blockers: vec![]
        })),
        RejectReason::NotAllowedInState
    );
    h.cmd(Command::Start);
    assert_eq!(
        h.reject_cmd(Command::Start),
        RejectReason::NotAllowedInState
    );
    // Nothing is in flight in Draft: a tick or resume changes nothing.
    let mut d = H::new(two_way());
    assert!(d.tick().is_empty());
    assert!(d.resume().is_empty());
    assert_eq!(d.phase(), Phase::Draft);
}

pub fn seeding_waits_for_every_database_to_be_synchronizing_and_healthy() {
    let spec = spec_with(
        "16.0.4125.3",
        FailoverMode::Manual,
        Side::SqlServer,
        UpdatePolicy::SqlServer2022,
        &["ToyStore", "Customer360"],
    );
    let mut h = H::new(spec);
    h.cmd(Command::RecordAssessment(AssessmentOutcome {
        blockers: vec![],
    }));
    h.cmd(Command::Start);
    while h.phase() != Phase::Seeding {
        h.done();
    }
    let healthy = h.healthy();
    let with = |f: &dyn Fn(&mut DatabaseView)| {
        let mut o = healthy.clone();
        if let Observation::Link(l) = &mut o {
            f(&mut l.instance.databases[1]);
        }
        o
    };
    h.answer(with(&|d| d.sync_state = Some(SyncState::NotSynchronizing)));
    assert_eq!(h.phase(), Phase::Seeding, "one database still seeding");
    h.tick_at_deadline();
    h.answer(with(&|d| d.health = SyncHealth::PartiallyHealthy));
    assert_eq!(h.phase(), Phase::Seeding, "one database not healthy");
    h.tick_at_deadline();
    h.answer(with(&|d| d.sync_state = Some(SyncState::Initializing)));
    assert_eq!(h.phase(), Phase::Seeding);
    // A database the secondary does not report at all is not seeded.
    h.tick_at_deadline();
    let mut missing = healthy.clone();
    if let Observation::Link(l) = &mut missing {
        l.instance.databases.truncate(1);
    }
    h.answer(missing);
    assert_eq!(h.phase(), Phase::Seeding);
    // A disconnect restarts seeding: the error is recorded, in the state and in the timeout
    // error, and the machine keeps waiting.
    h.tick_at_deadline();
    let lost = "41986: connection to the partner replica lost (network partition)";
    h.answer(with(&|d| {
        d.sync_state = Some(SyncState::NotSynchronizing);
        d.last_error = Some(lost.to_owned());
        d.replica_state = Some("Seeding".to_owned());
    }));
    match h.m.state() {
        State::Seeding { databases } => {
            assert_eq!(databases[1].last_error.as_deref(), Some(lost))
        }
        other => panic!("{other:?}"),
    }
    let mut failed = H::new(h.spec());
    failed.m = h.m.clone();
    failed.now = h.now;
    failed.time_out();
    match failed.m.state() {
        State::Failed { error, .. } => {
            assert!(
                error
                    .message
                    .contains("Customer360 unknown (last error: 41986: connection"),
                "{}",
                error.message
            )
        }
        other => panic!("{other:?}"),
    }
    h.tick_at_deadline();
    h.answer(healthy);
    assert_eq!(h.phase(), Phase::Replicating);
}

pub fn seeding_fails_fast_on_a_terminal_error_and_cancel_recovers() {
    let spec = spec_with(
        "16.0.4125.3",
        FailoverMode::Manual,
        Side::SqlServer,
        UpdatePolicy::SqlServer2022,
        &["ToyStore", "Customer360"],
    );
    let seeding = |h: &mut H| {
        h.cmd(Command::RecordAssessment(AssessmentOutcome {
            blockers: vec![],
        }));
        h.cmd(Command::Start);
        while h.phase() != Phase::Seeding {
            h.done();
        }
    };
    // Customer360 still seeding on the instance, with `f` applied to the given side's view.
    let reading = |h: &H, side: Side, f: &dyn Fn(&mut DatabaseView)| {
        let mut o = h.healthy();
        if let Observation::Link(l) = &mut o {
            let seeding = &mut l.instance.databases[1];
            seeding.sync_state = Some(SyncState::NotSynchronizing);
            seeding.health = SyncHealth::NotHealthy;
            seeding.seeding_percent = Some(40);
            let view = match side {
                Side::SqlServer => &mut l.source.databases[1],
                Side::ManagedInstance => &mut l.instance.databases[1],
            };
            f(view);
        }
        o
    };
    // A log backup truncated the log during seeding: the first probe that shows 1412 fails the
    // phase, minutes into seeding rather than at the six-day seeding timeout.
    let mut h = H::new(spec.clone());
    seeding(&mut h);
    let fx = h.answer(reading(&h, Side::ManagedInstance, &|d| {
        d.last_error = Some(
            "1412: The remote copy of database 'Customer360' has not been rolled forward"
                .to_owned(),
        );
        d.replica_state = Some("LinkCreationError".to_owned());
    }));
    assert!(fx.is_empty(), "nothing issued: {fx:?}");
    assert_eq!(h.m.deadline(), None, "no wait goes on after the failure");
    match h.m.state() {
        State::Failed {
            phase,
            error,
            retryable,
            step,
        } => {
            assert!(!retryable);
            assert!(step.is_some());
            assert_eq!(error.code, "sql:1412");
            assert!(!error.retryable);
            for needle in ["Customer360", "log backup", "Cancel the link", "12381"] {
                assert!(
                    error.message.contains(needle),
                    "{needle}: {}",
                    error.message
                );
            }
            match phase.as_ref() {
                State::Seeding { databases } => {
                    assert_eq!(databases[1].percent, Some(40));
                    assert!(
                        databases[1]
                            .last_error
                            .as_deref()
                            .is_some_and(|e| e.starts_with("1412:"))
                    );
                }
                other => panic!("{other:?}"),
            }
        }
        other => panic!("{other:?}"),
    }
    // Probing again cannot help: resume is refused.
    assert_eq!(h.reject(Input::Resume), RejectReason::NotRetryable);
    // The documented recovery: cancel removes the link, the DAG and the AG.
    let fx = h.cmd(Command::Cancel);
    assert!(
        matches!(
            actions(&fx).as_slice(),
            [Effect::Instance {
                op: InstanceOp::DeleteLink { .. },
                ..
            }]
        ),
        "{fx:?}"
    );
    let mut removed = Vec::new();
    while h.phase() == Phase::Cancelling {
        removed.extend(actions(&h.done()));
    }
    assert_eq!(h.phase(), Phase::Cancelled);
    assert!(removed.iter().any(|e| matches!(
        e,
        Effect::Source {
            op: SourceOp::DropDistributedAvailabilityGroup { .. },
            ..
        }
    )));
    assert!(removed.iter().any(|e| matches!(
        e,
        Effect::Source {
            op: SourceOp::DropAvailabilityGroup { .. },
            ..
        }
    )));
    // A new machine creates the link again and seeds to the end.
    let mut again = H::new(spec.clone());
    seeding(&mut again);
    let healthy = again.healthy();
    again.answer(healthy);
    assert_eq!(again.phase(), Phase::Replicating);

    // The same verdict from SQL Server's view alone (1408), and from the instance's error state
    // alone, without a number.
    for (side, f, code) in [
        (
            Side::SqlServer,
            &(|d: &mut DatabaseView| {
                d.last_error = Some("sql:1408: not recovered far enough".to_owned())
            }) as &dyn Fn(&mut DatabaseView),
            "sql:1408",
        ),
        (
            Side::ManagedInstance,
            &|d: &mut DatabaseView| d.replica_state = Some("LinkCreationError".to_owned()),
            "link:LinkCreationError",
        ),
        (
            Side::ManagedInstance,
            &|d: &mut DatabaseView| d.last_error = Some("Error: 41977, Severity: 16".to_owned()),
            "sql:41977",
        ),
    ] {
        let mut h = H::new(spec.clone());
        seeding(&mut h);
        h.answer(reading(&h, side, f));
        match h.m.state() {
            State::Failed {
                error, retryable, ..
            } => {
                assert_eq!(error.code, code);
                assert!(!retryable);
            }
            other => panic!("{code}: {other:?}"),
        }
        // Retry (after the cause was fixed) probes again; the same reading fails again at once.
        h.cmd(Command::Retry);
        assert_eq!(h.phase(), Phase::Seeding);
        h.answer(reading(&h, side, f));
        assert_eq!(h.phase(), Phase::Failed);
    }

    // Not terminal: a disconnect, or an error state on a database that finished seeding.
    let mut h = H::new(spec);
    seeding(&mut h);
    h.answer(reading(&h, Side::ManagedInstance, &|d| {
        d.last_error = Some("41986: connection to the partner replica lost".to_owned());
        d.replica_state = Some("Seeding".to_owned());
    }));
    assert_eq!(h.phase(), Phase::Seeding);
    h.tick_at_deadline();
    let mut obs = reading(&h, Side::ManagedInstance, &|_| {});
    if let Observation::Link(l) = &mut obs {
        l.instance.databases[0].replica_state = Some("LinkCreationError".to_owned());
        l.instance.databases[0].last_error = Some("1412: an earlier attempt".to_owned());
    }
    h.answer(obs);
    assert_eq!(
        h.phase(),
        Phase::Seeding,
        "ToyStore is seeded; its old error is moot"
    );
}

pub fn replicating_reports_lag_and_detects_split_brain() {
    let mut h = H::new(two_way());
    h.create();
    let fx = h.tick_at_deadline();
    assert!(is_probe(&fx, Probe::Link));
    let mut obs = h.healthy();
    if let Observation::Link(l) = &mut obs {
        l.instance.databases[0].lag_seconds = Some(42);
        l.instance.databases[0].health = SyncHealth::PartiallyHealthy;
    }
    let fx = h.answer(obs);
    assert!(fx.is_empty());
    assert_eq!(
        h.events,
        vec![ProgressEvent::Lag {
            database: db("ToyStore"),
            seconds: Some(42),
            lsn_gap: Some(10)
        }]
    );
    assert_eq!(
        h.m.state(),
        &State::Replicating {
            mode: Some(AvailabilityMode::AsynchronousCommit),
            health: Some(SyncHealth::PartiallyHealthy),
            lag_seconds: Some(42)
        }
    );
    h.tick_at_deadline();
    let obs = h.both_primary();
    h.answer(obs);
    assert_eq!(phase_events(&h.events), ["SplitBrain"]);
    assert_eq!(h.m.deadline(), None, "split brain waits for the caller");
    assert!(h.resume().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Planned failover and its guards.

pub fn planned_failover_catches_up_then_fails_over_with_tsql() {
    let mut h = H::new(two_way());
    h.create();
    let spec = h.spec();
    let fx = h.cmd(Command::Failover(FailoverKind::Planned));
    assert_eq!(phase_events(&h.events), ["PreparingFailover"]);
    let acts = actions(&fx);
    assert_eq!(
        acts.len(),
        2,
        "both sides switch to synchronous commit at once"
    );
    assert!(
        matches!(&acts[0], Effect::Source { op: SourceOp::SetAvailabilityMode { mode: AvailabilityMode::SynchronousCommit, dag, .. }, .. } if *dag == spec.link)
    );
    assert!(matches!(
        &acts[1],
        Effect::Instance {
            op: InstanceOp::SetReplicationMode {
                mode: AvailabilityMode::SynchronousCommit,
                ..
            },
            ..
        }
    ));
    let (s_step, i_step) = (acts[0].step(), acts[1].step());
    assert!(
        h.answer_step(i_step, Ok(Observation::OperationAccepted(op(3))))
            .is_empty()
    );
    assert_eq!(h.phase(), Phase::PreparingFailover);
    assert!(h.answer_step(s_step, Ok(Observation::Done)).is_empty());
    assert_eq!(
        h.phase(),
        Phase::PreparingFailover,
        "the instance is not in sync yet"
    );
    let fx = h.tick_at_deadline();
    assert!(is_poll(&fx, &op(3)));
    let fx = h.done();
    assert_eq!(phase_events(&h.events), ["CatchingUp"]);
    assert!(is_probe(&fx, Probe::Link));

    let equal = h.sync_equal(Side::SqlServer, 1000);
    let first = h.now;
    assert!(!has_failover(&h.answer(equal.clone())));
    assert!(matches!(
        h.m.state(),
        State::CatchingUp {
            blocker: Some(CatchUpBlocker::Stabilizing { .. }),
            ..
        }
    ));
    let mut issued = None;
    for _ in 0..20 {
        h.tick_at_deadline();
        let fx = h.answer(equal.clone());
        if has_failover(&fx) {
            issued = Some((h.now, fx));
            break;
        }
    }
    let (at, fx) = issued.expect("the failover is issued once the window passed");
    assert!(at.since(first) >= spec.options.stability_window);
    assert!(at.since(first) < spec.options.stability_window + spec.options.probe_interval * 2);
    assert_eq!(phase_events(&h.events), ["FailingOver"]);
    assert_eq!(
        source_op(&fx),
        SourceOp::Failover {
            dag: spec.link.clone()
        }
    );
    h.done();
    assert_eq!(phase_events(&h.events), ["VerifyingRoles"]);
    // Roles not settled yet: probe again.
    let obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Resolving));
    h.answer(obs);
    assert_eq!(h.phase(), Phase::VerifyingRoles);
    h.tick_at_deadline();
    h.verify_and_redirect(Side::ManagedInstance);
    assert_eq!(
        h.m.state(),
        &State::FailedOver {
            primary: Side::ManagedInstance,
            data_loss_possible: false
        }
    );
    // Failed over: keep watching.
    let fx = h.tick_at_deadline();
    assert!(is_probe(&fx, Probe::Link));
    let obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary));
    h.answer(obs);
    assert_eq!(h.phase(), Phase::FailedOver);
}

pub fn planned_failover_uses_arm_before_cu13() {
    // 2022 CU10: links work, T-SQL FAILOVER on the DAG needs CU13.
    let spec = spec_with(
        "16.0.4095.4",
        FailoverMode::Manual,
        Side::SqlServer,
        UpdatePolicy::SqlServer2022,
        &["ToyStore"],
    );
    let mut h = H::new(spec);
    h.create();
    to_catching_up(&mut h);
    h.pass_gate(Side::ManagedInstance);
    let failover = h.pending();
    assert!(matches!(
        failover,
        Effect::Instance {
            op: InstanceOp::Failover {
                failover_type: ArmFailoverType::Planned,
                ..
            },
            ..
        }
    ));
    h.answer(Observation::OperationAccepted(op(4)));
    assert!(matches!(
        h.m.state(),
        State::FailingOver {
            via: FailoverVia::Arm,
            change: RoleChange::Accepted(_),
            ..
        }
    ));
    h.tick_at_deadline();
    h.answer(Observation::OperationRunning);
    h.tick_at_deadline();
    h.done();
    h.verify_and_redirect(Side::ManagedInstance);
    assert_eq!(h.phase(), Phase::FailedOver);
}

/// Answers every catch-up probe with `obs` until the catch-up times out; no failover is ever
/// issued. Returns the failure message.
fn never_fails_over(h: &mut H, obs: Observation) -> String {
    h.answer(obs.clone());
    loop {
        let fx = h.tick_at_deadline();
        assert!(!has_failover(&fx));
        if let State::Failed {
            error,
            retryable,
            phase,
            ..
        } = h.m.state()
        {
            assert!(*retryable);
            assert_eq!(error.code, "timeout");
            assert_eq!(phase.phase(), Phase::CatchingUp);
            return error.message.clone();
        }
        assert!(!has_failover(&h.answer(obs.clone())));
        assert_eq!(h.phase(), Phase::CatchingUp);
    }
}

pub fn guard_no_failover_while_asynchronous() {
    let mut h = H::new(two_way());
    h.create();
    to_catching_up(&mut h);
    // The instance switched, SQL Server still reports asynchronous commit.
    let mut obs = h.sync_equal(Side::SqlServer, 1000);
    if let Observation::Link(l) = &mut obs {
        l.source.mode = Some(AvailabilityMode::AsynchronousCommit);
    }
    let message = never_fails_over(&mut h, obs);
    assert!(
        message.contains("SQL Server is not in synchronous commit"),
        "{message}"
    );
    assert!(message.contains("within 15m"), "{message}");
}

pub fn guard_no_failover_while_lsns_differ() {
    let mut h = H::new(two_way());
    h.create();
    to_catching_up(&mut h);
    let obs = h.view(
        Side::SqlServer,
        AvailabilityMode::SynchronousCommit,
        SyncState::Synchronized,
        SyncHealth::Healthy,
        1000,
        990,
    );
    let message = never_fails_over(&mut h, obs);
    assert!(
        message.contains(
            "last_hardened_lsn of database ToyStore differs: SQL Server 1000, managed instance 990"
        ),
        "{message}"
    );
}

pub fn guard_no_failover_while_lsns_move() {
    let mut h = H::new(two_way());
    h.create();
    to_catching_up(&mut h);
    // Equal on every reading, but moving: the workload is still running.
    let mut l = 1000;
    let obs = h.sync_equal(Side::SqlServer, l);
    h.answer(obs);
    for _ in 0..30 {
        l += 7;
        h.tick_at_deadline();
        let obs = h.sync_equal(Side::SqlServer, l);
        assert!(!has_failover(&h.answer(obs)));
        assert!(matches!(
            h.m.state(),
            State::CatchingUp {
                blocker: Some(CatchUpBlocker::LsnsStillMoving),
                ..
            }
        ));
    }
    // It stops: the window starts at the first unchanged reading.
    h.tick_at_deadline();
    let stopped = h.now;
    let obs = h.sync_equal(Side::SqlServer, l + 1);
    h.answer(obs.clone());
    loop {
        h.tick_at_deadline();
        let fx = h.answer(obs.clone());
        if has_failover(&fx) {
            assert!(h.now.since(stopped) >= h.spec().options.stability_window);
            break;
        }
        assert!(h.now.since(stopped) < h.spec().options.stability_window);
    }
    // And a timeout while moving fails with a message that says so.
    let mut h = H::new(two_way());
    h.create();
    to_catching_up(&mut h);
    let mut l = 1;
    let obs = h.sync_equal(Side::SqlServer, l);
    h.answer(obs);
    loop {
        let fx = h.tick_at_deadline();
        assert!(!has_failover(&fx));
        if let State::Failed { error, .. } = h.m.state() {
            assert!(error.message.contains("still moving"), "{}", error.message);
            break;
        }
        l += 1;
        let obs = h.sync_equal(Side::SqlServer, l);
        assert!(!has_failover(&h.answer(obs)));
    }
}

pub fn guard_no_failover_while_not_synchronized_or_roles_unexpected() {
    let mut h = H::new(two_way());
    h.create();
    to_catching_up(&mut h);
    let obs = h.view(
        Side::SqlServer,
        AvailabilityMode::SynchronousCommit,
        SyncState::Synchronizing,
        SyncHealth::PartiallyHealthy,
        1000,
        1000,
    );
    let message = never_fails_over(&mut h, obs);
    assert!(
        message.contains("Synchronizing, not SYNCHRONIZED"),
        "{message}"
    );

    let mut h = H::new(two_way());
    h.create();
    to_catching_up(&mut h);
    let mut obs = h.sync_equal(Side::SqlServer, 1000);
    if let Observation::Link(l) = &mut obs {
        l.instance.role = Some(ReplicaRole::Resolving);
    }
    let message = never_fails_over(&mut h, obs);
    assert!(message.contains("expected roles"), "{message}");

    // Both sides PRIMARY during the catch-up: never a failover; a split brain once it lasts the
    // stability window (one lagging reading across an earlier attempt's switch is not one).
    let mut h = H::new(two_way());
    h.create();
    to_catching_up(&mut h);
    let obs = h.both_primary();
    let fx = h.answer(obs);
    assert!(!has_failover(&fx));
    assert_eq!(h.phase(), Phase::CatchingUp);
    let fx = h.until_split_brain();
    assert!(!has_failover(&fx));
}

pub fn guard_planned_failover_refused_before_replicating_and_on_one_way_links() {
    let planned = || Command::Failover(FailoverKind::Planned);
    let mut h = H::new(two_way());
    assert_eq!(h.reject_cmd(planned()), RejectReason::NotReplicatingYet);
    h.cmd(Command::RecordAssessment(AssessmentOutcome {
        blockers: vec![],
    }));
    assert_eq!(h.reject_cmd(planned()), RejectReason::NotReplicatingYet);
    h.cmd(Command::Start);
    while h.phase() != Phase::Seeding {
        assert_eq!(h.reject_cmd(planned()), RejectReason::NotReplicatingYet);
        h.done();
    }
    assert_eq!(h.reject_cmd(planned()), RejectReason::NotReplicatingYet);
    assert_eq!(
        h.reject_cmd(Command::Cutover(keep_ag())),
        RejectReason::NotReplicatingYet
    );
    // One-way: refused in any state, with the reason that matters.
    let mut h = H::new(one_way());
    assert_eq!(h.reject_cmd(planned()), RejectReason::OneWayLink);
    h.create();
    assert_eq!(h.reject_cmd(planned()), RejectReason::OneWayLink);
    assert_eq!(h.reject_cmd(ack()), RejectReason::OneWayLink);
    // Already failed over: failback is the way back.
    let mut h = H::new(two_way());
    h.create();
    h.planned_failover();
    assert_eq!(h.reject_cmd(planned()), RejectReason::AlreadyFailedOver);
}

// ---------------------------------------------------------------------------------------------
// Forced failover.

pub fn guard_forced_failover_needs_acknowledgement_for_this_link() {
    let mut h = H::new(two_way());
    h.create();
    assert_eq!(
        h.reject_cmd(Command::Failover(FailoverKind::Forced(None))),
        RejectReason::DataLossNotAcknowledged
    );
    assert_eq!(
        h.reject_cmd(Command::Failover(FailoverKind::Forced(Some(
            DataLossAcknowledgement {
                link: "other-link".to_owned()
            }
        )))),
        RejectReason::AcknowledgementForWrongLink {
            expected: LinkName::new(LINK).unwrap(),
            given: "other-link".to_owned()
        }
    );
    assert_eq!(h.phase(), Phase::Replicating);
}

pub fn guard_forced_failover_refused_while_target_reverting_or_initializing() {
    for state in [SyncState::Reverting, SyncState::Initializing] {
        let mut h = H::new(two_way());
        h.create();
        h.tick_at_deadline();
        let mut obs = h.healthy();
        if let Observation::Link(l) = &mut obs {
            l.instance.databases[0].sync_state = Some(state);
        }
        h.answer(obs);
        assert_eq!(
            h.reject_cmd(ack()),
            RejectReason::SecondaryNotReady {
                database: db("ToyStore"),
                state
            }
        );
        // Once the secondary is synchronizing again, the forced failover is accepted.
        h.tick_at_deadline();
        let obs = h.healthy();
        h.answer(obs);
        force(&mut h);
        assert_eq!(h.phase(), Phase::ForcingFailover);
    }
}

pub fn forced_failover_to_the_instance() {
    let mut h = H::new(two_way());
    h.create();
    let fx = force(&mut h);
    assert_eq!(phase_events(&h.events), ["ForcingFailover"]);
    assert_eq!(
        instance_op(&fx),
        InstanceOp::Failover {
            link: h.spec().link,
            failover_type: ArmFailoverType::ForcedAllowDataLoss
        }
    );
    h.answer(Observation::OperationAccepted(op(5)));
    assert_eq!(h.phase(), Phase::ForcingFailover);
    let fx = h.tick_at_deadline();
    assert!(is_poll(&fx, &op(5)));
    h.answer(Observation::OperationRunning);
    h.tick_at_deadline();
    h.done();
    assert_eq!(h.phase(), Phase::VerifyingRoles);
    // SQL Server is down: it reports no role. The instance is primary: good enough.
    let obs = h.roles(Side::ManagedInstance, None);
    h.answer(obs);
    assert_eq!(h.phase(), Phase::Redirecting);
    h.done();
    assert_eq!(
        h.m.state(),
        &State::FailedOver {
            primary: Side::ManagedInstance,
            data_loss_possible: true
        }
    );
    // The old primary comes back still PRIMARY: split brain.
    let obs = h.both_primary();
    h.answer(obs);
    assert_eq!(h.phase(), Phase::SplitBrain);
}

pub fn forced_failover_with_old_primary_still_primary_is_split_brain() {
    let mut h = H::new(two_way());
    h.create();
    force(&mut h);
    h.done();
    let obs = h.both_primary();
    let fx = h.answer(obs);
    assert!(actions(&fx).is_empty(), "the application is not redirected");
    // Once it lasts the stability window (not one reading across the switch): split brain.
    let fx = h.until_split_brain();
    assert_eq!(phase_events(&h.events), ["SplitBrain"]);
    assert!(actions(&fx).is_empty(), "the application is not redirected");
}

pub fn forced_failover_back_to_sql_server_and_its_version_guard() {
    let mut h = H::new(two_way());
    h.create();
    h.planned_failover();
    let fx = force(&mut h);
    assert_eq!(
        source_op(&fx),
        SourceOp::ForceFailover { dag: h.spec().link }
    );
    h.done();
    let obs = h.roles(Side::SqlServer, Some(ReplicaRole::Secondary));
    h.answer(obs);
    h.done();
    assert_eq!(h.phase(), Phase::Replicating);

    // 2022 before CU13 cannot force the DAG over to SQL Server with T-SQL.
    let spec = spec_with(
        "16.0.4095.4",
        FailoverMode::Manual,
        Side::SqlServer,
        UpdatePolicy::SqlServer2022,
        &["ToyStore"],
    );
    let mut h = H::new(spec);
    h.create();
    h.planned_failover();
    assert!(matches!(
        h.reject_cmd(ack()),
        RejectReason::VersionNotCapable { .. }
    ));
}

pub fn forced_failover_during_catch_up_and_after_a_failure() {
    // The primary dies while catching up.
    let mut h = H::new(two_way());
    h.create();
    h.cmd(Command::Failover(FailoverKind::Planned));
    force(&mut h);
    assert_eq!(h.phase(), Phase::ForcingFailover);
    let mut h = H::new(two_way());
    h.create();
    to_catching_up(&mut h);
    force(&mut h);
    assert!(matches!(
        h.m.state(),
        State::ForcingFailover {
            target: Side::ManagedInstance,
            ..
        }
    ));
    // Probing the primary fails for good: force from Failed.
    let mut h = H::new(two_way());
    h.create();
    h.tick_at_deadline();
    h.fail(false);
    assert_eq!(h.phase(), Phase::Failed);
    force(&mut h);
    assert_eq!(h.phase(), Phase::ForcingFailover);
}

// ---------------------------------------------------------------------------------------------
// Split brain.

pub fn split_brain_repair_keeping_the_instance() {
    let mut h = H::new(two_way());
    h.create();
    h.tick_at_deadline();
    let obs = h.both_primary();
    h.answer(obs);
    let fx = h.cmd(Command::RepairSplitBrain {
        keep: Side::ManagedInstance,
    });
    // Repair reads before it acts.
    assert!(is_probe(&fx, Probe::Link));
    let obs = h.both_primary();
    let fx = h.answer(obs);
    assert_eq!(
        source_op(&fx),
        SourceOp::SetRoleSecondary { dag: h.spec().link }
    );
    h.done();
    assert_eq!(h.phase(), Phase::VerifyingRoles);
    // Still both PRIMARY right after the demotion: wait, not a new split brain.
    let obs = h.both_primary();
    h.answer(obs);
    assert_eq!(h.phase(), Phase::VerifyingRoles);
    h.tick_at_deadline();
    h.verify_and_redirect(Side::ManagedInstance);
    assert_eq!(
        h.m.state(),
        &State::FailedOver {
            primary: Side::ManagedInstance,
            data_loss_possible: true
        }
    );
}

pub fn split_brain_repair_keeping_sql_server() {
    let mut h = H::new(two_way());
    h.create();
    h.planned_failover();
    h.tick_at_deadline();
    let obs = h.both_primary();
    h.answer(obs);
    assert_eq!(h.phase(), Phase::SplitBrain);
    let fx = h.cmd(Command::RepairSplitBrain {
        keep: Side::SqlServer,
    });
    assert!(is_probe(&fx, Probe::Link));
    let obs = h.both_primary();
    let fx = h.answer(obs);
    assert_eq!(
        instance_op(&fx),
        InstanceOp::SetRole {
            link: h.spec().link,
            role: Side::SqlServer,
            change: RoleChangeType::Forced
        }
    );
    h.answer(Observation::OperationAccepted(op(6)));
    assert_eq!(h.phase(), Phase::Repairing);
    h.tick_at_deadline();
    h.answer(Observation::OperationRunning);
    h.tick_at_deadline();
    h.done();
    h.verify_and_redirect(Side::SqlServer);
    assert_eq!(h.phase(), Phase::Replicating);
}

pub fn split_brain_guards() {
    let mut h = H::new(two_way());
    h.create();
    assert_eq!(
        h.reject_cmd(Command::RepairSplitBrain {
            keep: Side::SqlServer
        }),
        RejectReason::SplitBrainNotPresent
    );
    h.tick_at_deadline();
    let obs = h.both_primary();
    h.answer(obs);
    for c in [
        Command::Failover(FailoverKind::Planned),
        ack(),
        Command::Failback,
        Command::Cutover(keep_ag()),
    ] {
        assert_eq!(h.reject_cmd(c), RejectReason::SplitBrainPresent);
    }
    assert_eq!(h.reject_cmd(Command::Cancel), RejectReason::CancelTooLate);
}

// ---------------------------------------------------------------------------------------------
// Failback.

pub fn failback_returns_to_replicating() {
    let mut h = H::new(two_way());
    h.create();
    h.planned_failover();
    let fx = h.cmd(Command::Failback);
    assert_eq!(
        phase_events(&h.events),
        ["CatchingUp"],
        "the failover left both sides synchronous: no switch"
    );
    assert!(is_probe(&fx, Probe::Link));
    h.pass_gate(Side::SqlServer);
    // The instance is primary: ARM planned failover.
    assert!(matches!(
        h.pending(),
        Effect::Instance {
            op: InstanceOp::Failover {
                failover_type: ArmFailoverType::Planned,
                ..
            },
            ..
        }
    ));
    h.done();
    h.verify_and_redirect(Side::SqlServer);
    assert_eq!(h.phase(), Phase::Replicating);
    assert_eq!(h.reject_cmd(Command::Failback), RejectReason::NotFailedOver);
}

pub fn guard_failback_refused_on_one_way_links_and_mismatched_policies() {
    let mut h = H::new(one_way());
    assert_eq!(h.reject_cmd(Command::Failback), RejectReason::OneWayLink);
    h.create();
    assert_eq!(h.reject_cmd(Command::Failback), RejectReason::OneWayLink);

    // A two-way spec the policy cannot carry is refused up front (the same rule).
    let invalid = spec_with(
        "16.0.4125.3",
        FailoverMode::Manual,
        Side::SqlServer,
        UpdatePolicy::AlwaysUpToDate,
        &["ToyStore"],
    );
    assert!(matches!(
        Machine::new(invalid),
        Err(SpecError::TwoWayPolicyMismatch {
            policy: UpdatePolicy::AlwaysUpToDate,
            ..
        })
    ));

    // The guards read the live servers: the instance's policy changed to Always-up-to-date
    // after the link was created (2022 / SQL Server 2022 policy in the spec).
    let live = |h: &H, policy: Option<UpdatePolicy>, version: Option<&str>| {
        let mut obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary));
        if let Observation::Link(link) = &mut obs {
            link.instance.update_policy = policy;
            link.source.version = version.map(|v| SqlVersion::parse(v).unwrap());
        }
        obs
    };
    let mut h = H::new(two_way());
    h.create();
    h.planned_failover();
    h.tick_at_deadline();
    let obs = live(&h, Some(UpdatePolicy::AlwaysUpToDate), None);
    h.answer(obs);
    assert_eq!(
        h.reject_cmd(Command::Failback),
        RejectReason::UpdatePolicyMismatch {
            policy: UpdatePolicy::AlwaysUpToDate,
            required: Some(UpdatePolicy::SqlServer2022)
        }
    );
    assert!(matches!(
        h.reject_cmd(ack()),
        RejectReason::UpdatePolicyMismatch { .. }
    ));
    // SQL Server was upgraded to 2025 while the instance keeps the 2022 policy.
    let mut h = H::new(two_way());
    h.create();
    h.planned_failover();
    h.tick_at_deadline();
    let obs = live(&h, Some(UpdatePolicy::SqlServer2022), Some("17.0.1000.7"));
    h.answer(obs);
    assert_eq!(
        h.reject_cmd(Command::Failback),
        RejectReason::UpdatePolicyMismatch {
            policy: UpdatePolicy::SqlServer2022,
            required: Some(UpdatePolicy::SqlServer2025)
        }
    );
    // The policy changes between the command and the role change: the gate's fresh reading
    // refuses, before any FAILOVER, with a failure that says why.
    let mut h = H::new(two_way());
    h.create();
    h.planned_failover();
    h.cmd(Command::Failback);
    h.switch_to_sync();
    let mut obs = h.sync_equal(Side::ManagedInstance, 900);
    if let Observation::Link(link) = &mut obs {
        link.instance.update_policy = Some(UpdatePolicy::AlwaysUpToDate);
    }
    let fx = h.answer(obs);
    assert!(!has_failover(&fx));
    match h.m.state() {
        State::Failed {
            error, retryable, ..
        } => {
            assert!(!*retryable);
            assert_eq!(error.code, "guard");
            assert!(
                error.message.contains("AlwaysUpToDate"),
                "{}",
                error.message
            );
        }
        other => panic!("{other:?}"),
    }
    // A forced failover reads first: the policy changed since the last reading, so nothing is
    // forced.
    let mut h = H::new(two_way());
    h.create();
    h.planned_failover();
    h.cmd(ack());
    assert_eq!(h.phase(), Phase::ForcingFailover);
    let mut obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary));
    if let Observation::Link(link) = &mut obs {
        link.instance.update_policy = Some(UpdatePolicy::AlwaysUpToDate);
    }
    let fx = h.answer(obs);
    assert!(!has_failover(&fx) && !fx.iter().any(|e| matches!(e, Effect::Source { .. })));
    match h.m.state() {
        State::Failed {
            error, retryable, ..
        } => {
            assert!(!*retryable);
            assert!(
                error.message.contains("AlwaysUpToDate"),
                "{}",
                error.message
            );
        }
        other => panic!("{other:?}"),
    }
    // The link resource became one-way (failoverMode None): no failback either.
    let mut h = H::new(two_way());
    h.create();
    h.planned_failover();
    h.tick_at_deadline();
    let mut obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary));
    if let Observation::Link(link) = &mut obs {
        link.instance.failover_mode = Some(FailoverMode::None);
    }
    h.answer(obs);
    assert_eq!(h.reject_cmd(Command::Failback), RejectReason::OneWayLink);
}

// ---------------------------------------------------------------------------------------------
// Cutover.

pub fn cutover_two_way_fails_over_waits_for_backup_and_removes_everything() {
    let mut h = H::new(two_way());
    h.create();
    h.cmd(Command::Cutover(drop_ag()));
    assert_eq!(phase_events(&h.events), ["PreparingFailover"]);
    h.done_all();
    h.pass_gate(Side::ManagedInstance);
    let failover_at = h.now;
    assert_eq!(h.phase(), Phase::FailingOver);
    h.done();
    h.verify_and_redirect(Side::ManagedInstance);
    assert_eq!(h.phase(), Phase::AwaitingFirstFullBackup);
    assert!(is_probe(&h.m.in_flight(), Probe::FirstFullBackups));
    // No backup yet, then one from before the failover: the link stays.
    let obs = h.backups(None);
    assert!(actions(&h.answer(obs)).is_empty());
    h.tick_at_deadline();
    let obs = h.backups(Some(Timestamp::from_millis(failover_at.as_millis() - 1)));
    assert!(actions(&h.answer(obs)).is_empty());
    assert_eq!(h.phase(), Phase::AwaitingFirstFullBackup);
    h.tick_at_deadline();
    let obs = h.backups(Some(h.now));
    let fx = h.answer(obs);
    assert_eq!(phase_events(&h.events), ["RemovingLink"]);
    // Every DELETE follows a reading that shows the instance PRIMARY and SQL Server not.
    assert!(is_probe(&fx, Probe::Link));
    let not_yet = h.roles(Side::SqlServer, Some(ReplicaRole::Secondary));
    assert!(
        actions(&h.answer(not_yet)).is_empty(),
        "no DELETE while SQL Server is PRIMARY"
    );
    h.tick_at_deadline();
    let obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary));
    let fx = h.answer(obs);
    assert_eq!(
        instance_op(&fx),
        InstanceOp::DeleteLink {
            link: h.spec().link
        }
    );
    h.answer(Observation::OperationAccepted(op(7)));
    h.tick_at_deadline();
    h.answer(Observation::OperationRunning);
    h.tick_at_deadline();
    // The DELETE finished; a reading confirms the link is gone.
    let fx = h.done();
    assert!(is_probe(&fx, Probe::Link));
    let fx = h.done();
    assert_eq!(
        phase_events(&h.events),
        ["DroppingDag"],
        "already redirected at the failover"
    );
    assert_eq!(
        source_op(&fx),
        SourceOp::DropDistributedAvailabilityGroup { dag: h.spec().link }
    );
    let fx = h.done();
    assert_eq!(
        source_op(&fx),
        SourceOp::DropAvailabilityGroup {
            ag: h.spec().source.ag
        }
    );
    h.done();
    assert_eq!(phase_events(&h.events), ["Completed"]);
    assert!(h.m.is_terminal());
    assert_eq!(h.m.deadline(), None);
}

pub fn cutover_one_way_keeps_roles_and_redirects_after_removing_the_link() {
    let mut h = H::new(one_way());
    h.create();
    // The first full backup is awaited while SQL Server still replicates and takes writes.
    let mut all = h.cmd(Command::Cutover(keep_ag()));
    assert_eq!(h.phase(), Phase::AwaitingFirstFullBackup);
    let obs = h.backups(Some(h.now));
    all.extend(h.answer(obs));
    assert_eq!(h.phase(), Phase::PreparingFailover);
    all.extend(h.done_all());
    assert_eq!(h.phase(), Phase::CatchingUp);
    all.extend(h.fence_and_remove(1000));
    assert_eq!(h.phase(), Phase::Redirecting);
    assert!(h.m.data_loss().is_empty());
    all.extend(h.done());
    assert_eq!(h.phase(), Phase::DroppingDag);
    all.extend(h.done());
    assert_eq!(h.phase(), Phase::Completed, "the AG is kept");
    assert!(!has_failover(&all), "one-way links never change roles");
    let position = |f: &dyn Fn(&Effect) -> bool| all.iter().position(f).unwrap();
    let fence = position(&|e| {
        matches!(
            e,
            Effect::Source {
                op: SourceOp::SetRoleSecondary { .. },
                ..
            }
        )
    });
    let delete = position(&|e| {
        matches!(
            e,
            Effect::Instance {
                op: InstanceOp::DeleteLink { .. },
                ..
            }
        )
    });
    let redirect = position(&|e| {
        matches!(
            e,
            Effect::Redirect {
                primary: Side::ManagedInstance,
                ..
            }
        )
    });
    let drop = position(&|e| {
        matches!(
            e,
            Effect::Source {
                op: SourceOp::DropDistributedAvailabilityGroup { .. },
                ..
            }
        )
    });
    assert!(fence < delete && delete < redirect && redirect < drop);
}

pub fn guard_link_never_removed_before_the_first_full_backup() {
    let mut h = H::new(one_way());
    h.create();
    let seeded = h.now;
    h.cmd(Command::Cutover(keep_ag()));
    assert_eq!(h.phase(), Phase::AwaitingFirstFullBackup);
    let moves_on = |fx: &[Effect]| {
        fx.iter().any(|e| {
            matches!(
                e,
                Effect::Instance {
                    op: InstanceOp::DeleteLink { .. } | InstanceOp::SetReplicationMode { .. },
                    ..
                } | Effect::Source {
                    op: SourceOp::SetRoleSecondary { .. },
                    ..
                }
            )
        })
    };
    // A backup finished before seeding began does not count; neither does none.
    let old = h.backups(Some(Timestamp::from_millis(seeded.as_millis() - 3_600_000)));
    assert!(!moves_on(&h.answer(old.clone())));
    loop {
        let fx = h.tick_at_deadline();
        assert!(!moves_on(&fx));
        if let State::Failed {
            error, retryable, ..
        } = h.m.state()
        {
            assert!(*retryable);
            assert_eq!(error.code, "timeout");
            assert!(
                error
                    .message
                    .contains("no qualifying full backup yet of ToyStore")
            );
            break;
        }
        let obs = if h.now.as_millis().is_multiple_of(2) {
            old.clone()
        } else {
            h.backups(None)
        };
        assert!(!moves_on(&h.answer(obs)));
    }
    // Resume keeps waiting; the backup arrives; the cutover goes on (catch up, fence, remove).
    h.resume();
    let obs = h.backups(Some(h.now));
    assert!(moves_on(&h.answer(obs)));
    assert_eq!(h.phase(), Phase::PreparingFailover);
    h.done_all();
    let fx = h.fence_and_remove(1000);
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Instance {
            op: InstanceOp::DeleteLink { .. },
            ..
        }
    )));
}

/// One-way cutover from Fencing with the fence in flight.
fn fencing() -> H {
    let mut h = H::new(one_way());
    h.create();
    h.cmd(Command::Cutover(keep_ag()));
    let obs = h.backups(Some(h.now));
    h.answer(obs);
    h.done_all();
    h.pass_gate(Side::ManagedInstance);
    assert_eq!(h.phase(), Phase::Fencing);
    h
}

fn behind(h: &H, source: u128, instance: u128) -> Observation {
    let mut obs = h.fenced(instance);
    if let Observation::Link(link) = &mut obs {
        for d in &mut link.source.databases {
            d.end_of_log_lsn = Some(Lsn::new(source).unwrap());
        }
    }
    obs
}

pub fn guard_the_gate_covers_every_database_either_side_reports() {
    // A database added to the availability group after the link was created (MultiDatabase)
    // is in SQL Server's reading but not in the spec: the gate waits for it too.
    let extra = |state: SyncState, lsn: u128| {
        move |h: &H| {
            let mut obs = h.sync_equal(Side::SqlServer, 500);
            if let Observation::Link(link) = &mut obs {
                let mut db = link.source.databases[0].clone();
                db.name = DatabaseName::new("Orders2024").unwrap();
                db.sync_state = Some(SyncState::Synchronized);
                db.last_hardened_lsn = Some(Lsn::new(lsn).unwrap());
                db.partner = Some(PartnerReplica {
                    sync_state: state,
                    last_hardened_lsn: Some(Lsn::new(lsn).unwrap()),
                });
                link.source.databases.push(db);
            }
            obs
        }
    };
    let mut h = H::new(two_way());
    h.create();
    to_catching_up(&mut h);
    for _ in 0..8 {
        let obs = extra(SyncState::Synchronizing, 500)(&h);
        assert!(!has_failover(&h.answer(obs)));
        h.tick_at_deadline();
    }
    match h.m.state() {
        State::CatchingUp {
            blocker: Some(CatchUpBlocker::NotSynchronized { database, .. }),
            ..
        } => assert_eq!(database.as_str(), "Orders2024"),
        other => panic!("{other:?}"),
    }
    // Its LSNs differ between the sides: still closed.
    let mut h = H::new(two_way());
    h.create();
    to_catching_up(&mut h);
    let mut obs = extra(SyncState::Synchronized, 700)(&h);
    if let Observation::Link(link) = &mut obs {
        let mut db = link.instance.databases[0].clone();
        db.name = DatabaseName::new("Orders2024").unwrap();
        db.last_hardened_lsn = Some(Lsn::new(690).unwrap());
        link.instance.databases.push(db);
    }
    for _ in 0..8 {
        assert!(!has_failover(&h.answer(obs.clone())));
        h.tick_at_deadline();
    }
    assert!(matches!(
        h.m.state(),
        State::CatchingUp {
            blocker: Some(CatchUpBlocker::LsnsNotEqual { .. }),
            ..
        }
    ));
}

pub fn guard_one_way_cutover_fences_sql_server_and_removes_the_link_only_when_caught_up() {
    // The fence is SET (ROLE = SECONDARY) on SQL Server, after the gate, before any DELETE.
    let mut h = fencing();
    assert_eq!(
        source_op(&h.m.in_flight()),
        SourceOp::SetRoleSecondary { dag: h.spec().link }
    );
    let fx = h.done();
    assert!(is_probe(&fx, Probe::Link));
    // SQL Server wrote log the instance has not hardened (a commit slipped in before the
    // fence): no DELETE while the gap lasts, whatever the instance's lagging reading says.
    let obs = behind(&h, 1010, 1000);
    assert!(actions(&h.answer(obs)).is_empty());
    assert_eq!(h.phase(), Phase::Fencing);
    h.tick_at_deadline();
    let obs = behind(&h, 1010, 1000);
    let fx = h.answer(obs);
    assert!(!has_delete_link(&fx));
    // The gap outlasted the stability window: it is real. Undo the fence (SQL Server holds the
    // longer log, so forcing it primary loses nothing) and run the gate again.
    while h.phase() == Phase::Fencing
        && !h
            .m
            .in_flight()
            .iter()
            .any(|e| matches!(e, Effect::Source { .. }))
    {
        h.tick_at_deadline();
        let obs = behind(&h, 1010, 1000);
        let fx = h.answer(obs);
        assert!(!has_delete_link(&fx));
    }
    assert_eq!(
        source_op(&h.m.in_flight()),
        SourceOp::ForceFailover { dag: h.spec().link }
    );
    h.done();
    assert_eq!(phase_events(&h.events), ["CatchingUp"]);
    // SQL Server caught the instance up; the gate passes again; fence, verify, remove.
    let fx = h.fence_and_remove(1010);
    assert!(has_delete_link(&fx));
    assert!(h.m.data_loss().is_empty());
    assert_eq!(h.phase(), Phase::Redirecting);

    // A transient error of the verifying read reads again; a failure of the fence itself
    // fails the phase; resume reads SQL Server's role before demoting it again.
    let mut h = fencing();
    h.done();
    h.fail(true);
    assert_eq!(h.phase(), Phase::Fencing);
    let fx = h.tick_at_deadline();
    assert!(is_probe(&fx, Probe::Link));
    let mut h = fencing();
    h.fail(true);
    assert_eq!(h.phase(), Phase::Failed);
    let fx = h.resume();
    assert!(is_probe(&fx, Probe::Link), "reads the role first: {fx:?}");
    let obs = h.fenced(1000);
    let fx = h.answer(obs);
    assert!(is_probe(&fx, Probe::Link), "already demoted: verify");
    let obs = h.fenced(1000);
    assert!(has_delete_link(&h.answer(obs)));
    // The fence's reply was lost: the role decides; SQL Server still PRIMARY: demote it.
    let mut h = fencing();
    let fx = h.resume();
    assert!(is_probe(&fx, Probe::Link));
    let obs = h.sync_equal(Side::SqlServer, 1000);
    let fx = h.answer(obs);
    assert_eq!(
        source_op(&fx),
        SourceOp::SetRoleSecondary { dag: h.spec().link }
    );
    // The fence was lifted outside milink while verifying: fence again, never DELETE.
    let mut h = fencing();
    h.done();
    let obs = h.sync_equal(Side::SqlServer, 1000);
    let fx = h.answer(obs);
    assert!(!has_delete_link(&fx));
    assert!(matches!(source_op(&fx), SourceOp::SetRoleSecondary { .. }));
    // Failed while fenced: cancel undoes the fence; retry verifies again.
    let mut h = fencing();
    h.done();
    h.fail(false);
    let fx = h.cmd(Command::Cancel);
    assert_eq!(h.phase(), Phase::Fencing);
    assert!(is_probe(&fx, Probe::Link));
    let obs = h.fenced(1000);
    let fx = h.answer(obs);
    assert!(matches!(source_op(&fx), SourceOp::ForceFailover { .. }));
    h.done();
    assert_eq!(
        h.phase(),
        Phase::AbortingFailover,
        "restores asynchronous commit"
    );
    h.done_all();
    assert_eq!(h.phase(), Phase::Replicating);
    let mut h = fencing();
    h.done();
    h.fail(false);
    let fx = h.cmd(Command::Retry);
    assert!(is_probe(&fx, Probe::Link));
    assert_eq!(h.phase(), Phase::Fencing);
    // Timed out while the instance stays behind: a retryable failure that says why.
    let mut h = fencing();
    h.done();
    h.time_out();
    match h.m.state() {
        State::Failed {
            error, retryable, ..
        } => {
            assert!(*retryable);
            assert!(error.message.contains("fenced"), "{}", error.message);
        }
        other => panic!("{other:?}"),
    }
    // A workload that keeps writing: each fence meets a gap and is undone; the third undo
    // fails the cutover (retryable) instead of fencing forever.
    let mut h = fencing();
    let mut undone = 0;
    while h.phase() != Phase::Failed {
        match h.phase() {
            Phase::Fencing => {
                if matches!(h.pending(), Effect::Source { .. }) {
                    if matches!(
                        h.pending(),
                        Effect::Source {
                            op: SourceOp::ForceFailover { .. },
                            ..
                        }
                    ) {
                        undone += 1;
                    }
                    h.done();
                } else {
                    let obs = behind(&h, 1010, 1000);
                    h.answer(obs);
                    if h.m.in_flight().is_empty() {
                        h.tick_at_deadline();
                    }
                }
            }
            Phase::CatchingUp => h.pass_gate(Side::ManagedInstance),
            other => panic!("{other}"),
        }
        assert!(undone <= 3, "bounded");
    }
    assert_eq!(undone, 3);
    match h.m.state() {
        State::Failed {
            error, retryable, ..
        } => {
            assert!(*retryable);
            assert!(error.message.contains("still writes"), "{}", error.message);
        }
        other => panic!("{other:?}"),
    }
    // A forced failover is refused (one-way), and so is cancel while undoing, which only marks
    // the undo as final.
    let mut h = fencing();
    assert_eq!(h.reject_cmd(ack()), RejectReason::OneWayLink);
}

pub fn guard_a_failed_failover_is_never_sent_again_without_a_fresh_gate() {
    // The FAILOVER failed; the workload came back. Resume reads the roles: unchanged, so the
    // gate runs again on new readings and stays closed while the LSNs move.
    let mut h = reach(Phase::FailingOver);
    h.fail(true);
    let fx = h.resume();
    assert!(is_probe(&fx, Probe::Link));
    assert!(!has_failover(&fx));
    let obs = h.roles(Side::SqlServer, Some(ReplicaRole::Secondary));
    let fx = h.answer(obs);
    assert!(!has_failover(&fx));
    assert_eq!(h.phase(), Phase::CatchingUp);
    let mut l = 600;
    for _ in 0..10 {
        let obs = h.sync_equal(Side::SqlServer, l);
        let fx = h.answer(obs);
        assert!(!has_failover(&fx), "LSNs move: no FAILOVER");
        l += 7;
        h.tick_at_deadline();
    }
    // Retry after a non-retryable failure does the same.
    let mut h = reach(Phase::FailingOver);
    h.fail(false);
    let fx = h.cmd(Command::Retry);
    assert!(is_probe(&fx, Probe::Link));
    let obs = h.roles(Side::SqlServer, Some(ReplicaRole::Secondary));
    assert!(!has_failover(&h.answer(obs)));
    assert_eq!(h.phase(), Phase::CatchingUp);
    // Cancel of a failed failover that did not take effect, already synchronous before:
    // straight back to Replicating.
    let mut h = H::new(two_way());
    h.create();
    h.tick_at_deadline();
    let obs = h.sync_equal(Side::SqlServer, 5);
    h.answer(obs);
    h.cmd(Command::Failover(FailoverKind::Planned));
    h.switch_to_sync();
    h.pass_gate(Side::ManagedInstance);
    h.fail(false);
    h.cmd(Command::Cancel);
    let obs = h.roles(Side::SqlServer, Some(ReplicaRole::Secondary));
    assert!(!has_failover(&h.answer(obs)));
    assert_eq!(h.phase(), Phase::Replicating);
}

pub fn data_loss_after_a_role_change_or_removal_is_reported() {
    // A planned failover after which SQL Server (now secondary) holds log the instance never
    // hardened: reported, not hidden.
    let mut h = reach(Phase::VerifyingRoles);
    let mut obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary));
    if let Observation::Link(link) = &mut obs {
        for d in &mut link.source.databases {
            d.end_of_log_lsn = Some(Lsn::new(900).unwrap());
        }
    }
    h.answer(obs);
    assert_eq!(h.phase(), Phase::Redirecting);
    let reports: Vec<_> = h
        .events
        .iter()
        .filter_map(|e| match e {
            ProgressEvent::DataLoss { report } => Some(report.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(reports.len(), 1, "{:?}", h.events);
    assert_eq!(reports[0].side, Side::SqlServer);
    assert_eq!(h.m.data_loss(), &reports[..]);
    assert!(reports[0].to_string().contains("DATA LOSS"));
    // The same failover with equal logs reports nothing.
    let mut h = reach(Phase::VerifyingRoles);
    let obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary));
    h.answer(obs);
    assert!(h.m.data_loss().is_empty());
    // One-way: after the DELETE, SQL Server's end of log moved past what the fence verified
    // (the fence did not hold): reported.
    let mut h = fencing();
    h.done();
    let obs = h.fenced(1000);
    h.answer(obs);
    h.done();
    let mut gone = h.gone(1000);
    if let Observation::Link(link) = &mut gone {
        for d in &mut link.source.databases {
            d.end_of_log_lsn = Some(Lsn::new(1003).unwrap());
        }
    }
    h.answer(gone);
    assert_eq!(h.phase(), Phase::Redirecting);
    assert_eq!(h.m.data_loss().len(), 1);
    assert_eq!(h.m.data_loss()[0].end_of_log, Lsn::new(1003).unwrap());
}

/// A two-way link whose planned failovers go through ARM (SQL Server 2022 CU10).
fn arm_failover() -> H {
    let spec = spec_with(
        "16.0.4095.4",
        FailoverMode::Manual,
        Side::SqlServer,
        UpdatePolicy::SqlServer2022,
        &["ToyStore"],
    );
    let mut h = H::new(spec);
    h.create();
    to_catching_up(&mut h);
    h.pass_gate(Side::ManagedInstance);
    assert_eq!(h.phase(), Phase::FailingOver);
    h
}

fn posts_failover(effects: &[Effect]) -> bool {
    effects.iter().any(|e| {
        matches!(
            e,
            Effect::Instance {
                op: InstanceOp::Failover { .. },
                ..
            }
        )
    })
}

/// The instance's link resource says a failover is running.
fn failover_running(h: &H) -> Observation {
    let mut obs = h.sync_equal(Side::SqlServer, 900);
    if let Observation::Link(link) = &mut obs {
        for d in &mut link.instance.databases {
            d.replica_state = Some("LinkFailoverInProgress".to_owned());
        }
    }
    obs
}

pub fn an_accepted_role_change_is_followed_never_sent_again() {
    // Accepted, still running, and the step times out: resume and retry poll the same URL.
    for retry in [false, true] {
        let mut h = arm_failover();
        h.answer(Observation::OperationAccepted(op(11)));
        h.time_out();
        assert_eq!(h.phase(), Phase::Failed);
        let fx = if retry {
            h.cmd(Command::Retry)
        } else {
            h.resume()
        };
        assert!(is_poll(&fx, &op(11)), "follows the operation: {fx:?}");
        assert!(!posts_failover(&fx));
        h.answer(Observation::OperationRunning);
        h.tick_at_deadline();
        h.done();
        assert_eq!(phase_events(&h.events), ["VerifyingRoles"]);
    }
    // The operation itself failed (not retryable): the roles decide, not the URL.
    let mut h = arm_failover();
    h.answer(Observation::OperationAccepted(op(12)));
    h.tick_at_deadline();
    h.fail(false);
    let fx = h.cmd(Command::Retry);
    assert!(is_probe(&fx, Probe::Link));
    // The same for a forced failover and the link's removal.
    let mut h = H::new(two_way());
    h.create();
    force(&mut h);
    h.answer(Observation::OperationAccepted(op(13)));
    h.time_out();
    assert!(is_poll(&h.resume(), &op(13)));
    let mut h = reach(Phase::RemovingLink);
    h.answer(Observation::OperationAccepted(op(14)));
    h.time_out();
    let fx = h.resume();
    assert!(is_poll(&fx, &op(14)));
    assert!(!has_delete_link(&fx));
}

pub fn the_services_evidence_decides_before_a_role_change_is_sent_again() {
    // The reply was lost before any URL was known; the link resource says a failover is
    // running: wait and read again, never POST a second one.
    let mut h = arm_failover();
    let fx = h.resume();
    assert!(is_probe(&fx, Probe::Link));
    let obs = failover_running(&h);
    assert!(!posts_failover(&h.answer(obs)));
    assert_eq!(h.phase(), Phase::FailingOver);
    h.tick_at_deadline();
    let obs = failover_running(&h);
    assert!(!posts_failover(&h.answer(obs)));
    h.tick_at_deadline();
    // It finished: verify, never send it again.
    let obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary));
    let fx = h.answer(obs);
    assert!(!posts_failover(&fx));
    assert_eq!(h.phase(), Phase::VerifyingRoles);

    // A POST answered "a role change is already in progress" is evidence, not a failure.
    let mut h = arm_failover();
    let step = h.pending_step();
    let fx = h.answer_step(
        step,
        Err(StepError {
            code: "arm:409:DistributedAvailabilityGroupSetRoleChangeRoleAlreadyInProgress"
                .to_owned(),
            message: "A role change on this link is already in progress.".to_owned(),
            retryable: false,
        }),
    );
    assert!(fx.is_empty());
    assert_eq!(h.phase(), Phase::FailingOver);
    let fx = h.tick_at_deadline();
    assert!(is_probe(&fx, Probe::Link));
    // "Already in the requested role": verify.
    let obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary));
    h.answer(obs);
    assert_eq!(h.phase(), Phase::VerifyingRoles);

    // Gate again after a failure, but the earlier failover went through meanwhile (it was
    // accepted before its reply was lost): verify it, never send a second one, which would
    // hand the role back.
    let mut h = arm_failover();
    h.fail(true);
    h.resume();
    let obs = h.roles(Side::SqlServer, Some(ReplicaRole::Secondary));
    h.answer(obs);
    assert_eq!(h.phase(), Phase::CatchingUp);
    let obs = failover_running(&h);
    assert!(!posts_failover(&h.answer(obs)));
    assert_eq!(h.phase(), Phase::CatchingUp);
    h.tick_at_deadline();
    let obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary));
    let fx = h.answer(obs);
    assert!(!posts_failover(&fx));
    assert_eq!(h.phase(), Phase::VerifyingRoles);
}

pub fn split_brain_is_seen_whenever_the_roles_are_read() {
    // After a forced failover the old primary came back still PRIMARY while nothing ran: a
    // refresh (health, resume) sees it, with the time.
    let mut h = H::new(two_way());
    h.create();
    force(&mut h);
    h.done();
    let mut obs = h.roles(Side::ManagedInstance, None);
    if let Observation::Link(link) = &mut obs {
        link.unreachable = Some(Side::SqlServer);
        link.source = empty_side();
    }
    h.answer(obs);
    h.done();
    assert_eq!(h.phase(), Phase::FailedOver);
    h.settle();
    let fx = h.cmd(Command::Refresh);
    assert!(is_probe(&fx, Probe::Link));
    assert_eq!(h.cmd(Command::Refresh), vec![], "one reading at a time");
    let seen = h.now;
    let obs = h.both_primary();
    h.answer(obs);
    assert_eq!(h.phase(), Phase::SplitBrain);
    assert!(
        h.events
            .contains(&ProgressEvent::SplitBrain { seen_at: seen })
    );
    assert_eq!(h.m.split_brain_since(), Some(seen));
    // Still both PRIMARY: stays; resolved outside milink (SQL Server demoted): FailedOver.
    h.cmd(Command::Refresh);
    let obs = h.both_primary();
    h.answer(obs);
    assert_eq!(h.phase(), Phase::SplitBrain);
    h.cmd(Command::Refresh);
    let obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary));
    h.answer(obs);
    assert_eq!(
        h.m.state(),
        &State::FailedOver {
            primary: Side::ManagedInstance,
            data_loss_possible: true
        }
    );
    assert_eq!(h.m.split_brain_since(), None);
    // Refresh in Replicating reads too; elsewhere it is refused.
    let mut h = reach(Phase::Replicating);
    h.done();
    assert!(is_probe(&h.cmd(Command::Refresh), Probe::Link));
    let obs = h.healthy();
    h.answer(obs);
    let mut h = reach(Phase::Seeding);
    assert_eq!(
        h.reject_cmd(Command::Refresh),
        RejectReason::NotAllowedInState
    );
    // Before the link's removal: both PRIMARY is a split brain, never a DELETE.
    let mut h = reach(Phase::AwaitingFirstFullBackup);
    let obs = h.backups(Some(h.now));
    h.answer(obs);
    let obs = h.both_primary();
    let fx = h.answer(obs);
    assert!(!has_delete_link(&fx));
    assert_eq!(h.phase(), Phase::SplitBrain);
    // During the strict role check: a lagging reading right after the change is waited out;
    // both PRIMARY for the stability window is a split brain.
    let mut h = reach(Phase::VerifyingRoles);
    let obs = h.both_primary();
    h.answer(obs);
    assert_eq!(h.phase(), Phase::VerifyingRoles);
    while h.phase() == Phase::VerifyingRoles {
        h.tick_at_deadline();
        let obs = h.both_primary();
        h.answer(obs);
    }
    assert_eq!(h.phase(), Phase::SplitBrain);
}

pub fn repair_reads_before_it_acts_and_never_leaves_no_primary() {
    let split = || {
        let mut h = H::new(two_way());
        h.create();
        h.tick_at_deadline();
        let obs = h.both_primary();
        h.answer(obs);
        assert_eq!(h.phase(), Phase::SplitBrain);
        h
    };
    // A DBA already demoted SQL Server: keeping SQL Server would demote the instance too and
    // leave no primary. Refused, nothing sent.
    let mut h = split();
    h.cmd(Command::RepairSplitBrain {
        keep: Side::SqlServer,
    });
    let obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary));
    let fx = h.answer(obs);
    assert!(actions(&fx).is_empty(), "{fx:?}");
    match h.m.state() {
        State::Failed {
            error, retryable, ..
        } => {
            assert!(!*retryable);
            assert!(
                error.message.contains("leave no primary"),
                "{}",
                error.message
            );
        }
        other => panic!("{other:?}"),
    }
    // Cancel settles on the roles the servers report.
    h.cmd(Command::Cancel);
    assert_eq!(
        h.m.state(),
        &State::FailedOver {
            primary: Side::ManagedInstance,
            data_loss_possible: true
        }
    );
    // Already repaired outside milink the way asked: verify, send nothing.
    let mut h = split();
    h.cmd(Command::RepairSplitBrain {
        keep: Side::ManagedInstance,
    });
    let obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary));
    h.answer(obs);
    assert_eq!(phase_events(&h.events), ["VerifyingRoles"]);
    // A one-way link is never reversed: only SQL Server can be kept.
    let mut h = H::new(one_way());
    h.create();
    h.tick_at_deadline();
    let obs = h.both_primary();
    h.answer(obs);
    assert_eq!(h.phase(), Phase::SplitBrain);
    assert_eq!(
        h.reject_cmd(Command::RepairSplitBrain {
            keep: Side::ManagedInstance
        }),
        RejectReason::OneWayLink
    );
    let fx = h.cmd(Command::RepairSplitBrain {
        keep: Side::SqlServer,
    });
    assert!(is_probe(&fx, Probe::Link));
}

pub fn there_is_always_a_way_out_of_a_failed_role_change() {
    // SQL Server died during the planned failover: the failover failed, SQL Server cannot be
    // read. A forced failover (acknowledged) is allowed.
    let mut h = arm_failover();
    h.fail(true);
    h.resume();
    let mut obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary));
    if let Observation::Link(link) = &mut obs {
        link.source = empty_side();
        link.instance.role = Some(ReplicaRole::Secondary);
        link.unreachable = Some(Side::SqlServer);
    }
    h.answer(obs);
    h.time_out();
    assert_eq!(h.phase(), Phase::Failed);
    let fx = force(&mut h);
    assert_eq!(h.phase(), Phase::ForcingFailover);
    assert!(matches!(
        instance_op(&fx),
        InstanceOp::Failover {
            failover_type: ArmFailoverType::ForcedAllowDataLoss,
            ..
        }
    ));
    // Both sides answer: no forced failover out of the failed planned one (resume or retry).
    let mut h = arm_failover();
    h.fail(false);
    assert_eq!(
        h.reject_cmd(ack()),
        RejectReason::PrimaryAnswers {
            side: Side::SqlServer
        }
    );
    // The role change completed but the old side cannot be read any more: the strict role
    // check goes on to the redirect instead of waiting forever.
    let mut h = reach(Phase::VerifyingRoles);
    let mut obs = h.roles(Side::ManagedInstance, None);
    if let Observation::Link(link) = &mut obs {
        link.source = empty_side();
        link.unreachable = Some(Side::SqlServer);
    }
    h.answer(obs);
    assert_eq!(h.phase(), Phase::Redirecting);
    // Stuck in a failed role check with the roles flipped back: cancel settles on them.
    let mut h = reach(Phase::VerifyingRoles);
    let obs = h.roles(Side::SqlServer, Some(ReplicaRole::Secondary));
    h.answer(obs);
    h.time_out();
    assert_eq!(h.phase(), Phase::Failed);
    h.cmd(Command::Cancel);
    assert!(matches!(h.m.state(), State::Replicating { .. }));
    // Failed with both sides PRIMARY in the latest reading: repair is allowed.
    let mut h = reach(Phase::FailingOver);
    h.fail(false);
    h.cmd(Command::Cancel);
    h.until_split_brain();
    let mut h = reach(Phase::VerifyingRoles);
    h.fail_first(false);
    // (the failure came from the reading itself; make the latest reading a split brain)
    let mut h2 = reach(Phase::VerifyingRoles);
    let obs = h2.both_primary();
    h2.answer(obs);
    h2.time_out();
    assert_eq!(h2.phase(), Phase::Failed);
    assert!(is_probe(
        &h2.cmd(Command::RepairSplitBrain {
            keep: Side::ManagedInstance
        }),
        Probe::Link
    ));
    assert_eq!(h2.phase(), Phase::Repairing);
    assert_eq!(
        h.reject_cmd(Command::RepairSplitBrain {
            keep: Side::ManagedInstance
        }),
        RejectReason::SplitBrainNotPresent
    );
    // Cancel of a failed role check whose latest reading shows both PRIMARY: SplitBrain, and a
    // reading after a DBA demoted the instance settles in Replicating.
    let mut h = reach(Phase::VerifyingRoles);
    let obs = h.both_primary();
    h.answer(obs);
    h.time_out();
    h.cmd(Command::Cancel);
    assert_eq!(h.phase(), Phase::SplitBrain);
    h.cmd(Command::Refresh);
    let obs = h.roles(Side::SqlServer, Some(ReplicaRole::Secondary));
    h.answer(obs);
    assert!(matches!(h.m.state(), State::Replicating { .. }));
}

pub fn the_proof_runs_when_it_can_and_says_when_it_could_not() {
    // The failover's reply was lost; the gate runs again; the earlier attempt went through and
    // SQL Server holds log the instance never hardened: the proof still runs and reports it.
    let mut h = reach(Phase::FailingOver);
    h.fail(true);
    h.resume();
    let obs = h.roles(Side::SqlServer, Some(ReplicaRole::Secondary));
    h.answer(obs);
    assert_eq!(h.phase(), Phase::CatchingUp);
    let mut obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary));
    h.answer(obs.clone());
    assert_eq!(h.phase(), Phase::VerifyingRoles);
    if let Observation::Link(link) = &mut obs {
        for d in &mut link.source.databases {
            d.end_of_log_lsn = Some(Lsn::new(900).unwrap());
        }
    }
    h.answer(obs);
    assert_eq!(h.phase(), Phase::Redirecting);
    assert_eq!(h.m.data_loss().len(), 1, "proof after a lost reply");

    // The old primary cannot be read when the roles are verified: a note says the check is
    // pending; the first steady reading that reads it runs the check.
    let mut h = reach(Phase::VerifyingRoles);
    let mut obs = h.roles(Side::ManagedInstance, None);
    if let Observation::Link(link) = &mut obs {
        link.source = empty_side();
        link.unreachable = Some(Side::SqlServer);
    }
    h.answer(obs);
    assert_eq!(h.phase(), Phase::Redirecting);
    assert_eq!(h.m.unverified().len(), 1);
    assert!(h.m.unverified()[0].contains("could not be read"));
    h.done();
    assert_eq!(h.phase(), Phase::FailedOver);
    let mut obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary));
    if let Observation::Link(link) = &mut obs {
        for d in &mut link.source.databases {
            d.sync_state = Some(SyncState::Reverting);
        }
    }
    h.answer(obs);
    assert!(h.m.unverified().is_empty(), "checked now");
    assert_eq!(h.m.data_loss().len(), 1, "the old primary reverts: loss");

    // A one-way removal whose confirming reading cannot read SQL Server: noted.
    let mut h = fencing();
    h.done();
    let obs = h.fenced(1000);
    h.answer(obs);
    h.done();
    let mut gone = h.gone(1000);
    if let Observation::Link(link) = &mut gone {
        link.source = empty_side();
        link.unreachable = Some(Side::SqlServer);
    }
    h.answer(gone);
    assert_eq!(h.phase(), Phase::Redirecting);
    assert!(h.m.data_loss().is_empty());
    assert_eq!(h.m.unverified().len(), 1);
}

pub fn no_removal_on_a_guess_and_a_way_out_of_every_stuck_state() {
    // After a forced failover, the cutover's DELETE waits until SQL Server is read as not
    // PRIMARY (it may be up and PRIMARY: a split brain).
    let mut h = H::new(two_way());
    h.create();
    force(&mut h);
    h.done();
    let mut obs = h.roles(Side::ManagedInstance, None);
    if let Observation::Link(link) = &mut obs {
        link.source = empty_side();
        link.unreachable = Some(Side::SqlServer);
    }
    h.answer(obs.clone());
    h.done();
    assert_eq!(h.phase(), Phase::FailedOver);
    h.settle();
    h.cmd(Command::Cutover(keep_ag()));
    let backups = h.backups(Some(h.now));
    h.answer(backups);
    assert_eq!(h.phase(), Phase::RemovingLink);
    let fx = h.answer(obs);
    assert!(
        !has_delete_link(&fx),
        "SQL Server unread after a forced failover"
    );
    h.tick_at_deadline();
    let obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary));
    assert!(has_delete_link(&h.answer(obs)));

    // A one-way cutover stuck in its fence (SQL Server went dark after SET ROLE = SECONDARY):
    // the acknowledged way out removes the link anyway, and says what it did not verify.
    let mut h = fencing();
    h.done();
    h.time_out();
    assert_eq!(h.phase(), Phase::Failed);
    assert_eq!(
        h.reject_cmd(Command::Failover(FailoverKind::Forced(None))),
        RejectReason::DataLossNotAcknowledged
    );
    force(&mut h);
    assert_eq!(h.phase(), Phase::RemovingLink);
    let mut obs = h.roles(Side::SqlServer, Some(ReplicaRole::Secondary));
    if let Observation::Link(link) = &mut obs {
        link.source = empty_side();
        link.unreachable = Some(Side::SqlServer);
    }
    let fx = h.answer(obs);
    assert!(has_delete_link(&fx));
    assert!(h.m.unverified()[0].contains("without verifying"));

    // Both sides SECONDARY after a role change: a forced failover makes the target primary.
    let mut h = reach(Phase::VerifyingRoles);
    let obs = h.roles(Side::SqlServer, Some(ReplicaRole::Secondary));
    let mut both = obs;
    if let Observation::Link(link) = &mut both {
        link.source.role = Some(ReplicaRole::Secondary);
    }
    h.answer(both);
    h.time_out();
    let fx = force(&mut h);
    assert_eq!(h.phase(), Phase::ForcingFailover);
    assert!(matches!(
        instance_op(&fx),
        InstanceOp::Failover {
            failover_type: ArmFailoverType::ForcedAllowDataLoss,
            ..
        }
    ));

    // A split brain that arises while the link is Failed is seen by a refresh.
    let mut h = reach(Phase::CatchingUp);
    h.time_out();
    assert_eq!(h.phase(), Phase::Failed);
    assert!(is_probe(&h.cmd(Command::Refresh), Probe::Link));
    let obs = h.both_primary();
    h.answer(obs);
    assert_eq!(h.phase(), Phase::SplitBrain);
    let mut h = reach(Phase::CatchingUp);
    h.time_out();
    h.cmd(Command::Refresh);
    let obs = h.sync_equal(Side::SqlServer, 5);
    h.answer(obs);
    assert_eq!(h.phase(), Phase::Failed, "nothing changed: still failed");

    // The cancel's DELETE is not sent again when the instance cannot be read.
    let mut h = reach(Phase::Cancelling);
    h.resume();
    let mut obs = h.roles(Side::SqlServer, None);
    if let Observation::Link(link) = &mut obs {
        link.instance = empty_side();
        link.unreachable = Some(Side::ManagedInstance);
    }
    let fx = h.answer(obs);
    assert!(!has_delete_link(&fx));

    // The live update policy moved to Always-up-to-date: a failover to the instance that keeps
    // the link (SQL Server would become its secondary) is refused; so is keeping it in a repair.
    let mut h = H::new(two_way());
    h.create();
    h.tick_at_deadline();
    let mut obs = h.healthy();
    if let Observation::Link(link) = &mut obs {
        link.instance.update_policy = Some(UpdatePolicy::AlwaysUpToDate);
    }
    h.answer(obs);
    assert!(matches!(
        h.reject_cmd(Command::Failover(FailoverKind::Planned)),
        RejectReason::UpdatePolicyMismatch { .. }
    ));
    assert!(matches!(
        h.reject_cmd(ack()),
        RejectReason::UpdatePolicyMismatch { .. }
    ));
    h.tick_at_deadline();
    let mut obs = h.both_primary();
    if let Observation::Link(link) = &mut obs {
        link.instance.update_policy = Some(UpdatePolicy::AlwaysUpToDate);
    }
    h.answer(obs);
    assert_eq!(h.phase(), Phase::SplitBrain);
    assert!(matches!(
        h.reject_cmd(Command::RepairSplitBrain {
            keep: Side::ManagedInstance
        }),
        RejectReason::UpdatePolicyMismatch { .. }
    ));
}

pub fn cutover_when_the_instance_is_already_primary() {
    let mut h = H::new(two_way());
    h.create();
    h.planned_failover();
    let failed_over_at = h.now;
    h.advance(Duration::from_secs(3600));
    let fx = h.cmd(Command::Cutover(keep_ag()));
    assert_eq!(phase_events(&h.events), ["AwaitingFirstFullBackup"]);
    assert!(!has_failover(&fx));
    match h.m.state() {
        State::AwaitingFirstFullBackup { backup_after, .. } => {
            assert!(backup_after.is_some_and(|t| t <= failed_over_at))
        }
        other => panic!("{other:?}"),
    }
    let obs = h.backups(Some(failed_over_at));
    h.answer(obs);
    assert_eq!(h.phase(), Phase::RemovingLink);
}

pub fn cutover_on_a_reverse_link() {
    // The instance is the initial primary: no catch-up, any full backup counts.
    let mut h = H::new(reverse());
    h.create();
    h.cmd(Command::Cutover(keep_ag()));
    assert_eq!(h.phase(), Phase::AwaitingFirstFullBackup);
    let obs = h.backups(Some(Timestamp::from_millis(1)));
    h.answer(obs);
    assert_eq!(h.phase(), Phase::RemovingLink);

    // Failed over to SQL Server: the cutover brings the databases back to the instance first.
    let mut h = H::new(reverse());
    h.create();
    h.planned_failover();
    assert_eq!(
        h.m.state(),
        &State::FailedOver {
            primary: Side::SqlServer,
            data_loss_possible: false
        }
    );
    h.cmd(Command::Cutover(keep_ag()));
    // The failover left both sides synchronous: straight to the gate.
    assert!(matches!(
        h.m.state(),
        State::CatchingUp {
            plan: Plan {
                target: Side::ManagedInstance,
                prepared: true,
                ..
            },
            ..
        }
    ));
}

// ---------------------------------------------------------------------------------------------
// Cancel.

pub fn cancel_during_creation_removes_what_was_attempted() {
    let start = |h: &mut H| {
        h.cmd(Command::RecordAssessment(AssessmentOutcome {
            blockers: vec![],
        }));
        h.cmd(Command::Start);
    };
    // Draft, Assessed, PreparingSource, ExchangingTrust: nothing link-related exists.
    let mut h = H::new(two_way());
    h.cmd(Command::Cancel);
    assert_eq!(phase_events(&h.events), ["Cancelled"]);
    let mut h = H::new(two_way());
    h.cmd(Command::RecordAssessment(AssessmentOutcome {
        blockers: vec![],
    }));
    h.cmd(Command::Cancel);
    assert_eq!(h.phase(), Phase::Cancelled);
    for phase in [Phase::PreparingSource, Phase::ExchangingTrust] {
        let mut h = H::new(two_way());
        start(&mut h);
        while h.phase() != phase {
            h.done();
        }
        let fx = h.cmd(Command::Cancel);
        assert!(actions(&fx).is_empty());
        assert_eq!(h.phase(), Phase::Cancelled);
    }
    // CreatingAg: drop the AG.
    let mut h = H::new(two_way());
    start(&mut h);
    while h.phase() != Phase::CreatingAg {
        h.done();
    }
    let fx = h.cmd(Command::Cancel);
    assert_eq!(
        source_op(&fx),
        SourceOp::DropAvailabilityGroup {
            ag: h.spec().source.ag
        }
    );
    h.done();
    assert_eq!(h.phase(), Phase::Cancelled);
    // CreatingDag: drop DAG then AG.
    let mut h = H::new(two_way());
    start(&mut h);
    while h.phase() != Phase::CreatingDag {
        h.done();
    }
    let fx = h.cmd(Command::Cancel);
    assert!(matches!(
        source_op(&fx),
        SourceOp::DropDistributedAvailabilityGroup { .. }
    ));
    let fx = h.done();
    assert!(matches!(
        source_op(&fx),
        SourceOp::DropAvailabilityGroup { .. }
    ));
    h.done();
    assert_eq!(h.phase(), Phase::Cancelled);
    // JoiningInstance with the PUT in flight: delete the link (long-running), DAG, AG.
    let mut h = H::new(two_way());
    start(&mut h);
    while h.phase() != Phase::JoiningInstance {
        h.done();
    }
    let put = h.pending_step();
    let fx = h.cmd(Command::Cancel);
    assert_eq!(phase_events(&h.events), ["Cancelling"]);
    assert!(matches!(instance_op(&fx), InstanceOp::DeleteLink { .. }));
    assert_eq!(
        h.reject(Input::Observed {
            step: put,
            result: Ok(Observation::Done)
        }),
        RejectReason::UnknownStep,
        "the abandoned PUT's answer is stale"
    );
    h.answer(Observation::OperationAccepted(op(8)));
    assert_eq!(h.phase(), Phase::Cancelling);
    h.tick_at_deadline();
    let fx = h.done();
    assert!(matches!(
        source_op(&fx),
        SourceOp::DropDistributedAvailabilityGroup { .. }
    ));
    assert_eq!(
        h.reject_cmd(Command::Cancel),
        RejectReason::NotAllowedInState
    );
    h.done();
    h.done();
    assert_eq!(h.phase(), Phase::Cancelled);
    // Seeding and Replicating: the same removal, databases untouched.
    for replicating in [false, true] {
        let mut h = H::new(two_way());
        if replicating {
            h.create();
        } else {
            start(&mut h);
            while h.phase() != Phase::Seeding {
                h.done();
            }
        }
        let mut all = h.cmd(Command::Cancel);
        while h.phase() == Phase::Cancelling {
            all.extend(h.done());
        }
        assert_eq!(h.phase(), Phase::Cancelled);
        let ops: Vec<_> = actions(&all);
        assert_eq!(ops.len(), 3, "{ops:?}");
    }
}

pub fn cancel_during_catch_up_abandons_the_role_change() {
    // The link was asynchronous: restore it, then back to Replicating.
    let mut h = H::new(two_way());
    h.create();
    h.cmd(Command::Failover(FailoverKind::Planned));
    let fx = h.cmd(Command::Cancel);
    assert_eq!(phase_events(&h.events), ["AbortingFailover"]);
    let acts = actions(&fx);
    assert!(matches!(
        &acts[0],
        Effect::Source {
            op: SourceOp::SetAvailabilityMode {
                mode: AvailabilityMode::AsynchronousCommit,
                ..
            },
            ..
        }
    ));
    assert!(matches!(
        &acts[1],
        Effect::Instance {
            op: InstanceOp::SetReplicationMode {
                mode: AvailabilityMode::AsynchronousCommit,
                ..
            },
            ..
        }
    ));
    h.answer_step(acts[1].step(), Ok(Observation::OperationAccepted(op(9))));
    h.answer_step(acts[0].step(), Ok(Observation::Done));
    assert_eq!(h.phase(), Phase::AbortingFailover);
    h.tick_at_deadline();
    h.done();
    assert_eq!(h.phase(), Phase::Replicating);

    let mut h = H::new(two_way());
    h.create();
    to_catching_up(&mut h);
    h.cmd(Command::Cancel);
    assert_eq!(h.phase(), Phase::AbortingFailover);

    // The link was already synchronous: nothing to restore.
    for catching_up in [false, true] {
        let mut h = H::new(two_way());
        h.create();
        h.tick_at_deadline();
        let obs = h.sync_equal(Side::SqlServer, 5);
        h.answer(obs);
        h.cmd(Command::Failover(FailoverKind::Planned));
        if catching_up {
            h.done_all();
        }
        let fx = h.cmd(Command::Cancel);
        assert!(
            !actions(&fx)
                .iter()
                .any(|e| matches!(e, Effect::Source { .. }))
        );
        assert_eq!(h.phase(), Phase::Replicating);
    }

    // A failback abandoned: back to FailedOver.
    for catching_up in [false, true] {
        let mut h = H::new(two_way());
        h.create();
        h.planned_failover();
        h.cmd(Command::Failback);
        if catching_up {
            h.done_all();
        }
        h.cmd(Command::Cancel);
        assert_eq!(
            h.m.state(),
            &State::FailedOver {
                primary: Side::ManagedInstance,
                data_loss_possible: false
            }
        );
    }
    // ... restoring asynchronous commit if it was switched back after the failover.
    let mut h = H::new(two_way());
    h.create();
    h.planned_failover();
    h.tick_at_deadline();
    let mut obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary));
    if let Observation::Link(l) = &mut obs {
        l.source.mode = Some(AvailabilityMode::AsynchronousCommit);
    }
    h.answer(obs);
    h.cmd(Command::Failback);
    h.cmd(Command::Cancel);
    assert_eq!(h.phase(), Phase::AbortingFailover);
    h.done_all();
    assert_eq!(h.phase(), Phase::FailedOver);
}

pub fn cancel_of_a_cutover_before_link_removal() {
    // One-way, waiting for the backup: nothing changed yet, back to Replicating.
    let one_way = |mode: AvailabilityMode| {
        let mut h = H::new(one_way());
        h.create();
        h.tick_at_deadline();
        let mut obs = h.healthy();
        if let Observation::Link(l) = &mut obs {
            l.source.mode = Some(mode);
        }
        h.answer(obs);
        h.cmd(Command::Cutover(keep_ag()));
        assert_eq!(h.phase(), Phase::AwaitingFirstFullBackup);
        h
    };
    let mut h = one_way(AvailabilityMode::AsynchronousCommit);
    h.cmd(Command::Cancel);
    assert_eq!(h.phase(), Phase::Replicating);
    // One-way, fenced: undo the fence (SQL Server takes writes again), restore async, back to
    // Replicating.
    let fenced = |mode| {
        let mut h = one_way(mode);
        let obs = h.backups(Some(h.now));
        h.answer(obs);
        h.done_all();
        h.pass_gate(Side::ManagedInstance);
        assert_eq!(h.phase(), Phase::Fencing);
        h.done();
        h
    };
    let mut h = fenced(AvailabilityMode::AsynchronousCommit);
    let fx = h.cmd(Command::Cancel);
    assert!(is_probe(&fx, Probe::Link), "reads SQL Server's role first");
    let obs = h.fenced(1000);
    let fx = h.answer(obs);
    assert_eq!(
        source_op(&fx),
        SourceOp::ForceFailover { dag: h.spec().link }
    );
    h.done();
    assert_eq!(h.phase(), Phase::AbortingFailover);
    h.done_all();
    assert_eq!(h.phase(), Phase::Replicating);
    // Cancelled before the fence took effect: SQL Server still PRIMARY, nothing to undo.
    let mut h = one_way(AvailabilityMode::SynchronousCommit);
    let obs = h.backups(Some(h.now));
    h.answer(obs);
    h.done_all();
    h.pass_gate(Side::ManagedInstance);
    h.cmd(Command::Cancel);
    let obs = h.sync_equal(Side::SqlServer, 1000);
    let fx = h.answer(obs);
    assert!(!fx.iter().any(|e| matches!(
        e,
        Effect::Source {
            op: SourceOp::ForceFailover { .. },
            ..
        }
    )));
    assert_eq!(h.phase(), Phase::Replicating);
    // Two-way, after the cutover's failover: stay failed over.
    let mut h = H::new(two_way());
    h.create();
    h.cmd(Command::Cutover(keep_ag()));
    h.done_all();
    h.pass_gate(Side::ManagedInstance);
    h.done();
    h.verify_and_redirect(Side::ManagedInstance);
    h.cmd(Command::Cancel);
    assert_eq!(
        h.m.state(),
        &State::FailedOver {
            primary: Side::ManagedInstance,
            data_loss_possible: false
        }
    );
}

pub fn cancel_is_refused_after_a_role_change() {
    let mut h = H::new(two_way());
    h.create();
    to_catching_up(&mut h);
    h.pass_gate(Side::ManagedInstance);
    assert_eq!(h.phase(), Phase::FailingOver);
    assert_eq!(h.reject_cmd(Command::Cancel), RejectReason::CancelTooLate);
    h.done();
    assert_eq!(h.reject_cmd(Command::Cancel), RejectReason::CancelTooLate);
    let obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary));
    h.answer(obs);
    assert_eq!(h.reject_cmd(Command::Cancel), RejectReason::CancelTooLate);
    h.done();
    assert_eq!(h.phase(), Phase::FailedOver);
    assert_eq!(h.reject_cmd(Command::Cancel), RejectReason::CancelTooLate);
    let mut h = H::new(two_way());
    h.create();
    force(&mut h);
    assert_eq!(h.reject_cmd(Command::Cancel), RejectReason::CancelTooLate);
    // Link removal and the drops.
    let mut h = reach(Phase::RemovingLink);
    assert_eq!(h.reject_cmd(Command::Cancel), RejectReason::CancelTooLate);
    h.done();
    assert_eq!(h.reject_cmd(Command::Cancel), RejectReason::CancelTooLate);
    h.done();
    assert_eq!(h.phase(), Phase::DroppingDag);
    assert_eq!(h.reject_cmd(Command::Cancel), RejectReason::CancelTooLate);
    h.done();
    assert_eq!(h.phase(), Phase::DroppingAg);
    assert_eq!(h.reject_cmd(Command::Cancel), RejectReason::CancelTooLate);
}

pub fn cancel_after_a_failure() {
    // Failed while preparing SQL Server: nothing to remove.
    let mut h = reach(Phase::PreparingSource);
    h.fail(false);
    h.cmd(Command::Cancel);
    assert_eq!(h.phase(), Phase::Cancelled);
    // Failed while creating the AG: drop it.
    let mut h = reach(Phase::CreatingAg);
    h.fail(false);
    h.cmd(Command::Cancel);
    assert_eq!(h.phase(), Phase::Cancelling);
    // Failed while catching up: abandon the failover.
    let mut h = reach(Phase::CatchingUp);
    h.fail(false);
    h.cmd(Command::Cancel);
    assert_eq!(h.phase(), Phase::AbortingFailover);
    let mut h = H::new(two_way());
    h.create();
    h.tick_at_deadline();
    let obs = h.sync_equal(Side::SqlServer, 5);
    h.answer(obs);
    h.cmd(Command::Failover(FailoverKind::Planned));
    assert_eq!(
        h.phase(),
        Phase::CatchingUp,
        "already synchronous: no switch"
    );
    h.fail(false);
    h.cmd(Command::Cancel);
    assert_eq!(
        h.phase(),
        Phase::Replicating,
        "already synchronous: nothing to restore"
    );
    let mut h = H::new(two_way());
    h.create();
    h.planned_failover();
    h.cmd(Command::Failback);
    h.fail_first(false);
    h.cmd(Command::Cancel);
    assert_eq!(h.phase(), Phase::FailedOver);
    // Failed during the failover itself: the roles are read first. Unchanged: the failover is
    // abandoned (asynchronous commit restored).
    let mut h = reach(Phase::FailingOver);
    h.fail(false);
    let fx = h.cmd(Command::Cancel);
    assert_eq!(h.phase(), Phase::FailingOver);
    assert!(is_probe(&fx, Probe::Link), "reads before deciding: {fx:?}");
    assert!(!has_failover(&fx));
    let obs = h.roles(Side::SqlServer, Some(ReplicaRole::Secondary));
    let fx = h.answer(obs);
    assert!(!has_failover(&fx));
    assert_eq!(h.phase(), Phase::AbortingFailover);
    // Changed: too late, the failover is carried through.
    let mut h = reach(Phase::FailingOver);
    h.fail(false);
    h.cmd(Command::Cancel);
    let obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary));
    h.answer(obs);
    assert_eq!(h.phase(), Phase::VerifyingRoles);
    // While cancelling: refused.
    let mut h = reach(Phase::Cancelling);
    h.fail(false);
    assert_eq!(
        h.reject_cmd(Command::Cancel),
        RejectReason::NotAllowedInState
    );
}

// ---------------------------------------------------------------------------------------------
// Failures, resume, retry, timeouts: every phase.

/// A machine in `phase` with its step in flight.
pub fn reach(phase: Phase) -> H {
    let creating = |until: Phase| {
        let mut h = H::new(two_way());
        h.cmd(Command::RecordAssessment(AssessmentOutcome {
            blockers: vec![],
        }));
        h.cmd(Command::Start);
        while h.phase() != until {
            h.done();
        }
        h
    };
    let mut h = match phase {
        Phase::PreparingSource
        | Phase::ExchangingTrust
        | Phase::CreatingAg
        | Phase::CreatingDag
        | Phase::JoiningInstance
        | Phase::Seeding => creating(phase),
        Phase::CreatingLinkThroughArc => {
            let mut h = H::new(arc_spec());
            h.cmd(Command::RecordAssessment(AssessmentOutcome {
                blockers: vec![],
            }));
            h.cmd(Command::Start);
            h
        }
        Phase::Replicating => {
            let mut h = H::new(two_way());
            h.create();
            h.tick_at_deadline();
            h
        }
        Phase::PreparingFailover => {
            let mut h = H::new(two_way());
            h.create();
            h.cmd(Command::Failover(FailoverKind::Planned));
            h
        }
        Phase::CatchingUp => {
            let mut h = H::new(two_way());
            h.create();
            to_catching_up(&mut h);
            h
        }
        Phase::FailingOver => {
            let mut h = reach(Phase::CatchingUp);
            h.pass_gate(Side::ManagedInstance);
            h
        }
        Phase::VerifyingRoles => {
            let mut h = reach(Phase::FailingOver);
            h.done();
            h
        }
        Phase::Redirecting => {
            let mut h = reach(Phase::VerifyingRoles);
            let obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary));
            h.answer(obs);
            h
        }
        Phase::FailedOver => {
            let mut h = reach(Phase::Redirecting);
            h.done();
            h
        }
        Phase::ForcingFailover => {
            let mut h = H::new(two_way());
            h.create();
            force(&mut h);
            h
        }
        Phase::Repairing => {
            let mut h = reach(Phase::Replicating);
            let obs = h.both_primary();
            h.answer(obs);
            h.cmd(Command::RepairSplitBrain {
                keep: Side::ManagedInstance,
            });
            h
        }
        Phase::AwaitingFirstFullBackup => {
            let mut h = H::new(two_way());
            h.create();
            h.cmd(Command::Cutover(drop_ag()));
            h.done_all();
            h.pass_gate(Side::ManagedInstance);
            h.done();
            h.verify_and_redirect(Side::ManagedInstance);
            h
        }
        Phase::RemovingLink => {
            let mut h = reach(Phase::AwaitingFirstFullBackup);
            let obs = h.backups(Some(h.now));
            h.answer(obs);
            // The reading before the DELETE: the instance is primary.
            let obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary));
            h.answer(obs);
            h
        }
        Phase::Fencing => {
            let mut h = H::new(one_way());
            h.create();
            h.cmd(Command::Cutover(drop_ag()));
            let obs = h.backups(Some(h.now));
            h.answer(obs);
            h.done_all();
            h.pass_gate(Side::ManagedInstance);
            h
        }
        Phase::DroppingDag => {
            let mut h = reach(Phase::RemovingLink);
            h.done();
            // The reading that confirms the link is gone.
            h.done();
            h
        }
        Phase::DroppingAg => {
            let mut h = reach(Phase::DroppingDag);
            h.done();
            h
        }
        Phase::AbortingFailover => {
            let mut h = reach(Phase::PreparingFailover);
            h.cmd(Command::Cancel);
            h
        }
        Phase::Cancelling => {
            let mut h = reach(Phase::JoiningInstance);
            h.cmd(Command::Cancel);
            h
        }
        Phase::Draft
        | Phase::Assessed
        | Phase::SplitBrain
        | Phase::Completed
        | Phase::Cancelled
        | Phase::Failed => panic!("{phase} has nothing in flight"),
    };
    assert_eq!(h.phase(), phase);
    assert!(!h.m.in_flight().is_empty(), "{phase}");
    h.journal.clear();
    h
}

/// The phases with a step in flight.
pub const WORKING: [Phase; 22] = [
    Phase::PreparingSource,
    Phase::ExchangingTrust,
    Phase::CreatingAg,
    Phase::CreatingDag,
    Phase::JoiningInstance,
    Phase::Seeding,
    Phase::Replicating,
    Phase::PreparingFailover,
    Phase::CatchingUp,
    Phase::FailingOver,
    Phase::ForcingFailover,
    Phase::VerifyingRoles,
    Phase::Redirecting,
    Phase::FailedOver,
    Phase::Repairing,
    Phase::AwaitingFirstFullBackup,
    Phase::Fencing,
    Phase::RemovingLink,
    Phase::DroppingDag,
    Phase::DroppingAg,
    Phase::AbortingFailover,
    Phase::Cancelling,
];

pub fn every_phase_fails_resumes_retries_and_times_out() {
    for phase in WORKING {
        // A retryable error: probes try again later; other steps fail the phase, and Resume
        // re-enters it with a new step id.
        let mut h = reach(phase);
        let first = h.m.in_flight()[0].clone();
        let old = first.step();
        let is_probe = matches!(first, Effect::Probe { .. });
        h.fail_first(true);
        if is_probe {
            assert_eq!(
                h.phase(),
                phase,
                "{phase}: a retryable probe error keeps the phase"
            );
            assert!(h.m.last_probe_error().is_some());
            let fx = h.tick_at_deadline();
            assert!(
                matches!(actions(&fx)[..], [Effect::Probe { .. }]),
                "{phase}"
            );
        } else {
            match h.m.state() {
                State::Failed {
                    phase: p,
                    step,
                    retryable,
                    error,
                } => {
                    assert_eq!(p.phase(), phase);
                    assert_eq!(*step, Some(old));
                    assert!(*retryable);
                    assert_eq!(error.code, "http:503");
                }
                other => panic!("{phase}: {other:?}"),
            }
            assert_eq!(h.m.deadline(), None);
            let fx = h.resume();
            assert_eq!(
                h.phase(),
                phase,
                "{phase}: resume re-enters the failed phase"
            );
            let acts = actions(&fx);
            assert!(!acts.is_empty(), "{phase}");
            assert!(acts.iter().all(|e| e.step() > old), "{phase}: new ids");
        }

        // A permanent error: Resume is refused, Retry re-enters the phase.
        let mut h = reach(phase);
        h.fail_first(false);
        assert_eq!(h.phase(), Phase::Failed, "{phase}");
        assert_eq!(h.reject(Input::Resume), RejectReason::NotRetryable);
        assert!(h.tick().is_empty(), "time does not heal a failure");
        let fx = h.cmd(Command::Retry);
        assert_eq!(h.phase(), phase);
        assert!(!actions(&fx).is_empty());

        // The phase timeout (steady states have none).
        let mut h = reach(phase);
        let fx = h.time_out();
        assert!(actions(&fx).is_empty());
        match (phase, h.m.state()) {
            (Phase::Replicating | Phase::FailedOver, state) => {
                assert_eq!(state.phase(), phase, "steady states do not time out")
            }
            (
                _,
                State::Failed {
                    error, retryable, ..
                },
            ) => {
                assert_eq!(error.code, "timeout");
                assert!(*retryable);
                assert!(error.message.starts_with(phase.name()), "{}", error.message);
                let fx = h.resume();
                assert_eq!(h.phase(), phase);
                assert!(!actions(&fx).is_empty());
            }
            (_, other) => panic!("{phase}: {other:?}"),
        }
    }
}

pub fn crash_resume_reissues_in_flight_steps_with_the_same_ids() {
    let same_ids = |mut h: H, what: &str| {
        let in_flight = h.m.in_flight();
        let before = h.m.clone();
        let fx = h.resume();
        assert_eq!(fx, in_flight, "{what}");
        assert_eq!(h.m, before, "{what}: a crash-resume changes nothing");
        // The answer to the re-issued step is accepted.
        h.done_all();
    };
    for phase in WORKING {
        // Calls that must not run twice are checked first (tests below).
        if matches!(
            phase,
            Phase::FailingOver
                | Phase::ForcingFailover
                | Phase::Repairing
                | Phase::Fencing
                | Phase::RemovingLink
                | Phase::Cancelling
        ) {
            continue;
        }
        same_ids(reach(phase), phase.name());
    }
    // The cancel's DAG and AG drops are guarded T-SQL: re-issued as they are.
    let mut h = reach(Phase::Cancelling);
    h.done();
    assert!(matches!(
        h.m.state(),
        State::Cancelling {
            step: CancelStep::DropDag
        }
    ));
    same_ids(h, "Cancelling DropDag");
    // An accepted ARM operation is polled again, not re-sent, in every phase that has one.
    for phase in [
        Phase::ForcingFailover,
        Phase::RemovingLink,
        Phase::Cancelling,
    ] {
        let mut h = reach(phase);
        h.answer(Observation::OperationAccepted(op(9)));
        let fx = h.tick_at_deadline();
        assert!(is_poll(&fx, &op(9)), "{phase}");
        same_ids(h, phase.name());
    }
}

pub fn crash_resume_checks_roles_before_reissuing_a_role_change() {
    // The failover's reply was lost: read the roles first.
    let roles_then = |answer: fn(&H) -> Observation| {
        let mut h = reach(Phase::FailingOver);
        let lost = h.pending_step();
        let fx = h.resume();
        assert!(is_probe(&fx, Probe::Link));
        assert!(!has_failover(&fx));
        assert_eq!(
            h.reject(Input::Observed {
                step: lost,
                result: Ok(Observation::Done)
            }),
            RejectReason::UnknownStep
        );
        let obs = answer(&h);
        let fx = h.answer(obs);
        (h, fx)
    };
    // It happened: verify, do not fail over again.
    let (h, fx) = roles_then(|h| h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary)));
    assert!(!has_failover(&fx));
    assert_eq!(h.phase(), Phase::VerifyingRoles);
    // It did not: never re-send on readings from before the attempt; run the gate again.
    let (mut h, fx) = roles_then(|h| h.roles(Side::SqlServer, Some(ReplicaRole::Secondary)));
    assert!(!has_failover(&fx));
    assert_eq!(h.phase(), Phase::CatchingUp);
    assert!(is_probe(&fx, Probe::Link));
    h.pass_gate(Side::ManagedInstance);
    assert_eq!(h.phase(), Phase::FailingOver);
    assert!(has_failover(&h.m.in_flight()));
    // Unsettled: look again later.
    let (mut h, fx) = roles_then(|h| h.roles(Side::SqlServer, Some(ReplicaRole::Resolving)));
    assert!(fx.is_empty());
    let fx = h.tick_at_deadline();
    assert!(is_probe(&fx, Probe::Link));
    h.fail(true);
    assert_eq!(h.phase(), Phase::FailingOver);
    // Both PRIMARY, and it lasts: split brain.
    let (mut h, _) = roles_then(|h| h.both_primary());
    h.until_split_brain();

    // The same for the split-brain repair.
    let mut h = reach(Phase::Repairing);
    let fx = h.resume();
    assert!(is_probe(&fx, Probe::Link));
    let obs = h.both_primary();
    let fx = h.answer(obs);
    assert!(matches!(source_op(&fx), SourceOp::SetRoleSecondary { .. }));
    let mut h = reach(Phase::Repairing);
    h.resume();
    let obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary));
    h.answer(obs);
    assert_eq!(h.phase(), Phase::VerifyingRoles);
    let mut h = reach(Phase::Repairing);
    h.resume();
    let obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Resolving));
    h.answer(obs);
    assert_eq!(h.phase(), Phase::Repairing);
    h.tick_at_deadline();
    h.fail(true);
    assert_eq!(h.phase(), Phase::Repairing);
    // After a failure, resuming a planned failover starts with the role check too.
    let mut h = reach(Phase::FailingOver);
    h.fail(true);
    let fx = h.resume();
    assert!(is_probe(&fx, Probe::Link));
}

/// Both sides' view with the given roles (`None`: the side reports no role, e.g. it is down).
fn with_roles(h: &H, source: Option<ReplicaRole>, instance: Option<ReplicaRole>) -> Observation {
    let mut obs = h.sync_equal(Side::SqlServer, 500);
    if let Observation::Link(link) = &mut obs {
        link.source.role = source;
        link.instance.role = instance;
    }
    obs
}

/// Both sides' view with the instance's link resource gone (the DAG still on SQL Server).
fn link_gone(h: &H) -> Observation {
    let mut obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary));
    if let Observation::Link(link) = &mut obs {
        link.instance = empty_side();
    }
    obs
}

fn has_delete_link(effects: &[Effect]) -> bool {
    effects.iter().any(|e| {
        matches!(
            e,
            Effect::Instance {
                op: InstanceOp::DeleteLink { .. },
                ..
            }
        )
    })
}

pub fn crash_resume_checks_roles_before_forcing_again() {
    use ReplicaRole::{Primary, Resolving, Secondary};
    // The forced failover to the instance was sent; its reply was lost. Read the roles first.
    let roles_then = |source: Option<ReplicaRole>, instance: Option<ReplicaRole>| {
        let mut h = reach(Phase::ForcingFailover);
        let lost = h.pending_step();
        let fx = h.resume();
        assert!(is_probe(&fx, Probe::Link), "{fx:?}");
        assert!(!has_failover(&fx));
        assert_eq!(
            h.reject(Input::Observed {
                step: lost,
                result: Ok(Observation::Done)
            }),
            RejectReason::UnknownStep,
            "the lost reply no longer counts"
        );
        let obs = with_roles(&h, source, instance);
        let fx = h.answer(obs);
        (h, fx)
    };
    // It happened (the old primary demoted, or down): verify, never force again.
    for old in [Some(Secondary), None] {
        let (h, fx) = roles_then(old, Some(Primary));
        assert!(!has_failover(&fx), "{old:?}");
        assert!(
            matches!(
                h.m.state(),
                State::VerifyingRoles {
                    primary: Side::ManagedInstance,
                    strict: false,
                    then: Then::FailedOver {
                        data_loss_possible: true
                    },
                    ..
                }
            ),
            "{:?}",
            h.m.state()
        );
    }
    // It happened and the old primary is still PRIMARY: split brain, no redirect.
    let (mut h, fx) = roles_then(Some(Primary), Some(Primary));
    let redirects = |fx: &[Effect]| fx.iter().any(|e| matches!(e, Effect::Redirect { .. }));
    assert!(!redirects(&fx) && !has_failover(&fx));
    assert!(actions(&h.until_split_brain()).is_empty());
    // It did not (the old primary PRIMARY, or down): force again, once.
    for old in [Some(Primary), None] {
        let (mut h, fx) = roles_then(old, Some(Secondary));
        assert_eq!(
            instance_op(&fx),
            InstanceOp::Failover {
                link: h.spec().link,
                failover_type: ArmFailoverType::ForcedAllowDataLoss
            },
            "{old:?}"
        );
        assert_eq!(h.phase(), Phase::ForcingFailover);
        h.done();
        assert_eq!(h.phase(), Phase::VerifyingRoles);
    }
    // Unsettled (resolving, or both secondary): no force; read again after the interval, and a
    // retryable probe error only delays the next reading.
    for (source, instance) in [
        (Some(Primary), Some(Resolving)),
        (Some(Secondary), Some(Secondary)),
        (Some(Resolving), Some(Secondary)),
        (None, None),
    ] {
        let (mut h, fx) = roles_then(source, instance);
        assert!(fx.is_empty(), "{source:?} {instance:?}: {fx:?}");
        assert_eq!(h.phase(), Phase::ForcingFailover);
        let fx = h.tick_at_deadline();
        assert!(is_probe(&fx, Probe::Link));
        h.fail(true);
        assert_eq!(h.phase(), Phase::ForcingFailover);
        let fx = h.tick_at_deadline();
        assert!(is_probe(&fx, Probe::Link));
        // Another crash while checking: the same read again.
        let in_flight = h.m.in_flight();
        assert_eq!(h.resume(), in_flight);
        // The roles settle with the instance primary: no force was ever sent again.
        let obs = with_roles(&h, Some(Secondary), Some(Primary));
        let fx = h.answer(obs);
        assert!(!has_failover(&fx));
        assert_eq!(h.phase(), Phase::VerifyingRoles);
    }
    // The failover timeout bounds the check.
    let (mut h, _) = roles_then(Some(Primary), Some(Resolving));
    h.time_out();
    assert_eq!(h.phase(), Phase::Failed);

    // T-SQL force back to SQL Server (the instance primary after a planned failover).
    let forced_back = || {
        let mut h = H::new(two_way());
        h.create();
        h.planned_failover();
        let fx = force(&mut h);
        assert!(matches!(source_op(&fx), SourceOp::ForceFailover { .. }));
        let fx = h.resume();
        assert!(is_probe(&fx, Probe::Link));
        h
    };
    let mut h = forced_back();
    let obs = with_roles(&h, Some(Primary), None);
    let fx = h.answer(obs);
    assert!(!has_failover(&fx));
    assert!(matches!(
        h.m.state(),
        State::VerifyingRoles {
            primary: Side::SqlServer,
            strict: false,
            then: Then::Replicating,
            ..
        }
    ));
    let mut h = forced_back();
    let obs = with_roles(&h, Some(Secondary), Some(Primary));
    let fx = h.answer(obs);
    assert_eq!(
        source_op(&fx),
        SourceOp::ForceFailover { dag: h.spec().link }
    );

    // A failed force (a timeout does not say whether it happened) resumes with the check too,
    // and so does a retry after a permanent failure.
    let mut h = reach(Phase::ForcingFailover);
    h.fail(true);
    let fx = h.resume();
    assert!(is_probe(&fx, Probe::Link));
    assert!(!has_failover(&fx));
    let obs = with_roles(&h, None, Some(Primary));
    h.answer(obs);
    assert_eq!(h.phase(), Phase::VerifyingRoles);
    let mut h = reach(Phase::ForcingFailover);
    h.fail(false);
    let fx = h.cmd(Command::Retry);
    assert!(is_probe(&fx, Probe::Link));
    let obs = with_roles(&h, Some(Primary), Some(Secondary));
    let fx = h.answer(obs);
    assert!(has_failover(&fx), "not forced yet: retry sends it");
    // A reading that fails for good fails the phase.
    let mut h = reach(Phase::ForcingFailover);
    h.resume();
    h.fail(false);
    assert_eq!(h.phase(), Phase::Failed);
}

pub fn crash_resume_checks_the_link_before_deleting_it_again() {
    // The cutover's DELETE was sent; its reply was lost. Read the link first.
    let resumed = |h: &mut H| {
        assert_eq!(h.phase(), Phase::RemovingLink);
        let lost = h.pending_step();
        let fx = h.resume();
        assert!(is_probe(&fx, Probe::Link), "{fx:?}");
        assert!(!has_delete_link(&fx));
        assert_eq!(
            h.reject(Input::Observed {
                step: lost,
                result: Ok(Observation::Done)
            }),
            RejectReason::UnknownStep
        );
    };
    // It is gone: go on, never delete again.
    let mut h = reach(Phase::RemovingLink);
    resumed(&mut h);
    let obs = link_gone(&h);
    let fx = h.answer(obs);
    assert!(!has_delete_link(&fx));
    assert_eq!(phase_events(&h.events), ["DroppingDag"]);
    assert!(matches!(
        source_op(&fx),
        SourceOp::DropDistributedAvailabilityGroup { .. }
    ));
    // It is still there: delete it again, once.
    let mut h = reach(Phase::RemovingLink);
    resumed(&mut h);
    let obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary));
    let fx = h.answer(obs);
    assert_eq!(
        instance_op(&fx),
        InstanceOp::DeleteLink {
            link: h.spec().link
        }
    );
    assert_eq!(h.phase(), Phase::RemovingLink);
    h.done();
    assert_eq!(h.phase(), Phase::RemovingLink, "confirms the removal first");
    h.done();
    assert_eq!(h.phase(), Phase::DroppingDag);
    // The instance could not be read: an empty view is not "gone", and no reason to delete
    // again either. Read again later.
    let mut h = reach(Phase::RemovingLink);
    resumed(&mut h);
    let mut obs = link_gone(&h);
    if let Observation::Link(link) = &mut obs {
        link.unreachable = Some(Side::ManagedInstance);
    }
    let fx = h.answer(obs);
    assert!(!has_delete_link(&fx), "{fx:?}");
    assert_eq!(h.phase(), Phase::RemovingLink);
    let fx = h.tick_at_deadline();
    assert!(is_probe(&fx, Probe::Link));
    // A retryable error of the reading reads again later; the removal timeout bounds it.
    let mut h = reach(Phase::RemovingLink);
    resumed(&mut h);
    h.fail(true);
    assert_eq!(h.phase(), Phase::RemovingLink);
    let fx = h.tick_at_deadline();
    assert!(is_probe(&fx, Probe::Link));
    assert!(!has_delete_link(&fx));
    h.time_out();
    assert_eq!(h.phase(), Phase::Failed);
    // After a failure (a timeout does not say whether the DELETE went through), resume and
    // retry read the link first too.
    let mut h = reach(Phase::RemovingLink);
    h.fail(true);
    let fx = h.resume();
    assert!(is_probe(&fx, Probe::Link));
    let obs = link_gone(&h);
    let fx = h.answer(obs);
    assert!(!has_delete_link(&fx));
    assert_eq!(h.phase(), Phase::DroppingDag);
    let mut h = reach(Phase::RemovingLink);
    h.fail(false);
    let fx = h.cmd(Command::Retry);
    assert!(is_probe(&fx, Probe::Link));
    let obs = h.roles(Side::ManagedInstance, Some(ReplicaRole::Secondary));
    assert!(has_delete_link(&h.answer(obs)));

    // One-way cutover: the link found gone, the application is redirected before any drop.
    let mut h = H::new(one_way());
    h.create();
    h.cmd(Command::Cutover(keep_ag()));
    let obs = h.backups(Some(h.now));
    h.answer(obs);
    h.done_all();
    let obs = h.sync_equal(Side::SqlServer, 1000);
    h.answer(obs.clone());
    while h.phase() == Phase::CatchingUp {
        h.tick_at_deadline();
        h.answer(obs.clone());
    }
    h.done();
    let obs = h.fenced(1000);
    h.answer(obs);
    resumed(&mut h);
    let gone = h.gone(1000);
    let fx = h.answer(gone);
    assert!(!has_delete_link(&fx));
    assert_eq!(
        actions(&fx)[..],
        [Effect::Redirect {
            step: h.pending_step(),
            primary: Side::ManagedInstance
        }]
    );
}

pub fn crash_resume_of_a_cancel_checks_the_link_before_deleting_it_again() {
    // Cancel after the join was confirmed (seeding): the DELETE's reply was lost.
    let cancelled_while_seeding = || {
        let mut h = reach(Phase::Seeding);
        h.cmd(Command::Cancel);
        assert_eq!(h.phase(), Phase::Cancelling);
        assert!(has_delete_link(&h.m.in_flight()));
        let fx = h.resume();
        assert!(is_probe(&fx, Probe::Link));
        assert!(!has_delete_link(&fx));
        h
    };
    // Gone: go on with the DAG.
    let mut h = cancelled_while_seeding();
    let obs = link_gone(&h);
    let fx = h.answer(obs);
    assert!(!has_delete_link(&fx));
    assert!(matches!(
        source_op(&fx),
        SourceOp::DropDistributedAvailabilityGroup { .. }
    ));
    // Still there: delete again.
    let mut h = cancelled_while_seeding();
    let obs = h.healthy();
    let fx = h.answer(obs);
    assert!(has_delete_link(&fx));
    h.done();
    h.done();
    h.done();
    assert_eq!(h.phase(), Phase::Cancelled);
    // A retryable error of the reading reads again later.
    let mut h = cancelled_while_seeding();
    h.fail(true);
    assert_eq!(h.phase(), Phase::Cancelling);
    assert!(is_probe(&h.tick_at_deadline(), Probe::Link));

    // Cancel while the join's PUT was still running: an absent link may still be appearing, so
    // it is deleted again rather than left behind.
    let mut h = reach(Phase::JoiningInstance);
    h.cmd(Command::Cancel);
    let fx = h.resume();
    assert!(is_probe(&fx, Probe::Link));
    let obs = link_gone(&h);
    let fx = h.answer(obs);
    assert!(has_delete_link(&fx));
    // After a failure, the check runs too.
    let mut h = reach(Phase::Cancelling);
    h.fail(true);
    assert!(is_probe(&h.resume(), Probe::Link));
}

pub fn states_of_earlier_builds_still_load() {
    // Before the check before re-sending, these states kept `operation: Option<OperationRef>`:
    // `null` was a sent call, an operation an accepted one.
    let op_json = serde_json::to_value(op(3)).unwrap();
    let cases = [
        (
            serde_json::json!({"ForcingFailover": {
                "target": "ManagedInstance", "operation": null,
                "then": {"FailedOver": {"data_loss_possible": true}}}}),
            State::ForcingFailover {
                target: Side::ManagedInstance,
                change: RoleChange::Issued,
                then: Then::FailedOver {
                    data_loss_possible: true,
                },
            },
        ),
        (
            serde_json::json!({"RemovingLink": {
                "options": {"drop_availability_group": false}, "redirect": true,
                "operation": op_json}}),
            State::RemovingLink {
                options: keep_ag(),
                redirect: true,
                removal: RoleChange::Accepted(op(3)),
                verified: vec![],
            },
        ),
        (
            serde_json::json!({"Cancelling": {"step": {"DeleteLink": {"operation": null}}}}),
            State::Cancelling {
                step: CancelStep::DeleteLink {
                    removal: RoleChange::Issued,
                },
            },
        ),
    ];
    for (old, expected) in cases {
        let state: State = serde_json::from_value(old.clone()).unwrap();
        assert_eq!(state, expected, "{old}");
        // And the current shape round-trips.
        let json = serde_json::to_value(&state).unwrap();
        assert!(json.to_string().contains("Issued") || json.to_string().contains("Accepted"));
        assert_eq!(serde_json::from_value::<State>(json).unwrap(), state);
    }
    let checking = State::RemovingLink {
        options: keep_ag(),
        redirect: false,
        removal: RoleChange::Checking,
        verified: vec![],
    };
    let json = serde_json::to_value(&checking).unwrap();
    assert_eq!(serde_json::from_value::<State>(json).unwrap(), checking);
    // Nonsense is still refused.
    assert!(
        serde_json::from_value::<State>(serde_json::json!({"Cancelling": {"step": {"DeleteLink":
            {"removal": "Maybe"}}}}))
        .is_err()
    );
}

pub fn stale_and_unexpected_observations_are_rejected() {
    let mut h = reach(Phase::PreparingSource);
    let step = h.pending_step();
    assert_eq!(
        h.reject(Input::Observed {
            step: StepId(step.0 + 100),
            result: Ok(Observation::Done)
        }),
        RejectReason::UnknownStep
    );
    assert!(matches!(
        h.reject(Input::Observed {
            step,
            result: Ok(Observation::OperationRunning)
        }),
        RejectReason::UnexpectedObservation { .. }
    ));
    h.done();
    assert_eq!(
        h.reject(Input::Observed {
            step,
            result: Ok(Observation::Done)
        }),
        RejectReason::UnknownStep,
        "a duplicate answer is stale"
    );
    let mut h = reach(Phase::ExchangingTrust);
    assert!(matches!(
        h.reject(Input::Observed {
            step: h.pending_step(),
            result: Ok(Observation::PublicKey(vec![]))
        }),
        RejectReason::UnexpectedObservation { .. }
    ));
    let mut h = reach(Phase::Seeding);
    assert!(matches!(
        h.reject(Input::Observed {
            step: h.pending_step(),
            result: Ok(Observation::FullBackups(vec![]))
        }),
        RejectReason::UnexpectedObservation { .. }
    ));
    // Nothing is in flight in Draft, SplitBrain or Failed.
    let mut h = H::new(two_way());
    assert_eq!(
        h.reject(Input::Observed {
            step: StepId(1),
            result: Ok(Observation::Done)
        }),
        RejectReason::UnknownStep
    );
}

pub fn terminal_states_absorb_every_input() {
    let mut completed = reach(Phase::DroppingAg);
    completed.done();
    let mut cancelled = H::new(two_way());
    cancelled.cmd(Command::Cancel);
    for h in [&mut completed, &mut cancelled] {
        assert!(h.m.is_terminal());
        let inputs = [
            Input::Command(Command::RecordAssessment(AssessmentOutcome {
                blockers: vec![],
            })),
            Input::Command(Command::Start),
            Input::Command(Command::Failover(FailoverKind::Planned)),
            Input::Command(ack()),
            Input::Command(Command::Failback),
            Input::Command(Command::Cutover(keep_ag())),
            Input::Command(Command::RepairSplitBrain {
                keep: Side::SqlServer,
            }),
            Input::Command(Command::Cancel),
            Input::Command(Command::Retry),
            Input::Observed {
                step: StepId(1),
                result: Ok(Observation::Done),
            },
            Input::Tick,
            Input::Resume,
        ];
        for input in inputs {
            assert_eq!(h.reject(input), RejectReason::Terminal);
        }
    }
}

pub fn rejection_classes() {
    use RejectReason as R;
    let rejected = |phase: Phase, c: Command| {
        let mut h = reach(phase);
        h.reject_cmd(c)
    };
    // Retry with nothing failed.
    assert_eq!(
        rejected(Phase::Seeding, Command::Retry),
        R::NotAllowedInState
    );
    assert_eq!(
        rejected(Phase::Replicating, Command::Retry),
        R::NotAllowedInState
    );
    // Assessment and start outside their states.
    assert_eq!(
        rejected(
            Phase::Replicating,
            Command::RecordAssessment(AssessmentOutcome { blockers: vec![] })
        ),
        R::NotAllowedInState
    );
    assert_eq!(
        rejected(Phase::FailedOver, Command::Start),
        R::NotAllowedInState
    );
    // Role changes while another is under way.
    for phase in [
        Phase::PreparingFailover,
        Phase::CatchingUp,
        Phase::FailingOver,
        Phase::VerifyingRoles,
        Phase::AwaitingFirstFullBackup,
        Phase::Cancelling,
    ] {
        assert_eq!(
            rejected(phase, Command::Failover(FailoverKind::Planned)),
            R::NotAllowedInState,
            "{phase}"
        );
        assert_eq!(
            rejected(phase, Command::Cutover(keep_ag())),
            R::NotAllowedInState
        );
        assert_eq!(rejected(phase, Command::Failback), R::NotAllowedInState);
    }
    for phase in [
        Phase::FailingOver,
        Phase::ForcingFailover,
        Phase::Redirecting,
    ] {
        assert_eq!(rejected(phase, ack()), R::NotAllowedInState, "{phase}");
    }
    assert_eq!(rejected(Phase::Seeding, ack()), R::NotReplicatingYet);
    assert_eq!(
        rejected(Phase::Seeding, Command::Failback),
        R::NotReplicatingYet
    );
    assert_eq!(
        rejected(Phase::AbortingFailover, Command::Cancel),
        R::NotAllowedInState
    );
    // In Failed: only cancel, retry and forced failover.
    let mut h = reach(Phase::JoiningInstance);
    h.fail(true);
    for c in [
        Command::Start,
        Command::Failover(FailoverKind::Planned),
        Command::Failback,
        Command::Cutover(keep_ag()),
    ] {
        assert_eq!(h.reject_cmd(c), R::NotAllowedInState);
    }
    assert_eq!(h.reject_cmd(ack()), R::NotAllowedInState);
    assert_eq!(
        h.reject_cmd(Command::RepairSplitBrain {
            keep: Side::SqlServer
        }),
        R::SplitBrainNotPresent
    );
    // Rejections say what was refused and why.
    let mut h = H::new(two_way());
    let err =
        h.m.handle(Input::Command(Command::Start), h.now)
            .unwrap_err();
    assert_eq!(err.state, "Draft");
    assert_eq!(
        err.to_string(),
        "Command::Start refused in state Draft: record a readiness assessment without blockers first"
    );
}

/// A machine of `spec` seeding, its first probe in flight.
fn seeding_of(spec: LinkSpec) -> H {
    let mut h = H::new(spec);
    h.cmd(Command::RecordAssessment(AssessmentOutcome {
        blockers: vec![],
    }));
    h.cmd(Command::Start);
    while h.phase() != Phase::Seeding {
        h.done();
    }
    h
}

/// Answers the seeding probe in flight at `at` after `start` with the database at `percent`.
fn seeding_probe(h: &mut H, start: Timestamp, at: Duration, percent: u8) {
    h.now = start.plus(at);
    if h.m.in_flight().is_empty() {
        h.tick();
    }
    let mut obs = h.healthy();
    if let Observation::Link(l) = &mut obs {
        l.instance.databases[0].sync_state = Some(SyncState::NotSynchronizing);
        l.instance.databases[0].seeding_percent = Some(percent);
    }
    h.answer(obs);
    assert_eq!(h.phase(), Phase::Seeding, "{}", h.m.state());
}

/// Ticks at `at` after `start`: whether the seeding timed out.
fn timed_out_at(h: &mut H, start: Timestamp, at: Duration) -> bool {
    h.now = start.plus(at);
    h.tick();
    h.phase() == Phase::Failed
}

pub fn seeding_timeout_is_sized_from_the_measured_rate() {
    const DAY: Duration = Duration::from_secs(24 * 3600);
    let o = MachineOptions::default();
    assert!(o.seeding_timeout_sized);
    // 10% after a day: ten days in all, twenty with the margin, past the six-day floor.
    let mut h = seeding_of(two_way());
    let start = h.now;
    seeding_probe(&mut h, start, DAY, 10);
    seeding_probe(&mut h, start, DAY * 7, 10);
    // No progress since: the deadline stays where the rate put it.
    assert!(!timed_out_at(&mut h, start, DAY * 19));
    seeding_probe(&mut h, start, DAY * 19, 10);
    assert!(timed_out_at(
        &mut h,
        start,
        DAY * 20 + Duration::from_secs(1)
    ));
    let State::Failed { error, .. } = h.m.state() else {
        panic!("{}", h.m.state())
    };
    assert!(
        error.message.contains("did not finish within 480h"),
        "{}",
        error.message
    );

    // A fast seeding keeps the six-day floor.
    let mut h = seeding_of(two_way());
    let start = h.now;
    seeding_probe(&mut h, start, DAY / 10, 50);
    assert!(timed_out_at(
        &mut h,
        start,
        o.seeding_timeout + Duration::from_secs(1)
    ));

    // A very slow one stops at `seeding_max_timeout`.
    let mut h = seeding_of(two_way());
    let start = h.now;
    seeding_probe(&mut h, start, DAY * 5, 1);
    seeding_probe(&mut h, start, DAY * 89, 1);
    assert!(timed_out_at(
        &mut h,
        start,
        o.seeding_max_timeout + Duration::from_secs(1)
    ));

    // A restarted seeding (its percent falls) never brings the deadline forward.
    let mut h = seeding_of(two_way());
    let start = h.now;
    seeding_probe(&mut h, start, DAY, 10);
    seeding_probe(&mut h, start, DAY * 2, 3);
    // 40% at day 3 projects 15 days with the margin; the 20 days measured before stay.
    seeding_probe(&mut h, start, DAY * 3, 40);
    assert!(!timed_out_at(&mut h, start, DAY * 19));

    // Sizing switched off: `seeding_timeout` is the limit, whatever the rate.
    let mut spec = two_way();
    spec.options.seeding_timeout_sized = false;
    let mut h = seeding_of(spec);
    let start = h.now;
    seeding_probe(&mut h, start, DAY, 10);
    seeding_probe(&mut h, start, DAY * 5, 50);
    assert!(timed_out_at(
        &mut h,
        start,
        o.seeding_timeout + Duration::from_secs(1)
    ));
}

pub fn deadlines_follow_probes_and_timeouts() {
    let h = reach(Phase::PreparingSource);
    let o = MachineOptions::default();
    assert_eq!(h.m.deadline(), Some(h.now.plus(o.step_timeout)));
    let mut h = reach(Phase::Seeding);
    let entered = h.now;
    assert_eq!(h.m.deadline(), Some(entered.plus(o.seeding_timeout)));
    h.advance(Duration::from_secs(1));
    let obs = h.healthy();
    let mut not_done = obs.clone();
    if let Observation::Link(l) = &mut not_done {
        l.instance.databases[0].sync_state = Some(SyncState::NotSynchronizing);
    }
    h.answer(not_done);
    assert_eq!(h.m.deadline(), Some(h.now.plus(o.probe_interval)));
    let mut h = reach(Phase::Replicating);
    assert_eq!(
        h.m.deadline(),
        None,
        "probe in flight, no timeout in steady state"
    );
    let obs = h.healthy();
    h.answer(obs);
    assert_eq!(h.m.deadline(), Some(h.now.plus(o.probe_interval)));
    // The catch-up timeout covers the preparation and the catch-up together.
    let mut h = reach(Phase::PreparingFailover);
    let started = h.now;
    h.advance(Duration::from_secs(60));
    h.done_all();
    assert_eq!(h.phase(), Phase::CatchingUp);
    assert_eq!(h.m.deadline(), Some(started.plus(o.catch_up_timeout)));
}

pub fn machine_round_trips_through_json() {
    for phase in WORKING {
        let h = reach(phase);
        let json = serde_json::to_string(&h.m).unwrap();
        let back: Machine = serde_json::from_str(&json).unwrap();
        assert_eq!(back, h.m, "{phase}");
    }
    // A journal edited to hold an invalid spec is refused on load.
    let h = reach(Phase::Seeding);
    let mut value = serde_json::to_value(&h.m).unwrap();
    value["spec"]["session_timeout_s"] = serde_json::json!(1);
    let err = serde_json::from_value::<Machine>(value).unwrap_err();
    assert!(
        err.to_string()
            .contains("SESSION_TIMEOUT must be at least 5"),
        "{err}"
    );
    // Steps serialize too (the driver logs them).
    let mut h = reach(Phase::PreparingSource);
    let step = h.m.handle(Input::Resume, h.now).unwrap();
    assert!(
        serde_json::to_string(&step)
            .unwrap()
            .contains("EnsureMasterKey")
    );
}

// ---------------------------------------------------------------------------------------------
// Preparing a role change while the application writes, and the sub-second gate.

/// The instance primary on a two-way link, SQL Server read asynchronous.
fn async_reading(h: &H, primary: Side) -> Observation {
    h.view(
        primary,
        AvailabilityMode::AsynchronousCommit,
        SyncState::Synchronizing,
        SyncHealth::Healthy,
        5,
        5,
    )
}

pub fn prepare_switches_to_sync_ahead_and_the_role_change_skips_the_switch() {
    let mut h = H::new(two_way());
    assert_eq!(
        h.reject_cmd(Command::Prepare),
        RejectReason::NotReplicatingYet
    );
    h.create();
    let fx = h.cmd(Command::Prepare);
    assert_eq!(phase_events(&h.events), ["PreparingFailover"]);
    assert_eq!(actions(&fx).len(), 2, "both sides switch at once");
    h.done_all();
    assert_eq!(phase_events(&h.events), ["Replicating"]);
    assert!(Operation::Prepare.reached(h.m.state()));
    assert!(h.cmd(Command::Prepare).is_empty(), "already synchronous");
    // The failover goes straight to the gate.
    let fx = h.cmd(Command::Failover(FailoverKind::Planned));
    assert_eq!(phase_events(&h.events), ["CatchingUp"]);
    assert!(is_probe(&fx, Probe::Link));
    // A side read asynchronous (changed outside milink) makes the switch after all.
    let obs = async_reading(&h, Side::SqlServer);
    let fx = h.answer(obs);
    assert_eq!(phase_events(&h.events), ["PreparingFailover"]);
    assert_eq!(actions(&fx).len(), 2);
    h.done_all();
    h.pass_gate(Side::ManagedInstance);
    h.done();
    h.verify_and_redirect(Side::ManagedInstance);
    assert_eq!(h.phase(), Phase::FailedOver);
    // Failed over, read asynchronous: prepare switches again and comes back to FailedOver.
    h.tick_at_deadline();
    let obs = async_reading(&h, Side::ManagedInstance);
    h.answer(obs);
    let fx = h.cmd(Command::Prepare);
    assert_eq!(actions(&fx).len(), 2);
    h.done_all();
    assert_eq!(phase_events(&h.events), ["FailedOver"]);

    // A two-way cutover after a prepare goes straight to the gate too.
    let mut h = H::new(two_way());
    h.create();
    h.cmd(Command::Prepare);
    h.done_all();
    h.cmd(Command::Cutover(keep_ag()));
    assert_eq!(phase_events(&h.events), ["CatchingUp"]);

    // A one-way cutover after a prepare: the backup wait, then the gate without a switch.
    let mut h = H::new(one_way());
    h.create();
    h.cmd(Command::Prepare);
    h.done_all();
    h.cmd(Command::Cutover(keep_ag()));
    assert_eq!(h.phase(), Phase::AwaitingFirstFullBackup);
    let obs = h.backups(Some(h.now));
    h.answer(obs);
    assert_eq!(phase_events(&h.events), ["CatchingUp"]);

    // A reverse link failed over to SQL Server and read asynchronous: its cutover switches.
    let mut h = H::new(reverse());
    h.create();
    h.planned_failover();
    h.tick_at_deadline();
    let obs = async_reading(&h, Side::SqlServer);
    h.answer(obs);
    h.cmd(Command::Cutover(keep_ag()));
    assert_eq!(phase_events(&h.events), ["PreparingFailover"]);

    // Refused in a split brain and while another operation runs.
    let mut h = H::new(two_way());
    h.create();
    h.tick_at_deadline();
    let obs = h.both_primary();
    h.answer(obs);
    assert_eq!(
        h.reject_cmd(Command::Prepare),
        RejectReason::SplitBrainPresent
    );
    let mut h = reach(Phase::CatchingUp);
    assert_eq!(
        h.reject_cmd(Command::Prepare),
        RejectReason::NotAllowedInState
    );
}

pub fn guard_a_quiet_workload_shortens_the_window_and_nothing_else_does() {
    let spec = || {
        let mut spec = two_way();
        spec.options.gate_interval = Duration::from_millis(250);
        spec
    };
    // Returns the time from the first equal reading to the FAILOVER, the gate read every
    // 250 ms, with the workload reading answered by `answer`.
    let run = |answer: &dyn Fn(&mut H, StepId)| -> Duration {
        let mut h = H::new(spec());
        h.workload = None;
        h.create();
        h.cmd(Command::Failover(FailoverKind::Planned));
        h.switch_to_sync();
        let equal = h.sync_equal(Side::SqlServer, 1000);
        let first = h.now;
        let fx = h.answer(equal.clone());
        let step = match &fx[..] {
            [
                Effect::Probe {
                    step,
                    probe:
                        Probe::Workload {
                            side: Side::SqlServer,
                        },
                },
            ] => *step,
            other => {
                panic!("the primary's workload is read after the first equal reading: {other:?}")
            }
        };
        answer(&mut h, step);
        assert_eq!(h.phase(), Phase::CatchingUp);
        for _ in 0..400 {
            let before = h.now;
            h.tick_at_deadline();
            assert_eq!(h.now.since(before), Duration::from_millis(250));
            if has_failover(&h.answer(equal.clone())) {
                return h.now.since(first);
            }
        }
        panic!("the gate never opened");
    };
    let options = spec().options;
    let quiet_window = options.quiet_stability_window.unwrap();
    let quiet = run(&|h, step| {
        h.answer_step(step, Ok(Observation::Workload(WorkloadActivity::default())));
    });
    assert!(quiet >= quiet_window, "{quiet:?}");
    assert!(quiet < quiet_window + options.gate_interval * 2);
    // A connected session, an open transaction or a reading that failed: the long window.
    let busy = run(&|h, step| {
        h.answer_step(step, Ok(Observation::Workload(busy_workload())));
    });
    let mut open = busy_workload();
    open.sessions[0].open_transactions = 1;
    let open_tx = run(&|h, step| {
        h.answer_step(step, Ok(Observation::Workload(open.clone())));
    });
    let failed = run(&|h, step| {
        h.answer_step(step, Err(step_error(false)));
    });
    for d in [busy, open_tx, failed] {
        assert!(d >= options.stability_window, "{d:?}");
        assert!(d < options.stability_window + options.gate_interval * 2);
    }
    // New LSNs after the quiet reading restart the window and the workload is read again.
    let mut h = H::new(spec());
    h.workload = None;
    h.create();
    h.cmd(Command::Failover(FailoverKind::Planned));
    h.switch_to_sync();
    let obs = h.sync_equal(Side::SqlServer, 1000);
    let fx = h.answer(obs);
    h.answer_step(
        fx[0].step(),
        Ok(Observation::Workload(WorkloadActivity::default())),
    );
    h.tick_at_deadline();
    let obs = h.sync_equal(Side::SqlServer, 1007);
    let fx = h.answer(obs);
    assert!(
        matches!(
            &fx[..],
            [Effect::Probe {
                probe: Probe::Workload { .. },
                ..
            }]
        ),
        "{fx:?}"
    );
    assert!(matches!(
        h.m.state(),
        State::CatchingUp {
            stable: Some(StableLsns { quiet: None, .. }),
            blocker: Some(CatchUpBlocker::LsnsStillMoving),
            ..
        }
    ));
}

pub fn guard_the_live_window_applies_only_while_every_reading_is_live() {
    // Quiet workload; the instance's view read live over T-SQL (`SideView::live`) on the
    // readings listed by `live`: the gate holds the LSNs for `live_quiet_stability_window` only
    // when every reading of the held values was live, else for `quiet_stability_window`, which
    // outlasts ARM's lag.
    let run = |live: &dyn Fn(usize) -> bool| -> Duration {
        let mut spec = two_way();
        spec.options.gate_interval = Duration::from_millis(250);
        let mut h = H::new(spec);
        h.workload = None;
        h.create();
        h.cmd(Command::Failover(FailoverKind::Planned));
        h.switch_to_sync();
        let reading = |h: &H, n: usize| {
            let mut obs = h.sync_equal(Side::SqlServer, 1000);
            if let Observation::Link(link) = &mut obs {
                link.instance.live = live(n);
            }
            obs
        };
        let first = h.now;
        let fx = h.answer(reading(&h, 0));
        h.answer_step(
            fx[0].step(),
            Ok(Observation::Workload(WorkloadActivity::default())),
        );
        for n in 1..400 {
            h.tick_at_deadline();
            if has_failover(&h.answer(reading(&h, n))) {
                return h.now.since(first);
            }
        }
        panic!("the gate never opened");
    };
    let options = two_way().options;
    let (live_window, arm_window) = (
        options.live_quiet_stability_window,
        options.quiet_stability_window.unwrap(),
    );
    assert!(live_window < arm_window);
    let gate = Duration::from_millis(250);
    let all_live = run(&|_| true);
    assert!(all_live >= live_window, "{all_live:?}");
    assert!(all_live < live_window + gate * 2, "{all_live:?}");
    // One reading through ARM alone among live ones: the longer window.
    for stale in [0, 1, 3] {
        let mixed = run(&|n| n != stale);
        assert!(mixed >= arm_window, "reading {stale} not live: {mixed:?}");
        assert!(mixed < arm_window + gate * 2, "{mixed:?}");
    }
    let none_live = run(&|_| false);
    assert!(none_live >= arm_window, "{none_live:?}");
}

pub fn the_gate_reads_the_instance_from_its_dmvs_alone_between_whole_readings() {
    // The gate's first reading is a whole one (ARM and the DMVs). After it, while the last
    // reading was live, the instance is read from its DMVs alone (`Probe::LinkLive`): ARM's
    // read would add to the downtime and tells the gate nothing it decides on. A reading that
    // was not live (the DMVs could not be read) brings back whole readings; and once the gate
    // passes, the roles are read whole again (the update policy is ARM's).
    let mut spec = two_way();
    spec.options.gate_interval = Duration::from_millis(250);
    let mut h = H::new(spec);
    h.workload = None;
    h.create();
    h.cmd(Command::Failover(FailoverKind::Planned));
    h.switch_to_sync();
    assert_eq!(h.phase(), Phase::CatchingUp);
    assert!(is_probe(&[h.pending()], Probe::Link), "{:?}", h.pending());
    let reading = |h: &H, lsn: u128, live: bool| {
        let mut obs = h.sync_equal(Side::SqlServer, lsn);
        if let Observation::Link(link) = &mut obs {
            link.instance.live = live;
        }
        obs
    };
    // Answers a reading, and the workload read that follows new equal values.
    let answer = |h: &mut H, lsn: u128, live: bool| {
        let obs = reading(h, lsn, live);
        let fx = h.answer(obs);
        if let [
            Effect::Probe {
                probe: Probe::Workload { .. },
                step,
            },
        ] = fx.as_slice()
        {
            return h.answer_step(
                *step,
                Ok(Observation::Workload(WorkloadActivity::default())),
            );
        }
        fx
    };
    // Read live: the next reading is from the DMVs alone.
    answer(&mut h, 1000, true);
    h.tick_at_deadline();
    assert!(
        is_probe(&[h.pending()], Probe::LinkLive),
        "{:?}",
        h.pending()
    );
    // The DMVs could not be read: whole readings again.
    answer(&mut h, 1100, false);
    h.tick_at_deadline();
    assert!(is_probe(&[h.pending()], Probe::Link), "{:?}", h.pending());
    answer(&mut h, 1200, true);
    let mut passed = false;
    for _ in 0..40 {
        h.tick_at_deadline();
        assert!(
            is_probe(&[h.pending()], Probe::LinkLive),
            "{:?}",
            h.pending()
        );
        if has_failover(&answer(&mut h, 1200, true)) {
            passed = true;
            break;
        }
    }
    assert!(passed, "the gate never opened on live readings");
    h.done();
    assert_eq!(h.phase(), Phase::VerifyingRoles);
    assert!(is_probe(&[h.pending()], Probe::Link), "{:?}", h.pending());

    // After an attempt, every reading of the gate is whole, however live: ARM's evidence of
    // a failover still running shows late, and must be seen before one is sent again.
    let mut h = reach(Phase::FailingOver);
    h.workload = Some(WorkloadActivity::default());
    h.fail(false);
    h.cmd(Command::Retry);
    let obs = h.roles(Side::SqlServer, Some(ReplicaRole::Secondary));
    h.answer(obs);
    assert!(matches!(
        h.m.state(),
        State::CatchingUp {
            plan: Plan { retried: true, .. },
            ..
        }
    ));
    let mut readings = 0;
    loop {
        let obs = reading(&h, 2000, true);
        if has_failover(&h.answer(obs)) {
            break;
        }
        readings += 1;
        assert!(readings < 100, "the gate never opened");
        h.tick_at_deadline();
        assert!(is_probe(&[h.pending()], Probe::Link), "{:?}", h.pending());
    }
    assert!(readings >= 2, "{readings}");
}

pub fn guard_after_an_attempt_the_gate_waits_the_long_window_however_quiet() {
    // The FAILOVER failed and a reading shows the roles unchanged: the gate runs again, and
    // even with no client session left it holds the LSNs for the full stability window, so a
    // lagging reading of an operation that still runs is seen before anything is sent again.
    let mut h = reach(Phase::FailingOver);
    h.workload = Some(WorkloadActivity::default());
    h.fail(false);
    let fx = h.cmd(Command::Retry);
    assert!(is_probe(&fx, Probe::Link));
    let obs = h.roles(Side::SqlServer, Some(ReplicaRole::Secondary));
    assert!(!has_failover(&h.answer(obs)));
    assert!(matches!(
        h.m.state(),
        State::CatchingUp {
            plan: Plan { retried: true, .. },
            ..
        }
    ));
    let options = h.spec().options;
    let equal = h.sync_equal(Side::SqlServer, 2000);
    let first = h.now;
    let fx = h.answer(equal.clone());
    assert!(
        !fx.iter().any(|e| matches!(
            e,
            Effect::Probe {
                probe: Probe::Workload { .. },
                ..
            }
        )),
        "after an attempt the workload is not read: the long window applies anyway"
    );
    loop {
        h.tick_at_deadline();
        if has_failover(&h.answer(equal.clone())) {
            break;
        }
        assert!(
            h.now.since(first) < options.stability_window + options.gate_interval * 2,
            "the gate never opened"
        );
    }
    assert!(h.now.since(first) >= options.stability_window);
}
