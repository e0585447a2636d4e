"""Window rows computed from 1-minute aggregates.

A window row aggregates the 1-minute bars whose minute start lies in
``[window_start, window_end)``:

- ``mean_price``: mean of the bars' closes (for ``ma_*`` kinds this is the moving average);
- ``vwap``: sum(price * size) / sum(size) over the window's ticks (null when volume is 0);
- ``volatility``: sample standard deviation (ddof=1) of the log returns ``ln(c_i / c_{i-1})``
  between consecutive bars inside the window (minutes without ticks are skipped, the bar
  before the window is not used); null with fewer than two returns; not annualised;
- ``high``, ``low``, ``volume``, ``ticks``: over the window's ticks.

Sliding windows start at multiples of their step since the Unix epoch (UTC). Moving-average
rows exist for every 1-minute bar: ``window_end`` is the bar's end and ``window_start`` is
``window_end - horizon``.
"""

from __future__ import annotations

import math

import polars as pl

from marketlake.streaming.bars import KEYS, MINUTE_US
from marketlake.streaming.config import SlidingWindow, to_us

REQUEST_KEYS = ["symbol", "kind", "window_start"]


def sliding_candidates(minutes: pl.LazyFrame, spec: SlidingWindow) -> pl.LazyFrame:
    """Every window of ``spec`` that contains one of ``minutes`` (columns symbol, minute)."""
    period, every = to_us(spec.period), to_us(spec.every)
    steps = list(range(math.ceil(period / every)))
    return (
        minutes.select(KEYS)
        .with_columns(j=pl.lit(steps, dtype=pl.List(pl.Int64)))
        .explode("j")
        .with_columns(window_start=(pl.col("minute") // every) * every - pl.col("j") * every)
        .filter(pl.col("window_start") + period > pl.col("minute"))
        .select(
            "symbol",
            pl.lit(spec.kind).alias("kind"),
            "window_start",
            (pl.col("window_start") + period).alias("window_end"),
        )
        .unique(REQUEST_KEYS)
    )


def following_bars(minutes: pl.LazyFrame, horizon_us: int) -> pl.LazyFrame:
    """Bar minutes in ``[m, m + horizon)`` for each ``m`` of ``minutes``: the bars whose
    trailing window of ``horizon`` contains ``m``."""
    offsets = list(range(0, horizon_us, MINUTE_US))
    return (
        minutes.select(KEYS)
        .with_columns(k=pl.lit(offsets, dtype=pl.List(pl.Int64)))
        .explode("k")
        .select("symbol", (pl.col("minute") + pl.col("k")).alias("minute"))
        .unique(KEYS)
    )


def trailing_requests(bars: pl.LazyFrame, horizon_us: int, kind: str) -> pl.LazyFrame:
    """Moving-average window requests for each bar of ``bars`` (columns symbol, minute)."""
    return bars.select(
        "symbol",
        pl.lit(kind).alias("kind"),
        (pl.col("minute") + MINUTE_US - horizon_us).alias("window_start"),
        (pl.col("minute") + MINUTE_US).alias("window_end"),
    )


def aggregate_windows(requests: pl.LazyFrame, state: pl.LazyFrame) -> pl.LazyFrame:
    """Window rows for ``requests`` (symbol, kind, window_start, window_end, is_final) from the
    minute aggregates in ``state``; requests without any bar produce no row.

    Besides the output columns, ``first_price`` (first tick's price) and ``last_price`` (last
    tick's price) are returned for alerting.
    """
    bars = state.select([*KEYS, "open", "high", "low", "close", "volume", "pv", "trades"])
    same_window = (
        (pl.col("symbol") == pl.col("symbol").shift())
        & (pl.col("kind") == pl.col("kind").shift())
        & (pl.col("window_start") == pl.col("window_start").shift())
    )
    log_close = pl.col("close").log()
    return (
        requests.with_columns(
            minute=pl.int_ranges("window_start", "window_end", MINUTE_US, dtype=pl.Int64)
        )
        .explode("minute")
        .join(bars, on=KEYS, how="inner")
        .sort([*REQUEST_KEYS, "minute"])
        .with_columns(log_return=pl.when(same_window).then(log_close - log_close.shift()))
        .group_by(REQUEST_KEYS, maintain_order=True)
        .agg(
            window_end=pl.col("window_end").first(),
            is_final=pl.col("is_final").first(),
            mean_price=pl.col("close").mean(),
            pv=pl.col("pv").sum(),
            volume=pl.col("volume").sum(),
            volatility=pl.col("log_return").std(),
            high=pl.col("high").max(),
            low=pl.col("low").min(),
            ticks=pl.col("trades").sum(),
            first_price=pl.col("open").first(),
            last_price=pl.col("close").last(),
        )
        .with_columns(
            vwap=pl.when(pl.col("volume") > 0).then(pl.col("pv") / pl.col("volume")),
        )
    )
