//! What milink reads from Arc-enabled SQL Server (`Microsoft.AzureArcData` 2026-01-01), as serde
//! types following the official REST specs in `testdata/` (rest-notes §8): the instance's
//! assessment facts, the service's MI link checks, telemetry, availability groups, the migration
//! assessment job, and the answers of the long-running operations as the examples show them.
//!
//! Reading is lenient as in [`crate::arm::models`]: unknown fields are ignored, every field the
//! service may omit is an `Option` (or an empty `Vec`), `null` reads as absent, and the enums
//! keep a value the service may add later as `Other`. A body that is not JSON, is cut short, or
//! has a field of the wrong type is an [`ArcParseError`] from [`parse`] or [`answer`], never a
//! panic. The types serialize too (a `None` as `null`), for a simulator to answer with them.
//!
//! Where the spec says nothing (types defined in the uncopied `common.json`, values the spec
//! leaves as free strings) a field's doc says UNVERIFIED and names where its shape comes from.

use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ArcOp;
use crate::arm::models::arm_enum;
pub use crate::arm::models::{OperationState, OperationStatus};
use crate::names::SqlVersion;

arm_enum! {
    /// `properties.version` of an instance: the release.
    ArcSqlVersion {
        /// `Unknown`.
        Unknown = "Unknown",
        /// SQL Server 2012.
        SqlServer2012 = "SQL Server 2012",
        /// SQL Server 2014.
        SqlServer2014 = "SQL Server 2014",
        /// SQL Server 2016.
        SqlServer2016 = "SQL Server 2016",
        /// SQL Server 2017.
        SqlServer2017 = "SQL Server 2017",
        /// SQL Server 2019.
        SqlServer2019 = "SQL Server 2019",
        /// SQL Server 2022.
        SqlServer2022 = "SQL Server 2022",
        /// SQL Server 2025.
        SqlServer2025 = "SQL Server 2025",
    }
}

arm_enum! {
    /// `properties.edition` of an instance.
    ArcSqlEdition {
        /// Evaluation.
        Evaluation = "Evaluation",
        /// Enterprise.
        Enterprise = "Enterprise",
        /// Standard.
        Standard = "Standard",
        /// Web.
        Web = "Web",
        /// Developer.
        Developer = "Developer",
        /// Express.
        Express = "Express",
        /// Business Intelligence.
        BusinessIntelligence = "Business Intelligence",
        /// Standard Developer.
        StandardDeveloper = "Standard Developer",
    }
}

arm_enum! {
    /// `properties.status` of an instance: its cloud connectivity (the Arc agent's).
    ArcConnectivityStatus {
        /// Connected.
        Connected = "Connected",
        /// Disconnected: the agent does not report; no Arc operation reaches SQL Server.
        Disconnected = "Disconnected",
        /// Registered.
        Registered = "Registered",
        /// Unknown.
        Unknown = "Unknown",
    }
}

arm_enum! {
    /// `properties.alwaysOnRole` of an instance.
    AlwaysOnRole {
        /// None.
        None = "None",
        /// A failover cluster instance (the Arc migration flow does not support one).
        FailoverClusterInstance = "FailoverClusterInstance",
        /// A node of a failover cluster.
        FailoverClusterNode = "FailoverClusterNode",
        /// A replica of an availability group.
        AvailabilityGroupReplica = "AvailabilityGroupReplica",
    }
}

arm_enum! {
    /// `properties.licenseType` of an instance.
    ArcLicenseType {
        /// Undefined.
        Undefined = "Undefined",
        /// Free.
        Free = "Free",
        /// HADR.
        Hadr = "HADR",
        /// ServerCAL.
        ServerCal = "ServerCAL",
        /// LicenseOnly.
        LicenseOnly = "LicenseOnly",
        /// PAYG.
        Payg = "PAYG",
        /// Paid.
        Paid = "Paid",
        /// FabricCapacity.
        FabricCapacity = "FabricCapacity",
    }
}

arm_enum! {
    /// `databaseMirroringEndpoint.role`: the endpoint's mirroring role.
    MirroringRole {
        /// `NONE`.
        None = "NONE",
        /// `PARTNER`.
        Partner = "PARTNER",
        /// `WITNESS`.
        Witness = "WITNESS",
        /// `ALL` (what an availability group endpoint usually is).
        All = "ALL",
    }
}

arm_enum! {
    /// A category of the MI link assessment (`MiLinkAssessmentCategory`), in the request and in
    /// each result.
    MiLinkAssessmentCategory {
        /// SQL Server's instance.
        SqlInstance = "SqlInstance",
        /// SQL Server's databases.
        SqlInstanceDatabase = "SqlInstanceDatabase",
        /// The managed instance.
        ManagedInstance = "ManagedInstance",
        /// The managed instance's databases.
        ManagedInstanceDatabase = "ManagedInstanceDatabase",
        /// Both instances together.
        ManagedInstanceCrossValidation = "ManagedInstanceCrossValidation",
        /// The certificates.
        Certificates = "Certificates",
        /// The network from SQL Server to the managed instance.
        BoxToMiNetworkConnectivity = "BoxToMiNetworkConnectivity",
        /// The network from the managed instance to SQL Server.
        MiToBoxNetworkConnectivity = "MiToBoxNetworkConnectivity",
        /// SQL Server's availability group.
        SqlInstanceAg = "SqlInstanceAg",
        /// The distributed availability group.
        DagCrossValidation = "DagCrossValidation",
    }
}

arm_enum! {
    /// The result of one MI link check (`status`).
    AssessmentStatus {
        /// Passed.
        Success = "Success",
        /// Passed with a warning.
        Warning = "Warning",
        /// Failed: the link cannot be created until it is fixed.
        Failure = "Failure",
    }
}

arm_enum! {
    /// The type of a telemetry column; every cell is sent as a string of this type.
    TelemetryColumnType {
        /// `bool`.
        Bool = "bool",
        /// `datetime`.
        DateTime = "datetime",
        /// `int`.
        Int = "int",
        /// `long`.
        Long = "long",
        /// `double`.
        Double = "double",
        /// `string`.
        String = "string",
        /// `guid`.
        Guid = "guid",
        /// `timespan`.
        TimeSpan = "timespan",
    }
}

arm_enum! {
    /// `jobStatus` of the migration assessment job.
    JobStatus {
        /// Not started.
        NotStarted = "NotStarted",
        /// In progress.
        InProgress = "InProgress",
        /// Succeeded.
        Succeeded = "Succeeded",
        /// Failed (see `jobException`).
        Failed = "Failed",
    }
}

arm_enum! {
    /// `recommendationStatus` of a SKU recommendation. UNVERIFIED: defined in `common.json`
    /// (not copied); the values are those of the reference notes, the example shows `Ready`.
    RecommendationStatus {
        /// Ready to migrate.
        Ready = "Ready",
        /// Ready, with conditions.
        ReadyWithConditions = "ReadyWithConditions",
        /// Not ready.
        NotReady = "NotReady",
        /// Unknown.
        Unknown = "Unknown",
    }
}

arm_enum! {
    /// `info.replicationPartnerType` of an availability group.
    ReplicationPartnerType {
        /// SQL Server.
        SqlServer = "SQLServer",
        /// SQL Server on an Azure VM.
        AzureSqlVm = "AzureSQLVM",
        /// Azure SQL Managed Instance (an MI link).
        AzureSqlManagedInstance = "AzureSQLManagedInstance",
        /// Unknown.
        Unknown = "Unknown",
    }
}

arm_enum! {
    /// `state.availabilityGroupReplicaRole` of a replica. The spec declares a free string; the
    /// examples show `PRIMARY` and `SECONDARY` (SQL Server's `role_desc`; UNVERIFIED: that
    /// `RESOLVING` reaches the API as written).
    ArcReplicaRole {
        /// `PRIMARY`.
        Primary = "PRIMARY",
        /// `SECONDARY`.
        Secondary = "SECONDARY",
        /// `RESOLVING`.
        Resolving = "RESOLVING",
    }
}

/// An Arc-enabled SQL Server instance (`SqlServerInstance`, `GET …/sqlServerInstances/{name}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SqlServerInstance {
    /// Resource id.
    #[serde(default)]
    pub id: Option<String>,
    /// Resource name.
    #[serde(default)]
    pub name: Option<String>,
    /// Azure region.
    #[serde(default)]
    pub location: Option<String>,
    /// The instance's properties.
    #[serde(default, deserialize_with = "object_or_default")]
    pub properties: SqlServerInstanceProperties,
}

/// The properties of a [`SqlServerInstance`] the readiness assessment reads
/// (`SqlServerInstanceProperties`; the spec's names, all read-only).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SqlServerInstanceProperties {
    /// The release.
    pub version: Option<ArcSqlVersion>,
    /// The edition.
    pub edition: Option<ArcSqlEdition>,
    /// "SQL Server update level" (`patchLevel`). UNVERIFIED: its format (the example writes a
    /// placeholder); see [`SqlServerInstanceProperties::build`].
    pub patch_level: Option<String>,
    /// "SQL Server current version" (`currentVersion`). UNVERIFIED: its format (the example
    /// writes `2012`).
    pub current_version: Option<String>,
    /// The instance's name (`MSSQLSERVER` for the default instance).
    pub instance_name: Option<String>,
    /// The server collation.
    pub collation: Option<String>,
    /// Whether Always On availability groups are enabled (`isHadrEnabled`): a link needs them.
    pub is_hadr_enabled: Option<bool>,
    /// Whether `master` has a database master key (`dbMasterKeyExists`): the endpoint's
    /// certificate needs one.
    pub db_master_key_exists: Option<bool>,
    /// The trace flags enabled globally.
    #[serde(deserialize_with = "null_default")]
    pub trace_flags: Vec<i32>,
    /// Whether the Microsoft PKI root certificate is trusted for `database.windows.net`
    /// (`isMicrosoftPkiCertTrustConfigured`).
    pub is_microsoft_pki_cert_trust_configured: Option<bool>,
    /// Whether the DigiCert PKI root certificate is trusted for `database.windows.net`
    /// (`isDigiCertPkiCertTrustConfigured`).
    pub is_digi_cert_pki_cert_trust_configured: Option<bool>,
    /// The database mirroring endpoint, if there is one.
    #[serde(deserialize_with = "object")]
    pub database_mirroring_endpoint: Option<DbmEndpoint>,
    /// The instance's availability role (a failover cluster instance is not supported by the
    /// Arc migration flow).
    pub always_on_role: Option<AlwaysOnRole>,
    /// The Arc agent's cloud connectivity.
    pub status: Option<ArcConnectivityStatus>,
    /// The license type.
    pub license_type: Option<ArcLicenseType>,
    /// The host type, a string the spec enumerates (`Physical Server`, `Azure Virtual Machine`…).
    pub host_type: Option<String>,
    /// Logical processors used by the instance, as a string (`vCore`).
    pub v_core: Option<String>,
    /// `max server memory (MB)`.
    #[serde(rename = "maxServerMemoryMB")]
    pub max_server_memory_mb: Option<i64>,
    /// The Arc machine hosting the instance (`containerResourceId`).
    pub container_resource_id: Option<String>,
    /// Provisioning state, a free string.
    pub provisioning_state: Option<String>,
    /// Migration configuration and the latest assessment's results.
    #[serde(deserialize_with = "object")]
    pub migration: Option<Migration>,
}

impl SqlServerInstanceProperties {
    /// The instance's four-part build (`16.0.4125.3`), from the first of `patchLevel` and
    /// `currentVersion` that parses as one; `None` when neither does. UNVERIFIED: which field
    /// carries the build (the spec gives neither a format, and the example holds placeholders).
    pub fn build(&self) -> Option<SqlVersion> {
        [&self.patch_level, &self.current_version]
            .into_iter()
            .flatten()
            .find_map(|text| SqlVersion::parse(text).ok())
    }
}

/// The database mirroring endpoint of an instance (`DBMEndpoint`, all read-only).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DbmEndpoint {
    /// The endpoint's name.
    pub endpoint_name: Option<String>,
    /// Its mirroring role.
    pub role: Option<MirroringRole>,
    /// Whether encryption is enabled.
    pub is_encryption_enabled: Option<bool>,
    /// The encryption algorithm. UNVERIFIED: its values (defined in `common.json`, not copied;
    /// the example writes `RC4`, which the link refuses: it needs AES).
    pub encryption_algorithm: Option<String>,
    /// The connection authentication. UNVERIFIED: its values (defined in `common.json`, not
    /// copied; the example writes `Certificate`).
    pub connection_auth: Option<String>,
    /// The port it listens on.
    pub port: Option<i32>,
    /// Whether the port is dynamic.
    pub is_dynamic_port: Option<bool>,
    /// The listener IP address.
    pub ip_address: Option<String>,
    /// The endpoint's certificate.
    pub certificate_name: Option<String>,
    /// The certificate's expiry date (date-time).
    pub certificate_expiry_date: Option<String>,
}

/// `properties.migration` of an instance.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Migration {
    /// The migration assessment.
    #[serde(deserialize_with = "object")]
    pub assessment: Option<MigrationAssessment>,
}

/// `properties.migration.assessment`: its configuration and the latest results.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct MigrationAssessment {
    /// Whether the assessment runs for this instance.
    pub enabled: Option<bool>,
    /// When the last report was uploaded (date-time).
    pub assessment_upload_time: Option<String>,
    /// The report's version.
    pub version: Option<String>,
    /// Issues and warnings per migration target.
    #[serde(deserialize_with = "objects")]
    pub server_assessments: Vec<ServerAssessment>,
    /// The SKU recommendation per target.
    #[serde(deserialize_with = "object")]
    pub sku_recommendation_results: Option<SkuRecommendationResults>,
    /// Impacted features per target. UNVERIFIED: defined in `common.json` (not copied); the
    /// shape is the example's.
    #[serde(deserialize_with = "object")]
    pub impacted_objects_summary: Option<ImpactedObjectsSummary>,
}

impl MigrationAssessment {
    /// The findings that apply to Azure SQL Managed Instance.
    pub fn managed_instance_findings(&self) -> impl Iterator<Item = &ServerAssessment> {
        self.server_assessments
            .iter()
            .filter(|a| a.applies_to_migration_target_platform.as_deref() == Some(MANAGED_INSTANCE))
    }

    /// The SKU recommended for Azure SQL Managed Instance, if any.
    pub fn managed_instance_sku(&self) -> Option<&SkuRecommendation> {
        self.sku_recommendation_results
            .as_ref()
            .and_then(|r| r.azure_sql_managed_instance.as_ref())
    }
}

/// The target platform name of Azure SQL Managed Instance in
/// [`ServerAssessment::applies_to_migration_target_platform`] (the example's; the spec declares a
/// free string).
pub const MANAGED_INSTANCE: &str = "AzureSqlManagedInstance";

/// One issue or warning of the migration assessment (an item of `serverAssessments`; the spec
/// declares every field a free string).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServerAssessment {
    /// The target it applies to: `AzureSqlDatabase`, [`MANAGED_INSTANCE`], ….
    pub applies_to_migration_target_platform: Option<String>,
    /// The feature, e.g. `TraceFlags`.
    pub feature_id: Option<String>,
    /// The objects it concerns.
    #[serde(deserialize_with = "objects")]
    pub impacted_objects: Vec<ImpactedObject>,
    /// `Warning`, or another category (values not enumerated in the spec).
    pub issue_category: Option<String>,
    /// More information, as text.
    pub more_information: Option<String>,
}

/// One object a [`ServerAssessment`] concerns.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ImpactedObject {
    /// Its name (a trace flag's number, a login, …).
    pub name: Option<String>,
    /// Its type, e.g. `TraceFlag`.
    pub object_type: Option<String>,
    /// Details.
    pub impact_detail: Option<String>,
}

/// `skuRecommendationResults`: one recommendation per target.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SkuRecommendationResults {
    /// Azure SQL Database.
    #[serde(deserialize_with = "object")]
    pub azure_sql_database: Option<SkuRecommendation>,
    /// Azure SQL Managed Instance.
    #[serde(deserialize_with = "object")]
    pub azure_sql_managed_instance: Option<SkuRecommendation>,
    /// SQL Server on an Azure VM (its `targetSku` has other fields, which are ignored here).
    #[serde(deserialize_with = "object")]
    pub azure_sql_virtual_machine: Option<SkuRecommendation>,
}

/// A SKU recommendation for one target.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SkuRecommendation {
    /// Whether the instance is ready for the target.
    pub recommendation_status: Option<RecommendationStatus>,
    /// Blockers to fix before migrating.
    pub number_of_server_blocker_issues: Option<i32>,
    /// The recommended SKU.
    #[serde(deserialize_with = "object")]
    pub target_sku: Option<TargetSku>,
    /// The estimated monthly cost. UNVERIFIED: defined in `common.json` (not copied); the
    /// fields are the example's.
    #[serde(deserialize_with = "object")]
    pub monthly_cost: Option<MonthlyCost>,
}

/// The recommended SKU of a [`SkuRecommendation`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TargetSku {
    /// Tier, hardware and purchasing model.
    #[serde(deserialize_with = "object")]
    pub category: Option<SkuCategory>,
    /// vCores (a number in the spec).
    pub compute_size: Option<f64>,
    /// The SKU's maximum storage, MB.
    pub storage_max_size_in_mb: Option<f64>,
    /// The predicted data size, MB.
    pub predicted_data_size_in_mb: Option<f64>,
    /// The predicted log size, MB.
    pub predicted_log_size_in_mb: Option<f64>,
    /// Maximum storage IOPS.
    pub max_storage_iops: Option<f64>,
    /// Maximum throughput, MB/s.
    #[serde(rename = "maxThroughputMBps")]
    pub max_throughput_mbps: Option<f64>,
}

/// The category of a [`TargetSku`] (free strings in the spec).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SkuCategory {
    /// E.g. `Provisioned`.
    pub compute_tier: Option<String>,
    /// E.g. `Gen5`.
    pub hardware_type: Option<String>,
    /// E.g. `vCore`.
    pub sql_purchasing_model: Option<String>,
    /// E.g. `General Purpose`.
    pub sql_service_tier: Option<String>,
    /// Whether zone redundancy is available.
    pub zone_redundancy_available: Option<bool>,
}

/// The estimated monthly cost of a [`SkuRecommendation`] (UNVERIFIED: the example's fields).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct MonthlyCost {
    /// Compute.
    pub compute_cost: Option<f64>,
    /// Storage.
    pub storage_cost: Option<f64>,
    /// SQL license.
    pub sql_license_cost: Option<f64>,
    /// Windows license.
    pub windows_license_cost: Option<f64>,
    /// Total.
    pub total_cost: Option<f64>,
}

/// `impactedObjectsSummary` (UNVERIFIED: the example's shape).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ImpactedObjectsSummary {
    /// Azure SQL Database.
    #[serde(deserialize_with = "objects")]
    pub azure_sql_database: Vec<ImpactedFeature>,
    /// Azure SQL Managed Instance.
    #[serde(deserialize_with = "objects")]
    pub azure_sql_managed_instance: Vec<ImpactedFeature>,
}

/// One feature of [`ImpactedObjectsSummary`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ImpactedFeature {
    /// The feature, e.g. `AgentJobs`.
    pub feature_id: Option<String>,
    /// How many objects it concerns.
    pub number_impacted: Option<i64>,
    /// E.g. `Warning`.
    pub issue_category: Option<String>,
}

/// The answer of [`ArcOp::RunMiLinkAssessment`]
/// (`SqlServerInstanceManagedInstanceLinkAssessmentResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MiLinkAssessmentResult {
    /// One result per check.
    #[serde(deserialize_with = "objects")]
    pub assessments: Vec<MiLinkCheck>,
}

impl MiLinkAssessmentResult {
    /// The checks that failed: each blocks the link.
    pub fn failures(&self) -> impl Iterator<Item = &MiLinkCheck> {
        self.with_status(AssessmentStatus::Failure)
    }

    /// The checks that passed with a warning.
    pub fn warnings(&self) -> impl Iterator<Item = &MiLinkCheck> {
        self.with_status(AssessmentStatus::Warning)
    }

    /// Whether every check passed (warnings allowed). A status milink does not know counts as
    /// not passed.
    pub fn passed(&self) -> bool {
        self.assessments.iter().all(|c| {
            matches!(
                c.status,
                Some(AssessmentStatus::Success | AssessmentStatus::Warning)
            )
        })
    }

    /// The checks of `category`.
    pub fn in_category<'a>(
        &'a self,
        category: &'a MiLinkAssessmentCategory,
    ) -> impl Iterator<Item = &'a MiLinkCheck> {
        self.assessments
            .iter()
            .filter(move |c| c.category.as_ref() == Some(category))
    }

    fn with_status(&self, status: AssessmentStatus) -> impl Iterator<Item = &MiLinkCheck> {
        self.assessments
            .iter()
            .filter(move |c| c.status.as_ref() == Some(&status))
    }
}

/// One MI link check (`SqlServerInstanceManagedInstanceLinkAssessment`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct MiLinkCheck {
    /// The requirement, e.g. `AlwaysOn`, `DatabaseMirroringEndpointEncryption`.
    pub name: Option<String>,
    /// Its category.
    pub category: Option<MiLinkAssessmentCategory>,
    /// Its result.
    pub status: Option<AssessmentStatus>,
    /// What was checked, as text.
    pub information: Option<String>,
    /// Details and the recommended action, as text.
    pub additional_information: Option<String>,
    /// The databases that fail it (`failingDbs`).
    #[serde(deserialize_with = "null_default")]
    pub failing_dbs: Vec<String>,
}

/// The answer of [`ArcOp::GetTelemetry`] (`SqlServerInstanceTelemetryResponse`): a table whose
/// cells are strings of their column's type. [`parse`] and [`answer`] check that every row has
/// one cell per column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TelemetryTable {
    /// The columns (required).
    #[serde(deserialize_with = "objects")]
    pub columns: Vec<TelemetryColumn>,
    /// The rows (required); a `null` cell reads as `None` (UNVERIFIED: that the service sends
    /// any; the spec says strings).
    pub rows: Vec<Vec<Option<String>>>,
    /// The next section of rows, if any.
    #[serde(default)]
    pub next_link: Option<String>,
}

impl TelemetryTable {
    /// The index of column `name` (compared ignoring ASCII case).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| {
            c.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
    }

    /// The cells of column `name`, one per row (`None` for a `null` cell or a missing column).
    pub fn cells<'a>(&'a self, name: &str) -> impl Iterator<Item = Option<&'a str>> + 'a {
        let at = self.column(name);
        self.rows
            .iter()
            .map(move |row| at.and_then(|i| row.get(i)).and_then(|c| c.as_deref()))
    }

    /// The first row whose cell in column `name` equals `value`.
    pub fn row_where(&self, name: &str, value: &str) -> Option<&[Option<String>]> {
        let at = self.column(name)?;
        self.rows
            .iter()
            .find(|row| row.get(at).and_then(|c| c.as_deref()) == Some(value))
            .map(Vec::as_slice)
    }

    fn check_widths(&self) -> Result<(), ArcParseError> {
        let columns = self.columns.len();
        match self.rows.iter().position(|r| r.len() != columns) {
            Some(row) => Err(ArcParseError::RowWidth {
                row,
                cells: self.rows[row].len(),
                columns,
            }),
            None => Ok(()),
        }
    }
}

/// One column of a [`TelemetryTable`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TelemetryColumn {
    /// Its name, e.g. `database_name`.
    pub name: Option<String>,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: Option<TelemetryColumnType>,
}

/// The answer of [`ArcOp::RunMigrationAssessment`] (`SqlServerInstanceRunMigrationAssessmentResponse`):
/// the job's status, not its results (those appear in the instance's
/// `properties.migration.assessment`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct MigrationAssessmentJob {
    /// The job's id.
    pub id: Option<String>,
    /// SQL Server's instance name.
    pub instance_name: Option<String>,
    /// The job's status.
    pub job_status: Option<JobStatus>,
    /// The exception of a failed job, as text.
    pub job_exception: Option<String>,
    /// The background job.
    #[serde(deserialize_with = "object")]
    pub background_job: Option<BackgroundJob>,
    /// The sequencer's actions.
    #[serde(deserialize_with = "objects")]
    pub sequencer_actions: Vec<SequencerAction>,
}

/// The background job of a [`MigrationAssessmentJob`] (enums the spec defines, kept as strings).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct BackgroundJob {
    /// `Enabled`, `Disabled`, `Deleted`, `Completed`, `Faulted`, `Suspended`.
    pub state: Option<String>,
    /// `Waiting`, `Running`.
    pub execution_state: Option<String>,
    /// Start time (date-time).
    pub start_time: Option<String>,
    /// End time (date-time).
    pub end_time: Option<String>,
    /// `Succeeded`, `Completed`, `Failed`, `Faulted`, `Postponed`, `Rescheduled`.
    pub last_execution_status: Option<String>,
    /// Last execution time (date-time).
    pub last_execution_time: Option<String>,
}

/// One sequencer action of a [`MigrationAssessmentJob`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SequencerAction {
    /// The action's id.
    pub action_id: Option<String>,
    /// `NotStarted`, `WaitingPredecessors`, `ExecutingAction`, `CreatingSuccessors`, `Completed`.
    pub state: Option<String>,
    /// `NotCompleted`, `Succeeded`, `Failed`, `TimedOut`, `Skipped`.
    pub result: Option<String>,
}

/// An availability group of an Arc SQL Server instance (`SqlServerAvailabilityGroupResource`):
/// a plain one, or the distributed availability group of an MI link, which
/// `createManagedInstanceLink` and `failoverMiLink` answer with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SqlServerAvailabilityGroup {
    /// Resource id.
    #[serde(default)]
    pub id: Option<String>,
    /// Resource name.
    #[serde(default)]
    pub name: Option<String>,
    /// Azure region.
    #[serde(default)]
    pub location: Option<String>,
    /// Its properties.
    #[serde(default, deserialize_with = "object_or_default")]
    pub properties: AvailabilityGroupProperties,
}

impl SqlServerAvailabilityGroup {
    /// The replica whose role is `PRIMARY`, if one is.
    pub fn primary_replica(&self) -> Option<&AvailabilityGroupReplica> {
        self.properties.replicas.value.iter().find(|r| {
            r.state
                .as_ref()
                .and_then(|s| s.availability_group_replica_role.as_ref())
                == Some(&ArcReplicaRole::Primary)
        })
    }
}

/// The properties of a [`SqlServerAvailabilityGroup`] (`SqlServerAvailabilityGroupResourceProperties`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AvailabilityGroupProperties {
    /// The group's id, a uuid.
    pub availability_group_id: Option<String>,
    /// SQL Server's server name.
    pub server_name: Option<String>,
    /// SQL Server's instance name.
    pub instance_name: Option<String>,
    /// The machine's id.
    pub vm_id: Option<String>,
    /// When the data was collected (date-time).
    pub collection_timestamp: Option<String>,
    /// The group's settings and health.
    #[serde(deserialize_with = "object")]
    pub info: Option<AvailabilityGroupInfo>,
    /// Its replicas (`replicas.value`).
    #[serde(deserialize_with = "object_or_default")]
    pub replicas: Listed<AvailabilityGroupReplica>,
    /// Its database replicas (`databases.value`).
    #[serde(deserialize_with = "object_or_default")]
    pub databases: Listed<AvailabilityGroupDatabase>,
    /// Provisioning state, a free string.
    pub provisioning_state: Option<String>,
}

/// A list (`{value, nextLink}`): nested in a resource, or a page of a list operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    default,
    rename_all = "camelCase",
    bound(deserialize = "T: DeserializeOwned")
)]
pub struct Listed<T> {
    /// The items.
    #[serde(deserialize_with = "objects")]
    pub value: Vec<T>,
    /// The next page, if any.
    pub next_link: Option<String>,
}

impl<T> Default for Listed<T> {
    fn default() -> Self {
        Listed {
            value: Vec::new(),
            next_link: None,
        }
    }
}

/// `info` of an availability group (`AvailabilityGroupInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AvailabilityGroupInfo {
    /// The failure condition level.
    pub failure_condition_level: Option<i32>,
    /// The health check timeout, ms.
    pub health_check_timeout: Option<i32>,
    /// Whether this is a distributed availability group (an MI link's is).
    pub is_distributed: Option<bool>,
    /// Whether it is contained.
    pub is_contained: Option<bool>,
    /// Whether it is a basic availability group.
    pub basic_features: Option<bool>,
    /// The cluster type, as text.
    pub cluster_type_description: Option<String>,
    /// The primary replica's name.
    pub primary_replica: Option<String>,
    /// Synchronization health, as text.
    pub synchronization_health_description: Option<String>,
    /// What the partner is (`AzureSQLManagedInstance` for an MI link).
    pub replication_partner_type: Option<ReplicationPartnerType>,
}

/// One replica of an availability group (`SqlAvailabilityGroupReplicaResourceProperties`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AvailabilityGroupReplica {
    /// The replica's id.
    pub replica_id: Option<String>,
    /// Its name (`HOST\INSTANCE`, or the managed instance's).
    pub replica_name: Option<String>,
    /// Its resource id.
    pub replica_resource_id: Option<String>,
    /// Its configuration.
    #[serde(deserialize_with = "object")]
    pub configure: Option<ReplicaConfigure>,
    /// Its state.
    #[serde(deserialize_with = "object")]
    pub state: Option<ReplicaState>,
}

/// `configure` of a replica (`AvailabilityGroupConfigure`): the descriptions SQL Server reports.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ReplicaConfigure {
    /// The mirroring endpoint's name.
    pub endpoint_name: Option<String>,
    /// The mirroring endpoint's URL.
    pub endpoint_url: Option<String>,
    /// `SYNCHRONOUS_COMMIT` / `ASYNCHRONOUS_COMMIT`, as SQL Server describes it.
    pub availability_mode_description: Option<String>,
    /// `AUTOMATIC` / `MANUAL` / …, as SQL Server describes it.
    pub failover_mode_description: Option<String>,
    /// `AUTOMATIC` / `MANUAL`, as SQL Server describes it.
    pub seeding_mode_description: Option<String>,
    /// Session timeout, seconds.
    pub session_timeout: Option<i32>,
    /// Backup priority.
    pub backup_priority: Option<i32>,
}

/// `state` of a replica (`AvailabilityGroupState`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ReplicaState {
    /// Its role.
    pub availability_group_replica_role: Option<ArcReplicaRole>,
    /// Operational state, as text.
    pub operational_state_description: Option<String>,
    /// Recovery health, as text.
    pub recovery_health_description: Option<String>,
    /// Synchronization health, as text (`HEALTHY`, …).
    pub synchronization_health_description: Option<String>,
    /// Connected state, as text (`CONNECTED`, …).
    pub connected_state_description: Option<String>,
    /// The last connection error, as text.
    pub last_connect_error_description: Option<String>,
    /// When it happened (date-time).
    pub last_connect_error_timestamp: Option<String>,
}

/// One database replica of an availability group
/// (`SqlAvailabilityGroupDatabaseReplicaResourceProperties`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AvailabilityGroupDatabase {
    /// The database.
    pub database_name: Option<String>,
    /// The replica it is on.
    pub replica_name: Option<String>,
    /// Whether the replica is local.
    pub is_local: Option<bool>,
    /// Whether it is the primary replica.
    pub is_primary_replica: Option<bool>,
    /// Synchronization state, as text (`SYNCHRONIZED`, `SYNCHRONIZING`, …).
    pub synchronization_state_description: Option<String>,
    /// Whether it takes part in commits.
    pub is_commit_participant: Option<bool>,
    /// Synchronization health, as text.
    pub synchronization_health_description: Option<String>,
    /// Database state, as text (`ONLINE`, …).
    pub database_state_description: Option<String>,
    /// Whether data movement is suspended.
    pub is_suspended: Option<bool>,
    /// Why, as text.
    pub suspend_reason_description: Option<String>,
}

/// A database of an Arc-enabled SQL Server instance (`SqlServerDatabaseResource`,
/// `GET …/sqlServerInstances/{name}/databases`): the per-database facts the readiness rules read.
///
/// UNVERIFIED: `sqlServerDatabases.json` is not copied; the names follow the reference notes
/// (rest-notes §8, milink-facts §6.2) and the published SDKs' `SqlServerDatabaseResourceProperties`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SqlServerDatabase {
    /// Resource id.
    #[serde(default)]
    pub id: Option<String>,
    /// The database's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The database's properties.
    #[serde(default, deserialize_with = "object_or_default")]
    pub properties: SqlServerDatabaseProperties,
}

/// The properties of a [`SqlServerDatabase`] (UNVERIFIED, see there).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SqlServerDatabaseProperties {
    /// The database's collation (`collationName`).
    pub collation_name: Option<String>,
    /// The compatibility level.
    pub compatibility_level: Option<i32>,
    /// The total size in MB (`sizeMB`).
    #[serde(rename = "sizeMB")]
    pub size_mb: Option<f64>,
    /// The data files' size in MB (`dataFileSizeMB`).
    #[serde(rename = "dataFileSizeMB")]
    pub data_file_size_mb: Option<f64>,
    /// The log files' size in MB (`logFileSizeMB`).
    #[serde(rename = "logFileSizeMB")]
    pub log_file_size_mb: Option<f64>,
    /// The database's state (`Online`, …).
    pub state: Option<String>,
    /// The recovery model (`Full`, `Bulk-logged`, `Simple`).
    pub recovery_mode: Option<String>,
    /// The last backups.
    #[serde(deserialize_with = "object")]
    pub backup_information: Option<DatabaseBackupInformation>,
    /// The database's options.
    #[serde(deserialize_with = "object")]
    pub database_options: Option<DatabaseOptions>,
}

/// `backupInformation` of a [`SqlServerDatabase`] (UNVERIFIED, see there).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DatabaseBackupInformation {
    /// When the last full backup finished (RFC 3339).
    pub last_full_backup: Option<String>,
    /// When the last log backup finished (RFC 3339).
    pub last_log_backup: Option<String>,
}

/// `databaseOptions` of a [`SqlServerDatabase`] (UNVERIFIED, see there).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DatabaseOptions {
    /// Encrypted with TDE.
    pub is_encrypted: Option<bool>,
    /// Has memory-optimized (In-Memory OLTP) data.
    pub is_memory_optimization_enabled: Option<bool>,
    /// Has In-Memory OLTP (Hekaton) files (rest-notes §8).
    pub is_hekaton_files_on: Option<bool>,
    /// How many In-Memory OLTP files (rest-notes §8).
    pub number_of_hekaton_files: Option<i32>,
}

/// What a `202 Accepted` of a long-running Arc operation carries: where to follow it.
///
/// The examples send all three headers; `Retry-After` is seconds (`int32` in the spec). The
/// examples' `Azure-AsyncOperation` URLs are `…/providers/Microsoft.AzureArcData/locations/{loc}/
/// operationsStatuses/{id}` (subscription-level, for the availability group operations) and
/// `…/operationStatuses/{id}` (tenant-level, for the assessment and telemetry); the `Location`
/// of `failoverMiLink` and `deleteMiLink` is `…/operationResults/id1`. UNVERIFIED: the shape of
/// the status body these URLs answer with (no example shows one; [`OperationStatus`], ARM's
/// common shape, is assumed), and where a finished operation's result is read (the spec says
/// `final-state-via: azure-async-operation`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ArcAccepted {
    /// The `Azure-AsyncOperation` URL: the operation's status.
    pub azure_async_operation: Option<String>,
    /// The `Location` URL.
    pub location: Option<String>,
    /// `Retry-After`, if it is a whole number of seconds.
    pub retry_after: Option<Duration>,
}

impl ArcAccepted {
    /// Reads the three headers (names compared ignoring ASCII case; the first of each wins).
    pub fn from_headers<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> ArcAccepted {
        let mut accepted = ArcAccepted::default();
        for (name, value) in headers {
            let value = value.trim();
            if name.eq_ignore_ascii_case("azure-asyncoperation") {
                accepted
                    .azure_async_operation
                    .get_or_insert_with(|| value.to_owned());
            } else if name.eq_ignore_ascii_case("location") {
                accepted.location.get_or_insert_with(|| value.to_owned());
            } else if name.eq_ignore_ascii_case("retry-after") && accepted.retry_after.is_none() {
                accepted.retry_after = value
                    .parse::<u32>()
                    .ok()
                    .map(|s| Duration::from_secs(s.into()));
            }
        }
        accepted
    }

    /// The URL to poll: `Azure-AsyncOperation` (the spec's final state), else `Location`.
    pub fn poll_url(&self) -> Option<&str> {
        self.azure_async_operation
            .as_deref()
            .or(self.location.as_deref())
    }
}

/// A successful answer of an [`ArcOp`], typed by [`answer`].
#[derive(Debug, Clone, PartialEq)]
pub enum ArcAnswer {
    /// `202 Accepted`: the operation runs on (its headers: [`ArcAccepted`]).
    Accepted,
    /// The instance.
    Instance(Box<SqlServerInstance>),
    /// An availability group: a `GET`'s, or the link's after `createManagedInstanceLink` or
    /// `failoverMiLink`.
    AvailabilityGroup(Box<SqlServerAvailabilityGroup>),
    /// A page of availability groups.
    AvailabilityGroups(Listed<SqlServerAvailabilityGroup>),
    /// A page of the instance's databases.
    Databases(Listed<SqlServerDatabase>),
    /// The migration assessment job's status.
    MigrationAssessmentJob(MigrationAssessmentJob),
    /// The MI link assessment's results.
    MiLinkAssessment(MiLinkAssessmentResult),
    /// A telemetry table.
    Telemetry(TelemetryTable),
}

/// The largest answer body read (a telemetry table of many rows fits).
pub const MAX_ANSWER: usize = 16 * 1024 * 1024;
/// The longest part of a parser's message kept in an [`ArcParseError`].
const MAX_MESSAGE: usize = 200;

/// An answer that could not be read. The body is untrusted: what an error keeps of it is cut to
/// a couple of hundred characters, control characters replaced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArcParseError {
    /// The body ends before its JSON does (a cut connection).
    #[error("the {what} answer ends early (line {line}, column {column})")]
    Truncated {
        /// What was read.
        what: &'static str,
        /// Where the body ended.
        line: usize,
        /// Where the body ended.
        column: usize,
    },
    /// The body is not JSON.
    #[error("the {what} answer is not JSON (line {line}, column {column}): {message}")]
    NotJson {
        /// What was read.
        what: &'static str,
        /// Where.
        line: usize,
        /// Where.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// The body is JSON of another shape: a field of the wrong type, a required one missing.
    #[error(
        "the {what} answer does not have the spec's shape (line {line}, column {column}): {message}"
    )]
    Shape {
        /// What was read.
        what: &'static str,
        /// Where.
        line: usize,
        /// Where.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A telemetry row does not have one cell per column.
    #[error("telemetry row {row} has {cells} cells for {columns} columns")]
    RowWidth {
        /// The row's index.
        row: usize,
        /// Its cells.
        cells: usize,
        /// The columns.
        columns: usize,
    },
    /// The body is larger than [`MAX_ANSWER`].
    #[error("the answer is {len} bytes, more than the {max} read")]
    TooLarge {
        /// The body's length.
        len: usize,
        /// [`MAX_ANSWER`].
        max: usize,
    },
    /// A status the operation does not answer with on success.
    #[error("{operation} does not answer with status {status} on success")]
    UnexpectedStatus {
        /// The operation's id.
        operation: &'static str,
        /// The status.
        status: u16,
    },
}

/// What [`parse`] reads: every answer model of this module.
pub trait ArcModel: DeserializeOwned {
    /// The model's name in errors.
    const WHAT: &'static str;

    /// A check beyond the types (none by default).
    fn check(&self) -> Result<(), ArcParseError> {
        Ok(())
    }
}

macro_rules! arc_model {
    ($($name:ty => $what:literal),+ $(,)?) => {
        $(impl ArcModel for $name {
            const WHAT: &'static str = $what;
        })+
    };
}

arc_model!(
    SqlServerInstance => "sqlServerInstance",
    SqlServerAvailabilityGroup => "availability group",
    Listed<SqlServerAvailabilityGroup> => "availability group list",
    Listed<SqlServerDatabase> => "database list",
    SqlServerDatabase => "database",
    MigrationAssessmentJob => "migration assessment job",
    MiLinkAssessmentResult => "MI link assessment",
    OperationStatus => "operation status",
);

impl ArcModel for TelemetryTable {
    const WHAT: &'static str = "telemetry";

    fn check(&self) -> Result<(), ArcParseError> {
        self.check_widths()
    }
}

/// Reads `body` as `T`: a typed error for a body that is too large, not JSON, cut short, of
/// another shape, or (telemetry) with rows of the wrong width. Never panics.
pub fn parse<T: ArcModel>(body: &[u8]) -> Result<T, ArcParseError> {
    if body.len() > MAX_ANSWER {
        return Err(ArcParseError::TooLarge {
            len: body.len(),
            max: MAX_ANSWER,
        });
    }
    // serde reads an array as a struct's fields by position: every answer is an object.
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ArcParseError::Shape {
            what: T::WHAT,
            line: 1,
            column: 1,
            message: "an array where the spec has an object".to_owned(),
        });
    }
    let value: T = serde_json::from_slice(body).map_err(|e| parse_error(T::WHAT, body, &e))?;
    value.check()?;
    Ok(value)
}

fn parse_error(what: &'static str, body: &[u8], e: &serde_json::Error) -> ArcParseError {
    let (line, column) = (e.line(), e.column());
    // A number cut short is a syntax error at the last byte: the body ended early.
    let end_line = 1 + body.iter().filter(|b| **b == b'\n').count();
    let end_column = body.iter().rev().take_while(|b| **b != b'\n').count();
    let at_end = (line, column) == (end_line, end_column);
    // The message without serde's own " at line … column …".
    let text = e.to_string();
    let message = match text.rfind(" at line ") {
        Some(at) => clean(&text[..at]),
        None => clean(&text),
    };
    match e.classify() {
        serde_json::error::Category::Eof => ArcParseError::Truncated { what, line, column },
        serde_json::error::Category::Syntax if at_end => {
            ArcParseError::Truncated { what, line, column }
        }
        serde_json::error::Category::Data => ArcParseError::Shape {
            what,
            line,
            column,
            message,
        },
        serde_json::error::Category::Syntax | serde_json::error::Category::Io => {
            ArcParseError::NotJson {
                what,
                line,
                column,
                message,
            }
        }
    }
}

/// At most [`MAX_MESSAGE`] characters of untrusted text, control characters replaced.
fn clean(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(MAX_MESSAGE)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    if text.chars().count() > MAX_MESSAGE {
        out.push('…');
    }
    out
}

/// The successful answer of `op` with `status` and `body`, typed: `202` of a long-running
/// operation is [`ArcAnswer::Accepted`] (its body ignored), `200` is read as the operation's
/// model. Any other status is [`ArcParseError::UnexpectedStatus`] (failures go through ARM's
/// error mapping, not here).
pub fn answer(op: &ArcOp, status: u16, body: &[u8]) -> Result<ArcAnswer, ArcParseError> {
    let unexpected = || ArcParseError::UnexpectedStatus {
        operation: op.operation_id(),
        status,
    };
    match (status, op) {
        (202, _) if op.is_long_running() => Ok(ArcAnswer::Accepted),
        (200, ArcOp::DeleteMiLink { .. }) => Err(unexpected()),
        (200, ArcOp::GetInstance) => parse(body).map(|i| ArcAnswer::Instance(Box::new(i))),
        (200, ArcOp::ListAvailabilityGroups) => parse(body).map(ArcAnswer::AvailabilityGroups),
        (200, ArcOp::ListDatabases) => parse(body).map(ArcAnswer::Databases),
        (
            200,
            ArcOp::GetAvailabilityGroup { .. }
            | ArcOp::CreateMiLink(_)
            | ArcOp::FailoverMiLink { .. },
        ) => parse(body).map(|ag| ArcAnswer::AvailabilityGroup(Box::new(ag))),
        (200, ArcOp::RunMigrationAssessment) => parse(body).map(ArcAnswer::MigrationAssessmentJob),
        (200, ArcOp::RunMiLinkAssessment(_)) => parse(body).map(ArcAnswer::MiLinkAssessment),
        (200, ArcOp::GetTelemetry(_)) => parse(body).map(ArcAnswer::Telemetry),
        _ => Err(unexpected()),
    }
}

/// A nested object: absent or `null` is `None`, anything but an object an error (serde would
/// read an array as a struct's fields by position).
fn object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Null => Ok(None),
        value @ serde_json::Value::Object(_) => T::deserialize(value)
            .map(Some)
            .map_err(serde::de::Error::custom),
        other => Err(serde::de::Error::invalid_type(
            unexpected(&other),
            &"an object",
        )),
    }
}

/// [`object`], `None` read as the type's default.
fn object_or_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned + Default,
{
    Ok(object(deserializer)?.unwrap_or_default())
}

/// A list of objects ([`object`] each; `null` is empty).
fn objects<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Null => Ok(Vec::new()),
        serde_json::Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                serde_json::Value::Object(_) => T::deserialize(item)
                    .map_err(|e| serde::de::Error::custom(format_args!("item {i}: {e}"))),
                other => Err(serde::de::Error::invalid_type(
                    unexpected(&other),
                    &"a list of objects",
                )),
            })
            .collect(),
        other => Err(serde::de::Error::invalid_type(
            unexpected(&other),
            &"a list of objects",
        )),
    }
}

fn unexpected(value: &serde_json::Value) -> serde::de::Unexpected<'_> {
    use serde::de::Unexpected;
    match value {
        serde_json::Value::Null => Unexpected::Unit,
        serde_json::Value::Bool(b) => Unexpected::Bool(*b),
        serde_json::Value::Number(_) => Unexpected::Other("a number"),
        serde_json::Value::String(_) => Unexpected::Other("a string"),
        serde_json::Value::Array(_) => Unexpected::Seq,
        serde_json::Value::Object(_) => Unexpected::Map,
    }
}

/// `null` read as the type's default (ARM writes `null` for empty lists and objects).
fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}
