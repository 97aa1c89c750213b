//! Instance checks against the target managed instance: policy, room and storage.

use crate::assess::facts::{DatabaseFacts, ProtectorKind, TargetFacts};
use crate::assess::sku::TierLimits;

use super::{
    Check, Context, Evidence, F13, F14, F18, F19, F53, Fix, NO_TARGET, Outcome, Rule, ScopeKind,
    Severity, gb,
};

/// This group's part of the catalogue, in catalogue order.
pub(super) const RULES: &[Rule] = &[
    AZURE_PERMISSIONS,
    COLLATION,
    UPDATE_POLICY,
    ONE_WAY,
    SERVICE_MANAGED_KEY,
    FAILOVER_GROUP,
    DATABASE_COUNT_LIMIT,
    STORAGE_FITS,
    SERVER_TRUST_CERTIFICATE,
];

/// The Azure actions the link needs on the managed instance: the custom role of
/// milink-facts §1.7 (`managed-instance-link-preparation.md`), which the built-in SQL Managed
/// Instance Contributor role covers. The `failover` action of `distributedAvailabilityGroups`
/// is not in the documented list (UNVERIFIED); it is not required here.
pub const LINK_ARM_ACTIONS: [&str; 20] = [
    "Microsoft.Sql/managedInstances/read",
    "Microsoft.Sql/managedInstances/write",
    "Microsoft.Sql/managedInstances/hybridCertificate/action",
    "Microsoft.Sql/managedInstances/databases/read",
    "Microsoft.Sql/managedInstances/databases/delete",
    "Microsoft.Sql/managedInstances/databases/write",
    "Microsoft.Sql/managedInstances/databases/completeRestore/action",
    "Microsoft.Sql/managedInstances/databases/readBackups/action",
    "Microsoft.Sql/managedInstances/databases/restoreDetails/read",
    "Microsoft.Sql/managedInstances/distributedAvailabilityGroups/read",
    "Microsoft.Sql/managedInstances/distributedAvailabilityGroups/write",
    "Microsoft.Sql/managedInstances/distributedAvailabilityGroups/delete",
    "Microsoft.Sql/managedInstances/distributedAvailabilityGroups/setRole/action",
    "Microsoft.Sql/managedInstances/endpointCertificates/read",
    "Microsoft.Sql/managedInstances/hybridLink/read",
    "Microsoft.Sql/managedInstances/hybridLink/write",
    "Microsoft.Sql/managedInstances/hybridLink/delete",
    "Microsoft.Sql/managedInstances/serverTrustCertificates/write",
    "Microsoft.Sql/managedInstances/serverTrustCertificates/delete",
    "Microsoft.Sql/managedInstances/serverTrustCertificates/read",
];

const AZURE_PERMISSIONS: Rule = rule!(
    "Link.AzurePermissions",
    Blocker,
    Instance,
    "The caller may manage the link on the managed instance",
    "milink-facts §1.7",
    "ARM's permissions call for the caller on the instance (Microsoft.Authorization/permissions, api-version 2022-04-01) against the documented actions",
    Instance(azure_permissions)
);
/// The actions of [`LINK_ARM_ACTIONS`] against what ARM says the caller may do on the instance
/// (`GET {instance}/providers/Microsoft.Authorization/permissions`, operation
/// `AzurePermissionsForResource_List`, api-version 2022-04-01:
/// <https://learn.microsoft.com/dotnet/api/azure.resourcemanager.authorization.mocking.mockableauthorizationresourcegroupresource.getazurepermissionsforresources>).
/// An action is granted when one permission set matches it in `actions` and not in
/// `notActions` (`*` wildcards, case-insensitive). Deny assignments are not in that answer.
fn azure_permissions(ctx: &Context<'_>) -> Outcome {
    let Some(t) = ctx.target else {
        return Outcome::NotEvaluated(NO_TARGET.into());
    };
    let Some(sets) = &t.caller_permissions else {
        return Outcome::NotEvaluated(
            "the caller's permissions on the instance were not read".into(),
        );
    };
    let missing: Vec<&str> = LINK_ARM_ACTIONS
        .into_iter()
        .filter(|a| !sets.iter().any(|s| s.grants(a)))
        .collect();
    if missing.is_empty() {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "the caller lacks {} of the link's {} Azure actions on {}, e.g. {}",
            missing.len(),
            LINK_ARM_ACTIONS.len(),
            t.name,
            missing[0]
        ))
        .with("missing", super::list(&missing)),
        Fix::action(format!(
            "Assign the caller the SQL Managed Instance Contributor role on {} (or its resource \
             group), or a custom role with the missing actions.",
            t.name
        )),
    )
}

const COLLATION: Rule = rule!(
    "Link.Collation",
    Warning,
    Instance,
    "Server collations match",
    F13,
    "SERVERPROPERTY('Collation') and the managed instance's collation",
    Instance(collation)
);
fn collation(ctx: &Context<'_>) -> Outcome {
    let Some(t) = ctx.target else {
        return Outcome::NotEvaluated(NO_TARGET.into());
    };
    let Some(target) = &t.collation else {
        return Outcome::NotEvaluated("the managed instance's collation is unknown".into());
    };
    if target.eq_ignore_ascii_case(&ctx.instance.collation) {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new("the server collations differ")
            .with("SQL Server", &ctx.instance.collation)
            .with("managed instance", target),
        Fix::action(
            "Use a managed instance with the same collation (it is fixed at creation), or test \
             the application against the managed instance's collation (tempdb uses it).",
        ),
    )
}

const UPDATE_POLICY: Rule = rule!(
    "Link.UpdatePolicy",
    Blocker,
    Instance,
    "Update policy allows the intended failback",
    F19,
    "version capabilities and databaseFormat",
    Instance(update_policy)
);
fn update_policy(ctx: &Context<'_>) -> Outcome {
    if !ctx.options.failback {
        return Outcome::Pass;
    }
    let v = ctx.instance.version;
    let caps = v.capabilities();
    if !caps.two_way {
        return Outcome::Fail(
            Evidence::new(format!(
                "{} links are one-way: no failback to SQL Server",
                v.release_name()
            ))
            .with("version", v),
            Fix::action("Use SQL Server 2022 or 2025 for failback, or accept a one-way migration."),
        );
    }
    let Some(t) = ctx.target else {
        return Outcome::NotEvaluated(NO_TARGET.into());
    };
    let Some(policy) = t.update_policy else {
        return Outcome::NotEvaluated("the managed instance's update policy is unknown".into());
    };
    if caps.failback_allowed_with(policy) {
        return Outcome::Pass;
    }
    let wanted = caps
        .matching_update_policy
        .map(|p| p.to_string())
        .unwrap_or_else(|| "none".into());
    Outcome::Fail(
        Evidence::new(format!(
            "failback to {} needs the {wanted} update policy; the managed instance has {policy}",
            v.release_name()
        ))
        .with("update policy", policy)
        .with("needed", &wanted),
        Fix::action(format!(
            "Use a managed instance with the {wanted} update policy (policies only move forward: \
             2022 → 2025 → Always-up-to-date), or give up failback."
        )),
    )
}

const ONE_WAY: Rule = rule!(
    "Link.OneWay",
    Info,
    Instance,
    "Failback is possible",
    F19,
    "version capabilities and databaseFormat",
    Instance(one_way)
);
fn one_way(ctx: &Context<'_>) -> Outcome {
    if ctx.options.failback {
        return Outcome::Pass;
    }
    let v = ctx.instance.version;
    let caps = v.capabilities();
    let why = if !caps.two_way {
        format!("{} links are one-way", v.release_name())
    } else {
        let Some(t) = ctx.target else {
            return Outcome::NotEvaluated(NO_TARGET.into());
        };
        let Some(policy) = t.update_policy else {
            return Outcome::NotEvaluated("the managed instance's update policy is unknown".into());
        };
        if caps.failback_allowed_with(policy) {
            return Outcome::Pass;
        }
        format!(
            "the managed instance's {policy} update policy doesn't match {}",
            v.release_name()
        )
    };
    Outcome::Fail(
        Evidence::new(format!(
            "{why}: after failing over to the managed instance there is no way back to SQL Server"
        )),
        Fix::None,
    )
}

const SERVICE_MANAGED_KEY: Rule = rule!(
    "Link.ServiceManagedKey",
    Blocker,
    Instance,
    "Replication back to SQL Server is not blocked by a service-managed TDE key",
    F18,
    "the instance's TDE protector (encryptionProtector/current, serverKeyType) when failback or a link from the managed instance is intended",
    Instance(service_managed_key)
);
/// A managed instance database encrypted with a service-managed key can't be replicated to
/// SQL Server (ARM 409 `DistributedAvailabilityGroupDbEncryptedWithSmk`; milink-facts §1.8):
/// failback and links created from the instance need a customer-managed key (BYOK) that SQL
/// Server can reach. The instance encrypts its databases by default, so the protector is
/// checked for the instance, not per database.
fn service_managed_key(ctx: &Context<'_>) -> Outcome {
    if !ctx.options.failback && !ctx.options.from_managed_instance {
        return Outcome::Pass;
    }
    let Some(t) = ctx.target else {
        return Outcome::NotEvaluated(NO_TARGET.into());
    };
    match t.tde_protector {
        None => Outcome::NotEvaluated("the instance's TDE protector was not read".into()),
        Some(ProtectorKind::CustomerManaged) => Outcome::Pass,
        Some(ProtectorKind::ServiceManaged) => Outcome::Fail(
            Evidence::new(format!(
                "{}'s TDE protector is service-managed: its encrypted databases can't be \
                 replicated to SQL Server (failback, or a link created from the instance)",
                t.name
            ))
            .with("serverKeyType", "ServiceManaged"),
            Fix::action(
                "Switch the instance's TDE protector to a customer-managed key in Azure Key \
                 Vault that SQL Server can also use (SQL Server on Linux: 2022 CU14+), before \
                 linking; while a link replicates to SQL Server it can't be switched back.",
            ),
        ),
    }
}

const FAILOVER_GROUP: Rule = rule!(
    "Link.FailoverGroup",
    Blocker,
    Instance,
    "Managed instance is not in a failover group",
    F18,
    "failover group membership of the target",
    Instance(failover_group)
);
fn failover_group(ctx: &Context<'_>) -> Outcome {
    let Some(t) = ctx.target else {
        return Outcome::NotEvaluated(NO_TARGET.into());
    };
    match t.in_failover_group {
        None => Outcome::NotEvaluated("failover group membership is unknown".into()),
        Some(false) => Outcome::Pass,
        Some(true) => Outcome::Fail(
            Evidence::new(format!("{} is in a failover group", t.name)),
            Fix::action(
                "A managed instance in a failover group can't host a link: remove it from the \
                 failover group or choose another instance.",
            ),
        ),
    }
}

fn new_databases<'a>(ctx: &'a Context<'_>, t: &TargetFacts) -> Vec<&'a DatabaseFacts> {
    ctx.selected
        .iter()
        .copied()
        .filter(|d| t.has_database(&d.name) != Some(true))
        .collect()
}

const DATABASE_COUNT_LIMIT: Rule = rule!(
    "Link.DatabaseCountLimit",
    Blocker,
    Instance,
    "Managed instance has room for the databases",
    F53,
    "databases on the target + databases to link, against 100 / 500",
    Instance(database_count_limit)
);
fn database_count_limit(ctx: &Context<'_>) -> Outcome {
    let Some(t) = ctx.target else {
        return Outcome::NotEvaluated(NO_TARGET.into());
    };
    let Some(existing) = t.database_count() else {
        return Outcome::NotEvaluated("the managed instance's databases are unknown".into());
    };
    let limit = TierLimits::of(t.tier).max_databases as usize;
    let adding = new_databases(ctx, t).len();
    if existing + adding <= limit {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "{existing} existing + {adding} linked databases exceed the {limit}-database limit of {}",
            t.tier
        ))
        .with("existing", existing)
        .with("adding", adding)
        .with("limit", limit),
        Fix::action(
            "Link fewer databases to this instance, spread them across instances, or use Next-gen \
             General Purpose (500 databases).",
        ),
    )
}

const STORAGE_FITS: Rule = rule!(
    "Link.StorageFits",
    Blocker,
    Instance,
    "Managed instance storage fits the databases",
    F53,
    "storage in use + data and log size of the databases to link, against the reserved storage",
    Instance(storage_fits)
);
fn storage_fits(ctx: &Context<'_>) -> Outcome {
    let Some(t) = ctx.target else {
        return Outcome::NotEvaluated(NO_TARGET.into());
    };
    let Some(used) = t.storage_used_gb else {
        return Outcome::NotEvaluated("the managed instance's storage in use is unknown".into());
    };
    let adding_mb: u64 = new_databases(ctx, t)
        .iter()
        .fold(0u64, |total, d| total.saturating_add(d.size_mb()));
    let adding = gb(adding_mb);
    if used.saturating_add(adding) <= t.storage_max_gb {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "{used} GB used + {adding} GB linked exceed the {} GB reserved",
            t.storage_max_gb
        ))
        .with("used GB", used)
        .with("adding GB", adding)
        .with("reserved GB", t.storage_max_gb),
        Fix::action(format!(
            "Increase the managed instance's reserved storage to at least {} GB (32 GB steps; the \
             tier and vCores cap it).",
            (used + adding).div_ceil(32) * 32
        )),
    )
}

const SERVER_TRUST_CERTIFICATE: Rule = rule!(
    "Link.ServerTrustCertificate",
    Blocker,
    Instance,
    "SQL Server's endpoint certificate on the managed instance is the one SQL Server uses",
    F14,
    "CERTENCODED of the endpoint's certificate against the instance's serverTrustCertificates publicBlob, by bytes, then by name",
    Instance(server_trust_certificate)
);
/// The managed instance authenticates SQL Server's endpoint with the server trust certificate
/// holding SQL Server's endpoint certificate (milink-facts §1.4 (b)). It is found by its bytes
/// (under any name); a trust certificate with the endpoint certificate's name but other bytes
/// (left from an earlier certificate) is what breaks the link. None at all is for milink to
/// upload while preparing.
fn server_trust_certificate(ctx: &Context<'_>) -> Outcome {
    let Some(name) = ctx
        .instance
        .endpoints
        .first()
        .and_then(|e| e.certificate.as_deref())
    else {
        return Outcome::Pass;
    };
    let Some(cert) = ctx.instance.certificate(name) else {
        return Outcome::Pass;
    };
    let Some(t) = ctx.target else {
        return Outcome::NotEvaluated(NO_TARGET.into());
    };
    let Some(trusted) = &t.server_trust_certificates else {
        return Outcome::NotEvaluated(
            "the instance's server trust certificates were not read".into(),
        );
    };
    let Some(der) = cert
        .encoded
        .as_deref()
        .and_then(crate::assess::facts::hex_bytes)
    else {
        return Outcome::NotEvaluated(format!("the bytes of certificate [{name}] were not read"));
    };
    if trusted
        .iter()
        .any(|c| crate::assess::facts::hex_eq(&c.public_blob, &der))
    {
        return Outcome::Pass;
    }
    let Some(same_name) = trusted.iter().find(|c| c.name.eq_ignore_ascii_case(name)) else {
        return Outcome::Pass;
    };
    Outcome::Fail(
        Evidence::new(format!(
            "server trust certificate {} on {} holds another key than SQL Server's endpoint \
             certificate [{name}]",
            same_name.name, t.name
        ))
        .with("endpoint certificate", name)
        .with("thumbprint on SQL Server", &cert.thumbprint),
        Fix::action(format!(
            "Delete the stale server trust certificate {} from the managed instance (after \
             checking no other link uses it) and upload the current public key (CERTENCODED) \
             of [{name}]; milink uploads it while preparing when none of that name exists.",
            same_name.name
        )),
    )
}
