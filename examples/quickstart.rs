//! The README's Rust quickstart: link ToyStore to the managed instance on the simulator, fail
//! over, and look at the result. Run with `cargo run --example quickstart`.

use std::sync::Arc;

use milink_core::lifecycle::{AssessmentOutcome, FailoverKind};
use milink_core::sim::Lab;
use milink_core::{LinkSession, MemoryJournal, Session, SessionOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A seeded, virtual-time world: SQL Server TailspinSql and the managed instance tailspin-mi.
    let lab = Lab::tailspin(7)?;
    let session = Session::create(
        lab.spec.clone(),
        Arc::new(lab.sim.sql_server()),
        Arc::new(lab.sim.managed_instance()),
        MemoryJournal::new(), // FileJournal::create(path)? for a resumable session
        Arc::new(lab.sim.clock()),
        SessionOptions::default(),
    )?;

    session
        .record_assessment(AssessmentOutcome { blockers: vec![] })
        .await?;
    session.start().await?; // prepare, trust, AG, DAG, join, seed: returns when replicating
    println!("after start:    {}", session.status().state);

    session.failover(FailoverKind::Planned).await?; // sync, LSN gate, FAILOVER, verify roles
    println!("after failover: {}", session.status().state);
    if let Some(health) = session.health().await? {
        println!(
            "roles: SQL Server {:?}, managed instance {:?}",
            health.source.role, health.instance.role
        );
    }
    Ok(())
}
