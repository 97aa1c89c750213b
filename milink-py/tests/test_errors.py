import pathlib
from typing import Any, Dict

import pytest

import milink
from milink._milink import _sleep

FAMILIES = [
    milink.NameError,
    milink.InvalidArgumentError,
    milink.NotReadyError,
    milink.GatherError,
    milink.ConnectError,
    milink.JournalError,
    milink.SessionError,
]
SESSION_FAMILIES = [
    milink.RejectedError,
    milink.SpecError,
    milink.StepFailedError,
    milink.TimeoutError,
    milink.SplitBrainError,
    milink.StalledError,
    milink.LinkLockedError,
]


def test_every_error_family_is_rooted_at_milink_error() -> None:
    assert issubclass(milink.MilinkError, Exception)
    for cls in FAMILIES:
        assert cls.__bases__ == (milink.MilinkError,), cls
        assert cls.__module__ == "milink"
    for cls in SESSION_FAMILIES:
        assert cls.__bases__ == (milink.SessionError,), cls
        assert cls.__module__ == "milink"
    assert milink.AuthenticationError.__bases__ == (milink.ConnectError,)
    assert milink.AuthenticationError.__module__ == "milink"
    # The two names that shadow builtins stay inside the milink namespace.
    assert milink.TimeoutError is not TimeoutError
    assert not issubclass(milink.TimeoutError, TimeoutError)
    assert milink.NameError is not NameError


def test_core_errors_carry_their_classification() -> None:
    with pytest.raises(milink.NameError) as info:
        milink.failover_dag_sql("")
    assert info.value.caller_error is True
    assert info.value.transient is False
    assert info.value.remote is False


def test_facts_of_the_wrong_shape_raise_invalid_argument() -> None:
    facts = milink.tailspin_facts()
    del facts["instance"]["server_name"]
    with pytest.raises(milink.InvalidArgumentError, match="instance facts: missing field `server_name`"):
        milink.assess(facts["instance"], facts["databases"])
    with pytest.raises(milink.InvalidArgumentError, match="database facts"):
        milink.assess(milink.tailspin_facts()["instance"], [{"name": 3}])
    with pytest.raises(milink.InvalidArgumentError, match="not plain data"):
        milink.assess(milink.tailspin_facts()["instance"], [object()])
    with pytest.raises(milink.InvalidArgumentError, match="now"):
        milink.assess(**milink.tailspin_facts(), now="yesterday")


def test_the_argument_errors_are_invalid_argument_errors_and_builtin_ones() -> None:
    assert issubclass(milink.ArgumentTypeError, milink.InvalidArgumentError)
    assert issubclass(milink.ArgumentTypeError, TypeError)
    assert issubclass(milink.ArgumentRangeError, milink.InvalidArgumentError)
    assert issubclass(milink.ArgumentRangeError, OverflowError)
    for cls in (milink.ArgumentTypeError, milink.ArgumentRangeError):
        assert cls.__module__ == "milink"
    for cls in (milink.TornJournalError, milink.NotAJournalError):
        assert cls.__bases__ == (milink.JournalError,) and cls.__module__ == "milink"


def test_type_errors_in_facts_and_options_name_the_field_and_the_database() -> None:
    facts = milink.tailspin_facts()
    customer360 = next(i for i, d in enumerate(facts["databases"]) if d["name"] == "Customer360")
    facts["databases"][customer360]["compatibility_level"] = "8"
    with pytest.raises(milink.InvalidArgumentError) as info:
        milink.assess(**facts)
    message = str(info.value)
    assert f"[{customer360}].compatibility_level" in message
    assert "database Customer360" in message
    assert 'invalid type: string "8"' in message
    assert " line " not in message and "column" not in message

    facts = milink.tailspin_facts()
    facts["databases"][0]["compatibility_level"] = "8"
    with pytest.raises(milink.InvalidArgumentError, match="database facts at ") as info:
        milink.Lab.from_facts(facts["instance"], facts["databases"], facts["target"], "ToyStore")
    assert "[0].compatibility_level" in str(info.value) and "column" not in str(info.value)
    assert f"database {facts['databases'][0]['name']}" in str(info.value)

    with pytest.raises(milink.InvalidArgumentError) as info:
        fresh = milink.tailspin_facts()
        milink.assess(fresh["instance"], fresh["databases"], options={"failback": "yes"})
    assert "options at failback: invalid type" in str(info.value)
    assert "column" not in str(info.value)

    lab = milink.Lab.tailspin()
    with pytest.raises(milink.InvalidArgumentError) as info:
        lab.session("never-created.journal", options={"retry": {"max_attempts": "8"}})
    assert "session options at retry.max_attempts: invalid type" in str(info.value)
    assert "column" not in str(info.value)
    with pytest.raises(milink.InvalidArgumentError, match="session options at retry.max_attempts"):
        lab.session("never-created.journal", options={"retry": {"max_attempts": -1}})


@pytest.mark.parametrize(
    "call, argument, text",
    [
        (lambda: milink.tcp_url("sql01", 70000), "port", "from 0 to 65535, not 70000"),
        (lambda: milink.tcp_url("sql01", -1), "port", "from 0 to 65535, not -1"),
        (lambda: milink.Lab.tailspin(-1), "seed", "from 0 to 18446744073709551615, not -1"),
        (lambda: milink.Lab.tailspin(seed=2**64), "seed", "from 0 to 18446744073709551615, not 18446744073709551616"),
        (
            lambda: milink.create_distributed_availability_group_sql(
                "DAG_ToyStore", "AG_ToyStore", "TCP://sql01:5022", "AG_MI", "mi.abc.database.windows.net",
                session_timeout_s=100_000,
            ),
            "session_timeout_s",
            "from 0 to 65535, not 100000",
        ),
    ],
    ids=["port-high", "port-negative", "seed-negative", "seed-high", "session_timeout_s"],
)
def test_integer_arguments_out_of_range_name_the_argument_and_its_range(
    call: Any, argument: str, text: str
) -> None:
    with pytest.raises(milink.ArgumentRangeError) as info:
        call()
    err = info.value
    assert isinstance(err, milink.InvalidArgumentError) and isinstance(err, OverflowError)
    assert err.caller_error and not err.transient
    assert str(err).startswith(f"{argument} must be an integer {text}"), str(err)


def test_integer_arguments_of_the_wrong_type_name_the_argument() -> None:
    with pytest.raises(milink.ArgumentTypeError, match="^port must be an integer, not str"):
        milink.tcp_url("sql01", "5022")  # type: ignore[arg-type]
    with pytest.raises(milink.ArgumentRangeError, match="^seconds"):
        _sleep(10**400)


def test_refusals_speak_python_not_rust(tmp_path: Any) -> None:
    lab = milink.Lab.tailspin()
    session = lab.session(str(tmp_path / "link.jsonl"))
    with pytest.raises(milink.RejectedError) as info:
        session.failover(kind="forced")
    message = str(info.value)
    assert 'failover(kind="forced")' in message, message
    assert "Command::" not in message and info.value.input == 'failover(kind="forced")'
    with pytest.raises(milink.RejectedError) as info:
        session.failback()
    assert "failback()" in str(info.value) and "Command::" not in str(info.value)


def test_a_misspelt_key_is_refused_by_name_not_ignored(tmp_path: Any) -> None:
    facts = milink.tailspin_facts()
    with pytest.raises(milink.InvalidArgumentError, match="failbak"):
        milink.assess(facts["instance"], facts["databases"], facts["target"], options={"failbak": True})
    with pytest.raises(milink.InvalidArgumentError, match="sever_name"):
        milink.assess({**facts["instance"], "sever_name": "x"}, facts["databases"])
    journal = tmp_path / "link.journal"
    with pytest.raises(milink.InvalidArgumentError, match="opertion_timeout"):
        milink.Lab.tailspin().session(journal, options={"opertion_timeout": 5})
    assert not journal.exists()


@pytest.mark.parametrize(
    "options, option",
    [
        ({"event_capacity": 2**40}, "event_capacity"),
        ({"event_capacity": 2**63 + 1}, "event_capacity"),
        ({"event_capacity": 0}, "event_capacity"),
        ({"call_timeout": {"secs": 2**62, "nanos": 0}}, "call_timeout"),
        ({"operation_timeout": {"secs": 0, "nanos": 0}}, "operation_timeout"),
        ({"retry": {"max_attempts": 0}}, "retry.max_attempts"),
        ({"retry": {"multiplier": 0.5}}, "retry.multiplier"),
        ({"retry": {"max_delay": {"secs": 10**12, "nanos": 0}}}, "retry.max_delay"),
        ({"world": "   "}, "world"),
    ],
)
def test_an_option_out_of_range_is_refused_before_a_journal_is_created(
    tmp_path: pathlib.Path, options: Dict[str, Any], option: str
) -> None:
    # 2**40 events once aborted the whole process on the eager allocation.
    lab = milink.Lab.tailspin(7)
    journal = tmp_path / "link.journal"
    with pytest.raises(milink.InvalidArgumentError) as info:
        lab.session(journal, options=options)
    assert f"session option {option}:" in str(info.value), str(info.value)
    assert info.value.caller_error
    assert not journal.exists()


@pytest.mark.parametrize("where_", ["operation", "detached"])
def test_a_bug_reaches_python_as_a_milink_error(where_: str) -> None:
    # A panic reached Python as PanicException, a BaseException that `except Exception` misses.
    from milink._milink import _panic

    with pytest.raises(milink.MilinkError) as info:
        _panic(where_)
    assert "internal error in milink (a bug" in str(info.value)
    assert not info.value.transient and not info.value.caller_error
