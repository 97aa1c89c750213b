//! `tailspin --serve`: the simulated pair on loopback, reached with nothing but the files it
//! writes (milink.toml, secrets.env, the certificates) by the real clients: the SQL Server
//! adapter over TDS, the instance's T-SQL endpoint, and the ARM adapter over HTTPS. Its world
//! follows the wall clock and its application writes.

use std::sync::Arc;
use std::time::Duration;

use milink_core::arm::client::{ArmManagedInstance, ArmOptions};
use milink_core::names::{DatabaseName, InstanceId};
use milink_core::sqlserver::SqlServerAdapter;
use milink_core::sqlserver::connection::Connection;
use milink_core::sqlserver::instance_reads::InstanceTsql;
use milink_core::sqlserver::render::RenderContext;
use milink_core::time::SystemTimer;
use milink_examples::config::LinkConfig;
use milink_examples::tailspin::serve::{ServeOptions, Served, read_secrets};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_pair_is_reached_from_its_files_alone() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(&ServeOptions {
        seed: 4,
        dir: dir.path().to_path_buf(),
        speed: 200.0,
    })
    .await
    .unwrap();
    // Everything below comes from the files, as another process would read them.
    let config =
        LinkConfig::from_toml(&std::fs::read_to_string(served.config_file()).unwrap()).unwrap();
    assert_eq!(&config, served.config());
    let secrets = read_secrets(served.secrets_file()).unwrap();
    assert_eq!(secrets.len(), 3);
    let lookup = move |name: &str| {
        secrets
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.expose().to_owned())
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(served.secrets_file())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "secrets.env is readable by others: {mode:o}"
        );
    }
    // No secret in the configuration file.
    let text = std::fs::read_to_string(served.config_file()).unwrap();
    for name in ["MILINK_SQL_PASSWORD", "MILINK_ARM_TOKEN"] {
        let value = lookup(name).unwrap();
        assert!(!text.contains(&value), "{name}'s value is in milink.toml");
    }

    // SQL Server over TDS: the build, checked to host the link.
    let options = config
        .sql_server
        .connect_options(&lookup, "milink serve test")
        .unwrap();
    let adapter = SqlServerAdapter::new(
        Connection::new(options, Arc::new(SystemTimer)),
        RenderContext::with_password(None).unwrap(),
    );
    let version = adapter.check_can_host_link().await.unwrap();
    assert_eq!(version.to_string(), "16.0.4125.3");

    // The managed instance over ARM.
    let mi = &config.managed_instance;
    let arm_options = ArmOptions::builder()
        .endpoint(mi.arm_endpoint.clone())
        .trust_root_der(std::fs::read(mi.arm_trusted_ca_file.as_ref().unwrap()).unwrap())
        .build();
    let arm = ArmManagedInstance::new(
        InstanceId::parse(&mi.resource_id).unwrap(),
        mi.credential(&lookup).unwrap(),
        arm_options,
    )
    .unwrap();
    let instance = arm.managed_instance().await.unwrap();
    assert_eq!(instance.name.as_deref(), Some("tailspin-mi"));
    assert!(arm.links().await.unwrap().is_empty());

    // The instance's T-SQL endpoint answers too.
    let tsql = mi
        .tsql
        .as_ref()
        .unwrap()
        .connect_options(&lookup, "milink serve test")
        .unwrap();
    let reads = InstanceTsql::new(Connection::new(tsql, Arc::new(SystemTimer)));
    let toystore = DatabaseName::new("ToyStore").unwrap();
    let backups = reads
        .full_backups(std::slice::from_ref(&toystore))
        .await
        .unwrap();
    assert_eq!(backups.len(), 1);
    assert_eq!(backups[0].database, toystore);
    assert_eq!(
        backups[0].finished, None,
        "ToyStore is not on the instance yet"
    );

    // The world follows the wall clock (200 virtual seconds per second) and its application
    // writes.
    let before = served.sim().now();
    let committed = served.sim().workload_stats().committed;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let advanced = served.sim().now().as_millis() - before.as_millis();
    assert!(
        advanced >= 20_000,
        "{advanced} ms of virtual time in 300 ms"
    );
    assert!(served.sim().workload_stats().committed > committed);

    // A secret that is not set is named, and nothing connects.
    let e = config
        .sql_server
        .connect_options(&|_| None, "milink serve test")
        .unwrap_err();
    assert!(e.to_string().contains("MILINK_SQL_PASSWORD"), "{e}");
    served.stop().await;
}
