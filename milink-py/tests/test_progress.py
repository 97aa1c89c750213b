import io
import pathlib
import sys

import pytest

import milink


def link(lab: milink.Lab, journal: pathlib.Path, **kwargs: object) -> None:
    session = lab.session(journal, **kwargs)  # type: ignore[arg-type]
    session.record_assessment([])
    session.start()
    session.close()


def test_plain_lines_follow_the_state_and_seeding(tmp_path: pathlib.Path) -> None:
    out = io.StringIO()
    link(milink.Lab.tailspin(), tmp_path / "j", on_progress=milink.progress.bar(stream=out, plain=True))
    lines = out.getvalue().splitlines()
    assert lines[0] == "link: Assessed"
    seeding = [int(l.split()[-1].rstrip("%")) for l in lines if l.startswith("link: Seeding ")]
    assert seeding and seeding == sorted(seeding) and seeding[-1] >= 90
    assert lines[-1] == "link: Replicating 100%"
    assert len(lines) == len(set(lines)), "one line per change"


def test_without_tqdm_the_bar_falls_back_to_lines(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    out = io.StringIO()
    link(milink.Lab.tailspin(), tmp_path / "j", on_progress=milink.progress.bar(stream=out))
    assert out.getvalue().splitlines()[-1] == "link: Replicating 100%"


def test_with_tqdm_a_bar_reaches_100(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("tqdm")
    out = io.StringIO()
    link(milink.Lab.tailspin(), tmp_path / "j", on_progress=milink.progress.bar(desc="ToyStore", stream=out))
    text = out.getvalue()
    assert "ToyStore: Replicating" in text and "100%" in text
