"""Bar intervals of the API: which table each reads and how coarser bars are resampled."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import polars as pl
import pyarrow as pa


class Interval(StrEnum):
    """The bar intervals the API serves."""

    d1 = "1d"
    w1 = "1w"
    mo1 = "1mo"
    m1 = "1m"
    m5 = "5m"
    h1 = "1h"


@dataclass(frozen=True)
class IntervalSpec:
    """Where bars of an interval come from: the base table's interval and how many base bars
    one bar spans at most (None: served as stored)."""

    intraday: bool
    every: str | None  # Polars duration of one bar when resampled
    base_per_bar: int  # base rows one resampled bar can hold at most


SPECS: dict[Interval, IntervalSpec] = {
    Interval.d1: IntervalSpec(False, None, 1),
    Interval.w1: IntervalSpec(False, "1w", 7),
    Interval.mo1: IntervalSpec(False, "1mo", 31),
    Interval.m1: IntervalSpec(True, None, 1),
    Interval.m5: IntervalSpec(True, "5m", 5),
    Interval.h1: IntervalSpec(True, "1h", 60),
}


def resample(bars: pa.Table, every: str, descending: bool) -> tuple[pa.Table, list[object]]:
    """OHLCV bars of ``every`` (weeks start on Monday, months on the 1st) from finer ``bars``
    of one symbol; with the first base ``ts`` of each bar (the earliest, or the latest when
    ``descending``), used to start the next page."""
    frame = pl.from_arrow(bars)
    assert isinstance(frame, pl.DataFrame)
    grouped = (
        frame.sort("ts")
        .group_by_dynamic("ts", every=every, label="left", closed="left")
        .agg(
            pl.col("symbol").first(),
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
            pl.col("ts").min().alias("_first"),
            pl.col("ts").max().alias("_last"),
        )
        .sort("ts", descending=descending)
    )
    edges = grouped.get_column("_last" if descending else "_first").to_list()
    out = grouped.select("symbol", "ts", "open", "high", "low", "close", "volume").to_arrow()
    return out, edges
