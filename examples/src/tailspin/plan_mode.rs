//! The lab's `--plan` mode: the library's plan of the link, with the readiness and monitoring probes.

use std::error::Error;
use std::io::Write;

use milink_core::lifecycle::LinkSpec;
use milink_core::names::DatabaseName;
use milink_core::sim::Lab;

use super::cli::Options;
use super::readiness::{assess_lab, probes};
use super::report::Report;
use crate::plan::{lab_plan, print};

/// Prints the plan of the lab's mode to `out`: the readiness probes, every T-SQL batch and ARM
/// request of the link by machine state as the library's plan has them
/// ([`milink_core::plan::plan`]), then the probes the session repeats while it waits. Nothing
/// runs; the report carries the readiness verdicts and the plan's final state.
pub(super) fn plan(
    opts: &Options,
    mut out: Box<dyn Write + Send>,
) -> Result<Report, Box<dyn Error>> {
    let mut lab = Lab::tailspin(opts.seed)?;
    if opts.route_arc {
        // The Arc route's plan: Arc's operations in place of the T-SQL and the instance's join
        // (its cutover after the failover is the removal through deleteMiLink).
        let instance = lab
            .sim
            .with_world(|w| w.arc_instance_id())
            .ok_or("the lab's SQL Server has no Arc resource id")?;
        lab.spec.route = milink_core::lifecycle::LinkRoute::Arc { instance };
    }
    let assessed = assess_lab(&lab.sim, &lab.spec);
    let planned = lab_plan(&lab.spec, opts.failback, opts.cutover)?;
    let text = format!(
        "-- Tailspin lab, seed {}: the readiness probes, the plan of the link, and the probes\n-- repeated while waiting; nothing runs, nothing is sent to a server.\n\n-- == Readiness\n{}\n\n{}\n{}",
        opts.seed,
        probes(&assessed.instance),
        print(&planned),
        monitoring(&lab.spec, &lab.database)
    );
    // Best effort, like the narration: a closed stdout must not fail the run.
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
    let mut report = Report::new(opts, &lab);
    report.databases = assessed.databases;
    report.final_state = planned.final_phase.name().to_owned();
    Ok(report)
}

/// The read-only probes the session repeats while it waits (every probe interval).
fn monitoring(spec: &LinkSpec, database: &DatabaseName) -> String {
    let link = &spec.link;
    let mut out = "\n-- == Monitoring, repeated while waiting (every probe interval)".to_string();
    if let milink_core::lifecycle::LinkRoute::Arc { instance } = &spec.route {
        // SQL Server's side through Arc: its DAG resource and the lag telemetry; the instance's
        // first full backups over its T-SQL endpoint.
        let ag = milink_core::names::AgName::new(link.as_str()).ok();
        let telemetry = milink_core::arc::TelemetryRequest::replica_lag(
            database.clone(),
            milink_core::time::Timestamp::EPOCH,
            std::time::Duration::from_secs(60),
        );
        let mut ops = vec![milink_core::arc::ArcOp::GetTelemetry(Box::new(telemetry))];
        if let Some(name) = ag {
            ops.insert(0, milink_core::arc::ArcOp::GetAvailabilityGroup { name });
        }
        for op in ops {
            let r = milink_core::arc::request(&op, instance);
            out.push_str(&format!(
                "\n-- [Azure Arc] {}\n{} {}",
                op.operation_id(),
                r.method,
                r.url(milink_core::arm::MANAGEMENT_ENDPOINT)
            ));
        }
        let b = milink_core::tsql::probe_first_full_backups(std::slice::from_ref(database));
        out.push_str(&format!(
            "\n-- [managed instance] {}\n{}",
            b.purpose(),
            b.display_sql().trim_end()
        ));
        out.push_str(&format!(
            "\n-- [Azure Resource Manager]\nGET https://management.azure.com{}/distributedAvailabilityGroups/{link}?api-version={}\nGET <the URL of each long-running operation, honouring Retry-After>",
            spec.target.instance,
            crate::plan::API_VERSION
        ));
        return out;
    }
    for b in [
        milink_core::tsql::probe_replica_states(link),
        milink_core::tsql::probe_database_replica_states(link),
        milink_core::tsql::probe_seeding_stats(),
        milink_core::tsql::probe_first_full_backups(std::slice::from_ref(database)),
    ] {
        out.push_str(&format!(
            "\n-- [SQL Server / managed instance] {}\n{}",
            b.purpose(),
            b.display_sql().trim_end()
        ));
    }
    out.push_str(&format!(
        "\n-- [Azure Resource Manager]\nGET https://management.azure.com{}/distributedAvailabilityGroups/{link}?api-version={}\nGET <the Location URL of each long-running operation, honouring Retry-After>",
        spec.target.instance,
        crate::plan::API_VERSION
    ));
    out
}
