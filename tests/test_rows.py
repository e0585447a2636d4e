"""Last-row-wins de-duplication on natural keys, sorted or not, for the lake and the warehouse."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from marketlake.rows import deduplicate


def last_by_key(rows: list[dict], keys: tuple[str, ...]) -> list[dict]:
    """The expected result, computed the plain way: a dict keeps the last row per key."""
    latest = {tuple(row[k] for k in keys): row for row in rows}
    return [latest[key] for key in sorted(latest)]


def test_unsorted_rows_keep_the_last_of_each_key_in_key_order() -> None:
    generator = random.Random(7)
    rows = [
        {"symbol": generator.choice("ABC"), "seq": generator.randrange(5), "n": i}
        for i in range(200)
    ]
    table = pa.Table.from_pylist(rows)
    assert deduplicate(table, ("symbol", "seq")).to_pylist() == last_by_key(rows, ("symbol", "seq"))


def test_sorted_rows_with_adjacent_duplicates_keep_the_last() -> None:
    rows = [{"k": k, "n": i} for i, k in enumerate([1, 1, 2, 3, 3, 3, 4])]
    table = pa.concat_tables(
        [pa.Table.from_pylist(rows[:3]), pa.Table.from_pylist(rows[3:])]
    )  # two chunks: neighbours span the chunk boundary
    assert deduplicate(table, ("k",)).column("n").to_pylist() == [1, 2, 5, 6]


def test_rows_without_duplicates_are_returned_as_they_are() -> None:
    table = pa.table({"symbol": ["A", "A", "B"], "ts": [1, 2, 1], "v": [0.1, 0.2, 0.3]})
    assert deduplicate(table, ("symbol", "ts")) is table


def test_multi_key_order_compares_later_keys_only_on_ties() -> None:
    table = pa.table({"symbol": ["B", "A", "A"], "ts": [1, 5, 2]})
    assert deduplicate(table, ("symbol", "ts")).to_pylist() == [
        {"symbol": "A", "ts": 2},
        {"symbol": "A", "ts": 5},
        {"symbol": "B", "ts": 1},
    ]


@pytest.mark.parametrize(
    ("symbols", "days", "kept"),
    [
        (["A", "A", "B", "B"], [1, 2, 1, 2], [10, 11, 12, 13]),  # sorted, unique: unchanged
        (["A", "A", "B", "B"], [1, 1, 1, 2], [11, 12, 13]),  # sorted with a repeat
        (["B", "A", "B"], [1, 1, 1], [11, 12]),  # unsorted with a repeat
        (["B", "A"], [1, 1], [10, 11]),  # unsorted, unique
    ],
)
def test_dedupe_keeps_the_last_row_of_each_key(
    symbols: list[str], days: list[int], kept: list[int]
) -> None:
    table = pa.table({"symbol": symbols, "day": days, "v": list(range(10, 10 + len(days)))})
    result = deduplicate(table, ["symbol", "day"])
    assert sorted(result.column("v").to_pylist()) == kept
