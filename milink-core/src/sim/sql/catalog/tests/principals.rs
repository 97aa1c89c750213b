//! The Windows principals over TDS: the real [`TdsFactSource`] sends the per-database query of
//! the readiness catalog batch ([`readiness::windows_principals`]) to the simulated SQL Server
//! behind [`SimSqlHandler`], and the gatherer's parser reads back, for every database, the
//! Windows users, their logins and the orphaned ones that [`World::database_facts`] reports in
//! process.

use std::sync::Arc;

use crate::assess::gather::parse_windows_principals;
use crate::assess::{FactSource, WindowsUser, fixtures};
use crate::names::DatabaseName;
use crate::secret::Secret;
use crate::sim::SimConfig;
use crate::sim::lab::Lab;
use crate::sim::sql::handler::SimSqlHandler;
use crate::sim::tds::{TdsServer, TdsServerConfig};
use crate::sqlserver::TdsFactSource;
use crate::sqlserver::connection::{ConnectOptions, Connection, Encryption};
use crate::tsql::{Batch, SqlIdentifier, readiness};

use super::wire::NeverTimer;
use crate::lifecycle::Side;

const USER: &str = "milink";
const PASSWORD: &str = "S3cret!pw";

/// The Tailspin facts with Windows principals in both databases: Customer360's two users
/// (one orphaned) and a ToyStore group whose login is not among the instance's facts.
fn lab() -> Lab {
    let mut facts = fixtures::tailspin();
    facts
        .database_mut("ToyStore")
        .unwrap()
        .catalog
        .as_mut()
        .unwrap()
        .windows_users = Some(vec![WindowsUser {
        name: "TAILSPIN\\Toy Buyers".into(),
        is_group: true,
        login: Some("TAILSPIN\\Toy Buyers".into()),
    }]);
    Lab::from_facts(
        &facts.instance,
        &facts.databases,
        &facts.target,
        SimConfig {
            start: facts.options.now,
            ..SimConfig::with_seed(7)
        },
        &DatabaseName::new("ToyStore").unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn windows_principals_read_over_tds_are_the_worlds() {
    let lab = lab();
    let server = TdsServer::start(
        TdsServerConfig::default(),
        Arc::new(SimSqlHandler::new(
            lab.sim.clone(),
            Side::SqlServer,
            USER,
            Secret::new(PASSWORD),
        )),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("server.der");
    std::fs::write(&ca, server.certificate_der()).unwrap();
    let options = ConnectOptions::builder("127.0.0.1")
        .port(server.addr().port())
        .sql_login(USER, Secret::new(PASSWORD))
        .encryption(Encryption::Mandatory)
        .trusted_ca(&ca)
        .reconnect_attempts(0)
        .build()
        .unwrap();
    let source = TdsFactSource::new(Connection::new(options, Arc::new(NeverTimer)));

    let (version, databases) = lab
        .sim
        .with_world(|w| (w.source.version, w.database_facts()));
    let mut seen = 0;
    for d in &databases {
        // What the catalog batch runs in each database through `[db].sys.sp_executesql`.
        let batch = Batch::new(
            readiness::DATABASE_CATALOG,
            format!(
                "SET NOCOUNT ON;\nUSE {};\nDECLARE @id int = {};\n{};",
                d.name.quoted(),
                d.database_id,
                readiness::windows_principals(version)
            ),
        );
        let rows = source.query(&batch).await.unwrap();
        let got = parse_windows_principals(&rows)
            .unwrap()
            .remove(&i64::from(d.database_id))
            .unwrap_or_default();
        let want = d
            .catalog
            .as_ref()
            .and_then(|c| c.windows_users.clone())
            .unwrap();
        assert_eq!(got, want, "{}", d.name);
        seen += got.len();
    }
    // Customer360's mapped and orphaned users, and ToyStore's group.
    assert_eq!(seen, 3);
    let c360 = databases
        .iter()
        .find(|d| d.name.as_str() == "Customer360")
        .and_then(|d| d.catalog.as_ref())
        .and_then(|c| c.windows_users.as_ref())
        .unwrap();
    assert!(c360.iter().any(WindowsUser::is_orphaned));

    // The instance probe of Windows logins reads the same catalog: the facts' logins and the
    // group ToyStore's users map to.
    let rows = source.query(&readiness::windows_logins()).await.unwrap();
    let names: Vec<String> = rows
        .rows()
        .iter()
        .map(|r| match &r[0] {
            crate::assess::Cell::Text(t) => t.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        names,
        [
            "NT AUTHORITY\\SYSTEM",
            "NT SERVICE\\SQLSERVERAGENT",
            "TAILSPIN\\labadmin",
            "TAILSPIN\\Toy Buyers",
        ]
    );
    server.shutdown().await;
}
