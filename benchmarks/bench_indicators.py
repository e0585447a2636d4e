"""Indicators for 500 symbols x 10 years: marketlake's compute_indicators beside TA-Lib.

Builds 500 symbols x 2,520 sessions of random-walk OHLCV (fixed seed), then times, for the
default indicator set and for the wide set of ``docs/indicators-wide.toml`` (39 TA-Lib
functions, 46 columns):

- ``compute_indicators`` on the whole frame (split by symbol, TA-Lib per symbol, NaN ->
  null, one Polars frame out), and
- the same TA-Lib functions called directly per symbol on numpy arrays already split by
  symbol (the floor: nothing but TA-Lib's C code and its Python wrapper).

The four are timed alternately, run after run, so that all see the same load on a shared
machine. Prints the median (and the best) of 9 runs of each and, per set, the ratio of the
medians.

Run by hand: ``python benchmarks/bench_indicators.py``.
"""

from __future__ import annotations

import statistics
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from marketlake.analytics.indicator_config import resolve_indicators
from marketlake.analytics.indicator_set import (
    DEFAULT_INDICATORS,
    IndicatorSet,
)
from marketlake.analytics.indicators import compute_indicators

SYMBOLS = 500
SESSIONS = 2520
RUNS = 9
WIDE = Path(__file__).parents[1] / "docs" / "indicators-wide.toml"


def build_bars(symbols: int = SYMBOLS, sessions: int = SESSIONS, seed: int = 7) -> pl.DataFrame:
    """Random-walk daily OHLCV for ``symbols`` symbols, sorted by (symbol, ts)."""
    rng = np.random.default_rng(seed)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, (symbols, sessions)), axis=1))
    open_ = close * np.exp(rng.normal(0.0, 0.005, close.shape))
    high = np.maximum(open_, close) * (1.0 + rng.uniform(0.0, 0.01, close.shape))
    low = np.minimum(open_, close) * (1.0 - rng.uniform(0.0, 0.01, close.shape))
    volume = rng.integers(100_000, 5_000_000, close.shape).astype(np.float64)
    start = np.datetime64("2015-01-02", "us")
    days = start + np.arange(sessions) * np.timedelta64(1, "D")
    return pl.DataFrame(
        {
            "symbol": np.repeat([f"S{i:04d}" for i in range(symbols)], sessions),
            "ts": np.tile(days, symbols),
            "open": open_.ravel(),
            "high": high.ravel(),
            "low": low.ravel(),
            "close": close.ravel(),
            "volume": volume.ravel(),
        }
    ).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))


def talib_direct(
    indicators: IndicatorSet, arrays: list[dict[str, np.ndarray]]
) -> Callable[[], None]:
    """The set's TA-Lib functions called straight, one symbol at a time (the floor): the
    C functions' own Cython entry points, without TA-Lib's Series wrapper."""
    import talib

    calls = []
    for indicator in indicators.indicators:
        function = getattr(talib, indicator.function)
        function = getattr(function, "__wrapped__", function)
        calls.append((function, indicator.inputs, dict(indicator.parameters)))

    def run() -> None:
        for columns in arrays:
            for function, inputs, parameters in calls:
                function(*(columns[name] for name in inputs), **parameters)

    return run


def alternate_seconds(actions: list[Callable[[], object]], runs: int = RUNS) -> list[list[float]]:
    """Wall times of ``runs`` rounds, each calling every action once, in turn."""
    times: list[list[float]] = [[] for _ in actions]
    for _ in range(runs):
        for action, spent in zip(actions, times, strict=True):
            began = time.perf_counter()
            action()
            spent.append(time.perf_counter() - began)
    return times


def main() -> None:
    """Print every median and, per set, the ratio to TA-Lib called directly."""
    bars = build_bars()
    arrays = [
        {
            name: part.get_column(name).to_numpy()
            for name in ("open", "high", "low", "close", "volume")
        }
        for part in bars.partition_by("symbol", maintain_order=True)
    ]
    with WIDE.open("rb") as handle:
        wide = resolve_indicators(tomllib.load(handle)["indicators"])
    sets = {"default": DEFAULT_INDICATORS, "wide": wide}
    actions: list[Callable[[], object]] = []
    for indicators in sets.values():
        actions.append(lambda indicators=indicators: compute_indicators(bars, indicators))
        actions.append(talib_direct(indicators, arrays))
    times = alternate_seconds(actions)
    print(f"rows: {bars.height:,} ({SYMBOLS} symbols x {SESSIONS} sessions), {RUNS} runs each")
    for index, (label, indicators) in enumerate(sets.items()):
        ours, floor = times[2 * index], times[2 * index + 1]
        mine, theirs = statistics.median(ours), statistics.median(floor)
        size = f"{len(indicators.indicators)} functions, {len(indicators.columns)} columns"
        print(f"{label} set ({size}):")
        print(f"  compute_indicators: {mine * 1000:8.1f} ms (best {min(ours) * 1000:.1f})")
        print(f"  TA-Lib directly:    {theirs * 1000:8.1f} ms (best {min(floor) * 1000:.1f})")
        print(f"  ratio: {mine / theirs:.2f} (best to best {min(ours) / min(floor):.2f})")


if __name__ == "__main__":
    main()
