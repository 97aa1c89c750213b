//! The handler: logins, batches on both sides, parameters, and faults and time as in process.

use super::*;
use crate::lifecycle::SourceOp;
use crate::ports::SourceServer;
use crate::sim::Lab;
use crate::sim::faults::{Fault, InjectedError, SourceCall, Trigger};
use crate::sim::sql::ddl::fixtures::{comparable, session};
use crate::sim::tds::Value;

const USER: &str = "milink";
const PASSWORD: &str = "S3cret!pw";

fn handler(lab: &Lab, side: Side) -> SimSqlHandler {
    SimSqlHandler::new(lab.sim.clone(), side, USER, Secret::new(PASSWORD))
}

fn login(user: &str, password: &str, token: Option<&str>) -> Login {
    Login {
        tds_version: 0x7400_0004,
        packet_size: 4096,
        host_name: "test".into(),
        user: user.into(),
        password: Secret::new(password),
        app_name: "milink".into(),
        server_name: "127.0.0.1".into(),
        database: None,
        access_token: token.map(Secret::new),
    }
}

fn errors(out: &[Outcome]) -> Vec<u32> {
    out.iter()
        .filter_map(|o| match o {
            Outcome::Error(e) => Some(e.number),
            _ => None,
        })
        .collect()
}

const MASTER_KEY: &str = "CREATE MASTER KEY ENCRYPTION BY PASSWORD = N'Mk!pw-12345'";

#[tokio::test]
async fn logins_check_the_password_without_echoing_it() {
    let lab = Lab::tailspin(3).unwrap();
    let h = handler(&lab, Side::SqlServer);
    assert_eq!(h.login(&login(USER, PASSWORD, None)).await, Ok(()));
    let e = h
        .login(&login(USER, "Wr0ng-guess!", None))
        .await
        .unwrap_err();
    assert_eq!(e.number, 18456);
    assert!(!e.message.contains("Wr0ng") && !e.message.contains(PASSWORD));
    assert_eq!(
        h.login(&login("sa", PASSWORD, None))
            .await
            .unwrap_err()
            .number,
        18456
    );
    assert_eq!(
        h.login(&login("", "", Some("eyJ0")))
            .await
            .unwrap_err()
            .number,
        18456
    );
    let h = h.accepting_access_tokens();
    assert_eq!(h.login(&login("", "", Some("eyJ0"))).await, Ok(()));
    assert!(!format!("{h:?}").contains(PASSWORD));
}

#[test]
fn ddl_changes_the_world_and_a_syntax_error_changes_nothing() {
    let lab = Lab::tailspin(3).unwrap();
    let h = handler(&lab, Side::SqlServer);
    let before = lab.sim.now();
    assert_eq!(h.run_batch(&session(), MASTER_KEY, &[]), []);
    assert!(lab.sim.with_world(|w| w.source.master_key));
    assert!(lab.sim.now() > before, "the call's virtual latency passed");
    // Unguarded, the second one is refused as SQL Server does.
    assert_eq!(errors(&h.run_batch(&session(), MASTER_KEY, &[])), [15578]);
    // A batch is parsed whole before anything runs.
    let json = lab.sim.with_world(comparable);
    let out = h.run_batch(
        &session(),
        "CREATE CERTIFICATE c WITH SUBJECT = N's';\nCREATE CERTIFICATE d WITH SUBJEKT = N's'",
        &[],
    );
    assert_eq!(errors(&out), [102]);
    assert_eq!(lab.sim.with_world(comparable), json);
    // A failing statement ends the batch.
    let out = h.run_batch(
        &session(),
        "ALTER AVAILABILITY GROUP [nope] GRANT CREATE ANY DATABASE; CREATE CERTIFICATE c WITH SUBJECT = N's'",
        &[],
    );
    assert_eq!(errors(&out), [15151]);
    assert!(
        lab.sim
            .with_world(|w| !w.source.certificates.contains_key("c"))
    );
}

#[test]
fn parameters_are_bound_into_exec_arguments() {
    let lab = Lab::tailspin(3).unwrap();
    let h = handler(&lab, Side::SqlServer);
    let out = h.run_batch(
        &session(),
        "CREATE CERTIFICATE [MicrosoftPKI] FROM BINARY = 0x3082000101;\n\
         DECLARE @id int = CERT_ID(N'MicrosoftPKI');\n\
         EXEC sp_certificate_add_issuer @id, @P1;",
        &[Param {
            name: "@P1".into(),
            value: Value::String("*.database.windows.net".into()),
        }],
    );
    assert_eq!(out, []);
    lab.sim.with_world(|w| {
        let c = &w.source.certificates["MicrosoftPKI"];
        assert_eq!(c.der, [0x30, 0x82, 0x00, 0x01, 0x01]);
        assert_eq!(
            c.trusted_issuer_for.as_deref(),
            Some("*.database.windows.net")
        );
        assert!(w.source.root_ca_trust);
    });
}

#[test]
fn the_managed_instance_endpoint_refuses_ddl() {
    let lab = Lab::tailspin(3).unwrap();
    let h = handler(&lab, Side::ManagedInstance);
    let json = lab.sim.with_world(comparable);
    assert_eq!(
        errors(&h.run_batch(&session(), MASTER_KEY, &[])),
        [READ_ONLY_ENDPOINT]
    );
    assert_eq!(
        errors(&h.run_batch(&session(), "IF 1 = 1 SET NOCOUNT ON", &[])),
        [READ_ONLY_ENDPOINT]
    );
    assert_eq!(lab.sim.with_world(comparable), json);
    // Queries go to the query engine, as that side sees the world.
    let sql = "SELECT name FROM sys.databases";
    let expected = lab
        .sim
        .with_world(|w| query::run_select(w, Side::ManagedInstance, &session(), sql));
    let out = h.run_batch(&session(), sql, &[]);
    match expected {
        Ok(sets) => assert_eq!(out, sets.into_iter().map(Outcome::Rows).collect::<Vec<_>>()),
        Err(e) => assert_eq!(out, [Outcome::Error(e)]),
    }
}

#[tokio::test]
async fn a_fault_plan_fires_over_the_wire_as_in_process() {
    let call = Call::Source(SourceCall::EnsureMasterKey);
    let injected = InjectedError {
        code: "sql:1205".into(),
        message: "Transaction was deadlocked".into(),
        transient: true,
        retry_after: None,
    };
    // An injected SQL error: the TDS error with its number; nothing runs.
    let lab = Lab::tailspin(3).unwrap();
    lab.sim.inject(
        Trigger::OnCall { call, nth: 1 },
        Fault::Fail(injected.clone()),
    );
    let out = handler(&lab, Side::SqlServer).run_batch(&session(), MASTER_KEY, &[]);
    assert_eq!(errors(&out), [1205]);
    assert!(lab.sim.with_world(|w| !w.source.master_key));
    // The same plan in process: the same error.
    let twin = Lab::tailspin(3).unwrap();
    twin.sim
        .inject(Trigger::OnCall { call, nth: 1 }, Fault::Fail(injected));
    let e = twin
        .sim
        .sql_server()
        .execute(&SourceOp::EnsureMasterKey)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "sql:1205");
    assert_eq!(lab.sim.now(), twin.sim.now(), "the same virtual latency");

    // A dropped connection: closed before anything runs.
    let lab = Lab::tailspin(3).unwrap();
    lab.sim
        .inject(Trigger::OnCall { call, nth: 1 }, Fault::ConnectionDrop);
    let out = handler(&lab, Side::SqlServer).run_batch(&session(), MASTER_KEY, &[]);
    assert_eq!(out, [Outcome::Close]);
    assert!(lab.sim.with_world(|w| !w.source.master_key));

    // A lost response: the batch runs, then the connection closes.
    let lab = Lab::tailspin(3).unwrap();
    lab.sim
        .inject(Trigger::OnCall { call, nth: 1 }, Fault::LostResponse);
    let out = handler(&lab, Side::SqlServer).run_batch(&session(), MASTER_KEY, &[]);
    assert_eq!(out, [Outcome::Close]);
    assert!(lab.sim.with_world(|w| w.source.master_key));
    assert_eq!(lab.sim.with_world(|w| w.stats.faults_fired), 1);
}
