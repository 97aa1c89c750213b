//! The sidecar resume: what an interrupted run leaves next to its journal, and continuing from it.

use std::error::Error;
use std::path::{Path, PathBuf};

use milink_core::sim::{DbSnapshot, Sim, World};
use milink_core::time::Timestamp;
use milink_core::{LinkSession, SessionError};
use serde::{Deserialize, Serialize};

use super::cli::Options;
use super::phases::{Phase, Run};
use super::report::Report;
use super::{Interrupted, Setup};
use crate::app::AppState;

/// What an interrupted run leaves next to its journal to continue with.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Saved {
    options: Options,
    world: World,
    next_phase: usize,
    /// When the interrupted phase began (virtual) and the wall time it had used.
    phase_started: Timestamp,
    phase_wall_ms: f64,
    before: Option<DbSnapshot>,
    report: Report,
    /// The application's connection and ledger.
    #[serde(default)]
    app: AppState,
}

/// What replaces the saved run once its continuation finished, so that it is not continued twice.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Finished {
    finished: FinishedRun,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FinishedRun {
    final_state: String,
}

/// Marks the run of journal `path` as finished in `final_state`: its saved world (if any) is
/// replaced, so a second `--resume` says the run finished instead of replaying a stale world.
pub(super) fn finish(path: &Path, final_state: &str) -> Result<(), Box<dyn Error>> {
    let file = sidecar(path);
    if !file.exists() {
        return Ok(());
    }
    let done = Finished {
        finished: FinishedRun {
            final_state: final_state.to_owned(),
        },
    };
    std::fs::write(&file, serde_json::to_string(&done)?)
        .map_err(|e| format!("--resume: cannot write {}: {e}", file.display()))?;
    Ok(())
}

/// The file next to a journal that holds the world of an interrupted run.
pub fn sidecar(journal: &Path) -> PathBuf {
    let mut s = journal.as_os_str().to_owned();
    s.push(".world.json");
    PathBuf::from(s)
}

/// Where the run that stopped with journal `path` left off; `opts` are the options of the run
/// that continues it (its output and crash point win over the saved ones).
pub(super) fn load(path: &Path, opts: &Options) -> Result<Setup, Box<dyn Error>> {
    let text = std::fs::read_to_string(sidecar(path)).map_err(|e| {
        format!(
            "--resume {}: cannot read {}: {e} (a run leaves this file next to its journal only \
             when it stops early; a run that was never interrupted has nothing to continue)",
            path.display(),
            sidecar(path).display()
        )
    })?;
    if let Ok(done) = serde_json::from_str::<Finished>(&text) {
        return Err(format!(
            "--resume {}: this run already finished (in state {}); there is nothing to continue, \
             start a new run without --resume",
            path.display(),
            done.finished.final_state
        )
        .into());
    }
    let saved: Saved = serde_json::from_str(&text).map_err(|e| {
        format!(
            "--resume: {} is not a saved run: {e}",
            sidecar(path).display()
        )
    })?;
    let mut report = saved.report;
    report.resumed = true;
    report.outcome = "completed".into();
    report.crashed_after_record = None;
    let options = Options {
        json: opts.json,
        crash_after: opts.crash_after,
        resume: opts.resume.clone(),
        wire: opts.wire,
        ..saved.options
    };
    Ok(Setup {
        sim: Sim::from_world(saved.world),
        options,
        next_phase: saved.next_phase,
        before: saved.before,
        report,
        journal_path: path.to_path_buf(),
        interrupted: Some(Interrupted {
            phase_started: saved.phase_started,
            phase_wall_ms: saved.phase_wall_ms,
        }),
        app: saved.app,
    })
}

/// Records in the report that the run stopped after journal record `records` in `phase` (the
/// `index`th, begun at virtual `phase_started` with `phase_wall_ms` of wall time used), saves
/// what it takes to continue next to the journal, and says how to.
pub(super) fn save(
    run: &mut Run,
    opts: &Options,
    journal_path: &Path,
    phase: Phase,
    index: usize,
    phase_started: Timestamp,
    phase_wall_ms: f64,
) -> Result<(), Box<dyn Error>> {
    run.narrator.drain();
    let records = opts.crash_after.unwrap_or_default();
    run.report.outcome = "crashed".into();
    run.report.crashed_after_record = Some(records);
    run.report.final_state = run.session.status().state.name().to_owned();
    run.report.workload = run.sim.workload_stats();
    run.report.redirect = run.app.state().ledger;
    let saved = Saved {
        options: opts.clone(),
        world: run.sim.with_world(Clone::clone),
        next_phase: index,
        phase_started,
        phase_wall_ms,
        before: run.before.clone(),
        report: run.report.clone(),
        app: run.app.state(),
    };
    let file = sidecar(journal_path);
    std::fs::write(&file, serde_json::to_string(&saved)?)
        .map_err(|e| format!("--journal-dir: cannot write {}: {e}", file.display()))?;
    run.narrator.raw(&format!(
        "\n!! the orchestrator stopped after journal record {records} (simulated crash in phase {}).\n!! SQL Server and the managed instance keep running; continue with:\n!!   cargo run --release --example tailspin -- --resume {}",
        phase.name(),
        journal_path.display()
    ));
    Ok(())
}

/// Continues the interrupted operation, once. A re-issued link PUT that meets the first one
/// still running (409 ConflictingServerOperation) is waited out by the driver.
pub(super) async fn resume_session(run: &Run) -> Result<(), Box<dyn Error>> {
    match run.session.resume().await {
        Ok(()) | Err(SessionError::Stalled { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    run.n().drain();
    Ok(())
}
