"""Provisional window rows of a small batch, computed in Python from the minute state.

A poll at a live rate (a few hundred ticks) touches a few minutes, so it asks for a few dozen
sliding windows of about fifteen bars each. Polars spends about 3 ms per poll planning and
running :func:`~marketlake.streaming.windows.aggregate_windows` for them, most of the poll's
processing time and so of its tick-to-window latency; the same rows take a fraction of that
in plain Python. The rules are those of :mod:`marketlake.streaming.windows`
(``tests/streaming/test_stream_window_rows.py`` checks that both give the same rows); bigger
batches, and every final or corrected row, go through the Polars query.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from datetime import datetime
from typing import Any

import polars as pl
import pyarrow as pa

from marketlake.schemas import WINDOW_SCHEMA
from marketlake.streaming.config import StreamConfig, to_us
from marketlake.streaming.frames import ENGINE

_BAR_COLUMNS = ["minute", "high", "low", "close", "volume", "pv", "trades"]
Bar = tuple[int, float, float, float, float, float, int]  # the values of _BAR_COLUMNS


def sliding_requests(
    config: StreamConfig, touched: pl.DataFrame
) -> dict[tuple[str, str, int], int]:
    """``(symbol, kind, window_start) → window_end`` of every sliding window containing one
    of the ``touched`` (symbol, minute) keys (the windows
    :func:`~marketlake.streaming.windows.sliding_candidates` gives)."""
    out: dict[tuple[str, str, int], int] = {}
    keys = list(zip(touched.get_column("symbol"), touched.get_column("minute"), strict=True))
    for spec in config.sliding:
        period, every = to_us(spec.period), to_us(spec.every)
        steps = math.ceil(period / every)
        for symbol, minute in keys:
            base = (minute // every) * every
            for j in range(steps):
                start = base - j * every
                if start + period > minute:
                    out[(symbol, spec.kind, start)] = start + period
    return out


def provisional_rows(
    requests: dict[tuple[str, str, int], int], state: pl.DataFrame, now: datetime
) -> pa.Table:
    """The not-yet-final window rows of ``requests`` (see :func:`sliding_requests`) from the
    minute ``state``, as a :data:`WINDOW_SCHEMA` table sorted by symbol, kind and start; a
    window without any bar gives no row."""
    symbols = sorted({symbol for symbol, _, _ in requests})
    low = min(start for _, _, start in requests)
    high = max(requests.values())
    bars = (
        state.lazy()
        .filter(
            pl.col("symbol").is_in(symbols) & (pl.col("minute") >= low) & (pl.col("minute") < high)
        )
        .sort(["symbol", "minute"])
        .select(["symbol", *_BAR_COLUMNS])
        .collect(engine=ENGINE, optimizations=pl.QueryOptFlags.none())  # too small to plan
    )
    by_symbol: dict[str, list[Bar]] = defaultdict(list)
    for row in bars.iter_rows():
        by_symbol[row[0]].append(row[1:])
    columns: dict[str, list[Any]] = {name: [] for name in WINDOW_SCHEMA.names}
    for (symbol, kind, start), end in sorted(requests.items()):
        inside = [bar for bar in by_symbol.get(symbol, ()) if start <= bar[0] < end]
        if inside:
            _append_row(columns, symbol, kind, start, end, inside)
    count = len(columns["symbol"])
    columns["is_final"] = [False] * count
    columns["updated_at"] = [now] * count
    return pa.table(columns, schema=WINDOW_SCHEMA)


def _append_row(
    columns: dict[str, list[Any]],
    symbol: str,
    kind: str,
    start: int,
    end: int,
    bars: list[Bar],
) -> None:
    """Add the row of one window over its ``bars`` (minute, high, low, close, volume, pv,
    trades; in minute order)."""
    closes = [bar[3] for bar in bars]
    volume = sum(bar[4] for bar in bars)
    pv = sum(bar[5] for bar in bars)
    logs = [math.log(c) if c > 0 else (-math.inf if c == 0 else math.nan) for c in closes]
    returns = [b - a for a, b in itertools.pairwise(logs)]
    columns["symbol"].append(symbol)
    columns["window_start"].append(start)
    columns["window_end"].append(end)
    columns["kind"].append(kind)
    columns["mean_price"].append(sum(closes) / len(closes))
    columns["vwap"].append(pv / volume if volume > 0 else None)
    columns["volatility"].append(_sample_std(returns))
    columns["high"].append(max(bar[1] for bar in bars))
    columns["low"].append(min(bar[2] for bar in bars))
    columns["volume"].append(volume)
    columns["ticks"].append(sum(bar[6] for bar in bars))


def _sample_std(values: list[float]) -> float | None:
    """Sample standard deviation (ddof=1); None with fewer than two values."""
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
