//! Mutation tests: the end-to-end scenarios of `no_commit_lost.rs` with a guard of the
//! catch-up gate switched off must lose data, counted by the rows the data holds. Run with
//! `cargo test -p milink-tests --features mutations --test mutations` (the test script does).
#![cfg(feature = "mutations")]

use std::time::Duration;

use milink_core::lifecycle::{LinkSpec, Mutations};
use milink_core::sim::SimConfig;
use milink_tests::dst::{FaultKind, plan};
use milink_tests::scenarios::{
    Outcome, cutover_while_the_synchronous_link_is_cut,
    failover_while_the_application_still_writes, failover_while_the_application_writes_at,
    one_way_trickle_cutover, retried_failover_with_the_workload_back,
};

/// Runs every scenario with `mutations` and returns (runs, runs that lost data, transactions
/// lost in all).
async fn run_suite(mutations: Mutations) -> (u32, u32, u64) {
    let tweak = move |spec: &mut LinkSpec| spec.options.mutations = mutations;
    let mut outcomes: Vec<Outcome> = Vec::new();
    for seed in 1..=5 {
        outcomes.push(one_way_trickle_cutover(seed, SimConfig::with_seed(seed), &tweak).await);
        for lag in [0, 2] {
            let config = SimConfig {
                arm_reading_lag: Duration::from_secs(lag),
                ..SimConfig::with_seed(seed)
            };
            outcomes.push(
                retried_failover_with_the_workload_back(seed, config, &tweak)
                    .await
                    .0,
            );
        }
        outcomes.push(
            cutover_while_the_synchronous_link_is_cut(seed, SimConfig::with_seed(seed), &tweak)
                .await,
        );
        outcomes.push(failover_while_the_application_still_writes(seed, &tweak).await);
        for tps in [1.0, 0.3] {
            outcomes.push(failover_while_the_application_writes_at(seed, tps, &tweak).await);
        }
    }
    let runs = outcomes.len() as u32;
    let lossy = outcomes
        .iter()
        .filter(|o| o.missing_on_instance > 0 || o.lost > 0)
        .count() as u32;
    let lost = outcomes
        .iter()
        .map(|o| o.missing_on_instance.max(o.lost))
        .sum();
    (runs, lossy, lost)
}

#[tokio::test]
async fn the_suite_fails_without_the_lsn_equality_check_the_stability_window_or_the_quiet_check() {
    let intact = run_suite(Mutations::default()).await;
    let no_equality = run_suite(Mutations {
        skip_lsn_equality: true,
        ..Mutations::default()
    })
    .await;
    let no_stability = run_suite(Mutations {
        skip_stability: true,
        ..Mutations::default()
    })
    .await;
    let no_quiet_check = run_suite(Mutations {
        skip_quiet_check: true,
        ..Mutations::default()
    })
    .await;
    eprintln!("runs, runs that lost data, transactions lost:");
    eprintln!("  intact gate:          {intact:?}");
    eprintln!("  no LSN equality:      {no_equality:?}");
    eprintln!("  no stability window:  {no_stability:?}");
    eprintln!("  no quiet check:       {no_quiet_check:?}");
    assert_eq!(intact.1, 0, "the intact gate loses nothing: {intact:?}");
    assert!(
        no_equality.1 > 0,
        "without LSN equality data is lost: {no_equality:?}"
    );
    assert!(
        no_stability.1 > 0,
        "without the stability window data is lost: {no_stability:?}"
    );
    assert!(
        no_quiet_check.1 > 0,
        "with the short window while the application still writes data is lost: {no_quiet_check:?}"
    );
}

/// Seeds of the deterministic simulation among `seeds` that break a promise with `mutations`.
async fn dst_failures(mutations: Mutations, seeds: impl IntoIterator<Item = u64>) -> Vec<u64> {
    let tweak = move |spec: &mut LinkSpec| spec.options.mutations = mutations;
    let seeds: Vec<u64> = seeds.into_iter().collect();
    milink_tests::dst::run_seeds(&seeds, &tweak)
        .into_iter()
        .filter(|(_, report, _)| !report.violations.is_empty())
        .map(|(seed, ..)| seed)
        .collect()
}

/// The seeds below `below` whose world has a late writer (see `Plan::late_writer`).
fn late_writer_seeds(below: u64) -> Vec<u64> {
    (0..below)
        .filter(|&seed| plan(seed).kinds.contains(&FaultKind::LateWriter))
        .collect()
}

const NO_EQUALITY: Mutations = Mutations {
    skip_lsn_equality: true,
    skip_stability: false,
    skip_quiet_check: false,
};
const NO_STABILITY: Mutations = Mutations {
    skip_lsn_equality: false,
    skip_stability: true,
    skip_quiet_check: false,
};
const NO_QUIET_CHECK: Mutations = Mutations {
    skip_lsn_equality: false,
    skip_stability: false,
    skip_quiet_check: true,
};

#[tokio::test]
async fn the_deterministic_simulation_finds_the_lsn_equality_check_switched_off() {
    let seeds = if cfg!(debug_assertions) { 100 } else { 1_000 };
    let no_equality = dst_failures(NO_EQUALITY, 0..seeds).await;
    eprintln!("seeds of {seeds} that broke a promise:");
    eprintln!(
        "  no LSN equality:      {} {no_equality:?}",
        no_equality.len()
    );
    // The same seeds with every guard in place are `tests/dst.rs`'s run (none breaks a
    // promise). With `MILINK_MUTATION_COUNTS` set, this also runs them here, and counts the
    // seeds of all kinds that notice the stability window or the quiet check switched off
    // (two minutes more).
    if std::env::var_os("MILINK_MUTATION_COUNTS").is_some() {
        let intact = dst_failures(Mutations::default(), 0..seeds).await;
        let no_stability = dst_failures(NO_STABILITY, 0..seeds).await;
        let no_quiet_check = dst_failures(NO_QUIET_CHECK, 0..seeds).await;
        eprintln!("  intact gate:          {} {intact:?}", intact.len());
        eprintln!(
            "  no stability window:  {} {no_stability:?}",
            no_stability.len()
        );
        eprintln!(
            "  no quiet check:       {} {no_quiet_check:?}",
            no_quiet_check.len()
        );
        assert!(intact.is_empty(), "{intact:?}");
    }
    assert!(
        !no_equality.is_empty(),
        "no seed noticed the missing LSN equality check"
    );
}

/// The stability window and the quiet check guard against commits the gate can see coming (a
/// session still connected, with open transactions) but that land after the LSNs first look
/// equal: the late-writer worlds. Without either guard the gate passes between two of the
/// lingering session's batches, and a batch in flight when the ARM failover completes is lost
/// (counted by the rows each copy holds); with both, none is.
#[tokio::test]
async fn the_deterministic_simulation_finds_the_stability_window_and_the_quiet_check_switched_off()
{
    let below = if cfg!(debug_assertions) { 200 } else { 1_000 };
    let seeds = late_writer_seeds(below);
    let intact = dst_failures(Mutations::default(), seeds.clone()).await;
    let no_stability = dst_failures(NO_STABILITY, seeds.clone()).await;
    let no_quiet_check = dst_failures(NO_QUIET_CHECK, seeds.clone()).await;
    eprintln!(
        "late-writer seeds below {below} ({}) that broke a promise:",
        seeds.len()
    );
    eprintln!("  intact gate:          {} {intact:?}", intact.len());
    eprintln!(
        "  no stability window:  {} {no_stability:?}",
        no_stability.len()
    );
    eprintln!(
        "  no quiet check:       {} {no_quiet_check:?}",
        no_quiet_check.len()
    );
    assert!(
        intact.is_empty(),
        "the intact gate loses nothing: {intact:?}"
    );
    assert!(
        !no_stability.is_empty(),
        "no late-writer seed noticed the stability window switched off"
    );
    assert!(
        !no_quiet_check.is_empty(),
        "no late-writer seed noticed the quiet check switched off"
    );
}
