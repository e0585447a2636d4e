"""Tick validation: the stream's rules for bad ticks, which become quarantine rows.

The rows are built by :func:`marketlake.records.quarantine_rows`, like every quarantine row.
"""

from __future__ import annotations

import math
from datetime import datetime
from functools import lru_cache
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from marketlake.errors import TerminalError
from marketlake.records import quarantine_rows
from marketlake.schemas import QUARANTINE_SCHEMA, TICK_SCHEMA
from marketlake.symbols import is_valid_symbol

DATASET = "ticks"
_REQUIRED = ("symbol", "ts", "price", "source", "seq")


def as_tick_table(data: pa.RecordBatch | pa.Table) -> pa.Table:
    """``data`` as a table with exactly the Tick schema; TerminalError when it cannot be."""
    table = pa.Table.from_batches([data]) if isinstance(data, pa.RecordBatch) else data
    missing = [name for name in TICK_SCHEMA.names if name not in table.column_names]
    if missing:
        raise TerminalError(
            f"tick batch lacks columns {missing}; expected the Tick schema {TICK_SCHEMA.names}"
        )
    table = table.select(TICK_SCHEMA.names)
    if table.schema.equals(TICK_SCHEMA):
        return table
    try:
        return table.cast(TICK_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise TerminalError(f"tick batch cannot be cast to the Tick schema: {exc}") from exc


@lru_cache(maxsize=65536)
def _symbol_ok(symbol: str) -> bool:
    return is_valid_symbol(symbol)


def split_invalid_ticks(table: pa.Table, now: datetime) -> tuple[pa.Table, pa.Table]:
    """Split ``table`` (Tick schema) into valid ticks and quarantine rows.

    Rules: ``null_field`` (symbol, ts, price, source or seq missing), ``invalid_symbol``
    (not matching the symbol pattern), ``non_positive_price`` (price <= 0, NaN or infinite),
    ``invalid_size`` (negative, NaN or infinite size; a missing size counts as 0).
    """
    return split_by_mask(table, invalid_ticks(table), now)


def invalid_ticks(table: pa.Table) -> pa.Array:
    """Which rows of ``table`` (Tick schema) break a rule of :func:`split_invalid_ticks`."""
    bad = pc.is_null(table.column("symbol"))
    for name in _REQUIRED[1:]:
        bad = pc.or_(bad, pc.is_null(table.column(name)))
    price = table.column("price")
    bad = pc.or_kleene(bad, pc.invert(pc.greater(price, 0.0)))
    bad = pc.or_kleene(bad, pc.is_inf(price))
    size = table.column("size")
    bad = pc.or_kleene(bad, pc.less(size, 0.0))
    bad = pc.or_kleene(bad, pc.or_kleene(pc.is_nan(size), pc.is_inf(size)))
    symbols = pc.unique(table.column("symbol")).to_pylist()
    wrong = [s for s in symbols if s is not None and not _symbol_ok(s)]
    if wrong:
        bad = pc.or_kleene(bad, pc.is_in(table.column("symbol"), pa.array(wrong, pa.string())))
    result = pc.fill_null(bad, True)
    return result.combine_chunks() if isinstance(result, pa.ChunkedArray) else result


def split_by_mask(table: pa.Table, bad: pa.Array, now: datetime) -> tuple[pa.Table, pa.Table]:
    """``table`` without the rows of ``bad`` (from :func:`invalid_ticks`), and those rows as
    quarantine rows."""
    if not pc.any(bad).as_py():
        return table, QUARANTINE_SCHEMA.empty_table()
    rejected = table.filter(bad)
    rules, details = zip(*(_rule_of(record) for record in rejected.to_pylist()), strict=True)
    rows = quarantine_rows(DATASET, rejected, list(rules), list(details), now=now)
    return table.filter(pc.invert(bad)), rows


def _rule_of(record: dict[str, Any]) -> tuple[str, str]:
    missing = [name for name in _REQUIRED if record[name] is None]
    if missing:
        return "null_field", f"missing {', '.join(missing)}"
    if not _symbol_ok(record["symbol"]):
        return "invalid_symbol", f"symbol {record['symbol']!r} does not match the symbol pattern"
    price = record["price"]
    if not (math.isfinite(price) and price > 0):
        return "non_positive_price", f"price {price!r} is not a positive finite number"
    return "invalid_size", f"size {record['size']!r} is not a non-negative finite number"
