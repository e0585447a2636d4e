"""Provisional window rows of a small batch, computed in Python from the minute state.

A poll at a live rate (a few hundred ticks) touches a few minutes, so it asks for a few dozen
sliding windows of about fifteen bars each. Polars spends about 3 ms per poll planning and
running :func:`~marketlake.streaming.windows.aggregate_windows` for them, most of the poll's
processing time and so of its tick-to-window latency; the same rows take a fraction of that
in plain Python. Even filtering the bars they need out of the minute state costs Polars
0.8 ms, so a small state is read as Python lists (0.02 ms for ten symbols). The rules are
those of :mod:`marketlake.streaming.windows` (``tests/streaming/test_stream_window_rows.py``
checks that both give the same rows); bigger batches, and every final or corrected row, go
through the Polars query.
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
SMALL_STATE = 1024
"""Minute-state rows up to which a poll's bars are read as Python lists, not queried."""
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
    by_symbol = _bars_by_symbol(
        state,
        {symbol for symbol, _, _ in requests},
        min(start for _, _, start in requests),
        max(requests.values()),
    )
    columns: dict[str, list[Any]] = {name: [] for name in WINDOW_SCHEMA.names}
    for (symbol, kind, start), end in sorted(requests.items()):
        inside = [bar for bar in by_symbol.get(symbol, ()) if start <= bar[0] < end]
        if inside:
            _append_row(columns, symbol, kind, start, end, inside)
    count = len(columns["symbol"])
    columns["is_final"] = [False] * count
    columns["updated_at"] = [now] * count
    return pa.table(columns, schema=WINDOW_SCHEMA)


def _bars_by_symbol(
    state: pl.DataFrame, symbols: set[str], low: int, high: int
) -> dict[str, list[Bar]]:
    """The bars of ``symbols`` with a minute in ``[low, high)``, per symbol in minute order.

    A state of up to :data:`SMALL_STATE` rows (the open minutes of a few dozen symbols) is
    read as Python lists, which costs a tenth of a Polars query's fixed cost; a bigger one is
    filtered by Polars.
    """
    by_symbol: dict[str, list[Bar]] = defaultdict(list)
    if state.height <= SMALL_STATE:
        columns = [state.get_column(name).to_list() for name in ("symbol", *_BAR_COLUMNS)]
        for symbol, *bar in zip(*columns, strict=True):
            if symbol in symbols and low <= bar[0] < high:
                by_symbol[symbol].append(tuple(bar))
        for bars in by_symbol.values():
            bars.sort(key=_minute)
        return by_symbol
    rows = (
        state.lazy()
        .filter(
            pl.col("symbol").is_in(sorted(symbols))
            & (pl.col("minute") >= low)
            & (pl.col("minute") < high)
        )
        .sort(["symbol", "minute"])
        .select(["symbol", *_BAR_COLUMNS])
        .collect(engine=ENGINE, optimizations=pl.QueryOptFlags.none())  # too small to plan
    )
    for row in rows.iter_rows():
        by_symbol[row[0]].append(row[1:])
    return by_symbol


def _minute(bar: Bar) -> int:
    return bar[0]


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
