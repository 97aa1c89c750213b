//! The pure link machine: what a driver pays per input, on the steady-state hot path, to save
//! and restore a machine, and to replay a long journal on resume.
//!
//! Run with `cargo bench -p milink-benches --bench machine`.
use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use milink_benches::scenario::{
    Scenario, failover_scenario, journal_scenario, link_view, probe_cycle, replicating,
};
use milink_core::lifecycle::{AvailabilityMode, Machine, Side};

/// Replays `scenario` into a fresh machine, moving each input in (the driver owns its inputs).
fn replay(
    scenario: &Scenario,
    inputs: Vec<(milink_core::lifecycle::Input, milink_core::time::Timestamp)>,
) -> Machine {
    let mut machine = Machine::new(scenario.spec.clone()).expect("valid spec");
    for (input, at) in inputs {
        machine
            .handle(input, at)
            .expect("recorded input is accepted");
    }
    machine
}

fn handle_per_input(c: &mut Criterion) {
    let scenario = failover_scenario().expect("failover scenario");
    let n = scenario.inputs.len();
    println!(
        "machine/failover_scenario: {n} inputs (create → replicate → planned failover → FailedOver)"
    );
    let mut g = c.benchmark_group("machine");
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("failover_scenario", |b| {
        b.iter_batched(
            || scenario.inputs.clone(),
            |inputs| replay(&scenario, inputs),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn steady_probe_cycle(c: &mut Criterion) {
    let mut g = c.benchmark_group("machine");
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(1));
    for databases in [1usize, 50] {
        let (start, now) = replicating(databases).expect("replicating machine");
        let reading = link_view(
            &start.spec().databases,
            Side::SqlServer,
            AvailabilityMode::AsynchronousCommit,
            5_000_000,
            10,
        )
        .expect("reading");
        // The machine stays in Replicating: each iteration waits one probe interval of
        // virtual time.
        let mut machine = start.clone();
        let mut clock = now;
        let name = if databases == 1 {
            "steady_probe_cycle".to_owned()
        } else {
            format!("steady_probe_cycle_{databases}_databases")
        };
        g.bench_function(name, |b| {
            b.iter(|| probe_cycle(&mut machine, &mut clock, black_box(&reading)).expect("cycle"))
        });
        // `handle` works on a copy so that a refused input leaves the machine unchanged; this
        // is that copy's price, paid once per input.
        g.bench_function(format!("clone_{databases}_databases"), |b| {
            b.iter(|| black_box(&start).clone())
        });
    }
    g.finish();
}

fn serde_round_trip(c: &mut Criterion) {
    let (machine, _) = replicating(1).expect("replicating machine");
    let json = serde_json::to_string(&machine).expect("serialize");
    println!(
        "machine/serde_round_trip: {} bytes of JSON (Replicating, one database)",
        json.len()
    );
    let mut g = c.benchmark_group("machine");
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("serde_round_trip", |b| {
        b.iter(|| {
            let text = serde_json::to_string(black_box(&machine)).expect("serialize");
            let back: Machine = serde_json::from_str(&text).expect("deserialize");
            back
        })
    });
    g.finish();
}

fn replay_journal(c: &mut Criterion) {
    let scenario = journal_scenario(10_000).expect("journal scenario");
    let mut g = c.benchmark_group("machine");
    g.warm_up_time(Duration::from_secs(1));
    g.sample_size(30);
    g.measurement_time(Duration::from_secs(6));
    g.throughput(Throughput::Elements(scenario.inputs.len() as u64));
    g.bench_function("replay_10k_inputs", |b| {
        b.iter_batched(
            || scenario.inputs.clone(),
            |inputs| replay(&scenario, inputs),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(
    benches,
    handle_per_input,
    steady_probe_cycle,
    serde_round_trip,
    replay_journal
);
criterion_main!(benches);
