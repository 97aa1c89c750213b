import pytest

import milink

FAMILIES = [
    milink.NameError,
    milink.InvalidArgumentError,
    milink.NotReadyError,
    milink.GatherError,
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
