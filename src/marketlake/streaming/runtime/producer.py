"""The tick producer: source batches → per-symbol Arrow messages on the ``ticks`` topic.

Each batch of a :class:`~marketlake.sources.live.TickSource` is cut by symbol
(:func:`~marketlake.streaming.codec.split_by_symbol`), encoded, and sent keyed by the symbol,
so one symbol's ticks stay in order on one partition. Every message carries the wall-clock
time it was handed to the bus (header ``sent_at_us``), from which the processor measures
tick-to-window latency. With a :class:`~marketlake.streaming.runtime.marks.ProducedMarks`, the
last tick delivered per symbol is recorded, so a later run can continue after it.

Nothing is dropped while the broker is unreachable: messages wait in the producer's queue
(Kafka producers are opened with an unlimited delivery timeout) and :meth:`TickProducer.flush`
retries on :class:`~marketlake.errors.TransientError` until the broker accepts them, for at
most ``retry_for_s`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from marketlake.errors import TransientError
from marketlake.retry import Retry, RetryPolicy, call_with_retry
from marketlake.streaming.codec import CONTENT_TYPE, encode_ticks, split_by_symbol

if TYPE_CHECKING:
    import pyarrow as pa

    from marketlake.bus.base import Bus, Producer, Retention
    from marketlake.sources.live import TickSource
    from marketlake.streaming.runtime.marks import ProducedMarks

TICKS_TOPIC = "ticks"
ALERTS_TOPIC = "alerts"
SENT_AT = "sent_at_us"


@dataclass
class ProduceStats:
    """Counts of a producer run."""

    ticks: int = 0
    messages: int = 0
    flushes: int = 0
    retries: int = 0
    started: float = field(default_factory=time.monotonic)
    waiting: bool = False  # the broker is unreachable and ticks are queued

    @property
    def rate(self) -> float:
        """Ticks per second since the start."""
        return self.ticks / max(time.monotonic() - self.started, 1e-9)


def _unbounded_delivery(bus: Bus) -> Bus:
    """For Kafka, the same bus whose producers wait for the broker as long as it takes
    (``message.timeout.ms=0``) unless the URL set a timeout; other buses unchanged."""
    from marketlake.bus.kafka import KafkaBus

    if not isinstance(bus, KafkaBus) or "message.timeout.ms" in bus.config:
        return bus
    settings = {k: v for k, v in bus.config.items() if k != "bootstrap.servers"}
    settings["message.timeout.ms"] = 0
    return KafkaBus(bus.bootstrap_servers, settings, bus.partitions, bus.replication_factor)


class TickProducer:
    """Sends tick batches to ``topic`` (created with ``partitions`` partitions and
    ``retention``)."""

    def __init__(
        self,
        bus: Bus,
        topic: str = TICKS_TOPIC,
        partitions: int = 4,
        *,
        retry_for_s: float = 600.0,
        backoff_s: float = 0.5,
        flush_timeout_s: float = 5.0,
        on_wait: Callable[[ProduceStats], None] | None = None,
        retention: Retention | None = None,
        marks: ProducedMarks | None = None,
    ) -> None:
        self.bus = _unbounded_delivery(bus)
        self.retention = retention
        self.topic = topic
        self.partitions = partitions
        self.retry_for_s = retry_for_s
        self.backoff_s = backoff_s
        self.flush_timeout_s = flush_timeout_s
        self.stats = ProduceStats()
        self._on_wait = on_wait
        self.marks = marks
        self._producer: Producer | None = None

    def open(self) -> None:
        """Create the topic (waiting for an unreachable broker) and the bus producer."""
        if self._producer is not None:
            return
        self._retry(
            f"creating topic {self.topic!r}",
            lambda: self.bus.create_topic(self.topic, self.partitions, self.retention),
        )
        self._producer = self.bus.producer()

    def send(self, batch: pa.RecordBatch) -> None:
        """Queue one batch of ticks (one message per symbol); durable after :meth:`flush`."""
        if self._producer is None:
            self.open()
        assert self._producer is not None
        headers = {"content-type": CONTENT_TYPE, SENT_AT: str(time.time_ns() // 1000)}
        for symbol, part in split_by_symbol(batch):
            self._producer.send(self.topic, symbol, encode_ticks(part), headers)
            self.stats.messages += 1
            if self.marks is not None:
                self.marks.observe(symbol, part)
        self.stats.ticks += batch.num_rows

    def flush(self) -> None:
        """Wait until every queued message is stored, retrying while the broker is away."""
        if self._producer is None:
            return
        producer = self._producer
        self._retry("delivering ticks", lambda: producer.flush(self.flush_timeout_s))
        self.stats.flushes += 1
        if self.marks is not None:
            self.marks.save()

    def close(self) -> None:
        """Flush and release the producer."""
        if self._producer is not None:
            self.flush()
            self._producer.close()
            self._producer = None
            if self.marks is not None:
                self.marks.save(force=True)

    def _retry(self, action: str, operation: Callable[[], None]) -> None:
        """Run ``operation`` until the broker accepts it, for at most ``retry_for_s`` seconds."""
        policy = RetryPolicy(
            max_attempts=None,
            deadline_s=self.retry_for_s,
            backoff_s=self.backoff_s,
            max_backoff_s=self.backoff_s,
            multiplier=1.0,
            transient=(TransientError, TimeoutError),
        )

        def waiting(retry: Retry) -> None:
            self.stats.retries += 1
            self.stats.waiting = True
            if self._on_wait is not None:
                self._on_wait(self.stats)

        def undelivered(error: BaseException, attempts: int) -> BaseException:
            return TransientError(
                f"{action} failed for {self.retry_for_s:.0f} s; the queued ticks were not "
                f"delivered: {error}"
            )

        call_with_retry(policy, operation, on_retry=waiting, give_up=undelivered)
        self.stats.waiting = False

    def __enter__(self) -> TickProducer:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def produce_ticks(
    producer: TickProducer,
    source: TickSource,
    *,
    stop: Callable[[], bool] | None = None,
    on_progress: Callable[[ProduceStats], None] | None = None,
    progress_every_s: float = 0.5,
) -> ProduceStats:
    """Send every batch of ``source`` through ``producer``, flushing after each batch.

    Stops early when ``stop()`` turns true; ``on_progress`` is called at most every
    ``progress_every_s`` seconds and once at the end.
    """
    next_report = time.monotonic() + progress_every_s
    producer.open()
    with source:
        for batch in source.ticks():
            producer.send(batch)
            producer.flush()
            if on_progress is not None and time.monotonic() >= next_report:
                on_progress(producer.stats)
                next_report = time.monotonic() + progress_every_s
            if stop is not None and stop():
                break
    producer.flush()
    if on_progress is not None:
        on_progress(producer.stats)
    return producer.stats
