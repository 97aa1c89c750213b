//! The real SQL Server adapter over TDS against the handler: every op changes the world as in
//! process does.

use std::sync::Arc;

use async_trait::async_trait;

use super::*;
use crate::lifecycle::SourceOp;
use crate::ports::{PortError, SourceServer};
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

/// The adapter, counting its calls on the wire for the session's [`WireClock`].
struct Counted {
    adapter: crate::sqlserver::SqlServerAdapter,
    in_flight: Arc<crate::sim::wire::InFlight>,
}

#[async_trait]
impl SourceServer for Counted {
    async fn execute(&self, op: &SourceOp) -> Result<crate::ports::SourceReply, PortError> {
        let _call = self.in_flight.enter();
        self.adapter.execute(op).await
    }
    async fn link_state(
        &self,
        link: &crate::lifecycle::LinkName,
        databases: &[crate::names::DatabaseName],
    ) -> Result<crate::lifecycle::SideView, PortError> {
        let _call = self.in_flight.enter();
        self.adapter.link_state(link, databases).await
    }
}

/// A SQL error SQL Server answers reaches the session as its typed kind, over TDS: a
/// permanent one fails the step with `sql:<number>` and leaves it to the user; a transient one
/// is retried and the link goes on.
#[tokio::test]
async fn sql_errors_over_tds_reach_the_session_typed() {
    use crate::journal::MemoryJournal;
    use crate::lifecycle::Phase;
    use crate::session::{LinkSession, Session, SessionOptions};
    use crate::sim::wire::{InFlight, WireClock};

    let call = Call::Source(SourceCall::EnsureEndpointCertificate);
    // Transience comes from milink's table of SQL Server errors, not from the simulator: the
    // wire carries only the number and the text.
    for (number, transient) in [
        (15151u32, false),
        (41973, false),
        (2812, false),
        (41962, true),
        (1205, true),
        (40613, true),
    ] {
        let lab = Lab::tailspin(2).unwrap();
        lab.sim.inject(
            Trigger::OnCall { call, nth: 1 },
            Fault::Fail(InjectedError {
                code: format!("sql:{number}"),
                message: format!("injected error {number}"),
                // The opposite flag in the simulator: over the wire it must not matter.
                transient: !transient,
                retry_after: None,
            }),
        );
        let wire = Wire::start(&lab).await;
        let in_flight = InFlight::new();
        let source = Counted {
            adapter: wire.adapter(&lab),
            in_flight: Arc::clone(&in_flight),
        };
        let session = Session::create(
            lab.spec.clone(),
            Arc::new(source),
            Arc::new(lab.sim.managed_instance()),
            MemoryJournal::new(),
            Arc::new(WireClock::new(lab.sim.clock(), in_flight)),
            SessionOptions::default(),
        )
        .unwrap();
        session
            .record_assessment(crate::lifecycle::AssessmentOutcome { blockers: vec![] })
            .await
            .unwrap();
        let result = session.start().await;
        let status = session.status();
        if transient {
            result.unwrap();
            assert!(
                matches!(status.state, Phase::Seeding | Phase::Replicating),
                "{number}: {}",
                status.detail
            );
            assert_eq!(lab.sim.with_world(|w| w.faults.count(call)), 2, "{number}");
        } else {
            assert!(result.is_err(), "{number}");
            let error = status.last_error.expect("the step's error");
            assert_eq!(error.code, format!("sql:{number}"));
            assert!(!error.retryable, "{number}");
            // The error's text names the cause and the fix from milink's table, not only the
            // server's words.
            assert!(error.message.len() > format!("injected error {number}").len());
        }
        wire.server.shutdown().await;
    }
}

#[tokio::test]
async fn the_workload_reading_over_tds_is_the_in_process_one() {
    use crate::ports::SourceServer;
    let lab = crate::sim::Lab::tailspin(3).unwrap();
    let wire = Wire::start(&lab).await;
    let adapter = wire.adapter(&lab);
    let local = lab.sim.sql_server();
    let dbs = lab.spec.databases.clone();
    let a = local
        .workload_activity(&dbs)
        .await
        .map_err(|e| e.to_string());
    let b = adapter
        .workload_activity(&dbs)
        .await
        .map_err(|e| e.to_string());
    assert_eq!(a, b);
    wire.server.shutdown().await;
}

#[tokio::test]
async fn the_workload_over_tds_is_the_worlds() {
    let lab = Lab::tailspin(3).unwrap();
    let wire = Wire::start(&lab).await;
    let adapter = wire.adapter(&lab);
    let dbs = std::slice::from_ref(&lab.database);
    let quiet = adapter.workload_activity(dbs).await.unwrap();
    assert!(quiet.is_quiet(), "{quiet:?}");
    lab.sim.start_workload(crate::sim::WorkloadSpec {
        database: lab.database.clone(),
        target: Side::SqlServer,
        transactions_per_second: 10.0,
        max_rows_per_transaction: 2,
    });
    let busy = adapter.workload_activity(dbs).await.unwrap();
    assert!(!busy.is_quiet());
    let want = lab
        .sim
        .with_world(|w| w.client_sessions(Side::SqlServer, dbs));
    assert_eq!(
        busy.sessions
            .iter()
            .map(|s| s.session_id)
            .collect::<Vec<_>>(),
        want.sessions
            .iter()
            .map(|s| s.session_id)
            .collect::<Vec<_>>()
    );
}
