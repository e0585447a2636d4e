"""The ``process`` stage: adjusted prices, daily metrics and indicators, and completeness.

Everything is recomputed from the curated tables for the run's symbols, so a new split or
dividend rebuilds the affected history instead of patching it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marketlake.pipeline.context import FILE_SOURCES, RunContext
from marketlake.pipeline.lake_names import ACTIONS, ADJUSTED, BARS, INDICATORS, METRICS, MISSING
from marketlake.pipeline.result import StageResult
from marketlake.schemas import CORPORATE_ACTION_SCHEMA, MISSING_SESSION_SCHEMA, SERIES_KEYS

ANALYTICS_KEYS = SERIES_KEYS


def plain_strings(table: pa.Table) -> pa.Table:
    """Cast Polars' ``string_view`` columns to plain ``string`` so lake files agree on types."""
    fields = [
        pa.field(f.name, pa.string(), f.nullable) if pa.types.is_string_view(f.type) else f
        for f in table.schema
    ]
    return table.cast(pa.schema(fields))


def symbol_filter(symbols: list[str]) -> pc.Expression:
    """A pyarrow filter selecting ``symbols``."""
    return pc.field("symbol").isin(symbols)


def process(ctx: RunContext) -> StageResult:
    """Adjust the run's symbols, compute analytics and missing sessions, and write them."""
    from marketlake.analytics.adjust import adjust_table
    from marketlake.analytics.engine import create_engine

    result = StageResult()
    symbols = ctx.symbols
    if not ctx.tables.exists(BARS):
        result.detail["note"] = "no bars in the lake"
        return result
    bars = ctx.tables.read(BARS, filter=symbol_filter(symbols))
    actions = (
        ctx.tables.read(ACTIONS, filter=symbol_filter(symbols)).cast(CORPORATE_ACTION_SCHEMA)
        if ctx.tables.exists(ACTIONS)
        else CORPORATE_ACTION_SCHEMA.empty_table()
    )
    result.rows_in = bars.num_rows
    adjusted = adjust_table(bars, actions)
    metrics, indicators = create_engine(ctx.settings.engine).run(adjusted)
    ctx.progress("process", 1, 4)
    # Each symbol's derived rows are rewritten whole, in one commit per table: a new split
    # changes the whole adjusted history, and rewriting is much faster than a MERGE.
    present = sorted(set(symbols) & set(pc.unique(bars.column("symbol")).to_pylist()))
    for name, table in ((ADJUSTED, adjusted), (METRICS, metrics), (INDICATORS, indicators)):
        table = plain_strings(table)
        ctx.tables.replace_symbols(name, table, present, keys=ANALYTICS_KEYS)
        result.rows_out += table.num_rows
    ctx.progress("process", 3, 4)
    missing = missing_sessions(ctx, bars)
    ctx.tables.replace_symbols(MISSING, missing, present, keys=ANALYTICS_KEYS)
    result.detail["missing_sessions"] = missing.num_rows
    ctx.progress("process", 4, 4)
    return result


def missing_sessions(ctx: RunContext, bars: pa.Table) -> pa.Table:
    """Sessions of the run's range with no curated bar, per symbol.

    A symbol is expected from its first stored bar (a listing date) to the end of the range;
    for file sources without explicit dates, to its last bar.
    """
    import polars as pl

    if bars.num_rows == 0:
        return MISSING_SESSION_SCHEMA.empty_table()
    range_start, range_end = ctx.session_range
    frame = pl.from_arrow(bars.select(["symbol", "ts", "source"]))
    assert isinstance(frame, pl.DataFrame)
    frame = frame.with_columns(pl.col("ts").dt.date().alias("day"))
    spans = frame.group_by("symbol").agg(
        pl.col("day").min().alias("first"),
        pl.col("day").max().alias("last"),
        pl.col("source").last(),
    )
    sessions = pl.DataFrame(
        {"day": ctx.calendar.session_array(range_start, range_end).astype("datetime64[D]")}
    ).with_columns(pl.col("day").cast(pl.Date))
    open_ended = ctx.settings.source not in FILE_SOURCES or ctx.settings.end is not None
    upper = pl.lit(range_end) if open_ended else pl.col("last")
    expected = (
        spans.join(sessions, how="cross")
        .filter((pl.col("day") >= pl.col("first")) & (pl.col("day") <= upper))
        .select("symbol", "day", "source")
    )
    missing = expected.join(frame.select("symbol", "day"), on=["symbol", "day"], how="anti")
    now = np.datetime64(ctx.now.replace(tzinfo=None), "us")
    out = missing.sort("symbol", "day").select(
        "symbol",
        pl.col("day").cast(pl.Datetime("us", "UTC")).alias("ts"),
        "source",
        pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("detected_at"),
    )
    return out.to_arrow().cast(MISSING_SESSION_SCHEMA)
