"""Detectors for errors that real provider feeds are known to make.

Each detector takes canonical tables (bars as traded, corporate actions) and returns the good
rows and the rejects in ``QUARANTINE_SCHEMA`` under one rule name:

- ``zero_row``: a bar whose open, high, low and close are all zero or missing.
- ``price_100x``: bars quoted in the wrong currency unit (pence for pounds, cents for dollars),
  found as runs of bars ~100x or ~1/100 of their neighbours.
- ``bad_dividend``: a dividend above a share of the previous close, the same dividend listed
  twice, or one ~100x off a steady series of its neighbours.
- ``unadjusted_split``: a split event without the matching price drop on its ex-date.

A drop that matches a split ratio with no split event is not an error: the bars keep their
history and the split is inferred (:mod:`marketlake.quality.splits`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from marketlake.records import Reject, reject_table
from marketlake.schemas import DIVIDEND, SPLIT

PRICES = ("open", "high", "low", "close")
UNIT = 2.0  # log10 of the 100x unit error
UNIT_TOLERANCE = math.log10(1.4)
SPECIAL_TOLERANCE = 0.05  # a special distribution's ex-date open vs previous close - amount


def _by_symbol(table: pa.Table, order: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    for symbol in sorted(set(table.column("symbol").to_pylist())):
        rows = table.filter(pc.equal(table.column("symbol"), symbol)).to_pylist()
        yield symbol, sorted(rows, key=lambda row: row[order])


def _split(table: pa.Table, rejected: set[int], rejects: list[Reject]) -> tuple[pa.Table, pa.Table]:
    keep = pa.array([i not in rejected for i in range(table.num_rows)], pa.bool_())
    return table.filter(keep), reject_table(rejects)


def _index(table: pa.Table) -> dict[tuple[str, datetime, str], int]:
    kinds = table.column("kind").to_pylist() if "kind" in table.column_names else None
    stamps = table.column("ex_date" if kinds is not None else "ts").to_pylist()
    return {
        (sym, ts, kinds[i] if kinds else ""): i
        for i, (sym, ts) in enumerate(zip(table.column("symbol").to_pylist(), stamps, strict=True))
    }


def _bad(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == 0


def detect_zero_rows(bars: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Reject bars whose four prices are all zero, NaN or missing (volume is not looked at)."""
    rows = bars.to_pylist()
    rejected = {i for i, row in enumerate(rows) if all(_bad(row[p]) for p in PRICES)}
    rejects = [
        Reject(
            "bars_1d",
            "zero_row",
            "open, high, low and close are all zero or missing",
            rows[i]["symbol"],
            rows[i]["ts"],
            rows[i],
            rows[i].get("source"),
        )
        for i in sorted(rejected)
    ]
    return _split(bars, rejected, rejects)


def _unit_step(ratio: float) -> int:
    """+1 for a ~100x rise, -1 for a ~100x fall, 0 otherwise."""
    if not ratio > 0:
        return 0
    step = math.log10(ratio)
    if abs(step - UNIT) < UNIT_TOLERANCE:
        return 1
    if abs(step + UNIT) < UNIT_TOLERANCE:
        return -1
    return 0


def detect_price_100x(bars: pa.Table, reference: float | None = None) -> tuple[pa.Table, pa.Table]:
    """Reject bars quoted ~100x (or ~1/100) off the symbol's prevailing price level.

    Consecutive closes that jump by ~100x start a new price level. The prevailing level is the
    one nearest ``reference`` (a price known to be right) when given; otherwise the one with the
    most bars that traded (volume > 0: a bar without trades only repeats a quote), then the one
    with the most bars. Bars of the other levels are rejected, and so are bars of the prevailing
    level with a single price ~100x off their close.
    """
    index = _index(bars)
    rejected: set[int] = set()
    rejects: list[Reject] = []
    for symbol, rows in _by_symbol(bars, "ts"):
        levels: list[int | None] = []
        level, last = 0, None
        for row in rows:
            close = row["close"]
            if _bad(close):
                levels.append(None)
                continue
            if last is not None:
                level += _unit_step(close / last)
            levels.append(level)
            last = close
        known = [lv for lv in levels if lv is not None]
        if not known:
            continue

        def rank(
            lv: int, rows: list[dict[str, Any]] = rows, levels: list[int | None] = levels
        ) -> tuple[float, ...]:
            members = [r for r, x in zip(rows, levels, strict=True) if x == lv]
            if reference:
                level_price = statistics.median(r["close"] for r in members)
                return (-abs(math.log10(level_price / reference)),)
            traded = sum(1 for r in members if r["volume"] and r["volume"] > 0)
            return (traded, len(members))

        good = max(sorted(set(known)), key=rank)
        prevailing = statistics.median(
            r["close"] for r, x in zip(rows, levels, strict=True) if x == good
        )
        for row, lv in zip(rows, levels, strict=True):
            if lv is None:
                continue
            if lv != good:
                detail = (
                    f"close {row['close']:g} is ~{100.0 ** (lv - good):g}x the prevailing "
                    f"{prevailing:g} (currency unit error)"
                )
            else:
                odd = [p for p in PRICES if not _bad(row[p]) and _unit_step(row[p] / row["close"])]
                if not odd:
                    continue
                detail = f"{', '.join(odd)} ~100x off the close {row['close']:g} (unit error)"
            rejected.add(index[(symbol, row["ts"], "")])
            rejects.append(
                Reject("bars_1d", "price_100x", detail, symbol, row["ts"], row, row.get("source"))
            )
    return _split(bars, rejected, rejects)


def _close_before(rows: list[dict[str, Any]], day: datetime) -> float | None:
    before = [r["close"] for r in rows if r["ts"] < day and not _bad(r["close"])]
    return before[-1] if before else None


def _paid_out(rows: list[dict[str, Any]], day: datetime, amount: float) -> bool:
    """True when the price falls by ``amount`` into ``day``: the open of the first bar on or
    after ``day`` is within ``SPECIAL_TOLERANCE`` of the previous close less ``amount``."""
    at = next((i for i, r in enumerate(rows) if r["ts"] >= day), None)
    if not at:  # no bar on or after the ex-date, or none before it
        return False
    before = rows[at - 1]["close"]
    now = rows[at]["open"] if not _bad(rows[at]["open"]) else rows[at]["close"]
    if _bad(before) or _bad(now) or before <= amount:
        return False
    return abs(now / (before - amount) - 1.0) < SPECIAL_TOLERANCE


def detect_bad_dividends(
    actions: pa.Table,
    bars: pa.Table,
    max_yield: float = 0.35,
    repeat_window: timedelta = timedelta(days=20),
) -> tuple[pa.Table, pa.Table]:
    """Reject implausible dividends (split events pass through untouched).

    A dividend is rejected when it exceeds ``max_yield`` of the previous close (unless the
    price falls by the amount into the ex-date: a special distribution, such as GOOGL's $567.97
    of Class C shares on 2014-04-03, is kept), repeats the
    amount of a dividend less than ``repeat_window`` earlier, or is ~100x off its neighbours
    (two before and two after) while those agree within a factor of two.
    """
    index = _index(actions)
    bars_by_symbol = dict(_by_symbol(bars, "ts")) if bars.num_rows else {}
    rejected: set[int] = set()
    rejects: list[Reject] = []
    for symbol, rows in _by_symbol(actions, "ex_date"):
        divs = [r for r in rows if r["kind"] == DIVIDEND and r["amount"] is not None]
        prices = bars_by_symbol.get(symbol, [])
        for i, div in enumerate(divs):
            amount, day = div["amount"], div["ex_date"]
            close = _close_before(prices, day)
            neighbours = [d["amount"] for d in divs[max(0, i - 2) : i] + divs[i + 1 : i + 3]]
            steady = [a for a in neighbours if a > 0]
            detail = None
            if amount <= 0:
                detail = f"dividend amount {amount:g} is not positive"
            elif close and amount > max_yield * close and not _paid_out(prices, day, amount):
                detail = (
                    f"dividend {amount:g} is {amount / close:.0%} of the previous close "
                    f"{close:g} (allowed: {max_yield:.0%})"
                )
            elif any(
                d["amount"] == amount and timedelta(0) < day - d["ex_date"] < repeat_window
                for d in divs[:i]
            ):
                detail = (
                    f"dividend {amount:g} repeats one paid less than "
                    f"{repeat_window.days} days before"
                )
            elif len(steady) >= 2 and max(steady) <= 2 * min(steady):
                typical = statistics.median(steady)
                if _unit_step(amount / typical):
                    detail = (
                        f"dividend {amount:g} is ~{amount / typical:.3g}x its neighbours' "
                        f"{typical:g} (unit error)"
                    )
            if detail:
                rejected.add(index[(symbol, day, DIVIDEND)])
                rejects.append(
                    Reject(
                        "corporate_actions",
                        "bad_dividend",
                        detail,
                        symbol,
                        day,
                        div,
                        div.get("source"),
                    )
                )
    return _split(actions, rejected, rejects)


def _gap(rows: list[dict[str, Any]], i: int) -> float | None:
    """Previous close over this bar's open (its close when the open is missing)."""
    prev, now = rows[i - 1]["close"], rows[i]["open"] or rows[i]["close"]
    return None if _bad(prev) or _bad(now) else prev / now


def detect_unadjusted_splits(actions: pa.Table, bars: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Reject split events whose ex-date shows no price drop near the split ratio.

    Bars are as traded, so the close before the ex-date over the ex-date's open should be close
    to the ratio; it is rejected when it is nearer to 1 than to the ratio.
    """
    index = _index(actions)
    bars_by_symbol = dict(_by_symbol(bars, "ts")) if bars.num_rows else {}
    rejected: set[int] = set()
    rejects: list[Reject] = []
    for symbol, rows in _by_symbol(actions, "ex_date"):
        prices = bars_by_symbol.get(symbol, [])
        for split in (r for r in rows if r["kind"] == SPLIT and r["ratio"]):
            at = next((i for i, b in enumerate(prices) if b["ts"] >= split["ex_date"]), None)
            gap = _gap(prices, at) if at else None  # no bar before the first one
            if gap is None or at is None:
                continue
            ratio = split["ratio"]
            if abs(math.log(gap)) < abs(math.log(gap / ratio)):
                rejected.add(index[(symbol, split["ex_date"], SPLIT)])
                rejects.append(
                    Reject(
                        "corporate_actions",
                        "unadjusted_split",
                        f"split {ratio:g}:1 but the price moved only {gap:.3g}x into "
                        f"{prices[at]['ts'].date()} (the bars may be split-adjusted already)",
                        symbol,
                        split["ex_date"],
                        split,
                        split.get("source"),
                    )
                )
    return _split(actions, rejected, rejects)
