//! Each effect becomes the right port call, with retries, timeouts and role-change care.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::*;
use crate::journal::MemoryJournal;
use crate::lifecycle::{
    ArmFailoverType, AvailabilityMode, DatabaseView, FullBackup, OperationKind, OperationRef,
    ReplicaRole, SideView, SyncHealth, SyncState,
};
use crate::lifecycle::{InstanceOp, SourceOp};
use crate::names::{DatabaseName, Lsn};
use crate::ports::{MockManagedInstance, MockSourceServer};
use crate::retry::Jitter;
use crate::test_support::{VirtualTimer, spec};
use crate::time::Clock;

fn options() -> SessionOptions {
    SessionOptions {
        retry: RetryPolicy {
            max_attempts: 3,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            multiplier: 2.0,
            jitter: Jitter::None,
            max_retry_after: Duration::from_secs(60),
            busy_timeout: Duration::from_secs(15 * 60),
        },
        call_timeout: Duration::from_secs(30),
        operation_timeout: Duration::from_secs(3600),
        seed: 1,
        event_capacity: 64,
        lock_dir: None,
        world: None,
        arm_read_interval: super::DEFAULT_ARM_READ_INTERVAL,
    }
}

type MockSession = Session<MockSourceServer, MockManagedInstance, MemoryJournal>;

fn session(
    source: MockSourceServer,
    instance: MockManagedInstance,
) -> (MockSession, Arc<VirtualTimer>) {
    let timer = Arc::new(VirtualTimer::new(Timestamp::from_millis(1_000_000)));
    let session = Session::create(
        spec(),
        Arc::new(source),
        Arc::new(instance),
        MemoryJournal::new(),
        timer.clone(),
        options(),
    )
    .unwrap();
    (session, timer)
}

fn toystore() -> DatabaseName {
    DatabaseName::new("ToyStore").unwrap()
}

fn side(role: ReplicaRole, lsn: u128) -> SideView {
    SideView {
        exists: true,
        role: Some(role),
        mode: Some(AvailabilityMode::AsynchronousCommit),
        partner_mode: None,
        version: None,
        update_policy: None,
        failover_mode: None,
        connected: true,
        databases: vec![DatabaseView {
            name: toystore(),
            sync_state: Some(SyncState::Synchronizing),
            health: SyncHealth::Healthy,
            last_hardened_lsn: Some(Lsn::new(lsn).unwrap()),
            end_of_log_lsn: None,
            partner: None,
            last_commit_lsn: Some(Lsn::new(lsn).unwrap()),
            seeding_percent: None,
            log_send_queue_kb: Some(0),
            redo_queue_kb: Some(0),
            lag_seconds: Some(0),
            last_error: None,
            replica_state: None,
        }],
        live: false,
    }
}

fn operation() -> OperationRef {
    OperationRef {
        url: "https://management.azure.com/subscriptions/s/providers/Microsoft.Sql/locations/westeurope/operations/op1".into(),
        kind: OperationKind::AzureAsyncOperation,
        resource: None,
    }
}

#[tokio::test]
async fn a_source_effect_runs_exactly_that_operation() {
    let mut source = MockSourceServer::new();
    source
        .expect_execute()
        .withf(|op| *op == SourceOp::EnsureMasterKey)
        .times(1)
        .returning(|_| Ok(SourceReply::Done));
    let (s, _) = session(source, MockManagedInstance::new());
    let effect = Effect::Source {
        step: StepId(7),
        op: SourceOp::EnsureMasterKey,
    };
    assert_eq!(s.perform(StepId(7), &effect).await, Ok(Observation::Done));
}

#[tokio::test]
async fn an_exported_key_comes_back_as_a_public_key_observation() {
    let cert = spec().source.certificate;
    let expected = SourceOp::ExportCertificatePublicKey { name: cert.clone() };
    let mut source = MockSourceServer::new();
    source
        .expect_execute()
        .withf(move |op| *op == expected)
        .times(1)
        .returning(|_| Ok(SourceReply::PublicKey(vec![0x30, 0x82])));
    let (s, _) = session(source, MockManagedInstance::new());
    let effect = Effect::Source {
        step: StepId(1),
        op: SourceOp::ExportCertificatePublicKey { name: cert },
    };
    assert_eq!(
        s.perform(StepId(1), &effect).await,
        Ok(Observation::PublicKey(vec![0x30, 0x82]))
    );
}

#[tokio::test]
async fn an_instance_effect_begins_that_arm_operation_and_reports_the_operation_to_poll() {
    let op = InstanceOp::Failover {
        link: spec().link,
        failover_type: ArmFailoverType::Planned,
    };
    let expected = op.clone();
    let mut instance = MockManagedInstance::new();
    instance
        .expect_begin()
        .withf(move |o| *o == expected)
        .times(1)
        .returning(|_| Ok(ArmReply::Accepted(operation())));
    let (s, _) = session(MockSourceServer::new(), instance);
    let effect = Effect::Instance {
        step: StepId(3),
        op,
    };
    assert_eq!(
        s.perform(StepId(3), &effect).await,
        Ok(Observation::OperationAccepted(operation()))
    );
}

#[tokio::test]
async fn get_endpoint_certificate_and_synchronous_completion_map_to_their_observations() {
    let mut instance = MockManagedInstance::new();
    instance
        .expect_begin()
        .withf(|o| *o == InstanceOp::GetEndpointCertificate)
        .times(1)
        .returning(|_| Ok(ArmReply::PublicKey(vec![1, 2, 3])));
    instance
        .expect_begin()
        .withf(|o| matches!(o, InstanceOp::SetReplicationMode { .. }))
        .times(1)
        .returning(|_| Ok(ArmReply::Completed));
    let (s, _) = session(MockSourceServer::new(), instance);
    let get = Effect::Instance {
        step: StepId(1),
        op: InstanceOp::GetEndpointCertificate,
    };
    assert_eq!(
        s.perform(StepId(1), &get).await,
        Ok(Observation::PublicKey(vec![1, 2, 3]))
    );
    let set = Effect::Instance {
        step: StepId(2),
        op: InstanceOp::SetReplicationMode {
            link: spec().link,
            mode: AvailabilityMode::SynchronousCommit,
        },
    };
    assert_eq!(s.perform(StepId(2), &set).await, Ok(Observation::Done));
}

#[tokio::test]
async fn a_poll_effect_polls_the_saved_operation() {
    let mut instance = MockManagedInstance::new();
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    instance
        .expect_poll()
        .withf(|o| *o == operation())
        .times(2)
        .returning(move |_| {
            if c.fetch_add(1, Ordering::SeqCst) == 0 {
                Ok(PollReply::Running {
                    retry_after: Some(Duration::from_secs(10)),
                })
            } else {
                Ok(PollReply::Succeeded)
            }
        });
    let (s, _) = session(MockSourceServer::new(), instance);
    let effect = Effect::PollOperation {
        step: StepId(4),
        operation: operation(),
    };
    // The reply's `Retry-After` reaches the machine (journaled with the observation).
    assert_eq!(
        s.perform(StepId(4), &effect).await,
        Ok(Observation::OperationRunningRetryAfter(
            Duration::from_secs(10)
        ))
    );
    assert_eq!(s.perform(StepId(4), &effect).await, Ok(Observation::Done));
}

#[tokio::test]
async fn a_link_probe_reads_both_sides_and_merges_them() {
    let mut source = MockSourceServer::new();
    source
        .expect_link_state()
        .withf(|link, dbs| *link == spec().link && dbs == [toystore()])
        .times(1)
        .returning(|_, _| Ok(side(ReplicaRole::Primary, 1000)));
    let mut instance = MockManagedInstance::new();
    instance
        .expect_link_state()
        .withf(|link| *link == spec().link)
        .times(1)
        .returning(|_| Ok(side(ReplicaRole::Secondary, 900)));
    let (s, _) = session(source, instance);
    let effect = Effect::Probe {
        step: StepId(5),
        probe: Probe::Link,
    };
    assert_eq!(
        s.perform(StepId(5), &effect).await,
        Ok(Observation::Link(LinkObservation {
            source: side(ReplicaRole::Primary, 1000),
            instance: side(ReplicaRole::Secondary, 900),
            unreachable: None,
        }))
    );
}

#[tokio::test]
async fn a_failing_side_fails_the_link_probe() {
    let mut source = MockSourceServer::new();
    source
        .expect_link_state()
        .returning(|_, _| Err(PortError::permanent("sql:18452", "login failed")));
    let mut instance = MockManagedInstance::new();
    instance
        .expect_link_state()
        .returning(|_| Ok(side(ReplicaRole::Secondary, 900)));
    let (s, _) = session(source, instance);
    let effect = Effect::Probe {
        step: StepId(5),
        probe: Probe::Link,
    };
    let err = s.perform(StepId(5), &effect).await.unwrap_err();
    assert_eq!(err.code, "sql:18452");
    assert!(!err.retryable);
}

#[tokio::test]
async fn a_backup_probe_asks_the_instance_for_the_links_databases() {
    let finished = Timestamp::from_millis(5_000);
    let mut instance = MockManagedInstance::new();
    instance
        .expect_full_backups()
        .withf(|dbs| dbs == [toystore()])
        .times(1)
        .returning(move |_| {
            Ok(vec![FullBackup {
                database: toystore(),
                finished: Some(finished),
            }])
        });
    let (s, _) = session(MockSourceServer::new(), instance);
    let effect = Effect::Probe {
        step: StepId(6),
        probe: Probe::FirstFullBackups,
    };
    assert_eq!(
        s.perform(StepId(6), &effect).await,
        Ok(Observation::FullBackups(vec![FullBackup {
            database: toystore(),
            finished: Some(finished),
        }]))
    );
}

struct RecordingHook(Mutex<Vec<Side>>);

#[async_trait]
impl RedirectHook for RecordingHook {
    async fn redirect(
        &self,
        target: &crate::redirect::RedirectTarget,
    ) -> Result<(), crate::redirect::HookError> {
        lock(&self.0).push(target.side);
        Ok(())
    }
}

#[tokio::test]
async fn a_redirect_calls_the_hook_when_there_is_one() {
    let effect = Effect::Redirect {
        step: StepId(9),
        primary: Side::ManagedInstance,
    };
    // A port that cannot tell the instance's FQDN: the redirect goes on unchecked.
    let unknown_fqdn = || {
        let mut mi = MockManagedInstance::new();
        mi.expect_instance_fqdn().returning(|| Ok(None));
        mi
    };
    let (s, _) = session(MockSourceServer::new(), unknown_fqdn());
    assert_eq!(s.perform(StepId(9), &effect).await, Ok(Observation::Done));

    let hook = Arc::new(RecordingHook(Mutex::new(Vec::new())));
    let (s, _) = session(MockSourceServer::new(), unknown_fqdn());
    let s = s.with_redirect_hook(hook.clone());
    assert_eq!(s.perform(StepId(9), &effect).await, Ok(Observation::Done));
    assert_eq!(*lock(&hook.0), vec![Side::ManagedInstance]);
}

#[tokio::test]
async fn transient_errors_are_retried_with_backoff_and_reported() {
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let mut source = MockSourceServer::new();
    source.expect_execute().times(3).returning(move |_| {
        if c.fetch_add(1, Ordering::SeqCst) < 2 {
            Err(PortError::transient("io", "connection reset"))
        } else {
            Ok(SourceReply::Done)
        }
    });
    let (s, timer) = session(source, MockManagedInstance::new());
    let mut events = s.subscribe();
    let before = timer.now();
    let effect = Effect::Source {
        step: StepId(2),
        op: SourceOp::EnsureRootCaTrust,
    };
    assert_eq!(s.perform(StepId(2), &effect).await, Ok(Observation::Done));
    // 100 ms then 200 ms of backoff, on the session's timer.
    assert_eq!(timer.now().since(before), Duration::from_millis(300));
    let mut retries = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let SessionEvent::StepRetrying {
            attempt,
            code,
            wait,
            ..
        } = e
        {
            retries.push((attempt, code, wait));
        }
    }
    assert_eq!(
        retries,
        vec![
            (1, "io".to_string(), Duration::from_millis(100)),
            (2, "io".to_string(), Duration::from_millis(200)),
        ]
    );
}

#[tokio::test]
async fn a_permanent_error_becomes_a_step_error_after_one_call() {
    let mut source = MockSourceServer::new();
    source.expect_execute().times(1).returning(|_| {
        Err(PortError::permanent(
            "sql:41962",
            "the DAG name is already in use; choose another link name",
        ))
    });
    let (s, _) = session(source, MockManagedInstance::new());
    let effect = Effect::Source {
        step: StepId(2),
        op: SourceOp::EnsureMasterKey,
    };
    assert_eq!(
        s.perform(StepId(2), &effect).await,
        Err(StepError {
            code: "sql:41962".into(),
            message: "the DAG name is already in use; choose another link name".into(),
            retryable: false,
        })
    );
}

#[tokio::test]
async fn giving_up_on_a_transient_error_leaves_it_retryable() {
    let mut instance = MockManagedInstance::new();
    instance
        .expect_begin()
        .times(3)
        .returning(|_| Err(PortError::transient("http:503", "service unavailable")));
    let (s, _) = session(MockSourceServer::new(), instance);
    let effect = Effect::Instance {
        step: StepId(2),
        op: InstanceOp::GetEndpointCertificate,
    };
    let err = s.perform(StepId(2), &effect).await.unwrap_err();
    assert_eq!(err.code, "http:503");
    assert!(err.retryable);
}

#[tokio::test]
async fn a_role_change_is_not_repeated_after_an_ambiguous_failure() {
    let mut source = MockSourceServer::new();
    source
        .expect_execute()
        .withf(|op| matches!(op, SourceOp::Failover { .. }))
        .times(1)
        .returning(|_| Err(PortError::transient("io", "connection reset")));
    let mut instance = MockManagedInstance::new();
    instance
        .expect_begin()
        .withf(|op| matches!(op, InstanceOp::SetRole { .. }))
        .times(1)
        .returning(|_| Err(PortError::transient("http:502", "bad gateway")));
    let (s, _) = session(source, instance);
    let failover = Effect::Source {
        step: StepId(2),
        op: SourceOp::Failover { dag: spec().link },
    };
    let err = s.perform(StepId(2), &failover).await.unwrap_err();
    assert_eq!(err.code, "io");
    assert!(
        err.retryable,
        "the machine decides whether to re-check and retry"
    );
    let set_role = Effect::Instance {
        step: StepId(3),
        op: InstanceOp::SetRole {
            link: spec().link,
            role: Side::ManagedInstance,
            change: crate::lifecycle::RoleChangeType::Planned,
        },
    };
    assert_eq!(
        s.perform(StepId(3), &set_role).await.unwrap_err().code,
        "http:502"
    );
}

#[tokio::test]
async fn a_throttled_role_change_is_retried_after_retry_after() {
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let mut instance = MockManagedInstance::new();
    instance.expect_begin().times(2).returning(move |_| {
        if c.fetch_add(1, Ordering::SeqCst) == 0 {
            Err(PortError::transient("arm:429:TooManyRequests", "throttled")
                .with_retry_after(Duration::from_secs(20)))
        } else {
            Ok(ArmReply::Accepted(operation()))
        }
    });
    let (s, timer) = session(MockSourceServer::new(), instance);
    let before = timer.now();
    let effect = Effect::Instance {
        step: StepId(2),
        op: InstanceOp::Failover {
            link: spec().link,
            failover_type: ArmFailoverType::Planned,
        },
    };
    assert_eq!(
        s.perform(StepId(2), &effect).await,
        Ok(Observation::OperationAccepted(operation()))
    );
    assert!(timer.now().since(before) >= Duration::from_secs(20));
}

/// A SQL Server that never answers.
struct Silent;

#[async_trait]
impl SourceServer for Silent {
    async fn execute(&self, _: &SourceOp) -> Result<SourceReply, PortError> {
        std::future::pending().await
    }
    async fn link_state(&self, _: &LinkName, _: &[DatabaseName]) -> Result<SideView, PortError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_call_that_never_answers_times_out_on_the_session_timer() {
    let timer = Arc::new(VirtualTimer::new(Timestamp::EPOCH));
    let s = Session::create(
        spec(),
        Arc::new(Silent),
        Arc::new(MockManagedInstance::new()),
        MemoryJournal::new(),
        timer.clone(),
        SessionOptions {
            retry: RetryPolicy::no_retry(),
            ..options()
        },
    )
    .unwrap();
    let effect = Effect::Source {
        step: StepId(2),
        op: SourceOp::EnsureMasterKey,
    };
    let err = s.perform(StepId(2), &effect).await.unwrap_err();
    assert_eq!(err.code, "timeout");
    assert!(err.retryable);
    assert_eq!(timer.now(), Timestamp::from_millis(30_000));
}

/// A SQL Server reached without verifying its certificate.
struct Unverified;

#[async_trait]
impl SourceServer for Unverified {
    async fn execute(&self, _: &SourceOp) -> Result<SourceReply, PortError> {
        Ok(SourceReply::Done)
    }
    async fn link_state(&self, _: &LinkName, _: &[DatabaseName]) -> Result<SideView, PortError> {
        std::future::pending().await
    }
    fn connection_warnings(&self) -> Vec<String> {
        vec!["SQL Server's TLS certificate is not verified".to_owned()]
    }
}

#[test]
fn the_status_repeats_what_the_sql_server_port_warns_about_its_connection() {
    let timer = Arc::new(VirtualTimer::new(Timestamp::EPOCH));
    let quiet = Session::create(
        spec(),
        Arc::new(Silent),
        Arc::new(MockManagedInstance::new()),
        MemoryJournal::new(),
        timer.clone(),
        options(),
    )
    .unwrap();
    assert!(quiet.status().connection_warnings.is_empty());
    let warned = Session::create(
        spec(),
        Arc::new(Unverified),
        Arc::new(MockManagedInstance::new()),
        MemoryJournal::new(),
        timer,
        options(),
    )
    .unwrap();
    let status = warned.status();
    assert_eq!(
        status.connection_warnings,
        vec!["SQL Server's TLS certificate is not verified".to_owned()]
    );
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(
        json["connection_warnings"][0],
        status.connection_warnings[0]
    );
}

#[test]
fn role_changes_are_recognised() {
    let link = spec().link;
    assert!(
        Effect::Source {
            step: StepId(1),
            op: SourceOp::ForceFailover { dag: link.clone() }
        }
        .is_role_change()
    );
    assert!(
        Effect::Instance {
            step: StepId(1),
            op: InstanceOp::DeleteLink { link: link.clone() }
        }
        .is_role_change()
    );
    assert!(
        !Effect::Source {
            step: StepId(1),
            op: SourceOp::DropDistributedAvailabilityGroup { dag: link }
        }
        .is_role_change()
    );
    assert!(
        !Effect::Probe {
            step: StepId(1),
            probe: Probe::Link
        }
        .is_role_change()
    );
}

#[test]
fn actions_name_the_operation_but_never_its_data() {
    let effect = Effect::Source {
        step: StepId(1),
        op: SourceOp::ImportInstanceCertificate {
            fqdn: spec().target.fqdn,
            der: vec![0xde, 0xad],
        },
    };
    assert_eq!(action(&effect), "sql:ImportInstanceCertificate");
    assert_eq!(
        action(&Effect::Instance {
            step: StepId(1),
            op: InstanceOp::GetEndpointCertificate
        }),
        "arm:GetEndpointCertificate"
    );
}

#[test]
fn errors_say_whose_fault_they_are() {
    let step = |code: &str, retryable| {
        crate::Error::from(SessionError::StepFailed(StepError {
            code: code.into(),
            message: "m".into(),
            retryable,
        }))
    };
    let remote = step("arm:409:ManagedInstanceIsBusy", true);
    assert!(remote.is_remote() && remote.is_transient() && !remote.is_caller_error());
    let local = step("timeout", true);
    assert!(!local.is_remote());
    // A replica state the instance reports without an error number is the remote side's verdict.
    let seeding = step("link:LinkCreationError", false);
    assert!(seeding.is_remote() && !seeding.is_transient() && !seeding.is_caller_error());
    let locked = crate::Error::from(JournalError::Locked { path: "j".into() });
    assert!(locked.is_caller_error() && locked.is_transient() && !locked.is_remote());
    let timeout = crate::Error::from(SessionError::Timeout {
        operation: "start",
        waited: Duration::from_secs(1),
        state: "Seeding".into(),
    });
    assert!(timeout.is_transient() && !timeout.is_caller_error());
    assert!(timeout.to_string().contains("call resume"));
}
