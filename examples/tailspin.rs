//! The Tailspin lab: the main job. `cargo run --release --example tailspin -- --help`.

use std::io;
use std::process::ExitCode;

use milink_examples::tailspin::serve::{ServeOptions, Served};
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
    if options.serve {
        return match runtime.block_on(serve(&options)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
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

/// `--serve`: prints the configuration, then serves until Ctrl-C (or SIGTERM on Unix).
async fn serve(options: &Options) -> Result<(), Box<dyn std::error::Error>> {
    let dir = match &options.serve_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("milink-serve-{}", std::process::id())),
    };
    let served = Served::start(&ServeOptions {
        seed: options.seed,
        dir,
        speed: options.speed,
    })
    .await?;
    let text = served.config().to_toml()?;
    println!("{text}");
    println!(
        "# serving seed {} at {}x: configuration in {}, secrets in {} (source it); \
         Ctrl-C stops",
        options.seed,
        options.speed,
        served.config_file().display(),
        served.secrets_file().display()
    );
    println!(
        "# the application writes to ToyStore; `echo stopped > {}` stops it (before a planned \
         failover), `echo running > …` starts it again",
        served.workload_file().display()
    );
    println!("# ready");
    io::Write::flush(&mut io::stdout())?;
    stopped().await?;
    served.stop().await;
    Ok(())
}

#[cfg(unix)]
async fn stopped() -> io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}

#[cfg(not(unix))]
async fn stopped() -> io::Result<()> {
    tokio::signal::ctrl_c().await
}
