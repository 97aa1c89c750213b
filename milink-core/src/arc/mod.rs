//! The SQL Server side of the link driven through Azure Arc: each [`ArcOp`] on an Arc-enabled
//! SQL Server (resource provider `Microsoft.AzureArcData`, api-version [`API_VERSION`]) becomes
//! one Azure Resource Manager request (method, path under the management endpoint, api-version
//! and JSON body), following the official REST specs copied in `testdata/` (rest-notes §8,
//! milink-facts §6).
//!
//! Through these calls Azure drives SQL Server's half of the link: the Arc extension on the
//! machine creates the endpoint, the availability group and the distributed availability group,
//! exchanges the certificates, fails the link over and removes it, granting itself just-in-time
//! SQL permissions for each step (milink-facts §6.1: `CREATE AVAILABILITY GROUP`, `CREATE
//! ENDPOINT`, `CREATE CERTIFICATE`, … for the creation; sysadmin for a failover or a removal).
//! The operations milink needs are:
//!
//! | [`ArcOp`] | method and path under the instance | body |
//! |---|---|---|
//! | [`ArcOp::GetInstance`] | `GET` (the instance itself) | none |
//! | [`ArcOp::ListDatabases`] | `GET /databases` | none |
//! | [`ArcOp::ListAvailabilityGroups`] | `GET /availabilityGroups` | none |
//! | [`ArcOp::GetAvailabilityGroup`] | `GET /availabilityGroups/{ag}` | none |
//! | [`ArcOp::RunMigrationAssessment`] | `POST /runMigrationAssessment` | none |
//! | [`ArcOp::RunMiLinkAssessment`] | `POST /runManagedInstanceLinkAssessment` | [`MiLinkAssessmentRequest`] |
//! | [`ArcOp::GetTelemetry`] | `POST /getTelemetry` | [`TelemetryRequest`] |
//! | [`ArcOp::CreateMiLink`] | `POST /createManagedInstanceLink` | [`MiLinkCreate`] |
//! | [`ArcOp::FailoverMiLink`] | `POST /availabilityGroups/{dag}/failoverMiLink` | `{managedInstanceId, force}` |
//! | [`ArcOp::DeleteMiLink`] | `POST /availabilityGroups/{dag}/deleteMiLink` | none |
//!
//! The availability group paths and bodies are checked against `sqlServerAvailabilityGroups.json`.
//! The `sqlServerInstances` operations (the instance's `GET` and its three actions) have their
//! paths in `azurearcdata.json`, which is not copied: their paths and operation ids are those of
//! the reference notes (rest-notes §8) and only their bodies are checked, against the
//! definitions in `sqlServerInstances.json` (UNVERIFIED: the paths against a spec file).
//!
//! What milink reads back is in [`models`]. Pure: no I/O, no credentials.

pub mod assessment;
#[cfg(feature = "arm")]
pub mod client;
pub mod models;
mod ops;
pub mod permissions;
pub mod route;
#[cfg(feature = "arm")]
pub mod source;

pub use ops::*;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::arm::{ArmRequest, Method, segment};
use crate::names::{
    AgName, InstanceId, LinkName, NameError, NameRule, ResourceIdShape, parse_resource_id,
};

/// The api-version of `Microsoft.AzureArcData` milink uses: the newest stable one, the default
/// tag of the provider's REST specs (`package-2026-01-01`).
pub const API_VERSION: &str = "2026-01-01";
/// The resource provider of Arc-enabled SQL Server.
pub const PROVIDER: &str = "Microsoft.AzureArcData";

/// The ARM resource id of an Arc-enabled SQL Server instance:
/// `/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.AzureArcData/sqlServerInstances/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ArcInstanceId {
    subscription_id: String,
    resource_group: String,
    name: String,
}

impl ArcInstanceId {
    /// Parses an Arc SQL Server instance's resource id.
    ///
    /// The fixed segments (`subscriptions`, `resourceGroups`, `providers`,
    /// `Microsoft.AzureArcData`, `sqlServerInstances`) are matched case-insensitively, as ARM
    /// does (the instance's own example answers with `SqlServerInstances`); a trailing `/` is
    /// accepted. The subscription, resource group and name must be non-empty and free of
    /// whitespace, control characters, `?` and `#`.
    pub fn parse(value: &str) -> Result<Self, NameError> {
        let [sub, rg, name] = parse_resource_id(
            value,
            ResourceIdShape {
                kind: "ArcInstanceId",
                provider: PROVIDER,
                provider_expected: "the provider 'Microsoft.AzureArcData'",
                resource_type: "sqlServerInstances",
                type_expected: "'sqlServerInstances' as the seventh segment",
                name_expected: "non-empty subscription, resource group and instance name",
                rule: |expected| NameRule::ArcResourceIdShape { expected },
            },
        )?;
        Ok(ArcInstanceId {
            subscription_id: sub,
            resource_group: rg,
            name,
        })
    }

    /// Builds an id from its parts (validated as [`ArcInstanceId::parse`] does).
    pub fn from_parts(
        subscription_id: &str,
        resource_group: &str,
        name: &str,
    ) -> Result<Self, NameError> {
        ArcInstanceId::parse(&format!(
            "/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/{PROVIDER}/sqlServerInstances/{name}"
        ))
    }

    /// The subscription id.
    pub fn subscription_id(&self) -> &str {
        &self.subscription_id
    }

    /// The resource group.
    pub fn resource_group(&self) -> &str {
        &self.resource_group
    }

    /// The instance's resource name (the Arc extension names it `HOST` or `HOST_INSTANCE`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The id as a URL path: each variable segment percent-encoded as [`segment`] does (the
    /// same text as [`fmt::Display`] for names of letters, digits, `-`, `.`, `_` and `~`).
    pub fn path(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/{PROVIDER}/sqlServerInstances/{}",
            segment(&self.subscription_id),
            segment(&self.resource_group),
            segment(&self.name)
        )
    }

    /// The resource id of the availability group `name` of this instance
    /// (`…/sqlServerInstances/{name}/availabilityGroups/{ag}`), as a distributed availability
    /// group's member names it. The name is percent-encoded as in a path (UNVERIFIED: how ARM
    /// spells, inside a body, a name that needs escaping; plain names are unchanged).
    pub fn availability_group_id(&self, name: &AgName) -> String {
        format!(
            "{}/availabilityGroups/{}",
            self.path(),
            segment(name.as_str())
        )
    }
}

impl fmt::Display for ArcInstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "/subscriptions/{}/resourceGroups/{}/providers/{PROVIDER}/sqlServerInstances/{}",
            self.subscription_id, self.resource_group, self.name
        )
    }
}

impl FromStr for ArcInstanceId {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ArcInstanceId::parse(s)
    }
}

impl Serialize for ArcInstanceId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ArcInstanceId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ArcInstanceId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Which failover [`ArcOp::FailoverMiLink`] asks for. There is no default: a forced failover
/// may lose every commit the new primary had not hardened, so the caller always says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ArcFailover {
    /// A planned failover (`"force": false`): the secondary must be synchronized first.
    Planned,
    /// A forced failover that allows data loss (`"force": true`).
    ForcedAllowDataLoss,
}

/// One operation milink asks of an Arc-enabled SQL Server instance; [`request`] renders it.
#[derive(Debug, Clone, PartialEq)]
pub enum ArcOp {
    /// `SqlServerInstances_Get`: the instance, with the facts the readiness assessment reads
    /// ([`models::SqlServerInstance`]).
    GetInstance,
    /// `SqlServerDatabases_List`: the instance's databases (one page of
    /// [`models::SqlServerDatabase`]; UNVERIFIED: the spec file is not copied).
    ListDatabases,
    /// `SqlServerAvailabilityGroups_List`: the instance's availability groups (one page of
    /// [`models::SqlServerAvailabilityGroup`]).
    ListAvailabilityGroups,
    /// `SqlServerAvailabilityGroups_Get` of one availability group (an MI link's distributed
    /// availability group is one too).
    GetAvailabilityGroup {
        /// The availability group's resource name.
        name: AgName,
    },
    /// `SqlServerInstances_RunMigrationAssessment`: starts the migration assessment job (not a
    /// long-running operation: it answers with the job's status; the results appear later in
    /// the instance's `properties.migration.assessment`).
    RunMigrationAssessment,
    /// `SqlServerInstances_RunManagedInstanceLinkAssessment`: the service's own MI link checks
    /// (long-running).
    RunMiLinkAssessment(Box<MiLinkAssessmentRequest>),
    /// `SqlServerInstances_GetTelemetry`: one dataset of the instance's telemetry, e.g. a
    /// database's replica lag ([`TelemetryRequest::replica_lag`]) (long-running).
    GetTelemetry(Box<TelemetryRequest>),
    /// `SqlServerAvailabilityGroups_CreateManagedInstanceLink`: SQL Server's availability group,
    /// the distributed availability group and the link, in one long-running operation.
    CreateMiLink(Box<MiLinkCreate>),
    /// `SqlServerAvailabilityGroups_failoverMiLink`: fail the link over to the managed instance
    /// (long-running).
    FailoverMiLink {
        /// The link: the distributed availability group's resource name under the instance's
        /// `availabilityGroups` (the create example answers with the DAG's name there; the spec
        /// calls the parameter only "Name of SQL Availability Group").
        link: LinkName,
        /// The managed instance at the other end.
        managed_instance: InstanceId,
        /// Planned or forced: always sent.
        failover: ArcFailover,
    },
    /// `SqlServerAvailabilityGroups_deleteMiLink`: remove the link (long-running; `202` only).
    DeleteMiLink {
        /// The link, as in [`ArcOp::FailoverMiLink`].
        link: LinkName,
    },
}

impl ArcOp {
    /// The operation's id in the REST specs (also the name of the Azure RBAC operation behind
    /// the portal's pane, milink-facts §6.1).
    pub fn operation_id(&self) -> &'static str {
        match self {
            ArcOp::GetInstance => "SqlServerInstances_Get",
            ArcOp::ListDatabases => "SqlServerDatabases_List",
            ArcOp::ListAvailabilityGroups => "SqlServerAvailabilityGroups_List",
            ArcOp::GetAvailabilityGroup { .. } => "SqlServerAvailabilityGroups_Get",
            ArcOp::RunMigrationAssessment => "SqlServerInstances_RunMigrationAssessment",
            ArcOp::RunMiLinkAssessment(_) => "SqlServerInstances_RunManagedInstanceLinkAssessment",
            ArcOp::GetTelemetry(_) => "SqlServerInstances_GetTelemetry",
            ArcOp::CreateMiLink(_) => "SqlServerAvailabilityGroups_CreateManagedInstanceLink",
            ArcOp::FailoverMiLink { .. } => "SqlServerAvailabilityGroups_failoverMiLink",
            ArcOp::DeleteMiLink { .. } => "SqlServerAvailabilityGroups_deleteMiLink",
        }
    }

    /// Whether the service may answer `202 Accepted` and finish later (`x-ms-long-running-
    /// operation` in the spec; for the `sqlServerInstances` actions, rest-notes §8).
    pub fn is_long_running(&self) -> bool {
        matches!(
            self,
            ArcOp::RunMiLinkAssessment(_)
                | ArcOp::GetTelemetry(_)
                | ArcOp::CreateMiLink(_)
                | ArcOp::FailoverMiLink { .. }
                | ArcOp::DeleteMiLink { .. }
        )
    }

    /// Whether the operation only reads: the `GET`s, and the two actions that are `POST`s
    /// without changing anything (`getTelemetry`, `runManagedInstanceLinkAssessment`). The
    /// migration assessment's `POST` is not one: it starts a job that writes its results onto
    /// the instance's resource (read them with [`ArcOp::GetInstance`]). A read-only
    /// `ArcSqlServer` (feature `arm`) sends only these.
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            ArcOp::GetInstance
                | ArcOp::ListDatabases
                | ArcOp::ListAvailabilityGroups
                | ArcOp::GetAvailabilityGroup { .. }
                | ArcOp::GetTelemetry(_)
                | ArcOp::RunMiLinkAssessment(_)
        )
    }

    /// Whether sending the operation twice could do something twice: a second failover would
    /// hand the role back, so a lost answer is read (the availability group's roles), never
    /// re-sent blindly.
    pub fn is_role_change(&self) -> bool {
        matches!(self, ArcOp::FailoverMiLink { .. })
    }
}

/// The ARM request for `op` on `instance`.
pub fn request(op: &ArcOp, instance: &ArcInstanceId) -> ArmRequest {
    let ag = |name: &str, tail: &str| format!("/availabilityGroups/{}{tail}", segment(name));
    let (method, tail, body): (Method, String, Option<Value>) = match op {
        ArcOp::GetInstance => (Method::Get, String::new(), None),
        ArcOp::ListDatabases => (Method::Get, "/databases".to_owned(), None),
        ArcOp::ListAvailabilityGroups => (Method::Get, "/availabilityGroups".to_owned(), None),
        ArcOp::GetAvailabilityGroup { name } => (Method::Get, ag(name.as_str(), ""), None),
        ArcOp::RunMigrationAssessment => (Method::Post, "/runMigrationAssessment".to_owned(), None),
        ArcOp::RunMiLinkAssessment(request) => (
            Method::Post,
            "/runManagedInstanceLinkAssessment".to_owned(),
            Some(request.body()),
        ),
        ArcOp::GetTelemetry(request) => (
            Method::Post,
            "/getTelemetry".to_owned(),
            Some(request.body()),
        ),
        ArcOp::CreateMiLink(create) => (
            Method::Post,
            "/createManagedInstanceLink".to_owned(),
            Some(create.body(instance)),
        ),
        ArcOp::FailoverMiLink {
            link,
            managed_instance,
            failover,
        } => (
            Method::Post,
            ag(link.as_str(), "/failoverMiLink"),
            // The official example sends no `force`; the spec gives it no default, so milink
            // always says which failover it means.
            Some(json!({
                "managedInstanceId": managed_instance.to_string(),
                "force": *failover == ArcFailover::ForcedAllowDataLoss,
            })),
        ),
        ArcOp::DeleteMiLink { link } => (Method::Post, ag(link.as_str(), "/deleteMiLink"), None),
    };
    ArmRequest {
        method,
        path: format!("{}{tail}", instance.path()),
        api_version: API_VERSION,
        body,
    }
}

#[cfg(test)]
mod examples_tests;
#[cfg(test)]
mod parse_tests;
#[cfg(test)]
mod schema_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arm::MANAGEMENT_ENDPOINT;

    const ID: &str = "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/testrg/providers/Microsoft.AzureArcData/sqlServerInstances/testSqlServer_INST1";

    #[test]
    fn instance_ids_parse_display_and_refuse_other_shapes() {
        let id = ArcInstanceId::parse(ID).unwrap();
        assert_eq!(id.subscription_id(), "00000000-1111-2222-3333-444444444444");
        assert_eq!(id.resource_group(), "testrg");
        assert_eq!(id.name(), "testSqlServer_INST1");
        assert_eq!(id.to_string(), ID);
        assert_eq!(id.path(), ID);
        assert_eq!(ID.parse::<ArcInstanceId>().unwrap(), id);
        assert_eq!(
            ArcInstanceId::from_parts(
                "00000000-1111-2222-3333-444444444444",
                "testrg",
                "testSqlServer_INST1"
            )
            .unwrap(),
            id
        );
        // ARM's fixed segments in any case (the instance example answers `SqlServerInstances`),
        // and a trailing slash.
        let other_case = ID
            .replace("sqlServerInstances", "SqlServerInstances")
            .replace("resourceGroups", "resourcegroups")
            .replace("Microsoft.AzureArcData", "microsoft.azurearcdata");
        assert_eq!(ArcInstanceId::parse(&other_case).unwrap(), id);
        assert_eq!(ArcInstanceId::parse(&format!("{ID}/")).unwrap(), id);
        // Serde goes through the same parse.
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<ArcInstanceId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<ArcInstanceId>("\"/subscriptions/s\"").is_err());

        for (bad, expected) in [
            ("", "a leading '/'"),
            (
                "subscriptions/s/resourceGroups/rg/providers/Microsoft.AzureArcData/sqlServerInstances/x",
                "a leading '/'",
            ),
            (
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/sqlServerInstances/x",
                "the provider 'Microsoft.AzureArcData'",
            ),
            (
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/managedInstances/x",
                "'sqlServerInstances' as the seventh segment",
            ),
            (
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.AzureArcData/dataControllers/x",
                "'sqlServerInstances' as the seventh segment",
            ),
            (
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.AzureArcData/sqlServerInstances",
                "exactly eight segments",
            ),
            (
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.AzureArcData/sqlServerInstances/x/availabilityGroups/ag",
                "exactly eight segments",
            ),
            (
                "/subscriptions//resourceGroups/rg/providers/Microsoft.AzureArcData/sqlServerInstances/x",
                "non-empty subscription, resource group and instance name",
            ),
            (
                "/subscriptions/s/resourceGroups/r g/providers/Microsoft.AzureArcData/sqlServerInstances/x",
                "segments without whitespace, control characters, '?' or '#'",
            ),
            (
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.AzureArcData/sqlServerInstances/x?y",
                "segments without whitespace, control characters, '?' or '#'",
            ),
            (
                "/subscriptions/s/resourcegroupz/rg/providers/Microsoft.AzureArcData/sqlServerInstances/x",
                "'resourceGroups' as the third segment",
            ),
        ] {
            let err = ArcInstanceId::parse(bad).unwrap_err();
            assert_eq!(err.kind, "ArcInstanceId", "{bad}");
            assert_eq!(err.rule, NameRule::ArcResourceIdShape { expected }, "{bad}");
            assert!(err.to_string().contains("Arc-enabled SQL Server"), "{err}");
        }
    }

    #[test]
    fn names_in_paths_are_escaped() {
        let id = ArcInstanceId::from_parts("s", "rg(1)", "HOST_INST").unwrap();
        assert_eq!(
            id.path(),
            "/subscriptions/s/resourceGroups/rg%281%29/providers/Microsoft.AzureArcData/sqlServerInstances/HOST_INST"
        );
        assert_eq!(
            id.to_string(),
            "/subscriptions/s/resourceGroups/rg(1)/providers/Microsoft.AzureArcData/sqlServerInstances/HOST_INST"
        );
        let r = request(
            &ArcOp::DeleteMiLink {
                link: LinkName::new("a b/c").unwrap(),
            },
            &id,
        );
        assert!(
            r.path
                .ends_with("/availabilityGroups/a%20b%2Fc/deleteMiLink"),
            "{}",
            r.path
        );
        let r = request(
            &ArcOp::GetAvailabilityGroup {
                name: AgName::new("AG#1").unwrap(),
            },
            &id,
        );
        assert!(r.path.ends_with("/availabilityGroups/AG%231"), "{}", r.path);
        assert_eq!(
            id.availability_group_id(&AgName::new("ag 1").unwrap()),
            format!("{}/availabilityGroups/ag%201", id.path())
        );
    }

    #[test]
    fn every_op_has_its_method_path_and_api_version() {
        let id = ArcInstanceId::parse(ID).unwrap();
        let mi = InstanceId::from_parts("sub", "rg", "mi").unwrap();
        let link = LinkName::new("testDAG").unwrap();
        let cases: Vec<(ArcOp, Method, &str, bool)> = vec![
            (ArcOp::GetInstance, Method::Get, "", false),
            (ArcOp::ListDatabases, Method::Get, "/databases", false),
            (
                ArcOp::ListAvailabilityGroups,
                Method::Get,
                "/availabilityGroups",
                false,
            ),
            (
                ArcOp::GetAvailabilityGroup {
                    name: AgName::new("testDAG").unwrap(),
                },
                Method::Get,
                "/availabilityGroups/testDAG",
                false,
            ),
            (
                ArcOp::RunMigrationAssessment,
                Method::Post,
                "/runMigrationAssessment",
                false,
            ),
            (
                ArcOp::FailoverMiLink {
                    link: link.clone(),
                    managed_instance: mi.clone(),
                    failover: ArcFailover::Planned,
                },
                Method::Post,
                "/availabilityGroups/testDAG/failoverMiLink",
                true,
            ),
            (
                ArcOp::DeleteMiLink { link },
                Method::Post,
                "/availabilityGroups/testDAG/deleteMiLink",
                false,
            ),
        ];
        for (op, method, tail, has_body) in cases {
            let r = request(&op, &id);
            assert_eq!(r.method, method, "{op:?}");
            assert_eq!(
                r.url(MANAGEMENT_ENDPOINT),
                format!("https://management.azure.com{ID}{tail}?api-version=2026-01-01"),
                "{op:?}"
            );
            assert_eq!(r.body.is_some(), has_body, "{op:?}");
        }
    }

    #[test]
    fn the_failover_always_says_whether_it_is_forced() {
        let id = ArcInstanceId::parse(ID).unwrap();
        let mi = InstanceId::from_parts("sub", "rg", "mi").unwrap();
        let op = |failover| ArcOp::FailoverMiLink {
            link: LinkName::new("dag").unwrap(),
            managed_instance: mi.clone(),
            failover,
        };
        let planned = request(&op(ArcFailover::Planned), &id).body.unwrap();
        assert_eq!(planned["force"], false);
        assert_eq!(planned["managedInstanceId"], mi.to_string());
        let forced = request(&op(ArcFailover::ForcedAllowDataLoss), &id)
            .body
            .unwrap();
        assert_eq!(forced["force"], true);
        assert!(op(ArcFailover::Planned).is_role_change());
        assert!(op(ArcFailover::Planned).is_long_running());
        assert!(!ArcOp::GetInstance.is_long_running());
        assert!(!ArcOp::RunMigrationAssessment.is_long_running());
        assert!(
            !ArcOp::DeleteMiLink {
                link: LinkName::new("dag").unwrap()
            }
            .is_role_change()
        );
    }
}
