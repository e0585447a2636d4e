"""Kafka consumers: group members that commit only what was polled, only when told to."""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

from marketlake.bus.base import Consumer, Message
from marketlake.bus.kafka.driver import KafkaCluster

_CONSUMER_DEFAULTS = {
    "auto.offset.reset": "earliest",
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 1000,
}
# The end-offset probe wants "no more records" at once, not after a long-polling fetch.
_PROBE_FETCH_WAIT_MS = 10


class KafkaConsumer(Consumer):
    """A group member that commits only what was polled, only when told to."""

    def __init__(self, cluster: KafkaCluster, group: str, topics: Sequence[str]) -> None:
        self._cluster = cluster
        self._driver = cluster.driver
        settings = {
            **_CONSUMER_DEFAULTS,
            **cluster.config,
            "group.id": group,
            "enable.auto.commit": False,
        }
        self._topics = list(dict.fromkeys(topics))
        self._positions: dict[tuple[str, int], int] = {}
        self._probe: Any = None
        try:
            self._consumer = self._driver.Consumer(settings)
            self._consumer.subscribe(self._topics, on_revoke=self._revoked, on_lost=self._revoked)
        except self._driver.KafkaException as exc:
            raise cluster.error(exc.args[0], "subscribing") from exc

    def poll(self, max_messages: int = 1000, timeout_s: float = 1.0) -> list[Message]:
        """Up to ``max_messages`` messages; an empty list when none arrive within the timeout."""
        try:
            raw = self._consumer.consume(num_messages=max_messages, timeout=timeout_s)
        except self._driver.KafkaException as exc:
            raise self._cluster.error(exc.args[0], "polling") from exc
        out: list[Message] = []
        for item in raw:
            error = item.error()
            if error is not None:
                if error.code() == self._driver.KafkaError._PARTITION_EOF:
                    continue
                raise self._cluster.error(error, "polling")
            topic, partition, offset = item.topic(), item.partition(), item.offset()
            headers = item.headers()
            out.append(
                Message(
                    topic,
                    partition,
                    offset,
                    (item.key() or b"").decode(),
                    item.value() or b"",
                    MappingProxyType({k: (v or b"").decode() for k, v in headers})
                    if headers
                    else MappingProxyType({}),
                    item.timestamp()[1],
                )
            )
            self._positions[(topic, partition)] = offset + 1
        return out

    def commit(self) -> None:
        """Commit, synchronously, the positions after the last polled messages."""
        if not self._positions:
            return
        tp = self._driver.TopicPartition
        offsets = [tp(topic, p, offset) for (topic, p), offset in self._positions.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except self._driver.KafkaException as exc:
            raise self._cluster.error(exc.args[0], "committing") from exc
        self._positions.clear()

    def lag(self) -> int:
        """End offsets minus the group's committed offsets over every partition of the
        subscribed topics, the ones other members (live or dead) hold included."""
        tp = self._driver.TopicPartition
        try:
            partitions = [
                tp(topic, p)
                for topic in self._topics
                for p in self._consumer.list_topics(topic, timeout=10).topics[topic].partitions
            ]
            committed = self._consumer.committed(partitions, timeout=10)
            ends = self._end_offsets([(item.topic, item.partition) for item in committed])
        except self._driver.KafkaException as exc:
            raise self._cluster.error(exc.args[0], "reading lag") from exc
        total = 0
        for item in committed:
            low, end = ends[(item.topic, item.partition)]
            total += max(end - max(item.offset, low), 0)
        return total

    def _end_offsets(self, pairs: list[tuple[str, int]]) -> dict[tuple[str, int], tuple[int, int]]:
        """``(low, end)`` per partition: the watermarks, with the end confirmed by reading.

        Some Kafka-protocol brokers (Tansu) report the last batch's base offset + 1 as the high
        watermark, so the records from the high watermark - 1 on are read to find the end.
        The watermarks are asked through a separate client: on the group member's connection
        the request would queue behind its pending fetch (up to ``fetch.wait.max.ms``).
        """
        tp = self._driver.TopicPartition
        if self._probe is None:
            self._probe = self._driver.Consumer(
                {
                    **self._cluster.config,
                    "group.id": "marketlake-end-offsets",
                    "enable.auto.commit": False,
                    "enable.partition.eof": True,
                    "fetch.wait.max.ms": _PROBE_FETCH_WAIT_MS,
                }
            )
        ends: dict[tuple[str, int], tuple[int, int]] = {}
        for topic, partition in pairs:
            ends[(topic, partition)] = self._probe.get_watermark_offsets(
                tp(topic, partition), timeout=10, cached=False
            )
        pending = {pair for pair, (low, high) in ends.items() if high > low}
        if not pending:
            return ends
        self._probe.assign([tp(t, p, ends[(t, p)][1] - 1) for t, p in sorted(pending)])
        reached: set[tuple[str, int]] = set()
        deadline = time.monotonic() + 10
        while pending and time.monotonic() < deadline:
            batch = self._probe.consume(num_messages=1000, timeout=0.1)
            if not batch and pending <= reached:
                break
            for item in batch:
                pair = (item.topic(), item.partition())
                error = item.error()
                if error is None:
                    low, end = ends[pair]
                    ends[pair] = (low, max(end, item.offset() + 1))
                    reached.add(pair)
                elif error.code() == self._driver.KafkaError._PARTITION_EOF:
                    pending.discard(pair)
                else:
                    raise self._cluster.error(error, "reading end offsets")
        self._probe.unassign()
        return ends

    def close(self) -> None:
        """Leave the group without committing."""
        self._consumer.close()
        if self._probe is not None:
            self._probe.close()
            self._probe = None

    def _revoked(self, _consumer: Any, partitions: list[Any]) -> None:
        for item in partitions:
            self._positions.pop((item.topic, item.partition), None)
