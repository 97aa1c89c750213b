//! Core values to and from Python data, through their serde shape: Python's `json` module on
//! one side, `serde_json` on the other. No conversion code per type.
//!
//! Data that does not fit is refused with the path of the field at fault (`serde_path_to_error`)
//! and, in a list of named items such as database facts, the item's name; never with a position
//! in a JSON text the caller never saw.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_path_to_error::{Path, Segment};

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

/// `value` as [`to_py`] gives it, with every LSN (a `*_lsn` key holding decimal digits, which
/// JSON carries as a string because it may exceed 2^53) as a Python int.
pub(crate) fn to_py_lsn_ints<'py, T: Serialize + ?Sized>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let out = to_py(py, value)?;
    lsns_as_ints(&out)?;
    Ok(out)
}

fn lsns_as_ints(value: &Bound<'_, PyAny>) -> PyResult<()> {
    if let Ok(dict) = value.cast::<pyo3::types::PyDict>() {
        let items: Vec<(Bound<'_, PyAny>, Bound<'_, PyAny>)> = dict.iter().collect();
        for (key, item) in items {
            let is_lsn = key
                .extract::<String>()
                .is_ok_and(|k| k == "lsn" || k.ends_with("_lsn"));
            let digits = item
                .extract::<String>()
                .ok()
                .and_then(|s| s.parse::<u128>().ok());
            match (is_lsn, digits) {
                (true, Some(n)) => dict.set_item(key, n)?,
                _ => lsns_as_ints(&item)?,
            }
        }
    } else if let Ok(list) = value.cast::<pyo3::types::PyList>() {
        for item in list.iter() {
            lsns_as_ints(&item)?;
        }
    }
    Ok(())
}

/// Reads `value` (Python data in the serde shape of `T`); `what` names it in the error.
pub(crate) fn from_py<T: DeserializeOwned>(what: &str, value: &Bound<'_, PyAny>) -> PyResult<T> {
    read(what, None, value)
}

/// Reads a list of items named by their `"name"` key, each an `item` (e.g. "database"): an
/// error names the item at fault as well as the field.
pub(crate) fn from_py_named<T: DeserializeOwned>(
    what: &str,
    item: &str,
    value: &Bound<'_, PyAny>,
) -> PyResult<T> {
    read(what, Some(item), value)
}

fn read<T: DeserializeOwned>(
    what: &str,
    item: Option<&str>,
    value: &Bound<'_, PyAny>,
) -> PyResult<T> {
    let py = value.py();
    let kwargs = PyDict::new(py);
    kwargs.set_item("allow_nan", false)?;
    let text: String = py
        .import("json")?
        .call_method("dumps", (value,), Some(&kwargs))
        .map_err(|e| {
            invalid(format!(
                "{what}: not plain data (dicts, lists, strings, finite numbers): {e}"
            ))
        })?
        .extract()?;
    let data: Value =
        serde_json::from_str(&text).map_err(|e| invalid(format!("{what}: not plain data: {e}")))?;
    serde_path_to_error::deserialize(&data).map_err(|e| {
        let path = e.path();
        let mut at = String::new();
        if path.iter().next().is_some() {
            at = format!(" at {path}");
            if let Some((item, name)) = item.zip(item_name(&data, path)) {
                at.push_str(&format!(" ({item} {name})"));
            }
        }
        invalid(format!("{what}{at}: {}", e.inner()))
    })
}

/// The `"name"` of the list item the path starts in, if it has one.
fn item_name(data: &Value, path: &Path) -> Option<String> {
    match path.iter().next()? {
        Segment::Seq { index } => data.get(*index)?.get("name")?.as_str().map(str::to_owned),
        _ => None,
    }
}
