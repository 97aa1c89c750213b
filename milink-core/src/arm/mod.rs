//! The managed instance's side of the link as Azure Resource Manager requests: each
//! [`InstanceOp`] becomes one request (method, path under the management endpoint, api-version
//! and JSON body) following the official REST specs of
//! `Microsoft.Sql/managedInstances/{mi}/distributedAvailabilityGroups` and
//! `…/serverTrustCertificates` (milink-facts §2.5–§2.6).
//!
//! This is the one source of truth for what milink sends: the lab's plan prints it, the
//! simulator's operation URLs carry its api-version, and the ARM adapter will send it. Pure: no
//! I/O, no credentials.

#[cfg(feature = "arm")]
pub mod client;
pub mod errors;
pub mod models;
#[cfg(any(test, feature = "sim"))]
pub mod spec;

use std::fmt;

use serde::Serialize;
use serde_json::{Value, json};

use crate::lifecycle::{
    ArmFailoverType, AvailabilityMode, FailoverMode, InstanceOp, RoleChangeType, SeedingMode, Side,
};
use crate::names::{InstanceId, LinkMode};

/// The stable api-version milink uses (default package of the SQL resource provider).
pub const API_VERSION: &str = "2025-01-01";
/// The preview api-version, the only one with `linkMode` (MultiDatabase links).
pub const PREVIEW_API_VERSION: &str = "2025-08-01-preview";
/// Azure public cloud's management endpoint (sovereign clouds have their own).
pub const MANAGEMENT_ENDPOINT: &str = "https://management.azure.com";

/// An HTTP method ARM uses (serialized as its name, `"PUT"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// `GET`.
    Get,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `POST`.
    Post,
    /// `DELETE`.
    Delete,
}

impl Method {
    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One ARM request. It carries no credentials: the adapter adds the bearer token when it sends
/// it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmRequest {
    /// HTTP method.
    pub method: Method,
    /// The path under the management endpoint, starting with the instance's resource id
    /// (`/subscriptions/…/managedInstances/{mi}/…`), each segment percent-encoded.
    pub path: String,
    /// The api-version query parameter.
    pub api_version: &'static str,
    /// JSON body, if any.
    pub body: Option<Value>,
}

impl ArmRequest {
    /// The full URL on `endpoint` (e.g. [`MANAGEMENT_ENDPOINT`]).
    pub fn url(&self, endpoint: &str) -> String {
        format!(
            "{}{}?api-version={}",
            endpoint.trim_end_matches('/'),
            self.path,
            self.api_version
        )
    }
}

/// Percent-encodes one URL path segment (RFC 3986 unreserved characters stay).
pub fn segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A certificate's public key as the REST API takes it: `0x` and upper-case hex.
pub fn public_blob(der: &[u8]) -> String {
    let mut out = String::with_capacity(2 + der.len() * 2);
    out.push_str("0x");
    for b in der {
        out.push_str(&format!("{b:02X}"));
    }
    out
}

fn side_role(side: Side) -> &'static str {
    match side {
        Side::ManagedInstance => "Primary",
        Side::SqlServer => "Secondary",
    }
}

/// The ARM request the managed instance adapter sends for `op` on `instance`.
pub fn request(op: &InstanceOp, instance: &InstanceId) -> ArmRequest {
    let base = instance.to_string();
    let at = |method: Method, path: String, body: Option<Value>| ArmRequest {
        method,
        path: format!("{base}/{path}"),
        api_version: API_VERSION,
        body,
    };
    let dag =
        |link: &str, tail: &str| format!("distributedAvailabilityGroups/{}{tail}", segment(link));
    match op {
        InstanceOp::PutServerTrustCertificate {
            name,
            public_blob: der,
        } => at(
            Method::Put,
            format!("serverTrustCertificates/{}", segment(name.as_str())),
            Some(json!({"properties": {"publicBlob": public_blob(der)}})),
        ),
        InstanceOp::GetEndpointCertificate => at(
            Method::Get,
            "endpointCertificates/DATABASE_MIRRORING".to_owned(),
            None,
        ),
        InstanceOp::PutLink { link, properties } => {
            let p = properties;
            let mut body = json!({"properties": {
                "instanceLinkRole": side_role(p.instance_link_role),
                "instanceAvailabilityGroupName": p.instance_ag.as_str(),
                "partnerAvailabilityGroupName": p.partner_ag.as_str(),
                "partnerEndpoint": p.partner_endpoint,
                "failoverMode": match p.failover_mode {
                    FailoverMode::Manual => "Manual",
                    FailoverMode::None => "None",
                },
                "seedingMode": match p.seeding_mode {
                    SeedingMode::Automatic => "Automatic",
                    SeedingMode::Manual => "Manual",
                },
                "databases": p.databases.iter()
                    .map(|d| json!({"databaseName": d.as_str()}))
                    .collect::<Vec<_>>(),
            }});
            let mut request = at(Method::Put, dag(link.as_str(), ""), None);
            // `linkMode` exists only in the preview api-version.
            if p.link_mode == LinkMode::MultiDatabase
                && let Some(props) = body.get_mut("properties").and_then(Value::as_object_mut)
            {
                props.insert("linkMode".into(), json!("MultiDatabase"));
                request.api_version = PREVIEW_API_VERSION;
            }
            request.body = Some(body);
            request
        }
        InstanceOp::SetReplicationMode { link, mode } => at(
            Method::Patch,
            dag(link.as_str(), ""),
            Some(json!({"properties": {"replicationMode": match mode {
                AvailabilityMode::SynchronousCommit => "Sync",
                AvailabilityMode::AsynchronousCommit => "Async",
            }}})),
        ),
        InstanceOp::SetLinkDatabases { link, databases } => {
            let mut request = at(
                Method::Patch,
                dag(link.as_str(), ""),
                Some(json!({"properties": {"databases": databases
                    .iter()
                    .map(|d| json!({"databaseName": d.as_str()}))
                    .collect::<Vec<_>>()}})),
            );
            // Only MultiDatabase links change their list, and `linkMode` exists only in the
            // preview api-version.
            request.api_version = PREVIEW_API_VERSION;
            request
        }
        InstanceOp::Failover {
            link,
            failover_type,
        } => at(
            Method::Post,
            dag(link.as_str(), "/failover"),
            Some(json!({"failoverType": match failover_type {
                ArmFailoverType::Planned => "Planned",
                ArmFailoverType::ForcedAllowDataLoss => "ForcedAllowDataLoss",
            }})),
        ),
        InstanceOp::SetRole { link, role, change } => at(
            Method::Post,
            dag(link.as_str(), "/setRole"),
            Some(json!({
                "instanceRole": side_role(*role),
                "roleChangeType": match change {
                    RoleChangeType::Planned => "Planned",
                    RoleChangeType::Forced => "Forced",
                },
            })),
        ),
        InstanceOp::DeleteLink { link } => at(Method::Delete, dag(link.as_str(), ""), None),
        InstanceOp::DeleteServerTrustCertificate { name } => at(
            Method::Delete,
            format!("serverTrustCertificates/{}", segment(name.as_str())),
            None,
        ),
    }
}

/// A read of the managed instance's resources: one `GET`, rendered by [`read_request`] as
/// [`request`] renders operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArmRead<'a> {
    /// `ManagedInstances_Get`: the instance itself.
    Instance,
    /// `ManagedDatabases_ListByInstance`: its databases (paged).
    Databases,
    /// `ServerTrustCertificates_ListByInstance` (paged).
    TrustCertificates,
    /// `ServerTrustCertificates_Get` of one certificate by name.
    TrustCertificate(&'a str),
    /// `DistributedAvailabilityGroups_ListByInstance`: the links (paged).
    Links,
    /// `DistributedAvailabilityGroups_Get` of one link by name.
    Link(&'a str),
    /// `EndpointCertificates_Get` of the mirroring endpoint's certificate.
    EndpointCertificate,
    /// `ManagedInstanceEncryptionProtectors_Get` of `current`: the TDE protector.
    EncryptionProtector,
    /// `AzurePermissionsForResource_List` on the instance: what the caller may do there
    /// (Microsoft.Authorization, [`AUTHORIZATION_API_VERSION`], paged).
    CallerPermissions,
}

/// The `GET` of the instance failover groups in the instance's resource group and region
/// (`InstanceFailoverGroups_ListByLocation`:
/// `/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Sql/locations/{location}/instanceFailoverGroups`,
/// <https://learn.microsoft.com/rest/api/sql/instance-failover-groups/list-by-location>).
/// Whether a group whose primary lives in another resource group is listed on its secondary's
/// side is UNVERIFIED.
pub fn failover_groups_request(instance: &InstanceId, location: &str) -> ArmRequest {
    ArmRequest {
        method: Method::Get,
        path: format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Sql/locations/{}/instanceFailoverGroups",
            segment(instance.subscription_id()),
            segment(instance.resource_group()),
            segment(location)
        ),
        api_version: API_VERSION,
        body: None,
    }
}

/// The api-version of Microsoft.Authorization's permissions call
/// (`AzurePermissionsForResource_List`).
pub const AUTHORIZATION_API_VERSION: &str = "2022-04-01";
/// The api-version of the Microsoft.Network read milink sends (`Subnets_Get`).
pub const NETWORK_API_VERSION: &str = "2024-05-01";

/// The `GET` of a subnet by its resource id (a managed instance's `subnetId`:
/// `/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Network/virtualNetworks/{v}/subnets/{n}`),
/// each segment percent-encoded again; `None` for an id of another shape.
pub fn subnet_request(subnet_id: &str) -> Option<ArmRequest> {
    let segs: Vec<&str> = subnet_id.trim().strip_prefix('/')?.split('/').collect();
    match segs.as_slice() {
        [
            sub_kw,
            sub,
            rg_kw,
            rg,
            prov,
            ns,
            vnet_kw,
            vnet,
            subnet_kw,
            subnet,
        ] if sub_kw.eq_ignore_ascii_case("subscriptions")
            && rg_kw.eq_ignore_ascii_case("resourceGroups")
            && prov.eq_ignore_ascii_case("providers")
            && ns.eq_ignore_ascii_case("Microsoft.Network")
            && vnet_kw.eq_ignore_ascii_case("virtualNetworks")
            && subnet_kw.eq_ignore_ascii_case("subnets")
            && [sub, rg, vnet, subnet].iter().all(|s| !s.is_empty()) =>
        {
            Some(ArmRequest {
                method: Method::Get,
                path: format!(
                    "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/virtualNetworks/{}/subnets/{}",
                    segment(sub),
                    segment(rg),
                    segment(vnet),
                    segment(subnet)
                ),
                api_version: NETWORK_API_VERSION,
                body: None,
            })
        }
        _ => None,
    }
}

/// The `GET` milink sends for `read` of `instance`.
pub fn read_request(read: ArmRead<'_>, instance: &InstanceId) -> ArmRequest {
    let tail = match read {
        ArmRead::Instance => String::new(),
        ArmRead::Databases => "/databases".to_owned(),
        ArmRead::TrustCertificates => "/serverTrustCertificates".to_owned(),
        ArmRead::TrustCertificate(name) => format!("/serverTrustCertificates/{}", segment(name)),
        ArmRead::Links => "/distributedAvailabilityGroups".to_owned(),
        ArmRead::Link(name) => format!("/distributedAvailabilityGroups/{}", segment(name)),
        ArmRead::EndpointCertificate => "/endpointCertificates/DATABASE_MIRRORING".to_owned(),
        ArmRead::EncryptionProtector => "/encryptionProtector/current".to_owned(),
        ArmRead::CallerPermissions => "/providers/Microsoft.Authorization/permissions".to_owned(),
    };
    ArmRequest {
        method: Method::Get,
        path: format!("{instance}{tail}"),
        api_version: match read {
            ArmRead::CallerPermissions => AUTHORIZATION_API_VERSION,
            _ => API_VERSION,
        },
        body: None,
    }
}

/// The resource a `PUT` of `op` creates or replaces, to read with a final `GET` once its
/// operation succeeds: its path and `api-version` query under the management endpoint (the
/// `PUT`'s own, so a MultiDatabase link is read in the preview). `None` for an `op` that is not
/// a `PUT`.
pub fn put_resource(op: &InstanceOp, instance: &InstanceId) -> Option<String> {
    let r = request(op, instance);
    (r.method == Method::Put).then(|| format!("{}?api-version={}", r.path, r.api_version))
}

#[cfg(test)]
mod examples_tests;
#[cfg(test)]
pub(crate) mod schema_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::LinkProperties;
    use crate::names::{AgName, CertificateName, DatabaseName, LinkName};

    fn instance() -> InstanceId {
        InstanceId::from_parts("sub", "rg", "tailspin-mi").unwrap()
    }

    fn put_link(mode: LinkMode) -> InstanceOp {
        InstanceOp::PutLink {
            link: LinkName::new("DAG_ToyStore").unwrap(),
            properties: LinkProperties {
                instance_link_role: Side::SqlServer,
                instance_ag: AgName::new("AG_ToyStore_MI").unwrap(),
                partner_ag: AgName::new("AG_ToyStore").unwrap(),
                partner_endpoint: "TCP://10.0.1.4:5022".into(),
                failover_mode: FailoverMode::Manual,
                seeding_mode: SeedingMode::Automatic,
                link_mode: mode,
                databases: vec![DatabaseName::new("ToyStore").unwrap()],
            },
        }
    }

    #[test]
    fn put_link_follows_the_rest_shape() {
        let r = request(&put_link(LinkMode::SingleDatabase), &instance());
        assert_eq!(r.method, Method::Put);
        assert_eq!(
            r.url(MANAGEMENT_ENDPOINT),
            "https://management.azure.com/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Sql/managedInstances/tailspin-mi/distributedAvailabilityGroups/DAG_ToyStore?api-version=2025-01-01"
        );
        let p = &r.body.unwrap()["properties"];
        assert_eq!(p["instanceLinkRole"], "Secondary");
        assert_eq!(p["failoverMode"], "Manual");
        assert_eq!(p["databases"][0]["databaseName"], "ToyStore");
        assert!(p.get("linkMode").is_none());
        // MultiDatabase needs the preview api-version, the only one with linkMode.
        let r = request(&put_link(LinkMode::MultiDatabase), &instance());
        assert_eq!(r.api_version, PREVIEW_API_VERSION);
        assert_eq!(r.body.unwrap()["properties"]["linkMode"], "MultiDatabase");
    }

    #[test]
    fn a_new_database_list_is_the_official_update_example() {
        let op = InstanceOp::SetLinkDatabases {
            link: LinkName::new("dag").unwrap(),
            databases: ["testdb1", "testdb2", "testdb3"]
                .into_iter()
                .map(|d| DatabaseName::new(d).unwrap())
                .collect(),
        };
        let r = request(&op, &instance());
        assert_eq!(r.method, Method::Patch);
        // Only the preview knows MultiDatabase links.
        assert_eq!(r.api_version, PREVIEW_API_VERSION);
        assert!(r.path.ends_with("/distributedAvailabilityGroups/dag"));
        let example = examples_tests::example(
            examples_tests::PREVIEW,
            "DistributedAvailabilityGroupsUpdateDatabases",
        );
        assert_eq!(r.body.as_ref(), Some(&example["parameters"]["parameters"]));
        assert_eq!(
            put_resource(&op, &instance()),
            None,
            "a PATCH has no final GET"
        );
    }

    #[test]
    fn names_are_escaped_and_blobs_are_hex() {
        let op = InstanceOp::DeleteLink {
            link: LinkName::new("a b/c").unwrap(),
        };
        assert!(
            request(&op, &instance())
                .path
                .ends_with("/distributedAvailabilityGroups/a%20b%2Fc")
        );
        let op = InstanceOp::PutServerTrustCertificate {
            name: CertificateName::new("Cert_TailspinSql_endpoint").unwrap(),
            public_blob: vec![0x30, 0x82, 0x0a],
        };
        let r = request(&op, &instance());
        assert_eq!(r.body.unwrap()["properties"]["publicBlob"], "0x30820A");
        assert_eq!(r.method.as_str(), "PUT");
    }

    #[test]
    fn reads_and_put_resources_share_the_operations_paths() {
        let mi = instance();
        let base = "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Sql/managedInstances/tailspin-mi";
        assert_eq!(read_request(ArmRead::Instance, &mi).path, base);
        assert_eq!(
            read_request(ArmRead::CallerPermissions, &mi).url(MANAGEMENT_ENDPOINT),
            format!(
                "{MANAGEMENT_ENDPOINT}{base}/providers/Microsoft.Authorization/permissions?api-version=2022-04-01"
            )
        );
        assert_eq!(
            read_request(ArmRead::EncryptionProtector, &mi).path,
            format!("{base}/encryptionProtector/current")
        );
        let subnet = "/subscriptions/s/resourceGroups/net rg/providers/Microsoft.Network/virtualNetworks/v/subnets/mi";
        assert_eq!(
            subnet_request(subnet).unwrap().url(MANAGEMENT_ENDPOINT),
            format!(
                "{MANAGEMENT_ENDPOINT}/subscriptions/s/resourceGroups/net%20rg/providers/Microsoft.Network/virtualNetworks/v/subnets/mi?api-version=2024-05-01"
            )
        );
        assert_eq!(
            failover_groups_request(&mi, "West Europe").path,
            format!(
                "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Sql/locations/West%20Europe/instanceFailoverGroups",
                mi.subscription_id(),
                mi.resource_group()
            )
        );
        for bad in [
            "",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/managedInstances/mi",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/mi/x",
        ] {
            assert_eq!(subnet_request(bad), None, "{bad}");
        }
        assert_eq!(
            read_request(ArmRead::Databases, &mi).url(MANAGEMENT_ENDPOINT),
            format!("{MANAGEMENT_ENDPOINT}{base}/databases?api-version={API_VERSION}")
        );
        let link = request(&put_link(LinkMode::SingleDatabase), &mi);
        assert_eq!(
            read_request(ArmRead::Link("DAG_ToyStore"), &mi).path,
            link.path
        );
        assert_eq!(
            read_request(ArmRead::Link("a b"), &mi).path,
            format!("{base}/distributedAvailabilityGroups/a%20b")
        );
        assert_eq!(
            put_resource(&put_link(LinkMode::SingleDatabase), &mi),
            Some(format!("{}?api-version={API_VERSION}", link.path))
        );
        assert_eq!(
            put_resource(&put_link(LinkMode::MultiDatabase), &mi),
            Some(format!("{}?api-version={PREVIEW_API_VERSION}", link.path))
        );
        let delete = InstanceOp::DeleteLink {
            link: LinkName::new("DAG_ToyStore").unwrap(),
        };
        assert_eq!(put_resource(&delete, &mi), None);
        let cert = InstanceOp::PutServerTrustCertificate {
            name: CertificateName::new("Cert_A").unwrap(),
            public_blob: vec![1],
        };
        assert_eq!(
            put_resource(&cert, &mi),
            Some(format!(
                "{}?api-version={API_VERSION}",
                read_request(ArmRead::TrustCertificate("Cert_A"), &mi).path
            ))
        );
    }
}
