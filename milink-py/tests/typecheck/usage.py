"""Typed use of the public API, checked with ``mypy --strict`` against the stubs."""

import asyncio
import datetime
import pathlib
from typing import Any, Awaitable, Dict, List, Mapping, Optional

import milink


def readiness() -> List[str]:
    facts = milink.tailspin_facts()
    report: milink.ReadinessReport = milink.assess(
        facts["instance"],
        facts["databases"],
        facts["target"],
        options=facts["options"],
        failback=True,
        link=["ToyStore"],
        now=datetime.datetime.now(datetime.timezone.utc),
    )
    verdict: str = report.verdicts["ToyStore"]
    html: str = report._repr_html_()
    rule_ids = [f["rule_id"] for f in report.findings if f["severity"] == "Blocker"]
    try:
        report.ensure_ready(["Customer360"])
    except milink.NotReadyError as e:
        blocked: milink.ReadinessReport = e.report
        rule_ids += [b["rule_id"] for b in blocked.blockers]
    return [verdict, html[:10], *rule_ids]


def migrate(journal: pathlib.Path) -> Optional[str]:
    lab = milink.Lab.tailspin(seed=7)
    targets: List[milink._milink.RedirectTarget] = []
    with lab.session(
        journal,
        redirect_hook=targets.append,
        on_progress=print,
        connection_string="Server=tcp:sql01,1433;Database=ToyStore;Integrated Security=True",
        public_endpoint=False,
    ) as session:
        session.record_assessment(milink.assess(**lab.facts()))
        session.start()
        try:
            session.failover("forced")
        except milink.RejectedError as e:
            reason: str = e.reason
            print(reason)
        try:
            session.failover()
        except milink.StepFailedError as e:
            code: str = e.code
            retryable: bool = e.retryable
            if retryable:
                session.resume()
            print(code)
        status = session.status()
        events: List[Dict[str, Any]] = session.events()
        print(len(events), status["journal_records"])
        health = session.health()
        if health is not None:
            print(health["instance"])
        session.watch(5.0)
        for note in status["loss_unverified"]:
            print(note)
        if status["split_brain_since"] is not None:
            print(status["split_brain_since"])
        redirect = status["redirect"]
        if redirect is not None:
            print(redirect["redirect_id"], redirect["host"], redirect["connection_string"])
    try:
        again = milink.LinkSession.resume_from(
            journal, lab, connection_string=None, public_endpoint=True, lock_dir=journal.parent
        )
        again.close()
    except milink.LinkLockedError as e:
        holder: Optional[int] = e.holder_pid
        print(e.link, e.lock_file, holder, e.holder_journal)
    except milink.TornJournalError as e:
        print(e.path, e.line, e.bytes)
        repaired = milink.LinkSession.resume_from(journal, lab, repair=True)
        dropped = repaired.repaired
        if dropped is not None:
            print(dropped["line"], dropped["bytes"])
        repaired.close()
    except milink.NotAJournalError as e:
        print(e.path)
    for target in targets:
        port: Optional[int] = target["port"]
        connection_string: str = target["connection_string"]
        notes: List[str] = target["notes"]
        redirect_id: str = target["redirect_id"]
        print(redirect_id)
        print(target["host"], port, len(connection_string), *notes)
    return targets[0]["primary"] if targets else None


async def migrate_async(session: milink.LinkSession) -> None:
    await session.start_async()
    await session.failover_async("planned")
    await session.cutover_async(drop_availability_group=True)


def errors(e: milink.MilinkError) -> bool:
    if isinstance(e, milink.TimeoutError):
        return e.waited_s > 0
    return e.transient or e.caller_error or e.remote


def argument_errors() -> List[BaseException]:
    caught: List[BaseException] = []
    try:
        milink.tcp_url("sql01", 70000)
    except milink.ArgumentRangeError as e:
        overflow: OverflowError = e
        invalid: milink.InvalidArgumentError = e
        caught += [overflow, invalid]
    try:
        milink.Lab.tailspin().session("y.journal", redirect_hook=print)
    except milink.ArgumentTypeError as e:
        wrong_type: TypeError = e
        caught.append(wrong_type)
    return caught


if __name__ == "__main__":
    print(readiness())
    asyncio.run(migrate_async(milink.Lab.tailspin().session("x.journal")))


def real_pair(served: milink.ServedLab, spec: Dict[str, Any]) -> Optional[str]:
    source: milink.SqlServer = milink.SqlServer.connect(served.connection_string, password=served.password)
    target = milink.ManagedInstance(
        served.resource_id,
        credential=milink.Credential.token(served.token),
        endpoint=served.arm_endpoint,
        trusted_ca=served.arm_ca_file,
        tsql_connection_string=served.instance_connection_string,
        tsql_password=served.instance_password,
    )
    facts = milink.gather(source, target, modules="off", failback=True)
    spec = milink.link_spec(source, target, "ToyStore", endpoint_host="sql01.corp", two_way=False) if not spec else spec
    report = milink.assess(**facts)
    with milink.LinkSession.create(source, target, spec, "pair.journal") as link:
        link.record_assessment(report)
        link.start()
    again = milink.LinkSession.resume_from("pair.journal", source, target)
    again.prepare()
    prepared: Awaitable[None] = again.prepare_async()
    again.failover("planned")
    lab_again = milink.LinkSession.resume_from("lab.journal", milink.Lab.tailspin())
    lab_again.close()
    version: str = source.version
    fqdn: Optional[str] = target.fqdn
    return f"{source.server_name} {version} {fqdn}"


async def real_pair_async(served: milink.ServedLab) -> Mapping[str, object]:
    source = await milink.SqlServer.connect_async(served.connection_string, password=served.password)
    target = await milink.ManagedInstance.connect_async(served.resource_id, credential=milink.Credential.environment())
    return await milink.gather_async(source, target, modules=["ToyStore"])


def connect_errors() -> List[milink.MilinkError]:
    caught: List[milink.MilinkError] = []
    try:
        milink.SqlServer.connect("")
    except milink.AuthenticationError as e:
        refused: milink.ConnectError = e
        caught.append(refused)
    except milink.ConnectError as e:
        caught.append(e)
    except milink.InvalidArgumentError as e:
        caught.append(e)
    with milink.Lab.tailspin().serve() as served:
        caught.append(milink.GatherError(served.resource_id))
    return caught


class _Token:
    token = "t"
    expires_on = 0


class _PyCredential:
    def get_token(self, *scopes: str) -> _Token:
        return _Token()


def python_credential() -> milink.Credential:
    return milink.Credential.from_python(_PyCredential())
