//! Workloads shared by the milink benchmarks (see `benches/` and `BENCHMARKS.md`).
//!
//! Each workload is built here rather than inside a bench target so that the crate's tests can
//! check it: a benchmark that timed rejected inputs, an empty report or a scenario that stopped
//! half way would measure nothing useful while still printing a number.
//!
//! - [`scenario`]: a link spec and recorded input sequences for the pure machine;
//! - [`fixtures`]: a synthetic many-database assessment built from the Tailspin lab;
//! - [`sql`]: hostile names and the `SourceOp`s of a whole link creation;
//! - [`fleet`]: many simulated links, each driven by its own session, on one runtime.

pub mod fixtures;
pub mod fleet;
pub mod scenario;
pub mod sql;

/// Why a workload could not be built. Only the benches' own setup can fail this way; a failure
/// means the library changed under the benchmark and the workload needs updating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadError(pub String);

impl std::fmt::Display for WorkloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WorkloadError {}

/// Turns any displayable error into a [`WorkloadError`] with context.
pub(crate) fn ctx<T, E: std::fmt::Display>(
    what: &str,
    result: Result<T, E>,
) -> Result<T, WorkloadError> {
    result.map_err(|e| WorkloadError(format!("{what}: {e}")))
}
