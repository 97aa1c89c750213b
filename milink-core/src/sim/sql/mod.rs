//! The simulated servers' T-SQL: what the TDS face ([`super::tds`]) hands over is parsed here and
//! answered from the one simulated [`World`](super::World).
//!
//! - [`query`]: read-only statements (`SELECT`, `WITH … SELECT`), parsed with `sqlparser`'s
//!   MsSql dialect and evaluated over the catalog views and DMVs that [`catalog`] builds from the
//!   world, so the rows that come over the wire are the rows the in-process simulator reports.
//! - [`ddl`]: the statements no SQL parser knows (master key, certificates, endpoints,
//!   availability groups and distributed availability groups), read by a small tokenizer, with
//!   their `IF [NOT] EXISTS (…)` guards evaluated by [`query`].
//! - [`readiness`]: the readiness probes the query engine cannot evaluate (temporary tables,
//!   cursors, `DBCC`, views the catalog lacks), answered from the world's facts.
//! - [`handler`]: the [`TdsHandler`](super::tds::TdsHandler) that splits a batch into its
//!   statements and answers each, as SQL Server would (error 102 for what it cannot parse).
//!
//! Nothing here recognizes a batch by comparing it with milink's own builders: a builder's
//! mistake shows as a syntax error or as a different effect on the world.

pub mod catalog;
pub mod ddl;
pub mod handler;
pub(crate) mod live;
pub mod query;
pub mod readiness;
