"""The per-partition analytics computation every engine runs.

:func:`analyse_partition` is the unit of work: one or many whole symbols of adjusted bars in,
one wide table out. The Polars engine runs it per bucket of symbols in process; a distributed
engine runs the same function per symbol group and splits the result with
:func:`split_analytics`.

``ANALYTICS_SCHEMA`` is the wide table: symbol, ts, close, the daily metrics
(:mod:`marketlake.analytics.metrics`) and the indicators
(:mod:`marketlake.analytics.indicators`), one row per input bar, sorted by (symbol, ts).
"""

from __future__ import annotations

import pyarrow as pa

from marketlake.errors import TerminalError
from marketlake.schemas import DAILY_METRICS_SCHEMA, INDICATOR_COLUMNS, INDICATORS_SCHEMA

ANALYTICS_SCHEMA = pa.schema(
    list(DAILY_METRICS_SCHEMA) + [INDICATORS_SCHEMA.field(name) for name in INDICATOR_COLUMNS]
)
INPUT_COLUMNS = ("symbol", "ts", "open", "high", "low", "close", "volume")


def analyse_partition(bars: pa.Table) -> pa.Table:
    """Daily metrics and indicators of adjusted daily bars, as one :data:`ANALYTICS_SCHEMA` table.

    ``bars`` holds whole symbols (any order; extra columns are ignored).
    """
    import polars as pl

    from marketlake.analytics.indicators import compute_indicators
    from marketlake.analytics.metrics import compute_daily_metrics

    missing = [name for name in INPUT_COLUMNS if name not in bars.column_names]
    if missing:
        raise TerminalError(f"analytics needs bar columns {list(INPUT_COLUMNS)}; missing {missing}")
    frame = pl.from_arrow(bars.select(list(INPUT_COLUMNS)))
    assert isinstance(frame, pl.DataFrame)
    frame = frame.with_columns(
        pl.col("ts").cast(pl.Datetime("us", "UTC")),
        *(pl.col(name).cast(pl.Float64) for name in INPUT_COLUMNS[2:]),
    ).sort("symbol", "ts")
    metrics = compute_daily_metrics(frame)
    indicators = compute_indicators(frame)
    wide = pl.concat([metrics, indicators.drop("symbol", "ts")], how="horizontal")
    return wide.to_arrow().select(ANALYTICS_SCHEMA.names).cast(ANALYTICS_SCHEMA)


def split_analytics(wide: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Split a wide analytics table into (daily_metrics, indicators_1d) tables."""
    return (
        wide.select(DAILY_METRICS_SCHEMA.names).cast(DAILY_METRICS_SCHEMA),
        wide.select(INDICATORS_SCHEMA.names).cast(INDICATORS_SCHEMA),
    )
