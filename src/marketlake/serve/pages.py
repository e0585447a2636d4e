"""Paging through warehouse rows: by time for a symbol's series, by position for lists.

A series page holds up to ``limit`` rows from ``start`` (ascending) or back from ``end``
(descending); its ``next`` link repeats the request with ``start`` (or ``end``) set to the
first row of the following page, so paging is exact however the bounds were given. A list
page's ``next`` link moves ``offset`` on by ``limit``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import pyarrow as pa
from starlette.datastructures import URL

from marketlake.errors import TerminalError
from marketlake.serve.intervals import IntervalSpec, resample
from marketlake.serve.reader import WarehouseReader
from marketlake.serve.timerange import TimeRange, iso

DEFAULT_LIMIT = 10_000
MAX_LIMIT = 100_000


class Order(StrEnum):
    """The order of a series page by time."""

    asc = "asc"
    desc = "desc"


class UnknownSymbolError(TerminalError):
    """The symbol has no rows in the table asked for."""


@dataclass(frozen=True)
class SeriesQuery:
    """One symbol's rows of ``table`` in a time range, ordered by ``ts_column``."""

    table: str
    symbol: str
    span: TimeRange
    limit: int = DEFAULT_LIMIT
    order: Order = Order.asc
    ts_column: str = "ts"
    where: str = ""  # extra condition, joined with AND (no parameters)

    def sql(self, rows: int) -> tuple[str, list[Any]]:
        """The statement fetching up to ``rows`` rows, and its parameters."""
        conditions: list[str] = ["symbol = ?"]
        params: list[Any] = [self.symbol]
        if self.span.start is not None:
            conditions.append(f"{self.ts_column} >= ?")
            params.append(self.span.start)
        if self.span.end is not None:
            conditions.append(f"{self.ts_column} <= ?")
            params.append(self.span.end)
        if self.where:
            conditions.append(self.where)
        direction = "DESC" if self.order is Order.desc else "ASC"
        return (
            f"SELECT * FROM {self.table} WHERE {' AND '.join(conditions)} "
            f"ORDER BY {self.ts_column} {direction} LIMIT {int(rows)}",
            params,
        )


def series_page(
    reader: WarehouseReader, query: SeriesQuery, url: URL, interval: IntervalSpec | None = None
) -> tuple[pa.Table, str | None]:
    """A page of ``query``'s rows (resampled as ``interval`` says) and its next link.

    Raises :class:`UnknownSymbolError` when the symbol has no row in the table at all.
    """
    every = interval.every if interval else None
    per_bar = interval.base_per_bar if interval else 1
    sql, params = query.sql((query.limit + 1) * per_bar)
    rows = reader.query(sql, params)
    if rows.num_rows == 0:
        check_symbol(reader, query.table, query.symbol)
    edges: Sequence[Any]
    if every is not None and rows.num_rows:
        rows, edges = resample(rows, every, descending=query.order is Order.desc)
    else:
        edges = rows.column(query.ts_column).to_pylist() if rows.num_rows else []
    if rows.num_rows <= query.limit:
        return rows, None
    edge = edges[query.limit]
    assert isinstance(edge, datetime)
    bound = "end" if query.order is Order.desc else "start"
    return rows.slice(0, query.limit), relative(url.include_query_params(**{bound: iso(edge)}))


def check_symbol(reader: WarehouseReader, table: str, symbol: str) -> None:
    """Raise :class:`UnknownSymbolError` unless ``symbol`` has rows in ``table`` or is a
    loaded symbol (in ``symbols``)."""
    for where in (table, "symbols"):
        found = reader.query(f"SELECT 1 AS one FROM {where} WHERE symbol = ? LIMIT 1", [symbol])
        if found.num_rows:
            return
    raise UnknownSymbolError(
        f"unknown symbol {symbol}: no {table} rows; GET /api/v1/symbols lists the loaded ones"
    )


def list_page(
    reader: WarehouseReader,
    sql: str,
    params: Sequence[Any],
    limit: int,
    offset: int,
    url: URL,
) -> tuple[pa.Table, str | None]:
    """A page of ``sql``'s rows from ``offset`` on, and the next page's link."""
    rows = reader.query(f"{sql} LIMIT {int(limit) + 1} OFFSET {int(offset)}", params)
    if rows.num_rows <= limit:
        return rows, None
    return rows.slice(0, limit), relative(url.include_query_params(offset=offset + limit))


def relative(url: URL) -> str:
    """``url`` as a path and query, so links work behind a proxy."""
    return url.path + (f"?{url.query}" if url.query else "")
