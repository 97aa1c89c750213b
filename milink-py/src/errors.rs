//! The Python exceptions, and the one place where a `milink_core::Error` becomes one of them.
//!
//! ```text
//! MilinkError                 every error milink raises (.transient, .caller_error, .remote)
//! ├── NameError               a name or value refused by its validated type
//! ├── InvalidArgumentError    an argument the core cannot use (facts, options, kinds,
//! │                           a connection string)
//! ├── NotReadyError           .report: the readiness report with the blockers
//! ├── GatherError             reading readiness facts failed
//! ├── JournalError            the journal could not be opened, read or written
//! └── SessionError            a link operation failed
//!     ├── RejectedError       refused in the link's state (.operation, .state, .input, .reason)
//!     ├── SpecError           the link spec is invalid
//!     ├── StepFailedError     a step failed (.code, .message, .retryable)
//!     ├── TimeoutError        the operation timeout passed (.operation, .state)
//!     ├── SplitBrainError     both sides report PRIMARY
//!     ├── StalledError        stopped short of the goal with nothing left to do
//!     └── LinkLockedError     another session drives the link (.link, .lock_file,
//!                             .holder_pid, .holder_journal)
//! ```

use milink_core::Error;
use milink_core::session::SessionError as CoreSessionError;
use pyo3::IntoPyObjectExt;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

use crate::report::PyReadinessReport;

create_exception!(
    milink,
    MilinkError,
    PyException,
    "The root of every error milink raises."
);
create_exception!(
    milink,
    NameError,
    MilinkError,
    "A name or value was refused by its validated type (the message names the rule)."
);
create_exception!(
    milink,
    InvalidArgumentError,
    MilinkError,
    "An argument milink cannot use: facts or options not in the expected shape, an unknown kind."
);
create_exception!(
    milink,
    NotReadyError,
    MilinkError,
    "The readiness report has blockers for what was asked; `.report` says which and how to fix them."
);
create_exception!(
    milink,
    GatherError,
    MilinkError,
    "Gathering readiness facts failed."
);
create_exception!(
    milink,
    JournalError,
    MilinkError,
    "A journal could not be opened, read or written, or holds another link already."
);
create_exception!(
    milink,
    SessionError,
    MilinkError,
    "A link operation failed."
);
create_exception!(
    milink,
    RejectedError,
    SessionError,
    "The link refused the command in its current state; nothing was changed."
);
create_exception!(milink, SpecError, SessionError, "The link spec is invalid.");
create_exception!(
    milink,
    StepFailedError,
    SessionError,
    "A step failed and the link is in Failed; fix the cause, then resume (retryable) or retry."
);
create_exception!(
    milink,
    TimeoutError,
    SessionError,
    "The operation did not finish within its timeout; the journal is intact: call resume."
);
create_exception!(
    milink,
    SplitBrainError,
    SessionError,
    "Both SQL Server and the managed instance report PRIMARY: call repair_split_brain."
);
create_exception!(
    milink,
    StalledError,
    SessionError,
    "The operation stopped short of its goal with nothing left to do."
);
create_exception!(
    milink,
    LinkLockedError,
    SessionError,
    "Another session, in this process or another, drives the link: stop it (or let it finish), then resume the link from its journal."
);

/// Registers every exception class on the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("MilinkError", py.get_type::<MilinkError>())?;
    m.add("NameError", py.get_type::<NameError>())?;
    m.add(
        "InvalidArgumentError",
        py.get_type::<InvalidArgumentError>(),
    )?;
    m.add("NotReadyError", py.get_type::<NotReadyError>())?;
    m.add("GatherError", py.get_type::<GatherError>())?;
    m.add("JournalError", py.get_type::<JournalError>())?;
    m.add("SessionError", py.get_type::<SessionError>())?;
    m.add("RejectedError", py.get_type::<RejectedError>())?;
    m.add("SpecError", py.get_type::<SpecError>())?;
    m.add("StepFailedError", py.get_type::<StepFailedError>())?;
    m.add("TimeoutError", py.get_type::<TimeoutError>())?;
    m.add("SplitBrainError", py.get_type::<SplitBrainError>())?;
    m.add("StalledError", py.get_type::<StalledError>())?;
    m.add("LinkLockedError", py.get_type::<LinkLockedError>())?;
    Ok(())
}

/// An invalid argument, as the core would report it.
pub(crate) fn invalid(message: impl Into<String>) -> PyErr {
    py_err(Error::InvalidArgument(message.into()))
}

/// The Python exception for a core error: its class by family, its message, and attributes
/// (`transient`, `caller_error`, `remote` on every one; more per class).
pub(crate) fn py_err(error: impl Into<Error>) -> PyErr {
    let error = error.into();
    Python::attach(|py| {
        let flags = (
            error.is_transient(),
            error.is_caller_error(),
            error.is_remote(),
        );
        let message = error.to_string();
        let (err, attrs) = classify(py, error, message);
        let value = err.value(py);
        let set = || -> PyResult<()> {
            value.setattr("transient", flags.0)?;
            value.setattr("caller_error", flags.1)?;
            value.setattr("remote", flags.2)?;
            for (name, attr) in attrs {
                value.setattr(name, attr)?;
            }
            Ok(())
        };
        match set() {
            Ok(()) => err,
            Err(e) => e,
        }
    })
}

type Attrs = Vec<(&'static str, Py<PyAny>)>;

fn attr<'py, T: IntoPyObject<'py>>(
    py: Python<'py>,
    name: &'static str,
    value: T,
) -> PyResult<(&'static str, Py<PyAny>)> {
    Ok((name, value.into_py_any(py)?))
}

fn classify(py: Python<'_>, error: Error, message: String) -> (PyErr, Attrs) {
    let built: PyResult<(PyErr, Attrs)> = (|| {
        Ok(match error {
            Error::Name(_) => (NameError::new_err(message), Vec::new()),
            Error::InvalidArgument(_) | Error::Redirect(_) => {
                (InvalidArgumentError::new_err(message), Vec::new())
            }
            Error::NotReady(report) => {
                let report = Py::new(py, PyReadinessReport::from(*report))?;
                (
                    NotReadyError::new_err(message),
                    vec![("report", report.into_any())],
                )
            }
            Error::Gather(_) => (GatherError::new_err(message), Vec::new()),
            Error::Journal(_) => (JournalError::new_err(message), Vec::new()),
            Error::Session(e) => session_error(py, e, message)?,
            _ => (MilinkError::new_err(message), Vec::new()),
        })
    })();
    match built {
        Ok(built) => built,
        Err(e) => (e, Vec::new()),
    }
}

fn session_error(
    py: Python<'_>,
    error: CoreSessionError,
    message: String,
) -> PyResult<(PyErr, Attrs)> {
    Ok(match error {
        CoreSessionError::Rejected { operation, source } => (
            RejectedError::new_err(message),
            vec![
                attr(py, "operation", operation)?,
                attr(py, "state", source.state)?,
                attr(py, "input", source.input)?,
                attr(py, "reason", source.reason.to_string())?,
            ],
        ),
        CoreSessionError::Spec(_) => (SpecError::new_err(message), Vec::new()),
        CoreSessionError::StepFailed(e) => (
            StepFailedError::new_err(message),
            vec![
                attr(py, "code", e.code)?,
                attr(py, "message", e.message)?,
                attr(py, "retryable", e.retryable)?,
            ],
        ),
        CoreSessionError::Journal(_) | CoreSessionError::JournalNotEmpty { .. } => {
            (JournalError::new_err(message), Vec::new())
        }
        CoreSessionError::Timeout {
            operation,
            waited,
            state,
        } => (
            TimeoutError::new_err(message),
            vec![
                attr(py, "operation", operation)?,
                attr(py, "waited_s", waited.as_secs_f64())?,
                attr(py, "state", state)?,
            ],
        ),
        CoreSessionError::SplitBrain => (SplitBrainError::new_err(message), Vec::new()),
        CoreSessionError::LinkLocked {
            link,
            lock_file,
            holder,
        } => (
            LinkLockedError::new_err(message),
            vec![
                attr(py, "link", link.to_string())?,
                attr(py, "lock_file", lock_file.display().to_string())?,
                attr(py, "holder_pid", holder.pid)?,
                attr(
                    py,
                    "holder_journal",
                    holder.journal.map(|j| j.display().to_string()),
                )?,
            ],
        ),
        CoreSessionError::Stalled { operation, state } => (
            StalledError::new_err(message),
            vec![attr(py, "operation", operation)?, attr(py, "state", state)?],
        ),
        _ => (SessionError::new_err(message), Vec::new()),
    })
}
