//! Acknowledgement, data loss by the data, ARM's lagging view, per-replica modes, open
//! transactions, system log, the fence and REVERTING.

use std::time::Duration;

use super::super::world::EventKind;
use super::super::*;
use super::{Rig, code};
use crate::lifecycle::{
    ArmFailoverType, AvailabilityMode, InstanceOp, ReplicaRole, SourceOp, SyncHealth, SyncState,
};
use crate::ports::{ManagedInstance, SourceServer};
use crate::time::{Clock, Timer};

fn slow_link(seed: u64, bytes_per_sec: u64) -> SimConfig {
    SimConfig {
        link_bandwidth_bytes_per_sec: bytes_per_sec,
        ..SimConfig::with_seed(seed)
    }
}

fn status(rig: &Rig, id: u64) -> Option<CommitStatus> {
    rig.sim().commit_status(id)
}

fn instance_holds(rig: &Rig, id: u64) -> bool {
    rig.sim().with_world(|w| {
        w.database(Side::ManagedInstance, &rig.db())
            .is_some_and(|d| d.holds(id))
    })
}

fn lost_rows(rig: &Rig) -> u64 {
    rig.sim()
        .with_world(|w| w.stats.lost_rows.get(&rig.db()).copied().unwrap_or(0))
}

#[tokio::test]
async fn a_synchronous_commit_waits_for_the_secondary_until_the_session_timeout() {
    let rig = Rig::new(41);
    let db = rig.db();
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    // Asynchronous commit: acknowledged at once.
    let c = rig.sim().commit(Side::SqlServer, &db, 2).unwrap();
    assert_eq!(c.status, CommitStatus::Acknowledged);
    rig.set_mode(AvailabilityMode::SynchronousCommit).await;
    rig.until_synchronized().await;
    // Synchronous commit with a SYNCHRONIZED secondary: held until the secondary hardens it.
    let c = rig.sim().commit(Side::SqlServer, &db, 2).unwrap();
    assert_eq!(c.status, CommitStatus::Awaiting);
    assert!(!instance_holds(&rig, c.id));
    assert_eq!(rig.sim().workload_stats().awaiting_acknowledgement, 1);
    rig.sleep(Duration::from_millis(200)).await;
    assert!(instance_holds(&rig, c.id));
    assert_eq!(status(&rig, c.id), Some(CommitStatus::Acknowledged));
    assert_eq!(rig.sim().workload_stats().awaiting_acknowledgement, 0);
    // A partition: the commit waits SESSION_TIMEOUT (20 s), then SQL Server stops waiting for the
    // secondary and acknowledges it.
    rig.sim().partition(Duration::from_secs(120));
    let held = rig.sim().commit(Side::SqlServer, &db, 1).unwrap();
    assert_eq!(held.status, CommitStatus::Awaiting);
    rig.sleep(Duration::from_secs(10)).await;
    let also_held = rig.sim().commit(Side::SqlServer, &db, 1).unwrap();
    assert_eq!(also_held.status, CommitStatus::Awaiting);
    rig.sleep(Duration::from_secs(9)).await;
    assert_eq!(status(&rig, held.id), Some(CommitStatus::Awaiting));
    rig.sleep(Duration::from_secs(2)).await;
    // Every waiting commit is released at that moment, the younger one too.
    assert_eq!(status(&rig, held.id), Some(CommitStatus::Acknowledged));
    assert_eq!(status(&rig, also_held.id), Some(CommitStatus::Acknowledged));
    assert!(!instance_holds(&rig, held.id));
    assert!(
        rig.sim()
            .events()
            .iter()
            .any(|e| matches!(e.kind, EventKind::ReplicaFellOutOfSync { released: 2, .. }))
    );
    // Out of sync: later commits are acknowledged at once.
    let next = rig.sim().commit(Side::SqlServer, &db, 1).unwrap();
    assert_eq!(next.status, CommitStatus::Acknowledged);
    // Healed and caught up, the secondary is SYNCHRONIZED again and commits wait again.
    rig.until_synchronized().await;
    assert!(instance_holds(&rig, held.id));
    let again = rig.sim().commit(Side::SqlServer, &db, 1).unwrap();
    assert_eq!(again.status, CommitStatus::Awaiting);
    let stats = rig.sim().workload_stats();
    assert_eq!(
        (stats.awaiting_acknowledgement, stats.unacknowledged),
        (1, 0)
    );
    assert_eq!(rig.sim().lost_transactions(&db), 0);
}

#[tokio::test]
async fn an_arm_planned_failover_with_a_small_queue_loses_exactly_the_unshipped_transactions() {
    let mut config = slow_link(42, 50);
    config.arm.failover = DurationRange::fixed(Duration::from_secs(40));
    config.revert_duration = Duration::from_secs(600);
    let rig = Rig::with(config);
    let db = rig.db();
    let link = rig.link();
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    rig.sleep(Duration::from_secs(5)).await;
    let written: Vec<Committed> = (0..3)
        .map(|_| rig.sim().commit(Side::SqlServer, &db, 2).unwrap())
        .collect();
    // A few KB in the send queue: accepted.
    rig.arm(InstanceOp::Failover {
        link: link.clone(),
        failover_type: ArmFailoverType::Planned,
    })
    .await
    .unwrap();
    assert_eq!(
        rig.sim().with_world(|w| w.primary_of(&link)),
        Some(Side::ManagedInstance)
    );
    // The roles swapped with what the instance had hardened: at 50 B/s it received the first
    // transaction at most; the rest is lost, counted by the data.
    let unshipped: Vec<&Committed> = written
        .iter()
        .filter(|c| !instance_holds(&rig, c.id))
        .collect();
    assert!(unshipped.len() >= 2, "{unshipped:?}");
    let n = unshipped.len() as u64;
    assert_eq!(rig.sim().lost_transactions(&db), n);
    assert_eq!(lost_rows(&rig), 2 * n);
    // Asynchronous commit: the application had been told each of them committed.
    assert_eq!(rig.sim().lost_acknowledged_transactions(&db), n);
    // SQL Server still holds them until it reverts.
    assert_eq!(
        rig.sim()
            .missing_transactions(&db, Side::SqlServer, Side::ManagedInstance),
        (n, 2 * n)
    );
    assert!(rig.sim().events().iter().any(|e| matches!(
        e.kind,
        EventKind::TransactionsLost { transactions, .. } if transactions == n
    )));
    rig.sleep(Duration::from_secs(700)).await;
    assert_eq!(
        rig.sim()
            .missing_transactions(&db, Side::SqlServer, Side::ManagedInstance),
        (0, 0)
    );
    assert!(rig.sim().parity(&db).unwrap().all_match());
    assert_eq!(rig.sim().lost_transactions(&db), n, "counted once");
}

#[tokio::test]
async fn an_arm_planned_failover_refuses_a_large_send_queue_and_disconnected_replicas() {
    let rig = Rig::with(slow_link(43, 50));
    let db = rig.db();
    let link = rig.link();
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    for _ in 0..60 {
        rig.sim().write(Side::SqlServer, &db, 2).unwrap();
    }
    let planned = InstanceOp::Failover {
        link: link.clone(),
        failover_type: ArmFailoverType::Planned,
    };
    let e = rig.mi.begin(&planned).await.unwrap_err();
    assert_eq!(
        code(&e),
        "arm:409:DistributedAvailabilityGroupFailoverLogSendQueueSizeTooBig"
    );
    // A higher limit accepts the same queue; a partition refuses it again.
    rig.sim()
        .with_world_mut(|w| w.config.arm_planned_failover_max_send_queue_kb = 1024);
    rig.sim().partition(Duration::from_secs(60));
    rig.sleep(Duration::from_secs(1)).await;
    let e = rig.mi.begin(&planned).await.unwrap_err();
    assert_eq!(
        code(&e),
        "arm:409:DistributedAvailabilityGroupFailoverSecondariesNotSynchronizing"
    );
    rig.sleep(Duration::from_secs(60)).await;
    rig.arm(planned).await.unwrap();
    assert!(rig.sim().lost_transactions(&db) > 50);
}

#[tokio::test]
async fn tsql_failover_is_refused_until_every_database_is_synchronized() {
    let mut config = slow_link(44, 500);
    config.arm.set_replication_mode = DurationRange::fixed(Duration::from_secs(5));
    let rig = Rig::with(config);
    let db = rig.db();
    let link = rig.link();
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    for _ in 0..20 {
        rig.sim().write(Side::SqlServer, &db, 2).unwrap();
    }
    // SQL Server's catalog in synchronous commit, the instance still Async: not synchronous.
    let s = rig.spec().clone();
    rig.tsql(SourceOp::SetAvailabilityMode {
        dag: link.clone(),
        sql_ag: s.source.ag.clone(),
        mi_ag: s.target.ag.clone(),
        mode: AvailabilityMode::SynchronousCommit,
    })
    .await
    .unwrap();
    let e = rig
        .tsql(SourceOp::Failover { dag: link.clone() })
        .await
        .unwrap_err();
    assert_eq!(code(&e), "sql:41142");
    assert!(e.message.contains("replicationMode Async"), "{}", e.message);
    rig.arm(InstanceOp::SetReplicationMode {
        link: link.clone(),
        mode: AvailabilityMode::SynchronousCommit,
    })
    .await
    .unwrap();
    // Synchronous now, but the secondary is still catching up: SYNCHRONIZING.
    let partner = rig.sql_view().await.partner.unwrap();
    assert_eq!(partner.sync_state, SyncState::Synchronizing);
    assert_eq!(rig.sql_view().await.health, SyncHealth::PartiallyHealthy);
    let e = rig
        .tsql(SourceOp::Failover { dag: link.clone() })
        .await
        .unwrap_err();
    assert_eq!(code(&e), "sql:41142");
    assert!(e.message.contains("not SYNCHRONIZED"), "{}", e.message);
    rig.sim().with_world(|w| {
        assert_eq!(w.role(Side::SqlServer, &link), Some(ReplicaRole::Primary));
    });
    // SYNCHRONIZED: the failover runs and loses nothing.
    rig.until_synchronized().await;
    rig.tsql(SourceOp::Failover { dag: link.clone() })
        .await
        .unwrap();
    assert_eq!(
        rig.sim().with_world(|w| w.primary_of(&link)),
        Some(Side::ManagedInstance)
    );
    assert_eq!(rig.sim().lost_transactions(&db), 0);
    assert!(rig.sim().parity(&db).unwrap().all_match());
}

#[tokio::test]
async fn a_delete_while_sql_server_is_primary_loses_its_tail_and_every_later_commit() {
    let mut config = slow_link(45, 20);
    config.arm.delete_link = DurationRange::fixed(Duration::from_secs(30));
    let rig = Rig::with(config);
    let db = rig.db();
    let link = rig.link();
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    rig.sleep(Duration::from_secs(5)).await;
    rig.sim().write(Side::SqlServer, &db, 2).unwrap();
    rig.sim().write(Side::SqlServer, &db, 3).unwrap();
    // One-way cutover without waiting for the LSNs: the instance's copy becomes the database.
    rig.arm(InstanceOp::DeleteLink { link: link.clone() })
        .await
        .unwrap();
    assert_eq!(rig.sim().lost_transactions(&db), 2);
    assert_eq!(lost_rows(&rig), 5);
    assert_eq!(
        rig.sim()
            .missing_transactions(&db, Side::SqlServer, Side::ManagedInstance),
        (2, 5)
    );
    // SQL Server is still primary of its DAG and takes the application's writes: a 4-row
    // transaction 2.9 s later can never reach the instance.
    rig.sleep(Duration::from_millis(2900)).await;
    let late = rig.sim().commit(Side::SqlServer, &db, 4).unwrap();
    assert_eq!(late.status, CommitStatus::Acknowledged);
    assert_eq!(rig.sim().lost_transactions(&db), 3);
    assert_eq!(lost_rows(&rig), 9);
    assert_eq!(rig.sim().lost_acknowledged_transactions(&db), 3);
    assert!(rig.sim().events().iter().any(|e| matches!(
        e.kind,
        EventKind::TransactionsLost {
            transactions: 1,
            rows: 4,
            ..
        }
    )));
    // The instance's database is independent and writable; nothing there is lost.
    rig.sim().write(Side::ManagedInstance, &db, 1).unwrap();
    // Once SQL Server drops the DAG its database is no longer the link's.
    rig.tsql(SourceOp::DropDistributedAvailabilityGroup { dag: link.clone() })
        .await
        .unwrap();
    rig.sim().write(Side::SqlServer, &db, 1).unwrap();
    assert_eq!(rig.sim().lost_transactions(&db), 3);
}

#[tokio::test]
async fn a_dag_dropped_by_a_primary_sql_server_loses_what_the_instance_lacks() {
    let rig = Rig::with(slow_link(46, 20));
    let db = rig.db();
    let link = rig.link();
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    rig.sleep(Duration::from_secs(5)).await;
    rig.sim().write(Side::SqlServer, &db, 2).unwrap();
    rig.tsql(SourceOp::DropDistributedAvailabilityGroup { dag: link.clone() })
        .await
        .unwrap();
    assert_eq!(rig.sim().lost_transactions(&db), 1);
    // The DELETE that follows does not count it again.
    rig.arm(InstanceOp::DeleteLink { link }).await.unwrap();
    assert_eq!(rig.sim().lost_transactions(&db), 1);
}

#[tokio::test]
async fn arm_readings_lag_by_the_configured_delay() {
    let config = SimConfig {
        arm_reading_lag: Duration::from_secs(5),
        // ARM alone, as a port without the instance's endpoint reads.
        instance_tsql_reads: false,
        ..SimConfig::with_seed(47)
    };
    let rig = Rig::with(config);
    let db = rig.db();
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    rig.sleep(Duration::from_secs(10)).await;
    let before = rig.mi_view().await.last_hardened_lsn;
    let lsn = rig.sim().write(Side::SqlServer, &db, 2).unwrap();
    rig.sleep(Duration::from_secs(1)).await;
    // The instance has hardened it; ARM still reports what it read before.
    assert!(instance_holds(
        &rig,
        rig.sim().with_world(|w| w.commits.last_id)
    ));
    assert_eq!(rig.mi_view().await.last_hardened_lsn, before);
    rig.sleep(Duration::from_secs(3)).await;
    assert_eq!(rig.mi_view().await.last_hardened_lsn, before);
    rig.sleep(Duration::from_secs(2)).await;
    assert_eq!(rig.mi_view().await.last_hardened_lsn, Some(lsn));
    // T-SQL reads are live.
    let lsn2 = rig.sim().write(Side::SqlServer, &db, 1).unwrap();
    assert_eq!(rig.sql_view().await.end_of_log_lsn, Some(lsn2));
    // The role follows the same delay.
    rig.sim().partition(Duration::from_secs(600));
    rig.sleep(Duration::from_secs(1)).await;
    rig.mi
        .begin(&InstanceOp::Failover {
            link: rig.link(),
            failover_type: ArmFailoverType::ForcedAllowDataLoss,
        })
        .await
        .unwrap();
    let done_at = rig.sim().with_world(|w| {
        w.instance
            .operations
            .values()
            .filter(|o| o.outcome.is_none())
            .map(|o| o.completes_at)
            .max()
            .unwrap()
    });
    rig.clock
        .sleep_until(done_at.plus(Duration::from_secs(1)))
        .await;
    assert_eq!(
        rig.sim()
            .with_world(|w| w.role(Side::ManagedInstance, &rig.link())),
        Some(ReplicaRole::Primary)
    );
    assert_eq!(
        rig.mi.link_state(&rig.link()).await.unwrap().role,
        Some(ReplicaRole::Secondary)
    );
    rig.sleep(Duration::from_secs(5)).await;
    assert_eq!(
        rig.mi.link_state(&rig.link()).await.unwrap().role,
        Some(ReplicaRole::Primary)
    );
    // Zero lag reads live.
    rig.sim()
        .with_world_mut(|w| w.config.arm_reading_lag = Duration::ZERO);
    let lsn3 = rig.sim().write(Side::ManagedInstance, &db, 1).unwrap();
    assert_eq!(rig.mi_view().await.last_commit_lsn, Some(lsn3));
}

/// With the instance's endpoint (the default), its view of the link comes from its own DMVs:
/// a hardened commit and a role change show at once, whatever ARM's lag; ARM still says what
/// only it knows (the database's `replicaState`). When the T-SQL read fails, the view is ARM's
/// alone, lagging and not marked live.
#[tokio::test]
async fn the_instance_read_over_tsql_is_live_and_falls_back_to_arm() {
    let config = SimConfig {
        arm_reading_lag: Duration::from_secs(5),
        ..SimConfig::with_seed(47)
    };
    let rig = Rig::with(config);
    let db = rig.db();
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    rig.sleep(Duration::from_secs(10)).await;
    let lsn = rig.sim().write(Side::SqlServer, &db, 2).unwrap();
    rig.sleep(Duration::from_secs(1)).await;
    let view = rig.mi.link_state(&rig.link()).await.unwrap();
    assert!(view.live);
    let d = view.databases.iter().find(|d| d.name == db).unwrap();
    assert_eq!(d.last_hardened_lsn, Some(lsn));
    assert_eq!(d.sync_state, Some(SyncState::Synchronizing));
    assert_eq!(d.replica_state.as_deref(), Some("LinkSynchronizing"));
    assert_eq!(
        view.version, None,
        "the instance's build is not SQL Server's"
    );

    // The T-SQL read fails once: ARM's view, five seconds old.
    let lsn2 = rig.sim().write(Side::SqlServer, &db, 1).unwrap();
    rig.sleep(Duration::from_secs(1)).await;
    rig.sim().inject(
        Trigger::OnCall {
            call: Call::InstanceTsqlLinkState,
            nth: rig
                .sim()
                .with_world(|w| w.faults.count(Call::InstanceTsqlLinkState))
                + 1,
        },
        Fault::ConnectionDrop,
    );
    let stale = rig.mi.link_state(&rig.link()).await.unwrap();
    assert!(!stale.live);
    let d = stale.databases.iter().find(|d| d.name == db).unwrap();
    assert_ne!(d.last_hardened_lsn, Some(lsn2));
    assert_eq!(d.sync_state, None, "ARM reports no synchronization state");
    // The next read is live again.
    let view = rig.mi.link_state(&rig.link()).await.unwrap();
    assert!(view.live);
    let d = view.databases.iter().find(|d| d.name == db).unwrap();
    assert_eq!(d.last_hardened_lsn, Some(lsn2));

    // An Always-up-to-date policy shows at once, though ARM still reads the old one.
    rig.sim().with_world_mut(|w| {
        w.instance.update_policy = crate::names::UpdatePolicy::AlwaysUpToDate;
    });
    let view = rig.mi.link_state(&rig.link()).await.unwrap();
    assert_eq!(
        view.update_policy,
        Some(crate::names::UpdatePolicy::AlwaysUpToDate)
    );
}

/// Between whole readings, the catch-up gate reads the instance from its DMVs alone
/// (`link_state_live`): one T-SQL call and no ARM call, the LSNs as they are now, and what only
/// ARM knows as of the port's last whole reading. Without a whole reading of the link, or when
/// the DMVs cannot be read, it reads whole.
#[tokio::test]
async fn the_live_reading_makes_no_arm_call_and_falls_back_to_a_whole_one() {
    let config = SimConfig {
        arm_reading_lag: Duration::from_secs(5),
        ..SimConfig::with_seed(49)
    };
    let rig = Rig::with(config);
    let db = rig.db();
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    rig.sleep(Duration::from_secs(10)).await;
    let counts = |rig: &Rig| {
        rig.sim().with_world(|w| {
            (
                w.faults.count(Call::InstanceLinkState),
                w.faults.count(Call::InstanceTsqlLinkState),
            )
        })
    };
    // A port that never read the link whole reads it whole.
    let fresh = rig.sim().managed_instance();
    let before = counts(&rig);
    assert!(fresh.link_state_live(&rig.link()).await.unwrap().live);
    assert_eq!(counts(&rig), (before.0 + 1, before.1 + 1));
    // After that, the DMVs alone: the commit hardened a second ago, with ARM's replica state.
    let lsn = rig.sim().write(Side::SqlServer, &db, 2).unwrap();
    rig.sleep(Duration::from_secs(1)).await;
    let before = counts(&rig);
    let view = fresh.link_state_live(&rig.link()).await.unwrap();
    assert_eq!(counts(&rig), (before.0, before.1 + 1), "no ARM call");
    assert!(view.live);
    let d = view.databases.iter().find(|d| d.name == db).unwrap();
    assert_eq!(d.last_hardened_lsn, Some(lsn));
    assert_eq!(d.replica_state.as_deref(), Some("LinkSynchronizing"));
    // The DMVs cannot be read: a whole reading instead (ARM, then the DMVs again).
    rig.sim().inject(
        Trigger::OnCall {
            call: Call::InstanceTsqlLinkState,
            nth: counts(&rig).1 + 1,
        },
        Fault::ConnectionDrop,
    );
    let before = counts(&rig);
    let view = fresh.link_state_live(&rig.link()).await.unwrap();
    assert_eq!(counts(&rig), (before.0 + 1, before.1 + 2));
    assert!(view.live);
}

#[tokio::test]
async fn each_replica_of_the_dag_has_its_own_mode() {
    let config = SimConfig {
        arm_reading_lag: Duration::ZERO,
        ..SimConfig::with_seed(48)
    };
    let rig = Rig::with(config);
    let link = rig.link();
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    let sync = AvailabilityMode::SynchronousCommit;
    let not_sync = AvailabilityMode::AsynchronousCommit;
    let modes = |v: &crate::lifecycle::SideView| (v.mode, v.partner_mode);
    // Only the instance's replica in SQL Server's catalog.
    assert!(rig.sim().with_world_mut(|w| w.set_dag_replica_mode(
        &link,
        Side::ManagedInstance,
        sync
    )));
    let sql = rig.sql.link_state(&link, &[rig.db()]).await.unwrap();
    assert_eq!(modes(&sql), (Some(not_sync), Some(sync)));
    assert_eq!(
        rig.sim().with_world(|w| w.effective_mode(&link)),
        Some(not_sync)
    );
    // The T-SQL statement names both AGs: both replicas change; the instance keeps its own.
    let s = rig.spec().clone();
    rig.tsql(SourceOp::SetAvailabilityMode {
        dag: link.clone(),
        sql_ag: s.source.ag.clone(),
        mi_ag: s.target.ag.clone(),
        mode: sync,
    })
    .await
    .unwrap();
    let sql = rig.sql.link_state(&link, &[rig.db()]).await.unwrap();
    assert_eq!(modes(&sql), (Some(sync), Some(sync)));
    // The instance's own catalog, read live over T-SQL, lists both replicas too: its own
    // still asynchronous, SQL Server's synchronous.
    let mi = rig.mi.link_state(&link).await.unwrap();
    assert!(mi.live);
    assert_eq!(modes(&mi), (Some(not_sync), Some(sync)));
    assert_eq!(
        rig.sim().with_world(|w| w.effective_mode(&link)),
        Some(not_sync)
    );
    rig.arm(InstanceOp::SetReplicationMode {
        link: link.clone(),
        mode: sync,
    })
    .await
    .unwrap();
    assert_eq!(
        rig.sim().with_world(|w| w.effective_mode(&link)),
        Some(sync)
    );
    assert_eq!(rig.mi.link_state(&link).await.unwrap().mode, Some(sync));
    // SQL Server's own replica back to asynchronous: the link is asynchronous again.
    rig.sim()
        .with_world_mut(|w| w.set_dag_replica_mode(&link, Side::SqlServer, not_sync));
    let sql = rig.sql.link_state(&link, &[rig.db()]).await.unwrap();
    assert_eq!(modes(&sql), (Some(not_sync), Some(sync)));
    assert_eq!(
        rig.sim().with_world(|w| w.effective_mode(&link)),
        Some(not_sync)
    );
    let c = rig.sim().commit(Side::SqlServer, &rig.db(), 1).unwrap();
    assert_eq!(c.status, CommitStatus::Acknowledged);
}

#[tokio::test]
async fn a_held_open_transaction_shows_in_client_sessions_until_it_commits() {
    let rig = Rig::new(49);
    let db = rig.db();
    let dbs = [db.clone()];
    let rows = |rig: &Rig| {
        rig.sim()
            .snapshot(Side::SqlServer, &db)
            .unwrap()
            .tables
            .iter()
            .map(|t| t.rows)
            .sum::<u64>()
    };
    let before = rows(&rig);
    let started = rig.clock.now();
    rig.sim()
        .hold_open_transaction(Side::SqlServer, &db, Duration::from_secs(30))
        .unwrap();
    let on_sql = rig.sql.workload_activity(&dbs).await.unwrap();
    assert_eq!(on_sql.sessions.len(), 1, "{on_sql:?}");
    assert_eq!(on_sql.sessions[0].open_transactions, 1);
    assert_eq!(on_sql.sessions[0].oldest_transaction_start, Some(started));
    assert!(rig.mi.workload_activity(&dbs).await.unwrap().is_quiet());
    // With the workload on the same database it is the same session.
    rig.workload(Side::SqlServer, 2.0);
    let on_sql = rig.sql.workload_activity(&dbs).await.unwrap();
    assert_eq!(on_sql.sessions.len(), 1);
    assert_eq!(on_sql.sessions[0].open_transactions, 1);
    // One held open in another database is a session of its own.
    let other = DatabaseName::new(Lab::CUSTOMER360).unwrap();
    rig.sim()
        .hold_open_transaction(Side::SqlServer, &other, Duration::from_secs(5))
        .unwrap();
    let both = rig
        .sql
        .workload_activity(&[db.clone(), other.clone()])
        .await
        .unwrap();
    let ids: Vec<(&str, u16, u32)> = both
        .sessions
        .iter()
        .map(|s| (s.database.as_str(), s.session_id, s.open_transactions))
        .collect();
    assert_eq!(ids, [(Lab::CUSTOMER360, 58, 1), (Lab::TOYSTORE, 57, 1)]);
    rig.sim().stop_workload();
    rig.sleep(Duration::from_secs(20)).await;
    assert_eq!(rows(&rig), before + rig.sim().workload_stats().rows);
    rig.sleep(Duration::from_secs(11)).await;
    // It committed its row when it ended; the session is gone.
    assert_eq!(rows(&rig), before + rig.sim().workload_stats().rows + 1);
    assert!(rig.sql.workload_activity(&dbs).await.unwrap().is_quiet());
    // The instance has no such database: nothing to hold open there.
    assert!(
        rig.sim()
            .hold_open_transaction(Side::ManagedInstance, &db, Duration::from_secs(1))
            .is_err()
    );
}

#[tokio::test]
async fn system_log_advances_lsns_and_ships_without_rows() {
    let config = SimConfig {
        background_log_interval: Some(Duration::from_secs(5)),
        ..SimConfig::with_seed(50)
    };
    let rig = Rig::with(config);
    let db = rig.db();
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    rig.sleep(Duration::from_secs(5)).await;
    let sql = rig.sim().snapshot(Side::SqlServer, &db).unwrap();
    let total = |s: &DbSnapshot| s.tables.iter().map(|t| t.rows).sum::<u64>();
    rig.sleep(Duration::from_secs(60)).await;
    let later = rig.sim().snapshot(Side::SqlServer, &db).unwrap();
    assert!(later.end_lsn > sql.end_lsn);
    assert_eq!(total(&later), total(&sql));
    assert_eq!(rig.sim().workload_stats().committed, 0);
    // It ships like any other record.
    rig.sim().with_world_mut(|w| w.next_background_log = None);
    rig.sleep(Duration::from_secs(2)).await;
    let mi = rig.sim().snapshot(Side::ManagedInstance, &db).unwrap();
    let sql = rig.sim().snapshot(Side::SqlServer, &db).unwrap();
    assert!(mi.end_lsn >= later.end_lsn);
    assert_eq!(mi.end_lsn, sql.end_lsn);
    assert_eq!(
        rig.sim()
            .missing_transactions(&db, Side::SqlServer, Side::ManagedInstance),
        (0, 0)
    );
    assert!(ParityReport::compare(&sql, &mi).all_match());
}

/// Links, joins and switches to synchronous commit; returns when SYNCHRONIZED.
async fn synchronized(rig: &Rig) {
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    rig.set_mode(AvailabilityMode::SynchronousCommit).await;
    rig.until_synchronized().await;
}

async fn fence(rig: &Rig) {
    rig.tsql(SourceOp::SetRoleSecondary { dag: rig.link() })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_fence_then_delete_with_equal_lsns_loses_nothing() {
    let rig = Rig::new(51);
    let db = rig.db();
    let link = rig.link();
    synchronized(&rig).await;
    rig.sim().write(Side::SqlServer, &db, 3).unwrap();
    rig.sleep(Duration::from_secs(3)).await;
    let (sql, mi) = (rig.sql_view().await, rig.mi_view().await);
    assert_eq!(sql.last_hardened_lsn, mi.last_hardened_lsn);
    fence(&rig).await;
    rig.sim().with_world(|w| {
        assert_eq!(w.role(Side::SqlServer, &link), Some(ReplicaRole::Secondary));
        assert_eq!(
            w.role(Side::ManagedInstance, &link),
            Some(ReplicaRole::Secondary)
        );
        assert_eq!(w.primary_of(&link), None);
    });
    // Neither side takes writes now.
    assert_eq!(
        code(&rig.sim().write(Side::SqlServer, &db, 1).unwrap_err()),
        "sql:976"
    );
    assert_eq!(
        code(&rig.sim().write(Side::ManagedInstance, &db, 1).unwrap_err()),
        "sql:3906"
    );
    assert_eq!(rig.sim().lost_transactions(&db), 0);
    rig.arm(InstanceOp::DeleteLink { link: link.clone() })
        .await
        .unwrap();
    assert_eq!(rig.sim().lost_transactions(&db), 0);
    rig.sim().write(Side::ManagedInstance, &db, 1).unwrap();
    let sql = rig.sim().snapshot(Side::SqlServer, &db).unwrap();
    assert_eq!(
        rig.sim()
            .missing_transactions(&db, Side::SqlServer, Side::ManagedInstance),
        (0, 0)
    );
    assert!(
        sql.end_lsn
            < rig
                .sim()
                .snapshot(Side::ManagedInstance, &db)
                .unwrap()
                .end_lsn
    );
}

#[tokio::test]
async fn a_fence_ends_waiting_commits_and_a_delete_then_loses_the_fenced_tail() {
    let rig = Rig::new(52);
    let db = rig.db();
    let link = rig.link();
    synchronized(&rig).await;
    rig.sim().partition(Duration::from_secs(60));
    let waiting = rig.sim().commit(Side::SqlServer, &db, 2).unwrap();
    assert_eq!(waiting.status, CommitStatus::Awaiting);
    rig.sleep(Duration::from_secs(5)).await;
    fence(&rig).await;
    // The application got an error; nothing is lost (the data stays on SQL Server).
    assert_eq!(status(&rig, waiting.id), Some(CommitStatus::Unacknowledged));
    let stats = rig.sim().workload_stats();
    assert_eq!(
        (stats.unacknowledged, stats.awaiting_acknowledgement),
        (1, 0)
    );
    assert_eq!(rig.sim().lost_transactions(&db), 0);
    assert!(
        rig.sim()
            .events()
            .iter()
            .any(|e| matches!(e.kind, EventKind::Fenced { .. }))
    );
    // Healed, nothing ships: there is no primary.
    rig.sleep(Duration::from_secs(90)).await;
    assert!(!instance_holds(&rig, waiting.id));
    assert_eq!(rig.sql_view().await.partner, None);
    // The DELETE makes the instance's copy the database: SQL Server's tail is lost, and the
    // application had not been told it committed.
    rig.arm(InstanceOp::DeleteLink { link }).await.unwrap();
    assert_eq!(rig.sim().lost_transactions(&db), 1);
    assert_eq!(rig.sim().lost_acknowledged_transactions(&db), 0);
    rig.sim().write(Side::ManagedInstance, &db, 1).unwrap();
}

#[tokio::test]
async fn a_fence_then_force_failover_on_sql_server_restores_it_and_loses_nothing() {
    let rig = Rig::new(53);
    let db = rig.db();
    let link = rig.link();
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    rig.sim().partition(Duration::from_secs(60));
    rig.sleep(Duration::from_secs(1)).await;
    for _ in 0..4 {
        rig.sim().write(Side::SqlServer, &db, 2).unwrap();
    }
    fence(&rig).await;
    rig.tsql(SourceOp::ForceFailover { dag: link.clone() })
        .await
        .unwrap();
    assert_eq!(
        rig.sim().with_world(|w| w.primary_of(&link)),
        Some(Side::SqlServer)
    );
    assert_eq!(rig.sim().lost_transactions(&db), 0);
    rig.sim().write(Side::SqlServer, &db, 1).unwrap();
    // Once healed, shipping resumes from where the copies agree.
    rig.sleep(Duration::from_secs(70)).await;
    assert_eq!(
        rig.sim()
            .missing_transactions(&db, Side::SqlServer, Side::ManagedInstance),
        (0, 0)
    );
    assert!(rig.sim().parity(&db).unwrap().all_match());
    assert_eq!(rig.sim().lost_transactions(&db), 0);
}

#[tokio::test]
async fn a_demoted_old_primary_is_reverting_until_it_undoes_its_tail() {
    let config = SimConfig {
        revert_duration: Duration::from_secs(30),
        ..SimConfig::with_seed(54)
    };
    let rig = Rig::with(config);
    let db = rig.db();
    let link = rig.link();
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    rig.sim().partition(Duration::from_secs(120));
    rig.sleep(Duration::from_secs(1)).await;
    for _ in 0..3 {
        rig.sim().write(Side::SqlServer, &db, 2).unwrap();
    }
    rig.arm(InstanceOp::Failover {
        link: link.clone(),
        failover_type: ArmFailoverType::ForcedAllowDataLoss,
    })
    .await
    .unwrap();
    assert_eq!(rig.sim().lost_transactions(&db), 3);
    // The split brain ends with SQL Server demoted: its tail was counted already.
    rig.tsql(SourceOp::SetRoleSecondary { dag: link.clone() })
        .await
        .unwrap();
    assert_eq!(rig.sim().lost_transactions(&db), 3);
    let divergent_end = rig.sql_view().await.end_of_log_lsn;
    // Healed: SQL Server reverts for a while before it follows the instance.
    let healed = rig
        .wait_for(Duration::from_secs(300), |w| {
            w.replications.get(&link).is_some_and(|r| r.connected)
        })
        .await;
    assert!(healed);
    rig.sleep(Duration::from_secs(2)).await;
    let v = rig.sql_view().await;
    assert_eq!(v.sync_state, Some(SyncState::Reverting));
    assert_eq!(v.end_of_log_lsn, divergent_end);
    // A REVERTING database cannot become primary, forced or planned.
    let e = rig
        .tsql(SourceOp::ForceFailover { dag: link.clone() })
        .await
        .unwrap_err();
    assert_eq!(code(&e), "sql:41142");
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
    let v = rig.sql_view().await;
    assert_eq!(v.sync_state, Some(SyncState::Synchronizing));
    assert_ne!(v.end_of_log_lsn, divergent_end);
    assert_eq!(
        rig.sim()
            .with_world(|w| w.stats.reverted_transactions.get(&db).copied()),
        Some(3)
    );
    assert!(rig.sim().parity(&db).unwrap().all_match());
}

#[tokio::test]
async fn set_role_secondary_on_the_instance_loses_what_it_wrote_in_the_split_brain() {
    let rig = Rig::new(55);
    let db = rig.db();
    let link = rig.link();
    rig.create_link().await.unwrap();
    rig.until_joined().await;
    rig.sim().partition(Duration::from_secs(300));
    rig.sleep(Duration::from_secs(1)).await;
    rig.arm(InstanceOp::Failover {
        link: link.clone(),
        failover_type: ArmFailoverType::ForcedAllowDataLoss,
    })
    .await
    .unwrap();
    // Nothing was unshipped on SQL Server: the force lost nothing.
    assert_eq!(rig.sim().lost_transactions(&db), 0);
    let on_mi: Vec<Committed> = (0..2)
        .map(|_| rig.sim().commit(Side::ManagedInstance, &db, 3).unwrap())
        .collect();
    assert!(on_mi.iter().all(|c| c.status == CommitStatus::Acknowledged));
    // The split brain is ended keeping SQL Server: the instance's writes are lost.
    rig.arm(InstanceOp::SetRole {
        link: link.clone(),
        role: Side::SqlServer,
        change: crate::lifecycle::RoleChangeType::Forced,
    })
    .await
    .unwrap();
    assert_eq!(
        rig.sim().with_world(|w| w.primary_of(&link)),
        Some(Side::SqlServer)
    );
    assert_eq!(rig.sim().lost_transactions(&db), 2);
    assert_eq!(lost_rows(&rig), 6);
    assert_eq!(rig.sim().lost_acknowledged_transactions(&db), 2);
    // Healed, the instance undoes them and follows SQL Server again.
    rig.sleep(Duration::from_secs(400)).await;
    assert!(on_mi.iter().all(|c| !instance_holds(&rig, c.id)));
    assert!(rig.sim().parity(&db).unwrap().all_match());
    assert_eq!(rig.sim().lost_transactions(&db), 2);
}
