//! No commit lost: the reproductions of the catch-up gate review, end to end on the simulator,
//! counted by the data (see `milink_tests::scenarios`).

use milink_core::sim::SimConfig;
use milink_tests::scenarios::{
    Outcome, cutover_while_the_synchronous_link_is_cut,
    failover_while_the_application_still_writes, one_way_trickle_cutover,
    retried_failover_with_the_workload_back,
};

const DONE: Outcome = Outcome {
    missing_on_instance: 0,
    lost: 0,
    reported: 0,
    finished: true,
};

#[tokio::test]
async fn one_way_cutover_with_a_trickle_workload_loses_no_commit_over_20_seeds() {
    for seed in 1..=20 {
        let o = one_way_trickle_cutover(seed, SimConfig::with_seed(seed), &|_| {}).await;
        assert_eq!(o, DONE, "seed {seed}");
    }
}

#[tokio::test]
async fn a_retried_failover_runs_the_gate_again_while_the_workload_is_back() {
    for seed in [1, 2, 3] {
        for lag in [0, 2] {
            let config = SimConfig {
                arm_reading_lag: std::time::Duration::from_secs(lag),
                ..SimConfig::with_seed(seed)
            };
            let (o, calls) = retried_failover_with_the_workload_back(seed, config, &|_| {}).await;
            assert_eq!(o, DONE, "seed {seed}, ARM lag {lag} s");
            assert_eq!(
                calls, 2,
                "seed {seed}: the failed call, and one more only after a fresh gate"
            );
        }
    }
}

#[tokio::test]
async fn a_cutover_waits_while_a_cut_synchronous_link_leaves_commits_behind() {
    for seed in 1..=5 {
        let o =
            cutover_while_the_synchronous_link_is_cut(seed, SimConfig::with_seed(seed), &|_| {})
                .await;
        assert_eq!(o, DONE, "seed {seed}");
    }
}

#[tokio::test]
async fn a_failover_waits_until_the_application_has_stopped() {
    for seed in 1..=5 {
        let o = failover_while_the_application_still_writes(seed, &|_| {}).await;
        assert_eq!(o, DONE, "seed {seed}");
    }
}
