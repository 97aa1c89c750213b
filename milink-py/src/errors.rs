//! The Python exceptions, and the one place where a `milink_core::Error` becomes one of them.
//!
//! ```text
//! MilinkError                 every error milink raises (.transient, .caller_error, .remote)
//! ├── NameError               a name or value refused by its validated type
//! ├── InvalidArgumentError    an argument the core cannot use (facts, options, kinds,
//! │   │                       a connection string)
//! │   ├── ArgumentTypeError   an argument of the wrong type, e.g. a hook that is not callable
//! │   │                       (also a builtin TypeError)
//! │   └── ArgumentRangeError  an integer argument outside its range (also a builtin
//! │                           OverflowError)
//! ├── NotReadyError           .report: the readiness report with the blockers
//! ├── GatherError             reading readiness facts failed (names what could not be read)
//! ├── ConnectError            a server could not be reached, or refused the connection
//! │   └── AuthenticationError the login or the token was refused, or no credential could be
//! │                           built (a wrong password, an expired token)
//! ├── JournalError            the journal could not be opened, read or written
//! │   ├── TornJournalError    its last record is torn (.path, .line, .bytes): resume_from(...,
//! │   │                       repair=True) drops it
//! │   ├── NotAJournalError    the file is not a milink journal (.path): not one, not a regular
//! │   │                       file, or larger than any journal; never repaired
//! │   └── WrongWorldError     the journal drives another pair or lab (.journal_world,
//! │                           .given_world); nothing changed
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
use milink_core::journal::JournalError as CoreJournalError;
use milink_core::session::SessionError as CoreSessionError;
use pyo3::IntoPyObjectExt;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

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
    ConnectError,
    MilinkError,
    "A server could not be reached, or refused the connection (TLS, network); `.transient` says whether trying again may help."
);
create_exception!(
    milink,
    AuthenticationError,
    ConnectError,
    "The login or the token was refused (a wrong password, an expired or foreign token), or no credential could be built."
);
create_exception!(
    milink,
    JournalError,
    MilinkError,
    "A journal could not be opened, read or written, or holds another link already."
);
create_exception!(
    milink,
    TornJournalError,
    JournalError,
    "The journal's last record is torn, left by an interrupted write; the input it held was never acted on. `LinkSession.resume_from(journal, lab, repair=True)` drops it and resumes."
);
create_exception!(
    milink,
    NotAJournalError,
    JournalError,
    "The file is not a milink journal (its first line is not a journal record); it is left as it is and never repaired."
);
create_exception!(
    milink,
    WrongWorldError,
    JournalError,
    "The journal was created on another pair (or lab) than the one given; nothing changed."
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

/// The classes that derive from a milink error and a builtin one (`create_exception!` takes a
/// single base), made once with Python's `type`.
static ARGUMENT_TYPE_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static ARGUMENT_RANGE_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn two_based<'py>(
    py: Python<'py>,
    cell: &PyOnceLock<Py<PyType>>,
    name: &str,
    builtin: Bound<'py, PyType>,
    doc: &str,
) -> PyResult<Bound<'py, PyType>> {
    let made = cell.get_or_try_init(py, || -> PyResult<Py<PyType>> {
        let namespace = PyDict::new(py);
        namespace.set_item("__module__", "milink")?;
        namespace.set_item("__doc__", doc)?;
        let bases = PyTuple::new(py, [py.get_type::<InvalidArgumentError>(), builtin])?;
        let class = py
            .get_type::<PyType>()
            .call1((name, bases, namespace))?
            .cast_into::<PyType>()?;
        Ok(class.unbind())
    })?;
    Ok(made.bind(py).clone())
}

/// `ArgumentTypeError`: an `InvalidArgumentError` that is also a builtin `TypeError`.
fn argument_type_error(py: Python<'_>) -> PyResult<Bound<'_, PyType>> {
    two_based(
        py,
        &ARGUMENT_TYPE_ERROR,
        "ArgumentTypeError",
        py.get_type::<PyTypeError>(),
        "An argument of the wrong type, named in the message (a hook or callback that is not \
         callable, or is an async function; a string where an int is due). Also a TypeError.",
    )
}

/// `ArgumentRangeError`: an `InvalidArgumentError` that is also a builtin `OverflowError`.
fn argument_range_error(py: Python<'_>) -> PyResult<Bound<'_, PyType>> {
    two_based(
        py,
        &ARGUMENT_RANGE_ERROR,
        "ArgumentRangeError",
        py.get_type::<PyOverflowError>(),
        "An integer argument outside the range its type allows; the message names the argument \
         and the range. Also an OverflowError.",
    )
}

/// Registers every exception class on the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("MilinkError", py.get_type::<MilinkError>())?;
    m.add("NameError", py.get_type::<NameError>())?;
    m.add(
        "InvalidArgumentError",
        py.get_type::<InvalidArgumentError>(),
    )?;
    m.add("ArgumentTypeError", argument_type_error(py)?)?;
    m.add("ArgumentRangeError", argument_range_error(py)?)?;
    m.add("NotReadyError", py.get_type::<NotReadyError>())?;
    m.add("GatherError", py.get_type::<GatherError>())?;
    m.add("ConnectError", py.get_type::<ConnectError>())?;
    m.add("AuthenticationError", py.get_type::<AuthenticationError>())?;
    m.add("JournalError", py.get_type::<JournalError>())?;
    m.add("TornJournalError", py.get_type::<TornJournalError>())?;
    m.add("NotAJournalError", py.get_type::<NotAJournalError>())?;
    m.add("WrongWorldError", py.get_type::<WrongWorldError>())?;
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

/// `class(message)` with the flags of a caller error (not transient, not remote).
fn caller_error(class: PyResult<Bound<'_, PyType>>, message: String) -> PyErr {
    let made = class.and_then(|class| {
        let value = class.call1((message,))?;
        value.setattr("transient", false)?;
        value.setattr("caller_error", true)?;
        value.setattr("remote", false)?;
        Ok(PyErr::from_value(value))
    });
    made.unwrap_or_else(|e| e)
}

/// `ArgumentTypeError(message)`: an argument of the wrong type; the message names it.
pub(crate) fn argument_type(py: Python<'_>, message: String) -> PyErr {
    caller_error(argument_type_error(py), message)
}

/// `ArgumentRangeError(message)`: an integer argument out of range; the message names it.
pub(crate) fn argument_range(py: Python<'_>, message: String) -> PyErr {
    caller_error(argument_range_error(py), message)
}

/// `SessionError(message)` for a call the binding refuses before the session sees it (a caller
/// error: not transient, not remote).
pub(crate) fn session_refused(py: Python<'_>, message: String) -> PyErr {
    caller_error(Ok(py.get_type::<SessionError>()), message)
}

/// The Python exception for a core error: its class by family, its message, and attributes
/// (`transient`, `caller_error`, `remote` on every one; more per class).
/// A panic inside milink as a `MilinkError` (not transient, not the caller's, not remote) that
/// says it is a bug: `PanicException` derives from `BaseException`, which `except Exception`
/// does not catch. The operation stopped after its last journaled input, so `resume()` can
/// continue a session.
pub(crate) fn from_panic(payload: &(dyn std::any::Any + Send)) -> PyErr {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned());
    let err = MilinkError::new_err(format!(
        "internal error in milink (a bug: please report it): {what}; nothing after the last \
         journaled input was done, so a session can resume()"
    ));
    Python::attach(|py| {
        let value = err.value(py);
        let set = || -> PyResult<()> {
            value.setattr("transient", false)?;
            value.setattr("caller_error", false)?;
            value.setattr("remote", false)?;
            Ok(())
        };
        match set() {
            Ok(()) => err,
            Err(e) => e,
        }
    })
}

/// Runs `f` (usually inside `py.detach`), turning a panic into [`from_panic`]'s error.
pub(crate) fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, Box<dyn std::any::Any + Send>> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
}

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
            Error::Journal(e) => journal_error(py, e, message)?,
            Error::Session(e) => session_error(py, e, message)?,
            _ => (MilinkError::new_err(message), Vec::new()),
        })
    })();
    match built {
        Ok(built) => built,
        Err(e) => (e, Vec::new()),
    }
}

/// The Python spelling of the journal repair, which the core's message names in Rust.
pub(crate) const REPAIR: &str = "LinkSession.resume_from(journal, lab, repair=True) (on a real pair: resume_from(journal, source, target, repair=True))";

fn journal_error(
    py: Python<'_>,
    error: CoreJournalError,
    message: String,
) -> PyResult<(PyErr, Attrs)> {
    Ok(match error {
        CoreJournalError::TornTail { path, line, bytes } => (
            TornJournalError::new_err(format!(
                "journal {} ends with a torn record at line {line} ({bytes} bytes), left by an \
                 interrupted write (the input it held was never acted on); resume it with \
                 {REPAIR} to drop that record",
                path.display()
            )),
            vec![
                attr(py, "path", path.display().to_string())?,
                attr(py, "line", line)?,
                attr(py, "bytes", bytes)?,
            ],
        ),
        CoreJournalError::AlreadyExists { path } => (
            JournalError::new_err(format!(
                "journal {} already exists: pass if_exists=\"resume\" to Lab.session or \
                 LinkSession.create (or call LinkSession.resume_from(journal, lab) or \
                 resume_from(journal, source, target)) to continue that link, or choose another \
                 path for a new link",
                path.display()
            )),
            vec![attr(py, "path", path.display().to_string())?],
        ),
        CoreJournalError::NotAJournal { path, .. }
        | CoreJournalError::NotAFile { path, .. }
        | CoreJournalError::TooLarge { path, .. } => (
            NotAJournalError::new_err(message),
            vec![attr(py, "path", path.display().to_string())?],
        ),
        _ => (JournalError::new_err(message), Vec::new()),
    })
}

/// The core's Rust spellings (`Command::Failover(Forced)`, `DataLossAcknowledgement`) as a
/// Python caller writes them.
pub(crate) fn in_python_terms(message: &str) -> String {
    const TERMS: &[(&str, &str)] = &[
        ("Command::Failover(Forced)", "failover(kind=\"forced\")"),
        ("Command::Failover(Planned)", "failover()"),
        ("Command::RecordAssessment", "record_assessment()"),
        ("Command::RepairSplitBrain", "repair_split_brain()"),
        ("Command::Failback", "failback()"),
        ("Command::Cutover", "cutover()"),
        ("Command::Cancel", "cancel()"),
        ("Command::Retry", "retry()"),
        ("Command::Refresh", "health()"),
        ("Command::Start", "start()"),
        (
            "pass a DataLossAcknowledgement naming the link",
            "pass acknowledge_data_loss=\"<the link's name>\"",
        ),
        (
            "the data-loss acknowledgement names link",
            "acknowledge_data_loss names link",
        ),
    ];
    let mut out = message.to_owned();
    for (rust, python) in TERMS {
        out = out.replace(rust, python);
    }
    out
}

fn session_error(
    py: Python<'_>,
    error: CoreSessionError,
    message: String,
) -> PyResult<(PyErr, Attrs)> {
    Ok(match error {
        CoreSessionError::Rejected { operation, source } => (
            RejectedError::new_err(in_python_terms(&message)),
            vec![
                attr(py, "operation", operation)?,
                attr(py, "state", source.state)?,
                attr(py, "input", in_python_terms(&source.input))?,
                attr(py, "reason", in_python_terms(&source.reason.to_string()))?,
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
        CoreSessionError::Journal(e) => journal_error(py, e, message)?,
        CoreSessionError::JournalNotEmpty { .. } => (JournalError::new_err(message), Vec::new()),
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
        CoreSessionError::InvalidOption { option, .. } => (
            InvalidArgumentError::new_err(message),
            vec![attr(py, "option", option)?],
        ),
        CoreSessionError::WrongWorld { journal, given } => (
            WrongWorldError::new_err(message),
            vec![
                attr(py, "journal_world", journal)?,
                attr(py, "given_world", given)?,
            ],
        ),
        _ => (SessionError::new_err(message), Vec::new()),
    })
}
