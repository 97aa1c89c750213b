//! The managed instance's readiness facts ([`TargetFacts`]) read through ARM in a fixed number
//! of requests, whatever the instance holds: [`TARGET_READS`] `GET`s, a list followed through
//! its `nextLink` pages.

use crate::arm::models::{
    DistributedAvailabilityGroup, EncryptionProtector, EndpointCertificate, InstanceFailoverGroup,
    Permission, ServerTrustCertificate, Subnet,
};
use crate::arm::{ArmRead, failover_groups_request, read_request, subnet_request};
use crate::assess::facts::{
    ArmPermission, LinkFact, ProtectorKind, TargetFacts, TrustCertificateFact, to_hex,
};
use crate::names::DatabaseName;
use crate::ports::{PortError, PortErrorKind};

use super::ArmManagedInstance;
use super::http::MALFORMED;

/// The `GET`s [`ArmManagedInstance::target_facts`] sends (list pages aside): the instance, its
/// databases, server trust certificates, endpoint certificate, links, TDE protector, the
/// caller's permissions on it, its subnet, and the failover groups of its resource group and
/// region.
pub const TARGET_READS: usize = 9;

/// A read the caller may not be allowed, or that the instance does not have: its fact stays
/// unknown (the rules that need it say "not evaluated") instead of failing the whole read.
fn unreadable(e: &PortError) -> bool {
    matches!(
        e.kind,
        PortErrorKind::Arm {
            status: 403 | 404,
            ..
        } | PortErrorKind::Http(403 | 404)
    )
}

fn optional<T>(r: Result<T, PortError>) -> Result<Option<T>, PortError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if unreadable(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

impl ArmManagedInstance {
    /// What the readiness assessment needs of the instance, read through ARM: the instance
    /// (tier, vCores, storage, update policy, collation, subnet), its databases, server trust
    /// certificates, `DATABASE_MIRRORING` endpoint certificate, links with their databases, TDE
    /// protector, what the caller may do on it (Microsoft.Authorization's permissions call) and
    /// its subnet's address ranges (Microsoft.Network), and whether a failover group of its
    /// resource group and region pairs it. The protector, the permissions, the subnet and the
    /// failover groups are left unknown when ARM answers 403 or 404 to them; storage in use and
    /// TDE certificates are not in these answers and stay unknown.
    pub async fn target_facts(&self) -> Result<TargetFacts, PortError> {
        let request = read_request(ArmRead::Instance, &self.instance);
        let what = format!("GET {}", request.path);
        let answer = self.get_answer(&request, &what).await?;
        if answer.status != 200 {
            return Err(answer.error(&request));
        }
        let body = answer.json(&what)?;
        let location = body
            .get("location")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        let mut facts = TargetFacts::from_arm_json(&body)
            .map_err(|e| PortError::permanent(MALFORMED, format!("{what}: {e}")))?;

        facts.databases = Some(
            self.databases()
                .await?
                .into_iter()
                .filter_map(|d| d.name.and_then(|n| DatabaseName::new(n).ok()))
                .collect(),
        );
        let trusted: Vec<ServerTrustCertificate> = self.server_trust_certificates().await?;
        facts.server_trust_certificates = Some(
            trusted
                .iter()
                .filter_map(|c| {
                    let der =
                        crate::arm::models::normalize_blob(c.properties.public_blob.as_deref()?)?;
                    Some(TrustCertificateFact {
                        name: c
                            .properties
                            .certificate_name
                            .clone()
                            .or_else(|| c.name.clone())
                            .unwrap_or_default(),
                        public_blob: to_hex(&der),
                    })
                })
                .collect(),
        );
        let endpoint: Option<EndpointCertificate> = self
            .read_one(&read_request(ArmRead::EndpointCertificate, &self.instance))
            .await?;
        facts.endpoint_certificate = endpoint.and_then(|e| e.der()).map(|der| to_hex(&der));
        let links: Vec<DistributedAvailabilityGroup> = self.links().await?;
        facts.links = Some(
            links
                .into_iter()
                .map(|l| LinkFact {
                    name: l
                        .name
                        .clone()
                        .or_else(|| l.properties.distributed_availability_group_name.clone())
                        .unwrap_or_default(),
                    databases: l
                        .properties
                        .databases
                        .iter()
                        .filter_map(|d| d.database_name.clone())
                        .collect(),
                })
                .collect(),
        );
        let protector: Option<Option<EncryptionProtector>> = optional(
            self.read_one(&read_request(ArmRead::EncryptionProtector, &self.instance))
                .await,
        )?;
        facts.tde_protector = protector
            .flatten()
            .and_then(|p| p.properties.server_key_type)
            .and_then(|k| ProtectorKind::from_server_key_type(&k));
        let permissions: Option<Vec<Permission>> = optional(
            self.read_all(&read_request(ArmRead::CallerPermissions, &self.instance))
                .await,
        )?;
        facts.caller_permissions = permissions.map(|sets| {
            sets.into_iter()
                .map(|p| ArmPermission {
                    actions: p.actions,
                    not_actions: p.not_actions,
                })
                .collect()
        });
        if let Some(request) = facts.subnet_id.as_deref().and_then(subnet_request) {
            let subnet: Option<Option<Subnet>> = optional(self.read_one(&request).await)?;
            facts.subnet_prefixes = subnet.flatten().map(|s| s.prefixes());
        }
        if let Some(location) = &location {
            let groups: Option<Vec<InstanceFailoverGroup>> = optional(
                self.read_all(&failover_groups_request(&self.instance, location))
                    .await,
            )?;
            let id = self.instance.to_string();
            facts.in_failover_group = groups.map(|g| g.iter().any(|f| f.pairs(&id)));
        }
        Ok(facts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_or_missing_read_leaves_its_fact_unknown_and_other_errors_fail() {
        let arm = |status: u16| PortError {
            kind: PortErrorKind::Arm {
                status,
                code: "AuthorizationFailed".into(),
            },
            ..PortError::permanent(MALFORMED, "x")
        };
        assert_eq!(optional::<u8>(Err(arm(403))), Ok(None));
        assert_eq!(optional::<u8>(Err(arm(404))), Ok(None));
        assert_eq!(optional(Ok(7u8)), Ok(Some(7)));
        assert!(optional::<u8>(Err(arm(500))).is_err());
        assert!(optional::<u8>(Err(arm(401))).is_err());
        assert!(optional::<u8>(Err(PortError::permanent(MALFORMED, "bad body"))).is_err());
    }
}
