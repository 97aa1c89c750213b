//! The same consistency over the wire: the real [`SqlServerAdapter`] reads SQL Server's view of
//! the link and the workload over TDS from a loopback [`TdsServer`] whose handler answers with
//! the evaluator.

use std::sync::Arc;

use async_trait::async_trait;

use super::*;
use crate::secret::Secret;
use crate::sim::Sim;
use crate::sim::tds::{Login, Outcome, Param, SqlError, TdsHandler, TdsServer, TdsServerConfig};
use crate::sqlserver::adapter::SqlServerAdapter;
use crate::sqlserver::connection::{ConnectOptions, Connection, Encryption};
use crate::sqlserver::render::RenderContext;

/// Answers every batch with [`run_select`] on SQL Server's side of the world.
struct Reader {
    sim: Sim,
}

#[async_trait]
impl TdsHandler for Reader {
    async fn login(&self, _login: &Login) -> Result<(), SqlError> {
        Ok(())
    }

    async fn batch(&self, session: &SessionInfo, sql: &str, _params: &[Param]) -> Vec<Outcome> {
        match self
            .sim
            .with_world(|w| run_select(w, Side::SqlServer, session, sql))
        {
            Ok(sets) => sets.into_iter().map(Outcome::Rows).collect(),
            Err(e) => vec![Outcome::Error(e)],
        }
    }
}

/// A timer that never fires: only the server decides.
pub(super) struct NeverTimer;

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

#[tokio::test]
async fn the_adapter_over_tds_reads_the_same_view_and_workload_as_in_process() {
    let rig = Rig::new(22);
    let link = rig.spec().link.clone();
    let db = rig.lab.database.clone();
    rig.create_link().await;
    rig.wait_for(|w| matches!(rig.phase(w), Some(ReplicaPhase::Synchronizing)))
        .await;
    rig.lab
        .sim
        .hold_open_transaction(Side::SqlServer, &db, Duration::from_secs(600))
        .unwrap();
    rig.lab
        .sim
        .start_workload(crate::sim::workload::WorkloadSpec {
            database: db.clone(),
            target: Side::SqlServer,
            transactions_per_second: 10.0,
            max_rows_per_transaction: 4,
        });
    rig.sleep(Duration::from_secs(30)).await;

    let server = TdsServer::start(
        TdsServerConfig::default(),
        Arc::new(Reader {
            sim: rig.lab.sim.clone(),
        }),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("server.der");
    std::fs::write(&ca, server.certificate_der()).unwrap();
    let options = ConnectOptions::builder("127.0.0.1")
        .port(server.addr().port())
        .sql_login("milink", Secret::new("S3cret!pw"))
        .encryption(Encryption::Mandatory)
        .trusted_ca(&ca)
        .reconnect_attempts(0)
        .build()
        .unwrap();
    let adapter = SqlServerAdapter::new(
        Connection::new(options, Arc::new(NeverTimer)),
        RenderContext::new(Secret::new("Str0ng!MasterKey#1")),
    );

    let dbs = vec![db.clone()];
    let over_tds = adapter.link_state(&link, &dbs).await.unwrap();
    let in_process = normalized(rig.sql.link_state(&link, &dbs).await.unwrap());
    let mut over_tds_cmp = over_tds.clone();
    let mut in_process_cmp = in_process.clone();
    if in_process.connected {
        for d in over_tds_cmp
            .databases
            .iter_mut()
            .chain(in_process_cmp.databases.iter_mut())
        {
            d.last_error = None;
        }
    }
    assert_eq!(over_tds_cmp, in_process_cmp);
    assert!(over_tds.connected && over_tds.databases[0].last_commit_lsn.is_some());

    let activity = adapter.workload_activity(&dbs).await.unwrap();
    let mut expected = rig.sql.workload_activity(&dbs).await.unwrap();
    for s in &mut expected.sessions {
        s.oldest_transaction_start = s.oldest_transaction_start.map(wire_datetime);
    }
    assert_eq!(activity, expected);
    assert!(!activity.sessions.is_empty());
}
