"""Offset ranges on Kafka: partitions read by assignment (no group), group offsets committed
for a named group without joining it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from marketlake.bus.base import Message, OffsetRanges
from marketlake.bus.kafka.consumer import as_message
from marketlake.bus.kafka.driver import KafkaCluster
from marketlake.bus.kafka.watermarks import confirmed_watermarks, watermark_probe
from marketlake.errors import TransientError

_READ_CHUNK = 1000
_READ_TIMEOUT_S = 30.0  # with no record arriving, a range that should exist is given up on


class KafkaOffsetRanges(OffsetRanges):
    """Offset ranges of the topics on ``cluster``."""

    def __init__(self, cluster: KafkaCluster) -> None:
        self._cluster = cluster
        self._driver = cluster.driver
        self._probe: Any = None
        self._reader: Any = None

    def offsets(self, topic: str) -> list[tuple[int, int]]:
        """``(earliest, end)`` per partition of ``topic``."""
        if self._probe is None:
            self._probe = watermark_probe(self._cluster)
        try:
            listed = self._probe.list_topics(topic, timeout=10).topics[topic]
            if listed.error is not None:
                raise self._cluster.error(listed.error, f"listing topic {topic}")
            pairs = [(topic, p) for p in sorted(listed.partitions)]
            ends = confirmed_watermarks(self._cluster, self._probe, pairs)
        except self._driver.KafkaException as exc:
            raise self._cluster.error(exc.args[0], "reading offsets") from exc
        return [ends[pair] for pair in pairs]

    def read(self, topic: str, partition: int, start: int, end: int) -> Iterator[Message]:
        """The messages of ``partition`` in ``[start, end)``, read by assignment."""
        if start >= end:
            return
        if self._reader is None:
            self._reader = self._driver.Consumer(
                {
                    **self._cluster.config,
                    "group.id": "marketlake-ranges",
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                }
            )
        reader = self._reader
        tp = self._driver.TopicPartition
        try:
            low, _ = reader.get_watermark_offsets(tp(topic, partition), timeout=10)
            start = max(start, low)  # retention may have deleted the range's first records
            if start >= end:
                return
            reader.assign([tp(topic, partition, start)])
            offset = start
            while offset < end:
                batch = reader.consume(num_messages=_READ_CHUNK, timeout=_READ_TIMEOUT_S)
                if not batch:
                    raise TransientError(
                        f"Kafka reading {topic}/{partition} from offset {offset} (up to {end}) "
                        f"on {self._cluster.bootstrap_servers}: no record arrived within "
                        f"{_READ_TIMEOUT_S:.0f} s"
                    )
                for item in batch:
                    if item.error() is not None:
                        if item.error().code() == self._driver.KafkaError._PARTITION_EOF:
                            continue
                        raise self._cluster.error(item.error(), "reading a range")
                    if item.offset() >= end:
                        return
                    offset = item.offset() + 1
                    yield as_message(item)
        except self._driver.KafkaException as exc:
            raise self._cluster.error(exc.args[0], "reading a range") from exc
        finally:
            reader.unassign()

    def commit(self, group: str, topic: str, offsets: Mapping[int, int]) -> None:
        """Commit ``offsets`` for ``group`` (only where they move forward)."""
        tp = self._driver.TopicPartition
        client = self._driver.Consumer(
            {**self._cluster.config, "group.id": group, "enable.auto.commit": False}
        )
        try:
            stored = client.committed([tp(topic, p) for p in offsets], timeout=10)
            done = {item.partition: item.offset for item in stored}
            moved = [
                tp(topic, p, offset)
                for p, offset in sorted(offsets.items())
                if offset > done.get(p, -1)
            ]
            if moved:
                client.commit(offsets=moved, asynchronous=False)
        except self._driver.KafkaException as exc:
            raise self._cluster.error(exc.args[0], f"committing offsets of group {group}") from exc
        finally:
            client.close()

    def close(self) -> None:
        """Close the clients."""
        for client in (self._probe, self._reader):
            if client is not None:
                client.close()
        self._probe = self._reader = None
