"""Kafka (any Kafka-protocol broker) through ``confluent-kafka``: the scale-out bus.

Producers are idempotent (``acks=all``) and key by symbol with the ``murmur2_random``
partitioner, so a key lands in the same partition as with Java clients. Consumers never
auto-commit: :meth:`KafkaConsumer.commit` stores the positions after the polled messages.
Kafka transactions are not used; exactly-once effect comes from idempotent sinks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from marketlake.bus.base import Bus, Retention, validate_name
from marketlake.bus.kafka.consumer import KafkaConsumer
from marketlake.bus.kafka.driver import KafkaCluster, client_settings, load_driver, parse_url
from marketlake.bus.kafka.producer import KafkaProducer
from marketlake.errors import ConfigError, TransientError

if TYPE_CHECKING:
    from marketlake.bus.kafka.ranges import KafkaOffsetRanges

# A running broker answers metadata in milliseconds; a batch stage tries 4 times, so a
# missing broker fails a run well within 30 s.
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
        self.cluster = KafkaCluster(driver, bootstrap_servers, client_settings(self.config))
        self._admin: Any = None
        self._topics: set[str] = set()

    @classmethod
    def from_url(cls, url: str) -> KafkaBus:
        """The bus of ``kafka://[user:password@]host:port[,host:port][?setting=value&...]``.

        See :func:`marketlake.bus.kafka.driver.parse_url` for what the URL may hold.
        """
        parsed = parse_url(url)
        return cls(parsed.bootstrap_servers, parsed.config, **parsed.topic_options)

    def create_topic(
        self, topic: str, partitions: int | None = None, retention: Retention | None = None
    ) -> None:
        """Create ``topic`` with ``partitions`` (default: the bus's); an existing one keeps its
        partitions. ``retention`` becomes the topic's ``retention.bytes`` (per partition) and
        ``retention.ms``, on a new or an existing topic; the broker applies them."""
        validate_name(topic)
        if topic in self._topics:
            return
        count = self.partitions if partitions is None else partitions
        driver = self.cluster.driver
        admin = self._admin_client()
        configs = _retention_configs(retention, count)
        new_topic = driver.admin.NewTopic(topic, count, self.replication_factor, config=configs)
        future = admin.create_topics([new_topic], operation_timeout=TOPIC_WAIT_S)[topic]
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
            if configs:
                self._alter_configs(topic, configs)
        self._topics.add(topic)

    def topics(self) -> list[str]:
        """The names of the cluster's topics (without Kafka's internal ones), sorted."""
        driver = self.cluster.driver
        try:
            metadata = self._admin_client().list_topics(timeout=BROKER_WAIT_S)
        except driver.KafkaException as exc:
            raise self.cluster.error(exc.args[0], "listing topics") from exc
        return sorted(name for name in metadata.topics if not name.startswith("__"))

    def _alter_configs(self, topic: str, configs: dict[str, str]) -> None:
        driver = self.cluster.driver
        entries = [
            driver.admin.ConfigEntry(
                name, value, incremental_operation=driver.admin.AlterConfigOpType.SET
            )
            for name, value in configs.items()
        ]
        resource = driver.admin.ConfigResource("topic", topic, incremental_configs=entries)
        try:
            for future in self._admin_client().incremental_alter_configs([resource]).values():
                future.result(timeout=30)
        except driver.KafkaException as exc:
            raise self.cluster.error(exc.args[0], f"setting the retention of {topic!r}") from exc

    def _admin_client(self) -> Any:
        """The admin client, once a broker has answered (TransientError within
        ``BROKER_WAIT_S`` seconds when none does)."""
        if self._admin is None:
            driver = self.cluster.driver
            admin = driver.admin.AdminClient(self.cluster.config)
            try:
                admin.list_topics(timeout=BROKER_WAIT_S)
            except driver.KafkaException as exc:
                raise TransientError(
                    f"no Kafka broker answered at {self.bootstrap_servers} within "
                    f"{BROKER_WAIT_S:.0f} s: is it running, and is the address right?"
                ) from exc
            self._admin = admin
        return self._admin

    def ranges(self) -> KafkaOffsetRanges:
        """Offset ranges of the cluster's topics."""
        from marketlake.bus.kafka.ranges import KafkaOffsetRanges

        return KafkaOffsetRanges(self.cluster)

    def producer(self) -> KafkaProducer:
        """A new idempotent producer; topics it sends to are created if missing."""
        return KafkaProducer(self.cluster, self.create_topic)

    def consumer(self, group: str, topics: Sequence[str]) -> KafkaConsumer:
        """A new consumer of ``topics`` in ``group`` (topics are created if missing)."""
        validate_name(group, "group")
        for topic in topics:
            self.create_topic(topic)
        return KafkaConsumer(self.cluster, group, topics)

    def sole_consumer(self, group: str, topics: Sequence[str]) -> KafkaConsumer:
        """A consumer assigned every partition of ``topics``, resuming from ``group``'s
        committed offsets without joining the group (see :meth:`Bus.sole_consumer`)."""
        validate_name(group, "group")
        for topic in topics:
            self.create_topic(topic)
        return KafkaConsumer(self.cluster, group, topics, assigned=True)


def _retention_configs(retention: Retention | None, partitions: int) -> dict[str, str]:
    """The topic configs of ``retention`` (Kafka's ``retention.bytes`` is per partition)."""
    if retention is None:
        return {}
    configs: dict[str, str] = {}
    share = retention.partition_bytes(partitions)
    if share is not None:
        configs["retention.bytes"] = str(share)
    if retention.max_age_ms is not None:
        configs["retention.ms"] = str(retention.max_age_ms)
    return configs
