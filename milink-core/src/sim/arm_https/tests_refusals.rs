//! Requests the server refuses or reads without the world changing: authentication, unknown
//! resources, api-versions, malformed bodies, the body check, TLS trust; and the REST shapes of
//! the instance and its certificates.

use std::sync::Arc;

use serde_json::json;

use super::tests::{TOKEN, Twin, client_trusting, read};
use super::{ArmHttpsServer, ArmServerConfig, BodyCheck, BodyToCheck};
use crate::arm::{self, API_VERSION, Method, PREVIEW_API_VERSION};
use crate::lifecycle::InstanceOp;
use crate::names::{CertificateName, LinkName};
use crate::ports::ManagedInstance;
use crate::sim::Lab;
use crate::sim::sql::ddl::fixtures::{comparable, first_difference};

#[tokio::test]
async fn requests_need_a_valid_bearer_token() {
    let t = Twin::new(1).await;
    let url = t.url(&arm::request(
        &InstanceOp::GetEndpointCertificate,
        &t.instance(),
    ));
    let before = t.https.sim.with_world(comparable);
    let h = read(t.client.get(&url).send().await.unwrap()).await;
    assert_eq!((h.status, h.code()), (401, "AuthenticationFailed"));
    assert!(h.header("WWW-Authenticate").unwrap().starts_with("Bearer "));
    let h = read(
        t.client
            .get(&url)
            .bearer_auth("not-the-token")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((h.status, h.code()), (401, "InvalidAuthenticationToken"));
    assert!(!h.body.unwrap().to_string().contains("not-the-token"));
    let after = t.https.sim.with_world(comparable);
    assert_eq!(
        first_difference(&before, &after),
        None,
        "a refused request reached the world"
    );
    let h = read(t.client.get(&url).bearer_auth(TOKEN).send().await.unwrap()).await;
    assert_eq!(h.status, 200);
}

#[tokio::test]
async fn unknown_resources_wrong_api_versions_and_malformed_bodies_are_refused() {
    let t = Twin::new(2).await;
    let base = format!("{}{}", t.server.base_url(), t.instance());
    let before = t.https.sim.with_world(comparable);
    let cases: Vec<(reqwest::Method, String, Option<&str>, u16, &str)> = vec![
        (
            reqwest::Method::GET,
            format!("{base}/administrators?api-version={API_VERSION}"),
            None,
            404,
            "NotFound",
        ),
        (
            reqwest::Method::GET,
            format!(
                "{base}/providers/Microsoft.Authorization/permissions?api-version={API_VERSION}"
            ),
            None,
            400,
            "InvalidApiVersionParameter",
        ),
        (
            reqwest::Method::DELETE,
            format!("{base}/encryptionProtector/current?api-version={API_VERSION}"),
            None,
            405,
            "MethodNotAllowed",
        ),
        (
            reqwest::Method::GET,
            format!("{base}/endpointCertificates/DATABASE_MIRRORING?api-version=2021-11-01"),
            None,
            400,
            "InvalidApiVersionParameter",
        ),
        (
            reqwest::Method::GET,
            format!("{base}/endpointCertificates/DATABASE_MIRRORING"),
            None,
            400,
            "MissingApiVersionParameter",
        ),
        (
            reqwest::Method::GET,
            format!("{base}/serverTrustCertificates/Nope?api-version={API_VERSION}"),
            None,
            404,
            "ResourceNotFound",
        ),
        (
            reqwest::Method::PUT,
            format!("{base}/distributedAvailabilityGroups/DAG_X?api-version={API_VERSION}"),
            Some("{not json"),
            400,
            "InvalidRequestContent",
        ),
        (
            reqwest::Method::PUT,
            format!("{base}/distributedAvailabilityGroups/DAG_X?api-version={API_VERSION}"),
            Some(
                r#"{"properties":{"instanceAvailabilityGroupName":"A","partnerAvailabilityGroupName":"B","databases":[]}}"#,
            ),
            400,
            "InvalidRequestContent",
        ),
        (
            reqwest::Method::PUT,
            format!("{base}/distributedAvailabilityGroups/DAG_X?api-version={API_VERSION}"),
            Some(
                r#"{"properties":{"instanceAvailabilityGroupName":"A","partnerAvailabilityGroupName":"B","partnerEndpoint":"TCP://h:5022","linkMode":"MultiDatabase","databases":[{"databaseName":"ToyStore"}]}}"#,
            ),
            400,
            "InvalidRequestContent",
        ),
        (
            reqwest::Method::POST,
            format!(
                "{base}/distributedAvailabilityGroups/DAG_X/failover?api-version={API_VERSION}"
            ),
            Some(r#"{"failoverType":"Sometimes"}"#),
            400,
            "InvalidRequestContent",
        ),
        (
            reqwest::Method::PATCH,
            format!("{base}/distributedAvailabilityGroups/DAG_X?api-version={API_VERSION}"),
            None,
            400,
            "InvalidRequestContent",
        ),
        (
            // Two properties in one PATCH: this instance updates one per request.
            reqwest::Method::PATCH,
            format!("{base}/distributedAvailabilityGroups/DAG_X?api-version={PREVIEW_API_VERSION}"),
            Some(
                r#"{"properties":{"replicationMode":"Sync","databases":[{"databaseName":"ToyStore"}]}}"#,
            ),
            400,
            "InvalidRequestContent",
        ),
        (
            reqwest::Method::PATCH,
            format!("{base}/distributedAvailabilityGroups/DAG_X?api-version={PREVIEW_API_VERSION}"),
            Some(r#"{"properties":{"databases":[{"name":"ToyStore"}]}}"#),
            400,
            "InvalidRequestContent",
        ),
        (
            reqwest::Method::PUT,
            format!("{base}/serverTrustCertificates/C?api-version={API_VERSION}"),
            Some(r#"{"properties":{"publicBlob":"0xZZ"}}"#),
            400,
            "InvalidRequestContent",
        ),
        (
            reqwest::Method::POST,
            format!("{base}?api-version={API_VERSION}"),
            None,
            405,
            "MethodNotAllowed",
        ),
        (
            reqwest::Method::GET,
            format!(
                "{}/subscriptions/other/resourceGroups/rg/providers/Microsoft.Sql/managedInstances/mi?api-version={API_VERSION}",
                t.server.base_url()
            ),
            None,
            404,
            "SubscriptionNotFound",
        ),
    ];
    for (method, url, body, status, code) in cases {
        let mut b = t.client.request(method.clone(), &url).bearer_auth(TOKEN);
        if let Some(body) = body {
            b = b.header("Content-Type", "application/json").body(body);
        }
        let h = read(b.send().await.unwrap()).await;
        assert_eq!(
            (h.status, h.code()),
            (status, code),
            "{method} {url}: {h:?}"
        );
    }
    let after = t.https.sim.with_world(comparable);
    assert_eq!(
        first_difference(&before, &after),
        None,
        "a refused request reached the world"
    );
    // An unknown DAG: 404, as in process, after the same read.
    let link = LinkName::new("DAG_Unknown").unwrap();
    let h = t
        .get(&format!(
            "{base}/distributedAvailabilityGroups/{link}?api-version={API_VERSION}"
        ))
        .await;
    assert_eq!((h.status, h.code()), (404, "ResourceNotFound"));
    let view = t
        .local
        .sim
        .managed_instance()
        .link_state(&link)
        .await
        .unwrap();
    assert!(!view.exists);
    t.assert_same_worlds("GET of an unknown DAG");
}

struct RefuseEverything;

impl BodyCheck for RefuseEverything {
    fn check(&self, request: &BodyToCheck<'_>) -> Result<(), String> {
        Err(format!(
            "{} refused by the schema check",
            request.operation_id
        ))
    }
}

#[tokio::test]
async fn the_instance_and_its_certificates_read_in_the_rest_shapes_and_bodies_pass_the_check() {
    let lab = Lab::tailspin(4).unwrap();
    let config = ArmServerConfig {
        body_check: Arc::new(RefuseEverything),
        ..ArmServerConfig::default()
    };
    let server = ArmHttpsServer::start(config, lab.sim.clone())
        .await
        .unwrap();
    let client = client_trusting(server.certificate_der());
    let instance = lab.spec.target.instance.clone();
    let base = format!("{}{instance}", server.base_url());
    let get = |url: String| {
        let client = client.clone();
        async move {
            read(
                client
                    .get(url)
                    .bearer_auth("any-opaque-token")
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let mi = get(format!("{base}?api-version={API_VERSION}"))
        .await
        .body
        .unwrap();
    let (fqdn, policy) = lab.sim.with_world(|w| {
        (
            w.instance.fqdn.as_str().to_owned(),
            w.instance.update_policy.to_string(),
        )
    });
    assert_eq!(mi["properties"]["fullyQualifiedDomainName"], fqdn);
    assert_eq!(mi["properties"]["dnsZone"], fqdn.split('.').nth(1).unwrap());
    assert_eq!(mi["properties"]["databaseFormat"], policy);
    assert!(mi["properties"]["storageSizeInGB"].as_u64().unwrap() > 0);
    assert!(mi["sku"]["tier"].is_string());
    assert_eq!(mi["id"], instance.to_string());
    let ep = get(format!(
        "{base}/endpointCertificates/database_mirroring?api-version={API_VERSION}"
    ))
    .await;
    assert!(
        ep.body.unwrap()["properties"]["publicBlob"]
            .as_str()
            .unwrap()
            .starts_with("0x30")
    );
    // The body check refuses: 400 with its message, and nothing begins.
    let put = arm::request(
        &InstanceOp::PutServerTrustCertificate {
            name: CertificateName::new("Cert_A").unwrap(),
            public_blob: vec![0x30, 0x01],
        },
        &instance,
    );
    assert_eq!(put.method, Method::Put);
    let h = read(
        client
            .put(put.url(server.base_url()))
            .bearer_auth("t")
            .json(&put.body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((h.status, h.code()), (400, "InvalidRequestContent"));
    assert!(
        h.body.unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ServerTrustCertificates_CreateOrUpdate refused")
    );
    assert!(lab.sim.with_world(|w| w.instance.operations.is_empty()));
    // Certificates the world holds: GET, LIST; DELETE of one begins its removal.
    lab.sim.with_world_mut(|w| {
        w.instance
            .trust_certificates
            .insert("Cert_B".into(), vec![0x30, 0x02]);
    });
    let one = get(format!(
        "{base}/serverTrustCertificates/Cert_B?api-version={API_VERSION}"
    ))
    .await
    .body
    .unwrap();
    assert_eq!(one["properties"]["publicBlob"], "3002");
    assert_eq!(
        one["type"],
        "Microsoft.Sql/managedInstances/serverTrustCertificates"
    );
    let list = get(format!(
        "{base}/serverTrustCertificates?api-version={API_VERSION}"
    ))
    .await
    .body
    .unwrap();
    assert_eq!(list["value"], json!([one]));
    let del = read(
        client
            .delete(format!(
                "{base}/serverTrustCertificates/Cert_B?api-version={API_VERSION}"
            ))
            .bearer_auth("t")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(del.status, 202);
    assert!(
        del.header("Location")
            .unwrap()
            .starts_with(server.base_url())
    );
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_certificate_is_refused() {
    let lab = Lab::tailspin(6).unwrap();
    let server = ArmHttpsServer::start(ArmServerConfig::default(), lab.sim.clone())
        .await
        .unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let stranger = client_trusting(other.cert.der());
    let url = format!(
        "{}{}?api-version={API_VERSION}",
        server.base_url(),
        lab.spec.target.instance
    );
    let err = stranger
        .get(&url)
        .bearer_auth("t")
        .send()
        .await
        .unwrap_err();
    // The handshake fails on the certificate, before any request is sent.
    assert!(format!("{err:?}").contains("InvalidCertificate"), "{err:?}");
    let trusting = client_trusting(server.certificate_der());
    assert_eq!(
        trusting
            .get(&url)
            .bearer_auth("t")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    server.shutdown().await;
}
