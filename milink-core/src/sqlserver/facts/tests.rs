//! Values to cells, errors to `SourceError`, result sets to `Rows`, without a server.

use super::*;
use crate::sqlserver::connection::{ConnectError, SqlError};
use crate::sqlserver::rows::{DateTime, Row};
use crate::time::Date;

#[test]
fn values_become_cells_by_type() {
    let cases: Vec<(Value, Cell)> = vec![
        (Value::Null, Cell::Null),
        (Value::Bool(true), Cell::Bool(true)),
        (Value::Int(-7), Cell::Int(-7)),
        (Value::Int(i64::MAX), Cell::Int(i64::MAX)),
        (
            Value::Numeric {
                value: 42,
                scale: 0,
            },
            Cell::Int(42),
        ),
        (
            Value::Numeric {
                value: i128::from(i64::MIN),
                scale: 0,
            },
            Cell::Int(i64::MIN),
        ),
        // An LSN does not fit an i64: its exact digits, which an integer reader refuses.
        (
            Value::Numeric {
                value: 9_999_999_999_999_999_999_999_999,
                scale: 0,
            },
            Cell::Text("9999999999999999999999999".into()),
        ),
        (
            Value::Numeric {
                value: 1234,
                scale: 2,
            },
            Cell::Float(12.34),
        ),
        (
            Value::Numeric {
                value: -5,
                scale: 3,
            },
            Cell::Float(-0.005),
        ),
        (Value::String("Grüße".into()), Cell::Text("Grüße".into())),
        (
            Value::Bytes(vec![0xAB, 0x01]),
            Cell::Binary(vec![0xAB, 0x01]),
        ),
        (
            Value::Guid([
                0x6F, 0x96, 0x19, 0xFF, 0x8B, 0x86, 0xD0, 0x11, 0xB4, 0x2D, 0x00, 0xC0, 0x4F, 0xC9,
                0x64, 0xFF,
            ]),
            Cell::Text("6F9619FF-8B86-D011-B42D-00C04FC964FF".into()),
        ),
        // 2026-11-26 12:00:00.250 UTC as milliseconds since the epoch.
        (
            Value::DateTime(DateTime::from_parts(
                Date::new(2026, 11, 26).unwrap(),
                12,
                0,
                0,
                250,
            )),
            Cell::Int(1_795_694_400_250),
        ),
        // Before 1970: negative milliseconds.
        (
            Value::DateTime(DateTime::new(-1, 0).unwrap()),
            Cell::Int(-86_400_000),
        ),
    ];
    for (value, cell) in cases {
        assert_eq!(cell_from_value(&value), cell, "{value:?}");
    }
}

#[test]
fn decimals_convert_exactly_then_round_once() {
    assert_eq!(decimal_to_f64(1, 1), 0.1);
    assert_eq!(decimal_to_f64(123_456_789, 4), 12_345.678_9);
    assert_eq!(decimal_to_f64(-100, 2), -1.0);
    assert_eq!(decimal_to_f64(7, 38), 7e-38);
}

#[test]
fn server_errors_keep_their_number_and_transience() {
    let server = |number: u32| SqlError::Server {
        number,
        state: 1,
        class: 14,
        message: "The SELECT permission was denied on the object 'sysjobs'.".into(),
        procedure: String::new(),
        line: 1,
    };
    let e = source_error(&server(229));
    assert_eq!(e.number, Some(229));
    assert!(!e.transient);
    assert!(e.message.contains("permission was denied"), "{}", e.message);
    assert!(e.to_string().starts_with("SQL error 229"), "{e}");

    let e = source_error(&server(40613));
    assert_eq!(e.number, Some(40613));
    assert!(e.transient);

    let e = source_error(&SqlError::ConnectionLost {
        message: "reset by peer".into(),
    });
    assert_eq!(e.number, None);
    assert!(e.transient);

    // A refused login keeps 18456 and names the user, never the password.
    let e = source_error(&SqlError::Connect(ConnectError::BadCredentials {
        user: "milink".into(),
        host: "sql01".into(),
    }));
    assert_eq!(e.number, Some(18456));
    assert!(!e.transient);
}

#[test]
fn result_sets_become_rows_in_column_order() {
    let set = ResultSet {
        columns: vec!["name".into(), "database_id".into(), "is_encrypted".into()],
        rows: vec![
            Row::new()
                .with("name", "ToyStore")
                .with("database_id", Value::Int(5))
                .with("is_encrypted", Value::Bool(false)),
            Row::new()
                .with("name", Value::Null)
                .with("database_id", Value::Int(6))
                .with("is_encrypted", Value::Null),
        ],
    };
    let rows = rows_from_result_set(&set).unwrap();
    assert_eq!(rows.columns(), ["name", "database_id", "is_encrypted"]);
    assert_eq!(
        rows.rows(),
        [
            vec![
                Cell::Text("ToyStore".into()),
                Cell::Int(5),
                Cell::Bool(false)
            ],
            vec![Cell::Null, Cell::Int(6), Cell::Null],
        ]
    );
    assert!(
        rows_from_result_set(&ResultSet::default())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn module_text_reads_longer_than_a_probe() {
    let name = crate::names::DatabaseName::new("ToyStore").unwrap();
    assert_eq!(
        fact_command_kind(&readiness::module_text(&name)),
        CommandKind::Read
    );
    assert_eq!(
        fact_command_kind(&readiness::instance_properties()),
        CommandKind::Probe
    );
}

// ---------------------------------------------------------------- a real server, on demand

/// The read-only assessment of a real SQL Server: the readiness probes over TDS, the report,
/// and whether its build can host the link. Nothing is written to the server.
#[tokio::test]
#[ignore = "needs a SQL Server: set MILINK_LIVE_SQLSERVER to a connection string"]
async fn live_read_only_assessment() {
    use std::sync::Arc;

    use crate::assess::{AssessOptions, GatherOptions, assess, gather_instance_facts};
    use crate::sqlserver::SqlServerAdapter;
    use crate::sqlserver::connection::{ConnectOptions, Connection};
    use crate::sqlserver::render::RenderContext;
    use crate::time::SystemTimer;

    let Ok(text) = std::env::var("MILINK_LIVE_SQLSERVER") else {
        eprintln!("MILINK_LIVE_SQLSERVER is not set; nothing to do");
        return;
    };
    let options = ConnectOptions::from_connection_string(&text).unwrap();
    let connection = Arc::new(Connection::new(options, Arc::new(SystemTimer)));
    let source = TdsFactSource::new(Arc::clone(&connection));
    let gathered = gather_instance_facts(&source, &GatherOptions::default())
        .await
        .unwrap();
    assert_eq!(gathered.probe_batches, crate::tsql::readiness::PROBE_COUNT);
    assert!(!gathered.instance.server_name.to_string().is_empty());
    let report = assess(
        &gathered.instance,
        &gathered.databases,
        None,
        &AssessOptions::default(),
    );
    println!("{}", report.to_markdown());
    let adapter = SqlServerAdapter::new(
        Connection::new(connection.options().clone(), Arc::new(SystemTimer)),
        RenderContext::with_password(None).unwrap(),
    );
    match adapter.check_can_host_link().await {
        Ok(version) => println!("this build can host the link: {version}"),
        Err(e) => println!("this build cannot host the link: {e}"),
    }
    connection.close().await;
}
