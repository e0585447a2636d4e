"""Splits inferred from the bars themselves, for series that come without split information.

Alpha Vantage's raw daily series, for one, has prices as traded and no split events: AAPL's
7:1 split of 2014-06-09 shows only as a close of 645.57 followed by an open of 92.70. A price
gap is taken for a split when

- the previous close over the open (the close when the open is missing) is within
  ``tolerance`` of a split ratio of ``SPLIT_RATIOS`` (a fall for a split, a rise for a reverse
  split),
- the volume moves the other way: the median volume of the ``window`` sessions from the gap
  on is above (for a reverse split, below) that of the ``window`` sessions before it, and
- no split is reported within ``NEARBY`` of it, and no dividend reported on that day explains
  the gap (a special distribution, such as GOOGL's Class C shares paid out on 2014-04-03).

The inferred split is a corporate action like any other (kind ``split``, ratio new shares per
old share, the bars' source) that the lake writer stores marked ``inferred``; the bars keep
their history and back-adjustment uses it until the source reports the split.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pyarrow as pa

from marketlake.schemas import BAR_SCHEMA, CORPORATE_ACTION_SCHEMA, DIVIDEND, SPLIT

SPLIT_RATIOS: tuple[float, ...] = (1.5, 2.0, 3.0, 4.0, 5.0, 7.0, 8.0, 10.0, 15.0, 20.0)
SPLIT_RATIOS += tuple(1.0 / r for r in SPLIT_RATIOS[1:])  # reverse splits (1:2 and beyond)
TOLERANCE = 0.03
VOLUME_WINDOW = 10
NEARBY = timedelta(days=3)
_US = 1_000_000


def _matched_ratio(gap: np.ndarray, tolerance: float) -> np.ndarray:
    """The split ratio each gap matches within ``tolerance`` (NaN when none)."""
    ratios = np.asarray(SPLIT_RATIOS)
    with np.errstate(invalid="ignore", divide="ignore"):
        off = np.abs(gap[:, None] / ratios[None, :] - 1.0)
    nearest = np.nanargmin(np.where(np.isnan(off), np.inf, off), axis=1) if len(gap) else []
    best = ratios[nearest] if len(gap) else np.empty(0)
    hit = np.take_along_axis(off, np.asarray(nearest, dtype=np.int64)[:, None], 1)[:, 0]
    return np.where(hit < tolerance, best, np.nan)


def _median(values: np.ndarray) -> float:
    usable = values[np.isfinite(values) & (values > 0)]
    return float(np.median(usable)) if len(usable) else float("nan")


def _explained(day: int, prev_close: float, now: float, dividends: list[tuple[int, float]]) -> bool:
    """True when a dividend paid on ``day`` accounts for the fall from ``prev_close``."""
    return any(
        ex == day and prev_close > amount and abs(now / (prev_close - amount) - 1.0) < 0.05
        for ex, amount in dividends
    )


def infer_splits(
    bars: pa.Table,
    actions: pa.Table,
    tolerance: float = TOLERANCE,
    window: int = VOLUME_WINDOW,
) -> pa.Table:
    """Splits (``CORPORATE_ACTION_SCHEMA``) inferred from ``bars`` (``BAR_SCHEMA``, as traded).

    ``actions`` are the known corporate actions of the bars' symbols: a reported split within
    ``NEARBY`` of a gap, or a dividend on its day that explains it, leaves the gap alone.
    Each inferred split takes the source and ``ingested_at`` of the bar of its ex-date.
    """
    frame = pl.from_arrow(bars.select(BAR_SCHEMA.names))
    assert isinstance(frame, pl.DataFrame)
    known = pl.from_arrow(actions.select(["symbol", "ex_date", "kind", "amount"]))
    assert isinstance(known, pl.DataFrame)
    known = known.with_columns(pl.col("ex_date").cast(pl.Datetime("us", "UTC")).cast(pl.Int64))
    nearby = int(NEARBY.total_seconds()) * _US
    found: list[dict[str, object]] = []
    for (symbol,), part in frame.sort("symbol", "ts").group_by("symbol", maintain_order=True):
        if part.height < 2:
            continue
        close = part["close"].to_numpy().astype(float)
        opened = part["open"].to_numpy().astype(float)
        volume = part["volume"].to_numpy().astype(float)
        stamps = part["ts"].cast(pl.Int64).to_numpy()
        now = np.where(np.isfinite(opened) & (opened > 0), opened, close)
        with np.errstate(invalid="ignore", divide="ignore"):
            gap = close[:-1] / now[1:]
        ratios = _matched_ratio(gap, tolerance)
        mine = known.filter(pl.col("symbol") == symbol)
        splits = mine.filter(pl.col("kind") == SPLIT)["ex_date"].to_numpy()
        dividends = list(
            mine.filter((pl.col("kind") == DIVIDEND) & pl.col("amount").is_not_null())
            .select("ex_date", "amount")
            .iter_rows()
        )
        for i in np.flatnonzero(np.isfinite(ratios)).tolist():
            at, ratio = i + 1, float(ratios[i])
            day = int(stamps[at])
            if np.any(np.abs(splits - day) <= nearby):
                continue
            if _explained(day, float(close[i]), float(now[at]), dividends):
                continue
            change = _median(volume[at : at + window]) / _median(volume[max(0, at - window) : at])
            if not (change > 1.0 if ratio > 1.0 else change < 1.0):
                continue
            found.append(
                {
                    "symbol": symbol,
                    "ex_date": part["ts"][at],
                    "kind": SPLIT,
                    "ratio": ratio,
                    "amount": None,
                    "source": part["source"][at],
                    "ingested_at": part["ingested_at"][at],
                }
            )
    return pa.Table.from_pylist(found, schema=CORPORATE_ACTION_SCHEMA)
