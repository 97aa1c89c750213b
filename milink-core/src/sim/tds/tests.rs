//! The server against the real client (tiberius) on loopback.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tiberius::numeric::Numeric;
use tiberius::time::time::PrimitiveDateTime;
use tiberius::{AuthMethod, Client, Config, EncryptionLevel, Row, Uuid};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use super::*;
use crate::time::Timestamp;

const LSN: i128 = 12_345_678_901_234_567_890_123;
const GUID: [u8; 16] = *b"\x01\x23\x45\x67\x89\xab\xcd\xef\x10\x32\x54\x76\x98\xba\xdc\xfe";
const WHEN_MS: u64 = 1_700_000_000_123;

/// Answers by the SQL text; `ECHO` returns the parameters as one row.
struct Scripted;

fn all_types() -> Vec<Column> {
    [
        ("nv", SqlType::NVarChar(Some(50))),
        ("nvmax", SqlType::NVarChar(None)),
        ("v", SqlType::VarChar(Some(50))),
        (
            "lsn",
            SqlType::Numeric {
                precision: 25,
                scale: 0,
            },
        ),
        (
            "dec",
            SqlType::Numeric {
                precision: 5,
                scale: 2,
            },
        ),
        ("vb", SqlType::VarBinary(Some(100))),
        ("vbmax", SqlType::VarBinary(None)),
        ("i", SqlType::Int),
        ("bi", SqlType::BigInt),
        ("si", SqlType::SmallInt),
        ("ti", SqlType::TinyInt),
        ("b", SqlType::Bit),
        ("dt", SqlType::DateTime),
        ("dt2", SqlType::DateTime2(7)),
        ("g", SqlType::UniqueIdentifier),
    ]
    .into_iter()
    .map(|(name, ty)| Column::new(name, ty))
    .collect()
}

fn all_values() -> Vec<Value> {
    let when = Value::DateTime(Timestamp::from_millis(WHEN_MS));
    vec![
        Value::String("Grüße €".into()),
        Value::String("long ".repeat(2000)),
        Value::String("café".into()),
        Value::Numeric {
            value: LSN,
            scale: 0,
        },
        Value::Numeric {
            value: -12345,
            scale: 2,
        },
        Value::Binary(vec![0, 1, 2, 255]),
        Value::Binary(vec![7; 10_000]),
        Value::Int(-2_000_000_000),
        Value::BigInt(9_000_000_000_000_000_000),
        Value::SmallInt(-32_000),
        Value::TinyInt(250),
        Value::Bit(true),
        when.clone(),
        when,
        Value::Guid(GUID),
    ]
}

fn type_of(value: &Value) -> SqlType {
    match value {
        Value::Null | Value::String(_) => SqlType::NVarChar(None),
        Value::Binary(_) => SqlType::VarBinary(None),
        Value::Numeric { scale, .. } => SqlType::Numeric {
            precision: 38,
            scale: *scale,
        },
        Value::Int(_) => SqlType::Int,
        Value::BigInt(_) => SqlType::BigInt,
        Value::SmallInt(_) => SqlType::SmallInt,
        Value::TinyInt(_) => SqlType::TinyInt,
        Value::Bit(_) => SqlType::Bit,
        Value::DateTime(_) => SqlType::DateTime2(7),
        Value::Guid(_) => SqlType::UniqueIdentifier,
    }
}

#[async_trait]
impl TdsHandler for Scripted {
    async fn login(&self, login: &Login) -> Result<(), SqlError> {
        let password_ok = login.user == "milink" && login.password.expose() == "S3cret!pw";
        let token_ok = login
            .access_token
            .as_ref()
            .is_some_and(|t| t.expose() == "eyJ.token");
        if password_ok || token_ok {
            Ok(())
        } else {
            Err(SqlError::login_failed(&login.user))
        }
    }

    async fn batch(&self, session: &SessionInfo, sql: &str, params: &[Param]) -> Vec<Outcome> {
        let rows = |columns, rows| Outcome::Rows(ResultSet { columns, rows });
        match sql {
            "SELECT TYPES" => {
                let nulls = vec![Value::Null; all_types().len()];
                vec![rows(all_types(), vec![all_values(), nulls])]
            }
            "ECHO" => {
                let columns = params
                    .iter()
                    .map(|p| Column::new(&p.name[1..], type_of(&p.value)));
                let values = params.iter().map(|p| p.value.clone()).collect();
                vec![rows(columns.collect(), vec![values])]
            }
            "WHO" => {
                let columns = vec![Column::new("db", SqlType::NVarChar(Some(128)))];
                vec![rows(
                    columns,
                    vec![vec![Value::String(session.database.clone())]],
                )]
            }
            "BIG" => {
                let columns = vec![
                    Column::new("n", SqlType::Int),
                    Column::new("s", SqlType::NVarChar(Some(40))),
                ];
                let data = (0..2000)
                    .map(|i| vec![Value::Int(i), Value::String(format!("row number {i}"))]);
                vec![rows(columns, data.collect())]
            }
            "TWO" => {
                let one = vec![Column::new("a", SqlType::Int)];
                vec![
                    rows(one.clone(), vec![vec![Value::Int(1)], vec![Value::Int(2)]]),
                    Outcome::Count(3),
                    rows(one, vec![vec![Value::Int(3)]]),
                ]
            }
            "ALTER AVAILABILITY GROUP" => vec![Outcome::Error(SqlError::new(
                41962,
                16,
                "The operation is not supported on a managed instance.",
            ))],
            "CRASH" => vec![Outcome::Close],
            _ => vec![Outcome::Count(0)],
        }
    }
}

async fn start() -> TdsServer {
    TdsServer::start(TdsServerConfig::default(), Arc::new(Scripted))
        .await
        .unwrap()
}

type Conn = Client<Compat<TcpStream>>;

async fn connect(
    server: &TdsServer,
    trusted: &[u8],
    level: EncryptionLevel,
    auth: AuthMethod,
) -> tiberius::Result<Conn> {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("server.der");
    std::fs::write(&ca, trusted).unwrap();
    connect_with(server, &ca, level, auth, "localhost").await
}

async fn connect_with(
    server: &TdsServer,
    ca: &Path,
    level: EncryptionLevel,
    auth: AuthMethod,
    host: &str,
) -> tiberius::Result<Conn> {
    let mut config = Config::new();
    config.host(host);
    config.port(server.addr().port());
    config.database("appdb");
    config.encryption(level);
    config.authentication(auth);
    config.trust_cert_ca(ca.display());
    let tcp = TcpStream::connect(server.addr()).await?;
    tcp.set_nodelay(true)?;
    Client::connect(config, tcp.compat_write()).await
}

fn sql_login() -> AuthMethod {
    AuthMethod::sql_server("milink", "S3cret!pw")
}

async fn login(server: &TdsServer, level: EncryptionLevel) -> Conn {
    connect(server, server.certificate_der(), level, sql_login())
        .await
        .unwrap()
}

async fn first_row(client: &mut Conn, sql: &str) -> Row {
    client
        .simple_query(sql)
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap()
}

/// Runs a batch to its end: its error, if any.
async fn batch_result(client: &mut Conn, sql: &str) -> tiberius::Result<()> {
    client.simple_query(sql).await?.into_results().await?;
    Ok(())
}

#[tokio::test]
async fn tds_login_over_tds74_tls_and_tds8_strict_with_the_trusted_certificate() {
    let server = start().await;
    for level in [
        EncryptionLevel::Required,
        EncryptionLevel::On,
        EncryptionLevel::Off,
        EncryptionLevel::Strict,
    ] {
        let mut client = login(&server, level).await;
        let row = first_row(&mut client, "WHO").await;
        assert_eq!(row.get::<&str, _>(0), Some("appdb"), "{level:?}");
    }
    // By IP address (the certificate names 127.0.0.1 too), and with an access token.
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("server.der");
    std::fs::write(&ca, server.certificate_der()).unwrap();
    let by_ip = connect_with(
        &server,
        &ca,
        EncryptionLevel::Required,
        sql_login(),
        "127.0.0.1",
    )
    .await;
    assert!(by_ip.is_ok(), "{by_ip:?}");
    let token = connect(
        &server,
        server.certificate_der(),
        EncryptionLevel::Strict,
        AuthMethod::aad_token("eyJ.token"),
    )
    .await;
    assert!(token.is_ok(), "{token:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn tds_bad_password_gives_18456() {
    let server = start().await;
    let bad = AuthMethod::sql_server("milink", "wrong");
    for level in [EncryptionLevel::Required, EncryptionLevel::Strict] {
        match connect(&server, server.certificate_der(), level, bad.clone()).await {
            Err(tiberius::error::Error::Server(e)) => {
                assert_eq!((e.code(), e.class()), (18456, 14));
                assert_eq!(e.message(), "Login failed for user 'milink'.");
            }
            other => panic!("expected 18456, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn tds_a_certificate_the_client_does_not_trust_is_refused() {
    let server = start().await;
    let other = start().await;
    for level in [EncryptionLevel::Required, EncryptionLevel::Strict] {
        let result = connect(&server, other.certificate_der(), level, sql_login()).await;
        assert!(
            matches!(result, Err(tiberius::error::Error::Tls(_))),
            "{level:?}: {result:?}"
        );
    }
}

fn check_all_types(row: &Row) {
    assert_eq!(row.get::<&str, _>("nv"), Some("Grüße €"));
    assert_eq!(row.get::<&str, _>("nvmax").map(str::len), Some(10_000));
    assert_eq!(row.get::<&str, _>("v"), Some("café"));
    let lsn: Numeric = row.get("lsn").unwrap();
    assert_eq!((lsn.value(), lsn.scale()), (LSN, 0));
    let dec: Numeric = row.get("dec").unwrap();
    assert_eq!((dec.value(), dec.scale()), (-12345, 2));
    assert_eq!(row.get::<&[u8], _>("vb"), Some(&[0u8, 1, 2, 255][..]));
    assert_eq!(row.get::<&[u8], _>("vbmax"), Some(&[7u8; 10_000][..]));
    assert_eq!(row.get::<i32, _>("i"), Some(-2_000_000_000));
    assert_eq!(row.get::<i64, _>("bi"), Some(9_000_000_000_000_000_000));
    assert_eq!(row.get::<i16, _>("si"), Some(-32_000));
    assert_eq!(row.get::<u8, _>("ti"), Some(250));
    assert_eq!(row.get::<bool, _>("b"), Some(true));
    let millis = |name: &str| {
        let t: PrimitiveDateTime = row.get(name).unwrap();
        (t.assume_utc().unix_timestamp_nanos() / 1_000_000) as u64
    };
    assert!(
        millis("dt").abs_diff(WHEN_MS) <= 2,
        "datetime keeps 1/300 s"
    );
    assert_eq!(millis("dt2"), WHEN_MS);
    assert_eq!(row.get::<Uuid, _>("g"), Some(Uuid::from_bytes(GUID)));
}

fn check_all_nulls(row: &Row) {
    assert_eq!(row.get::<&str, _>("nv"), None);
    assert_eq!(row.get::<&str, _>("nvmax"), None);
    assert_eq!(row.get::<&str, _>("v"), None);
    assert_eq!(row.get::<Numeric, _>("lsn"), None);
    assert_eq!(row.get::<Numeric, _>("dec"), None);
    assert_eq!(row.get::<&[u8], _>("vb"), None);
    assert_eq!(row.get::<&[u8], _>("vbmax"), None);
    assert_eq!(row.get::<i32, _>("i"), None);
    assert_eq!(row.get::<i64, _>("bi"), None);
    assert_eq!(row.get::<i16, _>("si"), None);
    assert_eq!(row.get::<u8, _>("ti"), None);
    assert_eq!(row.get::<bool, _>("b"), None);
    assert_eq!(row.get::<PrimitiveDateTime, _>("dt"), None);
    assert_eq!(row.get::<PrimitiveDateTime, _>("dt2"), None);
    assert_eq!(row.get::<Uuid, _>("g"), None);
}

#[tokio::test]
async fn tds_every_column_type_and_its_null_round_trip_through_query_and_simple_query() {
    let server = start().await;
    for level in [EncryptionLevel::Required, EncryptionLevel::Strict] {
        let mut client = login(&server, level).await;
        let rows = client
            .simple_query("SELECT TYPES")
            .await
            .unwrap()
            .into_first_result()
            .await
            .unwrap();
        check_all_types(&rows[0]);
        check_all_nulls(&rows[1]);
        let rows = client
            .query("SELECT TYPES", &[&1i32])
            .await
            .unwrap()
            .into_first_result()
            .await
            .unwrap();
        check_all_types(&rows[0]);
        check_all_nulls(&rows[1]);
    }
}

#[tokio::test]
async fn tds_sp_executesql_parameters_arrive_typed() {
    let server = start().await;
    let mut client = login(&server, EncryptionLevel::Required).await;
    let long = "x".repeat(5000);
    let blob = vec![9u8; 9000];
    let none: Option<&str> = None;
    let no_int: Option<i32> = None;
    let row = client
        .query(
            "ECHO",
            &[
                &"héllo",
                &long.as_str(),
                &42i32,
                &-7i64,
                &-3i16,
                &200u8,
                &true,
                &&[1u8, 2, 3][..],
                &blob.as_slice(),
                &none,
                &no_int,
            ],
        )
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.get::<&str, _>("P1"), Some("héllo"));
    assert_eq!(row.get::<&str, _>("P2"), Some(long.as_str()));
    assert_eq!(row.get::<i32, _>("P3"), Some(42));
    assert_eq!(row.get::<i64, _>("P4"), Some(-7));
    assert_eq!(row.get::<i16, _>("P5"), Some(-3));
    assert_eq!(row.get::<u8, _>("P6"), Some(200));
    assert_eq!(row.get::<bool, _>("P7"), Some(true));
    assert_eq!(row.get::<&[u8], _>("P8"), Some(&[1u8, 2, 3][..]));
    assert_eq!(row.get::<&[u8], _>("P9"), Some(blob.as_slice()));
    assert_eq!(row.get::<&str, _>("P10"), None);
    assert_eq!(row.get::<&str, _>("P11"), None);
}

#[tokio::test]
async fn tds_error_41962_reaches_the_client_and_the_connection_stays_usable() {
    let server = start().await;
    for level in [EncryptionLevel::Required, EncryptionLevel::Strict] {
        let mut client = login(&server, level).await;
        let by_rpc = client.execute("ALTER AVAILABILITY GROUP", &[]).await;
        let by_batch = batch_result(&mut client, "ALTER AVAILABILITY GROUP").await;
        for result in [by_rpc.map(|_| ()), by_batch] {
            match result {
                Err(tiberius::error::Error::Server(e)) => {
                    assert_eq!((e.code(), e.state(), e.class()), (41962, 1, 16));
                    assert_eq!(e.server(), "SIMSQL");
                }
                other => panic!("expected 41962, got {other:?}"),
            }
        }
        assert_eq!(
            first_row(&mut client, "WHO").await.get::<&str, _>(0),
            Some("appdb")
        );
    }
}

#[tokio::test]
async fn tds_several_results_and_a_response_over_many_packets() {
    let server = start().await;
    let mut client = login(&server, EncryptionLevel::Strict).await;
    let rows = client
        .simple_query("BIG")
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    assert_eq!(rows.len(), 2000);
    assert_eq!(rows[1999].get::<&str, _>(1), Some("row number 1999"));
    let results = client
        .simple_query("TWO")
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();
    assert_eq!(results.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);
    let done = client.execute("TWO", &[]).await.unwrap();
    assert_eq!(done.total(), 6);
}

#[tokio::test]
async fn tds_a_connection_closed_mid_query_is_an_error_not_a_hang() {
    let server = start().await;
    let mut client = login(&server, EncryptionLevel::Required).await;
    let answer = tokio::time::timeout(Duration::from_secs(20), batch_result(&mut client, "CRASH"))
        .await
        .expect("the client must not hang");
    assert!(answer.is_err(), "{answer:?}");
    // The server lives on.
    let mut again = login(&server, EncryptionLevel::Required).await;
    assert_eq!(
        first_row(&mut again, "WHO").await.get::<&str, _>(0),
        Some("appdb")
    );
}

#[tokio::test]
async fn tds_malformed_input_closes_only_that_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start().await;
    // A PRELOGIN packet whose length is shorter than its header, then garbage.
    for junk in [
        &[0x12u8, 1, 0, 4, 0, 0, 0, 0][..],
        &[0x12, 1, 0, 20, 0, 0, 1, 0, 0xFF][..],
        b"GET / HTTP/1.1\r\n\r\n",
    ] {
        let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
        tcp.write_all(junk).await.unwrap();
        tcp.shutdown().await.unwrap();
        let mut rest = Vec::new();
        let _ = tcp.read_to_end(&mut rest).await; // the server closes it
    }
    let mut client = login(&server, EncryptionLevel::Required).await;
    assert_eq!(
        first_row(&mut client, "WHO").await.get::<&str, _>(0),
        Some("appdb")
    );
    server.shutdown().await;
}
