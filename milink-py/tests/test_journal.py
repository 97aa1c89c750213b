"""Journals that cannot be resumed as they are: torn by a crash (repairable from Python), or not
journals at all (never repaired)."""

import os
import pathlib

import pytest

import milink


@pytest.fixture
def lab() -> milink.Lab:
    return milink.Lab.tailspin(7)


@pytest.fixture
def journal(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "DAG_ToyStore.journal"


def test_a_torn_journal_names_the_python_repair_which_resume_from_performs(
    lab: milink.Lab, journal: pathlib.Path
) -> None:
    with lab.session(journal) as session:
        session.record_assessment([])
        records = session.status()["journal_records"]
    intact = journal.read_bytes()
    torn = b'{"schema_version":1,"seq":2,"at":17'  # a crash in the middle of the next append
    journal.write_bytes(intact + torn)

    with pytest.raises(milink.TornJournalError) as info:
        milink.LinkSession.resume_from(journal, lab)
    err = info.value
    assert isinstance(err, milink.JournalError)
    assert err.caller_error and not err.transient
    assert err.path == str(journal) and err.line == records + 1 and err.bytes == len(torn)
    assert "resume_from(journal, lab, repair=True)" in str(err)
    assert "open_repairing" not in str(err)
    assert journal.read_bytes() == intact + torn  # nothing changed without repair=True

    with milink.LinkSession.resume_from(journal, lab, repair=True) as repaired:
        assert repaired.repaired == {"line": records + 1, "bytes": len(torn)}
        assert repaired.status()["state"] == "Assessed"
        repaired.start()
        assert repaired.status()["state"] == "Replicating"
    with milink.LinkSession.resume_from(journal, lab, repair=True) as again:
        assert again.repaired is None  # nothing torn: nothing dropped
        assert again.status()["state"] == "Replicating"


@pytest.mark.parametrize(
    "content",
    [
        b"hello world",
        b"server=sql01\ndatabase=ToyStore\n",
        b'{"name": "ToyStore", "recovery_model": "FULL"}\n',
        b'[{"name": "ToyStore"}]',
        b"\x89PNG\r\n\x1a\n\x00\x00",
    ],
    ids=["words", "lines", "json-object", "json-list", "binary"],
)
def test_a_file_that_is_not_a_journal_is_said_so_and_never_offered_a_repair(
    lab: milink.Lab, tmp_path: pathlib.Path, content: bytes
) -> None:
    path = tmp_path / "settings.txt"
    path.write_bytes(content)
    for repair in (False, True):
        with pytest.raises(milink.NotAJournalError) as info:
            milink.LinkSession.resume_from(path, lab, repair=repair)
        err = info.value
        assert isinstance(err, milink.JournalError) and not isinstance(err, milink.TornJournalError)
        assert err.caller_error and not err.transient
        assert err.path == str(path)
        assert "is not a milink journal" in str(err)
        assert "torn" not in str(err) and "repair" not in str(err)
        assert path.read_bytes() == content  # never truncated


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are a POSIX feature")
def test_a_fifo_or_a_device_is_refused_at_once_instead_of_read(
    lab: milink.Lab, tmp_path: pathlib.Path
) -> None:
    # Reading a FIFO nobody writes to would block for ever; /dev/zero would fill memory.
    fifo = tmp_path / "journal.fifo"
    os.mkfifo(fifo)
    zero = tmp_path / "journal.zero"
    zero.symlink_to("/dev/zero")
    for path, kind in ((fifo, "a FIFO"), (zero, "a device"), (tmp_path, "a directory")):
        for repair in (False, True):
            with pytest.raises(milink.NotAJournalError) as info:
                milink.LinkSession.resume_from(path, lab, repair=repair)
            assert f"it is {kind}" in str(info.value), str(info.value)
            assert info.value.path == str(path)


def test_a_journal_edited_by_hand_is_refused_before_anything_is_driven(
    lab: milink.Lab, tmp_path: pathlib.Path
) -> None:
    journal = tmp_path / "DAG_ToyStore.journal"
    session = lab.session(journal)
    session.record_assessment([])
    session.close()
    text = journal.read_text()
    fqdn = lab.spec["target"]["fqdn"]
    assert fqdn in text
    # Another host in the spec: resuming would hand the workload's connection string to it.
    edited = text.replace(fqdn, "attacker.example.com", 1)
    journal.write_text(edited)
    with pytest.raises(milink.JournalError) as info:
        milink.LinkSession.resume_from(journal, lab)
    assert "changed after it was written" in str(info.value)
    assert journal.read_text() == edited


def test_a_journal_resumed_on_another_lab_is_refused_and_unchanged(tmp_path: pathlib.Path) -> None:
    journal = tmp_path / "DAG_ToyStore.journal"
    lab = milink.Lab.tailspin(1)
    session = lab.session(journal)
    session.record_assessment([])
    session.start()
    session.close()
    before = journal.read_bytes()
    with pytest.raises(milink.WrongWorldError) as info:
        milink.LinkSession.resume_from(journal, milink.Lab.tailspin(7))
    assert "seed 1" in info.value.journal_world and "seed 7" in info.value.given_world
    assert isinstance(info.value, milink.JournalError)
    assert journal.read_bytes() == before
    again = milink.LinkSession.resume_from(journal, lab)
    assert again.status()["state"] == "Replicating"
