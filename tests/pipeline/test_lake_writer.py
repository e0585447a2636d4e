"""The lake writer commits a checked chunk on a thread of its own while it checks the next:
a chunk that names a symbol of the chunk being committed is checked against the lake with
that commit in, and every commit is in when the writer is left."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from marketlake.catalogue import BARS_1D, quarantine_table
from marketlake.pipeline.context import RunContext
from marketlake.pipeline.lake_writer import LakeWriter
from marketlake.pipeline.plan import plan_run
from marketlake.pipeline.result import StageResult
from marketlake.settings import load_settings
from marketlake.sources.sim import SimSource
from tests.pipeline.test_store_bars import bars


def chunk(table: pa.Table) -> dict[str, list[pa.Table]]:
    return {"bars_1d": [table], "corporate_actions": [], "quarantine": []}


def scaled(table: pa.Table, factor: float) -> pa.Table:
    """``table`` with every price times ``factor``."""
    for name in ("open", "high", "low", "close"):
        at = table.schema.get_field_index(name)
        table = table.set_column(at, name, pc.multiply(table.column(name), factor))
    return table


def context(home: Path) -> RunContext:
    settings = load_settings(home=home, symbols="AAPL,MSFT", source="sim")
    return RunContext(settings, plan_run(settings, SimSource()), source=SimSource())


def test_a_later_chunk_of_a_symbol_is_checked_against_the_bars_committed_before(
    tmp_path: Path,
) -> None:
    ctx = context(tmp_path)
    result = StageResult()
    # AAPL's next day closes 60 % above its last committed one: an implausible jump, which
    # the check finds only if it sees the earlier chunk's bars
    with LakeWriter(ctx, result) as writer:
        writer.write(chunk(bars("AAPL", range(0, 5))))
        writer.write(chunk(scaled(bars("AAPL", range(7, 8)), 1.6)))  # the next Monday
        writer.write(chunk(bars("MSFT", range(0, 5))))
    stored = ctx.tables.read(BARS_1D)
    counts = pc.value_counts(stored.column("symbol")).to_pylist()
    assert {row["values"]: row["counts"] for row in counts} == {"AAPL": 5, "MSFT": 5}
    rejected = ctx.tables.read(quarantine_table("bars_1d"))
    assert rejected.column("rule").to_pylist() == ["implausible_jump"]
    assert result.quarantined == 1 and result.rows_out == 10


def test_every_commit_is_in_when_the_writer_is_left(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    with LakeWriter(ctx, StageResult()) as writer:
        for monday in range(0, 21, 7):  # a week of sessions a chunk
            writer.write(chunk(bars("MSFT", range(monday, monday + 5))))
    assert ctx.tables.read(BARS_1D).num_rows == 15
    assert len(ctx.tables.history(BARS_1D)) == 3
