//! The availability group views and DMVs: `sys.availability_groups`,
//! `sys.availability_replicas`, `sys.dm_hadr_availability_replica_states`,
//! `sys.dm_hadr_database_replica_states`, `sys.dm_hadr_physical_seeding_stats` and
//! `sys.dm_hadr_automatic_seeding`.
//!
//! Each link visible on a side is a distributed availability group with two replicas (the AG of
//! each side), the local one first. Its rows come from [`World::side_view`] of that side for the
//! link's databases, so that SQL Server's rowsets parsed by `sqlserver::parse` give back the
//! same view: the local database row carries the view's own values (state, health, LSNs), the
//! remote row (on the primary) the partner's state and hardened LSN, and both the queues and
//! lag. The managed instance's view has no synchronization state (ARM has none): it is derived
//! here from the replication as the view derives SQL Server's.

use crate::lifecycle::{AvailabilityMode, ReplicaRole, Side, SideView, SyncHealth, SyncState};
use crate::names::{DatabaseName, LinkName, Lsn};
use crate::sim::World;
use crate::sim::tds::{ResultSet, SqlType, Value};
use crate::sim::world::ReplicaPhase;

use super::server::database_id;
use super::{DESC, LSN, SYSNAME, TableBuilder, guid, opt_big, opt_s, s};

/// One link as a side's catalog shows it.
struct DagRows {
    link: LinkName,
    local_ag: String,
    remote_ag: String,
    local_url: String,
    remote_url: String,
    local_mode: AvailabilityMode,
    remote_mode: AvailabilityMode,
    remote_role: Option<ReplicaRole>,
    view: SideView,
    /// The last connection error, as (number, text).
    last_error: Option<(i32, String)>,
}

impl DagRows {
    fn group_id(&self) -> Value {
        guid(&["dag", self.link.as_str()])
    }
    fn local_replica_id(&self) -> Value {
        guid(&["dag", self.link.as_str(), "replica", &self.local_ag])
    }
    fn remote_replica_id(&self) -> Value {
        guid(&["dag", self.link.as_str(), "replica", &self.remote_ag])
    }
}

/// `<number>: <message>` as (number, message).
fn split_error(e: &str) -> (i32, String) {
    match e.split_once(": ") {
        Some((n, text)) => match n.trim().parse::<i32>() {
            Ok(n) => (n, text.to_owned()),
            Err(_) => (0, e.to_owned()),
        },
        None => (0, e.to_owned()),
    }
}

fn dags(world: &World, side: Side) -> Vec<DagRows> {
    let last_error = |link: &LinkName| {
        world
            .replications
            .get(link)
            .and_then(|r| r.last_error.as_deref())
            .map(split_error)
    };
    match side {
        Side::SqlServer => world
            .source
            .dags
            .iter()
            .map(|(link, d)| {
                let databases = world.source_ag_databases(link);
                DagRows {
                    link: link.clone(),
                    local_ag: d.sql_ag.to_string(),
                    remote_ag: d.mi_ag.to_string(),
                    local_url: d.sql_listener_url.clone(),
                    remote_url: format!("tcp://{}:5022", d.mi_fqdn.as_str()),
                    local_mode: d.sql_mode,
                    remote_mode: d.mi_mode,
                    remote_role: world.role(Side::ManagedInstance, link),
                    view: world.side_view(Side::SqlServer, link, &databases),
                    last_error: last_error(link),
                }
            })
            .collect(),
        Side::ManagedInstance => world
            .instance
            .links
            .iter()
            .map(|(link, l)| {
                let databases = l.properties.databases.clone();
                let mut view = world.side_view(Side::ManagedInstance, link, &databases);
                for v in &mut view.databases {
                    v.sync_state = Some(instance_sync_state(world, link, &v.name));
                }
                DagRows {
                    link: link.clone(),
                    local_ag: l.properties.instance_ag.to_string(),
                    remote_ag: l.properties.partner_ag.to_string(),
                    local_url: format!("tcp://{}:5022", world.instance.fqdn.as_str()),
                    remote_url: l.properties.partner_endpoint.clone(),
                    local_mode: l.replication_mode,
                    remote_mode: world
                        .source
                        .dags
                        .get(link)
                        .map_or(l.replication_mode, |d| d.sql_mode),
                    remote_role: world.role(Side::SqlServer, link),
                    view,
                    last_error: last_error(link),
                }
            })
            .collect(),
    }
}

/// The managed instance's `synchronization_state_desc` for `db`, by the rules
/// [`World::side_view`] applies to SQL Server's.
fn instance_sync_state(world: &World, link: &LinkName, db: &DatabaseName) -> SyncState {
    let Some(repl) = world.replications.get(link) else {
        return SyncState::NotSynchronizing;
    };
    let Some(r) = repl.databases.get(db) else {
        return SyncState::NotSynchronizing;
    };
    let connected = repl.connected || r.synchronized;
    if !matches!(r.phase, ReplicaPhase::Synchronizing)
        || !connected
        || world.primary_of(link).is_none()
    {
        return SyncState::NotSynchronizing;
    }
    let is_primary = world.role(Side::ManagedInstance, link) == Some(ReplicaRole::Primary);
    if r.reverting_until.is_some() && !is_primary {
        return SyncState::Reverting;
    }
    match (
        world.effective_mode(link) == Some(AvailabilityMode::SynchronousCommit),
        r.synchronized,
    ) {
        (true, true) => SyncState::Synchronized,
        _ => SyncState::Synchronizing,
    }
}

fn mode_desc(m: AvailabilityMode) -> &'static str {
    match m {
        AvailabilityMode::SynchronousCommit => "SYNCHRONOUS_COMMIT",
        AvailabilityMode::AsynchronousCommit => "ASYNCHRONOUS_COMMIT",
    }
}

fn role_desc(r: Option<ReplicaRole>) -> Value {
    opt_s(r.map(|r| match r {
        ReplicaRole::Primary => "PRIMARY",
        ReplicaRole::Secondary => "SECONDARY",
        _ => "RESOLVING",
    }))
}

fn state_desc(s: SyncState) -> &'static str {
    match s {
        SyncState::NotSynchronizing => "NOT SYNCHRONIZING",
        SyncState::Synchronizing => "SYNCHRONIZING",
        SyncState::Synchronized => "SYNCHRONIZED",
        SyncState::Reverting => "REVERTING",
        SyncState::Initializing => "INITIALIZING",
    }
}

fn health_desc(h: SyncHealth) -> &'static str {
    match h {
        SyncHealth::NotHealthy => "NOT_HEALTHY",
        SyncHealth::PartiallyHealthy => "PARTIALLY_HEALTHY",
        SyncHealth::Healthy => "HEALTHY",
    }
}

fn lsn(v: Option<Lsn>) -> Value {
    v.map_or(Value::Null, |l| Value::Numeric {
        value: i128::try_from(l.value()).unwrap_or(i128::MAX),
        scale: 0,
    })
}

/// The plain availability groups of `side`: (name, replica server, endpoint URL).
fn plain_ags(world: &World, side: Side) -> Vec<(String, String, String)> {
    match side {
        Side::SqlServer => world
            .source
            .ags
            .values()
            .map(|ag| {
                (
                    ag.name.to_string(),
                    ag.replica.to_string(),
                    ag.endpoint_url.clone(),
                )
            })
            .collect(),
        Side::ManagedInstance => world
            .instance
            .links
            .values()
            .map(|l| {
                (
                    l.properties.instance_ag.to_string(),
                    world.instance.fqdn.instance_name().to_owned(),
                    format!("tcp://{}:5022", world.instance.fqdn.as_str()),
                )
            })
            .collect(),
    }
}

/// `sys.availability_groups`: `group_id`, `name`, `is_distributed`.
pub fn availability_groups(world: &World, side: Side) -> ResultSet {
    let mut t = TableBuilder::new(&[
        ("group_id", SqlType::UniqueIdentifier),
        ("name", SYSNAME),
        ("is_distributed", SqlType::Bit),
    ]);
    for (name, _, _) in plain_ags(world, side) {
        t.row(vec![guid(&["ag", &name]), s(name), Value::Bit(false)]);
    }
    for d in dags(world, side) {
        t.row(vec![d.group_id(), s(d.link.to_string()), Value::Bit(true)]);
    }
    t.build()
}

/// `sys.availability_replicas`: `replica_id`, `group_id`, `replica_server_name`,
/// `endpoint_url`, `availability_mode_desc`, `seeding_mode_desc`.
pub fn availability_replicas(world: &World, side: Side) -> ResultSet {
    let mut t = TableBuilder::new(&[
        ("replica_id", SqlType::UniqueIdentifier),
        ("group_id", SqlType::UniqueIdentifier),
        ("replica_server_name", SqlType::NVarChar(Some(256))),
        ("endpoint_url", SqlType::NVarChar(Some(128))),
        ("availability_mode_desc", DESC),
        ("seeding_mode_desc", DESC),
    ]);
    for (name, server, url) in plain_ags(world, side) {
        t.row(vec![
            guid(&["ag", &name, "replica", &server]),
            guid(&["ag", &name]),
            s(server),
            s(url),
            s("SYNCHRONOUS_COMMIT"),
            s("AUTOMATIC"),
        ]);
    }
    for d in dags(world, side) {
        t.row(vec![
            d.local_replica_id(),
            d.group_id(),
            s(d.local_ag.clone()),
            s(d.local_url.clone()),
            s(mode_desc(d.local_mode)),
            s("AUTOMATIC"),
        ]);
        t.row(vec![
            d.remote_replica_id(),
            d.group_id(),
            s(d.remote_ag.clone()),
            s(d.remote_url.clone()),
            s(mode_desc(d.remote_mode)),
            s("AUTOMATIC"),
        ]);
    }
    t.build()
}

/// The worst health of a view's databases (HEALTHY without databases).
fn overall_health(view: &SideView) -> SyncHealth {
    view.databases
        .iter()
        .map(|d| d.health)
        .min_by_key(|h| match h {
            SyncHealth::NotHealthy => 0,
            SyncHealth::PartiallyHealthy => 1,
            SyncHealth::Healthy => 2,
        })
        .unwrap_or(SyncHealth::Healthy)
}

/// `sys.dm_hadr_availability_replica_states`: per DAG, the local replica's row (its role) and
/// the remote replica's (its role, the last connection error).
pub fn replica_states(world: &World, side: Side) -> ResultSet {
    let mut t = TableBuilder::new(&[
        ("replica_id", SqlType::UniqueIdentifier),
        ("group_id", SqlType::UniqueIdentifier),
        ("is_local", SqlType::Bit),
        ("role_desc", DESC),
        ("operational_state_desc", DESC),
        ("connected_state_desc", DESC),
        ("synchronization_health_desc", DESC),
        ("last_connect_error_number", SqlType::Int),
        (
            "last_connect_error_description",
            SqlType::NVarChar(Some(1024)),
        ),
    ]);
    for (name, server, _) in plain_ags(world, side) {
        t.row(vec![
            guid(&["ag", &name, "replica", &server]),
            guid(&["ag", &name]),
            Value::Bit(true),
            s("PRIMARY"),
            s("ONLINE"),
            s("CONNECTED"),
            s("HEALTHY"),
            Value::Null,
            Value::Null,
        ]);
    }
    for d in dags(world, side) {
        let connected = s(if d.view.connected {
            "CONNECTED"
        } else {
            "DISCONNECTED"
        });
        let health = s(health_desc(overall_health(&d.view)));
        t.row(vec![
            d.local_replica_id(),
            d.group_id(),
            Value::Bit(true),
            role_desc(d.view.role),
            s("ONLINE"),
            connected.clone(),
            health.clone(),
            Value::Null,
            Value::Null,
        ]);
        let (number, text) = match &d.last_error {
            Some((n, text)) => (Value::Int(*n), s(text.clone())),
            None => (Value::Null, Value::Null),
        };
        t.row(vec![
            d.remote_replica_id(),
            d.group_id(),
            Value::Bit(false),
            role_desc(d.remote_role),
            Value::Null,
            connected,
            health,
            number,
            text,
        ]);
    }
    t.build()
}

/// `sys.dm_hadr_database_replica_states`: per DAG and database of this side, the local row
/// and, where the view knows the partner (SQL Server as primary), the remote row.
pub fn database_replica_states(world: &World, side: Side) -> ResultSet {
    let mut t = TableBuilder::new(&[
        ("database_id", SqlType::Int),
        ("group_id", SqlType::UniqueIdentifier),
        ("replica_id", SqlType::UniqueIdentifier),
        ("is_local", SqlType::Bit),
        ("is_primary_replica", SqlType::Bit),
        ("synchronization_state_desc", DESC),
        ("synchronization_health_desc", DESC),
        ("last_hardened_lsn", LSN),
        ("last_commit_lsn", LSN),
        ("end_of_log_lsn", LSN),
        ("last_commit_time", SqlType::DateTime),
        ("log_send_queue_size", SqlType::BigInt),
        ("redo_queue_size", SqlType::BigInt),
        ("secondary_lag_seconds", SqlType::BigInt),
    ]);
    for d in dags(world, side) {
        let local_primary = d.view.role == Some(ReplicaRole::Primary);
        for v in &d.view.databases {
            let Some(id) = database_id(world, side, v.name.as_str()) else {
                continue;
            };
            let queues = [
                opt_big(v.log_send_queue_kb),
                opt_big(v.redo_queue_kb),
                opt_big(v.lag_seconds),
            ];
            let mut local = vec![
                Value::Int(id),
                d.group_id(),
                d.local_replica_id(),
                Value::Bit(true),
                Value::Bit(local_primary),
                opt_s(v.sync_state.map(state_desc)),
                s(health_desc(v.health)),
                lsn(v.last_hardened_lsn),
                lsn(v.last_commit_lsn),
                lsn(v.end_of_log_lsn),
                Value::Null,
            ];
            local.extend(queues.iter().cloned());
            t.row(local);
            if let Some(p) = &v.partner {
                let mut remote = vec![
                    Value::Int(id),
                    d.group_id(),
                    d.remote_replica_id(),
                    Value::Bit(false),
                    Value::Bit(d.remote_role == Some(ReplicaRole::Primary)),
                    s(state_desc(p.sync_state)),
                    s(health_desc(v.health)),
                    lsn(p.last_hardened_lsn),
                    Value::Null,
                    Value::Null,
                    Value::Null,
                ];
                remote.extend(queues);
                t.row(remote);
            }
        }
    }
    t.build()
}

/// A seeding in progress on `side`: (link, database, is_source, seeding).
fn seedings(
    world: &World,
    side: Side,
) -> Vec<(LinkName, DatabaseName, bool, &crate::sim::world::Seeding)> {
    let mut out = Vec::new();
    for (link, repl) in &world.replications {
        let visible = match side {
            Side::SqlServer => world.source.dags.contains_key(link),
            Side::ManagedInstance => world.instance.links.contains_key(link),
        };
        if !visible {
            continue;
        }
        let is_source = world.primary_of(link) == Some(side)
            || (world.primary_of(link).is_none()
                && world.role(side, link) == Some(ReplicaRole::Primary));
        for (db, r) in &repl.databases {
            if let ReplicaPhase::Seeding(seeding) = &r.phase {
                out.push((link.clone(), db.clone(), is_source, seeding));
            }
        }
    }
    out
}

fn seeding_id(link: &LinkName, db: &DatabaseName, attempt: u32) -> Value {
    guid(&["seeding", link.as_str(), db.as_str(), &attempt.to_string()])
}

/// `sys.dm_hadr_physical_seeding_stats`: one row per seeding in progress.
pub fn physical_seeding_stats(world: &World, side: Side) -> ResultSet {
    let mut t = TableBuilder::new(&[
        ("local_physical_seeding_id", SqlType::UniqueIdentifier),
        ("local_database_name", SYSNAME),
        ("role_desc", DESC),
        ("internal_state_desc", DESC),
        ("database_size_bytes", SqlType::BigInt),
        ("transferred_size_bytes", SqlType::BigInt),
        ("transfer_rate_bytes_per_second", SqlType::BigInt),
        ("total_disk_io_wait_time_ms", SqlType::BigInt),
        ("total_network_wait_time_ms", SqlType::BigInt),
        ("is_compression_enabled", SqlType::Bit),
        ("start_time_utc", SqlType::DateTime),
        ("estimate_time_complete_utc", SqlType::DateTime),
    ]);
    let compression = world.source.trace_flags.contains(&9567);
    for (link, db, is_source, seeding) in seedings(world, side) {
        let elapsed_s = world.now.since(seeding.started).as_secs().max(1);
        let rate = seeding.bytes_done / elapsed_s;
        let estimate = (rate > 0).then(|| {
            let left = seeding.bytes_total.saturating_sub(seeding.bytes_done) / rate;
            world.now.plus(std::time::Duration::from_secs(left))
        });
        t.row(vec![
            seeding_id(&link, &db, seeding.attempt),
            s(db.to_string()),
            s(if is_source { "Source" } else { "Destination" }),
            s("ReadingAndSendingData"),
            opt_big(Some(seeding.bytes_total)),
            opt_big(Some(seeding.bytes_done)),
            opt_big(Some(rate)),
            opt_big(Some(0)),
            opt_big(Some(0)),
            Value::Bit(compression),
            Value::DateTime(seeding.started),
            estimate.map_or(Value::Null, Value::DateTime),
        ]);
    }
    t.build()
}

/// `sys.dm_hadr_automatic_seeding`: one row per seeding in progress (`current_state`
/// `SEEDING`).
pub fn automatic_seeding(world: &World, side: Side) -> ResultSet {
    let mut t = TableBuilder::new(&[
        ("operation_id", SqlType::UniqueIdentifier),
        ("start_time", SqlType::DateTime),
        ("completion_time", SqlType::DateTime),
        ("current_state", DESC),
        ("is_source", SqlType::Bit),
        ("number_of_attempts", SqlType::Int),
    ]);
    for (link, db, is_source, seeding) in seedings(world, side) {
        t.row(vec![
            seeding_id(&link, &db, seeding.attempt),
            Value::DateTime(seeding.started),
            Value::Null,
            s("SEEDING"),
            Value::Bit(is_source),
            Value::Int(i32::try_from(seeding.attempt).unwrap_or(i32::MAX)),
        ]);
    }
    t.build()
}
