//! The commands: each reads what it needs, opens the link's session from its journal when it
//! changes something, and prints what a user needs to see.

use std::sync::Arc;
use std::time::Duration;

use milink_core::assess::{Scope, Severity, Verdict};
use milink_core::journal::{FileJournal, JournalEntry, JournalError};
use milink_core::lifecycle::{
    CutoverOptions, DataLossAcknowledgement, FailoverKind, LinkSpec, Side,
};
use milink_core::plan::{Journey, Plan, PlanStep};
use milink_core::ports::Journal;
use milink_core::session::{Reading, SessionOptions, SessionStatus};
use milink_core::sqlserver::SqlServerAdapter;
use milink_core::time::{Clock, SystemClock, SystemTimer, Timestamp};
use milink_core::{LinkSession, Session};

use super::cli::{Cli, Command};
use super::pair::{self, Assessment, InstancePort, Settings};
use super::{Exit, Failure, progress};

/// The session `migrate` drives: the real ports and a journal file.
pub type MigrateSession = Session<SqlServerAdapter, InstancePort, FileJournal>;

/// Runs `cli`'s command.
pub async fn run(cli: &Cli, settings: &Settings) -> Result<Exit, Failure> {
    let command = cli.command.clone();
    if let Some(c) = &command
        && c.changes_something()
        && !cli.execute
    {
        return dry_run(c, settings).await;
    }
    match command {
        None => {
            let exit = assess(settings).await?;
            let a = pair::assess(settings).await?;
            let spec = a.spec(settings)?;
            println!();
            print_outline(&plan(&spec, &Journey::Failover)?);
            println!(
                "\nNothing was changed. `migrate plan` prints every batch and request; \
                 `migrate --execute start` creates the link."
            );
            Ok(exit)
        }
        Some(Command::Assess) => assess(settings).await,
        Some(Command::Plan { journey }) => {
            let journey = parse_journey(&journey)?;
            let spec = match journal_spec(settings)? {
                Some(spec) => spec,
                None => pair::assess(settings).await?.spec(settings)?,
            };
            println!("{}", crate::plan::print(&plan(&spec, &journey)?));
            Ok(Exit::Done)
        }
        Some(Command::Start) => start(settings).await,
        Some(Command::Status {
            watch,
            interval,
            count,
        }) => status(settings, watch, interval, count).await,
        Some(Command::Failover {
            force,
            accept_data_loss,
        }) => {
            let kind = failover_kind(settings, force, accept_data_loss.as_deref())?;
            let (session, spec) = open(settings)?;
            if matches!(kind, FailoverKind::Planned) {
                quiet(&session, cli.allow_active_workload).await?;
            }
            drive(
                &session,
                &spec,
                settings,
                "failover",
                session.failover(kind),
            )
            .await
        }
        Some(Command::Failback) => {
            let (session, spec) = open(settings)?;
            quiet(&session, cli.allow_active_workload).await?;
            drive(&session, &spec, settings, "failback", session.failback()).await
        }
        Some(Command::Cutover {
            drop_availability_group,
        }) => {
            let (session, spec) = open(settings)?;
            quiet(&session, cli.allow_active_workload).await?;
            let options = CutoverOptions {
                drop_availability_group,
            };
            drive(
                &session,
                &spec,
                settings,
                "cutover",
                session.cutover(options),
            )
            .await
        }
        Some(Command::Cancel) => {
            let (session, spec) = open(settings)?;
            drive(&session, &spec, settings, "cancel", session.cancel()).await
        }
        Some(Command::Resume) => {
            let (session, spec) = open(settings)?;
            drive(&session, &spec, settings, "resume", session.resume()).await
        }
    }
}

/// Before a planned role change or a cutover: who still uses the link's databases on the
/// primary. Clients still connected are refused (their writes after the last reading would be
/// lost or refused) unless `allow`; activity that cannot be read is said and not held against.
async fn quiet(session: &MigrateSession, allow: bool) -> Result<(), Failure> {
    match session.check_workload_quiet().await {
        Ok(activity) if activity.is_quiet() => Ok(()),
        Ok(activity) => {
            let who: Vec<String> = activity
                .sessions
                .iter()
                .map(|s| {
                    format!(
                        "session {} of {} on {} ({}, {} open transaction(s))",
                        s.session_id,
                        s.login,
                        s.database,
                        s.program.as_deref().unwrap_or("unknown program"),
                        s.open_transactions
                    )
                })
                .collect();
            let message = format!(
                "{} client session(s) still use the link's databases on the primary: {}; stop \
                 the application first (or pass --allow-active-workload)",
                activity.sessions.len(),
                who.join("; ")
            );
            if allow {
                println!("warning: {message}");
                Ok(())
            } else {
                Err(Failure::refused(message))
            }
        }
        Err(e) => {
            println!("warning: who uses the link's databases could not be read: {e}");
            Ok(())
        }
    }
}

/// A forced failover needs `--accept-data-loss` naming the link; anything else is refused
/// before anything is read or written.
fn failover_kind(
    settings: &Settings,
    force: bool,
    accept: Option<&str>,
) -> Result<FailoverKind, Failure> {
    let link = settings.link()?;
    match (force, accept) {
        (false, None) => Ok(FailoverKind::Planned),
        (false, Some(_)) => Err(Failure::refused(
            "--accept-data-loss only goes with --force (a planned failover loses nothing)",
        )),
        (true, Some(name)) if name == link.as_str() => {
            Ok(FailoverKind::Forced(Some(DataLossAcknowledgement {
                link: name.to_owned(),
            })))
        }
        (true, Some(name)) => Err(Failure::refused(format!(
            "--accept-data-loss names {name:?}, not the link {link}: a forced failover may lose \
             transactions; type the link's name to accept that"
        ))),
        (true, None) => Err(Failure::refused(format!(
            "a forced failover may lose transactions: add --accept-data-loss {link} to accept \
             that, or leave out --force for a planned failover"
        ))),
    }
}

async fn dry_run(command: &Command, settings: &Settings) -> Result<Exit, Failure> {
    let link = settings.link()?;
    let what = match command {
        Command::Start => {
            let exit = assess(settings).await?;
            if exit != Exit::Done {
                return Ok(exit);
            }
            let spec = pair::assess(settings).await?.spec(settings)?;
            println!();
            print_outline(&plan(&spec, &Journey::Create)?);
            format!("create link {link}")
        }
        Command::Failover {
            force,
            accept_data_loss,
        } => match failover_kind(settings, *force, accept_data_loss.as_deref())? {
            FailoverKind::Planned => format!(
                "fail link {link} over to the other side (planned: both sides synchronous, \
                     LSNs equal and stable, then the role change)"
            ),
            FailoverKind::Forced(_) => {
                format!("force link {link} over to the other side (data loss accepted)")
            }
        },
        Command::Failback => format!("fail link {link} back to SQL Server"),
        Command::Cutover { .. } => format!(
            "cut link {link} over: wait for the instance's first full backup, fence SQL Server, \
             remove the link"
        ),
        Command::Cancel => format!("cancel link {link}"),
        Command::Resume => format!("continue link {link}'s last operation"),
        Command::Assess | Command::Plan { .. } | Command::Status { .. } => String::new(),
    };
    println!(
        "\nDry run: would {what}, journaling to {}. Nothing was changed; add --execute to do it.",
        settings.journal.display()
    );
    Ok(Exit::Done)
}

fn parse_journey(text: &str) -> Result<Journey, Failure> {
    Ok(match text {
        "create" => Journey::Create,
        "failover" => Journey::Failover,
        "failback" => Journey::Failback,
        "cutover" => Journey::Cutover(CutoverOptions::default()),
        other => {
            return Err(Failure::usage(format!(
                "--journey {other:?}: one of create, failover, failback, cutover"
            )));
        }
    })
}

fn plan(spec: &LinkSpec, journey: &Journey) -> Result<Plan, Failure> {
    milink_core::plan::plan(spec, journey)
        .map_err(|e| Failure::refused(format!("no plan for this link: {e}")))
}

/// The plan's states, each with the names of what it sends.
fn print_outline(plan: &Plan) {
    println!(
        "Plan of link {} ({} steps; `migrate plan` prints them in full):",
        plan.link,
        plan.len()
    );
    for stage in &plan.stages {
        let steps: Vec<String> = stage.steps.iter().map(step_name).collect();
        println!(
            "  {:<18} {:<22} {}",
            stage.operation.name(),
            stage.phase.name(),
            if steps.is_empty() {
                "(reads the link)".to_owned()
            } else {
                steps.join(", ")
            }
        );
    }
}

fn step_name(step: &PlanStep) -> String {
    let short = |debug: String| {
        debug
            .split([' ', '{', '('])
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    match step {
        PlanStep::Sql { op, .. } => format!("sql:{}", short(format!("{op:?}"))),
        PlanStep::Arm { op, .. } => format!("arm:{}", short(format!("{op:?}"))),
        PlanStep::Arc { op, .. } => format!("arc:{}", short(format!("{op:?}"))),
        PlanStep::Redirect { .. } => "redirect".to_owned(),
    }
}

/// Assesses and prints the verdicts; [`Exit::NotReady`] when a linked database (or the
/// instance) has blockers.
async fn assess(settings: &Settings) -> Result<Exit, Failure> {
    let a = pair::assess(settings).await?;
    print_assessment(&a, settings);
    let databases = settings.databases()?;
    let blockers = a.report.outcome_for(&databases).blockers;
    if blockers.is_empty() {
        Ok(Exit::Done)
    } else {
        println!(
            "NOT READY: {} blocker(s) for the link's databases",
            blockers.len()
        );
        Ok(Exit::NotReady)
    }
}

fn print_assessment(a: &Assessment, settings: &Settings) {
    println!(
        "SQL Server {} {} ({}) -> managed instance {} ({}, {} vCores, update policy {})",
        a.instance.server_name,
        a.instance.version,
        a.instance.edition,
        a.target.fqdn,
        a.target.tier,
        a.target.vcores,
        a.target
            .update_policy
            .map_or("unknown".to_owned(), |p| format!("{p:?}"))
    );
    let linked = settings.databases().unwrap_or_default();
    for d in &a.report.databases {
        let verdict = match d.verdict {
            Verdict::Ready => "READY",
            Verdict::ReadyWithWarnings => "READY (with warnings)",
            Verdict::NotReady => "NOT READY",
        };
        let mark = if linked.iter().any(|l| l == &d.name) {
            " (linked)"
        } else {
            ""
        };
        println!("  {:<16}{verdict}{mark}", d.name.as_str());
        for f in a.report.database_findings(d.name.as_str()) {
            if f.severity == Severity::Blocker {
                println!("      x {}: {}", f.rule_id, f.evidence.summary);
            }
        }
    }
    for f in a
        .report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Blocker && f.scope == Scope::Instance)
    {
        println!("  instance blocker {}: {}", f.rule_id, f.title);
    }
    for (db, why) in &a.module_notes {
        println!(
            "  note: the code of {db} was not read ({why}); its code checks are not evaluated"
        );
    }
}

/// The spec recorded in the journal, if there is one.
fn journal_spec(settings: &Settings) -> Result<Option<LinkSpec>, Failure> {
    if !settings.journal.exists() {
        return Ok(None);
    }
    let journal = FileJournal::open(&settings.journal).map_err(journal_failure)?;
    Ok(Some(spec_of(&journal)?))
}

fn spec_of(journal: &FileJournal) -> Result<LinkSpec, Failure> {
    match journal.records().map_err(journal_failure)?.first() {
        Some(r) => match &r.entry {
            JournalEntry::Created { spec, .. } => Ok((**spec).clone()),
            _ => Err(Failure::failed(
                "the journal does not start with the link's creation",
            )),
        },
        None => Err(Failure::failed("the journal is empty")),
    }
}

fn journal_failure(e: JournalError) -> Failure {
    match e {
        JournalError::Locked { .. } => Failure::refused(e.to_string()),
        _ => Failure::failed(e.to_string()),
    }
}

fn options(settings: &Settings) -> SessionOptions {
    SessionOptions {
        world: Some(settings.world()),
        ..SessionOptions::default()
    }
}

/// The link's session, resumed from its journal.
fn open(settings: &Settings) -> Result<(MigrateSession, LinkSpec), Failure> {
    if !settings.journal.exists() {
        return Err(Failure::refused(format!(
            "no journal at {}: create the link with `migrate --execute start` first",
            settings.journal.display()
        )));
    }
    let journal = FileJournal::open(&settings.journal).map_err(journal_failure)?;
    let spec = spec_of(&journal)?;
    let (source, instance) = pair::ports(settings)?;
    let session = Session::resume(
        journal,
        Arc::new(source),
        Arc::new(instance),
        Arc::new(SystemTimer),
        options(settings),
    )
    .map_err(|e| Failure::session(&e))?;
    Ok((session, spec))
}

async fn start(settings: &Settings) -> Result<Exit, Failure> {
    if settings.journal.exists() {
        return Err(Failure::refused(format!(
            "the journal {} exists: this link was started before; `migrate status` shows it, \
             `migrate --execute resume` continues it",
            settings.journal.display()
        )));
    }
    let a = pair::assess(settings).await?;
    print_assessment(&a, settings);
    let databases = settings.databases()?;
    let outcome = a.report.outcome_for(&databases);
    if !outcome.blockers.is_empty() {
        println!(
            "NOT READY: {} blocker(s) for the link's databases; nothing was changed",
            outcome.blockers.len()
        );
        return Ok(Exit::NotReady);
    }
    let spec = a.spec(settings)?;
    let (source, instance) = pair::ports(settings)?;
    let journal = FileJournal::create(&settings.journal).map_err(journal_failure)?;
    let session = Session::create(
        spec.clone(),
        Arc::new(source),
        Arc::new(instance),
        journal,
        Arc::new(SystemTimer),
        options(settings),
    )
    .map_err(|e| Failure::session(&e))?;
    session
        .record_assessment(outcome)
        .await
        .map_err(|e| Failure::session(&e))?;
    println!(
        "creating link {} (journal {})",
        spec.link,
        settings.journal.display()
    );
    drive(&session, &spec, settings, "start", session.start()).await
}

/// Runs one operation with its events shown, then prints where the link is.
async fn drive(
    session: &MigrateSession,
    spec: &LinkSpec,
    settings: &Settings,
    name: &str,
    operation: impl std::future::Future<Output = Result<(), milink_core::session::SessionError>>,
) -> Result<Exit, Failure> {
    let events = session.subscribe();
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let shown = tokio::spawn(progress::show(events, settings.fancy, stopped));
    let result = tokio::select! {
        r = operation => Some(r),
        _ = tokio::signal::ctrl_c() => None,
    };
    let _ = stop.send(());
    let _ = shown.await;
    let status = session.status();
    print_status(&status, spec, session.history().last(), None);
    match result {
        None => Err(Failure::retryable(format!(
            "{name} interrupted; `migrate --execute resume` continues it from the journal"
        ))),
        Some(Ok(())) => {
            println!("{name}: done");
            Ok(Exit::Done)
        }
        Some(Err(e)) => Err(Failure::session(&e)),
    }
}

async fn status(
    settings: &Settings,
    watch: bool,
    interval: f64,
    count: Option<u64>,
) -> Result<Exit, Failure> {
    let (session, spec) = open(settings)?;
    let interval = Duration::from_secs_f64(interval.clamp(0.05, 3600.0));
    let term = console::Term::stdout();
    let mut previous: Option<Reading> = None;
    let mut shown_lines = 0;
    let mut n = 0u64;
    loop {
        let reading = match session.health().await {
            Ok(_) => session.history().last().cloned(),
            Err(e) => {
                println!("reading the link: {e}");
                None
            }
        };
        let lines = status_lines(
            &session.status(),
            &spec,
            reading.as_ref(),
            previous.as_ref(),
        );
        if watch && settings.fancy && shown_lines > 0 {
            let _ = term.clear_last_lines(shown_lines);
        }
        for l in &lines {
            println!("{l}");
        }
        shown_lines = lines.len();
        n += 1;
        if !watch || count.is_some_and(|c| n >= c) {
            break;
        }
        if reading.is_some() {
            previous = reading;
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    Ok(Exit::Done)
}

fn print_status(
    status: &SessionStatus,
    spec: &LinkSpec,
    reading: Option<&Reading>,
    before: Option<&Reading>,
) {
    for l in status_lines(status, spec, reading, before) {
        println!("{l}");
    }
}

fn side(s: Side) -> &'static str {
    match s {
        Side::SqlServer => "SQL Server",
        Side::ManagedInstance => "managed instance",
    }
}

/// The status as lines: state and primary, the operation, each database's LSNs, lag and
/// seeding (with an ETA from the previous reading), the certificate's expiry, the journal.
pub fn status_lines(
    status: &SessionStatus,
    spec: &LinkSpec,
    reading: Option<&Reading>,
    before: Option<&Reading>,
) -> Vec<String> {
    let now = SystemClock.now();
    let mut lines = vec![format!(
        "link {}: {} (primary: {}){}",
        status.link,
        status.state.name(),
        side(status.primary),
        if status.data_loss_possible {
            ", data loss possible"
        } else {
            ""
        }
    )];
    if let Some(op) = status.operation {
        lines.push(format!(
            "  operation: {} ({})",
            op.name(),
            serde_json::to_value(&status.progress)
                .ok()
                .and_then(|v| v.get("status").and_then(|s| s.as_str()).map(str::to_owned))
                .unwrap_or_default()
        ));
    }
    if let Some(e) = &status.last_error {
        lines.push(format!(
            "  last error: {}: {}{}",
            e.code,
            e.message,
            if e.retryable {
                " (retryable: resume)"
            } else {
                ""
            }
        ));
    }
    if let Some(r) = reading {
        for d in &r.databases {
            let lsn =
                |l: Option<milink_core::names::Lsn>| l.map_or("-".to_owned(), |l| l.to_string());
            let mut line = format!(
                "  {}: SQL Server LSN {}, managed instance LSN {}, lag {}",
                d.database,
                lsn(d.source_lsn),
                lsn(d.instance_lsn),
                d.lag_seconds.map_or("-".to_owned(), |s| format!("{s} s"))
            );
            if let Some(p) = d.seeding_percent {
                line.push_str(&format!(", seeding {p}%"));
                let eta = before
                    .and_then(|b| b.databases.iter().find(|x| x.database == d.database))
                    .and_then(|x| x.seeding_percent.map(|q| (q, before.map(|b| b.at))))
                    .and_then(|(q, at)| eta(q, at?, p, r.at));
                line.push_str(&match eta {
                    Some(s) => format!(" (ETA {s} s)"),
                    None => " (ETA: after two readings)".to_owned(),
                });
            }
            lines.push(line);
        }
    }
    let expiry = spec.source.certificate_expiry;
    let days = expiry.days_since_epoch() - now.date().days_since_epoch();
    lines.push(format!(
        "  certificate {} expires {} ({days} days)",
        spec.source.certificate, expiry
    ));
    if let Some(p) = &status.journal_path {
        lines.push(format!(
            "  journal {} ({} records)",
            p.display(),
            status.journal_records
        ));
    }
    for w in &status.connection_warnings {
        lines.push(format!("  warning: {w}"));
    }
    for l in &status.data_loss {
        lines.push(format!("  !!! data loss: {l:?}"));
    }
    lines
}

/// Seconds until 100% at the rate between two readings.
fn eta(p0: u8, t0: Timestamp, p1: u8, t1: Timestamp) -> Option<u64> {
    let dt = t1.as_millis().checked_sub(t0.as_millis())?;
    let dp = u64::from(p1.checked_sub(p0)?);
    if dp == 0 || dt == 0 {
        return None;
    }
    Some(u64::from(100 - p1.min(100)) * dt / dp / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LinkConfig;

    fn settings() -> Settings {
        let config = LinkConfig::from_toml(
            r#"
[sql_server]
host = "sql01"
port = 1433
user = "milink"
password_env = "P"

[managed_instance]
resource_id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/managedInstances/mi"
arm_endpoint = "https://management.azure.com"
credential = "environment"

[link]
name = "DAG_ToyStore"
databases = ["ToyStore"]
"#,
        )
        .unwrap();
        Settings {
            config,
            journal: "DAG_ToyStore.journal".into(),
            fancy: false,
        }
    }

    #[test]
    fn a_forced_failover_needs_the_links_name_typed_again() {
        let s = settings();
        assert!(matches!(
            failover_kind(&s, false, None),
            Ok(FailoverKind::Planned)
        ));
        let Ok(FailoverKind::Forced(Some(ack))) = failover_kind(&s, true, Some("DAG_ToyStore"))
        else {
            panic!("an acknowledged forced failover is allowed")
        };
        assert_eq!(ack.link, "DAG_ToyStore");
        for (force, accept) in [
            (true, None),
            (true, Some("dag_toystore")),
            (true, Some("DAG_Other")),
            (false, Some("DAG_ToyStore")),
        ] {
            let e = failover_kind(&s, force, accept).unwrap_err();
            assert_eq!(e.exit, Exit::Refused, "{force} {accept:?}: {e}");
        }
    }

    #[test]
    fn the_eta_follows_the_rate_between_two_readings() {
        let t = |s: u64| Timestamp::from_millis(s * 1000);
        assert_eq!(eta(20, t(0), 40, t(10)), Some(30));
        assert_eq!(eta(40, t(0), 40, t(10)), None, "no progress, no estimate");
        assert_eq!(eta(50, t(10), 40, t(20)), None, "seeding restarted");
    }

    #[test]
    fn the_world_names_the_pair() {
        let s = settings();
        assert_eq!(
            s.world(),
            "SQL Server sql01:1433 linked to \
             /subscriptions/s/resourcegroups/rg/providers/microsoft.sql/managedinstances/mi"
        );
    }
}
