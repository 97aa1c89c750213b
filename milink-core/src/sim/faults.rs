//! Faults: what goes wrong in the simulated world, and when.
//!
//! A [`FaultPlan`] holds faults with triggers: at a virtual time, on the Nth call of one port
//! operation, or when a database's seeding reaches a percentage. World faults (a network
//! partition, a log backup) change the world; call faults (429, 5xx, 409 busy, a dropped
//! connection, a lost response) make one port call fail.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::lifecycle::{InstanceOp, SourceOp};
use crate::names::DatabaseName;
use crate::ports::{PortError, PortErrorKind};
use crate::time::Timestamp;

/// Serialises a map with non-string keys as a list of pairs (JSON keys must be strings).
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        map: &BTreeMap<K, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub(super) fn deserialize<'de, K, V, D>(d: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}

/// A T-SQL operation kind on SQL Server (one per [`SourceOp`] variant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum SourceCall {
    EnsureMasterKey,
    EnsureEndpointCertificate,
    EnsureMirroringEndpoint,
    ExportCertificatePublicKey,
    ImportInstanceCertificate,
    EnsureRootCaTrust,
    CreateAvailabilityGroup,
    GrantCreateAnyDatabase,
    CreateDistributedAvailabilityGroup,
    SetAvailabilityMode,
    Failover,
    ForceFailover,
    SetRoleSecondary,
    DropDistributedAvailabilityGroup,
    DropAvailabilityGroup,
}

impl SourceCall {
    /// The kind of `op`.
    pub fn of(op: &SourceOp) -> SourceCall {
        match op {
            SourceOp::EnsureMasterKey => SourceCall::EnsureMasterKey,
            SourceOp::EnsureEndpointCertificate { .. } => SourceCall::EnsureEndpointCertificate,
            SourceOp::EnsureMirroringEndpoint { .. } => SourceCall::EnsureMirroringEndpoint,
            SourceOp::ExportCertificatePublicKey { .. } => SourceCall::ExportCertificatePublicKey,
            SourceOp::ImportInstanceCertificate { .. } => SourceCall::ImportInstanceCertificate,
            SourceOp::EnsureRootCaTrust => SourceCall::EnsureRootCaTrust,
            SourceOp::CreateAvailabilityGroup { .. } => SourceCall::CreateAvailabilityGroup,
            SourceOp::GrantCreateAnyDatabase { .. } => SourceCall::GrantCreateAnyDatabase,
            SourceOp::CreateDistributedAvailabilityGroup { .. } => {
                SourceCall::CreateDistributedAvailabilityGroup
            }
            SourceOp::SetAvailabilityMode { .. } => SourceCall::SetAvailabilityMode,
            SourceOp::Failover { .. } => SourceCall::Failover,
            SourceOp::ForceFailover { .. } => SourceCall::ForceFailover,
            SourceOp::SetRoleSecondary { .. } => SourceCall::SetRoleSecondary,
            SourceOp::DropDistributedAvailabilityGroup { .. } => {
                SourceCall::DropDistributedAvailabilityGroup
            }
            SourceOp::DropAvailabilityGroup { .. } => SourceCall::DropAvailabilityGroup,
        }
    }
}

/// An ARM operation kind on the managed instance (one per [`InstanceOp`] variant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum InstanceCall {
    PutServerTrustCertificate,
    GetEndpointCertificate,
    PutLink,
    SetReplicationMode,
    SetLinkDatabases,
    Failover,
    SetRole,
    DeleteLink,
    DeleteServerTrustCertificate,
}

impl InstanceCall {
    /// The kind of `op`.
    pub fn of(op: &InstanceOp) -> InstanceCall {
        match op {
            InstanceOp::PutServerTrustCertificate { .. } => InstanceCall::PutServerTrustCertificate,
            InstanceOp::GetEndpointCertificate => InstanceCall::GetEndpointCertificate,
            InstanceOp::PutLink { .. } => InstanceCall::PutLink,
            InstanceOp::SetReplicationMode { .. } => InstanceCall::SetReplicationMode,
            InstanceOp::SetLinkDatabases { .. } => InstanceCall::SetLinkDatabases,
            InstanceOp::Failover { .. } => InstanceCall::Failover,
            InstanceOp::SetRole { .. } => InstanceCall::SetRole,
            InstanceOp::DeleteLink { .. } => InstanceCall::DeleteLink,
            InstanceOp::DeleteServerTrustCertificate { .. } => {
                InstanceCall::DeleteServerTrustCertificate
            }
        }
    }
}

/// One port call, as faults count and match them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Call {
    /// `SourceServer::execute` of one operation kind.
    Source(SourceCall),
    /// `SourceServer::link_state`.
    SourceLinkState,
    /// `ManagedInstance::begin` of one operation kind.
    Instance(InstanceCall),
    /// `ManagedInstance::poll`.
    Poll,
    /// `ManagedInstance::link_state`.
    InstanceLinkState,
    /// `ManagedInstance::full_backups` (T-SQL on the instance's endpoint).
    FullBackups,
    /// The T-SQL half of `ManagedInstance::link_state`: the instance's DMVs read on its
    /// endpoint ([`SimConfig::instance_tsql_reads`](super::SimConfig::instance_tsql_reads)).
    InstanceTsqlLinkState,
}

impl Call {
    /// A call to SQL Server (T-SQL).
    pub fn is_source(self) -> bool {
        matches!(self, Call::Source(_) | Call::SourceLinkState)
    }

    /// A T-SQL call on the managed instance's endpoint.
    pub fn is_instance_tsql(self) -> bool {
        matches!(self, Call::FullBackups | Call::InstanceTsqlLinkState)
    }

    /// A call to Azure Resource Manager.
    pub fn is_arm(self) -> bool {
        !self.is_source() && !self.is_instance_tsql()
    }

    /// A call that changes something.
    pub fn is_mutation(self) -> bool {
        match self {
            Call::Source(SourceCall::ExportCertificatePublicKey) => false,
            Call::Source(_) => true,
            Call::Instance(InstanceCall::GetEndpointCertificate) => false,
            Call::Instance(_) => true,
            Call::SourceLinkState
            | Call::Poll
            | Call::InstanceLinkState
            | Call::FullBackups
            | Call::InstanceTsqlLinkState => false,
        }
    }
}

/// An error to inject, as data (serialisable with the world).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjectedError {
    /// `PortError::code`.
    pub code: String,
    /// `PortError::message`.
    pub message: String,
    /// `PortError::transient`.
    pub transient: bool,
    /// `PortError::retry_after`.
    pub retry_after: Option<Duration>,
}

impl From<PortError> for InjectedError {
    fn from(e: PortError) -> Self {
        InjectedError {
            code: e.code(),
            message: e.message,
            transient: e.transient,
            retry_after: e.retry_after,
        }
    }
}

impl From<InjectedError> for PortError {
    fn from(e: InjectedError) -> Self {
        PortError {
            kind: PortErrorKind::parse(&e.code),
            message: e.message,
            transient: e.transient,
            retry_after: e.retry_after,
        }
    }
}

/// What goes wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fault {
    /// The network between SQL Server and the managed instance is cut for `duration`: log
    /// shipping stops, seeding restarts from zero once it heals.
    Partition {
        /// How long.
        duration: Duration,
    },
    /// A log backup on SQL Server (truncates the log; during seeding this fails the link with
    /// 1408/1412 unless trace flag 12381 is on).
    LogBackup {
        /// Database.
        database: DatabaseName,
    },
    /// ARM answers 429 `SubscriptionTooManyRequests` with `Retry-After`.
    Throttle {
        /// The `Retry-After` value.
        retry_after: Duration,
    },
    /// ARM answers a 5xx (500, 503, 504).
    ServerError {
        /// HTTP status.
        status: u16,
    },
    /// ARM answers 409 `ManagedInstanceIsBusy`.
    Busy,
    /// The connection to SQL Server drops before the batch runs.
    ConnectionDrop,
    /// The call runs but its response is lost (a timeout after the fact).
    LostResponse,
    /// Any error.
    Fail(InjectedError),
}

impl Fault {
    /// Faults that change the world rather than fail a call.
    pub fn is_world_fault(&self) -> bool {
        matches!(self, Fault::Partition { .. } | Fault::LogBackup { .. })
    }

    /// Whether this call fault can hit `call` (ARM faults hit ARM calls, a dropped connection
    /// hits SQL Server calls, a lost response hits mutations).
    pub(crate) fn can_hit(&self, call: Call) -> bool {
        match self {
            Fault::Throttle { .. } | Fault::ServerError { .. } | Fault::Busy => call.is_arm(),
            Fault::ConnectionDrop => call.is_source() || call.is_instance_tsql(),
            Fault::LostResponse => call.is_mutation(),
            Fault::Fail(_) => true,
            Fault::Partition { .. } | Fault::LogBackup { .. } => false,
        }
    }

    /// A short description for the event log.
    pub fn describe(&self) -> String {
        match self {
            Fault::Partition { duration } => format!("network partition for {duration:?}"),
            Fault::LogBackup { database } => format!("log backup of {database} on SQL Server"),
            Fault::Throttle { retry_after } => {
                format!("ARM 429 SubscriptionTooManyRequests, Retry-After {retry_after:?}")
            }
            Fault::ServerError { status } => format!("ARM {status}"),
            Fault::Busy => "ARM 409 ManagedInstanceIsBusy".to_string(),
            Fault::ConnectionDrop => "SQL Server connection dropped".to_string(),
            Fault::LostResponse => "response lost after the call ran".to_string(),
            Fault::Fail(e) => format!("injected error {}", e.code),
        }
    }
}

/// When a fault fires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Trigger {
    /// At a virtual time (a call fault then hits the next call it can hit).
    At(Timestamp),
    /// On the `nth` (1-based) call of `call`.
    OnCall {
        /// The call.
        call: Call,
        /// Which one, counting from 1.
        nth: u32,
    },
    /// When seeding of `database` reaches `percent`.
    SeedingReaches {
        /// Database.
        database: DatabaseName,
        /// Percent, 0..=100.
        percent: u8,
    },
}

/// A planned fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedFault {
    /// When.
    pub trigger: Trigger,
    /// What.
    pub fault: Fault,
    /// Whether it has fired.
    pub fired: bool,
}

/// The faults of a world, and how many times each call was made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultPlan {
    /// Planned faults, in the order they were added.
    pub faults: Vec<PlannedFault>,
    /// Calls made so far, per kind.
    #[serde(with = "pairs")]
    pub calls: BTreeMap<Call, u32>,
    /// Call faults whose time has come, waiting for a call they can hit.
    pub(crate) armed: Vec<Fault>,
}

impl FaultPlan {
    /// An empty plan.
    pub fn new() -> Self {
        FaultPlan::default()
    }

    /// Adds a fault.
    pub fn add(&mut self, trigger: Trigger, fault: Fault) {
        self.faults.push(PlannedFault {
            trigger,
            fault,
            fired: false,
        });
    }

    /// Adds a fault at a virtual time.
    pub fn at(mut self, at: Timestamp, fault: Fault) -> Self {
        self.add(Trigger::At(at), fault);
        self
    }

    /// Adds a fault on the `nth` call of `call`.
    pub fn on_call(mut self, call: Call, nth: u32, fault: Fault) -> Self {
        self.add(Trigger::OnCall { call, nth }, fault);
        self
    }

    /// Adds a fault when `database`'s seeding reaches `percent`.
    pub fn when_seeding_reaches(
        mut self,
        database: DatabaseName,
        percent: u8,
        fault: Fault,
    ) -> Self {
        self.add(Trigger::SeedingReaches { database, percent }, fault);
        self
    }

    /// How many times `call` was made.
    pub fn count(&self, call: Call) -> u32 {
        self.calls.get(&call).copied().unwrap_or(0)
    }

    /// The earliest unfired time trigger after `now`.
    pub(crate) fn next_time(&self, now: Timestamp) -> Option<Timestamp> {
        self.faults
            .iter()
            .filter(|f| !f.fired)
            .filter_map(|f| match f.trigger {
                Trigger::At(t) if t > now => Some(t),
                _ => None,
            })
            .min()
    }

    /// Fires time triggers due at `now`: world faults are returned to apply, call faults are
    /// armed.
    pub(crate) fn due_at(&mut self, now: Timestamp) -> Vec<Fault> {
        let mut world = Vec::new();
        for f in self.faults.iter_mut().filter(|f| !f.fired) {
            if let Trigger::At(t) = f.trigger
                && t <= now
            {
                f.fired = true;
                if f.fault.is_world_fault() {
                    world.push(f.fault.clone());
                } else {
                    self.armed.push(f.fault.clone());
                }
            }
        }
        world
    }

    /// Counts a call and returns the faults it triggers: world faults to apply first, then at
    /// most one call fault for the call itself.
    pub(crate) fn on_call_made(&mut self, call: Call) -> (Vec<Fault>, Option<Fault>) {
        let n = self.calls.entry(call).or_insert(0);
        *n += 1;
        let n = *n;
        let mut world = Vec::new();
        let mut hit = None;
        for f in self.faults.iter_mut().filter(|f| !f.fired) {
            if let Trigger::OnCall { call: c, nth } = f.trigger
                && c == call
                && nth == n
            {
                f.fired = true;
                if f.fault.is_world_fault() {
                    world.push(f.fault.clone());
                } else if hit.is_none() {
                    hit = Some(f.fault.clone());
                } else {
                    self.armed.push(f.fault.clone());
                }
            }
        }
        if hit.is_none()
            && let Some(i) = self.armed.iter().position(|f| f.can_hit(call))
        {
            hit = Some(self.armed.remove(i));
        }
        (world, hit)
    }

    /// Fires seeding triggers of `database` at or below `percent`.
    pub(crate) fn seeding_reached(&mut self, database: &DatabaseName, percent: u8) -> Vec<Fault> {
        let mut out = Vec::new();
        for f in self.faults.iter_mut().filter(|f| !f.fired) {
            if let Trigger::SeedingReaches {
                database: d,
                percent: p,
            } = &f.trigger
                && d == database
                && *p <= percent
            {
                f.fired = true;
                out.push(f.fault.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_call_fires_on_the_nth_call_only() {
        let call = Call::Instance(InstanceCall::PutLink);
        let mut plan = FaultPlan::new().on_call(call, 2, Fault::Busy);
        assert_eq!(plan.on_call_made(call), (vec![], None));
        assert_eq!(
            plan.on_call_made(Call::Poll),
            (vec![], None),
            "other calls do not count"
        );
        assert_eq!(plan.on_call_made(call), (vec![], Some(Fault::Busy)));
        assert_eq!(plan.on_call_made(call), (vec![], None));
        assert_eq!(plan.count(call), 3);
    }

    #[test]
    fn timed_call_faults_wait_for_a_call_they_can_hit() {
        let mut plan = FaultPlan::new().at(Timestamp::from_millis(10), Fault::ConnectionDrop);
        assert!(plan.due_at(Timestamp::from_millis(5)).is_empty());
        assert!(plan.due_at(Timestamp::from_millis(10)).is_empty());
        // An ARM call cannot be hit by a dropped SQL Server connection.
        assert_eq!(plan.on_call_made(Call::Poll).1, None);
        assert_eq!(
            plan.on_call_made(Call::SourceLinkState).1,
            Some(Fault::ConnectionDrop)
        );
    }

    #[test]
    fn every_op_kind_maps() {
        assert_eq!(
            SourceCall::of(&SourceOp::EnsureRootCaTrust),
            SourceCall::EnsureRootCaTrust
        );
        assert_eq!(
            InstanceCall::of(&InstanceOp::GetEndpointCertificate),
            InstanceCall::GetEndpointCertificate
        );
        assert!(!Call::Instance(InstanceCall::GetEndpointCertificate).is_mutation());
        assert!(Call::Source(SourceCall::Failover).is_mutation());
    }
}
