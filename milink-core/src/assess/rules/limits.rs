//! Instance checks of milink-facts §5.1: size, trace flags and Agent jobs.

use crate::assess::sku::{NEXT_GEN_GENERAL_PURPOSE, TierLimits};

use super::{Check, Context, Evidence, F51, Fix, Outcome, Rule, ScopeKind, Severity, gb, list};

/// This group's part of the catalogue, in catalogue order.
pub(super) const RULES: &[Rule] = &[
    NUM_DB_EXCEEDS_100,
    MI_INSTANCE_SIZE,
    MI_TRACE_FLAGS,
    POWERSHELL_JOB,
    ANALYSIS_COMMAND_JOB,
    ANALYSIS_QUERY_JOB,
    MERGE_JOB,
    QUEUE_READER_JOB,
    TRANSACT_SQL_JOB,
];

const NUM_DB_EXCEEDS_100: Rule = rule!(
    "NumDbExceeds100",
    Warning,
    Instance,
    "More than 100 databases",
    F51,
    "count of user databases",
    Instance(num_db_exceeds_100)
);
fn num_db_exceeds_100(ctx: &Context<'_>) -> Outcome {
    let n = ctx.all_databases.len();
    if n <= 100 {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "{n} user databases; General Purpose and Business Critical hold 100"
        ))
        .with("databases", n),
        Fix::action(
            "Spread the databases across instances, or use Next-gen General Purpose (500).",
        ),
    )
}

const MI_INSTANCE_SIZE: Rule = rule!(
    "MIInstanceSize",
    Warning,
    Instance,
    "Instance storage exceeds the managed instance maximum",
    F51,
    "sum of data and log sizes against the current tier maximum (not the outdated 8 TB of the rule page)",
    Instance(mi_instance_size)
);
fn mi_instance_size(ctx: &Context<'_>) -> Outcome {
    // User-given sizes: saturate rather than overflow.
    let total_mb: u64 = ctx
        .all_databases
        .iter()
        .fold(0u64, |total, d| total.saturating_add(d.size_mb()));
    let limits = ctx
        .target
        .map(|t| TierLimits::of(t.tier))
        .unwrap_or(&NEXT_GEN_GENERAL_PURPOSE);
    let max = limits.absolute_max_storage_gb();
    if gb(total_mb) <= max {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "the instance holds {} GB; {} offers at most {max} GB",
            gb(total_mb),
            limits.tier
        ))
        .with("total GB", gb(total_mb))
        .with("max GB", max),
        Fix::action("Migrate the databases to more than one managed instance."),
    )
}

/// The global trace flags Azure SQL Managed Instance supports: "Azure SQL Managed Instance
/// supports the following global Trace flags: 460, 2301, 2389, 2390, 2453, 2467, 7471, 8207,
/// 9389, 10316, and 11024. Session trace-flags aren't yet supported in SQL Managed Instance."
/// Sources: sql-docs `docs/t-sql/database-console-commands/dbcc-traceon-trace-flags-transact-sql.md`
/// (and `dbcc-traceon-transact-sql.md`), to which the DBCC section of
/// `azure-sql/managed-instance/transact-sql-tsql-differences-sql-server.md` refers ("Only a
/// limited number of Global Trace flags are supported").
pub const MI_SUPPORTED_TRACE_FLAGS: [u32; 11] = [
    460, 2301, 2389, 2390, 2453, 2467, 7471, 8207, 9389, 10316, 11024,
];

/// The link's own trace flags on SQL Server (milink-facts §1.3: 1800 for the log I/O of
/// mismatched sector sizes, 9567 for compressed seeding, 12381 against premature log
/// truncation during seeding). `Link.TraceFlags` asks for them on SQL Server; the managed
/// instance needs none of them, so `TraceFlags` does not report them.
const LINK_TRACE_FLAGS: [u32; 3] = [1800, 9567, 12381];

const MI_TRACE_FLAGS: Rule = rule!(
    "TraceFlags",
    Warning,
    Instance,
    "Trace flags the managed instance does not support",
    F51,
    "global trace flags on SQL Server that are not in the managed instance's supported list \
     (460, 2301, 2389, 2390, 2453, 2467, 7471, 8207, 9389, 10316, 11024) nor in the options' \
     list; the link's own flags 1800, 9567 and 12381 aside",
    Instance(mi_trace_flags)
);
fn mi_trace_flags(ctx: &Context<'_>) -> Outcome {
    let supported = |f: &u32| {
        MI_SUPPORTED_TRACE_FLAGS.contains(f) || ctx.options.mi_supported_trace_flags.contains(f)
    };
    let on: Vec<u32> = ctx
        .instance
        .trace_flags
        .iter()
        .filter(|t| t.enabled && !LINK_TRACE_FLAGS.contains(&t.flag))
        .map(|t| t.flag)
        .collect();
    let unsupported: Vec<u32> = on.iter().copied().filter(|f| !supported(f)).collect();
    if unsupported.is_empty() {
        return Outcome::Pass;
    }
    let shown = list(unsupported.iter().map(u32::to_string));
    let mut evidence = Evidence::new(format!(
        "global trace flag(s) {shown} are on, and the managed instance does not support them"
    ))
    .with("unsupported trace flags", &shown);
    let kept: Vec<String> = on
        .iter()
        .filter(|f| supported(f))
        .map(u32::to_string)
        .collect();
    if !kept.is_empty() {
        evidence = evidence.with("supported on the managed instance", list(&kept));
    }
    Outcome::Fail(
        evidence,
        Fix::action(
            "Find what each unsupported flag was for and replace it with a database or query \
             setting (ALTER DATABASE SCOPED CONFIGURATION, query hints) or drop it: the managed \
             instance accepts only the global trace flags 460, 2301, 2389, 2390, 2453, 2467, \
             7471, 8207, 9389, 10316 and 11024, and no session flags. Trace flags are not \
             replicated by the link: turn the supported ones on there with DBCC TRACEON (n, -1).",
        ),
    )
}

fn job_rule(ctx: &Context<'_>, subsystem: &str, what: &str) -> Outcome {
    let steps: Vec<String> = ctx
        .instance
        .job_steps
        .iter()
        .filter(|s| s.subsystem.eq_ignore_ascii_case(subsystem))
        .map(|s| format!("{} step {}", s.job, s.step_id))
        .collect();
    if steps.is_empty() {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!("{} {subsystem} job step(s)", steps.len()))
            .with("steps", list(steps.iter().take(20))),
        Fix::action(format!(
            "{what} Agent jobs are not replicated; recreate the supported ones on the managed instance."
        )),
    )
}

const POWERSHELL_JOB: Rule = rule!(
    "PowerShellJob",
    Warning,
    Instance,
    "PowerShell job steps",
    F51,
    "msdb job steps by subsystem",
    Instance(powershell_job)
);
fn powershell_job(ctx: &Context<'_>) -> Outcome {
    job_rule(
        ctx,
        "PowerShell",
        "The managed instance's SQL Agent does not run PowerShell steps; move them to Azure Automation or another scheduler.",
    )
}

const ANALYSIS_COMMAND_JOB: Rule = rule!(
    "AnalysisCommandJob",
    Warning,
    Instance,
    "SSAS command job steps",
    F51,
    "msdb job steps by subsystem",
    Instance(analysis_command_job)
);
fn analysis_command_job(ctx: &Context<'_>) -> Outcome {
    job_rule(
        ctx,
        "ANALYSISCOMMAND",
        "SSAS command steps are not supported on the managed instance.",
    )
}

const ANALYSIS_QUERY_JOB: Rule = rule!(
    "AnalysisQueryJob",
    Warning,
    Instance,
    "SSAS query job steps",
    F51,
    "msdb job steps by subsystem",
    Instance(analysis_query_job)
);
fn analysis_query_job(ctx: &Context<'_>) -> Outcome {
    job_rule(
        ctx,
        "ANALYSISQUERY",
        "SSAS query steps are not supported on the managed instance.",
    )
}

const MERGE_JOB: Rule = rule!(
    "MergeJob",
    Warning,
    Instance,
    "Merge replication job steps",
    F51,
    "msdb job steps by subsystem",
    Instance(merge_job)
);
fn merge_job(ctx: &Context<'_>) -> Outcome {
    job_rule(
        ctx,
        "Merge",
        "Merge replication is not supported on the managed instance.",
    )
}

const QUEUE_READER_JOB: Rule = rule!(
    "QueueReaderJob",
    Warning,
    Instance,
    "Queue Reader job steps",
    F51,
    "msdb job steps by subsystem",
    Instance(queue_reader_job)
);
fn queue_reader_job(ctx: &Context<'_>) -> Outcome {
    job_rule(
        ctx,
        "QueueReader",
        "Queue Reader steps are not supported on the managed instance.",
    )
}

const TRANSACT_SQL_JOB: Rule = rule!(
    "TransactSqlJob",
    Warning,
    Instance,
    "T-SQL job steps with unsupported commands",
    F51,
    "T-SQL job step commands scanned for the same constructs as module text",
    Instance(transact_sql_job)
);
fn transact_sql_job(ctx: &Context<'_>) -> Outcome {
    let steps: Vec<String> = ctx
        .instance
        .job_steps
        .iter()
        .filter(|s| s.subsystem.eq_ignore_ascii_case("TSQL") && !s.markers.is_empty())
        .map(|s| {
            format!(
                "{} step {} ({})",
                s.job,
                s.step_id,
                list(s.markers.iter().map(|m| format!("{m:?}")))
            )
        })
        .collect();
    if steps.is_empty() {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "{} T-SQL job step(s) use commands the managed instance does not support",
            steps.len()
        ))
        .with("steps", list(steps.iter().take(20))),
        Fix::action("Rewrite those steps before recreating the jobs on the managed instance."),
    )
}
