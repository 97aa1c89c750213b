//! The parsers on recorded rowsets: the probes' columns as SQL Server names them, with the
//! values a link shows while seeding, replicating, failing over and disconnected.

use super::*;
use crate::sqlserver::rows::{DateTime, Value};
use crate::time::Date;

const MAX_LSN: &str = "9999999999999999999999999";

fn db(name: &str) -> DatabaseName {
    DatabaseName::new(name).unwrap()
}

fn at(h: u8, m: u8, s: u8) -> DateTime {
    DateTime::from_parts(Date::new(2026, 11, 26).unwrap(), h, m, s, 0)
}

#[allow(clippy::too_many_arguments)]
fn replica(
    name: &str,
    mode: &str,
    is_local: Option<bool>,
    role: Option<&str>,
    connected: Option<&str>,
    health: Option<&str>,
    error: Option<(i64, &str)>,
) -> Row {
    Row::new()
        .with("ag_name", "tailspin-link")
        .with("replica_server_name", name)
        .with(
            "endpoint_url",
            if name == "AG_ToyStore" {
                "TCP://10.0.0.4:5022"
            } else {
                "tcp://tailspin-mi.abc123.database.windows.net:5022;Server=[tailspin-mi]"
            },
        )
        .with("availability_mode_desc", mode)
        .with("is_local", is_local)
        .with("role_desc", role)
        .with("operational_state_desc", role.map(|_| "ONLINE"))
        .with("connected_state_desc", connected)
        .with("synchronization_health_desc", health)
        .with("last_connect_error_number", error.map(|(n, _)| n))
        .with("last_connect_error_description", error.map(|(_, d)| d))
}

#[allow(clippy::too_many_arguments)]
fn db_row(
    name: &str,
    replica: &str,
    is_local: bool,
    state: &str,
    health: &str,
    hardened: Option<&str>,
    commit: Option<&str>,
    end_of_log: Option<&str>,
    send_queue: Option<i64>,
    redo_queue: Option<i64>,
    lag: Option<i64>,
) -> Row {
    Row::new()
        .with("database_name", name)
        .with("ag_name", "tailspin-link")
        .with("replica_server_name", replica)
        .with("is_local", is_local)
        .with("is_primary_replica", is_local)
        .with("synchronization_state_desc", state)
        .with("synchronization_health_desc", health)
        .with("last_hardened_lsn", hardened)
        .with("last_commit_lsn", commit)
        .with("end_of_log_lsn", end_of_log)
        .with("last_commit_time", Some(at(6, 41, 3)))
        .with("log_send_queue_size", send_queue)
        .with("redo_queue_size", redo_queue)
        .with("secondary_lag_seconds", lag)
}

/// SQL Server as the asynchronous primary of a link that replicates: its own row has no
/// hardened LSN (milink-facts §3.2), the instance's row does.
fn primary_replicating() -> (Vec<Row>, Vec<Row>) {
    let replicas = vec![
        replica(
            "AG_ToyStore",
            "ASYNCHRONOUS_COMMIT",
            Some(true),
            Some("PRIMARY"),
            Some("CONNECTED"),
            Some("HEALTHY"),
            None,
        ),
        replica(
            "AG_ToyStore_MI",
            "ASYNCHRONOUS_COMMIT",
            Some(false),
            Some("SECONDARY"),
            Some("CONNECTED"),
            Some("HEALTHY"),
            Some((0, "")),
        ),
    ];
    let databases = vec![
        db_row(
            "ToyStore",
            "AG_ToyStore",
            true,
            "SYNCHRONIZING",
            "HEALTHY",
            None,
            Some("71000009408100001"),
            Some("71000009408100001"),
            None,
            None,
            None,
        ),
        db_row(
            "ToyStore",
            "AG_ToyStore_MI",
            false,
            "SYNCHRONIZING",
            "HEALTHY",
            Some("71000009400000001"),
            Some("71000009400000001"),
            None,
            Some(120),
            Some(8),
            Some(3),
        ),
    ];
    (replicas, databases)
}

#[test]
fn replica_states_read_every_column() {
    let (rows, _) = primary_replicating();
    let parsed = replica_states(&rows).unwrap();
    assert_eq!(parsed.len(), 2);
    let local = &parsed[0];
    assert_eq!(local.ag_name, "tailspin-link");
    assert_eq!(local.replica_server_name, "AG_ToyStore");
    assert_eq!(local.endpoint_url.as_deref(), Some("TCP://10.0.0.4:5022"));
    assert_eq!(
        local.availability_mode,
        Some(AvailabilityMode::AsynchronousCommit)
    );
    assert_eq!(local.is_local, Some(true));
    assert_eq!(local.role, Some(ReplicaRole::Primary));
    assert_eq!(local.operational_state.as_deref(), Some("ONLINE"));
    assert_eq!(local.connected, Some(true));
    assert_eq!(local.health, Some(SyncHealth::Healthy));
    assert_eq!(local.last_connect_error, None);
    assert_eq!(parsed[1].last_connect_error, None, "error number 0 is none");
    assert_eq!(parsed[1].role, Some(ReplicaRole::Secondary));
}

#[test]
fn a_replica_the_dmv_has_no_row_for_reads_as_nulls() {
    let row = replica(
        "AG_ToyStore_MI",
        "SYNCHRONOUS_COMMIT",
        None,
        None,
        None,
        None,
        None,
    );
    let parsed = replica_states(&[row]).unwrap().remove(0);
    assert_eq!(parsed.is_local, None);
    assert_eq!(parsed.role, None);
    assert_eq!(parsed.connected, None);
    assert_eq!(parsed.health, None);
    assert_eq!(
        parsed.availability_mode,
        Some(AvailabilityMode::SynchronousCommit)
    );
}

#[test]
fn roles_and_states_read_their_descriptions() {
    assert_eq!(replica_role("RESOLVING"), ReplicaRole::Resolving);
    assert_eq!(replica_role("SOMETHING NEW"), ReplicaRole::Resolving);
    for (desc, state) in [
        ("NOT SYNCHRONIZING", SyncState::NotSynchronizing),
        ("SYNCHRONIZING", SyncState::Synchronizing),
        ("SYNCHRONIZED", SyncState::Synchronized),
        ("REVERTING", SyncState::Reverting),
        ("INITIALIZING", SyncState::Initializing),
    ] {
        assert_eq!(sync_state(desc), Some(state));
    }
    assert_eq!(sync_state("NOT_SYNCHRONIZING"), None);
    for (desc, health) in [
        ("NOT_HEALTHY", SyncHealth::NotHealthy),
        ("PARTIALLY_HEALTHY", SyncHealth::PartiallyHealthy),
        ("HEALTHY", SyncHealth::Healthy),
    ] {
        assert_eq!(sync_health(desc), Some(health));
    }
    assert_eq!(connected_state("DISCONNECTED"), Some(false));
    assert_eq!(availability_mode("CONFIGURATION_ONLY"), None);
}

#[test]
fn an_unknown_description_names_the_probe_row_and_column() {
    let (mut rows, _) = primary_replicating();
    rows[1] = replica(
        "AG_ToyStore_MI",
        "SOMETIMES_COMMIT",
        Some(false),
        Some("SECONDARY"),
        Some("CONNECTED"),
        Some("HEALTHY"),
        None,
    );
    let e = replica_states(&rows).unwrap_err();
    assert_eq!(
        e.to_string(),
        "probe_replica_states, row 1: column availability_mode_desc: SOMETIMES_COMMIT is not \
         SYNCHRONOUS_COMMIT or ASYNCHRONOUS_COMMIT"
    );
    let port = PortError::from(e);
    assert_eq!(port.code(), ROWSET_CODE);
    assert!(!port.transient);
}

#[test]
fn database_replica_states_keep_nulls_and_read_lsns() {
    let (_, rows) = primary_replicating();
    let parsed = database_replica_states(&rows).unwrap();
    let own = &parsed[0];
    assert_eq!(own.database, db("ToyStore"));
    assert!(own.is_local && own.is_primary_replica);
    assert_eq!(own.sync_state, Some(SyncState::Synchronizing));
    assert_eq!(own.last_hardened_lsn, None, "async primary's own row");
    assert_eq!(own.last_commit_lsn.unwrap().value(), 71_000_009_408_100_001);
    assert_eq!(own.log_send_queue_kb, None);
    assert_eq!(
        own.last_commit_time.unwrap().to_string(),
        "2026-11-26T06:41:03.000Z"
    );
    let remote = &parsed[1];
    assert_eq!(
        remote.last_hardened_lsn.unwrap().value(),
        71_000_009_400_000_001
    );
    assert_eq!(remote.log_send_queue_kb, Some(120));
    assert_eq!(remote.redo_queue_kb, Some(8));
    assert_eq!(remote.secondary_lag_seconds, Some(3));
}

#[test]
fn extreme_lsns_parse_as_text_and_as_numeric() {
    for (text, value) in [("0", 0u128), ("1", 1), (MAX_LSN, Lsn::MAX.value())] {
        let mut row = db_row(
            "ToyStore",
            "AG_ToyStore",
            true,
            "SYNCHRONIZED",
            "HEALTHY",
            Some(text),
            Some(text),
            Some(text),
            Some(0),
            Some(0),
            Some(0),
        );
        let parsed = database_replica_states(std::slice::from_ref(&row))
            .unwrap()
            .remove(0);
        assert_eq!(parsed.last_hardened_lsn.unwrap().value(), value);
        assert_eq!(parsed.end_of_log_lsn.unwrap().value(), value);
        // A driver that hands numeric(25,0) through as a decimal gives the same LSN.
        row.push(
            "last_commit_lsn",
            Value::Numeric {
                value: i128::try_from(value).unwrap(),
                scale: 0,
            },
        );
        assert_eq!(row.lsn("last_commit_lsn").unwrap().value(), value);
    }
    let too_big = db_row(
        "ToyStore",
        "AG_ToyStore",
        true,
        "SYNCHRONIZED",
        "HEALTHY",
        Some("10000000000000000000000000"),
        None,
        None,
        None,
        None,
        None,
    );
    let e = database_replica_states(&[too_big]).unwrap_err();
    assert!(e.to_string().contains("column last_hardened_lsn"), "{e}");
}

#[test]
fn the_primarys_side_view() {
    let (replicas, databases) = primary_replicating();
    let version = SqlVersion::parse("16.0.4125.3").unwrap();
    let view = parse_source_side_view(&[db("ToyStore")], &replicas, &databases, &[], Some(version))
        .unwrap();
    assert!(view.exists);
    assert_eq!(view.role, Some(ReplicaRole::Primary));
    assert_eq!(view.mode, Some(AvailabilityMode::AsynchronousCommit));
    assert_eq!(
        view.partner_mode,
        Some(AvailabilityMode::AsynchronousCommit)
    );
    assert!(view.connected);
    assert_eq!(view.version, Some(version));
    assert_eq!(view.update_policy, None);
    assert_eq!(view.failover_mode, None);
    let d = &view.databases[0];
    assert_eq!(d.name, db("ToyStore"));
    assert_eq!(d.sync_state, Some(SyncState::Synchronizing));
    assert_eq!(d.health, SyncHealth::Healthy);
    assert_eq!(d.last_hardened_lsn, None);
    assert_eq!(d.end_of_log_lsn.unwrap().value(), 71_000_009_408_100_001);
    assert_eq!(d.last_commit_lsn.unwrap().value(), 71_000_009_408_100_001);
    let partner = d.partner.unwrap();
    assert_eq!(partner.sync_state, SyncState::Synchronizing);
    assert_eq!(
        partner.last_hardened_lsn.unwrap().value(),
        71_000_009_400_000_001
    );
    assert_eq!(d.log_send_queue_kb, Some(120));
    assert_eq!(d.redo_queue_kb, Some(8));
    assert_eq!(d.lag_seconds, Some(3));
    assert_eq!(d.last_error, None);
    assert_eq!(d.seeding_percent, None);
    assert_eq!(d.replica_state, None);
}

#[test]
fn the_secondarys_side_view_after_a_failover() {
    // SQL Server as the synchronous secondary: its DMV shows its own rows only.
    let replicas = vec![
        replica(
            "AG_ToyStore",
            "SYNCHRONOUS_COMMIT",
            Some(true),
            Some("SECONDARY"),
            Some("CONNECTED"),
            Some("HEALTHY"),
            None,
        ),
        replica(
            "AG_ToyStore_MI",
            "SYNCHRONOUS_COMMIT",
            None,
            None,
            None,
            None,
            None,
        ),
    ];
    let databases = vec![db_row(
        "ToyStore",
        "AG_ToyStore",
        true,
        "SYNCHRONIZED",
        "HEALTHY",
        Some(MAX_LSN),
        Some(MAX_LSN),
        Some(MAX_LSN),
        None,
        Some(0),
        Some(0),
    )];
    let view = parse_source_side_view(&[db("ToyStore")], &replicas, &databases, &[], None).unwrap();
    assert_eq!(view.role, Some(ReplicaRole::Secondary));
    assert_eq!(view.mode, Some(AvailabilityMode::SynchronousCommit));
    assert_eq!(view.partner_mode, Some(AvailabilityMode::SynchronousCommit));
    assert!(
        view.connected,
        "the local row tells a secondary's connection"
    );
    let d = &view.databases[0];
    assert_eq!(d.sync_state, Some(SyncState::Synchronized));
    assert_eq!(d.last_hardened_lsn, Some(Lsn::MAX));
    assert_eq!(d.partner, None);
    assert_eq!(d.redo_queue_kb, Some(0));
}

#[test]
fn a_disconnected_link_reports_the_connection_error() {
    let replicas = vec![
        replica(
            "AG_ToyStore",
            "ASYNCHRONOUS_COMMIT",
            Some(true),
            Some("PRIMARY"),
            Some("CONNECTED"),
            Some("NOT_HEALTHY"),
            None,
        ),
        replica(
            "AG_ToyStore_MI",
            "ASYNCHRONOUS_COMMIT",
            Some(false),
            Some("SECONDARY"),
            Some("DISCONNECTED"),
            Some("NOT_HEALTHY"),
            Some((41986, "Connection attempt failed")),
        ),
    ];
    let view = parse_source_side_view(&[db("ToyStore")], &replicas, &[], &[], None).unwrap();
    assert!(!view.connected);
    let d = &view.databases[0];
    assert_eq!(
        d.last_error.as_deref(),
        Some("sql:41986: Connection attempt failed")
    );
    assert_eq!(
        crate::lifecycle::seeding::sql_error_number(d.last_error.as_deref().unwrap()),
        Some(41986),
        "the machine reads the number back"
    );
    // No database rows: not synchronizing, not healthy.
    assert_eq!(d.sync_state, Some(SyncState::NotSynchronizing));
    assert_eq!(d.health, SyncHealth::NotHealthy);
    assert_eq!(d.last_hardened_lsn, None);
}

#[test]
fn an_old_error_of_a_connected_replica_is_not_reported() {
    let (mut replicas, databases) = primary_replicating();
    replicas[1] = replica(
        "AG_ToyStore_MI",
        "ASYNCHRONOUS_COMMIT",
        Some(false),
        Some("SECONDARY"),
        Some("CONNECTED"),
        Some("HEALTHY"),
        Some((41986, "from yesterday")),
    );
    let view = parse_source_side_view(&[db("ToyStore")], &replicas, &databases, &[], None).unwrap();
    assert_eq!(view.databases[0].last_error, None);
}

#[test]
fn no_dag_no_link() {
    let version = SqlVersion::parse("16.0.4125.3").unwrap();
    let view = parse_source_side_view(&[db("ToyStore")], &[], &[], &[], Some(version)).unwrap();
    assert!(!view.exists);
    assert!(view.databases.is_empty());
    assert_eq!(view.role, None);
    assert_eq!(view.version, Some(version));
}

#[test]
fn every_database_of_the_dag_is_in_the_view_requested_first() {
    let (replicas, mut databases) = primary_replicating();
    for name in ["Orders", "Archive"] {
        databases.push(db_row(
            name,
            "AG_ToyStore",
            true,
            "SYNCHRONIZING",
            "HEALTHY",
            None,
            Some("1"),
            Some("1"),
            None,
            None,
            None,
        ));
    }
    let view = parse_source_side_view(
        &[db("ToyStore"), db("Customer360")],
        &replicas,
        &databases,
        &[],
        None,
    )
    .unwrap();
    let names: Vec<&str> = view.databases.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["ToyStore", "Customer360", "Archive", "Orders"]);
    assert_eq!(
        view.databases[1].sync_state,
        Some(SyncState::NotSynchronizing)
    );
}

fn seeding_row(database: &str, size: Option<i64>, transferred: Option<i64>) -> Row {
    Row::new()
        .with("local_database_name", database)
        .with("current_state", "SEEDING")
        .with("is_source", true)
        .with("internal_state_desc", "ReadingAndSendingData")
        .with("database_size_bytes", size)
        .with("transferred_size_bytes", transferred)
        .with("transfer_rate_bytes_per_second", Some(23_000_000i64))
        .with("total_disk_io_wait_time_ms", Some(10i64))
        .with("total_network_wait_time_ms", Some(20i64))
        .with("is_compression_enabled", true)
        .with("start_time_utc", Some(at(6, 0, 0)))
        .with("estimate_time_complete_utc", Some(at(7, 12, 0)))
        .with("completion_time", Value::Null)
        .with("number_of_attempts", Some(1i64))
}

#[test]
fn seeding_progress_reads_as_percent() {
    let rows = vec![
        seeding_row("ToyStore", Some(107_374_182_400), Some(85_899_345_920)),
        seeding_row("Orders", None, None),
        seeding_row("Archive", Some(100), Some(250)),
    ];
    let parsed = seeding_stats(&rows).unwrap();
    assert_eq!(parsed[0].percent(), Some(80));
    assert_eq!(parsed[0].attempts, Some(1));
    assert_eq!(parsed[0].is_compression_enabled, Some(true));
    assert_eq!(parsed[0].completion_time, None);
    assert_eq!(
        parsed[0].estimated_completion.unwrap().to_string(),
        "2026-11-26T07:12:00.000Z"
    );
    assert_eq!(parsed[1].percent(), None, "size unknown");
    assert_eq!(parsed[2].percent(), Some(100), "capped");
    let (replicas, databases) = primary_replicating();
    let view =
        parse_source_side_view(&[db("ToyStore")], &replicas, &databases, &rows, None).unwrap();
    assert_eq!(view.databases[0].seeding_percent, Some(80));
}

#[test]
fn full_backups_with_and_without_a_backup() {
    let rows = vec![
        Row::new()
            .with("database_name", "ToyStore")
            .with("backup_start_date", Some(at(5, 0, 0)))
            .with("backup_finish_date", Some(at(5, 30, 0)))
            .with("is_copy_only", false),
        Row::new()
            .with("database_name", "Customer360")
            .with("backup_start_date", Value::Null)
            .with("backup_finish_date", Value::Null)
            .with("is_copy_only", Value::Null),
    ];
    let parsed = full_backups(&rows).unwrap();
    assert_eq!(parsed[0].database, db("ToyStore"));
    assert_eq!(
        parsed[0].finished.unwrap().to_string(),
        "2026-11-26T05:30:00.000Z"
    );
    assert_eq!(parsed[1].finished, None);
    assert!(full_backups(&[]).unwrap().is_empty());
}

#[test]
fn fabric_parameters_and_the_issuer_procedure() {
    let port = vec![Row::new().with("hadr_port", "11002")];
    assert_eq!(hadr_port(&port).unwrap().unwrap().to_string(), "11002");
    assert_eq!(hadr_port(&[]).unwrap(), None);
    let bad = vec![Row::new().with("hadr_port", "eleven")];
    assert!(matches!(hadr_port(&bad), Err(ParseError::Row { .. })));
    let two = vec![port[0].clone(), port[0].clone()];
    assert_eq!(
        hadr_port(&two).unwrap_err(),
        ParseError::RowCount {
            probe: "probe_hadr_port",
            found: 2
        }
    );
    let dns = vec![Row::new().with("dns_record_name", "tailspin-mi.abc123.database.windows.net")];
    assert_eq!(
        dns_record_name(&dns).unwrap().as_deref(),
        Some("tailspin-mi.abc123.database.windows.net")
    );
    assert_eq!(dns_record_name(&[]).unwrap(), None);
    assert!(add_issuer_exists(&[Row::new().with("add_issuer_exists", true)]).unwrap());
    assert!(!add_issuer_exists(&[Row::new().with("add_issuer_exists", false)]).unwrap());
    assert!(matches!(
        add_issuer_exists(&[]),
        Err(ParseError::RowCount { found: 0, .. })
    ));
}

#[test]
fn certificates_and_their_expiry() {
    let rows = vec![
        Row::new()
            .with("name", "Cert_TailspinSql_endpoint")
            .with("subject", "Certificate for Cert_TailspinSql_endpoint")
            .with(
                "start_date",
                DateTime::from_parts(Date::new(2026, 1, 1).unwrap(), 0, 0, 0, 0),
            )
            .with(
                "expiry_date",
                DateTime::from_parts(Date::new(2027, 1, 1).unwrap(), 0, 0, 0, 0),
            )
            .with("thumbprint", vec![0xAB; 20]),
        Row::new()
            .with("name", "tailspin-mi.abc123.database.windows.net")
            .with("subject", Value::Null)
            .with("start_date", Value::Null)
            .with("expiry_date", Value::Null)
            .with("thumbprint", Value::Null),
    ];
    let parsed = certificates(&rows).unwrap();
    assert_eq!(parsed[0].name.as_str(), "Cert_TailspinSql_endpoint");
    assert_eq!(parsed[0].thumbprint.as_deref(), Some(&[0xAB; 20][..]));
    let before = Date::new(2026, 6, 1).unwrap().start();
    let after = Date::new(2027, 6, 1).unwrap().start();
    assert!(!parsed[0].is_expired(before));
    assert!(parsed[0].is_expired(after));
    assert!(!parsed[1].is_expired(after), "no expiry known");
}

#[test]
fn a_public_key_or_none() {
    let key = vec![Row::new().with("PublicKey", vec![0x30, 0x82, 0x03, 0x0A])];
    assert_eq!(
        public_key(&key).unwrap(),
        Some(vec![0x30, 0x82, 0x03, 0x0A])
    );
    let missing = vec![Row::new().with("PublicKey", Value::Null)];
    assert_eq!(public_key(&missing).unwrap(), None);
    let wrong = vec![Row::new().with("PublicKey", "0x3082")];
    assert!(matches!(public_key(&wrong), Err(ParseError::Row { .. })));
}

fn session(id: i64, database: &str, open: i64, oldest: Option<DateTime>) -> Row {
    Row::new()
        .with("session_id", id)
        .with("database_name", database)
        .with("login_name", "app_user")
        .with("host_name", Some("web-01"))
        .with("program_name", Value::Null)
        .with("status", "sleeping")
        .with("open_transactions", open)
        .with("oldest_transaction_begin", oldest)
}

#[test]
fn workload_activity_reads_sessions_and_transactions() {
    let rows = vec![
        session(53, "ToyStore", 0, None),
        session(61, "ToyStore", 2, Some(at(6, 40, 0))),
    ];
    let activity = workload_activity(&rows).unwrap();
    assert!(!activity.is_quiet());
    assert!(activity.has_open_transactions());
    assert_eq!(activity.open_transactions(), 2);
    let s = &activity.sessions[1];
    assert_eq!(s.session_id, 61);
    assert_eq!(s.database, db("ToyStore"));
    assert_eq!(s.login, "app_user");
    assert_eq!(s.host.as_deref(), Some("web-01"));
    assert_eq!(s.program, None);
    assert_eq!(s.status, "sleeping");
    assert_eq!(
        s.oldest_transaction_start.unwrap().to_string(),
        "2026-11-26T06:40:00.000Z"
    );
    assert!(workload_activity(&[]).unwrap().is_quiet());
    let bad = vec![session(70_000, "ToyStore", 0, None)];
    assert!(
        workload_activity(&bad)
            .unwrap_err()
            .to_string()
            .contains("session_id")
    );
}

#[test]
fn business_critical_rows_keep_the_primary_replica() {
    // A local high-availability replica of the instance: neither local nor primary.
    let local_ha = db_row(
        "ToyStore",
        "AG_ToyStore_MI",
        false,
        "SYNCHRONIZED",
        "HEALTHY",
        Some("5"),
        Some("5"),
        Some("5"),
        None,
        None,
        None,
    );
    let rows = vec![
        db_row(
            "ToyStore",
            "AG_ToyStore_MI",
            true,
            "SYNCHRONIZED",
            "HEALTHY",
            Some("7"),
            Some("7"),
            Some("7"),
            None,
            None,
            None,
        ),
        local_ha,
    ];
    let parsed = database_replica_states(&rows).unwrap();
    let primary = primary_replica_rows(&parsed);
    assert_eq!(primary.len(), 1);
    assert_eq!(primary[0].last_hardened_lsn.unwrap().value(), 7);
}

#[test]
fn the_build_read_with_the_link() {
    let rows = vec![
        Row::new()
            .with("product_version", "16.0.4125.3")
            .with("product_update_level", "CU13"),
    ];
    assert_eq!(
        product_version(&rows).unwrap(),
        SqlVersion::parse("16.0.4125.3").unwrap()
    );
    let bad = vec![Row::new().with("product_version", "sixteen")];
    assert!(
        product_version(&bad)
            .unwrap_err()
            .to_string()
            .contains("product_version")
    );
    assert!(matches!(
        product_version(&[]),
        Err(ParseError::RowCount { found: 0, .. })
    ));
}
