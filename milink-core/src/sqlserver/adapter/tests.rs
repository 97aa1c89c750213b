//! The adapter's pure parts: command kinds, the link's batch, result sets to the side view, and
//! error typing. The conversation with a server is in `loopback.rs`.

use std::time::Duration;

use super::*;
use crate::names::CertificateName;
use crate::sqlserver::rows::{Row, Value};

fn link() -> LinkName {
    LinkName::new("tailspin-link").unwrap()
}

fn set(rows: Vec<Row>) -> ResultSet {
    let columns = rows
        .first()
        .map(|r| r.columns().map(str::to_owned).collect())
        .unwrap_or_default();
    ResultSet { columns, rows }
}

fn properties() -> ResultSet {
    set(vec![
        Row::new()
            .with("product_version", "16.0.4125.3")
            .with("edition", "Developer Edition (64-bit)"),
    ])
}

#[test]
fn only_the_public_key_read_is_a_probe() {
    assert_eq!(
        command_kind(&SourceOp::ExportCertificatePublicKey {
            name: CertificateName::new("Cert_TailspinSql_endpoint").unwrap()
        }),
        CommandKind::Probe
    );
    for op in [
        SourceOp::EnsureMasterKey,
        SourceOp::EnsureRootCaTrust,
        SourceOp::Failover { dag: link() },
        SourceOp::DropDistributedAvailabilityGroup { dag: link() },
    ] {
        assert_eq!(command_kind(&op), CommandKind::Ddl, "{op:?}");
    }
}

#[test]
fn the_link_state_is_one_batch_of_the_four_probes_in_order() {
    let batch = link_state_batch(&link());
    let sql = batch.expose_sql();
    let at = |needle: &str| {
        sql.find(needle)
            .unwrap_or_else(|| panic!("{needle} missing from {sql}"))
    };
    let replicas = at("sys.dm_hadr_availability_replica_states");
    let databases = at("sys.dm_hadr_database_replica_states");
    let seeding = at("sys.dm_hadr_physical_seeding_stats");
    let properties = at("SERVERPROPERTY('ProductVersion')");
    assert!(replicas < databases && databases < seeding && seeding < properties);
    assert_eq!(sql.matches("N'tailspin-link'").count(), 2);
    assert!(!batch.is_sensitive());
}

#[test]
fn no_dag_rows_mean_no_link_and_the_build_is_still_read() {
    let sets = [set(vec![]), set(vec![]), set(vec![]), properties()];
    let view = side_view_from_result_sets(&[], &sets).unwrap();
    assert!(!view.exists);
    assert_eq!(
        view.version,
        Some(crate::names::SqlVersion::parse("16.0.4125.3").unwrap())
    );
}

#[test]
fn a_surprising_number_of_result_sets_is_a_rowset_error() {
    for n in [0, 1, 3, 5] {
        let sets = vec![set(vec![]); n];
        let e = side_view_from_result_sets(&[], &sets).unwrap_err();
        assert_eq!(e.code(), ROWSET_CODE, "{n}");
        assert!(!e.transient);
        assert!(
            e.message.contains(&format!("returned {n} result sets")),
            "{e}"
        );
    }
}

#[test]
fn a_surprising_rowset_is_a_rowset_error() {
    // is_local as text, and an instance properties rowset without the version.
    let replica = Row::new()
        .with("ag_name", "tailspin-link")
        .with("replica_server_name", "AG_ToyStore")
        .with("endpoint_url", Value::Null)
        .with("availability_mode_desc", "ASYNCHRONOUS_COMMIT")
        .with("is_local", "yes");
    let bad_replica = [set(vec![replica]), set(vec![]), set(vec![]), properties()];
    let no_version = [
        set(vec![]),
        set(vec![]),
        set(vec![]),
        set(vec![Row::new().with("edition", "Standard")]),
    ];
    for sets in [&bad_replica, &no_version] {
        let e = side_view_from_result_sets(&[], sets).unwrap_err();
        assert_eq!(e.code(), ROWSET_CODE);
        assert!(!e.transient);
    }
}

#[test]
fn server_errors_are_typed_by_the_error_table() {
    let server = |number| ConnectionError::Server {
        number,
        state: 1,
        class: 16,
        message: "from the server".into(),
        procedure: String::new(),
        line: 1,
    };
    for (number, transient) in [(41962, true), (1412, false), (35250, true), (102, false)] {
        let e = port_error(server(number));
        assert_eq!(e.kind, PortErrorKind::Sql(number));
        assert_eq!(e.transient, transient, "{number}");
        assert!(e.message.contains("from the server"), "{e}");
    }
    let timeout = port_error(ConnectionError::Timeout {
        kind: CommandKind::Probe,
        after: Duration::from_secs(3),
    });
    assert_eq!(
        (timeout.kind, timeout.transient),
        (PortErrorKind::Timeout, true)
    );
}

#[test]
fn exactly_one_result_set_or_a_rowset_error() {
    assert!(exactly_one("p", &[set(vec![])]).is_ok());
    for n in [0, 2] {
        let e = exactly_one("p", &vec![set(vec![]); n]).unwrap_err();
        assert_eq!(e.code(), ROWSET_CODE);
    }
}
