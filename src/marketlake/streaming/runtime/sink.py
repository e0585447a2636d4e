"""Sinks of the stream pipeline: the lake's Delta tables and the warehouse, exactly-once.

Every write is idempotent, so a batch written again after a crash changes nothing:

- ``curated/ticks`` is appended to, one Delta commit per batch, and each commit records the
  bus positions it reaches (commit metadata ``marketlake.stream.<group>``). A restarted
  processor reads the newest such positions and does not append ticks of messages below them
  again; the commit and its positions are atomic, so no tick is lost or doubled. Ticks the
  bus carries twice (a restarted producer re-sends) are dropped by the processor's
  de-duplication before they get here; ticks too old for it to check (beyond
  ``late_retention``) are MERGEd on (symbol, ts, seq) without updating, so they land once too.
  With ``ticks_mode="merge"`` every tick is MERGEd that way, at a higher cost per batch.
- bars, windows, late ticks and alerts are MERGEd on their natural keys (a later row with the
  same key is a correction or the final version of a provisional window);
- rejected ticks go to ``quarantine/ticks``, messages the processor could not decode or
  process to ``quality/dead_letters`` (MERGEd on their bus position); the warehouse gets
  upserts on the same keys.

The processor checkpoint is stored last, then the bus offsets may be committed.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from marketlake.catalogue import (
    BARS_1M,
    DEAD_LETTERS,
    LATE_TICKS,
    QUARANTINE,
    STREAM_ALERTS,
    STREAM_OUTPUTS,
    STREAM_WINDOWS,
    TICKS,
    quarantine_table,
)
from marketlake.errors import ConfigError
from marketlake.schemas import TICK_KEYS, TICK_SCHEMA
from marketlake.streaming.outputs import StreamOutput
from marketlake.streaming.runtime.offsets import (
    Checkpoint,
    CheckpointStore,
    Positions,
    positions_from_json,
    positions_to_json,
)

if TYPE_CHECKING:
    from marketlake.lake.tables import LakeTables
    from marketlake.warehouse.base import Warehouse

TICKS_TABLE = TICKS.lake_table
TICKS_MODES = ("append", "merge")
_METADATA_PREFIX = "marketlake.stream."
_HISTORY_DEPTH = 500

# (lake table, warehouse table, output field, keys), from the catalogue
_OUTPUT_TABLES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = tuple(
    (dataset.lake_table, dataset.name, attribute, dataset.keys)
    for dataset, attribute in (
        (BARS_1M, "bars_1m"),
        (STREAM_WINDOWS, "windows"),
        (LATE_TICKS, "late"),
        (STREAM_ALERTS, "alerts"),
    )
)


@dataclass
class SinkBatch:
    """Everything one commit of the pipeline writes: the new ticks, the processor's outputs,
    and the state and bus positions they reach."""

    positions: Positions
    state: bytes
    counts: dict[str, int]
    ticks: list[pa.Table] = field(default_factory=list)
    in_lake: list[bool] = field(default_factory=list)  # per ticks table: already appended
    unchecked: list[pa.Table] = field(default_factory=list)  # too old to de-duplicate
    outputs: list[StreamOutput] = field(default_factory=list)
    dead_letters: list[pa.Table] = field(default_factory=list)  # DEAD_LETTERS rows

    def add_ticks(self, ticks: pa.Table, in_lake: bool) -> None:
        """Add valid ticks; ``in_lake`` when an earlier run already appended them."""
        self.ticks.append(ticks)
        self.in_lake.append(in_lake)

    @property
    def tick_count(self) -> int:
        """Ticks in the batch."""
        return sum(t.num_rows for t in self.ticks) + sum(t.num_rows for t in self.unchecked)


class StreamSink:
    """Writes :class:`SinkBatch` es to the lake (and the warehouse, when given), then stores
    the checkpoint."""

    def __init__(
        self,
        tables: LakeTables,
        group: str,
        warehouse: Warehouse | None = None,
        ticks_mode: Literal["append", "merge"] = "append",
    ) -> None:
        if ticks_mode not in TICKS_MODES:
            raise ConfigError(f"ticks_mode must be one of {TICKS_MODES}, got {ticks_mode!r}")
        self.tables = tables
        self.group = group
        self.warehouse = warehouse
        self.ticks_mode = ticks_mode
        self.checkpoints = CheckpointStore(tables.storage, group)
        self.written: dict[str, int] = {}
        self._appended: Positions | None = None  # furthest positions whose ticks are appended

    def written_positions(self) -> Positions:
        """The bus positions the newest tick commit of this group reached (empty: none).

        Every append records the furthest position of each partition whose ticks are in the
        table (see :meth:`_append_ticks`), so the newest commit alone tells them all.
        """
        positions: Positions = {}
        if self.tables.exists(TICKS_TABLE):
            key = _METADATA_PREFIX + self.group
            for commit in self.tables.history(TICKS_TABLE, limit=_HISTORY_DEPTH):
                if key in commit:
                    positions = positions_from_json(json.loads(commit[key]))
                    break
        self._appended = dict(positions)
        return positions

    def write(self, batch: SinkBatch) -> None:
        """Write ``batch`` durably and idempotently, then its checkpoint."""
        output = StreamOutput.concat(batch.outputs)
        self._write_ticks(batch)
        dead = pa.concat_tables(batch.dead_letters) if batch.dead_letters else None
        self.merge_outputs(output, dead)
        if self.warehouse is not None:
            self.load_warehouse([*batch.ticks, *batch.unchecked], output, dead)
        self.checkpoints.save(
            Checkpoint(self.group, dict(batch.positions), batch.state, dict(batch.counts))
        )

    def _write_ticks(self, batch: SinkBatch) -> None:
        if self.ticks_mode == "merge":
            merged, appended = [*batch.ticks, *batch.unchecked], []
        else:
            merged = batch.unchecked
            appended = [t for t, done in zip(batch.ticks, batch.in_lake, strict=True) if not done]
        ticks = pa.concat_tables(appended) if appended else None
        if ticks is not None and ticks.num_rows:
            self._append_ticks(ticks, batch.positions)
            self._count(TICKS_TABLE, ticks.num_rows)
        rows = pa.concat_tables(merged) if merged else None
        if rows is not None and rows.num_rows:
            stats = self.tables.merge(TICKS_TABLE, rows, TICK_KEYS, update_existing=False)
            self._count(TICKS_TABLE, stats.inserted)

    def _append_ticks(self, ticks: pa.Table, positions: Positions) -> None:
        from deltalake import CommitProperties, write_deltalake

        from marketlake.lake.commits import writer_properties

        storage = self.tables.storage
        # A processor restarted from an older checkpoint reaches, in its first batches, less
        # far than ticks already appended: the commit records the furthest of both, so a later
        # restart never appends those ticks again.
        appended = self._appended if self._appended is not None else self.written_positions()
        reached = {
            key: max(appended.get(key, 0), positions.get(key, 0))
            for key in appended.keys() | positions.keys()
        }
        metadata = {_METADATA_PREFIX + self.group: json.dumps(positions_to_json(reached))}

        def append() -> None:
            write_deltalake(
                storage.uri(TICKS_TABLE),
                ticks.cast(TICK_SCHEMA),
                mode="append",
                storage_options=storage.storage_options(),
                commit_properties=CommitProperties(custom_metadata=metadata),
                writer_properties=writer_properties(TICK_SCHEMA, TICKS_TABLE),
            )

        storage.run(f"appending to table {TICKS_TABLE}", append)
        self._appended = reached

    def merge_outputs(self, output: StreamOutput, dead: pa.Table | None) -> None:
        """MERGE the processor's outputs, rejected ticks and dead letters into the lake."""
        for lake_name, _, attribute, keys in _OUTPUT_TABLES:
            rows: pa.Table = getattr(output, attribute)
            if rows.num_rows:
                self.tables.merge(lake_name, rows, keys)
                self._count(lake_name, rows.num_rows)
        if output.quarantine.num_rows:
            from marketlake.lake.quarantine import write_quarantine

            write_quarantine(self.tables, output.quarantine)
            self._count(quarantine_table(TICKS.name), output.quarantine.num_rows)
        if dead is not None and dead.num_rows:
            self.tables.merge(DEAD_LETTERS.lake_table, dead, DEAD_LETTERS.keys)
            self._count(DEAD_LETTERS.lake_table, dead.num_rows)

    def load_warehouse(
        self, ticks: list[pa.Table], output: StreamOutput, dead: pa.Table | None
    ) -> None:
        """Upsert ``ticks``, the outputs and the dead letters into the warehouse (on their
        keys, so loading them again changes nothing)."""
        assert self.warehouse is not None
        loads: list[tuple[str, pa.Table]] = []
        if ticks:
            loads.append(("ticks", pa.concat_tables(ticks)))
        loads += [(name, getattr(output, attr)) for _, name, attr, _ in _OUTPUT_TABLES]
        loads.append((QUARANTINE.name, output.quarantine))
        if dead is not None:
            loads.append((DEAD_LETTERS.name, dead))
        with self.warehouse.session():  # an embedded file is held once for the batch
            for name, rows in loads:
                if rows.num_rows:
                    self.warehouse.upsert(name, rows)

    def _count(self, table: str, rows: int) -> None:
        self.written[table] = self.written.get(table, 0) + rows


class SinkWriter(threading.Thread):
    """Writes sealed batches in a thread, in order, at a lower CPU priority than the
    processing thread (see :mod:`~marketlake.streaming.runtime.priority`); the first error
    is raised again in the caller's thread."""

    def __init__(self, sink: StreamSink) -> None:
        super().__init__(name="stream-sink", daemon=True)
        self.sink = sink
        self.batches: queue.Queue[SinkBatch | None] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None

    def run(self) -> None:
        from marketlake.streaming.runtime.priority import lower_write_priority

        while True:
            batch = self.batches.get()
            try:
                if batch is None:
                    return
                if self.error is None:
                    # the lake library starts threads as it needs them: each write looks again
                    lower_write_priority()
                    self.sink.write(batch)
            except BaseException as exc:  # handed to the processing thread
                self.error = exc
            finally:
                self.batches.task_done()

    def submit(self, batch: SinkBatch) -> None:
        """Queue ``batch`` (blocks while two batches wait); raise an earlier write error."""
        self.check()
        self.batches.put(batch)

    def drain(self) -> None:
        """Wait until every queued batch is written; raise a write error."""
        self.batches.join()
        self.check()

    def idle(self) -> bool:
        """True when every queued batch is written (or failed: see :meth:`check`)."""
        return self.batches.unfinished_tasks == 0

    def check(self) -> None:
        """Raise the first write error, if any."""
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        """Write what is queued, then end the thread."""
        self.batches.put(None)
        self.join()


def compact_stream_tables(tables: LakeTables, names: Sequence[str] | None = None) -> list[Any]:
    """Compact the streaming tables' small files (``names`` default: every existing one).

    Returns ``(table, metrics)`` pairs, one per compacted table.
    """
    chosen = list(names) if names else [d.lake_table for d in STREAM_OUTPUTS]
    chosen += [] if names else [quarantine_table(TICKS.name)]
    return [(name, tables.compact(name)) for name in chosen if tables.exists(name)]
