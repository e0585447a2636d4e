"""The ``foreachBatch`` sink of the Spark query: the embedded pipeline's tables, exactly once.

Each micro-batch's outputs are collected on the driver and written like the embedded
pipeline writes them (MERGE on natural keys into the lake, upserts into the warehouse), then
the batch's new ticks are appended to ``curated/ticks`` in one Delta commit that records the
batch id as the application transaction ``marketlake.spark.<group>.<query id>`` (even when
there is no tick to append). That commit is the batch's mark: a batch Spark replays after a
crash finds its id recorded and writes nothing. Everything before the mark is idempotent, so
a crash before it only repeats upserts. The query id comes from the checkpoint: a new
checkpoint is a new query, which reads the topic again from its earliest message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from marketlake.schemas import DEAD_LETTER_SCHEMA, TICK_KEYS, TICK_SCHEMA
from marketlake.streaming.outputs import StreamOutput
from marketlake.streaming.runtime.sink import TICKS_TABLE, StreamSink
from marketlake.streaming.spark.operator import OUTPUT_KINDS, from_ipc

if TYPE_CHECKING:
    from marketlake.bus.base import Producer
    from marketlake.lake.tables import LakeTables
    from marketlake.streaming.runtime.stats import ProcessStats
    from marketlake.warehouse.base import Warehouse

APP_PREFIX = "marketlake.spark."


class BatchSink:
    """Writes each micro-batch of the query checkpointed at ``checkpoint`` once."""

    def __init__(
        self,
        tables: LakeTables,
        group: str,
        checkpoint: Path,
        stats: ProcessStats,
        warehouse: Warehouse | None = None,
        ticks_mode: str = "append",
        alerts: Producer | None = None,
        alerts_topic: str | None = None,
    ) -> None:
        self.sink = StreamSink(
            tables, group, warehouse, "merge" if ticks_mode == "merge" else "append"
        )
        self.tables = tables
        self.group = group
        self.checkpoint = checkpoint
        self.stats = stats
        self.alerts = alerts
        self.alerts_topic = alerts_topic
        self.replayed = 0  # batches found already written

    def app_id(self) -> str:
        """The application transaction id of this query (group and query id)."""
        meta = json.loads((self.checkpoint / "metadata").read_text())
        return f"{APP_PREFIX}{self.group}.{meta['id']}"

    def written_batch(self, app_id: str) -> int | None:
        """The newest batch id recorded in the ticks table for ``app_id`` (None: none)."""
        if not self.tables.exists(TICKS_TABLE):
            return None
        from deltalake import DeltaTable

        storage = self.tables.storage
        table = DeltaTable(storage.uri(TICKS_TABLE), storage_options=storage.storage_options())
        version = table.transaction_version(app_id)
        return None if version is None else int(version)

    def __call__(self, frame: Any, batch_id: int) -> None:
        """Write micro-batch ``batch_id`` (a DataFrame of the operator's outputs) once."""
        # Collected first, even when the batch is written already: Spark commits the state of
        # a batch only once the sink has consumed all of it.
        rows = frame.toArrow()
        app_id = self.app_id()
        written = self.written_batch(app_id)
        if written is not None and written >= batch_id:
            self.replayed += 1
            return
        parts: dict[str, list[pa.Table]] = {}
        for kind, data in zip(
            rows.column("kind").to_pylist(), rows.column("data").to_pylist(), strict=True
        ):
            parts.setdefault(kind, []).append(from_ipc(data))
        output = StreamOutput()
        for kind in OUTPUT_KINDS:
            if kind in parts:
                setattr(output, kind, pa.concat_tables(parts[kind]))
        dead = _concat(parts.get("dead_letters"), DEAD_LETTER_SCHEMA)
        ticks = _concat(parts.get("ticks"), TICK_SCHEMA)
        unchecked = _concat(parts.get("unchecked"), TICK_SCHEMA)
        self.sink.merge_outputs(output, dead)
        merged = (
            pa.concat_tables([ticks, unchecked]) if self.sink.ticks_mode == "merge" else unchecked
        )
        if merged.num_rows:
            self.tables.merge(TICKS_TABLE, merged, TICK_KEYS, update_existing=False)
        if self.sink.warehouse is not None:
            self.sink.load_warehouse([ticks, unchecked], output, dead)
        if self.alerts is not None and output.alerts.num_rows:
            from marketlake.streaming.runtime.processing import publish_alerts

            publish_alerts(self.alerts, self.alerts_topic or "alerts", output.alerts)
            self.alerts.flush()
        appended = ticks if self.sink.ticks_mode == "append" else ticks.slice(0, 0)
        if len(output) or dead.num_rows or ticks.num_rows or unchecked.num_rows:
            # a batch that wrote nothing needs no mark: running it again writes nothing either
            self._mark(appended, app_id, batch_id)
        self._count(parts, output, dead, ticks)

    def _mark(self, ticks: pa.Table, app_id: str, batch_id: int) -> None:
        """Append ``ticks`` in the commit that records ``batch_id``."""
        from deltalake import CommitProperties, Transaction, write_deltalake

        storage = self.tables.storage

        def append() -> None:
            write_deltalake(
                storage.uri(TICKS_TABLE),
                ticks.cast(TICK_SCHEMA),
                mode="append",
                storage_options=storage.storage_options(),
                commit_properties=CommitProperties(
                    app_transactions=[Transaction(app_id=app_id, version=batch_id)]
                ),
            )

        storage.run(f"appending to table {TICKS_TABLE}", append)

    def _count(
        self,
        parts: dict[str, list[pa.Table]],
        output: StreamOutput,
        dead: pa.Table,
        ticks: pa.Table,
    ) -> None:
        stats = self.stats
        for table in parts.get("stats", []):
            stats.messages += int(pc.sum(table.column("messages")).as_py() or 0)
            stats.ticks += int(pc.sum(table.column("ticks")).as_py() or 0)
            stats.duplicates += int(pc.sum(table.column("duplicates")).as_py() or 0)
            stats.latencies_us.extend(pc.list_flatten(table.column("latencies_us")).to_pylist())
        stats.late += output.late.num_rows
        stats.quarantined += output.quarantine.num_rows
        stats.windows += output.windows.num_rows
        stats.bars += output.bars_1m.num_rows
        stats.alerts += output.alerts.num_rows
        stats.dead_letters += dead.num_rows
        stats.written_ticks += ticks.num_rows
        stats.commits += 1


def _concat(tables: list[pa.Table] | None, schema: pa.Schema) -> pa.Table:
    if not tables:
        return schema.empty_table()
    return pa.concat_tables([t.cast(schema) for t in tables])
