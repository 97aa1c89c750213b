//! Deterministic simulation testing: `MILINK_DST_SEEDS` seeds (1,000 by default), each a whole
//! world with faults driven by the real session, every promise checked after every journal
//! record and every command (see `milink_tests::dst`). `MILINK_DST_SEED=<n>` replays one seed
//! and prints its plan and trace; `MILINK_DST_FIRST=<n>` moves the range.

use std::collections::BTreeMap;
use std::time::Instant;

use milink_tests::dst::{
    Concurrent, DEFAULT_SEEDS, During, RunReport, dst_threads, plan, replay_command, run_seed,
    run_seeds,
};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
    })
}

fn show(report: &RunReport) {
    eprintln!("seed {}: {:#?}", report.plan.seed, report.plan);
    for line in &report.trace {
        eprintln!("  {line}");
    }
    eprintln!("  outcome {:?}", report.outcome);
    eprintln!(
        "  commands issued while another ran: {:?}",
        report.concurrent
    );
    eprintln!("  {} records, crashed: {}", report.records, report.crashed);
}

#[test]
fn every_promise_holds_in_every_seeded_world() {
    if let Some(seed) = env_u64("MILINK_DST_SEED") {
        let report = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(run_seed(seed));
        show(&report);
        assert!(
            report.violations.is_empty(),
            "seed {seed}: {:#?}",
            report.violations
        );
        return;
    }
    let count = env_u64("MILINK_DST_SEEDS").unwrap_or(DEFAULT_SEEDS);
    let first = env_u64("MILINK_DST_FIRST").unwrap_or(0);
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut faults: BTreeMap<String, u64> = BTreeMap::new();
    let mut scripts: BTreeMap<String, u64> = BTreeMap::new();
    let mut endings: BTreeMap<String, u64> = BTreeMap::new();
    let mut versions: BTreeMap<String, u64> = BTreeMap::new();
    let mut concurrent: BTreeMap<String, u64> = BTreeMap::new();
    let (mut checks, mut crashed, mut by_timing, mut in_flight) = (0u64, 0u64, 0u64, 0u64);
    let mut slowest: Vec<(f64, u64)> = Vec::new();
    let seeds: Vec<u64> = (first..first + count).collect();
    for (seed, report, took) in run_seeds(&seeds, &|_| {}) {
        slowest.push((took.as_secs_f64(), seed));
        checks += report.checks;
        crashed += u64::from(report.crashed);
        by_timing += u64::from(report.diverged_by_timing);
        in_flight += report.in_flight_lost;
        for kind in &report.plan.kinds {
            *faults.entry(format!("{kind:?}")).or_default() += 1;
        }
        for outcome in &report.concurrent {
            *concurrent.entry(outcome.clone()).or_default() += 1;
        }
        *scripts
            .entry(format!("{:?}", report.plan.script))
            .or_default() += 1;
        *versions.entry(report.plan.version.to_string()).or_default() += 1;
        let ending = match &report.outcome.stopped_at {
            None => report.outcome.state.to_owned(),
            Some((op, code)) => format!("{op:?} failed: {code}"),
        };
        *endings.entry(ending).or_default() += 1;
        if !report.violations.is_empty() {
            eprintln!(
                "seed {seed} broke a promise: {:?}\n  replay: {}",
                report.violations,
                replay_command(seed)
            );
            failures.push(seed);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{count} seeds from {first} in {secs:.1} s ({:.1} seeds/s on {} threads), {checks} invariant checks, {crashed} crashes resumed",
        count as f64 / secs,
        dst_threads()
    );
    slowest.sort_by(|a, b| b.0.total_cmp(&a.0));
    slowest.truncate(5);
    eprintln!("slowest seeds (s, seed): {slowest:?}");
    eprintln!(
        "crashed runs that ended otherwise only because the log backup hit the seeding in one run, or a command issued while another ran met it elsewhere: {by_timing}"
    );
    eprintln!(
        "unacknowledged transactions in flight at a role change (an application stopping late), lost with it: {in_flight}"
    );
    eprintln!("faults injected (seeds with each kind): {faults:?}");
    eprintln!("commands issued while another ran, by how they ended: {concurrent:#?}");
    eprintln!("scripts: {scripts:?}");
    eprintln!("versions: {versions:?}");
    eprintln!("endings: {endings:?}");
    assert!(
        failures.is_empty(),
        "seeds that broke a promise: {failures:?}"
    );
}

/// The seeded worlds do issue user commands within a running role change's catch-up gate (the
/// sessions' timer issues them at their moment, not only once the running command ended): the
/// first worlds whose plan issues a failover, cutover, cancel, failback or prepare during the
/// first role change, until one issued within the gate. Each such command waited for the role
/// change and ended in its goal state or with a typed refusal, and every promise held.
#[tokio::test]
async fn a_command_issued_within_the_catch_up_gate_waits_for_the_role_change() {
    let candidates = (0..2_000u64).filter(|&seed| {
        plan(seed)
            .concurrent
            .iter()
            .any(|c| c.during == During::FirstRoleChange && c.command != Concurrent::Health)
    });
    let mut within_gate = Vec::new();
    for seed in candidates.take(60) {
        let report = run_seed(seed).await;
        assert!(
            report.violations.is_empty(),
            "seed {seed}: {:#?}",
            report.violations
        );
        within_gate.extend(
            report
                .concurrent
                .iter()
                .filter(|o| o.contains("issued in CatchingUp") && !o.starts_with("Health"))
                .map(|o| format!("seed {seed}: {o}")),
        );
        if !within_gate.is_empty() {
            break;
        }
    }
    eprintln!("{within_gate:#?}");
    assert!(
        !within_gate.is_empty(),
        "no command was issued within a catch-up gate"
    );
}
