//! Opt-in and read-only: an Arc-enabled SQL Server in real Azure, named by
//! `MILINK_LIVE_ARC_SQL` (its `sqlServerInstances` resource id), with the credential the
//! environment names (`arm::client::credential_from_environment`, as the other live ARM
//! tests). The variable is read when the tests are built: unset, the live test is reported as
//! ignored with the variable's name; set, it runs.
//!
//! The client is read-only ([`ArcSqlServer::read_only`]); the same reading against the
//! simulator shows that it sends `GET`s and `getTelemetry` only, and that a write asked of
//! that client never reaches the server.

use std::sync::Arc;
use std::time::Duration;

use milink_core::arc::client::{ArcSqlServer, READ_ONLY_REFUSED};
use milink_core::arc::{ArcInstanceId, ArcOp};
use milink_core::arm::client::{ArmOptions, StaticToken};
use milink_core::names::InstanceId;
use milink_core::secret::Secret;
use milink_core::sim::Lab;
use milink_core::sim::arm_https::{ArmHttpsServer, ArmServerConfig, difference};
use milink_examples::arc_read::read_arc_instance;

/// The live reading: the instance, its databases and availability groups, a telemetry
/// dataset and the migration assessment it holds; printed. Nothing is written.
#[tokio::test]
#[cfg_attr(
    not(milink_live_arc),
    ignore = "live: build and run with MILINK_LIVE_ARC_SQL set to an Arc SQL Server instance's \
              resource id (and sign in as for MILINK_LIVE_MI)"
)]
async fn live_arc_read_only() {
    let id = std::env::var("MILINK_LIVE_ARC_SQL").unwrap_or_default();
    assert!(
        !id.trim().is_empty(),
        "MILINK_LIVE_ARC_SQL is not set: nothing to read (this test was forced with --ignored)"
    );
    let id: ArcInstanceId = id.trim().parse().unwrap();
    // The link's partner is not read: the client needs an id, `MILINK_LIVE_MI` if given.
    let mi: InstanceId = match std::env::var("MILINK_LIVE_MI") {
        Ok(mi) if !mi.trim().is_empty() => mi.trim().parse().unwrap(),
        _ => InstanceId::from_parts(id.subscription_id(), id.resource_group(), "unused").unwrap(),
    };
    let credential = milink_core::arm::client::credential_from_environment().unwrap();
    let arc = ArcSqlServer::new(id, mi, credential, ArmOptions::default())
        .unwrap()
        .read_only();
    let reading = read_arc_instance(&arc, Duration::from_secs(5), 60)
        .await
        .unwrap();
    println!("{}", serde_json::to_string_pretty(&reading).unwrap());
    assert!(!reading.name.is_empty());
}

#[tokio::test]
async fn the_live_reading_sends_no_write_against_the_simulator() {
    let lab = Lab::tailspin(5).unwrap();
    let token = Secret::new("live-arc-sim");
    let server = ArmHttpsServer::start(ArmServerConfig::with_token(token.clone()), lab.sim.clone())
        .await
        .unwrap();
    let options = ArmOptions::builder()
        .endpoint(server.base_url())
        .trust_root_der(server.certificate_der().to_vec())
        .build();
    let id = lab.sim.with_world(|w| w.arc_instance_id()).unwrap();
    let client = || {
        ArcSqlServer::with_timer(
            id.clone(),
            lab.spec.target.instance.clone(),
            Arc::new(StaticToken::new(token.clone())),
            options.clone(),
            Arc::new(lab.sim.clock()),
        )
        .unwrap()
    };
    let counter = server.request_counter();

    // A client that may write is refused before anything is sent.
    let before = counter.snapshot();
    let e = read_arc_instance(&client(), Duration::from_secs(5), 60)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("read-only client"), "{e}");
    assert_eq!(counter.snapshot(), before);

    let arc = client().read_only();
    let reading = read_arc_instance(&arc, Duration::from_secs(5), 60)
        .await
        .unwrap();
    assert_eq!(reading.name, "TailspinSql");
    assert_eq!(reading.build.as_deref(), Some("16.0.4125.3"));
    assert_eq!(reading.databases.len(), 2);
    assert_eq!(
        reading.telemetry,
        Ok((0, 0)),
        "another dataset is empty here"
    );
    assert_eq!(reading.migration_assessment, None, "none was ever run");
    let sent = difference(&counter.snapshot(), &before);
    let methods: Vec<&str> = sent.keys().map(String::as_str).collect();
    assert!(
        methods
            .iter()
            .all(|k| k.starts_with("GET ") || *k == "POST arc getTelemetry"),
        "{sent:?}"
    );
    assert!(sent.contains_key("POST arc getTelemetry"), "{sent:?}");

    // Writes asked of the same client never reach the server.
    let after = counter.snapshot();
    for op in [
        ArcOp::RunMigrationAssessment,
        ArcOp::DeleteMiLink {
            link: lab.spec.link.clone(),
        },
    ] {
        let e = arc.begin(&op).await.unwrap_err();
        assert_eq!(e.code(), READ_ONLY_REFUSED);
    }
    assert_eq!(counter.snapshot(), after);
}
