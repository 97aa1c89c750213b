//! The default body check ([`SpecBodyCheck`]): every body milink renders passes it, and bodies
//! ARM would refuse (unknown or read-only properties, values outside an enum, wrong types,
//! missing required properties) are answered 400 `InvalidRequestContent` over HTTPS naming the
//! violations, with nothing changed in the world.

use serde_json::{Value, json};

use super::tests::{TOKEN, Twin, read};
use super::{BodyCheck, BodyToCheck, SpecBodyCheck};
use crate::arm::{self, ArmRequest, Method};
use crate::lifecycle::{InstanceOp, LinkProperties, Side};
use crate::names::LinkMode;
use crate::sim::sql::ddl::fixtures::{comparable, first_difference};

/// The operation id the server hands the body check for `op`'s request.
fn operation_id(op: &InstanceOp) -> Option<&'static str> {
    Some(match op {
        InstanceOp::PutLink { .. } => "DistributedAvailabilityGroups_CreateOrUpdate",
        InstanceOp::SetReplicationMode { .. } | InstanceOp::SetLinkDatabases { .. } => {
            "DistributedAvailabilityGroups_Update"
        }
        InstanceOp::Failover { .. } => "DistributedAvailabilityGroups_Failover",
        InstanceOp::SetRole { .. } => "DistributedAvailabilityGroups_SetRole",
        InstanceOp::PutServerTrustCertificate { .. } => "ServerTrustCertificates_CreateOrUpdate",
        InstanceOp::GetEndpointCertificate
        | InstanceOp::DeleteLink { .. }
        | InstanceOp::DeleteServerTrustCertificate { .. } => return None,
    })
}

#[test]
fn every_body_milink_renders_passes_the_spec_check() {
    let mut checked = 0;
    for op in crate::arm::schema_tests::every_op() {
        let request = arm::request(&op, &crate::arm::schema_tests::instance());
        let Some(id) = operation_id(&op) else {
            assert_eq!(request.body, None, "{op:?}");
            continue;
        };
        let body = request.body.clone().unwrap();
        let check = BodyToCheck {
            operation_id: id,
            api_version: request.api_version,
            body: &body,
        };
        assert_eq!(SpecBodyCheck.check(&check), Ok(()), "{op:?}");
        checked += 1;
    }
    assert_eq!(checked, 1 + 2 * (2 * (4 + 2) + 2 + 2) + 1);
}

fn put_link(t: &Twin) -> InstanceOp {
    let s = &t.local.spec;
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

async fn send(t: &Twin, r: &ArmRequest, body: &Value) -> super::tests::Http {
    let method = reqwest::Method::from_bytes(r.method.as_str().as_bytes()).unwrap();
    read(
        t.client
            .request(method, t.url(r))
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// A change to a body, and the violation the answer must name.
type Case = (&'static str, Box<dyn Fn(&mut Value)>);

#[tokio::test]
async fn bodies_outside_the_spec_are_refused_with_400_and_the_world_does_not_change() {
    let t = Twin::new(5).await;
    let put = arm::request(&put_link(&t), &t.instance());
    assert_eq!(put.method, Method::Put);
    let good = put.body.clone().unwrap();
    let cases: Vec<Case> = vec![
        (
            "$.properties.targetDatabase: unknown property",
            Box::new(|b| b["properties"]["targetDatabase"] = json!("ToyStore")),
        ),
        (
            "$.location: unknown property",
            Box::new(|b| b["location"] = json!("westeurope")),
        ),
        (
            "$.properties.partnerLinkRole: read-only property in a request",
            Box::new(|b| b["properties"]["partnerLinkRole"] = json!("Primary")),
        ),
        (
            "$.id: read-only property in a request",
            Box::new(|b| b["id"] = json!("/subscriptions/x")),
        ),
        (
            "$.properties.databases[0].replicaState: read-only property in a request",
            Box::new(|b| b["properties"]["databases"][0]["replicaState"] = json!("SEEDING")),
        ),
        (
            "$.properties.failoverMode: \"Automatic\" is not one of",
            Box::new(|b| b["properties"]["failoverMode"] = json!("Automatic")),
        ),
        (
            // The spec lists the exact values; the server's own reader would take any case.
            "$.properties.instanceLinkRole: \"secondary\" is not one of",
            Box::new(|b| b["properties"]["instanceLinkRole"] = json!("secondary")),
        ),
        (
            "$.properties.partnerEndpoint: 5022 is not of type string",
            Box::new(|b| b["properties"]["partnerEndpoint"] = json!(5022)),
        ),
        (
            "$.properties.databases: {\"databaseName\":\"ToyStore\"} is not of type array",
            Box::new(|b| b["properties"]["databases"] = json!({"databaseName": "ToyStore"})),
        ),
        (
            // `linkMode` exists only in the preview api-version.
            "$.properties.linkMode: unknown property",
            Box::new(|b| b["properties"]["linkMode"] = json!("SingleDatabase")),
        ),
    ];
    let before = t.https.sim.with_world(comparable);
    for (expected, edit) in &cases {
        let mut body = good.clone();
        edit(&mut body);
        let h = send(&t, &put, &body).await;
        assert_eq!(
            (h.status, h.code()),
            (400, "InvalidRequestContent"),
            "{expected}"
        );
        let message = h.body.as_ref().unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(message.contains(expected), "{expected}: {message}");
    }
    // Two violations at once are both named.
    let mut body = good.clone();
    body["properties"]["seedingMode"] = json!(1);
    body["properties"]["thumbprint"] = json!("AB");
    let h = send(&t, &put, &body).await;
    let message = h.body.unwrap()["error"]["message"].to_string();
    assert!(
        message.contains("$.properties.seedingMode: 1 is not of type string")
            && message.contains("$.properties.thumbprint: unknown property"),
        "{message}"
    );
    // Failover and setRole bodies: a required property missing, a value outside the enum.
    let link = t.local.spec.link.clone();
    let failover = arm::request(
        &InstanceOp::Failover {
            link: link.clone(),
            failover_type: crate::lifecycle::ArmFailoverType::Planned,
        },
        &t.instance(),
    );
    let h = send(&t, &failover, &json!({"failoverType": "Forced"})).await;
    assert_eq!((h.status, h.code()), (400, "InvalidRequestContent"));
    let h = send(&t, &failover, &json!({})).await;
    assert!(
        h.body.unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("required property failoverType is missing")
    );
    let after = t.https.sim.with_world(comparable);
    assert_eq!(
        first_difference(&before, &after),
        None,
        "a refused body reached the world"
    );
    assert!(t.https.sim.with_world(|w| w.instance.operations.is_empty()));
    // The body milink renders is accepted by the same server.
    let h = send(&t, &put, &good).await;
    assert!(matches!(h.status, 200 | 202), "{h:?}");
    assert!(
        t.server
            .requests()
            .get("PUT link")
            .is_some_and(|n| *n == 12)
    );
}
