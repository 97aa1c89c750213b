//! What the plan of each journey holds, in order.

use super::*;
use crate::lifecycle::{FailoverMode, LinkProperties, SeedingMode};
use std::time::Duration;

use crate::names::{CertificateName, DatabaseName, LinkMode, SqlVersion};
use crate::test_support::spec;

const PASSWORD: &str = "Str0ng!Passw0rd-never-shown";

fn cutover(drop_availability_group: bool) -> Journey {
    Journey::Cutover(CutoverOptions {
        drop_availability_group,
    })
}

/// One label per step: the operation's variant name, or `Redirect(side)`.
fn labels(plan: &Plan) -> Vec<String> {
    plan.steps()
        .map(|(_, step)| match step {
            PlanStep::Sql { op, .. } => variant(&format!("{op:?}")),
            PlanStep::Arm { op, .. } => variant(&format!("{op:?}")),
            PlanStep::Arc { op, .. } => format!("Arc{}", variant(&format!("{op:?}"))),
            PlanStep::Redirect { primary } => format!("Redirect({primary:?})"),
        })
        .collect()
}

fn variant(debug: &str) -> String {
    debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn phases(plan: &Plan) -> Vec<(Operation, Phase)> {
    plan.stages.iter().map(|s| (s.operation, s.phase)).collect()
}

fn position(plan: &Plan, label: &str) -> usize {
    labels(plan)
        .iter()
        .position(|l| l == label)
        .unwrap_or_else(|| panic!("{label} missing: {:?}", labels(plan)))
}

const CREATE: [&str; 11] = [
    "EnsureMasterKey",
    "EnsureEndpointCertificate",
    "EnsureMirroringEndpoint",
    "ExportCertificatePublicKey",
    "PutServerTrustCertificate",
    "GetEndpointCertificate",
    "ImportInstanceCertificate",
    "EnsureRootCaTrust",
    "CreateAvailabilityGroup",
    "CreateDistributedAvailabilityGroup",
    "PutLink",
];

#[test]
fn the_create_plan_prepares_sql_server_exchanges_trust_and_joins_the_instance_in_order() {
    let plan = plan(&spec(), &Journey::Create).unwrap();
    assert_eq!(labels(&plan), CREATE);
    assert_eq!(plan.len(), 11);
    assert_eq!(plan.final_phase, Phase::Replicating);
    assert!(plan.placeholders);
    let start = |phase| (Operation::Start, phase);
    assert_eq!(
        phases(&plan),
        [
            (Operation::RecordAssessment, Phase::Assessed),
            start(Phase::PreparingSource),
            start(Phase::ExchangingTrust),
            start(Phase::CreatingAg),
            start(Phase::CreatingDag),
            start(Phase::JoiningInstance),
            start(Phase::Seeding),
            start(Phase::Replicating),
        ]
    );
    // Each step sits under the state that issued it.
    let stage_of = |label: &str| {
        let (stage, _) = plan.steps().nth(position(&plan, label)).unwrap();
        stage.phase
    };
    assert_eq!(stage_of("EnsureMirroringEndpoint"), Phase::PreparingSource);
    assert_eq!(stage_of("EnsureRootCaTrust"), Phase::ExchangingTrust);
    assert_eq!(stage_of("PutLink"), Phase::JoiningInstance);
    // The certificates exchanged are the placeholders, each sent to the other side.
    let ops: Vec<&PlanStep> = plan.steps().map(|(_, s)| s).collect();
    assert!(matches!(
        ops[4],
        PlanStep::Arm { op: InstanceOp::PutServerTrustCertificate { name, public_blob }, .. }
            if name == &spec().source.certificate
                && public_blob == PLACEHOLDER_SQL_SERVER_CERTIFICATE
    ));
    assert!(matches!(
        ops[6],
        PlanStep::Sql { op: SourceOp::ImportInstanceCertificate { der, .. }, .. }
            if der == PLACEHOLDER_INSTANCE_CERTIFICATE
    ));
    // Root CA trust renders one batch per certificate.
    assert_eq!(plan.batches().count(), 9);
    let text = plan.to_string();
    assert!(text.contains("CREATE CERTIFICATE [MicrosoftPKI]"), "{text}");
    assert!(text.contains("CREATE CERTIFICATE [DigiCertPKI]"), "{text}");
    assert!(text.contains("WITH (DISTRIBUTED)"), "{text}");
}

#[test]
fn the_link_put_follows_the_rest_shape() {
    let plan = plan(&spec(), &Journey::Create).unwrap();
    let Some((op, request, url)) = plan.steps().find_map(|(_, step)| match step {
        PlanStep::Arm {
            op: op @ InstanceOp::PutLink { .. },
            request,
            url,
        } => Some((op, request, url)),
        _ => None,
    }) else {
        panic!("no link PUT in {plan}");
    };
    let s = spec();
    assert_eq!(
        op,
        &InstanceOp::PutLink {
            link: s.link.clone(),
            properties: LinkProperties {
                instance_link_role: Side::SqlServer,
                instance_ag: s.target.ag.clone(),
                partner_ag: s.source.ag.clone(),
                partner_endpoint: "TCP://tailspinsql.corp.example:5022".into(),
                failover_mode: FailoverMode::Manual,
                seeding_mode: SeedingMode::Automatic,
                link_mode: LinkMode::SingleDatabase,
                databases: s.databases.clone(),
            },
        }
    );
    assert_eq!(request.method, arm::Method::Put);
    assert_eq!(request.api_version, arm::API_VERSION);
    assert_eq!(
        url,
        "https://management.azure.com/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-tailspin/providers/Microsoft.Sql/managedInstances/tailspin-mi/distributedAvailabilityGroups/ToyStoreLink?api-version=2025-01-01"
    );
    let p = &request.body.as_ref().unwrap()["properties"];
    assert_eq!(p["instanceLinkRole"], "Secondary");
    assert_eq!(p["instanceAvailabilityGroupName"], "AG_ToyStore_MI");
    assert_eq!(p["partnerAvailabilityGroupName"], "AG_ToyStore");
    assert_eq!(p["partnerEndpoint"], "TCP://tailspinsql.corp.example:5022");
    assert_eq!(p["failoverMode"], "Manual");
    assert_eq!(p["seedingMode"], "Automatic");
    assert_eq!(p["databases"][0]["databaseName"], "ToyStore");
    assert!(p.get("linkMode").is_none());
}

#[test]
fn the_failover_plan_switches_to_sync_fails_over_and_redirects() {
    let plan = plan(&spec(), &Journey::Failover).unwrap();
    let mut expected: Vec<&str> = CREATE.to_vec();
    expected.extend([
        "SetAvailabilityMode",
        "SetReplicationMode",
        "Failover",
        "Redirect(ManagedInstance)",
    ]);
    assert_eq!(labels(&plan), expected);
    assert_eq!(plan.final_phase, Phase::FailedOver);
    let tail: Vec<&PlanStep> = plan.steps().map(|(_, s)| s).skip(11).collect();
    let sync = AvailabilityMode::SynchronousCommit;
    assert!(matches!(
        tail[0],
        PlanStep::Sql { op: SourceOp::SetAvailabilityMode { mode, .. }, .. } if *mode == sync
    ));
    assert!(matches!(
        tail[1],
        PlanStep::Arm { op: InstanceOp::SetReplicationMode { mode, .. }, request, .. }
            if *mode == sync
                && request.body.as_ref().unwrap()["properties"]["replicationMode"] == "Sync"
    ));
    // SQL Server 2022 CU13 fails over with T-SQL on the primary.
    assert!(matches!(
        tail[2],
        PlanStep::Sql { op: SourceOp::Failover { dag }, batches }
            if dag == &spec().link && batches[0].display_sql().contains("FAILOVER;")
    ));
    let failover = plan
        .stages
        .iter()
        .find(|s| s.operation == Operation::Failover && s.phase == Phase::FailingOver)
        .unwrap();
    assert_eq!(failover.steps.len(), 1);
    // The gate states are passed through, with readings only.
    for phase in [Phase::CatchingUp, Phase::VerifyingRoles] {
        let stage = plan.stages.iter().find(|s| s.phase == phase).unwrap();
        assert!(stage.steps.is_empty(), "{phase:?}");
    }
}

#[test]
fn before_cu13_the_failover_is_the_arm_request() {
    let mut s = spec();
    s.source.version = SqlVersion::parse("16.0.4100.1").unwrap();
    let plan = plan(&s, &Journey::Failover).unwrap();
    let (op, request) = plan
        .requests()
        .find(|(op, _)| matches!(op, InstanceOp::Failover { .. }))
        .unwrap();
    assert!(matches!(
        op,
        InstanceOp::Failover {
            failover_type: crate::lifecycle::ArmFailoverType::Planned,
            ..
        }
    ));
    assert_eq!(request.method, arm::Method::Post);
    assert!(
        request
            .path
            .ends_with("/distributedAvailabilityGroups/ToyStoreLink/failover")
    );
    assert_eq!(request.body.as_ref().unwrap()["failoverType"], "Planned");
}

#[test]
fn the_failback_plan_fails_over_and_back() {
    let plan = plan(&spec(), &Journey::Failback).unwrap();
    assert_eq!(plan.final_phase, Phase::Replicating);
    let labels = labels(&plan);
    // The failover left both sides synchronous: the failback skips the switch.
    assert_eq!(labels.len(), 17, "{labels:?}");
    assert_eq!(labels.iter().filter(|l| *l == "Failover").count(), 2);
    assert_eq!(labels[15..], ["Failover", "Redirect(SqlServer)"]);
    // The failback is issued on the instance, now primary.
    assert!(matches!(
        plan.steps().nth(15).unwrap(),
        (stage, PlanStep::Arm { op: InstanceOp::Failover { .. }, .. })
            if stage.operation == Operation::Failback
    ));
}

#[test]
fn the_cutover_plan_ends_with_the_link_delete_and_the_drops() {
    let plan = plan(&spec(), &cutover(true)).unwrap();
    assert_eq!(plan.final_phase, Phase::Completed);
    let labels = labels(&plan);
    assert_eq!(labels.len(), 18, "{labels:?}");
    assert_eq!(
        labels[labels.len() - 4..],
        [
            "Redirect(ManagedInstance)",
            "DeleteLink",
            "DropDistributedAvailabilityGroup",
            "DropAvailabilityGroup"
        ]
    );
    let delete = plan
        .requests()
        .find(|(op, _)| matches!(op, InstanceOp::DeleteLink { .. }))
        .unwrap()
        .1;
    assert_eq!(delete.method, arm::Method::Delete);
    assert!(
        delete
            .path
            .ends_with("/distributedAvailabilityGroups/ToyStoreLink")
    );
    assert_eq!(delete.body, None);
    let last = plan
        .stages
        .iter()
        .rev()
        .find(|s| !s.steps.is_empty())
        .unwrap();
    assert_eq!(last.phase, Phase::DroppingAg);
    // Without the AG drop, the DAG drop is last.
    let kept = super::plan(&spec(), &cutover(false)).unwrap();
    assert_eq!(
        self::labels(&kept).last().map(String::as_str),
        Some("DropDistributedAvailabilityGroup")
    );
    assert!(
        kept.to_string()
            .contains("DROP AVAILABILITY GROUP [ToyStoreLink];")
    );
}

#[test]
fn a_one_way_cutover_fences_sql_server_before_the_delete_and_never_fails_over() {
    let mut s = spec();
    s.source.version = SqlVersion::parse("15.0.4312.2").unwrap();
    s.failover_mode = FailoverMode::None;
    let plan = plan(&s, &cutover(false)).unwrap();
    assert_eq!(plan.final_phase, Phase::Completed);
    let labels = labels(&plan);
    assert!(!labels.iter().any(|l| l == "Failover"), "{labels:?}");
    let at = |l: &str| position(&plan, l);
    assert!(at("SetAvailabilityMode") < at("SetRoleSecondary"));
    assert!(at("SetRoleSecondary") < at("DeleteLink"));
    assert!(at("DeleteLink") < at("Redirect(ManagedInstance)"));
    assert!(at("Redirect(ManagedInstance)") < at("DropDistributedAvailabilityGroup"));
    assert!(plan.stages.iter().any(|st| st.phase == Phase::Fencing));
}

#[test]
fn an_instance_primary_link_grants_create_any_database() {
    let mut s = spec();
    s.initial_primary = Side::ManagedInstance;
    let plan = plan(&s, &Journey::Create).unwrap();
    assert_eq!(plan.final_phase, Phase::Replicating);
    let at = |l: &str| position(&plan, l);
    assert!(at("CreateAvailabilityGroup") < at("GrantCreateAnyDatabase"));
    assert!(at("GrantCreateAnyDatabase") < at("PutLink"));
    let (_, put) = plan.requests().last().unwrap();
    assert_eq!(
        put.body.as_ref().unwrap()["properties"]["instanceLinkRole"],
        "Primary"
    );
}

#[test]
fn a_multi_database_link_uses_the_preview_api_version() {
    let mut s = spec();
    s.mode = LinkMode::MultiDatabase;
    s.link = crate::names::LinkName::new("toystore-link").unwrap();
    s.source.version = SqlVersion::parse("17.0.4025.3").unwrap();
    s.target.update_policy = crate::names::UpdatePolicy::SqlServer2025;
    s.databases.push(DatabaseName::new("Orders").unwrap());
    let plan = plan(&s, &Journey::Failover).unwrap();
    let (_, put) = plan
        .requests()
        .find(|(op, _)| matches!(op, InstanceOp::PutLink { .. }))
        .unwrap();
    assert_eq!(put.api_version, arm::PREVIEW_API_VERSION);
    assert_eq!(
        put.body.as_ref().unwrap()["properties"]["databases"][1]["databaseName"],
        "Orders"
    );
}

#[test]
fn the_master_key_password_never_shows() {
    let ctx = RenderContext {
        master_key_password: Secret::new(PASSWORD),
        root_cas: vec![(
            CertificateName::new("MicrosoftPKI").unwrap(),
            vec![0x30, 0x82],
        )],
    };
    for journey in [Journey::Create, Journey::Failback, cutover(true)] {
        let plan = plan_with(&spec(), &journey, &ctx).unwrap();
        assert!(!plan.placeholders);
        for (_, batch) in plan.batches() {
            assert!(!batch.display_sql().contains(PASSWORD));
            assert!(!batch.to_string().contains(PASSWORD));
        }
        assert!(!plan.to_string().contains(PASSWORD));
        assert!(!format!("{plan:?}").contains(PASSWORD));
        assert!(!serde_json::to_string(&plan).unwrap().contains(PASSWORD));
        // The batch the adapter sends carries it.
        let (op, key) = plan.batches().next().unwrap();
        assert_eq!(op, &SourceOp::EnsureMasterKey);
        assert!(key.is_sensitive() && key.expose_sql().contains(PASSWORD));
        assert!(key.display_sql().contains("PASSWORD = N'***'"));
    }
    // The placeholders are labelled as such, and the placeholder is redacted too.
    let plan = plan(&spec(), &Journey::Create).unwrap();
    assert!(plan.to_string().contains("are placeholders"));
    assert!(!plan.to_string().contains(PLACEHOLDER_MASTER_KEY_PASSWORD));
}

#[test]
fn the_plan_serializes_for_json_and_python() {
    let plan = plan(&spec(), &cutover(true)).unwrap();
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(json["link"], "ToyStoreLink");
    assert_eq!(json["final_phase"], "Completed");
    assert_eq!(json["journey"]["Cutover"]["drop_availability_group"], true);
    let first = &json["stages"][1];
    assert_eq!(first["operation"], "Start");
    assert_eq!(first["phase"], "PreparingSource");
    assert_eq!(first["steps"][0]["kind"], "sql");
    assert_eq!(first["steps"][0]["op"], "EnsureMasterKey");
    assert!(
        first["steps"][0]["batches"][0]["sql"]
            .as_str()
            .unwrap()
            .contains("N'***'")
    );
    let arm = json["stages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["steps"].as_array().unwrap())
        .find(|s| s["kind"] == "arm")
        .unwrap();
    assert_eq!(arm["request"]["method"], "PUT");
    assert_eq!(arm["request"]["api_version"], "2025-01-01");
    assert!(
        arm["url"]
            .as_str()
            .unwrap()
            .starts_with("https://management.azure.com/")
    );
    let redirect = json["stages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["steps"].as_array().unwrap())
        .find(|s| s["kind"] == "redirect")
        .unwrap();
    assert_eq!(redirect["primary"], "ManagedInstance");
}

#[test]
fn a_plan_is_the_same_every_time() {
    let a = plan(&spec(), &Journey::Failback).unwrap();
    let b = plan(&spec(), &Journey::Failback).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.to_string(), b.to_string());
}

#[test]
fn what_cannot_be_planned_is_a_typed_error() {
    // A spec the machine refuses.
    let mut s = spec();
    s.databases.clear();
    assert!(matches!(
        plan(&s, &Journey::Create),
        Err(PlanError::Spec(SpecError::NoDatabases))
    ));
    // No root CA certificate configured.
    let ctx = RenderContext {
        master_key_password: Secret::new(PASSWORD),
        root_cas: Vec::new(),
    };
    assert!(matches!(
        plan_with(&spec(), &Journey::Create, &ctx),
        Err(PlanError::Render {
            op,
            error: RenderError::NoRootCertificates
        }) if *op == SourceOp::EnsureRootCaTrust
    ));
    // A catch-up limit shorter than the stability window: the gate can never open.
    let mut s = spec();
    s.options.stability_window = Duration::from_secs(3600);
    s.options.quiet_stability_window = Some(Duration::from_secs(3600));
    s.options.catch_up_timeout = Duration::from_secs(60);
    match plan(&s, &Journey::Failover) {
        Err(PlanError::Failed {
            operation: Operation::Failover,
            phase: Phase::CatchingUp,
            error,
        }) => assert_eq!(error.code, "timeout"),
        other => panic!("{other:?}"),
    }
    // A failback on a one-way link is refused by the machine.
    let mut s = spec();
    s.source.version = SqlVersion::parse("15.0.4312.2").unwrap();
    s.failover_mode = FailoverMode::None;
    assert!(matches!(
        plan(&s, &Journey::Failback),
        Err(PlanError::Rejected {
            operation: Operation::Failover,
            ..
        })
    ));
}

#[test]
fn the_arc_route_plans_arcs_three_operations_and_no_tsql() {
    let spec = LinkSpec {
        route: crate::lifecycle::LinkRoute::Arc {
            instance: crate::arc::ArcInstanceId::from_parts("sub", "rg", "TailspinSql").unwrap(),
        },
        ..crate::test_support::spec()
    };
    let failover = plan(&spec, &Journey::Failover).unwrap();
    assert_eq!(
        labels(&failover),
        ["ArcCreateLink", "ArcFailover", "Redirect(ManagedInstance)"]
    );
    assert_eq!(failover.batches().count(), 0, "no T-SQL on the Arc route");
    assert_eq!(
        failover.requests().count(),
        0,
        "no ARM change on the instance"
    );
    let text = failover.to_string();
    for expected in [
        "-- [Azure Arc: SQL Server through the Arc extension] SqlServerAvailabilityGroups_CreateManagedInstanceLink",
        "POST https://management.azure.com/subscriptions/sub/resourceGroups/rg/providers/Microsoft.AzureArcData/sqlServerInstances/TailspinSql/createManagedInstanceLink?api-version=2026-01-01",
        "/availabilityGroups/",
        "\"force\":false",
    ] {
        assert!(text.contains(expected), "{expected} missing:\n{text}");
    }
    // Which state runs each: the create in its own phase, the failover without milink's gate.
    assert!(phases(&failover).contains(&(Operation::Start, Phase::CreatingLinkThroughArc)));
    assert!(
        !phases(&failover)
            .iter()
            .any(|(_, p)| *p == Phase::CatchingUp)
    );
    let cutover = plan(&spec, &Journey::Cutover(CutoverOptions::default())).unwrap();
    assert_eq!(
        labels(&cutover),
        [
            "ArcCreateLink",
            "ArcFailover",
            "Redirect(ManagedInstance)",
            "ArcDeleteLink"
        ]
    );
    assert_eq!(cutover.final_phase, Phase::Completed);
}
