"""Kafka (any Kafka-protocol broker) through ``confluent-kafka``: the scale-out bus.

Producers are idempotent (``acks=all``) and key by symbol with the ``murmur2_random``
partitioner, so a key lands in the same partition as with Java clients. Consumers never
auto-commit: :meth:`KafkaConsumer.commit` stores the positions after the polled messages.
Kafka transactions are not used; exactly-once effect comes from idempotent sinks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from marketlake.bus.base import Bus, Consumer, Producer
from marketlake.bus.local import validate_name
from marketlake.errors import ConfigError, MissingExtraError, TerminalError, TransientError

_BUS_OPTIONS = {"partitions": int, "replication_factor": int}
_PRODUCER_DEFAULTS = {"linger.ms": 5}
_TRANSIENT_CODES = {"_MSG_TIMED_OUT", "_TIMED_OUT", "_TRANSPORT", "_ALL_BROKERS_DOWN"}


def _driver() -> Any:
    try:
        import confluent_kafka
        import confluent_kafka.admin
    except ImportError as exc:
        raise MissingExtraError("confluent-kafka", "kafka") from exc
    return confluent_kafka


def translate_error(error: Any, action: str, servers: str) -> TerminalError | TransientError:
    """A marketlake error for a ``KafkaError``: transient when a retry may help."""
    transient = error.retriable() or error.name() in _TRANSIENT_CODES
    kind = TransientError if transient and not error.fatal() else TerminalError
    return kind(f"Kafka {action} on {servers} failed: {error.str()} ({error.name()})")


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
        self._driver = _driver()
        if not bootstrap_servers:
            raise ConfigError("a Kafka bus needs bootstrap servers, as in kafka://host:9092")
        self.bootstrap_servers = bootstrap_servers
        self.partitions = partitions
        self.replication_factor = replication_factor
        self.config = {"bootstrap.servers": bootstrap_servers, **dict(config or {})}
        self._admin: Any = None
        self._topics: set[str] = set()

    @classmethod
    def from_url(cls, url: str) -> KafkaBus:
        """The bus of ``kafka://[user:password@]host:port[,host:port][?setting=value&...]``.

        Query settings are librdkafka settings (``security.protocol=SASL_SSL``,
        ``sasl.mechanism=SCRAM-SHA-512``, ...), except ``partitions`` and
        ``replication_factor`` which configure the topics the bus creates. A user and password
        in the URL become ``sasl.username``/``sasl.password`` (mechanism PLAIN unless set).
        """
        parts = urlsplit(url)
        if parts.scheme != "kafka":
            raise ConfigError(f"not a Kafka URL (kafka://host:port): {parts.scheme}://...")
        servers = parts.netloc.rsplit("@", 1)[-1]
        config: dict[str, Any] = {}
        options: dict[str, int] = {}
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            if name in _BUS_OPTIONS:
                try:
                    options[name] = int(value)
                except ValueError as exc:
                    raise ConfigError(f"Kafka URL option {name} must be an integer") from exc
            else:
                config[name] = value
        if "@" in parts.netloc:
            config.setdefault("sasl.username", unquote(parts.username or ""))
            config.setdefault("sasl.password", unquote(parts.password or ""))
            config.setdefault("sasl.mechanism", "PLAIN")
            config.setdefault("security.protocol", "SASL_PLAINTEXT")
        return cls(servers, config, **options)

    def create_topic(self, topic: str, partitions: int | None = None) -> None:
        """Create ``topic`` with ``partitions`` (default: the bus's); an existing one is kept."""
        validate_name(topic)
        if topic in self._topics:
            return
        count = self.partitions if partitions is None else partitions
        driver = self._driver
        if self._admin is None:
            self._admin = driver.admin.AdminClient(self.config)
        new_topic = driver.admin.NewTopic(topic, count, self.replication_factor)
        future = self._admin.create_topics([new_topic], operation_timeout=30)[topic]
        try:
            future.result(timeout=30)
        except driver.KafkaException as exc:
            error = exc.args[0]
            if error.code() != driver.KafkaError.TOPIC_ALREADY_EXISTS:
                raise translate_error(
                    error, f"creating topic {topic!r}", self.bootstrap_servers
                ) from exc
        self._topics.add(topic)

    def producer(self) -> KafkaProducer:
        """A new idempotent producer."""
        return KafkaProducer(self)

    def consumer(self, group: str, topics: Sequence[str]) -> Consumer:
        """A new consumer of ``topics`` in ``group`` (topics are created if missing)."""
        validate_name(group, "group")
        for topic in topics:
            self.create_topic(topic)
        from marketlake.bus.kafka_consumer import KafkaConsumer

        return KafkaConsumer(self, group, topics)


class KafkaProducer(Producer):
    """An idempotent producer; :meth:`flush` raises the first delivery error."""

    def __init__(self, bus: KafkaBus) -> None:
        self._bus = bus
        settings = {
            **_PRODUCER_DEFAULTS,
            **bus.config,
            "enable.idempotence": True,
            "acks": "all",
            "partitioner": "murmur2_random",
        }
        try:
            self._producer = bus._driver.Producer(settings)
        except bus._driver.KafkaException as exc:
            raise translate_error(
                exc.args[0], "creating a producer", bus.bootstrap_servers
            ) from exc
        self._errors: list[Any] = []
        self._sent = 0

    def send(
        self, topic: str, key: str, value: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        """Queue one message keyed by ``key``."""
        self._bus.create_topic(topic)
        header_list = [(k, v.encode()) for k, v in headers.items()] if headers else None
        while True:
            try:
                self._producer.produce(
                    topic, value, key.encode(), headers=header_list, on_delivery=self._delivered
                )
                break
            except BufferError:
                self._producer.poll(0.1)
        self._sent += 1
        if self._sent % 1000 == 0:
            self._producer.poll(0)

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait for every queued message to be acknowledged; raise the first delivery error."""
        remaining = self._producer.flush(-1 if timeout_s is None else timeout_s)
        errors, self._errors = self._errors, []
        if errors:
            raise translate_error(errors[0], "delivery", self._bus.bootstrap_servers)
        if remaining:
            raise TransientError(
                f"{remaining} messages to {self._bus.bootstrap_servers} were not acknowledged "
                f"within {timeout_s} s"
            )

    def _delivered(self, error: Any, _message: Any) -> None:
        if error is not None:
            self._errors.append(error)
