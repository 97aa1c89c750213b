//! The Tailspin lab: the main job. `cargo run --release --example tailspin -- --help`.

use std::io;
use std::process::ExitCode;

use milink_examples::tailspin::{Options, USAGE, run};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match Options::parse(&args) {
        Ok(o) => o,
        Err(message) if message == USAGE => {
            println!("{message}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let out: Box<dyn io::Write + Send> = if options.json {
        Box::new(io::sink())
    } else {
        Box::new(io::stdout())
    };
    match runtime.block_on(run(&options, out)) {
        Ok(report) => {
            if options.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(doc) => println!("{doc}"),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            match report.outcome.as_str() {
                "crashed" => ExitCode::from(3),
                _ if report.parity.iter().any(|p| !p.all_match) => ExitCode::FAILURE,
                _ => ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
