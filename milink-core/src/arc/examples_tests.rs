//! Every official example of the copied Arc specs (`testdata/`): its request is what
//! [`super::request`] renders for the matching [`ArcOp`] built from the example's values, and
//! each of its responses reads through [`super::models::answer`], the fields milink uses keeping
//! their values.

use std::time::Duration;

use serde_json::Value;

use super::models::*;
use super::*;
use crate::names::{CertificateName, DatabaseName};
use crate::time::Timestamp;

const FOLDER: &str = "stable/2026-01-01";

macro_rules! examples {
    ($($name:literal),+ $(,)?) => {
        /// (example name, text) of every example file.
        const EXAMPLES: &[(&str, &str)] = &[
            $(($name, include_str!(concat!("testdata/stable/2026-01-01/examples/", $name, ".json"))),)+
        ];
    };
}

examples!(
    "CreateOrUpdateManagedInstanceLink",
    "DeleteMiLink",
    "GetSqlServerInstance",
    "GetSqlServerInstanceTelemetry",
    "RunManagedInstanceLinkAssessment",
    "RunMigrationAssessmentSqlServerInstance",
    "failoverMiLink",
);

pub(super) fn example(name: &str) -> Value {
    let (_, text) = EXAMPLES
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no example {name}"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub(super) fn example_names() -> impl Iterator<Item = &'static str> {
    EXAMPLES.iter().map(|(n, _)| *n)
}

fn mi(example: &str) -> InstanceId {
    InstanceId::parse(&format!(
        "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/testrg/providers/Microsoft.Sql/managedInstances/{example}"
    ))
    .unwrap()
}

/// The operation each example shows, built from its values.
pub(super) fn op_for(name: &str) -> ArcOp {
    let ag = |n: &str| AgName::new(n).unwrap();
    match name {
        "CreateOrUpdateManagedInstanceLink" => ArcOp::CreateMiLink(Box::new(MiLinkCreate {
            availability_group: AgCreate {
                name: ag("myNewAg"),
                replicas: vec![AgReplica {
                    endpoint_url: Some("TCP://testSqlServer_INST1.testSqlserverDomain:5022".into()),
                    availability_mode: Some(ArcAvailabilityMode::SynchronousCommit),
                    failover_mode: Some(ArcFailoverMode::Automatic),
                    seeding_mode: Some(ArcSeedingMode::Automatic),
                    secondary_role_allow_connections: Some(ArcSecondaryConnections::All),
                    ..AgReplica::default()
                }],
                databases: vec![DatabaseName::new("database1").unwrap()],
                cluster_type: None,
            },
            distributed_availability_group: DagCreate {
                name: LinkName::new("myNewDag").unwrap(),
                primary: DagMember {
                    availability_group: DagMemberRef::ArcAvailabilityGroup(ag("testAG1")),
                    listener_url: Some("TCP://testAG1.contoso.com:5022".into()),
                    availability_mode: Some(ArcAvailabilityMode::AsynchronousCommit),
                    failover_mode: Some(ArcFailoverMode::Manual),
                    seeding_mode: Some(ArcSeedingMode::Automatic),
                    certificate_name: Some(CertificateName::new("myCert").unwrap()),
                },
                secondary: DagMember {
                    availability_group: DagMemberRef::ManagedInstance(mi("testcl")),
                    listener_url: None,
                    availability_mode: Some(ArcAvailabilityMode::AsynchronousCommit),
                    failover_mode: Some(ArcFailoverMode::None),
                    seeding_mode: Some(ArcSeedingMode::Automatic),
                    certificate_name: None,
                },
            },
            instance_availability_group: Some(ag("testAG2")),
        })),
        "DeleteMiLink" => ArcOp::DeleteMiLink {
            link: LinkName::new("testDAG").unwrap(),
        },
        "failoverMiLink" => ArcOp::FailoverMiLink {
            link: LinkName::new("testDAG").unwrap(),
            managed_instance: mi("testcl"),
            failover: ArcFailover::Planned,
        },
        "GetSqlServerInstance" => ArcOp::GetInstance,
        "GetSqlServerInstanceTelemetry" => ArcOp::GetTelemetry(Box::new(TelemetryRequest {
            start: Some(Timestamp::from_millis(1_696_032_000_000)), // 2023-09-30T00:00:00Z
            ..TelemetryRequest::new(TelemetryDataset::StorageIo)
        })),
        "RunManagedInstanceLinkAssessment" => {
            ArcOp::RunMiLinkAssessment(Box::new(MiLinkAssessmentRequest {
                managed_instance: mi("testmi"),
                managed_instance_role: Some(ArcMiRole::Secondary),
                databases: ["testdb", "testdb2", "testdb3"]
                    .into_iter()
                    .map(|d| DatabaseName::new(d).unwrap())
                    .collect(),
                availability_group: ag("AG_testdb"),
                link: LinkName::new("MiLinkDag").unwrap(),
                categories: vec![
                    MiLinkAssessmentCategory::SqlInstance,
                    MiLinkAssessmentCategory::ManagedInstance,
                    MiLinkAssessmentCategory::ManagedInstanceCrossValidation,
                    MiLinkAssessmentCategory::DagCrossValidation,
                ],
                sql_server_ip: Some("192.168.1.2".parse().unwrap()),
            }))
        }
        "RunMigrationAssessmentSqlServerInstance" => ArcOp::RunMigrationAssessment,
        other => panic!("no operation for example {other}"),
    }
}

/// The method and path template of each example's operation: the AG spec's path, or (the
/// `sqlServerInstances` operations, whose paths are not in a copied file) the reference notes'.
fn template(name: &str) -> (Method, String) {
    const BASE: &str = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.AzureArcData/sqlServerInstances/{sqlServerInstanceName}";
    let tail = match name {
        "CreateOrUpdateManagedInstanceLink" => "/createManagedInstanceLink",
        "DeleteMiLink" => "/availabilityGroups/{availabilityGroupName}/deleteMiLink",
        "failoverMiLink" => "/availabilityGroups/{availabilityGroupName}/failoverMiLink",
        "GetSqlServerInstance" => "",
        "GetSqlServerInstanceTelemetry" => "/getTelemetry",
        "RunManagedInstanceLinkAssessment" => "/runManagedInstanceLinkAssessment",
        "RunMigrationAssessmentSqlServerInstance" => "/runMigrationAssessment",
        other => panic!("no template for {other}"),
    };
    let method = if name == "GetSqlServerInstance" {
        Method::Get
    } else {
        Method::Post
    };
    (method, format!("{BASE}{tail}"))
}

const PATH_PARAMETERS: &[&str] = &[
    "subscriptionId",
    "resourceGroupName",
    "sqlServerInstanceName",
    "availabilityGroupName",
];

/// The example's instance.
pub(super) fn instance_of(example: &Value) -> ArcInstanceId {
    let p = &example["parameters"];
    ArcInstanceId::from_parts(
        p["subscriptionId"].as_str().unwrap(),
        p["resourceGroupName"].as_str().unwrap(),
        p["sqlServerInstanceName"].as_str().unwrap(),
    )
    .unwrap()
}

/// The example's body parameter: the one parameter that is neither in the path nor the
/// api-version.
pub(super) fn body_parameter(example: &Value) -> Option<Value> {
    let params = example["parameters"].as_object().unwrap();
    let mut bodies = params
        .iter()
        .filter(|(k, _)| *k != "api-version" && !PATH_PARAMETERS.contains(&k.as_str()));
    let body = bodies.next().map(|(_, v)| v.clone());
    assert!(bodies.next().is_none(), "two body parameters");
    body
}

#[test]
fn every_example_file_in_testdata_is_embedded() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/arc/testdata")
        .join(FOLDER)
        .join("examples");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.trim_end_matches(".json").to_owned()
        })
        .collect();
    on_disk.sort();
    let mut embedded: Vec<String> = example_names().map(str::to_owned).collect();
    embedded.sort();
    assert_eq!(on_disk, embedded);
    assert_eq!(embedded.len(), 7);
}

/// (a) The request of every example is what `request` renders: method, path, api-version and
/// body. The failover's body also says `"force": false`, which the example leaves out.
#[test]
fn every_example_request_is_what_request_renders() {
    for name in example_names() {
        let example = example(name);
        let p = &example["parameters"];
        assert_eq!(p["api-version"], API_VERSION, "{name}");
        let op = op_for(name);
        let rendered = request(&op, &instance_of(&example));
        let (method, template) = template(name);
        let mut path = template;
        for param in PATH_PARAMETERS {
            if let Some(value) = p[*param].as_str() {
                path = path.replace(&format!("{{{param}}}"), &segment(value));
            }
        }
        assert!(!path.contains('{'), "{name}: {path}");
        assert_eq!(rendered.method, method, "{name}");
        assert_eq!(rendered.path, path, "{name}");
        assert_eq!(rendered.api_version, API_VERSION, "{name}");
        let mut body = rendered.body.clone();
        if name == "failoverMiLink" {
            let force = body
                .as_mut()
                .and_then(Value::as_object_mut)
                .and_then(|b| b.remove("force"));
            assert_eq!(
                force,
                Some(Value::Bool(false)),
                "a planned failover says so"
            );
        }
        assert_eq!(body, body_parameter(&example), "{name}");
    }
}

/// (b) Every response of every example reads through `answer`: `202` as accepted (with its
/// headers), `200` as the operation's model.
#[test]
fn every_example_response_reads_as_its_answer() {
    let (mut bodies, mut accepted) = (0, 0);
    for name in example_names() {
        let example = example(name);
        let op = op_for(name);
        for (code, response) in example["responses"].as_object().unwrap() {
            let status: u16 = code.parse().unwrap();
            let body = response
                .get("body")
                .map(|b| serde_json::to_vec(b).unwrap())
                .unwrap_or_default();
            let read = answer(&op, status, &body).unwrap_or_else(|e| panic!("{name} {code}: {e}"));
            match (status, &read) {
                (202, ArcAnswer::Accepted) => {
                    accepted += 1;
                    let headers = response["headers"].as_object().unwrap();
                    let a = ArcAccepted::from_headers(
                        headers
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_str().unwrap())),
                    );
                    assert_eq!(
                        a.poll_url(),
                        headers["Azure-AsyncOperation"].as_str(),
                        "{name}"
                    );
                    assert_eq!(a.location.as_deref(), headers["Location"].as_str());
                    let retry = headers.get("Retry-After").map(|_| Duration::from_secs(10));
                    assert_eq!(a.retry_after, retry, "{name}");
                }
                (200, _) => {
                    bodies += 1;
                    let expected = match name {
                        "GetSqlServerInstance" => matches!(read, ArcAnswer::Instance(_)),
                        "CreateOrUpdateManagedInstanceLink" | "failoverMiLink" => {
                            matches!(read, ArcAnswer::AvailabilityGroup(_))
                        }
                        "GetSqlServerInstanceTelemetry" => matches!(read, ArcAnswer::Telemetry(_)),
                        "RunManagedInstanceLinkAssessment" => {
                            matches!(read, ArcAnswer::MiLinkAssessment(_))
                        }
                        "RunMigrationAssessmentSqlServerInstance" => {
                            matches!(read, ArcAnswer::MigrationAssessmentJob(_))
                        }
                        _ => false,
                    };
                    assert!(expected, "{name} 200 read as {read:?}");
                }
                _ => panic!("{name} {code}: {read:?}"),
            }
        }
    }
    assert_eq!((bodies, accepted), (6, 5));
}

fn body<T: ArcModel>(name: &str, code: &str) -> T {
    let body = &example(name)["responses"][code]["body"];
    assert!(!body.is_null(), "{name} {code} has no body");
    parse(&serde_json::to_vec(body).unwrap()).unwrap_or_else(|e| panic!("{name} {code}: {e}"))
}

#[test]
fn the_instance_keeps_the_assessment_facts() {
    let i: SqlServerInstance = body("GetSqlServerInstance", "200");
    assert_eq!(i.name.as_deref(), Some("testsqlServerInstance"));
    assert_eq!(i.location.as_deref(), Some("northeurope"));
    // The id is ARM's, in its case (`SqlServerInstances`): it parses.
    let id = ArcInstanceId::parse(i.id.as_deref().unwrap()).unwrap();
    assert_eq!(id.name(), "testsqlServerInstance");
    let p = &i.properties;
    assert_eq!(p.version, Some(ArcSqlVersion::SqlServer2012));
    assert_eq!(p.edition, Some(ArcSqlEdition::Developer));
    assert_eq!(p.patch_level.as_deref(), Some("patchlevel"));
    assert_eq!(p.current_version.as_deref(), Some("2012"));
    assert_eq!(p.build(), None, "the example's versions are placeholders");
    assert_eq!(p.collation.as_deref(), Some("collation"));
    assert_eq!(p.is_hadr_enabled, Some(true));
    assert_eq!(p.db_master_key_exists, Some(true));
    assert_eq!(p.trace_flags, vec![1800, 9567]);
    assert_eq!(p.is_microsoft_pki_cert_trust_configured, Some(true));
    assert_eq!(p.is_digi_cert_pki_cert_trust_configured, Some(true));
    assert_eq!(p.instance_name.as_deref(), Some("name of instance"));
    assert_eq!(
        p.always_on_role,
        Some(AlwaysOnRole::FailoverClusterInstance)
    );
    assert_eq!(p.status, Some(ArcConnectivityStatus::Registered));
    assert_eq!(p.license_type, Some(ArcLicenseType::Free));
    assert_eq!(p.host_type.as_deref(), Some("Physical Server"));
    assert_eq!(p.v_core.as_deref(), Some("4"));
    assert_eq!(p.max_server_memory_mb, Some(4096));

    let e = p.database_mirroring_endpoint.as_ref().unwrap();
    assert_eq!(e.endpoint_name.as_deref(), Some("testMirroringEndpoint"));
    assert_eq!(e.role, Some(MirroringRole::Partner));
    assert_eq!(e.is_encryption_enabled, Some(true));
    assert_eq!(e.encryption_algorithm.as_deref(), Some("RC4"));
    assert_eq!(e.connection_auth.as_deref(), Some("Certificate"));
    assert_eq!(e.port, Some(12345));
    assert_eq!(e.is_dynamic_port, Some(false));
    assert_eq!(e.ip_address.as_deref(), Some("123.124.125.126"));
    assert_eq!(e.certificate_name.as_deref(), Some("testCertificateName"));
    assert_eq!(
        e.certificate_expiry_date.as_deref(),
        Some("2025-03-30T00:00:00Z")
    );

    let a = p.migration.as_ref().unwrap().assessment.as_ref().unwrap();
    assert_eq!(a.enabled, Some(true));
    assert_eq!(a.version.as_deref(), Some("1.2.3.4"));
    assert_eq!(
        a.assessment_upload_time.as_deref(),
        Some("2024-03-15T00:16:11.0000000Z")
    );
    assert_eq!(a.server_assessments.len(), 2);
    let findings: Vec<_> = a.managed_instance_findings().collect();
    assert_eq!(findings.len(), 1);
    let f = findings[0];
    assert_eq!(f.feature_id.as_deref(), Some("TraceFlags"));
    assert_eq!(f.issue_category.as_deref(), Some("Warning"));
    assert_eq!(f.more_information.as_deref(), Some("Trace Flags"));
    assert_eq!(
        f.impacted_objects,
        vec![ImpactedObject {
            name: Some("8017".into()),
            object_type: Some("TraceFlag".into()),
            impact_detail: Some(String::new()),
        }]
    );
    let sku = a.managed_instance_sku().unwrap();
    assert_eq!(sku.recommendation_status, Some(RecommendationStatus::Ready));
    assert_eq!(sku.number_of_server_blocker_issues, Some(0));
    let t = sku.target_sku.as_ref().unwrap();
    let c = t.category.as_ref().unwrap();
    assert_eq!(c.sql_service_tier.as_deref(), Some("General Purpose"));
    assert_eq!(c.hardware_type.as_deref(), Some("Gen5"));
    assert_eq!(c.compute_tier.as_deref(), Some("Provisioned"));
    assert_eq!(c.sql_purchasing_model.as_deref(), Some("vCore"));
    assert_eq!(c.zone_redundancy_available, Some(false));
    assert_eq!(t.compute_size, Some(2.0));
    assert_eq!(t.storage_max_size_in_mb, Some(1024.0));
    assert_eq!(t.predicted_data_size_in_mb, Some(21.94));
    assert_eq!(t.predicted_log_size_in_mb, Some(2.0));
    assert_eq!(t.max_storage_iops, Some(0.44));
    assert_eq!(t.max_throughput_mbps, Some(0.0));
    assert_eq!(sku.monthly_cost.as_ref().unwrap().total_cost, Some(245.31));
    let vm = a
        .sku_recommendation_results
        .as_ref()
        .unwrap()
        .azure_sql_virtual_machine
        .as_ref()
        .unwrap();
    assert_eq!(vm.target_sku.as_ref().unwrap().compute_size, Some(20.0));
    let summary = a.impacted_objects_summary.as_ref().unwrap();
    assert_eq!(summary.azure_sql_managed_instance.len(), 3);
    assert_eq!(
        summary.azure_sql_managed_instance[1],
        ImpactedFeature {
            feature_id: Some("AgentJobs".into()),
            number_impacted: Some(3),
            issue_category: Some("Warning".into()),
        }
    );
}

#[test]
fn the_mi_link_assessment_keeps_its_checks_and_failures() {
    let r: MiLinkAssessmentResult = body("RunManagedInstanceLinkAssessment", "200");
    assert_eq!(r.assessments.len(), 7);
    assert!(!r.passed());
    let failures: Vec<_> = r.failures().collect();
    assert_eq!(failures.len(), 2);
    assert_eq!(failures[0].name.as_deref(), Some("AlwaysOn"));
    assert_eq!(
        failures[0].category,
        Some(MiLinkAssessmentCategory::SqlInstance)
    );
    assert!(failures[0].failing_dbs.is_empty());
    assert_eq!(failures[1].name.as_deref(), Some("DatabaseNameNotInUse"));
    assert_eq!(
        failures[1].category,
        Some(MiLinkAssessmentCategory::ManagedInstanceDatabase)
    );
    assert_eq!(failures[1].failing_dbs, vec!["testdb2".to_owned()]);
    assert!(
        failures[1]
            .additional_information
            .as_deref()
            .unwrap()
            .starts_with("There must not already be a database")
    );
    assert_eq!(r.warnings().count(), 0);
    let certificates: Vec<_> = r
        .in_category(&MiLinkAssessmentCategory::Certificates)
        .collect();
    assert_eq!(certificates.len(), 1);
    assert_eq!(
        certificates[0].name.as_deref(),
        Some("MicrosoftPkiCertificate")
    );
    assert_eq!(certificates[0].status, Some(AssessmentStatus::Success));
    assert_eq!(
        certificates[0].information.as_deref(),
        Some("Microsoft PKI certificate trust configured")
    );
    let encryption = r
        .assessments
        .iter()
        .find(|c| c.name.as_deref() == Some("DatabaseMirroringEndpointEncryptionAlgorithm"))
        .unwrap();
    assert_eq!(encryption.status, Some(AssessmentStatus::Success));
    // Without the two failures it passes.
    let mut fixed = r.clone();
    fixed
        .assessments
        .retain(|c| c.status != Some(AssessmentStatus::Failure));
    assert!(fixed.passed());
}

#[test]
fn telemetry_keeps_its_columns_and_rows() {
    let t: TelemetryTable = body("GetSqlServerInstanceTelemetry", "200");
    assert_eq!(t.columns.len(), 17);
    assert_eq!(t.rows.len(), 3);
    assert_eq!(t.column("database_name"), Some(3));
    assert_eq!(t.column("DATABASE_NAME"), Some(3));
    assert_eq!(t.column("lag"), None);
    assert_eq!(t.columns[1].kind, Some(TelemetryColumnType::DateTime));
    assert_eq!(t.columns[6].name.as_deref(), Some("file_size_mb"));
    assert_eq!(t.columns[6].kind, Some(TelemetryColumnType::Double));
    let names: Vec<_> = t.cells("database_name").collect();
    assert_eq!(names, vec![Some("master"), Some("arcDb"), Some("model")]);
    assert!(t.cells("no_such_column").all(|c| c.is_none()));
    let arc_db = t.row_where("database_name", "arcDb").unwrap();
    assert_eq!(
        arc_db[t.column("file_type").unwrap()].as_deref(),
        Some("Log")
    );
    assert_eq!(
        arc_db[t.column("sample_time_utc").unwrap()].as_deref(),
        Some("2023-09-30T00:00:00Z")
    );
    assert_eq!(
        t.next_link.as_deref(),
        Some(
            "https://management.azure.com/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/testrg/providers/Microsoft.Sql/servers/testsqlserver/getTelemetry?api-version=2026-01-01"
        )
    );
}

#[test]
fn the_link_answers_with_its_availability_group_before_and_after_a_failover() {
    let created: SqlServerAvailabilityGroup = body("CreateOrUpdateManagedInstanceLink", "200");
    assert_eq!(created.name.as_deref(), Some("myNewDag"));
    assert_eq!(
        created.id.as_deref(),
        Some(
            "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/testrg/providers/Microsoft.AzureArcData/sqlServerInstances/testSqlServer_INST1/availabilityGroups/myNewDag"
        )
    );
    let p = &created.properties;
    assert_eq!(
        p.availability_group_id.as_deref(),
        Some("00000000-1111-2222-3333-444444444444")
    );
    assert_eq!(p.server_name.as_deref(), Some("testSqlServer"));
    assert_eq!(p.instance_name.as_deref(), Some("INST1"));
    let info = p.info.as_ref().unwrap();
    assert_eq!(info.is_distributed, Some(true));
    assert_eq!(info.failure_condition_level, Some(3));
    assert_eq!(info.health_check_timeout, Some(30000));
    assert_eq!(p.replicas.value.len(), 2);
    let primary = created.primary_replica().unwrap();
    assert_eq!(
        primary.replica_name.as_deref(),
        Some("testSqlServer\\Inst1")
    );
    let configure = primary.configure.as_ref().unwrap();
    assert_eq!(
        configure.endpoint_url.as_deref(),
        Some("TCP://testSqlServer_INST1.testSqlserverDomain:5022")
    );
    assert_eq!(
        configure.availability_mode_description.as_deref(),
        Some("SYNCHRONOUS_COMMIT")
    );
    assert_eq!(
        configure.seeding_mode_description.as_deref(),
        Some("AUTOMATIC")
    );
    assert_eq!(configure.session_timeout, Some(10));
    let state = primary.state.as_ref().unwrap();
    assert_eq!(
        state.synchronization_health_description.as_deref(),
        Some("HEALTHY")
    );
    assert_eq!(
        state.connected_state_description.as_deref(),
        Some("CONNECTED")
    );
    assert_eq!(
        p.replicas.value[1]
            .state
            .as_ref()
            .unwrap()
            .availability_group_replica_role,
        Some(ArcReplicaRole::Secondary)
    );
    assert_eq!(p.databases.value.len(), 1);
    let db = &p.databases.value[0];
    assert_eq!(db.database_name.as_deref(), Some("database1"));
    assert_eq!(
        db.synchronization_state_description.as_deref(),
        Some("SYNCHRONIZED")
    );
    assert_eq!(db.is_primary_replica, Some(true));
    assert_eq!(db.is_suspended, Some(false));
    assert_eq!(db.database_state_description.as_deref(), Some("ONLINE"));

    // After the failover the managed instance's replica is the primary.
    let failed_over: SqlServerAvailabilityGroup = body("failoverMiLink", "200");
    assert_eq!(failed_over.location.as_deref(), Some("southeastasia"));
    let primary = failed_over.primary_replica().unwrap();
    assert_eq!(primary.replica_name.as_deref(), Some("arc-mi.0e4b078aec16"));
    assert_eq!(
        failed_over.properties.replicas.value[0]
            .state
            .as_ref()
            .unwrap()
            .availability_group_replica_role,
        Some(ArcReplicaRole::Secondary)
    );
    let dbs: Vec<_> = failed_over
        .properties
        .databases
        .value
        .iter()
        .map(|d| d.database_name.as_deref().unwrap())
        .collect();
    assert_eq!(dbs, vec!["database1", "database2"]);
    assert_eq!(
        failed_over.properties.vm_id.as_deref(),
        Some("12345678-1234-1234-1234-123456789123")
    );
}

#[test]
fn the_accepted_answers_say_where_to_follow_the_operation() {
    let headers = |name: &str| {
        let example = example(name);
        let h = example["responses"]["202"]["headers"]
            .as_object()
            .unwrap()
            .clone();
        ArcAccepted::from_headers(
            h.iter()
                .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
                .collect::<Vec<_>>(),
        )
    };
    let delete = headers("DeleteMiLink");
    assert_eq!(
        delete.poll_url(),
        Some(
            "https://management.azure.com/subscriptions/00000000-1111-2222-3333-444444444444/providers/Microsoft.AzureArcData/locations/eastus/operationsStatuses/5abb198d-cc4b-46bd-9e6c-e3f0ba22015d?api-version=2026-01-01"
        )
    );
    assert_eq!(
        delete.location.as_deref(),
        Some(
            "https://management.azure.com/subscriptions/00000000-1111-2222-3333-444444444444/providers/Microsoft.AzureArcData/operationResults/id1"
        )
    );
    assert_eq!(delete.retry_after, Some(Duration::from_secs(10)));
    // The telemetry's 202 has no Retry-After, and a tenant-level status URL for both headers.
    let telemetry = headers("GetSqlServerInstanceTelemetry");
    assert_eq!(telemetry.retry_after, None);
    assert_eq!(telemetry.poll_url(), telemetry.location.as_deref());
    assert!(
        telemetry
            .poll_url()
            .unwrap()
            .starts_with("https://management.azure.com/providers/Microsoft.AzureArcData/locations/eastus2euap/operationStatuses/")
    );
    // Header names in any case; the first of each wins; a Retry-After that is not seconds is
    // not guessed; Location alone is polled.
    let a = ArcAccepted::from_headers([
        ("location", "https://l/1"),
        ("LOCATION", "https://l/2"),
        ("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"),
    ]);
    assert_eq!(a.poll_url(), Some("https://l/1"));
    assert_eq!(a.retry_after, None);
    assert_eq!(ArcAccepted::from_headers([]).poll_url(), None);
}

#[test]
fn the_migration_assessment_job_keeps_its_status() {
    let j: MigrationAssessmentJob = body("RunMigrationAssessmentSqlServerInstance", "200");
    assert_eq!(j.job_status, Some(JobStatus::InProgress));
    assert_eq!(j.instance_name.as_deref(), Some("MSSQLSERVER"));
    assert_eq!(j.job_exception, None);
    assert!(j.id.as_deref().unwrap().ends_with("MigrationJobOnDemand"));
    let b = j.background_job.as_ref().unwrap();
    assert_eq!(b.state.as_deref(), Some("Enabled"));
    assert_eq!(b.execution_state.as_deref(), Some("Waiting"));
    assert_eq!(b.last_execution_status, None);
    assert_eq!(
        b.start_time.as_deref(),
        Some("2024-02-22T00:04:06.88265-08:00")
    );
    assert_eq!(j.sequencer_actions.len(), 3);
    assert_eq!(
        j.sequencer_actions[1].action_id.as_deref(),
        Some("system.last")
    );
    assert!(
        j.sequencer_actions
            .iter()
            .all(|a| a.state.as_deref() == Some("NotStarted")
                && a.result.as_deref() == Some("NotCompleted"))
    );
}
