//! Behaviour of the simulated world, driven through the ports and the virtual clock.

use std::time::Duration;

use super::world::{DbState, ReplicaPhase};
use super::*;
use crate::lifecycle::{
    ArmFailoverType, AvailabilityMode, InstanceOp, LinkProperties, LinkSpec, OperationRef,
    ReplicaRole, RoleChangeType, SourceOp, SyncState,
};
use crate::names::{AgName, LinkMode, LinkName};
use crate::ports::{ArmReply, ManagedInstance, PollReply, PortError, SourceReply, SourceServer};
use crate::time::{Clock, Timer};

struct Rig {
    lab: Lab,
    sql: SimSqlServer,
    mi: SimManagedInstance,
    clock: SimClock,
}

impl Rig {
    fn new(seed: u64) -> Rig {
        Rig::with(SimConfig::with_seed(seed))
    }

    fn with(config: SimConfig) -> Rig {
        let lab = Lab::tailspin_with(config).unwrap();
        Rig {
            sql: lab.sim.sql_server(),
            mi: lab.sim.managed_instance(),
            clock: lab.sim.clock(),
            lab,
        }
    }

    fn sim(&self) -> &Sim {
        &self.lab.sim
    }

    fn spec(&self) -> &LinkSpec {
        &self.lab.spec
    }

    fn db(&self) -> DatabaseName {
        self.lab.database.clone()
    }

    async fn sleep(&self, d: Duration) {
        self.clock.sleep_until(self.clock.now().plus(d)).await;
    }

    /// Waits until ARM's lagging readings show what the world is now.
    async fn arm_catches_up(&self) {
        let lag = self.sim().with_world(|w| w.config.arm_reading_lag);
        self.sleep(lag).await;
    }

    async fn wait(&self, reply: ArmReply) -> Result<(), PortError> {
        let ArmReply::Accepted(op) = reply else {
            return Ok(());
        };
        loop {
            match self.mi.poll(&op).await? {
                PollReply::Running { retry_after } => {
                    self.sleep(retry_after.unwrap_or(Duration::from_secs(5)))
                        .await
                }
                PollReply::Succeeded => return Ok(()),
            }
        }
    }

    async fn arm(&self, op: InstanceOp) -> Result<(), PortError> {
        let r = self.mi.begin(&op).await?;
        self.wait(r).await
    }

    async fn tsql(&self, op: SourceOp) -> Result<SourceReply, PortError> {
        self.sql.execute(&op).await
    }

    fn link(&self) -> LinkName {
        self.spec().link.clone()
    }

    fn put_link_op(&self) -> InstanceOp {
        let s = self.spec();
        InstanceOp::PutLink {
            link: s.link.clone(),
            properties: LinkProperties {
                instance_link_role: Side::SqlServer,
                instance_ag: s.target.ag.clone(),
                partner_ag: s.source.ag.clone(),
                partner_endpoint: s.source.endpoint_url(),
                failover_mode: s.failover_mode,
                seeding_mode: s.seeding_mode,
                link_mode: LinkMode::SingleDatabase,
                databases: s.databases.clone(),
            },
        }
    }

    fn dag_op(&self) -> SourceOp {
        let s = self.spec();
        SourceOp::CreateDistributedAvailabilityGroup {
            spec: crate::tsql::CreateDagSpec {
                dag: s.link.clone(),
                sql_ag: s.source.ag.clone(),
                sql_listener_url: s.source.endpoint_url(),
                mi_ag: s.target.ag.clone(),
                mi_fqdn: s.target.fqdn.clone(),
                mi_database: None,
                session_timeout_s: s.session_timeout_s,
            },
        }
    }

    /// SQL Server side and trust: everything before the DAG.
    async fn prepare(&self) -> Result<(), PortError> {
        let s = self.spec().clone();
        self.tsql(SourceOp::EnsureMasterKey).await?;
        self.tsql(SourceOp::EnsureEndpointCertificate {
            name: s.source.certificate.clone(),
            subject: format!("Certificate for {}", s.source.certificate),
            expiry: s.source.certificate_expiry,
        })
        .await?;
        self.tsql(SourceOp::EnsureMirroringEndpoint {
            spec: crate::tsql::MirroringEndpointSpec {
                name: s.source.endpoint_name.clone(),
                port: s.source.endpoint_port,
                certificate: s.source.certificate.clone(),
                auth: crate::tsql::EndpointAuth::Certificate,
                encryption: crate::tsql::EndpointEncryption::Aes,
            },
        })
        .await?;
        let SourceReply::PublicKey(der) = self
            .tsql(SourceOp::ExportCertificatePublicKey {
                name: s.source.certificate.clone(),
            })
            .await?
        else {
            panic!("no public key");
        };
        self.arm(InstanceOp::PutServerTrustCertificate {
            name: s.source.certificate.clone(),
            public_blob: der,
        })
        .await?;
        let ArmReply::PublicKey(mi_der) =
            self.mi.begin(&InstanceOp::GetEndpointCertificate).await?
        else {
            panic!("no endpoint certificate");
        };
        self.tsql(SourceOp::ImportInstanceCertificate {
            fqdn: s.target.fqdn.clone(),
            der: mi_der,
        })
        .await?;
        self.tsql(SourceOp::EnsureRootCaTrust).await?;
        self.tsql(SourceOp::CreateAvailabilityGroup {
            spec: crate::tsql::CreateAgSpec {
                ag: s.source.ag.clone(),
                databases: s.databases.clone(),
                replica: s.source.server.clone(),
                endpoint_url: s.source.endpoint_url(),
                cluster_type_none: true,
            },
        })
        .await?;
        Ok(())
    }

    async fn create_link(&self) -> Result<(), PortError> {
        self.prepare().await?;
        self.tsql(self.dag_op()).await?;
        self.arm(self.put_link_op()).await
    }

    async fn wait_for(&self, timeout: Duration, pred: impl Fn(&World) -> bool) -> bool {
        let deadline = self.clock.now().plus(timeout);
        while self.clock.now() < deadline {
            if self.sim().with_world(&pred) {
                return true;
            }
            self.sleep(Duration::from_secs(5)).await;
        }
        self.sim().with_world(&pred)
    }

    fn phase_is_sync(&self, w: &World) -> bool {
        w.replications
            .get(&self.link())
            .and_then(|r| r.databases.get(&self.db()))
            .is_some_and(|d| matches!(d.phase, ReplicaPhase::Synchronizing))
    }

    async fn until_joined(&self) {
        let link = self.link();
        let db = self.db();
        let joined = self
            .wait_for(Duration::from_secs(3600), |w| {
                w.replications
                    .get(&link)
                    .and_then(|r| r.databases.get(&db))
                    .is_some_and(|d| matches!(d.phase, ReplicaPhase::Synchronizing))
            })
            .await;
        assert!(joined, "seeding did not finish: {:?}", self.sim().events());
    }

    async fn set_mode(&self, mode: AvailabilityMode) {
        let s = self.spec().clone();
        self.tsql(SourceOp::SetAvailabilityMode {
            dag: s.link.clone(),
            sql_ag: s.source.ag.clone(),
            mi_ag: s.target.ag.clone(),
            mode,
        })
        .await
        .unwrap();
        self.arm(InstanceOp::SetReplicationMode { link: s.link, mode })
            .await
            .unwrap();
    }

    async fn until_synchronized(&self) {
        let link = self.link();
        assert!(
            self.wait_for(Duration::from_secs(600), |w| w.is_synchronized(&link))
                .await
        );
    }

    fn workload(&self, target: Side, tps: f64) {
        self.sim().start_workload(WorkloadSpec {
            database: self.db(),
            target,
            transactions_per_second: tps,
            max_rows_per_transaction: 4,
        });
    }

    async fn mi_view(&self) -> crate::lifecycle::DatabaseView {
        let v = self.mi.link_state(&self.link()).await.unwrap();
        v.databases.into_iter().next().unwrap()
    }

    async fn sql_view(&self) -> crate::lifecycle::DatabaseView {
        let v = self
            .sql
            .link_state(&self.link(), &[self.db()])
            .await
            .unwrap();
        v.databases.into_iter().next().unwrap()
    }
}

fn code(e: &PortError) -> String {
    e.code()
}

#[test]
fn lab_names_are_valid_and_customer360_is_not_ready() {
    let lab = Lab::tailspin(1).unwrap();
    assert_eq!(lab.spec.link.as_str(), "DAG_ToyStore");
    assert_eq!(
        lab.spec.source.certificate.as_str(),
        "Cert_TailspinSql_endpoint"
    );
    assert_eq!(
        lab.spec.target.fqdn.as_str(),
        "tailspin-mi.abc123def456.database.windows.net"
    );
    assert_eq!(
        lab.spec.failover_mode,
        crate::lifecycle::FailoverMode::Manual
    );
    let c360 = lab
        .topology
        .source_database(&DatabaseName::new(Lab::CUSTOMER360).unwrap())
        .unwrap();
    assert_eq!(c360.recovery_model, RecoveryModel::Simple);
    assert!(c360.last_full_backup.is_none());
    assert!(c360.filestream && c360.log_files > 1);
    let toy = lab.topology.source_database(&lab.database).unwrap();
    assert_eq!(toy.recovery_model, RecoveryModel::Full);
    assert!(toy.last_full_backup.is_some());
    assert_eq!(lab.topology.source.version.to_string(), "16.0.4125.3");
}

#[tokio::test]
async fn lsns_advance_under_workload_and_the_clock_never_sleeps() {
    let rig = Rig::new(3);
    let db = rig.db();
    let before = rig.sim().snapshot(Side::SqlServer, &db).unwrap();
    let wall = std::time::Instant::now();
    rig.workload(Side::SqlServer, 20.0);
    rig.sleep(Duration::from_secs(3600)).await;
    let stats = rig.sim().stop_workload();
    let after = rig.sim().snapshot(Side::SqlServer, &db).unwrap();
    assert!(after.end_lsn > before.end_lsn);
    assert!(
        (60_000..85_000).contains(&stats.committed),
        "{}",
        stats.committed
    );
    let rows: u64 = after.tables.iter().map(|t| t.rows).sum::<u64>()
        - before.tables.iter().map(|t| t.rows).sum::<u64>();
    assert_eq!(rows, stats.rows);
    assert!(wall.elapsed() < Duration::from_secs(20));
    // Stopped: the LSN stays.
    rig.sleep(Duration::from_secs(60)).await;
    assert_eq!(
        rig.sim().snapshot(Side::SqlServer, &db).unwrap().end_lsn,
        after.end_lsn
    );
}

#[tokio::test]
async fn the_link_is_created_seeded_and_replicates_a_workload() {
    // The instance read through ARM alone (its view has no synchronization state).
    let rig = Rig::with(SimConfig {
        instance_tsql_reads: false,
        ..SimConfig::with_seed(5)
    });
    rig.create_link().await.unwrap();
    let mi = rig.mi.link_state(&rig.link()).await.unwrap();
    assert!(mi.exists);
    assert_eq!(mi.role, Some(ReplicaRole::Secondary));
    // Seeding reports progress, then the database joins.
    assert!(
        rig.wait_for(Duration::from_secs(300), |w| w
            .seeding(&rig.link(), &rig.db())
            .is_some_and(|(p, _)| p > 10))
            .await
    );
    let view = rig.mi_view().await;
    assert!(view.seeding_percent.is_some_and(|p| p > 10 && p < 100));
    // ARM reports no synchronization state; SQL Server's DMV does.
    assert_eq!(view.sync_state, None);
    assert_eq!(
        rig.sql_view().await.sync_state,
        Some(SyncState::NotSynchronizing)
    );
    assert_eq!(view.replica_state.as_deref(), Some("Seeding"));
    rig.until_joined().await;
    rig.workload(Side::SqlServer, 15.0);
    rig.sleep(Duration::from_secs(120)).await;
    let v = rig.mi_view().await;
    assert_eq!(v.sync_state, None);
    assert_eq!(
        rig.sql_view().await.partner.map(|p| p.sync_state),
        Some(SyncState::Synchronizing)
    );
    assert_eq!(v.replica_state.as_deref(), Some("LinkSynchronizing"));
    assert!(v.last_hardened_lsn.is_some());
    // Async primary's own row has no hardened LSN (facts §3.2).
    assert_eq!(rig.sql_view().await.last_hardened_lsn, None);
    rig.sim().stop_workload();
    rig.sleep(Duration::from_secs(5)).await;
    let parity = rig.sim().parity(&rig.db()).unwrap();
    assert!(parity.all_match(), "{parity:?}");
    assert!(
        rig.sim()
            .events()
            .iter()
            .any(|e| matches!(e.kind, EventKind::SeedingCompleted { .. }))
    );
}

#[tokio::test]
async fn seeding_runs_at_the_configured_rate() {
    let config = SimConfig {
        seeding_bytes_per_sec: 16 * 1024 * 1024,
        ..SimConfig::with_seed(8)
    };
    let rig = Rig::with(config);
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    let events = rig.sim().events();
    let started = events
        .iter()
        .find(|e| matches!(e.kind, EventKind::SeedingStarted { .. }))
        .unwrap()
        .at;
    let done = events
        .iter()
        .find(|e| matches!(e.kind, EventKind::SeedingCompleted { .. }))
        .unwrap()
        .at;
    // 2048 MB at 16 MB/s = 128 s (stepped at one second).
    let secs = done.since(started).as_secs_f64();
    assert!((127.0..=130.0).contains(&secs), "{secs}");
}

#[tokio::test]
async fn the_secondary_lags_by_bandwidth_and_latency() {
    let config = SimConfig {
        link_bandwidth_bytes_per_sec: 1000,
        link_latency: Duration::from_millis(500),
        ..SimConfig::with_seed(9)
    };
    let rig = Rig::with(config);
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    rig.sleep(Duration::from_secs(10)).await;
    let db = rig.db();
    let link = rig.link();
    let lsn = rig.sim().write(Side::SqlServer, &db, 2).unwrap();
    let bytes = rig
        .sim()
        .with_world(|w| w.lag(&link, &db).unwrap().unshipped_bytes);
    assert!((1200..=1600).contains(&bytes), "{bytes}");
    // bytes / 1000 B/s + 0.5 s: not there before 1.7 s, there after 2.2 s.
    rig.sleep(Duration::from_millis(1100)).await;
    let hardened = |rig: &Rig| {
        rig.sim()
            .with_world(|w| w.database(Side::ManagedInstance, &db).unwrap().end.lsn)
    };
    assert!(hardened(&rig) < lsn.value());
    rig.sleep(Duration::from_millis(1200)).await;
    assert_eq!(hardened(&rig), lsn.value());
    rig.arm_catches_up().await;
    assert_eq!(
        rig.mi_view().await.last_hardened_lsn.map(|l| l.value()),
        Some(lsn.value())
    );
}

#[tokio::test]
async fn a_partition_during_seeding_restarts_it_and_the_link_still_completes() {
    let rig = Rig::new(11);
    let db = rig.db();
    rig.sim().inject(
        Trigger::SeedingReaches {
            database: db.clone(),
            percent: 50,
        },
        Fault::Partition {
            duration: Duration::from_secs(90),
        },
    );
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    let events = rig.sim().events();
    assert!(events.iter().any(|e| matches!(
        e.kind,
        EventKind::SeedingInterrupted { percent, .. } if percent >= 50
    )));
    assert!(
        events
            .iter()
            .any(|e| matches!(e.kind, EventKind::SeedingStarted { attempt: 2, .. }))
    );
    assert!(rig.sim().parity(&db).unwrap().all_match());
}

#[tokio::test]
async fn a_log_backup_during_seeding_fails_the_link_with_1412_and_recreating_it_recovers() {
    let rig = Rig::new(12);
    let db = rig.db();
    rig.workload(Side::SqlServer, 5.0);
    rig.sim().inject(
        Trigger::SeedingReaches {
            database: db.clone(),
            percent: 40,
        },
        Fault::LogBackup {
            database: db.clone(),
        },
    );
    rig.create_link().await.unwrap();
    let link = rig.link();
    assert!(
        rig.wait_for(Duration::from_secs(900), |w| {
            w.replications
                .get(&link)
                .and_then(|r| r.databases.get(&db))
                .is_some_and(|d| matches!(d.phase, ReplicaPhase::Failed { code: 1412, .. }))
        })
        .await
    );
    rig.arm_catches_up().await;
    let view = rig.mi_view().await;
    let err = view.last_error.unwrap();
    assert!(err.starts_with("1412: "), "{err}");
    assert!(err.contains("12381"));
    // The link resource reports the database's replica state as the service does.
    assert_eq!(view.replica_state.as_deref(), Some("LinkCreationError"));
    assert_eq!(
        rig.sql_view().await.replica_state,
        None,
        "SQL Server has no replicaState"
    );
    // The documented recovery: delete the link, drop the DAG, create both again.
    rig.arm(InstanceOp::DeleteLink { link: link.clone() })
        .await
        .unwrap();
    rig.tsql(SourceOp::DropDistributedAvailabilityGroup { dag: link.clone() })
        .await
        .unwrap();
    assert!(
        !rig.sim()
            .with_world(|w| w.instance.databases.contains_key(&db)),
        "the half-seeded database is gone"
    );
    rig.tsql(rig.dag_op()).await.unwrap();
    rig.arm(rig.put_link_op()).await.unwrap();
    rig.until_joined().await;
    rig.sim().stop_workload();
    rig.sleep(Duration::from_secs(10)).await;
    assert!(rig.sim().parity(&db).unwrap().all_match());
}

#[tokio::test]
async fn trace_flag_12381_keeps_seeding_alive_through_a_log_backup() {
    let rig = Rig::new(12);
    let db = rig.db();
    rig.sim()
        .set_trace_flag(world::TF_HOLD_LOG_DURING_SEEDING, true);
    rig.workload(Side::SqlServer, 5.0);
    rig.sim().inject(
        Trigger::SeedingReaches {
            database: db.clone(),
            percent: 40,
        },
        Fault::LogBackup {
            database: db.clone(),
        },
    );
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    assert!(
        rig.sim()
            .events()
            .iter()
            .any(|e| matches!(e.kind, EventKind::LogBackup { .. }))
    );
}

#[tokio::test]
async fn failover_is_refused_in_async_mode_and_succeeds_when_synchronized() {
    let rig = Rig::new(13);
    let db = rig.db();
    let link = rig.link();
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    // Writes on the secondary instance are refused (readable secondary).
    let e = rig.sim().write(Side::ManagedInstance, &db, 1).unwrap_err();
    assert_eq!(code(&e), "sql:3906");
    let e = rig
        .tsql(SourceOp::Failover { dag: link.clone() })
        .await
        .unwrap_err();
    assert_eq!(code(&e), "sql:41142");
    assert!(e.message.contains("ASYNCHRONOUS_COMMIT"));
    // ARM planned failover accepts a SYNCHRONIZING secondary, but not disconnected ones.
    rig.sim().partition(Duration::from_secs(30));
    rig.sleep(Duration::from_secs(1)).await;
    let e = rig
        .mi
        .begin(&InstanceOp::Failover {
            link: link.clone(),
            failover_type: ArmFailoverType::Planned,
        })
        .await
        .unwrap_err();
    assert_eq!(
        code(&e),
        "arm:409:DistributedAvailabilityGroupFailoverSecondariesNotSynchronizing"
    );
    rig.sleep(Duration::from_secs(35)).await;
    rig.workload(Side::SqlServer, 10.0);
    rig.set_mode(AvailabilityMode::SynchronousCommit).await;
    rig.until_synchronized().await;
    assert_eq!(
        rig.sql_view().await.partner.map(|p| p.sync_state),
        Some(SyncState::Synchronized)
    );
    rig.sim().stop_workload();
    rig.sleep(Duration::from_secs(5)).await;
    let before = rig.sim().snapshot(Side::SqlServer, &db).unwrap();
    // Both sides report the same hardened LSN once the workload stops.
    assert_eq!(
        rig.sql_view().await.last_hardened_lsn,
        rig.mi_view().await.last_hardened_lsn
    );
    rig.tsql(SourceOp::Failover { dag: link.clone() })
        .await
        .unwrap();
    // Re-running the guarded batch after the failover changes nothing.
    rig.tsql(SourceOp::Failover { dag: link.clone() })
        .await
        .unwrap();
    rig.sim().with_world(|w| {
        assert_eq!(w.role(Side::SqlServer, &link), Some(ReplicaRole::Secondary));
        assert_eq!(
            w.role(Side::ManagedInstance, &link),
            Some(ReplicaRole::Primary)
        );
    });
    let after = rig.sim().snapshot(Side::ManagedInstance, &db).unwrap();
    assert!(ParityReport::compare(&before, &after).all_match());
    // Now SQL Server refuses writes and the instance takes them, and they replicate back.
    assert_eq!(
        code(&rig.sim().write(Side::SqlServer, &db, 1).unwrap_err()),
        "sql:976"
    );
    rig.sim().write(Side::ManagedInstance, &db, 3).unwrap();
    rig.sleep(Duration::from_secs(5)).await;
    assert!(rig.sim().parity(&db).unwrap().all_match());
}

#[tokio::test]
async fn arm_planned_failback_returns_the_primary_role_to_sql_server() {
    let rig = Rig::new(14);
    let link = rig.link();
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    rig.set_mode(AvailabilityMode::SynchronousCommit).await;
    rig.until_synchronized().await;
    rig.tsql(SourceOp::Failover { dag: link.clone() })
        .await
        .unwrap();
    rig.until_synchronized().await;
    rig.arm(InstanceOp::Failover {
        link: link.clone(),
        failover_type: ArmFailoverType::Planned,
    })
    .await
    .unwrap();
    assert_eq!(
        rig.sim().with_world(|w| w.primary_of(&link)),
        Some(Side::SqlServer)
    );
}

#[tokio::test]
async fn forced_failover_loses_exactly_the_unshipped_transactions() {
    let rig = Rig::new(15);
    let db = rig.db();
    let link = rig.link();
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    rig.sleep(Duration::from_secs(5)).await;
    rig.sim().partition(Duration::from_secs(600));
    rig.sleep(Duration::from_secs(2)).await;
    for _ in 0..7 {
        rig.sim().write(Side::SqlServer, &db, 2).unwrap();
    }
    rig.arm(InstanceOp::Failover {
        link: link.clone(),
        failover_type: ArmFailoverType::ForcedAllowDataLoss,
    })
    .await
    .unwrap();
    assert_eq!(rig.sim().lost_transactions(&db), 7);
    // Split brain: both sides are primary until one is demoted.
    rig.sim().with_world(|w| {
        assert_eq!(w.role(Side::SqlServer, &link), Some(ReplicaRole::Primary));
        assert_eq!(
            w.role(Side::ManagedInstance, &link),
            Some(ReplicaRole::Primary)
        );
    });
    rig.sim().write(Side::ManagedInstance, &db, 1).unwrap();
    rig.tsql(SourceOp::SetRoleSecondary { dag: link.clone() })
        .await
        .unwrap();
    rig.sleep(Duration::from_secs(700)).await;
    assert_eq!(
        rig.sim()
            .with_world(|w| w.stats.reverted_transactions.get(&db).copied()),
        Some(7)
    );
    assert!(rig.sim().parity(&db).unwrap().all_match());
}

#[tokio::test]
async fn forced_failover_is_refused_while_seeding() {
    let rig = Rig::new(16);
    rig.create_link().await.unwrap();
    assert!(
        rig.wait_for(Duration::from_secs(120), |w| w
            .seeding(&rig.link(), &rig.db())
            .is_some())
            .await
    );
    let e = rig
        .mi
        .begin(&InstanceOp::Failover {
            link: rig.link(),
            failover_type: ArmFailoverType::ForcedAllowDataLoss,
        })
        .await
        .unwrap_err();
    assert_eq!(
        code(&e),
        "arm:409:DistributedAvailabilityGroupSetRoleFailed"
    );
    // The instance's copy is restoring while it seeds.
    assert_eq!(
        code(
            &rig.sim()
                .write(Side::ManagedInstance, &rig.db(), 1)
                .unwrap_err()
        ),
        "sql:927"
    );
}

#[tokio::test]
async fn arm_operations_are_polled_with_retry_after_until_done() {
    let rig = Rig::new(17);
    rig.tsql(SourceOp::EnsureMasterKey).await.unwrap();
    let s = rig.spec().clone();
    rig.tsql(SourceOp::EnsureEndpointCertificate {
        name: s.source.certificate.clone(),
        subject: "s".into(),
        expiry: s.source.certificate_expiry,
    })
    .await
    .unwrap();
    let SourceReply::PublicKey(der) = rig
        .tsql(SourceOp::ExportCertificatePublicKey {
            name: s.source.certificate.clone(),
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    let op = InstanceOp::PutServerTrustCertificate {
        name: s.source.certificate.clone(),
        public_blob: der,
    };
    let ArmReply::Accepted(r) = rig.mi.begin(&op).await.unwrap() else {
        panic!("expected 202")
    };
    let prefix = "https://management.azure.com/subscriptions/5f1c6a2e-8d3b-4c7a-9e10-3b2d4f6a8c01/providers/Microsoft.Sql/locations/eastus/serverTrustCertificatesOperationResults/";
    assert!(r.url.starts_with(prefix), "{}", r.url);
    assert!(r.url.ends_with("?api-version=2025-01-01"));
    assert_eq!(r.url.len() - prefix.len() - 23, 36, "a GUID");
    assert_eq!(
        rig.mi.poll(&r).await.unwrap(),
        PollReply::Running {
            retry_after: Some(Duration::from_secs(10))
        }
    );
    rig.sleep(Duration::from_secs(60)).await;
    assert_eq!(rig.mi.poll(&r).await.unwrap(), PollReply::Succeeded);
    // Polling again (after a crash) gives the same answer; the same PUT is now 200.
    assert_eq!(rig.mi.poll(&r).await.unwrap(), PollReply::Succeeded);
    assert_eq!(rig.mi.begin(&op).await.unwrap(), ArmReply::Completed);
    let bogus = OperationRef {
        url: "https://management.azure.com/x/distributedAvailabilityGroupsOperationResults/nope?api-version=2025-01-01".into(),
        kind: crate::lifecycle::OperationKind::Location,
        resource: None,
    };
    assert_eq!(
        code(&rig.mi.poll(&bogus).await.unwrap_err()),
        "arm:404:ResourceNotFound"
    );
}

#[tokio::test]
async fn injected_429_5xx_and_409_are_transient_and_the_retry_succeeds() {
    let rig = Rig::new(18);
    let put = Call::Instance(InstanceCall::PutLink);
    rig.sim().inject(
        Trigger::OnCall { call: put, nth: 1 },
        Fault::Throttle {
            retry_after: Duration::from_secs(17),
        },
    );
    rig.sim().inject(
        Trigger::OnCall { call: put, nth: 2 },
        Fault::ServerError { status: 503 },
    );
    rig.sim()
        .inject(Trigger::OnCall { call: put, nth: 3 }, Fault::Busy);
    rig.sim().inject(
        Trigger::OnCall {
            call: Call::Source(SourceCall::EnsureRootCaTrust),
            nth: 1,
        },
        Fault::ConnectionDrop,
    );
    let e = rig.prepare().await.unwrap_err();
    assert_eq!(code(&e), "io");
    assert!(e.transient);
    rig.prepare().await.unwrap();
    rig.tsql(rig.dag_op()).await.unwrap();
    let op = rig.put_link_op();
    let e = rig.mi.begin(&op).await.unwrap_err();
    assert_eq!(code(&e), "arm:429:SubscriptionTooManyRequests");
    assert!(e.transient);
    assert_eq!(e.retry_after, Some(Duration::from_secs(17)));
    let e = rig.mi.begin(&op).await.unwrap_err();
    assert_eq!(code(&e), "arm:503:TooManyRequests");
    assert!(e.transient);
    let e = rig.mi.begin(&op).await.unwrap_err();
    assert_eq!(code(&e), "arm:409:ManagedInstanceIsBusy");
    assert!(e.transient && e.is_busy());
    assert_eq!(e.retry_after, Some(Duration::from_secs(10)));
    rig.arm(op).await.unwrap();
    rig.until_joined().await;
    assert_eq!(rig.sim().with_world(|w| w.stats.faults_fired), 4);
}

#[tokio::test]
async fn a_link_put_sent_again_while_the_first_runs_is_409_with_retry_after() {
    let rig = Rig::new(23);
    rig.prepare().await.unwrap();
    rig.tsql(rig.dag_op()).await.unwrap();
    let op = rig.put_link_op();
    let ArmReply::Accepted(first) = rig.mi.begin(&op).await.unwrap() else {
        panic!("expected 202")
    };
    // The process lost the operation URL and sends the same PUT again.
    let e = rig.mi.begin(&op).await.unwrap_err();
    assert_eq!(code(&e), "arm:409:ConflictingServerOperation");
    assert!(e.transient && e.is_busy());
    assert_eq!(e.retry_after, Some(Duration::from_secs(10)));
    // Once the first one finished, the same PUT is accepted as already done.
    rig.sleep(Duration::from_secs(240)).await;
    assert_eq!(rig.mi.poll(&first).await.unwrap(), PollReply::Succeeded);
    assert_eq!(rig.mi.begin(&op).await.unwrap(), ArmReply::Completed);
}

#[tokio::test]
async fn a_lost_response_still_applies_the_call() {
    let rig = Rig::new(19);
    rig.sim().inject(
        Trigger::OnCall {
            call: Call::Source(SourceCall::EnsureMasterKey),
            nth: 1,
        },
        Fault::LostResponse,
    );
    let e = rig.tsql(SourceOp::EnsureMasterKey).await.unwrap_err();
    assert_eq!(code(&e), "timeout");
    assert!(rig.sim().with_world(|w| w.source.master_key));
    assert_eq!(
        rig.tsql(SourceOp::EnsureMasterKey).await.unwrap(),
        SourceReply::Done
    );
}

#[tokio::test]
async fn the_first_full_backup_appears_after_promotion() {
    let config = SimConfig {
        backups_while_secondary: false,
        ..SimConfig::with_seed(20)
    };
    let rig = Rig::with(config);
    let db = rig.db();
    let link = rig.link();
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    rig.sleep(Duration::from_secs(3600)).await;
    let none = rig
        .mi
        .full_backups(std::slice::from_ref(&db))
        .await
        .unwrap();
    assert_eq!(none[0].finished, None);
    rig.set_mode(AvailabilityMode::SynchronousCommit).await;
    rig.until_synchronized().await;
    rig.tsql(SourceOp::Failover { dag: link.clone() })
        .await
        .unwrap();
    let promoted = rig.clock.now();
    rig.sleep(Duration::from_secs(60)).await;
    assert_eq!(
        rig.mi
            .full_backups(std::slice::from_ref(&db))
            .await
            .unwrap()[0]
            .finished,
        None
    );
    rig.sleep(Duration::from_secs(13 * 60)).await;
    let first = rig
        .mi
        .full_backups(std::slice::from_ref(&db))
        .await
        .unwrap()[0]
        .finished
        .unwrap();
    let after = first.since(promoted);
    assert!(
        after >= Duration::from_secs(4 * 60) && after <= Duration::from_secs(12 * 60 + 10),
        "{after:?}"
    );
}

#[tokio::test]
async fn with_backups_of_secondaries_the_instance_backs_up_after_seeding() {
    let rig = Rig::new(21);
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    rig.sleep(Duration::from_secs(30 * 60)).await;
    let b = rig.mi.full_backups(&[rig.db()]).await.unwrap();
    assert!(b[0].finished.is_some());
    assert!(
        rig.sim()
            .with_world(|w| w.instance.backups.iter().any(|b| b.kind == BackupKind::Log))
    );
}

#[tokio::test]
async fn parity_detects_a_missing_row() {
    let rig = Rig::new(22);
    let db = rig.db();
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    rig.sleep(Duration::from_secs(5)).await;
    assert!(rig.sim().parity(&db).unwrap().all_match());
    rig.sim().write(Side::SqlServer, &db, 1).unwrap();
    let p = rig.sim().parity(&db).unwrap();
    assert!(!p.all_match(), "not shipped yet");
    assert_eq!(p.tables.iter().filter(|t| !t.matches()).count(), 1);
    rig.sleep(Duration::from_secs(2)).await;
    assert!(rig.sim().parity(&db).unwrap().all_match());
    // Lose one row on the instance behind the link's back.
    rig.sim().with_world_mut(|w| {
        let t = &mut w.instance.databases.get_mut(&db).unwrap().data.tables[0];
        t.rows -= 1;
        t.checksum = t.checksum.wrapping_sub(12345);
    });
    let p = rig.sim().parity(&db).unwrap();
    assert!(!p.tables[0].matches());
    assert_eq!(p.tables[0].expected_rows, p.tables[0].actual_rows + 1);
}

#[tokio::test]
async fn put_link_fails_with_the_documented_link_errors() {
    // No server trust certificate on the instance: 41973.
    let rig = Rig::new(23);
    rig.prepare().await.unwrap();
    rig.tsql(rig.dag_op()).await.unwrap();
    rig.sim()
        .with_world_mut(|w| w.instance.trust_certificates.clear());
    let e = rig.arm(rig.put_link_op()).await.unwrap_err();
    assert_eq!(code(&e), "sql:41973");
    assert!(
        e.message
            .contains("ManagedInstanceLinkCertificateNotFoundOnManagedInstance")
    );

    // The instance's certificate missing on SQL Server: 41974.
    let rig = Rig::new(23);
    rig.prepare().await.unwrap();
    rig.tsql(rig.dag_op()).await.unwrap();
    let fqdn = rig.spec().target.fqdn.as_str().to_string();
    rig.sim().with_world_mut(|w| {
        w.source.certificates.remove(&fqdn);
    });
    assert_eq!(
        code(&rig.arm(rig.put_link_op()).await.unwrap_err()),
        "sql:41974"
    );

    // No DAG on SQL Server: 41976.
    let rig = Rig::new(23);
    rig.prepare().await.unwrap();
    assert_eq!(
        code(&rig.arm(rig.put_link_op()).await.unwrap_err()),
        "sql:41976"
    );

    // Network closed: 41962 after five minutes.
    let rig = Rig::with(SimConfig {
        network_reachable: false,
        ..SimConfig::with_seed(23)
    });
    rig.prepare().await.unwrap();
    rig.tsql(rig.dag_op()).await.unwrap();
    let t0 = rig.clock.now();
    let e = rig.arm(rig.put_link_op()).await.unwrap_err();
    assert_eq!(code(&e), "sql:41962");
    assert!(rig.clock.now().since(t0) >= Duration::from_secs(300));

    // Names that do not match SQL Server's DAG: 41976; AG names equal: 400.
    let rig = Rig::new(23);
    rig.prepare().await.unwrap();
    rig.tsql(rig.dag_op()).await.unwrap();
    let mut op = rig.put_link_op();
    if let InstanceOp::PutLink { properties, .. } = &mut op {
        properties.instance_ag = AgName::new("Other").unwrap();
    }
    assert_eq!(code(&rig.arm(op.clone()).await.unwrap_err()), "sql:41976");
    if let InstanceOp::PutLink { properties, .. } = &mut op {
        properties.instance_ag = properties.partner_ag.clone();
    }
    assert_eq!(
        code(&rig.mi.begin(&op).await.unwrap_err()),
        "arm:400:InstanceAvailabilityGroupNamePartnerAvailabilityGroupNameMatch"
    );
}

#[tokio::test]
async fn sql_server_refuses_what_it_refuses() {
    let rig = Rig::new(24);
    let s = rig.spec().clone();
    let cert = SourceOp::EnsureEndpointCertificate {
        name: s.source.certificate.clone(),
        subject: "x".into(),
        expiry: s.source.certificate_expiry,
    };
    assert_eq!(
        code(&rig.tsql(cert.clone()).await.unwrap_err()),
        "sql:15581"
    );
    let endpoint = SourceOp::EnsureMirroringEndpoint {
        spec: crate::tsql::MirroringEndpointSpec {
            name: s.source.endpoint_name.clone(),
            port: crate::names::TcpPort::MIRRORING_DEFAULT,
            certificate: s.source.certificate.clone(),
            auth: crate::tsql::EndpointAuth::Certificate,
            encryption: crate::tsql::EndpointEncryption::Aes,
        },
    };
    assert_eq!(
        code(&rig.tsql(endpoint.clone()).await.unwrap_err()),
        "sql:15151"
    );
    rig.tsql(SourceOp::EnsureMasterKey).await.unwrap();
    rig.tsql(cert.clone()).await.unwrap();
    rig.tsql(cert).await.unwrap();
    rig.tsql(endpoint.clone()).await.unwrap();
    rig.tsql(endpoint).await.unwrap();
    let other = SourceOp::EnsureMirroringEndpoint {
        spec: crate::tsql::MirroringEndpointSpec {
            name: crate::names::EndpointName::new("Hadr_endpoint").unwrap(),
            port: crate::names::TcpPort::MIRRORING_DEFAULT,
            certificate: s.source.certificate.clone(),
            auth: crate::tsql::EndpointAuth::Certificate,
            encryption: crate::tsql::EndpointEncryption::Aes,
        },
    };
    assert_eq!(code(&rig.tsql(other).await.unwrap_err()), "sql:7862");
    let c360 = DatabaseName::new(Lab::CUSTOMER360).unwrap();
    let ag = |db: DatabaseName| SourceOp::CreateAvailabilityGroup {
        spec: crate::tsql::CreateAgSpec {
            ag: AgName::new(format!("AG_{db}")).unwrap(),
            databases: vec![db],
            replica: s.source.server.clone(),
            endpoint_url: s.source.endpoint_url(),
            cluster_type_none: true,
        },
    };
    assert_eq!(
        code(&rig.tsql(ag(c360.clone())).await.unwrap_err()),
        "sql:1465"
    );
    rig.sim().with_world_mut(|w| {
        w.source
            .databases
            .get_mut(&c360)
            .unwrap()
            .facts
            .recovery_model = RecoveryModel::Full
    });
    assert_eq!(code(&rig.tsql(ag(c360)).await.unwrap_err()), "sql:1475");
    rig.tsql(ag(rig.db())).await.unwrap();
    rig.tsql(rig.dag_op()).await.unwrap();
    let e = rig
        .tsql(SourceOp::DropAvailabilityGroup {
            ag: s.source.ag.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(code(&e), "sql:41190");
    rig.sim().with_world_mut(|w| w.source.hadr_enabled = false);
    rig.sim().with_world_mut(|w| w.source.ags.clear());
    assert_eq!(
        code(&rig.tsql(ag(rig.db())).await.unwrap_err()),
        "sql:35221"
    );
    // A build without the link has no sp_certificate_add_issuer.
    rig.sim()
        .with_world_mut(|w| w.source.version = crate::names::SqlVersion::new(15, 0, 4000, 1));
    assert_eq!(
        code(&rig.tsql(SourceOp::EnsureRootCaTrust).await.unwrap_err()),
        "sql:2812"
    );
}

#[tokio::test]
async fn tsql_failover_needs_cu13() {
    let rig = Rig::new(25);
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    rig.set_mode(AvailabilityMode::SynchronousCommit).await;
    rig.until_synchronized().await;
    rig.sim()
        .with_world_mut(|w| w.source.version = crate::names::SqlVersion::new(16, 0, 4095, 4));
    let e = rig
        .tsql(SourceOp::Failover { dag: rig.link() })
        .await
        .unwrap_err();
    assert_eq!(code(&e), "sql:41142");
    assert!(e.message.contains("CU13"));
}

#[tokio::test]
async fn deleting_the_link_leaves_an_independent_writable_database() {
    let rig = Rig::new(26);
    let db = rig.db();
    let link = rig.link();
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    rig.arm(InstanceOp::DeleteLink { link: link.clone() })
        .await
        .unwrap();
    assert!(!rig.mi.link_state(&link).await.unwrap().exists);
    rig.sim().write(Side::ManagedInstance, &db, 1).unwrap();
    // Deleting again is a no-op.
    assert_eq!(
        rig.mi
            .begin(&InstanceOp::DeleteLink { link: link.clone() })
            .await
            .unwrap(),
        ArmReply::Completed
    );
    // SQL Server is still primary and writable; its DAG stays until dropped.
    rig.sim().write(Side::SqlServer, &db, 1).unwrap();
    let v = rig
        .sql
        .link_state(&link, std::slice::from_ref(&db))
        .await
        .unwrap();
    assert!(v.exists && !v.connected);
    rig.tsql(SourceOp::DropDistributedAvailabilityGroup { dag: link.clone() })
        .await
        .unwrap();
    rig.tsql(SourceOp::DropAvailabilityGroup {
        ag: rig.spec().source.ag.clone(),
    })
    .await
    .unwrap();
    rig.sim().write(Side::SqlServer, &db, 1).unwrap();
    assert_eq!(
        rig.sim().with_world(|w| w.source.databases[&db].state),
        DbState::Online
    );
}

#[tokio::test]
async fn an_expired_endpoint_certificate_disconnects_the_link() {
    let rig = Rig::new(27);
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    let cert = rig.spec().source.certificate.as_str().to_string();
    rig.sim().with_world_mut(|w| {
        w.source.certificates.get_mut(&cert).unwrap().expiry =
            Some(crate::time::Date::new(2026, 1, 1).unwrap());
    });
    rig.sleep(Duration::from_secs(2)).await;
    rig.arm_catches_up().await;
    let v = rig.mi.link_state(&rig.link()).await.unwrap();
    assert!(!v.connected);
    assert!(
        v.databases[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("expired")
    );
    assert!(
        rig.sim()
            .with_world(|w| !rig.phase_is_sync(w) || !w.is_synchronized(&rig.link()))
    );
}

#[tokio::test]
async fn set_role_rules_follow_the_spec() {
    let rig = Rig::new(28);
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    let link = rig.link();
    let e = rig
        .mi
        .begin(&InstanceOp::SetRole {
            link: link.clone(),
            role: Side::SqlServer,
            change: RoleChangeType::Planned,
        })
        .await
        .unwrap_err();
    assert_eq!(
        code(&e),
        "arm:409:DistributedAvailabilityGroupSetRoleInstanceAlreadyInRequestedRole"
    );
    let e = rig
        .mi
        .begin(&InstanceOp::SetRole {
            link: link.clone(),
            role: Side::ManagedInstance,
            change: RoleChangeType::Planned,
        })
        .await
        .unwrap_err();
    assert_eq!(
        code(&e),
        "arm:409:DistributedAvailabilityGroupSetRolePrimaryPlannedNotSupported"
    );
    let strict = Rig::with(SimConfig {
        arm_planned_failover_requires_primary: true,
        ..SimConfig::with_seed(28)
    });
    strict.create_link().await.unwrap();
    strict.until_joined().await;
    strict.set_mode(AvailabilityMode::SynchronousCommit).await;
    strict.until_synchronized().await;
    let e = strict
        .mi
        .begin(&InstanceOp::Failover {
            link: strict.link(),
            failover_type: ArmFailoverType::Planned,
        })
        .await
        .unwrap_err();
    assert_eq!(
        code(&e),
        "arm:400:InvalidDistributedAvailabilityGroupFailoverInstanceRole"
    );
}

async fn scripted_run(seed: u64) -> (String, Vec<SimEvent>) {
    let rig = Rig::new(seed);
    rig.workload(Side::SqlServer, 12.0);
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    rig.sleep(Duration::from_secs(60)).await;
    rig.sim().stop_workload();
    let snap = rig
        .sim()
        .snapshot(Side::ManagedInstance, &rig.db())
        .unwrap();
    (serde_json::to_string(&snap).unwrap(), rig.sim().events())
}

#[tokio::test]
async fn the_same_seed_gives_the_same_run() {
    let a = scripted_run(31).await;
    let b = scripted_run(31).await;
    let c = scripted_run(32).await;
    assert_eq!(a, b);
    assert_ne!(a.0, c.0);
}

#[tokio::test]
async fn a_world_survives_a_json_round_trip_and_continues_identically() {
    let rig = Rig::new(33);
    rig.workload(Side::SqlServer, 10.0);
    rig.create_link().await.unwrap();
    rig.sleep(Duration::from_secs(30)).await;
    let json = rig.sim().to_json().unwrap();
    let copy = Sim::from_world(World::from_json(&json).unwrap());
    assert_eq!(copy.to_json().unwrap(), json);
    rig.sim().advance(Duration::from_secs(600));
    copy.advance(Duration::from_secs(600));
    assert_eq!(copy.to_json().unwrap(), rig.sim().to_json().unwrap());
}

#[tokio::test]
async fn hours_of_replicated_workload_keep_the_logs_small() {
    let rig = Rig::new(34);
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    rig.workload(Side::SqlServer, 20.0);
    let wall = std::time::Instant::now();
    rig.sleep(Duration::from_secs(2 * 3600)).await;
    let stats = rig.sim().stop_workload();
    rig.sleep(Duration::from_secs(5)).await;
    assert!(stats.committed > 130_000, "{}", stats.committed);
    let (src_log, mi_log) = rig.sim().with_world(|w| {
        (
            w.database(Side::SqlServer, &rig.db()).unwrap().log.len(),
            w.database(Side::ManagedInstance, &rig.db())
                .unwrap()
                .log
                .len(),
        )
    });
    assert!(src_log <= 8192 && mi_log <= 8192, "{src_log} {mi_log}");
    assert!(rig.sim().parity(&rig.db()).unwrap().all_match());
    assert!(wall.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn the_application_shows_as_a_client_session_where_it_runs() {
    let rig = Rig::new(4);
    let db = rig.db();
    let dbs = [db.clone()];
    assert!(rig.sql.workload_activity(&dbs).await.unwrap().is_quiet());
    rig.workload(Side::SqlServer, 5.0);
    let on_sql = rig.sql.workload_activity(&dbs).await.unwrap();
    assert_eq!(on_sql.sessions.len(), 1);
    assert_eq!(on_sql.sessions[0].program.as_deref(), Some("Tailspin.Web"));
    assert!(rig.mi.workload_activity(&dbs).await.unwrap().is_quiet());
    // Another database is not the application's.
    let other = [crate::names::DatabaseName::new("Customer360").unwrap()];
    assert!(rig.sql.workload_activity(&other).await.unwrap().is_quiet());
    rig.sim().redirect_workload(Side::ManagedInstance);
    assert!(rig.sql.workload_activity(&dbs).await.unwrap().is_quiet());
    assert!(!rig.mi.workload_activity(&dbs).await.unwrap().is_quiet());
    rig.sim().stop_workload();
    assert!(rig.mi.workload_activity(&dbs).await.unwrap().is_quiet());
}

mod link_databases;
mod loss;
