import asyncio
import os
import pathlib
import signal
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional

import pytest

import milink
from milink._milink import _sleep

TO_MI = {"link": "DAG_ToyStore", "primary": "ManagedInstance"}
TO_SQL = {"link": "DAG_ToyStore", "primary": "SqlServer"}


class Hook:
    """A redirect hook that records its calls (as ``{"link", "primary"}``: which side it was
    told about; test_redirect.py checks the rest); it can be made to fail or to hang."""

    def __init__(self) -> None:
        self.calls: List[Dict[str, Any]] = []
        self.targets: List[Dict[str, Any]] = []
        self.fail_with: Optional[BaseException] = None
        self.hang = False

    def __call__(self, target: Dict[str, Any]) -> None:
        self.targets.append(target)
        self.calls.append({"link": target["link"], "primary": target["primary"]})
        if self.fail_with is not None:
            raise self.fail_with
        deadline = time.monotonic() + 30
        while self.hang and time.monotonic() < deadline:
            time.sleep(0.01)


@pytest.fixture
def lab() -> milink.Lab:
    return milink.Lab.tailspin(7)


@pytest.fixture
def journal(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "DAG_ToyStore.journal"


def replicating(lab: milink.Lab, journal: pathlib.Path, **kwargs: Any) -> milink.LinkSession:
    session = lab.session(journal, **kwargs)
    session.record_assessment(milink.assess(**lab.facts(), failback=True))
    session.start()
    return session


def primary(session: milink.LinkSession) -> Optional[str]:
    phase = session.status()["phase"]
    return phase["primary"] if phase["name"] == "FailedOver" else None


def send_sigint_after(seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


def test_lab_session_end_to_end_planned_failover(lab: milink.Lab, journal: pathlib.Path) -> None:
    assert lab.link == "DAG_ToyStore" and lab.database == "ToyStore"
    session = lab.session(str(journal))
    assert session.link == "DAG_ToyStore" and session.databases == ["ToyStore"]
    assert session.status()["state"] == "Draft"
    # The lab's own report blocks Customer360 but not ToyStore, the database this link carries.
    report = milink.assess(**lab.facts(), failback=True)
    assert report.verdicts["Customer360"] == "NotReady"
    session.record_assessment(report)
    session.start()
    assert session.status()["state"] == "Replicating"
    session.failover()
    status = session.status()
    assert status["state"] == "FailedOver"
    assert status["phase"] == {"name": "FailedOver", "primary": "ManagedInstance", "data_loss_possible": False}
    assert status["journal_path"] == str(journal)
    assert status["journal_records"] > 0
    # The logs were compared after the role change: nothing was lost.
    assert status["data_loss"] == []
    assert status["loss_unverified"] == [] and status["split_brain_since"] is None
    assert status["connection_warnings"] == []
    # Watching the idle link reads both sides; a bad duration is refused.
    session.watch(30)
    with pytest.raises(milink.InvalidArgumentError):
        session.watch(-1)
    health = session.health()
    assert health is not None and health["instance"]["role"] == "Primary"
    assert "FailedOver" in repr(session)


def test_commands_the_link_refuses_raise_rejected_error(lab: milink.Lab, journal: pathlib.Path) -> None:
    session = lab.session(journal)
    with pytest.raises(milink.RejectedError) as info:
        session.start()
    assert info.value.state == "Draft" and info.value.operation == "start"
    with pytest.raises(milink.RejectedError, match="Link.RecoveryModel"):
        session.record_assessment(["Link.RecoveryModel: FULL recovery (database ToyStore)"])
    session.record_assessment([])
    session.start()
    with pytest.raises(milink.RejectedError) as info:
        session.failover("forced")
    err = info.value
    assert isinstance(err, milink.SessionError) and err.caller_error and not err.transient
    assert err.state == "Replicating" and err.operation == "failover"
    assert "may lose data" in err.reason
    # In Python terms: the keyword to pass, not the Rust type.
    assert "acknowledge_data_loss=" in err.reason and "DataLossAcknowledgement" not in str(err)
    with pytest.raises(milink.RejectedError, match="DAG_ToyStore"):
        session.failover("forced", acknowledge_data_loss="DAG_Other")
    assert session.status()["state"] == "Replicating"  # nothing changed


def test_failover_arguments_are_checked_before_the_link_sees_them(
    lab: milink.Lab, journal: pathlib.Path
) -> None:
    session = lab.session(journal)
    with pytest.raises(milink.InvalidArgumentError, match="planned"):
        session.failover("sideways")
    with pytest.raises(milink.InvalidArgumentError, match="forced failover only"):
        session.failover("planned", acknowledge_data_loss="DAG_ToyStore")
    with pytest.raises(milink.InvalidArgumentError, match="ReadinessReport or a list"):
        session.record_assessment(42)
    with pytest.raises(milink.InvalidArgumentError, match="SqlServer"):
        session.repair_split_brain("Mars")
    assert session.status()["journal_records"] == 1  # only the link's creation


def test_forced_failover_split_brain_and_repair(lab: milink.Lab, journal: pathlib.Path) -> None:
    session = replicating(lab, journal)
    with pytest.raises(milink.SplitBrainError):
        session.failover("forced", acknowledge_data_loss="DAG_ToyStore")
    assert session.status()["state"] == "SplitBrain"
    session.repair_split_brain("ManagedInstance")
    assert session.status()["phase"] == {"name": "FailedOver", "primary": "ManagedInstance", "data_loss_possible": True}


def test_redirect_hook_is_called_once_per_role_change_without_failures(lab: milink.Lab, journal: pathlib.Path) -> None:
    hook = Hook()
    states: List[str] = []
    session = replicating(
        lab, journal, redirect_hook=lambda target: (hook(target), states.append(session.status()["state"]))
    )
    assert hook.calls == []
    session.failover()
    assert hook.calls == [TO_MI]
    assert states == ["Redirecting"]  # the hook may read the session it serves
    session.failback()
    assert hook.calls == [TO_MI, TO_SQL]
    assert session.status()["state"] == "Replicating"
    # One id per redirect; the status shows the last one.
    assert [t["redirect_id"] for t in hook.targets] == ["DAG_ToyStore/redirect/1", "DAG_ToyStore/redirect/2"]
    redirect = session.status()["redirect"]
    assert redirect is not None and redirect["redirect_id"] == "DAG_ToyStore/redirect/2"


def test_a_hook_that_raises_leaves_a_resumable_session(lab: milink.Lab, journal: pathlib.Path) -> None:
    hook = Hook()
    session = replicating(lab, journal, redirect_hook=hook)
    hook.fail_with = ValueError("cannot write Server=tailspin-mi;Password=hunter2")
    with pytest.raises(milink.StepFailedError) as info:
        session.failover()
    err = info.value
    assert err.code == "hook" and err.retryable and err.transient
    assert "ValueError" in str(err) and "resume" in str(err)
    assert "hunter2" not in str(err)
    assert isinstance(err.__cause__, ValueError)  # the hook's own exception, kept in memory only
    assert "hunter2" not in journal.read_text()
    assert session.status()["state"] == "Failed"
    assert primary(session) is None
    calls_while_failing = len(hook.calls)
    assert calls_while_failing >= 1
    hook.fail_with = None
    session.resume()
    assert primary(session) == "ManagedInstance"
    assert hook.calls[calls_while_failing:] == [TO_MI]
    # Every call was for the same redirect: the same id, so the application can spot a repeat.
    assert {t["redirect_id"] for t in hook.targets} == {"DAG_ToyStore/redirect/1"}


def test_async_twins_under_asyncio_run(lab: milink.Lab, journal: pathlib.Path) -> None:
    hook = Hook()
    session = lab.session(journal, redirect_hook=hook)

    async def migrate() -> Optional[Dict[str, Any]]:
        await session.record_assessment_async([])
        await session.start_async()
        await session.failover_async("planned")
        health = await session.health_async()
        await session.failback_async()
        await session.resume_async()  # nothing in flight: returns at once
        return health

    health = asyncio.run(migrate())
    assert health is not None and health["instance"]["role"] == "Primary"
    assert hook.calls == [TO_MI, TO_SQL]
    assert session.status()["state"] == "Replicating"

    async def refused() -> None:
        await session.failover_async("forced")

    with pytest.raises(milink.RejectedError):
        asyncio.run(refused())

    async def concurrently() -> None:
        # Awaitables run on the shared runtime, so the event loop stays free meanwhile.
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.ensure_future(ticker())
        await session.cutover_async(drop_availability_group=True)
        task.cancel()
        assert ticks > 0

    asyncio.run(concurrently())
    assert session.status()["state"] == "Completed"


def kind(event: Dict[str, Any]) -> str:
    return next(k for k in event if k != "at")


def test_progress_events_and_callback(lab: milink.Lab, journal: pathlib.Path) -> None:
    seen: List[Dict[str, Any]] = []
    session = lab.session(journal, on_progress=seen.append, progress_detail="steps")
    start = lab.now
    session.record_assessment([])
    session.start()
    events = session.events()
    assert events == seen  # the callback saw every event, in order, by the time start returned
    assert {k: v for k, v in events[0].items() if k != "at"} == {
        "StateChanged": {"from": "Draft", "to": "Assessed"}
    }
    untimed = [{k: v for k, v in e.items() if k != "at"} for e in events]
    assert {"StateChanged": {"from": "Seeding", "to": "Replicating"}} in untimed
    assert any("Seeding" in e.get("Progress", {}) for e in events)
    assert all(len(e) == 2 for e in events)
    assert session.events() == []  # drained
    # Each event has the (virtual) time it was sent at: in order, and spread over the run.
    times = [e["at"] for e in events]
    assert times == sorted(times) and times[0] >= start and times[-1] <= lab.now
    assert times[-1] - times[0] > 60_000, "seeding takes minutes of virtual time"


def test_the_callback_gets_the_detail_it_asked_for(lab: milink.Lab, tmp_path: pathlib.Path) -> None:
    phases: List[Dict[str, Any]] = []
    session = lab.session(tmp_path / "a.journal", on_progress=phases.append)
    session.record_assessment([])
    session.start()
    everything = session.events()
    steps = {"StepStarted", "StepFinished"}
    # By default the callback is spared each step's start and finish; events() keeps them.
    assert phases and not any(kind(e) in steps for e in phases)
    assert any(kind(e) in steps for e in everything)
    assert [e for e in everything if kind(e) not in steps] == phases
    session.close()
    with pytest.raises(milink.InvalidArgumentError, match="progress_detail"):
        lab.session(tmp_path / "b.journal", progress_detail="everything")  # type: ignore[arg-type]
    assert not (tmp_path / "b.journal").exists()


def test_status_says_where_the_operation_stands_and_events_carry_the_lsn_gate(
    lab: milink.Lab, journal: pathlib.Path
) -> None:
    session = lab.session(journal)
    assert session.status()["progress"] == {"status": "idle"}
    assert session.status()["primary"] == "SqlServer"
    session.record_assessment([])
    session.start()
    assert session.status()["progress"] == {"status": "reached", "operation": "Start"}
    session.events()
    session.failover()
    status = session.status()
    assert status["progress"] == {"status": "reached", "operation": "Failover"}
    assert status["primary"] == "ManagedInstance" and status["data_loss_possible"] is False
    gate = [e["Progress"]["CatchUp"] for e in session.events() if "CatchUp" in e.get("Progress", {})]
    assert gate, "the catch-up gate reported its readings"
    assert {"database", "sql_server", "managed_instance", "equal_for"} <= set(gate[-1])
    assert gate[-1]["sql_server"] == gate[-1]["managed_instance"]
    # Held for the window before the role change: no client session was left on the primary
    # and the instance was read live over T-SQL, so the live quiet window (1 s) applies rather
    # than the 3 s one (ARM's lagging view) or the 30 s stability window.
    assert 1 <= gate[-1]["equal_for"]["secs"] < 3


def test_a_failing_progress_callback_does_not_stop_the_link(
    lab: milink.Lab, journal: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unraisable: List[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)

    def broken(event: Dict[str, Any]) -> None:
        raise RuntimeError("display failed")

    session = lab.session(journal, on_progress=broken)
    session.record_assessment([])
    session.start()
    assert session.status()["state"] == "Replicating"
    assert unraisable and isinstance(unraisable[0].exc_value, RuntimeError)


def test_journals_close_and_resume_from(lab: milink.Lab, journal: pathlib.Path) -> None:
    session = replicating(lab, journal)
    with pytest.raises(milink.JournalError):
        lab.session(journal)  # a journal names one link; it is never overwritten
    with pytest.raises(milink.JournalError):
        milink.LinkSession.resume_from(journal, lab)  # still open in this process
    session.close()
    with pytest.raises(milink.SessionError, match="closed"):
        session.status()
    assert "closed" in repr(session)
    with milink.LinkSession.resume_from(os.fspath(journal), lab) as again:
        assert again.status()["state"] == "Replicating"
        again.failover()
        assert primary(again) == "ManagedInstance"
    with pytest.raises(milink.JournalError):
        milink.LinkSession.resume_from(journal.with_name("missing.journal"), lab)


def test_ctrl_c_during_a_blocking_wait_raises_keyboard_interrupt_promptly() -> None:
    timer = send_sigint_after(0.2)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        _sleep(30)
    timer.join()
    assert time.monotonic() - started < 2


def test_ctrl_c_during_an_operation_leaves_the_journal_resumable(
    lab: milink.Lab, journal: pathlib.Path
) -> None:
    hook = Hook()
    session = replicating(lab, journal, redirect_hook=hook)
    records_before = session.status()["journal_records"]
    hook.hang = True  # the failover waits in the hook until Ctrl-C
    timer = send_sigint_after(0.3)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        session.failover()
    timer.join()
    assert time.monotonic() - started < 3
    assert hook.calls == [TO_MI]
    # The failover stopped with the redirect in flight and nothing recorded about it.
    status = session.status()
    assert status["state"] != "Failed" and status["last_error"] is None
    assert "redirect:ManagedInstance" in status["in_flight"]
    assert status["journal_records"] > records_before
    session.close()
    hook.hang = False
    resumed = milink.LinkSession.resume_from(journal, lab, redirect_hook=hook)
    resumed.resume()
    assert primary(resumed) == "ManagedInstance"
    assert hook.calls == [TO_MI, TO_MI]  # the interrupted redirect was issued again
    assert [t["redirect_id"] for t in hook.targets] == ["DAG_ToyStore/redirect/1"] * 2  # as the same redirect


def test_options_shape_the_session(lab: milink.Lab, journal: pathlib.Path) -> None:
    hook = Hook()
    hook.fail_with = ValueError("down")
    session = lab.session(journal, redirect_hook=hook, options={"retry": {"max_attempts": 1}})
    session.record_assessment([])
    session.start()
    with pytest.raises(milink.StepFailedError):
        session.failover()
    assert len(hook.calls) == 1  # no retries
    with pytest.raises(milink.InvalidArgumentError, match="session options"):
        lab.session(journal.with_name("other.journal"), options={"call_timeout": "soon"})


def test_a_report_that_blocks_the_links_database_is_refused(lab: milink.Lab, journal: pathlib.Path) -> None:
    facts = lab.facts()
    toystore = next(d for d in facts["databases"] if d["name"] == "ToyStore")
    toystore["recovery_model"] = "SIMPLE"
    report = milink.assess(**facts, failback=True)
    assert report.verdicts["ToyStore"] == "NotReady"
    session = lab.session(journal)
    with pytest.raises(milink.RejectedError, match=r"Link\.RecoveryModel: .*\(database ToyStore\)"):
        session.record_assessment(report)
    assert session.status()["state"] == "Draft"


def test_cancel_and_retry(lab: milink.Lab, journal: pathlib.Path) -> None:
    hook = Hook()
    hook.fail_with = RuntimeError("config service down")
    session = replicating(lab, journal, redirect_hook=hook, options={"retry": {"max_attempts": 1}})
    with pytest.raises(milink.StepFailedError):
        session.failover()
    hook.fail_with = None
    session.retry()
    assert primary(session) == "ManagedInstance"

    # A fresh world: in this one ToyStore now exists on the instance, which readiness reports.
    # Its link has the same identity (instance and name), so the first session lets go of it.
    session.close()
    other = replicating(milink.Lab.tailspin(8), journal.with_name("cancelled.journal"))
    other.cancel()
    assert other.status()["state"] == "Cancelled"
    assert other.status()["terminal"] is True
    with pytest.raises(milink.RejectedError):
        other.start()


def test_a_lab_from_an_assessments_facts(journal: pathlib.Path) -> None:
    facts = milink.Lab.tailspin().facts()
    del facts["options"]
    lab = milink.Lab.from_facts(**facts, database="ToyStore", seed=3)
    assert lab.link == "DAG_ToyStore" and lab.spec["databases"] == ["ToyStore"]
    session = replicating(lab, journal)
    session.cutover()
    assert session.status()["state"] == "Completed"
    with pytest.raises(milink.NameError):
        milink.Lab.from_facts(**facts, database="")


def test_a_second_session_on_the_same_link_raises_link_locked_error(
    lab: milink.Lab, journal: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    first = lab.session(journal)
    second_journal = tmp_path / "second.journal"
    with pytest.raises(milink.LinkLockedError) as info:
        lab.session(second_journal)
    err = info.value
    assert isinstance(err, milink.SessionError)
    assert err.caller_error and not err.transient and not err.remote
    assert err.link == "DAG_ToyStore"
    assert err.holder_pid == os.getpid()
    assert err.holder_journal == str(journal)
    lock_file = pathlib.Path(err.lock_file)
    assert lock_file.parent == tmp_path and lock_file.name.endswith("__dag%5ftoystore.lock")
    assert str(journal) in str(err) and err.lock_file in str(err) and "resume" in str(err)
    assert not second_journal.exists()  # a refused session leaves no journal behind
    first.record_assessment([])
    first.close()
    other = tmp_path / "elsewhere"
    other.mkdir()
    with milink.LinkSession.resume_from(journal, lab, lock_dir=other) as again:
        assert again.status()["state"] == "Assessed"
        # lock_dir puts the lock there only: a session locking next to its journal does not see
        # it, which is why every session of a link must use the same lock_dir.
        with lab.session(tmp_path / "nearby.journal") as nearby:
            assert nearby.status()["state"] == "Draft"
        with pytest.raises(milink.LinkLockedError) as info:
            lab.session(tmp_path / "third.journal", lock_dir=os.fspath(other))
        assert info.value.holder_journal == str(journal)
    with lab.session(tmp_path / "third.journal", lock_dir=other) as third:
        assert third.status()["state"] == "Draft"


def test_the_phase_has_one_shape(lab: milink.Lab, journal: pathlib.Path) -> None:
    session = lab.session(journal)
    assert session.status()["phase"] == {"name": "Draft"}
    session.record_assessment([])
    session.start()
    phase = session.status()["phase"]
    assert phase["name"] == "Replicating" and isinstance(phase, dict)


def test_a_session_cell_run_again_can_resume_its_journal(lab: milink.Lab, journal: pathlib.Path) -> None:
    first = lab.session(journal)
    first.record_assessment([])
    first.close()
    # Run again: refused by default, with the choice in Python terms, and nothing touched.
    before = journal.read_bytes()
    with pytest.raises(milink.JournalError, match='if_exists="resume"'):
        lab.session(journal)
    assert journal.read_bytes() == before
    again = lab.session(journal, if_exists="resume")
    assert again.status()["state"] == "Assessed"
    again.close()
    with pytest.raises(milink.InvalidArgumentError, match="if_exists"):
        lab.session(journal, if_exists="overwrite")  # type: ignore[arg-type]


def test_lsns_are_python_ints(lab: milink.Lab, journal: pathlib.Path) -> None:
    session = lab.session(journal)
    session.record_assessment([])
    session.start()
    health = session.health()
    assert health is not None
    source = health["source"]["databases"][0]
    instance = health["instance"]["databases"][0]
    assert isinstance(source["end_of_log_lsn"], int) and source["end_of_log_lsn"] > 0
    assert isinstance(instance["last_hardened_lsn"], int)
    # Comparable as numbers, as LSNs must be (never as text).
    assert instance["last_hardened_lsn"] <= source["end_of_log_lsn"]


def test_the_lab_writes_lets_time_pass_and_validates_rows(lab: milink.Lab, journal: pathlib.Path) -> None:
    session = lab.session(journal)
    session.record_assessment([])
    session.start()
    lab.start_workload(transactions_per_second=50)
    before = lab.now
    lab.run_for(30)
    assert lab.now - before == 30_000
    assert lab.workload_stats()["committed"] > 0
    # The application is connected: not quiet.
    busy = session.check_workload_quiet()
    assert busy["quiet"] is False and busy["sessions"] and "session" in busy["summary"]
    stats = lab.stop_workload()
    assert stats["committed"] > 0
    quiet = session.check_workload_quiet()
    assert quiet["quiet"] is True and quiet["open_transactions"] == 0
    lab.run_for(60)
    parity = lab.parity()
    assert parity is not None and parity["database"] == "ToyStore"
    assert parity["all_match"] is True and all(t["matches"] for t in parity["tables"])
    with pytest.raises(milink.InvalidArgumentError, match="no database"):
        lab.parity("Nowhere")
    with pytest.raises(milink.ArgumentRangeError):
        lab.run_for(-1)
    with pytest.raises(milink.ArgumentRangeError):
        lab.start_workload(transactions_per_second=0)


def test_the_history_charts_lag_under_load(lab: milink.Lab, journal: pathlib.Path) -> None:
    session = lab.session(journal)
    session.record_assessment([])
    session.start()
    lab.start_workload(transactions_per_second=40)
    for _ in range(6):
        lab.run_for(20)
        session.health()
    lab.stop_workload()
    rows = session.history()
    assert rows and set(rows[0]) == {
        "at", "state", "database", "source_lsn", "instance_lsn", "lag_seconds", "seeding_percent"
    }
    assert [r["at"] for r in rows] == sorted(r["at"] for r in rows)
    assert any(r["state"] == "Seeding" for r in rows) and rows[-1]["state"] == "Replicating"
    replicating = [r for r in rows if r["state"] == "Replicating"]
    assert len(replicating) >= 6
    assert all(isinstance(r["source_lsn"], int) for r in replicating)
    # The source's log grows under load.
    assert replicating[-1]["source_lsn"] > replicating[0]["source_lsn"]
    frame = session.history_dataframe()
    assert len(frame) == len(rows) and list(frame.columns)[:3] == ["at", "state", "database"]
    # LSNs keep every digit in the frame (never float64), missing readings are <NA>.
    assert [int(v) for v in frame["source_lsn"].dropna()] == [
        r["source_lsn"] for r in rows if r["source_lsn"] is not None
    ]
    assert str(frame["instance_lsn"].dtype) == "Int64"


def test_the_session_shows_itself_in_a_notebook(lab: milink.Lab, journal: pathlib.Path) -> None:
    session = lab.session(journal)
    session.record_assessment([])
    session.start()
    html = session._repr_html_()
    assert html.startswith('<div class="milink-session">') and "DAG_ToyStore" in html
    assert "Replicating" in html and "ToyStore" in html and "<script" not in html
    assert str(journal) in html
    session.close()
    assert "closed" in session._repr_html_()


def test_prepare_makes_the_link_synchronous_so_the_failover_skips_the_switch(
    lab: milink.Lab, journal: pathlib.Path
) -> None:
    session = lab.session(journal)
    with pytest.raises(milink.RejectedError):
        session.prepare()  # no link yet: nothing to prepare, and nothing changed
    assert session.status()["state"] == "Draft"
    session.record_assessment([])
    session.start()
    session.events()

    async def prepare() -> None:
        await session.prepare_async()

    asyncio.run(prepare())
    states = [e["StateChanged"]["to"] for e in session.events() if "StateChanged" in e]
    assert "PreparingFailover" in states and session.status()["state"] == "Replicating"
    session.failover()
    states = [e["StateChanged"]["to"] for e in session.events() if "StateChanged" in e]
    # Already synchronous: straight to the catch-up gate, no second switch.
    assert states[0] == "CatchingUp" and "PreparingFailover" not in states
    assert primary(session) == "ManagedInstance"
    session.close()
