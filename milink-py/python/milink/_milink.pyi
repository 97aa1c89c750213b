"""Type stubs for the milink extension module."""

from typing import Optional

__version__: str

class MilinkError(Exception):
    """The root of every error milink raises."""

class NameError(MilinkError):  # noqa: A001 - shadows the builtin inside the milink namespace only
    """A name or value was refused by its validated type (the message names the rule)."""

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
