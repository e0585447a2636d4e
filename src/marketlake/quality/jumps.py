"""The implausible-jump rule: a close far from the previous close that no split explains.

Each close is compared with the previous bar of its symbol among the batch and the stored bars
(so a batch of scattered sessions is judged against its real neighbours, never against a bar
weeks earlier). Prices are put on one share basis first: ``close * C(ts)``, where ``C(ts)`` is
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
from marketlake.series import run_starts

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


def _with_context(batch: pl.DataFrame, previous: pl.DataFrame | None) -> pl.DataFrame:
    """``batch`` (symbol, ts, close, _row) with the stored bars of its symbols that it does not
    replace, marked ``_context``; sorted by symbol and ts."""
    rows = batch.select("symbol", pl.col("ts").cast(_UTC_US), "close", "_row").with_columns(
        pl.lit(False).alias("_context")
    )
    if previous is None or previous.height == 0:
        return rows
    spans = rows.group_by("symbol").agg(
        pl.col("ts").min().alias("_first"), pl.col("ts").max().alias("_last")
    )
    near = previous.select("symbol", pl.col("ts").cast(_UTC_US), "close").join(spans, on="symbol")
    # only the bars within each symbol's span of the batch, and the last one before it, matter
    # (the latest by a window maximum: no sort of the symbols' whole stored history)
    before = near.filter(pl.col("ts") < pl.col("_first"))
    stored = (
        pl.concat(
            [
                before.filter(pl.col("ts") == pl.col("ts").max().over("symbol")),
                near.filter(pl.col("ts").is_between(pl.col("_first"), pl.col("_last"))),
            ]
        )
        .drop("_first", "_last")
        .join(rows.select("symbol", "ts"), on=["symbol", "ts"], how="anti")
        .unique(subset=["symbol", "ts"], keep="last", maintain_order=True)
        .with_columns(
            pl.lit(None, rows["_row"].dtype).alias("_row"), pl.lit(True).alias("_context")
        )
    )
    if stored.height == 0:
        return rows
    return pl.concat([rows, stored]).sort("symbol", "ts", maintain_order=True)


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
    ``previous`` holds stored bars (symbol, ts, close) of any dates: each batch row is
    compared with the bar just before it among the stored bars and the batch, so a batch of
    scattered sessions (a re-fetch of gaps) is judged against its real neighbours. Stored bars
    are context only: they are never flagged.
    """
    columns = {
        "_row": batch["_row"].dtype if batch.height else pl.UInt32(),
        "_prev_close": pl.Float64(),
        "_prev_ts": _UTC_US,
        "_change": pl.Float64(),
        "_split": pl.Float64(),
    }
    if batch.height == 0:
        return pl.DataFrame(schema=columns)
    series = _with_context(batch, previous)
    n = series.height
    is_start = series.select(run_starts()).to_series().to_numpy()
    starts = np.flatnonzero(is_start)
    symbols = series["symbol"].gather(starts).to_list()
    ts = series["ts"].cast(pl.Int64).to_numpy()
    close = series["close"].to_numpy()
    context = series["_context"].to_numpy()
    basis = _basis(ts, starts, symbols, _splits(actions))
    level = close * basis

    def previous_of(values: np.ndarray) -> np.ndarray:
        out = np.empty(n, dtype=np.float64 if values.dtype.kind == "f" else values.dtype)
        out[1:] = values[:-1]
        out[starts] = np.nan if values.dtype.kind == "f" else 0
        return out

    prev_level = previous_of(level)
    with np.errstate(invalid="ignore", divide="ignore"):
        change = level / prev_level - 1.0
        # NaN (no predecessor) compares False; stored bars are never judged again.
        first_pass = (np.abs(change) > max_daily_jump) & ~context
        # The last unflagged level before each row within its run.
        candidate = np.where(first_pass, -1, np.arange(n))
        last = np.maximum.accumulate(np.concatenate(([-1], candidate[:-1])))
        run_start = np.repeat(starts, np.diff(np.append(starts, n)))
        anchor = np.where(last >= run_start, level[np.maximum(last, 0)], np.nan)
        after_flagged = np.concatenate(([False], first_pass[:-1])) & ~is_start
        recovered = after_flagged & (np.abs(level / anchor - 1.0) <= max_daily_jump)
    hit = np.flatnonzero(first_pass & ~recovered)
    prev_close = previous_of(close)
    prev_basis = prev_level / prev_close
    return pl.DataFrame(
        {
            "_row": series["_row"].gather(hit),
            "_prev_close": prev_close[hit],
            "_prev_ts": previous_of(ts)[hit],
            "_change": change[hit],
            "_split": basis[hit] / prev_basis[hit],
        }
    ).cast(pl.Schema(columns))
