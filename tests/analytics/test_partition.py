"""The per-partition analytics computation every engine runs, and its split into tables."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from marketlake.analytics.indicator_config import resolve_indicators
from marketlake.analytics.indicators import compute_indicators
from marketlake.analytics.metrics import compute_daily_metrics
from marketlake.analytics.partition import ANALYTICS_SCHEMA, analyse_partition, split_analytics
from marketlake.schemas import BAR_SCHEMA, DAILY_METRICS_SCHEMA, INDICATORS_SCHEMA


def bar_table(symbols: dict[str, int]) -> pa.Table:
    """Bars in the canonical Bar schema, symbols interleaved and out of order."""
    rows = []
    for offset, (symbol, size) in enumerate(symbols.items()):
        rng = np.random.default_rng(offset)
        close = 20 * np.exp(np.cumsum(rng.normal(0, 0.02, size)))
        days = np.datetime64("2022-01-03", "us") + np.arange(size) * np.timedelta64(1, "D")
        rows.append(
            pl.DataFrame(
                {
                    "symbol": [symbol] * size,
                    "ts": days,
                    "open": close * 1.001,
                    "high": close * 1.01,
                    "low": close * 0.99,
                    "close": close,
                    "volume": rng.uniform(1e4, 1e5, size),
                    "source": ["sim"] * size,
                    "ingested_at": np.repeat(days[:1], size),
                }
            )
        )
    frame = pl.concat(rows).sample(fraction=1.0, shuffle=True, seed=1)
    return frame.to_arrow().cast(BAR_SCHEMA)


def test_analyse_partition_has_the_fixed_schema_and_sorted_rows() -> None:
    wide = analyse_partition(bar_table({"MSFT": 50, "AAPL": 40}))
    assert wide.schema.equals(ANALYTICS_SCHEMA)
    assert wide.num_rows == 90
    keys = pl.from_arrow(wide.select(["symbol", "ts"]))
    assert isinstance(keys, pl.DataFrame)
    assert keys.equals(keys.sort("symbol", "ts"))


def test_analyse_partition_equals_metrics_and_indicators() -> None:
    bars = bar_table({"B": 60, "A": 35})
    frame = pl.from_arrow(bars)
    assert isinstance(frame, pl.DataFrame)
    frame = frame.drop("source", "ingested_at").sort("symbol", "ts")
    wide = pl.from_arrow(analyse_partition(bars))
    assert isinstance(wide, pl.DataFrame)
    expected = compute_daily_metrics(frame).join(compute_indicators(frame), on=["symbol", "ts"])
    assert wide.equals(expected)


def test_split_gives_the_metrics_and_indicators_tables() -> None:
    bars = bar_table({"X": 40, "Y": 45})
    metrics, indicators = split_analytics(analyse_partition(bars))
    assert metrics.schema.equals(DAILY_METRICS_SCHEMA)
    assert indicators.schema.equals(INDICATORS_SCHEMA)
    assert metrics.num_rows == indicators.num_rows == 85


def test_a_configured_set_gives_its_columns() -> None:
    indicators = resolve_indicators(
        {"rsi_7": {"fn": "RSI", "timeperiod": 7}, "aroon": {"fn": "AROON", "timeperiod": 5}}
    )
    bars = bar_table({"X": 40, "Y": 45})
    wide = analyse_partition(bars, indicators)
    metrics, values = split_analytics(wide, indicators)
    assert metrics.schema.equals(DAILY_METRICS_SCHEMA)
    assert values.column_names == ["symbol", "ts", "rsi_7", "aroon_aroondown", "aroon_aroonup"]
    assert values.schema.equals(indicators.schema)


def test_partitions_analysed_apart_equal_the_whole() -> None:
    bars = bar_table({"A": 40, "B": 50, "C": 45})
    whole = analyse_partition(bars)
    parts = [
        analyse_partition(bars.filter(pa.compute.is_in(bars["symbol"], pa.array(group))))
        for group in (["A", "C"], ["B"])
    ]
    together = pa.concat_tables(parts).sort_by([("symbol", "ascending"), ("ts", "ascending")])
    assert together.equals(whole)


def test_missing_columns_are_reported() -> None:
    from marketlake.errors import TerminalError

    with pytest.raises(TerminalError, match="volume"):
        analyse_partition(bar_table({"A": 5}).drop_columns(["volume"]))
