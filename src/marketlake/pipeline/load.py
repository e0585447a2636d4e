"""The ``load_warehouse`` stage: the lake's tables for the run's symbols into the warehouse.

Each table is replaced symbol by symbol in one transaction, so a re-run (or a run killed
half way and re-run) leaves every row exactly once.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from marketlake.pipeline.context import RunContext
from marketlake.pipeline.lake_names import ACTIONS, ADJUSTED, BARS, INDICATORS, METRICS, MISSING
from marketlake.pipeline.process import symbol_filter
from marketlake.pipeline.reconcile import RECONCILIATION
from marketlake.pipeline.result import StageResult
from marketlake.schemas import UTC_US

LOADS: tuple[tuple[str, str], ...] = (
    (BARS, "bars_1d"),
    (ACTIONS, "corporate_actions"),
    (ADJUSTED, "bars_1d_adjusted"),
    (METRICS, "daily_metrics"),
    (INDICATORS, "indicators_1d"),
    (MISSING, "missing_sessions"),
    (RECONCILIATION, "reconciliation"),
)


def load_warehouse(ctx: RunContext) -> StageResult:
    """Load bars, actions, analytics, missing sessions, reconciliation flags, quarantine,
    symbols and sessions into the warehouse."""
    from marketlake.lake.quarantine import read_quarantine

    result = StageResult()
    warehouse = ctx.warehouse
    symbols = ctx.symbols
    bars: pa.Table | None = None
    for done, (lake_name, table_name) in enumerate(LOADS, 1):
        if not ctx.tables.exists(lake_name):
            data = None
        else:
            data = ctx.tables.read(lake_name, filter=symbol_filter(symbols))
        if lake_name == BARS:
            bars = data
        if data is not None:
            result.rows_in += data.num_rows
            result.rows_out += warehouse.replace_where(table_name, data, symbols)
        ctx.progress("load_warehouse", done, len(LOADS) + 3)
    quarantine = read_quarantine(ctx.tables)
    if quarantine.num_rows:
        warehouse.upsert("quarantine", quarantine)
    result.quarantined = quarantine.num_rows
    if bars is not None and bars.num_rows:
        warehouse.upsert("symbols", _symbols(bars))
        warehouse.upsert("sessions", _sessions(ctx, bars))
    ctx.progress("load_warehouse", len(LOADS) + 3, len(LOADS) + 3)
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
