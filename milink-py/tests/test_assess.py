import copy
import datetime
import json
import sys
from typing import Any, Dict

import pytest

import milink


@pytest.fixture
def report() -> milink.ReadinessReport:
    return milink.assess(**milink.tailspin_facts())


def test_tailspin_facts_are_plain_data() -> None:
    facts = milink.tailspin_facts()
    assert set(facts) == {"instance", "databases", "target", "options"}
    assert [d["name"] for d in facts["databases"]] == ["ToyStore", "Customer360"]
    json.dumps(facts)  # nothing but dicts, lists, strings, numbers, booleans and None


def test_toystore_is_ready_and_customer360_is_not(report: milink.ReadinessReport) -> None:
    assert report.verdicts == {"ToyStore": "Ready", "Customer360": "NotReady"}
    assert report.instance_verdict in ("Ready", "ReadyWithWarnings")
    assert report.server == "TailspinSql"
    blockers = report.blockers
    assert blockers and all(b["severity"] == "Blocker" for b in blockers)
    assert {b["scope"]["Database"] for b in blockers} == {"Customer360"}
    assert "Link.RecoveryModel" in {b["rule_id"] for b in blockers}
    assert len(report.findings) > len(blockers)
    finding = report.findings[0]
    assert set(finding) == {"rule_id", "severity", "scope", "title", "evidence", "fix"}


def test_the_report_converts_to_dict_json_and_markdown(report: milink.ReadinessReport) -> None:
    as_dict: Dict[str, Any] = report.to_dict()
    assert as_dict == json.loads(report.to_json())
    assert as_dict["schema_version"] == 1
    assert milink.ReadinessReport.from_json(report.to_json()) == report
    assert "Customer360" in report.to_markdown()
    assert "Customer360" in repr(report)
    with pytest.raises(milink.InvalidArgumentError):
        milink.ReadinessReport.from_json('{"schema_version": 99}')


def test_keyword_arguments_override_the_options() -> None:
    facts = milink.tailspin_facts()
    only_toystore = milink.assess(**facts, link=["ToyStore"])
    assert only_toystore.verdicts == {"ToyStore": "Ready"}
    assert milink.assess(**facts, failback=False).to_dict()["failback"] is False
    assert milink.assess(**facts).to_dict()["failback"] is True
    when = datetime.datetime(2026, 11, 26, 12, 0, tzinfo=datetime.timezone.utc)
    assert milink.assess(**facts, now=when).to_dict()["generated_at"] == int(when.timestamp() * 1000)
    assert milink.assess(**facts, now=1_000).to_dict()["generated_at"] == 1_000
    # Without a time anywhere, the report is dated now, not at the epoch.
    del facts["options"]["now"]
    generated = milink.assess(**facts).to_dict()["generated_at"]
    assert abs(generated / 1000 - datetime.datetime.now().timestamp()) < 600
    # With no target, the target checks cannot run.
    no_target = milink.assess(facts["instance"], facts["databases"])
    assert no_target.to_dict()["target"] is None
    assert no_target.to_dict()["not_evaluated"]


def test_repr_html_is_the_report_with_names_escaped() -> None:
    facts = milink.tailspin_facts()
    facts["databases"][1]["name"] = "Cust<script>alert(1)</script>"
    report = milink.assess(**facts)
    html = report._repr_html_()
    # A fragment for a notebook cell, whose styles cannot restyle the notebook around it.
    assert html.startswith('<div class="milink-report">')
    assert "<body" not in html and "<html" not in html
    assert "body{" not in html and ".milink-report table{" in html
    assert "ToyStore" in html
    assert "Cust&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html
    # to_html is the standalone page with the same escaping.
    page = report.to_html()
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert "Cust&lt;script&gt;" in page and "<script>" not in page


def test_ensure_ready_raises_not_ready_with_the_report(report: milink.ReadinessReport) -> None:
    report.ensure_ready(["ToyStore"])
    report.ensure_ready()
    with pytest.raises(milink.NotReadyError) as info:
        report.ensure_ready(["ToyStore", "Customer360"])
    err = info.value
    assert isinstance(err, milink.MilinkError)
    assert err.report == report
    assert err.report.verdicts["Customer360"] == "NotReady"
    assert "Link.RecoveryModel (Customer360)" in str(err)
    assert err.caller_error and not err.transient and not err.remote
    with pytest.raises(milink.NotReadyError):
        report.ensure_ready(["NotAssessed"])
    with pytest.raises(milink.NameError):
        report.ensure_ready([""])


def test_to_dataframe_without_pandas_raises_import_error(
    report: milink.ReadinessReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        report.to_dataframe()


def test_to_dataframe_has_one_row_per_finding(report: milink.ReadinessReport) -> None:
    pytest.importorskip("pandas")
    frame = report.to_dataframe()
    assert list(frame.columns) == [
        "rule_id",
        "severity",
        "scope",
        "database",
        "title",
        "evidence",
        "evidence_details",
        "fix_kind",
        "fix",
    ]
    assert len(frame) == len(report.findings)
    blocked = frame[frame["severity"] == "Blocker"]
    assert set(blocked["database"]) == {"Customer360"}
    # Instance findings are labelled, never a missing database.
    assert not frame["database"].isna().any()
    instance = frame[frame["scope"] == "instance"]
    assert len(instance) == sum(1 for f in report.findings if f["scope"] == "Instance")
    assert set(instance["database"]) <= {"(instance)"}
    # The evidence's details and the kind of fix come along.
    for row, finding in zip(frame.to_dict("records"), report.findings):
        assert row["evidence_details"] == finding["evidence"]["details"]
        assert row["fix_kind"] in ("sql", "action", None)


def test_tailspin_facts_and_the_lab_are_one_world() -> None:
    # One Tailspin everywhere: the facts are the seed's world, the lab's own.
    for seed in (7, 3):
        facts = milink.tailspin_facts(seed)
        lab = milink.Lab.tailspin(seed).facts()
        assert json.dumps(facts, sort_keys=True) == json.dumps(lab, sort_keys=True)
        assert facts["instance"]["server_name"] == "TailspinSql"
        a = milink.assess(**facts).to_dict()
        b = milink.assess(**lab).to_dict()
        assert a["databases"] == b["databases"]
    assert milink.tailspin_facts()["instance"] == milink.Lab.tailspin().facts()["instance"]


def test_huge_sizes_are_a_verdict_not_a_crash() -> None:
    facts = milink.tailspin_facts()
    for d in facts["databases"]:
        d["data_size_mb"] = 2**64 - 1
        d["log_size_mb"] = 2**64 - 1
    report = milink.assess(**facts)  # once a PanicException that `except Exception` missed
    assert "Ready" not in report.verdicts.values()


def test_one_database_named_twice_is_refused_whatever_the_order() -> None:
    facts = milink.tailspin_facts()
    twice = copy.deepcopy(facts["databases"][0])
    twice["name"] = twice["name"].upper()
    twice["recovery_model"] = "SIMPLE"
    for databases in (facts["databases"] + [twice], [twice] + facts["databases"]):
        with pytest.raises(milink.InvalidArgumentError) as info:
            milink.assess(facts["instance"], databases, facts["target"], options=facts["options"])
        assert "are both named" in str(info.value) and "give each database once" in str(info.value)


@pytest.mark.parametrize("name", ["Toy\u200bStore", "\ufeffToyStore", "ToyStore\u202eerots"])
def test_a_name_with_an_invisible_character_is_refused(name: str) -> None:
    facts = milink.tailspin_facts()
    facts["databases"][0]["name"] = name
    with pytest.raises(milink.InvalidArgumentError) as info:
        milink.assess(**facts)
    assert "invisible formatting character" in str(info.value)


def test_now_true_is_not_a_time() -> None:
    # True is an int to Python, and was read as 1 ms after the epoch.
    with pytest.raises(milink.InvalidArgumentError) as info:
        milink.assess(**milink.tailspin_facts(), now=True)
    assert "a bool is not a time" in str(info.value)
