"""Snowflake specifics: URLs and credentials, upper-case identifiers, read-only queries."""

from __future__ import annotations

import pytest
import snowflake.connector

from marketlake.errors import ConfigError
from marketlake.warehouse import QueryError, open_warehouse
from marketlake.warehouse.snowflake.connection import is_transient, parse_snowflake_url

SECRET = "hunter2-secret"


def test_a_url_names_account_database_schema_and_options() -> None:
    target = parse_snowflake_url(
        f"snowflake://analyst:{SECRET}@xy12345.eu-west-1/MARKET/ANALYTICS"
        "?warehouse=LOAD_WH&role=LOADER"
    )
    assert target.location == "xy12345.eu-west-1/MARKET/ANALYTICS"
    arguments = target.connect_arguments()
    assert {key: arguments[key] for key in ("account", "user", "database", "schema")} == {
        "account": "xy12345.eu-west-1",
        "user": "analyst",
        "database": "MARKET",
        "schema": "ANALYTICS",
    }
    assert (arguments["warehouse"], arguments["role"], arguments["password"]) == (
        "LOAD_WH",
        "LOADER",
        SECRET,
    )
    assert arguments["session_parameters"]["TIMEZONE"] == "UTC"
    assert SECRET not in repr(target)


def test_credentials_come_from_the_environment_when_the_url_has_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", SECRET)
    assert parse_snowflake_url("snowflake://analyst@acct/db/sch").connect_arguments()[
        "password"
    ] == (SECRET)
    monkeypatch.setenv("SNOWFLAKE_PRIVATE_KEY_FILE", "/keys/analyst.p8")
    monkeypatch.setenv("SNOWFLAKE_PRIVATE_KEY_FILE_PWD", "key-passphrase")
    arguments = parse_snowflake_url("snowflake://analyst@acct/db/sch").connect_arguments()
    assert arguments["private_key_file"] == "/keys/analyst.p8"
    assert arguments["private_key_file_pwd"] == "key-passphrase"
    assert "password" not in arguments


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"snowflake://analyst:{SECRET}@acct/only_database", "database/schema"),
        (f"snowflake://acct/db/sch?password={SECRET}", "database/schema"),
        (f"snowflake://analyst:{SECRET}@acct/db/sch?region=eu", "allowed: warehouse, role"),
    ],
)
def test_bad_urls_say_the_form_and_hide_the_password(url: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as caught:
        open_warehouse(url)
    assert SECRET not in str(caught.value)


def test_network_failures_are_transient_and_refused_logins_are_not() -> None:
    errors = snowflake.connector.errors
    assert is_transient(errors.OperationalError(msg="could not connect", errno=250001))
    assert not is_transient(errors.DatabaseError(msg="Incorrect username", errno=390100))
    assert not is_transient(errors.OperationalError(msg="Incorrect username", errno=390100))
    assert not is_transient(errors.ProgrammingError(msg="syntax error", errno=1003))


def test_tables_are_upper_case_and_unquoted_sql_finds_them(snowflake_url: str) -> None:
    with open_warehouse(snowflake_url) as warehouse:
        warehouse.ensure_tables()
        names = warehouse.query(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() ORDER BY table_name"
        ).column("table_name")
        assert "BARS_1D" in names.to_pylist()
        result = warehouse.query('SELECT symbol, "TS", close AS "Close" FROM bars_1d')
        assert result.column_names == ["symbol", "ts", "Close"]


def test_read_only_accepts_queries_only(snowflake_url: str) -> None:
    with open_warehouse(snowflake_url) as writer:
        writer.ensure_tables()
    with open_warehouse(snowflake_url, read_only=True) as reader:
        for query in (
            "SELECT count(*) AS n FROM bars_1d",
            "-- how many\nWITH b AS (SELECT * FROM bars_1d) SELECT count(*) AS n FROM b",
            "(SELECT count(*) AS n FROM bars_1d)",
        ):
            assert reader.query(query).to_pylist() == [{"n": 0}]
        for statement in ("DELETE FROM bars_1d", "CREATE TABLE notes (line VARCHAR)", "PUT x y"):
            with pytest.raises(QueryError, match="read-only"):
                reader.query(statement)
