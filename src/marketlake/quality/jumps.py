"""The implausible-jump rule: a close far from the previous close that no split explains.

Each close is compared with the previous bar of its symbol (the last stored bar for the first
row of a batch). Prices are put on one share basis first: ``close * C(ts)``, where ``C(ts)`` is
the product of the ratios of the symbol's splits with ``ex_date <= ts``, so a 4-for-1 split on
the day of the drop (or anywhere in a gap between two bars) leaves the comparison unchanged.

A single bad print produces two large moves: away from the true level and back. The second
bar is kept when it is within bounds of the last bar that was not flagged, so only the bad
print is quarantined. A lasting level shift flags only its first day.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import polars as pl

from marketlake.schemas import SPLIT
from marketlake.series import run_starts, sort_by_key

_UTC_US = pl.Datetime("us", "UTC")
Splits = dict[str, list[tuple[int, float]]]  # symbol -> [(ex_date in µs, ratio)], sorted


def _splits(actions: pl.DataFrame) -> Splits:
    rows = (
        actions.filter(
            (pl.col("kind") == SPLIT) & pl.col("ratio").is_finite() & (pl.col("ratio") > 0)
        )
        .select("symbol", pl.col("ex_date").cast(_UTC_US).cast(pl.Int64), "ratio")
        .unique(subset=["symbol", "ex_date"], keep="first", maintain_order=True)
        .sort("symbol", "ex_date")
    )
    out: Splits = defaultdict(list)
    for symbol, ex, ratio in rows.iter_rows():
        out[symbol].append((ex, ratio))
    return out


def _basis(ts: np.ndarray, starts: np.ndarray, symbols: list[str], splits: Splits) -> np.ndarray:
    """``C(ts)`` for every row; rows are sorted by symbol then ts, runs begin at ``starts``."""
    basis = np.ones(len(ts))
    ends = np.append(starts[1:], len(ts))
    for a, b, symbol in zip(starts, ends, symbols, strict=True):
        for ex, ratio in splits.get(symbol, ()):
            basis[a + int(np.searchsorted(ts[a:b], ex, side="left")) : b] *= ratio
    return basis


def _stored(
    previous: pl.DataFrame | None, symbols: list[str], firsts: np.ndarray, splits: Splits
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per run: close, ts (µs) and level of the last stored bar before the run's first row."""
    close = np.full(len(symbols), np.nan)
    ts = np.zeros(len(symbols), dtype=np.int64)
    level = np.full(len(symbols), np.nan)
    if previous is None or previous.height == 0:
        return close, ts, level
    first_of = dict(zip(symbols, firsts.tolist(), strict=True))
    index = {s: i for i, s in enumerate(symbols)}
    rows = sort_by_key(
        previous.select("symbol", pl.col("ts").cast(_UTC_US).cast(pl.Int64), "close").filter(
            pl.col("symbol").is_in(symbols)
        )
    )
    for symbol, stamp, value in rows.iter_rows():
        if stamp < first_of[symbol]:  # rows are sorted: the last one kept is the latest
            i = index[symbol]
            close[i], ts[i] = value, stamp
            level[i] = value * np.prod([r for ex, r in splits.get(symbol, ()) if ex <= stamp])
    return close, ts, level


def flag_jumps(
    batch: pl.DataFrame,
    previous: pl.DataFrame | None,
    actions: pl.DataFrame,
    max_daily_jump: float,
) -> pl.DataFrame:
    """Rows of ``batch`` (symbol, ts, close, _row; sorted by symbol, ts; one row per key)
    whose close jumps implausibly.

    Returns, per flagged row, ``_row``, ``_prev_close``, ``_prev_ts``, ``_change`` (relative
    change of the split-adjusted close) and ``_split`` (the split ratio applied in between).
    ``previous`` holds stored bars (symbol, ts, close); per symbol, the last one before the
    batch's first row is the first row's predecessor.
    """
    n = batch.height
    columns = {
        "_row": batch["_row"].dtype if n else pl.UInt32(),
        "_prev_close": pl.Float64(),
        "_prev_ts": _UTC_US,
        "_change": pl.Float64(),
        "_split": pl.Float64(),
    }
    if n == 0:
        return pl.DataFrame(schema=columns)
    is_start = batch.select(run_starts()).to_series().to_numpy()
    starts = np.flatnonzero(is_start)
    symbols = batch["symbol"].gather(starts).to_list()
    ts = batch["ts"].cast(_UTC_US).cast(pl.Int64).to_numpy()
    close = batch["close"].to_numpy()
    splits = _splits(actions)
    basis = _basis(ts, starts, symbols, splits)
    level = close * basis
    stored_close, stored_ts, stored_level = _stored(previous, symbols, ts[starts], splits)

    def previous_of(values: np.ndarray, stored: np.ndarray) -> np.ndarray:
        out = np.empty_like(values)
        out[1:] = values[:-1]
        out[starts] = stored
        return out

    prev_level = previous_of(level, stored_level)
    with np.errstate(invalid="ignore", divide="ignore"):
        change = level / prev_level - 1.0
        first_pass = np.abs(change) > max_daily_jump  # NaN (no predecessor) compares False
        # The last unflagged level before each row within its run, else the stored level.
        candidate = np.where(first_pass, -1, np.arange(n))
        last = np.maximum.accumulate(np.concatenate(([-1], candidate[:-1])))
        run_start = np.repeat(starts, np.diff(np.append(starts, n)))
        run_of = np.cumsum(is_start) - 1
        anchor = np.where(last >= run_start, level[np.maximum(last, 0)], stored_level[run_of])
        after_flagged = np.concatenate(([False], first_pass[:-1])) & ~is_start
        recovered = after_flagged & (np.abs(level / anchor - 1.0) <= max_daily_jump)
    hit = np.flatnonzero(first_pass & ~recovered)
    prev_close = previous_of(close, stored_close)
    prev_basis = prev_level / prev_close
    return pl.DataFrame(
        {
            "_row": batch["_row"].gather(hit),
            "_prev_close": prev_close[hit],
            "_prev_ts": previous_of(ts, stored_ts)[hit],
            "_change": change[hit],
            "_split": basis[hit] / prev_basis[hit],
        }
    ).cast(pl.Schema(columns))
