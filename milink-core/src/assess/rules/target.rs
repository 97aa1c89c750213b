//! Instance checks against the target managed instance: policy, room and storage.

use crate::assess::facts::{DatabaseFacts, TargetFacts};
use crate::assess::sku::TierLimits;

use super::{
    Check, Context, Evidence, F13, F18, F19, F53, Fix, NO_TARGET, Outcome, Rule, ScopeKind,
    Severity, gb,
};

/// This group's part of the catalogue, in catalogue order.
pub(super) const RULES: &[Rule] = &[
    COLLATION,
    UPDATE_POLICY,
    ONE_WAY,
    FAILOVER_GROUP,
    DATABASE_COUNT_LIMIT,
    STORAGE_FITS,
];

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
