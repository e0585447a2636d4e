"""Bar validation and back-adjustment of 500 symbols x 10 years next to a pyarrow sort.

Run by hand: ``python benchmarks/bench_quality.py``. Builds 500 symbols x ~2,500 XNYS sessions
of random-walk OHLCV (1.26 M bars, fixed seed) with one 2:1 split and four dividends per
symbol, then prints the median of five runs of ``validate_bars`` (with the calendar and the
actions), ``adjust_table``, and a baseline: pyarrow sorting the same table by (symbol, ts),
which any pass over the data has to beat by a small factor.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from marketlake.analytics.adjust import adjust_table
from marketlake.calendar import get_sessions
from marketlake.quality.bars import validate_bars
from marketlake.schemas import BAR_SCHEMA, CORPORATE_ACTION_SCHEMA

RUNS = 5
SYMBOLS = 500
NOW = datetime(2024, 1, 2, tzinfo=UTC)


def build() -> tuple[pa.Table, pa.Table]:
    """Bars (as traded, split-consistent) and their actions."""
    rng = np.random.default_rng(7)
    days = get_sessions("XNYS").session_array(date(2010, 1, 4), date(2019, 12, 31))
    n = len(days)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, (SYMBOLS, n)), axis=1))
    split_at = n // 2
    close[:, :split_at] *= 2.0  # as traded: prices before a 2:1 split are twice as high
    open_ = close * (1 + rng.normal(0, 0.005, (SYMBOLS, n)))
    symbols = [f"S{i:03d}" for i in range(SYMBOLS)]
    stamp = pa.timestamp("us", tz="UTC")
    ts = pa.array(np.tile(days.astype("datetime64[us]"), SYMBOLS)).cast(stamp)
    bars = pa.table(
        {
            "symbol": np.repeat(symbols, n),
            "ts": ts,
            "open": open_.ravel(),
            "high": (np.maximum(open_, close) * 1.01).ravel(),
            "low": (np.minimum(open_, close) * 0.99).ravel(),
            "close": close.ravel(),
            "volume": rng.integers(100_000, 10_000_000, SYMBOLS * n).astype(float),
            "source": ["bench"] * (SYMBOLS * n),
            "ingested_at": pa.array([NOW] * (SYMBOLS * n), stamp),
        }
    ).cast(BAR_SCHEMA)
    rows: list[tuple[str, Any, str, float | None, float | None]] = []
    for symbol in symbols:
        rows.append((symbol, days[split_at], "split", 2.0, None))
        rows += [(symbol, days[i], "dividend", None, 0.25) for i in (300, 900, 1500, 2100)]
    actions = pa.table(
        {
            "symbol": [r[0] for r in rows],
            "ex_date": pa.array([r[1].astype("datetime64[us]") for r in rows]).cast(stamp),
            "kind": [r[2] for r in rows],
            "ratio": pa.array([r[3] for r in rows], pa.float64()),
            "amount": pa.array([r[4] for r in rows], pa.float64()),
            "source": ["bench"] * len(rows),
            "ingested_at": pa.array([NOW] * len(rows), stamp),
        }
    ).cast(CORPORATE_ACTION_SCHEMA)
    return bars, actions


def median_seconds(work: Callable[[], object]) -> float:
    """Median wall time of ``RUNS`` calls of ``work``."""
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Print the medians and their ratios to the baseline."""
    bars, actions = build()
    sessions = get_sessions("XNYS").days
    baseline = median_seconds(lambda: bars.sort_by([("symbol", "ascending"), ("ts", "ascending")]))
    validate = median_seconds(lambda: validate_bars(bars, actions, sessions=sessions, now=NOW))
    adjust = median_seconds(lambda: adjust_table(bars, actions))
    print(f"bars: {bars.num_rows:,}")
    print(f"baseline pyarrow sort by (symbol, ts): {baseline:.3f} s")
    print(f"validate_bars: {validate:.3f} s  ratio {validate / baseline:.2f}")
    print(f"adjust_table:  {adjust:.3f} s  ratio {adjust / baseline:.2f}")


if __name__ == "__main__":
    main()
