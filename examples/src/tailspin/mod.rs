//! The Tailspin lab end to end on the simulator: readiness, link creation, seeding, replication
//! under a running workload, planned failover with the LSN check, validation of every row, and
//! optionally failback or a one-way cutover; interrupted runs continue from their journal.
//!
//! The real session driver and lifecycle machine run unchanged; only the servers are simulated.
//!
//! [`run`] ties the parts together: the command line ([`Options`]), the phases, the report
//! ([`Report`]) and the continuation of an interrupted run from the file next to its journal
//! ([`sidecar`]). With `--plan` it runs nothing and prints the library's plan of the link
//! ([`crate::plan`]).

mod checks;
mod cli;
mod phases;
mod plan_mode;
mod readiness;
mod report;
mod resume;
pub mod serve;
mod wire;

pub use cli::{Options, USAGE};
pub use report::{
    DatabaseReport, FindingReport, ParityOut, PhaseRequests, PhaseTime, Report, RoleChangeReport,
    TableReport,
};
pub use resume::sidecar;

use std::error::Error;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use milink_core::journal::{FileJournal, JournalEntry};
use milink_core::redirect::{ConnectionString, FileRedirectHook, RedirectOptions};
use milink_core::sim::wire::{InFlight, WireClock};
use milink_core::sim::{CrashPoint, CrashingJournal, DbSnapshot, Lab, Sim};
use milink_core::time::Timestamp;
use milink_core::{LinkSession, Session, SessionOptions};

use crate::app::{App, AppState, ORIGINAL_CONNECTION_STRING};
use crate::narrate::{Narrated, Narrator};
use phases::{Run, phases};
pub use wire::{LabInstance, LabSecrets, LabSource, WireCounters};

/// The lab's session: narrated simulated servers over the lab's journal file, which can stop
/// after a given record.
type LabSession = Session<Narrated<LabSource>, Narrated<LabInstance>, CrashingJournal<FileJournal>>;

/// Where the interrupted phase of a continued run stood.
struct Interrupted {
    /// When the phase began (virtual).
    phase_started: Timestamp,
    /// The wall time it had used, in milliseconds.
    phase_wall_ms: f64,
}

/// Where a run begins: a new world, or the one an interrupted run left.
struct Setup {
    /// The simulated world.
    sim: Sim,
    /// The options in force (a continued run's are mostly the saved ones).
    options: Options,
    /// The index of the first phase to run.
    next_phase: usize,
    /// The old primary's snapshot at the last role change, if taken.
    before: Option<DbSnapshot>,
    /// The report so far.
    report: Report,
    /// The journal's file.
    journal_path: PathBuf,
    /// Set when continuing an interrupted run.
    interrupted: Option<Interrupted>,
    /// The application's connection and ledger.
    app: AppState,
}

impl Setup {
    /// A new run of `opts`: the lab's world for the seed and an empty report.
    fn new(opts: &Options) -> Result<Setup, Box<dyn Error>> {
        let lab = Lab::tailspin(opts.seed)?;
        std::fs::create_dir_all(&opts.journal_dir).map_err(|e| {
            format!(
                "--journal-dir {}: cannot create the directory: {e}",
                opts.journal_dir.display()
            )
        })?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let journal_path = opts
            .journal_dir
            .join(format!("tailspin-seed{}-{stamp}.journal", opts.seed));
        let report = Report::new(opts, &lab);
        Ok(Setup {
            sim: lab.sim,
            options: opts.clone(),
            next_phase: 0,
            before: None,
            report,
            journal_path,
            interrupted: None,
            app: AppState::default(),
        })
    }

    /// Whether this continues an interrupted run.
    fn resumed(&self) -> bool {
        self.interrupted.is_some()
    }
}

fn session_options(seed: u64) -> SessionOptions {
    SessionOptions {
        seed,
        event_capacity: 8192,
        ..SessionOptions::default()
    }
}

/// Runs the lab and writes its narration to `out`; in plan mode, prints the plan instead and
/// runs nothing.
pub async fn run(opts: &Options, out: Box<dyn Write + Send>) -> Result<Report, Box<dyn Error>> {
    run_with_secrets(opts, out, LabSecrets::generate()?).await
}

/// [`run`] with the given secrets for `--wire` (logins, ARM token, master key password).
pub async fn run_with_secrets(
    opts: &Options,
    out: Box<dyn Write + Send>,
    secrets: LabSecrets,
) -> Result<Report, Box<dyn Error>> {
    let wall_start = Instant::now();
    let setup = match &opts.resume {
        Some(path) => resume::load(path, opts)?,
        None if opts.plan => return plan_mode::plan(opts, out),
        None => Setup::new(opts)?,
    };
    let resumed = setup.resumed();
    let Setup {
        sim,
        options: opts,
        next_phase,
        before,
        mut report,
        journal_path,
        interrupted,
        app: app_state,
    } = setup;
    let start = sim.with_world(|w| w.config.start);
    let file = if resumed {
        FileJournal::open(&journal_path).map_err(|e| format!("--resume: {e}"))?
    } else {
        FileJournal::create(&journal_path).map_err(|e| format!("--journal-dir: {e}"))?
    };
    report.journal = Some(journal_path.display().to_string());
    // The spec: the lab's, or the one the journal was created with when resuming.
    let spec = if resumed {
        let records = milink_core::ports::Journal::records(&file)?;
        match records.first().map(|r| &r.entry) {
            Some(JournalEntry::Created { spec, .. }) => (**spec).clone(),
            _ => return Err("the journal does not start with the link's spec".into()),
        }
    } else {
        let mut spec = Lab::tailspin(opts.seed)?.spec;
        if opts.route_arc {
            let instance = sim
                .with_world(|w| w.arc_instance_id())
                .ok_or("the lab's SQL Server has no Arc resource id")?;
            spec.route = milink_core::lifecycle::LinkRoute::Arc { instance };
        }
        spec
    };
    let (instance_id, link_name) = (spec.target.instance.clone(), spec.link.clone());
    let point = CrashPoint::AfterRecord(opts.crash_after.unwrap_or(u64::MAX));
    let journal = CrashingJournal::new(file, point);
    let crashed = journal.crashed_flag();

    let narrator = Narrator::new(out, sim.clone(), start, instance_id.clone(), link_name);
    let in_flight = InFlight::new();
    let timer = Arc::new(WireClock::new(sim.clock(), Arc::clone(&in_flight)));
    let source = match &spec.route {
        milink_core::lifecycle::LinkRoute::Arc { instance } => {
            LabSource::start_arc(
                &sim,
                &in_flight,
                instance.clone(),
                &instance_id,
                timer.clone(),
            )
            .await?
        }
        milink_core::lifecycle::LinkRoute::Direct => {
            LabSource::start(&sim, opts.wire, &opts.journal_dir, &in_flight, &secrets).await?
        }
    };
    let arc_client = match source.arc() {
        Some(a) => Some(a.client(timer.clone())?),
        None => None,
    };
    report.wire = opts.wire;
    let transport = source.describe();
    let source_counter = source.batch_counter();
    let sql = Arc::new(Narrated::new(source, Arc::clone(&narrator)));
    let instance = LabInstance::start(
        &sim,
        opts.wire,
        &opts.journal_dir,
        &in_flight,
        &instance_id,
        timer.clone(),
        &secrets,
    )
    .await?;
    let transport_mi = instance.describe();
    let counters = WireCounters::of(&source_counter, &instance);
    let mi = Arc::new(Narrated::new(instance, Arc::clone(&narrator)));
    let database = spec
        .databases
        .first()
        .cloned()
        .ok_or("the link spec names no database")?;
    // The application reads its connection string from a file next to the journal; the
    // session's redirect hook rewrites it and the application reconnects.
    let connection_file = Some(FileRedirectHook::new(
        journal_path.with_extension("connstr"),
    ));
    let app = App::new(
        sim.clone(),
        &spec,
        database.clone(),
        connection_file,
        app_state,
        !resumed,
    )?;
    let redirect = RedirectOptions::new(ConnectionString::parse(ORIGINAL_CONNECTION_STRING)?);
    let session = if resumed {
        Session::resume(journal, sql, mi, timer, session_options(opts.seed))?
    } else {
        Session::create(spec, sql, mi, journal, timer, session_options(opts.seed))?
    }
    .with_redirect(Some(app.clone()), redirect);
    narrator.follow(session.subscribe());
    let spec = session.machine().spec().clone();

    narrator.raw(&format!(
        "milink {} | Tailspin lab | seed {} | virtual start {}",
        milink_core::VERSION,
        opts.seed,
        start
    ));
    narrator.raw(&format!("journal {}", journal_path.display()));
    narrator.raw(&transport);
    narrator.raw(&transport_mi);

    let mut run = Run {
        sim: sim.clone(),
        spec,
        database,
        narrator: Arc::clone(&narrator),
        session,
        report,
        before,
        start,
        app: app.clone(),
        arc: arc_client,
    };

    let all = phases(&opts);
    for (i, phase) in all.iter().enumerate().skip(next_phase) {
        narrator.raw(&format!("\n== {}. {}", i + 1, phase.title()));
        let (mut v0, w0) = (sim.now(), Instant::now());
        let sent_before = counters.snapshot();
        let mut wall_before = 0.0;
        let mut result = Ok(());
        if i == next_phase
            && let Some(interrupted) = &interrupted
        {
            (v0, wall_before) = (interrupted.phase_started, interrupted.phase_wall_ms);
            narrator.line(&format!(
                "resuming from the journal ({} records) in state {}",
                run.session.status().journal_records,
                run.session.status().state
            ));
            result = resume::resume_session(&run).await;
        }
        if result.is_ok() {
            result = run.phase(*phase).await;
        }
        if let Err(e) = result {
            if crashed.load(Ordering::SeqCst) {
                let wall_ms = wall_before + w0.elapsed().as_secs_f64() * 1000.0;
                resume::save(&mut run, &opts, &journal_path, *phase, i, v0, wall_ms)?;
                return Ok(run.report);
            }
            return Err(e);
        }
        if let Some(sent) = counters.since(&sent_before, phase.name()) {
            run.report.requests.push(sent);
        }
        run.report.phases.push(PhaseTime {
            name: phase.name().to_string(),
            virtual_seconds: report::seconds(sim.now().since(v0)),
            wall_ms: wall_before + w0.elapsed().as_secs_f64() * 1000.0,
        });
    }
    sim.stop_workload();
    run.report.final_state = run.session.status().state.name().to_owned();
    if resumed {
        resume::finish(&journal_path, &run.report.final_state)?;
    }
    run.report.workload = sim.workload_stats();
    run.report.redirect = app.finish().ledger;
    let summary = run
        .report
        .summary(sim.now().since(start), wall_start.elapsed());
    narrator.raw(&summary);
    Ok(run.report)
}
