//! The SQL Server side of the link: what milink runs there. Today the pure part, each
//! [`SourceOp`](crate::lifecycle::SourceOp) rendered into its T-SQL batches with the
//! [`crate::tsql`] builders ([`render`]); the TDS adapter that sends them belongs here too.
//! With the feature `tds`, `connection` opens and drives the connection to SQL Server.

#[cfg(feature = "tds")]
pub mod connection;
pub mod render;

pub use render::{RenderContext, RenderError};
