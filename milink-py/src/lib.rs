//! Python bindings for milink (module `milink`): glue only.
#![forbid(unsafe_code)]

use pyo3::prelude::*;

/// The `milink._milink` extension module.
#[pymodule]
fn _milink(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", milink_core::VERSION)?;
    Ok(())
}
