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


def test_a_restart_from_an_older_checkpoint_never_forgets_appended_partitions(
    tmp_path: Path,
) -> None:
    tables = LakeTables(LakeStorage.from_url((tmp_path / "lake").as_uri()))
    first = StreamSink(tables, "g")
    first.written_positions()
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
