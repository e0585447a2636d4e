"""Kafka (any Kafka-protocol broker) through ``confluent-kafka``: the scale-out bus.

Producers are idempotent (``acks=all``) and key by symbol with the ``murmur2_random``
partitioner, so a key lands in the same partition as with Java clients. Consumers never
auto-commit: :meth:`KafkaConsumer.commit` stores the positions after the polled messages.
Kafka transactions are not used; exactly-once effect comes from idempotent sinks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from marketlake.bus.base import Bus, validate_name
from marketlake.bus.kafka.consumer import KafkaConsumer
from marketlake.bus.kafka.driver import KafkaCluster, load_driver, parse_url
from marketlake.bus.kafka.producer import KafkaProducer
from marketlake.errors import ConfigError


class KafkaBus(Bus):
    """A bus on Kafka brokers ``bootstrap_servers`` (``host:port,host:port``).

    ``config`` holds librdkafka settings shared by every client (``security.protocol``,
    ``sasl.mechanism``, ``sasl.username``, ``sasl.password``, ``ssl.ca.location``, ...).
    Topics created by the bus get ``partitions`` partitions and ``replication_factor`` replicas.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        config: Mapping[str, Any] | None = None,
        partitions: int = 4,
        replication_factor: int = 1,
    ) -> None:
        driver = load_driver()
        if not bootstrap_servers:
            raise ConfigError("a Kafka bus needs bootstrap servers, as in kafka://host:9092")
        self.bootstrap_servers = bootstrap_servers
        self.partitions = partitions
        self.replication_factor = replication_factor
        self.config = {"bootstrap.servers": bootstrap_servers, **dict(config or {})}
        self.cluster = KafkaCluster(driver, bootstrap_servers, self.config)
        self._admin: Any = None
        self._topics: set[str] = set()

    @classmethod
    def from_url(cls, url: str) -> KafkaBus:
        """The bus of ``kafka://[user:password@]host:port[,host:port][?setting=value&...]``.

        See :func:`marketlake.bus.kafka.driver.parse_url` for what the URL may hold.
        """
        parsed = parse_url(url)
        return cls(parsed.bootstrap_servers, parsed.config, **parsed.topic_options)

    def create_topic(self, topic: str, partitions: int | None = None) -> None:
        """Create ``topic`` with ``partitions`` (default: the bus's); an existing one is kept."""
        validate_name(topic)
        if topic in self._topics:
            return
        count = self.partitions if partitions is None else partitions
        driver = self.cluster.driver
        if self._admin is None:
            self._admin = driver.admin.AdminClient(self.config)
        new_topic = driver.admin.NewTopic(topic, count, self.replication_factor)
        future = self._admin.create_topics([new_topic], operation_timeout=30)[topic]
        try:
            future.result(timeout=30)
        except driver.KafkaException as exc:
            error = exc.args[0]
            if error.code() != driver.KafkaError.TOPIC_ALREADY_EXISTS:
                raise self.cluster.error(error, f"creating topic {topic!r}") from exc
        self._topics.add(topic)

    def producer(self) -> KafkaProducer:
        """A new idempotent producer; topics it sends to are created if missing."""
        return KafkaProducer(self.cluster, self.create_topic)

    def consumer(self, group: str, topics: Sequence[str]) -> KafkaConsumer:
        """A new consumer of ``topics`` in ``group`` (topics are created if missing)."""
        validate_name(group, "group")
        for topic in topics:
            self.create_topic(topic)
        return KafkaConsumer(self.cluster, group, topics)
