//! What an effect would send: the T-SQL batches of a [`SourceOp`] (rendered with milink's
//! builders) and the ARM request of an [`InstanceOp`] (method, URL and body per the 2025-01-01
//! REST API). Used by the lab's `--plan` mode.

use milink_core::Secret;
use milink_core::lifecycle::{InstanceOp, SourceOp};
use milink_core::names::InstanceId;
use milink_core::sqlserver::RenderContext;
use milink_core::tsql::{self, Batch};
use serde_json::{Value, json};

/// The api-version the plan's URLs carry (milink's own, which the simulated instance's
/// operation URLs use too).
pub use milink_core::arm::API_VERSION;

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

/// A public key as the plan shows it: `0x` and upper-case hex, shortened for display.
fn blob(der: &[u8]) -> String {
    let hex: String = der.iter().take(16).map(|b| format!("{b:02X}")).collect();
    if der.len() > 16 {
        format!("0x{hex}… ({} bytes)", der.len())
    } else {
        format!("0x{hex}")
    }
}

/// The ARM request the managed instance adapter would send for `op`, from
/// [`milink_core::arm::request`] (public keys shortened for display).
pub fn arm_request(op: &InstanceOp, instance: &InstanceId) -> ArmRequest {
    let request = milink_core::arm::request(op, instance);
    let mut body = request.body.clone();
    if let (InstanceOp::PutServerTrustCertificate { public_blob, .. }, Some(b)) =
        (op, body.as_mut())
    {
        b["properties"]["publicBlob"] = json!(blob(public_blob));
    }
    ArmRequest {
        method: request.method.as_str(),
        url: request.url(milink_core::arm::MANAGEMENT_ENDPOINT),
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use milink_core::lifecycle::{FailoverMode, LinkProperties, SeedingMode, Side};
    use milink_core::names::{AgName, DatabaseName, LinkMode, LinkName};

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
