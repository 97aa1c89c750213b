"""Where the redirect hook tells the workload to connect, from the connection string it uses."""

import json
import pathlib
import re
from typing import Any, Dict, List

import pytest

import milink

ORIGINAL = (
    "Server=tcp:sql01.corp.tailspin.com,1433;Database=ToyStore;User ID=toystore_app;"
    "Password='s3cr;et!';Application Name=ToyStore Web;Encrypt=True;"
    "ServerSPN=MSSQLSvc/sql01.corp.tailspin.com:1433"
)
PASSWORD = "s3cr;et!"


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


def pairs(connection_string: str) -> Dict[str, str]:
    """The string's ``key=value`` pairs, enough for the strings of these tests."""
    return dict(p.split("=", 1) for p in re.split(r";(?=[^;=]+=)", connection_string))


def test_after_a_planned_failover_the_hook_gets_the_instance_and_the_users_string(
    lab: milink.Lab, journal: pathlib.Path
) -> None:
    targets: List[Dict[str, Any]] = []
    session = replicating(lab, journal, redirect_hook=targets.append, connection_string=ORIGINAL)
    session.failover()
    assert len(targets) == 1
    target = targets[0]
    assert set(target) == {"link", "redirect_id", "primary", "host", "port", "connection_string", "notes"}
    assert target["link"] == "DAG_ToyStore" and target["primary"] == "ManagedInstance"
    assert target["redirect_id"] == "DAG_ToyStore/redirect/1"
    assert re.fullmatch(r"tailspin-mi\.[a-z0-9]+\.database\.windows\.net", target["host"])
    assert target["host"] == lab.spec["target"]["fqdn"]
    assert target["port"] == 1433
    cs = pairs(target["connection_string"])
    assert cs["Server"] == f"tcp:{target['host']},1433"
    # The user's own settings are kept, the password as written (it is the hook's to hand over).
    assert cs["Database"] == "ToyStore"
    assert cs["Application Name"] == "ToyStore Web"
    assert cs["User ID"] == "toystore_app" and cs["Password"] == f"'{PASSWORD}'"
    assert cs["Encrypt"] == "True"
    # The SQL Server's Kerberos SPN would break the connection to the instance: removed, and said so.
    assert "ServerSPN" not in cs
    assert any(n.startswith("removed ServerSPN") for n in target["notes"])
    assert any("SQL login" in n for n in target["notes"])  # authentication kept: check the login
    # The password is the hook's alone: not in the status, the events or the journal.
    redirect = session.status()["redirect"]
    assert redirect is not None and redirect["host"] == target["host"] and redirect["port"] == 1433
    assert "Password=***" in redirect["connection_string"]
    assert redirect["redirect_id"] == target["redirect_id"]
    assert PASSWORD not in json.dumps(session.status())
    assert PASSWORD not in json.dumps(session.events())
    assert PASSWORD not in journal.read_text()


def test_public_endpoint_points_the_workload_at_the_public_host_and_port(
    lab: milink.Lab, journal: pathlib.Path
) -> None:
    targets: List[Dict[str, Any]] = []
    session = replicating(
        lab, journal, redirect_hook=targets.append, connection_string=ORIGINAL, public_endpoint=True
    )
    session.failover()
    (target,) = targets
    assert target["host"] == lab.spec["target"]["fqdn"].replace("tailspin-mi.", "tailspin-mi.public.", 1)
    assert ".public." in target["host"]
    assert target["port"] == 3342
    assert pairs(target["connection_string"])["Server"] == f"tcp:{target['host']},3342"


def test_after_failback_the_original_string_comes_back(lab: milink.Lab, journal: pathlib.Path) -> None:
    targets: List[Dict[str, Any]] = []
    session = replicating(lab, journal, redirect_hook=targets.append, connection_string=ORIGINAL)
    session.failover()
    session.failback()
    assert [t["primary"] for t in targets] == ["ManagedInstance", "SqlServer"]
    back = targets[1]
    assert back["connection_string"] == ORIGINAL  # as written, quotes and key spellings included
    assert back["host"] == "sql01.corp.tailspin.com" and back["port"] == 1433
    assert back["notes"] == []


def test_resume_from_takes_the_connection_string_again(lab: milink.Lab, journal: pathlib.Path) -> None:
    replicating(lab, journal, connection_string=ORIGINAL).close()
    targets: List[Dict[str, Any]] = []
    with milink.LinkSession.resume_from(
        journal, lab, redirect_hook=targets.append, connection_string=ORIGINAL, public_endpoint=True
    ) as session:
        session.failover()
    (target,) = targets
    assert target["port"] == 3342 and ".public." in target["host"]
    assert pairs(target["connection_string"])["Database"] == "ToyStore"


def test_without_a_connection_string_the_hook_gets_only_the_server(
    lab: milink.Lab, journal: pathlib.Path
) -> None:
    targets: List[Dict[str, Any]] = []
    session = replicating(lab, journal, redirect_hook=targets.append)
    session.failover()
    session.failback()
    to_mi, to_sql = targets
    assert to_mi["connection_string"] == f"Data Source=tcp:{lab.spec['target']['fqdn']},1433"
    assert to_sql["host"] == "TailspinSql" and to_sql["connection_string"] == "Data Source=TailspinSql"
    assert all("no connection string was given" in t["notes"][0] for t in targets)


@pytest.mark.parametrize(
    "bad, match",
    [
        ("Server=sql01;Password='hunter2", "syntax error"),
        ("Server=tcp:sql01,port;Database=ToyStore;Password=hunter2", "Data Source"),
        ("Database=ToyStore;Password=hunter2", "no Server"),
    ],
)
def test_a_connection_string_the_session_cannot_use_is_refused_and_nothing_is_created(
    lab: milink.Lab, journal: pathlib.Path, bad: str, match: str
) -> None:
    with pytest.raises(milink.InvalidArgumentError, match=match) as info:
        lab.session(journal, connection_string=bad)
    assert info.value.caller_error and not info.value.transient
    assert "hunter2" not in str(info.value)
    assert not journal.exists()

    # Resuming with it is refused too, and the journal is left as it was.
    replicating(lab, journal).close()
    before = journal.read_bytes()
    with pytest.raises(milink.InvalidArgumentError):
        milink.LinkSession.resume_from(journal, lab, connection_string=bad)
    assert journal.read_bytes() == before
    with milink.LinkSession.resume_from(journal, lab) as again:
        assert again.status()["state"] == "Replicating"


@pytest.mark.parametrize("blank", ["", "   ", ";;;", " ;\t; "])
def test_an_empty_connection_string_is_refused_not_taken_for_none(
    lab: milink.Lab, tmp_path: pathlib.Path, blank: str
) -> None:
    journal = tmp_path / "DAG_ToyStore.journal"
    with pytest.raises(milink.InvalidArgumentError, match="connection string is empty") as info:
        lab.session(journal, connection_string=blank)
    assert info.value.caller_error and not info.value.transient
    assert list(tmp_path.iterdir()) == []  # nothing created: no journal, no lock file

    replicating(lab, journal).close()
    before = journal.read_bytes()
    with pytest.raises(milink.InvalidArgumentError, match="connection string is empty"):
        milink.LinkSession.resume_from(journal, lab, connection_string=blank)
    assert journal.read_bytes() == before
