"""Indicators for 500 symbols x 10 years: marketlake's compute_indicators against TA-Lib.

Builds 500 symbols x 2,520 sessions of random-walk OHLCV (fixed seed), then times
``compute_indicators`` on the whole frame and TA-Lib's C functions (SMA, EMA, RSI, MACD,
BBANDS, ATR, STDDEV, OBV) called per symbol on numpy arrays already split by symbol.
The two are timed alternately, run after run, so that both see the same load on a shared
machine. Prints the median (and the best) of 9 runs of each and the ratio of the medians
(target: <= 2.0).

Run by hand: ``python benchmarks/bench_indicators.py``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
import polars as pl

from marketlake.analytics.indicators import compute_indicators

SYMBOLS = 500
SESSIONS = 2520
RUNS = 9


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


def talib_per_symbol(arrays: list[tuple[np.ndarray, ...]]) -> None:
    """Every indicator marketlake computes, with TA-Lib, one symbol at a time."""
    import talib

    for high, low, close, volume in arrays:
        talib.SMA(close, 20)
        talib.EMA(close, 20)
        talib.RSI(close, 14)
        talib.MACD(close, 12, 26, 9)
        talib.BBANDS(close, 20, 2.0, 2.0, talib.MA_Type.SMA)
        talib.ATR(high, low, close, 14)
        talib.STDDEV(close, 20, 1.0)
        talib.OBV(close, volume)


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
    """Print both medians and their ratio."""
    bars = build_bars()
    arrays = [
        tuple(part.get_column(name).to_numpy() for name in ("high", "low", "close", "volume"))
        for part in bars.partition_by("symbol", maintain_order=True)
    ]
    ours, reference = alternate_seconds(
        [lambda: compute_indicators(bars), lambda: talib_per_symbol(arrays)]
    )
    mine, theirs = statistics.median(ours), statistics.median(reference)
    print(f"rows: {bars.height:,} ({SYMBOLS} symbols x {SESSIONS} sessions)")
    print(
        f"compute_indicators: {mine * 1000:8.1f} ms (median of {RUNS}; best {min(ours) * 1000:.1f})"
    )
    print(
        f"TA-Lib per symbol:  {theirs * 1000:8.1f} ms "
        f"(median of {RUNS}; best {min(reference) * 1000:.1f})"
    )
    print(
        f"ratio: {mine / theirs:.2f} (target <= 2.0; best to best {min(ours) / min(reference):.2f})"
    )


if __name__ == "__main__":
    main()
