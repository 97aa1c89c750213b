//! `LinkSession`: one link, driven; Python holds the core's `dyn LinkSession`.
//!
//! Every operation has a blocking form (GIL released, Ctrl-C stops it with the journal
//! resumable) and an `_async` twin returning an awaitable; both run on the one shared runtime
//! ([`crate::runtime`]).

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use milink_core::assess::report::esc as html;
use milink_core::journal::TornTail;
use milink_core::lifecycle::{
    AssessmentOutcome, Blocker, CutoverOptions, DataLossAcknowledgement, FailoverKind, LinkName,
    LinkSpec, Side,
};
use milink_core::names::DatabaseName;
use milink_core::ports::{Journal, ManagedInstance, SourceServer};
use milink_core::redirect::{HookError, RedirectHook, RedirectOptions, RedirectTarget};
use milink_core::session::EventsSent;
use milink_core::{Error, LinkSession, Session, SessionError, SessionOptions};
use pyo3::IntoPyObjectExt;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::connect::{PyManagedInstance, PySqlServer};
use crate::convert::{from_py, to_py};
use crate::errors::{self, StepFailedError, invalid};
use crate::lab::PyLab;
use crate::report::PyReadinessReport;
use crate::runtime::{Callbacks, EventPump, abandon, awaitable, block_on, lock};

/// The step error code of a redirect hook that failed (the session's code for every hook).
pub(crate) const HOOK_CODE: &str = "hook";

/// Events a session keeps for a slow reader unless the options say otherwise.
const EVENT_CAPACITY: usize = 4096;

/// The session options from a dict in the serde shape of `SessionOptions` (defaults for what
/// it leaves out), with room for a few thousand undelivered events.
pub(crate) fn session_options(options: Option<&Bound<'_, PyAny>>) -> PyResult<SessionOptions> {
    match options {
        None => Ok(SessionOptions {
            event_capacity: EVENT_CAPACITY,
            ..SessionOptions::default()
        }),
        Some(o) => {
            let capacity_given = o.get_item("event_capacity").is_ok();
            let mut options: SessionOptions = from_py("session options", o)?;
            if !capacity_given {
                options.event_capacity = EVENT_CAPACITY;
            }
            // Checked here, before any journal file is created.
            options.validate().map_err(|e| invalid(e.to_string()))?;
            Ok(options)
        }
    }
}

/// A Python callable as the session's redirect hook: called with the GIL and the dict of
/// [`hook_argument`], on the thread that runs the operation (the caller's thread for blocking
/// calls), to completion before the call returns.
///
/// It is called in place rather than on another thread on purpose: the session bounds each
/// call by its call timeout on the session's timer, and a lab's virtual clock would time out
/// at once any call that waits for real time to pass.
///
/// An `Exception` fails the step (retryable) with a message naming only the exception's type:
/// its text may hold a connection string or a password, and the message is journaled. The
/// exception itself is kept in memory and becomes the `__cause__` of the `StepFailedError`.
/// `KeyboardInterrupt` (Ctrl-C during the hook) or another `BaseException` abandons the
/// operation instead, leaving the step in flight for `resume()` ([`crate::runtime::abandon`]).
///
/// A hook that returns an awaitable fails the step the same way (its work was not done: milink
/// awaits nothing); async functions are refused before the session is created
/// ([`crate::args::callback`]).
struct PythonRedirectHook {
    link: LinkName,
    callable: Py<PyAny>,
    failure: Arc<Mutex<Option<PyErr>>>,
    callbacks: Arc<Callbacks>,
}

#[async_trait]
impl RedirectHook for PythonRedirectHook {
    async fn redirect(&self, target: &RedirectTarget) -> Result<(), HookError> {
        let called = tokio::task::block_in_place(|| {
            Python::attach(|py| {
                let argument = hook_argument(py, &self.link, target)?;
                let returned = {
                    let _running = self.callbacks.enter("redirect hook");
                    self.callable.bind(py).call1((argument,))?
                };
                Ok(crate::args::not_awaited(py, "redirect_hook", &returned))
            })
        });
        let e: PyErr = match called {
            Ok(None) => {
                // A stale failure must not become the cause of a later one.
                lock(&self.failure).take();
                return Ok(());
            }
            Ok(Some(not_done)) => {
                // milink's own message, which holds no secret: it may be journaled as it is.
                let message = Python::attach(|py| not_done.value(py).to_string());
                *lock(&self.failure) = Some(not_done);
                return Err(HookError::new(format!(
                    "{message}; the workload was not redirected"
                )));
            }
            Err(e) => e,
        };
        let (interrupt, kind) = Python::attach(|py| {
            let kind = e
                .get_type(py)
                .name()
                .and_then(|n| n.extract::<String>())
                .unwrap_or_else(|_| "an exception".to_owned());
            (!e.is_instance_of::<PyException>(py), kind)
        });
        if interrupt {
            abandon(e);
        }
        *lock(&self.failure) = Some(e);
        Err(HookError::new(format!(
            "the redirect hook raised {kind} (its message is not recorded: it may hold a secret)"
        )))
    }
}

/// What the Python redirect hook is called with: `{"link", "redirect_id", "primary", "host",
/// "port" (int or None), "connection_string", "notes"}`. The hook is called at least once per
/// redirect; `redirect_id` is the same for every call of one redirect.
///
/// `connection_string` is the real text ([`milink_core::redirect::ConnectionString::expose`]),
/// password included when the string has one: the hook is the application's own code and must
/// hand the string to the workload, as [`milink_core::redirect::FileRedirectHook`] writes it to
/// its file. The dict is built in place for the call and is never logged or journaled.
fn hook_argument<'py>(
    py: Python<'py>,
    link: &LinkName,
    target: &RedirectTarget,
) -> PyResult<Bound<'py, PyDict>> {
    let argument = PyDict::new(py);
    argument.set_item("link", link.to_string())?;
    argument.set_item("redirect_id", &target.redirect_id)?;
    argument.set_item("primary", to_py(py, &target.side)?)?;
    argument.set_item("host", &target.host)?;
    argument.set_item("port", target.port.map(|p| p.get()))?;
    argument.set_item("connection_string", target.connection_string.expose())?;
    argument.set_item("notes", &target.notes)?;
    Ok(argument)
}

/// One link, driven.
#[pyclass(module = "milink", name = "LinkSession", frozen)]
pub(crate) struct PyLinkSession {
    session: Mutex<Option<Arc<dyn LinkSession>>>,
    link: String,
    databases: Vec<DatabaseName>,
    pump: Arc<EventPump>,
    hook_failure: Arc<Mutex<Option<PyErr>>>,
    /// The threads running this session's redirect hook or progress callback now.
    callbacks: Arc<Callbacks>,
    /// The torn last record `resume_from(..., repair=True)` dropped.
    repaired: Option<TornTail>,
}

/// Operations that only read and never wait for a running one: they may be called from the
/// session's own callbacks.
const READS: [&str; 2] = ["health", "watch"];

impl PyLinkSession {
    /// Wraps a core session, with the Python redirect hook, the options its targets are
    /// computed from, the progress callback, and the torn record a repair dropped.
    pub(crate) fn wrap<S, M, J>(
        session: Session<S, M, J>,
        redirect_hook: Option<Py<PyAny>>,
        redirect_options: RedirectOptions,
        progress: crate::runtime::Progress,
        repaired: Option<TornTail>,
    ) -> Self
    where
        S: SourceServer + 'static,
        M: ManagedInstance + 'static,
        J: Journal + 'static,
    {
        let hook_failure = Arc::new(Mutex::new(None));
        let callbacks = Arc::new(Callbacks::default());
        let link = session.link().clone();
        let hook = redirect_hook.map(|callable| -> Arc<dyn RedirectHook> {
            Arc::new(PythonRedirectHook {
                link,
                callable,
                failure: Arc::clone(&hook_failure),
                callbacks: Arc::clone(&callbacks),
            })
        });
        let session = session.with_redirect(hook, redirect_options);
        let databases = session.machine().spec().databases.clone();
        let pump = EventPump::new(session.subscribe(), progress, Arc::clone(&callbacks));
        // Events are taken as they are sent, so each carries the time it was sent at (and the
        // callback, if any, sees it while the operation runs).
        let session = session.with_events_sent(Some({
            let pump = Arc::clone(&pump);
            Arc::new(move || pump.deliver_in_place()) as EventsSent
        }));
        PyLinkSession {
            link: session.link().to_string(),
            session: Mutex::new(Some(Arc::new(session))),
            databases,
            pump,
            hook_failure,
            callbacks,
            repaired,
        }
    }

    /// The session, unless `operation` was called from one of its own callbacks and would wait
    /// for the operation running that callback: operations run one at a time, so it would wait
    /// for ever. Reads ([`READS`]) do not wait and are allowed.
    fn session_for(&self, py: Python<'_>, operation: &str) -> PyResult<Arc<dyn LinkSession>> {
        if !READS.contains(&operation)
            && let Some(callback) = self.callbacks.running_here()
        {
            return Err(errors::session_refused(
                py,
                format!(
                    "{operation}() was called from the {callback} of the session it would run on \
                     (link {}): operations run one at a time, and this one would wait for ever for \
                     the operation that is running the {callback}; return from the {callback} \
                     instead, and call {operation}() after that operation returns (the \
                     {callback} may read status() and health())",
                    self.link
                ),
            ));
        }
        self.session()
    }

    fn session(&self) -> PyResult<Arc<dyn LinkSession>> {
        lock(&self.session).clone().ok_or_else(|| {
            errors::SessionError::new_err(format!(
                "the session of link {} is closed; open it again with LinkSession.resume_from",
                self.link
            ))
        })
    }

    /// Runs `operation` (named `name`) blocking.
    fn blocking<T, F, Fut>(&self, py: Python<'_>, name: &str, operation: F) -> PyResult<T>
    where
        F: FnOnce(Arc<dyn LinkSession>) -> Fut + Send,
        Fut: Future<Output = Result<T, SessionError>> + Send,
        T: Send,
    {
        let session = self.session_for(py, name)?;
        let result = block_on(py, Some(&self.pump), async move {
            operation(session).await.map_err(Error::from)
        });
        result.map_err(|e| explain(py, &self.hook_failure, e))
    }

    /// Runs `operation` (named `name`) as an awaitable returning None.
    fn awaitable<'py, F, Fut>(
        &self,
        py: Python<'py>,
        name: &str,
        operation: F,
    ) -> PyResult<Bound<'py, PyAny>>
    where
        F: FnOnce(Arc<dyn LinkSession>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), SessionError>> + Send + 'static,
    {
        let session = self.session_for(py, name)?;
        let failure = Arc::clone(&self.hook_failure);
        awaitable(
            py,
            Arc::clone(&self.pump),
            async move { operation(session).await.map_err(Error::from) },
            move |py: Python<'_>, result: Result<(), Error>| match result {
                Ok(()) => Ok(py.None()),
                Err(e) => Err(explain(py, &failure, errors::py_err(e))),
            },
        )
    }

    fn outcome(&self, assessment: &Bound<'_, PyAny>) -> PyResult<AssessmentOutcome> {
        if let Ok(report) = assessment.cast::<PyReadinessReport>() {
            return Ok(report.get().inner.outcome_for(&self.databases));
        }
        let lines: Vec<String> = assessment.extract().map_err(|_| {
            invalid("record_assessment takes a ReadinessReport or a list of blocker strings")
        })?;
        Ok(AssessmentOutcome {
            blockers: lines.iter().map(|l| Blocker::from_line(l)).collect(),
        })
    }
}

/// Attaches the redirect hook's own exception as the `__cause__` of the step failure it caused.
fn explain(py: Python<'_>, hook_failure: &Mutex<Option<PyErr>>, err: PyErr) -> PyErr {
    if err.is_instance_of::<StepFailedError>(py) {
        let code = err
            .value(py)
            .getattr("code")
            .and_then(|c| c.extract::<String>());
        if code.is_ok_and(|c| c == HOOK_CODE)
            && let Some(cause) = lock(hook_failure).take()
        {
            err.set_cause(py, Some(cause));
        }
    }
    err
}

fn failover_kind(kind: &str, acknowledge_data_loss: Option<String>) -> PyResult<FailoverKind> {
    match (kind, acknowledge_data_loss) {
        ("planned", None) => Ok(FailoverKind::Planned),
        ("planned", Some(_)) => Err(invalid(
            "acknowledge_data_loss applies to a forced failover only; a planned failover loses no data",
        )),
        ("forced", ack) => Ok(FailoverKind::Forced(
            ack.map(|link| DataLossAcknowledgement { link }),
        )),
        (other, _) => Err(invalid(format!(
            "failover kind {other:?}: use \"planned\" or \"forced\""
        ))),
    }
}

fn side(keep: &Bound<'_, PyAny>) -> PyResult<Side> {
    from_py("keep (\"SqlServer\" or \"ManagedInstance\")", keep)
}

#[pymethods]
impl PyLinkSession {
    /// A new link on a real pair: `source` a `SqlServer`, `target` a `ManagedInstance`, `spec`
    /// the link spec (a dict in the shape of `Lab.spec`), journaled to `journal`. The keyword
    /// arguments are those of `Lab.session`. Before anything is written, the spec must name
    /// the pair given (its `source.server` and `target.instance`) and SQL Server's build must
    /// be able to host the link; otherwise InvalidArgumentError and no journal. The journal
    /// records the pair (SQL Server's name and the instance's resource id), so it is never
    /// resumed on another pair (WrongWorldError).
    #[staticmethod]
    #[pyo3(signature = (
        source,
        target,
        spec,
        journal,
        *,
        redirect_hook = None,
        on_progress = None,
        options = None,
        connection_string = None,
        public_endpoint = false,
        lock_dir = None,
        if_exists = "error",
        progress_detail = "phases",
    ))]
    #[allow(clippy::too_many_arguments)] // the Python signature's keyword arguments
    fn create(
        py: Python<'_>,
        source: &Bound<'_, PySqlServer>,
        target: &Bound<'_, PyManagedInstance>,
        spec: &Bound<'_, PyAny>,
        journal: PathBuf,
        redirect_hook: Option<Py<PyAny>>,
        on_progress: Option<Py<PyAny>>,
        options: Option<&Bound<'_, PyAny>>,
        connection_string: Option<&str>,
        public_endpoint: bool,
        lock_dir: Option<PathBuf>,
        if_exists: &str,
        progress_detail: &str,
    ) -> PyResult<Self> {
        let how = crate::lab::Open::from_if_exists(if_exists, &journal)?;
        let spec: LinkSpec = from_py("link spec", spec)?;
        let (source, target) = (&source.get().side, &target.get().side);
        let timer = crate::connect::pair_timer(source, target)?;
        if matches!(how, crate::lab::Open::Create) {
            crate::connect::check_spec_against_pair(&spec, source, target)?;
            let side = Arc::clone(source);
            block_on(py, None, async move {
                Ok(crate::connect::check_can_host_link(&side).await)
            })??;
        }
        let pair = crate::lab::Pair {
            source: Arc::new(crate::connect::SourcePort(Arc::clone(source))),
            instance: Arc::new(crate::connect::InstancePort(Arc::clone(target))),
            timer,
            world: crate::connect::pair_world(source, target),
            spec: Some(spec),
        };
        let redirect = crate::lab::Redirect {
            hook: redirect_hook,
            connection_string,
            public_endpoint,
        };
        crate::lab::open(
            py,
            pair,
            crate::lab::OpenArgs {
                journal,
                how,
                redirect,
                on_progress,
                progress_detail,
                options,
                lock_dir,
            },
        )
    }

    /// Reopens the link journaled in `journal` after a crash, a Ctrl-C or a close: on `source`
    /// when it is a `Lab`, else on the pair `source` (a `SqlServer`) and `target` (a
    /// `ManagedInstance`). Replays the journal, then `resume()` (or any operation) continues
    /// from where it stopped. The keyword arguments are those of `Lab.session`; the redirect
    /// settings and `lock_dir` are not journaled, so give them again. Raises LinkLockedError
    /// while another session drives the link, and WrongWorldError (changing nothing) when the
    /// journal belongs to another lab or pair.
    ///
    /// A journal whose last record was torn by a crash raises TornJournalError; with
    /// `repair=True` that record (an input never acted on) is dropped first, and `repaired`
    /// says what was dropped. A file that is not a journal raises NotAJournalError, with or
    /// without `repair`, and is left as it is.
    #[staticmethod]
    #[pyo3(signature = (
        journal,
        source,
        target = None,
        *,
        redirect_hook = None,
        on_progress = None,
        options = None,
        connection_string = None,
        public_endpoint = false,
        lock_dir = None,
        repair = false,
        progress_detail = "phases",
    ))]
    #[allow(clippy::too_many_arguments)] // the Python signature's keyword arguments
    fn resume_from(
        py: Python<'_>,
        journal: PathBuf,
        source: &Bound<'_, PyAny>,
        target: Option<&Bound<'_, PyAny>>,
        redirect_hook: Option<Py<PyAny>>,
        on_progress: Option<Py<PyAny>>,
        options: Option<&Bound<'_, PyAny>>,
        connection_string: Option<&str>,
        public_endpoint: bool,
        lock_dir: Option<PathBuf>,
        repair: bool,
        progress_detail: &str,
    ) -> PyResult<Self> {
        let redirect = crate::lab::Redirect {
            hook: redirect_hook,
            connection_string,
            public_endpoint,
        };
        let args = crate::lab::OpenArgs {
            journal,
            how: crate::lab::Open::Resume { repair },
            redirect,
            on_progress,
            progress_detail,
            options,
            lock_dir,
        };
        if let Ok(lab) = source.cast::<PyLab>() {
            if target.is_some_and(|t| !t.is_none()) {
                return Err(invalid(
                    "resume_from(journal, lab) takes no target: the lab is both sides",
                ));
            }
            return crate::lab::open(py, crate::lab::lab_pair(lab.get()), args);
        }
        let (Ok(sql), Some(Ok(instance))) = (
            source.cast::<PySqlServer>(),
            target.map(|t| t.cast::<PyManagedInstance>()),
        ) else {
            return Err(errors::argument_type(
                py,
                "resume_from takes (journal, lab) or (journal, source, target) with a SqlServer \
                 and a ManagedInstance"
                    .to_owned(),
            ));
        };
        let (source, target) = (&sql.get().side, &instance.get().side);
        let pair = crate::lab::Pair {
            source: Arc::new(crate::connect::SourcePort(Arc::clone(source))),
            instance: Arc::new(crate::connect::InstancePort(Arc::clone(target))),
            timer: crate::connect::pair_timer(source, target)?,
            world: crate::connect::pair_world(source, target),
            spec: None,
        };
        crate::lab::open(py, pair, args)
    }

    /// The torn last record `resume_from(..., repair=True)` dropped from the journal, as
    /// `{"line": n, "bytes": n}`, or None when nothing was dropped.
    #[getter]
    fn repaired<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(torn) = self.repaired else {
            return Ok(None);
        };
        let dropped = PyDict::new(py);
        dropped.set_item("line", torn.line)?;
        dropped.set_item("bytes", torn.bytes)?;
        Ok(Some(dropped))
    }

    /// The link's name.
    #[getter]
    fn link(&self) -> &str {
        &self.link
    }

    /// The databases the link carries.
    #[getter]
    fn databases(&self) -> Vec<String> {
        self.databases.iter().map(|d| d.to_string()).collect()
    }

    /// Records the readiness verdict (Draft → Assessed): a `ReadinessReport` (its blockers for
    /// this link's databases count) or a list of blocker strings. Blockers raise RejectedError.
    fn record_assessment(&self, py: Python<'_>, assessment: &Bound<'_, PyAny>) -> PyResult<()> {
        let outcome = self.outcome(assessment)?;
        self.blocking(py, "record_assessment", move |s| async move {
            s.record_assessment(outcome).await
        })
    }

    /// Awaitable `record_assessment`.
    fn record_assessment_async<'py>(
        &self,
        py: Python<'py>,
        assessment: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let outcome = self.outcome(assessment)?;
        self.awaitable(py, "record_assessment", move |s| async move {
            s.record_assessment(outcome).await
        })
    }

    /// Creates the link; returns once it replicates.
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        self.blocking(py, "start", move |s| async move { s.start().await })
    }

    /// Awaitable `start`.
    fn start_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.awaitable(py, "start", move |s| async move { s.start().await })
    }

    /// Fails over: `kind="planned"` (no data loss) or `"forced"`, which needs
    /// `acknowledge_data_loss` set to the link's name.
    #[pyo3(signature = (kind = "planned", acknowledge_data_loss = None))]
    fn failover(
        &self,
        py: Python<'_>,
        kind: &str,
        acknowledge_data_loss: Option<String>,
    ) -> PyResult<()> {
        let kind = failover_kind(kind, acknowledge_data_loss)?;
        self.blocking(
            py,
            "failover",
            move |s| async move { s.failover(kind).await },
        )
    }

    /// Awaitable `failover`.
    #[pyo3(signature = (kind = "planned", acknowledge_data_loss = None))]
    fn failover_async<'py>(
        &self,
        py: Python<'py>,
        kind: &str,
        acknowledge_data_loss: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let kind = failover_kind(kind, acknowledge_data_loss)?;
        self.awaitable(
            py,
            "failover",
            move |s| async move { s.failover(kind).await },
        )
    }

    /// Fails back to SQL Server (two-way links).
    fn failback(&self, py: Python<'_>) -> PyResult<()> {
        self.blocking(py, "failback", move |s| async move { s.failback().await })
    }

    /// Awaitable `failback`.
    fn failback_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.awaitable(py, "failback", move |s| async move { s.failback().await })
    }

    /// Migrates and removes the link; returns once completed.
    #[pyo3(signature = (drop_availability_group = false))]
    fn cutover(&self, py: Python<'_>, drop_availability_group: bool) -> PyResult<()> {
        let options = CutoverOptions {
            drop_availability_group,
        };
        self.blocking(
            py,
            "cutover",
            move |s| async move { s.cutover(options).await },
        )
    }

    /// Awaitable `cutover`.
    #[pyo3(signature = (drop_availability_group = false))]
    fn cutover_async<'py>(
        &self,
        py: Python<'py>,
        drop_availability_group: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let options = CutoverOptions {
            drop_availability_group,
        };
        self.awaitable(
            py,
            "cutover",
            move |s| async move { s.cutover(options).await },
        )
    }

    /// Repairs a split brain, keeping `keep` (`"SqlServer"` or `"ManagedInstance"`) as primary.
    fn repair_split_brain(&self, py: Python<'_>, keep: &Bound<'_, PyAny>) -> PyResult<()> {
        let keep = side(keep)?;
        self.blocking(py, "repair_split_brain", move |s| async move {
            s.repair_split_brain(keep).await
        })
    }

    /// Awaitable `repair_split_brain`.
    fn repair_split_brain_async<'py>(
        &self,
        py: Python<'py>,
        keep: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let keep = side(keep)?;
        self.awaitable(py, "repair_split_brain", move |s| async move {
            s.repair_split_brain(keep).await
        })
    }

    /// Prepares the next role change while the application still writes: both sides switch
    /// to synchronous commit and the link stays replicating. The failover, failback or cutover
    /// that follows skips the switch, so once the application stops only the catch-up gate
    /// stands before the role change.
    fn prepare(&self, py: Python<'_>) -> PyResult<()> {
        self.blocking(py, "prepare", move |s| async move { s.prepare().await })
    }

    /// Awaitable `prepare`.
    fn prepare_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.awaitable(py, "prepare", move |s| async move { s.prepare().await })
    }

    /// Undoes link creation (or abandons a catch-up); returns once done.
    fn cancel(&self, py: Python<'_>) -> PyResult<()> {
        self.blocking(py, "cancel", move |s| async move { s.cancel().await })
    }

    /// Awaitable `cancel`.
    fn cancel_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.awaitable(py, "cancel", move |s| async move { s.cancel().await })
    }

    /// Continues the last operation after an interruption or a retryable failure; with nothing
    /// to continue, reads both sides (SplitBrainError if both are PRIMARY).
    fn resume(&self, py: Python<'_>) -> PyResult<()> {
        self.blocking(py, "resume", move |s| async move { s.resume().await })
    }

    /// Awaitable `resume`.
    fn resume_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.awaitable(py, "resume", move |s| async move { s.resume().await })
    }

    /// Re-issues a failed step after its cause was fixed, then continues the last operation.
    fn retry(&self, py: Python<'_>) -> PyResult<()> {
        self.blocking(py, "retry", move |s| async move { s.retry().await })
    }

    /// Awaitable `retry`.
    fn retry_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.awaitable(py, "retry", move |s| async move { s.retry().await })
    }

    /// Where the link is, as a dict (`state`, `detail`, `phase`, `terminal`, `in_flight`,
    /// `deadline`, `last_error`, `operation`, `journal_path`, `journal_records`, `link`).
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let status = self.session()?.status();
        let mut value =
            serde_json::to_value(&status).map_err(|e| crate::errors::invalid(e.to_string()))?;
        if let Some(phase) = value.get_mut("phase") {
            *phase = uniform_phase(phase.take());
        }
        crate::convert::to_py_lsn_ints(py, &value)
    }

    /// Both sides read now, as a dict (a side that cannot be read is named in `unreachable`),
    /// or None.
    fn health<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let health = self.blocking(py, "health", move |s| async move { s.health().await })?;
        crate::convert::to_py_lsn_ints(py, &health)
    }

    /// Watches an idle link for `seconds`: reads both sides every probe interval; raises
    /// SplitBrainError as soon as both are PRIMARY.
    fn watch(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = crate::args::seconds)] seconds: f64,
    ) -> PyResult<()> {
        let duration = watch_duration(seconds)?;
        self.blocking(py, "watch", move |s| async move { s.watch(duration).await })
    }

    /// Awaitable `watch`.
    fn watch_async<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = crate::args::seconds)] seconds: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let duration = watch_duration(seconds)?;
        self.awaitable(py, "watch", move |s| async move { s.watch(duration).await })
    }

    /// The link's readings since the session opened, oldest first, one record per database
    /// per reading: `{"at", "state", "database", "source_lsn", "instance_lsn", "lag_seconds",
    /// "seeding_percent"}` (`at` in milliseconds since the Unix epoch, virtual on the lab; LSNs
    /// as ints). Bounded (the oldest are dropped); a resumed session starts a new history.
    fn history<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let rows = history_rows(&self.session()?.history());
        crate::convert::to_py_lsn_ints(py, &rows)
    }

    /// `history()` as a `pandas.DataFrame` (one row per database per reading); raises
    /// ImportError when pandas is not installed.
    fn history_dataframe<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let pandas = py.import("pandas").map_err(|e| {
            pyo3::exceptions::PyImportError::new_err(format!(
                "history_dataframe needs pandas, which is not installed (pip install pandas): {e}"
            ))
        })?;
        let rows = self.history(py)?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("columns", HISTORY_COLUMNS.to_vec())?;
        // Built as objects, then typed: a column of ints with a None would otherwise become
        // float64, and an LSN (~7.6e16) loses its last digits there.
        kwargs.set_item("dtype", "object")?;
        let frame = pandas.getattr("DataFrame")?.call((rows,), Some(&kwargs))?;
        let types = PyDict::new(py);
        for column in [
            "at",
            "source_lsn",
            "instance_lsn",
            "lag_seconds",
            "seeding_percent",
        ] {
            types.set_item(column, "Int64")?;
        }
        frame.call_method1("astype", (types,))
    }

    /// Who is still connected to the link's databases on the current primary (sessions and
    /// open transactions), before a planned failover: `{"quiet", "open_transactions",
    /// "sessions": [...], "summary"}`.
    fn check_workload_quiet<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let activity = self.blocking(py, "check_workload_quiet", move |s| async move {
            s.check_workload_quiet().await
        })?;
        to_py(py, &activity_value(&activity))
    }

    /// Awaitable `check_workload_quiet`.
    fn check_workload_quiet_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let session = self.session_for(py, "check_workload_quiet")?;
        let failure = Arc::clone(&self.hook_failure);
        awaitable(
            py,
            Arc::clone(&self.pump),
            async move { session.check_workload_quiet().await.map_err(Error::from) },
            move |py: Python<'_>, result| match result {
                Ok(activity) => to_py(py, &activity_value(&activity))?.into_py_any(py),
                Err(e) => Err(explain(py, &failure, errors::py_err(e))),
            },
        )
    }

    /// Awaitable `health`.
    fn health_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let session = self.session_for(py, "health")?;
        let failure = Arc::clone(&self.hook_failure);
        awaitable(
            py,
            Arc::clone(&self.pump),
            async move { session.health().await.map_err(Error::from) },
            move |py: Python<'_>, result| match result {
                Ok(health) => crate::convert::to_py_lsn_ints(py, &health)?.into_py_any(py),
                Err(e) => Err(explain(py, &failure, errors::py_err(e))),
            },
        )
    }

    /// The events since the last call, oldest first, as dicts in the serde shape of the core's
    /// `SessionEvent` (e.g. `{"StateChanged": {"from": "Draft", "to": "Assessed"}}`);
    /// `{"Missed": {"count": n}}` stands for events that were not kept.
    fn events<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.pump.drain(py)
    }

    /// Releases the session, its journal and the link's lock (another session may then resume
    /// the journal, or drive the link).
    /// Operations on a closed session raise SessionError.
    fn close(&self) {
        lock(&self.session).take();
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        self.close();
        false
    }

    /// The status as a notebook shows it: the link, its state and primary, what is wrong if
    /// anything, the journal, and the latest reading of each database.
    fn _repr_html_(&self) -> String {
        let Some(session) = lock(&self.session).as_ref().map(Arc::clone) else {
            return format!(
                "<div class=\"milink-session\"><b>LinkSession {}</b>: closed</div>",
                html(&self.link)
            );
        };
        let st = session.status();
        let mut rows = vec![
            ("state", st.detail.clone()),
            ("primary", format!("{:?}", st.primary)),
        ];
        if let Some(e) = &st.last_error {
            rows.push(("last error", format!("{}: {}", e.code, e.message)));
        }
        if st.data_loss_possible || !st.data_loss.is_empty() {
            rows.push((
                "data loss",
                "possible: see status()[\"data_loss\"]".to_owned(),
            ));
        }
        if let Some(path) = &st.journal_path {
            rows.push((
                "journal",
                format!("{} ({} records)", path.display(), st.journal_records),
            ));
        }
        let mut out = format!(
            "<div class=\"milink-session\"><b>LinkSession {}</b><table>",
            html(&self.link)
        );
        for (k, v) in rows {
            out.push_str(&format!("<tr><th>{}</th><td>{}</td></tr>", k, html(&v)));
        }
        out.push_str("</table>");
        if let Some(last) = session.history().last() {
            out.push_str(
                "<table><tr><th>database</th><th>SQL Server LSN</th><th>instance LSN</th>\
                 <th>lag (s)</th><th>seeding</th></tr>",
            );
            let opt = |v: Option<String>| v.unwrap_or_else(|| "–".to_owned());
            for d in &last.databases {
                out.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    html(d.database.as_str()),
                    opt(d.source_lsn.map(|l| l.to_string())),
                    opt(d.instance_lsn.map(|l| l.to_string())),
                    opt(d.lag_seconds.map(|l| l.to_string())),
                    opt(d.seeding_percent.map(|p| format!("{p}%"))),
                ));
            }
            out.push_str("</table>");
        }
        out.push_str("</div>");
        out
    }

    fn __repr__(&self) -> String {
        match lock(&self.session).as_ref() {
            Some(s) => format!("<LinkSession {}: {}>", self.link, s.status().state),
            None => format!("<LinkSession {}: closed>", self.link),
        }
    }
}

/// `seconds` as a duration, refusing what is not a finite, non-negative number.
fn watch_duration(seconds: f64) -> PyResult<std::time::Duration> {
    std::time::Duration::try_from_secs_f64(seconds).map_err(|_| {
        errors::invalid(format!(
            "watch needs a finite, non-negative number of seconds, not {seconds}"
        ))
    })
}

/// A phase in one shape whatever its variant: `{"name": "Draft"}`, `{"name": "FailedOver",
/// "primary": …, "data_loss_possible": …}` (serde gives a bare string for a unit variant and a
/// one-key object for the others).
pub(crate) fn uniform_phase(phase: serde_json::Value) -> serde_json::Value {
    use serde_json::{Map, Value};
    match phase {
        Value::String(name) => {
            let mut m = Map::new();
            m.insert("name".into(), Value::String(name));
            Value::Object(m)
        }
        Value::Object(outer) if outer.len() == 1 => {
            let Some((name, fields)) = outer.into_iter().next() else {
                return Value::Object(Map::new());
            };
            let mut m = Map::new();
            m.insert("name".into(), Value::String(name));
            match fields {
                Value::Object(fields) => m.extend(fields),
                Value::Null => {}
                other => {
                    m.insert("value".into(), other);
                }
            }
            Value::Object(m)
        }
        other => other,
    }
}

/// A workload activity reading as Python sees it.
fn activity_value(activity: &milink_core::redirect::WorkloadActivity) -> serde_json::Value {
    serde_json::json!({
        "quiet": activity.is_quiet(),
        "open_transactions": activity.open_transactions(),
        "sessions": activity.sessions,
        "summary": activity.summary(),
    })
}

const HISTORY_COLUMNS: [&str; 7] = [
    "at",
    "state",
    "database",
    "source_lsn",
    "instance_lsn",
    "lag_seconds",
    "seeding_percent",
];

/// A session's readings as flat records, one per database per reading.
fn history_rows(readings: &[milink_core::session::Reading]) -> Vec<serde_json::Value> {
    readings
        .iter()
        .flat_map(|r| {
            r.databases.iter().map(move |d| {
                serde_json::json!({
                    "at": r.at.as_millis(),
                    "state": r.state,
                    "database": d.database,
                    "source_lsn": d.source_lsn,
                    "instance_lsn": d.instance_lsn,
                    "lag_seconds": d.lag_seconds,
                    "seeding_percent": d.seeding_percent,
                })
            })
        })
        .collect()
}
