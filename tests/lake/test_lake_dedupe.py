"""Last-row-wins de-duplication on natural keys, sorted or not."""

from __future__ import annotations

import pyarrow as pa
import pytest

from marketlake.lake.merge import dedupe_last


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
    result = dedupe_last(table, ["symbol", "day"])
    assert sorted(result.column("v").to_pylist()) == kept
