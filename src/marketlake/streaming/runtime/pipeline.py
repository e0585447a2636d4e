"""The stream pipeline: bus → stream processor → lake and warehouse, exactly-once.

The processing thread polls whole batches of messages, decodes them and feeds each poll to the
:class:`~marketlake.streaming.processor.StreamProcessor` in one call. Every
``commit_interval_s`` (or ``commit_ticks`` ticks) the outputs, the new ticks, a processor
snapshot and the bus positions they reach are *sealed* and handed to a writer thread, which
writes the sinks and then the checkpoint (see :mod:`marketlake.streaming.runtime.sink`), so
processing continues while the lake is written. The group's bus offsets are committed only
when every sealed batch is durable and nothing was polled since: when the bus is idle, every
``barrier_s`` seconds, and at the end of the run.

After a crash the processor restores the checkpoint and skips every message below its
positions; messages between the checkpoint and the bus's committed offsets cannot exist,
because the bus is committed only after the checkpoint. Re-written rows are absorbed by the
sinks' MERGE on natural keys; re-appended ticks are prevented by the positions stored in the
ticks table's commits. Ticks the bus carries twice are dropped by the processor (its fates
say which ticks were new), so only new ticks are appended. One processor per consumer group.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import pyarrow as pa

from marketlake.streaming.config import StreamConfig
from marketlake.streaming.outputs import DUPLICATE, NEW, UNCHECKED, StreamOutput
from marketlake.streaming.runtime.offsets import Positions
from marketlake.streaming.runtime.producer import ALERTS_TOPIC, SENT_AT, TICKS_TOPIC
from marketlake.streaming.runtime.sink import SinkBatch, SinkWriter, StreamSink
from marketlake.streaming.runtime.stats import ProcessStats

if TYPE_CHECKING:
    from marketlake.bus.base import Bus, Consumer, Message, Producer
    from marketlake.lake.tables import LakeTables
    from marketlake.streaming.processor import StreamProcessor
    from marketlake.warehouse.base import Warehouse

DEFAULT_GROUP = "stream-processor"


@dataclass
class PipelineOptions:
    """How the pipeline reads, batches and commits."""

    group: str = DEFAULT_GROUP
    topic: str = TICKS_TOPIC
    partitions: int = 4
    alerts_topic: str | None = ALERTS_TOPIC
    ticks_mode: Literal["append", "merge"] = "append"
    max_messages: int = 512
    poll_timeout_s: float = 0.1
    commit_interval_s: float = 1.0
    commit_ticks: int = 500_000
    barrier_s: float = 30.0
    config: StreamConfig = field(default_factory=StreamConfig)


class StreamPipeline:
    """Consumes ticks of one group from ``bus`` and writes the processor's outputs."""

    def __init__(
        self,
        bus: Bus,
        tables: LakeTables,
        options: PipelineOptions | None = None,
        warehouse: Warehouse | None = None,
        on_output: Callable[[StreamOutput], None] | None = None,
    ) -> None:
        self.bus = bus
        self.options = options or PipelineOptions()
        self.sink = StreamSink(tables, self.options.group, warehouse, self.options.ticks_mode)
        self.on_output = on_output
        self.stats = ProcessStats()

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
        """Process until ``count`` ticks, ``duration_s`` seconds, ``stop()``, or (with
        ``until_caught_up``) until no message is left once ``upstream_done()`` (default: at
        once) is true; then close the sessions whose close has passed. Returns the counts."""
        from marketlake.streaming.processor import StreamProcessor

        opts = self.options
        checkpoint = self.sink.checkpoints.load()
        if checkpoint.state is not None:
            processor = StreamProcessor.restore(opts.config, checkpoint.state)
        else:
            processor = StreamProcessor(opts.config)
        in_lake = self.sink.written_positions()
        self.bus.create_topic(opts.topic, opts.partitions)
        run = _Run(self, processor, dict(checkpoint.positions), checkpoint.positions, in_lake)
        deadline = None if duration_s is None else time.monotonic() + duration_s
        next_report = time.monotonic() + progress_every_s
        with self.bus.consumer(opts.group, [opts.topic]) as consumer:
            run.consumer = consumer
            try:
                while True:
                    if (count is not None and self.stats.ticks >= count) or (
                        stop is not None and stop()
                    ):
                        break
                    if deadline is not None and time.monotonic() >= deadline:
                        break
                    messages = consumer.poll(self._poll_size(count), opts.poll_timeout_s)
                    if messages:
                        run.process(messages)
                    elif (
                        run.commit()
                        and until_caught_up
                        and (upstream_done is None or upstream_done())
                        and consumer.lag() == 0
                    ):
                        run.add(processor.flush_session_close())
                        break
                    run.seal_if_due()
                    if on_progress is not None and time.monotonic() >= next_report:
                        self.stats.lag = max(consumer.lag() - run.uncommitted, 0)
                        on_progress(self.stats)
                        next_report = time.monotonic() + progress_every_s
                run.commit(force=True)
                self.stats.lag = consumer.lag()
            finally:
                run.close()
        if on_progress is not None:
            on_progress(self.stats)
        return self.stats

    def _poll_size(self, count: int | None) -> int:
        """Messages to ask for: fewer near the end of a ``count``-bounded run, judging by the
        ticks per message seen so far."""
        if count is None:
            return self.options.max_messages
        if self.stats.messages == 0:
            return 1
        per_message = max(self.stats.ticks / self.stats.messages, 1.0)
        remaining = count - self.stats.ticks
        return max(1, min(self.options.max_messages, math.ceil(remaining / per_message)))


class _Run:
    """The mutable state of one :meth:`StreamPipeline.run`."""

    def __init__(
        self,
        pipeline: StreamPipeline,
        processor: StreamProcessor,
        positions: Positions,
        covered: Positions,
        in_lake: Positions,
    ) -> None:
        self.pipeline = pipeline
        self.opts = pipeline.options
        self.stats = pipeline.stats
        self.processor = processor
        self.positions = positions
        self.covered = covered
        self.in_lake = in_lake
        self.consumer: Consumer | None = None
        self.writer = SinkWriter(pipeline.sink)
        self.writer.start()
        self.batch = self._new_batch()
        self.uncommitted = 0  # messages polled since the last bus commit
        self.sealed_at = time.monotonic()
        self.committed_at = time.monotonic()
        self.alerts: Producer | None = None
        if self.opts.alerts_topic:
            self.pipeline.bus.create_topic(self.opts.alerts_topic, self.opts.partitions)
            self.alerts = self.pipeline.bus.producer()

    def _new_batch(self) -> SinkBatch:
        return SinkBatch(positions={}, state=b"", counts={})

    def process(self, messages: list[Message]) -> None:
        """Decode a poll, feed it to the processor in one call and keep its outputs."""
        from marketlake.streaming.codec import decode_ticks

        fresh: list[pa.RecordBatch] = []
        stored: list[pa.RecordBatch] = []
        for m in messages:
            key = (m.topic, m.partition)
            self.positions[key] = max(self.positions.get(key, 0), m.offset + 1)
            if m.offset < self.covered.get(key, 0):
                self.stats.skipped += 1
                continue
            target = stored if m.offset < self.in_lake.get(key, 0) else fresh
            target.append(decode_ticks(m.value))
        self.uncommitted += len(messages)
        self.stats.messages += len(messages)
        if not fresh and not stored:
            return
        parts = [
            (pa.Table.from_batches(group), flag)
            for group, flag in ((stored, True), (fresh, False))
            if group
        ]
        ticks = pa.concat_tables([t for t, _ in parts]) if len(parts) > 1 else parts[0][0]
        out, fates = self.processor.process_ticks(ticks)
        done_us = time.time_ns() // 1000
        for m in messages:
            sent = m.headers.get(SENT_AT)
            if sent is not None:
                self.stats.latencies_us.append(done_us - int(sent))
        start = 0
        for table, stored_flag in parts:
            mine = fates[start : start + table.num_rows]
            start += table.num_rows
            self.batch.add_ticks(_having(table, mine, NEW), stored_flag)
            if (mine == UNCHECKED).any():
                self.batch.unchecked.append(_having(table, mine, UNCHECKED))
        self.stats.duplicates += int((fates == DUPLICATE).sum())
        self.stats.ticks += ticks.num_rows
        self.add(out)

    def add(self, out: StreamOutput) -> None:
        """Keep ``out`` for the next sealed batch, publish alerts and call ``on_output``."""
        self.batch.outputs.append(out)
        self.stats.late += out.late.num_rows
        self.stats.quarantined += out.quarantine.num_rows
        self.stats.windows += out.windows.num_rows
        self.stats.bars += out.bars_1m.num_rows
        self.stats.alerts += out.alerts.num_rows
        if self.alerts is not None and out.alerts.num_rows:
            _publish_alerts(self.alerts, self.opts.alerts_topic or ALERTS_TOPIC, out.alerts)
        if self.pipeline.on_output is not None:
            self.pipeline.on_output(out)

    def seal_if_due(self) -> None:
        """Seal the pending batch when it is big or old enough; commit at a barrier."""
        now = time.monotonic()
        pending = self.batch.tick_count or self.batch.outputs
        if pending and (
            now - self.sealed_at >= self.opts.commit_interval_s
            or self.batch.tick_count >= self.opts.commit_ticks
        ):
            self.seal()
        if now - self.committed_at >= self.opts.barrier_s:
            self.commit(force=True)

    def seal(self) -> None:
        """Hand the pending batch, a snapshot and the positions to the writer."""
        if self.alerts is not None:
            self.alerts.flush()
        batch = self.batch
        batch.positions = dict(self.positions)
        batch.state = self.processor.snapshot()
        batch.counts = dict(self.processor.counts)
        self.stats.written_ticks += batch.tick_count
        self.writer.submit(batch)
        self.batch = self._new_batch()
        self.sealed_at = time.monotonic()

    def commit(self, force: bool = False) -> bool:
        """Seal what is pending, wait until it is durable and commit the bus offsets.

        Without ``force`` this only happens when nothing is pending in the writer queue
        already (the bus is idle). Returns True when the offsets were committed.
        """
        assert self.consumer is not None
        if self.batch.tick_count or self.batch.outputs or self.uncommitted:
            self.seal()
        elif not force and self.uncommitted == 0:
            self.writer.check()
            return True
        self.writer.drain()
        self.consumer.commit()
        self.uncommitted = 0
        self.committed_at = time.monotonic()
        self.stats.commits += 1
        return True

    def close(self) -> None:
        self.writer.stop()
        if self.alerts is not None:
            self.alerts.close()


def _having(table: pa.Table, fates: np.ndarray, fate: int) -> pa.Table:
    """The rows of ``table`` whose fate is ``fate`` (the whole table when all are)."""
    chosen = fates == fate
    return table if chosen.all() else table.filter(pa.array(chosen))


def _publish_alerts(producer: Producer, topic: str, alerts: pa.Table) -> None:
    """One JSON message per alert, keyed by symbol (delivered at least once)."""
    import json

    for row in alerts.to_pylist():
        row["ts"] = row["ts"].isoformat()
        producer.send(topic, row["symbol"], json.dumps(row, sort_keys=True).encode())
