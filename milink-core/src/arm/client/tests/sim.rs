//! The adapter against the simulator's own REST API ([`ArmHttpsServer`]): it creates a server
//! trust certificate and a link in a world, each `PUT` ending with the final `GET` of its
//! resource, then reads the world's instance, certificates and links back, typed.

use crate::arm::models::{LinkRole, ReplicationMode};
use crate::lifecycle::SourceOp;
use crate::ports::{SourceReply, SourceServer};
use crate::sim::Lab;
use crate::sim::arm_https::{ArmHttpsServer, ArmServerConfig};
use crate::sim::sql::ddl::fixtures::link_ops;

use super::*;

const SIM_TOKEN: &str = "the-simulator's-shared-token";

#[derive(Debug)]
struct SharedToken;

#[async_trait]
impl TokenCredential for SharedToken {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let expires = i64::try_from(NOW_MS / 1000 + 3600).unwrap();
        Ok(AccessToken::new(
            SIM_TOKEN.to_owned(),
            OffsetDateTime::from_unix_timestamp(expires).unwrap(),
        ))
    }
}

/// Begins `op` and polls it to its end, letting the world's time pass between polls.
async fn run(lab: &Lab, mi: &ArmManagedInstance, op: &InstanceOp) -> ArmReply {
    let reply = mi.begin(op).await.unwrap();
    let ArmReply::Accepted(operation) = &reply else {
        return reply;
    };
    assert!(
        operation.resource.is_some(),
        "{op:?}: a PUT keeps its resource"
    );
    for _ in 0..600 {
        match mi.poll(operation).await.unwrap() {
            PollReply::Succeeded => return reply,
            PollReply::Running { .. } => lab.sim.advance(Duration::from_secs(10)),
        }
    }
    panic!("{op:?} did not finish");
}

/// The simulator's REST API for `lab`, and the adapter that reaches it (its certificate trusted
/// explicitly, retries on the world's clock).
async fn serve(lab: &Lab) -> (ArmHttpsServer, ArmManagedInstance) {
    let server = ArmHttpsServer::start(ArmServerConfig::with_token(SIM_TOKEN), lab.sim.clone())
        .await
        .unwrap();
    let options = ArmOptions::builder()
        .endpoint(server.base_url())
        .trust_root_der(server.certificate_der().to_vec())
        .build();
    let timer = Arc::new(VirtualTimer::new(lab.sim.now()));
    let mi = ArmManagedInstance::with_timer(
        lab.spec.target.instance.clone(),
        Arc::new(SharedToken),
        options,
        timer,
    )
    .unwrap();
    (server, mi)
}

#[tokio::test]
async fn the_simulated_instance_is_read_back_typed_over_https() {
    let lab = Lab::tailspin(5).unwrap();
    let (server, mi) = serve(&lab).await;
    let spec = lab.spec.clone();
    let sql = lab.sim.sql_server();

    // Nothing yet: no link, no certificate of SQL Server's.
    assert!(mi.links().await.unwrap().is_empty());
    assert_eq!(mi.link(&spec.link).await.unwrap(), None);

    let mut ops = link_ops(&lab).into_iter();
    let mut der = Vec::new();
    for op in ops.by_ref().take(4) {
        if let SourceReply::PublicKey(d) = sql.execute(&op).await.unwrap() {
            der = d;
        }
    }
    assert!(
        mi.find_server_trust_certificate(&der, None)
            .await
            .unwrap()
            .is_none()
    );
    let ArmReply::PublicKey(mi_der) = mi.begin(&InstanceOp::GetEndpointCertificate).await.unwrap()
    else {
        panic!("no endpoint certificate")
    };
    let put_cert = InstanceOp::PutServerTrustCertificate {
        name: spec.source.certificate.clone(),
        public_blob: der.clone(),
    };
    run(&lab, &mi, &put_cert).await;
    for op in ops.by_ref().take(5) {
        let op = match op {
            SourceOp::ImportInstanceCertificate { fqdn, .. } => {
                SourceOp::ImportInstanceCertificate {
                    fqdn,
                    der: mi_der.clone(),
                }
            }
            op => op,
        };
        sql.execute(&op).await.unwrap();
    }
    let put_link = InstanceOp::PutLink {
        link: spec.link.clone(),
        properties: LinkProperties {
            instance_link_role: Side::SqlServer,
            instance_ag: spec.target.ag.clone(),
            partner_ag: spec.source.ag.clone(),
            partner_endpoint: spec.source.endpoint_url(),
            failover_mode: spec.failover_mode,
            seeding_mode: spec.seeding_mode,
            link_mode: LinkMode::SingleDatabase,
            databases: spec.databases.clone(),
        },
    };
    assert!(matches!(
        run(&lab, &mi, &put_link).await,
        ArmReply::Accepted(_)
    ));

    // The instance, as the world holds it.
    let instance = mi.managed_instance().await.unwrap();
    let world_fqdn = lab.sim.with_world(|w| w.instance.fqdn.to_string());
    assert_eq!(
        instance.properties.fully_qualified_domain_name.as_deref(),
        Some(world_fqdn.as_str())
    );
    assert_eq!(instance.name.as_deref(), Some(spec.target.instance.name()));
    // The certificate, found by its key bytes and by its name.
    let certificates = mi.server_trust_certificates().await.unwrap();
    assert_eq!(certificates.len(), 1, "{certificates:?}");
    let by_key = mi
        .find_server_trust_certificate(&der, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        by_key.certificate_name(),
        Some(spec.source.certificate.as_str())
    );
    assert!(
        mi.find_server_trust_certificate(&mi_der, None)
            .await
            .unwrap()
            .is_none()
    );
    let by_name = mi
        .find_server_trust_certificate(&mi_der, Some(spec.source.certificate.as_str()))
        .await
        .unwrap()
        .unwrap();
    assert!(!by_name.holds(&mi_der) && by_name.holds(&der));
    // The link, listed and read by name.
    let links = mi.links().await.unwrap();
    assert_eq!(links.len(), 1);
    let link = mi.link(&spec.link).await.unwrap().unwrap();
    assert_eq!(links[0], link);
    assert_eq!(link.name.as_deref(), Some(spec.link.as_str()));
    assert_eq!(
        link.properties.instance_link_role,
        Some(LinkRole::Secondary)
    );
    assert_eq!(
        link.properties.partner_availability_group_name.as_deref(),
        Some(spec.source.ag.as_str())
    );
    assert!(matches!(
        link.properties.replication_mode,
        Some(ReplicationMode::Async | ReplicationMode::Sync)
    ));
    let other = LinkName::new("DAG_Elsewhere").unwrap();
    assert_eq!(mi.link(&other).await.unwrap(), None);
    // The readiness facts see the link's database and SQL Server's certificate by its bytes.
    let facts = mi.target_facts().await.unwrap();
    let links = facts.links.unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].name, spec.link.as_str());
    assert_eq!(
        links[0].databases,
        spec.databases
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    );
    let trusted = facts.server_trust_certificates.unwrap();
    assert_eq!(trusted.len(), 1);
    assert!(crate::assess::facts::hex_eq(&trusted[0].public_blob, &der));
    assert!(crate::assess::facts::hex_eq(
        facts.endpoint_certificate.as_deref().unwrap(),
        &mi_der
    ));
    server.shutdown().await;
}

/// The readiness facts of the instance read over HTTPS are the world's own
/// (`World::target_facts`), but for what ARM does not answer (storage in use, failover group
/// membership, TDE certificates); they cost [`TARGET_READS`] requests; a service-managed
/// protector, a caller without the link's actions and a subnet of two ranges come through as
/// they are.
#[tokio::test]
async fn the_instances_readiness_facts_are_read_over_https_in_a_fixed_number_of_requests() {
    use crate::assess::{ArmPermission, ProtectorKind};

    let lab = Lab::tailspin(3).unwrap();
    let (server, mi) = serve(&lab).await;
    let before = server.requests();
    let got = mi.target_facts().await.unwrap();
    let sent: u64 = crate::sim::arm_https::difference(&server.requests(), &before)
        .values()
        .sum();
    assert_eq!(sent, super::super::TARGET_READS as u64);
    let mut world = lab.sim.with_world(|w| w.target_facts());
    world.storage_used_gb = None;
    world.tde_certificate_thumbprints = None;
    assert_eq!(got, world);
    assert_eq!(got.in_failover_group, Some(false));
    assert_eq!(got.tde_protector, Some(ProtectorKind::CustomerManaged));
    assert_eq!(got.subnet_prefixes, Some(vec!["10.20.0.0/24".to_owned()]));
    assert!(
        got.subnet_id
            .as_deref()
            .unwrap()
            .ends_with("/subnets/ManagedInstance")
    );

    lab.sim.with_world_mut(|w| {
        w.instance.settings.tde_protector = ProtectorKind::ServiceManaged;
        w.instance.settings.caller_permissions = vec![ArmPermission {
            actions: vec!["Microsoft.Sql/managedInstances/read".to_owned()],
            not_actions: Vec::new(),
        }];
        w.instance.settings.subnet_prefixes = vec!["10.20.0.0/25".into(), "10.20.0.128/25".into()];
    });
    lab.sim
        .with_world_mut(|w| w.instance.in_failover_group = true);
    let got = mi.target_facts().await.unwrap();
    assert_eq!(got.in_failover_group, Some(true));
    assert_eq!(got.tde_protector, Some(ProtectorKind::ServiceManaged));
    assert_eq!(
        got.caller_permissions.unwrap()[0].actions,
        vec!["Microsoft.Sql/managedInstances/read".to_owned()]
    );
    assert_eq!(
        got.subnet_prefixes,
        Some(vec!["10.20.0.0/25".to_owned(), "10.20.0.128/25".to_owned()])
    );
    server.shutdown().await;
}

/// A MultiDatabase link's database list, changed through the adapter over HTTPS: the `PATCH`
/// (preview api-version) is accepted, polled to its end with no final `GET`, and the world's
/// link and the link read back both carry the new list; a list ARM refuses is a typed error
/// that changes nothing.
#[tokio::test]
async fn a_multidatabase_links_database_list_changes_over_https() {
    use crate::sim::fixtures::{RETURNS, add_to_sql_ag, join_link, multi_database_lab};

    let lab = multi_database_lab(11);
    join_link(&lab).await;
    let (server, mi) = serve(&lab).await;
    let link = lab.spec.link.clone();
    let toystore = DatabaseName::new(Lab::TOYSTORE).unwrap();
    let returns = DatabaseName::new(RETURNS).unwrap();

    // Refused: an empty list. Typed, and the link keeps its list.
    let e = mi
        .begin(&InstanceOp::SetLinkDatabases {
            link: link.clone(),
            databases: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        "arm:400:InvalidDistributedAvailabilityGroupsUpdateRequestDatabases",
        "{e}"
    );

    add_to_sql_ag(&lab, &returns);
    let before = server.requests();
    let op = InstanceOp::SetLinkDatabases {
        link: link.clone(),
        databases: vec![toystore.clone(), returns.clone()],
    };
    let ArmReply::Accepted(operation) = mi.begin(&op).await.unwrap() else {
        panic!("not accepted");
    };
    assert_eq!(operation.resource, None, "a PATCH ends with its operation");
    let mut polls = 0;
    loop {
        polls += 1;
        match mi.poll(&operation).await.unwrap() {
            PollReply::Succeeded => break,
            PollReply::Running { .. } => lab.sim.advance(Duration::from_secs(10)),
        }
        assert!(polls < 600, "the PATCH never ended");
    }
    let sent = crate::sim::arm_https::difference(&server.requests(), &before);
    assert_eq!(sent.get("PATCH link"), Some(&1), "{sent:?}");
    assert_eq!(sent.values().sum::<u64>(), 1 + polls, "{sent:?}");
    let world = lab.sim.with_world(|w| {
        w.instance
            .links
            .get(&link)
            .map(|l| l.properties.databases.clone())
    });
    assert_eq!(world, Some(vec![toystore.clone(), returns.clone()]));
    let read = mi.link(&link).await.unwrap().unwrap();
    let names: Vec<_> = read
        .properties
        .databases
        .iter()
        .filter_map(|d| d.database_name.clone())
        .collect();
    assert_eq!(names, [Lab::TOYSTORE, RETURNS]);
    server.shutdown().await;
}

#[tokio::test]
async fn the_readiness_facts_of_the_simulated_instance_are_read_over_https() {
    let lab = Lab::tailspin(5).unwrap();
    let (_server, mi) = serve(&lab).await;
    let read = mi.target_facts().await.unwrap();
    let world = lab.sim.with_world(|w| w.target_facts());
    // What ARM reports is the world's; what it does not report stays unknown.
    assert_eq!(
        (
            &read.name,
            &read.fqdn,
            read.tier,
            &read.hardware,
            read.vcores,
            read.storage_max_gb
        ),
        (
            &world.name,
            &world.fqdn,
            world.tier,
            &world.hardware,
            world.vcores,
            world.storage_max_gb
        )
    );
    assert_eq!(read.update_policy, world.update_policy);
    assert_eq!(read.collation, world.collation);
    assert_eq!(read.databases, world.databases);
    assert_eq!(
        (
            read.storage_used_gb,
            read.in_failover_group,
            read.tde_certificate_thumbprints
        ),
        (None, world.in_failover_group, None)
    );
}
