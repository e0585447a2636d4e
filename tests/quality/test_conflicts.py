"""Contradictions between stored bars and another origin's bars, grouped into findings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from marketlake.pipeline.reconcile import reconcile_bars
from marketlake.quality.conflicts import find_conflicts, ratio_text
from marketlake.schemas import BAR_SCHEMA, CORPORATE_ACTION_SCHEMA

NOW = datetime(2026, 1, 5, tzinfo=UTC)
DAY0 = datetime(2024, 1, 1, tzinfo=UTC)
STORED = "file:stored.csv"
NEW = "file:new.csv"


def bars(closes: list[float | None], source: str, symbol: str = "AAPL") -> pa.Table:
    """One bar per day from 2024-01-01 with the given closes (None: no bar that day)."""
    return pa.Table.from_pylist(
        [
            {
                "symbol": symbol,
                "ts": DAY0 + timedelta(days=i),
                "open": close,
                "high": close,
                "low": close,
                "close": close,
                "volume": 1.0,
                "source": source,
                "ingested_at": NOW,
            }
            for i, close in enumerate(closes)
            if close is not None
        ],
        schema=BAR_SCHEMA,
    )


def day(i: int) -> datetime:
    return DAY0 + timedelta(days=i)


def summary(closes_a: list[float | None], closes_b: list[float | None]) -> list[tuple]:
    found = find_conflicts(bars(closes_b, NEW), bars(closes_a, STORED), 0.001).findings
    return [
        (r["kind"], (r["ts"] - DAY0).days, (r["ts_end"] - DAY0).days, r["sessions"])
        for r in found.iter_rows(named=True)
    ]


def test_a_constant_ratio_over_a_range_is_one_finding_with_its_ratio() -> None:
    stored = [100.0 + i for i in range(10)]
    conflicts = find_conflicts(bars([c / 4 for c in stored], NEW), bars(stored, STORED), 0.001)
    assert conflicts.compared == 10
    (finding,) = conflicts.findings.iter_rows(named=True)
    assert (finding["kind"], finding["ts"], finding["ts_end"], finding["sessions"]) == (
        "ratio",
        day(0),
        day(9),
        10,
    )
    assert finding["ratio"] == pytest.approx(0.25)
    assert (finding["close_a"], finding["close_b"]) == (100.0, 25.0)
    assert conflicts.bars.height == 10 and set(conflicts.bars["finding_ts"]) == {day(0)}


def test_one_session_off_the_ratio_is_its_own_finding_inside_the_range() -> None:
    stored = [100.0] * 12
    incoming = [50.0] * 12
    incoming[5] = 49.0  # 2 % off the ratio 1/2
    assert summary(stored, incoming) == [("ratio", 0, 11, 12), ("value", 5, 5, 1)]


def test_two_sessions_off_the_ratio_end_the_range() -> None:
    stored = [100.0] * 14
    incoming = [50.0] * 6 + [40.0, 40.0] + [50.0] * 6
    assert summary(stored, incoming) == [
        ("ratio", 0, 5, 6),
        ("value", 6, 6, 1),
        ("value", 7, 7, 1),
        ("ratio", 8, 13, 6),
    ]


def test_a_few_sessions_at_one_ratio_are_reported_one_by_one() -> None:
    stored = [100.0, 100.0, 100.0, 100.0]
    assert summary(stored, [100.0, 50.0, 50.0, 50.0]) == [
        ("value", 1, 1, 1),
        ("value", 2, 2, 1),
        ("value", 3, 3, 1),
    ]


def test_an_agreeing_session_ends_a_range_and_steps_start_new_ones() -> None:
    stored = [100.0] * 19
    incoming = [99.0] * 6 + [100.0] + [98.5] * 6 + [100.05] * 6  # the last six agree (0.05 %)
    assert summary(stored, incoming) == [("ratio", 0, 5, 6), ("ratio", 7, 12, 6)]


def test_cent_rounding_of_an_adjusted_series_keeps_one_ratio() -> None:
    stored = [13.0 + 0.37 * i for i in range(30)]
    incoming = [round(c / 7, 2) for c in stored]  # rounded to the cent: up to 0.3 % off 1/7
    assert summary(stored, incoming) == [("ratio", 0, 29, 30)]


def test_same_origin_and_missing_or_zero_closes_are_not_compared() -> None:
    stored = pa.concat_tables([bars([100.0, 0.0, None], STORED), bars([None, None, 100.0], NEW)])
    incoming = bars([100.0, 50.0, 50.0, None], NEW)  # day 1: stored close 0; day 2: same origin
    conflicts = find_conflicts(incoming, stored, 0.001)
    assert conflicts.compared == 1 and conflicts.findings.height == 0


def test_ratios_read_as_fractions_when_they_are_simple() -> None:
    assert [ratio_text(r, 0.001) for r in (1 / 7, 7.0, 0.25, 1.5, 0.9921)] == [
        "1/7",
        "7",
        "1/4",
        "3/2",
        "0.9921",
    ]


def test_keep_drops_the_contradicting_bars() -> None:
    stored = bars([100.0, 100.0, 100.0], STORED)
    incoming = bars([100.0, 101.0, 100.0], NEW)
    result = reconcile_bars(incoming, stored, 0.001, NOW)
    assert result.bars.column("close").to_pylist() == [100.0, 100.0]
    (flag,) = result.flagged.to_pylist()
    assert (flag["kept"], flag["action"], flag["ts"]) == (STORED, "keep", day(1))
    assert flag["detail"].startswith(f"close 101 from {NEW} differs from the stored close 100")
    assert result.rejects.num_rows == 0 and result.conflicting == 1


def test_quarantine_returns_the_contradicting_bar_as_a_quarantine_row() -> None:
    stored = bars([100.0, 100.0], STORED)
    result = reconcile_bars(bars([100.0, 101.0], NEW), stored, 0.001, NOW, "quarantine")
    (row,) = result.rejects.to_pylist()
    assert (row["rule"], row["source"], row["ts"]) == ("source_conflict", NEW, day(1))
    assert result.bars.num_rows == 1


def test_replace_keeps_the_bar_and_names_the_stored_origin_if_validation_drops_it() -> None:
    stored = bars([100.0, 100.0], STORED)
    incoming = bars([100.0, 101.0], NEW)
    result = reconcile_bars(incoming, stored, 0.001, NOW, "replace")
    assert result.bars.num_rows == 2
    assert result.settled(incoming).column("kept").to_pylist() == [NEW]
    assert result.settled(incoming.slice(0, 1)).column("kept").to_pylist() == [STORED]


def test_an_unknown_action_is_refused() -> None:
    with pytest.raises(ValueError, match="keep"):
        reconcile_bars(bars([1.0], NEW), None, 0.001, NOW, "overwrite")


def test_a_range_that_ends_at_a_split_names_the_origin_adjusted_for_it() -> None:
    stored = [700.0] * 6 + [100.0] * 3  # as traded: a 7:1 split on day 6
    incoming = [100.0] * 9  # adjusted for it
    split = pa.Table.from_pylist(
        [
            {
                "symbol": "AAPL",
                "ex_date": day(6),
                "kind": "split",
                "ratio": 7.0,
                "amount": None,
                "source": STORED,
                "ingested_at": NOW,
            }
        ],
        schema=CORPORATE_ACTION_SCHEMA,
    )
    found = find_conflicts(bars(incoming, NEW), bars(stored, STORED), 0.001, split).findings
    (finding,) = found.iter_rows(named=True)
    assert finding["split_note"] == f"{NEW} looks adjusted for the later split (7:1 on 2024-01-07)"
    late = pa.Table.from_pylist([{**split.to_pylist()[0], "ex_date": day(20)}], schema=split.schema)
    found = find_conflicts(bars(incoming, NEW), bars(stored, STORED), 0.001, late).findings
    assert found["split_note"].to_list() == [None]  # a split long after the range explains nothing
    flipped = find_conflicts(bars(stored, NEW), bars(incoming, STORED), 0.001, split).findings
    assert flipped["split_note"].to_list() == [
        f"{STORED} looks adjusted for the later split (7:1 on 2024-01-07)"
    ]
