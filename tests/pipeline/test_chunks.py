"""The lake writer's buckets and key order check: buckets weigh what a symbol's messages
bring and what the lake holds for it; rows in key order stay as they are, others are sorted
stably (so the last delivery of a key stays last), and repeated keys are reported."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from marketlake.pipeline.chunks import sorted_unique_keys, symbol_buckets
from marketlake.pipeline.messages import encode_table, history_headers

KEYS = ("symbol", "seq")


def table_of(pairs: list[tuple[str, int]]) -> pa.Table:
    """Rows of (symbol, seq), numbered in arrival order by ``n``, in two record batches."""
    rows = [{"symbol": s, "seq": q, "n": i} for i, (s, q) in enumerate(pairs)]
    half = len(rows) // 2
    return pa.concat_tables([pa.Table.from_pylist(rows[:half]), pa.Table.from_pylist(rows[half:])])


class Message:
    """A polled bus message: key, value and headers."""

    def __init__(self, symbol: str, rows: int, stored: int) -> None:
        self.key = symbol
        self.value = encode_table(pa.table({"symbol": [symbol] * rows}))
        self.headers = history_headers("bars_1d", "sim", "b", "r", stored)


def bucket_symbols(messages: list[Message], max_rows: int) -> list[list[str]]:
    return [
        [t.column("symbol")[0].as_py() for t in chunk["bars_1d"]]
        for chunk in symbol_buckets(messages, max_rows)
    ]


def test_buckets_weigh_the_stored_bars_a_symbol_brings_along() -> None:
    """A daily run's one bar per symbol: the stored bars decide the buckets."""
    daily = [Message(s, 1, 100) for s in ("D", "A", "C", "B")]
    assert bucket_symbols(daily, 150) == [["A", "B"], ["C", "D"]]
    assert bucket_symbols(daily, 10_000) == [["A", "B", "C", "D"]]
    first_run = [Message(s, 100, 0) for s in ("A", "B", "C")]  # nothing stored yet
    assert bucket_symbols(first_run, 150) == [["A", "B"], ["C"]]
    assert bucket_symbols(first_run + daily[:1], 1_000) == [["A", "B", "C", "D"]]


def test_a_poll_splits_into_equal_buckets_not_a_small_tail() -> None:
    """Each bucket costs its own commits: 21 symbols of 100 rows with ``max_rows`` 1,000 make
    two buckets of about 1,050 rows, not 1,000, 1,000 and 100; no bucket passes the slack."""
    from marketlake.pipeline.chunks import BUCKET_SLACK, even_share

    poll = [Message(f"S{i:02d}", 100, 0) for i in range(21)]
    sizes = [len(b) for b in bucket_symbols(poll, 1_000)]
    assert sizes == [11, 10]
    assert even_share(1_020_000, 500_000) == 510_000
    assert even_share(100, 500_000) == 100
    assert even_share(2_000_000, 500_000) == 500_000
    assert all(even_share(n, 1_000) <= 1_000 * BUCKET_SLACK for n in range(1, 10_000, 7))


def test_rows_in_key_order_come_back_unchanged() -> None:
    table = table_of([("A", 1), ("A", 2), ("B", 1), ("B", 3), ("C", 0)])
    ordered, unique = sorted_unique_keys(table, KEYS)
    assert ordered.to_pylist() == table.to_pylist() and unique


def test_repeated_keys_in_order_are_reported() -> None:
    ordered, unique = sorted_unique_keys(table_of([("A", 1), ("A", 1), ("B", 2)]), KEYS)
    assert [r["n"] for r in ordered.to_pylist()] == [0, 1, 2] and not unique


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_unordered_rows_are_sorted_stably(seed: int) -> None:
    generator = random.Random(seed)
    pairs = [(generator.choice("ABC"), generator.randrange(4)) for _ in range(60)]
    ordered, unique = sorted_unique_keys(table_of(pairs), KEYS)
    rows = ordered.to_pylist()
    expected = sorted(table_of(pairs).to_pylist(), key=lambda r: (r["symbol"], r["seq"]))
    assert rows == expected  # Python's sort is stable: arrival order within a key
    assert unique == (len(set(pairs)) == len(pairs))


def test_a_single_row_is_unique() -> None:
    table = pa.Table.from_pylist([{"symbol": "A", "seq": 1, "n": 0}])
    assert sorted_unique_keys(table, KEYS) == (table, True)


def test_written_rows_split_into_new_keys_and_changed_values() -> None:
    """Rows of keys not stored, rows of stored keys with another value (a null against a
    value counts as one), and rows stored as they are, which are in neither."""
    from marketlake.pipeline.chunks import split_by_stored

    stored = pa.Table.from_pylist(
        [
            {"symbol": "A", "seq": 1, "close": 1.0, "note": "x"},
            {"symbol": "A", "seq": 2, "close": 2.0, "note": None},
            {"symbol": "B", "seq": 1, "close": 3.0, "note": "y"},
            {"symbol": "B", "seq": 2, "close": 4.0, "note": "z"},
        ]
    )
    written = pa.Table.from_pylist(
        [
            {"symbol": "A", "seq": 1, "close": 1.0, "note": "x"},  # stored as it is
            {"symbol": "A", "seq": 2, "close": 2.0, "note": "n"},  # null became a value
            {"symbol": "A", "seq": 3, "close": 5.0, "note": None},  # new key
            {"symbol": "B", "seq": 2, "close": 4.5, "note": "z"},  # value changed
            {"symbol": "C", "seq": 1, "close": 6.0, "note": "w"},  # new symbol
        ]
    )
    absent, changed = split_by_stored(written, stored, KEYS)
    assert absent.schema == written.schema and changed.schema == written.schema
    assert sorted((r["symbol"], r["seq"]) for r in absent.to_pylist()) == [("A", 3), ("C", 1)]
    assert sorted((r["symbol"], r["seq"], r["close"]) for r in changed.to_pylist()) == [
        ("A", 2, 2.0),
        ("B", 2, 4.5),
    ]
