"""Reading a set of symbols: files and row groups are pruned, results match a full scan."""

from __future__ import annotations

import polars as pl
import pyarrow as pa

from marketlake.lake.handover import Handover
from marketlake.lake.symbol_reads import bucket_symbols
from marketlake.lake.tables import LakeTables, symbol_filter

TABLE = "curated/prices"


def _rows(symbols: list[str], base: int) -> pa.Table:
    return pa.table(
        {
            "symbol": [s for s in symbols for _ in range(3)],
            "ts": [base + i for _ in symbols for i in range(3)],
            "v": [float(base + i) for _ in symbols for i in range(3)],
            "source": [f"src-{s}" for s in symbols for _ in range(3)],
        }
    )


def _sorted(table: pa.Table) -> list[dict[str, object]]:
    return table.sort_by([("symbol", "ascending"), ("ts", "ascending")]).to_pylist()


def test_read_symbols_matches_a_full_scan_across_merge_written_files(
    lake_tables: LakeTables,
) -> None:
    lake_tables.merge(TABLE, _rows(["A", "B"], 0), ["symbol", "ts"])
    # Polars hands over large strings: MERGE writes them as string_view files
    later = pl.from_arrow(_rows(["C", "A"], 10))
    assert isinstance(later, pl.DataFrame)
    lake_tables.merge(TABLE, later.to_arrow(), ["symbol", "ts"])
    lake_tables.replace_symbols(TABLE, _rows(["D"], 20), ["D"])

    for wanted in (["A"], ["C", "D"], ["B", "Z"], ["Z"]):
        got = lake_tables.read_symbols(TABLE, wanted)
        expected = lake_tables.read(TABLE, filter=symbol_filter(wanted))
        assert _sorted(got) == _sorted(expected)
        assert got.schema.field("symbol").type == pa.string()

    counts = lake_tables.symbol_counts(TABLE, ["A", "C", "D", "Z"])
    assert counts == {"A": 6, "C": 3, "D": 3}


def test_buckets_follow_the_row_counts() -> None:
    assert bucket_symbols({"B": 2, "A": 2, "C": 5, "D": 1}, 4) == [["A", "B"], ["C"], ["D"]]


def test_handover_gives_back_only_complete_symbols() -> None:
    from marketlake.catalogue import BARS_1D

    handover = Handover(max_rows=10)
    handover.put(BARS_1D, _rows(["A", "B"], 0), ["A", "B", "E"])
    assert handover.counts(BARS_1D, ["A", "E"]) == {"A": 3}
    taken = handover.take(BARS_1D, ["B", "E"])
    assert taken is not None and taken.column("symbol").to_pylist() == ["B"] * 3
    assert handover.take(BARS_1D, ["A", "C"]) is None
    handover.put(BARS_1D, _rows(["C", "D"], 0), ["C", "D"])  # over the cap: dropped
    assert handover.take(BARS_1D, ["A"]) is None
    assert handover.rows == 0


def test_handover_tells_the_oldest_state_its_rows_were_put_at() -> None:
    from marketlake.catalogue import BARS_1D
    from marketlake.lake.tables import TableState

    handover = Handover(max_rows=100)
    handover.put(BARS_1D, _rows(["A"], 0), ["A"], TableState("t", 3))
    handover.put(BARS_1D, _rows(["B"], 0), ["B"], TableState("t", 5))
    handover.put(BARS_1D, _rows(["C"], 0), ["C"])  # state unknown
    assert handover.held_at(BARS_1D, ["A", "B"]) == TableState("t", 3)
    assert handover.held_at(BARS_1D, ["B", "C"]) is None
    handover.put(BARS_1D, _rows(["A"], 1), ["A"], TableState("t", 6))  # A again, later
    assert handover.held_at(BARS_1D, ["A", "B"]) == TableState("t", 5)
    handover.put(BARS_1D, _rows(["D"], 0), ["D"], TableState("another table", 7))
    assert handover.held_at(BARS_1D, ["A", "D"]) is None
    handover.discard(BARS_1D, ["B"])
    assert handover.held_at(BARS_1D, ["B"]) is None
