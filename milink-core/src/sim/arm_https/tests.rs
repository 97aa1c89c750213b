//! Tests over HTTPS with a real client (reqwest with rustls, trusting only the server's
//! certificate): every [`InstanceOp`] sent as [`crate::arm::request`] renders it, answered and
//! polled as the in-process instance answers a twin world, and the worlds compared.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Certificate, Client};
use serde_json::Value;

use super::{ArmHttpsServer, ArmServerConfig};
use crate::arm::{
    self, API_VERSION, ArmRead, ArmRequest, MANAGEMENT_ENDPOINT, PREVIEW_API_VERSION,
};
use crate::lifecycle::{
    ArmFailoverType, AvailabilityMode, InstanceOp, LinkProperties, OperationRef, RoleChangeType,
    Side, SourceOp,
};
use crate::names::{CertificateName, InstanceId, LinkMode};
use crate::ports::{ArmReply, ManagedInstance, PollReply, PortError, SourceReply, SourceServer};
use crate::sim::sql::ddl::fixtures::{comparable, first_difference, link_ops};
use crate::sim::world::ReplicaPhase;
use crate::sim::{Call, Fault, InstanceCall, Lab, SimConfig, Trigger};

pub(super) const TOKEN: &str = "sim-arm-test-token";

/// An HTTP answer as the client read it.
#[derive(Debug)]
pub(super) struct Http {
    pub(super) status: u16,
    pub(super) headers: HeaderMap,
    pub(super) body: Option<Value>,
}

impl Http {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(super) fn code(&self) -> &str {
        self.body
            .as_ref()
            .and_then(|b| b["error"]["code"].as_str())
            .unwrap_or_default()
    }
}

pub(super) fn client_trusting(der: &[u8]) -> Client {
    Client::builder()
        .tls_certs_only([Certificate::from_der(der).unwrap()])
        .build()
        .unwrap()
}

pub(super) async fn read(r: reqwest::Response) -> Http {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.unwrap();
    let body = (!bytes.is_empty()).then(|| serde_json::from_slice(&bytes).unwrap());
    Http {
        status,
        headers,
        body,
    }
}

/// The same world twice: one served over HTTPS, one driven in process.
pub(super) struct Twin {
    pub(super) https: Lab,
    pub(super) local: Lab,
    pub(super) server: ArmHttpsServer,
    pub(super) client: Client,
}

impl Twin {
    pub(super) async fn new(seed: u64) -> Twin {
        // The HTTPS port reads ARM only: so does the in-process instance here.
        let arm_only = || SimConfig {
            instance_tsql_reads: false,
            ..SimConfig::with_seed(seed)
        };
        let https = Lab::tailspin_with(arm_only()).unwrap();
        let local = Lab::tailspin_with(arm_only()).unwrap();
        let server = ArmHttpsServer::start(ArmServerConfig::with_token(TOKEN), https.sim.clone())
            .await
            .unwrap();
        let client = client_trusting(server.certificate_der());
        Twin {
            https,
            local,
            server,
            client,
        }
    }

    pub(super) fn instance(&self) -> InstanceId {
        self.local.spec.target.instance.clone()
    }

    pub(super) fn url(&self, r: &ArmRequest) -> String {
        r.url(self.server.base_url())
    }

    async fn send(&self, r: &ArmRequest) -> Result<Http, reqwest::Error> {
        let method = reqwest::Method::from_bytes(r.method.as_str().as_bytes()).unwrap();
        let mut b = self.client.request(method, self.url(r)).bearer_auth(TOKEN);
        if let Some(body) = &r.body {
            b = b.json(body);
        }
        Ok(read(b.send().await?).await)
    }

    pub(super) async fn get(&self, url: &str) -> Http {
        read(
            self.client
                .get(url)
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub(super) fn assert_same_worlds(&self, what: &str) {
        let a = self.https.sim.with_world(comparable);
        let b = self.local.sim.with_world(comparable);
        assert_eq!(first_difference(&a, &b), None, "worlds differ after {what}");
    }

    fn advance(&self, d: Duration) {
        self.https.sim.advance(d);
        self.local.sim.advance(d);
    }

    async fn sql(&self, op: &SourceOp) -> SourceReply {
        let a = self.https.sim.sql_server().execute(op).await.unwrap();
        let b = self.local.sim.sql_server().execute(op).await.unwrap();
        assert_eq!(a, b);
        a
    }

    /// Sends `op` over HTTPS and begins it in process; asserts both answer alike and the
    /// worlds stay equal.
    async fn op(
        &self,
        op: &InstanceOp,
    ) -> (Result<Http, reqwest::Error>, Result<ArmReply, PortError>) {
        let http = self.send(&arm::request(op, &self.instance())).await;
        let local = self.local.sim.managed_instance().begin(op).await;
        self.assert_agrees(op, &http, &local);
        self.assert_same_worlds(&format!("{op:?}"));
        (http, local)
    }

    fn assert_agrees(
        &self,
        op: &InstanceOp,
        http: &Result<Http, reqwest::Error>,
        local: &Result<ArmReply, PortError>,
    ) {
        let what = format!("{op:?}");
        match (http, local) {
            (Err(e), Err(l)) => assert!(
                matches!(l.code().as_str(), "io" | "timeout"),
                "{what}: the connection failed ({e}) but in process answered {l}"
            ),
            (Err(e), Ok(l)) => panic!("{what}: {e}, in process {l:?}"),
            (Ok(h), Err(e)) => assert_error(h, e, &what),
            (Ok(h), Ok(ArmReply::Completed)) => {
                let deleting = matches!(
                    op,
                    InstanceOp::DeleteLink { .. } | InstanceOp::DeleteServerTrustCertificate { .. }
                );
                assert_eq!(h.status, if deleting { 204 } else { 200 }, "{what}: {h:?}");
            }
            (Ok(h), Ok(ArmReply::PublicKey(der))) => {
                assert_eq!(h.status, 200, "{what}");
                let body = h.body.as_ref().unwrap();
                assert_eq!(body["properties"]["publicBlob"], arm::public_blob(der));
                assert_eq!(body["name"], "DATABASE_MIRRORING");
            }
            (Ok(h), Ok(ArmReply::Accepted(r))) => {
                assert_eq!(h.status, 202, "{what}: {h:?}");
                let expected = r
                    .url
                    .replacen(MANAGEMENT_ENDPOINT, self.server.base_url(), 1);
                assert_eq!(h.header("Location"), Some(expected.as_str()), "{what}");
                let after = self.local.sim.with_world(|w| w.config.arm.retry_after);
                let after = after.as_millis().div_ceil(1000).max(1).to_string();
                assert_eq!(h.header("Retry-After"), Some(after.as_str()), "{what}");
                assert!(h.body.is_none());
            }
        }
    }

    /// Polls an accepted operation to its end over HTTPS (through `Azure-AsyncOperation` when
    /// `status` and the server sent one, else `Location`) and in process, step by step.
    async fn finish(&self, http: &Http, local: &ArmReply, status: bool) -> Http {
        let ArmReply::Accepted(operation) = local else {
            panic!("not accepted: {local:?}");
        };
        let url = match (status, http.header("Azure-AsyncOperation")) {
            (true, Some(u)) => u.to_owned(),
            (true, None) => panic!("no Azure-AsyncOperation header: {http:?}"),
            (false, _) => http.header("Location").unwrap().to_owned(),
        };
        for _ in 0..100_000 {
            let h = self.get(&url).await;
            let l = self.local.sim.managed_instance().poll(operation).await;
            // In process, a poll that reports a link's PUT done charges the final GET a client
            // sends next; over HTTPS that GET is a request of its own.
            let put_link = self
                .local
                .sim
                .with_world(|w| match w.operation_of(operation) {
                    Some(InstanceOp::PutLink { link, .. }) => Some(link.clone()),
                    _ => None,
                });
            if let (Ok(PollReply::Succeeded), Some(link)) = (&l, put_link) {
                let get = arm::read_request(ArmRead::Link(link.as_str()), &self.instance());
                assert_eq!(self.get(&self.url(&get)).await.status, 200);
            }
            self.assert_same_worlds("a poll");
            let doc_status = h
                .body
                .as_ref()
                .and_then(|b| b["status"].as_str())
                .map(str::to_owned);
            match l {
                Ok(PollReply::Running { retry_after }) => {
                    if status {
                        assert_eq!((h.status, doc_status.as_deref()), (200, Some("InProgress")));
                    } else {
                        assert_eq!(h.status, 202);
                        assert_eq!(h.header("Location"), Some(url.as_str()));
                    }
                    let after = retry_after.unwrap();
                    assert_eq!(
                        h.header("Retry-After"),
                        Some(after.as_secs().max(1).to_string().as_str())
                    );
                    self.advance(after);
                }
                Ok(PollReply::Succeeded) => {
                    if status {
                        assert_eq!((h.status, doc_status.as_deref()), (200, Some("Succeeded")));
                    } else {
                        assert!(matches!(h.status, 200 | 204), "{h:?}");
                    }
                    return h;
                }
                Err(e) => {
                    if status {
                        assert_eq!((h.status, doc_status.as_deref()), (200, Some("Failed")));
                        let code = h.body.as_ref().unwrap()["error"]["code"].as_str().unwrap();
                        assert_eq!(code, expected_code(&e));
                    } else {
                        assert_error(&h, &e, "the operation");
                    }
                    return h;
                }
            }
        }
        panic!("the operation never ended");
    }

    async fn until_joined(&self) {
        let link = self.local.spec.link.clone();
        let db = self.local.database.clone();
        for _ in 0..6 * 60 {
            let joined = self.local.sim.with_world(|w| {
                w.replications
                    .get(&link)
                    .and_then(|r| r.databases.get(&db))
                    .is_some_and(|d| matches!(d.phase, ReplicaPhase::Synchronizing))
            });
            if joined {
                return;
            }
            self.advance(Duration::from_secs(60));
        }
        panic!("seeding did not finish");
    }
}

fn expected_code(e: &PortError) -> String {
    super::resources::status_and_code(e).unwrap().1
}

fn assert_error(h: &Http, e: &PortError, what: &str) {
    let (status, code) = super::resources::status_and_code(e).unwrap();
    assert_eq!((h.status, h.code()), (status, code.as_str()), "{what}: {e}");
    assert_eq!(
        h.body.as_ref().unwrap()["error"]["message"],
        e.message.as_str(),
        "{what}"
    );
    let after = e
        .retry_after
        .map(|d| d.as_millis().div_ceil(1000).max(1).to_string());
    assert_eq!(h.header("Retry-After"), after.as_deref(), "{what}");
}

fn put_link(lab: &Lab) -> InstanceOp {
    let s = &lab.spec;
    InstanceOp::PutLink {
        link: s.link.clone(),
        properties: LinkProperties {
            instance_link_role: Side::SqlServer,
            instance_ag: s.target.ag.clone(),
            partner_ag: s.source.ag.clone(),
            partner_endpoint: s.source.endpoint_url(),
            failover_mode: s.failover_mode,
            seeding_mode: s.seeding_mode,
            link_mode: LinkMode::SingleDatabase,
            databases: s.databases.clone(),
        },
    }
}

#[tokio::test]
async fn every_instance_op_over_https_answers_and_changes_the_world_as_in_process() {
    let t = Twin::new(11).await;
    let s = t.local.spec.clone();
    let mut sql = link_ops(&t.local).into_iter();
    // SQL Server's certificate, on both worlds in process.
    let mut der = Vec::new();
    for op in sql.by_ref().take(4) {
        if let SourceReply::PublicKey(d) = t.sql(&op).await {
            der = d;
        }
    }
    assert_eq!(der.first(), Some(&0x30));

    let (h, l) = t.op(&InstanceOp::GetEndpointCertificate).await;
    let Ok(ArmReply::PublicKey(mi_der)) = l else {
        panic!("{l:?}")
    };
    assert_eq!(
        h.unwrap().body.unwrap()["type"],
        "Microsoft.Sql/managedInstances/endpointCertificates"
    );

    let put_cert = InstanceOp::PutServerTrustCertificate {
        name: s.source.certificate.clone(),
        public_blob: der.clone(),
    };
    let (h, l) = t.op(&put_cert).await;
    let done = t.finish(&h.unwrap(), &l.unwrap(), false).await;
    assert_eq!(done.status, 200);
    assert_eq!(
        done.body.unwrap()["properties"]["certificateName"],
        s.source.certificate.as_str()
    );
    // The same certificate again: done at once, the resource in the answer.
    let (h, _) = t.op(&put_cert).await;
    let body = h.unwrap().body.unwrap();
    assert_eq!(
        body["properties"]["publicBlob"],
        arm::public_blob(&der)[2..]
    );
    assert_eq!(body["properties"]["thumbprint"].as_str().unwrap().len(), 40);

    for op in sql.by_ref().take(5) {
        let op = match op {
            SourceOp::ImportInstanceCertificate { fqdn, .. } => {
                SourceOp::ImportInstanceCertificate {
                    fqdn,
                    der: mi_der.clone(),
                }
            }
            op => op,
        };
        t.sql(&op).await;
    }

    let link_op = put_link(&t.local);
    let (h, l) = t.op(&link_op).await;
    let h = h.unwrap();
    assert!(
        h.header("Azure-AsyncOperation")
            .unwrap()
            .contains("distributedAvailabilityGroupsAzureAsyncOperation/")
    );
    t.finish(&h, &l.unwrap(), true).await;
    let (h, _) = t.op(&link_op).await;
    assert_eq!(
        h.unwrap().body.unwrap()["properties"]["instanceLinkRole"],
        "Secondary"
    );
    t.until_joined().await;
    t.assert_same_worlds("seeding");

    // GET and LIST of the DAG: ARM's view, as in process; `linkMode` only in the preview.
    let dag_path = format!("{}/distributedAvailabilityGroups/{}", t.instance(), s.link);
    let at = |v: &str| format!("{}{dag_path}?api-version={v}", t.server.base_url());
    let got = t.get(&at(API_VERSION)).await;
    let view = t
        .local
        .sim
        .managed_instance()
        .link_state(&s.link)
        .await
        .unwrap();
    t.assert_same_worlds("GET of the DAG");
    let p = &got.body.as_ref().unwrap()["properties"];
    assert_eq!(got.status, 200);
    assert_eq!(p["instanceLinkRole"], "Secondary");
    assert_eq!(p["partnerLinkRole"], "Primary");
    assert_eq!(p["replicationMode"], "Async");
    assert!(p.get("linkMode").is_none());
    let db = &p["databases"][0];
    assert_eq!(db["databaseName"], t.local.database.as_str());
    assert_eq!(
        db["lastHardenedLsn"].as_str().map(str::to_owned),
        view.databases[0].last_hardened_lsn.map(|l| l.to_string())
    );
    let got = t.get(&at(PREVIEW_API_VERSION)).await;
    let _ = t.local.sim.managed_instance().link_state(&s.link).await;
    t.assert_same_worlds("GET of the DAG in the preview");
    assert_eq!(
        got.body.unwrap()["properties"]["linkMode"],
        "SingleDatabase"
    );
    let list = t
        .get(&format!(
            "{}{}/distributedAvailabilityGroups?api-version={API_VERSION}",
            t.server.base_url(),
            t.instance()
        ))
        .await;
    let _ = t.local.sim.managed_instance().link_state(&s.link).await;
    t.assert_same_worlds("LIST of the DAGs");
    assert_eq!(list.body.unwrap()["value"][0]["name"], s.link.as_str());

    // Synchronous commit, then a planned failover, then roles and the link's removal.
    t.sql(&SourceOp::SetAvailabilityMode {
        dag: s.link.clone(),
        sql_ag: s.source.ag.clone(),
        mi_ag: s.target.ag.clone(),
        mode: AvailabilityMode::SynchronousCommit,
    })
    .await;
    let mode = InstanceOp::SetReplicationMode {
        link: s.link.clone(),
        mode: AvailabilityMode::SynchronousCommit,
    };
    let (h, l) = t.op(&mode).await;
    let done = t.finish(&h.unwrap(), &l.unwrap(), false).await;
    assert_eq!(done.body.unwrap()["properties"]["replicationMode"], "Sync");
    t.advance(Duration::from_secs(60));
    let later = [
        InstanceOp::Failover {
            link: s.link.clone(),
            failover_type: ArmFailoverType::Planned,
        },
        InstanceOp::SetRole {
            link: s.link.clone(),
            role: Side::ManagedInstance,
            change: RoleChangeType::Forced,
        },
        InstanceOp::SetRole {
            link: s.link.clone(),
            role: Side::SqlServer,
            change: RoleChangeType::Planned,
        },
        InstanceOp::DeleteLink {
            link: s.link.clone(),
        },
        InstanceOp::DeleteLink {
            link: s.link.clone(),
        },
        InstanceOp::DeleteServerTrustCertificate {
            name: s.source.certificate.clone(),
        },
        InstanceOp::DeleteServerTrustCertificate {
            name: s.source.certificate.clone(),
        },
        mode,
    ];
    // Planned failover runs; the instance is then already primary; it gives the role back;
    // the link and the certificate go (twice: the second time there is nothing to delete);
    // a link that is gone is 404.
    let expected = [202, 409, 202, 202, 204, 202, 204, 404];
    let mut statuses = Vec::new();
    for op in later {
        let (h, l) = t.op(&op).await;
        let h = h.unwrap();
        statuses.push(h.status);
        if let Ok(l @ ArmReply::Accepted(_)) = l {
            t.finish(&h, &l, false).await;
        }
    }
    assert_eq!(statuses, expected);
    t.server.shutdown().await;
}

#[tokio::test]
async fn a_failed_operation_reads_failed_through_both_headers() {
    let t = Twin::new(3).await;
    // No DAG on SQL Server: the link is accepted, then fails (41976).
    let (h, l) = t.op(&put_link(&t.local)).await;
    let (h, l) = (h.unwrap(), l.unwrap());
    let failed = t.finish(&h, &l, true).await;
    let error = &failed.body.unwrap()["error"];
    assert_eq!(error["code"], "41976");
    // The same operation through `Location`: the error with its status.
    let ArmReply::Accepted(operation) = &l else {
        panic!()
    };
    let h = t.get(h.header("Location").unwrap()).await;
    let e = t
        .local
        .sim
        .managed_instance()
        .poll(operation)
        .await
        .unwrap_err();
    assert_error(&h, &e, "Location poll");
    t.assert_same_worlds("the polls");
    // An operation id the world never handed out.
    let unknown = format!(
        "{}/subscriptions/{}/providers/Microsoft.Sql/locations/{}/distributedAvailabilityGroupsOperationResults/nope?api-version={API_VERSION}",
        t.server.base_url(),
        t.instance().subscription_id(),
        t.local.sim.with_world(|w| w.instance.location.clone()),
    );
    let h = t.get(&unknown).await;
    let e = t
        .local
        .sim
        .managed_instance()
        .poll(&OperationRef {
            url: unknown.replacen(t.server.base_url(), MANAGEMENT_ENDPOINT, 1),
            kind: crate::lifecycle::OperationKind::Location,
            resource: None,
        })
        .await
        .unwrap_err();
    assert_error(&h, &e, "unknown operation");
}

#[tokio::test]
async fn faults_reach_the_client_with_retry_after_and_the_envelope() {
    let t = Twin::new(5).await;
    let call = Call::Instance(InstanceCall::GetEndpointCertificate);
    let faults = [
        Fault::Throttle {
            retry_after: Duration::from_secs(7),
        },
        Fault::Busy,
        Fault::ServerError { status: 503 },
        Fault::ConnectionDrop,
    ];
    for (n, fault) in faults.into_iter().enumerate() {
        let trigger = Trigger::OnCall {
            call,
            nth: u32::try_from(n).unwrap() + 1,
        };
        t.https.sim.inject(trigger.clone(), fault.clone());
        t.local.sim.inject(trigger, fault);
    }
    let codes = [
        (429, "SubscriptionTooManyRequests"),
        (409, "ManagedInstanceIsBusy"),
        (503, "TooManyRequests"),
    ];
    for (status, code) in codes {
        let (h, _) = t.op(&InstanceOp::GetEndpointCertificate).await;
        let h = h.unwrap();
        assert_eq!((h.status, h.code()), (status, code));
        if status != 503 {
            assert!(h.header("Retry-After").is_some());
        }
    }
    assert_eq!(
        t.send(&arm::request(
            &InstanceOp::GetEndpointCertificate,
            &t.instance()
        ))
        .await
        .map(|h| h.status)
        .ok(),
        None,
        "the connection drop reached the client as an answer"
    );
    let _ = t
        .local
        .sim
        .managed_instance()
        .begin(&InstanceOp::GetEndpointCertificate)
        .await;
    t.assert_same_worlds("the dropped connection");

    // A lost response: the operation took effect, the client got no answer.
    let put = InstanceOp::PutServerTrustCertificate {
        name: CertificateName::new("Cert_Lost").unwrap(),
        public_blob: vec![0x30, 0x82, 0x01, 0x0a],
    };
    let trigger = Trigger::OnCall {
        call: Call::Instance(InstanceCall::PutServerTrustCertificate),
        nth: 1,
    };
    t.https.sim.inject(trigger.clone(), Fault::LostResponse);
    t.local.sim.inject(trigger, Fault::LostResponse);
    let (h, _) = t.op(&put).await;
    assert!(h.is_err());
    assert_eq!(t.local.sim.with_world(|w| w.instance.operations.len()), 1);

    // The documented 409: another operation on the link is running.
    let link = put_link(&t.local);
    let (h, l) = t.op(&link).await;
    assert_eq!(h.unwrap().status, 202, "{l:?}");
    let (h, _) = t.op(&link).await;
    let h = h.unwrap();
    assert_eq!((h.status, h.code()), (409, "ConflictingServerOperation"));
    assert!(h.header("Retry-After").is_some());
}
