//! The adapter against a scripted HTTPS server on loopback, with a fake credential that counts
//! its calls and a virtual timer for the retries' waits.

mod live;
mod reads;
mod server;
#[cfg(feature = "sim")]
mod sim;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use azure_core::credentials::{AccessToken, TokenRequestOptions};
use azure_core::time::OffsetDateTime;
use serde_json::json;

use super::*;
use crate::lifecycle::{
    ArmFailoverType, AvailabilityMode, FailoverMode, LinkProperties, ReplicaRole, RoleChangeType,
    SeedingMode, Side,
};
use crate::names::{AgName, CertificateName, LinkMode};
use crate::test_support::VirtualTimer;
use crate::time::{Clock, Timestamp};
use server::{Reply, Server};

/// 2026-11-26T12:00:00Z.
const NOW_MS: u64 = 1_795_694_400_000;
const TOKEN: &str = "s3cr3t-bearer-token";

#[derive(Debug, Default)]
struct FakeCredential {
    calls: AtomicUsize,
}

#[async_trait]
impl TokenCredential for FakeCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        assert_eq!(scopes.len(), 1);
        assert!(scopes[0].ends_with("/.default"), "{scopes:?}");
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let expires = i64::try_from(NOW_MS / 1000 + 3600).unwrap();
        Ok(AccessToken::new(
            format!("{TOKEN}-{n}"),
            OffsetDateTime::from_unix_timestamp(expires).unwrap(),
        ))
    }
}

struct Fixture {
    server: Server,
    credential: Arc<FakeCredential>,
    timer: Arc<VirtualTimer>,
    mi: ArmManagedInstance,
}

fn instance() -> InstanceId {
    InstanceId::from_parts("sub", "rg", "tailspin-mi").unwrap()
}

fn adapter(
    server: &Server,
    credential: &Arc<FakeCredential>,
    timer: &Arc<VirtualTimer>,
) -> ArmManagedInstance {
    let options = ArmOptions::builder()
        .endpoint(server.base.clone())
        .trust_root_der(server.certificate.clone())
        .request_timeout(Duration::from_secs(20))
        .build();
    ArmManagedInstance::with_timer(instance(), credential.clone(), options, timer.clone()).unwrap()
}

async fn fixture(script: Vec<Reply>) -> Fixture {
    let server = Server::start(script).await;
    let credential = Arc::new(FakeCredential::default());
    let timer = Arc::new(VirtualTimer::new(Timestamp::from_millis(NOW_MS)));
    let mi = adapter(&server, &credential, &timer);
    Fixture {
        server,
        credential,
        timer,
        mi,
    }
}

fn put_link() -> InstanceOp {
    InstanceOp::PutLink {
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
    }
}

fn link() -> LinkName {
    LinkName::new("DAG_ToyStore").unwrap()
}

const MI_PATH: &str =
    "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Sql/managedInstances/tailspin-mi";

fn status(s: &str) -> Reply {
    Reply::json(200, json!({"status": s}))
}

#[tokio::test]
async fn a_put_accepted_with_an_async_operation_is_polled_to_success() {
    let f = fixture(vec![
        Reply::new(202)
            .header(
                "Azure-AsyncOperation",
                "{base}/ops/1?api-version=2025-01-01",
            )
            .header("Location", "{base}/results/1?api-version=2025-01-01")
            .header("Retry-After", "5"),
        status("InProgress").header("Retry-After", "7"),
        status("Succeeded"),
        Reply::json(
            200,
            json!({"properties": {"provisioningState": "Succeeded"}}),
        ),
    ])
    .await;
    let reply = f.mi.begin(&put_link()).await.unwrap();
    let ArmReply::Accepted(op) = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(op.kind, OperationKind::AzureAsyncOperation);
    assert_eq!(
        op.url,
        format!("{}/ops/1?api-version=2025-01-01", f.server.base)
    );
    assert_eq!(
        f.mi.poll(&op).await.unwrap(),
        PollReply::Running {
            retry_after: Some(Duration::from_secs(7))
        }
    );
    assert_eq!(f.mi.poll(&op).await.unwrap(), PollReply::Succeeded);

    let seen = f.server.seen();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[0].method, "PUT");
    // The final GET of the link the PUT created.
    assert_eq!(
        (seen[3].method.as_str(), seen[3].path.as_str()),
        ("GET", seen[0].path.as_str())
    );
    assert_eq!(seen[3].query, "api-version=2025-01-01");
    assert_eq!(
        seen[0].path,
        format!("{MI_PATH}/distributedAvailabilityGroups/DAG_ToyStore")
    );
    assert_eq!(seen[0].query, "api-version=2025-01-01");
    let body: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(
        body["properties"]["partnerAvailabilityGroupName"],
        "AG_ToyStore"
    );
    assert_eq!(
        (seen[1].method.as_str(), seen[1].path.as_str()),
        ("GET", "/ops/1")
    );
    let mut ids = std::collections::BTreeSet::new();
    for s in &seen {
        assert_eq!(
            s.authorization.as_deref(),
            Some(format!("Bearer {TOKEN}-1").as_str())
        );
        assert!(s.user_agent.as_deref().unwrap().starts_with("milink/"));
        assert!(
            ids.insert(s.client_request_id.clone().unwrap()),
            "ids repeat"
        );
    }
    // One token for the four requests.
    assert_eq!(f.credential.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_location_operation_is_running_on_202_and_done_on_204() {
    let f = fixture(vec![
        Reply::new(202).header("Location", "{base}/results/9"),
        Reply::new(202).header("Retry-After", "3"),
        Reply::new(204),
    ])
    .await;
    let op = InstanceOp::DeleteLink { link: link() };
    let ArmReply::Accepted(op_ref) = f.mi.begin(&op).await.unwrap() else {
        panic!("not accepted")
    };
    assert_eq!(op_ref.kind, OperationKind::Location);
    assert_eq!(
        f.mi.poll(&op_ref).await.unwrap(),
        PollReply::Running {
            retry_after: Some(Duration::from_secs(3))
        }
    );
    assert_eq!(f.mi.poll(&op_ref).await.unwrap(), PollReply::Succeeded);
    assert_eq!(f.server.seen()[0].method, "DELETE");
}

/// A `Retry-After` sent as an HTTP date waits until that date by the server's own `Date`.
#[tokio::test]
async fn a_retry_after_date_is_read_against_the_servers_date() {
    let f = fixture(vec![
        Reply::new(202).header("Location", "{base}/results/9"),
        Reply::new(202)
            .header("Retry-After", "Mon, 07 Dec 2026 10:00:12 GMT")
            .header("Date", "Mon, 07 Dec 2026 10:00:00 GMT"),
        Reply::new(204),
    ])
    .await;
    let ArmReply::Accepted(op_ref) =
        f.mi.begin(&InstanceOp::DeleteLink { link: link() })
            .await
            .unwrap()
    else {
        panic!("not accepted")
    };
    assert_eq!(
        f.mi.poll(&op_ref).await.unwrap(),
        PollReply::Running {
            retry_after: Some(Duration::from_secs(12))
        }
    );
    assert_eq!(f.mi.poll(&op_ref).await.unwrap(), PollReply::Succeeded);
}

#[tokio::test]
async fn failed_and_canceled_operations_end_with_the_arm_error() {
    let f = fixture(vec![
        Reply::json(
            200,
            json!({"status": "Failed", "error": {"code": "LinkCreationError",
                "message": "The partner endpoint could not be reached."}}),
        ),
        Reply::json(200, json!({"status": "Canceled"})),
        Reply::json(
            200,
            json!({"status": "Failed", "error": {"code": "41962", "message": "x"}}),
        ),
    ])
    .await;
    let op = OperationRef {
        url: format!("{}/ops/2", f.server.base),
        kind: OperationKind::AzureAsyncOperation,
        resource: None,
    };
    let failed = f.mi.poll(&op).await.unwrap_err();
    assert_eq!(failed.code(), "arm:200:LinkCreationError");
    assert!(!failed.transient);
    assert!(failed.message.contains("could not be reached"), "{failed}");
    let canceled = f.mi.poll(&op).await.unwrap_err();
    assert_eq!(canceled.code(), "arm:200:OperationCanceled");
    assert!(!canceled.transient);
    // A SQL Server error number ARM passes on stays one.
    assert_eq!(f.mi.poll(&op).await.unwrap_err().code(), "sql:41962");
}

#[tokio::test]
async fn throttling_is_retried_after_the_hint_within_the_cap() {
    let blob = json!({"properties": {"publicBlob": "0x308203B2"}});
    let f = fixture(vec![
        Reply::json(
            429,
            json!({"error": {"code": "TooManyRequests", "message": "slow"}}),
        )
        .header("Retry-After", "10"),
        Reply::json(200, blob.clone()),
        Reply::new(429).header("Retry-After", "86400"),
        Reply::json(200, blob),
    ])
    .await;
    let t0 = f.timer.now();
    let reply =
        f.mi.begin(&InstanceOp::GetEndpointCertificate)
            .await
            .unwrap();
    assert_eq!(reply, ArmReply::PublicKey(vec![0x30, 0x82, 0x03, 0xB2]));
    assert_eq!(f.timer.now().since(t0), Duration::from_secs(10));
    // A day's hint waits the cap (60 s by default).
    f.mi.begin(&InstanceOp::GetEndpointCertificate)
        .await
        .unwrap();
    assert_eq!(f.timer.now().since(t0), Duration::from_secs(70));
    let seen = f.server.seen();
    assert_eq!(seen.len(), 4);
    assert!(
        seen.iter()
            .all(|s| s.path.ends_with("/endpointCertificates/DATABASE_MIRRORING"))
    );
}

#[tokio::test]
async fn throttling_that_outlasts_the_retries_is_a_throttled_error() {
    let mut script = Vec::new();
    for _ in 0..5 {
        script.push(Reply::new(429).header("Retry-After", "1"));
    }
    let f = fixture(script).await;
    let e =
        f.mi.begin(&InstanceOp::GetEndpointCertificate)
            .await
            .unwrap_err();
    assert_eq!(e.code(), "http:429");
    assert!(e.transient && e.is_throttled());
    assert_eq!(e.retry_after, Some(Duration::from_secs(1)));
    assert_eq!(f.server.seen().len(), 5);
}

#[tokio::test]
async fn a_busy_instance_is_a_typed_409() {
    let f = fixture(vec![
        Reply::json(
            409,
            json!({"error": {"code": "ManagedInstanceIsBusy",
                "message": "The managed instance is busy with another operation."}}),
        )
        .header("x-ms-request-id", "req-42")
        .header("x-ms-correlation-request-id", "corr-42"),
    ])
    .await;
    let op = InstanceOp::SetReplicationMode {
        link: link(),
        mode: AvailabilityMode::SynchronousCommit,
    };
    let e = f.mi.begin(&op).await.unwrap_err();
    assert_eq!(e.code(), "arm:409:ManagedInstanceIsBusy");
    assert!(e.transient && e.is_busy());
    assert!(
        e.message.contains("req-42") && e.message.contains("corr-42"),
        "{e}"
    );
    assert_eq!(
        f.server.seen().len(),
        1,
        "a 409 is not retried by the adapter"
    );
}

#[tokio::test]
async fn refused_tokens_and_missing_permissions_say_what_to_check() {
    let unauthorized = json!({"error": {"code": "InvalidAuthenticationToken", "message": "no"}});
    let f = fixture(vec![
        Reply::json(401, unauthorized.clone()),
        Reply::json(401, unauthorized),
        Reply::json(
            403,
            json!({"error": {"code": "AuthorizationFailed", "message": "denied"}}),
        ),
    ])
    .await;
    let e =
        f.mi.begin(&InstanceOp::DeleteLink { link: link() })
            .await
            .unwrap_err();
    assert_eq!(e.code(), "arm:401:InvalidAuthenticationToken");
    assert!(!e.transient);
    assert!(e.message.contains("tenant"), "{e}");
    // The refused token was dropped and a fresh one asked for once.
    assert_eq!(f.credential.calls.load(Ordering::SeqCst), 2);
    let op = InstanceOp::SetRole {
        link: link(),
        role: Side::ManagedInstance,
        change: RoleChangeType::Forced,
    };
    let e = f.mi.begin(&op).await.unwrap_err();
    assert_eq!(e.code(), "arm:403:AuthorizationFailed");
    assert!(
        e.message
            .contains("distributedAvailabilityGroups/setRole/action"),
        "{e}"
    );
}

#[tokio::test]
async fn malformed_and_oversized_bodies_are_typed_errors() {
    let f = fixture(vec![
        Reply::new(200).body(b"{\"properties\": ".to_vec()),
        Reply::new(200).body(vec![b' '; 10 * 1024 * 1024]),
        Reply::new(202),
    ])
    .await;
    let e =
        f.mi.begin(&InstanceOp::GetEndpointCertificate)
            .await
            .unwrap_err();
    assert_eq!(e.code(), MALFORMED);
    assert!(!e.transient);
    let e = f.mi.link_state(&link()).await.unwrap_err();
    assert_eq!(e.code(), MALFORMED);
    assert!(e.message.contains("1024 KiB"), "{e}");
    let op = InstanceOp::Failover {
        link: link(),
        failover_type: ArmFailoverType::Planned,
    };
    let e = f.mi.begin(&op).await.unwrap_err();
    assert_eq!(e.code(), MALFORMED, "202 without an operation to follow");
}

#[tokio::test]
async fn an_untrusted_server_certificate_is_a_tls_error() {
    let server = Server::start(vec![Reply::new(200)]).await;
    let options = ArmOptions::builder().endpoint(server.base.clone()).build();
    let credential = Arc::new(FakeCredential::default());
    let timer = Arc::new(VirtualTimer::new(Timestamp::from_millis(NOW_MS)));
    let mi = ArmManagedInstance::with_timer(instance(), credential, options, timer).unwrap();
    let e = mi.link_state(&link()).await.unwrap_err();
    assert_eq!(e.code(), "tls", "{e}");
    assert!(!e.transient);
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn a_closed_port_is_an_io_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let options = ArmOptions::builder()
        .endpoint(format!("https://127.0.0.1:{port}"))
        .build();
    let timer = Arc::new(VirtualTimer::new(Timestamp::from_millis(NOW_MS)));
    let mi = ArmManagedInstance::with_timer(
        instance(),
        Arc::new(FakeCredential::default()),
        options,
        timer,
    )
    .unwrap();
    let e = mi.link_state(&link()).await.unwrap_err();
    assert_eq!(e.code(), "io", "{e}");
    assert!(e.transient);
}

#[tokio::test]
async fn the_token_is_never_shown() {
    let f = fixture(vec![Reply::json(
        400,
        json!({"error": {"code": "BadRequest", "message": "bad"}}),
    )])
    .await;
    let e = f.mi.begin(&put_link()).await.unwrap_err();
    f.server.then(vec![Reply::new(500); 5]);
    let e2 = f.mi.link_state(&link()).await.unwrap_err();
    for shown in [
        format!("{:?}", f.mi),
        e.to_string(),
        format!("{e:?}"),
        e2.to_string(),
        format!("{:?}", ArmOptions::default()),
    ] {
        assert!(!shown.contains(TOKEN), "{shown}");
    }
    assert_eq!(e2.code(), "http:500");
}

#[tokio::test]
async fn a_resumed_session_polls_the_kept_url_without_beginning_again() {
    let f = fixture(vec![status("InProgress"), status("Succeeded")]).await;
    // The continuation as the lifecycle state keeps it, read back by a new adapter.
    let kept = serde_json::to_string(&OperationRef {
        url: format!("{}/ops/77?api-version=2025-01-01", f.server.base),
        kind: OperationKind::AzureAsyncOperation,
        resource: None,
    })
    .unwrap();
    let op: OperationRef = serde_json::from_str(&kept).unwrap();
    let fresh = adapter(&f.server, &Arc::new(FakeCredential::default()), &f.timer);
    assert!(matches!(
        fresh.poll(&op).await.unwrap(),
        PollReply::Running { .. }
    ));
    assert_eq!(fresh.poll(&op).await.unwrap(), PollReply::Succeeded);
    let seen = f.server.seen();
    assert!(
        seen.iter()
            .all(|s| s.method == "GET" && s.path == "/ops/77")
    );
    assert!(seen.iter().all(|s| s.query == "api-version=2025-01-01"));
    assert_eq!(seen.len(), 2);
}

#[tokio::test]
async fn an_operation_url_on_another_host_is_followed_on_the_management_endpoint() {
    // A kept URL from a run whose endpoint moved, or a header naming a host of its own: the
    // token goes to the configured endpoint only, with the operation's path and query.
    let f = fixture(vec![status("Succeeded")]).await;
    let op = OperationRef {
        url: "https://attacker.example.net:8443/ops/78?api-version=2025-01-01".to_owned(),
        kind: OperationKind::AzureAsyncOperation,
        resource: None,
    };
    let arm = adapter(&f.server, &f.credential, &f.timer);
    assert_eq!(arm.poll(&op).await.unwrap(), PollReply::Succeeded);
    let seen = f.server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/ops/78");
    assert_eq!(seen[0].query, "api-version=2025-01-01");
}

#[tokio::test]
async fn link_state_reads_the_link_and_the_update_policy() {
    let f = fixture(vec![
        Reply::json(
            404,
            json!({"error": {"code": "ResourceNotFound", "message": "none"}}),
        ),
        Reply::json(
            200,
            json!({"properties": {"instanceLinkRole": "Secondary", "replicationMode": "Sync",
                "failoverMode": "Manual", "databases": [{"databaseName": "ToyStore",
                "replicaState": "LinkSynchronizing", "synchronizationHealth": "HEALTHY",
                "connectedState": "CONNECTED", "lastHardenedLsn": "42000000001600001"}]}}),
        ),
        Reply::json(
            200,
            json!({"properties": {"databaseFormat": "SQLServer2022"}}),
        ),
    ])
    .await;
    assert!(!f.mi.link_state(&link()).await.unwrap().exists);
    let view = f.mi.link_state(&link()).await.unwrap();
    assert!(view.exists && view.connected);
    assert_eq!(view.role, Some(ReplicaRole::Secondary));
    assert_eq!(view.mode, Some(AvailabilityMode::SynchronousCommit));
    assert_eq!(
        view.update_policy,
        Some(crate::names::UpdatePolicy::SqlServer2022)
    );
    assert_eq!(
        view.databases[0].replica_state.as_deref(),
        Some("LinkSynchronizing")
    );
    let seen = f.server.seen();
    assert_eq!(seen[2].path, MI_PATH);
    assert!(seen.iter().all(|s| s.method == "GET"));
}

#[tokio::test]
async fn backups_and_sessions_are_not_read_through_arm() {
    let f = fixture(Vec::new()).await;
    let dbs = [DatabaseName::new("ToyStore").unwrap()];
    assert_eq!(
        f.mi.full_backups(&dbs).await.unwrap_err().code(),
        UNSUPPORTED
    );
    assert_eq!(
        f.mi.workload_activity(&dbs).await.unwrap_err().code(),
        UNSUPPORTED
    );
    assert!(f.server.seen().is_empty());
}

#[tokio::test]
async fn a_body_cut_short_is_a_transport_error() {
    let server = Server::start_raw(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"properties\": {",
    )
    .await;
    let timer = Arc::new(VirtualTimer::new(Timestamp::from_millis(NOW_MS)));
    let mi = adapter(&server, &Arc::new(FakeCredential::default()), &timer);
    let e = mi.link_state(&link()).await.unwrap_err();
    assert_eq!(e.code(), "io", "{e}");
    assert!(e.transient);
    assert!(e.message.contains("ARM had answered 200"), "{e}");
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_timeout() {
    let server = Server::start_raw(b"").await;
    let options = ArmOptions::builder()
        .endpoint(server.base.clone())
        .trust_root_der(server.certificate.clone())
        .request_timeout(Duration::from_millis(300))
        .build();
    let timer = Arc::new(VirtualTimer::new(Timestamp::from_millis(NOW_MS)));
    let mi = ArmManagedInstance::with_timer(
        instance(),
        Arc::new(FakeCredential::default()),
        options,
        timer,
    )
    .unwrap();
    let e = mi
        .poll(&OperationRef {
            url: format!("{}/ops/3", server.base),
            kind: OperationKind::Location,
            resource: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), "timeout", "{e}");
    assert!(e.transient);
}

/// A credential that never answers (offline, retrying on its own).
#[derive(Debug)]
struct HangingCredential;

#[async_trait]
impl TokenCredential for HangingCredential {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_credential_that_hangs_is_cut_by_the_token_timeout() {
    let server = Server::start(Vec::new()).await;
    let options = ArmOptions::builder()
        .endpoint(server.base.clone())
        .trust_root_der(server.certificate.clone())
        .token_timeout(Duration::from_millis(100))
        .build();
    let timer = Arc::new(VirtualTimer::new(Timestamp::from_millis(NOW_MS)));
    let mi =
        ArmManagedInstance::with_timer(instance(), Arc::new(HangingCredential), options, timer)
            .unwrap();
    let e = mi.link_state(&link()).await.unwrap_err();
    assert_eq!(e.code(), "timeout", "{e}");
    assert!(e.message.contains("management.azure.com") || e.message.contains("/.default"));
    assert!(server.seen().is_empty(), "nothing is sent without a token");
}

/// A timer that records how many calls were on the wire whenever it was asked to wait.
struct WatchingTimer {
    inner: VirtualTimer,
    on_wire: Arc<AtomicUsize>,
    seen_on_wire: std::sync::Mutex<Vec<usize>>,
}

impl Clock for WatchingTimer {
    fn now(&self) -> Timestamp {
        self.inner.now()
    }
}

#[async_trait]
impl Timer for WatchingTimer {
    async fn sleep_until(&self, deadline: Timestamp) {
        self.seen_on_wire
            .lock()
            .unwrap()
            .push(self.on_wire.load(Ordering::SeqCst));
        self.inner.sleep_until(deadline).await;
    }
}

struct Guard(Arc<AtomicUsize>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn requests_count_on_the_wire_but_retry_waits_do_not() {
    let server = Server::start(vec![
        Reply::new(503).header("Retry-After", "2"),
        Reply::new(204),
    ])
    .await;
    let on_wire = Arc::new(AtomicUsize::new(0));
    let entered = Arc::new(AtomicUsize::new(0));
    let timer = Arc::new(WatchingTimer {
        inner: VirtualTimer::new(Timestamp::from_millis(NOW_MS)),
        on_wire: Arc::clone(&on_wire),
        seen_on_wire: std::sync::Mutex::new(Vec::new()),
    });
    let options = ArmOptions::builder()
        .endpoint(server.base.clone())
        .trust_root_der(server.certificate.clone())
        .build();
    let (counter, entries) = (Arc::clone(&on_wire), Arc::clone(&entered));
    let mi = ArmManagedInstance::with_timer(
        instance(),
        Arc::new(FakeCredential::default()),
        options,
        timer.clone(),
    )
    .unwrap()
    .on_the_wire(Arc::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        entries.fetch_add(1, Ordering::SeqCst);
        Box::new(Guard(Arc::clone(&counter)))
    }));
    let op = InstanceOp::DeleteServerTrustCertificate {
        name: CertificateName::new("Cert_TailspinSql_endpoint").unwrap(),
    };
    assert_eq!(mi.begin(&op).await.unwrap(), ArmReply::Completed);
    assert_eq!(entered.load(Ordering::SeqCst), 2);
    assert_eq!(on_wire.load(Ordering::SeqCst), 0);
    assert_eq!(*timer.seen_on_wire.lock().unwrap(), vec![0]);
    assert_eq!(
        timer.now().since(Timestamp::from_millis(NOW_MS)),
        Duration::from_secs(2)
    );
}

#[tokio::test]
async fn a_multi_database_link_is_sent_with_the_preview_api_version() {
    let f = fixture(vec![Reply::new(200)]).await;
    let mut op = put_link();
    if let InstanceOp::PutLink { properties, .. } = &mut op {
        properties.link_mode = LinkMode::MultiDatabase;
    }
    assert_eq!(f.mi.begin(&op).await.unwrap(), ArmReply::Completed);
    let seen = f.server.seen();
    assert_eq!(seen[0].query, "api-version=2025-08-01-preview");
    assert!(seen[0].body.contains("\"linkMode\":\"MultiDatabase\""));
}
