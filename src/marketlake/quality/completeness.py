"""Calendar-driven completeness: the expected sessions that have no good bar."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pyarrow as pa

from marketlake.schemas import UTC_US
from marketlake.series import run_starts

MISSING_SCHEMA = pa.schema(
    [pa.field("symbol", pa.string(), nullable=False), pa.field("ts", UTC_US, nullable=False)]
)


def session_index(days: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Position of each ``day`` in the sorted session array ``days`` (both int64 day numbers),
    or -1 where ``day`` is not a session. A dense lookup table makes this O(n)."""
    out = np.full(len(day), -1, dtype=np.int64)
    if len(days) == 0:
        return out
    first = int(days[0])
    table = np.full(int(days[-1]) - first + 1, -1, dtype=np.int64)
    table[days - first] = np.arange(len(days))
    offset = day - first
    inside = (offset >= 0) & (offset < len(table))
    out[inside] = table[offset[inside]]
    return out


def missing_sessions(
    spans: pl.DataFrame,
    good: pl.DataFrame,
    sessions: np.ndarray,
    requested: tuple[date, date] | None = None,
) -> pa.Table:
    """Sessions expected for each symbol that ``good`` has no bar for (``MISSING_SCHEMA``).

    ``spans`` has one row per symbol (sorted by symbol) with ``first`` and ``last`` dates:
    the symbol is expected to trade on every session in ``[first, last]``, or in
    ``requested`` when that is given. ``good`` holds the symbol and ts (midnight UTC) of the
    bars that passed validation, sorted by symbol and ts.
    """
    days = np.asarray(sessions, dtype="datetime64[D]")
    if spans.height == 0 or days.size == 0:
        return MISSING_SCHEMA.empty_table()
    symbols = spans["symbol"].to_numpy()
    if requested is not None:
        lo_day = np.full(len(symbols), np.datetime64(requested[0], "D"))
        hi_day = np.full(len(symbols), np.datetime64(requested[1], "D"))
    else:
        lo_day = spans["first"].to_numpy().astype("datetime64[D]")
        hi_day = spans["last"].to_numpy().astype("datetime64[D]")
    lo = np.searchsorted(days, lo_day, side="left")
    lengths = np.maximum(np.searchsorted(days, hi_day, side="right") - lo, 0)
    offsets = np.cumsum(lengths) - lengths
    total = int(lengths.sum())
    if total == 0:
        return MISSING_SCHEMA.empty_table()
    present = np.zeros(total, dtype=bool)
    if good.height:
        is_start = good.select(run_starts()).to_series().to_numpy()
        run_symbols = good["symbol"].gather(np.flatnonzero(is_start)).to_numpy()
        found = np.minimum(np.searchsorted(symbols, run_symbols), len(symbols) - 1)
        run_code = np.where(symbols[found] == run_symbols, found, -1)
        code = run_code[np.cumsum(is_start) - 1]
        micros = good["ts"].cast(pl.Datetime("us", "UTC")).cast(pl.Int64).to_numpy()
        index = session_index(days.astype(np.int64), micros // 86_400_000_000)
        position = index - lo[code]
        inside = (code >= 0) & (index >= 0) & (position >= 0) & (position < lengths[code])
        present[(offsets[code] + position)[inside]] = True
    slots = np.flatnonzero(~present)
    owner = np.searchsorted(offsets, slots, side="right") - 1
    return pa.table(
        {
            "symbol": pa.array(symbols[owner], pa.string()),
            "ts": pa.array(days[lo[owner] + slots - offsets[owner]].astype("datetime64[us]")).cast(
                UTC_US
            ),
        }
    ).cast(MISSING_SCHEMA)
