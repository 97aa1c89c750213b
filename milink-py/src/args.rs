//! Python arguments checked where they enter, with errors that name them: callbacks (callable,
//! not async), and integers within the range of their Rust type (pyo3's own conversion raises
//! a bare `OverflowError` that names neither the argument nor the range).

use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;

use crate::errors::{argument_range, argument_type};

/// The type name of `value`, for messages.
fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map_or_else(|_| "an object".to_owned(), |n| n.to_string())
}

/// Whether `callable` is an async function (or an object whose `__call__` is one): calling it
/// returns a coroutine (or an async generator) instead of doing its work.
fn is_async(callable: &Bound<'_, PyAny>) -> PyResult<bool> {
    let inspect = callable.py().import("inspect")?;
    let mut candidates = vec![callable.clone()];
    if let Ok(call) = callable.getattr("__call__") {
        candidates.push(call);
    }
    for candidate in candidates {
        for test in ["iscoroutinefunction", "isasyncgenfunction"] {
            if inspect.call_method1(test, (&candidate,))?.is_truthy()? {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// A callback argument (`name`, taking `takes`), checked when the session is created: None, or
/// a callable that is not an async function. milink calls its callbacks in place and to
/// completion and awaits nothing, so an async function would do nothing at all.
pub(crate) fn callback(
    py: Python<'_>,
    name: &str,
    takes: &str,
    value: Option<Py<PyAny>>,
) -> PyResult<Option<Py<PyAny>>> {
    let Some(value) = value else {
        return Ok(None);
    };
    let bound = value.bind(py);
    if !bound.is_callable() {
        return Err(argument_type(
            py,
            format!(
                "{name} must be a callable taking {takes} (or None), not {}",
                type_name(bound)
            ),
        ));
    }
    if is_async(bound)? {
        return Err(argument_type(
            py,
            format!(
                "{name} is an async function: milink calls it in place, to completion, and never \
                 awaits what it returns, so it would do nothing; pass a plain function (it may run \
                 a coroutine to completion itself, e.g. with asyncio.run(...) or \
                 asyncio.run_coroutine_threadsafe(..., loop).result())"
            ),
        ));
    }
    Ok(Some(value))
}

/// When a callback returned an awaitable (a coroutine from a function that hides an async one):
/// the error to report, after closing a coroutine so that it is not left unawaited. milink
/// never awaits it, so the callback's work was not done.
pub(crate) fn not_awaited(
    py: Python<'_>,
    name: &str,
    returned: &Bound<'_, PyAny>,
) -> Option<PyErr> {
    let inspect = py.import("inspect").ok()?;
    let awaitable = inspect
        .call_method1("isawaitable", (returned,))
        .and_then(|a| a.is_truthy())
        .unwrap_or(false);
    if !awaitable {
        return None;
    }
    let coroutine = inspect
        .call_method1("iscoroutine", (returned,))
        .and_then(|c| c.is_truthy())
        .unwrap_or(false);
    if coroutine {
        // Closing an unstarted coroutine runs none of it; it only silences "never awaited".
        let _ = returned.call_method0("close");
    }
    Some(argument_type(
        py,
        format!(
            "{name} returned {} instead of doing its work: milink calls it in place and never \
             awaits what it returns; make it a plain function that finishes before it returns",
            type_name(returned)
        ),
    ))
}

/// The error for an integer argument `value` that pyo3 could not convert (`error`): out of
/// `low..=high`, or not an integer.
fn int_error(name: &str, value: &Bound<'_, PyAny>, low: u64, high: u64, error: PyErr) -> PyErr {
    let py = value.py();
    if error.is_instance_of::<PyOverflowError>(py) {
        let shown = value
            .repr()
            .map_or_else(|_| "that value".to_owned(), |r| r.to_string());
        argument_range(
            py,
            format!("{name} must be an integer from {low} to {high}, not {shown}"),
        )
    } else if error.is_instance_of::<PyTypeError>(py) {
        argument_type(
            py,
            format!("{name} must be an integer, not {}", type_name(value)),
        )
    } else {
        error
    }
}

/// `seed`: any u64.
pub(crate) fn seed(value: &Bound<'_, PyAny>) -> PyResult<u64> {
    value
        .extract::<u64>()
        .map_err(|e| int_error("seed", value, 0, u64::MAX, e))
}

/// `port`: a u16 (0 itself is refused by `TcpPort`, with its own message).
pub(crate) fn port(value: &Bound<'_, PyAny>) -> PyResult<u16> {
    value
        .extract::<u16>()
        .map_err(|e| int_error("port", value, 0, u16::MAX.into(), e))
}

/// `session_timeout_s`: a u16.
pub(crate) fn session_timeout_s(value: &Bound<'_, PyAny>) -> PyResult<u16> {
    value
        .extract::<u16>()
        .map_err(|e| int_error("session_timeout_s", value, 0, u16::MAX.into(), e))
}

/// `seconds`: a float (an int too large for one is out of range).
pub(crate) fn seconds(value: &Bound<'_, PyAny>) -> PyResult<f64> {
    value.extract::<f64>().map_err(|e| {
        let py = value.py();
        if e.is_instance_of::<PyOverflowError>(py) {
            argument_range(
                py,
                "seconds must be a finite, non-negative number of seconds; that int is too \
                 large for one"
                    .to_owned(),
            )
        } else if e.is_instance_of::<PyTypeError>(py) {
            argument_type(
                py,
                format!("seconds must be a number, not {}", type_name(value)),
            )
        } else {
            e
        }
    })
}
