"""The durable local log: topics are folders, partitions hold CRC-checked segment files.

Several processes may produce and consume at once. Producers append under a per-partition
``flock``; consumers read while others append and see records once written. Consumers of one
group split each topic's partitions between the live members. Retention deletes whole old
segments like Kafka does, whatever the consumers' positions; a consumer whose position was
deleted skips to the earliest record left and counts the skipped records. The folders are
described in :mod:`marketlake.bus.local.layout`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from marketlake.bus.base import Bus, Producer, Retention, Trimmed, partition_for
from marketlake.bus.local.appender import PartitionAppender
from marketlake.bus.local.consumer import LocalConsumer
from marketlake.bus.local.groups import read_committed
from marketlake.bus.local.layout import LogLayout
from marketlake.bus.local.records import encode_headers, encode_record
from marketlake.errors import ConfigError

if TYPE_CHECKING:
    from marketlake.bus.local.ranges import LocalOffsetRanges

DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
_AUTO_FLUSH_BYTES = 8 * 1024 * 1024
_MIN_SEGMENT_BYTES = 64 * 1024


class LocalBus(Bus):
    """A durable, file-backed bus under ``root``.

    ``partitions`` is the partition count of topics created without one (including topics
    created on first use by a producer or consumer). ``retention_bytes`` and ``retention_ms``
    apply per partition whenever a segment is rolled and on :meth:`enforce_retention`.
    """

    def __init__(
        self,
        root: Path,
        partitions: int = 4,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        retention_bytes: int | None = None,
        retention_ms: int | None = None,
    ) -> None:
        if partitions < 1 or segment_bytes < 1:
            raise ConfigError(
                f"partitions ({partitions}) and segment_bytes ({segment_bytes}) must be >= 1"
            )
        self.layout = LogLayout(root, partitions)
        self.segment_bytes = segment_bytes
        self.retention_bytes = retention_bytes
        self.retention_ms = retention_ms

    @property
    def root(self) -> Path:
        """The folder holding the log."""
        return self.layout.root

    @property
    def partitions(self) -> int:
        """The partition count of topics created without one."""
        return self.layout.partitions

    def create_topic(
        self, topic: str, partitions: int | None = None, retention: Retention | None = None
    ) -> None:
        """Create ``topic`` with ``partitions`` (default: the bus's); an existing one keeps its
        partitions. ``retention``, when given, replaces the bus's limits for this topic."""
        self.layout.create_topic(topic, partitions, retention)

    def topics(self) -> list[str]:
        """The names of the topics in the log, sorted."""
        return self.layout.topics()

    def partition_count(self, topic: str) -> int:
        """The number of partitions of ``topic``, creating the topic if it does not exist."""
        return self.layout.partition_count(topic)

    def topic_folder(self, topic: str) -> Path:
        """The folder of ``topic``."""
        return self.layout.topic_folder(topic)

    def partition_folder(self, topic: str, partition: int) -> Path:
        """The folder of one partition of ``topic``."""
        return self.layout.partition_folder(topic, partition)

    def group_folder(self, group: str) -> Path:
        """The folder of consumer group ``group``."""
        return self.layout.group_folder(group)

    def appender(self, topic: str, partition: int) -> PartitionAppender:
        """A writer for one partition, with the topic's retention (else the bus's).

        A topic limited in bytes rolls segments of at most a quarter of each partition's share,
        so that retention can delete whole segments while keeping most of that share.
        """
        retention = self.layout.retention(topic)
        if retention is None:
            return PartitionAppender(
                self.partition_folder(topic, partition),
                self.segment_bytes,
                self.retention_bytes,
                self.retention_ms,
            )
        share = retention.partition_bytes(self.partition_count(topic))
        segment = (
            self.segment_bytes
            if share is None
            else max(min(share // 4, self.segment_bytes), _MIN_SEGMENT_BYTES)
        )
        return PartitionAppender(
            self.partition_folder(topic, partition), segment, share, retention.max_age_ms
        )

    def trim(self) -> list[Trimmed]:
        """Delete, in every topic, the whole segments below the offsets that every group which
        consumes the topic has committed (a group that has not committed a partition keeps all
        of it), after applying retention. The newest segment of a partition always stays."""
        self.enforce_retention()
        trimmed: list[Trimmed] = []
        for topic in self.layout.topics():
            groups = [
                self.group_folder(group) / "offsets" / topic
                for group in self.layout.groups()
                if (self.group_folder(group) / "offsets" / topic).is_dir()
            ]
            if not groups:
                continue
            for partition in range(self.partition_count(topic)):
                committed = [read_committed(folder / f"{partition}.json") for folder in groups]
                below = min(0 if c is None else c.offset for c in committed)
                appender = self.appender(topic, partition)
                try:
                    segments, records = appender.delete_below(below)
                finally:
                    appender.close()
                if segments:
                    trimmed.append(Trimmed(topic, partition, segments, records))
        return trimmed

    def enforce_retention(self) -> int:
        """Delete segments past the retention limits in every topic; returns how many went."""
        deleted = 0
        for topic in self.layout.topics():
            for partition in range(self.partition_count(topic)):
                appender = self.appender(topic, partition)
                try:
                    deleted += appender.delete_expired()
                finally:
                    appender.close()
        return deleted

    def ranges(self) -> LocalOffsetRanges:
        """Offset ranges of this log's topics."""
        from marketlake.bus.local.ranges import LocalOffsetRanges

        return LocalOffsetRanges(self.layout)

    def producer(self) -> LocalProducer:
        """A new producer appending to this bus."""
        return LocalProducer(self)

    def consumer(self, group: str, topics: Sequence[str]) -> LocalConsumer:
        """A new consumer of ``topics`` in ``group``; it owns its share of the partitions."""
        return LocalConsumer(self.layout, group, topics)


class LocalProducer(Producer):
    """Buffers records per partition; :meth:`flush` appends and fsyncs them."""

    def __init__(self, bus: LocalBus) -> None:
        self._bus = bus
        self._routes: dict[str, dict[str, tuple[str, int]]] = {}
        self._pending: dict[tuple[str, int], list[bytes]] = {}
        self._pending_bytes: dict[tuple[str, int], int] = {}
        self._appenders: dict[tuple[str, int], PartitionAppender] = {}

    def send(
        self, topic: str, key: str, value: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        """Queue one message for the partition of ``key``; durable once :meth:`flush` returns."""
        routes = self._routes.get(topic)
        if routes is None:
            routes = self._routes[topic] = {}
        route = routes.get(key)
        if route is None:
            route = (topic, partition_for(key, self._bus.partition_count(topic)))
            routes[key] = route
            self._pending.setdefault(route, [])
            self._pending_bytes.setdefault(route, 0)
        record = encode_record(
            time.time_ns() // 1_000_000,
            key.encode(),
            encode_headers(headers) if headers else b"",
            value,
        )
        self._pending[route].append(record)
        size = self._pending_bytes[route] + len(record)
        self._pending_bytes[route] = size
        if size >= _AUTO_FLUSH_BYTES:
            self._flush_partition(*route)

    def flush(self, timeout_s: float | None = None) -> None:
        """Append every queued record to its partition and fsync them.

        Every partition is written before the first fsync, so a reader sees the records of
        the last partition without waiting for the others' fsyncs. Partition locks are taken
        in sorted order, so producers in several processes cannot wait for each other.
        """
        written: list[tuple[str, int]] = []
        try:
            for route in sorted(self._pending):
                buffer = self._pending[route]
                if buffer:
                    self._appender(*route).write(buffer, len(buffer))
                    written.append(route)
        finally:
            error: BaseException | None = None
            for route in written:
                try:
                    self._appenders[route].sync()
                except BaseException as exc:  # every lock is released before raising
                    error = error or exc
                    continue
                self._pending[route].clear()
                self._pending_bytes[route] = 0
            if error is not None:
                raise error

    def close(self) -> None:
        """Flush and release the partition files."""
        self.flush()
        for appender in self._appenders.values():
            appender.close()
        self._appenders.clear()

    def _flush_partition(self, topic: str, partition: int) -> None:
        buffer = self._pending[(topic, partition)]
        if not buffer:
            return
        self._appender(topic, partition).append(buffer, len(buffer))
        buffer.clear()
        self._pending_bytes[(topic, partition)] = 0

    def _appender(self, topic: str, partition: int) -> PartitionAppender:
        appender = self._appenders.get((topic, partition))
        if appender is None:
            appender = self._appenders[(topic, partition)] = self._bus.appender(topic, partition)
        return appender
