//! Effects: what the machine asks the driver to do, as data.
//!
//! Every effect that touches a server carries the [`StepId`] the machine expects back in the
//! observation, and re-issuing it after a crash is safe: it is idempotent (guarded T-SQL, PUT,
//! PATCH to the same value, reads), or it is one of the calls below, which must not run twice.
//!
//! # Calls that must not run twice
//!
//! One place states, for each non-idempotent effect, how the machine knows whether it took
//! effect and what it does when it does not know. Three situations are covered for each:
//! *accepted but not finished* (an ARM operation still running), *finished but the reply was
//! lost* (a timeout, a dropped connection, a crash before the reply was journaled), and
//! *crashed in between* (the call may or may not have been sent). The driver never retries these
//! calls itself except after a 429, which the service refuses before acting
//! ([`crate::ports::PortError::is_throttled`]).
//!
//! | Effect | Evidence that it took effect | Accepted, not finished | Reply lost / crash |
//! |---|---|---|---|
//! | T-SQL `FAILOVER` (planned, [`SourceOp::Failover`]) | both sides' roles: target PRIMARY, old SECONDARY | (synchronous statement) | read the roles: changed → verify; unchanged → back to the catch-up gate on new readings, never re-sent on old ones; moving → read again |
//! | ARM `failover` Planned ([`InstanceOp::Failover`]) | the roles; the link resource's `replicaState` `LinkFailoverInProgress` while it runs; 409 `…SetRoleChangeRoleAlreadyInProgress` / `…SetRoleInstanceAlreadyInRequestedRole` | poll the saved operation URL until it ends, across resume, retry and crash | as T-SQL `FAILOVER`, and while `LinkFailoverInProgress` shows, or a 409 says so, read again later |
//! | T-SQL `FORCE_FAILOVER_ALLOW_DATA_LOSS` ([`SourceOp::ForceFailover`]) | the target's role (the old primary may be down) | (synchronous) | target PRIMARY → verify; target SECONDARY with the old primary PRIMARY or unreadable → send again; else read again |
//! | ARM `failover` ForcedAllowDataLoss | as above, plus `LinkFailoverInProgress` and the 409 answers | poll the saved URL | as above; never while `LinkFailoverInProgress` shows |
//! | T-SQL `SET (ROLE = SECONDARY)` ([`SourceOp::SetRoleSecondary`]): split-brain repair, and the one-way cutover's fence | SQL Server's role | (synchronous) | repair: read both roles first; the kept side must be PRIMARY, the other PRIMARY to be demoted, already SECONDARY → verify. Fence: SQL Server SECONDARY → verify the logs; PRIMARY → send again |
//! | ARM `setRole` ([`InstanceOp::SetRole`]) | the instance's role; `LinkFailoverInProgress`; the 409 answers | poll the saved URL | as the repair above |
//! | ARM `DELETE` of the link ([`InstanceOp::DeleteLink`]) | the link resource is absent (it existed: it replicated or its join was confirmed) | poll the saved URL | read the link: absent → go on (and compare the logs); present → the removal gate again, then `DELETE` (idempotent in ARM: a `DELETE` of a resource being deleted answers the running operation); the instance unreadable → read again, never delete on a guess |
//! | The redirect hook ([`Effect::Redirect`]) | none outside the application | (synchronous) | called again: **at least once** per redirect, each call carrying the same [`crate::lifecycle::Machine::redirect_id`] so the application can ignore a repeat |
//!
//! An accepted operation whose step timed out, or whose poll failed transiently, is followed by
//! its URL on resume and retry; only one that reported failure is judged by a reading instead.

use serde::{Deserialize, Serialize};

use crate::names::{AgName, CertificateName, DatabaseName, LinkMode, LinkName, MiFqdn};
use crate::time::Date;
use crate::tsql::{CreateAgSpec, CreateDagSpec, MirroringEndpointSpec};

use super::spec::{FailoverMode, SeedingMode, Side};

/// Identifies one issued effect; the observation that answers it carries the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StepId(pub u64);

impl std::fmt::Display for StepId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// `AVAILABILITY_MODE` of the DAG replicas, and REST `replicationMode`: one type, the T-SQL
/// builders'.
pub use crate::tsql::AvailabilityMode;

/// A T-SQL operation on SQL Server. The adapter renders it with the `tsql` builders: an op
/// whose builder takes a spec struct carries that spec, and what is not the machine's to know
/// (the master key password, the Azure root CA certificates) comes from the adapter's
/// configuration instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceOp {
    /// Create the database master key in `master` if absent (password from the adapter's config).
    EnsureMasterKey,
    /// Create the endpoint certificate if absent.
    EnsureEndpointCertificate {
        /// Certificate name.
        name: CertificateName,
        /// Certificate subject.
        subject: String,
        /// Expiry date.
        expiry: Date,
    },
    /// Create the mirroring endpoint if absent (started; the machine asks for certificate
    /// authentication and AES).
    EnsureMirroringEndpoint {
        /// The endpoint, as [`crate::tsql::create_mirroring_endpoint`] takes it.
        spec: MirroringEndpointSpec,
    },
    /// Read the endpoint certificate's public key (`CERTENCODED`); answered with
    /// [`super::input::Observation::PublicKey`].
    ExportCertificatePublicKey {
        /// Certificate name.
        name: CertificateName,
    },
    /// Import the managed instance's endpoint certificate, named after its FQDN, if absent.
    ImportInstanceCertificate {
        /// The managed instance FQDN, which is also the certificate name.
        fqdn: MiFqdn,
        /// The DER bytes of the certificate.
        der: Vec<u8>,
    },
    /// Import the Azure root CAs and register them with `sp_certificate_add_issuer` (idempotent;
    /// the blobs come from the adapter's configuration).
    EnsureRootCaTrust,
    /// Create the availability group on SQL Server if absent.
    CreateAvailabilityGroup {
        /// The AG, as [`crate::tsql::create_availability_group`] takes it; no databases when
        /// the managed instance is the initial primary.
        spec: CreateAgSpec,
    },
    /// `ALTER AVAILABILITY GROUP … GRANT CREATE ANY DATABASE` (managed instance initial primary).
    GrantCreateAnyDatabase {
        /// AG name.
        ag: AgName,
    },
    /// Create the distributed availability group on SQL Server if absent.
    CreateDistributedAvailabilityGroup {
        /// The DAG (the link), as [`crate::tsql::create_distributed_availability_group`]
        /// takes it.
        spec: CreateDagSpec,
    },
    /// Change the DAG's availability mode on both replicas.
    SetAvailabilityMode {
        /// DAG (link) name.
        dag: LinkName,
        /// The SQL Server AG.
        sql_ag: AgName,
        /// The managed instance AG.
        mi_ag: AgName,
        /// The new mode.
        mode: AvailabilityMode,
    },
    /// `ALTER AVAILABILITY GROUP [dag] FAILOVER` on the primary (SQL Server 2022 CU13+).
    Failover {
        /// DAG (link) name.
        dag: LinkName,
    },
    /// `ALTER AVAILABILITY GROUP [dag] FORCE_FAILOVER_ALLOW_DATA_LOSS` on SQL Server as secondary.
    ForceFailover {
        /// DAG (link) name.
        dag: LinkName,
    },
    /// `ALTER AVAILABILITY GROUP [dag] SET (ROLE = SECONDARY)` (split-brain repair).
    SetRoleSecondary {
        /// DAG (link) name.
        dag: LinkName,
    },
    /// Drop the DAG if it exists.
    DropDistributedAvailabilityGroup {
        /// DAG (link) name.
        dag: LinkName,
    },
    /// Drop the AG if it exists (databases stay on SQL Server).
    DropAvailabilityGroup {
        /// AG name.
        ag: AgName,
    },
}

impl SourceOp {
    /// Whether the operation changes a role (`FAILOVER`, `FORCE_FAILOVER_ALLOW_DATA_LOSS`,
    /// `SET (ROLE = SECONDARY)`): not safe to repeat blindly, so the driver never retries it and
    /// the machine reads the roles before issuing it again.
    pub fn is_role_change(&self) -> bool {
        match self {
            SourceOp::Failover { .. }
            | SourceOp::ForceFailover { .. }
            | SourceOp::SetRoleSecondary { .. } => true,
            SourceOp::EnsureMasterKey
            | SourceOp::EnsureEndpointCertificate { .. }
            | SourceOp::EnsureMirroringEndpoint { .. }
            | SourceOp::ExportCertificatePublicKey { .. }
            | SourceOp::ImportInstanceCertificate { .. }
            | SourceOp::EnsureRootCaTrust
            | SourceOp::CreateAvailabilityGroup { .. }
            | SourceOp::GrantCreateAnyDatabase { .. }
            | SourceOp::CreateDistributedAvailabilityGroup { .. }
            | SourceOp::SetAvailabilityMode { .. }
            | SourceOp::DropDistributedAvailabilityGroup { .. }
            | SourceOp::DropAvailabilityGroup { .. } => false,
        }
    }
}

/// REST `failoverType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ArmFailoverType {
    /// `Planned`: no data loss; the service refuses with 409 unless synchronized.
    Planned,
    /// `ForcedAllowDataLoss`.
    ForcedAllowDataLoss,
}

/// REST `roleChangeType` of `setRole`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RoleChangeType {
    /// `Planned`.
    Planned,
    /// `Forced`.
    Forced,
}

/// The writable properties of the link resource (`PUT …/distributedAvailabilityGroups/{link}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkProperties {
    /// `instanceLinkRole`: `Secondary` when SQL Server is the initial primary.
    pub instance_link_role: Side,
    /// `instanceAvailabilityGroupName`.
    pub instance_ag: AgName,
    /// `partnerAvailabilityGroupName`.
    pub partner_ag: AgName,
    /// `partnerEndpoint`: `TCP://host:port`.
    pub partner_endpoint: String,
    /// `failoverMode`.
    pub failover_mode: FailoverMode,
    /// `seedingMode`.
    pub seeding_mode: SeedingMode,
    /// `linkMode` (sent only with the preview api-version when MultiDatabase).
    pub link_mode: LinkMode,
    /// `databases[].databaseName`.
    pub databases: Vec<DatabaseName>,
}

/// An Azure Resource Manager operation on the managed instance. Mutations may be long-running;
/// the adapter answers with the operation reference to poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InstanceOp {
    /// `PUT …/serverTrustCertificates/{name}` with the SQL Server certificate's public key.
    PutServerTrustCertificate {
        /// Certificate name on the instance.
        name: CertificateName,
        /// DER bytes of the public key.
        public_blob: Vec<u8>,
    },
    /// `GET …/endpointCertificates/DATABASE_MIRRORING`; answered with
    /// [`super::input::Observation::PublicKey`].
    GetEndpointCertificate,
    /// `PUT …/distributedAvailabilityGroups/{link}`: the instance joins the link.
    PutLink {
        /// Link name.
        link: LinkName,
        /// Properties to send.
        properties: LinkProperties,
    },
    /// `PATCH …/distributedAvailabilityGroups/{link}` with `replicationMode`.
    SetReplicationMode {
        /// Link name.
        link: LinkName,
        /// The new mode.
        mode: AvailabilityMode,
    },
    /// `PATCH …/distributedAvailabilityGroups/{link}` with `databases`: the link's database
    /// list becomes `databases` (MultiDatabase links only; sent with the preview api-version,
    /// the only one with `linkMode`). The list replaces the membership: a database left out
    /// leaves the link, and its copy on the instance becomes independent.
    SetLinkDatabases {
        /// Link name.
        link: LinkName,
        /// The whole new list.
        databases: Vec<DatabaseName>,
    },
    /// `POST …/distributedAvailabilityGroups/{link}/failover`.
    Failover {
        /// Link name.
        link: LinkName,
        /// Planned or forced.
        failover_type: ArmFailoverType,
    },
    /// `POST …/distributedAvailabilityGroups/{link}/setRole`.
    SetRole {
        /// Link name.
        link: LinkName,
        /// The role the instance should take.
        role: Side,
        /// Planned or forced.
        change: RoleChangeType,
    },
    /// `DELETE …/distributedAvailabilityGroups/{link}`: removes the link; the instance's
    /// databases become independent and writable.
    DeleteLink {
        /// Link name.
        link: LinkName,
    },
    /// `DELETE …/serverTrustCertificates/{name}`.
    DeleteServerTrustCertificate {
        /// Certificate name on the instance.
        name: CertificateName,
    },
}

impl InstanceOp {
    /// Whether the operation changes a role or removes the link (`failover`, `setRole`,
    /// `DELETE` of the link): not safe to repeat blindly (see [`SourceOp::is_role_change`]).
    pub fn is_role_change(&self) -> bool {
        match self {
            InstanceOp::Failover { .. }
            | InstanceOp::SetRole { .. }
            | InstanceOp::DeleteLink { .. } => true,
            InstanceOp::PutServerTrustCertificate { .. }
            | InstanceOp::GetEndpointCertificate
            | InstanceOp::PutLink { .. }
            | InstanceOp::SetReplicationMode { .. }
            | InstanceOp::SetLinkDatabases { .. }
            | InstanceOp::DeleteServerTrustCertificate { .. } => false,
        }
    }

    /// Whether the operation only reads.
    pub fn is_read_only(&self) -> bool {
        matches!(self, InstanceOp::GetEndpointCertificate)
    }
}

/// A saved long-running ARM operation: the URL to poll survives a crash in the machine's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationRef {
    /// The URL from `Azure-AsyncOperation` or `Location`.
    pub url: String,
    /// Which header it came from (decides how completion is read).
    pub kind: OperationKind,
    /// For a `PUT`: the resource's path and query under the management endpoint
    /// (`/subscriptions/…/distributedAvailabilityGroups/{dag}?api-version=…`), read with a final
    /// `GET` once the operation succeeds, so success means the resource's `provisioningState`
    /// did too. Absent in states saved before it existed, and for other operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

impl OperationRef {
    /// An operation to poll at `url`, with no resource to read when it succeeds.
    pub fn new(url: impl Into<String>, kind: OperationKind) -> Self {
        OperationRef {
            url: url.into(),
            kind,
            resource: None,
        }
    }
}

/// Where an operation URL came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OperationKind {
    /// `Azure-AsyncOperation`: a status document (`InProgress`, `Succeeded`, …).
    AzureAsyncOperation,
    /// `Location`: 202 while running, then 200/204.
    Location,
}

/// A step the Arc route asks of Azure Arc (`Microsoft.AzureArcData`) on SQL Server's side:
/// each is one long-running Arc operation, rendered from the link's spec by
/// [`crate::arc::route::link_op`]. The steps inside it (the endpoint, the availability group, the
/// certificate exchange, the distributed availability group, the switch to synchronous commit)
/// run in the Arc extension, where milink does not see them; the machine follows the operation
/// by its URL and then reads what it can observe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArcLinkOp {
    /// `createManagedInstanceLink`: SQL Server's availability group, the distributed
    /// availability group and the managed instance's side of the link, in one operation.
    CreateLink,
    /// `failoverMiLink` to the managed instance: planned (`force: false`; Arc switches to
    /// synchronous commit and waits for SYNCHRONIZED itself), or forced with the
    /// acknowledgement naming the link.
    Failover {
        /// Planned, or forced with its acknowledgement.
        kind: super::input::FailoverKind,
    },
    /// `deleteMiLink`: drops the distributed availability group on SQL Server and deletes the
    /// link on the managed instance (the availability group stays).
    DeleteLink,
}

impl ArcLinkOp {
    /// The operation's id in the REST specs.
    pub fn operation_id(&self) -> &'static str {
        match self {
            ArcLinkOp::CreateLink => "SqlServerAvailabilityGroups_CreateManagedInstanceLink",
            ArcLinkOp::Failover { .. } => "SqlServerAvailabilityGroups_failoverMiLink",
            ArcLinkOp::DeleteLink => "SqlServerAvailabilityGroups_deleteMiLink",
        }
    }
}

/// A read of link state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Probe {
    /// Both sides' view of the link (roles, modes, per-database state and LSNs, seeding);
    /// answered with [`super::input::Observation::Link`].
    Link,
    /// Both sides' view of the link as [`Probe::Link`], except that the managed instance is
    /// read from its own DMVs only, with what only ARM knows kept from the last whole reading
    /// ([`crate::ports::ManagedInstance::link_state_live`]); answered with
    /// [`super::input::Observation::Link`]. The catch-up gate asks for it between whole
    /// readings: the values it decides on (modes, synchronization states, LSNs) are all in the
    /// DMVs, and an ARM read would add hundreds of milliseconds to each reading.
    LinkLive,
    /// The managed instance's latest full backup per database; answered with
    /// [`super::input::Observation::FullBackups`].
    FirstFullBackups,
    /// The client sessions and open transactions on the link's databases on `side` (the
    /// current primary), read by the catch-up gate once the LSNs are equal; answered with
    /// [`super::input::Observation::Workload`].
    Workload {
        /// The side read.
        side: super::spec::Side,
    },
}

/// What the machine tells the driver to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    /// Run a T-SQL operation on SQL Server.
    Source {
        /// The step the observation must carry.
        step: StepId,
        /// The operation.
        op: SourceOp,
    },
    /// Begin an ARM operation on the managed instance.
    Instance {
        /// The step the observation must carry.
        step: StepId,
        /// The operation.
        op: InstanceOp,
    },
    /// Poll a long-running ARM operation.
    PollOperation {
        /// The step the observation must carry.
        step: StepId,
        /// The operation to poll.
        operation: OperationRef,
    },
    /// Begin an Arc operation on SQL Server's side (the Arc route).
    Arc {
        /// The step the observation must carry.
        step: StepId,
        /// The operation.
        op: ArcLinkOp,
    },
    /// Poll a long-running Arc operation (never send it again).
    PollArc {
        /// The step the observation must carry.
        step: StepId,
        /// The operation that was accepted.
        op: ArcLinkOp,
        /// Its URL, as accepted and journaled.
        operation: OperationRef,
    },
    /// Read state from one or both sides.
    Probe {
        /// The step the observation must carry.
        step: StepId,
        /// What to read.
        probe: Probe,
    },
    /// Tell the application its workload must now connect to `primary` (issued after the new
    /// primary accepts writes, before anything is dropped on the old side).
    Redirect {
        /// The step the observation must carry.
        step: StepId,
        /// The side that is now primary.
        primary: Side,
    },
}

impl Effect {
    /// Whether the effect changes a role or removes the link and so must not run twice.
    pub fn is_role_change(&self) -> bool {
        match self {
            Effect::Source { op, .. } => op.is_role_change(),
            Effect::Instance { op, .. } => op.is_role_change(),
            // Each Arc step is judged by a reading before it is sent again.
            Effect::Arc { .. } => true,
            Effect::PollOperation { .. }
            | Effect::PollArc { .. }
            | Effect::Probe { .. }
            | Effect::Redirect { .. } => false,
        }
    }

    /// The step this effect expects an observation for.
    pub fn step(&self) -> StepId {
        match self {
            Effect::Source { step, .. }
            | Effect::Instance { step, .. }
            | Effect::PollOperation { step, .. }
            | Effect::Arc { step, .. }
            | Effect::PollArc { step, .. }
            | Effect::Probe { step, .. }
            | Effect::Redirect { step, .. } => *step,
        }
    }
}
