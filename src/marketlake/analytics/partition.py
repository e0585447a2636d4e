"""The per-partition analytics computation every engine runs.

:func:`analyse_partition` is the unit of work: one or many whole symbols of adjusted bars in,
one wide table out. The Polars engine runs it per bucket of symbols in process; a distributed
engine runs the same function per symbol group and splits the result with
:func:`split_analytics`.

:func:`analytics_schema` is the wide table: symbol, ts, close, the daily metrics
(:mod:`marketlake.analytics.metrics`) and the configured indicators
(:mod:`marketlake.analytics.indicators`), one row per input bar, sorted by (symbol, ts).
"""

from __future__ import annotations

import pyarrow as pa

from marketlake.analytics.indicator_set import DEFAULT_INDICATORS, IndicatorSet
from marketlake.errors import TerminalError
from marketlake.schemas import DAILY_METRICS_SCHEMA

INPUT_COLUMNS = ("symbol", "ts", "open", "high", "low", "close", "volume")


def analytics_schema(indicators: IndicatorSet = DEFAULT_INDICATORS) -> pa.Schema:
    """The wide table: the daily metrics' columns, then the indicators' columns."""
    schema = indicators.schema
    return pa.schema(
        list(DAILY_METRICS_SCHEMA) + [schema.field(name) for name in indicators.columns]
    )


ANALYTICS_SCHEMA = analytics_schema()
"""The wide table of the default indicator set."""


def analyse_partition(bars: pa.Table, indicators: IndicatorSet = DEFAULT_INDICATORS) -> pa.Table:
    """Daily metrics and ``indicators`` of adjusted daily bars, as one wide table
    (:func:`analytics_schema`).

    ``bars`` holds whole symbols (any order; extra columns are ignored).
    """
    import polars as pl

    from marketlake.analytics.indicators import compute_indicators
    from marketlake.analytics.metrics import compute_daily_metrics
    from marketlake.series import sort_by_key

    missing = [name for name in INPUT_COLUMNS if name not in bars.column_names]
    if missing:
        raise TerminalError(f"analytics needs bar columns {list(INPUT_COLUMNS)}; missing {missing}")
    frame = pl.from_arrow(bars.select(list(INPUT_COLUMNS)))
    assert isinstance(frame, pl.DataFrame)
    frame = sort_by_key(  # adjusted bars arrive sorted: checked, not sorted again
        frame.with_columns(
            pl.col("ts").cast(pl.Datetime("us", "UTC")),
            *(pl.col(name).cast(pl.Float64) for name in INPUT_COLUMNS[2:]),
        )
    )
    metrics = compute_daily_metrics(frame)
    values = compute_indicators(frame, indicators)
    wide = pl.concat([metrics, values.drop("symbol", "ts")], how="horizontal")
    schema = analytics_schema(indicators)
    return wide.to_arrow().select(schema.names).cast(schema)


def split_analytics(
    wide: pa.Table, indicators: IndicatorSet = DEFAULT_INDICATORS
) -> tuple[pa.Table, pa.Table]:
    """Split a wide analytics table into (daily_metrics, indicators_1d) tables."""
    schema = indicators.schema
    return (
        wide.select(DAILY_METRICS_SCHEMA.names).cast(DAILY_METRICS_SCHEMA),
        wide.select(schema.names).cast(schema),
    )
