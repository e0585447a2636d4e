"""The tick producer waits for an unreachable broker through the retry helper, within a limit."""

from __future__ import annotations

from typing import Any

import pytest

from marketlake.errors import TerminalError, TransientError
from marketlake.streaming.runtime.producer import ProduceStats, TickProducer


class AwayBus:
    """A bus whose broker refuses ``failures`` topic creations, then accepts everything."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or TransientError("broker unreachable")
        self.calls = 0

    def create_topic(self, topic: str, partitions: int, retention: object = None) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error

    def producer(self) -> Any:
        return None


def test_open_waits_for_the_broker_and_counts_the_retries() -> None:
    seen: list[tuple[int, bool]] = []

    def on_wait(stats: ProduceStats) -> None:
        seen.append((stats.retries, stats.waiting))

    bus = AwayBus(failures=2)
    producer = TickProducer(bus, backoff_s=0.001, on_wait=on_wait)  # type: ignore[arg-type]
    producer.open()
    assert bus.calls == 3
    assert seen == [(1, True), (2, True)]
    assert producer.stats.retries == 2 and not producer.stats.waiting


def test_the_wait_is_bounded_by_retry_for_s() -> None:
    bus = AwayBus(failures=10**9)
    producer = TickProducer(bus, retry_for_s=0.05, backoff_s=0.01)  # type: ignore[arg-type]
    with pytest.raises(TransientError, match="creating topic 'ticks' failed for 0 s") as info:
        producer.open()
    assert "broker unreachable" in str(info.value)
    assert bus.calls > 1


def test_terminal_errors_are_not_waited_for() -> None:
    bus = AwayBus(failures=1, error=TerminalError("no such cluster"))
    producer = TickProducer(bus, backoff_s=0.001)  # type: ignore[arg-type]
    with pytest.raises(TerminalError, match="no such cluster"):
        producer.open()
    assert bus.calls == 1
