"""PostgreSQL specifics: connection errors, read-only queries without file access, URLs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.pipeline.cli import marketlake
from tests.services.postgres import PASSWORD_ROLE, admin_sql, password_role

from marketlake.errors import TerminalError, TransientError
from marketlake.warehouse import QueryError, open_warehouse
from marketlake.warehouse.postgres import PostgresWarehouse
from marketlake.warehouse.postgres.connection import numbered_parameters, postgres_location

SECRET = "hunter2-secret"


def sql_error(url: str, query: str = "SELECT 1") -> str:
    """The stderr of ``marketlake sql QUERY --warehouse URL``, which must fail."""
    proc = marketlake("sql", query, "--warehouse", url)
    assert proc.returncode == 2, proc.stdout
    return proc.stderr


def test_a_wrong_password_is_one_line_naming_the_host_not_the_password(
    postgres_server: str,
) -> None:
    url = password_role(postgres_server, "the-right-one")
    good = url.replace("@", ":the-right-one@", 1)
    with open_warehouse(good) as warehouse:
        assert warehouse.query("SELECT current_user AS u").to_pylist()[0]["u"] in good
    bad = url.replace("@", f":{SECRET}@", 1)
    message = sql_error(bad)
    assert message.count("\n") == 1
    assert SECRET not in message
    assert "password authentication failed" in message
    assert f"cannot connect to the PostgreSQL warehouse at {postgres_location(bad)}" in message
    assert "gave up" not in message  # refused credentials are not retried


def test_an_unknown_database_is_a_terminal_error(postgres_server: str) -> None:
    url = re.sub(r"/postgres\?", "/no_such_database?", postgres_server).replace(
        "postgres:@", f"postgres:{SECRET}@"
    )
    with pytest.raises(TerminalError, match='database "no_such_database" does not exist') as err:
        open_warehouse(url)
    assert SECRET not in str(err.value)
    assert "no_such_database" in postgres_location(url)


def test_a_server_that_is_down_is_retried_then_reported_in_one_line(tmp_path: Path) -> None:
    url = f"postgresql://analyst:{SECRET}@/market?host={tmp_path}"  # no server on that socket
    with pytest.raises(TransientError, match=r"gave up after 4 attempts") as err:
        open_warehouse(url)
    assert f"cannot connect to the PostgreSQL warehouse at {tmp_path}/market" in str(err.value)
    assert SECRET not in str(err.value)
    message = sql_error(f"postgresql://analyst:{SECRET}@127.0.0.1:1/market")
    assert message.count("\n") == 1 and SECRET not in message
    assert "127.0.0.1:1/market" in message


def test_read_only_queries_cannot_read_server_files_or_write(postgres_url: str) -> None:
    with open_warehouse(postgres_url) as writer:
        writer.ensure_tables()
    with PostgresWarehouse(postgres_url, read_only=True) as reader:
        with pytest.raises(QueryError, match="permission denied for function pg_read_file"):
            reader.query("SELECT pg_read_file('PG_VERSION')")
        with pytest.raises(QueryError, match="read-only transaction"):
            reader.query("CREATE TABLE notes (line TEXT)")
        # a statement that resets the session does not carry over to the next query
        reader.query("SELECT set_config('default_transaction_read_only', 'off', false)")
        with pytest.raises(QueryError, match="read-only transaction"):
            reader.query("DELETE FROM bars_1d")
        with pytest.raises(QueryError, match="multiple commands"):
            reader.query("SELECT 1; DELETE FROM bars_1d")
        assert reader.query("SELECT count(*) AS n FROM bars_1d").to_pylist() == [{"n": 0}]


def test_the_session_time_zone_is_utc(postgres_url: str) -> None:
    with open_warehouse(postgres_url) as warehouse:
        (row,) = warehouse.query(
            "SELECT current_setting('TimeZone') AS tz, "
            "CAST(TIMESTAMPTZ '2024-03-08 23:30:00-05' AS DATE) AS day"
        ).to_pylist()
    assert (row["tz"], str(row["day"])) == ("UTC", "2024-03-09")


def test_question_marks_in_quotes_are_not_parameters() -> None:
    assert numbered_parameters("SELECT '?' AS \"a?\", x FROM t WHERE a = ? AND b = ?") == (
        "SELECT '?' AS \"a?\", x FROM t WHERE a = $1 AND b = $2"
    )


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("postgresql://u:pw@db.example:6543/market", "db.example:6543/market"),
        ("postgres://u@db.example/market", "db.example:5432/market"),
        ("postgresql://u:pw@/market?host=/run/postgresql", "/run/postgresql/market"),
    ],
)
def test_locations_name_host_and_database_only(url: str, location: str) -> None:
    assert postgres_location(url) == location


def test_a_login_that_may_read_server_files_queries_as_pg_read_all_data(
    postgres_server: str,
) -> None:
    url = password_role(postgres_server, "reader-pw").replace("@", ":reader-pw@", 1)
    admin_sql(postgres_server, f"GRANT pg_read_server_files TO {PASSWORD_ROLE}")
    try:
        with pytest.raises(TerminalError, match="not a member of pg_read_all_data"):
            open_warehouse(url, read_only=True)
        admin_sql(postgres_server, f"GRANT pg_read_all_data TO {PASSWORD_ROLE}")
        with open_warehouse(url, read_only=True) as reader:
            with pytest.raises(QueryError, match="permission denied for function pg_read_file"):
                reader.query("SELECT pg_read_file('PG_VERSION')")
            assert reader.query("SELECT 1 AS one").to_pylist() == [{"one": 1}]
        with open_warehouse(url) as writer:  # writing logins keep their own rights
            assert writer.query("SELECT current_user AS u").to_pylist() == [{"u": PASSWORD_ROLE}]
    finally:
        admin_sql(
            postgres_server, f"REVOKE pg_read_server_files, pg_read_all_data FROM {PASSWORD_ROLE}"
        )


FILE_STATEMENTS = (
    "COPY (SELECT * FROM pg_catalog.pg_roles) TO '/tmp/marketlake-roles.csv'",
    "COPY (SELECT 1) TO PROGRAM 'cat > /tmp/marketlake-one.txt'",
    "COPY pg_catalog.pg_description FROM '/etc/passwd'",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT pg_ls_dir('.')",
    "SELECT lo_import('/etc/passwd')",
)


def assert_no_file_access(url: str) -> None:
    """Every statement of FILE_STATEMENTS is refused on ``url`` opened read-only."""
    with open_warehouse(url, read_only=True) as reader:
        for statement in FILE_STATEMENTS:
            with pytest.raises(QueryError, match=r"permission denied|read-only transaction"):
                reader.query(statement)
        assert reader.query("SELECT 1 AS one").to_pylist() == [{"one": 1}]


def test_read_only_queries_cannot_copy_to_or_from_server_files(
    postgres_url: str, postgres_server: str
) -> None:
    assert_no_file_access(postgres_url)
    # a login granted every file role reads as pg_read_all_data, which has none of them
    url = password_role(postgres_server, "reader-pw").replace("@", ":reader-pw@", 1)
    roles = "pg_read_server_files, pg_write_server_files, pg_execute_server_program"
    admin_sql(postgres_server, f"GRANT {roles}, pg_read_all_data TO {PASSWORD_ROLE}")
    try:
        assert_no_file_access(url)
    finally:
        admin_sql(postgres_server, f"REVOKE {roles}, pg_read_all_data FROM {PASSWORD_ROLE}")
