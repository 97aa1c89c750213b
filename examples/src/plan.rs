//! What an effect would send: the T-SQL batches of a [`SourceOp`] (rendered with milink's
//! builders) and the ARM request of an [`InstanceOp`] (method, URL and body per the 2025-01-01
//! REST API). Used by the lab's `--plan` mode.

use milink_core::Secret;
use milink_core::lifecycle::{
    ArmFailoverType, AvailabilityMode, FailoverMode, InstanceOp, RenderContext, RoleChangeType,
    SeedingMode, Side, SourceOp,
};
use milink_core::names::{InstanceId, LinkMode};
use milink_core::tsql::{self, Batch};
use serde_json::{Value, json};

/// The api-version the plan's URLs carry: the one the simulated instance's operation URLs use.
pub use milink_core::sim::managed_instance::API_VERSION;

/// The T-SQL batches SQL Server would run for `op`, rendered by [`SourceOp::render`].
///
/// What comes from the SQL Server adapter's configuration is a placeholder here: the master key
/// password (the batch shows it redacted anyway) and the Azure root CA certificates (empty
/// blobs).
pub fn source_batches(op: &SourceOp) -> Vec<Batch> {
    let ctx = RenderContext {
        master_key_password: Secret::new("<from the adapter's secret store>"),
        root_cas: tsql::azure_root_cas()
            .into_iter()
            .map(|(name, _)| (name, Vec::new()))
            .collect(),
    };
    op.render(&ctx).unwrap_or_default()
}

/// One ARM request.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmRequest {
    /// HTTP method.
    pub method: &'static str,
    /// Full URL with the api-version.
    pub url: String,
    /// JSON body, if any.
    pub body: Option<Value>,
}

impl std::fmt::Display for ArmRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.url)?;
        if let Some(body) = &self.body {
            write!(f, "\n{body}")?;
        }
        Ok(())
    }
}

/// Percent-encodes one URL path segment (RFC 3986 unreserved characters stay).
fn segment(value: &str) -> String {
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

/// A public key as the REST API shows it: `0x` and upper-case hex, shortened for display.
fn blob(der: &[u8]) -> String {
    let hex: String = der.iter().take(16).map(|b| format!("{b:02X}")).collect();
    if der.len() > 16 {
        format!("0x{hex}… ({} bytes)", der.len())
    } else {
        format!("0x{hex}")
    }
}

fn side_role(side: Side) -> &'static str {
    match side {
        Side::ManagedInstance => "Primary",
        Side::SqlServer => "Secondary",
    }
}

/// The ARM request the managed instance adapter would send for `op`.
pub fn arm_request(op: &InstanceOp, instance: &InstanceId) -> ArmRequest {
    let base = format!("https://management.azure.com{instance}");
    let url = |path: String| format!("{base}/{path}?api-version={API_VERSION}");
    let dag = |link: &str, tail: &str| {
        url(format!(
            "distributedAvailabilityGroups/{}{tail}",
            segment(link)
        ))
    };
    match op {
        InstanceOp::PutServerTrustCertificate { name, public_blob } => ArmRequest {
            method: "PUT",
            url: url(format!(
                "serverTrustCertificates/{}",
                segment(name.as_str())
            )),
            body: Some(json!({"properties": {"publicBlob": blob(public_blob)}})),
        },
        InstanceOp::GetEndpointCertificate => ArmRequest {
            method: "GET",
            url: url("endpointCertificates/DATABASE_MIRRORING".to_string()),
            body: None,
        },
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
            if p.link_mode == LinkMode::MultiDatabase
                && let Some(props) = body.get_mut("properties").and_then(Value::as_object_mut)
            {
                props.insert("linkMode".into(), json!("MultiDatabase"));
            }
            ArmRequest {
                method: "PUT",
                url: dag(link.as_str(), ""),
                body: Some(body),
            }
        }
        InstanceOp::SetReplicationMode { link, mode } => ArmRequest {
            method: "PATCH",
            url: dag(link.as_str(), ""),
            body: Some(json!({"properties": {"replicationMode": match mode {
                AvailabilityMode::SynchronousCommit => "Sync",
                AvailabilityMode::AsynchronousCommit => "Async",
            }}})),
        },
        InstanceOp::Failover {
            link,
            failover_type,
        } => ArmRequest {
            method: "POST",
            url: dag(link.as_str(), "/failover"),
            body: Some(json!({"failoverType": match failover_type {
                ArmFailoverType::Planned => "Planned",
                ArmFailoverType::ForcedAllowDataLoss => "ForcedAllowDataLoss",
            }})),
        },
        InstanceOp::SetRole { link, role, change } => ArmRequest {
            method: "POST",
            url: dag(link.as_str(), "/setRole"),
            body: Some(json!({
                "instanceRole": side_role(*role),
                "roleChangeType": match change {
                    RoleChangeType::Planned => "Planned",
                    RoleChangeType::Forced => "Forced",
                },
            })),
        },
        InstanceOp::DeleteLink { link } => ArmRequest {
            method: "DELETE",
            url: dag(link.as_str(), ""),
            body: None,
        },
        InstanceOp::DeleteServerTrustCertificate { name } => ArmRequest {
            method: "DELETE",
            url: url(format!(
                "serverTrustCertificates/{}",
                segment(name.as_str())
            )),
            body: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use milink_core::lifecycle::LinkProperties;
    use milink_core::names::{AgName, DatabaseName, LinkName};

    fn instance() -> InstanceId {
        InstanceId::from_parts("sub", "rg", "tailspin-mi").unwrap()
    }

    #[test]
    fn put_link_follows_the_rest_shape() {
        let op = InstanceOp::PutLink {
            link: LinkName::new("DAG_ToyStore").unwrap(),
            properties: LinkProperties {
                instance_link_role: Side::SqlServer,
                instance_ag: AgName::new("AG_ToyStore_MI").unwrap(),
                partner_ag: AgName::new("AG_ToyStore").unwrap(),
                partner_endpoint: "TCP://10.0.1.4:5022".into(),
                failover_mode: FailoverMode::Manual,
                seeding_mode: SeedingMode::Automatic,
                link_mode: LinkMode::SingleDatabase,
                databases: vec![DatabaseName::new("ToyStore").unwrap()],
            },
        };
        let r = arm_request(&op, &instance());
        assert_eq!(r.method, "PUT");
        assert_eq!(
            r.url,
            "https://management.azure.com/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Sql/managedInstances/tailspin-mi/distributedAvailabilityGroups/DAG_ToyStore?api-version=2025-01-01"
        );
        let p = &r.body.unwrap()["properties"];
        assert_eq!(p["instanceLinkRole"], "Secondary");
        assert_eq!(p["failoverMode"], "Manual");
        assert_eq!(p["databases"][0]["databaseName"], "ToyStore");
        assert!(p.get("linkMode").is_none());
    }

    #[test]
    fn names_are_escaped_in_urls() {
        let op = InstanceOp::DeleteLink {
            link: LinkName::new("a b/c").unwrap(),
        };
        assert!(
            arm_request(&op, &instance())
                .url
                .contains("/distributedAvailabilityGroups/a%20b%2Fc?")
        );
    }

    #[test]
    fn the_master_key_password_is_not_in_the_plan() {
        let b = source_batches(&SourceOp::EnsureMasterKey);
        assert!(b[0].is_sensitive());
        assert!(!b[0].display_sql().contains("secret store"));
        assert_eq!(source_batches(&SourceOp::EnsureRootCaTrust).len(), 2);
    }
}
