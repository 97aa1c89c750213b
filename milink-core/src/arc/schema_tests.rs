//! (c) Every body [`super::request`] renders validates against its operation in the official
//! Swagger files (`testdata/`, through the validator in [`crate::arm::spec`]): the availability
//! group operations by method, path and api-version against `sqlServerAvailabilityGroups.json`;
//! the `sqlServerInstances` actions, whose paths are in a file that is not copied, by their body
//! against its definition in `sqlServerInstances.json`. Each refusal is proven with a bad body.

use serde_json::{Value, json};

use super::examples_tests::{body_parameter, example, example_names, instance_of, op_for};
use super::models::MiLinkAssessmentCategory;
use super::*;
use crate::arm::spec::{Violation, validate_definition, validate_operation, validate_request};
use crate::names::{CertificateName, DatabaseName};
use crate::time::Timestamp;

const INSTANCES: &str = "sqlServerInstances.json";

fn instance() -> ArcInstanceId {
    ArcInstanceId::from_parts("sub", "rg", "TAILSPIN-SQL_MSSQL").unwrap()
}

fn mi() -> InstanceId {
    InstanceId::from_parts("sub", "rg", "tailspin-mi").unwrap()
}

/// The definition in `sqlServerInstances.json` of the body of an operation whose path is not in
/// a copied file; `None` for an operation in `sqlServerAvailabilityGroups.json`.
fn instances_definition(op: &ArcOp) -> Option<Option<&'static str>> {
    match op {
        ArcOp::RunMiLinkAssessment(_) => Some(Some(
            "SqlServerInstanceManagedInstanceLinkAssessmentRequest",
        )),
        ArcOp::GetTelemetry(_) => Some(Some("SqlServerInstanceTelemetryRequest")),
        ArcOp::GetInstance | ArcOp::ListDatabases | ArcOp::RunMigrationAssessment => Some(None),
        _ => None,
    }
}

fn strings(result: Result<(), Vec<Violation>>) -> Vec<String> {
    result
        .err()
        .unwrap_or_default()
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Every [`ArcOp`], every value of the enums its body carries.
fn every_op() -> Vec<ArcOp> {
    let link = LinkName::new("DAG_ToyStore").unwrap();
    let mut ops = vec![
        ArcOp::GetInstance,
        ArcOp::ListAvailabilityGroups,
        ArcOp::GetAvailabilityGroup {
            name: AgName::new("AG_ToyStore").unwrap(),
        },
        ArcOp::RunMigrationAssessment,
        ArcOp::DeleteMiLink { link: link.clone() },
    ];
    for failover in [ArcFailover::Planned, ArcFailover::ForcedAllowDataLoss] {
        ops.push(ArcOp::FailoverMiLink {
            link: link.clone(),
            managed_instance: mi(),
            failover,
        });
    }
    let all_categories = [
        "SqlInstance",
        "SqlInstanceDatabase",
        "ManagedInstance",
        "ManagedInstanceDatabase",
        "ManagedInstanceCrossValidation",
        "Certificates",
        "BoxToMiNetworkConnectivity",
        "MiToBoxNetworkConnectivity",
        "SqlInstanceAg",
        "DagCrossValidation",
    ]
    .map(MiLinkAssessmentCategory::parse);
    assert!(
        all_categories
            .iter()
            .all(|c| !matches!(c, MiLinkAssessmentCategory::Other(_)))
    );
    for (role, categories, ip) in [
        (None, vec![], None),
        (
            Some(ArcMiRole::Secondary),
            all_categories.to_vec(),
            Some("10.0.1.4".parse().unwrap()),
        ),
        (
            Some(ArcMiRole::Primary),
            vec![MiLinkAssessmentCategory::Certificates],
            Some("fd00::4".parse().unwrap()),
        ),
    ] {
        ops.push(ArcOp::RunMiLinkAssessment(Box::new(
            MiLinkAssessmentRequest {
                managed_instance: mi(),
                managed_instance_role: role,
                databases: vec![DatabaseName::new("ToyStore").unwrap()],
                availability_group: AgName::new("AG_ToyStore").unwrap(),
                link: link.clone(),
                categories,
                sql_server_ip: ip,
            },
        )));
    }
    for aggregation in [
        None,
        Some(TelemetryAggregation::Average),
        Some(TelemetryAggregation::Minimum),
        Some(TelemetryAggregation::Maximum),
        Some(TelemetryAggregation::Sum),
        Some(TelemetryAggregation::Count),
    ] {
        ops.push(ArcOp::GetTelemetry(Box::new(TelemetryRequest {
            end: Some(Timestamp::from_millis(1_696_035_600_123)),
            aggregation,
            ..TelemetryRequest::replica_lag(
                DatabaseName::new("ToyStore").unwrap(),
                Timestamp::from_millis(1_696_032_000_000),
                std::time::Duration::from_secs(300),
            )
        })));
    }
    ops.push(ArcOp::GetTelemetry(Box::new(TelemetryRequest::new(
        TelemetryDataset::StorageIo,
    ))));
    let modes = [
        ArcAvailabilityMode::SynchronousCommit,
        ArcAvailabilityMode::AsynchronousCommit,
    ];
    let failovers = [
        ArcFailoverMode::Automatic,
        ArcFailoverMode::Manual,
        ArcFailoverMode::External,
        ArcFailoverMode::None,
    ];
    let seedings = [ArcSeedingMode::Automatic, ArcSeedingMode::Manual];
    let connections = [
        ArcSecondaryConnections::No,
        ArcSecondaryConnections::All,
        ArcSecondaryConnections::ReadOnly,
    ];
    for (i, failover) in failovers.into_iter().enumerate() {
        let mode = modes[i % 2];
        let seeding = seedings[i % 2];
        ops.push(ArcOp::CreateMiLink(Box::new(MiLinkCreate {
            availability_group: AgCreate {
                name: AgName::new("AG_ToyStore").unwrap(),
                replicas: vec![AgReplica {
                    server_instance: Some(crate::names::ServerName::new("TAILSPIN-SQL").unwrap()),
                    endpoint_name: Some(
                        crate::names::EndpointName::new("database_mirroring_endpoint").unwrap(),
                    ),
                    endpoint_url: Some("TCP://tailspin-sql.corp.example:5022".into()),
                    certificate_name: Some(CertificateName::new("Cert_TailspinSql").unwrap()),
                    availability_mode: Some(mode),
                    failover_mode: Some(failover),
                    seeding_mode: Some(seeding),
                    secondary_role_allow_connections: Some(connections[i % 3]),
                }],
                databases: vec![
                    DatabaseName::new("ToyStore").unwrap(),
                    DatabaseName::new("ToyStore_Archive").unwrap(),
                ],
                cluster_type: Some([ArcClusterType::None, ArcClusterType::Wsfc][i % 2]),
            },
            distributed_availability_group: DagCreate {
                name: link.clone(),
                primary: DagMember {
                    availability_group: DagMemberRef::ArcAvailabilityGroup(
                        AgName::new("AG_ToyStore").unwrap(),
                    ),
                    listener_url: Some("TCP://tailspin-sql.corp.example:5022".into()),
                    availability_mode: Some(mode),
                    failover_mode: Some(failover),
                    seeding_mode: Some(seeding),
                    certificate_name: Some(CertificateName::new("Cert_TailspinSql").unwrap()),
                },
                secondary: DagMember {
                    availability_group: DagMemberRef::ManagedInstance(mi()),
                    listener_url: None,
                    availability_mode: Some(mode),
                    failover_mode: Some(ArcFailoverMode::None),
                    seeding_mode: Some(seeding),
                    certificate_name: None,
                },
            },
            instance_availability_group: (i % 2 == 0)
                .then(|| AgName::new("AG_ToyStore_MI").unwrap()),
        })));
    }
    ops
}

/// Checks `op`'s request with the validator: the whole request when its path is in a copied
/// spec, else its body against its definition.
fn check(op: &ArcOp, instance: &ArcInstanceId) -> Vec<String> {
    let request = request(op, instance);
    match instances_definition(op) {
        None => strings(validate_request(&request)),
        Some(Some(definition)) => {
            let body = request.body.expect("a body");
            strings(validate_definition(
                API_VERSION,
                INSTANCES,
                definition,
                &body,
            ))
        }
        Some(None) => {
            assert_eq!(request.body, None, "{op:?} sends no body");
            Vec::new()
        }
    }
}

#[test]
fn every_rendered_request_validates_against_its_spec() {
    let ops = every_op();
    assert_eq!(ops.len(), 5 + 2 + 3 + 7 + 4);
    for op in &ops {
        let errors = check(op, &instance());
        assert!(errors.is_empty(), "{op:?}: {errors:?}");
    }
    // The same requests by operation id, for the availability group operations.
    for op in ops.iter().filter(|op| instances_definition(op).is_none()) {
        let r = request(op, &instance());
        assert_eq!(
            validate_operation(op.operation_id(), API_VERSION, r.body.as_ref()),
            Ok(()),
            "{op:?}"
        );
    }
}

#[test]
fn the_instance_operations_paths_are_not_in_a_copied_spec() {
    // UNVERIFIED by a spec file: `azurearcdata.json`, which holds them, is not copied.
    for op in every_op()
        .iter()
        .filter(|op| instances_definition(op).is_some())
    {
        let errors = strings(validate_request(&request(op, &instance())));
        assert_eq!(errors.len(), 1, "{op:?}: {errors:?}");
        assert!(
            errors[0].starts_with("no operation at /subscriptions/"),
            "{errors:?}"
        );
    }
}

/// The official examples' request bodies validate too (the validator agrees with the specs'
/// own examples), and so does every body rendered from them.
#[test]
fn example_request_bodies_validate() {
    for name in example_names() {
        let example = example(name);
        let op = op_for(name);
        let rendered = request(&op, &instance_of(&example));
        let official = body_parameter(&example);
        match instances_definition(&op) {
            None => {
                assert_eq!(
                    strings(validate_request(&rendered)),
                    Vec::<String>::new(),
                    "{name}"
                );
                let official = ArmRequest {
                    body: official,
                    ..rendered
                };
                assert_eq!(
                    strings(validate_request(&official)),
                    Vec::<String>::new(),
                    "{name}"
                );
            }
            Some(Some(definition)) => {
                for body in [rendered.body.unwrap(), official.unwrap()] {
                    assert_eq!(
                        strings(validate_definition(
                            API_VERSION,
                            INSTANCES,
                            definition,
                            &body
                        )),
                        Vec::<String>::new(),
                        "{name}"
                    );
                }
            }
            Some(None) => assert_eq!((rendered.body, official), (None, None), "{name}"),
        }
    }
}

fn edited(op: &ArcOp, edit: impl FnOnce(&mut Value)) -> Vec<String> {
    let mut r = request(op, &instance());
    let body = r.body.as_mut().expect("a body");
    edit(body);
    match instances_definition(op) {
        None => strings(validate_request(&r)),
        Some(definition) => strings(validate_definition(
            API_VERSION,
            INSTANCES,
            definition.expect("a definition"),
            r.body.as_ref().expect("a body"),
        )),
    }
}

#[test]
fn bad_bodies_are_refused() {
    let ops = every_op();
    let find = |id: &str| ops.iter().find(|o| o.operation_id() == id).unwrap().clone();
    let failover = find("SqlServerAvailabilityGroups_failoverMiLink");
    let create = find("SqlServerAvailabilityGroups_CreateManagedInstanceLink");
    let assess = ops
        .iter()
        .find(|o| matches!(o, ArcOp::RunMiLinkAssessment(r) if !r.categories.is_empty()))
        .unwrap()
        .clone();
    let telemetry = find("SqlServerInstances_GetTelemetry");

    assert_eq!(
        edited(&failover, |b| b["force"] = json!("true")),
        vec!["$.force: \"true\" is not of type boolean"]
    );
    assert_eq!(
        edited(&failover, |b| b["failoverType"] = json!("Planned")),
        vec!["$.failoverType: unknown property"]
    );
    // Microsoft.Sql's spelling is not Arc's.
    let errors = edited(&create, |b| {
        b["availabilityGroup"]["replicas"][0]["failoverMode"] = json!("Manual")
    });
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            .starts_with("$.availabilityGroup.replicas[0].failoverMode: \"Manual\" is not one of"),
        "{errors:?}"
    );
    assert_eq!(
        edited(
            &create,
            |b| b["distributedAvailabilityGroup"]["secondaryAvailabilityGroup"]["certificateConfiguration"] =
                json!({"name": "c"})
        ),
        vec![
            "$.distributedAvailabilityGroup.secondaryAvailabilityGroup.certificateConfiguration.name: unknown property"
        ]
    );
    assert_eq!(
        edited(&create, |b| b["availabilityGroup"]["databases"] =
            json!("ToyStore")),
        vec!["$.availabilityGroup.databases: \"ToyStore\" is not of type array"]
    );
    assert_eq!(
        edited(&create, |b| b["miLinkConfiguration"] =
            json!({"linkName": "x"})),
        vec!["$.miLinkConfiguration.linkName: unknown property"]
    );
    // The definitions of sqlServerInstances.json: required fields, enums, local `$ref`s.
    assert_eq!(
        edited(&assess, |b| {
            b.as_object_mut().unwrap().remove("databaseNames");
        }),
        vec!["$: required property databaseNames is missing"]
    );
    let errors = edited(&assess, |b| b["assessmentCategories"][0] = json!("Network"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("$.assessmentCategories[0]: \"Network\" is not one of"),
        "{errors:?}"
    );
    let errors = edited(&assess, |b| b["azureManagedInstanceRole"] = json!("Both"));
    assert!(errors[0].starts_with("$.azureManagedInstanceRole: \"Both\" is not one of"));
    assert_eq!(
        edited(&telemetry, |b| {
            b.as_object_mut().unwrap().remove("datasetName");
        }),
        vec!["$: required property datasetName is missing"]
    );
    let errors = edited(&telemetry, |b| b["aggregationType"] = json!("Median"));
    assert!(errors[0].starts_with("$.aggregationType: \"Median\" is not one of"));
    assert_eq!(
        edited(&telemetry, |b| b["databaseNames"] = json!([1])),
        vec!["$.databaseNames[0]: 1 is not of type string"]
    );
    // A body where the operation takes none, none where it needs one, a wrong api-version.
    let mut delete = request(
        &find("SqlServerAvailabilityGroups_deleteMiLink"),
        &instance(),
    );
    delete.body = Some(json!({}));
    assert_eq!(
        strings(validate_request(&delete)),
        vec!["post takes no body"]
    );
    let mut create_request = request(&create, &instance());
    create_request.body = None;
    assert_eq!(
        strings(validate_request(&create_request)),
        vec!["post needs a body"]
    );
    let mut old = request(&failover, &instance());
    old.api_version = "2024-01-01";
    assert!(strings(validate_request(&old))[0].starts_with("api-version 2024-01-01 has no spec"));
    assert!(
        strings(validate_definition(
            API_VERSION,
            "azurearcdata.json",
            "X",
            &json!({})
        ))[0]
            .starts_with("no spec file azurearcdata.json")
    );
}
