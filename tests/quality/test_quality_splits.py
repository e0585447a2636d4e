"""Inferred splits and special distributions, on small hand-made series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa

from marketlake.quality.feeds import detect_bad_dividends
from marketlake.quality.splits import infer_splits
from marketlake.schemas import BAR_SCHEMA, CORPORATE_ACTION_SCHEMA

NOW = datetime(2025, 1, 1, tzinfo=UTC)
START = datetime(2024, 3, 1, tzinfo=UTC)
GAP = 12  # the session of the price gap


def series(before: float, after: float, volume_before: float, volume_after: float) -> pa.Table:
    """24 daily bars: ``before`` then, from bar ``GAP`` on, ``after``."""
    rows = []
    for i in range(24):
        price = before if i < GAP else after
        rows.append(
            {
                "symbol": "T",
                "ts": START + timedelta(days=i),
                "open": price,
                "high": price * 1.01,
                "low": price * 0.99,
                "close": price,
                "volume": volume_before if i < GAP else volume_after,
                "source": "alphavantage",
                "ingested_at": NOW,
            }
        )
    return pa.Table.from_pylist(rows, schema=BAR_SCHEMA)


def actions(*rows: tuple[int, str, float]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "symbol": "T",
                "ex_date": START + timedelta(days=day),
                "kind": kind,
                "ratio": value if kind == "split" else None,
                "amount": value if kind == "dividend" else None,
                "source": "alphavantage",
                "ingested_at": NOW,
            }
            for day, kind, value in rows
        ],
        schema=CORPORATE_ACTION_SCHEMA,
    )


def inferred(bars: pa.Table, known: pa.Table | None = None) -> list[tuple[int, float]]:
    found = infer_splits(bars, known if known is not None else actions())
    return [((r["ex_date"] - START).days, r["ratio"]) for r in found.to_pylist()]


def test_a_gap_at_a_split_ratio_with_the_inverse_volume_change_is_a_split() -> None:
    assert inferred(series(300.0, 100.0, 1e6, 2.9e6)) == [(GAP, 3.0)]
    row = infer_splits(series(300.0, 100.0, 1e6, 2.9e6), actions()).to_pylist()[0]
    assert (row["kind"], row["source"], row["amount"]) == ("split", "alphavantage", None)


def test_a_reverse_split_is_a_rise_with_falling_volume() -> None:
    assert inferred(series(1.0, 10.0, 5e6, 6e5)) == [(GAP, 0.1)]


def test_without_the_volume_change_a_gap_is_not_a_split() -> None:
    assert inferred(series(300.0, 100.0, 1e6, 1e6)) == []
    assert inferred(series(300.0, 100.0, 1e6, 0.5e6)) == []  # volume fell with the price


def test_a_gap_off_every_ratio_is_not_a_split() -> None:
    assert inferred(series(300.0, 110.0, 1e6, 3e6)) == []  # 2.73x


def test_a_reported_split_nearby_or_a_dividend_that_explains_it_leaves_the_gap_alone() -> None:
    bars = series(300.0, 100.0, 1e6, 3e6)
    assert inferred(bars, actions((GAP + 2, "split", 3.0))) == []
    assert inferred(bars, actions((GAP + 5, "split", 3.0))) == [(GAP, 3.0)]
    halved = series(200.0, 100.0, 1e6, 2e6)
    assert inferred(halved, actions((GAP, "dividend", 100.0))) == []
    assert inferred(halved, actions((GAP, "dividend", 1.0))) == [(GAP, 2.0)]


def test_a_special_distribution_that_the_price_pays_out_is_a_good_dividend() -> None:
    bars = series(1135.1, 571.5, 4e6, 4e6)
    good, rejects = detect_bad_dividends(actions((GAP, "dividend", 567.97)), bars)
    assert (good.num_rows, rejects.num_rows) == (1, 0)
    # the same amount without the fall is still far above the allowed yield
    flat = series(1135.1, 1135.1, 4e6, 4e6)
    _, rejects = detect_bad_dividends(actions((GAP, "dividend", 567.97)), flat)
    assert rejects.column("rule").to_pylist() == ["bad_dividend"]
    assert "50% of the previous close" in rejects.column("detail")[0].as_py()
