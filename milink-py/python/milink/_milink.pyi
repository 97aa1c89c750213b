"""Type stubs for the milink extension module."""

import datetime
from typing import Any, Dict, List, Literal, Mapping, Optional, Sequence, TypedDict, Union

__version__: str

# ----------------------------------------------------------------------------------- exceptions

class MilinkError(Exception):
    """The root of every error milink raises."""

    transient: bool
    """Retrying the same call (usually ``resume()``) may succeed."""
    caller_error: bool
    """The caller's input is wrong, or the link cannot do this now; nothing was changed."""
    remote: bool
    """SQL Server or Azure refused or failed."""

class NameError(MilinkError):  # noqa: A001 - shadows the builtin inside the milink namespace only
    """A name or value was refused by its validated type (the message names the rule)."""

class InvalidArgumentError(MilinkError):
    """An argument milink cannot use: facts or options not in the expected shape, an unknown kind."""

class NotReadyError(MilinkError):
    """The readiness report has blockers for what was asked; ``.report`` says which and how to fix them."""

    report: ReadinessReport

class GatherError(MilinkError):
    """Gathering readiness facts failed."""

class JournalError(MilinkError):
    """A journal could not be opened, read or written, or holds another link already."""

class SessionError(MilinkError):
    """A link operation failed."""

class RejectedError(SessionError):
    """The link refused the command in its current state; nothing was changed."""

    operation: str
    state: str
    input: str
    reason: str

class SpecError(SessionError):
    """The link spec is invalid."""

class StepFailedError(SessionError):
    """A step failed and the link is in Failed; fix the cause, then resume (retryable) or retry."""

    code: str
    """The vendor's identity of the error: ``sql:41962``, ``arm:409:...``, ``hook:redirect``, ..."""
    message: str
    retryable: bool

class TimeoutError(SessionError):  # noqa: A001 - shadows the builtin inside the milink namespace only
    """The operation did not finish within its timeout; the journal is intact: call resume."""

    operation: str
    waited_s: float
    state: str

class SplitBrainError(SessionError):
    """Both SQL Server and the managed instance report PRIMARY: call repair_split_brain."""

class StalledError(SessionError):
    """The operation stopped short of its goal with nothing left to do."""

    operation: str
    state: str

# ------------------------------------------------------------------------------------ readiness

Verdict = Literal["Ready", "ReadyWithWarnings", "NotReady"]
Severity = Literal["Info", "Warning", "Blocker"]

class Evidence(TypedDict):
    summary: str
    details: Dict[str, str]

class SqlFix(TypedDict):
    purpose: str
    sql: str
    note: Optional[str]

class Finding(TypedDict):
    rule_id: str
    severity: Severity
    scope: Union[Literal["Instance"], Dict[Literal["Database"], str]]
    """``"Instance"`` or ``{"Database": name}``."""
    title: str
    evidence: Evidence
    fix: Union[Literal["None"], Dict[Literal["Sql"], SqlFix], Dict[Literal["Action"], str]]
    """``{"Sql": {...}}``, ``{"Action": "..."}`` or ``"None"``."""

Facts = Mapping[str, Any]
"""Facts in the serde shape of the core's ``InstanceFacts`` / ``DatabaseFacts`` / ``TargetFacts``."""

class TailspinFacts(TypedDict):
    instance: Dict[str, Any]
    databases: List[Dict[str, Any]]
    target: Dict[str, Any]
    options: Dict[str, Any]

class ReadinessReport:
    """The readiness report: verdicts, findings with evidence and fixes, the SKU recommendation."""

    @property
    def server(self) -> str:
        """The SQL Server instance assessed."""
    @property
    def instance_verdict(self) -> Verdict:
        """The instance's verdict."""
    @property
    def verdicts(self) -> Dict[str, Verdict]:
        """Each assessed database's verdict, by name."""
    @property
    def findings(self) -> List[Finding]:
        """Every finding."""
    @property
    def blockers(self) -> List[Finding]:
        """The blocking findings."""
    def to_dict(self) -> Dict[str, Any]:
        """The whole report as a dict (the shape of ``to_json``)."""
    def to_json(self) -> str:
        """Pretty JSON with a schema version."""
    def to_markdown(self) -> str:
        """Markdown."""
    def to_html(self) -> str:
        """A self-contained HTML page."""
    def _repr_html_(self) -> str:
        """The HTML notebooks show."""
    def to_dataframe(self) -> Any:
        """The findings as a ``pandas.DataFrame`` (columns rule_id, severity, database, title,
        evidence, fix); raises ImportError when pandas is not installed."""
    def ensure_ready(self, databases: Sequence[str] = ...) -> None:
        """Raises NotReadyError unless the instance and every one of ``databases`` can be linked."""
    @staticmethod
    def from_json(text: str) -> ReadinessReport:
        """Reads a report written by ``to_json``."""
    def __eq__(self, other: object) -> bool: ...

def assess(
    instance: Facts,
    databases: Sequence[Facts],
    target: Optional[Facts] = None,
    *,
    options: Optional[Mapping[str, Any]] = None,
    failback: Optional[bool] = None,
    link: Optional[Sequence[str]] = None,
    now: Union[datetime.datetime, int, None] = None,
) -> ReadinessReport:
    """Assesses the readiness of ``databases`` of ``instance`` for a link to ``target``.

    ``options`` is an ``AssessOptions`` dict; ``failback``, ``link`` (the databases to link) and
    ``now`` (a datetime or milliseconds since the epoch; default ``options["now"]``, else the
    current time) override it. Raises InvalidArgumentError for facts of the wrong shape.
    """

def tailspin_facts() -> TailspinFacts:
    """The Tailspin lab's facts, ready for ``assess(**tailspin_facts())``."""

# -------------------------------------------------------------------------------- T-SQL builders

def quote_ident(value: str) -> str:
    """Bracket-quotes an identifier: ``[`` + value with ``]`` doubled + ``]``."""

def quote_nstring(value: str) -> str:
    """A Unicode string literal: ``N'`` + value with ``'`` doubled + ``'``."""

def binary_literal(value: bytes) -> str:
    """A binary literal: ``0x`` followed by two upper-case hex digits per byte."""

def tcp_url(host: str, port: int = 5022) -> str:
    """``TCP://host:port`` for an IP address or DNS host name; raises NameError otherwise."""

def create_availability_group_sql(
    ag: str,
    database: Optional[str],
    replica: str,
    endpoint_url: str,
    cluster_type_none: bool = True,
) -> str:
    """``CREATE AVAILABILITY GROUP`` on SQL Server (``database=None``: MI is initial primary)."""

def create_distributed_availability_group_sql(
    dag: str,
    sql_ag: str,
    sql_listener_url: str,
    mi_ag: str,
    mi_fqdn: str,
    mi_database: Optional[str] = None,
    session_timeout_s: int = 20,
) -> str:
    """``CREATE AVAILABILITY GROUP … WITH (DISTRIBUTED)``: the link, on SQL Server."""

def failover_dag_sql(dag: str) -> str:
    """Planned failover of the link, run on the current primary."""

def drop_availability_group_sql(name: str) -> str:
    """Drops an availability group if it exists."""

def drop_distributed_availability_group_sql(name: str) -> str:
    """Drops the distributed availability group (the link) if it exists."""
