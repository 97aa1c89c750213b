//! What milink reads from Azure Resource Manager, as serde types following the official REST
//! specs (`Microsoft.Sql` 2025-01-01 and 2025-08-01-preview; milink-facts §2.5–§2.6).
//!
//! Reading is lenient: unknown fields are ignored, every field ARM may omit is an `Option` (or an
//! empty `Vec`), and the enums milink branches on keep a value ARM may add later as `Other`. The
//! resource envelopes (`id`, `name`, `type`) are read-only in the specs and kept as given.
//! The types serialize too (the simulator answers with them); a `None` serializes as `null`.
//!
//! The two api-versions differ for these resources only in the distributed availability group:
//! the preview adds `properties.linkMode` ([`ArmLinkMode`]). The request and response shapes of
//! every other field, and of server trust and endpoint certificates, are the same (the preview's
//! error catalogue differs; see [`super::errors`]).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// An enum read from a string ARM defines, with the values ARM may add later kept as `Other`.
macro_rules! arm_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this version of milink does not know, as ARM sent it.
            Other(String),
        }

        impl $name {
            /// The value as ARM writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Other(text) => text,
                }
            }

            /// Reads ARM's value; an unknown one is `Other` (no error: ARM adds values).
            pub fn parse(text: &str) -> Self {
                match text {
                    $($text => $name::$variant,)+
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
                Ok($name::parse(&text))
            }
        }
    };
}

// The Arc models read their enums the same way.
pub(crate) use arm_enum;

arm_enum! {
    /// A link role (`LinkRole`): the managed instance's `instanceLinkRole` or SQL Server's
    /// `partnerLinkRole`.
    LinkRole {
        /// The primary replica.
        Primary = "Primary",
        /// The secondary replica.
        Secondary = "Secondary",
    }
}

arm_enum! {
    /// `replicationMode` of a link (`ReplicationModeType`).
    ReplicationMode {
        /// Asynchronous commit.
        Async = "Async",
        /// Synchronous commit.
        Sync = "Sync",
    }
}

arm_enum! {
    /// `failoverMode` of a link (`FailoverModeType`).
    ArmFailoverMode {
        /// One-way failover to Azure.
        None = "None",
        /// Two-way failover with a supported SQL Server.
        Manual = "Manual",
    }
}

arm_enum! {
    /// `seedingMode` of a link (`SeedingModeType`).
    ArmSeedingMode {
        /// Automatic seeding (the default; the only one the service accepts today).
        Automatic = "Automatic",
        /// Manual seeding.
        Manual = "Manual",
    }
}

arm_enum! {
    /// `linkMode` of a link (`LinkModeType`), in 2025-08-01-preview only.
    ArmLinkMode {
        /// One database per link.
        SingleDatabase = "SingleDatabase",
        /// Several databases per link.
        MultiDatabase = "MultiDatabase",
    }
}

arm_enum! {
    /// `synchronizationHealth` of a database in a link (`ReplicaSynchronizationHealth`).
    SynchronizationHealth {
        /// Not healthy.
        NotHealthy = "NOT_HEALTHY",
        /// Partially healthy.
        PartiallyHealthy = "PARTIALLY_HEALTHY",
        /// Healthy.
        Healthy = "HEALTHY",
    }
}

arm_enum! {
    /// `connectedState` of a database in a link (`ReplicaConnectedState`).
    ConnectedState {
        /// Disconnected.
        Disconnected = "DISCONNECTED",
        /// Connected.
        Connected = "CONNECTED",
    }
}

arm_enum! {
    /// `databaseFormat` of a managed instance (its update policy).
    DatabaseFormat {
        /// Always up to date (newest engine; no failback to SQL Server).
        AlwaysUpToDate = "AlwaysUpToDate",
        /// SQL Server 2022 format.
        SqlServer2022 = "SQLServer2022",
        /// SQL Server 2025 format.
        SqlServer2025 = "SQLServer2025",
    }
}

arm_enum! {
    /// `hybridSecondaryUsage` of a managed instance.
    HybridSecondaryUsage {
        /// The secondary serves workload.
        Active = "Active",
        /// The secondary is a passive disaster-recovery replica.
        Passive = "Passive",
    }
}

arm_enum! {
    /// `provisioningState` of a managed instance.
    ProvisioningState {
        /// Created.
        Created = "Created",
        /// In progress.
        InProgress = "InProgress",
        /// Succeeded.
        Succeeded = "Succeeded",
        /// Failed.
        Failed = "Failed",
        /// Canceled.
        Canceled = "Canceled",
    }
}

arm_enum! {
    /// `status` of a long-running operation's status body.
    OperationState {
        /// Still running.
        InProgress = "InProgress",
        /// Finished successfully.
        Succeeded = "Succeeded",
        /// Finished with an error.
        Failed = "Failed",
        /// Canceled.
        Canceled = "Canceled",
    }
}

impl OperationState {
    /// Whether the operation has finished (a value milink does not know counts as running, so
    /// polling goes on until the caller's timeout).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            OperationState::Succeeded | OperationState::Failed | OperationState::Canceled
        )
    }
}

/// A list of resources (`value`, `nextLink`): one page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    /// The resources of this page.
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    /// The URL of the next page, if any.
    #[serde(default)]
    pub next_link: Option<String>,
}

/// A managed instance's `sku`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Sku {
    /// The sku's name, e.g. `GP_Gen5`.
    pub name: Option<String>,
    /// The service tier, e.g. `GeneralPurpose`, `BusinessCritical`.
    pub tier: Option<String>,
    /// The capacity (vCores).
    pub capacity: Option<u32>,
    /// The hardware family, e.g. `Gen5`.
    pub family: Option<String>,
}

/// A managed instance (`GET …/managedInstances/{mi}`): what the link needs of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManagedInstance {
    /// Resource id.
    #[serde(default)]
    pub id: Option<String>,
    /// Resource name.
    #[serde(default)]
    pub name: Option<String>,
    /// Azure region.
    #[serde(default)]
    pub location: Option<String>,
    /// The sku (tier, vCores).
    #[serde(default)]
    pub sku: Option<Sku>,
    /// The instance's properties.
    #[serde(default)]
    pub properties: ManagedInstanceProperties,
}

/// The properties of a [`ManagedInstance`] milink reads.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ManagedInstanceProperties {
    /// `<name>.<dnsZone>.database.windows.net`: the link's instance endpoint is
    /// `TCP://<fqdn>:5022`.
    pub fully_qualified_domain_name: Option<String>,
    /// The DNS zone.
    pub dns_zone: Option<String>,
    /// The instance's state, a free string (`Ready`, …).
    pub state: Option<String>,
    /// Provisioning state.
    pub provisioning_state: Option<ProvisioningState>,
    /// The engine's database format (update policy).
    pub database_format: Option<DatabaseFormat>,
    /// How the secondary is used (licensing).
    pub hybrid_secondary_usage: Option<HybridSecondaryUsage>,
    /// vCores.
    pub v_cores: Option<u32>,
    /// Storage size in GB.
    #[serde(rename = "storageSizeInGB")]
    pub storage_size_in_gb: Option<u64>,
    /// The resource id of the instance's subnet.
    pub subnet_id: Option<String>,
}

/// An instance failover group (`InstanceFailoverGroups_ListByLocation`): the instances it pairs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InstanceFailoverGroup {
    /// Resource name.
    #[serde(default)]
    pub name: Option<String>,
    /// Its properties.
    #[serde(default)]
    pub properties: InstanceFailoverGroupProperties,
}

/// The properties of an [`InstanceFailoverGroup`] milink reads.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct InstanceFailoverGroupProperties {
    /// The instance pairs.
    pub managed_instance_pairs: Vec<ManagedInstancePair>,
}

/// A pair of instances of a failover group.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ManagedInstancePair {
    /// The primary's resource id.
    pub primary_managed_instance_id: Option<String>,
    /// The partner's resource id.
    pub partner_managed_instance_id: Option<String>,
}

impl InstanceFailoverGroup {
    /// Whether the instance of resource id `id` is in one of the group's pairs
    /// (case-insensitively, as ARM compares ids).
    pub fn pairs(&self, id: &str) -> bool {
        self.properties.managed_instance_pairs.iter().any(|p| {
            [
                &p.primary_managed_instance_id,
                &p.partner_managed_instance_id,
            ]
            .into_iter()
            .flatten()
            .any(|i| {
                i.trim_end_matches('/')
                    .eq_ignore_ascii_case(id.trim_end_matches('/'))
            })
        })
    }
}

/// One permission set of `AzurePermissionsForResource_List` (Microsoft.Authorization).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Permission {
    /// Allowed actions (`*` wildcards).
    pub actions: Vec<String>,
    /// Actions taken out of `actions`.
    pub not_actions: Vec<String>,
}

/// A managed instance's TDE protector (`…/encryptionProtector/current`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EncryptionProtector {
    /// Resource name (`current`).
    #[serde(default)]
    pub name: Option<String>,
    /// Its properties.
    #[serde(default)]
    pub properties: EncryptionProtectorProperties,
}

/// The properties of an [`EncryptionProtector`] milink reads.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EncryptionProtectorProperties {
    /// `ServiceManaged` or `AzureKeyVault`.
    pub server_key_type: Option<String>,
    /// The key's name.
    pub server_key_name: Option<String>,
}

/// A virtual network's subnet (Microsoft.Network `Subnets_Get`): its address ranges.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Subnet {
    /// Resource id.
    #[serde(default)]
    pub id: Option<String>,
    /// Its properties.
    #[serde(default)]
    pub properties: SubnetProperties,
}

/// The properties of a [`Subnet`] milink reads.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SubnetProperties {
    /// The subnet's range (one).
    pub address_prefix: Option<String>,
    /// The subnet's ranges (several).
    pub address_prefixes: Option<Vec<String>>,
}

impl Subnet {
    /// Every range of the subnet, `addressPrefix` first.
    pub fn prefixes(&self) -> Vec<String> {
        let mut out: Vec<String> = self.properties.address_prefix.iter().cloned().collect();
        for p in self.properties.address_prefixes.iter().flatten() {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
        out
    }
}

/// A database of the managed instance, as a list item (`GET …/managedInstances/{mi}/databases`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManagedDatabase {
    /// Resource id.
    #[serde(default)]
    pub id: Option<String>,
    /// The database's name.
    #[serde(default)]
    pub name: Option<String>,
    /// Its properties.
    #[serde(default)]
    pub properties: ManagedDatabaseProperties,
}

/// The properties of a [`ManagedDatabase`] milink reads.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ManagedDatabaseProperties {
    /// Status, a string ARM extends (`Online`, `Restoring`, `Creating`, …).
    pub status: Option<String>,
    /// Creation date.
    pub creation_date: Option<String>,
    /// Collation.
    pub collation: Option<String>,
}

/// A server trust certificate: SQL Server's certificate the instance trusts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerTrustCertificate {
    /// Resource id.
    #[serde(default)]
    pub id: Option<String>,
    /// Resource name (the certificate's name).
    #[serde(default)]
    pub name: Option<String>,
    /// Its properties.
    #[serde(default)]
    pub properties: ServerTrustCertificateProperties,
}

/// The properties of a [`ServerTrustCertificate`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServerTrustCertificateProperties {
    /// The certificate's DER as hex, with or without `0x` (see [`normalize_blob`]).
    pub public_blob: Option<String>,
    /// Thumbprint (read-only).
    pub thumbprint: Option<String>,
    /// The certificate's name (read-only).
    pub certificate_name: Option<String>,
}

impl ServerTrustCertificate {
    /// The certificate's name: `properties.certificateName`, else the resource name.
    pub fn certificate_name(&self) -> Option<&str> {
        self.properties
            .certificate_name
            .as_deref()
            .or(self.name.as_deref())
    }

    /// Whether this certificate holds `der` (its public blob decodes to the same bytes).
    pub fn holds(&self, der: &[u8]) -> bool {
        self.properties
            .public_blob
            .as_deref()
            .and_then(normalize_blob)
            .is_some_and(|bytes| bytes == der)
    }
}

/// The endpoint's certificate name milink reads: the mirroring endpoint's.
pub const DATABASE_MIRRORING: &str = "DATABASE_MIRRORING";

/// One of the instance's own endpoint certificates (`DATABASE_MIRRORING`, `SERVICE_BROKER`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointCertificate {
    /// Resource id.
    #[serde(default)]
    pub id: Option<String>,
    /// Resource name: the endpoint type.
    #[serde(default)]
    pub name: Option<String>,
    /// Its properties.
    #[serde(default)]
    pub properties: EndpointCertificateProperties,
}

/// The properties of an [`EndpointCertificate`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EndpointCertificateProperties {
    /// The certificate's DER as hex, `0x…` in ARM's examples.
    pub public_blob: Option<String>,
}

impl EndpointCertificate {
    /// The certificate's DER bytes, if the blob is hex.
    pub fn der(&self) -> Option<Vec<u8>> {
        self.properties
            .public_blob
            .as_deref()
            .and_then(normalize_blob)
    }
}

/// A distributed availability group: the link resource, in both api-versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistributedAvailabilityGroup {
    /// Resource id.
    #[serde(default)]
    pub id: Option<String>,
    /// Resource name (the link's name).
    #[serde(default)]
    pub name: Option<String>,
    /// Its properties.
    #[serde(default)]
    pub properties: DagProperties,
}

/// The properties of a [`DistributedAvailabilityGroup`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DagProperties {
    /// Name (read-only).
    pub distributed_availability_group_name: Option<String>,
    /// Id, a uuid (read-only).
    pub distributed_availability_group_id: Option<String>,
    /// Replication mode.
    pub replication_mode: Option<ReplicationMode>,
    /// SQL Server's role (read-only).
    pub partner_link_role: Option<LinkRole>,
    /// SQL Server's availability group.
    pub partner_availability_group_name: Option<String>,
    /// SQL Server's endpoint, `TCP://host:port`.
    pub partner_endpoint: Option<String>,
    /// The instance's role.
    pub instance_link_role: Option<LinkRole>,
    /// The instance's availability group.
    pub instance_availability_group_name: Option<String>,
    /// Failover mode.
    pub failover_mode: Option<ArmFailoverMode>,
    /// Seeding mode.
    pub seeding_mode: Option<ArmSeedingMode>,
    /// Link mode: 2025-08-01-preview only; absent in 2025-01-01 (a single-database link).
    pub link_mode: Option<ArmLinkMode>,
    /// The databases of the link and their replica states.
    pub databases: Vec<DagDatabase>,
}

/// One database of a link, with its replica state (all read-only but `databaseName`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DagDatabase {
    /// The database's name.
    pub database_name: Option<String>,
    /// The instance's replica id.
    pub instance_replica_id: Option<String>,
    /// SQL Server's replica id.
    pub partner_replica_id: Option<String>,
    /// Link state of this database, a free string (`Seeding`, `Catchup`, `LinkCreationError`…).
    pub replica_state: Option<String>,
    /// Seeding progress, e.g. `80%`.
    pub seeding_progress: Option<String>,
    /// Synchronization health.
    pub synchronization_health: Option<SynchronizationHealth>,
    /// Connected state.
    pub connected_state: Option<ConnectedState>,
    /// Last received LSN (a decimal string; see [`DagDatabase::lsn`]).
    pub last_received_lsn: Option<String>,
    /// Time of the last received LSN.
    pub last_received_time: Option<String>,
    /// Last sent LSN.
    pub last_sent_lsn: Option<String>,
    /// Time of the last sent LSN.
    pub last_sent_time: Option<String>,
    /// Last commit LSN.
    pub last_commit_lsn: Option<String>,
    /// Time of the last commit LSN.
    pub last_commit_time: Option<String>,
    /// Last hardened LSN.
    pub last_hardened_lsn: Option<String>,
    /// Time of the last hardened LSN.
    pub last_hardened_time: Option<String>,
    /// Last backup LSN.
    pub last_backup_lsn: Option<String>,
    /// Time of the last backup LSN.
    pub last_backup_time: Option<String>,
    /// The most recent link error, as text.
    pub most_recent_link_error: Option<String>,
    /// Validity of SQL Server's certificate.
    pub partner_auth_cert_validity: Option<CertificateInfo>,
    /// Send lag in seconds when the instance is primary.
    pub instance_send_replication_lag_seconds: Option<i32>,
    /// Redo lag in seconds when the instance is primary.
    pub instance_redo_replication_lag_seconds: Option<i32>,
}

impl DagDatabase {
    /// An LSN field as a number (ARM writes LSNs as decimal strings; compare them as numbers).
    pub fn lsn(field: Option<&str>) -> Option<u128> {
        field.and_then(|text| text.trim().parse().ok())
    }
}

/// A certificate's name and expiry (`CertificateInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CertificateInfo {
    /// The certificate's name.
    pub certificate_name: Option<String>,
    /// Expiry date.
    pub expiry_date: Option<String>,
}

/// ARM's error envelope (common-types `ErrorResponse`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorResponse {
    /// The error.
    pub error: Option<ErrorDetail>,
}

/// ARM's error detail (common-types `ErrorDetail`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ErrorDetail {
    /// The error code, e.g. `ManagedInstanceIsBusy`.
    pub code: Option<String>,
    /// The error message.
    pub message: Option<String>,
    /// The error's target.
    pub target: Option<String>,
    /// Nested details.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<ErrorDetail>,
    /// Additional information.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub additional_info: Vec<AdditionalInfo>,
}

/// One item of [`ErrorDetail::additional_info`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AdditionalInfo {
    /// The information's type.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The information, any JSON.
    pub info: Value,
}

/// The status body of a long-running operation (the `Azure-AsyncOperation` URL's answer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationStatus {
    /// The operation's id or name, if given.
    #[serde(default)]
    pub name: Option<String>,
    /// The operation's state.
    pub status: OperationState,
    /// The error of a failed or canceled operation.
    #[serde(default)]
    pub error: Option<ErrorDetail>,
    /// Start time.
    #[serde(default)]
    pub start_time: Option<String>,
    /// Percent complete, if given.
    #[serde(default)]
    pub percent_complete: Option<f64>,
}

/// A certificate blob's bytes: hex with or without `0x`/`0X`, either case, whitespace ignored.
/// `None` when it is not hex (an odd number of digits, or another character). Compare
/// certificates by these bytes, not by name: ARM's examples write the same DER with and without
/// `0x`, and the service refuses a second certificate with the same key
/// (`CertificateAlreadyExists`).
pub fn normalize_blob(blob: &str) -> Option<Vec<u8>> {
    let trimmed = blob.trim();
    let hex = trimmed
        .strip_prefix("0x")
        .or_else(|| trimmed.strip_prefix("0X"))
        .unwrap_or(trimmed);
    let digits: Vec<u8> = hex
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        })
        .collect::<Option<_>>()?;
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    Some(
        digits
            .chunks_exact(2)
            .map(|pair| (pair[0] << 4) | pair[1])
            .collect(),
    )
}

/// Whether two blobs hold the same bytes (both must be hex).
pub fn same_blob(a: &str, b: &str) -> bool {
    match (normalize_blob(a), normalize_blob(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// The server trust certificate that holds `der`, whatever its name; else the one named `name`.
/// The first is the certificate milink already uploaded (perhaps under another name); the second
/// a name that is taken by another key.
pub fn find_certificate<'a>(
    certificates: &'a [ServerTrustCertificate],
    der: &[u8],
    name: &str,
) -> Option<&'a ServerTrustCertificate> {
    certificates.iter().find(|c| c.holds(der)).or_else(|| {
        certificates
            .iter()
            .find(|c| c.certificate_name() == Some(name))
    })
}
