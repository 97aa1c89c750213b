//! Running core futures from Python: blocking (GIL released, Ctrl-C honoured) and awaitable, on
//! one shared tokio runtime, with progress events delivered to Python between slices and at the end.
//!
//! Blocking calls poll the operation on the calling thread in short slices with the GIL
//! released, and check for signals between slices. On Ctrl-C (or any signal handler that
//! raises) the operation's future is dropped before the exception propagates: the session
//! journals every input before acting on it, so the journal stays resumable and the next
//! operation (or `resume()`) continues from it. Python callbacks the operation makes (the
//! redirect hook) run on the same thread with the GIL, so Ctrl-C during a callback raises
//! `KeyboardInterrupt` inside it; the callback adapter then [`abandon`]s the operation the
//! same way. The progress callback runs the same way, in place, each time the session has sent
//! events ([`EventPump::deliver_in_place`]), and between slices: a `KeyboardInterrupt` or
//! `SystemExit` it raises abandons the operation, or drops it between slices.
//!
//! [`Callbacks`] knows which threads are inside one of a session's callbacks, so that an
//! operation started there on the same session is refused at once instead of waiting for ever
//! for the operation that runs the callback.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::thread::ThreadId;
use std::time::Duration;

use milink_core::Error;
use milink_core::SessionEvent;
use milink_core::time::{Clock, Timestamp};
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use tokio::runtime::Runtime;
use tokio::sync::broadcast;

use crate::convert::to_py;
use crate::errors;

/// How long a blocking call waits before it looks for Ctrl-C and delivers progress.
const SLICE: Duration = Duration::from_millis(50);

/// Undelivered events kept per session; older ones are dropped (and counted) beyond this.
const MAX_PENDING: usize = 10_000;

/// The runtime every session runs on (pyo3-async-runtimes' own, so awaitables share it).
pub(crate) fn runtime() -> &'static Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

/// Locks `m`, going on with the data a panicking holder left behind.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Which threads are running one of a session's Python callbacks now, and which callback.
#[derive(Default)]
pub(crate) struct Callbacks {
    running: Mutex<Vec<(ThreadId, &'static str)>>,
}

impl Callbacks {
    /// Marks the current thread as running `which` (e.g. "redirect hook") until the guard drops.
    pub(crate) fn enter(&self, which: &'static str) -> InCallback<'_> {
        lock(&self.running).push((std::thread::current().id(), which));
        InCallback { callbacks: self }
    }

    /// The callback the current thread is running for this session, if any.
    pub(crate) fn running_here(&self) -> Option<&'static str> {
        let here = std::thread::current().id();
        lock(&self.running)
            .iter()
            .rev()
            .find(|(thread, _)| *thread == here)
            .map(|(_, which)| *which)
    }
}

/// The current thread runs a session's callback while this lives.
pub(crate) struct InCallback<'a> {
    callbacks: &'a Callbacks,
}

impl Drop for InCallback<'_> {
    fn drop(&mut self) {
        let here = std::thread::current().id();
        let mut running = lock(&self.callbacks.running);
        if let Some(at) = running.iter().rposition(|(thread, _)| *thread == here) {
            running.remove(at);
        }
    }
}

/// One queued item: an event with the time it was taken at, or a count of events missed.
#[derive(Clone)]
enum Queued {
    Event(SessionEvent, Timestamp),
    Missed(u64),
}

/// Which events the progress callback gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detail {
    /// States, progress (seeding, lag, the LSN gate), retries: not each step's start and finish.
    Phases,
    /// Every event.
    Steps,
}

impl Detail {
    /// `progress_detail` as Python gives it.
    pub(crate) fn parse(value: &str) -> PyResult<Detail> {
        match value {
            "phases" => Ok(Detail::Phases),
            "steps" => Ok(Detail::Steps),
            other => Err(crate::errors::invalid(format!(
                "progress_detail must be \"phases\" or \"steps\", not {other:?}"
            ))),
        }
    }

    fn wants(self, item: &Queued) -> bool {
        !matches!(
            (self, item),
            (
                Detail::Phases,
                Queued::Event(
                    SessionEvent::StepStarted { .. } | SessionEvent::StepFinished { .. },
                    _
                )
            )
        )
    }
}

/// The progress callback, which events it gets, and the clock events are stamped with.
pub(crate) struct Progress {
    /// `on_progress`.
    pub(crate) callback: Option<Py<PyAny>>,
    /// `progress_detail`.
    pub(crate) detail: Detail,
    /// The session's clock (virtual on the lab).
    pub(crate) clock: Arc<dyn Clock>,
}

impl Queued {
    fn count(&self) -> u64 {
        match self {
            Queued::Event(..) => 1,
            Queued::Missed(n) => *n,
        }
    }

    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self {
            Queued::Event(e, at) => {
                let event = to_py(py, e)?;
                if let Ok(dict) = event.cast::<pyo3::types::PyDict>() {
                    dict.set_item("at", at.as_millis())?;
                }
                Ok(event)
            }
            Queued::Missed(count) => {
                to_py(py, &serde_json::json!({ "Missed": { "count": count } }))
            }
        }
    }
}

/// Appends `item`; a full queue folds its two oldest items into one count of missed events.
fn push_bounded(queue: &mut VecDeque<Queued>, item: Queued) {
    if queue.len() >= MAX_PENDING {
        let first = queue.pop_front().map_or(0, |q| q.count());
        let second = queue.pop_front().map_or(0, |q| q.count());
        queue.push_front(Queued::Missed(first + second));
    }
    queue.push_back(item);
}

struct PumpState {
    events: broadcast::Receiver<SessionEvent>,
    /// For `events()`.
    pending: VecDeque<Queued>,
    /// For the `on_progress` callback.
    for_callback: VecDeque<Queued>,
}

/// A session's events on their way to Python: drained by `events()` and, when set, handed to
/// the `on_progress` callback. Events are pulled from the session's channel between slices of
/// a running operation, when it ends, and by `events()`; a backlog beyond the channel's
/// capacity shows up as `{"Missed": {"count": n}}`.
pub(crate) struct EventPump {
    state: Mutex<PumpState>,
    callback: Option<Py<PyAny>>,
    detail: Detail,
    clock: Arc<dyn Clock>,
    callbacks: Arc<Callbacks>,
}

impl EventPump {
    /// A pump reading `events`; `callbacks` is the session's record of running callbacks.
    pub(crate) fn new(
        events: broadcast::Receiver<SessionEvent>,
        progress: Progress,
        callbacks: Arc<Callbacks>,
    ) -> Arc<EventPump> {
        Arc::new(EventPump {
            state: Mutex::new(PumpState {
                events,
                pending: VecDeque::new(),
                for_callback: VecDeque::new(),
            }),
            callback: progress.callback,
            detail: progress.detail,
            clock: progress.clock,
            callbacks,
        })
    }

    /// Moves what the session sent into the queues.
    fn pull(&self) {
        let mut state = lock(&self.state);
        let now = self.clock.now();
        loop {
            let item = match state.events.try_recv() {
                Ok(event) => Queued::Event(event, now),
                Err(broadcast::error::TryRecvError::Lagged(n)) => Queued::Missed(n),
                Err(_) => break,
            };
            if self.callback.is_some() && self.detail.wants(&item) {
                push_bounded(&mut state.for_callback, item.clone());
            }
            push_bounded(&mut state.pending, item);
        }
    }

    /// Hands waiting events to the callback from inside the running operation, on its thread
    /// (the session calls this each time it has sent events: `Session::with_events_sent`), so
    /// that progress is seen while an operation runs even when it never waits (on the lab's
    /// virtual clock it runs in one poll). A `KeyboardInterrupt` or `SystemExit` raised by the
    /// callback [`abandon`]s the operation, as one raised in the redirect hook does.
    pub(crate) fn deliver_in_place(&self) {
        if self.callback.is_none() {
            // Taken now all the same, so `events()` gives each the time it was sent at.
            self.pull();
            return;
        }
        let delivered = tokio::task::block_in_place(|| Python::attach(|py| self.deliver(py)));
        if let Err(interrupt) = delivered {
            abandon(interrupt);
        }
    }

    /// The events not drained yet, as dicts.
    pub(crate) fn drain<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.pull();
        let items: Vec<Queued> = lock(&self.state).pending.drain(..).collect();
        items.iter().map(|i| i.to_py(py)).collect()
    }

    /// Hands waiting events to the callback, in order. A callback that raises an `Exception`
    /// does not stop the operation: its exception goes to `sys.unraisablehook`. One that raises
    /// `KeyboardInterrupt`, `SystemExit` or another `BaseException` interrupts it: the error is
    /// returned, the events not delivered yet stay queued (and in `events()`), and the caller
    /// drops the operation as for Ctrl-C between slices.
    pub(crate) fn deliver(&self, py: Python<'_>) -> PyResult<()> {
        self.pull();
        let Some(callback) = &self.callback else {
            return Ok(());
        };
        loop {
            let Some(item) = lock(&self.state).for_callback.pop_front() else {
                return Ok(());
            };
            let called = {
                let _running = self.callbacks.enter("progress callback");
                item.to_py(py)
                    .and_then(|event| callback.bind(py).call1((event,)))
            };
            match called {
                Ok(returned) => {
                    if let Some(e) = crate::args::not_awaited(py, "on_progress", &returned) {
                        e.write_unraisable(py, Some(callback.bind(py)));
                    }
                }
                Err(e) if e.is_instance_of::<PyException>(py) => {
                    e.write_unraisable(py, Some(callback.bind(py)));
                }
                Err(interrupt) => return Err(interrupt),
            }
        }
    }
}

/// The unwind payload that abandons a running operation from inside a Python callback: the
/// callback raised `KeyboardInterrupt` (or another `BaseException` that is not an `Exception`).
struct Abandon(PyErr);

/// Abandons the operation whose callback is running: unwinds to the nearest [`block_on`] or
/// [`awaitable`], which drops the operation's future (as Ctrl-C between slices does) and raises
/// `err`. Nothing is journaled: the interrupted step is still in flight, and `resume()`
/// re-issues it. Unwinding through the session is the same as dropping its future at that
/// point: the session holds no lock while a port or hook call runs.
pub(crate) fn abandon(err: PyErr) -> ! {
    std::panic::resume_unwind(Box::new(Abandon(err)))
}

/// A future that turns an [`abandon`] inside `inner` into `Err(err)`, and any other panic
/// into a `MilinkError` ([`errors::from_panic`]).
struct CatchAbandon<F> {
    inner: Option<Pin<Box<F>>>,
}

impl<F: Future> CatchAbandon<F> {
    fn new(inner: F) -> Self {
        CatchAbandon {
            inner: Some(Box::pin(inner)),
        }
    }
}

impl<F: Future> Future for CatchAbandon<F> {
    type Output = Result<F::Output, PyErr>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Pending;
        };
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(Poll::Ready(value)) => {
                self.inner = None;
                Poll::Ready(Ok(value))
            }
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => {
                // The inner future panicked mid-poll: it must never be polled again.
                self.inner = None;
                match payload.downcast::<Abandon>() {
                    Ok(abandoned) => Poll::Ready(Err(abandoned.0)),
                    Err(other) => Poll::Ready(Err(errors::from_panic(other.as_ref()))),
                }
            }
        }
    }
}

/// Runs `operation` to completion with the GIL released, delivering progress between slices.
///
/// Ctrl-C between slices, or a `KeyboardInterrupt` raised in a callback the operation runs
/// (the redirect hook and the progress callback run on this thread), drops the operation and
/// raises `KeyboardInterrupt`.
pub(crate) fn block_on<T, F>(py: Python<'_>, pump: Option<&EventPump>, operation: F) -> PyResult<T>
where
    F: Future<Output = Result<T, Error>> + Send,
    T: Send,
{
    let rt = runtime();
    let mut operation = CatchAbandon::new(operation);
    loop {
        let slice = py.detach(|| {
            rt.block_on(async { tokio::time::timeout(SLICE, &mut operation).await.ok() })
        });
        if let Some(pump) = pump
            && let Err(interrupted) = pump.deliver(py)
        {
            // Ctrl-C (or SystemExit) in the progress callback: as between slices.
            drop(operation);
            return Err(interrupted);
        }
        match slice {
            Some(Ok(result)) => return result.map_err(errors::py_err),
            Some(Err(abandoned)) => return Err(abandoned),
            None => {
                if let Err(interrupted) = py.check_signals() {
                    // Stop after the last journaled input; resume() continues from there.
                    drop(operation);
                    return Err(interrupted);
                }
            }
        }
    }
}

/// `operation` as a Python awaitable on the shared runtime, delivering progress while it runs;
/// `finish` turns its result into the awaitable's value or exception. Cancelling the awaitable
/// drops the operation, as Ctrl-C does for a blocking call.
pub(crate) fn awaitable<'py, T, F, C>(
    py: Python<'py>,
    pump: Arc<EventPump>,
    operation: F,
    finish: C,
) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = Result<T, Error>> + Send + 'static,
    T: Send + 'static,
    C: FnOnce(Python<'_>, Result<T, Error>) -> PyResult<Py<PyAny>> + Send + 'static,
{
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        let mut operation = CatchAbandon::new(operation);
        let mut tick = tokio::time::interval(SLICE);
        let result = loop {
            tokio::select! {
                result = &mut operation => break result,
                _ = tick.tick() => match pump.callback {
                    Some(_) => {
                        if let Err(interrupted) = Python::attach(|py| pump.deliver(py)) {
                            break Err(interrupted);
                        }
                    }
                    None => pump.pull(),
                },
            }
        };
        drop(operation);
        Python::attach(|py| {
            let result = result?;
            pump.deliver(py)?;
            finish(py, result)
        })
    })
}

/// Panics inside a blocking call (`where_="operation"`) or inside a call that runs without the
/// GIL (`where_="detached"`): the check that a bug reaches Python as a `MilinkError`.
#[pyfunction(name = "_panic")]
pub(crate) fn panic_for_tests(py: Python<'_>, where_: &str) -> PyResult<()> {
    match where_ {
        "operation" => block_on(py, None, async {
            if true {
                panic!("a panic inside an operation");
            }
            Ok(())
        }),
        _ => py
            .detach(|| errors::guarded(|| panic!("a panic without the GIL")))
            .map_err(|p| errors::from_panic(p.as_ref())),
    }
}

/// Waits `seconds` on the shared runtime the way every blocking call waits (GIL released,
/// Ctrl-C honoured between slices); the interrupt path's own check.
#[pyfunction(name = "_sleep")]
pub(crate) fn sleep_interruptibly(
    py: Python<'_>,
    #[pyo3(from_py_with = crate::args::seconds)] seconds: f64,
) -> PyResult<()> {
    let wait = Duration::try_from_secs_f64(seconds)
        .map_err(|e| errors::invalid(format!("seconds: {e}")))?;
    block_on(py, None, async move {
        tokio::time::sleep(wait).await;
        Ok(())
    })
}
