"""``marketlake stream`` in one process: a producer thread feeding the bus, and the pipeline.

The producer sends the source's ticks to the bus in its own thread while the pipeline consumes
them in the calling thread. The run ends once the source is exhausted (``count``), the
``duration_s`` has passed or ``stop()`` turned true, and the pipeline has caught up with
everything the producer sent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from marketlake.streaming.runtime.producer import ProduceStats, TickProducer, produce_ticks

if TYPE_CHECKING:
    from marketlake.bus.base import Bus
    from marketlake.sources.live import TickSource
    from marketlake.streaming.runtime.options import PipelineOptions
    from marketlake.streaming.runtime.stats import ProcessStats


class Pipeline(Protocol):
    """What :func:`stream_in_process` needs of a processing pipeline (the embedded one or the
    Spark query)."""

    bus: Bus
    options: PipelineOptions

    def run(
        self,
        *,
        until_caught_up: bool = ...,
        upstream_done: Callable[[], bool] | None = ...,
        stop: Callable[[], bool] | None = ...,
        on_progress: Callable[[ProcessStats], None] | None = ...,
        progress_every_s: float = ...,
    ) -> ProcessStats:
        """Process until caught up once ``upstream_done()``, or until ``stop()``."""
        ...


@dataclass
class StreamRun:
    """The counts of a one-process run."""

    produced: ProduceStats
    processed: ProcessStats


def stream_in_process(
    source: TickSource,
    producer: TickProducer,
    pipeline: Pipeline,
    *,
    duration_s: float | None = None,
    stop: Callable[[], bool] | None = None,
    on_progress: Callable[[ProduceStats, ProcessStats], None] | None = None,
    progress_every_s: float = 1.0,
) -> StreamRun:
    """Produce ``source`` to the bus in a thread and process it here until caught up."""
    deadline = None if duration_s is None else time.monotonic() + duration_s
    errors: list[BaseException] = []

    def stop_producing() -> bool:
        if stop is not None and stop():
            return True
        return deadline is not None and time.monotonic() >= deadline

    def produce() -> None:
        try:
            produce_ticks(producer, source, stop=stop_producing)
        except BaseException as exc:  # raised again in the calling thread
            errors.append(exc)

    # The processor's bus first: a broker that is not there at the start is one clear error,
    # before the producer starts waiting for it.
    options = pipeline.options
    pipeline.bus.create_topic(options.topic, options.partitions, options.retention)
    producer.open()
    thread = threading.Thread(target=produce, name="stream-producer", daemon=True)
    thread.start()

    def report(stats: ProcessStats) -> None:
        if on_progress is not None:
            on_progress(producer.stats, stats)

    try:
        processed = pipeline.run(
            until_caught_up=True,
            upstream_done=lambda: not thread.is_alive(),
            stop=lambda: bool(errors) or (stop is not None and stop()),
            on_progress=report,
            progress_every_s=progress_every_s,
        )
    finally:
        thread.join()
        producer.close()
    if errors:
        raise errors[0]
    return StreamRun(producer.stats, processed)
