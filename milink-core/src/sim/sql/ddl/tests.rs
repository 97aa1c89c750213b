//! The parser: hand-written statements into their AST, every builder's output parses, and a
//! builder-shaped statement with one keyword wrong is error 102.

use super::ast::{Condition, Ddl, EndpointState, Expr, Statement};
use super::parse_script;
use crate::lifecycle::AvailabilityMode;
use crate::sim::tds::Value;
use crate::time::Date;

fn parse(sql: &str) -> Vec<Statement> {
    match parse_script(sql) {
        Ok((_, s)) => s.statements,
        Err(e) => panic!("{sql}\n{e:?}"),
    }
}

fn one_ddl(sql: &str) -> Ddl {
    match parse(sql).as_slice() {
        [Statement::Ddl(d)] => d.clone(),
        other => panic!("{sql}: {other:?}"),
    }
}

fn syntax(sql: &str) -> String {
    match parse_script(sql) {
        Ok((_, s)) => panic!("parsed: {sql}\n{s:?}"),
        Err(e) => {
            assert_eq!(e.number, 102, "{sql}: {e:?}");
            e.message
        }
    }
}

#[test]
fn master_key_and_certificates() {
    let Ddl::CreateMasterKey { password } =
        one_ddl("create master key encryption by password = 'p@ss''word'")
    else {
        panic!()
    };
    assert_eq!(password.expose(), "p@ss'word");
    assert!(!format!("{password:?}").contains("p@ss"));
    assert_eq!(
        one_ddl("CREATE CERTIFICATE MyCert WITH SUBJECT = 'S 1', EXPIRY_DATE = '12/31/2030'"),
        Ddl::CreateCertificate {
            name: "MyCert".into(),
            subject: "S 1".into(),
            expiry: Some(Date::new(2030, 12, 31).unwrap()),
        }
    );
    assert_eq!(
        one_ddl("CREATE CERTIFICATE [a]]b] WITH EXPIRY_DATE = N'2031-02-03', SUBJECT = N'x'"),
        Ddl::CreateCertificate {
            name: "a]b".into(),
            subject: "x".into(),
            expiry: Some(Date::new(2031, 2, 3).unwrap()),
        }
    );
    assert_eq!(
        one_ddl("CREATE CERTIFICATE [host.example] FROM BINARY = 0x0102ff"),
        Ddl::CreateCertificateFromBinary {
            name: "host.example".into(),
            der: vec![1, 2, 0xff],
        }
    );
    assert_eq!(
        one_ddl("DROP CERTIFICATE c1"),
        Ddl::DropCertificate("c1".into())
    );
    // A date SQL Server cannot convert is 241; a certificate without a subject is a syntax error.
    let e =
        parse_script("CREATE CERTIFICATE c WITH SUBJECT = 's', EXPIRY_DATE = 'soon'").unwrap_err();
    assert_eq!(e.number, 241);
    syntax("CREATE CERTIFICATE c WITH EXPIRY_DATE = '20300101'");
    syntax("CREATE CERTIFICATE c WITH SUBJECT = 's', COLOR = 'red'");
}

#[test]
fn endpoints() {
    let Ddl::CreateEndpoint { name, body } = one_ddl(
        "CREATE ENDPOINT ep STATE=STARTED AS TCP (LISTENER_IP = ALL, LISTENER_PORT=5023) \
         FOR DATABASE_MIRRORING (AUTHENTICATION = WINDOWS NEGOTIATE CERTIFICATE c, \
         ENCRYPTION = REQUIRED ALGORITHM AES RC4, ROLE=ALL)",
    ) else {
        panic!()
    };
    assert_eq!(name, "ep");
    assert_eq!(body.state, Some(EndpointState::Started));
    assert_eq!(body.port, Some(5023));
    assert_eq!(body.windows_auth.as_deref(), Some("WINDOWS NEGOTIATE"));
    assert_eq!(body.certificate.as_deref(), Some("c"));
    let enc = body.encryption.unwrap();
    assert_eq!(
        (enc.mode.as_str(), enc.algorithms),
        ("REQUIRED", vec!["AES".to_string(), "RC4".to_string()])
    );
    let Ddl::AlterEndpoint { name, body } =
        one_ddl("alter endpoint [Hadr_endpoint] state = stopped")
    else {
        panic!()
    };
    assert_eq!(name, "Hadr_endpoint");
    assert_eq!(body.state, Some(EndpointState::Stopped));
    assert_eq!(body.port, None);
    assert_eq!(one_ddl("DROP ENDPOINT ep"), Ddl::DropEndpoint("ep".into()));
    // CREATE needs AS TCP and FOR DATABASE_MIRRORING; ALTER needs something.
    syntax("CREATE ENDPOINT ep STATE = STARTED FOR DATABASE_MIRRORING (ROLE = ALL)");
    syntax("ALTER ENDPOINT ep");
    syntax("CREATE ENDPOINT ep AS TCP (LISTENER_PORT = 5022) FOR DATABASE_MIRRORING (ROLE = BOSS)");
}

#[test]
fn availability_groups() {
    let Ddl::CreateAvailabilityGroup {
        name,
        cluster_type,
        databases,
        replicas,
    } = one_ddl(
        "CREATE AVAILABILITY GROUP ag1 WITH (DB_FAILOVER = OFF, CLUSTER_TYPE = NONE) \
         FOR DATABASE db1, [db 2] REPLICA ON 'SRV' WITH (FAILOVER_MODE = MANUAL, \
         SEEDING_MODE = AUTOMATIC, ENDPOINT_URL = 'TCP://h:5022', \
         SECONDARY_ROLE (ALLOW_CONNECTIONS = ALL), AVAILABILITY_MODE = ASYNCHRONOUS_COMMIT)",
    )
    else {
        panic!()
    };
    assert_eq!(
        (name.as_str(), cluster_type.as_deref()),
        ("ag1", Some("NONE"))
    );
    assert_eq!(databases, ["db1", "db 2"]);
    assert_eq!(replicas.len(), 1);
    assert_eq!(replicas[0].name, "SRV");
    assert_eq!(replicas[0].endpoint_url.as_deref(), Some("TCP://h:5022"));
    assert_eq!(
        replicas[0].availability_mode,
        Some(AvailabilityMode::AsynchronousCommit)
    );
    assert_eq!(
        replicas[0].secondary_allow_connections.as_deref(),
        Some("ALL")
    );
    // No database list (the managed instance seeds it), no cluster type.
    let Ddl::CreateAvailabilityGroup {
        databases,
        cluster_type,
        ..
    } = one_ddl(
        "CREATE AVAILABILITY GROUP ag FOR REPLICA ON N'S' WITH (ENDPOINT_URL = N'u', \
         AVAILABILITY_MODE = SYNCHRONOUS_COMMIT, FAILOVER_MODE = MANUAL)",
    )
    else {
        panic!()
    };
    assert!(databases.is_empty() && cluster_type.is_none());
    // A replica without its required options.
    syntax("CREATE AVAILABILITY GROUP ag FOR REPLICA ON N'S' WITH (ENDPOINT_URL = N'u')");

    let Ddl::CreateDistributedAvailabilityGroup { name, groups } = one_ddl(
        "create availability group [dag] with (distributed) availability group on \
         'ag1' with (listener_url = 'tcp://a:5022', availability_mode = asynchronous_commit, \
         failover_mode = manual, seeding_mode = automatic, session_timeout = 30), \
         N'mi_ag' with (LISTENER_URL = N'tcp://mi.x.database.windows.net:5022;Server=[mi]', \
         AVAILABILITY_MODE = SYNCHRONOUS_COMMIT, FAILOVER_MODE = MANUAL, SEEDING_MODE = AUTOMATIC)",
    ) else {
        panic!()
    };
    assert_eq!(name, "dag");
    assert_eq!(groups[0].session_timeout, Some(30));
    assert_eq!(groups[1].name, "mi_ag");
    assert_eq!(
        groups[1].availability_mode,
        Some(AvailabilityMode::SynchronousCommit)
    );
    syntax(
        "CREATE AVAILABILITY GROUP d WITH (DISTRIBUTED) AVAILABILITY GROUP ON N'a' WITH (LISTENER_URL = N'x')",
    );

    assert_eq!(
        one_ddl("ALTER AVAILABILITY GROUP ag GRANT CREATE ANY DATABASE"),
        Ddl::GrantCreateAnyDatabase("ag".into())
    );
    let Ddl::ModifyDistributed { name, groups } = one_ddl(
        "ALTER AVAILABILITY GROUP d MODIFY AVAILABILITY GROUP ON 'a' WITH \
         (AVAILABILITY_MODE = SYNCHRONOUS_COMMIT), 'b' WITH (AVAILABILITY_MODE = SYNCHRONOUS_COMMIT)",
    ) else {
        panic!()
    };
    assert_eq!((name.as_str(), groups.len()), ("d", 2));
    assert_eq!(
        one_ddl("ALTER AVAILABILITY GROUP d FAILOVER"),
        Ddl::Failover("d".into())
    );
    assert_eq!(
        one_ddl("ALTER AVAILABILITY GROUP [d] FORCE_FAILOVER_ALLOW_DATA_LOSS"),
        Ddl::ForceFailover("d".into())
    );
    assert_eq!(
        one_ddl("ALTER AVAILABILITY GROUP d SET (ROLE = SECONDARY)"),
        Ddl::SetRoleSecondary("d".into())
    );
    assert_eq!(
        one_ddl("DROP AVAILABILITY GROUP [x y]"),
        Ddl::DropAvailabilityGroup("x y".into())
    );
    syntax("ALTER AVAILABILITY GROUP d SET (ROLE = PRIMARY)");
    syntax("ALTER AVAILABILITY GROUP d GRANT CREATE DATABASE");
}

#[test]
fn control_flow_session_statements_and_queries() {
    let stmts = parse(
        "USE master; SET NOCOUNT ON\n\
         IF NOT EXISTS (SELECT 1 FROM sys.certificates WHERE name = N'c' AND (1 = 1))\n\
           BEGIN CREATE CERTIFICATE c FROM BINARY = 0x01; END\n\
         ELSE SELECT CASE WHEN 1 = 1 THEN 1 ELSE 0 END AS x\n\
         SELECT 2 UNION ALL SELECT 3\n\
         DECLARE @id int = CERT_ID(N'c'), @n nvarchar(max);\n\
         BEGIN TRY EXEC sys.sp_certificate_add_issuer @id, N'*.x' END TRY\n\
         BEGIN CATCH IF ERROR_MESSAGE() NOT LIKE N'%already%' THROW; END CATCH",
    );
    assert_eq!(stmts.len(), 6, "{stmts:#?}");
    assert_eq!(stmts[0], Statement::Use("master".into()));
    assert!(matches!(&stmts[1], Statement::SetOption { option, on: true } if option == "NOCOUNT"));
    let Statement::If {
        condition: Condition::Exists {
            negated: true,
            query,
        },
        then,
        otherwise: Some(o),
    } = &stmts[2]
    else {
        panic!("{:?}", stmts[2])
    };
    assert!(!query.reads_hadr && !query.reads_public_key);
    assert!(matches!(then.as_ref(), Statement::Block(b) if b.len() == 1));
    assert!(matches!(o.as_ref(), Statement::Query(_)));
    assert!(matches!(&stmts[3], Statement::Query(_)));
    let Statement::Declare(vars) = &stmts[4] else {
        panic!()
    };
    assert_eq!(vars[0].0, "@id");
    assert!(matches!(&vars[0].1, Some(Expr::CertId(_))));
    assert_eq!(vars[1], ("@n".to_string(), None));
    let Statement::TryCatch { body, handler } = &stmts[5] else {
        panic!()
    };
    assert!(
        matches!(&body[0], Statement::Exec { procedure, args } if procedure == "sp_certificate_add_issuer" && args.len() == 2)
    );
    assert!(matches!(
        &handler[0],
        Statement::If {
            condition: Condition::Like { negated: true, .. },
            ..
        }
    ));
    let Statement::If { then, .. } = &handler[0] else {
        panic!()
    };
    assert!(matches!(then.as_ref(), Statement::Throw(None)));
    let throw = parse("THROW 50001, N'boom', 1;");
    assert!(matches!(
        &throw[0],
        Statement::Throw(Some((Expr::Literal(Value::Int(50001)), _, _)))
    ));
    let q = parse("SELECT CERTENCODED(CERT_ID(N'c')) AS PublicKey");
    assert!(matches!(&q[0], Statement::Query(q) if q.reads_public_key));
    let q = parse("SELECT 1 FROM sys.dm_hadr_database_replica_states");
    assert!(matches!(&q[0], Statement::Query(q) if q.reads_hadr));
}

#[test]
fn what_sql_server_would_not_read_is_error_102() {
    for sql in [
        "GO",
        "USE master\nGO\nSELECT 1",
        "CREATE TABLE t (a int)",
        "IF NOT EXISTS (SELECT 1 CREATE CERTIFICATE c FROM BINARY = 0x01",
        "BEGIN SELECT 1",
        "BEGIN TRY SELECT 1 END TRY",
        "SET ROWCOUNT 5",
        "ALTER AVAILABILITY GROUP",
        "DECLARE x int",
        "SELECT (1",
    ] {
        syntax(sql);
    }
    let e = parse_script("EXEC sp_certificate_add_issuer SOUNDEX(N'a'), N'x'").unwrap_err();
    assert_eq!(e.number, 195);
    let m = syntax("CREATE MASTER KEY ENCRYPTION BY PASSWORD N'Hunter2-secret'");
    assert!(!m.contains("Hunter2"), "{m}");
    assert_eq!(
        syntax("ALTER AVAILABILITY GROUP d FAILOVR"),
        "Incorrect syntax near 'FAILOVR'."
    );
}

#[test]
fn the_link_probes_parse_as_read_only_statements() {
    use crate::names::{CertificateName, DatabaseName, LinkName};
    use crate::tsql;
    let link = LinkName::new("DAG_ToyStore").unwrap();
    let dbs = [DatabaseName::new("ToyStore").unwrap()];
    let probes = [
        tsql::probe_replica_states(&link),
        tsql::probe_database_replica_states(&link),
        tsql::probe_database_replica_states_by_database(&dbs),
        tsql::probe_seeding_stats(),
        tsql::probe_first_full_backups(&dbs),
        tsql::probe_hadr_port(),
        tsql::probe_dns_record_name(),
        tsql::probe_sp_certificate_add_issuer_exists(),
        tsql::probe_certificates(&[CertificateName::new("c").unwrap()]),
        tsql::probe_workload_activity(&dbs),
        tsql::readiness::instance_properties(),
        tsql::readiness::mirroring_endpoints(),
        tsql::readiness::certificates(),
        tsql::readiness::database_files(),
    ];
    // The workload probe is one statement: its CTEs and their main SELECT.
    let workload = parse(tsql::probe_workload_activity(&dbs).expose_sql());
    assert_eq!(workload.len(), 1, "{workload:?}");
    for p in probes {
        let stmts = parse(p.expose_sql());
        assert!(
            stmts.iter().all(|s| matches!(
                s,
                Statement::Query(_) | Statement::SetOption { .. } | Statement::Use(_)
            )),
            "{p}"
        );
    }
}

#[test]
fn declared_scalars_the_parser_does_not_know_go_to_the_query_engine() {
    use crate::names::SqlVersion;
    let b = crate::tsql::readiness::databases(SqlVersion::new(16, 0, 4125, 3));
    let stmts = parse(b.expose_sql());
    let Some(Statement::Declare(vars)) = stmts.get(1) else {
        panic!("{stmts:?}")
    };
    assert!(matches!(&vars[0].1, Some(Expr::Query(_))), "{vars:?}");
    // Temporary tables, table variables and cursors are not read (assessment batches only).
    for b in [
        crate::tsql::readiness::trace_flags(),
        crate::tsql::readiness::database_catalog(SqlVersion::new(16, 0, 4125, 3)),
    ] {
        syntax(b.expose_sql());
    }
}

#[test]
fn readiness_probes_are_no_port_call_and_the_key_export_and_link_probes_are() {
    use super::classify::classify;
    use crate::names::{CertificateName, LinkName};
    use crate::sim::faults::{Call, SourceCall};
    let lab = crate::sim::Lab::tailspin(1).unwrap();
    lab.sim.with_world(|w| {
        let call = |b: crate::tsql::Batch| classify(w, &parse(b.expose_sql()));
        // The cluster's name and a listing of certificates with their bytes are catalog reads.
        assert_eq!(call(crate::tsql::readiness::instance_properties()), None);
        assert_eq!(call(crate::tsql::readiness::certificates()), None);
        assert_eq!(
            call(crate::tsql::export_certificate_public_key(
                &CertificateName::new("c").unwrap()
            )),
            Some(Call::Source(SourceCall::ExportCertificatePublicKey))
        );
        assert_eq!(
            call(crate::tsql::probe_replica_states(
                &LinkName::new("l").unwrap()
            )),
            Some(Call::SourceLinkState)
        );
    });
}
