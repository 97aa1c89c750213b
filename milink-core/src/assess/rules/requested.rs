//! Checks on each requested database name, found or not.

use crate::assess::facts::is_system_database;
use crate::names::DatabaseName;

use super::{Check, Context, Evidence, F13, F18, Fix, Outcome, Rule, ScopeKind, Severity};

/// This group's part of the catalogue, in catalogue order.
pub(super) const RULES: &[Rule] = &[SYSTEM_DATABASE, DATABASE_MISSING, DUPLICATE_FACTS];

const SYSTEM_DATABASE: Rule = rule!(
    "Link.SystemDatabase",
    Info,
    Database,
    "System databases are not linked",
    F18,
    "the requested names",
    Requested(system_database)
);
fn system_database(_: &Context<'_>, name: &DatabaseName) -> Outcome {
    if !is_system_database(name.as_str()) {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "{name} is a system database; the link replicates user databases only"
        )),
        Fix::action(
            "Script server-level objects (logins, Agent jobs, linked servers) from master and \
             msdb and apply them on the managed instance.",
        ),
    )
}

const DATABASE_MISSING: Rule = rule!(
    "Link.DatabaseMissing",
    Blocker,
    Database,
    "The database exists",
    F13,
    "the requested names against sys.databases",
    Requested(database_missing)
);
fn database_missing(ctx: &Context<'_>, name: &DatabaseName) -> Outcome {
    if is_system_database(name.as_str()) || ctx.index.get(name.as_str()).is_some() {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "{} has no database named {name}",
            ctx.instance.server_name
        )),
        Fix::action("Check the database name."),
    )
}

const DUPLICATE_FACTS: Rule = rule!(
    "Link.DuplicateFacts",
    Blocker,
    Database,
    "The facts describe the database once",
    F13,
    "the requested names against the gathered databases",
    Requested(duplicate_facts)
);
/// Facts naming one database twice (case-insensitively, as SQL Server compares names) come
/// from somewhere other than one reading of `sys.databases`: which of the two is right is not
/// known, so the database is not ready whichever comes first.
fn duplicate_facts(ctx: &Context<'_>, name: &DatabaseName) -> Outcome {
    let n = ctx.index.count(name.as_str());
    if n < 2 {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "the facts of {} describe {n} databases named {name}; one reading of sys.databases \
             lists each name once",
            ctx.instance.server_name
        )),
        Fix::action(
            "Gather the facts again from the server (milink.gather), or remove the extra \
             entries, so that each database appears once.",
        ),
    )
}
