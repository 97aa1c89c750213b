//! A whole session whose managed instance is reached over HTTPS, next to the same session in
//! process: a minimal ARM client (test-only, to be replaced by the ARM adapter) counts its calls
//! with [`InFlight`] and the session sleeps on a [`WireClock`], as the lab does over TDS.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Client;
use serde_json::Value;

use super::tests::{Http, TOKEN, read};
use super::{ArmHttpsServer, ArmServerConfig};
use crate::arm::{self, API_VERSION};
use crate::journal::MemoryJournal;
use crate::lifecycle::{
    AssessmentOutcome, AvailabilityMode, DatabaseView, FailoverMode, FullBackup, InstanceOp,
    LinkName, OperationKind, OperationRef, Phase, ReplicaRole, SideView, SyncHealth,
};
use crate::names::{DatabaseName, InstanceId, Lsn, UpdatePolicy};
use crate::ports::{ArmReply, ManagedInstance, PollReply, PortError};
use crate::session::{LinkSession, Session, SessionOptions};
use crate::sim::sql::ddl::fixtures::{comparable, first_difference};
use crate::sim::wire::{InFlight, WireClock};
use crate::sim::{Lab, SimConfig, SimManagedInstance, errors};

/// ARM over reqwest, just enough for a session. T-SQL reads on the instance stay in process.
struct HttpsInstance {
    client: Client,
    base: String,
    instance: InstanceId,
    in_flight: Arc<InFlight>,
    tsql: SimManagedInstance,
}

fn port_error(h: &Http) -> PortError {
    let code = h.code();
    let message = h.body.as_ref().map_or(String::new(), |b| {
        b["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    });
    let e = match code.parse::<u32>() {
        Ok(n) if n == errors::LINK_NOT_INITIATED => errors::sql_transient(n, message),
        Ok(n) => errors::sql(n, message),
        Err(_) => errors::arm(h.status, code, message),
    };
    match h.header("Retry-After").and_then(|s| s.parse().ok()) {
        Some(secs) => e.with_retry_after(Duration::from_secs(secs)),
        None => e,
    }
}

fn hex(blob: &str) -> Vec<u8> {
    let hex = blob.trim_start_matches("0x");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn side_view(dag: &Value, update_policy: Option<UpdatePolicy>) -> SideView {
    let p = &dag["properties"];
    let role = |v: &Value| match v.as_str() {
        Some("Primary") => Some(ReplicaRole::Primary),
        Some(_) => Some(ReplicaRole::Secondary),
        None => None,
    };
    let dbs = p["databases"].as_array().cloned().unwrap_or_default();
    let lsn = |v: &Value| v.as_str().map(|s| Lsn::new(s.parse().unwrap()).unwrap());
    SideView {
        exists: true,
        role: role(&p["instanceLinkRole"]),
        mode: match p["replicationMode"].as_str() {
            Some("Sync") => Some(AvailabilityMode::SynchronousCommit),
            Some(_) => Some(AvailabilityMode::AsynchronousCommit),
            None => None,
        },
        partner_mode: None,
        connected: dbs.iter().any(|d| d["connectedState"] == "CONNECTED"),
        version: None,
        update_policy,
        failover_mode: match p["failoverMode"].as_str() {
            Some("Manual") => Some(FailoverMode::Manual),
            Some(_) => Some(FailoverMode::None),
            None => None,
        },
        databases: dbs
            .iter()
            .map(|d| DatabaseView {
                name: DatabaseName::new(d["databaseName"].as_str().unwrap()).unwrap(),
                sync_state: None,
                health: match d["synchronizationHealth"].as_str() {
                    Some("HEALTHY") => SyncHealth::Healthy,
                    Some("PARTIALLY_HEALTHY") => SyncHealth::PartiallyHealthy,
                    _ => SyncHealth::NotHealthy,
                },
                last_hardened_lsn: lsn(&d["lastHardenedLsn"]),
                end_of_log_lsn: None,
                partner: None,
                last_commit_lsn: lsn(&d["lastCommitLsn"]),
                seeding_percent: d["seedingProgress"]
                    .as_str()
                    .map(|s| s.trim_end_matches('%').parse().unwrap()),
                log_send_queue_kb: None,
                redo_queue_kb: None,
                lag_seconds: d["instanceSendReplicationLagSeconds"].as_u64(),
                last_error: d["mostRecentLinkError"].as_str().map(str::to_owned),
                replica_state: d["replicaState"].as_str().map(str::to_owned),
            })
            .collect(),
        live: false,
    }
}

impl HttpsInstance {
    async fn poll_operation(&self, operation: &OperationRef) -> Result<PollReply, PortError> {
        let h = self.get(&operation.url).await?;
        let retry_after = h
            .header("Retry-After")
            .and_then(|s| s.parse().ok())
            .map(Duration::from_secs);
        match (operation.kind, h.status) {
            (OperationKind::AzureAsyncOperation, 200) => {
                let doc = h.body.as_ref().unwrap();
                match doc["status"].as_str() {
                    Some("InProgress") => Ok(PollReply::Running { retry_after }),
                    Some("Succeeded") => Ok(PollReply::Succeeded),
                    _ => {
                        let failed = Http {
                            status: 400,
                            headers: h.headers.clone(),
                            body: Some(serde_json::json!({"error": doc["error"].clone()})),
                        };
                        Err(port_error(&failed))
                    }
                }
            }
            (OperationKind::Location, 202) => Ok(PollReply::Running { retry_after }),
            (OperationKind::Location, 200 | 204) => Ok(PollReply::Succeeded),
            _ => Err(port_error(&h)),
        }
    }

    async fn get(&self, url: &str) -> Result<Http, PortError> {
        let _call = self.in_flight.enter();
        match self.client.get(url).bearer_auth(TOKEN).send().await {
            Ok(r) => Ok(read(r).await),
            Err(e) => Err(PortError::transient("io", e.to_string())),
        }
    }
}

#[async_trait]
impl ManagedInstance for HttpsInstance {
    async fn begin(&self, op: &InstanceOp) -> Result<ArmReply, PortError> {
        let r = arm::request(op, &self.instance);
        let method = reqwest::Method::from_bytes(r.method.as_str().as_bytes()).unwrap();
        let mut b = self
            .client
            .request(method, r.url(&self.base))
            .bearer_auth(TOKEN);
        if let Some(body) = &r.body {
            b = b.json(body);
        }
        let h = {
            let _call = self.in_flight.enter();
            match b.send().await {
                Ok(resp) => read(resp).await,
                Err(e) => return Err(PortError::transient("timeout", e.to_string())),
            }
        };
        match (h.status, op) {
            (200, InstanceOp::GetEndpointCertificate) => {
                let blob = h.body.as_ref().unwrap()["properties"]["publicBlob"]
                    .as_str()
                    .unwrap();
                Ok(ArmReply::PublicKey(hex(blob)))
            }
            (200 | 201 | 204, _) => Ok(ArmReply::Completed),
            (202, _) => Ok(ArmReply::Accepted(match h.header("Azure-AsyncOperation") {
                Some(url) => OperationRef {
                    url: url.to_owned(),
                    kind: OperationKind::AzureAsyncOperation,
                    resource: arm::put_resource(op, &self.instance),
                },
                None => OperationRef {
                    url: h.header("Location").unwrap().to_owned(),
                    kind: OperationKind::Location,
                    resource: arm::put_resource(op, &self.instance),
                },
            })),
            _ => Err(port_error(&h)),
        }
    }

    async fn poll(&self, operation: &OperationRef) -> Result<PollReply, PortError> {
        let reply = self.poll_operation(operation).await?;
        // As ARM clients do, a PUT's operation ends with the GET of its resource.
        if let (PollReply::Succeeded, Some(resource)) = (&reply, &operation.resource) {
            let h = self.get(&format!("{}{resource}", self.base)).await?;
            assert_eq!(h.status, 200, "the final GET of {resource}");
        }
        Ok(reply)
    }

    async fn link_state(&self, link: &LinkName) -> Result<SideView, PortError> {
        let path = format!(
            "{}/distributedAvailabilityGroups/{}",
            self.instance,
            arm::segment(link.as_str())
        );
        let h = self
            .get(&format!("{}{path}?api-version={API_VERSION}", self.base))
            .await?;
        match h.status {
            404 => return Ok(SideView::unknown()),
            200 => {}
            _ => return Err(port_error(&h)),
        }
        let mi = self
            .get(&format!(
                "{}{}?api-version={API_VERSION}",
                self.base, self.instance
            ))
            .await?;
        let policy = mi
            .body
            .as_ref()
            .and_then(|b| b["properties"]["databaseFormat"].as_str())
            .map(|s| UpdatePolicy::parse(s).unwrap());
        Ok(side_view(h.body.as_ref().unwrap(), policy))
    }

    async fn full_backups(&self, databases: &[DatabaseName]) -> Result<Vec<FullBackup>, PortError> {
        self.tsql.full_backups(databases).await
    }
}

#[tokio::test]
async fn a_session_over_https_creates_the_link_as_in_process() {
    // The HTTPS port reads ARM only: so does the in-process instance here.
    let arm_only = || SimConfig {
        instance_tsql_reads: false,
        ..SimConfig::with_seed(8)
    };
    let https = Lab::tailspin_with(arm_only()).unwrap();
    let local = Lab::tailspin_with(arm_only()).unwrap();
    let server = ArmHttpsServer::start(ArmServerConfig::with_token(TOKEN), https.sim.clone())
        .await
        .unwrap();
    let in_flight = InFlight::new();
    let mi = HttpsInstance {
        client: super::tests::client_trusting(server.certificate_der()),
        base: server.base_url().to_owned(),
        instance: https.spec.target.instance.clone(),
        in_flight: Arc::clone(&in_flight),
        tsql: https.sim.managed_instance(),
    };
    let over_https = Session::create(
        https.spec.clone(),
        Arc::new(https.sim.sql_server()),
        Arc::new(mi),
        MemoryJournal::new(),
        Arc::new(WireClock::new(https.sim.clock(), in_flight)),
        SessionOptions::default(),
    )
    .unwrap();
    let in_process = Session::create(
        local.spec.clone(),
        Arc::new(local.sim.sql_server()),
        Arc::new(local.sim.managed_instance()),
        MemoryJournal::new(),
        Arc::new(local.sim.clock()),
        SessionOptions::default(),
    )
    .unwrap();
    let ready = || AssessmentOutcome { blockers: vec![] };
    over_https.record_assessment(ready()).await.unwrap();
    over_https.start().await.unwrap();
    in_process.record_assessment(ready()).await.unwrap();
    in_process.start().await.unwrap();
    let (a, b) = (over_https.status(), in_process.status());
    assert_eq!(a.state, b.state, "{} / {}", a.detail, b.detail);
    assert!(
        matches!(a.state, Phase::Seeding | Phase::Replicating),
        "{:?}: {}",
        a.state,
        a.detail
    );
    let link = &https.spec.link;
    assert!(
        https
            .sim
            .with_world(|w| w.instance.links.contains_key(link))
    );
    let wa = https.sim.with_world(comparable);
    let wb = local.sim.with_world(comparable);
    assert_eq!(first_difference(&wa, &wb), None);
    server.shutdown().await;
}
