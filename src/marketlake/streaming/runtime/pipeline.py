"""The stream pipeline: bus → stream processor → lake and warehouse, exactly-once.

The processing thread polls whole batches of messages, decodes them and feeds them to the
:class:`~marketlake.streaming.processor.StreamProcessor` a few hundred thousand ticks per call
(:data:`~marketlake.streaming.runtime.processing.PROCESS_MESSAGES` messages). Every
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
say which ticks were new), so only new ticks are appended.

One processor per consumer group: it holds the group's
:class:`~marketlake.streaming.runtime.exclusive.ProcessorLock` on the lake while it runs and
reads the bus as the group's sole consumer (on Kafka, assigned every partition rather than a
member of the group, so neither the broker's join delay nor a dead predecessor's session
holds it up). On a lake without the lock (object storage) it joins the group as a member, so
the broker keeps a second processor from reading the same partitions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from marketlake.streaming.runtime.exclusive import ProcessorLock
from marketlake.streaming.runtime.options import DEFAULT_GROUP, PipelineOptions
from marketlake.streaming.runtime.processing import ProcessingRun
from marketlake.streaming.runtime.sink import StreamSink
from marketlake.streaming.runtime.stats import ProcessStats

if TYPE_CHECKING:
    from marketlake.bus.base import Bus
    from marketlake.lake.tables import LakeTables
    from marketlake.streaming.outputs import StreamOutput
    from marketlake.warehouse.base import Warehouse


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
        ``until_caught_up``) until the group's committed offsets reach the end of every
        partition of the topic once ``upstream_done()`` (default: at once) is true; partitions
        a dead member of the group still holds (when the processor is a member: see the module
        doc) are waited for until the bus hands them over. Then close the sessions whose close
        has passed. Returns the counts."""
        with ProcessorLock(self.sink.tables.storage, self.options.group) as lock:
            return self._run(
                lock.held, count, duration_s, until_caught_up, upstream_done, stop, on_progress,
                progress_every_s,
            )  # fmt: skip

    def _run(
        self,
        alone: bool,
        count: int | None,
        duration_s: float | None,
        until_caught_up: bool,
        upstream_done: Callable[[], bool] | None,
        stop: Callable[[], bool] | None,
        on_progress: Callable[[ProcessStats], None] | None,
        progress_every_s: float,
    ) -> ProcessStats:
        from marketlake.streaming.processor import StreamProcessor

        opts = self.options
        checkpoint = self.sink.checkpoints.load()
        if checkpoint.state is not None:
            processor = StreamProcessor.restore(opts.config, checkpoint.state)
        else:
            processor = StreamProcessor(opts.config)
        in_lake = self.sink.written_positions()
        self.bus.create_topic(opts.topic, opts.partitions, opts.retention)
        run = ProcessingRun(
            self.bus,
            self.sink,
            opts,
            self.stats,
            self.on_output,
            processor,
            dict(checkpoint.positions),
            in_lake,
            on_progress,
        )
        deadline = None if duration_s is None else time.monotonic() + duration_s
        next_report = time.monotonic() + progress_every_s
        caught_up = False
        at_end = False
        closed = False  # the closed sessions were closed since the last poll with messages
        # with the group's lock held, no other processor reads: skip the group's membership;
        # without one (a lake on object storage), the group keeps processors apart as ever
        reader = self.bus.sole_consumer if alone else self.bus.consumer
        with reader(opts.group, [opts.topic]) as consumer:
            run.consumer = consumer
            try:
                while True:
                    if (count is not None and self.stats.ticks >= count) or (
                        stop is not None and stop()
                    ):
                        break
                    if deadline is not None and time.monotonic() >= deadline:
                        break
                    size = self._poll_size(count)
                    messages = run.poll(size, brief=at_end)
                    # A poll that did not fill up reached the end of the log; when nothing
                    # more is coming, the next poll need not wait long to find it empty.
                    at_end = (
                        until_caught_up
                        and len(messages) < size
                        and (upstream_done is None or upstream_done())
                    )
                    if messages:
                        run.process_poll(messages)
                        closed = False
                    else:
                        ending = until_caught_up and (upstream_done is None or upstream_done())
                        if ending and not closed and run.unread() == 0:
                            # Every message is read and no more are coming: the sessions that
                            # have closed close now, so their rows go with the batch the commit
                            # below seals rather than with a write of their own after it.
                            run.add(processor.flush_session_close())
                            closed = True
                        if (
                            run.commit()
                            and ending
                            and run.bus_call("reading lag", consumer.lag) == 0
                        ):
                            run.add(processor.flush_session_close())
                            caught_up = True
                            break
                    run.seal_if_due()
                    reports = on_progress is not None or opts.status_path is not None
                    if reports and time.monotonic() >= next_report:
                        self.stats.lag = run.unread()
                        self._report(on_progress)
                        next_report = time.monotonic() + progress_every_s
                run.commit(force=True)
                # Caught up: the lag was just read as 0 and nothing was polled since.
                lag = 0 if caught_up else run.bus_call("reading lag", consumer.lag)
                self.stats.lag = lag
            finally:
                run.close()
        self._report(on_progress)
        return self.stats

    def _report(self, on_progress: Callable[[ProcessStats], None] | None) -> None:
        """Hand the figures to ``on_progress`` and keep them in the status file."""
        if self.options.status_path is not None:
            from marketlake.streaming.runtime.status import write_status

            write_status(self.options.status_path, self.options.group, self.stats)
        if on_progress is not None:
            on_progress(self.stats)

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


__all__ = ["DEFAULT_GROUP", "PipelineOptions", "StreamPipeline"]
