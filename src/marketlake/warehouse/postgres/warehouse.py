"""The PostgreSQL warehouse: the catalogue's tables on a PostgreSQL server, loaded through ADBC.

Bulk loads go through ADBC's Arrow ingest (binary COPY from Arrow buffers, about three times
the rows per second of psycopg's COPY, see docs/decisions.md). An upsert copies the rows into
a temporary table and runs one ``INSERT … ON CONFLICT (keys) DO UPDATE``; a replacement is a
``DELETE`` and a copy straight into the table. Each write is one transaction, so a process
killed half way leaves the table as it was. Keys are PRIMARY KEY constraints.

Opened read-only, every query runs in a read-only transaction; a login that may read or
write server files (a superuser, or a member of ``pg_read_server_files``,
``pg_write_server_files`` or ``pg_execute_server_program``) runs queries as
``pg_read_all_data``, which may read every table and no file.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

import pyarrow as pa

from marketlake.errors import TerminalError, TransientError
from marketlake.retry import call_with_retry
from marketlake.warehouse.base import Capabilities, QueryError, Warehouse
from marketlake.warehouse.connection import QUERY_RETRY, first_line
from marketlake.warehouse.postgres.connection import (
    connect,
    is_transient,
    numbered_parameters,
    password_of,
    postgres_location,
)
from marketlake.warehouse.tables import TableSpec

T = TypeVar("T")
_INCOMING = "__marketlake_incoming"
_READER_ROLE = "pg_read_all_data"
_FILE_ACCESS_SQL = (
    "SELECT rolsuper OR pg_has_role(current_user, 'pg_read_server_files', 'USAGE') "
    "OR pg_has_role(current_user, 'pg_write_server_files', 'USAGE') "
    "OR pg_has_role(current_user, 'pg_execute_server_program', 'USAGE') AS files, "
    f"rolsuper OR pg_has_role(current_user, '{_READER_ROLE}', 'MEMBER') AS can_switch "
    "FROM pg_roles WHERE rolname = current_user"
)


class PostgresWarehouse(Warehouse):
    """A warehouse in one schema (the connection's ``current_schema()``) of a PostgreSQL
    database, opened from ``postgresql://user:password@host:port/database``."""

    column_types: ClassVar[dict[str, str]] = {
        "string": "TEXT",
        "float64": "DOUBLE PRECISION",
        "int64": "BIGINT",
        "bool": "BOOLEAN",
        "timestamp": "TIMESTAMPTZ",
    }
    capabilities = Capabilities(
        dialect="postgresql",
        supports_merge=True,
        native_arrow_ingest=True,
        supports_transactions=True,
        enforces_keys=True,
        concurrent_writers=True,
        placeholder="?",
    )

    def __init__(self, url: str, read_only: bool = False) -> None:
        self.location = postgres_location(url)
        self.read_only = read_only
        self._url = url
        self._secrets = (password_of(url),)
        self._lock = threading.RLock()
        self._con = connect(url)
        self._broken = False
        self._schema = str(self._fetch("SELECT current_schema() AS s").column(0)[0])
        self._reader_role = read_only and self._needs_reader_role()

    @classmethod
    def from_url(cls, url: str, read_only: bool = False) -> PostgresWarehouse:
        """Open ``postgresql://user:password@host:port/database`` (``?host=/dir``: a socket)."""
        return cls(url, read_only=read_only)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Run ``sql`` (``?`` marks parameters) and return its rows as Arrow, in UTC."""
        with self._lock:
            prelude = ["SET TRANSACTION READ ONLY"] if self.read_only else []
            if self._reader_role:  # the schema is set again: the role may change "$user"
                prelude.append(f"SET LOCAL ROLE {_READER_ROLE}")
                prelude.append(f"SET LOCAL search_path = {self.quote(self._schema)}")
            try:
                with self._con.cursor() as cursor:
                    for statement in prelude:
                        cursor.execute(statement)
                    cursor.execute(numbered_parameters(sql) if params else sql, _params(params))
                    result = _plain(cursor.fetch_arrow_table()) if cursor.description else None
                if self.read_only:
                    self._con.rollback()
                else:
                    self._con.commit()
            except Exception as exc:
                self._rollback()
                raise self._error("query failed", exc) from exc
            return result if result is not None else pa.table({})

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """Run a statement that returns no rows."""
        self._transaction("statement", lambda cursor: cursor.execute(sql, _params(params)))

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock, contextlib.suppress(Exception):
            self._con.close()

    def _execute_all(self, statements: Sequence[str]) -> None:
        def run(cursor: Any) -> None:
            for statement in statements:
                cursor.execute(statement)

        self._transaction("tables", run)

    def _merge(self, spec: TableSpec, data: pa.Table) -> None:
        table, keys = self.quote(spec.name), ", ".join(map(self.quote, spec.keys))
        columns = ", ".join(map(self.quote, spec.columns))
        updates = ", ".join(
            f"{self.quote(name)} = EXCLUDED.{self.quote(name)}"
            for name in spec.columns
            if name not in spec.keys
        )
        action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"

        def run(cursor: Any) -> None:
            cursor.execute(
                f"CREATE TEMPORARY TABLE {_INCOMING} (LIKE {self._qualified(spec)}) ON COMMIT DROP"
            )
            cursor.adbc_ingest(_INCOMING, data, mode="append", temporary=True)
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {_INCOMING} "
                f"ON CONFLICT ({keys}) {action}"
            )

        self._transaction(spec.name, run)

    def _overwrite(self, spec: TableSpec, data: pa.Table, symbols: Sequence[str] | None) -> None:
        table = self.quote(spec.name)

        def run(cursor: Any) -> None:
            if symbols is None:
                cursor.execute(f"DELETE FROM {table}")
            elif symbols:
                marks = ", ".join(f"${n}" for n in range(1, len(symbols) + 1))
                cursor.execute(f"DELETE FROM {table} WHERE symbol IN ({marks})", tuple(symbols))
            if data.num_rows:
                cursor.adbc_ingest(spec.name, data, mode="append", db_schema_name=self._schema)

        self._transaction(spec.name, run)

    def _needs_reader_role(self) -> bool:
        """True when this login may touch server files, so queries must run as the reader
        role; TerminalError when it may but cannot switch to that role."""
        (access,) = self._fetch(_FILE_ACCESS_SQL).to_pylist() or [{"files": False}]
        if not access["files"]:
            return False
        if not access["can_switch"]:
            self.close()
            raise TerminalError(
                f"cannot open the PostgreSQL warehouse at {self.location} read-only: its login "
                f"may read or write server files and is not a member of {_READER_ROLE}; "
                f"grant it {_READER_ROLE} (PostgreSQL 14 or newer) or use a login without "
                "file access"
            )
        return True

    def _qualified(self, spec: TableSpec) -> str:
        return f"{self.quote(self._schema)}.{self.quote(spec.name)}"

    def _transaction(self, target: str, work: Callable[[Any], None]) -> None:
        """Run ``work`` in one transaction, retried (on a new connection if the old one broke)
        while it fails transiently."""

        def attempt() -> None:
            with self._lock:
                if self._broken:  # the last attempt failed transiently: start afresh
                    self.close()
                    self._con = connect(self._url)
                    self._broken = False
                try:
                    with self._con.cursor() as cursor:
                        work(cursor)
                    self._con.commit()
                except Exception as exc:
                    self._rollback()
                    error = self._error(f"writing {target} at {self.location} failed", exc)
                    self._broken = isinstance(error, TransientError)
                    raise error from exc

        call_with_retry(QUERY_RETRY, attempt)

    def _fetch(self, sql: str) -> pa.Table:
        with self._con.cursor() as cursor:
            cursor.execute(sql)
            result: pa.Table = cursor.fetch_arrow_table()
        self._con.commit()
        return result

    def _rollback(self) -> None:
        with contextlib.suppress(Exception):
            self._con.rollback()

    def _error(self, what: str, exc: Exception) -> TerminalError | TransientError:
        reason = first_line(_driver_reason(exc), self._secrets)
        if is_transient(exc):
            return TransientError(f"{what}: {reason}")
        return QueryError(f"{what}: {reason}")


def _driver_reason(exc: Exception) -> str:
    """The server's message without ADBC's status prefix."""
    text = str(exc)
    for marker in ("ERROR:  ", "FATAL:  "):
        if marker in text:
            return text[text.index(marker) + len(marker) :]
    return text


def _params(params: Sequence[Any] | None) -> tuple[Any, ...] | None:
    return None if not params else tuple(params)


def _plain(table: pa.Table) -> pa.Table:
    """``table`` without the driver's per-field metadata."""
    return table.cast(pa.schema([field.remove_metadata() for field in table.schema]))
