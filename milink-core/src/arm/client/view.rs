//! Reading ARM's bodies: the link resource as a [`SideView`] (the same fields
//! `sim::arm_view` reports in process), an endpoint certificate's `publicBlob`, and a
//! long-running operation's status document. Small private models, to be replaced by
//! `arm::models` at merge.

use serde_json::Value;

use crate::lifecycle::AvailabilityMode;
use crate::lifecycle::{DatabaseView, FailoverMode, ReplicaRole, SideView, SyncHealth};
use crate::names::{DatabaseName, Lsn, UpdatePolicy};
use crate::ports::PortError;

use super::http::MALFORMED;

fn malformed(what: &str, why: impl std::fmt::Display) -> PortError {
    PortError::permanent(
        MALFORMED,
        format!("ARM's answer to {what} is malformed: {why}"),
    )
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The link resource (`GET …/distributedAvailabilityGroups/{link}`) as the instance's view, with
/// the instance's `databaseFormat` as its update policy when known. ARM reports no
/// synchronization state (`sync_state` stays `None`), no end of log and no partner row.
pub(crate) fn link_view(
    body: &Value,
    update_policy: Option<UpdatePolicy>,
) -> Result<SideView, PortError> {
    const WHAT: &str = "the link's GET";
    let props = body
        .get("properties")
        .filter(|p| p.is_object())
        .ok_or_else(|| malformed(WHAT, "no `properties` object"))?;
    let role = str_at(props, "instanceLinkRole").map(|r| match r {
        "Primary" => ReplicaRole::Primary,
        "Secondary" => ReplicaRole::Secondary,
        _ => ReplicaRole::Resolving,
    });
    let mode = match str_at(props, "replicationMode") {
        Some("Sync") => Some(AvailabilityMode::SynchronousCommit),
        Some("Async") => Some(AvailabilityMode::AsynchronousCommit),
        _ => None,
    };
    let failover_mode = match str_at(props, "failoverMode") {
        Some("Manual") => Some(FailoverMode::Manual),
        Some("None") => Some(FailoverMode::None),
        _ => None,
    };
    let entries = match props.get("databases") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(a)) => a.as_slice(),
        Some(_) => return Err(malformed(WHAT, "`databases` is not an array")),
    };
    let mut connected = false;
    let mut databases = Vec::with_capacity(entries.len());
    for entry in entries {
        connected |= str_at(entry, "connectedState") == Some("CONNECTED");
        databases.push(database_view(entry)?);
    }
    Ok(SideView {
        exists: true,
        role,
        mode,
        partner_mode: None,
        connected,
        databases,
        version: None,
        update_policy,
        failover_mode,
        live: false,
    })
}

fn lsn(entry: &Value, key: &str) -> Result<Option<Lsn>, PortError> {
    match entry.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Lsn::parse(s)
            .map(Some)
            .map_err(|e| malformed("the link's GET", e)),
        Some(Value::Number(n)) => Lsn::parse(&n.to_string())
            .map(Some)
            .map_err(|e| malformed("the link's GET", e)),
        Some(_) => Err(malformed(
            "the link's GET",
            format!("`{key}` is not an LSN"),
        )),
    }
}

fn database_view(entry: &Value) -> Result<DatabaseView, PortError> {
    let name = str_at(entry, "databaseName")
        .ok_or_else(|| malformed("the link's GET", "a database without `databaseName`"))?;
    let name = DatabaseName::new(name).map_err(|e| malformed("the link's GET", e))?;
    let health = match str_at(entry, "synchronizationHealth") {
        Some("HEALTHY") => SyncHealth::Healthy,
        Some("PARTIALLY_HEALTHY") => SyncHealth::PartiallyHealthy,
        _ => SyncHealth::NotHealthy,
    };
    let seeding_percent = str_at(entry, "seedingProgress")
        .and_then(|p| p.trim().trim_end_matches('%').trim().parse::<f64>().ok())
        .map(|p| p.clamp(0.0, 100.0).floor())
        .and_then(|p| format!("{p:.0}").parse::<u8>().ok());
    let lag = |key: &str| entry.get(key).and_then(Value::as_u64);
    let lag_seconds = match (
        lag("instanceSendReplicationLagSeconds"),
        lag("instanceRedoReplicationLagSeconds"),
    ) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    Ok(DatabaseView {
        name,
        sync_state: None,
        health,
        last_hardened_lsn: lsn(entry, "lastHardenedLsn")?,
        end_of_log_lsn: None,
        partner: None,
        last_commit_lsn: lsn(entry, "lastCommitLsn")?,
        seeding_percent,
        log_send_queue_kb: None,
        redo_queue_kb: None,
        lag_seconds,
        last_error: str_at(entry, "mostRecentLinkError")
            .filter(|e| !e.is_empty())
            .map(str::to_owned),
        replica_state: str_at(entry, "replicaState").map(str::to_owned),
    })
}

/// The instance's `databaseFormat` (`GET …/managedInstances/{mi}`), when it reads.
pub(crate) fn update_policy(body: &Value) -> Option<UpdatePolicy> {
    body.get("properties")
        .and_then(|p| str_at(p, "databaseFormat"))
        .and_then(|f| UpdatePolicy::parse(f).ok())
}

/// An endpoint certificate's `publicBlob` (`0x…` or bare hex) as DER.
pub(crate) fn public_blob(body: &Value) -> Result<Vec<u8>, PortError> {
    const WHAT: &str = "the endpoint certificate's GET";
    let blob = body
        .get("properties")
        .and_then(|p| str_at(p, "publicBlob"))
        .ok_or_else(|| malformed(WHAT, "no `properties.publicBlob`"))?;
    let hex = blob.trim();
    let hex = hex
        .strip_prefix("0x")
        .or_else(|| hex.strip_prefix("0X"))
        .unwrap_or(hex);
    if hex.is_empty() || !hex.len().is_multiple_of(2) {
        return Err(malformed(
            WHAT,
            "`publicBlob` is not an even number of hex digits",
        ));
    }
    let digit = |b: u8| char::from(b).to_digit(16);
    hex.as_bytes()
        .chunks(2)
        .map(|pair| match (digit(pair[0]), digit(pair[1])) {
            (Some(hi), Some(lo)) => u8::try_from(hi * 16 + lo).ok(),
            _ => None,
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| malformed(WHAT, "`publicBlob` is not hexadecimal"))
}

/// A long-running operation's state as its status document says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OperationStatus {
    /// `InProgress` (or any other non-terminal status).
    Running,
    /// `Succeeded`.
    Succeeded,
    /// `Failed` or `Canceled`, with ARM's error code and message when given.
    Ended {
        status: String,
        code: Option<String>,
        message: String,
    },
}

/// Reads an `Azure-AsyncOperation` status document (`{"status", "error"}`).
pub(crate) fn operation_status(body: &Value) -> Result<OperationStatus, PortError> {
    let status =
        str_at(body, "status").ok_or_else(|| malformed("the operation's status", "no `status`"))?;
    Ok(match status {
        "Succeeded" => OperationStatus::Succeeded,
        "Failed" | "Canceled" | "Cancelled" => {
            let error = body.get("error");
            OperationStatus::Ended {
                status: status.to_owned(),
                code: error.and_then(|e| str_at(e, "code")).map(str::to_owned),
                message: error
                    .and_then(|e| str_at(e, "message"))
                    .unwrap_or_default()
                    .to_owned(),
            }
        }
        _ => OperationStatus::Running,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(path: &str) -> Value {
        let text = std::fs::read_to_string(path);
        match text {
            Ok(t) => serde_json::from_str::<Value>(&t).unwrap()["responses"]["200"]["body"].clone(),
            // The reference examples live outside the repository; the inline copy is the same.
            Err(_) => serde_json::json!({"properties": {
                "replicationMode": "Async", "instanceLinkRole": "Primary", "failoverMode": "None",
                "databases": [{"databaseName": "testdb", "replicaState": "Seeding",
                    "seedingProgress": "80%", "synchronizationHealth": "HEALTHY",
                    "connectedState": "CONNECTED", "lastCommitLsn": "71000009407900004",
                    "lastHardenedLsn": "71000009408100001",
                    "instanceSendReplicationLagSeconds": 1,
                    "instanceRedoReplicationLagSeconds": 1}]}}),
        }
    }

    #[test]
    fn the_spec_example_reads_as_the_instance_view() {
        for path in [
            "/work/shared/ref/arm/stable/2025-01-01/examples/DistributedAvailabilityGroupsGet.json",
            "/work/shared/ref/arm/preview/2025-08-01-preview/examples/DistributedAvailabilityGroupsGet.json",
        ] {
            let view = link_view(&example(path), Some(UpdatePolicy::SqlServer2022)).unwrap();
            assert!(view.exists && view.connected);
            assert_eq!(view.role, Some(ReplicaRole::Primary));
            assert_eq!(view.mode, Some(AvailabilityMode::AsynchronousCommit));
            assert_eq!(view.failover_mode, Some(FailoverMode::None));
            assert_eq!(view.update_policy, Some(UpdatePolicy::SqlServer2022));
            let db = &view.databases[0];
            assert_eq!(db.name.as_str(), "testdb");
            assert_eq!(db.sync_state, None);
            assert_eq!(db.health, SyncHealth::Healthy);
            assert_eq!(db.seeding_percent, Some(80));
            assert_eq!(db.replica_state.as_deref(), Some("Seeding"));
            assert_eq!(
                db.last_hardened_lsn,
                Some(Lsn::new(71_000_009_408_100_001).unwrap())
            );
            assert_eq!(db.lag_seconds, Some(1));
        }
    }

    #[test]
    fn malformed_link_bodies_are_typed_errors() {
        for body in [
            serde_json::json!({}),
            serde_json::json!({"properties": {"databases": 3}}),
            serde_json::json!({"properties": {"databases": [{"lastHardenedLsn": "1"}]}}),
            serde_json::json!({"properties": {"databases": [
                {"databaseName": "db", "lastHardenedLsn": "not-an-lsn"}]}}),
        ] {
            let e = link_view(&body, None).unwrap_err();
            assert_eq!(e.code(), MALFORMED, "{body}");
            assert!(!e.transient);
        }
    }

    #[test]
    fn public_blobs_read_with_or_without_0x() {
        let with = serde_json::json!({"properties": {"publicBlob": "0x30820A"}});
        let without = serde_json::json!({"properties": {"publicBlob": "30820a"}});
        assert_eq!(public_blob(&with).unwrap(), vec![0x30, 0x82, 0x0a]);
        assert_eq!(public_blob(&without).unwrap(), vec![0x30, 0x82, 0x0a]);
        for bad in ["0x3", "0xZZ", "", "0x"] {
            let body = serde_json::json!({"properties": {"publicBlob": bad}});
            assert_eq!(public_blob(&body).unwrap_err().code(), MALFORMED, "{bad}");
        }
    }
}
