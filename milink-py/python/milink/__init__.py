"""milink: migrate SQL Server databases to Azure SQL Managed Instance over the Managed Instance link."""

from milink._milink import (
    MilinkError,
    NameError,
    __version__,
    binary_literal,
    create_availability_group_sql,
    create_distributed_availability_group_sql,
    drop_availability_group_sql,
    drop_distributed_availability_group_sql,
    failover_dag_sql,
    quote_ident,
    quote_nstring,
    tcp_url,
)

__all__ = [
    "MilinkError",
    "NameError",
    "__version__",
    "binary_literal",
    "create_availability_group_sql",
    "create_distributed_availability_group_sql",
    "drop_availability_group_sql",
    "drop_distributed_availability_group_sql",
    "failover_dag_sql",
    "quote_ident",
    "quote_nstring",
    "tcp_url",
]
