//! The SQL Server port of the Arc route (feature `arm`): [`ArcSourceServer`] reaches SQL Server
//! through Azure Arc only. It runs the machine's Arc operations ([`SourceServer::arc_begin`],
//! [`SourceServer::arc_poll`]) with [`ArcSqlServer`], reads SQL Server's view of the link from
//! Arc's resource of the distributed availability group (roles, modes, each database's
//! synchronization state) and the replica lag from Arc's telemetry (`SecondaryReplicaLag`), and
//! runs no T-SQL. Arc reports no LSN, so the view carries none.

use std::time::Duration;

use async_trait::async_trait;

use super::client::{ArcOperation, ArcPoll, ArcSqlServer, ArcStarted, replica_lag_seconds};
use super::models::{ArcReplicaRole, AvailabilityGroupReplica, SqlServerAvailabilityGroup};
use super::{ArcOp, TelemetryRequest};
use crate::lifecycle::{
    AvailabilityMode, DatabaseView, LinkName, OperationRef, PartnerReplica, ReplicaRole, SideView,
    SourceOp, SyncHealth, SyncState,
};
use crate::names::{AgName, DatabaseName};
use crate::ports::{ArmReply, PollReply, PortError, SourceReply, SourceServer, UNSUPPORTED};

/// What the session status says about SQL Server on the Arc route.
pub const ARC_ROUTE_WARNING: &str = "SQL Server is reached through Azure Arc: its \
     last_hardened_lsn is not reported, so planned failovers rely on Arc's own wait for \
     SYNCHRONIZED";

/// SQL Server's side of a link on the Arc route.
#[derive(Debug)]
pub struct ArcSourceServer {
    arc: ArcSqlServer,
    telemetry_wait: Duration,
    telemetry_polls: u32,
}

impl ArcSourceServer {
    /// The port over `arc`; a telemetry request is polled every second, at most 30 times.
    pub fn new(arc: ArcSqlServer) -> Self {
        ArcSourceServer {
            arc,
            telemetry_wait: Duration::from_secs(1),
            telemetry_polls: 30,
        }
    }

    /// The Arc client (for the assessment through Arc and other reads).
    pub fn client(&self) -> &ArcSqlServer {
        &self.arc
    }

    /// The worst replica lag of each of `databases` in the last minute, by Arc's telemetry;
    /// unreadable telemetry gives no lag (the link's state does not depend on it).
    async fn lags(&self, databases: &[DatabaseName]) -> Vec<(DatabaseName, u64)> {
        let mut lags = Vec::new();
        for db in databases {
            let request =
                TelemetryRequest::replica_lag(db.clone(), self.arc.now(), Duration::from_secs(60));
            if let Ok(table) = self
                .arc
                .telemetry(request, self.telemetry_wait, self.telemetry_polls)
                .await
                && let Some(seconds) = replica_lag_seconds(&table, db.as_str())
                && seconds.is_finite()
                && seconds >= 0.0
            {
                lags.push((db.clone(), seconds.ceil() as u64));
            }
        }
        lags
    }
}

fn mode(replica: &AvailabilityGroupReplica) -> Option<AvailabilityMode> {
    match replica
        .configure
        .as_ref()?
        .availability_mode_description
        .as_deref()?
    {
        "SYNCHRONOUS_COMMIT" => Some(AvailabilityMode::SynchronousCommit),
        "ASYNCHRONOUS_COMMIT" => Some(AvailabilityMode::AsynchronousCommit),
        _ => None,
    }
}

fn sync_state(text: Option<&str>) -> Option<SyncState> {
    Some(match text? {
        "SYNCHRONIZED" => SyncState::Synchronized,
        "SYNCHRONIZING" => SyncState::Synchronizing,
        "NOT SYNCHRONIZING" | "NOT_SYNCHRONIZING" => SyncState::NotSynchronizing,
        "REVERTING" => SyncState::Reverting,
        "INITIALIZING" => SyncState::Initializing,
        _ => return None,
    })
}

fn health(text: Option<&str>) -> SyncHealth {
    match text {
        Some("HEALTHY") => SyncHealth::Healthy,
        Some("PARTIALLY_HEALTHY") => SyncHealth::PartiallyHealthy,
        _ => SyncHealth::NotHealthy,
    }
}

/// SQL Server's view of the link from Arc's resource of its distributed availability group:
/// SQL Server's replica is the one that names no Azure resource (the managed instance's does).
pub fn side_view(dag: &SqlServerAvailabilityGroup, lags: &[(DatabaseName, u64)]) -> SideView {
    let replicas = &dag.properties.replicas.value;
    let local = replicas.iter().find(|r| r.replica_resource_id.is_none());
    let partner = replicas.iter().find(|r| r.replica_resource_id.is_some());
    let role = local
        .and_then(|r| r.state.as_ref())
        .and_then(|s| s.availability_group_replica_role.as_ref())
        .map(|r| match r {
            ArcReplicaRole::Primary => ReplicaRole::Primary,
            ArcReplicaRole::Secondary => ReplicaRole::Secondary,
            _ => ReplicaRole::Resolving,
        });
    let connected = local
        .and_then(|r| r.state.as_ref())
        .and_then(|s| s.connected_state_description.as_deref())
        == Some("CONNECTED");
    let rows = &dag.properties.databases.value;
    // SQL Server's own rows; a row for another replica (`isLocal: false`, the managed
    // instance's, as the primary's DMVs hold it) is that database's partner.
    let databases = rows
        .iter()
        .filter(|d| d.is_local != Some(false))
        .filter_map(|d| {
            let name = DatabaseName::new(d.database_name.as_deref()?).ok()?;
            let lag = lags.iter().find(|(n, _)| *n == name).map(|(_, l)| *l);
            let partner = rows
                .iter()
                .filter(|r| r.is_local == Some(false))
                .filter(|r| r.database_name.as_deref() == Some(name.as_str()))
                .find_map(|r| sync_state(r.synchronization_state_description.as_deref()))
                .map(|sync_state| PartnerReplica {
                    sync_state,
                    last_hardened_lsn: None,
                });
            Some(DatabaseView {
                sync_state: sync_state(d.synchronization_state_description.as_deref()),
                health: health(d.synchronization_health_description.as_deref()),
                last_hardened_lsn: None,
                end_of_log_lsn: None,
                partner,
                last_commit_lsn: None,
                seeding_percent: None,
                log_send_queue_kb: None,
                redo_queue_kb: None,
                lag_seconds: lag,
                last_error: None,
                replica_state: None,
                name,
            })
        })
        .collect();
    SideView {
        exists: true,
        role,
        mode: local.and_then(mode),
        partner_mode: partner.and_then(mode),
        connected,
        databases,
        version: None,
        update_policy: None,
        failover_mode: None,
        live: false,
    }
}

#[async_trait]
impl SourceServer for ArcSourceServer {
    async fn execute(&self, op: &SourceOp) -> Result<SourceReply, PortError> {
        let name = format!("{op:?}");
        let variant = name.split([' ', '{', '(']).next().unwrap_or_default();
        Err(PortError::permanent(
            UNSUPPORTED,
            format!(
                "the Arc route runs no T-SQL on SQL Server ({variant} is a step of the direct \
                 route); a link on the Arc route is changed through Arc's operations only"
            ),
        ))
    }

    async fn link_state(
        &self,
        link: &LinkName,
        databases: &[DatabaseName],
    ) -> Result<SideView, PortError> {
        let name = AgName::new(link.as_str())
            .map_err(|e| PortError::permanent("arc:LinkName", e.to_string()))?;
        let Some(dag) = self.arc.availability_group(&name).await? else {
            return Ok(SideView::unknown());
        };
        let lags = self.lags(databases).await;
        Ok(side_view(&dag, &lags))
    }

    async fn arc_begin(&self, op: &ArcOp) -> Result<ArmReply, PortError> {
        match self.arc.begin(op).await? {
            ArcStarted::Done(_) => Ok(ArmReply::Completed),
            ArcStarted::Accepted(operation) => Ok(ArmReply::Accepted(operation.operation)),
        }
    }

    async fn arc_poll(&self, op: &ArcOp, operation: &OperationRef) -> Result<PollReply, PortError> {
        let kept = ArcOperation {
            operation_id: op.operation_id().to_owned(),
            operation: operation.clone(),
        };
        match self.arc.poll(&kept).await? {
            ArcPoll::Running { retry_after } => Ok(PollReply::Running { retry_after }),
            ArcPoll::Succeeded(_) => Ok(PollReply::Succeeded),
        }
    }

    fn connection_warnings(&self) -> Vec<String> {
        vec![ARC_ROUTE_WARNING.to_owned()]
    }
}
