"""The embedded warehouse: one DuckDB file, loaded from Arrow without copies through Python.

DuckDB allows one writing process per file (or several reading ones), so a file warehouse is
opened for each statement or write transaction and closed after it (or held across a few with
:meth:`DuckDBWarehouse.session`): readers (``marketlake sql``, the API) and writers (``run``,
``stream``) take turns. A process that finds the file held waits for it, with backoff, up to
``lock_wait_s`` seconds. A read-only connection reaches the warehouse's own tables only: no
file, no network, no extension, and its configuration is locked. Upserts are one MERGE
on the table's keys; replacements are a DELETE and an INSERT in one transaction. By default
key uniqueness is ensured by these writes rather than by PRIMARY KEY constraints, whose index
makes bulk loads several times slower; pass ``primary_keys=True`` to declare them anyway.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pyarrow as pa

from marketlake.errors import TerminalError, TransientError
from marketlake.warehouse.base import (
    Capabilities,
    QueryError,
    Warehouse,
    WarehouseNotFoundError,
)
from marketlake.warehouse.tables import TableSpec

MEMORY = ":memory:"
URL_PREFIX = "duckdb://"
LOCK_WAIT_S = 30.0  # how long a process waits for a file another process holds
_INCOMING = "__marketlake_incoming"
_FIRST_BACKOFF_S, _MAX_BACKOFF_S = 0.01, 0.25
_SESSION = ("SET TimeZone = 'UTC'",)  # setting it loads the built-in ICU extension
# A read-only connection reaches the warehouse's tables only, and cannot change that: opened
# without file or network access, then extensions stay unloaded and the settings locked.
_READER = {"enable_external_access": False, "autoinstall_known_extensions": False}
_LOCK_DOWN = (
    *_SESSION,
    "SET autoload_known_extensions = false",
    "SET lock_configuration = true",
)
_REFUSED = (duckdb.PermissionException,)


class DuckDBWarehouse(Warehouse):
    """A warehouse in the DuckDB file at ``path`` (``":memory:"`` for a throw-away one)."""

    column_types: ClassVar[dict[str, str]] = {
        "string": "VARCHAR",
        "float64": "DOUBLE",
        "int64": "BIGINT",
        "bool": "BOOLEAN",
        "timestamp": "TIMESTAMP WITH TIME ZONE",
    }

    def __init__(
        self,
        path: Path | str,
        read_only: bool = False,
        primary_keys: bool = False,
        lock_wait_s: float = LOCK_WAIT_S,
    ) -> None:
        self.path = path if str(path) == MEMORY else Path(path).expanduser()
        self.read_only = read_only
        self.location = str(self.path)
        self.capabilities = Capabilities(
            dialect="duckdb",
            supports_merge=True,
            native_arrow_ingest=True,
            supports_transactions=True,
            enforces_keys=primary_keys,
            concurrent_writers=False,
            placeholder="?",
        )
        self.lock_wait_s = lock_wait_s
        self._lock = threading.RLock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._depth = 0  # nesting of open connections (sessions and statements)
        if self.path == MEMORY:  # a throw-away database lives as long as its connection
            self._con = _connect(self.path, read_only, lock_wait_s)
            self._depth = 1
        else:  # the file exists (or is created), is a database and can be opened
            with self._connection():
                pass

    @classmethod
    def from_url(cls, url: str, read_only: bool = False) -> DuckDBWarehouse:
        """Open ``duckdb:///absolute/path.duckdb`` (or ``duckdb://relative/path``)."""
        path = url[len(URL_PREFIX) :] if url.startswith(URL_PREFIX) else url
        if not path:
            raise TerminalError(f"no file in warehouse URL {url!r}: use duckdb:///path.duckdb")
        return cls(path if path == MEMORY else Path(path), read_only=read_only)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Run ``sql`` and return its rows as Arrow (timestamps in UTC)."""
        with self._connection() as con:
            try:
                relation = con.sql(sql, params=_params(params))
                if relation is None:
                    return pa.table({})
                fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
                table: pa.Table = fetch()
                return table
            except duckdb.Error as exc:
                raise self._query_error("query failed", exc) from exc

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """Run a statement that returns no rows."""
        with self._connection() as con:
            try:
                con.execute(sql, _params(params)).fetchall()
            except duckdb.Error as exc:
                raise self._query_error("statement failed", exc) from exc

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
            self._depth = 0

    @contextmanager
    def session(self) -> Iterator[None]:
        """Hold the file open for several writes (one stream batch), then let others in."""
        with self._connection():
            yield

    @contextmanager
    def _connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The open connection, opening the file first (waiting while another process holds
        it) and closing it after the outermost use."""
        with self._lock:
            if self._con is None:
                self._con = _connect(self.path, self.read_only, self.lock_wait_s)
            self._depth += 1
            try:
                yield self._con
            finally:
                self._depth -= 1
                if self._depth == 0 and self._con is not None:
                    self._con.close()
                    self._con = None

    def _query_error(self, what: str, exc: duckdb.Error) -> QueryError:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, _REFUSED) or "configuration has been locked" in reason:
            return QueryError(
                f"{what}: refused: the warehouse at {self.location} is read-only and reaches "
                f"its own tables only (no files, network, extensions or settings): {reason}"
            )
        return QueryError(f"{what}: {exc}")

    def _execute_all(self, statements: Sequence[str]) -> None:
        self._run_transaction("tables", [(sql, None) for sql in statements])

    def _merge(self, spec: TableSpec, data: pa.Table) -> None:
        with self._registered(data) as con:
            empty = not con.execute(f"SELECT 1 FROM {self.quote(spec.name)} LIMIT 1").fetchall()
            statements = [self._insert_sql(spec)] if empty else self._merge_sql(spec)
            self._run_transaction(spec.name, [(sql, None) for sql in statements])

    def _insert_sql(self, spec: TableSpec) -> str:
        columns = ", ".join(map(self.quote, spec.columns))
        return f"INSERT INTO {self.quote(spec.name)} ({columns}) SELECT {columns} FROM {_INCOMING}"

    def _merge_sql(self, spec: TableSpec) -> list[str]:
        """One MERGE on the key columns: update matched rows, insert the others.

        (An empty table takes a plain INSERT instead, about a fifth faster for bulk loads.)
        """
        table, names = self.quote(spec.name), [self.quote(name) for name in spec.columns]
        keys = [self.quote(key) for key in spec.keys]
        on = " AND ".join(f"t.{key} = d.{key}" for key in keys)
        updates = ", ".join(f"{name} = d.{name}" for name in names if name not in keys)
        matched = f"WHEN MATCHED THEN UPDATE SET {updates} " if updates else ""
        return [
            f"MERGE INTO {table} AS t USING {_INCOMING} AS d ON ({on}) {matched}"
            f"WHEN NOT MATCHED THEN INSERT ({', '.join(names)}) "
            f"VALUES ({', '.join(f'd.{name}' for name in names)})"
        ]

    def _overwrite(self, spec: TableSpec, data: pa.Table, symbols: Sequence[str] | None) -> None:
        table = self.quote(spec.name)
        statements: list[tuple[str, list[Any] | None]] = []
        if symbols is None:
            statements.append((f"DELETE FROM {table}", None))
        elif symbols:
            statements.append(
                (
                    f"DELETE FROM {table} WHERE symbol IN (SELECT unnest(?::VARCHAR[]))",
                    [list(symbols)],
                )
            )
        if data.num_rows:
            statements.append((self._insert_sql(spec), None))
        with self._registered(data):
            self._run_transaction(spec.name, statements)

    def _run_transaction(
        self, target: str, statements: Sequence[tuple[str, list[Any] | None]]
    ) -> None:
        with self._connection() as con:
            try:
                con.execute("BEGIN TRANSACTION")
                try:
                    for sql, params in statements:
                        con.execute(sql, params).fetchall()
                    con.execute("COMMIT")
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
            except duckdb.Error as exc:
                raise QueryError(f"writing {target} at {self.location} failed: {exc}") from exc

    @contextmanager
    def _registered(self, data: pa.Table) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._connection() as con:
            con.register(_INCOMING, data)
            try:
                yield con
            finally:
                con.unregister(_INCOMING)


def _params(params: Sequence[Any] | None) -> list[Any] | None:
    return None if params is None else list(params)


def _connect(path: Path | str, read_only: bool, lock_wait_s: float) -> duckdb.DuckDBPyConnection:
    """Open the file (creating its folder for writing) with the session time zone set to UTC,
    waiting up to ``lock_wait_s`` seconds while another process holds it."""
    if isinstance(path, Path):
        if read_only and not path.exists():
            raise WarehouseNotFoundError(f"no warehouse at {path}")
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
    # an in-memory database cannot be opened read-only; the base still refuses writes
    file_read_only = read_only and isinstance(path, Path)
    config, statements = (_READER, _LOCK_DOWN) if file_read_only else ({}, _SESSION)
    deadline = time.monotonic() + lock_wait_s
    backoff = _FIRST_BACKOFF_S
    while True:
        try:
            con = duckdb.connect(str(path), read_only=file_read_only, config=dict(config))
        except duckdb.Error as exc:
            holder = _holder(exc)
            if holder is None:
                raise TerminalError(f"cannot open the DuckDB warehouse at {path}: {exc}") from exc
            if time.monotonic() + backoff > deadline:
                raise TransientError(
                    f"the warehouse at {path} is in use by another process{holder}; waited "
                    f"{lock_wait_s:g} s, try again when it has finished"
                ) from exc
        else:
            for statement in statements:
                con.execute(statement)
            return con
        time.sleep(backoff)
        backoff = min(backoff * 2, _MAX_BACKOFF_S)


def _holder(exc: duckdb.Error) -> str | None:
    """`` (PID n)`` (or ``""``) when ``exc`` says another connection holds the file, else None.

    Another process holds a file lock; a connection of this process with another
    configuration (a writer while a reader opens) is the same wait.
    """
    message = str(exc)
    if isinstance(exc, duckdb.IOException) and "lock" in message.lower():
        pid = re.search(r"PID \d+", message)
        return f" ({pid.group(0)})" if pid else ""
    if "different configuration" in message:
        return ""
    return None
