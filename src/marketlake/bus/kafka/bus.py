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
from marketlake.bus.kafka.driver import KafkaCluster, client_logger, load_driver, parse_url
from marketlake.bus.kafka.producer import KafkaProducer
from marketlake.errors import ConfigError, TransientError

BROKER_WAIT_S = 3.0
TOPIC_WAIT_S = 30.0


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
        # every client logs through a quiet logger instead of librdkafka's stderr lines
        clients = {**self.config, "logger": client_logger()}
        self.cluster = KafkaCluster(driver, bootstrap_servers, clients)
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
            admin = driver.admin.AdminClient(self.cluster.config)
            self._check_brokers(admin)
            self._admin = admin
        new_topic = driver.admin.NewTopic(topic, count, self.replication_factor)
        future = self._admin.create_topics([new_topic], operation_timeout=TOPIC_WAIT_S)[topic]
        try:
            future.result(timeout=TOPIC_WAIT_S)
        except TimeoutError as exc:
            raise TransientError(
                f"Kafka creating topic {topic!r} on {self.bootstrap_servers} failed: the broker "
                f"did not answer within {TOPIC_WAIT_S:.0f} s"
            ) from exc
        except driver.KafkaException as exc:
            error = exc.args[0]
            if error.code() != driver.KafkaError.TOPIC_ALREADY_EXISTS:
                raise self.cluster.error(error, f"creating topic {topic!r}") from exc
        self._topics.add(topic)

    def _check_brokers(self, admin: Any) -> None:
        """A one-line TransientError when no broker answers at the bootstrap servers.

        Asked once, before the bus's first topic, with a short wait (a running broker answers
        metadata requests in milliseconds), so a wrong URL or a stopped broker fails in
        seconds instead of waiting out every request's timeout, and librdkafka's connection
        attempts are not logged. Transient: a caller that waits for brokers (a tick producer)
        asks again.
        """
        driver = self.cluster.driver
        try:
            admin.list_topics(timeout=BROKER_WAIT_S)
        except driver.KafkaException as exc:
            error = exc.args[0]
            raise TransientError(
                f"no Kafka broker answered at {self.bootstrap_servers} within "
                f"{BROKER_WAIT_S:.0f} s ({error.str()}): start the broker or point --bus "
                "at a running one"
            ) from exc

    def producer(self) -> KafkaProducer:
        """A new idempotent producer; topics it sends to are created if missing."""
        return KafkaProducer(self.cluster, self.create_topic)

    def consumer(self, group: str, topics: Sequence[str]) -> KafkaConsumer:
        """A new consumer of ``topics`` in ``group`` (topics are created if missing)."""
        validate_name(group, "group")
        for topic in topics:
            self.create_topic(topic)
        return KafkaConsumer(self.cluster, group, topics)
