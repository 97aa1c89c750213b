//! A fleet in one process: 1,000 simulated links, each driven by its own real `Session`, on one
//! tokio runtime (current-thread, clock paused: the fleet's shared virtual clock), watched at
//! 1 Hz (`watch`, probe interval 1 s) for 60 s of virtual time after a warm-up. Prints a table,
//! or one JSON document with `--json`. Not a timed test: CPU and memory are read from `/proc`.
//!
//! Two kinds of ports, each in a process of its own: `sim`, each link its own simulated world
//! (the Tailspin lab's ToyStore link, created and seeded through the session, the application
//! writing 1 transaction a second), so the simulator answers every call and its CPU and memory
//! are in the process; `recorded`, sessions resumed from one recorded journal on ports that
//! answer every reading with one recorded reading: milink alone, as a service watching real
//! servers would be (less the drivers' parsing of the answers).
//!
//! Measured over the window:
//! - CPU per link-poll: the runtime thread's CPU (`/proc/thread-self/schedstat`) divided by the
//!   link-polls (one `watch` iteration of one link: SQL Server's DMV reading, and the whole
//!   reading through the machine when it is due or SQL Server's changed); the simulator's
//!   share is measured apart by answering the same port calls on the same worlds for the same
//!   virtual time without sessions, and subtracted;
//! - peak RSS (`VmHWM`, reset with `clear_refs` before the window), and RSS after the worlds
//!   alone were built (what the simulator holds);
//! - calls per virtual second to each side, counted as the real adapters send them: T-SQL
//!   round trips to SQL Server and to the managed instance, ARM reads (two per whole reading:
//!   the link, then the instance) and writes; journal records and bytes.
//!
//! Run: `cargo bench -p milink-benches --bench fleet [-- --json] [--links N] [--seconds S]
//! [--warmup S] [--arm-read-interval S] [--tps T] [--event-capacity N]`; `--ports sim` or
//! `--ports recorded` runs one kind of ports (both by default, each in a process of its own).

use std::sync::Arc;
use std::time::Duration;

use milink_benches::fleet::{
    ARM_READS_PER_LINK_STATE, Counted, Fleet, Template, memory_kib, process_cpu, reset_peak_rss,
    thread_cpu,
};
use milink_core::lifecycle::AssessmentOutcome;
use milink_core::ports::{ManagedInstance, SourceServer};
use milink_core::sim::Lab;
use milink_core::{LinkSession, SessionOptions};
use serde::{Deserialize, Serialize};

struct Args {
    json: bool,
    links: usize,
    seconds: u64,
    warmup: u64,
    arm_read_interval: u64,
    tps: f64,
    event_capacity: usize,
    ports: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        json: false,
        links: 1000,
        seconds: 60,
        warmup: 240,
        arm_read_interval: milink_core::session::DEFAULT_ARM_READ_INTERVAL.as_secs(),
        tps: 1.0,
        event_capacity: SessionOptions::default().event_capacity,
        ports: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        if arg == "--ports" {
            a.ports = it.next();
            continue;
        }
        let mut number = |what: &str| -> u64 {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{what} takes a number"))
        };
        match arg.as_str() {
            "--json" => a.json = true,
            "--links" => a.links = number("--links") as usize,
            "--seconds" => a.seconds = number("--seconds"),
            "--warmup" => a.warmup = number("--warmup"),
            "--arm-read-interval" => a.arm_read_interval = number("--arm-read-interval"),
            "--tps" => a.tps = number("--tps") as f64,
            "--event-capacity" => a.event_capacity = number("--event-capacity") as usize,
            // cargo bench passes `--bench`; anything else is a filter this bench ignores.
            _ => {}
        }
    }
    a
}

#[derive(Debug, Serialize, Deserialize)]
struct Report {
    /// `sim`: each link its own simulated world; `recorded`: ports that answer every reading
    /// with one recorded reading (milink alone).
    ports: String,
    links: usize,
    window_seconds: u64,
    warmup_seconds: u64,
    probe_interval_seconds: u64,
    arm_read_interval_seconds: u64,
    link_polls: u64,
    cpu_per_link_poll_us: f64,
    simulator_cpu_per_link_poll_us: f64,
    milink_cpu_per_link_poll_us: f64,
    window_cpu_ms: f64,
    window_process_cpu_ms: f64,
    simulator_cpu_ms: f64,
    rss_start_mib: f64,
    rss_worlds_mib: f64,
    rss_sessions_mib: f64,
    peak_rss_window_mib: f64,
    peak_rss_whole_run_mib: f64,
    peak_rss_reset: bool,
    sql_tsql_per_s: f64,
    sql_dmv_readings_per_s: f64,
    mi_tsql_per_s: f64,
    arm_reads_per_s: f64,
    arm_writes_per_s: f64,
    journal_records_per_s: f64,
    journal_bytes_per_s: f64,
    window: Counted,
    setup_wall_s: f64,
    window_wall_s: f64,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() {
    let a = args();
    let Some(ports) = a.ports.clone() else {
        // Both kinds of ports, each in a process of its own (RSS is per process).
        let reports: Vec<Report> = ["sim", "recorded"]
            .iter()
            .map(|ports| child(&a, ports))
            .collect();
        if a.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&reports).expect("the reports serialize")
            );
        } else {
            print_table(&reports);
        }
        return;
    };
    let (rss_start, _) = memory_kib();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
    let report = runtime.block_on(run(&a, &ports, rss_start));
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("the report serializes")
        );
    } else {
        print_table(&[report]);
    }
}

/// Runs this bench in another process with `--ports ports --json` and reads its report.
fn child(a: &Args, ports: &str) -> Report {
    let exe = std::env::current_exe().expect("this bench's path");
    let out = std::process::Command::new(exe)
        .args([
            "--ports",
            ports,
            "--json",
            "--links",
            &a.links.to_string(),
            "--seconds",
            &a.seconds.to_string(),
            "--warmup",
            &a.warmup.to_string(),
            "--arm-read-interval",
            &a.arm_read_interval.to_string(),
            "--tps",
            &a.tps.to_string(),
            "--event-capacity",
            &a.event_capacity.to_string(),
        ])
        .output()
        .expect("the bench runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a report")
}

async fn run(a: &Args, ports: &str, rss_start: u64) -> Report {
    let probe = Duration::from_secs(1);
    let setup_wall = std::time::Instant::now();
    let options = |i: usize| SessionOptions {
        seed: 1 + i as u64,
        arm_read_interval: Duration::from_secs(a.arm_read_interval),
        event_capacity: a.event_capacity,
        ..SessionOptions::default()
    };
    let (fleet, labs, sessions, rss_worlds, rss_sessions) = match ports {
        "sim" => {
            let fleet = Fleet::new();
            let labs: Vec<Lab> = (0..a.links)
                .map(|i| {
                    fleet
                        .lab(1 + i as u64, probe, a.tps)
                        .expect("a world per link")
                })
                .collect();
            let (rss_worlds, _) = memory_kib();
            let sessions: Vec<Arc<dyn LinkSession>> = labs
                .iter()
                .enumerate()
                .map(|(i, lab)| {
                    Arc::new(fleet.session(lab, options(i)).expect("a session per link"))
                        as Arc<dyn LinkSession>
                })
                .collect();
            let (rss_sessions, _) = memory_kib();
            // Every link created and seeded, concurrently on the shared clock.
            all(&sessions, |s| async move {
                s.record_assessment(AssessmentOutcome {
                    blockers: Vec::new(),
                })
                .await
                .expect("assessed");
                s.start().await.expect("the link replicates");
            })
            .await;
            (fleet, labs, sessions, rss_worlds, rss_sessions)
        }
        "recorded" => {
            let template = Template::record(1, probe)
                .await
                .expect("the template link replicates");
            let fleet = Fleet::starting_at(template.ends_at);
            let (rss_worlds, _) = memory_kib();
            let sessions: Vec<Arc<dyn LinkSession>> = (0..a.links)
                .map(|i| {
                    Arc::new(
                        fleet
                            .recorded_session(&template, options(i))
                            .expect("a session per link"),
                    ) as Arc<dyn LinkSession>
                })
                .collect();
            let (rss_sessions, _) = memory_kib();
            (fleet, Vec::new(), sessions, rss_worlds, rss_sessions)
        }
        other => panic!("--ports is sim or recorded, not {other}"),
    };
    // The warm-up spreads the whole readings (each is due after 0.5-1.5 intervals).
    let warmup = Duration::from_secs(a.warmup);
    all(&sessions, move |s| async move {
        s.watch(warmup).await.expect("watched");
    })
    .await;
    let setup_wall_s = setup_wall.elapsed().as_secs_f64();

    // The window.
    let peak_rss_reset = reset_peak_rss();
    let counts_before = fleet.counts.snapshot();
    let journal_before = journal(&fleet);
    let cpu_before = thread_cpu();
    let process_before = process_cpu();
    let virtual_before = fleet.now();
    let wall = std::time::Instant::now();
    let window = Duration::from_secs(a.seconds);
    all(&sessions, move |s| async move {
        s.watch(window).await.expect("watched");
    })
    .await;
    let window_wall_s = wall.elapsed().as_secs_f64();
    let window_cpu = thread_cpu() - cpu_before;
    let window_process = process_cpu() - process_before;
    let counted = fleet.counts.snapshot().since(counts_before);
    let journal_after = journal(&fleet);
    let (_, peak_window) = memory_kib();
    let elapsed = fleet.now().since(virtual_before).as_secs_f64().max(1.0);
    // One watch iteration per link per probe interval, the first at the window's start.
    let link_polls = a.links as u64 * (a.seconds / probe.as_secs() + 1);

    // The simulator's share: the same calls on the same worlds, for the same virtual time,
    // without sessions.
    let whole = counted.arm_reads / ARM_READS_PER_LINK_STATE;
    let sim_cpu = simulator_only(&labs, &fleet, a.seconds, whole).await;
    let (_, peak_all) = memory_kib();

    let per_s = |n: u64| n as f64 / elapsed;
    let us = |d: Duration| d.as_secs_f64() * 1e6 / link_polls as f64;
    Report {
        ports: ports.to_owned(),
        links: a.links,
        window_seconds: a.seconds,
        warmup_seconds: a.warmup,
        probe_interval_seconds: probe.as_secs(),
        arm_read_interval_seconds: a.arm_read_interval,
        link_polls,
        cpu_per_link_poll_us: us(window_cpu),
        simulator_cpu_per_link_poll_us: us(sim_cpu),
        milink_cpu_per_link_poll_us: us(window_cpu.saturating_sub(sim_cpu)),
        window_cpu_ms: window_cpu.as_secs_f64() * 1e3,
        window_process_cpu_ms: window_process.as_secs_f64() * 1e3,
        simulator_cpu_ms: sim_cpu.as_secs_f64() * 1e3,
        rss_start_mib: mib(rss_start),
        rss_worlds_mib: mib(rss_worlds),
        rss_sessions_mib: mib(rss_sessions),
        peak_rss_window_mib: mib(peak_window),
        peak_rss_whole_run_mib: mib(peak_all),
        peak_rss_reset,
        sql_tsql_per_s: per_s(counted.sql),
        sql_dmv_readings_per_s: per_s(counted.sql_link_state),
        mi_tsql_per_s: per_s(counted.mi_tsql),
        arm_reads_per_s: per_s(counted.arm_reads),
        arm_writes_per_s: per_s(counted.arm_writes),
        journal_records_per_s: per_s(journal_after.0 - journal_before.0),
        journal_bytes_per_s: per_s(journal_after.1 - journal_before.1),
        window: counted,
        setup_wall_s,
        window_wall_s,
    }
}

fn journal(fleet: &Fleet) -> (u64, u64) {
    use std::sync::atomic::Ordering;
    (
        fleet.journal.records.load(Ordering::Relaxed),
        fleet.journal.bytes.load(Ordering::Relaxed),
    )
}

/// Runs `f` on every session as its own task and waits for all of them.
async fn all<F, Fut>(sessions: &[Arc<dyn LinkSession>], f: F)
where
    F: Fn(Arc<dyn LinkSession>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut tasks = tokio::task::JoinSet::new();
    for s in sessions {
        tasks.spawn(f(s.clone()));
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a fleet task");
    }
}

/// CPU of the simulator alone: every second of `seconds`, each world brought to that time and
/// asked for SQL Server's DMV reading, and `whole` whole readings (the instance's side too)
/// spread over the window, as the sessions asked.
async fn simulator_only(labs: &[Lab], fleet: &Fleet, seconds: u64, whole: u64) -> Duration {
    let ports: Vec<_> = labs
        .iter()
        .map(|l| (l.sim.sql_server(), l.sim.managed_instance()))
        .collect();
    let start = fleet.now();
    let cpu = thread_cpu();
    let mut instance_reads = 0;
    for second in 0..=seconds {
        let at = start.plus(Duration::from_secs(second));
        for (i, (lab, (sql, mi))) in labs.iter().zip(&ports).enumerate() {
            lab.sim.advance_to(at);
            let _ = sql.link_state(&lab.spec.link, &lab.spec.databases).await;
            // The whole readings, spread evenly over links and seconds.
            let due = (whole * (second * labs.len() as u64 + i as u64 + 1))
                / ((seconds + 1) * labs.len() as u64);
            while instance_reads < due {
                let _ = sql.link_state(&lab.spec.link, &lab.spec.databases).await;
                let _ = mi.link_state(&lab.spec.link).await;
                instance_reads += 1;
            }
        }
    }
    thread_cpu() - cpu
}

fn print_table(reports: &[Report]) {
    let Some(r) = reports.first() else { return };
    println!(
        "A fleet in one process: {} links, probe every {} s, ARM read interval {} s (mean), \
         window {} s of virtual time after {} s of warm-up",
        r.links,
        r.probe_interval_seconds,
        r.arm_read_interval_seconds,
        r.window_seconds,
        r.warmup_seconds
    );
    println!();
    let mut header = format!("{:<46}", "measure");
    for r in reports {
        header.push_str(&format!(" {:>16}", format!("ports: {}", r.ports)));
    }
    println!("{header}  goal");
    let row = |what: &str, cell: &dyn Fn(&Report) -> String, goal: &str| {
        let mut line = format!("{what:<46}");
        for r in reports {
            line.push_str(&format!(" {:>16}", cell(r)));
        }
        println!("{line}  {goal}");
    };
    row(
        "CPU per link-poll (runtime thread)",
        &|r| format!("{:.1} us", r.cpu_per_link_poll_us),
        "< 50 us",
    );
    row(
        "  of which the simulator",
        &|r| format!("{:.1} us", r.simulator_cpu_per_link_poll_us),
        "",
    );
    row(
        "  of which milink (the difference)",
        &|r| format!("{:.1} us", r.milink_cpu_per_link_poll_us),
        "",
    );
    row(
        "peak RSS in the window (VmHWM)",
        &|r| format!("{:.1} MiB", r.peak_rss_window_mib),
        "< 100 MB",
    );
    row(
        "RSS: empty / ports built / sessions made",
        &|r| {
            format!(
                "{:.0}/{:.0}/{:.0} MiB",
                r.rss_start_mib, r.rss_worlds_mib, r.rss_sessions_mib
            )
        },
        "",
    );
    row(
        "ARM reads per second",
        &|r| format!("{:.2}", r.arm_reads_per_s),
        "< 25",
    );
    row(
        "ARM writes per second",
        &|r| format!("{:.2}", r.arm_writes_per_s),
        "",
    );
    row(
        "SQL Server T-SQL round trips per second",
        &|r| format!("{:.0}", r.sql_tsql_per_s),
        "",
    );
    row(
        "  of which DMV readings",
        &|r| format!("{:.0}", r.sql_dmv_readings_per_s),
        "",
    );
    row(
        "managed instance T-SQL round trips per second",
        &|r| format!("{:.1}", r.mi_tsql_per_s),
        "",
    );
    row(
        "journal records per second",
        &|r| format!("{:.1}", r.journal_records_per_s),
        "",
    );
    row(
        "journal bytes per second",
        &|r| format!("{:.0}", r.journal_bytes_per_s),
        "",
    );
    row(
        "link-polls in the window",
        &|r| r.link_polls.to_string(),
        "",
    );
    row(
        "window CPU: thread / process",
        &|r| format!("{:.0}/{:.0} ms", r.window_cpu_ms, r.window_process_cpu_ms),
        "",
    );
    row(
        "wall: setup / window",
        &|r| format!("{:.1}/{:.1} s", r.setup_wall_s, r.window_wall_s),
        "",
    );
}
