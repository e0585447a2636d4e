"""The warehouse contract: the base casts and de-duplicates rows, an adapter does the I/O.

An adapter implements four methods: :meth:`Warehouse.query`, :meth:`Warehouse.execute`,
``_merge`` (insert rows, replacing rows with the same key, in one transaction) and
``_overwrite`` (delete all rows, or one set of symbols' rows, and insert, in one transaction).
Table definitions come from :mod:`marketlake.warehouse.tables`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Self

import pyarrow as pa
import pyarrow.compute as pc

from marketlake.errors import TerminalError
from marketlake.rows import deduplicate
from marketlake.symbols import parse_symbols
from marketlake.warehouse.tables import TABLES, TableSpec, get_table_spec

SYMBOLS_PER_QUERY = 1_000
"""Symbols named in one query's ``IN`` list (longer lists are asked in parts)."""


@dataclass(frozen=True)
class Capabilities:
    """What a warehouse backend can do, as data (read by the pipeline, doctor and docs)."""

    dialect: str
    supports_merge: bool
    native_arrow_ingest: bool
    supports_transactions: bool
    enforces_keys: bool  # key uniqueness is a database constraint (else the writes ensure it)
    concurrent_writers: bool  # more than one process may write at a time
    placeholder: str = "?"  # how SQL passed to query() marks a positional parameter
    parallel_writes: int = 1
    """How many writes (each its own transaction) one warehouse object runs at once when
    called from that many threads: a bulk load writes a bucket's tables side by side. 1: the
    object serves one write at a time, and callers write in turn."""


class WarehouseNotFoundError(TerminalError):
    """The warehouse does not exist yet (nothing has been loaded into it)."""


class QueryError(TerminalError):
    """The database rejected a statement; the message carries the database's reason."""


class Warehouse(ABC):
    """A SQL warehouse holding the tables of :data:`marketlake.warehouse.tables.TABLES`.

    Writes are idempotent on each table's keys. Use as a context manager to close it.
    """

    capabilities: Capabilities
    column_types: ClassVar[Mapping[str, str]]  # logical type (see sql_type) -> SQL type
    read_only: bool = False
    location: str = ""  # where the warehouse is, safe to print (no secrets)
    _tables_ready: bool = False

    @classmethod
    @abstractmethod
    def from_url(cls, url: str, read_only: bool = False) -> Warehouse:
        """Open the warehouse a URL names (used by :func:`open_warehouse`)."""

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Run ``sql`` with positional ``params`` and return the result as Arrow."""

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """Run a statement that returns no rows (DDL, maintenance)."""

    @abstractmethod
    def _merge(self, spec: TableSpec, data: pa.Table) -> None:
        """Insert ``data`` (conformed, unique keys), replacing rows with equal keys."""

    @abstractmethod
    def _overwrite(self, spec: TableSpec, data: pa.Table, symbols: Sequence[str] | None) -> None:
        """Delete every row (``symbols`` None) or those symbols' rows, then insert ``data``."""

    def _execute_all(self, statements: Sequence[str]) -> None:
        """Run several statements; adapters with transactions run them in one."""
        for statement in statements:
            self.execute(statement)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the connection."""

    @contextmanager
    def session(self) -> Iterator[None]:
        """Keep the connection for the writes inside the block (one stream batch).

        A server warehouse keeps its connection anyway; an embedded file is otherwise opened
        for each statement, so that other processes may read between writes.
        """
        yield

    @contextmanager
    def bulk_load(self) -> Iterator[None]:
        """Mark the writes inside the block as one large load (a batch stage's replacements).

        Adapters may tune their storage for it; the writes are the same as outside the block.
        """
        yield

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def ensure_tables(self) -> None:
        """Create every missing table and view, and add columns a table lacks (newer specs).

        A view that an older version kept as a table (``bars_1d_adjusted``) is converted: the
        rows it holds are condensed into the view's tables first (see :meth:`_convert_sql`).
        """
        kinds = self._relations()
        existing = self.query(
            "SELECT lower(table_name) AS table_name, lower(column_name) AS column_name "
            "FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_catalog = current_database()"
        ).to_pylist()
        columns: dict[str, set[str]] = {}
        for row in existing:
            table, column = row.values()
            columns.setdefault(table, set()).add(column)
        statements = []
        for spec in TABLES.values():
            if spec.view is not None:
                continue
            if spec.name not in columns:
                statements.append(self.create_table_sql(spec))
                continue
            statements.extend(
                f"ALTER TABLE {self.quote(spec.name)} ADD COLUMN "
                f"{self.quote(field.name)} {self.column_types[sql_type(field.type)]}"
                for field in spec.schema
                if field.name not in columns[spec.name]
            )
        for spec in TABLES.values():
            kind = kinds.get(spec.name)
            if spec.view is None or kind == "VIEW":
                continue
            if kind is not None:
                statements.extend(self._convert_sql(spec))
            statements.append(self.create_view_sql(spec))
        if statements:
            self._execute_all(statements)
        self._tables_ready = True

    def table_names(self) -> list[str]:
        """The tables and views in the warehouse's schema, sorted."""
        return sorted(self._relations())

    def _relations(self) -> dict[str, str]:
        """The warehouse schema's tables and views: name -> ``TABLE`` or ``VIEW``. Views are
        looked up in ``information_schema.views``, which every warehouse has (not every one
        lists them among its tables)."""
        here = "WHERE table_schema = current_schema() AND table_catalog = current_database()"
        found = {}
        for kind, relations in (("TABLE", "tables"), ("VIEW", "views")):
            sql = f"SELECT lower(table_name) AS name FROM information_schema.{relations} {here}"
            found.update(dict.fromkeys(self.query(sql).column("name").to_pylist(), kind))
        return found

    def upsert(self, table: str, data: pa.Table) -> int:
        """Insert or update rows by the table's keys (last row wins); return rows written."""
        spec = self._writable(table)
        rows = deduplicate(spec.conform(data), spec.keys)
        if rows.num_rows:
            self._merge(spec, rows)
        return rows.num_rows

    def replace(self, table: str, data: pa.Table) -> int:
        """Replace the whole table with ``data`` in one transaction; return rows written."""
        spec = self._writable(table)
        rows = deduplicate(spec.conform(data), spec.keys)
        self._overwrite(spec, rows, None)
        return rows.num_rows

    def replace_where(self, table: str, data: pa.Table, symbols: Sequence[str]) -> int:
        """Replace the rows of ``symbols`` with ``data`` in one transaction; return rows written.

        Used when a symbol's history is rebuilt: rows of other symbols are untouched, and
        ``data`` may hold only rows of ``symbols``.
        """
        spec = self._writable(table)
        if not spec.has_symbol:
            with_symbol = sorted(name for name, s in TABLES.items() if s.has_symbol)
            raise TerminalError(
                f"cannot replace rows of {table} by symbol: it has no symbol column; "
                f"tables with one: {', '.join(with_symbol)}"
            )
        wanted = parse_symbols(symbols)
        rows = deduplicate(spec.conform(data), spec.keys)
        others = set(pc.unique(rows.column("symbol")).to_pylist()) - set(wanted)
        if others:
            raise TerminalError(
                f"cannot replace {table} rows of {', '.join(wanted) or 'no symbols'}: data also "
                f"holds {', '.join(sorted(map(str, others)))}"
            )
        self._overwrite(spec, rows, wanted)
        return rows.num_rows

    def count_rows(self, table: str, symbols: Sequence[str] | None = None) -> int:
        """Rows of ``table`` (only those of ``symbols`` when given)."""
        if symbols is not None:
            return sum(self.symbol_counts(table, symbols).values())
        spec = get_table_spec(table)
        sql = f"SELECT count(*) AS n FROM {self.quote(spec.name)}"
        return int(self.query(sql).column("n")[0].as_py())

    def symbol_counts(self, table: str, symbols: Sequence[str]) -> dict[str, int]:
        """Rows of ``table`` per symbol of ``symbols`` (symbols without rows left out)."""
        spec = get_table_spec(table)
        wanted = parse_symbols(symbols)
        mark = self.capabilities.placeholder
        counts: dict[str, int] = {}
        for lo in range(0, len(wanted), SYMBOLS_PER_QUERY):
            part = wanted[lo : lo + SYMBOLS_PER_QUERY]
            found = self.query(
                f"SELECT symbol, count(*) AS n FROM {self.quote(spec.name)} "
                f"WHERE symbol IN ({', '.join(mark for _ in part)}) GROUP BY symbol",
                list(part),
            )
            symbols_found, found_counts = found.column("symbol"), found.column("n")
            counts.update(zip(symbols_found.to_pylist(), found_counts.to_pylist(), strict=True))
        return {str(symbol): int(n) for symbol, n in counts.items()}

    def quote(self, identifier: str) -> str:
        """``identifier`` quoted for SQL."""
        return '"' + identifier.replace('"', '""') + '"'

    def create_table_sql(self, spec: TableSpec) -> str:
        """The CREATE TABLE statement of ``spec`` in this warehouse's dialect."""
        columns = [
            f"{self.quote(field.name)} {self.column_types[sql_type(field.type)]}"
            + ("" if field.nullable else " NOT NULL")
            for field in spec.schema
        ]
        if self.capabilities.enforces_keys:
            columns.append(f"PRIMARY KEY ({', '.join(self.quote(k) for k in spec.keys)})")
        return f"CREATE TABLE IF NOT EXISTS {self.quote(spec.name)} ({', '.join(columns)})"

    def create_view_sql(self, spec: TableSpec) -> str:
        """The CREATE VIEW statement of ``spec`` (a dataset with a ``view``) in this dialect."""
        assert spec.view is not None
        select = spec.view.format_map(_Identifiers(self.quote))
        return f"CREATE OR REPLACE VIEW {self.quote(spec.name)} AS {select}"

    def _convert_sql(self, spec: TableSpec) -> list[str]:
        """Statements that turn the table ``bars_1d_adjusted`` an older version loaded into
        the spans of ``adjustment_factors``, then drop it, so its view shows the same rows.

        Every symbol's runs of equal factors become its spans (the lake's may be of symbols a
        later run does not name). Repeated after a crash half way, they give the same spans.
        """
        q = self.quote
        if spec.name != "bars_1d_adjusted":
            raise TerminalError(f"no conversion of table {spec.name} into a view")
        table, factors = q(spec.name), q("adjustment_factors")
        symbol, ts, price, volume = q("symbol"), q("ts"), q("price_factor"), q("volume_factor")
        order = f"OVER (PARTITION BY {symbol} ORDER BY {ts})"
        runs = (
            f"SELECT {symbol}, {ts}, {price}, {volume}, lag({price}) {order} AS prev_price, "
            f"lag({volume}) {order} AS prev_volume, row_number() {order} AS n FROM {table}"
        )
        starts = f"n = 1 OR {price} <> prev_price OR {volume} <> prev_volume"
        columns = ", ".join(map(q, get_table_spec("adjustment_factors").columns))
        return [
            f"DELETE FROM {factors}",
            f"INSERT INTO {factors} ({columns}) SELECT {symbol}, {ts}, lead({ts}) {order}, "
            f"{price}, {volume} FROM ({runs}) AS runs WHERE {starts}",
            f"DROP TABLE {table}",
        ]

    def merge_sql(self, spec: TableSpec, source: str) -> str:
        """A standard ``MERGE`` of the rows of ``source`` into ``spec``'s table on its keys:
        matched rows are updated, the others inserted."""
        table, names = self.quote(spec.name), [self.quote(name) for name in spec.columns]
        keys = [self.quote(key) for key in spec.keys]
        on = " AND ".join(f"t.{key} = d.{key}" for key in keys)
        updates = ", ".join(f"{name} = d.{name}" for name in names if name not in keys)
        matched = f"WHEN MATCHED THEN UPDATE SET {updates} " if updates else ""
        return (
            f"MERGE INTO {table} AS t USING {source} AS d ON ({on}) {matched}"
            f"WHEN NOT MATCHED THEN INSERT ({', '.join(names)}) "
            f"VALUES ({', '.join(f'd.{name}' for name in names)})"
        )

    def _writable(self, table: str) -> TableSpec:
        spec = get_table_spec(table)
        if spec.view is not None:
            raise TerminalError(
                f"cannot write {table}: it is a view of the warehouse's other tables"
            )
        if self.read_only:
            raise TerminalError(
                f"cannot write {table}: the warehouse at {self.location} is open read-only"
            )
        if not self._tables_ready:
            self.ensure_tables()
        return spec


class _Identifiers(dict[str, str]):
    """Formats every ``{name}`` of a view's SELECT as a quoted identifier."""

    def __init__(self, quote: Callable[[str], str]) -> None:
        super().__init__()
        self._quote = quote

    def __missing__(self, key: str) -> str:
        return self._quote(key)


def sql_type(type_: pa.DataType) -> str:
    """The logical type of an Arrow type: string, float64, int64, bool or timestamp."""
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return "string"
    if pa.types.is_timestamp(type_):
        return "timestamp"
    for name, check in (
        ("float64", pa.types.is_float64),
        ("int64", pa.types.is_int64),
        ("bool", pa.types.is_boolean),
    ):
        if check(type_):
            return name
    raise TerminalError(f"no warehouse column type for Arrow type {type_}")
