//! The real SQL Server adapter over TDS against the handler: every op changes the world as in
//! process does.

use std::sync::Arc;

use async_trait::async_trait;

use super::*;
use crate::lifecycle::SourceOp;
use crate::ports::SourceServer;
use crate::sim::Lab;
use crate::sim::faults::{Fault, InjectedError, SourceCall, Trigger};
use crate::sim::sql::ddl::fixtures::{comparable, first_difference, link_ops, render_context};
use crate::sim::tds::{TdsServer, TdsServerConfig};

const USER: &str = "milink";
const PASSWORD: &str = "S3cret!pw";

fn handler(lab: &Lab, side: Side) -> SimSqlHandler {
    SimSqlHandler::new(lab.sim.clone(), side, USER, Secret::new(PASSWORD))
}

/// A timer whose sleeps never end: the command timeout never fires, only the server answers
/// (the world's virtual clock is the simulator's, not the client's).
struct NeverTimer;

impl crate::time::Clock for NeverTimer {
    fn now(&self) -> crate::time::Timestamp {
        crate::time::Timestamp::from_millis(1_000_000)
    }
}

#[async_trait]
impl crate::time::Timer for NeverTimer {
    async fn sleep_until(&self, _deadline: crate::time::Timestamp) {
        std::future::pending::<()>().await;
    }
}

struct Wire {
    server: TdsServer,
    ca: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Wire {
    async fn start(lab: &Lab) -> Wire {
        Wire::serve(handler(lab, Side::SqlServer)).await
    }

    async fn serve(h: SimSqlHandler) -> Wire {
        let server = TdsServer::start(TdsServerConfig::default(), Arc::new(h))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("server.der");
        std::fs::write(&ca, server.certificate_der()).unwrap();
        Wire {
            server,
            ca,
            _dir: dir,
        }
    }

    fn adapter(&self, _lab: &Lab) -> crate::sqlserver::SqlServerAdapter {
        use crate::sqlserver::connection::{ConnectOptions, Connection, Encryption};
        let options = ConnectOptions::builder("127.0.0.1")
            .port(self.server.addr().port())
            .sql_login(USER, Secret::new(PASSWORD))
            .encryption(Encryption::Mandatory)
            .trusted_ca(&self.ca)
            .reconnect_attempts(0)
            .build()
            .unwrap();
        crate::sqlserver::SqlServerAdapter::new(
            Connection::new(options, Arc::new(NeverTimer)),
            render_context(),
        )
    }
}

/// Runs `ops` through the adapter over TDS on `wire_lab` and in process on `twin` (same seed,
/// same history), checking after each op that both answered alike and left the same world.
async fn compare_over_tds(wire: Wire, wire_lab: &Lab, twin: &Lab, ops: &[SourceOp]) {
    let adapter = wire.adapter(wire_lab);
    let local = twin.sim.sql_server();
    for op in ops {
        let a = local.execute(op).await.map(|_| ()).map_err(|e| e.code());
        let b = adapter.execute(op).await.map(|_| ()).map_err(|e| e.code());
        assert_eq!(a, b, "{op:?}");
        // Every op costs the same port calls both ways (root CA trust: one per root CA).
        let calls = |lab: &Lab| lab.sim.with_world(|w| w.faults.calls.clone());
        assert_eq!(calls(wire_lab), calls(twin), "after {op:?}");
        assert_eq!(wire_lab.sim.now(), twin.sim.now(), "after {op:?}");
        let wa = twin.sim.with_world(comparable);
        let wb = wire_lab.sim.with_world(comparable);
        let diff = first_difference(&wa, &wb);
        assert!(diff.is_none(), "after {op:?}: {diff:?}");
    }
    wire.server.shutdown().await;
}

#[tokio::test]
async fn unguarded_ops_through_the_adapter_change_the_world_as_in_process() {
    let wire_lab = Lab::tailspin(5).unwrap();
    let twin = Lab::tailspin(5).unwrap();
    let ops = link_ops(&wire_lab);
    // The guarded preparation runs in process on both (the guards need the query engine).
    for lab in [&wire_lab, &twin] {
        for op in &ops[..9] {
            lab.sim.sql_server().execute(op).await.unwrap();
        }
    }
    let unguarded: Vec<SourceOp> = ops
        .iter()
        .filter(|op| {
            matches!(
                op,
                SourceOp::GrantCreateAnyDatabase { .. } | SourceOp::SetAvailabilityMode { .. }
            )
        })
        .cloned()
        .collect();
    compare_over_tds(Wire::start(&wire_lab).await, &wire_lab, &twin, &unguarded).await;
    // A refusal arrives with its number, and an injected fault too.
    let wire = Wire::start(&wire_lab).await;
    let adapter = wire.adapter(&wire_lab);
    let grant_nothing = SourceOp::GrantCreateAnyDatabase {
        ag: crate::names::AgName::new("AG_Nothing").unwrap(),
    };
    let e = adapter.execute(&grant_nothing).await.unwrap_err();
    assert_eq!(e.code(), "sql:15151");
    wire_lab.sim.inject(
        Trigger::OnCall {
            call: Call::Source(SourceCall::SetAvailabilityMode),
            nth: 2,
        },
        Fault::Fail(InjectedError {
            code: "sql:1205".into(),
            message: "Transaction was deadlocked".into(),
            transient: true,
            retry_after: None,
        }),
    );
    let e = adapter.execute(&ops[9]).await.unwrap_err();
    assert_eq!(e.code(), "sql:1205");
    wire.server.shutdown().await;
}

#[tokio::test]
async fn every_op_through_the_adapter_changes_the_world_as_in_process() {
    let wire_lab = Lab::tailspin(5).unwrap();
    let twin = Lab::tailspin(5).unwrap();
    let ops = link_ops(&wire_lab);
    let mut twice = ops.clone();
    twice.extend(ops.iter().cloned());
    compare_over_tds(Wire::start(&wire_lab).await, &wire_lab, &twin, &twice).await;
}

#[tokio::test]
async fn every_op_through_the_adapter_with_world_guards_changes_the_world_as_in_process() {
    use crate::sim::sql::ddl::fixtures::WorldGuard;
    let wire_lab = Lab::tailspin(5).unwrap();
    let twin = Lab::tailspin(5).unwrap();
    // The public key read is a query (answered by the query engine, not by the fake).
    let ops: Vec<SourceOp> = link_ops(&wire_lab)
        .into_iter()
        .filter(|op| !matches!(op, SourceOp::ExportCertificatePublicKey { .. }))
        .collect();
    let mut twice = ops.clone();
    twice.extend(ops.iter().cloned());
    let h = handler(&wire_lab, Side::SqlServer).with_evaluator(Arc::new(WorldGuard));
    compare_over_tds(Wire::serve(h).await, &wire_lab, &twin, &twice).await;
}
