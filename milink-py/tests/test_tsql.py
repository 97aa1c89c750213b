import pytest

import milink


def test_quoting_doubles_the_closing_character() -> None:
    assert milink.quote_ident("Toy]Store") == "[Toy]]Store]"
    assert milink.quote_nstring("O'Brien") == "N'O''Brien'"
    assert milink.binary_literal(b"\x30\x82\x0a") == "0x30820A"
    assert milink.binary_literal(b"") == "0x"


def test_tcp_url_brackets_ipv6_and_refuses_junk() -> None:
    assert milink.tcp_url("10.0.0.4") == "TCP://10.0.0.4:5022"
    assert milink.tcp_url("fd00::4", 5023) == "TCP://[fd00::4]:5023"
    with pytest.raises(milink.NameError, match="port"):
        milink.tcp_url("10.0.0.4:5022")
    with pytest.raises(milink.NameError, match="port 0"):
        milink.tcp_url("10.0.0.4", 0)


def test_create_availability_group_text() -> None:
    sql = milink.create_availability_group_sql(
        "AG_ToyStore", "ToyStore", "TailspinSql", "TCP://10.0.0.4:5022"
    )
    assert "CREATE AVAILABILITY GROUP [AG_ToyStore]\n    WITH (CLUSTER_TYPE = NONE)\n" in sql
    assert "FOR DATABASE [ToyStore]\n" in sql
    assert "REPLICA ON N'TailspinSql' WITH (" in sql
    assert "ENDPOINT_URL = N'TCP://10.0.0.4:5022'," in sql
    assert sql.startswith("USE master;\nIF NOT EXISTS (")


def test_create_availability_group_for_2016_and_mi_initial_primary() -> None:
    sql_2016 = milink.create_availability_group_sql(
        "AG_ToyStore", "ToyStore", "TailspinSql", "TCP://10.0.0.4:5022", cluster_type_none=False
    )
    assert "CLUSTER_TYPE" not in sql_2016
    reverse = milink.create_availability_group_sql("AG_ToyStore", None, "TailspinSql", "TCP://10.0.0.4:5022")
    assert "\n    FOR\n    REPLICA ON" in reverse
    assert "DATABASE" not in reverse


def test_distributed_availability_group_listener_urls() -> None:
    sql = milink.create_distributed_availability_group_sql(
        "DAG_ToyStore",
        "AG_ToyStore",
        "TCP://10.0.0.4:5022",
        "MI_ToyStore",
        "tailspin-mi.abc123.database.windows.net",
        mi_database="Toy]Store",
    )
    assert "SESSION_TIMEOUT = 20)" in sql
    assert (
        "LISTENER_URL = N'tcp://tailspin-mi.abc123.database.windows.net:5022;"
        "Server=[tailspin-mi];Database=[Toy]]Store]'," in sql
    )


def test_hostile_names_are_quoted() -> None:
    sql = milink.drop_availability_group_sql("Toy]Store' --")
    assert "name = N'Toy]Store'' --'" in sql
    assert sql.endswith("DROP AVAILABILITY GROUP [Toy]]Store' --];\n")
    assert "ALTER AVAILABILITY GROUP [DAG_ToyStore] FAILOVER;" in milink.failover_dag_sql("DAG_ToyStore")
    assert "is_distributed = 1" in milink.drop_distributed_availability_group_sql("DAG_ToyStore")


def test_bad_names_raise_name_error_rooted_at_milink_error() -> None:
    with pytest.raises(milink.NameError) as info:
        milink.drop_availability_group_sql("")
    assert isinstance(info.value, milink.MilinkError)
    assert isinstance(info.value, Exception)
    assert "AgName" in str(info.value)
    assert "must not be empty" in str(info.value)
    with pytest.raises(milink.MilinkError):
        milink.failover_dag_sql("x" * 129)
    with pytest.raises(milink.NameError, match="MiFqdn"):
        milink.create_distributed_availability_group_sql(
            "DAG", "AG", "TCP://10.0.0.4:5022", "MI", "not a host name"
        )


def test_exception_hierarchy() -> None:
    assert issubclass(milink.NameError, milink.MilinkError)
    assert issubclass(milink.MilinkError, Exception)
    assert milink.NameError is not NameError  # the builtin stays untouched
    assert milink.NameError.__module__ == "milink"
