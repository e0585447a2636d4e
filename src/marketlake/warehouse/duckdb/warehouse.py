"""The embedded warehouse: one DuckDB file, loaded from Arrow without copies through Python.

DuckDB allows one writing process per file (or several reading ones), so processes take turns:
a process keeps the file open between its statements (``marketlake sql`` closes it after its
one query) and closes it as soon as a process waiting for the file asks for it by touching
``<file>.wanted`` (checked after each statement or write transaction, and every
:data:`WATCH_S` while idle), or after :data:`IDLE_RELEASE_S` unused. A process that
finds the file held waits, with backoff, up to ``lock_wait_s`` seconds. A read-only connection
reaches the warehouse's own tables only: no file, no network, no extension, and its
configuration is locked.

Upserts are one MERGE on the table's keys; replacements are a DELETE and an INSERT in one
transaction. By default key uniqueness is ensured by these writes rather than by PRIMARY KEY
constraints, whose index makes bulk loads several times slower; pass ``primary_keys=True`` to
declare them anyway.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pyarrow as pa

from marketlake.errors import TerminalError
from marketlake.warehouse.base import Capabilities, QueryError, Warehouse
from marketlake.warehouse.duckdb.connection import (
    LOCK_WAIT_S,
    REFUSED,
    SESSION,
    connect,
    take_request,
    wanted_marker,
)
from marketlake.warehouse.tables import TableSpec

MEMORY = ":memory:"
URL_PREFIX = "duckdb://"
IDLE_RELEASE_S = 5.0  # a writer closes the file after this long without a write
WATCH_S = 0.05  # how often an idle writer looks for a request for the file
# after letting the file go to a process that asked, wait this long before taking it back:
# longer than the asker's longest backoff, so a process writing without pause cannot starve it
YIELD_S = 0.5
_INCOMING = "__marketlake_incoming"
BULK_LOAD_SETTINGS = ("SET max_vacuum_tasks = 0", "SET preserve_insertion_order = false")
"""Settings of a bulk load.

At a checkpoint DuckDB merges a table's under-filled row groups (vacuum tasks); after a load
in buckets of symbols, each bucket's last row group is partly filled, and the merge rewrote
most of the loaded rows: 0.4-0.8 s and 50-100 MB of the file (freed but kept) at the end of a
500 symbols x 10 years load, none with the merge off. A re-load of the same symbols deletes
whole row groups, whose space is reused either way.

An INSERT that keeps the order of its input runs on one thread when the input is a bucket of
a few hundred thousand rows; without that order both threads compress and append row groups:
a bucket of 125 symbols' indicators (314,000 rows) went from 0.69 s to 0.52 s. Nothing reads
the warehouse's physical row order: every query that needs an order says ORDER BY."""


PARALLEL_WRITES = max(1, min(os.cpu_count() or 1, 4))
"""Writes one process runs at once, each on a cursor of its own (see ``_writer``): DuckDB
runs an INSERT from Arrow on one thread, so the three large tables of a 500 symbols x 10 years
bucket load side by side (measured alone: 0.85-0.88 s against 1.36-1.47 s in turn, the same
CPU time)."""


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
            parallel_writes=PARALLEL_WRITES,
        )
        self.lock_wait_s = lock_wait_s
        self._lock = threading.RLock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._depth = 0  # nesting of open connections (sessions and statements)
        self._last_use = 0.0  # monotonic time the last outermost use ended
        self._yielded_at: float | None = None  # monotonic time the file was let go when asked
        self._watcher: threading.Thread | None = None  # lets an idle file go
        self._wanted = wanted_marker(self.path)
        self._bulk = False  # inside bulk_load()
        if self.path == MEMORY:  # a throw-away database lives as long as its connection
            self._con = connect(self.path, read_only, lock_wait_s)
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
            self._release()
            self._depth = 0

    @contextmanager
    def session(self) -> Iterator[None]:
        """Hold the file open for several writes (one stream batch), then let others in."""
        with self._connection():
            yield

    @contextmanager
    def bulk_load(self) -> Iterator[None]:
        """Keep DuckDB from merging the load's row groups again at a checkpoint; the load
        ends with a checkpoint of its own (see :data:`BULK_LOAD_SETTINGS`).

        The file is still let go between writes when another process asks for it; a
        connection opened again inside the block gets the same settings. The settings stay
        until the connection closes: DuckDB keeps the row groups a connection appended as
        candidates for merging at any later checkpoint of that connection.
        """
        if self.path == MEMORY or self.read_only:
            yield
            return
        with self._lock:
            self._bulk = True
            if self._con is not None:
                _apply(self._con, BULK_LOAD_SETTINGS)
        try:
            yield
            with self._connection() as con:
                try:
                    con.execute("CHECKPOINT")
                except duckdb.Error as exc:
                    raise self._query_error("checkpoint after the load failed", exc) from exc
        finally:
            with self._lock:
                self._bulk = False

    @contextmanager
    def _connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The open connection, opening the file first (waiting while another process holds
        it); after the outermost use a reader closes it, a writer lets it go when idle or
        asked for."""
        with self._lock:
            con = self._open()
            try:
                yield con
            finally:
                self._done()

    @contextmanager
    def _writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of the open file for one write transaction, used by this thread alone.

        Writes from several threads (a bulk load's tables, see
        :attr:`~marketlake.warehouse.base.Capabilities.parallel_writes`) run at once, each in
        its own transaction: DuckDB runs one INSERT from Arrow on one thread, so two tables
        load in about the time of the larger. The file stays open while any write runs, and
        is let go after the last as after any use.
        """
        with self._lock:
            cursor = self._open().cursor()
        try:
            _apply(cursor, SESSION)
            yield cursor
        finally:
            cursor.close()
            with self._lock:
                self._done()

    def _open(self) -> duckdb.DuckDBPyConnection:
        """The open connection (opening the file first), counted as in use; with the lock."""
        if self._con is None:
            self._wait_for_asker()
            self._con = connect(self.path, self.read_only, self.lock_wait_s, self._wanted)
            if self._bulk:
                _apply(self._con, BULK_LOAD_SETTINGS)
        self._depth += 1
        return self._con

    def _done(self) -> None:
        """One use of the connection ended; with the lock."""
        self._depth -= 1
        if self._depth == 0:
            self._let_go()

    def _let_go(self) -> None:
        """After the outermost use: close the file when a waiting process asked for it, else
        a watcher closes it once asked or idle."""
        if take_request(self._wanted):
            self._release(asked=True)
            return
        self._last_use = time.monotonic()
        if self._watcher is None:
            self._watcher = threading.Thread(
                target=self._watch, name="duckdb-file-watcher", daemon=True
            )
            self._watcher.start()

    def _watch(self) -> None:
        """Close the idle file when a process asks for it or after IDLE_RELEASE_S."""
        while True:
            time.sleep(WATCH_S)
            with self._lock:
                if self._con is None:
                    self._watcher = None
                    return
                idle = time.monotonic() - self._last_use >= IDLE_RELEASE_S
                if self._depth == 0 and (idle or take_request(self._wanted)):
                    self._release(asked=not idle)
                    self._watcher = None
                    return

    def _release(self, asked: bool = False) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
            if asked:
                self._yielded_at = time.monotonic()

    def _wait_for_asker(self) -> None:
        """Give a process that asked for the file time to take it before opening it again."""
        if self._yielded_at is not None:
            time.sleep(max(0.0, self._yielded_at + YIELD_S - time.monotonic()))
            self._yielded_at = None

    def _query_error(self, what: str, exc: duckdb.Error) -> QueryError:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, REFUSED) or "configuration has been locked" in reason:
            return QueryError(
                f"{what}: refused: the warehouse at {self.location} is read-only and reaches "
                f"its own tables only (no files, network, extensions or settings): {reason}"
            )
        return QueryError(f"{what}: {exc}")

    def _execute_all(self, statements: Sequence[str]) -> None:
        with self._connection() as con:
            self._transaction(con, "tables", [(sql, None) for sql in statements])

    def _merge(self, spec: TableSpec, data: pa.Table) -> None:
        with self._registered(data) as con:
            empty = not con.execute(f"SELECT 1 FROM {self.quote(spec.name)} LIMIT 1").fetchall()
            statements = [self._insert_sql(spec)] if empty else self._merge_sql(spec)
            self._transaction(con, spec.name, [(sql, None) for sql in statements])

    def _insert_sql(self, spec: TableSpec) -> str:
        columns = ", ".join(map(self.quote, spec.columns))
        return f"INSERT INTO {self.quote(spec.name)} ({columns}) SELECT {columns} FROM {_INCOMING}"

    def _merge_sql(self, spec: TableSpec) -> list[str]:
        """One MERGE on the key columns: update matched rows, insert the others.

        (An empty table takes a plain INSERT instead, about a fifth faster for bulk loads.)
        """
        return [self.merge_sql(spec, _INCOMING)]

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
        with self._registered(data) as con:
            self._transaction(con, spec.name, statements)

    def _transaction(
        self,
        con: duckdb.DuckDBPyConnection,
        target: str,
        statements: Sequence[tuple[str, list[Any] | None]],
    ) -> None:
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
        """A writer (:meth:`_writer`) with ``data`` registered as the incoming rows."""
        with self._writer() as con:
            con.register(_INCOMING, data)
            try:
                yield con
            finally:
                con.unregister(_INCOMING)


def _apply(con: duckdb.DuckDBPyConnection, statements: Sequence[str]) -> None:
    for statement in statements:
        con.execute(statement)


def _params(params: Sequence[Any] | None) -> list[Any] | None:
    return None if params is None else list(params)
