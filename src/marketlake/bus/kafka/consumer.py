"""Kafka consumers: group members that commit only what was polled, only when told to."""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

from marketlake.bus.base import Consumer, Message
from marketlake.bus.kafka.driver import LOGGER, KafkaCluster
from marketlake.bus.kafka.watermarks import confirmed_watermarks, watermark_probe

# The group no longer counts this member as the owner of what it polled: its session expired
# (a lost broker, a long pause) or the group is rebalancing. The commit cannot succeed, and
# retrying it never will: the member joins again on its next poll.
_MEMBERSHIP_LOST = {"ILLEGAL_GENERATION", "UNKNOWN_MEMBER_ID", "REBALANCE_IN_PROGRESS"}

_CONSUMER_DEFAULTS = {
    "auto.offset.reset": "earliest",
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 1000,
}


class KafkaConsumer(Consumer):
    """A group member that commits only what was polled, only when told to.

    An ``assigned`` consumer does not join the group: it is assigned every partition of its
    topics and starts at the group's committed offsets (else the earliest), and it commits
    for the group all the same. It starts at once, where a member waits for the broker's join
    (Tansu holds a new group's first join for half the session timeout, and a member joining
    beside a dead one until the dead one's session has expired and the group formed again).
    """

    def __init__(
        self, cluster: KafkaCluster, group: str, topics: Sequence[str], assigned: bool = False
    ) -> None:
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
            if assigned:
                self._consumer.assign(self._every_partition())
            else:
                self._consumer.subscribe(
                    self._topics, on_revoke=self._revoked, on_lost=self._revoked
                )
        except self._driver.KafkaException as exc:
            raise cluster.error(exc.args[0], "subscribing") from exc

    def _every_partition(self) -> list[Any]:
        """Every partition of the topics, each to be read from the group's committed offset."""
        tp = self._driver.TopicPartition
        return [
            tp(topic, p, self._driver.OFFSET_STORED)
            for topic in self._topics
            for p in sorted(self._consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        ]

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
            message = as_message(item)
            out.append(message)
            self._positions[(message.topic, message.partition)] = message.offset + 1
        return out

    def commit(self) -> None:
        """Commit, synchronously, the positions after the last polled messages.

        When the group no longer counts this member (its session expired while the broker was
        away, or a rebalance began), the positions are dropped and nothing is committed: the
        member joins again on its next poll, and whoever is assigned the partitions reads them
        again from the group's last commit (a reader that keeps its own positions, as the
        stream processor does, skips what it already has). Retrying such a commit would wait
        forever, since only a poll lets the member join again.
        """
        if not self._positions:
            return
        tp = self._driver.TopicPartition
        offsets = [tp(topic, p, offset) for (topic, p), offset in self._positions.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except self._driver.KafkaException as exc:
            error = exc.args[0]
            if error.name() in _MEMBERSHIP_LOST:
                LOGGER.info("commit dropped, the member joins its group again: %s", error.str())
                self._positions.clear()
                return
            raise self._cluster.error(error, "committing") from exc
        self._positions.clear()

    def lag(self) -> int:
        """End offsets minus the group's committed offsets over every partition of the
        subscribed topics, the ones other members (live or dead) hold included."""
        tp = self._driver.TopicPartition
        try:
            probe = self._watermark_probe()
            partitions = [
                tp(topic, p)
                for topic in self._topics
                for p in probe.list_topics(topic, timeout=10).topics[topic].partitions
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
        """``(low, end)`` per partition (see :func:`confirmed_watermarks`)."""
        return confirmed_watermarks(self._cluster, self._watermark_probe(), pairs)

    def _watermark_probe(self) -> Any:
        """The client that asks for the partitions and their watermarks: on the group
        member's connection a request would queue behind its pending fetch (up to
        ``fetch.wait.max.ms``, 500 ms by default)."""
        if self._probe is None:
            self._probe = watermark_probe(self._cluster)
        return self._probe

    def close(self) -> None:
        """Leave the group without committing."""
        self._consumer.close()
        if self._probe is not None:
            self._probe.close()
            self._probe = None

    def _revoked(self, _consumer: Any, partitions: list[Any]) -> None:
        for item in partitions:
            self._positions.pop((item.topic, item.partition), None)


def as_message(item: Any) -> Message:
    """A confluent-kafka record (without error) as a :class:`Message`."""
    headers = item.headers()
    return Message(
        item.topic(),
        item.partition(),
        item.offset(),
        (item.key() or b"").decode(),
        item.value() or b"",
        MappingProxyType({k: (v or b"").decode() for k, v in headers})
        if headers
        else MappingProxyType({}),
        item.timestamp()[1],
    )
