//! A small deterministic fake of both sides for long driver scenarios: SQL Server and the
//! managed instance share one world, so a role change on one side shows on the other, and every
//! call is counted so a test can prove a role change never ran twice.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::Secret;
use crate::lifecycle::{
    ArmFailoverType, AvailabilityMode, DatabaseView, FullBackup, InstanceOp, LinkName,
    OperationKind, OperationRef, ReplicaRole, SideView, SourceOp, SyncHealth, SyncState,
};
use crate::names::{DatabaseName, Lsn};
use crate::ports::{ArmReply, ManagedInstance, PollReply, PortError, SourceReply, SourceServer};
use crate::session::lock;
use crate::time::{Clock, Timestamp};

/// What one side holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct SideState {
    pub link_exists: bool,
    pub role: Option<ReplicaRole>,
    pub mode: Option<AvailabilityMode>,
}

/// The whole fake world.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct WorldState {
    pub master_key: bool,
    pub endpoint_certificate: bool,
    pub endpoint: bool,
    pub root_ca_trust: bool,
    pub instance_certificate_imported: bool,
    pub server_trust_certificate: bool,
    pub ag: bool,
    pub source: SideState,
    pub instance: SideState,
    /// Last hardened LSN, equal on both sides once replicating.
    pub lsn: u128,
    pub full_backup: Option<Timestamp>,
    /// Long-running operations: url -> polls left before it succeeds.
    pub operations: BTreeMap<String, u32>,
    pub next_operation: u32,
    /// Role changes accepted and still running (deferred mode): url -> the operation, applied
    /// when its last poll succeeds.
    pub running: BTreeMap<String, InstanceOp>,
}

/// One world behind both ports.
pub(crate) struct World {
    pub state: Mutex<WorldState>,
    /// Every call, in order, as `side:Operation`.
    pub calls: Mutex<Vec<String>>,
    /// Role changes that took effect, in order.
    pub applied: Mutex<Vec<String>>,
    /// Errors to return from the next calls, by call name.
    faults: Mutex<BTreeMap<String, VecDeque<PortError>>>,
    /// While set, the secondary never finishes seeding.
    pub seeding_blocked: AtomicBool,
    /// The master key password, as a real adapter would hold it.
    password: Secret,
    /// Real-time delay before role changes take effect (for drop tests).
    pub role_change_delay: Mutex<Option<Duration>>,
    /// Polls a long-running operation answers `Running` before it succeeds.
    pub polls_per_operation: u32,
    /// Readings (polls or link reads) a deferred role change runs before it takes effect.
    pub role_change_polls: std::sync::atomic::AtomicU32,
    /// "Accepted, still running": ARM role changes (failover, setRole, DELETE of the link) take
    /// effect when their operation completes, not when accepted; meanwhile the link resource
    /// shows `LinkFailoverInProgress` and a second role change gets 409 "already in progress".
    pub deferred_role_changes: AtomicBool,
    /// "Done, reply lost": the next calls named here take effect, then answer a timeout.
    lost_replies: Mutex<BTreeMap<String, u32>>,
    databases: Vec<DatabaseName>,
    /// The world's clock (the instance stamps its backups with it).
    clock: Arc<dyn Clock>,
}

impl World {
    pub fn new(databases: Vec<DatabaseName>, clock: Arc<dyn Clock>) -> Arc<World> {
        Arc::new(World {
            clock,
            state: Mutex::new(WorldState {
                lsn: 1_000,
                ..WorldState::default()
            }),
            calls: Mutex::new(Vec::new()),
            applied: Mutex::new(Vec::new()),
            faults: Mutex::new(BTreeMap::new()),
            seeding_blocked: AtomicBool::new(false),
            password: Secret::new("Pa55w0rd-never-in-the-journal"),
            role_change_delay: Mutex::new(None),
            polls_per_operation: 1,
            deferred_role_changes: AtomicBool::new(false),
            role_change_polls: std::sync::atomic::AtomicU32::new(3),
            lost_replies: Mutex::new(BTreeMap::new()),
            databases,
        })
    }

    pub fn password(&self) -> &Secret {
        &self.password
    }

    pub fn snapshot(&self) -> WorldState {
        lock(&self.state).clone()
    }

    pub fn calls(&self) -> Vec<String> {
        lock(&self.calls).clone()
    }

    pub fn applied(&self) -> Vec<String> {
        lock(&self.applied).clone()
    }

    /// Makes the next `n` calls named `call` take effect and then answer a timeout, as if the
    /// reply was lost on the way back.
    pub fn lose_replies(&self, call: &str, n: u32) {
        *lock(&self.lost_replies).entry(call.to_owned()).or_default() += n;
    }

    /// Whether this call's reply is to be lost (consumes one).
    fn reply_lost(&self, call: &str) -> bool {
        let mut lost = lock(&self.lost_replies);
        match lost.get_mut(call) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            Some(_) | None => false,
        }
    }

    /// How many times `call` was made.
    pub fn count(&self, call: &str) -> usize {
        lock(&self.calls).iter().filter(|c| *c == call).count()
    }

    /// Makes the next calls named `call` (e.g. `sql:EnsureEndpointCertificate`) fail with
    /// `errors`, one per call.
    pub fn inject(&self, call: &str, errors: impl IntoIterator<Item = PortError>) {
        lock(&self.faults)
            .entry(call.to_owned())
            .or_default()
            .extend(errors);
    }

    /// Logs a call; fails it if a fault is queued for it.
    fn record(&self, call: String) -> Result<(), PortError> {
        let fault = lock(&self.faults)
            .get_mut(&call)
            .and_then(|queue| queue.pop_front());
        lock(&self.calls).push(call);
        fault.map_or(Ok(()), Err)
    }

    fn seeded(&self, s: &WorldState) -> bool {
        s.source.link_exists
            && s.instance.link_exists
            && !self
                .seeding_blocked
                .load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn role_change_pause(&self) {
        let delay = *lock(&self.role_change_delay);
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
    }

    fn begin_operation(&self, state: &mut WorldState) -> ArmReply {
        state.next_operation += 1;
        let url = format!(
            "https://management.azure.com/subscriptions/s/providers/Microsoft.Sql/locations/l/operations/{}",
            state.next_operation
        );
        state
            .operations
            .insert(url.clone(), self.polls_per_operation);
        ArmReply::Accepted(OperationRef {
            url,
            kind: OperationKind::AzureAsyncOperation,
            resource: None,
        })
    }

    fn view(&self, side: &SideState, lsn: u128, seeded: bool) -> SideView {
        let synchronized = side.mode == Some(AvailabilityMode::SynchronousCommit);
        SideView {
            exists: side.link_exists,
            role: side.role,
            mode: side.mode,
            partner_mode: None,
            version: None,
            update_policy: None,
            failover_mode: None,
            connected: seeded,
            databases: if side.link_exists {
                self.databases
                    .iter()
                    .map(|name| DatabaseView {
                        name: name.clone(),
                        sync_state: Some(if !seeded {
                            SyncState::NotSynchronizing
                        } else if synchronized {
                            SyncState::Synchronized
                        } else {
                            SyncState::Synchronizing
                        }),
                        health: if seeded {
                            SyncHealth::Healthy
                        } else {
                            SyncHealth::NotHealthy
                        },
                        last_hardened_lsn: seeded.then(|| Lsn::new(lsn).ok()).flatten(),
                        end_of_log_lsn: None,
                        partner: None,
                        last_commit_lsn: seeded.then(|| Lsn::new(lsn).ok()).flatten(),
                        seeding_percent: None,
                        log_send_queue_kb: Some(0),
                        redo_queue_kb: Some(0),
                        lag_seconds: Some(0),
                        last_error: None,
                        replica_state: None,
                    })
                    .collect()
            } else {
                Vec::new()
            },
            live: false,
        }
    }
}

fn variant<T: serde::Serialize>(v: &T) -> String {
    super::variant_name(v)
}

/// The SQL Server face of the world.
#[derive(Clone)]
pub(crate) struct FakeSource(pub Arc<World>);

/// The managed instance face of the world.
#[derive(Clone)]
pub(crate) struct FakeInstance(pub Arc<World>);

#[async_trait]
impl SourceServer for FakeSource {
    async fn execute(&self, op: &SourceOp) -> Result<SourceReply, PortError> {
        let world = &self.0;
        let name = format!("sql:{}", variant(op));
        world.record(name.clone())?;
        let role_change = matches!(
            op,
            SourceOp::Failover { .. }
                | SourceOp::ForceFailover { .. }
                | SourceOp::SetRoleSecondary { .. }
        );
        if role_change {
            world.role_change_pause().await;
        }
        let result = self.apply(op);
        if role_change && result.is_ok() {
            lock(&world.applied).push(name.clone());
        }
        if result.is_ok() && world.reply_lost(&name) {
            return Err(PortError::transient(
                "timeout",
                "no answer; the call may or may not have taken effect",
            ));
        }
        result
    }

    async fn link_state(
        &self,
        _link: &LinkName,
        _databases: &[DatabaseName],
    ) -> Result<SideView, PortError> {
        let world = &self.0;
        world.record("sql:link_state".into())?;
        let s = lock(&world.state);
        let seeded = world.seeded(&s);
        Ok(world.view(&s.source, s.lsn, seeded))
    }
}

impl FakeSource {
    fn apply(&self, op: &SourceOp) -> Result<SourceReply, PortError> {
        let world = &self.0;
        let mut s = lock(&world.state);
        match op {
            SourceOp::EnsureMasterKey => {
                // A real adapter sends the password in its batch; it never leaves the adapter.
                s.master_key = !world.password.is_empty();
            }
            SourceOp::EnsureEndpointCertificate { .. } => s.endpoint_certificate = true,
            SourceOp::EnsureMirroringEndpoint { .. } => s.endpoint = true,
            SourceOp::ExportCertificatePublicKey { .. } => {
                if !s.endpoint_certificate {
                    return Err(PortError::permanent("sql:15151", "certificate not found"));
                }
                return Ok(SourceReply::PublicKey(vec![0x30, 0x82, 0x01, 0x0a]));
            }
            SourceOp::ImportInstanceCertificate { .. } => s.instance_certificate_imported = true,
            SourceOp::EnsureRootCaTrust => s.root_ca_trust = true,
            SourceOp::CreateAvailabilityGroup { .. } => s.ag = true,
            SourceOp::GrantCreateAnyDatabase { .. } => {}
            SourceOp::CreateDistributedAvailabilityGroup { .. } => {
                if !s.source.link_exists {
                    s.source = SideState {
                        link_exists: true,
                        role: Some(ReplicaRole::Primary),
                        mode: Some(AvailabilityMode::AsynchronousCommit),
                    };
                }
            }
            SourceOp::SetAvailabilityMode { mode, .. } => {
                s.source.mode = Some(*mode);
            }
            // Run on the primary: the secondary (the instance) takes over.
            SourceOp::Failover { .. } => {
                if s.source.role != Some(ReplicaRole::Primary) {
                    return Err(PortError::permanent(
                        "sql:41142",
                        "the availability replica is not the primary",
                    ));
                }
                s.source.role = Some(ReplicaRole::Secondary);
                s.instance.role = Some(ReplicaRole::Primary);
            }
            // Run on SQL Server as secondary: SQL Server takes over.
            SourceOp::ForceFailover { .. } => {
                s.source.role = Some(ReplicaRole::Primary);
                s.instance.role = Some(ReplicaRole::Secondary);
            }
            SourceOp::SetRoleSecondary { .. } => s.source.role = Some(ReplicaRole::Secondary),
            SourceOp::DropDistributedAvailabilityGroup { .. } => s.source = SideState::default(),
            SourceOp::DropAvailabilityGroup { .. } => s.ag = false,
        }
        Ok(SourceReply::Done)
    }
}

#[async_trait]
impl ManagedInstance for FakeInstance {
    async fn begin(&self, op: &InstanceOp) -> Result<ArmReply, PortError> {
        let world = &self.0;
        let name = format!("arm:{}", variant(op));
        world.record(name.clone())?;
        let role_change = matches!(
            op,
            InstanceOp::Failover { .. }
                | InstanceOp::SetRole { .. }
                | InstanceOp::DeleteLink { .. }
        );
        if role_change {
            world.role_change_pause().await;
        }
        let deferred = role_change
            && world
                .deferred_role_changes
                .load(std::sync::atomic::Ordering::SeqCst);
        let result = if deferred {
            self.defer(op)
        } else {
            let result = self.apply(op);
            if role_change && result.is_ok() {
                lock(&world.applied).push(name.clone());
            }
            result
        };
        if result.is_ok() && world.reply_lost(&name) {
            return Err(PortError::transient(
                "timeout",
                "no answer; the call may or may not have taken effect",
            ));
        }
        result
    }

    async fn poll(&self, operation: &OperationRef) -> Result<PollReply, PortError> {
        let world = &self.0;
        world.record("arm:poll".into())?;
        let mut s = lock(&world.state);
        match s.operations.get_mut(&operation.url) {
            None => Err(PortError::permanent(
                "arm:404:OperationNotFound",
                "no such operation",
            )),
            Some(0) => {
                drop(s);
                self.complete(&operation.url);
                Ok(PollReply::Succeeded)
            }
            Some(left) => {
                *left -= 1;
                Ok(PollReply::Running { retry_after: None })
            }
        }
    }

    async fn link_state(&self, _link: &LinkName) -> Result<SideView, PortError> {
        let world = &self.0;
        world.record("arm:link_state".into())?;
        // Time passes for a running operation whether or not anyone polls it.
        let due: Vec<String> = {
            let mut s = lock(&world.state);
            let urls: Vec<String> = s.running.keys().cloned().collect();
            urls.into_iter()
                .filter(|url| match s.operations.get_mut(url) {
                    Some(0) => true,
                    Some(left) => {
                        *left -= 1;
                        false
                    }
                    None => false,
                })
                .collect()
        };
        for url in due {
            self.complete(&url);
        }
        let s = lock(&world.state);
        let seeded = world.seeded(&s);
        let mut view = world.view(&s.instance, s.lsn, seeded);
        let failing_over = s
            .running
            .values()
            .any(|op| matches!(op, InstanceOp::Failover { .. } | InstanceOp::SetRole { .. }));
        if failing_over {
            for d in &mut view.databases {
                d.replica_state = Some("LinkFailoverInProgress".to_owned());
            }
        }
        Ok(view)
    }

    async fn full_backups(&self, databases: &[DatabaseName]) -> Result<Vec<FullBackup>, PortError> {
        let world = &self.0;
        world.record("arm:full_backups".into())?;
        let mut s = lock(&world.state);
        // The instance takes its first full backup once it has the data.
        if s.instance.link_exists && s.full_backup.is_none() {
            s.full_backup = Some(world.clock.now());
        }
        Ok(databases
            .iter()
            .map(|d| FullBackup {
                database: d.clone(),
                finished: s.full_backup,
            })
            .collect())
    }
}

impl FakeInstance {
    /// A deferred role change's operation finished: it takes effect now.
    fn complete(&self, url: &str) {
        let world = &self.0;
        let op = lock(&world.state).running.remove(url);
        if let Some(op) = op {
            let name = format!("arm:{}", variant(&op));
            let _ = self.apply(&op);
            lock(&world.applied).push(name);
            // `apply` opened an operation of its own for the same change: drop it.
            let mut s = lock(&world.state);
            let last = format!(
                "https://management.azure.com/subscriptions/s/providers/Microsoft.Sql/locations/l/operations/{}",
                s.next_operation
            );
            s.operations.remove(&last);
        }
    }

    /// Accepts a role change that takes effect only when its operation completes.
    fn defer(&self, op: &InstanceOp) -> Result<ArmReply, PortError> {
        let world = &self.0;
        let mut s = lock(&world.state);
        // ARM answers a DELETE of a resource being deleted with the running operation.
        if let InstanceOp::DeleteLink { .. } = op
            && let Some(url) = s
                .running
                .iter()
                .find(|(_, o)| matches!(o, InstanceOp::DeleteLink { .. }))
                .map(|(url, _)| url.clone())
        {
            return Ok(ArmReply::Accepted(OperationRef {
                url,
                kind: OperationKind::AzureAsyncOperation,
                resource: None,
            }));
        }
        if !s.running.is_empty() {
            return Err(PortError::permanent(
                "arm:409:DistributedAvailabilityGroupSetRoleChangeRoleAlreadyInProgress",
                "a role change on this link is already in progress",
            ));
        }
        if let InstanceOp::DeleteLink { .. } = op
            && !s.instance.link_exists
        {
            return Ok(ArmReply::Completed);
        }
        let reply = world.begin_operation(&mut s);
        if let ArmReply::Accepted(operation) = &reply {
            let polls = world
                .role_change_polls
                .load(std::sync::atomic::Ordering::SeqCst);
            s.operations.insert(operation.url.clone(), polls);
            s.running.insert(operation.url.clone(), op.clone());
        }
        Ok(reply)
    }

    fn apply(&self, op: &InstanceOp) -> Result<ArmReply, PortError> {
        let world = &self.0;
        let mut s = lock(&world.state);
        match op {
            InstanceOp::PutServerTrustCertificate { .. } => {
                s.server_trust_certificate = true;
                Ok(ArmReply::Completed)
            }
            InstanceOp::GetEndpointCertificate => {
                Ok(ArmReply::PublicKey(vec![0x30, 0x82, 0x02, 0x0b]))
            }
            InstanceOp::PutLink { .. } => {
                if !s.instance.link_exists {
                    s.instance = SideState {
                        link_exists: true,
                        role: Some(ReplicaRole::Secondary),
                        mode: Some(AvailabilityMode::AsynchronousCommit),
                    };
                }
                Ok(world.begin_operation(&mut s))
            }
            InstanceOp::SetReplicationMode { mode, .. } => {
                s.instance.mode = Some(*mode);
                Ok(world.begin_operation(&mut s))
            }
            InstanceOp::SetLinkDatabases { .. } => Ok(world.begin_operation(&mut s)),
            InstanceOp::Failover { failover_type, .. } => {
                // The secondary becomes primary. A planned one needs synchronous commit.
                if *failover_type == ArmFailoverType::Planned
                    && s.instance.mode != Some(AvailabilityMode::SynchronousCommit)
                {
                    return Err(PortError::permanent(
                        "arm:409:DistributedAvailabilityGroupFailoverSecondariesNotSynchronizing",
                        "a planned failover needs synchronizing secondaries",
                    ));
                }
                let state = &mut *s;
                std::mem::swap(&mut state.instance.role, &mut state.source.role);
                Ok(world.begin_operation(&mut s))
            }
            InstanceOp::SetRole { role, .. } => {
                s.instance.role = Some(if *role == crate::lifecycle::Side::ManagedInstance {
                    ReplicaRole::Primary
                } else {
                    ReplicaRole::Secondary
                });
                Ok(world.begin_operation(&mut s))
            }
            InstanceOp::DeleteLink { .. } => {
                s.instance = SideState::default();
                Ok(world.begin_operation(&mut s))
            }
            InstanceOp::DeleteServerTrustCertificate { .. } => {
                s.server_trust_certificate = false;
                Ok(ArmReply::Completed)
            }
        }
    }
}
