//! Printing milink's plan: the T-SQL batches of each [`SourceOp`] and the ARM request of each
//! [`InstanceOp`] a link journey sends, in order, by machine state.
//!
//! The plan itself comes from the library ([`milink_core::plan`]), which drives the real
//! lifecycle machine with successful answers; this module only prints it ([`print`],
//! [`lab_plan`]; the `plan` example is a command line over them, and the lab's `--plan` mode
//! prints it too). The lab's narration names each effect with [`source_batches`] and
//! [`arm_request`], which render through the same library functions.

use milink_core::lifecycle::{CutoverOptions, InstanceOp, LinkSpec, SourceOp};
use milink_core::names::InstanceId;
use milink_core::plan::{Journey, Plan, PlanError, PlanStep};
use milink_core::tsql::Batch;
use serde_json::{Value, json};

use crate::narrate::{shorten_blobs, side_name};

/// The api-version the plan's URLs carry (milink's own, which the simulated instance's
/// operation URLs use too).
pub use milink_core::arm::API_VERSION;

/// The T-SQL batches SQL Server would run for `op`, rendered by [`SourceOp::render`] with the
/// library's labelled placeholders ([`milink_core::plan::placeholder_context`]) for what comes
/// from the SQL Server adapter's configuration: the master key password (the batch shows it
/// redacted anyway) and the Azure root CA certificates (empty blobs).
pub fn source_batches(op: &SourceOp) -> Vec<Batch> {
    op.render(&milink_core::plan::placeholder_context())
        .unwrap_or_default()
}

/// The journey of the lab's mode: failover (the default), failover and failback, or a cutover
/// that drops the availability group too (as the lab's cutover does).
pub fn journey(failback: bool, cutover: bool) -> Journey {
    if cutover {
        Journey::Cutover(CutoverOptions {
            drop_availability_group: true,
        })
    } else if failback {
        Journey::Failback
    } else {
        Journey::Failover
    }
}

/// The library's plan of the lab's mode for `spec`.
pub fn lab_plan(spec: &LinkSpec, failback: bool, cutover: bool) -> Result<Plan, PlanError> {
    milink_core::plan::plan(spec, &journey(failback, cutover))
}

/// The plan as the lab prints it: a header per operation and per machine state, each T-SQL
/// batch and ARM request in full (certificate bytes and public keys shortened), the redirects
/// of the application. The master key password shows redacted.
pub fn print(plan: &Plan) -> String {
    let mut out = format!(
        "-- milink {}: plan of link {} ({} steps)\n-- every T-SQL batch (SQL Server) and ARM request (managed instance), in order, by machine state;\n-- computed by the lifecycle machine, nothing is sent to a server.",
        milink_core::VERSION,
        plan.link,
        plan.len()
    );
    if plan.placeholders {
        out.push_str(
            "\n-- Master key password and root CA certificates come from the adapter's configuration and\n-- are placeholders here; certificates exchanged between the sides are read at run time.",
        );
    }
    let mut operation = None;
    for stage in &plan.stages {
        if operation != Some(stage.operation) {
            operation = Some(stage.operation);
            out.push_str(&format!("\n\n-- == {}", stage.operation.name()));
        }
        out.push_str(&format!("\n\n-- state: {}", stage.phase.name()));
        for step in &stage.steps {
            out.push('\n');
            out.push_str(&print_step(step, &plan.instance));
        }
    }
    out.push_str(&format!("\n\n-- final state: {}", plan.final_phase.name()));
    out
}

/// One step as [`print`] shows it.
pub fn print_step(step: &PlanStep, instance: &InstanceId) -> String {
    match step {
        PlanStep::Sql { batches, .. } => batches
            .iter()
            .map(|b| {
                format!(
                    "-- [SQL Server] {}\n{}",
                    b.purpose(),
                    shorten_blobs(b.display_sql().trim_end())
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
        PlanStep::Arm { op, .. } => {
            format!("-- [Azure Resource Manager]\n{}", arm_request(op, instance))
        }
        // Arc's operation, as the library's plan shows it (request and body).
        arc @ PlanStep::Arc { .. } => arc.to_string(),
        PlanStep::Redirect { primary } => format!(
            "-- [application] the redirect hook moves the workload to the {}",
            side_name(*primary)
        ),
    }
}

/// One ARM request.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmRequest {
    /// HTTP method.
    pub method: &'static str,
    /// Full URL with the api-version.
    pub url: String,
    /// JSON body, if any.
    pub body: Option<Value>,
}

impl std::fmt::Display for ArmRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.url)?;
        if let Some(body) = &self.body {
            write!(f, "\n{body}")?;
        }
        Ok(())
    }
}

/// A public key as the plan shows it: `0x` and upper-case hex, shortened for display.
fn blob(der: &[u8]) -> String {
    let hex: String = der.iter().take(16).map(|b| format!("{b:02X}")).collect();
    if der.len() > 16 {
        format!("0x{hex}… ({} bytes)", der.len())
    } else {
        format!("0x{hex}")
    }
}

/// The ARM request the managed instance adapter would send for `op`, from
/// [`milink_core::arm::request`] (public keys shortened for display).
pub fn arm_request(op: &InstanceOp, instance: &InstanceId) -> ArmRequest {
    let request = milink_core::arm::request(op, instance);
    let mut body = request.body.clone();
    if let (InstanceOp::PutServerTrustCertificate { public_blob, .. }, Some(b)) =
        (op, body.as_mut())
    {
        b["properties"]["publicBlob"] = json!(blob(public_blob));
    }
    ArmRequest {
        method: request.method.as_str(),
        url: request.url(milink_core::arm::MANAGEMENT_ENDPOINT),
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use milink_core::lifecycle::{FailoverMode, LinkProperties, SeedingMode, Side};
    use milink_core::names::{AgName, DatabaseName, LinkMode, LinkName};

    fn instance() -> InstanceId {
        InstanceId::from_parts("sub", "rg", "tailspin-mi").unwrap()
    }

    #[test]
    fn put_link_follows_the_rest_shape() {
        let op = InstanceOp::PutLink {
            link: LinkName::new("DAG_ToyStore").unwrap(),
            properties: LinkProperties {
                instance_link_role: Side::SqlServer,
                instance_ag: AgName::new("AG_ToyStore_MI").unwrap(),
                partner_ag: AgName::new("AG_ToyStore").unwrap(),
                partner_endpoint: "TCP://10.0.1.4:5022".into(),
                failover_mode: FailoverMode::Manual,
                seeding_mode: SeedingMode::Automatic,
                link_mode: LinkMode::SingleDatabase,
                databases: vec![DatabaseName::new("ToyStore").unwrap()],
            },
        };
        let r = arm_request(&op, &instance());
        assert_eq!(r.method, "PUT");
        assert_eq!(
            r.url,
            "https://management.azure.com/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Sql/managedInstances/tailspin-mi/distributedAvailabilityGroups/DAG_ToyStore?api-version=2025-01-01"
        );
        let p = &r.body.unwrap()["properties"];
        assert_eq!(p["instanceLinkRole"], "Secondary");
        assert_eq!(p["failoverMode"], "Manual");
        assert_eq!(p["databases"][0]["databaseName"], "ToyStore");
        assert!(p.get("linkMode").is_none());
    }

    #[test]
    fn names_are_escaped_in_urls() {
        let op = InstanceOp::DeleteLink {
            link: LinkName::new("a b/c").unwrap(),
        };
        assert!(
            arm_request(&op, &instance())
                .url
                .contains("/distributedAvailabilityGroups/a%20b%2Fc?")
        );
    }

    #[test]
    fn the_master_key_password_is_not_in_the_plan() {
        let b = source_batches(&SourceOp::EnsureMasterKey);
        assert!(b[0].is_sensitive());
        assert!(!b[0].display_sql().contains("secret store"));
        assert_eq!(source_batches(&SourceOp::EnsureRootCaTrust).len(), 2);
    }

    #[test]
    fn the_lab_plans_print_from_the_library() {
        let spec = milink_core::sim::Lab::tailspin(1).unwrap().spec;
        let counts: Vec<usize> = [(false, false), (true, false), (false, true)]
            .into_iter()
            .map(|(failback, cutover)| lab_plan(&spec, failback, cutover).unwrap().len())
            .collect();
        // The failback after the failover skips the switch to synchronous commit.
        assert_eq!(counts, [15, 17, 18]);
        let text = print(&lab_plan(&spec, false, true).unwrap());
        for expected in [
            "CREATE MASTER KEY ENCRYPTION BY PASSWORD = N'***'",
            "CREATE ENDPOINT [database_mirroring_endpoint]",
            "CREATE AVAILABILITY GROUP [AG_ToyStore]",
            "WITH (DISTRIBUTED)",
            "/serverTrustCertificates/Cert_TailspinSql_endpoint?api-version=2025-01-01",
            "{\"properties\":{\"replicationMode\":\"Sync\"}}",
            "FAILOVER;",
            "-- [application] the redirect hook moves the workload to the managed instance",
            "DELETE https://management.azure.com/",
            "DROP AVAILABILITY GROUP [DAG_ToyStore]",
            "DROP AVAILABILITY GROUP [AG_ToyStore]",
            "-- state: RemovingLink",
            "-- final state: Completed",
        ] {
            assert!(text.contains(expected), "{expected} missing:\n{text}");
        }
        assert!(!text.contains(milink_core::plan::PLACEHOLDER_MASTER_KEY_PASSWORD));
        assert_eq!(journey(false, false), Journey::Failover);
    }
}
