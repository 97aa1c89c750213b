//! Read-only T-SQL over the world's catalog views and DMVs (see the module docs of
//! [`super`]).
//!
//! A batch is parsed with `sqlparser`'s MsSql dialect and evaluated with real semantics over the
//! tables [`super::catalog`] builds (only the ones a statement names): joins (`JOIN`,
//! `LEFT JOIN`, `CROSS`/`OUTER APPLY`), `WHERE` with three-valued logic, `GROUP BY` with
//! `COUNT`/`MIN`/`MAX`/`SUM`, `UNION [ALL]`, CTEs, derived tables and `VALUES`, scalar and
//! `EXISTS`/`IN` subqueries (correlated too), `CASE`, `CAST`/`CONVERT`, `LIKE`, `BETWEEN`,
//! `DATEDIFF[_BIG]`, `ORDER BY` (NULLs first ascending) and `TOP (n)`. Strings compare
//! case-insensitively, ignoring trailing spaces (`SQL_Latin1_General_CP1_CI_AS`).
//!
//! Readiness probes that need temporary tables, table variables, `DBCC` or dynamic SQL are
//! answered with [`UNSUPPORTED`]; those over views the catalog does not have (`msdb.dbo.sysjobs`,
//! `sys.servers`, `sys.master_files`, …) with 208.
//!
//! Errors, as SQL Server numbers them:
//! - text `sqlparser` cannot parse: 102 (class 15) "Incorrect syntax near '…'.";
//! - a construct it parses that the simulator does not evaluate (other statements than
//!   `SELECT`/`WITH`/`SET`/`USE`, `HAVING`, `RIGHT`/`FULL JOIN`, `TOP … PERCENT`, window
//!   functions, …): [`UNSUPPORTED`] 40517 (class 16) "Keyword or statement option '…' is not
//!   supported in this version of SQL Server.";
//! - an unknown table or view: 208; an unknown column: 207 (4104 when its qualifier names no
//!   table, 209 when it is ambiguous); an unknown function: 195; a failed conversion: 245;
//!   a scalar subquery with more than one row: 512.

mod errors;
mod expr;
mod functions;
mod select;
mod values;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use sqlparser::ast::Statement;
use sqlparser::dialect::MsSqlDialect;
use sqlparser::parser::Parser;

use crate::lifecycle::Side;
use crate::sim::tds::{Column, ResultSet, SessionInfo, SqlError};

use super::super::World;
use super::catalog;

pub use values::{coerce, compare, convert, parse_type};

/// Incorrect syntax: what SQL Server answers to a batch it cannot parse.
pub const SYNTAX_ERROR: u32 = 102;

/// What the simulator answers to a statement it parses but does not evaluate: SQL Server's
/// "Keyword or statement option '…' is not supported in this version of SQL Server."
pub const UNSUPPORTED: u32 = 40517;

/// The statements of `sql`, parsed once: the probes the simulator answers in process come
/// again and again with the same text, and parsing is most of their cost. Parsing is a pure
/// function of the text, so the cache changes no answer. It holds at most
/// [`PARSE_CACHE_ENTRIES`] texts (cleared when full); a text that does not parse is not kept.
fn parsed(sql: &str) -> Result<Arc<Vec<Statement>>, SqlError> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Vec<Statement>>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(hit) = cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(sql)
    {
        return Ok(Arc::clone(hit));
    }
    let statements = Arc::new(
        Parser::parse_sql(&MsSqlDialect {}, sql)
            .map_err(|e| errors::syntax_error(&errors::near_of_parse_error(&e.to_string())))?,
    );
    let mut map = cache.lock().unwrap_or_else(PoisonError::into_inner);
    if map.len() >= PARSE_CACHE_ENTRIES {
        map.clear();
    }
    map.insert(sql.to_owned(), Arc::clone(&statements));
    Ok(statements)
}

/// How many batch texts [`parsed`] keeps.
const PARSE_CACHE_ENTRIES: usize = 512;

/// Runs a batch of read-only statements (`SELECT`, `WITH … SELECT`) against `world` as `side`
/// sees it, in the session `session`: one result set per statement, in order.
///
/// `SET` options (`SET NOCOUNT ON`) and `USE <database>` are accepted and give no result set
/// (`USE` of a database that does not exist is error 911). The first error ends the batch.
pub fn run_select(
    world: &World,
    side: Side,
    session: &SessionInfo,
    sql: &str,
) -> Result<Vec<ResultSet>, SqlError> {
    let statements = parsed(sql)?;
    let ctx = select::Ctx {
        world,
        side,
        session,
        ctes: Vec::new(),
    };
    let mut sets = Vec::new();
    for statement in statements.iter() {
        match statement {
            Statement::Query(q) => {
                let rel = select::eval_query(&ctx, q, None)?;
                let columns: Vec<Column> = rel
                    .cols
                    .iter()
                    .map(|c| Column::new(c.name.clone(), c.ty))
                    .collect();
                let rows = rel
                    .rows
                    .into_iter()
                    .map(|r| {
                        r.into_iter()
                            .zip(&columns)
                            .map(|(v, c)| values::coerce(v, &c.ty))
                            .collect()
                    })
                    .collect();
                sets.push(ResultSet { columns, rows });
            }
            Statement::Set(_) => {}
            Statement::Use(u) => {
                let name = u.to_string();
                let db = name
                    .split_whitespace()
                    .last()
                    .unwrap_or_default()
                    .trim_matches(['[', ']', ';']);
                if catalog::database_id(world, side, db).is_none() {
                    return Err(SqlError::new(
                        911,
                        16,
                        format!(
                            "Database '{db}' does not exist. Make sure that the name is entered \
                             correctly."
                        ),
                    ));
                }
            }
            other => {
                let text = other.to_string();
                let keyword = text.split_whitespace().next().unwrap_or_default();
                return Err(errors::unsupported(keyword));
            }
        }
    }
    Ok(sets)
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
