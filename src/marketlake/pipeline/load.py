"""The ``load_warehouse`` stage: the lake's tables for the run's symbols into the warehouse.

The run's symbols are loaded bucket by bucket (about ``runner.bucket_rows`` bars each, in
sorted order), so memory is bounded by a bucket. Each table's rows of a bucket's symbols are
replaced in one transaction, so a re-run (or a run killed half way and re-run) leaves every
row exactly once. Rows the earlier stages of this process handed over are taken from memory;
the rest are read from the lake, skipping files that hold none of the bucket's symbols. A
symbol's rows that the warehouse holds as the lake does are not loaded again (see
:mod:`marketlake.pipeline.load_marks`).
"""

from __future__ import annotations

from contextlib import closing
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from marketlake.catalogue import (
    BARS_1D,
    BATCH_LOADS,
    INDICATORS_1D,
    QUARANTINE,
    SESSIONS,
    SYMBOLS,
    Dataset,
)
from marketlake.pipeline import indicator_state
from marketlake.pipeline.context import RunContext
from marketlake.pipeline.load_marks import LoadMarks
from marketlake.pipeline.result import StageResult
from marketlake.prefetch import prefetched
from marketlake.schemas import UTC_US

if TYPE_CHECKING:
    from marketlake.lake.tables import TableState


def load_warehouse(ctx: RunContext) -> StageResult:
    """Load bars, actions, analytics, missing sessions, reconciliation flags, quarantine,
    symbols and sessions into the warehouse."""
    result = StageResult()
    with ctx.warehouse.bulk_load():
        _load(ctx, result)
    return result


def _load(ctx: RunContext, result: StageResult) -> None:
    from marketlake.lake.quarantine import current_count, read_quarantine
    from marketlake.lake.symbol_reads import bucket_symbols

    warehouse = ctx.warehouse
    if indicator_state.reload_pending(ctx.storage):
        result.detail["indicators_reloaded"] = _reload_indicators(ctx)
    present = [d for d in BATCH_LOADS if ctx.tables.exists(d)]
    states = {d.name: ctx.tables.state(d) for d in present}
    marks = LoadMarks.read(warehouse)
    unchanged = {
        d.name: marks.unchanged(warehouse, d, states[d.name], ctx.symbols) for d in present
    }
    counts = _bar_counts(ctx) if BARS_1D in present else {}
    work = bucket_symbols(
        {symbol: counts.get(symbol, 0) for symbol in ctx.symbols}, ctx.settings.runner.bucket_rows
    )
    spans: list[pa.Table] = []
    steps = [
        (done, dataset, wanted)
        for done, bucket in enumerate(work, 1)
        for dataset in present
        if (wanted := [s for s in bucket if s not in unchanged[dataset.name]])
    ]
    reads = prefetched(_read(ctx, dataset, wanted, states) for _, dataset, wanted in steps)
    with closing(reads):
        for done, dataset, wanted in steps:
            data, state = next(reads)
            if dataset is BARS_1D and data.num_rows:
                spans.append(_symbols(data))
            result.rows_in += data.num_rows
            result.rows_out += warehouse.replace_where(dataset.name, data, wanted)
            if state is not None:
                marks.record(warehouse, dataset, state, wanted, data, ctx.now)
            ctx.progress("load_warehouse", done, len(work) + 1)
    skipped = sum(len(symbols) for symbols in unchanged.values())
    result.detail["unchanged_skipped"] = skipped
    total = len(ctx.symbols) * len(present)
    result.detail["summary"] = (
        f"{len(ctx.symbols)} symbols x {len(present)} tables: {total - skipped} loaded, "
        f"{skipped} unchanged since their last load"
    )
    quarantine = read_quarantine(ctx.tables)
    if quarantine.num_rows:
        warehouse.upsert(QUARANTINE.name, quarantine)
    result.quarantined = current_count(quarantine)
    if spans:
        symbols = pa.concat_tables(spans)
        warehouse.upsert(SYMBOLS.name, symbols)
        warehouse.upsert(SESSIONS.name, _sessions(ctx, symbols))
    ctx.progress("load_warehouse", len(work) + 1, len(work) + 1)


def _reload_indicators(ctx: RunContext) -> int:
    """Recreate the warehouse's ``indicators_1d`` with the configured columns and load every
    symbol's rows (after an indicator set change); return the rows loaded."""
    from marketlake.analytics.indicator_config import configured_indicators
    from marketlake.lake.symbol_reads import bucket_symbols

    configured_indicators(ctx.settings.indicators)
    indicator_state.recreate_table(ctx.warehouse)
    loaded = 0
    if ctx.tables.exists(INDICATORS_1D):
        names = ctx.tables.read(INDICATORS_1D, columns=["symbol"]).column("symbol")
        counts = pc.value_counts(names).to_pylist()
        every = {str(row["values"]): int(row["counts"]) for row in counts}
        for bucket in bucket_symbols(every, ctx.settings.runner.bucket_rows):
            data = ctx.tables.read_symbols(INDICATORS_1D, bucket)
            loaded += ctx.warehouse.replace_where(INDICATORS_1D.name, data, bucket)
    indicator_state.reload_done(ctx.storage)
    return loaded


def _bar_counts(ctx: RunContext) -> dict[str, int]:
    held = ctx.handover.counts(BARS_1D, ctx.symbols)
    return held if held is not None else ctx.tables.symbol_counts(BARS_1D, ctx.symbols)


def _read(
    ctx: RunContext, dataset: Dataset, symbols: list[str], states: dict[str, TableState]
) -> tuple[pa.Table, TableState | None]:
    """The lake's rows of ``symbols`` in ``dataset`` and the state of the lake table they are
    exactly the rows of: handed over (state unknown: None), else read at the version of
    ``states``."""
    held = ctx.handover.take(dataset, symbols)
    if held is not None:
        return held, None
    state = states[dataset.name]
    return ctx.tables.read_symbols(dataset, symbols, version=state.version), state


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


def _sessions(ctx: RunContext, symbols: pa.Table) -> pa.Table:
    """The sessions from the first to the last bar of the loaded ``symbols`` rows."""
    first = pc.min(symbols.column("first_ts")).as_py().date()
    last = pc.max(symbols.column("last_ts")).as_py().date()
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
