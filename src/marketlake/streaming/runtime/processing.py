"""One run of the stream pipeline: feeding polls to the processor, sealing sink batches,
committing the bus, setting aside what cannot be processed, and waiting for a lost bus.

Every message below :attr:`ProcessingRun.positions` is already in the processor's state
(restored from the checkpoint, or fed by this run), so a message the bus delivers again, after
a restart or after the member joined its group again, is skipped. Within what is fed, the
processor tells each tick's fate: new ticks go to the sink, ticks already processed (sent
twice) are dropped and counted, and ticks too old to check are handed over to be MERGEd on
their key. A poll that fails, de-duplication included, leaves the processor as it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pyarrow as pa

from marketlake.errors import TransientError
from marketlake.streaming.outputs import DUPLICATE, NEW, UNCHECKED, StreamOutput
from marketlake.streaming.runtime.dead_letters import dead_letter_rows, is_poison
from marketlake.streaming.runtime.offsets import Positions
from marketlake.streaming.runtime.producer import ALERTS_TOPIC, SENT_AT
from marketlake.streaming.runtime.sink import SinkBatch, SinkWriter
from marketlake.streaming.runtime.stats import ProcessStats

if TYPE_CHECKING:
    from marketlake.bus.base import Bus, Consumer, Message, Producer
    from marketlake.streaming.processor import StreamProcessor
    from marketlake.streaming.runtime.options import PipelineOptions
    from marketlake.streaming.runtime.sink import StreamSink

T = TypeVar("T")
_WAITING_POLL_S = 0.01
# Messages fed to the processor at once (about 190k ticks of the simulator's batches): a call
# costs more per tick the bigger it is, and the sink writer can start on a sealed batch only.
PROCESS_MESSAGES = 128


class ProcessingRun:
    """The mutable state of one run of the stream pipeline:
    the positions fed to the processor, the pending sink batch, commits, dead letters, and
    waiting for an unreachable bus."""

    def __init__(
        self,
        bus: Bus,
        sink: StreamSink,
        options: PipelineOptions,
        stats: ProcessStats,
        on_output: Callable[[StreamOutput], None] | None,
        processor: StreamProcessor,
        positions: Positions,
        in_lake: Positions,
        on_progress: Callable[[ProcessStats], None] | None,
    ) -> None:
        self.bus = bus
        self.opts = options
        self.stats = stats
        self.on_output = on_output
        self.processor = processor
        self.positions = positions  # per partition: every message below is in the processor
        self.in_lake = in_lake
        self.on_progress = on_progress
        self.consumer: Consumer | None = None
        self.writer = SinkWriter(sink)
        self.writer.start()
        self.batch = self._new_batch()
        self.uncommitted = 0  # messages polled since the last bus commit
        self.unsealed = False  # messages were polled since the last seal
        self.commit_waits = False  # an idle commit waits for the writer
        self.sealed_at = time.monotonic()
        self.committed_at = time.monotonic()
        self.alerts: Producer | None = None
        if self.opts.alerts_topic:
            self.bus.create_topic(self.opts.alerts_topic, self.opts.partitions, self.opts.retention)
            self.alerts = self.bus.producer()

    def _new_batch(self) -> SinkBatch:
        return SinkBatch(positions={}, state=b"", counts={})

    def process_poll(self, messages: list[Message]) -> None:
        """Feed a poll to the processor :data:`PROCESS_MESSAGES` messages at a time,
        sealing the pending batch between them when it is due."""
        for start in range(0, len(messages), PROCESS_MESSAGES):
            if start:
                self.seal_if_due()
            self.process(messages[start : start + PROCESS_MESSAGES])

    def process(self, messages: list[Message]) -> None:
        """Decode a poll, feed it to the processor in one call and keep its outputs.

        A message that cannot be decoded, or a poll the processor fails on for a reason a
        retry would not change, is dead-lettered and the stream moves on past it.
        """
        from marketlake.streaming.codec import decode_ticks

        fresh: list[pa.RecordBatch] = []
        stored: list[pa.RecordBatch] = []
        decoded: list[tuple[Message, int]] = []
        for m in messages:
            key = (m.topic, m.partition)
            if m.offset < self.positions.get(key, 0):  # restored, or read again after a rejoin
                self.stats.skipped += 1
                continue
            self.positions[key] = m.offset + 1
            try:
                batch = decode_ticks(m.value)
            except Exception as exc:  # a payload that is not a tick batch: reading it fails again
                self.dead_letter("decode", [(m, None)], exc)
                continue
            target = stored if m.offset < self.in_lake.get(key, 0) else fresh
            target.append(batch)
            decoded.append((m, batch.num_rows))
        self.uncommitted += len(messages)
        self.unsealed = True
        self.stats.messages += len(messages)
        if not fresh and not stored:
            return
        parts = [
            (pa.Table.from_batches(group), flag)
            for group, flag in ((stored, True), (fresh, False))
            if group
        ]
        ticks = pa.concat_tables([t for t, _ in parts]) if len(parts) > 1 else parts[0][0]
        try:
            out, fates = self.processor.process_ticks(ticks)
        except BaseException as exc:
            if not is_poison(exc):
                raise
            self.dead_letter("process", decoded, exc)
            return
        done_us = time.time_ns() // 1000
        for m in messages:
            sent = m.headers.get(SENT_AT)
            if sent is not None:
                self.stats.record_latency(done_us - int(sent))
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

    def dead_letter(
        self, stage: str, messages: Sequence[tuple[Message, int | None]], error: BaseException
    ) -> None:
        """Record ``messages`` (with their tick counts) as dead letters of ``stage``."""
        rows = dead_letter_rows(
            self.opts.group,
            [m for m, _ in messages],
            [n for _, n in messages],
            stage,
            error,
            datetime.now(UTC),
        )
        self.batch.dead_letters.append(rows)
        self.stats.dead_letters += rows.num_rows

    def add(self, out: StreamOutput) -> None:
        """Keep ``out`` for the next sealed batch (unless it has no rows), publish alerts and
        call ``on_output``."""
        if len(out):
            self.batch.outputs.append(out)
        self.stats.late += out.late.num_rows
        self.stats.quarantined += out.quarantine.num_rows
        self.stats.windows += out.windows.num_rows
        self.stats.bars += out.bars_1m.num_rows
        self.stats.alerts += out.alerts.num_rows
        if self.alerts is not None and out.alerts.num_rows:
            publish_alerts(self.alerts, self.opts.alerts_topic or ALERTS_TOPIC, out.alerts)
        if self.on_output is not None:
            self.on_output(out)

    def seal_if_due(self) -> None:
        """Seal the pending batch when it is big or old enough; commit at a barrier."""
        now = time.monotonic()
        pending = self.batch.tick_count or self.batch.outputs or self.batch.dead_letters
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
        self.unsealed = False
        self.sealed_at = time.monotonic()

    def commit(self, force: bool = False) -> bool:
        """Seal what is pending, wait until it is durable and commit the bus offsets.

        Without ``force`` (the bus is idle) this does not wait for the writer: while it still
        writes, nothing is committed, False is returned and polls wait briefly (see
        :meth:`poll`), so that ticks arriving meanwhile are processed at once; a later call
        commits. Returns True when the offsets were committed (or nothing was polled).
        """
        assert self.consumer is not None
        batch = self.batch
        if batch.tick_count or batch.outputs or batch.dead_letters or self.unsealed:
            self.seal()
        elif not force and self.uncommitted == 0:
            self.writer.check()
            return True
        if not force and not self.writer.idle():
            self.writer.check()
            self.commit_waits = True
            return False
        self.writer.drain()
        self.bus_call("committing", self.consumer.commit)
        self.uncommitted = 0
        self.commit_waits = False
        self.committed_at = time.monotonic()
        self.stats.commits += 1
        return True

    def unread(self) -> int:
        """Messages of the topic this run has not polled yet, whoever holds them."""
        assert self.consumer is not None
        return max(self.bus_call("reading lag", self.consumer.lag) - self.uncommitted, 0)

    def poll(self, size: int, brief: bool = False) -> list[Message]:
        """Up to ``size`` messages, waiting while the bus is unreachable.

        A ``brief`` poll, and any poll while an idle commit waits for the writer (so that the
        commit follows soon after the writer is done), waits at most ``_WAITING_POLL_S`` for
        messages.
        """
        consumer = self.consumer
        assert consumer is not None
        timeout = self.opts.poll_timeout_s
        if brief or self.commit_waits:
            timeout = min(timeout, _WAITING_POLL_S)
        return self.bus_call("polling", lambda: consumer.poll(size, timeout))

    def bus_call(self, action: str, operation: Callable[[], T]) -> T:
        """``operation`` on the bus, run again while the bus is unreachable (TransientError),
        for at most ``bus_wait_s`` seconds; the progress line says it waits."""
        from marketlake.retry import Retry, RetryPolicy, call_with_retry

        backoff = self.opts.bus_backoff_s
        policy = RetryPolicy(
            max_attempts=None,
            deadline_s=self.opts.bus_wait_s,
            backoff_s=backoff,
            max_backoff_s=backoff,
            multiplier=1.0,
        )

        def waiting(retry: Retry) -> None:
            if not self.stats.waiting and self.on_progress is not None:
                self.stats.waiting = True
                self.on_progress(self.stats)
            self.stats.waiting = True

        def unreachable(error: BaseException, attempts: int) -> BaseException:
            return TransientError(
                f"{action} failed for {self.opts.bus_wait_s:.0f} s while the bus was "
                f"unreachable; restart to resume from the last commit: {error}"
            )

        try:
            return call_with_retry(policy, operation, on_retry=waiting, give_up=unreachable)
        finally:
            self.stats.waiting = False

    def close(self) -> None:
        self.writer.stop()
        if self.alerts is not None:
            self.alerts.close()


def _having(table: pa.Table, fates: np.ndarray, fate: int) -> pa.Table:
    """The rows of ``table`` whose fate is ``fate`` (the whole table when all are)."""
    chosen = fates == fate
    return table if chosen.all() else table.filter(pa.array(chosen))


def publish_alerts(producer: Producer, topic: str, alerts: pa.Table) -> None:
    """Send ``alerts`` to ``topic``: one JSON message per alert, keyed by symbol (delivered
    at least once)."""
    import json

    for row in alerts.to_pylist():
        row["ts"] = row["ts"].isoformat()
        producer.send(topic, row["symbol"], json.dumps(row, sort_keys=True).encode())
