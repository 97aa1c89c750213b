//! What an [`ArcOp`] needs to be allowed (milink-facts §6.1): the Azure RBAC operation the caller
//! must hold on the Arc resource, and the just-in-time SQL permissions the Azure Extension for
//! SQL Server grants itself on SQL Server for the step. A 403 or a failure of the extension
//! names both, so the message says what to grant. Pure.

use std::fmt;

use super::{ArcOp, request};
use crate::arm::Method;
use crate::arm::errors::permission;

/// The SQL permissions the extension grants itself (to `NT SERVICE\SqlServerExtension` under
/// least privilege) to create the link: endpoint, availability group, certificates.
pub const JIT_CREATE: &[&str] = &[
    "CREATE AVAILABILITY GROUP",
    "ALTER ANY AVAILABILITY GROUP",
    "ALTER ANY DATABASE",
    "CREATE ENDPOINT",
    "ALTER ANY ENDPOINT",
    "CREATE CERTIFICATE",
    "IMPERSONATE ON USER::[dbo] in master",
];

/// The SQL permissions for the cutover (the DAG's failover needs sysadmin).
pub const JIT_CUTOVER: &[&str] = &[
    "CREATE AVAILABILITY GROUP",
    "ALTER ANY AVAILABILITY GROUP",
    "ALTER ANY DATABASE",
    "sysadmin",
];

/// The SQL permissions for cancelling (deleting the DAG needs sysadmin).
pub const JIT_CANCEL: &[&str] = &[
    "ALTER ANY AVAILABILITY GROUP",
    "ALTER ANY DATABASE",
    "sysadmin",
];

/// The account the extension runs SQL as without least privilege: it needs sysadmin for the
/// cutover and the cancel.
pub const EXTENSION_FALLBACK_ACCOUNT: &str = "NT AUTHORITY\\SYSTEM";
/// The extension's own account under least privilege.
pub const EXTENSION_ACCOUNT: &str = "NT SERVICE\\SqlServerExtension";

/// What an operation needs: the Azure side and, for the steps the extension performs in SQL
/// Server, the SQL side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArcPermissions {
    /// The REST operation (also the RBAC operation the portal's pane names), e.g.
    /// `SqlServerAvailabilityGroups_failoverMiLink`.
    pub operation_id: &'static str,
    /// The RBAC action to grant on the Arc resource, derived from the method and path as ARM
    /// derives it (`Microsoft.AzureArcData/sqlServerInstances/availabilityGroups/failoverMiLink/action`).
    /// UNVERIFIED: Microsoft.AzureArcData's operations list is not copied.
    pub rbac_action: String,
    /// The step, for messages: `create`, `cutover`, `cancel`; `None` for reads and assessments.
    pub step: Option<&'static str>,
    /// The just-in-time SQL permissions the extension needs for the step (empty for reads).
    pub jit_sql: &'static [&'static str],
}

impl ArcPermissions {
    /// What `op` needs.
    pub fn of(op: &ArcOp) -> ArcPermissions {
        // The path's instance does not change the action: any valid id renders it.
        let placeholder = super::ArcInstanceId {
            subscription_id: "s".to_owned(),
            resource_group: "g".to_owned(),
            name: "n".to_owned(),
        };
        let rendered = request(op, &placeholder);
        let (step, jit_sql): (Option<&'static str>, &'static [&'static str]) = match op {
            ArcOp::CreateMiLink(_) => (Some("create"), JIT_CREATE),
            ArcOp::FailoverMiLink { .. } => (Some("cutover"), JIT_CUTOVER),
            ArcOp::DeleteMiLink { .. } => (Some("cancel"), JIT_CANCEL),
            _ => (None, &[]),
        };
        ArcPermissions {
            operation_id: op.operation_id(),
            rbac_action: permission(rendered.method, &rendered.path),
            step,
            jit_sql,
        }
    }

    /// What each of the link's three steps through Arc needs, in order: create
    /// (`createManagedInstanceLink`), cutover (`failoverMiLink`) and cancel (`deleteMiLink`);
    /// the same as [`ArcPermissions::of`] their operations.
    pub fn link_steps() -> [ArcPermissions; 3] {
        let instance = "/subscriptions/s/resourceGroups/g/providers/Microsoft.AzureArcData/\
                        sqlServerInstances/n";
        let step = |operation_id: &'static str,
                    tail: &str,
                    step: &'static str,
                    jit_sql: &'static [&'static str]| ArcPermissions {
            operation_id,
            rbac_action: permission(Method::Post, &format!("{instance}{tail}")),
            step: Some(step),
            jit_sql,
        };
        [
            step(
                "SqlServerAvailabilityGroups_CreateManagedInstanceLink",
                "/createManagedInstanceLink",
                "create",
                JIT_CREATE,
            ),
            step(
                "SqlServerAvailabilityGroups_failoverMiLink",
                "/availabilityGroups/link/failoverMiLink",
                "cutover",
                JIT_CUTOVER,
            ),
            step(
                "SqlServerAvailabilityGroups_deleteMiLink",
                "/availabilityGroups/link/deleteMiLink",
                "cancel",
                JIT_CANCEL,
            ),
        ]
    }

    /// The RBAC part of a message: what to grant on the Arc resource.
    pub fn rbac_hint(&self) -> String {
        format!(
            "grant the caller the Azure RBAC operation {} ({}) on the Arc-enabled SQL Server \
             resource",
            self.rbac_action, self.operation_id
        )
    }

    /// The SQL part of a message: what the extension must be able to grant itself; `None` for
    /// operations that run no SQL step.
    pub fn jit_hint(&self) -> Option<String> {
        let step = self.step?;
        let sysadmin = self.jit_sql.contains(&"sysadmin");
        Some(format!(
            "the Azure Extension for SQL Server grants itself these SQL permissions just in time \
             for the {step}: {} (to {EXTENSION_ACCOUNT} with least privilege{})",
            self.jit_sql.join(", "),
            if sysadmin {
                format!("; without it, {EXTENSION_FALLBACK_ACCOUNT} needs sysadmin")
            } else {
                format!(", else {EXTENSION_FALLBACK_ACCOUNT}")
            }
        ))
    }
}

impl fmt::Display for ArcPermissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rbac_hint())?;
        if let Some(jit) = self.jit_hint() {
            write!(f, "; {jit}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arc::ArcFailover;
    use crate::names::{InstanceId, LinkName};

    #[test]
    fn link_steps_name_their_rbac_action_and_jit_sql_permissions() {
        let link = LinkName::new("DAG_ToyStore").unwrap();
        let mi = InstanceId::from_parts("s", "g", "mi").unwrap();
        let failover = ArcPermissions::of(&ArcOp::FailoverMiLink {
            link: link.clone(),
            managed_instance: mi,
            failover: ArcFailover::Planned,
        });
        assert_eq!(
            failover.rbac_action,
            "Microsoft.AzureArcData/sqlServerInstances/availabilityGroups/failoverMiLink/action"
        );
        assert_eq!(failover.step, Some("cutover"));
        let text = failover.to_string();
        assert!(
            text.contains("SqlServerAvailabilityGroups_failoverMiLink"),
            "{text}"
        );
        assert!(
            text.contains("sysadmin") && text.contains("NT AUTHORITY\\SYSTEM"),
            "{text}"
        );
        let delete = ArcPermissions::of(&ArcOp::DeleteMiLink { link });
        assert_eq!(
            delete.rbac_action,
            "Microsoft.AzureArcData/sqlServerInstances/availabilityGroups/deleteMiLink/action"
        );
        assert_eq!(delete.jit_sql, JIT_CANCEL);
        let read = ArcPermissions::of(&ArcOp::GetInstance);
        assert_eq!(
            read.rbac_action,
            "Microsoft.AzureArcData/sqlServerInstances/read"
        );
        assert_eq!(read.jit_hint(), None);
        let telemetry = ArcPermissions::of(&ArcOp::GetTelemetry(Box::new(
            crate::arc::TelemetryRequest::new(crate::arc::TelemetryDataset::SecondaryReplicaLag),
        )));
        assert_eq!(
            telemetry.rbac_action,
            "Microsoft.AzureArcData/sqlServerInstances/getTelemetry/action"
        );

        // The three steps as one list: the same as each operation's.
        let [create, cutover, cancel] = ArcPermissions::link_steps();
        assert_eq!(cutover, failover);
        assert_eq!(cancel, delete);
        assert_eq!(
            create.rbac_action,
            "Microsoft.AzureArcData/sqlServerInstances/createManagedInstanceLink/action"
        );
        assert_eq!(create.step, Some("create"));
        assert_eq!(create.jit_sql, JIT_CREATE);
    }
}
