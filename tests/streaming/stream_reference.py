"""An independent reference for the stream-processor tests.

The reference recomputes bars and windows from the full tick set with Polars'
``group_by_dynamic`` and ``rolling``, without any of the processor's code.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pyarrow as pa
import pytest

FIXED_NOW = datetime(2030, 1, 1, tzinfo=UTC)


def _frame(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def reference_bars(ticks: pa.Table) -> pl.DataFrame:
    """1-minute bars of every tick (open/close by (ts, seq))."""
    return (
        _frame(ticks)
        .sort("symbol", "ts", "seq")
        .group_by_dynamic("ts", every="1m", group_by="symbol")
        .agg(
            open=pl.col("price").first(),
            high=pl.col("price").max(),
            low=pl.col("price").min(),
            close=pl.col("price").last(),
            volume=pl.col("size").sum(),
            pv=(pl.col("price") * pl.col("size")).sum(),
            trades=pl.len().cast(pl.Int64),
        )
        .with_columns(vwap=pl.col("pv") / pl.col("volume"))
    )


def _window_aggs() -> list[pl.Expr]:
    return [
        pl.col("close").mean().alias("mean_price"),
        (pl.col("pv").sum() / pl.col("volume").sum()).alias("vwap"),
        pl.col("close").log().diff().std().alias("volatility"),
        pl.col("high").max().alias("high"),
        pl.col("low").min().alias("low"),
        pl.col("volume").sum().alias("volume"),
        pl.col("trades").sum().alias("ticks"),
    ]


def reference_windows(
    ticks: pa.Table,
    period: str = "15m",
    every: str = "5m",
    horizons: tuple[str, ...] = ("15m", "1h"),
) -> pl.DataFrame:
    """Sliding windows (group_by_dynamic) and trailing moving averages (rolling) of ``ticks``."""
    bars = reference_bars(ticks).sort("symbol", "ts")
    offset = f"-{int(period[:-1]) - int(every[:-1])}m"  # also the windows that start earlier
    sliding = (
        bars.group_by_dynamic(
            "ts",
            every=every,
            period=period,
            offset=offset,
            group_by="symbol",
            include_boundaries=True,
            start_by="window",
        )
        .agg(_window_aggs())
        .select(
            "symbol",
            pl.col("_lower_boundary").alias("window_start"),
            pl.col("_upper_boundary").alias("window_end"),
            pl.lit(f"sliding_{period}_{every}").alias("kind"),
            "mean_price",
            "vwap",
            "volatility",
            "high",
            "low",
            "volume",
            "ticks",
        )
    )
    parts = [sliding]
    for horizon in horizons:
        minutes = {"15m": 15, "1h": 60, "30m": 30}[horizon]
        rolled = (
            bars.rolling(index_column="ts", period=horizon, group_by="symbol")
            .agg(_window_aggs())
            .with_columns(window_end=pl.col("ts") + timedelta(minutes=1))
            .select(
                "symbol",
                (pl.col("window_end") - timedelta(minutes=minutes)).alias("window_start"),
                "window_end",
                pl.lit(f"ma_{horizon}").alias("kind"),
                "mean_price",
                "vwap",
                "volatility",
                "high",
                "low",
                "volume",
                "ticks",
            )
        )
        parts.append(rolled)
    return pl.concat(parts).sort("symbol", "kind", "window_start")


def last_rows(table: pa.Table, keys: list[str]) -> pl.DataFrame:
    """The last emitted row per key: what an upsert sink ends with."""
    return _frame(table).unique(keys, keep="last", maintain_order=True).sort(keys)


def assert_frames_close(
    actual: pl.DataFrame, expected: pl.DataFrame, keys: list[str], columns: list[str]
) -> None:
    """Same keys, and every column equal within floating-point tolerance."""
    joined = expected.join(actual, on=keys, how="full", suffix="_actual", coalesce=True)
    assert joined.height == expected.height == actual.height, (
        f"{actual.height} rows emitted, {expected.height} expected"
    )
    for column in columns:
        want = joined.get_column(column).to_list()
        got = joined.get_column(f"{column}_actual").to_list()
        for w, g in zip(want, got, strict=True):
            if w is None or g is None:
                assert w is None and g is None, (column, w, g)
            elif isinstance(w, float) or isinstance(g, float):
                assert g == pytest.approx(w, rel=1e-9, abs=1e-12), (column, w, g)
            else:
                assert g == w, (column, w, g)


WINDOW_VALUES = ["window_end", "mean_price", "vwap", "volatility", "high", "low", "volume", "ticks"]
BAR_VALUES = ["open", "high", "low", "close", "volume", "vwap", "trades"]
