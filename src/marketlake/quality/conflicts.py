"""Stored bars contradicted by bars of another origin, grouped into findings.

A bar's origin is its ``source``: the provider (``yahoo``, ``alphavantage``, ``sim``) or, for
an imported file, ``file:<file name>``. An incoming bar meets a stored bar of the same symbol
and session from another origin; the two *contradict* each other when their closes differ by
more than the tolerance (``|close_b - close_a| / close_a``, setting
``validation.max_source_diff``). Only bars whose two closes are positive numbers are compared;
a missing or zero close is left to the row rules of validation.

Contradictions become findings, never one per bar when they share a cause:

- ``ratio``: consecutive compared sessions of one symbol and pair of origins whose closes keep
  one constant ratio (at least ``MIN_RATIO_SESSIONS`` of them), as a split-adjusted file
  shows over as-traded history. The ratio is constant when each session's ``close_b /
  close_a`` is within the tolerance (plus half a cent of rounding on each close) of the
  range's first. A single session off the ratio whose neighbour is back on it does not end
  the range: it is reported as a ``value`` finding of its own.
- ``value``: any other contradicted session, alone.

Example (AAPL): Alpha Vantage's as-traded closes against a Nasdaq export adjusted for the
7-for-1 split of 2014-06-09 give one ``ratio`` finding, 1/7 over 2008-11-24 to 2014-06-06,
a ``value`` finding on 2009-03-24 (off the ratio by 0.3 %) and one on 2015-09-30 (109.95
against 110.30).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

import polars as pl
import pyarrow as pa

from marketlake.schemas import SPLIT

VALUE = "value"
RATIO = "ratio"
MIN_RATIO_SESSIONS = 5
SPLIT_GAP = timedelta(days=7)  # a range that ends this close before a split may be its cause
HALF_CENT = 0.005
_PAIR = ("symbol", "source_a", "source_b")
_FINDING_COLUMNS = {
    "symbol": pl.String(),
    "ts": pl.Datetime("us", "UTC"),
    "ts_end": pl.Datetime("us", "UTC"),
    "sessions": pl.Int64(),
    "source_a": pl.String(),
    "source_b": pl.String(),
    "close_a": pl.Float64(),
    "close_b": pl.Float64(),
    "rel_diff": pl.Float64(),
    "ratio": pl.Float64(),
    "kind": pl.String(),
    "range_ratio": pl.Float64(),  # for a session off a range's ratio: that ratio
    "split_note": pl.String(),  # for a range ending at a split: which origin looks adjusted
}
_BAR_COLUMNS = {
    "symbol": pl.String(),
    "ts": pl.Datetime("us", "UTC"),
    "finding_ts": pl.Datetime("us", "UTC"),
    "source_a": pl.String(),
    "source_b": pl.String(),
    "close_a": pl.Float64(),
    "close_b": pl.Float64(),
}


@dataclass(frozen=True)
class Conflicts:
    """The outcome of :func:`find_conflicts`.

    ``compared``: incoming bars that met a stored bar of another origin. ``findings``: one row
    per finding (symbol, ts, ts_end, sessions, source_a, source_b, close_a, close_b, rel_diff,
    ratio, kind), keyed by (symbol, ts, source_a, source_b). ``bars``: every contradicted
    incoming bar (symbol, ts, source_a, source_b, close_a, close_b) with ``finding_ts``, the
    ``ts`` of the finding that covers it.
    """

    compared: int
    findings: pl.DataFrame
    bars: pl.DataFrame


def _frame(table: pa.Table, side: str) -> pl.DataFrame:
    frame = pl.from_arrow(table.select(["symbol", "ts", "source", "close"]))
    assert isinstance(frame, pl.DataFrame)
    return frame.rename({"source": f"source_{side}", "close": f"close_{side}"})


def _comparable(column: str) -> pl.Expr:
    return pl.col(column).is_finite() & (pl.col(column) > 0)


def find_conflicts(
    incoming: pa.Table,
    stored: pa.Table | None,
    tolerance: float,
    actions: pa.Table | None = None,
) -> Conflicts:
    """The findings where ``incoming`` bars contradict ``stored`` bars of another origin.

    ``actions`` (corporate actions of the symbols) let a ``ratio`` finding that ends just
    before a split say which origin looks adjusted for it (in ``split_note``).
    """
    empty = Conflicts(0, pl.DataFrame(schema=_FINDING_COLUMNS), pl.DataFrame(schema=_BAR_COLUMNS))
    if stored is None or stored.num_rows == 0 or incoming.num_rows == 0:
        return empty
    pairs = (
        _frame(stored, "a")
        .join(_frame(incoming, "b"), on=["symbol", "ts"])
        .filter(
            (pl.col("source_a") != pl.col("source_b"))
            & _comparable("close_a")
            & _comparable("close_b")
        )
    )
    if pairs.height == 0:
        return empty
    pairs = pairs.with_columns(
        ((pl.col("close_b") - pl.col("close_a")).abs() / pl.col("close_a")).alias("rel_diff"),
        (pl.col("close_b") / pl.col("close_a")).alias("ratio"),
    ).with_columns((pl.col("rel_diff") > tolerance).alias("conflict"))
    if not pairs["conflict"].any():
        return Conflicts(pairs.height, empty.findings, empty.bars)
    involved = pairs.filter(pl.col("conflict")).select(_PAIR).unique()
    groups = pairs.join(involved, on=list(_PAIR)).sort(*_PAIR, "ts")
    findings: list[dict[str, Any]] = []
    covered: list[dict[str, Any]] = []
    for _, group in groups.group_by(list(_PAIR), maintain_order=True):
        _group_findings(group.to_dicts(), tolerance, findings, covered)
    splits = _splits(actions)
    for finding in findings:
        if finding["kind"] == RATIO:
            finding["split_note"] = split_note(
                finding, splits.get(finding["symbol"], []), tolerance
            )
    return Conflicts(
        pairs.height,
        pl.DataFrame(findings, schema=_FINDING_COLUMNS).sort("symbol", "ts", "source_a"),
        pl.DataFrame(covered, schema=_BAR_COLUMNS),
    )


def _on_ratio(row: dict[str, Any], anchor: dict[str, Any], tolerance: float) -> bool:
    """True when ``row``'s close ratio is ``anchor``'s, within the tolerance and rounding."""
    if not row["conflict"]:
        return False
    slack = anchor["ratio"] * tolerance + HALF_CENT / row["close_a"] + HALF_CENT / anchor["close_a"]
    return abs(row["ratio"] - anchor["ratio"]) <= slack


def _group_findings(
    rows: list[dict[str, Any]],
    tolerance: float,
    findings: list[dict[str, Any]],
    covered: list[dict[str, Any]],
) -> None:
    """Append the findings of one (symbol, source_a, source_b) group, sorted by ts."""
    i, n = 0, len(rows)
    while i < n:
        anchor = rows[i]
        if not anchor["conflict"]:
            i += 1
            continue
        j, off = i + 1, set()
        while j < n:
            if _on_ratio(rows[j], anchor, tolerance):
                j += 1
            elif rows[j]["conflict"] and j + 1 < n and _on_ratio(rows[j + 1], anchor, tolerance):
                off.add(j)
                j += 1
            else:
                break
        if j - i >= MIN_RATIO_SESSIONS:
            members = [rows[k] for k in range(i, j) if k not in off]
            ratio = _ratio_finding(anchor, rows[j - 1], members, j - i)
            findings.append(ratio)
            for k in range(i, j):
                covered.append(_covers(rows[k], rows[k]["ts"] if k in off else anchor["ts"]))
                if k in off:
                    findings.append({**_value_finding(rows[k]), "range_ratio": ratio["ratio"]})
        else:
            for k in range(i, j):
                findings.append(_value_finding(rows[k]))
                covered.append(_covers(rows[k], rows[k]["ts"]))
        i = j


def _value_finding(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **{name: row[name] for name in _FINDING_COLUMNS if name in row},
        "ts_end": row["ts"],
        "sessions": 1,
        "kind": VALUE,
        "range_ratio": None,
        "split_note": None,
    }


def _ratio_finding(
    first: dict[str, Any], last: dict[str, Any], members: list[dict[str, Any]], sessions: int
) -> dict[str, Any]:
    ratios = sorted(row["ratio"] for row in members)
    middle = len(ratios) // 2
    median = ratios[middle] if len(ratios) % 2 else (ratios[middle - 1] + ratios[middle]) / 2
    return {
        **{name: first[name] for name in _FINDING_COLUMNS if name in first},
        "ts_end": last["ts"],
        "sessions": sessions,
        "ratio": median,
        "kind": RATIO,
        "range_ratio": None,
        "split_note": None,
    }


def _covers(row: dict[str, Any], finding_ts: datetime) -> dict[str, Any]:
    return {**{name: row[name] for name in _BAR_COLUMNS if name in row}, "finding_ts": finding_ts}


def _splits(actions: pa.Table | None) -> dict[str, list[tuple[datetime, float]]]:
    """Split ex-dates and ratios per symbol, sorted."""
    out: dict[str, list[tuple[datetime, float]]] = {}
    if actions is None or actions.num_rows == 0:
        return out
    for row in actions.select(["symbol", "ex_date", "kind", "ratio"]).to_pylist():
        if row["kind"] == SPLIT and row["ratio"] and row["ratio"] > 0:
            out.setdefault(row["symbol"], []).append((row["ex_date"], row["ratio"]))
    return {symbol: sorted(set(rows)) for symbol, rows in out.items()}


def split_note(
    finding: dict[str, Any], splits: list[tuple[datetime, float]], tolerance: float
) -> str | None:
    """Which origin of a ``ratio`` finding looks split-adjusted, when the range ends within
    ``SPLIT_GAP`` of a split and its ratio is that of the splits from there on (or its
    inverse); None otherwise."""
    after = [(ex, ratio) for ex, ratio in splits if ex > finding["ts_end"]]
    if not after or after[0][0] - finding["ts_end"] > SPLIT_GAP:
        return None
    product = 1.0
    for count, (_, ratio) in enumerate(after, 1):
        product *= ratio
        for origin, expected in (
            (finding["source_b"], 1 / product),
            (finding["source_a"], product),
        ):
            if abs(finding["ratio"] / expected - 1) <= 2 * tolerance:
                listed = ", ".join(f"{r:g}:1 on {ex.date()}" for ex, r in after[:count])
                return f"{origin} looks adjusted for the later split{'s' * (count > 1)} ({listed})"
    return None


def ratio_text(ratio: float, tolerance: float) -> str:
    """``ratio`` as a simple fraction when it is one (``1/7``, ``4``), else ``0.9921``."""
    fraction = Fraction(ratio).limit_denominator(20)
    if fraction and abs(float(fraction) / ratio - 1) <= max(tolerance, 1e-4):
        return str(fraction)
    return f"{ratio:.4g}"


def describe_finding(row: dict[str, Any], tolerance: float) -> str:
    """One line on a finding: what differs, between which origins, and which was kept."""
    kept = f"; kept {row['kept']}" if row.get("kept") else ""
    if row["kind"] == RATIO:
        cause = row.get("split_note") or (
            "one series is adjusted for a split or another event the other is not"
        )
        return (
            f"closes from {row['source_b']} are the stored closes from {row['source_a']} "
            f"times {ratio_text(row['ratio'], tolerance)} over {row['sessions']} sessions, "
            f"{row['ts'].date()} to {row['ts_end'].date()} ({cause}){kept}"
        )
    if row.get("range_ratio"):
        off = abs(row["ratio"] / row["range_ratio"] - 1)
        return (
            f"close {row['close_b']:g} from {row['source_b']} is off the ratio "
            f"{ratio_text(row['range_ratio'], tolerance)} to the stored close "
            f"{row['close_a']:g} from {row['source_a']} that the sessions around it keep, "
            f"by {off:.2%} (allowed {tolerance:.2%}){kept}"
        )
    return (
        f"close {row['close_b']:g} from {row['source_b']} differs from the stored close "
        f"{row['close_a']:g} from {row['source_a']} by {row['rel_diff']:.2%} (allowed "
        f"{tolerance:.2%}){kept}"
    )
