"""Hostile and careless input through the Python package: each is a typed exception that names
the problem and the fix, with nothing created; and no secret in any repr, status, event,
exception message or journal."""

import copy
import os
import pathlib
import subprocess
import sys
import textwrap
from typing import Any, Callable, Dict, List, Tuple, Type

import pytest

import milink


def facts() -> Dict[str, Any]:
    f = milink.Lab.tailspin(7).facts()
    del f["options"]
    return f


def from_facts_missing_database() -> None:
    milink.Lab.from_facts(**facts(), database="NoSuchDb")


def from_facts_named_twice() -> None:
    f = facts()
    twice = copy.deepcopy(f["databases"][0])
    twice["name"] = twice["name"].lower()
    f["databases"].append(twice)
    milink.Lab.from_facts(**f, database=f["databases"][0]["name"])


def assess_with(sku: Dict[str, Any]) -> Callable[[], None]:
    def run() -> None:
        milink.assess(**facts(), options={"sku": sku}, now=1_795_683_600_000)

    return run


# (case, call, exception, words the message must hold)
CASES: List[Tuple[str, Callable[[], None], Type[BaseException], List[str]]] = [
    ("a lab for a database the facts lack", from_facts_missing_database, milink.NameError, ["NoSuchDb", "name one of them"]),
    ("a lab from facts naming a database twice", from_facts_named_twice, milink.NameError, ["toystore", "give each database once"]),
    ("percentile 150", assess_with({"percentile": 150.0, "scale_factor_percent": 100}), milink.InvalidArgumentError, ["percentile 150", "0–100"]),
    ("percentile -1", assess_with({"percentile": -1.0, "scale_factor_percent": 100}), milink.InvalidArgumentError, ["percentile -1", "0–100"]),
    ("a 0% comfort factor", assess_with({"percentile": 95.0, "scale_factor_percent": 0}), milink.InvalidArgumentError, ["scale_factor_percent 0"]),
    ("a misspelled sizing option", assess_with({"percentil": 95.0, "scale_factor_percent": 100}), milink.InvalidArgumentError, ["percentil"]),
]


@pytest.mark.parametrize("case,call,exception,words", CASES, ids=[c[0] for c in CASES])
def test_hostile_input_is_a_typed_error_naming_the_problem(
    case: str, call: Callable[[], None], exception: Type[BaseException], words: List[str]
) -> None:
    with pytest.raises(exception) as info:
        call()
    message = str(info.value)
    for word in words:
        assert word.lower() in message.lower(), f"{case}: {message!r} lacks {word!r}"


def test_a_second_session_on_the_same_link_from_another_process_is_refused(tmp_path: pathlib.Path) -> None:
    first = tmp_path / "first.journal"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, milink
                session = milink.Lab.tailspin(7).session({str(first)!r})
                print("holding", flush=True)
                sys.stdin.readline()
                session.close()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        second = tmp_path / "second.journal"
        lab = milink.Lab.tailspin(7)
        before = lab.facts()
        with pytest.raises(milink.LinkLockedError) as info:
            lab.session(second)
        assert info.value.holder_pid == holder.pid
        assert info.value.holder_journal == str(first)
        assert str(first) in str(info.value) and "resume" in str(info.value)
        assert not second.exists()
        assert lab.facts() == before
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.wait(timeout=60) == 0
    # Once the other process let go, the link can be driven from here.
    with milink.LinkSession.resume_from(first, milink.Lab.tailspin(7)) as again:
        assert again.status()["state"] == "Draft"


PASSWORD = "Py-S3cr3t-CANARY-pw"
CONNECTION_STRING = (
    f"Server=tcp:TailspinSql,1433;Database=ToyStore;User ID=tailspin_app;Password={PASSWORD};"
    "Encrypt=True"
)


def test_no_secret_in_reprs_statuses_events_exceptions_or_the_journal(tmp_path: pathlib.Path) -> None:
    lab = milink.Lab.tailspin(7)
    journal = tmp_path / "secret.journal"
    targets: List[Dict[str, Any]] = []
    seen: List[str] = []
    session = lab.session(journal, redirect_hook=targets.append, connection_string=CONNECTION_STRING)
    session.record_assessment(milink.assess(**lab.facts(), failback=True))
    session.start()
    with pytest.raises(milink.RejectedError) as refused:
        session.failover("forced")
    seen += [str(refused.value), repr(refused.value)]
    session.failover()
    session.failback()
    # The hook got the real string (that is its job): the canary is live.
    assert targets and all(PASSWORD in t["connection_string"] for t in targets)
    seen += [
        repr(session),
        repr(session.status()),
        repr(session.events()),
        repr(session.history()),
        session._repr_html_(),
        repr(session.health()),
        repr(session.check_workload_quiet()),
        journal.read_text(),
    ]
    session.close()
    # Connection strings refused: the message names what is wrong, not the password.
    for bad in (
        f"Password={PASSWORD};Database=ToyStore",
        f"Server=tcp:x,1433;Password={PASSWORD};Password",
        f"Server=;Password={PASSWORD}",
    ):
        with pytest.raises(milink.InvalidArgumentError) as info:
            lab.session(tmp_path / "bad.journal", connection_string=bad)
        seen += [str(info.value), repr(info.value)]
        assert not (tmp_path / "bad.journal").exists()
    leaks = [text[:200] for text in seen if PASSWORD in text]
    assert leaks == [], leaks
