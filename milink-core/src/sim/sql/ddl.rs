//! The DDL of the link, read by a small tokenizer: no SQL parser knows SQL Server's master key,
//! certificate, endpoint and availability group statements, so [`token`] reads T-SQL's tokens,
//! [`parse`] its control flow (`IF [NOT] EXISTS (…)`, `BEGIN … END`, `TRY … CATCH`, `DECLARE`,
//! `EXEC`, `THROW`, `USE`, `SET`) and the DDL forms ([`ast::Ddl`]) by SQL Server's grammar, and
//! [`exec`] runs the statements against the world: each DDL statement through the world
//! function ([`apply`]) that the in-process [`World::exec_source`](super::super::World) calls too,
//! each guard and read-only statement through an [`exec::Evaluator`] (the query engine, or a
//! fake in tests).
//!
//! What the parser does not know is error 102, "Incorrect syntax near '`<token>`'.", as SQL Server
//! answers; a statement it reads but whose option or object is wrong gets SQL Server's number
//! for that (15151, 15232, 7862, 19509, 2812, 195, 241 …).

pub mod apply;
pub mod ast;
mod classify;
pub mod exec;
pub mod parse;
mod parse_ddl;
pub mod token;
mod values;

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_exec;

pub use ast::{Ddl, Script, Statement};
pub use exec::{Evaluator, Executor, GuardFn, classify, sql_error};
pub use parse::parse_script;
pub use token::{SYNTAX_ERROR, Token, TokenKind, syntax_error, tokenize};
