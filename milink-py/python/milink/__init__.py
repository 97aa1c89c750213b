"""milink: migrate SQL Server databases to Azure SQL Managed Instance over the Managed Instance link.

Readiness is data: ``assess(...)`` returns a ``ReadinessReport`` (dicts, JSON, Markdown, HTML in
notebooks, a pandas DataFrame when pandas is installed). A ``LinkSession`` drives one link, journaled
and resumable; ``Lab`` is the simulator to rehearse on. Blocking calls release the GIL and stop on
Ctrl-C with the journal resumable; each has an ``_async`` twin. Every error milink raises derives
from ``MilinkError``.
"""

from milink._milink import (
    GatherError,
    InvalidArgumentError,
    JournalError,
    Lab,
    LinkLockedError,
    LinkSession,
    MilinkError,
    NameError,
    NotReadyError,
    ReadinessReport,
    RejectedError,
    SessionError,
    SpecError,
    SplitBrainError,
    StalledError,
    StepFailedError,
    TimeoutError,
    __version__,
    assess,
    binary_literal,
    create_availability_group_sql,
    create_distributed_availability_group_sql,
    drop_availability_group_sql,
    drop_distributed_availability_group_sql,
    failover_dag_sql,
    quote_ident,
    quote_nstring,
    tailspin_facts,
    tcp_url,
)

__all__ = [
    "GatherError",
    "InvalidArgumentError",
    "JournalError",
    "Lab",
    "LinkLockedError",
    "LinkSession",
    "MilinkError",
    "NameError",
    "NotReadyError",
    "ReadinessReport",
    "RejectedError",
    "SessionError",
    "SpecError",
    "SplitBrainError",
    "StalledError",
    "StepFailedError",
    "TimeoutError",
    "__version__",
    "assess",
    "binary_literal",
    "create_availability_group_sql",
    "create_distributed_availability_group_sql",
    "drop_availability_group_sql",
    "drop_distributed_availability_group_sql",
    "failover_dag_sql",
    "quote_ident",
    "quote_nstring",
    "tailspin_facts",
    "tcp_url",
]
