//! How long the application cannot write during a planned failover, in the simulator's virtual
//! time: three strategies on the same seeds, for failover latencies L of 2, 10 and 60 s and two
//! log rates. Prints a table, or one JSON document with `--json`. Not a timed test: every number
//! is virtual time or a count, and the same seed gives the same numbers.
//!
//! Strategies:
//! - `milink`: `prepare()` while the application writes (both sides to synchronous commit),
//!   then the application stops and `failover(Planned)` runs the catch-up gate and the role
//!   change;
//! - `manual`: the documented sequence: stop, switch to synchronous commit (T-SQL, then the
//!   ARM `PATCH` polled as its `Retry-After` says), read both sides every 7 s until the LSNs are
//!   equal, then T-SQL `FAILOVER`;
//! - `manual-30s`: the same with operations polled every 30 s (the Azure SDK's default).
//!
//! Measured per run: the window from "application told to stop" to "the managed instance
//! accepts writes" (the simulator's role change), "stopped → ready" (the window minus L: the
//! role change is issued L before it completes), and the ARM calls and T-SQL round trips from
//! the start of the procedure (milink's prepare included) to the role change.
//!
//! A second table runs a failback (the instance's ARM `failover` inside the window) while the
//! simulated service sends 10, 2 or 1 s of `Retry-After` on running polls, and reports when SQL
//! Server took writes, when the application was redirected, and the ARM polls.
//!
//! Run: `cargo bench -p milink-benches --bench downtime [-- --json]`.

use std::sync::Arc;
use std::time::Duration;

use milink_core::lifecycle::{
    AssessmentOutcome, AvailabilityMode, FailoverKind, InstanceOp, ReplicaRole, Side, SourceOp,
};
use milink_core::names::Lsn;
use milink_core::ports::{ArmReply, ManagedInstance, PollReply, SourceServer};
use milink_core::session::SessionEvent;
use milink_core::sim::{
    ArmTiming, Call, DurationRange, EventKind, Lab, SimConfig, WorkloadRedirect, WorkloadSpec,
};
use milink_core::time::Timestamp;
use milink_core::{LinkSession, MemoryJournal, Session, SessionOptions};
use serde::Serialize;

const LATENCIES: [u64; 3] = [2, 10, 60];
const RATES: [f64; 2] = [15.0, 150.0];
const SEEDS: [u64; 3] = [1, 2, 3];
/// The `Retry-After` the simulated service sends on running polls, for the failback table.
const RETRY_AFTERS: [u64; 3] = [10, 2, 1];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Strategy {
    Milink,
    Manual,
    Manual30s,
}

impl Strategy {
    fn name(self) -> &'static str {
        match self {
            Strategy::Milink => "milink",
            Strategy::Manual => "manual",
            Strategy::Manual30s => "manual-30s",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
struct Run {
    strategy: Strategy,
    latency_seconds: u64,
    transactions_per_second: f64,
    seed: u64,
    window_seconds: f64,
    stopped_to_ready_seconds: f64,
    arm_calls: u64,
    arm_reads: u64,
    tsql_round_trips: u64,
    lost_transactions: u64,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn config(seed: u64, latency: u64) -> SimConfig {
    let l = DurationRange::fixed(Duration::from_secs(latency));
    SimConfig {
        sql_failover: l,
        arm: ArmTiming {
            failover: l,
            ..ArmTiming::default()
        },
        ..SimConfig::with_seed(seed)
    }
}

/// (ARM calls, ARM reads, T-SQL round trips) counted by the simulator so far.
fn calls(lab: &Lab) -> (u64, u64, u64) {
    lab.sim.with_world(|w| {
        let mut arm = 0;
        let mut reads = 0;
        let mut tsql = 0;
        for (call, n) in &w.faults.calls {
            let n = u64::from(*n);
            if call.is_source() {
                tsql += n;
            } else {
                arm += n;
                if matches!(call, Call::Poll | Call::InstanceLinkState) {
                    reads += n;
                }
            }
        }
        (arm, reads, tsql)
    })
}

/// When the managed instance became primary after `after`.
fn writable_at(lab: &Lab, after: Timestamp) -> Option<Timestamp> {
    lab.sim.events().into_iter().find_map(|e| match e.kind {
        EventKind::RoleChanged {
            side: Side::ManagedInstance,
            role: ReplicaRole::Primary,
            ..
        } if e.at >= after => Some(e.at),
        _ => None,
    })
}

fn session(
    lab: &Lab,
    seed: u64,
) -> Result<
    Session<milink_core::sim::SimSqlServer, milink_core::sim::SimManagedInstance, MemoryJournal>,
    BoxError,
> {
    Ok(Session::create(
        lab.spec.clone(),
        Arc::new(lab.sim.sql_server()),
        Arc::new(lab.sim.managed_instance()),
        MemoryJournal::new(),
        Arc::new(lab.sim.clock()),
        SessionOptions {
            seed,
            event_capacity: 1 << 16,
            ..SessionOptions::default()
        },
    )?
    .with_redirect_hook(Arc::new(WorkloadRedirect::new(lab.sim.clone()))))
}

async fn run(strategy: Strategy, latency: u64, tps: f64, seed: u64) -> Result<Run, BoxError> {
    let lab = Lab::tailspin_with(config(seed, latency))?;
    let s = session(&lab, seed)?;
    s.record_assessment(AssessmentOutcome {
        blockers: Vec::new(),
    })
    .await?;
    s.start().await?;
    lab.sim.start_workload(WorkloadSpec {
        database: lab.database.clone(),
        target: Side::SqlServer,
        transactions_per_second: tps,
        max_rows_per_transaction: 4,
    });
    lab.sim.advance(Duration::from_secs(120));
    let (arm0, reads0, tsql0) = calls(&lab);
    let mut extra_tsql = 0;
    let stopped = match strategy {
        Strategy::Milink => {
            s.prepare().await?;
            let mut events = s.subscribe();
            let stopped = lab.sim.now();
            lab.sim.stop_workload();
            s.failover(FailoverKind::Planned).await?;
            // The gate's workload reading is a T-SQL round trip the simulator does not count.
            while let Ok(e) = events.try_recv() {
                if matches!(&e, SessionEvent::StepStarted { action, .. } if action == "probe:workload")
                {
                    extra_tsql += 1;
                }
            }
            stopped
        }
        Strategy::Manual | Strategy::Manual30s => {
            let poll_every = match strategy {
                Strategy::Manual30s => Some(Duration::from_secs(30)),
                Strategy::Manual | Strategy::Milink => None,
            };
            let stopped = lab.sim.now();
            lab.sim.stop_workload();
            manual(&lab, poll_every).await?;
            stopped
        }
    };
    let at = writable_at(&lab, stopped).ok_or("the managed instance never became primary")?;
    let window = at.since(stopped);
    let (arm1, reads1, tsql1) = calls(&lab);
    Ok(Run {
        strategy,
        latency_seconds: latency,
        transactions_per_second: tps,
        seed,
        window_seconds: window.as_secs_f64(),
        stopped_to_ready_seconds: window
            .saturating_sub(Duration::from_secs(latency))
            .as_secs_f64(),
        arm_calls: arm1 - arm0,
        arm_reads: reads1 - reads0,
        tsql_round_trips: tsql1 - tsql0 + extra_tsql,
        lost_transactions: lab.sim.lost_transactions(&lab.database),
    })
}

/// The documented sequence, with ARM operations polled as `Retry-After` says (or every
/// `poll_every`).
async fn manual(lab: &Lab, poll_every: Option<Duration>) -> Result<(), BoxError> {
    let spec = &lab.spec;
    let sql = lab.sim.sql_server();
    let mi = lab.sim.managed_instance();
    sql.execute(&SourceOp::SetAvailabilityMode {
        dag: spec.link.clone(),
        sql_ag: spec.source.ag.clone(),
        mi_ag: spec.target.ag.clone(),
        mode: AvailabilityMode::SynchronousCommit,
    })
    .await?;
    let patch = InstanceOp::SetReplicationMode {
        link: spec.link.clone(),
        mode: AvailabilityMode::SynchronousCommit,
    };
    if let ArmReply::Accepted(op) = mi.begin(&patch).await? {
        let mut wait = poll_every.unwrap_or(Duration::from_secs(10));
        loop {
            lab.sim.advance(wait);
            match mi.poll(&op).await? {
                PollReply::Succeeded => break,
                PollReply::Running { retry_after } => {
                    wait = poll_every
                        .or(retry_after)
                        .unwrap_or(Duration::from_secs(10));
                }
            }
        }
    }
    // The LSNs every 7 s until equal on both sides (as Microsoft's cutover sample does).
    loop {
        let source = sql.link_state(&spec.link, &spec.databases).await?;
        let instance = mi.link_state(&spec.link).await?;
        let lsn = |v: &milink_core::lifecycle::SideView, end: bool| -> Option<Lsn> {
            v.databases.first().and_then(|d| {
                if end {
                    d.end_of_log_lsn.or(d.last_hardened_lsn)
                } else {
                    d.last_hardened_lsn
                }
            })
        };
        let sync = source.mode == Some(AvailabilityMode::SynchronousCommit)
            && instance.mode == Some(AvailabilityMode::SynchronousCommit);
        if sync && lsn(&source, true).is_some() && lsn(&source, true) == lsn(&instance, false) {
            break;
        }
        lab.sim.advance(Duration::from_secs(7));
    }
    sql.execute(&SourceOp::Failover {
        dag: spec.link.clone(),
    })
    .await?;
    Ok(())
}

/// A failback (the managed instance's ARM `failover`, latency `latency`) while the simulated
/// service sends `Retry-After: retry_after` on running polls: from the application's stop (on
/// the instance, after the failover) to SQL Server taking writes and to the application being
/// redirected to it (milink saw the operation done, checked the roles, called the hook), and the
/// ARM polls.
#[derive(Debug, Clone, Serialize)]
struct FailbackRun {
    latency_seconds: u64,
    retry_after_seconds: u64,
    seed: u64,
    window_seconds: f64,
    redirected_seconds: f64,
    polls: u64,
}

async fn failback(latency: u64, retry_after: u64, seed: u64) -> Result<FailbackRun, BoxError> {
    let mut cfg = config(seed, latency);
    cfg.arm.retry_after = Duration::from_secs(retry_after);
    let lab = Lab::tailspin_with(cfg)?;
    let s = session(&lab, seed)?;
    s.record_assessment(AssessmentOutcome {
        blockers: Vec::new(),
    })
    .await?;
    s.start().await?;
    s.prepare().await?;
    s.failover(FailoverKind::Planned).await?;
    lab.sim.start_workload(WorkloadSpec {
        database: lab.database.clone(),
        target: Side::ManagedInstance,
        transactions_per_second: 15.0,
        max_rows_per_transaction: 4,
    });
    lab.sim.advance(Duration::from_secs(120));
    s.prepare().await?;
    let polls0 = lab
        .sim
        .with_world(|w| w.faults.calls.get(&Call::Poll).copied().unwrap_or(0));
    let stopped = lab.sim.now();
    lab.sim.stop_workload();
    s.failback().await?;
    // The redirect is the failback's last step: the application is told when it returns.
    let redirected = lab.sim.now().since(stopped);
    let at = lab
        .sim
        .events()
        .into_iter()
        .find_map(|e| match e.kind {
            EventKind::RoleChanged {
                side: Side::SqlServer,
                role: ReplicaRole::Primary,
                ..
            } if e.at >= stopped => Some(e.at),
            _ => None,
        })
        .ok_or("SQL Server never became primary")?;
    let polls1 = lab
        .sim
        .with_world(|w| w.faults.calls.get(&Call::Poll).copied().unwrap_or(0));
    Ok(FailbackRun {
        latency_seconds: latency,
        retry_after_seconds: retry_after,
        seed,
        window_seconds: at.since(stopped).as_secs_f64(),
        redirected_seconds: redirected.as_secs_f64(),
        polls: u64::from(polls1 - polls0),
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), BoxError> {
    let json = std::env::args().any(|a| a == "--json");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut runs = Vec::new();
    for latency in LATENCIES {
        for tps in RATES {
            for strategy in [Strategy::Milink, Strategy::Manual, Strategy::Manual30s] {
                for seed in SEEDS {
                    runs.push(rt.block_on(run(strategy, latency, tps, seed))?);
                }
            }
        }
    }
    let mut failbacks = Vec::new();
    for latency in LATENCIES {
        for retry_after in RETRY_AFTERS {
            for seed in SEEDS {
                failbacks.push(rt.block_on(failback(latency, retry_after, seed))?);
            }
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "failover": runs,
                "failback": failbacks,
            }))?
        );
        return Ok(());
    }
    println!("write unavailability, virtual time, seeds {SEEDS:?} (median; overhead = window - L)");
    println!(
        "{:>4} {:>6} {:<11} {:>9} {:>9} {:>14} {:>6} {:>6} {:>6} {:>5}",
        "L s",
        "tx/s",
        "strategy",
        "window s",
        "over L s",
        "stopped>ready",
        "ARM",
        "reads",
        "T-SQL",
        "lost"
    );
    for latency in LATENCIES {
        for tps in RATES {
            for strategy in [Strategy::Milink, Strategy::Manual, Strategy::Manual30s] {
                let cell: Vec<&Run> = runs
                    .iter()
                    .filter(|r| {
                        r.strategy == strategy
                            && r.latency_seconds == latency
                            && r.transactions_per_second == tps
                    })
                    .collect();
                let m = |f: &dyn Fn(&Run) -> f64| median(cell.iter().map(|r| f(r)).collect());
                let window = m(&|r| r.window_seconds);
                println!(
                    "{:>4} {:>6} {:<11} {:>9.1} {:>9.1} {:>14.1} {:>6.0} {:>6.0} {:>6.0} {:>5.0}",
                    latency,
                    tps,
                    strategy.name(),
                    window,
                    window - latency as f64,
                    m(&|r| r.stopped_to_ready_seconds),
                    m(&|r| r.arm_calls as f64),
                    m(&|r| r.arm_reads as f64),
                    m(&|r| r.tsql_round_trips as f64),
                    m(&|r| r.lost_transactions as f64),
                );
            }
        }
    }
    println!();
    println!(
        "failback (ARM failover of L s), the service's Retry-After on running polls, seeds {SEEDS:?} (median)"
    );
    println!(
        "{:>4} {:>12} {:>15} {:>14} {:>9} {:>6}",
        "L s", "Retry-After", "SQL primary s", "redirected s", "over L s", "polls"
    );
    for latency in LATENCIES {
        for retry_after in RETRY_AFTERS {
            let cell: Vec<&FailbackRun> = failbacks
                .iter()
                .filter(|r| r.latency_seconds == latency && r.retry_after_seconds == retry_after)
                .collect();
            let m = |f: &dyn Fn(&FailbackRun) -> f64| median(cell.iter().map(|r| f(r)).collect());
            let redirected = m(&|r| r.redirected_seconds);
            println!(
                "{:>4} {:>10} s {:>15.1} {:>14.1} {:>9.1} {:>6.0}",
                latency,
                retry_after,
                m(&|r| r.window_seconds),
                redirected,
                redirected - latency as f64,
                m(&|r| r.polls as f64),
            );
        }
    }
    Ok(())
}
