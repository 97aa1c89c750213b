//! Gathering over real TDS: a scripted server answers the readiness probes with the lab's
//! recorded result sets (typed as the probes document their columns), and the facts and the
//! report must equal those gathered in-process from the same recording.
//!
//! The server tells the probes apart by the first table or table variable after a `FROM` in
//! the batch (`sys.configurations` for the instance properties, `@flags` for the trace flags,
//! `[db].sys.sql_modules` for module text, …), never by comparing with milink's builders.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::*;
use crate::assess::fixtures::{self, RecordedSource};
use crate::assess::{GatherError, GatherOptions, ModuleScan, assess, gather_instance_facts};
use crate::sim::tds::{
    Column, Login, Outcome, Param, ResultSet as WireSet, SessionInfo, SqlError as WireError,
    SqlType, TdsHandler, Value as WireValue,
};
use crate::sqlserver::testkit::{Lab, PASSWORD, USER, bounded};
use crate::tsql::readiness::{self, PROBE_COUNT};

/// Answers readiness probes from a [`RecordedSource`]; one probe may answer an error instead.
struct RecordedServer {
    source: RecordedSource,
    fail: Option<(&'static str, WireError)>,
    seen: Mutex<Vec<&'static str>>,
}

impl RecordedServer {
    fn new(source: RecordedSource) -> Self {
        RecordedServer {
            source,
            fail: None,
            seen: Mutex::new(Vec::new()),
        }
    }

    fn failing(mut self, purpose: &'static str, error: WireError) -> Self {
        self.fail = Some((purpose, error));
        self
    }

    fn seen(&self) -> Vec<&'static str> {
        self.seen.lock().unwrap().clone()
    }
}

#[async_trait]
impl TdsHandler for RecordedServer {
    async fn login(&self, login: &Login) -> Result<(), WireError> {
        if login.user == USER && login.password.expose() == PASSWORD {
            Ok(())
        } else {
            Err(WireError::login_failed(&login.user))
        }
    }

    async fn batch(&self, _session: &SessionInfo, sql: &str, _params: &[Param]) -> Vec<Outcome> {
        let Some(purpose) = first_table(sql).and_then(|t| probe_of(&t)) else {
            return vec![Outcome::Error(WireError::new(
                208,
                16,
                "Invalid object name: no readiness probe reads this.",
            ))];
        };
        self.seen.lock().unwrap().push(purpose);
        if let Some((_, e)) = self.fail.as_ref().filter(|(p, _)| *p == purpose) {
            return vec![Outcome::Error(e.clone())];
        }
        match self
            .source
            .query(&Batch::new(purpose, sql.to_owned()))
            .await
        {
            // The statements before the final SELECT (SET NOCOUNT ON, a temp table) answer
            // row counts on a real server; the probe's rows come last.
            Ok(rows) => vec![Outcome::Count(0), Outcome::Rows(wire_set(&rows))],
            Err(e) => vec![Outcome::Error(WireError::new(911, 16, e.message))],
        }
    }
}

/// The first table after a `FROM`: the simulated SQL Server tells probes apart the same way.
use crate::sim::sql::readiness::first_table;

/// The probe that reads `table` first.
fn probe_of(table: &str) -> Option<&'static str> {
    let t = table.to_ascii_lowercase();
    Some(match t.as_str() {
        "sys.configurations" => readiness::INSTANCE_PROPERTIES,
        "@flags" => readiness::TRACE_FLAGS,
        "sys.database_mirroring_endpoints" => readiness::MIRRORING_ENDPOINTS,
        "master.sys.certificates" => readiness::CERTIFICATES,
        "msdb.dbo.sysjobs" => readiness::AGENT_JOB_STEPS,
        "sys.server_principals" => readiness::WINDOWS_LOGINS,
        "sys.servers" => readiness::LINKED_SERVERS,
        "sys.databases" => readiness::DATABASES,
        "sys.master_files" => readiness::DATABASE_FILES,
        "sys.filegroups" => readiness::DATABASE_CATALOG,
        _ if t.ends_with(".sys.sql_modules") => readiness::MODULE_TEXT,
        _ => return None,
    })
}

/// The SQL type a readiness probe documents for `column`.
fn documented_type(column: &str) -> SqlType {
    match column {
        "is_hadr_enabled"
        | "cpu_count"
        | "trace_flag"
        | "port"
        | "step_id"
        | "database_id"
        | "file_id"
        | "data_space_id"
        | "ag_database_count"
        | "is_sysadmin"
        | "system_account_permissions"
        | "startup_trace_flags" => SqlType::Int,
        "compatibility_level" => SqlType::TinyInt,
        "physical_memory_mb" | "max_server_memory_mb" | "size_mb" | "value" => SqlType::BigInt,
        c if c.ends_with("_ms") => SqlType::BigInt,
        "master_key_present"
        | "has_certificate_add_issuer"
        | "has_multidb_milink"
        | "last_full_backup_checksum"
        | "job_enabled"
        | "log_chain_established" => SqlType::Bit,
        c if c.starts_with("is_") => SqlType::Bit,
        "thumbprint" | "tde_thumbprint" => SqlType::VarBinary(Some(64)),
        "encoded" => SqlType::VarBinary(None),
        "definition" | "command" => SqlType::NVarChar(None),
        _ => SqlType::NVarChar(Some(4000)),
    }
}

/// A recorded cell as the wire value of its column's type.
fn wire_value(cell: &Cell, ty: SqlType) -> WireValue {
    match (cell, ty) {
        (Cell::Null, _) => WireValue::Null,
        (Cell::Int(i), SqlType::Int) => WireValue::Int(i32::try_from(*i).unwrap()),
        (Cell::Int(i), SqlType::BigInt) => WireValue::BigInt(*i),
        (Cell::Int(i), SqlType::TinyInt) => WireValue::TinyInt(u8::try_from(*i).unwrap()),
        (Cell::Bool(b), SqlType::Bit) => WireValue::Bit(*b),
        (Cell::Text(s), SqlType::NVarChar(_)) => WireValue::String(s.clone()),
        (Cell::Binary(b), SqlType::VarBinary(_)) => WireValue::Binary(b.clone()),
        (cell, ty) => panic!("a recorded {cell:?} in a {ty:?} column"),
    }
}

fn wire_set(rows: &Rows) -> WireSet {
    let columns: Vec<Column> = rows
        .columns()
        .iter()
        .map(|c| Column::new(c.clone(), documented_type(c)))
        .collect();
    let data = rows
        .rows()
        .iter()
        .map(|row| {
            row.iter()
                .zip(&columns)
                .map(|(cell, column)| wire_value(cell, column.ty))
                .collect()
        })
        .collect();
    WireSet {
        columns,
        rows: data,
    }
}

async fn serve(server: RecordedServer) -> (Lab, Arc<RecordedServer>) {
    let server = Arc::new(server);
    (Lab::serve(server.clone()).await, server)
}

#[test]
fn the_scripted_server_finds_each_probe_by_its_first_table() {
    let v = crate::names::SqlVersion::new(16, 0, 4125, 3);
    let mut batches = readiness::version_probes(v);
    batches.insert(0, readiness::instance_properties());
    let found: Vec<_> = batches
        .iter()
        .map(|b| first_table(b.expose_sql()).and_then(|t| probe_of(&t)))
        .collect();
    let purposes: Vec<_> = batches.iter().map(|b| Some(b.purpose())).collect();
    assert_eq!(found, purposes);
    let db = crate::names::DatabaseName::new("Cust]360").unwrap();
    let module = readiness::module_text(&db);
    assert_eq!(
        first_table(module.expose_sql()).as_deref(),
        Some("Cust]360.sys.sql_modules")
    );
}

#[tokio::test]
async fn gathering_over_tds_gives_the_recorded_facts_and_the_same_report() {
    let (lab, server) = serve(RecordedServer::new(RecordedSource::tailspin())).await;
    let source = TdsFactSource::new(lab.connection());
    let options = GatherOptions::default();
    let wire = bounded(gather_instance_facts(&source, &options))
        .await
        .unwrap();
    let local = gather_instance_facts(&RecordedSource::tailspin(), &options)
        .await
        .unwrap();
    assert_eq!(wire, local);
    assert_eq!(wire.probe_batches, PROBE_COUNT);
    assert_eq!(wire.module_batches, 2);

    // The facts are the lab's, and the report is the lab's report.
    let lab_facts = fixtures::tailspin();
    assert_eq!(wire.instance, lab_facts.instance);
    assert_eq!(wire.databases, lab_facts.databases);
    let report = assess(
        &wire.instance,
        &wire.databases,
        Some(&lab_facts.target),
        &lab_facts.options,
    );
    assert_eq!(report, lab_facts.assess());

    // Counted on the server: the probes once each, instance properties first, then module
    // text once per database.
    let seen = server.seen();
    assert_eq!(seen.len(), PROBE_COUNT + 2);
    assert_eq!(seen[0], readiness::INSTANCE_PROPERTIES);
    assert_eq!(
        seen.iter()
            .filter(|p| **p != readiness::MODULE_TEXT)
            .count(),
        PROBE_COUNT
    );
}

#[tokio::test]
async fn five_hundred_databases_cost_the_same_round_trips_as_one() {
    let options = GatherOptions {
        modules: ModuleScan::Off,
        ..GatherOptions::default()
    };
    let mut counts = Vec::new();
    for n in [1usize, 500] {
        let (lab, server) = serve(RecordedServer::new(RecordedSource::with_databases(n))).await;
        let source = TdsFactSource::new(lab.connection());
        let got = bounded(gather_instance_facts(&source, &options))
            .await
            .unwrap();
        assert_eq!(got.databases.len(), n);
        assert_eq!(got.probe_batches, PROBE_COUNT);
        counts.push(server.seen().len());
    }
    assert_eq!(counts, [PROBE_COUNT, PROBE_COUNT]);
}

#[tokio::test]
async fn a_probe_failing_with_a_sql_error_is_a_typed_source_error() {
    let denied = WireError::new(
        229,
        14,
        "The SELECT permission was denied on the object 'sysjobs', database 'msdb', schema 'dbo'.",
    );
    let (lab, server) = serve(
        RecordedServer::new(RecordedSource::tailspin()).failing(readiness::AGENT_JOB_STEPS, denied),
    )
    .await;
    let source = TdsFactSource::new(lab.connection());
    let err = bounded(gather_instance_facts(&source, &GatherOptions::default()))
        .await
        .unwrap_err();
    let GatherError::Source { probe, source: e } = &err else {
        panic!("expected a source error, got {err}");
    };
    assert_eq!(*probe, readiness::AGENT_JOB_STEPS);
    assert_eq!(e.number, Some(229));
    assert!(!e.transient && err.is_remote());
    assert!(e.message.contains("permission was denied"), "{}", e.message);
    assert!(!e.message.contains(PASSWORD) && !format!("{err:?}").contains(PASSWORD));
    // Gathering stops at the failed probe.
    assert_eq!(server.seen().last(), Some(&readiness::AGENT_JOB_STEPS));

    // A transient number stays transient (the connection here does not retry).
    let busy = WireError::new(
        40613,
        17,
        "Database 'master' on server 'x' is not available.",
    );
    let (lab, _server) =
        serve(RecordedServer::new(RecordedSource::tailspin()).failing(readiness::DATABASES, busy))
            .await;
    let source = TdsFactSource::new(lab.connection());
    let err = bounded(gather_instance_facts(&source, &GatherOptions::default()))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
}

#[tokio::test]
async fn a_refused_login_is_a_source_error_without_the_password() {
    let (lab, _server) = serve(RecordedServer::new(RecordedSource::tailspin())).await;
    let options = lab
        .options_without_login()
        .sql_login(USER, crate::secret::Secret::new("wrong-Pa55word"))
        .build()
        .unwrap();
    let connection = Connection::new(options, Arc::new(crate::sqlserver::testkit::NeverTimer));
    let source = TdsFactSource::new(&connection);
    let err = bounded(source.query(&readiness::instance_properties()))
        .await
        .unwrap_err();
    assert_eq!(err.number, Some(18456));
    assert!(!err.message.contains("wrong-Pa55word"), "{}", err.message);
    assert!(!format!("{source:?}").contains("wrong-Pa55word"));
}

#[tokio::test]
async fn the_last_result_set_is_the_answer_and_none_is_an_error() {
    let lab = Lab::start(|sql| {
        if sql.contains("two") {
            vec![
                crate::sqlserver::testkit::rows(
                    vec![Column::new("scratch", SqlType::Int)],
                    vec![vec![WireValue::Int(1)]],
                ),
                crate::sqlserver::testkit::rows(
                    vec![Column::new("answer", SqlType::Int)],
                    vec![vec![WireValue::Int(2)]],
                ),
            ]
        } else {
            vec![Outcome::Count(0)]
        }
    })
    .await;
    let source = TdsFactSource::new(Arc::new(lab.connection()));
    let rows = bounded(source.query(&Batch::new("two", "SELECT two".into())))
        .await
        .unwrap();
    assert_eq!(rows.columns(), ["answer"]);
    assert_eq!(rows.rows(), [vec![Cell::Int(2)]]);
    let err = bounded(source.query(&Batch::new("none", "SET NOCOUNT ON".into())))
        .await
        .unwrap_err();
    assert!(err.message.contains("no result set"), "{}", err.message);
    assert_eq!(lab.seen().len(), 2);
}
