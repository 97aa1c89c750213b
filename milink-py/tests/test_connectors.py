"""The real connectors (SqlServer over TDS, ManagedInstance over ARM) against a lab served on
loopback: the same adapters a real pair gets, answered by the simulator's TDS and HTTPS servers
from the lab's world. Opt-in live tests read a real server when the environment names one."""

import asyncio
import os
import pathlib
import subprocess
import sys
import time
import types
from typing import Any, Dict, Iterator, List, Tuple

import pytest

import milink

Pair = Tuple[milink.Lab, milink.ServedLab, milink.SqlServer, milink.ManagedInstance]


def connect(served: milink.ServedLab, *, with_tsql: bool = True) -> Tuple[milink.SqlServer, milink.ManagedInstance]:
    source = milink.SqlServer.connect(served.connection_string, password=served.password)
    extra: Dict[str, Any] = {}
    if with_tsql:
        extra = dict(
            tsql_connection_string=served.instance_connection_string,
            tsql_password=served.instance_password,
        )
    target = milink.ManagedInstance(
        served.resource_id,
        credential=milink.Credential.token(served.token),
        endpoint=served.arm_endpoint,
        trusted_ca=served.arm_ca_file,
        **extra,
    )
    return source, target


@pytest.fixture
def pair() -> Iterator[Pair]:
    lab = milink.Lab.tailspin(seed=7)
    with lab.serve() as served:
        source, target = connect(served)
        yield lab, served, source, target


def other_lab(server_name: str) -> milink.Lab:
    """A lab like Tailspin's whose SQL Server has another name."""
    facts = milink.Lab.tailspin(seed=7).facts()
    facts["instance"]["server_name"] = server_name
    return milink.Lab.from_facts(facts["instance"], facts["databases"], facts["target"], "ToyStore")


def untimed(events: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [{k: v for k, v in e.items() if k != "at"} for e in events]


# --- connecting ---------------------------------------------------------------------------------


def test_a_served_pair_is_read_as_a_real_pair_is(pair: Pair) -> None:
    lab, served, source, target = pair
    assert source.server_name == lab.spec["source"]["server"] == "TailspinSql"
    assert source.version.startswith("16.0.")
    assert (source.host, source.port) == ("127.0.0.1", int(served.connection_string.split(",")[1].split(";")[0]))
    assert target.resource_id == served.resource_id == lab.spec["target"]["instance"]
    assert target.fqdn == lab.spec["target"]["fqdn"]
    assert target.endpoint == served.arm_endpoint


def test_no_secret_reaches_a_repr_or_a_message(pair: Pair) -> None:
    _, served, source, target = pair
    shown = [repr(served), repr(source), repr(target), served.connection_string]
    credential = milink.Credential.token(served.token)
    shown += [repr(credential), str(credential)]
    secret = milink.Credential.client_secret("tenant-1", "client-1", "Sup3r-S3cret!")
    shown += [repr(secret), str(secret)]
    with pytest.raises(milink.AuthenticationError) as refused:
        milink.SqlServer.connect(served.connection_string, password="Wr0ng-Passw0rd!")
    shown.append(str(refused.value))
    for text in shown:
        for value in (served.password, served.instance_password, served.token, "Sup3r-S3cret!", "Wr0ng-Passw0rd!"):
            assert value not in text, text
    assert "client-1" in str(secret) and "tenant-1" in str(secret)


@pytest.mark.parametrize("text", ["", "   ", ";;;", " ; ;"])
def test_a_connection_string_that_names_no_server_is_refused(text: str) -> None:
    with pytest.raises(milink.InvalidArgumentError, match="no server is named"):
        milink.SqlServer.connect(text, password="x")


@pytest.mark.parametrize(
    "text, reason",
    [
        ('Server="127.0.0.1', "malformed"),
        ("Server=tcp:127.0.0.1,1433;User ID=milink;Password=x;Encrypt=false", "in clear"),
        ("Server=tcp:127.0.0.1,1433;Integrated Security=SSPI", "integrated"),
        ("Server=tcp:127.0.0.1,1433;User ID=milink", "without a Password"),
    ],
)
def test_a_connection_string_milink_cannot_use_is_refused_before_connecting(text: str, reason: str) -> None:
    with pytest.raises(milink.InvalidArgumentError, match=reason) as refused:
        milink.SqlServer.connect(text)
    assert refused.value.caller_error and not refused.value.transient


def test_an_entra_login_takes_a_credential(pair: Pair) -> None:
    _, served, _, _ = pair
    entra = served.connection_string.replace("User ID=milink;", "") + ";Authentication=ActiveDirectoryDefault"
    with pytest.raises(milink.InvalidArgumentError, match="credential="):
        milink.SqlServer.connect(entra)
    source = milink.SqlServer.connect(entra, credential=milink.Credential.token("an-entra-access-token"))
    assert source.server_name == "TailspinSql"
    with pytest.raises(milink.InvalidArgumentError, match="exclude each other"):
        milink.SqlServer.connect(served.connection_string, password="x", credential=milink.Credential.token("t"))
    no_login = served.connection_string.replace("User ID=milink;", "")
    with pytest.raises(milink.InvalidArgumentError, match="no credentials"):
        milink.SqlServer.connect(no_login)


def test_a_password_given_twice_is_refused(pair: Pair) -> None:
    _, served, _, _ = pair
    both = served.connection_string + ";Password=" + served.password
    with pytest.raises(milink.InvalidArgumentError, match="give it once") as refused:
        milink.SqlServer.connect(both, password=served.password)
    assert served.password not in str(refused.value)


def test_a_wrong_password_is_an_authentication_error(pair: Pair) -> None:
    _, served, _, _ = pair
    with pytest.raises(milink.AuthenticationError, match="18456") as refused:
        milink.SqlServer.connect(served.connection_string, password="N0t-the-Passw0rd")
    assert isinstance(refused.value, milink.ConnectError)
    assert refused.value.caller_error and not refused.value.transient


def test_a_server_nobody_listens_on_is_a_connect_error(pair: Pair) -> None:
    _, served, _, _ = pair
    port = int(served.connection_string.split(",")[1].split(";")[0])
    served.stop()
    dead = f"Server=tcp:127.0.0.1,{port};User ID=milink;TrustServerCertificate=true;Connect Timeout=2;Connect Retry Count=0"
    with pytest.raises(milink.ConnectError) as failed:
        milink.SqlServer.connect(dead, password="x")
    assert not isinstance(failed.value, milink.AuthenticationError)
    assert failed.value.transient


def test_a_malformed_resource_id_is_a_name_error() -> None:
    with pytest.raises(milink.NameError, match="resource id"):
        milink.ManagedInstance("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/servers/x")


def test_a_refused_token_is_an_authentication_error(pair: Pair) -> None:
    _, served, _, _ = pair
    with pytest.raises(milink.AuthenticationError, match="401") as refused:
        milink.ManagedInstance(
            served.resource_id,
            credential=milink.Credential.token("not-the-token"),
            endpoint=served.arm_endpoint,
            trusted_ca=served.arm_ca_file,
        )
    assert "not-the-token" not in str(refused.value)


def test_an_untrusted_endpoint_certificate_is_a_connect_error(pair: Pair) -> None:
    _, served, _, _ = pair
    with pytest.raises(milink.ConnectError, match="certificate"):
        milink.ManagedInstance(
            served.resource_id, credential=milink.Credential.token(served.token), endpoint=served.arm_endpoint
        )


def test_the_ca_certificate_may_be_given_as_bytes(pair: Pair) -> None:
    _, served, _, _ = pair
    der = pathlib.Path(served.arm_ca_file).read_bytes()
    target = milink.ManagedInstance(
        served.resource_id, credential=milink.Credential.token(served.token), endpoint=served.arm_endpoint, trusted_ca=der
    )
    assert target.fqdn is not None


class PythonCredential:
    """A credential as azure.identity shapes it: get_token(*scopes) -> (token, expires_on)."""

    def __init__(self, token: str, fail: bool = False) -> None:
        self.token, self.fail = token, fail
        self.scopes: List[str] = []

    def get_token(self, *scopes: str) -> Any:
        self.scopes.extend(scopes)
        if self.fail:
            raise RuntimeError("sign in first: run az login")
        return types.SimpleNamespace(token=self.token, expires_on=int(time.time()) + 3600)


def test_a_python_credential_hands_out_the_tokens(pair: Pair) -> None:
    _, served, _, _ = pair
    python = PythonCredential(served.token)
    credential = milink.Credential.from_python(python)
    assert served.token not in repr(credential) and "PythonCredential" in repr(credential)
    target = milink.ManagedInstance(
        served.resource_id, credential=credential, endpoint=served.arm_endpoint, trusted_ca=served.arm_ca_file
    )
    assert target.fqdn is not None
    assert python.scopes and all(s.endswith("/.default") for s in python.scopes)
    with pytest.raises(milink.AuthenticationError, match="az login") as refused:
        milink.ManagedInstance(
            served.resource_id,
            credential=milink.Credential.from_python(PythonCredential(served.token, fail=True)),
            endpoint=served.arm_endpoint,
            trusted_ca=served.arm_ca_file,
        )
    assert served.token not in str(refused.value)
    with pytest.raises(milink.ArgumentTypeError, match="get_token"):
        milink.Credential.from_python(object())  # type: ignore[arg-type]


def test_an_endpoint_that_is_not_https_is_refused(pair: Pair) -> None:
    _, served, _, _ = pair
    with pytest.raises(milink.InvalidArgumentError, match="https://"):
        milink.ManagedInstance(
            served.resource_id,
            credential=milink.Credential.token(served.token),
            endpoint=served.arm_endpoint.replace("https://", "http://"),
        )


def test_a_half_set_environment_credential_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ["AZURE_FEDERATED_TOKEN_FILE", "AZURE_TENANT_ID", "IDENTITY_ENDPOINT", "MSI_ENDPOINT", "AZURE_CLIENT_ID"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "Sup3r-S3cret!")
    with pytest.raises(milink.InvalidArgumentError, match="AZURE_TENANT_ID") as refused:
        milink.ManagedInstance(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/managedInstances/mi",
            credential=milink.Credential.environment(),
        )
    assert "Sup3r-S3cret!" not in str(refused.value)


def test_connecting_is_awaitable(pair: Pair) -> None:
    _, served, _, _ = pair

    async def both() -> Tuple[milink.SqlServer, milink.ManagedInstance]:
        source = await milink.SqlServer.connect_async(served.connection_string, password=served.password)
        target = await milink.ManagedInstance.connect_async(
            served.resource_id,
            credential=milink.Credential.token(served.token),
            endpoint=served.arm_endpoint,
            trusted_ca=served.arm_ca_file,
        )
        return source, target

    async def refused() -> milink.SqlServer:
        return await milink.SqlServer.connect_async(served.connection_string, password="N0t-the-Passw0rd")

    source, target = asyncio.run(both())
    assert source.server_name == "TailspinSql" and target.fqdn is not None
    with pytest.raises(milink.AuthenticationError):
        asyncio.run(refused())


def test_the_certificates_directory_goes_with_the_served_lab(tmp_path: pathlib.Path) -> None:
    served = milink.Lab.tailspin(seed=7).serve()
    made = pathlib.Path(served.arm_ca_file).parent
    assert made.is_dir() and served.serving
    served.stop()
    assert not made.exists() and not served.serving
    # A directory given is the caller's: its files stay.
    with milink.Lab.tailspin(seed=7).serve(tmp_path) as kept:
        assert pathlib.Path(kept.sql_ca_file).parent == tmp_path
    assert any(tmp_path.iterdir())
    # A process that ends without stop() leaves no temporary directory behind.
    script = "import milink; s = milink.Lab.tailspin().serve(); print(s.arm_ca_file.parent)"
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    assert not pathlib.Path(out.stdout.strip()).exists()


# --- a link on the pair -------------------------------------------------------------------------


def test_a_link_on_a_served_pair_seeds_fails_over_and_fails_back(pair: Pair, tmp_path: pathlib.Path) -> None:
    lab, _, source, target = pair
    events: List[Dict[str, Any]] = []
    hooked: List[str] = []
    with milink.LinkSession.create(
        source,
        target,
        lab.spec,
        tmp_path / "toystore.journal",
        on_progress=events.append,
        redirect_hook=lambda t: hooked.append(t["primary"]),
    ) as link:
        link.record_assessment(milink.assess(**milink.gather(source, target, modules="off")))
        lab.start_workload(20.0)
        link.start()
        assert link.status()["phase"]["name"] == "Replicating"
        # Seeding was watched as it went, in the lab's virtual time.
        assert any("Seeding" in e.get("Progress", {}) for e in events)
        assert {"StateChanged": {"from": "Seeding", "to": "Replicating"}} in untimed(events)
        assert [e["at"] for e in events] == sorted(e["at"] for e in events)
        history = link.history()
        assert any(r["state"] == "Seeding" for r in history) and history[-1]["state"] == "Replicating"

        # The guards: a forced failover needs the link's name, and nothing moves without it.
        with pytest.raises(milink.RejectedError, match='acknowledge_data_loss="<the link'):
            link.failover("forced")
        assert link.status()["phase"]["name"] == "Replicating"

        lab.stop_workload()
        link.failover()
        phase = link.status()["phase"]
        assert (phase["name"], phase["primary"], phase["data_loss_possible"]) == ("FailedOver", "ManagedInstance", False)
        assert hooked == ["ManagedInstance"]
        parity = lab.parity()
        assert parity is not None and parity["all_match"] and parity["actual"] == "ManagedInstance"
        link.failback()
        assert link.status()["phase"]["name"] == "Replicating"
        assert hooked == ["ManagedInstance", "SqlServer"]


def test_a_spec_made_from_the_pair_is_the_labs_and_drives_a_link(pair: Pair, tmp_path: pathlib.Path) -> None:
    lab, _, source, target = pair
    host = lab.spec["source"]["endpoint_host"]
    assert milink.link_spec(source, target, "ToyStore", endpoint_host=host) == lab.spec
    spec = milink.link_spec(source, target, "ToyStore", link="DAG_Toys", two_way=False)
    assert spec["link"] == "DAG_Toys" and spec["failover_mode"] == "None"
    assert spec["source"]["endpoint_host"] == source.host  # by default, the host connected to
    with milink.LinkSession.create(source, target, spec, tmp_path / "toys.journal") as link:
        link.record_assessment([])
        link.start()
        assert link.status()["phase"]["name"] == "Replicating"
        with pytest.raises(milink.RejectedError):
            link.failback()  # a one-way link: nothing to fail back to
    with pytest.raises(milink.NameError):
        milink.link_spec(source, target, "Toy]Store" * 30)
    with pytest.raises(milink.ArgumentRangeError, match="endpoint_port|port"):
        milink.link_spec(source, target, "ToyStore", endpoint_port=70000)


def test_a_two_way_spec_is_refused_where_the_pair_cannot_fail_back() -> None:
    facts = milink.Lab.tailspin(seed=7).facts()
    facts["instance"]["version"] = "15.0.4355.3"  # SQL Server 2019
    lab = milink.Lab.from_facts(facts["instance"], facts["databases"], facts["target"], "ToyStore")
    with lab.serve() as served:
        source, target = connect(served, with_tsql=False)
        assert milink.link_spec(source, target, "ToyStore")["failover_mode"] == "None"
        with pytest.raises(milink.InvalidArgumentError, match="cannot fail back"):
            milink.link_spec(source, target, "ToyStore", two_way=True)


def test_the_spec_must_name_the_pair_given(pair: Pair, tmp_path: pathlib.Path) -> None:
    lab, _, source, target = pair
    journal = tmp_path / "j.journal"
    spec = lab.spec
    spec["source"]["server"] = "SomeOtherSql"
    with pytest.raises(milink.InvalidArgumentError, match="SomeOtherSql"):
        milink.LinkSession.create(source, target, spec, journal)
    spec = lab.spec
    spec["target"]["instance"] = spec["target"]["instance"].replace("tailspin-mi", "other-mi")
    with pytest.raises(milink.InvalidArgumentError, match="other-mi"):
        milink.LinkSession.create(source, target, spec, journal)
    assert not journal.exists()


def test_the_two_sides_must_be_of_one_served_world(pair: Pair, tmp_path: pathlib.Path) -> None:
    lab, _, source, _ = pair
    with milink.Lab.tailspin(seed=7).serve() as elsewhere:
        _, foreign_target = connect(elsewhere)
        with pytest.raises(milink.InvalidArgumentError, match="both sides of one world"):
            milink.LinkSession.create(source, foreign_target, lab.spec, tmp_path / "j.journal")
    assert not (tmp_path / "j.journal").exists()


def test_a_closed_session_resumes_from_its_journal_on_the_same_pair(pair: Pair, tmp_path: pathlib.Path) -> None:
    lab, served, source, target = pair
    journal = tmp_path / "toystore.journal"
    link = milink.LinkSession.create(source, target, lab.spec, journal)
    link.record_assessment([])
    link.start()
    link.close()
    # Another process would connect again; the same objects serve as well.
    source2, target2 = connect(served)
    with milink.LinkSession.resume_from(journal, source2, target2) as again:
        assert again.status()["phase"]["name"] == "Replicating"
        again.failover()
        assert again.status()["phase"]["primary"] == "ManagedInstance"
    with milink.LinkSession.resume_from(journal, source, target) as third:
        assert third.status()["phase"]["name"] == "FailedOver"
    # A notebook cell run again: the existing journal is resumed, not refused.
    with milink.LinkSession.create(source, target, lab.spec, journal, if_exists="resume") as fourth:
        assert fourth.status()["phase"]["name"] == "FailedOver"
    with pytest.raises(milink.JournalError, match="already exists"):
        milink.LinkSession.create(source, target, lab.spec, journal)


def test_a_second_session_on_the_link_is_refused(pair: Pair, tmp_path: pathlib.Path) -> None:
    lab, _, source, target = pair
    journal = tmp_path / "toystore.journal"
    with milink.LinkSession.create(source, target, lab.spec, journal):
        with pytest.raises(milink.JournalError, match="locked"):
            milink.LinkSession.resume_from(journal, source, target)
        with pytest.raises(milink.LinkLockedError):
            milink.LinkSession.create(source, target, lab.spec, tmp_path / "second.journal")
    assert not (tmp_path / "second.journal").exists()


def test_a_journal_is_never_resumed_on_another_pair(pair: Pair, tmp_path: pathlib.Path) -> None:
    lab, _, source, target = pair
    journal = tmp_path / "toystore.journal"
    with milink.LinkSession.create(source, target, lab.spec, journal) as link:
        link.record_assessment([])
        link.start()
    before = journal.read_bytes()
    with other_lab("OtherSql").serve() as other:
        other_source, other_target = connect(other)
        with pytest.raises(milink.WrongWorldError, match="OtherSql") as wrong:
            milink.LinkSession.resume_from(journal, other_source, other_target)
    assert "TailspinSql" in wrong.value.journal_world and "OtherSql" in wrong.value.given_world
    # Nor on the lab itself, in process: it is another world than the pair served on loopback.
    with pytest.raises(milink.WrongWorldError):
        milink.LinkSession.resume_from(journal, lab)
    assert journal.read_bytes() == before
    with milink.LinkSession.resume_from(journal, source, target) as link:
        assert link.status()["phase"]["name"] == "Replicating"


def test_a_lab_journal_is_never_resumed_on_a_served_pair(pair: Pair, tmp_path: pathlib.Path) -> None:
    lab, _, source, target = pair
    journal = tmp_path / "lab.journal"
    with lab.session(journal) as link:
        link.record_assessment([])
    before = journal.read_bytes()
    with pytest.raises(milink.WrongWorldError):
        milink.LinkSession.resume_from(journal, source, target)
    assert journal.read_bytes() == before


def test_resume_from_takes_a_lab_or_a_pair(pair: Pair, tmp_path: pathlib.Path) -> None:
    lab, _, source, _ = pair
    with pytest.raises(milink.ArgumentTypeError, match="SqlServer"):
        milink.LinkSession.resume_from(tmp_path / "j.journal", source)  # type: ignore[call-overload]
    with pytest.raises(milink.InvalidArgumentError, match="no target"):
        milink.LinkSession.resume_from(tmp_path / "j.journal", lab, source)  # type: ignore[call-overload]


def test_a_cutover_without_the_instance_tsql_endpoint_says_what_to_give(tmp_path: pathlib.Path) -> None:
    lab = milink.Lab.tailspin(seed=7)
    with lab.serve() as served:
        source, target = connect(served, with_tsql=False)
        with milink.LinkSession.create(source, target, lab.spec, tmp_path / "j.journal") as link:
            link.record_assessment([])
            link.start()
            link.failover()
            with pytest.raises(milink.StepFailedError, match="tsql_connection_string"):
                link.check_workload_quiet()


# --- gather -------------------------------------------------------------------------------------

# What ARM does not report about an instance (the lab knows it): it stays unknown. (Failover
# group membership is read from the resource group's instance failover groups.)
NOT_FROM_ARM = {"storage_used_gb", "tde_certificate_thumbprints"}


def test_gather_over_the_wire_reads_what_the_lab_knows_and_assess_agrees(pair: Pair) -> None:
    lab, _, source, target = pair
    gathered = milink.gather(source, target, modules="off", failback=True)
    known = lab.facts()
    assert set(gathered) == {"instance", "databases", "target", "options"}
    assert gathered["instance"] == known["instance"]
    assert gathered["databases"] == known["databases"]
    assert gathered["options"] == known["options"]  # the lab's virtual now; failback as asked
    for key, value in known["target"].items():
        if key in NOT_FROM_ARM:
            assert gathered["target"][key] is None, key
        else:
            assert gathered["target"][key] == value, key

    ours, labs = milink.assess(**gathered).to_dict(), milink.assess(**known).to_dict()
    assert ours["findings"] == labs["findings"]
    assert ours["databases"] == labs["databases"]
    unknown = [n for n in ours["not_evaluated"] if n not in labs["not_evaluated"]]
    assert sorted(n["rule_id"] for n in unknown) == ["Link.StorageFits"]
    assert all(n in ours["not_evaluated"] for n in labs["not_evaluated"])


def test_gather_is_awaitable(pair: Pair) -> None:
    _, _, source, target = pair

    async def gathered() -> Any:
        return await milink.gather_async(source, target, modules="off")

    facts = asyncio.run(gathered())
    assert [d["name"] for d in facts["databases"]] == ["ToyStore", "Customer360"]
    assert "failback" not in facts["options"]



def test_gather_of_a_pair_that_cannot_be_read_names_what_failed(pair: Pair) -> None:
    _, served, source, target = pair
    served.stop()
    with pytest.raises(milink.GatherError, match="TailspinSql") as failed:
        milink.gather(source, target, modules="off")
    assert "could not be read" in str(failed.value)

    async def gathered() -> Any:
        return await milink.gather_async(source, target)

    with pytest.raises(milink.GatherError):
        asyncio.run(gathered())


def test_gather_refuses_an_unknown_module_scan(pair: Pair) -> None:
    _, _, source, target = pair
    with pytest.raises(milink.InvalidArgumentError, match="modules"):
        milink.gather(source, target, modules="some")
    with pytest.raises(milink.NameError):
        milink.gather(source, target, modules=["Toy]Store" * 30])


# --- live: opt-in, read-only --------------------------------------------------------------------

LIVE_SQL = os.environ.get("MILINK_LIVE_SQLSERVER")
LIVE_MI = os.environ.get("MILINK_LIVE_MI")


@pytest.mark.skipif(not LIVE_SQL, reason="set MILINK_LIVE_SQLSERVER to a connection string")
def test_live_sql_server_connects() -> None:
    assert LIVE_SQL is not None
    source = milink.SqlServer.connect(LIVE_SQL)
    print(source)
    assert source.server_name and source.version


@pytest.mark.skipif(not LIVE_MI, reason="set MILINK_LIVE_MI to a managed instance's resource id")
def test_live_managed_instance_is_read() -> None:
    assert LIVE_MI is not None
    target = milink.ManagedInstance(LIVE_MI)
    print(target)
    assert target.fqdn


@pytest.mark.skipif(not (LIVE_SQL and LIVE_MI), reason="set MILINK_LIVE_SQLSERVER and MILINK_LIVE_MI")
def test_live_pair_is_gathered_and_assessed() -> None:
    assert LIVE_SQL is not None and LIVE_MI is not None
    facts = milink.gather(milink.SqlServer.connect(LIVE_SQL), milink.ManagedInstance(LIVE_MI))
    report = milink.assess(**facts)
    print(report.to_markdown())
    assert set(report.verdicts) == {d["name"] for d in facts["databases"]}


def test_the_workload_is_read_over_the_wire_before_a_failover(pair: Pair, tmp_path: pathlib.Path) -> None:
    lab, _, source, target = pair
    with milink.LinkSession.create(source, target, lab.spec, tmp_path / "j.journal") as link:
        link.record_assessment([])
        link.start()
        assert link.check_workload_quiet()["quiet"]
