//! The REST API's JSON shapes of the world's resources, and the error envelope. A private
//! mapping, to be replaced by `arm::models` (resources, LRO status, envelope) at merge.

use std::time::Duration;

use serde_json::{Value, json};

use crate::arm::{PREVIEW_API_VERSION, public_blob};
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

/// `{"error": {"code", "message"}}`.
pub(crate) fn envelope(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
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

fn role_name(role: ReplicaRole) -> &'static str {
    match role {
        ReplicaRole::Primary => "Primary",
        ReplicaRole::Secondary | ReplicaRole::Resolving => "Secondary",
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
    json!({
        "name": i.id.name(),
        "type": "Microsoft.Sql/managedInstances",
        "id": i.id.to_string(),
        "location": i.location,
        "properties": {
            "provisioningState": "Succeeded",
            "state": "Ready",
            "fullyQualifiedDomainName": fqdn,
            "dnsZone": dns_zone,
            "collation": i.collation,
            "databaseFormat": i.update_policy.to_string(),
            // The world does not model the licence setting: the instance serves workloads.
            "hybridSecondaryUsage": "Active",
            "storageSizeInGB": i.storage_gb,
            "vCores": i.vcores,
            "isGeneralPurposeV2": i.tier == ServiceTier::NextGenGeneralPurpose,
        },
        "sku": {
            "name": format!("{prefix}_{family}"),
            "tier": tier,
            "family": family,
            "capacity": i.vcores,
        },
    })
}

fn health(h: SyncHealth) -> &'static str {
    match h {
        SyncHealth::NotHealthy => "NOT_HEALTHY",
        SyncHealth::PartiallyHealthy => "PARTIALLY_HEALTHY",
        SyncHealth::Healthy => "HEALTHY",
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
        "CONNECTED"
    } else {
        "DISCONNECTED"
    };
    let databases: Vec<Value> = view
        .databases
        .iter()
        .map(|d| {
            let mut db = json!({
                "databaseName": d.name.as_str(),
                "instanceReplicaId": name_uuid("instanceReplica", &format!("{name}/{}", d.name)),
                "partnerReplicaId": name_uuid("partnerReplica", &format!("{name}/{}", d.name)),
                "synchronizationHealth": health(d.health),
                "connectedState": connected,
            });
            let o = db.as_object_mut();
            if let Some(o) = o {
                if let Some(s) = &d.replica_state {
                    o.insert("replicaState".into(), json!(s));
                }
                if let Some(pct) = d.seeding_percent {
                    o.insert("seedingProgress".into(), json!(format!("{pct}%")));
                }
                if let Some(lsn) = d.last_hardened_lsn {
                    o.insert("lastHardenedLsn".into(), json!(lsn.to_string()));
                }
                if let Some(lsn) = d.last_commit_lsn {
                    o.insert("lastCommitLsn".into(), json!(lsn.to_string()));
                }
                if let Some(e) = &d.last_error {
                    o.insert("mostRecentLinkError".into(), json!(e));
                }
                if role == ReplicaRole::Primary
                    && let Some(lag) = d.lag_seconds
                {
                    let lag = i32::try_from(lag).unwrap_or(i32::MAX);
                    o.insert("instanceSendReplicationLagSeconds".into(), json!(lag));
                    o.insert("instanceRedoReplicationLagSeconds".into(), json!(lag));
                }
            }
            db
        })
        .collect();
    let databases = if databases.is_empty() {
        p.databases
            .iter()
            .map(|d| json!({"databaseName": d.as_str()}))
            .collect()
    } else {
        databases
    };
    let mut props = json!({
        "distributedAvailabilityGroupName": name,
        "distributedAvailabilityGroupId": name_uuid("dag", name),
        "replicationMode": match view.mode.unwrap_or(l.replication_mode) {
            AvailabilityMode::SynchronousCommit => "Sync",
            AvailabilityMode::AsynchronousCommit => "Async",
        },
        "partnerLinkRole": role_name(partner),
        "partnerAvailabilityGroupName": p.partner_ag.as_str(),
        "partnerEndpoint": p.partner_endpoint,
        "instanceLinkRole": role_name(role),
        "instanceAvailabilityGroupName": p.instance_ag.as_str(),
        "failoverMode": match p.failover_mode {
            FailoverMode::Manual => "Manual",
            FailoverMode::None => "None",
        },
        "seedingMode": match p.seeding_mode {
            SeedingMode::Automatic => "Automatic",
            SeedingMode::Manual => "Manual",
        },
        "databases": databases,
    });
    if api_version == PREVIEW_API_VERSION
        && let Some(o) = props.as_object_mut()
    {
        let mode = match p.link_mode {
            LinkMode::SingleDatabase => "SingleDatabase",
            LinkMode::MultiDatabase => "MultiDatabase",
        };
        o.insert("linkMode".into(), json!(mode));
    }
    json!({
        "properties": props,
        "id": format!("{}/distributedAvailabilityGroups/{}", i.id, crate::arm::segment(name)),
        "name": name,
        "type": "Microsoft.Sql/managedInstances/distributedAvailabilityGroups",
    })
}

/// A `ServerTrustCertificate`.
pub(crate) fn trust_certificate(i: &InstanceState, name: &str, der: &[u8]) -> Value {
    let blob = public_blob(der);
    json!({
        "properties": {
            "publicBlob": blob.trim_start_matches("0x"),
            "thumbprint": sha1_hex(der),
            "certificateName": name,
        },
        "id": format!("{}/serverTrustCertificates/{}", i.id, crate::arm::segment(name)),
        "name": name,
        "type": "Microsoft.Sql/managedInstances/serverTrustCertificates",
    })
}

/// The `DATABASE_MIRRORING` `EndpointCertificate`.
pub(crate) fn endpoint_certificate(i: &InstanceState) -> Value {
    json!({
        "properties": {"publicBlob": public_blob(&i.endpoint_certificate)},
        "id": format!("{}/endpointCertificates/DATABASE_MIRRORING", i.id),
        "name": "DATABASE_MIRRORING",
        "type": "Microsoft.Sql/managedInstances/endpointCertificates",
    })
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
