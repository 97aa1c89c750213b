//! Reads (instance, databases, certificates, links) and the final `GET` after a `PUT`'s
//! operation, against the scripted server.

use super::*;

fn page(value: serde_json::Value, next: Option<&str>) -> Reply {
    let mut body = json!({ "value": value });
    if let Some(next) = next {
        body["nextLink"] = json!(next);
    }
    Reply::json(200, body)
}

#[tokio::test]
async fn the_instance_and_its_databases_are_read_typed_across_pages() {
    let f = fixture(vec![Reply::json(
        200,
        json!({"id": MI_PATH, "name": "tailspin-mi", "location": "westeurope",
                "sku": {"name": "GP_Gen5", "tier": "GeneralPurpose", "capacity": 8},
                "properties": {"fullyQualifiedDomainName": "tailspin-mi.abc.database.windows.net",
                    "provisioningState": "Succeeded", "databaseFormat": "SQLServer2022"}}),
    )])
    .await;
    let mi = f.mi.managed_instance().await.unwrap();
    assert_eq!(mi.name.as_deref(), Some("tailspin-mi"));
    assert_eq!(mi.sku.and_then(|s| s.capacity), Some(8));
    assert_eq!(
        mi.properties.fully_qualified_domain_name.as_deref(),
        Some("tailspin-mi.abc.database.windows.net")
    );
    // Databases: two pages; the second's link names another host, followed on the endpoint.
    let f = fixture(vec![
        page(
            json!([{"name": "ToyStore", "properties": {"status": "Online"}}]),
            Some("https://elsewhere.example.net/page2?api-version=2025-01-01&$skiptoken=a%3D"),
        ),
        page(
            json!([{"name": "Orders", "properties": {"status": "Restoring"}}]),
            None,
        ),
    ])
    .await;
    let dbs = f.mi.databases().await.unwrap();
    let names: Vec<_> = dbs.iter().filter_map(|d| d.name.as_deref()).collect();
    assert_eq!(names, ["ToyStore", "Orders"]);
    assert_eq!(dbs[1].properties.status.as_deref(), Some("Restoring"));
    let seen = f.server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].path, format!("{MI_PATH}/databases"));
    assert_eq!(seen[0].query, "api-version=2025-01-01");
    assert_eq!(seen[1].path, "/page2");
    assert_eq!(seen[1].query, "api-version=2025-01-01&$skiptoken=a%3D");
    // The token went to the management endpoint both times.
    assert!(seen.iter().all(|s| s.authorization.is_some()));
}

#[tokio::test]
async fn certificates_are_found_by_their_key_whatever_their_name() {
    let der = [0x30, 0x82, 0x01, 0x0A];
    // nextLink names ARM's host; it is followed on the management endpoint.
    let f2 = fixture(vec![
        page(
            json!([{"name": "Cert_Old", "properties": {"publicBlob": "0x30820B"}}]),
            Some("https://management.azure.com/next?api-version=2025-01-01"),
        ),
        page(
            json!([{"name": "Renamed", "properties": {"publicBlob": "0x3082010a",
                "certificateName": "Renamed", "thumbprint": "AB"}}]),
            None,
        ),
    ])
    .await;
    let found = f2
        .mi
        .find_server_trust_certificate(&der, Some("Cert_Old"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.certificate_name(), Some("Renamed"));
    assert!(found.holds(&der));
    f2.server.then(vec![page(
        json!([{"name": "Cert_Old", "properties": {"publicBlob": "0x30820B"}}]),
        None,
    )]);
    // Not held under any name: by name only when a name is given.
    assert!(
        f2.mi
            .find_server_trust_certificate(&der, None)
            .await
            .unwrap()
            .is_none()
    );
    f2.server.then(vec![page(
        json!([{"name": "Cert_Old", "properties": {"publicBlob": "0x30820B"}}]),
        None,
    )]);
    let taken = f2
        .mi
        .find_server_trust_certificate(&der, Some("Cert_Old"))
        .await
        .unwrap()
        .unwrap();
    assert!(!taken.holds(&der));
    let seen = f2.server.seen();
    assert_eq!(seen[0].path, format!("{MI_PATH}/serverTrustCertificates"));
    assert_eq!(seen[1].path, "/next");
}

#[tokio::test]
async fn links_are_listed_and_read_and_a_missing_one_is_none() {
    let dag = json!({"name": "DAG_ToyStore", "properties": {"instanceLinkRole": "Secondary",
        "replicationMode": "Async", "partnerAvailabilityGroupName": "AG_ToyStore",
        "databases": [{"databaseName": "ToyStore", "synchronizationHealth": "HEALTHY"}]}});
    let f = fixture(vec![
        page(json!([dag.clone()]), None),
        Reply::json(200, dag),
        Reply::json(
            404,
            json!({"error": {"code": "ResourceNotFound", "message": "none"}}),
        ),
        Reply::json(
            403,
            json!({"error": {"code": "AuthorizationFailed", "message": "no"}}),
        ),
    ])
    .await;
    let links = f.mi.links().await.unwrap();
    assert_eq!(links.len(), 1);
    let one = f.mi.link(&link()).await.unwrap().unwrap();
    assert_eq!(one, links[0]);
    assert_eq!(
        one.properties.instance_link_role,
        Some(crate::arm::models::LinkRole::Secondary)
    );
    assert_eq!(f.mi.link(&link()).await.unwrap(), None);
    let refused = f.mi.link(&link()).await.unwrap_err();
    assert_eq!(refused.code(), "arm:403:AuthorizationFailed");
    assert!(
        refused.message.contains("Microsoft.Sql/managedInstances/"),
        "{refused}"
    );
    let seen = f.server.seen();
    assert_eq!(
        seen[0].path,
        format!("{MI_PATH}/distributedAvailabilityGroups")
    );
    assert_eq!(
        seen[1].path,
        format!("{MI_PATH}/distributedAvailabilityGroups/DAG_ToyStore")
    );
}

#[tokio::test]
async fn malformed_pages_and_endless_next_links_are_typed_errors() {
    let f = fixture(vec![Reply::json(
        200,
        json!({"value": [{"properties": {"databases": 3}}]}),
    )])
    .await;
    assert_eq!(f.mi.links().await.unwrap_err().code(), MALFORMED);
    // A nextLink that comes back to itself.
    let f = fixture(vec![
        page(json!([]), Some("https://management.azure.com/again")),
        page(json!([]), Some("https://management.azure.com/again")),
    ])
    .await;
    let e = f.mi.databases().await.unwrap_err();
    assert_eq!(e.code(), MALFORMED);
    assert!(e.message.contains("nextLink"), "{e}");
    assert_eq!(f.server.seen().len(), 2);
}

#[tokio::test]
async fn a_put_answered_201_is_followed_by_a_final_get() {
    let f = fixture(vec![
        Reply::new(201),
        Reply::json(
            200,
            json!({"properties": {"provisioningState": "Succeeded"}}),
        ),
    ])
    .await;
    let op = InstanceOp::PutServerTrustCertificate {
        name: CertificateName::new("Cert_TailspinSql_endpoint").unwrap(),
        public_blob: vec![0x30, 0x82],
    };
    assert_eq!(f.mi.begin(&op).await.unwrap(), ArmReply::Completed);
    let seen = f.server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        (seen[0].method.as_str(), seen[1].method.as_str()),
        ("PUT", "GET")
    );
    assert_eq!(seen[0].path, seen[1].path);
    assert!(seen[0].body.contains("\"publicBlob\":\"0x3082\""));
}

async fn accepted_then(final_get: Reply) -> (Fixture, OperationRef) {
    let f = fixture(vec![
        Reply::new(202).header("Location", "{base}/results/9?api-version=2025-01-01"),
        Reply::new(200),
        final_get,
    ])
    .await;
    let ArmReply::Accepted(op) = f.mi.begin(&put_link()).await.unwrap() else {
        panic!("not accepted")
    };
    (f, op)
}

#[tokio::test]
async fn a_finished_put_is_done_only_when_its_resource_says_so() {
    let (f, op) = accepted_then(Reply::json(
        200,
        json!({"properties": {"provisioningState": "Succeeded"}}),
    ))
    .await;
    assert_eq!(op.kind, OperationKind::Location);
    assert_eq!(
        op.resource.as_deref(),
        Some(
            format!("{MI_PATH}/distributedAvailabilityGroups/DAG_ToyStore?api-version=2025-01-01")
                .as_str()
        )
    );
    assert_eq!(f.mi.poll(&op).await.unwrap(), PollReply::Succeeded);
    let seen = f.server.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(
        (seen[2].method.as_str(), seen[2].path.as_str()),
        ("GET", seen[0].path.as_str())
    );

    // No provisioningState (DAGs have none in the spec): done.
    let (f, op) = accepted_then(Reply::json(200, json!({"properties": {}}))).await;
    assert_eq!(f.mi.poll(&op).await.unwrap(), PollReply::Succeeded);

    let (f, op) = accepted_then(Reply::json(
        200,
        json!({"properties": {"provisioningState": "Failed"}}),
    ))
    .await;
    let failed = f.mi.poll(&op).await.unwrap_err();
    assert_eq!(failed.code(), PROVISIONING_FAILED);
    assert!(!failed.transient);

    let (f, op) = accepted_then(Reply::json(
        200,
        json!({"properties": {"provisioningState": "Updating"}}),
    ))
    .await;
    // Still settling after its operation succeeded: running, not an error; polled again.
    assert!(matches!(
        f.mi.poll(&op).await.unwrap(),
        PollReply::Running { .. }
    ));

    let (f, op) = accepted_then(Reply::json(
        404,
        json!({"error": {"code": "ResourceNotFound", "message": "gone"}}),
    ))
    .await;
    assert_eq!(
        f.mi.poll(&op).await.unwrap_err().code(),
        "arm:404:ResourceNotFound"
    );
}

#[tokio::test]
async fn operations_without_a_resource_are_not_followed_by_a_get() {
    // A DELETE (and an operation kept before resources were recorded) ends with its poll.
    let f = fixture(vec![
        Reply::new(202).header("Location", "{base}/results/3?api-version=2025-01-01"),
        Reply::new(204),
    ])
    .await;
    let ArmReply::Accepted(op) =
        f.mi.begin(&InstanceOp::DeleteLink { link: link() })
            .await
            .unwrap()
    else {
        panic!("not accepted")
    };
    assert_eq!(op.resource, None);
    assert_eq!(f.mi.poll(&op).await.unwrap(), PollReply::Succeeded);
    assert_eq!(f.server.seen().len(), 2);
}

#[test]
fn an_operation_kept_before_resources_existed_still_loads() {
    let old = r#"{"url":"https://management.azure.com/ops/1","kind":"Location"}"#;
    let op: OperationRef = serde_json::from_str(old).unwrap();
    assert_eq!(
        op,
        OperationRef::new(
            "https://management.azure.com/ops/1",
            OperationKind::Location
        )
    );
    // Without a resource it is written as before; with one, it round-trips.
    assert_eq!(serde_json::to_string(&op).unwrap(), old);
    let with = OperationRef {
        resource: Some("/subscriptions/s/x?api-version=2025-01-01".into()),
        ..op
    };
    let text = serde_json::to_string(&with).unwrap();
    assert_eq!(serde_json::from_str::<OperationRef>(&text).unwrap(), with);
}
