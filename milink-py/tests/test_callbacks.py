"""The redirect hook and the progress callback as a careless caller passes them: async, not
callable, interrupted, or calling back into the session they serve."""

import asyncio
import pathlib
import sys
import threading
from typing import Any, Callable, Dict, List, Optional

import pytest

import milink


@pytest.fixture
def lab() -> milink.Lab:
    return milink.Lab.tailspin(7)


@pytest.fixture
def journal(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "DAG_ToyStore.journal"


def replicating(lab: milink.Lab, journal: pathlib.Path, **kwargs: Any) -> milink.LinkSession:
    session = lab.session(journal, **kwargs)
    session.record_assessment([])
    session.start()
    return session


def primary(session: milink.LinkSession) -> Optional[str]:
    phase = session.status()["phase"]
    return phase["primary"] if phase["name"] == "FailedOver" else None


def in_thread(call: Callable[[], Any], timeout: float = 30) -> List[Any]:
    """Runs ``call`` in a thread and fails the test if it has not returned after ``timeout``
    seconds (a hang); returns ``[result]`` or ``[exception]``."""
    outcome: List[Any] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            outcome.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"the call did not return within {timeout} s: it hangs")
    return outcome


class AsyncHook:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, target: Dict[str, Any]) -> None:
        self.calls += 1


async def async_hook(target: Dict[str, Any]) -> None:
    raise AssertionError("an async hook is never run")


@pytest.mark.parametrize("hook", [async_hook, AsyncHook()], ids=["async def", "async __call__"])
def test_an_async_redirect_hook_is_refused_when_the_session_is_created(
    lab: milink.Lab, journal: pathlib.Path, hook: Any
) -> None:
    with pytest.raises(milink.ArgumentTypeError, match="redirect_hook is an async function") as info:
        lab.session(journal, redirect_hook=hook)
    err = info.value
    assert isinstance(err, milink.InvalidArgumentError) and isinstance(err, TypeError)
    assert err.caller_error and not err.transient and not err.remote
    assert "asyncio.run" in str(err)
    assert not journal.exists()
    # The same for resume_from, and for an async progress callback.
    replicating(lab, journal).close()
    with pytest.raises(milink.ArgumentTypeError, match="redirect_hook"):
        milink.LinkSession.resume_from(journal, lab, redirect_hook=hook)
    with pytest.raises(milink.ArgumentTypeError, match="on_progress is an async function"):
        milink.LinkSession.resume_from(journal, lab, on_progress=hook)


def test_a_hook_that_returns_a_coroutine_fails_the_step_instead_of_counting_as_done(
    lab: milink.Lab, journal: pathlib.Path, recwarn: pytest.WarningsRecorder
) -> None:
    ran: List[str] = []

    async def redirect(target: Dict[str, Any]) -> None:
        ran.append(target["primary"])

    # A plain function that hides an async one cannot be told apart before it is called.
    session = replicating(lab, journal, redirect_hook=lambda target: redirect(target))
    with pytest.raises(milink.StepFailedError) as info:
        session.failover()
    err = info.value
    assert err.code == "hook" and err.retryable
    assert "coroutine" in str(err)
    assert isinstance(err.__cause__, milink.ArgumentTypeError)
    assert primary(session) is None and ran == []  # the workload was not told: not done
    assert not [w for w in recwarn if "never awaited" in str(w.message)]
    session.close()
    # A plain hook then does the redirect.
    targets: List[Dict[str, Any]] = []
    with milink.LinkSession.resume_from(journal, lab, redirect_hook=targets.append) as again:
        again.resume()
        assert primary(again) == "ManagedInstance"
    assert [t["primary"] for t in targets] == ["ManagedInstance"]


@pytest.mark.parametrize("argument", ["redirect_hook", "on_progress"])
@pytest.mark.parametrize("value", [42, "print", ["not", "callable"]])
def test_callbacks_that_are_not_callable_are_refused_when_the_session_is_created(
    lab: milink.Lab, journal: pathlib.Path, argument: str, value: Any
) -> None:
    with pytest.raises(milink.ArgumentTypeError, match=f"^{argument} must be a callable") as info:
        lab.session(journal, **{argument: value})
    assert isinstance(info.value, TypeError) and info.value.caller_error
    assert type(value).__name__ in str(info.value)
    assert list(journal.parent.iterdir()) == []  # neither journal nor lock file
    replicating(lab, journal).close()
    before = journal.read_bytes()
    with pytest.raises(milink.ArgumentTypeError, match=argument):
        milink.LinkSession.resume_from(journal, lab, **{argument: value})
    assert journal.read_bytes() == before


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_ctrl_c_in_the_progress_callback_stops_the_operation(
    lab: milink.Lab,
    journal: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    interrupt: Callable[[], BaseException],
) -> None:
    unraisable: List[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    seen: List[Dict[str, Any]] = []
    armed = False

    def on_progress(event: Dict[str, Any]) -> None:
        seen.append(event)
        if armed:
            raise interrupt()

    session = lab.session(journal, on_progress=on_progress)
    session.record_assessment([])
    armed = True
    with pytest.raises(interrupt):  # type: ignore[call-overload]
        session.start()
    armed = False
    assert unraisable == []
    # The operation stopped there, with the journal resumable.
    status = session.status()
    assert status["state"] != "Replicating", "start ran to the end despite the interrupt"
    assert status["last_error"] is None
    session.resume()
    assert session.status()["state"] == "Replicating"
    session.close()
    with milink.LinkSession.resume_from(journal, lab) as again:
        assert again.status()["state"] == "Replicating"


def test_ctrl_c_in_the_progress_callback_stops_an_awaited_operation(
    lab: milink.Lab, journal: pathlib.Path
) -> None:
    armed = False

    def on_progress(event: Dict[str, Any]) -> None:
        if armed:
            raise KeyboardInterrupt

    session = lab.session(journal, on_progress=on_progress)
    session.record_assessment([])
    armed = True

    async def start() -> None:
        await session.start_async()

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(start())
    armed = False
    assert session.status()["state"] != "Replicating"
    session.resume()
    assert session.status()["state"] == "Replicating"


OPERATIONS: Dict[str, Callable[[milink.LinkSession], Any]] = {
    "resume": lambda s: s.resume(),
    "failover": lambda s: s.failover(),
    "cancel": lambda s: s.cancel(),
    "record_assessment": lambda s: s.record_assessment([]),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_an_operation_called_from_its_own_sessions_hook_raises_at_once(
    lab: milink.Lab, journal: pathlib.Path, operation: str
) -> None:
    raised: List[BaseException] = []
    reads: List[Any] = []

    def hook(target: Dict[str, Any]) -> None:
        reads.append(session.health())  # reads are allowed: they wait for nothing
        try:
            OPERATIONS[operation](session)
        except milink.SessionError as e:
            raised.append(e)
            raise

    session = replicating(lab, journal, redirect_hook=hook, options={"retry": {"max_attempts": 1}})
    (outcome,) = in_thread(session.failover)
    assert isinstance(outcome, milink.StepFailedError) and outcome.code == "hook", outcome
    (err,) = raised
    assert type(err) is milink.SessionError and err.caller_error and not err.transient
    assert f"{operation}() was called from the redirect hook" in str(err)
    assert outcome.__cause__ is err
    assert reads and reads[0] is not None
    # The session is intact: a plain hook completes the failover.
    session.close()
    with milink.LinkSession.resume_from(journal, lab, redirect_hook=lambda t: None) as again:
        again.resume()
        assert primary(again) == "ManagedInstance"


def test_an_operation_called_from_its_own_sessions_progress_callback_raises_at_once(
    lab: milink.Lab, journal: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unraisable: List[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    calls = 0

    def on_progress(event: Dict[str, Any]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            session.resume()

    session = lab.session(journal, on_progress=on_progress)
    (outcome,) = in_thread(lambda: session.record_assessment([]))
    assert outcome is None
    assert session.status()["state"] == "Assessed"
    (report,) = unraisable
    assert type(report.exc_value) is milink.SessionError
    assert "resume() was called from the progress callback" in str(report.exc_value)
