"""``stream process --engine spark``: the stream processor as a Structured Streaming query.

The query reads the bus through :mod:`marketlake.streaming.spark.source`, runs one stream
processor per bus partition in Spark's state store (:mod:`marketlake.streaming.spark.operator`)
and writes each micro-batch with :class:`~marketlake.streaming.spark.sink.BatchSink`. Its
offsets and state live in the checkpoint folder ``<checkpoint>/<group>``; killed at any
instant, a restarted query replays the batch it was in, which the sink recognises.

Run until caught up, the query uses ``trigger(availableNow=True)``: everything in the topic
when it starts, then the sessions that have closed are closed (as the embedded processor does).
Otherwise it runs a micro-batch every ``[spark] trigger_interval`` until stopped; with
``upstream_done`` (the one-process ``marketlake stream``) it switches to ``availableNow`` once
the producer is done.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from marketlake.errors import ConfigError, TerminalError
from marketlake.streaming.runtime.stats import ProcessStats

if TYPE_CHECKING:
    from marketlake.bus.base import Bus
    from marketlake.lake.tables import LakeTables
    from marketlake.settings import SparkSettings
    from marketlake.streaming.runtime.options import PipelineOptions
    from marketlake.warehouse.base import Warehouse

_POLL_S = 0.2


def checkpoint_folder(home: Path, spark: SparkSettings, group: str) -> Path:
    """The checkpoint folder of ``group``'s query: ``[spark] checkpoint`` (default
    ``<home>/spark/checkpoints``) / group."""
    base = spark.checkpoint if spark.checkpoint is not None else home / "spark" / "checkpoints"
    return (base / group).resolve()


class SparkStreamPipeline:
    """Consumes the ticks of ``options.topic`` on the bus at ``bus_url`` with a Spark query."""

    def __init__(
        self,
        bus: Bus,
        bus_url: str,
        tables: LakeTables,
        options: PipelineOptions,
        spark: SparkSettings,
        checkpoint: Path,
        warehouse: Warehouse | None = None,
    ) -> None:
        if not bus_url.startswith(("local://", "kafka://")):
            raise ConfigError(
                f"the spark stream engine reads local:// or kafka:// buses, not {bus_url!r}"
            )
        self.bus = bus
        self.bus_url = bus_url
        self.tables = tables
        self.options = options
        self.spark = spark
        self.checkpoint = checkpoint
        self.warehouse = warehouse
        self.stats = ProcessStats()
        self._reached: list[int] | None = None  # the ends of the last completed batch

    def run(
        self,
        *,
        count: int | None = None,
        duration_s: float | None = None,
        until_caught_up: bool = False,
        upstream_done: Callable[[], bool] | None = None,
        stop: Callable[[], bool] | None = None,
        on_progress: Callable[[ProcessStats], None] | None = None,
        progress_every_s: float = 1.0,
    ) -> ProcessStats:
        """Run the query until caught up (once ``upstream_done()``), ``duration_s`` seconds or
        ``stop()``; see the module documentation. Returns the counts of this run."""
        from marketlake.engines.spark.session import open_session

        if count is not None:
            raise ConfigError(
                "--count is not supported by the spark stream engine (it processes whole "
                "micro-batches); use --until-caught-up or --duration"
            )
        opts = self.options
        self.bus.create_topic(opts.topic, opts.partitions, opts.retention)
        handle = open_session(self.spark)
        alerts = None
        if opts.alerts_topic:
            self.bus.create_topic(opts.alerts_topic, opts.partitions, opts.retention)
            alerts = self.bus.producer()
        deadline = None if duration_s is None else time.monotonic() + duration_s

        def stopped() -> bool:
            if stop is not None and stop():
                return True
            return deadline is not None and time.monotonic() >= deadline

        try:
            session = handle.session
            if until_caught_up and upstream_done is None:
                self._query(session, alerts, True, stopped, on_progress, progress_every_s)
            else:

                def enough() -> bool:
                    done = until_caught_up and upstream_done is not None and upstream_done()
                    return stopped() or done

                self._query(session, alerts, False, enough, on_progress, progress_every_s)
                if until_caught_up and not stopped():
                    self._query(session, alerts, True, stopped, on_progress, progress_every_s)
        finally:
            if alerts is not None:
                alerts.close()
            handle.stop()
        self.stats.lag = self._lag()
        if on_progress is not None:
            on_progress(self.stats)
        return self.stats

    def _query(
        self,
        session: Any,
        alerts: Any,
        available_now: bool,
        stop: Callable[[], bool],
        on_progress: Callable[[ProcessStats], None] | None,
        progress_every_s: float,
    ) -> None:
        from pyspark.sql.streaming.state import GroupStateTimeout

        from marketlake.streaming.spark.operator import (
            OUTPUT_SCHEMA,
            STATE_SCHEMA,
            PartitionProcessor,
        )
        from marketlake.streaming.spark.sink import BatchSink
        from marketlake.streaming.spark.source import SOURCE_NAME, BusDataSource

        opts = self.options
        session.dataSource.register(BusDataSource)
        close_at = time.time_ns() // 1000 if available_now else 0
        source = (
            session.readStream.format(SOURCE_NAME)
            .option("bus", self.bus_url)
            .option("topic", opts.topic)
            .option("group", opts.group)
            .option("close_at", str(close_at))
            .option("max_messages", str(opts.max_messages))
            .load()
        )
        processed = source.groupBy("part").applyInPandasWithState(
            PartitionProcessor(opts.config, opts.topic, opts.group),
            OUTPUT_SCHEMA,
            STATE_SCHEMA,
            "append",
            GroupStateTimeout.NoTimeout,
        )
        sink = BatchSink(
            self.tables,
            opts.group,
            self.checkpoint,
            self.stats,
            self.warehouse,
            opts.ticks_mode,
            alerts,
            opts.alerts_topic,
        )
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        writer = processed.writeStream.foreachBatch(sink).option(
            "checkpointLocation", str(self.checkpoint)
        )
        if available_now:
            writer = writer.trigger(availableNow=True)
        else:
            interval_ms = max(int(self.spark.trigger_interval.total_seconds() * 1000), 1)
            writer = writer.trigger(processingTime=f"{interval_ms} milliseconds")
        previous = session.conf.get("spark.sql.shuffle.partitions")
        # Read once, when the checkpoint is created: the state's partitioning is fixed then.
        session.conf.set("spark.sql.shuffle.partitions", str(self.spark.stream_partitions))
        try:
            query = writer.start()
        finally:
            session.conf.set("spark.sql.shuffle.partitions", previous)
        next_report = time.monotonic() + progress_every_s
        try:
            while query.isActive:
                query.awaitTermination(_POLL_S)
                if stop():
                    break
                if on_progress is not None and time.monotonic() >= next_report:
                    on_progress(self.stats)
                    next_report = time.monotonic() + progress_every_s
        finally:
            if query.isActive:
                query.stop()
        error = query.exception()
        if error is not None:
            lines = str(error).strip().splitlines()
            raise TerminalError(
                f"the spark stream query failed: {lines[0] if lines else type(error).__name__}"
            )
        self._commit_progress(query)

    def _commit_progress(self, query: Any) -> None:
        """Commit the end of the query's last completed batch for the group on the bus (Spark
        tells the source of every batch but the last)."""
        from marketlake.streaming.spark.source import commit_offsets, parse_offsets

        progress = query.lastProgress
        if not progress or not progress.get("sources"):
            return
        end = progress["sources"][0].get("endOffset")
        if not end:
            return
        offsets = parse_offsets(end)
        ranges = self.bus.ranges()
        try:
            commit_offsets(ranges, self.options.group, self.options.topic, offsets)
        finally:
            ranges.close()
        self._reached = [int(offset) for offset in offsets.get("ends", [])]

    def _lag(self) -> int | None:
        """Messages of the topic past the end of the query's last completed batch (None
        before any batch)."""
        if self._reached is None:
            return None
        ranges = self.bus.ranges()
        try:
            offsets = ranges.offsets(self.options.topic)
        finally:
            ranges.close()
        reached = (self._reached + [0] * len(offsets))[: len(offsets)]
        pairs = zip(offsets, reached, strict=True)
        return sum(max(end - max(done, first), 0) for (first, end), done in pairs)
