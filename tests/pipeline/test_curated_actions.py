"""Curated corporate actions: inferred splits give way to the splits a source reports."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from marketlake.lake import LakeStorage, LakeTables
from marketlake.pipeline.curated_actions import marked, read_actions, store_actions
from marketlake.schemas import CORPORATE_ACTION_SCHEMA

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def actions(*rows: tuple[str, int, str, float]) -> pa.Table:
    """(symbol, day of June 2014, kind, value) rows."""
    return pa.Table.from_pylist(
        [
            {
                "symbol": symbol,
                "ex_date": datetime(2014, 6, day, tzinfo=UTC),
                "kind": kind,
                "ratio": value if kind == "split" else None,
                "amount": value if kind == "dividend" else None,
                "source": "csv",
                "ingested_at": NOW,
            }
            for symbol, day, kind, value in rows
        ],
        schema=CORPORATE_ACTION_SCHEMA,
    )


def stored(tables: LakeTables) -> list[tuple[str, int, str, bool | None]]:
    rows = read_actions(tables, ["AAPL", "MSFT"]).to_pylist()
    return sorted((r["symbol"], r["ex_date"].day, r["kind"], r["inferred"]) for r in rows)


def test_a_reported_split_replaces_the_inferred_one_on_its_day_or_near_it(tmp_path: Path) -> None:
    tables = LakeTables(LakeStorage.from_url((tmp_path / "lake").as_uri()))
    guessed = actions(("AAPL", 9, "split", 7.0), ("MSFT", 9, "split", 2.0))
    assert store_actions(tables, marked(guessed, True)) == ["AAPL", "MSFT"]
    store_actions(tables, marked(actions(("AAPL", 5, "dividend", 3.29)), False))
    assert stored(tables) == [
        ("AAPL", 5, "dividend", False),
        ("AAPL", 9, "split", True),
        ("MSFT", 9, "split", True),
    ]
    # AAPL's split reported on the same day, MSFT's two days later; a dividend is untouched
    store_actions(
        tables, marked(actions(("AAPL", 9, "split", 7.0), ("MSFT", 11, "split", 2.0)), False)
    )
    assert stored(tables) == [
        ("AAPL", 5, "dividend", False),
        ("AAPL", 9, "split", False),
        ("MSFT", 11, "split", False),
    ]


def test_a_reported_split_far_from_an_inferred_one_leaves_it(tmp_path: Path) -> None:
    tables = LakeTables(LakeStorage.from_url((tmp_path / "lake").as_uri()))
    store_actions(tables, marked(actions(("AAPL", 9, "split", 7.0)), True))
    store_actions(tables, marked(actions(("AAPL", 20, "split", 2.0)), False))
    assert stored(tables) == [("AAPL", 9, "split", True), ("AAPL", 20, "split", False)]
