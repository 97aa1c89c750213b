//! Gathering over TDS from the simulated SQL Server: the real [`TdsFactSource`] sends the ten
//! readiness probes to [`SimSqlHandler`] on loopback and the facts and the report it gathers
//! are the ones the in-process assessment reads from the same world.

use std::sync::Arc;

use super::*;
use crate::assess::{
    AssessOptions, GatherOptions, ModuleScan, ReadinessReport, Scope, Severity, Verdict, assess,
    fixtures, gather_instance_facts,
};
use crate::lifecycle::Side;
use crate::names::DatabaseName;
use crate::secret::Secret;
use crate::sim::sql::handler::SimSqlHandler;
use crate::sim::tds::{TdsServer, TdsServerConfig};
use crate::sim::{Lab, SimConfig};
use crate::sqlserver::TdsFactSource;
use crate::sqlserver::connection::{ConnectOptions, Connection, Encryption};
use crate::tsql::readiness::{self as probes, PROBE_COUNT};

const USER: &str = "milink";
const PASSWORD: &str = "S3cret!pw";

/// The simulated SQL Server on loopback TDS, and the certificate its clients trust.
struct Wire {
    server: TdsServer,
    dir: tempfile::TempDir,
}

impl Wire {
    fn connection(&self) -> Connection {
        let ca = self.dir.path().join("server.der");
        let options = ConnectOptions::builder("127.0.0.1")
            .port(self.server.addr().port())
            .sql_login(USER, Secret::new(PASSWORD))
            .encryption(Encryption::Mandatory)
            .trusted_ca(&ca)
            .reconnect_attempts(0)
            .build()
            .unwrap();
        Connection::new(options, Arc::new(crate::time::SystemTimer))
    }
}

async fn serve(lab: &Lab) -> Wire {
    let handler = SimSqlHandler::new(
        lab.sim.clone(),
        Side::SqlServer,
        USER,
        Secret::new(PASSWORD),
    );
    let server = TdsServer::start(TdsServerConfig::default(), Arc::new(handler))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("server.der"), server.certificate_der()).unwrap();
    Wire { server, dir }
}

/// Fails a test that hangs instead of hanging the suite.
async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(60), f)
        .await
        .expect("no answer within a minute")
}

fn options(w: &World) -> AssessOptions {
    AssessOptions {
        failback: true,
        network: fixtures::tailspin_network(),
        ..AssessOptions::at(w.now)
    }
}

/// The report of the world's in-process facts.
fn in_process(lab: &Lab) -> (InstanceFacts, Vec<DatabaseFacts>, ReadinessReport) {
    lab.sim.with_world(|w| {
        let (i, d) = (w.instance_facts(), w.database_facts());
        let report = assess(&i, &d, Some(&w.target_facts()), &options(w));
        (i, d, report)
    })
}

fn blockers(report: &ReadinessReport, database: Option<&str>) -> Vec<String> {
    let findings: Vec<_> = match database {
        None => report
            .findings
            .iter()
            .filter(|f| f.scope == Scope::Instance)
            .collect(),
        Some(db) => report.database_findings(db).collect(),
    };
    findings
        .into_iter()
        .filter(|f| f.severity == Severity::Blocker)
        .map(|f| f.rule_id.clone())
        .collect()
}

#[test]
fn every_probe_is_found_by_its_first_table_and_nothing_else_is() {
    for version in [
        crate::names::SqlVersion::new(16, 0, 4125, 3),
        crate::names::SqlVersion::new(14, 0, 3456, 2),
    ] {
        let mut batches = probes::version_probes(version);
        batches.insert(0, probes::instance_properties());
        // Plain queries over catalog views: the query engine answers them.
        let engine = [
            probes::INSTANCE_PROPERTIES,
            probes::MIRRORING_ENDPOINTS,
            probes::CERTIFICATES,
            probes::WINDOWS_LOGINS,
        ];
        let found: Vec<_> = batches.iter().map(|b| probe_of(b.expose_sql())).collect();
        let purposes: Vec<_> = batches
            .iter()
            .map(|b| Some(b.purpose()).filter(|p| !engine.contains(p)))
            .collect();
        assert_eq!(found, purposes);
        assert_eq!(found.iter().flatten().count(), PROBE_COUNT - engine.len());
    }
    let db = DatabaseName::new("Cust]360").unwrap();
    let module = probes::module_text(&db);
    assert_eq!(
        first_table(module.expose_sql()).as_deref(),
        Some("Cust]360.sys.sql_modules")
    );
    assert_eq!(probe_of(module.expose_sql()), None);
    assert_eq!(probe_of("SELECT 1"), None);
    // The link's own reads are never taken for readiness probes, whatever they read first.
    let dbs = [DatabaseName::new("ToyStore").unwrap()];
    let link = crate::names::LinkName::new("DAG_ToyStore").unwrap();
    for batch in [
        crate::tsql::probe_workload_activity(&dbs),
        crate::tsql::probe_replica_states(&link),
        crate::tsql::probe_database_replica_states(&link),
        crate::tsql::probe_database_replica_states_by_database(&dbs),
        crate::tsql::probe_seeding_stats(),
        crate::tsql::probe_first_full_backups(&dbs),
        crate::tsql::probe_hadr_port(),
        crate::tsql::probe_dns_record_name(),
        crate::tsql::probe_sp_certificate_add_issuer_exists(),
        crate::tsql::probe_certificates(&[crate::names::CertificateName::new("c").unwrap()]),
    ] {
        assert_eq!(probe_of(batch.expose_sql()), None, "{}", batch.purpose());
    }
    assert_eq!(probe_of("SELECT name FROM sys.tables"), None);
}

#[tokio::test]
async fn gathering_over_tds_gives_the_worlds_facts_and_the_same_report() {
    let lab = Lab::tailspin(7).unwrap();
    let wire = serve(&lab).await;
    let source = TdsFactSource::new(wire.connection());
    let gathered = bounded(gather_instance_facts(&source, &GatherOptions::default()))
        .await
        .unwrap();
    assert_eq!(gathered.probe_batches, PROBE_COUNT);
    let (instance, databases, report) = in_process(&lab);
    assert_eq!(gathered.instance, instance);
    // The world keeps no module text: over TDS the scan fails per database and the code is
    // not evaluated, as in process.
    assert!(databases.iter().all(|d| d.code.is_none()));
    assert_eq!(gathered.module_batches, databases.len());
    assert_eq!(gathered.module_scan_errors.len(), databases.len());
    assert!(
        gathered.module_scan_errors[0].1.contains("208"),
        "{:?}",
        gathered.module_scan_errors
    );
    assert_eq!(gathered.databases, databases);
    let over_tds = lab.sim.with_world(|w| {
        assess(
            &gathered.instance,
            &gathered.databases,
            Some(&w.target_facts()),
            &options(w),
        )
    });
    assert_eq!(over_tds, report);

    // What the lab says: ToyStore ready, Customer360 not, for the reasons the lab names.
    assert_ne!(over_tds.verdict_of("ToyStore"), Some(Verdict::NotReady));
    assert_eq!(over_tds.verdict_of("Customer360"), Some(Verdict::NotReady));
    assert!(blockers(&over_tds, Some("ToyStore")).is_empty());
    let mut c360 = blockers(&over_tds, Some("Customer360"));
    c360.sort();
    assert_eq!(
        c360,
        [
            "FileStream",
            "Link.FullBackup",
            "Link.RecoveryModel",
            "MultipleLogFiles"
        ]
    );
    assert!(blockers(&over_tds, None).is_empty());
}

#[tokio::test]
async fn a_world_built_from_real_facts_gives_them_back_over_tds() {
    let mut facts = fixtures::tailspin();
    facts
        .database_mut("ToyStore")
        .unwrap()
        .catalog
        .as_mut()
        .unwrap()
        .objects_named_next = vec!["dbo.NEXT".into()];
    let lab = Lab::from_facts(
        &facts.instance,
        &facts.databases,
        &facts.target,
        SimConfig {
            start: facts.options.now,
            ..SimConfig::with_seed(3)
        },
        &DatabaseName::new("ToyStore").unwrap(),
    )
    .unwrap();
    let wire = serve(&lab).await;
    let source = TdsFactSource::new(wire.connection());
    let options = GatherOptions {
        modules: ModuleScan::Off,
        ..GatherOptions::default()
    };
    let gathered = bounded(gather_instance_facts(&source, &options))
        .await
        .unwrap();
    let (instance, mut databases, _) = in_process(&lab);
    assert_eq!(gathered.instance, instance);
    // Module text is not kept by the world (its code facts come from the recording), and the
    // catalog probe orders Windows principals by name.
    for d in &mut databases {
        d.code = None;
        if let Some(users) = d.catalog.as_mut().and_then(|c| c.windows_users.as_mut()) {
            users.sort_by(|a, b| a.name.cmp(&b.name));
        }
    }
    assert_eq!(gathered.databases, databases);
    let c360 = gathered
        .databases
        .iter()
        .find(|d| d.name.as_str() == "Customer360")
        .unwrap();
    let catalog = c360.catalog.as_ref().unwrap();
    assert_eq!(catalog.filestream_files, 1);
    assert_eq!(catalog.filetables, 1);
    assert_eq!(c360.log_files.len(), 2);
}

#[tokio::test]
async fn a_read_only_batch_that_is_no_probe_keeps_its_error() {
    let lab = Lab::tailspin(1).unwrap();
    let wire = serve(&lab).await;
    let connection = wire.connection();
    let err = bounded(connection.simple_query(
        "SET NOCOUNT ON; SELECT name FROM msdb.dbo.sysjobhistory;",
        crate::sqlserver::connection::CommandKind::Probe,
    ))
    .await
    .unwrap_err();
    assert_eq!(err.number(), Some(208), "{err}");
    // A batch that does not parse and is no probe is a syntax error.
    let err = bounded(connection.simple_query(
        "SELECT FROM WHERE;",
        crate::sqlserver::connection::CommandKind::Probe,
    ))
    .await
    .unwrap_err();
    assert_eq!(err.number(), Some(102), "{err}");
}
