"""The edge to ``confluent-kafka``: the lazily imported driver, settings from a URL, errors.

Everything the Kafka bus, its producers and its consumers share lives here, so they depend on
this module and not on each other.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

from marketlake.errors import ConfigError, MissingExtraError, TerminalError, TransientError

TOPIC_OPTIONS = ("partitions", "replication_factor")
# librdkafka writes every failed connection attempt to stderr unless given a logger: its
# messages go to this logger instead (silent unless the application configures logging).
LOGGER = logging.getLogger("marketlake.bus.kafka")
LOGGER.addHandler(logging.NullHandler())
# Besides the errors librdkafka calls retriable: a lost broker (its handle may be torn down
# under a pending request, _DESTROY_BROKER), and a group coordinator that is gone or that no
# longer knows the member (it joins again, its revoked partitions are dropped).
_TRANSIENT_CODES = {
    "_MSG_TIMED_OUT",
    "_TIMED_OUT",
    "_TRANSPORT",
    "_ALL_BROKERS_DOWN",
    "_DESTROY_BROKER",
    "_WAIT_COORD",
    "ILLEGAL_GENERATION",
    "UNKNOWN_MEMBER_ID",
    "REBALANCE_IN_PROGRESS",
}


def load_driver() -> Any:
    """The ``confluent_kafka`` module (with its admin client); names the extra when missing."""
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


@dataclass(frozen=True)
class KafkaCluster:
    """The brokers clients talk to: the driver, the bootstrap servers and shared settings.

    ``config`` holds the librdkafka settings every client gets, ``bootstrap.servers`` included
    (see :func:`client_settings`).
    """

    driver: Any
    bootstrap_servers: str
    config: Mapping[str, Any]

    def error(self, error: Any, action: str) -> TerminalError | TransientError:
        """The marketlake error for a ``KafkaError`` raised while doing ``action``."""
        return translate_error(error, action, self.bootstrap_servers)


class KafkaUrl(NamedTuple):
    """What a ``kafka://`` URL says: servers, librdkafka settings and topic options."""

    bootstrap_servers: str
    config: dict[str, Any]
    topic_options: dict[str, int]


def parse_url(url: str) -> KafkaUrl:
    """The settings of ``kafka://[user:password@]host:port[,host:port][?setting=value&...]``.

    Query settings are librdkafka settings (``security.protocol=SASL_SSL``,
    ``sasl.mechanism=SCRAM-SHA-512``, ...), except ``partitions`` and ``replication_factor``
    which configure the topics the bus creates. A user and password in the URL become
    ``sasl.username``/``sasl.password`` (mechanism PLAIN unless set).
    """
    parts = urlsplit(url)
    if parts.scheme != "kafka":
        raise ConfigError(f"not a Kafka URL (kafka://host:port): {parts.scheme}://...")
    servers = parts.netloc.rsplit("@", 1)[-1]
    config: dict[str, Any] = {}
    options: dict[str, int] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in TOPIC_OPTIONS:
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
    return KafkaUrl(servers, config, options)


def client_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with librdkafka's log lines sent to :data:`LOGGER` (unless it names a
    ``logger``), so an unreachable broker does not flood the terminal."""
    return {"logger": LOGGER, **config}
