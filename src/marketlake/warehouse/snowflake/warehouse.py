"""The Snowflake warehouse: the catalogue's tables in one Snowflake schema, loaded through a stage.

A write uploads the rows to a temporary staging table (``write_pandas``: Parquet files PUT to
the table's stage, then COPY INTO), then changes the target in one transaction: one ``MERGE``
statement on the keys for an upsert, a ``DELETE`` and an ``INSERT … SELECT`` between ``BEGIN``
and ``COMMIT`` for a replacement. A process
killed before the commit leaves the target as it was (the temporary table ends with the
session).

Identifiers are upper case (Snowflake's own case for unquoted names), so ``SELECT close FROM
bars_1d`` works unquoted; result columns named in upper case come back in lower case, as on
DuckDB and PostgreSQL. Timestamps are ``TIMESTAMP_TZ`` written and read in UTC. Snowflake has
no read-only session: opened read-only, a warehouse accepts only queries (SELECT, WITH, SHOW,
DESCRIBE, EXPLAIN), one statement at a time; use a role that may only read for more.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import pyarrow as pa

from marketlake.errors import TerminalError, TransientError
from marketlake.warehouse.base import Capabilities, QueryError, Warehouse, sql_type
from marketlake.warehouse.connection import first_line
from marketlake.warehouse.snowflake.connection import connect, is_transient, parse_snowflake_url
from marketlake.warehouse.snowflake.results import to_arrow
from marketlake.warehouse.tables import TableSpec

_INCOMING = "__MARKETLAKE_INCOMING"
_QUERY = re.compile(
    r"^\s*(?:(?:--[^\n]*\n|/\*.*?\*/)\s*)*\(*\s*(select|with|show|describe|desc|explain)\b",
    re.I | re.S,
)


class SnowflakeWarehouse(Warehouse):
    """A warehouse in ``snowflake://user:password@account/database/schema``."""

    column_types: ClassVar[dict[str, str]] = {
        "string": "VARCHAR",
        "float64": "DOUBLE",
        "int64": "BIGINT",
        "bool": "BOOLEAN",
        "timestamp": "TIMESTAMP_TZ",
    }
    capabilities = Capabilities(
        dialect="snowflake",
        supports_merge=True,
        native_arrow_ingest=False,
        supports_transactions=True,
        enforces_keys=False,  # Snowflake declares keys but does not enforce them
        concurrent_writers=True,
        placeholder="?",
    )

    def __init__(self, url: str, read_only: bool = False) -> None:
        self._target = parse_snowflake_url(url)
        self.location = self._target.location
        self.read_only = read_only
        self._secrets = (self._target.password, self._target.key_passphrase)
        self._lock = threading.RLock()
        self._con = connect(self._target)

    @classmethod
    def from_url(cls, url: str, read_only: bool = False) -> SnowflakeWarehouse:
        """Open ``snowflake://user:password@account/database/schema[?warehouse=WH&role=R]``."""
        return cls(url, read_only=read_only)

    def quote(self, identifier: str) -> str:
        """``identifier`` in upper case, quoted."""
        return '"' + identifier.upper().replace('"', '""') + '"'

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Run ``sql`` (``?`` marks parameters) and return its rows as Arrow, in UTC."""
        if self.read_only and not _QUERY.match(sql):
            raise QueryError(
                f"query failed: the warehouse at {self.location} is open read-only; "
                "only SELECT, WITH, SHOW, DESCRIBE and EXPLAIN are allowed"
            )
        with self._lock:
            try:
                with self._con.cursor() as cursor:
                    cursor.execute(sql, list(params) if params else None)
                    if cursor.description is None:
                        return pa.table({})
                    return to_arrow(cursor.description, cursor.fetchall())
            except Exception as exc:
                raise self._error("query failed", exc) from exc

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """Run a statement that returns no rows (Snowflake commits DDL by itself)."""
        with self._lock:
            try:
                self._run(sql, list(params) if params else None)
            except Exception as exc:
                raise self._error("statement failed", exc) from exc

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._con.close()

    def _execute_all(self, statements: Sequence[str]) -> None:
        # DDL: Snowflake commits each statement by itself, so no transaction surrounds them
        for statement in statements:
            self.execute(statement)

    def _merge(self, spec: TableSpec, data: pa.Table) -> None:
        merge = self.merge_sql(spec, self._staged(spec))
        # one statement is one transaction: no BEGIN (which fakesnow cannot combine with MERGE)
        self._staging(spec, data, lambda: self._statement(spec.name, merge))

    def _overwrite(self, spec: TableSpec, data: pa.Table, symbols: Sequence[str] | None) -> None:
        table = self.quote(spec.name)
        statements: list[tuple[str, list[Any] | None]] = []
        if symbols is None:
            statements.append((f"DELETE FROM {table}", None))
        elif symbols:
            marks = ", ".join("?" for _ in symbols)
            statements.append((f'DELETE FROM {table} WHERE "SYMBOL" IN ({marks})', list(symbols)))
        if not data.num_rows:
            self._transaction(spec.name, statements)
            return
        columns = ", ".join(self.quote(name) for name in spec.columns)
        statements.append(
            (f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {self._staged(spec)}", None)
        )
        self._staging(spec, data, lambda: self._transaction(spec.name, statements))

    def _staged(self, spec: TableSpec) -> str:
        """The staging table's rows cast to the target's column types."""
        casts = ", ".join(
            f"{self.quote(field.name)}::{self.column_types[sql_type(field.type)]} "
            f"AS {self.quote(field.name)}"
            for field in spec.schema
        )
        return f"(SELECT {casts} FROM {self.quote(_INCOMING)})"

    def _staging(self, spec: TableSpec, data: pa.Table, then: Callable[[], None]) -> None:
        """Upload ``data`` to the temporary staging table, run ``then``, drop the table."""
        import pandas as pd
        from snowflake.connector.pandas_tools import write_pandas

        frame = data.rename_columns([name.upper() for name in data.column_names]).to_pandas(
            types_mapper=pd.ArrowDtype
        )
        with self._lock:
            try:
                write_pandas(
                    self._con,
                    frame,
                    _INCOMING,
                    auto_create_table=True,
                    overwrite=True,
                    table_type="temporary",
                    use_logical_type=True,
                )
            except Exception as exc:
                raise self._error(f"staging {spec.name} at {self.location} failed", exc) from exc
            try:
                then()
            finally:
                self._run(f"DROP TABLE IF EXISTS {self.quote(_INCOMING)}", None)

    def _transaction(self, target: str, statements: Sequence[tuple[str, list[Any] | None]]) -> None:
        with self._lock:
            try:
                self._run("BEGIN", None)
                for sql, params in statements:
                    self._run(sql, params)
                self._run("COMMIT", None)
            except Exception as exc:
                with contextlib.suppress(Exception):
                    self._run("ROLLBACK", None)
                raise self._error(f"writing {target} at {self.location} failed", exc) from exc

    def _statement(self, target: str, sql: str) -> None:
        with self._lock:
            try:
                self._run(sql, None)
            except Exception as exc:
                raise self._error(f"writing {target} at {self.location} failed", exc) from exc

    def _run(self, sql: str, params: list[Any] | None) -> None:
        with self._con.cursor() as cursor:
            cursor.execute(sql, params)

    def _error(self, what: str, exc: Exception) -> TerminalError | TransientError:
        reason = first_line(str(exc), self._secrets)
        return (
            TransientError(f"{what}: {reason}")
            if is_transient(exc)
            else QueryError(f"{what}: {reason}")
        )
