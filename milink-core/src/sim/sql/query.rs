//! Read-only T-SQL over the world's catalog views and DMVs (see the module docs of
//! [`super`]).

use crate::lifecycle::Side;

use super::super::World;
use super::super::tds::{ResultSet, SessionInfo, SqlError};

/// Incorrect syntax: what SQL Server answers to a batch it cannot parse.
pub const SYNTAX_ERROR: u32 = 102;

/// Runs a batch of read-only statements (`SELECT`, `WITH … SELECT`) against `world` as `side`
/// sees it, in the session `session`: one result set per statement, in order.
pub fn run_select(
    world: &World,
    side: Side,
    session: &SessionInfo,
    sql: &str,
) -> Result<Vec<ResultSet>, SqlError> {
    let _ = (world, side, session);
    Err(SqlError::new(
        SYNTAX_ERROR,
        15,
        format!(
            "Incorrect syntax near '{}'.",
            sql.chars().take(20).collect::<String>()
        ),
    ))
}

/// Whether the query `sql` (one `SELECT`, as in `IF EXISTS (SELECT …)`) returns at least one
/// row.
pub fn exists(
    world: &World,
    side: Side,
    session: &SessionInfo,
    sql: &str,
) -> Result<bool, SqlError> {
    run_select(world, side, session, sql).map(|sets| sets.iter().any(|s| !s.rows.is_empty()))
}
