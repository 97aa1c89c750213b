//! Checks on each requested database name, found or not.

use crate::assess::facts::is_system_database;
use crate::names::DatabaseName;

use super::{Check, Context, Evidence, F13, F18, Fix, Outcome, Rule, ScopeKind, Severity};

/// This group's part of the catalogue, in catalogue order.
pub(super) const RULES: &[Rule] = &[SYSTEM_DATABASE, DATABASE_MISSING];

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
