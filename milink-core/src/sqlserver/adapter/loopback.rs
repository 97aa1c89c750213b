//! The adapter against the simulator's loopback TDS server, through tiberius: logins and TLS,
//! typed errors, "already exists" answers, the link's state and the workload over the wire, the
//! public key, a connection lost mid-query and a command timeout.
//!
//! The handlers here are scripted: they answer by which statement or catalog view the batch
//! text mentions, with recorded rowsets, and parse no SQL.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use super::*;
use crate::lifecycle::AvailabilityMode;
use crate::names::{AgName, CertificateName, MiFqdn};
use crate::secret::Secret;
use crate::sim::tds::{
    Column, Login, Outcome, Param, ResultSet as WireSet, SessionInfo, SqlError as WireError,
    SqlType, TdsHandler, TdsServer, TdsServerConfig, Value as WireValue,
};
use crate::sqlserver::connection::{
    ConnectError, ConnectOptions, ConnectOptionsBuilder, Encryption,
};
use crate::sqlserver::rows::{DateTime, Row, Value};
use crate::time::{Clock, Timer, Timestamp};

const USER: &str = "milink";
const PASSWORD: &str = "S3cret!pw";
const MASTER_KEY_PASSWORD: &str = "Str0ng!MasterKey#1";
/// 10^25 - 1, the largest numeric(25,0).
const MAX_LSN: i128 = 9_999_999_999_999_999_999_999_999;
const PROBE_LIMIT: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------- the scripted server

type Answer = dyn Fn(&str) -> Vec<Outcome> + Send + Sync;

/// Answers batches with `answer`; records each batch with its session's id. A batch that
/// mentions `hang_on` is never answered, once: the handler opens the gate and waits forever.
struct Scripted {
    answer: Box<Answer>,
    seen: Mutex<Vec<(u16, String)>>,
    hang_on: Option<&'static str>,
    hung: AtomicBool,
    gate: watch::Sender<bool>,
}

#[async_trait]
impl TdsHandler for Scripted {
    async fn login(&self, login: &Login) -> Result<(), WireError> {
        if login.user == USER && login.password.expose() == PASSWORD {
            Ok(())
        } else {
            Err(WireError::login_failed(&login.user))
        }
    }

    async fn batch(&self, session: &SessionInfo, sql: &str, _params: &[Param]) -> Vec<Outcome> {
        self.seen
            .lock()
            .unwrap()
            .push((session.spid, sql.to_owned()));
        if let Some(needle) = self.hang_on
            && sql.contains(needle)
            && !self.hung.swap(true, Ordering::SeqCst)
        {
            self.gate.send_replace(true);
            std::future::pending::<()>().await;
        }
        (self.answer)(sql)
    }
}

struct Lab {
    server: TdsServer,
    handler: Arc<Scripted>,
    gate: watch::Receiver<bool>,
    /// The server's certificate, as a file the client trusts.
    ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl Lab {
    async fn start(answer: impl Fn(&str) -> Vec<Outcome> + Send + Sync + 'static) -> Lab {
        Lab::start_hanging(None, answer).await
    }

    async fn start_hanging(
        hang_on: Option<&'static str>,
        answer: impl Fn(&str) -> Vec<Outcome> + Send + Sync + 'static,
    ) -> Lab {
        let (gate_tx, gate) = watch::channel(false);
        let handler = Arc::new(Scripted {
            answer: Box::new(answer),
            seen: Mutex::new(Vec::new()),
            hang_on,
            hung: AtomicBool::new(false),
            gate: gate_tx,
        });
        let server = TdsServer::start(TdsServerConfig::default(), handler.clone())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("server.der");
        std::fs::write(&ca, server.certificate_der()).unwrap();
        Lab {
            server,
            handler,
            gate,
            ca,
            _dir: dir,
        }
    }

    /// Options for this server: the SQL login, the certificate trusted, no automatic retries.
    fn options(&self, encryption: Encryption) -> ConnectOptionsBuilder {
        ConnectOptions::builder("127.0.0.1")
            .port(self.server.addr().port())
            .sql_login(USER, Secret::new(PASSWORD))
            .encryption(encryption)
            .trusted_ca(&self.ca)
            .reconnect_attempts(0)
    }

    fn adapter(&self, encryption: Encryption) -> SqlServerAdapter {
        adapter(
            self.options(encryption).build().unwrap(),
            Arc::new(NeverTimer),
        )
    }

    fn seen(&self) -> Vec<(u16, String)> {
        self.handler.seen.lock().unwrap().clone()
    }
}

fn adapter(options: ConnectOptions, timer: Arc<dyn Timer>) -> SqlServerAdapter {
    SqlServerAdapter::new(
        Connection::new(options, timer),
        RenderContext::new(Secret::new(MASTER_KEY_PASSWORD)),
    )
}

/// A timer whose sleeps never end: only the server decides.
struct NeverTimer;

impl Clock for NeverTimer {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(1_000_000)
    }
}

#[async_trait]
impl Timer for NeverTimer {
    async fn sleep_until(&self, _deadline: Timestamp) {
        std::future::pending::<()>().await;
    }
}

/// A timer whose first sleep of exactly [`PROBE_LIMIT`] ends once the gate opens (the handler
/// opens it when it has the batch it will never answer); every other sleep never ends.
struct ProbeTimer {
    gate: watch::Receiver<bool>,
    used: AtomicBool,
}

impl Clock for ProbeTimer {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(1_000_000)
    }
}

#[async_trait]
impl Timer for ProbeTimer {
    async fn sleep_until(&self, deadline: Timestamp) {
        if deadline.since(self.now()) == PROBE_LIMIT && !self.used.swap(true, Ordering::SeqCst) {
            let mut gate = self.gate.clone();
            if gate.wait_for(|open| *open).await.is_ok() {
                return;
            }
        }
        std::future::pending::<()>().await;
    }
}

/// A guard so a broken test fails instead of hanging; the tests never wait on it.
async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("the test should not take this long")
}

fn rows(columns: Vec<Column>, rows: Vec<Vec<WireValue>>) -> Outcome {
    Outcome::Rows(WireSet { columns, rows })
}

fn error(number: u32, message: &str) -> Outcome {
    Outcome::Error(WireError::new(number, 16, message))
}

fn nvarchar(name: &str) -> Column {
    Column::new(name, SqlType::NVarChar(Some(256)))
}

fn s(text: &str) -> WireValue {
    WireValue::String(text.to_owned())
}

fn db(name: &str) -> DatabaseName {
    DatabaseName::new(name).unwrap()
}

fn link() -> LinkName {
    LinkName::new("tailspin-link").unwrap()
}

/// What the rows of `set` are when read in-process, without the wire.
fn in_process(set: &WireSet) -> Vec<Row> {
    set.rows
        .iter()
        .map(|values| {
            let mut row = Row::new();
            for (column, value) in set.columns.iter().zip(values) {
                row.push(column.name.clone(), in_process_value(value));
            }
            row
        })
        .collect()
}

fn in_process_value(value: &WireValue) -> Value {
    match value {
        WireValue::Null => Value::Null,
        WireValue::String(s) => Value::String(s.clone()),
        WireValue::Binary(b) => Value::Bytes(b.clone()),
        WireValue::Numeric { value, scale } => Value::Numeric {
            value: *value,
            scale: *scale,
        },
        WireValue::Int(n) => Value::Int(i64::from(*n)),
        WireValue::BigInt(n) => Value::Int(*n),
        WireValue::SmallInt(n) => Value::Int(i64::from(*n)),
        WireValue::TinyInt(n) => Value::Int(i64::from(*n)),
        WireValue::Bit(b) => Value::Bool(*b),
        WireValue::DateTime(t) => Value::DateTime(DateTime::from(*t)),
        WireValue::Guid(g) => Value::Guid(*g),
    }
}

// ---------------------------------------------------------------- recorded rowsets

fn at(millis: u64) -> WireValue {
    WireValue::DateTime(Timestamp::from_millis(millis))
}

/// `probe_replica_states` on SQL Server, the asynchronous primary of a link whose connection
/// to the instance is down.
fn replica_states() -> WireSet {
    let columns = vec![
        nvarchar("ag_name"),
        nvarchar("replica_server_name"),
        nvarchar("endpoint_url"),
        nvarchar("availability_mode_desc"),
        Column::new("is_local", SqlType::Bit),
        nvarchar("role_desc"),
        nvarchar("operational_state_desc"),
        nvarchar("connected_state_desc"),
        nvarchar("synchronization_health_desc"),
        Column::new("last_connect_error_number", SqlType::Int),
        Column::new("last_connect_error_description", SqlType::NVarChar(None)),
    ];
    let rows = vec![
        vec![
            s("tailspin-link"),
            s("AG_ToyStore"),
            s("TCP://10.0.0.4:5022"),
            s("ASYNCHRONOUS_COMMIT"),
            WireValue::Bit(true),
            s("PRIMARY"),
            s("ONLINE"),
            s("CONNECTED"),
            s("NOT_HEALTHY"),
            WireValue::Null,
            WireValue::Null,
        ],
        vec![
            s("tailspin-link"),
            s("AG_ToyStore_MI"),
            s("tcp://tailspin-mi.abc123.database.windows.net:5022;Server=[tailspin-mi]"),
            s("ASYNCHRONOUS_COMMIT"),
            WireValue::Bit(false),
            s("SECONDARY"),
            WireValue::Null,
            s("DISCONNECTED"),
            s("NOT_HEALTHY"),
            WireValue::Int(41986),
            s("The connection to the secondary replica failed."),
        ],
    ];
    WireSet { columns, rows }
}

/// `probe_database_replica_states`: ToyStore replicating (the instance's hardened LSN as text,
/// SQL Server's end of log as numeric(25,0), both 10^25 - 1), Customer360 seeding.
fn database_replica_states() -> WireSet {
    let lsn_text = || Column::new("", SqlType::VarChar(Some(25)));
    let named = |mut c: Column, name: &str| {
        c.name = name.to_owned();
        c
    };
    let columns = vec![
        nvarchar("database_name"),
        nvarchar("ag_name"),
        nvarchar("replica_server_name"),
        Column::new("is_local", SqlType::Bit),
        Column::new("is_primary_replica", SqlType::Bit),
        nvarchar("synchronization_state_desc"),
        nvarchar("synchronization_health_desc"),
        named(lsn_text(), "last_hardened_lsn"),
        named(lsn_text(), "last_commit_lsn"),
        Column::new(
            "end_of_log_lsn",
            SqlType::Numeric {
                precision: 25,
                scale: 0,
            },
        ),
        Column::new("last_commit_time", SqlType::DateTime2(3)),
        Column::new("log_send_queue_size", SqlType::BigInt),
        Column::new("redo_queue_size", SqlType::BigInt),
        Column::new("secondary_lag_seconds", SqlType::BigInt),
    ];
    let max_text = s(&MAX_LSN.to_string());
    let max = WireValue::Numeric {
        value: MAX_LSN,
        scale: 0,
    };
    let rows = vec![
        vec![
            s("Customer360"),
            s("tailspin-link"),
            s("AG_ToyStore"),
            WireValue::Bit(true),
            WireValue::Bit(true),
            s("NOT SYNCHRONIZING"),
            s("NOT_HEALTHY"),
            WireValue::Null,
            WireValue::Null,
            WireValue::Null,
            WireValue::Null,
            WireValue::Null,
            WireValue::Null,
            WireValue::Null,
        ],
        vec![
            s("ToyStore"),
            s("tailspin-link"),
            s("AG_ToyStore"),
            WireValue::Bit(true),
            WireValue::Bit(true),
            s("SYNCHRONIZING"),
            s("HEALTHY"),
            WireValue::Null,
            max_text.clone(),
            max,
            at(1_764_139_263_250),
            WireValue::Null,
            WireValue::Null,
            WireValue::Null,
        ],
        vec![
            s("ToyStore"),
            s("tailspin-link"),
            s("AG_ToyStore_MI"),
            WireValue::Bit(false),
            WireValue::Bit(false),
            s("SYNCHRONIZING"),
            s("HEALTHY"),
            max_text,
            s("71000009400000001"),
            WireValue::Numeric { value: 0, scale: 0 },
            at(1_764_139_260_000),
            WireValue::BigInt(120),
            WireValue::BigInt(8),
            WireValue::BigInt(3),
        ],
    ];
    WireSet { columns, rows }
}

/// `probe_seeding_stats`: Customer360 two-fifths seeded.
fn seeding_stats() -> WireSet {
    let big = |name: &str| Column::new(name, SqlType::BigInt);
    let columns = vec![
        nvarchar("local_database_name"),
        nvarchar("current_state"),
        Column::new("is_source", SqlType::Bit),
        nvarchar("internal_state_desc"),
        big("database_size_bytes"),
        big("transferred_size_bytes"),
        big("transfer_rate_bytes_per_second"),
        big("total_disk_io_wait_time_ms"),
        big("total_network_wait_time_ms"),
        Column::new("is_compression_enabled", SqlType::Bit),
        Column::new("start_time_utc", SqlType::DateTime2(3)),
        Column::new("estimate_time_complete_utc", SqlType::DateTime2(3)),
        Column::new("completion_time", SqlType::DateTime),
        Column::new("number_of_attempts", SqlType::Int),
    ];
    let rows = vec![vec![
        s("Customer360"),
        s("SEEDING"),
        WireValue::Bit(true),
        s("ReadingAndSendingData"),
        WireValue::BigInt(10_000_000_000),
        WireValue::BigInt(4_000_000_000),
        WireValue::BigInt(50_000_000),
        WireValue::BigInt(12),
        WireValue::BigInt(340),
        WireValue::Bit(true),
        at(1_764_139_000_000),
        WireValue::Null,
        WireValue::Null,
        WireValue::Int(1),
    ]];
    WireSet { columns, rows }
}

/// `readiness::instance_properties`, the columns the view reads and a few others.
fn instance_properties() -> WireSet {
    let columns = vec![
        nvarchar("product_version"),
        nvarchar("product_update_level"),
        nvarchar("edition"),
        Column::new("is_hadr_enabled", SqlType::Int),
        Column::new("master_key_present", SqlType::Bit),
    ];
    let rows = vec![vec![
        s("16.0.4125.3"),
        s("CU13"),
        s("Developer Edition (64-bit)"),
        WireValue::Int(1),
        WireValue::Bit(true),
    ]];
    WireSet { columns, rows }
}

/// `probe_workload_activity`: one idle session, one with an open transaction.
fn workload() -> WireSet {
    let columns = vec![
        Column::new("session_id", SqlType::SmallInt),
        nvarchar("database_name"),
        nvarchar("login_name"),
        nvarchar("host_name"),
        nvarchar("program_name"),
        nvarchar("status"),
        Column::new("open_transactions", SqlType::Int),
        Column::new("oldest_transaction_begin", SqlType::DateTime2(7)),
    ];
    let rows = vec![
        vec![
            WireValue::SmallInt(57),
            s("ToyStore"),
            s("shop_app"),
            WireValue::Null,
            WireValue::Null,
            s("sleeping"),
            WireValue::Int(0),
            WireValue::Null,
        ],
        vec![
            WireValue::SmallInt(61),
            s("ToyStore"),
            s("CONTOSO\\batch"),
            s("APP02"),
            s("nightly import"),
            s("running"),
            WireValue::Int(2),
            at(1_764_139_000_123),
        ],
    ];
    WireSet { columns, rows }
}

/// The public key a `CERTENCODED` read returns.
fn der() -> Vec<u8> {
    let mut der = vec![0x30, 0x82, 0x03, 0x0A];
    der.extend((0..778u32).map(|i| (i % 251) as u8));
    der
}

/// The answers of a SQL Server that holds the link: probes by the catalog view or function
/// they read, changes by their statement; errors for DAGs named `err-<number>`.
fn sql_server(sql: &str) -> Vec<Outcome> {
    // The role guards of failovers read the replica states too; only the link's probes read
    // the seeding statistics.
    if sql.contains("sys.dm_hadr_physical_seeding_stats") {
        return [
            replica_states(),
            database_replica_states(),
            seeding_stats(),
            instance_properties(),
        ]
        .into_iter()
        .map(Outcome::Rows)
        .collect();
    }
    if sql.contains("sys.dm_exec_sessions") {
        return vec![Outcome::Rows(workload())];
    }
    if sql.contains("CERTENCODED") {
        let key = if sql.contains("N'Cert_missing'") {
            WireValue::Null
        } else {
            WireValue::Binary(der())
        };
        return vec![rows(
            vec![Column::new("PublicKey", SqlType::VarBinary(None))],
            vec![vec![key]],
        )];
    }
    if sql.contains("CREATE MASTER KEY") {
        return vec![error(
            15578,
            "There is already a master key in the database. Please drop it before performing \
             this statement.",
        )];
    }
    if sql.contains("WITH (DISTRIBUTED)") {
        return vec![error(
            19509,
            "Cannot create a distributed availability group 'tailspin-link'. An availability \
             group with the same name already exists.",
        )];
    }
    if sql.contains("[MicrosoftPKI]") {
        return vec![error(
            15232,
            "A certificate with name 'MicrosoftPKI' already exists or this certificate already \
             has been added to the database.",
        )];
    }
    if let Some(at) = sql.find("[err-") {
        let digits: String = sql[at + 5..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        return vec![error(digits.parse().unwrap(), "scripted failure")];
    }
    vec![Outcome::Count(0)]
}

// ---------------------------------------------------------------- logins and TLS

#[tokio::test]
async fn tds_logs_in_with_mandatory_and_strict_encryption_trusting_the_certificate_file() {
    let lab = Lab::start(sql_server).await;
    for encryption in [Encryption::Mandatory, Encryption::Strict] {
        let adapter = lab.adapter(encryption);
        assert!(!adapter.connection().options().trusts_server_certificate());
        assert!(adapter.connection_warnings().is_empty());
        bounded(adapter.connection().connect()).await.unwrap();
        assert!(adapter.connection().is_open().await, "{encryption:?}");
        let activity = bounded(adapter.workload_activity(&[db("ToyStore")]))
            .await
            .unwrap();
        assert_eq!(activity.sessions.len(), 2, "{encryption:?}");
    }
}

#[tokio::test]
async fn tds_a_bad_password_is_the_typed_18456() {
    let lab = Lab::start(sql_server).await;
    let wrong = "Wr0ng!Pa55word-7f3";
    for encryption in [Encryption::Mandatory, Encryption::Strict] {
        let options = lab
            .options(encryption)
            .sql_login(USER, Secret::new(wrong))
            .build()
            .unwrap();
        let adapter = adapter(options, Arc::new(NeverTimer));
        let e = bounded(adapter.execute(&SourceOp::EnsureMasterKey))
            .await
            .unwrap_err();
        assert_eq!(e.kind, PortErrorKind::Sql(18456), "{encryption:?}: {e}");
        assert!(!e.transient);
        assert!(
            e.message.contains("check the login name and password"),
            "{e}"
        );
        assert!(e.message.contains(USER), "{e}");
        for shown in [e.message.clone(), format!("{e:?}"), format!("{adapter:?}")] {
            assert!(!shown.contains(wrong), "{shown}");
            assert!(!shown.contains(MASTER_KEY_PASSWORD), "{shown}");
        }
    }
    assert!(lab.seen().is_empty(), "no batch runs without a login");
}

#[tokio::test]
async fn tds_an_untrusted_server_certificate_is_the_typed_tls_error() {
    let lab = Lab::start(sql_server).await;
    let other = Lab::start(sql_server).await;
    for encryption in [Encryption::Mandatory, Encryption::Strict] {
        // The other server's certificate is trusted, not this one's.
        let options = lab
            .options(encryption)
            .trusted_ca(&other.ca)
            .build()
            .unwrap();
        let adapter = adapter(options, Arc::new(NeverTimer));
        let connect = bounded(adapter.connection().connect()).await.unwrap_err();
        assert!(
            matches!(connect, ConnectionError::Connect(ConnectError::Tls { .. })),
            "{encryption:?}: {connect:?}"
        );
        let e = bounded(adapter.link_state(&link(), &[db("ToyStore")]))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "tls", "{e}");
        assert!(!e.transient);
        assert!(e.message.contains("TrustServerCertificate=true"), "{e}");
    }
}

#[tokio::test]
async fn tds_trust_server_certificate_is_honoured_when_asked_for() {
    let lab = Lab::start(sql_server).await;
    let options = ConnectOptions::from_connection_string(&format!(
        "Server=tcp:127.0.0.1,{};User ID={USER};Password={PASSWORD};TrustServerCertificate=true;\
         ConnectRetryCount=0",
        lab.server.addr().port()
    ))
    .unwrap();
    assert!(options.trusts_server_certificate());
    let adapter = adapter(options, Arc::new(NeverTimer));
    assert!(adapter.connection().options().trusts_server_certificate());
    let warnings = adapter.connection_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("not verified"), "{warnings:?}");
    assert!(!warnings[0].contains(PASSWORD), "{warnings:?}");
    bounded(adapter.connection().connect()).await.unwrap();
    let reply = bounded(adapter.execute(&SourceOp::Failover { dag: link() }))
        .await
        .unwrap();
    assert_eq!(reply, SourceReply::Done);
}

// ---------------------------------------------------------------- errors

#[tokio::test]
async fn tds_each_mapped_error_number_reaches_the_caller_typed() {
    let lab = Lab::start(sql_server).await;
    let adapter = lab.adapter(Encryption::Mandatory);
    let cases = [
        (41962, true),
        (41986, true),
        (47521, true),
        (35250, true),
        (40613, true),
        (1412, false),
        (1408, false),
        (41973, false),
        (41974, false),
        (41976, false),
        (19499, false),
        (976, false),
        (50000, false),
    ];
    for (number, transient) in cases {
        let dag = LinkName::new(format!("err-{number}")).unwrap();
        for op in [
            SourceOp::Failover { dag: dag.clone() },
            SourceOp::SetAvailabilityMode {
                dag,
                sql_ag: AgName::new("AG_ToyStore").unwrap(),
                mi_ag: AgName::new("AG_ToyStore_MI").unwrap(),
                mode: AvailabilityMode::SynchronousCommit,
            },
        ] {
            let e = bounded(adapter.execute(&op)).await.unwrap_err();
            assert_eq!(e.kind, PortErrorKind::Sql(number), "{e}");
            assert_eq!(e.transient, transient, "{number}: {e}");
            assert!(e.message.contains("scripted failure"), "{e}");
            let known = crate::sqlserver::errors::known_error(number);
            if let Some(k) = known {
                assert!(e.message.contains(k.fix), "{number}: the fix is named: {e}");
            }
        }
    }
    // The connection stayed open through every error: one login for all the batches.
    let spids: std::collections::BTreeSet<u16> = lab.seen().iter().map(|(s, _)| *s).collect();
    assert_eq!(spids.len(), 1);
}

#[tokio::test]
async fn tds_already_exists_counts_only_where_the_policy_says() {
    let lab = Lab::start(sql_server).await;
    let adapter = lab.adapter(Encryption::Strict);

    // 15578 on the master key: the goal holds. The password reached the server, and only it.
    let reply = bounded(adapter.execute(&SourceOp::EnsureMasterKey))
        .await
        .unwrap();
    assert_eq!(reply, SourceReply::Done);
    let seen = lab.seen();
    assert!(seen[0].1.contains(MASTER_KEY_PASSWORD));

    // 15232 on the first root CA: success, and the second CA's batch still runs.
    let reply = bounded(adapter.execute(&SourceOp::EnsureRootCaTrust))
        .await
        .unwrap();
    assert_eq!(reply, SourceReply::Done);
    let seen = lab.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen[1].1.contains("[MicrosoftPKI]"));
    assert!(seen[2].1.contains("[DigiCertPKI]"));

    // 19509 on the DAG: an ordinary AG holds the name; that is no success.
    let dag = SourceOp::CreateDistributedAvailabilityGroup {
        spec: tsql::CreateDagSpec {
            dag: link(),
            sql_ag: AgName::new("AG_ToyStore").unwrap(),
            sql_listener_url: "TCP://10.0.0.4:5022".to_owned(),
            mi_ag: AgName::new("AG_ToyStore_MI").unwrap(),
            mi_fqdn: MiFqdn::new("tailspin-mi.abc123.database.windows.net").unwrap(),
            mi_database: None,
            session_timeout_s: 20,
        },
    };
    let e = bounded(adapter.execute(&dag)).await.unwrap_err();
    assert_eq!(e.kind, PortErrorKind::Sql(19509), "{e}");
    assert!(!e.transient);
    assert!(e.message.contains("choose another link name"), "{e}");

    // 15578 does not count for another op.
    let other = Lab::start(|_| vec![error(15578, "There is already a master key")]).await;
    let e = bounded(
        other
            .adapter(Encryption::Mandatory)
            .execute(&SourceOp::Failover { dag: link() }),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, PortErrorKind::Sql(15578));
}

// ---------------------------------------------------------------- reads

#[tokio::test]
async fn tds_link_state_over_the_wire_equals_the_parsers_view_of_the_same_rowsets() {
    let lab = Lab::start(sql_server).await;
    let adapter = lab.adapter(Encryption::Mandatory);
    let databases = [db("ToyStore"), db("Orders")];
    let wire = bounded(adapter.link_state(&link(), &databases))
        .await
        .unwrap();

    let version = parse::product_version(&in_process(&instance_properties())).unwrap();
    let expected = parse::parse_source_side_view(
        &databases,
        &in_process(&replica_states()),
        &in_process(&database_replica_states()),
        &in_process(&seeding_stats()),
        Some(version),
    )
    .unwrap();
    assert_eq!(wire, expected);

    // And the view says what the rowsets say.
    let max = crate::names::Lsn::new(MAX_LSN as u128).unwrap();
    assert!(wire.exists && !wire.connected);
    let names: Vec<&str> = wire.databases.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["ToyStore", "Orders", "Customer360"]);
    let toy = &wire.databases[0];
    assert_eq!(toy.end_of_log_lsn, Some(max));
    assert_eq!(toy.last_commit_lsn, Some(max));
    assert_eq!(toy.last_hardened_lsn, None, "NULL stays NULL");
    assert_eq!(toy.partner.as_ref().unwrap().last_hardened_lsn, Some(max));
    assert_eq!(toy.log_send_queue_kb, Some(120));
    assert_eq!(
        toy.last_error.as_deref(),
        Some("sql:41986: The connection to the secondary replica failed.")
    );
    assert_eq!(wire.databases[2].seeding_percent, Some(40));
    assert_eq!(wire.version.unwrap().to_string(), "16.0.4125.3");

    // One round trip.
    let seen = lab.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].1, link_state_batch(&link()).expose_sql());
}

#[tokio::test]
async fn tds_workload_activity_over_the_wire_equals_the_parsers() {
    let lab = Lab::start(sql_server).await;
    let adapter = lab.adapter(Encryption::Strict);
    let activity = bounded(adapter.workload_activity(&[db("ToyStore")]))
        .await
        .unwrap();
    assert_eq!(
        activity,
        parse::workload_activity(&in_process(&workload())).unwrap()
    );
    assert_eq!(activity.sessions[1].open_transactions, 2);
    assert_eq!(
        activity.sessions[1].oldest_transaction_start,
        Some(Timestamp::from_millis(1_764_139_000_123))
    );
}

#[tokio::test]
async fn tds_the_exported_public_key_arrives_as_bytes() {
    let lab = Lab::start(sql_server).await;
    let adapter = lab.adapter(Encryption::Mandatory);
    let reply = bounded(adapter.execute(&SourceOp::ExportCertificatePublicKey {
        name: CertificateName::new("Cert_TailspinSql_endpoint").unwrap(),
    }))
    .await
    .unwrap();
    assert_eq!(reply, SourceReply::PublicKey(der()));
    // NULL: no certificate of that name.
    let e = bounded(adapter.execute(&SourceOp::ExportCertificatePublicKey {
        name: CertificateName::new("Cert_missing").unwrap(),
    }))
    .await
    .unwrap_err();
    assert_eq!(e.kind, PortErrorKind::Sql(15151), "{e}");
    assert!(!e.transient);
    assert!(e.message.contains("Cert_missing"), "{e}");
}

#[tokio::test]
async fn tds_a_surprising_rowset_is_a_typed_error_not_a_panic() {
    // Two result sets where four are expected; then the right count with a mistyped column.
    let short = Lab::start(|_| {
        vec![
            Outcome::Rows(replica_states()),
            Outcome::Rows(instance_properties()),
        ]
    })
    .await;
    let e = bounded(
        short
            .adapter(Encryption::Mandatory)
            .link_state(&link(), &[]),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (e.code().as_str(), e.transient),
        (ROWSET_CODE, false),
        "{e}"
    );

    let mistyped = Lab::start(|_| {
        let mut replicas = replica_states();
        replicas.columns[4] = nvarchar("is_local");
        for row in &mut replicas.rows {
            row[4] = s("maybe");
        }
        [
            replicas,
            database_replica_states(),
            seeding_stats(),
            instance_properties(),
        ]
        .into_iter()
        .map(Outcome::Rows)
        .collect()
    })
    .await;
    let adapter = mistyped.adapter(Encryption::Mandatory);
    let e = bounded(adapter.link_state(&link(), &[])).await.unwrap_err();
    assert_eq!(e.code(), ROWSET_CODE, "{e}");
    assert!(e.message.contains("is_local"), "{e}");
    // The workload probe and the key read answered with four result sets.
    let e = bounded(adapter.workload_activity(&[db("ToyStore")]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ROWSET_CODE, "{e}");
    let e = bounded(adapter.execute(&SourceOp::ExportCertificatePublicKey {
        name: CertificateName::new("Cert_TailspinSql_endpoint").unwrap(),
    }))
    .await
    .unwrap_err();
    assert_eq!(e.code(), ROWSET_CODE, "{e}");
}

// ---------------------------------------------------------------- broken connections

#[tokio::test]
async fn tds_a_server_that_closes_mid_query_is_transient_and_the_next_call_reconnects() {
    let closed = Arc::new(AtomicBool::new(false));
    let once = closed.clone();
    let lab = Lab::start(move |sql| {
        if sql.contains("FAILOVER") && !once.swap(true, Ordering::SeqCst) {
            vec![Outcome::Close]
        } else {
            sql_server(sql)
        }
    })
    .await;
    let adapter = lab.adapter(Encryption::Mandatory);
    bounded(adapter.execute(&SourceOp::EnsureMasterKey))
        .await
        .unwrap();
    let e = bounded(adapter.execute(&SourceOp::Failover { dag: link() }))
        .await
        .unwrap_err();
    assert!(e.transient, "{e}");
    assert_eq!(e.kind, PortErrorKind::Io, "{e}");
    assert!(!adapter.connection().is_open().await);

    let reply = bounded(adapter.execute(&SourceOp::Failover { dag: link() }))
        .await
        .unwrap();
    assert_eq!(reply, SourceReply::Done);
    let seen = lab.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].0, seen[1].0, "the same connection until it broke");
    assert_ne!(seen[1].0, seen[2].0, "a new connection after it");
}

#[tokio::test]
async fn tds_a_probe_that_gets_no_answer_times_out_and_the_next_call_reconnects() {
    let lab = Lab::start_hanging(Some("sys.dm_hadr_physical_seeding_stats"), sql_server).await;
    let timer = Arc::new(ProbeTimer {
        gate: lab.gate.clone(),
        used: AtomicBool::new(false),
    });
    let options = lab
        .options(Encryption::Strict)
        .command_timeout(CommandKind::Probe, PROBE_LIMIT)
        .build()
        .unwrap();
    let adapter = adapter(options, timer);
    let e = bounded(adapter.link_state(&link(), &[db("ToyStore")]))
        .await
        .unwrap_err();
    assert_eq!(e.kind, PortErrorKind::Timeout, "{e}");
    assert!(e.transient);
    assert!(e.message.contains("did not finish within 3s"), "{e}");

    let view = bounded(adapter.link_state(&link(), &[db("ToyStore")]))
        .await
        .unwrap();
    assert!(view.exists);
    let seen = lab.seen();
    assert_eq!(seen.len(), 2);
    assert_ne!(
        seen[0].0, seen[1].0,
        "the timed-out connection is not reused"
    );
}
