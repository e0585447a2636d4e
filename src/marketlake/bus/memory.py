"""An in-memory bus with the local log's semantics: a test double for pipelines and their tests.

Messages become visible when the producer flushes. Consumers of one group split each topic's
partitions between them (in joining order); committed offsets live as long as the bus.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from marketlake.bus.base import (
    Bus,
    Consumer,
    Message,
    Producer,
    Retention,
    partition_for,
    validate_name,
)
from marketlake.errors import ConfigError


class MemoryBus(Bus):
    """Topics, partitions and consumer groups held in this process's memory; thread-safe."""

    def __init__(self, partitions: int = 4) -> None:
        if partitions < 1:
            raise ConfigError(f"partitions must be >= 1, got {partitions}")
        self.partitions = partitions
        self._changed = threading.Condition()
        self._logs: dict[str, list[list[Message]]] = {}
        self._committed: dict[tuple[str, str, int], int] = {}
        self._members: dict[str, list[MemoryConsumer]] = {}
        self._generation = 0

    def create_topic(
        self, topic: str, partitions: int | None = None, retention: Retention | None = None
    ) -> None:
        """Create ``topic`` with ``partitions`` (default: the bus's); an existing one is kept.

        ``retention`` is not applied: the bus lives as long as its process.
        """
        count = self.partitions if partitions is None else partitions
        if count < 1:
            raise ConfigError(f"topic {topic!r} needs at least 1 partition, got {count}")
        validate_name(topic)
        with self._changed:
            self._logs.setdefault(topic, [[] for _ in range(count)])

    def topics(self) -> list[str]:
        """The names of the topics, sorted."""
        with self._changed:
            return sorted(self._logs)

    def partition_count(self, topic: str) -> int:
        """The number of partitions of ``topic``, creating the topic if it does not exist."""
        self.create_topic(topic)
        return len(self._logs[topic])

    def producer(self) -> MemoryProducer:
        """A new producer."""
        return MemoryProducer(self)

    def consumer(self, group: str, topics: Sequence[str]) -> MemoryConsumer:
        """A new consumer of ``topics`` in ``group``."""
        validate_name(group, "group")
        for topic in topics:
            self.create_topic(topic)
        consumer = MemoryConsumer(self, group, topics)
        with self._changed:
            self._members.setdefault(group, []).append(consumer)
            self._generation += 1
        return consumer

    def _append(self, batch: list[tuple[str, str, bytes, Mapping[str, str], int]]) -> None:
        with self._changed:
            for topic, key, value, headers, timestamp_ms in batch:
                log = self._logs[topic]
                partition = partition_for(key, len(log))
                entries = log[partition]
                entries.append(
                    Message(topic, partition, len(entries), key, value, headers, timestamp_ms)
                )
            self._changed.notify_all()

    def _leave(self, consumer: MemoryConsumer) -> None:
        with self._changed:
            self._members[consumer.group].remove(consumer)
            self._generation += 1

    def _assignment(self, consumer: MemoryConsumer) -> list[tuple[str, int]]:
        """The partitions of ``consumer``: each topic's split round-robin over its members."""
        pairs = []
        for topic in consumer.topics:
            members = [m for m in self._members[consumer.group] if topic in m.topics]
            rank = members.index(consumer)
            pairs += [(topic, p) for p in range(len(self._logs[topic])) if p % len(members) == rank]
        return pairs


class MemoryProducer(Producer):
    """Queues messages; :meth:`flush` makes them visible."""

    def __init__(self, bus: MemoryBus) -> None:
        self._bus = bus
        self._queue: list[tuple[str, str, bytes, Mapping[str, str], int]] = []

    def send(
        self, topic: str, key: str, value: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        """Queue one message."""
        self._bus.create_topic(topic)
        frozen = MappingProxyType(dict(headers or {}))
        self._queue.append((topic, key, bytes(value), frozen, time.time_ns() // 1_000_000))

    def flush(self, timeout_s: float | None = None) -> None:
        """Append the queued messages to their partitions."""
        batch, self._queue = self._queue, []
        self._bus._append(batch)


class MemoryConsumer(Consumer):
    """A member of a consumer group on a :class:`MemoryBus`."""

    def __init__(self, bus: MemoryBus, group: str, topics: Sequence[str]) -> None:
        self._bus = bus
        self.group = group
        self.topics = list(dict.fromkeys(topics))
        self._positions: dict[tuple[str, int], int] = {}
        self._generation = -1
        self._turn = 0

    def poll(self, max_messages: int = 1000, timeout_s: float = 1.0) -> list[Message]:
        """Up to ``max_messages`` messages from the assigned partitions."""
        deadline = time.monotonic() + timeout_s
        with self._bus._changed:
            while True:
                self._refresh_assignment()
                out: list[Message] = []
                pairs = list(self._positions)
                self._turn += 1
                for i in range(len(pairs)):
                    topic, partition = pair = pairs[(self._turn + i) % len(pairs)]
                    position = self._positions[pair]
                    entries = self._bus._logs[topic][partition]
                    taken = entries[position : position + max_messages - len(out)]
                    self._positions[pair] = position + len(taken)
                    out += taken
                if out:
                    return out
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self._bus._changed.wait(remaining)

    def commit(self) -> None:
        """Store the positions after the last polled messages."""
        with self._bus._changed:
            for (topic, partition), position in self._positions.items():
                self._bus._committed[(self.group, topic, partition)] = position

    def lag(self) -> int:
        """Messages in every partition of the topics past the group's committed offsets."""
        with self._bus._changed:
            return sum(
                len(entries) - self._bus._committed.get((self.group, topic, partition), 0)
                for topic in self.topics
                for partition, entries in enumerate(self._bus._logs.get(topic, []))
            )

    def close(self) -> None:
        """Leave the group without committing."""
        self._bus._leave(self)

    def _refresh_assignment(self) -> None:
        if self._generation == self._bus._generation:
            return
        self._generation = self._bus._generation
        pairs = self._bus._assignment(self)
        self._positions = {
            pair: self._positions.get(pair, self._bus._committed.get((self.group, *pair), 0))
            for pair in pairs
        }
