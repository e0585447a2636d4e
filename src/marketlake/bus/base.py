"""The bus contract, shaped after Kafka so the local log and Kafka are interchangeable.

A topic has N partitions; a message's partition is chosen from its key (the symbol), so one
symbol's messages keep their order. Consumers belong to a group; the group's committed offset
per partition is where a restarted consumer resumes. Offsets are committed by the caller only
after its sink has durably written (at-least-once delivery, exactly-once effect with
idempotent sinks).
"""

from __future__ import annotations

import re
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from marketlake.errors import ConfigError

_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")


@dataclass(frozen=True)
class Retention:
    """How much of a topic the bus keeps: at most ``max_bytes`` (the whole topic, spread evenly
    over its partitions) and records no older than ``max_age_ms``; None is no limit.

    Like Kafka, the oldest whole segments go first, whether or not every group has read them.
    """

    max_bytes: int | None = None
    max_age_ms: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_age_ms"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"retention {name} must be at least 1, got {value}")

    def partition_bytes(self, partitions: int) -> int | None:
        """The bytes each of ``partitions`` partitions keeps at most."""
        if self.max_bytes is None:
            return None
        return max(self.max_bytes // max(partitions, 1), 1)


@dataclass(frozen=True)
class Trimmed:
    """What :meth:`Bus.trim` deleted from one partition."""

    topic: str
    partition: int
    segments: int
    records: int


@dataclass(frozen=True)
class Message:
    """One record read from the bus."""

    topic: str
    partition: int
    offset: int
    key: str
    value: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    timestamp_ms: int = 0


def partition_for(key: str, partitions: int) -> int:
    """The partition of ``key``: a stable hash, the same in every process and run."""
    return zlib.crc32(key.encode()) % partitions


def validate_name(name: str, kind: str = "topic") -> str:
    """``name`` if it is a valid topic or group name, else a ConfigError saying what is allowed.

    The rule is Kafka's, so a name valid on one bus is valid on every bus.
    """
    if not _NAME.fullmatch(name) or name in {".", ".."}:
        raise ConfigError(
            f"invalid {kind} name {name!r}: use 1 to 249 letters, digits, '.', '_' or '-' "
            "(not '.' or '..')"
        )
    return name


class Producer(ABC):
    """Appends messages to topics."""

    @abstractmethod
    def send(
        self, topic: str, key: str, value: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        """Queue one message; it is durable once :meth:`flush` returns."""

    @abstractmethod
    def flush(self, timeout_s: float | None = None) -> None:
        """Block until every queued message is durably stored; raise if that fails."""

    def close(self) -> None:
        """Flush and release resources."""
        self.flush()

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Consumer(ABC):
    """Reads messages of a group from its committed offsets on."""

    @abstractmethod
    def poll(self, max_messages: int = 1000, timeout_s: float = 1.0) -> list[Message]:
        """Up to ``max_messages`` messages; an empty list when none arrive within the timeout."""

    @abstractmethod
    def commit(self) -> None:
        """Commit the position after the last message returned by :meth:`poll`."""

    @abstractmethod
    def lag(self) -> int:
        """Messages not yet committed by this group in every partition of the subscribed
        topics, whoever holds them (0: the group has caught up with the whole topics)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources without committing."""

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OffsetRanges(ABC):
    """Offsets and offset ranges of one bus's topics, for readers that keep their own offsets.

    A Spark Structured Streaming query keeps the offsets it has read in its own checkpoint and
    asks for exact ranges, partition by partition, instead of joining a consumer group. Once its
    sink has written a range it records the offsets reached for a named consumer group too, so
    the bus's trim and lag count the query as one more reader.
    """

    @abstractmethod
    def offsets(self, topic: str) -> list[tuple[int, int]]:
        """``(earliest, end)`` per partition of ``topic``: the first offset still kept and the
        offset the next message will get."""

    @abstractmethod
    def read(self, topic: str, partition: int, start: int, end: int) -> Iterator[Message]:
        """The messages of ``partition`` from ``start`` (or the earliest one kept, if later)
        up to, not including, ``end``, in offset order."""

    @abstractmethod
    def commit(self, group: str, topic: str, offsets: Mapping[int, int]) -> None:
        """Record ``offsets`` (partition → next offset to read) as ``group``'s committed
        offsets of ``topic``; an offset below the one already committed is left as it is."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""


class Bus(ABC):
    """A bus: topics, producers and consumer groups."""

    @abstractmethod
    def create_topic(
        self, topic: str, partitions: int = 4, retention: Retention | None = None
    ) -> None:
        """Create ``topic`` if it does not exist (an existing topic keeps its partitions).

        ``retention``, when given, becomes the topic's retention, on a new or existing topic.
        """

    def topics(self) -> list[str]:
        """The names of the bus's topics, sorted; listing them creates nothing.

        Buses that cannot list their topics raise ConfigError.
        """
        raise ConfigError(f"{type(self).__name__} cannot list its topics")

    def trim(self) -> list[Trimmed]:
        """Delete what every consumer group of each topic has committed; what was deleted.

        Buses that cannot trim raise ConfigError.
        """
        raise ConfigError(
            f"{type(self).__name__} cannot trim committed records; on Kafka set the topics' "
            "retention (stream.retention_bytes, stream.retention) and the broker deletes them"
        )

    def ranges(self) -> OffsetRanges:
        """Offset ranges of this bus's topics, for readers that keep their own offsets (a
        Spark query). Buses that cannot serve them raise ConfigError."""
        raise ConfigError(
            f"{type(self).__name__} cannot be read by offset ranges; use a local:// or kafka:// bus"
        )

    @abstractmethod
    def producer(self) -> Producer:
        """A new producer."""

    @abstractmethod
    def consumer(self, group: str, topics: Sequence[str]) -> Consumer:
        """A new consumer of ``topics`` in consumer group ``group``."""

    def sole_consumer(self, group: str, topics: Sequence[str]) -> Consumer:
        """A consumer of every partition of ``topics`` for ``group``, from the group's
        committed offsets, for a caller that makes sure it is the group's only reader.

        It commits and measures lag like :meth:`consumer`, but a bus may skip the membership
        protocol: a Kafka consumer is assigned the partitions instead of joining the group, so
        it starts without the broker's join delay and without waiting for the session of a
        dead member to expire; a member that joins the group meanwhile is not kept out. By
        default, a group member.
        """
        return self.consumer(group, topics)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""

    def __enter__(self) -> Bus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
