//! The plan of the Tailspin lab's link from the library, without running anything:
//! `cargo run --example plan -- [--failback | --cutover | --create] [--json] [--seed N]`.

use std::process::ExitCode;

use milink_core::plan::Journey;
use milink_core::sim::Lab;
use milink_examples::plan;

const USAGE: &str = "\
usage: plan [--create | --failback | --cutover] [--json] [--seed N]

  prints every T-SQL batch and ARM request milink sends for the Tailspin lab's link, by machine
  state, as the library's plan computes it (nothing runs, nothing is sent)
  --create     only create the link (default: create, then a planned failover)
  --failback   fail over, then fail back to SQL Server
  --cutover    one-way migration: the link ends removed, the DAG and AG dropped
  --json       the plan as one JSON document
  --seed N     the lab's seed (default 1)";

fn main() -> ExitCode {
    let (mut create, mut failback, mut cutover, mut json, mut seed) =
        (false, false, false, false, 1);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--create" => create = true,
            "--failback" => failback = true,
            "--cutover" => cutover = true,
            "--json" => json = true,
            "--seed" => match args.next().and_then(|v| v.parse().ok()) {
                Some(n) => seed = n,
                None => {
                    eprintln!("--seed takes a number");
                    return ExitCode::from(2);
                }
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let journey = if create {
        Journey::Create
    } else {
        plan::journey(failback, cutover)
    };
    let result = Lab::tailspin(seed)
        .map_err(|e| e.to_string())
        .and_then(|lab| milink_core::plan::plan(&lab.spec, &journey).map_err(|e| e.to_string()));
    let planned = match result {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        match serde_json::to_string_pretty(&planned) {
            Ok(doc) => println!("{doc}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        println!("{}", plan::print(&planned));
    }
    ExitCode::SUCCESS
}
