//! The typed inputs of the Arc operations that carry a body, and how each renders as JSON
//! (the field names and values of the specs in `testdata/`).

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};

use super::ArcInstanceId;
use super::models::MiLinkAssessmentCategory;
use crate::arm::models::arm_enum;
use crate::names::{
    AgName, CertificateName, DatabaseName, EndpointName, InstanceId, LinkName, ServerName,
};
use crate::time::Timestamp;

/// A JSON object of the fields that are set (`None` fields are left out, as the examples do).
fn object(fields: Vec<(&str, Option<Value>)>) -> Value {
    Value::Object(
        fields
            .into_iter()
            .filter_map(|(name, value)| value.map(|v| (name.to_owned(), v)))
            .collect::<Map<_, _>>(),
    )
}

fn names<T: AsRef<str>>(values: &[T]) -> Value {
    Value::Array(values.iter().map(|v| json!(v.as_ref())).collect())
}

/// An enum a request sends: a closed set of the spec's values.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// The value as the spec writes it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl From<$name> for Value {
            fn from(value: $name) -> Value {
                Value::String(value.as_str().to_owned())
            }
        }
    };
}

wire_enum! {
    /// A replica's or an availability group's availability mode in the Arc API (upper-snake,
    /// where `Microsoft.Sql` writes `Sync` / `Async`).
    ArcAvailabilityMode {
        /// `SYNCHRONOUS_COMMIT`.
        SynchronousCommit = "SYNCHRONOUS_COMMIT",
        /// `ASYNCHRONOUS_COMMIT`.
        AsynchronousCommit = "ASYNCHRONOUS_COMMIT",
    }
}

wire_enum! {
    /// A failover mode in the Arc API.
    ArcFailoverMode {
        /// `AUTOMATIC`.
        Automatic = "AUTOMATIC",
        /// `MANUAL` (SQL Server's side of a link in the example).
        Manual = "MANUAL",
        /// `EXTERNAL`.
        External = "EXTERNAL",
        /// `NONE` (the managed instance's side of a link in the example).
        None = "NONE",
    }
}

wire_enum! {
    /// A seeding mode in the Arc API.
    ArcSeedingMode {
        /// `AUTOMATIC` (direct seeding over the network).
        Automatic = "AUTOMATIC",
        /// `MANUAL` (backup and restore).
        Manual = "MANUAL",
    }
}

wire_enum! {
    /// Which connections a secondary replica accepts (`secondaryRoleAllowConnections`).
    ArcSecondaryConnections {
        /// `NO`.
        No = "NO",
        /// `ALL`.
        All = "ALL",
        /// `READ_ONLY`.
        ReadOnly = "READ_ONLY",
    }
}

wire_enum! {
    /// The cluster type of a new availability group (`clusterType`).
    ArcClusterType {
        /// `WSFC`: on a Windows Server failover cluster.
        Wsfc = "WSFC",
        /// `NONE`: no cluster coordination (what a link's availability group usually is).
        None = "NONE",
    }
}

wire_enum! {
    /// The managed instance's role in the link an assessment checks (`azureManagedInstanceRole`).
    ArcMiRole {
        /// The managed instance is primary (a link from Azure to SQL Server).
        Primary = "Primary",
        /// The managed instance is secondary (a migration to Azure).
        Secondary = "Secondary",
    }
}

wire_enum! {
    /// How [`TelemetryRequest`] aggregates numeric columns over each interval
    /// (`aggregationType`; the service's default is `Average`).
    TelemetryAggregation {
        /// `Average`.
        Average = "Average",
        /// `Minimum`.
        Minimum = "Minimum",
        /// `Maximum`.
        Maximum = "Maximum",
        /// `Sum`.
        Sum = "Sum",
        /// `Count`.
        Count = "Count",
    }
}

arm_enum! {
    /// A telemetry dataset (`datasetName`, a free string in the spec).
    TelemetryDataset {
        /// `sqlserver_storage_io`: file I/O per database file (the official example's dataset).
        StorageIo = "sqlserver_storage_io",
        /// `SecondaryReplicaLag`: the replica lag of the link's databases, which the portal's
        /// Monitor pane shows. UNVERIFIED: the name comes from a public automation script, not
        /// from the spec or its examples, and so do its columns.
        SecondaryReplicaLag = "SecondaryReplicaLag",
    }
}

/// The body of [`super::ArcOp::RunMiLinkAssessment`]
/// (`SqlServerInstanceManagedInstanceLinkAssessmentRequest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MiLinkAssessmentRequest {
    /// The managed instance to link with (`azureManagedInstanceResourceId`).
    pub managed_instance: InstanceId,
    /// The managed instance's role in the link; the service's default when `None` is not stated
    /// in the spec (UNVERIFIED).
    pub managed_instance_role: Option<ArcMiRole>,
    /// The databases to replicate (`databaseNames`).
    pub databases: Vec<DatabaseName>,
    /// SQL Server's availability group (`availabilityGroupName`).
    pub availability_group: AgName,
    /// The link: the distributed availability group (`distributedAvailabilityGroupName`).
    pub link: LinkName,
    /// The categories to run; empty runs all of them (the field is left out).
    pub categories: Vec<MiLinkAssessmentCategory>,
    /// SQL Server's IP address, for the network checks (`sqlServerIpAddress`).
    pub sql_server_ip: Option<IpAddr>,
}

impl MiLinkAssessmentRequest {
    /// The request's JSON body.
    pub fn body(&self) -> Value {
        object(vec![
            (
                "azureManagedInstanceResourceId",
                Some(json!(self.managed_instance.to_string())),
            ),
            (
                "azureManagedInstanceRole",
                self.managed_instance_role.map(Value::from),
            ),
            ("databaseNames", Some(names(&self.databases))),
            (
                "availabilityGroupName",
                Some(json!(self.availability_group.as_str())),
            ),
            (
                "distributedAvailabilityGroupName",
                Some(json!(self.link.as_str())),
            ),
            (
                "assessmentCategories",
                (!self.categories.is_empty()).then(|| {
                    Value::Array(self.categories.iter().map(|c| json!(c.as_str())).collect())
                }),
            ),
            (
                "sqlServerIpAddress",
                self.sql_server_ip.map(|ip| json!(ip.to_string())),
            ),
        ])
    }
}

/// The body of [`super::ArcOp::GetTelemetry`] (`SqlServerInstanceTelemetryRequest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryRequest {
    /// The dataset (`datasetName`, required).
    pub dataset: TelemetryDataset,
    /// Start of the range (`startTime`; the service's default is an hour before now).
    pub start: Option<Timestamp>,
    /// End of the range (`endTime`; the service's default is now).
    pub end: Option<Timestamp>,
    /// The granularity (`interval`, an ISO 8601 duration, whole seconds; default `PT1H`).
    pub interval: Option<Duration>,
    /// The aggregation of numeric columns (`aggregationType`; default `Average`).
    pub aggregation: Option<TelemetryAggregation>,
    /// The databases (`databaseNames`); empty aggregates all of them (the field is left out).
    pub databases: Vec<DatabaseName>,
}

impl TelemetryRequest {
    /// A request for `dataset` with the service's defaults (the last hour, hourly, averaged,
    /// all databases).
    pub fn new(dataset: TelemetryDataset) -> TelemetryRequest {
        TelemetryRequest {
            dataset,
            start: None,
            end: None,
            interval: None,
            aggregation: None,
            databases: Vec::new(),
        }
    }

    /// The replica lag of `database` since `since`, per `interval`, at its maximum over each
    /// interval (the worst lag is the one a cutover waits for). UNVERIFIED: the dataset's name
    /// and columns ([`TelemetryDataset::SecondaryReplicaLag`]).
    pub fn replica_lag(
        database: DatabaseName,
        since: Timestamp,
        interval: Duration,
    ) -> TelemetryRequest {
        TelemetryRequest {
            start: Some(since),
            interval: Some(interval),
            aggregation: Some(TelemetryAggregation::Maximum),
            databases: vec![database],
            ..TelemetryRequest::new(TelemetryDataset::SecondaryReplicaLag)
        }
    }

    /// The request's JSON body.
    pub fn body(&self) -> Value {
        object(vec![
            ("datasetName", Some(json!(self.dataset.as_str()))),
            ("startTime", self.start.map(|t| json!(date_time(t)))),
            ("endTime", self.end.map(|t| json!(date_time(t)))),
            ("interval", self.interval.map(|d| json!(duration(d)))),
            ("aggregationType", self.aggregation.map(Value::from)),
            (
                "databaseNames",
                (!self.databases.is_empty()).then(|| names(&self.databases)),
            ),
        ])
    }
}

/// An RFC 3339 date-time in UTC: whole seconds without a fraction (as the examples write
/// them), else milliseconds.
pub fn date_time(t: Timestamp) -> String {
    let text = t.to_string();
    match text.strip_suffix(".000Z") {
        Some(seconds) => format!("{seconds}Z"),
        None => text,
    }
}

/// An ISO 8601 duration in whole seconds (`PT15M`, `PT1H`, `P1D`, `PT1H30M`; `PT0S` for less
/// than a second): the fraction of a second is dropped.
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs > 0 && secs.is_multiple_of(86_400) {
        return format!("P{}D", secs / 86_400);
    }
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let mut out = String::from("PT");
    if h > 0 {
        out.push_str(&format!("{h}H"));
    }
    if m > 0 {
        out.push_str(&format!("{m}M"));
    }
    if s > 0 || secs == 0 {
        out.push_str(&format!("{s}S"));
    }
    out
}

/// The body of [`super::ArcOp::CreateMiLink`] (`ManagedInstanceLinkCreateUpdateConfiguration`):
/// SQL Server's availability group, the distributed availability group, and the name of the
/// managed instance's availability group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MiLinkCreate {
    /// SQL Server's availability group to create (`availabilityGroup`).
    pub availability_group: AgCreate,
    /// The distributed availability group: the link (`distributedAvailabilityGroup`).
    pub distributed_availability_group: DagCreate,
    /// The availability group the managed instance creates on its side
    /// (`miLinkConfiguration.instanceAvailabilityGroupName`).
    pub instance_availability_group: Option<AgName>,
}

impl MiLinkCreate {
    /// The request's JSON body; member availability groups of this instance are named by their
    /// resource id under `instance`.
    pub fn body(&self, instance: &ArcInstanceId) -> Value {
        object(vec![
            ("availabilityGroup", Some(self.availability_group.body())),
            (
                "distributedAvailabilityGroup",
                Some(self.distributed_availability_group.body(instance)),
            ),
            (
                "miLinkConfiguration",
                self.instance_availability_group
                    .as_ref()
                    .map(|name| json!({"instanceAvailabilityGroupName": name.as_str()})),
            ),
        ])
    }
}

/// SQL Server's availability group in [`MiLinkCreate`] (`AvailabilityGroupCreateUpdateConfiguration`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgCreate {
    /// Its name (`availabilityGroupName`).
    pub name: AgName,
    /// Its replicas (`replicas`).
    pub replicas: Vec<AgReplica>,
    /// Its databases (`databases`).
    pub databases: Vec<DatabaseName>,
    /// `clusterType`; the service's default when `None` is not stated (UNVERIFIED).
    pub cluster_type: Option<ArcClusterType>,
}

impl AgCreate {
    fn body(&self) -> Value {
        object(vec![
            ("availabilityGroupName", Some(json!(self.name.as_str()))),
            (
                "replicas",
                Some(Value::Array(
                    self.replicas.iter().map(AgReplica::body).collect(),
                )),
            ),
            ("databases", Some(names(&self.databases))),
            ("clusterType", self.cluster_type.map(Value::from)),
        ])
    }
}

/// One replica of [`AgCreate`] (`AvailabilityGroupCreateUpdateReplicaConfiguration`); fields
/// left `None` are not sent and take the service's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgReplica {
    /// The server instance hosting the replica (`serverInstance`).
    pub server_instance: Option<ServerName>,
    /// The mirroring endpoint's name (`endpointName`).
    pub endpoint_name: Option<EndpointName>,
    /// The mirroring endpoint's URL, `TCP://host:port` (`endpointUrl`).
    pub endpoint_url: Option<String>,
    /// The certificate the endpoint authenticates with (`certificateName`).
    pub certificate_name: Option<CertificateName>,
    /// `availabilityMode`.
    pub availability_mode: Option<ArcAvailabilityMode>,
    /// `failoverMode`.
    pub failover_mode: Option<ArcFailoverMode>,
    /// `seedingMode`.
    pub seeding_mode: Option<ArcSeedingMode>,
    /// `secondaryRoleAllowConnections`.
    pub secondary_role_allow_connections: Option<ArcSecondaryConnections>,
}

impl AgReplica {
    fn body(&self) -> Value {
        object(vec![
            (
                "serverInstance",
                self.server_instance.as_ref().map(|v| json!(v.as_str())),
            ),
            (
                "endpointName",
                self.endpoint_name.as_ref().map(|v| json!(v.as_str())),
            ),
            ("endpointUrl", self.endpoint_url.as_ref().map(|v| json!(v))),
            (
                "certificateName",
                self.certificate_name.as_ref().map(|v| json!(v.as_str())),
            ),
            ("availabilityMode", self.availability_mode.map(Value::from)),
            ("failoverMode", self.failover_mode.map(Value::from)),
            ("seedingMode", self.seeding_mode.map(Value::from)),
            (
                "secondaryRoleAllowConnections",
                self.secondary_role_allow_connections.map(Value::from),
            ),
        ])
    }
}

/// The distributed availability group of [`MiLinkCreate`]
/// (`DistributedAvailabilityGroupCreateUpdateConfiguration`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DagCreate {
    /// Its name: the link's name (`availabilityGroupName`).
    pub name: LinkName,
    /// The initial primary (`primaryAvailabilityGroup`): SQL Server's availability group.
    pub primary: DagMember,
    /// The initial secondary (`secondaryAvailabilityGroup`): the managed instance.
    pub secondary: DagMember,
}

impl DagCreate {
    fn body(&self, instance: &ArcInstanceId) -> Value {
        object(vec![
            ("availabilityGroupName", Some(json!(self.name.as_str()))),
            (
                "primaryAvailabilityGroup",
                Some(self.primary.body(instance)),
            ),
            (
                "secondaryAvailabilityGroup",
                Some(self.secondary.body(instance)),
            ),
        ])
    }
}

/// Which resource a [`DagMember`] is (its `availabilityGroup`, an ARM id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DagMemberRef {
    /// An availability group of this Arc SQL Server instance, by name
    /// (`…/sqlServerInstances/{instance}/availabilityGroups/{name}`).
    ArcAvailabilityGroup(AgName),
    /// The managed instance (`…/Microsoft.Sql/managedInstances/{mi}`), as the example names the
    /// link's secondary.
    ManagedInstance(InstanceId),
}

/// One member of [`DagCreate`] (`DistributedAvailabilityGroupCreateUpdateAvailabilityGroupConfiguration`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DagMember {
    /// The member (`availabilityGroup`).
    pub availability_group: DagMemberRef,
    /// Its listener URL, `TCP://host:port` (`listenerUrl`; the example gives none for the
    /// managed instance).
    pub listener_url: Option<String>,
    /// `availabilityMode`.
    pub availability_mode: Option<ArcAvailabilityMode>,
    /// `failoverMode`.
    pub failover_mode: Option<ArcFailoverMode>,
    /// `seedingMode`.
    pub seeding_mode: Option<ArcSeedingMode>,
    /// The certificate (`certificateConfiguration.certificateName`).
    pub certificate_name: Option<CertificateName>,
}

impl DagMember {
    fn body(&self, instance: &ArcInstanceId) -> Value {
        let id = match &self.availability_group {
            DagMemberRef::ArcAvailabilityGroup(name) => instance.availability_group_id(name),
            DagMemberRef::ManagedInstance(mi) => mi.to_string(),
        };
        object(vec![
            ("availabilityGroup", Some(json!(id))),
            ("listenerUrl", self.listener_url.as_ref().map(|v| json!(v))),
            ("availabilityMode", self.availability_mode.map(Value::from)),
            ("failoverMode", self.failover_mode.map(Value::from)),
            ("seedingMode", self.seeding_mode.map(Value::from)),
            (
                "certificateConfiguration",
                self.certificate_name
                    .as_ref()
                    .map(|c| json!({"certificateName": c.as_str()})),
            ),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations_render_as_the_examples_write_them() {
        let t = Timestamp::from_millis(1_696_032_000_000);
        assert_eq!(date_time(t), "2023-09-30T00:00:00Z");
        assert_eq!(
            date_time(Timestamp::from_millis(1_696_032_000_250)),
            "2023-09-30T00:00:00.250Z"
        );
        for (secs, text) in [
            (0, "PT0S"),
            (15 * 60, "PT15M"),
            (3600, "PT1H"),
            (5400, "PT1H30M"),
            (90, "PT1M30S"),
            (86_400, "P1D"),
            (2 * 86_400, "P2D"),
            (86_400 + 1, "PT24H1S"),
        ] {
            assert_eq!(duration(Duration::from_secs(secs)), text);
        }
        assert_eq!(duration(Duration::from_millis(999)), "PT0S");
    }

    #[test]
    fn replica_lag_asks_for_one_database_at_its_worst() {
        let r = TelemetryRequest::replica_lag(
            DatabaseName::new("ToyStore").unwrap(),
            Timestamp::from_millis(1_696_032_000_000),
            Duration::from_secs(60),
        );
        assert_eq!(
            r.body(),
            json!({
                "datasetName": "SecondaryReplicaLag",
                "startTime": "2023-09-30T00:00:00Z",
                "interval": "PT1M",
                "aggregationType": "Maximum",
                "databaseNames": ["ToyStore"],
            })
        );
        assert_eq!(
            TelemetryRequest::new(TelemetryDataset::Other("x".into())).body(),
            json!({"datasetName": "x"})
        );
    }
}
