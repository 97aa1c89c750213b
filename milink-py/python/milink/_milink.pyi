"""Type stubs for the milink extension module."""

import datetime
import os
import pathlib
from types import TracebackType
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    List,
    Literal,
    Mapping,
    Optional,
    Protocol,
    Sequence,
    Type,
    TypedDict,
    Union,
    final,
    overload,
    type_check_only,
)

__version__: str
__all__ = [
    "__version__",
    "MilinkError",
    "NameError",
    "InvalidArgumentError",
    "ArgumentTypeError",
    "ArgumentRangeError",
    "NotReadyError",
    "GatherError",
    "ConnectError",
    "AuthenticationError",
    "JournalError",
    "TornJournalError",
    "WrongWorldError",
    "NotAJournalError",
    "SessionError",
    "RejectedError",
    "SpecError",
    "StepFailedError",
    "TimeoutError",
    "SplitBrainError",
    "StalledError",
    "LinkLockedError",
    "ReadinessReport",
    "LinkSession",
    "Lab",
    "ServedLab",
    "Credential",
    "SqlServer",
    "ManagedInstance",
    "gather",
    "gather_async",
    "link_spec",
    "_sleep",
    "_panic",
    "assess",
    "tailspin_facts",
    "quote_ident",
    "quote_nstring",
    "binary_literal",
    "tcp_url",
    "create_availability_group_sql",
    "create_distributed_availability_group_sql",
    "failover_dag_sql",
    "drop_availability_group_sql",
    "drop_distributed_availability_group_sql",
]

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
    """An argument milink cannot use: facts or options not in the expected shape, an unknown kind.

    Facts and options of the wrong shape are named by their field's path (and, in a list of
    database facts, the database), e.g. ``database facts at [1].compatibility_level (database
    Customer360): invalid type: string "8", expected u16``."""

class ArgumentTypeError(InvalidArgumentError, TypeError):
    """An argument of the wrong type, named in the message: a redirect hook or progress callback
    that is not callable or is an async function, a string where an integer is due. Also a
    builtin ``TypeError``."""

class ArgumentRangeError(InvalidArgumentError, OverflowError):
    """An integer argument outside the range of its type (``port``, ``seed``,
    ``session_timeout_s``); the message names the argument and the range. Also a builtin
    ``OverflowError``."""

class NotReadyError(MilinkError):
    """The readiness report has blockers for what was asked; ``.report`` says which and how to fix them."""

    report: ReadinessReport

class GatherError(MilinkError):
    """Gathering readiness facts failed; the message names what could not be read (the probe,
    or the instance's ARM read)."""

class ConnectError(MilinkError):
    """A server could not be reached, or refused the connection (network, TLS, an untrusted
    certificate); ``.transient`` says whether trying again may help."""

class AuthenticationError(ConnectError):
    """The login or the token was refused (a wrong password, an expired or foreign token), or no
    credential could be built. Never shows the secret."""

class JournalError(MilinkError):
    """A journal could not be opened, read or written, or holds another link already."""

class TornJournalError(JournalError):
    """The journal's last record is torn, left by an interrupted write; the input it held was
    never acted on. ``LinkSession.resume_from(journal, lab, repair=True)`` drops it and resumes.
    A caller error: milink never drops it on its own."""

    path: str
    """The journal file."""
    line: int
    """The 1-based line of the torn record."""
    bytes: int
    """Its length in bytes."""

class WrongWorldError(JournalError):
    """The journal was created on another pair (or another lab) than the one given: resuming it
    would apply its link to the wrong servers. Nothing was read or written."""

    journal_world: str
    given_world: str

class NotAJournalError(JournalError):
    """The file is not a milink journal: its first line is not a journal record (nor what an
    interrupted write of one leaves), or it is not a regular file (a FIFO, a device, a
    directory), or it is larger than any journal. It is left as it is; no repair is offered,
    with or without ``repair=True``."""

    path: str
    """The file."""

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
    """The vendor's identity of the error: ``sql:41962``, ``arm:409:...``, ``hook``, ..."""
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

class LinkLockedError(SessionError):
    """Another session, in this process or another, drives the link: stop it (or let it finish),
    then resume the link from its journal. A caller error, not transient."""

    link: str
    """The link's name."""
    lock_file: str
    """The lock file the other session holds (named after the managed instance and the link)."""
    holder_pid: Optional[int]
    """The other session's process id, or None when the lock file cannot be read."""
    holder_journal: Optional[str]
    """The other session's journal file, or None (a journal in memory, or unknown)."""

# ------------------------------------------------------------------------------------ readiness

_Verdict = Literal["Ready", "ReadyWithWarnings", "NotReady"]
_Severity = Literal["Info", "Warning", "Blocker"]

@type_check_only
class Evidence(TypedDict):
    summary: str
    details: Dict[str, str]

@type_check_only
class SqlFix(TypedDict):
    purpose: str
    sql: str
    note: Optional[str]

@type_check_only
class Finding(TypedDict):
    rule_id: str
    severity: _Severity
    scope: Union[Literal["Instance"], Dict[Literal["Database"], str]]
    """``"Instance"`` or ``{"Database": name}``."""
    title: str
    evidence: Evidence
    fix: Union[Literal["None"], Dict[Literal["Sql"], SqlFix], Dict[Literal["Action"], str]]
    """``{"Sql": {...}}``, ``{"Action": "..."}`` or ``"None"``."""

_Facts = Mapping[str, Any]
"""_Facts in the serde shape of the core's ``InstanceFacts`` / ``DatabaseFacts`` / ``TargetFacts``."""

@type_check_only
class TailspinFacts(TypedDict):
    instance: Dict[str, Any]
    databases: List[Dict[str, Any]]
    target: Dict[str, Any]
    options: Dict[str, Any]

@final
class ReadinessReport:
    """The readiness report: verdicts, findings with evidence and fixes, the SKU recommendation."""

    @property
    def server(self) -> str:
        """The SQL Server instance assessed."""
    @property
    def instance_verdict(self) -> _Verdict:
        """The instance's verdict."""
    @property
    def verdicts(self) -> Dict[str, _Verdict]:
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
        """The HTML notebooks show: the report as a ``<div>`` whose styles apply to it only."""
    def to_dataframe(self) -> Any:
        """The findings as a ``pandas.DataFrame`` (columns rule_id, severity, scope
        (``"instance"`` or ``"database"``), database (``"(instance)"`` for an instance finding),
        title, evidence, evidence_details (a dict), fix_kind (``"sql"``, ``"action"`` or None),
        fix); raises ImportError when pandas is not installed."""
    def ensure_ready(self, databases: Sequence[str] = ...) -> None:
        """Raises NotReadyError unless the instance and every one of ``databases`` can be linked."""
    @staticmethod
    def from_json(text: str) -> ReadinessReport:
        """Reads a report written by ``to_json``."""
    def __eq__(self, other: object, /) -> bool: ...

def assess(
    instance: _Facts,
    databases: Sequence[_Facts],
    target: Optional[_Facts] = None,
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

def tailspin_facts(seed: int = 7) -> TailspinFacts:
    """The Tailspin lab's facts for ``seed``, ready for ``assess(**tailspin_facts())``.

    The same world as ``Lab.tailspin(seed).facts()`` (same default seed), so both give the same
    facts and the same verdicts."""

# ----------------------------------------------------------------------------------- connectors

@type_check_only
class _AccessToken(Protocol):
    @property
    def token(self) -> str: ...
    @property
    def expires_on(self) -> int: ...

@type_check_only
class _PythonCredential(Protocol):
    def get_token(self, *scopes: str) -> _AccessToken: ...

@final
class Credential:
    """Where the managed instance's ARM bearer tokens come from: the same kinds as the Rust
    library. Its repr and str name the kind and the ids, never a secret."""

    @staticmethod
    def environment() -> Credential:
        """The credential the environment names (workload identity, client secret, managed
        identity, else the Azure CLI); a combination set in part raises InvalidArgumentError
        naming what is missing. The default."""
    @staticmethod
    def token(token: str) -> Credential:
        """One bearer token for the management endpoint, used as it is."""
    @staticmethod
    def from_python(credential: _PythonCredential) -> Credential:
        """Any object with ``get_token(*scopes)`` returning an object with ``token`` and
        ``expires_on`` (seconds since the Unix epoch), such as
        ``azure.identity.DefaultAzureCredential()``; called on a worker thread when a token is
        due. An object without ``get_token`` raises ArgumentTypeError."""
    @staticmethod
    def azure_cli(*, tenant_id: Optional[str] = None) -> Credential:
        """The account the Azure CLI is signed in with (``az login``)."""
    @staticmethod
    def managed_identity(*, client_id: Optional[str] = None) -> Credential:
        """The host's managed identity: system-assigned, or the user-assigned ``client_id``."""
    @staticmethod
    def client_secret(tenant_id: str, client_id: str, secret: str) -> Credential:
        """A service principal signing in with a client secret."""
    @staticmethod
    def workload_identity(tenant_id: str, client_id: str, token_file: _JournalPath) -> Credential:
        """Workload identity: the federated token in ``token_file`` exchanged for the app's."""

@final
class SqlServer:
    """A SQL Server reached over TDS (TLS always), shared by ``gather`` and the sessions given it."""

    @staticmethod
    def connect(
        connection_string: str,
        *,
        password: Optional[str] = None,
        credential: Optional[Credential] = None,
        trusted_ca: Optional[_JournalPath] = None,
        master_key_password: Optional[str] = None,
        application_name: Optional[str] = None,
    ) -> SqlServer:
        """Connects and reads the server's name and build. ``password`` is the SQL login's when
        the string has none; ``credential`` logs in with a Microsoft Entra token; ``trusted_ca``
        a CA certificate file to trust; ``master_key_password`` the database master key's, if
        milink creates one (generated when not given).

        A string that does not parse, names no server or is empty (``""``, blanks, ``";;"``)
        raises InvalidArgumentError; an unreachable server ConnectError; a refused login
        AuthenticationError. No secret appears in a repr, a message or the journal."""
    @staticmethod
    def connect_async(
        connection_string: str,
        *,
        password: Optional[str] = None,
        credential: Optional[Credential] = None,
        trusted_ca: Optional[_JournalPath] = None,
        master_key_password: Optional[str] = None,
        application_name: Optional[str] = None,
    ) -> Awaitable[SqlServer]: ...
    @property
    def server_name(self) -> str:
        """``@@SERVERNAME``, as read at connect."""
    @property
    def version(self) -> str:
        """The build (``SERVERPROPERTY('ProductVersion')``)."""
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...

@final
class ManagedInstance:
    """An Azure SQL Managed Instance through Azure Resource Manager, and optionally its T-SQL
    endpoint (first full backups, which a cutover waits for; client sessions)."""

    def __new__(
        cls,
        resource_id: str,
        *,
        credential: Optional[Credential] = None,
        endpoint: Optional[str] = None,
        trusted_ca: Union[_JournalPath, bytes, None] = None,
        tsql_connection_string: Optional[str] = None,
        tsql_password: Optional[str] = None,
    ) -> ManagedInstance:
        """Reads the instance once through ARM (blocking, GIL released). A malformed id raises
        NameError, a refused token AuthenticationError, an unreadable instance ConnectError."""
    @staticmethod
    def connect_async(
        resource_id: str,
        *,
        credential: Optional[Credential] = None,
        endpoint: Optional[str] = None,
        trusted_ca: Union[_JournalPath, bytes, None] = None,
        tsql_connection_string: Optional[str] = None,
        tsql_password: Optional[str] = None,
    ) -> Awaitable[ManagedInstance]: ...
    @property
    def resource_id(self) -> str: ...
    @property
    def fqdn(self) -> Optional[str]:
        """``fullyQualifiedDomainName``, as read."""
    @property
    def endpoint(self) -> str:
        """The management endpoint."""

_ModuleScan = Union[Literal["all", "off"], Sequence[str]]

def gather(
    source: SqlServer,
    target: ManagedInstance,
    *,
    modules: Optional[_ModuleScan] = None,
    failback: Optional[bool] = None,
) -> TailspinFacts:
    """The readiness facts of a real pair, for ``assess(**gather(source, target))``: SQL
    Server's instance and databases (the ten read-only probes, then module text of ``modules``:
    ``"all"`` by default, ``"off"``, or a list of databases) and the instance as ARM reports it.
    ``options["now"]`` is when it was read (the lab's virtual now on a served lab). Raises
    GatherError naming what could not be read; module text that could not be read is a
    ``UserWarning``."""

def gather_async(
    source: SqlServer,
    target: ManagedInstance,
    *,
    modules: Optional[_ModuleScan] = None,
    failback: Optional[bool] = None,
) -> Awaitable[TailspinFacts]: ...

def link_spec(
    source: SqlServer,
    target: ManagedInstance,
    database: str,
    *,
    link: Optional[str] = None,
    two_way: Optional[bool] = None,
    endpoint_host: Optional[str] = None,
    endpoint_port: int = 5022,
) -> Dict[str, Any]:
    """A link spec for ``database`` of the pair, for ``LinkSession.create``: the documented
    names (``DAG_<db>`` unless ``link`` is given, ``AG_<db>``, ``AG_<db>_MI``,
    ``Cert_<server>_endpoint`` valid for a year), SQL Server's name and build and the instance's
    FQDN and update policy as read. Two-way when the build and the update policy allow a
    failback (``two_way=False`` for a one-way link; ``True`` where it cannot be raises
    InvalidArgumentError). ``endpoint_host`` is the address the instance reaches SQL Server's
    mirroring endpoint at: by default the host ``source`` was connected to."""

@final
class ServedLab:
    """A lab's world served on loopback (``Lab.serve()``): SQL Server and the instance's T-SQL
    endpoint over TDS (the SQL login ``milink`` with ``password``, or any Microsoft Entra access
    token), its ARM API over HTTPS (``token`` only). A session on a pair it serves runs in the lab's
    virtual time."""

    @property
    def connection_string(self) -> str:
        """SQL Server's connection string, its certificate trusted, without the password."""
    @property
    def password(self) -> str: ...
    @property
    def instance_connection_string(self) -> str: ...
    @property
    def instance_password(self) -> str: ...
    @property
    def resource_id(self) -> str: ...
    @property
    def arm_endpoint(self) -> str: ...
    @property
    def token(self) -> str: ...
    @property
    def arm_ca_file(self) -> pathlib.Path:
        """The ARM endpoint's certificate (DER), for ``ManagedInstance(..., trusted_ca=...)``."""
    @property
    def sql_ca_file(self) -> pathlib.Path: ...
    @property
    def instance_ca_file(self) -> pathlib.Path: ...
    @property
    def serving(self) -> bool: ...
    def stop(self) -> None:
        """Stops the servers and removes the certificates' directory if it was made for them."""
    def __enter__(self) -> ServedLab: ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...

# ------------------------------------------------------------------------------------- sessions

_Side = Literal["SqlServer", "ManagedInstance"]

@type_check_only
class RedirectTarget(TypedDict):
    """What the redirect hook is called with after a role change: where the workload must
    connect now.

    The hook is called at least once per redirect, not exactly once: again after it failed and
    ``resume()`` is called, and again when the orchestrator crashed after the hook returned and
    before its success was journaled. Every call for one redirect carries the same
    ``redirect_id``: a hook whose action must not repeat records the id it last applied and
    returns at once for a repeat.

    ``connection_string`` is the real text, password included when the string has one: the hook
    is the application's own code and hands it to the workload. milink never logs or journals it.
    """

    link: str
    redirect_id: str
    """``"<link>/redirect/<n>"``: the same for every call of one redirect (retries, resumes,
    crashes), another for the next redirect."""
    primary: _Side
    """The side that now accepts writes: point the workload there."""
    host: str
    """The managed instance's VNet-local FQDN, its public endpoint with ``public_endpoint=True``,
    or SQL Server's host after a failback."""
    port: Optional[int]
    """1433 (VNet-local) or 3342 (public) on the managed instance; SQL Server's port, or None when
    its connection string names an instance without one, or no TCP at all."""
    connection_string: str
    """The workload's connection string derived from the one given for SQL Server (``Data
    Source`` replaced, host-bound keys removed, the rest kept); the original after a failback."""
    notes: List[str]
    """What changed beyond the host, and what to check (key names and reasons, never values)."""

@type_check_only
class RedirectStatus(TypedDict):
    """The last redirect, as ``status()["redirect"]`` shows it: the password is ``***``."""

    redirect_id: str
    side: _Side
    host: str
    port: Optional[int]
    connection_string: str
    notes: List[str]

@type_check_only
class StepErrorInfo(TypedDict):
    code: str
    message: str
    retryable: bool

@type_check_only
class DataLossReport(TypedDict):
    """Evidence that a role change or the link's removal lost transactions: ``side`` (the old
    primary) ended its log at ``end_of_log``, but the other side hardened only ``hardened``."""

    database: str
    side: _Side
    end_of_log: str
    hardened: Optional[str]
    seen_at: int
    context: str

@type_check_only
class SessionStatus(TypedDict):
    link: str
    state: str
    """The state's name, e.g. ``"Seeding"``, ``"Replicating"``, ``"FailedOver"``."""
    detail: str
    phase: Dict[str, Any]
    """The state as data, always a dict with its ``name``: ``{"name": "Replicating"}``, or e.g.
    ``{"name": "FailedOver", "primary": "ManagedInstance", "data_loss_possible": False}``."""
    terminal: bool
    in_flight: List[str]
    deadline: Optional[int]
    last_error: Optional[StepErrorInfo]
    operation: Optional[str]
    progress: Dict[str, Any]
    """Where the operation stands: ``{"status": "running", "operation": "Failover"}``; ``status`` is
    ``idle``, ``running``, ``reached``, ``failed`` (with ``error`` and ``retryable``), ``stalled``
    or ``split_brain``."""
    primary: str
    """The side that accepts writes now: ``"SqlServer"`` or ``"ManagedInstance"``."""
    data_loss_possible: bool
    """After a forced failover or a repaired split brain: transactions may have been lost."""
    journal_path: Optional[str]
    journal_records: int
    redirect: Optional[RedirectStatus]
    """Where the workload was last told to connect (in this process), or None."""
    data_loss: List[DataLossReport]
    """Transactions a role change or the link's removal lost, as evidence; empty when none."""
    loss_unverified: List[str]
    """Checks of lost transactions that could not be made (a side could not be read), as notes."""
    split_brain_since: Optional[int]
    """While both sides report PRIMARY: when milink first saw it (ms since the epoch)."""
    connection_warnings: List[str]
    """What the SQL Server connection must be known for, e.g. a TLS certificate that is not
    verified because ``TrustServerCertificate`` was asked for; empty when nothing is amiss."""

_SessionEvent = Dict[str, Any]
"""The event's kind as its key (``StateChanged``, ``StepStarted``, ``StepRetrying``,
``StepFinished``, ``Progress``, or ``Missed`` for events not kept), mapped to its fields, and
``"at"``: when it was sent, in milliseconds since the Unix epoch (virtual on the lab)."""

_RedirectHook = Callable[[RedirectTarget], object]
"""A plain function, called in place and to completion; never an ``async def`` (refused with
``ArgumentTypeError``: milink awaits nothing)."""
_ProgressCallback = Callable[[_SessionEvent], object]
"""A plain function, called in place with each event while an operation runs."""

@type_check_only
class TornRecord(TypedDict):
    """The torn last record a repair dropped from a journal."""

    line: int
    bytes: int
_JournalPath = Union[str, "os.PathLike[str]"]

@final
class Lab:
    """A simulated SQL Server and managed instance sharing a virtual clock, and the link spec
    for one of its databases. Sessions on a lab run in virtual time."""

    @staticmethod
    def tailspin(seed: int = 7) -> Lab:
        """The Tailspin lab: TailspinSql with ToyStore (ready) and Customer360 (not ready)."""
    @staticmethod
    def from_facts(
        instance: _Facts, databases: Sequence[_Facts], target: _Facts, database: str, *, seed: int = 7
    ) -> Lab:
        """A lab built from an assessment's facts, to rehearse linking ``database``."""
    @property
    def database(self) -> str:
        """The database the lab's link carries."""
    @property
    def link(self) -> str:
        """The link's name."""
    @property
    def spec(self) -> Dict[str, Any]:
        """The link spec sessions on this lab start from."""
    @property
    def now(self) -> int:
        """Virtual now, in milliseconds since the Unix epoch."""
    def facts(self) -> TailspinFacts:
        """The world's facts now, for ``assess(**lab.facts())``."""
    def start_workload(
        self,
        transactions_per_second: float = 20.0,
        side: _Side = "SqlServer",
        database: Optional[str] = None,
    ) -> None:
        """Starts the lab's application writing to ``database`` (the link's first by default) on
        ``side``; it writes while virtual time passes (``run_for``, or a session waiting)."""
    def stop_workload(self) -> Dict[str, Any]:
        """Stops the application; returns its counters (``committed``, ``rows``, ``refused``...)."""
    def workload_stats(self) -> Dict[str, Any]:
        """The application's counters so far."""
    def run_for(self, seconds: float) -> None:
        """Lets ``seconds`` of virtual time pass (at most 30 days): seeding, replication and the
        workload move on."""
    def parity(self, database: Optional[str] = None) -> Optional[Dict[str, Any]]:
        """Row validation: every table's rows and checksum on SQL Server against the managed
        instance (``{"database", "expected", "actual", "tables", "all_match"}``); None while a
        side has no copy."""
    def serve(self, directory: Optional[_JournalPath] = None) -> ServedLab:
        """Serves this lab's world on loopback for the real connectors (see ``ServedLab``); the
        certificates go into ``directory`` (default: a temporary directory)."""
    def session(
        self,
        journal: _JournalPath,
        *,
        redirect_hook: Optional[_RedirectHook] = None,
        on_progress: Optional[_ProgressCallback] = None,
        options: Optional[Mapping[str, Any]] = None,
        connection_string: Optional[str] = None,
        public_endpoint: bool = False,
        lock_dir: Optional[_JournalPath] = None,
        if_exists: Literal["error", "resume"] = "error",
        progress_detail: Literal["phases", "steps"] = "phases",
    ) -> LinkSession:
        """A new link session journaled to ``journal`` (which must not exist yet, unless
        ``if_exists="resume"``: then the link it holds is reopened, as ``resume_from`` does).

        ``redirect_hook`` is called after each role change, at least once per redirect (see
        ``RedirectTarget.redirect_id``), with a ``RedirectTarget``, its connection string
        derived from ``connection_string`` (the workload's SQL Server connection string): pointed
        at the managed instance's VNet-local endpoint on port 1433, or with
        ``public_endpoint=True`` its public endpoint on port 3342, after a failover; the original
        after a failback. Authentication is kept as written. A connection string that does not
        parse, names no server, or is empty (``""``, blanks, ``";;"``) raises
        InvalidArgumentError and nothing is created.

        The hook is called in place, on the thread that runs the operation, and must finish its
        work before it returns: the redirect is journaled as done when it returns. It must be a
        plain function. An ``async def`` hook (or an object whose ``__call__`` is one) is refused
        here with ``ArgumentTypeError``, because milink never awaits what a hook returns and the
        workload would silently not be redirected; run the coroutine to completion inside a plain
        function instead (``asyncio.run(...)``, or from a hook of an ``_async`` operation
        ``asyncio.run_coroutine_threadsafe(coro, loop).result()``). A hook that returns an
        awaitable anyway fails the step (``StepFailedError``, ``code == "hook"``, retryable).

        ``on_progress`` is called in place with each event while the operation runs. An
        ``Exception`` it raises goes to ``sys.unraisablehook``; ``KeyboardInterrupt`` or
        ``SystemExit`` stops the operation as Ctrl-C does (the journal stays resumable).
        ``redirect_hook`` and ``on_progress`` that are not callable, or are async functions, raise
        ``ArgumentTypeError`` and nothing is created. Neither may start an operation on the
        session it serves (it would wait for itself): that raises ``SessionError`` at once;
        ``status()`` and ``health()`` may be read.

        One session per link: the session locks a file named after the link in ``lock_dir``
        (default: the journal's directory) until it is closed; a second session on the same
        link, in this process or another, raises LinkLockedError and leaves no journal.
        """

@final
class LinkSession:
    """One link, driven. Blocking methods release the GIL and stop on Ctrl-C with the journal
    resumable; each has an ``_async`` twin returning an awaitable."""

    @staticmethod
    def create(
        source: SqlServer,
        target: ManagedInstance,
        spec: Mapping[str, Any],
        journal: _JournalPath,
        *,
        redirect_hook: Optional[_RedirectHook] = None,
        on_progress: Optional[_ProgressCallback] = None,
        options: Optional[Mapping[str, Any]] = None,
        connection_string: Optional[str] = None,
        public_endpoint: bool = False,
        lock_dir: Optional[_JournalPath] = None,
        if_exists: Literal["error", "resume"] = "error",
        progress_detail: Literal["phases", "steps"] = "phases",
    ) -> LinkSession:
        """A new link on a real pair, journaled to ``journal``; ``spec`` is a link spec dict in
        the shape of ``Lab.spec``. The keyword arguments are those of ``Lab.session``. The spec
        must name the pair given (``source.server``, ``target.instance``) and SQL Server's build
        must be able to host the link, else InvalidArgumentError and no journal. The journal
        records the pair, so it is never resumed on another (WrongWorldError). On a pair served
        by one ``Lab`` in this process the session runs in the lab's virtual time."""
    @overload
    @staticmethod
    def resume_from(
        journal: _JournalPath,
        source: Lab,
        target: None = None,
        *,
        redirect_hook: Optional[_RedirectHook] = None,
        on_progress: Optional[_ProgressCallback] = None,
        options: Optional[Mapping[str, Any]] = None,
        connection_string: Optional[str] = None,
        public_endpoint: bool = False,
        lock_dir: Optional[_JournalPath] = None,
        repair: bool = False,
        progress_detail: Literal["phases", "steps"] = "phases",
    ) -> LinkSession: ...
    @overload
    @staticmethod
    def resume_from(
        journal: _JournalPath,
        source: SqlServer,
        target: ManagedInstance,
        *,
        redirect_hook: Optional[_RedirectHook] = None,
        on_progress: Optional[_ProgressCallback] = None,
        options: Optional[Mapping[str, Any]] = None,
        connection_string: Optional[str] = None,
        public_endpoint: bool = False,
        lock_dir: Optional[_JournalPath] = None,
        repair: bool = False,
        progress_detail: Literal["phases", "steps"] = "phases",
    ) -> LinkSession:
        """Reopens the link journaled in ``journal`` on a lab, or on a real pair (``source`` a
        ``SqlServer``, ``target`` a ``ManagedInstance``); ``resume()`` then continues it. The
        keyword arguments are those of ``Lab.session`` (the redirect settings and ``lock_dir``
        are not journaled). Raises LinkLockedError while another session drives the link, and
        WrongWorldError, changing nothing, when the journal belongs to another lab or pair.

        A journal whose last record was torn by a crash raises ``TornJournalError``; with
        ``repair=True`` that record (an input never acted on) is dropped first and ``repaired``
        says what was dropped. A file that is not a journal raises ``NotAJournalError``, with or
        without ``repair``, and is left as it is."""
    @property
    def repaired(self) -> Optional[TornRecord]:
        """The torn last record ``resume_from(..., repair=True)`` dropped, or None."""
    @property
    def link(self) -> str: ...
    @property
    def databases(self) -> List[str]: ...
    def record_assessment(self, assessment: Union[ReadinessReport, Sequence[str]]) -> None:
        """Records the readiness verdict; blockers for this link's databases raise RejectedError."""
    def record_assessment_async(
        self, assessment: Union[ReadinessReport, Sequence[str]]
    ) -> Awaitable[None]: ...
    def start(self) -> None:
        """Creates the link; returns once it replicates."""
    def start_async(self) -> Awaitable[None]: ...
    def failover(
        self,
        kind: Literal["planned", "forced"] = "planned",
        acknowledge_data_loss: Optional[str] = None,
    ) -> None:
        """Fails over; ``"forced"`` needs ``acknowledge_data_loss`` set to the link's name."""
    def failover_async(
        self,
        kind: Literal["planned", "forced"] = "planned",
        acknowledge_data_loss: Optional[str] = None,
    ) -> Awaitable[None]: ...
    def failback(self) -> None:
        """Fails back to SQL Server (two-way links)."""
    def failback_async(self) -> Awaitable[None]: ...
    def cutover(self, drop_availability_group: bool = False) -> None:
        """Migrates and removes the link; returns once completed."""
    def cutover_async(self, drop_availability_group: bool = False) -> Awaitable[None]: ...
    def repair_split_brain(self, keep: _Side) -> None:
        """Repairs a split brain, keeping ``keep`` as primary."""
    def repair_split_brain_async(self, keep: _Side) -> Awaitable[None]: ...
    def prepare(self) -> None:
        """Switches both sides to synchronous commit while the application still writes; the
        role change that follows skips the switch, so only the catch-up gate stands between the
        application's stop and the role change."""
    def prepare_async(self) -> Awaitable[None]: ...
    def cancel(self) -> None:
        """Undoes link creation (or abandons a catch-up)."""
    def cancel_async(self) -> Awaitable[None]: ...
    def resume(self) -> None:
        """Continues the last operation after an interruption or a retryable failure; with
        nothing to continue, reads both sides (raises ``SplitBrainError`` if both are PRIMARY)."""
    def resume_async(self) -> Awaitable[None]: ...
    def retry(self) -> None:
        """Re-issues a failed step after its cause was fixed, then continues."""
    def retry_async(self) -> Awaitable[None]: ...
    def status(self) -> SessionStatus:
        """Where the link is."""
    def _repr_html_(self) -> str:
        """The status as a notebook shows it: state, primary, error, journal, latest readings."""
    def history(self) -> List[Dict[str, Any]]:
        """The link's readings since the session opened, oldest first, one record per database
        per reading: ``at`` (ms since the Unix epoch, virtual on the lab), ``state``,
        ``database``, ``source_lsn`` and ``instance_lsn`` (ints), ``lag_seconds``,
        ``seeding_percent``. Bounded; a resumed session starts a new history."""
    def history_dataframe(self) -> Any:
        """``history()`` as a ``pandas.DataFrame``; raises ImportError without pandas."""
    def check_workload_quiet(self) -> Dict[str, Any]:
        """Who is still connected to the link's databases on the current primary, before a
        planned failover: ``{"quiet", "open_transactions", "sessions", "summary"}``."""
    def check_workload_quiet_async(self) -> Awaitable[Dict[str, Any]]: ...
    def health(self) -> Optional[Dict[str, Any]]:
        """Both sides read now (``{"source": ..., "instance": ...}``; a side that cannot be read
        is named in ``"unreachable"`` and shows no role, never its last value). In a steady state
        the reading goes through the link's state machine, so a split brain is seen and shows in
        ``status()["split_brain_since"]``. LSNs (``*_lsn``) are Python ints, compared as numbers."""
    def health_async(self) -> Awaitable[Optional[Dict[str, Any]]]: ...
    def watch(self, seconds: float) -> None:
        """Watches an idle link for ``seconds``: reads both sides every probe interval; raises
        ``SplitBrainError`` as soon as both are PRIMARY (milink never reads on its own)."""
    def watch_async(self, seconds: float) -> Awaitable[None]: ...
    def events(self) -> List[_SessionEvent]:
        """The events since the last call, oldest first, each with the time it was sent at
        (``"at"``, milliseconds since the Unix epoch; virtual on the lab), e.g.
        ``{"StateChanged": {"from": "Draft", "to": "Assessed"}, "at": 1795683600000}``."""
    def close(self) -> None:
        """Releases the session, its journal and the link's lock."""
    def __enter__(self) -> LinkSession: ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...

def _sleep(seconds: float) -> None:
    """Waits on the shared runtime as blocking calls do (GIL released, Ctrl-C honoured)."""

def _panic(where_: str) -> None:
    """Panics inside a blocking call (``"operation"``) or without the GIL (``"detached"``), to
    check that a bug reaches Python as a ``MilinkError``."""

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
