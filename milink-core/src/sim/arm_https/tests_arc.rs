//! The Arc client ([`ArcSqlServer`]) against the simulator's `Microsoft.AzureArcData` over
//! loopback HTTPS: every operation changes or reads the same world the T-SQL route and the
//! managed instance's ARM face see, every fault is the typed error, and a kept operation is
//! polled after a resume without being started again.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::time::OffsetDateTime;

use super::tests::{TOKEN, client_trusting, read};
use super::{ArmHttpsServer, ArmServerConfig, difference};
use crate::arc::client::{
    ArcAccess, ArcError, ArcOperation, ArcPoll, ArcSqlServer, ArcStarted, READ_ONLY_REFUSED,
    replica_lag_seconds,
};
use crate::arc::models::{
    ArcAnswer, ArcConnectivityStatus, AssessmentStatus, RecommendationStatus,
};
use crate::arc::{
    AgCreate, AgReplica, ArcOp, DagCreate, DagMember, DagMemberRef, MiLinkAssessmentRequest,
    MiLinkCreate, TelemetryRequest,
};
use crate::arm::client::ArmOptions;
use crate::lifecycle::{DataLossAcknowledgement, FailoverKind, ReplicaRole, Side};
use crate::names::{CertificateName, DatabaseName};
use crate::ports::SourceServer;
use crate::sim::Lab;
use crate::sim::world::arc::ArcFailure;
use crate::test_support::VirtualTimer;

#[derive(Debug)]
struct SharedToken;

#[async_trait]
impl TokenCredential for SharedToken {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            TOKEN.to_owned(),
            OffsetDateTime::from_unix_timestamp(4_102_444_800).unwrap(),
        ))
    }
}

struct Fixture {
    lab: Lab,
    server: ArmHttpsServer,
    arc: ArcSqlServer,
}

fn client(lab: &Lab, server: &ArmHttpsServer) -> ArcSqlServer {
    let options = ArmOptions::builder()
        .endpoint(server.base_url())
        .trust_root_der(server.certificate_der().to_vec())
        .build();
    let id = lab.sim.with_world(|w| w.arc_instance_id()).unwrap();
    ArcSqlServer::with_timer(
        id,
        lab.spec.target.instance.clone(),
        Arc::new(SharedToken),
        options,
        Arc::new(VirtualTimer::new(lab.sim.now())),
    )
    .unwrap()
}

async fn fixture(seed: u64) -> Fixture {
    let lab = Lab::tailspin(seed).unwrap();
    let server = ArmHttpsServer::start(ArmServerConfig::with_token(TOKEN), lab.sim.clone())
        .await
        .unwrap();
    let arc = client(&lab, &server);
    Fixture { lab, server, arc }
}

/// `createManagedInstanceLink` for the lab's link, of `databases`.
fn create(lab: &Lab, databases: Vec<DatabaseName>) -> ArcOp {
    let s = &lab.spec;
    let certificate = CertificateName::new("TailspinEndpointCert").unwrap();
    ArcOp::CreateMiLink(Box::new(MiLinkCreate {
        availability_group: AgCreate {
            name: s.source.ag.clone(),
            replicas: vec![AgReplica {
                endpoint_name: Some(s.source.endpoint_name.clone()),
                endpoint_url: Some(s.source.endpoint_url()),
                certificate_name: Some(certificate.clone()),
                ..AgReplica::default()
            }],
            databases,
            cluster_type: None,
        },
        distributed_availability_group: DagCreate {
            name: s.link.clone(),
            primary: DagMember {
                availability_group: DagMemberRef::ArcAvailabilityGroup(s.source.ag.clone()),
                listener_url: Some(s.source.endpoint_url()),
                availability_mode: None,
                failover_mode: None,
                seeding_mode: None,
                certificate_name: Some(certificate),
            },
            secondary: DagMember {
                availability_group: DagMemberRef::ManagedInstance(s.target.instance.clone()),
                listener_url: None,
                availability_mode: None,
                failover_mode: None,
                seeding_mode: None,
                certificate_name: None,
            },
        },
        instance_availability_group: Some(s.target.ag.clone()),
    }))
}

fn toystore() -> DatabaseName {
    DatabaseName::new(Lab::TOYSTORE).unwrap()
}

fn accepted(started: ArcStarted) -> ArcOperation {
    match started {
        ArcStarted::Accepted(op) => op,
        ArcStarted::Done(answer) => panic!("done at once: {answer:?}"),
    }
}

/// Polls `op` to its end, letting the world's time pass between polls; the answers seen.
async fn finish(f: &Fixture, op: &ArcOperation) -> Result<Option<ArcAnswer>, ArcError> {
    for _ in 0..400 {
        match f.arc.poll(op).await? {
            ArcPoll::Succeeded(answer) => return Ok(answer.map(|a| *a)),
            ArcPoll::Running { retry_after } => {
                assert!(
                    retry_after.is_some(),
                    "a running operation says when to poll"
                );
                f.lab.sim.advance(Duration::from_secs(20));
            }
        }
    }
    panic!("{} did not finish", op.operation_id);
}

/// Creates the lab's link through Arc and waits until its database is synchronizing.
async fn linked(f: &Fixture) {
    let op = accepted(
        f.arc
            .begin(&create(&f.lab, vec![toystore()]))
            .await
            .unwrap(),
    );
    finish(f, &op).await.unwrap();
    let link = f.lab.spec.link.clone();
    for _ in 0..720 {
        if f.lab
            .sim
            .with_world(|w| w.lag(&link, &toystore()).is_some())
        {
            return;
        }
        f.lab.sim.advance(Duration::from_secs(10));
    }
    panic!("the link never synchronized");
}

#[tokio::test]
async fn the_instance_and_its_databases_are_read_from_the_world() {
    let f = fixture(3).await;
    let instance = f.arc.instance().await.unwrap();
    let p = &instance.properties;
    assert_eq!(p.is_hadr_enabled, Some(true));
    assert_eq!(p.db_master_key_exists, Some(false));
    assert_eq!(p.trace_flags, vec![1800, 9567]);
    assert_eq!(p.collation.as_deref(), Some("SQL_Latin1_General_CP1_CI_AS"));
    assert_eq!(
        p.build().map(|v| v.to_string()).as_deref(),
        Some("16.0.4125.3")
    );
    assert_eq!(p.status, Some(ArcConnectivityStatus::Connected));
    assert!(p.database_mirroring_endpoint.is_none());
    assert!(p.migration.is_none(), "no assessment has run");
    assert!(f.arc.agent_connected().await.unwrap());

    let databases = f.arc.databases().await.unwrap();
    assert_eq!(databases.len(), 2);
    let toy = databases
        .iter()
        .find(|d| d.name.as_deref() == Some(Lab::TOYSTORE))
        .unwrap();
    assert_eq!(toy.properties.recovery_mode.as_deref(), Some("Full"));
    assert!(
        toy.properties
            .backup_information
            .as_ref()
            .and_then(|b| b.last_full_backup.as_ref())
            .is_some()
    );
    let c360 = databases
        .iter()
        .find(|d| d.name.as_deref() == Some(Lab::CUSTOMER360))
        .unwrap();
    assert_eq!(c360.properties.recovery_mode.as_deref(), Some("Simple"));
    assert_eq!(c360.properties.data_file_size_mb, Some(5.0 * 1024.0));
    assert!(
        f.arc
            .availability_group(&f.lab.spec.source.ag)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn create_builds_both_sides_of_the_link_that_tds_and_arm_then_read() {
    let f = fixture(4).await;
    let link = f.lab.spec.link.clone();
    let op = accepted(
        f.arc
            .begin(&create(&f.lab, vec![toystore()]))
            .await
            .unwrap(),
    );
    // Documented stages: accepted, then in progress step by step, then succeeded.
    assert_eq!(
        f.arc.poll(&op).await.unwrap(),
        ArcPoll::Running {
            retry_after: Some(Duration::from_secs(20))
        }
    );
    f.lab.sim.advance(Duration::from_secs(20));
    assert!(matches!(
        f.arc.poll(&op).await.unwrap(),
        ArcPoll::Running { .. }
    ));
    assert!(
        f.lab
            .sim
            .with_world(|w| w.source.endpoint.is_some() && w.source.dags.is_empty()),
        "the endpoint comes first, the link later"
    );
    let Some(ArcAnswer::AvailabilityGroup(dag)) = finish(&f, &op).await.unwrap() else {
        panic!("the link's availability group is the result");
    };
    assert_eq!(dag.name.as_deref(), Some(link.as_str()));
    let info = dag.properties.info.unwrap();
    assert_eq!(info.is_distributed, Some(true));
    assert_eq!(
        info.primary_replica.as_deref(),
        Some(f.lab.spec.source.ag.as_str())
    );
    f.lab.sim.with_world(|w| {
        assert!(w.source.master_key && w.source.root_ca_trust);
        assert!(w.source.ags.contains_key(&f.lab.spec.source.ag));
        assert!(w.source.dags.contains_key(&link));
        assert!(w.instance.links.contains_key(&link));
        assert!(
            w.instance
                .trust_certificates
                .contains_key("TailspinEndpointCert")
        );
        assert_eq!(
            w.arc
                .started("SqlServerAvailabilityGroups_CreateManagedInstanceLink"),
            1
        );
    });
    // The DMVs (through the SQL Server port) and ARM's link resource see it.
    let view = f
        .lab
        .sim
        .sql_server()
        .link_state(&link, &[toystore()])
        .await
        .unwrap();
    assert!(view.exists);
    assert_eq!(view.role, Some(ReplicaRole::Primary));
    let arm_link = f.arc.managed_instance().link(&link).await.unwrap().unwrap();
    assert_eq!(arm_link.name.as_deref(), Some(link.as_str()));
    // And the instance's facts through Arc show the endpoint the extension made.
    let endpoint = f
        .arc
        .instance()
        .await
        .unwrap()
        .properties
        .database_mirroring_endpoint
        .unwrap();
    assert_eq!(
        endpoint.certificate_name.as_deref(),
        Some("TailspinEndpointCert")
    );
    assert_eq!(endpoint.port, Some(5022));
}

#[tokio::test]
async fn a_kept_operation_is_polled_after_a_resume_and_never_started_again() {
    let f = fixture(5).await;
    let op = accepted(
        f.arc
            .begin(&create(&f.lab, vec![toystore()]))
            .await
            .unwrap(),
    );
    let kept = serde_json::to_string(&op).unwrap();
    f.lab.sim.advance(Duration::from_secs(40));
    // A new process: another client, the operation read back from its state.
    let resumed = client(&f.lab, &f.server);
    let op: ArcOperation = serde_json::from_str(&kept).unwrap();
    let answer = loop {
        match resumed.poll(&op).await.unwrap() {
            ArcPoll::Succeeded(answer) => break answer,
            ArcPoll::Running { .. } => f.lab.sim.advance(Duration::from_secs(20)),
        }
    };
    assert!(matches!(
        answer.as_deref(),
        Some(ArcAnswer::AvailabilityGroup(_))
    ));
    f.lab.sim.with_world(|w| {
        assert_eq!(
            w.arc
                .started("SqlServerAvailabilityGroups_CreateManagedInstanceLink"),
            1
        );
        assert_eq!(w.arc.operations.len(), 1);
    });
    let requests = f.server.requests();
    assert_eq!(
        requests["POST arc createManagedInstanceLink"], 1,
        "{requests:?}"
    );
    assert!(
        requests["GET arc operation (AzureAsyncOperation)"] >= 2,
        "{requests:?}"
    );
    assert_eq!(requests["GET arc availability group"], 1, "{requests:?}");
    // Polling the finished operation again reads its result; still one start.
    assert!(matches!(
        resumed.poll(&op).await.unwrap(),
        ArcPoll::Succeeded(_)
    ));
    assert_eq!(
        f.lab.sim.with_world(|w| w
            .arc
            .started("SqlServerAvailabilityGroups_CreateManagedInstanceLink")),
        1
    );
}

#[tokio::test]
async fn a_planned_failover_changes_roles_through_the_world_then_delete_removes_the_link() {
    let f = fixture(6).await;
    linked(&f).await;
    let link = f.lab.spec.link.clone();
    let failover = f.arc.failover_op(&link, &FailoverKind::Planned).unwrap();
    let op = accepted(f.arc.begin(&failover).await.unwrap());
    finish(&f, &op).await.unwrap();
    f.lab.sim.with_world(|w| {
        assert_eq!(w.role(Side::SqlServer, &link), Some(ReplicaRole::Secondary));
        assert_eq!(
            w.role(Side::ManagedInstance, &link),
            Some(ReplicaRole::Primary)
        );
        assert!(
            w.commits.counted_lost.is_empty(),
            "a planned failover loses nothing"
        );
    });
    // A second failover is refused: SQL Server is no longer the primary.
    let again = f.arc.begin(&failover).await.unwrap_err();
    assert_eq!(again.code(), "arm:409:FailoverNotAllowed");
    let delete = ArcOp::DeleteMiLink { link: link.clone() };
    let op = accepted(f.arc.begin(&delete).await.unwrap());
    assert_eq!(finish(&f, &op).await.unwrap(), None);
    f.lab.sim.with_world(|w| {
        assert!(!w.source.dags.contains_key(&link));
        assert!(!w.instance.links.contains_key(&link));
    });
    assert!(
        f.arc
            .managed_instance()
            .link(&link)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_forced_failover_needs_the_acknowledgement_and_makes_the_instance_primary() {
    let f = fixture(7).await;
    linked(&f).await;
    let link = f.lab.spec.link.clone();
    for refused in [
        FailoverKind::Forced(None),
        FailoverKind::Forced(Some(DataLossAcknowledgement {
            link: "another_link".to_owned(),
        })),
    ] {
        let e = f.arc.failover_op(&link, &refused).unwrap_err();
        assert_eq!(e.code(), "arc:AcknowledgementRequired");
    }
    let forced = f
        .arc
        .failover_op(
            &link,
            &FailoverKind::Forced(Some(DataLossAcknowledgement {
                link: link.to_string(),
            })),
        )
        .unwrap();
    let op = accepted(f.arc.begin(&forced).await.unwrap());
    finish(&f, &op).await.unwrap();
    assert_eq!(
        f.lab
            .sim
            .with_world(|w| w.role(Side::ManagedInstance, &link)),
        Some(ReplicaRole::Primary)
    );
}

#[tokio::test]
async fn lag_and_both_arc_assessments_come_from_the_world() {
    let f = fixture(8).await;
    // The MI link assessment before anything exists: the name check passes, the facts show.
    let request = MiLinkAssessmentRequest {
        managed_instance: f.lab.spec.target.instance.clone(),
        managed_instance_role: None,
        databases: vec![toystore(), DatabaseName::new(Lab::CUSTOMER360).unwrap()],
        availability_group: f.lab.spec.source.ag.clone(),
        link: f.lab.spec.link.clone(),
        categories: Vec::new(),
        sql_server_ip: None,
    };
    let op = accepted(
        f.arc
            .begin(&ArcOp::RunMiLinkAssessment(Box::new(request)))
            .await
            .unwrap(),
    );
    let Some(ArcAnswer::MiLinkAssessment(result)) = finish(&f, &op).await.unwrap() else {
        panic!("no assessment result");
    };
    let check = |name: &str| {
        result
            .assessments
            .iter()
            .find(|c| c.name.as_deref() == Some(name))
            .unwrap()
            .clone()
    };
    assert_eq!(check("AlwaysOn").status, Some(AssessmentStatus::Success));
    let recovery = check("DatabaseRecoveryModel");
    assert_eq!(recovery.status, Some(AssessmentStatus::Failure));
    assert_eq!(recovery.failing_dbs, vec![Lab::CUSTOMER360.to_owned()]);
    assert!(!result.passed());

    // The migration assessment: a job now, results on the instance once uploaded.
    let Some(ArcAnswer::MigrationAssessmentJob(job)) = f
        .arc
        .run(&ArcOp::RunMigrationAssessment, Duration::from_secs(10), 1)
        .await
        .unwrap()
    else {
        panic!("no job");
    };
    assert!(job.job_status.is_some());
    f.lab.sim.advance(Duration::from_secs(120));
    let migration = f
        .arc
        .instance()
        .await
        .unwrap()
        .properties
        .migration
        .unwrap();
    let assessment = migration.assessment.unwrap();
    assert!(
        assessment
            .managed_instance_findings()
            .any(|a| a.feature_id.as_deref() == Some("FileStream"))
    );
    assert_eq!(
        assessment
            .managed_instance_sku()
            .unwrap()
            .recommendation_status,
        Some(RecommendationStatus::NotReady)
    );

    // Lag through telemetry once the link runs.
    linked(&f).await;
    let request =
        TelemetryRequest::replica_lag(toystore(), f.lab.sim.now(), Duration::from_secs(60));
    let op = accepted(
        f.arc
            .begin(&ArcOp::GetTelemetry(Box::new(request)))
            .await
            .unwrap(),
    );
    let Some(ArcAnswer::Telemetry(table)) = finish(&f, &op).await.unwrap() else {
        panic!("no telemetry");
    };
    let lag = replica_lag_seconds(&table, Lab::TOYSTORE).unwrap();
    let exact = f.lab.sim.with_world(|w| {
        w.lag(&f.lab.spec.link, &toystore())
            .unwrap()
            .lag
            .as_secs_f64()
    });
    assert!(lag >= 0.0 && (lag - exact).abs() < 60.0, "{lag} vs {exact}");
}

#[tokio::test]
async fn each_fault_is_its_typed_error_naming_what_to_do() {
    let f = fixture(9).await;
    let one = create(&f.lab, vec![toystore()]);

    // The agent offline: refused, and the instance says Disconnected.
    f.lab.sim.with_world_mut(|w| w.arc.agent_connected = false);
    let e = f.arc.begin(&one).await.unwrap_err();
    assert!(matches!(e, ArcError::AgentOffline { .. }), "{e:?}");
    assert!(e.to_string().contains("Connected Machine agent"), "{e}");
    assert!(!f.arc.agent_connected().await.unwrap());
    f.lab.sim.with_world_mut(|w| w.arc.agent_connected = true);

    // An older extension and two databases.
    f.lab
        .sim
        .with_world_mut(|w| w.arc.extension_version = "1.1.2504.99".to_owned());
    let two = create(
        &f.lab,
        vec![toystore(), DatabaseName::new(Lab::CUSTOMER360).unwrap()],
    );
    let e = f.arc.begin(&two).await.unwrap_err();
    assert!(matches!(e, ArcError::ExtensionTooOld { .. }), "{e:?}");
    assert!(e.to_string().contains("1.1.3348.364"), "{e}");

    // The RBAC operation missing: 403 names it and the extension's SQL permissions.
    f.lab.sim.with_world_mut(|w| {
        w.arc
            .denied
            .push("SqlServerAvailabilityGroups_CreateManagedInstanceLink".to_owned());
    });
    let e = f.arc.begin(&one).await.unwrap_err();
    assert!(matches!(e, ArcError::PermissionDenied { .. }), "{e:?}");
    assert_eq!(e.code(), "arm:403:AuthorizationFailed");
    let text = e.to_string();
    for needed in [
        "Microsoft.AzureArcData/sqlServerInstances/createManagedInstanceLink/action",
        "SqlServerAvailabilityGroups_CreateManagedInstanceLink",
        "CREATE AVAILABILITY GROUP",
        "CREATE ENDPOINT",
        "IMPERSONATE ON USER::[dbo]",
    ] {
        assert!(text.contains(needed), "{needed} missing from {text}");
    }
    let port: crate::ports::PortError = e.into();
    assert!(port.message.contains("CREATE CERTIFICATE"), "{port}");
    f.lab.sim.with_world_mut(|w| w.arc.denied.clear());

    // Failing part-way: what was made before the failing step stays.
    f.lab.sim.with_world_mut(|w| {
        w.arc.fail = Some(ArcFailure {
            operation_id: "SqlServerAvailabilityGroups_CreateManagedInstanceLink".to_owned(),
            at_step: 4,
            code: "SqlServerExtensionOperationFailed".to_owned(),
            message: "The extension could not grant itself ALTER ANY AVAILABILITY GROUP."
                .to_owned(),
        });
    });
    let op = accepted(f.arc.begin(&one).await.unwrap());
    let e = finish(&f, &op).await.unwrap_err();
    assert!(matches!(e, ArcError::ExtensionFailed { .. }), "{e:?}");
    assert!(e.to_string().contains("ALTER ANY ENDPOINT"), "{e}");
    f.lab.sim.with_world(|w| {
        assert!(
            w.source.ags.contains_key(&f.lab.spec.source.ag),
            "step 3 stays"
        );
        assert!(w.source.dags.is_empty() && w.instance.links.is_empty());
    });
    // Not one of the refused requests started an operation.
    assert_eq!(
        f.lab.sim.with_world(|w| w
            .arc
            .started("SqlServerAvailabilityGroups_CreateManagedInstanceLink")),
        1
    );
}

#[tokio::test]
async fn bodies_that_do_not_fit_the_official_schema_are_refused_and_change_nothing() {
    let f = fixture(10).await;
    let http = client_trusting(f.server.certificate_der());
    let id = f.lab.sim.with_world(|w| w.arc_instance_id()).unwrap();
    let post = |tail: &str, body: serde_json::Value| {
        http.post(format!(
            "{}{}/{tail}?api-version={}",
            f.server.base_url(),
            id.path(),
            crate::arc::API_VERSION
        ))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
    };
    let create = read(
        post(
            "createManagedInstanceLink",
            serde_json::json!({"availabilityGroup": {"availabilityGroupName": "AG", "colour": 1}}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (create.status, create.code()),
        (400, "InvalidRequestContent")
    );
    let telemetry = read(
        post(
            "getTelemetry",
            serde_json::json!({"aggregationType": "Median"}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(telemetry.status, 400, "{:?}", telemetry.body);
    f.lab.sim.with_world(|w| {
        assert!(w.arc.operations.is_empty() && w.source.ags.is_empty());
    });
}

#[tokio::test]
async fn one_readiness_report_from_arcs_facts_and_both_arc_assessments() {
    let f = fixture(11).await;
    f.arc
        .run(&ArcOp::RunMigrationAssessment, Duration::from_secs(10), 1)
        .await
        .unwrap();
    f.lab.sim.advance(Duration::from_secs(120));
    let target = f.arc.managed_instance().target_facts().await.unwrap();
    let c360 = DatabaseName::new(Lab::CUSTOMER360).unwrap();
    let options = crate::assess::AssessOptions {
        databases: Some(vec![toystore(), c360.clone()]),
        ..crate::assess::AssessOptions::at(f.lab.sim.now())
    };
    let request = MiLinkAssessmentRequest {
        managed_instance: f.lab.spec.target.instance.clone(),
        managed_instance_role: None,
        databases: vec![toystore(), c360.clone()],
        availability_group: f.lab.spec.source.ag.clone(),
        link: f.lab.spec.link.clone(),
        categories: Vec::new(),
        sql_server_ip: None,
    };
    // The client polls on a timer that does not move the world: Arc's steps take no time here.
    f.lab.sim.with_world_mut(|w| w.arc.step = Duration::ZERO);
    let report = f
        .arc
        .assess(request, Some(&target), &options, Duration::from_secs(20), 5)
        .await;
    let report = report.unwrap();
    let finding = |rule: &str, scope: &crate::assess::Scope| {
        report
            .findings
            .iter()
            .find(|x| x.rule_id == rule && &x.scope == scope)
            .unwrap_or_else(|| panic!("no {rule} for {scope}: {:#?}", report.findings))
            .clone()
    };
    let c360_scope = crate::assess::Scope::Database(c360.clone());
    // Our rule and Arc's check agree: one finding, with Arc's evidence.
    let recovery = finding("Link.RecoveryModel", &c360_scope);
    assert_eq!(
        recovery.evidence.details["arc check"],
        "DatabaseRecoveryModel"
    );
    assert_eq!(recovery.evidence.details["arc status"], "Failure");
    // An Arc check milink cannot evaluate through Arc is Arc's own finding.
    let pki = finding(
        "Arc.MicrosoftPkiCertificate",
        &crate::assess::Scope::Instance,
    );
    assert_eq!(pki.severity, crate::assess::Severity::Warning);
    // The migration assessment's FILESTREAM, which milink's catalog rule cannot see here.
    // Scoped to the database it impacts: ToyStore is not held back by Customer360's FILESTREAM.
    let filestream = finding("ArcMigration.FileStream", &c360_scope);
    assert_eq!(filestream.severity, crate::assess::Severity::Blocker);
    assert!(filestream.evidence.details["impacted objects"].contains(Lab::CUSTOMER360));
    finding("Arc.SkuRecommendation", &crate::assess::Scope::Instance);
    // What Arc does not report is said so, not passed.
    assert!(
        report
            .not_evaluated
            .iter()
            .any(|n| n.rule_id == "Link.Sysadmin"
                && n.reason == crate::arc::assessment::NOT_FROM_ARC)
    );
    assert_eq!(
        report.verdict_of(Lab::CUSTOMER360),
        Some(crate::assess::Verdict::NotReady)
    );
    assert_ne!(
        report.verdict_of(Lab::TOYSTORE),
        Some(crate::assess::Verdict::NotReady)
    );
    // Arc's migration assessment lists the link's own trace flags; milink's rule, run on the
    // same facts, passes them: a disagreement with both evidences.
    let flags = finding(
        "Arc.Disagreement.TraceFlags",
        &crate::assess::Scope::Instance,
    );
    assert_eq!(flags.evidence.details["milink rule"], "TraceFlags");
    assert!(flags.evidence.details["arc migration assessment"].contains("1800"));
}

#[tokio::test]
async fn an_operation_followed_by_its_location_ends_the_same_way() {
    let f = fixture(12).await;
    let by_location = |op: ArcOperation| ArcOperation {
        operation: crate::lifecycle::OperationRef {
            url: op
                .operation
                .url
                .replace("operationsStatuses", "operationResults"),
            kind: crate::lifecycle::OperationKind::Location,
            resource: op.operation.resource,
        },
        ..op
    };
    f.lab.sim.with_world_mut(|w| {
        w.arc.fail = Some(ArcFailure {
            operation_id: "SqlServerAvailabilityGroups_CreateManagedInstanceLink".to_owned(),
            at_step: 2,
            code: "SqlServerExtensionOperationFailed".to_owned(),
            message: "The extension could not grant itself CREATE CERTIFICATE.".to_owned(),
        });
    });
    let one = create(&f.lab, vec![toystore()]);
    let failing = by_location(accepted(f.arc.begin(&one).await.unwrap()));
    let e = finish(&f, &failing).await.unwrap_err();
    assert!(matches!(e, ArcError::ExtensionFailed { .. }), "{e:?}");
    assert_eq!(e.code(), "arm:400:SqlServerExtensionOperationFailed");
    // The endpoint of step 1 stays; a new operation finishes the link.
    assert!(f.lab.sim.with_world(|w| w.source.endpoint.is_some()));
    let op = by_location(accepted(f.arc.begin(&one).await.unwrap()));
    assert!(matches!(
        finish(&f, &op).await.unwrap(),
        Some(ArcAnswer::AvailabilityGroup(_))
    ));
}

#[tokio::test]
async fn a_read_only_client_reads_everything_and_sends_no_write() {
    let f = fixture(12).await;
    // A link to read, made by a client that may write.
    linked(&f).await;
    let arc = client(&f.lab, &f.server).read_only();
    assert_eq!(arc.access(), ArcAccess::ReadOnly);
    let counter = f.server.request_counter();
    let before = counter.snapshot();

    // Every read goes through: the instance, its databases and availability groups, the link's
    // distributed availability group, telemetry, the MI link assessment.
    assert!(arc.instance().await.unwrap().properties.build().is_some());
    assert_eq!(arc.databases().await.unwrap().len(), 2);
    let ags = arc.availability_groups().await.unwrap();
    let names: Vec<&str> = ags.iter().filter_map(|a| a.name.as_deref()).collect();
    assert!(names.contains(&f.lab.spec.link.as_str()), "{names:?}");
    let link_ag = crate::names::AgName::new(f.lab.spec.link.as_str()).unwrap();
    assert!(arc.availability_group(&link_ag).await.unwrap().is_some());
    let request =
        TelemetryRequest::replica_lag(toystore(), f.lab.sim.now(), Duration::from_secs(60));
    let op = accepted(
        arc.begin(&ArcOp::GetTelemetry(Box::new(request)))
            .await
            .unwrap(),
    );
    // The kept operation is polled with GETs, which a read-only client sends.
    let mut polls = 0;
    loop {
        match arc.poll(&op).await.unwrap() {
            ArcPoll::Succeeded(answer) => {
                assert!(matches!(answer.as_deref(), Some(ArcAnswer::Telemetry(_))));
                break;
            }
            ArcPoll::Running { .. } => {
                polls += 1;
                assert!(polls < 400, "telemetry never finished");
                f.lab.sim.advance(Duration::from_secs(5));
            }
        }
    }
    let reads = difference(&counter.snapshot(), &before);
    assert!(
        reads
            .keys()
            .all(|k| k.starts_with("GET ") || k == "POST arc getTelemetry"),
        "{reads:?}"
    );

    // Every write is refused before it is sent: the server sees nothing and the link stays.
    let link = f.lab.spec.link.clone();
    let writes = vec![
        create(&f.lab, vec![toystore()]),
        ArcOp::FailoverMiLink {
            link: link.clone(),
            managed_instance: f.lab.spec.target.instance.clone(),
            failover: crate::arc::ArcFailover::Planned,
        },
        ArcOp::FailoverMiLink {
            link: link.clone(),
            managed_instance: f.lab.spec.target.instance.clone(),
            failover: crate::arc::ArcFailover::ForcedAllowDataLoss,
        },
        ArcOp::DeleteMiLink { link: link.clone() },
        ArcOp::RunMigrationAssessment,
    ];
    let after_reads = counter.snapshot();
    let operations = f.lab.sim.with_world(|w| w.arc.operations.len());
    for op in &writes {
        assert!(!op.is_read(), "{op:?}");
        let e = arc.begin(op).await.unwrap_err();
        assert_eq!(e.code(), READ_ONLY_REFUSED, "{op:?}");
        assert!(e.to_string().contains("nothing was sent"), "{e}");
        assert!(arc.run(op, Duration::from_secs(1), 1).await.is_err());
    }
    assert_eq!(
        counter.snapshot(),
        after_reads,
        "a write reached the server"
    );
    assert_eq!(
        f.lab.sim.with_world(|w| w.role(Side::SqlServer, &link)),
        Some(ReplicaRole::Primary)
    );
    assert_eq!(f.lab.sim.with_world(|w| w.arc.operations.len()), operations);

    // The same writes from the client that may write do reach the server (the guard is the
    // read-only mode, not the operations).
    let e = f.arc.begin(&ArcOp::RunMigrationAssessment).await;
    assert!(e.is_ok(), "{e:?}");
    assert!(counter.snapshot() != after_reads);
}
