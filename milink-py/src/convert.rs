//! Core values to and from Python data, through their serde shape as JSON text: Python's `json`
//! module on one side, `serde_json` on the other. No conversion code per type.

use pyo3::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::errors::invalid;

/// `value` as Python data (dicts, lists, strings, numbers, booleans, None), in its serde shape.
pub(crate) fn to_py<'py, T: Serialize + ?Sized>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value)
        .map_err(|e| invalid(format!("cannot represent the value as data: {e}")))?;
    py.import("json")?.call_method1("loads", (text,))
}

/// Reads `value` (Python data in the serde shape of `T`); `what` names it in the error.
pub(crate) fn from_py<T: DeserializeOwned>(what: &str, value: &Bound<'_, PyAny>) -> PyResult<T> {
    let text: String = value
        .py()
        .import("json")?
        .call_method1("dumps", (value,))
        .map_err(|e| {
            invalid(format!(
                "{what}: not plain data (dicts, lists, strings, numbers): {e}"
            ))
        })?
        .extract()?;
    serde_json::from_str(&text).map_err(|e| invalid(format!("{what}: {e}")))
}
