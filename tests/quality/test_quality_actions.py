"""validate_actions: split ratios, dividend amounts, kinds and duplicates."""

from __future__ import annotations

import json

import pytest

from marketlake.quality.actions import validate_actions
from marketlake.schemas import CORPORATE_ACTION_SCHEMA, QUARANTINE_SCHEMA
from tests.quality.factories import NOW, action_table, day


def rules(rejects) -> list[str]:
    return rejects["rule"].to_pylist()


def test_good_actions_pass_sorted() -> None:
    rows = [
        ("MSFT", "2003-02-18", "split", 2.0, None),
        ("AAPL", "2020-08-31", "split", 4.0, None),
        ("AAPL", "2020-08-07", "dividend", None, 0.82),
        ("AAPL", "2020-08-31", "dividend", None, 0.0),
    ]
    good, rejects = validate_actions(action_table(rows), now=NOW)
    assert rejects.num_rows == 0
    assert rejects.schema == QUARANTINE_SCHEMA
    assert good.schema == CORPORATE_ACTION_SCHEMA
    keys = [(r["symbol"], r["ex_date"], r["kind"]) for r in good.to_pylist()]
    assert keys == sorted(keys)
    assert len(keys) == 4


@pytest.mark.parametrize("ratio", [None, 0.0, -2.0, 1.0, float("nan"), float("inf")])
def test_bad_split_ratio(ratio) -> None:
    good, rejects = validate_actions(action_table([("AAPL", "2020-08-31", "split", ratio, None)]))
    assert good.num_rows == 0
    assert rules(rejects) == ["bad_split_ratio"]
    assert rejects["detail"][0].as_py().startswith("split ratio ")


@pytest.mark.parametrize("amount", [None, -0.5, float("nan")])
def test_bad_dividend(amount) -> None:
    good, rejects = validate_actions(
        action_table([("AAPL", "2020-08-07", "dividend", None, amount)])
    )
    assert good.num_rows == 0
    assert rules(rejects) == ["bad_dividend"]


def test_unknown_kind() -> None:
    good, rejects = validate_actions(action_table([("AAPL", "2020-08-07", "spinoff", 2.0, 1.0)]))
    assert good.num_rows == 0
    assert rules(rejects) == ["unknown_kind"]
    assert rejects["detail"][0].as_py() == "kind 'spinoff' is not one of split, dividend"


def test_duplicates_keep_the_first() -> None:
    rows = [
        ("AAPL", "2020-08-31", "split", 4.0, None),
        ("AAPL", "2020-08-31", "split", 4.0, None),
        ("AAPL", "2020-08-31", "split", 5.0, None),
        ("AAPL", "2020-08-31", "dividend", None, 0.2),  # another kind on the same day is fine
    ]
    good, rejects = validate_actions(action_table(rows), now=NOW)
    assert good.num_rows == 2
    assert good.filter(good["kind"].to_numpy(zero_copy_only=False) == "split")[
        "ratio"
    ].to_pylist() == [4.0]
    assert rules(rejects) == ["duplicate", "duplicate"]
    details = rejects["detail"].to_pylist()
    assert details[0].endswith("identical values")
    assert "ratio 5.0" in details[1] and "kept ratio 4.0" in details[1]


def test_quarantine_row_contract() -> None:
    _, rejects = validate_actions(
        action_table([("AAPL", "2020-08-31", "split", 1.0, None)]), now=NOW
    )
    row = rejects.to_pylist()[0]
    assert row["dataset"] == "corporate_actions"
    assert row["ts"] == day("2020-08-31")
    assert row["quarantined_at"] == NOW
    record = json.loads(row["record"])
    assert record["ex_date"] == "2020-08-31T00:00:00+00:00"
    assert record["ratio"] == 1.0
    assert record["amount"] is None
