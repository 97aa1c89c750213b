//! Sessions and transactions: `sys.dm_exec_sessions`, `sys.dm_tran_session_transactions`,
//! `sys.dm_tran_database_transactions`, `sys.dm_tran_active_transactions`.
//!
//! The client sessions are [`World::client_sessions`] over every database of the side; each of
//! the world's open transactions on the side is one transaction of the session that shows it.
//! System sessions (`is_user_process = 0`: background tasks, and one availability group worker
//! per database of a link, whose current database is that database) and the caller's own
//! session are there too, as on SQL Server.

use crate::lifecycle::Side;
use crate::names::DatabaseName;
use crate::sim::World;
use crate::sim::tds::{ResultSet, SessionInfo, SqlType, Value};
use crate::time::Timestamp;

use super::server::database_id;
use super::{SYSNAME, TableBuilder, opt_s, s};

/// The first transaction id.
const FIRST_TRANSACTION_ID: i64 = 1_000_000;

/// The first session id of the availability group workers.
const FIRST_WORKER_SESSION: i16 = 20;

fn all_databases(world: &World, side: Side) -> Vec<DatabaseName> {
    match side {
        Side::SqlServer => world.source.databases.keys().cloned().collect(),
        Side::ManagedInstance => world.instance.databases.keys().cloned().collect(),
    }
}

/// The open transactions of each client session: (session id, database, transaction id,
/// begin time).
fn transactions(world: &World, side: Side) -> Vec<(u16, DatabaseName, i64, Timestamp)> {
    let activity = world.client_sessions(side, &all_databases(world, side));
    let mut out = Vec::new();
    let mut next = FIRST_TRANSACTION_ID;
    for c in &activity.sessions {
        for o in world
            .open_transactions
            .iter()
            .filter(|o| o.side == side && o.database == c.database)
        {
            out.push((c.session_id, c.database.clone(), next, o.started));
            next += 1;
        }
    }
    out
}

fn linked_databases(world: &World, side: Side) -> Vec<DatabaseName> {
    let mut dbs: Vec<DatabaseName> = world
        .replications
        .values()
        .flat_map(|r| r.databases.keys().cloned())
        .filter(|d| match side {
            Side::SqlServer => world.source.databases.contains_key(d),
            Side::ManagedInstance => world.instance.databases.contains_key(d),
        })
        .collect();
    dbs.sort();
    dbs.dedup();
    dbs
}

fn db_id(world: &World, side: Side, db: &str) -> Value {
    database_id(world, side, db)
        .and_then(|id| i16::try_from(id).ok())
        .map_or(Value::Null, Value::SmallInt)
}

/// `sys.dm_exec_sessions`.
pub fn exec_sessions(world: &World, side: Side, session: &SessionInfo) -> ResultSet {
    let mut t = TableBuilder::new(&[
        ("session_id", SqlType::SmallInt),
        ("login_name", SYSNAME),
        ("host_name", SYSNAME),
        ("program_name", SYSNAME),
        ("status", SqlType::NVarChar(Some(30))),
        ("is_user_process", SqlType::Bit),
        ("database_id", SqlType::SmallInt),
    ]);
    for id in 1..=4i16 {
        t.row(vec![
            Value::SmallInt(id),
            s("sa"),
            Value::Null,
            Value::Null,
            s("background"),
            Value::Bit(false),
            Value::SmallInt(1),
        ]);
    }
    for (db, id) in linked_databases(world, side)
        .into_iter()
        .zip(FIRST_WORKER_SESSION..)
    {
        t.row(vec![
            Value::SmallInt(id),
            s("sa"),
            Value::Null,
            Value::Null,
            s("background"),
            Value::Bit(false),
            db_id(world, side, db.as_str()),
        ]);
    }
    t.row(vec![
        Value::SmallInt(i16::try_from(session.spid).unwrap_or(i16::MAX)),
        s(session.user.clone()),
        Value::Null,
        opt_s(Some("milink")),
        s("running"),
        Value::Bit(true),
        db_id(world, side, &session.database),
    ]);
    let activity = world.client_sessions(side, &all_databases(world, side));
    for c in activity.sessions {
        if c.session_id == session.spid {
            continue;
        }
        t.row(vec![
            Value::SmallInt(i16::try_from(c.session_id).unwrap_or(i16::MAX)),
            s(c.login),
            opt_s(c.host),
            opt_s(c.program),
            s(c.status),
            Value::Bit(true),
            db_id(world, side, c.database.as_str()),
        ]);
    }
    t.build()
}

/// `sys.dm_tran_session_transactions`: `session_id`, `transaction_id`.
pub fn session_transactions(world: &World, side: Side) -> ResultSet {
    let mut t = TableBuilder::new(&[
        ("session_id", SqlType::Int),
        ("transaction_id", SqlType::BigInt),
        ("is_user_transaction", SqlType::Bit),
    ]);
    for (session, _, id, _) in transactions(world, side) {
        t.row(vec![
            Value::Int(i32::from(session)),
            Value::BigInt(id),
            Value::Bit(true),
        ]);
    }
    t.build()
}

/// `sys.dm_tran_database_transactions`: `transaction_id`, `database_id`.
pub fn database_transactions(world: &World, side: Side) -> ResultSet {
    let mut t = TableBuilder::new(&[
        ("transaction_id", SqlType::BigInt),
        ("database_id", SqlType::Int),
        ("database_transaction_begin_time", SqlType::DateTime),
    ]);
    for (_, db, id, begin) in transactions(world, side) {
        t.row(vec![
            Value::BigInt(id),
            database_id(world, side, db.as_str()).map_or(Value::Null, Value::Int),
            Value::DateTime(begin),
        ]);
    }
    t.build()
}

/// `sys.dm_tran_active_transactions`: `transaction_id`, `name`, `transaction_begin_time`.
pub fn active_transactions(world: &World, side: Side) -> ResultSet {
    let mut t = TableBuilder::new(&[
        ("transaction_id", SqlType::BigInt),
        ("name", SqlType::NVarChar(Some(32))),
        ("transaction_begin_time", SqlType::DateTime),
    ]);
    for (_, _, id, begin) in transactions(world, side) {
        t.row(vec![
            Value::BigInt(id),
            s("user_transaction"),
            Value::DateTime(begin),
        ]);
    }
    t.build()
}
