//! The world's resources and the error envelope as the REST API answers them: the
//! [`crate::arm::models`] the client reads, serialized (plus the read-only `type`, and the two
//! instance properties milink does not read), so what the server writes and what the client
//! reads cannot drift apart.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use crate::arm::{PREVIEW_API_VERSION, models, public_blob};
use crate::assess::ServiceTier;
use crate::lifecycle::{
    AvailabilityMode, FailoverMode, ReplicaRole, SeedingMode, SideView, SyncHealth,
};
use crate::names::LinkMode;
use crate::ports::{PortError, PortErrorKind};

use super::super::world::{InstanceLink, InstanceState};

/// What the server answers to one request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reply {
    /// An HTTP answer.
    Answer {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Option<Value>,
    },
    /// Close the connection without an answer (a dropped connection, a lost response).
    Drop,
}

impl Reply {
    pub(crate) fn json(status: u16, body: Value) -> Reply {
        Reply::Answer {
            status,
            headers: Vec::new(),
            body: Some(body),
        }
    }

    pub(crate) fn empty(status: u16) -> Reply {
        Reply::Answer {
            status,
            headers: Vec::new(),
            body: None,
        }
    }

    /// The ARM error envelope.
    pub(crate) fn error(status: u16, code: &str, message: impl Into<String>) -> Reply {
        Reply::json(status, envelope(code, &message.into()))
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: String) -> Reply {
        if let Reply::Answer { headers, .. } = &mut self {
            headers.push((name, value));
        }
        self
    }
}

/// ARM's error envelope ([`models::ErrorResponse`]): `{"error": {"code", "message"}}`.
pub(crate) fn envelope(code: &str, message: &str) -> Value {
    model_json(&models::ErrorResponse {
        error: Some(models::ErrorDetail {
            code: Some(code.to_owned()),
            message: Some(message.to_owned()),
            ..models::ErrorDetail::default()
        }),
    })
}

/// `Retry-After` in whole seconds, at least 1.
pub(crate) fn retry_after_secs(d: Duration) -> String {
    let ms = d.as_millis();
    ms.div_ceil(1000).max(1).to_string()
}

/// The HTTP status and ARM code a port error is reported with; `None`: drop the connection.
pub(crate) fn status_and_code(e: &PortError) -> Option<(u16, String)> {
    match &e.kind {
        PortErrorKind::Arm { status, code } => Some((*status, code.clone())),
        PortErrorKind::Http(status) => Some((*status, format!("Http{status}"))),
        // Microsoft.Sql reports engine errors with their number as the code.
        PortErrorKind::Sql(number) => Some((400, number.to_string())),
        PortErrorKind::Io | PortErrorKind::Timeout => None,
        PortErrorKind::Hook | PortErrorKind::Unsupported | PortErrorKind::Other(_) => {
            Some((500, "InternalServerError".to_owned()))
        }
    }
}

/// A port error as the server answers it: status, envelope and `Retry-After`.
pub(crate) fn error_reply(e: &PortError) -> Reply {
    let Some((status, code)) = status_and_code(e) else {
        return Reply::Drop;
    };
    let reply = Reply::error(status, &code, e.message.clone());
    match e.retry_after {
        Some(after) => reply.with_header("Retry-After", retry_after_secs(after)),
        None => reply,
    }
}

/// A stable UUID-shaped id from a name (the world keeps no ids for these).
pub(crate) fn name_uuid(kind: &str, name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut g: u64 = 0x8422_2325_cbf2_9ce4;
    for b in kind.bytes().chain([0]).chain(name.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        g = (g ^ u64::from(b))
            .wrapping_mul(0x0000_0100_0000_01b3)
            .rotate_left(7);
    }
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        (g >> 48) & 0xffff,
        g & 0xffff_ffff_ffff
    )
}

/// A model as the JSON the server answers: its `None`s left out rather than `null`.
pub(crate) fn model_json<T: Serialize>(model: &T) -> Value {
    fn compact(v: Value) -> Value {
        match v {
            Value::Object(o) => Value::Object(
                o.into_iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k, compact(v)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.into_iter().map(compact).collect()),
            other => other,
        }
    }
    compact(serde_json::to_value(model).unwrap_or(Value::Null))
}

/// A resource model's JSON with the `type` the models do not carry (read-only; milink does not
/// read it).
fn typed<T: Serialize>(model: &T, kind: &str) -> Value {
    let mut v = model_json(model);
    if let Some(o) = v.as_object_mut() {
        o.insert("type".into(), json!(kind));
    }
    v
}

/// The managed instance resource (`ManagedInstances_Get`).
pub(crate) fn managed_instance(i: &InstanceState) -> Value {
    let fqdn = i.fqdn.as_str();
    let dns_zone = fqdn.split('.').nth(1).unwrap_or_default();
    let (tier, prefix) = match i.tier {
        ServiceTier::GeneralPurpose | ServiceTier::NextGenGeneralPurpose => {
            ("GeneralPurpose", "GP")
        }
        ServiceTier::BusinessCritical => ("BusinessCritical", "BC"),
    };
    let family = i.hardware.clone().unwrap_or_else(|| "Gen5".to_owned());
    let model = models::ManagedInstance {
        id: Some(i.id.to_string()),
        name: Some(i.id.name().to_owned()),
        location: Some(i.location.clone()),
        sku: Some(models::Sku {
            name: Some(format!("{prefix}_{family}")),
            tier: Some(tier.to_owned()),
            capacity: Some(i.vcores),
            family: Some(family),
        }),
        properties: models::ManagedInstanceProperties {
            fully_qualified_domain_name: Some(fqdn.to_owned()),
            dns_zone: Some(dns_zone.to_owned()),
            state: Some("Ready".to_owned()),
            provisioning_state: Some(models::ProvisioningState::Succeeded),
            database_format: Some(models::DatabaseFormat::parse(&i.update_policy.to_string())),
            // The world does not model the licence setting: the instance serves workloads.
            hybrid_secondary_usage: Some(models::HybridSecondaryUsage::Active),
            v_cores: Some(i.vcores),
            storage_size_in_gb: Some(u64::from(i.storage_gb)),
            subnet_id: i.settings.subnet_id.clone(),
        },
    };
    let mut v = typed(&model, "Microsoft.Sql/managedInstances");
    // Two properties the spec has and milink's model does not read.
    if let Some(p) = v.get_mut("properties").and_then(Value::as_object_mut) {
        p.insert("collation".into(), json!(i.collation));
        p.insert(
            "isGeneralPurposeV2".into(),
            json!(i.tier == ServiceTier::NextGenGeneralPurpose),
        );
    }
    v
}

fn health(h: SyncHealth) -> models::SynchronizationHealth {
    match h {
        SyncHealth::NotHealthy => models::SynchronizationHealth::NotHealthy,
        SyncHealth::PartiallyHealthy => models::SynchronizationHealth::PartiallyHealthy,
        SyncHealth::Healthy => models::SynchronizationHealth::Healthy,
    }
}

fn link_role(role: ReplicaRole) -> models::LinkRole {
    match role {
        ReplicaRole::Primary => models::LinkRole::Primary,
        ReplicaRole::Secondary | ReplicaRole::Resolving => models::LinkRole::Secondary,
    }
}

/// A `DistributedAvailabilityGroup` from the world's link resource and ARM's (lagging) view of
/// it; `linkMode` only with the preview api-version.
pub(crate) fn dag(
    i: &InstanceState,
    name: &str,
    l: &InstanceLink,
    view: &SideView,
    api_version: &str,
) -> Value {
    let p = &l.properties;
    let role = view.role.unwrap_or(l.role);
    let partner = match role {
        ReplicaRole::Primary => ReplicaRole::Secondary,
        ReplicaRole::Secondary | ReplicaRole::Resolving => ReplicaRole::Primary,
    };
    let connected = if view.connected {
        models::ConnectedState::Connected
    } else {
        models::ConnectedState::Disconnected
    };
    let mut databases: Vec<models::DagDatabase> = view
        .databases
        .iter()
        .map(|d| {
            let replica = format!("{name}/{}", d.name);
            let lag = (role == ReplicaRole::Primary)
                .then_some(d.lag_seconds)
                .flatten()
                .map(|lag| i32::try_from(lag).unwrap_or(i32::MAX));
            models::DagDatabase {
                database_name: Some(d.name.as_str().to_owned()),
                instance_replica_id: Some(name_uuid("instanceReplica", &replica)),
                partner_replica_id: Some(name_uuid("partnerReplica", &replica)),
                replica_state: d.replica_state.clone(),
                seeding_progress: d.seeding_percent.map(|pct| format!("{pct}%")),
                synchronization_health: Some(health(d.health)),
                connected_state: Some(connected.clone()),
                last_hardened_lsn: d.last_hardened_lsn.map(|lsn| lsn.to_string()),
                last_commit_lsn: d.last_commit_lsn.map(|lsn| lsn.to_string()),
                most_recent_link_error: d.last_error.clone(),
                instance_send_replication_lag_seconds: lag,
                instance_redo_replication_lag_seconds: lag,
                ..models::DagDatabase::default()
            }
        })
        .collect();
    if databases.is_empty() {
        databases = p
            .databases
            .iter()
            .map(|d| models::DagDatabase {
                database_name: Some(d.as_str().to_owned()),
                ..models::DagDatabase::default()
            })
            .collect();
    }
    let model = models::DistributedAvailabilityGroup {
        id: Some(format!(
            "{}/distributedAvailabilityGroups/{}",
            i.id,
            crate::arm::segment(name)
        )),
        name: Some(name.to_owned()),
        properties: models::DagProperties {
            distributed_availability_group_name: Some(name.to_owned()),
            distributed_availability_group_id: Some(name_uuid("dag", name)),
            replication_mode: Some(match view.mode.unwrap_or(l.replication_mode) {
                AvailabilityMode::SynchronousCommit => models::ReplicationMode::Sync,
                AvailabilityMode::AsynchronousCommit => models::ReplicationMode::Async,
            }),
            partner_link_role: Some(link_role(partner)),
            partner_availability_group_name: Some(p.partner_ag.as_str().to_owned()),
            partner_endpoint: Some(p.partner_endpoint.clone()),
            instance_link_role: Some(link_role(role)),
            instance_availability_group_name: Some(p.instance_ag.as_str().to_owned()),
            failover_mode: Some(match p.failover_mode {
                FailoverMode::Manual => models::ArmFailoverMode::Manual,
                FailoverMode::None => models::ArmFailoverMode::None,
            }),
            seeding_mode: Some(match p.seeding_mode {
                SeedingMode::Automatic => models::ArmSeedingMode::Automatic,
                SeedingMode::Manual => models::ArmSeedingMode::Manual,
            }),
            link_mode: (api_version == PREVIEW_API_VERSION).then_some(match p.link_mode {
                LinkMode::SingleDatabase => models::ArmLinkMode::SingleDatabase,
                LinkMode::MultiDatabase => models::ArmLinkMode::MultiDatabase,
            }),
            databases,
        },
    };
    typed(
        &model,
        "Microsoft.Sql/managedInstances/distributedAvailabilityGroups",
    )
}

/// A `ManagedDatabase` as the databases list shows it: `Online`, or `Restoring` while it is
/// seeded.
pub(crate) fn managed_database(
    i: &InstanceState,
    name: &str,
    db: &crate::sim::world::InstanceDatabase,
) -> Value {
    let model = models::ManagedDatabase {
        id: Some(format!("{}/databases/{}", i.id, crate::arm::segment(name))),
        name: Some(name.to_owned()),
        properties: models::ManagedDatabaseProperties {
            status: Some(
                match db.state {
                    crate::sim::world::DbState::Online => "Online",
                    crate::sim::world::DbState::Restoring => "Restoring",
                }
                .to_owned(),
            ),
            creation_date: None,
            collation: Some(i.collation.clone()),
        },
    };
    typed(&model, "Microsoft.Sql/managedInstances/databases")
}

/// A `ServerTrustCertificate`.
pub(crate) fn trust_certificate(i: &InstanceState, name: &str, der: &[u8]) -> Value {
    let blob = public_blob(der);
    let model = models::ServerTrustCertificate {
        id: Some(format!(
            "{}/serverTrustCertificates/{}",
            i.id,
            crate::arm::segment(name)
        )),
        name: Some(name.to_owned()),
        properties: models::ServerTrustCertificateProperties {
            public_blob: Some(blob.trim_start_matches("0x").to_owned()),
            thumbprint: Some(sha1_hex(der)),
            certificate_name: Some(name.to_owned()),
        },
    };
    typed(
        &model,
        "Microsoft.Sql/managedInstances/serverTrustCertificates",
    )
}

/// The `DATABASE_MIRRORING` `EndpointCertificate` holding `der`.
pub(crate) fn endpoint_certificate(i: &InstanceState, der: &[u8]) -> Value {
    let model = models::EndpointCertificate {
        id: Some(format!(
            "{}/endpointCertificates/{}",
            i.id,
            models::DATABASE_MIRRORING
        )),
        name: Some(models::DATABASE_MIRRORING.to_owned()),
        properties: models::EndpointCertificateProperties {
            public_blob: Some(public_blob(der)),
        },
    };
    typed(
        &model,
        "Microsoft.Sql/managedInstances/endpointCertificates",
    )
}

/// SHA-1 (a certificate's thumbprint), upper-case hex.
pub(crate) fn sha1_hex(data: &[u8]) -> String {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let bit_len = (data.len() as u64).wrapping_mul(8);
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for chunk in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (t, word) in chunk.chunks_exact(4).enumerate() {
            w[t] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for t in 16..80 {
            w[t] = (w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (t, wt) in w.iter().enumerate() {
            let (f, k) = match t {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let temp = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wt);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = temp;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter().map(|x| format!("{x:08X}")).collect()
}

/// The instance's TDE protector (`encryptionProtector/current`).
pub(crate) fn encryption_protector(i: &InstanceState) -> Value {
    let (kind, key) = match i.settings.tde_protector {
        crate::assess::ProtectorKind::ServiceManaged => {
            ("ServiceManaged", "ServiceManaged".to_owned())
        }
        crate::assess::ProtectorKind::CustomerManaged => (
            "AzureKeyVault",
            format!("{}-vault_{}-tde_1", i.id.name(), i.id.name()),
        ),
    };
    let mut v = model_json(&models::EncryptionProtector {
        name: Some("current".to_owned()),
        properties: models::EncryptionProtectorProperties {
            server_key_type: Some(kind.to_owned()),
            server_key_name: Some(key),
        },
    });
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "id".into(),
            json!(format!("{}/encryptionProtector/current", i.id)),
        );
        o.insert(
            "type".into(),
            json!("Microsoft.Sql/managedInstances/encryptionProtector"),
        );
    }
    v
}

/// What the caller may do on the instance (`AzurePermissionsForResource_List`, one page).
pub(crate) fn caller_permissions(i: &InstanceState) -> Value {
    let value: Vec<models::Permission> = i
        .settings
        .caller_permissions
        .iter()
        .map(|p| models::Permission {
            actions: p.actions.clone(),
            not_actions: p.not_actions.clone(),
        })
        .collect();
    json!({ "value": value.iter().map(model_json).collect::<Vec<_>>() })
}

/// The instance's subnet (Microsoft.Network `Subnets_Get`).
pub(crate) fn subnet(i: &InstanceState, id: &str) -> Value {
    let mut v = model_json(&models::Subnet {
        id: Some(id.to_owned()),
        properties: models::SubnetProperties {
            address_prefix: i.settings.subnet_prefixes.first().cloned(),
            address_prefixes: (i.settings.subnet_prefixes.len() > 1)
                .then(|| i.settings.subnet_prefixes.clone()),
        },
    });
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "name".into(),
            json!(id.rsplit('/').next().unwrap_or_default()),
        );
        o.insert(
            "type".into(),
            json!("Microsoft.Network/virtualNetworks/subnets"),
        );
    }
    v
}

/// The instance failover groups of a resource group and region (one page): the instance's own
/// group when it is in one and the request names its resource group and region, else none.
pub(crate) fn failover_groups(i: &InstanceState, ours: bool) -> Value {
    let value: Vec<Value> = if ours && i.in_failover_group {
        let partner = format!("{}-partner", i.id.name());
        let partner_id =
            i.id.to_string()
                .rsplit_once('/')
                .map(|(head, _)| format!("{head}/{partner}"))
                .unwrap_or_default();
        let mut v = model_json(&models::InstanceFailoverGroup {
            name: Some(format!("{}-fog", i.id.name())),
            properties: models::InstanceFailoverGroupProperties {
                managed_instance_pairs: vec![models::ManagedInstancePair {
                    primary_managed_instance_id: Some(i.id.to_string()),
                    partner_managed_instance_id: Some(partner_id),
                }],
            },
        });
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "type".into(),
                json!("Microsoft.Sql/locations/instanceFailoverGroups"),
            );
        }
        vec![v]
    } else {
        Vec::new()
    };
    json!({ "value": value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_matches_the_standard_vectors() {
        assert_eq!(sha1_hex(b"abc"), "A9993E364706816ABA3E25717850C26C9CD0D89D");
        assert_eq!(sha1_hex(b""), "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709");
    }

    #[test]
    fn errors_keep_their_status_code_and_retry_after() {
        let e = crate::sim::errors::arm_busy(Duration::from_millis(1500));
        let Reply::Answer {
            status,
            headers,
            body,
        } = error_reply(&e)
        else {
            panic!("dropped");
        };
        assert_eq!(status, 409);
        assert_eq!(headers, vec![("Retry-After", "2".to_owned())]);
        assert_eq!(body.unwrap()["error"]["code"], "ManagedInstanceIsBusy");
        assert_eq!(
            error_reply(&crate::sim::errors::connection_dropped()),
            Reply::Drop
        );
        let sql = crate::sim::errors::sql(41976, "ag");
        assert_eq!(status_and_code(&sql), Some((400, "41976".to_owned())));
    }
}
