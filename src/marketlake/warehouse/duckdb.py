"""The embedded warehouse: one DuckDB file, loaded from Arrow without copies through Python.

DuckDB allows one writing process per file (or several reading ones). Upserts are one MERGE
on the table's keys; replacements are a DELETE and an INSERT in one transaction. By default
key uniqueness is ensured by these writes rather than by PRIMARY KEY constraints, whose index
makes bulk loads several times slower; pass ``primary_keys=True`` to declare them anyway.
"""

from __future__ import annotations

import re
import threading
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
_INCOMING = "__marketlake_incoming"


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
        self, path: Path | str, read_only: bool = False, primary_keys: bool = False
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
        self._lock = threading.RLock()
        self._con = _connect(self.path, read_only)

    @classmethod
    def from_url(cls, url: str, read_only: bool = False) -> DuckDBWarehouse:
        """Open ``duckdb:///absolute/path.duckdb`` (or ``duckdb://relative/path``)."""
        path = url[len(URL_PREFIX) :] if url.startswith(URL_PREFIX) else url
        if not path:
            raise TerminalError(f"no file in warehouse URL {url!r}: use duckdb:///path.duckdb")
        return cls(path if path == MEMORY else Path(path), read_only=read_only)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Run ``sql`` and return its rows as Arrow (timestamps in UTC)."""
        with self._lock:
            try:
                relation = self._con.sql(sql, params=_params(params))
                if relation is None:
                    return pa.table({})
                fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
                table: pa.Table = fetch()
                return table
            except duckdb.Error as exc:
                raise QueryError(f"query failed: {exc}") from exc

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """Run a statement that returns no rows."""
        with self._lock:
            try:
                self._con.execute(sql, _params(params)).fetchall()
            except duckdb.Error as exc:
                raise QueryError(f"statement failed: {exc}") from exc

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._con.close()

    def _execute_all(self, statements: Sequence[str]) -> None:
        with self._lock:
            self._run_transaction("tables", [(sql, None) for sql in statements])

    def _merge(self, spec: TableSpec, data: pa.Table) -> None:
        with self._lock, self._registered(data):
            empty = not self._con.execute(
                f"SELECT 1 FROM {self.quote(spec.name)} LIMIT 1"
            ).fetchall()
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
        with self._lock, self._registered(data):
            self._run_transaction(spec.name, statements)

    def _run_transaction(
        self, target: str, statements: Sequence[tuple[str, list[Any] | None]]
    ) -> None:
        try:
            self._con.execute("BEGIN TRANSACTION")
            try:
                for sql, params in statements:
                    self._con.execute(sql, params).fetchall()
                self._con.execute("COMMIT")
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
        except duckdb.Error as exc:
            raise QueryError(f"writing {target} at {self.location} failed: {exc}") from exc

    @contextmanager
    def _registered(self, data: pa.Table) -> Iterator[None]:
        self._con.register(_INCOMING, data)
        try:
            yield
        finally:
            self._con.unregister(_INCOMING)


def _params(params: Sequence[Any] | None) -> list[Any] | None:
    return None if params is None else list(params)


def _connect(path: Path | str, read_only: bool) -> duckdb.DuckDBPyConnection:
    """Open the file (creating its folder for writing) with the session time zone set to UTC."""
    if isinstance(path, Path):
        if read_only and not path.exists():
            raise WarehouseNotFoundError(f"no warehouse at {path}")
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # an in-memory database cannot be opened read-only; the base still refuses writes
        con = duckdb.connect(str(path), read_only=read_only and isinstance(path, Path))
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            holder = re.search(r"PID \d+", str(exc))
            raise TransientError(
                f"the warehouse at {path} is in use by another process"
                + (f" ({holder.group(0)})" if holder else "")
                + "; try again when it has finished"
            ) from exc
        raise TerminalError(f"cannot open the DuckDB warehouse at {path}: {exc}") from exc
    except duckdb.Error as exc:
        raise TerminalError(f"cannot open the DuckDB warehouse at {path}: {exc}") from exc
    con.execute("SET TimeZone = 'UTC'")
    return con
