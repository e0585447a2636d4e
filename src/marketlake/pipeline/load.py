"""The ``load_warehouse`` stage: the lake's tables for the run's symbols into the warehouse.

Each table is replaced symbol by symbol in one transaction, so a re-run (or a run killed
half way and re-run) leaves every row exactly once.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from marketlake.catalogue import BARS_1D, BATCH_LOADS, QUARANTINE, SESSIONS, SYMBOLS
from marketlake.lake.tables import symbol_filter
from marketlake.pipeline.context import RunContext
from marketlake.pipeline.result import StageResult
from marketlake.schemas import UTC_US


def load_warehouse(ctx: RunContext) -> StageResult:
    """Load bars, actions, analytics, missing sessions, reconciliation flags, quarantine,
    symbols and sessions into the warehouse."""
    from marketlake.lake.quarantine import read_quarantine

    result = StageResult()
    warehouse = ctx.warehouse
    symbols = ctx.symbols
    bars: pa.Table | None = None
    steps = len(BATCH_LOADS) + 3
    for done, dataset in enumerate(BATCH_LOADS, 1):
        if not ctx.tables.exists(dataset):
            data = None
        else:
            data = ctx.tables.read(dataset, filter=symbol_filter(symbols))
        if dataset is BARS_1D:
            bars = data
        if data is not None:
            result.rows_in += data.num_rows
            result.rows_out += warehouse.replace_where(dataset.name, data, symbols)
        ctx.progress("load_warehouse", done, steps)
    quarantine = read_quarantine(ctx.tables)
    if quarantine.num_rows:
        warehouse.upsert(QUARANTINE.name, quarantine)
    result.quarantined = quarantine.num_rows
    if bars is not None and bars.num_rows:
        warehouse.upsert(SYMBOLS.name, _symbols(bars))
        warehouse.upsert(SESSIONS.name, _sessions(ctx, bars))
    ctx.progress("load_warehouse", steps, steps)
    return result


def _symbols(bars: pa.Table) -> pa.Table:
    grouped = bars.group_by("symbol").aggregate(
        [("source", "max"), ("ts", "min"), ("ts", "max"), ("ts", "count")]
    )
    return pa.table(
        {
            "symbol": grouped.column("symbol"),
            "source": grouped.column("source_max"),
            "first_ts": grouped.column("ts_min"),
            "last_ts": grouped.column("ts_max"),
            "bars": grouped.column("ts_count").cast(pa.int64()),
        }
    )


def _sessions(ctx: RunContext, bars: pa.Table) -> pa.Table:
    first = pc.min(bars.column("ts")).as_py().date()
    last = pc.max(bars.column("ts")).as_py().date()
    cal = ctx.calendar
    lo = max(first, cal.first)
    hi = min(last, cal.last)
    days = cal.session_array(lo, hi)
    index = cal.days.searchsorted(days)
    return pa.table(
        {
            "calendar": pa.array([cal.name] * len(days), pa.string()),
            "ts": pa.array(days.astype("datetime64[us]").astype("int64"), pa.int64()).cast(UTC_US),
            "open_at": pa.array(cal.opens[index].astype("int64"), pa.int64()).cast(UTC_US),
            "close_at": pa.array(cal.closes[index].astype("int64"), pa.int64()).cast(UTC_US),
        }
    )
