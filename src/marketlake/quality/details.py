"""Human-readable reasons for rejected bars, stating the values involved.

Rejected rows are few, so reasons are written per row in Python; the rules themselves are
evaluated as vectorised masks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

import polars as pl

Row = dict[str, Any]

PRICES = ("open", "high", "low", "close")
VALUES = (*PRICES, "volume")
OHLC_PAIRS = (
    ("low", ">", "open"),
    ("low", ">", "close"),
    ("high", "<", "open"),
    ("high", "<", "close"),
    ("low", ">", "high"),
)


def with_details(frame: pl.DataFrame, describe: Callable[[Row], str], column: str) -> pl.DataFrame:
    """``frame`` plus ``column``: ``describe(row)`` for every row."""
    details = [describe(row) for row in frame.iter_rows(named=True)]
    return frame.with_columns(pl.Series(column, details, dtype=pl.String))


def _finite(value: Any) -> bool:
    return value is not None and math.isfinite(value)


def shown(value: Any) -> str:
    """A value as text, with null and NaN spelled out."""
    if value is None:
        return "null"
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return str(value)


def null_value(row: Row) -> str:
    """Which of OHLCV are null, NaN or infinite."""
    return ", ".join(f"{c} is {shown(row[c])}" for c in VALUES if not _finite(row[c]))


def non_positive_price(row: Row) -> str:
    """Which prices are zero or negative."""
    return ", ".join(f"{c} {row[c]} <= 0" for c in PRICES if row[c] <= 0)


def negative_volume(row: Row) -> str:
    """The negative volume."""
    return f"volume {row['volume']} < 0"


def implausible_volume(row: Row, limit: float) -> str:
    """The volume and the largest one allowed."""
    return f"volume {row['volume']:g} exceeds {limit:g} shares in one session"


def ohlc_invariant(row: Row) -> str:
    """Every broken OHLC relation, e.g. ``low 10.5 > open 10.2``."""
    broken = [
        f"{left} {row[left]} {op} {right} {row[right]}"
        for left, op, right in OHLC_PAIRS
        if (row[left] > row[right] if op == ">" else row[left] < row[right])
    ]
    return ", ".join(broken)


def not_a_session(row: Row) -> str:
    """Either the time of day is not midnight UTC, or the date is not a session."""
    ts: datetime = row["ts"]
    if (ts.hour, ts.minute, ts.second, ts.microsecond) != (0, 0, 0, 0):
        return f"ts {ts.isoformat()} is not midnight UTC"
    return f"{ts.date().isoformat()} is not an exchange session"


def duplicate(row: Row, compared: tuple[str, ...]) -> str:
    """How a repeated (symbol, ts) row compares with the first one, which was kept."""
    about = f"duplicate of the first {row['symbol']} row of {row['ts'].date().isoformat()}: "
    differences = [
        f"{c} {shown(row[c])} vs kept {shown(row[c + '_kept'])}"
        for c in compared
        if row[c] != row[c + "_kept"]
    ]
    return about + (
        "values differ: " + ", ".join(differences) if differences else "identical values"
    )


def implausible_jump(row: Row, limit: float) -> str:
    """The close, the previous close (and date, and any split applied) and the change."""
    split = row["_split"]
    note = (
        f" (previous close divided by split ratio {round(split, 6)})"
        if abs(split - 1.0) > 1e-12
        else ""
    )
    return (
        f"close {row['close']} vs previous close {row['_prev_close']} on "
        f"{row['_prev_ts'].date().isoformat()}{note}: change {round(row['_change'] * 100, 1)}% "
        f"exceeds {limit * 100:g}%"
    )
