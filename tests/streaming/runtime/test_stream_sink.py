"""The stream sink's tick appends: every commit records how far each partition's ticks reach."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from marketlake.lake import LakeStorage, LakeTables
from marketlake.schemas import TICK_SCHEMA
from marketlake.streaming.runtime.sink import SinkBatch, StreamSink

TOPIC = "ticks"


def ticks(symbol: str, first_seq: int, n: int) -> pa.Table:
    """``n`` ticks of ``symbol`` with sequence numbers from ``first_seq``."""
    start = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
    return pa.Table.from_pylist(
        [
            {
                "symbol": symbol,
                "ts": start + timedelta(seconds=seq),
                "price": 100.0 + seq,
                "size": 1.0,
                "source": "sim",
                "seq": seq,
            }
            for seq in range(first_seq, first_seq + n)
        ],
        schema=TICK_SCHEMA,
    )


def batch(positions: dict[int, int], *parts: tuple[pa.Table, bool]) -> SinkBatch:
    """A sealed batch reaching ``positions`` (partition: next offset) with ``parts``."""
    sealed = SinkBatch({(TOPIC, p): o for p, o in positions.items()}, b"", {})
    for table, in_lake in parts:
        sealed.add_ticks(table, in_lake)
    return sealed


def new_sink(tmp_path: Path) -> tuple[LakeTables, StreamSink]:
    """A lake under ``tmp_path`` and a sink of group ``g`` that has read its positions."""
    tables = LakeTables(LakeStorage.from_url((tmp_path / "lake").as_uri()))
    sink = StreamSink(tables, "g")
    sink.written_positions()
    return tables, sink


def test_a_restart_from_an_older_checkpoint_never_forgets_appended_partitions(
    tmp_path: Path,
) -> None:
    tables, first = new_sink(tmp_path)
    # Partitions 0 and 2 appended; the process dies before its checkpoint is stored.
    first.write(batch({0: 4, 2: 3}, (ticks("A", 0, 4), False), (ticks("B", 0, 3), False)))

    # A restart from an older checkpoint first reaches only partition 0 (its ticks of
    # offsets below 4 are in the lake already, offset 4 is new).
    second = StreamSink(tables, "g")
    assert second.written_positions() == {(TOPIC, 0): 4, (TOPIC, 2): 3}
    second.write(batch({0: 5}, (ticks("A", 0, 4), True), (ticks("A", 4, 1), False)))

    # The next restart still knows that partition 2's ticks are in the lake.
    third = StreamSink(tables, "g")
    assert third.written_positions() == {(TOPIC, 0): 5, (TOPIC, 2): 3}
    stored = tables.read("curated/ticks")
    assert stored.num_rows == 8
    keys = set(zip(stored["symbol"].to_pylist(), stored["seq"].to_pylist(), strict=True))
    assert len(keys) == 8


def column_encodings(tables: LakeTables, name: str) -> list[dict[str, tuple[str, ...]]]:
    """Per live file of table ``name``: column → (its encodings, and ``DICT`` when it has a
    dictionary page)."""
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    storage = tables.storage
    delta = DeltaTable(storage.uri(name), storage_options=storage.storage_options())
    files = []
    for path in pa.table(delta.get_add_actions(flatten=True)).column("path").to_pylist():
        with storage.subtree(name).open_input_file(path) as handle:
            group = pq.ParquetFile(handle).metadata.row_group(0)
        files.append(
            {
                group.column(i).path_in_schema: (
                    *group.column(i).encodings,
                    *(("DICT",) if group.column(i).has_dictionary_page else ()),
                )
                for i in range(group.num_columns)
            }
        )
    return files


def test_tick_files_use_the_encodings_the_catalogue_declares(tmp_path: Path) -> None:
    """Appended, MERGEd and compacted tick files encode event times and sequence numbers
    delta-binary-packed and prices with a dictionary; the ticks read back as written."""
    from marketlake.catalogue import TICKS

    tables, sink = new_sink(tmp_path)
    appended = [ticks("A", 0, 50), ticks("B", 0, 30)]
    sink.write(batch({0: 1, 1: 1}, *((t, False) for t in appended)))
    unchecked = batch({0: 2, 1: 1})
    unchecked.unchecked.append(ticks("A", 50, 20))  # too old to de-duplicate: MERGEd
    sink.write(unchecked)

    def check() -> None:
        files = column_encodings(tables, TICKS.lake_table)
        assert len(files) >= 1
        for columns in files:
            for name in ("ts", "seq"):
                assert "DELTA_BINARY_PACKED" in columns[name], (name, columns[name])
                assert "DICT" not in columns[name]
            for name in ("price", "size", "symbol"):
                assert "DICT" in columns[name], (name, columns[name])

    check()
    tables.compact(TICKS.lake_table)
    check()
    expected = pa.concat_tables([*appended, ticks("A", 50, 20)])
    key = [("symbol", "ascending"), ("seq", "ascending")]
    assert tables.read(TICKS.lake_table).sort_by(key) == expected.sort_by(key)
