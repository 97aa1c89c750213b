//! `migrate`: a link between your SQL Server and your managed instance, from a terminal.
//! `cargo run --release --example migrate -- --help`.

use std::process::ExitCode;

use clap::Parser;
use milink_examples::migrate::{self, Exit, cli::Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(Exit::Failed.code());
        }
    };
    match runtime.block_on(migrate::run(cli)) {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::from(failure.exit.code())
        }
    }
}
